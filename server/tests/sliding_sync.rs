//! Simplified sliding sync (MSC4186) over real HTTP, in the unstable wire format matrix-rust-sdk
//! (Element X) speaks: lists ordered by recency with counts and ranges, rooms with the state
//! they asked for, incremental answers by `pos`, retries of a `pos`, M_UNKNOWN_POS, long-polling
//! and the extensions.

mod common;

use std::time::{Duration, Instant};

use common::{SERVER_NAME, TestServer, assert_err};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PATH: &str = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";

async fn ss(s: &TestServer, token: &str, pos: Option<&str>, timeout_ms: u64, body: Value) -> (StatusCode, Value) {
    let mut path = format!("{PATH}?timeout={timeout_ms}");
    if let Some(p) = pos {
        path.push_str(&format!("&pos={p}"));
    }
    s.post(&path, Some(token), body).await
}

/// What Element X's room list asks for (matrix-sdk-ui's RoomListService), with `range`.
fn room_list(range: (u64, u64)) -> Value {
    json!({
        "conn_id": "room-list",
        "lists": { "all_rooms": {
            "ranges": [[range.0, range.1]],
            "timeline_limit": 1,
            "required_state": [
                ["m.room.name", ""], ["m.room.encryption", ""], ["m.room.member", "$LAZY"], ["m.room.member", "$ME"],
                ["m.room.topic", ""], ["m.room.avatar", ""], ["m.room.create", ""], ["m.room.power_levels", ""]
            ],
            "filters": {}
        }},
        "extensions": { "account_data": { "enabled": true }, "receipts": { "enabled": true, "rooms": ["*"] }, "typing": { "enabled": true } }
    })
}

async fn create_room(s: &TestServer, token: &str, name: &str) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), json!({ "name": name })).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

