//! Registration (spec: Client-Server API, "Account registration"): closed by default, the dummy
//! and registration-token flows, username rules, availability, guests.

mod common;

use common::{SERVER_NAME, TestServer, assert_err};
use reqwest::StatusCode;
use serde_json::{Value, json};

const REGISTER: &str = "/_matrix/client/v3/register";

#[tokio::test]
async fn registration_is_closed_by_default_and_says_how_to_open_it() {
    let s = TestServer::start_with(|c| {
        c.enable_registration = false;
        c.enable_registration_without_verification = false;
    })
    .await;
    let r = s.post(REGISTER, None, json!({"username": "a", "password": "p"})).await;
    assert_err(&r, 403, "M_FORBIDDEN");
    let msg = r.1["error"].as_str().unwrap();
    assert!(msg.contains("register-user") && msg.contains("enable_registration"), "{msg}");
}

#[tokio::test]
async fn dummy_flow_registers_and_logs_in() {
    let s = TestServer::start().await;
    let (st, first) = s.post(REGISTER, None, json!({"username": "Alice", "password": "pw-long-enough"})).await;
    assert_eq!(st, 401);
    assert_eq!(first["flows"], json!([{"stages": ["m.login.dummy"]}]));
    let session = first["session"].as_str().unwrap();
    let (st, body) = s
        .post(
            REGISTER,
            None,
            json!({"username": "Alice", "password": "pw-long-enough", "initial_device_display_name": "Laptop",
                   "auth": {"type": "m.login.dummy", "session": session}}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // Upper case is folded, as Synapse does.
    assert_eq!(body["user_id"], format!("@alice:{SERVER_NAME}"));
    let token = body["access_token"].as_str().unwrap();
    let (_, me) = s.get("/_matrix/client/v3/account/whoami", Some(token)).await;
    assert_eq!(me["user_id"], format!("@alice:{SERVER_NAME}"));
    assert_eq!(me["device_id"], body["device_id"]);
    let (_, devices) = s.get("/_matrix/client/v3/devices", Some(token)).await;
    assert_eq!(devices["devices"][0]["display_name"], "Laptop");
    // The password works for login.
    assert_eq!(s.login("alice", "pw-long-enough").await.0, 200);
}

#[tokio::test]
async fn taken_and_invalid_usernames() {
    let s = TestServer::start().await;
    s.register("bob", "pw-long-enough").await;
    assert_err(
        &s.post(REGISTER, None, json!({"username": "bob", "password": "pw-long-enough"})).await,
        400,
        "M_USER_IN_USE",
    );
    assert_err(
        &s.post(REGISTER, None, json!({"username": "BOB", "password": "pw-long-enough"})).await,
        400,
        "M_USER_IN_USE",
    );
    for bad in ["", "has space", "émile", "_bridge", "a:b", &"x".repeat(250)] {
        let r = s.post(REGISTER, None, json!({"username": bad, "password": "pw-long-enough"})).await;
        assert_err(&r, 400, "M_INVALID_USERNAME");
    }
    // Availability endpoint agrees.
    assert_err(&s.get("/_matrix/client/v3/register/available?username=bob", None).await, 400, "M_USER_IN_USE");
    assert_err(
        &s.get("/_matrix/client/v3/register/available?username=no%20way", None).await,
        400,
        "M_INVALID_USERNAME",
    );
    let (st, v) = s.get("/_matrix/client/v3/register/available?username=free", None).await;
    assert_eq!((st.as_u16(), v["available"].clone()), (200, json!(true)));
    assert_err(&s.get("/_matrix/client/v3/register/available", None).await, 400, "M_MISSING_PARAM");
}

#[tokio::test]
async fn password_is_required_and_bounded() {
    let s = TestServer::start().await;
    // Without a password a client still learns the flows; going on without one is refused.
    let (st, flows) = s.post(REGISTER, None, json!({"username": "nopw"})).await;
    assert_eq!(st, 401, "{flows}");
    let auth = json!({"type": "m.login.dummy", "session": flows["session"]});
    assert_err(&s.post(REGISTER, None, json!({"username": "nopw", "auth": auth})).await, 400, "M_MISSING_PARAM");
    let long = "p".repeat(600);
    assert_err(&s.post(REGISTER, None, json!({"username": "longpw", "password": long})).await, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn no_username_gets_a_generated_id() {
    let s = TestServer::start().await;
    let (_, first) = s.post(REGISTER, None, json!({"password": "pw-long-enough"})).await;
    let (st, body) = s
        .post(
            REGISTER,
            None,
            json!({"password": "pw-long-enough", "auth": {"type": "m.login.dummy", "session": first["session"]}}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let id = body["user_id"].as_str().unwrap();
    assert!(id.starts_with('@') && id.ends_with(":hearth.test"), "{id}");
}

#[tokio::test]
async fn inhibit_login_returns_no_token() {
    let s = TestServer::start().await;
    let (_, first) = s.post(REGISTER, None, json!({"username": "quiet", "password": "pw-long-enough"})).await;
    let (st, body) = s
        .post(
            REGISTER,
            None,
            json!({"username": "quiet", "password": "pw-long-enough", "inhibit_login": true, "auth": {"type": "m.login.dummy", "session": first["session"]}}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(body["user_id"], "@quiet:hearth.test");
    assert!(body.get("access_token").is_none(), "{body}");
}

async fn token_server() -> (TestServer, String) {
    let s = TestServer::start_with(|c| {
        c.enable_registration_without_verification = false;
        c.registration_requires_token = true;
    })
    .await;
    let admin = make_admin(&s).await;
    (s, admin)
}

/// An admin created through shared-secret registration (the path `register_new_matrix_user` uses).
pub async fn make_admin(s: &TestServer) -> String {
    let (st, body) = s.shared_secret_register("root", "rootpw-long-enough", true).await;
    assert_eq!(st, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn register_with_token(s: &TestServer, user: &str, token: &str) -> (StatusCode, Value) {
    let (st, first) = s.post(REGISTER, None, json!({"username": user, "password": "pw-long-enough"})).await;
    assert_eq!(st, 401, "{first}");
    assert_eq!(first["flows"], json!([{"stages": ["m.login.registration_token"]}]));
    s.post(
        REGISTER,
        None,
        json!({"username": user, "password": "pw-long-enough",
               "auth": {"type": "m.login.registration_token", "token": token, "session": first["session"]}}),
    )
    .await
}

#[tokio::test]
async fn registration_token_flow_counts_uses_and_refuses_used_up_tokens() {
    let (s, admin) = token_server().await;
    let (st, tok) =
        s.post("/_synapse/admin/v1/registration_tokens/new", Some(&admin), json!({"uses_allowed": 1})).await;
    assert_eq!(st, 200, "{tok}");
    let code = tok["token"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 16);

    let (st, v) =
        s.get(&format!("/_matrix/client/v1/register/m.login.registration_token/validity?token={code}"), None).await;
    assert_eq!((st.as_u16(), v["valid"].clone()), (200, json!(true)));

    let (st, body) = register_with_token(&s, "first", &code).await;
    assert_eq!(st, 200, "{body}");
    let (_, t) = s.get(&format!("/_synapse/admin/v1/registration_tokens/{code}"), Some(&admin)).await;
    assert_eq!((t["completed"].clone(), t["pending"].clone()), (json!(1), json!(0)), "{t}");

    // Used up: the stage fails with a 401 that keeps the session and explains.
    let (st, body) = register_with_token(&s, "second", &code).await;
    assert_eq!(st, 401, "{body}");
    assert_eq!(body["errcode"], "M_UNAUTHORIZED");
    assert!(body["session"].is_string());
    let (_, v) =
        s.get(&format!("/_matrix/client/v1/register/m.login.registration_token/validity?token={code}"), None).await;
    assert_eq!(v["valid"], false);
    // The second user was not created.
    let (st, _) = s.get("/_matrix/client/v3/register/available?username=second", None).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn wrong_and_expired_registration_tokens_are_refused() {
    let (s, admin) = token_server().await;
    let (st, body) = register_with_token(&s, "eve", "not-a-token").await;
    assert_eq!((st.as_u16(), body["errcode"].clone()), (401, json!("M_UNAUTHORIZED")));
    // A dummy stage is not offered when tokens are required.
    let (_, first) = s.post(REGISTER, None, json!({"username": "eve", "password": "pw-long-enough"})).await;
    let (st, body) = s
        .post(REGISTER, None, json!({"username": "eve", "password": "pw-long-enough", "auth": {"type": "m.login.dummy", "session": first["session"]}}))
        .await;
    assert_eq!(st, 401, "{body}");
    // Expiry in the past is refused at creation; a token that expires soon stops working.
    let past = json!({"token": "old", "expiry_time": 1000});
    assert_err(&s.post("/_synapse/admin/v1/registration_tokens/new", Some(&admin), past).await, 400, "M_INVALID_PARAM");
    let soon = hearth_now() + 300;
    let (st, _) = s
        .post("/_synapse/admin/v1/registration_tokens/new", Some(&admin), json!({"token": "soon", "expiry_time": soon}))
        .await;
    assert_eq!(st, 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let (st, body) = register_with_token(&s, "late", "soon").await;
    assert_eq!(st, 401, "{body}");
}

fn hearth_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test]
async fn two_registrations_racing_for_the_last_use_of_a_token() {
    let (s, admin) = token_server().await;
    s.post("/_synapse/admin/v1/registration_tokens/new", Some(&admin), json!({"token": "once", "uses_allowed": 1}))
        .await;
    let (a, b) = tokio::join!(register_with_token(&s, "racer1", "once"), register_with_token(&s, "racer2", "once"));
    let ok = [a.0, b.0].iter().filter(|s| s.as_u16() == 200).count();
    assert_eq!(ok, 1, "exactly one registration may use the token: {a:?} {b:?}");
}

#[tokio::test]
async fn token_validity_endpoint_is_forbidden_without_token_registration() {
    let s = TestServer::start().await;
    let r = s.get("/_matrix/client/v1/register/m.login.registration_token/validity?token=x", None).await;
    assert_err(&r, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn guests_are_refused_unless_enabled() {
    let s = TestServer::start().await;
    assert_err(
        &s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await,
        403,
        "M_GUEST_ACCESS_FORBIDDEN",
    );

    let s = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let (st, g) = s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await;
    assert_eq!(st, 200, "{g}");
    let token = g["access_token"].as_str().unwrap();
    let (_, me) = s.get("/_matrix/client/v3/account/whoami", Some(token)).await;
    assert_eq!(me["is_guest"], true);
    // Guests cannot use account management.
    let r = s.post("/_matrix/client/v3/account/password", Some(token), json!({"new_password": "x-long-enough"})).await;
    assert_err(&r, 403, "M_GUEST_ACCESS_FORBIDDEN");
    // Upgrading keeps the user ID; the spec wants the guest's own localpart as username.
    let localpart = g["user_id"].as_str().unwrap()[1..].split(':').next().unwrap().to_owned();
    let (_, first) = s.post(REGISTER, None, json!({"password": "pw-long-enough", "guest_access_token": token})).await;
    let wrong = s
        .post(REGISTER, None, json!({"username": "someone", "password": "pw-long-enough", "guest_access_token": token, "auth": {"type": "m.login.dummy", "session": first["session"]}}))
        .await;
    assert_err(&wrong, 400, "M_INVALID_PARAM");
    let (_, first) = s
        .post(REGISTER, None, json!({"username": localpart, "password": "pw-long-enough", "guest_access_token": token}))
        .await;
    let (st, up) = s
        .post(
            REGISTER,
            None,
            json!({"username": localpart, "password": "pw-long-enough", "guest_access_token": token, "auth": {"type": "m.login.dummy", "session": first["session"]}}),
        )
        .await;
    assert_eq!(st, 200, "{up}");
    assert_eq!(up["user_id"], g["user_id"]);
    let (st, me) = s.get("/_matrix/client/v3/account/whoami", Some(up["access_token"].as_str().unwrap())).await;
    assert_eq!((st.as_u16(), me["user_id"].clone()), (200, g["user_id"].clone()));
    assert_ne!(me["is_guest"], true, "no longer a guest (false may be omitted): {me}");
    // The upgraded account can now use account management.
    let r = s
        .post(
            "/_matrix/client/v3/account/password",
            up["access_token"].as_str(),
            json!({"new_password": "x-long-enough"}),
        )
        .await;
    assert_eq!(r.0, 401, "UIA starts instead of a guest refusal: {}", r.1);
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let s = TestServer::start_with(|c| {
        c.rc_registration = hearth_server::config::RateLimit { per_second: 0.01, burst_count: 2.0 }
    })
    .await;
    s.register("r1", "pw-long-enough").await;
    s.register("r2", "pw-long-enough").await;
    let (_, first) = s.post(REGISTER, None, json!({"username": "r3", "password": "pw-long-enough"})).await;
    let r = s
        .post(
            REGISTER,
            None,
            json!({"username": "r3", "password": "pw-long-enough", "auth": {"type": "m.login.dummy", "session": first["session"]}}),
        )
        .await;
    assert_err(&r, 429, "M_LIMIT_EXCEEDED");
    assert!(r.1["retry_after_ms"].as_u64().unwrap() > 0, "{}", r.1);
}
