//! Query parameters and body fields as Synapse's admin API reads them, with its errors: integers
//! that are non-negative, booleans that are exactly `true` or `false`, `dir` that is `f` or `b`.

use std::collections::HashMap;

use axum::extract::Query;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The query string, as Synapse's servlets read it: by name.
pub type Params = Query<HashMap<String, String>>;

/// A non-negative integer (`default` when absent).
pub fn int(q: &HashMap<String, String>, name: &str, default: i64) -> Result<i64> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            Error::invalid_param(format!("Query parameter {name} must be a string representing a positive integer."))
        }),
    }
}

/// `true` or `false` (None when absent).
pub fn boolean(q: &HashMap<String, String>, name: &str) -> Result<Option<bool>> {
    match q.get(name).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => {
            Err(Error::invalid_param(format!("Boolean query parameter {name} must be one of ['true', 'false']")))
        }
    }
}

/// `dir`: `f` or `b`; whether backwards (`default_backwards` when absent).
pub fn backwards(q: &HashMap<String, String>, default_backwards: bool) -> Result<bool> {
    match q.get("dir").map(String::as_str) {
        None => Ok(default_backwards),
        Some("f") => Ok(false),
        Some("b") => Ok(true),
        Some(_) => Err(Error::invalid_param("Unknown direction: dir must be f or b")),
    }
}

/// A boolean body field that must be there: 400 M_MISSING_PARAM when absent, `wrong` when it
/// is not a boolean (Synapse's servlets differ in that errcode).
pub fn required_bool(body: &Map<String, Value>, key: &str, wrong: fn(String) -> Error) -> Result<bool> {
    match body.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(wrong(format!("'{key}' parameter is not of type boolean"))),
        None => Err(Error::missing_param(format!("Missing param '{key}'"))),
    }
}

/// An optional boolean body field with its default: 400 M_BAD_JSON when it is not a boolean
/// (Synapse's room delete: "Param 'block' must be a boolean, if given").
pub fn optional_bool(body: &Map<String, Value>, key: &str, default: bool) -> Result<bool> {
    match body.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::bad_json(format!("Param '{key}' must be a boolean, if given"))),
    }
}

/// An optional string body field: 400 M_BAD_JSON when it is there and not a string (null is
/// absent).
pub fn optional_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::bad_json(format!("Param '{key}' must be a string, if given"))),
    }
}

/// The `filter` query parameter (a `RoomEventFilter` as JSON), as Synapse's `/messages` and
/// `/context` read it: 400 M_NOT_JSON when it is not a JSON object.
pub fn event_filter(q: &HashMap<String, String>) -> Result<Option<crate::matrix::filter::EventFilter>> {
    let Some(raw) = q.get("filter") else { return Ok(None) };
    match serde_json::from_str::<Value>(raw) {
        Ok(v @ Value::Object(_)) => Ok(Some(crate::matrix::filter::EventFilter::from_json(&v))),
        _ => Err(Error::not_json("Query parameter 'filter' must be a valid JSON object")),
    }
}

/// A JSON object body that may be empty (Synapse's `allow_empty_body`): 400 M_NOT_JSON when
/// it is something else.
pub fn optional_body(body: &[u8]) -> Result<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    serde_json::from_slice(body).map_err(|_| Error::not_json("Content not JSON."))
}
