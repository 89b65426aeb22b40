//! Federation with a real Synapse (1.163.2 from PyPI) on this machine: each server with its own
//! name and a certificate from a test CA, reached over TLS on loopback only, in the private
//! network built by `tests/federation/run.sh` (which runs these tests; see its README).
//!
//! This slice: keys and request authentication. Each server fetches and checks the other's keys
//! (directly, and through the other as a notary), and signed requests go both ways (profile
//! queries); forged and unsigned requests are refused with nothing learned.

mod common;

use std::time::Duration;

use common::TestServer;
use hearth_server::config::RateLimit;
use reqwest::StatusCode;
use ruma::{
    ServerName,
    api::federation::authentication::XMatrix,
    serde::Base64,
    signatures::{Ed25519KeyPair, KeyPair},
};
use serde_json::{Value, json};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is set by tests/federation/run.sh"))
}

/// Hearth as hearth.test, where nginx (TLS on hearth.test:8448 and :443) forwards to it.
async fn hearth() -> (TestServer, hearth_server::Config) {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::test_config(dir.path());
    c.server_name = env("HEARTH_FED_SERVER_NAME").as_str().try_into().unwrap();
    let listen: std::net::SocketAddr = env("HEARTH_FED_LISTEN").parse().unwrap();
    c.listeners[0].port = listen.port();
    c.listeners[0].bind_addresses = vec![listen.ip()];
    c.listeners[0].x_forwarded = true;
    c.public_baseurl = Some(format!("https://{}", env("HEARTH_FED_SERVER_NAME")));
    c.federation_custom_ca_list = vec![env("HEARTH_FED_CA").into()];
    c.trusted_key_servers = Vec::new();
    // The other server lives on loopback, which the outbound policy refuses by default.
    c.ip_range_whitelist = vec!["127.0.0.0/8".to_owned()];
    for (_, rl) in c.rate_limits_mut() {
        *rl = RateLimit { per_second: 1000.0, burst_count: 1000.0 };
    }
    c.rc_federation.sleep_limit = 1000;
    c.rc_federation.reject_limit = 1000;
    let config = c.clone();
    (TestServer::start_in(dir, c).await, config)
}

/// An HTTP client that trusts the test CA (for the servers' TLS ports).
fn tls_client() -> reqwest::Client {
    let ca = std::fs::read(env("HEARTH_FED_CA")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn json_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})))
}

