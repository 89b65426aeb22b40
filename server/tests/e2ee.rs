//! The server's part of end-to-end encryption over real HTTP (spec: client-server API,
//! "End-to-End Encryption", "Send-to-Device messaging"): key upload, query and claim, key
//! counts and device list changes in /sync, to-device delivery and acknowledgement, and the
//! errors for keys that are not what they claim to be.

mod common;

use std::collections::HashSet;

use common::{TestServer, assert_err};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, signatures::Ed25519KeyPair};
use serde_json::{Value, json};

const UPLOAD: &str = "/_matrix/client/v3/keys/upload";
const QUERY: &str = "/_matrix/client/v3/keys/query";
const CLAIM: &str = "/_matrix/client/v3/keys/claim";

/// A device's signing key, as a client holds it.
struct Device {
    user: String,
    id: String,
    pair: Ed25519KeyPair,
}

impl Device {
    fn new(user: &str, id: &str) -> Device {
        let der = Ed25519KeyPair::generate();
        Device {
            user: user.to_owned(),
            id: id.to_owned(),
            pair: Ed25519KeyPair::from_der(&der, id.to_owned()).unwrap(),
        }
    }

    fn sign(&self, v: Value) -> Value {
        let mut obj: CanonicalJsonObject = serde_json::from_value(v).unwrap();
        ruma::signatures::sign_json(&self.user, &self.pair, &mut obj).unwrap();
        serde_json::to_value(CanonicalJsonValue::Object(obj)).unwrap()
    }

    fn ed25519(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.pair.public_key())
    }

    fn device_keys(&self) -> Value {
        self.sign(json!({
            "user_id": self.user,
            "device_id": self.id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": { format!("curve25519:{}", self.id): "curve-public-key", format!("ed25519:{}", self.id): self.ed25519() },
        }))
    }

    fn otk(&self, n: usize) -> Value {
        self.sign(json!({ "key": format!("otk-{n}") }))
    }
}

/// Registers `name` with device `DEV`; returns (token, device).
async fn user(s: &TestServer, name: &str) -> (String, Device) {
    let (st, v) = s
        .post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": name, "password": "password1", "device_id": "DEV", "initial_device_display_name": format!("{name}'s laptop"), "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    let v = if st == 401 {
        let session = v["session"].as_str().unwrap().to_owned();
        s.post(
            "/_matrix/client/v3/register",
            None,
            json!({"username": name, "password": "password1", "device_id": "DEV", "initial_device_display_name": format!("{name}'s laptop"), "auth": {"type": "m.login.dummy", "session": session}}),
        )
        .await
        .1
    } else {
        v
    };
    (v["access_token"].as_str().unwrap().to_owned(), Device::new(v["user_id"].as_str().unwrap(), "DEV"))
}

async fn sync(s: &TestServer, token: &str, since: Option<&str>) -> Value {
    let path = match since {
        Some(t) => format!("/_matrix/client/v3/sync?timeout=0&since={t}"),
        None => "/_matrix/client/v3/sync?timeout=0".to_owned(),
    };
    let (st, v) = s.get(&path, Some(token)).await;
    assert_eq!(st, 200, "{v}");
    v
}

