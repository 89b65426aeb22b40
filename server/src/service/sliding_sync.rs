//! Simplified sliding sync (MSC4186, `POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync`),
//! in the unstable wire format matrix-rust-sdk (Element X) speaks.
//!
//! A connection is (user, device, conn_id). Each answer gets a new `pos`; what the client was
//! sent up to it (stream token, and per room the event position it is up to date with and the
//! room config it got) is stored in SQLite under that `pos`, so the next request sends only
//! what changed, a retried `pos` is answered again, and a restart keeps connections. Any `pos`
//! that is not one of this connection's answers is `M_UNKNOWN_POS`, which makes the client
//! start over (anything else would leave it retrying the same `pos` forever).
//!
//! Rooms are ordered by their latest event (any type; for invites and rooms left, the
//! membership event); lists answer their `count` and the rooms inside their `ranges`. A room is
//! sent when it is new to the connection, has events the connection has not seen, or is asked
//! for with a bigger timeline or more state than it was sent with.

use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use ruma::{RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{
    Map, Value, json,
    value::{RawValue, to_raw_value},
};

use super::{
    account_data::AccountData,
    e2ee::E2ee,
    ephemeral::Ephemeral,
    notifier::Notifier,
    rooms::{PageRow, Rooms, StoredEvent},
    sync::{Sync, SyncEvent, SyncToken},
};
use ruma::api::error::ErrorKind;

use crate::{
    error::{Error, Result},
    matrix::client_event::{EventView, Viewer},
    storage::{self, now_ms},
};

use storage::sliding_sync::BUMP_TYPES;

/// Longest long-poll accepted.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Most timeline events per room.
const MAX_TIMELINE: u64 = 1000;
/// A connection unused this long is forgotten (its `pos` then answers M_UNKNOWN_POS), as in
/// Synapse.
const CONNECTION_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;
/// Most lists per request, and longest list name (as Synapse).
const MAX_LISTS: usize = 100;
const MAX_LIST_NAME: usize = 64;

/// The request, as far as the server reads it (the ruma request's body and query).
pub struct Request {
    pub pos: Option<String>,
    pub conn_id: String,
    pub timeout: Duration,
    pub lists: BTreeMap<String, ListRequest>,
    pub subscriptions: BTreeMap<String, RoomConfig>,
    pub extensions: Extensions,
}

pub struct ListRequest {
    pub ranges: Vec<(u64, u64)>,
    pub config: RoomConfig,
    pub filters: Filters,
}

#[derive(Default)]
pub struct Filters {
    pub is_dm: Option<bool>,
    pub is_encrypted: Option<bool>,
    pub is_invite: Option<bool>,
    /// `None` inside stands for rooms without a type.
    pub room_types: Option<Vec<Option<String>>>,
    pub not_room_types: Vec<Option<String>>,
    /// Rooms that are a child (`m.space.child`) of any of these spaces the user is in; not
    /// their subspaces' children (the client lists those spaces itself).
    pub spaces: Option<Vec<String>>,
    /// Rooms with any of these tags (`m.tag`), and none of `not_tags` (which wins).
    pub tags: Option<Vec<String>>,
    pub not_tags: Vec<String>,
}

/// What list filters look at besides the room itself, read once per answer.
#[derive(Default)]
struct FilterData {
    /// Rooms `m.direct` names.
    dms: HashSet<String>,
    /// Each room's tags, when a list filters by tags.
    tags: HashMap<String, HashSet<String>>,
    /// Per space asked for (and joined): its children.
    children: HashMap<String, HashSet<String>>,
    /// (encrypted, room type) of the joined rooms, when a list filters by them.
    facts: HashMap<String, (bool, Option<String>)>,
}

/// What the client wants of a room: how much timeline and which state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoomConfig {
    #[serde(rename = "t")]
    pub timeline_limit: u64,
    #[serde(rename = "r")]
    pub required_state: BTreeSet<(String, String)>,
}

impl RoomConfig {
    fn merge(&mut self, other: &RoomConfig) {
        self.timeline_limit = self.timeline_limit.max(other.timeline_limit);
        self.required_state.extend(other.required_state.iter().cloned());
    }

    /// Whether `self` asks for something `sent` did not have.
    fn expands(&self, sent: &RoomConfig) -> bool {
        self.timeline_limit > sent.timeline_limit || !self.required_state.is_subset(&sent.required_state)
    }

    /// Whether the state event (type, key) is wanted (`$LAZY` is handled by the caller).
    fn wants(&self, event_type: &str, key: &str, me: &str) -> bool {
        self.required_state.iter().any(|(t, k)| {
            (t == "*" || t == event_type)
                && (k == "*" || k == key || (k == "$ME" && key == me) || (t == "*" && k != "$LAZY"))
        })
    }

    fn lazy_members(&self) -> bool {
        self.required_state.iter().any(|(t, k)| (t == "m.room.member" || t == "*") && k == "$LAZY")
    }
}

#[derive(Default)]
pub struct Extensions {
    pub to_device: Option<Option<String>>,
    pub e2ee: bool,
    pub account_data: Option<Scope>,
    pub receipts: Option<Scope>,
    pub typing: Option<Scope>,
}

/// Which rooms an extension covers: lists by name and rooms by ID, `*` for all (the default).
#[derive(Default)]
pub struct Scope {
    pub lists: Option<Vec<String>>,
    pub rooms: Option<Vec<String>>,
}

/// What a connection has, stored under each `pos`, and held while its request long-polls.
/// Rooms refer to their config by index: a client asks for the same config for hundreds of
/// rooms, and a copy per room made a 500-room connection cost a megabyte.
#[derive(Default, Serialize, Deserialize)]
struct Known {
    /// The distinct configs rooms were sent with.
    #[serde(rename = "c")]
    configs: Vec<RoomConfig>,
    #[serde(rename = "r")]
    rooms: HashMap<String, RoomEntry>,
}

#[derive(Clone, Serialize, Deserialize)]
struct RoomEntry {
    /// The event position the client is up to date with.
    #[serde(rename = "s")]
    since: i64,
    /// Index of its config in `Known::configs`.
    #[serde(rename = "c")]
    config: u32,
    /// Users whose current member event the client was sent (lazy members are not sent
    /// again until they change), the latest `MAX_MEMBERS_TRACKED`.
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    members: Vec<String>,
}

/// Member events remembered per room as sent; past this the oldest are forgotten (and at worst
/// sent again, which the client takes in its stride).
const MAX_MEMBERS_TRACKED: usize = 200;

/// What the connection has of one room.
#[derive(Clone, Copy)]
struct KnownRoom<'a> {
    since: i64,
    config: &'a RoomConfig,
    members: &'a [String],
}

/// What one answer changes in what the connection has: applied to `Known` only when the answer
/// goes out (an answer built and found empty while long-polling is dropped, and copying a
/// 500-room `Known` for each such wake-up cost more than the build).
#[derive(Default)]
struct Delta {
    /// The distinct configs the rooms below were sent with.
    configs: Vec<RoomConfig>,
    /// (room, since, index into `configs`, members sent).
    rooms: Vec<(String, i64, u32, Vec<String>)>,
    /// Rooms the user is gone from for good: no longer tracked.
    gone: Vec<String>,
}

