//! GET /_synapse/metrics (and /metrics): Prometheus's text format, with `enable_metrics`. Served
//! on the admin listener (loopback) and on `type = "metrics"` listeners, never on the public
//! listeners: the numbers say who is busy when.

use axum::{
    Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{StatusCode, header};

use crate::{
    error::{Error, Result},
    service::AppState,
};

/// Where Prometheus scrapes: Synapse's path, and the conventional one.
pub const PATHS: [&str; 2] = ["/_synapse/metrics", "/metrics"];

/// GET /_synapse/metrics
pub async fn get_metrics(State(s): State<AppState>) -> Result<Response> {
    let Some(metrics) = s.metrics.clone() else {
        return Err(Error::unrecognized(StatusCode::NOT_FOUND, "Metrics are off: set enable_metrics = true"));
    };
    let text = metrics.render(&s).await?;
    Ok(([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response())
}

/// The metrics routes, for another listener's router.
pub fn routes(router: Router<AppState>) -> Router<AppState> {
    PATHS.iter().fold(router, |r, p| r.route(p, get(get_metrics)))
}

/// A `type = "metrics"` listener: the metrics and nothing else.
pub fn router(state: AppState) -> Router {
    let router = routes(Router::new())
        .fallback(|| async {
            Error::unrecognized(StatusCode::NOT_FOUND, "This listener serves only /_synapse/metrics")
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::http::count_request));
    crate::http::observe(router).with_state(state)
}
