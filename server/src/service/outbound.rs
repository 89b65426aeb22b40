//! The one way out. Every request Hearth sends to an address chosen by a user or a remote
//! server (URL previews, push gateways, and federation later) goes through an [`Outbound`]
//! client, so the server cannot be used to reach into the network it sits in (server-side
//! request forgery).
//!
//! The policy is Synapse's: `ip_range_blacklist` (private, loopback, link-local, CGNAT,
//! multicast, documentation and IPv6 transition ranges by default), opened again by
//! `ip_range_whitelist`. It is checked on the addresses a name resolves to, in the resolver
//! reqwest connects through, so a name that resolves to 127.0.0.1 and every redirect meet the
//! same check; IP literals, which skip the resolver, are checked before each request and on
//! every redirect. Proxy variables from the environment are ignored: a proxy would resolve the
//! name itself, out of the policy's sight.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, OnceLock},
    time::Duration,
};

use ipnet::IpNet;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};

use crate::config::{Config, parse_ranges};

/// Synapse's default `ip_range_blacklist`, plus the special ranges it leaves out: "this
/// network", the reserved 240/4 (broadcast included), IPv6 discard, local-use NAT64 and Teredo.
/// IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 addresses are judged by the IPv4
/// address inside them.
pub const DEFAULT_DENIED_RANGES: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "169.254.0.0/16",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "0.0.0.0/8",
    "240.0.0.0/4",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
    "100::/64",
    "64:ff9b:1::/48",
    "2001::/32",
    "2001:2::/48",
];

/// Which addresses may be contacted.
#[derive(Debug, Clone)]
pub struct IpPolicy {
    deny: Vec<IpNet>,
    /// Opens ranges of `deny` again (the admin's own services, a test's loopback peers).
    allow: Vec<IpNet>,
}

impl Default for IpPolicy {
    fn default() -> Self {
        let deny = DEFAULT_DENIED_RANGES.iter().map(|r| r.parse().expect("a valid built-in range")).collect();
        Self { deny, allow: Vec::new() }
    }
}

impl IpPolicy {
    /// The policy of `ip_range_blacklist` (its default when unset) and `ip_range_whitelist`.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let deny = match &config.ip_range_blacklist {
            Some(list) => parse_ranges(list).map_err(|e| format!("ip_range_blacklist: {e}"))?,
            None => Self::default().deny,
        };
        let allow = parse_ranges(&config.ip_range_whitelist).map_err(|e| format!("ip_range_whitelist: {e}"))?;
        Ok(Self { deny, allow })
    }

    /// The same policy with `extra` ranges opened as well.
    pub fn allowing(&self, extra: &[IpNet]) -> Self {
        let mut p = self.clone();
        p.allow.extend_from_slice(extra);
        p
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        // 0.0.0.0 and :: mean "this host" to connect(); never a remote server.
        if ip.is_unspecified() {
            return false;
        }
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return true;
        }
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        match ip {
            IpAddr::V6(v6) => embedded_v4(v6).is_none_or(|v4| self.permits(IpAddr::V4(v4))),
            IpAddr::V4(_) => true,
        }
    }

    /// Checks what can be checked before connecting: the scheme, and an IP-literal host.
    pub fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Invalid(format!("only http and https URLs can be used, not {}", url.scheme())));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(OutboundError::Invalid("the URL has no host".to_owned())),
        };
        if let Some(ip) = ip
            && !self.permits(ip)
        {
            return Err(OutboundError::Blocked(format!("{ip} may not be contacted")));
        }
        Ok(())
    }
}

/// The IPv4 address inside an IPv6 transition address: IPv4-mapped (::ffff:a.b.c.d),
/// IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0]) {
        return Some(v4(s[6], s[7]));
    }
    (s[0] == 0x2002).then(|| v4(s[1], s[2]))
}

/// Why an outbound request was not made or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("{0}")]
    Invalid(String),
    /// Refused by the address policy (before connecting, or on a redirect).
    #[error("{0}")]
    Blocked(String),
    #[error("{0}")]
    Failed(String),
}

/// A refusal by the resolver or the redirect policy, carried through reqwest's error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Blocked(String);

