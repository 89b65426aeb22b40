//! Pushers, stored as the JSON the client set.

use sqlx::SqliteExecutor;

pub async fn list(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT pusher FROM pushers WHERE user_id = ? ORDER BY created_ts")
        .bind(user_id)
        .fetch_all(ex)
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn upsert(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    app_id: &str,
    pushkey: &str,
    pusher: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO pushers (user_id, app_id, pushkey, pusher, created_ts) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (app_id, pushkey, user_id) DO UPDATE SET pusher = excluded.pusher",
    )
    .bind(user_id)
    .bind(app_id)
    .bind(pushkey)
    .bind(pusher)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Removes the pusher with these IDs for other users (spec: `append: false`).
pub async fn delete_for_others(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    app_id: &str,
    pushkey: &str,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?")
        .bind(app_id)
        .bind(pushkey)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete(ex: impl SqliteExecutor<'_>, user_id: &str, app_id: &str, pushkey: &str) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id = ?")
        .bind(app_id)
        .bind(pushkey)
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// A push gateway rejected the pushkey: remove it for everyone who has it.
pub async fn delete_pushkey(ex: impl SqliteExecutor<'_>, app_id: &str, pushkey: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM pushers WHERE app_id = ? AND pushkey = ?").bind(app_id).bind(pushkey).execute(ex).await?;
    Ok(())
}
