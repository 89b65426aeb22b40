//! Push actions: which events notify which users.

use sqlx::{FromRow, SqliteExecutor};

/// (thread_id, notifications, highlights) of the user in a room they are joined to, since their
/// read position (see `unread_many`).
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
/// initial /sync asks this for every room. The rooms must be rooms the user is joined to (see
/// `UNREAD_MANY`).
pub async fn unread_many(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    rooms: &[&str],
) -> sqlx::Result<Vec<(String, String, i64, i64)>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(UNREAD_MANY).bind(user_id).bind(serde_json::json!(rooms).to_string()).fetch_all(ex).await
}

/// The SQL of the position of the user's latest read receipt in room `$room` for `$thread`
/// (`''`: unthreaded; `'main'`: the main timeline; else a thread's root), or 0.
macro_rules! receipt_at {
    ($room:literal, $thread:literal) => {
        concat!(
            "COALESCE((SELECT MAX(e.stream_ordering) FROM receipts rc JOIN events e ON e.event_id = rc.event_id
                       WHERE rc.room_id = ",
            $room,
            " AND rc.user_id = ?1 AND rc.receipt_type IN ('m.read', 'm.read.private') AND rc.thread_id = ",
            $thread,
            "), 0)"
        )
    };
}

/// The SQL of where the user has read room `$room` up to in every thread: their latest
/// unthreaded read receipt or their own latest event there, whichever is later (sending a
/// message implies reading what came before).
macro_rules! read_everywhere_at {
    ($room:literal) => {
        concat!(
            "MAX(",
            receipt_at!($room, "''"),
            ", COALESCE((SELECT MAX(stream_ordering) FROM events WHERE room_id = ",
            $room,
            " AND sender = ?1), 0))"
        )
    };
}

/// The SQL of whether the row `x` (with a `thread_id` and a `stream_ordering`) is after what
/// the user has read of its thread, beyond `pos.u` (see `UNREAD_MANY`): a main-timeline event
/// is read by a receipt for the main timeline, an event in a thread by one for that thread.
macro_rules! unread_in_thread {
    () => {
        concat!(
            "x.stream_ordering > CASE WHEN x.thread_id = '' THEN pos.m ELSE ",
            receipt_at!("pos.room_id", "x.thread_id"),
            " END"
        )
    };
}

/// `unread_many`'s query: ?1 the user, ?2 the rooms as a JSON list. The room's rows after the
/// read position (in the main timeline, then in threads), then the user's own rows after it,
/// each counting its own outcome in place of the room's row at the same event. The room's rows
/// are counted by a range of their key (threads': of the index of the rows in threads, so
/// neither reads the other's rows, and a thread's receipt is looked up only for rows in
/// threads), and only the own rows (few: the exceptions) are looked up one by one. CROSS JOIN:
/// the rooms asked for stay the outer loop, each found by key.
///
/// The main timeline's rows, nearly all of them, are counted per room where they are read
/// (`main`: notifications in the high bits, highlights in the low ones), so that only one row
/// per room goes on to the grouping; `MATERIALIZED`, or SQLite would count them again for each
/// use of the count. Grouping every row as the rows in threads are took twice the steps.
///
/// The read position (spec: threaded read receipts) is `pos.u` for all events: the unthreaded
/// receipt or the user's own latest event, whichever is later (sending a message implies
/// reading what came before). Past it, a main-timeline event is read by a receipt for the main
/// timeline (`pos.m`), an event in a thread by a receipt for that thread.
///
/// For rooms the user is joined to: then all of the room's rows after their read position are
/// theirs, as their read position is at or past their latest join (the join is their own
/// event), and they have been joined since. (`push_spans` says it for any user; asking it here
/// added a search of another B-tree per room to every /sync.)
pub(crate) const UNREAD_MANY: &str = concat!(
    "WITH pos0(room_id, nid, u, m) AS (
         SELECT r.value, n.nid,
                ",
    read_everywhere_at!("r.value"),
    ",
                ",
    receipt_at!("r.value", "'main'"),
    "
         FROM json_each(?2) r CROSS JOIN room_nids n ON n.room_id = r.value
     ),
     pos(room_id, nid, u, m) AS (SELECT room_id, nid, u, MAX(u, m) FROM pos0),
     me(nid) AS (SELECT nid FROM user_nids WHERE user_id = ?1),
     main(room_id, nh) AS MATERIALIZED (
         SELECT pos.room_id,
                (SELECT (COUNT(*) << 32) | COALESCE(SUM(x.flags & 1), 0) FROM push_room_actions x
                 WHERE x.room_nid = pos.nid AND x.stream_ordering > pos.m AND x.thread_id = '')
         FROM pos
     ),
     hits(room_id, thread_id, n, h) AS (
         SELECT room_id, '', nh >> 32, nh & 4294967295 FROM main WHERE nh > 0
         UNION ALL
         SELECT pos.room_id, x.thread_id, 1, x.flags & 1 FROM pos
         CROSS JOIN push_room_actions x INDEXED BY push_room_actions_threads
             ON x.room_nid = pos.nid AND x.stream_ordering > pos.u
         WHERE x.thread_id <> '' AND ",
    unread_in_thread!(),
    "
         UNION ALL
         SELECT pos.room_id, x.thread_id,
                (x.flags & 4 = 0) - (ra.room_nid IS NOT NULL),
                (x.flags & 5 = 1) - COALESCE(ra.flags & 1, 0)
         FROM pos
         CROSS JOIN push_actions x ON x.user_nid = (SELECT nid FROM me) AND x.room_nid = pos.nid
                                  AND x.stream_ordering > pos.u
         LEFT JOIN push_room_actions ra ON ra.room_nid = pos.nid AND ra.stream_ordering = x.stream_ordering
         WHERE ",
    unread_in_thread!(),
    "
     )
     SELECT room_id, thread_id, SUM(n), SUM(h) FROM hits GROUP BY room_id, thread_id HAVING SUM(n) > 0"
);

