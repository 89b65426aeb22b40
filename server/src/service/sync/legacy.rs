//! The API from before /sync, deprecated but still how clients peek into world-readable rooms
//! (spec: "Room Previews") and how guests follow one: a snapshot of one room
//! (`/rooms/{roomId}/initialSync`), of every room (`/initialSync`), and the event stream
//! (`/events`). Tokens are the `s<n>` stream positions of /messages.

use std::collections::HashMap;

use ruma::{RoomId, UserId};
use serde_json::{Value, json};

use super::{MAX_TIMEOUT, Sync, token};
use crate::{
    error::Result,
    matrix::client_event::{self, View, Viewer},
    service::rooms::{StoredEvent, visibility::StateReader},
    storage::{now_ms, rooms::MembershipRow},
};

/// Messages in a snapshot, and events in one /events answer, when the client sets no limit
/// (Synapse's).
pub const DEFAULT_LIMIT: i64 = 10;
/// Most messages or events one answer carries.
const MAX_LIMIT: i64 = 1000;

fn view(e: &StoredEvent, viewer: &Viewer<'_>, now: i64) -> Value {
    client_event::format(
        &View { json: e.json(), event_id: &e.row.event_id, room_id: &e.row.room_id, txn: None },
        true,
        Some(viewer),
        now,
    )
}

impl Sync {
    /// A room as `/rooms/{roomId}/initialSync` and `/initialSync` show it: its latest `limit`
    /// messages the user may see, its state (now for members and peekers, as they left for
    /// former members), whether it is in the directory, and the user's account data for it.
    /// `membership` is the user's row; None for someone peeking into a world-readable room.
    /// None: the user may not read the room.
    pub async fn room_snapshot(
        &self,
        user: &UserId,
        room_id: &RoomId,
        membership: Option<&MembershipRow>,
        limit: i64,
    ) -> Result<Option<Value>> {
        let mut data = self.account_data_by_room(user).await?;
        self.snapshot(user, room_id, membership, limit, data.remove(room_id.as_str()).unwrap_or_default()).await
    }

    /// `room_snapshot` with the user's account data for the room already read.
    async fn snapshot(
        &self,
        user: &UserId,
        room_id: &RoomId,
        membership: Option<&MembershipRow>,
        limit: i64,
        account_data: Vec<Value>,
    ) -> Result<Option<Value>> {
        let Some(reader) = self.rooms.state_reader(user, room_id).await? else { return Ok(None) };
        let viewer = Viewer { user_id: user.as_str(), device_id: "" };
        let now = now_ms();
        let upto = match reader {
            StateReader::Departed(at) => at,
            _ => self.rooms.stream_head(),
        };
        let mut check = self.rooms.visibility_with(user, room_id.as_str(), membership);
        let rows = self.rooms.timeline_desc(room_id, 0, upto, limit.clamp(0, MAX_LIMIT)).await?;
        let start = rows.last().map_or(upto, |r| r.stream_ordering - 1);
        let mut chunk = Vec::with_capacity(rows.len());
        for row in check.filter(rows).await?.into_iter().rev() {
            let e = crate::service::rooms::parse_row(row)?;
            let mut v = view(&e, &viewer, now);
            check.annotate(&e.row, &mut v).await?;
            chunk.push(v);
        }
        let state_ids: Vec<String> = self.rooms.readable_state(room_id, reader).await?.values().cloned().collect();
        let state: Vec<Value> = self.rooms.events(&state_ids).await?.iter().map(|e| view(e, &viewer, now)).collect();
        let joined: std::collections::HashSet<String> = state
            .iter()
            .filter(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "join")
            .filter_map(|e| e["state_key"].as_str().map(str::to_owned))
            .collect();
        let public = self.rooms.is_public(room_id).await?.unwrap_or(false);
        let mut out = json!({
            "room_id": room_id,
            "messages": { "start": token(start.max(0)), "end": token(upto), "chunk": chunk },
            "state": state,
            "visibility": if public { "public" } else { "private" },
            "account_data": account_data,
        });
        if let Some(m) = membership {
            out["membership"] = json!(m.membership);
        }
        // What members see besides: their presence and the room's receipts (Synapse adds them).
        if reader == StateReader::Member {
            out["presence"] = json!(self.ephemeral.presence_events(&joined, 0, self.ephemeral.presence_head()));
            let receipts = self
                .ephemeral
                .receipt_event(room_id.as_str(), 0, self.ephemeral.receipts_head(), user.as_str())
                .await?;
            out["receipts"] = json!(receipts.into_iter().collect::<Vec<_>>());
        }
        Ok(Some(out))
    }

