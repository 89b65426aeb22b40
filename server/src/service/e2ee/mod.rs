//! The server's part of end-to-end encryption (spec: client-server API, "End-to-End
//! Encryption"): devices' public keys, one-time and fallback keys to claim, to-device messages
//! and device list changes. The server never holds a message key; it checks what it can (that
//! keys belong to the device that uploads them and are signed by it) and relays the rest.
//!
//! Two streams feed /sync: to-device messages (per device, deleted once acknowledged) and
//! device list changes (per user, kept). Their heads live here, in memory, next to the others.

use parking_lot::Mutex;
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, UserId, serde::Base64, signatures::PublicKeyMap};
use serde_json::{Map, Value, json};

mod cross_signing;
pub use cross_signing::SigningUpload;
mod dehydrated;
mod remote;

use hashlink::LruCache;

use super::{guarded::Guarded, notifier::Notifier};
use crate::{
    config::Config,
    error::{Error, Result},
    storage::{self, Db},
};

/// To-device messages per /sync response, at most; the rest follow in the next ones.
const TO_DEVICE_PER_SYNC: i64 = 100;
/// The largest content of one to-device message (the same limit as a room event: key shares
/// and verification messages are a few KiB).
const MAX_TO_DEVICE_CONTENT: usize = 65_536;

/// The head of the device list stream, shared with the accounts service, whose writes (logins,
/// logouts, device deletion and renaming) add to the stream through database triggers.
pub struct DeviceListHead {
    head: AtomicI64,
    notifier: Arc<Notifier>,
}

impl DeviceListHead {
    pub async fn load(db: &Db, notifier: Arc<Notifier>) -> Result<Arc<Self>> {
        let head = storage::device_keys::device_lists_head(&db.write).await?;
        Ok(Arc::new(Self { head: AtomicI64::new(head), notifier }))
    }

    pub fn get(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    /// After a write that may have changed devices: move to the stream's head and wake /sync.
    pub async fn refresh(&self, db: &Db) -> Result<()> {
        let head = storage::device_keys::device_lists_head(&db.write).await?;
        if self.head.fetch_max(head, Ordering::AcqRel) < head {
            self.notifier.notify();
        }
        Ok(())
    }
}

/// (user, device) -> (device list head when read, one-time key counts).
type CountsCache = LruCache<(String, String), (i64, Arc<KeyCounts>)>;

pub struct E2ee {
    db: Db,
    config: Arc<Config>,
    /// Other servers' users' keys are asked of their servers.
    federation: Arc<crate::service::federation::FederationClient>,
    /// Wakes the federation sender for to-device messages to other servers.
    outbox: Arc<crate::service::federation::outbox::EduOutbox>,
    notifier: Arc<Notifier>,
    to_device_head: AtomicI64,
    device_lists: Arc<DeviceListHead>,
    /// Devices that were handed to-device messages they have not acknowledged yet: their next
    /// /sync deletes what its token covers. `checked` holds the devices whose first /sync since
    /// start did the same (messages delivered before a restart are acknowledged then).
    unacked: Mutex<HashSet<(String, String)>>,
    checked: Mutex<HashSet<(String, String)>>,
    /// Each device's key counts, which every /sync reports and only uploads and claims change
    /// (the writes that move the generation).
    /// An entry also remembers the device list head it was read at: a device deleted and
    /// created again (same ID, no keys) moves that head.
    counts: Guarded<CountsCache>,
}

/// Unclaimed one-time keys per algorithm, and the algorithms of unused fallback keys.
pub type KeyCounts = (BTreeMap<String, i64>, Vec<String>);

/// Devices whose key counts are kept in memory.
const COUNTS_CACHE: usize = 1024;

/// What a user's devices look like to someone querying their keys.
pub struct Queried {
    pub device_keys: Map<String, Value>,
    pub failures: Map<String, Value>,
    /// Cross-signing keys by type ("master", "self_signing", "user_signing"), then user.
    pub cross_signing: BTreeMap<&'static str, Map<String, Value>>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid_param(msg)
}

impl E2ee {
    pub async fn new(
        db: Db,
        config: Arc<Config>,
        notifier: Arc<Notifier>,
        device_lists: Arc<DeviceListHead>,
        federation: Arc<crate::service::federation::FederationClient>,
        outbox: Arc<crate::service::federation::outbox::EduOutbox>,
    ) -> Result<Self> {
        let to_device_head = storage::to_device::head(&db.write).await?;
        Ok(Self {
            db,
            config,
            federation,
            outbox,
            notifier,
            to_device_head: AtomicI64::new(to_device_head),
            device_lists,
            unacked: Mutex::default(),
            checked: Mutex::default(),
            counts: Guarded::new(LruCache::new(COUNTS_CACHE)),
        })
    }

