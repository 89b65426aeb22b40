//! End-to-end encryption endpoints (spec: client-server API, "End-to-End Encryption" and
//! "Send-to-Device messaging"). The work is in `service::e2ee`.

use std::collections::{BTreeMap, HashSet};

use axum::extract::State;
use ruma::{
    UInt,
    api::client::{
        keys::{claim_keys, get_key_changes, get_keys, upload_keys, upload_signatures, upload_signing_keys},
        to_device::send_event_to_device,
    },
    serde::Raw,
};
use serde_json::Value;

use crate::{
    api::key_shapes::{self as shapes, raw},
    error::{Error, Result},
    http::ruma::{Ruma, RumaResponse},
    service::{AppState, e2ee::SigningUpload, sync::SyncToken},
};

/// POST /_matrix/client/v3/keys/upload
pub async fn upload_keys(
    State(s): State<AppState>,
    req: Ruma<upload_keys::v3::Request>,
) -> Result<RumaResponse<upload_keys::v3::Response>> {
    let session = req.session();
    // An admin acting as the user has no device of the user's to hold keys (Synapse: no device).
    if session.puppet
        && (req.body.device_keys.is_some() || !req.body.one_time_keys.is_empty() || !req.body.fallback_keys.is_empty())
    {
        return Err(Error::invalid_param("This session is an admin acting as the user: it has no device to hold keys"));
    }
    let otks: Vec<(String, String)> =
        req.body.one_time_keys.iter().map(|(id, k)| (id.to_string(), k.json().get().to_owned())).collect();
    let fallbacks: Vec<(String, String)> =
        req.body.fallback_keys.iter().map(|(id, k)| (id.to_string(), k.json().get().to_owned())).collect();
    let counts = s
        .e2ee
        .upload_keys(
            session.user_id.as_str(),
            session.device_id.as_str(),
            req.body.device_keys.as_ref().map(|k| k.json().get()),
            &otks,
            &fallbacks,
        )
        .await?;
    Ok(RumaResponse(upload_keys::v3::Response::new(
        counts.into_iter().map(|(a, n)| (a.as_str().into(), UInt::try_from(n).unwrap_or_default())).collect(),
    )))
}

/// How long other servers are waited for (spec: `timeout`, 10 seconds by default), at most
/// a minute.
fn remote_timeout(asked: Option<std::time::Duration>) -> std::time::Duration {
    asked.unwrap_or(std::time::Duration::from_secs(10)).min(std::time::Duration::from_secs(60))
}

/// POST /_matrix/client/v3/keys/query
pub async fn get_keys(
    State(s): State<AppState>,
    req: Ruma<get_keys::v3::Request>,
) -> Result<RumaResponse<get_keys::v3::Response>> {
    let requested = shapes::requested_devices(&req.body.device_keys);
    let mut q = s.e2ee.query_keys(req.session().user_id.as_str(), &requested, remote_timeout(req.body.timeout)).await?;
    let mut resp = get_keys::v3::Response::new();
    resp.failures = std::mem::take(&mut q.failures).into_iter().collect();
    shapes::cross_signing_keys(
        &mut q,
        &mut resp.master_keys,
        &mut resp.self_signing_keys,
        Some(&mut resp.user_signing_keys),
    )?;
    resp.device_keys = shapes::device_keys(q.device_keys)?;
    Ok(RumaResponse(resp))
}

/// POST /_matrix/client/v3/keys/claim
pub async fn claim_keys(
    State(s): State<AppState>,
    req: Ruma<claim_keys::v3::Request>,
) -> Result<RumaResponse<claim_keys::v3::Response>> {
    let requested = shapes::requested_claims(&req.body.one_time_keys);
    let (keys, failures) = s.e2ee.claim_keys(&requested, remote_timeout(req.body.timeout)).await?;
    let mut resp = claim_keys::v3::Response::new(shapes::claimed_keys(keys)?);
    resp.failures = failures.into_iter().collect();
    Ok(RumaResponse(resp))
}

