//! Rooms, as the dashboard lists and deletes them.

use axum::{
    Json,
    extract::{Path, State},
};
use ruma::RoomId;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    service::AppState,
};

/// GET /_hearth/admin/v1/rooms
pub async fn list(State(s): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(json!({ "rooms": s.rooms.admin_list().await? })))
}

/// GET /_hearth/admin/v1/rooms/{room_id}/members
pub async fn members(State(s): State<AppState>, Path(raw): Path<String>) -> Result<Json<Value>> {
    let room_id = RoomId::parse(&raw).map_err(|e| Error::invalid_param(format!("`{raw}` is not a room ID: {e}")))?;
    let members = s.rooms.admin_members(&room_id).await?.ok_or_else(|| Error::not_found("No such room"))?;
    Ok(Json(json!({ "members": members })))
}

/// DELETE /_hearth/admin/v1/rooms/{room_id}: everyone here leaves it and it is purged from this
/// server, as Synapse's admin API deletes rooms (the same service).
pub async fn delete(State(s): State<AppState>, Path(raw): Path<String>) -> Result<Json<Value>> {
    let room_id = RoomId::parse(&raw).map_err(|e| Error::invalid_param(format!("`{raw}` is not a room ID: {e}")))?;
    if s.rooms.room(&room_id).await?.is_none() {
        return Err(Error::not_found("No such room"));
    }
    let params = crate::service::room_deletion::DeleteRoom {
        requester: None,
        new_room_user_id: None,
        room_name: None,
        message: None,
        block: false,
        purge: true,
        force_purge: false,
    };
    let done = s.delete_room(&room_id, &params, None).await?;
    Ok(Json(json!({ "removed_users": done.kicked_users, "failed_users": done.failed_to_kick_users })))
}
