//! Reports, timestamp lookups, room aliases, knocking and mutual rooms.

mod common;

use common::{TestServer, assert_err};
use serde_json::json;

async fn public_room(s: &TestServer, owner: &str) -> String {
    let (_, v) = s
        .post("/_matrix/client/v3/createRoom", Some(owner), json!({"preset": "public_chat", "room_alias_name": "hall"}))
        .await;
    v["room_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn reports_need_a_visible_target() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = public_room(&s, &alice).await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let (_, ev) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "spam"}),
        )
        .await;
    let ev = ev["event_id"].as_str().unwrap();
    assert_eq!(
        s.post(&format!("/_matrix/client/v3/rooms/{room}/report/{ev}"), Some(&bob), json!({"reason": "spam"})).await.0,
        200
    );
    assert_eq!(
        s.post(&format!("/_matrix/client/v3/rooms/{room}/report"), Some(&bob), json!({"reason": "bad room"})).await.0,
        200
    );
    assert_eq!(
        s.post("/_matrix/client/v3/users/@alice:hearth.test/report", Some(&bob), json!({"reason": "rude"})).await.0,
        200
    );
    let eve = s.user("eve").await;
    let (_, private) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "private_chat"})).await;
    let private = private["room_id"].as_str().unwrap();
    let (_, secret) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{private}/send/m.room.message/2"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "x"}),
        )
        .await;
    let r = s
        .post(
            &format!("/_matrix/client/v3/rooms/{private}/report/{}", secret["event_id"].as_str().unwrap()),
            Some(&eve),
            json!({}),
        )
        .await;
    assert_err(&r, 404, "M_NOT_FOUND");
    assert_err(
        &s.post("/_matrix/client/v3/users/@ghost:hearth.test/report", Some(&bob), json!({"reason": "x"})).await,
        404,
        "M_NOT_FOUND",
    );
    let long = "x".repeat(2000);
    assert_err(
        &s.post(&format!("/_matrix/client/v3/rooms/{room}/report"), Some(&bob), json!({"reason": long})).await,
        400,
        "M_INVALID_PARAM",
    );
}

