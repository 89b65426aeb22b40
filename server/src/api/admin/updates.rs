//! /_hearth/admin/v1/updates: the desktop app's updates, from the dashboard: what the last
//! check found (with its release notes), checking now, installing, and the daily check's
//! switch. The headless server answers that its package manager updates it.

use axum::{Json as AxumJson, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::json::Json,
    service::{AppState, updates},
};

fn unsupported() -> Error {
    Error::custom(
        StatusCode::BAD_REQUEST,
        "M_UNRECOGNIZED",
        "This Hearth runs without the desktop app: update it the way it was installed (apt upgrade for the hearth-server package)",
    )
}

/// GET /_hearth/admin/v1/updates
pub async fn get_updates(State(s): State<AppState>) -> AxumJson<Value> {
    AxumJson(match &s.updates {
        Some(u) => json!(u.status()),
        None => updates::unsupported(),
    })
}

#[derive(Deserialize)]
pub struct Switch {
    /// Whether the app asks once a day on its own.
    checks: bool,
}

/// PUT /_hearth/admin/v1/updates: the daily check's switch (no restart needed).
pub async fn put_updates(State(s): State<AppState>, Json(body): Json<Switch>) -> Result<AxumJson<Value>> {
    let u = s.updates.as_ref().ok_or_else(unsupported)?;
    u.set_checks(&s.db, body.checks).await?;
    tracing::info!(checks = body.checks, "update checks switched in the dashboard");
    Ok(AxumJson(json!(u.status())))
}

/// POST /_hearth/admin/v1/updates/check: asks the update server now (what it said, or why it
/// could not be asked, is in the answer).
pub async fn check(State(s): State<AppState>) -> Result<AxumJson<Value>> {
    let u = s.updates.as_ref().ok_or_else(unsupported)?;
    Ok(AxumJson(json!(u.check(&s.db, s.update_net.clone()).await)))
}

#[derive(Deserialize)]
pub struct Install {
    /// The version the dashboard showed (so a newer manifest since is not installed unseen).
    version: String,
}

/// POST /_hearth/admin/v1/updates/install: 202, then the app downloads and verifies the
/// update, stops the server gracefully, installs it and restarts.
pub async fn install(State(s): State<AppState>, Json(body): Json<Install>) -> Result<(StatusCode, AxumJson<Value>)> {
    let u = s.updates.as_ref().ok_or_else(unsupported)?;
    u.install(&body.version, s.update_net.clone())?;
    Ok((StatusCode::ACCEPTED, AxumJson(json!(u.status()))))
}
