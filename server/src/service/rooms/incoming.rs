//! Events built by other servers: the spec's checks on receipt of a PDU (server-server API,
//! "Checks performed on receipt of a PDU"), the state before such an event resolved from the
//! states at its prev_events (state resolution v2, and v2.1 in v12 rooms, by ruma), and what a
//! failed check means: a rejected event is stored but never part of state, a soft-failed one is
//! stored but never shown and never built on.
//!
//! Federation adds the transport on top: fetching the signing keys this takes as an argument,
//! and fetching missing prev and auth events (until then an event whose graph is not known here
//! is refused).
//!
//! A room's local events stay on one line (each names the room's forward extremities), so a
//! fork only appears when a remote event builds on an older point. The room's current state is
//! then the resolution of the states at all forward extremities, written as its own state
//! group; the next local event names every extremity and so merges the fork.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use http::StatusCode;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, OwnedRoomId, RoomId,
    api::error::ErrorKind,
    events::{StateEventType, TimelineEventType},
    room_version_rules::{EventIdFormatVersion, RoomVersionRules},
    signatures::{PublicKeyMap, Verified},
    state_res::{self, utils::event_id_set::EventIdSet},
};

use super::{Job, Placement, Rooms, StoredEvent, cache::StateStep, content_of, rules_for, to_pdu};
use crate::{
    error::{Error, Result},
    matrix::pdu::{self, Pdu},
    storage::{
        self,
        append::{CurrentState, MembershipChange, NewStateGroup},
        state::{GONE, MAX_CHAIN, StateMap},
    },
};

/// How the error of an event whose graph is not all here begins.
const MISSING_EVENTS: &str = "The event refers to events this server does not have";

/// Whether `receive_pdu` refused an event because it names prev or auth events this server
/// lacks (federation then fetches them and tries again).
pub fn refers_to_missing_events(e: &Error) -> bool {
    matches!(e, Error::Matrix { message, .. } if message.starts_with(MISSING_EVENTS))
}

/// Received events handed to the writer whose commit nobody has waited for yet (see
/// `Rooms::receive_pdu_deferred`), and those whose write failed.
#[derive(Default)]
pub struct Unsettled {
    /// The lock of the room whose events wait in `held`: nobody else builds on them until they
    /// reach the writer, so a room's events are written in the order they were built.
    guard: Option<(OwnedRoomId, tokio::sync::OwnedMutexGuard<()>)>,
    /// Events not handed to the writer yet, in order: given to it together, they are written
    /// in one commit.
    held: Vec<Job>,
    /// Where `held` goes if this is dropped before it is settled (a request cancelled midway):
    /// the room's hot copy already counts those events.
    writer: Option<tokio::sync::mpsc::UnboundedSender<super::writer::Msg>>,
    pending: Vec<super::Pending>,
    /// Events that were answered for but could not be stored, with why.
    pub failed: Vec<(OwnedEventId, String)>,
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        if let Some(writer) = &self.writer {
            for job in self.held.drain(..) {
                let _ = writer.send(job.into());
            }
        }
    }
}

/// Whether `prev_ids` are exactly the room's forward extremities.
fn extends(prev_ids: &[String], extremities: &[(String, i64)]) -> bool {
    prev_ids.len() == extremities.len() && extremities.iter().all(|(id, _)| prev_ids.contains(id))
}

/// What became of a received event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Part of the room: in its state (if a state event) and timeline.
    Accepted,
    /// Passes the auth rules at its place in the graph but not against the room's current
    /// state: kept for the graph, never shown (spec: "Soft failure").
    SoftFailed(String),
    /// Fails the auth rules of its auth events or of the state before it: kept, never part of
    /// any state, never shown.
    Rejected(String),
    /// Already stored; nothing changed.
    Duplicate,
}

impl Rooms {
    /// Receives `json`, an event of `room_id` built and signed by another server, verified with
    /// `keys` (the signing keys of the servers that must have signed it).
    pub async fn receive_pdu(
        &self,
        room_id: &RoomId,
        json: CanonicalJsonObject,
        keys: &PublicKeyMap,
    ) -> Result<(OwnedEventId, Received)> {
        self.receive_pdu_at(room_id, json, keys, None, false, None).await
    }

