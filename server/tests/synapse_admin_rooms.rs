//! Synapse's room and report admin API against the real server: rooms listed with Synapse's
//! order, search, filters and paging; a room's details, members, state and forward extremities;
//! event reports listed, filtered, read and deleted; and the refusals.

mod common;

use common::{TestServer, assert_err, urlencode};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn names(list: &Value) -> Vec<String> {
    list["rooms"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn rooms_are_listed_searched_paged_and_shown_as_synapse_does() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let family = s.create_room(&alice,
        json!({"preset": "public_chat", "name": "Family", "room_alias_name": "family", "visibility": "public", "topic": "Sunday lunch"}),
    )
    .await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{family}"), Some(&bob), json!({})).await.0, 200);
    let club = s.create_room(&alice,
        json!({"preset": "private_chat", "name": "Book club", "initial_state": [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]}),
    )
    .await;
    let empty = s.create_room(&alice, json!({"name": "Empty"})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{empty}/leave"), Some(&alice), json!({})).await.0, 200);

    assert_err(&s.get("/_synapse/admin/v1/rooms", Some(&alice)).await, 403, "M_FORBIDDEN");
    let (st, all) = s.get("/_synapse/admin/v1/rooms", Some(&root)).await;
    assert_eq!(st, 200, "{all}");
    assert_eq!(names(&all), ["Book club", "Empty", "Family"], "by name");
    assert_eq!((&all["total_rooms"], &all["offset"]), (&json!(3), &json!(0)));
    assert!(all.get("next_batch").is_none() && all.get("prev_batch").is_none(), "{all}");
    let listed = all["rooms"].as_array().unwrap().iter().find(|r| r["room_id"] == family.as_str()).unwrap();
    assert_eq!(listed["joined_members"], 2);
    assert_eq!(listed["joined_local_members"], 2);
    assert_eq!(listed["public"], true);
    assert_eq!(listed["canonical_alias"], "#family:hearth.test");
    assert_eq!(listed["join_rules"], "public");
    assert_eq!(listed["creator"], "@alice:hearth.test");
    assert!(listed.get("topic").is_none(), "the list has no topic: {listed}");

    let get = |q: &'static str| {
        let (s, root) = (&s, root.clone());
        async move { s.get(&format!("/_synapse/admin/v1/rooms?{q}"), Some(&root)).await.1 }
    };
    assert_eq!(names(&get("order_by=joined_members").await)[0], "Family", "the biggest first");
    assert_eq!(names(&get("dir=b").await), ["Family", "Empty", "Book club"]);
    let first = get("limit=1").await;
    assert_eq!((names(&first), &first["next_batch"]), (vec!["Book club".to_owned()], &json!(1)));
    assert!(first.get("prev_batch").is_none());
    let second = get("limit=1&from=1").await;
    assert_eq!(
        (names(&second), &second["next_batch"], &second["prev_batch"]),
        (vec!["Empty".to_owned()], &json!(2), &json!(0))
    );
    // Every room here is version 12: Synapse orders versions newest first and breaks ties by
    // room ID in the same direction, so the tie comes out by descending room ID.
    let mut by_id: Vec<(String, String)> = all["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["room_id"].as_str().unwrap().to_owned(), r["name"].as_str().unwrap().to_owned()))
        .collect();
    by_id.sort();
    let ascending: Vec<String> = by_id.into_iter().map(|(_, name)| name).collect();
    let descending: Vec<String> = ascending.iter().rev().cloned().collect();
    assert_eq!(names(&get("order_by=version").await), descending);
    assert_eq!(names(&get("order_by=version&dir=b").await), ascending);
    assert_eq!(names(&get("order_by=size").await)[0], "Family", "Synapse's older name for joined_members");
    assert_eq!(names(&get("search_term=FAM").await), ["Family"]);
    assert_eq!(names(&get("public_rooms=true").await), ["Family"]);
    assert_eq!(names(&get("empty_rooms=true").await), ["Empty"]);
    let by_id = s.get(&format!("/_synapse/admin/v1/rooms?search_term={}", urlencode(&club)), Some(&root)).await.1;
    assert_eq!(names(&by_id), ["Book club"], "a room ID, exactly");
    for q in ["search_term=", "order_by=colour", "dir=up", "limit=-5", "public_rooms=maybe"] {
        assert_err(&s.get(&format!("/_synapse/admin/v1/rooms?{q}"), Some(&root)).await, 400, "M_INVALID_PARAM");
    }

    // Details.
    let (st, d) = s.get(&format!("/_synapse/admin/v1/rooms/{family}"), Some(&root)).await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(
        (&d["topic"], &d["version"], &d["forgotten"], &d["encryption"]),
        (&json!("Sunday lunch"), &json!("12"), &json!(false), &Value::Null)
    );
    assert_eq!(d["joined_local_devices"], 2, "{d}");
    assert_eq!((&d["tombstoned"], &d["replacement_room"]), (&json!(false), &Value::Null), "{d}");
    let (_, c) = s.get(&format!("/_synapse/admin/v1/rooms/{club}"), Some(&root)).await;
    assert_eq!(c["encryption"], "m.megolm.v1.aes-sha2");
    let tombstone = format!("/_matrix/client/v3/rooms/{club}/state/m.room.tombstone/");
    let body = json!({"body": "moved", "replacement_room": family});
    assert_eq!(s.put(&tombstone, Some(&alice), body).await.0, 200);
    let (_, c) = s.get(&format!("/_synapse/admin/v1/rooms/{club}"), Some(&root)).await;
    assert_eq!((&c["tombstoned"], &c["replacement_room"]), (&json!(true), &json!(family)), "{c}");
    let (_, e) = s.get(&format!("/_synapse/admin/v1/rooms/{empty}"), Some(&root)).await;
    assert_eq!((&e["joined_members"], &e["forgotten"]), (&json!(0), &json!(false)));
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{empty}/forget"), Some(&alice), json!({})).await.0, 200);
    let (_, e) = s.get(&format!("/_synapse/admin/v1/rooms/{empty}"), Some(&root)).await;
    assert_eq!(e["forgotten"], true, "everyone here forgot it: {e}");
    assert_err(&s.get("/_synapse/admin/v1/rooms/!nowhere:hearth.test", Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(&s.get("/_synapse/admin/v1/rooms/not-a-room", Some(&root)).await, 400, "M_UNKNOWN");

    // Members, state, forward extremities.
    let (_, m) = s.get(&format!("/_synapse/admin/v1/rooms/{family}/members"), Some(&root)).await;
    assert_eq!(m, json!({"members": ["@alice:hearth.test", "@bob:hearth.test"], "total": 2}));
    let (_, named) = s.get(&format!("/_synapse/admin/v1/rooms/{family}/state?type=m.room.name"), Some(&root)).await;
    assert_eq!(named["state"].as_array().unwrap().len(), 1, "{named}");
    assert_eq!(named["state"][0]["content"]["name"], "Family");
    let (_, state) = s.get(&format!("/_synapse/admin/v1/rooms/{family}/state"), Some(&root)).await;
    assert!(state["state"].as_array().unwrap().len() >= 6, "{state}");
    let latest = s.say(&bob, &family, "hello").await;
    let (_, fx) = s.get(&format!("/_synapse/admin/v1/rooms/{family}/forward_extremities"), Some(&root)).await;
    assert_eq!((&fx["count"], &fx["results"][0]["event_id"]), (&json!(1), &json!(latest)), "{fx}");
}

#[tokio::test]
async fn event_reports_are_listed_filtered_read_and_deleted() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let family = s.create_room(&alice, json!({"preset": "public_chat", "name": "Family"})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{family}"), Some(&bob), json!({})).await.0, 200);
    let rude = s.say(&alice, &family, "rude").await;
    let spam = s.say(&bob, &family, "spam").await;
    let report = |who: &str, event: &str, reason: &str| {
        let (s, who) = (&s, who.to_owned());
        let path = format!("/_matrix/client/v3/rooms/{family}/report/{event}");
        let reason = reason.to_owned();
        async move { s.post(&path, Some(&who), json!({"reason": reason})).await }
    };
    assert_eq!(report(&bob, &rude, "rude words").await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert_eq!(report(&alice, &spam, "spam").await.0, 200);

    assert_err(&s.get("/_synapse/admin/v1/event_reports", Some(&alice)).await, 403, "M_FORBIDDEN");
    let (st, all) = s.get("/_synapse/admin/v1/event_reports", Some(&root)).await;
    assert_eq!(st, 200, "{all}");
    assert_eq!(all["total"], 2);
    let first = &all["event_reports"][0];
    assert_eq!(
        (&first["event_id"], &first["user_id"], &first["sender"]),
        (&json!(spam), &json!("@alice:hearth.test"), &json!("@bob:hearth.test")),
        "newest first"
    );
    assert_eq!(
        (&first["reason"], &first["name"], &first["room_id"]),
        (&json!("spam"), &json!("Family"), &json!(family))
    );
    let (_, forwards) = s.get("/_synapse/admin/v1/event_reports?dir=f", Some(&root)).await;
    assert_eq!(forwards["event_reports"][0]["event_id"], rude.as_str());
    let (_, by_bob) = s.get("/_synapse/admin/v1/event_reports?user_id=bob", Some(&root)).await;
    assert_eq!((&by_bob["total"], &by_bob["event_reports"][0]["event_id"]), (&json!(1), &json!(rude)));
    let (_, about_bob) = s
        .get(
            &format!("/_synapse/admin/v1/event_reports?event_sender_user_id={}", urlencode("@bob:hearth.test")),
            Some(&root),
        )
        .await;
    assert_eq!(about_bob["total"], 1);
    let (_, page) = s.get("/_synapse/admin/v1/event_reports?limit=1", Some(&root)).await;
    assert_eq!((&page["next_token"], page["event_reports"].as_array().unwrap().len()), (&json!(1), 1));

    let id = first["id"].as_i64().unwrap();
    let (st, one) = s.get(&format!("/_synapse/admin/v1/event_reports/{id}"), Some(&root)).await;
    assert_eq!(st, 200, "{one}");
    // The event as stored and signed (the PDU: room versions 3 on have no event_id in it).
    assert_eq!((&one["event_id"], &one["event_json"]["content"]["body"]), (&json!(spam), &json!("spam")), "{one}");
    assert!(one["event_json"]["signatures"]["hearth.test"].is_object(), "{one}");
    assert_eq!(s.delete_call(&format!("/_synapse/admin/v1/event_reports/{id}"), Some(&root)).await.0, StatusCode::OK);
    assert_err(&s.get(&format!("/_synapse/admin/v1/event_reports/{id}"), Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.delete_call(&format!("/_synapse/admin/v1/event_reports/{id}"), Some(&root)).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.get("/_synapse/admin/v1/event_reports/abc", Some(&root)).await, 400, "M_INVALID_PARAM");
    assert_eq!(s.get("/_synapse/admin/v1/event_reports", Some(&root)).await.1["total"], 1, "only that one went");
}

#[tokio::test]
async fn admins_join_users_to_rooms_and_read_statistics_and_background_updates() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;

    // Joining a local user: a public room at once, by alias too; a private one after the admin's
    // invite, which needs the admin in the room.
    let public = s.create_room(&alice, json!({"preset": "public_chat", "room_alias_name": "lounge"})).await;
    let join = |room: &str, body: Value| {
        let (s, root, path) = (&s, root.clone(), format!("/_synapse/admin/v1/join/{}", urlencode(room)));
        async move { s.post(&path, Some(&root), body).await }
    };
    let (st, v) = join("#lounge:hearth.test", json!({"user_id": "@bob:hearth.test"})).await;
    assert_eq!((st, &v), (StatusCode::OK, &json!({"room_id": public})));
    let private = s.create_room(&alice, json!({"preset": "private_chat"})).await;
    assert_err(&join(&private, json!({"user_id": "@bob:hearth.test"})).await, 403, "M_FORBIDDEN");
    let own = s.create_room(&root, json!({"preset": "private_chat"})).await;
    assert_eq!(join(&own, json!({"user_id": "@bob:hearth.test"})).await.0, 200);
    let (_, rooms) = s.get("/_matrix/client/v3/joined_rooms", Some(&bob)).await;
    let mut joined: Vec<&str> = rooms["joined_rooms"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    joined.sort();
    let mut expected = vec![public.as_str(), own.as_str()];
    expected.sort();
    assert_eq!(joined, expected);
    assert_err(&join(&public, json!({})).await, 400, "M_MISSING_PARAM");
    assert_err(&join(&public, json!({"user_id": "@nobody:hearth.test"})).await, 404, "M_NOT_FOUND");
    assert_err(&join(&public, json!({"user_id": "@bob:elsewhere.test"})).await, 400, "M_UNKNOWN");
    assert_err(&join("!nowhere:hearth.test", json!({"user_id": "@bob:hearth.test"})).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.post(&format!("/_synapse/admin/v1/join/{public}"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
            .await,
        403,
        "M_FORBIDDEN",
    );

    // Media per uploader.
    for (token, size) in [(&alice, 100usize), (&alice, 300), (&bob, 50)] {
        let (st, _) =
            s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload", Some(token), vec![size as u8; size]).await;
        assert_eq!(st, 200);
    }
    let (st, stats) = s.get("/_synapse/admin/v1/statistics/users/media", Some(&root)).await;
    assert_eq!(st, 200, "{stats}");
    assert_eq!(
        stats,
        json!({"users": [
            {"user_id": "@alice:hearth.test", "displayname": "alice", "media_count": 2, "media_length": 400},
            {"user_id": "@bob:hearth.test", "displayname": "bob", "media_count": 1, "media_length": 50},
        ], "total": 2})
    );
    let (_, biggest) =
        s.get("/_synapse/admin/v1/statistics/users/media?order_by=media_length&dir=b&limit=1", Some(&root)).await;
    assert_eq!((&biggest["users"][0]["user_id"], &biggest["next_token"]), (&json!("@alice:hearth.test"), &json!(1)));
    let (_, found) = s.get("/_synapse/admin/v1/statistics/users/media?search_term=BO", Some(&root)).await;
    assert_eq!(found["total"], 1);
    let (_, none) = s.get("/_synapse/admin/v1/statistics/users/media?from_ts=9999999999999", Some(&root)).await;
    assert_eq!(none["total"], 0);
    for q in ["order_by=size", "from_ts=10&until_ts=5", "search_term=", "dir=x"] {
        let got = s.get(&format!("/_synapse/admin/v1/statistics/users/media?{q}"), Some(&root)).await;
        assert_err(&got, 400, "M_INVALID_PARAM");
    }
    let (_, db) = s.get("/_synapse/admin/v1/statistics/database/rooms", Some(&root)).await;
    let sizes: Vec<i64> =
        db["rooms"].as_array().unwrap().iter().map(|r| r["estimated_size"].as_i64().unwrap()).collect();
    assert_eq!(sizes.len(), 3, "{db}");
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]) && sizes[2] > 0, "biggest first: {db}");

    // Background updates: none, and the switch says what it was set to.
    assert_eq!(
        s.get("/_synapse/admin/v1/background_updates/status", Some(&root)).await.1["current_updates"],
        json!({})
    );
    let (_, off) =
        s.post("/_synapse/admin/v1/background_updates/enabled", Some(&root), json!({"enabled": false})).await;
    assert_eq!(off, json!({"enabled": false}));
    assert_eq!(s.get("/_synapse/admin/v1/background_updates/enabled", Some(&root)).await.1, json!({"enabled": false}));
    s.post("/_synapse/admin/v1/background_updates/enabled", Some(&root), json!({"enabled": true})).await;
    let start = "/_synapse/admin/v1/background_updates/start_job";
    assert_eq!(
        s.post(start, Some(&root), json!({"job_name": "regenerate_directory"})).await,
        (StatusCode::OK, json!({}))
    );
    assert_err(&s.post(start, Some(&root), json!({"job_name": "make_coffee"})).await, 400, "M_UNKNOWN");
    assert_err(&s.post(start, Some(&root), json!({})).await, 400, "M_MISSING_PARAM");
    assert_err(&s.get("/_synapse/admin/v1/background_updates/status", Some(&alice)).await, 403, "M_FORBIDDEN");
}

#[tokio::test]
async fn blocked_rooms_admit_nobody_and_admins_read_any_room() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let family = s.create_room(&alice, json!({"preset": "public_chat", "name": "Family"})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{family}"), Some(&bob), json!({})).await.0, 200);
    let block = format!("/_synapse/admin/v1/rooms/{family}/block");

    assert_eq!(s.get(&block, Some(&root)).await.1, json!({"block": false}));
    assert_eq!(s.put(&block, Some(&root), json!({"block": true})).await, (StatusCode::OK, json!({"block": true})));
    assert_eq!(s.get(&block, Some(&root)).await.1, json!({"block": true, "user_id": "@root:hearth.test"}));
    assert_err(
        &s.post(&format!("/_matrix/client/v3/join/{family}"), Some(&carol), json!({})).await,
        403,
        "M_FORBIDDEN",
    );
    let invite = format!("/_matrix/client/v3/rooms/{family}/invite");
    assert_err(&s.post(&invite, Some(&alice), json!({"user_id": "@carol:hearth.test"})).await, 403, "M_FORBIDDEN");
    assert_eq!(
        s.post(&format!("/_matrix/client/v3/rooms/{family}/leave"), Some(&bob), json!({})).await.0,
        200,
        "leaving still works"
    );
    assert_err(&s.put(&block, Some(&root), json!({})).await, 400, "M_MISSING_PARAM");
    assert_err(&s.put(&block, Some(&root), json!({"block": "yes"})).await, 400, "M_BAD_JSON");
    assert_err(
        &s.put("/_synapse/admin/v1/rooms/not-a-room/block", Some(&root), json!({"block": true})).await,
        400,
        "M_UNKNOWN",
    );
    assert_err(&s.put(&block, Some(&alice), json!({"block": false})).await, 403, "M_FORBIDDEN");
    assert_eq!(s.put(&block, Some(&root), json!({"block": false})).await.0, 200);
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{family}"), Some(&carol), json!({})).await.0, 200, "unblocked");
    // A room not known here can be blocked before anyone joins it.
    let elsewhere = "/_synapse/admin/v1/rooms/!future:elsewhere.test/block";
    assert_eq!(s.put(elsewhere, Some(&root), json!({"block": true})).await.0, 200);
    assert_eq!(s.get(elsewhere, Some(&root)).await.1["block"], true);

    // History hidden from members who joined later is open to the admin.
    let secret = s.create_room(&alice,
        json!({"preset": "public_chat", "initial_state": [{"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}]}),
    )
    .await;
    let sent: Vec<String> = vec![
        s.say(&alice, &secret, "one").await,
        s.say(&alice, &secret, "two").await,
        s.say(&alice, &secret, "three").await,
    ];
    let (st, page) = s.get(&format!("/_synapse/admin/v1/rooms/{secret}/messages?dir=b&limit=2"), Some(&root)).await;
    assert_eq!(st, 200, "{page}");
    let ids: Vec<&str> = page["chunk"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [sent[2].as_str(), sent[1].as_str()], "newest first");
    let end = page["end"].as_str().unwrap();
    let (_, next) =
        s.get(&format!("/_synapse/admin/v1/rooms/{secret}/messages?dir=b&limit=2&from={end}"), Some(&root)).await;
    assert_eq!(next["chunk"][0]["event_id"], sent[0].as_str());
    let (_, start) = s.get(&format!("/_synapse/admin/v1/rooms/{secret}/messages"), Some(&root)).await;
    assert_eq!(start["chunk"][0]["type"], "m.room.create", "forwards from the start by default");
    assert_err(&s.get("/_synapse/admin/v1/rooms/!nowhere:hearth.test/messages", Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.get(&format!("/_synapse/admin/v1/rooms/{secret}/messages?from=garbage"), Some(&root)).await,
        400,
        "M_INVALID_PARAM",
    );
}

#[tokio::test]
async fn make_room_admin_uses_the_most_powerful_local_member() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let power = |room: &str| {
        let (s, alice, path) =
            (&s, alice.clone(), format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/"));
        async move { s.get(&path, Some(&alice)).await.1 }
    };
    let make = |room: &str, body: Value| {
        let (s, root, path) =
            (&s, root.clone(), format!("/_synapse/admin/v1/rooms/{}/make_room_admin", urlencode(room)));
        async move { s.post(&path, Some(&root), body).await }
    };

    // Room version 12: alice, the creator, raises bob to 100 and invites him (a private room).
    let private = s.create_room(&alice, json!({"preset": "private_chat"})).await;
    assert_eq!(make(&private, json!({"user_id": "@bob:hearth.test"})).await, (StatusCode::OK, json!({})));
    assert_eq!(power(&private).await["users"]["@bob:hearth.test"], 100);
    let (_, member) =
        s.get(&format!("/_matrix/client/v3/rooms/{private}/state/m.room.member/@bob:hearth.test"), Some(&alice)).await;
    assert_eq!(member["membership"], "invite");
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{private}"), Some(&bob), json!({})).await.0, 200);

    // An older room version: the power levels name alice at 100; the caller by default, and
    // no invite into a public room.
    let (_, v10) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({"preset": "public_chat", "room_version": "10", "room_alias_name": "old"}),
        )
        .await;
    let v10 = v10["room_id"].as_str().unwrap().to_owned();
    assert_eq!(make("#old:hearth.test", json!({})).await.0, 200);
    assert_eq!(power(&v10).await["users"]["@root:hearth.test"], 100);
    let (st, _) =
        s.get(&format!("/_matrix/client/v3/rooms/{v10}/state/m.room.member/@root:hearth.test"), Some(&alice)).await;
    assert_eq!(st, 404, "no invite into a public room");

    // Nobody local with power is left in the room.
    let left = s.create_room(&alice, json!({"preset": "private_chat"})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{left}/leave"), Some(&alice), json!({})).await.0, 200);
    let got = make(&left, json!({"user_id": "@bob:hearth.test"})).await;
    assert_err(&got, 400, "M_UNKNOWN");
    assert!(got.1["error"].as_str().unwrap().contains("No local admin user in room"), "{}", got.1);
    assert_err(&make("!nowhere:hearth.test", json!({})).await, 400, "M_UNKNOWN");
    assert_err(&make("#nothing:hearth.test", json!({})).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.post(&format!("/_synapse/admin/v1/rooms/{private}/make_room_admin"), Some(&alice), json!({})).await,
        403,
        "M_FORBIDDEN",
    );
}

/// Synapse's `/context` for an admin reading a report: the events around one and the state at
/// it, whatever the room's history visibility; `filter` on it and on `/messages`.
#[tokio::test]
async fn admins_read_an_event_in_context_and_filter_messages() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let id = s.create_room(&alice,
        json!({"name": "Secret", "initial_state": [{"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}]}),
    )
    .await;
    let sent: Vec<String> = ["one", "two", "three", "four", "five"].iter().map(|b| b.to_string()).collect();
    let mut ids = Vec::new();
    for b in &sent {
        ids.push(s.say(&alice, &id, b).await);
    }
    let path = format!("/_synapse/admin/v1/rooms/{id}/context/{}?limit=4", ids[2]);
    let (st, v) = s.get(&path, Some(&root)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["event"]["content"]["body"], "three");
    let bodies = |list: &Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|e| e["content"]["body"].as_str().unwrap_or("").to_owned()).collect()
    };
    assert_eq!(bodies(&v["events_before"]), ["two", "one"], "nearest first");
    assert_eq!(bodies(&v["events_after"]), ["four", "five"]);
    assert!(
        v["state"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Secret")
    );
    assert!(v["start"].is_string() && v["end"].is_string());
    // A filter leaves out what it does not want.
    let only_alice = urlencode(&json!({"not_senders": ["@alice:hearth.test"]}).to_string());
    let (_, filtered) = s.get(&format!("{path}&filter={only_alice}"), Some(&root)).await;
    assert_eq!(filtered["events_before"], json!([]));
    assert_eq!(filtered["event"]["content"]["body"], "three", "the event itself is always there");
    let messages = format!("/_synapse/admin/v1/rooms/{id}/messages?dir=b&limit=50");
    let types = urlencode(&json!({"types": ["m.room.name"]}).to_string());
    let (_, named) = s.get(&format!("{messages}&filter={types}"), Some(&root)).await;
    let kinds: Vec<&str> = named["chunk"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["m.room.name"]);
    // Refusals.
    assert_err(&s.get(&format!("{path}&filter=nope"), Some(&root)).await, 400, "M_NOT_JSON");
    assert_err(&s.get(&format!("{messages}&filter=[1]"), Some(&root)).await, 400, "M_NOT_JSON");
    assert_err(&s.get(&format!("/_synapse/admin/v1/rooms/{id}/context/$nope"), Some(&root)).await, 404, "M_NOT_FOUND");
    let elsewhere = s.create_room(&alice, json!({})).await;
    assert_err(
        &s.get(&format!("/_synapse/admin/v1/rooms/{elsewhere}/context/{}", ids[2]), Some(&root)).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.get(&path, Some(&alice)).await, 403, "M_FORBIDDEN");
}

/// Synapse's federation admin API on a server that cannot reach the other: the destination
/// shows its failure and back-off, and `reset_connection` ends the back-off.
#[tokio::test]
async fn admins_see_failing_destinations_and_reset_their_back_off() {
    let s = TestServer::start().await;
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    let root = root["access_token"].as_str().unwrap().to_owned();
    let alice = s.user("alice").await;
    let list = "/_synapse/admin/v1/federation/destinations";
    assert_eq!(s.get(list, Some(&root)).await.1, json!({"destinations": [], "total": 0}));
    // A to-device message for someone on a server that does not exist makes it a destination.
    for server in ["nowhere.invalid", "also-nowhere.invalid"] {
        let body = json!({"messages": {format!("@bob:{server}"): {"DEVICE": {"hello": true}}}});
        let (st, v) = s.put(&format!("/_matrix/client/v3/sendToDevice/m.test/{server}"), Some(&alice), body).await;
        assert_eq!(st, 200, "{v}");
    }
    let mut page = Value::Null;
    for _ in 0..200 {
        page = s.get(list, Some(&root)).await.1;
        let failing = page["destinations"].as_array().unwrap().iter().filter(|d| d["failure_ts"].is_i64()).count();
        if failing == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(page["total"], 2, "{page}");
    let first = &page["destinations"][0];
    assert_eq!(first["destination"], "also-nowhere.invalid", "by name: {page}");
    assert!(first["retry_interval"].as_i64().unwrap() > 0 && first["retry_last_ts"].as_i64().unwrap() > 0, "{first}");
    assert_eq!(first["last_successful_stream_ordering"], Value::Null);
    let (_, back) = s.get(&format!("{list}?dir=b&limit=1"), Some(&root)).await;
    assert_eq!(back["destinations"][0]["destination"], "nowhere.invalid");
    assert_eq!(back["next_token"], "1");
    let (_, searched) = s.get(&format!("{list}?destination=ALSO"), Some(&root)).await;
    assert_eq!(searched["total"], 1);
    let one = format!("{list}/nowhere.invalid");
    let (st, details) = s.get(&one, Some(&root)).await;
    assert_eq!(st, 200, "{details}");
    assert_eq!(details["destination"], "nowhere.invalid");
    assert_eq!(s.get(&format!("{one}/rooms"), Some(&root)).await.1, json!({"rooms": [], "total": 0}));
    let (st, v) = s.post(&format!("{one}/reset_connection"), Some(&root), json!({})).await;
    assert_eq!(st, 200, "{v}");
    // Refusals.
    assert_err(&s.get(&format!("{list}/unknown.test"), Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(
        &s.post(&format!("{list}/unknown.test/reset_connection"), Some(&root), json!({})).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.get(&format!("{list}?order_by=size"), Some(&root)).await, 400, "M_INVALID_PARAM");
    assert_err(&s.get(&format!("{list}?from=-1"), Some(&root)).await, 400, "M_INVALID_PARAM");
    assert_err(&s.get(list, Some(&alice)).await, 403, "M_FORBIDDEN");
}
