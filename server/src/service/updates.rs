//! Updates of the desktop app, from the dashboard. The server does not update itself: the
//! desktop app hands it an [`AppUpdater`] (Tauri's updater: signed manifests, signed packages),
//! and this module decides when to ask (at most once a day while checks are on, and whenever the
//! admin asks), remembers what it found, and starts an install. The headless server has none:
//! its package manager updates it, and the dashboard says so.
//!
//! The [`Updates`] value is made once by the app and outlives the server's restarts (a settings
//! change, a failed install that starts the server again), so what the last check found and
//! why an install failed stay visible.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::outbound::{IpPolicy, Redirects, guard};
use crate::{
    error::{Error, Result},
    storage::{self, Db},
};

/// How often the app asks on its own, at most.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// Where the last check's time is kept, so that restarting the app does not ask again.
const LAST_CHECKED_KEY: &str = "update_last_checked";
/// The dashboard's switch (over `update_checks` in the file).
pub const CHECKS_KEY: &str = "update_checks";

/// What the desktop app does for the dashboard.
pub trait AppUpdater: Send + Sync + 'static {
    /// Asks the update server. `Ok(None)`: this version is the newest.
    fn check(&self, net: Network) -> BoxFuture<'static, std::result::Result<Option<Release>, String>>;
    /// Downloads `version`, verifies its signature, stops the server gracefully, installs it and
    /// restarts the app into it. Returns only when something failed; the server serves again by
    /// then (a download or signature failure never stops it).
    fn install(&self, net: Network, version: String) -> BoxFuture<'static, std::result::Result<(), String>>;
}

/// A newer version the update server announced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Release {
    pub version: String,
    /// What changed, as the release notes say it.
    pub notes: Option<String>,
    /// When it was published (RFC 3339), when the manifest says.
    pub date: Option<String>,
}

/// The outbound policy the updater's requests go through, and the manifest's address when the
/// config names one (`update_manifest_url`) instead of the app's built-in one.
#[derive(Clone)]
pub struct Network {
    policy: Arc<IpPolicy>,
    manifest: Option<Url>,
}

impl Network {
    pub(crate) fn new(policy: IpPolicy, manifest: Option<Url>) -> Self {
        Self { policy: Arc::new(policy), manifest }
    }

    /// An HTTP client builder under the outbound policy (names resolved through it, no proxy
    /// from the environment, each redirect checked).
    pub fn client(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        guard(&self.policy, builder, Redirects::Follow(10))
    }

    /// Refuses a URL whose host is an address the policy does not allow (names are checked
    /// when they are resolved).
    pub fn check_url(&self, url: &Url) -> std::result::Result<(), String> {
        self.policy.check_url(url).map_err(|e| format!("{url}: {e}"))
    }

    /// The manifest's address from the config, if it names one.
    pub fn manifest_url(&self) -> Option<&Url> {
        self.manifest.as_ref()
    }
}

/// The dashboard's view of updates.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// False for the headless server, which its package manager updates.
    pub supported: bool,
    pub current_version: &'static str,
    /// Whether the app asks once a day on its own.
    pub checks: bool,
    pub checking: bool,
    pub last_checked: Option<i64>,
    pub next_check: Option<i64>,
    pub last_error: Option<String>,
    pub available: Option<Release>,
    pub install: InstallState,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum InstallState {
    #[default]
    Idle,
    Installing {
        version: String,
    },
    Failed {
        version: String,
        error: String,
    },
}

#[derive(Default)]
struct State {
    checks: bool,
    checking: bool,
    last_checked: Option<i64>,
    last_error: Option<String>,
    available: Option<Release>,
    install: InstallState,
}

/// The app's updater and what it last found; cheap to clone.
#[derive(Clone)]
pub struct Updates(Arc<Inner>);

struct Inner {
    app: Arc<dyn AppUpdater>,
    state: Mutex<State>,
    /// Wakes the daily loop when the switch or the last check changed.
    wake: Notify,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Updates")
    }
}