/// The flag of a member's own row that says the event does not notify them, where the room's
/// row would.
pub const NOT_NOTIFIED: i64 = 4;

/// The actions of the default push rules, by their flags (1: highlight, 2: the sound
/// "default"), as ruma writes them. Rows whose actions are one of these keep only the flags.
const CANONICAL: [&str; 4] = [
    r#"["notify"]"#,
    r#"["notify",{"set_tweak":"highlight"}]"#,
    r#"["notify",{"set_tweak":"sound","value":"default"}]"#,
    r#"["notify",{"set_tweak":"sound","value":"default"},{"set_tweak":"highlight"}]"#,
];

/// (flags, actions to store): the flags alone when they say the actions, else the highlight
/// flag and the actions as given.
pub fn compact(highlight: bool, actions: &str) -> (i64, Option<&str>) {
    match CANONICAL.iter().position(|c| *c == actions) {
        Some(flags) if (flags & 1 == 1) == highlight => (flags as i64, None),
        _ => (highlight as i64, Some(actions)),
    }
}

/// The actions `compact` stored, as JSON.
pub fn expand(flags: i64, actions: Option<String>) -> String {
    actions.unwrap_or_else(|| CANONICAL[(flags & 3) as usize].to_owned())
}

#[derive(Debug, Clone)]
pub struct PushActionRow {
    pub event_id: String,
    pub room_id: String,
    /// The thread the event is in ("" for the main timeline).
    pub thread_id: String,
    pub stream_ordering: i64,
    pub actions: String,
    pub ts: i64,
}

#[derive(FromRow)]
struct Stored {
    event_id: String,
    room_id: String,
    thread_id: String,
    stream_ordering: i64,
    flags: i64,
    actions: Option<String>,
    ts: i64,
}

/// The user's notifications before position `before`, newest first.
pub async fn list(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    before: i64,
    only_highlight: bool,
    limit: i64,
) -> sqlx::Result<Vec<PushActionRow>> {
    // The user's own rows, and the room's rows of every span they were joined in, less those a
    // row of their own replaces and their own events. The LIMIT is written into the SQL: a
    // bound one makes SQLite re-prepare on every call.
    let rows: Vec<Stored> = sqlx::query_as(sqlx::AssertSqlSafe(list_sql(limit)))
        .bind(user_id)
        .bind(before)
        .bind(only_highlight)
        .fetch_all(ex)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| PushActionRow {
            event_id: r.event_id,
            room_id: r.room_id,
            thread_id: r.thread_id,
            stream_ordering: r.stream_ordering,
            actions: expand(r.flags, r.actions),
            ts: r.ts,
        })
        .collect())
}

