//! Room traffic from other servers: transactions of events, and remote users joining.

use axum::extract::State;
use ruma::api::federation::{
    membership::{create_join_event, prepare_join_event},
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
    let results = s.federation.receive_transaction(origin, &req.body.pdus, req.body.edus.len()).await?;
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
    Ok(RumaResponse(create_join_event::v2::Response::new(state)))
}
