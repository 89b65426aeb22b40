//! Server notices (Synapse's `server_notices` and `send_server_notice`): the admin tells a user
//! something through a room shared with a system account, tagged `m.server_notice`, whose
//! invite cannot be rejected and where the user cannot write; the system name is reserved.

mod common;

use common::{TestServer, assert_err, urlencode};
use reqwest::StatusCode;
use serde_json::json;

async fn admin(s: &TestServer) -> String {
    let (_, root) = s.shared_secret_register("root", "password1", true).await;
    root["access_token"].as_str().unwrap().to_owned()
}

const SEND: &str = "/_synapse/admin/v1/send_server_notice";

#[tokio::test]
async fn notices_are_refused_while_not_configured() {
    let s = TestServer::start().await;
    let root = admin(&s).await;
    s.user("alice").await;
    let got = s
        .post(
            SEND,
            Some(&root),
            json!({"user_id": "@alice:hearth.test", "content": {"msgtype": "m.text", "body": "hi"}}),
        )
        .await;
    assert_err(&got, 400, "M_UNKNOWN");
    assert!(got.1["error"].as_str().unwrap().contains("not enabled"), "{}", got.1);
}

#[tokio::test]
async fn the_admin_tells_a_user_through_their_notices_room() {
    let s = TestServer::start_with(|c| {
        c.server_notices.system_mxid_localpart = Some("notices".to_owned());
        c.server_notices.system_mxid_display_name = Some("Hearth".to_owned());
        c.server_notices.room_name = "Family server news".to_owned();
        c.server_notices.room_topic = Some("Maintenance and changes".to_owned());
    })
    .await;
    let root = admin(&s).await;
    let alice = s.user("alice").await;
    let notice = |body: &str| json!({"user_id": "@alice:hearth.test", "content": {"msgtype": "m.text", "body": body}});

    assert_err(&s.post(SEND, Some(&alice), notice("hi")).await, 403, "M_FORBIDDEN");
    assert_err(&s.post(SEND, Some(&root), json!({"content": {}})).await, 400, "M_MISSING_PARAM");
    assert_err(&s.post(SEND, Some(&root), json!({"user_id": "@alice:hearth.test"})).await, 400, "M_MISSING_PARAM");
    assert_err(
        &s.post(SEND, Some(&root), json!({"user_id": "@alice:elsewhere.test", "content": {}})).await,
        400,
        "M_UNKNOWN",
    );
    assert_err(
        &s.post(SEND, Some(&root), json!({"user_id": "@nobody:hearth.test", "content": {}})).await,
        404,
        "M_NOT_FOUND",
    );

    let (st, first) = s.post(SEND, Some(&root), notice("The server restarts at 22:00 for an update.")).await;
    assert_eq!(st, 200, "{first}");
    assert!(first["event_id"].as_str().unwrap().starts_with('$'));
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&alice)).await;
    let invites = sync["rooms"]["invite"].as_object().unwrap();
    assert_eq!(invites.len(), 1, "{sync}");
    let (room, invite) = invites.iter().next().unwrap();
    let state = invite["invite_state"]["events"].as_array().unwrap();
    assert!(
        state.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Family server news"),
        "{invite}"
    );
    let (_, tags) = s
        .get(
            &format!("/_matrix/client/v3/user/{}/rooms/{}/tags", urlencode("@alice:hearth.test"), urlencode(room)),
            Some(&alice),
        )
        .await;
    assert!(tags["tags"].get("m.server_notice").is_some(), "{tags}");

    // The invite cannot be rejected; joined, the notice is there, from the system account, and
    // alice cannot write.
    assert_err(
        &s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&alice), json!({})).await,
        403,
        "M_CANNOT_LEAVE_SERVER_NOTICE_ROOM",
    );
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&alice), json!({})).await.0, 200);
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=20"), Some(&alice)).await;
    let message = page["chunk"].as_array().unwrap().iter().find(|e| e["type"] == "m.room.message").unwrap();
    assert_eq!(
        (&message["sender"], &message["content"]["body"]),
        (&json!("@notices:hearth.test"), &json!("The server restarts at 22:00 for an update."))
    );
    let (_, profile) = s.get("/_matrix/client/v3/profile/@notices:hearth.test", None).await;
    assert_eq!(profile["displayname"], "Hearth");
    let write = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t1");
    assert_err(&s.put(&write, Some(&alice), json!({"msgtype": "m.text", "body": "ok"})).await, 403, "M_FORBIDDEN");

    // The next notice goes to the same room.
    let (st, _) = s.post(SEND, Some(&root), notice("Done, thanks for waiting.")).await;
    assert_eq!(st, 200);
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=1"), Some(&alice)).await;
    assert_eq!(page["chunk"][0]["content"]["body"], "Done, thanks for waiting.");
    let (_, rooms) = s.get("/_matrix/client/v3/joined_rooms", Some(&alice)).await;
    assert_eq!(rooms["joined_rooms"].as_array().unwrap().len(), 1);

    // With a transaction ID, a retry answers the first notice instead of sending another.
    let put = "/_synapse/admin/v1/send_server_notice/maintenance-1";
    let (st, once) = s.put(put, Some(&root), notice("Backups moved to the new disk.")).await;
    assert_eq!(st, 200, "{once}");
    let (_, again) = s.put(put, Some(&root), notice("Backups moved to the new disk.")).await;
    assert_eq!(again["event_id"], once["event_id"]);
    let (_, page) = s.get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=3"), Some(&alice)).await;
    let bodies: Vec<&str> =
        page["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert_eq!(bodies[..2], ["Backups moved to the new disk.", "Done, thanks for waiting."], "sent once");

    // The system account is not anyone's to take or to invite.
    let (st, v) = s
        .post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": "notices", "password": "password1", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!((st, v["errcode"].as_str()), (StatusCode::BAD_REQUEST, Some("M_EXCLUSIVE")), "{v}");
    let (_, other) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let other = other["room_id"].as_str().unwrap();
    let invite = format!("/_matrix/client/v3/rooms/{other}/invite");
    assert_err(&s.post(&invite, Some(&alice), json!({"user_id": "@notices:hearth.test"})).await, 403, "M_FORBIDDEN");
}