/// `list`'s query: ?1 the user, ?2 the position to list from, ?3 highlights only.
pub(crate) fn list_sql(limit: i64) -> String {
    format!(
        "WITH me(nid) AS (SELECT nid FROM user_nids WHERE user_id = ?1),
         n(stream_ordering, thread_id, flags, actions) AS (
             SELECT a.stream_ordering, a.thread_id, a.flags, a.actions FROM push_actions a
             WHERE a.user_nid = (SELECT nid FROM me) AND a.stream_ordering < ?2 AND a.flags & 4 = 0
             UNION ALL
             SELECT ra.stream_ordering, ra.thread_id, ra.flags, ra.actions FROM push_spans sp
             CROSS JOIN push_room_actions ra ON ra.room_nid = sp.room_nid AND ra.stream_ordering > sp.from_stream
                 AND ra.stream_ordering < MIN(COALESCE(sp.to_stream, ?2), ?2)
             WHERE sp.user_nid = (SELECT nid FROM me)
               AND NOT EXISTS (SELECT 1 FROM push_actions x WHERE x.user_nid = sp.user_nid AND x.room_nid = sp.room_nid
                                                                AND x.stream_ordering = ra.stream_ordering)
         )
         SELECT e.event_id, e.room_id, n.thread_id, n.stream_ordering, n.flags, n.actions, e.origin_server_ts AS ts
         FROM n CROSS JOIN events e ON e.stream_ordering = n.stream_ordering
         WHERE (?3 = 0 OR n.flags & 1 = 1) AND e.sender <> ?1
         ORDER BY n.stream_ordering DESC LIMIT {limit}"
    )
}

/// Where each user has read up to in each room with a read receipt, as (user, room, main
/// timeline, all) nids and positions: what the prune of read notifications goes by. A receipt
/// for the main timeline reads no thread; one for a thread is not taken, so a thread's
/// notifications wait for an unthreaded receipt. Read once per prune: it joins every read
/// receipt to its event.
pub async fn read_positions(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<(i64, i64, i64, i64)>> {
    sqlx::query_as(
        "SELECT u.nid, r.nid, MAX(e.stream_ordering), COALESCE(MAX(e.stream_ordering) FILTER (WHERE rc.thread_id = ''), 0)
         FROM receipts rc
         JOIN events e ON e.event_id = rc.event_id
         JOIN user_nids u ON u.user_id = rc.user_id
         JOIN room_nids r ON r.room_id = rc.room_id
         WHERE rc.receipt_type IN ('m.read', 'm.read.private') AND rc.thread_id IN ('', 'main')
         GROUP BY u.nid, r.nid",
    )
    .fetch_all(ex)
    .await
}

/// Up to `batch` notifications their user has read (at or before their position in `read`,
/// from `read_positions`) at or before position `read_upto` (highlights: `highlight_upto`), as
/// (user, room, position) keys. Unread ones stay whatever their age: the unread counts are
/// counted from them. A read, for a read connection: the write connection is held for the
/// delete only. The rows are found by their primary key's range, so the cost is the rows found.
pub async fn prunable(
    ex: impl SqliteExecutor<'_>,
    read: &[(i64, i64, i64, i64)],
    read_upto: i64,
    highlight_upto: i64,
    batch: i64,
) -> sqlx::Result<Vec<(i64, i64, i64)>> {
    // CROSS JOIN: the positions stay the outer loop, each one a range of the primary key. Not
    // here: "not notified" rows, and rows at an event the room has a row for (without theirs,
    // the room's row would speak for them); they go with the room's row (`prunable_rooms`).
    sqlx::query_as(
        "WITH pos(user_nid, room_nid, p, u) AS (
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                    json_extract(value, '$[3]')
             FROM json_each(?1)
         )
         SELECT a.user_nid, a.room_nid, a.stream_ordering FROM pos
         CROSS JOIN push_actions a ON a.user_nid = pos.user_nid AND a.room_nid = pos.room_nid
             AND a.stream_ordering <= MIN(pos.p, ?2)
         WHERE (a.flags & 1 = 0 OR a.stream_ordering <= ?3) AND a.flags & 4 = 0
           AND (a.thread_id = '' OR a.stream_ordering <= pos.u)
           AND NOT EXISTS (SELECT 1 FROM push_room_actions ra WHERE ra.room_nid = a.room_nid
                                                                AND ra.stream_ordering = a.stream_ordering)
         LIMIT ?4",
    )
    .bind(serde_json::json!(read).to_string())
    .bind(read_upto)
    .bind(highlight_upto)
    .bind(batch)
    .fetch_all(ex)
    .await
}

