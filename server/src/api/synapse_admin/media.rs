//! Synapse's media admin API: a user's media (list, delete), deleting media uploaded here by ID
//! or by last use and size, and dropping the copies of other servers' media.

use std::collections::HashMap;

use axum::{
    Json as AxumJson,
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use crate::{
    api::synapse_admin::params::{self, Params},
    error::{Error, Result},
    http::json::Admin,
    service::{
        AppState,
        media::{UserMedia, UserMediaOrder},
    },
};

/// A millisecond timestamp that is required; one that looks like seconds is refused, as
/// Synapse does (a frequent mistake that would delete nothing, or everything).
fn before_ts(q: &HashMap<String, String>) -> Result<i64> {
    if !q.contains_key("before_ts") {
        return Err(Error::missing_param("Missing integer query parameter 'before_ts'"));
    }
    let ts = params::int(q, "before_ts", 0)?;
    if ts < 30_000_000_000 {
        return Err(Error::invalid_param(
            "Query parameter before_ts you provided is from the year 1970. Double check that you are providing a timestamp in milliseconds.",
        ));
    }
    Ok(ts)
}

fn media_json(m: &UserMedia) -> Value {
    json!({
        "media_id": m.media_id,
        "created_ts": m.created_ts,
        "last_access_ts": m.last_access_ts.unwrap_or(m.created_ts),
        "media_length": m.size,
        "media_type": m.content_type,
        "upload_name": m.filename,
        "quarantined_by": m.quarantined_by,
        "safe_from_quarantine": m.safe_from_quarantine,
    })
}

/// The page of a user's media the query names (for listing and for deleting).
async fn user_media_page(
    s: &AppState,
    raw: &str,
    q: &HashMap<String, String>,
) -> Result<(Vec<UserMedia>, i64, i64, i64)> {
    let (user, _) = super::users::existing_user(s, raw, "Unknown user").await?;
    let from = params::int(q, "from", 0)?;
    let limit = params::int(q, "limit", 100)?;
    let order = match q.get("order_by").map(String::as_str).unwrap_or("created_ts") {
        "media_id" => UserMediaOrder::MediaId,
        "upload_name" => UserMediaOrder::UploadName,
        "created_ts" => UserMediaOrder::Created,
        "last_access_ts" => UserMediaOrder::LastAccess,
        "media_length" => UserMediaOrder::Length,
        "media_type" => UserMediaOrder::Type,
        "quarantined_by" => UserMediaOrder::QuarantinedBy,
        "safe_from_quarantine" => UserMediaOrder::SafeFromQuarantine,
        other => return Err(Error::invalid_param(format!("Unknown value for order_by: {other}"))),
    };
    let backwards = params::backwards(q, false)?;
    let (rows, total) = s.media.user_media(&user, order, backwards, from, limit).await?;
    Ok((rows, total, from, limit))
}

/// GET /_synapse/admin/v1/users/{userId}/media
pub async fn user_media(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Query(q): Params,
) -> Result<AxumJson<Value>> {
    let (rows, total, from, limit) = user_media_page(&s, &raw, &q).await?;
    let mut out = json!({ "media": rows.iter().map(media_json).collect::<Vec<_>>(), "total": total });
    if from + limit < total {
        out["next_token"] = json!(from + rows.len() as i64);
    }
    Ok(AxumJson(out))
}

/// DELETE /_synapse/admin/v1/users/{userId}/media: deletes the page the query names.
pub async fn delete_user_media(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Query(q): Params,
) -> Result<AxumJson<Value>> {
    let (rows, _, _, _) = user_media_page(&s, &raw, &q).await?;
    let ids: Vec<String> = rows.into_iter().map(|m| m.media_id).collect();
    let deleted = s.media.delete_local_media(&ids).await?;
    Ok(AxumJson(json!({ "total": deleted.len(), "deleted_media": deleted })))
}

/// DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}
pub async fn delete_media(
    State(s): State<AppState>,
    _: Admin,
    Path((server, media_id)): Path<(String, String)>,
) -> Result<AxumJson<Value>> {
    if server != s.config.server_name.as_str() {
        return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Can only delete local media"));
    }
    let deleted = s.media.delete_local_media(&[media_id]).await?;
    if deleted.is_empty() {
        return Err(Error::not_found("Unknown media"));
    }
    Ok(AxumJson(json!({ "total": deleted.len(), "deleted_media": deleted })))
}

/// POST /_synapse/admin/v1/media/delete?before_ts=&size_gt=&keep_profiles= (also under
/// `/media/{serverName}/delete`): media uploaded here last used before the time.
pub async fn delete_old_media(
    State(s): State<AppState>,
    _: Admin,
    server: Option<Path<String>>,
    Query(q): Params,
) -> Result<AxumJson<Value>> {
    if let Some(Path(server)) = server
        && server != s.config.server_name.as_str()
    {
        return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Can only delete local media"));
    }
    let before = before_ts(&q)?;
    let size_gt = params::int(&q, "size_gt", 0)?;
    let keep_profiles = match q.get("keep_profiles").map(String::as_str) {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => {
            return Err(Error::invalid_param("Boolean query parameter keep_profiles must be one of ['true', 'false']"));
        }
    };
    let ids = s.media.local_media_before(before, size_gt, keep_profiles).await?;
    let deleted = s.media.delete_local_media(&ids).await?;
    Ok(AxumJson(json!({ "total": deleted.len(), "deleted_media": deleted })))
}

/// POST /_synapse/admin/v1/purge_media_cache?before_ts=: drops the copies of other servers'
/// media last served before the time (they are fetched again when asked for).
pub async fn purge_media_cache(State(s): State<AppState>, _: Admin, Query(q): Params) -> Result<AxumJson<Value>> {
    let before = before_ts(&q)?;
    Ok(AxumJson(json!({ "deleted": s.media.purge_remote_before(before).await? })))
}

/// POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}: the item (and every item
/// with the same content, unless protected) is no longer served. Answers `{}` also when there
/// was nothing to quarantine, as Synapse.
pub async fn quarantine(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path((server, media_id)): Path<(String, String)>,
) -> Result<AxumJson<Value>> {
    s.media.quarantine(&[(server, media_id)], Some(session.user_id.as_str())).await?;
    Ok(AxumJson(json!({})))
}

/// POST /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}
pub async fn unquarantine(
    State(s): State<AppState>,
    _: Admin,
    Path((server, media_id)): Path<(String, String)>,
) -> Result<AxumJson<Value>> {
    s.media.quarantine(&[(server, media_id)], None).await?;
    Ok(AxumJson(json!({})))
}

/// The `mxc://` URLs a room's events point at. As Synapse, a room this server does not know,
/// or a path that is no room ID at all, simply has none (no 404 or 400).
async fn media_in_room(s: &AppState, raw: &str) -> Result<Vec<String>> {
    match ruma::RoomId::parse(raw) {
        Ok(room) => s.rooms.media_urls(&room).await,
        Err(_) => Ok(Vec::new()),
    }
}

/// POST /_synapse/admin/v1/room/{roomId}/media/quarantine (and the older
/// `/quarantine_media/{roomId}`): every item the room's events point at.
pub async fn quarantine_room(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path(raw): Path<String>,
) -> Result<AxumJson<Value>> {
    let urls = media_in_room(&s, &raw).await?;
    let n = s.media.quarantine_urls(&urls, session.user_id.as_str()).await?;
    Ok(AxumJson(json!({ "num_quarantined": n })))
}

/// POST /_synapse/admin/v1/user/{userId}/media/quarantine: every item the user uploaded here.
pub async fn quarantine_user(
    State(s): State<AppState>,
    crate::http::json::Admin(session): crate::http::json::Admin,
    Path(raw): Path<String>,
) -> Result<AxumJson<Value>> {
    let user = ruma::UserId::parse(&raw).map_err(|_| Error::invalid_param(format!("{raw} is not a valid user ID")))?;
    let n = s.media.quarantine_uploads_of(user.as_str(), session.user_id.as_str()).await?;
    Ok(AxumJson(json!({ "num_quarantined": n })))
}

/// POST /_synapse/admin/v1/media/protect/{mediaId} and `unprotect`: an item uploaded here is
/// kept out of quarantines (by ID too), or no longer.
pub async fn protect(State(s): State<AppState>, _: Admin, Path(media_id): Path<String>) -> Result<AxumJson<Value>> {
    s.media.set_protected(&media_id, true).await?;
    Ok(AxumJson(json!({})))
}

pub async fn unprotect(State(s): State<AppState>, _: Admin, Path(media_id): Path<String>) -> Result<AxumJson<Value>> {
    s.media.set_protected(&media_id, false).await?;
    Ok(AxumJson(json!({})))
}

/// GET /_synapse/admin/v1/room/{roomId}/media: the `mxc://` URLs the room's events point at,
/// this server's and others'.
pub async fn room_media(State(s): State<AppState>, _: Admin, Path(raw): Path<String>) -> Result<AxumJson<Value>> {
    let ours = format!("mxc://{}/", s.config.server_name);
    let (local, remote): (Vec<String>, Vec<String>) =
        media_in_room(&s, &raw).await?.into_iter().partition(|u| u.starts_with(&ours));
    Ok(AxumJson(json!({ "local": local, "remote": remote })))
}