async fn send(s: &TestServer, token: &str, room: &str, body: &str) -> String {
    let txn = format!("t{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
            Some(token),
            json!({ "msgtype": "m.text", "body": body }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["event_id"].as_str().unwrap().to_owned()
}

fn state_types(room: &Value) -> Vec<String> {
    room["required_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}|{}", e["type"].as_str().unwrap(), e["state_key"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_room_list_comes_in_recency_order_with_counts_state_and_latest_event() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let first = create_room(&s, &alice, "First").await;
    let second = create_room(&s, &alice, "Second").await;
    let third = create_room(&s, &alice, "Third").await;
    // The oldest room gets the latest message: it is first now.
    send(&s, &alice, &first, "back on top").await;

    let (st, v) = ss(&s, &alice, None, 30000, room_list((0, 1))).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["pos"].is_string(), "{v}");
    assert_eq!(v["lists"]["all_rooms"]["count"], 3, "every room is counted: {v}");
    let rooms = v["rooms"].as_object().unwrap();
    assert_eq!(rooms.len(), 2, "only the range [0, 1]: {v}");
    assert!(rooms.contains_key(&first) && rooms.contains_key(&third), "the two most recent: {v}");
    assert!(!rooms.contains_key(&second));

    let r = &v["rooms"][&first];
    assert_eq!(r["initial"], true);
    assert_eq!(r["name"], "First");
    let timeline = r["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 1, "timeline_limit 1: {r}");
    assert_eq!(timeline[0]["content"]["body"], "back on top");
    assert!(timeline[0].get("room_id").is_none(), "sync format has no room_id");
    assert_eq!(r["limited"], true);
    assert!(r["prev_batch"].is_string());
    let state = state_types(r);
    for want in
        ["m.room.create|", "m.room.name|", "m.room.power_levels|", &format!("m.room.member|@alice:{SERVER_NAME}")]
    {
        assert!(state.contains(&want.to_owned()), "{want} in {state:?}");
    }
    assert!(!state.iter().any(|k| k.starts_with("m.room.join_rules")), "only what was asked: {state:?}");
    assert_eq!(r["joined_count"], 1);
    assert_eq!(r["invited_count"], 0);
    // The message moved the room up: its bump_stamp is above the newer room's.
    assert!(r["bump_stamp"].as_i64().unwrap() > v["rooms"][&third]["bump_stamp"].as_i64().unwrap(), "{v}");

    // The client grows its range: the rest arrives, and what it has is not sent again.
    let pos = v["pos"].as_str().unwrap();
    let (_, v) = ss(&s, &alice, Some(pos), 0, room_list((0, 2))).await;
    let rooms = v["rooms"].as_object().unwrap();
    assert_eq!(rooms.keys().collect::<Vec<_>>(), vec![&second], "{v}");
    assert_eq!(v["lists"]["all_rooms"]["count"], 3);

    // Extensions on the first request: push rules are there for the client to count unreads.
    let (_, v) = ss(&s, &alice, None, 0, room_list((0, 0))).await;
    let global = v["extensions"]["account_data"]["global"].as_array().unwrap();
    assert!(global.iter().any(|e| e["type"] == "m.push_rules"), "{v}");
    assert!(v["extensions"]["receipts"]["rooms"].is_object());
    assert!(v["extensions"]["typing"]["rooms"].is_object());
}

#[tokio::test]
async fn a_new_message_wakes_the_long_poll_and_moves_its_room_to_the_top() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    // Carol shares no room with Alice: her events wake Alice's poll, which must go on waiting.
    let carol = s.user("carol").await;
    let carols = create_room(&s, &carol, "Carol's").await;
    let old = create_room(&s, &alice, "Old").await;
    s.post(
        &format!("/_matrix/client/v3/rooms/{old}/invite"),
        Some(&alice),
        json!({ "user_id": format!("@bob:{SERVER_NAME}") }),
    )
    .await;
    s.post(&format!("/_matrix/client/v3/join/{old}"), Some(&bob), json!({})).await;
    for i in 0..3 {
        create_room(&s, &alice, &format!("Newer {i}")).await;
    }
    let (_, v) = ss(&s, &alice, None, 0, room_list((0, 0))).await;
    let pos = v["pos"].as_str().unwrap().to_owned();
    assert!(!v["rooms"].as_object().unwrap().contains_key(&old), "the old room is not in [0, 0] yet: {v}");

    // Bob writes in the old room while Alice's client waits.
    let waiter = {
        let (base, alice, pos) = (s.base.clone(), alice.clone(), pos.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let v: Value = reqwest::Client::new()
                .post(format!("{base}{PATH}?timeout=20000&pos={pos}"))
                .bearer_auth(&alice)
                .json(&room_list((0, 0)))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (v, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    send(&s, &carol, &carols, "nothing to do with Alice").await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!waiter.is_finished(), "an event in a room Alice is not in does not answer her poll");
    send(&s, &bob, &old, "hello from bob").await;
    let (v, waited) = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(10), "woken by the message, not the timeout ({waited:?})");
    let r = &v["rooms"][&old];
    assert_eq!(r["initial"], true, "new to this connection: {v}");
    assert_eq!(r["timeline"][0]["content"]["body"], "hello from bob");
    // Bob's membership comes with his message ($LAZY), and Bob is a hero of the unnamed view.
    assert!(state_types(r).contains(&format!("m.room.member|@bob:{SERVER_NAME}")), "{r}");
    assert_eq!(r["joined_count"], 2);

    // The same pos again (the answer was lost on the way): the same room comes again.
    let (_, again) = ss(&s, &alice, Some(&pos), 0, room_list((0, 0))).await;
    assert_eq!(again["rooms"][&old]["timeline"][0]["content"]["body"], "hello from bob", "{again}");

    // Then from the new pos: a further message is incremental, with num_live.
    let pos = v["pos"].as_str().unwrap();
    send(&s, &bob, &old, "second").await;
    let (_, v) = ss(&s, &alice, Some(pos), 5000, room_list((0, 0))).await;
    let r = &v["rooms"][&old];
    assert!(r.get("initial").is_none(), "{r}");
    assert_eq!(r["timeline"][0]["content"]["body"], "second");
    assert_eq!(r["num_live"], 1);
    assert_eq!(r["limited"], false);
    assert!(
        r.get("required_state").is_none(),
        "no repeated state, not even Bob's member event (the connection has it): {r}"
    );

    // Bob's new display name is a change of his member event: it comes again.
    let pos = v["pos"].as_str().unwrap();
    s.put(
        &format!("/_matrix/client/v3/profile/@bob:{SERVER_NAME}/displayname"),
        Some(&bob),
        json!({ "displayname": "Bobby" }),
    )
    .await;
    send(&s, &bob, &old, "third").await;
    let (_, v) = ss(&s, &alice, Some(pos), 5000, room_list((0, 0))).await;
    let r = &v["rooms"][&old];
    let bob_member: Vec<&Value> = r["required_state"]
        .as_array()
        .map(|s| s.iter().filter(|e| e["state_key"] == format!("@bob:{SERVER_NAME}")).collect())
        .unwrap_or_default();
    assert_eq!(r["timeline"][0]["content"]["body"], "third", "{r}");
    assert!(bob_member.iter().any(|e| e["content"]["displayname"] == "Bobby"), "{r}");

    // Nothing new for Alice (Carol talks in her own room meanwhile): the long-poll waits out
    // its timeout and answers with no rooms.
    let pos = v["pos"].as_str().unwrap();
    let started = Instant::now();
    let (poll, _) = tokio::join!(ss(&s, &alice, Some(pos), 800, room_list((0, 0))), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&s, &carol, &carols, "still nothing to do with Alice").await;
    });
    let v = poll.1;
    assert!(started.elapsed() >= Duration::from_millis(750));
    assert!(v["rooms"].as_object().unwrap().is_empty(), "{v}");
    assert_eq!(v["lists"]["all_rooms"]["count"], 4);

    // Carol invites Alice: a room Alice was not in, so an event there is hers to see now.
    let pos = v["pos"].as_str().unwrap();
    let started = Instant::now();
    let (poll, _) = tokio::join!(ss(&s, &alice, Some(pos), 10_000, room_list((0, 0))), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&s, &carol, &carols, "before the invite").await;
        s.post(
            &format!("/_matrix/client/v3/rooms/{carols}/invite"),
            Some(&carol),
            json!({ "user_id": format!("@alice:{SERVER_NAME}") }),
        )
        .await;
    });
    let v = poll.1;
    assert!(started.elapsed() < Duration::from_secs(5), "the invite answers the poll");
    assert!(v["rooms"][&carols]["invite_state"].is_array(), "{v}");
    assert_eq!(v["lists"]["all_rooms"]["count"], 5);
}