/// Deletes the notifications with these (user, room, position) keys; how many.
pub async fn delete(ex: impl SqliteExecutor<'_>, keys: &[(i64, i64, i64)]) -> sqlx::Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(sqlx::query(
        "DELETE FROM push_actions WHERE (user_nid, room_nid, stream_ordering) IN (
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?)
         )",
    )
    .bind(serde_json::json!(keys).to_string())
    .execute(ex)
    .await?
    .rows_affected())
}

/// The local users joined to each room now, as (user, room, joined after) nids and position,
/// with the position of their own latest event there (sending implies having read what came
/// before): whom a room's rows are handed over to, when they are pruned unread.
pub async fn joined_spans(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<(i64, i64, i64, i64)>> {
    sqlx::query_as(
        "SELECT sp.user_nid, sp.room_nid, sp.from_stream,
                COALESCE((SELECT MAX(e.stream_ordering) FROM events e WHERE e.room_id = r.room_id AND e.sender = u.user_id), 0)
         FROM push_spans sp
         CROSS JOIN user_nids u ON u.nid = sp.user_nid
         CROSS JOIN room_nids r ON r.nid = sp.room_nid
         WHERE sp.to_stream IS NULL",
    )
    .fetch_all(ex)
    .await
}

/// Every room that has a number, which all rooms with rows do.
pub async fn room_nids(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<i64>> {
    sqlx::query_as("SELECT nid FROM room_nids").fetch_all(ex).await.map(|r| r.into_iter().map(|(n,)| n).collect())
}

/// Up to `batch` of the rooms' rows at or before `upto`, highlights only at or before
/// `highlight_upto`, as (room, position) keys and whether the event is in the main timeline;
/// `rooms` are the rooms' nids. CROSS JOIN: each room a range of the key.
pub async fn prunable_rooms(
    ex: impl SqliteExecutor<'_>,
    rooms: &[i64],
    upto: i64,
    highlight_upto: i64,
    batch: i64,
) -> sqlx::Result<Vec<(i64, i64, bool)>> {
    sqlx::query_as(
        "SELECT ra.room_nid, ra.stream_ordering, ra.thread_id = '' FROM json_each(?1) r
         CROSS JOIN push_room_actions ra ON ra.room_nid = r.value AND ra.stream_ordering <= ?2
         WHERE ra.flags & 1 = 0 OR ra.stream_ordering <= ?3
         LIMIT ?4",
    )
    .bind(serde_json::json!(rooms).to_string())
    .bind(upto)
    .bind(highlight_upto)
    .bind(batch)
    .fetch_all(ex)
    .await
}

/// Deletes the rooms' rows with these (room, position) keys; how many. First each row is handed
/// over, as a row of their own, to the members in `unread` ((user, room, position) nids: joined
/// members who have not read it); a row of their own already there stays as it is. Then the
/// "not notified" rows at these events go: they only said the room's row was not for them.
/// Other rows of their own stay, for the prune by each member's reading.
pub async fn delete_rooms(
    ex: &mut sqlx::SqliteConnection,
    keys: &[(i64, i64)],
    unread: &[(i64, i64, i64)],
) -> sqlx::Result<u64> {
    if keys.is_empty() {
        return Ok(0);
    }
    if !unread.is_empty() {
        sqlx::query(
            "INSERT OR IGNORE INTO push_actions (user_nid, room_nid, stream_ordering, thread_id, flags, actions)
             SELECT json_extract(value, '$[0]'), ra.room_nid, ra.stream_ordering, ra.thread_id, ra.flags, ra.actions
             FROM json_each(?)
             CROSS JOIN push_room_actions ra ON ra.room_nid = json_extract(value, '$[1]')
                                             AND ra.stream_ordering = json_extract(value, '$[2]')",
        )
        .bind(serde_json::json!(unread).to_string())
        .execute(&mut *ex)
        .await?;
    }
    let keys = serde_json::json!(keys).to_string();
    // The members a room's row was for are those with a span in the room around the position
    // (inclusive: a member whose membership the event itself changed may have a row too).
    sqlx::query(
        "DELETE FROM push_actions WHERE (user_nid, room_nid, stream_ordering) IN (
             SELECT sp.user_nid, k.room_nid, k.p FROM (
                 SELECT json_extract(value, '$[0]') AS room_nid, json_extract(value, '$[1]') AS p FROM json_each(?)
             ) k
             CROSS JOIN push_spans sp ON sp.room_nid = k.room_nid AND sp.from_stream <= k.p
                                     AND (sp.to_stream IS NULL OR sp.to_stream >= k.p)
         ) AND flags & 4 <> 0",
    )
    .bind(&keys)
    .execute(&mut *ex)
    .await?;
    Ok(sqlx::query(
        "DELETE FROM push_room_actions WHERE (room_nid, stream_ordering) IN (
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?)
         )",
    )
    .bind(&keys)
    .execute(&mut *ex)
    .await?
    .rows_affected())
}