    pub fn to_device_head(&self) -> i64 {
        self.to_device_head.load(Ordering::Acquire)
    }

    pub fn device_lists_head(&self) -> i64 {
        self.device_lists.get()
    }

    fn is_local(&self, user: &str) -> bool {
        UserId::parse(user).is_ok_and(|u| u.server_name() == self.config.server_name)
    }

    /// POST /keys/upload: the device's identity keys, one-time keys and fallback keys, all
    /// checked before anything is stored. Answers the unclaimed one-time key counts.
    ///
    /// Signatures are not verified here: other devices verify them before trusting a key (that
    /// is where the security lies), the spec asks no more of the server, and Synapse accepts
    /// what it cannot verify; refusing would only break clients that sign in ways we do not
    /// know. The shape is checked, and keys must be the uploading device's own.
    pub async fn upload_keys(
        &self,
        user: &str,
        device: &str,
        device_keys: Option<&str>,
        one_time_keys: &[(String, String)],
        fallback_keys: &[(String, String)],
    ) -> Result<BTreeMap<String, i64>> {
        let device_keys = device_keys.map(|text| check_device_keys(text, user, device)).transpose()?;
        let mut otks = Vec::new();
        for (id, key) in one_time_keys {
            let (algorithm, key) = check_one_time_key(id, key)?;
            // Spec: a key ID already used for different key content is an error.
            if let Some(old) = storage::device_keys::one_time_key(&self.db.write, user, device, &algorithm, id).await?
                && old != key
            {
                return Err(invalid(format!("One-time key {id} already exists with different content")));
            }
            otks.push((algorithm, id.clone(), key));
        }
        let mut fallbacks = Vec::new();
        for (id, key) in fallback_keys {
            let (algorithm, key) = check_one_time_key(id, key)?;
            fallbacks.push((algorithm, id.clone(), key));
        }

        let mut tx = self.db.begin_write().await?;
        let mut changed = false;
        if let Some(text) = &device_keys {
            changed = storage::device_keys::put_device_keys(&mut *tx, user, device, text).await?;
            if changed {
                storage::device_keys::device_list_changed(&mut *tx, user, Some(device)).await?;
            }
        }
        if !otks.is_empty() {
            storage::device_keys::add_one_time_keys(&mut *tx, user, device, &otks).await?;
        }
        for (algorithm, id, key) in &fallbacks {
            storage::device_keys::put_fallback_key(&mut *tx, user, device, algorithm, id, key).await?;
        }
        let (counts, _) = storage::device_keys::key_counts(&mut *tx, user, device).await?;
        tx.commit().await?;
        self.forget_counts(user, device);
        if changed {
            self.device_lists.refresh(&self.db).await?;
        }
        Ok(counts)
    }

    /// POST /keys/query: the device keys of the requested users (all their devices for an empty
    /// list). Other servers' users are asked of their servers (all at once, each within
    /// `timeout`); a server that does not answer is reported in `failures`.
    pub async fn query_keys(
        &self,
        requester: &str,
        requested: &BTreeMap<String, Vec<String>>,
        timeout: std::time::Duration,
    ) -> Result<Queried> {
        let mut out = Queried { device_keys: Map::new(), failures: Map::new(), cross_signing: BTreeMap::new() };
        let mut remote: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (user, devices) in requested {
            if !self.is_local(user) {
                if let Some((_, server)) = user.split_once(':') {
                    remote.entry(server.to_owned()).or_default().insert(user.clone(), devices.clone());
                }
                continue;
            }
            let (found, cross) = self.local_keys(requester, user, devices).await?;
            for (kind, key) in cross {
                out.cross_signing.entry(kind).or_default().insert(user.clone(), key);
            }
            out.device_keys.insert(user.clone(), Value::Object(found));
        }
        if !remote.is_empty() {
            self.query_remote_keys(requester, remote, timeout, &mut out).await;
        }
        Ok(out)
    }

