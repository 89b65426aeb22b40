//! Password hashing with argon2id at OWASP's recommended parameters (m = 7 MiB, t = 5, p = 1).
//!
//! Hashing is CPU- and memory-heavy, so it runs on one dedicated thread, never on a runtime
//! worker: one thread bounds both the CPU a burst of logins can take and the memory (with the
//! blocking pool, every thread's allocator arena kept its own buffer, tripling peak RSS).

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{Output, PasswordHash, SaltString, rand_core::OsRng},
};

use http::StatusCode;

use crate::{
    config::PasswordPolicy,
    error::{Error, Result},
};

/// OWASP Password Storage Cheat Sheet, argon2id: 7 MiB, 5 iterations, 1 lane. The sheet lists
/// five settings (46 MiB/t=1 down to 7 MiB/t=5) as equally strong, trading memory for CPU; a
/// homeserver on a family computer keeps the buffer resident, so the smallest memory wins.
/// Hashes made with other parameters (earlier Hearth used 19 MiB, t=2) still verify: the
/// parameters are part of each stored hash.
pub const M_COST_KIB: u32 = 7 * 1024;
pub const T_COST: u32 = 5;
pub const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;

/// Longest password accepted; argon2 copes with more, but a megabyte "password" is an attack.
pub const MAX_PASSWORD_BYTES: usize = 512;

pub fn check_length(password: &str) -> Result<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid_param(format!("Password is too long (at most {MAX_PASSWORD_BYTES} bytes)")));
    }
    Ok(())
}

/// Checks a new password against the policy, with Synapse's error codes and its order of
/// checks, so clients that know them (Element) explain the problem in their own words.
pub fn check_policy(policy: &PasswordPolicy, password: &str) -> Result<()> {
    check_length(password)?;
    if !policy.enabled {
        return Ok(());
    }
    let refused = |errcode: &str, message: String| Err(Error::custom(StatusCode::BAD_REQUEST, errcode, message));
    if password.chars().count() < policy.minimum_length {
        let n = policy.minimum_length;
        return refused("M_PASSWORD_TOO_SHORT", format!("The password must be at least {n} characters long"));
    }
    if policy.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
        return refused("M_PASSWORD_NO_DIGIT", "The password must include at least one digit".to_owned());
    }
    if policy.require_symbol && password.chars().all(|c| c.is_ascii_alphanumeric()) {
        return refused("M_PASSWORD_NO_SYMBOL", "The password must include at least one symbol".to_owned());
    }
    if policy.require_uppercase && !password.chars().any(|c| c.is_ascii_uppercase()) {
        return refused(
            "M_PASSWORD_NO_UPPERCASE",
            "The password must include at least one uppercase letter".to_owned(),
        );
    }
    if policy.require_lowercase && !password.chars().any(|c| c.is_ascii_lowercase()) {
        return refused(
            "M_PASSWORD_NO_LOWERCASE",
            "The password must include at least one lowercase letter".to_owned(),
        );
    }
    Ok(())
}

/// The hashing thread's working memory, reused by the hashes of a burst (`next_job` gives it
/// back when the burst is over). It lives on this one thread: allocated on many threads, each
/// thread's allocator arena kept a copy (docs/benchmarks-results.md).
struct Hasher {
    blocks: Vec<Block>,
}

impl Hasher {
    fn memory(&mut self, params: &Params) -> &mut [Block] {
        let n = params.block_count();
        if self.blocks.len() < n {
            self.blocks.resize(n, Block::default());
        }
        &mut self.blocks[..n]
    }

