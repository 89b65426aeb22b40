//! POST /_hearth/admin/v1/health/database: SQLite's integrity and foreign-key checks, on demand
//! from the Status page.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{
    error::Result,
    service::{AppState, health},
};

/// POST /_hearth/admin/v1/health/database
pub async fn check_database(State(s): State<AppState>) -> Result<Json<Value>> {
    Ok(Json(json!(health::check_database(&s.db).await?)))
}
