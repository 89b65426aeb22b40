//! Events from another server, on a real SQLite database: forks resolved by the room version's
//! state resolution, rejection and soft failure (spec: server-server API, "Checks performed on
//! receipt of a PDU", "Soft failure"; room versions 2+, "State resolution").
//!
//! The other server is played here: its events are built and signed with its own key, exactly
//! as it would send them over federation.

use std::{collections::BTreeMap, sync::Arc};

use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedEventId, OwnedRoomId, RoomId,
    RoomVersionId, UInt, UserId,
    serde::Base64,
    signatures::{Ed25519KeyPair, PublicKeyMap},
    state_res,
};
use serde_json::{Value, json};

use super::{Received, Unsettled};
use crate::{
    config::{Config, SecretStoreChoice},
    matrix::pdu::{NewPdu, build_and_sign},
    secrets::Secrets,
    service::{
        account_data::AccountData,
        notifier::Notifier,
        pusher,
        rooms::{
            Rooms,
            create::{CreateRoom, Preset},
            rules_for, to_canonical_object,
        },
        signing::ServerKeys,
    },
    storage::{self, Db, state::StateMap},
};

const REMOTE: &str = "remote.test";

struct World {
    rooms: Rooms,
    remote: Ed25519KeyPair,
    keys: PublicKeyMap,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("hearth.db")).await.unwrap();
    let secrets = Secrets::open(SecretStoreChoice::File, dir.path()).unwrap();
    let server_name = ruma::ServerName::parse("hearth.test").unwrap();
    let config = Arc::new(Config { server_name: server_name.clone(), ..Config::default() });
    let keys = ServerKeys::load_or_create(&secrets, server_name).unwrap();
    let notifier = Arc::new(Notifier::default());
    let (push_tx, push_rx) = pusher::channel();
    std::mem::forget(push_rx);
    let account_data = Arc::new(AccountData::new(db.clone(), notifier.clone()).await.unwrap());
    let rooms = Rooms::new(db, config, keys, notifier, push_tx, account_data).await.unwrap();
    let der = Ed25519KeyPair::generate();
    let remote = Ed25519KeyPair::from_der(&der, "1".to_owned()).unwrap();
    let mut set = BTreeMap::new();
    set.insert("ed25519:1".to_owned(), Base64::new(remote.public_key().to_vec()));
    let mut keys = PublicKeyMap::new();
    keys.insert(REMOTE.to_owned(), set);
    World { rooms, remote, keys, _dir: dir }
}

fn user(s: &str) -> ruma::OwnedUserId {
    UserId::parse(s).unwrap()
}

const ALICE: &str = "@alice:hearth.test";
const BOB: &str = "@bob:remote.test";

impl World {
    async fn public_room(&self, version: &str) -> OwnedRoomId {
        self.rooms
            .create_room(CreateRoom {
                creator: user(ALICE),
                version: RoomVersionId::try_from(version).unwrap(),
                preset: Preset::PublicChat,
                publish: false,
                alias_localpart: None,
                name: None,
                topic: None,
                invite: vec![],
                is_direct: false,
                initial_state: vec![],
                creation_content: None,
                power_level_content_override: None,
                room_id: None,
            })
            .await
            .unwrap()
    }

    async fn local(&self, room: &RoomId, kind: &str, state_key: Option<&str>, content: Value) -> OwnedEventId {
        self.rooms.send(room, &user(ALICE), kind, state_key, content, None).await.unwrap()
    }

    async fn state_after(&self, event_id: &str) -> StateMap {
        let (_, group, _) =
            storage::events::graph_points(&self.rooms.db.read, &[event_id.to_owned()]).await.unwrap().pop().unwrap();
        (*self.rooms.state_of_group(group.unwrap()).await.unwrap()).clone()
    }

    /// An event by `sender` of the remote server, on top of `prev`, with its auth events chosen
    /// from the state after the first prev event.
    #[allow(clippy::too_many_arguments)] // a test helper that spells out each field of the event
    async fn remote_event(
        &self,
        room: &RoomId,
        sender: &str,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        prev: &[&OwnedEventId],
        ts: u64,
    ) -> CanonicalJsonObject {
        let state = self.state_after(prev[0].as_str()).await;
        self.remote_event_on(&state, room, sender, kind, state_key, content, prev, ts).await
    }

