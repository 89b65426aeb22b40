//! The admin key's hash (`admin_key`, one row).

use sqlx::SqliteExecutor;

pub async fn get(ex: impl SqliteExecutor<'_>) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar("SELECT sha256 FROM admin_key WHERE id = 1").fetch_optional(ex).await
}

pub async fn set(ex: impl SqliteExecutor<'_>, sha256: &[u8]) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO admin_key (id, sha256) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET sha256 = excluded.sha256",
    )
    .bind(sha256)
    .execute(ex)
    .await?;
    Ok(())
}
