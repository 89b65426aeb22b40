//! Rooms, as the dashboard lists them (read-only).

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