    /// A PHC string `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    fn hash(&mut self, password: &[u8]) -> std::result::Result<String, String> {
        let params = Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).map_err(|e| e.to_string())?;
        let salt = SaltString::generate(&mut OsRng);
        let mut raw_salt = [0u8; 64];
        let raw_salt = salt.as_salt().decode_b64(&mut raw_salt).map_err(|e| e.to_string())?;
        let mut out = [0u8; OUTPUT_LEN];
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        argon
            .hash_password_into_with_memory(password, raw_salt, &mut out, self.memory(&params))
            .map_err(|e| e.to_string())?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: (&params).try_into().map_err(|e: argon2::password_hash::Error| e.to_string())?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
        };
        Ok(phc.to_string())
    }

    /// Recomputes the stored hash's parameters and compares in constant time (`Output`'s
    /// equality); anything unparseable never matches.
    fn verify(&mut self, password: &[u8], stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else { return false };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else { return false };
        let mut raw_salt = [0u8; 64];
        let Ok(raw_salt) = salt.decode_b64(&mut raw_salt) else { return false };
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let ok = argon.hash_password_into_with_memory(password, raw_salt, &mut out, self.memory(&params)).is_ok();
        // A hash with bigger parameters than ours (an older setting) needed a bigger buffer:
        // give it back rather than keep it resident.
        let ours = Params::new(M_COST_KIB, T_COST, P_COST, None).map(|p| p.block_count()).unwrap_or(0);
        if self.blocks.len() > ours {
            self.blocks.truncate(ours);
            self.blocks.shrink_to_fit();
        }
        ok && Output::new(&out).is_ok_and(|o| o == expected)
    }
}

type Job = Box<dyn FnOnce(&mut Hasher) + Send>;

/// Hashes waiting at most: a flood of logins gets 429 instead of a queue (and memory) that
/// grows with it. At tens of milliseconds a hash, a full queue is a couple of seconds of work.
const QUEUE: usize = 64;

/// The hashing thread, started on first use and shared by every server in the process. One
/// thread bounds the CPU a burst of logins can take and the memory to one buffer.
fn hasher() -> &'static std::sync::mpsc::SyncSender<Job> {
    static HASHER: std::sync::OnceLock<std::sync::mpsc::SyncSender<Job>> = std::sync::OnceLock::new();
    HASHER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("hearth-password-hashing".into())
            .spawn(move || {
                let mut state = Hasher { blocks: Vec::new() };
                while let Some(job) = next_job(&rx, &mut state) {
                    job(&mut state);
                }
            })
            .expect("spawn the password hashing thread");
        tx
    })
}

/// The next hash to do. When none is waiting, the working memory is given back first: a burst
/// of logins reuses one buffer, and an idle server does not keep 7 MiB for the next login
/// (allocating it again costs about a millisecond, against tens for the hash itself).
fn next_job(rx: &std::sync::mpsc::Receiver<Job>, state: &mut Hasher) -> Option<Job> {
    if let Ok(job) = rx.try_recv() {
        return Some(job);
    }
    state.blocks = Vec::new();
    rx.recv().ok()
}

/// Runs `f` on the hashing thread and awaits its result.
async fn on_hashing_thread<T: Send + 'static>(f: impl FnOnce(&mut Hasher) -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move |h: &mut Hasher| {
        let _ = tx.send(f(h));
    });
    match hasher().try_send(job) {
        Ok(()) => {}
        Err(std::sync::mpsc::TrySendError::Full(_)) => {
            tracing::warn!("password checks are queueing up; refusing more for a moment");
            return Err(Error::limit_exceeded(std::time::Duration::from_secs(1)));
        }
        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
            return Err(Error::internal("the password hashing thread stopped"));
        }
    }
    rx.await.map_err(|_| Error::internal("the password hashing thread dropped a job"))
}

