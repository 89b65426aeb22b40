//! Server discovery: where other homeservers connect to reach a server name, following the
//! Server-Server API's "Resolving server names" (spec v1.19, server-server-api.md): IP literals
//! and explicit ports as given, else `/.well-known/matrix/server` delegation, else SRV records
//! (`_matrix-fed._tcp`, then the deprecated `_matrix._tcp`), else port 8448. The setup wizard's
//! check uses it on our own name today; the federation client will use it for every destination.
//!
//! DNS goes through hickory (SRV records need it): the system's resolver configuration, or
//! `dns_servers` from the config. TLS trusts the OS roots plus `federation_custom_ca_list`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use hickory_resolver::{
    TokioResolver,
    config::{NameServerConfig, ResolverConfig},
    net::runtime::TokioRuntimeProvider,
    proto::rr::RData,
};
use serde_json::Value;

use super::outbound::IpPolicy;
use crate::config::Config;

/// The default federation port.
pub const DEFAULT_PORT: u16 = 8448;
/// How long one discovery request (well-known, key fetch) may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where to connect for a server name, and what to present there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The host (name or IP literal) to resolve and connect to.
    pub connect_host: String,
    pub port: u16,
    /// The name the TLS certificate must be valid for (and SNI).
    pub tls_name: String,
    /// The Host header to send.
    pub host_header: String,
    /// How it was found, in plain words, for the check's report.
    pub via: String,
}

/// DNS and HTTPS for discovery. Cheap to clone.
#[derive(Clone)]
pub struct Discovery {
    /// Built on first use: the resolver's caches and the system configuration are not worth
    /// holding in a server that never looks another server up (most of the time, today).
    dns: Arc<std::sync::OnceLock<TokioResolver>>,
    dns_servers: Arc<Vec<std::net::SocketAddr>>,
    /// For `.well-known` and key requests: the OS roots plus the configured extra CAs, and
    /// names resolved through `dns` when `dns_servers` is set.
    roots: Arc<Vec<reqwest::Certificate>>,
    custom_dns: bool,
    /// `federation_verify_certificates`: off only for test setups.
    verify_certificates: bool,
}

/// A resolver with the configured servers, or the system's configuration.
fn resolver(dns_servers: &[std::net::SocketAddr]) -> TokioResolver {
    let empty = || {
        TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), Vec::new()),
            TokioRuntimeProvider::default(),
        )
        .build()
        .expect("a resolver without servers builds")
    };
    if dns_servers.is_empty() {
        return match TokioResolver::builder_tokio().and_then(|b| b.build()) {
            Ok(r) => r,
            Err(e) => {
                // No usable system configuration: lookups then fail and say so.
                tracing::warn!(error = %e, "cannot read the system's DNS configuration; set dns_servers");
                empty()
            }
        };
    }
    let servers = dns_servers
        .iter()
        .map(|addr| {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            ns
        })
        .collect();
    let conf = ResolverConfig::from_parts(None, Vec::new(), servers);
    TokioResolver::builder_with_config(conf, TokioRuntimeProvider::default()).build().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot use dns_servers");
        empty()
    })
}

