//! Deleting a room as Synapse's admin API does, for that API and the dashboard alike:
//!
//! 1. With `block`, the room is blocked first (also a room this server does not know yet).
//! 2. With `new_room_user_id`, a replacement room is made by that local user (public, members
//!    muted at power -10).
//! 3. Every local user joined, invited or knocking leaves (an invite is declined) and forgets
//!    the room; those who were joined are joined to the replacement room.
//! 4. The replacement room gets the message, and the old room's local aliases move to it.
//! 5. The room leaves the directory, and with `purge` (the default) everything this server
//!    stored about it is deleted (`Rooms::purge`); a room with a local user still joined (a
//!    leave that failed) is only purged with `force_purge`.
//!
//! `v1` runs it within the request; `v2` runs it in the background as a task whose progress is
//! kept in `admin_tasks` (so `delete_status` answers after a restart, and a run a restart
//! interrupted starts again: every step can be repeated).

use std::sync::Arc;

use ruma::{OwnedUserId, RoomId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    Services,
    rooms::create::{CreateRoom, Preset},
    tokens,
};
use crate::{
    error::{Error, Result},
    storage::{self, now_ms},
};

/// The task action's name, as Synapse's (`shutdown_and_purge_room`).
const ACTION: &str = "shutdown_and_purge_room";
/// Synapse's `purge_history` task.
const PURGE_HISTORY: &str = "purge_history";

/// What a history purge was asked to do (kept with its task, so a restart can run it again).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PurgeHistory {
    before: i64,
    delete_local_events: bool,
}
const DEFAULT_MESSAGE: &str =
    "Sharing illegal content on this server is not permitted and rooms in violation will be blocked.";
const DEFAULT_ROOM_NAME: &str = "Content Violation Notification";

/// What the admin asked for (the request body of Synapse's room delete).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeleteRoom {
    /// The admin who asked (None: the dashboard, which holds the admin key and no account).
    pub requester: Option<OwnedUserId>,
    pub new_room_user_id: Option<OwnedUserId>,
    pub room_name: Option<String>,
    pub message: Option<String>,
    pub block: bool,
    pub purge: bool,
    pub force_purge: bool,
}

/// What a deletion did so far (Synapse's `shutdown_room` result).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Shutdown {
    pub kicked_users: Vec<String>,
    pub failed_to_kick_users: Vec<String>,
    pub local_aliases: Vec<String>,
    pub new_room_id: Option<String>,
}

/// A background deletion as `delete_status` shows it.
#[derive(Debug, Clone)]
pub struct DeleteTask {
    pub delete_id: String,
    pub room_id: String,
    /// `scheduled`, `active`, `complete` or `failed`.
    pub status: String,
    pub shutdown_room: Shutdown,
    pub error: Option<String>,
}

impl DeleteTask {
    fn from_row(row: storage::admin_tasks::TaskRow) -> Self {
        DeleteTask {
            shutdown_room: row.result.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default(),
            delete_id: row.id,
            room_id: row.room_id,
            status: row.status,
            error: row.error,
        }
    }
}

impl Services {
    /// Refuses what Synapse refuses before starting: a replacement room's creator who is not a
    /// user of this server.
    pub async fn check_room_deletion(&self, params: &DeleteRoom) -> Result<()> {
        if let Some(user) = &params.new_room_user_id {
            if user.server_name() != self.config.server_name {
                return Err(Error::custom(
                    http::StatusCode::BAD_REQUEST,
                    "M_UNKNOWN",
                    format!("User must be our own: {user}"),
                ));
            }
            if self.accounts.is_available(user).await? {
                return Err(Error::not_found(format!("Unknown user {user}")));
            }
        }
        Ok(())
    }

    /// Deletes the room within the call (Synapse's `v1` delete); `task` is the background
    /// run whose progress to record, if any.
    pub async fn delete_room(&self, room_id: &RoomId, params: &DeleteRoom, task: Option<&str>) -> Result<Shutdown> {
        self.check_room_deletion(params).await?;
        let result = self.shut_down_room(room_id, params, task).await?;
        if params.purge && self.rooms.room(room_id).await?.is_some() {
            let still_joined = self.rooms.local_memberships(room_id).await?.iter().any(|(_, m)| m == "join");
            if still_joined && !params.force_purge {
                return Err(Error::custom(
                    http::StatusCode::BAD_REQUEST,
                    "M_UNKNOWN",
                    "Users are still joined to this room",
                ));
            }
            self.rooms.purge(room_id).await?;
        }
        tracing::info!(room = %room_id, by = ?params.requester, kicked = result.kicked_users.len(), purge = params.purge, "room deleted");
        Ok(result)
    }

