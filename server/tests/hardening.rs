//! What a hostile client tries against a server on the Internet: forged client addresses,
//! slow and idle connections, weak passwords, guessing invite codes, growing the server's memory.

mod common;

use common::{TestServer, assert_err};
use hearth_server::config::{HumanDuration, RateLimit};
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

/// The admin listener, as the dashboard calls it.
async fn admin(s: &TestServer, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
    let running = s.running.as_ref().unwrap();
    let resp = s
        .http
        .request(method, format!("http://{}/_hearth/admin/v1{path}", running.admin_addr()))
        .bearer_auth(running.admin_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_short_password_is_refused_on_every_path_that_sets_one() {
    let s = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let short = "seven77";
    let too_short = |r: &(StatusCode, Value)| assert_err(r, 400, "M_PASSWORD_TOO_SHORT");

    // Matrix apps: registration (said before any authentication stage), and a password change.
    too_short(&s.post("/_matrix/client/v3/register", None, json!({"username": "sam", "password": short})).await);
    let sue = s.user("sue").await;
    too_short(&s.post("/_matrix/client/v3/account/password", Some(&sue), json!({"new_password": short})).await);
    // A guest becoming a full account.
    let (_, guest) = s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await;
    let upgrade = json!({"password": short, "guest_access_token": guest["access_token"], "auth": {"type": "m.login.dummy"},
                         "username": guest["user_id"].as_str().unwrap().trim_start_matches('@').split(':').next().unwrap()});
    too_short(&s.post("/_matrix/client/v3/register", None, upgrade).await);
    // The dashboard: a new account, a reset password, the setup's first admin.
    too_short(&admin(&s, reqwest::Method::POST, "/users", json!({"username": "sid", "password": short})).await);
    too_short(&admin(&s, reqwest::Method::POST, "/users/@sue:hearth.test/password", json!({"password": short})).await);
    too_short(&admin(&s, reqwest::Method::POST, "/setup/admin", json!({"username": "sol", "password": short})).await);
    // The invite page, which keeps the invite for a second try.
    let (_, invite) = admin(&s, reqwest::Method::POST, "/invites", json!({"uses_allowed": 1})).await;
    let code = invite["code"].as_str().unwrap();
    let signup = format!("/_hearth/invite/{code}/register");
    too_short(&s.post(&signup, None, json!({"username": "syd", "password": short})).await);
    assert_eq!(s.get(&format!("/_hearth/invite/{code}/state"), None).await.1["state"], "valid");
    assert_eq!(s.post(&signup, None, json!({"username": "syd", "password": "eight888"})).await.0, 200);
    // Synapse's shared-secret registration.
    too_short(&s.shared_secret_register("sal", short, false).await);

    // None of those accounts exists, and the old password still works.
    for who in ["sam", "sid", "sol", "sal"] {
        assert_err(&s.login(who, short).await, 403, "M_FORBIDDEN");
    }
    assert_eq!(s.login("sue", "password1").await.0, 200);
    // Clients can read the rule first (Synapse's endpoint).
    let (st, policy) = s.get("/_matrix/client/v3/password_policy", None).await;
    assert_eq!(st, 200);
    assert_eq!(policy["m.minimum_length"], 8);
}

#[tokio::test]
async fn the_password_policy_is_configurable_as_in_synapse() {
    let s = TestServer::start_with(|c| {
        c.password_config.policy.require_digit = true;
        c.password_config.policy.require_symbol = true;
    })
    .await;
    let register = |pw: &'static str| {
        s.post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": "pat", "password": pw, "auth": {"type": "m.login.dummy"}}),
        )
    };
    assert_err(&register("no-digits-here").await, 400, "M_PASSWORD_NO_DIGIT");
    assert_err(&register("digits12345").await, 400, "M_PASSWORD_NO_SYMBOL");
    assert_eq!(register("digits-12345").await.0, 200);
    assert_eq!(s.get("/_matrix/client/v3/password_policy", None).await.1["m.require_symbol"], true);
}

