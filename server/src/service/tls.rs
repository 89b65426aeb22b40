//! Built-in HTTPS: listeners with `tls = true` serve TLS (rustls: TLS 1.2 and 1.3, HTTP/2 or
//! HTTP/1.1 by ALPN) with the certificate chain and private key of `tls_certificate_path` and
//! `tls_private_key_path` (PEM), as Synapse's keys of the same names.
//!
//! The files are looked at every `tls_reload_interval`: when they changed and the new pair is
//! good (the key matches the certificate, the certificate is valid now), new connections get it,
//! without a restart and without touching open connections. A pair that is not good is refused
//! with a log line saying why, and the server goes on with the certificate it had.
//!
//! While the ACME CA checks a TLS-ALPN-01 challenge (RFC 8737), a handshake that asks for the
//! `acme-tls/1` protocol and names a challenged host gets that challenge's certificate instead;
//! such a connection carries no HTTP (`is_acme_challenge`).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use parking_lot::RwLock;
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, ServerConfig,
        crypto::CryptoProvider,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::{ClientHello, ResolvesServerCert},
        sign::CertifiedKey,
    },
};
use tokio_util::sync::CancellationToken;

/// The ALPN protocol of TLS-ALPN-01 validation connections.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The certificate new connections get, and what is known of it.
#[derive(Debug)]
pub struct Certificates {
    current: RwLock<Arc<Loaded>>,
    /// The files' modification times and sizes when last read: a change is noticed by these
    /// (also after a refused pair, so it is not read again until the files change once more).
    seen: parking_lot::Mutex<Stamp>,
    /// TLS-ALPN-01 challenge certificates by host name, while the CA checks them.
    challenges: RwLock<std::collections::HashMap<String, Arc<CertifiedKey>>>,
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
}

/// A certificate chain and key that were checked.
#[derive(Debug)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    /// When the leaf certificate starts and stops being valid (Unix seconds).
    pub not_before: i64,
    pub not_after: i64,
    /// A self-signed stand-in served until the first certificate from the ACME CA arrives.
    pub placeholder: bool,
    /// The names the leaf certificate is for (DNS names and IP addresses).
    pub names: Vec<String>,
}

type Stamp = [(Option<SystemTime>, u64); 2];

/// Why a certificate and key cannot be used, in words for the admin.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: cannot read it: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: no PEM certificate in it (it must hold the certificate, then the chain's intermediates)")]
    NoCertificate(PathBuf),
    #[error("{0}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    #[error("{0}: the private key cannot be used: {1}")]
    BadKey(PathBuf, String),
    #[error("{key}: this private key does not belong to the certificate in {cert}")]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{0}: the certificate does not parse: {1}")]
    BadCertificate(PathBuf, String),
    #[error("{0}: the certificate expired {1} (renew it, or let Hearth get one)")]
    Expired(PathBuf, String),
    #[error("{0}: the certificate is not valid before {1}")]
    NotYetValid(PathBuf, String),
}

impl Certificates {
    /// Reads and checks the pair; an error says what is wrong with which file.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (loaded, seen) = read_pair(cert_path, key_path, &provider)?;
        Ok(Self::serving(loaded, seen, cert_path, key_path, provider))
    }

    fn serving(loaded: Loaded, seen: Stamp, cert_path: &Path, key_path: &Path, provider: Arc<CryptoProvider>) -> Self {
        Self {
            current: RwLock::new(Arc::new(loaded)),
            seen: parking_lot::Mutex::new(seen),
            challenges: RwLock::default(),
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
        }
    }

    /// When the files are not there yet (the ACME CA has not issued one): a self-signed
    /// certificate for `names` is served meanwhile, and the files are used once they appear.
    pub fn load_or_placeholder(cert_path: &Path, key_path: &Path, names: &[String]) -> Result<Self, TlsError> {
        if cert_path.exists() || key_path.exists() {
            return Self::load(cert_path, key_path);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let made = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| TlsError::BadCertificate(cert_path.to_owned(), e.to_string()))?;
        let mut loaded = check_pair(
            made.cert.pem().as_bytes(),
            made.signing_key.serialize_pem().as_bytes(),
            cert_path,
            key_path,
            &provider,
        )?;
        loaded.placeholder = true;
        Ok(Self::serving(loaded, stamp(cert_path, key_path), cert_path, key_path, provider))
    }

    /// Checks a new certificate chain and key (PEM), writes them to the configured files (each
    /// replaced whole, so a reader never sees half a file) and serves them from now on.
    pub fn install(&self, chain_pem: &str, key_pem: &str) -> Result<Arc<Loaded>, TlsError> {
        let loaded =
            check_pair(chain_pem.as_bytes(), key_pem.as_bytes(), &self.cert_path, &self.key_path, &self.provider)?;
        if let Some(dir) = self.cert_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| TlsError::Read(dir.to_owned(), e))?;
        }
        // The key first, private from the start: the certificate is what a reload looks for.
        write_replacing(&self.key_path, key_pem.as_bytes(), true)?;
        write_replacing(&self.cert_path, chain_pem.as_bytes(), false)?;
        *self.seen.lock() = stamp(&self.cert_path, &self.key_path);
        let loaded = Arc::new(loaded);
        *self.current.write() = loaded.clone();
        Ok(loaded)
    }

    /// Serves a TLS-ALPN-01 challenge certificate for `host` (RFC 8737: self-signed, for that
    /// name, with the critical acmeIdentifier extension holding the SHA-256 digest of the key
    /// authorization) until `end_challenge`.
    pub fn begin_challenge(&self, host: &str, digest: &[u8]) -> Result<(), String> {
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).map_err(|e| e.to_string())?;
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let signing = self
            .provider
            .key_provider
            .load_private_key(PrivateKeyDer::try_from(key.serialize_der()).map_err(str::to_owned)?)
            .map_err(|e| e.to_string())?;
        let certified = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing));
        self.challenges.write().insert(host.to_ascii_lowercase(), certified);
        Ok(())
    }

    pub fn end_challenge(&self, host: &str) {
        self.challenges.write().remove(&host.to_ascii_lowercase());
    }

    pub fn current(&self) -> Arc<Loaded> {
        self.current.read().clone()
    }

    /// Reads the files again when they changed; a good new pair replaces the one served.
    /// Answers whether it did, or why the new pair was refused.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamp(&self.cert_path, &self.key_path);
        if now == *self.seen.lock() {
            return Ok(false);
        }
        // Not read again every interval, also when refused: only when the files change once more.
        *self.seen.lock() = now;
        let (loaded, _) = read_pair(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write() = Arc::new(loaded);
        Ok(true)
    }

    /// A TLS acceptor serving whatever certificate is current at each handshake.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        // `acme-tls/1` last: only the CA's validation asks for it.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// Looks at the files every `interval` until `cancel`, logging what happens.
    pub async fn watch(self: Arc<Self>, interval: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            let this = self.clone();
            match tokio::task::spawn_blocking(move || this.reload_if_changed()).await {
                Ok(Ok(true)) => {
                    let now = self.current();
                    tracing::info!(names = ?now.names, expires = %date(now.not_after), "TLS certificate reloaded");
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "the new TLS certificate was refused; the one before is still served")
                }
                Err(e) => tracing::error!(error = %e, "reloading the TLS certificate panicked"),
            }
        }
    }
}

