//! Events from another server that must not get in: a stand-in homeserver (this test, with its
//! own signing key served over TLS at `127.0.0.1:<port>`, a server name the spec allows) joins a
//! Hearth room through `make_join`/`send_join`, then sends transactions with a good event, a
//! forged signature, a tampered content, a power grab the auth rules refuse, events for a room
//! Hearth is not in and broken PDUs. Each is answered per PDU as the spec says and what Alice
//! sees is only what she should; bad transactions are refused as a whole with nothing stored,
//! and a repeated transaction is answered as the first time. Also: an event after a gap placed
//! on the state its server gives, events queued for a server that is down surviving kill -9,
//! the dashboard's Servers page showing that server, and EDUs both ways (typing, receipts,
//! presence, to-device messages, device lists) with the keys queries other servers make.

mod common;

use std::sync::Arc;

use common::TestServer;
use reqwest::StatusCode;
use ruma::{
    CanonicalJsonObject, RoomVersionId, ServerName,
    api::federation::authentication::XMatrix,
    serde::Base64,
    signatures::{Ed25519KeyPair, KeyPair},
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The other server: its name and signing key, and what it answers besides its keys
/// ((method and path prefix, JSON body), first match wins).
struct Stand {
    name: String,
    key: Ed25519KeyPair,
    routes: Routes,
    /// Every transaction Hearth sent it that it took (the bodies of answered `PUT /send`s).
    taken: Arc<std::sync::Mutex<Vec<Value>>>,
    /// The request line of every request it got, in order.
    asked: Arc<std::sync::Mutex<Vec<String>>>,
}

type Routes = Arc<std::sync::Mutex<Vec<(String, String)>>>;

/// Starts the stand-in: a TLS listener (self-signed; Hearth is told not to check certificates)
/// answering its key document at `/_matrix/key/v2/server` and 404 to everything else.
impl Stand {
    /// The contents of the EDUs of type `kind` in the transactions it took, in order.
    fn edus_taken(&self, kind: &str) -> Vec<Value> {
        self.taken
            .lock()
            .unwrap()
            .iter()
            .flat_map(|t| t["edus"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["edu_type"] == kind)
            .map(|e| e["content"].clone())
            .collect()
    }

    /// Waits (up to 10 s) until an EDU of type `kind` it took satisfies `found`.
    async fn wait_for_edu(&self, kind: &str, found: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(e) = self.edus_taken(kind).into_iter().find(|e| found(e)) {
                return e;
            }
            assert!(std::time::Instant::now() < deadline, "no such {kind} came: {:?}", self.edus_taken(kind));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The bodies of the messages in the transactions it took, in order.
    fn bodies_taken(&self) -> Vec<String> {
        self.taken
            .lock()
            .unwrap()
            .iter()
            .flat_map(|t| t["pdus"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect()
    }
}

async fn stand_in() -> Stand {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    stand_with_certificate(cert.cert.der().clone(), cert.signing_key.serialize_der()).await
}

/// A stand-in whose certificate a test CA signed: (the stand-in, the CA's PEM for
/// `federation_custom_ca_list`).
async fn stand_in_with_ca() -> (Stand, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Hearth test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    (stand_with_certificate(cert.der().clone(), key.serialize_der()).await, ca.pem())
}

async fn stand_with_certificate(
    cert: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    key_der: Vec<u8>,
) -> Stand {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let name = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let key = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "stand".into()).unwrap();
    let mut doc: CanonicalJsonObject = serde_json::from_value(json!({
        "server_name": name,
        "valid_until_ts": now() + 86_400_000,
        "verify_keys": {"ed25519:stand": {"key": Base64::<ruma::serde::base64::Standard>::new(key.public_key().to_vec()).encode()}},
        "old_verify_keys": {},
    }))
    .unwrap();
    ruma::signatures::sign_json(&name, &key, &mut doc).unwrap();
    let doc = serde_json::to_string(&doc).unwrap();

    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key_der.into()))
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let routes: Routes = Arc::default();
    let taken: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let asked: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let (served, took, heard) = (routes.clone(), taken.clone(), asked.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, doc, routes, took, heard) =
                (acceptor.clone(), doc.clone(), served.clone(), took.clone(), heard.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                // Read the body too: closing with unread bytes would reset the connection.
                let text = String::from_utf8_lossy(&head).to_string();
                let header_end = text.find("\r\n\r\n").map(|i| i + 4).unwrap_or(text.len());
                let length: usize = text
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = head[header_end.min(head.len())..].to_vec();
                while body.len() < length {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&buf[..n]),
                    }
                }
                let line = text.lines().next().unwrap_or_default().to_owned();
                heard.lock().unwrap().push(line.clone());
                let routed = routes
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(prefix, _)| line.starts_with(prefix.as_str()))
                    .map(|(_, body)| body.clone());
                let (status, body) = if line.contains(" /_matrix/key/v2/server") {
                    ("200 OK", doc)
                } else if let Some(answer) = routed {
                    if line.starts_with("PUT /_matrix/federation/v1/send/")
                        && let Ok(txn) = serde_json::from_slice::<Value>(&body)
                    {
                        took.lock().unwrap().push(txn);
                    }
                    ("200 OK", answer)
                } else {
                    ("404 Not Found", r#"{"errcode":"M_UNRECOGNIZED","error":"stand-in"}"#.to_owned())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Stand { name, key, routes, taken, asked }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn hearth() -> TestServer {
    hearth_with(|_| {}).await
}

async fn hearth_with(f: impl FnOnce(&mut hearth_server::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.federation_verify_certificates = false;
        c.trusted_key_servers = Vec::new();
        c.ip_range_whitelist = vec!["127.0.0.0/8".to_owned()];
        c.rc_federation.sleep_limit = 1000;
        c.rc_federation.reject_limit = 1000;
        f(c);
    })
    .await
}

/// A federation request from `stand` (signed with `key`), with an optional JSON body.
async fn fed(
    s: &TestServer,
    stand: &Stand,
    key: &Ed25519KeyPair,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    fed_to(&s.http, &s.base, common::SERVER_NAME, stand, key, method, path, body).await
}

/// A federation request from `stand` to the Hearth at `base` named `destination`.
#[allow(clippy::too_many_arguments)]
async fn fed_to(
    http: &reqwest::Client,
    base: &str,
    destination: &str,
    stand: &Stand,
    key: &Ed25519KeyPair,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
    let request = http::Request::builder().method(method).uri(path).body(bytes.clone()).unwrap();
    let origin = <&ServerName>::try_from(stand.name.as_str()).unwrap();
    let destination = <&ServerName>::try_from(destination).unwrap();
    let object = XMatrix::request_object(&request, origin, destination).unwrap();
    let (key_id, sig) = key.sign(&serde_json::to_vec(&object).unwrap()).into_parts();
    let x =
        XMatrix::new(origin.to_owned(), destination.to_owned(), key_id.as_str().try_into().unwrap(), Base64::new(sig));
    let mut req = http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .header("Authorization", http::HeaderValue::from(&x));
    if body.is_some() {
        req = req.header("Content-Type", "application/json").body(bytes);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| json!({"raw": text})))
}

/// Hashes and signs `fields` as a v11 event of `stand` (with `key`): (event ID, PDU).
fn signed(stand: &Stand, key: &Ed25519KeyPair, fields: Value) -> (String, Value) {
    let rules = RoomVersionId::V11.rules().unwrap();
    let mut obj: CanonicalJsonObject = serde_json::from_value(fields).unwrap();
    ruma::signatures::hash_and_sign_event(&stand.name, key, &mut obj, &rules.redaction).unwrap();
    let id = format!("${}", ruma::signatures::reference_hash(&obj, &rules).unwrap());
    (id, serde_json::to_value(obj).unwrap())
}

