//! The web UI in Debian's headless Chromium (playwright-core, `tests/ui/flows.mjs`) against a
//! real server, then the results checked through the Matrix API with the `matrix-sdk` crate:
//! the setup wizard walked through (server name, first admin, invite-only: the server restarts
//! itself to apply them) and its admin signing in; an invite made in the dashboard signing
//! someone up in the browser, who then signs in with matrix-sdk; registration switched to invite
//! codes in Settings; and once deactivated in the dashboard, no more signing in.
//!
//! Needs Node.js, `npm ci` in tests/ui and /usr/bin/chromium; scripts/test.sh provides them and
//! runs this with `--ignored`.

use std::{path::PathBuf, process::Command};

use hearth_blackbox::start;
use serde_json::Value;

async fn client(server: &Server) -> matrix_sdk::Client {
    let store = tempfile::tempdir().unwrap().keep();
    matrix_sdk::Client::builder()
        .homeserver_url(&server.url)
        .sqlite_store(store, None)
        .build()
        .await
        .expect("client builds")
}

fn ui_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui")
}

/// Runs one flow of flows.mjs and returns the JSON line it printed.
async fn flow(args: &[&str]) -> Value {
    let dir = ui_dir();
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui/screenshots");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node").arg("flows.mjs").args(&args).current_dir(&dir).env("SCREENSHOTS", shots).output()
    })
    .await
    .unwrap()
    .expect("node runs (install Node.js, then `npm ci` in tests/ui)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "flows.mjs failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|_| panic!("no JSON from flows.mjs: {stdout}"))
}

/// Restarts the server whenever it asks (after a settings change), as the `hearth` binary does,
/// until `stop` fires.
fn supervise(mut running: hearth_server::Running) -> tokio::sync::oneshot::Sender<()> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        loop {
            let restart = running.restart_requested();
            tokio::select! {
                _ = &mut stopped => break,
                () = restart => running = running.restart().await.expect("restarts"),
            }
        }
        running.stop().await;
    });
    stop
}

#[tokio::test]
#[ignore = "needs Chromium and playwright-core: scripts/test.sh runs it"]
async fn the_wizard_sets_up_the_server_and_the_dashboard_invites_manages_and_deactivates_people() {
    // Apps may sign up with an invite code, until the dashboard says invite links only.
    let hearth_blackbox::Server { running, url, dir } = start(async |c| {
        c.enable_registration = true;
        c.registration_requires_token = true;
    })
    .await;
    let admin_url = running.admin_url();
    let stop = supervise(running);
    let server = Server { url, dir };

    // The wizard: this computer only, server name family.test, the first admin, invite only;
    // then each other way to connect (tunnel, home network, own domain) and back.
    let got = flow(&["wizard", &admin_url]).await;
    assert_eq!(got["address"].as_str().unwrap().trim_end_matches('/'), server.url);
    // Back on "this computer only", the home-network address (which answered in the flow)
    // is closed again.
    let lan = got["lanAddress"].as_str().unwrap();
    assert!(!lan.contains("127.0.0.1"), "{lan}");
    let from_network = reqwest::Client::new()
        .get(format!("{lan}_matrix/client/versions"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(from_network.is_err(), "{lan} must not answer any more");
    let mum = client(&server).await;
    mum.matrix_auth()
        .login_username("mum", "a-long-password")
        .send()
        .await
        .expect("the admin made in the wizard signs in");
    assert_eq!(mum.user_id().unwrap().as_str(), "@mum:family.test");
    let register = |body: Value| {
        let url = format!("{}/_matrix/client/v3/register", server.url);
        async move {
            let r = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (st, v) = register(
        serde_json::json!({"username": "stranger", "password": "a-long-password", "auth": {"type": "m.login.dummy"}}),
    )
    .await;
    assert_eq!(st, 403, "apps cannot sign up by themselves: {v}");

    let got = flow(&["invite", &admin_url]).await;
    let user = got["user"].as_str().unwrap().to_owned();
    assert_eq!(user, "@nana:family.test");
    assert_eq!(got["homeserver"].as_str().unwrap().trim_end_matches('/'), server.url);

    let nana = client(&server).await;
    nana.matrix_auth().login_username("nana", "tea-and-biscuits").send().await.expect("nana signs in");
    assert_eq!(nana.user_id().unwrap().as_str(), user);
    let mut req = matrix_sdk::ruma::api::client::room::create_room::v3::Request::new();
    req.name = Some("Nana's kitchen".to_owned());
    nana.create_room(req).await.expect("nana creates a room");
    let mut req = matrix_sdk::ruma::api::client::room::create_room::v3::Request::new();
    req.name = Some("Old chat".to_owned());
    let old_chat = nana.create_room(req).await.expect("nana creates another room").room_id().to_owned();

    // Settings: invite codes in apps, after a restart.
    let got = flow(&["settings", &admin_url]).await;
    // The flow replaced the admin key (and checked that the old one is refused): go on with the new.
    let admin_url = format!("{}#token={}", admin_url.split('#').next().unwrap(), got["admin_key"].as_str().unwrap());
    let (st, v) = register(serde_json::json!({"username": "coded", "password": "a-long-password"})).await;
    assert_eq!(st, 401, "{v}");
    assert_eq!(v["flows"][0]["stages"][0], "m.login.registration_token", "{v}");
    // The help contacts set in Settings reach apps: the admin, their email, the help page.
    let support: Value =
        reqwest::get(format!("{}/.well-known/matrix/support", server.url)).await.unwrap().json().await.unwrap();
    assert_eq!(support["support_page"], "https://family.test/help", "{support}");
    let contacts = support["contacts"].as_array().unwrap();
    assert!(contacts.iter().any(|c| c["matrix_id"] == "@mum:family.test"), "{support}");
    assert!(
        contacts.iter().any(|c| c["email_address"] == "nana@family.test" && c["role"] == "m.role.admin"),
        "{support}"
    );

    flow(&["deactivate", &admin_url, &user]).await;
    // The room deleted in the dashboard is gone from the server, not only from the page.
    let key = admin_url.split("#token=").nth(1).unwrap();
    let rooms: Value = reqwest::Client::new()
        .get(format!("{}admin/v1/rooms", admin_url.split('#').next().unwrap()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("{rooms}"))
        .iter()
        .filter_map(|r| r["room_id"].as_str())
        .collect();
    assert!(!ids.contains(&old_chat.as_str()) && ids.len() == 1, "{rooms}");
    let again = client(&server).await;
    let refused = again.matrix_auth().login_username("nana", "tea-and-biscuits").send().await;
    assert!(refused.is_err(), "a deactivated account cannot sign in");
    // And the session from before is over too.
    assert!(nana.whoami().await.is_err());
    let _ = stop.send(());
}

/// What `client` needs of a server whose `Running` is owned by the supervisor.
struct Server {
    url: String,
    #[allow(dead_code)] // keeps the data folder alive
    dir: tempfile::TempDir,
}