/// GET /_matrix/client/v3/keys/changes
pub async fn get_key_changes(
    State(s): State<AppState>,
    req: Ruma<get_key_changes::v3::Request>,
) -> Result<RumaResponse<get_key_changes::v3::Response>> {
    let user = req.session().user_id.clone();
    let from = SyncToken::parse(&req.body.from)?;
    let to = SyncToken::parse(&req.body.to)?;
    let mut changed: Vec<String> =
        s.e2ee.changed_device_lists(user.as_str(), from.device_lists, to.device_lists).await?;
    let mut gone = Vec::new();
    for (who, membership) in s.rooms.membership_changes_around(&user, from.events, to.events).await? {
        match membership.as_str() {
            "join" => changed.push(who),
            "leave" | "ban" => gone.push(who),
            _ => {}
        }
    }
    let still: HashSet<String> = s.rooms.co_members(&user).await?.into_iter().collect();
    let left: Vec<String> = gone.into_iter().filter(|u| !still.contains(u)).collect();
    let parse = |list: Vec<String>| -> Vec<ruma::OwnedUserId> {
        crate::service::e2ee::sorted(list).into_iter().filter_map(|u| ruma::UserId::parse(u).ok()).collect()
    };
    Ok(RumaResponse(get_key_changes::v3::Response::new(parse(changed), parse(left))))
}

/// PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}
pub async fn send_event_to_device(
    State(s): State<AppState>,
    req: Ruma<send_event_to_device::v3::Request>,
) -> Result<RumaResponse<send_event_to_device::v3::Response>> {
    let session = req.session();
    let event_type = req.body.event_type.to_string();
    let mut messages = Vec::new();
    for (user, devices) in &req.body.messages {
        // Key requests to other users over `rc_key_requests` are dropped, as Synapse does: the
        // requester asks again later, and a flood never reaches the other user's devices.
        if event_type == "m.room_key_request"
            && *user != session.user_id
            && !s.limits.key_request(&session.user_id, session.device_id.as_str())
        {
            tracing::info!(to = %user, "dropping key requests over rc_key_requests");
            continue;
        }
        for (device, content) in devices {
            let content: Value =
                serde_json::from_str(content.json().get()).map_err(|e| Error::bad_json(e.to_string()))?;
            messages.push((user.to_string(), device.to_string(), content));
        }
    }
    s.e2ee
        .send_to_device(
            session.user_id.as_str(),
            session.device_id.as_str(),
            req.body.txn_id.as_str(),
            &event_type,
            messages,
        )
        .await?;
    Ok(RumaResponse(send_event_to_device::v3::Response::new()))
}

/// POST /_matrix/client/v3/keys/device_signing/upload. The first upload needs no password
/// (MSC3967, in the spec since v1.11); replacing keys does.
pub async fn upload_signing_keys(
    State(s): State<AppState>,
    req: Ruma<upload_signing_keys::v3::Request>,
) -> Result<RumaResponse<upload_signing_keys::v3::Response>> {
    let session = req.session();
    let user = session.user_id.as_str();
    let text = |k: &Option<Raw<ruma::encryption::CrossSigningKey>>| k.as_ref().map(|k| k.json().get().to_owned());
    let (master, self_signing, user_signing) =
        (text(&req.body.master_key), text(&req.body.self_signing_key), text(&req.body.user_signing_key));
    match s.e2ee.signing_upload_kind(user, master.as_deref(), self_signing.as_deref(), user_signing.as_deref()).await? {
        // Synapse answers a repeat (and an empty body, Element's probe) with 200 and changes
        // nothing, not even the device list stream.
        SigningUpload::Unchanged => return Ok(RumaResponse(upload_signing_keys::v3::Response::new())),
        SigningUpload::FirstSetup => {}
        SigningUpload::Replace => {
            s.accounts.uia_password(session, "device_signing_upload", req.body.auth.as_ref()).await?;
        }
    }
    s.e2ee.upload_signing_keys(user, master.as_deref(), self_signing.as_deref(), user_signing.as_deref()).await?;
    Ok(RumaResponse(upload_signing_keys::v3::Response::new()))
}

