//! Spaces and room previews: the room summary (spec: GET /room_summary, MSC3266), the space
//! hierarchy (spec: "Spaces", GET /hierarchy), and restricted joins through space membership
//! (spec: room versions 8+, `join_authorised_via_users_server`).

use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::{Value, json};

use super::{Rooms, content_of};
use crate::{error::Result, storage};

impl Rooms {
    /// The public facts of a room, in the shape of the spec's room summary.
    pub async fn summary_json(&self, room_id: &RoomId) -> Result<Value> {
        let members = storage::rooms::members(&self.db.read, room_id.as_str()).await?;
        let joined = members.iter().filter(|(_, m, _)| m == "join").count();
        let create = self.state_content(room_id, "m.room.create").await?;
        let join_rules = self.state_content(room_id, "m.room.join_rules").await?;
        let mut s = json!({
            "room_id": room_id,
            "num_joined_members": joined,
            "join_rule": join_rules["join_rule"].as_str().unwrap_or("invite"),
            "world_readable": self.state_content(room_id, "m.room.history_visibility").await?["history_visibility"] == "world_readable",
            "guest_can_join": self.state_content(room_id, "m.room.guest_access").await?["guest_access"] == "can_join",
            "room_version": create["room_version"].as_str().unwrap_or("1"),
        });
        if let Some(allow) = join_rules["allow"].as_array() {
            let rooms: Vec<&Value> =
                allow.iter().filter(|a| a["type"] == "m.room_membership").filter_map(|a| a.get("room_id")).collect();
            s["allowed_room_ids"] = json!(rooms);
        }
        if let Some(t) = create["type"].as_str() {
            s["room_type"] = json!(t);
        }
        for (key, event, field) in [
            ("name", "m.room.name", "name"),
            ("topic", "m.room.topic", "topic"),
            ("avatar_url", "m.room.avatar", "url"),
            ("canonical_alias", "m.room.canonical_alias", "alias"),
            ("encryption", "m.room.encryption", "algorithm"),
        ] {
            if let Some(v) = self.state_content(room_id, event).await?[field].as_str() {
                s[key] = json!(v);
            }
        }
        Ok(s)
    }

    /// Whether `user` may see the room's summary: members and invitees, and anyone for rooms
    /// that are public, world-readable, knockable, or restricted to a space they are in.
    pub async fn may_preview(&self, user: &UserId, room_id: &RoomId) -> Result<bool> {
        if let Some(m) = self.membership(room_id, user).await?
            && (m == "join" || m == "invite" || m == "knock")
        {
            return Ok(true);
        }
        let join_rules = self.state_content(room_id, "m.room.join_rules").await?;
        let rule = join_rules["join_rule"].as_str().unwrap_or("invite");
        if matches!(rule, "public" | "knock") {
            return Ok(true);
        }
        if self.state_content(room_id, "m.room.history_visibility").await?["history_visibility"] == "world_readable" {
            return Ok(true);
        }
        if matches!(rule, "restricted" | "knock_restricted") {
            return Ok(self.allowing_room(user, &join_rules).await?.is_some());
        }
        Ok(false)
    }

    /// A room of a restricted join rule's allow list that `user` is joined to.
    pub async fn allowing_room(&self, user: &UserId, join_rules: &Value) -> Result<Option<OwnedRoomId>> {
        for a in join_rules["allow"].as_array().into_iter().flatten() {
            if a["type"] != "m.room_membership" {
                continue;
            }
            let Some(r) = a["room_id"].as_str().and_then(|r| RoomId::parse(r).ok()) else { continue };
            if self.membership(&r, user).await?.as_deref() == Some("join") {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// For a join to a restricted room by an uninvited user who is in an allowed room: a local
    /// member with the power to invite, who vouches for the join (room versions 8+).
    pub async fn restricted_join_authoriser(&self, room_id: &RoomId, user: &UserId) -> Result<Option<String>> {
        let join_rules = self.state_content(room_id, "m.room.join_rules").await?;
        let rule = join_rules["join_rule"].as_str().unwrap_or("invite");
        if !matches!(rule, "restricted" | "knock_restricted") {
            return Ok(None);
        }
        if matches!(self.membership(room_id, user).await?.as_deref(), Some("join" | "invite")) {
            return Ok(None);
        }
        if self.allowing_room(user, &join_rules).await?.is_none() {
            return Ok(None);
        }
        let power = self.power_levels(room_id).await?;
        for (member, membership, _) in storage::rooms::members(&self.db.read, room_id.as_str()).await? {
            let Ok(m) = UserId::parse(&member) else { continue };
            if membership == "join" && m.server_name() == self.config.server_name && power.user_can_invite(&m) {
                return Ok(Some(member));
            }
        }
        Ok(None)
    }

    /// One room of a space hierarchy as this server knows it: its summary with its
    /// `m.space.child` events (`children_state`), and the children to descend into with the
    /// servers (`via`) to ask about them. None for a room this server does not know.
    pub async fn hierarchy_node(&self, room: &RoomId, suggested_only: bool) -> Result<Option<HierarchyNode>> {
        if self.room(room).await?.is_none() {
            return Ok(None);
        }
        let mut summary = self.summary_json(room).await?;
        let mut children_state = Vec::new();
        let mut children = Vec::new();
        for ((t, key), id) in self.current_state_ids(room).await? {
            if t != "m.space.child" {
                continue;
            }
            let Some(ev) = self.event(&id).await? else { continue };
            let content = content_of(ev.json());
            // A child event without `via` has been removed (spec: m.space.child).
            let via: Vec<String> =
                content["via"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
            if via.is_empty() || (suggested_only && content["suggested"] != true) {
                continue;
            }
            let mut stripped = crate::matrix::client_event::stripped(ev.json());
            stripped["origin_server_ts"] = Value::from(ev.json().get("origin_server_ts").cloned().unwrap_or_default());
            children_state.push(stripped);
            if let Ok(child) = RoomId::parse(&key) {
                children.push((child, via));
            }
        }
        summary["children_state"] = Value::Array(children_state);
        Ok(Some(HierarchyNode { summary, children }))
    }

    /// Whether another server may see the room in a space hierarchy (spec: server-server
    /// `/hierarchy`): rooms anyone could preview or join (public, knock, restricted, which
    /// that server filters by its users' rooms), world-readable ones, and those it has
    /// members in.
    pub async fn server_may_preview(&self, server: &ruma::ServerName, room_id: &RoomId) -> Result<bool> {
        let rule = self.state_content(room_id, "m.room.join_rules").await?["join_rule"]
            .as_str()
            .unwrap_or("invite")
            .to_owned();
        if matches!(rule.as_str(), "public" | "knock" | "restricted" | "knock_restricted") {
            return Ok(true);
        }
        if self.state_content(room_id, "m.room.history_visibility").await?["history_visibility"] == "world_readable" {
            return Ok(true);
        }
        Ok(storage::rooms::members(&self.db.read, room_id.as_str())
            .await?
            .iter()
            .any(|(u, m, _)| m == "join" && UserId::parse(u).is_ok_and(|u| u.server_name() == server)))
    }
}

/// A room of a space hierarchy: its summary (with `children_state`) and its children, each
/// with the servers to ask about it.
pub struct HierarchyNode {
    pub summary: Value,
    pub children: Vec<(OwnedRoomId, Vec<String>)>,
}
