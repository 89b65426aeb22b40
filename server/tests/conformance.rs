//! Client-server behaviours where Hearth departed from the spec or from what Synapse does and
//! clients rely on (issue 16), each checked as a client sees it over real HTTP.

mod common;

use common::{TestServer, assert_err};
use serde_json::{Value, json};

async fn room(s: &TestServer, token: &str, body: Value) -> String {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), body).await;
    assert_eq!(st, 200, "{v}");
    v["room_id"].as_str().unwrap().to_owned()
}

fn room_account_data<'a>(sync: &'a Value, room: &str, kind: &str) -> Option<&'a Value> {
    sync["rooms"]["join"][room]["account_data"]["events"].as_array()?.iter().find(|e| e["type"] == kind)
}

/// Element Web sets up cross-signing at login only when /versions advertises it, and probes
/// the upload endpoint with an empty body first (Synapse: 200 and nothing changes).
#[tokio::test]
async fn cross_signing_is_advertised_and_the_empty_probe_changes_nothing() {
    let s = TestServer::start().await;
    let (_, v) = s.get("/_matrix/client/versions", None).await;
    assert_eq!(v["unstable_features"]["org.matrix.e2e_cross_signing"], true, "{v}");
    let alice = s.user("alice").await;
    let probe = s.post("/_matrix/client/v3/keys/device_signing/upload", Some(&alice), json!({})).await;
    assert_eq!(probe.0, 200, "{}", probe.1);
    // Nothing was set up by the probe: a device list query shows no master key.
    let (_, keys) =
        s.post("/_matrix/client/v3/keys/query", Some(&alice), json!({"device_keys": {"@alice:hearth.test": []}})).await;
    assert!(keys["master_keys"].get("@alice:hearth.test").is_none(), "{keys}");
}

/// Favourites and Low priority: tags are kept per user and room, reach /sync as `m.tag`
/// room account data, and are checked as the spec says.
#[tokio::test]
async fn room_tags_are_set_listed_synced_and_removed() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({})).await;
    let tags = format!("/_matrix/client/v3/user/@alice:hearth.test/rooms/{r}/tags");

    let (st, v) = s.get(&tags, Some(&alice)).await;
    assert_eq!((st.as_u16(), v), (200, json!({"tags": {}})));
    let (st, v) = s.put(&format!("{tags}/m.favourite"), Some(&alice), json!({"order": 0.25})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.put(&format!("{tags}/u.work"), Some(&alice), json!({"order": 1, "colour": "red"})).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.get(&tags, Some(&alice)).await;
    assert_eq!(v["tags"]["m.favourite"]["order"], 0.25);
    assert_eq!(v["tags"]["u.work"], json!({"order": 1, "colour": "red"}), "kept as sent");

    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&alice)).await;
    let tag_event = room_account_data(&sync, &r, "m.tag").expect("m.tag in the room's account data");
    assert_eq!(tag_event["content"]["tags"]["m.favourite"]["order"], 0.25, "{tag_event}");
    let since = sync["next_batch"].as_str().unwrap().to_owned();

    let (st, _) = s.delete_call(&format!("{tags}/m.favourite"), Some(&alice)).await;
    assert_eq!(st, 200);
    // A long-poll answers at once: the change is already there.
    let started = std::time::Instant::now();
    let (_, sync) = s.get(&format!("/_matrix/client/v3/sync?since={since}&timeout=20000"), Some(&alice)).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "waited {:?}", started.elapsed());
    let tag_event = room_account_data(&sync, &r, "m.tag").expect("the change is synced");
    assert_eq!(tag_event["content"]["tags"], json!({"u.work": {"order": 1, "colour": "red"}}));
    // Removing a tag the room does not have is fine.
    assert_eq!(s.delete_call(&format!("{tags}/m.lowpriority"), Some(&alice)).await.0, 200);

    assert_err(&s.put(&format!("{tags}/u.x"), Some(&alice), json!({"order": 2})).await, 400, "M_INVALID_PARAM");
    assert_err(&s.put(&format!("{tags}/u.x"), Some(&alice), json!({"order": "1"})).await, 400, "M_BAD_JSON");
    let long = "u".repeat(256);
    assert_err(&s.put(&format!("{tags}/{long}"), Some(&alice), json!({})).await, 400, "M_INVALID_PARAM");
    assert_err(&s.get(&tags, Some(&bob)).await, 403, "M_FORBIDDEN");
    let bobs = format!("/_matrix/client/v3/user/@bob:hearth.test/rooms/{r}/tags/m.favourite");
    assert_err(&s.put(&bobs, Some(&bob), json!({})).await, 403, "M_FORBIDDEN");
    let (_, v) = s.get(&tags, Some(&alice)).await;
    assert_eq!(v["tags"].as_object().unwrap().len(), 1, "refused requests changed nothing: {v}");
}

/// Two tags added at the same moment are both kept (the tags are one JSON object).
#[tokio::test]
async fn concurrent_tags_are_all_kept() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;
    let tags = format!("/_matrix/client/v3/user/@alice:hearth.test/rooms/{r}/tags");
    let puts = (0..20).map(|i| {
        let (s, alice, tags) = (&s, &alice, &tags);
        async move { s.put(&format!("{tags}/u.t{i}"), Some(alice), json!({})).await.0 }
    });
    for st in futures::future::join_all(puts).await {
        assert_eq!(st, 200);
    }
    let (_, v) = s.get(&tags, Some(&alice)).await;
    assert_eq!(v["tags"].as_object().unwrap().len(), 20, "{v}");
}

