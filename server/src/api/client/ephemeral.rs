//! Typing notifications, read receipts and read markers.

use std::time::Duration;

use axum::extract::State;
use ruma::api::client::{
    read_marker::set_read_marker,
    receipt::create_receipt::{self, v3::ReceiptType},
    typing::create_typing_event::{self, v3::Typing},
};
use ruma::events::receipt::ReceiptThread;
use serde_json::json;

use super::room::require_joined;
use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}
pub async fn create_typing_event(
    State(s): State<AppState>,
    req: Ruma<create_typing_event::v3::Request>,
) -> Result<RumaResponse<create_typing_event::v3::Response>> {
    let b = &req.body;
    let me = &req.session().user_id;
    if *me != b.user_id {
        return Err(Error::forbidden("You can only set your own typing state"));
    }
    require_joined(&s, &b.room_id, me).await?;
    if req.session().shadow_banned {
        return Ok(RumaResponse(create_typing_event::v3::Response::new()));
    }
    let timeout = match &b.state {
        Typing::Yes(info) => Some(info.timeout),
        _ => None,
    };
    s.ephemeral.set_typing(&b.room_id, me, timeout.map(|t: Duration| t.max(Duration::from_millis(1))));
    Ok(RumaResponse(create_typing_event::v3::Response::new()))
}

fn thread_id(t: &ReceiptThread) -> Result<String> {
    Ok(match t {
        ReceiptThread::Unthreaded => String::new(),
        ReceiptThread::Main => "main".to_owned(),
        ReceiptThread::Thread(id) => id.to_string(),
        _ => return Err(Error::invalid_param("Unknown thread_id")),
    })
}

/// POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}
pub async fn create_receipt(
    State(s): State<AppState>,
    req: Ruma<create_receipt::v3::Request>,
) -> Result<RumaResponse<create_receipt::v3::Response>> {
    let b = &req.body;
    let me = &req.session().user_id;
    require_joined(&s, &b.room_id, me).await?;
    let event = s.rooms.event(b.event_id.as_str()).await?.filter(|e| e.row.room_id == b.room_id.as_str());
    if event.is_none() {
        return Err(Error::not_found("No such event in this room"));
    }
    let thread = thread_id(&b.thread)?;
    match &b.receipt_type {
        ReceiptType::Read | ReceiptType::ReadPrivate => {
            s.ephemeral.put_receipt(&b.room_id, me, b.receipt_type.as_ref(), &thread, b.event_id.as_str()).await?;
        }
        ReceiptType::FullyRead => {
            if !thread.is_empty() {
                return Err(Error::invalid_param("m.fully_read cannot be threaded"));
            }
            s.account_data.put(me, Some(&b.room_id), "m.fully_read", &json!({ "event_id": b.event_id })).await?;
        }
        other => return Err(Error::invalid_param(format!("Unknown receipt type {}", other.as_ref()))),
    }
    Ok(RumaResponse(create_receipt::v3::Response::new()))
}

/// POST /_matrix/client/v3/rooms/{roomId}/read_markers
pub async fn set_read_marker(
    State(s): State<AppState>,
    req: Ruma<set_read_marker::v3::Request>,
) -> Result<RumaResponse<set_read_marker::v3::Response>> {
    let b = &req.body;
    let me = &req.session().user_id;
    require_joined(&s, &b.room_id, me).await?;
    for id in [&b.fully_read, &b.read_receipt, &b.private_read_receipt].into_iter().flatten() {
        if s.rooms.event(id.as_str()).await?.filter(|e| e.row.room_id == b.room_id.as_str()).is_none() {
            return Err(Error::not_found("No such event in this room"));
        }
    }
    if let Some(id) = &b.fully_read {
        s.account_data.put(me, Some(&b.room_id), "m.fully_read", &json!({ "event_id": id })).await?;
    }
    if let Some(id) = &b.read_receipt {
        s.ephemeral.put_receipt(&b.room_id, me, "m.read", "", id.as_str()).await?;
    }
    if let Some(id) = &b.private_read_receipt {
        s.ephemeral.put_receipt(&b.room_id, me, "m.read.private", "", id.as_str()).await?;
    }
    Ok(RumaResponse(set_read_marker::v3::Response::new()))
}
