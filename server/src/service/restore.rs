//! Restoring a backup into a fresh install, from the setup wizard's first screen.
//!
//! The dashboard finds the backups in a folder, and asks for one: it is checked from end to end
//! while this (empty) server goes on serving, so a wrong passphrase or a damaged backup is
//! answered at once and nothing changes. A backup that passes is kept as pending, and the
//! server restarts: between the stop and the start, the fresh database is moved aside and the
//! backup written in its place (`Running::restart`). The result is kept in the settings of the
//! database the server then serves, for the dashboard to show.

use std::{path::Path, sync::Mutex};

use age::secrecy::SecretString;
use serde_json::{Value, json};

use crate::{
    Config,
    error::{Error, Result},
    service::backup::{self, AdminKey, Checked},
    storage::{self, Db},
};

/// The settings key of the last restore's result.
pub const LAST_KEY: &str = "restore_last";

/// Files of the database that a restore moves aside.
const DB_FILES: [&str; 3] = ["hearth.db", "hearth.db-wal", "hearth.db-shm"];

pub struct Restores {
    db: Db,
    pending: Mutex<Option<Checked>>,
}

impl Restores {
    pub fn new(db: Db) -> Restores {
        Restores { db, pending: Mutex::new(None) }
    }

    /// Whether this server may be replaced by a backup: nobody has an account and there are no
    /// rooms, so nothing is lost.
    pub async fn allowed(&self) -> Result<bool> {
        Ok(storage::users::count_all(&self.db.read).await? == 0 && storage::rooms::count(&self.db.read).await? == 0)
    }

    /// What the wizard shows: whether a restore is possible, the last one's result, and the
    /// backups at `path` when given.
    pub async fn status(&self, path: Option<&Path>) -> Result<Value> {
        let last = storage::settings::get(&self.db.read, LAST_KEY).await?;
        let mut out = json!({ "allowed": self.allowed().await?, "last": last });
        if let Some(path) = path {
            check_path(path)?;
            let path = path.to_path_buf();
            let found = tokio::task::spawn_blocking(move || backup::find(&path)).await.map_err(Error::internal)?;
            out["backups"] = json!(found);
        }
        Ok(out)
    }

    /// Checks the backup at `path` and keeps it for the restart that writes it; answers what it
    /// is a backup of. The caller asks for the restart.
    pub async fn prepare(&self, path: &Path, passphrase: Option<String>) -> Result<Value> {
        if !self.allowed().await? {
            return Err(Error::forbidden(
                "This server has accounts or rooms already: a restore would replace them. Restore into a new data folder instead (hearth restore)",
            ));
        }
        check_path(path)?;
        let passphrase = passphrase.filter(|p| !p.is_empty()).map(SecretString::from);
        let checked =
            backup::check(path, passphrase.as_ref()).await.map_err(|e| Error::invalid_param(format!("{e:#}")))?;
        let about = json!({ "server_name": checked.server_name(), "created_ms": checked.created_ms() });
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(checked);
        tracing::info!(path = %path.display(), "restoring a backup at the restart");
        Ok(about)
    }

    /// The backup to restore at this restart, if one was asked for.
    pub fn take(&self) -> Option<Checked> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

fn check_path(path: &Path) -> Result<()> {
    if !path.is_absolute() {
        return Err(Error::invalid_param("path: give the whole path of the folder, e.g. /media/usb/hearth-backups"));
    }
    if !path.is_dir() {
        return Err(Error::invalid_param(format!("path: there is no folder at {}", path.display())));
    }
    Ok(())
}

/// Writes `checked` into the data folder of the stopped server `config` describes, in place of
/// its database, which is moved aside first and put back when the restore fails. Answers the
/// result, to be kept in the settings of the database served next.
pub async fn restore_into_stopped(config: &Config, checked: Checked) -> Value {
    let data = config.data_dir().to_path_buf();
    let aside = data.join(".before-restore");
    let moved = (|| -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::create_dir_all(&aside)?;
        for f in DB_FILES {
            match std::fs::rename(data.join(f), aside.join(f)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    })();
    let result = match moved {
        Ok(()) => backup::restore_checked(config, &checked, AdminKey::KeepCurrent).await,
        Err(e) => Err(anyhow::Error::from(e).context("moving the new server's database aside")),
    };
    let now = storage::now_ms();
    match result {
        Ok(restored) => {
            tracing::info!(server_name = %restored.server_name, media = restored.media, "backup restored");
            let _ = std::fs::remove_dir_all(&aside);
            json!({
                "ok": true, "at_ms": now, "server_name": restored.server_name,
                "created_ms": checked.created_ms(), "media": restored.media,
            })
        }
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "restoring the backup failed; the new server is kept");
            let _ = std::fs::remove_file(data.join("hearth.db"));
            for f in DB_FILES {
                let _ = std::fs::rename(aside.join(f), data.join(f));
            }
            let _ = std::fs::remove_dir(&aside);
            json!({ "ok": false, "at_ms": now, "error": format!("{e:#}") })
        }
    }
}
