//! Rooms, their aliases, current state and memberships.

use sqlx::{FromRow, SqliteExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct RoomRow {
    pub room_id: String,
    pub room_version: String,
    pub current_state_group: Option<i64>,
}

pub async fn get(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Option<RoomRow>> {
    sqlx::query_as("SELECT room_id, room_version, current_state_group FROM rooms WHERE room_id = ?")
        .bind(room_id)
        .fetch_optional(ex)
        .await
}

pub async fn set_public(ex: impl SqliteExecutor<'_>, room_id: &str, public: bool) -> sqlx::Result<()> {
    sqlx::query("UPDATE rooms SET is_public = ? WHERE room_id = ?").bind(public).bind(room_id).execute(ex).await?;
    Ok(())
}

// ----- current state ----------------------------------------------------------------------

pub async fn current_state(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<super::state::StateMap> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT event_type, state_key, event_id FROM current_state WHERE room_id = ?")
            .bind(room_id)
            .fetch_all(ex)
            .await?;
    Ok(rows.into_iter().map(|(t, k, e)| ((t, k), e)).collect())
}

pub async fn current_state_event(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    event_type: &str,
    state_key: &str,
) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT event_id FROM current_state WHERE room_id = ? AND event_type = ? AND state_key = ?")
            .bind(room_id)
            .bind(event_type)
            .bind(state_key)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.0))
}

// ----- memberships ------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct MembershipRow {
    pub room_id: String,
    pub membership: String,
    pub event_id: String,
    pub stream_ordering: i64,
}

