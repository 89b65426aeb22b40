//! EDUs on their way to other servers (spec: server-server API, "EDUs"). Typing, receipts and
//! presence of this server's users are news of the moment: they wait here, in memory, newest
//! per key (a user's typing in a room, their receipt in a room and thread, their presence),
//! until the federation sender takes them and sends them with its next transaction to each
//! server concerned. What must not be lost (to-device messages) is written to
//! `federation_outbox_edus` by whoever queues it, in the same database transaction as the rest
//! of the request; this only wakes the sender for it. Device list changes need neither: the
//! sender reads them from the device list stream, with a position per destination.
//!
//! The producers (typing, receipts, presence, to-device) sit below the federation service, so
//! this is built first and handed to them; the sender is the one consumer.

use std::collections::HashMap;

use parking_lot::Mutex;
use ruma::{OwnedRoomId, OwnedServerName, OwnedUserId, RoomId, UserId, presence::PresenceState};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Which servers an EDU goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The servers with a member joined to the room.
    Room(OwnedRoomId),
    /// The servers sharing a room with the user.
    SharingWith(OwnedUserId),
}

/// One EDU waiting: where it goes, what it replaces (an older EDU with the same key), itself.
#[derive(Debug, Clone)]
pub struct Queued {
    pub scope: Scope,
    pub key: String,
    pub edu: Value,
    /// Typing is dropped rather than sent late (a retry after a back-off would show someone
    /// typing who stopped long ago).
    pub expires: Option<std::time::Instant>,
}

/// How long a typing EDU is worth sending.
const TYPING_FRESH: std::time::Duration = std::time::Duration::from_secs(20);

pub struct EduOutbox {
    origin: OwnedServerName,
    queue: Mutex<Vec<Queued>>,
    /// Destinations with EDUs in `federation_outbox_edus` (with a count of the times EDUs were
    /// queued for them, so one queued while a transaction was in flight is not forgotten), and
    /// whether the table was read since start (until then only what was queued since is here).
    durable: Mutex<(bool, HashMap<String, u64>)>,
    wake: Notify,
    /// Whether presence is shared with other servers (Synapse's `presence.enabled`).
    presence: bool,
}

impl EduOutbox {
    pub fn new(origin: OwnedServerName, presence: bool) -> Self {
        Self { origin, queue: Mutex::default(), durable: Mutex::default(), wake: Notify::new(), presence }
    }

    /// Whether a user ID is of this server: only this server's users' EDUs go out (other
    /// servers send their own).
    pub fn is_ours(&self, user: &str) -> bool {
        // A localpart has no colon: the server name is all after the first.
        user.split_once(':').is_some_and(|(_, s)| s == self.origin.as_str())
    }

    fn push(&self, q: Queued) {
        let mut queue = self.queue.lock();
        queue.retain(|old| !(old.key == q.key && old.scope == q.scope));
        queue.push(q);
        drop(queue);
        self.wake.notify_one();
    }

    /// A local user started or stopped typing.
    pub fn typing(&self, room: &RoomId, user: &UserId, typing: bool) {
        if !self.is_ours(user.as_str()) {
            return;
        }
        self.push(Queued {
            scope: Scope::Room(room.to_owned()),
            key: format!("typing {room} {user}"),
            edu: json!({ "edu_type": "m.typing", "content": { "room_id": room, "user_id": user, "typing": typing } }),
            expires: Some(std::time::Instant::now() + TYPING_FRESH),
        });
    }

    /// A local user's public read receipt (private ones never leave the server).
    pub fn receipt(&self, room: &RoomId, user: &UserId, event_id: &str, ts: i64, thread_id: &str) {
        if !self.is_ours(user.as_str()) {
            return;
        }
        let mut data = json!({ "ts": ts });
        if !thread_id.is_empty() {
            data["thread_id"] = json!(thread_id);
        }
        let content =
            json!({ room.as_str(): { "m.read": { user.as_str(): { "data": data, "event_ids": [event_id] } } } });
        self.push(Queued {
            scope: Scope::Room(room.to_owned()),
            key: format!("receipt {room} {user} {thread_id}"),
            edu: json!({ "edu_type": "m.receipt", "content": content }),
            expires: None,
        });
    }

    /// A local user's presence changed.
    pub fn presence(&self, user: &UserId, state: &PresenceState, status_msg: Option<&str>, last_active_ago: u64) {
        if !self.presence || !self.is_ours(user.as_str()) {
            return;
        }
        let mut update = json!({
            "user_id": user,
            "presence": state,
            "last_active_ago": last_active_ago,
            "currently_active": *state == PresenceState::Online,
        });
        if let Some(m) = status_msg {
            update["status_msg"] = json!(m);
        }
        self.push(Queued {
            scope: Scope::SharingWith(user.to_owned()),
            key: format!("presence {user}"),
            edu: json!({ "edu_type": "m.presence", "content": { "push": [update] } }),
            expires: None,
        });
    }

    /// EDUs for `destination` were written to `federation_outbox_edus` (and committed).
    pub fn queued_durable(&self, destination: &str) {
        *self.durable.lock().1.entry(destination.to_owned()).or_default() += 1;
        self.wake.notify_one();
    }

    /// Everything queued in memory, oldest first.
    pub fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *self.queue.lock())
    }

    /// The destinations with durable EDUs and their counts, or None when the table was not
    /// read since start.
    pub fn durable_destinations(&self) -> Option<HashMap<String, u64>> {
        let durable = self.durable.lock();
        durable.0.then(|| durable.1.clone())
    }

    /// What the table says after a start (added to what was queued meanwhile).
    pub fn loaded_durable_destinations(&self, found: impl IntoIterator<Item = String>) {
        let mut durable = self.durable.lock();
        durable.0 = true;
        for d in found {
            durable.1.entry(d).or_default();
        }
    }

    /// A destination's durable EDUs, as queued up to `count`, were all sent.
    pub fn durable_done(&self, destination: &str, count: u64) {
        let mut durable = self.durable.lock();
        if durable.1.get(destination) == Some(&count) {
            durable.1.remove(destination);
        }
    }

    pub async fn notified(&self) {
        self.wake.notified().await
    }
}
