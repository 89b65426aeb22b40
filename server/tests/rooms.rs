//! Rooms and events over real HTTP (spec: Client-Server API, "Rooms", "Events", "Syncing").

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, assert_err};
use reqwest::Method;
use serde_json::{Value, json};

async fn create(s: &TestServer, token: &str, body: Value) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), body).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

async fn send_text(s: &TestServer, token: &str, room: &str, txn: &str, body: &str) -> (reqwest::StatusCode, Value) {
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
        Some(token),
        json!({"msgtype": "m.text", "body": body}),
    )
    .await
}

fn timeline<'a>(sync: &'a Value, room: &str) -> Vec<&'a Value> {
    sync["rooms"]["join"][room]["timeline"]["events"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_new_v12_room_is_named_by_its_create_event_and_has_the_spec_state() {
    let s = TestServer::start().await;
    let t = s.user("alice").await;
    let room = create(&s, &t, json!({"name": "Family", "topic": "Dinner plans", "preset": "private_chat"})).await;
    // v12: the room ID is the create event's reference hash, with no server name.
    assert!(room.starts_with('!') && !room.contains(':'), "{room}");
    let (st, state) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state"), Some(&t)).await;
    assert_eq!(st, 200, "{state}");
    let types: Vec<&str> = state.as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    for t in [
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.guest_access",
        "m.room.name",
        "m.room.topic",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    let create = state.as_array().unwrap().iter().find(|e| e["type"] == "m.room.create").unwrap();
    assert_eq!(create["event_id"].as_str().unwrap()[1..], room[1..], "room ID = create event ID's hash");
    assert_eq!(create["content"]["room_version"], "12");
    // v12 creators are not listed in power levels: they have infinite power.
    let (_, pl) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/"), Some(&t)).await;
    assert!(pl["users"].get("@alice:hearth.test").is_none(), "{pl}");
    assert_eq!(pl["events"]["m.room.tombstone"], 150);
    let (_, name) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/"), Some(&t)).await;
    assert_eq!(name["name"], "Family");
}

#[tokio::test]
async fn every_room_version_from_1_to_12_can_be_created_and_used() {
    let s = TestServer::start().await;
    let t = s.user("ver").await;
    for v in 1..=12 {
        let room = create(&s, &t, json!({"room_version": v.to_string()})).await;
        let (st, body) = send_text(&s, &t, &room, &format!("txn{v}"), "hello").await;
        assert_eq!(st, 200, "v{v}: {body}");
        let (_, c) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.create/"), Some(&t)).await;
        assert_eq!(c["room_version"], v.to_string());
    }
    let r = s.post("/_matrix/client/v3/createRoom", Some(&t), json!({"room_version": "13"})).await;
    assert_err(&r, 400, "M_UNSUPPORTED_ROOM_VERSION");
}

#[tokio::test]
async fn sending_with_the_same_transaction_id_is_idempotent_per_device() {
    let s = TestServer::start().await;
    let t = s.user("bob").await;
    let room = create(&s, &t, json!({})).await;
    let (_, a) = send_text(&s, &t, &room, "t1", "once").await;
    let (_, b) = send_text(&s, &t, &room, "t1", "once").await;
    assert_eq!(a["event_id"], b["event_id"]);
    // Another device of the same user may reuse the transaction ID.
    let (_, other) = s.login("bob", "password1").await;
    let (_, c) = send_text(&s, other["access_token"].as_str().unwrap(), &room, "t1", "once").await;
    assert_ne!(a["event_id"], c["event_id"]);
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&t)).await;
    let bodies: Vec<&str> = timeline(&sync, &room)
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["once", "once"], "one event per device");
    // The sending device sees its transaction ID.
    let mine = timeline(&sync, &room).into_iter().find(|e| e["event_id"] == a["event_id"]).unwrap();
    assert_eq!(mine["unsigned"]["transaction_id"], "t1");
}

