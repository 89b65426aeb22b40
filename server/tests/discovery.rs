//! Discovery and advertisement: /versions, .well-known, capabilities, the signed server key.

mod common;

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use common::TestServer;
use ruma::{
    CanonicalJsonValue,
    signatures::{PublicKeyMap, PublicKeySet, verify_json},
};
use serde_json::Value;

#[tokio::test]
async fn versions_lists_served_versions() {
    let s = TestServer::start().await;
    let (st, v) = s.get("/_matrix/client/versions", None).await;
    assert_eq!(st, 200);
    let versions: Vec<&str> = v["versions"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(versions.contains(&"v1.3"), "refresh tokens are served: {versions:?}");
    assert!(versions.contains(&"v1.11"), "authenticated media is served: {versions:?}");
    assert_eq!(v["unstable_features"]["org.matrix.msc3916.stable"], true);
    assert!(v["unstable_features"].is_object());
}

#[tokio::test]
async fn well_known_documents_derive_from_public_baseurl() {
    let s = TestServer::start_with(|c| c.public_baseurl = Some("https://matrix.example.org".into())).await;
    let (st, client) = s.get("/.well-known/matrix/client", None).await;
    assert_eq!(st, 200);
    assert_eq!(client["m.homeserver"]["base_url"], "https://matrix.example.org");
    let (st, server) = s.get("/.well-known/matrix/server", None).await;
    assert_eq!(st, 200);
    assert_eq!(server["m.server"], "matrix.example.org:443");
}

#[tokio::test]
async fn capabilities_advertise_password_change_and_room_versions() {
    let s = TestServer::start().await;
    let t = s.user("cap").await;
    let (st, v) = s.get("/_matrix/client/v3/capabilities", Some(&t)).await;
    assert_eq!(st, 200, "{v}");
    let caps = &v["capabilities"];
    assert_eq!(caps["m.room_versions"]["default"], "12");
    assert_eq!(caps["m.room_versions"]["available"]["12"], "stable");
    assert_eq!(caps["m.get_login_token"]["enabled"], true);
}

#[tokio::test]
async fn server_key_is_signed_by_itself_and_valid_for_a_while() {
    let s = TestServer::start().await;
    let (st, doc) = s.get("/_matrix/key/v2/server", None).await;
    assert_eq!(st, 200);
    assert_eq!(doc["server_name"], "hearth.test");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(doc["valid_until_ts"].as_u64().unwrap() > now + 3_600_000);
    let (key_id, key) = doc["verify_keys"].as_object().unwrap().iter().next().unwrap();
    assert!(key_id.starts_with("ed25519:"));
    assert_eq!(STANDARD_NO_PAD.decode(key["key"].as_str().unwrap()).unwrap().len(), 32);

    // Verify the signature with ruma, as a remote server would.
    let mut keys = PublicKeySet::new();
    keys.insert(key_id.clone(), ruma::serde::Base64::parse(key["key"].as_str().unwrap()).unwrap());
    let mut map = PublicKeyMap::new();
    map.insert("hearth.test".to_owned(), keys);
    let CanonicalJsonValue::Object(obj) = CanonicalJsonValue::try_from(doc.clone()).unwrap() else { panic!() };
    verify_json(&map, &obj).expect("signature verifies");

    // Tampering breaks it.
    let mut forged: Value = doc.clone();
    forged["valid_until_ts"] = Value::from(1u64 << 50);
    let CanonicalJsonValue::Object(obj) = CanonicalJsonValue::try_from(forged).unwrap() else { panic!() };
    assert!(verify_json(&map, &obj).is_err());
}

/// One version everywhere: `hearth --version`, federation's `/version`, Synapse's admin
/// `server_version` (open to anyone, as in Synapse) and the dashboard.
#[tokio::test]
async fn every_place_that_names_the_version_agrees() {
    let s = TestServer::start().await;
    let (st, v) = s.get("/_matrix/federation/v1/version", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["server"]["name"], "Hearth");
    let version = v["server"]["version"].as_str().unwrap().to_owned();
    assert!(version.starts_with(env!("CARGO_PKG_VERSION")), "{version}");
    let (st, v) = s.get("/_synapse/admin/v1/server_version", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["server_version"], version);
    let running = s.running.as_ref().unwrap();
    let status: Value = reqwest::Client::new()
        .get(format!("http://{}/_hearth/admin/v1/status", running.admin_addr()))
        .bearer_auth(running.admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["version"], version);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth")).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("hearth {version}"));
}

#[tokio::test]
async fn the_signing_key_survives_a_restart() {
    let mut s = TestServer::start().await;
    let first = s.running.as_ref().unwrap().signing_key();
    s.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let moved = std::mem::replace(&mut s.dir, dir);
    let config = common::test_config(moved.path());
    let s2 = TestServer::start_in(moved, config).await;
    assert_eq!(s2.running.as_ref().unwrap().signing_key(), first);
    let (_, doc) = s2.get("/_matrix/key/v2/server", None).await;
    assert!(doc["verify_keys"].get(&first.0).is_some());
}
