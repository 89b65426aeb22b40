//! Profiles (spec: "Profiles"): display name and avatar, copied into the member event of every
//! room the user is joined to when they change.

use ruma::UserId;

use super::Rooms;
use crate::{
    error::{Error, Result},
    storage,
};

impl Rooms {
    pub async fn profile(&self, user: &UserId) -> Result<Option<(Option<String>, Option<String>)>> {
        Ok(storage::users::profile(&self.db.read, user.as_str()).await?)
    }

    /// Sets (or with `None` clears) the display name or avatar URL, then updates the user's
    /// member event in each joined room.
    pub async fn set_profile_field(&self, user: &UserId, field: &str, value: Option<&str>) -> Result<()> {
        match field {
            "displayname" => {
                if value.is_some_and(|v| v.len() > 256) {
                    return Err(Error::invalid_param("Display names are limited to 256 bytes"));
                }
                storage::users::set_displayname(&self.db.write, user.as_str(), value).await?
            }
            "avatar_url" => {
                if value.is_some_and(|v| !v.starts_with("mxc://")) {
                    return Err(Error::invalid_param("avatar_url must be an mxc:// URI"));
                }
                storage::users::set_avatar_url(&self.db.write, user.as_str(), value).await?
            }
            _ => return Err(Error::invalid_param(format!("The profile field {field} is not supported"))),
        }
        for room in storage::rooms::joined_rooms(&self.db.read, user.as_str()).await? {
            let Ok(room_id) = ruma::RoomId::parse(&room) else { continue };
            let mut content = self.member_content(user, "join", None).await?;
            // Keep what else the member event said (e.g. is_direct is on invites only).
            if let Some(current) = self.current_state_event(&room_id, "m.room.member", user.as_str()).await? {
                let old = super::content_of(current.json());
                if let Some(reason) = old.get("reason") {
                    content["reason"] = reason.clone();
                }
            }
            if let Err(e) = self.send(&room_id, user, "m.room.member", Some(user.as_str()), content, None).await {
                tracing::warn!(%room_id, error = %e, "could not update the member event after a profile change");
            }
        }
        Ok(())
    }
}
