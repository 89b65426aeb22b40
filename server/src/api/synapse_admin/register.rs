//! GET/POST /_synapse/admin/v1/register: shared-secret registration, as Synapse serves it.

use axum::extract::State;
use http::StatusCode;
use ruma::api::error::ErrorKind;
use serde::Deserialize;
use synapse_admin_api::register_users::{shared_secret_register, shared_secret_register_nonce};

use crate::{
    error::{Error, Result},
    http::{
        json::Json,
        ruma::{RumaResponse, client_ip},
    },
    service::AppState,
};

/// GET /_synapse/admin/v1/register: a single-use nonce.
pub async fn get_nonce(State(s): State<AppState>) -> RumaResponse<shared_secret_register_nonce::v1::Response> {
    RumaResponse(shared_secret_register_nonce::v1::Response::new(s.shared_secret.new_nonce()))
}

#[derive(Deserialize)]
pub struct RegisterBody {
    nonce: String,
    username: String,
    password: String,
    mac: String,
    #[serde(default)]
    admin: bool,
    displayname: Option<String>,
    user_type: Option<String>,
}

/// POST /_synapse/admin/v1/register. The body is read here rather than with the crate's request
/// type, which has no `user_type` and requires `displayname` and `admin`.
pub async fn register(
    State(s): State<AppState>,
    parts: http::request::Parts,
    Json(body): Json<RegisterBody>,
) -> Result<RumaResponse<shared_secret_register::v1::Response>> {
    if !s.shared_secret.take_nonce(&body.nonce) {
        return Err(Error::invalid_param("Unrecognised or expired nonce; GET a new one"));
    }
    if body.username.len() > 512 {
        return Err(Error::matrix(StatusCode::BAD_REQUEST, ErrorKind::InvalidUsername, "Username is too long"));
    }
    s.accounts.check_new_password(&body.password)?;
    if body.user_type.as_deref().is_some_and(|t| !["support", "bot"].contains(&t)) {
        return Err(Error::invalid_param("Invalid user_type"));
    }
    if !s.shared_secret.verify_mac(
        &body.nonce,
        &body.username,
        &body.password,
        body.admin,
        body.user_type.as_deref(),
        &body.mac,
    ) {
        return Err(Error::forbidden("HMAC incorrect"));
    }
    let (_, user_id) = s.accounts.validate_new_localpart(&body.username)?;
    s.accounts.create_user(&user_id, Some(body.password), body.admin, false, body.displayname.as_deref(), None).await?;
    let ip = client_ip(&parts).map(|i| i.to_string());
    let session = s.accounts.create_session(&user_id, None, None, false, ip.as_deref()).await?;
    Ok(RumaResponse(shared_secret_register::v1::Response::new(
        session.access_token,
        user_id,
        s.config.server_name.clone(),
        session.device_id,
    )))
}
