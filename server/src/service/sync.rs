//! /sync (spec: Client-Server API, "Syncing"): initial and incremental sync over the server's
//! streams (room events, account data), long-polling on the notifier so a waiting client wakes
//! as soon as something is stored.
//!
//! A sync token is `s<events>_<account data>`: everything at or before those stream positions
//! has been delivered. Pagination tokens (`prev_batch`, /messages) are `s<events>`.

pub mod legacy;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

// The maps and sets an answer builds and drops: SipHash was 7% of an initial sync.
use foldhash::{HashMap, HashSet, HashSetExt};
use ruma::{RoomId, UserId};
use serde_json::{Map, Value, json};

use super::{
    account_data::AccountData,
    e2ee::E2ee,
    ephemeral::Ephemeral,
    notifier::Notifier,
    rooms::{PageRow, Rooms, StoredEvent},
};
use crate::{
    error::{Error, Result},
    matrix::client_event::{self, ClientEvent, EventView, Viewer},
    storage::{self, now_ms, state::StateMap},
};

/// The timeline limit when the filter sets none (Synapse's default).
pub const DEFAULT_TIMELINE_LIMIT: usize = 10;
/// Most timeline events per room a filter may ask for.
const MAX_TIMELINE: usize = 1000;
/// How many batches a filtered timeline reads before it settles for fewer events.
const MAX_FILTER_BATCHES: usize = 10;
/// Longest long-poll accepted; clients ask for 30 s.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// Stripped state shown with invites (spec: "Stripped state", recommended types).
const STRIPPED_TYPES: &[&str] = &[
    "m.room.create",
    "m.room.join_rules",
    "m.room.name",
    "m.room.avatar",
    "m.room.canonical_alias",
    "m.room.encryption",
    "m.room.topic",
];

/// Positions in each stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncToken {
    pub events: i64,
    pub account_data: i64,
    pub receipts: i64,
    pub typing: i64,
    pub presence: i64,
    pub to_device: i64,
    pub device_lists: i64,
}

impl SyncToken {
    /// Parses `s<events>[_<account data>[_<receipts>[_<typing>[_<presence>[_<to-device>[_<device
    /// lists>]]]]]]`; missing parts are 0 (tokens from before a stream existed).
    pub fn parse(token: &str) -> Result<SyncToken> {
        let bad = || Error::invalid_param(format!("Invalid sync token `{token}`"));
        let rest = token.strip_prefix('s').ok_or_else(bad)?;
        let parts: Vec<i64> = rest
            .split('_')
            .map(|p| p.parse::<i64>().ok().filter(|n| *n >= 0))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        if parts.is_empty() || parts.len() > 7 {
            return Err(bad());
        }
        let at = |i: usize| parts.get(i).copied().unwrap_or(0);
        Ok(SyncToken {
            events: at(0),
            account_data: at(1),
            receipts: at(2),
            typing: at(3),
            presence: at(4),
            to_device: at(5),
            device_lists: at(6),
        })
    }

    pub fn encode(&self) -> String {
        format!(
            "s{}_{}_{}_{}_{}_{}_{}",
            self.events,
            self.account_data,
            self.receipts,
            self.typing,
            self.presence,
            self.to_device,
            self.device_lists
        )
    }

    /// Each position capped at `head` (a token from the future counts as now).
    fn min(self, head: SyncToken) -> SyncToken {
        SyncToken {
            events: self.events.min(head.events),
            account_data: self.account_data.min(head.account_data),
            receipts: self.receipts.min(head.receipts),
            typing: self.typing.min(head.typing),
            presence: self.presence.min(head.presence),
            to_device: self.to_device.min(head.to_device),
            device_lists: self.device_lists.min(head.device_lists),
        }
    }
}

pub struct SyncParams {
    pub since: Option<SyncToken>,
    pub timeout: Duration,
    pub full_state: bool,
    pub filter: crate::matrix::filter::SyncFilter,
    /// MSC4222: send the state after the timeline instead of before it.
    pub use_state_after: bool,
}

pub struct Sync {
    rooms: Arc<Rooms>,
    account_data: Arc<AccountData>,
    ephemeral: Arc<Ephemeral>,
    e2ee: Arc<E2ee>,
    notifier: Arc<Notifier>,
    /// With lazy-loaded members: whose member events each device has had, per room, so an
    /// incremental sync sends a timeline sender's member event once (spec: "Lazy-loading room
    /// members", redundant members only on request). In memory: after a restart, or once a
    /// device is pushed out, they are sent once more, which the spec allows.
    lazy_sent: parking_lot::Mutex<hashlink::LruCache<LazyKey, HashSet<String>>>,
    /// Answers (here and in sliding sync) being built; see [`BUILDS_AT_ONCE`].
    builds: tokio::sync::Semaphore,
}

/// How many /sync answers are built at a time. A message in a busy room wakes every member's
/// long-poll at once; built all together, each would hold its half-built answer (and its rows
/// in flight) while it waits for one of the database's readers, and all would finish late.
/// Beyond this many, a build waits before it starts, holding nothing, and answers go out in
/// the order the builds started. Two cores and four readers are kept busy by a few.
const BUILDS_AT_ONCE: usize = 8;

/// (user, device, room).
type LazyKey = (String, String, String);
/// Devices-and-rooms whose lazily sent members are remembered.
const LAZY_ROOMS: usize = 20_000;

/// The event position of a pagination token (`s<n>`, or a whole sync token). Positions of
/// history fetched from other servers are negative (`s-<n>`).
pub fn parse_token(token: &str) -> Result<i64> {
    if let Some(n) = token.strip_prefix("s-") {
        return n
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| -n)
            .ok_or_else(|| Error::invalid_param(format!("Invalid pagination token `{token}`")));
    }
    SyncToken::parse(token).map(|t| t.events)
}

pub fn token(pos: i64) -> String {
    format!("s{pos}")
}

impl Sync {
    pub fn new(
        rooms: Arc<Rooms>,
        account_data: Arc<AccountData>,
        ephemeral: Arc<Ephemeral>,
        e2ee: Arc<E2ee>,
        notifier: Arc<Notifier>,
    ) -> Self {
        Self {
            rooms,
            account_data,
            ephemeral,
            e2ee,
            notifier,
            lazy_sent: parking_lot::Mutex::new(hashlink::LruCache::new(LAZY_ROOMS)),
            builds: tokio::sync::Semaphore::new(BUILDS_AT_ONCE),
        }
    }

