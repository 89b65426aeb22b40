//! The Status page's health: free disk space of the data folder, and SQLite's checks of the
//! database on demand, which find a damaged database (a row pointing to a missing row).

mod common;

use std::str::FromStr;

use common::{TestServer, binary, test_config};
use reqwest::Method;
use serde_json::Value;
use sqlx::{ConnectOptions, Connection, sqlite::SqliteConnectOptions};

async fn admin(s: &TestServer, method: Method, path: &str) -> (reqwest::StatusCode, Value) {
    let running = s.running.as_ref().unwrap();
    let resp = reqwest::Client::new()
        .request(method, format!("http://{}/_hearth/admin/v1/{path}", running.admin_addr()))
        .bearer_auth(running.admin_token())
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn the_database_check_finds_a_damaged_database_and_the_status_says_how_much_disk_is_left() {
    let mut s = TestServer::start().await;
    s.user("alice").await;
    let (_, status) = admin(&s, Method::GET, "status").await;
    let disk = &status["disk"];
    let (free, total) = (disk["free_bytes"].as_u64().unwrap(), disk["total_bytes"].as_u64().unwrap());
    assert!(free > 0 && total >= free, "{status}");

    let (code, check) = admin(&s, Method::POST, "health/database").await;
    assert_eq!(code, 200);
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["integrity"], serde_json::json!(["ok"]));

    // Damage it the way a bad copy or a bug could: a device of an account that is not there.
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    s.stop().await;
    let mut db = SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(data.join("hearth.db"))
        .foreign_keys(false)
        .connect()
        .await
        .unwrap();
    sqlx::query("INSERT INTO devices (user_id, device_id, created_ts) VALUES ('@ghost:hearth.test', 'GHOST', 0)")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir, test_config(&data)).await;
    let (code, check) = admin(&s, Method::POST, "health/database").await;
    assert_eq!(code, 200);
    assert_eq!(check["ok"], false, "{check}");
    let problems = check["foreign_keys"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{check}");
    assert_eq!(problems[0]["table"], "devices");
    assert_eq!(problems[0]["parent"], "users");
}

#[tokio::test]
async fn one_server_per_data_folder_and_compact_only_when_it_is_stopped() {
    let mut s = TestServer::start().await;
    s.user("alice").await;
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("homeserver.toml");
    std::fs::write(
        &config,
        format!(
            "server_name = \"{}\"\ndata_dir = \"{}\"\nsecret_store = \"file\"\n",
            common::SERVER_NAME,
            data.display()
        ),
    )
    .unwrap();

    // A second server on the same folder would share the database behind the first's back.
    let e = hearth_server::Homeserver::start(test_config(&data)).await.err().expect("refused").to_string();
    assert!(e.contains("another Hearth is serving the data folder"), "{e}");
    let (ok, said) = hearth_said(&["compact", "--config", config.to_str().unwrap()]);
    assert!(!ok && said.contains("stop it first"), "{said}");

    // Space left behind by deleted rows.
    s.stop().await;
    let mut db =
        SqliteConnectOptions::from_str("sqlite://").unwrap().filename(data.join("hearth.db")).connect().await.unwrap();
    sqlx::query("CREATE TABLE junk (x BLOB)").execute(&mut db).await.unwrap();
    for _ in 0..40 {
        sqlx::query("INSERT INTO junk VALUES (randomblob(131072))").execute(&mut db).await.unwrap();
    }
    sqlx::query("DROP TABLE junk").execute(&mut db).await.unwrap();
    db.close().await.unwrap();
    let before = std::fs::metadata(data.join("hearth.db")).unwrap().len();

    let (ok, said) = hearth_said(&["compact", "--config", config.to_str().unwrap()]);
    assert!(ok, "{said}");
    assert!(said.contains("Compacted the database"), "{said}");
    let after = std::fs::metadata(data.join("hearth.db")).unwrap().len();
    assert!(after + 4_000_000 < before, "{before} bytes before, {after} after");

    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir, test_config(&data)).await;
    let (code, _) = s.login("alice", "password1").await;
    assert_eq!(code, 200, "the compacted database serves");
}

async fn size_history(s: &TestServer) -> Vec<Value> {
    let (_, status) = admin(s, Method::GET, "status").await;
    status["size_history"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_status_page_shows_how_the_database_and_media_grew() {
    let mut s = TestServer::start().await;
    // Recorded at start.
    let mut history = Vec::new();
    for _ in 0..100 {
        history = size_history(&s).await;
        if !history.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(history.len(), 1, "{history:?}");
    let today = history[0]["day"].as_i64().unwrap();
    let now_days =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 / 86_400;
    assert_eq!(today, now_days);
    assert!(history[0]["database_bytes"].as_i64().unwrap() > 0);

    // Ten days ago the server was smaller; today it has media too.
    let alice = s.user("alice").await;
    let (st, _) = s.raw(Method::POST, "/_matrix/media/v3/upload", Some(&alice), vec![7; 300_000]).await;
    assert_eq!(st, 200);
    let data = s.running.as_ref().unwrap().config().data_dir().to_path_buf();
    s.stop().await;
    let mut db =
        SqliteConnectOptions::from_str("sqlite://").unwrap().filename(data.join("hearth.db")).connect().await.unwrap();
    sqlx::query("INSERT INTO size_history (day, database_bytes, media_bytes) VALUES (?, 4096, 0), (?, 1, 1)")
        .bind(today - 10)
        .bind(today - 500)
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir, test_config(&data)).await;
    let mut history = Vec::new();
    for _ in 0..100 {
        history = size_history(&s).await;
        if history.last().is_some_and(|h| h["media_bytes"].as_i64().unwrap() > 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Oldest first, the last 90 days; today's row holds today's sizes.
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["day"], today - 10);
    assert_eq!(history[1]["day"], today);
    assert_eq!(history[1]["media_bytes"], 300_000);

    let got = common::ui_flow("growth", &s.running.as_ref().unwrap().admin_url(), "").await;
    let text = got["text"].as_str().unwrap();
    assert!(text.contains("database 4.0 KB →") && text.contains("media 0 bytes → 293.0 KB"), "{got}");
    assert_eq!(got["points"], 2, "{got}");
}

/// Runs the `hearth` binary; answers (success, what it printed on stdout and stderr).
fn hearth_said(args: &[&str]) -> (bool, String) {
    let (ok, out, err) = binary::hearth(args);
    (ok, format!("{out}{err}"))
}
