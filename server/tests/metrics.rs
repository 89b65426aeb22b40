//! Prometheus metrics (`enable_metrics`): what clients did shows in the counters, read with a
//! Prometheus text-format parser; the endpoint is on the admin listener and on a metrics
//! listener, never on the public one; and (the ignored test, run by the test command with
//! Debian's prometheus unpacked) a real Prometheus scrapes it and `promtool check metrics`
//! finds nothing against Prometheus's naming rules.

mod common;

use std::{net::SocketAddr, path::PathBuf, process::Stdio, time::Duration};

use common::{TestServer, assert_err, test_config};
use hearth_server::{Homeserver, config::Listener};
use prometheus_parse::{Scrape, Value};
use reqwest::StatusCode;
use serde_json::json;

fn with_metrics(c: &mut hearth_server::Config) {
    c.enable_metrics = true;
    c.listeners.push(Listener {
        port: 0,
        bind_addresses: vec!["127.0.0.1".parse().unwrap()],
        kind: "metrics".to_owned(),
        ..Listener::default()
    });
}

async fn scrape_text(addr: SocketAddr) -> (StatusCode, String, String) {
    let resp = reqwest::get(format!("http://{addr}/_synapse/metrics")).await.unwrap();
    let status = resp.status();
    let kind = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let (status, kind, text) = scrape_text(addr).await;
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The value of the one sample of `name` with these labels (0 when there is none).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{name} is not a single value: {other:?}"),
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {} samples", found.len());
    found.first().copied().unwrap_or(0.0)
}

const SEND: &str = "/_matrix/client/*/rooms/:room_id/send/:event_type/:txn_id";