    pub(crate) fn head(&self) -> SyncToken {
        SyncToken {
            events: self.rooms.stream_head(),
            account_data: self.account_data.stream_head(),
            receipts: self.ephemeral.receipts_head(),
            typing: self.ephemeral.typing_head(),
            presence: self.ephemeral.presence_head(),
            to_device: self.e2ee.to_device_head(),
            device_lists: self.e2ee.device_lists_head(),
        }
    }

    /// Answers a /sync request, waiting up to `timeout` for something new when `since` is given.
    pub async fn sync(&self, user: &UserId, device: &str, params: &SyncParams) -> Result<SyncBody> {
        let mut rx = self.notifier.subscribe();
        let deadline = tokio::time::Instant::now() + params.timeout.min(MAX_TIMEOUT);
        loop {
            rx.borrow_and_update();
            let head = self.head();
            let since = params.since.map(|s| s.min(head));
            // Every stream is where the client left off: nothing can be new, so a long-poll
            // goes straight to waiting instead of building an empty answer first.
            let caught_up = since == Some(head) && !params.full_state;
            if caught_up && tokio::time::Instant::now() < deadline {
                // Woken: look again. Timed out, or the notifier is gone (the server is
                // stopping): answer with what there is.
                if let Ok(Ok(())) = tokio::time::timeout_at(deadline, rx.changed()).await {
                    continue;
                }
                let (body, _) = self.build(user, device, since, head, params).await?;
                return Ok(body);
            }
            let (body, has_news) = self.build(user, device, since, head, params).await?;
            if has_news || since.is_none() || params.full_state || tokio::time::Instant::now() >= deadline {
                return Ok(body);
            }
            // Wait for the stream to move (or the timeout), then look again. A position change
            // that concerns other users' rooms only makes this loop once more, cheaply.
            if !matches!(tokio::time::timeout_at(deadline, rx.changed()).await, Ok(Ok(()))) {
                let (body, _) = self.build(user, device, since, head, params).await?;
                return Ok(body);
            }
        }
    }

    /// `compose`, boxed: its state is several kilobytes, and inline it would be part of
    /// `sync`'s future, which a long-poll holds for as long as it waits; boxed, it is allocated
    /// only while an answer is built (heaptrack: a waiting request's future 10.8 -> 5.6 KiB).
    async fn build(
        &self,
        user: &UserId,
        device: &str,
        since_token: Option<SyncToken>,
        head_token: SyncToken,
        params: &SyncParams,
    ) -> Result<(SyncBody, bool)> {
        let _turn = self.turn_to_build().await?;
        Box::pin(self.compose(user, device, since_token, head_token, params)).await
    }

    /// Waits until fewer than [`BUILDS_AT_ONCE`] answers are being built; the build holds the
    /// permit until it is done.
    pub(crate) async fn turn_to_build(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        // Never closed: an error would be a bug, not the client's.
        self.builds.acquire().await.map_err(Error::internal)
    }

