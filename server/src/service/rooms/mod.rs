//! Rooms: building local events as signed PDUs, checking them against the auth rules of the
//! room's version, and appending them to the room's graph, state and timeline.
//!
//! Every event of a room is appended under that room's lock, so "read current state, build,
//! authorise, write" is atomic per room while different rooms proceed in parallel. Each append is
//! one SQLite transaction; afterwards the stream head moves and the notifier wakes long-polling
//! /sync requests.

pub mod aliases;
pub mod create;
pub mod membership;
pub mod profile;
pub mod push;
pub mod redaction;
pub mod relations;
pub mod spaces;
pub mod upgrade;
pub mod visibility;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
};

use http::StatusCode;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId,
    RoomId, RoomVersionId, UInt, UserId,
    api::error::ErrorKind,
    events::{StateEventType, TimelineEventType},
    room_version_rules::RoomVersionRules,
    state_res,
};
use super::{notifier::Notifier, signing::ServerKeys};
use crate::{
    config::Config,
    error::{Error, Result},
    matrix::pdu::{self, NewPdu, Pdu},
    storage::{self, Db, events::EventRow, now_ms, rooms::RoomRow},
};

/// The most prev_events an event may reference (spec: server-server API, PDU format).
const MAX_PREV_EVENTS: usize = 20;

/// Which device sent an event with which transaction ID.
#[derive(Clone, Copy)]
pub struct Txn<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub txn_id: &'a str,
}

pub struct Rooms {
    db: Db,
    config: Arc<Config>,
    keys: Arc<ServerKeys>,
    locks: Mutex<HashMap<OwnedRoomId, Arc<tokio::sync::Mutex<()>>>>,
    notifier: Arc<Notifier>,
    /// The highest stream position committed.
    head: AtomicI64,
    /// Notifications for the push gateway worker.
    push_jobs: tokio::sync::mpsc::UnboundedSender<super::pusher::PushJob>,
}

/// A room event as stored, parsed.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub row: EventRow,
    pub json: CanonicalJsonObject,
}

pub fn rules_for(version: &str) -> Result<(RoomVersionId, RoomVersionRules)> {
    let id = RoomVersionId::try_from(version).map_err(Error::internal)?;
    let rules = id.rules().ok_or_else(|| Error::internal(format!("no rules for room version {version}")))?;
    Ok((id, rules))
}

impl Rooms {
    pub async fn new(
        db: Db,
        config: Arc<Config>,
        keys: Arc<ServerKeys>,
        notifier: Arc<Notifier>,
        push_jobs: tokio::sync::mpsc::UnboundedSender<super::pusher::PushJob>,
    ) -> Result<Self> {
        let head = storage::events::max_stream(&db.read).await?;
        Ok(Self { db, config, keys, locks: Mutex::new(HashMap::new()), notifier, head: AtomicI64::new(head), push_jobs })
    }

