//! The dashboard's updates (`/_hearth/admin/v1/updates`) as the server runs them: the headless
//! server refers to its package manager; with an app updater, checks happen on the first start,
//! then at most daily (also across restarts), on demand, never when switched off, and only
//! through the outbound address policy. The desktop app's real updater (Tauri's, with signed
//! packages) is exercised end to end by tests/packaging/desktop.sh; here a small updater reads
//! a manifest from a real loopback server, so the service's rules are what is tested.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{TestServer, assert_err, test_config};
use futures::future::BoxFuture;
use hearth_server::updates::{AppUpdater, Network, Release, Updates};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn admin(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let running = s.running.as_ref().unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}/_hearth/admin/v1/{path}", running.admin_addr()))
        .bearer_auth(running.admin_token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

/// Serves `{"version": "9.9.9", "notes": ...}` and counts the requests.
async fn manifest_server() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/latest.json", listener.local_addr().unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let body = json!({"version": "9.9.9", "notes": "Faster sync; a fix for invites."}).to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, asked)
}

/// An app updater that reads the manifest through the server's outbound policy, and whose
/// installs fail (recording what was asked).
struct ManifestReader {
    installs: Mutex<Vec<String>>,
}

impl AppUpdater for ManifestReader {
    fn check(&self, net: Network) -> BoxFuture<'static, Result<Option<Release>, String>> {
        Box::pin(async move {
            let url = net.manifest_url().cloned().ok_or("no manifest address")?;
            net.check_url(&url)?;
            let client = net.client(reqwest::Client::builder()).build().map_err(|e| e.to_string())?;
            let m: Value =
                client.get(url).send().await.map_err(|e| format!("{e:?}"))?.json().await.map_err(|e| e.to_string())?;
            Ok(Some(Release {
                version: m["version"].as_str().unwrap().to_owned(),
                notes: m["notes"].as_str().map(str::to_owned),
                date: None,
            }))
        })
    }

    fn install(&self, _net: Network, version: String) -> BoxFuture<'static, Result<(), String>> {
        self.installs.lock().unwrap().push(version);
        Box::pin(async { Err("The test's updater installs nothing.".to_owned()) })
    }
}