#[tokio::test]
async fn invites_come_with_their_stripped_state_and_filters_pick_rooms() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let joined = create_room(&s, &bob, "Bob's own").await;
    let room = create_room(&s, &alice, "Party").await;
    s.post(
        &format!("/_matrix/client/v3/rooms/{room}/invite"),
        Some(&alice),
        json!({ "user_id": format!("@bob:{SERVER_NAME}") }),
    )
    .await;
    let body = json!({
        "conn_id": "invites",
        "lists": {
            "invites": { "ranges": [[0, 10]], "timeline_limit": 1, "filters": { "is_invite": true } },
            "joined": { "ranges": [[0, 10]], "timeline_limit": 1, "filters": { "is_invite": false } },
            "dms": { "ranges": [[0, 10]], "timeline_limit": 1, "filters": { "is_dm": true } }
        }
    });
    let (st, v) = ss(&s, &bob, None, 0, body.clone()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["lists"]["invites"]["count"], 1);
    assert_eq!(v["lists"]["joined"]["count"], 1);
    assert_eq!(v["lists"]["dms"]["count"], 0, "every requested list answers, even empty ones");
    let invite = &v["rooms"][&room];
    let stripped = invite["invite_state"].as_array().unwrap();
    assert!(stripped.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Party"), "{invite}");
    assert!(
        stripped.iter().any(|e| e["type"] == "m.room.member" && e["sender"] == format!("@alice:{SERVER_NAME}")),
        "{invite}"
    );
    assert!(invite.get("timeline").is_none());
    assert!(invite["bump_stamp"].is_i64());
    assert!(v["rooms"][&joined]["timeline"].is_array());

    // m.direct makes a room a DM.
    s.put(
        &format!("/_matrix/client/v3/user/@bob:{SERVER_NAME}/account_data/m.direct"),
        Some(&bob),
        json!({ format!("@alice:{SERVER_NAME}"): [joined] }),
    )
    .await;
    let (_, v) = ss(&s, &bob, None, 0, body).await;
    assert_eq!(v["lists"]["dms"]["count"], 1, "{v}");
}

