//! The setup wizard's state: which steps are done, and the checks of the "check" step. Each
//! step is an idempotent call to the admin API (`api::admin::setup`), so a refresh or a crash
//! mid-wizard resumes at the first step not done. Choices live in the `settings` table.

use std::{collections::BTreeMap, net::SocketAddr};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    error::Result,
    service::{acme::Acme, outbound::IpPolicy, server_discovery::Discovery, tls::Certificates},
    storage::{self, Db},
};

/// The wizard's steps, in order.
pub const STEPS: [&str; 7] = ["welcome", "reach", "server_name", "admin", "registration", "check", "done"];

const DONE_KEY: &str = "setup_done";

pub async fn settings(db: &Db) -> Result<BTreeMap<String, Value>> {
    Ok(storage::settings::all(&db.read).await?)
}

/// The steps done so far, in wizard order.
pub fn done(settings: &BTreeMap<String, Value>) -> Vec<&'static str> {
    let stored: Vec<&str> = settings
        .get(DONE_KEY)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    STEPS.iter().copied().filter(|s| stored.contains(s)).collect()
}

/// The first step not done (`done` when all are).
pub fn current(settings: &BTreeMap<String, Value>) -> &'static str {
    let done = done(settings);
    STEPS.iter().copied().find(|s| !done.contains(s)).unwrap_or("done")
}

/// Stores one setting (the dashboard's and the wizard's choices; they apply at the restart).
pub async fn store(db: &Db, key: &str, value: &Value) -> Result<()> {
    storage::settings::set(&db.write, key, value).await?;
    Ok(())
}

pub async fn mark_done(db: &Db, step: &'static str) -> Result<()> {
    let mut done = done(&settings(db).await?);
    if !done.contains(&step) {
        done.push(step);
    }
    storage::settings::set(&db.write, DONE_KEY, &json!(done)).await?;
    Ok(())
}

/// One line of the check step's report.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: String,
    /// "pass", "fail" or "skipped".
    pub result: &'static str,
    pub detail: String,
    /// What to do, in plain words, when it failed.
    pub fix: Option<String>,
}

/// A request failure with its causes ("error sending request" alone says nothing).
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        src = s.source();
    }
    if parts.is_empty() { e.to_string() } else { parts.join(": ") }
}

fn check(name: &str, result: &'static str, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check { name: name.to_owned(), result, detail: detail.into(), fix: fix.map(str::to_owned) }
}

/// Reachability as Matrix apps see it, from this machine: the public address answers the
/// client API (over HTTPS with a valid certificate when it is https), and the server name leads
/// apps to it (`.well-known/matrix/client`) when the two differ.
pub async fn run_checks(
    server_name: &str,
    public_baseurl: &str,
    mode: Option<&str>,
    key_id: &str,
    discovery: &Discovery,
) -> Vec<Check> {
    let http = discovery.http(None);
    let mut out = Vec::new();
    let versions = format!("{}_matrix/client/versions", public_baseurl);
    let name = "Matrix apps reach Hearth at its public address";
    match http.get(&versions).send().await {
        Ok(r) if r.status().is_success() => match r.json::<Value>().await {
            Ok(v) if v["versions"].is_array() => out.push(check(name, "pass", format!("{versions} answers"), None)),
            _ => out.push(check(name, "fail", format!("{versions} answers, but not as a Matrix server"), Some(
                "Another program answers at this address. Check that the reverse proxy or tunnel forwards /_matrix to Hearth's listener.",
            ))),
        },
        Ok(r) => out.push(check(name, "fail", format!("{versions} answered {}", r.status()), Some(
            "The address reaches a web server that does not forward /_matrix to Hearth: check its configuration (the Reach page writes one).",
        ))),
        Err(e) => {
            let text = describe(&e);
            let (detail, fix) = if text.contains("certificate") || text.contains("Certificate") {
                ("the HTTPS certificate is not valid for this address".to_owned(),
                 "Get a certificate for this host name (Caddy does it by itself; with nginx or Apache use certbot), or fix its name.")
            } else if text.contains("dns") || text.contains("resolve") || text.contains("lookup") {
                ("the host name does not resolve".to_owned(), "Create a DNS record (A or AAAA) for this host name pointing at this machine's public address.")
            } else {
                (format!("cannot connect: {text}"), "Check that Hearth, the reverse proxy or the tunnel is running, and that your router forwards the port.")
            };
            out.push(check(name, "fail", format!("{versions}: {detail}"), Some(fix)));
        }
    }
    let public_host =
        url::Url::parse(public_baseurl).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let name = "Apps find Hearth from the server name";
    if server_name.eq_ignore_ascii_case(&public_host) || server_name == "localhost" {
        out.push(check(name, "skipped", "the server name is the public host itself: nothing to delegate", None));
    } else if matches!(mode, Some("local" | "lan")) {
        out.push(check(
            name,
            "skipped",
            "people type the homeserver address into their app; only a public server name can point to it",
            None,
        ));
    } else {
        let url = format!("https://{server_name}/.well-known/matrix/client");
        let want = public_baseurl.trim_end_matches('/');
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {
                let v: Value = r.json().await.unwrap_or(Value::Null);
                let got = v["m.homeserver"]["base_url"].as_str().unwrap_or("").trim_end_matches('/').to_owned();
                if got == want {
                    out.push(check(name, "pass", format!("{url} points to {want}"), None));
                } else {
                    out.push(check(name, "fail", format!("{url} points to `{got}`, not {want}"), Some(
                        "The web site of your server name must forward /.well-known/matrix/ to Hearth (the Reach page's configuration does this).",
                    )));
                }
            }
            Ok(r) => out.push(check(name, "fail", format!("{url} answered {}", r.status()), Some(
                "The web site of your server name must forward /.well-known/matrix/ to Hearth (the Reach page's configuration does this).",
            ))),
            Err(e) => out.push(check(name, "fail", format!("{url}: {}", describe(&e)), Some(
                "Make the server name a domain with an HTTPS web site that forwards /.well-known/matrix/ to Hearth, or use the public host as the server name.",
            ))),
        }
    }
    out.push(federation_check(server_name, mode, key_id, discovery).await);
    out
}

