//! Events (signed PDUs), their graph edges, forward extremities and transaction IDs.

use sqlx::{FromRow, SqliteExecutor};

/// An event's row. Also read from a framed record of its fields in this order
/// ([`FRAMED_ROW`]), as the queries that hand many rows over at once return them.
#[derive(Debug, Clone, FromRow)]
pub struct EventRow {
    pub stream_ordering: i64,
    pub event_id: String,
    pub room_id: String,
    pub event_type: String,
    pub state_key: Option<String>,
    pub sender: String,
    pub pdu: String,
    /// Failed the auth rules at its place in the graph: never part of state, never shown.
    pub rejected: bool,
    /// Passed them there but not against the room's state when it arrived: never shown.
    pub soft_failed: bool,
    /// The room's state after this event was appended (`COALESCE(resolved_state_group,
    /// state_group)`, see the migration `incoming_events`).
    pub state_group: Option<i64>,
    pub redacted_json: Option<String>,
    pub txn_device_id: Option<String>,
    pub txn_id: Option<String>,
}

const COLUMNS: &str = "stream_ordering, event_id, room_id, event_type, state_key, sender, pdu, rejected, soft_failed,
    COALESCE(resolved_state_group, state_group) AS state_group, redacted_json, txn_device_id, txn_id";
/// `COLUMNS` without the JSON (`pdu` empty, `redacted_json` NULL): for paths that decide on
/// the metadata and take the events themselves from the event cache.
const META_COLUMNS: &str =
    "stream_ordering, event_id, room_id, event_type, state_key, sender, '' AS pdu, rejected, soft_failed,
     COALESCE(resolved_state_group, state_group) AS state_group, NULL AS redacted_json, txn_device_id, txn_id";

pub async fn get(ex: impl SqliteExecutor<'_>, event_id: &str) -> sqlx::Result<Option<EventRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM events WHERE event_id = ?")))
        .bind(event_id)
        .fetch_optional(ex)
        .await
}

/// The given events (unknown IDs are left out). One text of framed rows instead of a row per
/// event: sqlx hands every row from SQLite's thread to the caller's on its own, which for the
/// hundreds of events of a sliding sync answer cost more than the query.
pub async fn get_many(ex: impl SqliteExecutor<'_>, event_ids: &[String]) -> sqlx::Result<Vec<EventRow>> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT group_concat({}, '') FROM events e WHERE e.event_id IN (SELECT value FROM json_each(?))",
            *FRAMED_ROW
        )
    });
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    let (text,): (Option<String>,) = sqlx::query_as(sqlx::AssertSqlSafe(SQL.as_str()))
        .bind(serde_json::json!(event_ids).to_string())
        .fetch_one(ex)
        .await?;
    decode_framed(text.as_deref().unwrap_or(""))
}

/// Every column of `events e` (`COLUMNS`' order) as one framed record, for `group_concat`:
/// a text column as its length in bytes, `:` and the text; an integer column followed by `;`;
/// NULL as `~`. The rows of a large read used to come as `json_group_array`s, where SQLite
/// escaped each PDU into a JSON string and Hearth parsed it back: nearly a third of the
/// instructions of an initial sync of 2,000 rooms. A framed text is copied, never scanned. It
/// is one `format()` (a chain of `||` copied the record so far at each step).
static FRAMED_ROW: std::sync::LazyLock<String> = std::sync::LazyLock::new(framed_row);

