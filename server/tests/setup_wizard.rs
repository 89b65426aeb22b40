//! The setup wizard's steps over the admin API (each idempotent and resumable, the server
//! saying which step is next), with the restarts that apply them, checked through the Matrix
//! API afterwards.

mod common;

use common::{TestServer, assert_err};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let running = s.running.as_ref().unwrap();
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}/_hearth/admin/v1{path}", running.admin_addr()))
        .bearer_auth(running.admin_token());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn step(s: &mut TestServer, name: &str, body: Value) -> Value {
    let (st, v) = call(s, Method::POST, &format!("/setup/{name}"), Some(body)).await;
    assert_eq!(st, 200, "{name}: {v}");
    if v["restart"] == true {
        s.restart_when_asked().await;
    }
    v
}

async fn current(s: &TestServer) -> String {
    call(s, Method::GET, "/setup", None).await.1["current"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_wizard_walks_from_welcome_to_done_and_each_answer_takes_effect() {
    let mut s = TestServer::start_with(|c| c.enable_registration = true).await;
    let (_, status) = call(&s, Method::GET, "/status", None).await;
    assert_eq!(status["reachability"]["checks"], Value::Null, "not checked yet");
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["current"], "welcome");
    assert_eq!(state["complete"], false);
    assert_eq!(state["steps"].as_array().unwrap().len(), 7);

    assert_eq!(step(&mut s, "welcome", json!({})).await["current"], "reach");
    // A refresh in the middle resumes at the same step; doing a step again is harmless.
    assert_eq!(current(&s).await, "reach");
    step(&mut s, "welcome", json!({})).await;
    assert_eq!(current(&s).await, "reach");

    // Reach through a tunnel: the public address becomes the tunnel's, and the answer says what
    // to point the tunnel at.
    assert_err(
        &call(
            &s,
            Method::POST,
            "/setup/reach",
            Some(json!({"mode": "tunnel", "public_url": "http://insecure.example"})),
        )
        .await,
        400,
        "M_INVALID_PARAM",
    );
    let v =
        step(&mut s, "reach", json!({"mode": "tunnel", "public_url": "https://family.trycloudflare.example"})).await;
    assert_eq!(v["local_target"], s.base);
    assert!(v["commands"]["cloudflared"].as_str().unwrap().contains(&s.base));
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], "https://family.trycloudflare.example");

    // This computer only, after all.
    step(&mut s, "reach", json!({"mode": "local"})).await;
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], s.base);

    // The server name, confirmed, before any account exists.
    assert_err(
        &call(&s, Method::POST, "/setup/server_name", Some(json!({"server_name": "family.example"}))).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(
        &call(&s, Method::POST, "/setup/server_name", Some(json!({"server_name": "not a name", "confirm": true})))
            .await,
        400,
        "M_INVALID_PARAM",
    );
    step(&mut s, "server_name", json!({"server_name": "Family.Example", "confirm": true})).await;
    assert_eq!(current(&s).await, "admin");

    let v = step(&mut s, "admin", json!({"username": "mum", "password": "a-long-password"})).await;
    assert_eq!(v["user_id"], "@mum:family.example");
    let (st, login) = s.login("mum", "a-long-password").await;
    assert_eq!(st, 200, "{login}");
    assert_eq!(login["user_id"], "@mum:family.example");
    let token = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get("/_synapse/admin/v1/registration_tokens", Some(&token)).await.0,
        200,
        "the first account is an admin"
    );
    // Now the name is permanent.
    let r =
        call(&s, Method::POST, "/setup/server_name", Some(json!({"server_name": "other.example", "confirm": true})))
            .await;
    assert_err(&r, 403, "M_FORBIDDEN");

    step(&mut s, "registration", json!({"policy": "invite"})).await;
    let r = s
        .post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": "stranger", "password": "a-long-password", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    assert_err(
        &call(&s, Method::POST, "/setup/registration", Some(json!({"policy": "open"}))).await,
        400,
        "M_INVALID_PARAM",
    );

    // The check, for this computer only: the address answers; delegation and federation do
    // not apply.
    let v = step(&mut s, "check", json!({})).await;
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks[0]["result"], "pass", "{v}");
    assert_eq!(checks[1]["result"], "skipped", "{v}");
    assert_eq!(checks[2]["result"], "skipped", "this computer only: other servers cannot reach it");
    // The dashboard's status page shows the last check.
    let (_, status) = call(&s, Method::GET, "/status", None).await;
    assert_eq!(status["reachability"]["checks"], v["checks"]);
    assert!(status["reachability"]["checked_ms"].as_i64().unwrap() > 0);

    // Through a tunnel whose address does not exist, with a made-up server name: every check
    // fails and says what to do.
    step(&mut s, "reach", json!({"mode": "tunnel", "public_url": "https://nowhere.hearth-test.invalid"})).await;
    let v = step(&mut s, "check", json!({})).await;
    let checks = v["checks"].as_array().unwrap();
    for c in checks {
        assert_eq!(c["result"], "fail", "{c}");
        assert!(!c["fix"].as_str().unwrap().is_empty(), "{c}");
    }
    assert!(checks[0]["detail"].as_str().unwrap().contains("does not resolve"), "{v}");
    assert!(checks[1]["fix"].as_str().unwrap().contains(".well-known"), "{v}");
    assert!(checks[2]["detail"].as_str().unwrap().contains("port 8448"), "other servers would try port 8448: {v}");
    step(&mut s, "reach", json!({"mode": "local"})).await;

    step(&mut s, "done", json!({})).await;
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["complete"], true);
    assert_eq!(state["server_name"], "family.example");
    assert_err(&call(&s, Method::POST, "/setup/teleport", Some(json!({}))).await, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn the_proxy_reach_mode_sets_an_https_address_for_the_host() {
    let mut s = TestServer::start().await;
    assert_err(
        &call(&s, Method::POST, "/setup/reach", Some(json!({"mode": "proxy", "public_host": "https://x/"}))).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(
        &call(&s, Method::POST, "/setup/reach", Some(json!({"mode": "carrier-pigeon"}))).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(&call(&s, Method::POST, "/setup/reach", Some(json!({}))).await, 400, "M_MISSING_PARAM");
    step(&mut s, "reach", json!({"mode": "proxy", "public_host": "matrix.example.org"})).await;
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], "https://matrix.example.org");
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["reach"]["mode"], "proxy");
    assert_eq!(state["done"], json!(["reach"]));
    assert_eq!(state["current"], "welcome", "the first step not done");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// "Hearth handles HTTPS itself": the answer opens a TLS listener and the plain listener for the
/// CA's challenges (which sends people to HTTPS), asks the CA for a certificate for the host
/// (a stand-in served meanwhile), and is refused in plain words for ports Hearth could not
/// listen on. Another way to connect closes both listeners again.
#[tokio::test]
async fn the_https_mode_opens_its_listeners_and_another_mode_closes_them() {
    let mut s = TestServer::start().await;
    let (tls_port, http_port) = (free_port(), free_port());
    // Nothing listens at this CA: attempts fail in the background, which is not tested here.
    let body = |https_port: u16, http_port: u16, url: &str| {
        json!({"mode": "https", "public_host": "matrix.family.test", "https_port": https_port,
               "http_port": http_port, "acme_url": url})
    };
    let ca = "https://127.0.0.1:9/dir";
    let busy = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let r = call(&s, Method::POST, "/setup/reach", Some(body(busy_port, http_port, ca))).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    assert!(r.1["error"].as_str().unwrap().contains(&format!("already uses port {busy_port}")), "{}", r.1);
    drop(busy);
    let r = call(&s, Method::POST, "/setup/reach", Some(body(tls_port, tls_port, ca))).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    let r = call(&s, Method::POST, "/setup/reach", Some(body(tls_port, http_port, "http://ca.example/dir"))).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    let r = call(&s, Method::POST, "/tls/check", Some(json!({}))).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    // Hearth's own plain listener can be neither: the new listener could not open after the
    // restart.
    let plain = s.running.as_ref().unwrap().local_addr().port();
    for (https_port, http_port) in [(plain, http_port), (tls_port, plain)] {
        let r = call(&s, Method::POST, "/setup/reach", Some(body(https_port, http_port, ca))).await;
        assert_err(&r, 400, "M_INVALID_PARAM");
        assert!(r.1["error"].as_str().unwrap().contains(&format!("already uses port {plain}")), "{}", r.1);
    }

    let v = step(&mut s, "reach", body(tls_port, http_port, ca)).await;
    assert_eq!(v["restart"], true);
    assert_eq!(v["https"]["host"], "matrix.family.test");
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], "https://matrix.family.test");
    let (_, tls) = call(&s, Method::GET, "/tls", None).await;
    assert_eq!(tls["enabled"], true, "{tls}");
    assert_eq!(tls["certificate"]["placeholder"], true, "{tls}");
    assert_eq!(tls["acme"]["domains"], json!(["matrix.family.test"]), "{tls}");
    assert_eq!(tls["acme"]["url"], ca, "{tls}");
    let insecure = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = insecure.get(format!("https://127.0.0.1:{tls_port}/_matrix/client/versions")).send().await.unwrap();
    assert_eq!(r.status(), 200, "Matrix over the new TLS listener");
    let r = insecure.get(format!("http://127.0.0.1:{http_port}/_matrix/client/versions")).send().await.unwrap();
    assert_eq!(r.status(), 308, "the plain listener sends people to HTTPS");
    assert!(s.get("/_matrix/client/versions", None).await.0 == 200, "the loopback listener serves on");
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["https"]["port"], tls_port);
    let offered: Vec<&str> =
        state["acme_directories"].as_array().unwrap().iter().map(|d| d["url"].as_str().unwrap()).collect();
    assert!(offered.contains(&"https://acme-v02.api.letsencrypt.org/directory") && offered.contains(&ca), "{state}");

    // Saving the same answer again is no change: no restart.
    let v = step(&mut s, "reach", body(tls_port, http_port, ca)).await;
    assert_eq!(v["restart"], false, "{v}");
    // The two listeners cannot swap jobs.
    let r = call(&s, Method::POST, "/setup/reach", Some(body(http_port, tls_port, ca))).await;
    assert_err(&r, 400, "M_INVALID_PARAM");

    step(&mut s, "reach", json!({"mode": "local"})).await;
    let (_, tls) = call(&s, Method::GET, "/tls", None).await;
    assert_eq!(tls["enabled"], false, "{tls}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err(), "the TLS listener is closed");
    assert!(std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err(), "the challenge listener is closed");
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["https"], Value::Null);
}

