//! Push actions: which events notify which users.

use sqlx::{FromRow, SqliteExecutor};

/// (thread_id, notifications, highlights) of the user in the room since their read position
/// (see `unread_many`).
pub async fn unread(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    room_id: &str,
) -> sqlx::Result<Vec<(String, i64, i64)>> {
    Ok(unread_many(ex, user_id, &[room_id]).await?.into_iter().map(|(_, t, n, h)| (t, n, h)).collect())
}

/// (room_id, thread_id, notifications, highlights) of the user in each room since their read
/// position there: their latest read receipt or their own latest event, whichever is later
/// (sending a message implies reading what came before). One query for all the rooms, as an
/// initial /sync asks this for every room.
pub async fn unread_many(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    rooms: &[&str],
) -> sqlx::Result<Vec<(String, String, i64, i64)>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "WITH pos(room_id, p) AS (
             SELECT r.value, MAX(
                 COALESCE((SELECT MAX(e.stream_ordering) FROM receipts rc JOIN events e ON e.event_id = rc.event_id
                           WHERE rc.room_id = r.value AND rc.user_id = ?1 AND rc.receipt_type IN ('m.read', 'm.read.private')
                             AND rc.thread_id IN ('', 'main')), 0),
                 COALESCE((SELECT MAX(stream_ordering) FROM events WHERE room_id = r.value AND sender = ?1), 0))
             FROM json_each(?2) r
         )
         SELECT a.room_id, a.thread_id, COUNT(*), SUM(a.highlight) FROM pos
         JOIN event_push_actions a ON a.user_id = ?1 AND a.room_id = pos.room_id AND a.stream_ordering > pos.p
         GROUP BY a.room_id, a.thread_id",
    )
    .bind(user_id)
    .bind(serde_json::json!(rooms).to_string())
    .fetch_all(ex)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct PushActionRow {
    pub event_id: String,
    pub room_id: String,
    pub stream_ordering: i64,
    pub actions: String,
    pub ts: i64,
}

/// The user's notifications before position `before`, newest first.
pub async fn list(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    before: i64,
    only_highlight: bool,
    limit: i64,
) -> sqlx::Result<Vec<PushActionRow>> {
    // The LIMIT is written into the SQL: a bound one makes SQLite re-prepare on every call.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT event_id, room_id, stream_ordering, actions, ts FROM event_push_actions
         WHERE user_id = ? AND stream_ordering < ? AND (? = 0 OR highlight = 1)
         ORDER BY stream_ordering DESC LIMIT {limit}"
    )))
    .bind(user_id)
    .bind(before)
    .bind(only_highlight)
    .fetch_all(ex)
    .await
}

/// Where the user has read up to in a room: their latest read receipt or their own latest
/// event, whichever is later (sending a message implies reading what came before).
pub async fn read_position(ex: impl SqliteExecutor<'_>, user_id: &str, room_id: &str) -> sqlx::Result<i64> {
    let (pos,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(p) FROM (
             SELECT MAX(e.stream_ordering) AS p FROM receipts r JOIN events e ON e.event_id = r.event_id
              WHERE r.room_id = ?2 AND r.user_id = ?1 AND r.receipt_type IN ('m.read', 'm.read.private') AND r.thread_id IN ('', 'main')
             UNION ALL
             SELECT MAX(stream_ordering) FROM events WHERE room_id = ?2 AND sender = ?1
         )",
    )
    .bind(user_id)
    .bind(room_id)
    .fetch_one(ex)
    .await?;
    Ok(pos.unwrap_or(0))
}