    /// As `receive_pdu`, without waiting for the event to be on disk when it simply extends
    /// the room (its prev events are the room's forward extremities, the usual case of a busy
    /// room): it joins `unsettled`, so the events of one transaction are written in one commit.
    /// Until `settle` says otherwise its outcome is provisional: a failed write fails it.
    pub async fn receive_pdu_deferred(
        &self,
        room_id: &RoomId,
        json: CanonicalJsonObject,
        keys: &PublicKeyMap,
        unsettled: &mut Unsettled,
    ) -> Result<(OwnedEventId, Received)> {
        self.receive_pdu_at(room_id, json, keys, None, false, Some(unsettled)).await
    }

    /// Waits until the events in `unsettled` are on disk, and lets go of the room lock it held;
    /// events whose write failed are moved to its failures.
    pub async fn settle(&self, unsettled: &mut Unsettled) {
        self.flush(unsettled).await;
        unsettled.guard = None;
    }

    /// As `settle`, keeping the room lock.
    async fn flush(&self, unsettled: &mut Unsettled) {
        for job in unsettled.held.drain(..) {
            // A writer that stopped drops the job, and so fails it below.
            let _ = self.writer.send(job.into());
        }
        for p in std::mem::take(&mut unsettled.pending) {
            let event_id = p.event_id.clone();
            if let Err(e) = self.complete(p).await {
                unsettled.failed.push((event_id, e.message()));
            }
        }
    }

    /// As `receive_pdu`, for another server's user's membership event handed to this server
    /// (`send_join`, `send_leave`, `send_knock`): once accepted, it is sent on to the room's
    /// other servers.
    pub async fn receive_pdu_to_relay(
        &self,
        room_id: &RoomId,
        json: CanonicalJsonObject,
        keys: &PublicKeyMap,
    ) -> Result<(OwnedEventId, Received)> {
        self.receive_pdu_at(room_id, json, keys, None, true, None).await
    }

    /// As `receive_pdu`, for an event whose prev events are not here and could not be fetched:
    /// `state_before` (event IDs, all stored, as outliers at least) is the state before it, as
    /// a server in the room answered (`/state_ids`). It is kept with the event.
    pub async fn receive_pdu_with_state(
        &self,
        room_id: &RoomId,
        json: CanonicalJsonObject,
        keys: &PublicKeyMap,
        state_before: StateMap,
    ) -> Result<(OwnedEventId, Received)> {
        self.receive_pdu_at(room_id, json, keys, Some(state_before), false, None).await
    }

    async fn receive_pdu_at(
        &self,
        room_id: &RoomId,
        json: CanonicalJsonObject,
        keys: &PublicKeyMap,
        given_before: Option<StateMap>,
        relay: bool,
        mut unsettled: Option<&mut Unsettled>,
    ) -> Result<(OwnedEventId, Received)> {
        let version = self.room_version(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&version)?;

        // 1. A valid event of the room's version, else dropped.
        state_res::check_pdu_format(&json, &rules.event_format)
            .map_err(|e| Error::bad_json(format!("Invalid event: {e}")))?;
        if json.get("room_id") != Some(&CanonicalJsonValue::String(room_id.to_string())) {
            return Err(Error::bad_json("The event belongs to another room"));
        }
        let event_id = match rules.event_id_format {
            EventIdFormatVersion::V1 => match json.get("event_id") {
                Some(CanonicalJsonValue::String(id)) => {
                    EventId::parse(id).map_err(|e| Error::bad_json(format!("event_id: {e}")))?
                }
                _ => return Err(Error::bad_json("The event has no event_id")),
            },
            _ => pdu::event_id_for(&json, &rules).map_err(|e| Error::bad_json(e.0))?,
        };

        // 2. Signatures, else dropped; 3. the content hash, else redacted and processed.
        let json = match ruma::signatures::verify_event(keys, &json, &rules) {
            Ok(Verified::All) => json,
            Ok(Verified::Signatures) => {
                tracing::info!(%event_id, "content hash mismatch: the event is kept redacted");
                ruma::canonical_json::redact(json, &rules.redaction, None)
                    .map_err(|e| Error::bad_json(e.to_string()))?
            }
            Err(e) => return Err(Error::forbidden(format!("The event's signatures do not verify: {e}"))),
        };
        let incoming =
            Pdu::from_json(&json, event_id.clone(), room_id.to_owned(), &rules).map_err(|e| Error::bad_json(e.0))?;
        if incoming.kind == TimelineEventType::RoomCreate {
            return Err(Error::bad_json("The room already has its create event"));
        }
        // Only a create event may start the graph; every other event follows at least one.
        if incoming.prev_events.is_empty() {
            return Err(Error::bad_json("The event has no prev_events"));
        }

        // A batch keeps the lock of the room its held events belong to; another room's events
        // are written first, so a batch never holds two rooms' locks.
        let guard = match unsettled.as_deref_mut() {
            Some(u) => match u.guard.take() {
                Some((held_room, guard)) if held_room == room_id => guard,
                other => {
                    u.guard = other;
                    self.settle(u).await;
                    self.lock_for(room_id).lock_owned().await
                }
            },
            None => self.lock_for(room_id).lock_owned().await,
        };
        let result = self
            .receive_locked(room_id, &rules, event_id, json, incoming, given_before, relay, unsettled.as_deref_mut())
            .await;
        if let Some(u) = unsettled {
            u.guard = Some((room_id.to_owned(), guard));
        }
        result
    }

