//! Pushers and delivery to a real HTTP push gateway on loopback (spec: Push Gateway API, the
//! format Sygnal serves): notifications arrive with counts and device data, failures are retried,
//! rejected pushkeys remove the pusher.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use common::{TestServer, assert_err};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<Value>>>,
    /// Responses to give, in order; afterwards 200 {"rejected": []}.
    script: Arc<Mutex<Vec<(u16, Value)>>>,
}

async fn notify(State(g): State<Gateway>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    g.received.lock().unwrap().push(body);
    let next = {
        let mut s = g.script.lock().unwrap();
        if s.is_empty() { None } else { Some(s.remove(0)) }
    };
    match next {
        Some((code, reply)) => (StatusCode::from_u16(code).unwrap(), Json(reply)),
        None => (StatusCode::OK, Json(json!({"rejected": []}))),
    }
}

async fn start_gateway(g: Gateway) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/_matrix/push/v1/notify", post(notify)).with_state(g);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/_matrix/push/v1/notify")
}

/// A server allowed to reach push gateways on 127.0.0.1 (refused by default, as every loopback
/// and private address is).
async fn with_gateway_on_loopback() -> TestServer {
    TestServer::start_with(|c| c.ip_range_whitelist = vec!["127.0.0.1".into()]).await
}

async fn wait_for(g: &Gateway, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        if g.received.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    g.received.lock().unwrap().clone()
}

#[tokio::test]
async fn a_message_is_pushed_to_the_gateway_with_retries_and_rejections() {
    let gateway = Gateway::default();
    // The first delivery fails twice before it gets through.
    gateway.script.lock().unwrap().extend([(500, json!({})), (503, json!({}))]);
    let url = start_gateway(gateway.clone()).await;

    let s = with_gateway_on_loopback().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let pusher = json!({"kind": "http", "app_id": "org.hearth.test", "pushkey": "PHONE1", "app_display_name": "Hearth",
                        "device_display_name": "Bob's phone", "lang": "en", "data": {"url": url, "format": "event_id_only", "extra": 1}});
    let (st, v) = s.post("/_matrix/client/v3/pushers/set", Some(&bob), pusher.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (_, list) = s.get("/_matrix/client/v3/pushers", Some(&bob)).await;
    assert_eq!(list["pushers"][0]["pushkey"], "PHONE1");

    let (_, room) = s
        .post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat", "name": "Kitchen"}))
        .await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let (_, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/p1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "tea?"}),
        )
        .await;

    let got = wait_for(&gateway, 3).await;
    assert_eq!(got.len(), 3, "two failures, then success: {got:?}");
    let n = &got[2]["notification"];
    assert_eq!(n["event_id"], sent["event_id"]);
    assert_eq!(n["room_id"], room.as_str());
    assert_eq!(n["counts"]["unread"], 1);
    assert_eq!(n["devices"][0]["pushkey"], "PHONE1");
    assert_eq!(n["devices"][0]["data"]["extra"], 1);
    assert!(n["devices"][0]["data"].get("url").is_none(), "the URL is not echoed");
    assert!(n.get("content").is_none(), "event_id_only format carries no content");

    // The gateway rejects the pushkey: the pusher is removed.
    gateway.script.lock().unwrap().push((200, json!({"rejected": ["PHONE1"]})));
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/p2"),
        Some(&alice),
        json!({"msgtype": "m.text", "body": "hello?"}),
    )
    .await;
    wait_for(&gateway, 4).await;
    let mut removed = false;
    for _ in 0..100 {
        let (_, list) = s.get("/_matrix/client/v3/pushers", Some(&bob)).await;
        if list["pushers"].as_array().unwrap().is_empty() {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(removed, "a rejected pushkey's pusher is deleted");
}

#[tokio::test]
async fn full_format_pushes_carry_the_message_and_names() {
    let gateway = Gateway::default();
    let url = start_gateway(gateway.clone()).await;
    let s = with_gateway_on_loopback().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let pusher = json!({"kind": "http", "app_id": "a", "pushkey": "K", "app_display_name": "A", "device_display_name": "D", "lang": "en", "data": {"url": url}});
    s.post("/_matrix/client/v3/pushers/set", Some(&bob), pusher).await;
    let (_, room) = s
        .post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat", "name": "Kitchen"}))
        .await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/f1"),
        Some(&alice),
        json!({"msgtype": "m.text", "body": "dinner"}),
    )
    .await;
    let got = wait_for(&gateway, 1).await;
    let n = &got[0]["notification"];
    assert_eq!(n["content"]["body"], "dinner");
    assert_eq!(n["room_name"], "Kitchen");
    assert_eq!(n["sender"], "@alice:hearth.test");
    assert_eq!(n["sender_display_name"], "alice");
    assert_eq!(n["type"], "m.room.message");
}

