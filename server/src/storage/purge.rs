//! Removing a room from the database: every event, state group, membership and per-room row,
//! in one transaction. What is kept, as in Synapse: a block on the room (it must outlive the
//! room, or a purged room could be joined again), reports about its events (they are for
//! moderation), media (shared by content and owned by uploaders), and users' key backups.
//!
//! The stream positions of events, receipts and account data are handed out as the highest
//! row's plus one. Deleting the room that holds the highest would hand out a position some
//! client's sync token is already past, and that client would never see the next message. So
//! before deleting, the purge records each stream's highest position as a floor in
//! `server_meta`, and new rows are numbered above it (see `next_position`).

use sqlx::SqliteConnection;

/// The floors' keys in `server_meta`, and the table and column of each stream.
const STREAMS: [(&str, &str, &str); 3] = [
    ("floor_events", "events", "stream_ordering"),
    ("floor_receipts", "receipts", "stream_id"),
    ("floor_account_data", "account_data", "stream_id"),
];

/// SQL for the next position of a stream: above its highest row and above its floor
/// (`next_position!(floor key, table, column)`, a literal for `concat!`).
macro_rules! next_position {
    ($key:literal, $table:literal, $column:literal) => {
        concat!(
            "(SELECT MAX(IFNULL((SELECT MAX(",
            $column,
            ") FROM ",
            $table,
            "), 0), IFNULL((SELECT CAST(value AS INTEGER) FROM server_meta WHERE key = '",
            $key,
            "'), 0)) + 1)"
        )
    };
}
pub(crate) use next_position;

/// The highest event position ever handed out, including those of purged rooms.
pub async fn events_floor(ex: impl sqlx::SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT CAST(value AS INTEGER) FROM server_meta WHERE key = 'floor_events'")
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.0).unwrap_or(0))
}

/// What a purge removed, for the log and the admin's answer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Purged {
    pub events: u64,
    pub state_groups: u64,
}

/// Deletes everything stored about the room, in one transaction. Returns the IDs of the
/// events removed (for the caches), and counts; a room with no rows removes nothing.
pub async fn room(
    conn: &mut SqliteConnection,
    room_id: &str,
    local_suffix: &str,
) -> sqlx::Result<(Vec<String>, Purged)> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // Local members' last leave (see the `purged_memberships` migration).
    sqlx::query(
        "INSERT OR REPLACE INTO purged_memberships (user_id, room_id, event_id, stream_ordering, pdu)
         SELECT m.user_id, m.room_id, m.event_id, m.stream_ordering, COALESCE(e.redacted_json, e.pdu)
         FROM memberships m JOIN events e ON e.event_id = m.event_id
         WHERE m.room_id = ?1 AND m.membership IN ('leave', 'ban') AND substr(m.user_id, -length(?2)) = ?2",
    )
    .bind(room_id)
    .bind(local_suffix)
    .execute(&mut *tx)
    .await?;
    for (key, table, column) in STREAMS {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO server_meta (key, value) SELECT ?1, CAST(IFNULL(MAX({column}), 0) AS TEXT) FROM {table}
             WHERE true
             ON CONFLICT (key) DO UPDATE SET value = CAST(MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)"
        )))
        .bind(key)
        .execute(&mut *tx)
        .await?;
    }
    let event_ids: Vec<(String,)> =
        sqlx::query_as("SELECT event_id FROM events WHERE room_id = ?").bind(room_id).fetch_all(&mut *tx).await?;
    let by_event = ["event_edges", "event_auth"];
    for table in by_event {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE event_id IN (SELECT event_id FROM events WHERE room_id = ?)"
        )))
        .bind(room_id)
        .execute(&mut *tx)
        .await?;
    }
    // The push actions' key starts with the user: one seek per local user, not a table scan.
    sqlx::query(
        "DELETE FROM push_actions WHERE user_nid IN (SELECT nid FROM user_nids)
           AND room_nid = (SELECT nid FROM room_nids WHERE room_id = ?)",
    )
    .bind(room_id)
    .execute(&mut *tx)
    .await?;
    for table in ["push_room_actions", "push_spans"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE room_nid = (SELECT nid FROM room_nids WHERE room_id = ?)"
        )))
        .bind(room_id)
        .execute(&mut *tx)
        .await?;
    }
    // The search index is keyed by the events' positions (it has no room column).
    sqlx::query("DELETE FROM event_search WHERE rowid IN (SELECT stream_ordering FROM events WHERE room_id = ?)")
        .bind(room_id)
        .execute(&mut *tx)
        .await?;
    let by_room = [
        "event_relations",
        "pending_redactions",
        "receipts",
        "forward_extremities",
        "current_state",
        "memberships",
        "room_aliases",
        "delayed_events",
        "forgotten_rooms",
        "room_nids",
    ];
    for table in by_room {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE room_id = ?")))
            .bind(room_id)
            .execute(&mut *tx)
            .await?;
    }
    // Room account data (tags, read markers, per-room settings); '' is global account data.
    sqlx::query("DELETE FROM account_data WHERE room_id = ? AND room_id != ''").bind(room_id).execute(&mut *tx).await?;
    // The room row points at its current state group, and events at theirs: unhook, then
    // delete events, then the groups (whose entries go first).
    sqlx::query("UPDATE rooms SET current_state_group = NULL WHERE room_id = ?")
        .bind(room_id)
        .execute(&mut *tx)
        .await?;
    let events =
        sqlx::query("DELETE FROM events WHERE room_id = ?").bind(room_id).execute(&mut *tx).await?.rows_affected();
    sqlx::query("DELETE FROM state_group_entries WHERE state_group IN (SELECT id FROM state_groups WHERE room_id = ?)")
        .bind(room_id)
        .execute(&mut *tx)
        .await?;
    // One statement: groups point at earlier groups of the same room, and foreign keys are
    // checked at the end of the statement.
    let state_groups = sqlx::query("DELETE FROM state_groups WHERE room_id = ?")
        .bind(room_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM rooms WHERE room_id = ?").bind(room_id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok((event_ids.into_iter().map(|r| r.0).collect(), Purged { events, state_groups }))
}

