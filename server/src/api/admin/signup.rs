//! The invite sign-up page, on the public listener (the invitee is not on this computer):
//! `GET /_hearth/invite/{code}` is the page, which calls the two endpoints below.

use axum::{
    Json as AxumJson,
    extract::{Path, State},
};
use http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::Result,
    http::{json::Json, ruma::client_ip},
    service::{AppState, ratelimit::address_key},
};

/// GET /_hearth/invite/{code}/state: whether the invite can be used, so the page can say so
/// before anyone types a password.
pub async fn state(State(s): State<AppState>, Path(code): Path<String>, parts: Parts) -> Result<AxumJson<Value>> {
    // Each lookup tells whether a code exists: as slow as the token validity check.
    s.limits.token_validity.check(&address_key(client_ip(&parts)))?;
    let state = s.invites.state(&code).await?;
    Ok(AxumJson(json!({
        "state": state,
        "server_name": s.config.server_name,
        "homeserver_url": s.config.public_baseurl(),
    })))
}

#[derive(Deserialize)]
pub struct SignUpBody {
    username: String,
    password: String,
}

/// POST /_hearth/invite/{code}/register: creates the account. Rate limited per address like
/// Matrix registration (`rc_registration`).
pub async fn register(
    State(s): State<AppState>,
    Path(code): Path<String>,
    parts: Parts,
    Json(body): Json<SignUpBody>,
) -> Result<AxumJson<Value>> {
    // Every attempt counts, so guessing invite codes is as slow as guessing sign-ups.
    s.limits.registration.check(&address_key(client_ip(&parts)))?;
    let user_id = s.invites.sign_up(&s.accounts, &code, body.username.trim(), body.password).await?;
    Ok(AxumJson(json!({
        "user_id": user_id,
        "homeserver_url": s.config.public_baseurl(),
        "server_name": s.config.server_name,
    })))
}
