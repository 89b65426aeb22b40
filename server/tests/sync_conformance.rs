//! /sync as a broad black-box conformance suite (sytest's `31sync`) checks it, where clients
//! rely on the details: `limited`, state next to the timeline, newly joined rooms, presence,
//! filters in every form, lazy-loaded members and the room summary.

mod common;

use common::{SERVER_NAME, TestServer, assert_err};
use serde_json::{Value, json};

fn enc(v: &Value) -> String {
    common::urlencode(&v.to_string())
}

async fn room(s: &TestServer, token: &str, body: Value) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), body).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

async fn send(s: &TestServer, token: &str, room: &str, kind: &str, content: Value) -> String {
    let txn = format!("t{}", rand_suffix());
    let (st, v) = s.put(&format!("/_matrix/client/v3/rooms/{room}/send/{kind}/{txn}"), Some(token), content).await;
    assert_eq!(st, 200, "{v}");
    v["event_id"].as_str().unwrap().to_owned()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

async fn msg(s: &TestServer, token: &str, room: &str, body: &str) -> String {
    send(s, token, room, "m.room.message", json!({"msgtype": "m.text", "body": body})).await
}

async fn send_state(s: &TestServer, token: &str, room: &str, kind: &str, content: Value) {
    let (st, v) = s.put(&format!("/_matrix/client/v3/rooms/{room}/state/{kind}/"), Some(token), content).await;
    assert_eq!(st, 200, "{v}");
}

async fn join(s: &TestServer, token: &str, room: &str) {
    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(token), json!({})).await;
    assert_eq!(st, 200, "{v}");
}

async fn filter_id(s: &TestServer, token: &str, user: &str, filter: Value) -> String {
    let (st, v) = s.post(&format!("/_matrix/client/v3/user/{user}/filter"), Some(token), filter).await;
    assert_eq!(st, 200, "{v}");
    v["filter_id"].as_str().unwrap().to_owned()
}

