//! Delayed events (MSC4140, with Synapse's endpoints and rules): a user schedules an event to be
//! sent after a delay; until then they may restart the delay (a heartbeat), send it at once or
//! cancel it. Element Call schedules "I left the call" this way, so a call does not keep a
//! participant whose phone died.
//!
//! Scheduled events live in the database, so they survive restarts; one task sleeps until the
//! next is due. An event is sent with its delay ID as the transaction ID of a device no client
//! has, so sending one again after a crash answers the event already stored instead of sending
//! a second one.

use std::{sync::Arc, time::Duration};

use http::StatusCode;
use ruma::{RoomId, UserId};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    now_ms,
    rooms::{Rooms, StateChange, Txn},
};
use crate::{
    config::Config,
    error::{Error, Result},
    storage::{self, Db},
};

/// A scheduled event, as the API lists it.
pub use crate::storage::delayed_events::DelayedEvent;

/// The device the events are sent from (for their transaction IDs; no client sees it).
const SENDING_DEVICE: &str = "org.matrix.msc4140.delayed_events";

/// Synapse's error code for a delay over `max_event_delay_duration`.
const DELAY_TOO_LARGE: &str = "ORG.MATRIX.MSC4140_DELAY_TOO_LARGE";

/// Longest event type or state key (bytes), as the spec limits them.
const MAX_ID_BYTES: usize = 255;

pub struct DelayedEvents {
    db: Db,
    rooms: Arc<Rooms>,
    /// None: scheduling is switched off.
    max_delay: Option<Duration>,
    max_per_user: u32,
    /// The next due time may have moved earlier.
    wake: Notify,
}

/// A request to schedule an event.
pub struct Schedule<'a> {
    pub room_id: &'a RoomId,
    pub user: &'a UserId,
    pub event_type: &'a str,
    pub state_key: Option<&'a str>,
    pub content: serde_json::Value,
    pub delay: Duration,
    /// (device, transaction ID) of a PUT: a retry answers the first delay ID.
    pub txn: Option<(&'a str, &'a str)>,
}

impl DelayedEvents {
    pub fn new(db: Db, config: &Config, rooms: Arc<Rooms>) -> Self {
        let max_delay = config.max_event_delay_duration.map(|d| d.0).filter(|d| !d.is_zero());
        let max_per_user = config.experimental_features.msc4140_max_delayed_events_per_user;
        Self { db, rooms, max_delay: max_delay.filter(|_| max_per_user > 0), max_per_user, wake: Notify::new() }
    }

    /// The longest delay allowed (0 when scheduling is off), for `/capabilities`.
    pub fn max_delay_ms(&self) -> u64 {
        self.max_delay.map_or(0, |d| d.as_millis() as u64)
    }

    pub fn enabled(&self) -> bool {
        self.max_delay.is_some()
    }

    /// Most events one user may have scheduled at a time.
    pub fn max_scheduled(&self) -> u32 {
        self.max_per_user
    }

    /// Schedules an event; returns its delay ID.
    pub async fn schedule(&self, s: Schedule<'_>) -> Result<String> {
        let Some(max) = self.max_delay else {
            return Err(Error::forbidden("Sending delayed events has been disallowed"));
        };
        if s.delay > max {
            return Err(Error::custom(
                StatusCode::BAD_REQUEST,
                DELAY_TOO_LARGE,
                format!(
                    "The requested delay ({}ms) exceeds the allowed maximum ({}ms)",
                    s.delay.as_millis(),
                    max.as_millis()
                ),
            ));
        }
        if s.event_type.len() > MAX_ID_BYTES || s.state_key.is_some_and(|k| k.len() > MAX_ID_BYTES) {
            return Err(Error::bad_json("The event type and state key must be at most 255 bytes"));
        }
        let content = super::rooms::to_canonical_object(s.content)?;
        let content = serde_json::to_string(&content).map_err(Error::internal)?;
        // What an event around this content would weigh; the exact check happens when it is sent.
        if content.len() + 1024 > 65536 {
            return Err(Error::too_large("The event is larger than 65536 bytes"));
        }
        if self.rooms.room(s.room_id).await?.is_none() {
            return Err(Error::not_found("Unknown room"));
        }
        let user = s.user.as_str();
        let now = now_ms();
        let delay_ms = i64::try_from(s.delay.as_millis()).unwrap_or(i64::MAX);
        let delay_id = format!("hd_{}", super::tokens::random_alphanumeric(24));
        let mut tx = self.db.begin_write().await?;
        if let Some((device, txn_id)) = s.txn
            && let Some(first) = storage::delayed_events::by_txn(&mut *tx, user, device, txn_id).await?
        {
            return Ok(first);
        }
        let limit = i64::from(self.max_per_user);
        let count = storage::delayed_events::count_of(&mut *tx, user).await?;
        if count >= limit {
            // One more fits once the earliest `count - limit + 1` are sent.
            let nth = storage::delayed_events::nth_send_ts(&mut *tx, user, count - limit + 1).await?;
            let wait = nth.map_or(0, |ts| ts - now).max(1) as u64;
            let mut e = Error::limit_exceeded(Duration::from_millis(wait));
            if let Error::Matrix { message, .. } = &mut e {
                "The maximum number of delayed events has been reached".clone_into(message);
            }
            return Err(e);
        }
        storage::delayed_events::insert(
            &mut *tx,
            &storage::delayed_events::NewDelayed {
                delay_id: &delay_id,
                user_id: user,
                room_id: s.room_id.as_str(),
                event_type: s.event_type,
                state_key: s.state_key,
                content: &content,
                delay_ms,
                send_ts: now.saturating_add(delay_ms),
                txn: s.txn,
            },
        )
        .await?;
        tx.commit().await?;
        self.wake.notify_one();
        tracing::debug!(%delay_id, delay_ms, "delayed event scheduled");
        Ok(delay_id)
    }