#[derive(Debug)]
struct Resolver(Arc<Certificates>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let wants_challenge = hello.alpn().is_some_and(|mut p| p.any(|p| p == ACME_TLS_ALPN));
        if wants_challenge {
            // Only ever the challenge certificate: nothing else may be served under acme-tls/1.
            let host = hello.server_name()?.to_ascii_lowercase();
            return self.0.challenges.read().get(&host).cloned();
        }
        Some(self.0.current.read().key.clone())
    }
}

/// Whether a TLS connection was made for the CA's TLS-ALPN-01 validation (closed after the
/// handshake; it carries no HTTP).
pub fn is_acme_challenge<IO>(stream: &tokio_rustls::server::TlsStream<IO>) -> bool {
    stream.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN)
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| std::fs::metadata(p).map_or((None, 0), |m| (m.modified().ok(), m.len()));
    [one(cert), one(key)]
}

/// Writes `path` whole through a temporary file beside it (readable by the owner only for a key).
fn write_replacing(path: &Path, bytes: &[u8], private: bool) -> Result<(), TlsError> {
    let fail = |e| TlsError::Read(path.to_owned(), e);
    let tmp = path.with_extension("new");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = options.open(&tmp).map_err(fail)?;
        f.write_all(bytes).map_err(fail)?;
        f.sync_all().map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)
}

/// The pair in the files, and their stamp (taken first: a change made while reading is seen at
/// the next look).
fn read_pair(cert_path: &Path, key_path: &Path, provider: &CryptoProvider) -> Result<(Loaded, Stamp), TlsError> {
    let stamp = stamp(cert_path, key_path);
    let cert_pem = std::fs::read(cert_path).map_err(|e| TlsError::Read(cert_path.to_owned(), e))?;
    let key_pem = std::fs::read(key_path).map_err(|e| TlsError::Read(key_path.to_owned(), e))?;
    Ok((check_pair(&cert_pem, &key_pem, cert_path, key_path, provider)?, stamp))
}

/// Checks a certificate chain and key (PEM); the paths name them in errors.
fn check_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Loaded, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem).filter_map(Result::ok).collect();
    let Some(leaf) = chain.first() else { return Err(TlsError::NoCertificate(cert_path.to_owned())) };
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey(key_path.to_owned()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::BadKey(key_path.to_owned(), e.to_string()))?;
    let (not_before, not_after, names) =
        leaf_facts(leaf).map_err(|e| TlsError::BadCertificate(cert_path.to_owned(), e))?;
    let certified = CertifiedKey::new(chain, signing);
    if certified.keys_match().is_err() {
        return Err(TlsError::KeyMismatch { key: key_path.to_owned(), cert: cert_path.to_owned() });
    }
    let now = crate::storage::now_ms() / 1000;
    if not_after < now {
        return Err(TlsError::Expired(cert_path.to_owned(), date(not_after)));
    }
    if not_before > now {
        return Err(TlsError::NotYetValid(cert_path.to_owned(), date(not_before)));
    }
    Ok(Loaded { key: Arc::new(certified), not_before, not_after, placeholder: false, names })
}

/// (not before, not after, names) of a certificate.
fn leaf_facts(der: &CertificateDer<'_>) -> Result<(i64, i64, Vec<String>), String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
    let validity = cert.validity();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => names.push((*n).to_owned()),
                GeneralName::IPAddress(b) if b.len() == 4 => {
                    names.push(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string())
                }
                GeneralName::IPAddress(b) if b.len() == 16 => {
                    names.push(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string())
                }
                _ => {}
            }
        }
    }
    Ok((validity.not_before.timestamp(), validity.not_after.timestamp(), names))
}

/// A Unix time in seconds as a date for messages.
fn date(secs: i64) -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
}
