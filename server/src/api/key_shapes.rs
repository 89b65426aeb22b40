//! The JSON of `service::e2ee` in ruma's typed maps, shared by the client API (`/keys/query`,
//! `/keys/claim`) and the federation API (`/user/keys/query`, `/user/keys/claim`), whose bodies
//! have the same shapes. An entry that is not a valid ID is left out rather than failing the
//! whole answer (remote servers' answers pass through here).

use std::collections::BTreeMap;

use ruma::{OneTimeKeyId, OwnedDeviceId, OwnedOneTimeKeyId, OwnedUserId, UserId, serde::Raw};
use serde_json::{Map, Value};

use crate::{
    error::{Error, Result},
    service::e2ee::Queried,
};

pub fn raw<T>(v: &Value) -> Result<Raw<T>> {
    Ok(Raw::from_json(serde_json::value::to_raw_value(v).map_err(Error::internal)?))
}

/// user -> devices asked for, as the service takes them.
pub fn requested_devices<D: ToString>(asked: &BTreeMap<OwnedUserId, Vec<D>>) -> BTreeMap<String, Vec<String>> {
    asked.iter().map(|(u, d)| (u.to_string(), d.iter().map(ToString::to_string).collect())).collect()
}

/// user -> device -> algorithm, as the service takes them.
pub fn requested_claims<D: ToString, A: ToString>(
    asked: &BTreeMap<OwnedUserId, BTreeMap<D, A>>,
) -> BTreeMap<String, BTreeMap<String, String>> {
    asked
        .iter()
        .map(|(u, d)| (u.to_string(), d.iter().map(|(d, a)| (d.to_string(), a.to_string())).collect()))
        .collect()
}

/// user -> device -> keys.
pub fn device_keys<T>(found: Map<String, Value>) -> Result<BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Raw<T>>>> {
    let mut out = BTreeMap::new();
    for (user, devices) in found {
        let Ok(user) = UserId::parse(user) else { continue };
        let mut per_device = BTreeMap::new();
        for (device, keys) in devices.as_object().into_iter().flatten() {
            per_device.insert(device.as_str().into(), raw(keys)?);
        }
        out.insert(user, per_device);
    }
    Ok(out)
}

/// The cross-signing keys of a query, into the answer's maps (`user_signing` None: not given).
pub fn cross_signing_keys<T>(
    q: &mut Queried,
    master: &mut BTreeMap<OwnedUserId, Raw<T>>,
    self_signing: &mut BTreeMap<OwnedUserId, Raw<T>>,
    mut user_signing: Option<&mut BTreeMap<OwnedUserId, Raw<T>>>,
) -> Result<()> {
    for (kind, keys) in std::mem::take(&mut q.cross_signing) {
        let target = match kind {
            "master" => &mut *master,
            "self_signing" => &mut *self_signing,
            _ => match user_signing.as_deref_mut() {
                Some(t) => t,
                None => continue,
            },
        };
        for (user, key) in keys {
            let Ok(user) = UserId::parse(user) else { continue };
            target.insert(user, raw(&key)?);
        }
    }
    Ok(())
}

/// user -> device -> key ID -> claimed key.
pub type Claimed<T> = BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<OwnedOneTimeKeyId, Raw<T>>>>;

pub fn claimed_keys<T>(claimed: Map<String, Value>) -> Result<Claimed<T>> {
    let mut out = BTreeMap::new();
    for (user, devices) in claimed {
        let Ok(user) = UserId::parse(user) else { continue };
        let mut per_device = BTreeMap::new();
        for (device, keys) in devices.as_object().into_iter().flatten() {
            let mut one = BTreeMap::new();
            for (id, key) in keys.as_object().into_iter().flatten() {
                let Ok(id) = OneTimeKeyId::parse(id) else { continue };
                one.insert(id, raw(key)?);
            }
            per_device.insert(device.as_str().into(), one);
        }
        out.insert(user, per_device);
    }
    Ok(out)
}
