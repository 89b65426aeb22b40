//! Evaluating push rules for a new event (spec: "Push Rules"): for every local member but the
//! sender, ruma evaluates the user's ruleset with the room's context (member count, display
//! name, power levels for sender notification permission); events that notify are recorded, and
//! /sync's unread counts and /notifications are read from those records.

use std::collections::HashMap;

use ruma::{
    OwnedUserId, UInt, UserId,
    push::{Action, PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset},
    serde::Raw,
};
use serde_json::Value;

use super::Rooms;
use crate::{
    error::{Error, Result},
    storage::{self, now_ms},
};

impl Rooms {
    /// Records which local members the event notifies. Called after the event is stored.
    pub(super) async fn evaluate_push(&self, room_id: &ruma::RoomId, event_id: &str, stream: i64, client_event: &Value) -> Result<()> {
        let sender = client_event["sender"].as_str().unwrap_or_default();
        let joined = storage::rooms::joined_display_names(&self.db.read, room_id.as_str()).await?;
        let local: Vec<String> = joined
            .iter()
            .map(|(u, _)| u.clone())
            .filter(|u| u != sender && UserId::parse(u).is_ok_and(|id| id.server_name() == self.config.server_name))
            .collect();
        if local.is_empty() {
            return Ok(());
        }
        let stored: HashMap<String, String> = storage::push_actions::rulesets(&self.db.read, &local).await?.into_iter().collect();
        let names: HashMap<String, String> = joined.iter().filter_map(|(u, n)| Some((u.clone(), n.clone()?))).collect();
        let power = self.power_levels(room_id).await?;
        let power_ctx = PushConditionPowerLevelsCtx::new(power.users.clone(), power.users_default, power.notifications.clone(), power.rules.clone());
        let raw: Raw<ruma::events::AnySyncTimelineEvent> =
            Raw::from_json(serde_json::value::to_raw_value(client_event).map_err(Error::internal)?);
        let member_count = UInt::try_from(joined.len() as u64).unwrap_or_default();
        let thread_id = match client_event["content"]["m.relates_to"]["rel_type"].as_str() {
            Some("m.thread") => client_event["content"]["m.relates_to"]["event_id"].as_str().unwrap_or("").to_owned(),
            _ => String::new(),
        };

        let mut notify: Vec<(String, bool, String)> = Vec::new();
        let mut jobs: Vec<(String, Vec<ruma::push::Action>)> = Vec::new();
        for user in &local {
            let Ok(user_id) = UserId::parse(user) else { continue };
            let rules: Ruleset = match stored.get(user) {
                Some(text) => serde_json::from_str::<Value>(text)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["global"].clone()).ok())
                    .unwrap_or_else(|| Ruleset::server_default(&user_id)),
                None => Ruleset::server_default(&user_id),
            };
            let display = names.get(user).cloned().unwrap_or_else(|| user_id.localpart().to_owned());
            let ctx = PushConditionRoomCtx::new(room_id.to_owned(), member_count, OwnedUserId::from(user_id.clone()), display)
                .with_power_levels(power_ctx.clone());
            let actions = rules.get_actions(&raw, &ctx).await;
            if actions.iter().any(|a| matches!(a, Action::Notify)) {
                let highlight = actions.iter().any(Action::is_highlight);
                notify.push((user.clone(), highlight, serde_json::to_string(actions).map_err(Error::internal)?));
                jobs.push((user.clone(), actions.to_vec()));
            }
        }
        if notify.is_empty() {
            return Ok(());
        }
        let ts = now_ms();
        let mut tx = self.db.write.begin().await?;
        for (user, highlight, actions) in &notify {
            storage::push_actions::insert(&mut tx, event_id, user, room_id.as_str(), stream, &thread_id, *highlight, actions, ts).await?;
        }
        tx.commit().await?;

        // Queue the push gateway deliveries, with the counts the phone will show, for the users
        // who have pushers at all.
        let with_pushers = storage::pushers::users_with_pushers(&self.db.read, &jobs.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>()).await?;
        let jobs: Vec<_> = jobs.into_iter().filter(|(u, _)| with_pushers.contains(u)).collect();
        if jobs.is_empty() {
            return Ok(());
        }
        let room_name = self.state_content(room_id, "m.room.name").await?["name"].as_str().map(str::to_owned);
        let mut event = client_event.clone();
        event["event_id"] = serde_json::json!(event_id);
        for (user, actions) in jobs {
            let Ok(user_id) = UserId::parse(&user) else { continue };
            let ((unread, _), _) = self.unread_counts(&user_id, room_id.as_str()).await?;
            let _ = self.push_jobs.send(super::super::pusher::PushJob {
                user_id: user,
                room_id: room_id.to_string(),
                event: event.clone(),
                actions,
                unread,
                room_name: room_name.clone(),
                sender_display_name: names.get(sender).cloned(),
            });
        }
        Ok(())
    }

    /// (notification_count, highlight_count) overall and per thread, since the user's read
    /// position in the room.
    pub async fn unread_counts(&self, user: &UserId, room_id: &str) -> Result<((i64, i64), Vec<(String, i64, i64)>)> {
        let pos = storage::push_actions::read_position(&self.db.read, user.as_str(), room_id).await?;
        let rows = storage::push_actions::counts(&self.db.read, user.as_str(), room_id, pos).await?;
        let total = rows.iter().fold((0, 0), |(n, h), (_, rn, rh)| (n + rn, h + rh));
        let threads = rows.into_iter().filter(|(t, _, _)| !t.is_empty()).collect();
        Ok((total, threads))
    }
}