fn framed_row() -> String {
    enum Col {
        Int(&'static str),
        NullableInt(&'static str),
        Text(&'static str),
    }
    use Col::*;
    let columns = [
        Int("e.stream_ordering"),
        Text("e.event_id"),
        Text("e.room_id"),
        Text("e.event_type"),
        Text("e.state_key"),
        Text("e.sender"),
        Text("e.pdu"),
        Int("e.rejected"),
        Int("e.soft_failed"),
        NullableInt("COALESCE(e.resolved_state_group, e.state_group)"),
        Text("e.redacted_json"),
        Text("e.txn_device_id"),
        Text("e.txn_id"),
    ];
    let (mut pattern, mut args) = (String::new(), Vec::new());
    for column in columns {
        match column {
            Int(c) => {
                pattern.push_str("%d;");
                args.push(c.to_owned());
            }
            NullableInt(c) => {
                pattern.push_str("%s");
                args.push(format!("COALESCE(({c}) || ';', '~')"));
            }
            // `%s` of NULL writes nothing: the prefix alone says it was NULL.
            Text(c) => {
                pattern.push_str("%s%s");
                args.push(format!("COALESCE(octet_length({c}) || ':', '~')"));
                args.push(c.to_owned());
            }
        }
    }
    format!("format('{pattern}', {})", args.join(", "))
}

/// The rows of a `group_concat` of [`FRAMED_ROW`]s.
fn decode_framed(text: &str) -> sqlx::Result<Vec<EventRow>> {
    let mut frames = Frames { rest: text };
    let mut rows = Vec::new();
    while !frames.rest.is_empty() {
        rows.push(frames.row().map_err(|e| sqlx::Error::Decode(format!("a framed event row: {e}").into()))?);
    }
    Ok(rows)
}

/// A cursor over framed records (see [`FRAMED_ROW`]).
struct Frames<'a> {
    rest: &'a str,
}

impl<'a> Frames<'a> {
    fn row(&mut self) -> Result<EventRow, &'static str> {
        fn needed<T>(v: Option<T>) -> Result<T, &'static str> {
            v.ok_or("NULL in a NOT NULL column")
        }
        Ok(EventRow {
            stream_ordering: needed(self.int()?)?,
            event_id: needed(self.text()?)?.to_owned(),
            room_id: needed(self.text()?)?.to_owned(),
            event_type: needed(self.text()?)?.to_owned(),
            state_key: self.text()?.map(str::to_owned),
            sender: needed(self.text()?)?.to_owned(),
            pdu: needed(self.text()?)?.to_owned(),
            rejected: needed(self.int()?)? != 0,
            soft_failed: needed(self.int()?)? != 0,
            state_group: self.int()?,
            redacted_json: self.text()?.map(str::to_owned),
            txn_device_id: self.text()?.map(str::to_owned),
            txn_id: self.text()?.map(str::to_owned),
        })
    }

    /// `~`: NULL.
    fn null(&mut self) -> bool {
        let null = self.rest.starts_with('~');
        if null {
            self.rest = &self.rest[1..];
        }
        null
    }

    /// The text before `end` (an ASCII byte, a few bytes on), and the rest after it.
    fn until(&mut self, end: u8) -> Result<&'a str, &'static str> {
        let at = self.rest.bytes().position(|b| b == end).ok_or("cut short")?;
        let head = &self.rest[..at];
        self.rest = &self.rest[at + 1..];
        Ok(head)
    }

    fn int(&mut self) -> Result<Option<i64>, &'static str> {
        if self.null() {
            return Ok(None);
        }
        self.until(b';')?.parse().map(Some).map_err(|_| "not an integer")
    }

    fn text(&mut self) -> Result<Option<&'a str>, &'static str> {
        if self.null() {
            return Ok(None);
        }
        let len: usize = self.until(b':')?.parse().map_err(|_| "not a length")?;
        // `get` refuses a length past the end or inside a character.
        let text = self.rest.get(..len).ok_or("a length past the text")?;
        self.rest = &self.rest[len..];
        Ok(Some(text))
    }
}

/// The event a device sent to a room, as an event type, with a transaction ID.
pub async fn by_txn(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    room_id: &str,
    event_type: &str,
    txn_id: &str,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT event_id, room_id FROM events
         WHERE txn_user_id = ? AND txn_device_id = ? AND room_id = ? AND event_type = ? AND txn_id = ?",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(room_id)
    .bind(event_type)
    .bind(txn_id)
    .fetch_optional(ex)
    .await
}

