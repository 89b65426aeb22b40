//! Full-text search over events with SQLite FTS5.

use sqlx::{QueryBuilder, Sqlite, SqliteExecutor};

/// Removes the event's entry: one lookup by its position, the index's key.
pub async fn forget(ex: impl SqliteExecutor<'_>, event_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM event_search WHERE rowid = (SELECT stream_ordering FROM events WHERE event_id = ?)")
        .bind(event_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Turns user input into an FTS5 query: every word must appear (quoted, so FTS syntax in the
/// input is just text).
pub fn fts_query(term: &str) -> Option<String> {
    // Control characters separate words too: FTS5 reads a NUL inside a quoted string as its
    // end ("unterminated string"), which made a search for "a\0b" a server error.
    let words: Vec<String> = term
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// (event_id, room_id, rank) of matches in `rooms` among events of `types`, best first or
/// newest first.
pub async fn search(
    ex: impl SqliteExecutor<'_>,
    query: &str,
    rooms: &[String],
    types: &[&str],
    by_rank: bool,
    offset: i64,
    limit: i64,
) -> sqlx::Result<Vec<(String, String, f64)>> {
    if rooms.is_empty() || types.is_empty() {
        return Ok(Vec::new());
    }
    // CROSS JOIN: the matches stay the outer loop, each event found by its key (the other way
    // round would read every event of the rooms).
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT e.event_id, e.room_id, bm25(event_search) AS rank FROM event_search
         CROSS JOIN events e ON e.stream_ordering = event_search.rowid
         WHERE event_search MATCH ",
    );
    q.push_bind(query);
    q.push(" AND e.room_id IN (");
    let mut sep = q.separated(", ");
    for r in rooms {
        sep.push_bind(r);
    }
    q.push(") AND e.event_type IN (");
    let mut sep = q.separated(", ");
    for t in types {
        sep.push_bind(*t);
    }
    q.push(if by_rank { ") ORDER BY rank, e.stream_ordering DESC" } else { ") ORDER BY e.stream_ordering DESC" });
    q.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
    q.build_query_as().fetch_all(ex).await
}