/// The room directory's network picker reads the protocol map; with no bridges it is empty
/// and every lookup finds nothing.
#[tokio::test]
async fn third_party_lookups_answer_as_a_server_without_bridges() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let (st, v) = s.get("/_matrix/client/v3/thirdparty/protocols", Some(&alice)).await;
    assert_eq!((st.as_u16(), v), (200, json!({})));
    for path in [
        "/_matrix/client/v3/thirdparty/protocol/irc",
        "/_matrix/client/v3/thirdparty/location/irc",
        "/_matrix/client/v3/thirdparty/user/irc",
        "/_matrix/client/v3/thirdparty/location?alias=%23a:hearth.test",
        "/_matrix/client/v3/thirdparty/user?userid=@a:hearth.test",
    ] {
        assert_err(&s.get(path, Some(&alice)).await, 404, "M_NOT_FOUND");
    }
    assert_err(&s.get("/_matrix/client/v3/thirdparty/protocols", None).await, 401, "M_MISSING_TOKEN");
}

/// A client discovers the registration flows by posting an empty body (spec: 401 with the
/// flows), before it has asked the user for anything.
#[tokio::test]
async fn an_empty_registration_body_gets_the_flows() {
    let s = TestServer::start().await;
    let (st, v) = s.post("/_matrix/client/v3/register", None, json!({})).await;
    assert_eq!(st, 401, "{v}");
    assert!(v["flows"].as_array().is_some_and(|f| !f.is_empty()), "{v}");
    assert!(v["session"].is_string(), "{v}");
    // Going on without a password is refused before any stage counts.
    let session = v["session"].as_str().unwrap();
    let body = json!({"username": "nopass", "auth": {"type": "m.login.dummy", "session": session}});
    assert_err(&s.post("/_matrix/client/v3/register", None, body).await, 400, "M_MISSING_PARAM");
    // A short password is still judged at once.
    assert_err(
        &s.post("/_matrix/client/v3/register", None, json!({"password": "short"})).await,
        400,
        "M_PASSWORD_TOO_SHORT",
    );
}

/// `timeout` is optional in a typing notice (only `typing` is required).
#[tokio::test]
async fn typing_without_a_timeout_is_accepted() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;
    let path = format!("/_matrix/client/v3/rooms/{r}/typing/@alice:hearth.test");
    let (st, v) = s.put(&path, Some(&alice), json!({"typing": true})).await;
    assert_eq!(st, 200, "{v}");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&alice)).await;
    let typing = sync["rooms"]["join"][&r]["ephemeral"]["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "m.typing").cloned())
        .expect("typing notice in sync");
    assert_eq!(typing["content"]["user_ids"], json!(["@alice:hearth.test"]));
    let (st, v) = s.put(&path, Some(&alice), json!({"typing": false})).await;
    assert_eq!(st, 200, "{v}");
    assert_err(&s.put(&path, Some(&alice), json!({"timeout": 100})).await, 400, "M_MISSING_PARAM");
}

/// Who invited me: the invite's stripped state carries the inviter's own member event, so a
/// client can show their name and avatar.
#[tokio::test]
async fn an_invite_carries_the_inviters_member_event() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    s.put(
        "/_matrix/client/v3/profile/@alice:hearth.test/displayname",
        Some(&alice),
        json!({"displayname": "Alice A."}),
    )
    .await;
    let r = room(&s, &alice, json!({"name": "Tea"})).await;
    let (st, v) = s
        .post(&format!("/_matrix/client/v3/rooms/{r}/invite"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&bob)).await;
    let state = sync["rooms"]["invite"][&r]["invite_state"]["events"].as_array().expect("the invite").clone();
    let inviter = state
        .iter()
        .find(|e| e["type"] == "m.room.member" && e["state_key"] == "@alice:hearth.test")
        .unwrap_or_else(|| panic!("no inviter member event in {state:?}"));
    assert_eq!(inviter["content"]["displayname"], "Alice A.");
    assert_eq!(inviter["content"]["membership"], "join");
    let invite = state.iter().find(|e| e["state_key"] == "@bob:hearth.test").expect("the invite itself");
    assert_eq!(invite["sender"], "@alice:hearth.test");
    assert!(state.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Tea"));

    // Sliding sync (Element X) gets the same.
    let (st, v) = s
        .post(
            "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
            Some(&bob),
            json!({"lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 1}}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let state = v["rooms"][&r]["invite_state"].as_array().expect("invite state in sliding sync");
    assert!(state.iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == "@alice:hearth.test"), "{state:?}");
}

/// Users may look themselves up; only a server admin may look up others.
#[tokio::test]
async fn whois_shows_devices_to_the_user_and_to_admins() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let (st, v) = s.get("/_matrix/client/v3/admin/whois/@alice:hearth.test", Some(&alice)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["user_id"], "@alice:hearth.test");
    let (_, who) = s.get("/_matrix/client/v3/account/whoami", Some(&alice)).await;
    let device = who["device_id"].as_str().unwrap();
    let connection = &v["devices"][device]["sessions"][0]["connections"][0];
    assert_eq!(connection["ip"], "127.0.0.1", "{v}");
    assert_err(&s.get("/_matrix/client/v3/admin/whois/@alice:hearth.test", Some(&bob)).await, 403, "M_FORBIDDEN");
    let (_, admin) = s.shared_secret_register("root", "correct horse battery", true).await;
    let root = admin["access_token"].as_str().unwrap();
    let (st, v) = s.get("/_matrix/client/v3/admin/whois/@alice:hearth.test", Some(root)).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["devices"][device].is_object());
    assert_err(&s.get("/_matrix/client/v3/admin/whois/@nobody:hearth.test", Some(root)).await, 404, "M_NOT_FOUND");

    // The app a device was last seen with: its User-Agent, from its first request on.
    let (_, login) = s
        .post("/_matrix/client/v3/login", None, json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"}, "password": "password1"}))
        .await;
    let (token, phone) = (login["access_token"].as_str().unwrap(), login["device_id"].as_str().unwrap());
    let resp = s
        .http
        .get(format!("{}/_matrix/client/v3/account/whoami", s.base))
        .bearer_auth(token)
        .header("User-Agent", "Element X/1.0 (iPhone)")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, v) = s.get("/_matrix/client/v3/admin/whois/@alice:hearth.test", Some(root)).await;
    assert_eq!(v["devices"][phone]["sessions"][0]["connections"][0]["user_agent"], "Element X/1.0 (iPhone)", "{v}");
}