/// An invite code is the key to an account: looking codes up must be slow, and the codes the
/// server makes up must be long enough not to be found by trying.
#[tokio::test]
async fn invite_codes_cannot_be_guessed_quickly() {
    let s = TestServer::start_with(|c| {
        c.registration_requires_token = true;
        c.rc_registration_token_validity = RateLimit { per_second: 0.001, burst_count: 3.0 };
    })
    .await;
    // The invite page's lookups and the Matrix validity check share one budget per address.
    assert_eq!(s.get("/_hearth/invite/guess1/state", None).await.1["state"], "unknown");
    assert_eq!(s.get("/_hearth/invite/guess2/state", None).await.1["state"], "unknown");
    let validity = "/_matrix/client/v1/register/m.login.registration_token/validity?token=guess3";
    assert_eq!(s.get(validity, None).await.1["valid"], false);
    assert_err(&s.get("/_hearth/invite/guess4/state", None).await, 429, "M_LIMIT_EXCEEDED");
    assert_err(&s.get(validity, None).await, 429, "M_LIMIT_EXCEEDED");

    // Synapse's admin API: generated codes have at least 8 characters; a code the admin picks
    // may be as short as they like.
    let (st, admin) = s.shared_secret_register("root", "root-password", true).await;
    assert_eq!(st, 200, "{admin}");
    let admin = admin["access_token"].as_str().unwrap();
    let new = "/_synapse/admin/v1/registration_tokens/new";
    for length in [1, 4, 7, 65] {
        assert_err(&s.post(new, Some(admin), json!({"length": length})).await, 400, "M_INVALID_PARAM");
    }
    let (st, t) = s.post(new, Some(admin), json!({"length": 8})).await;
    assert_eq!((st.as_u16(), t["token"].as_str().unwrap().len()), (200, 8), "{t}");
    let (st, t) = s.post(new, Some(admin), json!({})).await;
    assert_eq!((st.as_u16(), t["token"].as_str().unwrap().len()), (200, 16), "{t}");
    let (st, t) = s.post(new, Some(admin), json!({"token": "a"})).await;
    assert_eq!((st.as_u16(), &t["token"]), (200, &json!("a")), "{t}");
}

/// The first `/register` round trip only asks for the flows but holds a session in memory; a
/// client cannot open them without limit (sessions are also capped, see `service::uiaa`).
#[tokio::test]
async fn starting_registrations_is_rate_limited_per_address() {
    let s = TestServer::start_with(|c| c.rc_registration = RateLimit { per_second: 0.001, burst_count: 1.0 }).await;
    let start =
        || s.post("/_matrix/client/v3/register", None, json!({"username": "newbie", "password": "long-enough"}));
    for _ in 0..10 {
        let (st, body) = start().await;
        assert_eq!(st, 401, "{body}");
        assert!(body["session"].is_string(), "{body}");
    }
    assert_err(&start().await, 429, "M_LIMIT_EXCEEDED");
}

/// Reads until the server closes the connection; the time it took, or None if still open after
/// `limit`.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: std::time::Duration) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Slowloris: a client that trickles its headers, or connects and says nothing, or keeps an
/// idle connection, is cut off after `request_header_timeout`; a long-polling /sync that waits
/// longer than that is not.
#[tokio::test]
async fn slow_and_idle_clients_are_cut_off_while_long_polls_survive() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start_with(|c| c.request_header_timeout = HumanDuration(Duration::from_secs(2))).await;
    let token = s.user("lp").await;
    let (_, first) = s.get("/_matrix/client/v3/sync", Some(&token)).await;
    let since = first["next_batch"].as_str().unwrap().to_owned();
    let long_poll = {
        let (http, url) = (s.http.clone(), format!("{}/_matrix/client/v3/sync?since={since}&timeout=5000", s.base));
        let token = token.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            (r.status(), started.elapsed())
        })
    };

    let addr = s.running.as_ref().unwrap().local_addr();
    // One byte a second: the headers never complete.
    let mut trickle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let dribble = tokio::spawn(async move {
        for b in b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n" {
            if trickle.write_all(&[*b]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        false
    });
    // Silence.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A complete request, then nothing.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();

    let cut = |d: Option<Duration>| d.is_some_and(|d| d >= Duration::from_millis(1500) && d < Duration::from_secs(5));
    let (silent, idle) = tokio::join!(
        closed_within(&mut silent, Duration::from_secs(8)),
        closed_within(&mut idle, Duration::from_secs(8))
    );
    assert!(cut(silent), "a silent connection is closed: {silent:?}");
    assert!(cut(idle), "an idle kept-alive connection is closed: {idle:?}");
    assert!(dribble.await.unwrap(), "the trickling client was cut off before it finished its headers");
    let (status, waited) = long_poll.await.unwrap();
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_secs(4), "the long poll waited its whole timeout: {waited:?}");
}

