//! Element X's room list against Hearth: matrix-sdk-ui's `RoomListService` (the code Element X
//! runs for its chat list) over simplified sliding sync (MSC4186).

use std::time::{Duration, Instant};

use eyeball_im::Vector;
use futures_util::StreamExt;
use hearth_blackbox::{SERVER_NAME, family, signed_in};
use matrix_sdk::RoomState;
use matrix_sdk::ruma::{
    api::client::room::create_room::v3::Request as CreateRoom, events::room::message::RoomMessageEventContent, user_id,
};
use matrix_sdk_ui::{
    room_list_service::{RoomListItem, RoomListService, filters},
    sync_service::SyncService,
};

/// Drives the sync loop and the room list stream until `done` says the entries are as wanted
/// (or a minute passes).
async fn until<S, L>(
    sync: &mut S,
    stream: &mut L,
    rooms: &mut Vector<RoomListItem>,
    done: impl Fn(&Vector<RoomListItem>) -> bool,
) where
    S: futures_util::Stream<Item = Result<(), matrix_sdk_ui::room_list_service::Error>> + Unpin,
    L: futures_util::Stream<Item = Vec<eyeball_im::VectorDiff<RoomListItem>>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done(rooms) {
        tokio::select! {
            diffs = stream.next() => {
                for d in diffs.expect("the room list stream goes on") {
                    d.apply(rooms);
                }
            }
            r = sync.next() => {
                r.expect("the sync loop goes on").expect("sliding sync answers");
            }
            () = tokio::time::sleep_until(deadline) => panic!("the room list did not get there: {:?}", names(rooms)),
        }
    }
}

/// Element X's chat list for `$client`, as its app does: the `RoomListService`, the entries of
/// all rooms not left (`$stream`, applied to `$rooms`) and the sync loop (`$sync`). A macro, as
/// the streams borrow the service and the list.
macro_rules! chat_list {
    ($client:expr, $service:ident, $stream:ident, $sync:ident, $rooms:ident) => {
        let $service = RoomListService::new($client.clone()).await.expect("room list service");
        let all = $service.all_rooms().await.expect("all rooms");
        let ($stream, controller) = all.entries_with_dynamic_adapters(100);
        controller.set_filter(Box::new(filters::new_filter_non_left()));
        let mut $stream = Box::pin($stream);
        let mut $sync = Box::pin($service.sync());
        let mut $rooms = Vector::new();
    };
}

fn names(rooms: &Vector<RoomListItem>) -> Vec<String> {
    rooms.iter().map(|r| r.cached_display_name().map(|n| n.to_string()).unwrap_or_default()).collect()
}