/// Sending the state a room already has, or joining a room one is in, makes no new event: the
/// answer is the event already there (Synapse does the same), and the timeline stays quiet.
#[tokio::test]
async fn repeated_state_and_repeated_joins_make_no_new_event() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    let topic = format!("/_matrix/client/v3/rooms/{r}/state/m.room.topic/");
    let (_, first) = s.put(&topic, Some(&alice), json!({"topic": "tea"})).await;
    let (_, again) = s.put(&topic, Some(&alice), json!({"topic": "tea"})).await;
    assert_eq!(first["event_id"], again["event_id"], "the same topic again is the same event");
    let (_, changed) = s.put(&topic, Some(&alice), json!({"topic": "coffee"})).await;
    assert_ne!(first["event_id"], changed["event_id"], "a new topic is a new event");

    let (st, _) = s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200);
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&bob)).await;
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await;
    assert_eq!(st, 200, "joining again is fine");
    let (_, sync) = s.get(&format!("/_matrix/client/v3/sync?since={since}&timeout=0"), Some(&bob)).await;
    let events = sync["rooms"]["join"][&r]["timeline"]["events"].as_array().cloned().unwrap_or_default();
    assert!(events.is_empty(), "no new member event: {events:?}");
}

/// A room everyone left cannot be joined (there is no one to let the user in); an unknown room
/// cannot be upgraded.
#[tokio::test]
async fn joining_an_empty_room_and_upgrading_an_unknown_one_are_not_found() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({"preset": "public_chat"})).await;
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{r}/leave"), Some(&alice), json!({})).await.0, 200);
    assert_err(&s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await, 404, "M_NOT_FOUND");
    let upgrade = s
        .post("/_matrix/client/v3/rooms/!nosuchroom:hearth.test/upgrade", Some(&alice), json!({"new_version": "12"}))
        .await;
    assert_err(&upgrade, 404, "M_NOT_FOUND");
}

/// Room previews: anyone may read the state and the members of a world-readable room.
/// Former members read the state and the members as they were when they left, but not who is
/// in the room now.
#[tokio::test]
async fn previews_and_former_members_read_what_the_spec_allows() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let open = room(
        &s,
        &alice,
        json!({"preset": "public_chat", "name": "Open", "initial_state": [{"type": "m.room.history_visibility", "content": {"history_visibility": "world_readable"}}]}),
    )
    .await;
    let (st, state) = s.get(&format!("/_matrix/client/v3/rooms/{open}/state"), Some(&bob)).await;
    assert_eq!(st, 200, "{state}");
    assert!(state.as_array().unwrap().iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Open"));
    let (st, name) = s.get(&format!("/_matrix/client/v3/rooms/{open}/state/m.room.name/"), Some(&bob)).await;
    assert_eq!((st.as_u16(), name), (200, json!({"name": "Open"})));
    let (st, joined) = s.get(&format!("/_matrix/client/v3/rooms/{open}/joined_members"), Some(&bob)).await;
    assert_eq!(st, 200, "{joined}");
    assert!(joined["joined"]["@alice:hearth.test"].is_object(), "{joined}");
    let (st, members) = s.get(&format!("/_matrix/client/v3/rooms/{open}/members"), Some(&bob)).await;
    assert_eq!(st, 200, "{members}");

    // A shared-history room: Carol is kept out, Bob leaves and then the room changes.
    let shared = room(&s, &alice, json!({"preset": "public_chat", "name": "Before"})).await;
    assert_err(&s.get(&format!("/_matrix/client/v3/rooms/{shared}/state"), Some(&carol)).await, 403, "M_FORBIDDEN");
    assert_err(
        &s.get(&format!("/_matrix/client/v3/rooms/{shared}/joined_members"), Some(&carol)).await,
        403,
        "M_FORBIDDEN",
    );
    s.post(&format!("/_matrix/client/v3/join/{shared}"), Some(&bob), json!({})).await;
    s.post(&format!("/_matrix/client/v3/rooms/{shared}/leave"), Some(&bob), json!({})).await;
    s.put(&format!("/_matrix/client/v3/rooms/{shared}/state/m.room.name/"), Some(&alice), json!({"name": "After"}))
        .await;
    s.post(&format!("/_matrix/client/v3/join/{shared}"), Some(&carol), json!({})).await;

    let (st, name) = s.get(&format!("/_matrix/client/v3/rooms/{shared}/state/m.room.name/"), Some(&bob)).await;
    assert_eq!((st.as_u16(), name), (200, json!({"name": "Before"})), "the name as Bob left it");
    let (st, state) = s.get(&format!("/_matrix/client/v3/rooms/{shared}/state"), Some(&bob)).await;
    assert_eq!(st, 200);
    let bobs = state.as_array().unwrap().iter().find(|e| e["state_key"] == "@bob:hearth.test").cloned().unwrap();
    assert_eq!(bobs["content"]["membership"], "leave", "the state includes his own leave");
    let (st, members) = s.get(&format!("/_matrix/client/v3/rooms/{shared}/members"), Some(&bob)).await;
    assert_eq!(st, 200, "{members}");
    let who: Vec<&str> =
        members["chunk"].as_array().unwrap().iter().map(|e| e["state_key"].as_str().unwrap()).collect();
    assert!(who.contains(&"@alice:hearth.test") && !who.contains(&"@carol:hearth.test"), "{who:?}");
    assert_err(
        &s.get(&format!("/_matrix/client/v3/rooms/{shared}/joined_members"), Some(&bob)).await,
        403,
        "M_FORBIDDEN",
    );
}

