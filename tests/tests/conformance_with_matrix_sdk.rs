//! Everyday client features that depend on the server following the spec, through the
//! `matrix-sdk` crate (Element X's client library): favourites synced between devices,
//! ignoring someone, and cross-signing set up at login as Element does it.

use hearth_blackbox::{decrypted_bodies, family, plain_bodies, room_with_bob, signed_in};
use matrix_sdk::{
    Client,
    config::SyncSettings,
    encryption::EncryptionSettings,
    room::MessagesOptions,
    ruma::{UserId, api::client::room::create_room, events::room::message::RoomMessageEventContent},
};

/// Alice marks a room as a favourite on her laptop; after the server restarts, her phone shows
/// it as one, and the low-priority mark she sets on the phone replaces it on the laptop.
#[tokio::test]
async fn a_favourite_reaches_another_device_across_a_restart() {
    let mut server = family().await;
    let laptop = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    laptop.sync_once(SyncSettings::default()).await.unwrap();
    let room_id = room_with_bob(&laptop, &bob, false).await;
    laptop.get_room(&room_id).unwrap().set_is_favourite(true, Some(0.5)).await.expect("tag set");

    server.running = server.running.restart().await.expect("restarts");
    let phone = signed_in(&server, "alice").await;
    phone.sync_once(SyncSettings::default()).await.unwrap();
    let on_phone = phone.get_room(&room_id).expect("the phone knows the room");
    assert!(on_phone.is_favourite(), "the favourite came through /sync");
    let tags = on_phone.tags().await.unwrap().expect("tags");
    assert_eq!(tags.values().next().and_then(|t| t.order), Some(0.5));

    on_phone.set_is_low_priority(true, None).await.expect("low priority set");
    laptop.sync_once(SyncSettings::default()).await.unwrap();
    let on_laptop = laptop.get_room(&room_id).unwrap();
    assert!(on_laptop.is_low_priority(), "the phone's change reached the laptop");
    assert!(!on_laptop.is_favourite(), "and the favourite is gone");
}

/// Alice ignores Bob: his messages disappear from her history and her syncs, his new invites
/// never reach her, and she is not notified; the room's state (its name) stays as it was.
#[tokio::test]
async fn ignoring_someone_hides_their_messages_and_invites() {
    let server = family().await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    alice.sync_once(SyncSettings::default()).await.unwrap();
    let room_id = room_with_bob(&alice, &bob, false).await;
    let bobs_room = bob.get_room(&room_id).unwrap();
    bobs_room.send(RoomMessageEventContent::text_plain("before")).await.unwrap();
    alice.sync_once(SyncSettings::default()).await.unwrap();
    let history = alice.get_room(&room_id).unwrap().messages(MessagesOptions::backward()).await.unwrap();
    assert_eq!(plain_bodies(&history.chunk), ["before"]);

    let bob_id = UserId::parse("@bob:blackbox.test").unwrap();
    alice.account().ignore_user(&bob_id).await.expect("ignored");
    alice.sync_once(SyncSettings::default()).await.unwrap();
    assert!(alice.is_user_ignored(&bob_id).await);

    bobs_room.send(RoomMessageEventContent::text_plain("while ignored")).await.unwrap();
    bobs_room.set_name("Bob's name for it".to_owned()).await.unwrap();
    let mut req = create_room::v3::Request::new();
    req.invite = vec![UserId::parse("@alice:blackbox.test").unwrap()];
    let other = bob.create_room(req).await.unwrap();

    let response = alice.sync_once(SyncSettings::default()).await.unwrap();
    let room = alice.get_room(&room_id).unwrap();
    let history = room.messages(MessagesOptions::backward()).await.unwrap();
    assert!(plain_bodies(&history.chunk).is_empty(), "{:?}", plain_bodies(&history.chunk));
    assert_eq!(room.name().as_deref(), Some("Bob's name for it"), "state from Bob still counts");
    assert!(alice.get_room(other.room_id()).is_none(), "Bob's invite never reached Alice");
    assert!(response.notifications.is_empty(), "no notification from Bob: {:?}", response.notifications);

    // Alice changes her mind: Bob's messages are readable again.
    alice.account().unignore_user(&bob_id).await.expect("unignored");
    alice.sync_once(SyncSettings::default()).await.unwrap();
    let history = room.messages(MessagesOptions::backward()).await.unwrap();
    assert_eq!(plain_bodies(&history.chunk), ["while ignored", "before"]);
}

