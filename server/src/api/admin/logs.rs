//! GET /_hearth/admin/v1/logs: the latest log lines for the dashboard.

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    config,
    error::{Error, Result},
    service::{AppState, logs},
};

#[derive(Deserialize)]
pub struct LogQuery {
    level: Option<String>,
    limit: Option<usize>,
}

/// GET /_hearth/admin/v1/logs?level=warn&limit=200
pub async fn get_logs(State(s): State<AppState>, Query(q): Query<LogQuery>) -> Result<Json<Value>> {
    let level = match q.level.as_deref() {
        None => logs::Level::Info,
        Some(l) => logs::Level::parse(l)
            .ok_or_else(|| Error::invalid_param(format!("level: `{l}` is not error, warn, info, debug or trace")))?,
    };
    let limit = q.limit.unwrap_or(200).clamp(1, 2000);
    let Some(dir) = s.config.log_dir.clone().or_else(config::default_log_dir) else {
        return Ok(Json(json!({ "dir": null, "lines": [] })));
    };
    let lines = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || logs::tail(&dir, level, limit)).await.map_err(Error::internal)?
    }
    .map_err(|e| Error::Internal(anyhow::Error::new(e).context("reading the log files")))?;
    Ok(Json(json!({ "dir": dir, "lines": lines })))
}
