//! Read receipts, the latest per (room, type, user, thread).

use sqlx::{FromRow, SqliteExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct ReceiptRow {
    pub receipt_type: String,
    pub user_id: String,
    pub thread_id: String,
    pub event_id: String,
    pub ts: i64,
}

#[allow(clippy::too_many_arguments)]
pub async fn put(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    receipt_type: &str,
    user_id: &str,
    thread_id: &str,
    event_id: &str,
    ts: i64,
) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(concat!(
        "INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, ts, stream_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ",
        super::purge::next_position!("floor_receipts", "receipts", "stream_id"),
        ")
         ON CONFLICT (room_id, receipt_type, user_id, thread_id)
         DO UPDATE SET event_id = excluded.event_id, ts = excluded.ts, stream_id = excluded.stream_id
         RETURNING stream_id"
    ))
    .bind(room_id)
    .bind(receipt_type)
    .bind(user_id)
    .bind(thread_id)
    .bind(event_id)
    .bind(ts)
    .fetch_one(ex)
    .await?;
    Ok(id)
}

/// Receipts of a room that changed in (after, upto].
pub async fn changed(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    after: i64,
    upto: i64,
) -> sqlx::Result<Vec<ReceiptRow>> {
    sqlx::query_as(
        "SELECT receipt_type, user_id, thread_id, event_id, ts, stream_id FROM receipts
         WHERE room_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id",
    )
    .bind(room_id)
    .bind(after)
    .bind(upto)
    .fetch_all(ex)
    .await
}

/// The rooms where `user`'s own receipts changed in (after, upto].
pub async fn rooms_with_receipts_by(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    after: i64,
    upto: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT room_id FROM receipts WHERE user_id = ? AND stream_id > ? AND stream_id <= ?")
        .bind(user_id)
        .bind(after)
        .bind(upto)
        .fetch_all(ex)
        .await
}

pub async fn max_stream(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(IFNULL((SELECT MAX(stream_id) FROM receipts), 0), IFNULL((SELECT CAST(value AS INTEGER) FROM server_meta WHERE key = 'floor_receipts'), 0))",
    )
    .fetch_one(ex).await?;
    Ok(n.unwrap_or(0))
}

/// The latest receipt position of every room that has receipts.
pub async fn room_heads(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT room_id, MAX(stream_id) FROM receipts GROUP BY room_id").fetch_all(ex).await
}