/// Everyone joined to a room the user is joined to. (The user's memberships are the outer loop,
/// as in every such self-join here: with statistics SQLite preferred to scan every membership
/// of the server, for the order DISTINCT wants.)
pub async fn co_members(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(CO_MEMBERS).bind(user_id).fetch_all(ex).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub(crate) const CO_MEMBERS: &str =
    "SELECT DISTINCT o.user_id FROM memberships m CROSS JOIN memberships o ON o.room_id = m.room_id
     WHERE m.user_id = ? AND m.membership = 'join' AND o.membership = 'join'";

/// The user's membership in every room they have one in.
pub async fn memberships_of(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<MembershipRow>> {
    sqlx::query_as("SELECT room_id, membership, event_id, stream_ordering FROM memberships WHERE user_id = ?")
        .bind(user_id)
        .fetch_all(ex)
        .await
}

pub async fn membership(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<MembershipRow>> {
    sqlx::query_as(
        "SELECT room_id, membership, event_id, stream_ordering FROM memberships WHERE room_id = ? AND user_id = ?",
    )
    .bind(room_id)
    .bind(user_id)
    .fetch_optional(ex)
    .await
}

pub async fn joined_rooms(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT room_id FROM memberships WHERE user_id = ? AND membership = 'join' ORDER BY room_id")
            .bind(user_id)
            .fetch_all(ex)
            .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// (user_id, membership) of everyone with a membership in the room.
/// Whether anyone is joined to the room.
pub async fn anyone_joined(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM memberships WHERE room_id = ? AND membership = 'join')")
        .bind(room_id)
        .fetch_one(ex)
        .await
}

/// The guest accounts joined to a room.
pub async fn joined_guests(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT m.user_id FROM memberships m JOIN users u ON u.user_id = m.user_id
         WHERE m.room_id = ? AND m.membership = 'join' AND u.is_guest = 1",
    )
    .bind(room_id)
    .fetch_all(ex)
    .await
}

pub async fn members(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query_as("SELECT user_id, membership, event_id FROM memberships WHERE room_id = ? ORDER BY user_id")
        .bind(room_id)
        .fetch_all(ex)
        .await
}

/// Heroes in a room summary (spec: "Room summary").
const HEROES: usize = 5;

/// A room summary's member counts and heroes (spec: "Room summary" in /sync).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSummary {
    pub joined: i64,
    pub invited: i64,
    /// Up to five members other than the viewer, in the order their membership events came
    /// (spec: "Room summary"): the joined and invited ones, or when there are none, those who
    /// left or were banned.
    pub heroes: Vec<String>,
}

/// Counted where the rows are: an initial sync used to take every member of every room (four
/// strings each) only to count them and keep five, 7% of its instructions. Heroes come from
/// `memberships_room_order`, the first five entries of each membership (the viewer left out),
/// merged in Rust; those who left or were banned only when no one else is joined or invited
/// (COALESCE evaluates its second argument only then: a condition in that branch's WHERE was
/// tested on every member who left).
pub(crate) const SUMMARIES_MANY: &str = "SELECT r.value,
        (SELECT COUNT(*) FROM memberships m WHERE m.room_id = r.value AND m.membership = 'join'),
        (SELECT COUNT(*) FROM memberships m WHERE m.room_id = r.value AND m.membership = 'invite'),
        COALESCE(
            NULLIF((SELECT json_group_array(json_array(h.stream_ordering, h.user_id)) FROM (
                SELECT * FROM (SELECT m.stream_ordering, m.user_id FROM memberships m
                    WHERE m.room_id = r.value AND m.membership = 'join' AND m.user_id != ?2
                    ORDER BY m.stream_ordering LIMIT 5)
                UNION ALL SELECT * FROM (SELECT m.stream_ordering, m.user_id FROM memberships m
                    WHERE m.room_id = r.value AND m.membership = 'invite' AND m.user_id != ?2
                    ORDER BY m.stream_ordering LIMIT 5)) h), '[]'),
            (SELECT json_group_array(json_array(h.stream_ordering, h.user_id)) FROM (
                SELECT * FROM (SELECT m.stream_ordering, m.user_id FROM memberships m
                    WHERE m.room_id = r.value AND m.membership = 'leave' AND m.user_id != ?2
                    ORDER BY m.stream_ordering LIMIT 5)
                UNION ALL SELECT * FROM (SELECT m.stream_ordering, m.user_id FROM memberships m
                    WHERE m.room_id = r.value AND m.membership = 'ban' AND m.user_id != ?2
                    ORDER BY m.stream_ordering LIMIT 5)) h))
     FROM json_each(?1) r";

/// One room's [`MemberSummary`] as `me` sees it (none for a room without members).
pub async fn summary(ex: impl SqliteExecutor<'_>, room: &str, me: &str) -> sqlx::Result<MemberSummary> {
    Ok(summaries_many(ex, &[room], me).await?.pop().map(|(_, s)| s).unwrap_or_default())
}

/// Each room's [`MemberSummary`] as `me` sees it, by room ID.
pub async fn summaries_many(
    ex: impl SqliteExecutor<'_>,
    rooms: &[&str],
    me: &str,
) -> sqlx::Result<Vec<(String, MemberSummary)>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, i64, i64, String)> =
        sqlx::query_as(SUMMARIES_MANY).bind(serde_json::json!(rooms).to_string()).bind(me).fetch_all(ex).await?;
    rows.into_iter()
        .map(|(room, joined, invited, heroes)| {
            // (stream position, user): the first five of two memberships; an aggregate over an
            // ordered subquery does not promise to keep its order.
            let mut candidates: Vec<(i64, String)> =
                serde_json::from_str(&heroes).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            candidates.sort_unstable_by_key(|(pos, _)| *pos);
            let heroes = candidates.into_iter().map(|(_, u)| u).take(HEROES).collect();
            Ok((room, MemberSummary { joined, invited, heroes }))
        })
        .collect()
}

// ----- aliases ----------------------------------------------------------------------------

