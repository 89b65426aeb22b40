//! History visibility on every read path (spec: "History visibility"): no path shows a user an
//! event they may not see.

mod common;

use common::{TestServer, assert_err};
use serde_json::{Value, json};

async fn room(s: &TestServer, owner: &str, visibility: &str) -> String {
    let (st, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(owner),
            json!({"preset": "public_chat", "initial_state": [{"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": visibility}}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

async fn say(s: &TestServer, token: &str, room: &str, body: &str) -> String {
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{body}"),
            Some(token),
            json!({"msgtype": "m.text", "body": body}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["event_id"].as_str().unwrap().to_owned()
}

/// Message bodies `token` can find by /messages, /sync and /event.
async fn seen(
    s: &TestServer,
    token: &str,
    room: &str,
    ids: &[(&str, &str)],
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"), Some(token)).await;
    let from_messages: Vec<String> = page["chunk"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|e| e["type"] == "m.room.message")
                .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let (_, sync) = s
        .get(
            "/_matrix/client/v3/sync?filter=%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A100%7D%7D%7D",
            Some(token),
        )
        .await;
    let from_sync: Vec<String> = sync["rooms"]["join"][room]["timeline"]["events"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|e| e["type"] == "m.room.message")
                .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut from_event = Vec::new();
    for (id, body) in ids {
        let (st, _) = s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{id}"), Some(token)).await;
        if st == 200 {
            from_event.push((*body).to_owned());
        }
    }
    (from_messages, from_sync, from_event)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn joined_history_hides_what_came_before_the_join() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room(&s, &alice, "joined").await;
    let before = say(&s, &alice, &room, "before").await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let after = say(&s, &alice, &room, "after").await;
    let (m, sy, ev) = seen(&s, &bob, &room, &[(&before, "before"), (&after, "after")]).await;
    assert_eq!(m, ["after"]);
    assert_eq!(sy, ["after"]);
    assert_eq!(ev, ["after"]);
}

#[tokio::test]
async fn shared_history_shows_everything_to_members() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room(&s, &alice, "shared").await;
    let before = say(&s, &alice, &room, "before").await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let after = say(&s, &alice, &room, "after").await;
    let (m, sy, ev) = seen(&s, &bob, &room, &[(&before, "before"), (&after, "after")]).await;
    assert_eq!(sorted(m), ["after", "before"]);
    assert_eq!(sorted(sy), ["after", "before"]);
    assert_eq!(sorted(ev), ["after", "before"]);
}

#[tokio::test]
async fn a_former_member_sees_nothing_sent_after_leaving() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room(&s, &alice, "shared").await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let during = say(&s, &alice, &room, "during").await;
    s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&bob), json!({})).await;
    let later = say(&s, &alice, &room, "later").await;
    let (m, _, ev) = seen(&s, &bob, &room, &[(&during, "during"), (&later, "later")]).await;
    assert_eq!(m, ["during"]);
    assert_eq!(ev, ["during"]);
}

#[tokio::test]
async fn invited_history_starts_at_the_invite() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room(&s, &alice, "invited").await;
    let before = say(&s, &alice, &room, "before").await;
    s.post(&format!("/_matrix/client/v3/rooms/{room}/invite"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
        .await;
    let while_invited = say(&s, &alice, &room, "invited").await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    let (m, _, ev) = seen(&s, &bob, &room, &[(&before, "before"), (&while_invited, "invited")]).await;
    assert_eq!(m, ["invited"]);
    assert_eq!(ev, ["invited"]);
}

#[tokio::test]
async fn world_readable_rooms_can_be_read_by_anyone_and_private_ones_by_nobody_else() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let eve = s.user("eve").await;
    let open = room(&s, &alice, "world_readable").await;
    let id = say(&s, &alice, &open, "hello world").await;
    let (m, _, ev) = seen(&s, &eve, &open, &[(&id, "hello world")]).await;
    assert_eq!(m, ["hello world"]);
    assert_eq!(ev, ["hello world"]);

    let (_, private) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "private_chat"})).await;
    let private = private["room_id"].as_str().unwrap();
    let secret = say(&s, &alice, private, "secret").await;
    assert_err(
        &s.get(&format!("/_matrix/client/v3/rooms/{private}/messages?dir=b"), Some(&eve)).await,
        403,
        "M_FORBIDDEN",
    );
    assert_err(
        &s.get(&format!("/_matrix/client/v3/rooms/{private}/event/{secret}"), Some(&eve)).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.get(&format!("/_matrix/client/v3/rooms/{private}/state"), Some(&eve)).await, 403, "M_FORBIDDEN");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&eve)).await;
    assert!(sync["rooms"]["join"].get(private).is_none());
    let _: Value = sync;
}

