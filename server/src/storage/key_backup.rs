//! Server-side key backup: versions and the encrypted room keys in them.

use sqlx::{SqliteConnection, SqliteExecutor};

/// A backup version: (version, algorithm JSON, etag, key count).
pub type VersionRow = (i64, String, i64, i64);

/// The user's latest live version, or the given one if it is live.
pub async fn version(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    version: Option<i64>,
) -> sqlx::Result<Option<VersionRow>> {
    sqlx::query_as(
        "SELECT v.version, v.algorithm, v.etag, (SELECT COUNT(*) FROM backup_keys k WHERE k.user_id = v.user_id AND k.version = v.version)
         FROM backup_versions v WHERE v.user_id = ?1 AND v.deleted = 0 AND (?2 IS NULL OR v.version = ?2)
         ORDER BY v.version DESC LIMIT 1",
    )
    .bind(user_id)
    .bind(version)
    .fetch_optional(ex)
    .await
}

/// Creates the next version (numbers are never reused).
pub async fn create(ex: impl SqliteExecutor<'_>, user_id: &str, algorithm: &str) -> sqlx::Result<i64> {
    let (v,): (i64,) = sqlx::query_as(
        "INSERT INTO backup_versions (user_id, version, algorithm)
         VALUES (?1, (SELECT COALESCE(MAX(version), 0) + 1 FROM backup_versions WHERE user_id = ?1), ?2)
         RETURNING version",
    )
    .bind(user_id)
    .bind(algorithm)
    .fetch_one(ex)
    .await?;
    Ok(v)
}

pub async fn set_algorithm(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    version: i64,
    algorithm: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE backup_versions SET algorithm = ? WHERE user_id = ? AND version = ? AND deleted = 0")
        .bind(algorithm)
        .bind(user_id)
        .bind(version)
        .execute(ex)
        .await?;
    Ok(())
}

/// Marks the version deleted and drops its keys; false when there was no such live version.
pub async fn delete_version(conn: &mut SqliteConnection, user_id: &str, version: i64) -> sqlx::Result<bool> {
    let r = sqlx::query("UPDATE backup_versions SET deleted = 1 WHERE user_id = ? AND version = ? AND deleted = 0")
        .bind(user_id)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM backup_keys WHERE user_id = ? AND version = ?")
        .bind(user_id)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// A key to store: (room, session, first_message_index, forwarded_count, is_verified, JSON).
pub type NewKey = (String, String, i64, i64, bool, String);

/// Stores keys, each replacing a stored key of the same session only when the spec's order
/// prefers it (verified over not, then the lower first_message_index, then the lower
/// forwarded_count); moves the etag when anything changed.
pub async fn put_keys(conn: &mut SqliteConnection, user_id: &str, version: i64, keys: &[NewKey]) -> sqlx::Result<()> {
    let rows: Vec<serde_json::Value> =
        keys.iter().map(|(r, s, fmi, fc, v, d)| serde_json::json!([r, s, fmi, fc, *v as i64, d])).collect();
    let r = sqlx::query(
        "INSERT INTO backup_keys (user_id, version, room_id, session_id, first_message_index, forwarded_count, is_verified, data)
         SELECT ?, ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]')
         FROM json_each(?) WHERE true
         ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET
             first_message_index = excluded.first_message_index, forwarded_count = excluded.forwarded_count,
             is_verified = excluded.is_verified, data = excluded.data
         WHERE excluded.is_verified > is_verified
            OR (excluded.is_verified = is_verified AND excluded.first_message_index < first_message_index)
            OR (excluded.is_verified = is_verified AND excluded.first_message_index = first_message_index
                AND excluded.forwarded_count < forwarded_count)",
    )
    .bind(user_id)
    .bind(version)
    .bind(serde_json::Value::Array(rows).to_string())
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() > 0 {
        bump_etag(conn, user_id, version).await?;
    }
    Ok(())
}

async fn bump_etag(conn: &mut SqliteConnection, user_id: &str, version: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE backup_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?")
        .bind(user_id)
        .bind(version)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Stored keys (room, session, JSON), narrowed to a room and a session when given.
pub async fn keys(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    version: i64,
    room: Option<&str>,
    session: Option<&str>,
) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query_as(
        "SELECT room_id, session_id, data FROM backup_keys
         WHERE user_id = ?1 AND version = ?2 AND (?3 IS NULL OR room_id = ?3) AND (?4 IS NULL OR session_id = ?4)
         ORDER BY room_id, session_id",
    )
    .bind(user_id)
    .bind(version)
    .bind(room)
    .bind(session)
    .fetch_all(ex)
    .await
}

pub async fn delete_keys(
    conn: &mut SqliteConnection,
    user_id: &str,
    version: i64,
    room: Option<&str>,
    session: Option<&str>,
) -> sqlx::Result<()> {
    let r = sqlx::query(
        "DELETE FROM backup_keys WHERE user_id = ?1 AND version = ?2 AND (?3 IS NULL OR room_id = ?3) AND (?4 IS NULL OR session_id = ?4)",
    )
    .bind(user_id)
    .bind(version)
    .bind(room)
    .bind(session)
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() > 0 {
        bump_etag(conn, user_id, version).await?;
    }
    Ok(())
}
