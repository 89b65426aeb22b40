//! Two family members in an encrypted DM, with the `matrix-sdk` crate's own encryption (Olm and
//! Megolm, as in Element X): each device uploads its keys, claims the other's one-time keys,
//! shares its room key over to-device messages, and each side decrypts what the other wrote.

use hearth_blackbox::{decrypted_bodies, family, signed_in};
use matrix_sdk::{
    Client,
    config::SyncSettings,
    room::MessagesOptions,
    ruma::{
        OwnedRoomId, UserId,
        api::client::room::create_room,
        events::{
            InitialStateEvent,
            room::{encryption::RoomEncryptionEventContent, message::RoomMessageEventContent},
        },
    },
};

async fn history(c: &Client, room: &OwnedRoomId) -> Vec<String> {
    let room = c.get_room(room).expect("room known");
    let mut bodies = decrypted_bodies(&room.messages(MessagesOptions::backward()).await.expect("history").chunk);
    bodies.reverse();
    bodies
}

#[tokio::test]
async fn two_people_exchange_encrypted_messages_and_each_decrypts_the_other() {
    let server = family().await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    // First syncs: each device uploads its identity and one-time keys.
    alice.sync_once(SyncSettings::default()).await.unwrap();
    bob.sync_once(SyncSettings::default()).await.unwrap();

    let mut req = create_room::v3::Request::new();
    req.invite = vec![UserId::parse("@bob:blackbox.test").unwrap()];
    req.is_direct = true;
    req.initial_state = vec![
        InitialStateEvent::with_empty_state_key(RoomEncryptionEventContent::with_recommended_defaults()).to_raw_any(),
    ];
    let room = alice.create_room(req).await.expect("room created");
    let room_id = room.room_id().to_owned();

    bob.sync_once(SyncSettings::default()).await.unwrap();
    bob.get_room(&room_id).expect("bob is invited").join().await.expect("bob joins");
    alice.sync_once(SyncSettings::default()).await.unwrap();
    assert!(room.latest_encryption_state().await.unwrap().is_encrypted());

    room.send(RoomMessageEventContent::text_plain("The spare key is under the blue pot")).await.expect("alice sends");
    bob.sync_once(SyncSettings::default()).await.unwrap();
    assert_eq!(history(&bob, &room_id).await, ["The spare key is under the blue pot"]);

    let bobs_room = bob.get_room(&room_id).unwrap();
    bobs_room.send(RoomMessageEventContent::text_plain("Got it, thanks")).await.expect("bob answers");
    alice.sync_once(SyncSettings::default()).await.unwrap();
    assert_eq!(history(&alice, &room_id).await, ["The spare key is under the blue pot", "Got it, thanks"]);

    // Bob signs in on a new phone. Alice's client learns of the new device from device_lists
    // in /sync and shares its next room key with it too.
    let phone = signed_in(&server, "bob").await;
    phone.sync_once(SyncSettings::default()).await.unwrap();
    alice.sync_once(SyncSettings::default()).await.unwrap();
    room.send(RoomMessageEventContent::text_plain("New phone?")).await.expect("alice sends again");
    phone.sync_once(SyncSettings::default()).await.unwrap();
    let on_phone = history(&phone, &room_id).await;
    assert_eq!(on_phone.last().map(String::as_str), Some("New phone?"), "{on_phone:?}");
    // Messages from before the phone existed stay unreadable there (no key backup yet).
    assert!(!on_phone.iter().any(|b| b.contains("spare key")), "{on_phone:?}");
}

/// Alice sets up cross-signing from her client (keys uploaded without a password the first
/// time, her device signed by her self-signing key); Bob's client then sees her identity and
/// that her device is signed by its owner.
#[tokio::test]
async fn cross_signing_set_up_by_one_client_is_seen_by_another() {
    let server = family().await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    alice.sync_once(SyncSettings::default()).await.unwrap();
    bob.sync_once(SyncSettings::default()).await.unwrap();

    alice.encryption().bootstrap_cross_signing(None).await.expect("first cross-signing upload needs no password");
    let status = alice.encryption().cross_signing_status().await.expect("status");
    assert!(status.has_master && status.has_self_signing && status.has_user_signing, "{status:?}");

    let alice_id = UserId::parse("@alice:blackbox.test").unwrap();
    let identity =
        bob.encryption().request_user_identity(&alice_id).await.expect("query").expect("alice has an identity");
    assert_eq!(identity.user_id(), alice_id);
    let alice_device = alice.device_id().unwrap().to_owned();
    let device =
        bob.encryption().get_device(&alice_id, &alice_device).await.unwrap().expect("bob knows alice's device");
    assert!(device.is_cross_signed_by_owner(), "alice's self-signing key signed her device, and bob can check it");
}

