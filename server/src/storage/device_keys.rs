//! End-to-end encryption keys: devices' identity keys, one-time and fallback keys, and the
//! stream of device list changes.

use std::collections::BTreeMap;

use sqlx::SqliteExecutor;

/// The stored device keys JSON of each requested device (all devices of the user when
/// `devices` is empty), with the device's display name.
pub async fn device_keys(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    devices: &[String],
) -> sqlx::Result<Vec<(String, String, Option<String>)>> {
    sqlx::query_as(
        "SELECT k.device_id, k.keys, d.display_name FROM device_keys k
         JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id
         WHERE k.user_id = ?1 AND (json_array_length(?2) = 0 OR k.device_id IN (SELECT value FROM json_each(?2)))",
    )
    .bind(user_id)
    .bind(serde_json::json!(devices).to_string())
    .fetch_all(ex)
    .await
}

/// Stores a device's keys; answers whether they differ from what was stored.
pub async fn put_device_keys(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    keys: &str,
) -> sqlx::Result<bool> {
    let changed: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO device_keys (user_id, device_id, keys) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, device_id) DO UPDATE SET keys = excluded.keys WHERE keys IS NOT excluded.keys
         RETURNING 1",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(keys)
    .fetch_optional(ex)
    .await?;
    Ok(changed.is_some())
}

/// The stored content of a one-time key, if the device has one with this ID.
pub async fn one_time_key(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    algorithm: &str,
    key_id: &str,
) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT key FROM one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(algorithm)
    .bind(key_id)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| r.0))
}

/// Adds one-time keys (algorithm, key ID, key JSON); keys already stored are left alone.
pub async fn add_one_time_keys(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    keys: &[(String, String, String)],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT OR IGNORE INTO one_time_keys (user_id, device_id, algorithm, key_id, key)
         SELECT ?, ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?)",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(serde_json::json!(keys).to_string())
    .execute(ex)
    .await?;
    Ok(())
}

/// Sets the device's fallback key for an algorithm (unused again).
pub async fn put_fallback_key(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    algorithm: &str,
    key_id: &str,
    key: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO fallback_keys (user_id, device_id, algorithm, key_id, key, used) VALUES (?, ?, ?, ?, ?, 0)
         ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, key = excluded.key,
             used = CASE WHEN key_id = excluded.key_id AND key = excluded.key THEN used ELSE 0 END",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(algorithm)
    .bind(key_id)
    .bind(key)
    .execute(ex)
    .await?;
    Ok(())
}

/// The device's unclaimed one-time keys per algorithm, and the algorithms of its unused
/// fallback keys, in one round trip.
pub async fn key_counts(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
) -> sqlx::Result<(BTreeMap<String, i64>, Vec<String>)> {
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT 0, algorithm, COUNT(*) FROM one_time_keys WHERE user_id = ?1 AND device_id = ?2 GROUP BY algorithm
         UNION ALL
         SELECT 1, algorithm, 0 FROM fallback_keys WHERE user_id = ?1 AND device_id = ?2 AND used = 0",
    )
    .bind(user_id)
    .bind(device_id)
    .fetch_all(ex)
    .await?;
    let mut counts = BTreeMap::new();
    let mut fallback = Vec::new();
    for (kind, algorithm, n) in rows {
        if kind == 0 {
            counts.insert(algorithm, n);
        } else {
            fallback.push(algorithm);
        }
    }
    Ok((counts, fallback))
}