async fn sync(s: &TestServer, token: &str, query: &str) -> Value {
    let (st, v) = s.get(&format!("/_matrix/client/v3/sync?timeout=0&{query}"), Some(token)).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn uid(name: &str) -> String {
    format!("@{name}:{SERVER_NAME}")
}

fn events<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur["events"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn members(state: &[&Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = state
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .map(|e| (e["state_key"].as_str().unwrap().to_owned(), e["content"]["membership"].as_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn timelines_say_limited_only_when_events_were_left_out() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let me = uid("alice");
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let m1 = msg(&s, &alice, &r, "1").await;
    let m2 = msg(&s, &alice, &r, "2").await;
    let two = filter_id(&s, &alice, &me, json!({"room": {"timeline": {"limit": 2}}})).await;
    let v = sync(&s, &alice, &format!("filter={two}")).await;
    let tl = &v["rooms"]["join"][&r]["timeline"];
    assert_eq!(tl["limited"], true, "{tl}");
    assert!(tl["prev_batch"].is_string());
    let ids: Vec<&str> = tl["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [m1.as_str(), m2.as_str()]);
    // The prev_batch token pages on in /messages.
    let (_, page) = s
        .get(
            &format!("/_matrix/client/v3/rooms/{r}/messages?from={}&limit=1&dir=b", tl["prev_batch"].as_str().unwrap()),
            Some(&alice),
        )
        .await;
    assert!(page["end"].is_string() && page["start"].is_string(), "{page}");

    // A new room with a large limit: everything is in the timeline, nothing left out, and the
    // state does not repeat what the timeline holds.
    let fresh = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let big = filter_id(&s, &alice, &me, json!({"room": {"timeline": {"limit": 100}}})).await;
    let v = sync(&s, &alice, &format!("filter={big}")).await;
    let block = &v["rooms"]["join"][&fresh];
    assert_eq!(block["timeline"]["limited"], false, "{block}");
    assert!(events(block, &["state"]).is_empty(), "state repeated from the timeline: {block}");

    // A type filter that runs out of matching events before the limit is not limited.
    let typed = json!({"room": {"timeline": {"limit": 1, "types": ["m.room.message"]}, "state": {"types": []}}});
    let only = room(&s, &alice, json!({"preset": "public_chat"})).await;
    msg(&s, &alice, &only, "the only one").await;
    for i in 0..12 {
        send(&s, &alice, &only, "a.made.up.filler.type", json!({"filler": i})).await;
    }
    let v = sync(&s, &alice, &format!("filter={}", enc(&typed))).await;
    let tl = &v["rooms"]["join"][&only]["timeline"];
    assert_eq!(tl["events"].as_array().unwrap().len(), 1, "{tl}");
    assert_eq!(tl["limited"], false, "no older message was left out: {tl}");

    // Incremental: one new event with limit 1 is not limited, and prev_batch is there anyway.
    let since = v["next_batch"].as_str().unwrap().to_owned();
    msg(&s, &alice, &only, "next").await;
    let v = sync(&s, &alice, &format!("filter={}&since={since}", enc(&typed))).await;
    let tl = &v["rooms"]["join"][&only]["timeline"];
    assert_eq!((tl["limited"].as_bool(), tl["prev_batch"].is_string()), (Some(false), true), "{tl}");
}

#[tokio::test]
async fn a_newly_joined_room_is_limited_with_full_state_and_the_members_presence() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    s.put(&format!("/_matrix/client/v3/rooms/{r}/state/a.madeup.test.state/"), Some(&alice), json!({"my_key": 1}))
        .await;
    for i in 0..4 {
        msg(&s, &alice, &r, &format!("before {i}")).await;
    }
    let first = sync(&s, &bob, "").await;
    let since = first["next_batch"].as_str().unwrap().to_owned();
    for i in 0..4 {
        msg(&s, &alice, &r, &format!("after {i}")).await;
    }
    join(&s, &bob, &r).await;
    let f = json!({"room": {"timeline": {"types": ["m.room.message"], "limit": 10}, "state": {"types": ["a.madeup.test.state"]}}});
    let v = sync(&s, &bob, &format!("since={since}&filter={}", enc(&f))).await;
    let block = &v["rooms"]["join"][&r];
    let n = block["timeline"]["events"].as_array().unwrap().len();
    assert_eq!(block["timeline"]["limited"], n != 6, "a newly joined room's timeline is limited: {block}");
    let state = events(block, &["state"]);
    assert_eq!(state.len(), 1, "the whole (filtered) state, though it predates `since`: {block}");
    assert_eq!(state[0]["content"]["my_key"], 1);
    // Presence: the members Bob now shares a room with, once.
    let presence: Vec<&Value> =
        events(&v, &["presence"]).into_iter().filter(|e| e["sender"] != uid("bob").as_str()).collect();
    assert_eq!(presence.len(), 1, "{v}");
    assert_eq!(
        (presence[0]["type"].as_str(), presence[0]["sender"].as_str()),
        (Some("m.presence"), Some(uid("alice").as_str()))
    );
    let again = sync(&s, &bob, &format!("since={}", v["next_batch"].as_str().unwrap())).await;
    assert!(events(&again, &["presence"]).is_empty(), "{again}");

    // Alice hears of Bob's presence once he joins, though he never said anything about it.
    let a0 = sync(&s, &alice, "set_presence=offline").await;
    let carol = s.user("carol").await;
    join(&s, &carol, &r).await;
    let a1 = sync(&s, &alice, &format!("set_presence=offline&since={}", a0["next_batch"].as_str().unwrap())).await;
    let senders: Vec<&str> = events(&a1, &["presence"]).iter().filter_map(|e| e["sender"].as_str()).collect();
    assert_eq!(senders, [uid("carol").as_str()], "{a1}");
}

#[tokio::test]
async fn a_display_name_change_is_not_a_new_join() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    s.put(&format!("/_matrix/client/v3/rooms/{r}/state/a.madeup.test.state/"), Some(&alice), json!({"my_key": 1}))
        .await;
    let f = json!({"room": {"timeline": {"types": []}, "state": {"types": ["a.madeup.test.state"]}, "ephemeral": {"types": []}}, "presence": {"types": []}});
    let v = sync(&s, &alice, &format!("filter={}", enc(&f))).await;
    assert_eq!(events(&v["rooms"]["join"][&r], &["state"]).len(), 1, "{v}");
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{r}/state/m.room.member/{}", uid("alice")),
            Some(&alice),
            json!({"membership": "join", "displayname": "boris"}),
        )
        .await;
    assert_eq!(st, 200);
    msg(&s, &alice, &r, "hello").await;
    let v2 = sync(&s, &alice, &format!("filter={}&since={}", enc(&f), v["next_batch"].as_str().unwrap())).await;
    assert!(v2["rooms"]["join"].as_object().is_none_or(|o| o.is_empty()), "{v2}");
}

#[tokio::test]
async fn filters_in_every_form() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let me = uid("alice");
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let sent = msg(&s, &alice, &r, "Test message").await;
    // Inline JSON with a zero timeline limit: the room is still there, with its state.
    let inline = json!({"room": {"state": {"types": ["m.room.member"]}, "timeline": {"limit": 0}}});
    let v = sync(&s, &alice, &format!("filter={}", enc(&inline))).await;
    let block = &v["rooms"]["join"][&r];
    assert!(events(block, &["timeline"]).is_empty(), "{block}");
    let state = events(block, &["state"]);
    assert_eq!(state.len(), 1, "{block}");
    assert_eq!(state[0]["type"], "m.room.member");

    // Federation format.
    let fed =
        filter_id(&s, &alice, &me, json!({"event_format": "federation", "room": {"timeline": {"limit": 1}}})).await;
    let v = sync(&s, &alice, &format!("filter={fed}")).await;
    let block = &v["rooms"]["join"][&r];
    for key in ["timeline", "state", "ephemeral"] {
        assert!(block.get(key).is_some(), "{key} missing: {block}");
    }
    let ev = &block["timeline"]["events"][0];
    for key in [
        "event_id",
        "content",
        "room_id",
        "sender",
        "origin_server_ts",
        "type",
        "prev_events",
        "auth_events",
        "depth",
        "hashes",
        "signatures",
    ] {
        assert!(ev.get(key).is_some(), "{key} missing from a federation-format event: {ev}");
    }
    assert_eq!((ev["event_id"].as_str(), ev["content"]["body"].as_str()), (Some(sent.as_str()), Some("Test message")));

    // Lazy-loading flags are booleans, nothing else; malformed filters are refused.
    for bad in [
        json!({"room": {"state": {"lazy_load_members": "true"}}}),
        json!({"room": {"state": {"lazy_load_members": 1}}}),
        json!({"room": {"state": {"include_redundant_members": "true"}}}),
        json!({"room": {"state": {"include_redundant_members": 1}}}),
        json!({"presence": "nope"}),
        json!({"room": {"timeline": []}}),
        json!({"room": {"rooms": "!a:b"}}),
        json!({"room": {"timeline": {"types": [0]}}}),
        json!({"room": {"rooms": ["not_a_room_id"]}}),
        json!({"room": {"timeline": {"senders": ["not_a_sender_id"]}}}),
    ] {
        let (st, v) = s.post(&format!("/_matrix/client/v3/user/{me}/filter"), Some(&alice), bad.clone()).await;
        assert_eq!(st, 400, "{bad} -> {v}");
    }
    assert_err(
        &s.get(&format!("/_matrix/client/v3/sync?filter={}", common::urlencode("{not json")), Some(&alice)).await,
        400,
        "M_NOT_JSON",
    );
}

#[tokio::test]
async fn lazy_loaded_members_follow_the_timeline_across_syncs() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let charlie = s.user("charlie").await;
    let me = uid("alice");
    let r = room(&s, &alice, json!({"preset": "public_chat", "name": "Named"})).await;
    join(&s, &bob, &r).await;
    join(&s, &charlie, &r).await;
    for i in 0..10 {
        msg(&s, &bob, &r, &format!("bob {i}")).await;
    }
    let ll =
        filter_id(&s, &alice, &me, json!({"room": {"state": {"lazy_load_members": true}, "timeline": {"limit": 10}}}))
            .await;
    let v = sync(&s, &alice, &format!("filter={ll}")).await;
    let block = &v["rooms"]["join"][&r];
    assert_eq!(
        members(&events(block, &["state"])),
        [(uid("alice"), "join".into()), (uid("bob"), "join".into())],
        "{block}"
    );
    // Charlie speaks: his member event comes with it, though he joined before `since`.
    msg(&s, &charlie, &r, "charlie").await;
    let v2 = sync(&s, &alice, &format!("filter={ll}&since={}", v["next_batch"].as_str().unwrap())).await;
    assert_eq!(members(&events(&v2["rooms"]["join"][&r], &["state"])), [(uid("charlie"), "join".into())], "{v2}");
    // Not again for his next message, unless redundant members are asked for.
    msg(&s, &charlie, &r, "charlie again").await;
    msg(&s, &bob, &r, "bob again").await;
    let v3 = sync(&s, &alice, &format!("filter={ll}&since={}", v2["next_batch"].as_str().unwrap())).await;
    assert!(members(&events(&v3["rooms"]["join"][&r], &["state"])).is_empty(), "{v3}");
    let redundant = filter_id(
        &s,
        &alice,
        &me,
        json!({"room": {"state": {"lazy_load_members": true, "include_redundant_members": true}, "timeline": {"limit": 10}}}),
    )
    .await;
    msg(&s, &charlie, &r, "charlie third").await;
    msg(&s, &bob, &r, "bob third").await;
    let v4 = sync(&s, &alice, &format!("filter={redundant}&since={}", v3["next_batch"].as_str().unwrap())).await;
    assert_eq!(
        members(&events(&v4["rooms"]["join"][&r], &["state"])),
        [(uid("bob"), "join".into()), (uid("charlie"), "join".into())],
        "{v4}"
    );
}

#[tokio::test]
async fn the_room_summary_names_heroes_only_for_unnamed_rooms() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let ll = json!({"room": {"state": {"lazy_load_members": true}}});
    let unnamed = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let named = room(&s, &alice, json!({"preset": "public_chat", "name": "A name"})).await;
    let mut names = Vec::new();
    for n in ["zed", "bob", "charlie", "dan", "erin", "fay"] {
        let t = s.user(n).await;
        join(&s, &t, &unnamed).await;
        join(&s, &t, &named).await;
        names.push(uid(n));
    }
    // The timeline (ten events) holds only Alice's messages: the heroes' member events must come
    // in the state anyway, and only theirs besides her own.
    for i in 0..12 {
        msg(&s, &alice, &unnamed, &format!("m{i}")).await;
    }
    let v = sync(&s, &alice, &format!("filter={}", enc(&ll))).await;
    // The first five to join (by stream order, not by user ID: "zed" comes first).
    assert_eq!(
        v["rooms"]["join"][&unnamed]["summary"],
        json!({"m.joined_member_count": 7, "m.invited_member_count": 0, "m.heroes": names[..5]}),
        "{v}"
    );
    let mut state_members: Vec<String> = events(&v["rooms"]["join"][&unnamed], &["state"])
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .map(|e| e["state_key"].as_str().unwrap().to_owned())
        .collect();
    state_members.sort();
    let mut want: Vec<String> = names[..5].iter().cloned().chain([uid("alice")]).collect();
    want.sort();
    assert_eq!(state_members, want, "{v}");
    assert_eq!(
        v["rooms"]["join"][&named]["summary"],
        json!({"m.joined_member_count": 7, "m.invited_member_count": 0}),
        "{v}"
    );
}

