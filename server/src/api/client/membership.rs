//! Joining, inviting, leaving, kicking, banning; who is in a room; which rooms one is in.

use std::collections::BTreeMap;

use axum::extract::State;
use ruma::{
    RoomAliasId, RoomId, UserId,
    api::client::membership::{
        ban_user, forget_room, get_member_events, invite_user, invite_user::v3::InvitationRecipient, join_room_by_id,
        join_room_by_id_or_alias, joined_members, joined_rooms, kick_user, leave_room, unban_user,
    },
};

use super::room::{raw_json, state_reader, view};
use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// POST /_matrix/client/v3/rooms/{roomId}/join
pub async fn join_room_by_id(
    State(s): State<AppState>,
    req: Ruma<join_room_by_id::v3::Request>,
) -> Result<RumaResponse<join_room_by_id::v3::Response>> {
    let b = &req.body;
    let session = req.session();
    session.refuse_if_suspended("Joining rooms")?;
    limit_join(&s, &b.room_id, &session.user_id).await?;
    s.federation.join(&b.room_id, &[], &session.user_id, session.is_guest, b.reason.as_deref()).await?;
    Ok(RumaResponse(join_room_by_id::v3::Response::new(b.room_id.clone())))
}

/// POST /_matrix/client/v3/join/{roomIdOrAlias}
pub async fn join_room_by_id_or_alias(
    State(s): State<AppState>,
    req: Ruma<join_room_by_id_or_alias::v3::Request>,
) -> Result<RumaResponse<join_room_by_id_or_alias::v3::Response>> {
    let b = &req.body;
    let session = req.session();
    session.refuse_if_suspended("Joining rooms")?;
    // Another server's alias is asked of that server, which also names servers to join through.
    let (room_id, mut servers) = match <&RoomAliasId>::try_from(&*b.room_id_or_alias) {
        Ok(alias) => s.federation.resolve_alias(alias).await?,
        Err(_) => (RoomId::parse(b.room_id_or_alias.as_str()).map_err(Error::internal)?, Vec::new()),
    };
    limit_join(&s, &room_id, &session.user_id).await?;
    let mut via = b.via.clone();
    via.append(&mut servers);
    s.federation.join(&room_id, &via, &session.user_id, session.is_guest, b.reason.as_deref()).await?;
    Ok(RumaResponse(join_room_by_id_or_alias::v3::Response::new(room_id)))
}

/// POST /_matrix/client/v3/rooms/{roomId}/invite
pub async fn invite_user(
    State(s): State<AppState>,
    req: Ruma<invite_user::v3::Request>,
) -> Result<RumaResponse<invite_user::v3::Response>> {
    let b = &req.body;
    let InvitationRecipient::UserId(invite) = &b.recipient else {
        return Err(Error::invalid_param("Third-party invites are not supported"));
    };
    req.session().refuse_if_suspended("Sending invites")?;
    if req.session().shadow_banned {
        return Ok(RumaResponse(invite_user::v3::Response::new()));
    }
    if s.notices_user().as_ref() == Some(&invite.user_id) {
        return Err(Error::forbidden("The server notices account cannot be invited"));
    }
    check_known_user(&s, &invite.user_id).await?;
    let me = &req.session().user_id;
    s.limits.invite(me, Some(&b.room_id), &invite.user_id)?;
    s.limits.event(me, false)?;
    if invite.user_id.server_name() == s.config.server_name {
        s.rooms.set_membership(&b.room_id, me, &invite.user_id, "invite", invite.reason.as_deref()).await?;
    } else {
        s.federation.invite_remote(&b.room_id, me, &invite.user_id, invite.reason.as_deref(), false).await?;
    }
    Ok(RumaResponse(invite_user::v3::Response::new()))
}

/// The join limits (`rc_joins`, `rc_joins_per_room`) and `rc_message`, for a user not yet in the
/// room: joining again (a profile change, a retry) is not another join, as in Synapse.
async fn limit_join(s: &AppState, room_id: &RoomId, user: &UserId) -> Result<()> {
    if s.rooms.membership(room_id, user).await?.as_deref() != Some("join") {
        s.limits.join(user, room_id)?;
    }
    s.limits.event(user, false)
}

/// A local invitee must exist (remote users come with federation).
async fn check_known_user(s: &AppState, user: &UserId) -> Result<()> {
    if user.server_name() != s.config.server_name {
        // Their server says whether they exist, when it answers the invite.
        return Ok(());
    }
    if s.accounts.is_available(user).await? {
        return Err(Error::not_found("No such user on this server"));
    }
    Ok(())
}

/// POST /_matrix/client/v3/rooms/{roomId}/leave
pub async fn leave_room(
    State(s): State<AppState>,
    req: Ruma<leave_room::v3::Request>,
) -> Result<RumaResponse<leave_room::v3::Response>> {
    let b = &req.body;
    let me = &req.session().user_id;
    match s.rooms.membership(&b.room_id, me).await?.as_deref() {
        Some("invite") if s.is_notice_invite(&b.room_id, me).await? => {
            return Err(Error::custom(
                http::StatusCode::FORBIDDEN,
                "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM",
                "You cannot reject this invite: it brings messages from the server's admin",
            ));
        }
        Some("join" | "invite" | "knock") => {
            s.limits.event(me, false)?;
            // Declining an invite into a room of another server goes through that server.
            s.federation.leave(&b.room_id, me, b.reason.as_deref()).await?;
        }
        // Leaving a room one is not in is a no-op (spec: "leave" on a left room).
        Some(_) => {}
        None => return Err(Error::not_found("You are not in this room")),
    }
    Ok(RumaResponse(leave_room::v3::Response::new()))
}

