//! Synapse's federation admin API (`/_synapse/admin/v1/federation/destinations…`): the servers
//! this one sends to, with their back-off and delivery state, the rooms each shares with it,
//! and ending a back-off (`reset_connection`).

use std::cmp::Ordering;

use axum::{
    Json as AxumJson,
    extract::{Path, Query, State},
};
use serde_json::{Value, json};

use crate::{
    api::synapse_admin::params::{self, Params},
    error::{Error, Result},
    http::json::Admin,
    service::{AppState, federation::sender::DestinationView},
};

/// A destination as Synapse shows it: `retry_last_ts` is when the last failed attempt was (0
/// while it answers), `retry_interval` the wait before the next, `failure_ts` since when it
/// fails, `last_successful_stream_ordering` the last event it accepted (null before any).
fn destination_json(d: &DestinationView) -> Value {
    let s = &d.status;
    json!({
        "destination": s.destination,
        "retry_last_ts": s.retry_at.map_or(0, |at| at - s.backoff_ms),
        "retry_interval": s.backoff_ms,
        "failure_ts": s.failure_ts,
        "last_successful_stream_ordering": s.last_success_ts.map(|_| s.stream_position),
    })
}

const ORDERS: [&str; 5] =
    ["destination", "retry_last_ts", "retry_interval", "failure_ts", "last_successful_stream_ordering"];

fn compare(a: &Value, b: &Value, key: &str) -> Ordering {
    let key_of = |v: &Value| match &v[key] {
        Value::Number(n) => (1, n.as_i64().unwrap_or(0), String::new()),
        Value::String(s) => (1, 0, s.clone()),
        _ => (0, 0, String::new()),
    };
    key_of(a).cmp(&key_of(b))
}

async fn known(s: &AppState, destination: &str) -> Result<DestinationView> {
    s.federation
        .sender
        .destinations()
        .await?
        .into_iter()
        .find(|d| d.status.destination == destination)
        .ok_or_else(|| Error::not_found("Unknown destination"))
}

/// GET /_synapse/admin/v1/federation/destinations: `destination` (a part of the name),
/// `order_by`, `dir`, `from`/`limit` with `next_token` and `total`.
pub async fn list(State(s): State<AppState>, _: Admin, Query(q): Params) -> Result<AxumJson<Value>> {
    let from = params::int(&q, "from", 0)?;
    let limit = params::int(&q, "limit", 100)?;
    let order_by = q.get("order_by").map_or("destination", String::as_str);
    if !ORDERS.contains(&order_by) {
        return Err(Error::invalid_param(format!(
            "Query parameter \"order_by\" must be one of [{}]",
            ORDERS.map(|o| format!("\"{o}\"")).join(", ")
        )));
    }
    let backwards = params::backwards(&q, false)?;
    let search = q.get("destination").map(|d| d.to_lowercase());
    let mut all: Vec<Value> = s
        .federation
        .sender
        .destinations()
        .await?
        .iter()
        .filter(|d| search.as_ref().is_none_or(|x| d.status.destination.to_lowercase().contains(x)))
        .map(destination_json)
        .collect();
    all.sort_by(|a, b| {
        let by = compare(a, b, order_by);
        let by = if backwards { by.reverse() } else { by };
        by.then_with(|| compare(a, b, "destination"))
    });
    let total = all.len() as i64;
    let page: Vec<Value> = all.into_iter().skip(from as usize).take(limit as usize).collect();
    let mut out = json!({ "destinations": page, "total": total });
    if from + limit < total {
        out["next_token"] = json!((from + limit.min(total - from)).to_string());
    }
    Ok(AxumJson(out))
}

/// GET /_synapse/admin/v1/federation/destinations/{destination}
pub async fn details(State(s): State<AppState>, _: Admin, Path(destination): Path<String>) -> Result<AxumJson<Value>> {
    Ok(AxumJson(destination_json(&known(&s, &destination).await?)))
}

/// GET /_synapse/admin/v1/federation/destinations/{destination}/rooms: the rooms it shares with
/// this server, by room ID (`dir`, `from`/`limit`).
pub async fn rooms(
    State(s): State<AppState>,
    _: Admin,
    Path(destination): Path<String>,
    Query(q): Params,
) -> Result<AxumJson<Value>> {
    let d = known(&s, &destination).await?;
    let from = params::int(&q, "from", 0)?;
    let limit = params::int(&q, "limit", 100)?;
    let backwards = params::backwards(&q, false)?;
    let mut rooms = s.federation.sender.rooms_shared_with(&destination, d.status.stream_position).await?;
    if backwards {
        rooms.reverse();
    }
    let total = rooms.len() as i64;
    let page: Vec<Value> = rooms
        .into_iter()
        .skip(from as usize)
        .take(limit as usize)
        .map(|(room_id, pos)| json!({ "room_id": room_id, "stream_ordering": pos }))
        .collect();
    let mut out = json!({ "rooms": page, "total": total });
    if from + limit < total {
        out["next_token"] = json!((from + limit.min(total - from)).to_string());
    }
    Ok(AxumJson(out))
}

/// POST /_synapse/admin/v1/federation/destinations/{destination}/reset_connection: ends its
/// back-off so what waits for it is sent now (400 when it is not backing off, as Synapse).
pub async fn reset_connection(
    State(s): State<AppState>,
    _: Admin,
    Path(destination): Path<String>,
) -> Result<AxumJson<Value>> {
    let d = known(&s, &destination).await?;
    if d.status.retry_at.is_none() || !s.federation.sender.reset_backoff(&destination).await? {
        return Err(Error::custom(
            http::StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "The retry timing does not need to be reset for this destination.",
        ));
    }
    Ok(AxumJson(json!({})))
}
