//! Account data, global (`room_id` = "") and per room, on its own stream.

use sqlx::{FromRow, SqliteExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct AccountDataRow {
    pub room_id: String,
    pub data_type: String,
    pub content: String,
    pub stream_id: i64,
}

/// Stores the content and returns its new stream position.
pub async fn put(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    room_id: &str,
    data_type: &str,
    content: &str,
) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(concat!(
        "INSERT INTO account_data (user_id, room_id, data_type, content, stream_id)
         VALUES (?1, ?2, ?3, ?4, ",
        super::purge::next_position!("floor_account_data", "account_data", "stream_id"),
        ")
         ON CONFLICT (user_id, room_id, data_type) DO UPDATE SET content = excluded.content, stream_id = excluded.stream_id
         RETURNING stream_id"
    ))
    .bind(user_id)
    .bind(room_id)
    .bind(data_type)
    .bind(content)
    .fetch_one(ex)
    .await?;
    Ok(id)
}

pub async fn get(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    room_id: &str,
    data_type: &str,
) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND data_type = ?")
            .bind(user_id)
            .bind(room_id)
            .bind(data_type)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.0))
}

/// The global account data of type `data_type` of each of `users` that has one.
pub async fn global_many(
    ex: impl SqliteExecutor<'_>,
    users: &[String],
    data_type: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT user_id, content FROM account_data
         WHERE room_id = '' AND data_type = ?1 AND user_id IN (SELECT value FROM json_each(?2))",
    )
    .bind(data_type)
    .bind(serde_json::json!(users).to_string())
    .fetch_all(ex)
    .await
}

/// Everything of the user's that changed after `since`.
pub async fn changed_since(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    since: i64,
) -> sqlx::Result<Vec<AccountDataRow>> {
    sqlx::query_as("SELECT room_id, data_type, content, stream_id FROM account_data WHERE user_id = ? AND stream_id > ? ORDER BY stream_id")
        .bind(user_id)
        .bind(since)
        .fetch_all(ex)
        .await
}

pub async fn max_stream(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(IFNULL((SELECT MAX(stream_id) FROM account_data), 0), IFNULL((SELECT CAST(value AS INTEGER) FROM server_meta WHERE key = 'floor_account_data'), 0))",
    )
    .fetch_one(ex).await?;
    Ok(n.unwrap_or(0))
}
