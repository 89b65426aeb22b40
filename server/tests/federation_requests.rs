//! The federation API's doors without another server: requests must be signed (X-Matrix), and
//! the notary endpoints answer for this server and say nothing about servers they cannot reach
//! or may not contact. The exchange with a real Synapse is in federation.rs.

mod common;

use common::{SERVER_NAME, TestServer};
use serde_json::json;

#[tokio::test]
async fn federation_requests_without_a_valid_signature_are_refused() {
    let s = TestServer::start().await;
    s.user("alice").await;
    let path = format!("/_matrix/federation/v1/query/profile?user_id=%40alice%3A{SERVER_NAME}");
    let (st, v) = s.get(&path, None).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")), "{v}");
    let resp = s
        .http
        .get(format!("{}{path}", s.base))
        .header("Authorization", "X-Matrix origin=\"127.0.0.1:1\",key=\"ed25519:x\",sig=\"dGVzdA\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["errcode"], "M_UNAUTHORIZED", "{v}");
    assert!(v.get("displayname").is_none());
    for bad in ["X-Matrix nonsense", "Bearer abc", "X-Matrix origin=\"a b\",key=\"ed25519:x\",sig=\"x\""] {
        let resp = s.http.get(format!("{}{path}", s.base)).header("Authorization", bad).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{bad}");
    }
}

#[tokio::test]
async fn the_notary_answers_for_itself_and_not_for_servers_it_may_not_reach() {
    let s = TestServer::start().await;
    let (_, own) = s.get("/_matrix/key/v2/server", None).await;
    let (st, v) = s.get(&format!("/_matrix/key/v2/query/{SERVER_NAME}"), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["server_keys"][0]["verify_keys"], own["verify_keys"], "{v}");
    assert!(v["server_keys"][0]["signatures"][SERVER_NAME].is_object(), "{v}");
    // Loopback is refused by the outbound policy: nothing is fetched, nothing is vouched for.
    let (st, v) = s.get("/_matrix/key/v2/query/127.0.0.1:1", None).await;
    assert_eq!((st.as_u16(), &v["server_keys"]), (200, &json!([])), "{v}");
    let (st, v) =
        s.post("/_matrix/key/v2/query", None, json!({"server_keys": {"127.0.0.1:1": {}, SERVER_NAME: {}}})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["server_keys"].as_array().unwrap().len(), 1, "{v}");
    // A remote user's profile from a server that may not be contacted: 404, quickly.
    let alice = s.user("alice").await;
    let (st, v) = s.get("/_matrix/client/v3/profile/@bob:127.0.0.1:1", Some(&alice)).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (404, Some("M_NOT_FOUND")), "{v}");
    // An invite to it: 403 (the spec's answer for an invite that cannot be made), nothing stored.
    let (_, room) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({})).await;
    let room = common::urlencode(room["room_id"].as_str().unwrap());
    let (st, v) = s
        .post(&format!("/_matrix/client/v3/rooms/{room}/invite"), Some(&alice), json!({"user_id": "@bob:127.0.0.1:1"}))
        .await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (403, Some("M_FORBIDDEN")), "{v}");
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{room}/members"), Some(&alice)).await;
    assert_eq!(members["chunk"].as_array().unwrap().len(), 1, "{members}");
}

#[tokio::test]
async fn federation_domain_whitelist_keeps_other_servers_out_both_ways() {
    let s = TestServer::start_with(|c| c.federation_domain_whitelist = Some(vec!["friends.example".into()])).await;
    let alice = s.user("alice").await;
    let (st, v) = s.get("/_matrix/client/v3/profile/@bob:stranger.example", Some(&alice)).await;
    assert_eq!(st.as_u16(), 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("federation_domain_whitelist"), "{v}");
    let path = format!("/_matrix/federation/v1/query/profile?user_id=%40alice%3A{SERVER_NAME}");
    let resp = s
        .http
        .get(format!("{}{path}", s.base))
        .header("Authorization", "X-Matrix origin=\"stranger.example\",key=\"ed25519:x\",sig=\"dGVzdA\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["errcode"], "M_FORBIDDEN", "{v}");
}
