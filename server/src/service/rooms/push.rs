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
    /// What is stored: the room's row and the members' own rows.
    pub rows: storage::append::PushRows,
    /// The notified users' actions, for the push gateway.
    pub actions: HashMap<String, Vec<Action>>,
}

impl Rooms {
    /// Which local members the event notifies, from the room's hot copy (joined members,
    /// power levels) and the users' cached rulesets: no database round trip when warm.
    /// `changing` are the users whose membership the event changes: the room's row is not for
    /// them (they are at the edge of their span), so they get a row of their own.
    pub(super) async fn evaluate_push(&self, hot: &RoomHot, client_event: &Value, changing: &[&str]) -> Result<Pushed> {
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
        let thread = match client_event["content"]["m.relates_to"]["rel_type"].as_str() {
            Some("m.thread") => client_event["content"]["m.relates_to"]["event_id"].as_str().unwrap_or("").to_owned(),
            _ => String::new(),
        };

        let mut actions = HashMap::new();
        let mut outcomes = Vec::with_capacity(local.len());
        for user in local {
            let Ok(user_id) = UserId::parse(&user) else { continue };
            let rules = rulesets.get(&user).filter(|_| !ignored.get(&user).is_some_and(|set| set.contains(sender)));
            let mut outcome = None;
            if let Some(rules) = rules {
                let display =
                    hot.joined.get(&user).cloned().flatten().unwrap_or_else(|| user_id.localpart().to_owned());
                let ctx = PushConditionRoomCtx::new(room_id.clone(), member_count, user_id.clone(), display)
                    .with_power_levels(power_ctx.clone());
                let found = first_match(rules, &flat, &ctx).await;
                if found.iter().any(|a| matches!(a, Action::Notify)) {
                    let highlight = found.iter().any(Action::is_highlight);
                    outcome = Some((highlight, serde_json::to_string(found).map_err(Error::internal)?));
                    actions.insert(user.clone(), found.to_vec());
                }
            }
            let edge = changing.contains(&user.as_str());
            outcomes.push(Outcome { user, notified: outcome, edge });
        }
        let mut rows = rows_for(outcomes);
        rows.thread = thread;
        Ok(Pushed { rows, actions })
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

/// One local member's outcome for an event: `notified` with (highlight, actions as JSON), or
/// not; `edge` when the event changes their membership.
struct Outcome {
    user: String,
    notified: Option<(bool, String)>,
    edge: bool,
}

/// The rows to store for the outcomes: one for the room when that makes fewer rows (most
/// members notified the same way), plus a row of their own for each member it does not speak
/// for; else a row for each notified member.
fn rows_for(outcomes: Vec<Outcome>) -> storage::append::PushRows {
    use storage::append::PushRow;
    let notified: Vec<String> = outcomes.iter().filter(|o| o.notified.is_some()).map(|o| o.user.clone()).collect();
    // The most common outcome among the members the room's row is for.
    let mut tally: HashMap<&(bool, String), usize> = HashMap::new();
    for o in outcomes.iter().filter(|o| !o.edge) {
        if let Some(n) = &o.notified {
            *tally.entry(n).or_default() += 1;
        }
    }
    let covered = outcomes.iter().filter(|o| !o.edge).count();
    // Ties go to the smaller outcome, so that the choice does not depend on the map's order.
    let common = tally.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0))).map(|(n, c)| (n.clone(), c));
    let room = common.filter(|(_, c)| 1 + covered - c < notified.len()).map(|(n, _)| n);
    let members = outcomes
        .into_iter()
        .filter_map(|o| match (&room, o.notified) {
            (None, None) => None,
            (None, notified) => Some(PushRow { user_id: o.user, notified }),
            (Some(r), Some(n)) if !o.edge && *r == n => None,
            (Some(_), notified) => Some(PushRow { user_id: o.user, notified }),
        })
        .collect();
    storage::append::PushRows { thread: String::new(), room, members, notified }
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

    fn outcome(user: &str, notified: Option<(bool, &str)>, edge: bool) -> super::Outcome {
        super::Outcome { user: user.into(), notified: notified.map(|(h, a)| (h, a.to_owned())), edge }
    }

    /// Most members notified alike: one row for the room, and rows of their own for the others
    /// (not notified, highlighted, or at the edge of their membership). Too few alike: a row
    /// per notified member, as before.
    #[test]
    fn rows_are_stored_once_for_the_room_when_that_makes_fewer() {
        const PLAIN: &str = r#"["notify"]"#;
        const LOUD: &str = r#"["notify",{"set_tweak":"highlight"}]"#;
        let rows = super::rows_for(vec![
            outcome("@a:h", Some((false, PLAIN)), false),
            outcome("@b:h", Some((false, PLAIN)), false),
            outcome("@c:h", Some((false, PLAIN)), false),
            outcome("@d:h", Some((true, LOUD)), false),
            outcome("@e:h", None, false),
            outcome("@f:h", Some((false, PLAIN)), true),
        ]);
        assert_eq!(rows.room, Some((false, PLAIN.to_owned())));
        let own: Vec<(&str, Option<bool>)> =
            rows.members.iter().map(|m| (m.user_id.as_str(), m.notified.as_ref().map(|n| n.0))).collect();
        assert_eq!(own, [("@d:h", Some(true)), ("@e:h", None), ("@f:h", Some(false))]);
        assert_eq!(rows.notified, ["@a:h", "@b:h", "@c:h", "@d:h", "@f:h"]);

        // Two of four alike: the room's row and two of their own would be three rows, against
        // two.
        let rows = super::rows_for(vec![
            outcome("@a:h", Some((false, PLAIN)), false),
            outcome("@b:h", Some((false, PLAIN)), false),
            outcome("@c:h", None, false),
            outcome("@d:h", None, false),
        ]);
        assert_eq!(rows.room, None);
        assert_eq!(rows.members.len(), 2);
        assert!(rows.members.iter().all(|m| m.notified.is_some()));
        // A room of two: the one other member's own row.
        let rows = super::rows_for(vec![outcome("@a:h", Some((false, PLAIN)), false)]);
        assert_eq!((rows.room, rows.members.len()), (None, 1));
        // No one notified: nothing.
        let rows = super::rows_for(vec![outcome("@a:h", None, false), outcome("@b:h", None, false)]);
        assert!(rows.room.is_none() && rows.members.is_empty() && rows.notified.is_empty());
    }

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