impl Delta {
    fn insert(&mut self, room: String, since: i64, config: Cow<'_, RoomConfig>, mut members: Vec<String>) {
        let index = config_index(&mut self.configs, config);
        if members.len() > MAX_MEMBERS_TRACKED {
            members.drain(..members.len() - MAX_MEMBERS_TRACKED);
        }
        self.rooms.push((room, since, index, members));
    }
}

/// The index of `config` in `configs`, added at the end when it is not there yet.
fn config_index(configs: &mut Vec<RoomConfig>, config: Cow<'_, RoomConfig>) -> u32 {
    match configs.iter().position(|c| *c == *config) {
        Some(i) => i as u32,
        None => {
            configs.push(config.into_owned());
            configs.len() as u32 - 1
        }
    }
}

impl Known {
    fn get(&self, room: &str) -> Option<KnownRoom<'_>> {
        let e = self.rooms.get(room)?;
        Some(KnownRoom { since: e.since, config: self.configs.get(e.config as usize)?, members: &e.members })
    }

    /// What the connection has once an answer with `delta` went out.
    fn apply(&mut self, delta: Delta) {
        let index: Vec<u32> =
            delta.configs.into_iter().map(|c| config_index(&mut self.configs, Cow::Owned(c))).collect();
        for (room, since, config, members) in delta.rooms {
            self.rooms.insert(room, RoomEntry { since, config: index[config as usize], members });
        }
        for room in &delta.gone {
            self.rooms.remove(room);
        }
        self.compact();
    }

    /// Drops configs no room refers to any more.
    fn compact(&mut self) {
        let mut used = vec![false; self.configs.len()];
        for e in self.rooms.values() {
            used[e.config as usize] = true;
        }
        if used.iter().all(|u| *u) {
            return;
        }
        let mut new_index = Vec::with_capacity(used.len());
        let mut kept = 0u32;
        for u in &used {
            new_index.push(kept);
            kept += u32::from(*u);
        }
        let mut i = 0;
        self.configs.retain(|_| {
            i += 1;
            used[i - 1]
        });
        for e in self.rooms.values_mut() {
            e.config = new_index[e.config as usize];
        }
    }
}

/// Adds `config` to what `room` is wanted with: borrowed while one config (or equal ones) asks
/// for it, merged into a copy when another asks for more.
fn want<'a>(wanted: &mut BTreeMap<String, Cow<'a, RoomConfig>>, room: &str, config: &'a RoomConfig) {
    match wanted.get_mut(room) {
        None => {
            wanted.insert(room.to_owned(), Cow::Borrowed(config));
        }
        Some(have) => {
            if config.expands(have) {
                have.to_mut().merge(config);
            }
        }
    }
}

/// What `room` needs for many rooms, read by `prefetch` in one query per kind. A room missing
/// from a map is read on its own.
#[derive(Default)]
struct Prefetch {
    /// The stream position the timelines and bumps were read at.
    upto: i64,
    /// The newest events of the room (at least one, up to its timeline limit + 1), newest first.
    timelines: foldhash::HashMap<String, Vec<Arc<StoredEvent>>>,
    /// The latest `BUMP_TYPES` event per room of `timelines` (rooms without one are left out).
    bumps: HashMap<String, i64>,
    /// Member counts and heroes per room new to the connection.
    summaries: HashMap<String, storage::rooms::MemberSummary>,
    /// Unread counts of the joined rooms (rooms without unread events are left out).
    unread: Option<HashMap<String, super::rooms::push::UnreadCounts>>,
    /// Events the answers are likely to show: timelines, wanted state, heroes' member events.
    /// Kept here rather than only in the event cache, which is smaller than 500 rooms' worth.
    events: foldhash::HashMap<String, Arc<StoredEvent>>,
    /// Rooms whose unread counts changed by the user's own receipts since the last answer.
    read: HashSet<String>,
}

pub struct SlidingSync {
    rooms: Arc<Rooms>,
    account_data: Arc<AccountData>,
    ephemeral: Arc<Ephemeral>,
    e2ee: Arc<E2ee>,
    notifier: Arc<Notifier>,
    sync: Arc<Sync>,
}

fn unknown_pos() -> Error {
    Error::matrix(
        http::StatusCode::BAD_REQUEST,
        ErrorKind::UnknownPos,
        "Unknown position: start a new sliding sync connection (send no pos)",
    )
}

/// `pos` is `<connection id>_<number>`.
fn parse_pos(pos: &str) -> Option<(i64, i64)> {
    let (c, p) = pos.split_once('_')?;
    Some((c.parse().ok()?, p.parse().ok()?))
}

impl SlidingSync {
    pub fn new(
        rooms: Arc<Rooms>,
        account_data: Arc<AccountData>,
        ephemeral: Arc<Ephemeral>,
        e2ee: Arc<E2ee>,
        notifier: Arc<Notifier>,
        sync: Arc<Sync>,
    ) -> Self {
        Self { rooms, account_data, ephemeral, e2ee, notifier, sync }
    }

    /// Forgets connections unused for a week (housekeeping).
    pub async fn expire(&self) -> Result<()> {
        let mut conn = self.rooms.db().write.acquire().await?;
        let gone = storage::sliding_sync::expire(&mut conn, now_ms() - CONNECTION_LIFETIME_MS).await?;
        if gone > 0 {
            tracing::info!(connections = gone, "forgot unused sliding sync connections");
        }
        Ok(())
    }

    pub fn validate(req: &Request) -> Result<()> {
        if req.conn_id.len() > 64 {
            return Err(Error::invalid_param("conn_id is longer than 64 characters"));
        }
        if req.lists.len() > MAX_LISTS {
            return Err(Error::invalid_param(format!("At most {MAX_LISTS} lists")));
        }
        for (name, list) in &req.lists {
            if name.len() > MAX_LIST_NAME {
                return Err(Error::invalid_param(format!("List names are at most {MAX_LIST_NAME} characters")));
            }
            for (a, b) in &list.ranges {
                if a > b {
                    return Err(Error::invalid_param(format!("List `{name}`: range [{a}, {b}] ends before it starts")));
                }
            }
            if list.config.timeline_limit > MAX_TIMELINE {
                return Err(Error::invalid_param(format!("timeline_limit is at most {MAX_TIMELINE}")));
            }
        }
        if req.subscriptions.values().any(|c| c.timeline_limit > MAX_TIMELINE) {
            return Err(Error::invalid_param(format!("timeline_limit is at most {MAX_TIMELINE}")));
        }
        Ok(())
    }

