//! createRoom: the create event (which names the room in v12), then the events the request
//! implies, in the order the spec prescribes (spec: POST /createRoom).

use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId, api::error::ErrorKind};
use serde_json::{Value, json};

use super::{Rooms, now_ts, pdu_error, rules_for, to_canonical_object};
use crate::{
    error::{Error, Result},
    matrix::pdu::{self, NewPdu, Pdu},
    storage::{self, now_ms},
};

/// The spec's `preset` values, named as the spec names them.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    PrivateChat,
    TrustedPrivateChat,
    PublicChat,
}

/// Everything a createRoom request can ask for.
pub struct CreateRoom {
    pub creator: OwnedUserId,
    pub version: RoomVersionId,
    pub preset: Preset,
    pub publish: bool,
    pub alias_localpart: Option<String>,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub invite: Vec<OwnedUserId>,
    pub is_direct: bool,
    pub initial_state: Vec<(String, String, Value)>,
    pub creation_content: Option<serde_json::Map<String, Value>>,
    pub power_level_content_override: Option<serde_json::Map<String, Value>>,
    /// The ID to use, for room versions whose IDs are not derived from the create event (an
    /// upgrade names the new room in the old room's tombstone before creating it).
    pub room_id: Option<OwnedRoomId>,
}

/// Room versions this server creates and joins.
pub fn supported(version: &RoomVersionId) -> bool {
    version.rules().is_some()
        && !matches!(version, RoomVersionId::_Custom(_))
        && version.as_str().parse::<u32>().is_ok_and(|v| (1..=12).contains(&v))
}

