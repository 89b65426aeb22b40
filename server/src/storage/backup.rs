//! The database's part of a backup: one consistent copy taken while the server may be writing.

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    str::FromStr,
    sync::mpsc,
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    ConnectOptions, Connection,
    sqlite::{SqliteConnectOptions, SqliteJournalMode},
};

/// Copies the database at `db` into the new file `dest` with `VACUUM INTO`: one read
/// transaction, so the copy is a consistent snapshot and writers (a running server, in this or
/// another process) go on while it is made. Answers the copy's `schema_compat`.
pub async fn snapshot(db: &Path, dest: &Path) -> anyhow::Result<i64> {
    let mut conn = SqliteConnectOptions::from_str("sqlite://")?
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let pacer = Pacer::start(dest.to_path_buf());
    let vacuumed = sqlx::query("VACUUM INTO ?")
        .bind(dest.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying the database into {}", dest.display()));
    pacer.stop();
    vacuumed?;
    conn.close().await?;
    // The copy is a database of its own: read what it says it is.
    let mut copy = SqliteConnectOptions::from_str("sqlite://")?.filename(dest).read_only(true).connect().await?;
    let compat: Option<(String,)> = sqlx::query_as("SELECT value FROM server_meta WHERE key = 'schema_compat'")
        .fetch_optional(&mut copy)
        .await
        .context("reading the copy's schema")?;
    let (integrity,): (String,) = sqlx::query_as("PRAGMA quick_check").fetch_one(&mut copy).await?;
    copy.close().await?;
    anyhow::ensure!(integrity == "ok", "the copy of the database does not pass SQLite's check: {integrity}");
    Ok(compat.and_then(|(v,)| v.parse().ok()).unwrap_or(0))
}

/// Keeps `server_name` in the settings of the database file `db` (unless a server name is set
/// there already), so a server started on it keeps the name its users and rooms carry.
pub async fn keep_server_name(db: &Path, server_name: &str) -> anyhow::Result<()> {
    let mut conn = SqliteConnectOptions::from_str("sqlite://")?
        .filename(db)
        .journal_mode(SqliteJournalMode::Delete)
        .connect()
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES ('server_name', ?)")
        .bind(serde_json::Value::from(server_name).to_string())
        .execute(&mut conn)
        .await
        .context("keeping the backup's server name")?;
    conn.close().await?;
    Ok(())
}

/// How much of a backup's file may wait in memory unwritten. Why it matters: every message the
/// server accepts waits for `fsync`, and on ext4 (ordered data) an `fsync` waits for the data
/// of every file whose blocks the same journal commit allocates. A gigabyte snapshot left to the
/// kernel is written out in one go, at its own final sync or the flusher's; a send caught behind
/// it waited over a second (docs/benchmarks-backup.md). Written out every few MiB, the wait is
/// one chunk's.
const WRITEBACK_CHUNK: u64 = 8 << 20;

/// Syncs the file at `path` every [`WRITEBACK_CHUNK`] it grows while someone else (SQLite's
/// `VACUUM INTO`) writes it, from a thread of its own so the copy never waits for it.
struct Pacer {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Pacer {
    fn start(path: PathBuf) -> Pacer {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let (mut file, mut synced) = (None::<File>, 0);
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_millis(10)) {
                if file.is_none() {
                    // Write access: Windows flushes only through a handle that may write.
                    file = std::fs::OpenOptions::new().write(true).open(&path).ok();
                }
                let Some(f) = &file else { continue };
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                if len >= synced + WRITEBACK_CHUNK {
                    // Only pacing: the copy's own sync at its end is what makes it durable.
                    let _ = f.sync_data();
                    synced = len;
                }
            }
        });
        Pacer { stop, thread }
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// A file being written that is synced every [`WRITEBACK_CHUNK`], for the same reason.
pub struct SyncedAsWritten {
    file: File,
    unsynced: u64,
}

impl SyncedAsWritten {
    pub fn new(file: File) -> SyncedAsWritten {
        SyncedAsWritten { file, unsynced: 0 }
    }

    /// The file, everything written synced.
    pub fn finish(self) -> std::io::Result<File> {
        self.file.sync_all()?;
        Ok(self.file)
    }
}

impl Write for SyncedAsWritten {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= WRITEBACK_CHUNK {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
