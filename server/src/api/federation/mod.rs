//! Server-Server API handlers. Only discovery exists so far: the signed key document, the
//! version, and `.well-known/matrix/server`; the transport arrives with the federation issue.

pub mod discovery;

use axum::Router;
use ruma::api::federation as f;

use crate::{http::route, service::AppState};

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    let r = route::<f::discovery::get_server_keys::v2::Request, _, _>(r, discovery::get_server_keys);
    let r = route::<f::discovery::get_server_version::v1::Request, _, _>(r, discovery::get_server_version);
    route::<f::discovery::discover_homeserver::Request, _, _>(r, discovery::discover_homeserver)
}