/// MSC3575's `spaces`, `tags` and `not_tags` filters (Synapse has them; Element X's space and
/// favourites views need them): children named by `m.space.child` with a `via`, of spaces the
/// user is in, not their subspaces'; any of `tags`, none of `not_tags`.
#[tokio::test]
async fn spaces_tags_encryption_and_room_types_pick_rooms() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let me = format!("@alice:{SERVER_NAME}");
    let (st, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({ "name": "Family", "creation_content": { "type": "m.space" } }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let space = v["room_id"].as_str().unwrap().to_owned();
    let (kitchen, garden, work, removed) = (
        create_room(&s, &alice, "Kitchen").await,
        create_room(&s, &alice, "Garden").await,
        create_room(&s, &alice, "Work").await,
        create_room(&s, &alice, "Old").await,
    );
    let (_, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({ "name": "Sub", "creation_content": { "type": "m.space" } }),
        )
        .await;
    let subspace = v["room_id"].as_str().unwrap().to_owned();
    let (_, v) = s
        .post("/_matrix/client/v3/createRoom", Some(&alice), json!({ "name": "Secret", "initial_state": [{ "type": "m.room.encryption", "state_key": "", "content": { "algorithm": "m.megolm.v1.aes-sha2" } }] }))
        .await;
    let secret = v["room_id"].as_str().unwrap().to_owned();
    for child in [&kitchen, &garden, &removed, &subspace] {
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{space}/state/m.space.child/{child}"),
                Some(&alice),
                json!({ "via": [SERVER_NAME] }),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    // A child event without `via` takes the room out of the space.
    s.put(&format!("/_matrix/client/v3/rooms/{space}/state/m.space.child/{removed}"), Some(&alice), json!({})).await;
    // The subspace's own child is not the space's.
    s.put(
        &format!("/_matrix/client/v3/rooms/{subspace}/state/m.space.child/{work}"),
        Some(&alice),
        json!({ "via": [SERVER_NAME] }),
    )
    .await;
    for (room, tags) in [
        (&kitchen, json!({ "m.favourite": { "order": 0.5 } })),
        (&garden, json!({ "m.favourite": {}, "u.later": {} })),
        (&work, json!({ "m.lowpriority": {} })),
    ] {
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/user/{me}/rooms/{room}/account_data/m.tag"),
                Some(&alice),
                json!({ "tags": tags }),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }

    let list = |filters: Value| json!({ "ranges": [[0, 20]], "timeline_limit": 0, "filters": filters });
    let body = json!({
        "conn_id": "filters",
        "lists": {
            "family": list(json!({ "spaces": [space] })),
            "unknown_space": list(json!({ "spaces": ["!nowhere:elsewhere.example"] })),
            "favourites": list(json!({ "tags": ["m.favourite"] })),
            "favourites_not_later": list(json!({ "tags": ["m.favourite"], "not_tags": ["u.later"] })),
            "not_low": list(json!({ "not_tags": ["m.lowpriority"], "not_room_types": ["m.space"] })),
            "encrypted": list(json!({ "is_encrypted": true })),
            "spaces_only": list(json!({ "room_types": ["m.space"] })),
            "empty_means_all": list(json!({ "tags": [], "spaces": [] }))
        }
    });
    let (st, v) = ss(&s, &alice, None, 0, body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["lists"]["family"]["count"], 3, "Kitchen, Garden and the subspace, not Old or Work: {v}");
    assert_eq!(v["lists"]["unknown_space"]["count"], 0, "{v}");
    assert_eq!(v["lists"]["favourites"]["count"], 2, "{v}");
    assert_eq!(v["lists"]["favourites_not_later"]["count"], 1, "not_tags wins over tags: {v}");
    assert_eq!(v["lists"]["not_low"]["count"], 4, "Kitchen, Garden, Old, Secret: {v}");
    assert_eq!(v["lists"]["encrypted"]["count"], 1, "{v}");
    assert_eq!(v["lists"]["spaces_only"]["count"], 2, "{v}");
    assert_eq!(v["lists"]["empty_means_all"]["count"], 7, "{v}");

    // Each list alone sends exactly its rooms.
    for (filters, expected) in [
        (json!({ "spaces": [space] }), vec![&kitchen, &garden, &subspace]),
        (json!({ "tags": ["m.favourite"], "not_tags": ["u.later"] }), vec![&kitchen]),
        (
            json!({ "not_tags": ["m.lowpriority"], "not_room_types": ["m.space"] }),
            vec![&kitchen, &garden, &removed, &secret],
        ),
        (json!({ "is_encrypted": true }), vec![&secret]),
        (json!({ "room_types": ["m.space"] }), vec![&space, &subspace]),
    ] {
        let (st, v) =
            ss(&s, &alice, None, 0, json!({ "conn_id": "one", "lists": { "l": list(filters.clone()) } })).await;
        assert_eq!(st, 200, "{v}");
        let mut got: Vec<&String> = v["rooms"].as_object().unwrap().keys().collect();
        let mut want = expected.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{filters}");
    }

    // Wrong types are refused.
    for bad in [json!({ "spaces": "!a:b" }), json!({ "tags": [1] }), json!({ "not_tags": {} })] {
        let got = ss(&s, &alice, None, 0, json!({ "conn_id": "bad", "lists": { "l": list(bad.clone()) } })).await;
        assert_err(&got, 400, "M_BAD_JSON");
    }
}

#[tokio::test]
async fn positions_that_are_not_this_connections_answers_are_unknown() {
    let mut s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    create_room(&s, &alice, "Room").await;
    let (_, v) = ss(&s, &alice, None, 0, room_list((0, 9))).await;
    let pos = v["pos"].as_str().unwrap().to_owned();

    for bad in ["garbage", "1", "99999_1", "", &format!("{pos}0")] {
        assert_err(&ss(&s, &alice, Some(bad), 0, room_list((0, 9))).await, 400, "M_UNKNOWN_POS");
    }
    // Another user's, or another connection's, position.
    assert_err(&ss(&s, &bob, Some(&pos), 0, room_list((0, 9))).await, 400, "M_UNKNOWN_POS");
    let mut other = room_list((0, 9));
    other["conn_id"] = json!("encryption");
    assert_err(&ss(&s, &alice, Some(&pos), 0, other).await, 400, "M_UNKNOWN_POS");
    // The same device starting over makes the old positions unknown.
    let (_, fresh) = ss(&s, &alice, None, 0, room_list((0, 9))).await;
    assert_err(&ss(&s, &alice, Some(&pos), 0, room_list((0, 9))).await, 400, "M_UNKNOWN_POS");

    // A restart keeps connections: the client goes on from its position.
    let pos = fresh["pos"].as_str().unwrap().to_owned();
    let running = s.running.take().unwrap();
    s.running = Some(running.restart().await.unwrap());
    let (st, v) = ss(&s, &alice, Some(&pos), 0, room_list((0, 9))).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["rooms"].as_object().unwrap().is_empty(), "nothing is sent again after a restart: {v}");

    // Bad requests.
    let mut backwards = room_list((0, 9));
    backwards["lists"]["all_rooms"]["ranges"] = json!([[5, 2]]);
    assert_err(&ss(&s, &alice, None, 0, backwards).await, 400, "M_INVALID_PARAM");
    let mut huge = room_list((0, 9));
    huge["lists"]["all_rooms"]["timeline_limit"] = json!(5000);
    assert_err(&ss(&s, &alice, None, 0, huge).await, 400, "M_INVALID_PARAM");
    let mut wide = room_list((0, 9));
    wide["lists"]["all_rooms"]["ranges"] = json!([[0, 4_000_000_000u64]]);
    let (st, v) = ss(&s, &alice, None, 0, wide).await;
    assert_eq!(st, 200, "a range past the end is cut at the end: {v}");
    assert_eq!(v["rooms"].as_object().unwrap().len(), 1);
    let (st, _) = s.post(PATH, Some(&alice), json!({ "lists": "not a map" })).await;
    assert_eq!(st, 400);
    let mut bad_filter = room_list((0, 9));
    bad_filter["lists"]["all_rooms"]["filters"] = json!({ "is_dm": "maybe" });
    assert_err(&ss(&s, &alice, None, 0, bad_filter).await, 400, "M_BAD_JSON");
    let mut bad_state = room_list((0, 9));
    bad_state["lists"]["all_rooms"]["required_state"] = json!([["m.room.name"]]);
    assert_err(&ss(&s, &alice, None, 0, bad_state).await, 400, "M_BAD_JSON");
    // Unknown fields (list "ops" and "sort" from the older sliding sync, a future extension)
    // are ignored, as the MSC asks.
    let mut unknown = room_list((0, 9));
    unknown["lists"]["all_rooms"]["sort"] = json!(["by_recency"]);
    unknown["lists"]["all_rooms"]["ops"] = json!([{ "op": "SYNC" }]);
    unknown["extensions"]["org.example.future"] = json!({ "enabled": true });
    assert_eq!(ss(&s, &alice, None, 0, unknown).await.0, 200);
    assert_err(&s.post(PATH, None, room_list((0, 1))).await, 401, "M_MISSING_TOKEN");
}

/// What a connection keeps is bounded: a device keeps its 16 most recently used connections
/// (conn_ids are the client's to make up), and a device's connections go with it.
#[tokio::test]
async fn connections_are_bounded_per_device_and_go_with_the_device() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    create_room(&s, &alice, "Room").await;
    let mut positions = Vec::new();
    for i in 0..17 {
        let mut body = room_list((0, 9));
        body["conn_id"] = json!(format!("conn{i}"));
        let (st, v) = ss(&s, &alice, None, 0, body).await;
        assert_eq!(st, 200, "{v}");
        positions.push(v["pos"].as_str().unwrap().to_owned());
    }
    let with = |i: usize| {
        let mut body = room_list((0, 9));
        body["conn_id"] = json!(format!("conn{i}"));
        body
    };
    // The 17th pushed out the least recently used, the first; the second still works.
    assert_err(&ss(&s, &alice, Some(&positions[0]), 0, with(0)).await, 400, "M_UNKNOWN_POS");
    let (st, v) = ss(&s, &alice, Some(&positions[1]), 0, with(1)).await;
    assert_eq!(st, 200, "{v}");

    // A second device's connection; logging it out removes its connections from the database.
    let (st, login) = s.login("alice", "password1").await;
    assert_eq!(st, 200, "{login}");
    let phone = login["access_token"].as_str().unwrap();
    let (st, v) = ss(&s, phone, None, 0, room_list((0, 9))).await;
    assert_eq!(st, 200, "{v}");
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", s.dir.path().join("hearth.db").display())).await.unwrap();
    let count = async |device: &str| -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM sliding_sync_connections WHERE device_id = ?")
            .bind(device)
            .fetch_one(&db)
            .await
            .unwrap()
    };
    let phone_device = login["device_id"].as_str().unwrap();
    assert_eq!(count(phone_device).await, 1);
    let (st, _) = s.post("/_matrix/client/v3/logout", Some(phone), json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(count(phone_device).await, 0, "the logged-out device's connection is gone");
    let orphans: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sliding_sync_positions WHERE connection_id NOT IN (SELECT id FROM sliding_sync_connections)")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(orphans, 0, "no positions of removed connections are left");
}