#[tokio::test]
async fn element_x_room_list_shows_fifty_rooms_in_order_and_a_new_message_moves_one_up() {
    let mut server = family().await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    // 50 rooms, created one after another: the newest is the most recent.
    let mut ids = Vec::new();
    for i in 0..50 {
        let mut req = CreateRoom::new();
        req.name = Some(format!("Room {i:02}"));
        if i == 0 {
            req.invite = vec![user_id!("@bob:blackbox.test").to_owned()];
        }
        ids.push(alice.create_room(req).await.expect("room created").room_id().to_owned());
    }
    bob.join_room_by_id(&ids[0]).await.expect("bob joins room 00");
    // A message in room 01 moves it to the top.
    let room01 = alice.get_room(&ids[1]).unwrap();
    room01.send(RoomMessageEventContent::text_plain("room 01 speaks")).await.unwrap();

    chat_list!(alice, service, stream, sync, rooms);
    // What Element X shows: the room with the latest message first, then by the latest event
    // that counts (bump_stamp: creation here; Bob's join does not move room 00, as in Synapse).
    let expected: Vec<String> = std::iter::once("Room 01".to_owned())
        .chain((2..50).rev().map(|i| format!("Room {i:02}")))
        .chain(std::iter::once("Room 00".to_owned()))
        .collect();
    until(&mut sync, &mut stream, &mut rooms, |r| names(r) == expected).await;
    let joined = rooms.iter().find(|r| r.room_id() == ids[0]).unwrap();
    assert_eq!(joined.joined_members_count(), 2, "member counts come with the room");

    // The rooms on screen are subscribed to (as Element X does): their latest event is shown.
    service.subscribe_to_rooms(&[&ids[1]]).await;
    until(&mut sync, &mut stream, &mut rooms, |r| {
        r.iter().any(|x| {
            x.room_id() == ids[1] && matches!(x.latest_event(), matrix_sdk::latest_events::LatestEventValue::Remote(_))
        })
    })
    .await;

    // Bob writes in room 00, the last one: it comes to the top of Alice's list.
    let started = Instant::now();
    bob.get_room(&ids[0]).unwrap().send(RoomMessageEventContent::text_plain("hello alice")).await.unwrap();
    until(&mut sync, &mut stream, &mut rooms, |r| names(r).first().is_some_and(|n| n == "Room 00")).await;
    eprintln!("a new message reached the top of the room list after {:?}", started.elapsed());
    assert_eq!(rooms.len(), 50);
    // Bob's message counts as unread for Alice (the server evaluates her push rules).
    until(&mut sync, &mut stream, &mut rooms, |r| {
        r.iter().any(|x| x.room_id() == ids[0] && x.unread_notification_counts().notification_count >= 1)
    })
    .await;

    // An invitation shows up in the list, as an invite.
    let mut req = CreateRoom::new();
    req.name = Some("Bob's party".to_owned());
    req.invite = vec![format!("@alice:{SERVER_NAME}").try_into().unwrap()];
    let party = bob.create_room(req).await.unwrap().room_id().to_owned();
    until(&mut sync, &mut stream, &mut rooms, |r| {
        r.iter().any(|x| x.room_id() == party && x.state() == RoomState::Invited)
    })
    .await;
    assert_eq!(rooms.len(), 51);

    // The server restarts under the running client: it goes on from its position, without
    // starting over (an M_UNKNOWN_POS would end this sync loop with an error).
    server.running = server.running.restart().await.expect("restarts");
    alice.get_room(&ids[7]).unwrap().send(RoomMessageEventContent::text_plain("after the restart")).await.unwrap();
    until(&mut sync, &mut stream, &mut rooms, |r| names(r).first().is_some_and(|n| n == "Room 07")).await;
    assert_eq!(rooms.len(), 51, "nothing lost or doubled across the restart");
}

/// The decrypted bodies of a room's history, read with /messages.
async fn decrypted_history(c: &matrix_sdk::Client, room: &matrix_sdk::ruma::RoomId) -> Vec<String> {
    let Some(room) = c.get_room(room) else { return Vec::new() };
    let Ok(page) = room.messages(matrix_sdk::room::MessagesOptions::backward()).await else { return Vec::new() };
    hearth_blackbox::decrypted_bodies(&page.chunk)
}

#[tokio::test]
async fn element_x_sync_service_gets_its_keys_and_room_keys_through_sliding_sync_and_decrypts() {
    use matrix_sdk::{
        config::SyncSettings,
        ruma::events::{InitialStateEvent, room::encryption::RoomEncryptionEventContent},
    };
    let server = family().await;
    // Alice syncs only the way Element X does: the SyncService (room list + encryption
    // connections). Her device keys go up through it too.
    let alice = signed_in(&server, "alice").await;
    let sync_service = SyncService::builder(alice.clone()).build().await.expect("sync service");
    sync_service.start().await;
    // Bob uses classic /sync.
    let bob = signed_in(&server, "bob").await;
    bob.sync_once(SyncSettings::default()).await.unwrap();

    let mut req = CreateRoom::new();
    req.invite = vec![format!("@bob:{SERVER_NAME}").try_into().unwrap()];
    req.initial_state = vec![
        InitialStateEvent::with_empty_state_key(RoomEncryptionEventContent::with_recommended_defaults()).to_raw_any(),
    ];
    let room_id = alice.create_room(req).await.expect("room").room_id().to_owned();
    bob.sync_once(SyncSettings::default()).await.unwrap();
    bob.get_room(&room_id).expect("invited").join().await.expect("bob joins");

    // Bob's client sees Alice's device once her client uploaded its keys.
    let alice_id = alice.user_id().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        bob.sync_once(SyncSettings::default().timeout(Duration::from_millis(200))).await.unwrap();
        let devices = bob.encryption().get_user_devices(&alice_id).await.unwrap();
        if devices.devices().count() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "Alice's device keys never reached Bob");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bob.get_room(&room_id)
        .unwrap()
        .send(RoomMessageEventContent::text_plain("meet at the bakery"))
        .await
        .expect("bob sends");

    // Alice's encryption connection brings the room key (to-device); the message decrypts.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if decrypted_history(&alice, &room_id).await == ["meet at the bakery"] {
            break;
        }
        assert!(Instant::now() < deadline, "Alice never decrypted Bob's message");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sync_service.stop().await;
}

