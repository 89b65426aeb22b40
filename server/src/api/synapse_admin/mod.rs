//! The parts of Synapse's admin API that tools and admins rely on, with Synapse's paths and JSON
//! shapes: the server's version, shared-secret registration, registration tokens and rate limit
//! overrides.

pub mod override_ratelimit;
pub mod register;
pub mod registration_tokens;

use axum::{
    Router,
    routing::{get, post},
};

use crate::service::AppState;

/// GET /_synapse/admin/v1/server_version: as Synapse, open to anyone (admin tools read it
/// before signing in).
async fn server_version() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "server_version": crate::VERSION }))
}

pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/_synapse/admin/v1/server_version", get(server_version))
        .route("/_synapse/admin/v1/register", get(register::get_nonce).post(register::register))
        .route("/_synapse/admin/v1/registration_tokens", get(registration_tokens::list))
        .route("/_synapse/admin/v1/registration_tokens/new", post(registration_tokens::create))
        .route(
            "/_synapse/admin/v1/registration_tokens/{token}",
            get(registration_tokens::get_one).put(registration_tokens::update).delete(registration_tokens::delete),
        )
        .route(
            "/_synapse/admin/v1/users/{user_id}/override_ratelimit",
            get(override_ratelimit::get).post(override_ratelimit::set).delete(override_ratelimit::delete),
        )
}