#[tokio::test]
async fn metrics_count_what_clients_did_and_stay_off_the_public_listener() {
    let s = TestServer::start_with(with_metrics).await;
    let running = s.running.as_ref().unwrap();
    let admin = running.admin_addr();
    let metrics_addr = running.metrics_addrs()[0];
    let alice = s.user("alice").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();

    let before = scrape(admin).await;
    assert_eq!(value(&before, "hearth_federation_queued_edus", &[]), 0.0);
    // A to-device message for a server that does not exist waits in the outbox.
    let to_device = json!({"messages": {"@bob:nowhere.invalid": {"DEVICE": {"hello": true}}}});
    assert_eq!(s.put("/_matrix/client/v3/sendToDevice/m.test/m1", Some(&alice), to_device).await.0, 200);
    assert_eq!(value(&scrape(admin).await, "hearth_federation_queued_edus", &[]), 1.0);
    for i in 0..5 {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t{i}");
        let (code, _) = s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": "hi"})).await;
        assert_eq!(code, 200);
    }
    // The same transaction again is answered from the first send, not written twice.
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t0");
    assert_eq!(s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": "hi"})).await.0, 200);
    // Paths no route knows share one series, whatever they are.
    for junk in ["/_matrix/client/v3/nonsense/1", "/_matrix/client/v3/nonsense/2", "/whatever"] {
        assert_eq!(s.get(junk, None).await.0, 404);
    }
    let (sync_code, sync) = s.get("/_matrix/client/v3/sync", Some(&alice)).await;
    assert_eq!(sync_code, 200);
    // A long poll, open while the next scrape is taken.
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    let poll = {
        let (http, base, token) = (s.http.clone(), s.base.clone(), alice.clone());
        tokio::spawn(async move {
            http.get(format!("{base}/_matrix/client/v3/sync?since={since}&timeout=30000"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let mut after = scrape(admin).await;
    for _ in 0..50 {
        if value(&after, "hearth_sync_connections", &[("kind", "sync")]) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = scrape(admin).await;
    }
    assert_eq!(value(&after, "hearth_sync_connections", &[("kind", "sync")]), 1.0);

    let sends = |m: &Scrape| value(m, "hearth_http_requests_total", &[("endpoint", SEND), ("code", "200")]);
    assert_eq!(
        sends(&after) - sends(&before),
        6.0,
        "{:?}",
        after
            .samples
            .iter()
            .filter(|x| x.metric == "hearth_http_requests_total")
            .map(|x| &x.labels)
            .collect::<Vec<_>>()
    );
    let written = |m: &Scrape| value(m, "hearth_events_persisted_total", &[("origin", "local")]);
    assert_eq!(written(&after) - written(&before), 5.0, "the repeated transaction is not a new event");
    let latency = |m: &Scrape| value(m, "hearth_http_request_duration_seconds_count", &[("endpoint", SEND)]);
    assert_eq!(latency(&after) - latency(&before), 6.0);
    assert_eq!(value(&after, "hearth_http_requests_total", &[("endpoint", "unmatched"), ("code", "404")]), 3.0);
    assert!(
        !after.samples.iter().any(|x| x.labels.values().any(|v| v.contains("nonsense"))),
        "a client's path became a label"
    );
    assert_eq!(value(&after, "hearth_users", &[]), 1.0);
    assert!(value(&after, "hearth_event_commit_seconds_count", &[]) >= 5.0);
    assert!(value(&after, "hearth_db_write_wait_seconds_count", &[]) >= 1.0);
    assert!(value(&after, "hearth_database_size_bytes", &[]) > 0.0);
    assert_eq!(value(&after, "hearth_build_info", &[("version", hearth_server::VERSION)]), 1.0);
    assert_eq!(
        value(&after, "hearth_db_connections", &[("pool", "write"), ("state", "busy")])
            + value(&after, "hearth_db_connections", &[("pool", "write"), ("state", "idle")]),
        1.0
    );
    if cfg!(target_os = "linux") {
        let rss = value(&after, "process_resident_memory_bytes", &[]);
        assert!(rss > 1e6, "resident memory {rss}");
        assert!(value(&after, "process_cpu_seconds_total", &[]) > 0.0);
    }

    // The metrics listener serves the same, and nothing else.
    let from_listener = scrape(metrics_addr).await;
    assert!(written(&from_listener) >= written(&after));
    let other = reqwest::get(format!("http://{metrics_addr}/_matrix/client/versions")).await.unwrap();
    assert_eq!(other.status(), 404);
    // Never on the public listener, where anyone could see who is busy when.
    assert_err(&s.get("/_synapse/metrics", None).await, 404, "M_UNRECOGNIZED");
    assert_err(&s.get("/metrics", None).await, 404, "M_UNRECOGNIZED");

    // The long poll ends when a message arrives.
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t9");
    assert_eq!(s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": "wake"})).await.0, 200);
    assert_eq!(poll.await.unwrap(), 200);
    let last = scrape(admin).await;
    assert_eq!(value(&last, "hearth_sync_connections", &[("kind", "sync")]), 0.0);
}

#[tokio::test]
async fn metrics_are_off_unless_enabled_and_a_metrics_listener_needs_them() {
    let s = TestServer::start().await;
    let admin = s.running.as_ref().unwrap().admin_addr();
    let (status, _, body) = scrape_text(admin).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("M_UNRECOGNIZED"), "{body}");

    let dir = tempfile::tempdir().unwrap();
    let mut c = test_config(dir.path());
    with_metrics(&mut c);
    c.enable_metrics = false;
    let e = Homeserver::start(c).await.err().expect("refused").to_string();
    assert!(e.contains("enable_metrics"), "{e}");
}

fn prometheus_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("HEARTH_PROMETHEUS_DIR")
            .expect("HEARTH_PROMETHEUS_DIR: Debian's prometheus package unpacked (scripts/test.sh does it)"),
    )
}

/// Debian's Prometheus scrapes the metrics listener, and what it stored is what Hearth counted;
/// promtool's lint (names, units, suffixes, help) finds nothing in the text.
#[tokio::test]
#[ignore = "needs Prometheus: run by scripts/test.sh with HEARTH_PROMETHEUS_DIR"]
async fn prometheus_scrapes_hearth_and_promtool_finds_nothing_to_lint() {
    let bin = prometheus_dir().join("usr/bin");
    let s = TestServer::start_with(with_metrics).await;
    let running = s.running.as_ref().unwrap();
    let target = running.metrics_addrs()[0];
    let alice = s.user("alice").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    for i in 0..3 {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/p{i}");
        assert_eq!(s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": "hi"})).await.0, 200);
    }
    let (_, _, text) = scrape_text(target).await;

    let mut lint = tokio::process::Command::new(bin.join("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = lint.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).await.unwrap();
    }
    let out = lint.wait_with_output().await.unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {said}");

    let expected = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let written = value(&expected, "hearth_events_persisted_total", &[("origin", "local")]);
    assert!(written >= 3.0);

    let dir = tempfile::tempdir().unwrap();
    let web = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: hearth\n    metrics_path: /_synapse/metrics\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let mut prometheus = tokio::process::Command::new(bin.join("prometheus"))
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let query = |q: &str| {
        let url = format!("http://{web}/api/v1/query?query={}", common::urlencode(q));
        async move {
            let resp = reqwest::get(url).await.ok()?;
            let body: serde_json::Value = resp.json().await.ok()?;
            let v = body["data"]["result"][0]["value"][1].as_str()?.parse::<f64>().ok()?;
            Some(v)
        }
    };
    let mut stored = None;
    for _ in 0..150 {
        if query("up{job=\"hearth\"}").await == Some(1.0) {
            stored = query("hearth_events_persisted_total{job=\"hearth\",origin=\"local\"}").await;
            if stored.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    prometheus.kill().await.unwrap();
    assert_eq!(stored, Some(written), "what Prometheus stored from its scrape");
}