    async fn compose(
        &self,
        user: &UserId,
        device: &str,
        since_token: Option<SyncToken>,
        head_token: SyncToken,
        params: &SyncParams,
    ) -> Result<(SyncBody, bool)> {
        let db = &self.rooms.db().read;
        let viewer = Viewer { user_id: user.as_str(), device_id: device };
        let now = now_ms();
        // Each joined room's block is written out as soon as it is built: a user in thousands
        // of rooms would otherwise hold every room's events as values at once.
        let mut joined: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        // Members who came or went in the joined rooms' blocks (for `device_lists`).
        let (mut members_came, mut members_went) = (Vec::new(), Vec::new());
        let mut invite = Map::new();
        let mut leave = Map::new();
        let mut knock = Map::new();
        let since = since_token.map(|t| t.events);
        let head = head_token.events;
        let since_pos = since.unwrap_or(0);

        // Account data changed since the token: global, and per room (sent in room blocks).
        let mut global_data = Vec::new();
        let mut room_data: HashMap<String, Vec<Value>> = Default::default();
        let account_data_since = since_token.map_or(0, |t| t.account_data);
        // Nobody's account data moved: nothing to ask the database.
        let account_data_rows = if head_token.account_data > account_data_since {
            self.account_data.changed_since(user, account_data_since).await?
        } else {
            Vec::new()
        };
        for row in account_data_rows {
            if row.stream_id > head_token.account_data {
                continue;
            }
            let content: Value = serde_json::from_str(&row.content).map_err(Error::internal)?;
            let mut ev = json!({ "type": row.data_type });
            ev["content"] = content;
            if row.room_id.is_empty() {
                global_data.push(ev);
            } else {
                room_data.entry(row.room_id).or_default().push(ev);
            }
        }

        // A new client gets the push rules in its first sync even before the user changed any
        // (spec: "m.push_rules" is sent as account data), so it can evaluate notifications.
        if since_token.is_none() && !global_data.iter().any(|e| e["type"] == "m.push_rules") {
            global_data.push(
                json!({ "type": "m.push_rules", "content": { "global": ruma::push::Ruleset::server_default(user) } }),
            );
        }
        global_data.retain(|e| params.filter.account_data.allows(e));
        // People the user has just come to share a room with: their presence comes whole.
        let mut newly_met: std::collections::BTreeSet<String> = Default::default();

        let memberships = self.rooms.memberships_of(user).await?;
        // An initial (or full-state) sync builds every joined room: read the first page of every
        // timeline, the member counts and heroes, and the unread counts for all of them at once.
        let mut pre = if since.is_none() || params.full_state {
            let rooms: Vec<&str> = memberships
                .iter()
                .filter(|m| m.membership == "join" && params.filter.room.allows_room(&m.room_id))
                .map(|m| m.room_id.as_str())
                .collect();
            let page = timeline_limit(params) as i64 + 1;
            // The timeline and about as many state events per room.
            let scan = self.rooms.is_scan(rooms.len() * 2 * page as usize);
            let mut pre = Prefetched::load(db, &rooms, user.as_str(), head, page, scan).await?;
            pre.unread = self.rooms.unread_counts_many(user, &rooms).await?;
            pre
        } else {
            Prefetched::default()
        };
        let forgotten: HashSet<String> = if since.is_none() && params.filter.include_leave {
            self.rooms.forgotten_rooms(user).await?.into_iter().collect()
        } else {
            HashSet::new()
        };
        // For an incremental sync, the rooms where anything moved since the token: the others
        // are skipped without a look (found from the moves, not by asking every room of a user
        // in thousands).
        let moved: Option<HashSet<String>> = since_token.filter(|_| !params.full_state).map(|t| {
            let mut moved: HashSet<String> = self.rooms.rooms_moved_after(t.events).into_iter().collect();
            moved.extend(self.ephemeral.receipt_rooms_moved_after(t.receipts));
            moved.extend(self.ephemeral.typing_rooms_moved_after(t.typing));
            moved.extend(room_data.keys().cloned());
            moved
        });
        for m in memberships.iter() {
            let changed = m.stream_ordering > since_pos;
            match m.membership.as_str() {
                "join" => {
                    // A room where nothing happened since the token is skipped without asking
                    // the database (the common case for a long-poll waking up).
                    let quiet = moved.as_ref().is_some_and(|moved| !moved.contains(&m.room_id));
                    if quiet {
                        continue;
                    }
                    // A room joined since the last sync is sent as if this were an initial sync.
                    let fresh = since.is_none()
                        || params.full_state
                        || (changed && self.joined_after(&m.room_id, user, since_pos).await?);
                    let data = room_data.remove(&m.room_id).unwrap_or_default();
                    let ephemeral = self.ephemeral_events(&m.room_id, user, since_token, head_token, fresh).await?;
                    if !params.filter.room.allows_room(&m.room_id) {
                        continue;
                    }
                    // Counts change with new events and with receipts, so every block has them.
                    // When not prefetched they are read while the timeline is (the two queries
                    // run on two reader connections at once: a woken long-poll answers sooner).
                    let known = pre.unread.remove(&m.room_id);
                    let prefetched = pre.loaded;
                    let counts = async {
                        match known {
                            Some(counts) => Ok(counts),
                            None if prefetched => Ok(Default::default()),
                            None => self.rooms.unread_counts(user, &m.room_id).await,
                        }
                    };
                    let (block, counts) = tokio::join!(
                        self.room_block(&m.room_id, &viewer, Some(m), since, head, fresh, params, now, &mut pre),
                        counts
                    );
                    let block = block?;
                    if block.is_none() && data.is_empty() && ephemeral.is_empty() {
                        continue;
                    }
                    let mut b = block.unwrap_or_default();
                    if fresh && since.is_some() && !params.full_state {
                        for (who, membership, _) in storage::rooms::members(db, &m.room_id).await? {
                            if membership == "join" && who != user.as_str() {
                                newly_met.insert(who);
                            }
                        }
                    } else if since.is_some() {
                        // Those who joined a room the user is in (a member's profile change is
                        // also a join event: their presence then comes again, which is harmless).
                        let joined = b.timeline_events().filter(|e| {
                            e.event_type() == "m.room.member" && e.content_str("membership") == Some("join")
                        });
                        newly_met.extend(
                            joined.filter_map(|e| e.state_key()).filter(|u| *u != user.as_str()).map(str::to_owned),
                        );
                    }
                    let mut data = data;
                    data.retain(|e| params.filter.room_account_data.allows(e));
                    let mut ephemeral = ephemeral;
                    ephemeral.retain(|e| params.filter.ephemeral.allows(e));
                    b.account_data = Some(events(data));
                    b.ephemeral = Some(events(ephemeral));
                    let (room_counts, threads) =
                        thread_counts(counts?, params.filter.timeline.unread_thread_notifications);
                    b.unread_notifications = Some(room_counts);
                    b.unread_thread_notifications = threads;
                    if since_token.is_some() {
                        member_changes(&b, user.as_str(), &mut members_came, &mut members_went);
                    }
                    joined.insert(m.room_id.clone(), b.to_json().map_err(Error::internal)?);
                }
                "invite" if since.is_none() || changed => {
                    if self.rooms.invite_from_ignored(user, m).await? {
                        continue;
                    }
                    invite.insert(m.room_id.clone(), self.invite_block(&m.room_id, &m.event_id).await?);
                }
                "knock" if since.is_none() || changed => {
                    let block = self.invite_block(&m.room_id, &m.event_id).await?;
                    let mut block = block;
                    knock.insert(m.room_id.clone(), json!({ "knock_state": block["invite_state"].take() }));
                }
                "leave" | "ban"
                    if (since.is_some() || params.filter.include_leave)
                        && changed
                        && params.filter.room.allows_room(&m.room_id)
                        // A forgotten room is left out of first syncs; a leave that happened
                        // since the token still shows, so the user's other devices learn it.
                        && !(since.is_none() && forgotten.contains(&m.room_id)) =>
                {
                    // The timeline up to the leave, so the client sees why it left.
                    if let Some(block) = self
                        .room_block(
                            &m.room_id,
                            &viewer,
                            Some(m),
                            since,
                            m.stream_ordering,
                            since.is_none(),
                            params,
                            now,
                            &mut Prefetched::default(),
                        )
                        .await?
                    {
                        // Written as a joined room's is, and read back: rare (a leave, or a
                        // first sync that asks for left rooms), and one writer of blocks.
                        let text = block.to_json().map_err(Error::internal)?;
                        leave.insert(m.room_id.clone(), serde_json::from_slice(&text).map_err(Error::internal)?);
                    }
                }
                _ => {}
            }
        }
        // Rooms purged since the token: their timeline is gone, but the user's leave is kept,
        // so a device that was away still learns it left.
        if let Some(since) = since.filter(|s| *s > 0) {
            for (room_id, _, event) in self.rooms.purged_leaves_since(&viewer, since).await? {
                if leave.contains_key(&room_id) || !params.filter.room.allows_room(&room_id) {
                    continue;
                }
                leave.insert(
                    room_id,
                    json!({
                        "timeline": { "events": [event], "limited": false },
                        "state": { "events": [] },
                        "account_data": { "events": [] },
                    }),
                );
            }
        }
        // Presence of the people the user shares a room with (and their own), when any changed.
        let mut presence = Vec::new();
        let presence_since = since_token.map_or(0, |t| t.presence);
        if head_token.presence > presence_since {
            let mut people: std::collections::HashSet<String> = std::collections::HashSet::from([user.to_string()]);
            people.extend(storage::rooms::co_members(db, user.as_str()).await?);
            presence = self.ephemeral.presence_events(&people, presence_since, head_token.presence);
        }
        newly_met.retain(|u| !presence.iter().any(|e| e["sender"] == u.as_str()));
        if !newly_met.is_empty() {
            presence.extend(self.ephemeral.presence_now(&newly_met));
        }
        presence.retain(|e| params.filter.presence.allows(e));
        // End-to-end encryption: this device's to-device messages and key counts, and whose
        // device lists changed (keys, devices, or people who came or went in shared rooms).
        let (to_device, to_device_next) = self
            .e2ee
            .to_device_for_sync(user.as_str(), device, since_token.map_or(0, |t| t.to_device), head_token.to_device)
            .await?;
        let key_counts = self.e2ee.key_counts(user.as_str(), device).await?;
        let (otk_counts, fallback_types) = &*key_counts;
        let (mut changed, mut left) = (Vec::new(), Vec::new());
        if let Some(t) = since_token {
            changed = self.e2ee.changed_device_lists(user.as_str(), t.device_lists, head_token.device_lists).await?;
            changed.append(&mut members_came);
            let mut gone = members_went;
            // Rooms the user left: their members, unless still sharing another room.
            for room in leave.keys() {
                for (who, membership, _) in storage::rooms::members(db, room).await? {
                    if membership == "join" && who != user.as_str() {
                        gone.push(who);
                    }
                }
            }
            if !gone.is_empty() {
                let still: HashSet<String> = storage::rooms::co_members(db, user.as_str()).await?.into_iter().collect();
                left.extend(gone.into_iter().filter(|u| !still.contains(u)));
            }
        }
        let changed = super::e2ee::sorted(changed);
        let left = super::e2ee::sorted(left);
        let mut next = head_token;
        next.to_device = to_device_next;
        let has_news = !(joined.is_empty()
            && invite.is_empty()
            && leave.is_empty()
            && knock.is_empty()
            && global_data.is_empty()
            && presence.is_empty()
            && to_device.is_empty()
            && changed.is_empty()
            && left.is_empty());
        let rooms = SyncRooms { join: joined, invite, leave, knock };
        let mut body = json!({
            "next_batch": next.encode(),
            "device_lists": { "changed": changed, "left": left },
            "device_one_time_keys_count": otk_counts,
            "device_unused_fallback_key_types": fallback_types,
        });
        body["to_device"] = events(to_device);
        body["account_data"] = events(global_data);
        body["presence"] = events(presence);
        let Value::Object(fields) = body else { unreachable!("built as an object") };
        Ok((SyncBody { fields, rooms }, has_news))
    }

