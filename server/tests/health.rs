//! The Status page's health: free disk space of the data folder, and SQLite's checks of the
//! database on demand, which find a damaged database (a row pointing to a missing row).

mod common;

use std::str::FromStr;

use common::{TestServer, test_config};
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
