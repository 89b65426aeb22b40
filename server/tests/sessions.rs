//! Login, token login, refresh tokens, logout (spec: Client-Server API, "Login", "Refreshing
//! access tokens", "Soft logout").

mod common;

use std::time::Duration;

use common::{TestServer, assert_err};
use serde_json::json;

const LOGIN: &str = "/_matrix/client/v3/login";
const WHOAMI: &str = "/_matrix/client/v3/account/whoami";

#[tokio::test]
async fn login_flows_are_advertised() {
    let s = TestServer::start().await;
    let (st, v) = s.get(LOGIN, None).await;
    assert_eq!(st, 200);
    let types: Vec<&str> = v["flows"].as_array().unwrap().iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["m.login.password", "m.login.token"]);
    assert_eq!(v["flows"][1]["get_login_token"], true);
}

#[tokio::test]
async fn password_login_accepts_localpart_full_id_and_legacy_user_field() {
    let s = TestServer::start().await;
    s.register("alice", "secret-long-enough").await;
    for who in ["alice", "ALICE", "@alice:hearth.test"] {
        let (st, v) = s.login(who, "secret-long-enough").await;
        assert_eq!(st, 200, "{who}: {v}");
        assert_eq!(v["user_id"], "@alice:hearth.test");
        assert_eq!(
            v["well_known"]["m.homeserver"]["base_url"].as_str().unwrap(),
            s.running.as_ref().unwrap().public_baseurl().trim_end_matches('/')
        );
    }
    let (st, _) = s
        .post(LOGIN, None, json!({"type": "m.login.password", "user": "alice", "password": "secret-long-enough"}))
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn wrong_password_unknown_user_and_other_servers_all_look_alike() {
    let s = TestServer::start().await;
    s.register("bob", "secret-long-enough").await;
    for who in ["bob", "nobody", "@bob:elsewhere.org"] {
        let r = s.login(who, if who == "bob" { "wrong" } else { "secret-long-enough" }).await;
        assert_err(&r, 403, "M_FORBIDDEN");
        assert_eq!(r.1["error"], "Invalid username or password");
    }
    // A login type the server does not offer (GET /login lists password and token only).
    let r = s.post(LOGIN, None, json!({"type": "m.login.sso"})).await;
    assert_err(&r, 400, "M_UNKNOWN");
}

#[tokio::test]
async fn login_with_an_existing_device_id_replaces_its_session() {
    let s = TestServer::start().await;
    s.register("carol", "pw-long-enough").await;
    let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "carol"}, "password": "pw-long-enough",
                      "device_id": "PHONE", "initial_device_display_name": "Phone"});
    let (_, first) = s.post(LOGIN, None, body.clone()).await;
    let (_, second) = s.post(LOGIN, None, body).await;
    assert_eq!(first["device_id"], "PHONE");
    assert_eq!(second["device_id"], "PHONE");
    // The old token of that device is gone, the new one works.
    assert_err(&s.get(WHOAMI, first["access_token"].as_str()).await, 401, "M_UNKNOWN_TOKEN");
    let (st, me) = s.get(WHOAMI, second["access_token"].as_str()).await;
    assert_eq!((st.as_u16(), me["device_id"].clone()), (200, json!("PHONE")));
    let (_, devices) = s.get("/_matrix/client/v3/devices", second["access_token"].as_str()).await;
    let phones: Vec<_> = devices["devices"].as_array().unwrap().iter().filter(|d| d["device_id"] == "PHONE").collect();
    assert_eq!(phones.len(), 1);
    assert_eq!(phones[0]["display_name"], "Phone");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_expired_access_tokens_soft_logout() {
    let s = TestServer::start_with(|c| {
        c.refreshable_access_token_lifetime = hearth_server::config::HumanDuration(Duration::from_millis(1500))
    })
    .await;
    s.register("dan", "pw-long-enough").await;
    let (st, v) = s
        .post(LOGIN, None, json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dan"}, "password": "pw-long-enough", "refresh_token": true}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["expires_in_ms"], 1500);
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(s.get(WHOAMI, Some(&access)).await.0, 200);

    tokio::time::sleep(Duration::from_millis(1700)).await;
    let r = s.get(WHOAMI, Some(&access)).await;
    assert_err(&r, 401, "M_UNKNOWN_TOKEN");
    assert_eq!(r.1["soft_logout"], true, "an expired token is a soft logout");

    let (st, n) = s.post("/_matrix/client/v3/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(st, 200, "{n}");
    let new_access = n["access_token"].as_str().unwrap();
    assert_ne!(new_access, access);
    assert_ne!(n["refresh_token"].as_str().unwrap(), refresh);
    let (st, me) = s.get(WHOAMI, Some(new_access)).await;
    assert_eq!((st.as_u16(), me["device_id"].clone()), (200, v["device_id"].clone()), "same device after refresh");

    // The old refresh token was revoked when the new access token was first used.
    let r = s.post("/_matrix/client/v3/refresh", None, json!({"refresh_token": refresh})).await;
    assert_err(&r, 401, "M_UNKNOWN_TOKEN");
    assert_ne!(r.1["soft_logout"], true, "a plain unknown token is not a soft logout");
}

/// "The old refresh token remains valid until the new access token or refresh token is used"
/// (spec: "Refreshing access tokens"): a client that lost the response can retry.
#[tokio::test]
async fn a_refresh_can_be_retried_until_the_new_tokens_are_used() {
    let s = TestServer::start().await;
    s.register("retry", "pw-long-enough").await;
    let (_, v) = s
        .post(LOGIN, None, json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "retry"}, "password": "pw-long-enough", "refresh_token": true}))
        .await;
    let old = v["refresh_token"].as_str().unwrap();
    let (st, lost) = s.post("/_matrix/client/v3/refresh", None, json!({"refresh_token": old})).await;
    assert_eq!(st, 200, "{lost}");
    // The response "got lost": retry with the old token.
    let (st, second) = s.post("/_matrix/client/v3/refresh", None, json!({"refresh_token": old})).await;
    assert_eq!(st, 200, "{second}");
    // Using the new refresh token revokes the old one and the lost sibling.
    let (st, third) =
        s.post("/_matrix/client/v3/refresh", None, json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(st, 200, "{third}");
    assert_err(
        &s.post("/_matrix/client/v3/refresh", None, json!({"refresh_token": old})).await,
        401,
        "M_UNKNOWN_TOKEN",
    );
    assert_err(&s.get(WHOAMI, lost["access_token"].as_str()).await, 401, "M_UNKNOWN_TOKEN");
    assert_eq!(s.get(WHOAMI, third["access_token"].as_str()).await.0, 200);
}

