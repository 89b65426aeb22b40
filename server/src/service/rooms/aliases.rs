//! Room aliases on this server (spec: "Room aliases").

use http::StatusCode;
use ruma::{OwnedRoomId, RoomAliasId, RoomId, UserId, api::error::ErrorKind};

use super::Rooms;
use crate::{
    error::{Error, Result},
    storage,
};

impl Rooms {
    pub async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<Option<OwnedRoomId>> {
        Ok(storage::rooms::resolve_alias(&self.db.read, alias.as_str())
            .await?
            .and_then(|(room, _)| RoomId::parse(room).ok()))
    }

    /// The room named by an ID or a local alias (404 for an unknown alias).
    pub async fn resolve_room_or_alias(&self, target: &ruma::RoomOrAliasId) -> Result<OwnedRoomId> {
        match <&RoomId>::try_from(target) {
            Ok(room_id) => Ok(room_id.to_owned()),
            Err(alias) => self.resolve_alias(alias).await?.ok_or_else(|| Error::not_found("Room alias not found")),
        }
    }

    pub async fn add_alias(&self, alias: &RoomAliasId, room_id: &RoomId, creator: &UserId) -> Result<()> {
        if !storage::rooms::insert_alias(&self.db.write, alias.as_str(), room_id.as_str(), creator.as_str()).await? {
            return Err(Error::matrix(StatusCode::CONFLICT, ErrorKind::Unknown, "Room alias already exists"));
        }
        Ok(())
    }

    /// Removes an alias; only the user who made it or a server admin may.
    pub async fn remove_alias(&self, alias: &RoomAliasId, user: &UserId, is_admin: bool) -> Result<()> {
        let (_, creator) = storage::rooms::resolve_alias(&self.db.read, alias.as_str())
            .await?
            .ok_or_else(|| Error::not_found("Room alias not found"))?;
        if creator != user.as_str() && !is_admin {
            return Err(Error::forbidden("Only the creator of an alias or a server admin can remove it"));
        }
        storage::rooms::delete_alias(&self.db.write, alias.as_str()).await?;
        Ok(())
    }
}
