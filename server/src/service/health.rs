//! The dashboard's health checks: the database checked by SQLite on demand, and the disk space
//! left where the data folder is (warned about before it fills: SQLite cannot commit without it).

use std::path::Path;

use serde::Serialize;

use crate::{
    error::Result,
    storage::{self, Db},
};

/// Below this much free space, or this share of the disk, the Status page warns.
const LOW_BYTES: u64 = 1 << 30;
const LOW_PERCENT: u64 = 5;

#[derive(Debug, Serialize)]
pub struct DatabaseCheck {
    pub ok: bool,
    /// SQLite's `integrity_check`: `["ok"]` or the problems found.
    pub integrity: Vec<String>,
    /// Rows pointing to rows that are not there (`foreign_key_check`).
    pub foreign_keys: Vec<Violation>,
    pub took_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct Violation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
}

/// Bytes of the database file and its write-ahead log in the data folder.
pub fn database_bytes(data_dir: &Path) -> u64 {
    let db = data_dir.join("hearth.db");
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", db.display())).ok())
        .map(|m| m.len())
        .sum()
}

/// Runs SQLite's integrity and foreign-key checks on a reader connection (writers go on; a big
/// database takes a while, which is why this runs only when asked).
pub async fn check_database(db: &Db) -> Result<DatabaseCheck> {
    let started = std::time::Instant::now();
    let mut conn = db.read.acquire().await?;
    let integrity = storage::health::integrity(&mut *conn).await?;
    let foreign_keys: Vec<Violation> = storage::health::foreign_keys(&mut *conn)
        .await?
        .into_iter()
        .map(|v| Violation { table: v.table, rowid: v.rowid, parent: v.parent })
        .collect();
    let ok = integrity == ["ok"] && foreign_keys.is_empty();
    if !ok {
        tracing::warn!(?integrity, foreign_key_problems = foreign_keys.len(), "the database check found problems");
    }
    Ok(DatabaseCheck { ok, integrity, foreign_keys, took_ms: started.elapsed().as_millis() as u64 })
}

#[derive(Debug, Serialize)]
pub struct Disk {
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// Said when the disk is nearly full.
    pub warning: Option<String>,
}

/// The space left on the disk holding `dir` (what an unprivileged process may use).
#[cfg(unix)]
pub fn disk(dir: &Path) -> Option<Disk> {
    let s = rustix::fs::statvfs(dir).ok()?;
    let free_bytes = s.f_bavail.saturating_mul(s.f_frsize);
    let total_bytes = s.f_blocks.saturating_mul(s.f_frsize);
    let low = free_bytes < LOW_BYTES || free_bytes.saturating_mul(100) < total_bytes.saturating_mul(LOW_PERCENT);
    let warning = low.then(|| {
        format!(
            "Only {} MB left on the disk of the data folder. When it is full, messages can no longer be saved: free some space or move the data folder.",
            free_bytes / 1_000_000
        )
    });
    Some(Disk { free_bytes, total_bytes, warning })
}

#[cfg(not(unix))]
pub fn disk(_dir: &Path) -> Option<Disk> {
    None
}

/// How many days of sizes are kept, and shown.
const SIZE_DAYS_KEPT: i64 = 400;
const SIZE_DAYS_SHOWN: i64 = 90;

fn today() -> i64 {
    crate::service::now_ms().div_euclid(86_400_000)
}

/// Records today's database and media sizes (the Status page's growth over time).
pub async fn record_sizes(db: &Db, data_dir: &Path, media_bytes: u64) -> Result<()> {
    let sample = storage::health::SizeSample {
        day: today(),
        database_bytes: database_bytes(data_dir) as i64,
        media_bytes: i64::try_from(media_bytes).unwrap_or(i64::MAX),
    };
    let mut tx = db.begin_write().await?;
    storage::health::record_sizes(&mut tx, &sample, SIZE_DAYS_KEPT).await?;
    tx.commit().await?;
    Ok(())
}

/// The sizes of the last 90 days, oldest first.
pub async fn size_history(db: &Db) -> Result<Vec<storage::health::SizeSample>> {
    Ok(storage::health::size_history(&db.read, today(), SIZE_DAYS_SHOWN).await?)
}