/// Element X opening a room: the room list's subscription brings the latest events over
/// sliding sync, and scrolling up pages back from its `prev_batch` through /messages until the
/// room's start, every message once and in order.
#[tokio::test]
async fn element_x_opens_a_room_and_scrolls_back_through_its_history() {
    let server = family().await;
    let alice = signed_in(&server, "alice").await;
    let mut req = CreateRoom::new();
    req.name = Some("Chatty".to_owned());
    let room_id = alice.create_room(req).await.expect("room").room_id().to_owned();
    let room = alice.get_room(&room_id).unwrap();
    let expected: Vec<String> = (0..60).map(|i| format!("message {i:02}")).collect();
    for body in &expected {
        room.send(RoomMessageEventContent::text_plain(body)).await.unwrap();
    }

    chat_list!(alice, service, stream, sync, rooms);
    service.subscribe_to_rooms(&[&room_id]).await;
    until(&mut sync, &mut stream, &mut rooms, |r| {
        r.iter().any(|x| {
            x.room_id() == room_id && matches!(x.latest_event(), matrix_sdk::latest_events::LatestEventValue::Remote(_))
        })
    })
    .await;

    let timeline = matrix_sdk_ui::timeline::RoomExt::timeline(&room).await.expect("timeline");
    let mut reached_start = false;
    for _ in 0..20 {
        if timeline.paginate_backwards(20).await.expect("pagination") {
            reached_start = true;
            break;
        }
    }
    assert!(reached_start, "scrolling back reaches the room's creation");
    let bodies: Vec<String> = timeline
        .items()
        .await
        .iter()
        .filter_map(|item| item.as_event())
        .filter_map(|event| event.content().as_message().map(|m| m.body().to_owned()))
        .collect();
    assert_eq!(bodies, expected);
}

/// The admin deletes a room while Bob's phone is away; when the app comes back, the room leaves
/// its chat list though the room's events (his leave among them) are purged from the server.
#[tokio::test]
async fn element_x_learns_it_left_a_room_the_admin_deleted_while_it_was_away() {
    let server = hearth_blackbox::start(async |c| {
        for (name, admin) in [("alice", false), ("bob", false), ("root", true)] {
            hearth_server::register_user_offline(c.clone(), name, format!("password-{name}"), admin).await.unwrap();
        }
    })
    .await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    let root = signed_in(&server, "root").await;
    let mut ids = Vec::new();
    for name in ["Doomed", "Family"] {
        let mut req = CreateRoom::new();
        req.name = Some(name.to_owned());
        req.invite = vec![user_id!("@bob:blackbox.test").to_owned()];
        let id = alice.create_room(req).await.expect("room created").room_id().to_owned();
        bob.join_room_by_id(&id).await.expect("bob joins");
        ids.push(id);
    }
    {
        chat_list!(bob, service, stream, sync, rooms);
        until(&mut sync, &mut stream, &mut rooms, |r| {
            let mut n = names(r);
            n.sort();
            n == ["Doomed", "Family"]
        })
        .await;
    }
    // Bob's app is closed now.
    let http = reqwest::Client::new();
    let resp = http
        .delete(format!("{}/_synapse/admin/v1/rooms/{}", server.url, ids[0]))
        .bearer_auth(root.access_token().unwrap())
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let admin_room = format!("{}/_synapse/admin/v1/rooms/{}", server.url, ids[0]);
    let gone = http.get(admin_room).bearer_auth(root.access_token().unwrap()).send().await.unwrap();
    assert_eq!(gone.status(), 404, "purged");

    chat_list!(bob, service, stream, sync, rooms);
    until(&mut sync, &mut stream, &mut rooms, |r| names(r) == ["Family"]).await;
    assert_eq!(bob.get_room(&ids[0]).expect("still known to the app").state(), RoomState::Left);
}