/// Alice turns on recovery (cross-signing, secret storage and a key backup) on her laptop and
/// writes in an encrypted room; on a fresh login she enters her recovery key, the room keys come
/// back from the server-side backup, and the old message decrypts.
#[tokio::test]
async fn a_key_backup_made_on_one_device_decrypts_old_history_on_a_new_login() {
    let server = family().await;
    let laptop = signed_in(&server, "alice").await;
    laptop.sync_once(SyncSettings::default()).await.unwrap();
    let recovery_key = laptop.encryption().recovery().enable().await.expect("recovery enabled");

    let mut req = create_room::v3::Request::new();
    req.initial_state = vec![
        InitialStateEvent::with_empty_state_key(RoomEncryptionEventContent::with_recommended_defaults()).to_raw_any(),
    ];
    let room = laptop.create_room(req).await.expect("room created");
    let room_id = room.room_id().to_owned();
    room.send(RoomMessageEventContent::text_plain("Remember: the boiler code is 4411")).await.expect("sent");
    laptop.encryption().backups().wait_for_steady_state().await.expect("room keys backed up");

    let phone = signed_in(&server, "alice").await;
    phone.sync_once(SyncSettings::default()).await.unwrap();
    assert!(history(&phone, &room_id).await.is_empty(), "no room key on the new device yet");
    phone.encryption().recovery().recover(&recovery_key).await.expect("recovered with the recovery key");
    phone.encryption().backups().download_room_keys_for_room(&room_id).await.expect("keys downloaded from the backup");
    assert_eq!(history(&phone, &room_id).await, ["Remember: the boiler code is 4411"]);
}

/// Interactive verification (SAS, the emoji comparison) between Alice's laptop and her new
/// phone, carried entirely by to-device messages through the server: both sides see the same
/// emoji, confirm, and each then trusts the other device.
#[tokio::test]
async fn two_devices_of_one_user_verify_each_other_with_emoji() {
    let server = family().await;
    let laptop = signed_in(&server, "alice").await;
    let phone = signed_in(&server, "alice").await;
    let alice = UserId::parse("@alice:blackbox.test").unwrap();
    let once = || SyncSettings::default().timeout(std::time::Duration::from_millis(0));
    for _ in 0..2 {
        laptop.sync_once(once()).await.unwrap();
        phone.sync_once(once()).await.unwrap();
    }

    let laptop_id = laptop.device_id().unwrap().to_owned();
    let phone_id = phone.device_id().unwrap().to_owned();
    let target = phone.encryption().get_device(&alice, &laptop_id).await.unwrap().expect("the phone knows the laptop");
    let request = target.request_verification().await.expect("request sent");
    let flow = request.flow_id().to_owned();

    laptop.sync_once(once()).await.unwrap();
    let incoming =
        laptop.encryption().get_verification_request(&alice, &flow).await.expect("the laptop got the request");
    incoming.accept().await.expect("accepted");
    phone.sync_once(once()).await.unwrap();
    let phone_sas = request.start_sas().await.expect("start").expect("sas started");
    laptop.sync_once(once()).await.unwrap();
    let laptop_sas = laptop
        .encryption()
        .get_verification(&alice, &flow)
        .await
        .and_then(|v| v.sas())
        .expect("the laptop sees the SAS");
    laptop_sas.accept().await.expect("sas accepted");

    // Key exchange, then both show emoji.
    for _ in 0..5 {
        if phone_sas.emoji().is_some() && laptop_sas.emoji().is_some() {
            break;
        }
        phone.sync_once(once()).await.unwrap();
        laptop.sync_once(once()).await.unwrap();
    }
    let (a, b) = (phone_sas.emoji().expect("phone shows emoji"), laptop_sas.emoji().expect("laptop shows emoji"));
    let symbols = |e: &[matrix_sdk::encryption::verification::Emoji; 7]| e.iter().map(|x| x.symbol).collect::<Vec<_>>();
    assert_eq!(symbols(&a), symbols(&b), "both devices show the same emoji");

    phone_sas.confirm().await.unwrap();
    laptop_sas.confirm().await.unwrap();
    for _ in 0..5 {
        if phone_sas.is_done() && laptop_sas.is_done() {
            break;
        }
        phone.sync_once(once()).await.unwrap();
        laptop.sync_once(once()).await.unwrap();
    }
    assert!(phone_sas.is_done() && laptop_sas.is_done());
    assert!(laptop.encryption().get_device(&alice, &phone_id).await.unwrap().unwrap().is_verified());
    assert!(phone.encryption().get_device(&alice, &laptop_id).await.unwrap().unwrap().is_verified());
}
