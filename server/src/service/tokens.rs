//! Opaque secrets handed to clients: 256-bit random values, stored only as SHA-256 hashes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::{Rng, RngCore, distributions::Alphanumeric, rngs::OsRng};
use sha2::{Digest, Sha256};

/// A new random token with a readable prefix (`syt_`-style, so leaked tokens are recognisable by
/// secret scanners): `hat_` access, `hrt_` refresh, `hlt_` login.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A random string of `len` ASCII letters and digits (device IDs, nonces, session IDs).
pub fn random_alphanumeric(len: usize) -> String {
    OsRng.sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// A device ID like Synapse's: ten upper-case letters.
pub fn device_id() -> String {
    (0..10).map(|_| (b'A' + OsRng.gen_range(0..26)) as char).collect()
}

/// An event ID that names no event: what a shadow-banned account is answered (Synapse's).
pub fn fake_event_id() -> ruma::OwnedEventId {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    ruma::OwnedEventId::try_from(format!("${}", URL_SAFE_NO_PAD.encode(bytes))).expect("a valid event ID")
}
