//! Session endpoints: login (password and token), login-token issuance, refresh, logout.

use axum::extract::State;
use ruma::api::client::{
    session::{
        get_login_token, get_login_types,
        get_login_types::v3::{LoginType, PasswordLoginType, TokenLoginType},
        login,
        login::v3::LoginInfo,
        logout, logout_all, refresh_token,
    },
    uiaa::UserIdentifier,
};

use super::account::local_user;
use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::{AppState, accounts::LOGIN_TOKEN_LIFETIME, ratelimit::address_key},
};

/// GET /_matrix/client/v3/login
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv3login>
pub async fn get_login_types(_: Ruma<get_login_types::v3::Request>) -> RumaResponse<get_login_types::v3::Response> {
    let mut token = TokenLoginType::new();
    token.get_login_token = true;
    RumaResponse(get_login_types::v3::Response::new(vec![
        LoginType::Password(PasswordLoginType::new()),
        LoginType::Token(token),
    ]))
}

/// POST /_matrix/client/v3/login
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3login>
pub async fn login(
    State(s): State<AppState>,
    req: Ruma<login::v3::Request>,
) -> Result<RumaResponse<login::v3::Response>> {
    let ip = req.ip_string();
    s.limits.login_address.check(&address_key(req.ip))?;
    let body = req.body;
    let user_id = match &body.login_info {
        LoginInfo::Password(p) => {
            #[allow(deprecated)]
            let name = match (&p.identifier, &p.user) {
                (Some(UserIdentifier::Matrix(m)), _) => m.user.clone(),
                (None, Some(user)) => user.clone(),
                (Some(_), _) => {
                    return Err(Error::forbidden("Only user ID identifiers can log in here (no email or phone login)"));
                }
                (None, None) => return Err(Error::missing_param("Missing identifier")),
            };
            let user_id = local_user(&s, &name)?;
            s.limits.login_account.check(user_id.as_str())?;
            if !s.accounts.check_password_limited(&user_id, &p.password).await? {
                return Err(Error::forbidden("Invalid username or password"));
            }
            user_id
        }
        LoginInfo::Token(t) => match s.accounts.take_login_token(&t.token).await? {
            Some(u) if !s.accounts.is_deactivated(&u).await? => u,
            _ => return Err(Error::forbidden("Invalid, expired or already used login token")),
        },
        _ => {
            return Err(Error::matrix(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::Unknown,
                "Unsupported login type: use m.login.password or m.login.token",
            ));
        }
    };
    let session = s
        .accounts
        .create_session(
            &user_id,
            body.device_id,
            body.initial_device_display_name.as_deref(),
            body.refresh_token,
            ip.as_deref(),
        )
        .await?;
    let mut resp = login::v3::Response::new(session.user_id, session.access_token, session.device_id);
    resp.refresh_token = session.refresh_token;
    resp.expires_in = session.expires_in;
    let mut wk = login::v3::DiscoveryInfo::new(login::v3::HomeserverInfo::new(
        s.config.public_baseurl().trim_end_matches('/').to_owned(),
    ));
    wk.identity_server = None;
    resp.well_known = Some(wk);
    Ok(RumaResponse(resp))
}

/// POST /_matrix/client/v1/login/get_token
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv1loginget_token>
pub async fn get_login_token(
    State(s): State<AppState>,
    req: Ruma<get_login_token::v1::Request>,
) -> Result<RumaResponse<get_login_token::v1::Response>> {
    let session = req.session();
    // Re-authentication is always asked for: the token signs in a new device.
    s.accounts.uia_password(session, "get_login_token", req.body.auth.as_ref()).await?;
    let token = s.accounts.create_login_token(&session.user_id).await?;
    Ok(RumaResponse(get_login_token::v1::Response::new(LOGIN_TOKEN_LIFETIME, token)))
}

/// POST /_matrix/client/v3/refresh
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3refresh>
pub async fn refresh_token(
    State(s): State<AppState>,
    req: Ruma<refresh_token::v3::Request>,
) -> Result<RumaResponse<refresh_token::v3::Response>> {
    let session = s.accounts.refresh(&req.body.refresh_token).await?;
    let mut resp = refresh_token::v3::Response::new(session.access_token);
    resp.refresh_token = session.refresh_token;
    resp.expires_in_ms = session.expires_in;
    Ok(RumaResponse(resp))
}

/// POST /_matrix/client/v3/logout
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3logout>
pub async fn logout(
    State(s): State<AppState>,
    req: Ruma<logout::v3::Request>,
) -> Result<RumaResponse<logout::v3::Response>> {
    s.accounts.logout(req.session()).await?;
    Ok(RumaResponse(logout::v3::Response::new()))
}

/// POST /_matrix/client/v3/logout/all
/// <https://spec.matrix.org/v1.19/client-server-api/#post_matrixclientv3logoutall>
pub async fn logout_all(
    State(s): State<AppState>,
    req: Ruma<logout_all::v3::Request>,
) -> Result<RumaResponse<logout_all::v3::Response>> {
    s.accounts.logout_all(&req.session().user_id).await?;
    Ok(RumaResponse(logout_all::v3::Response::new()))
}