impl Rooms {
    pub async fn create_room(&self, req: CreateRoom) -> Result<OwnedRoomId> {
        if !supported(&req.version) {
            return Err(Error::matrix(
                http::StatusCode::BAD_REQUEST,
                ErrorKind::UnsupportedRoomVersion,
                format!("Room version {} is not supported; use 1 to 12", req.version),
            ));
        }
        let (version, rules) = rules_for(req.version.as_str())?;
        let server = self.config.server_name.clone();
        let alias = match &req.alias_localpart {
            Some(lp) => {
                let alias = format!("#{lp}:{server}");
                if lp.is_empty()
                    || lp.contains(':')
                    || lp.contains(char::is_whitespace)
                    || ruma::RoomAliasId::parse(&alias).is_err()
                {
                    return Err(Error::invalid_param("room_alias_name is not a valid alias local part"));
                }
                if storage::rooms::resolve_alias(&self.db.read, &alias).await?.is_some() {
                    return Err(Error::matrix(
                        http::StatusCode::BAD_REQUEST,
                        ErrorKind::RoomInUse,
                        "That room alias is already taken",
                    ));
                }
                Some(alias)
            }
            None => None,
        };

        // 1. The create event.
        let mut create: serde_json::Map<String, Value> = req.creation_content.clone().unwrap_or_default();
        create.insert("room_version".into(), json!(version.as_str()));
        if rules.authorization.use_room_create_sender {
            create.remove("creator");
        } else {
            create.insert("creator".into(), json!(req.creator));
        }
        if rules.authorization.additional_room_creators && req.preset == Preset::TrustedPrivateChat {
            let mut extra: Vec<Value> =
                create.get("additional_creators").and_then(|v| v.as_array().cloned()).unwrap_or_default();
            extra.extend(req.invite.iter().map(|u| json!(u)));
            create.insert("additional_creators".into(), Value::Array(extra));
        }
        let v12 = rules.authorization.room_create_event_id_as_room_id;
        let create = to_canonical_object(Value::Object(create))?;
        let mut ts = now_ts();
        // In v12 the room ID is the create event's hash: two identical requests in the same
        // millisecond would name the same room, so a taken ID moves the timestamp on.
        let (built, pdu, room_id, _guard) = loop {
            let provisional_id = (!v12).then(|| req.room_id.clone().unwrap_or_else(|| RoomId::new_v1(&server)));
            let built = pdu::build_and_sign(
                NewPdu {
                    room_version: &version,
                    room_id: provisional_id.as_deref(),
                    sender: &req.creator,
                    kind: "m.room.create",
                    state_key: Some(""),
                    content: create.clone(),
                    prev_events: vec![],
                    auth_events: vec![],
                    depth: 1,
                    origin_server_ts: ts,
                    redacts: None,
                },
                server.as_str(),
                self.keys.pair(),
            )
            .map_err(pdu_error)?;
            let room_id = built.room_id.clone();
            let lock = self.lock_for(&room_id);
            let guard = lock.lock_owned().await;
            if self.room(&room_id).await?.is_none() {
                let pdu = Pdu::from_json(&built.json, built.event_id.clone(), room_id.clone(), &rules)
                    .map_err(Error::internal)?;
                break (built, pdu, room_id, guard);
            }
            if req.room_id.is_some() && !v12 {
                return Err(Error::matrix(
                    http::StatusCode::BAD_REQUEST,
                    ErrorKind::RoomInUse,
                    "That room ID is taken",
                ));
            }
            ts = ruma::MilliSecondsSinceUnixEpoch(ts.0.saturating_add(ruma::uint!(1)));
        };
        ruma::state_res::check_state_independent_auth_rules(
            &rules.authorization,
            &pdu,
            |_: &ruma::EventId| None::<Pdu>,
        )
        .map_err(super::forbidden)?;
        let fresh =
            super::cache::RoomHot::fresh(room_id.as_str(), version.as_str(), self.shared.epoch(room_id.as_str()));
        let pending = self
            .store_locked(
                &fresh,
                Some((req.creator.as_str(), now_ms())),
                &built.event_id,
                &built.json,
                &pdu,
                vec![],
                vec![],
                None,
                None,
            )
            .await?;
        self.complete(pending).await?;

        // Each further event sees the state the previous ones made.
        let send = async |kind: &str, key: Option<&str>, content: Value| -> Result<OwnedEventId> {
            let hot = self.hot_locked(&room_id).await?.ok_or_else(|| Error::internal("room vanished"))?;
            let pending =
                self.append_locked(&hot, &req.creator, kind, key, to_canonical_object(content)?, None, None).await?;
            let event_id = pending.event_id.clone();
            self.complete(pending).await?;
            Ok(event_id)
        };
        // 2. The creator joins.
        let member = self.member_content(&req.creator, "join", None).await?;
        send("m.room.member", Some(req.creator.as_str()), member).await?;

        // 3. Power levels, with the request's override on top.
        let mut users = serde_json::Map::new();
        if !rules.authorization.explicitly_privilege_room_creators {
            users.insert(req.creator.to_string(), json!(100));
            if req.preset == Preset::TrustedPrivateChat {
                for u in &req.invite {
                    users.insert(u.to_string(), json!(100));
                }
            }
        }
        let tombstone = if rules.authorization.explicitly_privilege_room_creators { 150 } else { 100 };
        let mut power = json!({
            "users": users,
            "users_default": 0,
            "events": {
                "m.room.name": 50,
                "m.room.power_levels": 100,
                "m.room.history_visibility": 100,
                "m.room.canonical_alias": 50,
                "m.room.avatar": 50,
                "m.room.tombstone": tombstone,
                "m.room.server_acl": 100,
                "m.room.encryption": 100,
            },
            "events_default": 0,
            "state_default": 50,
            "ban": 50,
            "kick": 50,
            "redact": 50,
            "invite": if req.preset == Preset::PublicChat { 50 } else { 0 },
            "historical": 100,
        });
        if let Some(over) = &req.power_level_content_override {
            for (k, v) in over {
                power[k] = v.clone();
            }
        }
        send("m.room.power_levels", Some(""), power).await?;

        // 4. The canonical alias.
        if let Some(alias) = &alias {
            if !storage::rooms::insert_alias(&self.db.write, alias, room_id.as_str(), req.creator.as_str()).await? {
                return Err(Error::matrix(
                    http::StatusCode::BAD_REQUEST,
                    ErrorKind::RoomInUse,
                    "That room alias is already taken",
                ));
            }
            send("m.room.canonical_alias", Some(""), json!({ "alias": alias })).await?;
        }

        // 5. The preset.
        let (join_rule, guest_access) = match req.preset {
            Preset::PublicChat => ("public", "forbidden"),
            _ => ("invite", "can_join"),
        };
        send("m.room.join_rules", Some(""), json!({ "join_rule": join_rule })).await?;
        send("m.room.history_visibility", Some(""), json!({ "history_visibility": "shared" })).await?;
        send("m.room.guest_access", Some(""), json!({ "guest_access": guest_access })).await?;

        // 6. initial_state, in order.
        for (kind, key, content) in &req.initial_state {
            send(kind, Some(key), content.clone()).await?;
        }

        // 7. Name and topic.
        if let Some(name) = &req.name {
            send("m.room.name", Some(""), json!({ "name": name })).await?;
        }
        if let Some(topic) = &req.topic {
            send(
                "m.room.topic",
                Some(""),
                json!({ "topic": topic, "m.topic": { "m.text": [{ "body": topic, "mimetype": "text/plain" }] } }),
            )
            .await?;
        }

        // 8. Invites. Users of other servers are invited by the caller once the room exists,
        // through their server (`/invite`), which must countersign the event.
        for invitee in req.invite.iter().filter(|u| u.server_name() == self.config.server_name) {
            let mut content = self.member_content(invitee, "invite", None).await?;
            if req.is_direct {
                content["is_direct"] = json!(true);
            }
            send("m.room.member", Some(invitee.as_str()), content).await?;
        }

        if req.publish {
            storage::rooms::set_public(&self.db.write, room_id.as_str(), true).await?;
        }
        tracing::info!(%room_id, creator = %req.creator, version = %version, "room created");
        Ok(room_id)
    }

    /// A member event's content with the target's profile (spec: m.room.member displayname and
    /// avatar_url are copied from the profile).
    pub async fn member_content(&self, user_id: &UserId, membership: &str, reason: Option<&str>) -> Result<Value> {
        let mut content = json!({ "membership": membership });
        if let Some((name, avatar)) = storage::users::profile(&self.db.read, user_id.as_str()).await? {
            if let Some(n) = name {
                content["displayname"] = json!(n);
            }
            if let Some(a) = avatar {
                content["avatar_url"] = json!(a);
            }
        }
        if let Some(r) = reason {
            content["reason"] = json!(r);
        }
        Ok(content)
    }
}
