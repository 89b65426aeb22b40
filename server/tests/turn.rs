//! The Reach page's TURN server, checked with the real thing: the coturn configuration the
//! dashboard writes runs in Debian's coturn (`turnserver`), the credentials Hearth then hands
//! out (`/voip/turnServer`) relay packets through it (`turnutils_uclient` to a
//! `turnutils_peer`), and the configuration refuses to relay into private networks.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::TestServer;
use serde_json::{Value, json};

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn admin(s: &TestServer, method: reqwest::Method, body: Option<Value>) -> (u16, Value) {
    let running = s.running.as_ref().unwrap();
    let mut req = s
        .http
        .request(method, format!("http://{}/_hearth/admin/v1/turn", running.admin_addr()))
        .bearer_auth(running.admin_token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Runs coturn on `config` plus the lines a test on loopback needs; waits until it listens.
fn coturn(dir: &Path, config: &str, extra: &str) -> Killed {
    let path = dir.join("turnserver.conf");
    let text = format!(
        "{config}\n# Test only: loopback, files in the test's folder.\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1\n\
         pidfile={dir}/turnserver.pid\nuserdb={dir}/turndb\nlog-file=stdout\nsimple-log\n{extra}\n",
        dir = dir.display()
    );
    std::fs::write(&path, text).unwrap();
    let child = Command::new("turnserver")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (Debian's coturn) is installed; scripts/test.sh installs it");
    // It listens on TCP on the same port as UDP: once that answers, it is ready (a fixed wait
    // was too short on a busy machine).
    let port = config
        .lines()
        .find_map(|l| l.strip_prefix("listening-port="))
        .and_then(|p| p.trim().parse::<u16>().ok())
        .expect("the configuration names its port");
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "coturn did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Killed(child)
}

/// Sends a few packets through the relay to an echo peer; returns turnutils_uclient's output
/// (tried again when a run said nothing at all: UDP on a busy machine can lose the first try).
fn relay(port: u16, peer_port: u16, user: &str, password: &str) -> String {
    let mut out = String::new();
    for _ in 0..3 {
        let run = Command::new("timeout")
            .args(["15", "turnutils_uclient", "-u", user, "-w", password, "-p", &port.to_string()])
            .args(["-n", "3", "-m", "1", "-e", "127.0.0.1", "-r", &peer_port.to_string(), "127.0.0.1"])
            .output()
            .unwrap();
        out = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
        if !out.trim().is_empty() {
            break;
        }
    }
    out
}

#[tokio::test]
#[ignore = "needs Debian's coturn (turnserver, turnutils_*): scripts/test.sh runs it"]
async fn the_written_coturn_configuration_relays_calls_with_hearths_credentials() {
    let mut s = TestServer::start().await;
    let alice = s.user("alice").await;
    let (_, none) = s.get("/_matrix/client/v3/voip/turnServer", Some(&alice)).await;
    assert_eq!(none, json!({}), "no TURN server yet");
    assert_eq!(admin(&s, reqwest::Method::GET, None).await.1, json!({"uris": [], "credentials": false}));

    // Mistakes are explained, and nothing is stored.
    let (st, v) = admin(&s, reqwest::Method::POST, Some(json!({"host": "turn:bad host"}))).await;
    assert_eq!((st, v["errcode"].as_str()), (400, Some("M_INVALID_PARAM")), "{v}");
    let (st, v) =
        admin(&s, reqwest::Method::POST, Some(json!({"host": "127.0.0.1", "external_ip": "203.0.113.7"}))).await;
    assert_eq!(st, 400, "{v}");

    let port = free_udp_port();
    let ask = json!({"host": "127.0.0.1", "port": port, "min_port": 49300, "max_port": 49340});
    let (st, written) = admin(&s, reqwest::Method::POST, Some(ask.clone())).await;
    assert_eq!(st, 200, "{written}");
    assert_eq!(written["path"], "/etc/turnserver.conf");
    let config = written["text"].as_str().unwrap().to_owned();
    // Writing is not applying.
    assert_eq!(s.get("/_matrix/client/v3/voip/turnServer", Some(&alice)).await.1, json!({}));

    let mut apply = ask.clone();
    apply["apply"] = json!(true);
    let (st, applied) = admin(&s, reqwest::Method::POST, Some(apply)).await;
    assert_eq!((st, &applied["restart"]), (200, &json!(true)), "{applied}");
    assert_eq!(applied["text"], written["text"], "the same secret both times");
    s.restart_when_asked().await;
    let (_, creds) = s.get("/_matrix/client/v3/voip/turnServer", Some(&alice)).await;
    let uris = json!([format!("turn:127.0.0.1:{port}?transport=udp"), format!("turn:127.0.0.1:{port}?transport=tcp")]);
    assert_eq!(creds["uris"], uris, "{creds}");
    let (user, password) = (creds["username"].as_str().unwrap(), creds["password"].as_str().unwrap());
    assert!(user.ends_with(":@alice:hearth.test"), "{user}");

    let dir = tempfile::tempdir().unwrap();
    let peer_port = free_udp_port();
    let _peer = Killed(
        Command::new("turnutils_peer")
            .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    {
        // The relay refuses loopback (and every private range) even once coturn's own loopback
        // rule is lifted: the configuration's denied-peer-ip lines do it.
        let _turn = coturn(dir.path(), &config, "allow-loopback-peers");
        let out = relay(port, peer_port, user, password);
        assert!(out.contains("Forbidden IP"), "relaying to 127.0.0.1 must be refused:\n{out}");
    }
    // With loopback explicitly allowed for the test, Hearth's credentials relay packets through.
    let _turn = coturn(dir.path(), &config, "allow-loopback-peers\nallowed-peer-ip=127.0.0.1");
    let out = relay(port, peer_port, user, password);
    // The client reports its running totals; the last ones count.
    let received = out
        .lines()
        .filter_map(|l| l.split("tot_recv_msgs=").nth(1))
        .filter_map(|n| n.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u32>().ok())
        .max();
    assert!(received.is_some_and(|n| n > 0), "packets relayed with Hearth's credentials:\n{out}");
    let out = relay(port, peer_port, user, "not-the-password");
    assert!(out.contains("Cannot complete Allocation"), "a wrong password is refused:\n{out}");

    // The dashboard now says so, and the secret survived the restart (it is the same config).
    assert_eq!(admin(&s, reqwest::Method::GET, None).await.1, json!({"uris": uris, "credentials": true}));
    let (_, again) = admin(&s, reqwest::Method::POST, Some(ask)).await;
    assert_eq!(again["text"].as_str(), Some(config.as_str()));
}