/// With `user_directory.search_all_users`, every user of the server is found.
#[tokio::test]
async fn the_whole_directory_can_be_opened_by_configuration() {
    let s = TestServer::start_with(|c| c.user_directory.search_all_users = true).await;
    let alice = s.user("alice").await;
    s.user("alfred").await;
    let (_, v) = s
        .post("/_matrix/client/v3/user_directory/search", Some(&alice), json!({"search_term": "alf", "limit": 10}))
        .await;
    assert_eq!(v["results"][0]["user_id"], "@alfred:hearth.test", "{v}");
}

/// No email or SMS is sent and no identity server is asked: accounts have no 3PIDs, and every
/// way to add one ends as the spec says for an address that was never validated.
#[tokio::test]
async fn third_party_identifiers_answer_as_a_server_without_email() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let (st, v) = s.get("/_matrix/client/v3/account/3pid", Some(&alice)).await;
    assert_eq!((st.as_u16(), v), (200, json!({"threepids": []})));
    for path in [
        "/_matrix/client/v3/register/email/requestToken",
        "/_matrix/client/v3/account/password/email/requestToken",
        "/_matrix/client/v3/account/3pid/email/requestToken",
    ] {
        let body = json!({"client_secret": "secret", "email": "a@example.org", "send_attempt": 1});
        assert_err(&s.post(path, Some(&alice), body).await, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED");
    }
    // Adding asks for the password first (user-interactive authentication), then finds no
    // validated session.
    let add = json!({"client_secret": "secret", "sid": "sid"});
    let (st, v) = s.post("/_matrix/client/v3/account/3pid/add", Some(&alice), add.clone()).await;
    assert_eq!(st, 401, "{v}");
    let session = v["session"].as_str().unwrap();
    let mut with_auth = add;
    with_auth["auth"] = json!({"type": "m.login.password", "session": session, "password": "password1",
        "identifier": {"type": "m.id.user", "user": "alice"}});
    assert_err(
        &s.post("/_matrix/client/v3/account/3pid/add", Some(&alice), with_auth).await,
        400,
        "M_THREEPID_AUTH_FAILED",
    );
    let (st, v) = s
        .post(
            "/_matrix/client/v3/account/3pid/delete",
            Some(&alice),
            json!({"medium": "email", "address": "a@example.org"}),
        )
        .await;
    assert_eq!((st.as_u16(), v), (200, json!({"id_server_unbind_result": "no-support"})));
}

/// Application-service endpoints refuse ordinary users (no bridge is registered).
#[tokio::test]
async fn appservice_endpoints_refuse_ordinary_tokens() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;
    assert_err(&s.post("/_matrix/client/v1/appservice/bridge/ping", Some(&alice), json!({})).await, 403, "M_FORBIDDEN");
    let path = format!("/_matrix/client/v3/directory/list/appservice/irc/{r}");
    assert_err(&s.put(&path, Some(&alice), json!({"visibility": "public"})).await, 403, "M_FORBIDDEN");
    let (_, v) = s.get("/_matrix/client/v3/publicRooms", None).await;
    assert_eq!(v["chunk"], json!([]), "nothing was published");
}

/// The legacy GET /events/{eventId}: the event for someone who may see it, 404 for others.
#[tokio::test]
async fn an_event_can_be_fetched_by_id_alone_when_visible() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({})).await;
    let (_, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{r}/send/m.room.message/1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "hello"}),
        )
        .await;
    let id = sent["event_id"].as_str().unwrap();
    let (st, e) = s.get(&format!("/_matrix/client/v3/events/{id}"), Some(&alice)).await;
    assert_eq!(st, 200, "{e}");
    assert_eq!((e["content"]["body"].as_str(), e["room_id"].as_str()), (Some("hello"), Some(r.as_str())));
    assert_err(&s.get(&format!("/_matrix/client/v3/events/{id}"), Some(&bob)).await, 404, "M_NOT_FOUND");
}

/// /.well-known/matrix/support names the server's admins (and the help page when configured);
/// a server with neither answers 404, as the spec says.
#[tokio::test]
async fn support_contacts_are_the_admins() {
    let s = TestServer::start().await;
    assert_err(&s.get("/.well-known/matrix/support", None).await, 404, "M_NOT_FOUND");
    s.shared_secret_register("root", "correct horse battery", true).await;
    let (st, v) = s.get("/.well-known/matrix/support", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["contacts"], json!([{"matrix_id": "@root:hearth.test", "role": "m.role.admin"}]));
    assert_err(&s.get("/.well-known/matrix/policy_server", None).await, 404, "M_NOT_FOUND");

    let s = TestServer::start_with(|c| c.support_page = Some("https://example.org/help".into())).await;
    let (st, v) = s.get("/.well-known/matrix/support", None).await;
    assert_eq!((st.as_u16(), v), (200, json!({"support_page": "https://example.org/help"})));
}

