//! The web UI's files (`ui/` in the repository), compiled into the binary so neither running
//! nor building Hearth needs Node. The admin listener serves the dashboard; the public
//! listener serves only the invite page and what it needs.

use axum::{
    Router,
    extract::Path,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use http::{HeaderValue, StatusCode, header};

use crate::{error::Error, service::AppState};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// Served on the public listener too.
    public: bool,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../../ui/index.html"),
        public: false,
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../ui/app.js"),
        public: false,
    },
    Asset {
        name: "invite.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../../ui/invite.html"),
        public: true,
    },
    Asset {
        name: "invite.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../../ui/invite.js"),
        public: true,
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../../ui/style.css"),
        public: true,
    },
];

/// The pages may load only their own files and talk only to their own origin.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'self'";

fn serve(name: &str, public_only: bool) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name && (a.public || !public_only)) else {
        return Error::unrecognized(StatusCode::NOT_FOUND, "No such file").into_response();
    };
    let mut resp = asset.body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The UI changes with the binary; a stale cached copy would talk to a newer API.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// On the admin listener: the dashboard and wizard.
pub fn admin_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/_hearth/") }))
        .route("/_hearth", get(|| async { Redirect::to("/_hearth/") }))
        .route("/_hearth/", get(|| async { serve("index.html", false) }))
        .route("/_hearth/assets/{name}", get(|Path(name): Path<String>| async move { serve(&name, false) }))
}

/// On the public listener: the invite page and its files.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/_hearth/invite/{code}", get(|| async { serve("invite.html", true) }))
        .route("/_hearth/invite/{code}/state", get(super::signup::state))
        .route("/_hearth/invite/{code}/register", axum::routing::post(super::signup::register))
        .route("/_hearth/assets/{name}", get(|Path(name): Path<String>| async move { serve(&name, true) }))
}
