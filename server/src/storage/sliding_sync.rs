//! Sliding sync connections and the positions handed out on them (see the migration
//! `sliding_sync`).

use sqlx::SqliteExecutor;

/// Connections kept per device: a client uses two or three (room list, encryption); past this
/// the least recently used go, so conn_ids made up by a client cannot fill the database.
pub const MAX_CONNECTIONS_PER_DEVICE: i64 = 16;

/// A new connection for (user, device, conn_id), replacing any earlier one and its positions
/// (a request without `pos` starts over), and forgetting the device's least recently used
/// connections past `MAX_CONNECTIONS_PER_DEVICE`. Returns its id.
pub async fn reset_connection(
    tx: &mut sqlx::SqliteConnection,
    user: &str,
    device: &str,
    conn_id: &str,
    now: i64,
) -> sqlx::Result<i64> {
    let old: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM sliding_sync_connections WHERE user_id = ? AND device_id = ? AND conn_id = ?",
    )
    .bind(user)
    .bind(device)
    .bind(conn_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = old {
        sqlx::query("DELETE FROM sliding_sync_positions WHERE connection_id = ?").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sliding_sync_connections WHERE id = ?").bind(id).execute(&mut *tx).await?;
    }
    let id = sqlx::query_scalar("INSERT INTO sliding_sync_connections (user_id, device_id, conn_id, last_used_ts) VALUES (?, ?, ?, ?) RETURNING id")
        .bind(user)
        .bind(device)
        .bind(conn_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    let surplus = "SELECT id FROM sliding_sync_connections WHERE user_id = ?1 AND device_id = ?2
                   ORDER BY last_used_ts DESC, id DESC LIMIT -1 OFFSET ?3";
    for table in ["sliding_sync_positions WHERE connection_id", "sliding_sync_connections WHERE id"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} IN ({surplus})")))
            .bind(user)
            .bind(device)
            .bind(MAX_CONNECTIONS_PER_DEVICE)
            .execute(&mut *tx)
            .await?;
    }
    Ok(id)
}

/// The token and per-room state stored for `pos` of connection `id`, if that connection
/// belongs to (user, device, conn_id).
pub async fn position(
    ex: impl SqliteExecutor<'_>,
    id: i64,
    user: &str,
    device: &str,
    conn_id: &str,
    pos: i64,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT p.token, p.rooms FROM sliding_sync_positions p JOIN sliding_sync_connections c ON c.id = p.connection_id
         WHERE c.id = ? AND c.user_id = ? AND c.device_id = ? AND c.conn_id = ? AND p.pos = ?",
    )
    .bind(id)
    .bind(user)
    .bind(device)
    .bind(conn_id)
    .bind(pos)
    .fetch_optional(ex)
    .await
}

/// Stores position `pos` and forgets every other one except `keep` (the one the client sent,
/// which it may send again if this answer is lost). Returns `false`, storing nothing, when
/// the connection is gone meanwhile (its device was removed, or it was started over or
/// pushed out by newer ones while this answer was being built).
pub async fn store_position(
    tx: &mut sqlx::SqliteConnection,
    id: i64,
    keep: Option<i64>,
    pos: i64,
    token: &str,
    rooms: &str,
    now: i64,
) -> sqlx::Result<bool> {
    let there = sqlx::query("UPDATE sliding_sync_connections SET last_used_ts = ? WHERE id = ?")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if there.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM sliding_sync_positions WHERE connection_id = ? AND pos <> ?")
        .bind(id)
        .bind(keep.unwrap_or(-1))
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT OR REPLACE INTO sliding_sync_positions (connection_id, pos, token, rooms) VALUES (?, ?, ?, ?)")
        .bind(id)
        .bind(pos)
        .bind(token)
        .bind(rooms)
        .execute(&mut *tx)
        .await?;
    Ok(true)
}

