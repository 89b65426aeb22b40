//! The client-server event format (spec: Client-Server API, "Room event format"): what /sync,
//! /messages, /event and /state show of a stored PDU.

use ruma::CanonicalJsonObject;
use serde_json::{Map, Value, json};

/// One stored event as seen by a client.
pub struct View<'a> {
    pub json: &'a CanonicalJsonObject,
    pub event_id: &'a str,
    pub room_id: &'a str,
    /// (device_id, txn_id) of the device that sent it, if any.
    pub txn: Option<(&'a str, &'a str)>,
}

/// Who is looking, for `unsigned.transaction_id` (only the sending device sees it).
pub struct Viewer<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
}

/// Formats an event. `with_room_id` is false inside /sync room blocks, true elsewhere.
pub fn format(v: &View<'_>, with_room_id: bool, viewer: Option<&Viewer<'_>>, now_ms: i64) -> Value {
    let mut out = Map::new();
    for key in ["type", "content", "sender", "origin_server_ts", "state_key"] {
        if let Some(val) = v.json.get(key) {
            out.insert(key.to_owned(), to_value(val));
        }
    }
    out.insert("event_id".into(), json!(v.event_id));
    if with_room_id {
        out.insert("room_id".into(), json!(v.room_id));
    }
    if out.get("type").and_then(Value::as_str) == Some("m.room.redaction") {
        // Top-level `redacts` for clients of every room version (v11 moved it into content).
        let redacts = v.json.get("redacts").map(to_value).or_else(|| out["content"].get("redacts").cloned());
        if let Some(r) = redacts {
            out.insert("redacts".into(), r);
        }
    }
    let ts = out.get("origin_server_ts").and_then(Value::as_i64).unwrap_or(now_ms);
    // Stored unsigned data (redacted_because) is kept; age and transaction_id are per view.
    let mut unsigned = match v.json.get("unsigned") {
        Some(u) => match to_value(u) {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    unsigned.insert("age".into(), json!((now_ms - ts).max(0)));
    if let (Some(viewer), Some((device, txn))) = (viewer, v.txn)
        && out.get("sender").and_then(Value::as_str) == Some(viewer.user_id)
        && device == viewer.device_id
    {
        unsigned.insert("transaction_id".into(), json!(txn));
    }
    out.insert("unsigned".into(), Value::Object(unsigned));
    Value::Object(out)
}

/// The stripped state shown with invites (spec: "Stripped state").
pub fn stripped(json: &CanonicalJsonObject) -> Value {
    let mut out = Map::new();
    for key in ["type", "state_key", "content", "sender"] {
        if let Some(val) = json.get(key) {
            out.insert(key.to_owned(), to_value(val));
        }
    }
    Value::Object(out)
}

/// Canonical JSON as a serde_json value, converted in place of cloning the canonical tree
/// first (this runs for every event of every /sync).
pub fn to_value(v: &ruma::CanonicalJsonValue) -> Value {
    use ruma::CanonicalJsonValue as C;
    match v {
        C::Null => Value::Null,
        C::Bool(b) => Value::Bool(*b),
        C::Integer(i) => Value::from(i64::from(*i)),
        C::String(s) => Value::String(s.clone()),
        C::Array(a) => Value::Array(a.iter().map(to_value).collect()),
        C::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
    }
}
