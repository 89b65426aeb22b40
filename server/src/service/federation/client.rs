//! Outbound federation requests: the destination found as the spec's "Resolving server names"
//! orders it (`server_discovery`), its addresses checked against the outbound IP policy, one
//! pooled HTTPS client per destination (TLS checked for the name discovery says), and every
//! request signed with `X-Matrix`.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use ruma::{
    OwnedServerName, ServerName,
    api::{
        IncomingResponse, OutgoingRequest,
        auth_scheme::NoAuthentication,
        federation::authentication::{ServerSignatures, ServerSignaturesInput},
        path_builder::SinglePath,
    },
};

use crate::service::{
    outbound::IpPolicy,
    server_discovery::{Destination, Discovery},
    signing::ServerKeys,
};

/// How long a destination's discovery result is reused (Synapse caches well-known for a day
/// and SRV records per their TTL; an hour keeps a moved server reachable soon enough).
const ROUTE_TTL: Duration = Duration::from_secs(3600);
/// A destination that could not be found is looked up again after this long.
const FAILED_ROUTE_TTL: Duration = Duration::from_secs(60);
/// Longest wait for one federation request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read from another server (a big room's `send_join` state is tens of
/// MiB); a longer one is cut off and counts as invalid, so a hostile server cannot fill memory.
const MAX_RESPONSE: usize = 512 * 1024 * 1024;

/// Why a request to another server failed.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// It could not be found, reached, or is not allowed by the outbound policy.
    #[error("{0}")]
    Unreachable(String),
    /// It answered with an error.
    #[error("{server} answered {status}: {body}")]
    Refused { server: String, status: u16, body: String },
    /// Its answer was not what the endpoint returns.
    #[error("{0}")]
    Invalid(String),
    /// Its answer was longer than the limit (bytes).
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

impl FederationError {
    /// The Matrix error code of a refusal, if it gave one.
    pub fn errcode(&self) -> Option<String> {
        match self {
            FederationError::Refused { body, .. } => serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["errcode"].as_str().map(str::to_owned)),
            _ => None,
        }
    }
}

/// Where and how to reach one destination.
struct Route {
    /// `https://host:port`, host as TLS must check it.
    base: String,
    host_header: String,
    client: reqwest::Client,
}

/// A discovery result: the route, or why there is none.
type Found = Result<Arc<Route>, String>;

pub struct FederationClient {
    keys: Arc<ServerKeys>,
    discovery: Discovery,
    policy: Arc<IpPolicy>,
    /// `federation_domain_whitelist`: when set, the only servers federation talks to.
    whitelist: Option<std::collections::HashSet<String>>,
    routes: Mutex<HashMap<OwnedServerName, (Found, Instant)>>,
}

impl FederationClient {
    pub fn new(keys: Arc<ServerKeys>, discovery: Discovery, policy: IpPolicy, whitelist: Option<Vec<String>>) -> Self {
        let whitelist = whitelist.map(|w| w.into_iter().map(|s| s.to_ascii_lowercase()).collect());
        Self { keys, discovery, policy: Arc::new(policy), whitelist, routes: Mutex::default() }
    }

    /// How other servers are found (for the federation tester).
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The outbound IP policy every request is under.
    pub fn policy(&self) -> &Arc<IpPolicy> {
        &self.policy
    }

    /// This server's name, the origin of every request.
    pub fn origin(&self) -> &ServerName {
        &self.keys.server_name
    }

    /// Whether `federation_domain_whitelist` lets federation talk to `server` (both ways).
    pub fn may_federate_with(&self, server: &ServerName) -> bool {
        self.whitelist.as_ref().is_none_or(|w| w.contains(&server.as_str().to_ascii_lowercase()))
    }

    async fn route(&self, destination: &ServerName) -> Result<Arc<Route>, FederationError> {
        if !self.may_federate_with(destination) {
            return Err(FederationError::Unreachable(format!("{destination} is not in federation_domain_whitelist")));
        }
        if let Some((route, at)) = self.routes.lock().get(destination) {
            let ttl = if route.is_ok() { ROUTE_TTL } else { FAILED_ROUTE_TTL };
            if at.elapsed() < ttl {
                return route.clone().map_err(FederationError::Unreachable);
            }
        }
        let found = self.find(destination).await;
        self.routes.lock().insert(destination.to_owned(), (found.clone(), Instant::now()));
        found.map_err(FederationError::Unreachable)
    }