    /// As `remote_event`, with its auth events chosen from `state`.
    #[allow(clippy::too_many_arguments)]
    async fn remote_event_on(
        &self,
        state: &StateMap,
        room: &RoomId,
        sender: &str,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        prev: &[&OwnedEventId],
        ts: u64,
    ) -> CanonicalJsonObject {
        let version = self.rooms.room(room).await.unwrap().unwrap().room_version;
        let (version, rules) = rules_for(&version).unwrap();
        let raw = serde_json::value::to_raw_value(&content).unwrap();
        let sender = user(sender);
        let auth_keys =
            state_res::auth_types_for_event(&kind.into(), &sender, state_key, &raw, &rules.authorization).unwrap();
        let auth_ids: Vec<String> =
            auth_keys.iter().filter_map(|(t, k)| state.get(&(t.to_string(), k.clone())).cloned()).collect();
        let mut auth_events = Vec::new();
        for id in &auth_ids {
            let e = self.rooms.event(id).await.unwrap().unwrap();
            auth_events.push((ruma::EventId::parse(id).unwrap(), Some(e.json().clone())));
        }
        let mut prev_events = Vec::new();
        let mut depth = 0;
        for id in prev {
            let e = self.rooms.event(id.as_str()).await.unwrap().unwrap();
            let CanonicalJsonValue::Integer(d) = e.json()["depth"] else { panic!("depth") };
            depth = depth.max(i64::from(d) as u64);
            prev_events.push(((*id).clone(), Some(e.json().clone())));
        }
        let built = build_and_sign(
            NewPdu {
                room_version: &version,
                room_id: Some(room),
                sender: &sender,
                kind,
                state_key,
                content: to_canonical_object(content).unwrap(),
                prev_events,
                auth_events,
                depth: depth + 1,
                origin_server_ts: MilliSecondsSinceUnixEpoch(UInt::try_from(ts).unwrap()),
                redacts: None,
            },
            REMOTE,
            &self.remote,
        )
        .unwrap();
        built.json
    }

    async fn receive(&self, room: &RoomId, json: CanonicalJsonObject) -> (OwnedEventId, Received) {
        self.rooms.receive_pdu(room, json, &self.keys).await.unwrap()
    }

    async fn extremities(&self, room: &RoomId) -> Vec<String> {
        let mut ids: Vec<String> = storage::events::forward_extremities_with_depth(&self.rooms.db.read, room.as_str())
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        ids.sort();
        ids
    }

    async fn current(&self, room: &RoomId, kind: &str, key: &str) -> Option<String> {
        self.rooms.current_state_ids(room).await.unwrap().get(&(kind.to_owned(), key.to_owned())).cloned()
    }

    /// The IDs clients can see in the room's timeline.
    async fn timeline(&self, room: &RoomId) -> Vec<String> {
        storage::events::room_events_desc(&self.rooms.db.read, room.as_str(), 0, i64::MAX, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event_id)
            .collect()
    }

    /// Bob of the remote server joins the public room on its current line.
    async fn bob_joins(&self, room: &RoomId, ts: u64) -> OwnedEventId {
        let head = self.extremities(room).await.pop().unwrap();
        let head = ruma::EventId::parse(head).unwrap();
        let join =
            self.remote_event(room, BOB, "m.room.member", Some(BOB), json!({"membership": "join"}), &[&head], ts).await;
        let (id, outcome) = self.receive(room, join).await;
        assert_eq!(outcome, Received::Accepted);
        id
    }
}

fn now() -> u64 {
    crate::storage::now_ms() as u64
}

#[tokio::test]
async fn a_remote_join_and_message_on_the_current_line_become_part_of_the_room() {
    for version in ["10", "12"] {
        let w = world().await;
        let room = w.public_room(version).await;
        let join = w.bob_joins(&room, now()).await;
        assert_eq!(w.current(&room, "m.room.member", BOB).await.as_deref(), Some(join.as_str()));
        assert_eq!(w.rooms.membership(&room, &user(BOB)).await.unwrap().as_deref(), Some("join"));
        let msg = w
            .remote_event(
                &room,
                BOB,
                "m.room.message",
                None,
                json!({"msgtype": "m.text", "body": "hi"}),
                &[&join],
                now(),
            )
            .await;
        let (msg, outcome) = w.receive(&room, msg).await;
        assert_eq!(outcome, Received::Accepted, "room v{version}");
        assert_eq!(w.timeline(&room).await[0], msg.as_str());
        assert_eq!(w.extremities(&room).await, vec![msg.to_string()]);
        // Receiving it again changes nothing.
        let again = w
            .remote_event(&room, BOB, "m.room.message", None, json!({"msgtype": "m.text", "body": "hi"}), &[&join], 1)
            .await;
        let (_, outcome) = w.receive(&room, again).await;
        assert_eq!(outcome, Received::Accepted, "a different event (other timestamp)");
        // The next local event builds on both.
        let reply = w.local(&room, "m.room.message", None, json!({"msgtype": "m.text", "body": "hello bob"})).await;
        let prevs = w.rooms.event(reply.as_str()).await.unwrap().unwrap().json()["prev_events"].clone();
        let CanonicalJsonValue::Array(prevs) = prevs else { panic!() };
        assert_eq!(prevs.len(), 2, "the local event merges both forward extremities: {prevs:?}");
    }
}

