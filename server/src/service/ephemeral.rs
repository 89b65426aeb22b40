//! Ephemeral room data: typing notifications (in memory, they expire) and read receipts (stored,
//! the latest per user). Both are sent in /sync's `ephemeral` section.

use parking_lot::Mutex;
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use ruma::{RoomId, UserId, presence::PresenceState};
use serde_json::{Map, Value, json};

use super::{heads::Heads, notifier::Notifier};
use crate::{
    error::Result,
    storage::{self, Db, now_ms},
};

/// Longest typing notification accepted (spec: the client sends a timeout).
const MAX_TYPING: Duration = Duration::from_secs(120);

#[derive(Default)]
struct TypingRoom {
    /// user -> when the notification expires
    users: HashMap<String, Instant>,
    /// Typing serial of the last change in this room.
    changed: i64,
}

/// A user's presence: (presence, status message, last change, presence serial of the change).
type PresenceEntry = (PresenceState, Option<String>, Instant, i64);

pub struct Ephemeral {
    db: Db,
    /// Local users' typing, public receipts and presence go to other servers from here.
    outbox: Arc<crate::service::federation::outbox::EduOutbox>,
    presence: Mutex<HashMap<String, PresenceEntry>>,
    presence_serial: AtomicI64,
    notifier: Arc<Notifier>,
    typing: Mutex<HashMap<String, TypingRoom>>,
    typing_serial: AtomicI64,
    receipts_head: AtomicI64,
    /// The latest receipt position per room, so /sync asks the database only about rooms
    /// whose receipts moved.
    receipt_rooms: Mutex<Heads>,
    /// Open /sync requests per user and when the last one ended: presence goes offline when a
    /// user stops syncing.
    syncing: Mutex<HashMap<String, Syncing>>,
    offline_after: Duration,
    /// When local users' presence was last sent again to other servers.
    pinged: Mutex<Instant>,
    /// Wakes the expiry task (`run_expiry`) when something may now end sooner than the time
    /// it sleeps until: a typing notification started, someone came online or stopped syncing.
    rearm: tokio::sync::Notify,
}

/// A user counts as online while a /sync of theirs is open or ended less than this long ago
/// (Synapse's value: clients long-poll for 30 s, so a gap longer than that means gone).
pub const OFFLINE_AFTER: Duration = Duration::from_secs(30);

/// Another server's user counts as offline when their server said nothing of them for this
/// long (Synapse's federation timeout; servers repeat the presence of online users every 25
/// minutes).
const REMOTE_OFFLINE_AFTER: Duration = Duration::from_secs(30 * 60);

/// How often the presence of local users who are not offline is sent again to other servers,
/// so their servers do not time them out (Synapse's federation ping interval).
const PRESENCE_PING: Duration = Duration::from_secs(25 * 60);

/// The longest typing notification taken from another server (they send a stop when the user
/// stops; Synapse's value).
pub const REMOTE_TYPING: Duration = Duration::from_secs(60);

struct Syncing {
    open: usize,
    last_end: Instant,
}

/// Held for the duration of a /sync request (also when the client goes away mid-request).
pub struct SyncingGuard {
    ephemeral: Arc<Ephemeral>,
    user: String,
}

impl Drop for SyncingGuard {
    fn drop(&mut self) {
        let mut map = self.ephemeral.syncing.lock();
        if let Some(s) = map.get_mut(&self.user) {
            s.open = s.open.saturating_sub(1);
            s.last_end = Instant::now();
            if s.open == 0 {
                // Their going offline is now due at some point.
                self.ephemeral.rearm.notify_one();
            }
        }
    }
}

impl Ephemeral {
    pub async fn new(
        db: Db,
        notifier: Arc<Notifier>,
        outbox: Arc<crate::service::federation::outbox::EduOutbox>,
    ) -> Result<Self> {
        let head = storage::receipts::max_stream(&db.read).await?;
        let receipt_rooms = Mutex::new(storage::receipts::room_heads(&db.read).await?.into_iter().collect());
        Ok(Self {
            db,
            outbox,
            presence: Mutex::new(HashMap::new()),
            presence_serial: AtomicI64::new(0),
            notifier,
            typing: Mutex::new(HashMap::new()),
            typing_serial: AtomicI64::new(0),
            receipts_head: AtomicI64::new(head),
            receipt_rooms,
            syncing: Mutex::new(HashMap::new()),
            offline_after: OFFLINE_AFTER,
            pinged: Mutex::new(Instant::now()),
            rearm: tokio::sync::Notify::new(),
        })
    }

