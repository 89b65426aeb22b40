//! Synapse's room and report admin API (`/_synapse/admin/v1/rooms…`, `event_reports`): the
//! rooms with Synapse's order, search and paging, a room's details, members, state and forward
//! extremities, and reports about events.

use std::{cmp::Ordering, collections::HashMap};

use axum::{
    Json as AxumJson,
    extract::{Path, Query, State},
};
use ruma::{
    OwnedRoomId, OwnedUserId, RoomAliasId, RoomId, UInt, UserId,
    events::room::{guest_access::GuestAccess, history_visibility::HistoryVisibility},
    room::{JoinRuleKind, RoomType},
};
use serde::Serialize;
use serde_json::{Value, json};
use synapse_admin_api::{
    room_membership::join_room,
    rooms::{
        list_rooms::v1::{RoomDetails, RoomSortOrder},
        room_members,
    },
};

use crate::{
    api::synapse_admin::params::{self, Params},
    error::{Error, Result},
    http::{json::Admin, ruma::RumaResponse},
    service::{
        AppState,
        rooms::{EventReport, ReportFilter, admin::RoomStats},
    },
};

fn room_id(raw: &str) -> Result<&RoomId> {
    <&RoomId>::try_from(raw)
        .map_err(|_| Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", format!("{raw} is not a legal room ID")))
}

/// The ID of a room the server knows (404 otherwise), for the endpoints that need no more of
/// it than that: the details' statistics read the whole current state.
async fn existing_room(s: &AppState, raw: &str) -> Result<OwnedRoomId> {
    let id = room_id(raw)?;
    match s.rooms.room(id).await? {
        Some(_) => Ok(id.to_owned()),
        None => Err(room_not_found()),
    }
}

fn room_not_found() -> Error {
    Error::not_found("Room not found")
}

/// A room as the list shows it, in the crate's type (the details add a few fields).
fn listed(r: &RoomStats) -> RoomDetails {
    let mut d = RoomDetails::new(r.room_id.clone());
    d.name = r.name.clone();
    d.canonical_alias = r.canonical_alias.as_deref().and_then(|a| RoomAliasId::parse(a).ok());
    d.joined_members = UInt::new_saturating(r.joined_members);
    d.joined_local_members = UInt::new_saturating(r.joined_local_members);
    d.version = Some(r.version.clone());
    d.creator = UserId::parse(&r.creator).ok();
    d.encryption = r.encryption.clone();
    d.federatable = r.federatable;
    d.public = r.public;
    d.join_rules = r.join_rules.as_deref().map(JoinRuleKind::from);
    d.guest_access = r.guest_access.as_deref().map(GuestAccess::from);
    d.history_visibility = r.history_visibility.as_deref().map(HistoryVisibility::from);
    d.state_events = UInt::new_saturating(r.state_events);
    d.room_type = r.room_type.as_deref().map(RoomType::from);
    d
}

/// GET /v1/rooms/{roomId}: the list's fields and what only the details show. The crate's
/// `room_details` response lacks `tombstoned` and `replacement_room`, which Synapse sends.
#[derive(Serialize)]
pub struct Details {
    #[serde(flatten)]
    listed: RoomDetails,
    topic: Option<String>,
    avatar: Option<String>,
    joined_local_devices: u64,
    forgotten: bool,
    tombstoned: bool,
    replacement_room: Option<String>,
}

/// The page of the list. The crate's `list_rooms` response would send `next_batch` and
/// `prev_batch` as null; Synapse leaves them out when there is no such page.
#[derive(Serialize)]
pub struct RoomPage {
    rooms: Vec<RoomDetails>,
    offset: i64,
    total_rooms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_batch: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prev_batch: Option<i64>,
}

/// `order_by`, with Synapse's two older names; unknown orders are refused.
fn sort_order(q: &HashMap<String, String>) -> Result<RoomSortOrder> {
    let raw = q.get("order_by").map_or("name", String::as_str);
    match raw {
        "alphabetical" => Ok(RoomSortOrder::Name),
        "size" => Ok(RoomSortOrder::JoinedMembers),
        _ => match RoomSortOrder::from(raw) {
            RoomSortOrder::_Custom(_) => Err(Error::invalid_param(format!("Unknown value for order_by: {raw}"))),
            order => Ok(order),
        },
    }
}

/// Synapse's order of rooms: ascending by the key, except counts and versions, which come
/// largest first; ties by room ID in the same direction. Missing values sort first, as in
/// SQLite. `backwards` turns the whole order round.
fn compare(a: &RoomStats, b: &RoomStats, order: &RoomSortOrder, backwards: bool) -> Ordering {
    use RoomSortOrder as O;
    let (key, ascending) = match order {
        O::JoinedMembers => (a.joined_members.cmp(&b.joined_members), false),
        O::JoinedLocalMembers => (a.joined_local_members.cmp(&b.joined_local_members), false),
        O::StateEvents => (a.state_events.cmp(&b.state_events), false),
        O::Version => (a.version.cmp(&b.version), false),
        O::CanonicalAlias => (a.canonical_alias.cmp(&b.canonical_alias), true),
        O::Creator => (a.creator.cmp(&b.creator), true),
        O::Encryption => (a.encryption.cmp(&b.encryption), true),
        O::Federatable => (a.federatable.cmp(&b.federatable), true),
        O::Public => (a.public.cmp(&b.public), true),
        O::JoinRules => (a.join_rules.cmp(&b.join_rules), true),
        O::GuestAccess => (a.guest_access.cmp(&b.guest_access), true),
        O::HistoryVisibility => (a.history_visibility.cmp(&b.history_visibility), true),
        _ => (a.name.cmp(&b.name), true),
    };
    let both = key.then_with(|| a.room_id.cmp(&b.room_id));
    if ascending != backwards { both } else { both.reverse() }
}

/// Whether a room matches `search_term` as Synapse matches it: in its name, its alias's
/// localpart (`#%term%:%`), or its exact ID.
fn matches(r: &RoomStats, raw: &str, lowered: &str) -> bool {
    let name = r.name.as_ref().is_some_and(|n| n.to_lowercase().contains(lowered));
    let alias = r
        .canonical_alias
        .as_ref()
        .and_then(|a| a.split_once(':'))
        .is_some_and(|(local, _)| local.to_lowercase().contains(lowered));
    name || alias || r.room_id.as_str() == raw
}

/// GET /_synapse/admin/v1/rooms
pub async fn list(State(s): State<AppState>, _: Admin, Query(q): Params) -> Result<AxumJson<RoomPage>> {
    let from = params::int(&q, "from", 0)?;
    let limit = params::int(&q, "limit", 100)?;
    let order = sort_order(&q)?;
    let backwards = params::backwards(&q, false)?;
    let term = match q.get("search_term") {
        Some(t) if t.is_empty() => return Err(Error::invalid_param("search_term cannot be an empty string")),
        t => t.map(|t| (t.as_str(), t.to_lowercase())),
    };
    let public = params::boolean(&q, "public_rooms")?;
    let empty = params::boolean(&q, "empty_rooms")?;
    let mut rooms: Vec<RoomStats> = s
        .rooms
        .synapse_rooms()
        .await?
        .into_iter()
        .filter(|r| term.as_ref().is_none_or(|(raw, lowered)| matches(r, raw, lowered)))
        .filter(|r| public.is_none_or(|p| r.public == p))
        .filter(|r| empty.is_none_or(|e| (r.joined_members == 0) == e))
        .collect();
    rooms.sort_by(|a, b| compare(a, b, &order, backwards));
    let total = rooms.len() as i64;
    let page = rooms.iter().skip(from as usize).take(limit as usize).map(listed).collect();
    Ok(AxumJson(RoomPage {
        rooms: page,
        offset: from,
        total_rooms: total,
        next_batch: (from + limit < total).then_some(from + limit),
        prev_batch: (from > 0).then_some(if from > limit { from - limit } else { 0 }),
    }))
}

/// GET /_synapse/admin/v1/rooms/{roomId}
pub async fn details(State(s): State<AppState>, _: Admin, Path(raw): Path<String>) -> Result<AxumJson<Details>> {
    let r = s.rooms.synapse_room(room_id(&raw)?).await?.ok_or_else(room_not_found)?;
    Ok(AxumJson(Details {
        listed: listed(&r),
        topic: r.topic,
        avatar: r.avatar,
        joined_local_devices: r.joined_local_devices,
        forgotten: r.forgotten,
        tombstoned: r.tombstoned,
        replacement_room: r.replacement_room,
    }))
}

/// GET /_synapse/admin/v1/rooms/{roomId}/members: who is joined, here and elsewhere.
pub async fn members(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> Result<RumaResponse<room_members::v1::Response>> {
    let id = existing_room(&s, &raw).await?;
    let joined: Vec<OwnedUserId> = s
        .rooms
        .members(&id)
        .await?
        .into_iter()
        .filter(|(_, m, _)| m == "join")
        .filter_map(|(u, _, _)| UserId::parse(u).ok())
        .collect();
    let total = UInt::new_saturating(joined.len() as u64);
    Ok(RumaResponse(room_members::v1::Response::new(joined, total)))
}

/// GET /_synapse/admin/v1/rooms/{roomId}/state[?type=]: the current state, as clients see it.
pub async fn state(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Query(q): Params,
) -> Result<AxumJson<Value>> {
    let id = existing_room(&s, &raw).await?;
    let kind = q.get("type").filter(|t| !t.is_empty());
    let ids: Vec<String> = s
        .rooms
        .current_state_ids(&id)
        .await?
        .into_iter()
        .filter(|((t, _), _)| kind.is_none_or(|k| k == t))
        .map(|(_, e)| e)
        .collect();
    let events: Vec<Value> = s.rooms.events(&ids).await?.iter().map(crate::api::client::room::view).collect();
    Ok(AxumJson(json!({ "state": events })))
}

/// GET /_synapse/admin/v1/rooms/{roomId}/forward_extremities
pub async fn forward_extremities(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> Result<AxumJson<Value>> {
    let id = existing_room(&s, &raw).await?;
    let mut results = Vec::new();
    for event_id in s.rooms.forward_extremities(&id).await? {
        let Some(e) = s.rooms.event(&event_id).await? else { continue };
        results.push(json!({
            "event_id": event_id,
            "state_group": e.row.state_group,
            "depth": e.json().get("depth"),
            "received_ts": null,
        }));
    }
    Ok(AxumJson(json!({ "count": results.len(), "results": results })))
}

async fn report_json(s: &AppState, r: &EventReport) -> Result<Value> {
    // The room's name and alias now (none once it is gone), not its whole statistics.
    let (name, alias) = match RoomId::parse(&r.room_id) {
        Ok(id) => {
            let field = |content: Value, key: &str| content.get(key).and_then(Value::as_str).map(str::to_owned);
            (
                field(s.rooms.state_content(&id, "m.room.name").await?, "name"),
                field(s.rooms.state_content(&id, "m.room.canonical_alias").await?, "alias"),
            )
        }
        Err(_) => (None, None),
    };
    Ok(json!({
        "id": r.id,
        "received_ts": r.ts,
        "room_id": r.room_id,
        "event_id": r.event_id,
        "user_id": r.reporter,
        "score": null,
        "reason": r.reason,
        "sender": r.sender,
        "canonical_alias": alias,
        "name": name,
    }))
}

/// GET /_synapse/admin/v1/event_reports: newest first unless `dir=f`.
pub async fn event_reports(State(s): State<AppState>, _: Admin, Query(q): Params) -> Result<AxumJson<Value>> {
    let filter = ReportFilter {
        user_id: q.get("user_id").cloned(),
        room_id: q.get("room_id").cloned(),
        event_sender: q.get("event_sender_user_id").cloned(),
        newest_first: params::backwards(&q, true)?,
        from: params::int(&q, "from", 0)?,
        limit: params::int(&q, "limit", 100)?,
    };
    let (rows, total) = s.rooms.event_reports(&filter).await?;
    let mut reports = Vec::new();
    for r in &rows {
        reports.push(report_json(&s, r).await?);
    }
    let mut out = json!({ "event_reports": reports, "total": total });
    if filter.from + filter.limit < total {
        out["next_token"] = json!(filter.from + rows.len() as i64);
    }
    Ok(AxumJson(out))
}

fn report_id(raw: &str) -> Result<i64> {
    raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        Error::invalid_param("The report_id parameter must be a string representing a positive integer.")
    })
}

/// GET /_synapse/admin/v1/event_reports/{reportId}: with the reported event.
pub async fn event_report(State(s): State<AppState>, _: Admin, Path(raw): Path<String>) -> Result<AxumJson<Value>> {
    let not_found = || Error::not_found("Event report not found");
    let report = s.rooms.event_report(report_id(&raw)?).await?.ok_or_else(not_found)?;
    let event = s.rooms.event(&report.event_id).await?.ok_or_else(not_found)?;
    let mut out = report_json(&s, &report).await?;
    out["event_json"] = serde_json::to_value(event.json()).map_err(Error::internal)?;
    Ok(AxumJson(out))
}

/// DELETE /_synapse/admin/v1/event_reports/{reportId}
pub async fn delete_event_report(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> Result<AxumJson<Value>> {
    if !s.rooms.delete_report(report_id(&raw)?).await? {
        return Err(Error::not_found("Event report not found"));
    }
    Ok(AxumJson(json!({})))
}

/// POST /_synapse/admin/v1/join/{roomIdOrAlias} `{"user_id"}`: joins a local user to a room
/// this server is in; when the room is not public, the admin invites them first (so the admin
/// needs the power to invite there).
pub async fn join(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path(raw): Path<String>,
    crate::http::json::Json(body): crate::http::json::Json<serde_json::Map<String, Value>>,
) -> Result<RumaResponse<join_room::v1::Response>> {
    let user = match body.get("user_id") {
        None => return Err(Error::missing_param("Missing param 'user_id'")),
        Some(Value::String(u)) => {
            ruma::UserId::parse(u).map_err(|_| Error::invalid_param(format!("{u} is not a valid user ID")))?
        }
        Some(_) => return Err(Error::invalid_param("user_id must be a string")),
    };
    if user.server_name() != s.config.server_name {
        return Err(Error::custom(
            http::StatusCode::BAD_REQUEST,
            "M_UNKNOWN",
            "This endpoint can only be used with local users",
        ));
    }
    if s.accounts.admin_get(&user).await?.is_none_or(|u| u.deactivated) {
        return Err(Error::not_found("User not found"));
    }
    let target = <&ruma::RoomOrAliasId>::try_from(raw.as_str()).map_err(|_| {
        Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", format!("{raw} was not legal room ID or room alias"))
    })?;
    let room_id = s.rooms.resolve_room_or_alias(target).await?;
    if s.rooms.room(&room_id).await?.is_none() {
        return Err(Error::not_found(
            "Can't join remote room because no servers that are in the room have been provided.",
        ));
    }
    let rule = s.rooms.state_content(&room_id, "m.room.join_rules").await?;
    let joined = s.rooms.membership(&room_id, &user).await?.as_deref() == Some("join");
    if !joined && rule["join_rule"].as_str().unwrap_or("invite") != "public" {
        s.rooms.set_membership(&room_id, &session.user_id, &user, "invite", None).await?;
    }
    s.rooms.join(&room_id, &user, false, None).await?;
    tracing::info!(%user, room = %room_id, admin = %session.user_id, "joined to a room by an admin");
    Ok(RumaResponse(join_room::v1::Response::new(room_id)))
}

/// GET /_synapse/admin/v1/rooms/{roomId}/block: whether it is blocked, and by whom.
pub async fn get_block(State(s): State<AppState>, _: Admin, Path(raw): Path<String>) -> Result<AxumJson<Value>> {
    let id = room_id(&raw)?;
    Ok(AxumJson(match s.rooms.blocked_by(id).await? {
        Some(user) => json!({ "block": true, "user_id": user }),
        None => json!({ "block": false }),
    }))
}

/// PUT /_synapse/admin/v1/rooms/{roomId}/block `{"block": bool}`: also a room not known here
/// (so nobody here joins it later).
pub async fn put_block(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path(raw): Path<String>,
    crate::http::json::Json(body): crate::http::json::Json<serde_json::Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let id = room_id(&raw)?;
    let block = params::required_bool(&body, "block", Error::bad_json)?;
    s.rooms.set_blocked(id, &session.user_id, block).await?;
    Ok(AxumJson(json!({ "block": block })))
}

/// GET /_synapse/admin/v1/rooms/{roomId}/messages: the room's timeline as the client API pages
/// it (`from`, `to`, `dir`, `limit` up to 1000), without the history visibility rules.
pub async fn messages(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Query(q): Params,
) -> Result<AxumJson<Value>> {
    let id = existing_room(&s, &raw).await?;
    let limit = params::int(&q, "limit", 10)?.clamp(1, 1000);
    let backwards = params::backwards(&q, false)?;
    let token = |key: &str| q.get(key).map(|t| crate::service::sync::parse_token(t)).transpose();
    let (from, to) = (token("from")?, token("to")?);
    let head = s.rooms.stream_head();
    let from = from.unwrap_or(if backwards { head } else { i64::MIN });
    let (rows, end) = if backwards {
        let rows = s.rooms.timeline_desc(&id, to.unwrap_or(i64::MIN), from, limit).await?;
        let end = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.stream_ordering - 1)).flatten();
        (rows, end)
    } else {
        let upper = to.map(|t| t + 1).unwrap_or(head + 1);
        let rows = s.rooms.timeline_asc(&id, from.saturating_add(1), upper, limit).await?;
        let end = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.stream_ordering)).flatten();
        (rows, end)
    };
    let filter = params::event_filter(&q)?.unwrap_or_default();
    let mut chunk = Vec::with_capacity(rows.len());
    for row in rows {
        let v = crate::api::client::room::view(&crate::service::rooms::parse_row(row)?);
        // Page positions come from the unfiltered page; events the filter leaves out are skipped.
        if filter.allows(&v) {
            chunk.push(v);
        }
    }
    let mut out = json!({ "chunk": chunk, "start": crate::service::sync::token(from) });
    if let Some(end) = end {
        out["end"] = json!(crate::service::sync::token(end));
    }
    Ok(AxumJson(out))
}

