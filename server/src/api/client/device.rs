//! Device management (spec: "Device management"). Deleting needs UIA.

use axum::extract::State;
use ruma::{
    MilliSecondsSinceUnixEpoch, UInt,
    api::client::device::{Device, delete_device, delete_devices, get_device, get_devices, update_device},
};

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::{AppState, accounts::DeviceRow},
};

fn to_device(row: DeviceRow) -> Device {
    let mut d = Device::new(row.device_id.into());
    d.display_name = row.display_name;
    d.last_seen_ip = row.last_seen_ip;
    d.last_seen_ts = row.last_seen_ts.and_then(|t| UInt::try_from(t).ok()).map(MilliSecondsSinceUnixEpoch);
    d
}

/// GET /_matrix/client/v3/devices
pub async fn get_devices(
    State(s): State<AppState>,
    req: Ruma<get_devices::v3::Request>,
) -> Result<RumaResponse<get_devices::v3::Response>> {
    let devices = s.accounts.devices(&req.session().user_id).await?;
    Ok(RumaResponse(get_devices::v3::Response::new(devices.into_iter().map(to_device).collect())))
}

/// GET /_matrix/client/v3/devices/{deviceId}
pub async fn get_device(
    State(s): State<AppState>,
    req: Ruma<get_device::v3::Request>,
) -> Result<RumaResponse<get_device::v3::Response>> {
    let row = s
        .accounts
        .device(&req.session().user_id, req.body.device_id.as_str())
        .await?
        .ok_or_else(|| Error::not_found("No such device"))?;
    Ok(RumaResponse(get_device::v3::Response::new(to_device(row))))
}

/// PUT /_matrix/client/v3/devices/{deviceId}
pub async fn update_device(
    State(s): State<AppState>,
    req: Ruma<update_device::v3::Request>,
) -> Result<RumaResponse<update_device::v3::Response>> {
    let user_id = &req.session().user_id;
    let found = match req.body.display_name.as_deref() {
        Some(name) if name.len() > 100 => {
            return Err(Error::invalid_param("Device name is too long (at most 100 bytes)"));
        }
        Some(name) => s.accounts.rename_device(user_id, req.body.device_id.as_str(), Some(name)).await?,
        // Spec: "If not given, the display name is unchanged."
        None => s.accounts.device(user_id, req.body.device_id.as_str()).await?.is_some(),
    };
    if !found {
        return Err(Error::not_found("No such device"));
    }
    Ok(RumaResponse(update_device::v3::Response::new()))
}

/// DELETE /_matrix/client/v3/devices/{deviceId}
pub async fn delete_device(
    State(s): State<AppState>,
    req: Ruma<delete_device::v3::Request>,
) -> Result<RumaResponse<delete_device::v3::Response>> {
    let session = req.session();
    if s.accounts.device(&session.user_id, req.body.device_id.as_str()).await?.is_none() {
        return Err(Error::not_found("No such device"));
    }
    // The UIA session is bound to exactly these devices, so it cannot authorise another deletion.
    let operation = format!("delete_devices {}", req.body.device_id);
    s.accounts.uia_password(session, &operation, req.body.auth.as_ref()).await?;
    s.accounts.delete_devices(&session.user_id, std::slice::from_ref(&req.body.device_id)).await?;
    Ok(RumaResponse(delete_device::v3::Response::new()))
}

/// POST /_matrix/client/v3/delete_devices
pub async fn delete_devices(
    State(s): State<AppState>,
    req: Ruma<delete_devices::v3::Request>,
) -> Result<RumaResponse<delete_devices::v3::Response>> {
    let session = req.session();
    let mut ids: Vec<&str> = req.body.devices.iter().map(|d| d.as_str()).collect();
    ids.sort_unstable();
    let operation = format!("delete_devices {}", ids.join(","));
    s.accounts.uia_password(session, &operation, req.body.auth.as_ref()).await?;
    s.accounts.delete_devices(&session.user_id, &req.body.devices).await?;
    Ok(RumaResponse(delete_devices::v3::Response::new()))
}
