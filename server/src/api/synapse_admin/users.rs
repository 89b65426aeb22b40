//! Synapse's user admin API (`/_synapse/admin/v1|v2/users…`, `deactivate`, `reset_password`,
//! `whois`, `username_available`, `suspend`), with Synapse's parameters, shapes and errors, so
//! synapse-admin, Ketesa and admins' scripts work unchanged. The rules themselves live in the
//! services, shared with the client API and the dashboard.

use std::collections::HashMap;

use axum::{
    Json as AxumJson,
    extract::{Path, Query, State},
    http::StatusCode,
};
use ruma::{OwnedDeviceId, OwnedUserId, UserId, api::error::ErrorKind};
use serde_json::{Map, Value, json};
use synapse_admin_api::users::{list_joined_rooms, reset_password};

use crate::{
    api::synapse_admin::params::{self, Params},
    error::{Error, Result},
    http::{
        json::{Admin, Json},
        ruma::RumaResponse,
    },
    service::{
        AppState,
        accounts::{AdminFilter, AdminOrder, AdminUser, DeviceRow},
    },
};

/// A user ID from the path: 400 when it is not one or not of this server.
pub(super) fn local_user(s: &AppState, raw: &str) -> Result<OwnedUserId> {
    let user = UserId::parse(raw).map_err(|_| Error::invalid_param(format!("{raw} is not a valid user ID")))?;
    if user.server_name() != s.config.server_name {
        return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Can only look up local users"));
    }
    Ok(user)
}

/// A local user that exists (404 M_NOT_FOUND otherwise, with Synapse's message).
pub(super) async fn existing_user(s: &AppState, raw: &str, missing: &str) -> Result<(OwnedUserId, AdminUser)> {
    let user = local_user(s, raw)?;
    match s.accounts.admin_get(&user).await? {
        Some(row) => Ok((user, row)),
        None => Err(Error::not_found(missing)),
    }
}

fn order_param(q: &HashMap<String, String>) -> Result<AdminOrder> {
    Ok(match q.get("order_by").map(String::as_str).unwrap_or("name") {
        "name" => AdminOrder::UserId,
        "displayname" => AdminOrder::Displayname,
        "admin" => AdminOrder::Admin,
        "deactivated" => AdminOrder::Deactivated,
        "is_guest" => AdminOrder::Guest,
        "locked" => AdminOrder::Locked,
        "avatar_url" => AdminOrder::AvatarUrl,
        "creation_ts" => AdminOrder::Created,
        "last_seen_ts" => AdminOrder::LastSeen,
        "user_type" => AdminOrder::UserType,
        "shadow_banned" => AdminOrder::ShadowBanned,
        other => return Err(Error::invalid_param(format!("Unknown value for order_by: {other}"))),
    })
}

/// A user as the list shows it (`creation_ts` in milliseconds there, as Synapse).
fn listed(u: &AdminUser) -> Value {
    json!({
        "name": u.user_id,
        "user_type": u.user_type,
        "is_guest": u.is_guest,
        "admin": u.is_admin,
        "deactivated": u.deactivated,
        "shadow_banned": u.shadow_banned,
        "displayname": u.displayname,
        "avatar_url": u.avatar_url,
        "creation_ts": u.created_ts,
        "approved": true,
        "erased": u.erased,
        "last_seen_ts": u.last_seen_ts,
        "locked": u.locked,
    })
}

/// A user as GET/PUT v2/users/{userId} show it (`creation_ts` in seconds there, as Synapse),
/// with the threepids and external IDs recorded for it.
async fn details(s: &AppState, u: &AdminUser) -> Result<Value> {
    let id = ruma::UserId::parse(&u.user_id).map_err(Error::internal)?;
    let threepids = s.accounts.threepids(&id).await?;
    let external_ids: Vec<Value> = s
        .accounts
        .external_ids(&id)
        .await?
        .into_iter()
        .map(|(p, x)| json!({ "auth_provider": p, "external_id": x }))
        .collect();
    Ok(json!({
        "name": u.user_id,
        "admin": u.is_admin,
        "deactivated": u.deactivated,
        "locked": u.locked,
        "suspended": u.suspended,
        "shadow_banned": u.shadow_banned,
        "creation_ts": u.created_ts / 1000,
        "appservice_id": null,
        "consent_server_notice_sent": null,
        "consent_version": null,
        "consent_ts": null,
        "user_type": u.user_type,
        "is_guest": u.is_guest,
        "displayname": u.displayname,
        "avatar_url": u.avatar_url,
        "threepids": threepids,
        "external_ids": external_ids,
        "erased": u.erased,
        "last_seen_ts": u.last_seen_ts,
    }))
}

