//! Reporting content, finding events by time, a room's aliases, knocking, and the rooms two
//! users share.

use axum::{Json, extract::State};
use ruma::{
    MilliSecondsSinceUnixEpoch, UInt,
    api::{
        Direction,
        client::{
            knock::knock_room,
            reporting::report_user,
            room::{aliases, get_event_by_timestamp, report_content, report_room},
        },
    },
};
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::ruma::{Authed, Ruma, RumaResponse},
    service::AppState,
};

const MAX_REASON: usize = 1000;

fn check_reason(reason: Option<&str>) -> Result<()> {
    if reason.is_some_and(|r| r.len() > MAX_REASON) {
        return Err(Error::invalid_param("The reason is limited to 1000 bytes"));
    }
    Ok(())
}

/// POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}
pub async fn report_content(
    State(s): State<AppState>,
    req: Ruma<report_content::v3::Request>,
) -> Result<RumaResponse<report_content::v3::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    check_reason(b.reason.as_deref())?;
    s.limits.user(&s.limits.reports, user)?;
    // An event one cannot see cannot be reported; the answer does not say whether it exists.
    let ev = s
        .rooms
        .event(b.event_id.as_str())
        .await?
        .filter(|e| e.row.room_id == b.room_id.as_str())
        .ok_or_else(|| Error::not_found("Event not found"))?;
    if !s.rooms.visibility(user, b.room_id.as_str()).await?.allows(&ev.row).await? {
        return Err(Error::not_found("Event not found"));
    }
    s.rooms.report(user, Some(&b.room_id), Some(b.event_id.as_str()), None, b.reason.as_deref()).await?;
    tracing::info!(reporter = %user, event_id = %b.event_id, "event reported");
    Ok(RumaResponse(report_content::v3::Response::new()))
}

/// POST /_matrix/client/v3/rooms/{roomId}/report
pub async fn report_room(
    State(s): State<AppState>,
    req: Ruma<report_room::v3::Request>,
) -> Result<RumaResponse<report_room::v3::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    check_reason(Some(&b.reason))?;
    s.limits.user(&s.limits.reports, user)?;
    if s.rooms.room(&b.room_id).await?.is_none() {
        return Err(Error::not_found("Room not found"));
    }
    s.rooms.report(user, Some(&b.room_id), None, None, Some(&b.reason)).await?;
    tracing::info!(reporter = %user, room_id = %b.room_id, "room reported");
    Ok(RumaResponse(report_room::v3::Response::new()))
}

/// POST /_matrix/client/v3/users/{userId}/report
pub async fn report_user(
    State(s): State<AppState>,
    req: Ruma<report_user::v3::Request>,
) -> Result<RumaResponse<report_user::v3::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    check_reason(Some(&b.reason))?;
    s.limits.user(&s.limits.reports, user)?;
    if b.user_id.server_name() == s.config.server_name && s.rooms.profile(&b.user_id).await?.is_none() {
        return Err(Error::not_found("User not found"));
    }
    s.rooms.report(user, None, None, Some(&b.user_id), Some(&b.reason)).await?;
    tracing::info!(reporter = %user, reported = %b.user_id, "user reported");
    Ok(RumaResponse(report_user::v3::Response::new()))
}

/// GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event
pub async fn get_event_by_timestamp(
    State(s): State<AppState>,
    req: Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<RumaResponse<get_event_by_timestamp::v1::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    if !s.rooms.may_read_room(user, &b.room_id).await? {
        return Err(Error::forbidden("You are not in this room"));
    }
    let ts = u64::from(b.ts.0) as i64;
    let forward = b.dir == Direction::Forward;
    let mut check = s.rooms.visibility(user, b.room_id.as_str()).await?;
    // Look at a bounded number of candidates: the closest visible one wins.
    let rows = s.rooms.events_near(&b.room_id, ts, forward, 200).await?;
    for row in rows {
        if check.allows(&row).await? {
            let ev = crate::service::rooms::parse_row(row)?;
            let ts = ev.origin_server_ts().unwrap_or(0);
            let ts = MilliSecondsSinceUnixEpoch(UInt::try_from(ts).unwrap_or_default());
            let id = ruma::EventId::parse(&ev.row.event_id).map_err(Error::internal)?;
            return Ok(RumaResponse(get_event_by_timestamp::v1::Response::new(id, ts)));
        }
    }
    Err(Error::not_found("No event found in that direction"))
}

/// GET /_matrix/client/v3/rooms/{roomId}/aliases
pub async fn get_room_aliases(
    State(s): State<AppState>,
    req: Ruma<aliases::v3::Request>,
) -> Result<RumaResponse<aliases::v3::Response>> {
    let b = &req.body;
    if !s.rooms.may_read_room(&req.session().user_id, &b.room_id).await? {
        return Err(Error::forbidden("You are not in this room"));
    }
    let list = s.rooms.aliases_of(&b.room_id).await?.into_iter().filter_map(|a| a.try_into().ok()).collect();
    Ok(RumaResponse(aliases::v3::Response::new(list)))
}

/// POST /_matrix/client/v3/knock/{roomIdOrAlias}
pub async fn knock_room(
    State(s): State<AppState>,
    req: Ruma<knock_room::v3::Request>,
) -> Result<RumaResponse<knock_room::v3::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    req.session().refuse_if_suspended("Knocking on rooms")?;
    // Another server's alias is asked of that server, which names servers to knock through.
    let (room_id, mut servers) = match <&ruma::RoomAliasId>::try_from(&*b.room_id_or_alias) {
        Ok(alias) => s.federation.resolve_alias(alias).await?,
        Err(_) => (ruma::RoomId::parse(b.room_id_or_alias.as_str()).map_err(Error::internal)?, Vec::new()),
    };
    s.limits.event(user, false)?;
    let mut via = b.via.clone();
    via.append(&mut servers);
    s.federation.knock(&room_id, &via, user, b.reason.as_deref()).await?;
    Ok(RumaResponse(knock_room::v3::Response::new(room_id)))
}

#[derive(serde::Deserialize)]
pub struct MutualQuery {
    user_id: ruma::OwnedUserId,
    from: Option<String>,
}

/// GET /_matrix/client/v1/mutual_rooms (spec v1.19; MSC2666's unstable path too). Every room
/// comes in one batch, so no `next_batch` is ever given and any `from` is unknown.
pub async fn mutual_rooms(
    Authed(session): Authed,
    State(s): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<MutualQuery>,
) -> Result<Json<Value>> {
    if q.user_id == session.user_id {
        return Err(Error::invalid_param("You cannot ask for the rooms you share with yourself"));
    }
    if q.from.is_some() {
        return Err(Error::invalid_param("Unknown `from` token: every shared room comes in the first batch"));
    }
    let rooms = s.rooms.shared_rooms(&session.user_id, &q.user_id).await?;
    Ok(Json(json!({ "count": rooms.len(), "joined": rooms })))
}
