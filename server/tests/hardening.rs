//! What a hostile client tries against a server on the Internet: forged client addresses,
//! slow and idle connections, weak passwords, guessing invite codes, growing the server's memory.

mod common;

use common::{TestServer, assert_err};
use hearth_server::config::RateLimit;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn login_via(s: &TestServer, forwarded_for: &str, user: &str, password: &str) -> (StatusCode, Value) {
    let resp = s
        .http
        .post(format!("{}/_matrix/client/v3/login", s.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// The address the server recorded for the device a login made, asked through the same proxy.
async fn last_seen_ip(s: &TestServer, forwarded_for: &str, login: &Value) -> Value {
    let resp = s
        .http
        .get(format!("{}/_matrix/client/v3/devices/{}", s.base, login["device_id"].as_str().unwrap()))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap();
    let device: Value = resp.json().await.unwrap();
    device["last_seen_ip"].clone()
}

/// Behind a proxy that appends to X-Forwarded-For (Apache, HAProxy, most tunnels), the entries
/// before the proxy's own are whatever the client wrote: they must not choose the rate limit key.
#[tokio::test]
async fn a_forged_forwarded_for_does_not_escape_the_login_rate_limit() {
    let s = TestServer::start_with(|c| {
        c.listeners[0].x_forwarded = true;
        c.rc_login.address = RateLimit { per_second: 0.001, burst_count: 3.0 };
    })
    .await;
    s.user("vic").await;
    // This test plays the proxy on loopback; it saw the client at 203.0.113.9 every time.
    for forged in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        let r = login_via(&s, &format!("{forged}, 203.0.113.9"), "vic", "wrong guess").await;
        assert_err(&r, 403, "M_FORBIDDEN");
    }
    let r = login_via(&s, "10.0.0.4, 203.0.113.9", "vic", "wrong guess").await;
    assert_err(&r, 429, "M_LIMIT_EXCEEDED");
    // Someone else behind the same proxy has their own budget.
    let r = login_via(&s, "198.51.100.20", "vic", "password1").await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(last_seen_ip(&s, "198.51.100.20", &r.1).await, "198.51.100.20");
}

#[tokio::test]
async fn only_a_trusted_proxy_may_say_who_the_client_is() {
    // The proxy is elsewhere: a connection from this computer is not it.
    let s = TestServer::start_with(|c| {
        c.listeners[0].x_forwarded = true;
        c.listeners[0].trusted_proxies = vec!["192.0.2.0/24".into()];
    })
    .await;
    s.user("wes").await;
    let r = login_via(&s, "203.0.113.9", "wes", "password1").await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(last_seen_ip(&s, "203.0.113.9", &r.1).await, "127.0.0.1");

    // Two proxies in a row (a CDN, then nginx on this computer): the CDN's entry names the client.
    let s = TestServer::start_with(|c| {
        c.listeners[0].x_forwarded = true;
        c.listeners[0].proxy_hops = 2;
    })
    .await;
    s.user("wes").await;
    let chain = "10.9.9.9, 203.0.113.9, 198.51.100.1";
    let r = login_via(&s, chain, "wes", "password1").await;
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(last_seen_ip(&s, chain, &r.1).await, "203.0.113.9");
}
