//! Removing a room from this server's database (Synapse's room purge), for the admin's room
//! deletion and for rooms no local user is in any more.

use std::collections::HashMap;

use ruma::RoomId;

use super::{Rooms, writer};
use crate::{
    error::{Error, Result},
    storage,
};

pub use storage::purge::Purged;

impl Rooms {
    /// Local users with a membership in the room, and which, by user ID.
    pub async fn local_memberships(&self, room_id: &RoomId) -> Result<Vec<(String, String)>> {
        let suffix = self.shared.local_suffix.as_str();
        Ok(storage::purge::local_memberships(&self.db.read, room_id.as_str(), suffix).await?)
    }

    /// The viewer's leaves from rooms purged after stream position `since` (see the
    /// `purged_memberships` migration): (room, stream position, the leave in client format).
    pub async fn purged_leaves_since(
        &self,
        viewer: &crate::matrix::client_event::Viewer<'_>,
        since: i64,
    ) -> Result<Vec<(String, i64, serde_json::Value)>> {
        use crate::matrix::client_event::{View, format};
        if !self.purged_leaves.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let now = storage::now_ms();
        let rows = storage::purge::leaves_since(&self.db.read, viewer.user_id, since).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(room_id, event_id, stream, pdu)| {
                let json = serde_json::from_str::<ruma::CanonicalJsonObject>(&pdu).ok()?;
                let view = View { json: &json, event_id: &event_id, room_id: &room_id, txn: None };
                let event = format(&view, false, Some(viewer), now);
                Some((room_id, stream, event))
            })
            .collect())
    }

    /// Waits until every event handed to the writer so far is written (or refused): with a
    /// room's lock held, nothing of that room is on its way to the database after this.
    async fn writer_drained(&self) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer.send(writer::Msg::Barrier(tx)).map_err(|_| Error::internal("the event writer has stopped"))?;
        let _ = rx.await;
        Ok(())
    }

    /// Deletes everything this server stored about the room; None when it knows no such room.
    /// Sends are held off by the room's lock, and events already on their way to the writer
    /// are written first, so nothing of the room is written after it is gone.
    pub async fn purge(&self, room_id: &RoomId) -> Result<Option<Purged>> {
        self.purge_when(room_id, None).await
    }

    /// `purge`, only if (checked under the room's lock) every local member forgot the room
    /// before `forgotten_before` when that is given.
    async fn purge_when(&self, room_id: &RoomId, forgotten_before: Option<i64>) -> Result<Option<Purged>> {
        let lock = self.lock_for(room_id);
        let _held = lock.lock().await;
        self.writer_drained().await?;
        let mut conn = self.db.acquire_write().await?;
        if storage::rooms::get(&mut *conn, room_id.as_str()).await?.is_none() {
            return Ok(None);
        }
        let suffix = self.shared.local_suffix.as_str();
        if let Some(before) = forgotten_before {
            let on_leave = self.config.forget_rooms_on_leave;
            let still =
                storage::purge::forgotten_rooms(&mut *conn, suffix, on_leave, before, Some(room_id.as_str())).await?;
            if still.is_empty() {
                return Ok(None);
            }
        }
        let (event_ids, purged) = storage::purge::room(&mut conn, room_id.as_str(), suffix).await?;
        drop(conn);
        self.shared.room_removed(room_id.as_str(), &event_ids);
        self.purged_leaves.store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(room = %room_id, events = purged.events, state_groups = purged.state_groups, "room purged");
        Ok(Some(purged))
    }
}

impl Rooms {
    /// Purges the rooms no local user is in any more and all of them forgot, for longer than
    /// `forgotten_room_retention_period` (see `storage::purge::forgotten_rooms`); how many.
    pub async fn purge_forgotten(&self) -> Result<usize> {
        let Some(period) = self.config.forgotten_room_retention_period.filter(|p| !p.0.is_zero()) else {
            return Ok(0);
        };
        let suffix = self.shared.local_suffix.as_str();
        let before = storage::now_ms() - period.0.as_millis() as i64;
        let on_leave = self.config.forget_rooms_on_leave;
        let rooms = storage::purge::forgotten_rooms(&self.db.read, suffix, on_leave, before, None).await?;
        let mut purged = 0;
        for room in rooms {
            let Ok(room_id) = RoomId::parse(&room) else { continue };
            if self.purge_when(&room_id, Some(before)).await?.is_some() {
                tracing::info!(room = %room_id, "room purged: every local member forgot it");
                purged += 1;
            }
        }
        Ok(purged)
    }
}

/// How long notifications stay listed in /notifications once read, as Synapse (which keeps
/// those it summarised for a day, and highlights for a month).
const READ_NOTIFICATIONS_KEPT: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
const READ_HIGHLIGHTS_KEPT: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

