//! Federation through the client library Element X is built on, on both sides: a `matrix-sdk`
//! client on Hearth (hearth.test) and one on a real Synapse (synapse.test), in the private
//! network `tests/federation/run.sh` builds (which runs this test; see its README). Each client
//! only ever talks to its own server; everything it sees of the other side came over federation.

use std::time::{Duration, Instant};

use hearth_blackbox::{Server, decrypted_bodies, photo, plain_bodies, start};
use hearth_server::config::RateLimit;
use matrix_sdk::{
    Client, RoomMemberships, RoomState,
    config::SyncSettings,
    media::{MediaFormat, MediaRequestParameters, MediaThumbnailSettings},
    room::MessagesOptions,
    ruma::{
        OwnedMxcUri, OwnedRoomId, OwnedServerName, RoomOrAliasId, UInt, UserId,
        api::client::{
            account::register,
            media::get_content_thumbnail::v3::Method,
            room::{Visibility, create_room},
            uiaa::{self, AuthData},
        },
        events::{
            InitialStateEvent,
            room::{encryption::RoomEncryptionEventContent, member::MembershipState, message::RoomMessageEventContent},
        },
    },
};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by tests/federation/run.sh"))
}

/// Hearth as hearth.test, listening where the environment's nginx (TLS) forwards, with Carol
/// and Dave as its users.
async fn hearth() -> Server {
    start(async |c| {
        c.server_name = env("HEARTH_FED_SERVER_NAME").as_str().try_into().unwrap();
        let listen: std::net::SocketAddr = env("HEARTH_FED_LISTEN").parse().unwrap();
        c.listeners[0].port = listen.port();
        c.listeners[0].bind_addresses = vec![listen.ip()];
        c.listeners[0].x_forwarded = true;
        c.public_baseurl = Some(format!("https://{}", env("HEARTH_FED_SERVER_NAME")));
        c.federation_custom_ca_list = vec![env("HEARTH_FED_CA").into()];
        c.allow_public_rooms_over_federation = true;
        c.trusted_key_servers = Vec::new();
        // Synapse lives on loopback, which the outbound policy refuses by default.
        c.ip_range_whitelist = vec!["127.0.0.0/8".to_owned()];
        c.rc_federation.sleep_limit = 1000;
        c.rc_federation.reject_limit = 1000;
        for (_, rl) in c.rate_limits_mut() {
            *rl = RateLimit { per_second: 1000.0, burst_count: 1000.0 };
        }
        for name in ["sdk_carol", "sdk_dave", "sdk_gina", "sdk_ivy"] {
            hearth_server::register_user_offline(c.clone(), name, format!("password-{name}"), false).await.unwrap();
        }
    })
    .await
}

/// A matrix-sdk client that trusts the test CA: Hearth's login answer points it at
/// `https://hearth.test` (its `public_baseurl`), which is nginx with a certificate from that CA.
async fn sdk_client(url: &str) -> Client {
    let store = tempfile::tempdir().unwrap().keep();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(env("HEARTH_FED_CA")).unwrap()).unwrap();
    Client::builder()
        .homeserver_url(url)
        .add_root_certificates(vec![ca])
        .sqlite_store(store, None)
        .build()
        .await
        .expect("client builds")
}

/// A Hearth user (made by `hearth`, which must be running), signed in through matrix-sdk.
async fn on_hearth(name: &str) -> Client {
    // Through the TLS terminator, as a phone would reach it.
    let c = sdk_client(&format!("https://{}", env("HEARTH_FED_SERVER_NAME"))).await;
    c.matrix_auth().login_username(name, &format!("password-{name}")).send().await.unwrap();
    c
}

/// A Synapse user made before, signed in again (another device).
async fn again_on_synapse(name: &str) -> Client {
    let c = sdk_client(&env("SYNAPSE_URL")).await;
    c.matrix_auth().login_username(name, &format!("password-{name}")).send().await.unwrap();
    c
}

/// Syncs `client` until an ephemeral event in `room` (as JSON text) satisfies `seen`, for at
/// most a minute.
async fn sync_until_ephemeral(client: &Client, room: &OwnedRoomId, what: &str, seen: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = client.sync_once(SyncSettings::default().timeout(Duration::from_millis(500))).await.expect("sync");
        if let Some(joined) = resp.rooms.joined.get(room)
            && joined.ephemeral.iter().any(|e| seen(e.json().get()))
        {
            return;
        }
        assert!(Instant::now() < deadline, "{} never saw: {what}", client.user_id().unwrap());
    }
}

async fn decrypted_history(client: &Client, room_id: &OwnedRoomId) -> Vec<String> {
    let room = client.get_room(room_id).expect("the client knows the room");
    let mut bodies = decrypted_bodies(&room.messages(MessagesOptions::backward()).await.expect("/messages").chunk);
    bodies.reverse();
    bodies
}

/// A new Synapse user (open registration, the dummy stage), signed in through matrix-sdk.
async fn on_synapse(name: &str) -> Client {
    let c = sdk_client(&env("SYNAPSE_URL")).await;
    let mut req = register::v3::Request::new();
    req.username = Some(name.to_owned());
    req.password = Some(format!("password-{name}"));
    req.auth = Some(AuthData::Dummy(uiaa::Dummy::new()));
    c.matrix_auth().register(req).await.expect("Synapse registers the user");
    c
}

/// Syncs `client` until `done` holds (what the user sees changed), for at most a minute.
async fn sync_until(client: &Client, what: &str, mut done: impl AsyncFnMut(&Client) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        client.sync_once(SyncSettings::default().timeout(Duration::from_millis(500))).await.expect("sync");
        if done(client).await {
            return;
        }
        assert!(Instant::now() < deadline, "{} never saw: {what}", client.user_id().unwrap());
    }
}

