//! The setup wizard's calls: GET /_hearth/admin/v1/setup says where the wizard stands, and
//! POST /_hearth/admin/v1/setup/{step} does a step. Every step can be done again (to change
//! an answer), except that the server name is permanent once accounts exist. Steps whose answer
//! changes the server's configuration ask for a restart (same addresses, same admin link).

use axum::{
    Json as AxumJson,
    extract::{Path, State},
};
use ruma::ServerName;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    config::BuiltInHttps,
    error::{Error, Result},
    http::json::Json,
    service::{AppState, now_ms, reverse_proxy, setup},
};

/// GET /_hearth/admin/v1/setup
pub async fn get_setup(State(s): State<AppState>) -> Result<AxumJson<Value>> {
    let settings = setup::settings(&s.db).await?;
    let users = s.accounts.count_active_users().await?;
    let local = s.local_addrs.first().map(|a| format!("http://{a}/")).unwrap_or_default();
    Ok(AxumJson(json!({
        "steps": setup::STEPS,
        "done": setup::done(&settings),
        "current": setup::current(&settings),
        "complete": setup::done(&settings).contains(&"done"),
        "server_name": s.config.server_name,
        "public_baseurl": s.config.public_baseurl(),
        "registration": s.config.registration_policy(),
        "reach": settings.get("reach"),
        "local_url": local,
        "lan_address": setup::lan_address(),
        "listens_on_network": s.local_addrs.iter().any(|a| !a.ip().is_loopback()),
        "users": users,
        "server_name_permanent": users > 0,
        "checks": settings.get("setup_checks"),
        "https": settings.get("https").filter(|v| !v.is_null()),
        "acme_directories": crate::service::acme::directories(&s.config.acme.url),
        "address_qr_svg": crate::service::invites::qr_svg(&s.config.public_baseurl()),
    })))
}

#[derive(Deserialize, Default)]
pub struct StepBody {
    // reach
    mode: Option<String>,
    public_url: Option<String>,
    public_host: Option<String>,
    /// Built-in HTTPS (mode "https"): the ports on this computer and the CA's directory.
    https_port: Option<u16>,
    http_port: Option<u16>,
    acme_url: Option<String>,
    // server_name
    server_name: Option<String>,
    #[serde(default)]
    confirm: bool,
    // admin
    username: Option<String>,
    password: Option<String>,
    // registration
    policy: Option<String>,
    #[serde(default)]
    confirm_open_registration: bool,
}

