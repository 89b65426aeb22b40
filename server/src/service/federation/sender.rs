//! Sending room events to the other servers in our rooms (spec: "Transactions"). Each
//! destination has a position in the event stream, kept in SQLite: what is after it and was
//! sent by a local user into a room the destination has a member in goes out in transactions of
//! at most 50 PDUs, one in flight per destination, retried with exponential back-off. After a
//! restart sending goes on from the stored position, so nothing answered is lost.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use ruma::{
    MilliSecondsSinceUnixEpoch, OwnedServerName, ServerName, TransactionId, UInt,
    api::federation::transactions::send_transaction_message,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    client::{FederationClient, FederationError},
    outbox::{EduOutbox, Queued, Scope},
};
use crate::{
    service::{
        e2ee::{DeviceListHead, E2ee},
        notifier::Notifier,
        now_ms,
        rooms::Rooms,
    },
    storage::{self, Db},
};

/// Most PDUs and EDUs in one transaction (the spec's limits).
const MAX_PDUS: i64 = 50;
const MAX_EDUS: usize = 100;
/// First wait after a failure, and the longest.
const MIN_BACKOFF_MS: i64 = 5_000;
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// A destination for the dashboard.
#[derive(Debug, serde::Serialize)]
pub struct DestinationView {
    #[serde(flatten)]
    pub status: storage::federation::DestinationStatus,
    /// Events waiting to be sent to it.
    pub queued: i64,
    /// Whether it is waiting out a back-off (until `retry_at`).
    pub backing_off: bool,
}

pub struct Sender {
    db: Db,
    client: Arc<FederationClient>,
    rooms: Arc<Rooms>,
    e2ee: Arc<E2ee>,
    outbox: Arc<EduOutbox>,
    device_lists: Arc<DeviceListHead>,
    /// EDUs of the moment (typing, receipts, presence) per destination, newest per key, taken
    /// from the outbox and waiting for the destination's next transaction.
    pending: Mutex<HashMap<String, Vec<Queued>>>,
    /// Per destination, the device list position up to which it was found to have nothing
    /// to get (as `nothing_until` for events).
    device_lists_until: Mutex<HashMap<String, i64>>,
    /// The destinations known, as of a membership generation: looked up again only when
    /// someone joined or left somewhere.
    known: Mutex<(Option<u64>, HashSet<String>)>,
    /// Destinations with a transaction in flight.
    busy: Mutex<HashSet<String>>,
    /// Per destination, the stream position up to which it was found to have nothing to get:
    /// the events after its delivered position are not scanned again on every pass (a room
    /// busy with other servers' events would make each pass read them all). Memory only: after
    /// a restart the first pass scans from the delivered position once.
    nothing_until: Mutex<HashMap<String, i64>>,
    /// Wakes the loop when a destination finished or talked to us.
    wake: Notify,
    /// Destinations waiting out a back-off, so hearing from one costs nothing otherwise.
    backing_off: Mutex<HashSet<String>>,
    /// Whether any destination was ever recorded: a server that never federated skips its
    /// passes (a read per event written would be wasted).
    has_destinations: std::sync::atomic::AtomicBool,
}

