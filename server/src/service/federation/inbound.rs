//! What other servers ask of this one about rooms: transactions of events (`/send`), and a
//! remote user joining one of our rooms (`make_join`, `send_join`).

use std::collections::BTreeMap;

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, RoomId, RoomVersionId, ServerName, UserId,
    api::federation::event::{get_event, get_missing_events, get_room_state_ids},
    room_version_rules::EventIdFormatVersion,
};
use serde_json::value::RawValue;

use super::Federation;
use crate::{
    error::{Error, Result},
    matrix::pdu,
    service::rooms::{
        incoming::{Received, Unsettled, refers_to_missing_events},
        rules_for,
    },
};

/// Most events asked for to close a gap (Synapse asks for 10; more closes longer outages).
const MISSING_EVENTS_LIMIT: u32 = 50;

/// Most events fetched to place one event after a gap (a bigger state is a room this server
/// should rejoin, not patch up event by event).
const MAX_STATE_FETCH: usize = 500;
/// Events asked for at once while fetching.
const FETCH_AT_ONCE: usize = 10;

/// Most PDUs and EDUs in one transaction (the spec's limits).
const MAX_PDUS: usize = 50;
const MAX_EDUS: usize = 100;

/// What one transaction's PDUs share while they are received.
#[derive(Default)]
struct Batch {
    /// Events written together, answered for once all are on disk.
    unsettled: Unsettled,
    keys: super::keys::KeyMemo,
    /// Each room's ACL verdict for the sending server.
    acl: std::collections::HashMap<ruma::OwnedRoomId, std::result::Result<(), String>>,
}

/// What `send_join` answers: the room's state before the join and its auth chain, as PDUs.
pub struct JoinedState {
    pub state: Vec<Box<RawValue>>,
    pub auth_chain: Vec<Box<RawValue>>,
    pub servers_in_room: Vec<String>,
    /// The join countersigned here, when one of this server's users authorised it (a
    /// restricted room).
    pub event: Option<Box<RawValue>>,
}

impl Federation {
    /// Receives a transaction from `origin`: each PDU checked and stored on its own, with its
    /// outcome (an error for an event that was refused or could not be placed), then its EDUs
    /// (see `edus`), each taken or dropped on its own.
    pub async fn receive_transaction(
        &self,
        origin: &ServerName,
        txn_id: &str,
        pdus: &[Box<RawValue>],
        edus: &[ruma::serde::Raw<ruma::api::federation::transactions::edu::Edu>],
    ) -> Result<BTreeMap<OwnedEventId, std::result::Result<(), String>>> {
        if pdus.len() > MAX_PDUS || edus.len() > MAX_EDUS {
            return Err(Error::too_large(format!("A transaction carries at most {MAX_PDUS} PDUs and {MAX_EDUS} EDUs")));
        }
        // A retry of a transaction gets the first answer (spec: transactions are idempotent
        // per origin and ID); one at a time per origin, so a retry never races the first try.
        let key = (origin.to_owned(), txn_id.to_owned());
        let lock = self.txn_locks.lock().entry(origin.to_owned()).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        if let Some(done) = self.txns_done.lock().get(&key) {
            return Ok(done.clone());
        }
        let mut results = BTreeMap::new();
        let mut batch = Batch::default();
        // Redactions accepted in this transaction, applied once everything is on disk.
        let mut redactions = Vec::new();
        for raw in pdus {
            let Ok(json) = serde_json::from_str::<CanonicalJsonObject>(raw.get()) else {
                tracing::info!(%origin, "a PDU that is not a canonical JSON object was dropped");
                continue;
            };
            let Some((room_id, event_id)) = self.identify(&json).await else {
                tracing::info!(%origin, "a PDU for an unknown room or without an event ID was dropped");
                continue;
            };
            // The room's ACL is read once per transaction (the PDUs do not change who sent them).
            let acl = match batch.acl.get(&room_id) {
                Some(allowed) => allowed.clone(),
                None => {
                    let allowed = self.check_acl(origin, &room_id).await.map_err(|e| e.message());
                    batch.acl.insert(room_id.clone(), allowed.clone());
                    allowed
                }
            };
            let is_redaction =
                matches!(json.get("type"), Some(CanonicalJsonValue::String(t)) if t == "m.room.redaction");
            let outcome = match acl {
                Ok(()) => self.receive_filling_gaps(origin, &room_id, &event_id, json, &mut batch).await,
                Err(e) => Err(Error::forbidden(e)),
            };
            if is_redaction && matches!(outcome, Ok(Received::Accepted)) {
                redactions.push((room_id.clone(), event_id.clone()));
            }
            let result = match outcome {
                Ok(Received::Accepted | Received::Duplicate | Received::SoftFailed(_)) => Ok(()),
                Ok(Received::Rejected(why)) => Err(why),
                Err(e) => Err(e.message()),
            };
            if let Err(e) = &result {
                tracing::info!(%origin, %event_id, error = %e, "a received event was not accepted");
            }
            results.insert(event_id, result);
        }
        // Answered only once every accepted event is on disk.
        self.rooms.settle(&mut batch.unsettled).await;
        for (event_id, e) in std::mem::take(&mut batch.unsettled.failed) {
            tracing::warn!(%origin, %event_id, error = %e, "a received event could not be stored");
            results.insert(event_id, Err(e));
        }
        for (room_id, event_id) in redactions {
            if results.get(&event_id).is_some_and(|r| r.is_ok())
                && let Err(e) = self.rooms.apply_received_redaction(&room_id, &event_id).await
            {
                tracing::warn!(%origin, %event_id, error = %e, "applying a received redaction");
            }
        }
        let arrived: Vec<String> = results.iter().filter(|(_, r)| r.is_ok()).map(|(id, _)| id.to_string()).collect();
        if let Err(e) = self.rooms.apply_pending_redactions(&arrived).await {
            tracing::warn!(%origin, error = %e, "applying redactions that arrived before their targets");
        }
        // After the PDUs: a receipt or typing for an event or a join of this transaction finds
        // it stored.
        for edu in edus {
            self.receive_edu(origin, edu).await;
        }
        self.txns_done.lock().insert(key, results.clone());
        Ok(results)
    }

