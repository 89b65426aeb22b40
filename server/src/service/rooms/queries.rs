//! Reads the client API's lists and pages need: timeline pages, relations and threads, members,
//! memberships, the room directory, notifications, full-text search and reports. Thin on
//! purpose: the rules (who may see what) are applied by the callers through `visibility` and
//! membership checks; this keeps SQL out of handlers, so the federation side can share them.

use ruma::{RoomId, UserId};

use super::Rooms;
use crate::{
    error::{Error, Result},
    storage::{self, events::EventRow, now_ms, push_actions::PushActionRow, relations::RelationRow},
};

pub use crate::storage::search::fts_query;

/// What the full-text index holds: (search key, event type, content field). One field per
/// type, so the index keeps only the text and the event's position.
const SEARCHED: [(&str, &str, &str); 3] = [
    ("content.body", "m.room.message", "body"),
    ("content.name", "m.room.name", "name"),
    ("content.topic", "m.room.topic", "topic"),
];

/// The text of an event the full-text index holds: a message's body, a room's name or topic.
pub(super) fn searchable_text<'a>(event_type: &str, content: &'a serde_json::Value) -> Option<&'a str> {
    let (_, _, field) = SEARCHED.iter().find(|(_, t, _)| *t == event_type)?;
    content[*field].as_str()
}

impl Rooms {
    /// Events of `room` at stream positions in `(after, upto]`, newest first.
    pub async fn timeline_desc(&self, room: &RoomId, after: i64, upto: i64, limit: i64) -> Result<Vec<EventRow>> {
        Ok(storage::events::room_events_desc(&self.db.read, room.as_str(), after, upto, limit).await?)
    }

    /// Events of `room` at stream positions in `[from, to)`, oldest first.
    pub async fn timeline_asc(&self, room: &RoomId, from: i64, to: i64, limit: i64) -> Result<Vec<EventRow>> {
        Ok(storage::events::room_events_asc(&self.db.read, room.as_str(), from, to, limit).await?)
    }

    /// Candidates around `ts` for `/timestamp_to_event`, closest first.
    pub async fn events_near(&self, room: &RoomId, ts: i64, forward: bool, limit: i64) -> Result<Vec<EventRow>> {
        Ok(storage::events::by_timestamp(&self.db.read, room.as_str(), ts, forward, limit).await?)
    }

    /// Events relating to `parent`, in stream positions `(range.0, range.1)`.
    pub async fn relations_page(
        &self,
        parent: &str,
        rel_type: Option<&str>,
        event_type: Option<&str>,
        range: (i64, i64),
        forward: bool,
        limit: i64,
    ) -> Result<Vec<RelationRow>> {
        let (after, before) = range;
        Ok(storage::relations::page(&self.db.read, parent, rel_type, event_type, after, before, forward, limit).await?)
    }