    /// The user's scheduled events, soonest first.
    pub async fn list(&self, user: &UserId) -> Result<Vec<DelayedEvent>> {
        Ok(storage::delayed_events::pending_of(&self.db.read, user.as_str()).await?)
    }

    /// One of the user's scheduled events.
    pub async fn get(&self, user: &UserId, delay_id: &str) -> Result<DelayedEvent> {
        storage::delayed_events::pending_one(&self.db.read, user.as_str(), delay_id).await?.ok_or_else(not_found)
    }

    /// Drops a scheduled event. As in Synapse, knowing the delay ID is enough: a call's server
    /// side may cancel for a client that is gone.
    pub async fn cancel(&self, delay_id: &str) -> Result<()> {
        if !storage::delayed_events::cancel(&self.db.write, delay_id).await? {
            return Err(not_found());
        }
        Ok(())
    }

    /// Starts a scheduled event's delay again from now.
    pub async fn restart(&self, delay_id: &str) -> Result<()> {
        if !storage::delayed_events::restart(&self.db.write, delay_id, now_ms()).await? {
            return Err(not_found());
        }
        // Usually later than before, but the task must not sleep past another due event
        // either way; waking it costs one query.
        self.wake.notify_one();
        Ok(())
    }

    /// Sends a scheduled event now.
    pub async fn send_now(&self, delay_id: &str) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let event = storage::delayed_events::take(&mut tx, delay_id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        let result = self.send(&event).await;
        storage::delayed_events::delete(&self.db.write, &event.delay_id).await?;
        result.map(|_| ())
    }

    /// Sends one event as its owner would have at the time, then it is forgotten whatever came
    /// of it (as in Synapse: a room the owner left refuses it, and waiting will not change that).
    async fn send(&self, e: &DelayedEvent) -> Result<ruma::OwnedEventId> {
        let room_id = RoomId::parse(&e.room_id).map_err(Error::internal)?;
        let user = UserId::parse(&e.user_id).map_err(Error::internal)?;
        let content: serde_json::Value = serde_json::from_str(&e.content).map_err(Error::internal)?;
        let txn = Txn { user_id: &e.user_id, device_id: SENDING_DEVICE, txn_id: &e.delay_id };
        match &e.state_key {
            Some(key) => self.rooms.set_state(&room_id, &user, &e.event_type, key, content, Some(txn)).await,
            None => self.rooms.send(&room_id, &user, &e.event_type, None, content, Some(txn)).await,
        }
    }

    /// Sends every event that is due. After a restart (`again`), also those a previous run had
    /// begun sending: their transaction IDs stop a second copy.
    async fn send_due(&self, again: bool) -> Result<()> {
        let mut tx = self.db.begin_write().await?;
        let due = storage::delayed_events::take_due(&mut tx, now_ms(), again).await?;
        tx.commit().await?;
        // Of several due changes to one piece of state, the first is sent (as Synapse does).
        let mut state_sent = std::collections::HashSet::new();
        for e in &due {
            let first_for_state =
                e.state_key.as_ref().is_none_or(|k| state_sent.insert((&e.room_id, &e.event_type, k.as_str())));
            if first_for_state {
                match self.send(e).await {
                    Ok(event_id) => tracing::info!(delay_id = %e.delay_id, %event_id, "delayed event sent"),
                    Err(err) => tracing::info!(delay_id = %e.delay_id, error = %err, "delayed event refused"),
                }
            }
            storage::delayed_events::delete(&self.db.write, &e.delay_id).await?;
        }
        Ok(())
    }

    /// A state event was stored: whoever else had scheduled a change to the same state loses
    /// it (someone changed it in the meantime; Synapse's rule).
    async fn state_changed(&self, c: &StateChange) -> Result<()> {
        let (room, kind, key, sender) = (&c.room_id, &c.event_type, &c.state_key, &c.sender);
        // A read first: almost no state change has a scheduled rival, and a read costs the
        // writer nothing.
        if storage::delayed_events::has_pending_state_of_others(&self.db.read, room, kind, key, sender).await? {
            let n = storage::delayed_events::cancel_state_of_others(&self.db.write, room, kind, key, sender).await?;
            tracing::debug!(room_id = %room, event_type = %kind, cancelled = n, "state changed: delayed events cancelled");
        }
        Ok(())
    }

