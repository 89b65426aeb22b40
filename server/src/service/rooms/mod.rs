//! Rooms: building local events as signed PDUs, checking them against the auth rules of the
//! room's version, and appending them to the room's graph, state and timeline.
//!
//! Every event of a room is appended under that room's lock, so "read current state, build,
//! authorise, write" is atomic per room while different rooms proceed in parallel. Each append is
//! one SQLite transaction; afterwards the stream head moves and the notifier wakes long-polling
//! /sync requests.

pub mod admin;
pub mod aliases;
pub mod backfill;
pub mod cache;
pub mod create;
pub mod incoming;
pub mod membership;
pub mod profile;
pub mod purge;
pub mod push;
pub mod queries;
pub mod redaction;
pub mod relations;
pub mod remote_join;
pub mod spaces;
pub mod upgrade;
pub mod visibility;

/// A user's membership in a room, as the services hand it out.
pub use crate::storage::{
    reports::{EventReport, ReportFilter},
    rooms::MembershipRow,
};
pub use writer::StateChange;
pub mod writer;

use parking_lot::Mutex;
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use self::{
    cache::{EventCache, RoomHeads, RoomHot, StateCache, StateStep},
    writer::{Job, Shared, WriteError},
};
use super::{account_data::AccountData, notifier::Notifier, signing::ServerKeys};
use crate::{
    config::Config,
    error::{Error, Result},
    matrix::pdu::{self, NewPdu, Pdu},
    storage::{
        self, Db,
        append::{CurrentState, MembershipChange},
        events::EventRow,
        now_ms,
        rooms::RoomRow,
    },
};
use hashlink::LruCache;
use http::StatusCode;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, RoomId,
    RoomVersionId, UInt, UserId,
    api::error::ErrorKind,
    events::{StateEventType, TimelineEventType},
    room_version_rules::RoomVersionRules,
    state_res,
};

/// How many events the in-memory event cache holds: about 3 KiB each (the signed JSON text, its
/// parsed form, and once shown to a client its content written out: a few hundred bytes more),
/// so a few MiB, enough for the state and recent timelines of a family's active rooms.
const EVENT_CACHE_CAPACITY: usize = 1024;
/// How many recent client transaction IDs are remembered in memory (older ones are found in
/// the database when a retry collides with them).
const TXN_MEMORY: usize = 4096;
/// How many state entries (summed over groups) the state cache holds: a few MiB.
const STATE_CACHE_ENTRIES: usize = 32_768;

/// The most prev_events an event may reference (spec: server-server API, PDU format).
const MAX_PREV_EVENTS: usize = 20;

/// Where an event from another server sits in the room's state, decided by `incoming` (local
/// events derive it from the hot copy).
#[derive(Default)]
pub(crate) struct Placement {
    pub rejected: bool,
    pub soft_failed: bool,
    /// New state groups to write, parents first.
    pub state_groups: Vec<storage::append::NewStateGroup>,
    /// The state after the event.
    pub state_group: Option<i64>,
    /// The room's current state afterwards, when it differs from `state_group`.
    pub resolved_state_group: Option<i64>,
    pub current: CurrentState,
    pub memberships: Vec<MembershipChange>,
    /// Outliers stored with the event (a remote join's state and auth chain).
    pub outliers: Vec<storage::append::NewOutlier>,
    /// The state before the event, when its prev events are not stored.
    pub state_before_group: Option<i64>,
    /// The event becomes the room's only forward extremity.
    pub reset_extremities: bool,
    /// The event itself is an outlier (a remote invite, or the rejection of one).
    pub outlier: bool,
    /// This server sends the event on to the room's other servers (see `NewEvent::relay`).
    pub relay: bool,
}

/// Which device sent an event with which transaction ID.
#[derive(Clone, Copy)]
pub struct Txn<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub txn_id: &'a str,
}

impl Txn<'_> {
    /// A transaction is one device's ID on one endpoint (spec: "Transaction identifiers"):
    /// the same ID sent to another room, or as another event type, is another event.
    fn key(&self, room_id: &str, kind: &str) -> TxnKey {
        (
            self.user_id.to_owned(),
            self.device_id.to_owned(),
            room_id.to_owned(),
            kind.to_owned(),
            self.txn_id.to_owned(),
        )
    }
}

pub struct Rooms {
    db: Db,
    config: Arc<Config>,
    keys: Arc<ServerKeys>,
    locks: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
    /// Push rules live in account data.
    account_data: Arc<AccountData>,
    /// Hot copies, the event cache, stream heads: shared with the writer task.
    shared: Arc<Shared>,
    writer: tokio::sync::mpsc::UnboundedSender<writer::Msg>,
    states: StateCache,
    /// The last state group ID handed out (IDs are allocated here so one append is one
    /// round trip; a failed append leaves a gap, which is harmless).
    last_state_group: AtomicI64,
    /// Recent client transaction IDs and the event each produced, with whether its write
    /// succeeded (None while in flight), so a retry answers the first event.
    txns: Mutex<LruCache<TxnKey, (OwnedEventId, TxnOutcome)>>,
    /// Whether any local member's leave from a purged room is kept (so /sync need not ask).
    purged_leaves: std::sync::atomic::AtomicBool,
}

/// A client transaction: (user, device, room, event type, transaction ID).
type TxnKey = (String, String, String, String, String);
/// Whether a transaction's write succeeded (None while in flight).
type TxnOutcome = tokio::sync::watch::Receiver<Option<bool>>;

/// A built, signed and authorised event, not yet stored.
struct BuiltEvent {
    event_id: OwnedEventId,
    json: CanonicalJsonObject,
    pdu: Pdu,
    prev_ids: Vec<String>,
    auth_ids: Vec<String>,
}

/// An event handed to the writer: the caller releases the room lock, then awaits `complete`.
pub struct Pending {
    pub event_id: OwnedEventId,
    done: tokio::sync::oneshot::Receiver<std::result::Result<storage::append::Appended, WriteError>>,
    txn: Option<(TxnKey, tokio::sync::watch::Sender<Option<bool>>)>,
}