    /// The room and event ID of a PDU (the ID is computed in room versions 3 and later).
    async fn identify(&self, json: &CanonicalJsonObject) -> Option<(ruma::OwnedRoomId, OwnedEventId)> {
        let Some(CanonicalJsonValue::String(room)) = json.get("room_id") else { return None };
        let room_id = RoomId::parse(room).ok()?;
        let version = self.rooms.room_version(&room_id).await.ok()??;
        let (_, rules) = rules_for(&version).ok()?;
        let event_id = match rules.event_id_format {
            EventIdFormatVersion::V1 => match json.get("event_id") {
                Some(CanonicalJsonValue::String(id)) => EventId::parse(id).ok()?,
                _ => return None,
            },
            _ => pdu::event_id_for(json, &rules).ok()?,
        };
        Some((room_id, event_id))
    }

    /// As `receive`; an event that follows events this server lacks (the other server sent
    /// only its latest event after an outage, or one got lost) has them fetched from `origin`
    /// first (`/get_missing_events`, back to our forward extremities), then is tried again.
    async fn receive_filling_gaps(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        json: CanonicalJsonObject,
        batch: &mut Batch,
    ) -> Result<Received> {
        match self.receive_in(room_id, json.clone(), batch).await {
            Err(e) if refers_to_missing_events(&e) => {
                // What is fetched is placed against the graph on disk.
                self.rooms.settle(&mut batch.unsettled).await;
                if let Err(e) = self.fetch_missing(origin, room_id, event_id).await {
                    tracing::info!(%origin, %event_id, error = %e, "missing events could not be fetched");
                }
                match self.receive(room_id, json.clone()).await {
                    // The gap is too long, or history the other server will not give: take the
                    // state before the event from it instead (spec: "the homeserver may
                    // request the state at the event with /state_ids").
                    Err(e) if refers_to_missing_events(&e) => {
                        self.receive_with_state_of(origin, room_id, event_id, json).await
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    /// Receives an event whose prev events stay unknown: the state before it asked of `origin`
    /// (`/state_ids`), the events of it and their auth chain this server lacks fetched
    /// (`/event`), checked and kept as outliers; the event is then checked against that state.
    async fn receive_with_state_of(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        json: CanonicalJsonObject,
    ) -> Result<Received> {
        let row = self.rooms.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&row.room_version)?;
        let ids = self
            .client
            .send(origin, get_room_state_ids::v1::Request::new(event_id.to_owned(), room_id.to_owned()))
            .await
            .map_err(|e| Error::forbidden(format!("The state at the event could not be had from {origin}: {e}")))?;
        let mut wanted: Vec<String> =
            ids.pdu_ids.iter().chain(ids.auth_chain_ids.iter()).map(ToString::to_string).collect();
        if let Some(CanonicalJsonValue::Array(auth)) = json.get("auth_events") {
            wanted.extend(auth.iter().filter_map(|a| match a {
                CanonicalJsonValue::String(s) => Some(s.clone()),
                _ => None,
            }));
        }
        wanted.sort();
        wanted.dedup();
        let here = self.rooms.known_events(&wanted).await?;
        let missing: Vec<&String> = wanted.iter().filter(|id| !here.contains(*id)).collect();
        if missing.len() > MAX_STATE_FETCH {
            return Err(Error::forbidden(format!(
                "The state at the event needs {} events this server lacks; not fetched",
                missing.len()
            )));
        }
        let mut fetched = Vec::with_capacity(missing.len());
        for chunk in missing.chunks(FETCH_AT_ONCE) {
            let answers = futures::future::join_all(chunk.iter().map(|id| async move {
                let id = OwnedEventId::try_from(id.as_str()).ok()?;
                let resp = self.client.send(origin, get_event::v1::Request::new(id)).await.ok()?;
                serde_json::from_str::<CanonicalJsonObject>(resp.pdu.get()).ok()
            }))
            .await;
            fetched.extend(answers.into_iter().flatten());
        }
        let verified = self.keys.verified_events(fetched, &rules).await;
        self.rooms.store_outliers(room_id, verified).await?;
        let state_ids: Vec<String> = ids.pdu_ids.iter().map(ToString::to_string).collect();
        let state = self.rooms.state_of_ids(&state_ids).await?;
        if !state.contains_key(&("m.room.create".to_owned(), String::new())) {
            return Err(Error::forbidden("The state at the event has no create event"));
        }
        let keys = self.keys.keys_for_event(&json, &rules).await.map_err(Error::forbidden)?;
        tracing::info!(%origin, %event_id, fetched = missing.len(), "placed an event after a gap with the state its server gave");
        Ok(self.rooms.receive_pdu_with_state(room_id, json, &keys, state).await?.1)
    }

    /// Fetches the events between our forward extremities and `event_id` from `origin` and
    /// receives them, oldest first.
    async fn fetch_missing(&self, origin: &ServerName, room_id: &RoomId, event_id: &EventId) -> Result<()> {
        let earliest: Vec<OwnedEventId> = self
            .rooms
            .forward_extremities(room_id)
            .await?
            .into_iter()
            .filter_map(|id| OwnedEventId::try_from(id).ok())
            .collect();
        let mut request = get_missing_events::v1::Request::new(room_id.to_owned(), earliest, vec![event_id.to_owned()]);
        request.limit = MISSING_EVENTS_LIMIT.into();
        let resp = self
            .client
            .send(origin, request)
            .await
            .map_err(|e| Error::internal(format!("get_missing_events from {origin}: {e}")))?;
        let mut events: Vec<(i64, CanonicalJsonObject)> = resp
            .events
            .iter()
            .filter_map(|raw| serde_json::from_str::<CanonicalJsonObject>(raw.get()).ok())
            .map(|e| {
                let depth = match e.get("depth") {
                    Some(CanonicalJsonValue::Integer(d)) => i64::from(*d),
                    _ => 0,
                };
                (depth, e)
            })
            .collect();
        events.sort_by_key(|(depth, _)| *depth);
        for (_, event) in events {
            if let Some((in_room, id)) = self.identify(&event).await
                && in_room == room_id
                && let Err(e) = self.receive(room_id, event).await
            {
                tracing::info!(%origin, event_id = %id, error = %e, "a missing event was not accepted");
            }
        }
        Ok(())
    }

    /// As `receive`, for one PDU of a transaction: signing keys read once per transaction, and
    /// an event that extends its room is written with the transaction's others (`batch`).
    async fn receive_in(&self, room_id: &RoomId, json: CanonicalJsonObject, batch: &mut Batch) -> Result<Received> {
        let version = self.rooms.room_version(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&version)?;
        if !batch.keys.has_keys_for(&json, &rules) {
            // Keys may have to be fetched from another server: not while holding a room.
            self.rooms.settle(&mut batch.unsettled).await;
        }
        let keys = self.keys.keys_for_event_memo(&json, &rules, &mut batch.keys).await.map_err(Error::forbidden)?;
        Ok(self.rooms.receive_pdu_deferred(room_id, json, &keys, &mut batch.unsettled).await?.1)
    }

    /// Checks and stores one event of another server (or one of ours that another server
    /// countersigned).
    pub(super) async fn receive(&self, room_id: &RoomId, json: CanonicalJsonObject) -> Result<Received> {
        let row = self.rooms.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&row.room_version)?;
        let keys = self.keys.keys_for_event(&json, &rules).await.map_err(Error::forbidden)?;
        Ok(self.rooms.receive_pdu(room_id, json, &keys).await?.1)
    }

    /// Stores a membership event another server's user made through this one (`membership`:
    /// join, leave, knock), sent on to the room's other servers once accepted; one the room's
    /// rules refuse is 403.
    async fn receive_to_relay(&self, room_id: &RoomId, json: CanonicalJsonObject, membership: &str) -> Result<()> {
        let row = self.rooms.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&row.room_version)?;
        let keys = self.keys.keys_for_event(&json, &rules).await.map_err(Error::forbidden)?;
        match self.rooms.receive_pdu_to_relay(room_id, json, &keys).await?.1 {
            Received::Accepted | Received::Duplicate => Ok(()),
            Received::SoftFailed(why) | Received::Rejected(why) => {
                Err(Error::forbidden(format!("The {membership} was refused: {why}")))
            }
        }
    }

    /// What `make_join`, `make_leave` and `make_knock` check first: `user` belongs to the asking
    /// server (`acting`: "joining", ...), the room is here and its ACL lets `origin` in. Returns
    /// the room's version.
    async fn membership_request(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        user: &UserId,
        acting: &str,
    ) -> Result<RoomVersionId> {
        if user.server_name() != origin {
            return Err(Error::forbidden(format!("The {acting} user must belong to the asking server")));
        }
        let row = self.rooms.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        self.check_acl(origin, room_id).await?;
        RoomVersionId::try_from(row.room_version.as_str()).map_err(Error::internal)
    }

    /// `make_join`: the event `user` (of `origin`) would join `room_id` with.
    pub async fn make_join(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        user: &UserId,
        versions: &[RoomVersionId],
    ) -> Result<(RoomVersionId, CanonicalJsonObject)> {
        let version = self.membership_request(origin, room_id, user, "joining").await?;
        // A server that names no versions speaks only version 1 (spec: make_join `ver`).
        let understood = if versions.is_empty() { version == RoomVersionId::V1 } else { versions.contains(&version) };
        if !understood {
            let message = format!("The room is of version {version}, which the joining server does not support");
            return Err(Error::incompatible_room_version(version, message));
        }
        let (_, template) = self.rooms.membership_template(room_id, user, "join").await?;
        Ok((version, template))
    }

    /// `make_leave`: the event `user` (of `origin`) would leave `room_id` with (rejecting an
    /// invite from here, typically).
    pub async fn make_leave(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<(RoomVersionId, CanonicalJsonObject)> {
        let version = self.membership_request(origin, room_id, user, "leaving").await?;
        let (_, template) = self.rooms.membership_template(room_id, user, "leave").await?;
        Ok((version, template))
    }

    /// `make_knock`: the event `user` (of `origin`) would knock on `room_id` with; the room's
    /// version must have knocking (7 and later) and be one the asking server speaks.
    pub async fn make_knock(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        user: &UserId,
        versions: &[RoomVersionId],
    ) -> Result<(RoomVersionId, CanonicalJsonObject)> {
        let version = self.membership_request(origin, room_id, user, "knocking").await?;
        let knocks = version.rules().is_some_and(|r| r.authorization.knocking);
        if !knocks || !versions.contains(&version) {
            let message = format!("The room is of version {version}, which cannot be knocked on from there");
            return Err(Error::incompatible_room_version(version, message));
        }
        let (_, template) = self.rooms.membership_template(room_id, user, "knock").await?;
        Ok((version, template))
    }

    /// `send_knock`: stores the knock `origin` signed (sent on to the room's other servers) and
    /// answers the room's stripped state, for the knocking user's client.
    pub async fn send_knock(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        pdu: &RawValue,
    ) -> Result<Vec<ruma::api::federation::membership::RawStrippedState>> {
        let json = self.own_membership_event(origin, room_id, event_id, pdu, "knock").await?;
        self.receive_to_relay(room_id, json, "knock").await?;
        self.stripped_state(room_id, None).await
    }

    /// `send_leave`: stores the leave event `origin` signed.
    pub async fn send_leave(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        pdu: &RawValue,
    ) -> Result<()> {
        let json = self.own_membership_event(origin, room_id, event_id, pdu, "leave").await?;
        self.receive_to_relay(room_id, json, "leave").await
    }

    /// The membership event a remote server sent to `send_join`/`send_leave`, checked to be in
    /// the room and for the ID of the path, with `membership`, about a user of `origin`
    /// themselves; the room's ACL applies.
    async fn own_membership_event(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        pdu: &RawValue,
        membership: &str,
    ) -> Result<CanonicalJsonObject> {
        let json: CanonicalJsonObject =
            serde_json::from_str(pdu.get()).map_err(|e| Error::bad_json(format!("The {membership} event: {e}")))?;
        let (in_room, id) = self.identify(&json).await.ok_or_else(|| Error::not_found("Unknown room"))?;
        if in_room != room_id || id != event_id {
            return Err(Error::bad_json("The event's room or ID differs from the path"));
        }
        self.check_acl(origin, room_id).await?;
        let field = |name: &str| match json.get(name) {
            Some(CanonicalJsonValue::String(s)) => Some(s.as_str()),
            _ => None,
        };
        let given = match json.get("content") {
            Some(CanonicalJsonValue::Object(c)) => match c.get("membership") {
                Some(CanonicalJsonValue::String(m)) => Some(m.as_str()),
                _ => None,
            },
            _ => None,
        };
        let sender = field("sender").and_then(|s| UserId::parse(s).ok());
        let is_own = field("type") == Some("m.room.member")
            && given == Some(membership)
            && sender.as_ref().is_some_and(|s| s.server_name() == origin && field("state_key") == Some(s.as_str()));
        if !is_own {
            return Err(Error::bad_json(format!("Not a {membership} event of a user of the sending server")));
        }
        Ok(json)
    }

    /// `send_join`: stores the join event `origin` signed, and answers the room's state before it
    /// with its auth chain.
    pub async fn send_join(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        pdu: &RawValue,
    ) -> Result<JoinedState> {
        let mut json = self.own_membership_event(origin, room_id, event_id, pdu, "join").await?;
        // Authorised by one of our users (a restricted room): our signature makes it valid.
        let authoriser = match json.get("content") {
            Some(CanonicalJsonValue::Object(c)) => match c.get("join_authorised_via_users_server") {
                Some(CanonicalJsonValue::String(u)) => UserId::parse(u).ok(),
                _ => None,
            },
            _ => None,
        };
        let countersigned = match authoriser {
            Some(u) if u.server_name() == self.keys.own_server_name() => {
                let row = self.rooms.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
                let (_, rules) = rules_for(&row.room_version)?;
                crate::matrix::pdu::countersign(
                    &mut json,
                    &rules,
                    self.keys.own_server_name().as_str(),
                    self.rooms.signing_key(),
                )
                .map_err(|e| Error::internal(e.0))?;
                Some(serde_json::value::to_raw_value(&json).map_err(Error::internal)?)
            }
            _ => None,
        };
        let before: Vec<String> = self.rooms.current_state_ids(room_id).await?.into_values().collect();
        self.receive_to_relay(room_id, json, "join").await?;
        let mut chain_of: Vec<String> = before.clone();
        chain_of.push(event_id.to_string());
        let auth_chain = self.rooms.auth_chain(&chain_of).await?;
        let mut servers: Vec<String> = self.rooms.servers_in_room(room_id).await?;
        servers.sort();
        Ok(JoinedState {
            state: self.rooms.pdus(&before).await?,
            auth_chain: self.rooms.pdus(&auth_chain).await?,
            servers_in_room: servers,
            event: countersigned,
        })
    }
}
