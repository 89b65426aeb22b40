//! Concurrent requests never lose or duplicate state: parallel sends with one transaction ID,
//! parallel joins, racing state changes (each room's events are appended one at a time, in one
//! transaction each).

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn full_timeline(s: &TestServer, token: &str, room: &str) -> Vec<Value> {
    let (_, page) =
        s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=f&from=s0&limit=1000"), Some(token)).await;
    page["chunk"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_same_transaction_id_sent_eight_times_at_once_makes_one_event() {
    let s = TestServer::start().await;
    let t = s.user("alice").await;
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&t), json!({})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/same-txn");
    let results =
        futures::future::join_all((0..8).map(|_| s.put(&path, Some(&t), json!({"msgtype": "m.text", "body": "once"}))))
            .await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|(st, v)| {
            assert_eq!(*st, 200, "{v}");
            v["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one event ID for all");
    let messages = full_timeline(&s, &t, &room).await.into_iter().filter(|e| e["type"] == "m.room.message").count();
    assert_eq!(messages, 1);
}

/// A transaction is one device's ID on one endpoint (spec: "Transaction identifiers"): the same
/// ID sent to two rooms, or as two event types, makes separate events (Complement's
/// TestTxnIdempotency), across a restart too (the database's uniqueness has the same scope).
#[tokio::test]
async fn the_same_transaction_id_in_two_rooms_or_two_event_types_makes_separate_events() {
    let mut s = TestServer::start().await;
    let t = s.user("alice").await;
    let mut rooms = Vec::new();
    for _ in 0..2 {
        let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&t), json!({})).await;
        rooms.push(v["room_id"].as_str().unwrap().to_owned());
    }
    let send = |room: &str, kind: &str| format!("/_matrix/client/v3/rooms/{room}/send/{kind}/txn-1");
    let mut ids = std::collections::HashSet::new();
    for (room, kind) in [(&rooms[0], "m.room.message"), (&rooms[1], "m.room.message"), (&rooms[0], "m.hearth.test")] {
        let (st, v) = s.put(&send(room, kind), Some(&t), json!({"msgtype": "m.text", "body": kind})).await;
        assert_eq!(st, 200, "{v}");
        ids.insert(v["event_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 3, "three events: {ids:?}");
    for room in &rooms {
        let messages = full_timeline(&s, &t, room).await.into_iter().filter(|e| e["type"] == "m.room.message").count();
        assert_eq!(messages, 1);
    }
    // After a restart (the memory of transactions gone), a retry still answers its own event,
    // and the ID in a third room is still new.
    let (_, third) = s.post("/_matrix/client/v3/createRoom", Some(&t), json!({})).await;
    let third = third["room_id"].as_str().unwrap().to_owned();
    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let config = common::test_config(dir.path());
    let s = TestServer::start_in(dir, config).await;
    let (st, again) =
        s.put(&send(&rooms[1], "m.room.message"), Some(&t), json!({"msgtype": "m.text", "body": "again"})).await;
    assert_eq!(st, 200, "{again}");
    assert!(ids.contains(again["event_id"].as_str().unwrap()), "a retry answers the first event: {again}");
    let (st, new) = s.put(&send(&third, "m.room.message"), Some(&t), json!({"msgtype": "m.text", "body": "new"})).await;
    assert_eq!(st, 200, "{new}");
    assert!(!ids.contains(new["event_id"].as_str().unwrap()));
    assert_eq!(full_timeline(&s, &t, &rooms[1]).await.into_iter().filter(|e| e["type"] == "m.room.message").count(), 1);
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
    let results =
        futures::future::join_all((0..10).map(|i| s.put(&path, Some(&t), json!({"name": format!("name {i}")})))).await;
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
    let jobs: Vec<(usize, usize, &String)> =
        tokens.iter().enumerate().flat_map(|(i, t)| (0..10).map(move |j| (i, j, t))).collect();
    let sends = futures::future::join_all(jobs.into_iter().map(|(i, j, t)| {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t{j}");
        async move { s.put(&path, Some(t), json!({"msgtype": "m.text", "body": format!("{i}-{j}")})).await }
    }))
    .await;
    assert!(sends.iter().all(|(st, _)| *st == 200));
    let bodies: Vec<String> = full_timeline(s, &owner, &room)
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

/// Sends are written in batches while the next events of the room are already being built on
/// top of them. A write that fails (here a trigger planted in the database refuses one event
/// type) must fail that send and the ones built on it, never answer 200 for an event that is
/// not stored, leave other rooms alone, and leave the room working with a graph that only
/// names stored events.
#[tokio::test]
async fn a_failed_write_fails_alone_and_the_room_recovers() {
    let s = TestServer::start().await;
    let owner = s.user("owner").await;
    let mut rooms = Vec::new();
    for _ in 0..2 {
        let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&owner), json!({"preset": "public_chat"})).await;
        rooms.push(v["room_id"].as_str().unwrap().to_owned());
    }
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", s.dir.path().join("hearth.db").display())).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_for_test BEFORE INSERT ON events WHEN NEW.event_type = 'test.refused'
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
    )
    .execute(&db)
    .await
    .unwrap();

    let s = &s;
    let owner = &owner;
    let sends = futures::future::join_all((0..40).map(|i| {
        let room = rooms[i % 2].clone();
        async move {
            let kind = if i == 20 { "test.refused" } else { "m.room.message" };
            let path = format!("/_matrix/client/v3/rooms/{room}/send/{kind}/f{i}");
            let (st, v) = s.put(&path, Some(owner), json!({"msgtype": "m.text", "body": format!("m{i}")})).await;
            (i, room, st, v)
        }
    }))
    .await;
    let refused = sends.iter().find(|(i, ..)| *i == 20).unwrap();
    assert_eq!(refused.2, 500, "{:?}", refused.3);
    assert!(refused.3["errcode"].is_string(), "a Matrix error: {:?}", refused.3);
    for (i, room, st, v) in &sends {
        if room == &rooms[1] {
            assert_eq!(*st, 200, "room B is not affected ({i}: {v})");
        }
    }
    // Exactly the acknowledged messages are stored.
    for room in &rooms {
        let stored: std::collections::HashSet<String> = full_timeline(s, owner, room)
            .await
            .into_iter()
            .filter(|e| e["type"] == "m.room.message" || e["type"] == "test.refused")
            .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
            .collect();
        let acknowledged: std::collections::HashSet<String> =
            sends.iter().filter(|(_, r, st, _)| r == room && *st == 200).map(|(i, ..)| format!("m{i}")).collect();
        assert_eq!(stored, acknowledged);
    }
    // The room goes on, and its graph names only stored events.
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/after", rooms[0]),
            Some(owner),
            json!({"msgtype": "m.text", "body": "after"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (dangling,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM event_edges WHERE prev_event_id NOT IN (SELECT event_id FROM events)")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(dangling, 0, "prev_events name only stored events");
    let (extremities,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM forward_extremities f JOIN events e ON e.event_id = f.event_id WHERE f.room_id = ?",
    )
    .bind(&rooms[0])
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(extremities, 1);
}

/// Commits do not fold the write-ahead log into the database file themselves (that made one
/// commit in a few hundred take 3 to 5 ms); a background checkpointer does, shortly after writes.
/// 150 messages stay below the writer's own backstop threshold, so only the checkpointer can
/// have copied them into the database file.
#[tokio::test]
async fn messages_reach_the_database_file_shortly_after_they_are_written() {
    let s = TestServer::start().await;
    let token = s.user("alice").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&token), json!({})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    let file = s.dir.path().join("hearth.db");
    let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = size();
    for i in 0..150 {
        let body = json!({"msgtype": "m.text", "body": format!("message {i} {}", "x".repeat(500))});
        let (st, _) =
            s.put(&format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t{i}"), Some(&token), body).await;
        assert_eq!(st, 200);
    }
    let mut grown = 0;
    for _ in 0..50 {
        grown = size().saturating_sub(before);
        if grown > 128 * 1024 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(grown > 128 * 1024, "the database file grew by only {grown} bytes: nothing was checkpointed");
    assert_eq!(full_timeline(&s, &token, &room).await.iter().filter(|e| e["type"] == "m.room.message").count(), 150);
}

/// A message wakes every member's waiting /sync at once. More of them than the server builds
/// answers for at a time (eight) each get it when it is sent: none is dropped, none left
/// waiting for its timeout.
#[tokio::test]
async fn a_message_reaches_every_one_of_many_waiting_syncs() {
    let s = TestServer::start().await;
    let owner = s.user("owner").await;
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&owner), json!({"preset": "public_chat"})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    let mut readers = Vec::new();
    for i in 0..24 {
        let t = s.user(&format!("reader{i}")).await;
        let (st, _) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&t), json!({})).await;
        assert_eq!(st, 200);
        readers.push(t);
    }
    // Each reader's position after everyone joined, so only the message is news.
    let mut since = Vec::new();
    for t in &readers {
        let (_, sync) = s.get("/_matrix/client/v3/sync?timeout=0", Some(t)).await;
        since.push(sync["next_batch"].as_str().unwrap().to_owned());
    }
    let started = std::time::Instant::now();
    // Without presence: each reader coming online is news to the others, and would answer
    // their long-polls before the message.
    let no_presence = "%7B%22presence%22%3A%7B%22types%22%3A%5B%5D%7D%7D";
    let paths: Vec<String> =
        since.iter().map(|s| format!("/_matrix/client/v3/sync?since={s}&timeout=20000&filter={no_presence}")).collect();
    let waits = futures::future::join_all(readers.iter().zip(&paths).map(|(t, path)| s.get(path, Some(t))));
    let send = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        s.put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/to-all"),
            Some(&owner),
            json!({"msgtype": "m.text", "body": "to everyone"}),
        )
        .await
    };
    let (answers, (st, _)) = tokio::join!(waits, send);
    assert_eq!(st, 200);
    for (st, sync) in &answers {
        assert_eq!(*st, 200, "{sync}");
        let events = sync["rooms"]["join"][&room]["timeline"]["events"].as_array().cloned().unwrap_or_default();
        assert!(events.iter().any(|e| e["content"]["body"] == "to everyone"), "{sync}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "answered at the timeout: {:?}", started.elapsed());
}