#[tokio::test]
async fn keys_are_uploaded_queried_and_each_one_time_key_is_claimed_once() {
    let s = TestServer::start().await;
    let (alice, a) = user(&s, "alice").await;
    let (bob, _) = user(&s, "bob").await;

    let otks: serde_json::Map<String, Value> =
        (0..3).map(|n| (format!("signed_curve25519:AAAA{n}"), a.otk(n))).collect();
    let (st, v) = s
        .post(
            UPLOAD,
            Some(&alice),
            json!({
                "device_keys": a.device_keys(),
                "one_time_keys": otks,
                "fallback_keys": { "signed_curve25519:FB": a.sign(json!({"key": "fallback", "fallback": true})) },
            }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["one_time_key_counts"]["signed_curve25519"], 3);
    let synced = sync(&s, &alice, None).await;
    assert_eq!(synced["device_one_time_keys_count"]["signed_curve25519"], 3);
    assert_eq!(synced["device_unused_fallback_key_types"], json!(["signed_curve25519"]));

    // Bob sees Alice's device with its name, exactly as signed.
    let (st, v) = s.post(QUERY, Some(&bob), json!({"device_keys": {a.user.clone(): []}})).await;
    assert_eq!(st, 200, "{v}");
    let keys = &v["device_keys"][&a.user]["DEV"];
    assert_eq!(keys["keys"]["ed25519:DEV".to_string()], a.ed25519());
    assert!(keys["signatures"][&a.user]["ed25519:DEV"].is_string());
    assert_eq!(keys["unsigned"]["device_display_name"], "alice's laptop", "{keys}");

    // Three claims take the three one-time keys, then the fallback key is handed out.
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let (st, v) =
            s.post(CLAIM, Some(&bob), json!({"one_time_keys": {a.user.clone(): {"DEV": "signed_curve25519"}}})).await;
        assert_eq!(st, 200, "{v}");
        let claimed = v["one_time_keys"][&a.user]["DEV"].as_object().unwrap();
        let (id, key) = claimed.iter().next().unwrap();
        assert!(key["signatures"].is_object());
        assert!(seen.insert(id.clone()), "{id} handed out twice");
    }
    let (_, v) =
        s.post(CLAIM, Some(&bob), json!({"one_time_keys": {a.user.clone(): {"DEV": "signed_curve25519"}}})).await;
    assert_eq!(v["one_time_keys"][&a.user]["DEV"]["signed_curve25519:FB"]["key"], "fallback");
    let synced = sync(&s, &alice, None).await;
    assert_eq!(
        synced["device_one_time_keys_count"].get("signed_curve25519"),
        None,
        "{}",
        synced["device_one_time_keys_count"]
    );
    assert_eq!(synced["device_unused_fallback_key_types"], json!([]), "the fallback key is used");
}

