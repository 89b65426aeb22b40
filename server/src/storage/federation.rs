//! Federation's outgoing side: the servers to send to (`federation_destinations`) and the
//! events each has yet to receive.

use sqlx::{FromRow, SqliteExecutor};

/// The server part of a user ID column (`@local:server`; a localpart has no colon).
macro_rules! server_of {
    ($col:literal) => {
        concat!("substr(", $col, ", instr(", $col, ", ':') + 1)")
    };
}

/// What a destination is sent, after a stream position: local events (and the joins, leaves
/// and knocks other servers' users made through this server, for the servers besides theirs)
/// in rooms where it has a joined member, and changes to the membership of its users. Binds:
/// the position, this server's name, then the destination three times.
macro_rules! sendable {
    () => {
        concat!(
            "stream_ordering > ? AND rejected = 0 AND soft_failed = 0 AND outlier = 0 AND (",
            server_of!("sender"),
            " = ? OR (relay = 1 AND ",
            server_of!("sender"),
            " != ?)) AND (room_id IN (SELECT room_id FROM memberships WHERE membership = 'join' AND ",
            server_of!("user_id"),
            " = ?) OR (event_type = 'm.room.member' AND ",
            server_of!("state_key"),
            " = ?))"
        )
    };
}

/// Binds what `sendable!()` asks for to a query whose only parameters are its.
fn with_sendable<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Sqlite, O, sqlx::sqlite::SqliteArguments>,
    after: i64,
    ours: &'q str,
    destination: &'q str,
) -> sqlx::query::QueryAs<'q, sqlx::Sqlite, O, sqlx::sqlite::SqliteArguments> {
    query.bind(after).bind(ours).bind(destination).bind(destination).bind(destination)
}

/// Every other server with a member joined to one of our rooms.
pub async fn servers_in_rooms(ex: impl SqliteExecutor<'_>, ours: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(concat!(
        "SELECT DISTINCT ",
        server_of!("user_id"),
        " AS server FROM memberships WHERE membership = 'join' AND server <> ?"
    ))
    .bind(ours)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Where sending to a new destination starts: just before its members' earliest join still in
/// force (their server has everything before that from the join).
pub async fn first_join_position(ex: impl SqliteExecutor<'_>, destination: &str) -> sqlx::Result<Option<i64>> {
    let (pos,): (Option<i64>,) = sqlx::query_as(concat!(
        "SELECT MIN(stream_ordering) FROM memberships WHERE membership = 'join' AND ",
        server_of!("user_id"),
        " = ?"
    ))
    .bind(destination)
    .fetch_one(ex)
    .await?;
    Ok(pos)
}

#[derive(Debug, Clone, FromRow)]
pub struct Destination {
    pub destination: String,
    pub stream_position: i64,
    pub retry_at: Option<i64>,
    pub backoff_ms: i64,
    /// The last attempt failed (and none has succeeded since).
    pub failing: bool,
    /// The last device list change (of `device_list_changes`) it was sent or did not need.
    pub device_list_position: i64,
}

pub async fn destinations(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<Destination>> {
    sqlx::query_as(
        "SELECT destination, stream_position, retry_at, backoff_ms, last_error IS NOT NULL AS failing,
             device_list_position
         FROM federation_destinations",
    )
    .fetch_all(ex)
    .await
}

/// Adds a destination starting after `position` in the event stream and at the head of the
/// device list stream (a server starts tracking our users' devices by asking for them, once it
/// shares a room with them); nothing when it is known already.
pub async fn add_destination(ex: impl SqliteExecutor<'_>, destination: &str, position: i64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT OR IGNORE INTO federation_destinations (destination, stream_position, device_list_position)
         VALUES (?, ?, (SELECT IFNULL(MAX(stream_id), 0) FROM device_list_changes))",
    )
    .bind(destination)
    .bind(position)
    .execute(ex)
    .await?;
    Ok(())
}

/// The destination accepted everything up to `position`.
pub async fn delivered(ex: impl SqliteExecutor<'_>, destination: &str, position: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE federation_destinations SET stream_position = MAX(stream_position, ?), retry_at = NULL,
             backoff_ms = 0, last_error = NULL, failure_ts = NULL, last_success_ts = ? WHERE destination = ?",
    )
    .bind(position)
    .bind(now)
    .bind(destination)
    .execute(ex)
    .await?;
    Ok(())
}

/// A failed attempt: no new one before `retry_at`.
pub async fn failed(
    ex: impl SqliteExecutor<'_>,
    destination: &str,
    retry_at: i64,
    backoff_ms: i64,
    error: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE federation_destinations SET retry_at = ?1, backoff_ms = ?2, last_error = ?3,
             failure_ts = IFNULL(failure_ts, ?1 - ?2) WHERE destination = ?4",
    )
    .bind(retry_at)
    .bind(backoff_ms)
    .bind(error)
    .bind(destination)
    .execute(ex)
    .await?;
    Ok(())
}