/// POST /_synapse/admin/v1/rooms/{roomIdOrAlias}/make_room_admin `{"user_id"?}` (the caller
/// by default).
pub async fn make_room_admin(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path(raw): Path<String>,
    crate::http::json::Json(body): crate::http::json::Json<serde_json::Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let target = match body.get("user_id") {
        None => session.user_id.clone(),
        Some(Value::String(u)) => {
            ruma::UserId::parse(u).map_err(|_| Error::invalid_param(format!("{u} is not a valid user ID")))?
        }
        Some(_) => return Err(Error::invalid_param("user_id must be a string")),
    };
    let room = <&ruma::RoomOrAliasId>::try_from(raw.as_str()).map_err(|_| {
        Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", format!("{raw} was not legal room ID or room alias"))
    })?;
    let room_id = s.rooms.resolve_room_or_alias(room).await?;
    s.rooms.make_room_admin(&room_id, &target).await?;
    Ok(AxumJson(json!({})))
}

/// The body of a room delete, as Synapse reads it.
fn delete_params(
    requester: &ruma::UserId,
    body: &serde_json::Map<String, Value>,
) -> Result<crate::service::room_deletion::DeleteRoom> {
    let new_room_user_id = params::optional_str(body, "new_room_user_id")?
        .map(|u| {
            ruma::UserId::parse(u)
                .map_err(|_| Error::invalid_param(format!("new_room_user_id: {u} is not a valid user ID")))
        })
        .transpose()?;
    Ok(crate::service::room_deletion::DeleteRoom {
        requester: Some(requester.to_owned()),
        new_room_user_id,
        room_name: params::optional_str(body, "room_name")?.map(str::to_owned),
        message: params::optional_str(body, "message")?.map(str::to_owned),
        block: params::optional_bool(body, "block", false)?,
        purge: params::optional_bool(body, "purge", true)?,
        force_purge: params::optional_bool(body, "force_purge", false)?,
    })
}