/// Hands out one one-time key of the algorithm (removing it), else the fallback key (marking
/// it used): (key ID, key JSON). Two claims never get the same one-time key: every write goes
/// through the one writer connection and the key is deleted by the statement that returns it.
pub async fn claim(
    conn: &mut sqlx::SqliteConnection,
    user_id: &str,
    device_id: &str,
    algorithm: &str,
) -> sqlx::Result<Option<(String, String)>> {
    let otk: Option<(String, String)> = sqlx::query_as(
        "DELETE FROM one_time_keys WHERE (user_id, device_id, algorithm, key_id) IN (
             SELECT user_id, device_id, algorithm, key_id FROM one_time_keys
             WHERE user_id = ?1 AND device_id = ?2 AND algorithm = ?3 ORDER BY key_id LIMIT 1)
         RETURNING key_id, key",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(algorithm)
    .fetch_optional(&mut *conn)
    .await?;
    if otk.is_some() {
        return Ok(otk);
    }
    sqlx::query_as(
        "UPDATE fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ? RETURNING key_id, key",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(algorithm)
    .fetch_optional(&mut *conn)
    .await
}

/// Records that the user's device list changed: `device` (its keys or name), or the user's
/// cross-signing keys for None. Returns the stream position.
pub async fn device_list_changed(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device: Option<&str>,
) -> sqlx::Result<i64> {
    let (id,): (i64,) =
        sqlx::query_as("INSERT INTO device_list_changes (user_id, device_id) VALUES (?, ?) RETURNING stream_id")
            .bind(user_id)
            .bind(device)
            .fetch_one(ex)
            .await?;
    Ok(id)
}

/// The position of the user's latest device list change (0 for none): the `stream_id` other
/// servers are told their copy of the list is at.
pub async fn latest_change_of(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(stream_id) FROM device_list_changes WHERE user_id = ?")
        .bind(user_id)
        .fetch_one(ex)
        .await?;
    Ok(n.unwrap_or(0))
}

/// The latest device list change (0 for none).
pub async fn device_lists_head(ex: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    let (n,): (Option<i64>,) = sqlx::query_as("SELECT MAX(stream_id) FROM device_list_changes").fetch_one(ex).await?;
    Ok(n.unwrap_or(0))
}

/// Users whose device list changed in (from, to] among `users`.
pub async fn changed_among(
    ex: impl SqliteExecutor<'_>,
    users: &[String],
    from: i64,
    to: i64,
) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT user_id FROM device_list_changes
         WHERE stream_id > ? AND stream_id <= ? AND user_id IN (SELECT value FROM json_each(?))",
    )
    .bind(from)
    .bind(to)
    .bind(serde_json::json!(users).to_string())
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// The user's cross-signing key of this type (master, self_signing, user_signing), as uploaded.
pub async fn cross_signing_key(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    key_type: &str,
) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT key FROM cross_signing_keys WHERE user_id = ? AND key_type = ?")
            .bind(user_id)
            .bind(key_type)
            .fetch_optional(ex)
            .await?;
    Ok(row.map(|r| r.0))
}

pub async fn put_cross_signing_key(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    key_type: &str,
    key: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO cross_signing_keys (user_id, key_type, key) VALUES (?, ?, ?)
         ON CONFLICT (user_id, key_type) DO UPDATE SET key = excluded.key",
    )
    .bind(user_id)
    .bind(key_type)
    .bind(key)
    .execute(ex)
    .await?;
    Ok(())
}

/// A new master key makes every signature on the user's keys by the old ones meaningless.
pub async fn delete_signatures_by(ex: impl SqliteExecutor<'_>, signer_user: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM key_signatures WHERE signer_user = ? AND target_user = ?")
        .bind(signer_user)
        .bind(signer_user)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn put_signature(
    ex: impl SqliteExecutor<'_>,
    target_user: &str,
    target_key: &str,
    signer_user: &str,
    signer_key_id: &str,
    signature: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO key_signatures (target_user, target_key, signer_user, signer_key_id, signature) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT DO UPDATE SET signature = excluded.signature",
    )
    .bind(target_user)
    .bind(target_key)
    .bind(signer_user)
    .bind(signer_key_id)
    .bind(signature)
    .execute(ex)
    .await?;
    Ok(())
}

/// Uploaded signatures of the user's keys: (target key, signer user, signer key ID, signature).
pub async fn signatures_of(
    ex: impl SqliteExecutor<'_>,
    target_user: &str,
) -> sqlx::Result<Vec<(String, String, String, String)>> {
    sqlx::query_as("SELECT target_key, signer_user, signer_key_id, signature FROM key_signatures WHERE target_user = ?")
        .bind(target_user)
        .fetch_all(ex)
        .await
}

/// The user's dehydrated device: (device ID, device data JSON).
pub async fn dehydrated_device(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT device_id, device_data FROM dehydrated_devices WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// Marks a device as the user's dehydrated device.
pub async fn set_dehydrated_device(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    device_data: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO dehydrated_devices (user_id, device_id, device_data) VALUES (?, ?, ?)")
        .bind(user_id)
        .bind(device_id)
        .bind(device_data)
        .execute(ex)
        .await?;
    Ok(())
}
