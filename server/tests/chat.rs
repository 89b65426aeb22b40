//! Everyday chat features over real HTTP: typing, receipts, read markers, redactions, profiles,
//! account data, push rules, the user and room directories.

mod common;

use common::{TestServer, assert_err};
use reqwest::Method;
use serde_json::{Value, json};

async fn room_with(s: &TestServer, owner: &str, guest: &str, preset: &str) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(owner), json!({"preset": preset})).await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(guest), json!({})).await;
    assert_eq!(st, 200, "{v}");
    room
}

async fn send(s: &TestServer, token: &str, room: &str, txn: &str, body: &str) -> String {
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
            Some(token),
            json!({"msgtype": "m.text", "body": body}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    v["event_id"].as_str().unwrap().to_owned()
}

async fn sync(s: &TestServer, token: &str, since: Option<&str>) -> Value {
    let path = match since {
        Some(t) => format!("/_matrix/client/v3/sync?since={t}&timeout=0"),
        None => "/_matrix/client/v3/sync".to_owned(),
    };
    let (st, v) = s.get(&path, Some(token)).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn ephemeral<'a>(sync: &'a Value, room: &str, kind: &str) -> Option<&'a Value> {
    sync["rooms"]["join"][room]["ephemeral"]["events"].as_array()?.iter().find(|e| e["type"] == kind)
}

