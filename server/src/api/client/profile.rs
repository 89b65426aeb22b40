//! Profiles (spec: "Profiles"): display name and avatar URL, of local users and, through
//! federation, of users on other servers.

use axum::extract::State;
use ruma::api::client::profile::{delete_profile_field, get_profile, get_profile_field, set_profile_field};
use ruma::profile::{ProfileFieldName, ProfileFieldValue};
use serde_json::json;

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::{AppState, ratelimit::address_key},
};

/// A profile lookup, under `rc_profile`: per user, or per client address without a session.
async fn load<T>(s: &AppState, req: &Ruma<T>, user: &ruma::UserId) -> Result<(Option<String>, Option<String>)> {
    match &req.session {
        Some(session) => s.limits.user(&s.limits.profile, &session.user_id)?,
        None => s.limits.profile.check(&address_key(req.ip))?,
    }
    if user.server_name() != s.config.server_name {
        return s.federation.remote_profile(user).await;
    }
    s.rooms.profile(user).await?.ok_or_else(|| Error::not_found("No such user"))
}

/// GET /_matrix/client/v3/profile/{userId}
pub async fn get_profile(
    State(s): State<AppState>,
    req: Ruma<get_profile::v3::Request>,
) -> Result<RumaResponse<get_profile::v3::Response>> {
    let (name, avatar) = load(&s, &req, &req.body.user_id).await?;
    let mut resp = get_profile::v3::Response::new();
    if let Some(n) = name {
        resp.set("displayname".to_owned(), json!(n));
    }
    if let Some(a) = avatar {
        resp.set("avatar_url".to_owned(), json!(a));
    }
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v3/profile/{userId}/{keyName}
pub async fn get_profile_field(
    State(s): State<AppState>,
    req: Ruma<get_profile_field::v3::Request>,
) -> Result<RumaResponse<get_profile_field::v3::Response>> {
    let (name, avatar) = load(&s, &req, &req.body.user_id).await?;
    let value = match &req.body.field {
        ProfileFieldName::DisplayName => name.map(ProfileFieldValue::DisplayName),
        ProfileFieldName::AvatarUrl => avatar.map(|a| ProfileFieldValue::AvatarUrl(a.into())),
        _ => None,
    };
    let value = value.ok_or_else(|| Error::not_found("That profile field is not set"))?;
    Ok(RumaResponse(get_profile_field::v3::Response::new(value)))
}

/// Guests may change their display name and nothing else of their profile (spec: "Guest
/// access").
fn refuse_guest_field<T>(req: &Ruma<T>, field: &str) -> Result<()> {
    if req.session().is_guest && field != "displayname" {
        return Err(Error::matrix(
            http::StatusCode::FORBIDDEN,
            ruma::api::error::ErrorKind::GuestAccessForbidden,
            "Guests may only change their display name",
        ));
    }
    Ok(())
}

/// PUT /_matrix/client/v3/profile/{userId}/{keyName}
pub async fn set_profile_field(
    State(s): State<AppState>,
    req: Ruma<set_profile_field::v3::Request>,
) -> Result<RumaResponse<set_profile_field::v3::Response>> {
    let b = &req.body;
    if req.session().user_id != b.user_id {
        return Err(Error::forbidden("You can only change your own profile"));
    }
    req.session().refuse_if_suspended("Changing your profile")?;
    let field = b.value.field_name();
    refuse_guest_field(&req, field.as_str())?;
    let value = b.value.value();
    let text = value.as_str().ok_or_else(|| Error::bad_json("The value must be a string"))?;
    s.rooms.set_profile_field(&b.user_id, field.as_str(), Some(text)).await?;
    Ok(RumaResponse(set_profile_field::v3::Response::new()))
}

/// DELETE /_matrix/client/v3/profile/{userId}/{keyName}
pub async fn delete_profile_field(
    State(s): State<AppState>,
    req: Ruma<delete_profile_field::v3::Request>,
) -> Result<RumaResponse<delete_profile_field::v3::Response>> {
    let b = &req.body;
    if req.session().user_id != b.user_id {
        return Err(Error::forbidden("You can only change your own profile"));
    }
    req.session().refuse_if_suspended("Changing your profile")?;
    refuse_guest_field(&req, b.field.as_str())?;
    s.rooms.set_profile_field(&b.user_id, b.field.as_str(), None).await?;
    Ok(RumaResponse(delete_profile_field::v3::Response::new()))
}
