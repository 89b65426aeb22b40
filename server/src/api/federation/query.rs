//! Federation queries other servers make about this one's users.

use axum::extract::State;
use ruma::{
    api::federation::query::{get_profile_information, get_room_information},
    profile::ProfileFieldName,
};
use serde_json::json;

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// GET /_matrix/federation/v1/query/profile: a local user's display name and avatar (or the
/// one `field` asked for).
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1queryprofile>
pub async fn get_profile_information(
    State(s): State<AppState>,
    req: Ruma<get_profile_information::v1::Request>,
) -> Result<RumaResponse<get_profile_information::v1::Response>> {
    let b = &req.body;
    tracing::debug!(origin = ?req.origin, user_id = %b.user_id, "profile query");
    if b.user_id.server_name() != s.config.server_name {
        return Err(Error::invalid_param("The user is not hosted on this homeserver"));
    }
    let (name, avatar) = s.rooms.profile(&b.user_id).await?.ok_or_else(|| Error::not_found("Profile was not found"))?;
    let mut resp = get_profile_information::v1::Response::new();
    let wants = |f: ProfileFieldName| b.field.as_ref().is_none_or(|asked| *asked == f);
    if let Some(n) = name.filter(|_| wants(ProfileFieldName::DisplayName)) {
        resp.set("displayname".to_owned(), json!(n));
    }
    if let Some(a) = avatar.filter(|_| wants(ProfileFieldName::AvatarUrl)) {
        resp.set("avatar_url".to_owned(), json!(a));
    }
    Ok(RumaResponse(resp))
}

/// GET /_matrix/federation/v1/query/directory: the room a local alias names and the servers to
/// join it through.
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1querydirectory>
pub async fn get_room_information(
    State(s): State<AppState>,
    req: Ruma<get_room_information::v1::Request>,
) -> Result<RumaResponse<get_room_information::v1::Response>> {
    let alias = &req.body.room_alias;
    if alias.server_name() != s.config.server_name {
        return Err(Error::not_found("The alias is not hosted on this homeserver"));
    }
    let (room_id, servers) = s.federation.resolve_alias(alias).await?;
    Ok(RumaResponse(get_room_information::v1::Response::new(room_id, servers)))
}
