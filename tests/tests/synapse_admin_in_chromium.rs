//! The real synapse-admin web app (release 0.11.4, vendored in tests/synapse-admin and built by
//! scripts/test.sh with its own yarn) in Debian's headless Chromium against Hearth, driven by
//! `tests/ui/synapse-admin.mjs`: an admin signs in, lists and edits users, sends a server notice,
//! looks at a user's media, devices and rooms, erases a user, lists rooms and deletes one, reads
//! the reported events and the statistics. Then the results are checked through the Matrix API
//! as the family would notice them, with the `matrix-sdk` crate and plain HTTP.
//!
//! Needs Node.js, `npm ci` in tests/ui, the app built in tests/synapse-admin/app/dist and
//! /usr/bin/chromium; scripts/test.sh provides them and runs this with `--ignored`.

use std::{path::PathBuf, process::Command};

use hearth_blackbox::{Server, start};
use serde_json::{Value, json};

/// A plain HTTP call to the server: (status, JSON body).
async fn call(server: &Server, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body.filter(|b| !b.is_null()) {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn ok(server: &Server, method: &str, path: &str, token: &str, body: Value) -> Value {
    let (status, v) = call(server, method, path, Some(token), Some(body)).await;
    assert_eq!(status, 200, "{method} {path}: {v}");
    v
}

/// Signs `user` in on a new device: (access token, device ID).
async fn login(server: &Server, user: &str) -> (String, String) {
    let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": format!("password-{user}")});
    let (status, v) = call(server, "POST", "/_matrix/client/v3/login", None, Some(body)).await;
    assert_eq!(status, 200, "{user} signs in: {v}");
    (v["access_token"].as_str().unwrap().to_owned(), v["device_id"].as_str().unwrap().to_owned())
}

async fn room(server: &Server, token: &str, name: &str, invite: &[&str]) -> String {
    let body = json!({"name": name, "preset": "private_chat", "invite": invite});
    ok(server, "POST", "/_matrix/client/v3/createRoom", token, body).await["room_id"].as_str().unwrap().to_owned()
}

async fn say(server: &Server, token: &str, room: &str, content: Value) -> String {
    let txn = uuid_like();
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
    ok(server, "PUT", &path, token, content).await["event_id"].as_str().unwrap().to_owned()
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("txn{}", N.fetch_add(1, Ordering::Relaxed))
}

fn text(body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body})
}

/// Runs the walk and returns the JSON line it printed.
async fn walk(server: &Server, want: Value) -> Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dist = root.join("synapse-admin/app/dist");
    assert!(
        dist.join("index.html").exists(),
        "synapse-admin is not built: scripts/test.sh builds it into {}",
        dist.display()
    );
    let (url, shots) = (server.url.clone(), root.join("ui/screenshots"));
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("synapse-admin.mjs")
            .arg(&dist)
            .arg(&url)
            .arg(want.to_string())
            .current_dir(root.join("ui"))
            .env("SCREENSHOTS", shots)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs (install Node.js, then `npm ci` in tests/ui)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "synapse-admin.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("no JSON from synapse-admin.mjs: {stdout}"))
}