#[tokio::test]
async fn login_token_is_single_use_and_needs_reauthentication() {
    let s = TestServer::start().await;
    let token = s.register("erin", "pw-long-enough").await["access_token"].as_str().unwrap().to_owned();
    let (st, uia) = s.post("/_matrix/client/v1/login/get_token", Some(&token), json!({})).await;
    assert_eq!(st, 401, "{uia}");
    let (st, v) = s
        .post(
            "/_matrix/client/v1/login/get_token",
            Some(&token),
            json!({"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "erin"}, "password": "pw-long-enough", "session": uia["session"]}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["expires_in_ms"], 120_000);
    let login_token = v["login_token"].as_str().unwrap();
    let (st, l) = s.post(LOGIN, None, json!({"type": "m.login.token", "token": login_token})).await;
    assert_eq!(st, 200, "{l}");
    assert_eq!(l["user_id"], "@erin:hearth.test");
    assert_err(&s.post(LOGIN, None, json!({"type": "m.login.token", "token": login_token})).await, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn logout_ends_one_device_and_logout_all_ends_every_device() {
    let s = TestServer::start().await;
    s.register("fay", "pw-long-enough").await;
    let tokens: Vec<String> = futures::future::join_all((0..3).map(|_| s.login("fay", "pw-long-enough")))
        .await
        .into_iter()
        .map(|(_, v)| v["access_token"].as_str().unwrap().to_owned())
        .collect();
    // Every token is used first, so a session the server remembers must still end at logout.
    for t in &tokens {
        assert_eq!(s.get(WHOAMI, Some(t)).await.0, 200);
    }
    let (st, _) = s.post("/_matrix/client/v3/logout", Some(&tokens[0]), json!({})).await;
    assert_eq!(st, 200);
    assert_err(&s.get(WHOAMI, Some(&tokens[0])).await, 401, "M_UNKNOWN_TOKEN");
    let (_, devices) = s.get("/_matrix/client/v3/devices", Some(&tokens[1])).await;
    assert_eq!(devices["devices"].as_array().unwrap().len(), 3, "registration device + two logins left");
    let (st, _) = s.post("/_matrix/client/v3/logout/all", Some(&tokens[1]), json!({})).await;
    assert_eq!(st, 200);
    for t in &tokens[1..] {
        assert_err(&s.get(WHOAMI, Some(t)).await, 401, "M_UNKNOWN_TOKEN");
    }
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let s = TestServer::start_with(|c| {
        c.rc_login.failed_attempts = hearth_server::config::RateLimit { per_second: 0.001, burst_count: 3.0 };
    })
    .await;
    s.register("gus", "pw-long-enough").await;
    assert_eq!(s.login("gus", "pw-long-enough").await.0, 200, "successes are not charged");
    for _ in 0..3 {
        assert_err(&s.login("gus", "wrong").await, 403, "M_FORBIDDEN");
    }
    let r = s.login("gus", "wrong").await;
    assert_err(&r, 429, "M_LIMIT_EXCEEDED");
    // Even the right password is refused now, so a guesser learns nothing from the answer.
    assert_err(&s.login("gus", "pw-long-enough").await, 429, "M_LIMIT_EXCEEDED");
    // Other accounts are not affected.
    s.register("hal", "pw-long-enough").await;
    assert_eq!(s.login("hal", "pw-long-enough").await.0, 200);
}
