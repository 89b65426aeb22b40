//! POST /_hearth/admin/v1/reverse-proxy: the configuration file for the wizard's "my own domain
//! through a reverse proxy" choice.

use axum::{Json as AxumJson, extract::State};
use serde::Deserialize;

use crate::{
    error::{Error, Result},
    http::json::Json,
    service::{
        AppState,
        reverse_proxy::{self, ProxyConfig, ProxyKind, ProxyParams, Tls},
    },
};

#[derive(Deserialize)]
pub struct Body {
    kind: ProxyKind,
    /// The host name people's apps connect to, e.g. matrix.example.org.
    public_host: String,
    /// Ports when not the standard 443 and 8448 (a router forwarding other ports, say).
    https_port: Option<u16>,
    federation_port: Option<u16>,
    /// Certificate files when not Let's Encrypt's (nginx, Apache: certificate and key; HAProxy:
    /// one file holding both). Used for both sites when the server name is another domain.
    certificate: Option<String>,
    certificate_key: Option<String>,
    /// Caddy only: "internal" for Caddy's own local certificate authority (a private network
    /// whose devices trust it), instead of public certificates.
    caddy_tls: Option<String>,
}

/// POST /_hearth/admin/v1/reverse-proxy
pub async fn generate(State(s): State<AppState>, Json(body): Json<Body>) -> Result<AxumJson<ProxyConfig>> {
    let host = body.public_host.trim().trim_end_matches('.').to_ascii_lowercase();
    if !reverse_proxy::valid_host(&host) {
        return Err(Error::invalid_param(format!(
            "`{}` is not a host name: give a name like matrix.example.org, without https:// or a path",
            body.public_host
        )));
    }
    let server_name = s.config.server_name.host().to_owned();
    let addr = *s.local_addrs.first().ok_or_else(|| Error::internal("no listener"))?;
    // The proxy runs on this machine: reach Hearth by loopback when it listens on all addresses.
    let upstream = if addr.ip().is_unspecified() { format!("127.0.0.1:{}", addr.port()) } else { addr.to_string() };
    let mut params = ProxyParams::standard(body.kind, &server_name, &host, &upstream, s.config.max_upload_size.0);
    params.https_port = body.https_port.unwrap_or(params.https_port);
    params.federation_port = body.federation_port.unwrap_or(params.federation_port);
    if params.https_port == params.federation_port {
        return Err(Error::invalid_param("https_port and federation_port must differ"));
    }
    if body.kind == ProxyKind::Relayd && body.certificate.is_some() {
        return Err(Error::invalid_param(
            "relayd finds certificates by host name (/etc/ssl/<name>.crt): leave certificate out",
        ));
    }
    for path in [&body.certificate, &body.certificate_key].into_iter().flatten() {
        if !path.starts_with('/') || path.chars().any(|c| c.is_control() || c.is_whitespace() || "\"';{}#".contains(c))
        {
            return Err(Error::invalid_param(format!(
                "`{path}` must be an absolute file path without spaces or quotes"
            )));
        }
    }
    if let (Tls::Files { cert, key, server_name_cert, server_name_key }, Some(c)) = (&mut params.tls, &body.certificate)
    {
        *cert = c.clone();
        *server_name_cert = c.clone();
        if let Some(k) = &body.certificate_key {
            *key = k.clone();
            *server_name_key = k.clone();
        }
    }
    match body.caddy_tls.as_deref() {
        None | Some("automatic") => {}
        Some("internal") if body.kind == ProxyKind::Caddy => params.tls = Tls::CaddyInternal,
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "caddy_tls: `{other}` is not \"automatic\" or \"internal\" (Caddy only)"
            )));
        }
    }
    Ok(AxumJson(reverse_proxy::generate(body.kind, &params)))
}
