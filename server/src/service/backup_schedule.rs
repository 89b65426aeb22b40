//! Scheduled backups: daily or weekly into a chosen folder (an external disk, a synced folder),
//! keeping the newest N, encrypted when a passphrase is given. The plan comes from the config
//! file's `[backups]` table, or from the dashboard, whose choice (kept in the settings table)
//! goes over the file's. The passphrase is kept with the server's other secrets (the OS
//! keychain when there is one), never in the database or in the backups it protects.
//!
//! The last run's time and result are kept in the settings table, so the Status page can warn
//! when backups fail or are old, also after a restart.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{backup, now_ms};
use crate::{
    config::{BackupSchedule, Config},
    error::{Error, Result},
    secrets::Secrets,
    storage::{self, Db},
};

/// The dashboard's plan (JSON in the settings table).
const PLAN_KEY: &str = "backups";
/// The last run (JSON in the settings table).
const LAST_KEY: &str = "backup_last";
/// The passphrase of encrypted backups, in the secret store.
pub const PASSPHRASE_SECRET: &str = "backup_passphrase";
/// After a failure, the next try comes this soon (or at the next scheduled time, if sooner).
const RETRY: Duration = Duration::from_secs(60 * 60);
/// A start does not back up at once: the server has better things to do in its first minute.
const AFTER_START: Duration = Duration::from_secs(60);

/// What to back up when, where, and how many to keep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    pub schedule: BackupSchedule,
    pub dir: Option<PathBuf>,
    pub keep: u32,
    pub encrypted: bool,
}

/// The last run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Last {
    pub started_ms: i64,
    pub took_ms: i64,
    pub ok: bool,
    /// The backup's folder, when it was made.
    pub path: Option<String>,
    /// Why it failed, in words.
    pub error: Option<String>,
    /// When the last backup that worked was made (this one or an earlier one).
    pub last_ok_ms: Option<i64>,
    /// Older backups removed to keep `keep`.
    pub removed: Vec<String>,
}

pub struct Backups {
    db: Db,
    config: Arc<Config>,
    secrets: Arc<Secrets>,
    running: AtomicBool,
    wake: Notify,
    started: std::time::Instant,
}

impl Backups {
    pub fn new(db: Db, config: Arc<Config>, secrets: Arc<Secrets>) -> Arc<Backups> {
        Arc::new(Backups {
            db,
            config,
            secrets,
            running: AtomicBool::new(false),
            wake: Notify::new(),
            started: std::time::Instant::now(),
        })
    }

    /// The plan: the dashboard's when it made one, else the config file's.
    pub async fn plan(&self) -> Result<Plan> {
        let saved = storage::settings::get(&self.db.read, PLAN_KEY).await?;
        if let Some(plan) = saved.and_then(|v| serde_json::from_value(v).ok()) {
            return Ok(plan);
        }
        let c = &self.config.backups;
        Ok(Plan { schedule: c.schedule, dir: c.dir.clone(), keep: c.keep, encrypted: c.passphrase_file.is_some() })
    }

    async fn last(&self) -> Result<Option<Last>> {
        let saved = storage::settings::get(&self.db.read, LAST_KEY).await?;
        Ok(saved.and_then(|v| serde_json::from_value(v).ok()))
    }

    /// The passphrase: the dashboard's (secret store), else the config's file.
    async fn passphrase(&self) -> anyhow::Result<Option<SecretString>> {
        let secrets = self.secrets.clone();
        if let Some(bytes) = tokio::task::spawn_blocking(move || secrets.get(PASSPHRASE_SECRET)).await?? {
            return Ok(Some(SecretString::from(String::from_utf8(bytes)?)));
        }
        match &self.config.backups.passphrase_file {
            Some(path) => Ok(Some(backup::read_passphrase(path)?)),
            None => Ok(None),
        }
    }

    /// Changes the plan from the dashboard; a new passphrase is checked against the folder's key
    /// (a folder of encrypted backups opens with one passphrase only) before it is kept.
    pub async fn set_plan(&self, plan: Plan, passphrase: Option<String>) -> Result<Plan> {
        if !(1..=1000).contains(&plan.keep) {
            return Err(Error::invalid_param("keep: between 1 and 1000 backups"));
        }
        if let Some(dir) = &plan.dir
            && !dir.is_absolute()
        {
            return Err(Error::invalid_param("dir: give the whole path of the folder, e.g. /media/usb/hearth-backups"));
        }
        if plan.schedule != BackupSchedule::Off && plan.dir.is_none() {
            return Err(Error::invalid_param("dir: choose the folder backups go to"));
        }
        let given = match passphrase.filter(|p| !p.is_empty()) {
            Some(p) if p.chars().count() < backup::MIN_PASSPHRASE => {
                return Err(Error::invalid_param(format!(
                    "passphrase: at least {} characters",
                    backup::MIN_PASSPHRASE
                )));
            }
            Some(p) => Some(SecretString::from(p)),
            None => None,
        };
        if plan.encrypted {
            let passphrase = match &given {
                Some(p) => p.clone(),
                None => self
                    .passphrase()
                    .await
                    .map_err(Error::internal)?
                    .ok_or_else(|| Error::invalid_param("passphrase: encrypted backups need a passphrase"))?,
            };
            if let Some(dir) = plan.dir.clone() {
                let opened = tokio::task::spawn_blocking(move || backup::check_passphrase(&dir, &passphrase))
                    .await
                    .map_err(Error::internal)?;
                opened.map_err(|e| Error::invalid_param(format!("passphrase: {e}")))?;
            }
        }
        if let Some(p) = given {
            let secrets = self.secrets.clone();
            tokio::task::spawn_blocking(move || secrets.set(PASSPHRASE_SECRET, p.expose_secret().as_bytes()))
                .await
                .map_err(Error::internal)?
                .map_err(Error::internal)?;
        }
        let value = serde_json::to_value(&plan).map_err(Error::internal)?;
        storage::settings::set(&self.db.write, PLAN_KEY, &value).await?;
        self.wake.notify_one();
        Ok(plan)
    }

