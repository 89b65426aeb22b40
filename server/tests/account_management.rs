//! Password change, deactivation and device management behind User-Interactive Authentication
//! (spec: Client-Server API, "User-Interactive Authentication API", "Device management").

mod common;

use common::{TestServer, assert_err};
use serde_json::{Value, json};

fn password_auth(user: &str, password: &str, session: &Value) -> Value {
    json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password, "session": session})
}

#[tokio::test]
async fn password_change_needs_the_old_password_and_logs_out_other_devices() {
    let s = TestServer::start().await;
    let t1 = s.register("alice", "old-long-enough").await["access_token"].as_str().unwrap().to_owned();
    let (_, other) = s.login("alice", "old-long-enough").await;
    let t2 = other["access_token"].as_str().unwrap();

    let (st, uia) =
        s.post("/_matrix/client/v3/account/password", Some(&t1), json!({"new_password": "new-long-enough"})).await;
    assert_eq!(st, 401);
    assert_eq!(uia["flows"], json!([{"stages": ["m.login.password"]}]));

    // Wrong password: 401 with the error inside, same session, nothing changed.
    let (st, wrong) = s
        .post(
            "/_matrix/client/v3/account/password",
            Some(&t1),
            json!({"new_password": "new-long-enough", "auth": password_auth("alice", "bad", &uia["session"])}),
        )
        .await;
    assert_eq!(st, 401);
    assert_eq!(wrong["errcode"], "M_FORBIDDEN");
    assert_eq!(wrong["session"], uia["session"]);
    assert_eq!(s.login("alice", "old-long-enough").await.0, 200);

    let (st, v) = s
        .post(
            "/_matrix/client/v3/account/password",
            Some(&t1),
            json!({"new_password": "new-long-enough", "auth": password_auth("alice", "old-long-enough", &uia["session"])}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_err(&s.login("alice", "old-long-enough").await, 403, "M_FORBIDDEN");
    assert_eq!(s.login("alice", "new-long-enough").await.0, 200);
    // This device stays, the other was logged out (logout_devices defaults to true).
    assert_eq!(s.get("/_matrix/client/v3/account/whoami", Some(&t1)).await.0, 200);
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(t2)).await, 401, "M_UNKNOWN_TOKEN");
}

#[tokio::test]
async fn a_completed_uia_session_cannot_be_replayed() {
    let s = TestServer::start().await;
    let t = s.register("bob", "pw-long-enough").await["access_token"].as_str().unwrap().to_owned();
    let (_, uia) =
        s.post("/_matrix/client/v3/account/password", Some(&t), json!({"new_password": "pw2-long-enough"})).await;
    let auth = password_auth("bob", "pw-long-enough", &uia["session"]);
    let (st, _) = s
        .post("/_matrix/client/v3/account/password", Some(&t), json!({"new_password": "pw2-long-enough", "auth": auth}))
        .await;
    assert_eq!(st, 200);
    // Same session again, even with the (now old) correct data: refused.
    let r = s
        .post("/_matrix/client/v3/account/password", Some(&t), json!({"new_password": "pw3-long-enough", "auth": auth}))
        .await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    assert_eq!(s.login("bob", "pw2-long-enough").await.0, 200, "the replay changed nothing");
}

#[tokio::test]
async fn a_uia_session_is_bound_to_its_request() {
    let s = TestServer::start().await;
    let t = s.register("carl", "pw-long-enough").await["access_token"].as_str().unwrap().to_owned();
    let (_, other) = s.login("carl", "pw-long-enough").await;
    let other_device = other["device_id"].as_str().unwrap();
    // A session started for a password change cannot delete devices.
    let (_, uia) =
        s.post("/_matrix/client/v3/account/password", Some(&t), json!({"new_password": "x-long-enough"})).await;
    let r = s
        .post(
            "/_matrix/client/v3/delete_devices",
            Some(&t),
            json!({"devices": [other_device], "auth": password_auth("carl", "pw-long-enough", &uia["session"])}),
        )
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    // Nor can another user's session be used, nor a made-up one.
    let t2 = s.register("dora", "pw-long-enough").await["access_token"].as_str().unwrap().to_owned();
    let r = s
        .post(
            "/_matrix/client/v3/account/password",
            Some(&t2),
            json!({"new_password": "x-long-enough", "auth": password_auth("dora", "pw-long-enough", &uia["session"])}),
        )
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    let r = s
        .post(
            "/_matrix/client/v3/account/password",
            Some(&t2),
            json!({"new_password": "x-long-enough", "auth": password_auth("dora", "pw-long-enough", &json!("made-up"))}),
        )
        .await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    // Authenticating as someone else in your own session fails.
    let (_, uia2) =
        s.post("/_matrix/client/v3/account/password", Some(&t2), json!({"new_password": "x-long-enough"})).await;
    let (st, v) = s
        .post(
            "/_matrix/client/v3/account/password",
            Some(&t2),
            json!({"new_password": "x-long-enough", "auth": password_auth("carl", "pw-long-enough", &uia2["session"])}),
        )
        .await;
    assert_eq!((st.as_u16(), v["errcode"].clone()), (401, json!("M_FORBIDDEN")));
}