#[tokio::test]
async fn bad_pushers_are_refused_and_deletion_works() {
    let s = TestServer::start().await;
    let t = s.user("carl").await;
    let bad_url = json!({"kind": "http", "app_id": "a", "pushkey": "K", "app_display_name": "A", "device_display_name": "D", "lang": "en", "data": {"url": "http://127.0.0.1:1/elsewhere"}});
    assert_err(&s.post("/_matrix/client/v3/pushers/set", Some(&t), bad_url).await, 400, "M_INVALID_PARAM");
    let no_url = json!({"kind": "http", "app_id": "a", "pushkey": "K", "app_display_name": "A", "device_display_name": "D", "lang": "en", "data": {}});
    assert_err(&s.post("/_matrix/client/v3/pushers/set", Some(&t), no_url).await, 400, "M_MISSING_PARAM");
    let ok = json!({"kind": "http", "app_id": "a", "pushkey": "K", "app_display_name": "A", "device_display_name": "D", "lang": "en", "data": {"url": "https://push.example.org/_matrix/push/v1/notify"}});
    assert_eq!(s.post("/_matrix/client/v3/pushers/set", Some(&t), ok).await.0, 200);
    let (st, _) =
        s.post("/_matrix/client/v3/pushers/set", Some(&t), json!({"kind": null, "app_id": "a", "pushkey": "K"})).await;
    assert_eq!(st, 200);
    let (_, list) = s.get("/_matrix/client/v3/pushers", Some(&t)).await;
    assert!(list["pushers"].as_array().unwrap().is_empty());
}

fn pusher_to(url: &str, pushkey: &str) -> Value {
    json!({"kind": "http", "app_id": "org.hearth.test", "pushkey": pushkey, "app_display_name": "Hearth",
           "device_display_name": "phone", "lang": "en", "data": {"url": url}})
}

/// A "gateway" on `ip` that answers every notification with a redirect to `target`; counts them.
async fn start_redirector(ip: &str, target: &str) -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(0));
    let (counter, target) = (hits.clone(), target.to_owned());
    let app = Router::new().route(
        "/_matrix/push/v1/notify",
        post(move || {
            *counter.lock().unwrap() += 1;
            let target = target.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", target)]) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/_matrix/push/v1/notify"), hits)
}

/// Any user can register a pusher, so its URL must not let them make the server post to
/// addresses inside its own network (ip_range_blacklist, as in Synapse).
#[tokio::test]
async fn pushers_cannot_reach_internal_addresses_directly_by_name_or_through_a_redirect() {
    let gateway = Gateway::default();
    let internal = start_gateway(gateway.clone()).await;
    let port = internal.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    // The redirector's own address is opened; the gateway it points to is not.
    let (redirecting, hits) = start_redirector("127.0.0.2", &internal).await;
    let s = TestServer::start_with(|c| c.ip_range_whitelist = vec!["127.0.0.2".into()]).await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;

    // Addresses given literally are refused when the pusher is set, in every spelling.
    for url in [
        internal.clone(),
        "http://10.0.0.1/_matrix/push/v1/notify".to_owned(),
        "http://169.254.169.254/_matrix/push/v1/notify".to_owned(),
        format!("http://[::1]:{port}/_matrix/push/v1/notify"),
        format!("http://[::ffff:127.0.0.1]:{port}/_matrix/push/v1/notify"),
        format!("http://2130706433:{port}/_matrix/push/v1/notify"),
    ] {
        let r = s.post("/_matrix/client/v3/pushers/set", Some(&bob), pusher_to(&url, "LITERAL")).await;
        assert_err(&r, 400, "M_INVALID_PARAM");
    }
    // A name is resolved when a notification goes out: localhost is loopback, so nothing is sent.
    let by_name = format!("http://localhost:{port}/_matrix/push/v1/notify");
    let r = s.post("/_matrix/client/v3/pushers/set", Some(&bob), pusher_to(&by_name, "BYNAME")).await;
    assert_eq!(r.0, 200, "{}", r.1);
    let r = s.post("/_matrix/client/v3/pushers/set", Some(&bob), pusher_to(&redirecting, "REDIRECT")).await;
    assert_eq!(r.0, 200, "{}", r.1);

    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/r1"),
        Some(&alice),
        json!({"msgtype": "m.text", "body": "psst"}),
    )
    .await;

    // The notification went out (to the redirector) ...
    for _ in 0..200 {
        if *hits.lock().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(*hits.lock().unwrap(), 1, "the allowed gateway was asked once, and its redirect not retried");
    // ... and nothing reached the internal gateway, by name or by the redirect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gateway.received.lock().unwrap().is_empty(), "{:?}", gateway.received.lock().unwrap());
}