/// Registers a user on Synapse (open registration, m.login.dummy); returns the access token.
async fn synapse_user(name: &str) -> String {
    let http = reqwest::Client::new();
    let url = format!("{}/_matrix/client/v3/register", env("SYNAPSE_URL"));
    let body = json!({"username": name, "password": "password-long", "auth": {"type": "m.login.dummy"}});
    let (st, v) = json_of(http.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(st, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

async fn synapse_get(path: &str, token: &str) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    json_of(http.get(format!("{}{path}", env("SYNAPSE_URL"))).bearer_auth(token).send().await.unwrap()).await
}

async fn synapse_put(path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    json_of(http.put(format!("{}{path}", env("SYNAPSE_URL"))).bearer_auth(token).json(&body).send().await.unwrap())
        .await
}

/// One Hearth for every scenario: it must listen where nginx forwards, and Synapse remembers
/// its keys for the whole run, so its name and key stay the same throughout. The scenarios run
/// in order; a failure names its scenario.
#[tokio::test]
#[ignore = "needs Synapse, nginx and dnsmasq in a private network: tests/federation/run.sh"]
async fn hearth_and_synapse_federate() {
    let (mut s, config) = hearth().await;
    signed_profile_queries_go_both_ways(&s).await;
    each_server_fetches_and_vouches_for_the_others_keys(&s).await;
    unsigned_forged_and_misdirected_requests_are_refused(&s).await;
    a_synapse_user_joins_a_hearth_room_and_they_talk(&s).await;
    a_hearth_user_invites_a_synapse_user_to_a_private_room(&s).await;
    a_late_joiner_on_synapse_reads_the_history_from_hearth(&s).await;
    a_synapse_user_declines_an_invite_from_hearth(&s).await;
    a_hearth_user_joins_a_synapse_room_by_its_alias(&s).await;
    hearth_users_accept_and_decline_invites_from_synapse(&s).await;
    for version in ["12", "1"] {
        concurrent_state_changes_on_both_servers_converge(&s, version).await;
    }
    rooms_of_older_versions_on_synapse_work_too(&s).await;
    knocks_go_both_ways(&s).await;
    a_synapse_user_joins_a_restricted_hearth_room_through_a_room_they_are_in(&s).await;
    a_hearth_user_joins_a_restricted_synapse_room_through_a_room_they_are_in(&s).await;
    a_server_acl_keeps_synapse_out(&s).await;
    events_sent_while_hearth_was_down_arrive_when_it_is_back(&mut s, &config).await;
    // Last: it restarts Synapse under its own control, and stops it when it ends.
    messages_sent_while_synapse_is_down_arrive_in_order_when_it_is_back(&s).await;
}

/// A Hearth user joins a room made on Synapse (a v12 room, whose ID names no server) by its
/// alias: the alias is resolved by Synapse (`/query/directory`), the join goes through Synapse
/// (`make_join`/`send_join`), the room is usable at once (its name in /sync), messages go both
/// ways; the user leaves (Synapse sees it) and joins again by room ID through Synapse.
async fn a_hearth_user_joins_a_synapse_room_by_its_alias(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let rita = synapse_user("rita").await;
    let sam = s.user("sam").await;
    let sam_id = format!("@sam:{hearth_name}");
    let (st, v) = synapse_post(
        "/_matrix/client/v3/createRoom",
        &rita,
        json!({"preset": "public_chat", "name": "Family on Synapse", "room_alias_name": "family"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let (st, v) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/e1"),
        &rita,
        json!({"msgtype": "m.text", "body": "before Sam came"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");

    // The alias, as Hearth's users see it: Synapse's answer.
    let alias = common::urlencode(&format!("#family:{synapse}"));
    let (st, v) = s.get(&format!("/_matrix/client/v3/directory/room/{alias}"), Some(&sam)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["room_id"], json!(room), "{v}");
    assert!(v["servers"].as_array().unwrap().contains(&json!(synapse)), "{v}");
    // An alias Synapse does not have is not found (and not a server error).
    let missing = common::urlencode(&format!("#nothing-here:{synapse}"));
    let (st, v) = s.get(&format!("/_matrix/client/v3/directory/room/{missing}"), Some(&sam)).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (404, Some("M_NOT_FOUND")), "{v}");
    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{missing}"), Some(&sam), json!({})).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (404, Some("M_NOT_FOUND")), "{v}");

    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{alias}"), Some(&sam), json!({})).await;
    assert_eq!(st, 200, "Hearth could not join the Synapse room: {v}");
    assert_eq!(v["room_id"], json!(room), "{v}");
    // Usable at once: in /sync with its state (the name), Sam joined.
    let (st, sync) = s.get("/_matrix/client/v3/sync", Some(&sam)).await;
    assert_eq!(st, 200);
    let joined = &sync["rooms"]["join"][&room];
    let state: Vec<&Value> = joined["state"]["events"].as_array().unwrap().iter().collect();
    assert!(
        state.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Family on Synapse"),
        "the room's name is not in Sam's sync: {joined}"
    );
    assert!(
        state.iter().chain(joined["timeline"]["events"].as_array().unwrap().iter().collect::<Vec<_>>().iter()).any(
            |e| e["type"] == "m.room.member" && e["state_key"] == json!(sam_id) && e["content"]["membership"] == "join"
        ),
        "Sam's join is not in his sync: {joined}"
    );
    // Its history goes on before the join, on Synapse: the client is told it may page back.
    assert_eq!(joined["timeline"]["limited"], true, "{joined}");
    let (st, v) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.name/"), Some(&sam)).await;
    assert_eq!((st.as_u16(), &v["name"]), (200, &json!("Family on Synapse")), "{v}");
    let (_, v) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(&sam)).await;
    assert!(v["joined"].get(format!("@rita:{synapse}")).is_some(), "{v}");
    eventually(
        "Sam's join on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), &rita).await.1 },
        |v| v["joined"].get(&sam_id).is_some(),
    )
    .await;

    // Both ways.
    let (st, v) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/f1"),
            Some(&sam),
            json!({"msgtype": "m.text", "body": "hello from Hearth"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "Sam's message on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), &rita).await.1 },
        |v| bodies(v).last().map(String::as_str) == Some("hello from Hearth"),
    )
    .await;
    let (st, v) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/e2"),
        &rita,
        json!({"msgtype": "m.text", "body": "welcome, Sam"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let seen = eventually(
        "Rita's message on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), Some(&sam)).await.1 },
        |v| bodies(v).last().map(String::as_str) == Some("welcome, Sam"),
    )
    .await;
    // The history from before Sam came, fetched from Synapse (`/backfill`) as he paged back,
    // in order and back to the room's creation.
    assert_eq!(bodies(&seen), ["before Sam came", "hello from Hearth", "welcome, Sam"], "{seen}");
    let types: Vec<&str> = seen["chunk"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types.last(), Some(&"m.room.create"), "{seen}");
    assert!(types.contains(&"m.room.name"), "{seen}");

    // Sam leaves; Synapse hears of it.
    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{enc}/leave"), Some(&sam), json!({})).await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "Sam's leave on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), &rita).await.1 },
        |v| v["joined"].get(&sam_id).is_none(),
    )
    .await;
    // And comes back by room ID, through Synapse (no one on Hearth is in the room any more).
    let (st, v) = s
        .post(&format!("/_matrix/client/v3/join/{enc}?server_name={synapse}&via={synapse}"), Some(&sam), json!({}))
        .await;
    assert_eq!(st, 200, "Sam could not rejoin: {v}");
    eventually(
        "Sam's rejoin on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), &rita).await.1 },
        |v| v["joined"].get(&sam_id).is_some(),
    )
    .await;
    let (st, v) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/e3"),
        &rita,
        json!({"msgtype": "m.text", "body": "good to have you back"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "Rita's message after the rejoin on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), Some(&sam)).await.1 },
        |v| bodies(v).last().map(String::as_str) == Some("good to have you back"),
    )
    .await;
}

/// A Hearth room open to the members of another room (`restricted`, the way spaces share
/// rooms): a Synapse user in that room joins it, with a Hearth user vouching in the join
/// (`join_authorised_via_users_server`) and Hearth countersigning it; a Synapse user who is not
/// in the allowing room is refused.
async fn a_synapse_user_joins_a_restricted_hearth_room_through_a_room_they_are_in(s: &TestServer) {
    let opal = s.user("opal").await;
    let pia = synapse_user("pia").await;
    let quill = synapse_user("quill").await;
    let (allowing, allowing_enc) = public_room(s, &opal).await;
    synapse_joins(s, &opal, &allowing_enc, &pia, "pia").await;
    let (st, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&opal),
            json!({"preset": "private_chat", "room_version": "10", "name": "Members only",
                   "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {
                       "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": allowing}]}}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let pia_id = synapse_joins(s, &opal, &enc, &pia, "pia").await;
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/members"), Some(&opal)).await;
    let join = members["chunk"].as_array().unwrap().iter().find(|e| e["state_key"] == json!(pia_id)).unwrap().clone();
    assert_eq!(
        join["content"]["join_authorised_via_users_server"],
        json!(format!("@opal:{}", env("HEARTH_FED_SERVER_NAME"))),
        "{join}"
    );
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let (st, v) =
        synapse_post(&format!("/_matrix/client/v3/join/{enc}?server_name={hearth_name}"), &quill, json!({})).await;
    assert_eq!(st, 403, "a user in no allowing room got in: {v}");
}

/// The other way round: a Synapse user makes a room open to the members of another Synapse
/// room; a Hearth user in that room joins it through Synapse (whose user vouches for the join,
/// which Synapse countersigns and Hearth stores as the room's member event), and a Hearth user
/// in no allowing room is refused.
async fn a_hearth_user_joins_a_restricted_synapse_room_through_a_room_they_are_in(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let rhea = synapse_user("rhea").await;
    let sol = s.user("sol").await;
    let tam = s.user("tam").await;
    let (st, v) = synapse_post(
        "/_matrix/client/v3/createRoom",
        &rhea,
        json!({"preset": "public_chat", "room_version": "10", "name": "The family space"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let allowing = v["room_id"].as_str().unwrap().to_owned();
    let (st, v) = synapse_post(
        "/_matrix/client/v3/createRoom",
        &rhea,
        json!({"preset": "private_chat", "room_version": "10", "name": "Family only",
               "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {
                   "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": allowing}]}}]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let (st, v) = s
        .post(
            &format!("/_matrix/client/v3/join/{}?server_name={synapse}", common::urlencode(&allowing)),
            Some(&sol),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "joining the allowing room: {v}");
    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{enc}?server_name={synapse}"), Some(&sol), json!({})).await;
    assert_eq!(st, 200, "joining the restricted room through the allowing one: {v}");
    let sol_id = format!("@sol:{}", env("HEARTH_FED_SERVER_NAME"));
    let on_synapse = eventually(
        "Sol's join on Synapse",
        || async {
            synapse_get(
                &format!("/_matrix/client/v3/rooms/{enc}/state/m.room.member/{}", common::urlencode(&sol_id)),
                &rhea,
            )
            .await
            .1
        },
        |v| v["membership"] == "join",
    )
    .await;
    assert_eq!(on_synapse["join_authorised_via_users_server"], json!(format!("@rhea:{synapse}")), "{on_synapse}");
    let (st, v) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(&sol)).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["joined"].get(format!("@rhea:{synapse}")).is_some(), "{v}");
    let (st, v) = s.post(&format!("/_matrix/client/v3/join/{enc}?server_name={synapse}"), Some(&tam), json!({})).await;
    assert_eq!(st, 403, "a user in no allowing room got in: {v}");
}

/// Knocking across servers (`make_knock`/`send_knock`): a Hearth user knocks on a Synapse room
/// by alias (the knock shows in their /sync with the room's name), is let in (invited) and
/// joins; a Synapse user knocks on a Hearth room, which Hearth's member list shows, and is let in.
async fn knocks_go_both_ways(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let kai = synapse_user("kai").await;
    let lia = s.user("lia").await;
    let lia_id = format!("@lia:{hearth_name}");
    let (st, v) = synapse_post(
        "/_matrix/client/v3/createRoom",
        &kai,
        json!({"preset": "private_chat", "name": "Knock first", "room_alias_name": "knockfirst",
               "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let alias = common::urlencode(&format!("#knockfirst:{synapse}"));
    let (st, v) = s.post(&format!("/_matrix/client/v3/knock/{alias}"), Some(&lia), json!({"reason": "it's Lia"})).await;
    assert_eq!(st, 200, "Lia could not knock: {v}");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&lia)).await;
    let knock = &sync["rooms"]["knock"][&room]["knock_state"]["events"];
    assert!(
        knock
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Knock first")),
        "the knock is not in Lia's sync with the room's name: {sync}"
    );
    eventually(
        "Lia's knock on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.member/{lia_id}"), &kai).await.1 },
        |v| v["membership"] == "knock",
    )
    .await;
    let (st, v) =
        synapse_post(&format!("/_matrix/client/v3/rooms/{enc}/invite"), &kai, json!({"user_id": lia_id})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{enc}/join"), Some(&lia), json!({})).await;
    assert_eq!(st, 200, "Lia could not join once let in: {v}");
    eventually(
        "Lia in the room on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), &kai).await.1 },
        |v| v["joined"].get(&lia_id).is_some(),
    )
    .await;

    // The other way round.
    let mo = s.user("mo").await;
    let ned = synapse_user("ned").await;
    let ned_id = format!("@ned:{synapse}");
    let (st, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&mo),
            json!({"preset": "private_chat", "name": "Mo's room",
                   "initial_state": [{"type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let (st, v) = synapse_post(
        &format!("/_matrix/client/v3/knock/{enc}?server_name={hearth_name}&via={hearth_name}"),
        &ned,
        json!({}),
    )
    .await;
    assert_eq!(st, 200, "Synapse could not knock on the Hearth room: {v}");
    eventually(
        "Ned's knock on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/members"), Some(&mo)).await.1 },
        |v| {
            v["chunk"].as_array().is_some_and(|c| {
                c.iter().any(|e| e["state_key"] == json!(ned_id) && e["content"]["membership"] == "knock")
            })
        },
    )
    .await;
    let (st, v) =
        s.post(&format!("/_matrix/client/v3/rooms/{enc}/invite"), Some(&mo), json!({"user_id": ned_id})).await;
    assert_eq!(st, 200, "{v}");
    synapse_joins(s, &mo, &enc, &ned, "ned").await;
}

/// Rooms of older versions made on Synapse (v1: event IDs made by their server; v6; v10) are
/// joined from Hearth and carry messages both ways, like Synapse's default v12.
async fn rooms_of_older_versions_on_synapse_work_too(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let yara = synapse_user("yara").await;
    let zeb = s.user("zeb").await;
    for version in ["1", "6", "10"] {
        let (st, v) = synapse_post(
            "/_matrix/client/v3/createRoom",
            &yara,
            json!({"preset": "public_chat", "room_version": version, "room_alias_name": format!("v{version}")}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        let room = v["room_id"].as_str().unwrap().to_owned();
        let enc = common::urlencode(&room);
        let alias = common::urlencode(&format!("#v{version}:{synapse}"));
        let (st, v) = s.post(&format!("/_matrix/client/v3/join/{alias}"), Some(&zeb), json!({})).await;
        assert_eq!(st, 200, "joining a v{version} room: {v}");
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/z{version}"),
                Some(&zeb),
                json!({"msgtype": "m.text", "body": format!("hello v{version}")}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        eventually(
            &format!("Zeb's message in the v{version} room on Synapse"),
            || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), &yara).await.1 },
            |v| bodies(v).last().map(String::as_str) == Some(&*format!("hello v{version}")),
        )
        .await;
        let (st, v) = synapse_put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/y{version}"),
            &yara,
            json!({"msgtype": "m.text", "body": format!("answer v{version}")}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        eventually(
            &format!("Yara's message in the v{version} room on Hearth"),
            || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), Some(&zeb)).await.1 },
            |v| bodies(v).last().map(String::as_str) == Some(&*format!("answer v{version}")),
        )
        .await;
    }
}

/// The room's topic and name are changed on both servers at the same moment (a fork of the
/// room's graph): once each has the other's events, both have the same current state (state
/// resolution v2.1 in a v12 room, v1 in a v1 room, on both sides), and messages after it reach
/// both.
async fn concurrent_state_changes_on_both_servers_converge(s: &TestServer, version: &str) {
    let wendy_name = format!("wendy{version}");
    let xavier_name = format!("xavier{version}");
    let wendy = s.user(&wendy_name).await;
    let xavier = synapse_user(&xavier_name).await;
    // Xavier (of Synapse) may change the name and topic as Wendy, the creator, may (in a v12
    // room creators are not listed in `users`; in older ones they must be).
    let mut users = json!({format!("@{xavier_name}:{}", env("SYNAPSE_SERVER_NAME")): 50});
    if version != "12" {
        users[format!("@{wendy_name}:{}", env("HEARTH_FED_SERVER_NAME"))] = json!(100);
    }
    let (st, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&wendy),
            json!({"preset": "public_chat", "room_version": version, "power_level_content_override": {"users": users}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    synapse_joins(s, &wendy, &enc, &xavier, &xavier_name).await;

    for round in 0..3 {
        let topic = format!("/_matrix/client/v3/rooms/{enc}/state/m.room.topic/");
        let name = format!("/_matrix/client/v3/rooms/{enc}/state/m.room.name/");
        let (a, b, c, d) = tokio::join!(
            s.put(&topic, Some(&wendy), json!({"topic": format!("Hearth's topic {round}")})),
            synapse_put(&topic, &xavier, json!({"topic": format!("Synapse's topic {round}")})),
            s.put(&name, Some(&wendy), json!({"name": format!("Hearth's name {round}")})),
            synapse_put(&name, &xavier, json!({"name": format!("Synapse's name {round}")})),
        );
        for (st, v) in [a, b, c, d] {
            assert_eq!(st, 200, "{v}");
        }
    }
    // Each side says something after, so each has the other's branch merged.
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/w1"),
            Some(&wendy),
            json!({"msgtype": "m.text", "body": "from Hearth after"}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/x1"),
        &xavier,
        json!({"msgtype": "m.text", "body": "from Synapse after"}),
    )
    .await;
    assert_eq!(st, 200);
    let state_of = |kind: &'static str, field: &'static str| {
        let enc = enc.clone();
        let (wendy, xavier) = (wendy.clone(), xavier.clone());
        async move {
            let (_, h) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/state/{kind}/"), Some(&wendy)).await;
            let (_, y) = synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/state/{kind}/"), &xavier).await;
            json!({"hearth": h[field], "synapse": y[field]})
        }
    };
    for (kind, field) in [("m.room.topic", "topic"), ("m.room.name", "name")] {
        let both = eventually(
            &format!("the same {kind} on both servers (v{version})"),
            || state_of(kind, field),
            |v| v["hearth"] == v["synapse"] && v["hearth"].is_string(),
        )
        .await;
        // Version 1's resolution goes by depth and may pick an older change; v2 by time.
        if version == "12" {
            assert!(both["hearth"].as_str().unwrap().ends_with(" 2"), "an older {kind} won: {both}");
        }
    }
    eventually(
        "both messages on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=50"), Some(&wendy)).await.1 },
        |v| {
            let b = bodies(v);
            b.contains(&"from Hearth after".to_owned()) && b.contains(&"from Synapse after".to_owned())
        },
    )
    .await;
    eventually(
        "both messages on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=50"), &xavier).await.1 },
        |v| {
            let b = bodies(v);
            b.contains(&"from Hearth after".to_owned()) && b.contains(&"from Synapse after".to_owned())
        },
    )
    .await;
}