/// The room's text messages as `client` reads them, oldest first, paging back to the start.
async fn history(client: &Client, room_id: &OwnedRoomId) -> Vec<String> {
    let room = client.get_room(room_id).expect("the client knows the room");
    let mut bodies = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let mut opts = MessagesOptions::backward().from(from.as_deref());
        opts.limit = 20u32.into();
        let page = room.messages(opts).await.expect("/messages");
        bodies.extend(plain_bodies(&page.chunk));
        match page.end {
            Some(end) if !page.chunk.is_empty() => from = Some(end),
            _ => break,
        }
    }
    bodies.reverse();
    bodies
}

async fn last_body(client: &Client, room_id: &OwnedRoomId) -> Option<String> {
    history(client, room_id).await.pop()
}

fn server_name(var: &str) -> OwnedServerName {
    env(var).as_str().try_into().unwrap()
}

#[tokio::test]
#[ignore = "needs Synapse, nginx and dnsmasq in a private network: tests/federation/run.sh"]
async fn matrix_sdk_clients_on_hearth_and_synapse_talk_across_servers() {
    // Serving until the end of the test; its users reach it through nginx, by name.
    let _hearth = hearth().await;
    a_hearth_user_invites_a_synapse_user_and_they_talk_in_order().await;
    a_hearth_user_joins_a_synapse_room_by_alias_and_reads_its_history().await;
    encrypted_messages_typing_and_receipts_cross_between_servers().await;
    pictures_cross_between_servers_with_thumbnails().await;
    room_directories_and_spaces_are_browsed_across_servers().await;
    upgrades_and_redactions_are_followed_across_servers().await;
    edits_and_server_acls_are_honoured_across_servers().await;
    presence_and_profiles_cross_between_servers().await;
}

/// Carol (Hearth) makes a room and invites Erin (Synapse): Erin's client shows the invite with
/// the room's name, she joins, and they take turns writing; both clients then read the same
/// conversation in the same order. Carol bans Erin, and both clients show her banned.
async fn a_hearth_user_invites_a_synapse_user_and_they_talk_in_order() {
    let carol = on_hearth("sdk_carol").await;
    let erin = on_synapse("sdk_erin").await;
    let erin_id = erin.user_id().unwrap().to_owned();

    let mut req = create_room::v3::Request::new();
    req.name = Some("Across the hedge".into());
    req.invite = vec![erin_id.clone()];
    req.preset = Some(create_room::v3::RoomPreset::PrivateChat);
    let room = carol.create_room(req).await.expect("Carol makes the room");
    let room_id = room.room_id().to_owned();

    sync_until(&erin, "the invite", async |c| c.get_room(&room_id).is_some_and(|r| r.state() == RoomState::Invited))
        .await;
    let invited = erin.get_room(&room_id).unwrap();
    assert_eq!(invited.name().as_deref(), Some("Across the hedge"), "the invite carries the room's name");
    invited.join().await.expect("Erin joins through Synapse");
    sync_until(&carol, "Erin joined", async |c| c.get_room(&room_id).unwrap().joined_members_count() == 2).await;

    let mut said = Vec::new();
    for turn in 0..4 {
        let line = format!("carol {turn}");
        room.send(RoomMessageEventContent::text_plain(&line)).await.expect("Carol sends");
        said.push(line.clone());
        sync_until(&erin, &line, async |c| last_body(c, &room_id).await.as_deref() == Some(line.as_str())).await;
        let line = format!("erin {turn}");
        erin.get_room(&room_id).unwrap().send(RoomMessageEventContent::text_plain(&line)).await.expect("Erin sends");
        said.push(line.clone());
        sync_until(&carol, &line, async |c| last_body(c, &room_id).await.as_deref() == Some(line.as_str())).await;
    }
    assert_eq!(history(&carol, &room_id).await, said, "Carol reads the conversation in order");
    assert_eq!(history(&erin, &room_id).await, said, "Erin reads the same conversation in the same order");
    let erins_room = erin.get_room(&room_id).unwrap();
    assert_eq!(erins_room.name().as_deref(), Some("Across the hedge"));
    // Synapse sends the room summary's member counts only to lazy-loading clients: ask.
    let joined = erins_room.members(RoomMemberships::JOIN).await.expect("/members on Synapse");
    assert_eq!(joined.len(), 2, "Erin's Synapse knows both members");

    room.ban_user(&erin_id, Some("test over")).await.expect("Carol bans Erin");
    // matrix-sdk files a room left through a ban under "left"; the member event says why.
    sync_until(&erin, "the ban", async |c| c.get_room(&room_id).unwrap().state() == RoomState::Left).await;
    carol.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
    for (who, r) in [("Carol", &room), ("Erin", &erin.get_room(&room_id).unwrap())] {
        let member = r.get_member_no_sync(&erin_id).await.unwrap().expect("Erin's member event");
        assert_eq!(member.membership(), &MembershipState::Ban, "{who}'s client shows Erin banned");
    }
}