/// Heroes answer the name the client shows, the one at the end of the timeline: a room named in
/// its timeline needs none (nor their member events with lazy loading), one whose name was
/// taken away there does.
#[tokio::test]
async fn heroes_follow_the_name_at_the_end_of_the_timeline() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let ll = json!({"room": {"state": {"lazy_load_members": true}}});
    let named_late = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let unnamed_late = room(&s, &alice, json!({"preset": "public_chat", "name": "Old name"})).await;
    for r in [&named_late, &unnamed_late] {
        join(&s, &bob, r).await;
        for i in 0..12 {
            msg(&s, &alice, r, &format!("m{i}")).await;
        }
    }
    send_state(&s, &alice, &named_late, "m.room.name", json!({"name": "New name"})).await;
    send_state(&s, &alice, &unnamed_late, "m.room.name", json!({})).await;
    let v = sync(&s, &alice, &format!("filter={}", enc(&ll))).await;
    let state_members = |r: &str| -> Vec<String> {
        let mut m: Vec<String> =
            members(&events(&v["rooms"]["join"][r], &["state"])).into_iter().map(|(u, _)| u).collect();
        m.sort();
        m
    };
    assert_eq!(
        v["rooms"]["join"][&named_late]["summary"],
        json!({"m.joined_member_count": 2, "m.invited_member_count": 0}),
        "{v}"
    );
    assert_eq!(state_members(&named_late), [uid("alice")], "{v}");
    assert_eq!(
        v["rooms"]["join"][&unnamed_late]["summary"],
        json!({"m.joined_member_count": 2, "m.invited_member_count": 0, "m.heroes": [uid("bob")]}),
        "{v}"
    );
    assert_eq!(state_members(&unnamed_late), [uid("alice"), uid("bob")], "{v}");
}