    /// Events for a room block: past the cache when the whole answer reads more than it holds.
    async fn events_for(&self, pre: &Prefetched, ids: &[String]) -> Result<Vec<std::sync::Arc<StoredEvent>>> {
        if pre.scan { self.rooms.events_shared_scan(ids).await } else { self.rooms.events_shared(ids).await }
    }

    /// Typing and receipts of a joined room that changed since the token (all of them for a room
    /// new to the client).
    async fn ephemeral_events(
        &self,
        room_id: &str,
        user: &UserId,
        since: Option<SyncToken>,
        head: SyncToken,
        fresh: bool,
    ) -> Result<Vec<Value>> {
        let since = if fresh { None } else { since };
        let mut out = Vec::new();
        if let Some(t) = self.ephemeral.typing_event(room_id, since.map(|s| s.typing)) {
            out.push(t);
        }
        let receipts_since = since.map_or(0, |s| s.receipts);
        if let Some(r) = self.ephemeral.receipt_event(room_id, receipts_since, head.receipts, user.as_str()).await? {
            out.push(r);
        }
        Ok(out)
    }

    /// Whether `row` is a state event that is part of the room's current state: those reach the
    /// timeline even where history visibility hides the moment they were sent (someone who
    /// came back to a room with `joined` history sees who joined meanwhile), as Synapse does.
    async fn in_current_state(
        &self,
        room_id: &str,
        row: &storage::events::EventRow,
        current: &mut Option<HashSet<String>>,
    ) -> Result<bool> {
        if row.state_key.is_none() || row.rejected || row.soft_failed {
            return Ok(false);
        }
        if current.is_none() {
            let room = RoomId::parse(room_id).map_err(Error::internal)?;
            *current = Some(self.rooms.current_state_ids(&room).await?.into_values().collect());
        }
        Ok(current.as_ref().is_some_and(|ids| ids.contains(&row.event_id)))
    }