/// reqwest resolves every host name through this, for the first request and each redirect.
struct CheckedResolver(Arc<IpPolicy>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| policy.permits(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Blocked(format!(
                    "{} resolves only to addresses that may not be contacted",
                    name.as_str()
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// How a client treats redirects.
#[derive(Debug, Clone, Copy)]
pub enum Redirects {
    /// Answered as they come (a push gateway has no business redirecting a notification).
    Refuse,
    /// Followed up to this many times, each target checked like the first URL.
    Follow(usize),
}

/// An HTTP client for one purpose, under the outbound policy.
pub struct Outbound {
    policy: Arc<IpPolicy>,
    purpose: &'static str,
    timeout: Duration,
    redirects: Redirects,
    /// Built on first use: loading the TLS roots costs memory that a server which never
    /// previews a link or pushes to a phone does not need.
    client: OnceLock<reqwest::Client>,
    /// CA certificates trusted besides the system's (a test CA).
    extra_roots: Vec<reqwest::Certificate>,
}

impl Outbound {
    pub fn new(policy: IpPolicy, purpose: &'static str, timeout: Duration, redirects: Redirects) -> Self {
        Self { policy: Arc::new(policy), purpose, timeout, redirects, client: OnceLock::new(), extra_roots: Vec::new() }
    }

    /// Also trusts these CA certificates for HTTPS.
    pub fn trusting(mut self, roots: Vec<reqwest::Certificate>) -> Self {
        self.extra_roots = roots;
        self
    }

    fn client(&self) -> Result<&reqwest::Client, OutboundError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let mut builder = reqwest::Client::builder();
        for root in &self.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let built = guard(&self.policy, builder, self.redirects)
            .timeout(self.timeout)
            .connect_timeout(Duration::from_secs(5).min(self.timeout))
            .user_agent(format!("Hearth/{} ({})", env!("CARGO_PKG_VERSION"), self.purpose))
            .build()
            .map_err(|e| OutboundError::Failed(format!("cannot build the HTTP client: {e}")))?;
        Ok(self.client.get_or_init(|| built))
    }

    /// Sends `request` built with [`Outbound::request`], after checking its URL.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, OutboundError> {
        let request = request.build().map_err(|e| OutboundError::Invalid(e.without_url().to_string()))?;
        self.policy.check_url(request.url())?;
        self.client()?.execute(request).await.map_err(classify)
    }

    /// A request to `url` on this client, to be sent with [`Outbound::send`].
    pub fn request(&self, method: reqwest::Method, url: Url) -> Result<reqwest::RequestBuilder, OutboundError> {
        Ok(self.client()?.request(method, url))
    }
}

/// Puts a client under `policy`: every name resolved through the policy's check, no proxy
/// from the environment, redirects refused or each hop checked. Clients built by other crates
/// (the desktop app's updater) go through this too.
pub fn guard(policy: &Arc<IpPolicy>, builder: reqwest::ClientBuilder, redirects: Redirects) -> reqwest::ClientBuilder {
    let checked = policy.clone();
    let redirect = match redirects {
        Redirects::Refuse => redirect::Policy::none(),
        Redirects::Follow(max) => redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max {
                return attempt.error(Blocked("too many redirects".to_owned()));
            }
            match checked.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(Blocked(e.to_string())),
            }
        }),
    };
    builder.dns_resolver(Arc::new(CheckedResolver(policy.clone()))).no_proxy().redirect(redirect)
}

/// A refusal by the resolver or the redirect policy stays a refusal; anything else is a failure.
pub fn classify(e: reqwest::Error) -> OutboundError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    let mut root = None;
    while let Some(s) = src {
        if let Some(b) = s.downcast_ref::<Blocked>() {
            return OutboundError::Blocked(b.0.clone());
        }
        root = Some(s.to_string());
        src = s.source();
    }
    if e.is_timeout() {
        return OutboundError::Failed("timed out".to_owned());
    }
    // reqwest says only "error sending request"; the cause at the bottom of the chain says
    // why (a refused connection, a certificate for another name...), which people need.
    let mut text = e.without_url().to_string();
    if let Some(cause) = root.filter(|c| !text.contains(c.as_str())) {
        text = format!("{text}: {cause}");
    }
    OutboundError::Failed(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(p: &IpPolicy, ip: &str) -> bool {
        !p.permits(ip.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        let p = IpPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.0.8",
            "192.88.99.1",
            "198.18.0.1",
            "192.0.2.1",
            "203.0.113.5",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(denied(&p, ip), "{ip} must be refused");
        }
        for ip in
            ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::"]
        {
            assert!(!denied(&p, ip), "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_only_its_ranges_in_every_spelling() {
        let p = IpPolicy::default().allowing(&["10.0.0.0/24".parse().unwrap()]);
        assert!(!denied(&p, "10.0.0.5"));
        assert!(!denied(&p, "::ffff:10.0.0.5"), "the mapped form of an allowed address");
        assert!(denied(&p, "10.0.1.5"));
        assert!(denied(&p, "127.0.0.1"));
        assert!(denied(&IpPolicy::default().allowing(&["0.0.0.0/0".parse().unwrap()]), "0.0.0.0"), "never 0.0.0.0");
    }

    #[test]
    fn ip_literals_and_other_schemes_are_refused_before_connecting() {
        let p = IpPolicy::default();
        for url in [
            "http://127.0.0.1:8008/",
            "http://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "https://169.254.169.254/x",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(matches!(p.check_url(&url), Err(OutboundError::Blocked(_))), "{url}");
        }
        assert!(matches!(p.check_url(&Url::parse("file:///etc/passwd").unwrap()), Err(OutboundError::Invalid(_))));
        assert!(p.check_url(&Url::parse("https://example.org/").unwrap()).is_ok());
    }
}
