//! Removing a room from this server's database (Synapse's room purge), for the admin's room
//! deletion and for rooms no local user is in any more.

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
        let suffix = format!(":{}", self.config.server_name);
        Ok(storage::purge::local_memberships(&self.db.read, room_id.as_str(), &suffix).await?)
    }

    /// The user's leaves from rooms purged after stream position `since` (see the
    /// `purged_memberships` migration).
    pub async fn purged_leaves_since(
        &self,
        user: &ruma::UserId,
        since: i64,
    ) -> Result<Vec<storage::purge::PurgedLeave>> {
        if !self.purged_leaves.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(Vec::new());
        }
        Ok(storage::purge::leaves_since(&self.db.read, user.as_str(), since).await?)
    }

    /// Deletes everything this server stored about the room; None when it knows no such room.
    /// Sends are held off by the room's lock, and events already on their way to the writer
    /// are written first, so nothing of the room is written after it is gone.
    pub async fn purge(&self, room_id: &RoomId) -> Result<Option<Purged>> {
        let lock = self.lock_for(room_id);
        let _held = lock.lock().await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.writer.send(writer::Msg::Barrier(tx)).map_err(|_| Error::internal("the event writer has stopped"))?;
        let _ = rx.await;
        let mut conn = self.db.acquire_write().await?;
        if storage::rooms::get(&mut *conn, room_id.as_str()).await?.is_none() {
            return Ok(None);
        }
        let suffix = format!(":{}", self.config.server_name);
        let (event_ids, purged) = storage::purge::room(&mut conn, room_id.as_str(), &suffix).await?;
        drop(conn);
        self.shared.room_removed(room_id.as_str(), &event_ids);
        self.purged_leaves.store(true, std::sync::atomic::Ordering::Release);
        tracing::info!(room = %room_id, events = purged.events, state_groups = purged.state_groups, "room purged");
        Ok(Some(purged))
    }
}
