//! Joining a room hosted on another server: what that server answered to `send_join` (the
//! room's state before the join and the auth chain of it, signatures already checked by
//! federation) is checked against the auth rules and stored: the state and auth chain as
//! outliers, the join as the room's first event here, with the answered state before it.
//!
//! Spec: server-server API, "Joining Rooms" (the joining server "MUST validate the state and
//! auth chain", "Checks performed on receipt of a PDU"); Synapse does the same in
//! `FederationEventHandler.process_remote_join`.

use std::collections::{HashMap, HashSet, VecDeque};

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, OwnedRoomId, RoomId, RoomVersionId,
    events::{StateEventType, TimelineEventType},
    room_version_rules::{EventIdFormatVersion, RoomIdFormatVersion, RoomVersionRules},
    state_res,
};

use super::{Placement, Rooms, cache::RoomHot, content_of};
use crate::{
    error::{Error, Result},
    matrix::pdu::{self, Pdu},
    storage::{
        self,
        append::{CurrentState, MembershipChange, NewOutlier},
        state::StateMap,
    },
};

/// What `send_join` brought, each event's signatures verified (an event whose content hash did
/// not match comes redacted, as the spec says).
pub struct RemoteJoin {
    pub room_id: OwnedRoomId,
    pub version: RoomVersionId,
    pub join_id: OwnedEventId,
    pub join: CanonicalJsonObject,
    pub state: Vec<CanonicalJsonObject>,
    pub auth_chain: Vec<CanonicalJsonObject>,
}

/// An event of the answer, parsed.
struct Checked {
    json: CanonicalJsonObject,
    pdu: Pdu,
    rejected: bool,
}

