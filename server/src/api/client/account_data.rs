//! Account data endpoints (spec: "Client Config"). Only the owner may read or write; the
//! server-managed types are refused, as the spec requires.

use axum::extract::State;
use ruma::{
    UserId,
    api::client::config::{
        get_global_account_data, get_room_account_data, set_global_account_data, set_room_account_data,
    },
};
use serde_json::Value;

use super::room::raw_json;
use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

fn own(session_user: &UserId, path_user: &UserId) -> Result<()> {
    if session_user != path_user {
        return Err(Error::forbidden("You can only access your own account data"));
    }
    Ok(())
}

/// Types the server manages itself (spec: "Server behaviour" of Client Config).
fn check_settable(event_type: &str) -> Result<()> {
    if event_type == "m.fully_read" || event_type == "m.push_rules" {
        return Err(Error::matrix(
            http::StatusCode::METHOD_NOT_ALLOWED,
            ruma::api::error::ErrorKind::BadJson,
            format!("{event_type} is managed by the server through its own API"),
        ));
    }
    Ok(())
}

fn parse(raw: &str) -> Result<Value> {
    serde_json::from_str(raw).map_err(|e| Error::bad_json(e.to_string()))
}

/// PUT /_matrix/client/v3/user/{userId}/account_data/{type}
pub async fn set_global_account_data(
    State(s): State<AppState>,
    req: Ruma<set_global_account_data::v3::Request>,
) -> Result<RumaResponse<set_global_account_data::v3::Response>> {
    let b = &req.body;
    own(&req.session().user_id, &b.user_id)?;
    let kind = b.event_type.to_string();
    check_settable(&kind)?;
    s.account_data.put(&b.user_id, None, &kind, &parse(b.data.json().get())?).await?;
    Ok(RumaResponse(set_global_account_data::v3::Response::new()))
}

/// GET /_matrix/client/v3/user/{userId}/account_data/{type}
pub async fn get_global_account_data(
    State(s): State<AppState>,
    req: Ruma<get_global_account_data::v3::Request>,
) -> Result<RumaResponse<get_global_account_data::v3::Response>> {
    let b = &req.body;
    own(&req.session().user_id, &b.user_id)?;
    let v = s
        .account_data
        .get(&b.user_id, None, &b.event_type.to_string())
        .await?
        .ok_or_else(|| Error::not_found("No account data of that type"))?;
    Ok(RumaResponse(get_global_account_data::v3::Response::new(raw_json(&v)?)))
}

/// PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
pub async fn set_room_account_data(
    State(s): State<AppState>,
    req: Ruma<set_room_account_data::v3::Request>,
) -> Result<RumaResponse<set_room_account_data::v3::Response>> {
    let b = &req.body;
    own(&req.session().user_id, &b.user_id)?;
    let kind = b.event_type.to_string();
    check_settable(&kind)?;
    if s.rooms.room(&b.room_id).await?.is_none() {
        return Err(Error::invalid_param("Unknown room"));
    }
    s.account_data.put(&b.user_id, Some(&b.room_id), &kind, &parse(b.data.json().get())?).await?;
    Ok(RumaResponse(set_room_account_data::v3::Response::new()))
}

/// GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}
pub async fn get_room_account_data(
    State(s): State<AppState>,
    req: Ruma<get_room_account_data::v3::Request>,
) -> Result<RumaResponse<get_room_account_data::v3::Response>> {
    let b = &req.body;
    own(&req.session().user_id, &b.user_id)?;
    let v = s
        .account_data
        .get(&b.user_id, Some(&b.room_id), &b.event_type.to_string())
        .await?
        .ok_or_else(|| Error::not_found("No account data of that type"))?;
    Ok(RumaResponse(get_room_account_data::v3::Response::new(raw_json(&v)?)))
}
