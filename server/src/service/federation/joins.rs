//! Hearth's users joining rooms that live on other servers (spec: server-server API, "Joining
//! Rooms"): the alias resolved by its server (`/query/directory`), the join event's template
//! asked of a resident server (`make_join`), completed and signed here, sent back
//! (`send_join` v2), and the answered state and auth chain checked and stored. Also what this
//! server answers others about its aliases.

use ruma::{
    CanonicalJsonObject, OwnedRoomId, OwnedServerName, RoomAliasId, RoomId, RoomVersionId, ServerName, UserId,
    api::federation::{
        membership::{create_join_event, prepare_join_event},
        query::get_room_information,
    },
    room_version_rules::RoomIdFormatVersion,
};

use super::{Federation, client::FederationError, remote_error};
use crate::{
    error::{Error, Result},
    service::rooms::{
        create::supported,
        remote_join::{RemoteJoin, event_id_of},
    },
};

/// Most resident servers tried for one join (Synapse tries every candidate; a handful is
/// enough and bounds how long a client waits).
const MAX_JOIN_ATTEMPTS: usize = 5;

impl Federation {
    /// The room an alias names and servers to join it through: a local alias from here, another
    /// server's alias from that server (`/query/directory`).
    pub async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<(OwnedRoomId, Vec<OwnedServerName>)> {
        if alias.server_name() == self.keys.own_server_name() {
            let room = self
                .rooms
                .resolve_alias(alias)
                .await?
                .ok_or_else(|| Error::not_found(format!("Room alias {alias} not found")))?;
            let servers = self.servers_to_join_through(&room).await?;
            return Ok((room, servers));
        }
        let request = get_room_information::v1::Request::new(alias.to_owned());
        let resp = self
            .client
            .send(alias.server_name(), request)
            .await
            .map_err(|e| remote_error(e, &format!("Room alias {alias} not found"), Error::not_found))?;
        let mut servers = vec![alias.server_name().to_owned()];
        servers.extend(resp.servers);
        Ok((resp.room_id, servers))
    }

    /// The servers a room can be joined through, as an alias lookup answers them: this one
    /// first, then the others with members in the room.
    pub async fn servers_to_join_through(&self, room: &RoomId) -> Result<Vec<OwnedServerName>> {
        let ours = self.keys.own_server_name().to_owned();
        let mut servers = vec![ours.clone()];
        for s in self.rooms.servers_in_room(room).await? {
            if let Ok(s) = OwnedServerName::try_from(s)
                && s != ours
            {
                servers.push(s);
            }
        }
        Ok(servers)
    }

