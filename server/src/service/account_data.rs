//! Account data (spec: "Client Config"): per-user JSON blobs, global or per room, synced to all
//! of the user's devices.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use ruma::{RoomId, UserId, push::Ruleset};
use serde_json::Value;

use super::{guarded::Guarded, notifier::Notifier};
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
    /// Each user's push ruleset, parsed (evaluated for every event in their rooms): the stored
    /// one, else the server default. A user's push rules write moves the generation (see
    /// `Guarded`).
    push_rules: Guarded<HashMap<String, Arc<Ruleset>>>,
}

impl AccountData {
    pub async fn new(db: Db, notifier: Arc<Notifier>) -> Result<Self> {
        let head = storage::account_data::max_stream(&db.read).await?;
        Ok(Self { db, notifier, head: AtomicI64::new(head), push_rules: Guarded::new(HashMap::new()) })
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
        if data_type == "m.push_rules" && room.is_empty() {
            self.push_rules.write(|c| {
                c.remove(user.as_str());
            });
        }
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

    /// The push rulesets of `users`: the stored one, else the server default (built once per
    /// user and cached too: building it for every member on every message showed in profiles).
    pub async fn push_rules_of(&self, users: &[String]) -> Result<HashMap<String, Arc<Ruleset>>> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        self.push_rules.with(|cache| {
            for u in users {
                match cache.get(u) {
                    Some(r) => {
                        out.insert(u.clone(), r.clone());
                    }
                    None => missing.push(u.clone()),
                }
            }
        });
        if missing.is_empty() {
            return Ok(out);
        }
        let generation = self.push_rules.generation();
        let stored: HashMap<String, String> =
            storage::push_actions::rulesets(&self.db.read, &missing).await?.into_iter().collect();
        let parsed: Vec<(String, Arc<Ruleset>)> = missing
            .into_iter()
            .filter_map(|u| {
                let rules = stored
                    .get(&u)
                    .and_then(|text| {
                        serde_json::from_str::<Value>(text)
                            .ok()
                            .and_then(|v| serde_json::from_value::<Ruleset>(v["global"].clone()).ok())
                    })
                    .or_else(|| UserId::parse(&u).ok().map(|id| Ruleset::server_default(&id)))?;
                Some((u, Arc::new(rules)))
            })
            .collect();
        out.extend(parsed.iter().map(|(u, r)| (u.clone(), r.clone())));
        self.push_rules.fill(generation, |cache| cache.extend(parsed));
        Ok(out)
    }

    pub async fn changed_since(&self, user: &UserId, since: i64) -> Result<Vec<AccountDataRow>> {
        Ok(storage::account_data::changed_since(&self.db.read, user.as_str(), since).await?)
    }
}