#[tokio::test]
async fn invite_join_and_talk_then_leave() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = create(&s, &alice, json!({"invite": ["@bob:hearth.test"], "is_direct": true})).await;

    // Bob sees the invite with stripped state and the direct flag.
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&bob)).await;
    let invite = &sync["rooms"]["invite"][&room]["invite_state"]["events"];
    let member = invite
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == "@bob:hearth.test")
        .unwrap();
    assert_eq!(member["content"]["is_direct"], true);
    assert_eq!(member["sender"], "@alice:hearth.test");
    let since = sync["next_batch"].as_str().unwrap().to_owned();

    // Bob cannot talk before joining.
    assert_err(&send_text(&s, &bob, &room, "x", "hi").await, 403, "M_FORBIDDEN");
    let (st, _) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let (st, _) = send_text(&s, &bob, &room, "b1", "hi alice").await;
    assert_eq!(st, 200);

    // Incremental sync: the newly joined room arrives with its full state.
    let (_, sync) = s.get(&format!("/_matrix/client/v3/sync?since={since}"), Some(&bob)).await;
    let block = &sync["rooms"]["join"][&room];
    assert!(
        block["state"]["events"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.create")
            || timeline(&sync, &room).iter().any(|e| e["type"] == "m.room.create")
    );
    assert!(timeline(&sync, &room).iter().any(|e| e["content"]["body"] == "hi alice"));
    assert_eq!(block["summary"]["m.joined_member_count"], 2);

    let (_, joined) = s.get(&format!("/_matrix/client/v3/rooms/{room}/joined_members"), Some(&alice)).await;
    assert_eq!(joined["joined"].as_object().unwrap().len(), 2);
    let (_, rooms) = s.get("/_matrix/client/v3/joined_rooms", Some(&bob)).await;
    assert_eq!(rooms["joined_rooms"], json!([room]));

    let since = sync["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let (_, sync) = s.get(&format!("/_matrix/client/v3/sync?since={since}"), Some(&bob)).await;
    assert!(sync["rooms"]["leave"].get(&room).is_some(), "{sync}");
    let (_, rooms) = s.get("/_matrix/client/v3/joined_rooms", Some(&bob)).await;
    assert_eq!(rooms["joined_rooms"], json!([]));
    // A former member reads the state as it was when he left, not who is in the room now.
    let (st, state) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state"), Some(&bob)).await;
    assert_eq!(st, 200, "{state}");
    let his = state.as_array().unwrap().iter().find(|e| e["state_key"] == "@bob:hearth.test").unwrap();
    assert_eq!(his["content"]["membership"], "leave");
    let joined = s.get(&format!("/_matrix/client/v3/rooms/{room}/joined_members"), Some(&bob)).await;
    assert_err(&joined, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn power_levels_are_enforced() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = create(&s, &alice, json!({"preset": "public_chat", "room_version": "11"})).await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    // Bob (power 0) cannot rename the room or change power levels, nor kick alice.
    let r = s
        .put(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/"), Some(&bob), json!({"name": "mine"}))
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    let r = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/"),
            Some(&bob),
            json!({"users": {"@bob:hearth.test": 100}}),
        )
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    let r = s
        .post(&format!("/_matrix/client/v3/rooms/{room}/kick"), Some(&bob), json!({"user_id": "@alice:hearth.test"}))
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    // Alice can rename, and ban bob, who then cannot rejoin; after unban he can.
    let (st, _) = s
        .put(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/"), Some(&alice), json!({"name": "Ours"}))
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .post(&format!("/_matrix/client/v3/rooms/{room}/ban"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
        .await;
    assert_eq!(st, 200);
    assert_err(&s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await, 403, "M_FORBIDDEN");
    let (st, _) = s
        .post(&format!("/_matrix/client/v3/rooms/{room}/unban"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await.0, 200);
}

#[tokio::test]
async fn invite_only_rooms_refuse_uninvited_joins() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let eve = s.user("eve").await;
    let room = create(&s, &alice, json!({"preset": "private_chat"})).await;
    assert_err(
        &s.post(&format!("/_matrix/client/v3/rooms/{room}/join"), Some(&eve), json!({})).await,
        403,
        "M_FORBIDDEN",
    );
    assert_err(
        &s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"), Some(&eve)).await,
        403,
        "M_FORBIDDEN",
    );
    let r = s.post("/_matrix/client/v3/join/!nope:hearth.test", Some(&eve), json!({})).await;
    assert_err(&r, 404, "M_NOT_FOUND");
}

#[tokio::test]
async fn messages_paginate_backwards_and_forwards() {
    let s = TestServer::start().await;
    let t = s.user("pager").await;
    let room = create(&s, &t, json!({})).await;
    for i in 0..25 {
        send_text(&s, &t, &room, &format!("p{i}"), &format!("m{i}")).await;
    }
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let q = match &from {
            Some(f) => format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=10&from={f}"),
            None => format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=10"),
        };
        let (st, page) = s.get(&q, Some(&t)).await;
        assert_eq!(st, 200, "{page}");
        for e in page["chunk"].as_array().unwrap() {
            if e["type"] == "m.room.message" {
                seen.push(e["content"]["body"].as_str().unwrap().to_owned());
            }
        }
        match page.get("end").and_then(Value::as_str) {
            Some(end) => from = Some(end.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected, "every message exactly once, newest first");

    let (_, fwd) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=f&limit=100&from=s0"), Some(&t)).await;
    let first = &fwd["chunk"][0];
    assert_eq!(first["type"], "m.room.create");
}

#[tokio::test]
async fn long_polling_sync_wakes_when_a_message_arrives() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = create(&s, &alice, json!({"preset": "public_chat"})).await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let (_, first) = s.get("/_matrix/client/v3/sync", Some(&bob)).await;
    let since = first["next_batch"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let path = format!("/_matrix/client/v3/sync?since={since}&timeout=20000");
    let poll = s.get(&path, Some(&bob));
    let send = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        send_text(&s, &alice, &room, "wake", "wake up").await
    };
    let ((st, sync), _) = tokio::join!(poll, send);
    assert_eq!(st, 200);
    assert!(started.elapsed() < Duration::from_secs(10), "woke on the event, not at the timeout");
    let bodies: Vec<&Value> = timeline(&sync, &room);
    assert!(bodies.iter().any(|e| e["content"]["body"] == "wake up"), "{sync}");

    // With nothing new, the poll returns empty at its timeout.
    let next = sync["next_batch"].as_str().unwrap();
    let started = Instant::now();
    let (_, empty) = s.get(&format!("/_matrix/client/v3/sync?since={next}&timeout=500"), Some(&bob)).await;
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(empty["rooms"]["join"].as_object().unwrap().is_empty(), "{empty}");
}

#[tokio::test]
async fn bad_events_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    let t = s.user("carl").await;
    let room = create(&s, &t, json!({})).await;
    let big = "x".repeat(70_000);
    let r = send_text(&s, &t, &room, "big", &big).await;
    assert!(r.0 == 413 || r.0 == 400, "{:?}", r.0);
    assert!(r.1["errcode"] == "M_TOO_LARGE", "{}", r.1);
    let r =
        s.put(&format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/f"), Some(&t), json!({"body": 1.5})).await;
    assert_err(&r, 400, "M_BAD_JSON");
    let r = s
        .call(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/arr"),
            Some(&t),
            Some(json!([1])),
        )
        .await;
    assert_err(&r, 400, "M_BAD_JSON");
    let r = send_text(&s, &t, "!unknown:hearth.test", "u", "hi").await;
    assert_err(&r, 404, "M_NOT_FOUND");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&t)).await;
    assert!(timeline(&sync, &room).iter().all(|e| e["type"] != "m.room.message"), "nothing was stored");
    assert_err(&s.get("/_matrix/client/v3/sync?since=garbage", Some(&t)).await, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn twenty_rooms_created_concurrently_all_appear() {
    let s = TestServer::start().await;
    let t = s.user("busy").await;
    let rooms: Vec<String> =
        futures::future::join_all((0..20).map(|i| create(&s, &t, json!({"name": format!("r{i}")})))).await;
    let (_, joined) = s.get("/_matrix/client/v3/joined_rooms", Some(&t)).await;
    assert_eq!(joined["joined_rooms"].as_array().unwrap().len(), 20);
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&t)).await;
    for r in &rooms {
        assert!(sync["rooms"]["join"].get(r).is_some(), "{r} missing from sync");
    }
}

#[tokio::test]
async fn aliases_resolve_and_join() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = create(&s, &alice, json!({"preset": "public_chat", "room_alias_name": "kitchen"})).await;
    // Resolving an alias needs no login (spec: GET /directory/room/{roomAlias}).
    let (st, v) = s.get("/_matrix/client/v3/directory/room/%23kitchen:hearth.test", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["room_id"], room);
    assert_err(&s.get("/_matrix/client/v3/directory/room/%23nothing:hearth.test", None).await, 404, "M_NOT_FOUND");
    let (st, j) = s.post("/_matrix/client/v3/join/%23kitchen:hearth.test", Some(&bob), json!({})).await;
    assert_eq!((st.as_u16(), j["room_id"].clone()), (200, json!(room)));
    let r = s.post("/_matrix/client/v3/createRoom", Some(&bob), json!({"room_alias_name": "kitchen"})).await;
    assert_err(&r, 400, "M_ROOM_IN_USE");
    assert_err(
        &s.call(Method::DELETE, "/_matrix/client/v3/directory/room/%23kitchen:hearth.test", Some(&bob), None).await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(
        s.call(Method::DELETE, "/_matrix/client/v3/directory/room/%23kitchen:hearth.test", Some(&alice), None).await.0,
        200
    );
}

#[tokio::test]
async fn filters_lazy_loading_and_state_after() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    // Named: an unnamed room's heroes' member events come with lazy loading too.
    let room = create(&s, &alice, json!({"preset": "public_chat", "name": "Filters"})).await;
    let mut others = Vec::new();
    for i in 0..4 {
        let t = s.user(&format!("m{i}")).await;
        s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&t), json!({})).await;
        others.push(t);
    }
    send_text(&s, &others[0], &room, "x1", "from m0").await;
    s.put(&format!("/_matrix/client/v3/rooms/{room}/send/m.reaction/r1"), Some(&alice), json!({})).await;
    send_text(&s, &alice, &room, "x2", "from alice").await;

    // A timeline filter by type, and lazy-loaded members: only senders' member events.
    let filter =
        json!({"room": {"timeline": {"types": ["m.room.message"], "limit": 2}, "state": {"lazy_load_members": true}}});
    let (st, f) = s.post("/_matrix/client/v3/user/@alice:hearth.test/filter", Some(&alice), filter).await;
    assert_eq!(st, 200, "{f}");
    let id = f["filter_id"].as_str().unwrap();
    let (_, sync) = s.get(&format!("/_matrix/client/v3/sync?filter={id}"), Some(&alice)).await;
    let block = &sync["rooms"]["join"][&room];
    let tl: Vec<&str> =
        block["timeline"]["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(tl, ["m.room.message", "m.room.message"]);
    // Only the events the filter lets through count: no older message was left out.
    assert_eq!(block["timeline"]["limited"], false);
    let members: Vec<&str> = block["state"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .map(|e| e["state_key"].as_str().unwrap())
        .collect();
    let mut members = members;
    members.sort();
    assert_eq!(members, ["@alice:hearth.test", "@m0:hearth.test"], "only the members the timeline needs");
    let (_, stored) = s.get(&format!("/_matrix/client/v3/user/@alice:hearth.test/filter/{id}"), Some(&alice)).await;
    assert_eq!(stored["room"]["timeline"]["limit"], 2);

    // /messages honours the same kind of filter, with lazy members in `state`.
    let (_, page) = s
        .get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&filter=%7B%22types%22%3A%5B%22m.reaction%22%5D%2C%22lazy_load_members%22%3Atrue%7D"), Some(&alice))
        .await;
    let types: Vec<&str> = page["chunk"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["m.reaction"]);
    assert_eq!(page["state"][0]["state_key"], "@alice:hearth.test");

    // MSC4222: state after the timeline.
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    s.put(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/"), Some(&alice), json!({"topic": "new"})).await;
    let (_, later) = s.get(&format!("/_matrix/client/v3/sync?since={since}&use_state_after=true"), Some(&alice)).await;
    let after = later["rooms"]["join"][&room]["state_after"]["events"].as_array().expect("state_after present");
    assert!(after.iter().any(|e| e["type"] == "m.room.topic" && e["content"]["topic"] == "new"), "{later}");
    assert!(later["rooms"]["join"][&room].get("state").is_none());
}

#[tokio::test]
async fn bad_filters_state_keys_and_foreign_tokens() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = create(&s, &alice, json!({"preset": "private_chat"})).await;
    send_text(&s, &alice, &room, "s1", "alice's secret").await;

    // Filters that do not parse, and unknown filter IDs.
    let r = s.get("/_matrix/client/v3/sync?filter=%7Bnot%20json", Some(&bob)).await;
    assert!(
        r.0 == 400
            && r.1["errcode"]
                .as_str()
                .is_some_and(|c| c == "M_BAD_JSON" || c == "M_INVALID_PARAM" || c == "M_NOT_JSON"),
        "{:?}",
        r
    );
    assert_err(&s.get("/_matrix/client/v3/sync?filter=12345", Some(&bob)).await, 404, "M_NOT_FOUND");
    assert_err(&s.get("/_matrix/client/v3/user/@alice:hearth.test/filter/0", Some(&bob)).await, 403, "M_FORBIDDEN");
    let r = s
        .post(
            "/_matrix/client/v3/user/@bob:hearth.test/filter",
            Some(&bob),
            json!({"room": {"timeline": {"limit": "ten"}}}),
        )
        .await;
    assert_err(&r, 400, "M_BAD_JSON");

    // A member event whose state key is not a user ID is refused by the auth rules.
    let r = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/not-a-user"),
            Some(&alice),
            json!({"membership": "join"}),
        )
        .await;
    assert!(r.0 == 400 || r.0 == 403, "{:?}", r);
    // Nobody can set another user's membership to join.
    let r = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@bob:hearth.test"),
            Some(&alice),
            json!({"membership": "join"}),
        )
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");

    // Another user's sync token shows the caller their own data only.
    let (_, alices) = s.get("/_matrix/client/v3/sync", Some(&alice)).await;
    let (st, v) = s
        .get(
            &format!(
                "/_matrix/client/v3/sync?since={}&timeout=0&full_state=true",
                alices["next_batch"].as_str().unwrap()
            ),
            Some(&bob),
        )
        .await;
    assert_eq!(st, 200);
    assert!(v["rooms"]["join"].get(&room).is_none(), "{v}");
    assert!(!v.to_string().contains("alice's secret"));
}

