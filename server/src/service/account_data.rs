//! Account data (spec: "Client Config"): per-user JSON blobs, global or per room, synced to all
//! of the user's devices.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use ruma::{RoomId, UserId};
use serde_json::Value;

use super::notifier::Notifier;
use crate::{
    error::{Error, Result},
    storage::{self, Db, account_data::AccountDataRow},
};

/// Largest account data content accepted.
const MAX_CONTENT_BYTES: usize = 65_536;

pub struct AccountData {
    db: Db,
    notifier: Arc<Notifier>,
    head: AtomicI64,
}

impl AccountData {
    pub async fn new(db: Db, notifier: Arc<Notifier>) -> Result<Self> {
        let head = storage::account_data::max_stream(&db.read).await?;
        Ok(Self { db, notifier, head: AtomicI64::new(head) })
    }

    pub fn stream_head(&self) -> i64 {
        self.head.load(Ordering::Acquire)
    }

    pub async fn put(&self, user: &UserId, room: Option<&RoomId>, data_type: &str, content: &Value) -> Result<()> {
        if !content.is_object() {
            return Err(Error::bad_json("Account data content must be a JSON object"));
        }
        let text = serde_json::to_string(content).map_err(Error::internal)?;
        if text.len() > MAX_CONTENT_BYTES {
            return Err(Error::too_large("Account data is limited to 65536 bytes"));
        }
        let room = room.map(|r| r.as_str()).unwrap_or("");
        let id = storage::account_data::put(&self.db.write, user.as_str(), room, data_type, &text).await?;
        self.head.fetch_max(id, Ordering::AcqRel);
        self.notifier.notify();
        Ok(())
    }

    pub async fn get(&self, user: &UserId, room: Option<&RoomId>, data_type: &str) -> Result<Option<Value>> {
        let room = room.map(|r| r.as_str()).unwrap_or("");
        match storage::account_data::get(&self.db.read, user.as_str(), room, data_type).await? {
            Some(t) => Ok(Some(serde_json::from_str(&t).map_err(Error::internal)?)),
            None => Ok(None),
        }
    }

    pub async fn changed_since(&self, user: &UserId, since: i64) -> Result<Vec<AccountDataRow>> {
        Ok(storage::account_data::changed_since(&self.db.read, user.as_str(), since).await?)
    }
}
