//! /relations, /threads and /context.

use axum::extract::State;
use ruma::{
    EventId, RoomId, UserId,
    api::{
        Direction,
        client::{
            context::get_context,
            relations::{
                get_relating_events, get_relating_events_with_rel_type,
                get_relating_events_with_rel_type_and_event_type,
            },
            threads::get_threads::{self, v1::IncludeThreads},
        },
    },
};
use serde_json::Value;

use super::room::{raw_json, view};
use crate::{
    error::{Error, Result},
    http::ruma::{Authed, Ruma, RumaResponse},
    service::{AppState, rooms::parse_row, sync},
};

const MAX_PAGE: u64 = 1000;

struct ThreadsRequest {
    room_id: ruma::OwnedRoomId,
    from: Option<String>,
    include: IncludeThreads,
    limit: Option<u64>,
}
const DEFAULT_PAGE: u64 = 50;

/// The parent must exist in the room and be visible to the user.
async fn check_parent(s: &AppState, user: &UserId, room_id: &RoomId, event_id: &EventId) -> Result<()> {
    let not_found = || Error::not_found("Event not found");
    let parent =
        s.rooms.event(event_id.as_str()).await?.filter(|e| e.row.room_id == room_id.as_str()).ok_or_else(not_found)?;
    if !s.rooms.visibility(user, room_id.as_str()).await?.allows(&parent.row).await? {
        return Err(not_found());
    }
    Ok(())
}

struct RelationsPage {
    chunk: Vec<Value>,
    next_batch: Option<String>,
}

#[allow(clippy::too_many_arguments)]
async fn relations_page(
    s: &AppState,
    user: &UserId,
    room_id: &RoomId,
    event_id: &EventId,
    rel_type: Option<&str>,
    event_type: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
    dir: Direction,
    limit: Option<u64>,
) -> Result<RelationsPage> {
    check_parent(s, user, room_id, event_id).await?;
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as i64;
    let forward = dir == Direction::Forward;
    let from = from.map(sync::parse_token).transpose()?;
    let to = to.map(sync::parse_token).transpose()?;
    // Backwards: positions below `from` down to `to`; forwards: above `from` up to `to`.
    let (after, before) = if forward {
        (from.unwrap_or(0), to.map_or(i64::MAX, |t| t + 1))
    } else {
        (to.unwrap_or(0), from.map_or(i64::MAX, |f| f + 1))
    };
    let rows = s.rooms.relations_page(event_id.as_str(), rel_type, event_type, (after, before), forward, limit).await?;
    let next_batch = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| sync::token(if forward { r.stream_ordering } else { r.stream_ordering - 1 })))
        .flatten();
    let ids: Vec<String> = rows.iter().map(|r| r.event_id.clone()).collect();
    let events = s.rooms.events_in_order(&ids).await?;
    let mut check = s.rooms.visibility(user, room_id.as_str()).await?;
    let mut chunk = Vec::new();
    for e in events {
        if check.allows(&e.row).await? {
            let mut v = view(&e);
            check.annotate(&e.row, &mut v).await?;
            chunk.push(v);
        }
    }
    Ok(RelationsPage { chunk, next_batch })
}

/// GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}
pub async fn get_relating_events(
    State(s): State<AppState>,
    req: Ruma<get_relating_events::v1::Request>,
) -> Result<RumaResponse<get_relating_events::v1::Response>> {
    let b = &req.body;
    let p = relations_page(
        &s,
        &req.session().user_id,
        &b.room_id,
        &b.event_id,
        None,
        None,
        b.from.as_deref(),
        b.to.as_deref(),
        b.dir,
        b.limit.map(u64::from),
    )
    .await?;
    let mut resp = get_relating_events::v1::Response::new(p.chunk.iter().map(raw_json).collect::<Result<_>>()?);
    resp.next_batch = p.next_batch;
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}
pub async fn get_relating_events_with_rel_type(
    State(s): State<AppState>,
    req: Ruma<get_relating_events_with_rel_type::v1::Request>,
) -> Result<RumaResponse<get_relating_events_with_rel_type::v1::Response>> {
    let b = &req.body;
    let rel = b.rel_type.to_string();
    let p = relations_page(
        &s,
        &req.session().user_id,
        &b.room_id,
        &b.event_id,
        Some(&rel),
        None,
        b.from.as_deref(),
        b.to.as_deref(),
        b.dir,
        b.limit.map(u64::from),
    )
    .await?;
    let mut resp =
        get_relating_events_with_rel_type::v1::Response::new(p.chunk.iter().map(raw_json).collect::<Result<_>>()?);
    resp.next_batch = p.next_batch;
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}
pub async fn get_relating_events_with_rel_type_and_event_type(
    State(s): State<AppState>,
    req: Ruma<get_relating_events_with_rel_type_and_event_type::v1::Request>,
) -> Result<RumaResponse<get_relating_events_with_rel_type_and_event_type::v1::Response>> {
    let b = &req.body;
    let rel = b.rel_type.to_string();
    let kind = b.event_type.to_string();
    let p = relations_page(
        &s,
        &req.session().user_id,
        &b.room_id,
        &b.event_id,
        Some(&rel),
        Some(&kind),
        b.from.as_deref(),
        b.to.as_deref(),
        b.dir,
        b.limit.map(u64::from),
    )
    .await?;
    let mut resp = get_relating_events_with_rel_type_and_event_type::v1::Response::new(
        p.chunk.iter().map(raw_json).collect::<Result<_>>()?,
    );
    resp.next_batch = p.next_batch;
    Ok(RumaResponse(resp))
}

