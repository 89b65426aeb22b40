//! /sync (spec: Client-Server API, "Syncing"): initial and incremental sync over the server's
//! streams (room events, account data), long-polling on the notifier so a waiting client wakes
//! as soon as something is stored.
//!
//! A sync token is `s<events>_<account data>`: everything at or before those stream positions
//! has been delivered. Pagination tokens (`prev_batch`, /messages) are `s<events>`.

use std::{
    collections::HashSet,
    sync::Arc,
    time::Duration,
};

use ruma::{RoomId, UserId};
use serde_json::{Map, Value, json};

use super::{
    account_data::AccountData,
    notifier::Notifier,
    rooms::{Rooms, StoredEvent},
};
use crate::{
    error::{Error, Result},
    matrix::client_event::{self, View, Viewer},
    storage::{self, now_ms, state::StateMap},
};

/// The timeline limit when the filter sets none (Synapse's default).
pub const DEFAULT_TIMELINE_LIMIT: usize = 10;
/// Longest long-poll accepted; clients ask for 30 s.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// Stripped state shown with invites (spec: "Stripped state", recommended types).
const STRIPPED_TYPES: &[&str] =
    &["m.room.create", "m.room.join_rules", "m.room.name", "m.room.avatar", "m.room.canonical_alias", "m.room.encryption", "m.room.topic"];

/// Positions in each stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncToken {
    pub events: i64,
    pub account_data: i64,
}

impl SyncToken {
    pub fn parse(token: &str) -> Result<SyncToken> {
        let bad = || Error::invalid_param(format!("Invalid sync token `{token}`"));
        let rest = token.strip_prefix('s').ok_or_else(bad)?;
        let mut parts = rest.split('_').map(|p| p.parse::<i64>().ok().filter(|n| *n >= 0));
        let events = parts.next().flatten().ok_or_else(bad)?;
        let account_data = match parts.next() {
            Some(p) => p.ok_or_else(bad)?,
            None => 0,
        };
        Ok(SyncToken { events, account_data })
    }

    pub fn encode(&self) -> String {
        format!("s{}_{}", self.events, self.account_data)
    }
}

pub struct SyncParams {
    pub since: Option<SyncToken>,
    pub timeout: Duration,
    pub full_state: bool,
    pub timeline_limit: usize,
}

pub struct Sync {
    rooms: Arc<Rooms>,
    account_data: Arc<AccountData>,
    notifier: Arc<Notifier>,
}

/// The event position of a pagination token (`s<n>`, or a whole sync token).
pub fn parse_token(token: &str) -> Result<i64> {
    SyncToken::parse(token).map(|t| t.events)
}

pub fn token(pos: i64) -> String {
    format!("s{pos}")
}

impl Sync {
    pub fn new(rooms: Arc<Rooms>, account_data: Arc<AccountData>, notifier: Arc<Notifier>) -> Self {
        Self { rooms, account_data, notifier }
    }

    fn head(&self) -> SyncToken {
        SyncToken { events: self.rooms.stream_head(), account_data: self.account_data.stream_head() }
    }

