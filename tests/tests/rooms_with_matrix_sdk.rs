//! Two family members talk through the `matrix-sdk` crate: a room with an invite, joining,
//! messages both ways, reading history.

use hearth_blackbox::{client, start};
use matrix_sdk::{
    RoomState,
    config::SyncSettings,
    room::MessagesOptions,
    ruma::{
        UserId,
        api::client::room::create_room,
        events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent, room::message::RoomMessageEventContent},
    },
};

fn bodies(events: &[matrix_sdk::deserialized_responses::TimelineEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e.raw().deserialize() {
            Ok(AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(m))) => {
                m.as_original().map(|o| o.content.body().to_owned())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn two_people_invite_join_and_exchange_messages() {
    let server = start(async |c| {
        hearth_server::register_user_offline(c.clone(), "alice", "pw-a".into(), false).await.unwrap();
        hearth_server::register_user_offline(c.clone(), "bob", "pw-b".into(), false).await.unwrap();
    })
    .await;
    let alice = client(&server).await;
    alice.matrix_auth().login_username("alice", "pw-a").send().await.unwrap();
    let bob = client(&server).await;
    bob.matrix_auth().login_username("bob", "pw-b").send().await.unwrap();
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
    assert_eq!(bodies(&history.chunk), ["Yes please", "Tea at five?"]);
    assert_eq!(room.joined_members_count(), 2);
}
