//! The persistent data unit: a room event exactly as its room version defines it (hashes,
//! signatures, auth_events, prev_events, depth), built, hashed and signed here with ruma's
//! helpers, and viewed through ruma's state-resolution `Event` trait for the auth rules.
//!
//! Pure functions over canonical JSON: no database, no HTTP.

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId,
    OwnedUserId, RoomId, RoomVersionId, UInt, UserId,
    events::TimelineEventType,
    room_version_rules::{EventIdFormatVersion, EventsReferenceFormatVersion, RoomVersionRules},
    signatures::{Ed25519KeyPair, hash_and_sign_event, reference_hash},
};
use serde_json::value::RawValue as RawJsonValue;

/// The spec's limit on a PDU's size (spec: "Size limits").
pub const MAX_PDU_BYTES: usize = 65_536;

/// A stored or freshly built room event.
#[derive(Clone, Debug)]
pub struct Pdu {
    pub event_id: OwnedEventId,
    /// The room, also for a v12 `m.room.create` (whose JSON has no `room_id`).
    pub room_id: OwnedRoomId,
    pub sender: OwnedUserId,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    pub kind: TimelineEventType,
    pub content: Box<RawJsonValue>,
    pub state_key: Option<String>,
    pub prev_events: Vec<OwnedEventId>,
    pub auth_events: Vec<OwnedEventId>,
    pub redacts: Option<OwnedEventId>,
    pub depth: u64,
    pub rejected: bool,
    /// `room_id` is absent from the JSON (v12 create events).
    room_id_in_json: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PduError(pub String);

fn e(msg: impl Into<String>) -> PduError {
    PduError(msg.into())
}

/// Reads the `["$id", ...]` or `[["$id", {hashes}], ...]` reference lists of any room version.
fn event_refs(obj: &CanonicalJsonObject, field: &str) -> Result<Vec<OwnedEventId>, PduError> {
    let Some(CanonicalJsonValue::Array(items)) = obj.get(field) else {
        return Err(e(format!("{field} must be an array")));
    };
    items
        .iter()
        .map(|item| {
            let id = match item {
                CanonicalJsonValue::String(s) => s.as_str(),
                CanonicalJsonValue::Array(pair) => match pair.first() {
                    Some(CanonicalJsonValue::String(s)) => s.as_str(),
                    _ => return Err(e(format!("bad entry in {field}"))),
                },
                _ => return Err(e(format!("bad entry in {field}"))),
            };
            EventId::parse(id).map_err(|err| e(format!("bad event ID in {field}: {err}")))
        })
        .collect()
}

fn string<'a>(obj: &'a CanonicalJsonObject, field: &str) -> Result<&'a str, PduError> {
    match obj.get(field) {
        Some(CanonicalJsonValue::String(s)) => Ok(s),
        _ => Err(e(format!("{field} must be a string"))),
    }
}

impl Pdu {
    /// Reads a signed PDU. `event_id` and `room_id` come from storage or from
    /// [`event_id_for`]: in v3+ the JSON does not carry the event ID, and a v12 create event
    /// carries no room ID.
    pub fn from_json(
        obj: &CanonicalJsonObject,
        event_id: OwnedEventId,
        room_id: OwnedRoomId,
        rules: &RoomVersionRules,
    ) -> Result<Pdu, PduError> {
        let kind: TimelineEventType = string(obj, "type")?.into();
        let content = match obj.get("content") {
            Some(c @ CanonicalJsonValue::Object(_)) => {
                serde_json::value::to_raw_value(c).map_err(|err| e(format!("content: {err}")))?
            }
            _ => return Err(e("content must be an object")),
        };
        let state_key = match obj.get("state_key") {
            None => None,
            Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
            Some(_) => return Err(e("state_key must be a string")),
        };
        let redacts = if rules.redaction.content_field_redacts {
            match obj.get("content") {
                Some(CanonicalJsonValue::Object(c)) => match c.get("redacts") {
                    Some(CanonicalJsonValue::String(s)) => EventId::parse(s).ok(),
                    _ => None,
                },
                _ => None,
            }
        } else {
            match obj.get("redacts") {
                Some(CanonicalJsonValue::String(s)) => EventId::parse(s).ok(),
                _ => None,
            }
        };
        let depth = match obj.get("depth") {
            Some(CanonicalJsonValue::Integer(i)) => {
                u64::try_from(i64::from(*i)).map_err(|_| e("depth must not be negative"))?
            }
            _ => return Err(e("depth must be an integer")),
        };
        let ts = match obj.get("origin_server_ts") {
            Some(CanonicalJsonValue::Integer(i)) => {
                UInt::try_from(i64::from(*i)).map_err(|_| e("origin_server_ts must not be negative"))?
            }
            _ => return Err(e("origin_server_ts must be an integer")),
        };
        Ok(Pdu {
            event_id,
            room_id,
            sender: UserId::parse(string(obj, "sender")?).map_err(|err| e(format!("sender: {err}")))?,
            origin_server_ts: MilliSecondsSinceUnixEpoch(ts),
            kind,
            content,
            state_key,
            prev_events: event_refs(obj, "prev_events")?,
            auth_events: event_refs(obj, "auth_events")?,
            redacts,
            depth,
            rejected: false,
            room_id_in_json: obj.contains_key("room_id"),
        })
    }