/// Forgets connections unused since `before` (their `pos` then answers M_UNKNOWN_POS).
pub async fn expire(ex: &mut sqlx::SqliteConnection, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM sliding_sync_positions WHERE connection_id IN (SELECT id FROM sliding_sync_connections WHERE last_used_ts < ?)")
        .bind(before)
        .execute(&mut *ex)
        .await?;
    Ok(sqlx::query("DELETE FROM sliding_sync_connections WHERE last_used_ts < ?")
        .bind(before)
        .execute(&mut *ex)
        .await?
        .rows_affected())
}

/// Event types that move a room up a sliding sync list (`bump_stamp`), as in MSC4186 and
/// Synapse. `latest_bump` spells them out in its SQL; a test keeps the two equal.
pub const BUMP_TYPES: &[&str] = &[
    "m.room.create",
    "m.room.message",
    "m.room.encrypted",
    "m.sticker",
    "m.call.invite",
    "m.poll.start",
    "m.beacon_info",
];

const LATEST_BUMP: &str = "SELECT stream_ordering FROM events WHERE room_id = ?1 AND stream_ordering <= ?2 AND rejected = 0 AND outlier = 0
    AND event_type IN ('m.room.create', 'm.room.message', 'm.room.encrypted', 'm.sticker', 'm.call.invite', 'm.poll.start', 'm.beacon_info')
    ORDER BY stream_ordering DESC LIMIT 1";

/// The latest event of a `BUMP_TYPES` type in the room at or before `upto`.
pub async fn latest_bump(ex: impl SqliteExecutor<'_>, room_id: &str, upto: i64) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(LATEST_BUMP).bind(room_id).bind(upto).fetch_optional(ex).await
}

/// `latest_bump` for several rooms in one query (one JSON array, see
/// `events::latest_per_room`); rooms without such an event are left out.
pub async fn latest_bump_many(
    ex: impl SqliteExecutor<'_>,
    rooms: &[&str],
    upto: i64,
) -> sqlx::Result<Vec<(String, i64)>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let inner = LATEST_BUMP.replace("?1", "r.value");
    let (text,): (String,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT json_group_array(json_array(r.value, ({inner}))) FROM json_each(?1) r"
    )))
    .bind(serde_json::json!(rooms).to_string())
    .bind(upto)
    .fetch_one(ex)
    .await?;
    let rows: Vec<(String, Option<i64>)> = serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(rows.into_iter().filter_map(|(room, bump)| Some((room, bump?))).collect())
}

/// (room, encrypted, room type) of the given rooms by their current state: whether they have
/// `m.room.encryption`, and their create event's `type`. One query for all rooms.
pub async fn room_facts_many(
    ex: impl SqliteExecutor<'_>,
    rooms: &[&str],
) -> sqlx::Result<Vec<(String, bool, Option<String>)>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    let (text,): (String,) = sqlx::query_as(
        "SELECT json_group_array(json_array(r.value,
             EXISTS (SELECT 1 FROM current_state WHERE room_id = r.value AND event_type = 'm.room.encryption' AND state_key = ''),
             (SELECT CASE WHEN json_type(e.pdu, '$.content.type') = 'text' THEN json_extract(e.pdu, '$.content.type') END
              FROM current_state c JOIN events e ON e.event_id = c.event_id
              WHERE c.room_id = r.value AND c.event_type = 'm.room.create' AND c.state_key = '')))
         FROM json_each(?) r",
    )
    .bind(serde_json::json!(rooms).to_string())
    .fetch_one(ex)
    .await?;
    let rows: Vec<(String, i64, Option<String>)> =
        serde_json::from_str(&text).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(rows.into_iter().map(|(room, encrypted, room_type)| (room, encrypted != 0, room_type)).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sql_names_every_bump_type() {
        for t in super::BUMP_TYPES {
            assert!(super::LATEST_BUMP.contains(&format!("'{t}'")), "{t}");
        }
        assert_eq!(super::LATEST_BUMP.matches("'m.").count(), super::BUMP_TYPES.len());
    }
}