async fn wait_for_status(s: &TestServer, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100 {
        let (_, status) = admin(s, Method::GET, "updates", None).await;
        if f(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {:?}", admin(s, Method::GET, "updates", None).await);
}

#[tokio::test]
async fn the_headless_server_says_its_package_manager_updates_it() {
    let s = TestServer::start().await;
    let (status, body) = admin(&s, Method::GET, "updates", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["supported"], false, "{body}");
    assert!(body["how"].as_str().unwrap().contains("apt upgrade"), "{body}");
    assert_eq!(body["current_version"], hearth_server::VERSION);
    assert_err(&admin(&s, Method::POST, "updates/check", None).await, 400, "M_UNRECOGNIZED");
    assert_err(&admin(&s, Method::PUT, "updates", Some(json!({"checks": false}))).await, 400, "M_UNRECOGNIZED");
    assert_err(
        &admin(&s, Method::POST, "updates/install", Some(json!({"version": "9.9.9"}))).await,
        400,
        "M_UNRECOGNIZED",
    );
}

#[tokio::test]
async fn updates_are_checked_at_most_daily_on_demand_and_only_where_the_policy_allows() {
    let (url, asked) = manifest_server().await;
    let reader = Arc::new(ManifestReader { installs: Mutex::new(Vec::new()) });
    // Made once, as the app does: it outlives the server's restarts.
    let updates = Updates::new(reader.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = |allow_loopback: bool| {
        let mut c = test_config(dir.path());
        c.updates = Some(updates.clone());
        c.update_manifest_url = Some(url.clone());
        if allow_loopback {
            c.ip_range_whitelist = vec!["127.0.0.1/32".to_owned()];
        }
        c
    };

    // The first start asks at once; the policy refuses a loopback address it was not told about.
    let mut s = TestServer::start_in(tempfile::tempdir().unwrap(), config(false)).await;
    let first = wait_for_status(&s, "the first check", |b| b["last_checked"].is_i64()).await;
    assert!(first["last_error"].as_str().unwrap().contains("127.0.0.1"), "{first}");
    assert!(first["available"].is_null());
    assert_eq!(asked.load(Ordering::SeqCst), 0, "nothing was sent to a refused address");
    let checked_at = first["last_checked"].as_i64().unwrap();
    assert_eq!(first["next_check"].as_i64().unwrap(), checked_at + 24 * 3600 * 1000, "{first}");
    s.stop().await;

    // Started again (allowed now): the day has not passed, so it does not ask on its own.
    let mut s = TestServer::start_in(tempfile::tempdir().unwrap(), config(true)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 0, "checked at most daily, also across restarts");
    let (_, status) = admin(&s, Method::GET, "updates", None).await;
    assert_eq!(status["last_checked"], checked_at, "{status}");

    // On demand: the manifest is read, with what changed.
    let (code, status) = admin(&s, Method::POST, "updates/check", None).await;
    assert_eq!(code, 200);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    assert_eq!(status["available"]["version"], "9.9.9", "{status}");
    assert_eq!(status["available"]["notes"], "Faster sync; a fix for invites.");
    assert!(status["last_error"].is_null(), "{status}");

    // Installing: only the version the dashboard was shown; a failure is reported.
    assert_err(
        &admin(&s, Method::POST, "updates/install", Some(json!({"version": "10.0.0"}))).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(&admin(&s, Method::POST, "updates/install", Some(json!({}))).await, 400, "M_MISSING_PARAM");
    let (code, started) = admin(&s, Method::POST, "updates/install", Some(json!({"version": "9.9.9"}))).await;
    assert_eq!(code, 202, "{started}");
    let failed = wait_for_status(&s, "the install to fail", |b| b["install"]["state"] == "failed").await;
    assert_eq!(failed["install"]["error"], "The test's updater installs nothing.");
    assert_eq!(*reader.installs.lock().unwrap(), vec!["9.9.9".to_owned()]);

    // Switched off: no next check, and still off after a restart.
    let (code, off) = admin(&s, Method::PUT, "updates", Some(json!({"checks": false}))).await;
    assert_eq!(code, 200);
    assert_eq!(off["checks"], false);
    assert!(off["next_check"].is_null());
    assert_err(&admin(&s, Method::PUT, "updates", Some(json!({"checks": "no"}))).await, 400, "M_BAD_JSON");
    s.stop().await;
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), config(true)).await;
    let (_, status) = admin(&s, Method::GET, "updates", None).await;
    assert_eq!(status["checks"], false, "{status}");
    // What the last check found stays visible across the restart.
    assert_eq!(status["available"]["version"], "9.9.9");
    assert_eq!(asked.load(Ordering::SeqCst), 1, "switched off: never asked on its own");
}

#[tokio::test]
async fn the_status_page_shows_the_update_and_what_changed_and_takes_the_switch() {
    let (url, _asked) = manifest_server().await;
    let reader = Arc::new(ManifestReader { installs: Mutex::new(Vec::new()) });
    let s = TestServer::start_with(|c| {
        c.updates = Some(Updates::new(reader.clone()));
        c.update_manifest_url = Some(url.clone());
        c.ip_range_whitelist = vec!["127.0.0.1/32".to_owned()];
    })
    .await;
    wait_for_status(&s, "the first check", |b| b["available"]["version"] == "9.9.9").await;
    let got = common::ui_flow("updates", &s.running.as_ref().unwrap().admin_url(), "9.9.9").await;
    assert!(got["reason"].as_str().unwrap().contains("The test's updater installs nothing."), "{got}");
    assert_eq!(got["checks"], false, "the switch turned off: {got}");
    let (_, status) = admin(&s, Method::GET, "updates", None).await;
    assert_eq!(status["checks"], false, "{status}");
    assert_eq!(*reader.installs.lock().unwrap(), vec!["9.9.9".to_owned()]);
}
