//! Voice over IP (spec: "Voice over IP"): the TURN servers clients use for calls behind NAT.

use axum::{Json, extract::State};
use http::StatusCode;
use ruma::api::{client::voip::get_turn_server_info, error::ErrorKind};
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::ruma::Ruma,
    service::{AppState, now_ms, voip::turn_credentials},
};

/// GET /_matrix/client/v3/voip/turnServer. Without a TURN server configured the answer is an
/// empty object, as Synapse's (clients then call without TURN).
pub async fn get_turn_server_info(
    State(s): State<AppState>,
    req: Ruma<get_turn_server_info::v3::Request>,
) -> Result<Json<Value>> {
    let session = req.session();
    if session.is_guest && !s.config.turn_allow_guests {
        return Err(Error::matrix(
            StatusCode::FORBIDDEN,
            ErrorKind::GuestAccessForbidden,
            "Guests get no TURN credentials on this server (turn_allow_guests = false)",
        ));
    }
    Ok(Json(match turn_credentials(&s.config, &session.user_id, now_ms().max(0) as u64) {
        Some(c) => json!({
            "username": c.username,
            "password": c.password,
            "uris": c.uris,
            "ttl": c.ttl.as_secs(),
        }),
        None => json!({}),
    }))
}
