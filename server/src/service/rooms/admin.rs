//! Rooms as the dashboard lists them: every room with its summary, and who is in each.

use ruma::{OwnedRoomId, RoomId};
use serde_json::{Value, json};

use super::Rooms;
use crate::{
    error::Result,
    storage::{
        self,
        reports::{EventReport, ReportFilter},
    },
};

impl Rooms {
    /// Every room with its summary, creator and creation time, for the dashboard.
    pub async fn admin_list(&self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for (room_id, creator, created_ts) in storage::rooms::all_rooms(&self.db.read).await? {
            let Ok(id) = RoomId::parse(&room_id) else { continue };
            let mut s = self.summary_json(&id).await?;
            s["creator"] = json!(creator);
            s["created_ts"] = json!(created_ts);
            out.push(s);
        }
        Ok(out)
    }

    /// Everyone with a membership in the room, joined members first; None for an unknown room.
    pub async fn admin_members(&self, room_id: &RoomId) -> Result<Option<Vec<Value>>> {
        if storage::rooms::get(&self.db.read, room_id.as_str()).await?.is_none() {
            return Ok(None);
        }
        let members = storage::rooms::members_with_names(&self.db.read, room_id.as_str()).await?;
        Ok(Some(
            members
                .into_iter()
                .map(|(user_id, membership, displayname)| json!({ "user_id": user_id, "membership": membership, "displayname": displayname }))
                .collect(),
        ))
    }
}

/// A room as Synapse's admin API describes it (`GET /v1/rooms/{roomId}`; the list shows most
/// of it), read from the current state.
#[derive(Clone, Debug)]
pub struct RoomStats {
    pub room_id: OwnedRoomId,
    pub name: Option<String>,
    pub canonical_alias: Option<String>,
    pub joined_members: u64,
    pub joined_local_members: u64,
    pub joined_local_devices: u64,
    pub version: String,
    pub creator: String,
    pub encryption: Option<String>,
    pub federatable: bool,
    pub public: bool,
    pub join_rules: Option<String>,
    pub guest_access: Option<String>,
    pub history_visibility: Option<String>,
    pub state_events: u64,
    pub room_type: Option<String>,
    pub avatar: Option<String>,
    pub topic: Option<String>,
    /// Every local member forgot the room.
    pub forgotten: bool,
    /// The room has a tombstone, and where it points (if anywhere).
    pub tombstoned: bool,
    pub replacement_room: Option<String>,
}

impl Rooms {
    /// A room as Synapse's admin API shows it; None for a room this server does not know.
    pub async fn synapse_room(&self, room_id: &RoomId) -> Result<Option<RoomStats>> {
        let Some((creator, version, public)) = storage::rooms::admin_row(&self.db.read, room_id.as_str()).await? else {
            return Ok(None);
        };
        let suffix = self.shared.local_suffix.as_str();
        let members = storage::rooms::members(&self.db.read, room_id.as_str()).await?;
        let joined = members.iter().filter(|(_, m, _)| m == "join").count() as u64;
        let joined_local = members.iter().filter(|(u, m, _)| m == "join" && u.ends_with(&suffix)).count() as u64;
        let local: Vec<&String> = members.iter().map(|(u, _, _)| u).filter(|u| u.ends_with(&suffix)).collect();
        let mut forgotten = !local.is_empty();
        for user in &local {
            let Ok(user) = ruma::UserId::parse(user.as_str()) else { continue };
            if !self.forgot(room_id.as_str(), &user).await? {
                forgotten = false;
                break;
            }
        }
        let create = self.state_content(room_id, "m.room.create").await?;
        let field = |content: &Value, key: &str| content.get(key).and_then(Value::as_str).map(str::to_owned);
        let state = |event_type: &'static str, key: &'static str| async move {
            Ok::<_, crate::error::Error>(field(&self.state_content(room_id, event_type).await?, key))
        };
        let tombstone = self.current_state_event(room_id, "m.room.tombstone", "").await?;
        Ok(Some(RoomStats {
            room_id: room_id.to_owned(),
            name: state("m.room.name", "name").await?,
            canonical_alias: state("m.room.canonical_alias", "alias").await?,
            joined_members: joined,
            joined_local_members: joined_local,
            joined_local_devices: storage::rooms::joined_local_devices(&self.db.read, room_id.as_str(), suffix).await?
                as u64,
            version,
            creator,
            encryption: state("m.room.encryption", "algorithm").await?,
            federatable: create.get("m.federate").and_then(Value::as_bool).unwrap_or(true),
            public,
            join_rules: state("m.room.join_rules", "join_rule").await?,
            guest_access: state("m.room.guest_access", "guest_access").await?,
            history_visibility: state("m.room.history_visibility", "history_visibility").await?,
            state_events: storage::rooms::state_count(&self.db.read, room_id.as_str()).await? as u64,
            room_type: field(&create, "type"),
            avatar: state("m.room.avatar", "url").await?,
            topic: state("m.room.topic", "topic").await?,
            forgotten,
            tombstoned: tombstone.is_some(),
            replacement_room: tombstone.and_then(|t| field(&super::content_of(t.json()), "replacement_room")),
        }))
    }