/// Frank (Synapse) makes a public room with an alias and writes in it; Dave (Hearth) joins by
/// the alias (which only Synapse knows) and pages back through the history written before he
/// came, which Hearth has to fetch from Synapse. Then they talk both ways.
async fn a_hearth_user_joins_a_synapse_room_by_alias_and_reads_its_history() {
    let frank = on_synapse("sdk_frank").await;
    let mut req = create_room::v3::Request::new();
    req.name = Some("Allotment".into());
    req.room_alias_name = Some("sdk-allotment".into());
    req.visibility = Visibility::Public;
    req.preset = Some(create_room::v3::RoomPreset::PublicChat);
    let franks_room = frank.create_room(req).await.expect("Frank makes the room");
    let room_id = franks_room.room_id().to_owned();
    let mut said = Vec::new();
    for i in 0..45 {
        let line = format!("frank before {i}");
        franks_room.send(RoomMessageEventContent::text_plain(&line)).await.unwrap();
        said.push(line);
    }

    let dave = on_hearth("sdk_dave").await;
    let alias = RoomOrAliasId::parse(format!("#sdk-allotment:{}", env("SYNAPSE_SERVER_NAME"))).unwrap();
    let joined =
        dave.join_room_by_id_or_alias(&alias, &[server_name("SYNAPSE_SERVER_NAME")]).await.expect("Dave joins");
    assert_eq!(joined.room_id(), room_id, "the alias names Frank's room");
    dave.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
    let daves_room = dave.get_room(&room_id).unwrap();
    assert_eq!(daves_room.state(), RoomState::Joined);
    assert_eq!(daves_room.name().as_deref(), Some("Allotment"), "the room is usable at once");
    assert_eq!(history(&dave, &room_id).await, said, "Dave reads everything Frank wrote before he came");

    daves_room.send(RoomMessageEventContent::text_plain("dave here")).await.expect("Dave sends");
    said.push("dave here".into());
    sync_until(&frank, "Dave's message", async |c| last_body(c, &room_id).await.as_deref() == Some("dave here")).await;
    franks_room.send(RoomMessageEventContent::text_plain("welcome")).await.unwrap();
    said.push("welcome".into());
    sync_until(&dave, "Frank's welcome", async |c| last_body(c, &room_id).await.as_deref() == Some("welcome")).await;
    assert_eq!(history(&dave, &room_id).await, said);
    assert_eq!(history(&frank, &room_id).await, said);
    let dave_id = UserId::parse(format!("@sdk_dave:{}", env("HEARTH_FED_SERVER_NAME"))).unwrap();
    sync_until(&frank, "Dave among the members", async |c| {
        c.get_room(&room_id).unwrap().get_member_no_sync(&dave_id).await.unwrap().is_some()
    })
    .await;
}