    /// Sends events as they come due and cancels those that state changes overtake, until
    /// `cancel`.
    pub async fn run(self: Arc<Self>, mut changes: mpsc::UnboundedReceiver<StateChange>, cancel: CancellationToken) {
        let mut again = true;
        loop {
            if let Err(e) = self.send_due(again).await {
                tracing::warn!(error = %e, "sending delayed events");
            }
            again = false;
            let next = match storage::delayed_events::next_send_ts(&self.db.read).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "reading when the next delayed event is due");
                    Some(now_ms() + 1000)
                }
            };
            // No timer at all while nothing is scheduled: an idle server stays asleep.
            let sleep = async {
                match next {
                    Some(ts) => tokio::time::sleep(Duration::from_millis((ts - now_ms()).max(0) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                change = changes.recv() => match change {
                    Some(c) => {
                        if let Err(e) = self.state_changed(&c).await {
                            tracing::warn!(error = %e, "cancelling delayed events overtaken by a state change");
                        }
                    }
                    None => break,
                },
                _ = sleep => {}
            }
        }
    }
}

fn not_found() -> Error {
    Error::not_found("Delayed event not found")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::SecretStoreChoice,
        secrets::Secrets,
        service::{
            account_data::AccountData,
            notifier::Notifier,
            pusher,
            rooms::create::{CreateRoom, Preset},
            signing::ServerKeys,
        },
    };

    /// A crash after an event was sent but before its row was removed: the next start sends
    /// it again, and the transaction ID makes that the same event, not a second one.
    #[tokio::test]
    async fn an_event_whose_sending_was_interrupted_is_not_sent_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("hearth.db")).await.unwrap();
        let secrets = Secrets::open(SecretStoreChoice::File, dir.path()).unwrap();
        let server_name = ruma::ServerName::parse("hearth.test").unwrap();
        let config = Arc::new(Config { server_name: server_name.clone(), ..Config::default() });
        let keys = ServerKeys::load_or_create(&secrets, server_name).unwrap();
        let notifier = Arc::new(Notifier::default());
        let (push_tx, push_rx) = pusher::channel();
        std::mem::forget(push_rx);
        let account_data = Arc::new(AccountData::new(db.clone(), notifier.clone()).await.unwrap());
        let rooms =
            Arc::new(Rooms::new(db.clone(), config.clone(), keys, notifier, push_tx, account_data).await.unwrap());
        let alice = UserId::parse("@alice:hearth.test").unwrap();
        let room = rooms
            .create_room(CreateRoom {
                creator: alice.clone(),
                version: ruma::RoomVersionId::V12,
                preset: Preset::PrivateChat,
                publish: false,
                alias_localpart: None,
                name: None,
                topic: None,
                invite: vec![],
                is_direct: false,
                initial_state: vec![],
                creation_content: None,
                power_level_content_override: None,
                room_id: None,
            })
            .await
            .unwrap();
        let delayed = DelayedEvents::new(db.clone(), &config, rooms.clone());
        let content = serde_json::json!({"msgtype": "m.text", "body": "bye"});
        let schedule = Schedule {
            room_id: &room,
            user: &alice,
            event_type: "m.room.message",
            state_key: None,
            content,
            delay: Duration::ZERO,
            txn: None,
        };
        delayed.schedule(schedule).await.unwrap();

        // The first run takes it and sends it, then "dies" before forgetting it.
        let mut tx = db.begin_write().await.unwrap();
        let taken = storage::delayed_events::take_due(&mut tx, now_ms(), false).await.unwrap();
        tx.commit().await.unwrap();
        let first = delayed.send(&taken[0]).await.unwrap();
        // A fresh server (nothing in memory) sends what was begun again.
        let rooms2 = {
            let notifier = Arc::new(Notifier::default());
            let (push_tx, push_rx) = pusher::channel();
            std::mem::forget(push_rx);
            let account_data = Arc::new(AccountData::new(db.clone(), notifier.clone()).await.unwrap());
            let keys = ServerKeys::load_or_create(&secrets, config.server_name.clone()).unwrap();
            Arc::new(Rooms::new(db.clone(), config.clone(), keys, notifier, push_tx, account_data).await.unwrap())
        };
        let restarted = DelayedEvents::new(db.clone(), &config, rooms2.clone());
        let mut tx = db.begin_write().await.unwrap();
        let again = storage::delayed_events::take_due(&mut tx, now_ms(), true).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(again.len(), 1, "the interrupted one is taken again");
        let second = restarted.send(&again[0]).await.unwrap();
        assert_eq!(first, second, "sending again answers the first event");
        restarted.send_due(true).await.unwrap();
        assert_eq!(storage::delayed_events::next_send_ts(&db.read).await.unwrap(), None, "nothing left");
        assert_eq!(storage::delayed_events::count_of(&db.read, alice.as_str()).await.unwrap(), 0);
    }
}