/// A client that turns cross-signing on by itself at login (as Element Web does once the
/// server advertises it) ends with a device signed by its owner: Bob's client sees Alice's
/// messages as sent by a device she vouched for, not an unsigned one (Element's red shield).
#[tokio::test]
async fn cross_signing_set_up_at_login_vouches_for_the_device() {
    use matrix_sdk::deserialized_responses::{VerificationLevel, VerificationState};
    let server = family().await;
    let store = tempfile::tempdir().unwrap().keep();
    let alice = Client::builder()
        .homeserver_url(&server.url)
        .sqlite_store(store, None)
        .with_encryption_settings(EncryptionSettings { auto_enable_cross_signing: true, ..Default::default() })
        .build()
        .await
        .unwrap();
    alice.matrix_auth().login_username("alice", "password-alice").send().await.unwrap();
    alice.encryption().wait_for_e2ee_initialization_tasks().await;
    alice.sync_once(SyncSettings::default()).await.unwrap();
    let status = alice.encryption().cross_signing_status().await.expect("status");
    assert!(status.has_master && status.has_self_signing && status.has_user_signing, "{status:?}");
    let own = alice.encryption().get_own_device().await.unwrap().expect("own device");
    assert!(own.is_cross_signed_by_owner(), "the new session is vouched for by its owner");

    let bob = signed_in(&server, "bob").await;
    let room_id = room_with_bob(&alice, &bob, true).await;
    alice.get_room(&room_id).unwrap().send(RoomMessageEventContent::text_plain("signed")).await.unwrap();
    bob.sync_once(SyncSettings::default()).await.unwrap();
    let history = bob.get_room(&room_id).unwrap().messages(MessagesOptions::backward()).await.unwrap();
    assert_eq!(decrypted_bodies(&history.chunk), ["signed"]);
    let info = history.chunk.iter().find_map(|e| e.encryption_info()).expect("decrypted");
    assert!(
        !matches!(info.verification_state, VerificationState::Unverified(VerificationLevel::UnsignedDevice)),
        "Alice's device is signed by her identity: {:?}",
        info.verification_state
    );
}

/// A guest (no account, as a "join as guest" link gives) joins a room whose guest access is
/// `can_join` and reads and writes there; a room without it refuses them, and endpoints beyond
/// the spec's guest list answer M_GUEST_ACCESS_FORBIDDEN.
#[tokio::test]
async fn a_guest_joins_a_room_that_admits_guests() {
    use matrix_sdk::ruma::{
        api::client::account::register,
        events::{
            AnyInitialStateEvent, InitialStateEvent,
            room::guest_access::{GuestAccess, RoomGuestAccessEventContent},
        },
        serde::Raw,
    };
    let server = hearth_blackbox::start(async |c| {
        c.allow_guest_access = true;
        hearth_server::register_user_offline(c.clone(), "alice", "password-alice".to_owned(), false).await.unwrap();
    })
    .await;
    let alice = signed_in(&server, "alice").await;
    let mut req = create_room::v3::Request::new();
    req.preset = Some(create_room::v3::RoomPreset::PublicChat);
    let guests_welcome: Raw<AnyInitialStateEvent> =
        Raw::new(&InitialStateEvent::with_empty_state_key(RoomGuestAccessEventContent::new(GuestAccess::CanJoin)))
            .unwrap()
            .cast();
    req.initial_state = vec![guests_welcome];
    let open = alice.create_room(req).await.unwrap();
    open.send(RoomMessageEventContent::text_plain("welcome, visitor")).await.unwrap();
    let mut req = create_room::v3::Request::new();
    req.preset = Some(create_room::v3::RoomPreset::PublicChat);
    let members_only = alice.create_room(req).await.unwrap();

    let guest = hearth_blackbox::client(&server).await;
    let mut req = register::v3::Request::new();
    req.kind = register::RegistrationKind::Guest;
    let registered = guest.matrix_auth().register(req).await.expect("guest registration");
    assert!(registered.user_id.localpart().chars().all(|c| c.is_ascii_digit()), "{}", registered.user_id);

    let refused = guest.join_room_by_id(members_only.room_id()).await.expect_err("no guests there");
    // (matrix-sdk wraps these errors where `client_api_error_kind` does not look.)
    assert!(format!("{refused:?}").contains("kind: GuestAccessForbidden"), "{refused:?}");
    let room = guest.join_room_by_id(open.room_id()).await.expect("the guest joins");
    guest.sync_once(SyncSettings::default()).await.unwrap();
    let history = room.messages(MessagesOptions::backward()).await.unwrap();
    assert!(plain_bodies(&history.chunk).contains(&"welcome, visitor".to_owned()));
    room.send(RoomMessageEventContent::text_plain("hello from a guest")).await.expect("guests may talk");
    alice.sync_once(SyncSettings::default()).await.unwrap();
    let seen = alice.get_room(open.room_id()).unwrap().messages(MessagesOptions::backward()).await.unwrap();
    assert_eq!(plain_bodies(&seen.chunk)[0], "hello from a guest");
    // Creating rooms is not on the guest list.
    let err = guest.create_room(create_room::v3::Request::new()).await.expect_err("guests cannot create rooms");
    assert!(format!("{err:?}").contains("kind: GuestAccessForbidden"), "{err:?}");
}