/// GET /_synapse/admin/v2/users: accounts, filtered, ordered and paged as Synapse does.
pub async fn list(State(s): State<AppState>, _: Admin, Query(q): Params) -> Result<AxumJson<Value>> {
    let from = params::int(&q, "from", 0)?;
    let limit = params::int(&q, "limit", 100)?;
    let backwards = params::backwards(&q, false)?;
    let filter = AdminFilter {
        user_id: q.get("user_id").cloned(),
        name: q.get("name").cloned(),
        guests: params::boolean(&q, "guests")?.unwrap_or(true),
        admins: params::boolean(&q, "admins")?,
        deactivated: params::boolean(&q, "deactivated")?.unwrap_or(false),
        locked: params::boolean(&q, "locked")?.unwrap_or(false),
        order: order_param(&q)?,
        backwards,
        from,
        limit,
    };
    let (users, total) = s.accounts.admin_list(&filter).await?;
    let mut out = json!({ "users": users.iter().map(listed).collect::<Vec<_>>(), "total": total });
    if from + limit < total {
        out["next_token"] = json!((from + users.len() as i64).to_string());
    }
    Ok(AxumJson(out))
}

/// GET /_synapse/admin/v2/users/{userId}
pub async fn get_user(State(s): State<AppState>, _: Admin, Path(raw): Path<String>) -> Result<AxumJson<Value>> {
    let (_, row) = existing_user(&s, &raw, "User not found").await?;
    Ok(AxumJson(details(&s, &row).await?))
}

/// A bool field of a body: absent is None, anything but a bool is refused.
fn body_bool(body: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::invalid_param(format!("'{key}' parameter is not of type boolean"))),
    }
}

/// The user types Synapse knows.
const USER_TYPES: [&str; 2] = ["support", "bot"];

/// A list of objects with two required string fields (`threepids`, `external_ids`), as pairs;
/// None when absent. Synapse: 400 M_MISSING_PARAM for a missing field.
fn pairs(body: &Map<String, Value>, key: &str, fields: [&str; 2]) -> Result<Option<Vec<(String, String)>>> {
    let list = match body.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Error::bad_json(format!("{key} must be a list"))),
    };
    let mut out = Vec::with_capacity(list.len());
    for item in list {
        let field = |f: &str| match item.get(f) {
            Some(Value::String(v)) => Ok(v.clone()),
            Some(_) => Err(Error::bad_json(format!("{key}: '{f}' must be a string"))),
            None => Err(Error::missing_param(format!("Missing params: ['{f}']"))),
        };
        out.push((field(fields[0])?, field(fields[1])?));
    }
    Ok(Some(out))
}

/// POST /_synapse/admin/v1/users/{userId}/login `{"valid_until_ms"?}`: an access token for the
/// admin to act as the user, on a hidden device (see `Accounts::login_as`).
pub async fn login_as(
    State(s): State<AppState>,
    Admin(session): Admin,
    Path(raw): Path<String>,
    body: axum::body::Bytes,
) -> Result<AxumJson<Value>> {
    let user = UserId::parse(&raw).map_err(|_| Error::invalid_param(format!("{raw} is not a valid user ID")))?;
    if user.server_name() != s.config.server_name {
        return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Only local users can be logged in as"));
    }
    let (user, _) = existing_user(&s, &raw, "User not found").await?;
    let body = params::optional_body(&body)?;
    let valid_until_ms = match body.get("valid_until_ms") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_i64() => n.as_i64(),
        Some(_) => {
            return Err(Error::custom(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                "'valid_until_ms' parameter must be an int",
            ));
        }
    };
    if user == session.user_id {
        return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Cannot use admin API to login as self"));
    }
    let token = s.accounts.login_as(&session.user_id, &user, valid_until_ms).await?;
    Ok(AxumJson(json!({ "access_token": token })))
}

/// POST /_synapse/admin/v1/users/{userId}/shadow_ban (and DELETE to lift it): what the account
/// sends is answered as if sent and goes nowhere (see `Session::shadow_banned`).
pub async fn shadow_ban(
    State(s): State<AppState>,
    _: Admin,
    method: http::Method,
    Path(raw): Path<String>,
) -> Result<AxumJson<Value>> {
    let (user, _) = existing_user(&s, &raw, "User not found").await?;
    s.accounts.set_shadow_banned(&user, method == http::Method::POST).await?;
    Ok(AxumJson(json!({})))
}