#[tokio::test]
async fn typing_shows_up_in_sync_and_expires() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room_with(&s, &alice, &bob, "public_chat").await;
    let since = sync(&s, &bob, None).await["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/typing/@alice:hearth.test"),
            Some(&alice),
            json!({"typing": true, "timeout": 1500}),
        )
        .await;
    assert_eq!(st, 200);
    let v = sync(&s, &bob, Some(&since)).await;
    let typing = ephemeral(&v, &room, "m.typing").expect("typing event");
    assert_eq!(typing["content"]["user_ids"], json!(["@alice:hearth.test"]));
    // After the timeout a long-poll wakes with the empty list.
    let next = v["next_batch"].as_str().unwrap().to_owned();
    let (_, v) = s.get(&format!("/_matrix/client/v3/sync?since={next}&timeout=10000"), Some(&bob)).await;
    assert_eq!(ephemeral(&v, &room, "m.typing").expect("typing stopped")["content"]["user_ids"], json!([]));
    // Nobody can type for someone else.
    let r = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/typing/@alice:hearth.test"),
            Some(&bob),
            json!({"typing": true, "timeout": 1000}),
        )
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn read_receipts_and_markers() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room_with(&s, &alice, &bob, "public_chat").await;
    let ev = send(&s, &alice, &room, "r1", "read me").await;
    let since = sync(&s, &alice, None).await["next_batch"].as_str().unwrap().to_owned();

    let (st, _) = s.post(&format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{ev}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let (st, _) =
        s.post(&format!("/_matrix/client/v3/rooms/{room}/receipt/m.read.private/{ev}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let v = sync(&s, &alice, Some(&since)).await;
    let receipt = ephemeral(&v, &room, "m.receipt").expect("receipt");
    assert!(receipt["content"][&ev]["m.read"]["@bob:hearth.test"]["ts"].as_i64().unwrap() > 0);
    assert!(receipt["content"][&ev].get("m.read.private").is_none(), "private receipts stay private");
    // Bob sees his own private receipt.
    let mine = sync(&s, &bob, None).await;
    assert!(
        ephemeral(&mine, &room, "m.receipt").unwrap()["content"][&ev]["m.read.private"]["@bob:hearth.test"].is_object()
    );

    // Read markers: fully_read becomes room account data.
    let (st, _) = s
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/read_markers"),
            Some(&bob),
            json!({"m.fully_read": ev, "m.read": ev}),
        )
        .await;
    assert_eq!(st, 200);
    let v = sync(&s, &bob, None).await;
    let data = v["rooms"]["join"][&room]["account_data"]["events"].as_array().unwrap();
    assert!(data.iter().any(|e| e["type"] == "m.fully_read" && e["content"]["event_id"] == ev.as_str()), "{data:?}");
    let r = s.post(&format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/$nope"), Some(&bob), json!({})).await;
    assert_err(&r, 404, "M_NOT_FOUND");
}

#[tokio::test]
async fn redactions_hide_content_and_are_limited_by_power() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let room = room_with(&s, &alice, &bob, "public_chat").await;
    let a1 = send(&s, &alice, &room, "a1", "alice's secret").await;
    let b1 = send(&s, &bob, &room, "b1", "bob's oops").await;

    // Bob (power 0) cannot redact alice's message, but can redact his own.
    let r = s.put(&format!("/_matrix/client/v3/rooms/{room}/redact/{a1}/x1"), Some(&bob), json!({})).await;
    assert_err(&r, 403, "M_FORBIDDEN");
    let (st, red) =
        s.put(&format!("/_matrix/client/v3/rooms/{room}/redact/{b1}/x2"), Some(&bob), json!({"reason": "typo"})).await;
    assert_eq!(st, 200, "{red}");
    // Alice (creator) can redact anyone's.
    let (st, _) = s.put(&format!("/_matrix/client/v3/rooms/{room}/redact/{a1}/x3"), Some(&alice), json!({})).await;
    assert_eq!(st, 200);

    let (_, ev) = s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{b1}"), Some(&alice)).await;
    assert_eq!(ev["content"], json!({}), "content is gone: {ev}");
    assert_eq!(ev["unsigned"]["redacted_because"]["event_id"], red["event_id"]);
    assert_eq!(ev["unsigned"]["redacted_because"]["content"]["reason"], "typo");
    let v = sync(&s, &alice, None).await;
    let tl = v["rooms"]["join"][&room]["timeline"]["events"].as_array().unwrap();
    assert!(
        tl.iter().all(|e| e["content"]["body"] != "alice's secret" && e["content"]["body"] != "bob's oops"),
        "{tl:?}"
    );
    let redaction = tl.iter().find(|e| e["event_id"] == red["event_id"]).unwrap();
    assert_eq!(redaction["redacts"], b1.as_str());
}

#[tokio::test]
async fn display_name_changes_reach_every_joined_room() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r1 = room_with(&s, &alice, &bob, "public_chat").await;
    let r2 = room_with(&s, &alice, &bob, "public_chat").await;
    let (st, _) = s
        .put("/_matrix/client/v3/profile/@bob:hearth.test/displayname", Some(&bob), json!({"displayname": "Bobby"}))
        .await;
    assert_eq!(st, 200);
    let (_, p) = s.get("/_matrix/client/v3/profile/@bob:hearth.test", None).await;
    assert_eq!(p["displayname"], "Bobby");
    let (_, p) = s.get("/_matrix/client/v3/profile/@bob:hearth.test/displayname", Some(&alice)).await;
    assert_eq!(p["displayname"], "Bobby");
    for room in [&r1, &r2] {
        let (_, m) =
            s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@bob:hearth.test"), Some(&alice)).await;
        assert_eq!(m["displayname"], "Bobby", "{room}");
        assert_eq!(m["membership"], "join");
    }
    let (_, joined) = s.get(&format!("/_matrix/client/v3/rooms/{r1}/joined_members"), Some(&alice)).await;
    assert_eq!(joined["joined"]["@bob:hearth.test"]["display_name"], "Bobby");
    let r = s
        .put("/_matrix/client/v3/profile/@bob:hearth.test/displayname", Some(&alice), json!({"displayname": "Hacked"}))
        .await;
    assert_err(&r, 403, "M_FORBIDDEN");
    let r = s
        .put(
            "/_matrix/client/v3/profile/@bob:hearth.test/avatar_url",
            Some(&bob),
            json!({"avatar_url": "https://x/y.png"}),
        )
        .await;
    assert_err(&r, 400, "M_INVALID_PARAM");
    assert_err(&s.get("/_matrix/client/v3/profile/@nobody:hearth.test", None).await, 404, "M_NOT_FOUND");
}

