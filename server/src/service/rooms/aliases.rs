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
    /// A client's new `m.room.canonical_alias` (spec: the server must check it): every alias
    /// must be a valid alias and, when it is one of this server's, exist and lead to this room
    /// (400 `M_BAD_ALIAS` otherwise, as Synapse). Aliases of other servers cannot be checked
    /// without federation and pass.
    pub async fn check_canonical_alias(&self, room: &RoomId, content: &serde_json::Value) -> Result<()> {
        let mut aliases: Vec<&serde_json::Value> = Vec::new();
        if let Some(a) = content.get("alias").filter(|a| !a.is_null()) {
            aliases.push(a);
        }
        match content.get("alt_aliases") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(alt)) => aliases.extend(alt),
            Some(_) => return Err(Error::invalid_param("alt_aliases must be a list of room aliases")),
        }
        for value in aliases {
            let alias = value
                .as_str()
                .and_then(|a| RoomAliasId::parse(a).ok())
                .ok_or_else(|| Error::invalid_param(format!("{value} is not a room alias")))?;
            if alias.server_name() != self.config.server_name {
                continue;
            }
            if self.resolve_alias(&alias).await?.as_deref() != Some(room) {
                return Err(Error::custom(
                    StatusCode::BAD_REQUEST,
                    "M_BAD_ALIAS",
                    format!("The alias {alias} does not lead to this room"),
                ));
            }
        }
        Ok(())
    }

    /// Removes an alias. Its creator, a server admin, or anyone with the power to change the
    /// room's canonical alias may (as Synapse). An alias the room advertised in its
    /// `m.room.canonical_alias` is taken out of it too, so clients stop showing a dead alias.
    pub async fn remove_alias(&self, alias: &RoomAliasId, user: &UserId, is_admin: bool) -> Result<()> {
        let (room_id, creator) = storage::rooms::resolve_alias(&self.db.read, alias.as_str())
            .await?
            .ok_or_else(|| Error::not_found("Room alias not found"))?;
        let room = RoomId::parse(&room_id).map_err(Error::internal)?;
        let may = creator == user.as_str()
            || is_admin
            || self
                .power_levels(&room)
                .await
                .is_ok_and(|p| p.user_can_send_state(user, ruma::events::StateEventType::RoomCanonicalAlias));
        if !may {
            return Err(Error::forbidden("Only the alias's creator, a server admin or a room moderator can remove it"));
        }
        storage::rooms::delete_alias(&self.db.write, alias.as_str()).await?;

        let mut content = self.state_content(&room, "m.room.canonical_alias").await?;
        let mut changed = false;
        if content.get("alias").and_then(|a| a.as_str()) == Some(alias.as_str()) {
            content.as_object_mut().map(|c| c.remove("alias"));
            changed = true;
        }
        if let Some(alt) = content.get_mut("alt_aliases").and_then(|a| a.as_array_mut()) {
            let before = alt.len();
            alt.retain(|a| a.as_str() != Some(alias.as_str()));
            changed |= alt.len() != before;
        }
        if changed {
            // The alias is gone either way; a user without the power to change the event
            // leaves it as it was (Synapse does the same).
            if let Err(e) = self.send(&room, user, "m.room.canonical_alias", Some(""), content, None).await {
                tracing::info!(%room_id, error = %e, "the removed alias stays in m.room.canonical_alias");
            }
        }
        Ok(())
    }
}

impl Rooms {
    /// Points every alias of `from` at `to` (a room deletion's replacement room).
    pub async fn move_aliases(&self, from: &RoomId, to: &RoomId) -> Result<()> {
        Ok(storage::rooms::move_aliases(&self.db.write, from.as_str(), to.as_str()).await?)
    }
}