    /// `receive_pdu_at` once the event is well formed and signed, under the room's lock.
    #[allow(clippy::too_many_arguments)]
    async fn receive_locked(
        &self,
        room_id: &RoomId,
        rules: &RoomVersionRules,
        event_id: OwnedEventId,
        json: CanonicalJsonObject,
        mut incoming: Pdu,
        given_before: Option<StateMap>,
        relay: bool,
        mut unsettled: Option<&mut Unsettled>,
    ) -> Result<(OwnedEventId, Received)> {
        // An event handed to the writer is in the cache until its write fails.
        if self.shared.cache.get(event_id.as_str()).is_some()
            || storage::events::get(&self.db.write, event_id.as_str()).await?.is_some()
        {
            return Ok((event_id, Received::Duplicate));
        }
        let prev_ids: Vec<String> = incoming.prev_events.iter().map(ToString::to_string).collect();
        let auth_ids: Vec<String> = incoming.auth_events.iter().map(ToString::to_string).collect();
        let mut hot = self.hot_locked(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        // Linear: the event follows exactly the room's forward extremities, so the state before
        // it is the room's current state, already in the hot copy (and possibly not on disk
        // yet). Anything else reads the graph from the database, so what is pending is
        // written first.
        let linear = given_before.is_none() && extends(&prev_ids, &hot.extremities);
        if !linear && let Some(u) = unsettled.as_deref_mut().filter(|u| !u.pending.is_empty() || !u.held.is_empty()) {
            self.flush(u).await;
            hot = self.hot_locked(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        }
        let create_id = hot
            .state_id("m.room.create", "")
            .cloned()
            .ok_or_else(|| Error::not_found("This server is not in the room"))?;

        // The graph around the event must be here (federation fetches what is missing first).
        let points: HashMap<String, (Option<i64>, bool)> = if linear {
            HashMap::new()
        } else {
            storage::events::graph_points(&self.db.write, &prev_ids)
                .await?
                .into_iter()
                .map(|(id, g, rejected)| (id, (g, rejected)))
                .collect()
        };
        let mut wanted = auth_ids.clone();
        wanted.push(create_id.clone());
        let auth_events = self.events_shared(&wanted).await?;
        // A prev event stored only as an outlier has no known state after it: as good as missing.
        let missing: Vec<&String> = prev_ids
            .iter()
            .filter(|_| given_before.is_none() && !linear)
            .filter(|id| !points.get(*id).is_some_and(|(group, _)| group.is_some()))
            .chain(auth_ids.iter().filter(|id| !auth_events.iter().any(|e| e.row.event_id == **id)))
            .collect();
        if !missing.is_empty() {
            return Err(Error::matrix(
                StatusCode::BAD_REQUEST,
                ErrorKind::Unknown,
                format!("{MISSING_EVENTS}: {missing:?}"),
            ));
        }

        // 4. The auth rules, with the event's own auth events as the state.
        let auth_pdus: HashMap<String, Pdu> = auth_events
            .iter()
            .filter(|e| e.row.room_id == room_id.as_str())
            .map(|e| to_pdu(e, room_id, rules).map(|p| (e.row.event_id.clone(), p)))
            .collect::<Result<_>>()?;
        let mut verdict =
            state_res::check_state_independent_auth_rules(&rules.authorization, &incoming, |id: &EventId| {
                auth_pdus.get(id.as_str()).cloned()
            });
        if verdict.is_ok() {
            let by_key: HashMap<(String, String), &Pdu> = auth_pdus
                .values()
                .filter(|p| auth_ids.contains(&p.event_id.to_string()) || p.event_id.as_str() == create_id)
                .filter_map(|p| p.state_key.as_ref().map(|k| ((p.kind.to_string(), k.clone()), p)))
                .collect();
            verdict = state_res::check_state_dependent_auth_rules(
                &rules.authorization,
                &incoming,
                |t: &StateEventType, k: &str| by_key.get(&(t.to_string(), k.to_owned())).map(|p| (*p).clone()),
            );
        }

        // 5. The state before the event: the state after its prev event, or the resolution of
        // the states after each (a rejected prev event's state is the state before it, which
        // is what is stored for it).
        let given = given_before.is_some();
        let mut base_groups = Vec::new();
        let (before, before_group): (Arc<StateMap>, Option<i64>) = match given_before {
            Some(state) => (Arc::new(state), None),
            None if linear => (hot.state.clone(), hot.room.current_state_group),
            None => {
                for id in &prev_ids {
                    base_groups.push(points[id].0);
                }
                let before_states = self.states_of(&base_groups).await?;
                if base_groups.iter().all(|g| *g == base_groups[0]) {
                    (before_states[0].clone(), base_groups[0])
                } else {
                    (Arc::new(self.resolve(rules, room_id, &before_states, None).await?), None)
                }
            }
        };
        if verdict.is_ok() {
            verdict = self.check_against(rules, room_id, &incoming, &before).await?;
        }
        let rejected = verdict.as_ref().err().cloned();
        incoming.rejected = rejected.is_some();

        // New state groups: the state before (when resolved), the state after (for an accepted
        // state event), and the room's new current state (when resolution changed it).
        let mut groups: Vec<NewStateGroup> = Vec::new();
        let base = base_groups.iter().flatten().next().copied();
        let before_group = match before_group {
            Some(g) => Some(g),
            None => Some(self.new_group(&mut groups, &before, base).await?),
        };
        let mut after = before.clone();
        let mut after_group = before_group;
        if let (Some(k), None) = (&incoming.state_key, &rejected) {
            Arc::make_mut(&mut after).insert((incoming.kind.to_string(), k.clone()), event_id.to_string());
            // On the linear path the state before may be a group not written yet.
            let known = linear.then(|| (hot.chain_len, hot.state.clone()));
            after_group = Some(self.new_group_on(&mut groups, &after, before_group, known).await?);
        }

        // 6. The auth rules against the room's current state, else soft-failed (on the linear
        // path that state is the state before, just checked).
        let soft_failed = match rejected {
            Some(_) => None,
            None if linear => None,
            None => self.check_against(rules, room_id, &incoming, &hot.state).await?.err(),
        };

        let mut placement = Placement {
            rejected: rejected.is_some(),
            soft_failed: soft_failed.is_some(),
            state_groups: Vec::new(),
            state_group: if rejected.is_some() { before_group } else { after_group },
            resolved_state_group: None,
            current: CurrentState::Unchanged,
            memberships: Vec::new(),
            state_before_group: if given { before_group } else { None },
            relay,
            ..Default::default()
        };
        if rejected.is_none() && soft_failed.is_none() {
            // The room's state is the resolution of the states at its forward extremities.
            let mut others: Vec<String> =
                hot.extremities.iter().map(|(id, _)| id.clone()).filter(|id| !prev_ids.contains(id)).collect();
            others.sort();
            let current = if others.is_empty() {
                after.clone()
            } else {
                let other_groups: Vec<Option<i64>> = storage::events::graph_points(&self.db.write, &others)
                    .await?
                    .into_iter()
                    .map(|(_, g, _)| g)
                    .collect();
                let mut states = self.states_of(&other_groups).await?;
                states.push(after.clone());
                Arc::new(self.resolve(rules, room_id, &states, Some(&incoming)).await?)
            };
            let current_group = if *current == *after {
                after_group
            } else {
                let g = self.new_group(&mut groups, &current, after_group).await?;
                placement.resolved_state_group = Some(g);
                Some(g)
            };
            let mut changes: Vec<(String, String, Option<String>)> = Vec::new();
            for (key, id) in current.iter() {
                if hot.state.get(key) != Some(id) {
                    changes.push((key.0.clone(), key.1.clone(), Some(id.clone())));
                }
            }
            for key in hot.state.keys() {
                if !current.contains_key(key) {
                    changes.push((key.0.clone(), key.1.clone(), None));
                }
            }
            // Memberships that changed: the membership of the member event now in state.
            let member_changes: Vec<&(String, String, Option<String>)> =
                changes.iter().filter(|c| c.0 == "m.room.member").collect();
            let member_ids: Vec<String> = member_changes.iter().filter_map(|c| c.2.clone()).collect();
            let members: HashMap<String, Arc<StoredEvent>> =
                self.events_shared(&member_ids).await?.into_iter().map(|e| (e.row.event_id.clone(), e)).collect();
            for (_, user, id) in member_changes {
                let (membership, member_event) = match id {
                    Some(id) if id == event_id.as_str() => {
                        (incoming.content_value()["membership"].as_str().unwrap_or("leave").to_owned(), id.clone())
                    }
                    Some(id) => match members.get(id) {
                        Some(e) => {
                            (content_of(e.json())["membership"].as_str().unwrap_or("leave").to_owned(), id.clone())
                        }
                        None => continue,
                    },
                    // Resolution dropped the member event: the user is no longer in the room.
                    None => match hot.state_id("m.room.member", user) {
                        Some(old) => ("leave".to_owned(), old.clone()),
                        None => continue,
                    },
                };
                placement.memberships.push(MembershipChange {
                    user_id: user.clone(),
                    membership,
                    event_id: member_event,
                });
            }
            if let Some(group) = current_group {
                placement.current = CurrentState::Replace { group, changes };
            }
        }
        let outcome = match (&rejected, &soft_failed) {
            (Some(why), _) => Received::Rejected(why.clone()),
            (None, Some(why)) => Received::SoftFailed(why.clone()),
            (None, None) => Received::Accepted,
        };
        // What the hot copy becomes once this event is in (the linear path only).
        let next = (linear && outcome == Received::Accepted).then(|| {
            let content = incoming.content_value();
            let kind = incoming.kind.to_string();
            let step = match (incoming.state_key.as_deref(), after_group) {
                (Some(k), Some(group)) => Some(StateStep {
                    kind: &kind,
                    state_key: k,
                    group,
                    chain_len: groups.iter().find(|g| g.id == group).map_or(hot.chain_len, |g| g.chain_len),
                    member: (incoming.kind == TimelineEventType::RoomMember).then(|| {
                        (
                            content["membership"].as_str().unwrap_or("leave"),
                            content["displayname"].as_str().map(str::to_owned),
                        )
                    }),
                }),
                _ => None,
            };
            hot.followed_by(event_id.as_str(), incoming.depth as i64, step)
        });
        placement.state_groups = groups;
        // On the linear path with a batch, the event waits in it to be written with the others.
        let hold = match unsettled.as_deref_mut() {
            Some(u) if linear => {
                u.writer.get_or_insert_with(|| self.writer.clone());
                Some(&mut u.held)
            }
            _ => None,
        };
        let pending = self
            .store_locked_as(&hot, None, &event_id, &json, &incoming, prev_ids, auth_ids, None, Some(placement), hold)
            .await?;
        if linear {
            // A rejected or soft-failed event changes neither the state nor the extremities.
            if let Some(next) = next {
                self.shared.hot.lock().insert(room_id.to_owned(), Arc::new(next));
            }
            match unsettled {
                Some(u) => u.pending.push(pending),
                None => {
                    self.complete(pending).await?;
                }
            }
            if outcome != Received::Accepted {
                tracing::info!(%event_id, ?outcome, "received event not accepted");
            }
            return Ok((event_id, outcome));
        }
        let committed = self.complete(pending).await;
        // The hot copy did not advance with this event; the next holder of the lock reads the
        // room back from the database, which now has it.
        self.shared.hot.lock().remove(room_id);
        committed?;
        if outcome != Received::Accepted {
            tracing::info!(%event_id, ?outcome, "received event not accepted");
        }
        Ok((event_id, outcome))
    }

    /// The states of these state groups (empty for none).
    /// The room's state before `event_id` (the state after its prev events, resolved when they
    /// differ): what federation's `/state` and `/state_ids` answer.
    pub async fn state_before(&self, room_id: &RoomId, event_id: &str) -> Result<Arc<StateMap>> {
        let room = self.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&room.room_version)?;
        let prevs: Vec<String> = storage::events::prev_edges(&self.db.read, &[event_id.to_owned()])
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if let Some(stored) = self.state_before_stored(event_id).await? {
            return Ok(stored);
        }
        if prevs.is_empty() {
            // The create event: nothing before it.
            return Ok(Arc::default());
        }
        let groups: Vec<Option<i64>> =
            storage::events::graph_points(&self.db.read, &prevs).await?.into_iter().map(|(_, g, _)| g).collect();
        // A prev event that is not here, or only as an outlier, has no known state after it.
        if groups.len() < prevs.len() || groups.iter().any(Option::is_none) {
            return Err(Error::not_found("The state at this event is not known here"));
        }
        let states = self.states_of(&groups).await?;
        if states.iter().all(|s| *s == states[0]) {
            return Ok(states[0].clone());
        }
        Ok(Arc::new(self.resolve(&rules, room_id, &states, None).await?))
    }

    async fn states_of(&self, groups: &[Option<i64>]) -> Result<Vec<Arc<StateMap>>> {
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            out.push(match g {
                Some(g) => self.state_of_group(*g).await?,
                None => Default::default(),
            });
        }
        Ok(out)
    }