    /// Answers one request, long-polling when the client has a `pos` and nothing is new.
    pub async fn sync(&self, user: &UserId, device: &str, req: &Request) -> Result<Answer> {
        Self::validate(req)?;
        let db = self.rooms.db();
        // Where the client is: a known position of this very connection, or nowhere.
        let (connection, sent_pos, from, known) = match &req.pos {
            None => (None, None, None, Known::default()),
            Some(pos) => {
                let (id, p) = parse_pos(pos).ok_or_else(unknown_pos)?;
                let (token, rooms) =
                    storage::sliding_sync::position(&db.read, id, user.as_str(), device, &req.conn_id, p)
                        .await?
                        .ok_or_else(unknown_pos)?;
                let from = SyncToken::parse(&token).map_err(|_| unknown_pos())?;
                let known: Known = serde_json::from_str(&rooms).map_err(|_| unknown_pos())?;
                (Some(id), Some(p), Some(from), known)
            }
        };
        let mut rx = self.notifier.subscribe();
        let deadline = tokio::time::Instant::now() + req.timeout.min(MAX_TIMEOUT);
        // The head of the last answer built and found empty: a wake-up that moved nothing this
        // connection can see goes back to waiting without building another (with 500 rooms,
        // a build is a millisecond or two, and every event on the server wakes every poll).
        let mut checked: Option<SyncToken> = None;
        let (body, next_known, head) = loop {
            rx.borrow_and_update();
            let head = self.sync.head();
            let quiet = match checked {
                Some(c) => !self.may_concern(user, c, head).await?,
                None => false,
            };
            if quiet && tokio::time::Instant::now() < deadline {
                if !matches!(tokio::time::timeout_at(deadline, rx.changed()).await, Ok(Ok(()))) {
                    let head = self.sync.head();
                    let (body, next_known, _) = self.build(user, device, req, from, &known, head).await?;
                    break (body, next_known, head);
                }
                continue;
            }
            let (body, next_known, news) = self.build(user, device, req, from, &known, head).await?;
            // A first request never waits (the client needs its lists at once).
            if news || from.is_none() || tokio::time::Instant::now() >= deadline {
                break (body, next_known, head);
            }
            checked = Some(head);
            // Not kept while waiting: twenty idle clients would hold twenty copies.
            drop((body, next_known));
            if !matches!(tokio::time::timeout_at(deadline, rx.changed()).await, Ok(Ok(()))) {
                let head = self.sync.head();
                let (body, next_known, _) = self.build(user, device, req, from, &known, head).await?;
                break (body, next_known, head);
            }
        };

        // Remember what this answer gives the client, under a new position.
        let now = now_ms();
        let mut known = known;
        known.apply(next_known);
        let rooms_json = serde_json::to_string(&known).map_err(Error::internal)?;
        let mut tx = db.begin_write().await?;
        let id = match connection {
            Some(id) => id,
            None => storage::sliding_sync::reset_connection(&mut tx, user.as_str(), device, &req.conn_id, now).await?,
        };
        let pos = sent_pos.map_or(1, |p| p + 1);
        if !storage::sliding_sync::store_position(&mut tx, id, sent_pos, pos, &head.encode(), &rooms_json, now).await? {
            return Err(unknown_pos());
        }
        tx.commit().await?;
        let mut body = body;
        body.pos = format!("{id}_{pos}");
        Ok(body)
    }

    /// Whether something between `checked` and `head` may be news for the user: any stream
    /// the extensions read moved, or an event arrived in one of the user's rooms (or made
    /// one, as an invite does). Presence is not part of sliding sync here.
    async fn may_concern(&self, user: &UserId, checked: SyncToken, head: SyncToken) -> Result<bool> {
        if (head.account_data, head.receipts, head.typing, head.to_device, head.device_lists)
            != (checked.account_data, checked.receipts, checked.typing, checked.to_device, checked.device_lists)
        {
            return Ok(true);
        }
        if head.events == checked.events {
            return Ok(false);
        }
        let memberships = self.rooms.memberships_of(user).await?;
        let moved: HashSet<String> = self.rooms.rooms_moved_after(checked.events).into_iter().collect();
        Ok(memberships.iter().any(|m| m.stream_ordering > checked.events || moved.contains(&m.room_id)))
    }

    /// Builds an answer from `from` (None: a new connection) up to `head`. Returns the body,
    /// what it changes in what the client has, and whether anything in it is news. Boxed, so a
    /// waiting request does not hold `compose`'s state (as in `Sync::build`).
    async fn build(
        &self,
        user: &UserId,
        device: &str,
        req: &Request,
        from: Option<SyncToken>,
        known: &Known,
        head: SyncToken,
    ) -> Result<(Answer, Delta, bool)> {
        let _turn = self.sync.turn_to_build().await?;
        Box::pin(self.compose(user, device, req, from, known, head)).await
    }