/// TURN credentials: none without a TURN server; with coturn's shared secret, credentials of
/// the user's own that expire; guests only when allowed.
#[tokio::test]
async fn turn_credentials_follow_the_configuration() {
    let s = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let alice = s.user("alice").await;
    let (st, v) = s.get("/_matrix/client/v3/voip/turnServer", Some(&alice)).await;
    assert_eq!((st.as_u16(), v), (200, json!({})));

    let s = TestServer::start_with(|c| {
        c.allow_guest_access = true;
        c.turn_uris = vec!["turn:127.0.0.1:3478?transport=udp".into()];
        c.turn_shared_secret = Some("coturn-secret".into());
        c.turn_allow_guests = false;
    })
    .await;
    let alice = s.user("alice").await;
    let (st, v) = s.get("/_matrix/client/v3/voip/turnServer", Some(&alice)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["uris"], json!(["turn:127.0.0.1:3478?transport=udp"]));
    assert_eq!(v["ttl"], 3600);
    let username = v["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, "@alice:hearth.test");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(expiry > now + 3500 && expiry <= now + 3601, "{expiry} vs {now}");
    assert!(!v["password"].as_str().unwrap().is_empty());
    let (_, guest) = s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await;
    let guest = guest["access_token"].as_str().unwrap();
    assert_err(&s.get("/_matrix/client/v3/voip/turnServer", Some(guest)).await, 403, "M_GUEST_ACCESS_FORBIDDEN");
}

/// Widgets and Element Call: a user's OpenID token tells a third party who they are through
/// the federation API, for an hour, and only for them.
#[tokio::test]
async fn openid_tokens_identify_their_user_to_a_third_party() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let path = "/_matrix/client/v3/user/@alice:hearth.test/openid/request_token";
    let (st, v) = s.post(path, Some(&alice), json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["token_type"].as_str(), v["matrix_server_name"].as_str()), (Some("Bearer"), Some("hearth.test")));
    assert_eq!(v["expires_in"], 3600);
    let token = v["access_token"].as_str().unwrap();
    let (st, info) = s.get(&format!("/_matrix/federation/v1/openid/userinfo?access_token={token}"), None).await;
    assert_eq!((st.as_u16(), info), (200, json!({"sub": "@alice:hearth.test"})));
    let unknown = s.get("/_matrix/federation/v1/openid/userinfo?access_token=nope", None).await;
    assert_err(&unknown, 401, "M_UNKNOWN_TOKEN");
    // Not the user's access token, and not for someone else.
    let with_access = s.get(&format!("/_matrix/federation/v1/openid/userinfo?access_token={alice}"), None).await;
    assert_err(&with_access, 401, "M_UNKNOWN_TOKEN");
    let bob = s.user("bob").await;
    assert_err(&s.post(path, Some(&bob), json!({})).await, 403, "M_FORBIDDEN");
    // A deactivated account's tokens stop working.
    let (st, first) = s.post("/_matrix/client/v3/account/deactivate", Some(&alice), json!({})).await;
    assert_eq!(st, 401, "{first}");
    let auth = json!({"type": "m.login.password", "session": first["session"], "password": "password1",
        "identifier": {"type": "m.id.user", "user": "alice"}});
    assert_eq!(s.post("/_matrix/client/v3/account/deactivate", Some(&alice), json!({"auth": auth})).await.0, 200);
    let after = s.get(&format!("/_matrix/federation/v1/openid/userinfo?access_token={token}"), None).await;
    assert_err(&after, 401, "M_UNKNOWN_TOKEN");
}

/// /context's `limit` counts the events on both sides together (the smaller half before).
#[tokio::test]
async fn context_limit_is_shared_between_before_and_after() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({})).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let (_, v) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{r}/send/m.room.message/c{i}"),
                Some(&alice),
                json!({"msgtype": "m.text", "body": format!("m{i}")}),
            )
            .await;
        ids.push(v["event_id"].as_str().unwrap().to_owned());
    }
    let count = |v: &Value, k: &str| v[k].as_array().map_or(0, Vec::len);
    for (limit, before, after) in [(0, 0, 0), (1, 0, 1), (2, 1, 1), (3, 1, 2)] {
        let (st, v) =
            s.get(&format!("/_matrix/client/v3/rooms/{r}/context/{}?limit={limit}", ids[3]), Some(&alice)).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["event"]["event_id"], ids[3].as_str(), "the event itself always comes");
        assert_eq!((count(&v, "events_before"), count(&v, "events_after")), (before, after), "limit {limit}");
    }
}

/// Deleting an alias the room advertises takes it out of `m.room.canonical_alias`; a room
/// moderator may delete aliases others made, an ordinary member may not.
#[tokio::test]
async fn deleting_a_published_alias_updates_the_canonical_alias() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let carol = s.user("carol").await;
    let r = room(&s, &alice, json!({"preset": "public_chat", "room_alias_name": "main"})).await;
    s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await;
    s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&carol), json!({})).await;
    let (st, v) =
        s.put("/_matrix/client/v3/directory/room/%23spare:hearth.test", Some(&bob), json!({"room_id": r})).await;
    assert_eq!(st, 200, "{v}");
    let canonical = format!("/_matrix/client/v3/rooms/{r}/state/m.room.canonical_alias/");
    let (st, v) = s
        .put(&canonical, Some(&alice), json!({"alias": "#main:hearth.test", "alt_aliases": ["#spare:hearth.test"]}))
        .await;
    assert_eq!(st, 200, "{v}");

    // Carol (a member without power) cannot delete Bob's alias; Alice (the room's admin) can.
    let spare = "/_matrix/client/v3/directory/room/%23spare:hearth.test";
    assert_err(&s.delete_call(spare, Some(&carol)).await, 403, "M_FORBIDDEN");
    assert_eq!(s.delete_call(spare, Some(&alice)).await.0, 200);
    let (_, v) = s.get(&canonical, Some(&alice)).await;
    assert_eq!(v, json!({"alias": "#main:hearth.test", "alt_aliases": []}));
    assert_eq!(s.delete_call("/_matrix/client/v3/directory/room/%23main:hearth.test", Some(&alice)).await.0, 200);
    let (_, v) = s.get(&canonical, Some(&alice)).await;
    assert_eq!(v, json!({"alt_aliases": []}));
    assert_err(&s.get("/_matrix/client/v3/directory/room/%23main:hearth.test", None).await, 404, "M_NOT_FOUND");
}