impl Discovery {
    pub fn new(config: &Config) -> anyhow::Result<Discovery> {
        let dns_servers = config.dns_server_addrs().map_err(|e| anyhow::anyhow!("dns_servers: {e}"))?;
        let mut roots = Vec::new();
        for path in &config.federation_custom_ca_list {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("federation_custom_ca_list: cannot read {}: {e}", path.display()))?;
            roots.extend(reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                anyhow::anyhow!("federation_custom_ca_list: {} holds no PEM certificate: {e}", path.display())
            })?);
        }
        Ok(Discovery {
            dns: Arc::new(std::sync::OnceLock::new()),
            custom_dns: !dns_servers.is_empty(),
            dns_servers: Arc::new(dns_servers),
            roots: Arc::new(roots),
            verify_certificates: config.federation_verify_certificates,
        })
    }

    fn dns(&self) -> &TokioResolver {
        self.dns.get_or_init(|| resolver(&self.dns_servers))
    }

    /// An HTTPS client that trusts the extra CAs and resolves through our DNS when it is
    /// configured. `pin` sends one name to given addresses (the destination's).
    pub fn http(&self, pin: Option<(&str, &[SocketAddr])>) -> reqwest::Client {
        // HTTP/1.1, as other homeservers speak federation: the Host header the spec asks for is
        // then the one sent (HTTP/2 would put the URL's host and port in :authority).
        let mut b =
            reqwest::Client::builder().timeout(TIMEOUT).http1_only().tls_certs_merge(self.roots.iter().cloned());
        if self.custom_dns {
            b = b.dns_resolver(Arc::new(HickoryForReqwest(self.dns().clone())));
        }
        if let Some((name, addrs)) = pin {
            b = b.resolve_to_addrs(name, addrs);
        }
        b.build().expect("the HTTP client builds")
    }

    /// An HTTPS client for discovery on behalf of federation: every name resolves only to the
    /// addresses `policy` allows, and redirects are followed (up to 5) only to such addresses.
    fn checked_http(&self, policy: Arc<IpPolicy>) -> reqwest::Client {
        let for_redirects = policy.clone();
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .http1_only()
            .no_proxy()
            .tls_certs_merge(self.roots.iter().cloned())
            .danger_accept_invalid_certs(!self.verify_certificates)
            .dns_resolver(Arc::new(CheckedHickory { dns: self.dns().clone(), policy }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    return attempt.error("too many redirects");
                }
                match for_redirects.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(e) => attempt.error(e.to_string()),
                }
            }))
            .build()
            .expect("the HTTP client builds")
    }

    /// The pooled client for one federation destination: `host` always goes to `addrs` (already
    /// checked against the outbound policy), TLS is checked for `host`.
    pub fn federation_http(&self, host: &str, addrs: &[SocketAddr], timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .http1_only()
            .no_proxy()
            .user_agent(concat!("Hearth/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_merge(self.roots.iter().cloned())
            .danger_accept_invalid_certs(!self.verify_certificates)
            .resolve_to_addrs(host.trim_start_matches('[').trim_end_matches(']'), addrs)
            .build()
            .expect("the HTTP client builds")
    }

    /// Resolves `server_name` (`host` or `host:port`) the way the spec says.
    pub async fn resolve(&self, server_name: &str) -> Result<Destination, String> {
        self.resolve_under(server_name, None).await
    }

    /// As `resolve`, for federation: the `.well-known` request only goes to addresses `policy`
    /// allows (a server name is whatever a remote user ID says, so it must not make this server
    /// fetch from the home network).
    pub async fn resolve_under(
        &self,
        server_name: &str,
        policy: Option<&Arc<IpPolicy>>,
    ) -> Result<Destination, String> {
        let (host, port) =
            split_host_port(server_name).ok_or_else(|| format!("`{server_name}` is not a server name"))?;
        // 1. An IP literal: connect to it directly.
        if let Some(ip) = ip_literal(&host) {
            let port = port.unwrap_or(DEFAULT_PORT);
            return Ok(Destination {
                connect_host: ip.to_string(),
                port,
                tls_name: ip.to_string(),
                host_header: server_name.to_owned(),
                via: format!("{server_name} is an IP address"),
            });
        }
        // 2. An explicit port: that host and port, no delegation.
        if let Some(port) = port {
            return Ok(Destination {
                connect_host: host.clone(),
                port,
                tls_name: host.clone(),
                host_header: server_name.to_owned(),
                via: format!("{server_name} names its port"),
            });
        }
        // 3. Delegation through /.well-known/matrix/server.
        if let Some(delegated) = self.well_known(&host, policy).await {
            let Some((d_host, d_port)) = split_host_port(&delegated) else {
                return Err(format!(
                    "https://{host}/.well-known/matrix/server delegates to `{delegated}`, which is not a host name"
                ));
            };
            let via = format!("https://{host}/.well-known/matrix/server delegates to {delegated}");
            if let Some(ip) = ip_literal(&d_host) {
                let port = d_port.unwrap_or(DEFAULT_PORT);
                return Ok(Destination {
                    connect_host: ip.to_string(),
                    port,
                    tls_name: ip.to_string(),
                    host_header: delegated.clone(),
                    via,
                });
            }
            if let Some(port) = d_port {
                return Ok(Destination {
                    connect_host: d_host.clone(),
                    port,
                    tls_name: d_host,
                    host_header: delegated.clone(),
                    via,
                });
            }
            if let Some((target, port, record)) = self.srv(&d_host).await {
                return Ok(Destination {
                    connect_host: target,
                    port,
                    tls_name: d_host.clone(),
                    host_header: d_host,
                    via: format!("{via}, and {record}"),
                });
            }
            return Ok(Destination {
                connect_host: d_host.clone(),
                port: DEFAULT_PORT,
                tls_name: d_host.clone(),
                host_header: d_host,
                via: format!("{via} (no SRV record: port {DEFAULT_PORT})"),
            });
        }
        // 4. and 5. SRV records for the server name itself.
        if let Some((target, port, record)) = self.srv(&host).await {
            return Ok(Destination {
                connect_host: target,
                port,
                tls_name: host.clone(),
                host_header: host,
                via: record,
            });
        }
        // 6. The server name on port 8448.
        Ok(Destination {
            connect_host: host.clone(),
            port: DEFAULT_PORT,
            tls_name: host.clone(),
            host_header: host.clone(),
            via: format!("no .well-known/matrix/server and no SRV record for {host}: port {DEFAULT_PORT}"),
        })
    }

    /// `m.server` from `https://host/.well-known/matrix/server`, if it answers with one
    /// (redirects followed; anything else means "no delegation").
    async fn well_known(&self, host: &str, policy: Option<&Arc<IpPolicy>>) -> Option<String> {
        let client = match policy {
            None => self.http(None),
            Some(policy) => self.checked_http(policy.clone()),
        };
        let resp = client.get(format!("https://{host}/.well-known/matrix/server")).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let v: Value = resp.json().await.ok()?;
        v["m.server"].as_str().map(str::to_owned)
    }

    /// The first usable SRV record of `_matrix-fed._tcp.host`, else `_matrix._tcp.host`:
    /// (target, port, how it was found). Lowest priority first; among equals the heaviest
    /// (the spec leaves the choice among equals to the client).
    async fn srv(&self, host: &str) -> Option<(String, u16, String)> {
        for service in ["_matrix-fed._tcp", "_matrix._tcp"] {
            let name = format!("{service}.{host}.");
            let Ok(lookup) = self.dns().srv_lookup(name.as_str()).await else { continue };
            let mut records: Vec<_> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::SRV(srv) => Some(srv.clone()),
                    _ => None,
                })
                .collect();
            records.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
            if let Some(srv) = records.into_iter().next() {
                let target = srv.target.to_utf8().trim_end_matches('.').to_owned();
                // A target of "." means the service is decidedly not available (RFC 2782).
                if target.is_empty() {
                    return None;
                }
                return Some((
                    target.clone(),
                    srv.port,
                    format!("the SRV record {service}.{host} points to {target}:{}", srv.port),
                ));
            }
        }
        None
    }

    /// The addresses of `host` (an IP literal is itself).
    pub async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Some(ip) = ip_literal(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let ips = self
            .dns()
            .lookup_ip(format!("{host}.").as_str())
            .await
            .map_err(|e| format!("{host} does not resolve: {e}"))?;
        let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        if addrs.is_empty() { Err(format!("{host} has no address")) } else { Ok(addrs) }
    }
}