#[tokio::test]
async fn concurrent_claims_never_get_the_same_one_time_key() {
    let s = TestServer::start().await;
    let (alice, a) = user(&s, "alice").await;
    let otks: serde_json::Map<String, Value> =
        (0..20).map(|n| (format!("signed_curve25519:K{n:02}"), a.otk(n))).collect();
    let (st, _) = s.post(UPLOAD, Some(&alice), json!({"device_keys": a.device_keys(), "one_time_keys": otks})).await;
    assert_eq!(st, 200);
    let mut claimers = Vec::new();
    for i in 0..24 {
        claimers.push(user(&s, &format!("c{i}")).await.0);
    }
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for token in claimers {
        let (s, who) = (s.clone(), a.user.clone());
        tasks.push(tokio::spawn(async move {
            let (st, v) = s
                .post(CLAIM, Some(&token), json!({"one_time_keys": {who.clone(): {"DEV": "signed_curve25519"}}}))
                .await;
            assert_eq!(st, 200, "{v}");
            v["one_time_keys"][&who]["DEV"].as_object().and_then(|o| o.keys().next().cloned())
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.extend(t.await.unwrap());
    }
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 20, "20 keys for 24 claims (no fallback key was uploaded): {got:?}");
    assert_eq!(distinct.len(), 20, "no key handed out twice: {got:?}");
}

/// Keys must be the uploading device's own and well formed; their signatures are the business
/// of the devices that read them (as in Synapse: a server that refused what it cannot verify
/// would break clients, and would protect no one, since clients verify anyway).
#[tokio::test]
async fn keys_for_another_device_or_malformed_are_refused_and_nothing_is_stored() {
    let s = TestServer::start().await;
    let (alice, a) = user(&s, "alice").await;
    // Keys of another device, and of another user.
    let other = Device::new(&a.user, "OTHER");
    assert_err(&s.post(UPLOAD, Some(&alice), json!({"device_keys": other.device_keys()})).await, 400, "M_BAD_JSON");
    let bobs = Device::new("@bob:hearth.test", "DEV");
    assert_err(&s.post(UPLOAD, Some(&alice), json!({"device_keys": bobs.device_keys()})).await, 400, "M_BAD_JSON");
    let mut unsigned = a.device_keys();
    unsigned.as_object_mut().unwrap().remove("signatures");
    assert_err(&s.post(UPLOAD, Some(&alice), json!({"device_keys": unsigned})).await, 400, "M_BAD_JSON");
    let (_, v) = s.post(QUERY, Some(&alice), json!({"device_keys": {a.user.clone(): []}})).await;
    assert_eq!(v["device_keys"][&a.user], json!({}), "nothing stored");

    // A malformed one-time key in the same request as valid device keys: nothing of the request
    // is stored.
    let bad = json!({"device_keys": a.device_keys(), "one_time_keys": {"signed_curve25519:X": {"key": 5}}});
    assert_err(&s.post(UPLOAD, Some(&alice), bad).await, 400, "M_BAD_JSON");
    let (_, v) = s.post(QUERY, Some(&alice), json!({"device_keys": {a.user.clone(): []}})).await;
    assert_eq!(v["device_keys"][&a.user], json!({}), "the device keys of the refused request are not stored either");
    let (_, v) = s.post(UPLOAD, Some(&alice), json!({})).await;
    assert_eq!(v["one_time_key_counts"], json!({}));

    // A signature this server cannot verify is kept as sent; the reading device judges it.
    let mut odd = a.device_keys();
    odd["keys"]["curve25519:DEV"] = json!("swapped-after-signing");
    let (st, v) = s.post(UPLOAD, Some(&alice), json!({"device_keys": odd})).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.post(QUERY, Some(&alice), json!({"device_keys": {a.user.clone(): []}})).await;
    assert_eq!(v["device_keys"][&a.user]["DEV"]["keys"]["curve25519:DEV"], "swapped-after-signing", "{v}");
    let stranger = Device::new(&a.user, "DEV");
    let (st, v) =
        s.post(UPLOAD, Some(&alice), json!({"one_time_keys": {"signed_curve25519:S": stranger.otk(7)}})).await;
    assert_eq!((st.as_u16(), &v["one_time_key_counts"]["signed_curve25519"]), (200, &json!(1)), "{v}");
    // Back to the real keys for what follows.
    assert_eq!(s.post(UPLOAD, Some(&alice), json!({"device_keys": a.device_keys()})).await.0, 200);

    // Malformed: a key ID without algorithm, a key that is neither string nor object, bad JSON.
    let (st, _) = s.post(UPLOAD, Some(&alice), json!({"one_time_keys": {"nocolon": "k"}})).await;
    assert_eq!(st, 400);
    assert_err(&s.post(UPLOAD, Some(&alice), json!({"one_time_keys": {"curve25519:A": 5}})).await, 400, "M_BAD_JSON");
    let (st, v) = s.raw(reqwest::Method::POST, UPLOAD, Some(&alice), b"{not json".to_vec()).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (400, Some("M_NOT_JSON")));

    // A key ID reused for different content.
    let (st, _) = s
        .post(
            UPLOAD,
            Some(&alice),
            json!({"device_keys": a.device_keys(), "one_time_keys": {"signed_curve25519:R": a.otk(1)}}),
        )
        .await;
    assert_eq!(st, 200);
    assert_err(
        &s.post(UPLOAD, Some(&alice), json!({"one_time_keys": {"signed_curve25519:R": a.otk(2)}})).await,
        400,
        "M_INVALID_PARAM",
    );
    let (_, v) = s.post(UPLOAD, Some(&alice), json!({"one_time_keys": {"signed_curve25519:R": a.otk(1)}})).await;
    assert_eq!(v["one_time_key_counts"]["signed_curve25519"], 2, "the same key again is fine");
    // Without a token.
    assert_err(&s.post(UPLOAD, None, json!({})).await, 401, "M_MISSING_TOKEN");
}

#[tokio::test]
async fn to_device_messages_arrive_in_order_once_and_go_when_acknowledged() {
    let s = TestServer::start().await;
    let (alice, _) = user(&s, "alice").await;
    let (bob, b) = user(&s, "bob").await;
    let t0 = sync(&s, &bob, None).await["next_batch"].as_str().unwrap().to_owned();
    for (n, txn) in [(1, "t1"), (2, "t2"), (2, "t2")] {
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/sendToDevice/m.test/{txn}"),
                Some(&alice),
                json!({"messages": {b.user.clone(): {"DEV": {"n": n}}}}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let (st, _) = s
        .put(
            "/_matrix/client/v3/sendToDevice/m.test/t3",
            Some(&alice),
            json!({"messages": {b.user.clone(): {"*": {"n": 3}}}}),
        )
        .await;
    assert_eq!(st, 200);
    let got = sync(&s, &bob, Some(&t0)).await;
    let events = got["to_device"]["events"].as_array().unwrap();
    let ns: Vec<i64> = events.iter().map(|e| e["content"]["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 3], "in order, the retried transaction once: {events:?}");
    assert_eq!(events[0]["sender"], "@alice:hearth.test");
    assert_eq!(events[0]["type"], "m.test");

    // Not acknowledged yet: the same token gets them again.
    let again = sync(&s, &bob, Some(&t0)).await;
    assert_eq!(again["to_device"]["events"].as_array().unwrap().len(), 3);
    // A later token acknowledges them: gone, also for the old token.
    let t1 = again["next_batch"].as_str().unwrap().to_owned();
    assert_eq!(sync(&s, &bob, Some(&t1)).await["to_device"]["events"], json!([]));
    assert_eq!(sync(&s, &bob, Some(&t0)).await["to_device"]["events"], json!([]), "deleted once acknowledged");

    // Too big: refused, nothing queued.
    let big = "x".repeat(70_000);
    assert_err(
        &s.put(
            "/_matrix/client/v3/sendToDevice/m.test/t4",
            Some(&alice),
            json!({"messages": {b.user.clone(): {"DEV": {"big": big}}}}),
        )
        .await,
        413,
        "M_TOO_LARGE",
    );
    assert_eq!(sync(&s, &bob, Some(&t1)).await["to_device"]["events"], json!([]));
}

#[tokio::test]
async fn device_list_changes_reach_people_who_share_a_room_and_a_deleted_device_takes_its_keys() {
    let s = TestServer::start().await;
    let (alice, _) = user(&s, "alice").await;
    let (bob, b) = user(&s, "bob").await;
    let (carol, _) = user(&s, "carol").await;
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat"})).await;
    let room = room["room_id"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let since = sync(&s, &alice, None).await["next_batch"].as_str().unwrap().to_owned();
    let carol_since = sync(&s, &carol, None).await["next_batch"].as_str().unwrap().to_owned();

    // Bob uploads keys: Alice (who shares a room) hears of it, Carol does not.
    let (st, _) = s.post(UPLOAD, Some(&bob), json!({"device_keys": b.device_keys()})).await;
    assert_eq!(st, 200);
    let got = sync(&s, &alice, Some(&since)).await;
    assert_eq!(got["device_lists"]["changed"], json!([b.user]), "{}", got["device_lists"]);
    assert_eq!(sync(&s, &carol, Some(&carol_since)).await["device_lists"]["changed"], json!([]));
    let (st, v) = s
        .get(
            &format!("/_matrix/client/v3/keys/changes?from={since}&to={}", got["next_batch"].as_str().unwrap()),
            Some(&alice),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["changed"], json!([b.user]));

    // Bob logs out (his device goes with its keys): a change; then he leaves: he is "left".
    let since = got["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s.post("/_matrix/client/v3/logout", Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let got = sync(&s, &alice, Some(&since)).await;
    assert_eq!(got["device_lists"]["changed"], json!([b.user]));
    let (_, v) = s.post(QUERY, Some(&alice), json!({"device_keys": {b.user.clone(): []}})).await;
    assert_eq!(v["device_keys"][&b.user], json!({}), "the deleted device's keys are gone");

    let (st, login) = s.login("bob", "password1").await;
    assert_eq!(st, 200);
    let bob = login["access_token"].as_str().unwrap().to_owned();
    let since =
        sync(&s, &alice, Some(got["next_batch"].as_str().unwrap())).await["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let got = sync(&s, &alice, Some(&since)).await;
    assert_eq!(got["device_lists"]["left"], json!([b.user]), "{}", got["device_lists"]);

    // When Alice herself leaves, the people she no longer shares a room with are "left" too.
    let (st, _) = s.post(&format!("/_matrix/client/v3/join/{room}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let since =
        sync(&s, &alice, Some(got["next_batch"].as_str().unwrap())).await["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), Some(&alice), json!({})).await;
    assert_eq!(st, 200);
    let got = sync(&s, &alice, Some(&since)).await;
    assert_eq!(got["device_lists"]["left"], json!([b.user]), "{}", got["device_lists"]);
}

/// A cross-signing key: its pair, named by its public key as the spec wants.
fn cross_key() -> (Ed25519KeyPair, String) {
    use base64::Engine;
    let der = Ed25519KeyPair::generate();
    let public = base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(Ed25519KeyPair::from_der(&der, "x".into()).unwrap().public_key());
    (Ed25519KeyPair::from_der(&der, public.clone()).unwrap(), public)
}

fn cross_signing_key(user: &str, usage: &str, public: &str, signer: Option<&Ed25519KeyPair>) -> Value {
    let v = json!({"user_id": user, "usage": [usage], "keys": {format!("ed25519:{public}"): public}});
    match signer {
        Some(pair) => {
            let mut obj: CanonicalJsonObject = serde_json::from_value(v).unwrap();
            ruma::signatures::sign_json(user, pair, &mut obj).unwrap();
            serde_json::to_value(CanonicalJsonValue::Object(obj)).unwrap()
        }
        None => v,
    }
}

#[tokio::test]
async fn cross_signing_keys_and_signatures_are_checked_stored_and_handed_out() {
    let s = TestServer::start().await;
    let (alice, a) = user(&s, "alice").await;
    let (bob, _) = user(&s, "bob").await;
    let (st, _) = s.post(UPLOAD, Some(&alice), json!({"device_keys": a.device_keys()})).await;
    assert_eq!(st, 200);
    let me = a.user.clone();
    let (master, master_pub) = cross_key();
    let (ssk, ssk_pub) = cross_key();
    let (_, usk_pub) = cross_key();
    const SIGNING: &str = "/_matrix/client/v3/keys/device_signing/upload";
    const SIGNATURES: &str = "/_matrix/client/v3/keys/signatures/upload";

    // A self-signing key the master key did not sign is refused.
    let unsigned = json!({"master_key": cross_signing_key(&me, "master", &master_pub, None), "self_signing_key": cross_signing_key(&me, "self_signing", &ssk_pub, None)});
    assert_err(&s.post(SIGNING, Some(&alice), unsigned).await, 400, "M_INVALID_PARAM");
    // The first upload needs no password (MSC3967).
    let keys = json!({
        "master_key": cross_signing_key(&me, "master", &master_pub, None),
        "self_signing_key": cross_signing_key(&me, "self_signing", &ssk_pub, Some(&master)),
        "user_signing_key": cross_signing_key(&me, "user_signing", &usk_pub, Some(&master)),
    });
    let (st, v) = s.post(SIGNING, Some(&alice), keys.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (st, _) = s.post(SIGNING, Some(&alice), keys).await;
    assert_eq!(st, 200, "the same keys again need no password either");
    // Replacing them does.
    let (_, other_pub) = cross_key();
    let replace = json!({"master_key": cross_signing_key(&me, "master", &other_pub, None)});
    let (st, v) = s.post(SIGNING, Some(&alice), replace).await;
    assert_eq!(st, 401, "{v}");
    assert!(v["flows"].is_array());

    // Alice signs her device with her self-signing key.
    let mut device = a.device_keys();
    let mut obj: CanonicalJsonObject = serde_json::from_value(device.clone()).unwrap();
    ruma::signatures::sign_json(&me, &ssk, &mut obj).unwrap();
    let signed = serde_json::to_value(CanonicalJsonValue::Object(obj)).unwrap();
    let (st, v) = s.post(SIGNATURES, Some(&alice), json!({me.clone(): {"DEV": signed}})).await;
    assert_eq!(st, 200, "{v}");
    assert!(v.get("failures").is_none_or(|f| f == &json!({})), "{v}");

    // A signature over something else than the stored device keys is refused per key.
    device["keys"]["curve25519:DEV"] = json!("another-key");
    let mut obj: CanonicalJsonObject = serde_json::from_value(device).unwrap();
    ruma::signatures::sign_json(&me, &ssk, &mut obj).unwrap();
    let (_, v) = s
        .post(
            SIGNATURES,
            Some(&alice),
            json!({me.clone(): {"DEV": serde_json::to_value(CanonicalJsonValue::Object(obj)).unwrap(), "NOPE": {}}}),
        )
        .await;
    assert_eq!(v["failures"][&me]["DEV"]["errcode"], "M_INVALID_SIGNATURE", "{v}");
    assert!(v["failures"][&me]["NOPE"]["errcode"].is_string(), "{v}");

    // Bob sees Alice's master and self-signing keys and her device signed by the latter; not
    // her user-signing key, which only she gets.
    let (_, v) = s.post(QUERY, Some(&bob), json!({"device_keys": {me.clone(): []}})).await;
    assert_eq!(v["master_keys"][&me]["keys"][format!("ed25519:{master_pub}")], master_pub);
    assert_eq!(v["self_signing_keys"][&me]["keys"][format!("ed25519:{ssk_pub}")], ssk_pub);
    assert!(v["user_signing_keys"].get(&me).is_none(), "{v}");
    assert!(v["device_keys"][&me]["DEV"]["signatures"][&me][format!("ed25519:{ssk_pub}")].is_string(), "{v}");
    assert!(v["device_keys"][&me]["DEV"]["signatures"][&me]["ed25519:DEV"].is_string());
    let (_, v) = s.post(QUERY, Some(&alice), json!({"device_keys": {me.clone(): []}})).await;
    assert_eq!(v["user_signing_keys"][&me]["keys"][format!("ed25519:{usk_pub}")], usk_pub);

    // Bob verifies Alice: his user-signing key signs her master key. Signed with his
    // self-signing key instead, it is refused.
    let bob_id = "@bob:hearth.test";
    let (bob_master, bob_master_pub) = cross_key();
    let (bob_usk, bob_usk_pub) = cross_key();
    let (bob_ssk, bob_ssk_pub) = cross_key();
    let (st, _) = s
        .post(
            SIGNING,
            Some(&bob),
            json!({
                "master_key": cross_signing_key(bob_id, "master", &bob_master_pub, None),
                "self_signing_key": cross_signing_key(bob_id, "self_signing", &bob_ssk_pub, Some(&bob_master)),
                "user_signing_key": cross_signing_key(bob_id, "user_signing", &bob_usk_pub, Some(&bob_master)),
            }),
        )
        .await;
    assert_eq!(st, 200);
    let alice_master = cross_signing_key(&me, "master", &master_pub, None);
    let sign_with = |pair: &Ed25519KeyPair| {
        let mut obj: CanonicalJsonObject = serde_json::from_value(alice_master.clone()).unwrap();
        ruma::signatures::sign_json(bob_id, pair, &mut obj).unwrap();
        serde_json::to_value(CanonicalJsonValue::Object(obj)).unwrap()
    };
    let (_, v) = s.post(SIGNATURES, Some(&bob), json!({me.clone(): {master_pub.clone(): sign_with(&bob_ssk)}})).await;
    assert_eq!(v["failures"][&me][&master_pub]["errcode"], "M_INVALID_SIGNATURE", "{v}");
    let (_, v) = s.post(SIGNATURES, Some(&bob), json!({me.clone(): {master_pub.clone(): sign_with(&bob_usk)}})).await;
    assert!(v.get("failures").is_none_or(|f| f == &json!({})), "{v}");
    // The spec's "Cross-signing": a user-signing key's signatures are its owner's to see.
    let (_, v) = s.post(QUERY, Some(&bob), json!({"device_keys": {me.clone(): []}})).await;
    assert!(v["master_keys"][&me]["signatures"][bob_id][format!("ed25519:{bob_usk_pub}")].is_string(), "{v}");
    let (_, v) = s.post(QUERY, Some(&alice), json!({"device_keys": {me.clone(): []}})).await;
    assert!(v["master_keys"][&me]["signatures"].get(bob_id).is_none(), "only Bob sees his signature: {v}");

    // Alice replaces her keys with her password: her old self-signing signatures go.
    let (st, first) =
        s.post(SIGNING, Some(&alice), json!({"master_key": cross_signing_key(&me, "master", &other_pub, None)})).await;
    assert_eq!(st, 401);
    let auth = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "password1", "session": first["session"]});
    let (st, v) = s
        .post(
            SIGNING,
            Some(&alice),
            json!({"master_key": cross_signing_key(&me, "master", &other_pub, None), "auth": auth}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.post(QUERY, Some(&bob), json!({"device_keys": {me.clone(): []}})).await;
    assert_eq!(v["master_keys"][&me]["keys"][format!("ed25519:{other_pub}")], other_pub);
    assert!(v["device_keys"][&me]["DEV"]["signatures"][&me].get(format!("ed25519:{ssk_pub}")).is_none(), "{v}");
}

/// MSC3814: a device kept on the server receives to-device messages (room keys) while the user
/// has no device online; a new login reads and acknowledges them.
#[tokio::test]
async fn a_dehydrated_device_collects_messages_for_a_later_login() {
    const DEHYDRATED: &str = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";
    let s = TestServer::start().await;
    let (alice, a) = user(&s, "alice").await;
    let (bob, _) = user(&s, "bob").await;
    assert_err(&s.get(DEHYDRATED, Some(&alice)).await, 404, "M_NOT_FOUND");

    let dry = Device::new(&a.user, "DRY");
    let body = |d: &Device| {
        json!({
            "device_id": d.id, "initial_device_display_name": "Dehydrated device",
            "device_data": {"algorithm": "org.matrix.msc3814.v2", "device_pickle": "opaque", "nonce": "n"},
            "device_keys": d.device_keys(),
            "one_time_keys": {"signed_curve25519:D1": d.otk(1)},
        })
    };
    // Keys of another device: refused, and no device is left behind.
    let mut bad = body(&dry);
    bad["device_keys"] = Device::new(&a.user, "OTHER").device_keys();
    assert_err(&s.put(DEHYDRATED, Some(&alice), bad).await, 400, "M_BAD_JSON");
    assert_err(&s.get(DEHYDRATED, Some(&alice)).await, 404, "M_NOT_FOUND");
    // A real device's ID cannot be taken.
    assert_err(&s.put(DEHYDRATED, Some(&alice), body(&a)).await, 400, "M_INVALID_PARAM");

    let (st, v) = s.put(DEHYDRATED, Some(&alice), body(&dry)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["device_id"], "DRY");
    let (_, v) = s.get(DEHYDRATED, Some(&alice)).await;
    assert_eq!((v["device_id"].as_str(), v["device_data"]["device_pickle"].as_str()), (Some("DRY"), Some("opaque")));

    // Alice logs out everywhere else; Bob claims the dehydrated device's key and sends to it.
    let (st, _) = s.post("/_matrix/client/v3/logout", Some(&alice), json!({})).await;
    assert_eq!(st, 200);
    let (_, v) =
        s.post(CLAIM, Some(&bob), json!({"one_time_keys": {a.user.clone(): {"DRY": "signed_curve25519"}}})).await;
    assert!(v["one_time_keys"][&a.user]["DRY"]["signed_curve25519:D1"].is_object(), "{v}");
    for n in 0..3 {
        let (st, _) = s
            .put(
                &format!("/_matrix/client/v3/sendToDevice/m.room.encrypted/k{n}"),
                Some(&bob),
                json!({"messages": {a.user.clone(): {"DRY": {"n": n}}}}),
            )
            .await;
        assert_eq!(st, 200);
    }

    // A new login collects them, page by page, acknowledging with next_batch.
    let (_, login) = s.login("alice", "password1").await;
    let alice = login["access_token"].as_str().unwrap().to_owned();
    let events = format!("{DEHYDRATED}/DRY/events");
    let (st, v) = s.post(&events, Some(&alice), json!({})).await;
    assert_eq!(st, 200, "{v}");
    let ns: Vec<i64> = v["events"].as_array().unwrap().iter().map(|e| e["content"]["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [0, 1, 2]);
    assert_eq!(v["events"][0]["sender"], "@bob:hearth.test");
    let next = v["next_batch"].as_str().unwrap().to_owned();
    let (_, v) = s.post(&events, Some(&alice), json!({"next_batch": next})).await;
    assert_eq!(v["events"], json!([]));
    let (_, v) = s.post(&events, Some(&alice), json!({})).await;
    assert_eq!(v["events"], json!([]), "acknowledged messages are deleted");
    assert_err(&s.post(&format!("{DEHYDRATED}/DEV/events"), Some(&alice), json!({})).await, 404, "M_NOT_FOUND");

    // Deleting it removes the device and its keys.
    let (st, v) = s.delete_call(DEHYDRATED, Some(&alice)).await;
    assert_eq!((st.as_u16(), v["device_id"].as_str()), (200, Some("DRY")));
    let (_, v) = s.post(QUERY, Some(&bob), json!({"device_keys": {a.user.clone(): ["DRY"]}})).await;
    assert_eq!(v["device_keys"][&a.user], json!({}));
    assert_err(&s.delete_call(DEHYDRATED, Some(&alice)).await, 404, "M_NOT_FOUND");
}

/// To-device messages handed out before a restart are acknowledged (and deleted) by the
/// device's first sync after it; messages queued before the restart survive it.
#[tokio::test]
async fn to_device_messages_survive_a_restart_and_are_acknowledged_after_it() {
    let mut s = TestServer::start().await;
    let (alice, _) = user(&s, "alice").await;
    let (bob, b) = user(&s, "bob").await;
    let t0 = sync(&s, &bob, None).await["next_batch"].as_str().unwrap().to_owned();
    let send = async |s: &TestServer, txn: &str, n: i64| {
        let (st, _) = s
            .put(
                &format!("/_matrix/client/v3/sendToDevice/m.test/{txn}"),
                Some(&alice),
                json!({"messages": {b.user.clone(): {"DEV": {"n": n}}}}),
            )
            .await;
        assert_eq!(st, 200);
    };
    send(&s, "a", 1).await;
    let got = sync(&s, &bob, Some(&t0)).await;
    assert_eq!(got["to_device"]["events"].as_array().unwrap().len(), 1);
    let t1 = got["next_batch"].as_str().unwrap().to_owned();
    send(&s, "b", 2).await;

    s.stop().await;
    let moved = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let config = common::test_config(moved.path());
    let s = TestServer::start_in(moved, config).await;
    let got = sync(&s, &bob, Some(&t1)).await;
    let ns: Vec<i64> =
        got["to_device"]["events"].as_array().unwrap().iter().map(|e| e["content"]["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [2], "the message queued before the restart arrives, the acknowledged one does not");
    let got = sync(&s, &bob, Some(&t0)).await;
    let ns: Vec<i64> =
        got["to_device"]["events"].as_array().unwrap().iter().map(|e| e["content"]["n"].as_i64().unwrap()).collect();
    assert_eq!(ns, [2], "the first message was deleted when the token after it came back");
    // A retried transaction from before the restart is still recognised.
    send(&s, "b", 2).await;
    let t2 = got["next_batch"].as_str().unwrap().to_owned();
    assert_eq!(sync(&s, &bob, Some(&t2)).await["to_device"]["events"], json!([]));
}
