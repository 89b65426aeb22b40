//! Relations (spec: "Forming relationships between events"): recording them, and bundling
//! aggregations into `unsigned.m.relations` of the events clients receive (edits, references,
//! threads).

use std::collections::{HashMap, HashSet};

use ruma::UserId;
use serde_json::{Value, json};

use super::Rooms;
use crate::{
    error::Result,
    matrix::client_event::{self, EventView, View, Viewer},
    storage::{self, now_ms, relations::RelationRow},
};

/// (relates_to event ID, rel_type) of an event's content, when it has a relation.
pub fn relation_of(content: &Value) -> Option<(&str, &str)> {
    let rel = content.get("m.relates_to")?;
    Some((rel.get("event_id")?.as_str()?, rel.get("rel_type")?.as_str()?))
}

impl Rooms {
    /// Adds bundled aggregations to client events of one room, as `viewer` may see them.
    pub async fn bundle<E: EventView>(&self, viewer: &UserId, room_id: &str, events: &mut [E]) -> Result<()> {
        let ids: Vec<String> = events.iter().filter_map(|e| e.event_id().map(str::to_owned)).collect();
        let children = storage::relations::children_of(&self.db.read, &ids).await?;
        if children.is_empty() {
            return Ok(());
        }
        let mut by_parent: HashMap<&str, Vec<&RelationRow>> = HashMap::new();
        for c in &children {
            by_parent.entry(c.relates_to_id.as_str()).or_default().push(c);
        }
        let mut check = self.visibility(viewer, room_id).await?;
        let mut to_load: HashSet<String> = HashSet::new();
        for e in events.iter() {
            let Some(rels) = e.event_id().and_then(|id| by_parent.get(id)) else { continue };
            if let Some(edit) = latest_edit(e, rels) {
                to_load.insert(edit.event_id.clone());
            }
            if let Some(last) = rels.iter().rfind(|r| r.rel_type == "m.thread") {
                to_load.insert(last.event_id.clone());
            }
        }
        let loaded = self.events(&to_load.into_iter().collect::<Vec<_>>()).await?;
        let mut views: HashMap<String, Value> = HashMap::new();
        let v = Viewer { user_id: viewer.as_str(), device_id: "" };
        for ev in loaded {
            if !check.allows(&ev.row).await? {
                continue;
            }
            let view = client_event::format(
                &View { json: ev.json(), event_id: &ev.row.event_id, room_id, txn: None },
                true,
                Some(&v),
                now_ms(),
            );
            views.insert(ev.row.event_id.clone(), view);
        }
        for e in events.iter_mut() {
            let Some(rels) = e.event_id().and_then(|id| by_parent.get(id)) else { continue };
            let mut bundle = serde_json::Map::new();
            if let Some(edit) = latest_edit(e, rels).and_then(|r| views.get(&r.event_id)) {
                bundle.insert("m.replace".into(), edit.clone());
            }
            let refs: Vec<Value> = rels
                .iter()
                .filter(|r| r.rel_type == "m.reference")
                .map(|r| json!({ "event_id": r.event_id }))
                .collect();
            if !refs.is_empty() {
                bundle.insert("m.reference".into(), json!({ "chunk": refs }));
            }
            let thread: Vec<&&RelationRow> = rels.iter().filter(|r| r.rel_type == "m.thread").collect();
            if let Some(latest) = thread.last().and_then(|r| views.get(&r.event_id)) {
                let participated = e.sender() == viewer.as_str() || thread.iter().any(|r| r.sender == viewer.as_str());
                bundle.insert(
                    "m.thread".into(),
                    json!({ "latest_event": latest, "count": thread.len(), "current_user_participated": participated }),
                );
            }
            if !bundle.is_empty() {
                e.set_unsigned("m.relations", Value::Object(bundle));
            }
        }
        Ok(())
    }
}

/// The edit that applies (spec: "Event replacements"): by the original sender, of the same
/// event type, the most recent one.
fn latest_edit<'a>(original: &impl EventView, rels: &[&'a RelationRow]) -> Option<&'a RelationRow> {
    if original.state_key().is_some() {
        return None;
    }
    let (sender, kind) = (original.sender(), original.event_type());
    rels.iter()
        .filter(|r| r.rel_type == "m.replace" && r.sender == sender && r.event_type == kind)
        .max_by_key(|r| r.stream_ordering)
        .copied()
}
