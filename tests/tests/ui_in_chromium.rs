//! The web UI in Debian's headless Chromium (playwright-core, `tests/ui/flows.mjs`) against a
//! real server, then the results checked through the Matrix API with the `matrix-sdk` crate:
//! an invite made in the dashboard signs someone up in the browser, that person signs in with
//! matrix-sdk, and once deactivated in the dashboard can no longer sign in.
//!
//! Needs Node.js, `npm ci` in tests/ui and /usr/bin/chromium; scripts/test.sh provides them and
//! runs this with `--ignored`.

use std::{path::PathBuf, process::Command};

use hearth_blackbox::{client, start};
use serde_json::Value;

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
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| panic!("no JSON from flows.mjs: {stdout}"))
}

#[tokio::test]
#[ignore = "needs Chromium and playwright-core: scripts/test.sh runs it"]
async fn an_invite_from_the_dashboard_signs_someone_up_who_then_signs_in_until_deactivated() {
    // Registration closed, as it is by default: the invite is the only way in.
    let server = start(async |c| c.enable_registration = false).await;
    let admin_url = server.running.admin_url();

    let got = flow(&["invite", &admin_url]).await;
    let user = got["user"].as_str().unwrap().to_owned();
    assert_eq!(user, "@nana:blackbox.test");
    assert_eq!(got["homeserver"].as_str().unwrap().trim_end_matches('/'), server.url);

    let nana = client(&server).await;
    nana.matrix_auth().login_username("nana", "tea-and-biscuits").send().await.expect("nana signs in");
    assert_eq!(nana.user_id().unwrap().as_str(), user);
    let mut req = matrix_sdk::ruma::api::client::room::create_room::v3::Request::new();
    req.name = Some("Nana's kitchen".to_owned());
    nana.create_room(req).await.expect("nana creates a room");

    flow(&["deactivate", &admin_url, &user]).await;
    let again = client(&server).await;
    let refused = again.matrix_auth().login_username("nana", "tea-and-biscuits").send().await;
    assert!(refused.is_err(), "a deactivated account cannot sign in");
    // And the session from before is over too.
    assert!(nana.whoami().await.is_err());
}
