//! Other servers' signing keys (`server_signing_keys`) and their signed key documents
//! (`server_key_documents`).

use sqlx::SqliteExecutor;

/// One stored verify key: (key ID, unpadded base64 key, valid until, expired at).
pub type StoredKey = (String, String, i64, Option<i64>);

pub async fn keys_of(ex: impl SqliteExecutor<'_>, server_name: &str) -> sqlx::Result<Vec<StoredKey>> {
    sqlx::query_as(
        "SELECT key_id, verify_key, valid_until_ts, expired_ts FROM server_signing_keys WHERE server_name = ?",
    )
    .bind(server_name)
    .fetch_all(ex)
    .await
}

/// Stores a key; a later document extends its validity, and one that lists it as old marks
/// it expired (never un-expires it).
pub async fn put_key(
    ex: impl SqliteExecutor<'_>,
    server_name: &str,
    key_id: &str,
    verify_key: &str,
    valid_until_ts: i64,
    expired_ts: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO server_signing_keys (server_name, key_id, verify_key, valid_until_ts, expired_ts)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (server_name, key_id) DO UPDATE SET
             verify_key = excluded.verify_key,
             valid_until_ts = MAX(valid_until_ts, excluded.valid_until_ts),
             expired_ts = COALESCE(MIN(expired_ts, excluded.expired_ts), expired_ts, excluded.expired_ts)",
    )
    .bind(server_name)
    .bind(key_id)
    .bind(verify_key)
    .bind(valid_until_ts)
    .bind(expired_ts)
    .execute(ex)
    .await?;
    Ok(())
}

/// The newest key document of a server and how long it is valid.
pub async fn document(ex: impl SqliteExecutor<'_>, server_name: &str) -> sqlx::Result<Option<(String, i64)>> {
    sqlx::query_as("SELECT document, valid_until_ts FROM server_key_documents WHERE server_name = ?")
        .bind(server_name)
        .fetch_optional(ex)
        .await
}

pub async fn put_document(
    ex: impl SqliteExecutor<'_>,
    server_name: &str,
    document: &str,
    valid_until_ts: i64,
    fetched_ts: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO server_key_documents (server_name, document, valid_until_ts, fetched_ts) VALUES (?, ?, ?, ?)
         ON CONFLICT (server_name) DO UPDATE SET document = excluded.document,
             valid_until_ts = excluded.valid_until_ts, fetched_ts = excluded.fetched_ts
         WHERE excluded.valid_until_ts >= server_key_documents.valid_until_ts",
    )
    .bind(server_name)
    .bind(document)
    .bind(valid_until_ts)
    .bind(fetched_ts)
    .execute(ex)
    .await?;
    Ok(())
}
