//! The plain-HTTP listener of `[acme]` (port 80 as the CA sees it): it answers the CA's HTTP-01
//! challenges (RFC 8555, 8.3) and sends every other request to HTTPS, so people who type the
//! address without `https://` still arrive.

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

use crate::service::acme::Acme;

pub fn router(acme: Arc<Acme>) -> Router {
    Router::new().route("/.well-known/acme-challenge/{token}", get(challenge)).fallback(to_https).with_state(acme)
}

async fn challenge(State(acme): State<Arc<Acme>>, Path(token): Path<String>) -> Response {
    match acme.http01_answer(&token) {
        Some(answer) => ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response(),
        None => (StatusCode::NOT_FOUND, "No such challenge").into_response(),
    }
}

/// The same address over HTTPS (on the default port: the host's own port is the plain one).
async fn to_https(headers: HeaderMap, uri: Uri) -> Response {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return (StatusCode::BAD_REQUEST, "This address serves HTTPS only").into_response();
    };
    let host = without_port(host);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Redirect::permanent(&format!("https://{host}{path}")).into_response()
}

/// `host[:port]` without the port (IPv6 literals keep their brackets).
fn without_port(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_port_goes() {
        assert_eq!(super::without_port("example.org:80"), "example.org");
        assert_eq!(super::without_port("example.org"), "example.org");
        assert_eq!(super::without_port("[::1]:8080"), "[::1]");
    }
}