pub async fn hash(password: String) -> Result<String> {
    check_length(&password)?;
    on_hashing_thread(move |h| h.hash(password.as_bytes())).await?.map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// Verifies a password against a stored PHC string.
pub async fn verify(password: String, stored: String) -> Result<bool> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    on_hashing_thread(move |h| h.verify(password.as_bytes(), &stored)).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_refuses_with_synapses_codes_in_synapses_order() {
        use super::{PasswordPolicy, check_policy};
        let code = |p: &PasswordPolicy, pw: &str| check_policy(p, pw).err().map(|e| e.errcode());
        let default = PasswordPolicy::default();
        assert_eq!(code(&default, "").as_deref(), Some("M_PASSWORD_TOO_SHORT"));
        assert_eq!(code(&default, "1234567").as_deref(), Some("M_PASSWORD_TOO_SHORT"));
        assert_eq!(code(&default, "12345678"), None);
        // Characters, not bytes: eight letters with accents are eight.
        assert_eq!(code(&default, "éééééééé"), None);
        assert_eq!(code(&default, "ééééééé").as_deref(), Some("M_PASSWORD_TOO_SHORT"));
        let strict = PasswordPolicy {
            minimum_length: 4,
            require_digit: true,
            require_symbol: true,
            require_uppercase: true,
            require_lowercase: true,
            ..default.clone()
        };
        assert_eq!(code(&strict, "abcd").as_deref(), Some("M_PASSWORD_NO_DIGIT"));
        assert_eq!(code(&strict, "abc1").as_deref(), Some("M_PASSWORD_NO_SYMBOL"));
        assert_eq!(code(&strict, "ab1!").as_deref(), Some("M_PASSWORD_NO_UPPERCASE"));
        assert_eq!(code(&strict, "AB1!").as_deref(), Some("M_PASSWORD_NO_LOWERCASE"));
        assert_eq!(code(&strict, "Ab1!"), None);
        let off = PasswordPolicy { enabled: false, ..default };
        assert_eq!(code(&off, "x"), None);
        assert_eq!(code(&off, &"x".repeat(513)).as_deref(), Some("M_INVALID_PARAM"), "the length cap stays");
    }

    /// A burst of hashes shares one buffer; once no hash waits, the buffer is given back.
    #[test]
    fn the_working_memory_lasts_for_a_burst_only() {
        use super::{Hasher, Job, M_COST_KIB, P_COST, T_COST, next_job};
        let params = argon2::Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(4);
        let (seen_tx, seen) = std::sync::mpsc::channel::<(usize, usize)>();
        for _ in 0..2 {
            let (seen_tx, params) = (seen_tx.clone(), params.clone());
            let job: Job = Box::new(move |h: &mut Hasher| {
                let at = h.memory(&params).as_ptr() as usize;
                seen_tx.send((h.blocks.capacity(), at)).unwrap();
            });
            tx.send(job).unwrap();
        }
        drop(tx);
        let mut state = Hasher { blocks: Vec::new() };
        while let Some(job) = next_job(&rx, &mut state) {
            job(&mut state);
        }
        let (first, second) = (seen.recv().unwrap(), seen.recv().unwrap());
        assert_eq!(first.0, params.block_count());
        assert_eq!(first, second, "the second hash of the burst reused the first one's buffer");
        assert_eq!(state.blocks.capacity(), 0, "the buffer outlived the burst");
    }

    #[tokio::test]
    async fn hash_verifies_only_the_right_password() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert!(super::verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!super::verify("wrong".into(), h).await.unwrap());
        assert!(!super::verify("x".into(), "garbage".into()).await.unwrap());
    }

    /// Hashes made by the argon2 crate's own PHC path (as older databases hold) still verify.
    #[tokio::test]
    async fn hashes_from_the_reference_implementation_verify() {
        use argon2::{PasswordHasher, password_hash::SaltString};
        let params = argon2::Params::new(super::M_COST_KIB, super::T_COST, super::P_COST, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let phc = a.hash_password(b"secret", &salt).unwrap().to_string();
        assert!(super::verify("secret".into(), phc.clone()).await.unwrap());
        assert!(!super::verify("Secret".into(), phc).await.unwrap());
        // The parameters earlier Hearth builds used (19 MiB, t=2) still verify.
        let old = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(19 * 1024, 2, 1, None).unwrap(),
        );
        let phc = old.hash_password(b"secret", &salt).unwrap().to_string();
        assert!(phc.contains("m=19456,t=2"), "{phc}");
        assert!(super::verify("secret".into(), phc.clone()).await.unwrap());
        assert!(!super::verify("Secret".into(), phc).await.unwrap());
    }
}
