//! /_hearth/admin/v1/turn: the Reach page's TURN server for calls. GET says what Hearth gives
//! apps now; POST writes the coturn configuration for a host and, with `apply`, makes Hearth
//! hand out credentials for it (stored as a setting; the server restarts to use it).

use axum::{Json as AxumJson, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    error::{Error, Result},
    http::json::Json,
    service::{
        AppState,
        turn::{self, TurnParams},
    },
};

/// GET: the TURN URIs apps get (empty: none), and whether credentials can be made for them.
pub async fn get_turn(State(s): State<AppState>) -> Result<AxumJson<Value>> {
    let c = &s.config;
    let credentials = c.turn_shared_secret.is_some() || (c.turn_username.is_some() && c.turn_password.is_some());
    Ok(AxumJson(json!({ "uris": c.turn_uris, "credentials": credentials })))
}

#[derive(Deserialize)]
pub struct Body {
    /// Where apps reach the TURN server: a host name or public IP address.
    host: String,
    port: Option<u16>,
    min_port: Option<u16>,
    max_port: Option<u16>,
    /// Behind a router: the public address and this machine's home address, both or neither.
    external_ip: Option<std::net::IpAddr>,
    private_ip: Option<std::net::IpAddr>,
    /// Use it: Hearth gives apps credentials for this server from now on.
    #[serde(default)]
    apply: bool,
}

/// POST: the configuration, its steps and URIs (and `restart: true` when applied).
pub async fn post_turn(State(s): State<AppState>, Json(body): Json<Body>) -> Result<AxumJson<Value>> {
    let host = body.host.trim().trim_end_matches('.').to_ascii_lowercase();
    // The secret in the config file wins; otherwise one kept with the server's other secrets.
    let secret = match &s.config.turn_shared_secret {
        Some(secret) => secret.clone(),
        None => s.turn_secret().await?,
    };
    let mut p = TurnParams::standard(s.config.server_name.as_str(), &host, &secret);
    p.port = body.port.unwrap_or(p.port);
    p.min_port = body.min_port.unwrap_or(p.min_port);
    p.max_port = body.max_port.unwrap_or(p.max_port);
    p.external_ip = match (body.external_ip, body.private_ip) {
        (Some(public), Some(private)) => Some((public, private)),
        (None, None) => None,
        _ => return Err(Error::invalid_param("Give both external_ip and private_ip, or neither")),
    };
    p.check().map_err(Error::invalid_param)?;
    let config = turn::coturn(&p);
    let mut out = serde_json::to_value(&config).map_err(Error::internal)?;
    if body.apply {
        crate::service::setup::store(&s.db, "turn_uris", &json!(config.uris)).await?;
        tracing::info!(uris = ?config.uris, "TURN server set in the dashboard; restarting to apply it");
        s.restart.notify_one();
        out["restart"] = json!(true);
    }
    Ok(AxumJson(out))
}
