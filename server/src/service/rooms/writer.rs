//! The event writer: one task commits every room event, taking all events that are waiting into
//! one transaction (group commit).
//!
//! A send builds and authorises its event under the room's lock, hands it to the writer and
//! advances the room's hot copy at once, then releases the lock and waits for the commit before
//! answering. So the next event of a busy room is built while the previous one is being
//! written, and ten people talking in one room cost one WAL sync per batch, not one per message.
//!
//! The hot copy runs ahead of the database. If a write fails, everything built on top of the
//! failed event must fail too: each room has an epoch, every job carries the epoch its hot copy
//! had, a failure bumps the room's epoch and drops the hot copy, and jobs from an older epoch
//! are refused. A failed batch is retried one event at a time, so one bad event (say, a
//! transaction ID that raced its own retry) fails alone with the events that depend on it.

use parking_lot::Mutex;
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use ruma::OwnedRoomId;
use tokio::sync::{mpsc, oneshot};

use super::cache::{EventCache, RoomHeads, RoomHot};
use crate::{
    service::{guarded::Guarded, notifier::Notifier, pusher::PushJob},
    storage::{
        Db,
        append::{self, Append, Appended},
        rooms::MembershipRow,
    },
};

/// Most events per transaction.
const MAX_BATCH: usize = 128;

/// Why an event was not written.
#[derive(Debug)]
pub enum WriteError {
    /// The database refused it (the error), or refused one it depends on (None).
    Failed(Option<sqlx::Error>),
}

/// Each user's memberships, for /sync (asked on every request). The writer updates a cached
/// user's list right after the commit that changed it; a membership change is the write that
/// moves the generation (see `Guarded`).
pub struct MembershipIndex {
    by_user: Guarded<HashMap<String, Arc<Vec<MembershipRow>>>>,
}

impl Default for MembershipIndex {
    fn default() -> Self {
        Self { by_user: Guarded::new(HashMap::new()) }
    }
}

impl MembershipIndex {
    pub fn get(&self, user: &str) -> Option<Arc<Vec<MembershipRow>>> {
        self.by_user.with(|m| m.get(user).cloned())
    }

    pub fn generation(&self) -> u64 {
        self.by_user.generation()
    }

    pub fn put_read(&self, generation: u64, user: &str, rows: Arc<Vec<MembershipRow>>) {
        self.by_user.fill(generation, |m| {
            m.insert(user.to_owned(), rows);
        });
    }

    /// A purged room: out of every cached list.
    fn room_removed(&self, room_id: &str) {
        self.by_user.write(|m| {
            for list in m.values_mut() {
                if list.iter().any(|r| r.room_id == room_id) {
                    Arc::make_mut(list).retain(|r| r.room_id != room_id);
                }
            }
        });
    }

    fn committed(&self, row: MembershipRow, user: &str) {
        self.by_user.write(|m| {
            if let Some(list) = m.get_mut(user) {
                let list = Arc::make_mut(list);
                list.retain(|r| r.room_id != row.room_id);
                list.push(row);
            }
        });
    }
}

/// What the writer and the rooms service share.
pub struct Shared {
    pub hot: Mutex<HashMap<OwnedRoomId, Arc<RoomHot>>>,
    epochs: Mutex<HashMap<String, u64>>,
    pub heads: RoomHeads,
    /// The highest stream position committed (every event up to it is readable).
    pub head: AtomicI64,
    /// The stream position of the latest committed event this server may send to others (one
    /// of its users' events, or one it relays); never behind what `head` shows. The federation
    /// sender skips its passes while only other servers' events are written.
    pub outbound: AtomicI64,
    /// ":" and this server's name: how its users' IDs end.
    pub local_suffix: String,
    pub notifier: Arc<Notifier>,
    pub cache: EventCache,
    pub memberships: MembershipIndex,
    push_jobs: mpsc::UnboundedSender<PushJob>,
    /// Told of every state event stored, once someone listens (see `Rooms::watch_state`).
    pub state_changes: std::sync::OnceLock<mpsc::UnboundedSender<StateChange>>,
    /// Events committed, by where their sender is (`local`, `remote`), for the metrics.
    pub persisted: prometheus::IntCounterVec,
    /// Seconds each group commit took (one transaction, up to `MAX_BATCH` events).
    pub commit_seconds: prometheus::Histogram,
}

