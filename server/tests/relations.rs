//! Edits, threads, references, /relations, /threads and /context (spec: "Forming relationships
//! between events", "Event replacements", "Threading", "Reference relations").

mod common;

use common::{TestServer, assert_err};
use serde_json::{Value, json};

async fn setup(s: &TestServer) -> (String, String, String) {
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat"})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    (alice, bob, room)
}

async fn send(s: &TestServer, token: &str, room: &str, txn: &str, content: Value) -> String {
    let (st, v) =
        s.put(&format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"), Some(token), content).await;
    assert_eq!(st, 200, "{v}");
    v["event_id"].as_str().unwrap().to_owned()
}

fn text(body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body})
}

fn edit(of: &str, body: &str) -> Value {
    json!({"msgtype": "m.text", "body": format!("* {body}"), "m.new_content": {"msgtype": "m.text", "body": body},
           "m.relates_to": {"rel_type": "m.replace", "event_id": of}})
}

fn reply_in_thread(root: &str, body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body, "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": true, "m.in_reply_to": {"event_id": root}}})
}

#[tokio::test]
async fn the_latest_edit_by_the_sender_is_bundled() {
    let s = TestServer::start().await;
    let (alice, bob, room) = setup(&s).await;
    let orig = send(&s, &alice, &room, "o", text("helo")).await;
    send(&s, &alice, &room, "e1", edit(&orig, "hello")).await;
    let last = send(&s, &alice, &room, "e2", edit(&orig, "hello!")).await;
    // Bob cannot edit alice's message: his "edit" is not bundled.
    send(&s, &bob, &room, "e3", edit(&orig, "hacked")).await;
    let (_, ev) = s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{orig}"), Some(&bob)).await;
    let replace = &ev["unsigned"]["m.relations"]["m.replace"];
    assert_eq!(replace["event_id"], last.as_str(), "{ev}");
    assert_eq!(replace["content"]["m.new_content"]["body"], "hello!");
    // The same bundle in /messages and /sync.
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50"), Some(&bob)).await;
    let in_page = page["chunk"].as_array().unwrap().iter().find(|e| e["event_id"] == orig.as_str()).unwrap();
    assert_eq!(in_page["unsigned"]["m.relations"]["m.replace"]["event_id"], last.as_str());
    let (_, sync) = s
        .get(
            "/_matrix/client/v3/sync?filter=%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A50%7D%7D%7D",
            Some(&bob),
        )
        .await;
    let in_sync = sync["rooms"]["join"][&room]["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == orig.as_str())
        .unwrap();
    assert_eq!(in_sync["unsigned"]["m.relations"]["m.replace"]["event_id"], last.as_str());
}

#[tokio::test]
async fn threads_are_summarised_listed_and_paginated() {
    let s = TestServer::start().await;
    let (alice, bob, room) = setup(&s).await;
    let root = send(&s, &alice, &room, "root", text("Holiday plans?")).await;
    let other_root = send(&s, &alice, &room, "root2", text("Groceries")).await;
    send(&s, &bob, &room, "t1", reply_in_thread(&root, "Beach")).await;
    let last = send(&s, &alice, &room, "t2", reply_in_thread(&root, "Mountains")).await;
    send(&s, &alice, &room, "t3", reply_in_thread(&other_root, "Milk")).await;

    let (_, ev) = s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{root}"), Some(&bob)).await;
    let thread = &ev["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(thread["count"], 2, "{ev}");
    assert_eq!(thread["latest_event"]["event_id"], last.as_str());
    assert_eq!(thread["current_user_participated"], true);

    // /threads: most recent activity first; "participated" only where bob took part.
    let (st, all) = s.get(&format!("/_matrix/client/v1/rooms/{room}/threads"), Some(&bob)).await;
    assert_eq!(st, 200, "{all}");
    let ids: Vec<&str> = all["chunk"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [other_root.as_str(), root.as_str()]);
    let (_, mine) = s.get(&format!("/_matrix/client/v1/rooms/{room}/threads?include=participated"), Some(&bob)).await;
    let ids: Vec<&str> = mine["chunk"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [root.as_str()]);

    // /relations, newest first, paginated one at a time.
    let (_, p1) =
        s.get(&format!("/_matrix/client/v1/rooms/{room}/relations/{root}/m.thread?limit=1"), Some(&bob)).await;
    assert_eq!(p1["chunk"][0]["content"]["body"], "Mountains");
    let next = p1["next_batch"].as_str().unwrap();
    let (_, p2) = s
        .get(&format!("/_matrix/client/v1/rooms/{room}/relations/{root}/m.thread?limit=1&from={next}"), Some(&bob))
        .await;
    assert_eq!(p2["chunk"][0]["content"]["body"], "Beach");
    let (_, typed) = s
        .get(&format!("/_matrix/client/v1/rooms/{room}/relations/{root}/m.thread/m.room.message?dir=f"), Some(&bob))
        .await;
    let bodies: Vec<&str> =
        typed["chunk"].as_array().unwrap().iter().map(|e| e["content"]["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["Beach", "Mountains"]);
    let (_, none) = s.get(&format!("/_matrix/client/v1/rooms/{room}/relations/{root}/m.annotation"), Some(&bob)).await;
    assert!(none["chunk"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn references_and_reactions_are_related() {
    let s = TestServer::start().await;
    let (alice, bob, room) = setup(&s).await;
    let poll = send(&s, &alice, &room, "p", text("Pizza or pasta?")).await;
    let refd = send(
        &s,
        &bob,
        &room,
        "r",
        json!({"msgtype": "m.text", "body": "pizza", "m.relates_to": {"rel_type": "m.reference", "event_id": poll}}),
    )
    .await;
    let (st, react) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.reaction/re"),
            Some(&bob),
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": poll, "key": "👍"}}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, ev) = s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{poll}"), Some(&alice)).await;
    assert_eq!(ev["unsigned"]["m.relations"]["m.reference"]["chunk"], json!([{"event_id": refd}]));
    let (_, reactions) =
        s.get(&format!("/_matrix/client/v1/rooms/{room}/relations/{poll}/m.annotation/m.reaction"), Some(&alice)).await;
    assert_eq!(reactions["chunk"][0]["event_id"], react["event_id"]);
    assert_eq!(reactions["chunk"][0]["content"]["m.relates_to"]["key"], "👍");
}

#[tokio::test]
async fn context_shows_the_events_around_one() {
    let s = TestServer::start().await;
    let (alice, bob, room) = setup(&s).await;
    let mut ids = Vec::new();
    for i in 0..9 {
        ids.push(send(&s, &alice, &room, &format!("c{i}"), text(&format!("m{i}"))).await);
    }
    let (st, ctx) = s.get(&format!("/_matrix/client/v3/rooms/{room}/context/{}?limit=4", ids[4]), Some(&bob)).await;
    assert_eq!(st, 200, "{ctx}");
    assert_eq!(ctx["event"]["content"]["body"], "m4");
    let before: Vec<&str> =
        ctx["events_before"].as_array().unwrap().iter().map(|e| e["content"]["body"].as_str().unwrap()).collect();
    let after: Vec<&str> =
        ctx["events_after"].as_array().unwrap().iter().map(|e| e["content"]["body"].as_str().unwrap()).collect();
    assert_eq!(before, ["m3", "m2"], "closest first");
    assert_eq!(after, ["m5", "m6"]);
    assert!(ctx["state"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.create"));
    // Paginating on from the context's tokens continues seamlessly.
    let (_, older) = s
        .get(
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=1&from={}", ctx["start"].as_str().unwrap()),
            Some(&bob),
        )
        .await;
    assert_eq!(older["chunk"][0]["content"]["body"], "m1");
    let (_, newer) = s
        .get(
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=f&limit=1&from={}", ctx["end"].as_str().unwrap()),
            Some(&bob),
        )
        .await;
    assert_eq!(newer["chunk"][0]["content"]["body"], "m7");
    let eve = s.user("eve").await;
    assert_err(
        &s.get(&format!("/_matrix/client/v3/rooms/{room}/context/{}", ids[4]), Some(&eve)).await,
        404,
        "M_NOT_FOUND",
    );
}
