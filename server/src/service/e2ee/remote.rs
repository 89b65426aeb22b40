//! End-to-end encryption across servers (spec: server-server API, "End-to-End Encryption"):
//! other servers' users' keys are asked of their servers when a local client queries or claims
//! them; this server answers the same questions about its users (`/user/keys/query`,
//! `/user/keys/claim`, `/user/devices`), tells other servers when its users' devices change
//! (the EDUs built here, sent by the federation sender), and takes in their to-device messages
//! and device list news.
//!
//! The device lists of other servers' users who share a room with a local user are kept here
//! (`storage::remote_devices`): fetched whole with `/user/devices` the first time a local client
//! asks, then followed through their server's `m.device_list_update` and `m.signing_key_update`
//! EDUs (an update after a gap in `prev_id` marks the list stale: fetched whole again before it
//! is used). So a client's `/keys/query` is answered at once, and still while that server is
//! down. Lists of users who share no room here any more are dropped. Users this server keeps no
//! list for are asked of their servers each time. Either way the news goes into the same device
//! list stream as local changes, so /sync's `device_lists.changed` names them.

use std::{collections::BTreeMap, time::Duration};

use futures::StreamExt;

use ruma::{OwnedDeviceId, OwnedUserId, ServerName, UserId};
use serde_json::{Map, Value, json};

use super::{E2ee, Queried};
use crate::{
    error::{Error, Result},
    storage::{self, federation::DeviceListChange, remote_devices},
};

/// The largest remote answer taken per user (devices), so a hostile server cannot flood a
/// client's /keys/query.
const MAX_REMOTE_DEVICES: usize = 1000;

/// How many users' lists are fetched whole at once for one `/keys/query`.
const RESYNCS_AT_ONCE: usize = 8;

/// A kept device list as /keys/query gives it: device keys by device ID, and the master and
/// self-signing keys.
struct Kept {
    devices: Map<String, Value>,
    master: Option<Value>,
    self_signing: Option<Value>,
}

impl E2ee {
    /// Other servers' users' keys: from the kept lists of those who share a room here (fetched
    /// whole first when not kept yet or stale), the others asked of their servers, all servers
    /// at once. `requester`'s own signatures of their master keys (a verification made here)
    /// are merged in.
    pub(super) async fn query_remote_keys(
        &self,
        requester: &str,
        remote: BTreeMap<String, BTreeMap<String, Vec<String>>>,
        timeout: Duration,
        out: &mut Queried,
    ) {
        let wanted: Vec<(String, String, Vec<String>)> = remote
            .into_iter()
            .flat_map(|(server, users)| users.into_iter().map(move |(u, d)| (server.clone(), u, d)))
            .collect();
        let kept: Vec<_> = futures::stream::iter(wanted)
            .map(|(server, user, devices)| async move {
                let kept = self.kept_list(&user, timeout).await;
                (server, user, devices, kept)
            })
            .buffer_unordered(RESYNCS_AT_ONCE)
            .collect()
            .await;
        let mut remote: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for (server, user, devices, kept) in kept {
            match kept {
                Ok(Some(mut kept)) => {
                    if !devices.is_empty() {
                        kept.devices.retain(|d, _| devices.contains(d));
                    }
                    out.device_keys.insert(user.clone(), Value::Object(kept.devices));
                    for (kind, key) in [("master", kept.master), ("self_signing", kept.self_signing)] {
                        if let Some(key) = key {
                            out.cross_signing.entry(kind).or_default().insert(user.clone(), key);
                        }
                    }
                }
                Ok(None) => {
                    remote.entry(server).or_default().insert(user, devices);
                }
                Err(failure) => {
                    out.failures.insert(server, failure);
                }
            }
        }
        if !remote.is_empty() {
            self.ask_for_keys(remote, timeout, out).await;
        }
        if let Some(masters) = out.cross_signing.get_mut("master")
            && self.is_local(requester)
        {
            for (user, key) in masters.iter_mut().filter(|(u, _)| !self.is_local(u)) {
                if let Err(e) = self.merge_signatures_by(requester, user, key).await {
                    tracing::warn!(%user, error = %e, "reading signatures of another server's user's key");
                }
            }
        }
    }