impl Rooms {
    /// Deletes the notifications their users read more than a day ago (highlights: a month),
    /// in short write transactions; how many. Unread ones stay: the counts come from them.
    /// Run hourly: it also notes where the stream stands now, which is how the age of events
    /// is told (an event a day old is one at or before where the stream stood a day ago).
    pub async fn prune_read_notifications(&self) -> Result<u64> {
        const BATCH: i64 = 5_000;
        // Positions per query: the JSON list sent along stays small.
        const POSITIONS_PER_QUERY: usize = 2_000;
        let now = storage::now_ms();
        let read_before = now - READ_NOTIFICATIONS_KEPT.as_millis() as i64;
        let highlight_before = now - READ_HIGHLIGHTS_KEPT.as_millis() as i64;
        // An event's age is told by its place in the stream: the housekeeping notes hourly
        // where the stream stands (the events table has no index on time; finding a cut-off
        // there read the whole table).
        let mut tx = self.db.begin_write().await?;
        storage::stream_marks::record(&mut tx, now, self.stream_head(), highlight_before).await?;
        tx.commit().await?;
        let Some(read_upto) = storage::stream_marks::at_or_before(&self.db.read, read_before).await? else {
            return Ok(0);
        };
        let highlight_upto = storage::stream_marks::at_or_before(&self.db.read, highlight_before).await?.unwrap_or(0);
        // Where everyone has read up to, once per run (it joins every read receipt to its
        // event); then the rows to delete, a range of the key per position, in batches. A
        // receipt that moves on meanwhile only leaves a little for the next run.
        let positions = storage::push_actions::read_positions(&self.db.read).await?;
        // The rooms' rows first: a member's own row at an event with a room's row goes with it.
        let mut pruned = self.prune_rooms_rows(&positions, read_upto, highlight_upto).await?;
        for chunk in positions.chunks(POSITIONS_PER_QUERY) {
            loop {
                // Found on a read connection, then deleted by key: the write connection is
                // held for the delete only. (A row that turned unread in between would lose a
                // notification over a day old at worst.)
                let keys =
                    storage::push_actions::prunable(&self.db.read, chunk, read_upto, highlight_upto, BATCH).await?;
                let mut tx = self.db.begin_write().await?;
                let n = storage::push_actions::delete(&mut *tx, &keys).await?;
                tx.commit().await?;
                pruned += n;
                // A full batch may have more behind it; none deleted means nothing more to do.
                if (keys.len() as i64) < BATCH || n == 0 {
                    break;
                }
            }
        }
        Ok(pruned)
    }
}

impl Rooms {
    /// Deletes the rooms' notification rows (`push_room_actions`) sent a day ago or more
    /// (highlights: a month); how many. Each joined member who has not read one yet (by a
    /// receipt or by sending later) gets it as a row of their own first, so their counts and
    /// list stay; for those who read it, it is gone, as their own rows go a day after. A member
    /// who left keeps no notification from the room's rows past that day.
    async fn prune_rooms_rows(
        &self,
        read: &[(i64, i64, i64, i64)],
        read_upto: i64,
        highlight_upto: i64,
    ) -> Result<u64> {
        const BATCH: i64 = 5_000;
        const ROOMS_PER_QUERY: usize = 2_000;
        let read: HashMap<(i64, i64), (i64, i64)> = read.iter().map(|&(u, r, m, a)| ((u, r), (m, a))).collect();
        // Per room: (member, joined after, read up to in the main timeline, in threads).
        let mut members: HashMap<i64, Vec<(i64, i64, i64, i64)>> = HashMap::new();
        for (user, room, from, own) in storage::push_actions::joined_spans(&self.db.read).await? {
            let (main, all) = read.get(&(user, room)).copied().unwrap_or((0, 0));
            members.entry(room).or_default().push((user, from, main.max(own), all.max(own)));
        }
        let rooms = storage::push_actions::room_nids(&self.db.read).await?;
        let mut pruned = 0;
        for chunk in rooms.chunks(ROOMS_PER_QUERY) {
            loop {
                let keys =
                    storage::push_actions::prunable_rooms(&self.db.read, chunk, read_upto, highlight_upto, BATCH)
                        .await?;
                let unread: Vec<(i64, i64, i64)> = keys
                    .iter()
                    .flat_map(|&(room, at, main)| {
                        members
                            .get(&room)
                            .into_iter()
                            .flatten()
                            .filter(move |&&(_, from, m, a)| from < at && if main { m } else { a } < at)
                            .map(move |&(user, ..)| (user, room, at))
                    })
                    .collect();
                let keys: Vec<(i64, i64)> = keys.into_iter().map(|(room, at, _)| (room, at)).collect();
                let mut tx = self.db.begin_write().await?;
                let n = storage::push_actions::delete_rooms(&mut tx, &keys, &unread).await?;
                tx.commit().await?;
                pruned += n;
                if (keys.len() as i64) < BATCH || n == 0 {
                    break;
                }
            }
        }
        Ok(pruned)
    }

    /// The position history is purged up to for Synapse's `purge_history`: that of the event
    /// (which must be in the room), or of the room's last event before `ts`; None when there
    /// is no such event.
    pub async fn purge_point(&self, room_id: &RoomId, event_id: Option<&str>, ts: Option<i64>) -> Result<Option<i64>> {
        if let Some(id) = event_id {
            let event = self.event(id).await?.ok_or_else(|| Error::not_found("Event not found"))?;
            if event.row.room_id != room_id.as_str() {
                return Err(Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", "Event is for wrong room."));
            }
            return Ok(Some(event.row.stream_ordering));
        }
        let Some(ts) = ts else { return Ok(None) };
        Ok(storage::events::last_before_ts(&self.db.read, room_id.as_str(), ts).await?)
    }

    /// Deletes the room's history before `before` (see `storage::purge::history`), keeping
    /// this server's users' events unless `delete_local`; how many events went.
    pub async fn purge_history(&self, room_id: &RoomId, before: i64, delete_local: bool) -> Result<usize> {
        let lock = self.lock_for(room_id);
        let _held = lock.lock().await;
        self.writer_drained().await?;
        let suffix = self.shared.local_suffix.as_str();
        let keep = (!delete_local).then_some(suffix);
        let mut conn = self.db.acquire_write().await?;
        let ids = storage::purge::history(&mut conn, room_id.as_str(), before, keep).await?;
        drop(conn);
        self.shared.cache.forget_all(&ids);
        tracing::info!(room = %room_id, events = ids.len(), delete_local, "room history purged");
        Ok(ids.len())
    }
}
