//! SQLite's own checks of the database file, for the dashboard's "Check the database".

use sqlx::SqliteExecutor;

/// `PRAGMA integrity_check`: `["ok"]`, or up to 100 problems in SQLite's words.
pub async fn integrity(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check(100)").fetch_all(ex).await?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}

/// A row whose foreign key names a row that is not there.
pub struct Violation {
    pub table: String,
    pub rowid: Option<i64>,
    pub parent: String,
}

/// `PRAGMA foreign_key_check`: every row pointing to a missing parent.
pub async fn foreign_keys(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<Violation>> {
    let rows: Vec<(String, Option<i64>, String, i64)> =
        sqlx::query_as("PRAGMA foreign_key_check").fetch_all(ex).await?;
    Ok(rows.into_iter().map(|(table, rowid, parent, _)| Violation { table, rowid, parent }).collect())
}

/// One day's sizes.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct SizeSample {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub database_bytes: i64,
    pub media_bytes: i64,
}

/// Records today's sizes (the day's row keeps the latest) and drops rows older than `keep_days`.
pub async fn record_sizes(conn: &mut sqlx::SqliteConnection, s: &SizeSample, keep_days: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO size_history (day, database_bytes, media_bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT(day) DO UPDATE SET database_bytes = ?2, media_bytes = ?3",
    )
    .bind(s.day)
    .bind(s.database_bytes)
    .bind(s.media_bytes)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM size_history WHERE day < ?").bind(s.day - keep_days).execute(&mut *conn).await?;
    Ok(())
}

/// The sizes of the last `days` days, oldest first.
pub async fn size_history(ex: impl SqliteExecutor<'_>, today: i64, days: i64) -> sqlx::Result<Vec<SizeSample>> {
    sqlx::query_as("SELECT day, database_bytes, media_bytes FROM size_history WHERE day > ? ORDER BY day")
        .bind(today - days)
        .fetch_all(ex)
        .await
}