/// Splits `host[:port]`, with `[v6]` brackets. None when it is not of that form.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((format!("[{ip}]"), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_ascii_lowercase(), Some(p.parse().ok()?))),
        Some(_) => None,
        None if !s.is_empty() => Some((s.to_ascii_lowercase(), None)),
        None => None,
    }
}

fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
        .filter(|_| host.starts_with('[') || !host.contains(':'))
}

/// hickory as reqwest's resolver, keeping only the addresses the outbound policy allows.
struct CheckedHickory {
    dns: TokioResolver,
    policy: Arc<IpPolicy>,
}

impl reqwest::dns::Resolve for CheckedHickory {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (dns, policy) = (self.dns.clone(), self.policy.clone());
        Box::pin(async move {
            let ips = dns.lookup_ip(format!("{}.", name.as_str()).as_str()).await?;
            let addrs: Vec<SocketAddr> =
                ips.iter().filter(|ip| policy.permits(*ip)).map(|ip| SocketAddr::new(ip, 0)).collect();
            if addrs.is_empty() {
                return Err(format!("{} resolves only to addresses that may not be contacted", name.as_str()).into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// hickory as reqwest's resolver, so the well-known and key requests use `dns_servers` too.
struct HickoryForReqwest(TokioResolver);

impl reqwest::dns::Resolve for HickoryForReqwest {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dns = self.0.clone();
        Box::pin(async move {
            let ips = dns.lookup_ip(format!("{}.", name.as_str()).as_str()).await?;
            let addrs: Vec<SocketAddr> = ips.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_split_like_server_names() {
        assert_eq!(split_host_port("example.org"), Some(("example.org".into(), None)));
        assert_eq!(split_host_port("Example.org:8449"), Some(("example.org".into(), Some(8449))));
        assert_eq!(split_host_port("1.2.3.4:80"), Some(("1.2.3.4".into(), Some(80))));
        assert_eq!(split_host_port("[::1]"), Some(("[::1]".into(), None)));
        assert_eq!(split_host_port("[::1]:8448"), Some(("[::1]".into(), Some(8448))));
        assert_eq!(split_host_port("example.org:port"), None);
        assert_eq!(split_host_port(":80"), None);
        assert_eq!(ip_literal("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(ip_literal("10.0.0.1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(ip_literal("example.org"), None);
    }
}