/// With lazy-loaded members, a member who becomes a hero in an incremental sync (another left)
/// comes with their member event, which the device never had; heroes it had do not come again.
#[tokio::test]
async fn a_new_hero_comes_with_their_member_event_in_an_incremental_sync() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let ll = json!({"room": {"state": {"lazy_load_members": true}}});
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let mut tokens = Vec::new();
    for n in ["h1", "h2", "h3", "h4", "h5", "h6"] {
        let t = s.user(n).await;
        join(&s, &t, &r).await;
        tokens.push(t);
    }
    for i in 0..12 {
        msg(&s, &alice, &r, &format!("m{i}")).await;
    }
    let v = sync(&s, &alice, &format!("filter={}", enc(&ll))).await;
    let heroes: Vec<String> = ["h1", "h2", "h3", "h4", "h5"].iter().map(|n| uid(n)).collect();
    assert_eq!(v["rooms"]["join"][&r]["summary"]["m.heroes"], json!(heroes), "{v}");
    let since = v["next_batch"].as_str().unwrap().to_owned();
    let (st, body) = s.post(&format!("/_matrix/client/v3/rooms/{r}/leave"), Some(&tokens[0]), json!({})).await;
    assert_eq!(st, 200, "{body}");
    let v = sync(&s, &alice, &format!("filter={}&since={since}", enc(&ll))).await;
    let block = &v["rooms"]["join"][&r];
    let heroes: Vec<String> = ["h2", "h3", "h4", "h5", "h6"].iter().map(|n| uid(n)).collect();
    assert_eq!(block["summary"]["m.heroes"], json!(heroes), "{v}");
    assert_eq!(block["summary"]["m.joined_member_count"], 6, "{v}");
    // h6's member event (new to the device) in the state; h1's leave in the timeline.
    assert_eq!(members(&events(block, &["state"])), [(uid("h6"), "join".into())], "{v}");
    assert_eq!(members(&events(block, &["timeline"])), [(uid("h1"), "leave".into())], "{v}");
}

