//! A call membership kept the way Element Call keeps it (in Element X, through matrix-sdk's
//! widget driver and these very request types): "I joined" is sent, "I left" is scheduled as a
//! delayed event (MSC4140) and restarted as a heartbeat. While the heartbeat goes on the person
//! stays in the call; when their phone dies the server ends the membership by itself.

use std::time::{Duration, Instant};

use hearth_blackbox::{SERVER_NAME, family, room_with_bob, signed_in};
use matrix_sdk::ruma::{
    OwnedRoomId,
    api::{
        FeatureFlag,
        client::{
            delayed_events::{DelayParameters, delayed_state_event, update_delayed_event::unstable as update},
            state::{get_state_event_for_key, send_state_event},
        },
    },
    events::StateEventType,
    serde::Raw,
};
use serde_json::{Value, json};

const CALL_MEMBER: &str = "org.matrix.msc3401.call.member";

/// The call membership state Bob reads for `state_key`.
async fn membership_seen_by(bob: &matrix_sdk::Client, room: &OwnedRoomId, state_key: &str) -> Value {
    let req =
        get_state_event_for_key::v3::Request::new(room.clone(), StateEventType::from(CALL_MEMBER), state_key.into());
    let resp = bob.send(req).await.expect("bob reads the call state");
    serde_json::from_str(resp.event_or_content.get()).unwrap()
}

#[tokio::test]
async fn a_call_membership_ends_by_itself_when_the_heartbeat_stops() {
    let server = family().await;
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    let room = room_with_bob(&alice, &bob, false).await;
    // Element Call looks for the feature before relying on it.
    let features = alice.unstable_features().await.unwrap();
    assert!(features.contains(&FeatureFlag::from("org.matrix.msc4140")), "{features:?}");

    let device = alice.device_id().unwrap().to_string();
    let state_key = format!("_@alice:{SERVER_NAME}_{device}");
    let joined = json!({
        "application": "m.call", "call_id": "", "scope": "m.room", "device_id": device,
        "focus_active": {"type": "livekit", "focus_selection": "oldest_membership"},
        "foci_preferred": [{"type": "livekit", "livekit_service_url": "https://livekit.invalid"}],
    });
    let send = send_state_event::v3::Request::new_raw(
        room.clone(),
        StateEventType::from(CALL_MEMBER),
        state_key.clone(),
        Raw::from_json(serde_json::value::to_raw_value(&joined).unwrap()),
    );
    alice.send(send).await.expect("alice joins the call");

    // "I left", unless the heartbeat keeps putting it off.
    let leave = delayed_state_event::unstable::Request::new_raw(
        room.clone(),
        state_key.clone(),
        StateEventType::from(CALL_MEMBER),
        DelayParameters::Timeout { timeout: Duration::from_millis(1500) },
        Raw::from_json(serde_json::value::to_raw_value(&json!({})).unwrap()),
    );
    let delay_id = alice.send(leave).await.expect("the leave is scheduled").delay_id;

    // Heartbeats for twice the delay: Alice stays in the call all along.
    let beating = Instant::now();
    while beating.elapsed() < Duration::from_millis(3000) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        alice.send(update::Request::new(delay_id.clone(), update::UpdateAction::Restart)).await.expect("heartbeat");
        assert_eq!(membership_seen_by(&bob, &room, &state_key).await["application"], "m.call", "left too early");
    }

    // The phone dies: no more heartbeats. The server sends the leave once the delay is up.
    let died = Instant::now();
    loop {
        let seen = membership_seen_by(&bob, &room, &state_key).await;
        if seen == json!({}) {
            break;
        }
        assert!(died.elapsed() < Duration::from_secs(10), "the membership never ended: {seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(died.elapsed() >= Duration::from_millis(1000), "ended before its delay was up");
    // It was Alice's own leave, and it is no longer pending.
    let err = alice
        .send(update::Request::new(delay_id, update::UpdateAction::Cancel))
        .await
        .expect_err("nothing is left to cancel");
    assert_eq!(err.as_client_api_error().map(|e| e.status_code.as_u16()), Some(404), "{err}");
}
