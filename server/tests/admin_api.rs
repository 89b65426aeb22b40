//! Hearth's admin listener (`/_hearth/`): the locks on its door (loopback only, Host header,
//! bearer token), account management and invites as the dashboard uses them, and the invite
//! sign-up page on the public listener.

mod common;

use std::time::Duration;

use common::{TestServer, assert_err};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    fn of(s: &TestServer) -> Self {
        let running = s.running.as_ref().unwrap();
        Admin {
            base: format!("http://{}", running.admin_addr()),
            token: running.admin_token().to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req =
            self.http.request(method, format!("{}/_hearth/admin/v1{path}", self.base)).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_admin_api_wants_its_token_and_its_own_host_name() {
    let s = TestServer::start().await;
    let admin = Admin::of(&s);
    let url = format!("{}/_hearth/admin/v1/status", admin.base);
    let get = |token: Option<&str>, host: Option<&str>| {
        let mut req = admin.http.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(h) = host {
            req = req.header("host", h);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    assert_err(&get(None, None).await, 401, "M_MISSING_TOKEN");
    assert_err(&get(Some("guess"), None).await, 401, "M_UNKNOWN_TOKEN");
    // A user's Matrix access token is not the admin token.
    let alice = s.user("alice").await;
    assert_err(&get(Some(&alice), None).await, 401, "M_UNKNOWN_TOKEN");
    // DNS rebinding: the right token (as a script on a rebinding page could not have, but
    // checked first anyway) under a foreign host name is refused.
    let port = s.running.as_ref().unwrap().admin_addr().port();
    assert_err(&get(Some(&admin.token), Some(&format!("evil.example:{port}"))).await, 403, "M_FORBIDDEN");
    assert_err(&get(Some(&admin.token), Some("127.0.0.1:1")).await, 403, "M_FORBIDDEN");
    let (st, status) = get(Some(&admin.token), Some(&format!("localhost:{port}"))).await;
    assert_eq!(st, 200, "{status}");
    assert_eq!(status["server_name"], common::SERVER_NAME);
    assert_eq!(status["users"], 1);
    assert!(status["database_bytes"].as_u64().unwrap() > 0);

    // The dashboard page itself, with a strict content security policy and no CORS opening.
    let page = admin.http.get(format!("{}/_hearth/", admin.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert!(page.headers().get("access-control-allow-origin").is_none());
    assert!(page.text().await.unwrap().contains("<title>Hearth</title>"));

    // Each listener serves only its own API.
    let (st, v) = s.get("/_hearth/admin/v1/status", Some(&admin.token)).await;
    assert_err(&(st, v), 404, "M_UNRECOGNIZED");
    assert_eq!(s.http.get(format!("{}/_hearth/", s.base)).send().await.unwrap().status(), 404);
    assert_eq!(s.http.get(format!("{}/_hearth/assets/app.js", s.base)).send().await.unwrap().status(), 404);
    let r = admin.http.get(format!("{}/_matrix/client/versions", admin.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_admin_listener_refuses_to_listen_beyond_this_computer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::test_config(dir.path());
    config.admin.bind_address = "0.0.0.0".parse().unwrap();
    let err = hearth_server::Homeserver::start(config).await.err().expect("refused").to_string();
    assert!(err.contains("admin.bind_address") && err.contains("loopback"), "{err}");

    let mut config = common::test_config(dir.path());
    config.apply_env(|k| (k == "HEARTH_ADMIN_LISTEN").then(|| "192.168.1.2:8009".to_owned())).unwrap();
    let err = config.validate().expect_err("refused").to_string();
    assert!(err.contains("admin.bind_address"), "{err}");
}

#[tokio::test]
async fn the_dashboard_creates_resets_promotes_and_deactivates_accounts() {
    let s = TestServer::start().await;
    let admin = Admin::of(&s);
    let (st, v) =
        admin.call(Method::POST, "/users", Some(json!({"username": "grandma", "password": "knitting-42"}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user_id"], "@grandma:hearth.test");
    let (st, login) = s.login("grandma", "knitting-42").await;
    assert_eq!(st, 200, "{login}");
    let old_token = login["access_token"].as_str().unwrap().to_owned();
    assert_err(
        &admin.call(Method::POST, "/users", Some(json!({"username": "grandma", "password": "another-1"}))).await,
        400,
        "M_USER_IN_USE",
    );
    assert_err(
        &admin.call(Method::POST, "/users", Some(json!({"username": "Bad Name", "password": "another-1"}))).await,
        400,
        "M_INVALID_USERNAME",
    );
    assert_err(&admin.call(Method::POST, "/users", Some(json!({"username": 5}))).await, 400, "M_BAD_JSON");

    // Forgotten password: the admin sets a new one; every old session ends.
    let (st, v) = admin
        .call(Method::POST, "/users/@grandma:hearth.test/password", Some(json!({"password": "new-secret-7"})))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(&old_token)).await, 401, "M_UNKNOWN_TOKEN");
    assert_err(&s.login("grandma", "knitting-42").await, 403, "M_FORBIDDEN");
    let (_, login) = s.login("grandma", "new-secret-7").await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    assert_err(
        &admin
            .call(Method::POST, "/users/@nobody:hearth.test/password", Some(json!({"password": "new-secret-7"})))
            .await,
        404,
        "M_NOT_FOUND",
    );

    // Admin rights reach the Synapse admin API at once.
    assert_err(&s.get("/_synapse/admin/v1/registration_tokens", Some(&token)).await, 403, "M_FORBIDDEN");
    assert_eq!(admin.call(Method::PUT, "/users/@grandma:hearth.test/admin", Some(json!({"admin": true}))).await.0, 200);
    assert_eq!(s.get("/_synapse/admin/v1/registration_tokens", Some(&token)).await.0, 200);

    let (_, list) = admin.call(Method::GET, "/users", None).await;
    let grandma =
        list["users"].as_array().unwrap().iter().find(|u| u["user_id"] == "@grandma:hearth.test").unwrap().clone();
    assert_eq!(grandma["is_admin"], true);
    assert_eq!(grandma["deactivated"], false);

    assert_eq!(admin.call(Method::POST, "/users/@grandma:hearth.test/deactivate", None).await.0, 200);
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(&token)).await, 401, "M_UNKNOWN_TOKEN");
    assert_err(&s.login("grandma", "new-secret-7").await, 403, "M_FORBIDDEN");
    let (_, list) = admin.call(Method::GET, "/users", None).await;
    assert_eq!(list["users"][0]["deactivated"], true);
    assert_err(
        &admin.call(Method::POST, "/users/@grandma:other.example/deactivate", None).await,
        400,
        "M_INVALID_PARAM",
    );
}

async fn invite_state(s: &TestServer, code: &str) -> String {
    s.get(&format!("/_hearth/invite/{code}/state"), None).await.1["state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_invite_signs_up_as_many_people_as_it_allows_even_with_registration_closed() {
    let s = TestServer::start_with(|c| c.enable_registration = false).await;
    let admin = Admin::of(&s);
    let (st, invite) = admin.call(Method::POST, "/invites", Some(json!({"uses_allowed": 2}))).await;
    assert_eq!(st, 200, "{invite}");
    let code = invite["code"].as_str().unwrap().to_owned();
    assert_eq!(invite["link"], format!("{}/_hearth/invite/{code}", s.base));

    // The page the link opens, on the public listener.
    let page = s.http.get(format!("{}/_hearth/invite/{code}", s.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You are invited"));
    assert_eq!(invite_state(&s, &code).await, "valid");

    let register_path = format!("/_hearth/invite/{code}/register");
    let sign_up =
        |name: &'static str| s.post(&register_path, None, json!({"username": name, "password": "a-good-password"}));
    let (st, v) = sign_up("tom").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user_id"], "@tom:hearth.test");
    assert_eq!(s.login("tom", "a-good-password").await.0, 200);
    // A taken name does not use up the invite.
    assert_err(&sign_up("tom").await, 400, "M_USER_IN_USE");
    assert_eq!(invite_state(&s, &code).await, "valid");
    assert_eq!(sign_up("lucy").await.0, 200);
    assert_eq!(invite_state(&s, &code).await, "used_up");
    let r = sign_up("sam").await;
    assert_err(&r, 403, "M_FORBIDDEN");
    assert!(r.1["error"].as_str().unwrap().contains("used up"), "{}", r.1);

    let (_, list) = admin.call(Method::GET, "/invites", None).await;
    assert_eq!(list["invites"][0]["uses"], 2);
    assert_eq!(list["invites"][0]["valid"], false);

    // Expired and unknown invites say so.
    let soon = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 + 300;
    let (_, short) = admin.call(Method::POST, "/invites", Some(json!({"expiry_time": soon}))).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let short = short["code"].as_str().unwrap();
    assert_eq!(invite_state(&s, short).await, "expired");
    let r = s
        .post(
            &format!("/_hearth/invite/{short}/register"),
            None,
            json!({"username": "late", "password": "a-good-password"}),
        )
        .await;
    assert!(r.1["error"].as_str().unwrap().contains("expired"), "{}", r.1);
    assert_eq!(invite_state(&s, "NoSuchCode").await, "unknown");
    assert_err(
        &s.post("/_hearth/invite/NoSuchCode/register", None, json!({"username": "x", "password": "a-good-password"}))
            .await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&admin.call(Method::POST, "/invites", Some(json!({"uses_allowed": 0}))).await, 400, "M_INVALID_PARAM");
    assert_err(&admin.call(Method::POST, "/invites", Some(json!({"expiry_time": 1000}))).await, 400, "M_INVALID_PARAM");

    // Deleting an invite ends it.
    assert_eq!(admin.call(Method::DELETE, &format!("/invites/{code}"), None).await.0, 200);
    assert_eq!(invite_state(&s, &code).await, "unknown");
    // Registration through the Matrix API stays closed to people without an invite.
    let r = s
        .post("/_matrix/client/v3/register", None, json!({"username": "stranger", "password": "a-good-password"}))
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn the_dashboard_shows_the_latest_log_lines_at_the_chosen_level() {
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(
        logs.path().join("hearth.2026-11-26.log"),
        "2026-11-26T10:00:00Z  INFO hearth_server: Hearth is listening\n2026-11-26T10:00:05Z  WARN hearth_server::pusher: push gateway unreachable\n",
    )
    .unwrap();
    let dir = logs.path().to_path_buf();
    let s = TestServer::start_with(move |c| c.log_dir = Some(dir)).await;
    let admin = Admin::of(&s);
    let (st, v) = admin.call(Method::GET, "/logs?level=warn", None).await;
    assert_eq!(st, 200, "{v}");
    let lines: Vec<&str> = v["lines"].as_array().unwrap().iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(lines, ["2026-11-26T10:00:05Z  WARN hearth_server::pusher: push gateway unreachable"]);
    assert_eq!(v["lines"][0]["level"], "warn");
    let (_, v) = admin.call(Method::GET, "/logs", None).await;
    assert_eq!(v["lines"].as_array().unwrap().len(), 2);
    assert_err(&admin.call(Method::GET, "/logs?level=loud", None).await, 400, "M_INVALID_PARAM");
    assert_err(&admin.call(Method::GET, "/logs?limit=many", None).await, 400, "M_INVALID_PARAM");

    // Invites come with a QR code of their link.
    let (_, invite) = admin.call(Method::POST, "/invites", Some(json!({}))).await;
    assert!(invite["qr_svg"].as_str().unwrap().contains("<svg"), "{invite}");
}

#[tokio::test]
async fn the_dashboard_lists_rooms_and_their_members() {
    let s = TestServer::start().await;
    let admin = Admin::of(&s);
    let alice = s.user("alice").await;
    s.user("bob").await;
    let (st, created) = s
        .post("/_matrix/client/v3/createRoom", Some(&alice), json!({"name": "Family", "invite": ["@bob:hearth.test"]}))
        .await;
    assert_eq!(st, 200, "{created}");
    let room_id = created["room_id"].as_str().unwrap().to_owned();

    let (st, v) = admin.call(Method::GET, "/rooms", None).await;
    assert_eq!(st, 200, "{v}");
    let room = &v["rooms"][0];
    assert_eq!(room["room_id"], room_id.as_str());
    assert_eq!(room["name"], "Family");
    assert_eq!(room["num_joined_members"], 1);
    assert_eq!(room["creator"], "@alice:hearth.test");

    let (st, v) = admin.call(Method::GET, &format!("/rooms/{}/members", room_id.replace('!', "%21")), None).await;
    assert_eq!(st, 200, "{v}");
    let members: Vec<(String, String)> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user_id"].as_str().unwrap().to_owned(), m["membership"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        members,
        [("@alice:hearth.test".to_owned(), "join".to_owned()), ("@bob:hearth.test".to_owned(), "invite".to_owned())]
    );
    assert_err(&admin.call(Method::GET, "/rooms/!nope:hearth.test/members", None).await, 404, "M_NOT_FOUND");
    assert_err(&admin.call(Method::GET, "/rooms/not-a-room/members", None).await, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn registration_policy_and_address_changed_in_the_dashboard_apply_after_an_automatic_restart() {
    let mut s = TestServer::start().await;
    let base = s.base.clone();
    let (admin_addr, admin_token) = {
        let r = s.running.as_ref().unwrap();
        (r.admin_addr(), r.admin_token().to_owned())
    };
    let before = s.user("early").await;
    let admin = Admin::of(&s);
    let register = |s: &TestServer, name: &'static str| {
        let path = "/_matrix/client/v3/register";
        let http = s.http.clone();
        let url = format!("{}{path}", s.base);
        async move {
            let r = http
                .post(url)
                .json(&json!({"username": name, "password": "a-good-password", "auth": {"type": "m.login.dummy"}}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };

    // Invite only: Matrix apps can no longer sign up by themselves.
    let (st, v) = admin.call(Method::PUT, "/settings", Some(json!({"registration": "invite"}))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["restart"], true);
    s.restart_when_asked().await;
    assert_eq!(s.base, base, "same address after the restart");
    assert_eq!(s.running.as_ref().unwrap().admin_addr(), admin_addr);
    assert_eq!(s.running.as_ref().unwrap().admin_token(), admin_token, "the admin link still works");
    assert_err(&register(&s, "stranger").await, 403, "M_FORBIDDEN");
    let (_, settings) = admin.call(Method::GET, "/settings", None).await;
    assert_eq!(settings["registration"], "invite");
    // Nothing was lost: the earlier account and its session work.
    assert_eq!(s.get("/_matrix/client/v3/account/whoami", Some(&before)).await.0, 200);

    // Open registration needs an explicit confirmation.
    assert_err(
        &admin.call(Method::PUT, "/settings", Some(json!({"registration": "open"}))).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(
        &admin.call(Method::PUT, "/settings", Some(json!({"registration": "everyone"}))).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(
        &admin.call(Method::PUT, "/settings", Some(json!({"public_baseurl": "ftp://files.example.org"}))).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(&admin.call(Method::PUT, "/settings", Some(json!({}))).await, 400, "M_MISSING_PARAM");

    // Invite codes in Matrix apps, and a new public address.
    let (st, _) = admin
        .call(
            Method::PUT,
            "/settings",
            Some(json!({"registration": "token", "public_baseurl": "https://chat.example.org"})),
        )
        .await;
    assert_eq!(st, 200);
    s.restart_when_asked().await;
    let (st, flows) = register(&s, "someone").await;
    assert_eq!(st, 401, "{flows}");
    assert_eq!(flows["flows"][0]["stages"][0], "m.login.registration_token");
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], "https://chat.example.org");

    let (st, _) = admin
        .call(Method::PUT, "/settings", Some(json!({"registration": "open", "confirm_open_registration": true})))
        .await;
    assert_eq!(st, 200);
    s.restart_when_asked().await;
    assert_eq!(register(&s, "anyone").await.0, 200);
}

#[tokio::test]
async fn the_dashboard_replaces_the_admin_key_and_the_old_one_stops_working() {
    let s = TestServer::start().await;
    let old = Admin::of(&s);
    let (st, v) = old.call(Method::POST, "/admin-key", None).await;
    assert_eq!(st, 200, "{v}");
    let new = v["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old.token);
    assert_err(&old.call(Method::GET, "/status", None).await, 401, "M_UNKNOWN_TOKEN");
    let fresh = Admin { token: new.clone(), ..Admin::of(&s) };
    assert_eq!(fresh.call(Method::GET, "/status", None).await.0, 200);
    // The desktop app and the link it opens get the new key too.
    let running = s.running.as_ref().unwrap();
    assert_eq!(running.admin_token(), new);
    assert!(running.admin_url().ends_with(&format!("#token={new}")));
}
