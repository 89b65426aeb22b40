//! /_hearth/admin/v1/restore: the setup wizard's "restore from a backup" (see
//! `service::restore`): the backups in a folder, and restoring one into this new server.

use axum::{
    Json as AxumJson,
    extract::{Query, State},
};
use serde::Deserialize;
use serde_json::Value;

use crate::{error::Result, http::json::Json, service::AppState};

#[derive(Deserialize)]
pub struct Look {
    /// A backup, or a folder of backups, on this computer.
    path: Option<std::path::PathBuf>,
}

/// GET /_hearth/admin/v1/restore[?path=]: whether this server may be restored into, the last
/// restore's result, and the backups at `path`.
pub async fn get_restore(State(s): State<AppState>, Query(q): Query<Look>) -> Result<AxumJson<Value>> {
    Ok(AxumJson(s.restores.status(q.path.as_deref()).await?))
}

#[derive(Deserialize)]
pub struct Restore {
    path: std::path::PathBuf,
    #[serde(default)]
    passphrase: Option<String>,
}

/// POST /_hearth/admin/v1/restore: checks the backup (400 with the reason when it cannot be
/// restored, 403 when this server has data of its own), then restarts to write it.
pub async fn post_restore(State(s): State<AppState>, Json(body): Json<Restore>) -> Result<AxumJson<Value>> {
    let mut about = s.restores.prepare(&body.path, body.passphrase).await?;
    about["restart"] = Value::Bool(true);
    s.restart.notify_one();
    Ok(AxumJson(about))
}