#[tokio::test]
async fn a_transactions_events_on_the_current_line_are_written_together_and_each_builds_on_the_last() {
    let w = world().await;
    let room = w.public_room("12").await;
    let join = w.bob_joins(&room, now()).await;
    let mut state = w.state_after(join.as_str()).await;
    let mut unsettled = Unsettled::default();
    let mut prev = join.clone();
    let mut ids = Vec::new();
    for i in 0..6 {
        let (kind, key, content) = match i {
            // A state event in the middle: the events after it are checked against it.
            3 => ("m.room.member", Some(BOB), json!({"membership": "join", "displayname": "Bobby"})),
            _ => ("m.room.message", None, json!({"msgtype": "m.text", "body": format!("m{i}")})),
        };
        let event = w.remote_event_on(&state, &room, BOB, kind, key, content, &[&prev], now()).await;
        let (id, outcome) = w.rooms.receive_pdu_deferred(&room, event.clone(), &w.keys, &mut unsettled).await.unwrap();
        assert_eq!(outcome, Received::Accepted, "event {i}");
        // Sent twice in one transaction, it is stored once.
        let (_, again) = w.rooms.receive_pdu_deferred(&room, event, &w.keys, &mut unsettled).await.unwrap();
        assert_eq!(again, Received::Duplicate, "event {i} again");
        if key.is_some() {
            state.insert(("m.room.member".to_owned(), BOB.to_owned()), id.to_string());
        }
        prev = id.clone();
        ids.push(id);
    }
    // A local message sent meanwhile waits until the batch is written, then follows it.
    let replied = std::sync::atomic::AtomicBool::new(false);
    let (reply, ()) = tokio::join!(
        async {
            let id = w.local(&room, "m.room.message", None, json!({"msgtype": "m.text", "body": "hi Bobby"})).await;
            replied.store(true, std::sync::atomic::Ordering::SeqCst);
            id
        },
        async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert!(!replied.load(std::sync::atomic::Ordering::SeqCst), "sent before the batch was written");
            w.rooms.settle(&mut unsettled).await;
        }
    );
    assert!(unsettled.failed.is_empty(), "{:?}", unsettled.failed);

    let prevs = w.rooms.event(reply.as_str()).await.unwrap().unwrap().json()["prev_events"].clone();
    assert_eq!(prevs, CanonicalJsonValue::Array(vec![CanonicalJsonValue::String(prev.to_string())]));
    let mut expected: Vec<String> = ids.iter().rev().map(ToString::to_string).collect();
    expected.insert(0, reply.to_string());
    assert_eq!(w.timeline(&room).await[..7], expected[..], "newest first, each once");
    assert_eq!(w.extremities(&room).await, vec![reply.to_string()]);
    assert_eq!(w.current(&room, "m.room.member", BOB).await.as_deref(), Some(ids[3].as_str()));
    assert_eq!(
        w.state_after(ids[5].as_str()).await.get(&("m.room.member".into(), BOB.into())),
        Some(&ids[3].to_string())
    );
    // The member list on disk and the room's copy in memory (push notifications name senders
    // from it) both know Bob's new name.
    let on_disk = storage::rooms::joined_display_names(&w.rooms.db.read, room.as_str()).await.unwrap();
    assert!(on_disk.contains(&(BOB.to_owned(), Some("Bobby".to_owned()))), "{on_disk:?}");
    let hot = w.rooms.peek_hot(&room).unwrap();
    assert_eq!(hot.joined.get(BOB), Some(&Some("Bobby".to_owned())));
}