/// A state event that was stored (accepted, and so part of the room's state).
#[derive(Debug, Clone)]
pub struct StateChange {
    pub room_id: String,
    pub event_type: String,
    pub state_key: String,
    pub sender: String,
}

impl Shared {
    pub fn new(
        server_name: &str,
        heads: RoomHeads,
        head: i64,
        notifier: Arc<Notifier>,
        cache: EventCache,
        push_jobs: mpsc::UnboundedSender<PushJob>,
    ) -> Self {
        Self {
            hot: Mutex::default(),
            epochs: Mutex::default(),
            heads,
            head: AtomicI64::new(head),
            // Not known for what is already stored: as if the latest event were one to send.
            outbound: AtomicI64::new(head),
            local_suffix: format!(":{server_name}"),
            notifier,
            cache,
            memberships: MembershipIndex::default(),
            push_jobs,
            state_changes: std::sync::OnceLock::new(),
            persisted: prometheus::IntCounterVec::new(
                prometheus::Opts::new("hearth_events_persisted_total", "Room events written, by the sender's server"),
                &["origin"],
            )
            .expect("a valid counter"),
            commit_seconds: crate::service::metrics::short_histogram(
                "hearth_event_commit_seconds",
                "Time of each event writer transaction (events waiting are written together)",
            ),
        }
    }

    /// The room's current epoch.
    pub fn epoch(&self, room_id: &str) -> u64 {
        self.epochs.lock().get(room_id).copied().unwrap_or(0)
    }

    /// The room was purged from the database: nothing about it stays in memory, and a hot copy
    /// or job built before is void.
    pub fn room_removed(&self, room_id: &str, event_ids: &[String]) {
        self.poison(room_id);
        self.heads.remove(room_id);
        self.cache.forget_all(event_ids);
        self.memberships.room_removed(room_id);
    }

    /// A write of the room failed: what was built on it is void.
    fn poison(&self, room_id: &str) {
        *self.epochs.lock().entry(room_id.to_owned()).or_default() += 1;
        if let Ok(id) = ruma::RoomId::parse(room_id) {
            self.hot.lock().remove(&id);
        }
    }
}

pub struct Job {
    pub append: Append,
    pub epoch: u64,
    pub done: oneshot::Sender<Result<Appended, WriteError>>,
    /// What the push gateway needs, for the notified users who turn out to have pushers.
    pub push: Option<PushInfo>,
}

/// One notifying event's push details, turned into jobs for the pusher once it is committed
/// (here, not in the request: a sender who hangs up must not cost the others their pushes).
pub struct PushInfo {
    pub event: serde_json::Value,
    pub actions: HashMap<String, Vec<ruma::push::Action>>,
    pub room_name: Option<String>,
    pub sender_display_name: Option<String>,
}

/// What the writer is handed: an event to write, or a barrier answered once every event
/// handed over before it is written or refused (a room purge waits on one).
// Nearly every message is an event: boxing it to shrink the rare barrier would cost an
// allocation per event.
#[allow(clippy::large_enum_variant)]
pub enum Msg {
    Append(Job),
    Barrier(oneshot::Sender<()>),
}

impl From<Job> for Msg {
    fn from(j: Job) -> Self {
        Msg::Append(j)
    }
}

/// Starts the writer task; it ends when every sender is dropped.
pub fn spawn(db: Db, shared: Arc<Shared>) -> mpsc::UnboundedSender<Msg> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(db, shared, rx));
    tx
}

async fn run(db: Db, shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = Vec::new();
        let mut barrier = None;
        match first {
            Msg::Append(j) => jobs.push(j),
            Msg::Barrier(b) => {
                let _ = b.send(());
                continue;
            }
        }
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Append(j)) => jobs.push(j),
                Ok(Msg::Barrier(b)) => {
                    barrier = Some(b);
                    break;
                }
                Err(_) => break,
            }
        }
        write_batch(&db, &shared, jobs).await;
        if let Some(b) = barrier {
            let _ = b.send(());
        }
    }
}

