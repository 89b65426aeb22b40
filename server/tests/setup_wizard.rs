//! The setup wizard's steps over the admin API (each idempotent and resumable, the server
//! saying which step is next), with the restarts that apply them, checked through the Matrix
//! API afterwards.

mod common;

use common::{TestServer, assert_err};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn call(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let running = s.running.as_ref().unwrap();
    let mut req = reqwest::Client::new().request(method, format!("http://{}/_hearth/admin/v1{path}", running.admin_addr())).bearer_auth(running.admin_token());
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
    assert_err(&call(&s, Method::POST, "/setup/reach", Some(json!({"mode": "tunnel", "public_url": "http://insecure.example"}))).await, 400, "M_INVALID_PARAM");
    let v = step(&mut s, "reach", json!({"mode": "tunnel", "public_url": "https://family.trycloudflare.example"})).await;
    assert_eq!(v["local_target"], s.base);
    assert!(v["commands"]["cloudflared"].as_str().unwrap().contains(&s.base));
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], "https://family.trycloudflare.example");

    // This computer only, after all.
    step(&mut s, "reach", json!({"mode": "local"})).await;
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], s.base);
    // The home network needs a listener on the network: the answer says how.
    let r = call(&s, Method::POST, "/setup/reach", Some(json!({"mode": "lan"}))).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    assert!(r.1["error"].as_str().unwrap().contains("0.0.0.0"), "{}", r.1);

    // The server name, confirmed, before any account exists.
    assert_err(&call(&s, Method::POST, "/setup/server_name", Some(json!({"server_name": "family.example"}))).await, 400, "M_INVALID_PARAM");
    assert_err(&call(&s, Method::POST, "/setup/server_name", Some(json!({"server_name": "not a name", "confirm": true}))).await, 400, "M_INVALID_PARAM");
    step(&mut s, "server_name", json!({"server_name": "Family.Example", "confirm": true})).await;
    assert_eq!(current(&s).await, "admin");

    let v = step(&mut s, "admin", json!({"username": "mum", "password": "a-long-password"})).await;
    assert_eq!(v["user_id"], "@mum:family.example");
    let (st, login) = s.login("mum", "a-long-password").await;
    assert_eq!(st, 200, "{login}");
    assert_eq!(login["user_id"], "@mum:family.example");
    let token = login["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/_synapse/admin/v1/registration_tokens", Some(&token)).await.0, 200, "the first account is an admin");
    // Now the name is permanent.
    let r = call(&s, Method::POST, "/setup/server_name", Some(json!({"server_name": "other.example", "confirm": true}))).await;
    assert_err(&r, 403, "M_FORBIDDEN");

    step(&mut s, "registration", json!({"policy": "invite"})).await;
    let r = s.post("/_matrix/client/v3/register", None, json!({"username": "stranger", "password": "a-long-password", "auth": {"type": "m.login.dummy"}})).await;
    assert_err(&r, 403, "M_FORBIDDEN");
    assert_err(&call(&s, Method::POST, "/setup/registration", Some(json!({"policy": "open"}))).await, 400, "M_INVALID_PARAM");

    // The check: the public address answers; the server name (a made-up domain) does not lead
    // to it, and the report says how to fix that.
    let v = step(&mut s, "check", json!({})).await;
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks[0]["result"], "pass", "{v}");
    assert_eq!(checks[1]["result"], "fail", "{v}");
    assert!(checks[1]["fix"].as_str().unwrap().contains(".well-known"), "{v}");
    assert_eq!(checks[2]["result"], "skipped");

    step(&mut s, "done", json!({})).await;
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["complete"], true);
    assert_eq!(state["server_name"], "family.example");
    assert_err(&call(&s, Method::POST, "/setup/teleport", Some(json!({}))).await, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn the_proxy_reach_mode_sets_an_https_address_for_the_host() {
    let mut s = TestServer::start().await;
    assert_err(&call(&s, Method::POST, "/setup/reach", Some(json!({"mode": "proxy", "public_host": "https://x/"}))).await, 400, "M_INVALID_PARAM");
    assert_err(&call(&s, Method::POST, "/setup/reach", Some(json!({"mode": "carrier-pigeon"}))).await, 400, "M_INVALID_PARAM");
    assert_err(&call(&s, Method::POST, "/setup/reach", Some(json!({}))).await, 400, "M_MISSING_PARAM");
    step(&mut s, "reach", json!({"mode": "proxy", "public_host": "matrix.example.org"})).await;
    let (_, wk) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(wk["m.homeserver"]["base_url"], "https://matrix.example.org");
    let (_, state) = call(&s, Method::GET, "/setup", None).await;
    assert_eq!(state["reach"]["mode"], "proxy");
    assert_eq!(state["done"], json!(["reach"]));
    assert_eq!(state["current"], "welcome", "the first step not done");
}