#[tokio::test]
async fn events_of_a_batch_abandoned_midway_are_still_written_before_what_follows_them() {
    let w = world().await;
    let room = w.public_room("12").await;
    let join = w.bob_joins(&room, now()).await;
    let state = w.state_after(join.as_str()).await;
    let mut unsettled = Unsettled::default();
    let mut prev = join.clone();
    for i in 0..3 {
        let content = json!({"msgtype": "m.text", "body": format!("m{i}")});
        let event = w.remote_event_on(&state, &room, BOB, "m.room.message", None, content, &[&prev], now()).await;
        prev = w.rooms.receive_pdu_deferred(&room, event, &w.keys, &mut unsettled).await.unwrap().0;
    }
    // The request receiving them was cancelled (its connection closed) before they were written.
    drop(unsettled);
    let reply = w.local(&room, "m.room.message", None, json!({"msgtype": "m.text", "body": "still there?"})).await;
    let timeline = w.timeline(&room).await;
    assert_eq!(timeline[..2], [reply.to_string(), prev.to_string()], "{timeline:?}");
}

#[tokio::test]
async fn a_message_sent_before_a_ban_arrived_after_it_is_soft_failed_and_never_shown() {
    let w = world().await;
    let room = w.public_room("12").await;
    let join = w.bob_joins(&room, now()).await;
    let ban = w.local(&room, "m.room.member", Some(BOB), json!({"membership": "ban"})).await;
    // Bob's server had not seen the ban: the message builds on his join.
    let msg = w
        .remote_event(
            &room,
            BOB,
            "m.room.message",
            None,
            json!({"msgtype": "m.text", "body": "sneaky"}),
            &[&join],
            now(),
        )
        .await;
    let (msg, outcome) = w.receive(&room, msg).await;
    assert!(matches!(outcome, Received::SoftFailed(_)), "{outcome:?}");
    assert!(!w.timeline(&room).await.contains(&msg.to_string()), "a soft-failed event is not in the timeline");
    assert_eq!(w.extremities(&room).await, vec![ban.to_string()], "nothing builds on a soft-failed event");
    assert_eq!(w.rooms.membership(&room, &user(BOB)).await.unwrap().as_deref(), Some("ban"));
    // It is stored, for the graph.
    let row = storage::events::get(&w.rooms.db.read, msg.as_str()).await.unwrap().unwrap();
    assert!(row.soft_failed && !row.rejected);
}

#[tokio::test]
async fn an_event_the_auth_rules_refuse_is_stored_rejected_and_never_changes_state() {
    let w = world().await;
    let room = w.public_room("12").await;
    let name = w.local(&room, "m.room.name", Some(""), json!({"name": "Family"})).await;
    let join = w.bob_joins(&room, now()).await;
    // Bob has power level 0; m.room.name needs 50.
    let rename =
        w.remote_event(&room, BOB, "m.room.name", Some(""), json!({"name": "Bob's now"}), &[&join], now()).await;
    let (rename, outcome) = w.receive(&room, rename).await;
    assert!(matches!(outcome, Received::Rejected(_)), "{outcome:?}");
    assert_eq!(w.current(&room, "m.room.name", "").await.as_deref(), Some(name.as_str()));
    let row = storage::events::get(&w.rooms.db.read, rename.as_str()).await.unwrap().unwrap();
    assert!(row.rejected);
    assert!(!w.timeline(&room).await.contains(&rename.to_string()));
    assert_eq!(w.extremities(&room).await, vec![join.to_string()]);
    // An event that names the rejected one as its prev event sees the state before it.
    let after = w.remote_event(&room, BOB, "m.room.topic", Some(""), json!({"topic": "x"}), &[&rename], now()).await;
    let (_, outcome) = w.receive(&room, after).await;
    assert!(matches!(outcome, Received::Rejected(_)), "bob cannot set the topic either: {outcome:?}");
    assert_eq!(w.current(&room, "m.room.name", "").await.as_deref(), Some(name.as_str()));
}