    /// Whether `event` passes the state-dependent auth rules with `state` as the room's state.
    async fn check_against(
        &self,
        rules: &RoomVersionRules,
        room_id: &RoomId,
        event: &Pdu,
        state: &StateMap,
    ) -> Result<std::result::Result<(), String>> {
        let keys = state_res::auth_types_for_event(
            &event.kind,
            &event.sender,
            event.state_key.as_deref(),
            &event.content,
            &rules.authorization,
        )
        .map_err(|e| Error::bad_json(format!("Invalid event: {e}")))?;
        let mut ids: HashMap<(String, String), String> = HashMap::new();
        for (t, k) in
            keys.iter().map(|(t, k)| (t.to_string(), k.clone())).chain([("m.room.create".to_owned(), String::new())])
        {
            if let Some(id) = state.get(&(t.clone(), k.clone())) {
                ids.insert((t, k), id.clone());
            }
        }
        let wanted: Vec<String> = ids.values().cloned().collect();
        let loaded: HashMap<String, Pdu> = self
            .events_shared(&wanted)
            .await?
            .iter()
            .map(|e| to_pdu(e, room_id, rules).map(|p| (e.row.event_id.clone(), p)))
            .collect::<Result<_>>()?;
        let by_key: HashMap<(String, String), &Pdu> =
            ids.into_iter().filter_map(|(k, id)| loaded.get(&id).map(|p| (k, p))).collect();
        Ok(state_res::check_state_dependent_auth_rules(&rules.authorization, event, |t: &StateEventType, k: &str| {
            by_key.get(&(t.to_string(), k.to_owned())).map(|p| (*p).clone())
        }))
    }