/// The destination talked to us: try it again now.
pub async fn clear_backoff(ex: impl SqliteExecutor<'_>, destination: &str) -> sqlx::Result<u64> {
    let r = sqlx::query(
        "UPDATE federation_destinations SET retry_at = NULL, backoff_ms = 0 WHERE destination = ? AND retry_at IS NOT NULL",
    )
    .bind(destination)
    .execute(ex)
    .await?;
    Ok(r.rows_affected())
}

/// Local events after `after` (and the joins, leaves and knocks other servers' users made
/// through this server, for the servers besides theirs) in rooms where `destination` has a
/// joined member, and changes to the membership of its users (a kick or ban reaches the server
/// of the one who is out), oldest first: (stream ordering, PDU).
pub async fn events_for(
    ex: impl SqliteExecutor<'_>,
    destination: &str,
    ours: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<(i64, String)>> {
    // The LIMIT is written into the SQL, as in storage::events: a bound one makes SQLite
    // re-prepare the statement on every call.
    with_sendable(
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            concat!(
                "SELECT stream_ordering, pdu FROM events WHERE ",
                sendable!(),
                " ORDER BY stream_ordering LIMIT {limit}"
            ),
            limit = limit
        ))),
        after,
        ours,
        destination,
    )
    .fetch_all(ex)
    .await
}

/// A destination as the dashboard shows it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct DestinationStatus {
    pub destination: String,
    pub stream_position: i64,
    pub retry_at: Option<i64>,
    /// The current wait between attempts (0 while it answers).
    pub backoff_ms: i64,
    pub last_error: Option<String>,
    pub last_success_ts: Option<i64>,
    /// Since when it has been failing (None while it answers).
    pub failure_ts: Option<i64>,
}

pub async fn destination_statuses(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<DestinationStatus>> {
    sqlx::query_as(
        "SELECT destination, stream_position, retry_at, backoff_ms, last_error, last_success_ts, failure_ts
         FROM federation_destinations ORDER BY destination",
    )
    .fetch_all(ex)
    .await
}

/// Rooms where `destination` has a joined member, each with the position of its latest event
/// at or before `upto` (what the destination was sent of it), by room ID.
pub async fn rooms_shared_with(
    ex: impl SqliteExecutor<'_>,
    destination: &str,
    upto: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT m.room_id, IFNULL((SELECT MAX(e.stream_ordering) FROM events e
                                   WHERE e.room_id = m.room_id AND e.stream_ordering <= ?2), 0)
         FROM memberships m
         WHERE m.membership = 'join' AND substr(m.user_id, -length(?1) - 1) = ':' || ?1
         GROUP BY m.room_id ORDER BY m.room_id",
    )
    .bind(destination)
    .bind(upto)
    .fetch_all(ex)
    .await
}

/// Events after `after` waiting for `destination` (as `events_for` would send them).
pub async fn queued_for(ex: impl SqliteExecutor<'_>, destination: &str, ours: &str, after: i64) -> sqlx::Result<i64> {
    let (n,): (i64,) = with_sendable(
        sqlx::query_as(concat!("SELECT COUNT(*) FROM events WHERE ", sendable!())),
        after,
        ours,
        destination,
    )
    .fetch_one(ex)
    .await?;
    Ok(n)
}

/// Whether more than `n` events wait for `destination` after `after` (counting stops there).
pub async fn more_waiting_than(
    ex: impl SqliteExecutor<'_>,
    destination: &str,
    ours: &str,
    after: i64,
    n: i64,
) -> sqlx::Result<bool> {
    let (count,): (i64,) = with_sendable(
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            concat!("SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE ", sendable!(), " LIMIT {limit})"),
            limit = n + 1
        ))),
        after,
        ours,
        destination,
    )
    .fetch_one(ex)
    .await?;
    Ok(count > n)
}

/// Catching a destination up after an outage: of what waits for it after `after`, only the
/// latest event of each room (at most `limit` rooms, those whose latest is oldest first), oldest
/// first. Its server fetches what it lacks before them (`/get_missing_events`, `/state_ids`)
/// and the rest as its users scroll back.
pub async fn latest_per_room_for(
    ex: impl SqliteExecutor<'_>,
    destination: &str,
    ours: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<(i64, String)>> {
    with_sendable(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        concat!(
            "SELECT e.stream_ordering, e.pdu FROM events e JOIN (SELECT MAX(stream_ordering) AS latest FROM events WHERE ",
            sendable!(),
            " GROUP BY room_id ORDER BY latest LIMIT {limit}) l ON e.stream_ordering = l.latest ORDER BY e.stream_ordering"
        ),
        limit = limit
    ))), after, ours, destination)
    .fetch_all(ex)
    .await
}

