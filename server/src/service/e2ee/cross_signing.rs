//! Cross-signing (spec: client-server API, "Cross-signing"): a user's master, self-signing and
//! user-signing public keys, and the signatures made with them (or with a device, on the master
//! key). The server checks that every signature it stores verifies and that the signed object is
//! the one it holds, then hands signatures out merged into the keys they sign.

use std::collections::BTreeMap;

use ruma::{CanonicalJsonObject, CanonicalJsonValue};
use serde_json::{Map, Value, json};

use super::{E2ee, verify_signed};
use crate::{
    error::{Error, Result},
    storage,
};

const MASTER: &str = "master";
const SELF_SIGNING: &str = "self_signing";
const USER_SIGNING: &str = "user_signing";
/// How long a signature upload waits for another server's user's master key.
const REMOTE_KEY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A checked cross-signing key: its JSON and its one ed25519 public key.
struct Checked {
    text: String,
    public: String,
}

/// Reads a CrossSigningKey: for `user`, with `usage` among its usages, holding exactly one
/// `ed25519:<public key>` entry.
fn check_key(text: &str, user: &str, usage: &str) -> Result<(CanonicalJsonObject, Checked)> {
    let obj: CanonicalJsonObject =
        serde_json::from_str(text).map_err(|e| Error::bad_json(format!("{usage} key: {e}")))?;
    if obj.get("user_id") != Some(&CanonicalJsonValue::String(user.to_owned())) {
        return Err(Error::invalid_param(format!("The {usage} key must be for {user}")));
    }
    let usages_ok = match obj.get("usage") {
        Some(CanonicalJsonValue::Array(u)) => u.iter().any(|v| v == &CanonicalJsonValue::String(usage.to_owned())),
        _ => false,
    };
    if !usages_ok {
        return Err(Error::invalid_param(format!("The {usage} key must list `{usage}` in its usage")));
    }
    let public = match obj.get("keys") {
        Some(CanonicalJsonValue::Object(keys)) if keys.len() == 1 => match keys.iter().next() {
            Some((id, CanonicalJsonValue::String(k))) if id.strip_prefix("ed25519:") == Some(k.as_str()) => k.clone(),
            _ => return Err(Error::invalid_param(format!("The {usage} key must hold one ed25519:<key> entry"))),
        },
        _ => return Err(Error::invalid_param(format!("The {usage} key must hold one ed25519:<key> entry"))),
    };
    let text = serde_json::to_string(&obj).map_err(Error::internal)?;
    Ok((obj, Checked { text, public }))
}

/// The object without `signatures` and `unsigned`: what a signature covers.
fn signed_part(obj: &CanonicalJsonObject) -> CanonicalJsonObject {
    let mut o = obj.clone();
    o.remove("signatures");
    o.remove("unsigned");
    o
}