    /// Adds a state group for `state` to `groups` (a delta on `base` when there is one and its
    /// chain is short, else a full snapshot) and returns its ID.
    pub(super) async fn new_group(
        &self,
        groups: &mut Vec<NewStateGroup>,
        state: &StateMap,
        base: Option<i64>,
    ) -> Result<i64> {
        self.new_group_on(groups, state, base, None).await
    }

    /// As `new_group`, with the chain length and state of `base` given by the caller when it
    /// knows them (a group of the hot copy that may not be written yet).
    async fn new_group_on(
        &self,
        groups: &mut Vec<NewStateGroup>,
        state: &StateMap,
        base: Option<i64>,
        known: Option<(i64, Arc<StateMap>)>,
    ) -> Result<i64> {
        let id = self.last_state_group.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1;
        let base_chain = match base {
            Some(_) if known.is_some() => known,
            // A group written in this same batch is not in the database yet.
            Some(b) => match groups.iter().find(|g| g.id == b) {
                Some(g) => Some((g.chain_len, Arc::new(self.group_state(groups, b).await?))),
                None => Some((storage::state::chain_len(&self.db.write, b).await?, self.state_of_group(b).await?)),
            },
            None => None,
        };
        let group = match base_chain {
            Some((chain_len, base_state)) if chain_len + 1 < MAX_CHAIN => {
                let mut entries: Vec<(String, String, String)> = state
                    .iter()
                    .filter(|(k, id)| base_state.get(*k) != Some(*id))
                    .map(|((t, k), id)| (t.clone(), k.clone(), id.clone()))
                    .collect();
                entries.extend(
                    base_state
                        .keys()
                        .filter(|k| !state.contains_key(*k))
                        .map(|(t, k)| (t.clone(), k.clone(), GONE.to_owned())),
                );
                NewStateGroup { id, prev: base, chain_len: chain_len + 1, entries }
            }
            _ => NewStateGroup {
                id,
                prev: None,
                chain_len: 0,
                entries: state.iter().map(|((t, k), id)| (t.clone(), k.clone(), id.clone())).collect(),
            },
        };
        groups.push(group);
        Ok(id)
    }

