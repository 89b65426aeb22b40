//! The user directory and the published room directory.

use axum::extract::State;
use ruma::{
    UserId,
    api::client::{
        directory::{get_public_rooms, get_public_rooms_filtered, get_room_visibility, set_room_visibility},
        room::Visibility,
        user_directory::search_users,
    },
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// POST /_matrix/client/v3/user_directory/search
///
/// On a family server every local account is findable by ID or display name (Synapse's
/// `search_all_users`); deactivated accounts and guests are not listed.
pub async fn search_users(
    State(s): State<AppState>,
    req: Ruma<search_users::v3::Request>,
) -> Result<RumaResponse<search_users::v3::Response>> {
    s.limits.user(&s.limits.user_directory, &req.session().user_id)?;
    let limit = u64::from(req.body.limit).clamp(1, 100) as i64;
    let rows = s.accounts.search_users(&req.session().user_id, req.body.search_term.trim(), limit + 1).await?;
    let limited = rows.len() as i64 > limit;
    let results = rows
        .into_iter()
        .take(limit as usize)
        .filter_map(|(id, name, avatar)| {
            let mut u = search_users::v3::User::new(UserId::parse(id).ok()?);
            u.display_name = name;
            u.avatar_url = avatar.map(Into::into);
            Some(u)
        })
        .collect();
    Ok(RumaResponse(search_users::v3::Response::new(results, limited)))
}

/// GET /_matrix/client/v3/publicRooms
pub async fn get_public_rooms(
    State(s): State<AppState>,
    req: Ruma<get_public_rooms::v3::Request>,
) -> Result<RumaResponse<get_public_rooms::v3::Response>> {
    let b = &req.body;
    if let Some(server) = b.server.as_ref().filter(|srv| **srv != s.config.server_name) {
        let remote = s.federation.remote_public_rooms(server, None, b.limit, b.since.as_deref()).await?;
        let mut resp = get_public_rooms::v3::Response::new(remote.chunk);
        resp.next_batch = remote.next_batch;
        resp.prev_batch = remote.prev_batch;
        resp.total_room_count_estimate = remote.total_room_count_estimate;
        return Ok(RumaResponse(resp));
    }
    let (chunk, next, total) = s.rooms.public_directory(None, b.limit.map(u64::from), b.since.as_deref()).await?;
    let mut resp = get_public_rooms::v3::Response::new(chunk);
    resp.next_batch = next;
    resp.total_room_count_estimate = total.try_into().ok();
    Ok(RumaResponse(resp))
}

/// POST /_matrix/client/v3/publicRooms
pub async fn get_public_rooms_filtered(
    State(s): State<AppState>,
    req: Ruma<get_public_rooms_filtered::v3::Request>,
) -> Result<RumaResponse<get_public_rooms_filtered::v3::Response>> {
    let b = &req.body;
    let term = b.filter.generic_search_term.as_deref();
    let mut resp = get_public_rooms_filtered::v3::Response::new();
    if let Some(server) = b.server.as_ref().filter(|srv| **srv != s.config.server_name) {
        let remote = s.federation.remote_public_rooms(server, term, b.limit, b.since.as_deref()).await?;
        resp.chunk = remote.chunk;
        resp.next_batch = remote.next_batch;
        resp.prev_batch = remote.prev_batch;
        resp.total_room_count_estimate = remote.total_room_count_estimate;
        return Ok(RumaResponse(resp));
    }
    let (chunk, next, total) = s.rooms.public_directory(term, b.limit.map(u64::from), b.since.as_deref()).await?;
    resp.chunk = chunk;
    resp.next_batch = next;
    resp.total_room_count_estimate = total.try_into().ok();
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v3/directory/list/room/{roomId}
pub async fn get_room_visibility(
    State(s): State<AppState>,
    req: Ruma<get_room_visibility::v3::Request>,
) -> Result<RumaResponse<get_room_visibility::v3::Response>> {
    let public = s.rooms.is_public(&req.body.room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
    Ok(RumaResponse(get_room_visibility::v3::Response::new(if public {
        Visibility::Public
    } else {
        Visibility::Private
    })))
}

/// PUT /_matrix/client/v3/directory/list/room/{roomId}
pub async fn set_room_visibility(
    State(s): State<AppState>,
    req: Ruma<set_room_visibility::v3::Request>,
) -> Result<RumaResponse<set_room_visibility::v3::Response>> {
    let b = &req.body;
    let session = req.session();
    // Publishing a room needs the power to change its canonical alias, as in Synapse.
    let power = s.rooms.power_levels(&b.room_id).await?;
    if !session.is_admin
        && !power.user_can_send_state(&session.user_id, ruma::events::StateEventType::RoomCanonicalAlias)
    {
        return Err(Error::forbidden("You need the power to change the room's address to publish it"));
    }
    s.rooms.set_public(&b.room_id, b.visibility == Visibility::Public).await?;
    Ok(RumaResponse(set_room_visibility::v3::Response::new()))
}
