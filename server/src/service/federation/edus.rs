//! EDUs other servers send (spec: server-server API, "EDUs"): typing, read receipts, presence,
//! to-device messages and news of their users' devices. Each is about users of the sending
//! server only, in rooms that server may talk about (its ACL allows it and the user is joined);
//! anything else is dropped with a log line, never an error to the sender (an EDU has no
//! answer of its own).

use ruma::{
    RoomId, ServerName, UserId,
    api::federation::transactions::edu::{Edu, ReceiptContent, TypingContent},
    presence::PresenceState,
    serde::Raw,
};

use super::Federation;
use crate::service::ephemeral::REMOTE_TYPING;

impl Federation {
    /// Takes one EDU of a transaction from `origin`.
    pub(super) async fn receive_edu(&self, origin: &ServerName, raw: &Raw<Edu>) {
        let edu = match raw.deserialize() {
            Ok(edu) => edu,
            Err(e) => {
                tracing::info!(%origin, error = %e, "an EDU that does not parse was dropped");
                return;
            }
        };
        let outcome = match edu {
            Edu::Typing(t) => self.receive_typing(origin, t).await,
            Edu::Receipt(r) => self.receive_receipts(origin, r).await,
            Edu::Presence(p) => {
                for update in p.push {
                    if let Err(e) =
                        self.receive_presence(origin, &update.user_id, update.presence, update.status_msg).await
                    {
                        tracing::info!(%origin, user = %update.user_id, error = %e, "a presence update was dropped");
                    }
                }
                Ok(())
            }
            Edu::DirectToDevice(d) => {
                if d.sender.server_name() != origin {
                    Err("a to-device message from another server's user".to_owned())
                } else {
                    let messages = d
                        .messages
                        .into_iter()
                        .flat_map(|(user, devices)| {
                            devices.into_iter().filter_map(move |(device, content)| {
                                let content = content.deserialize_as::<serde_json::Value>().ok()?;
                                Some((user.clone(), device.to_string(), content))
                            })
                        })
                        .collect();
                    self.e2ee
                        .receive_to_device(origin, &d.sender, &d.ev_type.to_string(), d.message_id.as_str(), messages)
                        .await
                        .map_err(|e| e.message())
                }
            }
            Edu::DeviceListUpdate(u) => {
                self.receive_device_news(origin, &u.user_id, self.e2ee.remote_device_updated(&u)).await
            }
            Edu::SigningKeyUpdate(u) => {
                self.receive_device_news(origin, &u.user_id, self.e2ee.remote_signing_keys_updated(&u)).await
            }
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            tracing::info!(%origin, error = %e, "an EDU was dropped");
        }
    }

    /// Whether `origin` may speak of its user `user` in `room`: the user is of that server and
    /// joined, and the room's ACL lets the server in.
    async fn may_speak_in(&self, origin: &ServerName, user: &UserId, room: &RoomId) -> Result<(), String> {
        if user.server_name() != origin {
            return Err(format!("{user} is not a user of {origin}"));
        }
        self.check_acl(origin, room).await.map_err(|e| e.message())?;
        match self.rooms.membership(room, user).await.map_err(|e| e.message())?.as_deref() {
            Some("join") => Ok(()),
            _ => Err(format!("{user} is not in {room}")),
        }
    }

    async fn receive_typing(&self, origin: &ServerName, t: TypingContent) -> Result<(), String> {
        self.may_speak_in(origin, &t.user_id, &t.room_id).await?;
        self.ephemeral.set_typing(&t.room_id, &t.user_id, t.typing.then_some(REMOTE_TYPING));
        Ok(())
    }

    async fn receive_receipts(&self, origin: &ServerName, r: ReceiptContent) -> Result<(), String> {
        for (room, map) in r.receipts {
            for (user, data) in map.read {
                if let Err(e) = self.may_speak_in(origin, &user, &room).await {
                    tracing::info!(%origin, %room, %user, error = %e, "a receipt was dropped");
                    continue;
                }
                // One event per receipt (the spec's list has one; Synapse reads the first).
                let Some(event_id) = data.event_ids.first() else { continue };
                let thread = data.data.thread.as_str().unwrap_or("");
                self.ephemeral
                    .put_receipt(&room, &user, "m.read", thread, event_id.as_str())
                    .await
                    .map_err(|e| e.message())?;
            }
        }
        Ok(())
    }

    async fn receive_presence(
        &self,
        origin: &ServerName,
        user: &UserId,
        state: PresenceState,
        status_msg: Option<String>,
    ) -> Result<(), String> {
        // Only of people someone here shares a room with (others' presence is nobody's here).
        self.is_known_user_of(origin, user).await?;
        self.ephemeral.set_presence(user, state, status_msg);
        Ok(())
    }

    /// News of a remote user's devices or cross-signing keys (`m.device_list_update`,
    /// `m.signing_key_update`): `take` runs only when the user is `origin`'s and known here.
    async fn receive_device_news(
        &self,
        origin: &ServerName,
        user: &UserId,
        take: impl Future<Output = crate::error::Result<()>>,
    ) -> Result<(), String> {
        self.is_known_user_of(origin, user).await?;
        take.await.map_err(|e| e.message())
    }

    /// Whether `user` is `origin`'s and in a room here (news of anyone else is dropped).
    async fn is_known_user_of(&self, origin: &ServerName, user: &UserId) -> Result<(), String> {
        if user.server_name() != origin {
            return Err(format!("{user} is not a user of {origin}"));
        }
        if self.rooms.joined_rooms(user).await.map_err(|e| e.message())?.is_empty() {
            return Err("no room is shared with the user".to_owned());
        }
        Ok(())
    }
}
