//! Federation discovery: who we are, how to reach us, and our signing keys.

use axum::extract::State;
use ruma::{
    ServerName,
    api::federation::discovery::{
        ServerSigningKeys, discover_homeserver, get_remote_server_keys, get_remote_server_keys_batch, get_server_keys,
        get_server_version,
    },
    serde::Raw,
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// GET /_matrix/key/v2/server
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixkeyv2server>
pub async fn get_server_keys(
    State(s): State<AppState>,
    _: Ruma<get_server_keys::v2::Request>,
) -> Result<RumaResponse<get_server_keys::v2::Response>> {
    let doc = s.federation.keys.own_document()?;
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
    server.version = Some(crate::VERSION.to_owned());
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

/// Our key documents, as a notary vouches for them: each countersigned by us.
fn as_raw(docs: Vec<ruma::CanonicalJsonObject>) -> Result<Vec<Raw<ServerSigningKeys>>> {
    docs.iter().map(|d| Raw::new(d).map(Raw::cast_unchecked).map_err(Error::internal)).collect()
}

/// GET /_matrix/key/v2/query/{serverName}: this server as a notary for one server's keys.
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixkeyv2queryservername>
pub async fn get_remote_server_keys(
    State(s): State<AppState>,
    req: Ruma<get_remote_server_keys::v2::Request>,
) -> Result<RumaResponse<get_remote_server_keys::v2::Response>> {
    let b = &req.body;
    let min = i64::try_from(u64::from(b.minimum_valid_until_ts.0)).ok().filter(|ts| *ts > 0);
    let docs = s.federation.keys.notarise(&b.server_name, min).await?;
    Ok(RumaResponse(get_remote_server_keys::v2::Response::new(as_raw(docs)?)))
}

/// Most servers one notary query may ask about (Synapse answers any number; a bound keeps one
/// request from making this server fetch from thousands).
const MAX_SERVERS_PER_QUERY: usize = 100;

/// POST /_matrix/key/v2/query: this server as a notary for several servers' keys.
/// <https://spec.matrix.org/v1.19/server-server-api/#post_matrixkeyv2query>
pub async fn get_remote_server_keys_batch(
    State(s): State<AppState>,
    req: Ruma<get_remote_server_keys_batch::v2::Request>,
) -> Result<RumaResponse<get_remote_server_keys_batch::v2::Response>> {
    let asked = &req.body.server_keys;
    if asked.len() > MAX_SERVERS_PER_QUERY {
        return Err(Error::invalid_param(format!("At most {MAX_SERVERS_PER_QUERY} servers per query")));
    }
    let mut docs = Vec::new();
    for (server, keys) in asked {
        let min = keys
            .values()
            .filter_map(|c| c.minimum_valid_until_ts)
            .map(|ts| i64::try_from(u64::from(ts.0)).unwrap_or(i64::MAX))
            .max();
        docs.extend(s.federation.keys.notarise(server, min).await?);
    }
    Ok(RumaResponse(get_remote_server_keys_batch::v2::Response::new(as_raw(docs)?)))
}
