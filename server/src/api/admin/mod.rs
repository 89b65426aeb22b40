//! Hearth's own admin API and web UI, on the admin listener (`admin.port`, loopback only):
//! `/_hearth/` serves the UI (`ui/`), `/_hearth/admin/v1/*` the JSON API it calls.
//!
//! Three locks on the door, as docs/ARCHITECTURE.md explains: the listener binds to loopback
//! only (checked in the config); every request must name the listener itself in its Host header
//! (a web page elsewhere cannot reach it through DNS rebinding); every API call carries the admin
//! token as a bearer token (no cookies, so a page elsewhere cannot borrow a session: no CSRF).
//! The listener sends no CORS headers, so browsers keep other origins out as well.
//!
//! `signup` is the exception that lives on the public listener: the invite page.

pub mod backups;
pub mod federation;
pub mod health;
pub mod invites;
pub mod logs;
pub mod restore;
pub mod reverse_proxy;
pub mod rooms;
pub mod settings;
pub mod setup;
pub mod signup;
pub mod status;
pub mod tls;
pub mod turn;
pub mod ui;
pub mod updates;
pub mod users;

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use http::{StatusCode, header};

use crate::{error::Error, service::AppState};

/// The admin listener's whole router, for a listener bound to `port`.
pub fn router(state: AppState, port: u16) -> Router {
    let api = Router::new()
        .route("/_hearth/admin/v1/status", get(status::get_status))
        .route("/_hearth/admin/v1/admin-key", post(status::rotate_admin_key))
        .route("/_hearth/admin/v1/users", get(users::list).post(users::create))
        .route("/_hearth/admin/v1/users/{user_id}/password", post(users::reset_password))
        .route("/_hearth/admin/v1/users/{user_id}/deactivate", post(users::deactivate))
        .route("/_hearth/admin/v1/users/{user_id}/admin", put(users::set_admin))
        .route("/_hearth/admin/v1/invites", get(invites::list).post(invites::create))
        .route("/_hearth/admin/v1/invites/{code}", delete(invites::delete))
        .route("/_hearth/admin/v1/reverse-proxy", post(reverse_proxy::generate))
        .route("/_hearth/admin/v1/turn", get(turn::get_turn).post(turn::post_turn))
        .route("/_hearth/admin/v1/tls", get(tls::get_tls))
        .route("/_hearth/admin/v1/tls/check", post(tls::check_tls))
        .route("/_hearth/admin/v1/logs", get(logs::get_logs))
        .route("/_hearth/admin/v1/health/database", post(health::check_database))
        .route("/_hearth/admin/v1/backups", get(backups::get_backups).put(backups::put_backups))
        .route("/_hearth/admin/v1/backups/run", post(backups::run))
        .route("/_hearth/admin/v1/restore", get(restore::get_restore).post(restore::post_restore))
        .route("/_hearth/admin/v1/updates", get(updates::get_updates).put(updates::put_updates))
        .route("/_hearth/admin/v1/updates/check", post(updates::check))
        .route("/_hearth/admin/v1/updates/install", post(updates::install))
        .route("/_hearth/admin/v1/federation/destinations", get(federation::destinations))
        .route("/_hearth/admin/v1/federation/test", get(federation::test))
        .route("/_hearth/admin/v1/rooms", get(rooms::list))
        .route("/_hearth/admin/v1/settings", get(settings::get_settings).put(settings::put_settings))
        .route("/_hearth/admin/v1/setup", get(setup::get_setup))
        .route("/_hearth/admin/v1/setup/{step}", post(setup::post_step))
        .route("/_hearth/admin/v1/rooms/{room_id}", axum::routing::delete(rooms::delete))
        .route("/_hearth/admin/v1/rooms/{room_id}/members", get(rooms::members))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    let with_metrics = if state.metrics.is_some() { crate::api::metrics::routes(Router::new()) } else { Router::new() };
    let router = Router::new()
        .merge(api)
        .merge(with_metrics)
        .merge(ui::admin_routes())
        .fallback(|| async {
            Error::unrecognized(StatusCode::NOT_FOUND, "No such page or endpoint on the admin listener")
        })
        .layer(middleware::from_fn(crate::http::ensure_matrix_error))
        .layer(middleware::from_fn(move |req: Request, next: Next| check_host(port, req, next)))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            Error::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), crate::http::count_request));
    crate::http::observe(router).with_state(state)
}

/// Only requests addressed to this listener by a loopback name: a page on another site whose
/// name was re-pointed at 127.0.0.1 (DNS rebinding) still sends its own name.
async fn check_host(port: u16, req: Request, next: Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let allowed = [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")];
    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(host)) {
        return Error::forbidden(format!(
            "The admin page only answers at http://127.0.0.1:{port}/_hearth/ (this request was for `{host}`)"
        ))
        .into_response();
    }
    next.run(req).await
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(value) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Error::missing_token().into_response();
    };
    let token = value.strip_prefix("Bearer ").unwrap_or("").trim();
    let valid = match state.admin_key.verify(token).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if !valid {
        return Error::matrix(
            StatusCode::UNAUTHORIZED,
            ruma::api::error::ErrorKind::UnknownToken(ruma::api::error::UnknownTokenErrorData::new()),
            "Wrong admin token: open the admin link Hearth printed at start (or the desktop app) again",
        )
        .into_response();
    }
    next.run(req).await
}
