//! Scheduled events (`delayed_events`, MSC4140): added, listed, restarted, cancelled, and taken
//! for sending once due.

use sqlx::{FromRow, SqliteConnection, SqliteExecutor};

/// One scheduled event.
#[derive(Debug, Clone, FromRow)]
pub struct DelayedEvent {
    pub delay_id: String,
    pub user_id: String,
    pub room_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub content: String,
    pub delay_ms: i64,
    pub send_ts: i64,
}

/// The columns of `DelayedEvent`, for `concat!` (queries are static strings).
macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT delay_id, user_id, room_id, event_type, state_key, content, delay_ms, send_ts FROM delayed_events ",
            $rest
        )
    };
}

/// What a new scheduled event is made of (the ID and times are the caller's).
pub struct NewDelayed<'a> {
    pub delay_id: &'a str,
    pub user_id: &'a str,
    pub room_id: &'a str,
    pub event_type: &'a str,
    pub state_key: Option<&'a str>,
    pub content: &'a str,
    pub delay_ms: i64,
    pub send_ts: i64,
    /// (device, transaction ID) of the scheduling request, when it had one.
    pub txn: Option<(&'a str, &'a str)>,
}

pub async fn insert(ex: impl SqliteExecutor<'_>, e: &NewDelayed<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO delayed_events (delay_id, user_id, room_id, event_type, state_key, content, delay_ms, send_ts,
             txn_device_id, txn_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.delay_id)
    .bind(e.user_id)
    .bind(e.room_id)
    .bind(e.event_type)
    .bind(e.state_key)
    .bind(e.content)
    .bind(e.delay_ms)
    .bind(e.send_ts)
    .bind(e.txn.map(|t| t.0))
    .bind(e.txn.map(|t| t.1))
    .execute(ex)
    .await?;
    Ok(())
}

/// The delay ID a transaction already scheduled, while it is still pending.
pub async fn by_txn(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    txn_id: &str,
) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT delay_id FROM delayed_events WHERE user_id = ? AND txn_device_id = ? AND txn_id = ?")
            .bind(user_id)
            .bind(device_id)
            .bind(txn_id)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.0))
}

/// How many events the user has scheduled (pending or being sent).
pub async fn count_of(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM delayed_events WHERE user_id = ?").bind(user_id).fetch_one(ex).await?;
    Ok(n)
}

/// The send time of the user's `n`th earliest scheduled event (1-based).
pub async fn nth_send_ts(ex: impl SqliteExecutor<'_>, user_id: &str, n: i64) -> sqlx::Result<Option<i64>> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT send_ts FROM delayed_events WHERE user_id = ? ORDER BY send_ts LIMIT 1 OFFSET ?")
            .bind(user_id)
            .bind(n.max(1) - 1)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.0))
}

/// The user's pending scheduled events (not yet being sent), soonest first.
pub async fn pending_of(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<DelayedEvent>> {
    sqlx::query_as(select!("WHERE user_id = ? AND is_processed = 0 ORDER BY send_ts, delay_id"))
        .bind(user_id)
        .fetch_all(ex)
        .await
}

/// One of the user's pending scheduled events.
pub async fn pending_one(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    delay_id: &str,
) -> sqlx::Result<Option<DelayedEvent>> {
    sqlx::query_as(select!("WHERE delay_id = ? AND user_id = ? AND is_processed = 0"))
        .bind(delay_id)
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// Moves a pending event's send time to `now` plus its delay; false when there is none.
pub async fn restart(ex: impl SqliteExecutor<'_>, delay_id: &str, now: i64) -> sqlx::Result<bool> {
    let r = sqlx::query("UPDATE delayed_events SET send_ts = ? + delay_ms WHERE delay_id = ? AND is_processed = 0")
        .bind(now)
        .bind(delay_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Removes a pending event; false when there is none.
pub async fn cancel(ex: impl SqliteExecutor<'_>, delay_id: &str) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM delayed_events WHERE delay_id = ? AND is_processed = 0")
        .bind(delay_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Removes every pending event of the user (their account is going away).
pub async fn cancel_all_of(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<u64> {
    let r = sqlx::query("DELETE FROM delayed_events WHERE user_id = ? AND is_processed = 0")
        .bind(user_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}

/// Whether someone other than `sender` has a pending event for this piece of state.
pub async fn has_pending_state_of_others(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    event_type: &str,
    state_key: &str,
    sender: &str,
) -> sqlx::Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM delayed_events WHERE room_id = ? AND event_type = ? AND state_key = ? AND user_id <> ?
             AND is_processed = 0 LIMIT 1",
    )
    .bind(room_id)
    .bind(event_type)
    .bind(state_key)
    .bind(sender)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// Removes the pending events of everyone but `sender` for this piece of state.
pub async fn cancel_state_of_others(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    event_type: &str,
    state_key: &str,
    sender: &str,
) -> sqlx::Result<u64> {
    let r = sqlx::query(
        "DELETE FROM delayed_events WHERE room_id = ? AND event_type = ? AND state_key = ? AND user_id <> ?
             AND is_processed = 0",
    )
    .bind(room_id)
    .bind(event_type)
    .bind(state_key)
    .bind(sender)
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

/// Marks every pending event due by `now` as being sent and returns them, soonest first; with
/// `again`, also those a previous run had begun sending (and may not have finished).
pub async fn take_due(ex: &mut SqliteConnection, now: i64, again: bool) -> sqlx::Result<Vec<DelayedEvent>> {
    let rows: Vec<DelayedEvent> =
        sqlx::query_as(select!("WHERE send_ts <= ? AND (? OR is_processed = 0) ORDER BY send_ts, delay_id"))
            .bind(now)
            .bind(again)
            .fetch_all(&mut *ex)
            .await?;
    sqlx::query("UPDATE delayed_events SET is_processed = 1 WHERE send_ts <= ? AND (? OR is_processed = 0)")
        .bind(now)
        .bind(again)
        .execute(&mut *ex)
        .await?;
    Ok(rows)
}

/// Marks one pending event as being sent, whatever its send time, and returns it.
pub async fn take(ex: &mut SqliteConnection, delay_id: &str) -> sqlx::Result<Option<DelayedEvent>> {
    let row: Option<DelayedEvent> = sqlx::query_as(select!("WHERE delay_id = ? AND is_processed = 0"))
        .bind(delay_id)
        .fetch_optional(&mut *ex)
        .await?;
    if row.is_some() {
        sqlx::query("UPDATE delayed_events SET is_processed = 1 WHERE delay_id = ?")
            .bind(delay_id)
            .execute(&mut *ex)
            .await?;
    }
    Ok(row)
}

/// Forgets an event that was sent (or could not be).
pub async fn delete(ex: impl SqliteExecutor<'_>, delay_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM delayed_events WHERE delay_id = ?").bind(delay_id).execute(ex).await?;
    Ok(())
}

/// When the next pending event is due.
pub async fn next_send_ts(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Option<i64>> {
    let (ts,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(send_ts) FROM delayed_events WHERE is_processed = 0").fetch_one(ex).await?;
    Ok(ts)
}