    /// The latest committed stream position.
    pub fn stream_head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    fn lock_for(&self, room_id: &RoomId) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().expect("room locks").entry(room_id.to_owned()).or_default().clone()
    }

    pub async fn room(&self, room_id: &RoomId) -> Result<Option<RoomRow>> {
        Ok(storage::rooms::get(&self.db.read, room_id.as_str()).await?)
    }

    pub async fn event(&self, event_id: &str) -> Result<Option<StoredEvent>> {
        Ok(storage::events::get(&self.db.read, event_id).await?.map(parse_row).transpose()?)
    }

    pub async fn events(&self, ids: &[String]) -> Result<Vec<StoredEvent>> {
        storage::events::get_many(&self.db.read, ids).await?.into_iter().map(parse_row).collect()
    }

    /// `events`, in the order of `ids` (unknown IDs are left out).
    pub async fn events_in_order(&self, ids: &[String]) -> Result<Vec<StoredEvent>> {
        let mut events = self.events(ids).await?;
        let order: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        events.sort_by_key(|e| order.get(e.row.event_id.as_str()).copied());
        Ok(events)
    }

    /// Current state of the room as (type, state_key) -> event ID.
    pub async fn current_state_ids(&self, room_id: &RoomId) -> Result<storage::rooms::StateKeyMap> {
        Ok(storage::rooms::current_state(&self.db.read, room_id.as_str()).await?)
    }

    /// The current state event at (type, key), if any.
    pub async fn current_state_event(&self, room_id: &RoomId, event_type: &str, state_key: &str) -> Result<Option<StoredEvent>> {
        match storage::rooms::current_state_event(&self.db.read, room_id.as_str(), event_type, state_key).await? {
            Some(id) => self.event(&id).await,
            None => Ok(None),
        }
    }

    /// The content of the current state event at (type, ""), or JSON null.
    pub async fn state_content(&self, room_id: &RoomId, event_type: &str) -> Result<serde_json::Value> {
        Ok(self.current_state_event(room_id, event_type, "").await?.map(|e| content_of(&e.json)).unwrap_or_default())
    }

    pub async fn membership(&self, room_id: &RoomId, user_id: &UserId) -> Result<Option<String>> {
        Ok(storage::rooms::membership(&self.db.read, room_id.as_str(), user_id.as_str()).await?.map(|m| m.membership))
    }

    /// Sends an event as `sender` (spec: PUT /rooms/{roomId}/send and /state). Repeating a
    /// transaction ID from the same device returns the first event instead of sending again.
    pub async fn send(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: serde_json::Value,
        txn: Option<Txn<'_>>,
    ) -> Result<OwnedEventId> {
        let mut content = to_canonical_object(content)?;
        let lock = self.lock_for(room_id);
        let _guard = lock.lock().await;
        if let Some(t) = txn {
            if let Some((event_id, _)) = storage::events::by_txn(&self.db.write, t.user_id, t.device_id, t.txn_id).await? {
                return EventId::parse(event_id).map_err(Error::internal);
            }
        }
        let room = self.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        if kind == "m.room.redaction" {
            // Room versions before 11 carry `redacts` at the top level, not in content.
            let (_, rules) = rules_for(&room.room_version)?;
            if !rules.redaction.content_field_redacts {
                if let Some(CanonicalJsonValue::String(r)) = content.remove("redacts") {
                    return self.append_locked(&room, sender, kind, state_key, content, txn, Some(&r)).await;
                }
            }
        }
        self.append_locked(&room, sender, kind, state_key, content, txn, None).await
    }

    /// Builds, authorises and stores one event. The caller holds the room lock.
    async fn append_locked(
        &self,
        room: &RoomRow,
        sender: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: CanonicalJsonObject,
        txn: Option<Txn<'_>>,
        top_level_redacts: Option<&str>,
    ) -> Result<OwnedEventId> {
        let (version, rules) = rules_for(&room.room_version)?;
        let room_id = RoomId::parse(&room.room_id).map_err(Error::internal)?;

        // Auth events: the state the auth rules will look at for this event. Only those entries
        // of the current state are read (a big room's state is large).
        let raw_content = serde_json::value::to_raw_value(&content).map_err(Error::internal)?;
        let timeline_type: TimelineEventType = kind.into();
        let auth_keys = state_res::auth_types_for_event(&timeline_type, sender, state_key, &raw_content, &rules.authorization)
            .map_err(|e| Error::bad_json(format!("Invalid event: {e}")))?;
        let mut wanted: Vec<(String, String)> = auth_keys.iter().map(|(t, k)| (t.to_string(), k.clone())).collect();
        wanted.push(("m.room.create".to_owned(), String::new()));
        let state_ids = storage::rooms::current_state_keys(&self.db.write, room_id.as_str(), &wanted).await?;
        let mut auth_ids: Vec<String> = auth_keys
            .iter()
            .filter_map(|(t, k)| state_ids.get(&(t.to_string(), k.clone())).cloned())
            .collect();
        auth_ids.sort();
        auth_ids.dedup();

        // Everything the state-dependent rules may consult: the auth events, plus the create
        // event, which v12 rooms leave out of auth_events.
        let mut needed = auth_ids.clone();
        if let Some(create) = state_ids.get(&("m.room.create".to_owned(), String::new())) {
            needed.push(create.clone());
        }
        let mut prev_ids = storage::events::forward_extremities(&self.db.write, room_id.as_str()).await?;
        prev_ids.truncate(MAX_PREV_EVENTS);
        needed.extend(prev_ids.iter().cloned());
        let loaded: HashMap<String, StoredEvent> = storage::events::get_many(&self.db.write, &needed)
            .await?
            .into_iter()
            .map(|r| parse_row(r).map(|e| (e.row.event_id.clone(), e)))
            .collect::<Result<_>>()?;
        let json_of = |id: &String| -> Result<(OwnedEventId, CanonicalJsonObject)> {
            let e = loaded.get(id).ok_or_else(|| Error::internal(format!("missing event {id}")))?;
            Ok((EventId::parse(id).map_err(Error::internal)?, e.json.clone()))
        };
        let depth = prev_ids.iter().filter_map(|id| loaded.get(id)).map(|e| e.row.depth as u64).max().unwrap_or(0) + 1;

        let redacts = top_level_redacts.map(EventId::parse).transpose().map_err(|e| Error::bad_json(format!("redacts: {e}")))?;
        let new = NewPdu {
            room_version: &version,
            room_id: Some(&room_id),
            sender,
            kind,
            state_key,
            content,
            prev_events: prev_ids.iter().map(json_of).collect::<Result<_>>()?,
            auth_events: auth_ids.iter().map(json_of).collect::<Result<_>>()?,
            depth,
            origin_server_ts: now_ts(),
            redacts: redacts.as_deref(),
        };
        let built = pdu::build_and_sign(new, self.config.server_name.as_str(), self.keys.pair()).map_err(pdu_error)?;
        let pdu = Pdu::from_json(&built.json, built.event_id.clone(), room_id.clone(), &rules).map_err(Error::internal)?;

        // The auth rules of the room version (ruma's implementation of the spec's rules).
        let pdus: HashMap<String, Pdu> = loaded
            .values()
            .map(|e| to_pdu(e, &room_id, &rules).map(|p| (e.row.event_id.clone(), p)))
            .collect::<Result<_>>()?;
        state_res::check_state_independent_auth_rules(&rules.authorization, &pdu, |id: &EventId| pdus.get(id.as_str()).cloned())
            .map_err(forbidden)?;
        let by_key: HashMap<(String, String), Pdu> = state_ids
            .iter()
            .filter_map(|(k, id)| pdus.get(id).map(|p| (k.clone(), p.clone())))
            .collect();
        state_res::check_state_dependent_auth_rules(&rules.authorization, &pdu, |t: &StateEventType, k: &str| {
            by_key.get(&(t.to_string(), k.to_owned())).cloned()
        })
        .map_err(forbidden)?;

        self.store_locked(room, None, &built.event_id, &built.json, &pdu, &prev_ids, &auth_ids, txn).await?;
        Ok(built.event_id)
    }

    /// Writes an authorised event, its state and memberships in one transaction, then wakes
    /// /sync.
    #[allow(clippy::too_many_arguments)]
    async fn store_locked(
        &self,
        room: &RoomRow,
        // Set for the create event: the room row is written in the same transaction.
        new_room: Option<(&str, i64)>,
        event_id: &EventId,
        json: &CanonicalJsonObject,
        pdu: &Pdu,
        prev_ids: &[String],
        auth_ids: &[String],
        txn: Option<Txn<'_>>,
    ) -> Result<i64> {
        let text = serde_json::to_string(json).map_err(Error::internal)?;
        let mut tx = self.db.write.begin().await?;
        if let Some((creator, now)) = new_room {
            storage::rooms::insert(&mut *tx, &room.room_id, &room.room_version, creator, now).await?;
        }
        let state_group = match &pdu.state_key {
            Some(k) => {
                let mut delta = storage::state::StateMap::new();
                delta.insert((pdu.kind.to_string(), k.clone()), event_id.to_string());
                Some(storage::state::create(&mut tx, &room.room_id, room.current_state_group, &delta).await?)
            }
            None => room.current_state_group,
        };
        let stream = storage::events::insert(
            &mut tx,
            &storage::events::NewEvent {
                event_id: event_id.as_str(),
                room_id: &room.room_id,
                event_type: &pdu.kind.to_string(),
                state_key: pdu.state_key.as_deref(),
                sender: pdu.sender.as_str(),
                origin_server_ts: u64::from(pdu.origin_server_ts.0) as i64,
                depth: pdu.depth as i64,
                pdu: &text,
                rejected: false,
                state_group,
                txn: txn.map(|t| (t.user_id, t.device_id, t.txn_id)),
                prev_events: prev_ids,
                auth_events: auth_ids,
            },
        )
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Error::matrix(
                StatusCode::CONFLICT,
                ErrorKind::Unknown,
                "This transaction ID was already used for another event",
            ),
            _ => e.into(),
        })?;
        storage::events::advance_extremities(&mut tx, &room.room_id, event_id.as_str(), prev_ids).await?;
        let content = pdu.content_value();
        // Full-text index: message bodies, room names and topics.
        let searchable = match pdu.kind.to_string().as_str() {
            "m.room.message" => content["body"].as_str().map(|b| ("content.body", b)),
            "m.room.name" => content["name"].as_str().map(|b| ("content.name", b)),
            "m.room.topic" => content["topic"].as_str().map(|b| ("content.topic", b)),
            _ => None,
        };
        if let Some((key, body)) = searchable {
            storage::search::index(&mut tx, event_id.as_str(), &room.room_id, stream, key, body).await?;
        }
        if let Some((parent, rel_type)) = relations::relation_of(&content) {
            storage::relations::insert(
                &mut tx,
                event_id.as_str(),
                parent,
                rel_type,
                &room.room_id,
                pdu.sender.as_str(),
                &pdu.kind.to_string(),
                stream,
            )
            .await?;
        }
        if let (Some(k), Some(group)) = (&pdu.state_key, state_group) {
            storage::rooms::set_current_state(&mut tx, &room.room_id, &pdu.kind.to_string(), k, event_id.as_str()).await?;
            storage::rooms::set_current_state_group(&mut *tx, &room.room_id, group).await?;
            if pdu.kind == TimelineEventType::RoomMember {
                let membership = pdu.content_value()["membership"].as_str().unwrap_or("leave").to_owned();
                storage::rooms::set_membership(&mut tx, &room.room_id, k, &membership, event_id.as_str(), stream).await?;
            }
        }
        tx.commit().await?;
        // Push rules are evaluated before /sync is woken, so the unread counts it sends already
        // include this event. A failure here must not fail the send that already happened.
        let view = crate::matrix::client_event::format(
            &crate::matrix::client_event::View { json, event_id: event_id.as_str(), room_id: &room.room_id, txn: None },
            false,
            None,
            now_ms(),
        );
        if let Ok(room_id) = RoomId::parse(&room.room_id) {
            if let Err(e) = self.evaluate_push(&room_id, event_id.as_str(), stream, &view).await {
                tracing::warn!(%event_id, error = %e, "could not evaluate push rules");
            }
        }
        self.head.fetch_max(stream, Ordering::AcqRel);
        self.notifier.notify();
        Ok(stream)
    }

    /// The state of the room just after stream position `at` (None before the room existed).
    pub async fn state_at(&self, room_id: &str, at: i64) -> Result<storage::state::StateMap> {
        match storage::events::state_group_at(&self.db.read, room_id, at).await? {
            Some(g) => Ok(storage::state::load(&self.db.read, g).await?),
            None => Ok(Default::default()),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

fn now_ts() -> MilliSecondsSinceUnixEpoch {
    MilliSecondsSinceUnixEpoch(UInt::try_from(now_ms()).unwrap_or_default())
}

fn forbidden(msg: String) -> Error {
    Error::forbidden(format!("The room's rules refuse this event: {msg}"))
}

fn pdu_error(e: pdu::PduError) -> Error {
    if e.0.contains("65536") {
        Error::too_large("The event is larger than 65536 bytes")
    } else {
        Error::bad_json(e.0)
    }
}

/// Client content must be canonical JSON (no floats, integers within ±2^53).
pub fn to_canonical_object(content: serde_json::Value) -> Result<CanonicalJsonObject> {
    match CanonicalJsonValue::try_from(content) {
        Ok(CanonicalJsonValue::Object(o)) => Ok(o),
        Ok(_) => Err(Error::bad_json("Event content must be a JSON object")),
        Err(e) => Err(Error::bad_json(format!("Event content is not canonical JSON: {e}"))),
    }
}

pub fn content_of(json: &CanonicalJsonObject) -> serde_json::Value {
    json.get("content").cloned().map(serde_json::Value::from).unwrap_or_else(|| serde_json::json!({}))
}

/// Parses a stored event; a redacted event reads as its redacted form everywhere.
pub fn parse_row(row: EventRow) -> Result<StoredEvent> {
    let text = row.redacted_json.as_deref().unwrap_or(&row.pdu);
    let json: CanonicalJsonObject = serde_json::from_str(text).map_err(Error::internal)?;
    Ok(StoredEvent { row, json })
}

fn to_pdu(e: &StoredEvent, room_id: &RoomId, rules: &RoomVersionRules) -> Result<Pdu> {
    let mut p = Pdu::from_json(&e.json, EventId::parse(&e.row.event_id).map_err(Error::internal)?, room_id.to_owned(), rules)
        .map_err(Error::internal)?;
    p.rejected = e.row.rejected;
    Ok(p)
}
