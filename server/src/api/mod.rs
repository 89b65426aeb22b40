//! Endpoint handlers, one file per spec area. A handler checks permissions, calls one or two
//! services and builds the response; anything longer belongs in `service`.

pub mod acme;
pub mod admin;
pub mod client;
pub mod federation;
pub mod key_shapes;
pub mod metrics;
pub mod synapse_admin;

use axum::Router;

use crate::{http, service::AppState};

/// Every route of the public listener.
pub fn router(state: AppState) -> axum::Router {
    let r = Router::new();
    let r = client::routes(r);
    let r = federation::routes(r);
    let r = synapse_admin::routes(r);
    let r = r.merge(admin::ui::public_routes());
    http::finish(r, state)
}
