//! Client filters, numbered per user.

use sqlx::SqliteExecutor;

/// Stores a filter and returns its ID (the next number for this user).
pub async fn insert(ex: impl SqliteExecutor<'_>, user_id: &str, filter: &str) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO filters (user_id, filter_id, filter)
         VALUES (?1, (SELECT COALESCE(MAX(filter_id), -1) + 1 FROM filters WHERE user_id = ?1), ?2)
         RETURNING filter_id",
    )
    .bind(user_id)
    .bind(filter)
    .fetch_one(ex)
    .await?;
    Ok(id)
}

pub async fn get(ex: impl SqliteExecutor<'_>, user_id: &str, filter_id: i64) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT filter FROM filters WHERE user_id = ? AND filter_id = ?")
        .bind(user_id)
        .bind(filter_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|r| r.0))
}
