//! Account data (spec: "Client Config"): per-user JSON blobs, global or per room, synced to all
//! of the user's devices.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
};

use ruma::{RoomId, UserId, push::Ruleset};
use serde_json::{Map, Value};

/// The room account data type that holds a room's tags.
const TAGS: &str = "m.tag";
/// The global account data type that lists the users one ignores.
const IGNORED: &str = "m.ignored_user_list";

/// The user IDs of an `m.ignored_user_list` content (anything unreadable ignores no one).
fn ignored_set(text: &str) -> HashSet<String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut c)) => match c.remove("ignored_users") {
            Some(Value::Object(users)) => users.into_iter().map(|(u, _)| u).collect(),
            _ => HashSet::new(),
        },
        _ => HashSet::new(),
    }
}

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
    /// Each user's `m.ignored_user_list`, as a set (read for every member on every message,
    /// to notify no one of what they ignore). Dropped when the user writes a new list.
    ignored: Guarded<HashMap<String, Arc<HashSet<String>>>>,
    /// Held across the read and write of an edit of one part of a content (a room tag), so two
    /// tags added at once are both kept.
    edit: tokio::sync::Mutex<()>,
}

impl AccountData {
    pub async fn new(db: Db, notifier: Arc<Notifier>) -> Result<Self> {
        let head = storage::account_data::max_stream(&db.read).await?;
        Ok(Self {
            db,
            notifier,
            head: AtomicI64::new(head),
            push_rules: Guarded::new(HashMap::new()),
            ignored: Guarded::new(HashMap::new()),
            edit: tokio::sync::Mutex::new(()),
        })
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
        if data_type == IGNORED && room.is_empty() {
            self.ignored.write(|c| {
                c.remove(user.as_str());
            });
        }
        self.head.fetch_max(id, Ordering::AcqRel);
        self.notifier.notify();
        Ok(())
    }

    /// The room's tags for the user (spec: "Room Tagging"): tag name -> its content.
    pub async fn tags(&self, user: &UserId, room: &RoomId) -> Result<Map<String, Value>> {
        Ok(match self.get(user, Some(room), TAGS).await? {
            Some(Value::Object(mut c)) => match c.remove("tags") {
                Some(Value::Object(tags)) => tags,
                _ => Map::new(),
            },
            _ => Map::new(),
        })
    }

    /// Adds or replaces one tag (`content` is the tag's object, `order` already checked), or
    /// removes it (`None`), in the `m.tag` room account data that /sync carries.
    pub async fn set_tag(&self, user: &UserId, room: &RoomId, tag: &str, content: Option<Value>) -> Result<()> {
        let _edit = self.edit.lock().await;
        let mut tags = self.tags(user, room).await?;
        match content {
            Some(c) => {
                tags.insert(tag.to_owned(), c);
            }
            // Removing a tag the room does not have changes nothing (and sends nothing to sync).
            None if !tags.contains_key(tag) => return Ok(()),
            None => {
                tags.remove(tag);
            }
        }
        self.put(user, Some(room), TAGS, &serde_json::json!({ "tags": tags })).await
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
        self.per_user(&self.push_rules, users, "m.push_rules", |user, text| {
            text.and_then(|text| {
                serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| serde_json::from_value::<Ruleset>(v["global"].clone()).ok())
            })
            .or_else(|| UserId::parse(user).ok().map(|id| Ruleset::server_default(&id)))
        })
        .await
    }

    /// The users `user` ignores (spec: "Ignoring Users").
    pub async fn ignored_users(&self, user: &UserId) -> Result<Arc<HashSet<String>>> {
        let users = [user.as_str().to_owned()];
        Ok(self.ignored_by_each(&users).await?.remove(user.as_str()).unwrap_or_default())
    }

    /// Each of `users`' ignored users.
    pub async fn ignored_by_each(&self, users: &[String]) -> Result<HashMap<String, Arc<HashSet<String>>>> {
        self.per_user(&self.ignored, users, IGNORED, |_, text| Some(text.map(ignored_set).unwrap_or_default())).await
    }

    /// A value made from each of `users`' global account data of `data_type`, from `cache`, or
    /// made by `parse` (user, stored content if any; None leaves the user out) from one query
    /// for the users not in it, and cached.
    async fn per_user<T>(
        &self,
        cache: &Guarded<HashMap<String, Arc<T>>>,
        users: &[String],
        data_type: &str,
        parse: impl Fn(&str, Option<&str>) -> Option<T>,
    ) -> Result<HashMap<String, Arc<T>>> {
        let mut out = HashMap::new();
        let mut missing = Vec::new();
        cache.with(|cache| {
            for u in users {
                match cache.get(u) {
                    Some(v) => {
                        out.insert(u.clone(), v.clone());
                    }
                    None => missing.push(u.clone()),
                }
            }
        });
        if missing.is_empty() {
            return Ok(out);
        }
        let generation = cache.generation();
        let stored: HashMap<String, String> =
            storage::account_data::global_many(&self.db.read, &missing, data_type).await?.into_iter().collect();
        let loaded: Vec<(String, Arc<T>)> = missing
            .into_iter()
            .filter_map(|u| {
                let value = parse(&u, stored.get(&u).map(String::as_str))?;
                Some((u, Arc::new(value)))
            })
            .collect();
        out.extend(loaded.iter().map(|(u, v)| (u.clone(), v.clone())));
        cache.fill(generation, |c| c.extend(loaded));
        Ok(out)
    }

    pub async fn changed_since(&self, user: &UserId, since: i64) -> Result<Vec<AccountDataRow>> {
        Ok(storage::account_data::changed_since(&self.db.read, user.as_str(), since).await?)
    }
}