#[tokio::test]
async fn the_encryption_connection_gets_to_device_messages_and_key_counts() {
    let s = TestServer::start().await;
    let alice_login = s.register("alice", "password1").await;
    let alice = alice_login["access_token"].as_str().unwrap().to_owned();
    let device = alice_login["device_id"].as_str().unwrap().to_owned();
    let bob = s.user("bob").await;
    let body = |since: Option<&str>| {
        let mut b = json!({ "conn_id": "encryption", "extensions": { "to_device": { "enabled": true }, "e2ee": { "enabled": true } } });
        if let Some(since) = since {
            b["extensions"]["to_device"]["since"] = json!(since);
        }
        b
    };
    let (_, v) = ss(&s, &alice, None, 30000, body(None)).await;
    assert!(v["extensions"]["e2ee"]["device_one_time_keys_count"].is_object(), "{v}");
    let since = v["extensions"]["to_device"]["next_batch"].as_str().unwrap().to_owned();
    let pos = v["pos"].as_str().unwrap().to_owned();

    let send = s
        .put(
            "/_matrix/client/v3/sendToDevice/m.test/txn1",
            Some(&bob),
            json!({ "messages": { format!("@alice:{SERVER_NAME}"): { device.clone(): { "hello": "alice" } } } }),
        )
        .await;
    assert_eq!(send.0, 200, "{}", send.1);
    let (_, v) = ss(&s, &alice, Some(&pos), 5000, body(Some(&since))).await;
    let events = v["extensions"]["to_device"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{v}");
    assert_eq!(events[0]["content"]["hello"], "alice");
    // Not acknowledged yet (same since): delivered again.
    let (_, again) = ss(&s, &alice, Some(&pos), 0, body(Some(&since))).await;
    assert_eq!(again["extensions"]["to_device"]["events"].as_array().unwrap().len(), 1);
    // Acknowledged with the next since: gone.
    let next = v["extensions"]["to_device"]["next_batch"].as_str().unwrap();
    let (_, after) = ss(&s, &alice, Some(v["pos"].as_str().unwrap()), 0, body(Some(next))).await;
    assert!(after["extensions"]["to_device"]["events"].as_array().unwrap().is_empty(), "{after}");
}

#[tokio::test]
async fn device_lists_say_who_came_and_who_is_no_longer_shared() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = create_room(&s, &alice, "Shared").await;
    let body = json!({ "conn_id": "encryption", "extensions": { "e2ee": { "enabled": true } } });
    let (_, v) = ss(&s, &alice, None, 0, body.clone()).await;
    let pos = v["pos"].as_str().unwrap().to_owned();
    let bob_id = format!("@bob:{SERVER_NAME}");

    // Bob joins a room Alice is in: her client must fetch his devices.
    s.post(&format!("/_matrix/client/v3/rooms/{room}/invite"), Some(&alice), json!({ "user_id": bob_id })).await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let (_, v) = ss(&s, &alice, Some(&pos), 5000, body.clone()).await;
    assert_eq!(v["extensions"]["e2ee"]["device_lists"]["changed"], json!([bob_id]), "{v}");
    let pos = v["pos"].as_str().unwrap().to_owned();

    // Bob leaves: they share no room any more, so Alice's client stops tracking him.
    s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&bob), json!({})).await;
    let (_, v) = ss(&s, &alice, Some(&pos), 5000, body).await;
    assert_eq!(v["extensions"]["e2ee"]["device_lists"]["left"], json!([bob_id]), "{v}");
}

