//! Room previews and space hierarchies.

use axum::extract::State;
use ruma::{
    api::client::{room::get_summary, space::get_hierarchy},
    serde::Raw,
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// GET /_matrix/client/v1/room_summary/{roomIdOrAlias}
pub async fn get_summary(
    State(s): State<AppState>,
    req: Ruma<get_summary::v1::Request>,
) -> Result<RumaResponse<get_summary::v1::Response>> {
    let room_id = s.rooms.resolve_room_or_alias(&req.body.room_id_or_alias).await?;
    // Unknown and hidden rooms answer the same, so the endpoint does not reveal private rooms.
    // Without a login only public and world-readable rooms can be previewed.
    let not_found = || Error::not_found("Room not found");
    if s.rooms.room(&room_id).await?.is_none() {
        return Err(not_found());
    }
    let json = s.rooms.summary_json(&room_id).await?;
    let visible = match &req.session {
        Some(session) => s.rooms.may_preview(&session.user_id, &room_id).await?,
        None => json["join_rule"] == "public" || json["world_readable"] == true,
    };
    if !visible {
        return Err(not_found());
    }
    let summary = serde_json::from_value(json).map_err(Error::internal)?;
    let mut resp = get_summary::v1::Response::new(summary);
    if let Some(session) = &req.session {
        resp.membership = s.rooms.membership(&room_id, &session.user_id).await?.map(|m| m.as_str().into());
    }
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v1/rooms/{roomId}/hierarchy
pub async fn get_hierarchy(
    State(s): State<AppState>,
    req: Ruma<get_hierarchy::v1::Request>,
) -> Result<RumaResponse<get_hierarchy::v1::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    let max_depth = b.max_depth.map(u64::from).unwrap_or(10).min(10) as usize;
    let limit = b.limit.map(u64::from).unwrap_or(50).clamp(1, 100) as usize;
    let start: usize = match b.from.as_deref() {
        Some(f) => f
            .strip_prefix('h')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::invalid_param("Invalid from token"))?,
        None => 0,
    };
    let all = s
        .federation
        .space_hierarchy(user, &b.room_id, max_depth, b.suggested_only)
        .await?
        .ok_or_else(|| Error::forbidden("You cannot see this space"))?;
    let page: Vec<_> = all.iter().skip(start).take(limit).collect();
    let mut rooms = Vec::new();
    for mut r in page.iter().map(|v| (*v).clone()) {
        let children: Vec<Raw<_>> = r["children_state"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(super::room::raw_json)
            .collect::<Result<_>>()?;
        r.as_object_mut().map(|o| o.remove("children_state"));
        let summary = serde_json::from_value(r).map_err(Error::internal)?;
        rooms.push(ruma::api::client::space::SpaceHierarchyRoomsChunk::new(summary, children));
    }
    let mut resp = get_hierarchy::v1::Response::new();
    resp.rooms = rooms;
    resp.next_batch = (start + page.len() < all.len()).then(|| format!("h{}", start + page.len()));
    Ok(RumaResponse(resp))
}
