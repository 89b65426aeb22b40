//! End-to-end encryption keys of this server's users, for other servers (spec: server-server
//! API, "End-to-End Encryption"): their devices' keys, one-time keys to start Olm sessions, and
//! the device list with its position for servers that track it.

use std::collections::BTreeMap;

use axum::extract::State;
use ruma::{
    OwnedUserId, UInt,
    api::federation::{
        device::get_devices,
        keys::{claim_keys, get_keys},
    },
    serde::Raw,
};
use serde_json::Value;

use crate::{
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::AppState,
};

fn raw<T>(v: &Value) -> Result<Raw<T>> {
    Ok(Raw::from_json(serde_json::value::to_raw_value(v).map_err(Error::internal)?))
}

fn user(id: &str) -> Result<OwnedUserId> {
    ruma::UserId::parse(id).map_err(Error::internal)
}

/// POST /_matrix/federation/v1/user/keys/query: device keys and the master and self-signing
/// keys of the local users asked for (other servers' users are left out).
/// <https://spec.matrix.org/v1.19/server-server-api/#post_matrixfederationv1userkeysquery>
pub async fn get_keys(
    State(s): State<AppState>,
    req: Ruma<get_keys::v1::Request>,
) -> Result<RumaResponse<get_keys::v1::Response>> {
    let requested: BTreeMap<String, Vec<String>> = req
        .body
        .device_keys
        .iter()
        .map(|(u, d)| (u.to_string(), d.iter().map(ToString::to_string).collect()))
        .collect();
    let q = s.e2ee.keys_for_server(&requested).await?;
    let mut resp = get_keys::v1::Response::new(BTreeMap::new());
    for (kind, keys) in q.cross_signing {
        let target = match kind {
            "master" => &mut resp.master_keys,
            "self_signing" => &mut resp.self_signing_keys,
            _ => continue,
        };
        for (u, key) in keys {
            target.insert(user(&u)?, raw(&key)?);
        }
    }
    for (u, devices) in q.device_keys {
        let mut out = BTreeMap::new();
        for (device, keys) in devices.as_object().into_iter().flatten() {
            out.insert(device.as_str().into(), raw(keys)?);
        }
        resp.device_keys.insert(user(&u)?, out);
    }
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
    let requested: BTreeMap<String, BTreeMap<String, String>> = req
        .body
        .one_time_keys
        .iter()
        .filter(|(u, _)| u.server_name() == ours)
        .map(|(u, d)| (u.to_string(), d.iter().map(|(d, a)| (d.to_string(), a.to_string())).collect()))
        .collect();
    let (keys, _) = s.e2ee.claim_keys(&requested, std::time::Duration::ZERO).await?;
    let mut resp = claim_keys::v1::Response::new(BTreeMap::new());
    for (u, devices) in keys {
        let mut per_device = BTreeMap::new();
        for (device, claimed) in devices.as_object().into_iter().flatten() {
            let mut one = BTreeMap::new();
            for (id, key) in claimed.as_object().into_iter().flatten() {
                let id = ruma::OneTimeKeyId::parse(id).map_err(Error::internal)?;
                one.insert(id, raw(key)?);
            }
            per_device.insert(device.as_str().into(), one);
        }
        resp.one_time_keys.insert(user(&u)?, per_device);
    }
    Ok(RumaResponse(resp))
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
