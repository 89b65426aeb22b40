//! The client-server event format (spec: Client-Server API, "Room event format"): what /sync,
//! /messages, /event and /state show of a stored PDU.

use ruma::CanonicalJsonObject;
use serde_json::{Map, Value};

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

/// Formats an event as a JSON value. `with_room_id` is false inside /sync room blocks, true
/// elsewhere. The same rule as [`ClientEvent`], which /sync writes out without the value.
pub fn format(v: &View<'_>, with_room_id: bool, viewer: Option<&Viewer<'_>>, now_ms: i64) -> Value {
    serde_json::to_value(ClientEvent::client(v, with_room_id, viewer, now_ms)).unwrap_or_default()
}

/// Where a client event's PDU comes from: a borrowed [`View`], or the event cache's shared copy.
pub trait Pdu {
    fn json(&self) -> &CanonicalJsonObject;
    fn event_id(&self) -> &str;
    fn room_id(&self) -> &str;
    /// (device_id, txn_id) of the device that sent it, if any.
    fn txn(&self) -> Option<(&str, &str)>;
    /// The fields filters and room blocks read of every event: a stored event has them in its
    /// row, without a lookup in the PDU's map each time.
    fn event_type(&self) -> &str {
        str_of(self.json(), "type").unwrap_or("")
    }
    fn sender(&self) -> &str {
        str_of(self.json(), "sender").unwrap_or("")
    }
    fn state_key(&self) -> Option<&str> {
        str_of(self.json(), "state_key")
    }
    fn origin_server_ts(&self) -> Option<i64> {
        origin_server_ts(self.json())
    }
    /// The PDU's `content` already written as JSON, when the source keeps it so; otherwise it
    /// is written from the PDU's map.
    fn content_json(&self) -> Option<&serde_json::value::RawValue> {
        None
    }
    /// The rest of what a client is shown, when the source has it without the PDU's map (a
    /// stored event read from the database): then the map is not built to write the event.
    fn shown(&self) -> Option<Shown<'_>> {
        None
    }
    /// The event's [`client_head`], when the source keeps it (the event cache, whose copy every
    /// member's /sync writes out).
    fn client_head(&self) -> Option<&str> {
        None
    }
}

/// See [`Pdu::shown`]: with it, a client event is written from the PDU's row and these.
pub struct Shown<'a> {
    /// The PDU's top-level `redacts` (a redaction in room versions before 11).
    pub redacts: Option<&'a serde_json::value::RawValue>,
}

/// The PDU's `origin_server_ts`, if it is an integer.
pub fn origin_server_ts(json: &CanonicalJsonObject) -> Option<i64> {
    match json.get("origin_server_ts") {
        Some(ruma::CanonicalJsonValue::Integer(i)) => Some(i64::from(*i)),
        _ => None,
    }
}

impl Pdu for View<'_> {
    fn json(&self) -> &CanonicalJsonObject {
        self.json
    }
    fn event_id(&self) -> &str {
        self.event_id
    }
    fn room_id(&self) -> &str {
        self.room_id
    }
    fn txn(&self) -> Option<(&str, &str)> {
        self.txn
    }
}

impl<P: Pdu> Pdu for &P {
    fn json(&self) -> &CanonicalJsonObject {
        (*self).json()
    }
    fn event_id(&self) -> &str {
        (*self).event_id()
    }
    fn room_id(&self) -> &str {
        (*self).room_id()
    }
    fn txn(&self) -> Option<(&str, &str)> {
        (*self).txn()
    }
    fn event_type(&self) -> &str {
        (*self).event_type()
    }
    fn sender(&self) -> &str {
        (*self).sender()
    }
    fn state_key(&self) -> Option<&str> {
        (*self).state_key()
    }
    fn origin_server_ts(&self) -> Option<i64> {
        (*self).origin_server_ts()
    }
    fn content_json(&self) -> Option<&serde_json::value::RawValue> {
        (*self).content_json()
    }
    fn shown(&self) -> Option<Shown<'_>> {
        (*self).shown()
    }
    fn client_head(&self) -> Option<&str> {
        (*self).client_head()
    }
}

/// How an event is written: as clients see it (spec: "Room event format"), or as the PDU
/// servers exchange, with its ID (`event_format: "federation"` in a /sync filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Client { with_room_id: bool },
    Federation,
}