/// Whether other homeservers would find this one: the server name resolved as they resolve it
/// (well-known, SRV, port 8448), then our key document fetched there over HTTPS with the
/// certificate checked for the right name: the part of federation that depends on the user's
/// DNS, certificates and web server, checked as another server would go about it.
async fn federation_check(server_name: &str, mode: Option<&str>, key_id: &str, discovery: &Discovery) -> Check {
    let name = "Other Matrix servers find Hearth (federation)";
    match mode {
        Some("local") => {
            return check(
                name,
                "skipped",
                "Hearth is reachable from this computer only, so other servers cannot reach it",
                None,
            );
        }
        Some("lan") => {
            return check(
                name,
                "skipped",
                "Hearth is reachable on the home network only, so other servers cannot reach it",
                None,
            );
        }
        _ if server_name == "localhost" => {
            return check(name, "skipped", "the server name `localhost` cannot be found by other servers", None);
        }
        _ => {}
    }
    let dest = match discovery.resolve(server_name).await {
        Ok(d) => d,
        Err(e) => {
            return check(
                name,
                "fail",
                e,
                Some(
                    "Fix https://<server name>/.well-known/matrix/server: it must hold {\"m.server\": \"host:port\"} naming where Hearth answers federation (the Reach page's configuration serves it).",
                ),
            );
        }
    };
    let at = format!("{}:{}", dest.connect_host, dest.port);
    let addrs = match discovery.addresses(&dest.connect_host, dest.port).await {
        Ok(a) => a,
        Err(e) => {
            return check(
                name,
                "fail",
                format!("{}; {e}", dest.via),
                Some("Create a DNS record (A or AAAA) for that host name pointing at this machine's public address."),
            );
        }
    };
    let url_host = match dest.tls_name.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => dest.tls_name.clone(),
    };
    let url = format!("https://{url_host}:{}/_matrix/key/v2/server", dest.port);
    let sent = discovery
        .http(Some((&dest.tls_name, &addrs)))
        .get(&url)
        .header(reqwest::header::HOST, &dest.host_header)
        .send()
        .await;
    let forward_fix = "The web server there must forward /_matrix/ to Hearth (the Reach page's configuration does this on the federation port).";
    match sent {
        Ok(r) if r.status().is_success() => {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let answered_as = v["server_name"].as_str().unwrap_or_default();
            if answered_as == server_name && v["verify_keys"].get(key_id).is_some() {
                check(
                    name,
                    "pass",
                    format!("{}: Hearth answers at {at} with a valid certificate for {}", dest.via, dest.tls_name),
                    None,
                )
            } else if !answered_as.is_empty() {
                check(
                    name,
                    "fail",
                    format!("{}: {at} answers as the Matrix server `{answered_as}`, not this one", dest.via),
                    Some(forward_fix),
                )
            } else {
                check(
                    name,
                    "fail",
                    format!("{}: {at} answers, but not as a Matrix server", dest.via),
                    Some(forward_fix),
                )
            }
        }
        Ok(r) => check(name, "fail", format!("{}: {at} answered {}", dest.via, r.status()), Some(forward_fix)),
        Err(e) => {
            let text = describe(&e);
            if text.to_ascii_lowercase().contains("certificate") {
                check(
                    name,
                    "fail",
                    format!("{}: the certificate at {at} is not valid for {}", dest.via, dest.tls_name),
                    Some(
                        "Get a certificate for that name (Caddy does it by itself; with nginx or Apache use certbot).",
                    ),
                )
            } else {
                check(
                    name,
                    "fail",
                    format!("{}: nothing answers at {at} ({text})", dest.via),
                    Some(
                        "Let the web server listen on that port and forward it on your router to this computer, or publish https://<server name>/.well-known/matrix/server naming a host:port that answers.",
                    ),
                )
            }
        }
    }
}

