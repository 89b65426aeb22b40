//! OpenID (spec, server-server: "OpenID"): a third party holding a user's OpenID token asks who
//! it belongs to.

use axum::extract::State;
use http::StatusCode;
use ruma::api::{error::ErrorKind, federation::openid::get_openid_userinfo};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// GET /_matrix/federation/v1/openid/userinfo?access_token=
pub async fn get_openid_userinfo(
    State(s): State<AppState>,
    req: Ruma<get_openid_userinfo::v1::Request>,
) -> Result<RumaResponse<get_openid_userinfo::v1::Response>> {
    let user = s.accounts.openid_user(&req.body.access_token).await?.ok_or_else(|| {
        Error::matrix(
            StatusCode::UNAUTHORIZED,
            ErrorKind::UnknownToken(ruma::api::error::UnknownTokenErrorData::new()),
            "The token was not recognised or has expired",
        )
    })?;
    Ok(RumaResponse(get_openid_userinfo::v1::Response::new(user)))
}
