//! Built-in HTTPS with the client library Element X is built on: matrix-sdk clients that trust
//! only a test CA sign in, make a room and talk over Hearth's own TLS listener (HTTP/2); a
//! client that does not trust that CA cannot connect at all.

use hearth_blackbox::{Server, plain_bodies, start};
use matrix_sdk::{
    Client, RoomState,
    config::SyncSettings,
    room::MessagesOptions,
    ruma::{api::client::room::create_room, events::room::message::RoomMessageEventContent},
};
use std::time::{Duration, Instant};

/// A test CA, and Hearth serving HTTPS with a certificate it signed for 127.0.0.1 (Alice and
/// Bob have accounts).
async fn https_family() -> (Server, String, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Hearth matrix-sdk test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
    let (cert_pem, key_pem, ca_pem) = (cert.pem(), key.serialize_pem(), ca.pem());
    let server = start(async |c| {
        let dir = c.data_dir.clone().unwrap();
        std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &key_pem).unwrap();
        c.listeners[0].tls = true;
        c.tls_certificate_path = Some(dir.join("cert.pem"));
        c.tls_private_key_path = Some(dir.join("key.pem"));
        for name in ["alice", "bob"] {
            hearth_server::register_user_offline(c.clone(), name, format!("password-{name}"), false).await.unwrap();
        }
    })
    .await;
    let url = format!("https://127.0.0.1:{}", server.running.local_addr().port());
    (server, url, ca_pem)
}

async fn signed_in(url: &str, ca_pem: &str, name: &str) -> Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let c = Client::builder()
        .homeserver_url(url)
        .add_root_certificates(vec![ca])
        .disable_built_in_root_certificates()
        .sqlite_store(tempfile::tempdir().unwrap().keep(), None)
        .build()
        .await
        .expect("client builds");
    c.matrix_auth().login_username(name, &format!("password-{name}")).send().await.expect("signs in over HTTPS");
    c
}

#[tokio::test]
async fn matrix_sdk_clients_talk_over_hearths_own_https() {
    let (_server, url, ca) = https_family().await;
    let alice = signed_in(&url, &ca, "alice").await;
    let bob = signed_in(&url, &ca, "bob").await;
    let mut req = create_room::v3::Request::new();
    req.invite = vec![bob.user_id().unwrap().to_owned()];
    let room = alice.create_room(req).await.expect("Alice makes a room").room_id().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        bob.sync_once(SyncSettings::default().timeout(Duration::from_millis(300))).await.unwrap();
        if bob.get_room(&room).is_some_and(|r| r.state() == RoomState::Invited) {
            break;
        }
        assert!(Instant::now() < deadline, "Bob never saw the invite");
    }
    bob.get_room(&room).unwrap().join().await.expect("Bob joins");
    alice.get_room(&room).unwrap().send(RoomMessageEventContent::text_plain("over our own HTTPS")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        bob.sync_once(SyncSettings::default().timeout(Duration::from_millis(300))).await.unwrap();
        let page = bob.get_room(&room).unwrap().messages(MessagesOptions::backward()).await.unwrap();
        if plain_bodies(&page.chunk).iter().any(|b| b == "over our own HTTPS") {
            break;
        }
        assert!(Instant::now() < deadline, "Bob never read Alice's message");
    }

    // A client that does not trust the test CA gets nowhere.
    let stranger = Client::builder().homeserver_url(&url).build().await.expect("client builds");
    let refused = stranger.matrix_auth().login_username("alice", "password-alice").send().await;
    assert!(refused.is_err(), "an untrusted certificate must not be accepted");
}