/// Where the user has read up to in a room's `thread` ("" for the main timeline): their latest
/// unthreaded read receipt, their latest one for that thread (`main` for the main timeline), or
/// their own latest event, whichever is later (sending a message implies reading what came
/// before). As the unread counts take it (`UNREAD_MANY`).
pub async fn read_position(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    room_id: &str,
    thread: &str,
) -> sqlx::Result<i64> {
    let (pos,): (i64,) = sqlx::query_as(concat!(
        "SELECT MAX(",
        read_everywhere_at!("?2"),
        ", ",
        receipt_at!("?2", "CASE WHEN ?3 = '' THEN 'main' ELSE ?3 END"),
        ")"
    ))
    .bind(user_id)
    .bind(room_id)
    .bind(thread)
    .fetch_one(ex)
    .await?;
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use ruma::push::{Action, Tweak};

    use super::*;

    /// What the default rules' actions look like once ruma wrote them: all four are kept as
    /// flags alone, and come back the same.
    #[test]
    fn the_default_rules_actions_are_kept_as_flags_and_come_back_unchanged() {
        let sound = Action::SetTweak(Tweak::Sound("default".into()));
        let highlight = Action::SetTweak(Tweak::Highlight(true.into()));
        let cases = [
            (vec![Action::Notify], false, 0),
            (vec![Action::Notify, highlight.clone()], true, 1),
            (vec![Action::Notify, sound.clone()], false, 2),
            (vec![Action::Notify, sound.clone(), highlight.clone()], true, 3),
        ];
        for (actions, is_highlight, flags) in cases {
            let json = serde_json::to_string(&actions).unwrap();
            assert_eq!(compact(is_highlight, &json), (flags, None), "{json}");
            assert_eq!(expand(flags, None), json);
        }
    }

    /// A custom rule's tweaks are kept as given, with the highlight flag for the counts.
    #[test]
    fn other_actions_are_kept_whole() {
        let ring = serde_json::to_string(&[Action::Notify, Action::SetTweak(Tweak::Sound("ring".into()))]).unwrap();
        assert_eq!(compact(false, &ring), (0, Some(ring.as_str())));
        assert_eq!(expand(0, Some(ring.clone())), ring);
        let no_highlight =
            serde_json::to_string(&[Action::Notify, Action::SetTweak(Tweak::Highlight(false.into()))]).unwrap();
        assert_eq!(compact(false, &no_highlight), (0, Some(no_highlight.as_str())));
        // A highlight that the flags' form does not say (a reordered list) keeps its flag.
        let reordered = r#"[{"set_tweak":"highlight"},"notify"]"#;
        assert_eq!(compact(true, reordered), (1, Some(reordered)));
    }
}
