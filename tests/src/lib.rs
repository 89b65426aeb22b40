//! Shared helpers for the black-box suites: a real Hearth on a random loopback port with a
//! temporary data folder, and real clients (the `matrix-sdk` crate, Element X's foundation).

use std::path::Path;

use hearth_server::{
    Config, Homeserver, Running,
    config::{RateLimit, SecretStoreChoice},
};
use tempfile::TempDir;

pub const SERVER_NAME: &str = "blackbox.test";

pub struct Server {
    pub running: Running,
    pub url: String,
    pub dir: TempDir,
}

/// A config for tests: loopback port 0, file secrets, generous rate limits.
pub fn config(dir: &Path) -> Config {
    let mut c =
        Config { server_name: SERVER_NAME.try_into().unwrap(), data_dir: Some(dir.to_path_buf()), ..Config::default() };
    c.listeners[0].port = 0;
    c.admin.port = 0;
    c.secret_store = SecretStoreChoice::File;
    // Tests that are about a limit set it back; the others act faster than people do.
    for (_, rl) in c.rate_limits_mut() {
        *rl = RateLimit { per_second: 1000.0, burst_count: 1000.0 };
    }
    c
}

/// Starts a server; `setup` adjusts the config and may prepare the data folder first.
pub async fn start(setup: impl AsyncFnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    setup(&mut c).await;
    let running = Homeserver::start(c).await.expect("server starts");
    let url = format!("http://{}", running.local_addr());
    Server { running, url, dir }
}

/// A matrix-sdk client with its own SQLite store, not logged in.
pub async fn client(server: &Server) -> matrix_sdk::Client {
    let store = tempfile::tempdir().unwrap().keep();
    matrix_sdk::Client::builder()
        .homeserver_url(&server.url)
        .sqlite_store(store, None)
        .handle_refresh_tokens()
        .build()
        .await
        .expect("client builds")
}

/// A server where Alice and Bob have accounts (passwords "password-alice" and "password-bob").
pub async fn family() -> Server {
    start(async |c| {
        for name in ["alice", "bob"] {
            hearth_server::register_user_offline(c.clone(), name, format!("password-{name}"), false).await.unwrap();
        }
    })
    .await
}

/// A new device of `name` (a user made by `family`), signed in.
pub async fn signed_in(server: &Server, name: &str) -> matrix_sdk::Client {
    let c = client(server).await;
    c.matrix_auth().login_username(name, &format!("password-{name}")).send().await.unwrap();
    c
}

/// The bodies of the decrypted messages among `events` (an event that stayed encrypted has none).
pub fn decrypted_bodies(events: &[matrix_sdk::deserialized_responses::TimelineEvent]) -> Vec<String> {
    use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent};
    events
        .iter()
        .filter(|e| e.encryption_info().is_some())
        .filter_map(|e| match e.raw().deserialize() {
            Ok(AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(m))) => {
                m.as_original().map(|o| o.content.body().to_owned())
            }
            _ => None,
        })
        .collect()
}

/// The bodies of the plain (unencrypted) text messages among `events`, in their order.
pub fn plain_bodies(events: &[matrix_sdk::deserialized_responses::TimelineEvent]) -> Vec<String> {
    use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent};
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

/// A direct room Alice makes with Bob (both may change its state), Bob invited and joined;
/// encrypted when asked. Both clients have synced it.
pub async fn room_with_bob(
    alice: &matrix_sdk::Client,
    bob: &matrix_sdk::Client,
    encrypted: bool,
) -> matrix_sdk::ruma::OwnedRoomId {
    use matrix_sdk::{
        config::SyncSettings,
        ruma::{
            UserId,
            api::client::room::create_room,
            events::{InitialStateEvent, room::encryption::RoomEncryptionEventContent},
        },
    };
    // Without waiting: a client that synced already would long-poll for 30 s (matrix-sdk's
    // default) when nothing is new.
    let now = || SyncSettings::default().timeout(std::time::Duration::ZERO);
    alice.sync_once(now()).await.unwrap();
    bob.sync_once(now()).await.unwrap();
    let mut req = create_room::v3::Request::new();
    req.invite = vec![UserId::parse(format!("@bob:{SERVER_NAME}")).unwrap()];
    req.is_direct = true;
    req.preset = Some(create_room::v3::RoomPreset::TrustedPrivateChat);
    if encrypted {
        req.initial_state = vec![
            InitialStateEvent::with_empty_state_key(RoomEncryptionEventContent::with_recommended_defaults())
                .to_raw_any(),
        ];
    }
    let room = alice.create_room(req).await.expect("room created");
    bob.sync_once(now()).await.unwrap();
    bob.get_room(room.room_id()).expect("bob is invited").join().await.expect("bob joins");
    alice.sync_once(now()).await.unwrap();
    room.room_id().to_owned()
}

/// A PNG photo of `w` x `h` pixels (a gradient, so thumbnails are real work).
pub fn photo(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 77]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