/// Gina (Hearth) and Hank (Synapse) in an encrypted room, each with matrix-sdk's own Olm and
/// Megolm: each decrypts what the other wrote (keys queried and claimed across the servers, room
/// keys sent as to-device messages both ways). Hank's client sees Gina's cross-signing identity
/// and her device signed by it. Hank signs in on a second device later: Synapse tells Hearth
/// (`m.device_list_update`), Gina's client learns of the device and the phone decrypts her next
/// message. Typing and read receipts cross in both directions.
async fn encrypted_messages_typing_and_receipts_cross_between_servers() {
    let gina = on_hearth("sdk_gina").await;
    let hank = on_synapse("sdk_hank").await;
    let hank_id = hank.user_id().unwrap().to_owned();
    let gina_id = gina.user_id().unwrap().to_owned();
    gina.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
    hank.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
    gina.encryption().bootstrap_cross_signing(None).await.expect("Gina sets up cross-signing");

    let mut req = create_room::v3::Request::new();
    req.invite = vec![hank_id.clone()];
    req.is_direct = true;
    req.preset = Some(create_room::v3::RoomPreset::PrivateChat);
    req.initial_state = vec![
        InitialStateEvent::with_empty_state_key(RoomEncryptionEventContent::with_recommended_defaults()).to_raw_any(),
    ];
    let room = gina.create_room(req).await.expect("Gina makes the encrypted room");
    let room_id = room.room_id().to_owned();
    sync_until(&hank, "the invite", async |c| c.get_room(&room_id).is_some_and(|r| r.state() == RoomState::Invited))
        .await;
    hank.get_room(&room_id).unwrap().join().await.expect("Hank joins through Synapse");
    sync_until(&gina, "Hank joined", async |c| c.get_room(&room_id).unwrap().joined_members_count() == 2).await;

    room.send(RoomMessageEventContent::text_plain("the gate code is 4711")).await.expect("Gina sends");
    sync_until(&hank, "Gina's message decrypted", async |c| {
        decrypted_history(c, &room_id).await == ["the gate code is 4711"]
    })
    .await;
    let hanks_room = hank.get_room(&room_id).unwrap();
    hanks_room.send(RoomMessageEventContent::text_plain("thanks, on my way")).await.expect("Hank answers");
    sync_until(&gina, "Hank's answer decrypted", async |c| {
        decrypted_history(c, &room_id).await == ["the gate code is 4711", "thanks, on my way"]
    })
    .await;

    // Hank's client sees Gina's identity, served by Hearth through Synapse.
    let identity = hank
        .encryption()
        .request_user_identity(&gina_id)
        .await
        .expect("Hank's client asks for Gina's identity")
        .expect("Gina has a cross-signing identity");
    assert_eq!(identity.user_id(), gina_id);
    let gina_device = gina.device_id().unwrap().to_owned();
    let device = hank.encryption().get_device(&gina_id, &gina_device).await.unwrap().expect("Gina's device is known");
    assert!(device.is_cross_signed_by_owner(), "Gina's self-signing key signed her device, seen from Synapse");

    // Verification across the servers: Hank sets up cross-signing too; Gina verifies him (her
    // user-signing key signs his master key: Hearth keeps the signature for her, and gives it
    // back with his key from Synapse), and he verifies her (kept on Synapse for him).
    hank.encryption().bootstrap_cross_signing(None).await.expect("Hank sets up cross-signing");
    let deadline = Instant::now() + Duration::from_secs(30);
    let hanks_identity = loop {
        gina.sync_once(SyncSettings::default().timeout(Duration::from_millis(500))).await.unwrap();
        if let Some(i) = gina.encryption().request_user_identity(&hank_id).await.unwrap() {
            break i;
        }
        assert!(Instant::now() < deadline, "Gina's client never saw Hank's cross-signing identity");
    };
    hanks_identity.verify().await.expect("Gina verifies Hank");
    let mut query = matrix_sdk::ruma::api::client::keys::get_keys::v3::Request::new();
    query.device_keys = [(hank_id.clone(), Vec::new())].into();
    let keys = gina.send(query).await.expect("/keys/query on Hearth");
    let master: serde_json::Value =
        serde_json::from_str(keys.master_keys.get(&hank_id).expect("Hank's master key").json().get()).unwrap();
    assert!(
        master["signatures"][gina_id.as_str()].as_object().is_some_and(|s| !s.is_empty()),
        "what Gina's other devices read: her signature on Hank's key: {master}"
    );
    let seen = gina.encryption().request_user_identity(&hank_id).await.unwrap().expect("Hank's identity");
    assert!(seen.is_verified(), "Gina's client trusts Hank's identity");
    identity.verify().await.expect("Hank verifies Gina");
    let seen = hank.encryption().request_user_identity(&gina_id).await.unwrap().expect("Gina's identity");
    assert!(seen.is_verified(), "Hank's client trusts Gina's identity");

    // Typing and receipts, both ways.
    hanks_room.typing_notice(true).await.expect("Hank types");
    sync_until_ephemeral(&gina, &room_id, "Hank typing", |e| e.contains("m.typing") && e.contains(hank_id.as_str()))
        .await;
    room.typing_notice(true).await.expect("Gina types");
    sync_until_ephemeral(&hank, &room_id, "Gina typing", |e| e.contains("m.typing") && e.contains(gina_id.as_str()))
        .await;
    let page = hanks_room.messages(MessagesOptions::backward()).await.expect("/messages on Synapse");
    let last = page.chunk.first().and_then(|e| e.event_id()).expect("the latest event");
    hanks_room
        .send_single_receipt(
            matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType::Read,
            matrix_sdk::ruma::events::receipt::ReceiptThread::Unthreaded,
            last.clone(),
        )
        .await
        .expect("Hank's read receipt");
    sync_until_ephemeral(&gina, &room_id, "Hank's receipt", |e| {
        e.contains("m.receipt") && e.contains(hank_id.as_str()) && e.contains(last.as_str())
    })
    .await;

    // Hank's second device: Gina's next message reaches it too.
    let phone = again_on_synapse("sdk_hank").await;
    phone.sync_once(SyncSettings::default().timeout(Duration::ZERO)).await.unwrap();
    let phone_id = phone.device_id().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        gina.sync_once(SyncSettings::default().timeout(Duration::from_millis(500))).await.unwrap();
        let devices = gina.encryption().get_user_devices(&hank_id).await.unwrap();
        if devices.get(&phone_id).is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "Gina's client never learnt of Hank's new device");
    }
    room.send(RoomMessageEventContent::text_plain("new phone, Hank?")).await.expect("Gina sends again");
    sync_until(&phone, "Gina's message on the new device", async |c| {
        decrypted_history(c, &room_id).await.last().map(String::as_str) == Some("new phone, Hank?")
    })
    .await;
}

async fn download(client: &Client, uri: &OwnedMxcUri, format: MediaFormat) -> matrix_sdk::Result<Vec<u8>> {
    let source = matrix_sdk::ruma::events::room::MediaSource::Plain(uri.clone());
    client.media().get_media_content(&MediaRequestParameters { source, format }, false).await
}

fn scaled(w: u32, h: u32) -> MediaFormat {
    MediaFormat::Thumbnail(MediaThumbnailSettings::with_method(Method::Scale, UInt::from(w), UInt::from(h)))
}

/// A picture uploaded on Hearth is downloaded by a Synapse user (Synapse fetches it over
/// authenticated federation media), full size and as a thumbnail; one uploaded on Synapse is
/// shown to a Hearth user the same way (Hearth fetches, stores and thumbnails it). Media of a
/// server that is down fails cleanly, soon.
async fn pictures_cross_between_servers_with_thumbnails() {
    let gina = on_hearth("sdk_gina").await;
    let hank = again_on_synapse("sdk_hank").await;

    let garden = photo(900, 600);
    let up = gina.media().upload(&"image/png".parse().unwrap(), garden.clone(), None).await.expect("Gina uploads");
    assert_eq!(up.content_uri.server_name().unwrap().as_str(), env("HEARTH_FED_SERVER_NAME"));
    let got = download(&hank, &up.content_uri, MediaFormat::File).await.expect("Hank downloads through Synapse");
    assert_eq!(got, garden, "byte for byte across the servers");
    let thumb = download(&hank, &up.content_uri, scaled(300, 200)).await.expect("Hank's thumbnail");
    let img = image::load_from_memory(&thumb).expect("the thumbnail is an image");
    assert!(img.width() < 900 && img.height() < 600, "a smaller picture: {}x{}", img.width(), img.height());

    let beach = photo(640, 480);
    let up = hank.media().upload(&"image/png".parse().unwrap(), beach.clone(), None).await.expect("Hank uploads");
    assert_eq!(up.content_uri.server_name().unwrap().as_str(), env("SYNAPSE_SERVER_NAME"));
    let got = download(&gina, &up.content_uri, MediaFormat::File).await.expect("Gina downloads through Hearth");
    assert_eq!(got, beach);
    let again = download(&gina, &up.content_uri, MediaFormat::File).await.expect("from Hearth's copy");
    assert_eq!(again, beach);
    let thumb = download(&gina, &up.content_uri, scaled(300, 200)).await.expect("Gina's thumbnail");
    let img = image::load_from_memory(&thumb).expect("the thumbnail is an image");
    assert_eq!((img.width(), img.height()), (320, 240), "Hearth's scale thumbnail of the 4:3 picture");

    let gone: OwnedMxcUri = "mxc://other.test/nothingHere".into();
    let started = Instant::now();
    let err = download(&gina, &gone, MediaFormat::File).await.expect_err("a server that is down has nothing to give");
    assert!(started.elapsed() < Duration::from_secs(30), "it fails soon: {:?}", started.elapsed());
    let status = err.as_client_api_error().map(|e| e.status_code.as_u16());
    assert_eq!(status, Some(404), "{err:?}");
}

