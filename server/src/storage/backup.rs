//! The database's part of a backup: one consistent copy taken while the server may be writing.

use std::{path::Path, str::FromStr, time::Duration};

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
    sqlx::query("VACUUM INTO ?")
        .bind(dest.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying the database into {}", dest.display()))?;
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
