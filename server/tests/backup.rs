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

use common::{TestServer, binary::hearth, files_under, test_config, urlencode};
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
        for e in files_under(&good) {
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

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| std::fs::read(f).unwrap().windows(needle.len()).any(|w| w == needle))
        .collect()
}

#[tokio::test]
async fn an_encrypted_backup_hides_its_contents_and_restores_only_with_its_passphrase() {
    let s = TestServer::start().await;
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let config = config_file(work.path(), &data);
    let alice = s.user("alice").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    let secret_text = "grandma's secret family recipe";
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/r1", urlencode(&room));
    assert_eq!(s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": secret_text})).await.0, 200);
    let picture: Vec<u8> = (0..150_000u32).map(|i| (i % 241) as u8 ^ 0x5a).collect();
    let (st, up) = s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload", Some(&alice), picture.clone()).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    let mxc = up["content_uri"].as_str().unwrap().to_owned();
    let key = s.get("/_matrix/key/v2/server", None).await.1["verify_keys"].clone();
    let signing_key = std::fs::read(data.join("secrets/signing_key")).unwrap();

    let out = work.path().join("cloud-folder");
    let right = work.path().join("passphrase");
    std::fs::write(&right, "correct horse battery staple\n").unwrap();
    let wrong = work.path().join("wrong");
    std::fs::write(&wrong, "incorrect horse battery staple\n").unwrap();
    let short = work.path().join("short");
    std::fs::write(&short, "hunter2\n").unwrap();
    let (c, o, p) = (config.to_str().unwrap(), out.to_str().unwrap(), right.to_str().unwrap());

    let (ok, _, said) = hearth(&["backup", "--config", c, "--output", o, "--passphrase-file", short.to_str().unwrap()]);
    assert!(!ok && said.contains("at least 8 characters"), "{said}");
    let (ok, stdout, stderr) = hearth(&["backup", "--config", c, "--output", o, "--passphrase-file", p]);
    assert!(ok, "{stderr}");
    let backup = PathBuf::from(stdout.lines().last().unwrap());
    assert!(out.join("backup-key.age").exists());
    assert!(backup.join("manifest.json.age").exists() && !backup.join("manifest.json").exists());
    assert!(backup.join("hearth.db.age").exists() && !backup.join("hearth.db").exists());
    // Nothing readable: not the message, not the picture, not the signing key, and the media
    // file is not named by the picture's hash.
    assert_eq!(files_containing(&out, secret_text.as_bytes()), Vec::<PathBuf>::new());
    assert_eq!(files_containing(&out, &picture[1000..1064]), Vec::<PathBuf>::new());
    assert_eq!(files_containing(&out, &signing_key), Vec::<PathBuf>::new());
    let picture_hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&picture))
    };
    assert!(!files_under(&out).iter().any(|f| f.to_string_lossy().contains(&picture_hash)), "media named by its hash");
    // No plain copy was left in the data folder either.
    assert!(!data.join(".backup-snapshot.db").exists());

    // The folder holds encrypted backups: no plain one among them, no other passphrase.
    let (ok, _, said) = hearth(&["backup", "--config", c, "--output", o]);
    assert!(!ok && said.contains("holds encrypted backups"), "{said}");
    let (ok, _, said) = hearth(&["backup", "--config", c, "--output", o, "--passphrase-file", wrong.to_str().unwrap()]);
    assert!(!ok && said.contains("passphrase does not open"), "{said}");

    let restore = |from: &Path, passphrase: Option<&Path>| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = config_file(dir.path(), &data);
        let mut args = vec!["restore", "--config", config.to_str().unwrap(), "--from", from.to_str().unwrap()];
        if let Some(p) = passphrase {
            args.extend(["--passphrase-file", p.to_str().unwrap()]);
        }
        let (ok, said, stderr) = hearth(&args);
        (ok, format!("{said}{stderr}"), dir, data)
    };
    let refused = |(ok, said, _dir, data): (bool, String, tempfile::TempDir, PathBuf)| {
        assert!(!ok, "refused: {said}");
        assert!(!data.join("hearth.db").exists() && !data.join("secrets/signing_key").exists(), "nothing written");
        said
    };
    assert!(refused(restore(&backup, None)).contains("this backup is encrypted"));
    assert!(refused(restore(&backup, Some(&wrong))).contains("passphrase does not open"));
    // A byte changed in the encrypted database, or the media file cut short: age's
    // authentication finds both.
    let tampered = out.join("hearth-tampered");
    std::fs::create_dir_all(tampered.join("secrets")).unwrap();
    for f in files_under(&backup) {
        std::fs::copy(&f, tampered.join(f.strip_prefix(&backup).unwrap())).unwrap();
    }
    let db = tampered.join("hearth.db.age");
    let mut bytes = std::fs::read(&db).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&db, bytes).unwrap();
    let said = refused(restore(&tampered, Some(&right)));
    assert!(said.contains("hearth.db in the backup is damaged or was changed"), "{said}");
    std::fs::remove_dir_all(&tampered).unwrap();
    let media_file = files_under(&out.join("media")).into_iter().next().unwrap();
    let whole = std::fs::read(&media_file).unwrap();
    std::fs::write(&media_file, &whole[..whole.len() - 100]).unwrap();
    let said = refused(restore(&backup, Some(&right)));
    assert!(said.contains("media file") && said.contains("damaged"), "{said}");
    std::fs::write(&media_file, &whole).unwrap();

    let (ok, said, dir, new_data) = restore(&backup, Some(&right));
    assert!(ok, "{said}");
    let restored = TestServer::start_in(dir, test_config(&new_data)).await;
    let token = restored.sign_in("alice").await;
    assert!(messages(&restored, &token, &room).await.contains(&secret_text.to_owned()));
    assert_eq!(restored.get("/_matrix/key/v2/server", None).await.1["verify_keys"], key, "the same signing key");
    let media = restored
        .http
        .get(format!("{}/_matrix/client/v1/media/download/{}", restored.base, mxc.trim_start_matches("mxc://")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(media.bytes().await.unwrap().to_vec(), picture, "the same media");
}

/// `hearth backup` killed with SIGKILL at many moments: what it leaves is either a complete
/// backup that restores or a `.partial-` folder (removed by the next backup), never a folder
/// that looks good and is not; and the serving server's database stays intact.
#[cfg(unix)]
#[tokio::test]
async fn kill_9_during_a_backup_leaves_no_half_backup_marked_good() {
    let s = TestServer::start().await;
    let running = s.running.as_ref().unwrap();
    let data = running.config().data_dir().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let config = config_file(work.path(), &data);
    let alice = s.user("alice").await;
    // Enough media that copying it takes a while.
    for i in 0..12u32 {
        let file: Vec<u8> = (0..1_000_000u32).map(|b| (b.wrapping_mul(i + 7) >> 3) as u8).collect();
        let (st, up) = s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload", Some(&alice), file).await;
        assert_eq!(st, StatusCode::OK, "{up}");
    }
    let out = work.path().join("backups");
    let (c, o) = (config.to_str().unwrap().to_owned(), out.to_str().unwrap().to_owned());
    let mut killed_partway = 0;
    for delay_ms in [5u64, 20, 40, 80, 120, 200, 300, 450, 700, 1000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["backup", "--config", &c, "--output", &o])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        if !finished {
            killed_partway += 1;
        }
        // Every folder that does not say it is partial is complete: its manifest lists files
        // that are all there with their sizes.
        for entry in std::fs::read_dir(&out).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "media" || name.starts_with(".partial-") {
                continue;
            }
            let manifest: Value = serde_json::from_slice(&std::fs::read(entry.path().join("manifest.json")).unwrap())
                .unwrap_or_else(|e| panic!("{name} looks like a backup but its manifest is not whole: {e}"));
            for f in manifest["files"].as_array().unwrap() {
                let len = std::fs::metadata(entry.path().join(f["path"].as_str().unwrap())).unwrap().len();
                assert_eq!(len, f["size"].as_u64().unwrap(), "{name}: {f}");
            }
            assert_eq!(manifest["media"].as_array().unwrap().len(), 12, "{name}");
        }
    }
    assert!(killed_partway >= 3, "most kills landed during a backup ({killed_partway})");

    // The next backup clears what the killed ones left and restores.
    let (ok, stdout, stderr) = hearth(&["backup", "--config", &c, "--output", &o]);
    assert!(ok, "{stderr}");
    assert!(
        !std::fs::read_dir(&out).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with(".partial-")),
        "stale partial backups removed"
    );
    let backup = stdout.lines().last().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let new_data = dir.path().join("data");
    let new_config = config_file(dir.path(), &new_data);
    let (ok, said, stderr) = hearth(&["restore", "--config", new_config.to_str().unwrap(), "--from", &backup]);
    assert!(ok && said.contains("(12 media files)"), "{said}{stderr}");

    // The server's own database went through all of it unharmed.
    let resp = reqwest::Client::new()
        .post(format!("http://{}/_hearth/admin/v1/health/database", running.admin_addr()))
        .bearer_auth(running.admin_token())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let check: Value = resp.json().await.unwrap();
    assert_eq!(check["ok"], true, "{check}");
    s.sign_in("alice").await;
}

