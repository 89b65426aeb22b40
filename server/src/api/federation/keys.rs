//! End-to-end encryption keys of this server's users, for other servers (spec: server-server
//! API, "End-to-End Encryption"): their devices' keys, one-time keys to start Olm sessions, and
//! the device list with its position for servers that track it.

use std::collections::BTreeMap;

use axum::extract::State;
use ruma::{
    UInt,
    api::federation::{
        device::get_devices,
        keys::{claim_keys, get_keys},
    },
};

use crate::{
    api::key_shapes::{self as shapes, raw},
    error::Result,
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

/// POST /_matrix/federation/v1/user/keys/query: device keys and the master and self-signing
/// keys of the local users asked for (other servers' users are left out).
/// <https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1userkeysquery>
pub async fn get_keys(
    State(s): State<AppState>,
    req: Ruma<get_keys::v1::Request>,
) -> Result<RumaResponse<get_keys::v1::Response>> {
    let mut q = s.e2ee.keys_for_server(&shapes::requested_devices(&req.body.device_keys)).await?;
    let mut resp = get_keys::v1::Response::new(BTreeMap::new());
    shapes::cross_signing_keys(&mut q, &mut resp.master_keys, &mut resp.self_signing_keys, None)?;
    resp.device_keys = shapes::device_keys(q.device_keys)?;
    Ok(RumaResponse(resp))
}

/// POST /_matrix/federation/v1/user/keys/claim: one one-time key (else the fallback key) of
/// each local device asked for.
/// <https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1userkeysclaim>
pub async fn claim_keys(
    State(s): State<AppState>,
    req: Ruma<claim_keys::v1::Request>,
) -> Result<RumaResponse<claim_keys::v1::Response>> {
    let ours = &s.config.server_name;
    // Only this server's users: another server's would send this one asking on.
    let mut asked = req.body.one_time_keys.clone();
    asked.retain(|u, _| u.server_name() == ours);
    let (keys, _) = s.e2ee.claim_keys(&shapes::requested_claims(&asked), std::time::Duration::ZERO).await?;
    Ok(RumaResponse(claim_keys::v1::Response::new(shapes::claimed_keys(keys)?)))
}

/// GET /_matrix/federation/v1/user/devices/{userId}: a local user's devices, the position of
/// the list (device list updates continue from it) and the cross-signing keys others see.
/// <https://spec.matrix.org/v1.19/server-server-api/#get_matrixfederationv1userdevicesuserid>
pub async fn get_devices(
    State(s): State<AppState>,
    req: Ruma<get_devices::v1::Request>,
) -> Result<RumaResponse<get_devices::v1::Response>> {
    let d = s.e2ee.devices_for_server(&req.body.user_id).await?;
    let stream_id = UInt::try_from(d.stream_id.max(0)).unwrap_or_default();
    let mut resp = get_devices::v1::Response::new(req.body.user_id.clone(), stream_id);
    for (device, keys, name) in d.devices {
        let mut one = get_devices::v1::UserDevice::new(device.as_str().into(), raw(&keys)?);
        one.device_display_name = name;
        resp.devices.push(one);
    }
    resp.master_key = d.master.as_ref().map(raw).transpose()?;
    resp.self_signing_key = d.self_signing.as_ref().map(raw).transpose()?;
    Ok(RumaResponse(resp))
}