    /// Every room this server knows, as `synapse_room` shows them.
    pub async fn synapse_rooms(&self) -> Result<Vec<RoomStats>> {
        let mut out = Vec::new();
        for (room_id, _, _) in storage::rooms::all_rooms(&self.db.read).await? {
            let Ok(id) = RoomId::parse(&room_id) else { continue };
            if let Some(room) = self.synapse_room(&id).await? {
                out.push(room);
            }
        }
        Ok(out)
    }
}

impl Rooms {
    /// A page of reports about events, and how many match in all.
    pub async fn event_reports(&self, filter: &ReportFilter) -> Result<(Vec<EventReport>, i64)> {
        Ok(storage::reports::event_reports(&self.db.read, filter).await?)
    }

    pub async fn event_report(&self, id: i64) -> Result<Option<EventReport>> {
        Ok(storage::reports::event_report(&self.db.read, id).await?)
    }

    /// Deletes a report; false when there was none.
    pub async fn delete_report(&self, id: i64) -> Result<bool> {
        Ok(storage::reports::delete(&self.db.write, id).await?)
    }
}

impl Rooms {
    /// The rooms taking the most room in the database, biggest first: (room, bytes).
    pub async fn largest_rooms(&self, limit: i64) -> Result<Vec<(String, i64)>> {
        Ok(storage::events::largest_rooms(&self.db.read, limit).await?)
    }
}

impl Rooms {
    /// Makes `target` an admin of the room as Synapse's `make_room_admin` does: the local user
    /// with the most power who is joined (in room versions with privileged creators, a local
    /// creator first) raises them to their own level, and invites them unless they are in the
    /// room or it is public. Answers 400 with Synapse's reasons when nobody here can.
    pub async fn make_room_admin(&self, room_id: &RoomId, target: &ruma::UserId) -> Result<()> {
        use crate::error::Error;
        let bad = |msg: &str| Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", msg);
        let Some(create) = self.current_state_event(room_id, "m.room.create", "").await? else {
            return Err(bad("Server not in room"));
        };
        let suffix = self.shared.local_suffix.as_str();
        let create_content = super::content_of(create.json());
        let power = self.state_content(room_id, "m.room.power_levels").await?;
        // (user, level); None: a creator, above every level.
        let mut candidates: Vec<(String, Option<i64>)> = Vec::new();
        let version = self.room_version(room_id).await?.unwrap_or_default();
        let creators_privileged = version.parse::<u32>().is_ok_and(|v| v >= 12) || version.contains("msc4289");
        if creators_privileged || power.is_null() {
            candidates.push((create.row.sender.clone(), None));
            if creators_privileged {
                for c in
                    create_content["additional_creators"].as_array().into_iter().flatten().filter_map(Value::as_str)
                {
                    candidates.push((c.to_owned(), None));
                }
            }
        }
        if let Some(users) = power["users"].as_object() {
            let mut levelled: Vec<(String, Option<i64>)> =
                users.iter().filter_map(|(u, l)| Some((u.clone(), Some(l.as_i64()?)))).collect();
            levelled.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            candidates.extend(levelled);
        }
        let mut admin = None;
        for (user, level) in candidates.into_iter().filter(|(u, _)| u.ends_with(&suffix)) {
            let Ok(user) = ruma::UserId::parse(&user) else { continue };
            if self.membership(room_id, &user).await?.as_deref() == Some("join") {
                admin = Some((user, level));
                break;
            }
        }
        let Some((admin, level)) = admin else {
            return Err(bad("No local admin user in room"));
        };
        if admin != target {
            let mut content = if power.is_object() { power } else { json!({}) };
            content["users"][target.as_str()] = json!(level.unwrap_or(100));
            self.set_state(room_id, &admin, "m.room.power_levels", "", content, None).await.map_err(|e| {
                if e.errcode() == "M_FORBIDDEN" {
                    bad("No local admin user in room with power to update power levels.")
                } else {
                    e
                }
            })?;
        }
        let membership = self.membership(room_id, target).await?;
        let public = self.state_content(room_id, "m.room.join_rules").await?["join_rule"] == "public";
        if !matches!(membership.as_deref(), Some("join" | "invite")) && !public {
            self.set_membership(room_id, &admin, target, "invite", None).await?;
        }
        tracing::info!(room = %room_id, %target, by = %admin, "made room admin");
        Ok(())
    }
}