/// A Synapse user (token `inviter`) makes a private room named `name` and invites the Hearth
/// user `localpart`, who sees the invite in /sync with the room's name and the inviter; returns
/// (room ID, the inviter's user ID).
async fn synapse_invites(
    s: &TestServer,
    inviter: &str,
    invitee: &str,
    localpart: &str,
    name: &str,
) -> (String, String) {
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let (st, v) =
        synapse_post("/_matrix/client/v3/createRoom", inviter, json!({"preset": "private_chat", "name": name})).await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let (st, v) = synapse_post(
        &format!("/_matrix/client/v3/rooms/{}/invite", common::urlencode(&room)),
        inviter,
        json!({"user_id": format!("@{localpart}:{hearth_name}")}),
    )
    .await;
    assert_eq!(st, 200, "Synapse could not invite {localpart}: {v}");
    let (_, me) = synapse_get("/_matrix/client/v3/account/whoami", inviter).await;
    let inviter_id = me["user_id"].as_str().unwrap().to_owned();
    let (st, sync) = s.get("/_matrix/client/v3/sync", Some(invitee)).await;
    assert_eq!(st, 200);
    let invite = &sync["rooms"]["invite"][&room]["invite_state"]["events"];
    let events = invite.as_array().unwrap_or_else(|| panic!("{localpart} has no invite in /sync: {sync}"));
    assert!(
        events.iter().any(|e| e["type"] == "m.room.name" && e["content"]["name"] == name),
        "the invite does not carry the room's name: {invite}"
    );
    assert!(
        events.iter().any(|e| e["type"] == "m.room.member"
            && e["content"]["membership"] == "invite"
            && e["sender"] == json!(inviter_id)),
        "the invite does not say who invited: {invite}"
    );
    (room, inviter_id)
}

