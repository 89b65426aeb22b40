//! Certificates from an ACME CA (RFC 8555; Let's Encrypt unless `acme.url` says otherwise) for
//! the TLS listeners, as Synapse once did and Caddy does: Hearth asks for one when it has none
//! (serving a self-signed stand-in meanwhile), proves it holds the names with HTTP-01 (the plain
//! listener on `acme.port` answers the CA's challenge) or TLS-ALPN-01 (the TLS listener serves
//! the challenge certificate to the CA's `acme-tls/1` handshake), keeps the certificate in the TLS files
//! and serves it at once, then renews it when two thirds of its lifetime have passed or fewer
//! than `acme.reprovision_threshold` days are left, retrying with back-off after a failure.
//!
//! The ACME account (its key and URL) is kept with the other secrets, or in
//! `acme.account_key_file`. Requests to the CA go through the outbound policy like every other
//! request Hearth makes (a CA on a private address must be allowed in `ip_range_whitelist`).

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::BodyExt;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{
    now_ms,
    outbound::{IpPolicy, Outbound, Redirects},
    tls::Certificates,
};
use crate::{
    config::{AcmeChallenge, Config},
    secrets::Secrets,
};

/// Let's Encrypt's directories: certificates apps trust, and test ones they do not (with far
/// higher limits, for trying things out).
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// The certificate authorities the wizard offers: Let's Encrypt, its staging directory, and
/// the one the configuration names when it is another (a company's or a test CA).
pub fn directories(configured: &str) -> Vec<serde_json::Value> {
    let mut out = vec![
        serde_json::json!({ "url": LETS_ENCRYPT, "name": "Let's Encrypt", "trusted_by_apps": true }),
        serde_json::json!({ "url": LETS_ENCRYPT_STAGING, "name": "Let's Encrypt staging (test certificates that apps do not trust, for trying things out)", "trusted_by_apps": false }),
    ];
    if configured != LETS_ENCRYPT && configured != LETS_ENCRYPT_STAGING {
        let host = url::Url::parse(configured).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        out.push(serde_json::json!({ "url": configured, "name": format!("The authority in the configuration file ({host})"), "trusted_by_apps": null }));
    }
    out
}

/// The secret holding the ACME account (instant-acme's credentials, JSON).
pub(crate) const ACCOUNT_SECRET: &str = "acme_account";
/// The longest wait between two attempts after failures.
const MAX_RETRY: Duration = Duration::from_secs(24 * 3600);
/// The shortest wait between two successful orders, whatever the renewal rule says: a CA limits
/// how many certificates it gives for a name. (A third of the lifetime for certificates of less
/// than three hours, which only test CAs give.)
const MIN_BETWEEN_ORDERS: Duration = Duration::from_secs(3600);
/// How long an order may take once its challenges are answered.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// The ACME side of the server: challenges being answered, the state of the certificate.
pub struct Acme {
    config: Arc<Config>,
    secrets: Arc<Secrets>,
    certificates: Arc<Certificates>,
    outbound: Arc<Outbound>,
    /// HTTP-01 tokens being answered: token -> key authorization.
    http01: Mutex<HashMap<String, String>>,
    /// A token the HTTP-01 listener answers with itself: the wizard fetches it through the
    /// public name to check that port 80 reaches this server before the CA tries.
    probe: String,
    /// Wakes the renewal loop for an attempt now (the wizard's "check again").
    wake: tokio::sync::Notify,
    status: Mutex<Status>,
}

/// What the dashboard shows of the ACME certificate.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// When the last attempt to get a certificate ended (ms), and how.
    pub last_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Attempts failed in a row.
    pub failures: u32,
    /// When the next attempt or renewal is due (ms).
    pub next_attempt_ms: Option<i64>,
}

