//! Server-side key backup over real HTTP (spec: client-server API, "Server-side key backups"):
//! versions, keys at all three levels, the rules for replacing a session's key, and the errors
//! for stale and unknown versions.

mod common;

use common::{TestServer, assert_err};
use serde_json::{Value, json};

const VERSION: &str = "/_matrix/client/v3/room_keys/version";
const ROOM: &str = "!room:hearth.test";

fn key(fmi: i64, forwarded: i64, verified: bool, tag: &str) -> Value {
    json!({"first_message_index": fmi, "forwarded_count": forwarded, "is_verified": verified, "session_data": {"ciphertext": tag, "ephemeral": "e", "mac": "m"}})
}

fn algorithm(public_key: &str) -> Value {
    json!({"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2", "auth_data": {"public_key": public_key, "signatures": {}}})
}

#[tokio::test]
async fn a_backup_keeps_the_best_copy_of_each_session_and_refuses_stale_versions() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    assert_err(&s.get(VERSION, Some(&alice)).await, 404, "M_NOT_FOUND");

    let (st, v) = s.post(VERSION, Some(&alice), algorithm("pk1")).await;
    assert_eq!(st, 200, "{v}");
    let v1 = v["version"].as_str().unwrap().to_owned();
    let (_, info) = s.get(VERSION, Some(&alice)).await;
    assert_eq!((info["version"].as_str(), info["count"].as_i64()), (Some(v1.as_str()), Some(0)));
    assert_eq!(info["auth_data"]["public_key"], "pk1");
    let etag0 = info["etag"].as_str().unwrap().to_owned();
    // Someone else's backup is not visible.
    assert_err(&s.get(VERSION, Some(&bob)).await, 404, "M_NOT_FOUND");

    // All three levels of upload.
    let keys = format!("/_matrix/client/v3/room_keys/keys?version={v1}");
    let (st, v) = s
        .put(
            &keys,
            Some(&alice),
            json!({"rooms": {ROOM: {"sessions": {"s1": key(5, 1, false, "a"), "s2": key(0, 0, false, "b")}}}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["count"], 2);
    assert_ne!(v["etag"].as_str().unwrap(), etag0, "the etag moves with the keys");
    let room_keys = format!("/_matrix/client/v3/room_keys/keys/{ROOM}?version={v1}");
    let (_, v) = s.put(&room_keys, Some(&alice), json!({"sessions": {"s3": key(0, 0, true, "c")}})).await;
    assert_eq!(v["count"], 3);
    let s1 = format!("/_matrix/client/v3/room_keys/keys/{ROOM}/s1?version={v1}");

    // Replacement (spec): verified beats unverified, then a lower first_message_index, then a
    // lower forwarded_count; anything else leaves the stored key.
    for (candidate, kept) in [
        (key(9, 0, false, "worse index"), "a"),
        (key(5, 3, false, "more forwarded"), "a"),
        (key(5, 0, false, "fewer forwards"), "fewer forwards"),
        (key(2, 0, false, "lower index"), "lower index"),
        (key(20, 5, true, "verified"), "verified"),
        (key(0, 0, false, "unverified but earlier"), "verified"),
    ] {
        let (st, v) = s.put(&s1, Some(&alice), candidate).await;
        assert_eq!(st, 200, "{v}");
        let (_, got) = s.get(&s1, Some(&alice)).await;
        assert_eq!(got["session_data"]["ciphertext"], kept);
    }
    let (_, all) = s.get(&keys, Some(&alice)).await;
    assert_eq!(all["rooms"][ROOM]["sessions"].as_object().unwrap().len(), 3);
    let (_, room) = s.get(&room_keys, Some(&alice)).await;
    assert_eq!(room["sessions"]["s2"]["session_data"]["ciphertext"], "b");
    assert_err(
        &s.get(&format!("/_matrix/client/v3/room_keys/keys/{ROOM}/nope?version={v1}"), Some(&alice)).await,
        404,
        "M_NOT_FOUND",
    );

    // Bad key data is refused and nothing of the request is stored.
    let bad =
        json!({"rooms": {ROOM: {"sessions": {"s9": key(0, 0, false, "x"), "s10": {"first_message_index": "one"}}}}});
    assert_err(&s.put(&keys, Some(&alice), bad).await, 400, "M_BAD_JSON");
    let (_, info) = s.get(VERSION, Some(&alice)).await;
    assert_eq!(info["count"], 3);

    // A new version: the old one takes no more keys (M_WRONG_ROOM_KEYS_VERSION with the current).
    let (_, v) = s.post(VERSION, Some(&alice), algorithm("pk2")).await;
    let v2 = v["version"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    let stale = s.put(&keys, Some(&alice), json!({"rooms": {ROOM: {"sessions": {"s4": key(0, 0, false, "d")}}}})).await;
    assert_err(&stale, 403, "M_WRONG_ROOM_KEYS_VERSION");
    assert_eq!(stale.1["current_version"], v2.as_str());
    let (_, latest) = s.get(VERSION, Some(&alice)).await;
    assert_eq!((latest["version"].as_str(), latest["count"].as_i64()), (Some(v2.as_str()), Some(0)));
    // The old version can still be read, and its auth_data updated but not its algorithm.
    let (_, old) = s.get(&format!("{VERSION}/{v1}"), Some(&alice)).await;
    assert_eq!(old["count"], 3);
    let (st, _) = s.put(&format!("{VERSION}/{v1}"), Some(&alice), algorithm("pk1-resigned")).await;
    assert_eq!(st, 200);
    let mut other = algorithm("pk1");
    other["algorithm"] = json!("m.megolm_backup.v2");
    assert_err(&s.put(&format!("{VERSION}/{v1}"), Some(&alice), other).await, 400, "M_INVALID_PARAM");

    // Deleting keys at each level, then the version itself.
    let (_, v) = s.delete_call(&s1, Some(&alice)).await;
    assert_eq!(v["count"], 2);
    let (_, v) = s.delete_call(&room_keys, Some(&alice)).await;
    assert_eq!(v["count"], 0);
    let (st, _) = s.delete_call(&format!("{VERSION}/{v1}"), Some(&alice)).await;
    assert_eq!(st, 200);
    assert_err(&s.get(&format!("{VERSION}/{v1}"), Some(&alice)).await, 404, "M_NOT_FOUND");
    assert_err(&s.delete_call(&format!("{VERSION}/{v1}"), Some(&alice)).await, 404, "M_NOT_FOUND");
    assert_err(&s.get(&format!("{VERSION}/not-a-version"), Some(&alice)).await, 404, "M_NOT_FOUND");
    // Version numbers are not reused.
    let (_, v) = s.post(VERSION, Some(&alice), algorithm("pk3")).await;
    assert!(v["version"].as_str().unwrap().parse::<i64>().unwrap() > v2.parse::<i64>().unwrap());
    assert_err(&s.post(VERSION, Some(&alice), json!({"algorithm": 5})).await, 400, "M_BAD_JSON");
    assert_err(&s.post(VERSION, Some(&alice), json!({"algorithm": "x"})).await, 400, "M_BAD_JSON");
    // An algorithm's auth_data is for clients to read: an opaque one (as Synapse's own examples
    // and older test suites send) is kept as given.
    let opaque = json!({"algorithm": "m.megolm_backup.v1", "auth_data": "dGhpcyBpcyBvcGFxdWU"});
    let (st, v) = s.post(VERSION, Some(&alice), opaque).await;
    assert_eq!(st, 200, "{v}");
    let (_, info) = s.get(&format!("{VERSION}/{}", v["version"].as_str().unwrap()), Some(&alice)).await;
    assert_eq!(
        (info["algorithm"].as_str(), info["auth_data"].as_str()),
        (Some("m.megolm_backup.v1"), Some("dGhpcyBpcyBvcGFxdWU")),
        "{info}"
    );
}