/// Synapse users invite Hearth users (`/invite` v2, countersigned here): the invite shows in
/// /sync with the room's name and inviter; one user accepts (joined through the inviting
/// server, no `via` needed) and they talk, the other declines (`make_leave`/`send_leave`
/// through Synapse, which sees the leave); an invite for a user Hearth does not have is refused.
async fn hearth_users_accept_and_decline_invites_from_synapse(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let tess = synapse_user("tess").await;
    let uri = s.user("uri").await;
    let vera = s.user("vera").await;
    let (room, _) = synapse_invites(s, &tess, &uri, "uri", "Tess's corner").await;
    let enc = common::urlencode(&room);

    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{enc}/join"), Some(&uri), json!({})).await;
    assert_eq!(st, 200, "Uri could not accept the invite: {v}");
    let uri_id = format!("@uri:{hearth_name}");
    eventually(
        "Uri's join on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), &tess).await.1 },
        |v| v["joined"].get(&uri_id).is_some(),
    )
    .await;
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&uri)).await;
    assert!(sync["rooms"]["join"].get(&room).is_some(), "{sync}");
    assert!(sync["rooms"]["invite"].get(&room).is_none(), "{sync}");
    let (st, v) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/t1"),
        &tess,
        json!({"msgtype": "m.text", "body": "glad you came"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "Tess's message on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), Some(&uri)).await.1 },
        |v| bodies(v).last().map(String::as_str) == Some("glad you came"),
    )
    .await;

    // Vera declines; Synapse has her leave.
    let (st, v) = synapse_post(
        &format!("/_matrix/client/v3/rooms/{enc}/invite"),
        &tess,
        json!({"user_id": format!("@vera:{hearth_name}")}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&vera)).await;
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    // Vera's server is in the room (Uri): the invite arrived as an event of the room.
    let invite_room = eventually(
        "Vera's invite",
        || async { s.get("/_matrix/client/v3/sync", Some(&vera)).await.1 },
        |v| v["rooms"]["invite"].get(&room).is_some(),
    )
    .await;
    assert!(invite_room["rooms"]["invite"][&room]["invite_state"]["events"].is_array());
    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{enc}/leave"), Some(&vera), json!({})).await;
    assert_eq!(st, 200, "Vera could not decline: {v}");
    let vera_id = format!("@vera:{hearth_name}");
    eventually(
        "Vera's leave on Synapse",
        || async {
            synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.member/{vera_id}"), &tess).await.1
        },
        |v| v["membership"] == "leave",
    )
    .await;
    let (_, sync) = s.get(&format!("/_matrix/client/v3/sync?since={since}"), Some(&vera)).await;
    assert!(sync["rooms"]["invite"].get(&room).is_none(), "{sync}");

    // A second room, where no one of Hearth is: Vera is invited and declines through Synapse.
    let (room2, _) = synapse_invites(s, &tess, &vera, "vera", "Second try").await;
    let enc2 = common::urlencode(&room2);
    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{enc2}/leave"), Some(&vera), json!({})).await;
    assert_eq!(st, 200, "Vera could not decline: {v}");
    eventually(
        "Vera's leave of the second room on Synapse",
        || async {
            synapse_get(&format!("/_matrix/client/v3/rooms/{enc2}/state/m.room.member/{vera_id}"), &tess).await.1
        },
        |v| v["membership"] == "leave",
    )
    .await;
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&vera)).await;
    assert!(sync["rooms"]["invite"].get(&room2).is_none(), "{sync}");

    // No such user here: Synapse's invite fails.
    let (st, v) = synapse_post(
        &format!("/_matrix/client/v3/rooms/{enc2}/invite"),
        &tess,
        json!({"user_id": format!("@nobody-here:{hearth_name}")}),
    )
    .await;
    assert_ne!(st, 200, "an invite for a user Hearth does not have went through: {v}");
    let _ = synapse;
}