    /// What the Status page shows: the plan, whether a backup runs now, the last run, a warning
    /// when backups fail or are old, and the backups in the folder.
    pub async fn status(&self) -> Result<Value> {
        let plan = self.plan().await?;
        let last = self.last().await?;
        let now = now_ms();
        let warning = match (&last, plan.schedule.interval()) {
            (Some(l), _) if !l.ok => Some("failing"),
            (_, None) => None,
            (None, Some(_)) => Some("never"),
            (Some(l), Some(every)) => {
                let ok = l.last_ok_ms.unwrap_or(0);
                (now - ok > 2 * every.as_millis() as i64).then_some("old")
            }
        };
        let list = match &plan.dir {
            Some(dir) => backup::list(dir, self.config.server_name.as_str()),
            None => Vec::new(),
        };
        Ok(json!({
            "plan": plan,
            "running": self.running.load(Ordering::Acquire),
            "last": last,
            "warning": warning,
            "backups": list,
        }))
    }

    /// Starts a backup now; false when one is running already.
    pub fn start_now(self: &Arc<Self>) -> bool {
        if self.running.swap(true, Ordering::AcqRel) {
            return false;
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.run_once().await;
            // The schedule counts from this backup.
            this.wake.notify_one();
        });
        true
    }

    /// One backup and the clean-up after it; the result is stored. `running` is set by the
    /// caller and cleared here.
    async fn run_once(&self) {
        let started_ms = now_ms();
        let clock = std::time::Instant::now();
        let result = self.backup().await;
        let previous_ok = self.last().await.ok().flatten().and_then(|l| l.last_ok_ms);
        let last = match result {
            Ok((path, removed)) => {
                tracing::info!(path = %path.display(), removed = removed.len(), "backup made");
                Last {
                    started_ms,
                    took_ms: clock.elapsed().as_millis() as i64,
                    ok: true,
                    path: Some(path.display().to_string()),
                    error: None,
                    last_ok_ms: Some(started_ms),
                    removed,
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "backup failed");
                Last {
                    started_ms,
                    took_ms: clock.elapsed().as_millis() as i64,
                    ok: false,
                    path: None,
                    error: Some(format!("{e:#}")),
                    last_ok_ms: previous_ok,
                    removed: Vec::new(),
                }
            }
        };
        if let Ok(value) = serde_json::to_value(&last)
            && let Err(e) = storage::settings::set(&self.db.write, LAST_KEY, &value).await
        {
            tracing::warn!(error = %e, "cannot record the backup's result");
        }
        self.running.store(false, Ordering::Release);
    }

    async fn backup(&self) -> anyhow::Result<(PathBuf, Vec<String>)> {
        let plan = self.plan().await?;
        let Some(dir) = plan.dir else {
            anyhow::bail!("no folder is chosen for backups");
        };
        let passphrase = if plan.encrypted {
            Some(self.passphrase().await?.ok_or_else(|| anyhow::anyhow!("encrypted backups need a passphrase"))?)
        } else {
            None
        };
        let key = backup::FolderKey::open(&dir, passphrase.as_ref()).await?;
        let path = backup::backup_with(&self.config, self.config.config_file.as_deref(), &dir, &key).await?;
        let removed = backup::prune(&dir, self.config.server_name.as_str(), plan.keep as usize, &key).await?;
        Ok((path, removed))
    }

    /// Backs up when the plan says, until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let wait = match self.next_in().await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the backup plan");
                    Some(RETRY)
                }
            };
            let sleep = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => continue,
                _ = sleep => {
                    if !self.running.swap(true, Ordering::AcqRel) {
                        self.run_once().await;
                    }
                }
            }
        }
    }

    /// How long until the next scheduled backup (None: none is scheduled).
    async fn next_in(&self) -> Result<Option<Duration>> {
        let Some(every) = self.plan().await?.schedule.interval() else {
            return Ok(None);
        };
        let due_ms = match self.last().await? {
            Some(l) if l.ok => l.started_ms + every.as_millis() as i64,
            Some(l) => l.started_ms + every.min(RETRY).as_millis() as i64,
            None => 0,
        };
        let wait = Duration::from_millis(u64::try_from(due_ms - now_ms()).unwrap_or(0));
        Ok(Some(wait.max(AFTER_START.saturating_sub(self.started.elapsed()))))
    }
}
