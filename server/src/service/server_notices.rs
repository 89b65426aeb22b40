//! Server notices (Synapse's `server_notices`): messages from the server to one of its users,
//! sent by the admin (Synapse's `send_server_notice`) into a room the user shares with a system
//! account, made the first time and tagged `m.server_notice` so apps show it apart.
//!
//! The system account is made when the first notice is sent; its name cannot be registered and
//! nobody else can invite it. The user cannot reject the invite to the notices room (they may
//! leave once joined: the next notice makes a new room), as in Synapse.

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, UserId};
use serde_json::{Value, json};

use super::{
    Services,
    rooms::create::{CreateRoom, Preset},
};
use crate::error::{Error, Result};

/// The tag apps show server notices rooms by.
const TAG: &str = "m.server_notice";

/// How many notice transactions are remembered.
const TXNS: usize = 1000;

/// (admin, transaction ID) -> the notice sent for it; one notice is sent at a time through it,
/// so a retry racing the first request waits for it and answers the same event.
pub struct NoticeTxns(tokio::sync::Mutex<hashlink::LruCache<(String, String), OwnedEventId>>);

impl Default for NoticeTxns {
    fn default() -> Self {
        Self(tokio::sync::Mutex::new(hashlink::LruCache::new(TXNS)))
    }
}

impl Services {
    /// The system account that sends notices, when notices are on.
    pub fn notices_user(&self) -> Option<OwnedUserId> {
        let local = self.config.server_notices.system_mxid_localpart.as_deref()?;
        UserId::parse(format!("@{local}:{}", self.config.server_name)).ok()
    }

    /// Whether `room_id` is a notices room and `user` is invited to it (an invite they cannot
    /// reject).
    pub async fn is_notice_invite(&self, room_id: &RoomId, user: &UserId) -> Result<bool> {
        let Some(system) = self.notices_user() else { return Ok(false) };
        if self.rooms.membership(room_id, user).await?.as_deref() != Some("invite") {
            return Ok(false);
        }
        let Some(create) = self.rooms.current_state_event(room_id, "m.room.create", "").await? else {
            return Ok(false);
        };
        Ok(create.row.sender == system.as_str())
    }

    /// `send_server_notice` for a request with a transaction ID: a retry of `(admin, txn)`
    /// answers the first notice's event instead of sending again.
    pub async fn send_server_notice_once(
        &self,
        admin: &UserId,
        txn: &str,
        target: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> Result<OwnedEventId> {
        let mut sent = self.notice_txns.0.lock().await;
        let key = (admin.to_string(), txn.to_owned());
        if let Some(event) = sent.get(&key) {
            return Ok(event.clone());
        }
        let event = self.send_server_notice(target, kind, state_key, content).await?;
        sent.insert(key, event.clone());
        Ok(event)
    }

    /// Sends a notice to the local user `target`: an event of `kind` (a state event with
    /// `state_key`), from the system account, in their notices room.
    pub async fn send_server_notice(
        &self,
        target: &UserId,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
    ) -> Result<OwnedEventId> {
        let bad = |msg: &str| Error::custom(http::StatusCode::BAD_REQUEST, "M_UNKNOWN", msg);
        let Some(system) = self.notices_user() else {
            return Err(bad("Server notices are not enabled on this server"));
        };
        if target.server_name() != self.config.server_name {
            return Err(bad("Server notices can only be sent to local users"));
        }
        if self.accounts.is_available(target).await? || self.accounts.is_deactivated(target).await? {
            return Err(Error::not_found("User not found"));
        }
        self.ensure_notices_user(&system).await?;
        let room = match self.notices_room(&system, target).await? {
            Some(room) => room,
            None => self.create_notices_room(&system, target).await?,
        };
        let joined = self.rooms.membership(&room, target).await?.as_deref() == Some("join");
        if self.config.server_notices.auto_join && !joined {
            self.rooms.join(&room, target, false, None).await?;
        }
        let event = match state_key {
            Some(key) => self.rooms.set_state(&room, &system, kind, key, content, None).await?,
            None => self.rooms.send(&room, &system, kind, None, content, None).await?,
        };
        tracing::info!(%target, room = %room, "server notice sent");
        Ok(event)
    }

    /// The system account, made on first use with the configured profile.
    async fn ensure_notices_user(&self, system: &UserId) -> Result<()> {
        let c = &self.config.server_notices;
        if self.accounts.is_available(system).await? {
            let name = c.system_mxid_display_name.as_deref().unwrap_or("Server Notices");
            self.accounts.create_user(system, None, false, false, Some(name), None).await?;
            if let Some(avatar) = &c.system_mxid_avatar_url {
                self.rooms.set_profile_field(system, "avatar_url", Some(avatar)).await?;
            }
        }
        Ok(())
    }

    /// The room where the system account is joined and `target` invited or joined.
    async fn notices_room(&self, system: &UserId, target: &UserId) -> Result<Option<OwnedRoomId>> {
        let ours = self.rooms.memberships_of(system).await?;
        let theirs = self.rooms.memberships_of(target).await?;
        for m in ours.iter().filter(|m| m.membership == "join") {
            if theirs.iter().any(|t| t.room_id == m.room_id && matches!(t.membership.as_str(), "join" | "invite")) {
                return Ok(RoomId::parse(&m.room_id).ok());
            }
        }
        Ok(None)
    }

    async fn create_notices_room(&self, system: &UserId, target: &UserId) -> Result<OwnedRoomId> {
        let c = &self.config.server_notices;
        let mut initial_state = Vec::new();
        if let Some(avatar) = &c.room_avatar_url {
            initial_state.push(("m.room.avatar".to_owned(), String::new(), json!({ "url": avatar })));
        }
        let mut power = serde_json::Map::new();
        // Only the system account speaks there.
        power.insert("users_default".to_owned(), json!(-10));
        let version = ruma::RoomVersionId::try_from(self.config.default_room_version.as_str())
            .unwrap_or(ruma::RoomVersionId::V12);
        let room = self
            .rooms
            .create_room(CreateRoom {
                creator: system.to_owned(),
                version,
                preset: Preset::PrivateChat,
                publish: false,
                alias_localpart: None,
                name: Some(c.room_name.clone()),
                topic: c.room_topic.clone(),
                invite: vec![target.to_owned()],
                is_direct: false,
                initial_state,
                creation_content: None,
                power_level_content_override: Some(power),
                room_id: None,
            })
            .await?;
        self.account_data.set_tag(target, &room, TAG, Some(json!({}))).await?;
        Ok(room)
    }
}