/// A room event as stored, parsed.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub row: EventRow,
    /// The PDU. Not changed once the event is built: a redaction makes a new `StoredEvent`
    /// (and `content_json` is written from this). An event read from the database builds it
    /// only when something asks (see [`parse_row`]).
    json: std::sync::OnceLock<CanonicalJsonObject>,
    /// The PDU's `origin_server_ts`, read once: every view of the event works out its `age`
    /// from it, and a lookup in the PDU's map per view was a tenth of an initial sync's CPU.
    origin_server_ts: Option<i64>,
    /// The PDU's `content` as JSON text, written the first time a client is shown the event:
    /// the event cache's copy is shown to every member's /sync, and writing the content out
    /// again for each was the largest part of writing an answer. An event read from the
    /// database has it from the start, as it was stored.
    content_json: std::sync::OnceLock<Option<Box<serde_json::value::RawValue>>>,
    /// What else a client is shown of an event read from the database, taken from its text
    /// (`None` for an event built with its map, which is then read instead).
    shown: Option<Shown>,
    /// The start of the event's client JSON in a /sync room block, written the second time one
    /// shows it (see [`crate::matrix::client_event::client_head`]).
    client_head: std::sync::OnceLock<Option<Box<str>>>,
    /// Whether a /sync room block has shown the event. Its first view writes it directly: most
    /// events read past the event cache are shown once and dropped, and keeping a head for
    /// those was one more copy each (writing a 2,000-room initial sync's room blocks: 182 M
    /// instructions with the head kept from the first view, 133 M from the second).
    shown_once: std::sync::OnceLock<()>,
}

/// The fields of a stored event's PDU that its client view writes besides the row's columns
/// and its content (see [`crate::matrix::client_event::Pdu::shown`]).
#[derive(Clone, Debug)]
struct Shown {
    /// The top-level `redacts` of a redaction in room versions before 11.
    redacts: Option<Box<serde_json::value::RawValue>>,
}

/// What [`parse_row`] reads of a PDU's text without building its map: every other field is
/// only checked to be JSON.
#[derive(serde::Deserialize)]
struct Light<'a> {
    #[serde(borrow)]
    content: Option<&'a serde_json::value::RawValue>,
    origin_server_ts: Option<serde_json::Value>,
    #[serde(borrow)]
    redacts: Option<&'a serde_json::value::RawValue>,
    /// Present: the view merges it with its own `unsigned` fields, from the map.
    #[serde(borrow)]
    unsigned: Option<&'a serde_json::value::RawValue>,
}

impl StoredEvent {
    /// An event with its map built (the server's own events are cached from their text, see
    /// `store_locked_as`; tests compare the two).
    #[cfg(test)]
    pub fn new(row: EventRow, json: CanonicalJsonObject) -> StoredEvent {
        let origin_server_ts = crate::matrix::client_event::origin_server_ts(&json);
        StoredEvent {
            row,
            json: json.into(),
            origin_server_ts,
            content_json: Default::default(),
            shown: None,
            client_head: Default::default(),
            shown_once: Default::default(),
        }
    }

    /// The PDU's `origin_server_ts`, if it is an integer (read without the map).
    pub fn origin_server_ts(&self) -> Option<i64> {
        self.origin_server_ts
    }

    /// The PDU (as redacted, when it was).
    pub fn json(&self) -> &CanonicalJsonObject {
        self.json.get_or_init(|| {
            let text = self.row.redacted_json.as_deref().unwrap_or(&self.row.pdu);
            // Checked to be canonical JSON when the row was read (`parse_row`), and stored
            // only after it was: this cannot fail short of a change to the file under us.
            crate::matrix::canonical::parse_object(text).unwrap_or_else(|e| {
                tracing::error!(event_id = %self.row.event_id, "a stored event could not be parsed again: {e}");
                CanonicalJsonObject::new()
            })
        })
    }
}

/// A cached event shown to clients without copying its PDU (see [`ClientEvent`]).
///
/// [`ClientEvent`]: crate::matrix::client_event::ClientEvent
impl crate::matrix::client_event::Pdu for Arc<StoredEvent> {
    fn json(&self) -> &CanonicalJsonObject {
        StoredEvent::json(self)
    }
    fn event_id(&self) -> &str {
        &self.row.event_id
    }
    fn room_id(&self) -> &str {
        &self.row.room_id
    }
    fn txn(&self) -> Option<(&str, &str)> {
        self.row.txn_device_id.as_deref().zip(self.row.txn_id.as_deref())
    }
    fn event_type(&self) -> &str {
        &self.row.event_type
    }
    fn sender(&self) -> &str {
        &self.row.sender
    }
    fn state_key(&self) -> Option<&str> {
        self.row.state_key.as_deref()
    }
    fn origin_server_ts(&self) -> Option<i64> {
        StoredEvent::origin_server_ts(self)
    }
    fn content_json(&self) -> Option<&serde_json::value::RawValue> {
        let written = self.content_json.get_or_init(|| {
            StoredEvent::json(self).get("content").and_then(|content| serde_json::value::to_raw_value(content).ok())
        });
        written.as_deref()
    }
    fn shown(&self) -> Option<crate::matrix::client_event::Shown<'_>> {
        self.shown.as_ref().map(|s| crate::matrix::client_event::Shown { redacts: s.redacts.as_deref() })
    }
    fn client_head(&self) -> Option<&str> {
        if let Some(head) = self.client_head.get() {
            return head.as_deref();
        }
        // The first view is written directly; the head is kept from the second on.
        if self.shown_once.set(()).is_ok() {
            return None;
        }
        self.client_head.get_or_init(|| crate::matrix::client_event::client_head(self)).as_deref()
    }
}

pub fn rules_for(version: &str) -> Result<(RoomVersionId, RoomVersionRules)> {
    let id = RoomVersionId::try_from(version).map_err(Error::internal)?;
    let rules = id.rules().ok_or_else(|| Error::internal(format!("no rules for room version {version}")))?;
    Ok((id, rules))
}

