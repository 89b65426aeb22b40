//! The dashboard's federation tester: given any server name, what another server would find on
//! the way to it, step by step (spec: "Resolving server names"), each with a plain-language
//! cause when it goes wrong. It goes the way Hearth's own federation goes (the same discovery,
//! the outbound policy, the same trust), so "my cousin's server can't reach me" and "I can't
//! reach my cousin's server" are both answered without an outside website.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use ruma::{
    CanonicalJsonObject, ServerName,
    api::federation::discovery::{get_server_keys, get_server_version},
    serde::Base64,
    signatures::PublicKeyMap,
};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::Federation;

/// How long the TLS probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// One step of the test.
#[derive(Debug, Serialize)]
pub struct Step {
    pub name: &'static str,
    /// "pass", "fail", "warn" or "info".
    pub status: &'static str,
    pub detail: String,
    /// What to do about a failure, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The test's findings.
#[derive(Debug, Serialize)]
pub struct Report {
    pub server_name: String,
    /// Whether a server would reach it and trust what it finds.
    pub ok: bool,
    pub steps: Vec<Step>,
    /// The certificate chain as presented, leaf first.
    pub certificates: Vec<CertificateView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What a certificate says, for people.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    pub subject: String,
    pub issuer: String,
    pub names: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    pub expired: bool,
}

fn step(name: &'static str, status: &'static str, detail: impl Into<String>, fix: Option<&str>) -> Step {
    Step { name, status, detail: detail.into(), fix: fix.map(str::to_owned) }
}

impl Federation {
    /// Tests `server_name` as another server would reach it.
    pub async fn test_server(&self, server_name: &str) -> Report {
        let mut r = Report {
            server_name: server_name.to_owned(),
            ok: false,
            steps: Vec::new(),
            certificates: Vec::new(),
            version: None,
        };
        let server_name = server_name.trim();
        let Ok(name) = <&ServerName>::try_from(server_name) else {
            r.steps.push(step(
                "Server name",
                "fail",
                format!("`{server_name}` is not a server name"),
                Some("A server name is the part of a Matrix ID after the colon, such as example.org or example.org:8448."),
            ));
            return r;
        };
        let discovery = self.client.discovery();
        let policy = self.client.policy();

        // Where other servers connect: delegation, SRV, the default port.
        let dest = match discovery.resolve_under(name.as_str(), Some(policy)).await {
            Ok(d) => d,
            Err(e) => {
                r.steps.push(step(
                    "Finding the server",
                    "fail",
                    e,
                    Some("Its https://<server name>/.well-known/matrix/server must hold {\"m.server\": \"host:port\"}, or be absent."),
                ));
                return r;
            }
        };
        r.steps.push(step(
            "Finding the server",
            "pass",
            format!("{}: servers connect to {}:{}", dest.via, dest.connect_host, dest.port),
            None,
        ));

        // Its addresses, as the outbound policy sees them.
        let addrs = match discovery.addresses(&dest.connect_host, dest.port).await {
            Ok(a) => a,
            Err(e) => {
                r.steps.push(step(
                    "Addresses",
                    "fail",
                    e,
                    Some("The host name has no address in DNS: create an A or AAAA record for it, or check the spelling."),
                ));
                return r;
            }
        };
        let allowed: Vec<SocketAddr> = addrs.iter().copied().filter(|a| policy.permits(a.ip())).collect();
        let listed = addrs.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
        if allowed.is_empty() {
            r.steps.push(step(
                "Addresses",
                "fail",
                format!("{} is at {listed}, a private or special address", dest.connect_host),
                Some("Servers on the internet cannot reach a private address; Hearth's outbound policy (ip_range_blacklist) refuses it too. Point the DNS record at the public address."),
            ));
            return r;
        }
        r.steps.push(step("Addresses", "pass", format!("{} is at {listed}", dest.connect_host), None));

        // The TLS certificate, as presented.
        match probe_tls(allowed[0], &dest.tls_name).await {
            Ok(chain) => r.certificates = chain,
            Err(e) => {
                r.steps.push(step(
                    "Connection",
                    "fail",
                    format!("{}:{} ({}): {e}", dest.connect_host, dest.port, allowed[0]),
                    Some("Nothing answers with TLS there: check that the server (or its reverse proxy) runs and that the router forwards the port."),
                ));
                return r;
            }
        }
        r.steps.push(step("Connection", "pass", format!("TLS answers at {}", allowed[0]), None));

        // What federation itself gets: the key document, over TLS checked as always.
        match self.client.send_unsigned(name, get_server_keys::v2::Request::new()).await {
            Ok(resp) => {
                r.steps.push(step("Certificate", "pass", format!("valid for {}", dest.tls_name), None));
                let keys = key_document_check(name, resp.server_key.json().get());
                let fine = keys.status == "pass";
                r.steps.push(keys);
                r.ok = fine;
            }
            Err(e) => {
                let text = e.to_string();
                if text.to_ascii_lowercase().contains("certificate") || text.contains("UnknownIssuer") {
                    let why = certificate_cause(&r.certificates, &dest.tls_name);
                    r.steps.push(step("Certificate", "fail", why.0, Some(why.1)));
                } else {
                    r.steps.push(step("Certificate", "pass", format!("valid for {}", dest.tls_name), None));
                    r.steps.push(step(
                        "Signing keys",
                        "fail",
                        format!("/_matrix/key/v2/server: {text}"),
                        Some("The web server there must pass /_matrix/ to the Matrix server."),
                    ));
                }
                return r;
            }
        }

        match self.client.send_unsigned(name, get_server_version::v1::Request::new()).await {
            Ok(resp) => {
                let v = resp
                    .server
                    .map(|s| format!("{} {}", s.name.unwrap_or_else(|| "?".into()), s.version.unwrap_or_default()));
                r.steps.push(step(
                    "Software",
                    "info",
                    v.clone().unwrap_or_else(|| "the server does not say".into()),
                    None,
                ));
                r.version = v;
            }
            Err(e) => r.steps.push(step("Software", "warn", format!("/_matrix/federation/v1/version: {e}"), None)),
        }
        r
    }
}

/// Checks a key document: for this server, self-signed with a key it lists, not expired.
fn key_document_check(name: &ServerName, text: &str) -> Step {
    let label = "Signing keys";
    let Ok(doc) = serde_json::from_str::<CanonicalJsonObject>(text) else {
        return step(
            label,
            "fail",
            "the key document is not JSON",
            Some("The address answers, but not as a Matrix server."),
        );
    };
    let field = |k: &str| doc.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    if field("server_name").as_deref() != Some(name.as_str()) {
        return step(
            label,
            "fail",
            format!("the server there calls itself `{}`", field("server_name").unwrap_or_default()),
            Some("Another Matrix server answers for this name: check the delegation or the reverse proxy."),
        );
    }
    let mut keys = std::collections::BTreeMap::new();
    if let Some(ruma::CanonicalJsonValue::Object(verify)) = doc.get("verify_keys") {
        for (id, key) in verify {
            if let Some(k) = key.as_object().and_then(|k| k.get("key")).and_then(|k| k.as_str())
                && let Ok(b) = Base64::<ruma::serde::base64::Standard>::parse(k)
            {
                keys.insert(id.clone(), Base64::new(b.into_inner()));
            }
        }
    }
    let mut map = PublicKeyMap::new();
    map.insert(name.to_string(), keys);
    if let Err(e) = ruma::signatures::verify_json(&map, &doc) {
        return step(label, "fail", format!("the key document's signature does not verify: {e}"), None);
    }
    let valid_until = doc.get("valid_until_ts").and_then(|v| v.as_integer()).map(i64::from).unwrap_or(0);
    if valid_until < crate::service::now_ms() {
        return step(label, "warn", "the key document has expired: servers will ask again soon", None);
    }
    step(label, "pass", "published and signed by the server", None)
}

/// Why a certificate is refused, from what it says: (detail, what to do).
fn certificate_cause(chain: &[CertificateView], tls_name: &str) -> (String, &'static str) {
    let Some(leaf) = chain.first() else {
        return ("no certificate was presented".into(), "Configure a certificate on the server or its reverse proxy.");
    };
    if leaf.expired {
        return (
            format!("the certificate expired on {}", leaf.not_after),
            "Renew the certificate (certbot renew, or let Caddy do it).",
        );
    }
    let covers = |pattern: &str| {
        pattern.eq_ignore_ascii_case(tls_name)
            || pattern.strip_prefix("*.").is_some_and(|rest| {
                tls_name.split_once('.').is_some_and(|(_, parent)| parent.eq_ignore_ascii_case(rest))
            })
    };
    if !leaf.names.iter().any(|n| covers(n)) {
        return (
            format!("the certificate is for {}, not {tls_name}", leaf.names.join(", ")),
            "Get a certificate that names this host (Let's Encrypt, for example).",
        );
    }
    if leaf.subject == leaf.issuer {
        return (
            format!("the certificate for {tls_name} is self-signed"),
            "Other servers trust only certificates from a public authority: use Let's Encrypt.",
        );
    }
    (
        format!("the certificate for {tls_name} is issued by {}, which is not trusted", leaf.issuer),
        "Use a certificate from a public authority, and serve the intermediate certificates with it (the full chain).",
    )
}

/// Connects to `addr` with TLS for `tls_name` and reads the certificate chain it presents,
/// whatever it is (the verdict on it is federation's, above).
async fn probe_tls(addr: SocketAddr, tls_name: &str) -> Result<Vec<CertificateView>, String> {
    Ok(peer_certificates(addr, tls_name).await?.iter().map(describe).collect())
}

/// The certificate chain `addr` presents for `tls_name`, read without judging it (within 10 s).
pub async fn peer_certificates(
    addr: SocketAddr,
    tls_name: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Recorder(provider)))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let server = rustls::pki_types::ServerName::try_from(tls_name.to_owned()).map_err(|e| e.to_string())?;
    let work = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect: {e}"))?;
        let tls = connector.connect(server, tcp).await.map_err(|e| format!("TLS handshake failed: {e}"))?;
        let (_, session) = tls.get_ref();
        Ok::<_, String>(
            session.peer_certificates().map(|c| c.iter().map(|d| d.clone().into_owned()).collect()).unwrap_or_default(),
        )
    };
    tokio::time::timeout(PROBE_TIMEOUT, work).await.map_err(|_| "no answer in 10 seconds".to_owned())?
}

fn describe(der: &rustls::pki_types::CertificateDer<'_>) -> CertificateView {
    match x509_parser::parse_x509_certificate(der.as_ref()) {
        Ok((_, cert)) => {
            let mut names = Vec::new();
            if let Ok(Some(san)) = cert.subject_alternative_name() {
                for n in &san.value.general_names {
                    match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                        x509_parser::extensions::GeneralName::IPAddress(ip) => {
                            let ip = match ip.len() {
                                4 => <[u8; 4]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                                16 => <[u8; 16]>::try_from(*ip).map(std::net::IpAddr::from).ok(),
                                _ => None,
                            };
                            names.extend(ip.map(|i| i.to_string()));
                        }
                        _ => {}
                    }
                }
            }
            let validity = cert.validity();
            CertificateView {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                names,
                not_before: validity.not_before.to_string(),
                not_after: validity.not_after.to_string(),
                expired: !validity.is_valid(),
            }
        }
        Err(_) => CertificateView {
            subject: "(unreadable)".into(),
            issuer: String::new(),
            names: Vec::new(),
            not_before: String::new(),
            not_after: String::new(),
            expired: false,
        },
    }
}

/// Accepts any certificate, to read it: the probe only looks.
#[derive(Debug)]
struct Recorder(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