/// Alice and Bob change the topic at the same time on two branches. Both changes are allowed
/// (Bob has power 50); the topic is not a power event, so v2 resolution orders the two by their
/// power levels event (the same for both), then by origin_server_ts: the later one wins,
/// whichever arrived last.
#[tokio::test]
async fn concurrent_topic_changes_resolve_to_the_later_one_whichever_arrives_last() {
    for version in ["10", "12"] {
        for bob_later in [true, false] {
            let w = world().await;
            let room = w.public_room(version).await;
            let join = w.bob_joins(&room, now()).await;
            let mut pl = w.rooms.state_content(&room, "m.room.power_levels").await.unwrap();
            pl["users"][BOB] = json!(50);
            let fork = w.local(&room, "m.room.power_levels", Some(""), pl).await;
            let _ = join;
            let alice_topic = w.local(&room, "m.room.topic", Some(""), json!({"topic": "alice's"})).await;
            let alice_ts = {
                let e = w.rooms.event(alice_topic.as_str()).await.unwrap().unwrap();
                let CanonicalJsonValue::Integer(ts) = e.json()["origin_server_ts"] else { panic!() };
                i64::from(ts) as u64
            };
            let bob_ts = if bob_later { alice_ts + 60_000 } else { alice_ts - 60_000 };
            let topic =
                w.remote_event(&room, BOB, "m.room.topic", Some(""), json!({"topic": "bob's"}), &[&fork], bob_ts).await;
            let (bob_topic, outcome) = w.receive(&room, topic).await;
            assert_eq!(outcome, Received::Accepted, "v{version}");
            let mut expected = vec![alice_topic.to_string(), bob_topic.to_string()];
            expected.sort();
            assert_eq!(w.extremities(&room).await, expected, "the room has forked");
            let winner = if bob_later { &bob_topic } else { &alice_topic };
            assert_eq!(
                w.current(&room, "m.room.topic", "").await.as_deref(),
                Some(winner.as_str()),
                "v{version}, bob later: {bob_later}"
            );
            // The next local event merges the branches and keeps the resolved state.
            let merge = w.local(&room, "m.room.message", None, json!({"msgtype": "m.text", "body": "ok"})).await;
            assert_eq!(w.extremities(&room).await, vec![merge.to_string()]);
            assert_eq!(w.current(&room, "m.room.topic", "").await.as_deref(), Some(winner.as_str()));
            assert_eq!(
                w.state_after(merge.as_str()).await.get(&("m.room.topic".to_owned(), String::new())),
                Some(&winner.to_string())
            );
            // A restart reads the same room back.
            w.rooms.shared.hot.lock().clear();
            let again = w.local(&room, "m.room.message", None, json!({"msgtype": "m.text", "body": "still ok"})).await;
            assert_eq!(
                w.state_after(again.as_str()).await.get(&("m.room.topic".to_owned(), String::new())),
                Some(&winner.to_string())
            );
        }
    }
}

/// Alice demotes Bob while Bob, not having seen it, bans Carol on his branch. At its place in
/// the graph the ban is allowed (it is not rejected and stays in the graph) but the room's
/// current power levels no longer let Bob ban: soft-failed, and Carol stays joined.
/// The spec's order for room version 1's tie-break: the lower SHA-1 of the event ID first.
fn sha1_order(a: &str, b: &str) -> std::cmp::Ordering {
    use sha1::{Digest, Sha1};
    Sha1::digest(a.as_bytes()).cmp(&Sha1::digest(b.as_bytes()))
}

#[tokio::test]
async fn in_a_version_1_room_concurrent_topics_at_one_depth_resolve_to_the_lower_hash() {
    let w = world().await;
    let room = w.public_room("1").await;
    w.bob_joins(&room, now()).await;
    let mut pl = w.rooms.state_content(&room, "m.room.power_levels").await.unwrap();
    pl["users"][BOB] = json!(50);
    let fork = w.local(&room, "m.room.power_levels", Some(""), pl).await;
    let alice_topic = w.local(&room, "m.room.topic", Some(""), json!({"topic": "alice's"})).await;
    let bob = w.remote_event(&room, BOB, "m.room.topic", Some(""), json!({"topic": "bob's"}), &[&fork], now()).await;
    let (bob_topic, outcome) = w.receive(&room, bob).await;
    assert_eq!(outcome, Received::Accepted);
    let mut expected = vec![alice_topic.to_string(), bob_topic.to_string()];
    expected.sort();
    assert_eq!(w.extremities(&room).await, expected, "the room has forked");
    // Same depth: the lower SHA-1 of the ID wins, as on every server of a v1 room.
    let winner = match sha1_order(alice_topic.as_str(), bob_topic.as_str()) {
        std::cmp::Ordering::Less => &alice_topic,
        _ => &bob_topic,
    };
    assert_eq!(w.current(&room, "m.room.topic", "").await.as_deref(), Some(winner.as_str()));
    let merge = w.local(&room, "m.room.message", None, json!({"msgtype": "m.text", "body": "ok"})).await;
    assert_eq!(w.extremities(&room).await, vec![merge.to_string()]);
    assert_eq!(
        w.state_after(merge.as_str()).await.get(&("m.room.topic".to_owned(), String::new())),
        Some(&winner.to_string())
    );
}

