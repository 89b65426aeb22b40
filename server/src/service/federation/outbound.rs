//! What Hearth's users do that involves another server's users: inviting them.

use ruma::{
    CanonicalJsonObject, OwnedEventId, RoomId, RoomVersionId, UserId,
    api::federation::membership::{RawStrippedState, create_invite},
};
use serde_json::Value;

use super::{Federation, remote_error};
use crate::{
    error::{Error, Result},
    service::rooms::incoming::Received,
};

/// The state an invitee's server gets with the invite, to show the room before joining (the
/// spec's recommended stripped state).
const STRIPPED_TYPES: &[&str] = &[
    "m.room.create",
    "m.room.join_rules",
    "m.room.canonical_alias",
    "m.room.avatar",
    "m.room.name",
    "m.room.encryption",
    "m.room.topic",
];

impl Federation {
    /// Invites a user of another server (spec: "Inviting to a room"): the invite is built and
    /// signed here, countersigned by the invitee's server (`/invite` v2), then stored and sent
    /// to the room like any event.
    pub async fn invite_remote(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &UserId,
        reason: Option<&str>,
        is_direct: bool,
    ) -> Result<OwnedEventId> {
        self.rooms.refuse_if_blocked(room_id).await?;
        let mut content = serde_json::json!({ "membership": "invite" });
        if let Some(r) = reason {
            content["reason"] = Value::from(r);
        }
        if is_direct {
            content["is_direct"] = Value::from(true);
        }
        let (version, event_id, event) =
            self.rooms.build_event(room_id, sender, "m.room.member", Some(target.as_str()), content).await?;
        let version = RoomVersionId::try_from(version.as_str()).map_err(Error::internal)?;
        let stripped = self.stripped_state(room_id, Some(sender)).await?;
        let raw_event = serde_json::value::to_raw_value(&event).map_err(Error::internal)?;
        let request =
            create_invite::v2::Request::new(room_id.to_owned(), event_id.clone(), version, raw_event, stripped);
        let resp = self
            .client
            .send(target.server_name(), request)
            .await
            .map_err(|e| remote_error(e, "The invite could not be delivered", Error::forbidden))?;
        let signed: CanonicalJsonObject = serde_json::from_str(resp.event.get()).map_err(|e| {
            Error::custom(
                http::StatusCode::BAD_GATEWAY,
                "M_UNKNOWN",
                format!("The invitee's server answered a broken event: {e}"),
            )
        })?;
        // The invitee's server may only add its signature.
        if !super::joins::same_event(&signed, &event) {
            return Err(Error::forbidden("The invitee's server changed the invite"));
        }
        match self.receive(room_id, signed).await? {
            Received::Accepted | Received::Duplicate => Ok(event_id),
            Received::SoftFailed(why) | Received::Rejected(why) => {
                Err(Error::forbidden(format!("The invite was refused: {why}")))
            }
        }
    }

    /// The room's state an invitee's (or knocker's) server gets, as full PDUs (Matrix 1.16+),
    /// the inviter's member event included.
    pub(super) async fn stripped_state(
        &self,
        room_id: &RoomId,
        inviter: Option<&UserId>,
    ) -> Result<Vec<RawStrippedState>> {
        let state = self.rooms.current_state_ids(room_id).await?;
        let mut ids: Vec<String> =
            STRIPPED_TYPES.iter().filter_map(|t| state.get(&((*t).to_owned(), String::new())).cloned()).collect();
        if let Some(member) = inviter.and_then(|i| state.get(&("m.room.member".to_owned(), i.to_string()))) {
            ids.push(member.clone());
        }
        Ok(self.rooms.pdus(&ids).await?.into_iter().map(RawStrippedState::Pdu).collect())
    }
}
