//! State groups: snapshots of room state that share structure. A group stores only the entries
//! that differ from its parent; every `MAX_CHAIN`-th group is a full copy, so reading a state
//! walks at most that many groups and writing a state event costs one row, not a copy of the
//! room's state.
//!
//! State resolution can also remove an entry that the parent has: the delta then carries a
//! tombstone, an entry whose event ID is empty (`GONE`).

use sqlx::SqliteExecutor;

/// (type, state key) -> event ID. Hashed with foldhash: a sync looks up each of its rooms'
/// state events here, and std's SipHash was 7% of a small initial sync's instructions in all.
pub type StateMap = foldhash::HashMap<(String, String), String>;

/// After this many deltas, the next group is a full snapshot.
pub const MAX_CHAIN: i64 = 64;

/// The event ID of a delta entry that removes the key from its parent's state.
pub const GONE: &str = "";

/// The full state of `group`.
pub async fn load(ex: impl SqliteExecutor<'_>, group: i64) -> sqlx::Result<StateMap> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "WITH RECURSIVE chain(id, prev, n) AS (
             SELECT id, prev_group, 0 FROM state_groups WHERE id = ?
             UNION ALL
             SELECT g.id, g.prev_group, chain.n + 1 FROM state_groups g JOIN chain ON g.id = chain.prev
         )
         SELECT e.event_type, e.state_key, e.event_id, chain.n
         FROM chain JOIN state_group_entries e ON e.state_group = chain.id
         ORDER BY chain.n DESC",
    )
    .bind(group)
    .fetch_all(ex)
    .await?;
    // Oldest first, so newer groups override (and tombstones remove).
    let mut out = StateMap::with_capacity_and_hasher(rows.len(), Default::default());
    for (t, k, e, _) in rows {
        if e == GONE {
            out.remove(&(t, k));
        } else {
            out.insert((t, k), e);
        }
    }
    Ok(out)
}

/// How many deltas lie between `group` and its full snapshot.
pub async fn chain_len(ex: impl SqliteExecutor<'_>, group: i64) -> sqlx::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT chain_len FROM state_groups WHERE id = ?").bind(group).fetch_one(ex).await?;
    Ok(n)
}

/// The highest state group ID in use (0 when there is none).
pub async fn max_id(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM state_groups").fetch_one(ex).await?;
    Ok(n.unwrap_or(0))
}

/// The event IDs at the given (type, state_key) pairs in `group`, without loading the whole
/// state (a big room's state is large, its visibility rules need two entries).
pub async fn lookup(ex: impl SqliteExecutor<'_>, group: i64, keys: &[(&str, &str)]) -> sqlx::Result<StateMap> {
    let mut out = StateMap::default();
    if keys.is_empty() {
        return Ok(out);
    }
    let mut sql = String::from(
        "WITH RECURSIVE chain(id, prev, n) AS (
             SELECT id, prev_group, 0 FROM state_groups WHERE id = ?
             UNION ALL
             SELECT g.id, g.prev_group, chain.n + 1 FROM state_groups g JOIN chain ON g.id = chain.prev
         )
         SELECT e.event_type, e.state_key, e.event_id FROM chain JOIN state_group_entries e ON e.state_group = chain.id
         WHERE ",
    );
    sql.push_str(&vec!["(e.event_type = ? AND e.state_key = ?)"; keys.len()].join(" OR "));
    sql.push_str(" ORDER BY chain.n DESC");
    let mut q = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(sql)).bind(group);
    for (t, k) in keys {
        q = q.bind(*t).bind(*k);
    }
    for (t, k, e) in q.fetch_all(ex).await? {
        if e == GONE {
            out.remove(&(t, k));
        } else {
            out.insert((t, k), e);
        }
    }
    Ok(out)
}
