//! The admin key: the bearer token of the admin listener (setup wizard, dashboard, Hearth's admin
//! API). The key lives in the secret store, so the dashboard link can be printed again
//! (`hearth admin-url`); its SHA-256 lives in the database, and every admin request is checked
//! against that, so a key replaced from the dashboard or by `hearth rotate-admin-key` (another
//! process) stops working at once.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{
    error::{Error, Result},
    secrets::Secrets,
    storage::{self, Db},
};

pub(crate) const SECRET_NAME: &str = "admin_token";

pub struct AdminKey {
    db: Db,
    secrets: Arc<Secrets>,
}

fn new_key() -> Vec<u8> {
    super::tokens::random_alphanumeric(32).into_bytes()
}

impl AdminKey {
    pub fn new(db: Db, secrets: Arc<Secrets>) -> Self {
        Self { db, secrets }
    }

    /// The key, made on first use; true when it was made just now (the first start: the only
    /// time the headless server prints it unasked). The database learns its hash.
    pub async fn load_or_create(&self) -> Result<(String, bool)> {
        let secrets = self.secrets.clone();
        let (key, created) = tokio::task::spawn_blocking(move || secrets.get_or_create_new(SECRET_NAME, new_key))
            .await
            .map_err(Error::internal)??;
        let key = String::from_utf8(key).map_err(Error::internal)?;
        let hash = Sha256::digest(key.as_bytes()).to_vec();
        if storage::admin_key::get(&self.db.read).await?.as_deref() != Some(hash.as_slice()) {
            storage::admin_key::set(&self.db.write, &hash).await?;
        }
        Ok((key, created))
    }

    /// The current key, from the secret store.
    pub fn current(&self) -> Result<String> {
        let key = self.secrets.get(SECRET_NAME)?.ok_or_else(|| Error::internal("the admin key is missing"))?;
        String::from_utf8(key).map_err(Error::internal)
    }

    /// Whether `presented` is the current key (compared in constant time).
    pub async fn verify(&self, presented: &str) -> Result<bool> {
        let Some(stored) = storage::admin_key::get(&self.db.read).await? else { return Ok(false) };
        let hash = Sha256::digest(presented.as_bytes());
        Ok(bool::from(hash.as_slice().ct_eq(&stored)))
    }

    /// Replaces the key; the old one stops working now. Returns the new key.
    pub async fn rotate(&self) -> Result<String> {
        let key = String::from_utf8(new_key()).map_err(Error::internal)?;
        let secrets = self.secrets.clone();
        let stored = key.clone();
        tokio::task::spawn_blocking(move || secrets.set(SECRET_NAME, stored.as_bytes()))
            .await
            .map_err(Error::internal)??;
        storage::admin_key::set(&self.db.write, &Sha256::digest(key.as_bytes())).await?;
        tracing::info!("the admin key was replaced");
        Ok(key)
    }
}
