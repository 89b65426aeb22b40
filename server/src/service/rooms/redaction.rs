//! Redactions (spec: "Redactions"): who may redact what, and applying a redaction so clients see
//! the redacted form from then on.

use ruma::{
    CanonicalJsonValue, EventId, OwnedEventId, RoomId, UserId,
    canonical_json::{RedactedBecause, redact},
    events::room::power_levels::{RoomPowerLevels, RoomPowerLevelsEventContent, RoomPowerLevelsSource},
};
use serde_json::json;

use super::{Rooms, Txn, content_of, rules_for};
use crate::{
    error::{Error, Result},
    matrix::client_event::{self, View},
    storage::{self, now_ms},
};

impl Rooms {
    /// The room's power levels as ruma computes them (creators infinite in v12).
    pub async fn power_levels(&self, room_id: &RoomId) -> Result<RoomPowerLevels> {
        let room = self.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let create = self
            .current_state_event(room_id, "m.room.create", "")
            .await?
            .ok_or_else(|| Error::internal("room without create event"))?;
        let power = self.current_state_event(room_id, "m.room.power_levels", "").await?;
        power_levels_from(&room.room_version, &create, power.as_ref())
    }

    /// `power_levels` from a room's hot copy.
    pub(super) async fn power_levels_of(&self, hot: &super::cache::RoomHot) -> Result<RoomPowerLevels> {
        let create = match hot.state_id("m.room.create", "") {
            Some(id) => self.event(id).await?,
            None => None,
        }
        .ok_or_else(|| Error::internal("room without create event"))?;
        let power = match hot.state_id("m.room.power_levels", "") {
            Some(id) => self.event(id).await?,
            None => None,
        };
        power_levels_from(&hot.room.room_version, &create, power.as_ref())
    }

    pub async fn redact(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        target: &EventId,
        reason: Option<&str>,
        txn: Option<Txn<'_>>,
    ) -> Result<OwnedEventId> {
        let room = self.room(room_id).await?.ok_or_else(|| Error::not_found("Unknown room"))?;
        let (_, rules) = rules_for(&room.room_version)?;
        let original = self
            .event(target.as_str())
            .await?
            .filter(|e| e.row.room_id == room_id.as_str())
            .ok_or_else(|| Error::not_found("No such event in this room"))?;
        // Room versions 3+ leave this check to the server applying the redaction: one may
        // redact one's own events, or others' with the power to.
        let own = original.json().get("sender").and_then(|s| s.as_str()) == Some(sender.as_str());
        let power = self.power_levels(room_id).await?;
        let allowed =
            if own { power.user_can_redact_own_event(sender) } else { power.user_can_redact_event_of_other(sender) };
        if !allowed {
            return Err(Error::forbidden("You may not redact this event"));
        }
        let mut content = json!({});
        if let Some(r) = reason {
            content["reason"] = json!(r);
        }
        // v11+ carry `redacts` in content; earlier versions at the top level (append_locked
        // moves it there).
        content["redacts"] = json!(target);
        let redaction_id = self.send(room_id, sender, "m.room.redaction", None, content, txn).await?;
        self.apply_redaction(room_id, &rules, &original, &redaction_id).await?;
        Ok(redaction_id)
    }

    /// Applies a redaction another server sent, once it is stored and accepted: the target is
    /// redacted when it is in the room and the redaction may redact it (its sender is of the
    /// target's server, or has the power to redact others' events: the room versions 3+ rule
    /// the receiving server applies). Answers whether it was applied.
    pub async fn apply_received_redaction(&self, room_id: &RoomId, redaction_id: &EventId) -> Result<bool> {
        let Some(room) = self.room(room_id).await? else { return Ok(false) };
        let (_, rules) = rules_for(&room.room_version)?;
        let Some(redaction) = self.event(redaction_id.as_str()).await? else { return Ok(false) };
        let field = |v: Option<&CanonicalJsonValue>| v.and_then(|v| v.as_str()).map(str::to_owned);
        let target = field(redaction.json().get("redacts")).or_else(|| {
            field(redaction.json().get("content").and_then(|c| c.as_object()).and_then(|c| c.get("redacts")))
        });
        let (Some(target), Some(sender)) = (target, field(redaction.json().get("sender"))) else { return Ok(false) };
        let Some(original) = self.event(&target).await? else {
            // Its target may come later (backfill of older history): applied then.
            storage::events::add_pending_redaction(&self.db.write, &target, redaction_id.as_str(), room_id.as_str())
                .await?;
            return Ok(false);
        };
        if original.row.room_id != room_id.as_str() {
            return Ok(false);
        }
        if original.row.redacted_json.is_some() {
            return Ok(false);
        }
        let Ok(sender) = UserId::parse(&sender) else { return Ok(false) };
        let same_server = field(original.json().get("sender"))
            .and_then(|s| UserId::parse(s).ok())
            .is_some_and(|s| s.server_name() == sender.server_name());
        if !same_server && !self.power_levels(room_id).await?.user_can_redact_event_of_other(&sender) {
            tracing::info!(%redaction_id, %target, "a received redaction may not redact its target: kept, not applied");
            return Ok(false);
        }
        self.apply_redaction(room_id, &rules, &original, redaction_id).await?;
        Ok(true)
    }