    pub fn typing_head(&self) -> i64 {
        self.typing_serial.load(Ordering::Acquire)
    }

    pub fn receipts_head(&self) -> i64 {
        self.receipts_head.load(Ordering::Acquire)
    }

    /// Starts (with a timeout) or stops a typing notification.
    pub fn set_typing(&self, room: &RoomId, user: &UserId, timeout: Option<Duration>) {
        let mut rooms = self.typing.lock();
        let entry = rooms.entry(room.to_string()).or_default();
        let changed = match timeout {
            Some(t) => entry.users.insert(user.to_string(), Instant::now() + t.min(MAX_TYPING)).is_none(),
            None => entry.users.remove(user.as_str()).is_some(),
        };
        if changed {
            entry.changed = self.typing_serial.fetch_add(1, Ordering::AcqRel) + 1;
            drop(rooms);
            self.notifier.notify();
        }
        // Every start goes out (it renews the other servers' timeout); a stop when it changed.
        if changed || timeout.is_some() {
            self.outbox.typing(room, user, timeout.is_some());
        }
        if timeout.is_some() {
            self.rearm.notify_one();
        }
    }

    /// Ends typing notifications and online presence when they run out, and sends local
    /// presence to other servers again when due. It sleeps until the next of those moments
    /// (`next_expiry`), not on a fixed tick: an idle server does not wake for nothing, which a
    /// laptop's battery notices.
    pub async fn run_expiry(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        loop {
            let next = self.next_expiry();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                // A notification sent while the deadline was computed is kept by Notify.
                () = self.rearm.notified() => {}
                () = sleep => {}
            }
            self.expire_typing();
            self.expire_presence();
        }
    }

    /// The next moment `expire_typing` or `expire_presence` has something to do: a typing
    /// notification ends, someone who is not syncing goes offline, or the presence of local
    /// users who are online is due to other servers again. None: nothing will, until something
    /// changes (which rearms the expiry task).
    pub fn next_expiry(&self) -> Option<Instant> {
        let typing = self.typing.lock().values().flat_map(|r| r.users.values().copied()).min();
        let syncing = self.syncing.lock();
        let map = self.presence.lock();
        let (mut offline, mut local_online) = (None::<Instant>, false);
        for (user, (state, _, changed_at, _)) in map.iter() {
            if *state == PresenceState::Offline {
                continue;
            }
            local_online |= self.outbox.is_ours(user);
            if let Some((gone, _)) = self.gone_after(user, *changed_at, &syncing) {
                // `expire_presence` wants strictly later than that.
                let at = gone + Duration::from_millis(1);
                offline = Some(offline.map_or(at, |o: Instant| o.min(at)));
            }
        }
        let ping = local_online.then(|| *self.pinged.lock() + PRESENCE_PING);
        [typing, offline, ping].into_iter().flatten().min()
    }

    /// When a user who is not offline counts as gone, and whether they are another server's
    /// user: the offline timeout after their last sign of life (the later of their presence
    /// change and the end of their last /sync). None while a /sync of theirs is open.
    fn gone_after(
        &self,
        user: &str,
        changed_at: Instant,
        syncing: &HashMap<String, Syncing>,
    ) -> Option<(Instant, bool)> {
        let remote = !self.outbox.is_ours(user);
        let last_seen = match syncing.get(user) {
            Some(s) if s.open > 0 => return None,
            Some(s) => s.last_end.max(changed_at),
            None => changed_at,
        };
        let after = if remote { REMOTE_OFFLINE_AFTER } else { self.offline_after };
        Some((last_seen + after, remote))
    }

    /// Drops expired typing notifications (see `run_expiry`).
    pub fn expire_typing(&self) {
        let now = Instant::now();
        let mut any = false;
        let mut rooms = self.typing.lock();
        for room in rooms.values_mut() {
            let before = room.users.len();
            room.users.retain(|_, until| *until > now);
            if room.users.len() != before {
                room.changed = self.typing_serial.fetch_add(1, Ordering::AcqRel) + 1;
                any = true;
            }
        }
        rooms.retain(|_, r| !r.users.is_empty() || r.changed > 0);
        drop(rooms);
        if any {
            self.notifier.notify();
        }
    }

    /// The room's m.typing event if it changed after `since` (or always, for `since` None).
    pub fn typing_event(&self, room: &str, since: Option<i64>) -> Option<Value> {
        let rooms = self.typing.lock();
        let r = rooms.get(room)?;
        if since.is_some_and(|s| r.changed <= s) || (since.is_none() && r.users.is_empty()) {
            return None;
        }
        let mut users: Vec<&String> = r.users.keys().collect();
        users.sort();
        Some(json!({ "type": "m.typing", "content": { "user_ids": users } }))
    }

    /// Marks a /sync of `user` as open until the guard is dropped.
    pub fn syncing(self: &Arc<Self>, user: &UserId) -> SyncingGuard {
        let mut map = self.syncing.lock();
        map.entry(user.to_string()).or_insert(Syncing { open: 0, last_end: Instant::now() }).open += 1;
        SyncingGuard { ephemeral: self.clone(), user: user.to_string() }
    }

    /// Users who are online or unavailable but stopped syncing more than `offline_after` ago
    /// go offline (keeping their status message) (see `run_expiry`).
    pub fn expire_presence(&self) {
        let now = Instant::now();
        let syncing = self.syncing.lock();
        let mut map = self.presence.lock();
        let mut any = false;
        for (user, (state, _, changed_at, serial)) in map.iter_mut() {
            if *state == PresenceState::Offline {
                continue;
            }
            let Some((gone, remote)) = self.gone_after(user, *changed_at, &syncing) else { continue };
            if now > gone {
                *state = PresenceState::Offline;
                *changed_at = now;
                *serial = self.presence_serial.fetch_add(1, Ordering::AcqRel) + 1;
                any = true;
                if !remote && let Ok(u) = UserId::parse(user.as_str()) {
                    self.outbox.presence(&u, state, None, 0);
                }
            }
        }
        drop(syncing);
        let ping = {
            let mut pinged = self.pinged.lock();
            let due = pinged.elapsed() >= PRESENCE_PING;
            if due {
                *pinged = now;
            }
            due
        };
        if ping {
            for (user, (state, msg, changed_at, _)) in map.iter() {
                if *state != PresenceState::Offline
                    && self.outbox.is_ours(user)
                    && let Ok(u) = UserId::parse(user.as_str())
                {
                    self.outbox.presence(&u, state, msg.as_deref(), now.duration_since(*changed_at).as_millis() as u64);
                }
            }
        }
        drop(map);
        if any {
            self.notifier.notify();
        }
    }

    pub fn presence_head(&self) -> i64 {
        self.presence_serial.load(Ordering::Acquire)
    }

    /// Sets a user's presence; a change (not a repeat) moves the presence stream and wakes
    /// /sync.
    pub fn set_presence(&self, user: &UserId, state: PresenceState, status_msg: Option<String>) {
        let mut map = self.presence.lock();
        let unchanged = map.get(user.as_str()).is_some_and(|(p, m, _, _)| *p == state && *m == status_msg);
        if unchanged {
            if let Some(entry) = map.get_mut(user.as_str()) {
                entry.2 = Instant::now();
            }
            return;
        }
        let serial = self.presence_serial.fetch_add(1, Ordering::AcqRel) + 1;
        self.outbox.presence(user, &state, status_msg.as_deref(), 0);
        map.insert(user.to_string(), (state, status_msg, Instant::now(), serial));
        drop(map);
        self.notifier.notify();
        self.rearm.notify_one();
    }

    /// (presence, status message, time since it was set); offline when never set.
    pub fn presence(&self, user: &UserId) -> (PresenceState, Option<String>, Option<Duration>) {
        match self.presence.lock().get(user.as_str()) {
            Some((p, msg, at, _)) => (p.clone(), msg.clone(), Some(at.elapsed())),
            None => (PresenceState::Offline, None, None),
        }
    }

    /// m.presence events of `users` whose presence changed in (since, upto].
    pub fn presence_events(&self, users: &std::collections::HashSet<String>, since: i64, upto: i64) -> Vec<Value> {
        let map = self.presence.lock();
        let mut out: Vec<(i64, Value)> = users
            .iter()
            .filter_map(|u| map.get_key_value(u))
            .filter(|(_, (_, _, _, serial))| *serial > since && *serial <= upto)
            .map(|(u, (p, msg, at, serial))| {
                let mut content = json!({ "presence": p, "last_active_ago": at.elapsed().as_millis() as u64 });
                if *p == PresenceState::Online {
                    content["currently_active"] = json!(true);
                }
                if let Some(m) = msg {
                    content["status_msg"] = json!(m);
                }
                (*serial, json!({ "type": "m.presence", "sender": u, "content": content }))
            })
            .collect();
        out.sort_by_key(|(s, _)| *s);
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// The current presence of each of `users`, changed lately or not (offline for those who
    /// never said): for people a client has just come to share a room with.
    pub fn presence_now(&self, users: &std::collections::BTreeSet<String>) -> Vec<Value> {
        let everyone = users.iter().cloned().collect();
        let known = self.presence_events(&everyone, i64::MIN, i64::MAX);
        let mut out: Vec<Value> = known;
        for u in users {
            if !out.iter().any(|e| e["sender"] == u.as_str()) {
                out.push(json!({ "type": "m.presence", "sender": u, "content": { "presence": "offline" } }));
            }
        }
        out
    }

    /// Stores a receipt (spec: POST /receipt). `thread_id` is "" for an unthreaded receipt.
    pub async fn put_receipt(
        &self,
        room: &RoomId,
        user: &UserId,
        receipt_type: &str,
        thread_id: &str,
        event_id: &str,
    ) -> Result<()> {
        let id = storage::receipts::put(
            &self.db.write,
            room.as_str(),
            receipt_type,
            user.as_str(),
            thread_id,
            event_id,
            now_ms(),
        )
        .await?;
        self.receipt_rooms.lock().advance(room.as_str(), id);
        self.receipts_head.fetch_max(id, Ordering::AcqRel);
        self.notifier.notify();
        if receipt_type == "m.read" {
            self.outbox.receipt(room, user, event_id, now_ms(), thread_id);
        }
        Ok(())
    }

    /// The rooms where `user` moved their own receipts in (since, upto]: their unread counts
    /// changed though no event came.
    pub async fn rooms_read_by(&self, user: &str, since: i64, upto: i64) -> Result<HashSet<String>> {
        if since >= upto {
            return Ok(HashSet::new());
        }
        Ok(storage::receipts::rooms_with_receipts_by(&self.db.read, user, since, upto).await?.into_iter().collect())
    }

    /// Whether the room has receipts newer than `since`.
    pub fn receipts_moved(&self, room: &str, since: i64) -> bool {
        self.receipt_rooms.lock().get(room) > since
    }

    /// The rooms whose receipts moved after `since`.
    pub fn receipt_rooms_moved_after(&self, since: i64) -> Vec<String> {
        self.receipt_rooms.lock().moved_after(since).map(str::to_owned).collect()
    }

    /// The rooms whose typing changed after `since` (a room is kept once anyone typed in it).
    pub fn typing_rooms_moved_after(&self, since: i64) -> Vec<String> {
        self.typing.lock().iter().filter(|(_, r)| r.changed > since).map(|(room, _)| room.clone()).collect()
    }

    /// The room's m.receipt event for receipts that changed in (since, upto], as `viewer` may
    /// see them (private receipts only to their owner).
    pub async fn receipt_event(&self, room: &str, since: i64, upto: i64, viewer: &str) -> Result<Option<Value>> {
        if !self.receipts_moved(room, since) {
            return Ok(None);
        }
        let rows = storage::receipts::changed(&self.db.read, room, since, upto).await?;
        let mut content: Map<String, Value> = Map::new();
        for r in rows {
            if r.receipt_type == "m.read.private" && r.user_id != viewer {
                continue;
            }
            let mut data = json!({ "ts": r.ts });
            if !r.thread_id.is_empty() {
                data["thread_id"] = json!(r.thread_id);
            }
            let by_event = content.entry(r.event_id).or_insert_with(|| json!({}));
            by_event[&r.receipt_type][&r.user_id] = data;
        }
        Ok((!content.is_empty()).then(|| json!({ "type": "m.receipt", "content": content })))
    }
}

