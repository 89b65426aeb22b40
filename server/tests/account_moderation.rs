//! Account locking and suspension (spec: "Account moderation", `/v1/admin/lock` and
//! `/v1/admin/suspend`), as the locked or suspended user's client and the admin's see them.

mod common;

use common::{SERVER_NAME, TestServer, assert_err};
use serde_json::{Value, json};

async fn admin_and_alice(s: &TestServer) -> (String, String) {
    let (st, admin) = s.shared_secret_register("root", "password1", true).await;
    assert_eq!(st, 200, "{admin}");
    (admin["access_token"].as_str().unwrap().to_owned(), s.user("alice").await)
}

fn alice() -> String {
    format!("@alice:{SERVER_NAME}")
}

async fn room(s: &TestServer, token: &str) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), json!({"preset": "public_chat"})).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

async fn say(s: &TestServer, token: &str, room: &str, txn: &str) -> (reqwest::StatusCode, Value) {
    s.put(
        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
        Some(token),
        json!({"msgtype": "m.text", "body": txn}),
    )
    .await
}

#[tokio::test]
async fn only_admins_lock_and_suspend_and_only_ordinary_local_accounts() {
    let s = TestServer::start().await;
    let (admin, alice_token) = admin_and_alice(&s).await;
    let (_, second) = s.shared_secret_register("root2", "password1", true).await;
    let second = second["access_token"].as_str().unwrap();
    for kind in ["lock", "suspend"] {
        let path = |who: &str| format!("/_matrix/client/v1/admin/{kind}/{who}");
        let field = if kind == "lock" { "locked" } else { "suspended" };
        // Not an admin: refused before any lookup, so nothing is learnt about who exists.
        assert_err(&s.get(&path(&alice()), Some(&alice_token)).await, 403, "M_FORBIDDEN");
        assert_err(&s.get(&path(&format!("@nobody:{SERVER_NAME}")), Some(&alice_token)).await, 403, "M_FORBIDDEN");
        assert_err(&s.put(&path(&alice()), Some(&alice_token), json!({field: true})).await, 403, "M_FORBIDDEN");
        // An admin: unknown, remote, oneself and other admins.
        assert_err(&s.get(&path(&format!("@nobody:{SERVER_NAME}")), Some(&admin)).await, 404, "M_NOT_FOUND");
        assert_err(&s.get(&path("@bob:elsewhere.example"), Some(&admin)).await, 400, "M_INVALID_PARAM");
        assert_err(
            &s.put(&path(&format!("@root:{SERVER_NAME}")), Some(&admin), json!({field: true})).await,
            403,
            "M_FORBIDDEN",
        );
        assert_err(
            &s.put(&path(&format!("@root2:{SERVER_NAME}")), Some(&admin), json!({field: true})).await,
            403,
            "M_FORBIDDEN",
        );
        assert_eq!(s.get(&path(&format!("@root:{SERVER_NAME}")), Some(second)).await.1, json!({field: false}));
        assert_eq!(s.get(&path(&alice()), Some(&admin)).await.1, json!({field: false}));
    }
    // Admins are told they may moderate accounts; others are not.
    let (_, caps) = s.get("/_matrix/client/v3/capabilities", Some(&admin)).await;
    assert_eq!(caps["capabilities"]["m.account_moderation"], json!({"suspend": true, "lock": true}), "{caps}");
    let (_, caps) = s.get("/_matrix/client/v3/capabilities", Some(&alice_token)).await;
    assert!(caps["capabilities"].get("m.account_moderation").is_none(), "{caps}");
}