/// PUT /_synapse/admin/v2/users/{userId}: creates the account (201) or changes what the body
/// names (200); answers the account as GET does.
pub async fn put_user(
    State(s): State<AppState>,
    Admin(session): Admin,
    Path(raw): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<(StatusCode, AxumJson<Value>)> {
    let user = local_user(&s, &raw)?;
    let threepids = pairs(&body, "threepids", ["medium", "address"])?;
    let external_ids = pairs(&body, "external_ids", ["auth_provider", "external_id"])?;
    // Some(None) clears it; None leaves it.
    let user_type = match body.get("user_type") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(t)) if USER_TYPES.contains(&t.as_str()) => Some(Some(t.clone())),
        Some(_) => return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Invalid user type")),
    };
    let admin = match body.get("admin") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(Error::bad_json("'admin' parameter is not of type boolean")),
    };
    let password = match body.get("password") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.len() <= 512 => Some(p.clone()),
        Some(_) => return Err(Error::invalid_param("Invalid password")),
    };
    let logout_devices = body_bool(&body, "logout_devices")?.unwrap_or(true);
    let deactivated = body_bool(&body, "deactivated")?;
    let locked = body_bool(&body, "locked")?;
    if deactivated == Some(true) && locked == Some(true) {
        return Err(Error::invalid_param("An user can't be deactivated and locked"));
    }
    let text = |key: &str, max: usize| -> Result<Option<String>> {
        match body.get(key) {
            None => Ok(None),
            Some(Value::String(v)) if v.chars().count() <= max => Ok(Some(v.clone())),
            Some(Value::String(_)) => {
                Err(Error::invalid_param(format!("{key} is too long (at most {max} characters)")))
            }
            Some(_) => Err(Error::invalid_param(format!("{key} must be a string"))),
        }
    };
    let displayname = text("displayname", 256)?;
    let avatar_url = text("avatar_url", 1000)?;
    if avatar_url.as_deref().is_some_and(|a| !a.is_empty() && !a.starts_with("mxc://")) {
        return Err(Error::invalid_param("avatar_url must be an mxc:// URI"));
    }

    let status = match s.accounts.admin_get(&user).await? {
        None => {
            s.accounts.validate_new_localpart(user.localpart())?;
            s.accounts
                .create_user(&user, password, admin.unwrap_or(false), false, displayname.as_deref(), None)
                .await?;
            if let Some(url) = avatar_url.filter(|a| !a.is_empty()) {
                s.rooms.set_profile_field(&user, "avatar_url", Some(&url)).await?;
            }
            tracing::info!(%user, "account created through the admin API");
            StatusCode::CREATED
        }
        Some(current) => {
            if let Some(name) = &displayname {
                s.rooms
                    .set_profile_field(&user, "displayname", Some(name).filter(|n| !n.is_empty()).map(String::as_str))
                    .await?;
            }
            if let Some(url) = &avatar_url {
                s.rooms
                    .set_profile_field(&user, "avatar_url", Some(url).filter(|u| !u.is_empty()).map(String::as_str))
                    .await?;
            }
            if let Some(admin) = admin.filter(|a| *a != current.is_admin) {
                if !admin && user == session.user_id {
                    return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "You may not demote yourself."));
                }
                s.accounts.set_admin(&user, admin).await?;
            }
            let mut password = password;
            match (deactivated, current.deactivated) {
                (Some(true), false) => s.deactivate_account(&user, false).await?,
                // As Synapse since 1.99: no password needed; without one, none is set.
                (Some(false), true) => s.accounts.reactivate(&user, password.take()).await?,
                _ => {}
            }
            if let Some(p) = password.filter(|_| deactivated != Some(true)) {
                s.accounts.set_password_as_admin(&user, p, logout_devices).await?;
            }
            if let Some(locked) = locked.filter(|l| *l != current.locked) {
                s.accounts.set_locked(&session.user_id, &user, locked).await?;
            }
            StatusCode::OK
        }
    };
    if let Some(list) = threepids {
        s.accounts.set_threepids(&user, &list).await?;
    }
    if let Some(list) = external_ids {
        s.accounts.set_external_ids(&user, &list).await?;
    }
    if let Some(kind) = user_type {
        s.accounts.set_user_type(&user, kind.as_deref()).await?;
    }
    let row = s.accounts.admin_get(&user).await?.ok_or_else(|| Error::not_found("User not found"))?;
    Ok((status, AxumJson(details(&s, &row).await?)))
}