/// The signatures `signer` made on `obj`: key ID -> signature.
fn signatures_by(obj: &CanonicalJsonObject, signer: &str) -> Vec<(String, String)> {
    match obj.get("signatures") {
        Some(CanonicalJsonValue::Object(s)) => match s.get(signer) {
            Some(CanonicalJsonValue::Object(mine)) => mine
                .iter()
                .filter_map(|(k, v)| match v {
                    CanonicalJsonValue::String(sig) => Some((k.clone(), sig.clone())),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// What a cross-signing key upload does, which decides whether it needs a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningUpload {
    /// Every key sent is already stored (or none was sent): nothing to do, no password asked,
    /// as Synapse answers Element's empty probe.
    Unchanged,
    /// No identity yet: the first upload needs no password (MSC3967, spec v1.11).
    FirstSetup,
    /// A stored key would be replaced: the user must prove it is them.
    Replace,
}

impl E2ee {
    /// What uploading these keys would do. Only keys present in the upload count: a key stored
    /// but not sent is kept.
    pub async fn signing_upload_kind(
        &self,
        user: &str,
        master: Option<&str>,
        self_signing: Option<&str>,
        user_signing: Option<&str>,
    ) -> Result<SigningUpload> {
        let stored_master = storage::device_keys::cross_signing_key(&self.db.read, user, MASTER).await?;
        let set_up = stored_master.is_some();
        for (new, kind) in [(master, MASTER), (self_signing, SELF_SIGNING), (user_signing, USER_SIGNING)] {
            let Some(new) = new else { continue };
            let stored = match kind {
                MASTER => stored_master.clone(),
                _ => storage::device_keys::cross_signing_key(&self.db.read, user, kind).await?,
            };
            let same = stored.is_some_and(|s| {
                let a: Option<CanonicalJsonObject> = serde_json::from_str(new).ok();
                let b: Option<CanonicalJsonObject> = serde_json::from_str(&s).ok();
                a.is_some() && a == b
            });
            if !same {
                return Ok(if set_up { SigningUpload::Replace } else { SigningUpload::FirstSetup });
            }
        }
        Ok(SigningUpload::Unchanged)
    }

    /// POST /keys/device_signing/upload (after any authentication): the self-signing and
    /// user-signing keys must be signed by the master key (uploaded now or stored).
    pub async fn upload_signing_keys(
        &self,
        user: &str,
        master: Option<&str>,
        self_signing: Option<&str>,
        user_signing: Option<&str>,
    ) -> Result<()> {
        let master = match master {
            Some(text) => Some(check_key(text, user, MASTER)?.1),
            None => None,
        };
        let master_public = match &master {
            Some(m) => m.public.clone(),
            None => match storage::device_keys::cross_signing_key(&self.db.read, user, MASTER).await? {
                Some(text) => check_key(&text, user, MASTER)?.1.public,
                None => return Err(Error::invalid_param("Upload a master key first")),
            },
        };
        let mut others = Vec::new();
        for (kind, text) in [(SELF_SIGNING, self_signing), (USER_SIGNING, user_signing)] {
            let Some(text) = text else { continue };
            let (obj, checked) = check_key(text, user, kind)?;
            verify_signed(&obj, user, &master_public, &master_public)
                .map_err(|e| Error::invalid_param(format!("The {kind} key is not signed by the master key: {e}")))?;
            others.push((kind, checked));
        }
        let mut tx = self.db.begin_write().await?;
        if let Some(m) = &master {
            let old = storage::device_keys::cross_signing_key(&mut *tx, user, MASTER).await?;
            if old.as_deref() != Some(m.text.as_str()) {
                // A new identity: what the old keys signed no longer counts.
                storage::device_keys::delete_signatures_by(&mut *tx, user).await?;
            }
            storage::device_keys::put_cross_signing_key(&mut *tx, user, MASTER, &m.text).await?;
        }
        for (kind, k) in &others {
            storage::device_keys::put_cross_signing_key(&mut *tx, user, kind, &k.text).await?;
        }
        storage::device_keys::device_list_changed(&mut *tx, user, None).await?;
        tx.commit().await?;
        self.device_lists.refresh(&self.db).await?;
        Ok(())
    }

    /// POST /keys/signatures/upload: `signed` is user -> key ID -> the signed key. Stores each
    /// signature that verifies and is made with the right key; answers the failures per key.
    pub async fn upload_signatures(
        &self,
        me: &str,
        signed: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> Result<Map<String, Value>> {
        let mut failures = Map::new();
        let mut fail = |user: &str, key: &str, code: &str, why: String| {
            let entry = failures.entry(user.to_owned()).or_insert_with(|| json!({}));
            entry[key] = json!({ "errcode": code, "error": why });
        };
        let my_self_signing = self.cross_public(me, SELF_SIGNING).await?;
        let my_user_signing = self.cross_public(me, USER_SIGNING).await?;
        let mut stored = Vec::new();
        for (target_user, keys) in signed {
            for (key_id, text) in keys {
                let Ok(obj) = serde_json::from_str::<CanonicalJsonObject>(text) else {
                    fail(target_user, key_id, "M_BAD_JSON", "The signed object is not JSON".to_owned());
                    continue;
                };
                // What is signed, and with which of the signer's keys it must be signed.
                let target: Option<(String, Option<String>)> = if target_user == me {
                    let device =
                        storage::device_keys::device_keys(&self.db.read, me, std::slice::from_ref(key_id)).await?;
                    if let Some((_, text, _)) = device.first() {
                        Some((text.clone(), my_self_signing.clone()))
                    } else if self.cross_public(me, MASTER).await?.as_deref() == Some(key_id.as_str()) {
                        // The master key, signed by one of the user's devices.
                        let master = storage::device_keys::cross_signing_key(&self.db.read, me, MASTER)
                            .await?
                            .unwrap_or_default();
                        let signer = signatures_by(&obj, me)
                            .into_iter()
                            .filter_map(|(k, _)| k.strip_prefix("ed25519:").map(str::to_owned))
                            .find(|d| d != key_id);
                        let device_key = match signer {
                            Some(d) => storage::device_keys::device_keys(&self.db.read, me, std::slice::from_ref(&d))
                                .await?
                                .first()
                                .and_then(|(_, t, _)| serde_json::from_str::<Value>(t).ok())
                                .and_then(|v| v["keys"][format!("ed25519:{d}")].as_str().map(|k| (d, k.to_owned()))),
                            None => None,
                        };
                        match device_key {
                            Some((device, key)) => {
                                self.check_and_collect(
                                    &obj,
                                    &master,
                                    me,
                                    target_user,
                                    key_id,
                                    &device,
                                    &key,
                                    &mut stored,
                                    &mut fail,
                                );
                                continue;
                            }
                            None => {
                                fail(
                                    target_user,
                                    key_id,
                                    "M_INVALID_SIGNATURE",
                                    "Not signed by one of your devices".to_owned(),
                                );
                                continue;
                            }
                        }
                    } else {
                        None
                    }
                } else if !self.is_local(target_user) {
                    // Another server's user, verified here: their master key as their server
                    // gives it; the signature stays here, for the signer (spec: "Cross-signing").
                    self.remote_master_key(me, target_user)
                        .await?
                        .filter(|m| check_key(m, target_user, MASTER).is_ok_and(|(_, c)| c.public == *key_id))
                        .map(|master| (master, my_user_signing.clone()))
                } else if self.cross_public(target_user, MASTER).await?.as_deref() == Some(key_id.as_str()) {
                    let master = storage::device_keys::cross_signing_key(&self.db.read, target_user, MASTER)
                        .await?
                        .unwrap_or_default();
                    Some((master, my_user_signing.clone()))
                } else {
                    None
                };
                let Some((original, signing_key)) = target else {
                    fail(target_user, key_id, "M_NOT_FOUND", "No such device or cross-signing key".to_owned());
                    continue;
                };
                let Some(signing_key) = signing_key else {
                    fail(target_user, key_id, "M_INVALID_SIGNATURE", "Upload your cross-signing keys first".to_owned());
                    continue;
                };
                self.check_and_collect(
                    &obj,
                    &original,
                    me,
                    target_user,
                    key_id,
                    &signing_key,
                    &signing_key,
                    &mut stored,
                    &mut fail,
                );
            }
        }
        if !stored.is_empty() {
            let mut tx = self.db.begin_write().await?;
            // A signed device of the signer is a change of that device (other servers are
            // sent its keys again); a signed master key, of the user's cross-signing keys.
            let my_master = self.cross_public(me, MASTER).await?;
            let mut targets: Vec<(&String, Option<&str>)> = Vec::new();
            for (target_user, target_key, signer_key_id, signature) in &stored {
                storage::device_keys::put_signature(&mut *tx, target_user, target_key, me, signer_key_id, signature)
                    .await?;
                let device = (target_user == me && my_master.as_deref() != Some(target_key.as_str()))
                    .then_some(target_key.as_str());
                if !targets.contains(&(target_user, device)) {
                    targets.push((target_user, device));
                }
            }
            for (t, device) in targets {
                storage::device_keys::device_list_changed(&mut *tx, t, device).await?;
            }
            tx.commit().await?;
            self.device_lists.refresh(&self.db).await?;
        }
        Ok(failures)
    }

    /// Checks that `obj` is `original` (apart from signatures) and carries a verifying
    /// signature by `me`'s key `ed25519:<key_name>`; collects it for storing, else records the
    /// failure.
    #[allow(clippy::too_many_arguments)]
    fn check_and_collect(
        &self,
        obj: &CanonicalJsonObject,
        original: &str,
        me: &str,
        target_user: &str,
        key_id: &str,
        key_name: &str,
        public: &str,
        stored: &mut Vec<(String, String, String, String)>,
        fail: &mut impl FnMut(&str, &str, &str, String),
    ) {
        let Ok(original) = serde_json::from_str::<CanonicalJsonObject>(original) else {
            fail(target_user, key_id, "M_UNKNOWN", "The stored key does not parse".to_owned());
            return;
        };
        if signed_part(&original) != signed_part(obj) {
            fail(
                target_user,
                key_id,
                "M_INVALID_SIGNATURE",
                "The signed object is not the key this server holds".to_owned(),
            );
            return;
        }
        let signer_key_id = format!("ed25519:{key_name}");
        let Some((_, signature)) = signatures_by(obj, me).into_iter().find(|(k, _)| *k == signer_key_id) else {
            fail(target_user, key_id, "M_INVALID_SIGNATURE", format!("No signature by {signer_key_id}"));
            return;
        };
        if let Err(e) = verify_signed(obj, me, key_name, public) {
            fail(target_user, key_id, "M_INVALID_SIGNATURE", e);
            return;
        }
        stored.push((target_user.to_owned(), key_id.to_owned(), signer_key_id, signature));
    }

    /// The master key of another server's user (JSON text), as /keys/query finds it.
    async fn remote_master_key(&self, me: &str, user: &str) -> Result<Option<String>> {
        let asked = BTreeMap::from([(user.to_owned(), Vec::new())]);
        let found = self.query_keys(me, &asked, REMOTE_KEY_TIMEOUT).await?;
        Ok(found.cross_signing.get(MASTER).and_then(|m| m.get(user)).map(Value::to_string))
    }

    /// Merges into `key` (another server's user's master key) the signatures `signer` made of
    /// it here.
    pub(super) async fn merge_signatures_by(&self, signer: &str, user: &str, key: &mut Value) -> Result<()> {
        let Some(public) = check_key(&key.to_string(), user, MASTER).ok().map(|(_, c)| c.public) else {
            return Ok(());
        };
        for (target, by, key_id, sig) in storage::device_keys::signatures_of(&self.db.read, user).await? {
            if target == public && by == signer {
                key["signatures"][by.as_str()][key_id.as_str()] = json!(sig);
            }
        }
        Ok(())
    }

    /// The public key of the user's cross-signing key of this type.
    async fn cross_public(&self, user: &str, kind: &str) -> Result<Option<String>> {
        Ok(match storage::device_keys::cross_signing_key(&self.db.read, user, kind).await? {
            Some(text) => check_key(&text, user, kind).ok().map(|(_, c)| c.public),
            None => None,
        })
    }

    /// The cross-signing keys of `user` for /keys/query by `requester` (the user-signing key
    /// only to its owner), with uploaded signatures merged in. Also merges the signatures on
    /// the user's devices into `devices` (device ID -> keys).
    pub async fn cross_signing_for_query(
        &self,
        requester: &str,
        user: &str,
        devices: &mut Map<String, Value>,
    ) -> Result<BTreeMap<&'static str, Value>> {
        let signatures = storage::device_keys::signatures_of(&self.db.read, user).await?;
        let merge = |target: &str, keys: &mut Value| {
            for (t, signer, key_id, sig) in &signatures {
                // A signature by another user's user-signing key is that user's to see (spec:
                // "Cross-signing"), also when the asking party is another server.
                if t == target && (signer == user || signer == requester) {
                    keys["signatures"][signer.as_str()][key_id.as_str()] = json!(sig);
                }
            }
        };
        for (device, keys) in devices.iter_mut() {
            merge(device, keys);
        }
        let mut out = BTreeMap::new();
        for kind in [MASTER, SELF_SIGNING, USER_SIGNING] {
            if kind == USER_SIGNING && requester != user {
                continue;
            }
            if let Some(text) = storage::device_keys::cross_signing_key(&self.db.read, user, kind).await? {
                let mut key: Value = serde_json::from_str(&text).map_err(Error::internal)?;
                if let Some(public) = check_key(&text, user, kind).ok().map(|(_, c)| c.public) {
                    merge(&public, &mut key);
                }
                out.insert(kind, key);
            }
        }
        Ok(out)
    }
}