    /// Thread roots of `room` (with their latest position) before `before`, latest first; only
    /// those `participant` took part in when given.
    pub async fn threads(
        &self,
        room: &RoomId,
        participant: Option<&str>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<(String, i64)>> {
        Ok(storage::relations::threads(&self.db.read, room.as_str(), participant, before, limit).await?)
    }

    pub async fn aliases_of(&self, room: &RoomId) -> Result<Vec<String>> {
        Ok(storage::rooms::aliases_of(&self.db.read, room.as_str()).await?)
    }

    /// Rooms both users are joined to.
    pub async fn shared_rooms(&self, a: &UserId, b: &UserId) -> Result<Vec<String>> {
        Ok(storage::rooms::shared_rooms(&self.db.read, a.as_str(), b.as_str()).await?)
    }

    pub async fn joined_rooms(&self, user: &UserId) -> Result<Vec<String>> {
        Ok(storage::rooms::joined_rooms(&self.db.read, user.as_str()).await?)
    }

    /// (user, membership, event ID) of every member of `room`.
    pub async fn members(&self, room: &RoomId) -> Result<Vec<(String, String, String)>> {
        Ok(storage::rooms::members(&self.db.read, room.as_str()).await?)
    }

    /// (user, membership) of changes between stream positions, in rooms shared with `user`.
    pub async fn membership_changes_around(&self, user: &UserId, from: i64, to: i64) -> Result<Vec<(String, String)>> {
        Ok(storage::rooms::membership_changes_around(&self.db.read, user.as_str(), from, to).await?)
    }

    /// Everyone who shares a room with `user`.
    pub async fn co_members(&self, user: &UserId) -> Result<Vec<String>> {
        Ok(storage::rooms::co_members(&self.db.read, user.as_str()).await?)
    }

    /// Rooms in the public directory.
    pub async fn public_rooms(&self) -> Result<Vec<String>> {
        Ok(storage::rooms::public_rooms(&self.db.read).await?)
    }

    /// A page of the published rooms whose name, topic or alias contains `term`, biggest
    /// first: (rooms, the next page's token, how many match). The same page for local clients
    /// and for other servers (`/_matrix/federation/v1/publicRooms`).
    pub async fn public_directory(
        &self,
        term: Option<&str>,
        limit: Option<u64>,
        since: Option<&str>,
    ) -> Result<(Vec<ruma::directory::PublicRoomsChunk>, Option<String>, u64)> {
        let term = term.map(str::to_lowercase);
        let mut rooms = Vec::new();
        for id in self.public_rooms().await? {
            let Ok(room_id) = RoomId::parse(&id) else { continue };
            let c: ruma::directory::PublicRoomsChunk =
                serde_json::from_value(self.summary_json(&room_id).await?).map_err(Error::internal)?;
            let matches = term.as_deref().is_none_or(|t| {
                [c.name.as_deref(), c.topic.as_deref(), c.canonical_alias.as_ref().map(|a| a.as_str())]
                    .into_iter()
                    .flatten()
                    .any(|f| f.to_lowercase().contains(t))
            });
            if matches {
                rooms.push(c);
            }
        }
        rooms.sort_by(|a, b| b.num_joined_members.cmp(&a.num_joined_members).then(a.room_id.cmp(&b.room_id)));
        let total = rooms.len() as u64;
        let start: usize = since.and_then(|s| s.strip_prefix('p')).and_then(|n| n.parse().ok()).unwrap_or(0);
        let limit = limit.unwrap_or(100).clamp(1, 500) as usize;
        let page: Vec<_> = rooms.into_iter().skip(start).take(limit).collect();
        let next = (start + page.len() < total as usize).then(|| format!("p{}", start + page.len()));
        Ok((page, next, total))
    }

    /// Whether `room` is in the directory; `None` for an unknown room.
    pub async fn is_public(&self, room: &RoomId) -> Result<Option<bool>> {
        Ok(storage::rooms::is_public(&self.db.read, room.as_str()).await?)
    }

    pub async fn set_public(&self, room: &RoomId, public: bool) -> Result<()> {
        Ok(storage::rooms::set_public(&self.db.write, room.as_str(), public).await?)
    }

    /// A page of `user`'s notifications before `before`, newest first.
    pub async fn notifications(
        &self,
        user: &UserId,
        before: i64,
        only_highlight: bool,
        limit: i64,
    ) -> Result<Vec<PushActionRow>> {
        Ok(storage::push_actions::list(&self.db.read, user.as_str(), before, only_highlight, limit).await?)
    }

    /// The stream position up to which `user` has read `thread` of `room` ("" for its main
    /// timeline).
    pub async fn read_position(&self, user: &UserId, room: &str, thread: &str) -> Result<i64> {
        Ok(storage::push_actions::read_position(&self.db.read, user.as_str(), room, thread).await?)
    }

    /// Full-text matches of `query` (see `fts_query`) in `rooms`, in the fields `keys` names
    /// (`content.body`, `content.name`, `content.topic`): (event, room, rank), best or newest
    /// first, `window` = (offset, limit).
    pub async fn search_events(
        &self,
        query: &str,
        rooms: &[String],
        keys: &[&str],
        by_rank: bool,
        window: (i64, i64),
    ) -> Result<Vec<(String, String, f64)>> {
        let (offset, limit) = window;
        let types: Vec<&str> =
            SEARCHED.iter().filter(|(key, _, _)| keys.contains(key)).map(|(_, event_type, _)| *event_type).collect();
        Ok(storage::search::search(&self.db.read, query, rooms, &types, by_rank, offset, limit).await?)
    }

    /// Records a report about an event, a room or a user, for the admin.
    pub async fn report(
        &self,
        reporter: &UserId,
        room: Option<&RoomId>,
        event: Option<&str>,
        user: Option<&UserId>,
        reason: Option<&str>,
    ) -> Result<()> {
        let (room, user) = (room.map(|r| r.as_str()), user.map(|u| u.as_str()));
        storage::reports::insert(&self.db.write, reporter.as_str(), room, event, user, reason, now_ms()).await?;
        Ok(())
    }
}

impl Rooms {
    /// Every event the given events' auth events lead to (their auth chain), without them.
    pub async fn auth_chain(&self, event_ids: &[String]) -> Result<Vec<String>> {
        let edges = storage::events::auth_graph(&self.db.read, event_ids).await?;
        let mut ids: Vec<String> = edges.into_iter().map(|(_, auth)| auth).collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The events as PDUs, as other servers get them.
    pub async fn pdus(&self, event_ids: &[String]) -> Result<Vec<Box<serde_json::value::RawValue>>> {
        self.events_shared(event_ids)
            .await?
            .iter()
            .map(|e| serde_json::value::to_raw_value(e.json()).map_err(Error::internal))
            .collect()
    }

    /// The room's forward extremities (the events no event follows yet).
    pub async fn forward_extremities(&self, room_id: &RoomId) -> Result<Vec<String>> {
        Ok(storage::events::forward_extremities_with_depth(&self.db.read, room_id.as_str())
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// The prev events of each of the given events: (event, prev event).
    pub async fn prev_events(&self, event_ids: &[String]) -> Result<Vec<(String, String)>> {
        Ok(storage::events::prev_edges(&self.db.read, event_ids).await?)
    }

    /// The servers with a member joined to the room.
    pub async fn servers_in_room(&self, room_id: &RoomId) -> Result<Vec<String>> {
        self.servers_with(room_id, &["join"]).await
    }

    /// The servers with a member of one of these memberships in the room.
    pub async fn servers_with(&self, room_id: &RoomId, memberships: &[&str]) -> Result<Vec<String>> {
        let mut servers: Vec<String> = storage::rooms::members(&self.db.read, room_id.as_str())
            .await?
            .into_iter()
            .filter(|(_, membership, _)| memberships.contains(&membership.as_str()))
            .filter_map(|(u, _, _)| UserId::parse(&u).ok().map(|u| u.server_name().to_string()))
            .collect();
        servers.sort();
        servers.dedup();
        Ok(servers)
    }
}

impl Rooms {
    /// The `mxc://` URLs the room's events point at, newest first (Synapse's room media).
    pub async fn media_urls(&self, room: &RoomId) -> Result<Vec<String>> {
        Ok(storage::events::media_urls_in_room(&self.db.read, room.as_str()).await?)
    }
}

/// What `/context` shows around an event (client and admin API alike), before any visibility
/// rule or filter: the events before it (nearest first) and after it, the page's positions,
/// and the room's state at the event.
pub struct Context {
    pub event: super::StoredEvent,
    pub before: Vec<EventRow>,
    pub after: Vec<EventRow>,
    pub start: i64,
    pub end: i64,
    pub state: Vec<super::StoredEvent>,
}

impl Rooms {
    /// The context of `event_id` in `room`: `limit` events in all, split as Synapse does (the
    /// smaller half before the event, the rest after it); None when the room has no such
    /// event (or it was rejected).
    pub async fn context(&self, room: &RoomId, event_id: &str, limit: i64) -> Result<Option<Context>> {
        let Some(event) = self
            .event(event_id)
            .await?
            .filter(|e| e.row.room_id == room.as_str() && !e.row.rejected && !e.row.soft_failed)
        else {
            return Ok(None);
        };
        let pos = event.row.stream_ordering;
        let before_limit = limit / 2;
        let before = self.timeline_desc(room, 0, pos - 1, before_limit).await?;
        let after = self.timeline_asc(room, pos + 1, i64::MAX, limit - before_limit).await?;
        let start = before.last().map_or(pos - 1, |r| r.stream_ordering - 1).max(0);
        let end = after.last().map_or(pos, |r| r.stream_ordering);
        let state_ids: Vec<String> = self.state_at(room.as_str(), pos).await?.values().cloned().collect();
        let state = self.events(&state_ids).await?;
        Ok(Some(Context { event, before, after, start, end, state }))
    }
}
