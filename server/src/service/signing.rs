//! The server's ed25519 signing key: created once, kept in the secret store, and used to sign
//! the key document (`/_matrix/key/v2/server`) now and every PDU later.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedServerName,
    signatures::{Ed25519KeyPair, sign_json},
};

use crate::secrets::Secrets;

pub(crate) const SECRET_NAME: &str = "signing_key";

pub struct ServerKeys {
    pub server_name: OwnedServerName,
    pair: Ed25519KeyPair,
    /// "ed25519:a_XXXX"
    pub key_id: String,
    /// Unpadded base64 of the public key, as published.
    pub public_key: String,
}

impl ServerKeys {
    /// Loads the key, generating it on first run. Stored as "ed25519 <version> <base64 PKCS#8>",
    /// a readable line like Synapse's signing key file.
    pub fn load_or_create(secrets: &Secrets, server_name: OwnedServerName) -> anyhow::Result<Arc<ServerKeys>> {
        let raw = secrets.get_or_create(SECRET_NAME, || {
            let version = format!("a_{}", super::tokens::random_alphanumeric(4));
            let der = Ed25519KeyPair::generate();
            format!("ed25519 {version} {}", STANDARD_NO_PAD.encode(der.as_slice())).into_bytes()
        })?;
        let text = String::from_utf8(raw)?;
        let mut parts = text.split_whitespace();
        let (Some("ed25519"), Some(version), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("the stored signing key is not in the expected format");
        };
        let der = STANDARD_NO_PAD.decode(b64.trim_end_matches('='))?;
        let pair = Ed25519KeyPair::from_der(&der, version.to_owned())
            .map_err(|e| anyhow::anyhow!("stored signing key does not parse: {e}"))?;
        let public_key = STANDARD_NO_PAD.encode(pair.public_key());
        Ok(Arc::new(ServerKeys { server_name, key_id: format!("ed25519:{version}"), public_key, pair }))
    }

    /// The key pair, for hashing and signing events.
    pub fn pair(&self) -> &Ed25519KeyPair {
        &self.pair
    }

    /// Adds this server's signature to `object`.
    pub fn sign(&self, object: &mut CanonicalJsonObject) -> anyhow::Result<()> {
        sign_json(self.server_name.as_str(), &self.pair, object)?;
        Ok(())
    }

    /// The signed key document for `GET /_matrix/key/v2/server`.
    pub fn key_document(&self, valid_until_ts: u64) -> anyhow::Result<CanonicalJsonObject> {
        let doc = serde_json::json!({
            "server_name": self.server_name,
            "valid_until_ts": valid_until_ts,
            "verify_keys": { &self.key_id: { "key": self.public_key } },
            "old_verify_keys": {},
        });
        let CanonicalJsonValue::Object(mut obj) = CanonicalJsonValue::try_from(doc)? else {
            anyhow::bail!("key document is not an object");
        };
        self.sign(&mut obj)?;
        Ok(obj)
    }
}