impl Updates {
    pub fn new(app: Arc<dyn AppUpdater>) -> Self {
        Self(Arc::new(Inner { app, state: Mutex::new(State::default()), wake: Notify::new() }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn status(&self) -> Status {
        let s = self.state();
        let next_check =
            s.checks.then(|| s.last_checked.map_or_else(storage::now_ms, |t| t + CHECK_INTERVAL.as_millis() as i64));
        Status {
            supported: true,
            current_version: crate::VERSION,
            checks: s.checks,
            checking: s.checking,
            last_checked: s.last_checked,
            next_check,
            last_error: s.last_error.clone(),
            available: s.available.clone(),
            install: s.install.clone(),
        }
    }

    /// Asks the update server now and remembers the answer (and when it was asked).
    pub(crate) async fn check(&self, db: &Db, net: Network) -> Status {
        {
            let mut s = self.state();
            if s.checking {
                // One question at a time; the caller sees it under way.
                drop(s);
                return self.status();
            }
            s.checking = true;
        }
        let found = tokio::time::timeout(Duration::from_secs(60), self.0.app.check(net)).await;
        let now = storage::now_ms();
        {
            let mut s = self.state();
            s.checking = false;
            s.last_checked = Some(now);
            match found {
                Ok(Ok(release)) => {
                    if let Some(r) = &release {
                        tracing::info!(version = %r.version, "an update is available");
                    }
                    s.available = release;
                    s.last_error = None;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "checking for updates failed");
                    s.last_error = Some(e);
                }
                Err(_) => s.last_error = Some("The update server did not answer within a minute.".to_owned()),
            }
        }
        if let Err(e) = storage::settings::set(&db.write, LAST_CHECKED_KEY, &serde_json::json!(now)).await {
            tracing::warn!(error = %e, "remembering when updates were checked");
        }
        self.0.wake.notify_one();
        self.status()
    }

    /// Turns the daily check on or off; kept in the database.
    pub(crate) async fn set_checks(&self, db: &Db, on: bool) -> Result<()> {
        storage::settings::set(&db.write, CHECKS_KEY, &serde_json::json!(on)).await?;
        self.state().checks = on;
        self.0.wake.notify_one();
        Ok(())
    }

    /// Starts installing `version`, which the last check must have found. The app stops the
    /// server before it installs, so this returns at once and the install goes on without it.
    pub(crate) fn install(&self, version: &str, net: Network) -> Result<()> {
        {
            let mut s = self.state();
            if let InstallState::Installing { version } = &s.install {
                return Err(Error::custom(
                    http::StatusCode::CONFLICT,
                    "M_UNKNOWN",
                    format!("Hearth {version} is already being installed"),
                ));
            }
            match &s.available {
                Some(r) if r.version == version => {}
                Some(r) => {
                    return Err(Error::invalid_param(format!(
                        "The update found is {}, not {version}: check again",
                        r.version
                    )));
                }
                None => return Err(Error::invalid_param("No update was found: check for one first")),
            }
            s.install = InstallState::Installing { version: version.to_owned() };
        }
        let (this, version) = (self.clone(), version.to_owned());
        // Not one of the server's tasks: the install stops the server and must go on.
        tokio::spawn(async move {
            tracing::info!(%version, "installing an update");
            let result = this.0.app.install(net, version.clone()).await;
            let mut s = this.state();
            s.install = match result {
                Ok(()) => InstallState::Idle,
                Err(error) => {
                    tracing::error!(%version, %error, "the update was not installed");
                    InstallState::Failed { version, error }
                }
            };
        });
        Ok(())
    }

    /// The daily check, for one run of the server: `checks` is the config's (or the
    /// dashboard's) switch at this start.
    pub(crate) async fn run(self, db: Db, net: Network, checks: bool, cancel: CancellationToken) {
        let last = match storage::settings::get(&db.read, LAST_CHECKED_KEY).await {
            Ok(v) => v.as_ref().and_then(serde_json::Value::as_i64),
            Err(e) => {
                tracing::warn!(error = %e, "reading when updates were last checked");
                None
            }
        };
        {
            let mut s = self.state();
            s.checks = checks;
            s.last_checked = s.last_checked.max(last);
        }
        loop {
            let due = self.status().next_check;
            let wait = due.map(|t| Duration::from_millis(t.saturating_sub(storage::now_ms()).max(0) as u64));
            let sleep = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.0.wake.notified() => {}
                () = sleep => {
                    self.check(&db, net.clone()).await;
                }
            }
        }
    }
}

/// What the dashboard shows on a server without an updater (the headless one).
pub fn unsupported() -> serde_json::Value {
    serde_json::json!({
        "supported": false,
        "current_version": crate::VERSION,
        "how": "This Hearth runs without the desktop app: update it the way it was installed \
                (apt upgrade for the hearth-server package, or a new build from source).",
    })
}
