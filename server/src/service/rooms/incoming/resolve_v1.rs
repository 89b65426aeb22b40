//! State resolution of room version 1 (spec: rooms/v1, "State resolution"), which ruma does not
//! implement: conflicts between power levels, then join rules, then memberships are settled by
//! replaying each conflict's events in order of depth against the auth rules, and every other
//! conflict goes to the deepest event that the resolved state authorises. Room version 1 is known
//! to reset state at times; these are its rules, as every server in such a room applies them.

use std::collections::{BTreeMap, HashMap};

use ruma::{events::StateEventType, room_version_rules::AuthorizationRules, state_res};
use sha1::{Digest, Sha1};

use crate::{matrix::pdu::Pdu, storage::state::StateMap};

/// A state key: (event type, state key).
type Key = (String, String);

/// The unconflicted part of `states` (keys whose every state that has them agrees, including
/// keys only some states have) and, per conflicted key, the distinct event IDs, sorted.
pub(super) fn separate(states: &[&StateMap]) -> (StateMap, BTreeMap<Key, Vec<String>>) {
    let mut all: BTreeMap<&Key, Vec<&String>> = BTreeMap::new();
    for state in states {
        for (key, id) in state.iter() {
            let ids = all.entry(key).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let mut unconflicted = StateMap::default();
    let mut conflicted = BTreeMap::new();
    for (key, ids) in all {
        if let [only] = ids.as_slice() {
            unconflicted.insert(key.clone(), (*only).clone());
        } else {
            let mut ids: Vec<String> = ids.into_iter().cloned().collect();
            ids.sort();
            conflicted.insert(key.clone(), ids);
        }
    }
    (unconflicted, conflicted)
}

/// The state keys whose events authorise `event` (its auth events), the create event included.
pub(super) fn auth_keys(rules: &AuthorizationRules, event: &Pdu) -> Vec<Key> {
    let mut keys: Vec<Key> =
        state_res::auth_types_for_event(&event.kind, &event.sender, event.state_key.as_deref(), &event.content, rules)
            .map(|keys| keys.into_iter().map(|(t, k)| (t.to_string(), k)).collect())
            .unwrap_or_default();
    keys.push(("m.room.create".to_owned(), String::new()));
    keys
}

/// Resolves `states`. `events` holds every conflicted event and the events of the unconflicted
/// state at the auth keys of the conflicted ones (what `separate` and `auth_keys` name); an
/// event missing from it takes no part.
pub(super) fn resolve(rules: &AuthorizationRules, states: &[&StateMap], events: &HashMap<String, Pdu>) -> StateMap {
    let (mut resolved, conflicted) = separate(states);
    // The state the conflicted events are checked against starts as the unconflicted state at
    // their auth keys.
    let mut auth: HashMap<Key, String> = HashMap::new();
    for id in conflicted.values().flatten() {
        let Some(event) = events.get(id) else { continue };
        for key in auth_keys(rules, event) {
            if let Some(id) = resolved.get(&key) {
                auth.insert(key, id.clone());
            }
        }
    }
    let conflicting = |ids: &[String]| -> Vec<&Pdu> { ids.iter().filter_map(|id| events.get(id)).collect() };
    let mut winners: BTreeMap<Key, String> = BTreeMap::new();
    // Power levels, then join rules, then memberships: each class replayed against the state
    // resolved so far.
    for class in ["m.room.power_levels", "m.room.join_rules", "m.room.member"] {
        for (key, ids) in conflicted.iter().filter(|(key, _)| key.0 == class) {
            if let Some(winner) = replay(rules, conflicting(ids), &auth, events) {
                winners.insert(key.clone(), winner);
            }
        }
        auth.extend(winners.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut others: BTreeMap<Key, String> = BTreeMap::new();
    for (key, ids) in conflicted.iter().filter(|(key, _)| !winners.contains_key(*key)) {
        if let Some(winner) = deepest_allowed(rules, conflicting(ids), &auth, events) {
            others.insert(key.clone(), winner);
        }
    }
    resolved.extend(winners);
    resolved.extend(others);
    resolved
}

/// Orders events by ascending depth, then descending SHA-1 of their IDs (the spec's order for
/// the auth events).
fn by_depth_then_hash(events: &mut [&Pdu]) {
    events.sort_by_cached_key(|e| (e.depth, std::cmp::Reverse(Sha1::digest(e.event_id.as_bytes()))));
}

/// The first of `events` (in the spec's order) goes into the state; each next one that the
/// auth rules allow in that state replaces it; the first refused ends the replay.
fn replay(
    rules: &AuthorizationRules,
    mut list: Vec<&Pdu>,
    auth: &HashMap<Key, String>,
    events: &HashMap<String, Pdu>,
) -> Option<String> {
    by_depth_then_hash(&mut list);
    let (first, rest) = list.split_first()?;
    let mut state = auth.clone();
    let mut winner = *first;
    for event in rest {
        state.insert(key_of(winner), winner.event_id.to_string());
        if !allowed(rules, event, &state, events) {
            break;
        }
        winner = event;
    }
    Some(winner.event_id.to_string())
}

/// The deepest of `events` (the lowest SHA-1 of its ID among equals) that the auth rules allow
/// in `auth`; the shallowest when none is.
fn deepest_allowed(
    rules: &AuthorizationRules,
    mut list: Vec<&Pdu>,
    auth: &HashMap<Key, String>,
    events: &HashMap<String, Pdu>,
) -> Option<String> {
    by_depth_then_hash(&mut list);
    list.reverse();
    let found = list.iter().find(|e| allowed(rules, e, auth, events)).or(list.last())?;
    Some(found.event_id.to_string())
}

fn key_of(event: &Pdu) -> Key {
    (event.kind.to_string(), event.state_key.clone().unwrap_or_default())
}

/// Whether the auth rules allow `event` with `state` as the room's state.
fn allowed(
    rules: &AuthorizationRules,
    event: &Pdu,
    state: &HashMap<Key, String>,
    events: &HashMap<String, Pdu>,
) -> bool {
    state_res::check_state_dependent_auth_rules(rules, event, |t: &StateEventType, k: &str| {
        state.get(&(t.to_string(), k.to_owned())).and_then(|id| events.get(id)).cloned()
    })
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &str, &str)]) -> StateMap {
        entries.iter().map(|(t, k, id)| (((*t).to_owned(), (*k).to_owned()), (*id).to_owned())).collect()
    }

    #[test]
    fn a_key_only_some_states_have_is_not_a_conflict_and_differing_ids_are() {
        let a = map(&[("m.room.create", "", "$c"), ("m.room.topic", "", "$t1"), ("m.room.name", "", "$n")]);
        let b = map(&[("m.room.create", "", "$c"), ("m.room.topic", "", "$t2")]);
        let (unconflicted, conflicted) = separate(&[&a, &b]);
        assert_eq!(unconflicted, map(&[("m.room.create", "", "$c"), ("m.room.name", "", "$n")]));
        let topic = ("m.room.topic".to_owned(), String::new());
        assert_eq!(conflicted.get(&topic), Some(&vec!["$t1".to_owned(), "$t2".to_owned()]));
        assert_eq!(conflicted.len(), 1);
    }
}
