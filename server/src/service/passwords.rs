//! Password hashing with argon2id at OWASP's recommended parameters (m = 19 MiB, t = 2, p = 1).
//! Hashing is CPU-heavy, so it runs on the blocking pool, never on a runtime worker.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

use crate::error::{Error, Result};

/// OWASP Password Storage Cheat Sheet, argon2id option 2: 19 MiB, 2 iterations, 1 lane.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// Longest password accepted; argon2 copes with more, but a megabyte "password" is an attack.
pub const MAX_PASSWORD_BYTES: usize = 512;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid params"))
}

pub fn check_length(password: &str) -> Result<()> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid_param(format!("Password is too long (at most {MAX_PASSWORD_BYTES} bytes)")));
    }
    Ok(())
}

pub async fn hash(password: String) -> Result<String> {
    check_length(&password)?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| Error::internal(format!("hashing task: {e}")))?
    .map_err(|e| Error::internal(format!("argon2: {e}")))
}

/// Verifies in constant time (argon2's comparison); an unparseable stored hash never matches.
pub async fn verify(password: String, stored: String) -> Result<bool> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else { return false };
        argon2().verify_password(password.as_bytes(), &parsed).is_ok()
    })
    .await
    .map_err(|e| Error::internal(format!("hashing task: {e}")))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn hash_verifies_only_the_right_password() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(super::verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!super::verify("wrong".into(), h).await.unwrap());
        assert!(!super::verify("x".into(), "garbage".into()).await.unwrap());
    }
}