    /// Answers a /sync request, waiting up to `timeout` for something new when `since` is given.
    pub async fn sync(&self, user: &UserId, device: &str, params: &SyncParams) -> Result<Value> {
        let mut rx = self.notifier.subscribe();
        let deadline = tokio::time::Instant::now() + params.timeout.min(MAX_TIMEOUT);
        loop {
            rx.borrow_and_update();
            let head = self.head();
            // A token from the future (another server's, or a restored backup) counts as now.
            let since = params.since.map(|s| SyncToken {
                events: s.events.min(head.events),
                account_data: s.account_data.min(head.account_data),
            });
            let (body, has_news) = self.build(user, device, since, head, params).await?;
            if has_news || since.is_none() || params.full_state || tokio::time::Instant::now() >= deadline {
                return Ok(body);
            }
            // Wait for the stream to move (or the timeout), then look again. A position change
            // that concerns other users' rooms only makes this loop once more, cheaply.
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                let (body, _) = self.build(user, device, since, head, params).await?;
                return Ok(body);
            }
        }
    }

    async fn build(
        &self,
        user: &UserId,
        device: &str,
        since_token: Option<SyncToken>,
        head_token: SyncToken,
        params: &SyncParams,
    ) -> Result<(Value, bool)> {
        let db = &self.rooms.db().read;
        let viewer = Viewer { user_id: user.as_str(), device_id: device };
        let now = now_ms();
        let mut join = Map::new();
        let mut invite = Map::new();
        let mut leave = Map::new();
        let since = since_token.map(|t| t.events);
        let head = head_token.events;
        let since_pos = since.unwrap_or(0);

        // Account data changed since the token: global, and per room (sent in room blocks).
        let mut global_data = Vec::new();
        let mut room_data: std::collections::HashMap<String, Vec<Value>> = Default::default();
        for row in self.account_data.changed_since(user, since_token.map_or(0, |t| t.account_data)).await? {
            if row.stream_id > head_token.account_data {
                continue;
            }
            let content: Value = serde_json::from_str(&row.content).map_err(Error::internal)?;
            let ev = json!({ "type": row.data_type, "content": content });
            if row.room_id.is_empty() {
                global_data.push(ev);
            } else {
                room_data.entry(row.room_id).or_default().push(ev);
            }
        }

        for m in storage::rooms::memberships_of(db, user.as_str()).await? {
            let changed = m.stream_ordering > since_pos;
            match m.membership.as_str() {
                "join" => {
                    // A room joined since the last sync is sent as if this were an initial sync.
                    let fresh = since.is_none() || params.full_state || (changed && self.joined_after(&m.room_id, user, since_pos).await?);
                    let data = room_data.remove(&m.room_id).unwrap_or_default();
                    let block = self.room_block(&m.room_id, &viewer, since, head, fresh, params.timeline_limit, now).await?;
                    match (block, data.is_empty()) {
                        (Some(mut b), _) => {
                            b["account_data"]["events"] = Value::Array(data);
                            join.insert(m.room_id.clone(), b);
                        }
                        (None, false) => {
                            join.insert(m.room_id.clone(), json!({ "account_data": { "events": data } }));
                        }
                        (None, true) => {}
                    }
                }
                "invite" if since.is_none() || changed => {
                    invite.insert(m.room_id.clone(), self.invite_block(&m.room_id, &m.event_id).await?);
                }
                "leave" | "ban" if since.is_some() && changed => {
                    // The timeline up to the leave, so the client sees why it left.
                    if let Some(block) = self.room_block(&m.room_id, &viewer, since, m.stream_ordering, false, params.timeline_limit, now).await? {
                        leave.insert(m.room_id.clone(), block);
                    }
                }
                _ => {}
            }
        }
        let has_news = !(join.is_empty() && invite.is_empty() && leave.is_empty() && global_data.is_empty());
        let body = json!({
            "next_batch": head_token.encode(),
            "rooms": { "join": join, "invite": invite, "leave": leave, "knock": {} },
            "account_data": { "events": global_data },
            "presence": { "events": [] },
            "to_device": { "events": [] },
            "device_lists": { "changed": [], "left": [] },
            "device_one_time_keys_count": {},
        });
        Ok((body, has_news))
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
                .is_none_or(|e| super::rooms::content_of(&e.json)["membership"] != "join")),
        }
    }

    /// A joined (or left) room's block: timeline after `since` up to `upto`, and the state the
    /// client needs before that timeline. `None` when nothing changed.
    #[allow(clippy::too_many_arguments)]
    async fn room_block(
        &self,
        room_id: &str,
        viewer: &Viewer<'_>,
        since: Option<i64>,
        upto: i64,
        fresh: bool,
        limit: usize,
        now: i64,
    ) -> Result<Option<Value>> {
        let db = &self.rooms.db().read;
        let after = if fresh { 0 } else { since.unwrap_or(0) };
        let mut rows = storage::events::room_events_desc(db, room_id, after, upto, limit as i64 + 1).await?;
        let limited = rows.len() > limit;
        rows.truncate(limit);
        rows.reverse();
        if rows.is_empty() && !fresh {
            return Ok(None);
        }
        let timeline_start = rows.first().map(|r| r.stream_ordering).unwrap_or(upto + 1);
        let state_before = self.rooms.state_at(room_id, timeline_start - 1).await?;
        let state_ids: Vec<String> = if fresh {
            state_before.values().cloned().collect()
        } else if limited {
            let at_since = self.rooms.state_at(room_id, since.unwrap_or(0)).await?;
            diff(&at_since, &state_before)
        } else {
            Vec::new()
        };
        let state_events = self.rooms.events(&state_ids).await?;
        let view = |e: &StoredEvent| {
            client_event::format(
                &View {
                    json: &e.json,
                    event_id: &e.row.event_id,
                    room_id,
                    txn: e.row.txn_device_id.as_deref().zip(e.row.txn_id.as_deref()),
                },
                false,
                Some(viewer),
                now,
            )
        };
        let timeline: Vec<Value> = rows
            .into_iter()
            .map(|r| {
                let json = serde_json::from_str(&r.pdu).map_err(Error::internal)?;
                Ok(view(&StoredEvent { row: r, json }))
            })
            .collect::<Result<_>>()?;
        let summary = self.summary(room_id, viewer.user_id).await?;
        Ok(Some(json!({
            "timeline": {
                "events": timeline,
                "limited": limited,
                "prev_batch": token((timeline_start - 1).max(0)),
            },
            "state": { "events": state_events.iter().map(view).collect::<Vec<_>>() },
            "ephemeral": { "events": [] },
            "account_data": { "events": [] },
            "summary": summary,
            "unread_notifications": { "notification_count": 0, "highlight_count": 0 },
        })))
    }

    /// Room summary (spec: "Room summary" in /sync): member counts and heroes for naming rooms
    /// without a name.
    async fn summary(&self, room_id: &str, me: &str) -> Result<Value> {
        let members = storage::rooms::members(&self.rooms.db().read, room_id).await?;
        let joined = members.iter().filter(|(_, m, _)| m == "join").count();
        let invited = members.iter().filter(|(_, m, _)| m == "invite").count();
        let heroes: Vec<&str> = members
            .iter()
            .filter(|(u, m, _)| u != me && (m == "join" || m == "invite"))
            .map(|(u, _, _)| u.as_str())
            .take(5)
            .collect();
        Ok(json!({ "m.heroes": heroes, "m.joined_member_count": joined, "m.invited_member_count": invited }))
    }

    async fn invite_block(&self, room_id: &str, invite_event_id: &str) -> Result<Value> {
        let room = RoomId::parse(room_id).map_err(Error::internal)?;
        let state = self.rooms.current_state_ids(&room).await?;
        let mut ids: Vec<String> =
            STRIPPED_TYPES.iter().filter_map(|t| state.get(&((*t).to_owned(), String::new())).cloned()).collect();
        ids.push(invite_event_id.to_owned());
        let events = self.rooms.events(&ids).await?;
        let mut stripped: Vec<Value> = events.iter().filter(|e| e.row.event_id != invite_event_id).map(|e| client_event::stripped(&e.json)).collect();
        // The invite itself, in full, last (clients read the inviter and is_direct from it).
        if let Some(inv) = events.iter().find(|e| e.row.event_id == invite_event_id) {
            let mut v = client_event::stripped(&inv.json);
            v["event_id"] = json!(invite_event_id);
            v["origin_server_ts"] = Value::from(inv.json.get("origin_server_ts").cloned().unwrap_or_default());
            stripped.push(v);
        }
        Ok(json!({ "invite_state": { "events": stripped } }))
    }
}

/// Event IDs in `to` that are not in `from` (state that changed between two points).
fn diff(from: &StateMap, to: &StateMap) -> Vec<String> {
    let old: HashSet<&String> = from.values().collect();
    let mut out: Vec<String> = to.values().filter(|id| !old.contains(id)).cloned().collect();
    out.sort();
    out
}
