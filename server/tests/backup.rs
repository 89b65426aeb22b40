//! `hearth backup` and `hearth restore`, run as the real binary against a server that is
//! serving (and being written to) while the backup is taken: the restored server, in another
//! data folder on another port, has every message answered before the backup started, the
//! media, the accounts with their passwords and the same signing key. Damaged, tampered, newer
//! and misplaced restores are refused and change nothing.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use common::{TestServer, test_config, urlencode};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn config_file(dir: &Path, data: &Path) -> PathBuf {
    let path = dir.join("homeserver.toml");
    std::fs::write(
        &path,
        format!(
            "server_name = \"{}\"\ndata_dir = \"{}\"\nsecret_store = \"file\"\n",
            common::SERVER_NAME,
            data.display()
        ),
    )
    .unwrap();
    path
}

/// Runs the `hearth` binary; answers (success, stdout, stderr).
fn hearth(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn messages(s: &TestServer, token: &str, room: &str) -> Vec<String> {
    let (st, v) =
        s.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=1000", urlencode(room)), Some(token)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_into_a_new_data_folder() {
    let s = TestServer::start().await;
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let config = config_file(work.path(), &data);
    let alice = s.user("alice").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    let picture: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (st, up) = s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload", Some(&alice), picture.clone()).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    let mxc = up["content_uri"].as_str().unwrap().to_owned();
    let mut acknowledged = Vec::new();
    for i in 0..30 {
        let body = format!("before the backup {i}");
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/b{i}", urlencode(&room)),
                Some(&alice),
                json!({"msgtype": "m.text", "body": body}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        acknowledged.push(body);
    }
    let key = s.get("/_matrix/key/v2/server", None).await.1["verify_keys"].clone();

    // Messages keep coming while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, base, token, room) = (stop.clone(), s.base.clone(), alice.clone(), room.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0;
            while !stop.load(Ordering::SeqCst) {
                let url =
                    format!("{base}/_matrix/client/v3/rooms/{}/send/m.room.message/during{sent}", urlencode(&room));
                let r = http
                    .put(url)
                    .bearer_auth(&token)
                    .json(&json!({"msgtype": "m.text", "body": "during"}))
                    .send()
                    .await;
                assert_eq!(r.unwrap().status(), 200, "the server kept answering during the backup");
                sent += 1;
            }
            sent
        })
    };
    let out = work.path().join("backups");
    let (ok, stdout, stderr) = {
        let (c, o) = (config.clone(), out.clone());
        tokio::task::spawn_blocking(move || {
            hearth(&["backup", "--config", c.to_str().unwrap(), "--output", o.to_str().unwrap()])
        })
        .await
        .unwrap()
    };
    stop.store(true, Ordering::SeqCst);
    let during = writer.await.unwrap();
    assert!(ok, "hearth backup failed: {stderr}");
    let backup = PathBuf::from(stdout.lines().last().unwrap());
    assert!(backup.starts_with(&out) && backup.join("manifest.json").exists(), "{stdout}");
    assert!(during > 0, "messages were sent while the backup ran");
    let manifest: Value = serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["server_name"], common::SERVER_NAME);
    assert_eq!(manifest["media"].as_array().unwrap().len(), 1, "{manifest}");
    assert!(
        std::fs::read_dir(&out).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with(".partial")),
        "no partial backup is left"
    );

    // A second backup into the same folder copies no media file again.
    let media_file = std::fs::read_dir(out.join("media")).unwrap().flatten().next().unwrap().path();
    let media_file = std::fs::read_dir(media_file).unwrap().flatten().next().unwrap().path();
    let copied_at = std::fs::metadata(&media_file).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (ok, second, stderr) =
        hearth(&["backup", "--config", config.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert_ne!(second.lines().last(), stdout.lines().last(), "a new folder per backup");
    assert_eq!(std::fs::metadata(&media_file).unwrap().modified().unwrap(), copied_at, "media copied once");

    // Restore into a new data folder, then serve it on another port.
    let new_work = tempfile::tempdir().unwrap();
    let new_data = new_work.path().join("data");
    let new_config = config_file(new_work.path(), &new_data);
    let (ok, said, stderr) =
        hearth(&["restore", "--config", new_config.to_str().unwrap(), "--from", backup.to_str().unwrap()]);
    assert!(ok, "hearth restore failed: {stderr}");
    assert!(said.contains("Restored the backup of hearth.test (1 media files)"), "{said}");
    // Never over a database.
    let (ok, _, refused) =
        hearth(&["restore", "--config", new_config.to_str().unwrap(), "--from", backup.to_str().unwrap()]);
    assert!(!ok && refused.contains("already has a database"), "{refused}");

    let restored = TestServer::start_in(new_work, test_config(&new_data)).await;
    assert_ne!(restored.base, s.base);
    let (st, login) = restored
        .post(
            "/_matrix/client/v3/login",
            None,
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "password1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "alice signs in with her password: {login}");
    let token = login["access_token"].as_str().unwrap();
    let got = messages(&restored, token, &room).await;
    for m in &acknowledged {
        assert!(got.contains(m), "{m} is in the restored room");
    }
    assert_eq!(restored.get("/_matrix/key/v2/server", None).await.1["verify_keys"], key, "the same signing key");
    let media = restored
        .http
        .get(format!("{}/_matrix/client/v1/media/download/{}", restored.base, mxc.trim_start_matches("mxc://")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(media.status(), 200);
    assert_eq!(media.bytes().await.unwrap().to_vec(), picture, "the same media");
}

#[tokio::test]
async fn damaged_tampered_and_newer_backups_are_refused_and_change_nothing() {
    let s = TestServer::start().await;
    s.user("bob").await;
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let config = config_file(work.path(), &data);
    let out = work.path().join("backups");
    let (ok, stdout, stderr) =
        hearth(&["backup", "--config", config.to_str().unwrap(), "--output", out.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let good = PathBuf::from(stdout.lines().last().unwrap());

    let copy = |name: &str| {
        let to = out.join(name);
        std::fs::create_dir_all(to.join("secrets")).unwrap();
        for e in walk(&good) {
            let rel = e.strip_prefix(&good).unwrap();
            std::fs::copy(&e, to.join(rel)).unwrap();
        }
        to
    };
    let restore_into_fresh = |from: &Path| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = config_file(dir.path(), &data);
        let (ok, _, stderr) =
            hearth(&["restore", "--config", config.to_str().unwrap(), "--from", from.to_str().unwrap()]);
        assert!(!ok, "refused");
        assert!(!data.join("hearth.db").exists(), "no database written");
        assert!(!data.join("secrets/signing_key").exists(), "no secret written");
        stderr
    };

    // A byte changed in the database.
    let tampered = copy("tampered");
    let db = tampered.join("hearth.db");
    let mut bytes = std::fs::read(&db).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&db, bytes).unwrap();
    let said = restore_into_fresh(&tampered);
    assert!(said.contains("hearth.db in the backup was changed"), "{said}");

    // A secret cut short.
    let truncated = copy("truncated");
    let key = truncated.join("secrets/signing_key");
    let len = std::fs::metadata(&key).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&key).unwrap().set_len(len / 2).unwrap();
    let said = restore_into_fresh(&truncated);
    assert!(said.contains("secrets/signing_key in the backup is") && said.contains("damaged or incomplete"), "{said}");

    // Made by a newer Hearth.
    let newer = copy("newer");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(newer.join("manifest.json")).unwrap()).unwrap();
    manifest["schema_compat"] = json!(99);
    std::fs::write(newer.join("manifest.json"), manifest.to_string()).unwrap();
    let said = restore_into_fresh(&newer);
    assert!(said.contains("made by a newer Hearth"), "{said}");

    // Not a backup at all.
    let said = restore_into_fresh(work.path());
    assert!(said.contains("is not a Hearth backup"), "{said}");

    // The running server's own folder is never restored over.
    let (ok, _, said) = hearth(&["restore", "--config", config.to_str().unwrap(), "--from", good.to_str().unwrap()]);
    assert!(!ok && said.contains("already has a database"), "{said}");
    let (st, _) = s
        .post(
            "/_matrix/client/v3/login",
            None,
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "password1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "the server goes on");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
