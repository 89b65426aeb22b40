//! The `settings` table: what the setup wizard and the dashboard chose, as JSON values by key.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::SqliteExecutor;

pub async fn all(ex: impl SqliteExecutor<'_>) -> sqlx::Result<BTreeMap<String, Value>> {
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT key, value FROM settings").fetch_all(ex).await?;
    Ok(rows.into_iter().filter_map(|(k, v)| Some((k, serde_json::from_str(&v).ok()?))).collect())
}

/// One setting (None when unset or not JSON).
pub async fn get(ex: impl SqliteExecutor<'_>, key: &str) -> sqlx::Result<Option<Value>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT value FROM settings WHERE key = ?").bind(key).fetch_optional(ex).await?;
    Ok(row.and_then(|(v,)| serde_json::from_str(&v).ok()))
}

pub async fn set(ex: impl SqliteExecutor<'_>, key: &str, value: &Value) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value.to_string())
    .execute(ex)
    .await?;
    Ok(())
}
