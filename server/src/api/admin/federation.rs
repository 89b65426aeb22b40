//! /_hearth/admin/v1/federation: the other servers Hearth sends to, for the dashboard.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{error::Result, service::AppState};

/// GET: each destination with the last event it accepted, whether it is backing off (and until
/// when), its last error, its last success and how many events wait for it.
pub async fn destinations(State(s): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(json!({ "destinations": s.federation.sender.destinations().await? })))
}
