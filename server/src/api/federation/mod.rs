//! Server-Server API handlers. Only discovery (the signed key document, the version,
//! `.well-known/matrix/server`) and OpenID user info exist so far; the transport arrives with
//! the federation issue.

pub mod discovery;
pub mod openid;

use axum::Router;
use ruma::api::federation as f;

use crate::{http::route, service::AppState};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = route::<f::discovery::get_server_keys::v2::Request, _, _>(r, discovery::get_server_keys);
    let r = route::<f::discovery::get_server_version::v1::Request, _, _>(r, discovery::get_server_version);
    let r = route::<f::openid::get_openid_userinfo::v1::Request, _, _>(r, openid::get_openid_userinfo);
    route::<f::discovery::discover_homeserver::Request, _, _>(r, discovery::discover_homeserver)
}
