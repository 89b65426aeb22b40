//! Federation discovery: who we are, how to reach us, and our signing keys.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use ruma::{
    ServerName,
    api::federation::discovery::{discover_homeserver, get_server_keys, get_server_version},
    serde::Raw,
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// How long other servers may cache our key document.
const KEY_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

/// GET /_matrix/key/v2/server
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixkeyv2server>
pub async fn get_server_keys(
    State(s): State<AppState>,
    _: Ruma<get_server_keys::v2::Request>,
) -> Result<RumaResponse<get_server_keys::v2::Response>> {
    let valid_until =
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + KEY_VALIDITY).as_millis() as u64;
    let doc = s.keys.key_document(valid_until)?;
    let raw = Raw::new(&doc).map_err(Error::internal)?.cast_unchecked();
    Ok(RumaResponse(get_server_keys::v2::Response::new(raw)))
}

/// GET /_matrix/federation/v1/version
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1version>
pub async fn get_server_version(
    _: Ruma<get_server_version::v1::Request>,
) -> RumaResponse<get_server_version::v1::Response> {
    let mut server = get_server_version::v1::Server::new();
    server.name = Some("Hearth".to_owned());
    server.version = Some(env!("CARGO_PKG_VERSION").to_owned());
    let mut resp = get_server_version::v1::Response::new();
    resp.server = Some(server);
    RumaResponse(resp)
}

/// GET /.well-known/matrix/server: delegates federation to the host and port of
/// `public_baseurl`, so the server name can differ from the machine that serves it.
/// <https://spec.matrix.org/v1.19/server-server-api/#getwell-knownmatrixserver>
pub async fn discover_homeserver(
    State(s): State<AppState>,
    _: Ruma<discover_homeserver::Request>,
) -> Result<RumaResponse<discover_homeserver::Response>> {
    let base: http::Uri = s.config.public_baseurl().parse().map_err(Error::internal)?;
    let host = base.host().unwrap_or("localhost");
    let port = base.port_u16().unwrap_or(if base.scheme_str() == Some("https") { 443 } else { 80 });
    let name = ServerName::parse(format!("{host}:{port}")).map_err(Error::internal)?;
    Ok(RumaResponse(discover_homeserver::Response::new(name)))
}
