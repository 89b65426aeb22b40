//! The client-server API's administration endpoints (spec: "Server Administration").

use axum::extract::State;
use ruma::{
    MilliSecondsSinceUnixEpoch, UInt,
    api::client::admin::{get_user_info, is_user_locked, is_user_suspended, lock_user, suspend_user},
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// GET /_matrix/client/v3/admin/whois/{userId}: a user's devices and where they were last seen.
/// A server admin may ask about anyone here; everyone else only about themselves, as Synapse.
pub async fn get_user_info(
    State(s): State<AppState>,
    req: Ruma<get_user_info::v3::Request>,
) -> Result<RumaResponse<get_user_info::v3::Response>> {
    let session = req.session();
    let target = &req.body.user_id;
    if *target != session.user_id && !session.is_admin {
        return Err(Error::forbidden("Only a server admin can look up another user"));
    }
    if target.server_name() != s.config.server_name {
        return Err(Error::invalid_param("Only users of this server can be looked up"));
    }
    Ok(RumaResponse(whois(&s, target).await?))
}

/// A local user's devices and where each was last seen (also Synapse's admin whois).
pub(crate) async fn whois(s: &AppState, target: &ruma::UserId) -> Result<get_user_info::v3::Response> {
    if s.accounts.is_available(target).await? {
        return Err(Error::not_found("No such user"));
    }
    let mut resp = get_user_info::v3::Response::new();
    resp.user_id = Some(target.to_owned());
    for device in s.accounts.devices(target).await? {
        let mut connection = get_user_info::v3::ConnectionInfo::new();
        connection.ip = device.last_seen_ip;
        connection.user_agent = device.last_seen_user_agent;
        connection.last_seen =
            device.last_seen_ts.and_then(|t| UInt::new(t.max(0) as u64)).map(MilliSecondsSinceUnixEpoch);
        let mut session_info = get_user_info::v3::SessionInfo::new();
        session_info.connections.push(connection);
        let mut info = get_user_info::v3::DeviceInfo::new();
        info.sessions.push(session_info);
        resp.devices.insert(device.device_id, info);
    }
    Ok(resp)
}

/// Only a server admin may look at or change locks and suspensions, and that is checked before
/// the account is looked up, so the endpoints tell others nothing about who exists.
fn require_admin(session: &crate::service::accounts::Session) -> Result<()> {
    if !session.is_admin {
        return Err(Error::forbidden("Only a server admin can lock or suspend accounts"));
    }
    Ok(())
}

/// GET /_matrix/client/v1/admin/lock/{userId}
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv1adminlockuserid>
pub async fn is_user_locked(
    State(s): State<AppState>,
    req: Ruma<is_user_locked::v1::Request>,
) -> Result<RumaResponse<is_user_locked::v1::Response>> {
    let session = req.session();
    require_admin(session)?;
    let locked = s.accounts.is_locked(&session.user_id, &req.body.user_id).await?;
    Ok(RumaResponse(is_user_locked::v1::Response::new(locked)))
}

/// PUT /_matrix/client/v1/admin/lock/{userId}
pub async fn lock_user(
    State(s): State<AppState>,
    req: Ruma<lock_user::v1::Request>,
) -> Result<RumaResponse<lock_user::v1::Response>> {
    let session = req.session();
    require_admin(session)?;
    s.accounts.set_locked(&session.user_id, &req.body.user_id, req.body.locked).await?;
    Ok(RumaResponse(lock_user::v1::Response::new(req.body.locked)))
}

/// GET /_matrix/client/v1/admin/suspend/{userId}
/// <https://spec.matrix.org/v1.19/client-server-api/#get_matrixclientv1adminsuspenduserid>
pub async fn is_user_suspended(
    State(s): State<AppState>,
    req: Ruma<is_user_suspended::v1::Request>,
) -> Result<RumaResponse<is_user_suspended::v1::Response>> {
    let session = req.session();
    require_admin(session)?;
    let suspended = s.accounts.is_suspended(&session.user_id, &req.body.user_id).await?;
    Ok(RumaResponse(is_user_suspended::v1::Response::new(suspended)))
}

/// PUT /_matrix/client/v1/admin/suspend/{userId}
pub async fn suspend_user(
    State(s): State<AppState>,
    req: Ruma<suspend_user::v1::Request>,
) -> Result<RumaResponse<suspend_user::v1::Response>> {
    let session = req.session();
    require_admin(session)?;
    s.accounts.set_suspended(&session.user_id, &req.body.user_id, req.body.suspended).await?;
    Ok(RumaResponse(suspend_user::v1::Response::new(req.body.suspended)))
}
