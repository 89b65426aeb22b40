//! Synapse-compatible shared-secret registration (`/_synapse/admin/v1/register`), so Synapse's
//! own `register_new_matrix_user` script works against Hearth unchanged: single-use nonces that
//! expire after a minute, and an HMAC-SHA1 over the request keyed with the shared secret.

use parking_lot::Mutex;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use sha1::Sha1;

const NONCE_LIFETIME: Duration = Duration::from_secs(60);
const MAX_NONCES: usize = 1000;

pub struct SharedSecretRegistration {
    secret: String,
    nonces: Mutex<HashMap<String, Instant>>,
}

impl SharedSecretRegistration {
    pub fn new(secret: String) -> Self {
        Self { secret, nonces: Mutex::new(HashMap::new()) }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn new_nonce(&self) -> String {
        let nonce = super::tokens::random_alphanumeric(32);
        let mut nonces = self.nonces.lock();
        nonces.retain(|_, t| t.elapsed() < NONCE_LIFETIME);
        // Nonces come from an unauthenticated GET: bound the memory a flood can take.
        if nonces.len() >= MAX_NONCES
            && let Some(oldest) = nonces.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
        {
            nonces.remove(&oldest);
        }
        nonces.insert(nonce.clone(), Instant::now());
        nonce
    }

    /// Consumes the nonce; `false` when it is unknown, used or expired.
    pub fn take_nonce(&self, nonce: &str) -> bool {
        let mut nonces = self.nonces.lock();
        nonces.remove(nonce).is_some_and(|t| t.elapsed() < NONCE_LIFETIME)
    }

    /// Checks the hex HMAC-SHA1 of `nonce \0 username \0 password \0 admin|notadmin [\0 user_type]`
    /// in constant time.
    pub fn verify_mac(
        &self,
        nonce: &str,
        username: &str,
        password: &str,
        admin: bool,
        user_type: Option<&str>,
        mac_hex: &str,
    ) -> bool {
        let Ok(given) = hex::decode(mac_hex.trim()) else { return false };
        let mut mac = Hmac::<Sha1>::new_from_slice(self.secret.as_bytes()).expect("hmac takes any key");
        mac.update(nonce.as_bytes());
        mac.update(b"\x00");
        mac.update(username.as_bytes());
        mac.update(b"\x00");
        mac.update(password.as_bytes());
        mac.update(b"\x00");
        mac.update(if admin { b"admin" as &[u8] } else { b"notadmin" });
        if let Some(t) = user_type {
            mac.update(b"\x00");
            mac.update(t.as_bytes());
        }
        mac.verify_slice(&given).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_matches_synapse_construction() {
        let s = SharedSecretRegistration::new("secret".into());
        let mut mac = Hmac::<Sha1>::new_from_slice(b"secret").unwrap();
        mac.update(b"n\x00alice\x00pw\x00admin");
        let hex = hex::encode(mac.finalize().into_bytes());
        assert!(s.verify_mac("n", "alice", "pw", true, None, &hex));
        assert!(!s.verify_mac("n", "alice", "pw", false, None, &hex));
        assert!(!s.verify_mac("n", "alice", "pw", true, None, "zz"));
    }

    #[test]
    fn nonces_are_single_use() {
        let s = SharedSecretRegistration::new("secret".into());
        let n = s.new_nonce();
        assert!(s.take_nonce(&n));
        assert!(!s.take_nonce(&n));
        assert!(!s.take_nonce("made-up"));
    }
}
