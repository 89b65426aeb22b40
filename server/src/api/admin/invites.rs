//! Invites, as the dashboard manages them (see `service::invites`).

use axum::{
    Json as AxumJson,
    extract::{Path, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{error::Result, http::json::Json, service::AppState};

/// GET /_hearth/admin/v1/invites
pub async fn list(State(s): State<AppState>) -> Result<AxumJson<Value>> {
    Ok(AxumJson(json!({ "invites": s.invites.list().await? })))
}

#[derive(Deserialize)]
pub struct CreateBody {
    /// How many people may use it; absent for any number.
    uses_allowed: Option<i64>,
    /// When it stops working, in milliseconds since 1970; absent for never.
    expiry_time: Option<i64>,
}

/// POST /_hearth/admin/v1/invites
pub async fn create(State(s): State<AppState>, Json(body): Json<CreateBody>) -> Result<AxumJson<Value>> {
    Ok(AxumJson(json!(s.invites.create(body.uses_allowed, body.expiry_time).await?)))
}

/// DELETE /_hearth/admin/v1/invites/{code}
pub async fn delete(State(s): State<AppState>, Path(code): Path<String>) -> Result<AxumJson<Value>> {
    s.invites.delete(&code).await?;
    Ok(AxumJson(json!({})))
}
