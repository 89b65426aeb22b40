//! Upgrades. Each folder in `tests/fixtures/releases/` is the data folder a real server of an
//! earlier release left behind (made by `scripts/migration-fixture.sh REV`, which runs that
//! release's binary and fills it with `populate` below), with `fixture.json` saying what it
//! holds. This Hearth must open every one of them, migrate it, and serve everything in it. An
//! upgrade that fails must leave the database as it was.

mod common;

use std::path::{Path, PathBuf};

use common::{TestServer, urlencode};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;
use sqlx::{ConnectOptions, Connection};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/releases");

fn sha256(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The picture uploaded into every fixture.
fn picture() -> Vec<u8> {
    (0..20_000u32).map(|i| (i * 7 % 253) as u8).collect()
}

async fn send(s: &TestServer, token: &str, room: &str, txn: &str, content: Value) -> String {
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", urlencode(room));
    let (st, v) = s.put(&path, Some(token), content).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["event_id"].as_str().unwrap().to_owned()
}

/// Fills the server at `HEARTH_FIXTURE_URL` (an earlier release, with open registration) with a
/// family's data through the client API, and writes what it made to `HEARTH_FIXTURE_OUT`.
#[tokio::test]
#[ignore = "run by scripts/migration-fixture.sh against an earlier release's binary"]
async fn populate() {
    let base = std::env::var("HEARTH_FIXTURE_URL").expect("HEARTH_FIXTURE_URL");
    let out = PathBuf::from(std::env::var("HEARTH_FIXTURE_OUT").expect("HEARTH_FIXTURE_OUT"));
    let s = TestServer { running: None, base, dir: tempfile::tempdir().unwrap(), http: reqwest::Client::new() };
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (_, me) = s.get("/_matrix/client/v3/account/whoami", Some(&alice)).await;
    let server_name = me["user_id"].as_str().unwrap().split(':').nth(1).unwrap().to_owned();
    let bob_id = format!("@bob:{server_name}");
    // A second device of bob's, named.
    let (st, login) = s
        .post(
            "/_matrix/client/v3/login",
            None,
            json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"}, "password": "password1", "device_id": "BOBPHONE", "initial_device_display_name": "Bob's phone"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{login}");

    let (st, room) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&alice),
            json!({"preset": "private_chat", "name": "Family", "topic": "Sunday lunch", "invite": [bob_id], "room_alias_name": "family"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{room}");
    let room = room["room_id"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{}", urlencode(&room)), Some(&bob), json!({})).await.0, 200);
    let hello = send(&s, &alice, &room, "t1", json!({"msgtype": "m.text", "body": "Hello family"})).await;
    let lunch = send(&s, &bob, &room, "t2", json!({"msgtype": "m.text", "body": "Lunch at one?"})).await;
    let oops = send(&s, &alice, &room, "t3", json!({"msgtype": "m.text", "body": "a typo"})).await;
    send(
        &s,
        &alice,
        &room,
        "t4",
        json!({"msgtype": "m.text", "body": "* Hello everyone", "m.new_content": {"msgtype": "m.text", "body": "Hello everyone"}, "m.relates_to": {"rel_type": "m.replace", "event_id": hello}}),
    )
    .await;
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{}/send/m.reaction/r1", urlencode(&room)),
            Some(&bob),
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": hello, "key": "👍"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .put(&format!("/_matrix/client/v3/rooms/{}/redact/{oops}/x1", urlencode(&room)), Some(&alice), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .post(&format!("/_matrix/client/v3/rooms/{}/receipt/m.read/{lunch}", urlencode(&room)), Some(&alice), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let alice_id = format!("@alice:{server_name}");
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/user/{}/rooms/{}/tags/u.family", urlencode(&alice_id), urlencode(&room)),
            Some(&alice),
            json!({"order": 0.5}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/user/{}/account_data/org.example.settings", urlencode(&alice_id)),
            Some(&alice),
            json!({"theme": "dark"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    let (st, up) = s.raw(reqwest::Method::POST, "/_matrix/media/v3/upload", Some(&alice), picture()).await;
    assert_eq!(st, StatusCode::OK, "{up}");
    let mxc = up["content_uri"].as_str().unwrap().to_owned();
    for (field, value) in [("avatar_url", mxc.as_str()), ("displayname", "Mum")] {
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/profile/{}/{field}", urlencode(&alice_id)),
                Some(&alice),
                json!({field: value}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let (st, filter) = s
        .post(
            &format!("/_matrix/client/v3/user/{}/filter", urlencode(&bob_id)),
            Some(&bob),
            json!({"room": {"timeline": {"limit": 7}}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{filter}");
    let (st, backup) = s
        .post(
            "/_matrix/client/v3/room_keys/version",
            Some(&bob),
            json!({"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"public_key": "abcdefg"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{backup}");

    // A room bob left.
    let (_, old) = s
        .post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat", "name": "Old plans"}))
        .await;
    let old = old["room_id"].as_str().unwrap().to_owned();
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{}", urlencode(&old)), Some(&bob), json!({})).await.0, 200);
    send(&s, &bob, &old, "o1", json!({"msgtype": "m.text", "body": "see you there"})).await;
    assert_eq!(
        s.post(&format!("/_matrix/client/v3/rooms/{}/leave", urlencode(&old)), Some(&bob), json!({})).await.0,
        200
    );

    let (_, keys) = s.get("/_matrix/key/v2/server", None).await;
    let (_, version) = s.get("/_matrix/federation/v1/version", None).await;
    let fixture = json!({
        "hearth_version": version["server"]["version"],
        "server_name": server_name,
        "verify_keys": keys["verify_keys"],
        "room": room,
        "alias": format!("#family:{server_name}"),
        "messages": ["Hello everyone", "Lunch at one?"],
        "hello": hello,
        "redacted": oops,
        "left_room": old,
        "media": mxc,
        "media_sha256": sha256(&picture()),
        "filter_id": filter["filter_id"],
        "backup_version": backup["version"],
    });
    std::fs::write(out, serde_json::to_string_pretty(&fixture).unwrap()).unwrap();
}

/// Copies the fixture's data folder into a new temporary folder.
fn copy_fixture(fixture: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for f in common::files_under(&fixture.join("data")) {
        let to = data.join(f.strip_prefix(fixture.join("data")).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    (dir, data)
}

fn fixtures() -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("fixture.json").exists())
        .collect();
    all.sort();
    assert!(!all.is_empty(), "no fixtures in {FIXTURES}");
    all
}

fn config_for(data: &Path, fixture: &Value) -> hearth_server::Config {
    let mut config = common::test_config(data);
    config.server_name = fixture["server_name"].as_str().unwrap().try_into().unwrap();
    config
}

#[tokio::test]
async fn every_earlier_release_database_upgrades_with_everything_in_it() {
    for path in fixtures() {
        let fixture: Value = serde_json::from_slice(&std::fs::read(path.join("fixture.json")).unwrap()).unwrap();
        let what = format!("the database of {} ({})", fixture["hearth_version"], path.display());
        let (dir, data) = copy_fixture(&path);
        let s = TestServer::start_in(dir, config_for(&data, &fixture)).await;
        assert!(!data.join("hearth.db.before-upgrade").exists(), "{what}: the safety copy goes after an upgrade");

        assert_eq!(s.get("/_matrix/key/v2/server", None).await.1["verify_keys"], fixture["verify_keys"], "{what}");
        let alice = s.sign_in("alice").await;
        let bob = s.sign_in("bob").await;
        let room = fixture["room"].as_str().unwrap();
        let (st, page) =
            s.get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=100", urlencode(room)), Some(&bob)).await;
        assert_eq!(st, StatusCode::OK, "{what}: {page}");
        let chunk = page["chunk"].as_array().unwrap();
        let hello = chunk.iter().find(|e| e["event_id"] == fixture["hello"]).expect("the first message");
        assert_eq!(
            hello["unsigned"]["m.relations"]["m.replace"]["content"]["m.new_content"]["body"], "Hello everyone",
            "{what}: the edit applies: {hello}"
        );
        for body in fixture["messages"].as_array().unwrap() {
            let shown = |e: &&Value| e["content"]["body"] == *body || e["content"]["m.new_content"]["body"] == *body;
            assert!(chunk.iter().any(|e| shown(&e)), "{what}: {body} is in the room");
        }
        let redacted = chunk.iter().find(|e| e["event_id"] == fixture["redacted"]).expect("the redacted message");
        assert_eq!(redacted["content"], json!({}), "{what}: still redacted");
        let (_, reactions) = s
            .get(
                &format!(
                    "/_matrix/client/v1/rooms/{}/relations/{}/m.annotation",
                    urlencode(room),
                    urlencode(fixture["hello"].as_str().unwrap())
                ),
                Some(&alice),
            )
            .await;
        assert_eq!(reactions["chunk"][0]["content"]["m.relates_to"]["key"], "👍", "{what}: {reactions}");
        let (_, alias) = s
            .get(&format!("/_matrix/client/v3/directory/room/{}", urlencode(fixture["alias"].as_str().unwrap())), None)
            .await;
        assert_eq!(alias["room_id"], room, "{what}");
        let (_, state) =
            s.get(&format!("/_matrix/client/v3/rooms/{}/state/m.room.topic/", urlencode(room)), Some(&bob)).await;
        assert_eq!(state["topic"], "Sunday lunch", "{what}");

        let media = fixture["media"].as_str().unwrap().trim_start_matches("mxc://");
        let got = s
            .http
            .get(format!("{}/_matrix/client/v1/media/download/{media}", s.base))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "{what}");
        assert_eq!(sha256(&got.bytes().await.unwrap()), fixture["media_sha256"], "{what}: the picture");
        let alice_id = format!("@alice:{}", fixture["server_name"].as_str().unwrap());
        let (_, profile) = s.get(&format!("/_matrix/client/v3/profile/{}", urlencode(&alice_id)), None).await;
        assert_eq!((&profile["displayname"], &profile["avatar_url"]), (&json!("Mum"), &fixture["media"]), "{what}");
        let (_, devices) = s.get("/_matrix/client/v3/devices", Some(&bob)).await;
        assert!(
            devices["devices"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["device_id"] == "BOBPHONE" && d["display_name"] == "Bob's phone"),
            "{what}: {devices}"
        );
        let bob_id = format!("@bob:{}", fixture["server_name"].as_str().unwrap());
        let (st, filter) = s
            .get(
                &format!(
                    "/_matrix/client/v3/user/{}/filter/{}",
                    urlencode(&bob_id),
                    fixture["filter_id"].as_str().unwrap()
                ),
                Some(&bob),
            )
            .await;
        assert_eq!((st, &filter["room"]["timeline"]["limit"]), (StatusCode::OK, &json!(7)), "{what}: {filter}");
        let (_, backup) = s.get("/_matrix/client/v3/room_keys/version", Some(&bob)).await;
        assert_eq!(backup["version"], fixture["backup_version"], "{what}: {backup}");
        let (_, tags) = s
            .get(
                &format!("/_matrix/client/v3/user/{}/rooms/{}/tags", urlencode(&alice_id), urlencode(room)),
                Some(&alice),
            )
            .await;
        assert_eq!(tags["tags"]["u.family"]["order"], 0.5, "{what}: {tags}");
        let filter = urlencode(&json!({"room": {"include_leave": true}}).to_string());
        let (_, sync) = s.get(&format!("/_matrix/client/v3/sync?filter={filter}"), Some(&bob)).await;
        assert!(sync["rooms"]["leave"].get(fixture["left_room"].as_str().unwrap()).is_some(), "{what}: the left room");
        assert!(sync["rooms"]["join"].get(room).is_some(), "{what}");
        // And it goes on: a new message after the upgrade.
        send(&s, &bob, room, "after-upgrade", json!({"msgtype": "m.text", "body": "upgraded"})).await;
    }
}

/// What a database holds, to compare before and after: its schema, each table's row count and
/// the migrations applied.
async fn describe(db: &Path) -> Vec<String> {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).read_only(true).connect().await.unwrap();
    let schema: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let mut out = Vec::new();
    for (kind, name, sql) in schema {
        if kind == "table" && !name.starts_with("sqlite_") && !name.contains("_fts_") {
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM \"{name}\"")))
                .fetch_one(&mut conn)
                .await
                .unwrap();
            out.push(format!("{kind} {name} {sql:?} rows={n}"));
        } else {
            out.push(format!("{kind} {name} {sql:?}"));
        }
    }
    let (versions,): (Option<String>,) =
        sqlx::query_as("SELECT group_concat(version) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap();
    out.push(format!("migrations {versions:?}"));
    conn.close().await.unwrap();
    out
}

/// An upgrade whose last migration fails (a trigger makes recording it fail, inside its
/// transaction) is refused with the reason, and the database is as it was before: the
/// migrations before the failing one are undone too. Without the trigger, it then upgrades.
#[tokio::test]
async fn a_failed_upgrade_leaves_the_database_as_it_was() {
    let path = fixtures().pop().unwrap();
    let fixture: Value = serde_json::from_slice(&std::fs::read(path.join("fixture.json")).unwrap()).unwrap();
    let (dir, data) = copy_fixture(&path);
    let db = data.join("hearth.db");
    let last = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().split('_').next()?.parse::<i64>().ok())
        .max()
        .unwrap();
    {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).connect().await.unwrap();
        let (applied,): (i64,) =
            sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap();
        assert!(applied < last, "the newest fixture must be older than this Hearth's schema ({applied} vs {last})");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE TRIGGER sabotage BEFORE INSERT ON _sqlx_migrations WHEN NEW.version = {last} BEGIN SELECT RAISE(ABORT, 'sabotaged by the test'); END"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let before = describe(&db).await;

    let failed = hearth_server::Homeserver::start(config_for(&data, &fixture)).await;
    let error = format!("{:#}", failed.err().expect("the upgrade fails"));
    assert!(error.contains("sabotaged by the test") && error.contains("put back as it was"), "{error}");
    assert_eq!(describe(&db).await, before, "the database is as it was");
    assert!(!data.join("hearth.db.before-upgrade").exists());

    {
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).connect().await.unwrap();
        sqlx::query("DROP TRIGGER sabotage").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    let s = TestServer::start_in(dir, config_for(&data, &fixture)).await;
    s.sign_in("alice").await;
}