    /// A local user's devices (those asked for, or all) with their keys and the signatures
    /// `requester` may see, and their cross-signing keys.
    async fn local_keys(
        &self,
        requester: &str,
        user: &str,
        devices: &[String],
    ) -> Result<(Map<String, Value>, BTreeMap<&'static str, Value>)> {
        let mut found = Map::new();
        for (device, text, display_name) in storage::device_keys::device_keys(&self.db.read, user, devices).await? {
            let mut keys: Value = serde_json::from_str(&text).map_err(Error::internal)?;
            if let Some(name) = display_name {
                keys["unsigned"] = json!({ "device_display_name": name });
            }
            found.insert(device, keys);
        }
        let cross = self.cross_signing_for_query(requester, user, &mut found).await?;
        Ok((found, cross))
    }

    /// POST /keys/claim: one one-time key per requested device and algorithm (else its fallback
    /// key). Devices without either are left out, as the spec says. Other servers' devices are
    /// claimed from their servers.
    pub async fn claim_keys(
        &self,
        requested: &BTreeMap<String, BTreeMap<String, String>>,
        timeout: std::time::Duration,
    ) -> Result<(Map<String, Value>, Map<String, Value>)> {
        let mut keys = Map::new();
        let mut failures = Map::new();
        let mut remote: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> = BTreeMap::new();
        let mut conn = self.db.write.acquire().await?;
        for (user, devices) in requested {
            if !self.is_local(user) {
                if let Some((_, server)) = user.split_once(':') {
                    remote.entry(server.to_owned()).or_default().insert(user.clone(), devices.clone());
                }
                continue;
            }
            let mut per_device = Map::new();
            for (device, algorithm) in devices {
                let claimed = storage::device_keys::claim(&mut conn, user, device, algorithm).await?;
                self.forget_counts(user, device);
                if let Some((id, key)) = claimed {
                    let key: Value = serde_json::from_str(&key).map_err(Error::internal)?;
                    per_device.insert(device.clone(), json!({ id: key }));
                }
            }
            keys.insert(user.clone(), Value::Object(per_device));
        }
        drop(conn);
        if !remote.is_empty() {
            self.claim_remote_keys(remote, timeout, &mut keys, &mut failures).await;
        }
        Ok((keys, failures))
    }

    /// PUT /sendToDevice: queues `messages` (user, device or `*`, content) for local devices;
    /// a repeated transaction ID of the sending device changes nothing.
    pub async fn send_to_device(
        &self,
        sender: &str,
        sender_device: &str,
        txn_id: &str,
        event_type: &str,
        messages: Vec<(String, String, Value)>,
    ) -> Result<()> {
        let mut rows = Vec::new();
        // Other servers' users: one m.direct_to_device EDU per server.
        let mut remote: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for (user, device, content) in messages {
            if !content.is_object() {
                return Err(Error::bad_json("Each to-device message must be a JSON object"));
            }
            let text = content.to_string();
            if text.len() > MAX_TO_DEVICE_CONTENT {
                return Err(Error::too_large(format!(
                    "A to-device message is larger than {MAX_TO_DEVICE_CONTENT} bytes"
                )));
            }
            if self.is_local(&user) {
                rows.push((user, device, text));
            } else if let Some((_, server)) = user.split_once(':') {
                let per_user = remote.entry(server.to_owned()).or_default();
                per_user.entry(user.clone()).or_insert_with(|| json!({}))[device] = content;
            }
        }
        let mut tx = self.db.begin_write().await?;
        if !storage::to_device::record_txn(&mut *tx, sender, sender_device, txn_id).await? {
            return Ok(());
        }
        let head = storage::to_device::queue(&mut *tx, sender, event_type, &rows).await?;
        for (server, messages) in &remote {
            let edu = json!({ "edu_type": "m.direct_to_device", "content": {
                "sender": sender,
                "type": event_type,
                // Unique per message: the receiving server delivers each once.
                "message_id": crate::service::tokens::random_alphanumeric(24),
                "messages": messages,
            }});
            storage::federation::queue_edus(&mut tx, server, &[edu.to_string()]).await?;
        }
        tx.commit().await?;
        for server in remote.keys() {
            self.outbox.queued_durable(server);
        }
        if head > 0 {
            self.to_device_head.fetch_max(head, Ordering::AcqRel);
            self.notifier.notify();
        }
        Ok(())
    }

