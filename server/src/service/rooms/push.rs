//! Evaluating push rules for a new event (spec: "Push Rules"): for every local member but the
//! sender, ruma evaluates the user's ruleset with the room's context (member count, display
//! name, power levels for sender notification permission); events that notify are recorded, and
//! /sync's unread counts and /notifications are read from those records.

use std::collections::HashMap;

use ruma::{
    UInt, UserId,
    push::{Action, FlattenedJson, PushConditionPowerLevelsCtx, PushConditionRoomCtx},
    serde::Raw,
};
use serde_json::Value;

use super::{Rooms, cache::RoomHot};
use crate::{
    error::{Error, Result},
    storage,
};

/// The outcome of evaluating push rules for one event.
#[derive(Default)]
pub struct Pushed {
    /// (user, highlight, actions as JSON) for each local member the event notifies.
    pub rows: Vec<(String, bool, String)>,
    /// The same users' actions, for the push gateway.
    pub actions: HashMap<String, Vec<Action>>,
    /// The thread the event belongs to ("" for the main timeline).
    pub thread_id: String,
}

impl Rooms {
    /// Which local members the event notifies, from the room's hot copy (joined members,
    /// power levels) and the users' cached rulesets: no database round trip when warm.
    pub(super) async fn evaluate_push(&self, hot: &RoomHot, client_event: &Value) -> Result<Pushed> {
        let sender = client_event["sender"].as_str().unwrap_or_default();
        let local: Vec<String> = hot
            .joined
            .keys()
            .filter(|u| {
                u.as_str() != sender
                    && UserId::parse(u.as_str()).is_ok_and(|id| id.server_name() == self.config.server_name)
            })
            .cloned()
            .collect();
        if local.is_empty() {
            return Ok(Pushed::default());
        }
        // No one is notified of what someone they ignore sends.
        let ignored = self.account_data.ignored_by_each(&local).await?;
        let local: Vec<String> =
            local.into_iter().filter(|u| !ignored.get(u).is_some_and(|set| set.contains(sender))).collect();
        let rulesets = self.account_data.push_rules_of(&local).await?;
        let room_id = ruma::RoomId::parse(&hot.room.room_id).map_err(Error::internal)?;
        let power = self.power_levels_of(hot).await?;
        let power_ctx = PushConditionPowerLevelsCtx::new(
            power.users.clone(),
            power.users_default,
            power.notifications.clone(),
            power.rules.clone(),
        );
        let raw: Raw<ruma::events::AnySyncTimelineEvent> =
            Raw::from_json(serde_json::value::to_raw_value(client_event).map_err(Error::internal)?);
        // The event as conditions read it, flattened once for every member (ruma's
        // `Ruleset::get_actions` parses and flattens it again for each one).
        let flat = FlattenedJson::from_raw(&raw);
        let member_count = UInt::try_from(hot.joined.len() as u64).unwrap_or_default();
        let thread_id = match client_event["content"]["m.relates_to"]["rel_type"].as_str() {
            Some("m.thread") => client_event["content"]["m.relates_to"]["event_id"].as_str().unwrap_or("").to_owned(),
            _ => String::new(),
        };

        let mut out = Pushed { thread_id, ..Default::default() };
        for user in &local {
            let Ok(user_id) = UserId::parse(user) else { continue };
            let Some(rules) = rulesets.get(user) else { continue };
            let display = hot.joined.get(user).cloned().flatten().unwrap_or_else(|| user_id.localpart().to_owned());
            let ctx = PushConditionRoomCtx::new(room_id.clone(), member_count, user_id.clone(), display)
                .with_power_levels(power_ctx.clone());
            let actions = first_match(rules, &flat, &ctx).await;
            if actions.iter().any(|a| matches!(a, Action::Notify)) {
                let highlight = actions.iter().any(Action::is_highlight);
                out.rows.push((user.clone(), highlight, serde_json::to_string(actions).map_err(Error::internal)?));
                out.actions.insert(user.clone(), actions.to_vec());
            }
        }
        Ok(out)
    }

