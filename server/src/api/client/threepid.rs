//! Third-party identifiers (spec: "Adding Account Administrative Contact Information",
//! "Password management", registration's `requestToken`). Hearth sends no email or SMS and talks
//! to no identity server, so no address can ever be validated by a client: accounts have only
//! the 3PIDs their server's admin recorded (Synapse's admin API), token
//! requests are refused as Synapse refuses them without an email or SMS configuration
//! (`M_THREEPID_MEDIUM_NOT_SUPPORTED`), and anything that needs a validated session fails as it
//! would with a session that never validated.

use axum::{Json, extract::State};
use http::StatusCode;
use ruma::api::client::account::{
    ThirdPartyIdRemovalStatus, add_3pid, bind_3pid, delete_3pid, get_3pids, request_3pid_management_token_via_email,
    request_3pid_management_token_via_msisdn, request_password_change_token_via_email,
    request_password_change_token_via_msisdn, request_registration_token_via_email,
    request_registration_token_via_msisdn, unbind_3pid,
};
use serde_json::Value;

use crate::{
    error::{Error, Result},
    http::ruma::{Authed, Ruma, RumaResponse},
    service::AppState,
};

fn medium_not_supported(what: &str) -> Error {
    Error::custom(
        StatusCode::BAD_REQUEST,
        "M_THREEPID_MEDIUM_NOT_SUPPORTED",
        format!("{what} is not possible on this server: it sends no email or text messages"),
    )
}

fn no_validated_session() -> Error {
    Error::custom(StatusCode::BAD_REQUEST, "M_THREEPID_AUTH_FAILED", "No validated 3PID session found")
}

/// GET /_matrix/client/v3/account/3pid: the addresses the server's admin recorded for the
/// account (none can be added from a client here). The list is written out also when empty
/// (ruma's response leaves it out, and clients such as Element read `threepids` always).
pub async fn get_3pids(State(s): State<AppState>, req: Ruma<get_3pids::v3::Request>) -> Result<Json<Value>> {
    let list = s.accounts.threepids(&req.session().user_id).await?;
    Ok(Json(serde_json::json!({ "threepids": list })))
}

/// POST /_matrix/client/v3/account/3pid/add: the password first (spec: user-interactive
/// authentication), then the session, which cannot have been validated here.
pub async fn add_3pid(
    State(s): State<AppState>,
    req: Ruma<add_3pid::v3::Request>,
) -> Result<RumaResponse<add_3pid::v3::Response>> {
    s.accounts.uia_password(req.session(), "add_3pid", req.body.auth.as_ref()).await?;
    Err(no_validated_session())
}

/// POST /_matrix/client/v3/account/3pid (deprecated): adding through an identity server,
/// which this server does not talk to (spec: 403 `M_THREEPID_AUTH_FAILED`).
pub async fn add_3pid_deprecated(Authed(_): Authed, Json(body): Json<Value>) -> Result<Json<Value>> {
    let creds = body.get("three_pid_creds").or_else(|| body.get("threePidCreds"));
    let Some(creds) = creds else {
        return Err(Error::missing_param("Missing three_pid_creds"));
    };
    if !creds["client_secret"].is_string() || !creds["sid"].is_string() {
        return Err(Error::missing_param("three_pid_creds needs client_secret and sid"));
    }
    Err(Error::custom(
        StatusCode::FORBIDDEN,
        "M_THREEPID_AUTH_FAILED",
        "This server does not check identifiers with identity servers",
    ))
}

/// POST /_matrix/client/v3/account/3pid/bind
pub async fn bind_3pid(_: Ruma<bind_3pid::v3::Request>) -> Result<RumaResponse<bind_3pid::v3::Response>> {
    Err(Error::forbidden("This server does not bind identifiers on identity servers"))
}

/// POST /_matrix/client/v3/account/3pid/delete: the address is removed from the account (an
/// admin recorded it); no identity server was told of it.
pub async fn delete_3pid(
    State(s): State<AppState>,
    req: Ruma<delete_3pid::v3::Request>,
) -> Result<RumaResponse<delete_3pid::v3::Response>> {
    let b = &req.body;
    s.accounts.delete_threepid(&req.session().user_id, b.medium.as_str(), &b.address).await?;
    Ok(RumaResponse(delete_3pid::v3::Response::new(ThirdPartyIdRemovalStatus::NoSupport)))
}

/// POST /_matrix/client/v3/account/3pid/unbind
pub async fn unbind_3pid(_: Ruma<unbind_3pid::v3::Request>) -> RumaResponse<unbind_3pid::v3::Response> {
    RumaResponse(unbind_3pid::v3::Response::new(ThirdPartyIdRemovalStatus::NoSupport))
}

/// POST /_matrix/client/v3/account/3pid/email/requestToken
pub async fn request_3pid_email(
    _: Ruma<request_3pid_management_token_via_email::v3::Request>,
) -> Result<RumaResponse<request_3pid_management_token_via_email::v3::Response>> {
    Err(medium_not_supported("Adding an email address"))
}

/// POST /_matrix/client/v3/account/3pid/msisdn/requestToken
pub async fn request_3pid_msisdn(
    _: Ruma<request_3pid_management_token_via_msisdn::v3::Request>,
) -> Result<RumaResponse<request_3pid_management_token_via_msisdn::v3::Response>> {
    Err(medium_not_supported("Adding a phone number"))
}

/// POST /_matrix/client/v3/account/password/email/requestToken
pub async fn request_password_email(
    _: Ruma<request_password_change_token_via_email::v3::Request>,
) -> Result<RumaResponse<request_password_change_token_via_email::v3::Response>> {
    Err(medium_not_supported("Resetting a password by email (ask the server's admin for a new one)"))
}

/// POST /_matrix/client/v3/account/password/msisdn/requestToken
pub async fn request_password_msisdn(
    _: Ruma<request_password_change_token_via_msisdn::v3::Request>,
) -> Result<RumaResponse<request_password_change_token_via_msisdn::v3::Response>> {
    Err(medium_not_supported("Resetting a password by text message (ask the server's admin for a new one)"))
}

/// POST /_matrix/client/v3/register/email/requestToken
pub async fn request_registration_email(
    _: Ruma<request_registration_token_via_email::v3::Request>,
) -> Result<RumaResponse<request_registration_token_via_email::v3::Response>> {
    Err(medium_not_supported("Registering with an email address"))
}

/// POST /_matrix/client/v3/register/msisdn/requestToken
pub async fn request_registration_msisdn(
    _: Ruma<request_registration_token_via_msisdn::v3::Request>,
) -> Result<RumaResponse<request_registration_token_via_msisdn::v3::Response>> {
    Err(medium_not_supported("Registering with a phone number"))
}
