//! Event relations: which event relates to which, and how.

use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct RelationRow {
    pub event_id: String,
    pub relates_to_id: String,
    pub rel_type: String,
    pub sender: String,
    pub event_type: String,
    pub stream_ordering: i64,
}

/// Every relation pointing at one of `parents`, oldest first (for bundling).
pub async fn children_of(ex: impl SqliteExecutor<'_>, parents: &[String]) -> sqlx::Result<Vec<RelationRow>> {
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT r.event_id, r.relates_to_id, r.rel_type, r.sender, r.event_type, r.stream_ordering
         FROM event_relations r JOIN events e ON e.event_id = r.event_id
         WHERE e.rejected = 0 AND e.soft_failed = 0 AND e.redacted_by IS NULL AND r.relates_to_id IN (",
    );
    let mut sep = q.separated(", ");
    for p in parents {
        sep.push_bind(p);
    }
    sep.push_unseparated(") ORDER BY r.stream_ordering");
    q.build_query_as().fetch_all(ex).await
}

/// Children of one event for /relations, in (after, before) stream order, filtered by type.
#[allow(clippy::too_many_arguments)]
pub async fn page(
    ex: impl SqliteExecutor<'_>,
    parent: &str,
    rel_type: Option<&str>,
    event_type: Option<&str>,
    after: i64,
    before: i64,
    forward: bool,
    limit: i64,
) -> sqlx::Result<Vec<RelationRow>> {
    let order = if forward { "ASC" } else { "DESC" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.event_id, r.relates_to_id, r.rel_type, r.sender, r.event_type, r.stream_ordering
         FROM event_relations r JOIN events e ON e.event_id = r.event_id
         WHERE e.rejected = 0 AND e.soft_failed = 0 AND r.relates_to_id = ?1 AND (?2 IS NULL OR r.rel_type = ?2) AND (?3 IS NULL OR r.event_type = ?3)
           AND r.stream_ordering > ?4 AND r.stream_ordering < ?5
         ORDER BY r.stream_ordering {order} LIMIT {limit}"
    )))
    .bind(parent)
    .bind(rel_type)
    .bind(event_type)
    .bind(after)
    .bind(before)
    .fetch_all(ex)
    .await
}

/// Thread roots of a room with the position of their latest reply, newest activity first,
/// optionally only threads `participant` started or replied to.
pub async fn threads(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    participant: Option<&str>,
    before: i64,
    limit: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT r.relates_to_id, MAX(r.stream_ordering) AS latest
         FROM event_relations r
         WHERE r.room_id = ?1 AND r.rel_type = 'm.thread'
         GROUP BY r.relates_to_id
         HAVING latest < ?3 AND (?2 IS NULL
             OR SUM(r.sender = ?2) > 0
             OR EXISTS (SELECT 1 FROM events e WHERE e.event_id = r.relates_to_id AND e.sender = ?2))
         ORDER BY latest DESC LIMIT {limit}"
    )))
    .bind(room_id)
    .bind(participant)
    .bind(before)
    .fetch_all(ex)
    .await
}

/// The position of every room's latest relation (kept in the room's row).
pub async fn room_heads(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT room_id, relation_head FROM rooms WHERE relation_head IS NOT NULL").fetch_all(ex).await
}
