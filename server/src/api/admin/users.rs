//! Accounts, as the dashboard manages them: list, create, reset password, deactivate, admin.

use axum::{
    Json as AxumJson,
    extract::{Path, State},
};
use ruma::{OwnedUserId, UserId};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::json::Json,
    service::AppState,
};

fn user_id(s: &AppState, raw: &str) -> Result<OwnedUserId> {
    let id = UserId::parse(raw).map_err(|e| Error::invalid_param(format!("`{raw}` is not a user ID: {e}")))?;
    if id.server_name() != s.config.server_name {
        return Err(Error::invalid_param("That user is not on this server"));
    }
    Ok(id)
}

/// GET /_hearth/admin/v1/users
pub async fn list(State(s): State<AppState>) -> Result<AxumJson<Value>> {
    Ok(AxumJson(json!({ "users": s.accounts.list_users().await? })))
}

#[derive(Deserialize)]
pub struct CreateBody {
    username: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

/// POST /_hearth/admin/v1/users
pub async fn create(State(s): State<AppState>, Json(body): Json<CreateBody>) -> Result<AxumJson<Value>> {
    s.accounts.check_new_password(&body.password)?;
    let (_, user_id) = s.accounts.validate_new_localpart(&body.username)?;
    // A taken name: create_user answers M_USER_IN_USE.
    s.accounts.create_user(&user_id, Some(body.password), body.admin, false, None, None).await?;
    Ok(AxumJson(json!({ "user_id": user_id })))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    password: String,
}

/// POST /_hearth/admin/v1/users/{user_id}/password
pub async fn reset_password(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Json(body): Json<PasswordBody>,
) -> Result<AxumJson<Value>> {
    let id = user_id(&s, &raw)?;
    s.accounts.reset_password(&id, body.password).await?;
    Ok(AxumJson(json!({})))
}

/// POST /_hearth/admin/v1/users/{user_id}/deactivate
pub async fn deactivate(State(s): State<AppState>, Path(raw): Path<String>) -> Result<AxumJson<Value>> {
    let id = user_id(&s, &raw)?;
    if s.accounts.is_available(&id).await? {
        return Err(Error::not_found("No such user"));
    }
    s.deactivate_account(&id, false).await?;
    Ok(AxumJson(json!({})))
}

#[derive(Deserialize)]
pub struct AdminBody {
    admin: bool,
}

/// PUT /_hearth/admin/v1/users/{user_id}/admin
pub async fn set_admin(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    Json(body): Json<AdminBody>,
) -> Result<AxumJson<Value>> {
    let id = user_id(&s, &raw)?;
    if !s.accounts.set_admin(&id, body.admin).await? {
        return Err(Error::not_found("No such user"));
    }
    Ok(AxumJson(json!({ "admin": body.admin })))
}
