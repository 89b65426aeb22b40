//! Other servers' users' device lists, kept while they share a room with a user of this server
//! (migration 26).

use sqlx::{FromRow, SqliteConnection, SqliteExecutor};

/// A kept list: its position, whether it must be fetched again, the user's cross-signing keys
/// (JSON).
#[derive(Debug, Clone, FromRow)]
pub struct KeptList {
    pub stream_id: i64,
    pub stale: bool,
    pub master_key: Option<String>,
    pub self_signing_key: Option<String>,
}

pub async fn list(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Option<KeptList>> {
    sqlx::query_as("SELECT stream_id, stale, master_key, self_signing_key FROM remote_device_lists WHERE user_id = ?")
        .bind(user_id)
        .fetch_optional(ex)
        .await
}

/// The user's kept devices: (device ID, keys JSON).
pub async fn devices(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT device_id, keys FROM remote_devices WHERE user_id = ? ORDER BY device_id")
        .bind(user_id)
        .fetch_all(ex)
        .await
}

/// The whole list as the user's server answered it (`/user/devices`), in place of what was kept.
pub async fn replace(
    conn: &mut SqliteConnection,
    user_id: &str,
    list: &KeptList,
    devices: &[(String, String)],
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM remote_devices WHERE user_id = ?").bind(user_id).execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO remote_device_lists (user_id, stream_id, stale, master_key, self_signing_key, fetched_ts)
         VALUES (?, ?, 0, ?, ?, ?)
         ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id, stale = 0,
             master_key = excluded.master_key, self_signing_key = excluded.self_signing_key,
             fetched_ts = excluded.fetched_ts",
    )
    .bind(user_id)
    .bind(list.stream_id)
    .bind(&list.master_key)
    .bind(&list.self_signing_key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    for (device, keys) in devices {
        sqlx::query("INSERT INTO remote_devices (user_id, device_id, keys) VALUES (?, ?, ?)")
            .bind(user_id)
            .bind(device)
            .bind(keys)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// One device's update (`keys` None: the device is gone), moving the list to `stream_id`.
pub async fn update_device(
    conn: &mut SqliteConnection,
    user_id: &str,
    device_id: &str,
    keys: Option<&str>,
    stream_id: i64,
) -> sqlx::Result<()> {
    match keys {
        Some(keys) => {
            sqlx::query(
                "INSERT INTO remote_devices (user_id, device_id, keys) VALUES (?, ?, ?)
                 ON CONFLICT (user_id, device_id) DO UPDATE SET keys = excluded.keys",
            )
            .bind(user_id)
            .bind(device_id)
            .bind(keys)
            .execute(&mut *conn)
            .await?
        }
        None => {
            sqlx::query("DELETE FROM remote_devices WHERE user_id = ? AND device_id = ?")
                .bind(user_id)
                .bind(device_id)
                .execute(&mut *conn)
                .await?
        }
    };
    sqlx::query("UPDATE remote_device_lists SET stream_id = ? WHERE user_id = ?")
        .bind(stream_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// New cross-signing keys of the user (None leaves a key as it was).
pub async fn set_cross_signing(
    ex: impl SqliteExecutor<'_>,
    user_id: &str,
    master_key: Option<&str>,
    self_signing_key: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE remote_device_lists SET master_key = COALESCE(?, master_key),
             self_signing_key = COALESCE(?, self_signing_key) WHERE user_id = ?",
    )
    .bind(master_key)
    .bind(self_signing_key)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(())
}

/// The list missed an update: fetched whole again before it is used.
pub async fn mark_stale(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE remote_device_lists SET stale = 1 WHERE user_id = ?").bind(user_id).execute(ex).await?;
    Ok(())
}

/// Stops keeping the user's list (their devices go with it).
pub async fn forget(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM remote_device_lists WHERE user_id = ?").bind(user_id).execute(ex).await?;
    Ok(())
}

/// Whether `user_id` is joined to a room a user of this server (one with an account) is joined
/// to: whose device list this server keeps.
pub async fn shares_room_with_local_user(ex: impl SqliteExecutor<'_>, user_id: &str) -> sqlx::Result<bool> {
    let (found,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM memberships m1
             JOIN memberships m2 ON m2.room_id = m1.room_id AND m2.membership = 'join'
             JOIN users u ON u.user_id = m2.user_id
             WHERE m1.user_id = ? AND m1.membership = 'join')",
    )
    .bind(user_id)
    .fetch_one(ex)
    .await?;
    Ok(found)
}

/// Kept lists of users who share no room with a user of this server any more.
pub async fn untracked(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT l.user_id FROM remote_device_lists l WHERE NOT EXISTS (SELECT 1 FROM memberships m1
             JOIN memberships m2 ON m2.room_id = m1.room_id AND m2.membership = 'join'
             JOIN users u ON u.user_id = m2.user_id
             WHERE m1.user_id = l.user_id AND m1.membership = 'join')",
    )
    .fetch_all(ex)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
