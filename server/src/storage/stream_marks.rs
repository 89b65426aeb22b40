//! Where the event stream stood at times past, by this server's clock (hourly), so that the
//! age of events can be told from their position without an index on time.

use sqlx::SqliteExecutor;

/// Notes that the stream stood at `position` at `ts` (ms), unless the newest mark already says
/// so; marks older than the newest one at or before `keep_from` go (it stays: it bounds ages
/// up to there).
pub async fn record(ex: &mut sqlx::SqliteConnection, ts: i64, position: i64, keep_from: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO stream_marks (ts, position) SELECT ?1, ?2
         WHERE ?2 > COALESCE((SELECT position FROM stream_marks ORDER BY ts DESC LIMIT 1), -1)
         ON CONFLICT (ts) DO UPDATE SET position = MAX(position, excluded.position)",
    )
    .bind(ts)
    .bind(position)
    .execute(&mut *ex)
    .await?;
    sqlx::query("DELETE FROM stream_marks WHERE ts < (SELECT MAX(ts) FROM stream_marks WHERE ts <= ?)")
        .bind(keep_from)
        .execute(&mut *ex)
        .await?;
    Ok(())
}

/// The position the stream stood at at `ts` at the latest (the newest mark at or before it):
/// every event at or before it had arrived by then. None when no mark is that old.
pub async fn at_or_before(ex: impl SqliteExecutor<'_>, ts: i64) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT position FROM stream_marks WHERE ts <= ? ORDER BY ts DESC LIMIT 1")
        .bind(ts)
        .fetch_optional(ex)
        .await
}

#[cfg(test)]
mod tests {
    const HOUR: i64 = 3_600_000;

    #[tokio::test]
    async fn marks_tell_where_the_stream_stood_and_old_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::Db::open(&dir.path().join("h.db")).await.unwrap();
        let mut conn = db.write.acquire().await.unwrap();
        let keep_from = 0;
        super::record(&mut conn, 10 * HOUR, 100, keep_from).await.unwrap();
        // The stream did not move: no new mark, so an age is still told from the first one.
        super::record(&mut conn, 11 * HOUR, 100, keep_from).await.unwrap();
        super::record(&mut conn, 12 * HOUR, 250, keep_from).await.unwrap();
        assert_eq!(super::at_or_before(&mut *conn, 9 * HOUR).await.unwrap(), None, "before any mark");
        assert_eq!(super::at_or_before(&mut *conn, 11 * HOUR).await.unwrap(), Some(100));
        assert_eq!(super::at_or_before(&mut *conn, 13 * HOUR).await.unwrap(), Some(250));
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stream_marks").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(n, 2);
        // A month on: the newest mark at or before the oldest age asked about stays, older go.
        super::record(&mut conn, 20 * HOUR, 400, 12 * HOUR + 1).await.unwrap();
        assert_eq!(super::at_or_before(&mut *conn, 11 * HOUR).await.unwrap(), None, "gone");
        assert_eq!(super::at_or_before(&mut *conn, 13 * HOUR).await.unwrap(), Some(250), "kept");
        assert_eq!(super::at_or_before(&mut *conn, 20 * HOUR).await.unwrap(), Some(400));
    }
}
