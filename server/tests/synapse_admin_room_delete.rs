//! Deleting rooms through Synapse's admin API against the real server: `v2` in the background
//! with its status endpoints, `v1` within the request, the replacement room, the block, and
//! that a purge removes exactly the room: nothing of it is left in any table (but its block and
//! the reports about it, as in Synapse), its members' syncs show them leaving, and the other
//! rooms, their messages and the sync tokens already handed out are untouched, also across a
//! restart.

mod common;

use std::time::Duration;

use common::{TestServer, assert_err, test_config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::ConnectOptions;

async fn join(s: &TestServer, token: &str, room: &str) {
    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(token), json!({})).await;
    assert_eq!(st, 200, "{v}");
}

async fn sync(s: &TestServer, token: &str, since: Option<&str>) -> Value {
    let path = match since {
        Some(t) => format!("/_matrix/client/v3/sync?timeout=0&since={t}"),
        None => "/_matrix/client/v3/sync?timeout=0".to_owned(),
    };
    let (st, v) = s.get(&path, Some(token)).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn bodies(timeline: &Value) -> Vec<String> {
    timeline["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every event ID of a room, read through the admin API.
async fn event_ids(s: &TestServer, root: &str, room: &str) -> Vec<String> {
    let (st, v) = s.get(&format!("/_synapse/admin/v1/rooms/{room}/messages?limit=1000"), Some(root)).await;
    assert_eq!(st, 200, "{v}");
    v["chunk"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect()
}

/// Rows about `room` in each table that has a `room_id` column, and rows of event_edges and
/// event_auth for `events`, read from the database file.
async fn rows_about(s: &TestServer, room: &str, events: &[String]) -> Vec<(String, i64)> {
    let db = s.dir.path().join("hearth.db");
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT m.name FROM sqlite_master m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND p.name = 'room_id' ORDER BY m.name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut out = Vec::new();
    for (t,) in tables {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM \"{t}\" WHERE room_id = ?")))
                .bind(room)
                .fetch_one(&mut conn)
                .await
                .unwrap();
        if n > 0 {
            out.push((t, n));
        }
    }
    for t in ["event_edges", "event_auth"] {
        let ids = json!(events).to_string();
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {t} WHERE event_id IN (SELECT value FROM json_each(?))"
        )))
        .bind(ids)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if n > 0 {
            out.push((t.to_owned(), n));
        }
    }
    out
}