/// Element X's unread badge: when the user reads a room on another device (a receipt, no new
/// event), the next answer carries the room with its new notification count.
#[tokio::test]
async fn a_read_receipt_brings_the_new_unread_count() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (_, v) =
        s.post("/_matrix/client/v3/createRoom", Some(&bob), json!({"invite": [format!("@alice:{SERVER_NAME}")]})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&alice), json!({})).await;
    let mut last = String::new();
    for i in 0..2 {
        last = send(&s, &bob, &room, &format!("unread {i}")).await;
    }
    let body = json!({
        "conn_id": "badge",
        "lists": { "all": { "ranges": [[0, 10]], "timeline_limit": 1 } },
        "extensions": { "receipts": { "enabled": true } }
    });
    let (st, v) = ss(&s, &alice, None, 0, body.clone()).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["rooms"][&room]["notification_count"], 2, "{v}");
    let pos = v["pos"].as_str().unwrap().to_owned();

    // Alice reads the room on her phone.
    let (st, _) =
        s.post(&format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{last}"), Some(&alice), json!({})).await;
    assert_eq!(st, 200);
    let (st, v) = ss(&s, &alice, Some(&pos), 0, body).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["rooms"][&room]["notification_count"], 0, "the badge clears: {v}");
}

/// A list whose timelines are more than the event cache holds is read past the cache (the
/// events with their rows, in one query): its rooms answer as when read through the cache.
#[tokio::test]
async fn rooms_read_past_the_event_cache_answer_as_rooms_read_through_it() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let rooms = [create_room(&s, &alice, "one").await, create_room(&s, &alice, "two").await];
    for (i, r) in rooms.iter().enumerate() {
        for j in 0..5 {
            send(&s, &alice, r, &format!("room {i}, message {j}")).await;
        }
    }
    let answer = |limit: u64| {
        let mut body = room_list((0, 10));
        body["conn_id"] = json!(format!("limit-{limit}"));
        body["lists"]["all_rooms"]["timeline_limit"] = json!(limit);
        body
    };
    // 2 rooms x 401 events is more than half the cache (a scan), 2 x 31 is not.
    let (st, through) = ss(&s, &alice, None, 0, answer(30)).await;
    assert_eq!(st, StatusCode::OK, "{through}");
    let (st, past) = ss(&s, &alice, None, 0, answer(400)).await;
    assert_eq!(st, StatusCode::OK, "{past}");
    for r in &rooms {
        let (mut a, mut b) = (through["rooms"][r].clone(), past["rooms"][r].clone());
        assert!(a["timeline"].as_array().is_some_and(|t| t.len() > 5), "{a}");
        for v in [&mut a, &mut b] {
            for part in ["timeline", "required_state"] {
                for e in v[part].as_array_mut().into_iter().flatten() {
                    if let Some(u) = e.get_mut("unsigned").and_then(Value::as_object_mut) {
                        u.remove("age");
                    }
                }
            }
        }
        assert_eq!(a, b, "{r}");
    }
}

