//! Account endpoints: registration, availability, registration-token validity, whoami, password
//! change and deactivation.

use axum::extract::State;
use http::StatusCode;
use ruma::api::{
    client::{
        account::{
            ThirdPartyIdRemovalStatus, change_password, check_registration_token_validity, deactivate,
            get_username_availability, register,
            register::{LoginType, RegistrationKind},
            whoami,
        },
        uiaa::{AuthData, AuthType},
    },
    error::ErrorKind,
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::{
        AppState,
        accounts::{UserLookup, user_in_use},
        ratelimit::address_key,
        uiaa::Stage,
    },
};

fn registration_closed() -> Error {
    Error::forbidden(
        "Registration is closed on this server. The admin can create your account with `hearth register-user`, \
         or open registration with enable_registration = true and registration_requires_token = true in homeserver.toml",
    )
}

/// POST /_matrix/client/v3/register
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3register>
pub async fn register(
    State(s): State<AppState>,
    req: Ruma<register::v3::Request>,
) -> Result<RumaResponse<register::v3::Response>> {
    let ip = req.ip_string();
    let body = req.body;
    if body.login_type.as_ref().is_some_and(|t| *t == LoginType::ApplicationService) {
        return Err(Error::matrix(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden,
            "No application services are registered on this server",
        ));
    }

    if body.kind == RegistrationKind::Guest {
        if !s.config.allow_guest_access {
            return Err(Error::matrix(
                StatusCode::FORBIDDEN,
                ErrorKind::GuestAccessForbidden,
                "Guest access is disabled on this server (allow_guest_access = false)",
            ));
        }
        s.limits.registration.check(&address_key(req.ip))?;
        let user_id = s.accounts.generate_user_id().await?;
        s.accounts.create_user(&user_id, None, false, true, None, None).await?;
        // Guests get no refresh token: they have no way back into their account if it lapses.
        let session = s
            .accounts
            .create_session(&user_id, None, body.initial_device_display_name.as_deref(), false, ip.as_deref())
            .await?;
        return Ok(RumaResponse(session_response(session, false)));
    }

    if !s.config.enable_registration {
        return Err(registration_closed());
    }

    // Validate the username before any authentication stage, as Synapse does, so a client
    // learns about a taken name before the user spends an invite code.
    let requested = match &body.username {
        Some(name) => Some(s.accounts.validate_new_localpart(name)?.1),
        None => None,
    };
    if let (Some(user_id), None) = (&requested, &body.guest_access_token)
        && !s.accounts.is_available(user_id).await?
    {
        return Err(user_in_use());
    }
    // A password sent is judged at once, but a request without one still learns the flows
    // (spec: a client may start with an empty body to discover them, as Synapse allows).
    if let Some(password) = &body.password {
        s.accounts.check_new_password(password)?;
    }

    let flows = s.accounts.registration_flows();
    let Some(auth) = &body.auth else {
        // Only asks for the flows, but keeps a session in memory: a budget of its own, larger
        // than the one for attempts below.
        s.limits.registration_start.check(&address_key(req.ip))?;
        return Err(s.accounts.uiaa.begin("register", &flows));
    };
    // Checked before any stage runs, so a refused attempt never spends an invite code.
    let Some(password) = body.password.clone() else {
        return Err(Error::missing_param("A password is required to register"));
    };
    let token_given = match auth {
        AuthData::RegistrationToken(t) => Some(t.token.clone()),
        _ => None,
    };
    // The rate limit counts attempts that carry authentication (the ones that can create an
    // account), not the first round trip that only asks for the flows. It is checked before
    // the stage, so a refused attempt never holds an invite code.
    s.limits.registration.check(&address_key(req.ip))?;
    let accounts = &s.accounts;
    let authorised = accounts
        .uiaa
        .step("register", &flows, auth.session(), auth.auth_type(), |stage| async move {
            match stage {
                AuthType::Dummy => Ok(Stage::Passed),
                AuthType::RegistrationToken => match token_given {
                    Some(t) => accounts.check_registration_token(&t).await,
                    None => Ok(Stage::Failed(ErrorKind::MissingParam, "Missing registration token".to_owned())),
                },
                other => Ok(Stage::Failed(ErrorKind::Unrecognized, format!("Unsupported stage {other}"))),
            }
        })
        .await?;

    let token = authorised.registration_token.as_deref();
    match create_or_upgrade(&s, &body, requested, password, token, ip.as_deref()).await {
        Ok(user_id) => finish_registration(&s, &user_id, &body, ip.as_deref()).await,
        Err(e) => {
            // Give the invite code back: the account could not be made after all.
            if let Some(t) = token {
                s.accounts.release_registration_token(t).await?;
            }
            Err(e)
        }
    }
}

