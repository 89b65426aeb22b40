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
    // One pass over the PDU's keys (sorted, as canonical JSON keeps them) rather than a lookup
    // per key shown: this runs for every event of every /sync, and the lookups' string
    // comparisons were a fifth of an initial sync's time.
    let mut fields: Vec<(String, Value)> = Vec::with_capacity(8);
    let (mut redacts, mut ts, mut unsigned, mut sender) = (None, None, Map::new(), None);
    for (key, val) in v.json {
        match key.as_str() {
            "content" | "state_key" | "type" => fields.push((key.clone(), to_value(val))),
            "sender" => {
                if let ruma::CanonicalJsonValue::String(s) = val {
                    sender = Some(s.as_str());
                }
                fields.push((key.clone(), to_value(val)));
            }
            "origin_server_ts" => {
                if let ruma::CanonicalJsonValue::Integer(i) = val {
                    ts = Some(i64::from(*i));
                }
                fields.push((key.clone(), to_value(val)));
            }
            "redacts" => redacts = Some(val),
            // Stored unsigned data (redacted_because) is kept; age and transaction_id are per view.
            "unsigned" => {
                if let Value::Object(m) = to_value(val) {
                    unsigned = m;
                }
            }
            _ => {}
        }
    }
    let mut out: Map<String, Value> = fields.into_iter().collect();
    out.insert("event_id".into(), json!(v.event_id));
    if with_room_id {
        out.insert("room_id".into(), json!(v.room_id));
    }
    if out.get("type").and_then(Value::as_str) == Some("m.room.redaction") {
        // Top-level `redacts` for clients of every room version (v11 moved it into content).
        let redacts = redacts.map(to_value).or_else(|| out["content"].get("redacts").cloned());
        if let Some(r) = redacts {
            out.insert("redacts".into(), r);
        }
    }
    unsigned.insert("age".into(), json!((now_ms - ts.unwrap_or(now_ms)).max(0)));
    if let (Some(viewer), Some((device, txn))) = (viewer, v.txn)
        && sender == Some(viewer.user_id)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pdu(v: Value) -> CanonicalJsonObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn shows_the_client_fields_only_with_per_view_unsigned_data() {
        let json = pdu(json!({
            "auth_events": ["$a"], "prev_events": ["$p"], "depth": 3, "hashes": {"sha256": "x"},
            "signatures": {"hearth.test": {"ed25519:a": "s"}}, "room_id": "!r:hearth.test",
            "type": "m.room.message", "sender": "@alice:hearth.test", "origin_server_ts": 1_000,
            "content": {"body": "hi", "msgtype": "m.text"}, "unsigned": {"redacted_because": {"type": "x"}},
        }));
        let view = View { json: &json, event_id: "$e", room_id: "!r:hearth.test", txn: Some(("DEV", "t1")) };
        let alice = Viewer { user_id: "@alice:hearth.test", device_id: "DEV" };
        let v = format(&view, false, Some(&alice), 1_500);
        assert_eq!(
            v,
            json!({
                "type": "m.room.message", "sender": "@alice:hearth.test", "origin_server_ts": 1_000,
                "content": {"body": "hi", "msgtype": "m.text"}, "event_id": "$e",
                "unsigned": {"redacted_because": {"type": "x"}, "age": 500, "transaction_id": "t1"},
            })
        );
        // Another device of the sender, or someone else, does not see the transaction ID.
        for viewer in [
            Viewer { user_id: "@alice:hearth.test", device_id: "OTHER" },
            Viewer { user_id: "@bob:hearth.test", device_id: "DEV" },
        ] {
            let v = format(&view, true, Some(&viewer), 1_500);
            assert_eq!(v["unsigned"].get("transaction_id"), None);
            assert_eq!(v["room_id"], "!r:hearth.test");
        }
    }

    #[test]
    fn a_redaction_has_redacts_at_the_top_in_every_room_version() {
        let old = pdu(
            json!({"type": "m.room.redaction", "sender": "@a:x", "origin_server_ts": 1, "redacts": "$old", "content": {}}),
        );
        let v11 = pdu(
            json!({"type": "m.room.redaction", "sender": "@a:x", "origin_server_ts": 1, "content": {"redacts": "$new"}}),
        );
        for (json, target) in [(old, "$old"), (v11, "$new")] {
            let view = View { json: &json, event_id: "$r", room_id: "!r:x", txn: None };
            assert_eq!(format(&view, false, None, 1)["redacts"], target);
        }
    }
}