/// The address this machine uses on its network, found as the server finds it.
fn lan_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:80").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

async fn answers(url: &str) -> bool {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build().unwrap();
    matches!(client.get(format!("{url}/_matrix/client/versions")).send().await, Ok(r) if r.status() == 200)
}

#[tokio::test]
async fn the_home_network_mode_opens_the_listener_to_the_network_and_this_computer_closes_it() {
    let mut s = TestServer::start().await;
    let port = s.running.as_ref().unwrap().local_addr().port();
    let Some(ip) = lan_address() else {
        // A machine with no network: the step says so instead of writing an address that
        // cannot work.
        let r = call(&s, Method::POST, "/setup/reach", Some(json!({"mode": "lan"}))).await;
        assert_err(&r, 400, "M_INVALID_PARAM");
        assert!(r.1["error"].as_str().unwrap().contains("network"), "{}", r.1);
        return;
    };
    let lan = format!("http://{ip}:{port}");
    assert!(!answers(&lan).await, "by default Hearth listens on this computer only");

    // No config file edit, no manual restart: the step widens the listener, on the same port.
    let v = step(&mut s, "reach", json!({"mode": "lan"})).await;
    assert_eq!(v["restart"], true);
    assert!(v["warning"].as_str().unwrap().contains("away from home"), "{v}");
    assert!(answers(&lan).await, "phones at home reach {lan}");
    assert!(answers(&s.base).await, "and this computer still does");
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], lan);
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["listens_on_network"], true);

    // It survives a full stop and start (the setting is in the database).
    s.stop().await;
    let mut config = common::test_config(s.dir.path());
    config.listeners[0].port = port;
    s.running = Some(hearth_server::Homeserver::start(config).await.unwrap());
    assert!(answers(&lan).await, "still on the network after a restart");

    // Back to this computer only: the network address stops answering.
    step(&mut s, "reach", json!({"mode": "local"})).await;
    assert!(!answers(&lan).await, "closed to the network again");
    assert!(answers(&s.base).await);
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["listens_on_network"], false);
}