/// The room as the stand-in's user sees it after joining: IDs it builds its events on.
struct Joined {
    room: String,
    user: String,
    create: String,
    power_levels: String,
    member: String,
    /// The latest event and its depth.
    prev: (String, i64),
}

impl Joined {
    fn event(&self, kind: &str, state_key: Option<&str>, content: Value) -> Value {
        let mut e = json!({
            "type": kind,
            "sender": self.user,
            "room_id": self.room,
            "content": content,
            "prev_events": [self.prev.0],
            "auth_events": [self.create, self.power_levels, self.member],
            "depth": self.prev.1 + 1,
            "origin_server_ts": now(),
        });
        if let Some(k) = state_key {
            e["state_key"] = json!(k);
        }
        e
    }
}

async fn send(s: &TestServer, stand: &Stand, txn: &str, pdus: Vec<Value>) -> (StatusCode, Value) {
    let body = json!({"origin": stand.name, "origin_server_ts": now(), "pdus": pdus, "edus": []});
    fed(s, stand, &stand.key, "PUT", &format!("/_matrix/federation/v1/send/{txn}"), Some(&body)).await
}

async fn bodies(s: &TestServer, token: &str, room: &str) -> Vec<String> {
    let (_, v) = s
        .get(&format!("/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50", common::urlencode(room)), Some(token))
        .await;
    let mut out: Vec<String> = v["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap_or("<no body>").to_owned())
        .collect();
    out.reverse();
    out
}

/// Alice's room (v11, public) with the stand-in's Mallory joined through make_join/send_join:
/// (Alice's token, what Mallory builds on, the send_join answer).
async fn joined_room(s: &TestServer, stand: &Stand) -> (String, Joined, Value) {
    let alice = s.user("alice").await;
    let (st, v) = s
        .post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat", "room_version": "11"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let room = v["room_id"].as_str().unwrap().to_owned();
    let (j, joined) = stand_joins(s, stand, &room, &alice).await;
    (alice, j, joined)
}

/// The stand-in's Mallory joins `room` through make_join/send_join; `alice` (in the room) sees
/// him joined.
async fn stand_joins(s: &TestServer, stand: &Stand, room: &str, alice: &str) -> (Joined, Value) {
    let room = room.to_owned();
    let enc = common::urlencode(&room);
    let user = format!("@mallory:{}", stand.name);
    let (st, made) = fed(
        s,
        stand,
        &stand.key,
        "GET",
        &format!("/_matrix/federation/v1/make_join/{enc}/{}?ver=11", common::urlencode(&user)),
        None,
    )
    .await;
    assert_eq!(st, 200, "{made}");
    let mut template = made["event"].clone();
    template["origin_server_ts"] = json!(now());
    let depth = template["depth"].as_i64().unwrap();
    let (join_id, join) = signed(stand, &stand.key, template);
    let (st, joined) = fed(
        s,
        stand,
        &stand.key,
        "PUT",
        &format!("/_matrix/federation/v2/send_join/{enc}/{}", common::urlencode(&join_id)),
        Some(&join),
    )
    .await;
    assert_eq!(st, 200, "{joined}");
    let j = Joined {
        room: room.clone(),
        user: user.clone(),
        create: id_in(&joined["state"], "m.room.create"),
        power_levels: id_in(&joined["state"], "m.room.power_levels"),
        member: join_id.clone(),
        prev: (join_id.clone(), depth),
    };
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(alice)).await;
    assert!(members["joined"].get(&user).is_some(), "{members}");
    (j, joined)
}

/// The ID of the event of type `kind` in a list of v11 PDUs.
fn id_in(events: &Value, kind: &str) -> String {
    let e = events.as_array().unwrap().iter().find(|e| e["type"] == kind).unwrap();
    event_id(e)
}

fn event_id(e: &Value) -> String {
    let rules = RoomVersionId::V11.rules().unwrap();
    let obj: CanonicalJsonObject = serde_json::from_value(e.clone()).unwrap();
    format!("${}", ruma::signatures::reference_hash(&obj, &rules).unwrap())
}

#[tokio::test]
async fn forged_tampered_and_unauthorised_events_from_another_server_stay_out() {
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, mut j, _) = joined_room(&s, &stand).await;
    let (room, user) = (j.room.clone(), j.user.clone());
    let enc = common::urlencode(&room);

    // A good message gets in.
    let (good_id, good) =
        signed(&stand, &stand.key, j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "hello"})));
    let (st, v) = send(&s, &stand, "t1", vec![good.clone()]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["pdus"][&good_id], json!({}), "{v}");
    assert_eq!(bodies(&s, &alice, &room).await, ["hello"]);
    j.prev = (good_id.clone(), j.prev.1 + 1);
    // The same transaction ID again (a retry): the first answer, and nothing in it is looked at.
    let (_, other) =
        signed(&stand, &stand.key, j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "retried"})));
    let (st, again) = send(&s, &stand, "t1", vec![good, other]).await;
    assert_eq!((st, &again), (StatusCode::OK, &v), "{again}");
    assert_eq!(bodies(&s, &alice, &room).await, ["hello"]);

    // Signed with a key that is not the stand-in's (under its key ID): refused, not stored.
    let forger = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "stand".into()).unwrap();
    let (forged_id, forged) =
        signed(&stand, &forger, j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "forged"})));
    // Content changed after signing: kept redacted (the spec's rule), so its text never shows.
    let (tampered_id, mut tampered) =
        signed(&stand, &stand.key, j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "signed"})));
    tampered["content"]["body"] = json!("tampered");
    // Mallory makes himself an admin: the auth rules refuse it.
    let (grab_id, grab) = signed(
        &stand,
        &stand.key,
        j.event("m.room.power_levels", Some(""), json!({"users": {user.clone(): 100}, "users_default": 100})),
    );
    // An event of a room Hearth is not in, and PDUs that are not events.
    let mut elsewhere = j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "elsewhere"}));
    elsewhere["room_id"] = json!(format!("!nowhere:{}", stand.name));
    let (_, elsewhere) = signed(&stand, &stand.key, elsewhere);
    let (st, v) = send(
        &s,
        &stand,
        "t2",
        vec![forged, tampered, grab, elsewhere, json!({"type": "m.room.message"}), json!("not an object")],
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["pdus"][&forged_id]["error"].is_string(), "the forged event was not refused: {v}");
    assert!(v["pdus"][&grab_id]["error"].is_string(), "the power grab was not refused: {v}");
    assert_eq!(v["pdus"][&tampered_id], json!({}), "{v}");
    assert_eq!(bodies(&s, &alice, &room).await, ["hello", "<no body>"], "only the tampered event, redacted");
    let (st, _) =
        s.get(&format!("/_matrix/client/v3/rooms/{enc}/event/{}", common::urlencode(&forged_id)), Some(&alice)).await;
    assert_eq!(st, 404);
    let (_, pl) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/state/m.room.power_levels/"), Some(&alice)).await;
    assert!(pl["users"].get(&user).is_none(), "the power grab took effect: {pl}");
    let (st, _) = s
        .get(
            &format!("/_matrix/client/v3/rooms/{}/state", common::urlencode(&format!("!nowhere:{}", stand.name))),
            Some(&alice),
        )
        .await;
    assert_ne!(st, 200);

    // Bad transactions, refused whole: too many PDUs, an origin that is not the signer.
    let many: Vec<Value> = (0..51).map(|i| json!({"n": i})).collect();
    let (st, v) = send(&s, &stand, "t3", many).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (413, Some("M_TOO_LARGE")), "{v}");
    let (ok_id, ok) =
        signed(&stand, &stand.key, j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "late"})));
    let body = json!({"origin": "other.test", "origin_server_ts": now(), "pdus": [ok], "edus": []});
    let (st, v) = fed(&s, &stand, &stand.key, "PUT", "/_matrix/federation/v1/send/t4", Some(&body)).await;
    assert_eq!(st, 403, "{v}");
    let (st, _) =
        s.get(&format!("/_matrix/client/v3/rooms/{enc}/event/{}", common::urlencode(&ok_id)), Some(&alice)).await;
    assert_eq!(st, 404, "an event of a refused transaction was stored");
    // A join for a room version Hearth's room is not: refused with the spec's error.
    let (st, v) = fed(
        &s,
        &stand,
        &stand.key,
        "GET",
        &format!("/_matrix/federation/v1/make_join/{enc}/{}?ver=unknown-version", common::urlencode(&user)),
        None,
    )
    .await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (400, Some("M_INCOMPATIBLE_ROOM_VERSION")), "{v}");
    assert_eq!(v["room_version"], "11", "{v}");
}

