//! Per-user rate limit overrides (`ratelimit_override`), as Synapse's admin API sets them.

use sqlx::SqliteExecutor;

/// Every override: user, messages per second, burst count.
pub async fn all(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<(String, u32, u32)>> {
    sqlx::query_as("SELECT user_id, messages_per_second, burst_count FROM ratelimit_override").fetch_all(ex).await
}

pub async fn get(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Option<(u32, u32)>> {
    sqlx::query_as("SELECT messages_per_second, burst_count FROM ratelimit_override WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

pub async fn set(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    messages_per_second: u32,
    burst_count: u32,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO ratelimit_override (user_id, messages_per_second, burst_count) VALUES (?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET messages_per_second = excluded.messages_per_second,
             burst_count = excluded.burst_count",
    )
    .bind(user_id)
    .bind(messages_per_second)
    .bind(burst_count)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn delete(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM ratelimit_override WHERE user_id = ?").bind(user_id).execute(ex).await?;
    Ok(())
}
