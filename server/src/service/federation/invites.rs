//! Invites from other servers to this server's users (spec: server-server API, "Inviting to a
//! room", `/invite` v2 on the invitee's side), and declining them (`make_leave`/`send_leave`
//! through the inviting server, or a leave only this server signs when that server cannot be
//! reached, as Synapse does).

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, OwnedServerName, RoomId, RoomVersionId, ServerName,
    UserId,
    api::federation::membership::{
        RawStrippedState, create_knock_event, create_leave_event, prepare_knock_event, prepare_leave_event,
    },
    signatures::Verified,
};
use serde_json::value::RawValue;

use super::{Federation, remote_error};
use crate::{
    error::{Error, Result},
    matrix::pdu,
    service::rooms::{create::supported, remote_join::event_id_of},
};

impl Federation {
    /// `PUT /invite/{roomId}/{eventId}` v2: checks that `event` is an invite of a local user by a
    /// user of `origin`, signed by `origin`; countersigns it and, when no user of this server is
    /// in the room, keeps it (with the room's stripped state) so the user sees the invite.
    /// Returns the countersigned event.
    pub async fn receive_invite(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        version: &RoomVersionId,
        event: &RawValue,
        invite_room_state: &[RawStrippedState],
    ) -> Result<Box<RawValue>> {
        if !supported(version) {
            return Err(Error::incompatible_room_version(
                version.clone(),
                format!("Room version {version} is not supported here"),
            ));
        }
        let rules = version.rules().ok_or_else(|| Error::internal("no rules"))?;
        let mut json: CanonicalJsonObject =
            serde_json::from_str(event.get()).map_err(|e| Error::bad_json(format!("The invite event: {e}")))?;
        ruma::state_res::check_pdu_format(&json, &rules.event_format)
            .map_err(|e| Error::bad_json(format!("Invalid invite event: {e}")))?;
        if event_id_of(&json, &rules).as_deref() != Some(event_id) {
            return Err(Error::bad_json("The event's ID differs from the path"));
        }
        let field = |name: &str| match json.get(name) {
            Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        let membership = match json.get("content") {
            Some(CanonicalJsonValue::Object(c)) => match c.get("membership") {
                Some(CanonicalJsonValue::String(m)) => Some(m.clone()),
                _ => None,
            },
            _ => None,
        };
        if field("type").as_deref() != Some("m.room.member") || membership.as_deref() != Some("invite") {
            return Err(Error::bad_json("Not an invite"));
        }
        if field("room_id").as_deref() != Some(room_id.as_str()) {
            return Err(Error::bad_json("The event's room differs from the path"));
        }
        let sender = field("sender").and_then(|s| UserId::parse(s).ok());
        if sender.as_ref().is_none_or(|s| s.server_name() != origin) {
            return Err(Error::forbidden("The inviter must be a user of the asking server"));
        }
        let invitee = field("state_key").and_then(|s| UserId::parse(s).ok());
        let invitee = match invitee {
            Some(u) if u.server_name() == self.keys.own_server_name() => u,
            _ => return Err(Error::forbidden("The invitee is not a user of this server")),
        };
        if !self.rooms.is_active_user(&invitee).await? {
            return Err(Error::not_found("No such user here"));
        }
        if self.rooms.room(room_id).await?.is_some() {
            self.check_acl(origin, room_id).await?;
        }
        let keys = self.keys.keys_for_event(&json, &rules).await.map_err(Error::forbidden)?;
        match ruma::signatures::verify_event(&keys, &json, &rules) {
            Ok(Verified::All) => {}
            Ok(Verified::Signatures) => return Err(Error::forbidden("The invite's content hash does not match")),
            Err(e) => return Err(Error::forbidden(format!("The invite's signatures do not verify: {e}"))),
        }
        pdu::countersign(&mut json, &rules, self.keys.own_server_name().as_str(), self.rooms.signing_key())
            .map_err(|e| Error::internal(e.0))?;
        let answer = serde_json::value::to_raw_value(&json).map_err(Error::internal)?;

        // A room a user of this server is in hears of the invite from the inviting server's
        // transaction, like any event.
        let ours = self.keys.own_server_name().as_str();
        if !self.rooms.servers_in_room(room_id).await?.iter().any(|s| s == ours) {
            let stripped: Vec<CanonicalJsonValue> = invite_room_state
                .iter()
                .filter_map(|s| serde_json::to_value(s).ok())
                .filter_map(|v| CanonicalJsonValue::try_from(v).ok())
                .collect();
            let mut kept = json.clone();
            let mut unsigned = match kept.remove("unsigned") {
                Some(CanonicalJsonValue::Object(u)) => u,
                _ => CanonicalJsonObject::new(),
            };
            unsigned.insert("invite_room_state".into(), CanonicalJsonValue::Array(stripped));
            kept.insert("unsigned".into(), CanonicalJsonValue::Object(unsigned));
            self.rooms.store_outlier_membership(room_id, version, event_id, kept).await?;
            tracing::info!(%origin, %room_id, %invitee, "invite from another server");
        }
        Ok(answer)
    }

    /// A local user leaves `room_id`: in a room a user of this server is in, an event of the
    /// room like any other; an invite into a room of another server is declined through the
    /// inviting server (`make_leave`, `send_leave`), and when it cannot be reached, with a leave
    /// only this server knows, so the user is rid of the invite either way.
    pub async fn leave(&self, room_id: &RoomId, user: &UserId, reason: Option<&str>) -> Result<()> {
        let ours = self.keys.own_server_name().as_str();
        let in_room = self.rooms.servers_in_room(room_id).await?.iter().any(|s| s == ours);
        let invite = match self.rooms.membership_event(room_id, user).await? {
            Some((membership, event)) if !in_room && matches!(membership.as_str(), "invite" | "knock") => event,
            _ => {
                self.rooms.set_membership(room_id, user, user, "leave", reason).await?;
                return Ok(());
            }
        };
        let row = self.rooms.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let version = RoomVersionId::try_from(row.room_version.as_str()).map_err(Error::internal)?;
        let invite_id = OwnedEventId::try_from(invite.row.event_id.as_str()).map_err(Error::internal)?;
        let mut servers: Vec<OwnedServerName> = Vec::new();
        if let Some(CanonicalJsonValue::String(sender)) = invite.json().get("sender")
            && let Ok(sender) = UserId::parse(sender)
        {
            servers.push(sender.server_name().to_owned());
        }
        if let Some(s) = room_id.server_name()
            && !servers.iter().any(|x| x == s)
            && s.as_str() != ours
        {
            servers.push(s.to_owned());
        }
        let mut content = serde_json::json!({ "membership": "leave" });
        if let Some(r) = reason {
            content["reason"] = serde_json::Value::from(r);
        }
        for server in &servers {
            match self.leave_through(server, room_id, user, content.clone()).await {
                Ok((id, event, version)) => {
                    return self.rooms.store_outlier_membership(room_id, &version, &id, event).await;
                }
                Err(e) => {
                    tracing::info!(%server, %room_id, error = %e.message(), "declining through this server failed")
                }
            }
        }
        let (id, event) = self.rooms.out_of_band_leave(&version, room_id, user, (&invite_id, invite.json()))?;
        self.rooms.store_outlier_membership(room_id, &version, &id, event).await
    }

    /// `POST /knock/{roomIdOrAlias}` for a local user: in a room a user of this server is in,
    /// an event of the room; else through one of the room's servers (`via`, the room ID's
    /// server, those this server knew in it): `make_knock`, signed here, `send_knock`, and the
    /// knock kept (with the room's stripped state the server answered) so /sync shows it.
    pub async fn knock(
        &self,
        room_id: &RoomId,
        via: &[OwnedServerName],
        user: &UserId,
        reason: Option<&str>,
    ) -> Result<()> {
        self.rooms.refuse_if_blocked(room_id).await?;
        let ours = self.keys.own_server_name().to_owned();
        let content = self.rooms.member_content(user, "knock", reason).await?;
        let known = self.rooms.servers_in_room(room_id).await?;
        if known.iter().any(|s| s == ours.as_str())
            || (via.is_empty() && room_id.server_name().is_none_or(|s| s == ours))
        {
            if self.rooms.room(room_id).await?.is_none() {
                return Err(Error::not_found("This server does not know that room; name a server in it (via)"));
            }
            self.rooms.send(room_id, user, "m.room.member", Some(user.as_str()), content, None).await?;
            return Ok(());
        }
        let mut servers: Vec<OwnedServerName> = via.to_vec();
        servers.extend(room_id.server_name().map(ToOwned::to_owned));
        servers.extend(known.into_iter().filter_map(|s| OwnedServerName::try_from(s).ok()));
        let mut seen = std::collections::HashSet::new();
        servers.retain(|s| *s != ours && seen.insert(s.clone()));
        let mut last = None;
        for server in servers.iter().take(5) {
            match self.knock_through(server, room_id, user, content.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::info!(%server, %room_id, error = %e.message(), "knocking through this server failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::not_found("No server in the room could be reached")))
    }

    async fn knock_through(
        &self,
        server: &ServerName,
        room_id: &RoomId,
        user: &UserId,
        content: serde_json::Value,
    ) -> Result<()> {
        let mut request = prepare_knock_event::v1::Request::new(room_id.to_owned(), user.to_owned());
        request.ver =
            (7..=12u32).filter_map(|v| RoomVersionId::try_from(v.to_string()).ok()).filter(supported).collect();
        let made = self
            .client
            .send(server, request)
            .await
            .map_err(|e| remote_error(e, "The room's server refused the knock", Error::forbidden))?;
        let version = made.room_version;
        if !supported(&version) {
            return Err(Error::bad_json(format!("make_knock answered room version {version}")));
        }
        let template: CanonicalJsonObject =
            serde_json::from_str(made.event.get()).map_err(|e| Error::bad_json(format!("make_knock: {e}")))?;
        check_own_template(&template, room_id, user, "make_knock")?;
        let (event_id, mut event) = self.rooms.complete_template(&version, template, content)?;
        let raw = serde_json::value::to_raw_value(&event).map_err(Error::internal)?;
        let answer = self
            .client
            .send(server, create_knock_event::v1::Request::new(room_id.to_owned(), event_id.clone(), raw))
            .await
            .map_err(|e| remote_error(e, "The room's server did not take the knock", Error::forbidden))?;
        let stripped: Vec<CanonicalJsonValue> = answer
            .knock_room_state
            .iter()
            .filter_map(|s| serde_json::to_value(s).ok())
            .filter_map(|v| CanonicalJsonValue::try_from(v).ok())
            .collect();
        let mut unsigned = CanonicalJsonObject::new();
        unsigned.insert("knock_room_state".into(), CanonicalJsonValue::Array(stripped));
        event.insert("unsigned".into(), CanonicalJsonValue::Object(unsigned));
        self.rooms.store_outlier_membership(room_id, &version, &event_id, event).await
    }

    async fn leave_through(
        &self,
        server: &ServerName,
        room_id: &RoomId,
        user: &UserId,
        content: serde_json::Value,
    ) -> Result<(OwnedEventId, CanonicalJsonObject, RoomVersionId)> {
        let request = prepare_leave_event::v1::Request::new(room_id.to_owned(), user.to_owned());
        let made = self
            .client
            .send(server, request)
            .await
            .map_err(|e| remote_error(e, "make_leave failed", Error::not_found))?;
        let version = made.room_version.unwrap_or(RoomVersionId::V1);
        if !supported(&version) {
            return Err(Error::bad_json(format!("make_leave answered room version {version}")));
        }
        let template: CanonicalJsonObject =
            serde_json::from_str(made.event.get()).map_err(|e| Error::bad_json(format!("make_leave: {e}")))?;
        check_own_template(&template, room_id, user, "make_leave")?;
        let (event_id, event) = self.rooms.complete_template(&version, template, content)?;
        let raw = serde_json::value::to_raw_value(&event).map_err(Error::internal)?;
        self.client
            .send(server, create_leave_event::v2::Request::new(room_id.to_owned(), event_id.clone(), raw))
            .await
            .map_err(|e| remote_error(e, "send_leave failed", Error::not_found))?;
        Ok((event_id, event, version))
    }
}

/// The template another server answered must be the user's own membership event in the room.
pub(super) fn check_own_template(
    template: &CanonicalJsonObject,
    room_id: &RoomId,
    user: &UserId,
    endpoint: &str,
) -> Result<()> {
    let field = |name: &str| match template.get(name) {
        Some(CanonicalJsonValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    if field("type") != Some("m.room.member")
        || field("sender") != Some(user.as_str())
        || field("state_key") != Some(user.as_str())
        || field("room_id") != Some(room_id.as_str())
    {
        return Err(Error::bad_json(format!("{endpoint} answered an event that is not this user's")));
    }
    Ok(())
}