    /// The content as a JSON value.
    pub fn content_value(&self) -> serde_json::Value {
        serde_json::from_str(self.content.get()).unwrap_or_default()
    }
}

impl ruma::state_res::Event for Pdu {
    type Id = OwnedEventId;

    fn event_id(&self) -> &Self::Id {
        &self.event_id
    }
    fn room_id(&self) -> Option<&RoomId> {
        self.room_id_in_json.then_some(&*self.room_id)
    }
    fn sender(&self) -> &UserId {
        &self.sender
    }
    fn origin_server_ts(&self) -> MilliSecondsSinceUnixEpoch {
        self.origin_server_ts
    }
    fn event_type(&self) -> &TimelineEventType {
        &self.kind
    }
    fn content(&self) -> &RawJsonValue {
        &self.content
    }
    fn state_key(&self) -> Option<&str> {
        self.state_key.as_deref()
    }
    fn prev_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.prev_events.iter())
    }
    fn auth_events(&self) -> Box<dyn DoubleEndedIterator<Item = &Self::Id> + '_> {
        Box::new(self.auth_events.iter())
    }
    fn redacts(&self) -> Option<&Self::Id> {
        self.redacts.as_ref()
    }
    fn rejected(&self) -> bool {
        self.rejected
    }
}

/// What a new event needs besides its content: the graph position chosen by the room service.
pub struct NewPdu<'a> {
    pub room_version: &'a RoomVersionId,
    /// `None` only for a v12 `m.room.create`, whose ID is derived from the event itself.
    pub room_id: Option<&'a RoomId>,
    pub sender: &'a UserId,
    pub kind: &'a str,
    pub state_key: Option<&'a str>,
    pub content: CanonicalJsonObject,
    /// Each with its PDU where the room version puts its reference hash next to the ID (see
    /// [`references_carry_hashes`]); `None` elsewhere.
    pub prev_events: Vec<(OwnedEventId, Option<CanonicalJsonObject>)>,
    pub auth_events: Vec<(OwnedEventId, Option<CanonicalJsonObject>)>,
    pub depth: u64,
    pub origin_server_ts: MilliSecondsSinceUnixEpoch,
    /// For `m.room.redaction` in v1-10 rooms (v11+ put it in content).
    pub redacts: Option<&'a EventId>,
}

/// A built, hashed and signed event.
pub struct Built {
    pub json: CanonicalJsonObject,
    pub event_id: OwnedEventId,
    pub room_id: OwnedRoomId,
}

/// Whether events of this room version name the events they follow and are authorised by with
/// those events' reference hashes (v1 and v2), so building one needs their PDUs.
pub fn references_carry_hashes(rules: &RoomVersionRules) -> bool {
    matches!(rules.events_reference_format, EventsReferenceFormatVersion::V1)
}

/// Builds the PDU for `new`, adds its content hash and this server's signature, and computes its
/// event ID (and, for a v12 create event, the room ID), per the room version's rules.
pub fn build_and_sign(new: NewPdu<'_>, server_name: &str, key: &Ed25519KeyPair) -> Result<Built, PduError> {
    let rules = new.room_version.rules().ok_or_else(|| e("unsupported room version"))?;
    let refs = |list: Vec<(OwnedEventId, Option<CanonicalJsonObject>)>| -> Result<CanonicalJsonValue, PduError> {
        let items = list
            .into_iter()
            .map(|(id, json)| match rules.events_reference_format {
                EventsReferenceFormatVersion::V1 => {
                    let json = json.ok_or_else(|| e(format!("the PDU of {id} is needed for its reference hash")))?;
                    let hash = reference_hash(&json, &rules).map_err(|err| e(err.to_string()))?;
                    let mut hashes = CanonicalJsonObject::new();
                    hashes.insert("sha256".into(), CanonicalJsonValue::String(hash));
                    Ok(CanonicalJsonValue::Array(vec![
                        CanonicalJsonValue::String(id.to_string()),
                        CanonicalJsonValue::Object(hashes),
                    ]))
                }
                _ => Ok(CanonicalJsonValue::String(id.to_string())),
            })
            .collect::<Result<Vec<_>, PduError>>()?;
        Ok(CanonicalJsonValue::Array(items))
    };

    let mut obj = CanonicalJsonObject::new();
    obj.insert("type".into(), new.kind.into());
    obj.insert("sender".into(), new.sender.as_str().into());
    obj.insert("content".into(), CanonicalJsonValue::Object(new.content));
    if let Some(k) = new.state_key {
        obj.insert("state_key".into(), k.into());
    }
    if let Some(room_id) = new.room_id {
        obj.insert("room_id".into(), room_id.as_str().into());
    }
    obj.insert("prev_events".into(), refs(new.prev_events)?);
    obj.insert("auth_events".into(), refs(new.auth_events)?);
    obj.insert(
        "depth".into(),
        CanonicalJsonValue::Integer(ruma::Int::try_from(new.depth).map_err(|_| e("depth out of range"))?),
    );
    obj.insert("origin_server_ts".into(), CanonicalJsonValue::Integer(new.origin_server_ts.0.into()));
    if let Some(r) = new.redacts {
        obj.insert("redacts".into(), r.as_str().into());
    }

    // v1/v2: the server names the event, and the ID is covered by the hash and signature.
    let v1_id = match rules.event_id_format {
        EventIdFormatVersion::V1 => {
            let server = ruma::ServerName::parse(server_name).map_err(|err| e(err.to_string()))?;
            let id = EventId::new_v1(&server);
            obj.insert("event_id".into(), id.as_str().into());
            Some(id)
        }
        _ => None,
    };
    hash_and_sign_event(server_name, key, &mut obj, &rules.redaction).map_err(|err| match err {
        ruma::signatures::JsonError::PduTooLarge => e("event is larger than 65536 bytes"),
        other => e(other.to_string()),
    })?;
    let size = serde_json::to_vec(&obj).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_PDU_BYTES {
        return Err(e("event is larger than 65536 bytes"));
    }
    let event_id = match v1_id {
        Some(id) => id,
        None => event_id_for(&obj, &rules)?,
    };
    let room_id = match new.room_id {
        Some(r) => r.to_owned(),
        None => RoomId::new_v2(event_id.localpart_or_hash()).map_err(|err| e(err.to_string()))?,
    };
    Ok(Built { json: obj, event_id, room_id })
}

