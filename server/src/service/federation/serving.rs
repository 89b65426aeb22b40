//! What other servers may read of our rooms: single events, the state at an event, auth chains,
//! missing events and backfill. Only a server with a member in the room (joined or invited) may
//! read it, as in Synapse ("Host not in room").

use std::collections::{HashSet, VecDeque};

use ruma::{CanonicalJsonValue, OwnedEventId, RoomId, ServerName};
use serde_json::value::RawValue;

use super::Federation;
use crate::error::{Error, Result};

/// Most events one `/backfill` or `/get_missing_events` answer carries.
const MAX_EVENTS: usize = 100;

impl Federation {
    async fn check_server_in_room(&self, origin: &ServerName, room_id: &RoomId) -> Result<()> {
        if self.rooms.room(room_id).await?.is_none() {
            return Err(Error::not_found("Unknown room"));
        }
        self.check_acl(origin, room_id).await?;
        let servers = self.rooms.servers_with(room_id, &["join", "invite"]).await?;
        if !servers.iter().any(|s| s == origin.as_str()) {
            return Err(Error::forbidden("Host not in room."));
        }
        Ok(())
    }

    /// `/event/{eventId}`: one event, for a server in its room.
    pub async fn event_for(&self, origin: &ServerName, event_id: &str) -> Result<Box<RawValue>> {
        let event = self.rooms.event(event_id).await?.ok_or_else(|| Error::not_found("Unknown event"))?;
        let room_id = RoomId::parse(&event.row.room_id).map_err(Error::internal)?;
        self.check_server_in_room(origin, &room_id).await?;
        serde_json::value::to_raw_value(event.json()).map_err(Error::internal)
    }

    /// `/timestamp_to_event`: the event of the room closest to `ts` (the first at or after it
    /// going forwards, the last at or before it going backwards), for a server in the room:
    /// (event ID, its origin_server_ts).
    pub async fn event_near(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        ts: i64,
        forward: bool,
    ) -> Result<(OwnedEventId, i64)> {
        self.check_server_in_room(origin, room_id).await?;
        let row = self
            .rooms
            .events_near(room_id, ts, forward, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("No event found near that time"))?;
        let event = self.rooms.event(&row.event_id).await?.ok_or_else(|| Error::not_found("Unknown event"))?;
        let sent = match event.json().get("origin_server_ts") {
            Some(CanonicalJsonValue::Integer(t)) => i64::from(*t),
            _ => 0,
        };
        Ok((OwnedEventId::try_from(row.event_id).map_err(Error::internal)?, sent))
    }

    /// `/state_ids` and `/state`: the room's state before `event_id` and its auth chain.
    pub async fn state_at(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &str,
    ) -> Result<(Vec<String>, Vec<String>)> {
        self.check_server_in_room(origin, room_id).await?;
        let event = self.rooms.event(event_id).await?.ok_or_else(|| Error::not_found("Unknown event"))?;
        if event.row.room_id != room_id.as_str() {
            return Err(Error::not_found("The event is not in this room"));
        }
        let state: Vec<String> = self.rooms.state_before(room_id, event_id).await?.values().cloned().collect();
        let chain = self.rooms.auth_chain(&state).await?;
        Ok((state, chain))
    }

    /// `/event_auth`: the auth chain of one event.
    pub async fn event_auth(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &str,
    ) -> Result<Vec<Box<RawValue>>> {
        self.check_server_in_room(origin, room_id).await?;
        let chain = self.rooms.auth_chain(&[event_id.to_owned()]).await?;
        self.rooms.pdus(&chain).await
    }

    /// The PDUs of `ids` (in that order).
    pub async fn pdus(&self, ids: &[String]) -> Result<Vec<Box<RawValue>>> {
        self.rooms.pdus(ids).await
    }

    /// `/get_missing_events`: events before `latest` (walking prev events, newest first) down
    /// to `earliest`, at most `limit`, none below `min_depth`.
    pub async fn missing_events(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        earliest: &[OwnedEventId],
        latest: &[OwnedEventId],
        limit: usize,
        min_depth: i64,
    ) -> Result<Vec<Box<RawValue>>> {
        self.check_server_in_room(origin, room_id).await?;
        let stop: HashSet<String> = earliest.iter().map(ToString::to_string).collect();
        let start: Vec<String> = latest.iter().map(ToString::to_string).collect();
        let found = self.walk_back(room_id, &start, &stop, limit.min(MAX_EVENTS), min_depth).await?;
        // Oldest first, as Synapse answers.
        let mut found = found;
        found.reverse();
        self.rooms.pdus(&found).await
    }

    /// `/backfill`: events from `from` backwards (they included), at most `limit`.
    pub async fn backfill(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        from: &[OwnedEventId],
        limit: usize,
    ) -> Result<Vec<Box<RawValue>>> {
        self.check_server_in_room(origin, room_id).await?;
        let start: Vec<String> = from.iter().map(ToString::to_string).collect();
        let mut ids: Vec<String> = start.clone();
        let limit = limit.min(MAX_EVENTS);
        ids.extend(self.walk_back(room_id, &start, &HashSet::new(), limit, 0).await?);
        ids.dedup();
        ids.truncate(limit);
        // Only events of this room.
        let events = self.rooms.events_shared(&ids).await?;
        let ids: Vec<String> =
            events.iter().filter(|e| e.row.room_id == room_id.as_str()).map(|e| e.row.event_id.clone()).collect();
        self.rooms.pdus(&ids).await
    }

    /// Breadth-first over prev events from `start` (not included), skipping `stop`.
    async fn walk_back(
        &self,
        room_id: &RoomId,
        start: &[String],
        stop: &HashSet<String>,
        limit: usize,
        min_depth: i64,
    ) -> Result<Vec<String>> {
        let mut seen: HashSet<String> = start.iter().cloned().collect();
        let mut queue: VecDeque<String> = start.iter().cloned().collect();
        let mut out = Vec::new();
        while !queue.is_empty() && out.len() < limit {
            let batch: Vec<String> = queue.drain(..).collect();
            let mut next = Vec::new();
            for (_, prev) in self.rooms.prev_events(&batch).await? {
                if stop.contains(&prev) || !seen.insert(prev.clone()) {
                    continue;
                }
                next.push(prev);
            }
            for e in self.rooms.events_shared(&next).await? {
                let depth = match e.json().get("depth") {
                    Some(CanonicalJsonValue::Integer(d)) => i64::from(*d),
                    _ => 0,
                };
                if e.row.room_id != room_id.as_str() || depth < min_depth {
                    continue;
                }
                if out.len() < limit {
                    out.push(e.row.event_id.clone());
                    queue.push_back(e.row.event_id.clone());
                }
            }
        }
        Ok(out)
    }
}