/// The destination was sent (or needed none of) the device list changes up to `position`.
pub async fn device_lists_delivered(ex: impl SqliteExecutor<'_>, destination: &str, position: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE federation_destinations SET device_list_position = MAX(device_list_position, ?) WHERE destination = ?",
    )
    .bind(position)
    .bind(destination)
    .execute(ex)
    .await?;
    Ok(())
}

/// A local user's device list change a destination is to hear of.
#[derive(Debug, Clone, FromRow)]
pub struct DeviceListChange {
    pub stream_id: i64,
    pub user_id: String,
    /// None: the user's cross-signing keys changed.
    pub device_id: Option<String>,
    /// The user's change before this one (the `prev_id` other servers check for gaps).
    pub prev: Option<i64>,
}

/// Device list changes of this server's users after `after` whose users share a room with a
/// member of `destination`, oldest first.
pub async fn device_list_changes_for(
    ex: impl SqliteExecutor<'_>,
    destination: &str,
    ours: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<DeviceListChange>> {
    let sql = format!(
        concat!(
            "SELECT c.stream_id, c.user_id, c.device_id,
                 (SELECT MAX(p.stream_id) FROM device_list_changes p
                  WHERE p.user_id = c.user_id AND p.stream_id < c.stream_id) AS prev
             FROM device_list_changes c
             WHERE c.stream_id > ? AND ",
            server_of!("c.user_id"),
            " = ? AND EXISTS (SELECT 1 FROM memberships m CROSS JOIN memberships o ON o.room_id = m.room_id
                 WHERE m.user_id = c.user_id AND m.membership = 'join' AND o.membership = 'join' AND ",
            server_of!("o.user_id"),
            " = ?) ORDER BY c.stream_id LIMIT {}"
        ),
        limit
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(after).bind(ours).bind(destination).fetch_all(ex).await
}

/// The servers (other than ours) with a member joined to a room `user` is joined to.
pub async fn servers_sharing_with(ex: impl SqliteExecutor<'_>, user: &str, ours: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(concat!(
        "SELECT DISTINCT ",
        server_of!("o.user_id"),
        " AS server FROM memberships m CROSS JOIN memberships o ON o.room_id = m.room_id
         WHERE m.user_id = ? AND m.membership = 'join' AND o.membership = 'join' AND server <> ?"
    ))
    .bind(user)
    .bind(ours)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Queues EDUs that must not be lost for `destination` (which becomes a destination if it was
/// not one: a to-device message can go to a server no room is shared with).
pub async fn queue_edus(conn: &mut sqlx::SqliteConnection, destination: &str, edus: &[String]) -> sqlx::Result<()> {
    // A new destination's events start at the head: a room it comes to share later is sent
    // from its join, as for any destination.
    let (head,): (i64,) =
        sqlx::query_as("SELECT IFNULL(MAX(stream_ordering), 0) FROM events").fetch_one(&mut *conn).await?;
    add_destination(&mut *conn, destination, head).await?;
    for edu in edus {
        sqlx::query("INSERT INTO federation_outbox_edus (destination, edu) VALUES (?, ?)")
            .bind(destination)
            .bind(edu)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The oldest queued EDUs of a destination: (id, EDU JSON).
pub async fn queued_edus(
    ex: impl SqliteExecutor<'_>,
    destination: &str,
    limit: i64,
) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, edu FROM federation_outbox_edus WHERE destination = ? ORDER BY id LIMIT {limit}"
    )))
    .bind(destination)
    .fetch_all(ex)
    .await
}

/// The destinations with queued EDUs.
pub async fn destinations_with_edus(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT destination FROM federation_outbox_edus").fetch_all(ex).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The destination accepted its queued EDUs up to `id`.
pub async fn edus_delivered(ex: impl SqliteExecutor<'_>, destination: &str, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM federation_outbox_edus WHERE destination = ? AND id <= ?")
        .bind(destination)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

/// Records a to-device message received from `origin`; false when it was received before.
/// Records older than a day are dropped on the way.
pub async fn first_receipt_of_to_device(
    conn: &mut sqlx::SqliteConnection,
    origin: &str,
    message_id: &str,
    now: i64,
) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM federation_inbox_to_device WHERE received_ts < ?")
        .bind(now - 86_400_000)
        .execute(&mut *conn)
        .await?;
    let r = sqlx::query(
        "INSERT OR IGNORE INTO federation_inbox_to_device (origin, message_id, received_ts) VALUES (?, ?, ?)",
    )
    .bind(origin)
    .bind(message_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// EDUs waiting in the outbox (to-device messages for other servers), over all destinations.
pub async fn queued_edus_total(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM federation_outbox_edus").fetch_one(ex).await?;
    Ok(n)
}