/// POST /_hearth/admin/v1/setup/{step}
pub async fn post_step(
    State(s): State<AppState>,
    Path(step): Path<String>,
    Json(body): Json<StepBody>,
) -> Result<AxumJson<Value>> {
    let step: &'static str =
        setup::STEPS.iter().copied().find(|x| *x == step).ok_or_else(|| {
            Error::invalid_param(format!("`{step}` is not a setup step ({})", setup::STEPS.join(", ")))
        })?;
    let mut restart = false;
    let mut extra = json!({});
    match step {
        "welcome" | "done" => {}
        "reach" => {
            let url = reach_url(&s, &body, &mut extra)?;
            let mode = body.mode.clone().unwrap_or_default();
            setup::store(&s.db, "reach", &json!({ "mode": mode, "public_baseurl": url })).await?;
            restart = set_if_changed(&s, "public_baseurl", &url, &s.config.public_baseurl()).await?;
            // Only the home network needs Hearth on the network; tunnels and proxies connect
            // over loopback, which is safer.
            let network = mode == "lan";
            setup::store(&s.db, "listen_on_network", &json!(network)).await?;
            restart |= network != s.config.listen_on_network;
            // A tunnel or web server on this computer passes on each person's address.
            let proxied = matches!(mode.as_str(), "tunnel" | "proxy");
            setup::store(&s.db, "behind_proxy", &json!(proxied)).await?;
            restart |= proxied != s.config.behind_proxy;
            let https = if mode == "https" { Some(built_in_https(&s, &body)?) } else { None };
            let before = setup::settings(&s.db).await?.remove("https").filter(|v| !v.is_null());
            let after = https.as_ref().map(|h| json!(h));
            if after != before {
                setup::store(&s.db, "https", &after.clone().unwrap_or(Value::Null)).await?;
                restart = true;
            }
            if let Some(h) = after {
                extra["https"] = h;
            }
        }
        "server_name" => {
            let name = body.server_name.as_deref().map(str::trim).unwrap_or_default().to_ascii_lowercase();
            let parsed = ServerName::parse(&name).map_err(|e| {
                Error::invalid_param(format!("`{name}` is not a server name ({e}): use a domain like example.org"))
            })?;
            if !body.confirm {
                return Err(Error::invalid_param(
                    "The server name can never change once people have accounts: confirm it (confirm: true)",
                ));
            }
            if parsed != s.config.server_name && s.accounts.count_active_users().await? > 0 {
                return Err(Error::forbidden(format!(
                    "The server name is permanent: accounts already exist as @name:{}",
                    s.config.server_name
                )));
            }
            restart = set_if_changed(&s, "server_name", parsed.as_str(), s.config.server_name.as_str()).await?;
        }
        "admin" => {
            let (Some(username), Some(password)) = (&body.username, &body.password) else {
                return Err(Error::missing_param("username and password are required"));
            };
            s.accounts.check_new_password(password)?;
            let (_, user_id) = s.accounts.validate_new_localpart(username.trim())?;
            s.accounts.create_user(&user_id, Some(password.clone()), true, false, None, None).await?;
            extra = json!({ "user_id": user_id });
        }
        "registration" => {
            let raw =
                body.policy.as_deref().ok_or_else(|| Error::invalid_param("policy must be invite, token or open"))?;
            let policy = super::settings::registration_policy("policy", raw, body.confirm_open_registration)?;
            restart =
                set_if_changed(&s, "registration", policy.as_str(), s.config.registration_policy().as_str()).await?;
        }
        "check" => {
            let settings = setup::settings(&s.db).await?;
            let mode = settings.get("reach").and_then(|r| r["mode"].as_str()).map(str::to_owned);
            let checks = setup::run_checks(
                s.config.server_name.as_str(),
                &s.config.public_baseurl(),
                mode.as_deref(),
                &s.keys.key_id,
                &s.discovery,
            )
            .await;
            let checks = json!(checks);
            setup::store(&s.db, "setup_checks", &checks).await?;
            setup::store(&s.db, "setup_checks_ms", &json!(now_ms())).await?;
            extra = json!({ "checks": checks });
        }
        _ => unreachable!("every step is handled"),
    }
    setup::mark_done(&s.db, step).await?;
    if restart {
        tracing::info!(step, "setup step changed the configuration; restarting to apply it");
        s.restart.notify_one();
    }
    let settings = setup::settings(&s.db).await?;
    let mut resp = json!({ "current": setup::current(&settings), "restart": restart });
    if let (Some(r), Some(e)) = (resp.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    Ok(AxumJson(resp))
}

/// The public address a reach mode gives, with what to tell the user about it in `extra`.
fn reach_url(s: &AppState, body: &StepBody, extra: &mut Value) -> Result<String> {
    let port = s.local_addrs.first().map(|a| a.port()).unwrap_or(8008);
    let checked = |url: String| super::settings::checked_base_url(s, &url);
    match body.mode.as_deref() {
        Some("local") => checked(format!("http://127.0.0.1:{port}/")),
        Some("lan") => {
            // Hearth then listens on all addresses (`listen_on_network`, applied by the restart).
            let ip = setup::lan_address().ok_or_else(|| {
                Error::invalid_param(
                    "This computer has no home-network address right now: connect it to your network first",
                )
            })?;
            let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
            *extra = json!({ "warning": "Phones away from home (on mobile data) will not reach this address." });
            checked(format!("http://{host}:{port}/"))
        }
        Some("tunnel") => {
            let url = body.public_url.as_deref().map(str::trim).unwrap_or_default();
            if !url.starts_with("https://") {
                return Err(Error::invalid_param("Paste the tunnel's public address, starting with https://"));
            }
            let target = format!("http://127.0.0.1:{port}");
            *extra = json!({
                "local_target": target,
                "commands": {
                    "cloudflared": format!("cloudflared tunnel --url {target}"),
                    "tailscale": format!("tailscale funnel {port}"),
                    "ngrok": format!("ngrok http {port}"),
                },
            });
            checked(url.to_owned())
        }
        Some("proxy" | "https") => checked(format!("https://{}/", public_host(body)?)),
        Some(other) => Err(Error::invalid_param(format!("mode: `{other}` is not local, lan, tunnel, proxy or https"))),
        None => Err(Error::missing_param("mode is required: local, lan, tunnel, proxy or https")),
    }
}

/// The host name apps use, as the user typed it.
fn public_host(body: &StepBody) -> Result<String> {
    let host =
        body.public_host.as_deref().map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase()).unwrap_or_default();
    if !reverse_proxy::valid_host(&host) {
        return Err(Error::invalid_param(
            "Give the host name people's apps will use, like matrix.example.org (no https://, no path)",
        ));
    }
    Ok(host)
}

