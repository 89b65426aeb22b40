//! This server's public room directory, for other servers (spec: server-server API, "Public
//! Room Directory"): the same page local clients get.

use axum::extract::State;
use ruma::api::federation::directory::{get_public_rooms, get_public_rooms_filtered};

use crate::{
    error::Result,
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// `allow_public_rooms_over_federation`: refused as Synapse refuses it.
fn directory_open(s: &AppState) -> Result<()> {
    if s.config.allow_public_rooms_over_federation {
        Ok(())
    } else {
        Err(crate::error::Error::forbidden("This server does not list its public rooms to other servers"))
    }
}

/// GET /_matrix/federation/v1/publicRooms
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1publicrooms>
pub async fn get_public_rooms(
    State(s): State<AppState>,
    req: Ruma<get_public_rooms::v1::Request>,
) -> Result<RumaResponse<get_public_rooms::v1::Response>> {
    let b = &req.body;
    directory_open(&s)?;
    let (chunk, next, total) = s.rooms.public_directory(None, b.limit.map(u64::from), b.since.as_deref()).await?;
    let mut resp = get_public_rooms::v1::Response::new();
    resp.chunk = chunk;
    resp.next_batch = next;
    resp.total_room_count_estimate = total.try_into().ok();
    Ok(RumaResponse(resp))
}

/// POST /_matrix/federation/v1/publicRooms
/// <https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1publicrooms>
pub async fn get_public_rooms_filtered(
    State(s): State<AppState>,
    req: Ruma<get_public_rooms_filtered::v1::Request>,
) -> Result<RumaResponse<get_public_rooms_filtered::v1::Response>> {
    let b = &req.body;
    directory_open(&s)?;
    let term = b.filter.generic_search_term.as_deref();
    let (chunk, next, total) = s.rooms.public_directory(term, b.limit.map(u64::from), b.since.as_deref()).await?;
    let mut resp = get_public_rooms_filtered::v1::Response::new();
    resp.chunk = chunk;
    resp.next_batch = next;
    resp.total_room_count_estimate = total.try_into().ok();
    Ok(RumaResponse(resp))
}

/// GET /_matrix/federation/v1/hierarchy/{roomId}
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1hierarchyroomid>
pub async fn get_hierarchy(
    State(s): State<AppState>,
    req: Ruma<ruma::api::federation::space::get_hierarchy::v1::Request>,
) -> Result<RumaResponse<ruma::api::federation::space::get_hierarchy::v1::Response>> {
    let origin = req.origin.clone().ok_or_else(|| crate::error::Error::forbidden("Not a server"))?;
    let served = s.federation.hierarchy_for_server(&origin, &req.body.room_id, req.body.suggested_only).await?;
    let room = serde_json::from_value(served.room).map_err(crate::error::Error::internal)?;
    let mut resp = ruma::api::federation::space::get_hierarchy::v1::Response::new(room);
    for child in served.children {
        resp.children.push(serde_json::from_value(child).map_err(crate::error::Error::internal)?);
    }
    resp.inaccessible_children = served.inaccessible;
    Ok(RumaResponse(resp))
}
