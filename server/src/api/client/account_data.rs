//! Account data endpoints (spec: "Client Config"). Only the owner may read or write; the
//! server-managed types are refused, as the spec requires.

use axum::{Json, extract::State};
use ruma::{
    UserId,
    api::client::{
        config::{get_global_account_data, get_room_account_data, set_global_account_data, set_room_account_data},
        tag::{create_tag, delete_tag, get_tags},
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

/// The longest tag name the spec allows ("Room Tagging").
const MAX_TAG_BYTES: usize = 255;

/// GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags. Answered as stored: ruma's
/// response type would drop the keys a client added to a tag beside `order`.
pub async fn get_tags(State(s): State<AppState>, req: Ruma<get_tags::v3::Request>) -> Result<Json<Value>> {
    let b = &req.body;
    own(&req.session().user_id, &b.user_id)?;
    let tags = s.account_data.tags(&b.user_id, &b.room_id).await?;
    Ok(Json(serde_json::json!({ "tags": tags })))
}

/// PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}. The tag's object is kept as
/// sent (clients may add their own keys), once its `order` is a number in [0, 1].
pub async fn create_tag(
    State(s): State<AppState>,
    req: Ruma<create_tag::v3::Request>,
) -> Result<RumaResponse<create_tag::v3::Response>> {
    let b = &req.body;
    own(&req.session().user_id, &b.user_id)?;
    if b.tag.len() > MAX_TAG_BYTES {
        return Err(Error::invalid_param("A tag is at most 255 bytes long"));
    }
    if let Some(order) = b.tag_info.order
        && !(0.0..=1.0).contains(&order)
    {
        return Err(Error::invalid_param("A tag's order is a number from 0 to 1"));
    }
    // As Synapse: tagging a room the user has never had anything to do with is refused.
    if s.rooms.membership(&b.room_id, &b.user_id).await?.is_none() {
        return Err(Error::forbidden("You are not in that room"));
    }
    let content = parse(std::str::from_utf8(&req.raw_body).map_err(|e| Error::bad_json(e.to_string()))?)?;
    if !content.is_object() {
        return Err(Error::bad_json("A tag's content is a JSON object"));
    }
    // ruma reads a string `order` too (for old clients); what is stored must be a number.
    if content.get("order").is_some_and(|o| !o.is_number()) {
        return Err(Error::bad_json("A tag's order is a number"));
    }
    s.account_data.set_tag(&b.user_id, &b.room_id, &b.tag, Some(content)).await?;
    Ok(RumaResponse(create_tag::v3::Response::new()))
}

/// DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}
pub async fn delete_tag(
    State(s): State<AppState>,
    req: Ruma<delete_tag::v3::Request>,
) -> Result<RumaResponse<delete_tag::v3::Response>> {
    let b = &req.body;
    own(&req.session().user_id, &b.user_id)?;
    s.account_data.set_tag(&b.user_id, &b.room_id, &b.tag, None).await?;
    Ok(RumaResponse(delete_tag::v3::Response::new()))
}