#[tokio::test]
async fn in_a_version_1_room_a_topic_by_a_user_demoted_on_the_other_branch_loses_even_when_deeper() {
    let w = world().await;
    let room = w.public_room("1").await;
    w.bob_joins(&room, now()).await;
    let mut pl = w.rooms.state_content(&room, "m.room.power_levels").await.unwrap();
    pl["users"][BOB] = json!(50);
    let promoted = w.local(&room, "m.room.power_levels", Some(""), pl.clone()).await;
    // Alice's branch: Bob demoted, then her topic.
    pl["users"].as_object_mut().unwrap().remove(BOB);
    let demoted = w.local(&room, "m.room.power_levels", Some(""), pl).await;
    let alice_topic = w.local(&room, "m.room.topic", Some(""), json!({"topic": "alice's"})).await;
    // Bob's branch, from before the demotion: two messages, then his topic, deeper than hers.
    let mut prev = promoted.clone();
    for body in ["one", "two"] {
        let m = w
            .remote_event(
                &room,
                BOB,
                "m.room.message",
                None,
                json!({"msgtype": "m.text", "body": body}),
                &[&prev],
                now(),
            )
            .await;
        let (id, _) = w.receive(&room, m).await;
        prev = id;
    }
    let topic = w.remote_event(&room, BOB, "m.room.topic", Some(""), json!({"topic": "bob's"}), &[&prev], now()).await;
    let (bob_topic, outcome) = w.receive(&room, topic).await;
    // Against the room's current state Bob may no longer set the topic.
    assert!(matches!(outcome, Received::SoftFailed(_)), "{outcome:?}");
    assert_eq!(w.current(&room, "m.room.topic", "").await.as_deref(), Some(alice_topic.as_str()));
    // Resolving the two branches' states (as /state at a merge would): the demotion wins the
    // power levels (it follows the promotion and Alice may make it), and Bob's deeper topic
    // fails the auth rules under it, so Alice's stays.
    let room_row = w.rooms.room(&room).await.unwrap().unwrap();
    let (_, rules) = rules_for(&room_row.room_version).unwrap();
    let states =
        vec![Arc::new(w.state_after(alice_topic.as_str()).await), Arc::new(w.state_after(bob_topic.as_str()).await)];
    let resolved = w.rooms.resolve(&rules, &room, &states, None).await.unwrap();
    assert_eq!(resolved.get(&("m.room.power_levels".to_owned(), String::new())), Some(&demoted.to_string()));
    assert_eq!(resolved.get(&("m.room.topic".to_owned(), String::new())), Some(&alice_topic.to_string()));
}

#[tokio::test]
async fn a_ban_by_a_user_demoted_on_the_other_branch_is_soft_failed() {
    for version in ["10", "12"] {
        let w = world().await;
        let room = w.public_room(version).await;
        let carol = "@carol:hearth.test";
        w.bob_joins(&room, now()).await;
        let carol_join = w
            .rooms
            .send(&room, &user(carol), "m.room.member", Some(carol), json!({"membership": "join"}), None)
            .await
            .unwrap();
        let mut pl = w.rooms.state_content(&room, "m.room.power_levels").await.unwrap();
        pl["users"][BOB] = json!(50);
        let promoted = w.local(&room, "m.room.power_levels", Some(""), pl.clone()).await;
        pl["users"].as_object_mut().unwrap().remove(BOB);
        let _demoted = w.local(&room, "m.room.power_levels", Some(""), pl).await;
        let ban = w
            .remote_event(&room, BOB, "m.room.member", Some(carol), json!({"membership": "ban"}), &[&promoted], now())
            .await;
        let (_, outcome) = w.receive(&room, ban).await;
        // Against the current state (Bob demoted) the ban fails: soft-failed, Carol stays.
        assert!(matches!(outcome, Received::SoftFailed(_)), "v{version}: {outcome:?}");
        assert_eq!(w.current(&room, "m.room.member", carol).await.as_deref(), Some(carol_join.as_str()));
        assert_eq!(w.rooms.membership(&room, &user(carol)).await.unwrap().as_deref(), Some("join"));
    }
}