/// A room without a name is shown by its heroes (MSC4186, as `m.heroes` in /sync): the first
/// five joined or invited members by the order they came (not by user ID), never the viewer,
/// with their display names; when everyone else left, those who left. A named room has none.
#[tokio::test]
async fn unnamed_rooms_come_with_their_heroes_in_the_order_they_joined() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let uid = |n: &str| format!("@{n}:{SERVER_NAME}");
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat"})).await;
    assert_eq!(st, 200, "{v}");
    let unnamed = v["room_id"].as_str().unwrap().to_owned();
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat"})).await;
    let deserted = v["room_id"].as_str().unwrap().to_owned();
    let (_, v) =
        s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat", "name": "Named"})).await;
    let named = v["room_id"].as_str().unwrap().to_owned();
    let names = ["zed", "bob", "yan", "carl", "xia", "dora"];
    for n in names {
        let t = s.user(n).await;
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/profile/{}/displayname", uid(n)),
                Some(&t),
                json!({"displayname": format!("{n} (display)")}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        for r in [&unnamed, &named] {
            let (st, v) = s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&t), json!({})).await;
            assert_eq!(st, 200, "{v}");
        }
    }
    let quitter = s.user("quitter").await;
    s.post(&format!("/_matrix/client/v3/join/{deserted}"), Some(&quitter), json!({})).await;
    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{deserted}/leave"), Some(&quitter), json!({})).await;
    assert_eq!(st, 200, "{v}");

    let (st, v) = ss(&s, &alice, None, 0, room_list((0, 9))).await;
    assert_eq!(st, 200, "{v}");
    let heroes = |r: &str| v["rooms"][r]["heroes"].clone();
    let want: Vec<Value> =
        names[..5].iter().map(|n| json!({"user_id": uid(n), "displayname": format!("{n} (display)")})).collect();
    assert_eq!(heroes(&unnamed), json!(want), "{v}");
    assert_eq!(
        (v["rooms"][&unnamed]["joined_count"].clone(), v["rooms"][&unnamed]["invited_count"].clone()),
        (json!(7), json!(0))
    );
    assert_eq!(heroes(&deserted), json!([{"user_id": uid("quitter")}]), "{v}");
    assert_eq!(v["rooms"][&deserted]["joined_count"], 1, "{v}");
    assert_eq!(heroes(&named), Value::Null, "{v}");
}