    async fn compose(
        &self,
        user: &UserId,
        device: &str,
        req: &Request,
        from: Option<SyncToken>,
        known: &Known,
        head: SyncToken,
    ) -> Result<(Answer, Delta, bool)> {
        let memberships = self.rooms.memberships_of(user).await?;
        // Looked up per room below; a user in 500 rooms must not make that quadratic.
        let by_room: HashMap<&str, &storage::rooms::MembershipRow> =
            memberships.iter().map(|m| (m.room_id.as_str(), m)).collect();
        // The rooms a list can show: every membership, and rooms left or banned from since the
        // connection's last answer (once, so the client learns of it) or that it still shows.
        let mut candidates: Vec<&storage::rooms::MembershipRow> = Vec::new();
        for m in memberships.iter() {
            let keep = match m.membership.as_str() {
                "join" | "knock" => true,
                "invite" => !self.rooms.invite_from_ignored(user, m).await?,
                "leave" | "ban" => {
                    from.is_some_and(|f| m.stream_ordering > f.events)
                        || known.rooms.get(&m.room_id).is_some_and(|k| k.since < m.stream_ordering)
                }
                _ => false,
            };
            if keep {
                candidates.push(m);
            }
        }
        let activity = |m: &storage::rooms::MembershipRow| -> i64 {
            if m.membership == "join" {
                self.rooms.latest_event(&m.room_id).min(head.events).max(m.stream_ordering)
            } else {
                m.stream_ordering
            }
        };
        let data = self.filter_data(user, req, &by_room).await?;

        // Lists: filter, order, count, and the rooms inside the ranges with their configs.
        // Borrowed from the request: most rooms have one list's config, and a copy per room
        // was most of the memory of a 500-room answer.
        let mut wanted: BTreeMap<String, Cow<'_, RoomConfig>> = BTreeMap::new();
        let mut room_lists: HashMap<String, Vec<String>> = HashMap::new();
        let mut lists = Map::new();
        for (name, list) in &req.lists {
            let mut rooms: Vec<(i64, &storage::rooms::MembershipRow)> = Vec::new();
            for m in &candidates {
                if self.passes(m, &list.filters, &data).await? {
                    rooms.push((activity(m), m));
                }
            }
            rooms.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.room_id.cmp(&b.1.room_id)));
            lists.insert(name.clone(), json!({ "count": rooms.len() }));
            let mut in_range: BTreeSet<usize> = BTreeSet::new();
            for (a, b) in &list.ranges {
                let (a, b) = (*a as usize, (*b as usize).min(rooms.len().saturating_sub(1)));
                if a < rooms.len() {
                    in_range.extend(a..=b);
                }
            }
            for i in in_range {
                let room = &rooms[i].1.room_id;
                want(&mut wanted, room, &list.config);
                room_lists.entry(room.clone()).or_default().push(name.clone());
            }
        }
        // Subscriptions: rooms the user has (or had) a membership in; others are ignored.
        for (room, config) in &req.subscriptions {
            if by_room.contains_key(room.as_str()) {
                want(&mut wanted, room, config);
            }
        }

        let mut next = Delta::default();
        // Each room is written out as soon as it is built (see `Sync`'s joined rooms).
        let mut out_rooms: BTreeMap<String, Box<RawValue>> = BTreeMap::new();
        // The rooms new to the connection: the extensions send them everything they have.
        let mut initial_rooms: HashSet<String> = HashSet::new();
        let now = now_ms();
        // The rooms to send: new to the connection, with events the client has not seen, or
        // asked for with more than it got.
        // Rooms the user read on some device since the last answer: their counts went down
        // (Element X clears the badge only when it gets the new count).
        let read = match from {
            Some(f) => self.ephemeral.rooms_read_by(user.as_str(), f.receipts, head.receipts).await?,
            None => HashSet::new(),
        };
        let mut sends: Vec<(&String, &RoomConfig, &storage::rooms::MembershipRow, Option<KnownRoom<'_>>)> = Vec::new();
        for (room_id, config) in &wanted {
            let config: &RoomConfig = config;
            let Some(&m) = by_room.get(room_id.as_str()) else { continue };
            let seen = known.get(room_id);
            if seen.is_none_or(|k| activity(m) > k.since || config.expands(k.config)) || read.contains(room_id.as_str())
            {
                sends.push((room_id, config, m, seen));
            }
        }
        let mut pre = self.prefetch(user, &sends, head).await?;
        pre.read = read;
        for (room_id, config, m, seen) in sends {
            let (room, members_sent) = self.room(user, device, m, config, seen, from, head, now, &mut pre).await?;
            if let Some(room) = room {
                if room.initial {
                    initial_rooms.insert(room_id.clone());
                }
                out_rooms.insert(room_id.clone(), to_raw_value(&room).map_err(Error::internal)?);
            }
            let mut sent = Cow::Borrowed(config);
            let mut members = Vec::new();
            if let Some(k) = seen {
                // What the client has is at least what it had.
                if k.config.expands(config) {
                    sent.to_mut().merge(k.config);
                }
                members.extend(k.members.iter().filter(|u| !members_sent.contains(u)).cloned());
            }
            members.extend(members_sent);
            next.insert(room_id.clone(), head.events.max(m.stream_ordering), sent, members);
        }
        // A room the connection shows that was purged since: its events are gone, but the
        // user's leave is kept, so the app learns it left (once: then it is not tracked).
        if known.rooms.keys().any(|r| !by_room.contains_key(r.as_str())) {
            let viewer = Viewer { user_id: user.as_str(), device_id: device };
            for (room_id, stream, event) in self.rooms.purged_leaves_since(&viewer, 0).await? {
                if !known.rooms.contains_key(&room_id) || by_room.contains_key(room_id.as_str()) {
                    continue;
                }
                let room = json!({ "required_state": [event.clone()], "timeline": [event], "limited": false, "num_live": 0, "bump_stamp": stream });
                out_rooms.insert(room_id, to_raw_value(&room).map_err(Error::internal)?);
            }
        }
        // Rooms the user is gone from for good drop out of what the connection tracks.
        next.gone = known.rooms.keys().filter(|r| !by_room.contains_key(r.as_str())).cloned().collect();

        let relevant: Vec<&String> = wanted.keys().collect();
        let (extensions, ext_news) =
            self.extensions(user, device, req, from, head, &relevant, &room_lists, &initial_rooms).await?;
        let news = !out_rooms.is_empty() || ext_news;
        let body = Answer { lists: Value::Object(lists), rooms: out_rooms, extensions, pos: String::new() };
        Ok((body, next, news))
    }

    /// Reads what the answers for `sends` need in one query per kind, instead of per room:
    /// an app opening for a user in 500 rooms sends hundreds of rooms at once.
    async fn prefetch(
        &self,
        user: &UserId,
        sends: &[(&String, &RoomConfig, &storage::rooms::MembershipRow, Option<KnownRoom<'_>>)],
        head: SyncToken,
    ) -> Result<Prefetch> {
        let db = &self.rooms.db().read;
        let joined: Vec<&str> =
            sends.iter().filter(|(_, _, m, _)| m.membership == "join").map(|(r, _, _, _)| r.as_str()).collect();
        // Rooms whose whole timeline goes out: new to the connection, or with a longer one.
        let whole: Vec<(&str, u64)> = sends
            .iter()
            .filter(|(_, c, m, seen)| {
                m.membership == "join" && seen.is_none_or(|k| c.timeline_limit > k.config.timeline_limit)
            })
            .map(|(r, c, _, _)| (r.as_str(), c.timeline_limit))
            .collect();
        let fresh: Vec<&str> = sends
            .iter()
            .filter(|(_, _, m, seen)| m.membership == "join" && seen.is_none())
            .map(|(r, _, _, _)| r.as_str())
            .collect();
        let mut pre = Prefetch { upto: head.events, ..Default::default() };
        if !whole.is_empty() {
            let rooms: Vec<&str> = whole.iter().map(|(r, _)| *r).collect();
            // The newest row also gives the room's state (its state group), so at least one.
            let page = whole.iter().map(|(_, l)| *l).max().unwrap_or(0) as i64 + 1;
            // More events than the cache holds come with their JSON and go past the cache;
            // fewer are taken from it.
            let scan = self.rooms.is_scan(rooms.len() * page as usize);
            let pages = self.rooms.latest_pages(&rooms, head.events, page, scan).await?;
            pre.timelines = pages.rows;
            // Also under their IDs: state the rooms show is often in their timelines.
            for e in pre.timelines.values().flatten() {
                pre.events.insert(e.row.event_id.clone(), e.clone());
            }
            pre.bumps = storage::sliding_sync::latest_bump_many(db, &rooms, head.events).await?.into_iter().collect();
        }
        if !fresh.is_empty() {
            pre.summaries = storage::rooms::summaries_many(db, &fresh, user.as_str()).await?.into_iter().collect();
        }
        // The state events rooms new to the connection will show, and their heroes: one load
        // for all rooms.
        let me = user.as_str();
        let mut ids: Vec<String> = Vec::new();
        for (room, config, _, _) in sends.iter().filter(|(r, _, m, seen)| {
            m.membership == "join" && seen.is_none() && pre.timelines.contains_key(r.as_str())
        }) {
            let rows = &pre.timelines[room.as_str()];
            let Some(Some(group)) = rows.first().map(|e| e.row.state_group) else { continue };
            let state = self.rooms.state_of_group(group).await?;
            let lazy = config.lazy_members();
            let senders: HashSet<&str> = if lazy {
                rows.iter()
                    .take(config.timeline_limit as usize)
                    .filter_map(|e| e.json().get("sender").and_then(|s| s.as_str()))
                    .collect()
            } else {
                HashSet::new()
            };
            ids.extend(
                state
                    .iter()
                    .filter(|((t, k), _)| {
                        config.wants(t, k, me) || (t == "m.room.member" && senders.contains(k.as_str()))
                    })
                    .map(|(_, id)| id.clone()),
            );
            if !state.contains_key(&("m.room.name".to_owned(), String::new()))
                && let Some(summary) = pre.summaries.get(room.as_str())
            {
                ids.extend(hero_events(&summary.heroes, &state).map(|(_, e)| e.clone()));
            }
        }
        ids.retain(|id| !pre.events.contains_key(id));
        let state_events = if self.rooms.is_scan(ids.len()) {
            self.rooms.events_shared_scan(&ids).await?
        } else {
            self.rooms.events_shared(&ids).await?
        };
        for e in state_events {
            pre.events.insert(e.row.event_id.clone(), e);
        }
        if !joined.is_empty() {
            pre.unread = Some(self.rooms.unread_counts_many(user, &joined).await?);
        }
        Ok(pre)
    }

    /// The events, from what `prefetch` loaded or else the cache and the database.
    async fn load(&self, pre: &Prefetch, ids: &[String]) -> Result<Vec<Arc<StoredEvent>>> {
        let mut out = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match pre.events.get(id) {
                Some(e) => out.push(e.clone()),
                None => missing.push(id.clone()),
            }
        }
        if !missing.is_empty() {
            out.extend(self.rooms.events_shared(&missing).await?);
        }
        Ok(out)
    }

    /// What the lists' filters need: DM rooms always (cheap), tags and space children when a
    /// list asks for them.
    async fn filter_data(
        &self,
        user: &UserId,
        req: &Request,
        by_room: &HashMap<&str, &storage::rooms::MembershipRow>,
    ) -> Result<FilterData> {
        let mut data = FilterData::default();
        if let Some(v) = self.account_data.get(user, None, "m.direct").await? {
            data.dms = v
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(_, rooms)| rooms.as_array().into_iter().flatten())
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect();
        }
        if req.lists.values().any(|l| l.filters.tags.is_some() || !l.filters.not_tags.is_empty()) {
            for row in self.account_data.changed_since(user, 0).await? {
                if row.room_id.is_empty() || row.data_type != "m.tag" {
                    continue;
                }
                let content: Value = serde_json::from_str(&row.content).unwrap_or_default();
                let tags = content["tags"].as_object().map(|t| t.keys().cloned().collect()).unwrap_or_default();
                data.tags.insert(row.room_id, tags);
            }
        }
        if req.lists.values().any(|l| {
            l.filters.is_encrypted.is_some() || l.filters.room_types.is_some() || !l.filters.not_room_types.is_empty()
        }) {
            let joined: Vec<&str> =
                by_room.values().filter(|m| m.membership == "join").map(|m| m.room_id.as_str()).collect();
            for (room, encrypted, room_type) in
                storage::sliding_sync::room_facts_many(&self.rooms.db().read, &joined).await?
            {
                data.facts.insert(room, (encrypted, room_type));
            }
        }
        let spaces: BTreeSet<&String> =
            req.lists.values().filter_map(|l| l.filters.spaces.as_ref()).flatten().collect();
        for space in spaces {
            // Spaces the user is not in are ignored (MSC3575).
            if by_room.get(space.as_str()).is_none_or(|m| m.membership != "join") {
                continue;
            }
            let Ok(space_id) = RoomId::parse(space) else { continue };
            let state = self.rooms.current_state_ids(&space_id).await?;
            let child_ids: Vec<String> =
                state.iter().filter(|((t, _), _)| t == "m.space.child").map(|(_, id)| id.clone()).collect();
            let mut children = HashSet::new();
            for e in self.rooms.events_shared(&child_ids).await? {
                // A child event without `via` is a removed child (spec: m.space.child).
                let content = super::rooms::content_of(e.json());
                if content["via"].as_array().is_some_and(|v| !v.is_empty())
                    && let Some(child) = &e.row.state_key
                {
                    children.insert(child.clone());
                }
            }
            data.children.insert(space.clone(), children);
        }
        Ok(data)
    }

    /// Whether a room passes a list's filters.
    async fn passes(&self, m: &storage::rooms::MembershipRow, f: &Filters, data: &FilterData) -> Result<bool> {
        let room = m.room_id.as_str();
        if let Some(spaces) = &f.spaces
            && !spaces.iter().any(|s| data.children.get(s).is_some_and(|c| c.contains(room)))
        {
            return Ok(false);
        }
        let tags = data.tags.get(room);
        let tagged = |t: &String| tags.is_some_and(|have| have.contains(t));
        if f.not_tags.iter().any(tagged) {
            return Ok(false);
        }
        if let Some(want) = &f.tags
            && !want.iter().any(tagged)
        {
            return Ok(false);
        }
        let dms = &data.dms;
        if let Some(want) = f.is_invite
            && (m.membership == "invite") != want
        {
            return Ok(false);
        }
        if let Some(want) = f.is_dm
            && dms.contains(&m.room_id) != want
        {
            return Ok(false);
        }
        if f.is_encrypted.is_some() || f.room_types.is_some() || !f.not_room_types.is_empty() {
            let (encrypted, room_type) = match data.facts.get(room) {
                Some(facts) => facts.clone(),
                None => self.room_facts(m).await?,
            };
            if let Some(want) = f.is_encrypted
                && encrypted != want
            {
                return Ok(false);
            }
            if f.not_room_types.contains(&room_type) {
                return Ok(false);
            }
            if let Some(types) = &f.room_types
                && !types.contains(&room_type)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether the room is encrypted, and its type (from the create event), for a room
    /// `filter_data` did not read (not joined): judged by the state at the membership.
    async fn room_facts(&self, m: &storage::rooms::MembershipRow) -> Result<(bool, Option<String>)> {
        let state = self.rooms.state_at(&m.room_id, m.stream_ordering).await?;
        let encrypted = state.contains_key(&("m.room.encryption".to_owned(), String::new()));
        let mut room_type = None;
        if let Some(id) = state.get(&("m.room.create".to_owned(), String::new()))
            && let Some(e) = self.rooms.event(id).await?
        {
            room_type = super::rooms::content_of(e.json())["type"].as_str().map(str::to_owned);
        }
        Ok((encrypted, room_type))
    }

    /// One room's answer, or None when there is nothing to say; and whose member events it
    /// carries.
    #[allow(clippy::too_many_arguments)]
    async fn room(
        &self,
        user: &UserId,
        device: &str,
        m: &storage::rooms::MembershipRow,
        config: &RoomConfig,
        seen: Option<KnownRoom<'_>>,
        from: Option<SyncToken>,
        head: SyncToken,
        now: i64,
        pre: &mut Prefetch,
    ) -> Result<(Option<SlidingRoom>, Vec<String>)> {
        let room_id = m.room_id.as_str();
        let me = user.as_str();
        let initial = seen.is_none();
        let mut out = Map::new();
        let room = |fields, timeline, required_state| SlidingRoom { initial, fields, timeline, required_state };
        if matches!(m.membership.as_str(), "invite" | "knock") {
            let block = self.sync.invite_block(room_id, &m.event_id).await?;
            out.insert("invite_state".into(), block["invite_state"]["events"].clone());
            out.insert("bump_stamp".into(), json!(m.stream_ordering));
            return Ok((Some(room(out, Vec::new(), Vec::new())), Vec::new()));
        }
        let viewer = Viewer { user_id: me, device_id: device };
        // A room left or banned from shows nothing after the leave.
        let upto = if m.membership == "join" { head.events } else { m.stream_ordering.min(head.events) };
        let timeline_grew = seen.is_some_and(|k| config.timeline_limit > k.config.timeline_limit);
        // The client is up to date with the room to here (nothing: the latest events).
        let after = match seen {
            Some(k) if !timeline_grew => k.since,
            _ => 0,
        };
        if timeline_grew {
            out.insert("unstable_expanded_timeline".into(), json!(true));
        }
        let view = |e: &Arc<StoredEvent>| SyncEvent::client(e.clone(), false, Some(&viewer), now);

        // The timeline: the latest events after `after` the user may see, oldest first.
        let limit = config.timeline_limit as usize;
        let mut picked: Vec<(i64, SyncEvent)> = Vec::new();
        let mut limited = false;
        let mut bump: Option<i64> = None;
        let prefetched = if after == 0 && upto == pre.upto { pre.timelines.remove(room_id) } else { None };
        // `prefetch` read the latest bump (at `upto`) of the rooms it read timelines of.
        let bump_prefetched = prefetched.is_some();
        // The state group of the room's newest event: its state now (`upto`), without asking
        // the database when the group is cached.
        let mut newest_group: Option<Option<i64>> =
            prefetched.as_ref().map(|rows| rows.first().and_then(|e| e.row.state_group));
        let mut first_batch = prefetched.map(|mut rows| {
            rows.truncate(limit + 1);
            rows
        });
        if limit > 0 {
            let mut check = self.rooms.visibility_with(user, room_id, Some(m));
            let mut cursor = upto;
            'batches: for _ in 0..10 {
                let rows: Vec<PageRow> = match first_batch.take() {
                    Some(rows) => rows.into_iter().map(PageRow::Event).collect(),
                    None => storage::events::room_events_desc_meta(
                        &self.rooms.db().read,
                        room_id,
                        after,
                        cursor,
                        limit as i64 + 1,
                    )
                    .await?
                    .into_iter()
                    .map(PageRow::Meta)
                    .collect(),
                };
                if newest_group.is_none()
                    && cursor == upto
                    && let Some(first) = rows.first()
                {
                    newest_group = Some(first.state_group);
                }
                let exhausted = rows.len() <= limit;
                // Rows read without their events: the events from the prefetch or the cache.
                let ids: Vec<String> =
                    rows.iter().filter(|r| r.event().is_none()).map(|r| r.event_id.clone()).collect();
                let loaded: HashMap<String, Arc<StoredEvent>> =
                    self.load(pre, &ids).await?.into_iter().map(|e| (e.row.event_id.clone(), e)).collect();
                for r in &rows {
                    cursor = r.stream_ordering - 1;
                    if picked.len() == limit {
                        limited = true;
                        break 'batches;
                    }
                    if !check.allows(r).await? {
                        continue;
                    }
                    if let Some(e) = r.event().or_else(|| loaded.get(&r.event_id)) {
                        if bump.is_none() && BUMP_TYPES.contains(&r.event_type.as_str()) {
                            bump = Some(r.stream_ordering);
                        }
                        let mut v = view(e);
                        check.annotate(r, &mut v).await?;
                        picked.push((r.stream_ordering, v));
                    }
                }
                if exhausted {
                    break;
                }
            }
            picked.reverse();
        }
        let num_live = match from {
            Some(f) if !initial => picked.iter().filter(|(p, _)| *p > f.events).count(),
            _ => 0,
        };
        let timeline_start = picked.first().map(|(p, _)| *p).unwrap_or(upto + 1);
        let mut timeline: Vec<SyncEvent> = picked.into_iter().map(|(_, v)| v).collect();
        if !timeline.is_empty() && self.rooms.relations_after(room_id, timeline_start - 1) {
            self.rooms.bundle(user, room_id, &mut timeline).await?;
        }

        // State: everything wanted for a room new to the connection (or asked for with more
        // state), otherwise what changed since the client was up to date with the room.
        let state_now: Arc<storage::state::StateMap> = match newest_group {
            Some(Some(group)) if m.membership == "join" => self.rooms.state_of_group(group).await?,
            _ => self.rooms.state_at(room_id, upto).await?,
        };
        let state_grew = seen.is_some_and(|k| !config.required_state.is_subset(&k.config.required_state));
        let changed_keys: Option<HashSet<(String, String)>> = match seen {
            Some(k) if !state_grew => {
                let before = self.rooms.state_at(room_id, k.since).await?;
                Some(
                    state_now
                        .iter()
                        .filter(|(key, id)| before.get(*key) != Some(*id))
                        .map(|(key, _)| key.clone())
                        .collect(),
                )
            }
            _ => None,
        };
        let lazy = config.lazy_members();
        let senders: HashSet<&str> = timeline.iter().map(|e| e.sender()).collect();
        let targets: HashSet<&str> =
            timeline.iter().filter(|e| e.event_type() == "m.room.member").filter_map(|e| e.state_key()).collect();
        let mut state_ids: Vec<String> = Vec::new();
        let mut member_changes = initial;
        for (key, id) in state_now.iter() {
            let (t, k) = key;
            let is_change = changed_keys.as_ref().is_none_or(|c| c.contains(key));
            let wanted = config.wants(t, k, me)
                || (lazy
                    && t == "m.room.member"
                    && (senders.contains(k.as_str())
                        || targets.contains(k.as_str())
                        || (changed_keys.is_some() && !limited)));
            if t == "m.room.member" && is_change && changed_keys.is_some() {
                member_changes = true;
            }
            // Members of the timeline go with it unless this connection has them already
            // (lazy loading); other state only when it changed.
            let timeline_member = lazy
                && t == "m.room.member"
                && (senders.contains(k.as_str()) || targets.contains(k.as_str()))
                && !seen.is_some_and(|s| s.members.contains(k));
            if wanted && (is_change || timeline_member) {
                state_ids.push(id.clone());
            }
        }
        let state_events: Vec<Arc<StoredEvent>> = self.load(pre, &state_ids).await?;
        let members_sent: Vec<String> = if lazy {
            state_events
                .iter()
                .filter(|e| e.row.event_type == "m.room.member")
                .filter_map(|e| e.row.state_key.clone())
                .collect()
        } else {
            Vec::new()
        };
        let required_state: Vec<SyncEvent> = state_events.iter().map(view).collect();
        let content_at = |t: &str| -> Option<Value> {
            state_events
                .iter()
                .find(|e| e.row.event_type == t && e.row.state_key.as_deref() == Some(""))
                .map(|e| super::rooms::content_of(e.json()))
        };
        let name_event = state_now.get(&("m.room.name".to_owned(), String::new()));
        if let Some(c) = content_at("m.room.name")
            && let Some(n) = c["name"].as_str()
        {
            out.insert("name".into(), json!(n));
        }
        if let Some(c) = content_at("m.room.avatar") {
            out.insert("avatar".into(), c.get("url").cloned().unwrap_or(Value::Null));
        }
        if m.membership == "join" && (initial || member_changes) {
            let summary = match pre.summaries.remove(room_id) {
                Some(summary) => summary,
                None => storage::rooms::summary(&self.rooms.db().read, room_id, me).await?,
            };
            out.insert("joined_count".into(), json!(summary.joined));
            out.insert("invited_count".into(), json!(summary.invited));
            if name_event.is_none() {
                let pick: Vec<(&String, &String)> = hero_events(&summary.heroes, &state_now).collect();
                let ids: Vec<String> = pick.iter().map(|(_, e)| (*e).clone()).collect();
                let loaded = self.load(pre, &ids).await?;
                let heroes: Vec<Value> = pick
                    .iter()
                    .map(|(u, e)| {
                        let content = loaded
                            .iter()
                            .find(|x| &x.row.event_id == *e)
                            .map(|x| super::rooms::content_of(x.json()))
                            .unwrap_or_default();
                        let mut h = json!({ "user_id": u });
                        if let Some(n) = content["displayname"].as_str() {
                            h["displayname"] = json!(n);
                        }
                        if let Some(a) = content["avatar_url"].as_str() {
                            h["avatar_url"] = json!(a);
                        }
                        h
                    })
                    .collect();
                if !heroes.is_empty() {
                    out.insert("heroes".into(), json!(heroes));
                }
            }
        }
        // bump_stamp: the latest event that moves the room up, always for a room new to the
        // connection or a limited timeline, else when the timeline has one.
        if m.membership != "join" {
            out.insert("bump_stamp".into(), json!(m.stream_ordering));
        } else if let Some(b) = bump {
            out.insert("bump_stamp".into(), json!(b));
        } else if initial || limited || limit == 0 {
            let b = if bump_prefetched {
                pre.bumps.get(room_id).copied()
            } else {
                storage::sliding_sync::latest_bump(&self.rooms.db().read, room_id, upto).await?
            };
            out.insert("bump_stamp".into(), json!(b.unwrap_or(0).max(0)));
        }
        if m.membership == "join" {
            let ((notes, highlights), _) = match &pre.unread {
                Some(unread) => unread.get(room_id).cloned().unwrap_or_default(),
                None => self.rooms.unread_counts(user, room_id).await?,
            };
            out.insert("notification_count".into(), json!(notes));
            out.insert("highlight_count".into(), json!(highlights));
        }
        let counts_changed = m.membership == "join" && pre.read.contains(room_id);
        let nothing = timeline.is_empty()
            && required_state.is_empty()
            && !initial
            && !timeline_grew
            && !member_changes
            && !counts_changed;
        if nothing {
            return Ok((None, members_sent));
        }
        if !timeline.is_empty() || initial || timeline_grew {
            out.insert("limited".into(), json!(limited));
            out.insert("prev_batch".into(), json!(super::sync::token((timeline_start - 1).max(0))));
            out.insert("num_live".into(), json!(num_live));
        }
        Ok((Some(room(out, timeline, required_state)), members_sent))
    }

    /// Whose device lists the client must fetch again (keys changed, or they started sharing a
    /// room with the user) and whom it can stop tracking (no shared room any more), between
    /// two tokens: what /sync's `device_lists` says, over all the user's rooms.
    async fn device_list_changes(
        &self,
        user: &UserId,
        from: SyncToken,
        head: SyncToken,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let me = user.as_str();
        let db = &self.rooms.db().read;
        let mut changed = self.e2ee.changed_device_lists(me, from.device_lists, head.device_lists).await?;
        let mut gone = Vec::new();
        if head.events > from.events {
            let moved: HashSet<String> = self.rooms.rooms_moved_after(from.events).into_iter().collect();
            for m in self.rooms.memberships_of(user).await?.iter() {
                if m.membership == "join" && moved.contains(&m.room_id) {
                    // Members who came or went since the token.
                    let before = self.rooms.state_at(&m.room_id, from.events).await?;
                    let room = RoomId::parse(&m.room_id).map_err(Error::internal)?;
                    let now = self.rooms.current_state_ids(&room).await?;
                    let moved: Vec<String> = now
                        .iter()
                        .filter(|((t, k), id)| {
                            t == "m.room.member" && k != me && before.get(&(t.clone(), k.clone())) != Some(*id)
                        })
                        .map(|(_, id)| id.clone())
                        .collect();
                    for e in self.rooms.events_shared(&moved).await? {
                        let who = e.row.state_key.clone().unwrap_or_default();
                        match super::rooms::content_of(e.json())["membership"].as_str() {
                            Some("join") => changed.push(who),
                            Some("leave" | "ban") => gone.push(who),
                            _ => {}
                        }
                    }
                } else if matches!(m.membership.as_str(), "leave" | "ban") && m.stream_ordering > from.events {
                    // A room the user left: everyone in it, unless still shared elsewhere.
                    for (who, membership, _) in storage::rooms::members(db, &m.room_id).await? {
                        if membership == "join" && who != me {
                            gone.push(who);
                        }
                    }
                }
            }
        }
        let left = if gone.is_empty() {
            Vec::new()
        } else {
            let still: HashSet<String> = storage::rooms::co_members(db, me).await?.into_iter().collect();
            gone.into_iter().filter(|u| !still.contains(u)).collect()
        };
        Ok((super::e2ee::sorted(changed), super::e2ee::sorted(left)))
    }

    /// The extensions' answers, and whether any carries news.
    #[allow(clippy::too_many_arguments)]
    async fn extensions(
        &self,
        user: &UserId,
        device: &str,
        req: &Request,
        from: Option<SyncToken>,
        head: SyncToken,
        relevant: &[&String],
        room_lists: &HashMap<String, Vec<String>>,
        initial_rooms: &HashSet<String>,
    ) -> Result<(Value, bool)> {
        let me = user.as_str();
        let mut out = Map::new();
        let mut news = false;
        let in_scope = |scope: &Scope| -> Vec<String> {
            relevant
                .iter()
                .filter(|r| {
                    let by_list = scope.lists.as_ref().is_none_or(|ls| {
                        ls.iter().any(|l| l == "*" || room_lists.get(r.as_str()).is_some_and(|names| names.contains(l)))
                    });
                    let by_room = scope.rooms.as_ref().is_none_or(|rs| rs.iter().any(|x| x == "*" || x == r.as_str()));
                    by_list || by_room
                })
                .map(|r| (*r).clone())
                .collect()
        };

        if let Some(since) = &req.extensions.to_device {
            let since = match since {
                Some(s) => s.parse::<i64>().map_err(|_| {
                    Error::invalid_param(format!("to_device.since `{s}` is not a position this server gave"))
                })?,
                None => 0,
            };
            let (events, next) = self.e2ee.to_device_for_sync(me, device, since, head.to_device).await?;
            // `to_device_for_sync` caps the batch and sets `next` after its last message;
            // cutting the batch here would acknowledge messages never delivered.
            news |= !events.is_empty();
            out.insert("to_device".into(), json!({ "next_batch": next.to_string(), "events": events }));
        }
        if req.extensions.e2ee {
            let counts = self.e2ee.key_counts(me, device).await?;
            let (otk, fallback) = &*counts;
            let (changed, left) = match from {
                Some(f) => self.device_list_changes(user, f, head).await?,
                None => (Vec::new(), Vec::new()),
            };
            news |= !changed.is_empty() || !left.is_empty();
            out.insert(
                "e2ee".into(),
                json!({
                    "device_lists": { "changed": changed, "left": left },
                    "device_one_time_keys_count": otk,
                    "device_unused_fallback_key_types": fallback,
                }),
            );
        }
        if let Some(scope) = &req.extensions.account_data {
            let since = from.map_or(0, |f| f.account_data);
            let rooms_in = in_scope(scope);
            let mut global = Vec::new();
            let mut rooms: Map<String, Value> = Map::new();
            // Rooms new to the connection get all their account data; otherwise only changes.
            let any_fresh = !initial_rooms.is_empty();
            let rows = self.account_data.changed_since(user, if any_fresh { 0 } else { since }).await?;
            for row in rows {
                if row.stream_id > head.account_data {
                    continue;
                }
                let fresh_room = initial_rooms.contains(&row.room_id);
                if row.stream_id <= since && !fresh_room {
                    continue;
                }
                let content: Value = serde_json::from_str(&row.content).map_err(Error::internal)?;
                let ev = json!({ "type": row.data_type, "content": content });
                if row.room_id.is_empty() {
                    global.push(ev);
                } else if rooms_in.contains(&row.room_id) {
                    rooms
                        .entry(row.room_id.clone())
                        .or_insert_with(|| json!([]))
                        .as_array_mut()
                        .expect("array")
                        .push(ev);
                }
            }
            if from.is_none() && !global.iter().any(|e| e["type"] == "m.push_rules") {
                global.push(json!({ "type": "m.push_rules", "content": { "global": ruma::push::Ruleset::server_default(user) } }));
            }
            news |= !global.is_empty() || !rooms.is_empty();
            out.insert("account_data".into(), json!({ "global": global, "rooms": rooms }));
        }
        if let Some(scope) = &req.extensions.receipts {
            let mut rooms = Map::new();
            for r in in_scope(scope) {
                let fresh = initial_rooms.contains(&r);
                let since = if fresh { 0 } else { from.map_or(0, |f| f.receipts) };
                if let Some(ev) = self.ephemeral.receipt_event(&r, since, head.receipts, me).await? {
                    rooms.insert(r, ev);
                }
            }
            news |= !rooms.is_empty();
            out.insert("receipts".into(), json!({ "rooms": rooms }));
        }
        if let Some(scope) = &req.extensions.typing {
            let mut rooms = Map::new();
            for r in in_scope(scope) {
                let fresh = initial_rooms.contains(&r);
                let since = if fresh { None } else { from.map(|f| f.typing) };
                if let Some(ev) = self.ephemeral.typing_event(&r, since) {
                    rooms.insert(r, ev);
                }
            }
            news |= !rooms.is_empty();
            out.insert("typing".into(), json!({ "rooms": rooms }));
        }
        Ok((Value::Object(out), news))
    }
}

