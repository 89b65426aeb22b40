//! Synapse's user admin API against the real server: listing with Synapse's filters, order and
//! paging; creating, changing, deactivating and reactivating accounts; passwords, whois, joined
//! rooms, free usernames, admin rights, suspension and devices; and the refusals (non-admins,
//! bad parameters, other servers' users, unknown users) with Synapse's status and errcode.

mod common;

use common::{TestServer, assert_err, urlencode};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A server admin made with shared-secret registration; answers their token.
async fn admin(s: &TestServer) -> String {
    let (st, v) = s.shared_secret_register("root", "password1", true).await;
    assert_eq!(st, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

fn names(list: &Value) -> Vec<String> {
    list["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_owned()).collect()
}

fn user_path(user: &str) -> String {
    format!("/_synapse/admin/v2/users/{}", urlencode(user))
}

#[tokio::test]
async fn accounts_are_listed_filtered_ordered_and_paged_as_synapse_does() {
    let s = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let root = admin(&s).await;
    let alice = s.user("alice").await;
    let (st, _) = s
        .put(
            "/_matrix/client/v3/profile/@alice:hearth.test/displayname",
            Some(&alice),
            json!({"displayname": "Alice Smith"}),
        )
        .await;
    assert_eq!(st, 200);
    for u in ["bob", "carol", "dave"] {
        s.user(u).await;
    }
    let (st, guest) = s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await;
    assert_eq!(st, 200, "{guest}");
    let guest_id = guest["user_id"].as_str().unwrap().to_owned();
    let (st, v) = s.post("/_synapse/admin/v1/deactivate/@carol:hearth.test", Some(&root), json!({})).await;
    assert_eq!((st, &v), (StatusCode::OK, &json!({"id_server_unbind_result": "success"})));
    let (st, v) = s.put(&user_path("@dave:hearth.test"), Some(&root), json!({"locked": true})).await;
    assert_eq!((st, &v["locked"]), (StatusCode::OK, &json!(true)), "{v}");

    // Only server admins.
    assert_err(&s.get("/_synapse/admin/v2/users", Some(&alice)).await, 403, "M_FORBIDDEN");
    assert_err(&s.get("/_synapse/admin/v2/users", None).await, 401, "M_MISSING_TOKEN");

    // By default: guests in, deactivated and locked accounts out, ordered by name.
    let (st, all) = s.get("/_synapse/admin/v2/users", Some(&root)).await;
    assert_eq!(st, 200, "{all}");
    let mut expected =
        vec!["@alice:hearth.test".to_owned(), "@bob:hearth.test".into(), "@root:hearth.test".into(), guest_id.clone()];
    expected.sort();
    assert_eq!(names(&all), expected);
    assert_eq!(all["total"], 4);
    assert!(all.get("next_token").is_none(), "{all}");
    let alice_row = all["users"].as_array().unwrap().iter().find(|u| u["name"] == "@alice:hearth.test").unwrap();
    assert_eq!(alice_row["displayname"], "Alice Smith");
    assert_eq!(
        (&alice_row["admin"], &alice_row["deactivated"], &alice_row["is_guest"]),
        (&json!(false), &json!(false), &json!(false))
    );
    assert!(alice_row["creation_ts"].as_i64().unwrap() > 1_000_000_000_000, "milliseconds in the list: {alice_row}");
    assert!(alice_row["last_seen_ts"].as_i64().is_some(), "{alice_row}");

    // Pages.
    let (_, first) = s.get("/_synapse/admin/v2/users?limit=2", Some(&root)).await;
    assert_eq!(
        (names(&first), &first["next_token"], &first["total"]),
        (expected[..2].to_vec(), &json!("2"), &json!(4))
    );
    let (_, second) = s.get("/_synapse/admin/v2/users?limit=2&from=2", Some(&root)).await;
    assert_eq!(names(&second), expected[2..].to_vec());
    assert!(second.get("next_token").is_none(), "the last page: {second}");

    // Filters.
    let get = |q: &'static str| {
        let root = root.clone();
        let s = &s;
        async move { s.get(&format!("/_synapse/admin/v2/users?{q}"), Some(&root)).await }
    };
    assert_eq!(names(&get("name=SMITH").await.1), ["@alice:hearth.test"], "the display name, any case");
    assert_eq!(names(&get("name=bo").await.1), ["@bob:hearth.test"], "the localpart");
    assert_eq!(names(&get("user_id=ali").await.1), ["@alice:hearth.test"]);
    assert!(!names(&get("guests=false").await.1).contains(&guest_id));
    assert_eq!(names(&get("admins=true").await.1), ["@root:hearth.test"]);
    assert_eq!(get("admins=false").await.1["total"], 3);
    assert!(names(&get("deactivated=true").await.1).contains(&"@carol:hearth.test".to_owned()));
    assert!(names(&get("locked=true").await.1).contains(&"@dave:hearth.test".to_owned()));
    let carol = get("deactivated=true&name=carol").await.1;
    assert_eq!(carol["users"][0]["deactivated"], true, "{carol}");

    // Orders.
    let (_, backwards) = get("dir=b").await;
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(names(&backwards), reversed);
    let (_, by_admin) = get("order_by=admin&dir=b").await;
    assert_eq!(names(&by_admin)[0], "@root:hearth.test");
    let (_, by_created) = get("order_by=creation_ts&guests=false").await;
    assert_eq!(names(&by_created), ["@root:hearth.test", "@alice:hearth.test", "@bob:hearth.test"], "oldest first");
    let (_, by_name) = get("order_by=displayname&guests=false").await;
    assert_eq!(
        names(&by_name),
        ["@alice:hearth.test", "@bob:hearth.test", "@root:hearth.test"],
        "Alice Smith, bob, root"
    );

    // Bad parameters.
    for q in ["order_by=password", "dir=sideways", "limit=-1", "from=abc", "guests=yes", "admins=1"] {
        let got = s.get(&format!("/_synapse/admin/v2/users?{q}"), Some(&root)).await;
        assert_err(&got, 400, "M_INVALID_PARAM");
    }
}

#[tokio::test]
async fn accounts_are_created_changed_deactivated_and_reactivated() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let alice = s.user("alice").await;
    let eve = "@eve:hearth.test";

    let (st, made) = s
        .put(&user_path(eve), Some(&root), json!({"password": "first-password1", "displayname": "Eve", "admin": false}))
        .await;
    assert_eq!(st, 201, "{made}");
    assert_eq!((&made["name"], &made["displayname"], &made["admin"]), (&json!(eve), &json!("Eve"), &json!(false)));
    assert!(made["creation_ts"].as_i64().unwrap() < 100_000_000_000, "seconds in the details: {made}");
    assert_eq!(made["threepids"], json!([]));
    let (st, login) = s.login("eve", "first-password1").await;
    assert_eq!(st, 200, "{login}");
    let eve_token = login["access_token"].as_str().unwrap().to_owned();
    let (st, got) = s.get(&user_path(eve), Some(&root)).await;
    assert_eq!((st, &got["name"]), (StatusCode::OK, &json!(eve)));

    // Eve joins alice's room; a new display name reaches it.
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&eve_token), json!({})).await.0, 200);
    let (st, changed) = s.put(&user_path(eve), Some(&root), json!({"displayname": "Eve Evans"})).await;
    assert_eq!((st, &changed["displayname"]), (StatusCode::OK, &json!("Eve Evans")), "{changed}");
    let (_, member) =
        s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/{}", urlencode(eve)), Some(&alice)).await;
    assert_eq!(member["displayname"], "Eve Evans", "{member}");

    // A new password keeps the sessions when asked to, and ends them by default.
    let (st, _) =
        s.put(&user_path(eve), Some(&root), json!({"password": "second-password2", "logout_devices": false})).await;
    assert_eq!(st, 200);
    assert_eq!(s.get("/_matrix/client/v3/account/whoami", Some(&eve_token)).await.0, 200);
    assert_eq!(s.login("eve", "second-password2").await.0, 200);
    let (st, _) = s.put(&user_path(eve), Some(&root), json!({"password": "third-password3"})).await;
    assert_eq!(st, 200);
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(&eve_token)).await, 401, "M_UNKNOWN_TOKEN");

    // Admin rights; nobody demotes themselves.
    let (_, promoted) = s.put(&user_path(eve), Some(&root), json!({"admin": true})).await;
    assert_eq!(promoted["admin"], true);
    assert_err(&s.put(&user_path("@root:hearth.test"), Some(&root), json!({"admin": false})).await, 400, "M_UNKNOWN");
    assert_err(&s.put(&user_path(eve), Some(&root), json!({"admin": "yes"})).await, 400, "M_BAD_JSON");

    // Impossible combinations are refused and change nothing.
    assert_err(
        &s.put(&user_path(eve), Some(&root), json!({"deactivated": true, "locked": true})).await,
        400,
        "M_INVALID_PARAM",
    );
    assert_err(&s.put(&user_path(eve), Some(&root), json!({"displayname": 7})).await, 400, "M_INVALID_PARAM");
    assert_eq!(s.get(&user_path(eve), Some(&root)).await.1["deactivated"], false);
    // Other servers' users, unknown users, bad IDs.
    assert_err(&s.get(&user_path("@eve:elsewhere.test"), Some(&root)).await, 400, "M_UNKNOWN");
    assert_err(&s.put(&user_path("@eve:elsewhere.test"), Some(&root), json!({})).await, 400, "M_UNKNOWN");
    assert_err(&s.get(&user_path("@nobody:hearth.test"), Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(&s.get(&user_path("not-a-user"), Some(&root)).await, 400, "M_INVALID_PARAM");
    assert_err(&s.put(&user_path("@Bad!:hearth.test"), Some(&root), json!({})).await, 400, "M_INVALID_USERNAME");
    assert_err(&s.get(&user_path(eve), Some(&alice)).await, 403, "M_FORBIDDEN");

    // Deactivation: out of the room, no sign-in, shown as deactivated.
    assert_err(
        &s.post("/_synapse/admin/v1/deactivate/@eve:hearth.test", Some(&root), json!({"erase": "yes"})).await,
        400,
        "M_BAD_JSON",
    );
    let (st, v) = s.post("/_synapse/admin/v1/deactivate/@eve:hearth.test", Some(&root), json!({"erase": true})).await;
    assert_eq!(st, 200, "{v}");
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{room}/joined_members"), Some(&alice)).await;
    assert!(members["joined"].get(eve).is_none(), "eve left the room: {members}");
    assert_err(&s.login("eve", "third-password3").await, 403, "M_FORBIDDEN");
    let (_, gone) = s.get(&user_path(eve), Some(&root)).await;
    assert_eq!((&gone["deactivated"], &gone["displayname"]), (&json!(true), &Value::Null), "{gone}");
    assert_err(
        &s.post("/_synapse/admin/v1/deactivate/@nobody:hearth.test", Some(&root), json!({})).await,
        404,
        "M_NOT_FOUND",
    );

    // Reactivated with a new password.
    let (st, back) =
        s.put(&user_path(eve), Some(&root), json!({"deactivated": false, "password": "fourth-password4"})).await;
    assert_eq!((st, &back["deactivated"]), (StatusCode::OK, &json!(false)), "{back}");
    assert_eq!(s.login("eve", "fourth-password4").await.0, 200);
}

#[tokio::test]
async fn passwords_whois_rooms_usernames_admin_rights_suspension_and_devices() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let alice = s.user("alice").await;
    let a = urlencode("@alice:hearth.test");

    // reset_password
    let path = format!("/_synapse/admin/v1/reset_password/{a}");
    assert_err(&s.post(&path, Some(&root), json!({})).await, 400, "M_MISSING_PARAM");
    let (st, v) = s.post(&path, Some(&root), json!({"new_password": "brand-new-pass1", "logout_devices": false})).await;
    assert_eq!((st, &v), (StatusCode::OK, &json!({})));
    assert_eq!(s.get("/_matrix/client/v3/account/whoami", Some(&alice)).await.0, 200, "sessions kept");
    assert_eq!(s.login("alice", "brand-new-pass1").await.0, 200);
    assert_err(
        &s.post(
            "/_synapse/admin/v1/reset_password/@nobody:hearth.test",
            Some(&root),
            json!({"new_password": "brand-new-pass1"}),
        )
        .await,
        404,
        "M_NOT_FOUND",
    );

    // whois and joined rooms
    let (st, who) = s.get(&format!("/_synapse/admin/v1/whois/{a}"), Some(&root)).await;
    assert_eq!((st, &who["user_id"]), (StatusCode::OK, &json!("@alice:hearth.test")), "{who}");
    assert_eq!(who["devices"].as_object().unwrap().len(), 2, "two sign-ins: {who}");
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let (_, joined) = s.get(&format!("/_synapse/admin/v1/users/{a}/joined_rooms"), Some(&root)).await;
    assert_eq!(joined, json!({"joined_rooms": [room["room_id"]], "total": 1}));

    // username_available
    let free = |name: &'static str| {
        let (s, root) = (&s, root.clone());
        async move { s.get(&format!("/_synapse/admin/v1/username_available?username={name}"), Some(&root)).await }
    };
    assert_eq!(free("newcomer").await, (StatusCode::OK, json!({"available": true})));
    assert_err(&free("alice").await, 400, "M_USER_IN_USE");
    assert_err(&free("bad%21name").await, 400, "M_INVALID_USERNAME");
    assert_err(&free("12345").await, 400, "M_INVALID_USERNAME");
    assert_err(&s.get("/_synapse/admin/v1/username_available", Some(&root)).await, 400, "M_MISSING_PARAM");

    // Admin rights
    let rights = format!("/_synapse/admin/v1/users/{a}/admin");
    assert_eq!(s.get(&rights, Some(&root)).await.1, json!({"admin": false}));
    assert_eq!(s.put(&rights, Some(&root), json!({"admin": true})).await.0, 200);
    assert_eq!(s.get(&rights, Some(&root)).await.1, json!({"admin": true}));
    assert_err(&s.put(&rights, Some(&root), json!({})).await, 400, "M_MISSING_PARAM");
    assert_err(
        &s.put("/_synapse/admin/v1/users/@root:hearth.test/admin", Some(&root), json!({"admin": false})).await,
        400,
        "M_UNKNOWN",
    );
    assert_eq!(s.put(&rights, Some(&root), json!({"admin": false})).await.0, 200);

    // Suspension: the answer names the user; a suspended user cannot send.
    let (st, v) = s.put(&format!("/_synapse/admin/v1/suspend/{a}"), Some(&root), json!({"suspend": true})).await;
    assert_eq!((st, v), (StatusCode::OK, json!({"user_@alice:hearth.test_suspended": true})));
    let room_id = room["room_id"].as_str().unwrap();
    let send = format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/s1");
    assert_err(&s.put(&send, Some(&alice), json!({"msgtype": "m.text", "body": "hi"})).await, 403, "M_USER_SUSPENDED");
    assert_err(
        &s.put(&format!("/_synapse/admin/v1/suspend/{a}"), Some(&root), json!({})).await,
        400,
        "M_MISSING_PARAM",
    );
    s.put(&format!("/_synapse/admin/v1/suspend/{a}"), Some(&root), json!({"suspend": false})).await;

    // Devices
    let (st, phone) = s
        .post(
            "/_matrix/client/v3/login",
            None,
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "brand-new-pass1", "device_id": "PHONE"}),
        )
        .await;
    assert_eq!(st, 200, "{phone}");
    let phone = phone["access_token"].as_str().unwrap().to_owned();
    let devices = format!("/_synapse/admin/v2/users/{a}/devices");
    let (_, list) = s.get(&devices, Some(&root)).await;
    assert_eq!(list["total"], 3, "registration, the sign-in after the reset, the phone: {list}");
    assert!(list["devices"].as_array().unwrap().iter().all(|d| d["user_id"] == "@alice:hearth.test"));
    let one = format!("{devices}/PHONE");
    assert_eq!(s.put(&one, Some(&root), json!({"display_name": "Alice's phone"})).await.0, 200);
    let (_, got) = s.get(&one, Some(&root)).await;
    assert_eq!((&got["device_id"], &got["display_name"]), (&json!("PHONE"), &json!("Alice's phone")), "{got}");
    assert_err(&s.put(&one, Some(&root), json!({"display_name": "x".repeat(101)})).await, 400, "M_TOO_LARGE");
    assert_err(&s.get(&format!("{devices}/NOPE"), Some(&root)).await, 404, "M_NOT_FOUND");
    assert_eq!(s.delete_call(&one, Some(&root)).await.0, 200);
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(&phone)).await, 401, "M_UNKNOWN_TOKEN");
    assert_eq!(s.delete_call(&one, Some(&root)).await.0, 200, "a device that is gone already");
    let (st, _) = s.post(&devices, Some(&root), json!({"device_id": "TABLET"})).await;
    assert_eq!(st, 201);
    assert_eq!(s.post(&devices, Some(&root), json!({"device_id": "TABLET"})).await.0, 201, "again");
    assert_eq!(s.get(&format!("{devices}/TABLET"), Some(&root)).await.0, 200);
    let batch = format!("/_synapse/admin/v2/users/{a}/delete_devices");
    assert_err(&s.post(&batch, Some(&root), json!({})).await, 400, "M_MISSING_PARAM");
    assert_eq!(s.post(&batch, Some(&root), json!({"devices": ["TABLET", "UNKNOWN"]})).await.0, 200);
    assert_eq!(s.get(&devices, Some(&root)).await.1["total"], 2);
    assert_err(&s.get("/_synapse/admin/v2/users/@nobody:hearth.test/devices", Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(&s.get(&devices, Some(&alice)).await, 403, "M_FORBIDDEN");
}

/// Threepids, external IDs and the user type are kept as Synapse keeps them: set with PUT,
/// shown by GET and the list, the threepids shown to the user in /account/3pid (who may remove
/// one); an address another account had moves, an external ID another account has is refused.
#[tokio::test]
async fn threepids_external_ids_and_user_types_are_kept() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let nana = s.user("nana").await;
    s.user("grandad").await;
    let nana_path = user_path("@nana:hearth.test");
    let body = json!({
        "threepids": [{"medium": "email", "address": "Nana@Family.Test"}, {"medium": "msisdn", "address": "447700900123"}],
        "external_ids": [{"auth_provider": "oidc", "external_id": "nana-1"}],
        "user_type": "bot",
    });
    let (st, v) = s.put(&nana_path, Some(&root), body).await;
    assert_eq!(st, 200, "{v}");
    let addresses: Vec<&str> =
        v["threepids"].as_array().unwrap().iter().map(|t| t["address"].as_str().unwrap()).collect();
    assert_eq!(addresses, ["nana@family.test", "447700900123"]);
    assert!(v["threepids"][0]["added_at"].as_i64().unwrap() > 1_700_000_000_000, "{v}");
    assert_eq!(v["external_ids"], json!([{"auth_provider": "oidc", "external_id": "nana-1"}]));
    assert_eq!(v["user_type"], "bot");
    assert_eq!(s.get(&nana_path, Some(&root)).await.1["threepids"], v["threepids"], "kept");
    let (_, list) = s.get("/_synapse/admin/v2/users?order_by=user_type&dir=b", Some(&root)).await;
    assert_eq!(list["users"][0]["name"], "@nana:hearth.test");
    assert_eq!(list["users"][0]["user_type"], "bot");

    // The user sees their addresses, and may remove one.
    let (_, mine) = s.get("/_matrix/client/v3/account/3pid", Some(&nana)).await;
    assert_eq!(mine["threepids"].as_array().unwrap().len(), 2, "{mine}");
    let (st, v) = s
        .post(
            "/_matrix/client/v3/account/3pid/delete",
            Some(&nana),
            json!({"medium": "msisdn", "address": "447700900123"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, mine) = s.get("/_matrix/client/v3/account/3pid", Some(&nana)).await;
    assert_eq!(mine["threepids"][0]["address"], "nana@family.test");
    assert_eq!(mine["threepids"].as_array().unwrap().len(), 1);

    // The address moves to another account; the external ID cannot.
    let grandad_path = user_path("@grandad:hearth.test");
    let (st, v) = s
        .put(&grandad_path, Some(&root), json!({"threepids": [{"medium": "email", "address": "nana@family.test"}]}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get(&nana_path, Some(&root)).await.1["threepids"], json!([]));
    let taken = json!({"external_ids": [{"auth_provider": "oidc", "external_id": "nana-1"}]});
    assert_err(&s.put(&grandad_path, Some(&root), taken).await, 409, "M_UNKNOWN");
    // Cleared.
    let (_, v) = s.put(&nana_path, Some(&root), json!({"user_type": null, "external_ids": []})).await;
    assert_eq!((&v["user_type"], &v["external_ids"]), (&Value::Null, &json!([])));

    // Refusals, changing nothing.
    assert_err(&s.put(&nana_path, Some(&root), json!({"user_type": "robot"})).await, 400, "M_UNKNOWN");
    assert_err(
        &s.put(&nana_path, Some(&root), json!({"threepids": [{"medium": "email"}]})).await,
        400,
        "M_MISSING_PARAM",
    );
    let bad_medium = json!({"threepids": [{"medium": "pigeon", "address": "roof"}]});
    assert_err(&s.put(&nana_path, Some(&root), bad_medium).await, 400, "M_INVALID_PARAM");
    let bad_email = json!({"threepids": [{"medium": "email", "address": "no-at-sign"}]});
    assert_err(&s.put(&nana_path, Some(&root), bad_email).await, 400, "M_INVALID_PARAM");
    assert_err(&s.put(&nana_path, Some(&root), json!({"threepids": "x"})).await, 400, "M_BAD_JSON");
    assert_eq!(s.get(&grandad_path, Some(&root)).await.1["threepids"][0]["address"], "nana@family.test");
}

/// A shadow-banned account's messages, state changes, redactions, invites, typing and rooms
/// with invites are answered as if done and reach nobody; joining still works; lifting the ban
/// lets it talk again.
#[tokio::test]
async fn a_shadow_banned_account_is_answered_and_heard_by_nobody() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let mallory = s.user("mallory").await;
    let bob = s.user("bob").await;
    s.user("carol").await;
    let (_, room) =
        s.post("/_matrix/client/v3/createRoom", Some(&bob), json!({"preset": "public_chat", "name": "Family"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&mallory), json!({})).await.0, 200);
    let ban = "/_synapse/admin/v1/users/@mallory:hearth.test/shadow_ban";
    assert_err(&s.post(ban, Some(&bob), json!({})).await, 403, "M_FORBIDDEN");
    assert_err(
        &s.post("/_synapse/admin/v1/users/@nobody:hearth.test/shadow_ban", Some(&root), json!({})).await,
        404,
        "M_NOT_FOUND",
    );
    assert_eq!(s.post(ban, Some(&root), json!({})).await, (StatusCode::OK, json!({})));
    let (_, shown) = s.get(&user_path("@mallory:hearth.test"), Some(&root)).await;
    assert_eq!(shown["shadow_banned"], true);
    let bob_since =
        s.get("/_matrix/client/v3/sync?timeout=0", Some(&bob)).await.1["next_batch"].as_str().unwrap().to_owned();

    let (st, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/spam1"),
            Some(&mallory),
            json!({"msgtype": "m.text", "body": "spam"}),
        )
        .await;
    assert_eq!(st, 200, "{sent}");
    let fake = sent["event_id"].as_str().unwrap();
    assert!(fake.starts_with('$'));
    assert_err(&s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{fake}"), Some(&bob)).await, 404, "M_NOT_FOUND");
    let (st, _) = s
        .put(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/"), Some(&mallory), json!({"topic": "spam"}))
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            Some(&mallory),
            json!({"user_id": "@carol:hearth.test"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/typing/@mallory:hearth.test"),
            Some(&mallory),
            json!({"typing": true, "timeout": 30000}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, made) =
        s.post("/_matrix/client/v3/createRoom", Some(&mallory), json!({"invite": ["@bob:hearth.test"]})).await;
    assert_eq!(st, 200, "{made}");
    let made = made["room_id"].as_str().unwrap();
    assert_err(&s.get(&format!("/_synapse/admin/v1/rooms/{made}"), Some(&root)).await, 404, "M_NOT_FOUND");

    let heard = s.get(&format!("/_matrix/client/v3/sync?timeout=0&since={bob_since}"), Some(&bob)).await.1;
    let block = &heard["rooms"]["join"][&room];
    let events = block["timeline"]["events"].as_array().cloned().unwrap_or_default();
    assert!(events.is_empty(), "bob heard nothing: {heard}");
    assert!(block["ephemeral"]["events"].as_array().is_none_or(|e| e.is_empty()), "no typing: {heard}");
    assert!(heard["rooms"]["invite"].as_object().is_none_or(|i| i.is_empty()), "{heard}");
    let (_, topic) = s.get(&format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/"), Some(&bob)).await;
    assert_ne!(topic["topic"], "spam");
    let (_, carol_rooms) = s.get("/_synapse/admin/v1/users/@carol:hearth.test/joined_rooms", Some(&root)).await;
    assert_eq!(carol_rooms["total"], 0);

    // Lifted: heard again.
    assert_eq!(s.delete_call(ban, Some(&root)).await.0, 200);
    let (st, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/hello"),
            Some(&mallory),
            json!({"msgtype": "m.text", "body": "sorry"}),
        )
        .await;
    assert_eq!(st, 200);
    let real = sent["event_id"].as_str().unwrap();
    assert_eq!(s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{real}"), Some(&bob)).await.0, 200);
}

/// `users/{userId}/login`: an admin acts as a user with a token of their own, on a device
/// nobody sees (not in the user's devices, not announced to the people they share rooms with),
/// which holds no keys, ends at `valid_until_ms`, and whose logout leaves the user signed in.
#[tokio::test]
async fn an_admin_acts_as_a_user_on_a_hidden_device() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let nana = s.user("nana").await;
    let bob = s.user("bob").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&nana), json!({"preset": "public_chat"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await.0, 200);
    let bob_since =
        s.get("/_matrix/client/v3/sync?timeout=0", Some(&bob)).await.1["next_batch"].as_str().unwrap().to_owned();
    let devices_before = s.get("/_matrix/client/v3/devices", Some(&nana)).await.1;

    let path = "/_synapse/admin/v1/users/@nana:hearth.test/login";
    let (st, v) = s.post(path, Some(&root), json!({})).await;
    assert_eq!(st, 200, "{v}");
    let puppet = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/_matrix/client/v3/account/whoami", Some(&puppet)).await.1["user_id"], "@nana:hearth.test");
    let (st, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/p1"),
            Some(&puppet),
            json!({"msgtype": "m.text", "body": "from the admin"}),
        )
        .await;
    assert_eq!(st, 200, "{sent}");
    let (_, event) = s
        .get(&format!("/_matrix/client/v3/rooms/{room}/event/{}", sent["event_id"].as_str().unwrap()), Some(&bob))
        .await;
    assert_eq!(event["sender"], "@nana:hearth.test");
    // Nobody sees a new device.
    assert_eq!(s.get("/_matrix/client/v3/devices", Some(&nana)).await.1, devices_before);
    let (_, listed) = s.get("/_synapse/admin/v2/users/@nana:hearth.test/devices", Some(&root)).await;
    assert_eq!(listed["total"], 1, "{listed}");
    let heard = s.get(&format!("/_matrix/client/v3/sync?timeout=0&since={bob_since}"), Some(&bob)).await.1;
    let changed = heard["device_lists"]["changed"].as_array().cloned().unwrap_or_default();
    assert!(!changed.contains(&json!("@nana:hearth.test")), "{heard}");
    let keys = json!({"one_time_keys": {"signed_curve25519:AAAA": {"key": "x", "signatures": {}}}});
    assert_err(&s.post("/_matrix/client/v3/keys/upload", Some(&puppet), keys).await, 400, "M_INVALID_PARAM");
    // Its logout ends only itself.
    assert_eq!(s.post("/_matrix/client/v3/logout", Some(&puppet), json!({})).await.0, 200);
    assert_eq!(s.get("/_matrix/client/v3/account/whoami", Some(&puppet)).await.0, 401);
    assert_eq!(s.get("/_matrix/client/v3/account/whoami", Some(&nana)).await.0, 200);

    // A token that has run out; no body at all is fine too.
    let (_, v) = s.post(path, Some(&root), json!({"valid_until_ms": 1_000})).await;
    let expired = v["access_token"].as_str().unwrap();
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(expired)).await, 401, "M_UNKNOWN_TOKEN");
    let (st, _) = s.call(reqwest::Method::POST, path, Some(&root), None).await;
    assert_eq!(st, 200);

    // Refusals.
    assert_err(&s.post(path, Some(&bob), json!({})).await, 403, "M_FORBIDDEN");
    assert_err(
        &s.post("/_synapse/admin/v1/users/@root:hearth.test/login", Some(&root), json!({})).await,
        400,
        "M_UNKNOWN",
    );
    assert_err(
        &s.post("/_synapse/admin/v1/users/@x:elsewhere.test/login", Some(&root), json!({})).await,
        400,
        "M_UNKNOWN",
    );
    assert_err(
        &s.post("/_synapse/admin/v1/users/@nobody:hearth.test/login", Some(&root), json!({})).await,
        404,
        "M_NOT_FOUND",
    );
    assert_err(&s.post(path, Some(&root), json!({"valid_until_ms": "soon"})).await, 400, "M_UNKNOWN");
}

/// `users/{userId}/pushers` (synapse-admin's user page lists them).
#[tokio::test]
async fn admins_list_a_users_pushers() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let nana = s.user("nana").await;
    let pusher = json!({
        "kind": "http", "app_id": "org.example.app", "pushkey": "nana-phone", "app_display_name": "Example",
        "device_display_name": "Nana's phone", "lang": "en", "data": {"url": "https://push.example.org/_matrix/push/v1/notify"},
    });
    let (st, v) = s.post("/_matrix/client/v3/pushers/set", Some(&nana), pusher).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.get("/_synapse/admin/v1/users/@nana:hearth.test/pushers", Some(&root)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total"], 1);
    let p = &v["pushers"][0];
    assert_eq!(
        (&p["pushkey"], &p["app_id"], &p["kind"]),
        (&json!("nana-phone"), &json!("org.example.app"), &json!("http"))
    );
    assert_eq!(p["data"]["url"], "https://push.example.org/_matrix/push/v1/notify");
    assert_eq!(
        s.get("/_synapse/admin/v1/users/@root:hearth.test/pushers", Some(&root)).await.1,
        json!({"pushers": [], "total": 0})
    );
    assert_err(&s.get("/_synapse/admin/v1/users/@nobody:hearth.test/pushers", Some(&root)).await, 404, "M_NOT_FOUND");
    assert_err(&s.get("/_synapse/admin/v1/users/@x:elsewhere.test/pushers", Some(&root)).await, 400, "M_UNKNOWN");
    assert_err(&s.get("/_synapse/admin/v1/users/@root:hearth.test/pushers", Some(&nana)).await, 403, "M_FORBIDDEN");
}

/// An account erased on deactivation: who was in the room when its messages were sent still
/// reads them; who joined later sees them redacted, in every place a client reads a message;
/// reactivation lifts it. Deactivating without `erase` (and the client's own deactivation
/// without it) hides nothing.
#[tokio::test]
async fn an_erased_accounts_messages_are_redacted_for_those_who_were_not_there() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    let alice = s.user("alice").await;
    let erin = s.user("erin").await;
    let dave = s.user("dave").await;
    let room = s.create_room(&alice, json!({"preset": "public_chat", "name": "Family"})).await;
    for t in [&erin, &dave] {
        assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(t), json!({})).await.0, 200);
    }
    let recipe = s.say(&erin, &room, "Erin's secret recipe").await;
    let kept = s.say(&dave, &room, "Dave's note").await;
    // Bob joins after both messages (the room's history is shared, so he reads them).
    let bob = s.user("bob").await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await.0, 200);
    let body_of = async |token: &str, event: &str| {
        let (st, v) = s.get(&format!("/_matrix/client/v3/rooms/{room}/event/{event}"), Some(token)).await;
        assert_eq!(st, 200, "{v}");
        v["content"].clone()
    };
    assert_eq!(body_of(&bob, &recipe).await["body"], "Erin's secret recipe");

    // Dave deactivates himself without erase; Erin is erased by the admin.
    let (st, v) = s
        .post(
            "/_matrix/client/v3/account/deactivate",
            Some(&dave),
            json!({"auth": {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "dave"},
                "password": "password1"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.post("/_synapse/admin/v1/deactivate/@erin:hearth.test", Some(&root), json!({"erase": true})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get(&user_path("@erin:hearth.test"), Some(&root)).await.1["erased"], true);
    assert_eq!(s.get(&user_path("@dave:hearth.test"), Some(&root)).await.1["erased"], false);
    let (_, listed) = s.get("/_synapse/admin/v2/users?deactivated=true", Some(&root)).await;
    let erin_listed = listed["users"].as_array().unwrap().iter().find(|u| u["name"] == "@erin:hearth.test").unwrap();
    assert_eq!(erin_listed["erased"], true, "{listed}");

    // Alice was there: she still reads it. Bob was not: the message is there, emptied.
    assert_eq!(body_of(&alice, &recipe).await["body"], "Erin's secret recipe");
    assert_eq!(body_of(&bob, &recipe).await, json!({}));
    assert_eq!(body_of(&bob, &kept).await["body"], "Dave's note");
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50"), Some(&bob)).await;
    let in_page = |id: &str| page["chunk"].as_array().unwrap().iter().find(|e| e["event_id"] == id).cloned();
    assert_eq!(in_page(&recipe).expect("still in the timeline")["content"], json!({}), "{page}");
    assert_eq!(in_page(&kept).unwrap()["content"]["body"], "Dave's note");
    let (_, ctx) = s.get(&format!("/_matrix/client/v3/rooms/{room}/context/{kept}?limit=10"), Some(&bob)).await;
    let before = ctx["events_before"].as_array().unwrap();
    let shown = before.iter().find(|e| e["event_id"] == recipe.as_str()).expect("in the context");
    assert_eq!(shown["content"], json!({}), "{ctx}");
    let (_, sync) = s.get("/_matrix/client/v3/sync?timeout=0", Some(&bob)).await;
    let timeline = sync["rooms"]["join"][&room]["timeline"]["events"].as_array().unwrap();
    if let Some(e) = timeline.iter().find(|e| e["event_id"] == recipe.as_str()) {
        assert_eq!(e["content"], json!({}), "{e}");
    }
    let (_, found) = s
        .post(
            "/_matrix/client/v3/search",
            Some(&bob),
            json!({"search_categories": {"room_events": {"search_term": "recipe"}}}),
        )
        .await;
    for r in found["search_categories"]["room_events"]["results"].as_array().unwrap() {
        assert_ne!(r["result"]["content"]["body"], "Erin's secret recipe", "{found}");
    }

    // Reactivated, she is not erased any more.
    let (st, v) = s
        .put(&user_path("@erin:hearth.test"), Some(&root), json!({"deactivated": false, "password": "new-password-2"}))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["erased"], false, "{v}");
    assert_eq!(body_of(&bob, &recipe).await["body"], "Erin's secret recipe");
}
