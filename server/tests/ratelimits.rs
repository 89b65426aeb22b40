//! Synapse's rate limits (`rc_message`, `rc_room_creation`, `rc_joins`, `rc_invites`,
//! `rc_media_create`, `rc_presence`, `rc_reports`, `rc_key_requests`, `rc_user_directory`,
//! `rc_profile`) as a client meets them: 429 `M_LIMIT_EXCEEDED` with how long to wait, per user,
//! and lifted for one user through Synapse's `override_ratelimit` admin API.

mod common;

use common::{SERVER_NAME, TestServer, assert_err};
use hearth_server::config::RateLimit;
use serde_json::{Value, json};

/// `burst` actions, then nothing for a very long time.
fn tight(burst: f64) -> RateLimit {
    RateLimit { per_second: 0.0001, burst_count: burst }
}

async fn room(s: &TestServer, token: &str, body: Value) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), body).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

async fn send(s: &TestServer, token: &str, room: &str, txn: &str) -> (reqwest::StatusCode, Value) {
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
        Some(token),
        json!({"msgtype": "m.text", "body": txn}),
    )
    .await
}

/// A 429 says how long to wait, as the spec's M_LIMIT_EXCEEDED does.
fn assert_limited(got: &(reqwest::StatusCode, Value)) {
    assert_err(got, 429, "M_LIMIT_EXCEEDED");
    assert!(got.1["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0), "{}", got.1);
}

#[tokio::test]
async fn events_are_limited_per_user_and_a_retried_transaction_is_not_another_event() {
    let s = TestServer::start_with(|c| c.rc_message = tight(4.0)).await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    // Creating the room is one event of Alice's (as in Synapse); the room's own initial events
    // are not counted.
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let first = send(&s, &alice, &r, "t1").await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(send(&s, &alice, &r, "t2").await.0, 200);
    let (st, _) =
        s.put(&format!("/_matrix/client/v3/rooms/{r}/state/m.room.topic/"), Some(&alice), json!({"topic": "x"})).await;
    assert_eq!(st, 200);
    assert_limited(&send(&s, &alice, &r, "t3").await);
    // A retry of a send that went through is answered with the same event, not refused.
    let again = send(&s, &alice, &r, "t1").await;
    assert_eq!((again.0.as_u16(), &again.1["event_id"]), (200, &first.1["event_id"]), "{}", again.1);
    // State, membership and redactions are events too.
    let topic =
        s.put(&format!("/_matrix/client/v3/rooms/{r}/state/m.room.topic/"), Some(&alice), json!({"topic": "y"})).await;
    assert_limited(&topic);
    let redact = s
        .put(
            &format!("/_matrix/client/v3/rooms/{r}/redact/{}/r1", first.1["event_id"].as_str().unwrap()),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_limited(&redact);
    assert_limited(&s.post(&format!("/_matrix/client/v3/rooms/{r}/leave"), Some(&alice), json!({})).await);
    // The limit is Alice's: Bob joins and talks.
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await.0, 200);
    assert_eq!(send(&s, &bob, &r, "b1").await.0, 200);
    // Nothing Alice was refused reached the room.
    let (_, msgs) = s.get(&format!("/_matrix/client/v3/rooms/{r}/messages?dir=b&limit=50"), Some(&bob)).await;
    let bodies: Vec<&str> =
        msgs["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert_eq!(bodies, ["b1", "t2", "t1"], "{msgs}");
}

#[tokio::test]
async fn room_creation_joins_and_invites_have_limits_of_their_own() {
    let s = TestServer::start_with(|c| {
        c.rc_room_creation = tight(3.0);
        c.rc_joins.local = tight(1.0);
        c.rc_invites.per_issuer = tight(2.0);
        c.rc_invites.per_room = RateLimit { per_second: 1000.0, burst_count: 3.0 };
    })
    .await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    for name in ["carol", "dave", "erin", "frank"] {
        s.user(name).await;
    }
    let public = json!({"preset": "public_chat"});
    // More invites at once than a room may get is refused before anything is created.
    let crowd: Vec<String> = ["bob", "carol", "dave", "erin"].iter().map(|u| format!("@{u}:{SERVER_NAME}")).collect();
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"invite": crowd})).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (400, Some("M_UNKNOWN")), "{v}");
    let (_, rooms) = s.get("/_matrix/client/v3/joined_rooms", Some(&alice)).await;
    assert_eq!(rooms["joined_rooms"], json!([]), "nothing was created");

    let r1 = room(&s, &alice, public.clone()).await;
    let r2 = room(&s, &alice, public.clone()).await;
    let r3 = room(&s, &alice, public.clone()).await;
    assert_limited(&s.post("/_matrix/client/v3/createRoom", Some(&alice), public.clone()).await);
    // Upgrading makes a room too.
    let up =
        s.post(&format!("/_matrix/client/v3/rooms/{r3}/upgrade"), Some(&alice), json!({"new_version": "11"})).await;
    assert_limited(&up);

    // One join for Bob; joining a room he is in again is not another join.
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{r1}/join"), Some(&bob), json!({})).await.0, 200);
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{r1}"), Some(&bob), json!({})).await.0, 200);
    assert_limited(&s.post(&format!("/_matrix/client/v3/rooms/{r2}/join"), Some(&bob), json!({})).await);

    // Two invites from Alice, then none.
    for u in ["carol", "dave"] {
        let (st, v) = s
            .post(
                &format!("/_matrix/client/v3/rooms/{r2}/invite"),
                Some(&alice),
                json!({"user_id": format!("@{u}:{SERVER_NAME}")}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let third = s
        .post(
            &format!("/_matrix/client/v3/rooms/{r2}/invite"),
            Some(&alice),
            json!({"user_id": format!("@erin:{SERVER_NAME}")}),
        )
        .await;
    assert_limited(&third);
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{r2}/members"), Some(&alice)).await;
    assert!(!members.to_string().contains("@erin:"), "the refused invite did not happen: {members}");
}

#[tokio::test]
async fn invites_to_one_person_are_limited_whoever_sends_them() {
    let s = TestServer::start_with(|c| c.rc_invites.per_user = tight(2.0)).await;
    let (alice, bob, carol) = (s.user("alice").await, s.user("bob").await, s.user("carol").await);
    let dave = format!("@dave:{SERVER_NAME}");
    s.user("dave").await;
    let ra = room(&s, &alice, json!({})).await;
    let rb = room(&s, &bob, json!({})).await;
    let rc = room(&s, &carol, json!({})).await;
    assert_eq!(
        s.post(&format!("/_matrix/client/v3/rooms/{ra}/invite"), Some(&alice), json!({"user_id": dave})).await.0,
        200
    );
    assert_eq!(
        s.post(&format!("/_matrix/client/v3/rooms/{rb}/invite"), Some(&bob), json!({"user_id": dave})).await.0,
        200
    );
    assert_limited(
        &s.post(&format!("/_matrix/client/v3/rooms/{rc}/invite"), Some(&carol), json!({"user_id": dave})).await,
    );
}

#[tokio::test]
async fn presence_reports_media_ids_searches_and_profiles_are_limited() {
    let s = TestServer::start_with(|c| {
        c.rc_presence.per_user = tight(1.0);
        c.rc_reports = tight(1.0);
        c.rc_media_create = tight(1.0);
        c.rc_user_directory = tight(1.0);
        c.rc_profile = tight(2.0);
    })
    .await;
    let alice = s.user("alice").await;
    s.user("bob").await;
    let me = format!("@alice:{SERVER_NAME}");
    let bob = format!("@bob:{SERVER_NAME}");
    let presence = format!("/_matrix/client/v3/presence/{me}/status");
    assert_eq!(s.put(&presence, Some(&alice), json!({"presence": "online"})).await.0, 200);
    assert_limited(&s.put(&presence, Some(&alice), json!({"presence": "unavailable"})).await);
    // A /sync asking for a presence change over the limit still syncs; the change is skipped.
    let (st, _) = s.get("/_matrix/client/v3/sync?timeout=0&set_presence=unavailable", Some(&alice)).await;
    assert_eq!(st, 200);
    let (_, p) = s.get(&presence, Some(&alice)).await;
    assert_eq!(p["presence"], "online", "{p}");

    let report = json!({"reason": "spam"});
    assert_eq!(s.post(&format!("/_matrix/client/v3/users/{bob}/report"), Some(&alice), report.clone()).await.0, 200);
    assert_limited(&s.post(&format!("/_matrix/client/v3/users/{bob}/report"), Some(&alice), report).await);

    assert_eq!(s.post("/_matrix/media/v1/create", Some(&alice), json!({})).await.0, 200);
    assert_limited(&s.post("/_matrix/media/v1/create", Some(&alice), json!({})).await);

    let search = json!({"search_term": "bob"});
    assert_eq!(s.post("/_matrix/client/v3/user_directory/search", Some(&alice), search.clone()).await.0, 200);
    assert_limited(&s.post("/_matrix/client/v3/user_directory/search", Some(&alice), search).await);

    // Profiles: per user when signed in, per client address when not.
    let profile = format!("/_matrix/client/v3/profile/{bob}");
    assert_eq!(s.get(&profile, Some(&alice)).await.0, 200);
    assert_eq!(s.get(&profile, Some(&alice)).await.0, 200);
    assert_limited(&s.get(&profile, Some(&alice)).await);
}

/// A device flooding another user with key requests: the ones over the limit are dropped (the
/// sender is told nothing, as in Synapse); requests to one's own devices are not counted.
#[tokio::test]
async fn key_requests_over_the_limit_are_dropped() {
    let s = TestServer::start_with(|c| c.rc_key_requests = tight(2.0)).await;
    let alice = s.user("alice").await;
    let bob = s.register("bob", "password1").await;
    let (bob_token, bob_device) = (bob["access_token"].as_str().unwrap(), bob["device_id"].as_str().unwrap());
    let to_bob = |n: u32| json!({"messages": {format!("@bob:{SERVER_NAME}"): {bob_device: {"action": "request", "request_id": n.to_string()}}}});
    for n in 0..4 {
        let (st, v) =
            s.put(&format!("/_matrix/client/v3/sendToDevice/m.room_key_request/k{n}"), Some(&alice), to_bob(n)).await;
        assert_eq!(st, 200, "{v}");
    }
    // Other to-device messages are not key requests.
    let (st, _) = s.put("/_matrix/client/v3/sendToDevice/m.dummy/d1", Some(&alice), to_bob(9)).await;
    assert_eq!(st, 200);
    let (_, sync) = s.get("/_matrix/client/v3/sync?timeout=0", Some(bob_token)).await;
    let got: Vec<(&str, &str)> = sync["to_device"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["content"]["request_id"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [("m.room_key_request", "0"), ("m.room_key_request", "1"), ("m.dummy", "9")], "{sync}");
}

/// Synapse's admin API lifts a user's limits (a bot, a bridge) or gives them their own message
/// budget; the override survives a restart, and removing it brings the limits back.
#[tokio::test]
async fn an_admin_lifts_one_users_limits_and_it_lasts() {
    let mut s = TestServer::start_with(|c| {
        c.rc_message = tight(1.0);
        c.rc_room_creation = tight(1.0);
    })
    .await;
    let (_, admin) = s.shared_secret_register("root", "password1", true).await;
    let admin = admin["access_token"].as_str().unwrap().to_owned();
    let bot = s.user("bot").await;
    let path = format!("/_synapse/admin/v1/users/@bot:{SERVER_NAME}/override_ratelimit");

    assert_err(&s.get(&path, Some(&bot)).await, 403, "M_FORBIDDEN");
    assert_err(
        &s.get(&format!("/_synapse/admin/v1/users/@nobody:{SERVER_NAME}/override_ratelimit"), Some(&admin)).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.post(&path, Some(&admin), json!({"messages_per_second": -1})).await, 400, "M_INVALID_PARAM");
    assert_err(&s.post(&path, Some(&admin), json!({"burst_count": 1.5})).await, 400, "M_INVALID_PARAM");
    assert_eq!(s.get(&path, Some(&admin)).await.1, json!({}));

    let (st, v) = s.post(&path, Some(&admin), json!({})).await;
    assert_eq!((st.as_u16(), &v), (200, &json!({"messages_per_second": 0, "burst_count": 0})));

    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let mut config = common::test_config(dir.path());
    config.rc_message = tight(1.0);
    config.rc_room_creation = tight(1.0);
    let s = TestServer::start_in(dir, config).await;
    assert_eq!(s.get(&path, Some(&admin)).await.1, json!({"messages_per_second": 0, "burst_count": 0}));
    let r = room(&s, &bot, json!({})).await;
    room(&s, &bot, json!({})).await;
    for n in 0..5 {
        assert_eq!(send(&s, &bot, &r, &format!("m{n}")).await.0, 200);
    }

    // Its own budget: three messages.
    let (st, v) = s.post(&path, Some(&admin), json!({"messages_per_second": 1, "burst_count": 3})).await;
    assert_eq!((st.as_u16(), &v), (200, &json!({"messages_per_second": 1, "burst_count": 3})));
    for n in 0..3 {
        assert_eq!(send(&s, &bot, &r, &format!("own{n}")).await.0, 200);
    }
    assert_limited(&send(&s, &bot, &r, "own3").await);

    assert_eq!(s.delete_call(&path, Some(&admin)).await, (reqwest::StatusCode::OK, json!({})));
    assert_eq!(s.get(&path, Some(&admin)).await.1, json!({}));
    assert_eq!(send(&s, &bot, &r, "after1").await.0, 200);
    assert_limited(&send(&s, &bot, &r, "after2").await);
}