/// Hearth is stopped while a Synapse user keeps talking, then started again: Synapse catches up
/// (it may send only its latest event, and Hearth fetches the ones before it with
/// `/get_missing_events`), and everything is there, in order.
async fn events_sent_while_hearth_was_down_arrive_when_it_is_back(s: &mut TestServer, config: &hearth_server::Config) {
    let nina = s.user("nina").await;
    let oscar = synapse_user("oscar").await;
    let (_, enc) = public_room(s, &nina).await;
    let oscar_id = synapse_joins(s, &nina, &enc, &oscar, "oscar").await;

    s.running.take().unwrap().stop().await;
    let texts: Vec<String> = (1..=6).map(|i| format!("are you there {i}")).collect();
    for (i, text) in texts.iter().enumerate() {
        let (st, v) = synapse_put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/o{i}"),
            &oscar,
            json!({"msgtype": "m.text", "body": text}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    s.running = Some(hearth_server::Homeserver::start(config.clone()).await.expect("Hearth starts again"));
    // Hearth calls Synapse (a profile lookup), which tells Synapse it is back.
    let (st, v) = s.get(&format!("/_matrix/client/v3/profile/{oscar_id}"), Some(&nina)).await;
    assert_eq!(st, 200, "{v}");
    let seen = eventually(
        "Oscar's messages on Hearth after its restart",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=50"), Some(&nina)).await.1 },
        |v| bodies(v).len() >= texts.len(),
    )
    .await;
    assert_eq!(bodies(&seen), texts, "{seen}");
}

/// The running Synapse of this federation run: its PID, command line and folder.
fn synapse_process() -> (u32, Vec<String>, std::path::PathBuf) {
    let work = env("HEARTH_FED_WORK");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<String> =
            raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let config = format!("{work}/{}/", env("SYNAPSE_SERVER_NAME"));
        if args.iter().any(|a| a == "synapse.app.homeserver") && args.iter().any(|a| a.starts_with(&config)) {
            let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap();
            return (pid, args, cwd);
        }
    }
    panic!("no Synapse of this run is running");
}

async fn synapse_answers() -> bool {
    let url = format!("https://{}:8448/_matrix/key/v2/server", env("SYNAPSE_SERVER_NAME"));
    matches!(tls_client().get(url).timeout(Duration::from_secs(2)).send().await, Ok(r) if r.status() == 200)
}

/// Synapse is stopped while a Hearth user keeps talking, then started again: everything
/// arrives, in order (the sender backs off, and retries at once when Synapse calls again).
async fn messages_sent_while_synapse_is_down_arrive_in_order_when_it_is_back(s: &TestServer) {
    let lou = s.user("lou").await;
    let max = synapse_user("max").await;
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let (_, enc) = public_room(s, &lou).await;
    synapse_joins(s, &lou, &enc, &max, "max").await;
    // An invite from Synapse that Lou declines while Synapse is down.
    let (invited_room, _) = synapse_invites(s, &max, &lou, "lou", "Declined while down").await;

    let (pid, args, cwd) = synapse_process();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let start = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "Synapse did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let texts: Vec<String> = (1..=8).map(|i| format!("while you were out {i}")).collect();
    for (i, text) in texts.iter().enumerate() {
        let (st, _) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/l{i}"),
                Some(&lou),
                json!({"msgtype": "m.text", "body": text}),
            )
            .await;
        assert_eq!(st, 200, "sending must not depend on the other server");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Declining needs no answer from Synapse: Lou is rid of the invite.
    let invited_enc = common::urlencode(&invited_room);
    let (st, v) = s.post(&format!("/_matrix/client/v3/rooms/{invited_enc}/leave"), Some(&lou), json!({})).await;
    assert_eq!(st, 200, "declining an invite of a server that is down: {v}");
    let (_, sync) = s.get("/_matrix/client/v3/sync", Some(&lou)).await;
    assert!(sync["rooms"]["invite"].get(&invited_room).is_none(), "the declined invite is still there: {sync}");
    // The dashboard's list says Synapse is failing and what waits for it.
    let down = eventually(
        "Synapse failing in the dashboard's list",
        || async { synapse_destination(s).await },
        |d| d["last_error"].is_string() && d["queued"].as_i64().unwrap_or(0) > 0,
    )
    .await;
    assert_eq!(down["backing_off"], true, "{down}");
    let log = std::fs::File::options().append(true).open(env("SYNAPSE_LOG")).unwrap();
    let _synapse = KillOnDrop(
        std::process::Command::new(&args[0])
            .args(&args[1..])
            .current_dir(cwd)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("Synapse starts again"),
    );
    let start = std::time::Instant::now();
    while !synapse_answers().await {
        assert!(start.elapsed() < Duration::from_secs(60), "Synapse did not come back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Synapse calls Hearth (a profile lookup): Hearth hears it is back.
    let (st, v) = synapse_get(&format!("/_matrix/client/v3/profile/@lou:{hearth_name}"), &max).await;
    assert_eq!(st, 200, "{v}");
    let seen = eventually(
        "the messages sent while Synapse was down",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=50"), &max).await.1 },
        |v| bodies(v).len() >= texts.len(),
    )
    .await;
    assert_eq!(bodies(&seen), texts, "{seen}");
    let up = eventually(
        "Synapse back in the dashboard's list",
        || async { synapse_destination(s).await },
        |d| d["queued"] == 0 && d["last_error"].is_null(),
    )
    .await;
    assert!(up["last_success_ts"].as_i64().is_some(), "{up}");
}

/// Synapse's entry in the dashboard's list of servers (`/_hearth/admin/v1/federation/destinations`).
async fn synapse_destination(s: &TestServer) -> Value {
    let running = s.running.as_ref().unwrap();
    let url = format!("http://{}/_hearth/admin/v1/federation/destinations", running.admin_addr());
    let v: Value = s.http.get(url).bearer_auth(running.admin_token()).send().await.unwrap().json().await.unwrap();
    v["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == env("SYNAPSE_SERVER_NAME"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A process started by a test, stopped when the test ends however it ends (the runner only
/// stops the processes it started itself).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `m.room.server_acl` denying synapse.test: its user cannot join, and what a Synapse member
/// already in the room sends is refused.
async fn a_server_acl_keeps_synapse_out(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let ivy = s.user("ivy").await;
    let jack = synapse_user("jack").await;
    let kim = synapse_user("kim").await;
    let (_, enc) = public_room(s, &ivy).await;
    synapse_joins(s, &ivy, &enc, &jack, "jack").await;
    let acl = json!({"allow": ["*"], "deny": [synapse], "allow_ip_literals": false});
    let (st, v) =
        s.put(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.server_acl/"), Some(&ivy), acl.clone()).await;
    assert_eq!(st, 200, "{v}");
    // Synapse, already in the room, makes Kim's join itself: Hearth refuses that event.
    let (_, _) =
        synapse_post(&format!("/_matrix/client/v3/join/{enc}?server_name={hearth_name}"), &kim, json!({})).await;
    // A room Synapse is not in: make_join itself is refused, so Kim cannot join at all.
    let (st, v) = s
        .post(
            "/_matrix/client/v3/createRoom",
            Some(&ivy),
            json!({"preset": "public_chat", "initial_state": [{"type": "m.room.server_acl", "state_key": "", "content": acl}]}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let closed = common::urlencode(v["room_id"].as_str().unwrap());
    let (st, v) =
        synapse_post(&format!("/_matrix/client/v3/join/{closed}?server_name={hearth_name}"), &kim, json!({})).await;
    assert_ne!(st, 200, "a denied server joined: {v}");
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{closed}/joined_members"), Some(&ivy)).await;
    assert_eq!(members["joined"].as_object().unwrap().len(), 1, "{members}");
    // Jack, already in, is not heard any more.
    let (st, _) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/j1"),
        &jack,
        json!({"msgtype": "m.text", "body": "still here?"}),
    )
    .await;
    assert_eq!(st, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, msgs) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), Some(&ivy)).await;
    assert!(!bodies(&msgs).contains(&"still here?".to_owned()), "an event from a denied server was accepted: {msgs}");
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(&ivy)).await;
    assert!(members["joined"].get(format!("@kim:{synapse}")).is_none(), "Kim's join was accepted: {members}");

    // The ACL is lifted: Jack's next event follows the ones Hearth refused, so Hearth fetches
    // them (`/get_missing_events`) before it can place it; Jack is heard again.
    let (st, v) = s
        .put(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.server_acl/"), Some(&ivy), json!({"allow": ["*"]}))
        .await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "the lifted ACL on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.server_acl/"), &jack).await.1 },
        |v| v.get("deny").is_none() && v["allow"] == json!(["*"]),
    )
    .await;
    let (st, _) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/j2"),
        &jack,
        json!({"msgtype": "m.text", "body": "back again"}),
    )
    .await;
    assert_eq!(st, 200);
    eventually(
        "Jack's message after the ACL was lifted",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), Some(&ivy)).await.1 },
        |v| bodies(v).contains(&"back again".to_owned()),
    )
    .await;
}