/// POST /_matrix/client/v3/keys/signatures/upload
pub async fn upload_signatures(
    State(s): State<AppState>,
    req: Ruma<upload_signatures::v3::Request>,
) -> Result<RumaResponse<upload_signatures::v3::Response>> {
    let mut signed: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (user, keys) in &req.body.signed_keys {
        let entry = signed.entry(user.to_string()).or_default();
        for (key_id, value) in keys.iter() {
            entry.insert(key_id.to_owned(), value.get().to_owned());
        }
    }
    let failures = s.e2ee.upload_signatures(req.session().user_id.as_str(), &signed).await?;
    let mut resp = upload_signatures::v3::Response::new();
    for (user, per_key) in failures {
        let user = ruma::UserId::parse(user).map_err(Error::internal)?;
        let per_key = serde_json::from_value(per_key).map_err(Error::internal)?;
        resp.failures.insert(user, per_key);
    }
    Ok(RumaResponse(resp))
}

/// PUT /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
pub async fn put_dehydrated_device(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::dehydrated_device::put_dehydrated_device::unstable::Request>,
) -> Result<RumaResponse<ruma::api::client::dehydrated_device::put_dehydrated_device::unstable::Response>> {
    let user = req.session().user_id.as_str();
    let b = &req.body;
    let otks: Vec<(String, String)> =
        b.one_time_keys.iter().map(|(id, k)| (id.to_string(), k.json().get().to_owned())).collect();
    let fallbacks: Vec<(String, String)> =
        b.fallback_keys.iter().map(|(id, k)| (id.to_string(), k.json().get().to_owned())).collect();
    s.e2ee
        .put_dehydrated_device(
            user,
            b.device_id.as_str(),
            b.initial_device_display_name.as_deref(),
            b.device_data.json().get(),
            b.device_keys.json().get(),
            &otks,
            &fallbacks,
        )
        .await?;
    Ok(RumaResponse(ruma::api::client::dehydrated_device::put_dehydrated_device::unstable::Response::new(
        b.device_id.clone(),
    )))
}

/// GET /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
pub async fn get_dehydrated_device(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::dehydrated_device::get_dehydrated_device::unstable::Request>,
) -> Result<RumaResponse<ruma::api::client::dehydrated_device::get_dehydrated_device::unstable::Response>> {
    let (device, data) = s.e2ee.dehydrated_device(req.session().user_id.as_str()).await?;
    Ok(RumaResponse(ruma::api::client::dehydrated_device::get_dehydrated_device::unstable::Response::new(
        device.into(),
        raw(&data)?,
    )))
}

/// DELETE /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device
pub async fn delete_dehydrated_device(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::dehydrated_device::delete_dehydrated_device::unstable::Request>,
) -> Result<RumaResponse<ruma::api::client::dehydrated_device::delete_dehydrated_device::unstable::Response>> {
    let device = s.e2ee.delete_dehydrated_device(req.session().user_id.as_str()).await?;
    Ok(RumaResponse(ruma::api::client::dehydrated_device::delete_dehydrated_device::unstable::Response::new(
        device.into(),
    )))
}

/// POST /_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device/{deviceId}/events
pub async fn get_dehydrated_events(
    State(s): State<AppState>,
    req: Ruma<ruma::api::client::dehydrated_device::get_events::unstable::Request>,
) -> Result<RumaResponse<ruma::api::client::dehydrated_device::get_events::unstable::Response>> {
    let (events, next) = s
        .e2ee
        .dehydrated_events(req.session().user_id.as_str(), req.body.device_id.as_str(), req.body.next_batch.as_deref())
        .await?;
    let mut resp = ruma::api::client::dehydrated_device::get_events::unstable::Response::new(
        events.iter().map(raw).collect::<Result<_>>()?,
    );
    resp.next_batch = next;
    Ok(RumaResponse(resp))
}
