//! Rooms as the dashboard lists them: every room with its summary, and who is in each.

use ruma::RoomId;
use serde_json::{Value, json};

use super::Rooms;
use crate::{error::Result, storage};

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