/// One event as a client sees it, written straight from the stored PDU when serialised.
///
/// /sync used to copy each PDU into a `serde_json::Value`, serialise that and drop it: more
/// than half of an initial sync's CPU. This keeps only what a view adds (the per-view
/// `unsigned` fields, and content redacted for this viewer) beside the shared PDU.
#[derive(Clone)]
pub struct ClientEvent<P> {
    pdu: P,
    shape: Shape,
    /// `unsigned.age` (client shape).
    age: Option<i64>,
    /// `unsigned.transaction_id`: shown to the device that sent it.
    transaction_id: bool,
    /// Other per-view `unsigned` fields (membership, m.relations). All of these are written
    /// after the stored ones and in place of any of the same name.
    unsigned: Vec<(&'static str, Value)>,
    /// Content in place of the PDU's (an erased sender's event, redacted for this viewer).
    content: Option<Value>,
}

impl<P: Pdu> ClientEvent<P> {
    /// The client format, with the per-view `unsigned` fields: `age`, and `transaction_id` for
    /// the device that sent it.
    pub fn client(pdu: P, with_room_id: bool, viewer: Option<&Viewer<'_>>, now_ms: i64) -> Self {
        let ts = pdu.origin_server_ts().unwrap_or(now_ms);
        let transaction_id = match (viewer, pdu.txn()) {
            (Some(viewer), Some((device, _))) => device == viewer.device_id && pdu.sender() == viewer.user_id,
            _ => false,
        };
        ClientEvent {
            pdu,
            shape: Shape::Client { with_room_id },
            age: Some((now_ms - ts).max(0)),
            transaction_id,
            unsigned: Vec::new(),
            content: None,
        }
    }

    /// The PDU as servers exchange it, with its ID (which the PDU itself omits).
    pub fn federation(pdu: P) -> Self {
        ClientEvent {
            pdu,
            shape: Shape::Federation,
            age: None,
            transaction_id: false,
            unsigned: Vec::new(),
            content: None,
        }
    }

    fn content_canonical(&self) -> Option<&ruma::CanonicalJsonValue> {
        self.pdu.json().get("content")
    }

    /// Whether the view writes `key` of `unsigned` itself.
    fn overrides(&self, key: &str) -> bool {
        (key == "age" && self.age.is_some())
            || (key == "transaction_id" && self.transaction_id)
            || self.unsigned.iter().any(|(k, _)| *k == key)
    }

    /// `event_id`, `room_id` when asked for, and a redaction's top-level `redacts` for
    /// clients of every room version (v11 moved it into content): what follows the PDU's own
    /// fields in a client event.
    fn write_ids<M: serde::ser::SerializeMap>(
        &self,
        map: &mut M,
        with_room_id: bool,
        redacts: Option<impl serde::Serialize>,
    ) -> Result<(), M::Error> {
        map.serialize_entry("event_id", self.pdu.event_id())?;
        if with_room_id {
            map.serialize_entry("room_id", self.pdu.room_id())?;
        }
        if self.pdu.event_type() == "m.room.redaction" {
            if let Some(r) = redacts {
                map.serialize_entry("redacts", &r)?;
            } else if let Some(r) = self.content_str("redacts") {
                map.serialize_entry("redacts", r)?;
            }
        }
        Ok(())
    }

    fn has_unsigned(&self, stored: Option<&CanonicalJsonObject>) -> bool {
        stored.is_some() || self.age.is_some() || self.transaction_id || !self.unsigned.is_empty()
    }

    /// Writes the event as serialising it does. An event of a /sync room block whose source
    /// keeps its [`client_head`] is written from that, and only its `unsigned` is written for
    /// this view: writing every field again for every member's /sync, escaping each string and
    /// key, was a fifth of an initial sync's instructions.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        if self.shape == (Shape::Client { with_room_id: false })
            && self.content.is_none()
            && let Some(head) = self.pdu.client_head()
        {
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(br#","unsigned":"#);
            serde_json::to_writer(&mut *out, &Unsigned { stored: None, event: self })?;
            out.push(b'}');
            return Ok(());
        }
        serde_json::to_writer(out, self)
    }
}

/// What every view of an event in a /sync room block starts with: the event written as a
/// client sees it, without `room_id`, up to its `unsigned` (`{"content":...,"event_id":"..."`,
/// without the closing brace). `None` for an event whose PDU has `unsigned` fields of its own,
/// which each view merges with its own. Written by the event's `Serialize`, so the two cannot
/// differ.
pub fn client_head<P: Pdu>(pdu: P) -> Option<Box<str>> {
    let bare = ClientEvent {
        pdu,
        shape: Shape::Client { with_room_id: false },
        age: None,
        transaction_id: false,
        unsigned: Vec::new(),
        content: None,
    };
    let text = serde_json::to_string(&bare).ok()?;
    text.strip_suffix(r#","unsigned":{}}"#).map(Into::into)
}

fn str_of<'a>(json: &'a CanonicalJsonObject, key: &str) -> Option<&'a str> {
    match json.get(key) {
        Some(ruma::CanonicalJsonValue::String(s)) => Some(s),
        _ => None,
    }
}