/// Returns `false` when the alias is taken.
pub async fn insert_alias(
    ex: impl SqliteExecutor<'_>,
    alias: &str,
    room_id: &str,
    creator: &str,
) -> sqlx::Result<bool> {
    let r = sqlx::query("INSERT INTO room_aliases (alias, room_id, creator) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        .bind(alias)
        .bind(room_id)
        .bind(creator)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn resolve_alias(ex: impl SqliteExecutor<'_>, alias: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT room_id, creator FROM room_aliases WHERE alias = ?").bind(alias).fetch_optional(ex).await
}

pub async fn delete_alias(ex: impl SqliteExecutor<'_>, alias: &str) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM room_aliases WHERE alias = ?").bind(alias).execute(ex).await?;
    Ok(r.rows_affected() == 1)
}

/// Rooms published in the room directory.
pub async fn public_rooms(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT room_id FROM rooms WHERE is_public = 1").fetch_all(ex).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub async fn is_public(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Option<bool>> {
    let row: Option<(bool,)> =
        sqlx::query_as("SELECT is_public FROM rooms WHERE room_id = ?").bind(room_id).fetch_optional(ex).await?;
    Ok(row.map(|r| r.0))
}

pub async fn aliases_of(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT alias FROM room_aliases WHERE room_id = ? ORDER BY alias")
        .bind(room_id)
        .fetch_all(ex)
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Rooms both users are joined to.
pub async fn shared_rooms(ex: impl SqliteExecutor<'_>, a: &str, b: &str) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT m1.room_id FROM memberships m1 JOIN memberships m2 ON m1.room_id = m2.room_id
         WHERE m1.user_id = ? AND m2.user_id = ? AND m1.membership = 'join' AND m2.membership = 'join' ORDER BY m1.room_id",
    )
    .bind(a)
    .bind(b)
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Points every alias of `from` at `to` (room upgrades).
pub async fn move_aliases(ex: impl SqliteExecutor<'_>, from: &str, to: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE room_aliases SET room_id = ? WHERE room_id = ?").bind(to).bind(from).execute(ex).await?;
    Ok(())
}

/// (user_id, display name) of the room's joined members, read from their member events.
pub async fn joined_display_names(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
) -> sqlx::Result<Vec<(String, Option<String>)>> {
    sqlx::query_as(
        "SELECT m.user_id, json_extract(COALESCE(e.redacted_json, e.pdu), '$.content.displayname')
         FROM memberships m JOIN events e ON e.event_id = m.event_id
         WHERE m.room_id = ? AND m.membership = 'join'",
    )
    .bind(room_id)
    .fetch_all(ex)
    .await
}

/// Other users whose membership changed in (from, to] in a room `user_id` is joined to or
/// left in that window: (user, membership now).
pub async fn membership_changes_around(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT DISTINCT o.user_id, o.membership FROM memberships m CROSS JOIN memberships o ON o.room_id = m.room_id
         WHERE m.user_id = ?1 AND (m.membership = 'join' OR m.stream_ordering > ?2)
           AND o.user_id != ?1 AND o.stream_ordering > ?2 AND o.stream_ordering <= ?3",
    )
    .bind(user_id)
    .bind(from)
    .bind(to)
    .fetch_all(ex)
    .await
}

/// Every room this server knows, newest first: (room_id, creator, created_ts).
pub async fn all_rooms(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as("SELECT room_id, creator, created_ts FROM rooms ORDER BY created_ts DESC, room_id")
        .fetch_all(ex)
        .await
}

/// (user_id, membership, display name) of everyone with a membership in the room, for the
/// dashboard; the name comes from their member event.
pub async fn members_with_names(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
) -> sqlx::Result<Vec<(String, String, Option<String>)>> {
    sqlx::query_as(
        "SELECT m.user_id, m.membership, json_extract(COALESCE(e.redacted_json, e.pdu), '$.content.displayname')
         FROM memberships m JOIN events e ON e.event_id = m.event_id
         WHERE m.room_id = ? ORDER BY m.membership = 'join' DESC, m.user_id",
    )
    .bind(room_id)
    .fetch_all(ex)
    .await
}

/// Rooms this server knows, joined or not.
pub async fn count(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM rooms").fetch_one(ex).await?;
    Ok(n)
}

/// Marks the room forgotten by the user as of their membership event `event_id`.
pub async fn forget(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    room_id: &str,
    event_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO forgotten_rooms (user_id, room_id, event_id, forgotten_ts) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, room_id) DO UPDATE SET event_id = excluded.event_id, forgotten_ts = excluded.forgotten_ts",
    )
    .bind(user_id)
    .bind(room_id)
    .bind(event_id)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Whether membership row `m` is forgotten: left or banned, and forgotten since (with the
/// `on_leave` parameter, `$on_leave` in the SQL, every room left or banned from is). A macro, so
/// queries stay static strings.
macro_rules! forgotten {
    ($on_leave:literal) => {
        concat!(
            "m.membership IN ('leave', 'ban') AND (",
            $on_leave,
            " OR EXISTS (SELECT 1 FROM forgotten_rooms f
             WHERE f.user_id = m.user_id AND f.room_id = m.room_id AND f.event_id = m.event_id))"
        )
    };
}
pub(crate) use forgotten;

