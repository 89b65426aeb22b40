//! Concurrent requests never lose or duplicate state: parallel sends with one transaction ID,
//! parallel joins, racing state changes (each room's events are appended one at a time, in one
//! transaction each).

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn full_timeline(s: &TestServer, token: &str, room: &str) -> Vec<Value> {
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=f&from=s0&limit=1000"), Some(token)).await;
    page["chunk"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_same_transaction_id_sent_eight_times_at_once_makes_one_event() {
    let s = TestServer::start().await;
    let t = s.user("alice").await;
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&t), json!({})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/same-txn");
    let results = futures::future::join_all((0..8).map(|_| s.put(&path, Some(&t), json!({"msgtype": "m.text", "body": "once"})))).await;
    let ids: std::collections::HashSet<String> = results.iter().map(|(st, v)| {
        assert_eq!(*st, 200, "{v}");
        v["event_id"].as_str().unwrap().to_owned()
    }).collect();
    assert_eq!(ids.len(), 1, "one event ID for all");
    let messages = full_timeline(&s, &t, &room).await.into_iter().filter(|e| e["type"] == "m.room.message").count();
    assert_eq!(messages, 1);
}

#[tokio::test]
async fn ten_people_joining_at_once_are_all_members() {
    let s = TestServer::start().await;
    let owner = s.user("owner").await;
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&owner), json!({"preset": "public_chat"})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(s.user(&format!("guest{i}")).await);
    }
    let path = format!("/_matrix/client/v3/join/{room}");
    let joins = futures::future::join_all(tokens.iter().map(|t| s.post(&path, Some(t), json!({})))).await;
    assert!(joins.iter().all(|(st, _)| *st == 200), "{joins:?}");
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{room}/joined_members"), Some(&owner)).await;
    assert_eq!(members["joined"].as_object().unwrap().len(), 11);
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&owner)).await;
    assert_eq!(sync["rooms"]["join"][&room]["summary"]["m.joined_member_count"], 11);
}

#[tokio::test]
async fn racing_state_changes_end_in_the_last_applied_state() {
    let s = TestServer::start().await;
    let t = s.user("alice").await;
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&t), json!({})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/");
    let results = futures::future::join_all((0..10).map(|i| s.put(&path, Some(&t), json!({"name": format!("name {i}")})))).await;
    assert!(results.iter().all(|(st, _)| *st == 200));
    // Every change is in the timeline, in one order, and the current name is the last of them.
    let names: Vec<String> = full_timeline(&s, &t, &room)
        .await
        .into_iter()
        .filter(|e| e["type"] == "m.room.name")
        .map(|e| e["content"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 10);
    let (_, current) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/"), Some(&t)).await;
    assert_eq!(current["name"].as_str().unwrap(), names.last().unwrap());
    let (_, state) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state"), Some(&t)).await;
    assert_eq!(state.as_array().unwrap().iter().filter(|e| e["type"] == "m.room.name").count(), 1);
}

#[tokio::test]
async fn messages_from_many_senders_at_once_are_all_kept_in_one_order() {
    let s = TestServer::start().await;
    let owner = s.user("owner").await;
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&owner), json!({"preset": "public_chat"})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for i in 0..5 {
        let t = s.user(&format!("s{i}")).await;
        s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&t), json!({})).await;
        tokens.push(t);
    }
    let s = &s;
    let jobs: Vec<(usize, usize, &String)> = tokens.iter().enumerate().flat_map(|(i, t)| (0..10).map(move |j| (i, j, t))).collect();
    let sends = futures::future::join_all(jobs.into_iter().map(|(i, j, t)| {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t{j}");
        async move { s.put(&path, Some(t), json!({"msgtype": "m.text", "body": format!("{i}-{j}")})).await }
    }))
    .await;
    assert!(sends.iter().all(|(st, _)| *st == 200));
    let bodies: Vec<String> = full_timeline(&s, &owner, &room)
        .await
        .into_iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 50);
    let unique: std::collections::HashSet<_> = bodies.iter().collect();
    assert_eq!(unique.len(), 50, "no duplicates");
    // Each sender's messages keep their own order.
    for i in 0..5 {
        let mine: Vec<&String> = bodies.iter().filter(|b| b.starts_with(&format!("{i}-"))).collect();
        assert_eq!(mine.len(), 10);
    }
}
