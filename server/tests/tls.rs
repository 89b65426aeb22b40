//! Built-in HTTPS: a listener with `tls = true` serves the certificate of
//! `tls_certificate_path` / `tls_private_key_path` over TLS (HTTP/2 and HTTP/1.1 by ALPN), takes
//! a renewed certificate without a restart and without ending open requests, and refuses bad
//! pairs (a key of another certificate, an expired certificate) while serving what it had.
//! Clients trust only a test CA made here.

mod common;

use std::time::Duration;

use common::{TestServer, test_config};
use hearth_server::Homeserver;
use serde_json::json;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// A test CA that signs certificates for 127.0.0.1.
struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate and its key, as PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Hearth TLS test CA");
        Self { issuer: rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap() }
    }

    /// A certificate for 127.0.0.1 and localhost, valid from `from` to `until` (years).
    fn leaf_valid(&self, from: i32, until: i32) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }

    fn leaf(&self) -> Leaf {
        self.leaf_valid(2020, 2099)
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// An HTTPS client that trusts this CA only.
    fn client(&self, http1_only: bool) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.pem().as_bytes()).unwrap()])
            .timeout(Duration::from_secs(60));
        if http1_only {
            b = b.http1_only();
        }
        b.build().unwrap()
    }

    /// The certificate a new TLS connection to `port` is given.
    async fn served(&self, port: u16) -> CertificateDer<'static> {
        let chain = common::tls_handshake(port, "127.0.0.1", vec![self.issuer.der().clone()])
            .await
            .expect("a TLS handshake trusting only the test CA");
        chain[0].clone()
    }
}

fn write(dir: &std::path::Path, leaf: &Leaf) {
    std::fs::write(dir.join("cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &leaf.key_pem).unwrap();
}

/// Hearth with one HTTPS listener whose files are in `dir`, looked at every 100 ms.
async fn https_hearth(ca: &Ca, dir: tempfile::TempDir) -> TestServer {
    let certs = dir.path().join("tls");
    let mut c = test_config(dir.path());
    c.listeners[0].tls = true;
    c.tls_certificate_path = Some(certs.join("cert.pem"));
    c.tls_private_key_path = Some(certs.join("key.pem"));
    c.tls_reload_interval = hearth_server::config::HumanDuration(Duration::from_millis(100));
    let running = Homeserver::start(c).await.expect("starts with HTTPS");
    let base = format!("https://127.0.0.1:{}", running.local_addr().port());
    TestServer { running: Some(running), base, dir, http: ca.client(false) }
}

fn tls_dir(leaf: &Leaf) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("tls")).unwrap();
    write(&dir.path().join("tls"), leaf);
    dir
}

/// Waits (up to 10 s) until new connections to `port` get `want`.
async fn until_served(ca: &Ca, port: u16, want: &CertificateDer<'static>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ca.served(port).await != *want {
        assert!(std::time::Instant::now() < deadline, "the new certificate was never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_https_listener_serves_http2_and_http1_with_the_configured_certificate() {
    let ca = Ca::new();
    let leaf = ca.leaf();
    let s = https_hearth(&ca, tls_dir(&leaf)).await;
    let port = s.running.as_ref().unwrap().local_addr().port();
    assert_eq!(ca.served(port).await, leaf.der);

    let resp = ca.client(false).get(format!("{}/_matrix/client/versions", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "HTTP/2 chosen by ALPN");
    let resp = ca.client(true).get(format!("{}/_matrix/client/versions", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
    // Clients are told to come back over HTTPS (no public_baseurl: the address bound).
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert!(wk["m.homeserver"]["base_url"].as_str().unwrap().starts_with("https://"), "{wk}");
    // Plain HTTP on the HTTPS port gets no answer.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/_matrix/client/versions")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_open_requests_go_on() {
    let ca = Ca::new();
    let first = ca.leaf();
    let s = https_hearth(&ca, tls_dir(&first)).await;
    let port = s.running.as_ref().unwrap().local_addr().port();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let (_, first_sync) = s.get("/_matrix/client/v3/sync?timeout=0", Some(&bob)).await;
    let since = first_sync["next_batch"].as_str().unwrap().to_owned();

    // Bob long-polls on a connection made with the first certificate.
    let poll = {
        let (http, url, bob) =
            (s.http.clone(), format!("{}/_matrix/client/v3/sync?timeout=20000&since={since}", s.base), bob.clone());
        tokio::spawn(
            async move { http.get(url).bearer_auth(bob).send().await.unwrap().json::<serde_json::Value>().await },
        )
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let renewed = ca.leaf();
    write(&s.dir.path().join("tls"), &renewed);
    until_served(&ca, port, &renewed.der).await;

    // New requests over the renewed certificate, and the open long-poll answers.
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "renewed"}),
        )
        .await;
    assert_eq!(st, 200);
    let got = tokio::time::timeout(Duration::from_secs(20), poll).await.unwrap().unwrap().expect("the /sync answer");
    let events = &got["rooms"]["join"][&room]["timeline"]["events"];
    assert!(events.as_array().unwrap().iter().any(|e| e["content"]["body"] == "renewed"), "{got}");
}

#[tokio::test]
async fn a_bad_new_certificate_is_refused_and_the_one_before_still_served() {
    let ca = Ca::new();
    let good = ca.leaf();
    let s = https_hearth(&ca, tls_dir(&good)).await;
    let port = s.running.as_ref().unwrap().local_addr().port();
    let tls = s.dir.path().join("tls");

    // A key that belongs to another certificate.
    let other = ca.leaf();
    std::fs::write(tls.join("key.pem"), &other.key_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ca.served(port).await, good.der, "a mismatched key is not taken");
    // An expired certificate with its own key.
    let expired = ca.leaf_valid(2020, 2021);
    write(&tls, &expired);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ca.served(port).await, good.der, "an expired certificate is not taken");
    // Not PEM at all.
    std::fs::write(tls.join("cert.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ca.served(port).await, good.der);
    let (st, _) = s.get("/_matrix/client/versions", None).await;
    assert_eq!(st, 200, "serving all along");

    // A good pair after the bad ones is taken.
    let fixed = ca.leaf();
    write(&tls, &fixed);
    until_served(&ca, port, &fixed.der).await;
}

#[tokio::test]
async fn start_refuses_a_certificate_and_key_that_do_not_belong_together() {
    let ca = Ca::new();
    let (one, two) = (ca.leaf(), ca.leaf());
    let dir = tls_dir(&one);
    std::fs::write(dir.path().join("tls/key.pem"), &two.key_pem).unwrap();
    let mut c = test_config(dir.path());
    c.listeners[0].tls = true;
    c.tls_certificate_path = Some(dir.path().join("tls/cert.pem"));
    c.tls_private_key_path = Some(dir.path().join("tls/key.pem"));
    let err = Homeserver::start(c).await.err().expect("refused").to_string();
    assert!(err.contains("does not belong to the certificate"), "{err}");

    // tls = true without the files: the config says what to set.
    let text = "server_name = \"example.test\"\n[[listeners]]\nport = 8448\ntls = true\n";
    let (config, _) = hearth_server::Config::from_toml(text, std::path::Path::new("homeserver.toml")).unwrap();
    let err = config.validate().expect_err("refused").to_string();
    assert!(err.contains("tls_certificate_path"), "{err}");
}