    /// `POST /join/{roomIdOrAlias}` and `POST /rooms/{roomId}/join` for a local user: joined
    /// here when a user of this server is in the room, else through one of the room's servers
    /// (`via`, which holds the alias's servers, then the server of the room's ID and those of
    /// the members this server knew of).
    pub async fn join(
        &self,
        room_id: &RoomId,
        via: &[OwnedServerName],
        user: &UserId,
        is_guest: bool,
        reason: Option<&str>,
    ) -> Result<()> {
        self.rooms.refuse_if_blocked(room_id).await?;
        let ours = self.keys.own_server_name();
        let in_room = self.rooms.servers_in_room(room_id).await?;
        if in_room.iter().any(|s| s == ours.as_str()) {
            self.rooms.join(room_id, user, is_guest, reason).await?;
            return Ok(());
        }
        let mut candidates: Vec<OwnedServerName> = via.to_vec();
        // Invited: the inviting server is in the room.
        if let Some((membership, invite)) = self.rooms.membership_event(room_id, user).await?
            && membership == "invite"
            && let Some(ruma::CanonicalJsonValue::String(sender)) = invite.json().get("sender")
            && let Ok(sender) = UserId::parse(sender)
        {
            candidates.push(sender.server_name().to_owned());
        }
        if let Some(server) = room_id.server_name() {
            candidates.push(server.to_owned());
        }
        for s in in_room {
            if let Ok(s) = OwnedServerName::try_from(s) {
                candidates.push(s);
            }
        }
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|s| s != ours && seen.insert(s.clone()));
        if candidates.is_empty() {
            // A local room everyone left, or one this server never knew, with no server to ask.
            return self.rooms.join(room_id, user, is_guest, reason).await.map(|_| ());
        }
        if is_guest {
            return Err(Error::matrix(
                http::StatusCode::FORBIDDEN,
                ruma::api::error::ErrorKind::GuestAccessForbidden,
                "Guests may not join rooms on other servers",
            ));
        }
        self.join_remote(room_id, &candidates, user, reason).await
    }

    /// Joins `room_id` through the first of `servers` that lets the user in.
    async fn join_remote(
        &self,
        room_id: &RoomId,
        servers: &[OwnedServerName],
        user: &UserId,
        reason: Option<&str>,
    ) -> Result<()> {
        let mut last: Option<Error> = None;
        for server in servers.iter().take(MAX_JOIN_ATTEMPTS) {
            match self.join_through(server, room_id, user, reason).await {
                Ok(()) => return Ok(()),
                Err(JoinFailure::Final(e)) => return Err(e),
                Err(JoinFailure::TryAnother(e)) => {
                    tracing::info!(%server, %room_id, error = %e.message(), "joining through this server failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::not_found("No server in the room could be reached")))
    }

    async fn join_through(
        &self,
        server: &ServerName,
        room_id: &RoomId,
        user: &UserId,
        reason: Option<&str>,
    ) -> std::result::Result<(), JoinFailure> {
        let started = std::time::Instant::now();
        let mut request = prepare_join_event::v1::Request::new(room_id.to_owned(), user.to_owned());
        request.ver =
            (1..=12u32).filter_map(|v| RoomVersionId::try_from(v.to_string()).ok()).filter(supported).collect();
        let made = self.client.send(server, request).await.map_err(|e| match &e {
            // The room's rules refuse the user: another server would say the same.
            FederationError::Refused { status: 403, .. } => {
                JoinFailure::Final(remote_error(e, "The room's server refused the join", Error::forbidden))
            }
            FederationError::Refused { status: 400, .. }
                if e.errcode().as_deref() == Some("M_INCOMPATIBLE_ROOM_VERSION") =>
            {
                JoinFailure::Final(Error::custom(
                    http::StatusCode::BAD_REQUEST,
                    "M_UNSUPPORTED_ROOM_VERSION",
                    "The room's version is not one this server supports",
                ))
            }
            _ => JoinFailure::TryAnother(remote_error(
                e,
                "The room's server could not be joined through",
                Error::not_found,
            )),
        })?;
        let version = made.room_version.unwrap_or(RoomVersionId::V1);
        if !supported(&version) {
            return Err(JoinFailure::Final(Error::custom(
                http::StatusCode::BAD_REQUEST,
                "M_UNSUPPORTED_ROOM_VERSION",
                format!("The room is of version {version}, which this server does not support"),
            )));
        }
        let rules = version.rules().ok_or_else(|| JoinFailure::Final(Error::internal("no rules")))?;
        let template: CanonicalJsonObject = serde_json::from_str(made.event.get())
            .map_err(|e| JoinFailure::TryAnother(Error::bad_json(format!("make_join answered a broken event: {e}"))))?;
        super::invites::check_own_template(&template, room_id, user, "make_join").map_err(JoinFailure::TryAnother)?;
        let content = self.rooms.member_content(user, "join", reason).await.map_err(JoinFailure::Final)?;
        let (join_id, join) =
            self.rooms.complete_template(&version, template, content).map_err(JoinFailure::TryAnother)?;

        let made_at = started.elapsed();
        let raw = serde_json::value::to_raw_value(&join).map_err(|e| JoinFailure::Final(Error::internal(e)))?;
        let request = create_join_event::v2::Request::new(room_id.to_owned(), join_id.clone(), raw);
        let answer = self.client.send(server, request).await.map_err(|e| {
            JoinFailure::TryAnother(remote_error(e, "The room's server did not take the join", Error::not_found))
        })?;
        let answered_at = started.elapsed();
        let state = answer.room_state;
        let parse = |list: Vec<Box<serde_json::value::RawValue>>| -> Vec<CanonicalJsonObject> {
            list.into_iter().filter_map(|raw| serde_json::from_str(raw.get()).ok()).collect()
        };
        // A restricted join comes back countersigned by the resident server: that copy is the
        // event, provided it is ours with a signature more.
        let join =
            match state.event.as_ref().and_then(|raw| serde_json::from_str::<CanonicalJsonObject>(raw.get()).ok()) {
                Some(signed)
                    if same_event(&signed, &join) && event_id_of(&signed, &rules).as_ref() == Some(&join_id) =>
                {
                    signed
                }
                _ => join,
            };
        let state_events = self.keys.verified_events(parse(state.state), &rules).await;
        let auth_chain = self.keys.verified_events(parse(state.auth_chain), &rules).await;
        let verified_at = started.elapsed();
        let (state_count, auth_count) = (state_events.len(), auth_chain.len());
        // A v12 room's ID is its create event's: check it before trusting the answer at all.
        if rules.room_id_format == RoomIdFormatVersion::V2 && room_id.server_name().is_some() {
            return Err(JoinFailure::TryAnother(Error::bad_json("A v12 room ID names no server")));
        }
        self.rooms
            .store_remote_join(RemoteJoin {
                room_id: room_id.to_owned(),
                version,
                join_id,
                join,
                state: state_events,
                auth_chain,
            })
            .await
            .map_err(JoinFailure::TryAnother)?;
        // Where a slow join's time went.
        tracing::info!(
            %server, %room_id, state = state_count, auth_chain = auth_count,
            make_join_ms = made_at.as_millis() as u64,
            send_join_ms = (answered_at - made_at).as_millis() as u64,
            verify_ms = (verified_at - answered_at).as_millis() as u64,
            store_ms = (started.elapsed() - verified_at).as_millis() as u64,
            "joined a room through another server"
        );
        // The resident server has the join; the sender tells the room's other servers.
        Ok(())
    }
}

/// Why joining through one server failed: whether another server might do better.
enum JoinFailure {
    TryAnother(Error),
    Final(Error),
}

/// Two copies of an event that differ at most in their signatures.
pub(super) fn same_event(a: &CanonicalJsonObject, b: &CanonicalJsonObject) -> bool {
    let strip = |e: &CanonicalJsonObject| {
        let mut e = e.clone();
        e.remove("signatures");
        e.remove("unsigned");
        e
    };
    strip(a) == strip(b)
}
