//! Delayed events (MSC4140) as Element Call uses them and Synapse serves them: an event
//! scheduled with `?org.matrix.msc4140.delay=`, listed, restarted (the heartbeat), sent early or
//! cancelled; a state change by someone else overtakes it; and every refusal Synapse gives.
//! Surviving kill -9 is in process.rs.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, assert_err, urlencode};
use hearth_server::config::{HumanDuration, RateLimit};
use serde_json::{Value, json};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

const DE: &str = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events";

async fn room(s: &TestServer, token: &str, body: Value) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), body).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

/// Schedules a message; returns the answer.
async fn delayed_message(
    s: &TestServer,
    token: &str,
    room: &str,
    txn: &str,
    delay: &str,
) -> (reqwest::StatusCode, Value) {
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}?org.matrix.msc4140.delay={delay}"),
        Some(token),
        json!({"msgtype": "m.text", "body": txn}),
    )
    .await
}

async fn delay_id_of(s: &TestServer, token: &str, room: &str, txn: &str, delay_ms: u64) -> String {
    let (st, v) = delayed_message(s, token, room, txn, &delay_ms.to_string()).await;
    assert_eq!(st, 200, "{v}");
    assert!(v.get("event_id").is_none(), "a scheduled event has no event ID yet: {v}");
    v["delay_id"].as_str().expect("a delay ID").to_owned()
}

