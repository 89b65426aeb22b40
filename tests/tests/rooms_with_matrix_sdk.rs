//! Two family members talk through the `matrix-sdk` crate: a room with an invite, joining,
//! messages both ways, reading history.

use hearth_blackbox::{client, plain_bodies, start};
use matrix_sdk::{
    RoomState,
    config::SyncSettings,
    room::MessagesOptions,
    ruma::{UserId, api::client::room::create_room, events::room::message::RoomMessageEventContent},
};

#[tokio::test]
async fn two_people_invite_join_and_exchange_messages() {
    let server = start(async |c| {
        hearth_server::register_user_offline(c.clone(), "alice", "password-a".into(), false).await.unwrap();
        hearth_server::register_user_offline(c.clone(), "bob", "password-b".into(), false).await.unwrap();
    })
    .await;
    let alice = client(&server).await;
    alice.matrix_auth().login_username("alice", "password-a").send().await.unwrap();
    let bob = client(&server).await;
    bob.matrix_auth().login_username("bob", "password-b").send().await.unwrap();
    let bob_id = UserId::parse("@bob:blackbox.test").unwrap();

    let mut req = create_room::v3::Request::new();
    req.name = Some("Tea".into());
    req.invite = vec![bob_id.clone()];
    req.is_direct = true;
    let room = alice.create_room(req).await.expect("room created");

    bob.sync_once(SyncSettings::default()).await.expect("bob syncs");
    let invited = bob.get_room(room.room_id()).expect("bob sees the invite");
    assert_eq!(invited.state(), RoomState::Invited);
    invited.join().await.expect("bob joins");

    room.send(RoomMessageEventContent::text_plain("Tea at five?")).await.expect("alice sends");
    bob.sync_once(SyncSettings::default()).await.unwrap();
    let bobs_room = bob.get_room(room.room_id()).unwrap();
    assert_eq!(bobs_room.state(), RoomState::Joined);
    assert_eq!(bobs_room.name().as_deref(), Some("Tea"));
    bobs_room.send(RoomMessageEventContent::text_plain("Yes please")).await.expect("bob answers");

    alice.sync_once(SyncSettings::default()).await.unwrap();
    let history = room.messages(MessagesOptions::backward()).await.expect("history");
    assert_eq!(plain_bodies(&history.chunk), ["Yes please", "Tea at five?"]);
    assert_eq!(room.joined_members_count(), 2);
}

/// The everyday-chat scenario of a DM, through the client library Element X is built on: edit,
/// react, reply in a thread, redact, receipts, typing, paging back through 1,000 messages, and
/// leaving and coming back.
#[tokio::test]
async fn a_dm_with_edits_reactions_threads_redactions_receipts_and_long_history() {
    use matrix_sdk::ruma::{
        OwnedEventId, api::client::receipt::create_receipt::v3::ReceiptType, events::receipt::ReceiptThread,
    };
    use serde_json::json;

    let server = start(async |c| {
        hearth_server::register_user_offline(c.clone(), "mum", "password-m".into(), false).await.unwrap();
        hearth_server::register_user_offline(c.clone(), "kid", "password-k".into(), false).await.unwrap();
    })
    .await;
    let mum = client(&server).await;
    mum.matrix_auth().login_username("mum", "password-m").send().await.unwrap();
    let kid = client(&server).await;
    kid.matrix_auth().login_username("kid", "password-k").send().await.unwrap();
    let kid_id = UserId::parse("@kid:blackbox.test").unwrap();

    let mut req = create_room::v3::Request::new();
    req.invite = vec![kid_id.clone()];
    req.is_direct = true;
    req.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
    let room = mum.create_room(req).await.unwrap();
    kid.sync_once(SyncSettings::default()).await.unwrap();
    kid.get_room(room.room_id()).unwrap().join().await.unwrap();
    let kids_room = kid.get_room(room.room_id()).unwrap();

    let original: OwnedEventId =
        room.send(RoomMessageEventContent::text_plain("Homewrok done?")).await.unwrap().response.event_id;
    room.send_raw(
        "m.room.message",
        json!({"msgtype": "m.text", "body": "* Homework done?", "m.new_content": {"msgtype": "m.text", "body": "Homework done?"},
               "m.relates_to": {"rel_type": "m.replace", "event_id": original}}),
    )
    .await
    .expect("edit");
    kids_room
        .send_raw(
            "m.reaction",
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": original, "key": "✅"}}),
        )
        .await
        .expect("reaction");
    kids_room
        .send_raw(
            "m.room.message",
            json!({"msgtype": "m.text", "body": "Almost", "m.relates_to": {"rel_type": "m.thread", "event_id": original, "is_falling_back": true, "m.in_reply_to": {"event_id": original}}}),
        )
        .await
        .expect("thread reply");
    let oops = kids_room.send(RoomMessageEventContent::text_plain("wrong chat")).await.unwrap().response.event_id;
    kids_room.redact(&oops, Some("sorry"), None).await.expect("redact own message");
    kids_room
        .send_single_receipt(ReceiptType::Read, ReceiptThread::Unthreaded, original.clone())
        .await
        .expect("receipt");
    kids_room.typing_notice(true).await.expect("typing");

    // What mum's client sees of it.
    let ev = room.event(&original, None).await.expect("original");
    let json: serde_json::Value = ev.raw().deserialize_as().unwrap();
    let relations = &json["unsigned"]["m.relations"];
    assert_eq!(relations["m.replace"]["content"]["m.new_content"]["body"], "Homework done?", "{json}");
    assert_eq!(relations["m.thread"]["count"], 1);
    let redacted: serde_json::Value = room.event(&oops, None).await.unwrap().raw().deserialize_as().unwrap();
    assert_eq!(redacted["content"], json!({}));
    mum.sync_once(SyncSettings::default()).await.unwrap();
    let receipt = room
        .load_user_receipt(matrix_sdk::ruma::events::receipt::ReceiptType::Read, ReceiptThread::Unthreaded, &kid_id)
        .await
        .unwrap();
    assert_eq!(receipt.map(|(id, _)| id), Some(original.clone()));

    // A long history: the kid's client pages back through all of it.
    for i in 0..1000 {
        room.send_raw("m.room.message", json!({"msgtype": "m.text", "body": format!("msg {i}")})).await.unwrap();
    }
    let mut seen = 0;
    let mut from: Option<String> = None;
    loop {
        let page = kids_room.messages(MessagesOptions::backward().from(from.as_deref())).await.expect("page");
        seen += plain_bodies(&page.chunk).iter().filter(|b| b.starts_with("msg ")).count();
        match page.end {
            Some(end) => from = Some(end),
            None => break,
        }
    }
    assert_eq!(seen, 1000, "every message exactly once");

    // Leave, get invited back, rejoin.
    kids_room.leave().await.expect("leave");
    room.invite_user_by_id(&kid_id).await.expect("invite again");
    kid.sync_once(SyncSettings::default()).await.unwrap();
    kid.join_room_by_id(room.room_id()).await.expect("rejoin");
    kid.sync_once(SyncSettings::default()).await.unwrap();
    assert_eq!(kid.get_room(room.room_id()).unwrap().state(), RoomState::Joined);
}
