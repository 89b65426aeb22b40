//! /_synapse/admin/v1/users/{userId}/override_ratelimit: lifting or changing one user's rate
//! limits (a bot, a bridge, a family member who pastes a lot), with Synapse's shapes.

use axum::{
    Json as AxumJson,
    extract::{Path, State},
};
use ruma::OwnedUserId;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::json::{Admin, Json},
    service::{AppState, ratelimit::OverrideValues},
};

/// The user named in the path: a local account that exists.
async fn local_user(s: &AppState, user_id: &str) -> Result<OwnedUserId> {
    let user = OwnedUserId::try_from(user_id).map_err(|_| Error::invalid_param("Not a valid user ID"))?;
    if user.server_name() != s.config.server_name {
        return Err(Error::invalid_param("Only users of this server have rate limits here"));
    }
    if s.accounts.is_available(&user).await? {
        return Err(Error::not_found("User not found"));
    }
    Ok(user)
}

/// GET: the override, or `{}` when the configured limits apply.
pub async fn get(State(s): State<AppState>, _: Admin, Path(user_id): Path<String>) -> Result<AxumJson<Value>> {
    let user = local_user(&s, &user_id).await?;
    Ok(AxumJson(match s.limits.override_for(&user).await? {
        Some(v) => serde_json::to_value(v).map_err(Error::internal)?,
        None => json!({}),
    }))
}

/// A count in the body: absent means 0, anything but a non-negative integer is refused.
fn count(body: &Value, key: &str) -> Result<u32> {
    match body.get(key) {
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Error::invalid_param(format!("{key} must be a non-negative integer"))),
    }
}

/// POST: sets the override (`messages_per_second` 0, the default, lifts every limit).
pub async fn set(
    State(s): State<AppState>,
    _: Admin,
    Path(user_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<AxumJson<OverrideValues>> {
    let user = local_user(&s, &user_id).await?;
    let values = OverrideValues {
        messages_per_second: count(&body, "messages_per_second")?,
        burst_count: count(&body, "burst_count")?,
    };
    s.limits.set_override(&user, values).await?;
    tracing::info!(%user, ?values, "rate limit override set");
    Ok(AxumJson(values))
}

/// DELETE: the configured limits apply again.
pub async fn delete(State(s): State<AppState>, _: Admin, Path(user_id): Path<String>) -> Result<AxumJson<Value>> {
    let user = local_user(&s, &user_id).await?;
    s.limits.delete_override(&user).await?;
    tracing::info!(%user, "rate limit override removed");
    Ok(AxumJson(json!({})))
}