impl Sender {
    pub fn new(
        db: Db,
        client: Arc<FederationClient>,
        rooms: Arc<Rooms>,
        e2ee: Arc<E2ee>,
        outbox: Arc<EduOutbox>,
        device_lists: Arc<DeviceListHead>,
    ) -> Self {
        Self {
            db,
            client,
            rooms,
            e2ee,
            outbox,
            device_lists,
            pending: Mutex::default(),
            device_lists_until: Mutex::default(),
            known: Mutex::default(),
            busy: Mutex::default(),
            nothing_until: Mutex::default(),
            wake: Notify::new(),
            backing_off: Mutex::default(),
            // Unknown until the first pass has looked.
            has_destinations: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// `destination` sent us a request: it is up, so anything waiting for it goes now.
    pub async fn heard_from(&self, destination: &ServerName) {
        if !self.backing_off.lock().remove(destination.as_str()) {
            return;
        }
        if let Ok(n) = storage::federation::clear_backoff(&self.db.write, destination.as_str()).await
            && n > 0
        {
            self.wake.notify_one();
        }
    }

    /// EDUs that must not be lost (to-device messages) waiting for other servers, in all.
    pub async fn queued_edus(&self) -> crate::error::Result<i64> {
        Ok(storage::federation::queued_edus_total(&self.db.read).await?)
    }

    /// The admin's `reset_connection`: the destination's back-off ends, and anything waiting
    /// for it goes now. False when it was not backing off.
    pub async fn reset_backoff(&self, destination: &str) -> crate::error::Result<bool> {
        self.backing_off.lock().remove(destination);
        let cleared = storage::federation::clear_backoff(&self.db.write, destination).await? > 0;
        if cleared {
            tracing::info!(%destination, "back-off reset by an admin");
            self.wake.notify_one();
        }
        Ok(cleared)
    }

    /// The rooms `destination` shares with this server (a member of it is joined), with the
    /// position of the latest event of each it was sent.
    pub async fn rooms_shared_with(&self, destination: &str, upto: i64) -> crate::error::Result<Vec<(String, i64)>> {
        Ok(storage::federation::rooms_shared_with(&self.db.read, destination, upto).await?)
    }

    /// Runs until `cancel`: a pass over the destinations whenever something was written, a
    /// transaction finished, or a back-off ends.
    pub async fn run(self: Arc<Self>, notifier: Arc<Notifier>, cancel: CancellationToken) {
        let mut written = notifier.subscribe();
        // Typing, receipts and the like wake the notifier too: a pass only when events were
        // written, a transaction ended, or a back-off is over.
        let mut seen_head = -1;
        let mut next_retry: Option<i64> = None;
        let mut woken = true;
        // The head at the last full pass and the membership generation it saw: while only
        // events this server never sends are written after it (a busy room of other servers'
        // users), a pass would find nothing new anywhere, so none is made.
        let mut quiet_from: Option<(i64, u64)> = None;
        let mut seen_device_lists = -1;
        loop {
            let head = self.rooms.stream_head();
            let outbound = self.rooms.outbound_head();
            let due = next_retry.is_some_and(|at| at <= now_ms());
            // A device list change (local or not: the query in the pass tells) is a reason to
            // look, as an EDU queued is.
            let device_lists = self.device_lists.get();
            if device_lists != seen_device_lists {
                seen_device_lists = device_lists;
                woken = true;
            }
            if !(woken || due || head != seen_head) {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = written.changed() => if r.is_err() { break },
                    _ = self.wake.notified() => woken = true,
                    _ = self.outbox.notified() => woken = true,
                    _ = sleep_until(next_retry) => {}
                }
                continue;
            }
            seen_head = head;
            let generation = self.rooms.membership_generation();
            if !woken
                && !due
                && let Some((from, seen_generation)) = quiet_from
                && outbound <= from
                && generation == seen_generation
            {
                // Nothing to send was written in (from, head]: who had nothing up to `from`
                // has nothing up to `head`.
                for until in self.nothing_until.lock().values_mut() {
                    if *until >= from {
                        *until = head;
                    }
                }
                quiet_from = Some((head, generation));
                continue;
            }
            woken = false;
            quiet_from = Some((head, generation));
            next_retry = match self.pass(head).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "federation sender");
                    Some(now_ms() + MIN_BACKOFF_MS)
                }
            };
        }
    }

    /// Starts a transaction for every destination that has events waiting and is not backing
    /// off; returns when the earliest back-off ends. `head`: the stream head, read before the
    /// pass (everything at or before it is written).
    async fn pass(self: &Arc<Self>, head: i64) -> crate::error::Result<Option<i64>> {
        let ours = self.client.origin().as_str().to_owned();
        let generation = self.rooms.membership_generation();
        if self.known.lock().0 != Some(generation) {
            let servers = storage::federation::servers_in_rooms(&self.db.read, &ours).await?;
            for server in &servers {
                if !self.known.lock().1.contains(server) {
                    let start = storage::federation::first_join_position(&self.db.read, server).await?.unwrap_or(0);
                    storage::federation::add_destination(&self.db.write, server, start).await?;
                }
            }
            if !servers.is_empty() {
                self.has_destinations.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            *self.known.lock() = (Some(generation), servers.into_iter().collect());
        }
        // EDUs queued in memory go to the servers they concern; durable ones are in the table.
        self.route_queued(&ours).await?;
        let durable = match self.outbox.durable_destinations() {
            Some(d) => d,
            None => {
                self.outbox
                    .loaded_durable_destinations(storage::federation::destinations_with_edus(&self.db.read).await?);
                self.outbox.durable_destinations().unwrap_or_default()
            }
        };
        if !durable.is_empty() || !self.pending.lock().is_empty() {
            self.has_destinations.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if !self.has_destinations.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        let device_lists_head = self.device_lists.get();
        // Destinations whose last member just left still get that leave (or kick): the table,
        // not the current members, says where to look.
        let now = now_ms();
        let mut next_retry: Option<i64> = None;
        let destinations = storage::federation::destinations(&self.db.read).await?;
        if destinations.is_empty() {
            self.has_destinations.store(false, std::sync::atomic::Ordering::Relaxed);
        }
        for d in destinations {
            if let Some(at) = d.retry_at
                && at > now
            {
                // Also after a restart: hearing from it ends the wait.
                self.backing_off.lock().insert(d.destination.clone());
                next_retry = Some(next_retry.map_or(at, |n| n.min(at)));
                continue;
            }
            if self.busy.lock().contains(&d.destination) {
                continue;
            }
            let Ok(name) = OwnedServerName::try_from(d.destination.as_str()) else { continue };
            // Positions only grow (`delivered` keeps the larger), so the larger of the two is
            // where the events it may lack begin.
            let after = self
                .nothing_until
                .lock()
                .get(&d.destination)
                .map_or(d.stream_position, |n| (*n).max(d.stream_position));
            // Back after an outage with more than a transaction waiting: the latest event of
            // each room, not everything it missed (its server fetches the gap it needs, and
            // the rest as its users scroll back), as Synapse catches a destination up.
            let catch_up = d.failing
                && storage::federation::more_waiting_than(&self.db.read, &d.destination, &ours, after, MAX_PDUS)
                    .await?;
            let batch = if catch_up {
                let batch =
                    storage::federation::latest_per_room_for(&self.db.read, &d.destination, &ours, after, MAX_PDUS)
                        .await?;
                tracing::info!(destination = %d.destination, rooms = batch.len(), "catching up after an outage: the latest event of each room");
                batch
            } else {
                storage::federation::events_for(&self.db.read, &d.destination, &ours, after, MAX_PDUS).await?
            };
            if batch.is_empty() {
                self.nothing_until.lock().insert(d.destination.clone(), head.max(after));
            }
            let edus = self.edus_for(&d, &ours, durable.get(&d.destination).copied(), device_lists_head).await?;
            if batch.is_empty() && edus.is_empty() {
                continue;
            }
            self.busy.lock().insert(d.destination.clone());
            let this = self.clone();
            tokio::spawn(async move {
                this.deliver(&name, batch, edus, d.backoff_ms).await;
                this.busy.lock().remove(name.as_str());
                this.wake.notify_one();
            });
        }
        Ok(next_retry)
    }

    /// Every server Hearth sends to, with its state and how many events wait for it (the
    /// dashboard's list).
    pub async fn destinations(&self) -> crate::error::Result<Vec<DestinationView>> {
        let ours = self.client.origin().as_str().to_owned();
        let now = now_ms();
        let mut out = Vec::new();
        for d in storage::federation::destination_statuses(&self.db.read).await? {
            let queued =
                storage::federation::queued_for(&self.db.read, &d.destination, &ours, d.stream_position).await?;
            let backing_off = d.retry_at.is_some_and(|at| at > now);
            out.push(DestinationView { status: d, queued, backing_off });
        }
        Ok(out)
    }

    /// One transaction to `destination`; its outcome is recorded.
    async fn deliver(&self, destination: &ServerName, batch: Vec<(i64, String)>, edus: Outgoing, backoff_ms: i64) {
        let last = batch.last().map_or(0, |b| b.0);
        let pdus: Vec<Box<serde_json::value::RawValue>> =
            batch.into_iter().filter_map(|(_, pdu)| serde_json::value::RawValue::from_string(pdu).ok()).collect();
        let count = pdus.len();
        let txn_id = TransactionId::new();
        let ts = MilliSecondsSinceUnixEpoch(UInt::try_from(now_ms()).unwrap_or_default());
        let mut request =
            send_transaction_message::v1::Request::new(txn_id.clone(), self.client.origin().to_owned(), ts);
        request.pdus = pdus;
        request.edus = edus.raw();
        let result = self.client.send(destination, request).await;
        let recorded = match &result {
            Ok(resp) => {
                // Events the destination refused are its verdict on them; sending them again
                // would not change it.
                for (id, r) in &resp.pdus {
                    if let Err(e) = r {
                        tracing::info!(%destination, event_id = %id, error = %e, "a sent event was refused");
                    }
                }
                tracing::debug!(%destination, %txn_id, pdus = count, edus = edus.len(), "transaction delivered");
                self.backing_off.lock().remove(destination.as_str());
                match self.edus_delivered(destination.as_str(), &edus).await {
                    Ok(()) => {
                        storage::federation::delivered(&self.db.write, destination.as_str(), last, now_ms()).await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => {
                // Typing, receipts and presence wait for the next try (unless newer ones came);
                // the rest is read again from where it is kept.
                self.requeue(destination.as_str(), edus.ephemeral);
                let wait = next_backoff(backoff_ms, e);
                self.backing_off.lock().insert(destination.to_string());
                tracing::info!(%destination, error = %e, retry_in_ms = wait, "transaction failed");
                storage::federation::failed(&self.db.write, destination.as_str(), now_ms() + wait, wait, &e.to_string())
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(%destination, error = %e, "recording a transaction's outcome");
        }
    }
}

/// The EDUs of one transaction, by where they came from (each is acknowledged differently).
#[derive(Default)]
struct Outgoing {
    /// From `federation_outbox_edus`: (id, EDU), and the outbox's count when they were read.
    durable: Vec<(i64, String)>,
    durable_count: u64,
    /// Whether `durable` holds everything queued for the destination.
    durable_all: bool,
    /// Device list updates, and the device list position they bring the destination to.
    device_lists: Vec<String>,
    device_lists_to: Option<i64>,
    ephemeral: Vec<Queued>,
}

impl Outgoing {
    fn len(&self) -> usize {
        self.durable.len() + self.device_lists.len() + self.ephemeral.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn raw<T>(&self) -> Vec<ruma::serde::Raw<T>> {
        let texts = self
            .durable
            .iter()
            .map(|(_, e)| e.clone())
            .chain(self.device_lists.iter().cloned())
            .chain(self.ephemeral.iter().map(|q| q.edu.to_string()));
        texts
            .filter_map(|t| serde_json::value::RawValue::from_string(t).ok())
            .map(ruma::serde::Raw::from_json)
            .collect()
    }
}

impl Sender {
    /// Hands the EDUs queued in memory to the destinations they concern (the servers in the
    /// room, or sharing a room with the user), newest per key.
    async fn route_queued(&self, ours: &str) -> crate::error::Result<()> {
        let queued = self.outbox.take();
        if queued.is_empty() {
            return Ok(());
        }
        let mut resolved: HashMap<Scope, Vec<String>> = HashMap::new();
        for q in queued {
            if !resolved.contains_key(&q.scope) {
                let servers = match &q.scope {
                    Scope::Room(room) => self.rooms.servers_in_room(room).await?,
                    Scope::SharingWith(user) => {
                        storage::federation::servers_sharing_with(&self.db.read, user.as_str(), ours).await?
                    }
                };
                resolved.insert(q.scope.clone(), servers.into_iter().filter(|s| s != ours).collect());
            }
            let mut pending = self.pending.lock();
            for server in &resolved[&q.scope] {
                let list = pending.entry(server.clone()).or_default();
                list.retain(|old| old.key != q.key);
                list.push(q.clone());
            }
        }
        Ok(())
    }

    /// Puts back EDUs of the moment that a failed transaction carried, before newer ones.
    fn requeue(&self, destination: &str, items: Vec<Queued>) {
        let now = std::time::Instant::now();
        let mut pending = self.pending.lock();
        let list = pending.entry(destination.to_owned()).or_default();
        let mut back: Vec<Queued> = items
            .into_iter()
            .filter(|q| q.expires.is_none_or(|at| at > now))
            .filter(|q| !list.iter().any(|n| n.key == q.key))
            .collect();
        back.append(list);
        *list = back;
        if list.is_empty() {
            pending.remove(destination);
        }
    }

    /// The EDUs a transaction to `d` carries: durable ones first (to-device, in order), then
    /// device list updates of local users it shares rooms with, then typing, receipts and
    /// presence; at most the spec's hundred.
    async fn edus_for(
        &self,
        d: &storage::federation::Destination,
        ours: &str,
        durable_count: Option<u64>,
        device_lists_head: i64,
    ) -> crate::error::Result<Outgoing> {
        let mut out = Outgoing::default();
        if let Some(count) = durable_count {
            out.durable = storage::federation::queued_edus(&self.db.read, &d.destination, MAX_EDUS as i64).await?;
            out.durable_count = count;
            out.durable_all = out.durable.len() < MAX_EDUS;
            if out.durable.is_empty() {
                self.outbox.durable_done(&d.destination, count);
            }
        }
        let after = self
            .device_lists_until
            .lock()
            .get(&d.destination)
            .map_or(d.device_list_position, |n| (*n).max(d.device_list_position));
        let room = MAX_EDUS - out.len();
        if device_lists_head > after && room > 0 {
            let changes =
                storage::federation::device_list_changes_for(&self.db.read, &d.destination, ours, after, room as i64)
                    .await?;
            if changes.is_empty() {
                self.device_lists_until.lock().insert(d.destination.clone(), device_lists_head);
            } else {
                out.device_lists_to = Some(if changes.len() < room {
                    device_lists_head
                } else {
                    changes.last().map_or(after, |c| c.stream_id)
                });
                for change in &changes {
                    out.device_lists.push(self.e2ee.device_list_edu(change).await?.to_string());
                }
            }
        }
        let room = MAX_EDUS - out.len();
        let mut pending = self.pending.lock();
        if let Some(list) = pending.get_mut(&d.destination) {
            let now = std::time::Instant::now();
            list.retain(|q| q.expires.is_none_or(|at| at > now));
            let take = list.len().min(room);
            out.ephemeral = list.drain(..take).collect();
            if list.is_empty() {
                pending.remove(&d.destination);
            }
        }
        Ok(out)
    }

    /// Records what an accepted transaction's EDUs acknowledged.
    async fn edus_delivered(&self, destination: &str, edus: &Outgoing) -> sqlx::Result<()> {
        if let Some((last, _)) = edus.durable.last() {
            storage::federation::edus_delivered(&self.db.write, destination, *last).await?;
            if edus.durable_all {
                self.outbox.durable_done(destination, edus.durable_count);
            }
        }
        if let Some(to) = edus.device_lists_to {
            storage::federation::device_lists_delivered(&self.db.write, destination, to).await?;
        }
        Ok(())
    }
}

async fn sleep_until(at: Option<i64>) {
    match at {
        Some(at) => tokio::time::sleep(Duration::from_millis((at - now_ms()).max(0) as u64)).await,
        None => std::future::pending().await,
    }
}

/// The wait after a failure: doubling from 5 s to an hour.
fn next_backoff(previous_ms: i64, _error: &FederationError) -> i64 {
    (previous_ms * 2).clamp(MIN_BACKOFF_MS, MAX_BACKOFF_MS)
}
