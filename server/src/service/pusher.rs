//! Pushers and delivering notifications to push gateways (spec: Push Gateway API, the format
//! Sygnal serves): the rooms service queues a job for every notifying event and user; a worker
//! posts it to each of the user's HTTP pushers, retrying with exponential back-off, and removes
//! pushkeys the gateway rejects. Gateways are reached through the outbound policy only (a user
//! chooses the URL), and their redirects are not followed.

use std::{sync::Arc, time::Duration};

use ruma::{
    UserId,
    api::client::push::{Pusher, PusherIds, PusherKind},
    push::{Action, HttpPusherData, PushFormat, Tweak},
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::outbound::{IpPolicy, Outbound, OutboundError, Redirects};
use crate::{
    error::{Error, Result},
    storage::{self, Db, now_ms},
};

/// The path the Push Gateway API fixes for notifications.
const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

/// The pushers users register (`/pushers`).
pub struct Pushers {
    db: Db,
    policy: IpPolicy,
}

impl Pushers {
    pub fn new(db: Db, policy: IpPolicy) -> Self {
        Self { db, policy }
    }

    pub async fn list(&self, user: &UserId) -> Result<Vec<Pusher>> {
        let rows = storage::pushers::list(&self.db.read, user.as_str()).await?;
        Ok(rows.iter().filter_map(|t| serde_json::from_str(t).ok()).collect())
    }

    /// Adds or replaces a pusher; without `append`, other users' pushers with the same app ID
    /// and pushkey go (spec: "POST /pushers/set", `append`).
    pub async fn set(&self, user: &UserId, p: &Pusher, append: bool) -> Result<()> {
        if p.ids.pushkey.len() > 512 || p.ids.app_id.len() > 64 {
            return Err(Error::invalid_param("pushkey is limited to 512 bytes and app_id to 64"));
        }
        match &p.kind {
            PusherKind::Http(data) => self.check_gateway(&data.url)?,
            PusherKind::Email(_) => return Err(Error::invalid_param("Email pushers are not supported by this server")),
            _ => return Err(Error::invalid_param("Unknown pusher kind")),
        }
        let text = serde_json::to_string(p).map_err(Error::internal)?;
        let mut tx = self.db.begin_write().await?;
        if !append {
            storage::pushers::delete_for_others(&mut *tx, user.as_str(), &p.ids.app_id, &p.ids.pushkey).await?;
        }
        storage::pushers::upsert(&mut *tx, user.as_str(), &p.ids.app_id, &p.ids.pushkey, &text, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete(&self, user: &UserId, ids: &PusherIds) -> Result<()> {
        storage::pushers::delete(&self.db.write, user.as_str(), &ids.app_id, &ids.pushkey).await?;
        Ok(())
    }

    /// A gateway URL must be http(s) with the API's path (spec: `data.url`), and an address
    /// given literally must be one the outbound policy lets the server contact. Host names are
    /// checked when a notification is delivered, after DNS.
    fn check_gateway(&self, url: &str) -> Result<()> {
        let url = url::Url::parse(url).map_err(|_| Error::invalid_param("data.url is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.path() != NOTIFY_PATH {
            return Err(Error::invalid_param(format!("data.url must be an http(s) URL ending in {NOTIFY_PATH}")));
        }
        match self.policy.check_url(&url) {
            Ok(()) => Ok(()),
            Err(OutboundError::Blocked(why)) => Err(Error::invalid_param(format!(
                "data.url: this server does not send notifications to that address ({why}); see ip_range_whitelist"
            ))),
            Err(e) => Err(Error::invalid_param(format!("data.url: {e}"))),
        }
    }
}

/// The client for push gateways: the outbound policy, no redirects.
pub fn client(policy: IpPolicy) -> Outbound {
    Outbound::new(policy, "push", REQUEST_TIMEOUT, Redirects::Refuse)
}

/// One notification for one user.
#[derive(Debug, Clone)]
pub struct PushJob {
    pub user_id: String,
    pub room_id: String,
    pub event: Value,
    pub actions: Vec<Action>,
    /// Filled in by the worker just before delivery.
    pub unread: i64,
    pub room_name: Option<String>,
    pub sender_display_name: Option<String>,
}

/// How often a delivery is tried before it is dropped, and the first pause between tries.
pub const MAX_ATTEMPTS: u32 = 6;
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

pub fn channel() -> (mpsc::UnboundedSender<PushJob>, mpsc::UnboundedReceiver<PushJob>) {
    mpsc::unbounded_channel()
}

/// The notification body for one pusher, in the Push Gateway API's format.
pub fn payload(job: &PushJob, pusher: &Pusher, data: &HttpPusherData) -> Value {
    let mut tweaks = Map::new();
    for a in &job.actions {
        if let Action::SetTweak(t) = a {
            match t {
                Tweak::Sound(s) => {
                    tweaks.insert("sound".into(), json!(s));
                }
                Tweak::Highlight(h) => {
                    tweaks.insert("highlight".into(), json!(*h == ruma::push::HighlightTweakValue::Yes));
                }
                _ => {}
            }
        }
    }
    // The pusher's data minus the URL goes back to the gateway as the device's data.
    let mut device_data = serde_json::to_value(data).unwrap_or_else(|_| json!({}));
    if let Some(o) = device_data.as_object_mut() {
        o.remove("url");
    }
    let device = json!({
        "app_id": pusher.ids.app_id,
        "pushkey": pusher.ids.pushkey,
        "data": device_data,
        "tweaks": tweaks,
    });
    let mut n = json!({
        "event_id": job.event["event_id"],
        "room_id": job.room_id,
        "counts": { "unread": job.unread },
        "devices": [device],
        "prio": if job.actions.iter().any(Action::is_highlight) { "high" } else { "low" },
    });
    if data.format != Some(PushFormat::EventIdOnly) {
        n["type"] = job.event["type"].clone();
        n["sender"] = job.event["sender"].clone();
        n["content"] = job.event["content"].clone();
        if let Some(name) = &job.room_name {
            n["room_name"] = json!(name);
        }
        if let Some(name) = &job.sender_display_name {
            n["sender_display_name"] = json!(name);
        }
        if job.event["type"] == "m.room.member" {
            n["membership"] = job.event["content"]["membership"].clone();
            n["user_is_target"] = json!(job.event["state_key"] == job.user_id.as_str());
        }
    }
    json!({ "notification": n })
}

/// Runs until cancelled: takes jobs and delivers each in its own task (so one slow gateway
/// does not hold up the others).
pub async fn run(db: Db, http: Arc<Outbound>, mut rx: mpsc::UnboundedReceiver<PushJob>, cancel: CancellationToken) {
    loop {
        let job = tokio::select! {
            _ = cancel.cancelled() => break,
            job = rx.recv() => match job { Some(j) => j, None => break },
        };
        // The count the phone shows: the user's unread notifications in the room, this event
        // included (it is committed before the job is queued).
        let mut job = job;
        match storage::push_actions::unread(&db.read, &job.user_id, &job.room_id).await {
            Ok(rows) => job.unread = rows.iter().map(|(_, n, _)| n).sum(),
            Err(e) => tracing::warn!(error = %e, "cannot count unread notifications for a push"),
        }
        let pushers = match storage::pushers::list(&db.read, &job.user_id).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read pushers");
                continue;
            }
        };
        for text in pushers {
            let Ok(pusher) = serde_json::from_str::<Pusher>(&text) else { continue };
            let PusherKind::Http(data) = &pusher.kind else { continue };
            let body = payload(&job, &pusher, data);
            let (db, http, cancel) = (db.clone(), http.clone(), cancel.clone());
            let url = data.url.clone();
            tokio::spawn(async move {
                deliver(&db, &http, &url, &pusher, body, &cancel).await;
            });
        }
    }
}

async fn deliver(db: &Db, http: &Outbound, url: &str, pusher: &Pusher, body: Value, cancel: &CancellationToken) {
    let mut pause = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        match post(http, url, &body).await {
            Ok(resp) if resp.status().is_success() => {
                let reply: Value = resp.json().await.unwrap_or_default();
                for rejected in reply["rejected"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if rejected == pusher.ids.pushkey {
                        tracing::info!(app_id = %pusher.ids.app_id, "push gateway rejected a pushkey; removing the pusher");
                        let _ = storage::pushers::delete_pushkey(&db.write, &pusher.ids.app_id, rejected).await;
                    }
                }
                return;
            }
            Ok(resp) if resp.status().is_redirection() => {
                tracing::warn!(%url, status = %resp.status(), "push gateway answered with a redirect, which is not followed");
                return;
            }
            // A client error will not get better by trying again.
            Ok(resp) if resp.status().is_client_error() && resp.status() != reqwest::StatusCode::TOO_MANY_REQUESTS => {
                tracing::warn!(%url, status = %resp.status(), "push gateway refused a notification");
                return;
            }
            Err(OutboundError::Blocked(why) | OutboundError::Invalid(why)) => {
                tracing::warn!(%url, %why, "push gateway not contacted: its address is refused (ip_range_blacklist)");
                return;
            }
            Ok(resp) => tracing::debug!(%url, status = %resp.status(), attempt, "push gateway failed; will retry"),
            Err(e) => tracing::debug!(%url, error = %e, attempt, "push gateway unreachable; will retry"),
        }
        if attempt == MAX_ATTEMPTS {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause *= 2;
    }
    tracing::warn!(%url, "giving up on a push notification after {MAX_ATTEMPTS} attempts");
}

async fn post(http: &Outbound, url: &str, body: &Value) -> Result<reqwest::Response, OutboundError> {
    let url = url::Url::parse(url).map_err(|e| OutboundError::Invalid(format!("the pusher's URL: {e}")))?;
    http.send(http.request(reqwest::Method::POST, url)?.json(body)).await
}
