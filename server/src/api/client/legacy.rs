//! The deprecated pre-/sync endpoints, which clients still use to peek into world-readable
//! rooms (spec: "Room Previews") and guests to follow a room. Served without ruma types: ruma
//! has none for two of them, and its third cannot say "not a member".

use axum::{
    Json,
    extract::{Path, Query, State},
};
use ruma::{OwnedRoomId, RoomId};
use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::{Error, Result},
    http::ruma::Authed,
    service::{
        AppState,
        rooms::MembershipRow,
        sync::{self, legacy::DEFAULT_LIMIT},
    },
};

#[derive(Deserialize)]
pub struct SnapshotQuery {
    limit: Option<i64>,
    #[serde(default)]
    archived: bool,
}

/// GET /_matrix/client/v3/rooms/{roomId}/initialSync
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3roomsroomidinitialsync>
pub async fn room_initial_sync(
    Authed(session): Authed,
    State(s): State<AppState>,
    Path(room_id): Path<OwnedRoomId>,
    Query(q): Query<SnapshotQuery>,
) -> Result<Json<Value>> {
    let membership = membership_row(&s, &room_id, &session.user_id).await?;
    s.sync
        .room_snapshot(&session.user_id, &room_id, membership.as_ref(), q.limit.unwrap_or(DEFAULT_LIMIT))
        .await?
        .map(Json)
        .ok_or_else(|| Error::forbidden("You are not in this room, and its history is not world-readable"))
}

/// GET /_matrix/client/v3/initialSync (deprecated; spec: "Syncing", legacy)
pub async fn initial_sync(
    Authed(session): Authed,
    State(s): State<AppState>,
    Query(q): Query<SnapshotQuery>,
) -> Result<Json<Value>> {
    Ok(Json(s.sync.initial_sync(&session.user_id, q.limit.unwrap_or(DEFAULT_LIMIT), q.archived).await?))
}

#[derive(Deserialize)]
pub struct EventsQuery {
    from: Option<String>,
    timeout: Option<u64>,
    limit: Option<i64>,
    room_id: Option<OwnedRoomId>,
}

/// Synapse's long-poll when the client gives no timeout.
const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// GET /_matrix/client/v3/events: new events in the user's rooms, or with `room_id` in one
/// room the user may read (peeking; guests must name the room, as Synapse asks).
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3events>
pub async fn get_events(
    Authed(session): Authed,
    State(s): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Value>> {
    let user = &session.user_id;
    let rooms = match &q.room_id {
        Some(room_id) => {
            if !s.rooms.may_read_room(user, room_id).await? {
                return Err(Error::forbidden("You are not in this room, and its history is not world-readable"));
            }
            vec![(room_id.clone(), membership_row(&s, room_id, user).await?)]
        }
        None if session.is_guest => return Err(Error::missing_param("Guests must give room_id")),
        None => s
            .rooms
            .memberships_of(user)
            .await?
            .iter()
            .filter(|m| m.membership == "join")
            .filter_map(|m| Some((OwnedRoomId::try_from(m.room_id.as_str()).ok()?, Some(m.clone()))))
            .collect(),
    };
    let from = q.from.as_deref().map(sync::parse_token).transpose()?;
    let timeout = std::time::Duration::from_millis(q.timeout.unwrap_or(DEFAULT_TIMEOUT_MS));
    Ok(Json(s.sync.event_stream(user, &rooms, from, timeout, q.limit.unwrap_or(DEFAULT_LIMIT)).await?))
}

async fn membership_row(s: &AppState, room_id: &RoomId, user: &ruma::UserId) -> Result<Option<MembershipRow>> {
    Ok(s.rooms.memberships_of(user).await?.iter().find(|m| m.room_id == room_id.as_str()).cloned())
}
