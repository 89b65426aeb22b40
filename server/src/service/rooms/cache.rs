//! In-memory copies of what every send reads, so appending an event costs one round trip to
//! SQLite instead of a dozen.
//!
//! - `RoomHot`: a room's current state IDs, forward extremities, joined members and the chain
//!   length of its current state group. It changes only when an event is appended, under the
//!   room's lock, and only holders of that lock read or install it. It runs ahead of the
//!   database by the events handed to the writer but not yet committed (see `writer`), which is
//!   why readers outside the lock use the database instead.
//! - `EventCache`: recently used events by ID (LRU, bounded). Events never change except by
//!   redaction, which evicts them.
//! - `RoomHeads`: the stream position of each room's latest event, so an incremental /sync skips
//!   rooms where nothing happened without asking the database.

use parking_lot::Mutex;
use std::{collections::HashMap, sync::Arc};

use hashlink::LruCache;

use super::StoredEvent;
use crate::{
    service::{guarded::Guarded, heads::Heads},
    storage::{self, Db, rooms::RoomRow, state::StateMap},
};

/// What appending to a room needs to know about it.
#[derive(Clone, Debug)]
pub struct RoomHot {
    pub room: RoomRow,
    /// Current state: (type, state_key) -> event ID.
    pub state: Arc<StateMap>,
    /// Forward extremities with their depth.
    pub extremities: Vec<(String, i64)>,
    /// Deltas between the current state group and its full snapshot.
    pub chain_len: i64,
    /// Joined members and their display names in the room.
    pub joined: Arc<HashMap<String, Option<String>>>,
    /// The room's write epoch this copy belongs to (see `writer`).
    pub epoch: u64,
}

/// How a state event moves a room's current state (see `RoomHot::followed_by`).
pub struct StateStep<'a> {
    pub kind: &'a str,
    pub state_key: &'a str,
    /// The state group of the new current state, and its deltas to a full snapshot.
    pub group: i64,
    pub chain_len: i64,
    /// For a member event: its membership and the display name its content gives.
    pub member: Option<(&'a str, Option<String>)>,
}

impl RoomHot {
    /// Reads the room's hot copy from the database; `None` for an unknown room.
    pub async fn load(db: &Db, room_id: &str, epoch: u64) -> sqlx::Result<Option<RoomHot>> {
        // The writer connection: under the room lock nothing newer can exist, and reading
        // through the writer cannot miss a commit a reader snapshot has not caught up with.
        let mut conn = db.write.acquire().await?;
        let Some(room) = storage::rooms::get(&mut *conn, room_id).await? else {
            return Ok(None);
        };
        let state = storage::rooms::current_state(&mut *conn, room_id).await?;
        let extremities = storage::events::forward_extremities_with_depth(&mut *conn, room_id).await?;
        let chain_len = match room.current_state_group {
            Some(g) => storage::state::chain_len(&mut *conn, g).await?,
            None => 0,
        };
        let joined = storage::rooms::joined_display_names(&mut *conn, room_id).await?.into_iter().collect();
        Ok(Some(RoomHot { room, state: Arc::new(state), extremities, chain_len, joined: Arc::new(joined), epoch }))
    }

    /// The hot copy of a room this server has no row for yet (its first event, or its first
    /// membership here through another server, creates the row).
    pub fn fresh(room_id: &str, room_version: &str, epoch: u64) -> RoomHot {
        RoomHot {
            room: RoomRow {
                room_id: room_id.to_owned(),
                room_version: room_version.to_owned(),
                current_state_group: None,
            },
            state: Default::default(),
            extremities: Vec::new(),
            chain_len: 0,
            joined: Default::default(),
            epoch,
        }
    }

    /// The hot copy once `event_id` (at `depth`) extends the room: its only forward extremity,
    /// and for a state event (`step`) the room's new current state.
    pub fn followed_by(&self, event_id: &str, depth: i64, step: Option<StateStep<'_>>) -> RoomHot {
        let mut next = self.clone();
        next.extremities = vec![(event_id.to_owned(), depth)];
        if let Some(step) = step {
            Arc::make_mut(&mut next.state)
                .insert((step.kind.to_owned(), step.state_key.to_owned()), event_id.to_owned());
            next.room.current_state_group = Some(step.group);
            next.chain_len = step.chain_len;
            if let Some((membership, displayname)) = step.member {
                let joined = Arc::make_mut(&mut next.joined);
                if membership == "join" {
                    joined.insert(step.state_key.to_owned(), displayname);
                } else {
                    joined.remove(step.state_key);
                }
            }
        }
        next
    }

