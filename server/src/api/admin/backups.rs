//! /_hearth/admin/v1/backups: scheduled backups from the Status page: the plan (schedule,
//! folder, how many to keep, encryption), the last run and its warning, the backups in the
//! folder, and "back up now".

use axum::{Json as AxumJson, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    config::BackupSchedule,
    error::{Error, Result},
    http::json::Json,
    service::{AppState, backup_schedule::Plan},
};

/// GET /_hearth/admin/v1/backups
pub async fn get_backups(State(s): State<AppState>) -> Result<AxumJson<Value>> {
    Ok(AxumJson(s.backups.status().await?))
}

#[derive(Deserialize)]
pub struct PutPlan {
    schedule: BackupSchedule,
    dir: Option<std::path::PathBuf>,
    keep: u32,
    #[serde(default)]
    encrypted: bool,
    /// A new passphrase; absent or empty keeps the one stored.
    #[serde(default)]
    passphrase: Option<String>,
}

/// PUT /_hearth/admin/v1/backups: the plan (no restart needed).
pub async fn put_backups(State(s): State<AppState>, Json(body): Json<PutPlan>) -> Result<AxumJson<Value>> {
    let plan = Plan {
        schedule: body.schedule,
        dir: body.dir.filter(|d| !d.as_os_str().is_empty()),
        keep: body.keep,
        encrypted: body.encrypted,
    };
    s.backups.set_plan(plan, body.passphrase).await?;
    tracing::info!("backup plan changed in the dashboard");
    Ok(AxumJson(s.backups.status().await?))
}

/// POST /_hearth/admin/v1/backups/run: 202 and a backup starts (the Status page follows it with
/// GET); 409 while one runs.
pub async fn run(State(s): State<AppState>) -> Result<(StatusCode, AxumJson<Value>)> {
    if !s.backups.start_now() {
        return Err(Error::custom(StatusCode::CONFLICT, "M_UNKNOWN", "A backup is being made already"));
    }
    Ok((StatusCode::ACCEPTED, AxumJson(json!({"running": true}))))
}