    /// Steps 1 to 4 and the directory (see the module's comment).
    async fn shut_down_room(&self, room_id: &RoomId, params: &DeleteRoom, task: Option<&str>) -> Result<Shutdown> {
        // A run started again after a restart goes on from what it recorded.
        let mut result = match task {
            Some(id) => storage::admin_tasks::get(&self.db.read, id)
                .await?
                .and_then(|t| serde_json::from_str(t.result.as_deref()?).ok())
                .unwrap_or_default(),
            None => Shutdown::default(),
        };
        if params.block {
            let Some(admin) = &params.requester else {
                return Err(Error::invalid_param(
                    "A block is recorded against the admin who asks: use an admin's account",
                ));
            };
            self.rooms.set_blocked(room_id, admin, true).await?;
        }
        if self.rooms.room(room_id).await?.is_none() {
            return Ok(result);
        }
        let new_room = match (&params.new_room_user_id, &result.new_room_id) {
            (_, Some(id)) => Some(RoomId::parse(id).map_err(Error::internal)?),
            (Some(creator), None) => {
                let id = self.replacement_room(creator, params).await?;
                result.new_room_id = Some(id.to_string());
                self.record_progress(task, &result).await?;
                Some(id)
            }
            (None, None) => None,
        };
        for (user, membership) in self.rooms.local_memberships(room_id).await? {
            if !matches!(membership.as_str(), "join" | "invite" | "knock") {
                continue;
            }
            let Ok(user) = UserId::parse(&user) else { continue };
            match self.move_user_out(room_id, &user, membership == "join", new_room.as_deref()).await {
                Ok(()) => result.kicked_users.push(user.to_string()),
                Err(e) => {
                    tracing::warn!(room = %room_id, %user, error = %e, "could not take a user out of a room being deleted");
                    result.failed_to_kick_users.push(user.to_string());
                }
            }
            self.record_progress(task, &result).await?;
        }
        if let (Some(new_room), Some(creator)) = (&new_room, &params.new_room_user_id) {
            let message = params.message.as_deref().filter(|m| !m.is_empty()).unwrap_or(DEFAULT_MESSAGE);
            self.rooms
                .send(new_room, creator, "m.room.message", None, json!({ "msgtype": "m.text", "body": message }), None)
                .await?;
            result.local_aliases = self.rooms.aliases_of(room_id).await?;
            self.rooms.move_aliases(room_id, new_room).await?;
        }
        self.rooms.set_public(room_id, false).await?;
        self.record_progress(task, &result).await?;
        Ok(result)
    }

    /// The replacement room: public, named, its members muted (`users_default` -10).
    async fn replacement_room(&self, creator: &UserId, params: &DeleteRoom) -> Result<ruma::OwnedRoomId> {
        let name = params.room_name.as_deref().filter(|n| !n.is_empty()).unwrap_or(DEFAULT_ROOM_NAME);
        let power = json!({ "users_default": -10 });
        let version = ruma::RoomVersionId::try_from(self.config.default_room_version.as_str())
            .unwrap_or(ruma::RoomVersionId::V12);
        self.rooms
            .create_room(CreateRoom {
                creator: creator.to_owned(),
                version,
                preset: Preset::PublicChat,
                publish: false,
                alias_localpart: None,
                name: Some(name.to_owned()),
                topic: None,
                invite: Vec::new(),
                is_direct: false,
                initial_state: Vec::new(),
                creation_content: None,
                power_level_content_override: power.as_object().cloned(),
                room_id: None,
            })
            .await
    }

    /// One local user leaves (or declines) and forgets the room, and a joined one joins the
    /// replacement room.
    async fn move_user_out(
        &self,
        room_id: &RoomId,
        user: &UserId,
        was_joined: bool,
        new_room: Option<&RoomId>,
    ) -> Result<()> {
        self.federation.leave(room_id, user, None).await?;
        self.rooms.forget(room_id, user).await?;
        if let (Some(new_room), true) = (new_room, was_joined) {
            self.rooms.join(new_room, user, false, None).await?;
        }
        Ok(())
    }

    async fn record_progress(&self, task: Option<&str>, result: &Shutdown) -> Result<()> {
        if let Some(id) = task {
            let json = serde_json::to_string(result).map_err(Error::internal)?;
            storage::admin_tasks::update(&self.db.write, id, "active", Some(&json), None, now_ms()).await?;
        }
        Ok(())
    }

    /// Starts deleting the room in the background (Synapse's `v2` delete); answers the run's ID.
    /// A room with a run still going gets 400, as in Synapse.
    pub async fn start_room_deletion(self: &Arc<Self>, room_id: &RoomId, params: DeleteRoom) -> Result<String> {
        let running = storage::admin_tasks::of_room(&self.db.read, room_id.as_str(), ACTION).await?;
        if running.iter().any(|t| t.status == "scheduled" || t.status == "active") {
            return Err(Error::custom(
                http::StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("Purge already in progress for {room_id}"),
            ));
        }
        self.check_room_deletion(&params).await?;
        let id = self.schedule_task(ACTION, room_id, &params).await?;
        tracing::info!(room = %room_id, delete_id = %id, "room deletion scheduled");
        self.clone().spawn_room_deletion(id.clone(), room_id.to_owned(), params);
        Ok(id)
    }

    fn spawn_room_deletion(self: Arc<Self>, id: String, room_id: ruma::OwnedRoomId, params: DeleteRoom) {
        tokio::spawn(async move {
            let work = async {
                let done = self.delete_room(&room_id, &params, Some(&id)).await?;
                serde_json::to_string(&done).map_err(Error::internal)
            };
            self.run_task(&id, "room deletion", work).await;
        });
    }