/// A canonical alias must be an alias of this room (spec: the server checks it).
#[tokio::test]
async fn a_canonical_alias_must_lead_to_the_room() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let r = room(&s, &alice, json!({"room_alias_name": "mine"})).await;
    room(&s, &alice, json!({"room_alias_name": "other"})).await;
    let path = format!("/_matrix/client/v3/rooms/{r}/state/m.room.canonical_alias/");
    assert_err(&s.put(&path, Some(&alice), json!({"alias": "#nosuch:hearth.test"})).await, 400, "M_BAD_ALIAS");
    assert_err(
        &s.put(&path, Some(&alice), json!({"alias": "#mine:hearth.test", "alt_aliases": ["#other:hearth.test"]})).await,
        400,
        "M_BAD_ALIAS",
    );
    assert_err(&s.put(&path, Some(&alice), json!({"alt_aliases": ["not an alias"]})).await, 400, "M_INVALID_PARAM");
    let (st, v) = s
        .put(&path, Some(&alice), json!({"alias": "#mine:hearth.test", "alt_aliases": ["#far:elsewhere.example"]}))
        .await;
    assert_eq!(st, 200, "an alias of another server cannot be checked yet and passes: {v}");
    let (_, v) = s.get(&path, Some(&alice)).await;
    assert_eq!(v["alias"], "#mine:hearth.test", "the refused ones changed nothing");
}

