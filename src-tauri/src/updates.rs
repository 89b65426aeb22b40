//! Updates through Tauri's updater plugin: a manifest that announces the newest version, and
//! packages signed with the project's minisign key, whose public half is built into the app
//! (`plugins.updater.pubkey`, set by installers/build.sh for release builds). The dashboard
//! drives it through the server's admin API (`hearth_server::updates`).
//!
//! An install downloads and verifies the package while the server keeps serving, then stops
//! the server gracefully, installs (on Linux: `dpkg -i` or `rpm -U` through pkexec or sudo) and
//! restarts the app into the new version. Data and secrets live outside the app's folder, so
//! they are not touched. A failure before the server stopped changes nothing; one after it
//! starts the server again.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures::future::BoxFuture;
use hearth_server::updates::{AppUpdater, Network, Release};
use tauri::AppHandle;
use tauri_plugin_updater::{Error, UpdaterExt as _};

use crate::server::DesktopServer;

/// Whether this build carries an update key: packages built without one (from source, by a
/// distribution) are updated by whoever built them, and the dashboard says so.
pub fn configured(context: &tauri::Context) -> bool {
    context
        .config()
        .plugins
        .0
        .get("updater")
        .and_then(|u| u.get("pubkey"))
        .and_then(|k| k.as_str())
        .is_some_and(|k| !k.trim().is_empty())
}

pub struct TauriUpdater {
    app: AppHandle,
    /// Set once the server task runs (it needs the config that carries this updater).
    pub server: Arc<OnceLock<DesktopServer>>,
}

impl TauriUpdater {
    pub fn new(app: AppHandle) -> Self {
        Self { app, server: Arc::new(OnceLock::new()) }
    }
}

fn updater(app: &AppHandle, net: &Network) -> Result<tauri_plugin_updater::Updater, String> {
    let client = net.clone();
    let mut builder =
        app.updater_builder().timeout(Duration::from_secs(60)).configure_client(move |b| client.client(b));
    if let Some(url) = net.manifest_url() {
        builder = builder.endpoints(vec![url.clone()]).map_err(explain)?;
    }
    builder.build().map_err(explain)
}

/// The plugin's errors, said for the dashboard.
fn explain(e: Error) -> String {
    match e {
        Error::Minisign(_) | Error::Base64(_) | Error::SignatureUtf8(_) => format!(
            "The downloaded update is not signed with Hearth's key, so it was not installed ({e}). \
             Nothing was changed."
        ),
        Error::SignedVersionMismatch { .. } | Error::MissingSignedVersion => {
            format!("The update server announced a version its package was not signed for: not installed ({e}).")
        }
        Error::ReleaseNotFound => "The update server did not answer with an update manifest.".to_owned(),
        Error::TargetNotFound(_) | Error::TargetsNotFound(_) => {
            format!("The update server offers no package for this system ({e}).")
        }
        Error::Reqwest(r) => {
            // reqwest says only "error sending request"; the causes say why.
            let mut causes = Vec::new();
            let mut src = std::error::Error::source(&r);
            while let Some(s) = src {
                causes.push(s.to_string());
                src = s.source();
            }
            let mut text = r.without_url().to_string();
            for c in causes {
                text = format!("{text}: {c}");
            }
            format!("Could not reach the update server: {text}")
        }
        Error::AuthenticationFailed | Error::PackageInstallFailed | Error::DebInstallFailed => format!(
            "Installing the update needs an administrator's permission, which was refused or failed ({e}). \
             Hearth goes on with the version it has."
        ),
        other => other.to_string(),
    }
}

impl AppUpdater for TauriUpdater {
    fn check(&self, net: Network) -> BoxFuture<'static, Result<Option<Release>, String>> {
        let app = self.app.clone();
        Box::pin(async move {
            let found = updater(&app, &net)?.check().await.map_err(explain)?;
            Ok(found.map(|u| Release {
                version: u.version,
                notes: u.body,
                date: u.date.and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok()),
            }))
        })
    }

    fn install(&self, net: Network, version: String) -> BoxFuture<'static, Result<(), String>> {
        let (app, server) = (self.app.clone(), self.server.clone());
        Box::pin(async move {
            let update = updater(&app, &net)?
                .check()
                .await
                .map_err(explain)?
                .ok_or("The update server no longer offers an update.")?;
            if update.version != version {
                return Err(format!(
                    "The update server now offers {} instead of {version}: check again.",
                    update.version
                ));
            }
            net.check_url(&update.download_url)?;
            // Verified against the built-in key before anything else happens.
            let bytes = update.download(|_, _| {}, || {}).await.map_err(explain)?;
            tracing::info!(%version, bytes = bytes.len(), "update downloaded and its signature verified");
            let server = server.get().ok_or("The server is not running.")?;
            server.pause_and_wait().await;
            tracing::info!(%version, "server stopped for the update; installing");
            let installed = {
                let update = update;
                tokio::task::spawn_blocking(move || update.install(bytes).map_err(explain))
                    .await
                    .map_err(|e| e.to_string())?
            };
            if let Err(e) = installed {
                server.resume();
                return Err(e);
            }
            tracing::info!(%version, "update installed; restarting");
            // From this thread: Tauri asks the event loop to exit, then starts the new binary
            // with the same arguments.
            app.restart();
        })
    }
}
