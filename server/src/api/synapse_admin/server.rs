//! Synapse's server-wide admin endpoints: statistics (media per uploader, the largest rooms)
//! and background updates, answered truthfully for Hearth, which has none (what Synapse
//! computes in the background, Hearth keeps up to date as it writes).

use std::sync::atomic::{AtomicBool, Ordering};

use axum::{
    Json as AxumJson,
    extract::{Query, State},
};
use serde_json::{Map, Value, json};

use synapse_admin_api::background_updates::{enabled, run, status};

use crate::{
    api::synapse_admin::params::{self, Params},
    error::{Error, Result},
    http::{
        json::{Admin, Json},
        ruma::RumaResponse,
    },
    service::{
        AppState,
        media::{UploaderFilter, UploaderOrder},
    },
};

/// GET /_synapse/admin/v1/statistics/users/media: who uploaded how much media here.
pub async fn users_media(State(s): State<AppState>, _: Admin, Query(q): Params) -> Result<AxumJson<Value>> {
    let order = match q.get("order_by").map(String::as_str).unwrap_or("user_id") {
        "user_id" => UploaderOrder::UserId,
        "displayname" => UploaderOrder::Displayname,
        "media_count" => UploaderOrder::Count,
        "media_length" => UploaderOrder::Length,
        other => return Err(Error::invalid_param(format!("Unknown value for order_by: {other}"))),
    };
    let backwards = params::backwards(&q, false)?;
    let from_ts = params::int(&q, "from_ts", 0)?;
    let until_ts = q.get("until_ts").map(|_| params::int(&q, "until_ts", 0)).transpose()?;
    if until_ts.is_some_and(|u| u <= from_ts) {
        return Err(Error::invalid_param("Query parameter until_ts must be greater than from_ts."));
    }
    let search = match q.get("search_term") {
        Some(t) if t.is_empty() => {
            return Err(Error::invalid_param("Query parameter search_term cannot be an empty string."));
        }
        t => t.cloned(),
    };
    let filter = UploaderFilter {
        origin: String::new(),
        from_ts,
        until_ts,
        search,
        order,
        backwards,
        from: params::int(&q, "from", 0)?,
        limit: params::int(&q, "limit", 100)?,
    };
    let (from, limit) = (filter.from, filter.limit);
    let (rows, total) = s.media.uploader_stats(filter).await?;
    let users: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "user_id": r.user_id, "displayname": r.displayname, "media_count": r.media_count, "media_length": r.media_length }))
        .collect();
    let mut out = json!({ "users": users, "total": total });
    if from + limit < total {
        out["next_token"] = json!(from + rows.len() as i64);
    }
    Ok(AxumJson(out))
}

/// GET /_synapse/admin/v1/statistics/database/rooms: the ten rooms taking the most room in the
/// database (Synapse answers this on PostgreSQL only; Hearth measures its events' size).
pub async fn database_rooms(State(s): State<AppState>, _: Admin) -> Result<AxumJson<Value>> {
    let rooms: Vec<Value> = s
        .rooms
        .largest_rooms(10)
        .await?
        .into_iter()
        .map(|(room_id, size)| json!({ "room_id": room_id, "estimated_size": size }))
        .collect();
    Ok(AxumJson(json!({ "rooms": rooms })))
}

/// The admin's switch for background updates: remembered until restart, as in Synapse. Hearth
/// has none to pause, so it only changes what these endpoints say.
static UPDATES_ENABLED: AtomicBool = AtomicBool::new(true);

/// GET /_synapse/admin/v1/background_updates/enabled
pub async fn updates_enabled(_: Admin) -> RumaResponse<enabled::v1::Response> {
    RumaResponse(enabled::v1::Response::new(UPDATES_ENABLED.load(Ordering::Relaxed)))
}

/// POST /_synapse/admin/v1/background_updates/enabled `{"enabled": bool}`. The body is read
/// here, not with ruma's request type, which requires `enabled` where Synapse takes true.
pub async fn set_updates_enabled(
    _: Admin,
    Json(body): Json<Map<String, Value>>,
) -> Result<RumaResponse<enabled::v1::Response>> {
    let enabled = match body.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", "'enabled' must be a boolean"));
        }
    };
    UPDATES_ENABLED.store(enabled, Ordering::Relaxed);
    Ok(RumaResponse(enabled::v1::Response::new(enabled)))
}

/// GET /_synapse/admin/v1/background_updates/status: none is running, ever.
pub async fn updates_status(_: Admin) -> RumaResponse<status::v1::Response> {
    RumaResponse(status::v1::Response::new(UPDATES_ENABLED.load(Ordering::Relaxed), Default::default()))
}

/// POST /_synapse/admin/v1/background_updates/start_job `{"job_name"}`: the jobs Synapse knows
/// rebuild what Hearth keeps current as it writes (room statistics, the user directory), so
/// they have nothing to do; a job Synapse does not know is refused as Synapse does (ruma's
/// request type would take any name, so the body is read here).
pub async fn start_job(_: Admin, Json(body): Json<Map<String, Value>>) -> Result<RumaResponse<run::v1::Response>> {
    match body.get("job_name") {
        None => Err(Error::missing_param("Missing param 'job_name'")),
        Some(Value::String(name))
            if matches!(name.as_str(), "populate_stats_process_rooms" | "regenerate_directory") =>
        {
            tracing::info!(job = %name, "background job asked for: Hearth keeps this up to date already");
            Ok(RumaResponse(run::v1::Response::new()))
        }
        Some(_) => Err(Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", "Invalid job_name")),
    }
}

/// POST /_synapse/admin/v1/send_server_notice `{"user_id", "content", "type"?, "state_key"?}`
pub async fn send_server_notice(
    State(s): State<AppState>,
    admin: Admin,
    Json(body): Json<Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    notice(&s, admin, None, body).await
}

/// PUT /_synapse/admin/v1/send_server_notice/{txnId}: the same, sent once per transaction ID.
pub async fn send_server_notice_txn(
    State(s): State<AppState>,
    admin: Admin,
    axum::extract::Path(txn): axum::extract::Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    notice(&s, admin, Some(&txn), body).await
}

async fn notice(
    s: &AppState,
    Admin(session): Admin,
    txn: Option<&str>,
    body: Map<String, Value>,
) -> Result<AxumJson<Value>> {
    let user = match body.get("user_id") {
        Some(Value::String(u)) => {
            ruma::UserId::parse(u).map_err(|_| Error::invalid_param(format!("{u} is not a valid user ID")))?
        }
        Some(_) => return Err(Error::invalid_param("user_id must be a string")),
        None => return Err(Error::missing_param("Missing param 'user_id'")),
    };
    let content = match body.get("content") {
        Some(c @ Value::Object(_)) => c.clone(),
        Some(_) => return Err(Error::invalid_param("content must be an object")),
        None => return Err(Error::missing_param("Missing param 'content'")),
    };
    let kind = match body.get("type") {
        None => "m.room.message",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(Error::invalid_param("type must be a string")),
    };
    let state_key = match body.get("state_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(Error::invalid_param("state_key must be a string")),
    };
    let event_id = match txn {
        Some(txn) => s.send_server_notice_once(&session.user_id, txn, &user, kind, state_key, content).await?,
        None => s.send_server_notice(&user, kind, state_key, content).await?,
    };
    Ok(AxumJson(json!({ "event_id": event_id })))
}
