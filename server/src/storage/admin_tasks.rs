//! Background runs the admin started (a room deletion), with their progress: see the
//! `admin_tasks` migration.

use sqlx::SqliteExecutor;

/// How long a finished run is kept (Synapse: a week).
const KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskRow {
    pub id: String,
    pub action: String,
    pub room_id: String,
    pub status: String,
    pub params: String,
    pub result: Option<String>,
    pub error: Option<String>,
}

const COLUMNS: &str = "id, action, room_id, status, params, result, error";

/// Adds a scheduled run, dropping finished runs older than a week.
pub async fn insert(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    action: &str,
    room_id: &str,
    params: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM admin_tasks WHERE status IN ('complete', 'failed') AND updated_ts < ?")
        .bind(now - KEEP_MS)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO admin_tasks (id, action, room_id, status, params, created_ts, updated_ts)
         VALUES (?, ?, ?, 'scheduled', ?, ?, ?)",
    )
    .bind(id)
    .bind(action)
    .bind(room_id)
    .bind(params)
    .bind(now)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a run's status, its result so far (None keeps the last one) and its error.
pub async fn update(
    ex: impl SqliteExecutor<'_>,
    id: &str,
    status: &str,
    result: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE admin_tasks SET status = ?, result = COALESCE(?, result), error = ?, updated_ts = ? WHERE id = ?",
    )
    .bind(status)
    .bind(result)
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn get(ex: impl SqliteExecutor<'_>, id: &str) -> sqlx::Result<Option<TaskRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM admin_tasks WHERE id = ?")))
        .bind(id)
        .fetch_optional(ex)
        .await
}

/// A room's runs of `action`, oldest first.
pub async fn of_room(ex: impl SqliteExecutor<'_>, room_id: &str, action: &str) -> sqlx::Result<Vec<TaskRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM admin_tasks WHERE room_id = ? AND action = ? ORDER BY created_ts, id"
    )))
    .bind(room_id)
    .bind(action)
    .fetch_all(ex)
    .await
}

/// Runs a stop interrupted (scheduled or active), oldest first.
pub async fn unfinished(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<TaskRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM admin_tasks WHERE status IN ('scheduled', 'active') ORDER BY created_ts, id"
    )))
    .fetch_all(ex)
    .await
}