/// The stored `unsigned` object merged with a view's own fields, which win.
struct Unsigned<'a, P> {
    stored: Option<&'a CanonicalJsonObject>,
    event: &'a ClientEvent<P>,
}

impl<P: Pdu> serde::Serialize for Unsigned<'_, P> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let e = self.event;
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in self.stored.into_iter().flatten() {
            if !e.overrides(k) {
                map.serialize_entry(k, v)?;
            }
        }
        if let Some(age) = e.age {
            map.serialize_entry("age", &age)?;
        }
        if let (true, Some((_, txn))) = (e.transaction_id, e.pdu.txn()) {
            map.serialize_entry("transaction_id", txn)?;
        }
        for (k, v) in &e.unsigned {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<P: Pdu> serde::Serialize for ClientEvent<P> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use ruma::CanonicalJsonValue as C;
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        let mut stored_unsigned = None;
        let with_room_id = match self.shape {
            Shape::Client { with_room_id } => with_room_id,
            Shape::Federation => {
                for (key, val) in self.pdu.json() {
                    match (key.as_str(), val) {
                        ("event_id", _) => {}
                        ("unsigned", C::Object(o)) => stored_unsigned = Some(o),
                        ("unsigned", _) => {}
                        ("content", _) if self.content.is_some() => map.serialize_entry(key, &self.content)?,
                        _ => map.serialize_entry(key, val)?,
                    }
                }
                map.serialize_entry("event_id", self.pdu.event_id())?;
                if self.has_unsigned(stored_unsigned) {
                    map.serialize_entry("unsigned", &Unsigned { stored: stored_unsigned, event: self })?;
                }
                return map.end();
            }
        };
        if let Some(shown) = self.pdu.shown() {
            // Written from the row, without the PDU's map (see `Pdu::shown`), in the map's
            // order.
            match (&self.content, self.pdu.content_json()) {
                (Some(content), _) => map.serialize_entry("content", content)?,
                (None, Some(written)) => map.serialize_entry("content", written)?,
                (None, None) => {}
            }
            if let Some(ts) = self.pdu.origin_server_ts() {
                map.serialize_entry("origin_server_ts", &ts)?;
            }
            map.serialize_entry("sender", self.pdu.sender())?;
            if let Some(key) = self.pdu.state_key() {
                map.serialize_entry("state_key", key)?;
            }
            map.serialize_entry("type", self.pdu.event_type())?;
            self.write_ids(&mut map, with_room_id, shown.redacts)?;
            map.serialize_entry("unsigned", &Unsigned { stored: None, event: self })?;
            return map.end();
        }
        // One pass over the PDU's keys, writing only the fields clients are shown: the PDU's
        // own `event_id` and `room_id` (older room versions carry them) give way to the view's.
        let mut redacts = None;
        for (key, val) in self.pdu.json() {
            match key.as_str() {
                "content" => match (&self.content, self.pdu.content_json()) {
                    (Some(content), _) => map.serialize_entry(key, content)?,
                    (None, Some(written)) => map.serialize_entry(key, written)?,
                    (None, None) => map.serialize_entry(key, val)?,
                },
                "origin_server_ts" | "sender" | "state_key" | "type" => map.serialize_entry(key, val)?,
                "redacts" => redacts = Some(val),
                "unsigned" => {
                    if let C::Object(o) = val {
                        stored_unsigned = Some(o);
                    }
                }
                _ => {}
            }
        }
        self.write_ids(&mut map, with_room_id, redacts)?;
        map.serialize_entry("unsigned", &Unsigned { stored: stored_unsigned, event: self })?;
        map.end()
    }
}