impl Acme {
    pub fn new(config: Arc<Config>, secrets: Arc<Secrets>, certificates: Arc<Certificates>) -> anyhow::Result<Self> {
        let mut roots = Vec::new();
        for path in &config.acme.custom_ca_list {
            let pem =
                std::fs::read(path).map_err(|e| anyhow::anyhow!("acme.custom_ca_list: {}: {e}", path.display()))?;
            roots.extend(
                reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| anyhow::anyhow!("acme.custom_ca_list: {}: {e}", path.display()))?,
            );
        }
        let policy = IpPolicy::from_config(&config).map_err(anyhow::Error::msg)?;
        let outbound = Outbound::new(policy, "ACME", Duration::from_secs(30), Redirects::Follow(3)).trusting(roots);
        Ok(Self {
            config,
            secrets,
            certificates,
            outbound: Arc::new(outbound),
            http01: Mutex::new(HashMap::new()),
            probe: format!("hearth-probe-{}", super::tokens::random_alphanumeric(24)),
            wake: tokio::sync::Notify::new(),
            status: Mutex::new(Status::default()),
        })
    }

    /// The answer to an HTTP-01 challenge for `token`, while one is pending (and to the probe).
    pub fn http01_answer(&self, token: &str) -> Option<String> {
        if token == self.probe {
            return Some(self.probe.clone());
        }
        self.http01.lock().get(token).cloned()
    }

    /// The token `http01_answer` answers with itself.
    pub fn probe_token(&self) -> &str {
        &self.probe
    }

    /// Ends the wait before the next attempt when there is no certificate from the CA yet (a
    /// cause of failure was fixed); a certificate not yet due for renewal stays. True when it
    /// asked for an attempt.
    pub fn try_now(&self) -> bool {
        let placeholder = self.certificates.current().placeholder;
        if placeholder {
            self.wake.notify_one();
        }
        placeholder
    }

    pub fn status(&self) -> Status {
        self.status.lock().clone()
    }

    /// Gets a certificate when there is none, and renews it when due, until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut failures = 0u32;
        loop {
            let wait = match self.due_in() {
                Some(wait) if !wait.is_zero() => wait,
                _ => match self.obtain().await {
                    Ok(()) => {
                        failures = 0;
                        let now = self.certificates.current();
                        tracing::info!(names = ?now.names, expires = now.not_after, "certificate obtained from the ACME CA");
                        self.record(None, 0);
                        let due = self.due_in().unwrap_or_default();
                        let lifetime = Duration::from_secs((now.not_after - now.not_before).max(0) as u64);
                        let wait = after_success(due, lifetime);
                        if due < wait {
                            tracing::warn!(
                                threshold_days = self.config.acme.reprovision_threshold,
                                wait_s = wait.as_secs(),
                                "the new certificate is due for renewal at once (acme.reprovision_threshold is longer than its lifetime): the next order waits"
                            );
                        }
                        wait
                    }
                    Err(e) => {
                        failures += 1;
                        let wait = retry_wait(self.config.acme.retry_after.0, failures);
                        tracing::error!(error = %e, failures, retry_in_s = wait.as_secs(), "could not get a certificate from the ACME CA; the current one is served meanwhile");
                        self.record(Some(e.to_string()), failures);
                        wait
                    }
                },
            };
            self.status.lock().next_attempt_ms = Some(now_ms() + wait.as_millis() as i64);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => tracing::info!("trying to get the certificate now, as asked"),
            }
        }
    }

    fn record(&self, error: Option<String>, failures: u32) {
        let mut s = self.status.lock();
        s.last_attempt_ms = Some(now_ms());
        s.last_error = error;
        s.failures = failures;
    }

    /// How long until the certificate is due for renewal (zero: now); None for the stand-in.
    fn due_in(&self) -> Option<Duration> {
        let current = self.certificates.current();
        if current.placeholder {
            return None;
        }
        let lifetime = (current.not_after - current.not_before).max(0);
        let by_lifetime = current.not_before + lifetime * 2 / 3;
        let by_threshold = current.not_after - i64::from(self.config.acme.reprovision_threshold) * 86_400;
        let due = by_lifetime.min(by_threshold);
        let now = now_ms() / 1000;
        Some(Duration::from_secs(due.saturating_sub(now).max(0) as u64))
    }

    /// One order: account, challenges, key and CSR, certificate; installed when it comes.
    async fn obtain(&self) -> Result<(), AcmeError> {
        let account = self.account().await?;
        let names = self.config.acme_domains();
        let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(AcmeError::from_acme)?;
        let mut answering = Vec::new();
        let answered = async {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz.map_err(AcmeError::from_acme)?;
                if authz.status == AuthorizationStatus::Valid {
                    continue;
                }
                let name = authz.identifier().to_string();
                let (kind, label) = match self.config.acme.challenge {
                    AcmeChallenge::Http01 => (ChallengeType::Http01, "HTTP-01"),
                    AcmeChallenge::TlsAlpn01 => (ChallengeType::TlsAlpn01, "TLS-ALPN-01"),
                };
                let mut challenge = authz
                    .challenge(kind)
                    .ok_or_else(|| AcmeError(format!("the CA offers no {label} challenge for {name}")))?;
                let key_authorization = challenge.key_authorization();
                match self.config.acme.challenge {
                    AcmeChallenge::Http01 => {
                        let token = challenge.token.clone();
                        self.http01.lock().insert(token.clone(), key_authorization.as_str().to_owned());
                        answering.push(Answer::Token(token));
                    }
                    AcmeChallenge::TlsAlpn01 => {
                        self.certificates
                            .begin_challenge(&name, key_authorization.digest().as_ref())
                            .map_err(|e| AcmeError(format!("making the TLS-ALPN-01 certificate: {e}")))?;
                        answering.push(Answer::Host(name.clone()));
                    }
                }
                challenge.set_ready().await.map_err(AcmeError::from_acme)?;
            }
            Ok::<_, AcmeError>(())
        }
        .await;
        let result = match answered {
            Ok(()) => self.finish(&mut order, &names).await,
            Err(e) => Err(e),
        };
        for a in answering {
            match a {
                Answer::Token(t) => {
                    self.http01.lock().remove(&t);
                }
                Answer::Host(h) => self.certificates.end_challenge(&h),
            }
        }
        result
    }

    /// Waits for the CA to check the challenges, then sends the key's CSR and installs the
    /// certificate.
    async fn finish(&self, order: &mut instant_acme::Order, names: &[String]) -> Result<(), AcmeError> {
        let retries = RetryPolicy::new().initial_delay(Duration::from_millis(250)).timeout(ORDER_TIMEOUT);
        let status = order.poll_ready(&retries).await.map_err(AcmeError::from_acme)?;
        if status != OrderStatus::Ready {
            return Err(self.why_refused(order, status).await);
        }
        let key = rcgen::KeyPair::generate().map_err(|e| AcmeError(format!("making a key: {e}")))?;
        let csr = rcgen::CertificateParams::new(names.to_vec())
            .and_then(|p| p.serialize_request(&key))
            .map_err(|e| AcmeError(format!("making the certificate request: {e}")))?;
        order.finalize_csr(csr.der()).await.map_err(AcmeError::from_acme)?;
        let chain = order.poll_certificate(&retries).await.map_err(AcmeError::from_acme)?;
        let (certificates, key_pem) = (self.certificates.clone(), key.serialize_pem());
        tokio::task::spawn_blocking(move || certificates.install(&chain, &key_pem))
            .await
            .map_err(|e| AcmeError(format!("installing the certificate: {e}")))?
            .map_err(|e| AcmeError(format!("the CA's certificate cannot be used: {e}")))?;
        Ok(())
    }

    /// Why the CA did not validate the order, from its authorizations' challenge errors.
    async fn why_refused(&self, order: &mut instant_acme::Order, status: OrderStatus) -> AcmeError {
        let mut reasons = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(Ok(authz)) = authorizations.next().await {
            let name = authz.identifier().to_string();
            for c in &authz.challenges {
                if let Some(p) = &c.error {
                    reasons.push(format!("{name}: {}", explain(p.r#type.as_deref(), p.detail.as_deref())));
                }
            }
        }
        if reasons.is_empty() {
            AcmeError(format!("the CA left the order {status:?}"))
        } else {
            AcmeError(reasons.join("; "))
        }
    }

    /// The ACME account: the one kept (for this CA), or a new one, then kept.
    async fn account(&self) -> Result<Account, AcmeError> {
        let http = || Box::new(PolicyClient(self.outbound.clone())) as Box<dyn HttpClient>;
        let url = self.config.acme.url.clone();
        if let Some(kept) = self.kept_account().await?
            && serde_json::from_slice::<serde_json::Value>(&kept).ok().is_some_and(|v| v["directory"] == url.as_str())
            && let Ok(credentials) = serde_json::from_slice::<AccountCredentials>(&kept)
        {
            return Account::builder_with_http(http())
                .from_credentials(credentials)
                .await
                .map_err(AcmeError::from_acme);
        }
        let new = NewAccount { contact: &[], terms_of_service_agreed: true, only_return_existing: false };
        let (account, credentials) =
            Account::builder_with_http(http()).create(&new, url, None).await.map_err(AcmeError::from_acme)?;
        let text = serde_json::to_vec(&credentials).map_err(|e| AcmeError(e.to_string()))?;
        self.keep_account(text).await?;
        tracing::info!(ca = %self.config.acme.url, "ACME account created");
        Ok(account)
    }

    async fn kept_account(&self) -> Result<Option<Vec<u8>>, AcmeError> {
        if let Some(path) = &self.config.acme.account_key_file {
            return match std::fs::read(path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(AcmeError(format!("acme.account_key_file: {}: {e}", path.display()))),
            };
        }
        let secrets = self.secrets.clone();
        tokio::task::spawn_blocking(move || secrets.get(ACCOUNT_SECRET))
            .await
            .map_err(|e| AcmeError(e.to_string()))?
            .map_err(|e| AcmeError(format!("reading the ACME account from the secrets: {e}")))
    }

    async fn keep_account(&self, text: Vec<u8>) -> Result<(), AcmeError> {
        if let Some(path) = &self.config.acme.account_key_file {
            return std::fs::write(path, text)
                .map_err(|e| AcmeError(format!("acme.account_key_file: {}: {e}", path.display())));
        }
        let secrets = self.secrets.clone();
        tokio::task::spawn_blocking(move || secrets.set(ACCOUNT_SECRET, &text))
            .await
            .map_err(|e| AcmeError(e.to_string()))?
            .map_err(|e| AcmeError(format!("keeping the ACME account with the secrets: {e}")))
    }
}

/// A challenge being answered, to stop answering it after the order.
enum Answer {
    Token(String),
    Host(String),
}

/// Why getting a certificate failed, in words for the admin.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AcmeError(pub String);

impl AcmeError {
    fn from_acme(e: instant_acme::Error) -> Self {
        match e {
            instant_acme::Error::Api(p) => Self(explain(p.r#type.as_deref(), p.detail.as_deref())),
            instant_acme::Error::Timeout(_) => Self("the CA did not finish the order in time".to_owned()),
            e => Self(format!("talking to the CA: {e}")),
        }
    }
}

/// A CA's problem document in plain words, with what to do where the cause is common.
fn explain(kind: Option<&str>, detail: Option<&str>) -> String {
    let detail = detail.unwrap_or("no detail given");
    let hint = match kind.and_then(|k| k.rsplit(':').next()) {
        Some("dns") => "the name does not resolve to this server: check its DNS record",
        Some("connection") => {
            "the CA could not reach this server on port 80: check the router's port forward and firewall"
        }
        Some("unauthorized") => {
            "the CA reached a server that did not give the right answer: is port 80 forwarded to this computer?"
        }
        Some("rateLimited") => "the CA limits how many certificates it gives: Hearth tries again later",
        Some("rejectedIdentifier") => "the CA will not issue a certificate for this name",
        Some("caa") => "a CAA DNS record forbids this CA for the name",
        _ => "",
    };
    // The cause in plain words first; the CA's own words after, for whoever digs further.
    if hint.is_empty() { detail.to_owned() } else { format!("{hint} (the CA said: {detail})") }
}

/// The wait before the next order after one succeeded, `due` being when the new certificate is
/// due for renewal, of a certificate valid for `lifetime`: never sooner than an hour, or than a
/// third of a lifetime shorter than three hours (a test CA's certificates of seconds).
fn after_success(due: Duration, lifetime: Duration) -> Duration {
    due.max(MIN_BETWEEN_ORDERS.min(lifetime / 3))
}

fn retry_wait(first: Duration, failures: u32) -> Duration {
    first.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(MAX_RETRY)
}

/// instant-acme's HTTP requests, sent through the outbound policy.
struct PolicyClient(Arc<Outbound>);

impl HttpClient for PolicyClient {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let outbound = self.0.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let url = url::Url::parse(&parts.uri.to_string()).map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut request =
                outbound.request(parts.method, url).map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            for (name, value) in &parts.headers {
                request = request.header(name, value);
            }
            let resp = outbound.send(request.body(body)).await.map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let mut head = http::Response::builder().status(resp.status());
            for (name, value) in resp.headers() {
                head = head.header(name, value);
            }
            let bytes = resp.bytes().await.map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            let (parts, ()) = head.body(()).map_err(instant_acme::Error::Http)?.into_parts();
            Ok(BytesResponse { parts, body: Box::new(bytes) })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_a_day() {
        let first = Duration::from_secs(60);
        assert_eq!(retry_wait(first, 1), Duration::from_secs(60));
        assert_eq!(retry_wait(first, 2), Duration::from_secs(120));
        assert_eq!(retry_wait(first, 5), Duration::from_secs(960));
        assert_eq!(retry_wait(first, 40), MAX_RETRY);
    }

    #[test]
    fn a_certificate_due_at_once_is_not_ordered_again_before_an_hour() {
        let ninety_days = Duration::from_secs(90 * 86_400);
        assert_eq!(after_success(Duration::ZERO, ninety_days), MIN_BETWEEN_ORDERS);
        let two_months = Duration::from_secs(60 * 86_400);
        assert_eq!(after_success(two_months, ninety_days), two_months);
        // A certificate of a minute: at most three orders a minute, however it is configured.
        let minute = Duration::from_secs(60);
        assert_eq!(after_success(Duration::ZERO, minute), Duration::from_secs(20));
    }

    #[test]
    fn common_causes_are_explained() {
        let e = explain(Some("urn:ietf:params:acme:error:connection"), Some("127.0.0.9: Connection refused"));
        assert!(e.contains("Connection refused") && e.contains("port 80"), "{e}");
        assert_eq!(explain(None, Some("odd")), "odd");
    }
}