#[tokio::test]
async fn own_presence_and_set_presence_offline() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let f = json!({"presence": {"types": ["m.presence"]}});
    // Syncing with set_presence=offline leaves a new user offline (or says nothing).
    let v = sync(&s, &alice, &format!("set_presence=offline&filter={}", enc(&f))).await;
    assert!(events(&v, &["presence"]).iter().all(|e| e["content"]["presence"] == "offline"), "{v}");
    // An ordinary sync makes them online, and they see it.
    sync(&s, &alice, "").await;
    let v = sync(&s, &alice, &format!("set_presence=offline&filter={}", enc(&f))).await;
    let mine: Vec<&Value> =
        events(&v, &["presence"]).into_iter().filter(|e| e["sender"] == uid("alice").as_str()).collect();
    assert_eq!(mine.len(), 1, "{v}");
    assert_eq!(mine[0]["content"]["presence"], "online", "set_presence=offline does not set anything: {v}");
}

/// A room with `joined` history: someone who left and came back sees, in the rejoined room's
/// timeline, the state that changed while they were away (its current state), though not the
/// messages; and a first join shows nothing from before it.
#[tokio::test]
async fn private_history_shows_the_joiner_only_what_they_may_see_and_the_current_state() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let r = room(
        &s,
        &alice,
        json!({"preset": "public_chat", "initial_state": [
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}]}),
    )
    .await;
    msg(&s, &alice, &r, "before bob").await;
    join(&s, &bob, &r).await;
    let v = sync(&s, &bob, "").await;
    let bodies: Vec<&str> =
        events(&v["rooms"]["join"][&r], &["timeline"]).iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert!(bodies.is_empty(), "nothing from before Bob joined: {v}");
    let since = v["next_batch"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{r}/leave"), Some(&bob), json!({})).await.0, 200);
    msg(&s, &alice, &r, "while bob was away").await;
    join(&s, &carol, &r).await;
    for i in 0..5 {
        msg(&s, &alice, &r, &format!("more {i}")).await;
    }
    join(&s, &bob, &r).await;
    let v = sync(&s, &bob, &format!("since={since}")).await;
    let tl = events(&v["rooms"]["join"][&r], &["timeline"]);
    assert!(
        tl.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == uid("carol").as_str()),
        "Carol's join, current state, is in the timeline: {v}"
    );
    assert!(!v.to_string().contains("while bob was away"), "{v}");
}

