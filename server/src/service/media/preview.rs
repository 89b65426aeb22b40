//! URL previews (`GET /media/preview_url`): fetching a page the way a careful crawler would and
//! reading its OpenGraph data.
//!
//! The server fetches URLs chosen by any user, so it must not become a way into the network it
//! sits in (server-side request forgery). Every address is checked *after* DNS resolution, in
//! the resolver reqwest connects through, so a redirect or a name that resolves to 127.0.0.1
//! meets the same check as the first URL; IP literals (which skip the resolver) are checked on
//! the first URL and on every redirect. Only the config's `url_preview_ip_range_whitelist`
//! opens a forbidden range.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};
use serde_json::{Map, Value};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Longest a whole fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// OpenGraph values kept at most, and their longest length in characters.
const MAX_PROPERTIES: usize = 50;
const MAX_VALUE_CHARS: usize = 1000;

/// Which addresses may be contacted.
#[derive(Debug, Clone, Default)]
pub struct IpPolicy {
    /// Ranges the admin opened on purpose (`url_preview_ip_range_whitelist`).
    pub allow: Vec<IpNet>,
}

impl IpPolicy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip)) || !is_internal(ip)
    }
}

/// Loopback, private, link-local, multicast, shared (CGNAT), documentation, benchmarking,
/// reserved and unspecified addresses, and IPv6 forms that embed such an IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address inside.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_internal_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            if s[0] == 0x2002 {
                return is_internal_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
                || s[0..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d (deprecated)
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_unspecified()
        || ip.is_documentation()
        || o[0] == 0 // "this network" 0.0.0.0/8
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64.0.0/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240 // reserved
}

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

/// A request refused by the address policy.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Blocked(pub String);

/// Checks what can be checked before connecting: the scheme, and an IP-literal host.
pub fn check_url(url: &Url, policy: &IpPolicy) -> Result<(), PreviewError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PreviewError::Invalid(format!("only http and https URLs can be previewed, not {}", url.scheme())));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(PreviewError::Invalid("the URL has no host".to_owned())),
    };
    if let Some(ip) = ip
        && !policy.permits(ip)
    {
        return Err(PreviewError::Blocked(format!("{ip} may not be contacted")));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Blocked(String),
    #[error("the page is larger than {0} bytes")]
    TooLarge(u64),
    #[error("could not fetch the page: {0}")]
    Fetch(String),
}

/// The HTTP client for previews: addresses checked after resolution, no proxy from the
/// environment (it would resolve names itself), redirects checked and bounded.
pub fn client(policy: Arc<IpPolicy>) -> reqwest::Client {
    let for_redirects = policy.clone();
    reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver(policy)))
        .no_proxy()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("Hearth/", env!("CARGO_PKG_VERSION"), " (URL preview)"))
        .redirect(redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(Blocked("too many redirects".to_owned()));
            }
            match check_url(attempt.url(), &for_redirects) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(Blocked(e.to_string())),
            }
        }))
        .build()
        .expect("the preview HTTP client builds")
}

/// A fetched response, its body cut at the size limit.
pub struct Fetched {
    pub url: Url,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Fetches `url`, refusing a body over `limit` bytes.
pub async fn fetch(client: &reqwest::Client, url: Url, policy: &IpPolicy, limit: u64) -> Result<Fetched, PreviewError> {
    check_url(&url, policy)?;
    let mut resp = client.get(url).send().await.map_err(classify)?;
    if !resp.status().is_success() {
        return Err(PreviewError::Fetch(format!("the server answered {}", resp.status())));
    }
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(PreviewError::TooLarge(limit));
    }
    let content_type =
        resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let final_url = resp.url().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(PreviewError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { url: final_url, content_type, body })
}

/// A refusal by the resolver or the redirect policy stays a refusal; anything else is a fetch
/// failure.
fn classify(e: reqwest::Error) -> PreviewError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(b) = s.downcast_ref::<Blocked>() {
            return PreviewError::Blocked(b.0.clone());
        }
        src = s.source();
    }
    PreviewError::Fetch(if e.is_timeout() { "timed out".to_owned() } else { e.without_url().to_string() })
}