/// POST /_matrix/client/v3/rooms/{roomId}/forget
pub async fn forget_room(
    State(s): State<AppState>,
    req: Ruma<forget_room::v3::Request>,
) -> Result<RumaResponse<forget_room::v3::Response>> {
    s.rooms.forget(&req.body.room_id, &req.session().user_id).await?;
    Ok(RumaResponse(forget_room::v3::Response::new()))
}

/// POST /_matrix/client/v3/rooms/{roomId}/kick
pub async fn kick_user(
    State(s): State<AppState>,
    req: Ruma<kick_user::v3::Request>,
) -> Result<RumaResponse<kick_user::v3::Response>> {
    let b = &req.body;
    match s.rooms.membership(&b.room_id, &b.user_id).await?.as_deref() {
        Some("join" | "invite" | "knock") => {}
        _ => return Err(Error::forbidden("That user is not in the room")),
    }
    s.limits.event(&req.session().user_id, false)?;
    s.rooms.set_membership(&b.room_id, &req.session().user_id, &b.user_id, "leave", b.reason.as_deref()).await?;
    Ok(RumaResponse(kick_user::v3::Response::new()))
}

/// POST /_matrix/client/v3/rooms/{roomId}/ban
pub async fn ban_user(
    State(s): State<AppState>,
    req: Ruma<ban_user::v3::Request>,
) -> Result<RumaResponse<ban_user::v3::Response>> {
    let b = &req.body;
    req.session().refuse_if_suspended("Banning")?;
    s.limits.event(&req.session().user_id, false)?;
    s.rooms.set_membership(&b.room_id, &req.session().user_id, &b.user_id, "ban", b.reason.as_deref()).await?;
    Ok(RumaResponse(ban_user::v3::Response::new()))
}

/// POST /_matrix/client/v3/rooms/{roomId}/unban
pub async fn unban_user(
    State(s): State<AppState>,
    req: Ruma<unban_user::v3::Request>,
) -> Result<RumaResponse<unban_user::v3::Response>> {
    let b = &req.body;
    if s.rooms.membership(&b.room_id, &b.user_id).await?.as_deref() != Some("ban") {
        return Err(Error::forbidden("That user is not banned"));
    }
    s.limits.event(&req.session().user_id, false)?;
    s.rooms.set_membership(&b.room_id, &req.session().user_id, &b.user_id, "leave", b.reason.as_deref()).await?;
    Ok(RumaResponse(unban_user::v3::Response::new()))
}

/// GET /_matrix/client/v3/joined_rooms
pub async fn joined_rooms(
    State(s): State<AppState>,
    req: Ruma<joined_rooms::v3::Request>,
) -> Result<RumaResponse<joined_rooms::v3::Response>> {
    let rooms =
        s.rooms.joined_rooms(&req.session().user_id).await?.into_iter().filter_map(|r| RoomId::parse(r).ok()).collect();
    Ok(RumaResponse(joined_rooms::v3::Response::new(rooms)))
}

/// GET /_matrix/client/v3/rooms/{roomId}/members
pub async fn get_member_events(
    State(s): State<AppState>,
    req: Ruma<get_member_events::v3::Request>,
) -> Result<RumaResponse<get_member_events::v3::Response>> {
    let b = &req.body;
    let reader = state_reader(&s, &b.room_id, &req.session().user_id).await?;
    let wanted = |m: &str| {
        b.membership.as_ref().is_none_or(|w| w.as_str() == m)
            && b.not_membership.as_ref().is_none_or(|n| n.as_str() != m)
    };
    let events = if reader.sees_current_members() {
        let members = s.rooms.members(&b.room_id).await?;
        let ids: Vec<String> = members.into_iter().filter(|(_, m, _)| wanted(m)).map(|(_, _, e)| e).collect();
        s.rooms.events(&ids).await?
    } else {
        // A former member: the members as they were when they left.
        let state = s.rooms.readable_state(&b.room_id, reader).await?;
        let ids: Vec<String> =
            state.iter().filter(|((t, _), _)| t == "m.room.member").map(|(_, id)| id.clone()).collect();
        let mut events = s.rooms.events(&ids).await?;
        events.retain(|e| crate::service::rooms::content_of(e.json())["membership"].as_str().is_some_and(wanted));
        events
    };
    let chunk = events.iter().map(|e| raw_json(&view(e))).collect::<Result<_>>()?;
    Ok(RumaResponse(get_member_events::v3::Response::new(chunk)))
}

/// GET /_matrix/client/v3/rooms/{roomId}/joined_members
pub async fn joined_members(
    State(s): State<AppState>,
    req: Ruma<joined_members::v3::Request>,
) -> Result<RumaResponse<joined_members::v3::Response>> {
    let b = &req.body;
    // Members and anyone previewing a world-readable room; not a former member (Synapse).
    if !state_reader(&s, &b.room_id, &req.session().user_id).await?.sees_current_members() {
        return Err(Error::forbidden("You are no longer in this room"));
    }
    let members = s.rooms.members(&b.room_id).await?;
    let ids: Vec<String> = members.into_iter().filter(|(_, m, _)| m == "join").map(|(_, _, e)| e).collect();
    let mut joined = BTreeMap::new();
    for e in s.rooms.events(&ids).await? {
        let content = crate::service::rooms::content_of(e.json());
        let Some(user) = e.json().get("state_key").and_then(|k| k.as_str()).and_then(|k| UserId::parse(k).ok()) else {
            continue;
        };
        let mut m = joined_members::v3::RoomMember::new();
        m.display_name = content["displayname"].as_str().map(str::to_owned);
        m.avatar_url = content["avatar_url"].as_str().map(Into::into);
        joined.insert(user, m);
    }
    Ok(RumaResponse(joined_members::v3::Response::new(joined)))
}