/// Writes a batch in one transaction, or one event at a time when it fails.
async fn write_batch(db: &Db, shared: &Shared, jobs: Vec<Job>) {
    let mut live = Vec::with_capacity(jobs.len());
    for j in jobs {
        if j.epoch < shared.epoch(&j.append.event.room_id) {
            refuse(shared, j, None);
        } else {
            live.push(j);
        }
    }
    if live.is_empty() {
        return;
    }
    let mut conn = match db.acquire_write().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the event writer could not reach the database");
            for j in live {
                shared.poison(&j.append.event.room_id);
                refuse(shared, j, None);
            }
            return;
        }
    };
    let all: Vec<&Append> = live.iter().map(|j| &j.append).collect();
    let timer = shared.commit_seconds.start_timer();
    let appended = append::append_all(&mut conn, &all).await;
    timer.observe_duration();
    match appended {
        Ok(results) => finish(shared, live.into_iter().zip(results).collect()),
        Err(e) if live.len() == 1 => {
            let j = live.pop().expect("one job");
            tracing::warn!(event_id = %j.append.event.event_id, error = %e, "event not written");
            shared.poison(&j.append.event.room_id);
            refuse(shared, j, Some(e));
        }
        Err(_) => {
            // One at a time, so only the bad event and those built on it fail.
            let mut failed_rooms: HashSet<String> = HashSet::new();
            for j in live {
                if failed_rooms.contains(&j.append.event.room_id) {
                    refuse(shared, j, None);
                    continue;
                }
                match append::append_all(&mut conn, &[&j.append]).await {
                    Ok(mut r) => finish(shared, vec![(j, r.pop().unwrap_or_default())]),
                    Err(e) => {
                        tracing::warn!(event_id = %j.append.event.event_id, error = %e, "event not written");
                        failed_rooms.insert(j.append.event.room_id.clone());
                        shared.poison(&j.append.event.room_id);
                        refuse(shared, j, Some(e));
                    }
                }
            }
        }
    }
}

/// Committed: record where each room's stream is, then move the global head (in that order:
/// /sync skips rooms whose head is behind its token), wake /sync and answer the senders.
fn finish(shared: &Shared, done: Vec<(Job, Appended)>) {
    let mut max = 0;
    for (j, r) in &done {
        shared.cache.committed(&j.append.event.event_id, r.stream);
        shared.heads.advance(&j.append.event.room_id, r.stream, j.append.relation.is_some());
        for m in &j.append.memberships {
            let row = MembershipRow {
                room_id: j.append.event.room_id.clone(),
                membership: m.membership.clone(),
                event_id: m.event_id.clone(),
                stream_ordering: r.stream,
            };
            shared.memberships.committed(row, &m.user_id);
        }
        max = max.max(r.stream);
        let local = j.append.event.sender.ends_with(&shared.local_suffix);
        shared.persisted.with_label_values(&[if local { "local" } else { "remote" }]).inc();
        if j.append.event.relay || local {
            shared.outbound.fetch_max(r.stream, Ordering::AcqRel);
        }
    }
    // After `outbound`: whoever reads the head and then `outbound` sees this batch in both.
    shared.head.fetch_max(max, Ordering::AcqRel);
    shared.notifier.notify();
    let state_changes = shared.state_changes.get();
    for (j, r) in done {
        let e = &j.append.event;
        if let (Some(tx), Some(key), false, false, false) =
            (state_changes, &e.state_key, e.rejected, e.soft_failed, e.outlier)
        {
            let _ = tx.send(StateChange {
                room_id: e.room_id.clone(),
                event_type: e.event_type.clone(),
                state_key: key.clone(),
                sender: e.sender.clone(),
            });
        }
        if let Some(push) = &j.push {
            for user in &r.users_with_pushers {
                let Some(actions) = push.actions.get(user) else { continue };
                let _ = shared.push_jobs.send(PushJob {
                    user_id: user.clone(),
                    room_id: j.append.event.room_id.clone(),
                    event: push.event.clone(),
                    actions: actions.clone(),
                    unread: 0,
                    room_name: push.room_name.clone(),
                    sender_display_name: push.sender_display_name.clone(),
                });
            }
        }
        let _ = j.done.send(Ok(r));
    }
}

fn refuse(shared: &Shared, j: Job, error: Option<sqlx::Error>) {
    // The event was cached when it was built; it does not exist.
    shared.cache.forget(&j.append.event.event_id);
    let _ = j.done.send(Err(WriteError::Failed(error)));
}