    /// All of the user's account data as events, by room ("" for the global ones), read once.
    async fn account_data_by_room(&self, user: &UserId) -> Result<HashMap<String, Vec<Value>>> {
        let mut out: HashMap<String, Vec<Value>> = HashMap::new();
        for r in self.account_data.changed_since(user, 0).await? {
            let content = serde_json::from_str::<Value>(&r.content).unwrap_or_default();
            out.entry(r.room_id).or_default().push(json!({ "type": r.data_type, "content": content }));
        }
        Ok(out)
    }

    /// `/initialSync`: every room the user is in or invited to (and, with `archived`, those
    /// they left), each as `room_snapshot` shows it (an invite as the invite event only), with
    /// the user's global account data and their contacts' presence.
    pub async fn initial_sync(&self, user: &UserId, limit: i64, archived: bool) -> Result<Value> {
        let head = self.rooms.stream_head();
        let viewer = Viewer { user_id: user.as_str(), device_id: "" };
        let now = now_ms();
        let mut data = self.account_data_by_room(user).await?;
        let mut rooms = Vec::new();
        for m in self.rooms.memberships_of(user).await?.iter() {
            let Ok(room_id) = RoomId::parse(&m.room_id) else { continue };
            match m.membership.as_str() {
                "join" => {}
                "invite" => {
                    if self.rooms.invite_from_ignored(user, m).await? {
                        continue;
                    }
                    let invite = self.rooms.event(&m.event_id).await?.map(|e| view(&e, &viewer, now));
                    rooms.push(json!({ "room_id": room_id, "membership": "invite", "invite": invite }));
                    continue;
                }
                "leave" | "ban" if archived => {}
                _ => continue,
            }
            let room_data = data.remove(room_id.as_str()).unwrap_or_default();
            if let Some(snapshot) = self.snapshot(user, &room_id, Some(m), limit, room_data).await? {
                rooms.push(snapshot);
            }
        }
        let contacts: std::collections::HashSet<String> = self.rooms.co_members(user).await?.into_iter().collect();
        let account_data = data.remove("").unwrap_or_default();
        Ok(json!({
            "end": token(head),
            "rooms": rooms,
            "presence": self.ephemeral.presence_events(&contacts, 0, self.ephemeral.presence_head()),
            "account_data": account_data,
        }))
    }

    /// `/events`: the room events after `from` (now when absent) in the given rooms, each row the
    /// user's membership in it (None when peeking), waiting up to `timeout` for the first.
    /// Answers (events, start token, end token).
    pub async fn event_stream(
        &self,
        user: &UserId,
        rooms: &[(ruma::OwnedRoomId, Option<MembershipRow>)],
        from: Option<i64>,
        timeout: std::time::Duration,
        limit: i64,
    ) -> Result<Value> {
        let limit = limit.clamp(1, MAX_LIMIT);
        let mut rx = self.notifier.subscribe();
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_TIMEOUT);
        let from = from.unwrap_or_else(|| self.rooms.stream_head()).min(self.rooms.stream_head());
        let viewer = Viewer { user_id: user.as_str(), device_id: "" };
        loop {
            rx.borrow_and_update();
            let head = self.rooms.stream_head();
            let mut found: Vec<(i64, Value)> = Vec::new();
            for (room_id, membership) in rooms {
                let rows = self.rooms.timeline_asc(room_id, from + 1, head + 1, limit).await?;
                if rows.is_empty() {
                    continue;
                }
                let mut check = self.rooms.visibility_with(user, room_id.as_str(), membership.as_ref());
                let now = now_ms();
                for row in check.filter(rows).await? {
                    let e = crate::service::rooms::parse_row(row)?;
                    let mut v = view(&e, &viewer, now);
                    check.annotate(&e.row, &mut v).await?;
                    found.push((e.row.stream_ordering, v));
                }
            }
            found.sort_by_key(|(pos, _)| *pos);
            found.truncate(limit as usize);
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                // A full page ends at its last event; otherwise everything up to `head` is seen.
                let end = if found.len() as i64 == limit { found.last().map_or(head, |(p, _)| *p) } else { head };
                let chunk: Vec<Value> = found.into_iter().map(|(_, v)| v).collect();
                return Ok(json!({ "start": token(from), "end": token(end), "chunk": chunk }));
            }
            if !matches!(tokio::time::timeout_at(deadline, rx.changed()).await, Ok(Ok(()))) {
                return Ok(json!({ "start": token(from), "end": token(head), "chunk": [] }));
            }
        }
    }
}