/// POST /_synapse/admin/v1/deactivate/{userId} (`erase`: the account's messages are shown
/// redacted to whoever was not in the room when they were sent).
pub async fn deactivate(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let erase = params::optional_bool(&body, "erase", false)?;
    let (user, _) = existing_user(&s, &raw, "User not found").await?;
    s.deactivate_account(&user, erase).await?;
    Ok(AxumJson(json!({ "id_server_unbind_result": "success" })))
}

/// POST /_synapse/admin/v1/reset_password/{userId}
pub async fn reset_password(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<RumaResponse<reset_password::v1::Response>> {
    let password = match body.get("new_password") {
        Some(Value::String(p)) => p.clone(),
        Some(_) => return Err(Error::invalid_param("new_password must be a string")),
        None => return Err(Error::missing_param("Missing param 'new_password'")),
    };
    let logout_devices = body_bool(&body, "logout_devices")?.unwrap_or(true);
    let (user, _) = existing_user(&s, &raw, "Unknown user").await?;
    s.accounts.set_password_as_admin(&user, password, logout_devices).await?;
    Ok(RumaResponse(reset_password::v1::Response::new()))
}

/// GET /_synapse/admin/v1/whois/{userId}: the client API's whois, for admins.
pub async fn whois(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> Result<crate::http::ruma::RumaResponse<ruma::api::client::admin::get_user_info::v3::Response>> {
    let user = local_user(&s, &raw)?;
    Ok(crate::http::ruma::RumaResponse(crate::api::client::admin::whois(&s, &user).await?))
}

/// GET /_synapse/admin/v1/users/{userId}/joined_rooms
pub async fn joined_rooms(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> Result<RumaResponse<list_joined_rooms::v1::Response>> {
    let user = local_user(&s, &raw)?;
    let rooms: Vec<ruma::OwnedRoomId> =
        s.rooms.joined_rooms(&user).await?.into_iter().filter_map(|r| ruma::RoomId::parse(r).ok()).collect();
    let total = ruma::UInt::new_saturating(rooms.len() as u64);
    Ok(RumaResponse(list_joined_rooms::v1::Response::new(rooms, total)))
}

/// GET /_synapse/admin/v1/username_available?username=: 200 when free, 400 with the reason.
pub async fn username_available(State(s): State<AppState>, _: Admin, Query(q): Params) -> Result<AxumJson<Value>> {
    let requested = q.get("username").ok_or_else(|| Error::missing_param("Missing string query argument username"))?;
    let (localpart, user) = s.accounts.validate_new_localpart(requested)?;
    if localpart.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::matrix(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidUsername,
            "Numeric user IDs are reserved for guest users.",
        ));
    }
    if !s.accounts.is_available(&user).await? {
        return Err(crate::service::accounts::user_in_use());
    }
    Ok(AxumJson(json!({ "available": true })))
}

/// GET /_synapse/admin/v1/users/{userId}/admin
pub async fn get_admin(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
) -> Result<RumaResponse<synapse_admin_api::users::is_user_admin::v1::Response>> {
    let user = local_user(&s, &raw)?;
    let admin = s.accounts.admin_get(&user).await?.is_some_and(|u| u.is_admin);
    Ok(RumaResponse(synapse_admin_api::users::is_user_admin::v1::Response::new(admin)))
}

/// PUT /_synapse/admin/v1/users/{userId}/admin
pub async fn put_admin(
    State(s): State<AppState>,
    Admin(session): Admin,
    Path(raw): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let user = local_user(&s, &raw)?;
    let admin = params::required_bool(&body, "admin", Error::bad_json)?;
    if !admin && user == session.user_id {
        return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "You may not demote yourself."));
    }
    if !s.accounts.set_admin(&user, admin).await? {
        return Err(Error::not_found("User not found"));
    }
    Ok(AxumJson(json!({})))
}

/// PUT /_synapse/admin/v1/suspend/{userId} `{"suspend": bool}`
pub async fn suspend(
    State(s): State<AppState>,
    Admin(session): Admin,
    Path(raw): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let user = local_user(&s, &raw)?;
    let suspend = params::required_bool(&body, "suspend", Error::invalid_param)?;
    s.accounts.set_suspended(&session.user_id, &user, suspend).await?;
    Ok(AxumJson(json!({ format!("user_{user}_suspended"): suspend })))
}

// ----- devices ---------------------------------------------------------------------------

fn device_json(user: &UserId, d: &DeviceRow) -> Value {
    json!({
        "device_id": d.device_id,
        "user_id": user,
        "display_name": d.display_name,
        "last_seen_ip": d.last_seen_ip,
        "last_seen_user_agent": d.last_seen_user_agent,
        "last_seen_ts": d.last_seen_ts,
    })
}