/// The room's forward extremities with their depth.
pub async fn forward_extremities_with_depth(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT f.event_id, e.depth FROM forward_extremities f JOIN events e ON e.event_id = f.event_id
         WHERE f.room_id = ? ORDER BY f.event_id",
    )
    .bind(room_id)
    .fetch_all(ex)
    .await
}

/// The SQL of a room's head, its latest event's stream position, for an `UPDATE rooms`
/// statement: the one place that says what the `rooms.head` column holds.
macro_rules! room_head {
    () => {
        "(SELECT MAX(e.stream_ordering) FROM events e WHERE e.room_id = rooms.room_id)"
    };
}
pub(crate) use room_head;

/// Finds every room's latest event and relation again when an event lies past all the heads
/// kept in `rooms`: an older binary (which does not keep them) wrote to the database. Its
/// events are numbered above every event before them, so one comparison finds that. Answers
/// whether it had to.
pub async fn repair_room_heads(ex: impl SqliteExecutor<'_>) -> sqlx::Result<bool> {
    let done = sqlx::query(concat!(
        "UPDATE rooms SET head = ",
        room_head!(),
        ", relation_head = (SELECT MAX(r.stream_ordering) FROM event_relations r WHERE r.room_id = rooms.room_id)
         WHERE (SELECT MAX(stream_ordering) FROM events) > IFNULL((SELECT MAX(head) FROM rooms), -9223372036854775808)",
    ))
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The stream position of every room's latest event (kept in the room's row).
pub async fn room_heads(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT room_id, head FROM rooms WHERE head IS NOT NULL").fetch_all(ex).await
}

// LIMITs are written into the SQL, not bound: SQLite plans with a bound LIMIT's value and then
// re-prepares the statement every time the parameter is bound again.

/// Events of a room with `after < stream_ordering <= upto`, newest first, at most `limit`.
pub async fn room_events_desc(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    after: i64,
    upto: i64,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    events_desc(ex, COLUMNS, room_id, after, upto, limit).await
}

/// `room_events_desc` without the events' JSON (see `META_COLUMNS`).
pub async fn room_events_desc_meta(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    after: i64,
    upto: i64,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    events_desc(ex, META_COLUMNS, room_id, after, upto, limit).await
}

async fn events_desc(
    ex: impl SqliteExecutor<'_>,
    columns: &str,
    room_id: &str,
    after: i64,
    upto: i64,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {columns} FROM events WHERE room_id = ? AND stream_ordering > ? AND stream_ordering <= ? AND rejected = 0 AND soft_failed = 0 AND outlier = 0
         ORDER BY stream_ordering DESC LIMIT {limit}"
    )))
    .bind(room_id)
    .bind(after)
    .bind(upto)
    .fetch_all(ex)
    .await
}

/// Events of a room with `from <= stream_ordering < to`, oldest first, at most `limit`.
pub async fn room_events_asc(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    from: i64,
    to: i64,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE room_id = ? AND stream_ordering >= ? AND stream_ordering < ? AND rejected = 0 AND soft_failed = 0 AND outlier = 0
         ORDER BY stream_ordering ASC LIMIT {limit}"
    )))
    .bind(room_id)
    .bind(from)
    .bind(to)
    .fetch_all(ex)
    .await
}

/// The state group of the last event of the room at or before stream position `at`.
pub async fn state_group_at(ex: impl SqliteExecutor<'_>, room_id: &str, at: i64) -> sqlx::Result<Option<i64>> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT COALESCE(resolved_state_group, state_group) FROM events WHERE room_id = ? AND stream_ordering <= ? AND rejected = 0 AND soft_failed = 0 AND outlier = 0
         ORDER BY stream_ordering DESC LIMIT 1",
    )
    .bind(room_id)
    .bind(at)
    .fetch_optional(ex)
    .await?;
    Ok(row.and_then(|r| r.0))
}

/// The state before the event when it was stored with it (see the migration `outliers`).
pub async fn state_before_group(ex: impl SqliteExecutor<'_>, event_id: &str) -> sqlx::Result<Option<i64>> {
    let row: Option<(Option<i64>,)> = sqlx::query_as("SELECT state_before_group FROM events WHERE event_id = ?")
        .bind(event_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.and_then(|r| r.0))
}

