//! Presence (spec: "Presence"): what users say about themselves, kept in memory.

use axum::extract::State;
use ruma::api::client::presence::{get_presence, set_presence};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// PUT /_matrix/client/v3/presence/{userId}/status
pub async fn set_presence(
    State(s): State<AppState>,
    req: Ruma<set_presence::v3::Request>,
) -> Result<RumaResponse<set_presence::v3::Response>> {
    let b = &req.body;
    if req.session().user_id != b.user_id {
        return Err(Error::forbidden("You can only set your own presence"));
    }
    if b.status_msg.as_ref().is_some_and(|m| m.len() > 1024) {
        return Err(Error::invalid_param("status_msg is limited to 1024 bytes"));
    }
    s.limits.user(&s.limits.presence, &b.user_id)?;
    s.ephemeral.set_presence(&b.user_id, b.presence.clone(), b.status_msg.clone());
    Ok(RumaResponse(set_presence::v3::Response::new()))
}

/// GET /_matrix/client/v3/presence/{userId}/status
pub async fn get_presence(
    State(s): State<AppState>,
    req: Ruma<get_presence::v3::Request>,
) -> Result<RumaResponse<get_presence::v3::Response>> {
    let user = &req.body.user_id;
    let (presence, status_msg, last_active) = s.ephemeral.presence(user);
    // Another server's user: known when their server told us (it does for people sharing a
    // room with someone here).
    let known = if user.server_name() == s.config.server_name {
        s.rooms.profile(user).await?.is_some()
    } else {
        last_active.is_some()
    };
    if !known {
        return Err(Error::not_found("No presence known for that user"));
    }
    let mut resp = get_presence::v3::Response::new(presence);
    resp.status_msg = status_msg;
    resp.last_active_ago = last_active;
    Ok(RumaResponse(resp))
}