async fn admin(s: &TestServer, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
    let running = s.running.as_ref().unwrap();
    let resp = reqwest::Client::new()
        .request(method, format!("http://{}/_hearth/admin/v1/{path}", running.admin_addr()))
        .bearer_auth(running.admin_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

/// Waits for the backup that runs to end; answers the status.
async fn backup_done(s: &TestServer) -> Value {
    for _ in 0..600 {
        let (_, status) = admin(s, reqwest::Method::GET, "backups", json!({})).await;
        if status["running"] == false && status["last"].is_object() {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the backup did not end");
}

#[tokio::test]
async fn the_dashboard_plans_backups_keeps_the_newest_and_warns_when_they_fail() {
    let file_dir = tempfile::tempdir().unwrap();
    let config_text = "# the admin's own settings\nserver_name = \"hearth.test\"\n";
    let config_path = file_dir.path().join("homeserver.toml");
    std::fs::write(&config_path, config_text).unwrap();
    let s = TestServer::start_with(|c| c.config_file = Some(config_path.clone())).await;
    let alice = s.user("alice").await;
    for i in 0..3u8 {
        let file = vec![i; 50_000];
        assert_eq!(s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload", Some(&alice), file).await.0, 200);
    }
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("usb-disk");
    let put = |body: Value| admin(&s, reqwest::Method::PUT, "backups", body);

    // Wrong plans are refused with the reason.
    let (st, e) = put(json!({"schedule": "daily", "dir": null, "keep": 2})).await;
    assert_eq!(st, 400, "{e}");
    assert!(e["error"].as_str().unwrap().contains("choose the folder"), "{e}");
    let (st, e) = put(json!({"schedule": "daily", "dir": "relative/folder", "keep": 2})).await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = put(json!({"schedule": "daily", "dir": out, "keep": 0})).await;
    assert_eq!(st, 400, "{e}");
    let (st, e) = put(json!({"schedule": "weekly", "dir": out, "keep": 2, "encrypted": true})).await;
    assert_eq!(st, 400, "a passphrase is needed: {e}");

    let (st, status) = put(json!({"schedule": "weekly", "dir": out, "keep": 2})).await;
    assert_eq!(st, 200, "{status}");
    assert_eq!(status["warning"], "never", "{status}");
    let mut made = Vec::new();
    for _ in 0..3 {
        let (st, _) = admin(&s, reqwest::Method::POST, "backups/run", json!({})).await;
        assert_eq!(st, 202);
        let status = backup_done(&s).await;
        assert_eq!(status["last"]["ok"], true, "{status}");
        made.push(status["last"]["path"].as_str().unwrap().to_owned());
        // Backups are named by the second.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let (_, status) = admin(&s, reqwest::Method::GET, "backups", json!({})).await;
    assert_eq!(status["warning"], Value::Null, "{status}");
    let names: Vec<&str> = status["backups"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "keep 2: {status}");
    assert!(!Path::new(&made[0]).exists() && Path::new(&made[1]).exists() && Path::new(&made[2]).exists());
    assert_eq!(status["last"]["removed"].as_array().unwrap().len(), 1, "{status}");
    // The config file the server was started with is in the backup.
    assert_eq!(std::fs::read_to_string(Path::new(&made[2]).join("homeserver.toml")).unwrap(), config_text);
    // The media the kept backups list are still there, once each.
    assert_eq!(files_under(&out.join("media")).len(), 3);
    let restore_dir = tempfile::tempdir().unwrap();
    let new_data = restore_dir.path().join("data");
    let new_config = config_file(restore_dir.path(), &new_data);
    let (ok, said, stderr) = hearth(&["restore", "--config", new_config.to_str().unwrap(), "--from", &made[2]]);
    assert!(ok && said.contains("(3 media files)"), "{said}{stderr}");

    // The folder went away (a disk unplugged): the run fails, and the page warns.
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::write(&out, b"not a folder").unwrap();
    admin(&s, reqwest::Method::POST, "backups/run", json!({})).await;
    let status = backup_done(&s).await;
    assert_eq!(status["last"]["ok"], false, "{status}");
    assert_eq!(status["warning"], "failing", "{status}");
    assert!(status["last"]["error"].as_str().unwrap().contains("usb-disk"), "{status}");
    assert!(status["last"]["last_ok_ms"].as_i64().is_some(), "the last good backup is remembered: {status}");
}

#[tokio::test]
async fn the_status_page_plans_encrypted_backups_and_makes_one() {
    let s = TestServer::start().await;
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("synced");
    let got = common::ui_flow("backups", &s.running.as_ref().unwrap().admin_url(), out.to_str().unwrap()).await;
    assert!(got["last"].as_str().unwrap().contains(out.to_str().unwrap()), "{got}");
    assert_eq!(got["alerts"], 0, "no warning once a backup is made: {got}");
    let (_, status) = admin(&s, reqwest::Method::GET, "backups", json!({})).await;
    assert_eq!(status["plan"]["schedule"], "daily");
    assert_eq!(status["plan"]["keep"], 2);
    assert_eq!(status["backups"][0]["encrypted"], true, "{status}");
    assert!(out.join("backup-key.age").exists());
}

/// A server with a room, messages and a picture, backed up plain into `plain/` and encrypted
/// into `sealed/` under `work` (the server is stopped after); answers the picture, its mxc URI
/// and the server's signing keys.
async fn backed_up(work: &Path) -> (Vec<u8>, String, Value) {
    let mut s = TestServer::start().await;
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    let config = config_file(work, &data);
    let alice = s.user("alice").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"name": "Family"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    for i in 0..3 {
        let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/t{i}", urlencode(&room));
        assert_eq!(
            s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": format!("message {i}")})).await.0,
            200
        );
    }
    let picture: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let (st, up) = s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload", Some(&alice), picture.clone()).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    let mxc = up["content_uri"].as_str().unwrap().to_owned();
    let key = s.get("/_matrix/key/v2/server", None).await.1["verify_keys"].clone();
    let passphrase = work.join("passphrase");
    std::fs::write(&passphrase, "correct horse battery staple\n").unwrap();
    let c = config.to_str().unwrap();
    for (folder, extra) in [("plain", vec![]), ("sealed", vec!["--passphrase-file", passphrase.to_str().unwrap()])] {
        let out = work.join(folder);
        let mut args = vec!["backup", "--config", c, "--output", out.to_str().unwrap()];
        args.extend(extra);
        let (ok, _, stderr) = hearth(&args);
        assert!(ok, "{stderr}");
    }
    s.stop().await;
    (picture, mxc, key)
}

/// Whether the fresh server `s` is still as it started: its own name and key, no accounts.
async fn still_fresh(s: &TestServer, own_key: &Value) {
    assert_eq!(&s.get("/_matrix/key/v2/server", None).await.1["verify_keys"], own_key, "its own signing key");
    let (_, status) = admin(s, reqwest::Method::GET, "restore", json!({})).await;
    assert_eq!(status["allowed"], true, "{status}");
    assert_eq!(s.login("alice", "password1").await.0, StatusCode::FORBIDDEN, "no accounts");
}

#[tokio::test]
async fn a_new_server_is_restored_from_its_wizard_and_a_bad_backup_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (picture, mxc, key) = backed_up(work.path()).await;
    let plain = std::fs::read_dir(work.path().join("plain"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("hearth-"))
        .unwrap();
    // A copy of the plain backup with one byte of its database changed.
    let bad = work.path().join("bad");
    for f in files_under(&work.path().join("plain")) {
        let to = bad.join(f.strip_prefix(work.path().join("plain")).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    let bad_backup = bad.join(plain.file_name().unwrap());
    let mut db = std::fs::read(bad_backup.join("hearth.db")).unwrap();
    let at = db.len() / 2;
    db[at] ^= 1;
    std::fs::write(bad_backup.join("hearth.db"), db).unwrap();

    // A new install under another name (as a desktop app's first start is).
    let mut s = TestServer::start_with(|c| c.server_name = "new.test".try_into().unwrap()).await;
    let own_key = s.get("/_matrix/key/v2/server", None).await.1["verify_keys"].clone();
    assert_ne!(own_key, key);
    let admin_token = s.running.as_ref().unwrap().admin_token();
    let look = |path: &Path| format!("restore?path={}", urlencode(path.to_str().unwrap()));
    let (st, status) = admin(&s, reqwest::Method::GET, "restore", json!({})).await;
    assert_eq!((st, &status["allowed"], &status["last"]), (StatusCode::OK, &json!(true), &Value::Null), "{status}");
    let (st, e) = admin(&s, reqwest::Method::GET, "restore?path=usb%2Fbackups", json!({})).await;
    assert_eq!(st, 400, "a relative path: {e}");
    let (st, e) = admin(&s, reqwest::Method::GET, &look(&work.path().join("nowhere")), json!({})).await;
    assert!(st == 400 && e["error"].as_str().unwrap().contains("no folder"), "{e}");
    let (st, found) = admin(&s, reqwest::Method::GET, &look(&work.path().join("sealed")), json!({})).await;
    assert_eq!(st, 200, "{found}");
    let backups = found["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{found}");
    assert_eq!((&backups[0]["server_name"], &backups[0]["encrypted"]), (&json!(common::SERVER_NAME), &json!(true)));
    let (_, found) = admin(&s, reqwest::Method::GET, &look(&plain), json!({})).await;
    assert_eq!(found["backups"][0]["hearth_version"], hearth_server::VERSION, "a backup itself: {found}");

    // Refused with the reason, and nothing changes.
    let sealed = PathBuf::from(backups[0]["path"].as_str().unwrap());
    let post = |body: Value| admin(&s, reqwest::Method::POST, "restore", body);
    let (st, e) = post(json!({"path": sealed})).await;
    assert!(st == 400 && e["error"].as_str().unwrap().contains("encrypted"), "{e}");
    let (st, e) = post(json!({"path": sealed, "passphrase": "incorrect horse battery staple"})).await;
    assert!(st == 400 && e["error"].as_str().unwrap().contains("not the one these backups were made with"), "{e}");
    let (st, e) = post(json!({"path": bad_backup})).await;
    assert!(st == 400 && e["error"].as_str().unwrap().contains("hash differs"), "{e}");
    let (st, e) = post(json!({"path": work.path()})).await;
    assert!(st == 400 && e["error"].as_str().unwrap().contains("not a Hearth backup"), "{e}");
    let asked = s.running.as_ref().unwrap().restart_requested();
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), asked).await.is_err(),
        "no restart for a refused backup"
    );
    still_fresh(&s, &own_key).await;

    let (st, about) = post(json!({"path": sealed, "passphrase": "correct horse battery staple"})).await;
    assert_eq!(st, 200, "{about}");
    assert_eq!((&about["restart"], &about["server_name"]), (&json!(true), &json!(common::SERVER_NAME)));
    s.restart_when_asked().await;

    let (_, status) = admin(&s, reqwest::Method::GET, "restore", json!({})).await;
    assert_eq!(status["last"]["ok"], true, "{status}");
    assert_eq!(status["last"]["media"], 1, "{status}");
    assert_eq!(status["allowed"], false, "the restored server has accounts: {status}");
    assert_eq!(s.running.as_ref().unwrap().admin_token(), admin_token, "the dashboard's key stays");
    let secrets = s.running.as_ref().unwrap().config().data_dir().join("secrets");
    assert_eq!(
        std::fs::read_to_string(secrets.join("backup_passphrase")).unwrap(),
        "correct horse battery staple",
        "kept for the next scheduled backups"
    );
    assert_eq!(s.get("/_matrix/key/v2/server", None).await.1["verify_keys"], key, "the backup's signing key");
    let alice = s.sign_in("alice").await;
    let (_, me) = s.get("/_matrix/client/v3/account/whoami", Some(&alice)).await;
    assert_eq!(me["user_id"], format!("@alice:{}", common::SERVER_NAME), "the backup's server name");
    let (_, rooms) = s.get("/_matrix/client/v3/joined_rooms", Some(&alice)).await;
    let room = rooms["joined_rooms"][0].as_str().unwrap().to_owned();
    let mut said = messages(&s, &alice, &room).await;
    said.sort();
    assert_eq!(said, ["message 0", "message 1", "message 2"]);
    let media = mxc.trim_start_matches("mxc://");
    let (st, bytes) = {
        let resp = s
            .http
            .get(format!("{}/_matrix/client/v1/media/download/{media}", s.base))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.bytes().await.unwrap())
    };
    assert_eq!((st, bytes.as_ref()), (StatusCode::OK, picture.as_slice()));
    assert!(!s.running.as_ref().unwrap().config().data_dir().join(".before-restore").exists());

    // Now it has data of its own: no second restore over it.
    let (st, e) = admin(&s, reqwest::Method::POST, "restore", json!({"path": plain})).await;
    assert_eq!((st, e["errcode"].as_str()), (StatusCode::FORBIDDEN, Some("M_FORBIDDEN")), "{e}");
}

#[tokio::test]
async fn the_wizard_restores_an_encrypted_backup() {
    let work = tempfile::tempdir().unwrap();
    let (_, _, key) = backed_up(work.path()).await;
    let mut s = TestServer::start_with(|c| c.server_name = "new.test".try_into().unwrap()).await;
    let running = s.running.take().unwrap();
    let (admin_url, admin_addr, token) = (running.admin_url(), running.admin_addr(), running.admin_token());
    let (stop, supervisor) = common::restarting(running);
    let arg = json!({"folder": work.path().join("sealed"), "passphrase": "correct horse battery staple"});
    let got = common::ui_flow("restore", &admin_url, &arg.to_string()).await;
    assert!(got["listed"].as_str().unwrap().contains(common::SERVER_NAME), "{got}");
    assert!(got["refused"].as_str().unwrap().contains("not the one these backups were made with"), "{got}");
    assert!(got["done"].as_str().unwrap().contains(&format!("Restored {}", common::SERVER_NAME)), "{got}");
    assert!(got["done"].as_str().unwrap().contains("with 1 media file."), "{got}");
    let status: Value = reqwest::Client::new()
        .get(format!("http://{admin_addr}/_hearth/admin/v1/restore"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["last"]["ok"], true, "{status}");
    assert_eq!(s.get("/_matrix/key/v2/server", None).await.1["verify_keys"], key);
    s.sign_in("alice").await;
    let _ = (stop.send(()), supervisor.await);
}