/// A public room of each server, found in the other server's directory by a client there
/// (`/publicRooms?server=`); a public space on each side with a child room its server alone
/// knows: a member of the space on the other server lists the space's rooms (`/hierarchy`),
/// the child included, learnt from the space's server.
async fn room_directories_and_spaces_are_browsed_across_servers() {
    use matrix_sdk::ruma::{
        api::client::{directory::get_public_rooms_filtered, space::get_hierarchy},
        events::{InitialStateEvent, space::child::SpaceChildEventContent},
        room::RoomType,
        serde::Raw,
    };
    let ivy = on_hearth("sdk_ivy").await;
    let jack = on_synapse("sdk_jack").await;
    let (hearth_name, synapse_name) = (server_name("HEARTH_FED_SERVER_NAME"), server_name("SYNAPSE_SERVER_NAME"));

    let public_room = |name: &str| {
        let mut req = create_room::v3::Request::new();
        req.name = Some(name.into());
        req.visibility = Visibility::Public;
        req.preset = Some(create_room::v3::RoomPreset::PublicChat);
        req
    };
    let hall = ivy.create_room(public_room("Village hall")).await.expect("Ivy's public room");
    let pier = jack.create_room(public_room("Fishing pier")).await.expect("Jack's public room");
    let directory_of = async |client: &Client, server: &OwnedServerName| -> Vec<String> {
        let mut req = get_public_rooms_filtered::v3::Request::new();
        req.server = Some(server.clone());
        let resp = client.send(req).await.expect("the other server's directory");
        resp.chunk.into_iter().filter_map(|c| c.name).collect()
    };
    let on_synapse_dir = directory_of(&ivy, &synapse_name).await;
    assert!(on_synapse_dir.contains(&"Fishing pier".to_owned()), "Ivy sees Synapse's directory: {on_synapse_dir:?}");
    let on_hearth_dir = directory_of(&jack, &hearth_name).await;
    assert!(on_hearth_dir.contains(&"Village hall".to_owned()), "Jack sees Hearth's directory: {on_hearth_dir:?}");

    // A space on each side whose child room only its own server knows.
    let space_with = async |client: &Client, name: &str, child: &OwnedRoomId, via: &OwnedServerName| {
        let mut req = public_room(name);
        let mut creation = matrix_sdk::ruma::api::client::room::create_room::v3::CreationContent::new();
        creation.room_type = Some(RoomType::Space);
        req.creation_content = Some(Raw::new(&creation).unwrap());
        req.visibility = Visibility::Private;
        let child_event = InitialStateEvent::new(child.clone(), SpaceChildEventContent::new(vec![via.clone()]));
        req.initial_state = vec![child_event.to_raw_any()];
        client.create_room(req).await.expect("the space")
    };
    let jacks_space = space_with(&jack, "Harbour", &pier.room_id().to_owned(), &synapse_name).await;
    let ivys_space = space_with(&ivy, "Village", &hall.room_id().to_owned(), &hearth_name).await;

    ivy.join_room_by_id_or_alias(jacks_space.room_id().into(), std::slice::from_ref(&synapse_name))
        .await
        .expect("Ivy joins Jack's space");
    jack.join_room_by_id_or_alias(ivys_space.room_id().into(), std::slice::from_ref(&hearth_name))
        .await
        .expect("Jack joins Ivy's space");
    let names_in = async |client: &Client, space: &OwnedRoomId| -> Vec<String> {
        let resp = client.send(get_hierarchy::v1::Request::new(space.clone())).await.expect("/hierarchy");
        resp.rooms.into_iter().filter_map(|r| r.summary.name).collect()
    };
    let seen = names_in(&ivy, &jacks_space.room_id().to_owned()).await;
    assert_eq!(seen, ["Harbour", "Fishing pier"], "Hearth asked Synapse about the pier");
    let seen = names_in(&jack, &ivys_space.room_id().to_owned()).await;
    assert_eq!(seen, ["Village", "Village hall"], "Synapse asked Hearth about the hall");
}

/// The content of `event` in `room` as `client` reads it from its server (after a redaction,
/// `{}`).
async fn content_of(client: &Client, room: &OwnedRoomId, event: &matrix_sdk::ruma::OwnedEventId) -> serde_json::Value {
    event_of(client, room, event).await.expect("/event")["content"].clone()
}

