//! Spaces: the hierarchy, room summaries, and restricted joins for space members (spec:
//! "Spaces", "Restricted rooms", GET /room_summary).

mod common;

use common::{TestServer, assert_err};
use serde_json::json;

#[tokio::test]
async fn a_family_space_with_a_restricted_room() {
    let s = TestServer::start().await;
    let mum = s.user("mum").await;
    let kid = s.user("kid").await;
    let stranger = s.user("stranger").await;
    let (_, space) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&mum),
            json!({"name": "Family", "creation_content": {"type": "m.space"}, "preset": "private_chat"}),
        )
        .await;
    let space = space["room_id"].as_str().unwrap().to_owned();
    let (_, room) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&mum),
            json!({"name": "Chores", "topic": "who does what", "initial_state": [{"type": "m.room.join_rules", "state_key": "",
                   "content": {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}}]}),
        )
        .await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{space}/state/m.space.child/{room}"),
            Some(&mum),
            json!({"via": ["hearth.test"], "suggested": true}),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // Not in the space yet: no preview, no join.
    assert_err(&s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&kid), json!({})).await, 403, "M_FORBIDDEN");
    assert_err(&s.get(&format!("/_matrix/client/v1/room_summary/{room}"), Some(&kid)).await, 404, "M_NOT_FOUND");

    // Invited into the space and joined: the restricted room opens to the kid, not the stranger.
    s.post(&format!("/_matrix/client/v3/rooms/{space}/invite"), Some(&mum), json!({"user_id": "@kid:hearth.test"}))
        .await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{space}"), Some(&kid), json!({})).await.0, 200);
    let (st, summary) = s.get(&format!("/_matrix/client/v1/room_summary/{room}"), Some(&kid)).await;
    assert_eq!(st, 200, "{summary}");
    assert_eq!(summary["name"], "Chores");
    assert_eq!(summary["join_rule"], "restricted");
    assert_eq!(summary["allowed_room_ids"], json!([space]));
    let (st, joined) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&kid), json!({})).await;
    assert_eq!(st, 200, "{joined}");
    let (_, member) =
        s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@kid:hearth.test"), Some(&kid)).await;
    assert_eq!(member["join_authorised_via_users_server"], "@mum:hearth.test");
    assert_err(
        &s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&stranger), json!({})).await,
        403,
        "M_FORBIDDEN",
    );

    // The hierarchy shows the space and its child.
    let (st, h) = s.get(&format!("/_matrix/client/v1/rooms/{space}/hierarchy"), Some(&kid)).await;
    assert_eq!(st, 200, "{h}");
    let rooms = h["rooms"].as_array().unwrap();
    assert_eq!(rooms[0]["room_id"], space.as_str());
    assert_eq!(rooms[0]["room_type"], "m.space");
    assert_eq!(rooms[0]["children_state"][0]["state_key"], room.as_str());
    assert_eq!(rooms[1]["name"], "Chores");
    let (_, page) = s.get(&format!("/_matrix/client/v1/rooms/{space}/hierarchy?limit=1"), Some(&kid)).await;
    assert_eq!(page["rooms"].as_array().unwrap().len(), 1);
    let next = page["next_batch"].as_str().unwrap();
    let (_, page2) =
        s.get(&format!("/_matrix/client/v1/rooms/{space}/hierarchy?limit=1&from={next}"), Some(&kid)).await;
    assert_eq!(page2["rooms"][0]["room_id"], room.as_str());
    assert_err(
        &s.get(&format!("/_matrix/client/v1/rooms/{space}/hierarchy"), Some(&stranger)).await,
        403,
        "M_FORBIDDEN",
    );
}

#[tokio::test]
async fn public_rooms_can_be_previewed_without_logging_in() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let (_, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({"preset": "public_chat", "name": "Open", "room_alias_name": "open"}),
        )
        .await;
    let room = v["room_id"].as_str().unwrap();
    let (st, summary) = s.get("/_matrix/client/v1/room_summary/%23open:hearth.test", None).await;
    assert_eq!(st, 200, "{summary}");
    assert_eq!(summary["room_id"], room);
    assert_eq!(summary["num_joined_members"], 1);
    let (_, p) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "private_chat"})).await;
    assert_err(
        &s.get(&format!("/_matrix/client/v1/room_summary/{}", p["room_id"].as_str().unwrap()), None).await,
        404,
        "M_NOT_FOUND",
    );
}