/// Creates the account, or upgrades the guest named by `guest_access_token` (spec: "Guest
/// access": the guest keeps its user ID and must name its own localpart).
async fn create_or_upgrade(
    s: &AppState,
    body: &register::v3::Request,
    requested: Option<ruma::OwnedUserId>,
    password: String,
    token: Option<&str>,
    ip: Option<&str>,
) -> Result<ruma::OwnedUserId> {
    if let Some(guest_token) = &body.guest_access_token {
        let guest = s.accounts.authenticate(guest_token, ip, None).await?;
        if !guest.is_guest {
            return Err(Error::forbidden("guest_access_token does not belong to a guest account"));
        }
        if body.username.as_deref().map(str::to_lowercase).as_deref() != Some(guest.user_id.localpart()) {
            return Err(Error::invalid_param("To upgrade a guest account, set username to its own localpart"));
        }
        s.accounts.upgrade_guest(&guest.user_id, password).await?;
        if let Some(t) = token {
            s.accounts.complete_registration_token(t).await?;
        }
        return Ok(guest.user_id);
    }
    let user_id = match requested {
        Some(u) => u,
        None => s.accounts.generate_user_id().await?,
    };
    s.accounts.create_user(&user_id, Some(password), false, false, None, token).await?;
    Ok(user_id)
}

async fn finish_registration(
    s: &AppState,
    user_id: &ruma::UserId,
    body: &register::v3::Request,
    ip: Option<&str>,
) -> Result<RumaResponse<register::v3::Response>> {
    if body.inhibit_login {
        return Ok(RumaResponse(register::v3::Response::new(user_id.to_owned())));
    }
    let session = s
        .accounts
        .create_session(
            user_id,
            body.device_id.clone(),
            body.initial_device_display_name.as_deref(),
            body.refresh_token,
            ip,
        )
        .await?;
    Ok(RumaResponse(session_response(session, body.refresh_token)))
}

fn session_response(session: crate::service::accounts::NewSession, _refresh: bool) -> register::v3::Response {
    let mut resp = register::v3::Response::new(session.user_id);
    resp.access_token = Some(session.access_token);
    resp.device_id = Some(session.device_id);
    resp.refresh_token = session.refresh_token;
    resp.expires_in = session.expires_in;
    resp
}

/// GET /_matrix/client/v3/register/available
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3registeravailable>
pub async fn get_username_availability(
    State(s): State<AppState>,
    req: Ruma<get_username_availability::v3::Request>,
) -> Result<RumaResponse<get_username_availability::v3::Response>> {
    s.limits.registration.check(&address_key(req.ip))?;
    let (_, user_id) = s.accounts.validate_new_localpart(&req.body.username)?;
    if !s.accounts.is_available(&user_id).await? {
        return Err(user_in_use());
    }
    Ok(RumaResponse(get_username_availability::v3::Response::new(true)))
}