#[tokio::test]
async fn timestamp_to_event_finds_the_nearest_event() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let room = public_room(&s, &alice).await;
    let (_, first) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/a"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "a"}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let middle = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (_, second) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/b"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "b"}),
        )
        .await;
    let (st, f) =
        s.get(&format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event?ts={middle}&dir=f"), Some(&alice)).await;
    assert_eq!(st, 200, "{f}");
    assert_eq!(f["event_id"], second["event_id"]);
    let (_, b) =
        s.get(&format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event?ts={middle}&dir=b"), Some(&alice)).await;
    assert_eq!(b["event_id"], first["event_id"]);
    let far = middle + 10_000_000;
    assert_err(
        &s.get(&format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event?ts={far}&dir=f"), Some(&alice)).await,
        404,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn knocking_asks_to_join_and_an_invite_lets_in() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (_, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({"preset": "private_chat", "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]}),
        )
        .await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    assert_err(&s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await, 403, "M_FORBIDDEN");
    let (st, k) = s.post(&format!("/_matrix/client/v3/knock/{room}"), Some(&bob), json!({"reason": "it's me"})).await;
    assert_eq!(st, 200, "{k}");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&bob)).await;
    assert!(
        sync["rooms"]["knock"][&room]["knock_state"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "m.room.member"),
        "{sync}"
    );
    let (_, m) =
        s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@bob:hearth.test"), Some(&alice)).await;
    assert_eq!(m["membership"], "knock");
    assert_eq!(m["reason"], "it's me");
    s.post(&format!("/_matrix/client/v3/rooms/{room}/invite"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
        .await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await.0, 200);

    // Knocking on an invite-only room is refused by the auth rules.
    let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "private_chat"})).await;
    let closed = v["room_id"].as_str().unwrap();
    assert_err(&s.post(&format!("/_matrix/client/v3/knock/{closed}"), Some(&bob), json!({})).await, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn aliases_and_mutual_rooms() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = public_room(&s, &alice).await;
    let (_, a) = s.get(&format!("/_matrix/client/v3/rooms/{room}/aliases"), Some(&alice)).await;
    assert_eq!(a["aliases"], json!(["#hall:hearth.test"]));
    assert_err(&s.get(&format!("/_matrix/client/v3/rooms/{room}/aliases"), Some(&bob)).await, 403, "M_FORBIDDEN");
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let (st, m) = s.get("/_matrix/client/v1/mutual_rooms?user_id=@bob:hearth.test", Some(&alice)).await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["joined"], json!([room]));
    assert_eq!(m["count"], 1, "the spec's total, with the rooms in one batch");
    assert_err(&s.get("/_matrix/client/v1/mutual_rooms", Some(&alice)).await, 400, "M_INVALID_PARAM");
    let unknown_from = s.get("/_matrix/client/v1/mutual_rooms?user_id=@bob:hearth.test&from=x", Some(&alice)).await;
    assert_err(&unknown_from, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn upgrading_a_room_moves_its_state_aliases_and_people_on() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (_, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({"preset": "public_chat", "room_version": "10", "name": "Old hall", "topic": "t", "room_alias_name": "town", "visibility": "public"}),
        )
        .await;
    let old = v["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{old}"), Some(&bob), json!({})).await;
    // Bob may not upgrade; alice may.
    assert_err(
        &s.post(&format!("/_matrix/client/v3/rooms/{old}/upgrade"), Some(&bob), json!({"new_version": "12"})).await,
        403,
        "M_FORBIDDEN",
    );
    assert_err(
        &s.post(&format!("/_matrix/client/v3/rooms/{old}/upgrade"), Some(&alice), json!({"new_version": "99"})).await,
        400,
        "M_UNSUPPORTED_ROOM_VERSION",
    );
    let (st, up) =
        s.post(&format!("/_matrix/client/v3/rooms/{old}/upgrade"), Some(&alice), json!({"new_version": "12"})).await;
    assert_eq!(st, 200, "{up}");
    let new = up["replacement_room"].as_str().unwrap().to_owned();

    let (_, tomb) = s.get(&format!("/_matrix/client/v3/rooms/{old}/state/m.room.tombstone/"), Some(&bob)).await;
    assert_eq!(tomb["replacement_room"], new.as_str());
    let (_, create) = s.get(&format!("/_matrix/client/v3/rooms/{new}/state/m.room.create/"), Some(&alice)).await;
    assert_eq!(create["predecessor"]["room_id"], old.as_str());
    assert_eq!(create["room_version"], "12");
    let (_, name) = s.get(&format!("/_matrix/client/v3/rooms/{new}/state/m.room.name/"), Some(&alice)).await;
    assert_eq!(name["name"], "Old hall");
    let (_, pl) = s.get(&format!("/_matrix/client/v3/rooms/{new}/state/m.room.power_levels/"), Some(&alice)).await;
    assert!(pl["users"].get("@alice:hearth.test").is_none(), "a v12 creator is not listed: {pl}");
    // The alias and the directory entry moved.
    let (_, a) = s.get("/_matrix/client/v3/directory/room/%23town:hearth.test", None).await;
    assert_eq!(a["room_id"], new.as_str());
    let (_, dir) = s.get("/_matrix/client/v3/publicRooms", None).await;
    let listed: Vec<&str> = dir["chunk"].as_array().unwrap().iter().map(|c| c["room_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [new.as_str()]);
    // Conversation stops in the old room; bob can follow to the new one.
    let r = s
        .put(
            &format!("/_matrix/client/v3/rooms/{old}/send/m.room.message/x"),
            Some(&bob),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{new}"), Some(&bob), json!({})).await.0, 200);
}