    /// The device's to-device messages for a /sync whose token is at `since`: those up to it
    /// are acknowledged (deleted), the next ones up to `upto` are returned with the position
    /// the next token should carry.
    pub async fn to_device_for_sync(
        &self,
        user: &str,
        device: &str,
        since: i64,
        upto: i64,
    ) -> Result<(Vec<Value>, i64)> {
        let key = (user.to_owned(), device.to_owned());
        let delivered = self.unacked.lock().remove(&key);
        let first = self.checked.lock().insert(key.clone());
        if since > 0 && (delivered || first) {
            storage::to_device::delete_acked(&self.db.write, user, device, since).await?;
        }
        if upto <= since {
            return Ok((Vec::new(), upto));
        }
        // A message counted in the head is committed, so a reader's new snapshot has it.
        let rows = storage::to_device::pending(&self.db.read, user, device, since, upto, TO_DEVICE_PER_SYNC).await?;
        let next =
            if rows.len() as i64 == TO_DEVICE_PER_SYNC { rows.last().map_or(upto, |r| r.stream_id) } else { upto };
        if !rows.is_empty() {
            self.unacked.lock().insert(key);
        }
        Ok((rows.into_iter().map(to_device_event).collect(), next))
    }

    /// `device_one_time_keys_count` and `device_unused_fallback_key_types` for /sync.
    pub async fn key_counts(&self, user: &str, device: &str) -> Result<Arc<KeyCounts>> {
        let key = (user.to_owned(), device.to_owned());
        let devices_at = self.device_lists.get();
        if let Some((at, c)) = self.counts.with(|m| m.get(&key).cloned())
            && at == devices_at
        {
            return Ok(c);
        }
        let generation = self.counts.generation();
        let counts = Arc::new(storage::device_keys::key_counts(&self.db.read, user, device).await?);
        self.counts.fill(generation, |m| {
            m.insert(key, (devices_at, counts.clone()));
        });
        Ok(counts)
    }

    fn forget_counts(&self, user: &str, device: &str) {
        let key = (user.to_owned(), device.to_owned());
        self.counts.write(|m| {
            m.remove(&key);
        });
    }