impl Rooms {
    pub async fn new(
        db: Db,
        config: Arc<Config>,
        keys: Arc<ServerKeys>,
        notifier: Arc<Notifier>,
        push_jobs: tokio::sync::mpsc::UnboundedSender<super::pusher::PushJob>,
        account_data: Arc<AccountData>,
    ) -> Result<Self> {
        let last_state_group = storage::state::max_id(&db.write).await?;
        let heads = RoomHeads::load(&db).await?;
        // A purged room may have held the latest positions: the head is never below them.
        let floor = storage::purge::events_floor(&db.read).await?;
        let head = heads.latest_of_all().max(floor);
        let purged_leaves = storage::purge::any_leaves(&db.read).await?;
        let shared = Arc::new(Shared::new(
            config.server_name.as_str(),
            heads,
            head,
            notifier,
            EventCache::new(EVENT_CACHE_CAPACITY),
            push_jobs,
        ));
        let writer = writer::spawn(db.clone(), shared.clone());
        Ok(Self {
            db,
            config,
            keys,
            locks: Mutex::new(HashMap::new()),
            account_data,
            shared,
            writer,
            states: StateCache::new(STATE_CACHE_ENTRIES),
            last_state_group: AtomicI64::new(last_state_group),
            txns: Mutex::new(LruCache::new(TXN_MEMORY)),
            purged_leaves: std::sync::atomic::AtomicBool::new(purged_leaves),
        })
    }

    /// The room's hot copy, loading it when absent (or void after a failed write). Only call
    /// with the room's lock held.
    async fn hot_locked(&self, room_id: &RoomId) -> Result<Option<Arc<RoomHot>>> {
        let epoch = self.shared.epoch(room_id.as_str());
        if let Some(h) = self.peek_hot(room_id).filter(|h| h.epoch == epoch) {
            return Ok(Some(h));
        }
        let Some(loaded) = RoomHot::load(&self.db, room_id.as_str(), epoch).await? else {
            return Ok(None);
        };
        let loaded = Arc::new(loaded);
        self.shared.hot.lock().insert(room_id.to_owned(), loaded.clone());
        Ok(Some(loaded))
    }

    /// The room's hot copy if one is installed (never loads one).
    fn peek_hot(&self, room_id: &RoomId) -> Option<Arc<RoomHot>> {
        self.shared.hot.lock().get(room_id).cloned()
    }

    /// The stream position of the room's latest event (0 for none).
    pub fn latest_event(&self, room_id: &str) -> i64 {
        self.shared.heads.latest_event(room_id)
    }

    /// The rooms with an event after stream position `pos` (whoever is in them).
    pub fn rooms_moved_after(&self, pos: i64) -> Vec<String> {
        self.shared.heads.moved_after(pos)
    }

    /// Whether any event after `pos` in the room relates to another: if not, events from
    /// `pos` on have no bundled aggregations (a relation always comes after its parent).
    pub fn relations_after(&self, room_id: &str, pos: i64) -> bool {
        self.shared.heads.latest_relation(room_id) > pos
    }

    /// Moves whenever a membership changes (for caches of who is in which room).
    pub fn membership_generation(&self) -> u64 {
        self.shared.memberships.generation()
    }

    /// The event writer's counters, for the metrics registry.
    pub fn metrics(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![Box::new(self.shared.persisted.clone()), Box::new(self.shared.commit_seconds.clone())]
    }

    /// The latest committed stream position.
    pub fn stream_head(&self) -> i64 {
        self.shared.head.load(Ordering::Acquire)
    }

    /// The stream position of the latest committed event this server may send to other servers
    /// (its users' events and those it relays). Read after `stream_head`, it covers every
    /// event up to the head that was read.
    pub fn outbound_head(&self) -> i64 {
        self.shared.outbound.load(Ordering::Acquire)
    }

    fn lock_for(&self, room_id: &RoomId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().entry(room_id.to_owned()).or_default().clone()
    }

    /// The room's version, `None` for a room unknown here. A room's version never changes, so
    /// any hot copy of it answers without reading the database.
    pub async fn room_version(&self, room_id: &RoomId) -> Result<Option<String>> {
        if let Some(hot) = self.peek_hot(room_id) {
            return Ok(Some(hot.room.room_version.clone()));
        }
        Ok(self.room(room_id).await?.map(|r| r.room_version))
    }

    pub async fn room(&self, room_id: &RoomId) -> Result<Option<RoomRow>> {
        Ok(storage::rooms::get(&self.db.read, room_id.as_str()).await?)
    }

    pub async fn event(&self, event_id: &str) -> Result<Option<StoredEvent>> {
        if let Some(e) = self.shared.cache.get(event_id) {
            return Ok(Some((*e).clone()));
        }
        let generation = self.shared.cache.generation();
        let Some(e) = storage::events::get(&self.db.read, event_id).await?.map(parse_row).transpose()? else {
            return Ok(None);
        };
        self.shared.cache.put_read(generation, Arc::new(e.clone()));
        Ok(Some(e))
    }

    /// The events with these IDs that exist, in no particular order.
    pub async fn events(&self, ids: &[String]) -> Result<Vec<StoredEvent>> {
        Ok(self.events_shared(ids).await?.into_iter().map(|e| (*e).clone()).collect())
    }

    /// `events` without copying cached events.
    pub async fn events_shared(&self, ids: &[String]) -> Result<Vec<Arc<StoredEvent>>> {
        self.events_shared_caching(ids, true).await
    }

    /// `events_shared` for a read of more events than the cache holds (the initial sync of a
    /// user in thousands of rooms): cached events are used, the others are not kept, so such a
    /// read neither churns through the cache nor pushes out what the active rooms use.
    pub async fn events_shared_scan(&self, ids: &[String]) -> Result<Vec<Arc<StoredEvent>>> {
        self.events_shared_caching(ids, false).await
    }

    /// Whether reading `events` events at once would go through the cache without a hit to show
    /// for it (see `events_shared_scan`).
    pub fn is_scan(&self, events: usize) -> bool {
        events > EVENT_CACHE_CAPACITY / 2
    }