impl Checked {
    /// The event as an outlier row.
    fn to_outlier(&self, id: &EventId) -> NewOutlier {
        NewOutlier {
            event_id: id.to_string(),
            event_type: self.pdu.kind.to_string(),
            state_key: self.pdu.state_key.clone(),
            sender: self.pdu.sender.to_string(),
            origin_server_ts: i64::from(self.pdu.origin_server_ts.0),
            depth: self.pdu.depth as i64,
            pdu: serde_json::to_string(&self.json).unwrap_or_default(),
            rejected: self.rejected,
            auth_events: self.pdu.auth_events.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The event ID of a PDU of a room of these rules (in the JSON for v1 and v2, its reference
/// hash from v3 on).
pub fn event_id_of(json: &CanonicalJsonObject, rules: &RoomVersionRules) -> Option<OwnedEventId> {
    match rules.event_id_format {
        EventIdFormatVersion::V1 => match json.get("event_id") {
            Some(CanonicalJsonValue::String(id)) => EventId::parse(id).ok(),
            _ => None,
        },
        _ => pdu::event_id_for(json, rules).ok(),
    }
}

impl Rooms {
    /// The key this server signs events with.
    pub fn signing_key(&self) -> &ruma::signatures::Ed25519KeyPair {
        self.keys.pair()
    }

    /// Whether `user` is an account of this server that is not deactivated.
    pub async fn is_active_user(&self, user: &ruma::UserId) -> Result<bool> {
        Ok(storage::users::get(&self.db.read, user.as_str()).await?.is_some_and(|u| !u.deactivated))
    }

    /// A user's membership in a room and the event that made it.
    pub async fn membership_event(
        &self,
        room_id: &RoomId,
        user: &ruma::UserId,
    ) -> Result<Option<(String, super::StoredEvent)>> {
        let Some(row) = storage::rooms::membership(&self.db.read, room_id.as_str(), user.as_str()).await? else {
            return Ok(None);
        };
        Ok(self.event(&row.event_id).await?.map(|e| (row.membership, e)))
    }

    /// Our user's membership event from another server's template (`make_join`,
    /// `make_leave`), with `content` (the user's profile, a reason) and signed here.
    pub fn complete_template(
        &self,
        version: &RoomVersionId,
        template: CanonicalJsonObject,
        content: serde_json::Value,
    ) -> Result<(OwnedEventId, CanonicalJsonObject)> {
        let content = super::to_canonical_object(content)?;
        pdu::complete_template(
            template,
            content,
            version,
            self.config.server_name.as_str(),
            self.keys.pair(),
            super::now_ts(),
        )
        .map_err(|e| Error::bad_json(format!("The other server's event template: {e}")))
    }

    /// Checks and stores a remote join. Events of the answer that are malformed or belong to
    /// another room are dropped; events failing the auth rules are kept rejected and left out
    /// of the state; a state without a valid create event, or a join the state does not allow,
    /// refuses the whole join and stores nothing.
    pub async fn store_remote_join(&self, j: RemoteJoin) -> Result<()> {
        let rules = j.version.rules().ok_or_else(|| Error::internal("unsupported room version"))?;
        let room_id = &j.room_id;
        let mut events: HashMap<OwnedEventId, Checked> = HashMap::new();
        let state_ids: HashSet<OwnedEventId> =
            j.state.iter().filter_map(|json| self.admit(room_id, json, &rules, &mut events)).collect();
        for json in &j.auth_chain {
            self.admit(room_id, json, &rules, &mut events);
        }

        // The answer must be complete: every auth event is in it.
        let batch_create = events.values().find(|e| e.pdu.kind == TimelineEventType::RoomCreate).map(|e| e.pdu.clone());
        check_batch(&rules, &mut events, &HashMap::new(), batch_create.as_ref());

        // The state before the join.
        let mut before = StateMap::default();
        for id in &state_ids {
            let e = &events[id];
            if let (Some(key), false) = (&e.pdu.state_key, e.rejected) {
                before.insert((e.pdu.kind.to_string(), key.clone()), id.to_string());
            }
        }
        let create = before
            .get(&("m.room.create".to_owned(), String::new()))
            .and_then(|id| events.get(id.as_str()))
            .ok_or_else(|| Error::forbidden("The room's state has no valid create event"))?;
        if rules.room_id_format == RoomIdFormatVersion::V2 {
            let expected = RoomId::new_v2(create.pdu.event_id.as_str().trim_start_matches('$')).ok();
            if expected.as_deref() != Some(room_id.as_ref()) {
                return Err(Error::forbidden("The room's create event does not match its ID"));
            }
        }
        let creator = create.pdu.sender.to_string();
        let created_ts = i64::from(create.pdu.origin_server_ts.0);

        // The join itself: allowed by its auth events and by the state before it.
        state_res::check_pdu_format(&j.join, &rules.event_format)
            .map_err(|e| Error::bad_json(format!("Invalid join event: {e}")))?;
        let join =
            Pdu::from_json(&j.join, j.join_id.clone(), room_id.clone(), &rules).map_err(|e| Error::bad_json(e.0))?;
        if join.kind != TimelineEventType::RoomMember {
            return Err(Error::bad_json("The join event is not a member event"));
        }
        let by_key: HashMap<(String, String), &Pdu> =
            before.iter().filter_map(|(k, id)| events.get(id.as_str()).map(|e| (k.clone(), &e.pdu))).collect();
        let allowed = if join.auth_events.iter().any(|a| events.get(a).is_none_or(|a| a.rejected)) {
            Err("an auth event of the join is missing or was rejected".to_owned())
        } else {
            check_against_auth_events(&rules, &join, |a| events.get(a).map(|e| &e.pdu), batch_create.as_ref()).and_then(
                |()| {
                    state_res::check_state_dependent_auth_rules(
                        &rules.authorization,
                        &join,
                        |t: &StateEventType, k: &str| by_key.get(&(t.to_string(), k.to_owned())).map(|p| (*p).clone()),
                    )
                },
            )
        };
        if let Err(why) = allowed {
            return Err(Error::forbidden(format!("The room's state does not allow this join: {why}")));
        }

        let lock = self.lock_for(room_id);
        let _guard = lock.lock().await;
        if storage::events::get(&self.db.write, j.join_id.as_str()).await?.is_some() {
            return Ok(());
        }
        let existing = self.hot_locked(room_id).await?;
        let hot = match &existing {
            Some(h) => (**h).clone(),
            None => RoomHot::fresh(room_id.as_str(), j.version.as_str(), self.shared.epoch(room_id.as_str())),
        };
        if hot.room.room_version != j.version.as_str() {
            return Err(Error::forbidden("The room's version differs from what this server knows of it"));
        }

        let mut groups = Vec::new();
        let before_group = self.new_group(&mut groups, &before, None).await?;
        let mut after = before.clone();
        let own_key = ("m.room.member".to_owned(), join.state_key.clone().unwrap_or_default());
        after.insert(own_key.clone(), j.join_id.to_string());
        let after_group = self.new_group(&mut groups, &after, Some(before_group)).await?;

        let mut changes: Vec<(String, String, Option<String>)> = Vec::new();
        let mut memberships = Vec::new();
        for (key, id) in &after {
            if hot.state.get(key) == Some(id) {
                continue;
            }
            changes.push((key.0.clone(), key.1.clone(), Some(id.clone())));
            if key.0 == "m.room.member" {
                let json = if *key == own_key { &j.join } else { &events[id.as_str()].json };
                let membership = content_of(json)["membership"].as_str().unwrap_or("leave").to_owned();
                memberships.push(MembershipChange { user_id: key.1.clone(), membership, event_id: id.clone() });
            }
        }
        for key in hot.state.keys().filter(|k| !after.contains_key(*k)) {
            changes.push((key.0.clone(), key.1.clone(), None));
            if key.0 == "m.room.member"
                && let Some(old) = hot.state.get(key)
            {
                memberships.push(MembershipChange {
                    user_id: key.1.clone(),
                    membership: "leave".to_owned(),
                    event_id: old.clone(),
                });
            }
        }
        let outliers: Vec<NewOutlier> = events.iter().map(|(id, e)| e.to_outlier(id)).collect();
        let outlier_count = outliers.len();
        let placement = Placement {
            state_groups: groups,
            state_group: Some(after_group),
            current: CurrentState::Replace { group: after_group, changes },
            memberships,
            outliers,
            state_before_group: Some(before_group),
            reset_extremities: true,
            ..Default::default()
        };
        let prev_ids: Vec<String> = join.prev_events.iter().map(ToString::to_string).collect();
        let auth_ids: Vec<String> = join.auth_events.iter().map(ToString::to_string).collect();
        let new_room = existing.is_none().then_some((creator.as_str(), created_ts));
        let pending = self
            .store_locked(&hot, new_room, &j.join_id, &j.join, &join, prev_ids, auth_ids, None, Some(placement))
            .await?;
        let committed = self.complete(pending).await;
        self.shared.hot.lock().remove(room_id);
        committed?;
        tracing::info!(%room_id, state = before.len(), outliers = outlier_count, "joined a room of another server");
        Ok(())
    }

    /// Parses one event of the answer into `events` (and returns its ID); a malformed one, or
    /// one of another room, is left out.
    fn admit(
        &self,
        room_id: &RoomId,
        json: &CanonicalJsonObject,
        rules: &RoomVersionRules,
        events: &mut HashMap<OwnedEventId, Checked>,
    ) -> Option<OwnedEventId> {
        if let Err(e) = state_res::check_pdu_format(json, &rules.event_format) {
            tracing::info!(error = %e, "a malformed event of a remote join was dropped");
            return None;
        }
        let id = event_id_of(json, rules)?;
        // A v12 create event carries no room ID: the room ID is derived from it (checked above).
        match json.get("room_id") {
            Some(CanonicalJsonValue::String(r)) if r == room_id.as_str() => {}
            None if rules.room_id_format == RoomIdFormatVersion::V2 => {}
            _ => {
                tracing::info!(event_id = %id, "an event of another room in a remote join was dropped");
                return None;
            }
        }
        if !events.contains_key(&id) {
            let pdu = Pdu::from_json(json, id.clone(), room_id.to_owned(), rules).ok()?;
            events.insert(id.clone(), Checked { json: json.clone(), pdu, rejected: false });
        }
        Some(id)
    }
}

/// Checks each event of `batch` against its own auth events (found in the batch or in `known`,
/// the stored ones), auth events first, and marks those that fail rejected: so is an event whose
/// auth event is missing or was itself rejected (the spec's check 4 on receipt of a PDU).
fn check_batch(
    rules: &RoomVersionRules,
    batch: &mut HashMap<OwnedEventId, Checked>,
    known: &HashMap<OwnedEventId, Pdu>,
    create: Option<&Pdu>,
) {
    for id in auth_order(batch) {
        let verdict = {
            let e = &batch[&id];
            let unusable = e.pdu.auth_events.iter().any(|a| match batch.get(a) {
                Some(c) => c.rejected,
                None => !known.contains_key(a),
            });
            if unusable {
                Err("an auth event is missing or was rejected".to_owned())
            } else {
                check_against_auth_events(
                    rules,
                    &e.pdu,
                    |a| batch.get(a).map(|c| &c.pdu).or_else(|| known.get(a)),
                    create,
                )
            }
        };
        if let Err(why) = verdict {
            tracing::info!(event_id = %id, %why, "an event another server sent was rejected");
            if let Some(e) = batch.get_mut(&id) {
                e.rejected = true;
            }
        }
    }
}

/// The auth rules of `event` with its own auth events (found by `lookup`) as the room's state;
/// `create` is the room's create event, which room version 12 leaves out of auth_events.
pub(super) fn check_against_auth_events<'a>(
    rules: &RoomVersionRules,
    event: &Pdu,
    lookup: impl Fn(&EventId) -> Option<&'a Pdu>,
    create: Option<&'a Pdu>,
) -> std::result::Result<(), String> {
    state_res::check_state_independent_auth_rules(&rules.authorization, event, |id: &EventId| {
        lookup(id).cloned().or_else(|| create.filter(|c| *c.event_id == *id).cloned())
    })?;
    let mut by_key: HashMap<(String, String), &Pdu> = HashMap::new();
    for id in &event.auth_events {
        if let Some(e) = lookup(id)
            && let Some(k) = &e.state_key
        {
            by_key.insert((e.kind.to_string(), k.clone()), e);
        }
    }
    if let Some(create) = create {
        by_key.entry(("m.room.create".to_owned(), String::new())).or_insert(create);
    }
    state_res::check_state_dependent_auth_rules(&rules.authorization, event, |t: &StateEventType, k: &str| {
        by_key.get(&(t.to_string(), k.to_owned())).map(|p| (*p).clone())
    })
}

/// The events in an order where each comes after its auth events (Kahn's algorithm); events
/// in a cycle, which no honest server builds, come last.
fn auth_order(events: &HashMap<OwnedEventId, Checked>) -> Vec<OwnedEventId> {
    let mut waiting: HashMap<&OwnedEventId, usize> = HashMap::new();
    let mut children: HashMap<&OwnedEventId, Vec<&OwnedEventId>> = HashMap::new();
    for (id, e) in events {
        let known: Vec<&OwnedEventId> = e.pdu.auth_events.iter().filter(|a| events.contains_key(*a)).collect();
        waiting.insert(id, known.len());
        for a in known {
            children.entry(a).or_default().push(id);
        }
    }
    let mut ready: Vec<&OwnedEventId> = waiting.iter().filter(|(_, n)| **n == 0).map(|(id, _)| *id).collect();
    // Deterministic: by depth, then ID.
    ready.sort_by_key(|id| (events[*id].pdu.depth, (*id).clone()));
    let mut queue: VecDeque<&OwnedEventId> = ready.into();
    let mut order = Vec::with_capacity(events.len());
    let mut done: HashSet<&OwnedEventId> = HashSet::new();
    while let Some(id) = queue.pop_front() {
        order.push(id.clone());
        done.insert(id);
        for child in children.get(id).map(Vec::as_slice).unwrap_or_default() {
            if let Some(n) = waiting.get_mut(child) {
                *n -= 1;
                if *n == 0 {
                    queue.push_back(child);
                }
            }
        }
    }
    let mut rest: Vec<&OwnedEventId> = events.keys().filter(|id| !done.contains(id)).collect();
    rest.sort();
    order.extend(rest.into_iter().cloned());
    order
}

impl Rooms {
    /// Stores a local user's membership event in a room of another server that no user here
    /// is in: an invite (spec: "Inviting to a room", the invitee's server) with the room's
    /// stripped state in `unsigned.invite_room_state` (where /sync reads it, as Synapse keeps
    /// it), or the user's rejection of one. An outlier that changes only their membership; a
    /// room this server never knew gets its row, as in Synapse.
    pub async fn store_outlier_membership(
        &self,
        room_id: &RoomId,
        version: &RoomVersionId,
        event_id: &EventId,
        json: CanonicalJsonObject,
    ) -> Result<()> {
        let rules = version.rules().ok_or_else(|| Error::internal("unsupported room version"))?;
        let pdu =
            Pdu::from_json(&json, event_id.to_owned(), room_id.to_owned(), &rules).map_err(|e| Error::bad_json(e.0))?;
        let (Some(user), TimelineEventType::RoomMember) = (pdu.state_key.clone(), &pdu.kind) else {
            return Err(Error::bad_json("Not a member event"));
        };
        let membership = content_of(&json)["membership"].as_str().unwrap_or("leave").to_owned();
        let lock = self.lock_for(room_id);
        let _guard = lock.lock().await;
        if storage::events::get(&self.db.write, event_id.as_str()).await?.is_some() {
            return Ok(());
        }
        let existing = self.hot_locked(room_id).await?;
        let hot = match &existing {
            Some(h) => (**h).clone(),
            None => RoomHot::fresh(room_id.as_str(), version.as_str(), self.shared.epoch(room_id.as_str())),
        };
        let placement = Placement {
            outlier: true,
            memberships: vec![MembershipChange { user_id: user, membership, event_id: event_id.to_string() }],
            ..Default::default()
        };
        let sender = pdu.sender.to_string();
        let new_room = existing.is_none().then_some((sender.as_str(), storage::now_ms()));
        let auth_ids: Vec<String> = pdu.auth_events.iter().map(ToString::to_string).collect();
        let prev_ids: Vec<String> = pdu.prev_events.iter().map(ToString::to_string).collect();
        let pending =
            self.store_locked(&hot, new_room, event_id, &json, &pdu, prev_ids, auth_ids, None, Some(placement)).await?;
        let committed = self.complete(pending).await;
        self.shared.hot.lock().remove(room_id);
        committed.map(|_| ())
    }

    /// A leave of `user` that only this server signs, following their invite (`invite`): how an
    /// invite is declined when the inviting server cannot be reached (Synapse's "out-of-band
    /// leave"); the other server never sees it, but the user is rid of the invite.
    pub fn out_of_band_leave(
        &self,
        version: &RoomVersionId,
        room_id: &RoomId,
        user: &ruma::UserId,
        invite: (&EventId, &CanonicalJsonObject),
    ) -> Result<(OwnedEventId, CanonicalJsonObject)> {
        let depth = match invite.1.get("depth") {
            Some(CanonicalJsonValue::Integer(d)) => u64::try_from(i64::from(*d)).unwrap_or(0) + 1,
            _ => 1,
        };
        let new = pdu::NewPdu {
            room_version: version,
            room_id: Some(room_id),
            sender: user,
            kind: "m.room.member",
            state_key: Some(user.as_str()),
            content: super::to_canonical_object(serde_json::json!({ "membership": "leave" }))?,
            prev_events: vec![(invite.0.to_owned(), Some(invite.1.clone()))],
            auth_events: vec![(invite.0.to_owned(), Some(invite.1.clone()))],
            depth,
            origin_server_ts: super::now_ts(),
            redacts: None,
        };
        let built = pdu::build_and_sign(new, self.config.server_name.as_str(), self.keys.pair())
            .map_err(|e| Error::internal(e.0))?;
        Ok((built.event_id, built.json))
    }
}

impl Rooms {
    /// Stores events of a room another server sent to fill in the state around an event (its
    /// `/state_ids` answer, fetched), signatures already checked, as outliers: each checked
    /// against its auth events (found among them or here), kept rejected when it fails.
    pub async fn store_outliers(&self, room_id: &RoomId, events: Vec<CanonicalJsonObject>) -> Result<()> {
        let room = self.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = super::rules_for(&room.room_version)?;
        let mut batch: HashMap<OwnedEventId, Checked> = HashMap::new();
        for json in &events {
            self.admit(room_id, json, &rules, &mut batch);
        }
        let ids: Vec<String> = batch.keys().map(ToString::to_string).collect();
        let stored = self.known_events(&ids).await?;
        batch.retain(|id, _| !stored.contains(id.as_str()));
        let known = self
            .stored_auth_events(
                room_id,
                &rules,
                batch.values().flat_map(|c| c.pdu.auth_events.iter()).filter(|id| !batch.contains_key(*id)),
            )
            .await?;
        let create = self.create_pdu(room_id, &rules).await?;
        check_batch(&rules, &mut batch, &known, create.as_ref());
        let outliers: Vec<NewOutlier> = batch.iter().map(|(id, e)| e.to_outlier(id)).collect();
        let mut conn = self.db.write.acquire().await?;
        storage::append::insert_outliers(&mut conn, room_id.as_str(), &outliers).await?;
        Ok(())
    }

    /// Of the auth events `ids` names, those stored here and not rejected: what checking
    /// events from another server can look up besides what that server sent.
    pub(super) async fn stored_auth_events<'a>(
        &self,
        room_id: &RoomId,
        rules: &RoomVersionRules,
        ids: impl Iterator<Item = &'a OwnedEventId>,
    ) -> Result<HashMap<OwnedEventId, Pdu>> {
        let wanted: Vec<String> = ids.map(ToString::to_string).collect::<HashSet<_>>().into_iter().collect();
        let mut known = HashMap::new();
        for e in self.events_shared(&wanted).await? {
            if !e.row.rejected
                && let Ok(id) = OwnedEventId::try_from(e.row.event_id.as_str())
            {
                known.insert(id, super::to_pdu(&e, room_id, rules)?);
            }
        }
        Ok(known)
    }

    /// The room's create event, which v12 rooms leave out of auth_events.
    pub(super) async fn create_pdu(&self, room_id: &RoomId, rules: &RoomVersionRules) -> Result<Option<Pdu>> {
        match self.current_state_event(room_id, "m.room.create", "").await? {
            Some(c) => Ok(Some(super::to_pdu(&c, room_id, rules)?)),
            None => Ok(None),
        }
    }

    /// Which of these events are stored here (in a timeline or as outliers).
    pub async fn known_events(&self, ids: &[String]) -> Result<HashSet<String>> {
        Ok(storage::events::graph_points(&self.db.read, ids).await?.into_iter().map(|(id, _, _)| id).collect())
    }

    /// The state a list of event IDs makes (each stored here; rejected ones and unknown ones are
    /// left out).
    pub async fn state_of_ids(&self, ids: &[String]) -> Result<StateMap> {
        let mut state = StateMap::default();
        for e in self.events_shared(ids).await? {
            if let (Some(key), false) = (&e.row.state_key, e.row.rejected) {
                state.insert((e.row.event_type.clone(), key.clone()), e.row.event_id.clone());
            }
        }
        Ok(state)
    }
}