/// The media type without parameters, lower-cased.
pub fn essence(content_type: Option<&str>) -> String {
    content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// OpenGraph data of an HTML page: every `og:*` meta property, with the page's `<title>` and
/// meta description as fallbacks (most pages without OpenGraph still have those).
/// `og:image` is made absolute against `base`.
pub fn parse_html(html: &str, base: &Url) -> Map<String, Value> {
    let doc = ruma::html::Html::parse(html);
    let mut og = Map::new();
    let mut title = None;
    let mut description = None;
    let mut stack: Vec<ruma::html::NodeRef> = doc.children().collect();
    stack.reverse();
    while let Some(node) = stack.pop() {
        if let Some(el) = node.as_element() {
            let attr =
                |name: &str| el.attrs.borrow().iter().find(|a| &*a.name.local == name).map(|a| a.value.to_string());
            match &*el.name.local {
                "meta" => {
                    let key = attr("property").or_else(|| attr("name")).map(|k| k.trim().to_ascii_lowercase());
                    if let (Some(key), Some(content)) = (key, attr("content")) {
                        if key.starts_with("og:") && og.len() < MAX_PROPERTIES && !og.contains_key(&key) {
                            og.insert(key, Value::String(clip(&content)));
                        } else if key == "description" && description.is_none() {
                            description = Some(clip(&content));
                        }
                    }
                }
                "title" if title.is_none() => {
                    let text: String =
                        node.children().filter_map(|c| c.as_text().map(|t| t.borrow().to_string())).collect();
                    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    if !text.is_empty() {
                        title = Some(clip(&text));
                    }
                }
                _ => {}
            }
        }
        let mut children: Vec<_> = node.children().collect();
        children.reverse();
        stack.extend(children);
    }
    if !og.contains_key("og:title")
        && let Some(t) = title
    {
        og.insert("og:title".to_owned(), Value::String(t));
    }
    if !og.contains_key("og:description")
        && let Some(d) = description
    {
        og.insert("og:description".to_owned(), Value::String(d));
    }
    let image = og.get("og:image").and_then(Value::as_str).and_then(|i| base.join(i).ok());
    match image {
        Some(u) if matches!(u.scheme(), "http" | "https") => {
            og.insert("og:image".to_owned(), Value::String(u.to_string()));
        }
        _ => {
            og.remove("og:image");
        }
    }
    og
}

fn clip(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(MAX_VALUE_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised_in_every_spelling() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip} must count as internal");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_only_its_ranges() {
        let policy = IpPolicy { allow: vec!["10.0.0.0/24".parse().unwrap()] };
        assert!(policy.permits("10.0.0.5".parse().unwrap()));
        assert!(!policy.permits("10.0.1.5".parse().unwrap()));
        assert!(!policy.permits("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn ip_literals_and_other_schemes_are_refused_before_connecting() {
        let p = IpPolicy::default();
        for url in [
            "http://127.0.0.1:8008/",
            "http://[::1]/",
            "http://2130706433/",
            "http://0x7f.1/",
            "https://169.254.169.254/latest",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(matches!(check_url(&url, &p), Err(PreviewError::Blocked(_))), "{url}");
        }
        assert!(matches!(check_url(&Url::parse("file:///etc/passwd").unwrap(), &p), Err(PreviewError::Invalid(_))));
        assert!(check_url(&Url::parse("https://example.org/").unwrap(), &p).is_ok());
    }

    #[test]
    fn opengraph_properties_with_title_and_description_fallbacks() {
        let base = Url::parse("https://example.org/blog/post").unwrap();
        let og = parse_html(
            r#"<!doctype html><html><head><title> A  page </title>
               <meta name="description" content="Plain description">
               <meta property="og:image" content="/img/cover.png">
               <meta property="og:site_name" content="Example">
               </head><body><p>Hi</p></body></html>"#,
            &base,
        );
        assert_eq!(og["og:title"], "A page");
        assert_eq!(og["og:description"], "Plain description");
        assert_eq!(og["og:image"], "https://example.org/img/cover.png");
        assert_eq!(og["og:site_name"], "Example");
        let og = parse_html(
            r#"<meta property="og:title" content="OG title"><title>Other</title><meta property="og:image" content="javascript:alert(1)">"#,
            &base,
        );
        assert_eq!(og["og:title"], "OG title");
        assert!(!og.contains_key("og:image"));
    }
}