/// A Synapse user declines an invite (Synapse is not in the room: make_leave/send_leave v2
/// through Hearth), and Hearth sees the invite declined.
async fn a_synapse_user_declines_an_invite_from_hearth(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let pat = s.user("pat").await;
    let quinn = synapse_user("quinn").await;
    let quinn_id = format!("@quinn:{synapse}");
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(&pat), json!({"preset": "private_chat"})).await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let (st, v) =
        s.post(&format!("/_matrix/client/v3/rooms/{enc}/invite"), Some(&pat), json!({"user_id": quinn_id})).await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "the invite on Synapse",
        || async { synapse_get("/_matrix/client/v3/sync?timeout=0", &quinn).await.1 },
        |v| v["rooms"]["invite"].get(&room).is_some(),
    )
    .await;
    let (st, v) = synapse_post(&format!("/_matrix/client/v3/rooms/{enc}/leave"), &quinn, json!({})).await;
    assert_eq!(st, 200, "{v}");
    let members = eventually(
        "the declined invite on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/members"), Some(&pat)).await.1 },
        |v| {
            v["chunk"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["state_key"] == quinn_id && m["content"]["membership"] == "leave")
        },
    )
    .await;
    let leave = members["chunk"].as_array().unwrap().iter().find(|m| m["state_key"] == quinn_id).cloned().unwrap();
    assert_eq!(leave["sender"], quinn_id, "the leave is Quinn's own: {leave}");
}

/// History from before a Synapse user joined reaches them through /backfill (Synapse asks
/// Hearth when its user scrolls back past the join).
async fn a_late_joiner_on_synapse_reads_the_history_from_hearth(s: &TestServer) {
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let gina = s.user("gina").await;
    let hal = synapse_user("hal").await;
    let (_, enc) = public_room(s, &gina).await;
    let early: Vec<String> = (1..=5).map(|i| format!("early {i}")).collect();
    for (i, text) in early.iter().enumerate() {
        let (st, _) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/g{i}"),
                Some(&gina),
                json!({"msgtype": "m.text", "body": text}),
            )
            .await;
        assert_eq!(st, 200);
    }
    let (st, v) =
        synapse_post(&format!("/_matrix/client/v3/join/{enc}?server_name={hearth_name}"), &hal, json!({})).await;
    assert_eq!(st, 200, "{v}");
    let seen = eventually(
        "the early messages on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=50"), &hal).await.1 },
        |v| bodies(v).len() >= 5,
    )
    .await;
    assert_eq!(bodies(&seen), early, "{seen}");
}