    async fn find(&self, destination: &ServerName) -> Result<Arc<Route>, String> {
        let Destination { connect_host, port, tls_name, host_header, .. } =
            self.discovery.resolve_under(destination.as_str(), Some(&self.policy)).await?;
        let addrs: Vec<SocketAddr> = self.discovery.addresses(&connect_host, port).await?;
        let allowed: Vec<SocketAddr> = addrs.iter().copied().filter(|a| self.policy.permits(a.ip())).collect();
        if allowed.is_empty() {
            return Err(format!(
                "{destination} is at {}, which the outbound policy (ip_range_blacklist) does not allow",
                addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
            ));
        }
        let host =
            if tls_name.contains(':') && !tls_name.starts_with('[') { format!("[{tls_name}]") } else { tls_name };
        let client = self.discovery.federation_http(&host, &allowed, REQUEST_TIMEOUT);
        Ok(Arc::new(Route { base: format!("https://{host}:{port}"), host_header, client }))
    }

    /// Sends a signed request to `destination` and reads its answer.
    pub async fn send<R>(&self, destination: &ServerName, request: R) -> Result<R::IncomingResponse, FederationError>
    where
        R: OutgoingRequest<Authentication = ServerSignatures, PathBuilder = SinglePath>,
    {
        self.send_limited(destination, request, MAX_RESPONSE).await
    }

    /// As `send`, reading at most `limit` bytes of the answer (media).
    pub async fn send_limited<R>(
        &self,
        destination: &ServerName,
        request: R,
        limit: usize,
    ) -> Result<R::IncomingResponse, FederationError>
    where
        R: OutgoingRequest<Authentication = ServerSignatures, PathBuilder = SinglePath>,
    {
        let route = self.route(destination).await?;
        let input = ServerSignaturesInput::new(self.keys.server_name.clone(), destination.to_owned(), self.keys.pair());
        let http_request = request
            .try_into_http_request::<Vec<u8>>(&route.base, input, ())
            .map_err(|e| FederationError::Invalid(format!("the request could not be built: {e}")))?;
        let response = self.execute(destination, &route, http_request, limit).await?;
        R::IncomingResponse::try_from_http_response(response)
            .map_err(|e| FederationError::Invalid(format!("{destination} answered something unexpected: {e}")))
    }

    /// A plain GET of `path_and_query` on `destination` (the legacy media download, for
    /// servers without authenticated federation media): the answer's content type and bytes,
    /// at most `limit` of them.
    pub async fn get_raw(
        &self,
        destination: &ServerName,
        path_and_query: &str,
        limit: usize,
    ) -> Result<http::Response<Vec<u8>>, FederationError> {
        let route = self.route(destination).await?;
        let http_request = http::Request::get(format!("{}{path_and_query}", route.base))
            .body(Vec::new())
            .map_err(|e| FederationError::Invalid(format!("the request could not be built: {e}")))?;
        self.execute(destination, &route, http_request, limit).await
    }

    /// Sends an unauthenticated request (the key endpoints) to `destination`.
    pub async fn send_unsigned<R>(
        &self,
        destination: &ServerName,
        request: R,
    ) -> Result<R::IncomingResponse, FederationError>
    where
        R: OutgoingRequest<Authentication = NoAuthentication, PathBuilder = SinglePath>,
    {
        let route = self.route(destination).await?;
        let http_request = request
            .try_into_http_request::<Vec<u8>>(&route.base, (), ())
            .map_err(|e| FederationError::Invalid(format!("the request could not be built: {e}")))?;
        let response = self.execute(destination, &route, http_request, MAX_RESPONSE).await?;
        R::IncomingResponse::try_from_http_response(response)
            .map_err(|e| FederationError::Invalid(format!("{destination} answered something unexpected: {e}")))
    }

    /// Sends the request; a success's answer (at most `limit` bytes), or why it failed.
    async fn execute(
        &self,
        destination: &ServerName,
        route: &Route,
        http_request: http::Request<Vec<u8>>,
        limit: usize,
    ) -> Result<http::Response<Vec<u8>>, FederationError> {
        let mut req = reqwest::Request::try_from(http_request)
            .map_err(|e| FederationError::Invalid(format!("the request could not be built: {e}")))?;
        if let Ok(h) = http::HeaderValue::from_str(&route.host_header) {
            req.headers_mut().insert(http::header::HOST, h);
        }
        let started = Instant::now();
        let resp = route.client.execute(req).await.map_err(|e| {
            let e = super::super::outbound::classify(e);
            FederationError::Unreachable(format!("{destination}: {e}"))
        })?;
        let status = resp.status();
        let mut builder = http::Response::builder().status(status);
        for (k, v) in resp.headers() {
            builder = builder.header(k, v);
        }
        if resp.content_length().is_some_and(|l| l > limit as u64) {
            return Err(FederationError::TooLarge(limit));
        }
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FederationError::Unreachable(format!("{destination}: reading the answer: {e}")))?
        {
            if body.len() + chunk.len() > limit {
                return Err(FederationError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(%destination, status = status.as_u16(), ms = started.elapsed().as_millis() as u64, "federation request");
        if !status.is_success() {
            return Err(FederationError::Refused {
                server: destination.to_string(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
            });
        }
        builder.body(body).map_err(|e| FederationError::Invalid(e.to_string()))
    }
}