/// `event` in `room` whole, as `client` reads it from its server (`/event`); None while its
/// server does not have it.
async fn event_of(
    client: &Client,
    room: &OwnedRoomId,
    event: &matrix_sdk::ruma::OwnedEventId,
) -> Option<serde_json::Value> {
    use matrix_sdk::ruma::api::client::room::get_room_event;
    let resp = client.send(get_room_event::v3::Request::new(room.clone(), event.clone())).await.ok()?;
    serde_json::from_str(resp.event.json().get()).ok()
}

/// A room upgraded on either server is followed from the other: the member there sees the
/// tombstone, joins the replacement through the upgrading server and they talk in it. A
/// message redacted by its sender is redacted on the other server too.
async fn upgrades_and_redactions_are_followed_across_servers() {
    use matrix_sdk::ruma::{
        RoomVersionId,
        api::client::{room::upgrade_room, state::get_state_event_for_key},
        events::StateEventType,
    };
    let ivy = on_hearth("sdk_ivy").await;
    let jack = again_on_synapse("sdk_jack").await;
    let jack_id = jack.user_id().unwrap().to_owned();
    let ivy_id = ivy.user_id().unwrap().to_owned();
    let (hearth_name, synapse_name) = (server_name("HEARTH_FED_SERVER_NAME"), server_name("SYNAPSE_SERVER_NAME"));

    for (upgrader, follower, follower_id, upgrader_server) in
        [(&ivy, &jack, &jack_id, &hearth_name), (&jack, &ivy, &ivy_id, &synapse_name)]
    {
        let mut req = create_room::v3::Request::new();
        req.invite = vec![follower_id.clone()];
        // Public: the replacement keeps the join rule, so the member may join it (an invite-only
        // room's members are invited again by the upgrading client, as Element offers).
        req.preset = Some(create_room::v3::RoomPreset::PublicChat);
        req.room_version = Some(RoomVersionId::V10);
        let old = upgrader.create_room(req).await.expect("the room").room_id().to_owned();
        sync_until(follower, "the invite", async |c| c.get_room(&old).is_some_and(|r| r.state() == RoomState::Invited))
            .await;
        follower.get_room(&old).unwrap().join().await.expect("joins");
        // (Synapse gives member counts to lazy-loading clients only: the member event says.)
        sync_until(upgrader, "the join", async |c| {
            let member = c.get_room(&old).unwrap().get_member_no_sync(follower_id).await.unwrap();
            member.is_some_and(|m| *m.membership() == MembershipState::Join)
        })
        .await;

        let said = follower
            .get_room(&old)
            .unwrap()
            .send(RoomMessageEventContent::text_plain("a slip of the tongue"))
            .await
            .expect("sends")
            .response
            .event_id;
        sync_until(upgrader, "the message", async |c| {
            last_body(c, &old).await.as_deref() == Some("a slip of the tongue")
        })
        .await;
        follower.get_room(&old).unwrap().redact(&said, Some("oops"), None).await.expect("redacts it");
        let deadline = Instant::now() + Duration::from_secs(30);
        while content_of(upgrader, &old, &said).await.get("body").is_some() {
            assert!(Instant::now() < deadline, "the redaction never reached the other server");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        let new = upgrader
            .send(upgrade_room::v3::Request::new(old.clone(), RoomVersionId::V11))
            .await
            .expect("upgrades the room")
            .replacement_room;
        let tombstone =
            get_state_event_for_key::v3::Request::new(old.clone(), StateEventType::RoomTombstone, String::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(resp) = follower.send(tombstone.clone()).await {
                let v: serde_json::Value = serde_json::from_str(resp.event_or_content.get()).unwrap();
                assert_eq!(v["replacement_room"], new.as_str(), "{v}");
                break;
            }
            assert!(Instant::now() < deadline, "the tombstone never reached the other server");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        follower
            .join_room_by_id_or_alias(<&RoomOrAliasId>::from(&*new), std::slice::from_ref(upgrader_server))
            .await
            .expect("follows the upgrade");
        follower.get_room(&new).unwrap().send(RoomMessageEventContent::text_plain("followed")).await.unwrap();
        sync_until(upgrader, "a message in the new room", async |c| {
            c.get_room(&new).is_some() && last_body(c, &new).await.as_deref() == Some("followed")
        })
        .await;
    }
}

/// In a room hosted on either server: a message edited on one server reads as edited on the
/// other (its server bundles the latest edit with the original); then the host denies the other
/// server in the room's server ACL, and the guest's next message is refused while the guest's
/// server still receives the room's messages (the spec: denied servers that are residents still
/// get events).
async fn edits_and_server_acls_are_honoured_across_servers() {
    let ivy = on_hearth("sdk_ivy").await;
    let jack = again_on_synapse("sdk_jack").await;
    let jack_id = jack.user_id().unwrap().to_owned();
    let ivy_id = ivy.user_id().unwrap().to_owned();
    let (hearth_name, synapse_name) = (server_name("HEARTH_FED_SERVER_NAME"), server_name("SYNAPSE_SERVER_NAME"));

    for (host, guest, guest_id, guest_server) in
        [(&ivy, &jack, &jack_id, &synapse_name), (&jack, &ivy, &ivy_id, &hearth_name)]
    {
        let mut req = create_room::v3::Request::new();
        req.invite = vec![guest_id.clone()];
        let room = host.create_room(req).await.expect("the room").room_id().to_owned();
        sync_until(guest, "the invite", async |c| c.get_room(&room).is_some_and(|r| r.state() == RoomState::Invited))
            .await;
        guest.get_room(&room).unwrap().join().await.expect("joins");
        sync_until(host, "the join", async |c| {
            let member = c.get_room(&room).unwrap().get_member_no_sync(guest_id).await.unwrap();
            member.is_some_and(|m| *m.membership() == MembershipState::Join)
        })
        .await;

        for (editor, reader) in [(host, guest), (guest, host)] {
            let r = editor.get_room(&room).unwrap();
            let original =
                r.send(RoomMessageEventContent::text_plain("teh quick fox")).await.unwrap().response.event_id;
            let edit = serde_json::json!({
                "msgtype": "m.text", "body": "* the quick fox",
                "m.new_content": {"msgtype": "m.text", "body": "the quick fox"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": original},
            });
            let edit_id = r.send_raw("m.room.message", edit).await.unwrap().response.event_id;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let e = event_of(reader, &room, &original).await.unwrap_or_default();
                let bundled = &e["unsigned"]["m.relations"]["m.replace"];
                if bundled["event_id"] == edit_id.as_str() {
                    assert_eq!(bundled["content"]["m.new_content"]["body"], "the quick fox", "{e}");
                    break;
                }
                assert!(Instant::now() < deadline, "{} never read the edit: {e}", reader.user_id().unwrap());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }

        let acl = serde_json::json!({"allow": ["*"], "deny": [guest_server.as_str()], "allow_ip_literals": false});
        host.get_room(&room).unwrap().send_state_event_raw("m.room.server_acl", "", acl).await.expect("sets the ACL");
        sync_until(guest, "the server ACL", async |c| {
            let r = c.get_room(&room).unwrap();
            r.get_state_event(matrix_sdk::ruma::events::StateEventType::RoomServerAcl, "").await.unwrap().is_some()
        })
        .await;
        guest.get_room(&room).unwrap().send(RoomMessageEventContent::text_plain("said while denied")).await.unwrap();
        host.get_room(&room).unwrap().send(RoomMessageEventContent::text_plain("still heard")).await.unwrap();
        sync_until(guest, "the host's message", async |c| last_body(c, &room).await.as_deref() == Some("still heard"))
            .await;
        // The guest's message left before the host's reached the guest: time enough to arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
        host.sync_once(SyncSettings::default().timeout(Duration::from_millis(500))).await.unwrap();
        let seen = history(host, &room).await;
        assert!(
            !seen.iter().any(|b| b == "said while denied"),
            "{} took a message from a denied server: {seen:?}",
            host.user_id().unwrap()
        );
        assert!(seen.iter().any(|b| b == "still heard"), "{seen:?}");
    }
}

/// Polls `read` (what `watcher`'s server says) until `done`, after syncing; returns how long it
/// took. At most 30 s.
async fn seen_after(watcher: &Client, what: &str, mut done: impl AsyncFnMut(&Client) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if done(watcher).await {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{} never saw: {what}", watcher.user_id().unwrap());
        watcher.sync_once(SyncSettings::default().timeout(Duration::from_millis(100))).await.unwrap();
    }
}

/// Gina (Hearth) and Hank (Synapse) share a room: each one's presence (with a status message),
/// new display name and new avatar reach the other's server and client within a second.
async fn presence_and_profiles_cross_between_servers() {
    use matrix_sdk::ruma::{
        api::client::presence::{get_presence, set_presence},
        presence::PresenceState,
    };
    let gina = on_hearth("sdk_gina").await;
    let hank = again_on_synapse("sdk_hank").await;
    let hank_id = hank.user_id().unwrap().to_owned();
    let mut req = create_room::v3::Request::new();
    req.invite = vec![hank_id.clone()];
    let room = gina.create_room(req).await.expect("the room").room_id().to_owned();
    sync_until(&hank, "the invite", async |c| c.get_room(&room).is_some_and(|r| r.state() == RoomState::Invited)).await;
    hank.get_room(&room).unwrap().join().await.expect("joins");
    sync_until(&gina, "the join", async |c| {
        let member = c.get_room(&room).unwrap().get_member_no_sync(&hank_id).await.unwrap();
        member.is_some_and(|m| *m.membership() == MembershipState::Join)
    })
    .await;

    for (changer, watcher, name) in [(&gina, &hank, "Gina at home"), (&hank, &gina, "Hank on the road")] {
        let me = changer.user_id().unwrap().to_owned();
        let status = format!("{name}: walking the dog");
        let mut set = set_presence::v3::Request::new(me.clone(), PresenceState::Online);
        set.status_msg = Some(status.clone());
        changer.send(set).await.expect("sets presence");
        let took = seen_after(watcher, "the presence", async |w| {
            let got = w.send(get_presence::v3::Request::new(me.clone())).await;
            got.is_ok_and(|p| p.presence == PresenceState::Online && p.status_msg.as_deref() == Some(&status))
        })
        .await;
        assert!(took < Duration::from_secs(1), "{me}'s presence took {took:?}");

        changer.account().set_display_name(Some(name)).await.expect("sets a display name");
        let took = seen_after(watcher, "the display name", async |w| {
            let member = w.get_room(&room).unwrap().get_member_no_sync(&me).await.unwrap();
            member.is_some_and(|m| m.display_name() == Some(name))
        })
        .await;
        assert!(took < Duration::from_secs(1), "{me}'s display name took {took:?}");

        let avatar = changer.media().upload(&mime::IMAGE_PNG, photo(32, 32), None).await.expect("uploads").content_uri;
        changer.account().set_avatar_url(Some(&avatar)).await.expect("sets an avatar");
        let took = seen_after(watcher, "the avatar", async |w| {
            let member = w.get_room(&room).unwrap().get_member_no_sync(&me).await.unwrap();
            member.is_some_and(|m| m.avatar_url() == Some(&*avatar))
        })
        .await;
        assert!(took < Duration::from_secs(1), "{me}'s avatar took {took:?}");
        let picture =
            download(watcher, &avatar, scaled(32, 32)).await.expect("the avatar through the watcher's server");
        assert!(image::guess_format(&picture).is_ok(), "an image");
    }
}

/// The certificate `url`'s server presents (DER), read over a new connection that trusts the
/// test CA.
async fn served_certificate(url: &str) -> Vec<u8> {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(env("HEARTH_FED_CA")).unwrap()).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([ca]).tls_info(true).build().unwrap();
    let resp = client.get(format!("{url}/_matrix/client/versions")).send().await.expect("HTTPS answers");
    let info = resp.extensions().get::<reqwest::tls::TlsInfo>().expect("TLS details");
    info.peer_certificate().expect("a certificate").to_vec()
}

/// No nginx in front: Hearth as tls.hearth.test serves apps and federation on its own TLS
/// listener on port 443 (other servers find it through its own `.well-known/matrix/server`),
/// with the certificate files of the test CA. Synapse's user is invited, joins and talks both
/// ways; then the files are replaced with a renewed certificate while a /sync long-poll is open:
/// the poll ends normally, new connections get the new certificate, and the conversation (and
/// Synapse's federation traffic, over fresh connections) goes on.
#[tokio::test]
#[ignore = "needs tests/federation/run.sh"]
async fn apps_and_synapse_use_hearths_own_tls_listener_through_a_certificate_renewal() {
    let name = env("HEARTH_FED_TLS_NAME");
    let ip: std::net::IpAddr = env("HEARTH_FED_TLS_IP").parse().unwrap();
    let made = std::path::PathBuf::from(env("HEARTH_FED_WORK")).join("tls");
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("fullchain.pem"), files.path().join("privkey.pem"));
    std::fs::copy(made.join(format!("{name}.pem")), &cert).unwrap();
    std::fs::copy(made.join(format!("{name}.key")), &key).unwrap();
    let (cert_path, key_path, server_name) = (cert.clone(), key.clone(), name.clone());
    let _hearth = start(async move |c| {
        c.server_name = server_name.as_str().try_into().unwrap();
        c.listeners[0].port = 443;
        c.listeners[0].bind_addresses = vec![ip];
        c.listeners[0].tls = true;
        c.tls_certificate_path = Some(cert_path);
        c.tls_private_key_path = Some(key_path);
        c.tls_reload_interval = hearth_server::config::HumanDuration(Duration::from_millis(200));
        c.public_baseurl = Some(format!("https://{server_name}/"));
        c.federation_custom_ca_list = vec![env("HEARTH_FED_CA").into()];
        c.trusted_key_servers = Vec::new();
        c.ip_range_whitelist = vec!["127.0.0.0/8".to_owned()];
        for (_, rl) in c.rate_limits_mut() {
            *rl = RateLimit { per_second: 1000.0, burst_count: 1000.0 };
        }
        hearth_server::register_user_offline(c.clone(), "sdk_kim", "password-sdk_kim".to_owned(), false).await.unwrap();
    })
    .await;
    let url = format!("https://{name}");
    let kim = sdk_client(&url).await;
    kim.matrix_auth().login_username("sdk_kim", "password-sdk_kim").send().await.expect("Kim signs in over TLS");
    let lou = on_synapse("sdk_lou").await;
    let lou_id = lou.user_id().unwrap().to_owned();

    let mut req = create_room::v3::Request::new();
    req.name = Some("No proxy".into());
    req.invite = vec![lou_id.clone()];
    let room = kim.create_room(req).await.expect("Kim makes the room");
    let room_id = room.room_id().to_owned();
    sync_until(&lou, "the invite", async |c| c.get_room(&room_id).is_some_and(|r| r.state() == RoomState::Invited))
        .await;
    lou.get_room(&room_id).unwrap().join().await.expect("Lou joins through Synapse, over Hearth's TLS");
    sync_until(&kim, "Lou joined", async |c| c.get_room(&room_id).unwrap().joined_members_count() == 2).await;
    let talk = async |round: &str| {
        let line = format!("kim {round}");
        room.send(RoomMessageEventContent::text_plain(&line)).await.expect("Kim sends");
        sync_until(&lou, &line, async |c| last_body(c, &room_id).await.as_deref() == Some(line.as_str())).await;
        let line = format!("lou {round}");
        lou.get_room(&room_id).unwrap().send(RoomMessageEventContent::text_plain(&line)).await.expect("Lou sends");
        sync_until(&kim, &line, async |c| last_body(c, &room_id).await.as_deref() == Some(line.as_str())).await;
    };
    talk("before").await;

    // Renewed files while Kim's long-poll is open.
    let before = served_certificate(&url).await;
    let polling = {
        let kim = kim.clone();
        tokio::spawn(async move { kim.sync_once(SyncSettings::default().timeout(Duration::from_secs(3))).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::copy(made.join("tls2.hearth.test.pem"), &cert).unwrap();
    std::fs::copy(made.join("tls2.hearth.test.key"), &key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_certificate(&url).await == before {
        assert!(Instant::now() < deadline, "the renewed certificate was not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    polling.await.unwrap().expect("the /sync open during the renewal ends normally");
    talk("after").await;
    assert_eq!(
        history(&lou, &room_id).await,
        ["kim before", "lou before", "kim after", "lou after"],
        "Lou reads the whole conversation"
    );
}