    /// The event ID at (type, state_key) in the current state.
    pub fn state_id(&self, event_type: &str, state_key: &str) -> Option<&String> {
        // A borrowed lookup into a map keyed by owned pairs needs the owned key; state keys are
        // short, so this allocation is cheap next to everything else an append does.
        self.state.get(&(event_type.to_owned(), state_key.to_owned()))
    }
}

/// Recently used events, bounded. A redaction is the write that moves the generation (see
/// `Guarded`), so an unredacted copy read before it never lands in the cache after it.
pub struct EventCache {
    inner: Guarded<LruCache<String, Arc<StoredEvent>>>,
}

impl EventCache {
    pub fn new(capacity: usize) -> Self {
        Self { inner: Guarded::new(LruCache::new(capacity.max(1))) }
    }

    /// Note this before reading events from the database; pass it to `put_read`.
    pub fn generation(&self) -> u64 {
        self.inner.generation()
    }

    /// Caches an event read from the database at `generation`.
    pub fn put_read(&self, generation: u64, event: Arc<StoredEvent>) {
        self.inner.fill(generation, |c| {
            c.insert(event.row.event_id.clone(), event);
        });
    }

    /// An event built and cached before its commit got its stream position.
    pub fn committed(&self, event_id: &str, stream: i64) {
        self.inner.with(|c| {
            if let Some(e) = c.get_mut(event_id)
                && e.row.stream_ordering != stream
            {
                // Usually the cache holds the only reference: set the position in place. A
                // copy (its PDU map included) was a quarter of a send's heap traffic.
                match Arc::get_mut(e) {
                    Some(only) => only.row.stream_ordering = stream,
                    None => {
                        let mut copy = (**e).clone();
                        copy.row.stream_ordering = stream;
                        *e = Arc::new(copy);
                    }
                }
            }
        });
    }

    /// Events of a purged room: gone from the cache.
    pub fn forget_all(&self, event_ids: &[String]) {
        self.inner.write(|c| {
            for id in event_ids {
                c.remove(id);
            }
        });
    }

    /// Drops an event that turned out not to exist (its write failed).
    pub fn forget(&self, event_id: &str) {
        self.inner.with(|c| c.remove(event_id));
    }

    /// After a redaction is committed: drop the old copy.
    pub fn redacted(&self, event_id: &str) {
        self.inner.write(|c| {
            c.remove(event_id);
        });
    }

    pub fn get(&self, event_id: &str) -> Option<Arc<StoredEvent>> {
        self.inner.with(|c| c.get(event_id).cloned())
    }

    /// Caches an event that cannot have been redacted yet (one just appended).
    pub fn put(&self, event: Arc<StoredEvent>) {
        self.inner.with(|c| c.insert(event.row.event_id.clone(), event));
    }
}

/// The stream position of each room's latest event and latest relation.
#[derive(Default)]
pub struct RoomHeads {
    events: Mutex<Heads>,
    /// Rooms' latest event that relates to another (a thread reply, an edit, a reaction).
    relations: Mutex<Heads>,
}

impl RoomHeads {
    pub async fn load(db: &Db) -> sqlx::Result<Self> {
        Ok(Self {
            events: Mutex::new(storage::events::room_heads(&db.read).await?.into_iter().collect()),
            relations: Mutex::new(storage::relations::room_heads(&db.read).await?.into_iter().collect()),
        })
    }

    pub fn advance(&self, room_id: &str, stream: i64, is_relation: bool) {
        self.events.lock().advance(room_id, stream);
        if is_relation {
            self.relations.lock().advance(room_id, stream);
        }
    }

    /// The room was purged: it has no events any more.
    pub fn remove(&self, room_id: &str) {
        self.events.lock().remove(room_id);
        self.relations.lock().remove(room_id);
    }

    /// The latest event position of any room (0 when there are no events).
    pub fn latest_of_all(&self) -> i64 {
        self.events.lock().latest()
    }

    /// The latest event position of the room (0 when it has none).
    pub fn latest_event(&self, room_id: &str) -> i64 {
        self.events.lock().get(room_id)
    }

    /// The rooms with an event after `pos`.
    pub fn moved_after(&self, pos: i64) -> Vec<String> {
        self.events.lock().moved_after(pos).map(str::to_owned).collect()
    }