/// The heroes (see [`storage::rooms::MemberSummary`]) with their member events in `state`.
fn hero_events<'a>(
    heroes: &'a [String],
    state: &'a storage::state::StateMap,
) -> impl Iterator<Item = (&'a String, &'a String)> {
    heroes.iter().filter_map(|u| state.get(&("m.room.member".to_owned(), u.clone())).map(|e| (u, e)))
}

/// A sliding sync answer (MSC4186), each room already written out.
#[derive(Serialize)]
pub struct Answer {
    lists: Value,
    rooms: BTreeMap<String, Box<RawValue>>,
    extensions: Value,
    /// Set once the answer is stored under a position.
    #[serde(skip_serializing_if = "String::is_empty")]
    pos: String,
}

/// One room of an answer: its fields, and its events written straight from the cache.
struct SlidingRoom {
    /// New to the connection: written as `initial`, and the extensions then send all the
    /// room has.
    initial: bool,
    fields: Map<String, Value>,
    timeline: Vec<SyncEvent>,
    required_state: Vec<SyncEvent>,
}

impl Serialize for SlidingRoom {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if self.initial {
            map.serialize_entry("initial", &true)?;
        }
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        if !self.timeline.is_empty() {
            map.serialize_entry("timeline", &self.timeline)?;
        }
        if !self.required_state.is_empty() {
            map.serialize_entry("required_state", &self.required_state)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> RoomConfig {
        RoomConfig {
            timeline_limit: 1,
            required_state: pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
        }
    }

    #[test]
    fn required_state_matches_types_keys_wildcards_and_me() {
        let c = config(&[("m.room.name", ""), ("m.room.member", "$ME"), ("m.space.child", "*")]);
        assert!(c.wants("m.room.name", "", "@me:x"));
        assert!(!c.wants("m.room.topic", "", "@me:x"));
        assert!(c.wants("m.room.member", "@me:x", "@me:x"));
        assert!(!c.wants("m.room.member", "@you:x", "@me:x"));
        assert!(c.wants("m.space.child", "!a:x", "@me:x"));
        assert!(config(&[("*", "*")]).wants("m.room.topic", "", "@me:x"));
        // ["*", key] is treated as all state (allowed: more state than asked is fine).
        assert!(config(&[("*", "")]).wants("m.room.member", "@you:x", "@me:x"));
        assert!(config(&[("m.room.member", "$LAZY")]).lazy_members());
        assert!(!config(&[("m.room.member", "$LAZY")]).wants("m.room.member", "@you:x", "@me:x"));
    }

    #[test]
    fn a_config_expands_when_it_asks_for_more() {
        let small = config(&[("m.room.name", "")]);
        let mut big = config(&[("m.room.name", ""), ("m.room.topic", "")]);
        assert!(big.expands(&small));
        assert!(!small.expands(&big));
        big.merge(&small);
        assert!(!big.expands(&big.clone()));
        let mut longer = small.clone();
        longer.timeline_limit = 20;
        assert!(longer.expands(&small));
    }

    #[test]
    fn rooms_share_configs_and_unused_configs_go() {
        let (a, b) = (config(&[("m.room.name", "")]), config(&[("m.room.topic", "")]));
        let mut delta = Delta::default();
        for i in 0..300 {
            delta.insert(format!("!{i}:x"), i, Cow::Borrowed(&a), Vec::new());
        }
        let many: Vec<String> = (0..MAX_MEMBERS_TRACKED + 5).map(|i| format!("@{i}:x")).collect();
        delta.insert("!b:x".into(), 7, Cow::Owned(b.clone()), many);
        assert_eq!(delta.configs.len(), 2, "one copy per distinct config");
        let mut known = Known::default();
        known.apply(delta);
        let members = known.get("!b:x").unwrap().members;
        assert_eq!(members.len(), MAX_MEMBERS_TRACKED, "bounded");
        assert_eq!(
            members.last().map(String::as_str),
            Some(format!("@{}:x", MAX_MEMBERS_TRACKED + 4).as_str()),
            "the latest kept"
        );
        assert_eq!(known.configs.len(), 2);
        assert_eq!(known.get("!b:x").map(|k| (k.since, k.config.clone())), Some((7, b.clone())));
        // The rooms with the first config go: it goes, and the other room still finds its own.
        let gone = known.rooms.keys().filter(|r| *r != "!b:x").cloned().collect();
        known.apply(Delta { gone, ..Default::default() });
        assert_eq!(known.configs, vec![b.clone()]);
        assert_eq!(known.get("!b:x").map(|k| k.config.clone()), Some(b.clone()));
        assert!(known.get("!1:x").is_none());
        // A later answer's configs are found among those the connection has, or added.
        let mut delta = Delta::default();
        delta.insert("!1:x".into(), 9, Cow::Borrowed(&a), Vec::new());
        delta.insert("!b:x".into(), 9, Cow::Borrowed(&b), Vec::new());
        known.apply(delta);
        assert_eq!(known.configs.len(), 2);
        assert_eq!(known.get("!1:x").map(|k| (k.since, k.config.clone())), Some((9, a)));
        assert_eq!(known.get("!b:x").map(|k| (k.since, k.config.clone())), Some((9, b)));
        // What is stored round-trips.
        let back: Known = serde_json::from_str(&serde_json::to_string(&known).unwrap()).unwrap();
        assert_eq!(back.get("!b:x").map(|k| k.since), Some(9));
    }

    #[test]
    fn positions_parse_strictly() {
        assert_eq!(parse_pos("3_7"), Some((3, 7)));
        assert_eq!(parse_pos("3"), None);
        assert_eq!(parse_pos("x_1"), None);
        assert_eq!(parse_pos(""), None);
    }
}