/// An invite across servers (`/invite` v2 countersigned by Synapse), accepted on Synapse (which
/// joins through Hearth), then a message each way.
async fn a_hearth_user_invites_a_synapse_user_to_a_private_room(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let frank = s.user("frank").await;
    let erin = synapse_user("erin").await;
    let erin_id = format!("@erin:{synapse}");
    let (st, v) = s
        .post("/_matrix/client/v3/createRoom", Some(&frank), json!({"preset": "private_chat", "name": "Family"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let (st, v) =
        s.post(&format!("/_matrix/client/v3/rooms/{enc}/invite"), Some(&frank), json!({"user_id": erin_id})).await;
    assert_eq!(st, 200, "the invite was not delivered: {v}");
    // Hearth's view: Erin is invited.
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/members"), Some(&frank)).await;
    let erin_member = members["chunk"].as_array().unwrap().iter().find(|m| m["state_key"] == erin_id).cloned();
    assert_eq!(erin_member.map(|m| m["content"]["membership"].clone()), Some(json!("invite")), "{members}");
    // Synapse's view: Erin has the invite, with the room's name.
    let synced = eventually(
        "the invite on Synapse",
        || async { synapse_get("/_matrix/client/v3/sync?timeout=0", &erin).await.1 },
        |v| v["rooms"]["invite"].get(&room).is_some(),
    )
    .await;
    let invite_state = synced["rooms"]["invite"][&room]["invite_state"]["events"].to_string();
    assert!(invite_state.contains("Family"), "{invite_state}");

    let (st, v) = synapse_post(&format!("/_matrix/client/v3/join/{enc}"), &erin, json!({})).await;
    assert_eq!(st, 200, "Erin could not accept: {v}");
    eventually(
        "Erin's join on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(&frank)).await.1 },
        |v| v["joined"].get(&erin_id).is_some(),
    )
    .await;
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/f1"),
            Some(&frank),
            json!({"msgtype": "m.text", "body": "welcome"}),
        )
        .await;
    assert_eq!(st, 200);
    eventually(
        "Frank's welcome on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=10"), &erin).await.1 },
        |v| bodies(v).contains(&"welcome".to_owned()),
    )
    .await;
    let (st, _) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/e1"),
        &erin,
        json!({"msgtype": "m.text", "body": "thanks"}),
    )
    .await;
    assert_eq!(st, 200);
    eventually(
        "Erin's thanks on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=10"), Some(&frank)).await.1 },
        |v| bodies(v).contains(&"thanks".to_owned()),
    )
    .await;
}

async fn synapse_post(path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let http = reqwest::Client::new();
    json_of(http.post(format!("{}{path}", env("SYNAPSE_URL"))).bearer_auth(token).json(&body).send().await.unwrap())
        .await
}

/// A public room made by a Hearth user: (room ID, room ID for URLs).
async fn public_room(s: &TestServer, token: &str) -> (String, String) {
    let (st, v) = s.post("/_matrix/client/v3/createRoom", Some(token), json!({"preset": "public_chat"})).await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    (room, enc)
}

/// `name`, a Synapse user, joins a Hearth room through Hearth (make_join/send_join), and
/// Hearth has the join (as `member` sees it); returns their user ID.
async fn synapse_joins(s: &TestServer, member: &str, enc: &str, token: &str, name: &str) -> String {
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let (st, v) =
        synapse_post(&format!("/_matrix/client/v3/join/{enc}?server_name={hearth_name}"), token, json!({})).await;
    assert_eq!(st, 200, "{name} could not join: {v}");
    let user_id = format!("@{name}:{}", env("SYNAPSE_SERVER_NAME"));
    eventually(
        &format!("{name}'s join on Hearth"),
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(member)).await.1 },
        |v| v["joined"].get(&user_id).is_some(),
    )
    .await;
    user_id
}