    /// The kept device list of `user`, fetched whole first when it is not kept or stale; None
    /// when this server keeps no list of theirs (they share no room with a local user). A stale
    /// list whose server does not answer is used as it is; a list never fetched is a failure.
    async fn kept_list(&self, user: &str, timeout: Duration) -> std::result::Result<Option<Kept>, Value> {
        let internal = |e: Error| {
            tracing::warn!(%user, error = %e, "reading a kept device list");
            json!({ "status": 500, "message": "This server could not read its copy" })
        };
        let db = |e: sqlx::Error| internal(e.into());
        let list = remote_devices::list(&self.db.read, user).await.map_err(db)?;
        if !remote_devices::shares_room_with_local_user(&self.db.read, user).await.map_err(db)? {
            if list.is_some() {
                remote_devices::forget(&self.db.write, user).await.map_err(db)?;
            }
            return Ok(None);
        }
        let list = match list {
            Some(list) if !list.stale => list,
            stale_or_none => {
                let Ok(user_id) = UserId::parse(user) else { return Ok(None) };
                match (self.resync(&user_id, timeout).await, stale_or_none) {
                    (Ok(fetched), _) => fetched,
                    (Err(_), Some(stale)) => {
                        tracing::info!(%user, "a stale device list is used: its server did not answer");
                        stale
                    }
                    (Err(failure), None) => return Err(failure),
                }
            }
        };
        self.read_kept(user, list).await.map(Some).map_err(internal)
    }

    /// The devices of `list` (`user`'s), with its cross-signing keys, as /keys/query gives them.
    async fn read_kept(&self, user: &str, list: remote_devices::KeptList) -> Result<Kept> {
        let mut devices = Map::new();
        for (device, keys) in remote_devices::devices(&self.db.read, user).await? {
            if let Ok(keys) = serde_json::from_str::<Value>(&keys) {
                devices.insert(device, keys);
            }
        }
        let parse = |k: Option<String>| k.and_then(|k| serde_json::from_str(&k).ok());
        Ok(Kept { devices, master: parse(list.master_key), self_signing: parse(list.self_signing_key) })
    }

    /// Fetches `user`'s whole device list from their server (`/user/devices`) and keeps it;
    /// answers the list as kept now.
    async fn resync(&self, user: &UserId, timeout: Duration) -> std::result::Result<remote_devices::KeptList, Value> {
        let request = ruma::api::federation::device::get_devices::v1::Request::new(user.to_owned());
        let resp = self.ask(user.server_name(), request, timeout).await?;
        if resp.user_id != user {
            return Err(json!({ "status": 502, "message": "The server answered for another user" }));
        }
        let mut devices = Vec::new();
        for d in resp.devices.into_iter().take(MAX_REMOTE_DEVICES) {
            if let Some(keys) = device_keys(user, d.device_id.as_str(), d.keys.json().get(), d.device_display_name) {
                devices.push((d.device_id.to_string(), keys.to_string()));
            }
        }
        let list = remote_devices::KeptList {
            stream_id: i64::try_from(u64::from(resp.stream_id)).unwrap_or(i64::MAX),
            stale: false,
            master_key: resp.master_key.and_then(|k| cross_signing_key(user, k.json().get())),
            self_signing_key: resp.self_signing_key.and_then(|k| cross_signing_key(user, k.json().get())),
        };
        let stored = async {
            let mut tx = self.db.begin_write().await?;
            remote_devices::replace(&mut tx, user.as_str(), &list, &devices, storage::now_ms()).await?;
            tx.commit().await?;
            Ok::<_, Error>(())
        };
        stored.await.map_err(|e| {
            tracing::warn!(%user, error = %e, "keeping a device list");
            json!({ "status": 500, "message": "This server could not keep the list" })
        })?;
        tracing::debug!(%user, devices = devices.len(), "device list fetched whole");
        Ok(list)
    }

    /// Asks each server for its users' keys with `/user/keys/query`, all servers at once.
    async fn ask_for_keys(
        &self,
        remote: BTreeMap<String, BTreeMap<String, Vec<String>>>,
        timeout: Duration,
        out: &mut Queried,
    ) {
        let asks = remote.into_iter().map(|(server, users)| async move {
            let answer = self.query_server(&server, &users, timeout).await;
            (server, users, answer)
        });
        for (server, users, answer) in futures::future::join_all(asks).await {
            let resp = match answer {
                Ok(resp) => resp,
                Err(failure) => {
                    out.failures.insert(server, failure);
                    continue;
                }
            };
            for (user, devices) in resp.device_keys {
                // Only the users asked for, and only that server's.
                if !users.contains_key(user.as_str()) {
                    continue;
                }
                let mut found = Map::new();
                for (device, keys) in devices.into_iter().take(MAX_REMOTE_DEVICES) {
                    if let Ok(keys) = keys.deserialize_as::<Value>()
                        && keys.is_object()
                        && keys["user_id"] == user.as_str()
                        && keys["device_id"] == device.as_str()
                    {
                        found.insert(device.to_string(), keys);
                    }
                }
                out.device_keys.insert(user.to_string(), Value::Object(found));
            }
            for (kind, keys) in [("master", resp.master_keys), ("self_signing", resp.self_signing_keys)] {
                for (user, key) in keys {
                    if let Ok(key) = key.deserialize_as::<Value>()
                        && users.contains_key(user.as_str())
                        && key["user_id"] == user.as_str()
                    {
                        out.cross_signing.entry(kind).or_default().insert(user.to_string(), key);
                    }
                }
            }
        }
    }