#[tokio::test]
async fn a_locked_account_can_only_log_out_and_keeps_its_session_for_the_unlock() {
    let s = TestServer::start().await;
    let (admin, alice_token) = admin_and_alice(&s).await;
    let second_device = s.login("alice", "password1").await.1["access_token"].as_str().unwrap().to_owned();
    let lock = format!("/_matrix/client/v1/admin/lock/{}", alice());
    assert_eq!(
        s.put(&lock, Some(&admin), json!({"locked": true})).await,
        (reqwest::StatusCode::OK, json!({"locked": true}))
    );
    assert_eq!(s.get(&lock, Some(&admin)).await.1, json!({"locked": true}));

    let locked = s.get("/_matrix/client/v3/sync?timeout=0", Some(&alice_token)).await;
    assert_err(&locked, 401, "M_USER_LOCKED");
    assert_eq!(locked.1["soft_logout"], true, "{}", locked.1);
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(&alice_token)).await, 401, "M_USER_LOCKED");
    // No new session either, but only the right password learns that the account is locked.
    assert_err(&s.login("alice", "password1").await, 401, "M_USER_LOCKED");
    assert_err(&s.login("alice", "wrong-password").await, 403, "M_FORBIDDEN");
    // Logging out is allowed, and really ends that session.
    assert_eq!(s.post("/_matrix/client/v3/logout", Some(&second_device), json!({})).await.0, 200);

    assert_eq!(s.put(&lock, Some(&admin), json!({"locked": false})).await.1, json!({"locked": false}));
    let (st, me) = s.get("/_matrix/client/v3/account/whoami", Some(&alice_token)).await;
    assert_eq!((st.as_u16(), me["user_id"].as_str()), (200, Some(alice().as_str())), "the session survived the lock");
    assert_err(&s.get("/_matrix/client/v3/account/whoami", Some(&second_device)).await, 401, "M_UNKNOWN_TOKEN");
    assert_eq!(s.login("alice", "password1").await.0, 200);
}

#[tokio::test]
async fn a_suspended_account_reads_and_tidies_up_but_does_not_act() {
    let s = TestServer::start().await;
    let (admin, alice_token) = admin_and_alice(&s).await;
    let bob = s.user("bob").await;
    let mine = room(&s, &alice_token).await;
    let bobs = room(&s, &bob).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{mine}"), Some(&bob), json!({})).await.0, 200);
    let own = say(&s, &alice_token, &mine, "before").await.1["event_id"].as_str().unwrap().to_owned();
    let bobs_msg = say(&s, &bob, &mine, "from bob").await.1["event_id"].as_str().unwrap().to_owned();

    let suspend = format!("/_matrix/client/v1/admin/suspend/{}", alice());
    assert_eq!(s.put(&suspend, Some(&admin), json!({"suspended": true})).await.1, json!({"suspended": true}));
    assert_eq!(s.get(&suspend, Some(&admin)).await.1, json!({"suspended": true}));

    let refused = |got: (reqwest::StatusCode, Value)| assert_err(&got, 403, "M_USER_SUSPENDED");
    refused(say(&s, &alice_token, &mine, "during").await);
    refused(
        s.put(
            &format!("/_matrix/client/v3/rooms/{mine}/state/m.room.topic/"),
            Some(&alice_token),
            json!({"topic": "t"}),
        )
        .await,
    );
    refused(s.post(&format!("/_matrix/client/v3/join/{bobs}"), Some(&alice_token), json!({})).await);
    refused(s.post(&format!("/_matrix/client/v3/rooms/{bobs}/join"), Some(&alice_token), json!({})).await);
    refused(
        s.post(
            &format!("/_matrix/client/v3/rooms/{mine}/invite"),
            Some(&alice_token),
            json!({"user_id": format!("@root:{SERVER_NAME}")}),
        )
        .await,
    );
    refused(s.post("/_matrix/client/v3/createRoom", Some(&alice_token), json!({})).await);
    refused(
        s.put(
            &format!("/_matrix/client/v3/profile/{}/displayname", alice()),
            Some(&alice_token),
            json!({"displayname": "A"}),
        )
        .await,
    );
    // Even as the room's admin she may not remove Bob's message, but she may remove her own.
    refused(
        s.put(&format!("/_matrix/client/v3/rooms/{mine}/redact/{bobs_msg}/r1"), Some(&alice_token), json!({})).await,
    );
    assert_eq!(
        s.put(&format!("/_matrix/client/v3/rooms/{mine}/redact/{own}/r2"), Some(&alice_token), json!({})).await.0,
        200
    );
    // She still reads: sync and history.
    assert_eq!(s.get("/_matrix/client/v3/sync?timeout=0", Some(&alice_token)).await.0, 200);
    let (st, msgs) = s.get(&format!("/_matrix/client/v3/rooms/{mine}/messages?dir=b"), Some(&alice_token)).await;
    assert_eq!(st, 200);
    assert!(msgs.to_string().contains("from bob"), "{msgs}");
    // Nothing she was refused reached the room.
    assert!(!msgs.to_string().contains("during"), "{msgs}");

    assert_eq!(s.put(&suspend, Some(&admin), json!({"suspended": false})).await.1, json!({"suspended": false}));
    assert_eq!(say(&s, &alice_token, &mine, "after").await.0, 200);
    // And leaving is always allowed: suspend again and leave.
    s.put(&suspend, Some(&admin), json!({"suspended": true})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{mine}/leave"), Some(&alice_token), json!({})).await.0, 200);
}