#[cfg(test)]
mod presence_tests {
    use super::*;

    /// An `Ephemeral` of server h.test on a new database, whose users go offline `after` they
    /// stop syncing (the database's folder is kept with it).
    async fn ephemeral(after: Duration) -> (Arc<Ephemeral>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("h.db")).await.unwrap();
        let outbox =
            Arc::new(crate::service::federation::outbox::EduOutbox::new(ruma::server_name!("h.test").to_owned(), true));
        let mut e = Ephemeral::new(db, Arc::new(Notifier::default()), outbox).await.unwrap();
        e.offline_after = after;
        (Arc::new(e), dir)
    }

    #[tokio::test]
    async fn people_who_stop_syncing_go_offline_and_syncing_people_stay_online() {
        let (e, _dir) = ephemeral(Duration::from_millis(50)).await;
        let (ann, bob): (&UserId, &UserId) = (ruma::user_id!("@ann:h.test"), ruma::user_id!("@bob:h.test"));
        let ann_sync = e.syncing(ann);
        e.set_presence(ann, PresenceState::Online, None);
        drop(e.syncing(bob));
        e.set_presence(bob, PresenceState::Unavailable, Some("away".into()));
        let before = e.presence_head();
        tokio::time::sleep(Duration::from_millis(80)).await;
        e.expire_presence();
        assert_eq!(e.presence(ann).0, PresenceState::Online, "a sync is open");
        let (state, msg, _) = e.presence(bob);
        assert_eq!(state, PresenceState::Offline);
        assert_eq!(msg.as_deref(), Some("away"), "the status message stays");
        assert!(e.presence_head() > before, "the change is in the presence stream");
        drop(ann_sync);
        tokio::time::sleep(Duration::from_millis(80)).await;
        e.expire_presence();
        assert_eq!(e.presence(ann).0, PresenceState::Offline);
    }

    /// The expiry task sleeps until something is due, and only then: nothing due when nobody
    /// is online or typing; a typing notification or someone who stopped syncing sets the
    /// time, and the task ends them on time without a tick.
    #[tokio::test]
    async fn the_expiry_task_sleeps_until_something_is_due() {
        let (e, _dir) = ephemeral(Duration::from_millis(300)).await;
        assert_eq!(e.next_expiry(), None, "an idle server has nothing to wake for");
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(e.clone().run_expiry(cancel.clone()));

        let (ann, room) = (ruma::user_id!("@ann:h.test"), ruma::room_id!("!r:h.test"));
        let started = Instant::now();
        e.set_typing(room, ann, Some(Duration::from_millis(200)));
        let due = e.next_expiry().expect("the typing notification ends");
        assert!(due > started && due <= started + Duration::from_millis(250), "{:?}", due - started);
        let typing = e.typing_head();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(e.typing_head() > typing, "ended by the task");
        assert!(e.typing_event(room.as_str(), None).is_none());

        let sync = e.syncing(ann);
        e.set_presence(ann, PresenceState::Online, None);
        // Syncing: only the presence ping to other servers is due, 25 minutes from now.
        assert!(e.next_expiry().unwrap() > Instant::now() + Duration::from_secs(60));
        drop(sync);
        assert!(e.next_expiry().unwrap() <= Instant::now() + Duration::from_millis(301));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(e.presence(ann).0, PresenceState::Offline, "offline on time, by the task");
        assert_eq!(e.next_expiry(), None);
        cancel.cancel();
        task.await.unwrap();
    }
}
