//! Access, refresh and login tokens. Only SHA-256 hashes of tokens are stored.

use sqlx::{FromRow, SqliteExecutor};

#[derive(Debug, Clone, FromRow)]
pub struct RefreshTokenRow {
    pub id: i64,
    pub prev_refresh_id: Option<i64>,
    pub user_id: String,
    pub device_id: String,
    pub expires_ts: Option<i64>,
}

pub async fn insert_access(
    ex: impl SqliteExecutor<'_>,
    hash: &[u8],
    user_id: &str,
    device_id: &str,
    now: i64,
    expires_ts: Option<i64>,
    refresh_token_id: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts, refresh_token_id) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .bind(expires_ts)
    .bind(refresh_token_id)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn insert_refresh(
    ex: impl SqliteExecutor<'_>,
    hash: &[u8],
    user_id: &str,
    device_id: &str,
    now: i64,
    expires_ts: Option<i64>,
    prev_refresh_id: Option<i64>,
) -> sqlx::Result<i64> {
    let r = sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, expires_ts, prev_refresh_id) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash)
    .bind(user_id)
    .bind(device_id)
    .bind(now)
    .bind(expires_ts)
    .bind(prev_refresh_id)
    .execute(ex)
    .await?;
    Ok(r.last_insert_rowid())
}

pub async fn find_refresh(ex: impl SqliteExecutor<'_>, hash: &[u8]) -> sqlx::Result<Option<RefreshTokenRow>> {
    sqlx::query_as(
        "SELECT id, prev_refresh_id, user_id, device_id, expires_ts FROM refresh_tokens WHERE token_hash = ?",
    )
    .bind(hash)
    .fetch_optional(ex)
    .await
}

/// Deletes a refresh token and, by cascade, the access tokens issued with it.
pub async fn delete_refresh(ex: impl SqliteExecutor<'_>, id: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM refresh_tokens WHERE id = ?").bind(id).execute(ex).await?;
    Ok(())
}

/// Token `me` has been used: revoke the token it replaced and any other replacement issued for
/// that one by a retried /refresh (spec: "Refreshing access tokens").
pub async fn revoke_replaced(conn: &mut sqlx::SqliteConnection, me: i64, prev: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM refresh_tokens WHERE id = ?1 OR (prev_refresh_id = ?1 AND id <> ?2)")
        .bind(prev)
        .bind(me)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE refresh_tokens SET prev_refresh_id = NULL WHERE id = ?").bind(me).execute(&mut *conn).await?;
    Ok(())
}

pub async fn delete_for_device(ex: impl SqliteExecutor<'_>, user_id: &str, device_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = ? AND device_id = ?")
        .bind(user_id)
        .bind(device_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete_access_for_device(ex: impl SqliteExecutor<'_>, user_id: &str, device_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?")
        .bind(user_id)
        .bind(device_id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn insert_login_token(
    ex: impl SqliteExecutor<'_>,
    hash: &[u8],
    user_id: &str,
    expires_ts: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO login_tokens (token_hash, user_id, expires_ts) VALUES (?, ?, ?)")
        .bind(hash)
        .bind(user_id)
        .bind(expires_ts)
        .execute(ex)
        .await?;
    Ok(())
}

/// Consumes a login token: deletes it and returns its user if it had not expired. Single use even
/// under concurrency, since the delete and the read are one statement.
pub async fn take_login_token(ex: impl SqliteExecutor<'_>, hash: &[u8], now: i64) -> sqlx::Result<Option<String>> {
    let row: Option<(String, i64)> =
        sqlx::query_as("DELETE FROM login_tokens WHERE token_hash = ? RETURNING user_id, expires_ts")
            .bind(hash)
            .fetch_optional(ex)
            .await?;
    Ok(row.filter(|(_, exp)| *exp > now).map(|(u, _)| u))
}

/// Everything needed to authenticate a request, in one indexed lookup.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub device_id: String,
    pub expires_ts: Option<i64>,
    pub is_admin: bool,
    pub is_guest: bool,
    pub deactivated: bool,
    pub locked: bool,
    pub suspended: bool,
    pub shadow_banned: bool,
    /// The device is hidden: an admin acting as the user.
    pub hidden: bool,
    pub last_seen_ts: Option<i64>,
    pub refresh_token_id: Option<i64>,
    pub prev_refresh_id: Option<i64>,
}

pub async fn find_session(ex: impl SqliteExecutor<'_>, hash: &[u8]) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "SELECT t.token_hash, t.user_id, t.device_id, t.expires_ts,
                u.is_admin, u.is_guest, u.deactivated, u.locked, u.suspended, u.shadow_banned, d.hidden, d.last_seen_ts,
                t.refresh_token_id, r.prev_refresh_id
         FROM access_tokens t
         JOIN users u ON u.user_id = t.user_id
         JOIN devices d ON d.user_id = t.user_id AND d.device_id = t.device_id
         LEFT JOIN refresh_tokens r ON r.id = t.refresh_token_id
         WHERE t.token_hash = ?",
    )
    .bind(hash)
    .fetch_optional(ex)
    .await
}