/// Mallory's server made events Hearth never got (his new display name, then a message) and
/// sends only the one after them. `/get_missing_events` gives nothing, so Hearth asks the state
/// before that event (`/state_ids`), fetches what it lacks (`/event`), checks it, and places
/// the event on that state: Alice sees the message and Mallory's new name.
#[tokio::test]
async fn an_event_after_a_gap_is_placed_on_the_state_its_server_gives() {
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, j, joined) = joined_room(&s, &stand).await;
    let enc = common::urlencode(&j.room);
    let join_rules = id_in(&joined["state"], "m.room.join_rules");

    let mut rename =
        j.event("m.room.member", Some(&j.user), json!({"membership": "join", "displayname": "Mallory (renamed)"}));
    rename["auth_events"] = json!([j.create, j.power_levels, join_rules, j.member]);
    let (rename_id, rename) = signed(&stand, &stand.key, rename);
    let mut unseen = j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "never sent"}));
    unseen["prev_events"] = json!([rename_id]);
    unseen["auth_events"] = json!([j.create, j.power_levels, rename_id]);
    unseen["depth"] = json!(j.prev.1 + 2);
    let (unseen_id, _) = signed(&stand, &stand.key, unseen);
    let mut after = j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "after the gap"}));
    after["prev_events"] = json!([unseen_id]);
    after["auth_events"] = json!([j.create, j.power_levels, rename_id]);
    after["depth"] = json!(j.prev.1 + 3);
    let (after_id, after) = signed(&stand, &stand.key, after);

    // The state before `after`: the room's, with Mallory's member event the rename.
    let mut state_ids: Vec<String> = joined["state"].as_array().unwrap().iter().map(event_id).collect();
    state_ids.push(rename_id.clone());
    let mut auth_ids: Vec<String> = joined["auth_chain"].as_array().unwrap().iter().map(event_id).collect();
    auth_ids.push(j.member.clone());
    {
        let mut routes = stand.routes.lock().unwrap();
        routes.push(("POST /_matrix/federation/v1/get_missing_events/".into(), json!({"events": []}).to_string()));
        routes.push((
            "GET /_matrix/federation/v1/state_ids/".to_owned(),
            json!({"pdu_ids": state_ids, "auth_chain_ids": auth_ids}).to_string(),
        ));
        routes.push((
            "GET /_matrix/federation/v1/event/".to_owned(),
            json!({"origin": stand.name, "origin_server_ts": now(), "pdus": [rename]}).to_string(),
        ));
    }
    let (st, v) = send(&s, &stand, "gap1", vec![after]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["pdus"][&after_id], json!({}), "the event after the gap was not accepted: {v}");
    assert_eq!(bodies(&s, &alice, &j.room).await, ["after the gap"]);
    let (_, members) = s.get(&format!("/_matrix/client/v3/rooms/{enc}/joined_members"), Some(&alice)).await;
    assert_eq!(members["joined"][&j.user]["display_name"], "Mallory (renamed)", "{members}");
    // Hearth's next event builds on both branches.
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/a1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "welcome back"}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(bodies(&s, &alice, &j.room).await, ["after the gap", "welcome back"]);
}