    /// The state of a group that may still be among `pending` (not yet written).
    async fn group_state(&self, pending: &[NewStateGroup], group: i64) -> Result<StateMap> {
        let Some(g) = pending.iter().find(|g| g.id == group) else {
            return Ok((*self.state_of_group(group).await?).clone());
        };
        let mut state = match g.prev {
            Some(p) => Box::pin(self.group_state(pending, p)).await?,
            None => StateMap::default(),
        };
        for (t, k, id) in &g.entries {
            if id == GONE {
                state.remove(&(t.clone(), k.clone()));
            } else {
                state.insert((t.clone(), k.clone()), id.clone());
            }
        }
        Ok(state)
    }

    /// State resolution of `states` by the room version's algorithm (ruma's implementation).
    /// `incoming` is the event being received, which `states` may hold but the database does
    /// not yet.
    async fn resolve(
        &self,
        rules: &RoomVersionRules,
        room_id: &RoomId,
        states: &[Arc<StateMap>],
        incoming: Option<&Pdu>,
    ) -> Result<StateMap> {
        let Some(v2) = rules.state_res.v2_rules() else {
            return self.resolve_v1(rules, room_id, states, incoming).await;
        };
        // The auth graph above every state event: the auth chains, the auth difference and
        // (v2.1) the conflicted state subgraph all live in it.
        let seeds: Vec<String> =
            states.iter().flat_map(|s| s.values().cloned()).collect::<HashSet<_>>().into_iter().collect();
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        let mut edges = storage::events::auth_graph(&self.db.write, &seeds).await?;
        if let Some(e) = incoming {
            let ids: Vec<String> = e.auth_events.iter().map(ToString::to_string).collect();
            edges.extend(storage::events::auth_graph(&self.db.write, &ids).await?);
            edges.extend(ids.into_iter().map(|p| (e.event_id.to_string(), p)));
        }
        for (child, parent) in edges {
            parents.entry(child).or_default().push(parent);
        }
        let mut all: HashSet<String> = seeds.iter().cloned().collect();
        all.extend(parents.values().flatten().cloned());
        let ids: Vec<String> = all.into_iter().collect();
        let mut pdus: HashMap<OwnedEventId, Pdu> = self
            .events_shared(&ids)
            .await?
            .iter()
            .filter(|e| e.row.room_id == room_id.as_str())
            .map(|e| to_pdu(e, room_id, rules).map(|p| (p.event_id.clone(), p)))
            .collect::<Result<_>>()?;
        if let Some(e) = incoming {
            pdus.insert(e.event_id.clone(), e.clone());
        }

        let auth_chains: Vec<EventIdSet<OwnedEventId>> = states
            .iter()
            .map(|s| ancestors(&parents, s.values()).into_iter().filter_map(|id| EventId::parse(id).ok()).collect())
            .collect();
        let maps: Vec<state_res::StateMap<OwnedEventId>> = states
            .iter()
            .map(|s| {
                s.iter()
                    .filter_map(|((t, k), id)| {
                        EventId::parse(id).ok().map(|id| ((StateEventType::from(t.as_str()), k.clone()), id))
                    })
                    .collect()
            })
            .collect();
        let resolved = state_res::resolve(
            &rules.authorization,
            v2,
            maps.iter(),
            auth_chains,
            |id: &EventId| pdus.get(id).cloned(),
            |conflicted: &state_res::StateMap<Vec<OwnedEventId>>| {
                let set: HashSet<String> = conflicted.values().flatten().map(ToString::to_string).collect();
                Some(conflicted_subgraph(&parents, &set).into_iter().filter_map(|id| EventId::parse(id).ok()).collect())
            },
        )
        .map_err(|e| Error::internal(format!("state resolution failed: {e}")))?;
        Ok(resolved.into_iter().map(|((t, k), id)| ((t.to_string(), k), id.to_string())).collect())
    }
}