    /// Applies the redactions received before their targets, now that some of those (`arrived`)
    /// are stored. Answers how many were applied.
    pub async fn apply_pending_redactions(&self, arrived: &[String]) -> Result<usize> {
        let mut applied = 0;
        for (target, room_id, redaction_id) in storage::events::pending_redactions_of(&self.db.read, arrived).await? {
            storage::events::drop_pending_redaction(&self.db.write, &target, &redaction_id).await?;
            let (Ok(room_id), Ok(redaction_id)) = (RoomId::parse(&room_id), EventId::parse(&redaction_id)) else {
                continue;
            };
            if self.apply_received_redaction(&room_id, &redaction_id).await? {
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// Stores the target's redacted form (with `redacted_because`), forgets it for search and
    /// drops what was cached of it.
    async fn apply_redaction(
        &self,
        room_id: &RoomId,
        rules: &ruma::room_version_rules::RoomVersionRules,
        original: &super::StoredEvent,
        redaction_id: &EventId,
    ) -> Result<()> {
        let target = original.row.event_id.as_str();
        let redaction =
            self.event(redaction_id.as_str()).await?.ok_or_else(|| Error::internal("redaction vanished"))?;
        let because = client_event::format(
            &View { json: redaction.json(), event_id: redaction_id.as_str(), room_id: room_id.as_str(), txn: None },
            true,
            None,
            now_ms(),
        );
        let because = match CanonicalJsonValue::try_from(because) {
            Ok(CanonicalJsonValue::Object(o)) => o,
            _ => return Err(Error::internal("redaction event is not canonical JSON")),
        };
        let original_pdu = crate::matrix::canonical::parse_object(&original.row.pdu).map_err(Error::internal)?;
        let redacted = redact(original_pdu, &rules.redaction, Some(RedactedBecause::from_json(because)))
            .map_err(Error::internal)?;
        let text = serde_json::to_string(&redacted).map_err(Error::internal)?;
        {
            // Under the room's lock: the hot copy (display names come from member events) is
            // dropped and reloaded by the next append, never overwritten by one in flight.
            let lock = self.lock_for(room_id);
            let _guard = lock.lock().await;
            // One transaction: redacted text must not stay findable, even after a crash between
            // the two.
            let mut tx = self.db.begin_write().await?;
            storage::events::set_redacted(&mut *tx, target, redaction_id.as_str(), &text).await?;
            storage::search::forget(&mut *tx, target).await?;
            tx.commit().await?;
            self.shared.cache.redacted(target);
            self.shared.hot.lock().remove(room_id);
        }
        Ok(())
    }
}

/// Power levels from the create event and the power levels event, by the room version's rules.
fn power_levels_from(
    version: &str,
    create: &super::StoredEvent,
    power: Option<&super::StoredEvent>,
) -> Result<RoomPowerLevels> {
    let (_, rules) = rules_for(version)?;
    let create_content = content_of(create.json());
    let mut creators = Vec::new();
    if rules.authorization.use_room_create_sender {
        creators.extend(create.json().get("sender").and_then(|s| s.as_str()).and_then(|s| UserId::parse(s).ok()));
    } else {
        creators.extend(create_content["creator"].as_str().and_then(|s| UserId::parse(s).ok()));
    }
    if rules.authorization.additional_room_creators {
        for u in create_content["additional_creators"].as_array().into_iter().flatten() {
            creators.extend(u.as_str().and_then(|s| UserId::parse(s).ok()));
        }
    }
    let source = match power {
        Some(e) => {
            let content: RoomPowerLevelsEventContent = serde_json::from_value(content_of(e.json()))
                .map_err(|e| Error::internal(format!("power levels: {e}")))?;
            RoomPowerLevelsSource::Original(content)
        }
        None => RoomPowerLevelsSource::None,
    };
    Ok(RoomPowerLevels::new(source, &rules.authorization, creators))
}
