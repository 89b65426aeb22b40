//! axum glue only: the router, extractors, CORS, and the fallback that answers M_UNRECOGNIZED.
//! No business rules here; handlers live in `api`.

pub mod json;
pub mod ruma;
pub mod serve;

use std::{sync::Arc, time::Duration};

use ::ruma::api::{IncomingRequest, path_builder::PathBuilder};
use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    handler::Handler,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodFilter, on},
};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use crate::{config::ForwardedFor, error::Error, service::AppState};

/// Registers `handler` on every path ruma knows for `Req` (r0, v3, unstable...), so each
/// historical path reaches the same handler.
pub fn route<Req, H, T>(router: Router<AppState>, handler: H) -> Router<AppState>
where
    Req: IncomingRequest,
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = method_filter(&Req::METHOD);
    let mut router = router;
    for path in Req::PATH_BUILDER.all_paths() {
        router = router.route(path, on(filter, handler.clone()));
        // An empty state key leaves the path ending in `/` (or with the segment missing); the
        // extractor fills in the empty key (spec: "state_key ... may be an empty string").
        if let Some(prefix) = path.strip_suffix("/{state_key}") {
            router = router.route(&format!("{prefix}/"), on(filter, handler.clone()));
            router = router.route(prefix, on(filter, handler.clone()));
        }
    }
    router
}

fn method_filter(m: &Method) -> MethodFilter {
    match *m {
        Method::GET => MethodFilter::GET,
        Method::POST => MethodFilter::POST,
        Method::PUT => MethodFilter::PUT,
        Method::DELETE => MethodFilter::DELETE,
        Method::PATCH => MethodFilter::PATCH,
        Method::HEAD => MethodFilter::HEAD,
        _ => MethodFilter::OPTIONS,
    }
}

/// Wraps the API routes with the layers every response needs.
pub fn finish(router: Router<AppState>, state: AppState) -> Router {
    let router = router
        .fallback(unrecognized)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost first: panics and timeouts become responses that the outer layers then turn
        // into Matrix errors and give CORS headers.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            Error::internal("handler panicked").into_response()
        }))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(600),
        ))
        .layer(middleware::from_fn(ensure_matrix_error))
        // CORS as the spec requires (Client-Server API, "Web Browser Clients"): any OPTIONS
        // request is answered directly, and every response, errors included, carries the
        // headers; tower-http sends the allowed methods and headers on OPTIONS only, the spec
        // wants them on all.
        .layer(SetResponseHeaderLayer::if_not_present(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
        .layer(SetResponseHeaderLayer::if_not_present(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
        .layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::any())
                .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS])
                .allow_headers([
                    HeaderName::from_static("x-requested-with"),
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                ])
                .expose_headers([header::RETRY_AFTER]),
        )
        .layer(middleware::from_fn_with_state(state.clone(), count_request));
    observe(router).with_state(state)
}

const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS");
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static("X-Requested-With, Content-Type, Authorization");

/// The header carrying a request's ID.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A span for every request, so that each log line, a 500's included, says which request it
/// belongs to: method, path (never the query, which may hold an access token), a request ID
/// (a proxy's `X-Request-Id`, else a new one, also returned in the response) and, once
/// authenticated, the user. Server errors are logged when answered.
pub fn observe<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                        user = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Counts and times each request for the metrics (with `enable_metrics`), by the route it
/// matched: the response's status and the time until its headers.
pub async fn count_request(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(metrics) = s.metrics.clone() else {
        return next.run(req).await;
    };
    let endpoint =
        crate::service::metrics::Endpoint::of(req.extensions().get::<MatchedPath>().map(MatchedPath::as_str));
    // Methods outside HTTP's own would each make a series.
    let method = match *req.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    };
    let in_flight = metrics.start(endpoint, method);
    let resp = next.run(req).await;
    in_flight.done(resp.status().as_u16());
    resp
}

async fn unrecognized() -> Error {
    Error::unrecognized(StatusCode::NOT_FOUND, "Unrecognized request: this endpoint does not exist on this server")
}

async fn method_not_allowed() -> Error {
    Error::unrecognized(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed for this endpoint")
}

/// A safety net: any error response that is not already a Matrix error body (an axum extractor
/// rejection, a timeout) is rewritten into one, so clients always get `errcode` and `error`.
pub async fn ensure_matrix_error(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    let kind = match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => ::ruma::api::error::ErrorKind::Unrecognized,
        StatusCode::PAYLOAD_TOO_LARGE => ::ruma::api::error::ErrorKind::TooLarge,
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ::ruma::api::error::ErrorKind::InvalidParam
        }
        _ => ::ruma::api::error::ErrorKind::Unknown,
    };
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    Error::matrix(status, kind, text).into_response()
}

/// Records the client address for rate limits and device "last seen": the peer address, or on
/// a listener behind proxies the `X-Forwarded-For` entry its trusted proxy added (see
/// `ForwardedFor::client`).
pub async fn client_ip_layer(forwarded: Option<Arc<ForwardedFor>>, mut req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let from_header = match (&forwarded, peer) {
        (Some(f), Some(peer)) => {
            let lines = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
            let client = f.client(peer, lines);
            if client.is_none() && req.headers().contains_key("x-forwarded-for") {
                tracing::debug!(%peer, "X-Forwarded-For ignored: the connection is not from a trusted proxy (listeners.trusted_proxies)");
            }
            client
        }
        _ => None,
    };
    req.extensions_mut().insert(ruma::ClientIp(from_header.or(peer)));
    next.run(req).await
}
