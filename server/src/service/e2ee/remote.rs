//! End-to-end encryption across servers (spec: server-server API, "End-to-End Encryption"):
//! other servers' users' keys are asked of their servers when a local client queries or claims
//! them; this server answers the same questions about its users (`/user/keys/query`,
//! `/user/keys/claim`, `/user/devices`), tells other servers when its users' devices change
//! (the EDUs built here, sent by the federation sender), and takes in their to-device messages
//! and device list news.
//!
//! Remote device lists are not cached: a local client asks again when /sync says a remote user's
//! list changed, and that news comes from the user's server (`m.device_list_update`,
//! `m.signing_key_update`) into the same device list stream as local changes.

use std::{collections::BTreeMap, time::Duration};

use ruma::{OwnedDeviceId, OwnedUserId, ServerName, UserId};
use serde_json::{Map, Value, json};

use super::{E2ee, Queried};
use crate::{
    error::{Error, Result},
    storage::{self, federation::DeviceListChange},
};

/// The largest remote answer taken per user (devices), so a hostile server cannot flood a
/// client's /keys/query.
const MAX_REMOTE_DEVICES: usize = 1000;

impl E2ee {
    /// Asks each server for its users' keys, all servers at once.
    pub(super) async fn query_remote_keys(
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

    /// Another server says its user's devices or cross-signing keys changed: local clients
    /// sharing a room with them see the user in /sync's `device_lists.changed` and ask again.
    pub async fn remote_device_list_changed(&self, user: &UserId) -> Result<()> {
        storage::device_keys::device_list_changed(&self.db.write, user.as_str(), None).await?;
        self.device_lists.refresh(&self.db).await
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

fn server_name(server: &str) -> std::result::Result<&ServerName, Value> {
    <&ServerName>::try_from(server).map_err(|_| json!({ "status": 400, "message": "Not a server name" }))
}