    /// Users sharing a room with `user` (and `user`) whose device lists changed in (from, to]
    /// of the device list stream.
    pub async fn changed_device_lists(&self, user: &str, from: i64, to: i64) -> Result<Vec<String>> {
        if to <= from {
            return Ok(Vec::new());
        }
        let mut people = storage::rooms::co_members(&self.db.read, user).await?;
        people.push(user.to_owned());
        Ok(storage::device_keys::changed_among(&self.db.read, &people, from, to).await?)
    }
}

/// A queued to-device message as a client receives it.
fn to_device_event(r: storage::to_device::ToDeviceRow) -> Value {
    let mut event = json!({ "type": r.event_type, "sender": r.sender });
    // Stored as the JSON object the sender sent (checked then).
    event["content"] = serde_json::from_str(&r.content).unwrap_or_else(|_| json!({}));
    event
}

/// Checks uploaded device keys: for this user and device, with `algorithms`, `keys` (strings)
/// and `signatures` (as Synapse requires them). Returns the canonical text to store.
fn check_device_keys(text: &str, user: &str, device: &str) -> Result<String> {
    let obj: CanonicalJsonObject =
        serde_json::from_str(text).map_err(|e| Error::bad_json(format!("device_keys: {e}")))?;
    let field = |k: &str| match obj.get(k) {
        Some(CanonicalJsonValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if field("user_id") != Some(user) || field("device_id") != Some(device) {
        return Err(Error::bad_json("device_keys must be for the user and device of the access token"));
    }
    if !matches!(obj.get("algorithms"), Some(CanonicalJsonValue::Array(_))) {
        return Err(Error::bad_json("device_keys.algorithms must be an array"));
    }
    match obj.get("keys") {
        Some(CanonicalJsonValue::Object(keys)) if keys.values().all(|k| matches!(k, CanonicalJsonValue::String(_))) => {
        }
        _ => return Err(Error::bad_json("device_keys.keys must be an object of strings")),
    }
    if !matches!(obj.get("signatures"), Some(CanonicalJsonValue::Object(_))) {
        return Err(Error::bad_json("device_keys.signatures must be an object"));
    }
    serde_json::to_string(&obj).map_err(Error::internal)
}

/// Checks one one-time or fallback key `algorithm:key_id`: a string (`curve25519`) or an object
/// with a `key` (`signed_curve25519`, signed by the device: see `upload_keys` on signatures).
/// Returns (algorithm, JSON to store).
fn check_one_time_key(id: &str, key: &str) -> Result<(String, String)> {
    let Some((algorithm, key_id)) = id.split_once(':').filter(|(a, k)| !a.is_empty() && !k.is_empty()) else {
        return Err(invalid(format!("One-time key ID `{id}` is not algorithm:key_id")));
    };
    let value: CanonicalJsonValue =
        serde_json::from_str(key).map_err(|e| Error::bad_json(format!("one-time key {id}: {e}")))?;
    match &value {
        CanonicalJsonValue::String(_) => {}
        CanonicalJsonValue::Object(obj) => {
            if !matches!(obj.get("key"), Some(CanonicalJsonValue::String(_))) {
                return Err(Error::bad_json(format!("one-time key {id} has no key")));
            }
            if algorithm.starts_with("signed_") && !matches!(obj.get("signatures"), Some(CanonicalJsonValue::Object(_)))
            {
                return Err(Error::bad_json(format!("one-time key {id} is not signed")));
            }
        }
        _ => return Err(Error::bad_json(format!("one-time key {id} must be a string or an object"))),
    }
    let _ = key_id;
    Ok((algorithm.to_owned(), serde_json::to_string(&value).map_err(Error::internal)?))
}

/// Verifies the signature of `user`'s device `device` on `obj` with its ed25519 key.
fn verify_signed(
    obj: &CanonicalJsonObject,
    user: &str,
    device: &str,
    ed25519: &str,
) -> std::result::Result<(), String> {
    let raw = STANDARD_NO_PAD
        .decode(ed25519.trim_end_matches('='))
        .map_err(|_| "the ed25519 key is not base64".to_owned())?;
    let mut set = BTreeMap::new();
    set.insert(format!("ed25519:{device}"), Base64::new(raw));
    let mut map = PublicKeyMap::new();
    map.insert(user.to_owned(), set);
    // Only the device's own signature is checked here; other signatures (cross-signing) are
    // the clients' business.
    let mut own = obj.clone();
    if let Some(CanonicalJsonValue::Object(sigs)) = own.get_mut("signatures") {
        sigs.retain(|entity, _| entity == user);
        if let Some(CanonicalJsonValue::Object(mine)) = sigs.get_mut(user) {
            mine.retain(|k, _| k == &format!("ed25519:{device}"));
        }
    }
    ruma::signatures::verify_json(&map, &own).map_err(|e| format!("the device's signature does not verify ({e})"))
}

/// Sorted, deduplicated user IDs (for device_lists).
pub fn sorted(users: impl IntoIterator<Item = String>) -> Vec<String> {
    users.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}
