//! Server-side key backup endpoints (spec: client-server API, "Server-side key backups"). The
//! work is in `service::key_backup`.

use std::collections::BTreeMap;

use axum::extract::State;
use ruma::{
    UInt,
    api::client::backup::{
        RoomKeyBackup, add_backup_keys, add_backup_keys_for_room, add_backup_keys_for_session, create_backup_version,
        delete_backup_keys, delete_backup_keys_for_room, delete_backup_keys_for_session, delete_backup_version,
        get_backup_info, get_backup_keys, get_backup_keys_for_room, get_backup_keys_for_session,
        get_latest_backup_info, update_backup_version,
    },
    serde::Raw,
};
use serde_json::Value;

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

fn json<T>(raw: &Raw<T>) -> Result<Value> {
    serde_json::from_str(raw.json().get()).map_err(|e| Error::bad_json(e.to_string()))
}

fn raw<T>(v: &Value) -> Result<Raw<T>> {
    Ok(Raw::from_json(serde_json::value::to_raw_value(v).map_err(Error::internal)?))
}

fn count(n: i64) -> UInt {
    UInt::try_from(n).unwrap_or_default()
}

/// POST /_matrix/client/v3/room_keys/version
pub async fn create_backup_version(
    State(s): State<AppState>,
    req: Ruma<create_backup_version::v3::Request>,
) -> Result<RumaResponse<create_backup_version::v3::Response>> {
    let version = s.key_backup.create(req.session().user_id.as_str(), &json(&req.body.algorithm)?).await?;
    Ok(RumaResponse(create_backup_version::v3::Response::new(version)))
}

/// GET /_matrix/client/v3/room_keys/version
pub async fn get_latest_backup_info(
    State(s): State<AppState>,
    req: Ruma<get_latest_backup_info::v3::Request>,
) -> Result<RumaResponse<get_latest_backup_info::v3::Response>> {
    let i = s.key_backup.info(req.session().user_id.as_str(), None).await?;
    Ok(RumaResponse(get_latest_backup_info::v3::Response::new(raw(&i.algorithm)?, count(i.count), i.etag, i.version)))
}

/// GET /_matrix/client/v3/room_keys/version/{version}
pub async fn get_backup_info(
    State(s): State<AppState>,
    req: Ruma<get_backup_info::v3::Request>,
) -> Result<RumaResponse<get_backup_info::v3::Response>> {
    let i = s.key_backup.info(req.session().user_id.as_str(), Some(&req.body.version)).await?;
    Ok(RumaResponse(get_backup_info::v3::Response::new(raw(&i.algorithm)?, count(i.count), i.etag, i.version)))
}

/// PUT /_matrix/client/v3/room_keys/version/{version}
pub async fn update_backup_version(
    State(s): State<AppState>,
    req: Ruma<update_backup_version::v3::Request>,
) -> Result<RumaResponse<update_backup_version::v3::Response>> {
    s.key_backup.update(req.session().user_id.as_str(), &req.body.version, &json(&req.body.algorithm)?).await?;
    Ok(RumaResponse(update_backup_version::v3::Response::new()))
}

/// DELETE /_matrix/client/v3/room_keys/version/{version}
pub async fn delete_backup_version(
    State(s): State<AppState>,
    req: Ruma<delete_backup_version::v3::Request>,
) -> Result<RumaResponse<delete_backup_version::v3::Response>> {
    s.key_backup.delete(req.session().user_id.as_str(), &req.body.version).await?;
    Ok(RumaResponse(delete_backup_version::v3::Response::new()))
}

/// PUT /_matrix/client/v3/room_keys/keys
pub async fn add_backup_keys(
    State(s): State<AppState>,
    req: Ruma<add_backup_keys::v3::Request>,
) -> Result<RumaResponse<add_backup_keys::v3::Response>> {
    let mut keys = Vec::new();
    for (room, backup) in &req.body.rooms {
        for (session, data) in &backup.sessions {
            keys.push((room.to_string(), session.clone(), json(data)?));
        }
    }
    let (n, etag) = s.key_backup.put_keys(req.session().user_id.as_str(), &req.body.version, keys).await?;
    Ok(RumaResponse(add_backup_keys::v3::Response::new(etag, count(n))))
}

/// PUT /_matrix/client/v3/room_keys/keys/{roomId}
pub async fn add_backup_keys_for_room(
    State(s): State<AppState>,
    req: Ruma<add_backup_keys_for_room::v3::Request>,
) -> Result<RumaResponse<add_backup_keys_for_room::v3::Response>> {
    let mut keys = Vec::new();
    for (session, data) in &req.body.sessions {
        keys.push((req.body.room_id.to_string(), session.clone(), json(data)?));
    }
    let (n, etag) = s.key_backup.put_keys(req.session().user_id.as_str(), &req.body.version, keys).await?;
    Ok(RumaResponse(add_backup_keys_for_room::v3::Response::new(etag, count(n))))
}

