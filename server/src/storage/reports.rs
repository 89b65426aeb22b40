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

/// A report about an event, as Synapse's admin API lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct EventReport {
    pub id: i64,
    pub ts: i64,
    pub room_id: String,
    pub event_id: String,
    pub reporter: String,
    pub reason: Option<String>,
    /// The reported event's sender (None when the event is not stored).
    pub sender: Option<String>,
}

/// Which event reports `event_reports` answers.
#[derive(Debug, Default)]
pub struct ReportFilter {
    /// Part of the reporter's ID.
    pub user_id: Option<String>,
    /// Part of the room's ID.
    pub room_id: Option<String>,
    /// The reported event's sender.
    pub event_sender: Option<String>,
    pub newest_first: bool,
    pub from: i64,
    pub limit: i64,
}

fn push_report_filter(q: &mut sqlx::QueryBuilder<sqlx::Sqlite>, f: &ReportFilter) {
    q.push(" FROM reports r LEFT JOIN events e ON e.event_id = r.event_id WHERE r.event_id IS NOT NULL AND r.room_id IS NOT NULL");
    if let Some(u) = &f.user_id {
        q.push(" AND instr(r.reporter, ").push_bind(u.clone()).push(") > 0");
    }
    if let Some(r) = &f.room_id {
        q.push(" AND instr(r.room_id, ").push_bind(r.clone()).push(") > 0");
    }
    if let Some(s) = &f.event_sender {
        q.push(" AND e.sender = ").push_bind(s.clone());
    }
}

/// One page of event reports and how many match in all.
pub async fn event_reports(ex: &sqlx::SqlitePool, f: &ReportFilter) -> sqlx::Result<(Vec<EventReport>, i64)> {
    let mut q = sqlx::QueryBuilder::new("SELECT r.id, r.ts, r.room_id, r.event_id, r.reporter, r.reason, e.sender");
    push_report_filter(&mut q, f);
    let dir = if f.newest_first { " DESC" } else { " ASC" };
    q.push(" ORDER BY r.ts").push(dir).push(", r.id").push(dir);
    q.push(" LIMIT ").push_bind(f.limit).push(" OFFSET ").push_bind(f.from);
    let rows = q.build_query_as::<EventReport>().fetch_all(ex).await?;
    let mut count = sqlx::QueryBuilder::new("SELECT COUNT(*)");
    push_report_filter(&mut count, f);
    let (total,): (i64,) = count.build_query_as().fetch_one(ex).await?;
    Ok((rows, total))
}

pub async fn event_report(ex: impl SqliteExecutor<'_>, id: i64) -> sqlx::Result<Option<EventReport>> {
    sqlx::query_as(
        "SELECT r.id, r.ts, r.room_id, r.event_id, r.reporter, r.reason, e.sender
         FROM reports r LEFT JOIN events e ON e.event_id = r.event_id
         WHERE r.id = ? AND r.event_id IS NOT NULL AND r.room_id IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Deletes a report; false when there was none.
pub async fn delete(ex: impl SqliteExecutor<'_>, id: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM reports WHERE id = ?").bind(id).execute(ex).await?.rows_affected() == 1)
}