/// The message bodies of the room, oldest first.
async fn bodies(s: &TestServer, token: &str, room: &str) -> Vec<String> {
    let (st, v) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"), Some(token)).await;
    assert_eq!(st, 200, "{v}");
    let mut out: Vec<String> = v["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
        .collect();
    out.reverse();
    out
}

/// Waits until the room has a message with this body; returns how long that took.
async fn wait_for_body(s: &TestServer, token: &str, room: &str, body: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if bodies(s, token, room).await.iter().any(|b| b == body) {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{body:?} was not sent within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn list(s: &TestServer, token: &str) -> Vec<Value> {
    let (st, v) = s.get(DE, Some(token)).await;
    assert_eq!(st, 200, "{v}");
    v["delayed_events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_delayed_message_is_listed_then_sent_after_its_delay_by_its_author() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await.0, 200);

    let before = now_ms();
    let id = delay_id_of(&s, &alice, &r, "later", 1500).await;
    let listed = list(&s, &alice).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let e = &listed[0];
    assert_eq!(
        (e["delay_id"].as_str(), e["room_id"].as_str(), e["type"].as_str()),
        (Some(&*id), Some(&*r), Some("m.room.message"))
    );
    assert_eq!(e["delay_ms"], 1500);
    assert_eq!(e["content"]["body"], "later");
    assert!(e.get("state_key").is_none(), "a message event has no state key: {e}");
    let since = e["delayed_since_ts"].as_i64().unwrap();
    assert!(since >= before && since <= now_ms(), "{e}");
    // The field names of the MSC's earlier drafts, which clients still read.
    assert_eq!((e["delay"].as_i64(), e["running_since"].as_i64()), (Some(1500), Some(since)));
    // Only its author sees it.
    assert!(list(&s, &bob).await.is_empty());
    assert_err(&s.get(&format!("{DE}/{id}"), Some(&bob)).await, 404, "M_NOT_FOUND");
    let (st, one) = s.get(&format!("{DE}/{id}"), Some(&alice)).await;
    assert_eq!((st.as_u16(), &one["delay_id"]), (200, &json!(id)), "{one}");

    assert!(!bodies(&s, &bob, &r).await.contains(&"later".to_owned()), "sent before its time");
    wait_for_body(&s, &bob, &r, "later", Duration::from_secs(10)).await;
    assert!(now_ms() - since >= 1500, "sent before its delay");
    let (_, msgs) = s.get(&format!("/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=1"), Some(&bob)).await;
    assert_eq!(msgs["chunk"][0]["sender"], "@alice:hearth.test", "{msgs}");
    // Sent, it is no longer scheduled, and it cannot be cancelled any more.
    assert!(list(&s, &alice).await.is_empty());
    assert_err(&s.post(&format!("{DE}/{id}"), Some(&alice), json!({"action": "cancel"})).await, 404, "M_NOT_FOUND");
}

#[tokio::test]
async fn restarting_postpones_cancelling_drops_and_sending_sends_at_once() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;

    // Restart (the heartbeat Element Call sends): the delay starts over.
    let beat = delay_id_of(&s, &alice, &r, "heartbeat", 2000).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(s.post(&format!("{DE}/{beat}"), None, json!({"action": "restart"})).await.0, 200);
    let restarted = now_ms();
    let listed = list(&s, &alice).await;
    assert!(listed[0]["delayed_since_ts"].as_i64().unwrap() >= restarted - 100, "{listed:?}");
    // Past the first deadline it is still waiting.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!bodies(&s, &alice, &r).await.contains(&"heartbeat".to_owned()), "sent despite the restart");
    wait_for_body(&s, &alice, &r, "heartbeat", Duration::from_secs(10)).await;
    assert!(now_ms() - restarted >= 2000, "sent before the restarted delay");

    // Cancel: never sent. The sub-path form and the action form do the same.
    let dropped = delay_id_of(&s, &alice, &r, "dropped", 500).await;
    let (st, v) = s.post(&format!("{DE}/{dropped}/cancel"), Some(&alice), json!({})).await;
    assert_eq!((st.as_u16(), &v), (200, &json!({})));
    assert_err(&s.post(&format!("{DE}/{dropped}/cancel"), Some(&alice), json!({})).await, 404, "M_NOT_FOUND");
    assert_err(&s.post(&format!("{DE}/{dropped}/restart"), Some(&alice), json!({})).await, 404, "M_NOT_FOUND");

    // Send: now, long before its hour is up.
    let early = delay_id_of(&s, &alice, &r, "early", 3_600_000).await;
    let (st, _) = s.post(&format!("{DE}/{early}"), Some(&alice), json!({"action": "send"})).await;
    assert_eq!(st, 200);
    assert!(bodies(&s, &alice, &r).await.contains(&"early".to_owned()), "sent when asked");
    assert_err(&s.post(&format!("{DE}/{early}/send"), Some(&alice), json!({})).await, 404, "M_NOT_FOUND");
    assert!(list(&s, &alice).await.is_empty());

    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        bodies(&s, &alice, &r).await.iter().filter(|b| ["heartbeat", "dropped", "early"].contains(&b.as_str())).count(),
        2,
        "the cancelled one never came, the others once each"
    );
}

#[tokio::test]
async fn a_delayed_state_event_is_overtaken_by_someone_elses_change_to_that_state() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(
        &s,
        &alice,
        json!({"preset": "public_chat", "power_level_content_override": {"users": {"@bob:hearth.test": 100}}}),
    )
    .await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await.0, 200);
    let topic = format!("/_matrix/client/v3/rooms/{r}/state/m.room.topic/");
    let delayed = format!("{topic}?org.matrix.msc4140.delay=1500");

    // Alice's own change does not cancel hers: it is sent when due.
    let (st, v) = s.put(&delayed, Some(&alice), json!({"topic": "from alice, later"})).await;
    assert_eq!(st, 200, "{v}");
    let listed = list(&s, &alice).await;
    assert_eq!((listed[0]["state_key"].as_str(), listed[0]["type"].as_str()), (Some(""), Some("m.room.topic")));
    assert_eq!(s.put(&topic, Some(&alice), json!({"topic": "from alice, now"})).await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, t) = s.get(&topic, Some(&bob)).await;
        if t["topic"] == "from alice, later" {
            break;
        }
        assert!(Instant::now() < deadline, "alice's delayed topic never came: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Bob changes the topic while Alice's next one waits: hers is dropped.
    let (st, v) = s.put(&delayed, Some(&alice), json!({"topic": "stale"})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.put(&topic, Some(&bob), json!({"topic": "bob's"})).await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !list(&s, &alice).await.is_empty() {
        assert!(Instant::now() < deadline, "alice's delayed topic was not cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let (_, t) = s.get(&topic, Some(&alice)).await;
    assert_eq!(t["topic"], "bob's");
}

#[tokio::test]
async fn delays_out_of_bounds_and_bad_requests_get_synapses_errors() {
    let s = TestServer::start_with(|c| {
        c.max_event_delay_duration = Some(HumanDuration(Duration::from_secs(60)));
        c.experimental_features.msc4140_max_delayed_events_per_user = 2;
    })
    .await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;
    let (_, caps) = s.get("/_matrix/client/v3/capabilities", Some(&alice)).await;
    assert_eq!(
        caps["capabilities"]["org.matrix.msc4140.delayed_events"],
        json!({"max_delay_ms": 60000, "max_scheduled": 2})
    );
    let (_, versions) = s.get("/_matrix/client/versions", None).await;
    assert_eq!(versions["unstable_features"]["org.matrix.msc4140"], true);

    assert_err(&delayed_message(&s, &alice, &r, "a", "60001").await, 400, "ORG.MATRIX.MSC4140_DELAY_TOO_LARGE");
    assert_err(&delayed_message(&s, &alice, &r, "b", "-5").await, 400, "M_INVALID_PARAM");
    assert_err(&delayed_message(&s, &alice, &r, "c", "soon").await, 400, "M_INVALID_PARAM");
    assert_eq!(delayed_message(&s, &alice, &r, "d", "40000").await.0, 200, "a delay within the limit is accepted");
    let unknown = urlencode("!nowhere:hearth.test");
    assert_err(&delayed_message(&s, &alice, &unknown, "e", "1000").await, 404, "M_NOT_FOUND");
    // The same transaction again is the same scheduled event, not another one.
    let first = delay_id_of(&s, &alice, &r, "twice", 30_000).await;
    assert_eq!(delay_id_of(&s, &alice, &r, "twice", 30_000).await, first);
    // Two scheduled: the third waits until the earlier one is sent.
    let third = delayed_message(&s, &alice, &r, "third", "1000").await;
    assert_err(&third, 429, "M_LIMIT_EXCEEDED");
    let wait = third.1["retry_after_ms"].as_u64().unwrap();
    assert!((20_000..=30_000).contains(&wait), "{}", third.1);

    // Managing: the action is named and known; the delay ID exists.
    assert_err(&s.post(&format!("{DE}/{first}"), Some(&alice), json!({})).await, 400, "M_MISSING_PARAM");
    assert_err(
        &s.post(&format!("{DE}/{first}"), Some(&alice), json!({"action": "later"})).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(&s.post(&format!("{DE}/{first}"), Some(&alice), json!({"action": 1})).await, 400, "M_INVALID_PARAM");
    let (st, v) = s.raw(reqwest::Method::POST, &format!("{DE}/{first}"), Some(&alice), b"{nope".to_vec()).await;
    assert_err(&(st, v), 400, "M_NOT_JSON");
    assert_err(&s.post(&format!("{DE}/hd_unknown"), Some(&alice), json!({"action": "send"})).await, 404, "M_NOT_FOUND");
    // Listing needs a sign-in; a bad token is refused even where none is needed.
    assert_err(&s.get(DE, None).await, 401, "M_MISSING_TOKEN");
    assert_err(&s.post(&format!("{DE}/{first}/restart"), Some("bogus"), json!({})).await, 401, "M_UNKNOWN_TOKEN");
    // Nothing refused was scheduled.
    assert_eq!(list(&s, &alice).await.len(), 2);
}

#[tokio::test]
async fn switched_off_scheduling_is_refused_and_not_advertised() {
    let s = TestServer::start_with(|c| c.max_event_delay_duration = Some(HumanDuration(Duration::ZERO))).await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;
    assert_err(&delayed_message(&s, &alice, &r, "a", "1000").await, 403, "M_FORBIDDEN");
    let (_, state) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{r}/state/m.room.topic/?org.matrix.msc4140.delay=10"),
            Some(&alice),
            json!({"topic": "x"}),
        )
        .await;
    assert_eq!(state["errcode"], "M_FORBIDDEN", "{state}");
    let (_, versions) = s.get("/_matrix/client/versions", None).await;
    assert!(versions["unstable_features"].get("org.matrix.msc4140").is_none(), "{versions}");
    let (_, caps) = s.get("/_matrix/client/v3/capabilities", Some(&alice)).await;
    assert_eq!(caps["capabilities"]["org.matrix.msc4140.delayed_events"]["max_delay_ms"], 0);
    // Sending without a delay is unaffected.
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{r}/send/m.room.message/now"),
            Some(&alice),
            json!({"body": "now", "msgtype": "m.text"}),
        )
        .await;
    assert!(st == 200 && v["event_id"].is_string(), "{v}");
}

#[tokio::test]
async fn managing_is_rate_limited_per_user_and_per_address_and_deactivation_cancels() {
    let s =
        TestServer::start_with(|c| c.rc_delayed_event_mgmt = RateLimit { per_second: 0.0001, burst_count: 3.0 }).await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;
    let id = delay_id_of(&s, &alice, &r, "hold", 60_000).await;
    for _ in 0..3 {
        assert_eq!(s.post(&format!("{DE}/{id}/restart"), Some(&alice), json!({})).await.0, 200);
    }
    let limited = s.post(&format!("{DE}/{id}/restart"), Some(&alice), json!({})).await;
    assert_err(&limited, 429, "M_LIMIT_EXCEEDED");
    assert_err(&s.get(DE, Some(&alice)).await, 429, "M_LIMIT_EXCEEDED");
    // Without a token the address has a budget of its own.
    for _ in 0..3 {
        assert_eq!(s.post(&format!("{DE}/{id}/restart"), None, json!({})).await.0, 200);
    }
    assert_err(&s.post(&format!("{DE}/{id}/restart"), None, json!({})).await, 429, "M_LIMIT_EXCEEDED");

    // A deactivated account's scheduled events are dropped: "hold" is never sent.
    let bob = s.user("bob").await;
    let r2 = room(&s, &bob, json!({"preset": "public_chat"})).await;
    let (_, _) = s.post(&format!("/_matrix/client/v3/join/{r2}"), Some(&alice), json!({})).await;
    let (st, v) = delayed_message(&s, &bob, &r2, "from bob", "800").await;
    assert_eq!(st, 200, "{v}");
    let (_, uia) = s.post("/_matrix/client/v3/account/deactivate", Some(&bob), json!({})).await;
    let auth = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "password1", "session": uia["session"]});
    let (st, v) = s.post("/_matrix/client/v3/account/deactivate", Some(&bob), json!({"auth": auth})).await;
    assert_eq!(st, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!bodies(&s, &alice, &r2).await.contains(&"from bob".to_owned()), "sent for a deactivated account");
}