/// The "Hearth handles HTTPS itself" answer, refused with the reason in plain words when this
/// computer would not let Hearth listen on its ports (checked now: after the restart it would
/// be too late to say).
fn built_in_https(s: &AppState, body: &StepBody) -> Result<BuiltInHttps> {
    let host = public_host(body)?;
    let (port, http_port) = (body.https_port.unwrap_or(443), body.http_port.unwrap_or(80));
    if port == 0 || http_port == 0 || port == http_port {
        return Err(Error::invalid_param("The HTTPS and HTTP ports must be two different ports from 1 to 65535"));
    }
    let url = body.acme_url.as_deref().map(str::trim).unwrap_or(&s.config.acme.url).to_owned();
    if url::Url::parse(&url).map(|u| u.scheme() != "https").unwrap_or(true) {
        return Err(Error::invalid_param(format!("`{url}` is not the https:// address of a certificate authority")));
    }
    // A port Hearth already listens on stays usable only for the same job (saving the answer
    // again); one of its other listeners would make the new one fail to open after the restart.
    let hearth_listens = |p: u16| s.local_addrs.iter().any(|a| a.port() == p);
    let tls_listener = |p: u16| s.config.listeners.iter().any(|l| l.tls && l.port == p);
    let challenge_listener = |p: u16| s.acme.is_some() && s.config.acme.port == p;
    for (p, public, what, same_job) in
        [(port, 443, "HTTPS", tls_listener(port)), (http_port, 80, "HTTP", challenge_listener(http_port))]
    {
        if same_job {
            continue;
        }
        if hearth_listens(p) || challenge_listener(p) {
            return Err(Error::invalid_param(format!(
                "Hearth already uses port {p} for another of its listeners: choose another port for {what} and forward port {public} to it on your router."
            )));
        }
        if let Err(e) = std::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, p)) {
            return Err(Error::invalid_param(match e.kind() {
                std::io::ErrorKind::PermissionDenied => format!(
                    "Hearth may not use port {p} on this computer: ports below 1024 need a permission that Hearth's installed package gives. Choose a port above 1024 for {what} (like {}) and forward port {public} to it on your router.",
                    if public == 443 { 8443 } else { 8080 }
                ),
                std::io::ErrorKind::AddrInUse => format!(
                    "Another program on this computer already uses port {p} (a web server?): stop it, or choose another port for {what} and forward port {public} to it on your router."
                ),
                _ => format!("Hearth cannot listen on port {p}: {e}"),
            }));
        }
    }
    Ok(BuiltInHttps { host, port, http_port, url })
}

/// Stores `key` when it differs from what the server runs with; true when a restart is needed.
async fn set_if_changed(s: &AppState, key: &str, value: &str, current: &str) -> Result<bool> {
    setup::store(&s.db, key, &json!(value)).await?;
    Ok(value != current)
}
