//! Room creation, room events, state, aliases, and the room lists of a user.

use axum::extract::{RawQuery, State};
use ruma::{
    OwnedUserId, RoomAliasId, RoomId, RoomVersionId,
    api::client::{
        alias::{create_alias, delete_alias, get_alias},
        room::{Visibility, create_room, create_room::v3::RoomPreset, get_room_event},
        state::{get_state_event_for_key, get_state_events, send_state_event},
    },
    serde::Raw,
};
use serde_json::{Value, json};

use super::delayed_events::{Delayable, requested_delay};
use crate::{
    error::{Error, Result},
    http::ruma::{Authed, Ruma, RumaResponse},
    matrix::client_event::{self, View},
    service::{
        AppState,
        delayed_events::Schedule,
        now_ms,
        rooms::{
            StoredEvent,
            create::{CreateRoom, Preset},
            visibility::StateReader,
        },
    },
};

pub fn raw_json<T>(v: &Value) -> Result<Raw<T>> {
    Ok(Raw::from_json(serde_json::value::to_raw_value(v).map_err(Error::internal)?))
}

fn parse_raw<T>(raw: &Raw<T>) -> Result<Value> {
    serde_json::from_str(raw.json().get()).map_err(|e| Error::bad_json(e.to_string()))
}

/// An event as clients see it outside /sync.
pub fn view(e: &StoredEvent) -> Value {
    client_event::format(
        &View { json: e.json(), event_id: &e.row.event_id, room_id: &e.row.room_id, txn: None },
        true,
        None,
        now_ms(),
    )
}

/// The requester must be in the room to read it. (History visibility for former members and
/// world-readable rooms comes with the visibility work of this issue.)
pub async fn require_joined(s: &AppState, room_id: &RoomId, user: &ruma::UserId) -> Result<()> {
    match s.rooms.membership(room_id, user).await?.as_deref() {
        Some("join") => Ok(()),
        _ => Err(Error::forbidden("You are not in this room")),
    }
}

/// How the requester may read the room's state (as a member, as anyone in a world-readable
/// room, or as of when they left), or 403.
pub async fn state_reader(s: &AppState, room_id: &RoomId, user: &ruma::UserId) -> Result<StateReader> {
    s.rooms
        .state_reader(user, room_id)
        .await?
        .ok_or_else(|| Error::forbidden("You are not in this room, and its history is not world-readable"))
}

/// POST /_matrix/client/v3/createRoom
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3createroom>
pub async fn create_room(
    State(s): State<AppState>,
    req: Ruma<create_room::v3::Request>,
) -> Result<RumaResponse<create_room::v3::Response>> {
    let session = req.session();
    session.refuse_if_suspended("Creating rooms")?;
    let body = &req.body;
    // A shadow-banned account's room with invites is answered and never made (Synapse's).
    if session.shadow_banned && (!body.invite.is_empty() || !body.invite_3pid.is_empty()) {
        let fake = format!("!{}:{}", crate::service::tokens::random_alphanumeric(18), s.config.server_name);
        let fake = ruma::OwnedRoomId::try_from(fake).map_err(Error::internal)?;
        return Ok(RumaResponse(create_room::v3::Response::new(fake)));
    }
    let version = body.room_version.clone().unwrap_or_else(|| {
        RoomVersionId::try_from(s.config.default_room_version.as_str()).unwrap_or(RoomVersionId::V12)
    });
    let publish = body.visibility == Visibility::Public;
    let preset = match &body.preset {
        Some(RoomPreset::PublicChat) => Preset::PublicChat,
        Some(RoomPreset::TrustedPrivateChat) => Preset::TrustedPrivateChat,
        Some(RoomPreset::PrivateChat) => Preset::PrivateChat,
        Some(other) => return Err(Error::invalid_param(format!("Unknown preset {}", other.as_str()))),
        None if publish => Preset::PublicChat,
        None => Preset::PrivateChat,
    };
    let mut initial_state = Vec::new();
    for raw in &body.initial_state {
        let ev = parse_raw(raw)?;
        let kind = ev["type"].as_str().ok_or_else(|| Error::bad_json("initial_state events need a type"))?.to_owned();
        let key = ev.get("state_key").and_then(Value::as_str).unwrap_or("").to_owned();
        let content = ev.get("content").cloned().unwrap_or_else(|| json!({}));
        initial_state.push((kind, key, content));
    }
    let as_object = |v: Value, what: &str| match v {
        Value::Object(m) => Ok(m),
        _ => Err(Error::bad_json(format!("{what} must be an object"))),
    };
    let creation_content = body
        .creation_content
        .as_ref()
        .map(|r| parse_raw(r).and_then(|v| as_object(v, "creation_content")))
        .transpose()?;
    let power = body
        .power_level_content_override
        .as_ref()
        .map(|r| parse_raw(r).and_then(|v| as_object(v, "power_level_content_override")))
        .transpose()?;
    let invite: Vec<OwnedUserId> = body.invite.clone();
    if invite.len() > s.limits.max_invites_at_once {
        return Err(Error::matrix(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::Unknown,
            "Cannot invite so many users at once",
        ));
    }
    s.limits.user(&s.limits.room_creation, &session.user_id)?;
    s.limits.event(&session.user_id, false)?;
    let room_id = s
        .rooms
        .create_room(CreateRoom {
            creator: session.user_id.clone(),
            version,
            preset,
            publish,
            alias_localpart: body.room_alias_name.clone(),
            name: body.name.clone(),
            topic: body.topic.clone(),
            invite: invite.clone(),
            is_direct: body.is_direct,
            initial_state,
            creation_content,
            power_level_content_override: power,
            room_id: None,
        })
        .await?;
    // Users of other servers. The room stands even when one of their servers cannot be reached
    // or refuses, and the creator gets its ID and can invite again (Synapse answers an error
    // then, though the room was made, which leaves the client without the room's ID).
    for invitee in invite.iter().filter(|u| u.server_name() != s.config.server_name) {
        if let Err(e) = s.federation.invite_remote(&room_id, &session.user_id, invitee, None, body.is_direct).await {
            tracing::warn!(%room_id, %invitee, error = %e, "the invite to a user of another server failed");
        }
    }
    Ok(RumaResponse(create_room::v3::Response::new(room_id)))
}

/// PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
pub async fn send_state_event(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    req: Ruma<send_state_event::v3::Request>,
) -> Result<Delayable<send_state_event::v3::Response>> {
    let b = &req.body;
    let content = parse_raw(&b.body)?;
    let session = req.session();
    session.refuse_if_suspended("Changing room state")?;
    let event_type = b.event_type.to_string();
    // Membership goes its own way (joins and leaves work; invites are dropped there).
    if session.shadow_banned && event_type != "m.room.member" {
        return Ok(Delayable::Sent(RumaResponse(send_state_event::v3::Response::new(
            crate::service::tokens::fake_event_id(),
        ))));
    }
    let delay = requested_delay(query.as_deref())?;
    s.limits.event(&session.user_id, false)?;
    if let Some(delay) = delay {
        let delay_id = s
            .delayed
            .schedule(Schedule {
                room_id: &b.room_id,
                user: &session.user_id,
                event_type: &event_type,
                state_key: Some(&b.state_key),
                content,
                delay,
                txn: None,
            })
            .await?;
        return Ok(Delayable::Delayed(delay_id));
    }
    let event_id = s.rooms.set_state(&b.room_id, &session.user_id, &event_type, &b.state_key, content, None).await?;
    Ok(Delayable::Sent(RumaResponse(send_state_event::v3::Response::new(event_id))))
}

/// GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
pub async fn get_state_event_for_key(
    State(s): State<AppState>,
    req: Ruma<get_state_event_for_key::v3::Request>,
) -> Result<RumaResponse<get_state_event_for_key::v3::Response>> {
    let b = &req.body;
    let reader = state_reader(&s, &b.room_id, &req.session().user_id).await?;
    let not_found = || Error::not_found("No such state event");
    let state = s.rooms.readable_state(&b.room_id, reader).await?;
    let id = state.get(&(b.event_type.to_string(), b.state_key.clone())).ok_or_else(not_found)?;
    let e = s.rooms.events(std::slice::from_ref(id)).await?.into_iter().next().ok_or_else(not_found)?;
    let out = match b.format {
        get_state_event_for_key::v3::StateEventFormat::Event => view(&e),
        _ => crate::service::rooms::content_of(e.json()),
    };
    let raw = serde_json::value::to_raw_value(&out).map_err(Error::internal)?;
    Ok(RumaResponse(get_state_event_for_key::v3::Response::new(raw)))
}

/// GET /_matrix/client/v3/rooms/{roomId}/state
pub async fn get_state_events(
    State(s): State<AppState>,
    req: Ruma<get_state_events::v3::Request>,
) -> Result<RumaResponse<get_state_events::v3::Response>> {
    let room_id = &req.body.room_id;
    let reader = state_reader(&s, room_id, &req.session().user_id).await?;
    let ids: Vec<String> = s.rooms.readable_state(room_id, reader).await?.values().cloned().collect();
    let events = s.rooms.events(&ids).await?;
    let state = events.iter().map(|e| raw_json(&view(e))).collect::<Result<_>>()?;
    Ok(RumaResponse(get_state_events::v3::Response::new(state)))
}

/// GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}
pub async fn get_room_event(
    State(s): State<AppState>,
    req: Ruma<get_room_event::v3::Request>,
) -> Result<RumaResponse<get_room_event::v3::Response>> {
    let b = &req.body;
    let user = &req.session().user_id;
    // Not found, or not visible: the same answer, so the check leaks nothing.
    let e = s
        .rooms
        .event(b.event_id.as_str())
        .await?
        .filter(|e| e.row.room_id == b.room_id.as_str() && !e.row.rejected && !e.row.soft_failed)
        .ok_or_else(|| Error::not_found("Event not found"))?;
    let mut check = s.rooms.visibility(user, b.room_id.as_str()).await?;
    if !check.allows(&e.row).await? {
        return Err(Error::not_found("Event not found"));
    }
    let mut one = [view(&e)];
    check.annotate(&e.row, &mut one[0]).await?;
    s.rooms.bundle(user, b.room_id.as_str(), &mut one).await?;
    Ok(RumaResponse(get_room_event::v3::Response::new(raw_json(&one[0])?)))
}

/// GET /_matrix/client/v3/events/{eventId} (deprecated; spec: "Peeking"): one event by its ID
/// alone, when the user may see it. Served without a ruma type (ruma has none).
pub async fn get_event_by_id(
    Authed(session): Authed,
    State(s): State<AppState>,
    axum::extract::Path(event_id): axum::extract::Path<ruma::OwnedEventId>,
) -> Result<axum::Json<Value>> {
    let user = &session.user_id;
    let not_found = || Error::not_found("Event not found");
    let e = s
        .rooms
        .event(event_id.as_str())
        .await?
        .filter(|e| !e.row.rejected && !e.row.soft_failed)
        .ok_or_else(not_found)?;
    let mut check = s.rooms.visibility(user, &e.row.room_id).await?;
    if !check.allows(&e.row).await? {
        return Err(not_found());
    }
    let mut one = [view(&e)];
    check.annotate(&e.row, &mut one[0]).await?;
    s.rooms.bundle(user, &e.row.room_id, &mut one).await?;
    let [event] = one;
    Ok(axum::Json(event))
}

/// POST /_matrix/client/v3/rooms/{roomId}/upgrade
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3roomsroomidupgrade>
pub async fn upgrade_room(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::room::upgrade_room::v3::Request>,
) -> Result<RumaResponse<ruma::api::client::room::upgrade_room::v3::Response>> {
    let b = &req.body;
    if s.rooms.room(&b.room_id).await?.is_none() {
        return Err(Error::not_found("No such room"));
    }
    require_joined(&s, &b.room_id, &req.session().user_id).await?;
    req.session().refuse_if_suspended("Upgrading rooms")?;
    s.limits.user(&s.limits.room_creation, &req.session().user_id)?;
    s.limits.event(&req.session().user_id, false)?;
    let new_room = s
        .rooms
        .upgrade(&b.room_id, &req.session().user_id, b.new_version.clone(), b.additional_creators.clone())
        .await?;
    Ok(RumaResponse(ruma::api::client::room::upgrade_room::v3::Response::new(new_room)))
}

/// GET /_matrix/client/v3/directory/room/{roomAlias}
pub async fn get_alias(
    State(s): State<AppState>,
    req: Ruma<get_alias::v3::Request>,
) -> Result<RumaResponse<get_alias::v3::Response>> {
    // Another server's alias is asked of that server (`/query/directory`).
    let (room_id, servers) = s.federation.resolve_alias(&req.body.room_alias).await?;
    Ok(RumaResponse(get_alias::v3::Response::new(room_id, servers)))
}

/// PUT /_matrix/client/v3/directory/room/{roomAlias}
pub async fn create_alias(
    State(s): State<AppState>,
    req: Ruma<create_alias::v3::Request>,
) -> Result<RumaResponse<create_alias::v3::Response>> {
    let b = &req.body;
    check_local_alias(&s, &b.room_alias)?;
    require_joined(&s, &b.room_id, &req.session().user_id).await?;
    s.rooms.add_alias(&b.room_alias, &b.room_id, &req.session().user_id).await?;
    Ok(RumaResponse(create_alias::v3::Response::new()))
}

/// DELETE /_matrix/client/v3/directory/room/{roomAlias}
pub async fn delete_alias(
    State(s): State<AppState>,
    req: Ruma<delete_alias::v3::Request>,
) -> Result<RumaResponse<delete_alias::v3::Response>> {
    check_local_alias(&s, &req.body.room_alias)?;
    let session = req.session();
    s.rooms.remove_alias(&req.body.room_alias, &session.user_id, session.is_admin).await?;
    Ok(RumaResponse(delete_alias::v3::Response::new()))
}

fn check_local_alias(s: &AppState, alias: &RoomAliasId) -> Result<()> {
    if alias.server_name() != s.config.server_name {
        return Err(Error::invalid_param("Aliases can only be managed on their own server"));
    }
    Ok(())
}