/// A plain connection is served in the HTTP version its first bytes speak: HTTP/1.1, or HTTP/2
/// with prior knowledge (what a reverse proxy speaking h2c sends); the server picks the version
/// from those bytes before hyper reads them.
#[tokio::test]
async fn plain_connections_are_served_in_http1_and_in_http2_with_prior_knowledge() {
    let s = TestServer::start().await;
    let token = s.user("versions").await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    for (client, version) in [(&s.http, reqwest::Version::HTTP_11), (&h2, reqwest::Version::HTTP_2)] {
        for _ in 0..3 {
            let r = client
                .get(format!("{}/_matrix/client/v3/account/whoami", s.base))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(r.version(), version);
            assert_eq!(r.status(), 200, "{version:?}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["user_id"], format!("@versions:{}", common::SERVER_NAME), "{version:?}");
        }
    }
}

/// Connections beyond `max_connections` are closed at once; those already open carry on.
#[tokio::test]
async fn connections_beyond_the_cap_are_refused() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start_with(|c| {
        c.max_connections = 3;
        c.request_header_timeout = HumanDuration(Duration::from_secs(1));
    })
    .await;
    let token = s.user("cap").await;
    let (_, first) = s.get("/_matrix/client/v3/sync", Some(&token)).await;
    let since = first["next_batch"].as_str().unwrap();
    // The test client's kept-alive connection closes when idle; then the three slots are free.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let addr = s.running.as_ref().unwrap().local_addr();
    let request = format!(
        "GET /_matrix/client/v3/sync?since={since}&timeout=3000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    let mut polls = Vec::new();
    for _ in 0..3 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(request.as_bytes()).await.unwrap();
        polls.push(c);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fourth = tokio::net::TcpStream::connect(addr).await.unwrap();
    let closed = closed_within(&mut fourth, Duration::from_secs(1)).await;
    assert!(closed.is_some(), "the fourth connection is closed at once");
    // The three long polls are answered.
    for mut c in polls {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf, b"HTTP/1.1 200");
    }
}

/// One address cannot take every connection. Needs an address of this machine other than
/// loopback (loopback is this computer, not counted); machines without one skip it.
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    use std::time::Duration;
    let Some(lan) = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:80").and_then(|()| s.local_addr()))
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
    else {
        eprintln!("skipped: this machine has no address besides loopback");
        return;
    };
    let s = TestServer::start_with(|c| {
        c.listeners[0].bind_addresses = vec![std::net::Ipv4Addr::UNSPECIFIED.into()];
        c.max_connections_per_ip = 2;
    })
    .await;
    let port = s.running.as_ref().unwrap().local_addr().port();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect((lan, port)).await.unwrap();
        assert!(closed_within(&mut c, Duration::from_millis(300)).await.is_none(), "the first two stay open");
        held.push(c);
    }
    let mut third = tokio::net::TcpStream::connect((lan, port)).await.unwrap();
    assert!(closed_within(&mut third, Duration::from_secs(1)).await.is_some(), "the third is closed at once");
    // From this computer, connections are not counted.
    let mut local = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(closed_within(&mut local, Duration::from_millis(300)).await.is_none());
    drop(held);
}

/// Found by fuzzing: a NUL in a search term ended SQLite's full-text query early, a 500. Control
/// characters separate words now, and FTS5's syntax characters are plain text.
#[tokio::test]
async fn any_search_term_is_an_answer_never_a_server_error() {
    let s = TestServer::start().await;
    let token = s.user("seeker").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&token), json!({})).await;
    let room = room["room_id"].as_str().unwrap();
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t1"),
        Some(&token),
        json!({"msgtype": "m.text", "body": "tea time"}),
    )
    .await;
    let search = |term: &str| {
        s.post(
            "/_matrix/client/v3/search",
            Some(&token),
            json!({"search_categories": {"room_events": {"search_term": term}}}),
        )
    };
    let (st, found) = search("tea\u{0}time").await;
    assert_eq!(st, 200, "{found}");
    assert_eq!(found["search_categories"]["room_events"]["count"], 1, "{found}");
    for term in ["\u{0}", "a\"b", "(", "a*", "NEAR(a b)", "-x", "\u{7}\u{1b}[0m", "tea OR"] {
        let (st, body) = search(term).await;
        assert!(st == 200 || (st == 400 && body["errcode"] == "M_INVALID_PARAM"), "{term:?}: {st} {body}");
    }
}