/// The dashboard's Servers page (in Debian's headless Chromium, `tests/ui/flows.mjs`) lists the
/// stand-in, which never takes Hearth's transactions: not answering, with its last error and
/// the events waiting for it.
#[tokio::test]
#[ignore = "needs Chromium and playwright-core: scripts/test.sh runs it"]
async fn the_dashboard_shows_a_server_that_does_not_answer() {
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, j, _) = joined_room(&s, &stand).await;
    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{}/send/m.room.message/d1", common::urlencode(&j.room)),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "for the other server"}),
        )
        .await;
    assert_eq!(st, 200);
    let running = s.running.as_ref().unwrap();
    let url = format!("http://{}/_hearth/admin/v1/federation/destinations", running.admin_addr());
    let start = std::time::Instant::now();
    loop {
        let v: Value = s.http.get(&url).bearer_auth(running.admin_token()).send().await.unwrap().json().await.unwrap();
        if v["destinations"][0]["last_error"].is_string() {
            break;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "no failure recorded: {v}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The setup is done: the dashboard opens on Status.
    let url = format!("http://{}/_hearth/admin/v1/setup/done", running.admin_addr());
    let resp = s.http.post(&url).bearer_auth(running.admin_token()).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let got = common::ui_flow("servers", &running.admin_url(), &stand.name).await;
    assert_eq!(got["server"], json!(stand.name), "{got}");
    assert_eq!(got["reached"], "Never", "{got}");
}

/// Events answered 200 while the other server does not take them are sent after Hearth is
/// killed with kill -9 and started again: all of them, in order, once the other server is back.
#[tokio::test]
async fn events_queued_for_a_server_that_is_down_survive_kill_9() {
    use common::binary;
    let stand = stand_in().await;
    let home = tempfile::tempdir().unwrap();
    let cfg = binary::write_config(
        home.path(),
        "federation_verify_certificates = false\ntrusted_key_servers = []\nip_range_whitelist = [\"127.0.0.0/8\"]\nenable_registration = true\nenable_registration_without_verification = true\n",
    );
    let cfg = cfg.to_str().unwrap().to_owned();
    let start = {
        let (home, cfg) = (home.path().to_owned(), cfg.clone());
        move || binary::spawn(&home, &["serve", "--config", &cfg], &[])
    };
    let mut p = tokio::task::spawn_blocking(start.clone()).await.unwrap();
    let base = p.base.clone();
    let http = reqwest::Client::new();
    let (st, _) = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || (binary::register(&base, "alice"), ())).await.unwrap()
    };
    assert_eq!(st, 200);
    let token = {
        let base = base.clone();
        tokio::task::spawn_blocking(move || binary::access_token(&base, "alice", "pw-long-enough")).await.unwrap()
    };
    let v: Value = http
        .post(format!("{base}/_matrix/client/v3/createRoom"))
        .bearer_auth(&token)
        .json(&json!({"preset": "public_chat", "room_version": "11"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = v["room_id"].as_str().unwrap().to_owned();
    let enc = common::urlencode(&room);
    let user = format!("@mallory:{}", stand.name);
    let path = format!("/_matrix/federation/v1/make_join/{enc}/{}?ver=11", common::urlencode(&user));
    let (st, made) = fed_to(&http, &base, "proc.test", &stand, &stand.key, "GET", &path, None).await;
    assert_eq!(st, 200, "{made}");
    let mut template = made["event"].clone();
    template["origin_server_ts"] = json!(now());
    let (join_id, join) = signed(&stand, &stand.key, template);
    let path = format!("/_matrix/federation/v2/send_join/{enc}/{}", common::urlencode(&join_id));
    let (st, v) = fed_to(&http, &base, "proc.test", &stand, &stand.key, "PUT", &path, Some(&join)).await;
    assert_eq!(st, 200, "{v}");

    // The stand-in takes no transactions: Alice's messages wait in Hearth.
    let texts: Vec<String> = (1..=5).map(|i| format!("queued {i}")).collect();
    for (i, text) in texts.iter().enumerate() {
        let r = http
            .put(format!("{base}/_matrix/client/v3/rooms/{enc}/send/m.room.message/q{i}"))
            .bearer_auth(&token)
            .json(&json!({"msgtype": "m.text", "body": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    // Back: the stand-in takes transactions again, Hearth starts again and hears from it.
    stand.routes.lock().unwrap().push(("PUT /_matrix/federation/v1/send/".into(), json!({"pdus": {}}).to_string()));
    let p2 = tokio::task::spawn_blocking(start).await.unwrap();
    let path = "/_matrix/federation/v1/query/profile?user_id=%40alice%3Aproc.test";
    let (st, v) = fed_to(&http, &p2.base, "proc.test", &stand, &stand.key, "GET", path, None).await;
    assert_eq!(st, 200, "{v}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = stand.bodies_taken();
        if got.len() >= texts.len() {
            assert_eq!(got, texts, "in order, each once");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "after kill -9 and a restart only {got:?} arrived");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A server that was down while more than a transaction's worth of events waited for it gets,
/// once it is back, the latest event of each room it shares, not the whole backlog (it fetches
/// the gap it needs itself), as Synapse catches a destination up.
#[tokio::test]
async fn a_server_back_from_an_outage_gets_the_latest_event_of_each_room_not_the_backlog() {
    // No route for /send yet: every transaction fails.
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, _, _) = joined_room(&s, &stand).await;
    let first = {
        let (_, v) = s.get("/_matrix/client/v3/joined_rooms", Some(&alice)).await;
        v["joined_rooms"][0].as_str().unwrap().to_owned()
    };
    let (st, v) = s
        .post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "public_chat", "room_version": "11"}))
        .await;
    assert_eq!(st, 200, "{v}");
    let second = v["room_id"].as_str().unwrap().to_owned();
    stand_joins(&s, &stand, &second, &alice).await;
    let send = |room: String, body: String, txn: String| {
        let alice = alice.clone();
        let s = &s;
        async move {
            let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}", common::urlencode(&room));
            let (st, v) = s.put(&path, Some(&alice), json!({"msgtype": "m.text", "body": body})).await;
            assert_eq!(st, 200, "{v}");
        }
    };
    for i in 1..=60 {
        send(first.clone(), format!("first {i}"), format!("f{i}")).await;
    }
    for i in 1..=3 {
        send(second.clone(), format!("second {i}"), format!("s{i}")).await;
    }
    // Back: it takes transactions again and calls Hearth, which hears it is up.
    stand.routes.lock().unwrap().push(("PUT /_matrix/federation/v1/send/".into(), json!({"pdus": {}}).to_string()));
    let (st, v) =
        fed(&s, &stand, &stand.key, "GET", "/_matrix/federation/v1/query/profile?user_id=%40alice%3Ahearth.test", None)
            .await;
    assert!(st == 200 || st == 404, "{v}");
    let bodies = || stand.bodies_taken();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while bodies().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "only {:?} arrived", bodies());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And nothing of the backlog after it.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(bodies(), ["first 60", "second 3"]);
}

/// A user of a second server joins through Hearth (`send_join`): Hearth, the room's resident
/// server, sends the join on to the first server in the room, as the spec says (and not back
/// to the second).
#[tokio::test]
async fn joins_and_leaves_made_through_hearth_reach_the_rooms_other_servers() {
    let first = stand_in().await;
    let second = stand_in().await;
    for stand in [&first, &second] {
        stand.routes.lock().unwrap().push(("PUT /_matrix/federation/v1/send/".into(), json!({"pdus": {}}).to_string()));
    }
    let s = hearth().await;
    let (alice, _, _) = joined_room(&s, &first).await;
    let room = {
        let (_, v) = s.get("/_matrix/client/v3/joined_rooms", Some(&alice)).await;
        v["joined_rooms"][0].as_str().unwrap().to_owned()
    };
    let (j2, _) = stand_joins(&s, &second, &room, &alice).await;
    let received = |stand: &Stand| -> Vec<Value> {
        stand.taken.lock().unwrap().iter().flat_map(|t| t["pdus"].as_array().cloned().unwrap_or_default()).collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !received(&first).iter().any(|e| e["type"] == "m.room.member" && e["state_key"] == json!(j2.user)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the second server's join never reached the first: {:?}",
            received(&first)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Its own events are not sent back to it.
    assert!(
        !received(&second).iter().any(|e| e["sender"] == json!(j2.user)),
        "the second server got its own join back: {:?}",
        received(&second)
    );
}

/// `/timestamp_to_event` answers a server in the room with the event nearest a moment, either
/// way, and refuses a server that is not in the room.
#[tokio::test]
async fn servers_in_the_room_find_events_by_time_and_others_do_not() {
    let stand = stand_in().await;
    let outsider = stand_in().await;
    let s = hearth().await;
    let (alice, j, _) = joined_room(&s, &stand).await;
    let enc = common::urlencode(&j.room);
    let before = now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (st, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/t1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "at a known time"}),
        )
        .await;
    assert_eq!(st, 200);
    let path = |ts: i64, dir: &str| format!("/_matrix/federation/v1/timestamp_to_event/{enc}?ts={ts}&dir={dir}");
    let (st, v) = fed(&s, &stand, &stand.key, "GET", &path(before, "f"), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["event_id"], sent["event_id"], "{v}");
    assert!(v["origin_server_ts"].as_i64().unwrap() >= before, "{v}");
    let (st, v) = fed(&s, &stand, &stand.key, "GET", &path(before, "b"), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["event_id"], json!(j.member), "the last event before the message is Mallory's join: {v}");
    let (st, v) = fed(&s, &outsider, &outsider.key, "GET", &path(before, "f"), None).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (403, Some("M_FORBIDDEN")), "{v}");
}

/// `rc_federation`: past `sleep_limit` requests in the window a server's requests wait
/// `sleep_delay`, past `reject_limit` they are refused with 429 and a retry time; another server
/// is not held back by it.
#[tokio::test]
async fn a_server_asking_too_much_is_slowed_then_refused() {
    let busy = stand_in().await;
    let other = stand_in().await;
    let s = hearth_with(|c| {
        c.rc_federation = hearth_server::config::RcFederation {
            window_size: 60_000,
            sleep_limit: 2,
            sleep_delay: 300,
            reject_limit: 4,
            concurrent: 1,
        };
    })
    .await;
    let _alice = s.user("alice").await;
    let path = format!("/_matrix/federation/v1/query/profile?user_id=%40alice%3A{}", common::SERVER_NAME);
    for i in 0..4 {
        let start = std::time::Instant::now();
        let (st, v) = fed(&s, &busy, &busy.key, "GET", &path, None).await;
        assert_eq!(st, 200, "request {i}: {v}");
        if i >= 2 {
            assert!(start.elapsed() >= std::time::Duration::from_millis(300), "request {i} was not slowed down");
        }
    }
    let (st, v) = fed(&s, &busy, &busy.key, "GET", &path, None).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (429, Some("M_LIMIT_EXCEEDED")), "{v}");
    assert!(v["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0 && ms <= 60_000), "{v}");
    let (st, v) = fed(&s, &other, &other.key, "GET", &path, None).await;
    assert_eq!(st, 200, "another server was held back: {v}");
}

/// A transaction of EDUs only from `stand`.
async fn send_edus(s: &TestServer, stand: &Stand, txn: &str, edus: Vec<Value>) -> (StatusCode, Value) {
    let body = json!({"origin": stand.name, "origin_server_ts": now(), "pdus": [], "edus": edus});
    fed(s, stand, &stand.key, "PUT", &format!("/_matrix/federation/v1/send/{txn}"), Some(&body)).await
}

async fn device_of(s: &TestServer, token: &str) -> String {
    let (_, v) = s.get("/_matrix/client/v3/account/whoami", Some(token)).await;
    v["device_id"].as_str().unwrap().to_owned()
}

/// Uploads identity keys for the token's device (shape-checked only, as Hearth does).
async fn upload_device_keys(s: &TestServer, token: &str, user: &str, device: &str, name_key: &str) {
    let keys = json!({
        "user_id": user, "device_id": device,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": { format!("curve25519:{device}"): format!("curve-{name_key}"), format!("ed25519:{device}"): format!("ed-{name_key}") },
        "signatures": { user: { format!("ed25519:{device}"): "sig" } },
    });
    let (st, v) = s
        .post(
            "/_matrix/client/v3/keys/upload",
            Some(token),
            json!({"device_keys": keys, "one_time_keys": {"signed_curve25519:AAAA": {"key": "otk-a", "signatures": {user: {format!("ed25519:{device}"): "sig"}}}}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

/// Another server's typing, receipts, presence, to-device messages and device news reach the
/// local clients they concern; the same about a user of a third server, or about a room its user
/// is not in, is dropped; a to-device message sent again (new transaction, same message ID)
/// arrives once.
#[tokio::test]
async fn edus_from_another_server_reach_local_clients_when_they_may() {
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, j, _) = joined_room(&s, &stand).await;
    let me = "@alice:hearth.test";
    let device = device_of(&s, &alice).await;
    let (_, first) = s.get("/_matrix/client/v3/sync?timeout=0", Some(&alice)).await;
    let since = first["next_batch"].as_str().unwrap().to_owned();
    let (other, _) = {
        let other = s.user("olga").await;
        let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&other), json!({})).await;
        (other, v["room_id"].as_str().unwrap().to_owned())
    };
    let _ = other;

    let eve = "@eve:elsewhere.test";
    let last = j.prev.0.clone();
    let edus = vec![
        json!({"edu_type": "m.typing", "content": {"room_id": j.room, "user_id": j.user, "typing": true}}),
        json!({"edu_type": "m.typing", "content": {"room_id": j.room, "user_id": eve, "typing": true}}),
        json!({"edu_type": "m.receipt", "content": {j.room.clone(): {"m.read": {j.user.clone(): {"data": {"ts": now()}, "event_ids": [last]}}}}}),
        json!({"edu_type": "m.presence", "content": {"push": [{"user_id": j.user, "presence": "online", "last_active_ago": 5, "currently_active": true, "status_msg": "on the stand"}]}}),
        json!({"edu_type": "m.direct_to_device", "content": {"sender": j.user, "type": "m.room_key_request", "message_id": "m1",
            "messages": {me: {device.clone(): {"action": "request_cancellation", "request_id": "r1", "requesting_device_id": "STAND"}}}}}),
        json!({"edu_type": "m.direct_to_device", "content": {"sender": eve, "type": "m.forged", "message_id": "m2",
            "messages": {me: {"*": {"x": 1}}}}}),
        json!({"edu_type": "m.device_list_update", "content": {"user_id": j.user, "device_id": "STAND", "stream_id": 1, "prev_id": [], "deleted": false}}),
        json!({"edu_type": "m.unknown_kind", "content": {"anything": true}}),
        json!({"edu_type": "m.typing", "content": "not an object"}),
    ];
    let (st, v) = send_edus(&s, &stand, "e1", edus).await;
    assert_eq!(st, 200, "{v}");
    // The same to-device message in a new transaction: delivered once.
    let again = json!({"edu_type": "m.direct_to_device", "content": {"sender": j.user, "type": "m.room_key_request", "message_id": "m1",
        "messages": {me: {device.clone(): {"action": "request_cancellation", "request_id": "r1", "requesting_device_id": "STAND"}}}}});
    let (st, _) = send_edus(&s, &stand, "e2", vec![again]).await;
    assert_eq!(st, 200);

    let (_, got) = s.get(&format!("/_matrix/client/v3/sync?timeout=0&since={since}"), Some(&alice)).await;
    let ephemeral = &got["rooms"]["join"][&j.room]["ephemeral"]["events"];
    let typing = ephemeral.as_array().unwrap().iter().find(|e| e["type"] == "m.typing").expect("typing");
    assert_eq!(
        typing["content"]["user_ids"],
        json!([j.user]),
        "Mallory types; Eve of another server is not his server's to speak of"
    );
    let receipt = ephemeral.as_array().unwrap().iter().find(|e| e["type"] == "m.receipt").expect("receipt");
    assert!(receipt["content"][&j.prev.0]["m.read"][&j.user]["ts"].is_i64(), "{receipt}");
    let to_device = got["to_device"]["events"].as_array().unwrap();
    assert_eq!(to_device.len(), 1, "once, and not the forged one: {to_device:?}");
    assert_eq!(to_device[0]["sender"], j.user);
    assert_eq!(to_device[0]["type"], "m.room_key_request");
    assert!(got["device_lists"]["changed"].as_array().unwrap().contains(&json!(j.user)), "{}", got["device_lists"]);
    let presence = got["presence"]["events"].as_array().unwrap();
    let mallory = presence.iter().find(|e| e["sender"] == j.user.as_str()).expect("Mallory's presence");
    assert_eq!(mallory["content"]["presence"], "online");
    assert_eq!(mallory["content"]["status_msg"], "on the stand");
    // Still online after the 30 s a local user would need to keep syncing: his server says.
    let (_, p) =
        s.get(&format!("/_matrix/client/v3/presence/{}/status", common::urlencode(&j.user)), Some(&alice)).await;
    assert_eq!(p["presence"], "online", "{p}");

    // Typing in a room Mallory is not in: dropped.
    let (olga_room_token, olga_room) = {
        let olga = s.login("olga", "password1").await.1["access_token"].as_str().map(str::to_owned);
        let (_, v) = s.post("/_matrix/client/v3/createRoom", olga.as_deref(), json!({"preset": "public_chat"})).await;
        (olga, v["room_id"].as_str().unwrap().to_owned())
    };
    let (_, first) = s.get("/_matrix/client/v3/sync?timeout=0", olga_room_token.as_deref()).await;
    let since = first["next_batch"].as_str().unwrap().to_owned();
    let (st, _) = send_edus(
        &s,
        &stand,
        "e3",
        vec![json!({"edu_type": "m.typing", "content": {"room_id": olga_room, "user_id": j.user, "typing": true}})],
    )
    .await;
    assert_eq!(st, 200);
    let (_, got) = s.get(&format!("/_matrix/client/v3/sync?timeout=0&since={since}"), olga_room_token.as_deref()).await;
    assert!(got["rooms"]["join"][&olga_room]["ephemeral"]["events"].as_array().is_none_or(|e| e.is_empty()), "{got}");
}

/// Alice's typing, public read receipt, presence, to-device message and new device keys go to
/// the server of the one other member of her room, in its transactions; her private receipt
/// does not. That server's questions about her keys are answered: /user/keys/query (no
/// user-signing key), /user/keys/claim (a one-time key, once), /user/devices (with the
/// position device list updates continue from).
#[tokio::test]
async fn local_edus_go_to_the_other_server_and_its_key_queries_are_answered() {
    let stand = stand_in().await;
    stand.routes.lock().unwrap().push(("PUT /_matrix/federation/v1/send/".into(), json!({"pdus": {}}).to_string()));
    let s = hearth().await;
    let (alice, j, _) = joined_room(&s, &stand).await;
    let me = "@alice:hearth.test";
    let enc = common::urlencode(&j.room);
    let device = device_of(&s, &alice).await;

    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/typing/{}", common::urlencode(me)),
            Some(&alice),
            json!({"typing": true, "timeout": 10000}),
        )
        .await;
    assert_eq!(st, 200);
    stand
        .wait_for_edu("m.typing", |c| c["user_id"] == me && c["typing"] == true && c["room_id"] == j.room.as_str())
        .await;

    let (st, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/t1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    assert_eq!(st, 200);
    let event = sent["event_id"].as_str().unwrap().to_owned();
    let (st, _) = s
        .post(
            &format!("/_matrix/client/v3/rooms/{enc}/receipt/m.read.private/{}", common::urlencode(&event)),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .post(
            &format!("/_matrix/client/v3/rooms/{enc}/receipt/m.read/{}", common::urlencode(&event)),
            Some(&alice),
            json!({}),
        )
        .await;
    assert_eq!(st, 200);
    let receipt = stand.wait_for_edu("m.receipt", |c| c[&j.room]["m.read"][me]["event_ids"][0] == event.as_str()).await;
    assert!(receipt[&j.room].get("m.read.private").is_none());
    assert!(
        stand.edus_taken("m.receipt").iter().all(|c| c[&j.room].get("m.read.private").is_none()),
        "a private receipt stays here"
    );

    let (st, _) = s
        .put(
            &format!("/_matrix/client/v3/presence/{}/status", common::urlencode(me)),
            Some(&alice),
            json!({"presence": "unavailable", "status_msg": "gardening"}),
        )
        .await;
    assert_eq!(st, 200);
    stand
        .wait_for_edu("m.presence", |c| c["push"][0]["user_id"] == me && c["push"][0]["status_msg"] == "gardening")
        .await;

    let (st, _) = s
        .put(
            "/_matrix/client/v3/sendToDevice/m.room_key_request/td1",
            Some(&alice),
            json!({"messages": {j.user.clone(): {"STAND": {"action": "request_cancellation", "request_id": "x", "requesting_device_id": device}}}}),
        )
        .await;
    assert_eq!(st, 200);
    let td = stand.wait_for_edu("m.direct_to_device", |c| c["sender"] == me).await;
    assert_eq!(td["type"], "m.room_key_request");
    assert_eq!(td["messages"][&j.user]["STAND"]["request_id"], "x");
    assert!(td["message_id"].as_str().is_some_and(|m| !m.is_empty()));

    upload_device_keys(&s, &alice, me, &device, "one").await;
    let update = stand
        .wait_for_edu("m.device_list_update", |c| c["device_id"] == device.as_str() && c["keys"].is_object())
        .await;
    assert_eq!(update["user_id"], me);
    assert_eq!(update["keys"]["keys"][format!("curve25519:{device}")], "curve-one");
    assert_eq!(update["deleted"], false);
    let stream_id = update["stream_id"].as_i64().unwrap();

    // Its questions about Alice's keys.
    let (st, q) = fed(
        &s,
        &stand,
        &stand.key,
        "POST",
        "/_matrix/federation/v1/user/keys/query",
        Some(&json!({"device_keys": {me: []}})),
    )
    .await;
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["device_keys"][me][&device]["keys"][format!("ed25519:{device}")], "ed-one");
    assert!(q.get("user_signing_keys").is_none_or(|k| k.get(me).is_none()), "{q}");
    let claim = json!({"one_time_keys": {me: {device.clone(): "signed_curve25519"}}});
    let (st, c) = fed(&s, &stand, &stand.key, "POST", "/_matrix/federation/v1/user/keys/claim", Some(&claim)).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["one_time_keys"][me][&device]["signed_curve25519:AAAA"]["key"], "otk-a");
    let (_, c) = fed(&s, &stand, &stand.key, "POST", "/_matrix/federation/v1/user/keys/claim", Some(&claim)).await;
    assert!(c["one_time_keys"][me][&device].as_object().is_none_or(|k| k.is_empty()), "claimed once: {c}");
    let (st, d) = fed(
        &s,
        &stand,
        &stand.key,
        "GET",
        &format!("/_matrix/federation/v1/user/devices/{}", common::urlencode(me)),
        None,
    )
    .await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(d["stream_id"].as_i64(), Some(stream_id), "{d}");
    assert_eq!(d["devices"][0]["device_id"], device.as_str());
    assert_eq!(d["devices"][0]["keys"]["keys"][format!("curve25519:{device}")], "curve-one");
    let (st, _) =
        fed(&s, &stand, &stand.key, "GET", "/_matrix/federation/v1/user/devices/%40nobody%3Aelsewhere.test", None)
            .await;
    assert_eq!(st, 404);

    // New keys: the next update names the one before it.
    upload_device_keys(&s, &alice, me, &device, "two").await;
    let next = stand
        .wait_for_edu("m.device_list_update", |c| c["keys"]["keys"][format!("curve25519:{device}")] == "curve-two")
        .await;
    assert_eq!(next["prev_id"], json!([stream_id]));
}

/// Media of a server without authenticated federation media is fetched once from its legacy
/// path (after the federation endpoint answers M_UNRECOGNIZED), kept, and served from the copy;
/// the legacy client endpoints do not fetch; an item over `max_upload_size` is 502 M_TOO_LARGE
/// (the spec's answer) and not kept; after `media_retention.remote_media_lifetime` the copy is
/// dropped and fetched again when asked for.
#[tokio::test]
async fn remote_media_is_fetched_once_kept_and_dropped_after_its_lifetime() {
    let stand = stand_in().await;
    let small = json!({"pretend": "picture"}).to_string();
    let big = "x".repeat(4096);
    let legacy = format!("GET /_matrix/media/v3/download/{}/", stand.name);
    stand.routes.lock().unwrap().push((format!("{legacy}pic"), small.clone()));
    stand.routes.lock().unwrap().push((format!("{legacy}big"), format!("\"{big}\"")));
    let configure = |c: &mut hearth_server::Config| {
        c.federation_verify_certificates = false;
        c.trusted_key_servers = Vec::new();
        c.ip_range_whitelist = vec!["127.0.0.0/8".to_owned()];
        c.max_upload_size = hearth_server::config::ByteSize(1024);
        c.media_retention.remote_media_lifetime =
            Some(hearth_server::config::HumanDuration(std::time::Duration::from_secs(1)));
    };
    let mut s = hearth_with(configure).await;
    let alice = s.user("alice").await;
    let url = |id: &str| format!("/_matrix/client/v1/media/download/{}/{id}", stand.name);
    let fetches =
        |stand: &Stand| stand.asked.lock().unwrap().iter().filter(|l| l.starts_with(&format!("{legacy}pic"))).count();

    let got = s.http.get(format!("{}{}", s.base, url("pic"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), small);
    assert!(
        stand.asked.lock().unwrap().iter().any(|l| l.starts_with("GET /_matrix/federation/v1/media/download/pic")),
        "the authenticated endpoint is tried first"
    );
    let again = s.http.get(format!("{}{}", s.base, url("pic"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(again.text().await.unwrap(), small);
    assert_eq!(fetches(&stand), 1, "served from the copy");

    let (st, v) = s.get(&format!("/_matrix/media/v3/download/{}/other", stand.name), None).await;
    assert_eq!(st, 404, "{v}");
    assert!(!stand.asked.lock().unwrap().iter().any(|l| l.contains("/other")), "the legacy endpoints do not fetch");

    let (st, v) = s.get(&url("big"), Some(&alice)).await;
    assert_eq!((st.as_u16(), v["errcode"].as_str()), (502, Some("M_TOO_LARGE")), "{v}");
    let (st, _) = s.get(&format!("/_matrix/client/v1/media/download/{}/bad%20id", stand.name), Some(&alice)).await;
    assert_eq!(st, 400);

    // A second later, the next start's sweep drops the copy; asked again, it is fetched again.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    s.stop().await;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    let mut config = common::test_config(dir.path());
    configure(&mut config);
    let s = TestServer::start_in(dir, config).await;
    // The start's sweep runs beside serving: the copy's file goes when it has run.
    let store = s.running.as_ref().unwrap().config().data_dir().join("media");
    let kept = || common::files_under(&store).into_iter().filter(|p| !p.starts_with(store.join("tmp"))).count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while kept() > 0 {
        assert!(std::time::Instant::now() < deadline, "the start's sweep drops the copy past its lifetime");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let alice = s.sign_in("alice").await;
    let got = s.http.get(format!("{}{}", s.base, url("pic"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(got.text().await.unwrap(), small);
    assert_eq!(fetches(&stand), 2, "dropped after its lifetime, fetched again");
}

/// Another server reads the public room directory only when `allow_public_rooms_over_federation`
/// says so (403 by default, as in Synapse); a space's hierarchy shows it the rooms it may see
/// (a public child) and names the others as inaccessible (an invite-only child); an invite-only
/// room it has nobody in is unknown to it.
#[tokio::test]
async fn other_servers_see_the_directory_when_allowed_and_what_they_may_of_a_space() {
    let stand = stand_in().await;
    for open in [false, true] {
        let s = hearth_with(|c| c.allow_public_rooms_over_federation = open).await;
        let alice = s.user("alice").await;
        let (_, v) = s
            .post(
                "/_matrix/client/v3/createRoom",
                Some(&alice),
                json!({"preset": "public_chat", "visibility": "public", "name": "Allotments"}),
            )
            .await;
        let public = v["room_id"].as_str().unwrap().to_owned();
        let (st, dir) = fed(&s, &stand, &stand.key, "GET", "/_matrix/federation/v1/publicRooms", None).await;
        if !open {
            assert_eq!((st.as_u16(), dir["errcode"].as_str()), (403, Some("M_FORBIDDEN")), "{dir}");
            continue;
        }
        assert_eq!(st, 200, "{dir}");
        assert_eq!(dir["chunk"][0]["name"], "Allotments");
        let (st, dir) = fed(
            &s,
            &stand,
            &stand.key,
            "POST",
            "/_matrix/federation/v1/publicRooms",
            Some(&json!({"filter": {"generic_search_term": "nothing like it"}})),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(dir["chunk"], json!([]), "the filter applies");

        let (_, v) = s.post("/_matrix/client/v3/createRoom", Some(&alice), json!({"preset": "private_chat"})).await;
        let private = v["room_id"].as_str().unwrap().to_owned();
        let via = json!({"via": ["hearth.test"]});
        let (_, v) = s
            .post(
                "/_matrix/client/v3/createRoom",
                Some(&alice),
                json!({"preset": "public_chat", "name": "Village", "creation_content": {"type": "m.space"},
                       "initial_state": [
                           {"type": "m.space.child", "state_key": public, "content": via},
                           {"type": "m.space.child", "state_key": private, "content": via}]}),
            )
            .await;
        let space = v["room_id"].as_str().unwrap().to_owned();
        let path = |r: &str| format!("/_matrix/federation/v1/hierarchy/{}", common::urlencode(r));
        let (st, h) = fed(&s, &stand, &stand.key, "GET", &path(&space), None).await;
        assert_eq!(st, 200, "{h}");
        assert_eq!(h["room"]["name"], "Village");
        assert_eq!(h["room"]["children_state"].as_array().unwrap().len(), 2);
        let children: Vec<&str> =
            h["children"].as_array().unwrap().iter().filter_map(|c| c["room_id"].as_str()).collect();
        assert_eq!(children, [public.as_str()]);
        assert_eq!(h["inaccessible_children"], json!([private]));
        let (st, _) = fed(&s, &stand, &stand.key, "GET", &path(&private), None).await;
        assert_eq!(st, 404, "a room the server has nobody in and may not preview");
    }
}

/// A Hearth that checks certificates and trusts a test CA, with two other servers: one with a
/// certificate from that CA (working), one self-signed (a wrong certificate).
async fn tester_setup() -> (TestServer, Stand, Stand, tempfile::TempDir) {
    let (good, ca) = stand_in_with_ca().await;
    let bad = stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let s = hearth_with(|c| {
        c.federation_verify_certificates = true;
        c.federation_custom_ca_list = vec![ca_file.clone()];
    })
    .await;
    (s, good, bad, dir)
}

async fn test_server(s: &TestServer, name: &str) -> Value {
    let running = s.running.as_ref().unwrap();
    let url = format!(
        "http://{}/_hearth/admin/v1/federation/test?server_name={}",
        running.admin_addr(),
        common::urlencode(name)
    );
    s.http.get(&url).bearer_auth(running.admin_token()).send().await.unwrap().json().await.unwrap()
}

fn step_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {report}"))
}

/// The dashboard's federation tester: a working server passes every step (its certificate
/// chain shown); a self-signed certificate is named as the cause; a server name that does not
/// resolve is said to have no address; a private address is refused by the outbound policy.
#[tokio::test]
async fn the_federation_tester_explains_what_other_servers_find() {
    let (s, good, bad, _dir) = tester_setup().await;
    let r = test_server(&s, &good.name).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(step_of(&r, "Certificate")["status"], "pass");
    assert_eq!(step_of(&r, "Signing keys")["status"], "pass");
    assert_eq!(r["certificates"][0]["names"], json!(["127.0.0.1"]), "{r}");
    assert!(r["certificates"][0]["issuer"].as_str().unwrap().contains("Hearth test CA"), "{r}");

    let r = test_server(&s, &bad.name).await;
    assert_eq!(r["ok"], false, "{r}");
    let cert = step_of(&r, "Certificate");
    assert_eq!(cert["status"], "fail", "{r}");
    assert!(cert["detail"].as_str().unwrap().contains("self-signed"), "{r}");
    assert!(cert["fix"].as_str().unwrap().contains("Let's Encrypt"), "{r}");

    let r = test_server(&s, "nowhere.invalid").await;
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(step_of(&r, "Addresses")["status"], "fail", "{r}");

    let r = test_server(&s, "not a name").await;
    assert_eq!(step_of(&r, "Server name")["status"], "fail", "{r}");
}

/// The same three answers in the dashboard, in headless Chromium.
#[tokio::test]
#[ignore = "needs Chromium and playwright-core: scripts/test.sh runs it"]
async fn the_dashboards_federation_tester_in_chromium() {
    let (s, good, bad, _dir) = tester_setup().await;
    let running = s.running.as_ref().unwrap();
    let url = format!("http://{}/_hearth/admin/v1/setup/done", running.admin_addr());
    let resp = s.http.post(&url).bearer_auth(running.admin_token()).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let got =
        common::ui_flow("tester", &running.admin_url(), &format!("{},{},nowhere.invalid", good.name, bad.name)).await;
    let results = got["results"].as_array().unwrap();
    assert!(results[0]["verdict"].as_str().unwrap().contains("can be reached"), "{got}");
    assert!(results[1]["verdict"].as_str().unwrap().contains("cannot be reached"), "{got}");
    assert!(results[1]["problems"].as_str().unwrap().contains("self-signed"), "{got}");
    assert!(results[2]["problems"].as_str().unwrap().contains("Addresses"), "{got}");
}

/// Redactions from another server: its user's redaction of their own message is applied (the
/// local client reads the message redacted); one of a local user's message by someone without
/// the power to redact others' events is kept but not applied.
#[tokio::test]
async fn a_received_redaction_applies_when_its_sender_may_redact_the_target() {
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, mut j, _) = joined_room(&s, &stand).await;
    let enc = common::urlencode(&j.room);
    let (_, sent) = s
        .put(
            &format!("/_matrix/client/v3/rooms/{enc}/send/m.room.message/r1"),
            Some(&alice),
            json!({"msgtype": "m.text", "body": "alice's"}),
        )
        .await;
    let alices = sent["event_id"].as_str().unwrap().to_owned();
    let (said_id, said) =
        signed(&stand, &stand.key, j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "regretted"})));
    let (st, _) = send(&s, &stand, "r1", vec![said]).await;
    assert_eq!(st, 200);
    j.prev = (said_id.clone(), j.prev.1 + 1);
    let mut own = j.event("m.room.redaction", None, json!({"redacts": said_id}));
    own["prev_events"] = json!([said_id]);
    let (own_id, own) = signed(&stand, &stand.key, own);
    j.prev = (own_id.clone(), j.prev.1 + 1);
    let mut other = j.event("m.room.redaction", None, json!({"redacts": alices}));
    other["prev_events"] = json!([own_id]);
    let (_, other) = signed(&stand, &stand.key, other);
    let (st, v) = send(&s, &stand, "r2", vec![own, other]).await;
    assert_eq!(st, 200, "{v}");
    let event = |id: &str| format!("/_matrix/client/v3/rooms/{enc}/event/{}", common::urlencode(id));
    let (_, e) = s.get(&event(&said_id), Some(&alice)).await;
    assert_eq!(e["content"], json!({}), "redacted by its sender: {e}");
    assert_eq!(e["unsigned"]["redacted_because"]["sender"], j.user);
    let (_, e) = s.get(&event(&alices), Some(&alice)).await;
    assert_eq!(e["content"]["body"], "alice's", "Mallory may not redact Alice's message: {e}");
}

/// A redaction that arrives before the event it redacts (they are on two branches of the room's
/// history, and the redaction came first) is kept, and applied when the event arrives: the
/// local client never reads the message's text.
#[tokio::test]
async fn a_redaction_received_before_its_target_applies_when_the_target_arrives() {
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, j, _) = joined_room(&s, &stand).await;
    let enc = common::urlencode(&j.room);
    // Both built on the same latest event: the redaction does not lead back to its target.
    let (target_id, target) =
        signed(&stand, &stand.key, j.event("m.room.message", None, json!({"msgtype": "m.text", "body": "too soon"})));
    let (_, redaction) = signed(&stand, &stand.key, j.event("m.room.redaction", None, json!({"redacts": target_id})));
    let (st, v) = send(&s, &stand, "early1", vec![redaction]).await;
    assert_eq!(st, 200, "{v}");
    let event = format!("/_matrix/client/v3/rooms/{enc}/event/{}", common::urlencode(&target_id));
    let (st, _) = s.get(&event, Some(&alice)).await;
    assert_eq!(st, 404, "the target is not here yet");
    let (st, v) = send(&s, &stand, "early2", vec![target]).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["pdus"][&target_id].get("error").is_none(), "the target is accepted: {v}");
    let (st, e) = s.get(&event, Some(&alice)).await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["content"], json!({}), "redacted as it arrived: {e}");
    assert_eq!(e["unsigned"]["redacted_because"]["sender"], j.user);
    assert!(!bodies(&s, &alice, &j.room).await.contains(&"too soon".to_owned()), "the text never shows");
}

/// The device list of another server's user who shares a room here is kept: the first
/// /keys/query fetches it whole from their server (`/user/devices`), later ones are answered from
/// it without asking; their server's updates that continue the list are applied as they come (a
/// new device, a deleted one); an update after a gap in `prev_id` has the list fetched whole
/// again; and when their server does not answer then, the list kept is still given.
#[tokio::test]
async fn a_remote_users_device_list_is_kept_and_follows_their_servers_updates() {
    let stand = stand_in().await;
    let s = hearth().await;
    let (alice, j, _) = joined_room(&s, &stand).await;
    let user = j.user.clone();
    let keys = |device: &str, curve: &str| {
        json!({"user_id": user, "device_id": device, "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
            "keys": {format!("curve25519:{device}"): curve, format!("ed25519:{device}"): "ed"}, "signatures": {}})
    };
    let devices_route = "GET /_matrix/federation/v1/user/devices/";
    let answer_devices = |stream_id: u64, devices: Value| {
        let mut routes = stand.routes.lock().unwrap();
        routes.retain(|(p, _)| p != devices_route);
        routes.push((
            devices_route.to_owned(),
            json!({"user_id": user, "stream_id": stream_id, "devices": devices,
                "master_key": {"user_id": user, "usage": ["master"], "keys": {"ed25519:M": "M"}}})
            .to_string(),
        ));
    };
    answer_devices(5, json!([{"device_id": "PHONE", "keys": keys("PHONE", "c1"), "device_display_name": "Phone"}]));
    let asked = || stand.asked.lock().unwrap().iter().filter(|l| l.starts_with(devices_route)).count();
    let query = async || {
        let body = json!({"device_keys": {user.clone(): []}});
        let (st, v) = s.post("/_matrix/client/v3/keys/query", Some(&alice), body).await;
        assert_eq!(st, 200, "{v}");
        assert!(v["failures"].as_object().is_none_or(|f| f.is_empty()), "{v}");
        let mut devices: Vec<(String, String)> = v["device_keys"][&user]
            .as_object()
            .unwrap()
            .iter()
            .map(|(d, k)| (d.clone(), k["keys"][format!("curve25519:{d}")].as_str().unwrap().to_owned()))
            .collect();
        devices.sort();
        (devices, v)
    };
    let pairs = |list: &[(&str, &str)]| list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();

    let (devices, v) = query().await;
    assert_eq!(devices, pairs(&[("PHONE", "c1")]));
    assert_eq!(v["device_keys"][&user]["PHONE"]["unsigned"]["device_display_name"], "Phone");
    assert_eq!(v["master_keys"][&user]["keys"]["ed25519:M"], "M", "{v}");
    assert_eq!(asked(), 1);
    assert_eq!(query().await.0, pairs(&[("PHONE", "c1")]));
    assert_eq!(asked(), 1, "answered from the list kept");

    let update = |device: &str, stream_id: u64, prev: u64, keys: Option<Value>| {
        let mut c = json!({"user_id": user, "device_id": device, "stream_id": stream_id, "prev_id": [prev],
            "deleted": keys.is_none()});
        if let Some(k) = keys {
            c["keys"] = k;
        }
        json!({"edu_type": "m.device_list_update", "content": c})
    };
    let (st, _) = send_edus(&s, &stand, "dl1", vec![update("LAPTOP", 6, 5, Some(keys("LAPTOP", "c2")))]).await;
    assert_eq!(st, 200);
    assert_eq!(query().await.0, pairs(&[("LAPTOP", "c2"), ("PHONE", "c1")]), "a new device");
    let (st, _) = send_edus(&s, &stand, "dl2", vec![update("PHONE", 7, 6, None)]).await;
    assert_eq!(st, 200);
    assert_eq!(query().await.0, pairs(&[("LAPTOP", "c2")]), "a deleted device");
    assert_eq!(asked(), 1, "updates that continue the list need no fetch");

    // Update 8 never came: the list is fetched whole, as the server has it now.
    answer_devices(9, json!([{"device_id": "TABLET", "keys": keys("TABLET", "c3")}]));
    let (st, _) = send_edus(&s, &stand, "dl3", vec![update("TABLET", 9, 8, Some(keys("TABLET", "c3")))]).await;
    assert_eq!(st, 200);
    assert_eq!(query().await.0, pairs(&[("TABLET", "c3")]));
    assert_eq!(asked(), 2, "fetched again after the gap");

    // Another gap while the server does not answer /user/devices: the list kept is given.
    stand.routes.lock().unwrap().retain(|(p, _)| p != devices_route);
    let (st, _) = send_edus(&s, &stand, "dl4", vec![update("WATCH", 12, 11, Some(keys("WATCH", "c4")))]).await;
    assert_eq!(st, 200);
    assert_eq!(query().await.0, pairs(&[("TABLET", "c3")]), "the stale list, not nothing");
    assert_eq!(asked(), 3, "it was asked");

    // Once nobody here shares a room with them, their list is not kept: their server is asked.
    let answer = json!({"device_keys": {user.clone(): {"FRESH": keys("FRESH", "c5")}}});
    stand.routes.lock().unwrap().push(("POST /_matrix/federation/v1/user/keys/query".into(), answer.to_string()));
    let leave = format!("/_matrix/client/v3/rooms/{}/leave", common::urlencode(&j.room));
    let (st, _) = s.post(&leave, Some(&alice), json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(query().await.0, pairs(&[("FRESH", "c5")]));
}