#[tokio::test]
async fn account_data_syncs_to_other_devices() {
    let s = TestServer::start().await;
    let t1 = s.user("ann").await;
    let (_, l) = s.login("ann", "password1").await;
    let t2 = l["access_token"].as_str().unwrap().to_owned();
    let since = sync(&s, &t2, None).await["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s
        .put(
            "/_matrix/client/v3/user/@ann:hearth.test/account_data/m.direct",
            Some(&t1),
            json!({"@bob:hearth.test": ["!r:x"]}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, got) = s.get("/_matrix/client/v3/user/@ann:hearth.test/account_data/m.direct", Some(&t2)).await;
    assert_eq!(got["@bob:hearth.test"], json!(["!r:x"]));
    let (_, v) = s.get(&format!("/_matrix/client/v3/sync?since={since}&timeout=5000"), Some(&t2)).await;
    let events = v["account_data"]["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["type"] == "m.direct"), "{v}");
    // Someone else's account data is off limits; server-managed types cannot be set directly.
    let bob = s.user("bob").await;
    assert_err(
        &s.get("/_matrix/client/v3/user/@ann:hearth.test/account_data/m.direct", Some(&bob)).await,
        403,
        "M_FORBIDDEN",
    );
    let r = s.put("/_matrix/client/v3/user/@ann:hearth.test/account_data/m.push_rules", Some(&t1), json!({})).await;
    assert_eq!(r.0, 405, "{:?}", r.1);
    assert_err(
        &s.get("/_matrix/client/v3/user/@ann:hearth.test/account_data/m.unknown", Some(&t1)).await,
        404,
        "M_NOT_FOUND",
    );
}

#[tokio::test]
async fn push_rules_start_from_the_spec_defaults_and_can_be_changed() {
    let s = TestServer::start().await;
    let t = s.user("pat").await;
    let (st, v) = s.get("/_matrix/client/v3/pushrules/", Some(&t)).await;
    assert_eq!(st, 200);
    let overrides: Vec<&str> =
        v["global"]["override"].as_array().unwrap().iter().map(|r| r["rule_id"].as_str().unwrap()).collect();
    assert!(overrides.contains(&".m.rule.master") && overrides.contains(&".m.rule.is_user_mention"), "{overrides:?}");
    let (st, _) = s
        .put(
            "/_matrix/client/v3/pushrules/global/content/cake",
            Some(&t),
            json!({"pattern": "cake", "actions": ["notify"]}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, rule) = s.get("/_matrix/client/v3/pushrules/global/content/cake", Some(&t)).await;
    assert_eq!(rule["pattern"], "cake");
    let (st, _) = s
        .put("/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled", Some(&t), json!({"enabled": true}))
        .await;
    assert_eq!(st, 200);
    let (_, en) = s.get("/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled", Some(&t)).await;
    assert_eq!(en["enabled"], true);
    // The rules reach clients through account data too.
    let v = sync(&s, &t, None).await;
    assert!(v["account_data"]["events"].as_array().unwrap().iter().any(|e| e["type"] == "m.push_rules"));
    assert_eq!(s.call(Method::DELETE, "/_matrix/client/v3/pushrules/global/content/cake", Some(&t), None).await.0, 200);
    assert_err(&s.get("/_matrix/client/v3/pushrules/global/content/cake", Some(&t)).await, 404, "M_NOT_FOUND");
    let r = s.call(Method::DELETE, "/_matrix/client/v3/pushrules/global/override/.m.rule.master", Some(&t), None).await;
    assert_err(&r, 400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn directories_find_people_and_published_rooms() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let albert = s.user("albert").await;
    let alfred = s.user("alfred").await;
    let alma = s.user("alma").await;
    s.user("zed").await;
    // Albert shares a private room with Alice; Alma is in a public room; Alfred is only in a
    // private room of his own, and nobody else may find him (Synapse's default directory).
    let (_, shared) =
        s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"invite": ["@albert:hearth.test"]})).await;
    let shared = shared["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{shared}"), Some(&albert), json!({})).await;
    s.post("/_matrix/client/v3/createRoom", Some(&alfred), json!({})).await;
    s.post("/_matrix/client/v3/createRoom", Some(&alma), json!({"preset": "public_chat"})).await;
    let search = |who: &str, term: &str| {
        let body = json!({"search_term": term, "limit": 10});
        let who = who.to_owned();
        let s = &s;
        async move {
            let (_, v) = s.post("/_matrix/client/v3/user_directory/search", Some(&who), body).await;
            v["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["user_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search(&alice, "al").await, ["@albert:hearth.test", "@alma:hearth.test"]);
    assert_eq!(search(&alfred, "al").await, ["@alma:hearth.test"], "a stranger finds only people in public rooms");
    // Once Albert leaves the room he shared with Alice, she no longer finds him.
    s.post(&format!("/_matrix/client/v3/rooms/{shared}/leave"), Some(&albert), json!({})).await;
    assert_eq!(search(&alice, "al").await, ["@alma:hearth.test"]);
    let (_, v) = s
        .post("/_matrix/client/v3/user_directory/search", Some(&alice), json!({"search_term": "%", "limit": 10}))
        .await;
    assert!(v["results"].as_array().unwrap().is_empty(), "wildcards are literal");

    let (_, pubroom) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({"visibility": "public", "name": "Garden club", "topic": "roses"}),
        )
        .await;
    s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"name": "Private"})).await;
    // The directory is readable without logging in (spec: GET /publicRooms); only rooms their
    // admins chose to publish are listed.
    let (st, dir) = s.get("/_matrix/client/v3/publicRooms", None).await;
    assert_eq!(st, 200, "{dir}");
    let chunk = dir["chunk"].as_array().unwrap();
    assert_eq!(chunk.len(), 1);
    assert_eq!(chunk[0]["name"], "Garden club");
    assert_eq!(chunk[0]["num_joined_members"], 1);
    let (_, found) = s
        .post("/_matrix/client/v3/publicRooms", Some(&alice), json!({"filter": {"generic_search_term": "ROSE"}}))
        .await;
    assert_eq!(found["chunk"][0]["room_id"], pubroom["room_id"]);
    let (_, none) = s
        .post("/_matrix/client/v3/publicRooms", Some(&alice), json!({"filter": {"generic_search_term": "tulip"}}))
        .await;
    assert!(none["chunk"].as_array().unwrap().is_empty());
    let room = pubroom["room_id"].as_str().unwrap();
    let (_, vis) = s.get(&format!("/_matrix/client/v3/directory/list/room/{room}"), None).await;
    assert_eq!(vis["visibility"], "public");
    assert_eq!(
        s.put(
            &format!("/_matrix/client/v3/directory/list/room/{room}"),
            Some(&alice),
            json!({"visibility": "private"})
        )
        .await
        .0,
        200
    );
    let (_, dir) = s.get("/_matrix/client/v3/publicRooms", Some(&alice)).await;
    assert!(dir["chunk"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn unread_counts_follow_push_rules_and_read_receipts() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let (_, v) =
        s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat", "name": "Family"})).await;
    let room = v["room_id"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&carol), json!({})).await;
    // Spec v1.17 dropped the display-name rule from the defaults; bob adds his own, which the
    // contains_display_name condition still evaluates.
    let (st, v) = s
        .put(
            "/_matrix/client/v3/pushrules/global/override/my_name",
            Some(&bob),
            json!({"conditions": [{"kind": "contains_display_name"}], "actions": ["notify", {"set_tweak": "highlight"}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    send(&s, &alice, &room, "n1", "dinner is ready").await;
    let mention = send(&s, &alice, &room, "n2", "bob, come down").await;
    // An intentional mention (m.mentions) highlights.
    let (_, m) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/n3"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "Bob!", "m.mentions": {"user_ids": ["@bob:hearth.test"]}}),
        )
        .await;
    let v = sync(&s, &bob, None).await;
    let counts = &v["rooms"]["join"][&room]["unread_notifications"];
    // In a room of 3, every message notifies (.m.rule.message); bob's display name (his own rule)
    // and the intentional mention (.m.rule.is_user_mention) highlight.
    assert_eq!(counts["notification_count"], 3, "{counts}");
    assert_eq!(counts["highlight_count"], 2, "{counts}");
    // The sender's own messages never count for her.
    assert_eq!(sync(&s, &alice, None).await["rooms"]["join"][&room]["unread_notifications"]["notification_count"], 0);

    // Reading up to the mention leaves one unread.
    let since = v["next_batch"].as_str().unwrap().to_owned();
    s.post(&format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{mention}"), Some(&bob), json!({})).await;
    let v = sync(&s, &bob, Some(&since)).await;
    assert_eq!(v["rooms"]["join"][&room]["unread_notifications"]["notification_count"], 1, "{v}");

    // /notifications lists them, newest first, with the read flag.
    let (st, n) = s.get("/_matrix/client/v3/notifications", Some(&bob)).await;
    assert_eq!(st, 200, "{n}");
    let list = n["notifications"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["event"]["event_id"], m["event_id"]);
    assert_eq!(list[0]["read"], false);
    assert_eq!(list[1]["read"], true);
    let (_, hl) = s.get("/_matrix/client/v3/notifications?only=highlight", Some(&bob)).await;
    assert_eq!(hl["notifications"].as_array().unwrap().len(), 2);

    // Turning on the master rule silences everything new.
    s.put(
        "/_matrix/client/v3/pushrules/global/override/.m.rule.master/enabled",
        Some(&carol),
        json!({"enabled": true}),
    )
    .await;
    let before =
        sync(&s, &carol, None).await["rooms"]["join"][&room]["unread_notifications"]["notification_count"].clone();
    send(&s, &alice, &room, "n4", "anyone?").await;
    let after =
        sync(&s, &carol, None).await["rooms"]["join"][&room]["unread_notifications"]["notification_count"].clone();
    assert_eq!(before, after);
}

#[tokio::test]
async fn presence_reaches_people_who_share_a_room() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let loner = s.user("loner").await;
    room_with(&s, &alice, &bob, "public_chat").await;
    // Syncing marks bob online (set_presence defaults to online).
    sync(&s, &bob, None).await;
    let v = sync(&s, &alice, None).await;
    let seen: Vec<(&str, &str)> = v["presence"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["sender"].as_str().unwrap(), e["content"]["presence"].as_str().unwrap()))
        .collect();
    assert!(seen.contains(&("@bob:hearth.test", "online")), "{seen:?}");
    let since = v["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s
        .put(
            "/_matrix/client/v3/presence/@bob:hearth.test/status",
            Some(&bob),
            json!({"presence": "unavailable", "status_msg": "cooking"}),
        )
        .await;
    assert_eq!(st, 200);
    let (_, v) =
        s.get(&format!("/_matrix/client/v3/sync?since={since}&timeout=5000&set_presence=offline"), Some(&alice)).await;
    let bobs = v["presence"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["sender"] == "@bob:hearth.test")
        .expect("bob's change");
    assert_eq!(bobs["content"]["presence"], "unavailable");
    assert_eq!(bobs["content"]["status_msg"], "cooking");
    let (_, got) = s.get("/_matrix/client/v3/presence/@bob:hearth.test/status", Some(&alice)).await;
    assert_eq!(got["status_msg"], "cooking");
    // Someone who shares no room with bob hears nothing of him.
    let v = sync(&s, &loner, None).await;
    assert!(v["presence"]["events"].as_array().unwrap().iter().all(|e| e["sender"] != "@bob:hearth.test"));
}

/// Notifications read more than a day ago leave /notifications (highlights after a month), as
/// in Synapse, so the database does not keep every message's notifications for ever; unread
/// ones stay whatever their age, and the unread counts do not move. A message that notified
/// the members alike is one row for the room: when it goes, those who have not read it keep it
/// as a row of their own.
#[tokio::test]
async fn notifications_read_long_ago_are_pruned_and_unread_ones_kept() {
    let mut s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let dave = s.user("dave").await;
    let room = s.create_room(&alice, json!({"preset": "public_chat"})).await;
    for who in [&bob, &carol, &dave] {
        assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(who), json!({})).await.0, 200);
    }
    let old = send(&s, &alice, &room, "p1", "old news").await;
    let (_, m) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/p2"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "Bob!", "m.mentions": {"user_ids": ["@bob:hearth.test"]}}),
        )
        .await;
    let mention = m["event_id"].as_str().unwrap().to_owned();
    let recent = send(&s, &alice, &room, "p3", "news of today").await;
    let unread = send(&s, &alice, &room, "p4", "still unread").await;
    // Bob read up to the recent message; carol read nothing; dave read the first message only.
    read_up_to(&s, &bob, &room, &recent).await;
    read_up_to(&s, &dave, &room, &old).await;
    assert_eq!(listed(&s, bob.clone()).await, [unread.clone(), recent.clone(), mention.clone(), old.clone()]);

    // Two days pass for the events up to the mention, and the server starts again (the pruning
    // runs at start, then hourly). The server tells an event's age by where the event stream
    // stood at its hourly notes; this is the note it would have made two days ago.
    s.stop().await;
    let db = s.dir.path().join("hearth.db");
    let mut conn =
        sqlx::ConnectOptions::connect(&sqlx::sqlite::SqliteConnectOptions::new().filename(&db)).await.unwrap();
    let two_days_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
        - 2 * 24 * 3600 * 1000;
    sqlx::query("INSERT INTO stream_marks (ts, position) SELECT ?, stream_ordering FROM events WHERE event_id = ?")
        .bind(two_days_ago)
        .bind(&mention)
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let s = restarted(s).await;
    // The old read message is gone; the read mention (a highlight), the message read today and
    // the unread one stay.
    let bobs = listed_once_pruned(&s, &bob, 4).await;
    assert_eq!(bobs, [unread.clone(), recent.clone(), mention.clone()]);
    assert_eq!(
        listed(&s, carol.clone()).await,
        [unread.clone(), recent.clone(), mention.clone(), old.clone()],
        "carol read nothing"
    );
    // What dave left unread stays, however old: only what he read goes.
    assert_eq!(listed(&s, dave.clone()).await, [unread.clone(), recent.clone(), mention.clone()]);
    let count = |v: Value| v["rooms"]["join"][&room]["unread_notifications"]["notification_count"].clone();
    assert_eq!(count(sync(&s, &bob, None).await), 1);
    assert_eq!(count(sync(&s, &carol, None).await), 4);
    assert_eq!(count(sync(&s, &dave, None).await), 3);

    // Once dave has read the mention, the next prune takes it from his list too; carol, who
    // still has not read anything, keeps everything.
    read_up_to(&s, &dave, &room, &mention).await;
    let mut s = restarted(s).await;
    assert_eq!(listed_once_pruned(&s, &dave, 3).await, [unread.clone(), recent.clone()]);
    assert_eq!(listed(&s, carol.clone()).await, [unread.clone(), recent.clone(), mention.clone(), old]);
    assert_eq!(listed(&s, bob.clone()).await, [unread.clone(), recent.clone(), mention]);
    assert_eq!(count(sync(&s, &carol, None).await), 4);
    assert_eq!(count(sync(&s, &dave, None).await), 2);
    s.stop().await;
}