/// The address other devices on the home network would use: the one this machine sends from
/// (found without sending anything).
pub fn lan_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:80").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// What built-in HTTPS needs from the world, checked from here before and while the CA tries:
/// the host name resolves to a public address (or one `ip_range_whitelist` allows), port 80
/// there reaches Hearth's challenge listener (the CA checks through it), and port 443 there
/// reaches Hearth's TLS listener (apps connect through it). A router that cannot reach its
/// own public address from inside makes the port checks fail although the CA would pass:
/// the fixes say so.
pub async fn https_checks(
    host: &str,
    http_port: u16,
    tls_port: u16,
    policy: &IpPolicy,
    acme: &Acme,
    certificates: &Certificates,
    discovery: &Discovery,
) -> Vec<Check> {
    let mut out = Vec::new();
    let name = "The host name points to this server (DNS)";
    let addrs = match discovery.addresses(host, 80).await {
        Ok(a) => a,
        Err(e) => {
            out.push(check(name, "fail", e, Some(&format!(
                "Create a DNS record named {host} (type A, or AAAA for IPv6) holding your home's public address: your router's status page shows it. New records can take a few minutes to be seen."
            ))));
            out.push(check(
                "Port 80 reaches Hearth (the certificate authority checks here)",
                "skipped",
                "the host name does not resolve yet",
                None,
            ));
            out.push(check(
                "Port 443 reaches Hearth (apps connect here)",
                "skipped",
                "the host name does not resolve yet",
                None,
            ));
            return out;
        }
    };
    let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    match addrs.iter().find(|a| !policy.permits(a.ip())) {
        Some(private) => out.push(check(
            name,
            "fail",
            format!("{host} points to {}, an address on a private network that the certificate authority cannot reach", private.ip()),
            Some("The record must hold your home's public address (your router's status page shows it), not this computer's home-network address: the router passes connections on to this computer."),
        )),
        None => out.push(check(name, "pass", format!("{host} points to {}", ips.join(", ")), None)),
    }
    out.push(port_80_check(host, http_port, &addrs, acme, discovery).await);
    out.push(port_443_check(host, tls_port, &addrs, certificates).await);
    out
}

const HAIRPIN: &str = "Some routers cannot reach their own public address from inside the home: if the DNS record and the forward are right, the certificate authority (which checks from outside) may still succeed.";

async fn port_80_check(host: &str, http_port: u16, addrs: &[SocketAddr], acme: &Acme, discovery: &Discovery) -> Check {
    let name = "Port 80 reaches Hearth (the certificate authority checks here)";
    let url = format!("http://{host}/.well-known/acme-challenge/{}", acme.probe_token());
    let at80: Vec<SocketAddr> = addrs.iter().map(|a| SocketAddr::new(a.ip(), 80)).collect();
    let forward =
        format!("Forward port 80 on your router to this computer, port {http_port}, and let it through the firewall.");
    match discovery.http(Some((host, &at80))).get(&url).send().await {
        Ok(r) if r.status().is_success() => match r.text().await {
            Ok(body) if body == acme.probe_token() => {
                check(name, "pass", format!("http://{host}/ reaches Hearth"), None)
            }
            _ => check(
                name,
                "fail",
                format!("http://{host}/ reaches another web server, not Hearth"),
                Some(&format!("{forward} Stop any other web server that uses port 80 there.")),
            ),
        },
        Ok(r) => check(
            name,
            "fail",
            format!("http://{host}/ reaches another web server (it answered {})", r.status()),
            Some(&format!("{forward} Stop any other web server that uses port 80 there.")),
        ),
        Err(e) => check(
            name,
            "fail",
            format!("nothing answers at http://{host}/ ({})", describe(&e)),
            Some(&format!("{forward} {HAIRPIN}")),
        ),
    }
}

async fn port_443_check(host: &str, tls_port: u16, addrs: &[SocketAddr], certificates: &Certificates) -> Check {
    let name = "Port 443 reaches Hearth (apps connect here)";
    let forward =
        format!("Forward port 443 on your router to this computer, port {tls_port}, and let it through the firewall.");
    let ours = certificates.current();
    let mut last_error = String::new();
    for addr in addrs {
        match super::federation::tester::peer_certificates(SocketAddr::new(addr.ip(), 443), host).await {
            Ok(chain) if chain.first() == ours.key.cert.first() => {
                let which =
                    if ours.placeholder { " (with a stand-in certificate until the authority's arrives)" } else { "" };
                return check(name, "pass", format!("https://{host}/ reaches Hearth{which}"), None);
            }
            Ok(_) => {
                return check(
                    name,
                    "fail",
                    format!("https://{host}/ reaches another server, not Hearth"),
                    Some(&format!("{forward} Stop any other web server that uses port 443 there.")),
                );
            }
            Err(e) => last_error = e,
        }
    }
    check(
        name,
        "fail",
        format!("nothing answers at https://{host}/ ({last_error})"),
        Some(&format!("{forward} {HAIRPIN}")),
    )
}
