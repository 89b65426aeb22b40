//! JSON text parsed straight into ruma's canonical JSON types.
//!
//! ruma's own `Deserialize` for `CanonicalJsonValue` builds a `serde_json::Value` of each value
//! first and then converts it, so every map is built twice and every string moved twice. Events
//! read from the database are parsed this way on every cache miss (an initial sync of a user in
//! thousands of rooms parses tens of thousands of them), so this builds the canonical values in
//! one pass. The rules are ruma's: integers within ±(2^53 - 1), no floats.

use std::fmt;

use ruma::{CanonicalJsonObject, CanonicalJsonValue, Int};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON object's text as canonical JSON.
pub fn parse_object(text: &str) -> serde_json::Result<CanonicalJsonObject> {
    let Object(obj) = serde_json::from_str(text)?;
    Ok(obj)
}

/// Whether a JSON object's text is canonical JSON as [`parse_object`] takes it, checked without
/// building anything.
pub fn check(text: &str) -> serde_json::Result<()> {
    let Checked = serde_json::from_str(text)?;
    Ok(())
}

/// A value that was checked and dropped (see [`check`]).
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckVisitor)
    }
}

struct CheckVisitor;

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a canonical JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Checked, E> {
        integer(Some(v)).map(|_| Checked)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Checked, E> {
        integer(i64::try_from(v).ok()).map(|_| Checked)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Checked, E> {
        ValueVisitor.visit_f64(v).map(|_| Checked)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
        Ok(Checked)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while let Some(Checked) = seq.next_element()? {}
        Ok(Checked)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while let Some((de::IgnoredAny, Checked)) = map.next_entry()? {}
        Ok(Checked)
    }
}

/// One canonical JSON value, deserialised without an intermediate `serde_json::Value`.
struct Value(CanonicalJsonValue);

/// A canonical JSON object (anything else is a type error, as for ruma's `CanonicalJsonObject`).
struct Object(CanonicalJsonObject);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ObjectVisitor)
    }
}

fn integer<E: de::Error>(n: Option<i64>) -> Result<Value, E> {
    // ruma's message for the same case, so a stored or received value fails alike.
    n.and_then(|n| Int::try_from(n).ok())
        .map(|i| Value(CanonicalJsonValue::Integer(i)))
        .ok_or_else(|| E::custom("integer is out of the range of canonical JSON"))
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a canonical JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value(CanonicalJsonValue::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        integer(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        integer(i64::try_from(v).ok())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Err(E::custom("float cannot be serialized as canonical JSON"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value(CanonicalJsonValue::String(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value(CanonicalJsonValue::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value(CanonicalJsonValue::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(Value(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value(CanonicalJsonValue::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        ObjectVisitor.visit_map(map).map(|Object(o)| Value(CanonicalJsonValue::Object(o)))
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let mut out = CanonicalJsonObject::new();
        // A key given twice keeps its last value, as serde_json's own maps do.
        while let Some((k, Value(v))) = map.next_entry::<String, Value>()? {
            out.insert(k, v);
        }
        Ok(Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ruma's parse (through `serde_json::Value`): the reference this one must agree with.
    fn ruma(text: &str) -> Result<CanonicalJsonObject, String> {
        serde_json::from_str::<CanonicalJsonObject>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_as_ruma_does() {
        let documents = [
            r#"{"auth_events":["$a","$b"],"content":{"body":"h\u00e9llo \"q\" \\ \n","n":[1,-2,{"x":null}],"t":true,"f":false},"depth":9007199254740991,"origin_server_ts":1796579387320,"type":"m.room.message"}"#,
            r#"{"k":1,"k":2}"#,
            r#"{"min":-9007199254740991,"empty":{},"list":[]}"#,
            "{}",
        ];
        for text in documents {
            assert!(check(text).is_ok(), "{text}");
            assert_eq!(
                parse_object(text).map_err(|e| e.to_string()).map(|o| format!("{o:?}")),
                ruma(text).map(|o| format!("{o:?}")),
                "{text}"
            );
        }
        // What ruma refuses, refused here too.
        for text in [
            r#"{"n":1.5}"#,
            r#"{"n":1e3}"#,
            r#"{"n":9007199254740992}"#,
            r#"{"n":-9007199254740992}"#,
            r#"{"n":18446744073709551615}"#,
            r#"{"n":99999999999999999999999}"#,
            "[1]",
            r#""s""#,
            r#"{"a":}"#,
            r#"{"a":1"#,
        ] {
            assert!(ruma(text).is_err(), "ruma takes {text}");
            assert!(parse_object(text).is_err(), "{text} was taken");
            if text.starts_with('{') {
                assert!(check(text).is_err(), "{text} passed the check");
            }
        }
    }
}
