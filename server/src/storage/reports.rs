//! Content reports for the server admin.

use sqlx::SqliteExecutor;

pub async fn insert(
    ex: impl SqliteExecutor<'_>,
    reporter: &str,
    room_id: Option<&str>,
    event_id: Option<&str>,
    target_user: Option<&str>,
    reason: Option<&str>,
    ts: i64,
) -> sqlx::Result<i64> {
    let r = sqlx::query(
        "INSERT INTO reports (reporter, room_id, event_id, target_user, reason, ts) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(reporter)
    .bind(room_id)
    .bind(event_id)
    .bind(target_user)
    .bind(reason)
    .bind(ts)
    .execute(ex)
    .await?;
    Ok(r.last_insert_rowid())
}