fn shutdown_json(r: &crate::service::room_deletion::Shutdown) -> Value {
    json!({
        "kicked_users": r.kicked_users,
        "failed_to_kick_users": r.failed_to_kick_users,
        "local_aliases": r.local_aliases,
        "new_room_id": r.new_room_id,
    })
}

/// DELETE /_synapse/admin/v1/rooms/{roomId}: deletes the room within the request and answers
/// what was done (see `service::room_deletion`).
pub async fn delete_v1(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path(raw): Path<String>,
    crate::http::json::Json(body): crate::http::json::Json<serde_json::Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let params = delete_params(&session.user_id, &body)?;
    let id = room_id(&raw)?;
    let result = s.delete_room(id, &params, None).await?;
    Ok(AxumJson(shutdown_json(&result)))
}

/// DELETE /_synapse/admin/v2/rooms/{roomId}: starts deleting the room in the background and
/// answers `{"delete_id"}` for `delete_status`.
pub async fn delete_v2(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path(raw): Path<String>,
    crate::http::json::Json(body): crate::http::json::Json<serde_json::Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let params = delete_params(&session.user_id, &body)?;
    let id = room_id(&raw)?;
    let delete_id = s.0.start_room_deletion(id, params).await?;
    Ok(AxumJson(json!({ "delete_id": delete_id })))
}