/// Guests (spec: "Guest access"): they join rooms whose guest access is `can_join` (by either
/// join path), read and talk there, may not join other rooms, and leave when a room stops
/// admitting guests.
#[tokio::test]
async fn a_guest_joins_a_can_join_room_and_leaves_when_it_closes() {
    let s = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let alice = s.user("alice").await;
    let (_, g) = s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await;
    let guest = g["access_token"].as_str().unwrap().to_owned();
    let guest_id = g["user_id"].as_str().unwrap().to_owned();
    let open = room(
        &s,
        &alice,
        json!({"preset": "public_chat", "initial_state": [{"type": "m.room.guest_access", "content": {"guest_access": "can_join"}}]}),
    )
    .await;
    let closed = room(&s, &alice, json!({"preset": "public_chat"})).await;

    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{open}/join"), Some(&guest), json!({})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{open}"), Some(&guest), json!({})).await;
    assert_eq!(st, 200, "the other join path too: {v}");
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{open}/send/m.room.message/g1"),
            Some(&guest),
            json!({"msgtype": "m.text", "body": "hi from a guest"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, msgs) = s.get(&format!("/_matrix/client/v3/rooms/{open}/messages?dir=b"), Some(&alice)).await;
    assert!(msgs["chunk"].as_array().unwrap().iter().any(|e| e["content"]["body"] == "hi from a guest"));

    assert_err(
        &s.post(&format!("/_matrix/client/v3/join/{closed}"), Some(&guest), json!({})).await,
        403,
        "M_GUEST_ACCESS_FORBIDDEN",
    );

    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{open}/state/m.room.guest_access/"),
            Some(&alice),
            json!({"guest_access": "forbidden"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (_, member) =
        s.get(&format!("/_matrix/client/v3/rooms/{open}/state/m.room.member/{guest_id}"), Some(&alice)).await;
    assert_eq!(member["membership"], "leave", "the guest was made to leave: {member}");
    let (_, joined) = s.get(&format!("/_matrix/client/v3/rooms/{open}/joined_members"), Some(&alice)).await;
    assert!(joined["joined"].get(&guest_id).is_none(), "{joined}");
}

/// The push rules API's partial paths answer as Synapse does (a listing with the trailing slash,
/// 400 M_UNRECOGNIZED without), and rule IDs may hold any character but `/` and `\`.
#[tokio::test]
async fn push_rule_paths_and_rule_ids() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let base = "/_matrix/client/v3/pushrules";
    let (st, all) = s.get(&format!("{base}/"), Some(&alice)).await;
    assert_eq!(st, 200, "{all}");
    assert!(all["global"]["override"].is_array(), "{all}");
    let (st, global) = s.get(&format!("{base}/global/"), Some(&alice)).await;
    assert_eq!(st, 200, "{global}");
    assert_eq!(global, all["global"]);
    let (st, over) = s.get(&format!("{base}/global/override/"), Some(&alice)).await;
    assert_eq!(st, 200, "{over}");
    assert_eq!(over, all["global"]["override"]);
    let (st, content) = s.get(&format!("{base}/global/content/"), Some(&alice)).await;
    assert_eq!(st, 200, "{content}");
    assert!(content.is_array(), "{content}");
    for partial in ["", "/global", "/global/content", "/global/nonsense/"] {
        assert_err(&s.get(&format!("{base}{partial}"), Some(&alice)).await, 400, "M_UNRECOGNIZED");
    }

    // Any rule ID but slashes: an override rule named like an alias, a sender rule for a user.
    let rule =
        json!({"actions": ["notify"], "conditions": [{"kind": "event_match", "key": "content.body", "pattern": "x"}]});
    let (st, v) = s.put(&format!("{base}/global/override/%23a%3Aexample.com"), Some(&alice), rule.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.get(&format!("{base}/global/override/%23a%3Aexample.com"), Some(&alice)).await;
    assert_eq!((st.as_u16(), v["rule_id"].as_str()), (200, Some("#a:example.com")), "{v}");
    // Room and sender rules are named by the room or user they are about (spec: "Push Rules").
    let (st, v) = s.put(&format!("{base}/global/room/%21r%3Aexample.com"), Some(&alice), json!({"actions": []})).await;
    assert_eq!(st, 200, "{v}");
    let (_, rooms) = s.get(&format!("{base}/global/room/"), Some(&alice)).await;
    assert!(rooms.as_array().unwrap().iter().any(|r| r["rule_id"] == "!r:example.com"), "{rooms}");
    let (st, v) = s.put(&format!("{base}/global/room/%23a%3Aexample.com"), Some(&alice), json!({"actions": []})).await;
    assert_eq!(st, 400, "{v}");
    for bad in ["a%2Fb", "a%5Cb"] {
        assert_err(
            &s.put(&format!("{base}/global/override/{bad}"), Some(&alice), rule.clone()).await,
            400,
            "M_INVALID_PARAM",
        );
    }
    assert_err(
        &s.put(&format!("{base}/global/override/.mine"), Some(&alice), rule.clone()).await,
        400,
        "M_INVALID_PARAM",
    );
}

/// An upgraded room's create event points back at the old room and, where the room version lets
/// the new ID be known first (before v12), at the tombstone too, as Synapse writes it.
#[tokio::test]
async fn an_upgraded_room_names_its_predecessor_and_the_tombstone() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    for (from, to, names_tombstone) in [("10", "11", true), ("11", "12", false)] {
        let old = room(&s, &alice, json!({"room_version": from, "name": "Family"})).await;
        let (st, up) =
            s.post(&format!("/_matrix/client/v3/rooms/{old}/upgrade"), Some(&alice), json!({"new_version": to})).await;
        assert_eq!(st, 200, "{up}");
        let new = up["replacement_room"].as_str().unwrap();
        let (_, tomb) =
            s.get(&format!("/_matrix/client/v3/rooms/{old}/state/m.room.tombstone/?format=event"), Some(&alice)).await;
        assert_eq!(tomb["content"]["replacement_room"], new, "{tomb}");
        let (_, create) = s.get(&format!("/_matrix/client/v3/rooms/{new}/state/m.room.create/"), Some(&alice)).await;
        assert_eq!(create["room_version"], to, "{create}");
        assert_eq!(create["predecessor"]["room_id"], old.as_str(), "{create}");
        if names_tombstone {
            assert_eq!(create["predecessor"]["event_id"], tomb["event_id"], "{create} {tomb}");
        } else {
            assert!(create["predecessor"].get("event_id").is_none(), "{create}");
        }
        // The new room carries the old one's name, and Alice is in it.
        let (_, name) = s.get(&format!("/_matrix/client/v3/rooms/{new}/state/m.room.name/"), Some(&alice)).await;
        assert_eq!(name["name"], "Family");
    }
}

/// Every event served carries the reader's membership just after it (`unsigned.membership`,
/// spec 1.11), so clients can mark history from before they joined.
#[tokio::test]
async fn events_carry_the_readers_membership_at_them() {
    let s = TestServer::start().await;
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let r = room(&s, &alice, json!({"preset": "private_chat"})).await;
    let send = async |token: &str, body: &str| {
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{r}/send/m.room.message/{body}"),
                Some(token),
                json!({"msgtype": "m.text", "body": body}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        v["event_id"].as_str().unwrap().to_owned()
    };
    let before = send(&alice, "before").await;
    let (st, _) = s
        .post(&format!("/_matrix/client/v3/rooms/{r}/invite"), Some(&alice), json!({"user_id": "@bob:hearth.test"}))
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{r}"), Some(&bob), json!({})).await.0, 200);
    let after = send(&alice, "after").await;

    let membership_of = |events: &Value| -> Vec<(String, String)> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.message" || e["state_key"] == "@bob:hearth.test")
            .map(|e| {
                let what = e["content"]["body"].as_str().or(e["content"]["membership"].as_str()).unwrap().to_owned();
                (what, e["unsigned"]["membership"].as_str().unwrap_or("none").to_owned())
            })
            .collect()
    };
    let expected: Vec<(String, String)> =
        [("before", "leave"), ("invite", "invite"), ("join", "join"), ("after", "join")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .into();
    let (_, msgs) = s.get(&format!("/_matrix/client/v3/rooms/{r}/messages?dir=f&limit=50"), Some(&bob)).await;
    assert_eq!(membership_of(&msgs["chunk"]), expected, "{msgs}");
    let (_, sync) = s.get("/_matrix/client/v3/sync?timeout=0", Some(&bob)).await;
    assert_eq!(membership_of(&sync["rooms"]["join"][&r]["timeline"]["events"]), expected, "{sync}");
    // Alice was there all along.
    let (_, msgs) = s.get(&format!("/_matrix/client/v3/rooms/{r}/messages?dir=f&limit=50"), Some(&alice)).await;
    assert!(membership_of(&msgs["chunk"]).iter().all(|(_, m)| m == "join"), "{msgs}");
    // Single events and context too.
    let (_, one) = s.get(&format!("/_matrix/client/v3/rooms/{r}/event/{before}"), Some(&bob)).await;
    assert_eq!(one["unsigned"]["membership"], "leave", "{one}");
    let (_, ctx) = s.get(&format!("/_matrix/client/v3/rooms/{r}/context/{after}?limit=10"), Some(&bob)).await;
    assert_eq!(ctx["event"]["unsigned"]["membership"], "join", "{ctx}");
    assert!(ctx["events_before"].as_array().unwrap().iter().all(|e| e["unsigned"]["membership"].is_string()), "{ctx}");
}

/// The legacy snapshot and stream endpoints, as clients use them to peek into a world-readable
/// room and as guests follow one (spec: "Room Previews"; `/initialSync`, `/events`).
#[tokio::test]
async fn peeking_and_the_legacy_initial_sync_and_event_stream() {
    let s = std::sync::Arc::new(TestServer::start_with(|c| c.allow_guest_access = true).await);
    let alice = s.user("alice").await;
    let bob = s.user("bob").await;
    let open = room(
        &s,
        &alice,
        json!({"preset": "public_chat", "initial_state": [
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "world_readable"}}]}),
    )
    .await;
    let closed = room(&s, &alice, json!({"preset": "private_chat"})).await;
    let say = async |r: &str, body: &str| {
        let path = format!("/_matrix/client/v3/rooms/{r}/send/m.room.message/{body}");
        assert_eq!(s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": body})).await.0, 200);
    };
    for body in ["one", "two", "three"] {
        say(&open, body).await;
    }
    say(&closed, "secret").await;
    let bodies = |events: &Value| -> Vec<String> {
        events.as_array().unwrap().iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect()
    };

    // Bob peeks: the latest messages and the current state, without a membership.
    let (st, peek) = s.get(&format!("/_matrix/client/v3/rooms/{open}/initialSync?limit=2"), Some(&bob)).await;
    assert_eq!(st, 200, "{peek}");
    assert_eq!(bodies(&peek["messages"]["chunk"]), ["two", "three"], "{peek}");
    assert!(peek["state"].as_array().unwrap().iter().any(|e| e["type"] == "m.room.create"), "{peek}");
    assert_eq!(peek["room_id"], open.as_str());
    assert!(peek.get("membership").is_none(), "{peek}");
    assert_err(&s.get(&format!("/_matrix/client/v3/rooms/{closed}/initialSync"), Some(&bob)).await, 403, "M_FORBIDDEN");
    assert_err(
        &s.get(&format!("/_matrix/client/v3/events?room_id={closed}&timeout=0"), Some(&bob)).await,
        403,
        "M_FORBIDDEN",
    );

    // ... and follows it with /events from the snapshot's end, woken by the next message.
    let end = peek["messages"]["end"].as_str().unwrap().to_owned();
    let waiting = {
        let (s, bob, open) = (s.clone(), bob.clone(), open.clone());
        tokio::spawn(async move {
            s.get(&format!("/_matrix/client/v3/events?room_id={open}&from={end}&timeout=10000"), Some(&bob)).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    say(&open, "four").await;
    let (st, events) = waiting.await.unwrap();
    assert_eq!(st, 200, "{events}");
    assert_eq!(bodies(&events["chunk"]), ["four"], "{events}");
    let (_, nothing) = s
        .get(
            &format!("/_matrix/client/v3/events?room_id={open}&from={}&timeout=0", events["end"].as_str().unwrap()),
            Some(&bob),
        )
        .await;
    assert_eq!(nothing["chunk"], json!([]), "{nothing}");

    // A guest must name the room.
    let (_, guest) = s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await;
    let guest = guest["access_token"].as_str().unwrap();
    assert_eq!(s.get("/_matrix/client/v3/events?timeout=0", Some(guest)).await.0, 400);
    assert_eq!(s.get(&format!("/_matrix/client/v3/events?room_id={open}&timeout=0"), Some(guest)).await.0, 200);
    assert_eq!(s.get(&format!("/_matrix/client/v3/rooms/{open}/initialSync"), Some(guest)).await.0, 200);

    // Alice's /initialSync: her rooms with messages and state; an invite shows as the invite.
    let (_, invited) =
        s.post("/_matrix/client/v3/createRoom", Some(&bob), json!({"invite": ["@alice:hearth.test"]})).await;
    let (st, all) = s.get("/_matrix/client/v3/initialSync?limit=1", Some(&alice)).await;
    assert_eq!(st, 200, "{all}");
    let find = |id: &str| all["rooms"].as_array().unwrap().iter().find(|r| r["room_id"] == id).cloned().unwrap();
    assert_eq!(
        (find(&open)["membership"].as_str(), bodies(&find(&open)["messages"]["chunk"])),
        (Some("join"), vec!["four".to_owned()])
    );
    assert_eq!(bodies(&find(&closed)["messages"]["chunk"]), ["secret"]);
    let invite = find(invited["room_id"].as_str().unwrap());
    assert_eq!(
        (invite["membership"].as_str(), invite["invite"]["content"]["membership"].as_str()),
        (Some("invite"), Some("invite")),
        "{invite}"
    );
    assert!(all["end"].is_string(), "{all}");

    // Someone who left sees the room as it was when they left, and only with `archived`.
    assert_eq!(s.post(&format!("/_matrix/client/v3/join/{open}"), Some(&bob), json!({})).await.0, 200);
    assert_eq!(s.post(&format!("/_matrix/client/v3/rooms/{open}/leave"), Some(&bob), json!({})).await.0, 200);
    say(&open, "after bob left").await;
    let (_, mine) = s.get("/_matrix/client/v3/initialSync", Some(&bob)).await;
    assert!(!mine.to_string().contains(&open), "{mine}");
    let (_, archived) = s.get("/_matrix/client/v3/initialSync?archived=true", Some(&bob)).await;
    let left = archived["rooms"].as_array().unwrap().iter().find(|r| r["room_id"] == open.as_str()).unwrap();
    assert_eq!(left["membership"], "leave", "{left}");
    assert!(!left.to_string().contains("after bob left"), "{left}");
}

/// Guests use what the spec's guest list (and Synapse) allows them: the endpoints a client
/// calls at start, their display name (but no other profile field), and not account management.
#[tokio::test]
async fn guests_reach_what_the_guest_list_allows() {
    let s = TestServer::start_with(|c| c.allow_guest_access = true).await;
    let (_, g) = s.post("/_matrix/client/v3/register?kind=guest", None, json!({})).await;
    let (token, me) = (g["access_token"].as_str().unwrap(), g["user_id"].as_str().unwrap().to_owned());
    for path in ["/_matrix/client/versions", "/_matrix/client/v3/capabilities", "/_matrix/client/v3/publicRooms"] {
        let (st, v) = s.get(path, Some(token)).await;
        assert_eq!(st, 200, "{path}: {v}");
    }
    let name = format!("/_matrix/client/v3/profile/{me}/displayname");
    assert_eq!(s.put(&name, Some(token), json!({"displayname": "Visitor"})).await.0, 200);
    assert_eq!(s.get(&name, Some(token)).await.1["displayname"], "Visitor");
    let avatar = format!("/_matrix/client/v3/profile/{me}/avatar_url");
    assert_err(&s.put(&avatar, Some(token), json!({"avatar_url": "mxc://x/y"})).await, 403, "M_GUEST_ACCESS_FORBIDDEN");
    assert_err(&s.post("/_matrix/client/v3/createRoom", Some(token), json!({})).await, 403, "M_GUEST_ACCESS_FORBIDDEN");
}
