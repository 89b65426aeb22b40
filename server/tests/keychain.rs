//! Secrets in a real OS keychain: the Secret Service of gnome-keyring, which `scripts/test.sh`
//! starts unlocked under `dbus-run-session`. Ignored in a plain `cargo test` (no keychain
//! there); the file fallback is covered by `process.rs` and the unit tests.

mod common;

use hearth_server::config::SecretStoreChoice;

fn require_session_bus() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run under dbus-run-session with an unlocked gnome-keyring (scripts/test.sh does)"
    );
}

async fn start(dir: tempfile::TempDir, choice: SecretStoreChoice) -> common::TestServer {
    let mut config = common::test_config(dir.path());
    config.secret_store = choice;
    common::TestServer::start_in(dir, config).await
}

/// Moves the data folder out of a stopped server so the next one can reuse it.
fn take_dir(s: &mut common::TestServer) -> tempfile::TempDir {
    std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap())
}

#[tokio::test]
#[ignore = "needs an unlocked Secret Service (scripts/test.sh provides one)"]
async fn auto_uses_the_keychain_and_a_restart_keeps_the_signing_key() {
    require_session_bus();
    let mut s = start(tempfile::tempdir().unwrap(), SecretStoreChoice::Auto).await;
    let running = s.running.as_ref().unwrap();
    assert_eq!(running.secret_store(), "the OS keychain");
    let key = running.signing_key();
    let secret = running.registration_shared_secret().to_owned();
    // Nothing secret was written to disk.
    assert!(!s.dir.path().join("secrets/signing_key").exists());
    s.stop().await;

    let dir = take_dir(&mut s);
    let s2 = start(dir, SecretStoreChoice::Auto).await;
    let running = s2.running.as_ref().unwrap();
    assert_eq!(running.signing_key(), key, "a restart must never produce a new signing key");
    assert_eq!(running.registration_shared_secret(), secret);
    let (_, doc) = s2.get("/_matrix/key/v2/server", None).await;
    assert!(doc["verify_keys"].get(&key.0).is_some());
}

#[tokio::test]
#[ignore = "needs an unlocked Secret Service (scripts/test.sh provides one)"]
async fn switching_to_file_storage_still_finds_the_keychain_key() {
    require_session_bus();
    let mut s = start(tempfile::tempdir().unwrap(), SecretStoreChoice::Keychain).await;
    let key = s.running.as_ref().unwrap().signing_key();
    s.stop().await;
    let dir = take_dir(&mut s);
    let s2 = start(dir, SecretStoreChoice::File).await;
    assert_eq!(s2.running.as_ref().unwrap().signing_key(), key);
}

#[tokio::test]
#[ignore = "needs an unlocked Secret Service (scripts/test.sh provides one)"]
async fn two_servers_on_one_machine_keep_separate_keys() {
    require_session_bus();
    let a = start(tempfile::tempdir().unwrap(), SecretStoreChoice::Keychain).await;
    let b = start(tempfile::tempdir().unwrap(), SecretStoreChoice::Keychain).await;
    assert_ne!(a.running.as_ref().unwrap().signing_key(), b.running.as_ref().unwrap().signing_key());
}