    /// Whether a room in `state` has a name or canonical alias to show (then it needs no
    /// heroes). Events come from the event cache.
    async fn is_named(&self, state: &StateMap) -> Result<bool> {
        for (kind, field) in [("m.room.name", "name"), ("m.room.canonical_alias", "alias")] {
            let Some(id) = state.get(&(kind.to_owned(), String::new())) else { continue };
            if self
                .rooms
                .events_shared(std::slice::from_ref(id))
                .await?
                .iter()
                .any(|e| super::rooms::content_of(e.json())[field].as_str().is_some_and(|v| !v.is_empty()))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The room's state at the end of a timeline read up to `upto`: from the state group of
    /// its newest row when the walk saw one (cached), else looked up by stream position.
    async fn state_at_end(&self, room_id: &str, group_after: Option<Option<i64>>, upto: i64) -> Result<Arc<StateMap>> {
        match group_after {
            Some(Some(g)) => self.rooms.state_of_group(g).await,
            _ => self.rooms.state_at(room_id, upto).await,
        }
    }

    /// Whether the user's join happened after `since` (then the room is new to the client).
    async fn joined_after(&self, room_id: &str, user: &UserId, since: i64) -> Result<bool> {
        let before = self.rooms.state_at(room_id, since).await?;
        let key = ("m.room.member".to_owned(), user.to_string());
        match before.get(&key) {
            None => Ok(true),
            Some(id) => Ok(self
                .rooms
                .event(id)
                .await?
                .is_none_or(|e| super::rooms::content_of(e.json())["membership"] != "join")),
        }
    }

    /// A joined (or left) room's block: timeline after `since` up to `upto`, and the state the
    /// client needs before that timeline (or, with `use_state_after`, after it; MSC4222).
    /// `None` when nothing changed.
    #[allow(clippy::too_many_arguments)]
    async fn room_block(
        &self,
        room_id: &str,
        viewer: &Viewer<'_>,
        membership: Option<&storage::rooms::MembershipRow>,
        since: Option<i64>,
        upto: i64,
        fresh: bool,
        params: &SyncParams,
        now: i64,
        pre: &mut Prefetched,
    ) -> Result<Option<RoomBlock>> {
        let db = &self.rooms.db().read;
        let user = ruma::UserId::parse(viewer.user_id).map_err(Error::internal)?;
        let limit = timeline_limit(params);
        let after = if fresh { 0 } else { since.unwrap_or(0) };
        let view = |e: &Arc<StoredEvent>| {
            if params.filter.federation_format {
                SyncEvent::federation(e.clone())
            } else {
                SyncEvent::client(e.clone(), false, Some(viewer), now)
            }
        };

        // Walk back from `upto` in batches until `limit` events pass visibility and the filter.
        let mut check = self.rooms.visibility_with(&user, room_id, membership);
        let mut picked: Vec<(i64, SyncEvent)> = Vec::new();
        let mut cursor = upto;
        let mut limited = false;
        // The room's current state event IDs, read when a hidden state event needs them.
        let mut current_ids: Option<HashSet<String>> = None;
        // `limit` events were picked; the rows after are only looked at for `limited`.
        let mut full = false;
        let mut reached_start = false;
        // While every row read so far was picked, the timeline is a contiguous run of the
        // room's events, and the state groups of the rows around it give the state before and
        // after it without asking the database.
        let mut contiguous = true;
        let mut group_after: Option<Option<i64>> = None;
        let mut group_before: Option<Option<i64>> = None;
        let mut first_batch =
            if fresh && upto == pre.upto { pre.first_page(&self.rooms, room_id).await? } else { None };
        for _ in 0..MAX_FILTER_BATCHES {
            let (rows, loaded): (Vec<PageRow>, HashMap<String, Arc<StoredEvent>>) = match first_batch.take() {
                // The first page, read with the other rooms' (see `Prefetched`).
                Some(page) => (page.into_iter().map(PageRow::Event).collect(), HashMap::default()),
                None => {
                    let rows =
                        storage::events::room_events_desc_meta(db, room_id, after, cursor, limit as i64 + 1).await?;
                    // The rows carry no JSON: take the events from the cache (or load the
                    // missing ones) in one go.
                    let ids: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
                    let loaded = self.events_for(pre, &ids).await?;
                    (
                        rows.into_iter().map(PageRow::Meta).collect(),
                        loaded.into_iter().map(|e| (e.row.event_id.clone(), e)).collect(),
                    )
                }
            };
            let event_of = |r: &PageRow| r.event().or_else(|| loaded.get(&r.event_id)).cloned();
            let exhausted = (rows.len() as i64) < limit as i64 + 1;
            reached_start |= exhausted;
            if let Some(last) = rows.last() {
                cursor = last.stream_ordering - 1;
            }
            if group_after.is_none() {
                group_after = Some(rows.first().and_then(|r| r.state_group));
            }
            for r in rows {
                if picked.len() == limit {
                    if !full {
                        full = true;
                        if contiguous {
                            group_before = Some(r.state_group);
                        }
                        // A timeline of no events (`limit: 0`) leaves nothing out.
                        if limit == 0 {
                            break;
                        }
                    }
                    // Limited means an event the client would have been shown was left out:
                    // the older ones a filter or visibility would hide do not count.
                    if check.allows(&r).await? && event_of(&r).is_some_and(|e| params.filter.timeline.allows(&view(&e)))
                    {
                        limited = true;
                        break;
                    }
                    continue;
                }
                if !check.allows(&r).await? && !self.in_current_state(room_id, &r, &mut current_ids).await? {
                    contiguous = false;
                    continue;
                }
                let Some(event) = event_of(&r) else {
                    contiguous = false;
                    continue;
                };
                let pos = r.stream_ordering;
                let mut v = view(&event);
                if params.filter.timeline.allows(&v) {
                    check.annotate(&r, &mut v).await?;
                    picked.push((pos, v));
                } else {
                    contiguous = false;
                }
            }
            if limited || exhausted || (full && limit == 0) {
                if exhausted && !full && contiguous && after == 0 {
                    // The whole history is in the timeline: nothing came before it.
                    group_before = Some(None);
                }
                break;
            }
        }
        // Looked as far as it goes without finding whether more would have been shown: say
        // so, and the client pages back if it cares.
        if full && limit > 0 && !limited && cursor > after && picked.len() == limit {
            limited = !reached_start;
        }
        // A room the user joined since the last sync is limited whatever it holds, as Synapse
        // marks it: the client must not take the timeline for the room's whole history.
        if fresh && since.is_some() && !params.full_state && limit > 0 {
            limited = true;
        }
        picked.reverse();
        if picked.is_empty() && !fresh {
            return Ok(None);
        }
        let timeline_start = picked.first().map(|(p, _)| *p).unwrap_or(upto + 1);
        let mut timeline: Vec<SyncEvent> = picked.into_iter().map(|(_, v)| v).collect();

        // State: before the timeline (classic) or after it (MSC4222), complete for a room new
        // to the client, otherwise what changed since the last sync.
        let at = if params.use_state_after { upto } else { timeline_start - 1 };
        // Not needed (and for a big room not cheap) when an incremental timeline is complete.
        let known_group = if params.use_state_after { group_after.filter(|_| fresh) } else { group_before };
        // A timeline that begins with the first event stored of a room joined through another
        // server has the state that server answered before it, not the (empty) state of the
        // stream before it.
        let first_stored_after_join = match timeline.first() {
            Some(first) if !params.use_state_after && !matches!(known_group, Some(Some(_))) => {
                match (first.event_type(), first.event_id()) {
                    ("m.room.create", _) | (_, None) => None,
                    (_, Some(id)) => self.rooms.state_before_stored(id).await?,
                }
            }
            _ => None,
        };
        // The room's history goes on before it, on other servers: the client may page back.
        if first_stored_after_join.is_some() && limit > 0 {
            limited = true;
        }
        let state_now = if !(fresh || limited || params.use_state_after) {
            Default::default()
        } else if let Some(state) = first_stored_after_join {
            state
        } else {
            match known_group {
                Some(Some(g)) => self.rooms.state_of_group(g).await?,
                Some(None) => Default::default(),
                None => self.rooms.state_at(room_id, at).await?,
            }
        };
        let lazy = params.filter.state.lazy_load_members;
        // An incremental sync's state: what changed since the last one.
        let delta_ids = match !fresh && (limited || params.use_state_after) {
            true => diff(&*self.rooms.state_at(room_id, since.unwrap_or(0)).await?, &state_now),
            false => Vec::new(),
        };
        let mut state_events: Vec<SyncEvent> = self.events_for(pre, &delta_ids).await?.iter().map(view).collect();
        state_events.retain(|e| params.filter.state.allows(e));
        // The summary only changes with membership: it comes with rooms new to the client and
        // when members came or went (spec: fields may be omitted when unchanged).
        let members_changed = fresh || timeline.iter().chain(&state_events).any(|e| e.event_type() == "m.room.member");
        // Then: whether the room has a name as of the end of the timeline, which the client
        // shows; without one it is named after its heroes.
        let named_at_end = match members_changed {
            true => Some(self.is_named(&*self.state_at_end(room_id, group_after, upto).await?).await?),
            false => None,
        };
        // The heroes' member events must come with lazy-loaded members (spec: "Room summary"),
        // also when members who came or went made others heroes.
        let heroes: Vec<String> = match lazy && named_at_end == Some(false) {
            true => pre.summary(db, room_id, viewer.user_id).await?.heroes.clone(),
            false => Vec::new(),
        };
        // With lazy-loaded members, the members the client needs to render the timeline, the
        // user's own, and the heroes'.
        let senders: HashSet<&str> = match lazy {
            true => timeline
                .iter()
                .map(|e| e.sender())
                .chain([viewer.user_id])
                .chain(heroes.iter().map(String::as_str))
                .collect(),
            false => HashSet::new(),
        };
        if fresh {
            // Members left out by lazy loading are not read at all: in a room of hundreds, they
            // are most of its state.
            let state_ids: Vec<String> = state_now
                .iter()
                .filter(|((kind, key), _)| !lazy || kind != "m.room.member" || senders.contains(key.as_str()))
                .map(|(_, id)| id.clone())
                .collect();
            state_events = self.events_for(pre, &state_ids).await?.iter().map(view).collect();
            state_events.retain(|e| params.filter.state.allows(e));
        }
        if lazy {
            // A room new to the client has only the members in `senders` (above); an incremental
            // sync's state delta keeps its membership changes (who joined or left in a gap), as
            // Synapse sends them.
            //
            // Every timeline sender's member event must reach the client, also in an incremental
            // sync where a sender speaks for the first time since the client's lazy initial sync;
            // once this device has it, not again unless redundant members are asked for.
            let lazy_key = (viewer.user_id.to_owned(), viewer.device_id.to_owned(), room_id.to_owned());
            // Taken out while this answer is built and put back with what it sends (not copied):
            // should the build fail, the device is sent those members once more.
            let mut sent: HashSet<String> =
                if fresh { HashSet::new() } else { self.lazy_sent.lock().remove(&lazy_key).unwrap_or_default() };
            let redundant = params.filter.state.include_redundant_members;
            // The user's own member event comes with a room new to the client; later it is only
            // sent when it changes (it is then in the state delta or the timeline).
            let new_to_device = |s: &&str| fresh || *s != viewer.user_id;
            let wanted: Vec<&str> = if redundant {
                // Every sender's, unless this answer has it already.
                let have: HashSet<&str> = member_keys(&state_events).chain(member_keys(&timeline)).collect();
                senders.iter().copied().filter(|s| !have.contains(*s) && new_to_device(s)).collect()
            } else {
                // Those the device has neither had nor gets in this answer: one set for both.
                sent.extend(member_keys(&state_events).chain(member_keys(&timeline)).map(str::to_owned));
                senders.iter().copied().filter(|s| !sent.contains(*s) && new_to_device(s)).collect()
            };
            let added = state_events.len();
            if !wanted.is_empty() {
                // The members as of the end of the timeline (the state before it for a new room).
                let state = if fresh && !params.use_state_after {
                    state_now.clone()
                } else {
                    self.state_at_end(room_id, group_after, upto).await?
                };
                let missing: Vec<String> = wanted
                    .iter()
                    .filter_map(|s| state.get(&("m.room.member".to_owned(), (*s).to_owned())).cloned())
                    .collect();
                state_events.extend(self.events_for(pre, &missing).await?.iter().map(view));
            }
            // What the device has now.
            if redundant {
                sent.extend(member_keys(&state_events).chain(member_keys(&timeline)).map(str::to_owned));
            } else {
                sent.extend(member_keys(&state_events[added..]).map(str::to_owned));
            }
            self.lazy_sent.lock().insert(lazy_key, sent);
        }
        if self.rooms.relations_after(room_id, timeline_start - 1) {
            self.rooms.bundle(&user, room_id, &mut timeline).await?;
        }
        let mut block = RoomBlock {
            timeline: Some(Timeline { events: timeline, limited, prev_batch: token(timeline_start - 1) }),
            state: Some(Events { events: state_events }),
            state_after: params.use_state_after,
            ..Default::default()
        };
        if let Some(named) = named_at_end {
            block.summary = Some(summary(pre.summary(db, room_id, viewer.user_id).await?, named));
        }
        Ok(Some(block))
    }

    pub(crate) async fn invite_block(&self, room_id: &str, invite_event_id: &str) -> Result<Value> {
        let room = RoomId::parse(room_id).map_err(Error::internal)?;
        let state = self.rooms.current_state_ids(&room).await?;
        let mut ids: Vec<String> =
            STRIPPED_TYPES.iter().filter_map(|t| state.get(&((*t).to_owned(), String::new())).cloned()).collect();
        // The inviter's own member event (their name and avatar), as Synapse sends: without it
        // Element X shows an invite from nobody.
        let invite = self.rooms.events(std::slice::from_ref(&invite_event_id.to_owned())).await?;
        let inviter = invite.first().and_then(|e| e.json().get("sender")).and_then(|s| match s {
            ruma::CanonicalJsonValue::String(s) => Some(s.clone()),
            _ => None,
        });
        if let Some(member) = inviter.and_then(|i| state.get(&("m.room.member".to_owned(), i)))
            && member != invite_event_id
        {
            ids.push(member.clone());
        }
        let mut loaded = self.rooms.events(&ids).await?;
        loaded.extend(invite);
        let mut stripped: Vec<Value> = loaded
            .iter()
            .filter(|e| e.row.event_id != invite_event_id)
            .map(|e| client_event::stripped(e.json()))
            .collect();
        // An invite into a room of another server that no one here is in: the room's state is
        // what the inviting server sent with it.
        if state.is_empty()
            && let Some(inv) = loaded.iter().find(|e| e.row.event_id == invite_event_id)
            && let Some(ruma::CanonicalJsonValue::Object(unsigned)) = inv.json().get("unsigned")
            && let Some(ruma::CanonicalJsonValue::Array(sent)) =
                unsigned.get("invite_room_state").or_else(|| unsigned.get("knock_room_state"))
        {
            let same_event = |e: &ruma::CanonicalJsonObject| {
                e.get("type") == inv.json().get("type") && e.get("state_key") == inv.json().get("state_key")
            };
            stripped.extend(sent.iter().filter_map(|e| match e {
                ruma::CanonicalJsonValue::Object(e) if !same_event(e) => Some(client_event::stripped(e)),
                _ => None,
            }));
        }
        // The invite itself, in full, last (clients read the inviter and is_direct from it).
        if let Some(inv) = loaded.iter().find(|e| e.row.event_id == invite_event_id) {
            let mut v = client_event::stripped(inv.json());
            v["event_id"] = json!(invite_event_id);
            v["origin_server_ts"] = Value::from(inv.json().get("origin_server_ts").cloned().unwrap_or_default());
            stripped.push(v);
        }
        let mut block = Map::new();
        block.insert("invite_state".into(), events(stripped));
        Ok(Value::Object(block))
    }
}

/// The state keys of the member events among `events`: whose member events they are.
fn member_keys(events: &[SyncEvent]) -> impl Iterator<Item = &str> {
    events.iter().filter(|e| e.event_type() == "m.room.member").filter_map(|e| e.state_key())
}

/// Event IDs in `to` that are not in `from` (state that changed between two points).
fn diff(from: &StateMap, to: &StateMap) -> Vec<String> {
    let old: HashSet<&String> = from.values().collect();
    let mut out: Vec<String> = to.values().filter(|id| !old.contains(id)).cloned().collect();
    out.sort();
    out
}

/// Room summary (spec: "Room summary" in /sync): member counts, and heroes for naming a room
/// without a name or canonical alias (only then, as the spec and Synapse have it).
fn summary(members: &storage::rooms::MemberSummary, named: bool) -> Value {
    let mut out = json!({ "m.joined_member_count": members.joined, "m.invited_member_count": members.invited });
    if !named {
        out["m.heroes"] = json!(members.heroes);
    }
    out
}

fn timeline_limit(params: &SyncParams) -> usize {
    params.filter.timeline.limit.unwrap_or(DEFAULT_TIMELINE_LIMIT).min(MAX_TIMELINE)
}

/// What an initial /sync reads for all joined rooms in one query each (the timelines in
/// chunks of rooms), instead of once per room.
#[derive(Default)]
struct Prefetched {
    /// Whether anything was loaded (then a room missing from `unread` has no unread events).
    loaded: bool,
    /// The rooms' events are more than the event cache holds: they are read past it, and the
    /// timeline pages come with their events' JSON.
    scan: bool,
    /// The stream position the timelines were read at.
    upto: i64,
    /// Events per timeline page.
    page: i64,
    /// The rooms in the order they are built, and how many of them have their page read.
    order: Vec<String>,
    read: usize,
    /// The first page of each room's timeline read and not yet built, and their events.
    timelines: super::rooms::TimelinePages,
    /// Member counts and heroes per room.
    summaries: HashMap<String, storage::rooms::MemberSummary>,
    unread: std::collections::HashMap<String, super::rooms::push::UnreadCounts>,
}

impl Prefetched {
    /// Rooms whose timeline pages are read in one query: pages with their JSON for thousands
    /// of rooms at once would hold tens of megabytes, and a query per 25 rooms costs little.
    const CHUNK: usize = 25;

    async fn load(db: &sqlx::SqlitePool, rooms: &[&str], me: &str, upto: i64, page: i64, scan: bool) -> Result<Self> {
        let mut out = Prefetched {
            loaded: true,
            scan,
            upto,
            page,
            order: rooms.iter().map(|r| (*r).to_owned()).collect(),
            ..Default::default()
        };
        if rooms.is_empty() {
            return Ok(out);
        }
        out.summaries = storage::rooms::summaries_many(db, rooms, me).await?.into_iter().collect();
        Ok(out)
    }

    /// The room's member counts and heroes: prefetched, else read alone (and kept for the
    /// rest of this room's block).
    async fn summary(&mut self, db: &sqlx::SqlitePool, room: &str, me: &str) -> Result<&storage::rooms::MemberSummary> {
        if !self.summaries.contains_key(room) {
            self.summaries.insert(room.to_owned(), storage::rooms::summary(db, room, me).await?);
        }
        Ok(&self.summaries[room])
    }

    /// The first page of the room's timeline (its events newest first), when it is one of the
    /// rooms prefetched: read with the next rooms in build order, unless it was already.
    async fn first_page(&mut self, rooms: &super::rooms::Rooms, room: &str) -> Result<Option<Vec<Arc<StoredEvent>>>> {
        if let Some(page) = self.timelines.rows.remove(room) {
            return Ok(Some(page));
        }
        // Rooms are built in the order they were prefetched in; a room that is not next was
        // either read already (and built) or is not one of them.
        let Some(at) = self.order[self.read..].iter().position(|r| r == room).map(|i| self.read + i) else {
            return Ok(None);
        };
        let end = (at + Self::CHUNK).min(self.order.len());
        let chunk: Vec<&str> = self.order[at..end].iter().map(String::as_str).collect();
        let pages = rooms.latest_pages(&chunk, self.upto, self.page, self.scan).await?;
        self.timelines.rows.extend(pages.rows);
        self.read = end;
        Ok(self.timelines.rows.remove(room))
    }
}

/// `{"events": [...]}`, moving the events in. (`json!` with a variable serialises it again,
/// which for the events of an initial sync was a deep copy of the whole response.)
fn events(list: Vec<Value>) -> Value {
    let mut m = Map::new();
    m.insert("events".into(), Value::Array(list));
    Value::Object(m)
}

/// An event of a room block (here and in sliding sync): written out from the cached PDU (see
/// [`ClientEvent`]).
pub(crate) type SyncEvent = ClientEvent<Arc<StoredEvent>>;

/// `{"events": [...]}` of events written out from the cache.
struct Events<T> {
    events: Vec<T>,
}

struct Timeline {
    events: Vec<SyncEvent>,
    limited: bool,
    prev_batch: String,
}

/// A joined or left room's block (spec: `JoinedRoom`, `LeftRoom`). A block with nothing but
/// account data or ephemeral events has no timeline.
#[derive(Default)]
struct RoomBlock {
    timeline: Option<Timeline>,
    /// The state before the timeline, or after it when `state_after` (MSC4222) was asked for.
    state: Option<Events<SyncEvent>>,
    state_after: bool,
    summary: Option<Value>,
    account_data: Option<Value>,
    ephemeral: Option<Value>,
    unread_notifications: Option<Value>,
    unread_thread_notifications: Option<Value>,
}

impl RoomBlock {
    fn timeline_events(&self) -> impl Iterator<Item = &SyncEvent> {
        self.timeline.iter().flat_map(|t| &t.events)
    }

    /// The block's JSON text. Its events are written by [`ClientEvent::write_json`]: from the
    /// head each cached event keeps, with only this view's `unsigned` written for it.
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(4096);
        let mut object = JsonObject::start(&mut out);
        if let Some(t) = &self.timeline {
            object.key("timeline");
            write_events(object.out, &t.events, |out| {
                out.extend_from_slice(if t.limited { b",\"limited\":true" } else { b",\"limited\":false" });
                out.extend_from_slice(br#","prev_batch":"#);
                serde_json::to_writer(out, &t.prev_batch)
            })?;
        }
        if let Some(state) = &self.state {
            // The unstable name matrix-rust-sdk asked for before MSC4222 was merged, as well.
            let keys: &[&str] =
                if self.state_after { &["state_after", "org.matrix.msc4222.state_after"] } else { &["state"] };
            for key in keys {
                object.key(key);
                write_events(object.out, &state.events, |_| Ok(()))?;
            }
        }
        let rest = [
            ("summary", &self.summary),
            ("account_data", &self.account_data),
            ("ephemeral", &self.ephemeral),
            ("unread_notifications", &self.unread_notifications),
            ("unread_thread_notifications", &self.unread_thread_notifications),
        ];
        for (key, value) in rest {
            if let Some(v) = value {
                object.key(key);
                serde_json::to_writer(&mut *object.out, v)?;
            }
        }
        object.end();
        Ok(out)
    }
}

/// `{"events":[...]` and what `more` writes after the list, then `}`.
fn write_events(
    out: &mut Vec<u8>,
    events: &[SyncEvent],
    more: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.extend_from_slice(br#"{"events":["#);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        e.write_json(out)?;
    }
    out.push(b']');
    more(out)?;
    out.push(b'}');
    Ok(())
}

/// A JSON object written by hand, key by key, around values that are JSON text already or
/// written by serde.
struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonObject<'a> {
    fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, first: true }
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    /// A key of this file's own, which needs no escaping.
    fn key(&mut self, key: &str) {
        debug_assert!(!key.contains(['"', '\\']) && !key.contains(|c: char| c.is_control()));
        self.comma();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A key from data (a room ID, an account data type), escaped as JSON.
    fn data_key(&mut self, key: &str) -> serde_json::Result<()> {
        self.comma();
        serde_json::to_writer(&mut *self.out, key)?;
        self.out.push(b':');
        Ok(())
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

/// A joined room's `unread_notifications`, and its `unread_thread_notifications` when the
/// client's filter asks for counts per thread. Then the room's counts are for its main timeline
/// only (spec: "Receiving notifications", threads); otherwise they are for all its events and no
/// counts per thread are sent. A thread without notifications is left out.
fn thread_counts(counts: super::rooms::push::UnreadCounts, per_thread: bool) -> (Value, Option<Value>) {
    let ((mut notes, mut highlights), threads) = counts;
    if !per_thread {
        return (json!({ "notification_count": notes, "highlight_count": highlights }), None);
    }
    let mut by_thread = serde_json::Map::new();
    for (thread, n, h) in threads {
        notes -= n;
        highlights -= h;
        by_thread.insert(thread, json!({ "notification_count": n, "highlight_count": h }));
    }
    let room = json!({ "notification_count": notes, "highlight_count": highlights });
    (room, (!by_thread.is_empty()).then_some(Value::Object(by_thread)))
}

/// A /sync answer: its fields, and the rooms with each joined room's block already written out.
pub struct SyncBody {
    fields: Map<String, Value>,
    rooms: SyncRooms,
}

struct SyncRooms {
    /// Each joined room's block as JSON text.
    join: BTreeMap<String, Vec<u8>>,
    invite: Map<String, Value>,
    leave: Map<String, Value>,
    knock: Map<String, Value>,
}

impl SyncBody {
    /// The answer's JSON text, written around the joined rooms' blocks, which are JSON text
    /// already (as a `RawValue` each would be parsed again to be checked).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let blocks: usize = self.rooms.join.values().map(Vec::len).sum();
        let mut out = Vec::with_capacity(blocks + 4096);
        self.write(&mut out).map_err(Error::internal)?;
        Ok(out)
    }

    fn write(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut body = JsonObject::start(out);
        for (k, v) in &self.fields {
            body.data_key(k)?;
            serde_json::to_writer(&mut *body.out, v)?;
        }
        body.key("rooms");
        let mut rooms = JsonObject::start(body.out);
        rooms.key("join");
        let mut join = JsonObject::start(rooms.out);
        for (room, block) in &self.rooms.join {
            join.data_key(room)?;
            join.out.extend_from_slice(block);
        }
        join.end();
        for (key, map) in [("invite", &self.rooms.invite), ("leave", &self.rooms.leave), ("knock", &self.rooms.knock)] {
            rooms.key(key);
            serde_json::to_writer(&mut *rooms.out, map)?;
        }
        rooms.end();
        body.end();
        Ok(())
    }
}

/// The members who joined (`came`) or left or were banned (`went`) in a room block's timeline
/// and state, other than `me`: whose device lists the client must fetch again or may drop.
fn member_changes(block: &RoomBlock, me: &str, came: &mut Vec<String>, went: &mut Vec<String>) {
    let events = block.timeline_events().chain(block.state.iter().flat_map(|s| &s.events));
    for e in events.filter(|e| e.event_type() == "m.room.member") {
        let (Some(who), Some(m)) = (e.state_key(), e.content_str("membership")) else {
            continue;
        };
        if who == me {
            continue;
        }
        match m {
            "join" => came.push(who.to_owned()),
            "leave" | "ban" => went.push(who.to_owned()),
            _ => {}
        }
    }
}