#[tokio::test]
async fn a_tampered_event_is_kept_redacted_and_a_forged_one_is_dropped() {
    let w = world().await;
    let room = w.public_room("12").await;
    let join = w.bob_joins(&room, now()).await;
    // Content changed after signing: the signature (over the redacted form) holds, the content
    // hash does not, so the event is processed in its redacted form.
    let mut msg = w
        .remote_event(
            &room,
            BOB,
            "m.room.message",
            None,
            json!({"msgtype": "m.text", "body": "original"}),
            &[&join],
            now(),
        )
        .await;
    let Some(CanonicalJsonValue::Object(content)) = msg.get_mut("content") else { panic!() };
    content.insert("body".into(), "changed in transit".into());
    let (id, outcome) = w.receive(&room, msg).await;
    assert_eq!(outcome, Received::Accepted);
    let stored = w.rooms.event(id.as_str()).await.unwrap().unwrap();
    assert_eq!(serde_json::Value::from(stored.json()["content"].clone()), json!({}), "stored redacted");

    // Signed with a key that is not the server's: dropped, nothing stored.
    let forger = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "1".to_owned()).unwrap();
    let honest = w
        .remote_event(
            &room,
            BOB,
            "m.room.message",
            None,
            json!({"msgtype": "m.text", "body": "forged"}),
            &[&join],
            now(),
        )
        .await;
    let mut forged = honest.clone();
    forged.remove("signatures");
    forged.remove("hashes");
    ruma::signatures::hash_and_sign_event(REMOTE, &forger, &mut forged, &rules_for("12").unwrap().1.redaction).unwrap();
    let err = w.rooms.receive_pdu(&room, forged, &w.keys).await.unwrap_err();
    assert_eq!(err.errcode(), "M_FORBIDDEN", "{err}");
    let _ = honest;
    let before = w.timeline(&room).await;

    // An event whose prev event is unknown here is refused (federation fetches it first).
    let join_json = w.rooms.event(join.as_str()).await.unwrap().unwrap().json().clone();
    let CanonicalJsonValue::Array(auth) = join_json["auth_events"].clone() else { panic!() };
    let mut auth_events = Vec::new();
    for id in auth {
        let CanonicalJsonValue::String(id) = id else { panic!() };
        auth_events.push((
            ruma::EventId::parse(&id).unwrap(),
            Some(w.rooms.event(&id).await.unwrap().unwrap().json().clone()),
        ));
    }
    auth_events.push((join.clone(), Some(join_json)));
    let orphan = build_and_sign(
        NewPdu {
            room_version: &RoomVersionId::V12,
            room_id: Some(&room),
            sender: &user(BOB),
            kind: "m.room.message",
            state_key: None,
            content: to_canonical_object(json!({"msgtype": "m.text", "body": "orphan"})).unwrap(),
            prev_events: vec![(ruma::EventId::parse("$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").unwrap(), None)],
            auth_events,
            depth: 10,
            origin_server_ts: MilliSecondsSinceUnixEpoch::now(),
            redacts: None,
        },
        REMOTE,
        &w.remote,
    )
    .unwrap();
    let err = w.rooms.receive_pdu(&room, orphan.json, &w.keys).await.unwrap_err();
    assert!(err.to_string().contains("does not have"), "{err}");
    assert_eq!(w.timeline(&room).await, before, "nothing stored");
}

#[tokio::test]
async fn an_event_without_prev_events_is_refused_not_a_panic() {
    let w = world().await;
    let room = w.public_room("12").await;
    let join = w.bob_joins(&room, now()).await;
    let mut orphan = w
        .remote_event(&room, BOB, "m.room.message", None, json!({"msgtype": "m.text", "body": "x"}), &[&join], now())
        .await;
    orphan.insert("prev_events".into(), CanonicalJsonValue::Array(Vec::new()));
    orphan.remove("signatures");
    orphan.remove("hashes");
    ruma::signatures::hash_and_sign_event(REMOTE, &w.remote, &mut orphan, &rules_for("12").unwrap().1.redaction)
        .unwrap();
    let before = w.timeline(&room).await;
    let err = w.rooms.receive_pdu(&room, orphan, &w.keys).await.unwrap_err();
    assert_eq!(err.errcode(), "M_BAD_JSON", "{err}");
    assert_eq!(w.timeline(&room).await, before, "nothing stored");
}
