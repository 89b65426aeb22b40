//! Membership changes of local users: join, invite, leave, kick, ban, unban. The auth rules of
//! the room version decide who may do what; this module only builds the member events.

use ruma::{OwnedEventId, RoomId, UserId};

use super::Rooms;
use crate::error::{Error, Result};

impl Rooms {
    /// `user` joins the room (spec: POST /rooms/{roomId}/join). Joining a room one is already in
    /// is allowed: it refreshes the profile in the member event if that changed, and otherwise
    /// answers the existing event (see `send`).
    /// A guest may join only a room whose `m.room.guest_access` is `can_join` (spec: "Guest
    /// access", server behaviour).
    pub async fn join(
        &self,
        room_id: &RoomId,
        user: &UserId,
        is_guest: bool,
        reason: Option<&str>,
    ) -> Result<OwnedEventId> {
        if self.room(room_id).await?.is_none() {
            return Err(Error::not_found(
                "This server does not know that room (joining rooms on other servers comes with federation)",
            ));
        }
        self.refuse_if_blocked(room_id).await?;
        if is_guest && self.state_content(room_id, "m.room.guest_access").await?["guest_access"] != "can_join" {
            return Err(Error::matrix(
                http::StatusCode::FORBIDDEN,
                ruma::api::error::ErrorKind::GuestAccessForbidden,
                "Guests may not join this room (its guest access is not can_join)",
            ));
        }
        // Everyone left: no server is in the room to admit the user (Synapse: 404 as well).
        if !crate::storage::rooms::anyone_joined(&self.db.read, room_id.as_str()).await? {
            return Err(Error::not_found("No one is in this room any more"));
        }
        let mut content = self.member_content(user, "join", reason).await?;
        if let Some(authoriser) = self.restricted_join_authoriser(room_id, user).await? {
            content["join_authorised_via_users_server"] = serde_json::json!(authoriser);
        }
        self.send(room_id, user, "m.room.member", Some(user.as_str()), content, None).await
    }

    /// `sender` changes `target`'s membership to `membership` (invite, leave, ban). For
    /// "leave" by someone else this is a kick; "leave" of a banned user is an unban.
    pub async fn set_membership(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &UserId,
        membership: &str,
        reason: Option<&str>,
    ) -> Result<OwnedEventId> {
        if self.room(room_id).await?.is_none() {
            return Err(Error::not_found("Unknown room"));
        }
        if membership == "invite" {
            self.refuse_if_blocked(room_id).await?;
        }
        // Only invites carry the target's profile; a leave or ban is about the membership alone.
        let content = if membership == "invite" {
            self.member_content(target, membership, reason).await?
        } else {
            let mut c = serde_json::json!({ "membership": membership });
            if let Some(r) = reason {
                c["reason"] = serde_json::json!(r);
            }
            c
        };
        self.send(room_id, sender, "m.room.member", Some(target.as_str()), content, None).await
    }

    /// After a room stops admitting guests: every guest in it leaves (spec: the server MUST set
    /// their membership to `leave`), each on their own behalf as Synapse does, so no power is
    /// needed.
    pub async fn evict_guests_unless_allowed(&self, room_id: &RoomId) -> Result<()> {
        if self.state_content(room_id, "m.room.guest_access").await?["guest_access"] == "can_join" {
            return Ok(());
        }
        for guest in crate::storage::rooms::joined_guests(&self.db.read, room_id.as_str()).await? {
            let Ok(guest) = UserId::parse(&guest) else { continue };
            if let Err(e) = self.set_membership(room_id, &guest, &guest, "leave", None).await {
                tracing::warn!(%room_id, %guest, error = %e, "could not remove a guest from a room closed to guests");
            }
        }
        Ok(())
    }
}

impl Rooms {
    /// `user` forgets the room (spec: POST /rooms/{roomId}/forget): its history is no longer
    /// theirs to read and it leaves their first syncs, until a later membership (a rejoin).
    /// Only a room they left or were banned from; one they never were in is a no-op, as in
    /// Synapse.
    pub async fn forget(&self, room_id: &RoomId, user: &UserId) -> Result<()> {
        let membership = crate::storage::rooms::membership(&self.db.read, room_id.as_str(), user.as_str()).await?;
        match membership {
            Some(m) if m.membership == "leave" || m.membership == "ban" => {
                crate::storage::rooms::forget(
                    &self.db.write,
                    user.as_str(),
                    room_id.as_str(),
                    &m.event_id,
                    crate::storage::now_ms(),
                )
                .await?;
                Ok(())
            }
            Some(m) => Err(Error::custom(
                http::StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("{user} is in the room ({}): leave it before forgetting it", m.membership),
            )),
            None => Ok(()),
        }
    }

    /// Whether `user` forgot the room (or left it, with `forget_rooms_on_leave`).
    pub async fn forgot(&self, room_id: &str, user: &UserId) -> Result<bool> {
        Ok(crate::storage::rooms::is_forgotten(
            &self.db.read,
            room_id,
            user.as_str(),
            self.config.forget_rooms_on_leave,
        )
        .await?)
    }

    /// The rooms `user` forgot (see `forgot`).
    pub async fn forgotten_rooms(&self, user: &UserId) -> Result<Vec<String>> {
        Ok(crate::storage::rooms::forgotten_rooms(&self.db.read, user.as_str(), self.config.forget_rooms_on_leave)
            .await?)
    }
}

impl Rooms {
    /// Blocks (or unblocks) the room for this server's users (Synapse's admin API): while it
    /// is blocked, nobody here may join, be invited or knock; leaving and bans still work.
    pub async fn set_blocked(&self, room_id: &RoomId, admin: &UserId, blocked: bool) -> Result<()> {
        if blocked {
            crate::storage::rooms::block(&self.db.write, room_id.as_str(), admin.as_str(), crate::storage::now_ms())
                .await?;
        } else {
            crate::storage::rooms::unblock(&self.db.write, room_id.as_str()).await?;
        }
        tracing::info!(room = %room_id, %admin, blocked, "room block changed");
        Ok(())
    }

    /// Who blocked the room, when it is blocked.
    pub async fn blocked_by(&self, room_id: &RoomId) -> Result<Option<String>> {
        Ok(crate::storage::rooms::blocked_by(&self.db.read, room_id.as_str()).await?)
    }

    /// 403 for a join, an invite or a knock into a room an admin blocked.
    pub async fn refuse_if_blocked(&self, room_id: &RoomId) -> Result<()> {
        if self.blocked_by(room_id).await?.is_some() {
            return Err(Error::forbidden("This room has been blocked on this server"));
        }
        Ok(())
    }
}
