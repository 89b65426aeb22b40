//! History visibility (spec: "History visibility", server behaviour): which events of a room a
//! user may see, decided per event from the room's `m.room.history_visibility` and the user's
//! membership as they were at that event.
//!
//! - `world_readable`: everyone;
//! - `shared`: members who were joined at the event, or who are joined now;
//! - `invited`: members who were invited or joined at the event;
//! - `joined`: members who were joined at the event.
//!
//! A user always sees their own membership events.

use std::collections::HashMap;

use ruma::UserId;

use super::{Rooms, content_of};
use crate::{
    error::Result,
    storage::{self, events::EventRow, rooms::MembershipRow},
};

/// One user's view of one room; caches the answer per state group.
pub struct VisibilityCheck<'a> {
    rooms: &'a Rooms,
    user: &'a UserId,
    room_id: String,
    joined_now: bool,
    /// With `joined_now`: the stream position of the join. Every later event was sent while
    /// the user was joined, so it is visible without looking at its state.
    joined_since: Option<i64>,
    cache: HashMap<Option<i64>, bool>,
}

impl Rooms {
    /// A checker for `user` in `room_id`.
    pub async fn visibility<'a>(&'a self, user: &'a UserId, room_id: &str) -> Result<VisibilityCheck<'a>> {
        let membership = storage::rooms::membership(&self.db.read, room_id, user.as_str()).await?;
        Ok(self.visibility_with(user, room_id, membership.as_ref()))
    }

    /// `visibility` when the caller already read the user's current membership row.
    pub fn visibility_with<'a>(
        &'a self,
        user: &'a UserId,
        room_id: &str,
        membership: Option<&MembershipRow>,
    ) -> VisibilityCheck<'a> {
        let joined = membership.filter(|m| m.membership == "join");
        VisibilityCheck {
            rooms: self,
            user,
            room_id: room_id.to_owned(),
            joined_now: joined.is_some(),
            joined_since: joined.map(|m| m.stream_ordering),
            cache: HashMap::new(),
        }
    }

    /// Whether `user` may see anything of the room at all (a member now or once, or a
    /// world-readable room): the gate of read endpoints before per-event filtering.
    pub async fn may_read_room(&self, user: &UserId, room_id: &ruma::RoomId) -> Result<bool> {
        if storage::rooms::membership(&self.db.read, room_id.as_str(), user.as_str()).await?.is_some() {
            return Ok(true);
        }
        let vis = self.current_state_event(room_id, "m.room.history_visibility", "").await?;
        Ok(vis.is_some_and(|e| content_of(&e.json)["history_visibility"] == "world_readable"))
    }
}

impl VisibilityCheck<'_> {
    /// Whether the event (by its stored row) is visible.
    pub async fn allows(&mut self, row: &EventRow) -> Result<bool> {
        if row.room_id != self.room_id {
            return Ok(false);
        }
        if self.joined_since.is_some_and(|since| row.stream_ordering >= since) {
            return Ok(true);
        }
        // One always sees one's own membership changes (e.g. being kicked).
        if row.event_type == "m.room.member" && row.state_key.as_deref() == Some(self.user.as_str()) {
            return Ok(true);
        }
        if let Some(v) = self.cache.get(&row.state_group) {
            return Ok(*v);
        }
        let visible = match row.state_group {
            None => false,
            Some(group) => {
                let me = self.user.as_str();
                let keys = [("m.room.history_visibility", ""), ("m.room.member", me)];
                let state = storage::state::lookup(&self.rooms.db.read, group, &keys).await?;
                let content = async |t: &str, k: &str| -> Result<serde_json::Value> {
                    match state.get(&(t.to_owned(), k.to_owned())) {
                        Some(id) => Ok(self.rooms.event(id).await?.map(|e| content_of(&e.json)).unwrap_or_default()),
                        None => Ok(serde_json::Value::Null),
                    }
                };
                let vis = content("m.room.history_visibility", "").await?;
                // The spec's default when the room has no history_visibility is "shared".
                let vis = vis["history_visibility"].as_str().unwrap_or("shared").to_owned();
                let membership = content("m.room.member", me).await?;
                let membership = membership["membership"].as_str().unwrap_or("leave");
                match vis.as_str() {
                    "world_readable" => true,
                    _ if membership == "join" => true,
                    "shared" => self.joined_now,
                    "invited" => membership == "invite",
                    _ => false,
                }
            }
        };
        self.cache.insert(row.state_group, visible);
        Ok(visible)
    }

    /// Keeps the visible rows, in order.
    pub async fn filter(&mut self, rows: Vec<EventRow>) -> Result<Vec<EventRow>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            if self.allows(&r).await? {
                out.push(r);
            }
        }
        Ok(out)
    }
}