/// Records that `event_id` was redacted, with the redacted view clients get from now on.
pub async fn set_redacted(
    ex: impl SqliteExecutor<'_>,
    event_id: &str,
    redacted_by: &str,
    redacted_json: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE events SET redacted_by = ?, redacted_json = ? WHERE event_id = ? AND redacted_by IS NULL")
        .bind(redacted_by)
        .bind(redacted_json)
        .bind(event_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Keeps a received redaction whose target is not here yet (see migration 25).
pub async fn add_pending_redaction(
    ex: impl SqliteExecutor<'_>,
    target: &str,
    redaction_id: &str,
    room_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT OR IGNORE INTO pending_redactions (target, redaction_id, room_id) VALUES (?, ?, ?)")
        .bind(target)
        .bind(redaction_id)
        .bind(room_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The pending redactions of any of `targets`: (target, room ID, redaction ID).
pub async fn pending_redactions_of(
    ex: impl SqliteExecutor<'_>,
    targets: &[String],
) -> sqlx::Result<Vec<(String, String, String)>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
        sqlx::QueryBuilder::new("SELECT target, room_id, redaction_id FROM pending_redactions WHERE target IN (");
    let mut sep = q.separated(", ");
    for t in targets {
        sep.push_bind(t);
    }
    sep.push_unseparated(")");
    q.build_query_as().fetch_all(ex).await
}

/// Forgets a pending redaction (applied, or refused now that its target is known).
pub async fn drop_pending_redaction(ex: impl SqliteExecutor<'_>, target: &str, redaction_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM pending_redactions WHERE target = ? AND redaction_id = ?")
        .bind(target)
        .bind(redaction_id)
        .execute(ex)
        .await?;
    Ok(())
}

/// The visible-candidate events of a room around a timestamp: the first at or after `ts`
/// (forwards) or the last at or before it (backwards), skipping `skip` earlier answers.
pub async fn by_timestamp(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    ts: i64,
    forward: bool,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    let sql = if forward {
        format!(
            "SELECT {COLUMNS} FROM events WHERE room_id = ? AND origin_server_ts >= ? AND rejected = 0 AND soft_failed = 0 AND outlier = 0 ORDER BY origin_server_ts ASC, stream_ordering ASC LIMIT {limit}"
        )
    } else {
        format!(
            "SELECT {COLUMNS} FROM events WHERE room_id = ? AND origin_server_ts <= ? AND rejected = 0 AND soft_failed = 0 AND outlier = 0 ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT {limit}"
        )
    };
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(room_id).bind(ts).fetch_all(ex).await
}

/// The query of `latest_per_room`, or with `ids_only` of `latest_ids_per_room`. CROSS JOIN
/// keeps the rooms the outer loop: with the statistics `optimize` writes at shutdown, SQLite
/// scanned every event and ran the per-room search for each, and an initial sync on a small
/// server took 44 ms instead of 3 after its first restart.
pub(crate) fn latest_per_room_sql(ids_only: bool, per_room: i64) -> String {
    let columns =
        if ids_only { "json_group_array(e.event_id)".to_owned() } else { format!("group_concat({}, '')", *FRAMED_ROW) };
    format!(
        "SELECT {columns}
         FROM json_each(?1) r CROSS JOIN events e ON e.stream_ordering IN (
             SELECT stream_ordering FROM events
             WHERE room_id = r.value AND stream_ordering <= ?2 AND rejected = 0 AND soft_failed = 0 AND outlier = 0
             ORDER BY stream_ordering DESC LIMIT {per_room})"
    )
}

/// For each room, its latest `per_room` events at or before `upto` (rooms by ID, newest first
/// within a room): the first page of every timeline of an initial /sync in one query, for a
/// read of more events than the event cache holds (the rows come with their JSON). The rows
/// come back as one text (see [`FRAMED_ROW`]): sqlx hands every result row over between
/// threads separately, which for hundreds of rows costs more than the query.
pub async fn latest_per_room(
    ex: impl SqliteExecutor<'_>,
    rooms: &[&str],
    upto: i64,
    per_room: i64,
) -> sqlx::Result<Vec<EventRow>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = decode_framed(latest_text(ex, false, rooms, upto, per_room).await?.as_deref().unwrap_or(""))?;
    rows.sort_by(|a, b| a.room_id.cmp(&b.room_id).then(b.stream_ordering.cmp(&a.stream_ordering)));
    Ok(rows)
}

/// The IDs of the events `latest_per_room` reads (in no particular order), for a reader that
/// takes the events from the event cache: writing each row's columns as JSON and parsing them
/// again was a fifth of an initial sync's instructions, for what the cached events already
/// hold.
pub async fn latest_ids_per_room(
    ex: impl SqliteExecutor<'_>,
    rooms: &[&str],
    upto: i64,
    per_room: i64,
) -> sqlx::Result<Vec<String>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(latest_text(ex, true, rooms, upto, per_room).await?.as_deref().unwrap_or("[]"))
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

async fn latest_text(
    ex: impl SqliteExecutor<'_>,
    ids_only: bool,
    rooms: &[&str],
    upto: i64,
    per_room: i64,
) -> sqlx::Result<Option<String>> {
    let (text,): (Option<String>,) = sqlx::query_as(sqlx::AssertSqlSafe(latest_per_room_sql(ids_only, per_room)))
        .bind(serde_json::json!(rooms).to_string())
        .bind(upto)
        .fetch_one(ex)
        .await?;
    Ok(text)
}

/// (event ID, state after it, rejected) of the given events: the points of the graph a new
/// event from another server builds on. The state is the event's own (`state_group`), not the
/// room's after resolution.
pub async fn graph_points(
    ex: impl SqliteExecutor<'_>,
    event_ids: &[String],
) -> sqlx::Result<Vec<(String, Option<i64>, bool)>> {
    sqlx::query_as(
        "SELECT event_id, state_group, rejected FROM events WHERE event_id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::json!(event_ids).to_string())
    .fetch_all(ex)
    .await
}

/// Every `auth_events` edge (event, auth event) reachable from the given events: the part of
/// the auth graph state resolution looks at.
pub async fn auth_graph(ex: impl SqliteExecutor<'_>, event_ids: &[String]) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "WITH RECURSIVE reach(id) AS (
             SELECT value FROM json_each(?)
             UNION
             SELECT a.auth_event_id FROM event_auth a JOIN reach ON a.event_id = reach.id
         )
         SELECT a.event_id, a.auth_event_id FROM event_auth a JOIN reach ON a.event_id = reach.id",
    )
    .bind(serde_json::json!(event_ids).to_string())
    .fetch_all(ex)
    .await
}

/// The prev events of each of the given events: (event, prev event).
pub async fn prev_edges(ex: impl SqliteExecutor<'_>, event_ids: &[String]) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT event_id, prev_event_id FROM event_edges WHERE event_id IN (SELECT value FROM json_each(?))")
        .bind(serde_json::json!(event_ids).to_string())
        .fetch_all(ex)
        .await
}

/// The room's earliest event in its timeline here (not an outlier): (event ID, stream position).
pub async fn earliest_in_room(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as(
        "SELECT event_id, stream_ordering FROM events WHERE room_id = ? AND outlier = 0
         ORDER BY stream_ordering ASC LIMIT 1",
    )
    .bind(room_id)
    .fetch_optional(ex)
    .await
}

/// The lowest stream position of any event (0 for none): backfilled history goes below it.
pub async fn lowest_stream(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as("SELECT MIN(stream_ordering) FROM events").fetch_one(ex).await?;
    Ok(n.unwrap_or(0).min(0))
}

/// Of these events, those stored in a timeline here (not as outliers).
pub async fn in_timeline(ex: impl SqliteExecutor<'_>, event_ids: &[String]) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT event_id FROM events WHERE outlier = 0 AND event_id IN (SELECT value FROM json_each(?))")
        .bind(serde_json::json!(event_ids).to_string())
        .fetch_all(ex)
        .await
}

/// An outlier takes its place in the room's timeline (it came back in history fetched from
/// another server), at `position` with the state `state_group`.
pub async fn place_outlier(
    ex: impl SqliteExecutor<'_>,
    event_id: &str,
    position: i64,
    state_group: Option<i64>,
) -> sqlx::Result<()> {
    // The room's head (see the `room_heads` migration) is found again: the outlier may have
    // been it, and moved down.
    sqlx::query(concat!(
        "UPDATE events SET outlier = 0, stream_ordering = ?, state_group = ? WHERE event_id = ? AND outlier = 1;
         UPDATE rooms SET head = ",
        room_head!(),
        " WHERE room_id = (SELECT room_id FROM events WHERE event_id = ?)",
    ))
    .bind(position)
    .bind(state_group)
    .bind(event_id)
    .bind(event_id)
    .execute(ex)
    .await?;
    Ok(())
}

/// The rooms taking the most room in the database: (room, bytes of their events), biggest
/// first.
pub async fn largest_rooms(ex: impl SqliteExecutor<'_>, limit: i64) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT room_id, SUM(length(pdu)) AS size FROM events GROUP BY room_id ORDER BY size DESC, room_id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(ex)
    .await
}

/// The `mxc://` URLs the room's events point at (`content.url` and
/// `content.info.thumbnail_url`, as Synapse looks for them), newest first, without repeats.
pub async fn media_urls_in_room(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT url FROM (
             SELECT json_extract(COALESCE(redacted_json, pdu), '$.content.url') AS url, stream_ordering
             FROM events WHERE room_id = ?1 AND outlier = 0 AND rejected = 0
             UNION ALL
             SELECT json_extract(COALESCE(redacted_json, pdu), '$.content.info.thumbnail_url'), stream_ordering
             FROM events WHERE room_id = ?1 AND outlier = 0 AND rejected = 0)
         WHERE url LIKE 'mxc://%' GROUP BY url ORDER BY MAX(stream_ordering) DESC",
    )
    .bind(room_id)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The stream position of the room's last event sent before `ts` (ms), if any.
pub async fn last_before_ts(ex: impl SqliteExecutor<'_>, room_id: &str, ts: i64) -> sqlx::Result<Option<i64>> {
    let (pos,): (Option<i64>,) = sqlx::query_as(
        "SELECT MAX(stream_ordering) FROM events WHERE room_id = ? AND origin_server_ts < ? AND outlier = 0",
    )
    .bind(room_id)
    .bind(ts)
    .fetch_one(ex)
    .await?;
    Ok(pos)
}

#[cfg(test)]
mod tests {
    /// A framed text that is not what `FRAMED_ROW` writes (a database changed under us) is an
    /// error, never a panic or a row made of the wrong bytes.
    #[test]
    fn framed_text_that_does_not_add_up_is_refused() {
        let row = "1;2:$a2:!r1:x~4:@u:h2:{}0;0;~~~~";
        assert_eq!(super::decode_framed(row).unwrap()[0].event_id, "$a");
        assert_eq!(super::decode_framed(&row.repeat(3)).unwrap().len(), 3);
        for bad in [
            "1;2:$a2:!r1:x~4:@u:h2:{}0;0;~~~",   // a column short
            "1;9:$a",                            // a length past the end
            "1;1:é2:!r1:x~4:@u:h2:{}0;0;~~~~",   // a length inside a character
            "x;2:$a2:!r1:x~4:@u:h2:{}0;0;~~~~",  // not an integer
            "~2:$a2:!r1:x~4:@u:h2:{}0;0;~~~~",   // NULL where there is none
            "1;-1:$a2:!r1:x~4:@u:h2:{}0;0;~~~~", // not a length
        ] {
            assert!(super::decode_framed(bad).is_err(), "{bad}");
        }
    }
}