/// GET /_synapse/admin/v2/users/{userId}/devices
pub async fn list_devices(State(s): State<AppState>, _: Admin, Path(raw): Path<String>) -> Result<AxumJson<Value>> {
    let (user, _) = existing_user(&s, &raw, "Unknown user").await?;
    let devices: Vec<Value> = s.accounts.devices(&user).await?.iter().map(|d| device_json(&user, d)).collect();
    Ok(AxumJson(json!({ "total": devices.len(), "devices": devices })))
}

/// POST /_synapse/admin/v2/users/{userId}/devices `{"device_id"}`: makes a device (without
/// tokens); 201 also when it exists already, as Synapse.
pub async fn create_device(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<(StatusCode, AxumJson<Value>)> {
    let (user, _) = existing_user(&s, &raw, "Unknown user").await?;
    let device = match body.get("device_id") {
        Some(Value::String(d)) if !d.is_empty() => d.clone(),
        Some(Value::String(_)) | None => {
            return Err(Error::custom(StatusCode::BAD_REQUEST, "M_UNKNOWN", "Missing device_id"));
        }
        Some(_) => return Err(Error::invalid_param("device_id must be a string")),
    };
    s.accounts.ensure_device(&user, &device).await?;
    Ok((StatusCode::CREATED, AxumJson(json!({}))))
}

/// GET /_synapse/admin/v2/users/{userId}/devices/{deviceId}
pub async fn get_device(
    State(s): State<AppState>,
    _: Admin,
    Path((raw, device)): Path<(String, String)>,
) -> Result<AxumJson<Value>> {
    let (user, _) = existing_user(&s, &raw, "Unknown user").await?;
    let d = s.accounts.device(&user, &device).await?.ok_or_else(|| Error::not_found("Not found"))?;
    Ok(AxumJson(device_json(&user, &d)))
}

/// PUT /_synapse/admin/v2/users/{userId}/devices/{deviceId} `{"display_name"}`
pub async fn put_device(
    State(s): State<AppState>,
    _: Admin,
    Path((raw, device)): Path<(String, String)>,
    Json(body): Json<Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let (user, _) = existing_user(&s, &raw, "Unknown user").await?;
    match body.get("display_name") {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) if name.chars().count() > 100 => {
            return Err(Error::custom(
                StatusCode::BAD_REQUEST,
                "M_TOO_LARGE",
                "Device display name is too long (max 100)",
            ));
        }
        Some(Value::String(name)) => {
            if !s.accounts.rename_device(&user, &device, Some(name)).await? {
                return Err(Error::not_found("Not found"));
            }
        }
        Some(_) => return Err(Error::invalid_param("display_name must be a string")),
    }
    Ok(AxumJson(json!({})))
}

/// DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}: 200 also for no such device.
pub async fn delete_device(
    State(s): State<AppState>,
    _: Admin,
    Path((raw, device)): Path<(String, String)>,
) -> Result<AxumJson<Value>> {
    let (user, _) = existing_user(&s, &raw, "Unknown user").await?;
    let id: OwnedDeviceId = device.into();
    s.accounts.delete_devices(&user, &[id]).await?;
    Ok(AxumJson(json!({})))
}

/// POST /_synapse/admin/v2/users/{userId}/delete_devices `{"devices": [...]}`
pub async fn delete_devices(
    State(s): State<AppState>,
    _: Admin,
    Path(raw): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<AxumJson<Value>> {
    let (user, _) = existing_user(&s, &raw, "Unknown user").await?;
    let ids: Vec<OwnedDeviceId> = match body.get("devices") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|d| d.as_str().map(OwnedDeviceId::from).ok_or_else(|| Error::invalid_param("devices must be strings")))
            .collect::<Result<_>>()?,
        Some(_) => return Err(Error::invalid_param("devices must be a list")),
        None => return Err(Error::missing_param("Missing param 'devices'")),
    };
    s.accounts.delete_devices(&user, &ids).await?;
    Ok(AxumJson(json!({})))
}

/// GET /_synapse/admin/v1/users/{userId}/pushers: the account's pushers as the client API
/// shows them (synapse-admin's user page lists them), and how many.
pub async fn pushers(State(s): State<AppState>, _: Admin, Path(raw): Path<String>) -> Result<AxumJson<Value>> {
    let (user, _) = existing_user(&s, &raw, "User not found").await?;
    let pushers = s.pushers.list(&user).await?;
    let list = serde_json::to_value(&pushers).map_err(Error::internal)?;
    Ok(AxumJson(json!({ "pushers": list, "total": pushers.len() })))
}
