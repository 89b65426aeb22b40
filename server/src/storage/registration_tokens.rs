//! Registration tokens (invite codes), in the shape of Synapse's admin API.

use serde::Serialize;
use sqlx::{FromRow, SqliteExecutor};

#[derive(Debug, Clone, FromRow, Serialize, PartialEq)]
pub struct RegistrationToken {
    pub token: String,
    pub uses_allowed: Option<i64>,
    pub pending: i64,
    pub completed: i64,
    pub expiry_time: Option<i64>,
}

impl RegistrationToken {
    /// Whether the token can still start a registration at `now`.
    pub fn is_valid(&self, now: i64) -> bool {
        self.expiry_time.is_none_or(|t| t > now) && self.uses_allowed.is_none_or(|n| self.pending + self.completed < n)
    }
}

const COLUMNS: &str = "token, uses_allowed, pending, completed, expiry_time";

pub async fn list(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Vec<RegistrationToken>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM registration_tokens ORDER BY token")))
        .fetch_all(ex)
        .await
}

pub async fn get(ex: impl SqliteExecutor<'_>, token: &str) -> sqlx::Result<Option<RegistrationToken>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM registration_tokens WHERE token = ?")))
        .bind(token)
        .fetch_optional(ex)
        .await
}

/// Returns `false` when the token already exists.
pub async fn insert(
    ex: impl SqliteExecutor<'_>,
    token: &str,
    uses_allowed: Option<i64>,
    expiry_time: Option<i64>,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "INSERT INTO registration_tokens (token, uses_allowed, expiry_time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(token)
    .bind(uses_allowed)
    .bind(expiry_time)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn update(
    ex: impl SqliteExecutor<'_>,
    token: &str,
    uses_allowed: Option<Option<i64>>,
    expiry_time: Option<Option<i64>>,
) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE registration_tokens SET
            uses_allowed = CASE WHEN ?1 THEN ?2 ELSE uses_allowed END,
            expiry_time  = CASE WHEN ?3 THEN ?4 ELSE expiry_time END
         WHERE token = ?5",
    )
    .bind(uses_allowed.is_some())
    .bind(uses_allowed.flatten())
    .bind(expiry_time.is_some())
    .bind(expiry_time.flatten())
    .bind(token)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete(ex: impl SqliteExecutor<'_>, token: &str) -> sqlx::Result<bool> {
    let r = sqlx::query("DELETE FROM registration_tokens WHERE token = ?").bind(token).execute(ex).await?;
    Ok(r.rows_affected() == 1)
}

/// Reserves one use of the token for a registration in progress. Returns `false` when the token
/// is unknown, expired or used up; the check and the increment are one statement, so two
/// registrations racing for the last use cannot both get it.
pub async fn reserve(ex: impl SqliteExecutor<'_>, token: &str, now: i64) -> sqlx::Result<bool> {
    let r = sqlx::query(
        "UPDATE registration_tokens SET pending = pending + 1
         WHERE token = ? AND (expiry_time IS NULL OR expiry_time > ?)
           AND (uses_allowed IS NULL OR pending + completed < uses_allowed)",
    )
    .bind(token)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Turns a reserved use into a completed one, when the registration finishes.
pub async fn complete(ex: impl SqliteExecutor<'_>, token: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE registration_tokens SET pending = MAX(pending - 1, 0), completed = completed + 1 WHERE token = ?",
    )
    .bind(token)
    .execute(ex)
    .await?;
    Ok(())
}

/// Forgets every reservation: the UIA sessions that held them did not survive a restart.
pub async fn reset_pending(ex: impl SqliteExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query("UPDATE registration_tokens SET pending = 0").execute(ex).await?;
    Ok(())
}

/// Gives a reserved use back, when a registration session expires unfinished.
pub async fn release(ex: impl SqliteExecutor<'_>, token: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE registration_tokens SET pending = MAX(pending - 1, 0) WHERE token = ?")
        .bind(token)
        .execute(ex)
        .await?;
    Ok(())
}