/// Polls `read` until `done` says yes (up to 20 s); returns the last value read.
async fn eventually<F, Fut>(what: &str, mut read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let start = std::time::Instant::now();
    loop {
        let v = read().await;
        if done(&v) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{what}: still not there after 20 s: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn bodies(messages: &Value) -> Vec<String> {
    let mut out: Vec<String> = messages["chunk"]
        .as_array()
        .map(|c| c.iter().filter_map(|e| e["content"]["body"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    out.reverse();
    out
}

/// A Synapse user joins a room made on Hearth (make_join/send_join), and messages go both ways
/// (transactions), in order.
async fn a_synapse_user_joins_a_hearth_room_and_they_talk(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let carol = s.user("carol").await;
    let dave = synapse_user("dave").await;
    let (st, v) =
        s.post("/_matrix/client/v3/createRoom", Some(&carol), json!({"preset": "public_chat", "name": "Across"})).await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);

    let (st, v) =
        synapse_post(&format!("/_matrix/client/v3/join/{enc}?server_name={hearth_name}"), &dave, json!({})).await;
    assert_eq!(st, 200, "Synapse could not join the Hearth room: {v}");
    let dave_id = format!("@dave:{synapse}");
    eventually(
        "Dave's join on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(&carol)).await.1 },
        |v| v["joined"].get(&dave_id).is_some(),
    )
    .await;
    // Synapse has the room's state from the join: its name.
    let (st, v) = synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.name/"), &dave).await;
    assert_eq!((st.as_u16(), &v["name"]), (200, &json!("Across")), "{v}");

    // Hearth -> Synapse, in order.
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        let (st, v) = s
            .put(
                &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/c{i}"),
                Some(&carol),
                json!({"msgtype": "m.text", "body": text}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let seen = eventually(
        "Carol's messages on Synapse",
        || async { synapse_get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), &dave).await.1 },
        |v| bodies(v).ends_with(&["one".into(), "two".into(), "three".into()]),
    )
    .await;
    assert_eq!(bodies(&seen), ["one", "two", "three"], "{seen}");

    // Synapse -> Hearth.
    let (st, v) = synapse_put(
        &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/d1"),
        &dave,
        json!({"msgtype": "m.text", "body": "hello from synapse"}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let seen = eventually(
        "Dave's message on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/messages?dir=b&limit=20"), Some(&carol)).await.1 },
        |v| bodies(v).last().map(String::as_str) == Some("hello from synapse"),
    )
    .await;
    let last = seen["chunk"][0].clone();
    assert_eq!(last["sender"], dave_id, "{last}");
    assert_eq!(bodies(&seen), ["one", "two", "three", "hello from synapse"], "{seen}");

    // Carol kicks Dave: Synapse learns it (Dave is out), and what Carol says next stays home.
    let (st, v) = s
        .post(
            &format!("/_matrix/client/v3/rooms/{enc}/kick"),
            Some(&carol),
            json!({"user_id": dave_id, "reason": "bye"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "the kick on Synapse",
        || async { synapse_get("/_matrix/client/v3/joined_rooms", &dave).await.1 },
        |v| !v["joined_rooms"].as_array().unwrap().iter().any(|r| r == &json!(room)),
    )
    .await;
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/c9"),
            Some(&carol),
            json!({"msgtype": "m.text", "body": "after the kick"}),
        )
        .await;
    assert_eq!(st, 200);
    // Dave may rejoin (a kick is not a ban), and then sees the room again.
    let (st, v) =
        synapse_post(&format!("/_matrix/client/v3/join/{enc}?server_name={hearth_name}"), &dave, json!({})).await;
    assert_eq!(st, 200, "{v}");
    eventually(
        "Dave's rejoin on Hearth",
        || async { s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(&carol)).await.1 },
        |v| v["joined"].get(&dave_id).is_some(),
    )
    .await;
}

/// Keys, after the profile queries made Synapse fetch Hearth's (Synapse's notary endpoint only
/// answers from what it holds).
async fn each_server_fetches_and_vouches_for_the_others_keys(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    // Hearth as a notary for Synapse's keys: fetched from Synapse over TLS, checked, and
    // countersigned by Hearth.
    let (st, v) = s.get(&format!("/_matrix/key/v2/query/{synapse}"), None).await;
    assert_eq!(st, 200, "{v}");
    let doc = &v["server_keys"][0];
    assert_eq!(doc["server_name"], synapse, "{v}");
    assert!(doc["verify_keys"].as_object().is_some_and(|k| !k.is_empty()), "{v}");
    let signers: Vec<&String> = doc["signatures"].as_object().unwrap().keys().collect();
    assert!(signers.contains(&&synapse) && signers.contains(&&hearth_name), "{signers:?}");
    // The batch form too, and our own keys through it.
    let (st, v) = s
        .post("/_matrix/key/v2/query", None, json!({"server_keys": {synapse.clone(): {}, hearth_name.clone(): {}}}))
        .await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> =
        v["server_keys"].as_array().unwrap().iter().map(|d| d["server_name"].as_str().unwrap()).collect();
    assert!(names.contains(&synapse.as_str()) && names.contains(&hearth_name.as_str()), "{v}");

    // Synapse as a notary for Hearth's keys: Synapse found hearth.test (DNS, port 8448, TLS with
    // the test CA) and accepted Hearth's self-signed document.
    let (_, ours) = s.get("/_matrix/key/v2/server", None).await;
    let url = format!("https://{synapse}:8448/_matrix/key/v2/query/{hearth_name}");
    let (st, v) = json_of(tls_client().get(url).send().await.unwrap()).await;
    assert_eq!(st, 200, "{v}");
    // Synapse also remembers the keys of Hearths that ran before under the same name (the
    // matrix-sdk suite's): this one's must be among them, fetched from it and signed by it.
    let docs = v["server_keys"].as_array().expect("server_keys");
    let doc = docs
        .iter()
        .find(|d| d["verify_keys"] == ours["verify_keys"])
        .unwrap_or_else(|| panic!("Synapse could not fetch Hearth's keys: {v}"));
    assert_eq!(doc["server_name"], hearth_name, "{v}");
    let key_id = ours["verify_keys"].as_object().unwrap().keys().next().unwrap();
    assert!(doc["signatures"][&hearth_name][key_id].is_string(), "{v}");
}

async fn signed_profile_queries_go_both_ways(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let alice = s.user("alice").await;
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/profile/@alice:{hearth_name}/displayname"),
            Some(&alice),
            json!({"displayname": "Alice at home"}),
        )
        .await;
    assert_eq!(st, 200);
    let bob = synapse_user("bob").await;
    let (st, _) = synapse_put(
        &format!("/_matrix/client/v3/profile/@bob:{synapse}/displayname"),
        &bob,
        json!({"displayname": "Bob on Synapse"}),
    )
    .await;
    assert_eq!(st, 200);

    // Synapse asks Hearth (signed by Synapse, checked by Hearth with Synapse's fetched key).
    let (st, v) = synapse_get(&format!("/_matrix/client/v3/profile/@alice:{hearth_name}"), &bob).await;
    assert_eq!((st.as_u16(), &v["displayname"]), (200, &json!("Alice at home")), "{v}");
    // Hearth asks Synapse (signed by Hearth, checked by Synapse with Hearth's fetched key).
    let (st, v) = s.get(&format!("/_matrix/client/v3/profile/@bob:{synapse}"), Some(&alice)).await;
    assert_eq!((st.as_u16(), &v["displayname"]), (200, &json!("Bob on Synapse")), "{v}");
    // Someone Synapse does not know: its 404 comes through.
    let (st, v) = s.get(&format!("/_matrix/client/v3/profile/@nobody:{synapse}"), Some(&alice)).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (404, Some("M_NOT_FOUND")), "{v}");
    // A server that does not exist: 404, not a hang or a 5xx.
    let (st, v) = s.get("/_matrix/client/v3/profile/@x:nowhere.test", Some(&alice)).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (404, Some("M_NOT_FOUND")), "{v}");
}

/// A request to Hearth's federation API signed as `origin` with `key`.
async fn signed_request(
    s: &TestServer,
    origin: &str,
    destination: &str,
    key: &Ed25519KeyPair,
    path: &str,
) -> (StatusCode, Value) {
    let request = http::Request::builder().method("GET").uri(path).body(Vec::<u8>::new()).unwrap();
    let object = XMatrix::request_object(
        &request,
        <&ServerName>::try_from(origin).unwrap(),
        <&ServerName>::try_from(destination).unwrap(),
    )
    .unwrap();
    let (key_id, sig) = key.sign(&serde_json::to_vec(&object).unwrap()).into_parts();
    let x = XMatrix::new(
        origin.try_into().unwrap(),
        destination.try_into().unwrap(),
        key_id.as_str().try_into().unwrap(),
        Base64::new(sig),
    );
    let resp = s
        .http
        .get(format!("{}{path}", s.base))
        .header("Authorization", http::HeaderValue::from(&x))
        .send()
        .await
        .unwrap();
    json_of(resp).await
}

async fn unsigned_forged_and_misdirected_requests_are_refused(s: &TestServer) {
    let synapse = env("SYNAPSE_SERVER_NAME");
    let hearth_name = env("HEARTH_FED_SERVER_NAME");
    let path = format!("/_matrix/federation/v1/query/profile?user_id=%40alice%3A{hearth_name}");
    // No signature at all.
    let (st, v) = s.get(&path, None).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")), "{v}");
    // Signed by a key that is not Synapse's, with Synapse's real key ID and a made-up one.
    let forger = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "forged".into()).unwrap();
    let (st, v) = signed_request(s, &synapse, &hearth_name, &forger, &path).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")), "{v}");
    assert!(v.get("displayname").is_none(), "{v}");
    let (_, keys) = s.get(&format!("/_matrix/key/v2/query/{synapse}"), None).await;
    let real_id = keys["server_keys"][0]["verify_keys"].as_object().unwrap().keys().next().unwrap().clone();
    let version = real_id.trim_start_matches("ed25519:").to_owned();
    let impostor = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), version).unwrap();
    let (st, v) = signed_request(s, &synapse, &hearth_name, &impostor, &path).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")), "{v}");
    // For another destination.
    let (st, v) = signed_request(s, &synapse, "elsewhere.test", &impostor, &path).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")), "{v}");
    // A server that cannot be found has no keys to check with.
    let (st, v) = signed_request(s, "nowhere.test", &hearth_name, &forger, &path).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (401, Some("M_UNAUTHORIZED")), "{v}");
}
