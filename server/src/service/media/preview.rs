//! URL previews (`GET /media/preview_url`): fetching a page the way a careful crawler would and
//! reading its OpenGraph data.
//!
//! The server fetches URLs chosen by any user, so every fetch goes through the outbound policy
//! (`service::outbound`): addresses checked after DNS resolution and on every redirect. The
//! config's `url_preview_ip_range_whitelist` opens ranges for previews only.

use std::time::Duration;

use reqwest::Url;
use serde_json::{Map, Value};

use crate::service::outbound::{IpPolicy, Outbound, OutboundError, Redirects};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;
/// Longest a whole fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// OpenGraph values kept at most, and their longest length in characters.
const MAX_PROPERTIES: usize = 50;
const MAX_VALUE_CHARS: usize = 1000;

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

impl From<OutboundError> for PreviewError {
    fn from(e: OutboundError) -> Self {
        match e {
            OutboundError::Invalid(m) => PreviewError::Invalid(m),
            OutboundError::Blocked(m) => PreviewError::Blocked(m),
            OutboundError::Failed(m) => PreviewError::Fetch(m),
        }
    }
}

/// The client for previews: the outbound policy, redirects followed and checked.
pub fn client(policy: IpPolicy) -> Outbound {
    Outbound::new(policy, "URL preview", FETCH_TIMEOUT, Redirects::Follow(MAX_REDIRECTS))
}

/// A fetched response, its body cut at the size limit.
pub struct Fetched {
    pub url: Url,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Fetches `url`, refusing a body over `limit` bytes.
pub async fn fetch(client: &Outbound, url: Url, limit: u64) -> Result<Fetched, PreviewError> {
    let mut resp = client.send(client.request(reqwest::Method::GET, url)?).await?;
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
    while let Some(chunk) = resp.chunk().await.map_err(crate::service::outbound::classify)? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(PreviewError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched { url: final_url, content_type, body })
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