    /// Records a new task of `action` for the room, scheduled, with its parameters; its ID.
    async fn schedule_task(&self, action: &str, room_id: &RoomId, params: &impl Serialize) -> Result<String> {
        let id = tokens::random_alphanumeric(16);
        let json = serde_json::to_string(params).map_err(Error::internal)?;
        let mut conn = self.db.acquire_write().await?;
        storage::admin_tasks::insert(&mut conn, &id, action, room_id.as_str(), &json, now_ms()).await?;
        Ok(id)
    }

    /// Runs a task: active while `work` runs, then complete with the result it gives (JSON),
    /// or failed with its error.
    async fn run_task(&self, id: &str, what: &str, work: impl std::future::Future<Output = Result<String>>) {
        if let Err(e) = storage::admin_tasks::update(&self.db.write, id, "active", None, None, now_ms()).await {
            tracing::warn!(task = %id, error = %e, "could not record the start of a {what}");
        }
        let (status, result, error) = match work.await {
            Ok(result) => ("complete", Some(result), None),
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "{what} failed");
                ("failed", None, Some(e.message()))
            }
        };
        let recorded =
            storage::admin_tasks::update(&self.db.write, id, status, result.as_deref(), error.as_deref(), now_ms())
                .await;
        if let Err(e) = recorded {
            tracing::error!(task = %id, error = %e, "could not record how a {what} ended");
        }
    }

    /// Starts purging the room's history before `before` in the background (Synapse's
    /// `purge_history`); answers the run's ID for `purge_history_status`.
    pub async fn start_purge_history(
        self: &Arc<Self>,
        room_id: &RoomId,
        before: i64,
        delete_local: bool,
    ) -> Result<String> {
        let params = PurgeHistory { before, delete_local_events: delete_local };
        let id = self.schedule_task(PURGE_HISTORY, room_id, &params).await?;
        tracing::info!(room = %room_id, purge_id = %id, before, "history purge scheduled");
        self.clone().spawn_purge_history(id.clone(), room_id.to_owned(), params);
        Ok(id)
    }

    fn spawn_purge_history(self: Arc<Self>, id: String, room_id: ruma::OwnedRoomId, params: PurgeHistory) {
        tokio::spawn(async move {
            let work = async {
                let n = self.rooms.purge_history(&room_id, params.before, params.delete_local_events).await?;
                Ok(json!({ "deleted_events": n }).to_string())
            };
            self.run_task(&id, "history purge", work).await;
        });
    }

    /// A history purge's status (`active`, `complete` or `failed`) and error; None when unknown.
    pub async fn purge_history_status(&self, purge_id: &str) -> Result<Option<(String, Option<String>)>> {
        let row = storage::admin_tasks::get(&self.db.read, purge_id).await?;
        Ok(row.filter(|r| r.action == PURGE_HISTORY).map(|r| {
            // Synapse says `active` until it is done.
            let status = if r.status == "scheduled" { "active".to_owned() } else { r.status };
            (status, r.error)
        }))
    }

    /// Starts again the deletions and purges a stop interrupted (at start).
    pub async fn resume_room_deletions(self: &Arc<Self>) -> Result<()> {
        for task in storage::admin_tasks::unfinished(&self.db.read).await? {
            let room_id = RoomId::parse(&task.room_id).ok();
            match (task.action.as_str(), room_id) {
                (PURGE_HISTORY, Some(room_id)) => {
                    if let Ok(params) = serde_json::from_str::<PurgeHistory>(&task.params) {
                        tracing::info!(room = %room_id, purge_id = %task.id, "resuming a history purge");
                        self.clone().spawn_purge_history(task.id, room_id, params);
                        continue;
                    }
                }
                (ACTION, Some(room_id)) => {
                    if let Ok(params) = serde_json::from_str::<DeleteRoom>(&task.params) {
                        tracing::info!(room = %room_id, delete_id = %task.id, "resuming a room deletion");
                        self.clone().spawn_room_deletion(task.id, room_id, params);
                        continue;
                    }
                }
                _ => {}
            }
            let failed = Some("unreadable task");
            storage::admin_tasks::update(&self.db.write, &task.id, "failed", None, failed, now_ms()).await?;
        }
        Ok(())
    }

    /// A room's deletions, oldest first.
    pub async fn room_deletions(&self, room_id: &RoomId) -> Result<Vec<DeleteTask>> {
        let rows = storage::admin_tasks::of_room(&self.db.read, room_id.as_str(), ACTION).await?;
        Ok(rows.into_iter().map(DeleteTask::from_row).collect())
    }

    /// One deletion by its ID.
    pub async fn room_deletion(&self, delete_id: &str) -> Result<Option<DeleteTask>> {
        let row = storage::admin_tasks::get(&self.db.read, delete_id).await?;
        Ok(row.filter(|r| r.action == ACTION).map(DeleteTask::from_row))
    }
}
