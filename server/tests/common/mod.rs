//! A real server on a random loopback port with a temporary data folder, driven over real HTTP.
#![allow(dead_code)] // each test binary uses a different subset

pub mod binary;

use std::time::Duration;

use hearth_server::{
    Config, Homeserver, Running,
    config::{RateLimit, SecretStoreChoice},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const SERVER_NAME: &str = "hearth.test";

/// Percent-encodes everything but unreserved characters (for IDs and JSON in URLs).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct TestServer {
    pub running: Option<Running>,
    pub base: String,
    pub dir: TempDir,
    pub http: reqwest::Client,
}

/// A config for tests: loopback on port 0, files for secrets, generous rate limits.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c =
        Config { server_name: SERVER_NAME.try_into().unwrap(), data_dir: Some(dir.to_path_buf()), ..Config::default() };
    c.listeners[0].port = 0;
    c.admin.port = 0;
    c.secret_store = SecretStoreChoice::File;
    // Tests that are about a limit set it back; the others act faster than people do.
    for (_, rl) in c.rate_limits_mut() {
        *rl = RateLimit { per_second: 1000.0, burst_count: 1000.0 };
    }
    c.enable_registration = true;
    c.enable_registration_without_verification = true;
    c
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        f(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: TempDir, config: Config) -> Self {
        // Server errors show up in the output of a failing test.
        let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("warn,hearth_server=info").try_init();
        let running = Homeserver::start(config).await.expect("server starts");
        let base = format!("http://{}", running.local_addr());
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        TestServer { running: Some(running), base, dir, http }
    }

    /// Waits (briefly) for the server to ask for a restart, as it does after a settings change,
    /// and restarts it as the binary would: same addresses, settings read afresh.
    pub async fn restart_when_asked(&mut self) {
        let running = self.running.take().expect("running");
        tokio::time::timeout(Duration::from_secs(5), running.restart_requested())
            .await
            .expect("the server asked for a restart");
        self.running = Some(running.restart().await.expect("restarts"));
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    /// Sends a request; `body` None sends no body. Returns status and parsed JSON body
    /// (Null when the body is empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        (status, json)
    }

    pub async fn raw(&self, method: Method, path: &str, token: Option<&str>, body: Vec<u8>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete_call(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, None).await
    }

    /// createRoom with `body`, which must succeed; the room's ID.
    pub async fn create_room(&self, token: &str, body: Value) -> String {
        let (st, v) = self.post("/_matrix/client/v3/createRoom", Some(token), body).await;
        assert_eq!(st, 200, "{v}");
        v["room_id"].as_str().unwrap().to_owned()
    }

    /// Sends a text message whose body is also its transaction ID, which must succeed; its ID.
    pub async fn say(&self, token: &str, room: &str, body: &str) -> String {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{body}");
        let (st, v) = self.put(&path, Some(token), serde_json::json!({"msgtype": "m.text", "body": body})).await;
        assert_eq!(st, 200, "{v}");
        v["event_id"].as_str().unwrap().to_owned()
    }

    /// DELETE with a JSON body (Synapse's admin API takes one).
    pub async fn delete(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, Some(body)).await
    }

    /// Registers through the m.login.dummy flow; returns the register response.
    pub async fn register(&self, username: &str, password: &str) -> Value {
        let (s, first) =
            self.post("/_matrix/client/v3/register", None, json!({"username": username, "password": password})).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{first}");
        let session = first["session"].as_str().unwrap().to_owned();
        let (s, body) = self
            .post(
                "/_matrix/client/v3/register",
                None,
                json!({"username": username, "password": password, "auth": {"type": "m.login.dummy", "session": session}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body
    }

    /// Registers and returns the access token.
    pub async fn user(&self, username: &str) -> String {
        self.register(username, "password1").await["access_token"].as_str().unwrap().to_owned()
    }

    /// Synapse's shared-secret registration, as `register_new_matrix_user` does it.
    pub async fn shared_secret_register(&self, user: &str, password: &str, admin: bool) -> (StatusCode, Value) {
        use hmac::{Hmac, Mac};
        let secret = self.running.as_ref().unwrap().registration_shared_secret().to_owned();
        let (_, n) = self.get("/_synapse/admin/v1/register", None).await;
        let nonce = n["nonce"].as_str().unwrap();
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        let kind = if admin { "admin" } else { "notadmin" };
        mac.update(format!("{nonce}\0{user}\0{password}\0{kind}").as_bytes());
        let mac = hex::encode(mac.finalize().into_bytes());
        let body = json!({"nonce": nonce, "username": user, "password": password, "admin": admin, "mac": mac});
        self.post("/_synapse/admin/v1/register", None, body).await
    }

    pub async fn login(&self, user: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/_matrix/client/v3/login",
            None,
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}),
        )
        .await
    }

    /// Signs `user` in with the test password; answers the access token.
    pub async fn sign_in(&self, user: &str) -> String {
        let (st, login) = self.login(user, "password1").await;
        assert_eq!(st, StatusCode::OK, "{user} signs in with the password: {login}");
        login["access_token"].as_str().unwrap().to_owned()
    }
}

/// Restarts `running` whenever it asks to, as the `hearth` binary does, until the answered
/// sender is sent to or dropped; answers that sender and the supervisor's task.
pub fn restarting(running: hearth_server::Running) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let supervisor = tokio::spawn(async move {
        let mut running = running;
        tokio::pin!(stopped);
        loop {
            let restart = running.restart_requested();
            tokio::select! {
                _ = &mut stopped => break,
                () = restart => running = running.restart().await.expect("restarts"),
            }
        }
        running.stop().await;
    });
    (stop, supervisor)
}

/// Every file under `dir`, in sub-folders too (none when it is missing).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Asserts a Matrix error with this status and errcode.
#[track_caller]
pub fn assert_err(got: &(StatusCode, Value), status: u16, errcode: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    assert_eq!(got.1["errcode"], errcode, "{}", got.1);
    assert!(got.1["error"].is_string(), "error message missing: {}", got.1);
}

/// Runs one flow of tests/ui/flows.mjs in headless Chromium against the dashboard at
/// `admin_url`; answers the JSON line it printed.
pub async fn ui_flow(flow: &str, admin_url: &str, arg: &str) -> Value {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/ui");
    let shots = dir.join("screenshots");
    let args = vec!["flows.mjs".to_owned(), flow.to_owned(), admin_url.to_owned(), arg.to_owned()];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").args(&args).current_dir(&dir).env("SCREENSHOTS", shots).output()
    })
    .await
    .unwrap()
    .expect("node runs (install Node.js, then `npm ci` in tests/ui)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "flows.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap()
}

/// A TLS handshake with 127.0.0.1:`port` for `name`, trusting only the CA certificates in `roots`
/// (DER); answers the certificate chain the server gave, or the handshake's error.
pub async fn tls_handshake(
    port: u16,
    name: &str,
    roots: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
) -> Result<Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>, String> {
    use std::sync::Arc;
    use tokio_rustls::rustls;
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let server = rustls::pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
    let tls =
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server, tcp).await.map_err(|e| e.to_string())?;
    Ok(tls.get_ref().1.peer_certificates().map(<[_]>::to_vec).unwrap_or_default())
}