#[derive(serde::Deserialize)]
pub struct ThreadsQuery {
    from: Option<String>,
    #[serde(default)]
    include: IncludeThreads,
    limit: Option<u64>,
}

/// GET /_matrix/client/v1/rooms/{roomId}/threads
///
/// Served without ruma's request type: ruma 0.16 requires the optional `include` parameter
/// (the spec defaults it to `all`), which would refuse Element's requests.
pub async fn get_threads(
    Authed(session): Authed,
    State(s): State<AppState>,
    axum::extract::Path(room_id): axum::extract::Path<ruma::OwnedRoomId>,
    axum::extract::Query(q): axum::extract::Query<ThreadsQuery>,
) -> Result<RumaResponse<get_threads::v1::Response>> {
    let user = &session.user_id;
    let b = ThreadsRequest { room_id, from: q.from, include: q.include, limit: q.limit };
    if !s.rooms.may_read_room(user, &b.room_id).await? {
        return Err(Error::forbidden("You are not in this room"));
    }
    let limit = b.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as i64;
    let before = b.from.as_deref().map(sync::parse_token).transpose()?.map_or(i64::MAX, |f| f + 1);
    let participant = matches!(b.include, IncludeThreads::Participated).then_some(user.as_str());
    let roots = s.rooms.threads(&b.room_id, participant, before, limit).await?;
    let next_batch =
        (roots.len() as i64 == limit).then(|| roots.last().map(|(_, latest)| sync::token(latest - 1))).flatten();
    let ids: Vec<String> = roots.iter().map(|(id, _)| id.clone()).collect();
    let events = s.rooms.events_in_order(&ids).await?;
    let mut check = s.rooms.visibility(user, b.room_id.as_str()).await?;
    let mut chunk = Vec::new();
    for e in events {
        if check.allows(&e.row).await? {
            let mut v = view(&e);
            check.annotate(&e.row, &mut v).await?;
            chunk.push(v);
        }
    }
    s.rooms.bundle(user, b.room_id.as_str(), &mut chunk).await?;
    let mut resp = get_threads::v1::Response::new(chunk.iter().map(raw_json).collect::<Result<_>>()?);
    resp.next_batch = next_batch;
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}
pub async fn get_context(
    State(s): State<AppState>,
    req: Ruma<get_context::v3::Request>,
) -> Result<RumaResponse<get_context::v3::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    let not_found = || Error::not_found("Event not found");
    let limit = u64::from(b.limit).min(MAX_PAGE) as i64;
    let ctx = s.rooms.context(&b.room_id, b.event_id.as_str(), limit).await?.ok_or_else(not_found)?;
    let mut check = s.rooms.visibility(user, b.room_id.as_str()).await?;
    if !check.allows(&ctx.event.row).await? {
        return Err(not_found());
    }
    let room = b.room_id.as_str();
    let mut before = Vec::new();
    let mut after = Vec::new();
    for (rows, out) in [(ctx.before, &mut before), (ctx.after, &mut after)] {
        for row in check.filter(rows).await? {
            let e = parse_row(row)?;
            let mut v = view(&e);
            check.annotate(&e.row, &mut v).await?;
            out.push(v);
        }
    }
    let mut event = vec![view(&ctx.event)];
    check.annotate(&ctx.event.row, &mut event[0]).await?;
    s.rooms.bundle(user, room, &mut before).await?;
    s.rooms.bundle(user, room, &mut after).await?;
    s.rooms.bundle(user, room, &mut event).await?;
    let mut resp = get_context::v3::Response::new();
    resp.start = Some(sync::token(ctx.start));
    resp.end = Some(sync::token(ctx.end));
    resp.events_before = before.iter().map(raw_json).collect::<Result<_>>()?;
    resp.event = Some(raw_json(&event[0])?);
    resp.events_after = after.iter().map(raw_json).collect::<Result<_>>()?;
    resp.state = ctx.state.iter().map(|e| raw_json(&view(e))).collect::<Result<_>>()?;
    Ok(RumaResponse(resp))
}
