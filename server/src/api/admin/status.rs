//! GET /_hearth/admin/v1/status: what the dashboard's front page shows.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use crate::{error::Result, service::AppState};

/// GET /_hearth/admin/v1/status
pub async fn get_status(State(s): State<AppState>) -> Result<Json<Value>> {
    let database_bytes = crate::service::health::database_bytes(s.config.data_dir());
    let settings = crate::service::setup::settings(&s.db).await?;
    Ok(Json(json!({
        "running": true,
        "version": crate::VERSION,
        "server_name": s.config.server_name,
        "public_baseurl": s.config.public_baseurl(),
        "uptime_seconds": s.started.elapsed().as_secs(),
        "started_ms": s.started_ms,
        "users": s.accounts.count_active_users().await?,
        "database_bytes": database_bytes,
        "media_bytes": s.media.stored_bytes().await?,
        // One sample a day (the latest of the day), oldest first: the growth over time.
        "size_history": crate::service::health::size_history(&s.db).await?,
        // Space left for the data folder (null where it cannot be read).
        "disk": crate::service::health::disk(s.config.data_dir()),
        "secret_store": s.secrets.describe(),
        // The last reachability check (the wizard's check step), if any.
        "reachability": {
            "checks": settings.get("setup_checks"),
            "checked_ms": settings.get("setup_checks_ms"),
        },
        "registration": {
            "enabled": s.config.enable_registration,
            "requires_token": s.config.registration_requires_token,
        },
    })))
}

/// POST /_hearth/admin/v1/admin-key: replaces the admin key; the one this request carried stops
/// working now. Answers the new key, for the page to keep using.
pub async fn rotate_admin_key(State(s): State<AppState>) -> Result<Json<Value>> {
    let token = s.admin_key.rotate().await?;
    Ok(Json(json!({ "token": token })))
}