impl Rooms {
    /// State resolution of room version 1 (`resolve_v1`), with the events it needs read here:
    /// the conflicted ones and the unconflicted state's events at their auth keys.
    async fn resolve_v1(
        &self,
        rules: &RoomVersionRules,
        room_id: &RoomId,
        states: &[Arc<StateMap>],
        incoming: Option<&Pdu>,
    ) -> Result<StateMap> {
        let states: Vec<&StateMap> = states.iter().map(|s| s.as_ref()).collect();
        let (unconflicted, conflicted) = resolve_v1::separate(&states);
        let ids: Vec<String> = conflicted.values().flatten().cloned().collect();
        let mut events = self.pdus_of(rules, room_id, &ids).await?;
        if let Some(e) = incoming.filter(|e| ids.iter().any(|id| id == e.event_id.as_str())) {
            events.insert(e.event_id.to_string(), e.clone());
        }
        let auth_ids: Vec<String> = events
            .values()
            .flat_map(|e| resolve_v1::auth_keys(&rules.authorization, e))
            .filter_map(|key| unconflicted.get(&key).cloned())
            .filter(|id| !events.contains_key(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        events.extend(self.pdus_of(rules, room_id, &auth_ids).await?);
        Ok(resolve_v1::resolve(&rules.authorization, &states, &events))
    }

    /// These events of the room, parsed, by ID (unknown ones left out).
    async fn pdus_of(
        &self,
        rules: &RoomVersionRules,
        room_id: &RoomId,
        ids: &[String],
    ) -> Result<HashMap<String, Pdu>> {
        self.events_shared(ids)
            .await?
            .iter()
            .filter(|e| e.row.room_id == room_id.as_str())
            .map(|e| to_pdu(e, room_id, rules).map(|p| (e.row.event_id.clone(), p)))
            .collect()
    }
}

/// Every event reachable from `from` through `auth_events` (not `from` itself unless reached).
fn ancestors<'a>(
    parents: &HashMap<String, Vec<String>>,
    from: impl IntoIterator<Item = &'a String>,
) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut stack: Vec<&String> = from.into_iter().flat_map(|id| parents.get(id).into_iter().flatten()).collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id.clone()) {
            stack.extend(parents.get(id).into_iter().flatten());
        }
    }
    seen
}

