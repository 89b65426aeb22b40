//! Full-text search over events with SQLite FTS5.

use sqlx::{QueryBuilder, Sqlite, SqliteExecutor};

pub async fn forget(ex: impl SqliteExecutor<'_>, event_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM events_fts WHERE event_id = ?").bind(event_id).execute(ex).await?;
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

/// (event_id, room_id, rank) of matches in `rooms`, best first or newest first.
pub async fn search(
    ex: impl SqliteExecutor<'_>,
    query: &str,
    rooms: &[String],
    keys: &[&str],
    by_rank: bool,
    offset: i64,
    limit: i64,
) -> sqlx::Result<Vec<(String, String, f64)>> {
    if rooms.is_empty() || keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> =
        QueryBuilder::new("SELECT event_id, room_id, bm25(events_fts) AS rank FROM events_fts WHERE events_fts MATCH ");
    q.push_bind(query);
    q.push(" AND room_id IN (");
    let mut sep = q.separated(", ");
    for r in rooms {
        sep.push_bind(r);
    }
    q.push(") AND search_key IN (");
    let mut sep = q.separated(", ");
    for k in keys {
        sep.push_bind(*k);
    }
    q.push(if by_rank {
        ") ORDER BY rank, CAST(stream_ordering AS INTEGER) DESC"
    } else {
        ") ORDER BY CAST(stream_ordering AS INTEGER) DESC"
    });
    q.push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
    q.build_query_as().fetch_all(ex).await
}
