//! Server-side key backup (spec: client-server API, "Server-side key backups"): versions
//! holding room keys that clients encrypted to a backup key the server never sees. The server
//! keeps, per session, the copy the spec prefers, and refuses writes to a version that is no
//! longer the current one, so two devices never split a backup between versions.

use serde_json::Value;

use crate::{
    error::{Error, Result},
    storage::{self, Db, key_backup::NewKey},
};

pub struct KeyBackup {
    db: Db,
}

/// A backup version as `GET /room_keys/version` shows it.
pub struct Info {
    pub version: String,
    /// `{"algorithm": ..., "auth_data": ...}`
    pub algorithm: Value,
    pub count: i64,
    pub etag: String,
}

fn not_found() -> Error {
    Error::not_found("No such backup version")
}

/// Version strings are numbers here; anything else names no version.
fn number(version: &str) -> Result<i64> {
    version.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(not_found)
}

/// `{"algorithm": string, "auth_data": ...}`, else M_BAD_JSON. `auth_data` is the algorithm's
/// business (clients read and check it); an algorithm this server does not know may shape it
/// any way, so any JSON is kept as given, as Synapse does.
fn check_algorithm(v: &Value) -> Result<String> {
    match (v["algorithm"].as_str(), v.get("auth_data").is_some_and(|a| !a.is_null())) {
        (Some(a), true) => Ok(a.to_owned()),
        _ => Err(Error::bad_json("A backup needs `algorithm` (a string) and `auth_data`")),
    }
}

/// Checks a KeyBackupData and returns what the replacement rules compare.
fn check_key(room: &str, session: &str, data: &Value) -> Result<NewKey> {
    let bad = |field: &str| Error::bad_json(format!("Key {room}/{session}: `{field}` is missing or of the wrong type"));
    let fmi = data["first_message_index"].as_i64().filter(|n| *n >= 0).ok_or_else(|| bad("first_message_index"))?;
    let fc = data["forwarded_count"].as_i64().filter(|n| *n >= 0).ok_or_else(|| bad("forwarded_count"))?;
    let verified = data["is_verified"].as_bool().ok_or_else(|| bad("is_verified"))?;
    if !data["session_data"].is_object() {
        return Err(bad("session_data"));
    }
    Ok((room.to_owned(), session.to_owned(), fmi, fc, verified, data.to_string()))
}

impl KeyBackup {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub async fn create(&self, user: &str, algorithm: &Value) -> Result<String> {
        check_algorithm(algorithm)?;
        Ok(storage::key_backup::create(&self.db.write, user, &algorithm.to_string()).await?.to_string())
    }

    /// The given version, or the latest when `None`.
    pub async fn info(&self, user: &str, version: Option<&str>) -> Result<Info> {
        let v = version.map(number).transpose()?;
        let (version, algorithm, etag, count) =
            storage::key_backup::version(&self.db.read, user, v).await?.ok_or_else(not_found)?;
        Ok(Info {
            version: version.to_string(),
            algorithm: serde_json::from_str(&algorithm).map_err(Error::internal)?,
            count,
            etag: etag.to_string(),
        })
    }

    /// Replaces the version's auth_data; the algorithm cannot change (spec).
    pub async fn update(&self, user: &str, version: &str, algorithm: &Value) -> Result<()> {
        let new = check_algorithm(algorithm)?;
        if let Some(v) = algorithm.get("version")
            && v.as_str() != Some(version)
        {
            return Err(Error::invalid_param("The version in the body does not match the one in the path"));
        }
        let info = self.info(user, Some(version)).await?;
        if info.algorithm["algorithm"].as_str() != Some(new.as_str()) {
            return Err(Error::invalid_param("A backup's algorithm cannot change; create a new version"));
        }
        let mut stored = algorithm.clone();
        if let Some(o) = stored.as_object_mut() {
            o.remove("version");
        }
        storage::key_backup::set_algorithm(&self.db.write, user, number(version)?, &stored.to_string()).await?;
        Ok(())
    }

    pub async fn delete(&self, user: &str, version: &str) -> Result<()> {
        let mut conn = self.db.write.acquire().await?;
        if storage::key_backup::delete_version(&mut conn, user, number(version)?).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Stores keys (room, session, KeyBackupData) in the current version; answers the
    /// version's (count, etag).
    pub async fn put_keys(
        &self,
        user: &str,
        version: &str,
        keys: Vec<(String, String, Value)>,
    ) -> Result<(i64, String)> {
        let asked = number(version)?;
        let checked: Vec<NewKey> = keys.iter().map(|(r, s, d)| check_key(r, s, d)).collect::<Result<_>>()?;
        let mut tx = self.db.begin_write().await?;
        let (current, ..) = storage::key_backup::version(&mut *tx, user, None).await?.ok_or_else(not_found)?;
        if current != asked {
            return Err(Error::matrix(
                http::StatusCode::FORBIDDEN,
                ruma::api::error::ErrorKind::WrongRoomKeysVersion(
                    ruma::api::error::WrongRoomKeysVersionErrorData::new(current.to_string()),
                ),
                format!("Version {asked} is not the current backup version ({current})"),
            ));
        }
        storage::key_backup::put_keys(&mut tx, user, current, &checked).await?;
        let (_, _, etag, count) =
            storage::key_backup::version(&mut *tx, user, Some(current)).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok((count, etag.to_string()))
    }

    /// Stored keys (room, session, KeyBackupData) of a live version.
    pub async fn keys(
        &self,
        user: &str,
        version: &str,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<Vec<(String, String, Value)>> {
        let v = number(version)?;
        storage::key_backup::version(&self.db.read, user, Some(v)).await?.ok_or_else(not_found)?;
        storage::key_backup::keys(&self.db.read, user, v, room, session)
            .await?
            .into_iter()
            .map(|(r, s, d)| Ok((r, s, serde_json::from_str(&d).map_err(Error::internal)?)))
            .collect()
    }

    pub async fn delete_keys(
        &self,
        user: &str,
        version: &str,
        room: Option<&str>,
        session: Option<&str>,
    ) -> Result<(i64, String)> {
        let v = number(version)?;
        let mut tx = self.db.begin_write().await?;
        storage::key_backup::version(&mut *tx, user, Some(v)).await?.ok_or_else(not_found)?;
        storage::key_backup::delete_keys(&mut tx, user, v, room, session).await?;
        let (_, _, etag, count) = storage::key_backup::version(&mut *tx, user, Some(v)).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok((count, etag.to_string()))
    }
}