/// The conflicted state subgraph (room version 12): the events on `auth_events` paths from one
/// conflicted event to another, endpoints included.
fn conflicted_subgraph(parents: &HashMap<String, Vec<String>>, conflicted: &HashSet<String>) -> HashSet<String> {
    // Whether an event reaches a conflicted event through at least one edge, memoised.
    fn reaches(
        id: &str,
        parents: &HashMap<String, Vec<String>>,
        conflicted: &HashSet<String>,
        memo: &mut HashMap<String, bool>,
    ) -> bool {
        if let Some(r) = memo.get(id) {
            return *r;
        }
        // Cycles cannot occur in a valid auth graph; guard anyway.
        memo.insert(id.to_owned(), false);
        let r = parents
            .get(id)
            .into_iter()
            .flatten()
            .any(|p| conflicted.contains(p) || reaches(p, parents, conflicted, memo));
        memo.insert(id.to_owned(), r);
        r
    }
    let mut memo = HashMap::new();
    // Every event below a conflicted event was reached from one; it is on a path if it leads
    // to one too. (The conflicted events themselves are in the full conflicted set anyway.)
    let mut below: HashSet<String> = ancestors(parents, conflicted.iter());
    below.retain(|id| reaches(id, parents, conflicted, &mut memo));
    below.extend(conflicted.iter().cloned());
    below
}

mod resolve_v1;
#[cfg(test)]
mod tests;
