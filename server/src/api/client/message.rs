//! Sending room events and paginating the timeline.

use axum::extract::{RawQuery, State};
use ruma::api::{
    Direction,
    client::message::{get_message_events, send_message_event},
};

use super::{
    delayed_events::{Delayable, requested_delay},
    room::{raw_json, view},
};
use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::{AppState, delayed_events::Schedule, rooms::Txn, sync, tokens},
};

/// Most events one /messages page returns.
const MAX_PAGE: u64 = 1000;

/// PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
/// <https://spec.matrix.org/v1.19/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid>
pub async fn send_message_event(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    req: Ruma<send_message_event::v3::Request>,
) -> Result<Delayable<send_message_event::v3::Response>> {
    let session = req.session();
    session.refuse_if_suspended("Sending messages")?;
    let b = &req.body;
    if session.shadow_banned {
        return Ok(Delayable::Sent(RumaResponse(send_message_event::v3::Response::new(tokens::fake_event_id()))));
    }
    let content: serde_json::Value =
        serde_json::from_str(b.body.json().get()).map_err(|e| Error::bad_json(e.to_string()))?;
    let event_type = b.event_type.to_string();
    if let Some(delay) = requested_delay(query.as_deref())? {
        s.limits.event(&session.user_id, false)?;
        let delay_id = s
            .delayed
            .schedule(Schedule {
                room_id: &b.room_id,
                user: &session.user_id,
                event_type: &event_type,
                state_key: None,
                content,
                delay,
                txn: Some((session.device_id.as_str(), b.txn_id.as_str())),
            })
            .await?;
        return Ok(Delayable::Delayed(delay_id));
    }
    let txn =
        Txn { user_id: session.user_id.as_str(), device_id: session.device_id.as_str(), txn_id: b.txn_id.as_str() };
    // A retry of a send already made is answered from the first; it is not another event.
    if !s.rooms.is_retry(&b.room_id, &event_type, txn) {
        s.limits.event(&session.user_id, false)?;
    }
    let event_id = s.rooms.send(&b.room_id, &session.user_id, &event_type, None, content, Some(txn)).await?;
    Ok(Delayable::Sent(RumaResponse(send_message_event::v3::Response::new(event_id))))
}

/// GET /_matrix/client/v3/rooms/{roomId}/messages
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3roomsroomidmessages>
///
/// Tokens are stream positions (`s<n>`): backwards from `s<n>` returns events at or before n,
/// forwards returns events after n.
pub async fn get_message_events(
    State(s): State<AppState>,
    req: Ruma<get_message_events::v3::Request>,
) -> Result<RumaResponse<get_message_events::v3::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    if !s.rooms.may_read_room(user, &b.room_id).await? {
        return Err(Error::forbidden("You are not in this room"));
    }
    let limit = u64::from(b.limit).clamp(1, MAX_PAGE) as i64;
    let head = s.rooms.stream_head();
    let from = match &b.from {
        Some(t) => sync::parse_token(t)?,
        None if b.dir == Direction::Backward => head,
        None => i64::MIN,
    };
    let to = b.to.as_deref().map(sync::parse_token).transpose()?;
    let (rows, end) = match b.dir {
        Direction::Backward => {
            // History before the start of what is here (backfilled from other servers) lives
            // at negative positions.
            let lower = to.unwrap_or(i64::MIN);
            let mut rows = s.rooms.timeline_desc(&b.room_id, lower, from, limit).await?;
            // Paged back past what is here: ask the room's other servers for the rest.
            let mut more_elsewhere = false;
            let short = limit - rows.len() as i64;
            if short > 0 && to.is_none() {
                match s.federation.backfill_from_others(&b.room_id, limit as u32, short as usize).await {
                    Ok(got) => {
                        more_elsewhere = got.more;
                        if got.stored > 0 {
                            rows = s.rooms.timeline_desc(&b.room_id, lower, from, limit).await?;
                        }
                    }
                    Err(e) => tracing::info!(error = %e.message(), "backfill failed"),
                }
            }
            // No `end` only at the start of the room's history, or where no server had more.
            let end = (rows.len() as i64 == limit || more_elsewhere)
                .then(|| rows.last().map(|r| r.stream_ordering - 1))
                .flatten();
            (rows, end)
        }
        _ => {
            let upper = to.map(|t| t + 1).unwrap_or(head + 1);
            let rows = s.rooms.timeline_asc(&b.room_id, from.saturating_add(1), upper, limit).await?;
            let end = rows.last().map(|r| r.stream_ordering);
            (rows, end)
        }
    };
    // Pagination positions come from the unfiltered page; hidden events are just left out.
    let mut check = s.rooms.visibility(user, b.room_id.as_str()).await?;
    let rows = check.filter(rows).await?;
    let filter =
        crate::matrix::filter::EventFilter::from_json(&serde_json::to_value(&b.filter).map_err(Error::internal)?);
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let e = crate::service::rooms::parse_row(row)?;
        let mut v = view(&e);
        if filter.allows(&v) {
            check.annotate(&e.row, &mut v).await?;
            views.push(v);
        }
    }
    s.rooms.bundle(user, b.room_id.as_str(), &mut views).await?;
    let events = views.iter().map(raw_json).collect::<Result<Vec<_>>>()?;
    // Lazy-loading members: the member events of this page's senders (spec: "Lazy-loading room
    // members").
    let mut state = Vec::new();
    if filter.lazy_load_members {
        let mut senders: Vec<&str> = views.iter().filter_map(|v| v["sender"].as_str()).collect();
        senders.sort_unstable();
        senders.dedup();
        for sender in senders {
            if let Some(m) = s.rooms.current_state_event(&b.room_id, "m.room.member", sender).await? {
                state.push(raw_json(&view(&m))?);
            }
        }
    }
    let mut resp = get_message_events::v3::Response::new();
    resp.start = sync::token(from);
    resp.end = end.map(sync::token);
    resp.chunk = events;
    resp.state = state;
    Ok(RumaResponse(resp))
}

/// PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
/// <https://spec.matrix.org/v1.19/client-server-api/#put_matrixclientv3roomsroomidredacteventidtxnid>
pub async fn redact_event(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::redact::redact_event::v3::Request>,
) -> Result<RumaResponse<ruma::api::client::redact::redact_event::v3::Response>> {
    let session = req.session();
    let b = &req.body;
    if session.shadow_banned {
        return Ok(RumaResponse(ruma::api::client::redact::redact_event::v3::Response::new(tokens::fake_event_id())));
    }
    let txn =
        Txn { user_id: session.user_id.as_str(), device_id: session.device_id.as_str(), txn_id: b.txn_id.as_str() };
    if !s.rooms.is_retry(&b.room_id, "m.room.redaction", txn) {
        // A moderator removing someone else's event counts under `rc_admin_redaction` when set;
        // a suspended user may redact only their own.
        let of_another = if s.limits.separate_admin_redactions() || session.suspended {
            s.rooms.event(b.event_id.as_str()).await?.is_some_and(|e| e.row.sender != session.user_id.as_str())
        } else {
            false
        };
        if of_another {
            session.refuse_if_suspended("Redacting other people's events")?;
        }
        s.limits.event(&session.user_id, of_another)?;
    }
    let event_id = s.rooms.redact(&b.room_id, &session.user_id, &b.event_id, b.reason.as_deref(), Some(txn)).await?;
    Ok(RumaResponse(ruma::api::client::redact::redact_event::v3::Response::new(event_id)))
}
