//! History from before this server was in a room (spec: server-server API, "Backfilling and
//! retrieving missing events"): events another server answers to `/backfill` are checked and
//! placed before everything this server has, at negative stream positions, so /messages pages
//! back into them.
//!
//! Their state is not fetched: each takes the state of the room where its history here begins
//! (the state before the join), which is what visibility and member lookups for them read. That
//! is exact for rooms whose history visibility and members did not change in between, which is
//! the common case; a server that builds on such old events is checked against that state too.

use std::collections::{HashMap, HashSet};

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, RoomId, events::TimelineEventType,
    room_version_rules::RoomIdFormatVersion, state_res,
};

use super::{Rooms, content_of, relations, remote_join::event_id_of, rules_for};
use crate::{
    error::{Error, Result},
    matrix::pdu::Pdu,
    storage::{
        self,
        append::{Append, CurrentState, NewEvent},
    },
};

/// Backfills take positions below the lowest one in use; one at a time.
static BACKFILL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Rooms {
    /// The event the room's history here begins with, when its history goes on before it on
    /// other servers (its prev events are not here): where to backfill from.
    pub async fn backward_extremity(&self, room_id: &RoomId) -> Result<Option<OwnedEventId>> {
        let Some((id, _)) = storage::events::earliest_in_room(&self.db.read, room_id.as_str()).await? else {
            return Ok(None);
        };
        let prevs: Vec<String> = storage::events::prev_edges(&self.db.read, std::slice::from_ref(&id))
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if prevs.is_empty() {
            // The create event: the whole history is here.
            return Ok(None);
        }
        let here = storage::events::in_timeline(&self.db.read, &prevs).await?;
        if here.len() == prevs.len() {
            return Ok(None);
        }
        Ok(OwnedEventId::try_from(id).ok())
    }

    /// Stores backfilled events of `room_id` (signatures already checked) before the room's
    /// history here begins, newest first so positions fall with age; each is checked against
    /// its auth events (kept rejected, and never shown, when it fails or they are unknown).
    /// Events already here are left alone, except outliers (the state answered at the join),
    /// which take their place in the timeline. Returns how many events joined the timeline.
    pub async fn store_backfilled(
        &self,
        room_id: &RoomId,
        extremity: &EventId,
        events: Vec<CanonicalJsonObject>,
    ) -> Result<usize> {
        let room = self.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&room.room_version)?;
        let mut batch: HashMap<OwnedEventId, (CanonicalJsonObject, Pdu)> = HashMap::new();
        for json in events {
            if state_res::check_pdu_format(&json, &rules.event_format).is_err() {
                continue;
            }
            let Some(id) = event_id_of(&json, &rules) else { continue };
            // A v12 create event names no room: the room's ID is made from its ID.
            let in_room = match json.get("room_id") {
                Some(CanonicalJsonValue::String(r)) => r == room_id.as_str(),
                None => {
                    rules.room_id_format == RoomIdFormatVersion::V2
                        && room_id.as_str().strip_prefix('!') == id.as_str().strip_prefix('$')
                }
                _ => false,
            };
            if !in_room {
                continue;
            }
            let Ok(pdu) = Pdu::from_json(&json, id.clone(), room_id.to_owned(), &rules) else { continue };
            if pdu.kind == TimelineEventType::RoomCreate && !pdu.prev_events.is_empty() {
                continue;
            }
            batch.insert(id, (json, pdu));
        }
        let ids: Vec<String> = batch.keys().map(ToString::to_string).collect();
        let stored = self.known_events(&ids).await?;
        let in_timeline: HashSet<String> =
            storage::events::in_timeline(&self.db.read, &ids).await?.into_iter().collect();

        // The auth events the batch names that are stored here.
        let known = self
            .stored_auth_events(
                room_id,
                &rules,
                batch.values().flat_map(|(_, p)| p.auth_events.iter()).filter(|id| !batch.contains_key(*id)),
            )
            .await?;
        let create = self.create_pdu(room_id, &rules).await?;

        let state_group = match storage::events::state_before_group(&self.db.read, extremity.as_str()).await? {
            Some(g) => Some(g),
            None => storage::events::get(&self.db.read, extremity.as_str()).await?.and_then(|r| r.state_group),
        };
        let mut order: Vec<&OwnedEventId> = batch.keys().collect();
        order.sort_by_key(|id| (std::cmp::Reverse(batch[*id].1.depth), (*id).clone()));
        // Positions below the lowest one: one backfill at a time, whatever the room.
        let _one_at_a_time = BACKFILL.lock().await;
        let mut position = storage::events::lowest_stream(&self.db.write).await?;
        let mut appends = Vec::new();
        let mut placed_outliers = Vec::new();
        // Oldest last: an event's auth events, older, are checked after it in this order, so
        // the checks look things up in the whole batch and what is stored.
        let lookup = |id: &EventId| batch.get(id).map(|(_, p)| p).or_else(|| known.get(id));
        for id in order {
            if in_timeline.contains(id.as_str()) {
                continue;
            }
            let (json, pdu) = &batch[id];
            position -= 1;
            if stored.contains(id.as_str()) {
                placed_outliers.push((id.to_string(), position));
                continue;
            }
            let rejected = pdu.auth_events.iter().any(|a| lookup(a).is_none())
                || super::remote_join::check_against_auth_events(&rules, pdu, lookup, create.as_ref()).is_err();
            let content = content_of(json);
            let searchable =
                if rejected { None } else { super::queries::searchable_text(&pdu.kind.to_string(), &content) };
            appends.push(Append {
                new_room: None,
                event: NewEvent {
                    event_id: id.to_string(),
                    room_id: room_id.to_string(),
                    event_type: pdu.kind.to_string(),
                    state_key: pdu.state_key.clone(),
                    sender: pdu.sender.to_string(),
                    origin_server_ts: i64::from(pdu.origin_server_ts.0),
                    depth: pdu.depth as i64,
                    pdu: serde_json::to_string(json).map_err(Error::internal)?,
                    rejected,
                    soft_failed: false,
                    outlier: false,
                    state_group,
                    resolved_state_group: None,
                    extremity: false,
                    txn: None,
                    prev_events: pdu.prev_events.iter().map(ToString::to_string).collect(),
                    auth_events: pdu.auth_events.iter().map(ToString::to_string).collect(),
                    state_before_group: None,
                    stream_ordering: Some(position),
                    relay: false,
                },
                outliers: Vec::new(),
                reset_extremities: false,
                state_groups: Vec::new(),
                current: CurrentState::Unchanged,
                memberships: Vec::new(),
                search: searchable.map(str::to_owned),
                relation: relations::relation_of(&content)
                    .filter(|_| !rejected)
                    .map(|(p, r)| (p.to_owned(), r.to_owned())),
                push: Default::default(),
            });
        }
        let count = appends.len() + placed_outliers.len();
        if count == 0 {
            return Ok(0);
        }
        let mut conn = self.db.write.acquire().await?;
        for (id, position) in &placed_outliers {
            storage::events::place_outlier(&mut *conn, id, *position, state_group).await?;
        }
        if !appends.is_empty() {
            let refs: Vec<&Append> = appends.iter().collect();
            storage::append::append_all(&mut conn, &refs).await?;
        }
        drop(conn);
        // Redactions in the history apply to what they redact; redactions that arrived before
        // these events apply to them now.
        let redactions = appends
            .iter()
            .filter(|a| !a.event.rejected && a.event.event_type == "m.room.redaction")
            .filter_map(|a| EventId::parse(&a.event.event_id).ok());
        for redaction_id in redactions {
            self.apply_received_redaction(room_id, &redaction_id).await?;
        }
        let arrived: Vec<String> = appends
            .iter()
            .map(|a| a.event.event_id.clone())
            .chain(placed_outliers.iter().map(|(id, _)| id.clone()))
            .collect();
        self.apply_pending_redactions(&arrived).await?;
        tracing::info!(%room_id, count, "backfilled history from another server");
        Ok(count)
    }
}