#[tokio::test]
async fn devices_can_be_listed_renamed_and_deleted() {
    let s = TestServer::start().await;
    let t = s.register("eve", "pw-long-enough").await["access_token"].as_str().unwrap().to_owned();
    let (_, me) = s.get("/_matrix/client/v3/account/whoami", Some(&t)).await;
    let mine = me["device_id"].as_str().unwrap().to_owned();
    let (_, l2) = s.login("eve", "pw-long-enough").await;
    let (_, l3) = s.login("eve", "pw-long-enough").await;
    let (d2, d3) = (l2["device_id"].as_str().unwrap(), l3["device_id"].as_str().unwrap());

    let (_, list) = s.get("/_matrix/client/v3/devices", Some(&t)).await;
    assert_eq!(list["devices"].as_array().unwrap().len(), 3);
    assert!(list["devices"][0]["last_seen_ts"].as_u64().unwrap() > 0);
    assert_eq!(list["devices"][0]["last_seen_ip"], "127.0.0.1");

    let (st, _) =
        s.put(&format!("/_matrix/client/v3/devices/{d2}"), Some(&t), json!({"display_name": "Kitchen tablet"})).await;
    assert_eq!(st, 200);
    let (_, one) = s.get(&format!("/_matrix/client/v3/devices/{d2}"), Some(&t)).await;
    assert_eq!(one["display_name"], "Kitchen tablet");
    // No display_name in the body leaves the name as it was.
    let (st, _) = s.put(&format!("/_matrix/client/v3/devices/{d2}"), Some(&t), json!({})).await;
    assert_eq!(st, 200);
    let (_, one) = s.get(&format!("/_matrix/client/v3/devices/{d2}"), Some(&t)).await;
    assert_eq!(one["display_name"], "Kitchen tablet");
    assert_err(&s.get("/_matrix/client/v3/devices/NOPE", Some(&t)).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.put("/_matrix/client/v3/devices/NOPE", Some(&t), json!({"display_name": "x"})).await,
        404,
        "M_NOT_FOUND",
    );

    // Delete one device with UIA.
    let path = format!("/_matrix/client/v3/devices/{d2}");
    let (st, uia) = s.call(reqwest::Method::DELETE, &path, Some(&t), Some(json!({}))).await;
    assert_eq!(st, 401);
    let (st, _) = s
        .call(
            reqwest::Method::DELETE,
            &path,
            Some(&t),
            Some(json!({"auth": password_auth("eve", "pw-long-enough", &uia["session"])})),
        )
        .await;
    assert_eq!(st, 200);
    assert_err(&s.get("/_matrix/client/v3/account/whoami", l2["access_token"].as_str()).await, 401, "M_UNKNOWN_TOKEN");

    // delete_devices: unknown IDs are ignored, the listed ones go.
    let body = json!({"devices": [d3, "UNKNOWN"]});
    let (st, uia) = s.post("/_matrix/client/v3/delete_devices", Some(&t), body.clone()).await;
    assert_eq!(st, 401);
    let mut with_auth = body;
    with_auth["auth"] = password_auth("eve", "pw-long-enough", &uia["session"]);
    let (st, v) = s.post("/_matrix/client/v3/delete_devices", Some(&t), with_auth).await;
    assert_eq!(st, 200, "{v}");
    let (_, list) = s.get("/_matrix/client/v3/devices", Some(&t)).await;
    let ids: Vec<&str> = list["devices"].as_array().unwrap().iter().map(|d| d["device_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [mine.as_str()]);
}

#[tokio::test]
async fn deactivation_ends_the_account_for_good() {
    let s = TestServer::start().await;
    let t = s.register("gone", "pw-long-enough").await["access_token"].as_str().unwrap().to_owned();
    let (_, uia) = s.post("/_matrix/client/v3/account/deactivate", Some(&t), json!({})).await;
    let (st, v) = s
        .post(
            "/_matrix/client/v3/account/deactivate",
            Some(&t),
            json!({"auth": password_auth("gone", "pw-long-enough", &uia["session"])}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["id_server_unbind_result"], "success");
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(&t)).await, 401, "M_UNKNOWN_TOKEN");
    assert_err(&s.login("gone", "pw-long-enough").await, 403, "M_FORBIDDEN");
    // The name stays taken so nobody can impersonate the old account.
    let r =
        s.post("/_matrix/client/v3/register", None, json!({"username": "gone", "password": "pw-long-enough"})).await;
    assert_err(&r, 400, "M_USER_IN_USE");
}