/// GET /_matrix/client/v1/register/m.login.registration_token/validity
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv1registermloginregistration_tokenvalidity>
pub async fn check_registration_token_validity(
    State(s): State<AppState>,
    req: Ruma<check_registration_token_validity::v1::Request>,
) -> Result<RumaResponse<check_registration_token_validity::v1::Response>> {
    if !(s.config.enable_registration && s.config.registration_requires_token) {
        return Err(Error::forbidden("Registration tokens are not used on this server"));
    }
    s.limits.token_validity.check(&address_key(req.ip))?;
    let valid = s.accounts.registration_token_valid(&req.body.token).await?;
    Ok(RumaResponse(check_registration_token_validity::v1::Response::new(valid)))
}

/// GET /_matrix/client/v3/account/whoami
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3accountwhoami>
pub async fn whoami(req: Ruma<whoami::v3::Request>) -> RumaResponse<whoami::v3::Response> {
    let session = req.session();
    let mut resp = whoami::v3::Response::new(session.user_id.clone(), session.is_guest);
    resp.device_id = Some(session.device_id.clone());
    RumaResponse(resp)
}

/// POST /_matrix/client/v3/account/password
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3accountpassword>
pub async fn change_password(
    State(s): State<AppState>,
    req: Ruma<change_password::v3::Request>,
) -> Result<RumaResponse<change_password::v3::Response>> {
    let session = req.session();
    s.accounts.check_new_password(&req.body.new_password)?;
    s.accounts.uia_password(session, "change_password", req.body.auth.as_ref()).await?;
    s.accounts
        .change_password(&session.user_id, req.body.new_password.clone(), req.body.logout_devices, session)
        .await?;
    Ok(RumaResponse(change_password::v3::Response::new()))
}

/// POST /_matrix/client/v3/account/deactivate
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3accountdeactivate>
pub async fn deactivate(
    State(s): State<AppState>,
    req: Ruma<deactivate::v3::Request>,
) -> Result<RumaResponse<deactivate::v3::Response>> {
    let session = req.session();
    s.accounts.uia_password(session, "deactivate", req.body.auth.as_ref()).await?;
    s.deactivate_account(&session.user_id, req.body.erase).await?;
    // No identity servers are bound by this server, so nothing needed unbinding.
    Ok(RumaResponse(deactivate::v3::Response::new(ThirdPartyIdRemovalStatus::Success)))
}

/// Resolves a login identifier, or the forbidden error every failed login gets.
pub fn local_user(s: &AppState, user: &str) -> Result<ruma::OwnedUserId> {
    match s.accounts.resolve_identifier(user) {
        UserLookup::Found(u) => Ok(u),
        UserLookup::NotHere => Err(Error::forbidden("Invalid username or password")),
    }
}

/// GET /_matrix/client/v3/password_policy (Synapse's, not in the spec): what a new password must
/// be like, with Synapse's `m.`-prefixed keys; `{}` when no policy applies.
pub async fn password_policy(State(s): State<AppState>) -> axum::Json<serde_json::Value> {
    let p = &s.config.password_config.policy;
    if !p.enabled {
        return axum::Json(serde_json::json!({}));
    }
    axum::Json(serde_json::json!({
        "m.minimum_length": p.minimum_length,
        "m.require_digit": p.require_digit,
        "m.require_symbol": p.require_symbol,
        "m.require_lowercase": p.require_lowercase,
        "m.require_uppercase": p.require_uppercase,
    }))
}

/// POST /_matrix/client/v3/user/{userId}/openid/request_token: a token a third party (a
/// widget, Element Call) checks with this server's federation API to learn who the user is.
pub async fn request_openid_token(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::account::request_openid_token::v3::Request>,
) -> Result<RumaResponse<ruma::api::client::account::request_openid_token::v3::Response>> {
    use ruma::{api::client::account::request_openid_token::v3::Response, authentication::TokenType};
    let user = &req.session().user_id;
    if *user != req.body.user_id {
        return Err(Error::forbidden("You can only ask for OpenID tokens for yourself"));
    }
    let (token, lifetime) = s.accounts.create_openid_token(user).await?;
    Ok(RumaResponse(Response::new(token, TokenType::Bearer, s.config.server_name.clone(), lifetime)))
}