fn task_json(t: &crate::service::room_deletion::DeleteTask) -> Value {
    let mut v = json!({
        "delete_id": t.delete_id,
        "room_id": t.room_id,
        "status": t.status,
        "shutdown_room": shutdown_json(&t.shutdown_room),
    });
    if let Some(e) = &t.error {
        v["error"] = json!(e);
    }
    v
}

/// GET /_synapse/admin/v2/rooms/{roomId}/delete_status: the room's deletions (404 for none).
pub async fn delete_status_of_room(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> Result<AxumJson<Value>> {
    let id = room_id(&raw)?;
    let tasks = s.room_deletions(id).await?;
    if tasks.is_empty() {
        return Err(Error::not_found(format!("No delete task for room_id '{id}' found")));
    }
    Ok(AxumJson(json!({ "results": tasks.iter().map(task_json).collect::<Vec<_>>() })))
}

/// GET /_synapse/admin/v2/rooms/delete_status/{deleteId}
pub async fn delete_status(
    State(s): State<AppState>,
    _: Admin,
    Path(delete_id): Path<String>,
) -> Result<AxumJson<Value>> {
    let task = s
        .room_deletion(&delete_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("delete id '{delete_id}' not found")))?;
    Ok(AxumJson(task_json(&task)))
}

/// GET /_synapse/admin/v1/rooms/{roomId}/context/{eventId}: the event with the events around it
/// (`limit`, split as the client API's `/context` does, and `filter`) and the room's state at
/// it, whatever the room's history visibility (for reading a report in context).
pub async fn context(
    State(s): State<AppState>,
    admin: crate::http::json::Admin,
    Path((raw, event_id)): Path<(String, String)>,
    Query(q): Params,
) -> Result<AxumJson<Value>> {
    let id = room_id(&raw)?;
    let limit = params::int(&q, "limit", 10)?.clamp(0, 1000);
    let filter = params::event_filter(&q)?.unwrap_or_default();
    let ctx = s.rooms.context(id, &event_id, limit).await?.ok_or_else(|| Error::not_found("Event not found."))?;
    let view = |e: &crate::service::rooms::StoredEvent| crate::api::client::room::view(e);
    let mut sides = [Vec::new(), Vec::new()];
    for (rows, out) in [ctx.before, ctx.after].into_iter().zip(sides.iter_mut()) {
        for row in rows {
            let v = view(&crate::service::rooms::parse_row(row)?);
            if filter.allows(&v) {
                out.push(v);
            }
        }
    }
    let [mut before, mut after] = sides;
    let mut event = vec![view(&ctx.event)];
    let admin = &admin.0.user_id;
    s.rooms.bundle(admin, id.as_str(), &mut before).await?;
    s.rooms.bundle(admin, id.as_str(), &mut after).await?;
    s.rooms.bundle(admin, id.as_str(), &mut event).await?;
    let state: Vec<Value> = ctx.state.iter().map(view).collect();
    Ok(AxumJson(json!({
        "events_before": before,
        "event": event.pop(),
        "events_after": after,
        "state": state,
        "start": crate::service::sync::token(ctx.start),
        "end": crate::service::sync::token(ctx.end),
    })))
}

/// POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}]: deletes the room's history
/// before the event (`purge_up_to_event_id`) or before the time (`purge_up_to_ts`), in the
/// background; this server's users' events only with `delete_local_events`. State events stay.
pub async fn purge_history(
    State(s): State<AppState>,
    _: Admin,
    Path(path): Path<Vec<String>>,
    body: axum::body::Bytes,
) -> Result<AxumJson<Value>> {
    let body = params::optional_body(&body)?;
    let id = room_id(&path[0])?;
    if s.rooms.room(id).await?.is_none() {
        return Err(Error::not_found("Room not found"));
    }
    let delete_local = body.get("delete_local_events").is_some_and(|v| v.as_bool().unwrap_or(!v.is_null()));
    let event_id =
        path.get(1).cloned().or_else(|| body.get("purge_up_to_event_id").and_then(Value::as_str).map(str::to_owned));
    let ts = match (&event_id, body.get("purge_up_to_ts")) {
        (Some(_), _) | (None, None) => None,
        (None, Some(Value::Number(n))) if n.is_i64() => n.as_i64(),
        (None, Some(_)) => return Err(Error::bad_json("purge_up_to_ts must be an int")),
    };
    if event_id.is_none() && ts.is_none() {
        return Err(Error::bad_json("must specify purge_up_to_event_id or purge_up_to_ts"));
    }
    let before = s
        .rooms
        .purge_point(id, event_id.as_deref(), ts)
        .await?
        .ok_or_else(|| Error::not_found("there is no event to be purged"))?;
    let purge_id = s.0.start_purge_history(id, before, delete_local).await?;
    Ok(AxumJson(json!({ "purge_id": purge_id })))
}

/// GET /_synapse/admin/v1/purge_history_status/{purgeId}
pub async fn purge_history_status(
    State(s): State<AppState>,
    _: Admin,
    Path(purge_id): Path<String>,
) -> Result<AxumJson<Value>> {
    let (status, error) = s
        .purge_history_status(&purge_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("purge id '{purge_id}' not found")))?;
    let mut out = json!({ "status": status });
    if let Some(e) = error {
        out["error"] = json!(e);
    }
    Ok(AxumJson(out))
}