/// The events a room-events search with `criteria` finds for `token`, in order.
async fn search_results(s: &TestServer, token: &str, criteria: Value) -> Vec<Value> {
    let body = json!({"search_categories": {"room_events": criteria}});
    let (st, v) = s.post("/_matrix/client/v3/search", Some(token), body).await;
    assert_eq!(st, 200, "{v}");
    let results = v["search_categories"]["room_events"]["results"].as_array().unwrap();
    results.iter().map(|r| r["result"].clone()).collect()
}

/// Server-side search finds words in messages of the user's rooms, never in rooms or parts of
/// history the user may not see, and forgets redacted text.
#[tokio::test]
async fn search_respects_membership_visibility_and_redactions() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let shared = room(&s, &alice, "joined").await;
    say(&s, &alice, &shared, "pancakes before bob joined").await;
    s.post(&format!("/_matrix/client/v3/join/{shared}"), Some(&bob), json!({})).await;
    let visible = say(&s, &alice, &shared, "Pancakes for breakfast").await;
    let private = {
        let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "private_chat"})).await;
        v["room_id"].as_str().unwrap().to_owned()
    };
    say(&s, &alice, &private, "secret pancakes recipe").await;

    let search = |token: String, term: &'static str| {
        let s = &s;
        async move {
            let results = search_results(s, &token, json!({"search_term": term})).await;
            results.iter().map(|r| r["content"]["body"].as_str().unwrap_or("").to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(search(bob.clone(), "pancakes").await, ["Pancakes for breakfast"]);
    let mut alices = search(alice.clone(), "PANCAKES").await;
    alices.sort();
    assert_eq!(alices, ["Pancakes for breakfast", "pancakes before bob joined", "secret pancakes recipe"]);
    assert!(search(bob.clone(), "recipe").await.is_empty());
    // FTS syntax in the input is plain text, not an error.
    assert!(search(bob.clone(), "\"unbalanced OR (").await.is_empty());

    s.put(&format!("/_matrix/client/v3/rooms/{shared}/redact/{visible}/r1"), Some(&alice), json!({})).await;
    assert!(search(bob.clone(), "breakfast").await.is_empty(), "redacted text is not searchable");
    assert_err(
        &s.post(
            "/_matrix/client/v3/search",
            Some(&bob),
            json!({"search_categories": {"room_events": {"search_term": "  "}}}),
        )
        .await,
        400,
        "M_INVALID_PARAM",
    );
}

/// `keys` picks the fields searched (spec: "Server Side Search"): a room's name, its topic and
/// message bodies are found by their own key only, all three by default; `order_by: recent`
/// puts the newest first; `filter.rooms` narrows the rooms.
#[tokio::test]
async fn search_finds_names_topics_and_bodies_by_their_keys() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let kitchen = room(&s, &alice, "shared").await;
    let garden = room(&s, &alice, "shared").await;
    let state = |room: &str, kind: &str, content: Value| {
        let s = &s;
        let alice = alice.clone();
        let path = format!("/_matrix/client/v3/rooms/{room}/state/{kind}");
        async move {
            let (st, v) = s.put(&path, Some(&alice), content).await;
            assert_eq!(st, 200, "{v}");
            v["event_id"].as_str().unwrap().to_owned()
        }
    };
    let name = state(&kitchen, "m.room.name", json!({"name": "Pancake kitchen"})).await;
    let topic = state(&garden, "m.room.topic", json!({"topic": "pancake trees"})).await;
    let body = say(&s, &alice, &kitchen, "pancake batter").await;
    let search = |criteria: Value| {
        let s = &s;
        let alice = alice.clone();
        async move {
            let results = search_results(s, &alice, criteria).await;
            results.iter().map(|r| r["event_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        search(json!({"search_term": "pancake", "order_by": "recent"})).await,
        [body.clone(), topic.clone(), name.clone()]
    );
    assert_eq!(search(json!({"search_term": "pancake", "keys": ["content.name"]})).await, vec![name.clone()]);
    assert_eq!(search(json!({"search_term": "pancake", "keys": ["content.topic"]})).await, vec![topic.clone()]);
    assert_eq!(search(json!({"search_term": "pancake", "keys": ["content.body"]})).await, vec![body.clone()]);
    let only_kitchen = json!({"search_term": "pancake", "order_by": "recent", "filter": {"rooms": [kitchen]}});
    assert_eq!(search(only_kitchen).await, [body, name]);
}

/// First syncs with `include_leave`: the left rooms listed.
async fn left_rooms(s: &TestServer, token: &str, since: Option<&str>) -> Vec<String> {
    let filter = common::urlencode(&json!({"room": {"include_leave": true}}).to_string());
    let since = since.map(|t| format!("&since={t}")).unwrap_or_default();
    let (st, sync) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}{since}"), Some(token)).await;
    assert_eq!(st, 200, "{sync}");
    sync["rooms"]["leave"].as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

async fn forget(s: &TestServer, token: &str, room: &str) -> (reqwest::StatusCode, Value) {
    s.post(&format!("/_matrix/client/v3/rooms/{room}/forget"), Some(token), json!({})).await
}

async fn messages_status(s: &TestServer, token: &str, room: &str) -> u16 {
    s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=10"), Some(token)).await.0.as_u16()
}

/// POST /rooms/{roomId}/forget (spec: "Leaving rooms"): only a room one left or was banned from
/// (400 M_UNKNOWN while in it or invited, as Synapse); afterwards its history, state and events
/// are closed to the user (403) and it leaves first syncs, while the leave still reaches an
/// incremental sync from before it; joining again opens the room again.
#[tokio::test]
async fn a_forgotten_room_is_closed_to_its_user_until_they_join_again() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room(&s, &alice, "shared").await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await.0, 200);
    let hello = say(&s, &alice, &room, "hello").await;
    assert_err(&forget(&s, &bob, &room).await, 400, "M_UNKNOWN");
    let (_, before_leave) = s.get("/_matrix/client/v3/sync", Some(&bob)).await;
    let since = before_leave["next_batch"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&bob), json!({})).await.0, 200);

    // Left, not forgotten: the history up to the leave is still theirs.
    assert_eq!(messages_status(&s, &bob, &room).await, 200);
    assert_eq!(left_rooms(&s, &bob, None).await, vec![room.clone()]);

    let (st, v) = forget(&s, &bob, &room).await;
    assert_eq!(st, 200, "{v}");
    assert_err(
        &s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"), Some(&bob)).await,
        403,
        "M_FORBIDDEN",
    );
    assert_eq!(s.get(&format!("/_matrix/client/v3/rooms/{room}/state"), Some(&bob)).await.0, 403);
    assert_ne!(s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{hello}"), Some(&bob)).await.0, 200);
    assert_ne!(s.get(&format!("/_matrix/client/v3/rooms/{room}/context/{hello}"), Some(&bob)).await.0, 200);
    assert_eq!(left_rooms(&s, &bob, None).await, Vec::<String>::new(), "not in a first sync");
    assert_eq!(left_rooms(&s, &bob, Some(&since)).await, vec![room.clone()], "the leave reaches other devices");
    // Forgetting again, or a room never joined, is fine.
    assert_eq!(forget(&s, &bob, &room).await.0, 200);
    let other = room_of(&s, &alice).await;
    assert_eq!(forget(&s, &bob, &other).await.0, 200);
    // Invited is "in the room".
    let (st, _) = s
        .post(&format!("/_matrix/client/v3/rooms/{other}/invite"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
        .await;
    assert_eq!(st, 200);
    assert_err(&forget(&s, &bob, &other).await, 400, "M_UNKNOWN");
    // The others still read the room as before.
    assert_eq!(messages_status(&s, &alice, &room).await, 200);

    // Joining again opens the room, with the shared history.
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await.0, 200);
    let (st, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50"), Some(&bob)).await;
    assert_eq!(st, 200, "{page}");
    assert!(page["chunk"].as_array().unwrap().iter().any(|e| e["event_id"] == hello.as_str()), "{page}");
}

async fn room_of(s: &TestServer, owner: &str) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(owner), json!({"preset": "private_chat"})).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

/// `forget_rooms_on_leave` (Synapse's key): leaving, or being kicked, forgets at once.
#[tokio::test]
async fn with_forget_rooms_on_leave_a_room_left_is_forgotten() {
    let s = TestServer::start_with(|c| c.forget_rooms_on_leave = true).await;
    let alice = s.user("alice").await;
    let (_, caps) = s.get("/_matrix/client/v3/capabilities", Some(&alice)).await;
    assert_eq!(caps["capabilities"]["m.forget_forced_upon_leave"]["enabled"], true, "clients are told: {caps}");
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let room = room(&s, &alice, "shared").await;
    for who in [&bob, &carol] {
        assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(who), json!({})).await.0, 200);
    }
    say(&s, &alice, &room, "hello").await;
    assert_eq!(messages_status(&s, &bob, &room).await, 200);
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&bob), json!({})).await.0, 200);
    let (st, _) = s
        .post(&format!("/_matrix/client/v3/rooms/{room}/kick"), Some(&alice), json!({"user_id": "@carol:hearth.test"}))
        .await;
    assert_eq!(st, 200);
    for who in [&bob, &carol] {
        assert_eq!(messages_status(&s, who, &room).await, 403);
        assert_eq!(left_rooms(&s, who, None).await, Vec::<String>::new());
    }
    assert_eq!(messages_status(&s, &alice, &room).await, 200);
}