/// The fields of an event that filters, visibility and aggregations read, and the per-view
/// data they add: the same for a JSON value and for a [`ClientEvent`].
pub trait EventView {
    fn event_id(&self) -> Option<&str>;
    /// Empty when missing.
    fn event_type(&self) -> &str;
    /// Empty when missing.
    fn sender(&self) -> &str;
    fn state_key(&self) -> Option<&str>;
    /// A string at the top of the content.
    fn content_str(&self, key: &str) -> Option<&str>;
    /// A copy of the content, if the event has one.
    fn content(&self) -> Option<Value>;
    /// Replaces the content shown (the event stays what it was).
    fn set_content(&mut self, content: Value);
    fn set_unsigned(&mut self, key: &'static str, value: Value);
}

impl EventView for Value {
    fn event_id(&self) -> Option<&str> {
        self["event_id"].as_str()
    }
    fn event_type(&self) -> &str {
        self["type"].as_str().unwrap_or("")
    }
    fn sender(&self) -> &str {
        self["sender"].as_str().unwrap_or("")
    }
    fn state_key(&self) -> Option<&str> {
        self["state_key"].as_str()
    }
    fn content_str(&self, key: &str) -> Option<&str> {
        self["content"][key].as_str()
    }
    fn content(&self) -> Option<Value> {
        self.get("content").cloned()
    }
    fn set_content(&mut self, content: Value) {
        if let Some(obj) = self.as_object_mut() {
            obj.insert("content".into(), content);
        }
    }
    fn set_unsigned(&mut self, key: &'static str, value: Value) {
        if let Some(obj) = self.as_object_mut() {
            let unsigned = obj.entry("unsigned").or_insert_with(|| Value::Object(Map::new()));
            if let Some(u) = unsigned.as_object_mut() {
                u.insert(key.to_owned(), value);
            }
        }
    }
}

impl<P: Pdu> EventView for ClientEvent<P> {
    fn event_id(&self) -> Option<&str> {
        Some(self.pdu.event_id())
    }
    fn event_type(&self) -> &str {
        self.pdu.event_type()
    }
    fn sender(&self) -> &str {
        self.pdu.sender()
    }
    fn state_key(&self) -> Option<&str> {
        self.pdu.state_key()
    }
    fn content_str(&self, key: &str) -> Option<&str> {
        match &self.content {
            Some(content) => content[key].as_str(),
            None => match self.content_canonical() {
                Some(ruma::CanonicalJsonValue::Object(o)) => str_of(o, key),
                _ => None,
            },
        }
    }
    fn content(&self) -> Option<Value> {
        match &self.content {
            Some(content) => Some(content.clone()),
            None => self.content_canonical().map(to_value),
        }
    }
    fn set_content(&mut self, content: Value) {
        self.content = Some(content);
    }
    fn set_unsigned(&mut self, key: &'static str, value: Value) {
        match self.unsigned.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.unsigned.push((key, value)),
        }
    }
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
    use serde_json::json;

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

    /// Each key once in the text written: a PDU of an old room version carries its own
    /// `event_id` and `room_id`, and a stored `unsigned.age` is the view's to give.
    #[test]
    fn written_out_each_field_appears_once() {
        let json = pdu(json!({
            "event_id": "$e", "room_id": "!r:x", "type": "m.room.message", "sender": "@a:x",
            "origin_server_ts": 1, "content": {"body": "hi"}, "unsigned": {"age": 99, "kept": 1},
        }));
        let view = View { json: &json, event_id: "$e", room_id: "!r:x", txn: None };
        let text = serde_json::to_string(&ClientEvent::client(&view, true, None, 11)).unwrap();
        for key in ["\"event_id\"", "\"room_id\"", "\"age\"", "\"unsigned\""] {
            assert_eq!(text.matches(key).count(), 1, "{key} in {text}");
        }
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["unsigned"], json!({"age": 10, "kept": 1}));
        assert_eq!(v, format(&view, true, None, 11));
    }

    /// What a view adds (membership, aggregations, content redacted for this viewer) reaches
    /// the text in both shapes, and the federation shape is the whole PDU with its ID.
    #[test]
    fn a_views_additions_are_written_in_both_shapes() {
        let json = pdu(json!({
            "type": "m.room.message", "sender": "@a:x", "origin_server_ts": 1, "depth": 4,
            "content": {"body": "secret", "msgtype": "m.text"}, "hashes": {"sha256": "h"},
        }));
        let view = View { json: &json, event_id: "$e", room_id: "!r:x", txn: None };
        let mut client = ClientEvent::client(&view, false, None, 1);
        let mut fed = ClientEvent::federation(&view);
        for e in [&mut client, &mut fed] {
            assert_eq!(e.content_str("body"), Some("secret"));
            e.set_unsigned("membership", json!("join"));
            e.set_content(json!({}));
            assert_eq!(e.content_str("body"), None);
            assert_eq!((e.event_type(), e.sender(), e.state_key()), ("m.room.message", "@a:x", None));
        }
        let client: Value = serde_json::to_value(&client).unwrap();
        assert_eq!(client["content"], json!({}));
        assert_eq!(client["unsigned"], json!({"age": 0, "membership": "join"}));
        assert_eq!(client.get("depth"), None);
        let fed: Value = serde_json::to_value(&fed).unwrap();
        assert_eq!(
            fed,
            json!({
                "type": "m.room.message", "sender": "@a:x", "origin_server_ts": 1, "depth": 4,
                "content": {}, "hashes": {"sha256": "h"}, "event_id": "$e",
                "unsigned": {"membership": "join"},
            })
        );
    }
}