/// A user in more rooms than the event cache holds events for: the initial sync reads past the
/// cache and still shows every room whole, and an incremental sync sends exactly the rooms where
/// something happened since (an event, a receipt, typing, the user's room account data), and
/// the others not.
#[tokio::test]
async fn a_user_in_many_rooms_gets_them_all_first_and_then_only_the_rooms_that_moved() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (me, bob_id) = (uid("alice"), uid("bob"));
    let mut rooms = Vec::new();
    let mut last = Vec::new();
    // A redacted message, and one of alice's own (sent from the device that syncs), in rooms
    // of either chunk of timelines the initial sync reads.
    let mut redacted = Vec::new();
    let mut own = Vec::new();
    for i in 0..30 {
        let r = room(&s, &alice, json!({"preset": "public_chat", "name": format!("room {i}")})).await;
        join(&s, &bob, &r).await;
        if i % 13 == 0 {
            let gone = msg(&s, &bob, &r, "said and taken back").await;
            let (st, v) = s
                .put(&format!("/_matrix/client/v3/rooms/{r}/redact/{gone}/r{i}"), Some(&bob), json!({"reason": "oops"}))
                .await;
            assert_eq!(st, 200, "{v}");
            redacted.push((i, gone));
        }
        if i % 7 == 1 {
            own.push((i, msg(&s, &alice, &r, "my own").await));
        }
        last.push(msg(&s, &bob, &r, &format!("hello {i}")).await);
        rooms.push(r);
    }
    // Twice: the second reads what the first left in the cache (as little as it could).
    for _ in 0..2 {
        let v = sync(&s, &alice, "").await;
        let join = v["rooms"]["join"].as_object().unwrap();
        assert_eq!(join.len(), 30, "{}", v["rooms"]);
        let find = |i: usize, id: &str| -> Value {
            let timeline = events(&join[rooms[i].as_str()], &["timeline"]);
            timeline.into_iter().find(|e| e["event_id"] == id).cloned().unwrap_or_else(|| panic!("{id} in room {i}"))
        };
        for (i, id) in &redacted {
            let e = find(*i, id);
            assert_eq!(e["content"], json!({}), "the redacted message keeps no content: {e}");
            assert!(e["unsigned"]["redacted_because"].is_object(), "{e}");
        }
        for (i, id) in &own {
            let e = find(*i, id);
            assert_eq!(e["content"]["body"], "my own");
            assert!(e["unsigned"]["transaction_id"].is_string(), "the sender's device sees its transaction ID: {e}");
        }
        for (i, r) in rooms.iter().enumerate() {
            let timeline = events(&join[r.as_str()], &["timeline"]);
            assert_eq!(timeline.last().unwrap()["event_id"], last[i].as_str(), "room {i}");
            let everything: Vec<&Value> = timeline.into_iter().chain(events(&join[r.as_str()], &["state"])).collect();
            let name = everything.iter().find(|e| e["type"] == "m.room.name").unwrap();
            assert_eq!(name["content"]["name"], format!("room {i}"));
            assert_eq!(members(&everything), [(me.clone(), "join".to_owned()), (bob_id.clone(), "join".to_owned())]);
        }
    }
    let mut since = sync(&s, &alice, "").await["next_batch"].as_str().unwrap().to_owned();
    let moved_rooms = |v: &Value| -> Vec<String> {
        let mut r: Vec<String> = v["rooms"]["join"].as_object().unwrap().keys().cloned().collect();
        r.sort();
        r
    };
    let sorted = |mut r: Vec<&String>| -> Vec<String> {
        r.sort();
        r.into_iter().cloned().collect()
    };

    // Nothing happened: no rooms.
    let v = sync(&s, &alice, &format!("since={since}")).await;
    assert!(moved_rooms(&v).is_empty(), "{}", v["rooms"]);
    since = v["next_batch"].as_str().unwrap().to_owned();

    // A message in room 3 and another in room 17.
    let m3 = msg(&s, &bob, &rooms[3], "news in 3").await;
    msg(&s, &bob, &rooms[17], "news in 17").await;
    let v = sync(&s, &alice, &format!("since={since}")).await;
    assert_eq!(moved_rooms(&v), sorted(vec![&rooms[3], &rooms[17]]), "{}", v["rooms"]);
    assert_eq!(events(&v["rooms"]["join"][&rooms[3]], &["timeline"])[0]["event_id"], m3.as_str());
    since = v["next_batch"].as_str().unwrap().to_owned();

    // Bob reads room 5 (a receipt), types in room 8; alice tags room 11 (room account data).
    let (st, body) = s
        .post(&format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{}", rooms[5], last[5]), Some(&bob), json!({}))
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{}/typing/{bob_id}", rooms[8]),
            Some(&bob),
            json!({"typing": true, "timeout": 30000}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) =
        s.put(&format!("/_matrix/client/v3/user/{me}/rooms/{}/tags/u.work", rooms[11]), Some(&alice), json!({})).await;
    assert_eq!(st, 200, "{body}");
    let v = sync(&s, &alice, &format!("since={since}")).await;
    assert_eq!(moved_rooms(&v), sorted(vec![&rooms[5], &rooms[8], &rooms[11]]), "{}", v["rooms"]);
    let join = &v["rooms"]["join"];
    assert_eq!(events(&join[&rooms[5]], &["ephemeral"])[0]["type"], "m.receipt");
    assert_eq!(events(&join[&rooms[8]], &["ephemeral"])[0]["content"]["user_ids"], json!([bob_id]));
    assert_eq!(events(&join[&rooms[11]], &["account_data"])[0]["type"], "m.tag");
    for r in [&rooms[5], &rooms[8], &rooms[11]] {
        assert!(events(&join[r.as_str()], &["timeline"]).is_empty(), "{}", join[r.as_str()]);
    }
    since = v["next_batch"].as_str().unwrap().to_owned();

    // And then quiet again.
    let v = sync(&s, &alice, &format!("since={since}")).await;
    assert!(moved_rooms(&v).is_empty(), "{}", v["rooms"]);
}