/// Local users with any membership in the room, and which (for the shutdown).
pub async fn local_memberships(
    ex: impl sqlx::SqliteExecutor<'_>,
    room_id: &str,
    local_suffix: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT user_id, membership FROM memberships WHERE room_id = ?1 AND substr(user_id, -length(?2)) = ?2
         ORDER BY user_id",
    )
    .bind(room_id)
    .bind(local_suffix)
    .fetch_all(ex)
    .await
}

/// A local member's leave from a purged room: (room, event ID, stream position, event JSON).
pub type PurgedLeave = (String, String, i64, String);

/// The user's leaves from purged rooms after stream position `since`.
pub async fn leaves_since(
    ex: impl sqlx::SqliteExecutor<'_>,
    user_id: &str,
    since: i64,
) -> sqlx::Result<Vec<PurgedLeave>> {
    sqlx::query_as(
        "SELECT room_id, event_id, stream_ordering, pdu FROM purged_memberships
         WHERE user_id = ? AND stream_ordering > ? ORDER BY stream_ordering",
    )
    .bind(user_id)
    .bind(since)
    .fetch_all(ex)
    .await
}

/// Whether any purged room's leave is kept.
pub async fn any_leaves(ex: impl sqlx::SqliteExecutor<'_>) -> sqlx::Result<bool> {
    let (n,): (i64,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM purged_memberships)").fetch_one(ex).await?;
    Ok(n != 0)
}

/// Rooms every local member forgot (or left, with `on_leave`; or whose account is deactivated),
/// none of them joined, invited or knocking, with no local member's membership or forget newer
/// than `before` (ms); only `room` when given. Rooms without any local membership are not
/// listed: one being joined through another server has no membership yet.
pub async fn forgotten_rooms(
    ex: impl sqlx::SqliteExecutor<'_>,
    local_suffix: &str,
    on_leave: bool,
    before: i64,
    room: Option<&str>,
) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(concat!(
        "SELECT r.room_id FROM rooms r
         WHERE (?4 IS NULL OR r.room_id = ?4)
           AND EXISTS (SELECT 1 FROM memberships m
                       WHERE m.room_id = r.room_id AND substr(m.user_id, -length(?1)) = ?1)
           AND NOT EXISTS (
               SELECT 1 FROM memberships m LEFT JOIN users u ON u.user_id = m.user_id
               WHERE m.room_id = r.room_id AND substr(m.user_id, -length(?1)) = ?1
                 AND IFNULL(u.deactivated, 0) = 0
                 AND NOT (",
        super::rooms::forgotten!("?2"),
        "))
           AND IFNULL((SELECT MAX(e.origin_server_ts) FROM memberships m JOIN events e ON e.event_id = m.event_id
                       WHERE m.room_id = r.room_id AND substr(m.user_id, -length(?1)) = ?1), 0) < ?3
           AND IFNULL((SELECT MAX(f.forgotten_ts) FROM forgotten_rooms f WHERE f.room_id = r.room_id), 0) < ?3
         ORDER BY r.room_id"
    ))
    .bind(local_suffix)
    .bind(on_leave)
    .bind(before)
    .bind(room)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Deletes the room's history before stream position `before`, as Synapse's `purge_history`:
/// the timeline's events (messages, reactions, redactions...) and what hangs on them (search
/// entries, relations, notifications). State events stay (the room's state is built on them),
/// and so do the room's forward extremities, and, with `keep_local` (this server's name, as
/// `:name`), events its own users sent. Answers the IDs deleted.
pub async fn history(
    conn: &mut SqliteConnection,
    room_id: &str,
    before: i64,
    keep_local: Option<&str>,
) -> sqlx::Result<Vec<String>> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT event_id FROM events
         WHERE room_id = ?1 AND stream_ordering < ?2 AND state_key IS NULL AND outlier = 0
           AND (?3 IS NULL OR substr(sender, -length(?3)) != ?3)
           AND event_id NOT IN (SELECT event_id FROM forward_extremities WHERE room_id = ?1)",
    )
    .bind(room_id)
    .bind(before)
    .bind(keep_local)
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<String> = ids.into_iter().map(|r| r.0).collect();
    let list = serde_json::json!(ids).to_string();
    // Members' own push rows (their key starts with the user: one seek per local user), then
    // the room's.
    for (table, users) in [("push_actions", "user_nid IN (SELECT nid FROM user_nids) AND"), ("push_room_actions", "")] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE {users} room_nid = (SELECT nid FROM room_nids WHERE room_id = ?1)
               AND stream_ordering IN (SELECT stream_ordering FROM events WHERE event_id IN (SELECT value FROM json_each(?2)))"
        )))
        .bind(room_id)
        .bind(&list)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "DELETE FROM event_search WHERE rowid IN (
             SELECT stream_ordering FROM events WHERE event_id IN (SELECT value FROM json_each(?))
         )",
    )
    .bind(&list)
    .execute(&mut *tx)
    .await?;
    let tables = [
        ("event_relations", "event_id"),
        ("pending_redactions", "redaction_id"),
        ("pending_redactions", "target"),
        ("event_edges", "event_id"),
        ("event_auth", "event_id"),
        ("events", "event_id"),
    ];
    for (table, column) in tables {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE {column} IN (SELECT value FROM json_each(?))"
        )))
        .bind(&list)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(ids)
}