    async fn query_server(
        &self,
        server: &str,
        users: &BTreeMap<String, Vec<String>>,
        timeout: Duration,
    ) -> std::result::Result<ruma::api::federation::keys::get_keys::v1::Response, Value> {
        let name = server_name(server)?;
        let mut asked = BTreeMap::new();
        for (user, devices) in users {
            let Ok(user) = UserId::parse(user) else { continue };
            asked.insert(user, devices.iter().map(|d| OwnedDeviceId::from(d.as_str())).collect());
        }
        self.ask(name, ruma::api::federation::keys::get_keys::v1::Request::new(asked), timeout).await
    }

    /// One request to another server within `timeout`; a failure as `/keys/query` and
    /// `/keys/claim` report it per server.
    async fn ask<R>(
        &self,
        server: &ServerName,
        request: R,
        timeout: Duration,
    ) -> std::result::Result<R::IncomingResponse, Value>
    where
        R: ruma::api::OutgoingRequest<
                Authentication = ruma::api::federation::authentication::ServerSignatures,
                PathBuilder = ruma::api::path_builder::SinglePath,
            >,
    {
        match tokio::time::timeout(timeout, self.federation.send(server, request)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                tracing::info!(%server, error = %e, "a keys request to another server failed");
                Err(json!({ "status": 503, "message": "The server did not answer" }))
            }
            Err(_) => Err(json!({ "status": 504, "message": "The server did not answer in time" })),
        }
    }

    /// Claims one-time keys of each server's devices from that server, all at once.
    pub(super) async fn claim_remote_keys(
        &self,
        remote: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
        timeout: Duration,
        keys: &mut Map<String, Value>,
        failures: &mut Map<String, Value>,
    ) {
        let asks = remote.into_iter().map(|(server, users)| async move {
            let answer = self.claim_from_server(&server, &users, timeout).await;
            (server, users, answer)
        });
        for (server, users, answer) in futures::future::join_all(asks).await {
            let resp = match answer {
                Ok(resp) => resp,
                Err(failure) => {
                    failures.insert(server, failure);
                    continue;
                }
            };
            for (user, devices) in resp.one_time_keys {
                let Some(asked) = users.get(user.as_str()) else { continue };
                let mut per_device = Map::new();
                for (device, claimed) in devices {
                    if !asked.contains_key(device.as_str()) {
                        continue;
                    }
                    let mut one = Map::new();
                    for (id, key) in claimed {
                        if let Ok(key) = key.deserialize_as::<Value>() {
                            one.insert(id.to_string(), key);
                        }
                    }
                    per_device.insert(device.to_string(), Value::Object(one));
                }
                keys.insert(user.to_string(), Value::Object(per_device));
            }
        }
    }

    async fn claim_from_server(
        &self,
        server: &str,
        users: &BTreeMap<String, BTreeMap<String, String>>,
        timeout: Duration,
    ) -> std::result::Result<ruma::api::federation::keys::claim_keys::v1::Response, Value> {
        let name = server_name(server)?;
        let mut asked = BTreeMap::new();
        for (user, devices) in users {
            let Ok(user) = UserId::parse(user) else { continue };
            let devices: BTreeMap<OwnedDeviceId, ruma::OneTimeKeyAlgorithm> =
                devices.iter().map(|(d, a)| (OwnedDeviceId::from(d.as_str()), a.as_str().into())).collect();
            asked.insert(user, devices);
        }
        self.ask(name, ruma::api::federation::keys::claim_keys::v1::Request::new(asked), timeout).await
    }

    /// `/user/keys/query` from another server: this server's users' device keys and the
    /// master and self-signing keys (never the user-signing key, nor signatures others made).
    pub async fn keys_for_server(&self, requested: &BTreeMap<String, Vec<String>>) -> Result<Queried> {
        // Only this server's users (another server's would send this one asking on); no user
        // asks, so "" sees only the owners' own signatures and no user-signing key.
        let local = requested.iter().filter(|(u, _)| self.is_local(u)).map(|(u, d)| (u.clone(), d.clone())).collect();
        self.query_keys("", &local, Duration::ZERO).await
    }

    /// `/user/devices/{userId}` from another server: the user's devices with keys and names,
    /// the position of the list (the `stream_id` its device list updates continue from) and
    /// the master and self-signing keys.
    pub async fn devices_for_server(&self, user: &UserId) -> Result<DevicesForServer> {
        if !self.is_local(user.as_str()) {
            return Err(Error::not_found("Not one of this server's users"));
        }
        // The position first: a change made while reading is announced after it.
        let stream_id = storage::device_keys::latest_change_of(&self.db.read, user.as_str()).await?;
        let (found, cross) = self.local_keys("", user.as_str(), &[]).await?;
        let devices = found
            .into_iter()
            .map(|(device, keys)| {
                let (keys, name) = without_name(keys);
                (device, keys, name)
            })
            .collect();
        Ok(DevicesForServer {
            stream_id,
            devices,
            master: cross.get("master").cloned(),
            self_signing: cross.get("self_signing").cloned(),
        })
    }

    /// The EDU that tells another server of a local user's device list change: the device's
    /// keys and name now (or that it is gone), or the user's new cross-signing keys.
    pub async fn device_list_edu(&self, change: &DeviceListChange) -> Result<Value> {
        let user = change.user_id.as_str();
        let Some(device) = &change.device_id else {
            let cross = self.cross_signing_for_query("", user, &mut Map::new()).await?;
            let mut content = json!({ "user_id": user });
            for (kind, field) in [("master", "master_key"), ("self_signing", "self_signing_key")] {
                if let Some(key) = cross.get(kind) {
                    content[field] = key.clone();
                }
            }
            return Ok(json!({ "edu_type": "m.signing_key_update", "content": content }));
        };
        let mut content = json!({
            "user_id": user,
            "device_id": device,
            "stream_id": change.stream_id,
            "prev_id": change.prev.into_iter().collect::<Vec<_>>(),
        });
        let (found, _) = self.local_keys("", user, std::slice::from_ref(device)).await?;
        let exists = storage::devices::get(&self.db.read, user, device).await?.is_some();
        match found.get(device) {
            Some(keys) => {
                let (keys, name) = without_name(keys.clone());
                if let Some(name) = name {
                    content["device_display_name"] = json!(name);
                }
                content["keys"] = keys;
                content["deleted"] = json!(false);
            }
            None => content["deleted"] = json!(!exists),
        }
        Ok(json!({ "edu_type": "m.device_list_update", "content": content }))
    }

    /// `m.direct_to_device` from `origin`: its messages for local devices are queued once
    /// (a transaction sent again delivers nothing new).
    pub async fn receive_to_device(
        &self,
        origin: &ServerName,
        sender: &UserId,
        event_type: &str,
        message_id: &str,
        messages: Vec<(OwnedUserId, String, Value)>,
    ) -> Result<()> {
        let mut rows = Vec::new();
        for (user, device, content) in messages {
            if !self.is_local(user.as_str()) || !content.is_object() {
                continue;
            }
            let text = content.to_string();
            if text.len() > super::MAX_TO_DEVICE_CONTENT {
                continue;
            }
            rows.push((user.to_string(), device, text));
        }
        let mut tx = self.db.begin_write().await?;
        if !storage::federation::first_receipt_of_to_device(&mut tx, origin.as_str(), message_id, storage::now_ms())
            .await?
        {
            return Ok(());
        }
        let head = storage::to_device::queue(&mut *tx, sender.as_str(), event_type, &rows).await?;
        tx.commit().await?;
        if head > 0 {
            self.to_device_head.fetch_max(head, std::sync::atomic::Ordering::AcqRel);
            self.notifier.notify();
        }
        Ok(())
    }

    /// Another server says its user's device changed (`m.device_list_update`): a kept list
    /// takes the change when it follows on from what was kept (every `prev_id` known), and is
    /// marked stale after a gap; local clients sharing a room with the user see them in /sync's
    /// `device_lists.changed` and ask again.
    pub async fn remote_device_updated(
        &self,
        update: &ruma::api::federation::transactions::edu::DeviceListUpdateContent,
    ) -> Result<()> {
        let user = update.user_id.as_str();
        let stream_id = i64::try_from(u64::from(update.stream_id)).unwrap_or(i64::MAX);
        if let Some(list) = remote_devices::list(&self.db.read, user).await? {
            let known = |p: &ruma::UInt| i64::try_from(u64::from(*p)).is_ok_and(|p| p <= list.stream_id);
            if stream_id <= list.stream_id && !list.stale {
                // Already applied (a transaction sent again), or covered by the whole list.
                return Ok(());
            }
            if list.stale || !update.prev_id.iter().all(known) {
                tracing::info!(%user, stream_id, "a device list update after a gap: the list is fetched again");
                remote_devices::mark_stale(&self.db.write, user).await?;
            } else {
                // Keys that are not the device's own leave it out, as a deletion would.
                let keys = match update.deleted {
                    Some(true) => None,
                    _ => update.keys.as_ref().and_then(|k| {
                        let name = update.device_display_name.clone();
                        device_keys(&update.user_id, update.device_id.as_str(), k.json().get(), name)
                    }),
                };
                let keys = keys.map(|k| k.to_string());
                let mut tx = self.db.begin_write().await?;
                remote_devices::update_device(&mut tx, user, update.device_id.as_str(), keys.as_deref(), stream_id)
                    .await?;
                tx.commit().await?;
            }
        }
        self.remote_device_list_changed(&update.user_id).await
    }

    /// Another server says its user's cross-signing keys changed (`m.signing_key_update`).
    pub async fn remote_signing_keys_updated(
        &self,
        update: &ruma::api::federation::transactions::edu::SigningKeyUpdateContent,
    ) -> Result<()> {
        let user = &update.user_id;
        let master = update.master_key.as_ref().and_then(|k| cross_signing_key(user, k.json().get()));
        let self_signing = update.self_signing_key.as_ref().and_then(|k| cross_signing_key(user, k.json().get()));
        remote_devices::set_cross_signing(&self.db.write, user.as_str(), master.as_deref(), self_signing.as_deref())
            .await?;
        self.remote_device_list_changed(user).await
    }

    /// Local clients sharing a room with `user` see them in /sync's `device_lists.changed`.
    async fn remote_device_list_changed(&self, user: &UserId) -> Result<()> {
        storage::device_keys::device_list_changed(&self.db.write, user.as_str(), None).await?;
        self.device_lists.refresh(&self.db).await
    }

    /// Drops the kept lists of users who share no room with a local user any more.
    pub async fn forget_untracked_device_lists(&self) -> Result<usize> {
        let users = remote_devices::untracked(&self.db.read).await?;
        for user in &users {
            remote_devices::forget(&self.db.write, user).await?;
        }
        Ok(users.len())
    }
}