async fn read_up_to(s: &TestServer, who: &str, room: &str, event: &str) {
    let (st, v) =
        s.post(&format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{event}"), Some(who), json!({})).await;
    assert_eq!(st, 200, "{v}");
}

/// The server started again on the same data (the prune of read notifications runs at start).
async fn restarted(mut s: TestServer) -> TestServer {
    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let config = common::test_config(dir.path());
    TestServer::start_in(dir, config).await
}

/// What /notifications lists for `who` once fewer than `before` are listed (the prune runs in
/// the background after a start), or after five seconds.
async fn listed_once_pruned(s: &TestServer, who: &str, before: usize) -> Vec<String> {
    let mut list = Vec::new();
    for _ in 0..100 {
        list = listed(s, who.to_owned()).await;
        if list.len() < before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    list
}

/// A message that notifies most members alike is stored once for the room; what each member
/// sees must still be their own: not while muted, not from someone they ignore, nothing from
/// before they joined or while they were away, and a mention that highlights for them only.
#[tokio::test]
async fn notifications_are_each_members_own_though_stored_once_per_room() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let names = ["bob", "carol", "dave", "erin", "frank", "gina"];
    let mut members = Vec::new();
    for name in names {
        members.push(s.user(name).await);
    }
    let [bob, carol, dave, erin, frank, gina] = &members[..] else { unreachable!() };
    let room = s.create_room(&alice, json!({"preset": "public_chat"})).await;
    for who in &members {
        assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(who), json!({})).await.0, 200);
    }
    // Carol mutes the room (a room rule without actions); dave ignores alice.
    let (st, v) =
        s.put(&format!("/_matrix/client/v3/pushrules/global/room/{room}"), Some(carol), json!({"actions": []})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s
        .put(
            "/_matrix/client/v3/user/@dave:hearth.test/account_data/m.ignored_user_list",
            Some(dave),
            json!({"ignored_users": {"@alice:hearth.test": {}}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let m1 = send(&s, &alice, &room, "m1", "one").await;
    // Erin leaves, misses m2, and comes back for m3.
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(erin), json!({})).await.0, 200);
    let m2 = send(&s, &alice, &room, "m2", "two").await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(erin), json!({})).await.0, 200);
    let m3 = send(&s, &alice, &room, "m3", "three").await;
    // Henry joins last.
    let henry = s.user("henry").await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&henry), json!({})).await.0, 200);
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/m4"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "Frank!", "m.mentions": {"user_ids": ["@frank:hearth.test"]}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let m4 = v["event_id"].as_str().unwrap().to_owned();
    // A reply in a thread under m1: counted for the thread as well.
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/m5"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "five", "m.relates_to": {"rel_type": "m.thread", "event_id": m1}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let m5 = v["event_id"].as_str().unwrap().to_owned();

    let counts = |v: Value| {
        let c = &v["rooms"]["join"][&room]["unread_notifications"];
        (c["notification_count"].as_i64().unwrap_or(0), c["highlight_count"].as_i64().unwrap_or(0))
    };
    let ids = |list: &[&String]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let v = sync(&s, bob, None).await;
    assert_eq!(counts(v.clone()), (5, 0));
    assert!(v["rooms"]["join"][&room].get("unread_thread_notifications").is_none(), "{v}");
    // A client that asks for counts per thread gets them, and the room's counts for its main
    // timeline.
    let filter = "%7B%22room%22%3A%7B%22timeline%22%3A%7B%22unread_thread_notifications%22%3Atrue%7D%7D%7D";
    let (st, v) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}"), Some(bob)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(counts(v.clone()), (4, 0));
    let threads = &v["rooms"]["join"][&room]["unread_thread_notifications"];
    assert_eq!(threads, &json!({ m1.as_str(): {"notification_count": 1, "highlight_count": 0} }), "{v}");
    assert_eq!(listed(&s, bob.clone()).await, ids(&[&m5, &m4, &m3, &m2, &m1]));
    assert_eq!(counts(sync(&s, frank, None).await), (5, 1));
    let (_, hl) = s.get("/_matrix/client/v3/notifications?only=highlight", Some(frank)).await;
    assert_eq!(hl["notifications"][0]["event"]["event_id"], m4.as_str(), "{hl}");
    assert_eq!(hl["notifications"].as_array().unwrap().len(), 1, "{hl}");
    assert_eq!(counts(sync(&s, gina, None).await), (5, 0));
    // Muted, ignoring: nothing.
    assert_eq!(counts(sync(&s, carol, None).await), (0, 0));
    assert!(listed(&s, carol.clone()).await.is_empty());
    assert_eq!(counts(sync(&s, dave, None).await), (0, 0));
    assert!(listed(&s, dave.clone()).await.is_empty());
    // Erin: her rejoin counts as having read what came before; the list keeps m1 from her first
    // stay and has no m2.
    assert_eq!(counts(sync(&s, erin, None).await), (3, 0));
    assert_eq!(listed(&s, erin.clone()).await, ids(&[&m5, &m4, &m3, &m1]));
    assert_eq!(counts(sync(&s, &henry, None).await), (2, 0));
    assert_eq!(listed(&s, henry.clone()).await, ids(&[&m5, &m4]));
    // The sender is never notified of her own messages.
    assert_eq!(counts(sync(&s, &alice, None).await), (0, 0));
    assert!(listed(&s, alice.clone()).await.is_empty());

    // And it was stored once per message, not once per member.
    let db = s.dir.path().join("hearth.db");
    let mut conn =
        sqlx::ConnectOptions::connect(&sqlx::sqlite::SqliteConnectOptions::new().filename(&db).read_only(true))
            .await
            .unwrap();
    let (rooms_rows,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM push_room_actions").fetch_one(&mut conn).await.unwrap();
    let (own_rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM push_actions").fetch_one(&mut conn).await.unwrap();
    // m1, m3, m4 and m5 notified four or five of six or seven members alike: one row for the
    // room each, and rows of their own for carol and dave (not notified) and for frank's
    // highlight. m2, while erin was away, notified three of five: a row each is fewer.
    assert_eq!(rooms_rows, 4);
    assert_eq!(own_rows, 2 + 3 + 2 + 3 + 2);

    // Threaded read receipts (spec: "Threaded read receipts"): reading the thread clears its
    // count and not the room's.
    let per_thread = |v: &Value| v["rooms"]["join"][&room]["unread_thread_notifications"].clone();
    let receipt = |event: &str, thread: &str| {
        let path = format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{event}");
        (path, json!({ "thread_id": thread }))
    };
    let (path, body) = receipt(&m5, &m1);
    assert_eq!(s.post(&path, Some(bob), body).await.0, 200);
    let (_, v) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}"), Some(bob)).await;
    assert_eq!(counts(v.clone()), (4, 0));
    assert_eq!(per_thread(&v), Value::Null, "{v}");
    // A reply in the thread, then a message in the main timeline; a receipt for the main
    // timeline on the latter clears the room's count and leaves the thread's reply unread.
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/m6"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "six", "m.relates_to": {"rel_type": "m.thread", "event_id": m1}}),
        )
        .await;
    assert_eq!(st, 200);
    let m7 = send(&s, &alice, &room, "m7", "seven").await;
    let (path, body) = receipt(&m7, "main");
    assert_eq!(s.post(&path, Some(bob), body).await.0, 200);
    let (_, v) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}"), Some(bob)).await;
    assert_eq!(counts(v.clone()), (0, 0));
    assert_eq!(per_thread(&v), json!({ m1.as_str(): {"notification_count": 1, "highlight_count": 0} }), "{v}");
    // /notifications says the same of each: the thread's reply unread, the rest read.
    let (_, n) = s.get("/_matrix/client/v3/notifications", Some(bob)).await;
    let read: Vec<(String, bool)> = n["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|n| (n["event"]["content"]["body"].as_str().unwrap().to_owned(), n["read"].as_bool().unwrap()))
        .collect();
    let expected = [("seven", true), ("six", false), ("five", true)].map(|(b, r)| (b.to_owned(), r));
    assert_eq!(read, expected, "{n}");
    // An unthreaded receipt reads everything before it.
    let (st, _) = s.post(&format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{m7}"), Some(bob), json!({})).await;
    assert_eq!(st, 200);
    let (_, v) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}"), Some(bob)).await;
    assert_eq!((counts(v.clone()), per_thread(&v)), ((0, 0), Value::Null), "{v}");
}

/// The event IDs /notifications lists for `who`, newest first.
async fn listed(s: &TestServer, who: String) -> Vec<String> {
    let (_, n) = s.get("/_matrix/client/v3/notifications", Some(&who)).await;
    n["notifications"].as_array().unwrap().iter().map(|n| n["event"]["event_id"].as_str().unwrap().to_owned()).collect()
}
