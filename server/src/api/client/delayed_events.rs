//! Delayed events (MSC4140) at Synapse's unstable paths: `?org.matrix.msc4140.delay=` on
//! `/send` and `/state`, and `/_matrix/client/unstable/org.matrix.msc4140/delayed_events`.

use std::{net::IpAddr, time::Duration};

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ruma::api::OutgoingResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::{
        json::Json,
        ruma::{Authed, MaybeAuthed, RumaResponse},
    },
    service::{AppState, accounts::Session, delayed_events::DelayedEvent, ratelimit::address_key},
};

/// The query parameter that asks for an event to be scheduled.
const DELAY_PARAM: &str = "org.matrix.msc4140.delay";

const PREFIX: &str = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route(PREFIX, get(list))
        .route(&format!("{PREFIX}/{{delay_id}}"), get(get_one).post(update))
        .route(&format!("{PREFIX}/{{delay_id}}/cancel"), post(cancel))
        .route(&format!("{PREFIX}/{{delay_id}}/restart"), post(restart))
        .route(&format!("{PREFIX}/{{delay_id}}/send"), post(send))
}

/// The delay a `/send` or `/state` request asks for, in milliseconds (Synapse's integer rules:
/// a number, not negative).
pub fn requested_delay(query: Option<&str>) -> Result<Option<Duration>> {
    let Some(q) = query else { return Ok(None) };
    let Some((_, v)) = form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == DELAY_PARAM) else {
        return Ok(None);
    };
    match v.parse::<i64>() {
        Ok(ms) if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        Ok(_) => Err(Error::invalid_param(format!("Query parameter {DELAY_PARAM:?} must be a positive integer"))),
        Err(_) => Err(Error::invalid_param(format!("Query parameter {DELAY_PARAM:?} must be an integer"))),
    }
}

/// The answer of `/send` and `/state`: the event's ID, or the delay ID when it was scheduled.
pub enum Delayable<R> {
    Sent(RumaResponse<R>),
    Delayed(String),
}

impl<R: OutgoingResponse> IntoResponse for Delayable<R> {
    fn into_response(self) -> Response {
        match self {
            Delayable::Sent(r) => r.into_response(),
            Delayable::Delayed(delay_id) => axum::Json(json!({ "delay_id": delay_id })).into_response(),
        }
    }
}

/// A scheduled event as Synapse lists it.
fn view(e: &DelayedEvent) -> Value {
    let content: Value = serde_json::from_str(&e.content).unwrap_or_else(|_| json!({}));
    let mut v = json!({
        "delay_id": e.delay_id,
        "room_id": e.room_id,
        "type": e.event_type,
        "delay_ms": e.delay_ms,
        "delayed_since_ts": e.send_ts - e.delay_ms,
        "content": content,
    });
    if let Some(k) = &e.state_key {
        v["state_key"] = json!(k);
    }
    v
}

/// GET .../delayed_events: the user's scheduled events, soonest first.
async fn list(Authed(session): Authed, State(s): State<AppState>) -> Result<axum::Json<Value>> {
    s.limits.user(&s.limits.delayed_event_mgmt, &session.user_id)?;
    let events: Vec<Value> = s
        .delayed
        .list(&session.user_id)
        .await?
        .iter()
        .map(|e| {
            // The field names of earlier drafts of the MSC, which clients still read (as Synapse).
            let mut v = view(e);
            v["delay"] = json!(e.delay_ms);
            v["running_since"] = json!(e.send_ts - e.delay_ms);
            v
        })
        .collect();
    Ok(axum::Json(json!({ "delayed_events": events })))
}

/// GET .../delayed_events/{delay_id}: one of the user's scheduled events.
async fn get_one(
    Authed(session): Authed,
    State(s): State<AppState>,
    Path(delay_id): Path<String>,
) -> Result<axum::Json<Value>> {
    s.limits.user(&s.limits.delayed_event_mgmt, &session.user_id)?;
    Ok(axum::Json(view(&s.delayed.get(&session.user_id, &delay_id).await?)))
}

#[derive(Deserialize)]
struct UpdateBody {
    action: Option<Value>,
}

#[derive(Clone, Copy)]
enum Action {
    Cancel,
    Restart,
    Send,
}

/// POST .../delayed_events/{delay_id} with `{"action": "cancel" | "restart" | "send"}`.
async fn update(
    MaybeAuthed(session, ip): MaybeAuthed,
    State(s): State<AppState>,
    Path(delay_id): Path<String>,
    Json(body): Json<UpdateBody>,
) -> Result<axum::Json<Value>> {
    let action = match body.action {
        None => return Err(Error::missing_param("'action' is missing")),
        Some(Value::String(a)) if a == "cancel" => Action::Cancel,
        Some(Value::String(a)) if a == "restart" => Action::Restart,
        Some(Value::String(a)) if a == "send" => Action::Send,
        Some(_) => return Err(Error::invalid_param("'action' is not one of 'cancel', 'restart', 'send'")),
    };
    act(&s, session, ip, &delay_id, action).await
}

async fn cancel(
    MaybeAuthed(session, ip): MaybeAuthed,
    State(s): State<AppState>,
    Path(delay_id): Path<String>,
) -> Result<axum::Json<Value>> {
    act(&s, session, ip, &delay_id, Action::Cancel).await
}

async fn restart(
    MaybeAuthed(session, ip): MaybeAuthed,
    State(s): State<AppState>,
    Path(delay_id): Path<String>,
) -> Result<axum::Json<Value>> {
    act(&s, session, ip, &delay_id, Action::Restart).await
}

async fn send(
    MaybeAuthed(session, ip): MaybeAuthed,
    State(s): State<AppState>,
    Path(delay_id): Path<String>,
) -> Result<axum::Json<Value>> {
    act(&s, session, ip, &delay_id, Action::Send).await
}

/// One management action. Knowing the delay ID is enough, as in Synapse (a call's server side
/// may act for a client that is gone); the limit is per user, or per address without a token.
async fn act(
    s: &AppState,
    session: Option<Session>,
    ip: Option<IpAddr>,
    delay_id: &str,
    action: Action,
) -> Result<axum::Json<Value>> {
    match &session {
        Some(session) => s.limits.user(&s.limits.delayed_event_mgmt, &session.user_id)?,
        None => s.limits.delayed_event_mgmt.check(&address_key(ip))?,
    }
    match action {
        Action::Cancel => s.delayed.cancel(delay_id).await?,
        Action::Restart => s.delayed.restart(delay_id).await?,
        Action::Send => s.delayed.send_now(delay_id).await?,
    }
    Ok(axum::Json(json!({})))
}