#[tokio::test]
#[ignore = "needs Chromium, playwright-core and the built synapse-admin: scripts/test.sh runs it"]
async fn synapse_admin_manages_users_rooms_reports_and_notices_on_hearth() {
    let server = start(async |c| {
        c.server_notices.system_mxid_localpart = Some("notices".to_owned());
        c.server_notices.system_mxid_display_name = Some("Family server".to_owned());
        c.server_notices.auto_join = true;
        hearth_server::register_user_offline(c.clone(), "root", "password-root".to_owned(), true).await.unwrap();
        for name in ["alice", "nana", "erin", "lena"] {
            hearth_server::register_user_offline(c.clone(), name, format!("password-{name}"), false).await.unwrap();
        }
    })
    .await;
    let domain = hearth_blackbox::SERVER_NAME;
    let ((alice, _), (nana, nana_device), (erin, _)) =
        (login(&server, "alice").await, login(&server, "nana").await, login(&server, "erin").await);
    let (nana_id, erin_id) = (format!("@nana:{domain}"), format!("@erin:{domain}"));

    // A family room with messages, a picture from Nana, and a report; a room to delete.
    let garden = room(&server, &alice, "Garden", &[&nana_id, &erin_id]).await;
    for token in [&nana, &erin] {
        ok(&server, "POST", &format!("/_matrix/client/v3/join/{garden}"), token, json!({})).await;
    }
    let erins = say(&server, &erin, &garden, text("Erin was here")).await;
    let picture = reqwest::Client::new()
        .post(format!("{}/_matrix/media/v3/upload?filename=roses.png", server.url))
        .bearer_auth(&nana)
        .header("content-type", "image/png")
        .body(hearth_blackbox::photo(64, 48))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mxc = picture["content_uri"].as_str().unwrap().to_owned();
    say(&server, &nana, &garden, json!({"msgtype": "m.image", "body": "roses.png", "url": mxc})).await;
    let rude = say(&server, &alice, &garden, text("Your roses are ugly")).await;
    let reason = "Rude words in the garden";
    ok(&server, "POST", &format!("/_matrix/client/v3/rooms/{garden}/report/{rude}"), &nana, json!({"reason": reason}))
        .await;
    let old_chat = room(&server, &alice, "Old chat", &[]).await;
    say(&server, &alice, &old_chat, text("Nobody reads this")).await;
    let (root, _) = login(&server, "root").await;
    let reports = ok(&server, "GET", "/_synapse/admin/v1/event_reports", &root, Value::Null).await;
    let report = reports["event_reports"][0]["id"].clone();

    let notice = "The server is down for maintenance tonight at nine";
    let got = walk(
        &server,
        json!({"admin": "root", "password": "password-root", "edit": nana_id, "device": nana_device,
            "garden": "Garden", "erase": erin_id,
            "room": old_chat, "roomName": "Old chat", "report": report, "reportReason": reason, "notice": notice}),
    )
    .await;
    let errors = got["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "the walk stopped: {errors:#?}\n{:#}", got["answers"]);
    // Every request the app made was answered, none with an error.
    let failed: Vec<&Value> =
        got["answers"].as_array().unwrap().iter().filter(|a| a["status"].as_u64() >= Some(400)).collect();
    assert!(failed.is_empty(), "answers the app got as errors: {failed:#?}");
    // root, alice, nana, erin and the notices account.
    assert!(got["seen"]["users"].as_u64().unwrap() >= 4, "{got}");
    assert_eq!(got["seen"]["media"], 1, "Nana's picture: {got}");
    assert_eq!(got["seen"]["rooms"], 3, "Garden, Old chat and the notices room: {got}");

    // Nana's new name, in the profile everyone's apps show.
    let (_, profile) = call(&server, "GET", &format!("/_matrix/client/v3/profile/{nana_id}"), Some(&alice), None).await;
    assert_eq!(profile["displayname"], "Nana Smith", "{profile}");

    // Nana's app shows the notice, from the server's account.
    let nana_app = hearth_blackbox::client(&server).await;
    nana_app.matrix_auth().login_username("nana", "password-nana").send().await.unwrap();
    nana_app.sync_once(Default::default()).await.unwrap();
    let mut notices = Vec::new();
    for r in nana_app.joined_rooms() {
        let messages = r.messages(matrix_sdk::room::MessagesOptions::backward()).await.unwrap();
        for e in hearth_blackbox::plain_bodies(&messages.chunk) {
            notices.push((r.room_id().to_owned(), e));
        }
    }
    assert!(notices.iter().any(|(r, body)| body == notice && r.as_str() != garden), "{notices:?}");

    // Erin can no longer sign in, and the admin API says she is deactivated.
    let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "erin"},
        "password": "password-erin"});
    let (status, v) = call(&server, "POST", "/_matrix/client/v3/login", None, Some(body)).await;
    // As in Synapse, deactivation drops the password, so it is refused like a wrong one.
    assert_eq!((status, v["errcode"].as_str()), (403, Some("M_FORBIDDEN")), "{v}");
    let erin_admin = ok(&server, "GET", &format!("/_synapse/admin/v2/users/{erin_id}"), &root, Value::Null).await;
    assert_eq!((&erin_admin["deactivated"], &erin_admin["erased"]), (&json!(true), &json!(true)), "{erin_admin}");
    // Erased: Lena, who joins the garden now, sees Erin's message only redacted; Alice, who was
    // there, still reads it.
    let (lena, _) = login(&server, "lena").await;
    let lena_id = format!("@lena:{domain}");
    ok(&server, "POST", &format!("/_matrix/client/v3/rooms/{garden}/invite"), &alice, json!({"user_id": lena_id}))
        .await;
    ok(&server, "POST", &format!("/_matrix/client/v3/join/{garden}"), &lena, json!({})).await;
    let erins_path = format!("/_matrix/client/v3/rooms/{garden}/event/{erins}");
    assert_eq!(ok(&server, "GET", &erins_path, &lena, Value::Null).await["content"], json!({}));
    assert_eq!(ok(&server, "GET", &erins_path, &alice, Value::Null).await["content"]["body"], "Erin was here");

    // Old chat is gone: not in Alice's rooms, unknown to the admin API; the garden is untouched.
    let joined = ok(&server, "GET", "/_matrix/client/v3/joined_rooms", &alice, Value::Null).await;
    let joined: Vec<&str> = joined["joined_rooms"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(!joined.contains(&old_chat.as_str()) && joined.contains(&garden.as_str()), "{joined:?}");
    let (status, _) = call(&server, "GET", &format!("/_synapse/admin/v1/rooms/{old_chat}"), Some(&root), None).await;
    assert_eq!(status, 404);
    let history =
        ok(&server, "GET", &format!("/_matrix/client/v3/rooms/{garden}/messages?dir=b&limit=50"), &alice, Value::Null)
            .await;
    let bodies: Vec<&str> =
        history["chunk"].as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str()).collect();
    assert!(bodies.contains(&"Your roses are ugly") && bodies.contains(&"roses.png"), "{bodies:?}");
}