/// The event ID of a v3+ PDU: `$` and its reference hash.
pub fn event_id_for(obj: &CanonicalJsonObject, rules: &RoomVersionRules) -> Result<OwnedEventId, PduError> {
    let hash = reference_hash(obj, rules).map_err(|err| e(err.to_string()))?;
    EventId::new_v2_or_v3(&hash).map_err(|err| e(err.to_string()))
}

/// The part of an event ID after `$` (the reference hash in v3+).
trait EventIdExt {
    fn localpart_or_hash(&self) -> &str;
}

impl EventIdExt for EventId {
    fn localpart_or_hash(&self) -> &str {
        let s = self.as_str().trim_start_matches('$');
        s.split(':').next().unwrap_or(s)
    }
}

/// Completes an event another server built for one of our users (`make_join`, `make_leave`,
/// `make_knock`) as this server's own: `content` over the template's (which may carry what the
/// resident server needs, such as `join_authorised_via_users_server`), the time now, a new ID
/// in room versions 1 and 2, then hashed and signed. Returns the event and its ID.
pub fn complete_template(
    mut template: CanonicalJsonObject,
    content: CanonicalJsonObject,
    room_version: &RoomVersionId,
    server_name: &str,
    key: &Ed25519KeyPair,
    now: MilliSecondsSinceUnixEpoch,
) -> Result<(OwnedEventId, CanonicalJsonObject), PduError> {
    let rules = room_version.rules().ok_or_else(|| e("unsupported room version"))?;
    for field in ["signatures", "hashes", "unsigned", "event_id"] {
        template.remove(field);
    }
    let mut merged = match template.remove("content") {
        Some(CanonicalJsonValue::Object(c)) => c,
        _ => CanonicalJsonObject::new(),
    };
    merged.extend(content);
    template.insert("content".into(), CanonicalJsonValue::Object(merged));
    template.insert("origin_server_ts".into(), CanonicalJsonValue::Integer(now.0.into()));
    if template.contains_key("origin") {
        template.insert("origin".into(), server_name.into());
    }
    let v1_id = match rules.event_id_format {
        EventIdFormatVersion::V1 => {
            let server = ruma::ServerName::parse(server_name).map_err(|err| e(err.to_string()))?;
            let id = EventId::new_v1(&server);
            template.insert("event_id".into(), id.as_str().into());
            Some(id)
        }
        _ => None,
    };
    hash_and_sign_event(server_name, key, &mut template, &rules.redaction).map_err(|err| e(err.to_string()))?;
    let event_id = match v1_id {
        Some(id) => id,
        None => event_id_for(&template, &rules)?,
    };
    Ok((event_id, template))
}

/// Adds this server's signature to another server's event (an invite to one of our users, which
/// the spec has the invitee's server sign): like every event signature, over the event's
/// redacted form.
pub fn countersign(
    event: &mut CanonicalJsonObject,
    rules: &RoomVersionRules,
    server_name: &str,
    key: &Ed25519KeyPair,
) -> Result<(), PduError> {
    let mut redacted =
        ruma::canonical_json::redact(event.clone(), &rules.redaction, None).map_err(|err| e(err.to_string()))?;
    ruma::signatures::sign_json(server_name, key, &mut redacted).map_err(|err| e(err.to_string()))?;
    if let Some(signatures) = redacted.remove("signatures") {
        event.insert("signatures".into(), signatures);
    }
    Ok(())
}