/// A user's devices as `/user/devices` answers them: (device ID, keys, display name).
pub struct DevicesForServer {
    pub stream_id: i64,
    pub devices: Vec<(String, Value, Option<String>)>,
    pub master: Option<Value>,
    pub self_signing: Option<Value>,
}

/// Device keys as `/keys/query` gives them, split into the keys other servers are sent (no
/// `unsigned`) and the device's display name (a field of its own over federation).
fn without_name(mut keys: Value) -> (Value, Option<String>) {
    let name = keys["unsigned"]["device_display_name"].as_str().map(str::to_owned);
    if let Some(obj) = keys.as_object_mut() {
        obj.remove("unsigned");
    }
    (keys, name)
}

/// Device keys another server gave for its user's device, when they are that device's, with the
/// device's display name as /keys/query shows it (`unsigned.device_display_name`).
fn device_keys(user: &UserId, device: &str, json: &str, name: Option<String>) -> Option<Value> {
    let mut keys: Value = serde_json::from_str(json).ok()?;
    if !keys.is_object() || keys["user_id"] != user.as_str() || keys["device_id"] != device {
        return None;
    }
    if let Some(name) = name {
        keys["unsigned"] = json!({ "device_display_name": name });
    }
    Some(keys)
}

/// A cross-signing key another server gave for its user, as JSON text, when it is that user's.
fn cross_signing_key(user: &UserId, json: &str) -> Option<String> {
    let key: Value = serde_json::from_str(json).ok()?;
    (key["user_id"] == user.as_str()).then(|| key.to_string())
}

fn server_name(server: &str) -> std::result::Result<&ServerName, Value> {
    <&ServerName>::try_from(server).map_err(|_| json!({ "status": 400, "message": "Not a server name" }))
}