/// Whether the user forgot the room (see `forgotten!`).
pub async fn is_forgotten(
    ex: impl SqliteExecutor<'_>,
    room_id: &str,
    user_id: &str,
    on_leave: bool,
) -> sqlx::Result<bool> {
    let (forgotten,): (bool,) = sqlx::query_as(concat!(
        "SELECT EXISTS (SELECT 1 FROM memberships m WHERE m.room_id = ? AND m.user_id = ? AND ",
        forgotten!("?"),
        ")"
    ))
    .bind(room_id)
    .bind(user_id)
    .bind(on_leave)
    .fetch_one(ex)
    .await?;
    Ok(forgotten)
}

/// The rooms the user forgot (see `forgotten!`).
pub async fn forgotten_rooms(ex: impl SqliteExecutor<'_>, user_id: &str, on_leave: bool) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> =
        sqlx::query_as(concat!("SELECT m.room_id FROM memberships m WHERE m.user_id = ? AND ", forgotten!("?")))
            .bind(user_id)
            .bind(on_leave)
            .fetch_all(ex)
            .await?;
    Ok(rows.into_iter().map(|(r,)| r).collect())
}

/// What Synapse's admin API shows of a room's row: (creator, room version, published).
pub async fn admin_row(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Option<(String, String, bool)>> {
    sqlx::query_as("SELECT creator, room_version, is_public FROM rooms WHERE room_id = ?")
        .bind(room_id)
        .fetch_optional(ex)
        .await
}

/// How many state entries the room has now.
pub async fn state_count(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM current_state WHERE room_id = ?").bind(room_id).fetch_one(ex).await?;
    Ok(n)
}

/// The devices of this server's users joined to the room (`suffix`: ":" and the server name).
pub async fn joined_local_devices(ex: impl SqliteExecutor<'_>, room_id: &str, suffix: &str) -> sqlx::Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM devices d JOIN memberships m ON m.user_id = d.user_id
         WHERE m.room_id = ? AND m.membership = 'join' AND substr(m.user_id, -length(?)) = ?",
    )
    .bind(room_id)
    .bind(suffix)
    .bind(suffix)
    .fetch_one(ex)
    .await?;
    Ok(n)
}

/// Blocks the room; blocking it again keeps who blocked it first.
pub async fn block(ex: impl SqliteExecutor<'_>, room_id: &str, user_id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT OR IGNORE INTO blocked_rooms (room_id, user_id, blocked_ts) VALUES (?, ?, ?)")
        .bind(room_id)
        .bind(user_id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn unblock(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM blocked_rooms WHERE room_id = ?").bind(room_id).execute(ex).await?;
    Ok(())
}

/// Who blocked the room, when it is blocked.
pub async fn blocked_by(ex: impl SqliteExecutor<'_>, room_id: &str) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT user_id FROM blocked_rooms WHERE room_id = ?").bind(room_id).fetch_optional(ex).await?;
    Ok(row.map(|(u,)| u))
}
