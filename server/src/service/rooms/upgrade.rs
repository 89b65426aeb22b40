//! Room upgrades (spec: "Room Upgrades", server behaviour): a new room of the new version with
//! the old room's important state, a tombstone in the old room pointing at it, the old room
//! restricted so conversation moves over, and local aliases and directory listing moved.

use ruma::{OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId, api::error::ErrorKind, events::StateEventType};
use serde_json::{Value, json};

use super::{
    Rooms, content_of,
    create::{CreateRoom, Preset, supported},
    rules_for,
};
use crate::{
    error::{Error, Result},
    storage,
};

/// State carried over to the new room (besides power levels, handled on their own).
const CARRIED: &[&str] = &[
    "m.room.server_acl",
    "m.room.encryption",
    "m.room.name",
    "m.room.avatar",
    "m.room.topic",
    "m.room.guest_access",
    "m.room.history_visibility",
    "m.room.join_rules",
];

impl Rooms {
    pub async fn upgrade(
        &self,
        room_id: &RoomId,
        user: &UserId,
        new_version: RoomVersionId,
        additional_creators: Vec<OwnedUserId>,
    ) -> Result<OwnedRoomId> {
        if !supported(&new_version) {
            return Err(Error::matrix(
                http::StatusCode::BAD_REQUEST,
                ErrorKind::UnsupportedRoomVersion,
                format!("Room version {new_version} is not supported; use 1 to 12"),
            ));
        }
        if self.room(room_id).await?.is_none() {
            return Err(Error::not_found("Unknown room"));
        }
        let power = self.power_levels(room_id).await?;
        if !power.user_can_send_state(user, StateEventType::RoomTombstone) {
            return Err(Error::forbidden("You need the power to send m.room.tombstone to upgrade this room"));
        }
        let (_, new_rules) = rules_for(new_version.as_str())?;

        let old_create = self
            .current_state_event(room_id, "m.room.create", "")
            .await?
            .ok_or_else(|| Error::internal("no create event"))?;
        let old_create = content_of(old_create.json());
        let mut creation = serde_json::Map::new();
        creation.insert("predecessor".into(), json!({ "room_id": room_id }));
        for key in ["type", "m.federate"] {
            if let Some(v) = old_create.get(key) {
                creation.insert(key.into(), v.clone());
            }
        }
        if !additional_creators.is_empty() {
            if !new_rules.authorization.additional_room_creators {
                return Err(Error::invalid_param("additional_creators needs room version 12 or later"));
            }
            creation.insert("additional_creators".into(), json!(additional_creators));
        }

        let mut power_content = self
            .current_state_event(room_id, "m.room.power_levels", "")
            .await?
            .map(|e| content_of(e.json()))
            .unwrap_or_else(|| json!({}));
        if let Some(users) = power_content.get_mut("users").and_then(Value::as_object_mut) {
            if new_rules.authorization.explicitly_privilege_room_creators {
                // Creators have infinite power in v12 and must not be listed.
                users.remove(user.as_str());
                for c in &additional_creators {
                    users.remove(c.as_str());
                }
            } else {
                users.insert(user.to_string(), json!(100));
            }
        } else if !new_rules.authorization.explicitly_privilege_room_creators {
            power_content["users"] = json!({ user.as_str(): 100 });
        }
        if new_rules.authorization.explicitly_privilege_room_creators {
            let state_default = power_content["state_default"].as_i64().unwrap_or(50);
            power_content["events"]["m.room.tombstone"] = json!((state_default + 50).max(150));
        }

        let mut initial_state = Vec::new();
        for t in CARRIED {
            if let Some(e) = self.current_state_event(room_id, t, "").await? {
                initial_state.push(((*t).to_owned(), String::new(), content_of(e.json())));
            }
        }
        let was_public = storage::rooms::is_public(&self.db.read, room_id.as_str()).await?.unwrap_or(false);
        // Where room IDs are not the create event's hash (before v12), the new room's ID is
        // chosen first and the tombstone sent first, so the new room's create event names it
        // (`predecessor.event_id`, as Synapse writes it). In v12 the new room's ID exists only
        // once its create event does, so the tombstone comes after.
        let tombstone =
            |replacement: &RoomId| json!({ "body": "This room has been replaced", "replacement_room": replacement });
        let named_first = (!new_rules.authorization.room_create_event_id_as_room_id)
            .then(|| RoomId::new_v1(&self.config.server_name));
        if let Some(new_id) = &named_first {
            let event_id = self.send(room_id, user, "m.room.tombstone", Some(""), tombstone(new_id), None).await?;
            creation.insert("predecessor".into(), json!({ "room_id": room_id, "event_id": event_id }));
        }
        let new_room = self
            .create_room(CreateRoom {
                creator: user.to_owned(),
                version: new_version,
                preset: Preset::PrivateChat,
                publish: was_public,
                alias_localpart: None,
                name: None,
                topic: None,
                invite: vec![],
                is_direct: false,
                initial_state,
                creation_content: Some(creation),
                power_level_content_override: power_content.as_object().cloned(),
                room_id: named_first.clone(),
            })
            .await?;

        // The old room points at the new one and stops being usable for conversation.
        if named_first.is_none() {
            self.send(room_id, user, "m.room.tombstone", Some(""), tombstone(&new_room), None).await?;
        }
        let mut restricted = self
            .current_state_event(room_id, "m.room.power_levels", "")
            .await?
            .map(|e| content_of(e.json()))
            .unwrap_or_else(|| json!({}));
        let users_default = restricted["users_default"].as_i64().unwrap_or(0);
        let needed = (users_default + 1).max(50);
        restricted["events_default"] = json!(needed.max(restricted["events_default"].as_i64().unwrap_or(0)));
        restricted["invite"] = json!(needed.max(restricted["invite"].as_i64().unwrap_or(0)));
        if let Err(e) = self.send(room_id, user, "m.room.power_levels", Some(""), restricted, None).await {
            tracing::warn!(%room_id, error = %e, "could not restrict the old room after upgrading it");
        }

        // Local aliases and the directory listing move to the new room.
        storage::rooms::move_aliases(&self.db.write, room_id.as_str(), new_room.as_str()).await?;
        if let Some(alias) = self.current_state_event(room_id, "m.room.canonical_alias", "").await? {
            let content = content_of(alias.json());
            if content.as_object().is_some_and(|o| !o.is_empty()) {
                self.send(&new_room, user, "m.room.canonical_alias", Some(""), content, None).await?;
                let _ = self.send(room_id, user, "m.room.canonical_alias", Some(""), json!({}), None).await;
            }
        }
        if was_public {
            storage::rooms::set_public(&self.db.write, room_id.as_str(), false).await?;
        }
        tracing::info!(old = %room_id, new = %new_room, "room upgraded");
        Ok(new_room)
    }
}