/// Spec: GET /sync, `state`: "updates to the state, between the time indicated by the since
/// parameter, and the start of the timeline". Initial syncs read the first page of every room's
/// timeline in one go and take the state from the events around it, so this checks that the
/// state is the one *before* the timeline, also when the timeline changes it.
#[tokio::test]
async fn initial_sync_state_is_the_state_before_the_timeline() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let room = create(&s, &alice, json!({"preset": "private_chat", "name": "old"})).await;
    let quiet = create(&s, &alice, json!({"preset": "private_chat", "name": "other room"})).await;
    for i in 0..5 {
        send_text(&s, &alice, &room, &format!("a{i}"), "before").await;
    }
    s.put(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/"), Some(&alice), json!({"name": "new"})).await;
    send_text(&s, &alice, &room, "b1", "after").await;
    send_text(&s, &alice, &room, "b2", "after").await;

    let sync_with = async |filter: Value, extra: &str| {
        let f = common::urlencode(&filter.to_string());
        s.get(&format!("/_matrix/client/v3/sync?filter={f}{extra}"), Some(&alice)).await.1
    };
    let names = |events: &Value| -> Vec<String> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.name")
            .map(|e| e["content"]["name"].as_str().unwrap().to_owned())
            .collect()
    };

    // The last three events: the rename and two messages. State: the old name.
    let sync = sync_with(json!({"room": {"timeline": {"limit": 3}}}), "").await;
    let block = &sync["rooms"]["join"][&room];
    assert_eq!(block["timeline"]["limited"], true);
    assert_eq!(names(&block["timeline"]["events"]), ["new"]);
    assert_eq!(names(&block["state"]["events"]), ["old"], "{block}");
    assert!(block["state"]["events"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.create"));
    // The other room is complete as well: its name is in its timeline or its state.
    let other = &sync["rooms"]["join"][&quiet];
    let mut other_names = names(&other["state"]["events"]);
    other_names.extend(names(&other["timeline"]["events"]));
    assert_eq!(other_names, ["other room"]);

    // The whole history fits: the timeline starts at the create event and nothing precedes it.
    let sync = sync_with(json!({"room": {"timeline": {"limit": 100}}}), "").await;
    let block = &sync["rooms"]["join"][&room];
    assert_eq!(block["timeline"]["limited"], false);
    assert_eq!(block["timeline"]["events"][0]["type"], "m.room.create");
    assert_eq!(block["state"]["events"].as_array().unwrap().len(), 0, "{block}");
    assert_eq!(names(&block["timeline"]["events"]), ["old", "new"]);

    // MSC4222: the state after the timeline has the new name.
    let sync = sync_with(json!({"room": {"timeline": {"limit": 3}}}), "&use_state_after=true").await;
    let block = &sync["rooms"]["join"][&room];
    assert_eq!(names(&block["state_after"]["events"]), ["new"], "{block}");
}

/// Lazy-loading members (spec: "Lazy-loading room members"): the client gets the member event of
/// every timeline sender, including someone who speaks for the first time after the client's
/// initial sync left their membership out.
#[tokio::test]
async fn lazy_loading_sends_a_new_speakers_member_event_in_incremental_syncs() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let carol = s.user("carol").await;
    // Named: an unnamed room's heroes' member events come with lazy loading too.
    let room = create(&s, &alice, json!({"preset": "public_chat", "name": "Lazy"})).await;
    s.put("/_matrix/client/v3/profile/@carol:hearth.test/displayname", Some(&carol), json!({"displayname": "Carol"}))
        .await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&carol), json!({})).await;
    for i in 0..5 {
        send_text(&s, &alice, &room, &format!("a{i}"), "hello").await;
    }
    let filter = common::urlencode(
        &json!({"room": {"timeline": {"limit": 3}, "state": {"lazy_load_members": true}}}).to_string(),
    );
    let (_, first) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}"), Some(&alice)).await;
    let member_keys = |block: &Value| -> Vec<String> {
        let mut keys: Vec<String> = ["state", "timeline"]
            .iter()
            .flat_map(|k| block[*k]["events"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["type"] == "m.room.member")
            .map(|e| e["state_key"].as_str().unwrap().to_owned())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(member_keys(&first["rooms"]["join"][&room]), ["@alice:hearth.test"], "carol has not spoken yet");

    send_text(&s, &carol, &room, "c1", "hi all").await;
    let since = first["next_batch"].as_str().unwrap();
    let (_, next) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}&since={since}"), Some(&alice)).await;
    let block = &next["rooms"]["join"][&room];
    assert_eq!(member_keys(block), ["@carol:hearth.test"], "{block}");
    let carol_member =
        block["state"]["events"].as_array().unwrap().iter().find(|e| e["state_key"] == "@carol:hearth.test").unwrap();
    assert_eq!(carol_member["content"]["displayname"], "Carol");
}