/// `unsigned.age` moves between two answers; everything else must not.
fn without_age(mut v: Value) -> Value {
    match &mut v {
        Value::Object(m) => {
            m.remove("age");
            for x in m.values_mut() {
                *x = without_age(x.take());
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = without_age(x.take());
            }
        }
        _ => {}
    }
    v
}

/// An initial sync whose timeline pages are more than the event cache holds reads them past the
/// cache, with their JSON in one query; it must answer as the same sync read through the cache:
/// messages of two senders, state, a redacted message and its redaction, the summary.
#[tokio::test]
async fn an_initial_sync_read_past_the_event_cache_answers_as_one_read_through_it() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    join(&s, &bob, &r).await;
    for i in 0..6 {
        msg(&s, &alice, &r, &format!("from alice {i}")).await;
        msg(&s, &bob, &r, &format!("from bob {i}")).await;
    }
    let gone = msg(&s, &bob, &r, "to be redacted").await;
    let (st, v) = s.put(&format!("/_matrix/client/v3/rooms/{r}/redact/{gone}/r1"), Some(&bob), json!({})).await;
    assert_eq!(st, 200, "{v}");
    send(&s, &alice, &r, "m.room.topic", json!({"topic": "read twice"})).await;
    // Every event of the room fits either timeline: 2 x 301 events is more than half the cache
    // (a scan), 2 x 41 is not.
    let through = sync(&s, &alice, &format!("filter={}", enc(&json!({"room": {"timeline": {"limit": 40}}})))).await;
    let past = sync(&s, &alice, &format!("filter={}", enc(&json!({"room": {"timeline": {"limit": 300}}})))).await;
    let (through, past) = (&through["rooms"]["join"][&r], &past["rooms"]["join"][&r]);
    let timeline = events(through, &["timeline"]);
    assert!(timeline.len() > 20, "{through}");
    assert_eq!(through["timeline"]["limited"], false, "{through}");
    assert!(timeline.iter().any(|e| e["event_id"] == gone.as_str() && e["content"] == json!({})), "{through}");
    assert_eq!(without_age(past.clone()), without_age(through.clone()));
}
