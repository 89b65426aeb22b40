//! OpenID tokens (`openid_tokens`), by their SHA-256.

use sqlx::SqliteExecutor;

/// Stores a token and drops the expired ones.
pub async fn insert(
    ex: impl SqliteExecutor<'_> + Copy,
    sha256: &[u8],
    user_id: &str,
    expires_ts: i64,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM openid_tokens WHERE expires_ts <= ?").bind(now).execute(ex).await?;
    sqlx::query("INSERT INTO openid_tokens (token_sha256, user_id, expires_ts) VALUES (?, ?, ?)")
        .bind(sha256)
        .bind(user_id)
        .bind(expires_ts)
        .execute(ex)
        .await?;
    Ok(())
}

/// The user of a token that has not expired, if the account is still active.
pub async fn user(ex: impl SqliteExecutor<'_>, sha256: &[u8], now: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT t.user_id FROM openid_tokens t JOIN users u ON u.user_id = t.user_id
         WHERE t.token_sha256 = ? AND t.expires_ts > ? AND u.deactivated = 0",
    )
    .bind(sha256)
    .bind(now)
    .fetch_optional(ex)
    .await
}
