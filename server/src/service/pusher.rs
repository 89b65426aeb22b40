//! Delivering notifications to push gateways (spec: Push Gateway API, the format Sygnal serves):
//! the rooms service queues a job for every notifying event and user; a worker posts it to each
//! of the user's HTTP pushers, retrying with exponential back-off, and removes pushkeys the
//! gateway rejects.

use std::{sync::Arc, time::Duration};

use ruma::{
    api::client::push::{Pusher, PusherKind},
    push::{Action, HttpPusherData, PushFormat, Tweak},
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::storage::{self, Db};

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
pub async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<PushJob>, cancel: CancellationToken) {
    // Built on the first notification: loading the TLS roots costs memory a server whose users
    // have no phones registered never needs.
    let mut http: Option<Arc<reqwest::Client>> = None;
    loop {
        let job = tokio::select! {
            _ = cancel.cancelled() => break,
            job = rx.recv() => match job { Some(j) => j, None => break },
        };
        let http = match &http {
            Some(c) => c.clone(),
            None => match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
                Ok(c) => http.insert(Arc::new(c)).clone(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the HTTP client for push; notifications will not be pushed");
                    continue;
                }
            },
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

async fn deliver(db: &Db, http: &reqwest::Client, url: &str, pusher: &Pusher, body: Value, cancel: &CancellationToken) {
    let mut pause = FIRST_BACKOFF;
    for attempt in 1..=MAX_ATTEMPTS {
        match http.post(url).json(&body).send().await {
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
            // A client error will not get better by trying again.
            Ok(resp) if resp.status().is_client_error() && resp.status() != reqwest::StatusCode::TOO_MANY_REQUESTS => {
                tracing::warn!(%url, status = %resp.status(), "push gateway refused a notification");
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