/// Logs in as alice with `X-Forwarded-For: 203.0.113.7` and returns the address the server
/// recorded for the new device.
async fn address_seen_at_login(s: &TestServer) -> String {
    let r: Value = s
        .http
        .post(format!("{}/_matrix/client/v3/login", s.base))
        .header("X-Forwarded-For", "203.0.113.7")
        .json(&json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "a-long-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (token, device) = (r["access_token"].as_str().unwrap(), r["device_id"].as_str().unwrap());
    let (_, d) = s.get(&format!("/_matrix/client/v3/devices/{device}"), Some(token)).await;
    d["last_seen_ip"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn behind_a_tunnel_or_proxy_the_forwarded_client_address_is_used() {
    let mut s = TestServer::start().await;
    s.register("alice", "a-long-password").await;
    // Nothing forwards to Hearth: a client cannot choose its address with a header.
    assert_eq!(address_seen_at_login(&s).await, "127.0.0.1");
    // A tunnel on this computer passes on each person's address (rate limits and the device
    // list then see people, not the tunnel).
    step(&mut s, "reach", json!({"mode": "tunnel", "public_url": "https://family.trycloudflare.example"})).await;
    assert_eq!(address_seen_at_login(&s).await, "203.0.113.7");
    step(&mut s, "reach", json!({"mode": "proxy", "public_host": "matrix.example.org"})).await;
    assert_eq!(address_seen_at_login(&s).await, "203.0.113.7");
    step(&mut s, "reach", json!({"mode": "local"})).await;
    assert_eq!(address_seen_at_login(&s).await, "127.0.0.1");
}

/// Without the right to bind ports below 1024 (no `cap_net_bind_service`, as a desktop app run
/// by a user), "Hearth handles HTTPS itself" on 443 or 80 is refused before any restart, in
/// words that say what to do instead (a high port and a forward on the router), and the
/// server's settings are left as they were; high ports are taken.
#[tokio::test]
#[ignore = "run by scripts/test.sh in tests/netns/run.sh under setpriv, without cap_net_bind_service"]
async fn without_the_right_to_bind_low_ports_the_wizard_says_what_to_do_instead() {
    let denied = std::net::TcpListener::bind("0.0.0.0:443").map_err(|e| e.kind());
    assert_eq!(
        denied.err(),
        Some(std::io::ErrorKind::PermissionDenied),
        "run without cap_net_bind_service and with net.ipv4.ip_unprivileged_port_start = 1024"
    );
    let mut s = TestServer::start().await;
    let body = |https_port: u16, http_port: u16| {
        json!({"mode": "https", "public_host": "matrix.family.test", "https_port": https_port,
               "http_port": http_port, "acme_url": "https://127.0.0.1:9/dir"})
    };
    for (https_port, http_port, refused, instead) in [(443, free_port(), 443, "8443"), (free_port(), 80, 80, "8080")] {
        let r = call(&s, Method::POST, "/setup/reach", Some(body(https_port, http_port))).await;
        assert_err(&r, 400, "M_INVALID_PARAM");
        let error = r.1["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("may not use port {refused}"))
                && error.contains(instead)
                && error.contains("forward"),
            "{error}"
        );
    }
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["https"], Value::Null, "nothing was stored");
    let (tls_port, http_port) = (free_port(), free_port());
    let v = step(&mut s, "reach", body(tls_port, http_port)).await;
    assert_eq!(v["https"]["port"], tls_port);
    assert!(std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok(), "the high HTTPS port listens");
}
