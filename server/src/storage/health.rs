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