async fn wait_for_deletion(s: &TestServer, root: &str, delete_id: &str) -> Value {
    for _ in 0..200 {
        let (st, v) = s.get(&format!("/_synapse/admin/v2/rooms/delete_status/{delete_id}"), Some(root)).await;
        assert_eq!(st, 200, "{v}");
        if v["status"] == "complete" || v["status"] == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the deletion did not finish");
}

#[tokio::test]
async fn a_deleted_room_is_gone_its_members_moved_and_nothing_else_touched() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let dave = s.user("dave").await;

    let doomed =
        s.create_room(&alice, json!({"preset": "public_chat", "name": "Doomed", "room_alias_name": "doomed"})).await;
    join(&s, &bob, &doomed).await;
    let invite = format!("/_matrix/client/v3/rooms/{doomed}/invite");
    assert_eq!(s.post(&invite, Some(&alice), json!({"user_id": "@carol:hearth.test"})).await.0, 200);
    let first = s.say(&alice, &doomed, "spam one").await;
    s.say(&bob, &doomed, "spam two").await;
    let react = format!("/_matrix/client/v3/rooms/{doomed}/send/m.reaction/r1");
    let reaction = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": first, "key": "👍"}});
    assert_eq!(s.put(&react, Some(&bob), reaction).await.0, 200);
    let receipt = format!("/_matrix/client/v3/rooms/{doomed}/receipt/m.read/{first}");
    assert_eq!(s.post(&receipt, Some(&bob), json!({})).await.0, 200);
    let tag = format!("/_matrix/client/v3/user/@bob:hearth.test/rooms/{doomed}/tags/u.work");
    assert_eq!(s.put(&tag, Some(&bob), json!({})).await.0, 200);
    let report = format!("/_matrix/client/v3/rooms/{doomed}/report/{first}");
    assert_eq!(s.post(&report, Some(&bob), json!({"reason": "spam"})).await.0, 200);
    let doomed_events = event_ids(&s, &root, &doomed).await;
    assert!(doomed_events.len() > 8, "{doomed_events:?}");

    // Another room, which must come out as it was.
    let keep = s.create_room(&alice, json!({"preset": "public_chat", "name": "Keep"})).await;
    join(&s, &dave, &keep).await;
    s.say(&dave, &keep, "keep one").await;
    s.say(&alice, &keep, "keep two").await;
    let keep_events = event_ids(&s, &root, &keep).await;
    let bob_since = sync(&s, &bob, None).await["next_batch"].as_str().unwrap().to_owned();

    // Refusals first, and nothing changes.
    let v2 = format!("/_synapse/admin/v2/rooms/{doomed}");
    assert_err(&s.delete(&v2, Some(&alice), json!({})).await, 403, "M_FORBIDDEN");
    assert_err(&s.delete(&v2, Some(&root), json!({"block": "yes"})).await, 400, "M_BAD_JSON");
    assert_err(&s.delete(&v2, Some(&root), json!({"purge": 1})).await, 400, "M_BAD_JSON");
    assert_err(&s.delete("/_synapse/admin/v2/rooms/not-a-room", Some(&root), json!({})).await, 400, "M_UNKNOWN");
    assert_err(
        &s.delete(&v2, Some(&root), json!({"new_room_user_id": "@root:elsewhere.test"})).await,
        400,
        "M_UNKNOWN",
    );
    assert_err(
        &s.delete(&v2, Some(&root), json!({"new_room_user_id": "@nobody:hearth.test"})).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(
        &s.get(&format!("/_synapse/admin/v2/rooms/{doomed}/delete_status"), Some(&root)).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.get("/_synapse/admin/v2/rooms/delete_status/nope", Some(&root)).await, 404, "M_NOT_FOUND");
    assert_eq!(event_ids(&s, &root, &doomed).await.len(), doomed_events.len(), "refusals changed nothing");

    let (st, v) = s
        .delete(
            &v2,
            Some(&root),
            json!({"block": true, "new_room_user_id": "@root:hearth.test", "room_name": "Moved", "message": "We moved"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let delete_id = v["delete_id"].as_str().unwrap().to_owned();
    let done = wait_for_deletion(&s, &root, &delete_id).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["room_id"], doomed.as_str());
    let result = &done["shutdown_room"];
    assert_eq!(result["kicked_users"], json!(["@alice:hearth.test", "@bob:hearth.test", "@carol:hearth.test"]));
    assert_eq!(result["failed_to_kick_users"], json!([]));
    assert_eq!(result["local_aliases"], json!(["#doomed:hearth.test"]));
    let moved = result["new_room_id"].as_str().unwrap().to_owned();
    let (_, by_room) = s.get(&format!("/_synapse/admin/v2/rooms/{doomed}/delete_status"), Some(&root)).await;
    assert_eq!(by_room["results"][0]["delete_id"], delete_id.as_str());
    assert_eq!(by_room["results"].as_array().unwrap().len(), 1);

    // Bob sees himself leave the old room and join the new one, with the admin's message.
    let bob_sync = sync(&s, &bob, Some(&bob_since)).await;
    // His leave reaches him though the room's events are gone (a device that was away).
    let left = bob_sync["rooms"]["leave"][&doomed]["timeline"]["events"].as_array().expect("a leave").clone();
    let last = left.last().unwrap();
    assert_eq!((&last["type"], &last["state_key"]), (&json!("m.room.member"), &json!("@bob:hearth.test")), "{last}");
    assert_eq!(last["content"]["membership"], "leave");
    let later = sync(&s, &bob, Some(bob_sync["next_batch"].as_str().unwrap())).await;
    assert!(later["rooms"]["leave"].get(&doomed).is_none(), "only once: {later}");
    assert_eq!(bodies(&bob_sync["rooms"]["join"][&moved]["timeline"]), ["We moved"], "{bob_sync}");
    let first_sync = sync(&s, &bob, None).await;
    assert!(first_sync["rooms"]["join"].get(&doomed).is_none() && first_sync["rooms"]["leave"].get(&doomed).is_none());
    // Carol was only invited: her invite is gone and she is not moved.
    let carol_sync = sync(&s, &carol, None).await;
    assert!(carol_sync["rooms"]["invite"].get(&doomed).is_none(), "{carol_sync}");
    assert!(carol_sync["rooms"]["join"].get(&moved).is_none(), "{carol_sync}");

    // The room is gone; its alias leads to the new room; it stays blocked.
    assert_err(&s.get(&format!("/_synapse/admin/v1/rooms/{doomed}"), Some(&root)).await, 404, "M_NOT_FOUND");
    let (_, alias) = s.get("/_matrix/client/v3/directory/room/%23doomed:hearth.test", Some(&bob)).await;
    assert_eq!(alias["room_id"], moved.as_str());
    assert_eq!(s.get(&format!("/_synapse/admin/v1/rooms/{doomed}/block"), Some(&root)).await.1["block"], true);
    assert_ne!(s.post(&format!("/_matrix/client/v3/join/{doomed}"), Some(&dave), json!({})).await.0, 200);
    let (_, messages) = s.get(&format!("/_matrix/client/v3/rooms/{doomed}/messages?dir=b"), Some(&bob)).await;
    assert!(messages["chunk"].as_array().is_none_or(|c| c.is_empty()), "{messages}");
    let (_, rooms) = s.get("/_synapse/admin/v1/rooms", Some(&root)).await;
    assert!(!rooms["rooms"].as_array().unwrap().iter().any(|r| r["room_id"] == doomed.as_str()));

    // Nothing of it is left in the database but the block, the report and the task.
    let left = rows_about(&s, &doomed, &doomed_events).await;
    // (And each local member's leave, for their devices that were away: see below.)
    let expected: Vec<(String, i64)> = vec![
        ("admin_tasks".into(), 1),
        ("blocked_rooms".into(), 1),
        ("purged_memberships".into(), 3),
        ("reports".into(), 1),
    ];
    assert_eq!(left, expected);
    let (_, reports) = s.get("/_synapse/admin/v1/event_reports", Some(&root)).await;
    assert_eq!(reports["total"], 1, "reports are kept for moderation: {reports}");

    // The other room is as it was, and goes on.
    assert_eq!(event_ids(&s, &root, &keep).await, keep_events);
    s.say(&dave, &keep, "keep three").await;
    let (_, history) = s.get(&format!("/_matrix/client/v3/rooms/{keep}/messages?dir=b&limit=10"), Some(&dave)).await;
    let texts: Vec<&str> = history["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["keep three", "keep two", "keep one"]);

    // Deleting it again: a room unknown here; with block, it simply stays blocked.
    let (st, v) = s.delete(&format!("/_synapse/admin/v1/rooms/{doomed}"), Some(&root), json!({"block": true})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["kicked_users"], json!([]));
}

#[tokio::test]
async fn sync_tokens_handed_out_before_a_purge_still_see_new_messages_after_a_restart() {
    let mut s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let dave = s.user("dave").await;
    let keep = s.create_room(&alice, json!({"preset": "public_chat", "name": "Keep"})).await;
    join(&s, &dave, &keep).await;
    s.say(&dave, &keep, "before").await;
    // The doomed room holds the latest events of the server when it goes.
    let doomed = s.create_room(&alice, json!({"preset": "private_chat", "name": "Doomed"})).await;
    for i in 0..5 {
        s.say(&alice, &doomed, &format!("doomed {i}")).await;
    }
    let (st, v) = s.delete(&format!("/_synapse/admin/v1/rooms/{doomed}"), Some(&root), json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["kicked_users"], json!(["@alice:hearth.test"]));
    assert_eq!(v["new_room_id"], Value::Null);
    let dave_since = sync(&s, &dave, None).await["next_batch"].as_str().unwrap().to_owned();
    let alice_since = sync(&s, &alice, None).await["next_batch"].as_str().unwrap().to_owned();

    // Restarted, the server no longer has the purged room's events to count from.
    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let config = test_config(dir.path());
    let s = TestServer::start_in(dir, config).await;
    s.say(&alice, &keep, "after").await;
    let dave_sync = sync(&s, &dave, Some(&dave_since)).await;
    assert_eq!(bodies(&dave_sync["rooms"]["join"][&keep]["timeline"]), ["after"], "{dave_sync}");
    let alice_sync = sync(&s, &alice, Some(&alice_since)).await;
    assert_eq!(bodies(&alice_sync["rooms"]["join"][&keep]["timeline"]), ["after"], "{alice_sync}");
}

/// Issue 21's clean-up: a room no local user is in any more, that every local member forgot
/// (or whose account is gone), is purged once `forgotten_room_retention_period` has passed;
/// a room someone still is in, or left without forgetting (they can still read it), is kept.
#[tokio::test]
async fn rooms_every_local_member_forgot_are_purged_after_the_retention_period() {
    let short = |c: &mut hearth_server::Config| {
        c.forgotten_room_retention_period = Some(hearth_server::config::HumanDuration(Duration::from_millis(1)));
    };
    let mut s = TestServer::start_with(short).await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let leave = |room: String, token: String| {
        let s = &s;
        async move {
            let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&token), json!({})).await;
            assert_eq!(st, 200, "{v}");
        }
    };
    let forget = |room: String, token: String| {
        let s = &s;
        async move {
            let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{room}/forget"), Some(&token), json!({})).await;
            assert_eq!(st, 200, "{v}");
        }
    };
    let mut rooms = Vec::new();
    for name in ["all forgot", "bob did not forget", "bob still in", "carol deactivated"] {
        let id = s.create_room(&alice, json!({"preset": "public_chat", "name": name})).await;
        join(&s, if name == "carol deactivated" { &carol } else { &bob }, &id).await;
        s.say(&alice, &id, "hello").await;
        rooms.push(id);
    }
    for (i, id) in rooms.iter().enumerate() {
        leave(id.clone(), alice.clone()).await;
        forget(id.clone(), alice.clone()).await;
        match i {
            0 => {
                leave(id.clone(), bob.clone()).await;
                forget(id.clone(), bob.clone()).await;
            }
            1 => leave(id.clone(), bob.clone()).await,
            _ => {}
        }
    }
    let (st, v) = s.post("/_synapse/admin/v1/deactivate/@carol:hearth.test", Some(&root), json!({})).await;
    assert_eq!(st, 200, "{v}");
    // Another room, busy, untouched.
    let busy = s.create_room(&alice, json!({"name": "busy"})).await;

    // The clean-up runs at start, then hourly.
    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let mut config = test_config(dir.path());
    short(&mut config);
    let s = TestServer::start_in(dir, config).await;
    let mut kept = Vec::new();
    for _ in 0..100 {
        kept.clear();
        for id in rooms.iter().chain([&busy]) {
            if s.get(&format!("/_synapse/admin/v1/rooms/{id}"), Some(&root)).await.0 == 200 {
                kept.push(id.clone());
            }
        }
        if kept.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(kept, [rooms[1].clone(), rooms[2].clone(), busy.clone()]);
    // Bob can still read the room he left without forgetting.
    let (st, v) = s.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", rooms[1]), Some(&bob)).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["chunk"].as_array().unwrap().iter().any(|e| e["content"]["body"] == "hello"), "{v}");
}

/// With the default period (a week), a room forgotten a moment ago is kept.
#[tokio::test]
async fn a_room_forgotten_just_now_is_kept_with_the_default_period() {
    let mut s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let id = s.create_room(&alice, json!({"name": "forgotten"})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{id}/leave"), Some(&alice), json!({})).await.0, 200);
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{id}/forget"), Some(&alice), json!({})).await.0, 200);
    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let config = test_config(dir.path());
    let s = TestServer::start_in(dir, config).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.get(&format!("/_synapse/admin/v1/rooms/{id}"), Some(&root)).await.0, 200);
}

async fn timeline(s: &TestServer, token: &str, room: &str) -> Vec<Value> {
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"), Some(token)).await;
    page["chunk"].as_array().unwrap().clone()
}

async fn purge_done(s: &TestServer, root: &str, purge_id: &str) -> Value {
    for _ in 0..200 {
        let (st, v) = s.get(&format!("/_synapse/admin/v1/purge_history_status/{purge_id}"), Some(root)).await;
        assert_eq!(st, 200, "{v}");
        if v["status"] != "active" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the purge did not finish");
}

/// Synapse's `purge_history`: the timeline before an event is deleted (this server's users'
/// events only when asked), state stays, the event and what follows stay, search forgets the
/// purged messages; the refusals change nothing.
#[tokio::test]
async fn history_before_an_event_is_purged_and_state_stays() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let id = s.create_room(&alice, json!({"preset": "public_chat", "name": "Chatty"})).await;
    // Bob is notified of each message (and reads none of them).
    let bob = s.user("bob").await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{id}"), Some(&bob), json!({})).await.0, 200);
    let old: Vec<String> = ["old one", "old two", "old three"].iter().map(|b| b.to_string()).collect();
    for b in &old {
        s.say(&alice, &id, b).await;
    }
    let keep = s.say(&alice, &id, "keep one").await;
    s.say(&alice, &id, "keep two").await;
    let texts = |chunk: &[Value]| -> Vec<String> { bodies(&json!({"events": chunk})) };

    // Refusals first.
    let purge = format!("/_synapse/admin/v1/purge_history/{id}");
    assert_err(&s.post(&purge, Some(&alice), json!({"purge_up_to_event_id": keep})).await, 403, "M_FORBIDDEN");
    assert_err(&s.post(&purge, Some(&root), json!({})).await, 400, "M_BAD_JSON");
    assert_err(&s.post(&purge, Some(&root), json!({"purge_up_to_ts": "yesterday"})).await, 400, "M_BAD_JSON");
    assert_err(&s.post(&purge, Some(&root), json!({"purge_up_to_ts": 1000})).await, 404, "M_NOT_FOUND");
    let other = s.create_room(&alice, json!({})).await;
    let elsewhere = s.say(&alice, &other, "elsewhere").await;
    assert_err(&s.post(&purge, Some(&root), json!({"purge_up_to_event_id": elsewhere})).await, 400, "M_UNKNOWN");
    assert_err(
        &s.post("/_synapse/admin/v1/purge_history/!nope:hearth.test", Some(&root), json!({"purge_up_to_ts": 1})).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.get("/_synapse/admin/v1/purge_history_status/nope", Some(&root)).await, 404, "M_NOT_FOUND");

    // Without delete_local_events, this server's users' events stay: nothing here goes.
    let (st, v) = s.post(&purge, Some(&root), json!({"purge_up_to_event_id": keep})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(purge_done(&s, &root, v["purge_id"].as_str().unwrap()).await, json!({"status": "complete"}));
    assert_eq!(texts(&timeline(&s, &alice, &id).await), ["keep two", "keep one", "old three", "old two", "old one"]);

    // With it, the messages before go; state stays; the event named stays.
    let (st, v) = s.post(&format!("{purge}/{keep}"), Some(&root), json!({"delete_local_events": true})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(purge_done(&s, &root, v["purge_id"].as_str().unwrap()).await["status"], "complete");
    let chunk = timeline(&s, &alice, &id).await;
    assert_eq!(texts(&chunk), ["keep two", "keep one"]);
    for kind in ["m.room.create", "m.room.member", "m.room.power_levels", "m.room.name"] {
        assert!(chunk.iter().any(|e| e["type"] == kind), "{kind} stays: {chunk:?}");
    }
    let (_, name) = s.get(&format!("/_matrix/client/v3/rooms/{id}/state/m.room.name/"), Some(&alice)).await;
    assert_eq!(name["name"], "Chatty");
    let (_, found) = s
        .post(
            "/_matrix/client/v3/search",
            Some(&alice),
            json!({"search_categories": {"room_events": {"search_term": "old"}}}),
        )
        .await;
    assert_eq!(found["search_categories"]["room_events"]["count"], 0, "{found}");
    // Bob's notifications of the purged messages went with them.
    let (_, n) = s.get("/_matrix/client/v3/notifications", Some(&bob)).await;
    let notified: Vec<&str> = n["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["event"]["content"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(notified, ["keep two", "keep one"], "{n}");
    let (_, v) = s.get("/_matrix/client/v3/sync", Some(&bob)).await;
    assert_eq!(v["rooms"]["join"][&id]["unread_notifications"]["notification_count"], 2, "{v}");
    // The room goes on.
    s.say(&alice, &id, "new").await;
    assert_eq!(texts(&timeline(&s, &alice, &id).await), ["new", "keep two", "keep one"]);
}