    /// The latest relation's position in the room (0 when it has none).
    pub fn latest_relation(&self, room_id: &str) -> i64 {
        self.relations.lock().get(room_id)
    }
}

/// Room states by state group. A group never changes once written, so a cached state is never
/// stale; the cache is bounded by the total number of entries it holds, and a state too big
/// for a quarter of that budget is not cached at all.
pub struct StateCache {
    inner: Mutex<(LruCache<i64, Arc<storage::state::StateMap>>, usize)>,
    budget: usize,
}

impl StateCache {
    pub fn new(budget_entries: usize) -> Self {
        Self { inner: Mutex::new((LruCache::new_unbounded(), 0)), budget: budget_entries }
    }

    pub fn get(&self, group: i64) -> Option<Arc<storage::state::StateMap>> {
        self.inner.lock().0.get(&group).cloned()
    }

    pub fn put(&self, group: i64, state: Arc<storage::state::StateMap>) {
        if state.len() > self.budget / 4 {
            return;
        }
        let mut guard = self.inner.lock();
        let (map, total) = &mut *guard;
        if let Some(old) = map.insert(group, state.clone()) {
            *total -= old.len();
        }
        *total += state.len();
        while *total > self.budget {
            match map.remove_lru() {
                Some((_, evicted)) => *total -= evicted.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{service::rooms::parse_row, storage::events::EventRow};

    fn event(id: &str) -> Arc<StoredEvent> {
        Arc::new(StoredEvent::new(
            EventRow {
                stream_ordering: 1,
                event_id: id.to_owned(),
                room_id: "!r:h.test".into(),
                event_type: "m.room.message".into(),
                state_key: None,
                sender: "@u:h.test".into(),
                pdu: "{}".into(),
                rejected: false,
                soft_failed: false,
                state_group: None,
                redacted_json: None,
                txn_device_id: None,
                txn_id: None,
            },
            Default::default(),
        ))
    }

    /// A cached event's `age` is worked out from its PDU's `origin_server_ts`, read once when
    /// the event was parsed; a PDU without one reads as sent now.
    #[test]
    fn a_cached_events_age_comes_from_its_pdu() {
        use crate::matrix::client_event::ClientEvent;
        let pdu = |v: serde_json::Value| -> ruma::CanonicalJsonObject { serde_json::from_value(v).unwrap() };
        let age = |json: ruma::CanonicalJsonObject| {
            let stored = Arc::new(StoredEvent::new(event("$e").row.clone(), json));
            serde_json::to_value(ClientEvent::client(stored, false, None, 1_500)).unwrap()["unsigned"]["age"].clone()
        };
        let sent = serde_json::json!({"type": "m.room.message", "sender": "@u:h.test", "origin_server_ts": 1_000, "content": {}});
        assert_eq!(age(pdu(sent)), 500);
        assert_eq!(age(pdu(serde_json::json!({"type": "m.room.message", "content": {}}))), 0);
    }

    /// An event read from the database is shown to a client from its text, without its map
    /// being built, and reads exactly as the same event written from its map: state events,
    /// a redaction of an older room version (top-level `redacts`), one redacted (its stored
    /// redacted copy is what shows), the sending device's transaction ID, and a PDU with its
    /// own `unsigned` (merged from the map, which is then built). Written into a /sync room
    /// block from the head the event keeps, every view reads the same again. A stored PDU that
    /// is not canonical JSON is refused when read, as before, so the map built later cannot fail.
    #[test]
    fn an_event_read_from_its_row_is_shown_as_from_its_map() {
        use crate::matrix::client_event::{ClientEvent, EventView, Viewer};
        let pdus = [
            (
                r#"{"content":{"body":"a \"q\" \u0001 \u00fc","msgtype":"m.text","n":[1,{"d":null}]},"origin_server_ts":1000,"sender":"@u:h.test","type":"m.room.message"}"#,
                None,
            ),
            (
                r#"{"content":{"membership":"join"},"origin_server_ts":1000,"sender":"@u:h.test","state_key":"@u:h.test","type":"m.room.member"}"#,
                None,
            ),
            (
                r#"{"content":{"reason":"spam"},"origin_server_ts":1000,"redacts":"$x","sender":"@u:h.test","type":"m.room.redaction"}"#,
                None,
            ),
            (
                r#"{"content":{"reason":"spam","redacts":"$x"},"origin_server_ts":1000,"sender":"@u:h.test","type":"m.room.redaction"}"#,
                None,
            ),
            (
                r#"{"content":{"body":"secret"},"origin_server_ts":1000,"sender":"@u:h.test","type":"m.room.message"}"#,
                Some(
                    r#"{"content":{},"origin_server_ts":1000,"sender":"@u:h.test","type":"m.room.message","unsigned":{"redacted_because":{"type":"m.room.redaction"}}}"#,
                ),
            ),
            (
                r#"{"content":{},"origin_server_ts":1000,"sender":"@u:h.test","type":"m.room.message","unsigned":{"prev_sender":"@x:h.test","age":7}}"#,
                None,
            ),
            (r#"{"content":{},"sender":"@u:h.test","type":"m.room.message"}"#, None),
        ];
        let viewer = Viewer { user_id: "@u:h.test", device_id: "DEV" };
        for (pdu, redacted) in pdus {
            let json: ruma::CanonicalJsonObject = serde_json::from_str(pdu).unwrap();
            let mut row = event("$e").row.clone();
            row.event_type = json["type"].as_str().unwrap().to_owned();
            row.state_key = json.get("state_key").and_then(|k| k.as_str()).map(str::to_owned);
            row.pdu = pdu.to_owned();
            row.redacted_json = redacted.map(str::to_owned);
            (row.txn_device_id, row.txn_id) = (Some("DEV".into()), Some("t1".into()));
            let shown_json: ruma::CanonicalJsonObject = serde_json::from_str(redacted.unwrap_or(pdu)).unwrap();
            let from_map = Arc::new(StoredEvent::new(row.clone(), shown_json));
            let from_row = Arc::new(parse_row(row).unwrap());
            let write = |e: &Arc<StoredEvent>, room: bool| {
                serde_json::to_value(ClientEvent::client(e.clone(), room, Some(&viewer), 1_500)).unwrap()
            };
            for room in [false, true] {
                assert_eq!(write(&from_row, room), write(&from_map, room), "{pdu}");
            }
            // A /sync room block writes each event from its kept head, byte for byte as it
            // serialises, for every view: the sender's device, another viewer, one with
            // per-view `unsigned` fields, one shown other content; twice (the head is kept).
            // The first view of all is written directly, and keeps no head.
            for e in [&from_row, &from_map] {
                let first = ClientEvent::client(e.clone(), false, Some(&viewer), 1_500);
                let mut written = Vec::new();
                first.write_json(&mut written).unwrap();
                assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&first).unwrap());
                assert!(e.client_head.get().is_none(), "{pdu}");
                for _ in 0..2 {
                    for room in [false, true] {
                        let other = Viewer { user_id: "@v:h.test", device_id: "OTHER" };
                        let mut views = vec![
                            ClientEvent::client(e.clone(), room, Some(&viewer), 1_500),
                            ClientEvent::client(e.clone(), room, Some(&other), 1_500),
                            ClientEvent::client(e.clone(), room, None, 900),
                        ];
                        let mut member = ClientEvent::client(e.clone(), room, Some(&viewer), 1_500);
                        member.set_unsigned("membership", serde_json::json!("join"));
                        views.push(member);
                        let mut erased = ClientEvent::client(e.clone(), room, Some(&viewer), 1_500);
                        erased.set_content(serde_json::json!({}));
                        views.push(erased);
                        for v in views {
                            let mut written = Vec::new();
                            v.write_json(&mut written).unwrap();
                            assert_eq!(String::from_utf8(written).unwrap(), serde_json::to_string(&v).unwrap());
                        }
                    }
                }
                // Kept for every event but those with `unsigned` fields of their own.
                let own_unsigned = redacted.unwrap_or(pdu).contains("unsigned");
                assert_eq!(e.client_head.get().is_some_and(Option::is_some), !own_unsigned, "{pdu}");
            }
            // Built only to merge `unsigned`, or to find a v11 redaction's `redacts` in its
            // content.
            let read = redacted.unwrap_or(pdu).contains("unsigned") || pdu.contains(r#""redacts":"$x"}"#);
            assert_eq!(from_row.json.get().is_some(), read, "{pdu}");
            assert_eq!(from_row.json(), from_map.json());
        }
        for bad in
            [r#"{"content":{"n":1.5},"type":"t"}"#, r#"{"content":{"n":9007199254740992},"type":"t"}"#, r#"{"type":"#]
        {
            let mut row = event("$e").row.clone();
            row.pdu = bad.to_owned();
            assert!(parse_row(row).is_err(), "{bad}");
        }
    }

    /// A cached event's content is written out once and then reused: every view of it reads as
    /// the PDU written directly would (escapes and non-ASCII included), and content replaced for
    /// one viewer (a redaction shown to them) still wins over the written copy.
    #[test]
    fn a_cached_events_written_content_reads_as_its_pdu() {
        use crate::matrix::client_event::{ClientEvent, EventView, View};
        let json: ruma::CanonicalJsonObject = serde_json::from_value(serde_json::json!({
            "type": "m.room.message", "sender": "@u:h.test", "origin_server_ts": 1_000,
            "content": {"msgtype": "m.text", "body": "a \"quote\", a tab\t, \u{1} and ü 🔥", "n": [1, {"deep": null}]},
            "unsigned": {"prev_sender": "@x:h.test"},
        }))
        .unwrap();
        let stored = Arc::new(StoredEvent::new(event("$e").row.clone(), json.clone()));
        let direct = View { json: &json, event_id: "$e", room_id: "!r:h.test", txn: None };
        let expected = serde_json::to_string(&ClientEvent::client(direct, false, None, 1_500)).unwrap();
        for _ in 0..2 {
            let cached = serde_json::to_string(&ClientEvent::client(stored.clone(), false, None, 1_500)).unwrap();
            assert_eq!(cached, expected);
        }
        assert!(stored.content_json.get().is_some_and(Option::is_some), "the written content is kept");
        let mut redacted = ClientEvent::client(stored.clone(), false, None, 1_500);
        redacted.set_content(serde_json::json!({}));
        assert_eq!(serde_json::to_value(&redacted).unwrap()["content"], serde_json::json!({}));
        // Written into a value (the endpoints that still build values), it is the content again.
        let value = serde_json::to_value(ClientEvent::client(stored, false, None, 1_500)).unwrap();
        assert_eq!(value["content"]["n"][1]["deep"], serde_json::Value::Null);
        assert_eq!(value["content"]["body"], "a \"quote\", a tab\t, \u{1} and ü 🔥");
    }

    #[test]
    fn a_read_that_raced_a_redaction_is_not_cached() {
        let cache = EventCache::new(8);
        // A reader notes the generation, reads the unredacted row from the database...
        let generation = cache.generation();
        // ...meanwhile the redaction is written and evicts the event...
        cache.redacted("$a");
        // ...then the reader would cache its stale copy: refused.
        cache.put_read(generation, event("$a"));
        assert!(cache.get("$a").is_none());
        // A read that started after the redaction is cached.
        cache.put_read(cache.generation(), event("$a"));
        assert!(cache.get("$a").is_some());
    }

    #[test]
    fn the_event_cache_is_bounded_and_a_commit_fills_in_the_stream_position() {
        let cache = EventCache::new(2);
        for id in ["$1", "$2", "$3"] {
            cache.put(event(id));
        }
        assert!(cache.get("$1").is_none(), "least recently used went first");
        cache.committed("$3", 42);
        assert_eq!(cache.get("$3").unwrap().row.stream_ordering, 42);
        // Someone still holds the cached copy: the cache gets a new one, theirs is unchanged.
        cache.put(event("$4"));
        let held = cache.get("$4").unwrap();
        cache.committed("$4", 43);
        assert_eq!(cache.get("$4").unwrap().row.stream_ordering, 43);
        assert_eq!(held.row.stream_ordering, 1);
        cache.forget("$3");
        assert!(cache.get("$3").is_none());
    }

    #[test]
    fn the_state_cache_keeps_to_its_entry_budget() {
        let cache = StateCache::new(8);
        let state = |n: usize| {
            Arc::new(
                (0..n)
                    .map(|i| (("t".to_owned(), i.to_string()), format!("$e{i}")))
                    .collect::<storage::state::StateMap>(),
            )
        };
        cache.put(1, state(2));
        cache.put(2, state(2));
        cache.put(3, state(2));
        cache.put(4, state(2));
        assert!(cache.get(1).is_some());
        cache.put(5, state(2)); // 10 entries > 8: the least recently used (2) goes
        assert!(cache.get(2).is_none());
        assert!(cache.get(1).is_some() && cache.get(5).is_some());
        cache.put(6, state(3)); // over a quarter of the budget: not cached at all
        assert!(cache.get(6).is_none());
    }
}