    async fn events_shared_caching(&self, ids: &[String], keep: bool) -> Result<Vec<Arc<StoredEvent>>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.shared.cache.get(id) {
                Some(e) => out.push(e),
                None => missing.push(id.clone()),
            }
        }
        let generation = self.shared.cache.generation();
        for row in storage::events::get_many(&self.db.read, &missing).await? {
            let e = Arc::new(parse_row(row)?);
            if keep {
                self.shared.cache.put_read(generation, e.clone());
            }
            out.push(e);
        }
        Ok(out)
    }

    /// The first page of each room's timeline: its newest `page` events at or before `upto`
    /// that a timeline shows (see `storage::events::latest_per_room`), one query for all the
    /// rooms. With `scan` (see `is_scan`), more events than the cache holds: they are read
    /// with their JSON, past the cache. Otherwise only their IDs are read, and the events come
    /// from the cache, which loads those it lacks.
    pub async fn latest_pages(&self, rooms: &[&str], upto: i64, page: i64, scan: bool) -> Result<TimelinePages> {
        let events: Vec<Arc<StoredEvent>> = if scan {
            let rows = storage::events::latest_per_room(&self.db.read, rooms, upto, page).await?;
            rows.into_iter().map(|row| Ok(Arc::new(parse_row(row)?))).collect::<Result<_>>()?
        } else {
            let ids = storage::events::latest_ids_per_room(&self.db.read, rooms, upto, page).await?;
            self.events_shared(&ids).await?
        };
        let mut pages: foldhash::HashMap<String, Vec<Arc<StoredEvent>>> =
            rooms.iter().map(|r| ((*r).to_owned(), Vec::new())).collect();
        for event in events {
            if let Some(page) = pages.get_mut(&event.row.room_id) {
                page.push(event);
            }
        }
        for page in pages.values_mut() {
            page.sort_unstable_by_key(|e| std::cmp::Reverse(e.row.stream_ordering));
        }
        Ok(TimelinePages { rows: pages })
    }

    /// `events`, in the order of `ids` (unknown IDs are left out).
    pub async fn events_in_order(&self, ids: &[String]) -> Result<Vec<StoredEvent>> {
        let mut events = self.events(ids).await?;
        let order: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        events.sort_by_key(|e| order.get(e.row.event_id.as_str()).copied());
        Ok(events)
    }

    /// Current state of the room as (type, state_key) -> event ID.
    pub async fn current_state_ids(&self, room_id: &RoomId) -> Result<storage::state::StateMap> {
        Ok(storage::rooms::current_state(&self.db.read, room_id.as_str()).await?)
    }

    /// The current state event at (type, key), if any.
    /// (Read from the database, not the hot copy: the hot copy may already hold state whose
    /// commit is still in flight, which only the room's next events may build on.)
    pub async fn current_state_event(
        &self,
        room_id: &RoomId,
        event_type: &str,
        state_key: &str,
    ) -> Result<Option<StoredEvent>> {
        match storage::rooms::current_state_event(&self.db.read, room_id.as_str(), event_type, state_key).await? {
            Some(id) => self.event(&id).await,
            None => Ok(None),
        }
    }

    /// The content of the current state event at (type, ""), or JSON null.
    pub async fn state_content(&self, room_id: &RoomId, event_type: &str) -> Result<serde_json::Value> {
        Ok(self.current_state_event(room_id, event_type, "").await?.map(|e| content_of(e.json())).unwrap_or_default())
    }

    /// Every membership the user has (any state), from the in-memory index when warm.
    pub async fn memberships_of(&self, user_id: &UserId) -> Result<Arc<Vec<storage::rooms::MembershipRow>>> {
        if let Some(rows) = self.shared.memberships.get(user_id.as_str()) {
            return Ok(rows);
        }
        let generation = self.shared.memberships.generation();
        let rows = Arc::new(storage::rooms::memberships_of(&self.db.read, user_id.as_str()).await?);
        self.shared.memberships.put_read(generation, user_id.as_str(), rows.clone());
        Ok(rows)
    }

    pub async fn membership(&self, room_id: &RoomId, user_id: &UserId) -> Result<Option<String>> {
        Ok(storage::rooms::membership(&self.db.read, room_id.as_str(), user_id.as_str()).await?.map(|m| m.membership))
    }

    /// Whether `txn` is a transaction this server remembers (in flight or done): a retry, which
    /// `send` and `redact` answer with the first event.
    /// Every state event stored from now on, in commit order (one listener: the delayed events).
    pub fn watch_state(&self) -> tokio::sync::mpsc::UnboundedReceiver<StateChange> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if self.shared.state_changes.set(tx).is_err() {
            tracing::error!("a second listener for state changes was refused");
        }
        rx
    }

    /// Sets a piece of room state as `sender` (spec: PUT /rooms/{roomId}/state), with the
    /// checks and consequences some state types have: a canonical alias must point at the
    /// room, and guests leave when guest access is withdrawn.
    pub async fn set_state(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        kind: &str,
        state_key: &str,
        content: serde_json::Value,
        txn: Option<Txn<'_>>,
    ) -> Result<OwnedEventId> {
        if kind == "m.room.canonical_alias" && state_key.is_empty() {
            self.check_canonical_alias(room_id, &content).await?;
        }
        let event_id = self.send(room_id, sender, kind, Some(state_key), content, txn).await?;
        if kind == "m.room.guest_access" && state_key.is_empty() {
            self.evict_guests_unless_allowed(room_id).await?;
        }
        Ok(event_id)
    }

    /// Whether the transaction was sent already (to this room, as this event type).
    pub fn is_retry(&self, room_id: &RoomId, kind: &str, txn: Txn<'_>) -> bool {
        self.txns.lock().peek(&txn.key(room_id.as_str(), kind)).is_some()
    }

    /// The event a transaction made, as the database has it (the memory of transactions may
    /// have lost it).
    async fn stored_txn(&self, room_id: &RoomId, kind: &str, t: Txn<'_>) -> Result<Option<OwnedEventId>> {
        let found =
            storage::events::by_txn(&self.db.write, t.user_id, t.device_id, room_id.as_str(), kind, t.txn_id).await?;
        found.map(|(first, _)| EventId::parse(first).map_err(Error::internal)).transpose()
    }

    /// Sends an event as `sender` (spec: PUT /rooms/{roomId}/send and /state). Repeating a
    /// transaction ID from the same device returns the first event instead of sending again.
    pub async fn send(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: serde_json::Value,
        txn: Option<Txn<'_>>,
    ) -> Result<OwnedEventId> {
        let content = to_canonical_object(content)?;
        loop {
            let pending = {
                let lock = self.lock_for(room_id);
                let _guard = lock.lock().await;
                if let Some(t) = txn {
                    let key = t.key(room_id.as_str(), kind);
                    let seen = self.txns.lock().get(&key).cloned();
                    if let Some((event_id, mut outcome)) = seen {
                        drop(_guard);
                        // A retry of a send: the answer is the first event, once it is stored.
                        match outcome.wait_for(|o| o.is_some()).await.map(|o| *o == Some(true)) {
                            Ok(true) => return Ok(event_id),
                            // The first attempt failed and was forgotten: try again.
                            Ok(false) => continue,
                            Err(_) => {
                                // The first request went away before learning its outcome; the
                                // database knows (and a collision below finds it too).
                                self.txns.lock().remove(&key);
                                if let Some(first) = self.stored_txn(room_id, kind, t).await? {
                                    return Ok(first);
                                }
                                continue;
                            }
                        }
                    }
                }
                let hot = self.hot_locked(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
                if let Some(key) = state_key
                    && let Some(same) = self.unchanged_state(&hot, sender, kind, key, &content).await?
                {
                    return Ok(same);
                }
                let mut content = content.clone();
                let mut top_level_redacts = None;
                if kind == "m.room.redaction" {
                    // Room versions before 11 carry `redacts` at the top level, not in content.
                    let (_, rules) = rules_for(&hot.room.room_version)?;
                    if !rules.redaction.content_field_redacts
                        && let Some(CanonicalJsonValue::String(r)) = content.remove("redacts")
                    {
                        top_level_redacts = Some(r);
                    }
                }
                self.append_locked(&hot, sender, kind, state_key, content, txn, top_level_redacts.as_deref()).await?
            };
            // The room is free for the next event while this one is written.
            let event_id = pending.event_id.clone();
            return match self.complete(pending).await {
                Ok(_) => Ok(event_id),
                Err(e) => {
                    // A transaction ID used before this server remembered it collides in the
                    // database; the answer is the first event.
                    if let Some(t) = txn
                        && let Some(first) = self.stored_txn(room_id, kind, t).await?
                    {
                        return Ok(first);
                    }
                    Err(e)
                }
            };
        }
    }

    /// The current state event a new state event would repeat: same type, state key, sender
    /// and content. Sending it again changes nothing, so the answer is the existing event (as
    /// Synapse: a client re-sending a name, or joining a room it is in, makes no new event).
    async fn unchanged_state(
        &self,
        hot: &RoomHot,
        sender: &UserId,
        kind: &str,
        state_key: &str,
        content: &CanonicalJsonObject,
    ) -> Result<Option<OwnedEventId>> {
        let Some(id) = hot.state.get(&(kind.to_owned(), state_key.to_owned())) else {
            return Ok(None);
        };
        let Some(current) = self.event(id).await? else {
            return Ok(None);
        };
        let same_sender =
            matches!(current.json().get("sender"), Some(CanonicalJsonValue::String(s)) if s == sender.as_str());
        let same_content = matches!(current.json().get("content"), Some(CanonicalJsonValue::Object(c)) if c == content);
        if same_sender && same_content {
            return Ok(Some(EventId::parse(id).map_err(Error::internal)?));
        }
        Ok(None)
    }

    /// Waits for a pending event's commit (the writer queues its push notifications). Returns
    /// its stream position.
    async fn complete(&self, p: Pending) -> Result<i64> {
        let outcome = p.done.await.unwrap_or(Err(WriteError::Failed(None)));
        let ok = outcome.is_ok();
        if let Some((key, watch)) = p.txn {
            if !ok {
                self.txns.lock().remove(&key);
            }
            let _ = watch.send(Some(ok));
        }
        match outcome {
            Ok(a) => Ok(a.stream),
            Err(WriteError::Failed(Some(sqlx::Error::Database(d)))) if d.is_unique_violation() => Err(Error::matrix(
                StatusCode::CONFLICT,
                ErrorKind::Unknown,
                "This transaction ID was already used for another event",
            )),
            Err(WriteError::Failed(Some(e))) => Err(e.into()),
            Err(WriteError::Failed(None)) => {
                Err(Error::internal("the event could not be stored because an earlier event of the room failed"))
            }
        }
    }

    /// Builds, authorises and stores one event. The caller holds the room lock.
    #[allow(clippy::too_many_arguments)]
    async fn append_locked(
        &self,
        hot: &RoomHot,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: CanonicalJsonObject,
        txn: Option<Txn<'_>>,
        top_level_redacts: Option<&str>,
    ) -> Result<Pending> {
        let b = self.build_locked(hot, sender, kind, state_key, content, top_level_redacts).await?;
        self.store_locked(hot, None, &b.event_id, &b.json, &b.pdu, b.prev_ids, b.auth_ids, txn, None).await
    }

    /// Builds and signs the next event of the room (prev events: its forward extremities; auth
    /// events: from its current state) and checks it against the auth rules. Nothing is stored.
    async fn build_locked(
        &self,
        hot: &RoomHot,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: CanonicalJsonObject,
        top_level_redacts: Option<&str>,
    ) -> Result<BuiltEvent> {
        let room = &hot.room;
        let (version, rules) = rules_for(&room.room_version)?;
        let room_id = RoomId::parse(&room.room_id).map_err(Error::internal)?;

        // Auth events: the entries of the current state the auth rules will look at.
        let raw_content = serde_json::value::to_raw_value(&content).map_err(Error::internal)?;
        let timeline_type: TimelineEventType = kind.into();
        let auth_keys =
            state_res::auth_types_for_event(&timeline_type, sender, state_key, &raw_content, &rules.authorization)
                .map_err(|e| Error::bad_json(format!("Invalid event: {e}")))?;
        let mut state_ids: HashMap<(String, String), String> = HashMap::new();
        for (t, k) in auth_keys
            .iter()
            .map(|(t, k)| (t.to_string(), k.clone()))
            .chain([("m.room.create".to_owned(), String::new())])
        {
            if let Some(id) = hot.state_id(&t, &k) {
                state_ids.insert((t, k), id.clone());
            }
        }
        let mut auth_ids: Vec<String> =
            auth_keys.iter().filter_map(|(t, k)| state_ids.get(&(t.to_string(), k.clone())).cloned()).collect();
        auth_ids.sort();
        auth_ids.dedup();

        // Everything the state-dependent rules may consult: the auth events, plus the create
        // event, which v12 rooms leave out of auth_events.
        let mut needed = auth_ids.clone();
        if let Some(create) = state_ids.get(&("m.room.create".to_owned(), String::new())) {
            needed.push(create.clone());
        }
        let prev: Vec<&(String, i64)> = hot.extremities.iter().take(MAX_PREV_EVENTS).collect();
        let prev_ids: Vec<String> = prev.iter().map(|(id, _)| id.clone()).collect();
        // Only v1/v2 rooms need the PDUs of the events named (the depth comes with the room's
        // extremities): elsewhere a message would otherwise parse the previous one's PDU.
        let with_pdus = pdu::references_carry_hashes(&rules);
        if with_pdus {
            needed.extend(prev_ids.iter().cloned());
        }
        let loaded: HashMap<String, Arc<StoredEvent>> =
            self.events_shared(&needed).await?.into_iter().map(|e| (e.row.event_id.clone(), e)).collect();
        let reference = |id: &String| -> Result<(OwnedEventId, Option<CanonicalJsonObject>)> {
            let pdu = match with_pdus {
                true => {
                    Some(loaded.get(id).ok_or_else(|| Error::internal(format!("missing event {id}")))?.json().clone())
                }
                false => None,
            };
            Ok((EventId::parse(id).map_err(Error::internal)?, pdu))
        };
        let depth = prev.iter().map(|(_, d)| *d as u64).max().unwrap_or(0) + 1;

        let redacts =
            top_level_redacts.map(EventId::parse).transpose().map_err(|e| Error::bad_json(format!("redacts: {e}")))?;
        let new = NewPdu {
            room_version: &version,
            room_id: Some(&room_id),
            sender,
            kind,
            state_key,
            content,
            prev_events: prev_ids.iter().map(reference).collect::<Result<_>>()?,
            auth_events: auth_ids.iter().map(reference).collect::<Result<_>>()?,
            depth,
            origin_server_ts: now_ts(),
            redacts: redacts.as_deref(),
        };
        let built = pdu::build_and_sign(new, self.config.server_name.as_str(), self.keys.pair()).map_err(pdu_error)?;
        let pdu =
            Pdu::from_json(&built.json, built.event_id.clone(), room_id.clone(), &rules).map_err(Error::internal)?;

        // The auth rules of the room version (ruma's implementation of the spec's rules).
        let pdus: HashMap<String, Pdu> = loaded
            .values()
            .map(|e| to_pdu(e, &room_id, &rules).map(|p| (e.row.event_id.clone(), p)))
            .collect::<Result<_>>()?;
        state_res::check_state_independent_auth_rules(&rules.authorization, &pdu, |id: &EventId| {
            pdus.get(id.as_str()).cloned()
        })
        .map_err(forbidden)?;
        let by_key: HashMap<(String, String), Pdu> =
            state_ids.iter().filter_map(|(k, id)| pdus.get(id).map(|p| (k.clone(), p.clone()))).collect();
        state_res::check_state_dependent_auth_rules(&rules.authorization, &pdu, |t: &StateEventType, k: &str| {
            by_key.get(&(t.to_string(), k.to_owned())).cloned()
        })
        .map_err(forbidden)?;
        Ok(BuiltEvent { event_id: built.event_id, json: built.json, pdu, prev_ids, auth_ids })
    }

    /// Builds and signs the room's next event without storing it (for an invite, which the
    /// invitee's server countersigns first): (room version, event ID, PDU).
    pub async fn build_event(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: serde_json::Value,
    ) -> Result<(String, OwnedEventId, CanonicalJsonObject)> {
        let content = to_canonical_object(content)?;
        let lock = self.lock_for(room_id);
        let _guard = lock.lock().await;
        let hot = self.hot_locked(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let b = self.build_locked(&hot, sender, kind, state_key, content, None).await?;
        Ok((hot.room.room_version.clone(), b.event_id, b.json))
    }

    /// The membership event (`join` or `leave`) a user of another server would send (federation's
    /// `make_join`, `make_leave`): built on the room's current state and checked against its
    /// auth rules (a room the user may not join answers 403), without hashes and signatures,
    /// which the user's server adds.
    pub async fn membership_template(
        &self,
        room_id: &RoomId,
        user: &UserId,
        membership: &str,
    ) -> Result<(String, CanonicalJsonObject)> {
        let mut content = serde_json::json!({ "membership": membership });
        // A restricted room: one of this server's users who may invite vouches for a user in
        // an allowed room (spec: "Restricted rooms"); their server then countersigns the join.
        if membership == "join"
            && let Some(authoriser) = self.restricted_join_authoriser(room_id, user).await?
        {
            content["join_authorised_via_users_server"] = serde_json::json!(authoriser);
        }
        let (version, _, mut template) =
            self.build_event(room_id, user, "m.room.member", Some(user.as_str()), content).await?;
        for field in ["signatures", "hashes", "event_id", "unsigned"] {
            template.remove(field);
        }
        Ok((version, template))
    }

    /// Hands an authorised event to the writer (with its state, membership, search entry,
    /// relation and push actions, committed together) and advances the room's hot copy, so the
    /// next event can be built before this one is on disk. The caller holds the room lock and
    /// must `complete` the result before answering anyone.
    #[allow(clippy::too_many_arguments)]
    async fn store_locked(
        &self,
        hot: &RoomHot,
        // Set for the create event: the room row is written in the same transaction.
        new_room: Option<(&str, i64)>,
        event_id: &EventId,
        json: &CanonicalJsonObject,
        pdu: &Pdu,
        prev_ids: Vec<String>,
        auth_ids: Vec<String>,
        txn: Option<Txn<'_>>,
        placement: Option<Placement>,
    ) -> Result<Pending> {
        self.store_locked_as(hot, new_room, event_id, json, pdu, prev_ids, auth_ids, txn, placement, None).await
    }

    /// As `store_locked`; with `hold`, the writer's job is put there for the caller to hand
    /// over (with others, before it lets go of the room lock) instead of sent at once.
    #[allow(clippy::too_many_arguments)]
    async fn store_locked_as(
        &self,
        hot: &RoomHot,
        new_room: Option<(&str, i64)>,
        event_id: &EventId,
        json: &CanonicalJsonObject,
        pdu: &Pdu,
        prev_ids: Vec<String>,
        auth_ids: Vec<String>,
        txn: Option<Txn<'_>>,
        placement: Option<Placement>,
        hold: Option<&mut Vec<Job>>,
    ) -> Result<Pending> {
        let room = &hot.room;
        let text = serde_json::to_string(json).map_err(Error::internal)?;
        let kind = pdu.kind.to_string();
        let content = pdu.content_value();
        let placed = placement.is_some();

        // The new state group: a delta on the current one, or every MAX_CHAIN-th time a full
        // snapshot, so reading a state walks a bounded chain.
        let state_key = pdu.state_key.clone();
        let group = state_key.as_deref().filter(|_| !placed).map(|k| {
            let id = self.last_state_group.fetch_add(1, Ordering::AcqRel) + 1;
            let chain_len = if room.current_state_group.is_some() { hot.chain_len + 1 } else { 0 };
            let key = (kind.clone(), k.to_owned());
            let own = (kind.clone(), k.to_owned(), event_id.to_string());
            if chain_len >= storage::state::MAX_CHAIN {
                let mut full: Vec<(String, String, String)> = hot
                    .state
                    .iter()
                    .filter(|(sk, _)| **sk != key)
                    .map(|((t, k), e)| (t.clone(), k.clone(), e.clone()))
                    .collect();
                full.push(own);
                storage::append::NewStateGroup { id, prev: None, chain_len: 0, entries: full }
            } else {
                storage::append::NewStateGroup { id, prev: room.current_state_group, chain_len, entries: vec![own] }
            }
        });
        let membership = (pdu.kind == TimelineEventType::RoomMember)
            .then(|| content["membership"].as_str().unwrap_or("leave").to_owned());
        let new_group = group.as_ref().map(|g| (g.id, g.chain_len));
        let placement = placement.unwrap_or_else(|| Placement {
            rejected: false,
            soft_failed: false,
            state_group: group.as_ref().map(|g| g.id).or(room.current_state_group),
            resolved_state_group: None,
            current: if group.is_some() { CurrentState::Own } else { CurrentState::Unchanged },
            memberships: match (&membership, state_key.as_deref()) {
                (Some(m), Some(k)) => {
                    vec![MembershipChange {
                        user_id: k.to_owned(),
                        membership: m.clone(),
                        event_id: event_id.to_string(),
                    }]
                }
                _ => Vec::new(),
            },
            state_groups: group.into_iter().collect(),
            ..Default::default()
        });
        let hidden = placement.rejected || placement.soft_failed || placement.outlier;
        let state_group = placement.state_group;

        // Push rules are evaluated before the write, so the notification counts are committed
        // with the event and /sync never sees one without the other. A failure to evaluate
        // must not fail the send.
        let view = crate::matrix::client_event::format(
            &crate::matrix::client_event::View { json, event_id: event_id.as_str(), room_id: &room.room_id, txn: None },
            false,
            None,
            now_ms(),
        );
        let changing: Vec<&str> = placement.memberships.iter().map(|m| m.user_id.as_str()).collect();
        let pushed = match if hidden { Ok(Default::default()) } else { self.evaluate_push(hot, &view, &changing).await }
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%event_id, error = %e, "could not evaluate push rules");
                Default::default()
            }
        };

        // Full-text index: message bodies, room names and topics.
        let searchable = if hidden { None } else { queries::searchable_text(kind.as_str(), &content) };
        let relation = relations::relation_of(&content).filter(|_| !hidden).map(|(p, r)| (p.to_owned(), r.to_owned()));
        let append = storage::append::Append {
            new_room: new_room.map(|(creator, ts)| (room.room_version.clone(), creator.to_owned(), ts)),
            event: storage::append::NewEvent {
                event_id: event_id.to_string(),
                room_id: room.room_id.clone(),
                event_type: kind.clone(),
                state_key: state_key.clone(),
                sender: pdu.sender.to_string(),
                origin_server_ts: u64::from(pdu.origin_server_ts.0) as i64,
                depth: pdu.depth as i64,
                pdu: text.clone(),
                rejected: placement.rejected,
                soft_failed: placement.soft_failed,
                outlier: placement.outlier,
                state_group,
                resolved_state_group: placement.resolved_state_group,
                extremity: !hidden,
                txn: txn.map(|t| (t.user_id.to_owned(), t.device_id.to_owned(), t.txn_id.to_owned())),
                prev_events: prev_ids,
                auth_events: auth_ids,
                state_before_group: placement.state_before_group,
                stream_ordering: None,
                relay: placement.relay,
            },
            outliers: placement.outliers,
            reset_extremities: placement.reset_extremities,
            state_groups: placement.state_groups,
            current: placement.current,
            memberships: placement.memberships,
            search: searchable.map(str::to_owned),
            relation,
            push: pushed.rows,
        };
        // The event exists from here on for whoever builds on it (the next event of the room
        // names it in prev_events); if its write fails, the writer voids all of this. It is
        // cached as a read of its row would give it, without its map: most events are messages
        // that nothing reads the map of again, and the cache's 1,024 maps were a quarter of
        // the heap after a run of sends (a state event's map is built again when it is read).
        self.shared.cache.put(Arc::new(from_text(EventRow {
            // Not known until the commit; only the builders of this room's next events see
            // this copy before then, and they do not read it.
            stream_ordering: 0,
            event_id: event_id.to_string(),
            room_id: room.room_id.clone(),
            event_type: kind.clone(),
            state_key: state_key.clone(),
            sender: pdu.sender.to_string(),
            pdu: text,
            rejected: placement.rejected,
            soft_failed: placement.soft_failed,
            state_group: placement.resolved_state_group.or(state_group),
            redacted_json: None,
            txn_device_id: txn.map(|t| t.device_id.to_owned()),
            txn_id: txn.map(|t| t.txn_id.to_owned()),
        })?));
        let push = if pushed.actions.is_empty() {
            None
        } else {
            let mut event = view.clone();
            event["event_id"] = serde_json::json!(event_id);
            let room_name = match hot.state_id("m.room.name", "") {
                Some(id) => {
                    self.event(id).await?.and_then(|e| content_of(e.json())["name"].as_str().map(str::to_owned))
                }
                None => None,
            };
            Some(writer::PushInfo {
                event,
                actions: pushed.actions,
                room_name,
                sender_display_name: hot.joined.get(pdu.sender.as_str()).cloned().flatten(),
            })
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let job = Job { append, epoch: hot.epoch, done: done_tx, push };
        match hold {
            Some(held) => held.push(job),
            None => self.writer.send(job.into()).map_err(|_| Error::internal("the event writer has stopped"))?,
        }

        let txn = txn.map(|t| {
            let key = t.key(&room.room_id, &kind);
            let (tx, rx) = tokio::sync::watch::channel(None);
            self.txns.lock().insert(key.clone(), (event_id.to_owned(), rx));
            (key, tx)
        });
        if placed {
            // The caller reloads the hot copy once this event is committed.
            return Ok(Pending { event_id: event_id.to_owned(), done: done_rx, txn });
        }
        let step = match (state_key.as_deref(), new_group) {
            (Some(k), Some((group, chain_len))) => Some(StateStep {
                kind: &kind,
                state_key: k,
                group,
                chain_len,
                member: membership.as_deref().map(|m| (m, content["displayname"].as_str().map(str::to_owned))),
            }),
            _ => None,
        };
        let next = hot.followed_by(event_id.as_str(), pdu.depth as i64, step);
        if let Ok(room_id) = RoomId::parse(&room.room_id) {
            self.shared.hot.lock().insert(room_id, Arc::new(next));
        }
        Ok(Pending { event_id: event_id.to_owned(), done: done_rx, txn })
    }

    /// The state of the room just after stream position `at` (empty before the room existed).
    pub async fn state_at(&self, room_id: &str, at: i64) -> Result<Arc<storage::state::StateMap>> {
        match storage::events::state_group_at(&self.db.read, room_id, at).await? {
            Some(g) => self.state_of_group(g).await,
            None => Ok(Default::default()),
        }
    }

    /// The state before `event_id` when it was stored with it: the first event here of a room
    /// joined through another server follows events this server does not have.
    pub async fn state_before_stored(&self, event_id: &str) -> Result<Option<Arc<storage::state::StateMap>>> {
        match storage::events::state_before_group(&self.db.read, event_id).await? {
            Some(g) => Ok(Some(self.state_of_group(g).await?)),
            None => Ok(None),
        }
    }

    /// The state a state group stands for.
    pub async fn state_of_group(&self, group: i64) -> Result<Arc<storage::state::StateMap>> {
        if let Some(s) = self.states.get(group) {
            return Ok(s);
        }
        let state = Arc::new(storage::state::load(&self.db.read, group).await?);
        self.states.put(group, state.clone());
        Ok(state)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

fn now_ts() -> MilliSecondsSinceUnixEpoch {
    MilliSecondsSinceUnixEpoch(UInt::try_from(now_ms()).unwrap_or_default())
}

fn forbidden(msg: String) -> Error {
    Error::forbidden(format!("The room's rules refuse this event: {msg}"))
}

fn pdu_error(e: pdu::PduError) -> Error {
    if e.0.contains("65536") { Error::too_large("The event is larger than 65536 bytes") } else { Error::bad_json(e.0) }
}

/// Client content must be canonical JSON (no floats, integers within ±2^53).
pub fn to_canonical_object(content: serde_json::Value) -> Result<CanonicalJsonObject> {
    match CanonicalJsonValue::try_from(content) {
        Ok(CanonicalJsonValue::Object(o)) => Ok(o),
        Ok(_) => Err(Error::bad_json("Event content must be a JSON object")),
        Err(e) => Err(Error::bad_json(format!("Event content is not canonical JSON: {e}"))),
    }
}

pub fn content_of(json: &CanonicalJsonObject) -> serde_json::Value {
    json.get("content").cloned().map(serde_json::Value::from).unwrap_or_else(|| serde_json::json!({}))
}

/// Parses a stored event; a redacted event reads as its redacted form everywhere.
pub fn parse_row(row: EventRow) -> Result<StoredEvent> {
    crate::matrix::canonical::check(row.redacted_json.as_deref().unwrap_or(&row.pdu)).map_err(Error::internal)?;
    from_text(row)
}

/// As [`parse_row`], for a row whose PDU this server has just written out from its map (so
/// it is canonical JSON without checking).
fn from_text(row: EventRow) -> Result<StoredEvent> {
    let text = row.redacted_json.as_deref().unwrap_or(&row.pdu);
    // The map of the whole PDU is built only when something reads it: most events read from
    // the database are shown to a client and dropped (an initial sync of a user in thousands of
    // rooms reads tens of thousands), and what a client is shown is taken from the text.
    let light: Light<'_> = serde_json::from_str(text).map_err(Error::internal)?;
    let origin_server_ts = match light.origin_server_ts {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let content_json = light.content.map(|c| c.to_owned());
    let shown = light.unsigned.is_none().then(|| Shown { redacts: light.redacts.map(|r| r.to_owned()) });
    Ok(StoredEvent {
        json: Default::default(),
        origin_server_ts,
        content_json: content_json.into(),
        shown,
        row,
        client_head: Default::default(),
        shown_once: Default::default(),
    })
}

/// The first timeline page of each of a set of rooms (see [`Rooms::latest_pages`]).
#[derive(Default)]
pub struct TimelinePages {
    /// Each room's events, newest first; every room asked for has an entry. The events carry
    /// their rows: a page used to be a copy of each row without its JSON beside a map of the
    /// events by ID, seven strings copied per event (6% of a small initial sync).
    pub rows: foldhash::HashMap<String, Vec<Arc<StoredEvent>>>,
}

/// A row of a timeline batch: a row read alone (its event to be taken from the cache), or the
/// event it came with. Both read as the row.
// A batch is all of one kind and lives while one room is built; boxing the row would cost an
// allocation per row on the incremental path, which reads rows alone.
#[allow(clippy::large_enum_variant)]
pub enum PageRow {
    Meta(EventRow),
    Event(Arc<StoredEvent>),
}

impl PageRow {
    /// The event, when the row came with it.
    pub fn event(&self) -> Option<&Arc<StoredEvent>> {
        match self {
            PageRow::Meta(_) => None,
            PageRow::Event(e) => Some(e),
        }
    }
}

impl std::ops::Deref for PageRow {
    type Target = EventRow;

    fn deref(&self) -> &EventRow {
        match self {
            PageRow::Meta(row) => row,
            PageRow::Event(e) => &e.row,
        }
    }
}

fn to_pdu(e: &StoredEvent, room_id: &RoomId, rules: &RoomVersionRules) -> Result<Pdu> {
    let mut p =
        Pdu::from_json(e.json(), EventId::parse(&e.row.event_id).map_err(Error::internal)?, room_id.to_owned(), rules)
            .map_err(Error::internal)?;
    p.rejected = e.row.rejected;
    Ok(p)
}
