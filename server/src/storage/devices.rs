//! The `devices` table. Deleting a device cascades to its access and refresh tokens.

use sqlx::{FromRow, SqliteExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct DeviceRow {
    pub device_id: String,
    pub display_name: Option<String>,
    pub last_seen_ts: Option<i64>,
    pub last_seen_ip: Option<String>,
    pub last_seen_user_agent: Option<String>,
}

/// Creates the device, or keeps an existing one (its display name is left as it was, as the spec
/// says for a known `device_id` at login).
pub async fn upsert(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    display_name: Option<&str>,
    now: i64,
    ip: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO devices (user_id, device_id, display_name, created_ts, last_seen_ts, last_seen_ip)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, device_id) DO UPDATE SET last_seen_ts = excluded.last_seen_ts, last_seen_ip = excluded.last_seen_ip",
    )
    .bind(user_id)
    .bind(device_id)
    .bind(display_name)
    .bind(now)
    .bind(now)
    .bind(ip)
    .execute(ex)
    .await?;
    Ok(())
}

/// A hidden device (an admin's session as the user: see the `hidden_devices` migration).
pub async fn insert_hidden(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    display_name: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO devices (user_id, device_id, display_name, created_ts, hidden) VALUES (?, ?, ?, ?, 1)")
        .bind(user_id)
        .bind(device_id)
        .bind(display_name)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn list(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<DeviceRow>> {
    sqlx::query_as(
        "SELECT device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent FROM devices
         WHERE user_id = ? AND hidden = 0 ORDER BY created_ts, device_id",
    )
    .bind(user_id)
    .fetch_all(ex)
    .await
}

pub async fn get(ex: impl SqliteExecutor<'_>, user_id: &str, device_id: &str) -> sqlx::Result<Option<DeviceRow>> {
    sqlx::query_as(
        "SELECT device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent FROM devices
         WHERE user_id = ? AND device_id = ? AND hidden = 0",
    )
    .bind(user_id)
    .bind(device_id)
    .fetch_optional(ex)
    .await
}

/// Returns `false` when there is no such device.
pub async fn set_display_name(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    name: Option<&str>,
) -> sqlx::Result<bool> {
    let r = sqlx::query("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?")
        .bind(name)
        .bind(user_id)
        .bind(device_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn touch(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    device_id: &str,
    now: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?,
             last_seen_user_agent = COALESCE(?, last_seen_user_agent)
         WHERE user_id = ? AND device_id = ?",
    )
    .bind(now)
    .bind(ip)
    .bind(user_agent)
    .bind(user_id)
    .bind(device_id)
    .execute(ex)
    .await?;
    Ok(())
}

/// Deletes one device (and, by cascade, its tokens). Returns `false` when it did not exist.
pub async fn delete(ex: impl SqliteExecutor<'_>, user_id: &str, device_id: &str) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM devices WHERE user_id = ? AND device_id = ?")
        .bind(user_id)
        .bind(device_id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Deletes every device of the user except `keep`.
pub async fn delete_all_except(ex: impl SqliteExecutor<'_>, user_id: &str, keep: Option<&str>) -> sqlx::Result<u64> {
    let r = sqlx::query("DELETE FROM devices WHERE user_id = ? AND device_id IS NOT ?")
        .bind(user_id)
        .bind(keep)
        .execute(ex)
        .await?;
    Ok(r.rows_affected())
}
