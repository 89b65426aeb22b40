//! Event filters (spec: "Filtering"): which events of which rooms a client wants, read from the
//! filter JSON (inline or stored).

use serde_json::Value;

use super::client_event::EventView;

/// A `RoomEventFilter` / `EventFilter`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub limit: Option<usize>,
    types: Option<Vec<String>>,
    not_types: Vec<String>,
    senders: Option<Vec<String>>,
    not_senders: Vec<String>,
    rooms: Option<Vec<String>>,
    not_rooms: Vec<String>,
    contains_url: Option<bool>,
    pub lazy_load_members: bool,
    /// With lazy loading: send timeline senders' member events every time, not only the first.
    pub include_redundant_members: bool,
    /// /sync counts notifications per thread, and the room's counts are for its main timeline.
    pub unread_thread_notifications: bool,
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
}

/// `*` at the end of a pattern matches any suffix (spec: filter `types`).
fn type_matches(pattern: &str, t: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => t.starts_with(prefix),
        None => pattern == t,
    }
}

impl EventFilter {
    pub fn from_json(v: &Value) -> EventFilter {
        EventFilter {
            limit: v["limit"].as_u64().map(|l| l as usize),
            types: strings(&v["types"]),
            not_types: strings(&v["not_types"]).unwrap_or_default(),
            senders: strings(&v["senders"]),
            not_senders: strings(&v["not_senders"]).unwrap_or_default(),
            rooms: strings(&v["rooms"]),
            not_rooms: strings(&v["not_rooms"]).unwrap_or_default(),
            contains_url: v["contains_url"].as_bool(),
            lazy_load_members: v["lazy_load_members"].as_bool().unwrap_or(false),
            include_redundant_members: v["include_redundant_members"].as_bool().unwrap_or(false),
            unread_thread_notifications: v["unread_thread_notifications"].as_bool().unwrap_or(false),
        }
    }

    pub fn allows_room(&self, room_id: &str) -> bool {
        !self.not_rooms.iter().any(|r| r == room_id)
            && self.rooms.as_ref().is_none_or(|rs| rs.iter().any(|r| r == room_id))
    }

    /// Whether a client-format event passes the filter.
    pub fn allows<E: EventView + ?Sized>(&self, event: &E) -> bool {
        let t = event.event_type();
        let sender = event.sender();
        if self.not_types.iter().any(|p| type_matches(p, t))
            || self.types.as_ref().is_some_and(|ts| !ts.iter().any(|p| type_matches(p, t)))
        {
            return false;
        }
        if self.not_senders.iter().any(|s| s == sender)
            || self.senders.as_ref().is_some_and(|ss| !ss.iter().any(|s| s == sender))
        {
            return false;
        }
        if let Some(want_url) = self.contains_url
            && event.content_str("url").is_some() != want_url
        {
            return false;
        }
        true
    }
}

/// The parts of a sync `Filter` the server applies.
#[derive(Debug, Clone, Default)]
pub struct SyncFilter {
    pub room: EventFilter,
    pub timeline: EventFilter,
    pub state: EventFilter,
    pub ephemeral: EventFilter,
    pub room_account_data: EventFilter,
    pub account_data: EventFilter,
    pub presence: EventFilter,
    pub include_leave: bool,
    /// `event_format: "federation"`: timeline and state events as the PDUs servers exchange.
    pub federation_format: bool,
}

impl SyncFilter {
    pub fn from_json(v: &Value) -> SyncFilter {
        SyncFilter {
            room: EventFilter::from_json(&v["room"]),
            timeline: EventFilter::from_json(&v["room"]["timeline"]),
            state: EventFilter::from_json(&v["room"]["state"]),
            ephemeral: EventFilter::from_json(&v["room"]["ephemeral"]),
            room_account_data: EventFilter::from_json(&v["room"]["account_data"]),
            account_data: EventFilter::from_json(&v["account_data"]),
            presence: EventFilter::from_json(&v["presence"]),
            include_leave: v["room"]["include_leave"].as_bool().unwrap_or(false),
            federation_format: v["event_format"] == "federation",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn types_senders_and_wildcards() {
        let f =
            EventFilter::from_json(&json!({"types": ["m.room.*"], "not_senders": ["@spam:x"], "contains_url": false}));
        assert!(f.allows(&json!({"type": "m.room.message", "sender": "@a:x", "content": {}})));
        assert!(!f.allows(&json!({"type": "m.reaction", "sender": "@a:x", "content": {}})));
        assert!(!f.allows(&json!({"type": "m.room.message", "sender": "@spam:x", "content": {}})));
        assert!(!f.allows(&json!({"type": "m.room.message", "sender": "@a:x", "content": {"url": "mxc://x/y"}})));
        let rooms = EventFilter::from_json(&json!({"rooms": ["!a:x"], "not_rooms": ["!b:x"]}));
        assert!(rooms.allows_room("!a:x") && !rooms.allows_room("!b:x") && !rooms.allows_room("!c:x"));
    }
}