    /// (notification_count, highlight_count) overall and per thread, since the user's read
    /// position in the room.
    pub async fn unread_counts(&self, user: &UserId, room_id: &str) -> Result<UnreadCounts> {
        Ok(self.unread_counts_many(user, &[room_id]).await?.remove(room_id).unwrap_or_default())
    }

    /// `unread_counts` for several rooms in one query; rooms without unread events are left out.
    pub async fn unread_counts_many(&self, user: &UserId, rooms: &[&str]) -> Result<HashMap<String, UnreadCounts>> {
        let mut out: HashMap<String, UnreadCounts> = HashMap::new();
        for (room, thread, n, h) in storage::push_actions::unread_many(&self.db.read, user.as_str(), rooms).await? {
            let entry = out.entry(room).or_default();
            entry.0.0 += n;
            entry.0.1 += h;
            if !thread.is_empty() {
                entry.1.push((thread, n, h));
            }
        }
        Ok(out)
    }
}

/// The actions of the first of `rules` that applies to the event: what ruma's
/// `Ruleset::get_actions` answers for someone other than the sender, from an event flattened
/// once for all the members it is evaluated for.
async fn first_match<'a>(
    rules: &'a ruma::push::Ruleset,
    event: &FlattenedJson,
    ctx: &PushConditionRoomCtx,
) -> &'a [Action] {
    for rule in rules {
        if rule.applies(event, ctx).await {
            return rule.actions();
        }
    }
    &[]
}

/// ((notifications, highlights) overall, [(thread, notifications, highlights)]).
pub type UnreadCounts = ((i64, i64), Vec<(String, i64, i64)>);

#[cfg(test)]
mod tests {
    use ruma::{
        UInt, owned_room_id, owned_user_id,
        push::{FlattenedJson, PushConditionRoomCtx, Ruleset},
        serde::Raw,
    };
    use serde_json::json;

    /// Flattening the event once for all members decides as ruma's own evaluation does, for
    /// events that the default rules treat differently.
    #[tokio::test]
    async fn a_once_flattened_event_gets_the_actions_rumas_evaluation_gives() {
        let bob = owned_user_id!("@bob:h.test");
        let rules = Ruleset::server_default(&bob);
        let ctx = PushConditionRoomCtx::new(owned_room_id!("!r:h.test"), UInt::from(3u32), bob.clone(), "Bob".into());
        let events = [
            json!({"type": "m.room.message", "sender": "@a:h.test", "content": {"msgtype": "m.text", "body": "hello"}}),
            json!({"type": "m.room.message", "sender": "@a:h.test", "content": {"msgtype": "m.text", "body": "hi Bob!"}}),
            json!({"type": "m.room.message", "sender": "@a:h.test",
                   "content": {"msgtype": "m.text", "body": "x", "m.mentions": {"user_ids": ["@bob:h.test"]}}}),
            json!({"type": "m.room.message", "sender": "@a:h.test", "content": {"msgtype": "m.notice", "body": "bot"}}),
            json!({"type": "m.room.member", "sender": "@a:h.test", "state_key": "@bob:h.test",
                   "content": {"membership": "invite"}}),
            json!({"type": "m.room.encrypted", "sender": "@a:h.test", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}),
            json!({"type": "m.reaction", "sender": "@a:h.test", "content": {}}),
        ];
        let mut notified = 0;
        for event in events {
            let raw: Raw<ruma::events::AnySyncTimelineEvent> =
                Raw::from_json(serde_json::value::to_raw_value(&event).unwrap());
            let ours = super::first_match(&rules, &FlattenedJson::from_raw(&raw), &ctx).await;
            let theirs = rules.get_actions(&raw, &ctx).await;
            // (Actions compare as the JSON they are stored as: `Action` has no equality.)
            assert_eq!(serde_json::to_value(ours).unwrap(), serde_json::to_value(theirs).unwrap(), "{event}");
            notified += usize::from(!ours.is_empty());
        }
        // Not a comparison of two empty answers: most of these notify.
        assert!(notified >= 4, "{notified}");
    }
}
