//! To-device messages waiting for their device, and the transaction IDs of their senders.

use sqlx::SqliteExecutor;

/// A message for one device.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ToDeviceRow {
    pub stream_id: i64,
    pub sender: String,
    pub event_type: String,
    pub content: String,
}

/// Records a sending device's transaction ID; false when it was seen before.
pub async fn record_txn(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    txn_id: &str,
) -> sqlx::Result<bool> {
    let new: Option<(i64,)> = sqlx::query_as(
        "INSERT OR IGNORE INTO to_device_txns (user_id, device_id, txn_id) VALUES (?, ?, ?) RETURNING 1",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(txn_id)
    .fetch_optional(ex)
    .await?;
    Ok(new.is_some())
}

/// Queues messages (recipient user, device or `*` for all of the user's devices, content JSON)
/// from `sender` in one statement; answers the highest position written (0 for none: no such
/// devices).
pub async fn queue(
    ex: impl SqliteExecutor<'_>,
    sender: &str,
    event_type: &str,
    messages: &[(String, String, String)],
) -> sqlx::Result<i64> {
    // CROSS JOIN keeps the messages the outer loop: with statistics of a small table, SQLite
    // chose to scan the table and the list per row instead.
    let ids: Vec<(i64,)> = sqlx::query_as(
        "INSERT INTO to_device_messages (user_id, device_id, sender, event_type, content)
         SELECT d.user_id, d.device_id, ?, ?, json_extract(m.value, '$[2]')
         FROM json_each(?) m CROSS JOIN devices d
           ON d.user_id = json_extract(m.value, '$[0]')
          AND (json_extract(m.value, '$[1]') = '*' OR d.device_id = json_extract(m.value, '$[1]'))
         ORDER BY m.key, d.device_id
         RETURNING stream_id",
    )
    .bind(sender)
    .bind(event_type)
    .bind(serde_json::json!(messages).to_string())
    .fetch_all(ex)
    .await?;
    Ok(ids.into_iter().map(|r| r.0).max().unwrap_or(0))
}

/// Deletes the device's messages up to `acked`: it synced with a token past them.
pub async fn delete_acked(ex: impl SqliteExecutor<'_>, user_id: &str, device_id: &str, acked: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM to_device_messages WHERE user_id = ? AND device_id = ? AND stream_id <= ?")
        .bind(user_id)
        .bind(device_id)
        .bind(acked)
        .execute(ex)
        .await?;
    Ok(())
}

/// The device's messages in (after, upto], oldest first, at most `limit`.
pub async fn pending(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    after: i64,
    upto: i64,
    limit: i64,
) -> sqlx::Result<Vec<ToDeviceRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT stream_id, sender, event_type, content FROM to_device_messages
         WHERE user_id = ? AND device_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id LIMIT {limit}"
    )))
    .bind(user_id)
    .bind(device_id)
    .bind(after)
    .bind(upto)
    .fetch_all(ex)
    .await
}

/// The latest position handed out (0 for none), also when those messages are deleted.
pub async fn head(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = 'to_device_messages'").fetch_optional(ex).await?;
    Ok(row.map(|r| r.0).unwrap_or(0))
}
