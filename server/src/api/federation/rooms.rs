//! Room traffic from other servers: transactions of events, and remote users joining.

use axum::extract::State;
use ruma::api::federation::{
    authorization::get_event_authorization,
    backfill::get_backfill,
    event::{get_event, get_event_by_timestamp, get_missing_events, get_room_state, get_room_state_ids},
    membership::{
        create_invite, create_join_event, create_knock_event, create_leave_event, prepare_join_event,
        prepare_knock_event, prepare_leave_event,
    },
    transactions::send_transaction_message,
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

fn origin<T>(req: &Ruma<T>) -> Result<&ruma::ServerName> {
    req.origin.as_deref().ok_or_else(|| Error::internal("a federation endpoint without an origin"))
}

/// PUT /_matrix/federation/v1/send/{txnId}
/// <https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv1sendtxnid>
pub async fn send_transaction(
    State(s): State<AppState>,
    req: Ruma<send_transaction_message::v1::Request>,
) -> Result<RumaResponse<send_transaction_message::v1::Response>> {
    let origin = origin(&req)?;
    if req.body.origin != origin {
        return Err(Error::forbidden("The transaction's origin is not the server that signed the request"));
    }
    let results = s
        .federation
        .receive_transaction(origin, req.body.transaction_id.as_str(), &req.body.pdus, &req.body.edus)
        .await?;
    Ok(RumaResponse(send_transaction_message::v1::Response::new(results)))
}

/// GET /_matrix/federation/v1/make_join/{roomId}/{userId}
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1make_joinroomiduserid>
pub async fn make_join(
    State(s): State<AppState>,
    req: Ruma<prepare_join_event::v1::Request>,
) -> Result<RumaResponse<prepare_join_event::v1::Response>> {
    let b = &req.body;
    let (version, template) = s.federation.make_join(origin(&req)?, &b.room_id, &b.user_id, &b.ver).await?;
    let mut resp =
        prepare_join_event::v1::Response::new(serde_json::value::to_raw_value(&template).map_err(Error::internal)?);
    resp.room_version = Some(version);
    Ok(RumaResponse(resp))
}

/// PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
/// <https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv2send_joinroomideventid>
pub async fn send_join(
    State(s): State<AppState>,
    req: Ruma<create_join_event::v2::Request>,
) -> Result<RumaResponse<create_join_event::v2::Response>> {
    let b = &req.body;
    let joined = s.federation.send_join(origin(&req)?, &b.room_id, &b.event_id, &b.pdu).await?;
    let mut state = create_join_event::v2::RoomState::new();
    state.state = joined.state;
    state.auth_chain = joined.auth_chain;
    state.servers_in_room = Some(joined.servers_in_room);
    state.event = joined.event;
    Ok(RumaResponse(create_join_event::v2::Response::new(state)))
}

fn now() -> ruma::MilliSecondsSinceUnixEpoch {
    ruma::MilliSecondsSinceUnixEpoch::now()
}

/// GET /_matrix/federation/v1/event/{eventId}
pub async fn get_event(
    State(s): State<AppState>,
    req: Ruma<get_event::v1::Request>,
) -> Result<RumaResponse<get_event::v1::Response>> {
    let pdu = s.federation.event_for(origin(&req)?, req.body.event_id.as_str()).await?;
    Ok(RumaResponse(get_event::v1::Response::new(s.config.server_name.clone(), now(), pdu)))
}

/// GET /_matrix/federation/v1/state_ids/{roomId}?event_id=
pub async fn get_state_ids(
    State(s): State<AppState>,
    req: Ruma<get_room_state_ids::v1::Request>,
) -> Result<RumaResponse<get_room_state_ids::v1::Response>> {
    let b = &req.body;
    let (state, chain) = s.federation.state_at(origin(&req)?, &b.room_id, b.event_id.as_str()).await?;
    let ids = |v: Vec<String>| v.into_iter().filter_map(|id| ruma::OwnedEventId::try_from(id).ok()).collect();
    Ok(RumaResponse(get_room_state_ids::v1::Response::new(ids(chain), ids(state))))
}

/// GET /_matrix/federation/v1/state/{roomId}?event_id=
pub async fn get_state(
    State(s): State<AppState>,
    req: Ruma<get_room_state::v1::Request>,
) -> Result<RumaResponse<get_room_state::v1::Response>> {
    let b = &req.body;
    let (state, chain) = s.federation.state_at(origin(&req)?, &b.room_id, b.event_id.as_str()).await?;
    Ok(RumaResponse(get_room_state::v1::Response::new(
        s.federation.pdus(&chain).await?,
        s.federation.pdus(&state).await?,
    )))
}

/// GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}
pub async fn get_event_auth(
    State(s): State<AppState>,
    req: Ruma<get_event_authorization::v1::Request>,
) -> Result<RumaResponse<get_event_authorization::v1::Response>> {
    let b = &req.body;
    let chain = s.federation.event_auth(origin(&req)?, &b.room_id, b.event_id.as_str()).await?;
    Ok(RumaResponse(get_event_authorization::v1::Response::new(chain)))
}

/// POST /_matrix/federation/v1/get_missing_events/{roomId}
pub async fn get_missing_events(
    State(s): State<AppState>,
    req: Ruma<get_missing_events::v1::Request>,
) -> Result<RumaResponse<get_missing_events::v1::Response>> {
    let b = &req.body;
    let limit = usize::try_from(u64::from(b.limit)).unwrap_or(usize::MAX);
    let min_depth = i64::try_from(u64::from(b.min_depth)).unwrap_or(i64::MAX);
    let events = s
        .federation
        .missing_events(origin(&req)?, &b.room_id, &b.earliest_events, &b.latest_events, limit, min_depth)
        .await?;
    Ok(RumaResponse(get_missing_events::v1::Response::new(events)))
}

/// GET /_matrix/federation/v1/backfill/{roomId}?v=&limit=
pub async fn get_backfill(
    State(s): State<AppState>,
    req: Ruma<get_backfill::v1::Request>,
) -> Result<RumaResponse<get_backfill::v1::Response>> {
    let b = &req.body;
    let limit = usize::try_from(u64::from(b.limit)).unwrap_or(usize::MAX);
    let pdus = s.federation.backfill(origin(&req)?, &b.room_id, &b.v, limit).await?;
    Ok(RumaResponse(get_backfill::v1::Response::new(s.config.server_name.clone(), now(), pdus)))
}

/// GET /_matrix/federation/v1/make_leave/{roomId}/{userId}
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1make_leaveroomiduserid>
pub async fn make_leave(
    State(s): State<AppState>,
    req: Ruma<prepare_leave_event::v1::Request>,
) -> Result<RumaResponse<prepare_leave_event::v1::Response>> {
    let b = &req.body;
    let (version, template) = s.federation.make_leave(origin(&req)?, &b.room_id, &b.user_id).await?;
    let event = serde_json::value::to_raw_value(&template).map_err(Error::internal)?;
    Ok(RumaResponse(prepare_leave_event::v1::Response::new(Some(version), event)))
}

/// PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}
/// <https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv2send_leaveroomideventid>
pub async fn send_leave(
    State(s): State<AppState>,
    req: Ruma<create_leave_event::v2::Request>,
) -> Result<RumaResponse<create_leave_event::v2::Response>> {
    let b = &req.body;
    s.federation.send_leave(origin(&req)?, &b.room_id, &b.event_id, &b.pdu).await?;
    Ok(RumaResponse(create_leave_event::v2::Response::new()))
}

/// PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
/// <https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv2inviteroomideventid>
pub async fn invite(
    State(s): State<AppState>,
    req: Ruma<create_invite::v2::Request>,
) -> Result<RumaResponse<create_invite::v2::Response>> {
    let b = &req.body;
    let event = s
        .federation
        .receive_invite(origin(&req)?, &b.room_id, &b.event_id, &b.room_version, &b.event, &b.invite_room_state)
        .await?;
    Ok(RumaResponse(create_invite::v2::Response::new(event)))
}

/// GET /_matrix/federation/v1/make_knock/{roomId}/{userId}
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1make_knockroomiduserid>
pub async fn make_knock(
    State(s): State<AppState>,
    req: Ruma<prepare_knock_event::v1::Request>,
) -> Result<RumaResponse<prepare_knock_event::v1::Response>> {
    let b = &req.body;
    let (version, template) = s.federation.make_knock(origin(&req)?, &b.room_id, &b.user_id, &b.ver).await?;
    let event = serde_json::value::to_raw_value(&template).map_err(Error::internal)?;
    Ok(RumaResponse(prepare_knock_event::v1::Response::new(version, event)))
}

/// PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
/// <https://spec.matrix.org/v1.19/server-server-api/#put_matrixfederationv1send_knockroomideventid>
pub async fn send_knock(
    State(s): State<AppState>,
    req: Ruma<create_knock_event::v1::Request>,
) -> Result<RumaResponse<create_knock_event::v1::Response>> {
    let b = &req.body;
    let state = s.federation.send_knock(origin(&req)?, &b.room_id, &b.event_id, &b.pdu).await?;
    Ok(RumaResponse(create_knock_event::v1::Response::new(state)))
}

/// GET /_matrix/federation/v1/timestamp_to_event/{roomId}
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1timestamp_to_eventroomid>
pub async fn timestamp_to_event(
    State(s): State<AppState>,
    req: Ruma<get_event_by_timestamp::v1::Request>,
) -> Result<RumaResponse<get_event_by_timestamp::v1::Response>> {
    let b = &req.body;
    let forward = b.dir == ruma::api::Direction::Forward;
    let (event_id, sent) =
        s.federation.event_near(origin(&req)?, &b.room_id, u64::from(b.ts.0) as i64, forward).await?;
    let ts = ruma::MilliSecondsSinceUnixEpoch(ruma::UInt::try_from(sent.max(0) as u64).unwrap_or_default());
    Ok(RumaResponse(get_event_by_timestamp::v1::Response::new(event_id, ts)))
}