/// PUT /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
pub async fn add_backup_keys_for_session(
    State(s): State<AppState>,
    req: Ruma<add_backup_keys_for_session::v3::Request>,
) -> Result<RumaResponse<add_backup_keys_for_session::v3::Response>> {
    let keys = vec![(req.body.room_id.to_string(), req.body.session_id.clone(), json(&req.body.session_data)?)];
    let (n, etag) = s.key_backup.put_keys(req.session().user_id.as_str(), &req.body.version, keys).await?;
    Ok(RumaResponse(add_backup_keys_for_session::v3::Response::new(etag, count(n))))
}

/// GET /_matrix/client/v3/room_keys/keys
pub async fn get_backup_keys(
    State(s): State<AppState>,
    req: Ruma<get_backup_keys::v3::Request>,
) -> Result<RumaResponse<get_backup_keys::v3::Response>> {
    let mut rooms: BTreeMap<ruma::OwnedRoomId, BTreeMap<String, Raw<_>>> = BTreeMap::new();
    for (room, session, data) in
        s.key_backup.keys(req.session().user_id.as_str(), &req.body.version, None, None).await?
    {
        let room = ruma::RoomId::parse(room).map_err(Error::internal)?;
        rooms.entry(room).or_default().insert(session, raw(&data)?);
    }
    Ok(RumaResponse(get_backup_keys::v3::Response::new(
        rooms.into_iter().map(|(r, s)| (r, RoomKeyBackup::new(s))).collect(),
    )))
}

/// GET /_matrix/client/v3/room_keys/keys/{roomId}
pub async fn get_backup_keys_for_room(
    State(s): State<AppState>,
    req: Ruma<get_backup_keys_for_room::v3::Request>,
) -> Result<RumaResponse<get_backup_keys_for_room::v3::Response>> {
    let mut sessions = BTreeMap::new();
    for (_, session, data) in s
        .key_backup
        .keys(req.session().user_id.as_str(), &req.body.version, Some(req.body.room_id.as_str()), None)
        .await?
    {
        sessions.insert(session, raw(&data)?);
    }
    Ok(RumaResponse(get_backup_keys_for_room::v3::Response::new(sessions)))
}

/// GET /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
pub async fn get_backup_keys_for_session(
    State(s): State<AppState>,
    req: Ruma<get_backup_keys_for_session::v3::Request>,
) -> Result<RumaResponse<get_backup_keys_for_session::v3::Response>> {
    let found = s
        .key_backup
        .keys(
            req.session().user_id.as_str(),
            &req.body.version,
            Some(req.body.room_id.as_str()),
            Some(&req.body.session_id),
        )
        .await?;
    let (_, _, data) =
        found.into_iter().next().ok_or_else(|| Error::not_found("No key for this session in the backup"))?;
    Ok(RumaResponse(get_backup_keys_for_session::v3::Response::new(raw(&data)?)))
}

/// DELETE /_matrix/client/v3/room_keys/keys
pub async fn delete_backup_keys(
    State(s): State<AppState>,
    req: Ruma<delete_backup_keys::v3::Request>,
) -> Result<RumaResponse<delete_backup_keys::v3::Response>> {
    let (n, etag) = s.key_backup.delete_keys(req.session().user_id.as_str(), &req.body.version, None, None).await?;
    Ok(RumaResponse(delete_backup_keys::v3::Response::new(etag, count(n))))
}

/// DELETE /_matrix/client/v3/room_keys/keys/{roomId}
pub async fn delete_backup_keys_for_room(
    State(s): State<AppState>,
    req: Ruma<delete_backup_keys_for_room::v3::Request>,
) -> Result<RumaResponse<delete_backup_keys_for_room::v3::Response>> {
    let (n, etag) = s
        .key_backup
        .delete_keys(req.session().user_id.as_str(), &req.body.version, Some(req.body.room_id.as_str()), None)
        .await?;
    Ok(RumaResponse(delete_backup_keys_for_room::v3::Response::new(etag, count(n))))
}

/// DELETE /_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}
pub async fn delete_backup_keys_for_session(
    State(s): State<AppState>,
    req: Ruma<delete_backup_keys_for_session::v3::Request>,
) -> Result<RumaResponse<delete_backup_keys_for_session::v3::Response>> {
    let (n, etag) = s
        .key_backup
        .delete_keys(
            req.session().user_id.as_str(),
            &req.body.version,
            Some(req.body.room_id.as_str()),
            Some(&req.body.session_id),
        )
        .await?;
    Ok(RumaResponse(delete_backup_keys_for_session::v3::Response::new(etag, count(n))))
}
