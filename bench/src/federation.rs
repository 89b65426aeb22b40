//! Federation benchmark: Hearth (a release `hearth` binary) against Synapse, in the same run, in
//! the private network of `tests/federation/run.sh` with two Synapses (`HEARTH_FED_SYNAPSES=2`).
//! Run it with `scripts/bench-federation.sh`, which builds everything and writes the table.
//!
//! - Join: synapse.test hosts a room with `MEMBERS` members (2,000 by default). Hearth
//!   (hearth.test) joins it, then synapse2.test does: time from `/join` to its answer and to the
//!   whole member list being readable, and the joining server's peak RSS.
//! - Inbound: this program plays a server of its own (other.test, with its own key and TLS
//!   certificate), joins a room on the receiving server through `make_join`/`send_join`, and
//!   sends `PDUS` messages in transactions of 50, one at a time, as a server would: PDUs
//!   accepted per second and the receiver's CPU per PDU, Hearth against synapse.test.
//! - Delivery: a synapse.test user sends messages (`ROUNDS`, 200 by default) to rooms where a
//!   hearth.test user and a synapse2.test user each long-poll `/sync`: time from the start of the
//!   send to the last byte of the `/sync` answer carrying it, p50/p90/p99.
//! - Remote media: 5 MB pictures uploaded on synapse.test, downloaded by users of each receiver
//!   (first: fetched over federation; then cached) and a first thumbnail of another.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use hearth_bench::{CpuMeter, Cs, HEARTH_LIMITS, next_batch, percentile, rss_mib};
use ruma::{
    CanonicalJsonObject, RoomVersionId, ServerName,
    api::federation::authentication::XMatrix,
    serde::Base64,
    signatures::{Ed25519KeyPair, KeyPair},
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A transaction holds at most 50 PDUs (spec).
const PDUS_PER_TXN: usize = 50;
const OTHER: &str = "other.test";
const OTHER_ADDR: &str = "127.0.0.5:8448";

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is set by tests/federation/run.sh (HEARTH_FED_SYNAPSES=2)"))
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// other.test: this program as a homeserver, with a signing key, answering its key document
/// (and, with an empty answer, whatever the receivers send it) over TLS at `OTHER_ADDR`.
struct Other {
    key: Arc<Ed25519KeyPair>,
    /// Every event other.test made, by ID: receivers may ask for them (`/event`,
    /// `/get_missing_events`), as Synapse does when it handles a transaction's PDUs out of order.
    events: Events,
    http: reqwest::Client,
    txn: std::sync::atomic::AtomicU64,
}

impl Other {
    async fn start(work: &str, ca: &reqwest::Certificate) -> Result<Self> {
        let key = Arc::new(Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "bench".into())?);
        let mut doc: CanonicalJsonObject = serde_json::from_value(json!({
            "server_name": OTHER,
            "valid_until_ts": now_ms() + 86_400_000,
            "verify_keys": {"ed25519:bench": {"key": Base64::<ruma::serde::base64::Standard>::new(key.public_key().to_vec()).encode()}},
            "old_verify_keys": {},
        }))?;
        ruma::signatures::sign_json(OTHER, key.as_ref(), &mut doc)?;
        let doc = serde_json::to_string(&doc)?;

        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let certs = CertificateDer::pem_file_iter(format!("{work}/tls/{OTHER}.pem"))?.collect::<Result<Vec<_>, _>>()?;
        let private = PrivateKeyDer::from_pem_file(format!("{work}/tls/{OTHER}.key"))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, private)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind(OTHER_ADDR).await?;
        let events = Events::default();
        let served = events.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, doc, events) = (acceptor.clone(), doc.clone(), served.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = answer(tls, &doc, &events).await;
                    }
                });
            }
        });
        let http = reqwest::Client::builder()
            .add_root_certificate(ca.clone())
            .timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(4)
            .build()?;
        Ok(Self { key, events, http, txn: 0.into() })
    }

    /// A federation request signed by other.test (X-Matrix) to `destination`.
    async fn request(&self, destination: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let bytes = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let request = http::Request::builder().method(method).uri(path).body(bytes.clone())?;
        let origin = <&ServerName>::try_from(OTHER)?;
        let dest = <&ServerName>::try_from(destination)?;
        let object = XMatrix::request_object(&request, origin, dest)?;
        let (key_id, sig) = self.key.sign(&serde_json::to_vec(&object)?).into_parts();
        let x = XMatrix::new(origin.to_owned(), dest.to_owned(), key_id.as_str().try_into()?, Base64::new(sig));
        let mut req = self
            .http
            .request(method.parse()?, format!("https://{destination}:8448{path}"))
            .header("Authorization", http::HeaderValue::from(&x));
        if body.is_some() {
            req = req.header("Content-Type", "application/json").body(bytes);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{destination} {method} {path}: {status} {v}");
        Ok(v)
    }

    /// Hashes and signs `event` as other.test's, and keeps it for those who ask; returns its ID
    /// (room version 12).
    fn sign(&self, event: &mut CanonicalJsonObject) -> Result<String> {
        let rules = RoomVersionId::V12.rules().context("v12 rules")?;
        ruma::signatures::hash_and_sign_event(OTHER, self.key.as_ref(), event, &rules.redaction)?;
        let id = format!("${}", ruma::signatures::reference_hash(event, &rules)?);
        self.events.lock().unwrap().events.insert(id.clone(), serde_json::to_value(&*event)?);
        Ok(id)
    }

    fn event_id(event: &Value) -> Result<String> {
        let rules = RoomVersionId::V12.rules().context("v12 rules")?;
        let obj: CanonicalJsonObject = serde_json::from_value(event.clone())?;
        Ok(format!("${}", ruma::signatures::reference_hash(&obj, &rules)?))
    }
}

type Events = Arc<std::sync::Mutex<Known>>;

/// What other.test knows of the room it floods: every event by ID, and the room's state (and its
/// auth chain) after its join, which no message changes.
#[derive(Default)]
struct Known {
    events: std::collections::HashMap<String, Value>,
    state: Vec<String>,
    auth_chain: Vec<String>,
}

/// Answers one request on a connection of other.test: its keys, its events (`/event`,
/// `/get_missing_events`), `{}` to anything else it is sent (the receivers' transactions), 404
/// to other reads.
async fn answer(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    doc: &str,
    events: &Events,
) -> Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let header_end = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    let length: usize = text
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = head[header_end.min(head.len())..].to_vec();
    while body.len() < length {
        let n = tls.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let line = text.lines().next().unwrap_or_default();
    let path = line.split(' ').nth(1).unwrap_or_default();
    let pdu_answer =
        |pdus: Vec<Value>| json!({"origin": OTHER, "origin_server_ts": now_ms(), "pdus": pdus}).to_string();
    let (status, body) = if line.contains(" /_matrix/key/v2/server") {
        ("200 OK", doc.to_owned())
    } else if let Some(id) = path.strip_prefix("/_matrix/federation/v1/event/")
        && let Some(e) = events.lock().unwrap().events.get(&id.replace("%24", "$")).cloned()
    {
        ("200 OK", pdu_answer(vec![e]))
    } else if path.starts_with("/_matrix/federation/v1/state_ids/") {
        let k = events.lock().unwrap();
        ("200 OK", json!({"pdu_ids": k.state, "auth_chain_ids": k.auth_chain}).to_string())
    } else if path.starts_with("/_matrix/federation/v1/state/") {
        let k = events.lock().unwrap();
        let pdus = |ids: &[String]| ids.iter().filter_map(|id| k.events.get(id).cloned()).collect::<Vec<_>>();
        ("200 OK", json!({"pdus": pdus(&k.state), "auth_chain": pdus(&k.auth_chain)}).to_string())
    } else if line.starts_with("POST /_matrix/federation/v1/get_missing_events/") {
        ("200 OK", json!({"events": missing_events(events, &serde_json::from_slice(&body)?)}).to_string())
    } else if line.starts_with("PUT ") {
        ("200 OK", "{}".to_owned())
    } else {
        ("404 Not Found", r#"{"errcode":"M_NOT_FOUND","error":"benchmark server"}"#.to_owned())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(resp.as_bytes()).await?;
    tls.shutdown().await?;
    Ok(())
}

/// `/get_missing_events`: the events before `latest_events` back to `earliest_events`, oldest
/// first, at most `limit` (the spec's default 10).
fn missing_events(events: &Events, req: &Value) -> Vec<Value> {
    let events = &events.lock().unwrap().events;
    let names = |key: &str| -> Vec<String> {
        req[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    };
    let earliest = names("earliest_events");
    let limit = req["limit"].as_u64().unwrap_or(10) as usize;
    let mut found = Vec::new();
    let mut next: Vec<String> = names("latest_events")
        .iter()
        .filter_map(|id| events.get(id))
        .flat_map(|e| e["prev_events"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    while let Some(id) = next.pop() {
        if found.len() >= limit || earliest.contains(&id) {
            continue;
        }
        let Some(e) = events.get(&id) else { continue };
        next.extend(e["prev_events"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)));
        found.push(e.clone());
    }
    found.reverse();
    found
}

/// Starts the `hearth` binary as hearth.test where nginx forwards; returns it and its client API.
fn start_hearth(bin: &str, dir: &std::path::Path, ca: &str, listen: &str) -> Result<std::process::Child> {
    let (host, port) = listen.rsplit_once(':').context("HEARTH_FED_LISTEN")?;
    let config = dir.join("homeserver.toml");
    std::fs::write(
        &config,
        format!(
            "server_name = \"hearth.test\"\npublic_baseurl = \"https://hearth.test/\"\ndata_dir = \"{data}\"\n\
             secret_store = \"file\"\nenable_registration = true\nenable_registration_without_verification = true\n\
             log_level = \"warn\"\nlog_dir = \"{logs}\"\nfederation_custom_ca_list = [\"{ca}\"]\ntrusted_key_servers = []\n\
             ip_range_whitelist = [\"127.0.0.0/8\"]\n{HEARTH_LIMITS}\n[admin]\nport = 0\n\
             [[listeners]]\nport = {port}\nbind_addresses = [\"{host}\"]\nx_forwarded = true\n",
            data = dir.join("data").display(),
            logs = dir.join("logs").display(),
        ),
    )?;
    // HEARTH_FED_BENCH_LOG=FILE keeps Hearth's log there, with RUST_LOG as set (for example
    // `sqlx::query=debug` to see each statement while looking for where the time goes).
    let log = match std::env::var_os("HEARTH_FED_BENCH_LOG") {
        Some(path) => std::process::Stdio::from(std::fs::File::create(path)?),
        None => std::process::Stdio::null(),
    };
    let mut command = std::process::Command::new(bin);
    command.args(["serve", "--config"]).arg(&config).env_remove("RUST_BACKTRACE");
    if std::env::var_os("HEARTH_FED_BENCH_LOG").is_none() {
        command.env_remove("RUST_LOG");
    }
    Ok(command.stdout(std::process::Stdio::null()).stderr(log).spawn()?)
}

/// The process of the Synapse named `name` in this run (its config lives in `work/name/`).
fn synapse_pid(work: &str, name: &str) -> Result<u32> {
    let config = format!("{work}/{name}/homeserver.yaml");
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let args: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
        if args.contains(&b"synapse.app.homeserver".as_slice()) && args.contains(&config.as_bytes()) {
            return Ok(pid);
        }
    }
    bail!("{name} is not running")
}

/// synapse.test's room of `members` members (one owner who writes 50 messages, the rest join).
async fn big_room(synapse: &Cs, members: usize) -> Result<String> {
    let (_, owner) = synapse.register("bigowner").await?;
    let room = synapse
        .create_room(
            &owner,
            json!({"preset": "public_chat", "room_alias_name": "big", "name": "Big", "room_version": "12"}),
        )
        .await?;
    for i in 0..50 {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/big{i}");
        synapse
            .call(
                reqwest::Method::PUT,
                &path,
                Some(&owner),
                Some(json!({"msgtype": "m.text", "body": format!("hello {i}")})),
            )
            .await?;
    }
    let started = Instant::now();
    let joined = futures::stream::iter(1..members)
        .map(|i| {
            let room = room.clone();
            async move {
                let (_, token) = synapse.register(&format!("member{i}")).await?;
                synapse.join(&token, &room).await?;
                if i % 250 == 0 {
                    eprintln!("  {i} members joined ({:.0} s)", started.elapsed().as_secs_f64());
                }
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await;
    joined.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(room)
}

/// One server joining the big room: (seconds to the `/join` answer, seconds until the whole
/// member list reads, peak RSS MiB before, peak RSS MiB after).
async fn join_big_room(cs: &Cs, pid: u32, user: &str, members: usize) -> Result<(f64, f64, f64, f64)> {
    let (_, token) = cs.register(user).await?;
    let (_, before) = rss_mib(pid);
    let started = Instant::now();
    let v = cs
        .call(reqwest::Method::POST, "/_matrix/client/v3/join/%23big:synapse.test", Some(&token), Some(json!({})))
        .await?;
    let answered = started.elapsed().as_secs_f64();
    let room = v["room_id"].as_str().context("room_id")?.to_owned();
    loop {
        let n = cs.joined_members(&token, &room).await?;
        if n > members {
            break;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(900),
            "{}: {n} of {} members after 15 min",
            cs.name,
            members + 1
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let usable = started.elapsed().as_secs_f64();
    let (_, after) = rss_mib(pid);
    Ok((answered, usable, before, after))
}

/// other.test joins a new room of `cs` and sends it `pdus` messages in transactions of 50:
/// (PDUs per second, receiver CPU ms per PDU).
async fn flood(other: &Other, cs: &Cs, destination: &str, pid: u32, pdus: usize) -> Result<(f64, f64)> {
    let (_, token) = cs.register("floodowner").await?;
    let room = cs.create_room(&token, json!({"preset": "public_chat", "name": "Busy", "room_version": "12"})).await?;
    let user = format!("@flood:{OTHER}");
    let made = other
        .request(destination, "GET", &format!("/_matrix/federation/v1/make_join/{room}/{user}?ver=12"), None)
        .await?;
    let mut join: CanonicalJsonObject = serde_json::from_value(made["event"].clone())?;
    join.insert("origin_server_ts".into(), ruma::CanonicalJsonValue::Integer((now_ms() as i64).try_into()?));
    let join_id = other.sign(&mut join)?;
    let joined = other
        .request(destination, "PUT", &format!("/_matrix/federation/v2/send_join/{room}/{join_id}"), Some(&json!(join)))
        .await?;
    // The join must be there under the ID computed here, or every message would name an unknown
    // prev event.
    other
        .request(destination, "GET", &format!("/_matrix/federation/v1/event/{join_id}"), None)
        .await
        .with_context(|| format!("the join is not known as {join_id}; template: {}", made["event"]))?;
    let mut power = None;
    {
        let mut known = other.events.lock().unwrap();
        known.state = vec![join_id.clone()];
        known.auth_chain.clear();
        for (list, is_state) in [("state", true), ("auth_chain", false)] {
            for e in joined[list].as_array().context("send_join answer")? {
                let id = Other::event_id(e)?;
                if is_state && e["type"] == "m.room.power_levels" {
                    power = Some(id.clone());
                }
                if is_state {
                    known.state.push(id.clone())
                } else {
                    known.auth_chain.push(id.clone())
                }
                known.events.insert(id, e.clone());
            }
        }
    }
    let power = power.context("no power levels in the room's state")?;

    // Every event built and signed before the clock starts: the receiver's work is measured.
    let mut prev = join_id.clone();
    let mut depth = join.get("depth").and_then(|d| d.as_integer()).map_or(0, i64::from);
    let mut events = Vec::with_capacity(pdus);
    for i in 0..pdus {
        depth += 1;
        let mut e: CanonicalJsonObject = serde_json::from_value(json!({
            "room_id": room, "sender": user, "type": "m.room.message",
            "content": {"msgtype": "m.text", "body": format!("busy {i}")},
            "prev_events": [prev], "auth_events": [power, join_id], "depth": depth,
            "origin_server_ts": now_ms(),
        }))?;
        prev = other.sign(&mut e)?;
        events.push(e);
    }
    let cpu = CpuMeter::start(pid);
    let started = Instant::now();
    for chunk in events.chunks(PDUS_PER_TXN) {
        let txn = other.txn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({"origin": OTHER, "origin_server_ts": now_ms(), "pdus": chunk});
        let answer =
            other.request(destination, "PUT", &format!("/_matrix/federation/v1/send/{txn}"), Some(&body)).await?;
        let refused: Vec<_> =
            answer["pdus"].as_object().into_iter().flatten().filter(|(_, r)| r.get("error").is_some()).collect();
        ensure!(refused.is_empty(), "{destination} refused PDUs: {refused:?}");
    }
    // Accepted means the room's local member sees it. Synapse answers a transaction once it has
    // staged its PDUs and processes them afterwards; Hearth answers once they are stored.
    let path = format!("/_matrix/client/v3/rooms/{room}/event/{prev}");
    while cs.call(reqwest::Method::GET, &path, Some(&token), None).await.is_err() {
        ensure!(started.elapsed() < Duration::from_secs(900), "{destination} does not show the last PDU");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.seconds();
    Ok((pdus as f64 / seconds, cpu * 1000.0 / pdus as f64))
}

/// A room on synapse.test with one reader on `receiver`, for the delivery rounds.
struct Reader<'a> {
    receiver: &'a Cs,
    token: String,
    room: String,
    filter: String,
    since: String,
}

/// synapse.test's `sender` makes a room; a new user of `receiver` joins it over federation and
/// syncs once, with a filter that keeps only that room's timeline (so presence or receipts do not
/// wake the long-poll).
async fn reader<'a>(synapse: &Cs, sender: &str, receiver: &'a Cs, name: &str) -> Result<Reader<'a>> {
    let room =
        synapse.create_room(sender, json!({"preset": "public_chat", "name": name, "room_version": "12"})).await?;
    let (user, token) = receiver.register(&format!("{name}reader")).await?;
    receiver
        .call(
            reqwest::Method::POST,
            &format!("/_matrix/client/v3/join/{room}?server_name=synapse.test"),
            Some(&token),
            Some(json!({})),
        )
        .await?;
    let filter = json!({
        "presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]},
        "room": {"rooms": [room], "timeline": {"limit": 10}, "state": {"lazy_load_members": true},
                 "ephemeral": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}},
    });
    let made = receiver
        .call(reqwest::Method::POST, &format!("/_matrix/client/v3/user/{user}/filter"), Some(&token), Some(filter))
        .await?;
    let filter = made["filter_id"].as_str().context("filter_id")?.to_owned();
    let first = receiver
        .call(reqwest::Method::GET, &format!("/_matrix/client/v3/sync?filter={filter}"), Some(&token), None)
        .await?;
    let since = next_batch(&first)?;
    Ok(Reader { receiver, token, room, filter, since })
}

/// One long-poll `/sync`: the whole body and when its last byte arrived.
async fn long_poll(http: reqwest::Client, url: String, token: String) -> Result<(Value, Instant)> {
    let resp = http.get(url).bearer_auth(token).send().await?;
    ensure!(resp.status().is_success(), "/sync: {}", resp.status());
    let body = resp.bytes().await?;
    let arrived = Instant::now();
    Ok((serde_json::from_slice(&body)?, arrived))
}

/// One round: the reader long-polls, `sender` sends a message on synapse.test; milliseconds from
/// the start of the send to the last byte of the `/sync` answer that carries it.
async fn deliver(synapse: &Cs, sender: &str, r: &mut Reader<'_>, mark: &str) -> Result<f64> {
    let poll = |since: &str| {
        let url = format!("{}/_matrix/client/v3/sync?filter={}&timeout=30000&since={since}", r.receiver.base, r.filter);
        tokio::spawn(long_poll(r.receiver.http.clone(), url, r.token.clone()))
    };
    let mut waiting = poll(&r.since);
    // Time for the long-poll to be parked at the receiver before the message leaves.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let path = format!("/_matrix/client/v3/rooms/{}/send/m.room.message/{mark}", r.room);
    synapse.call(reqwest::Method::PUT, &path, Some(sender), Some(json!({"msgtype": "m.text", "body": mark}))).await?;
    loop {
        let (v, arrived) = waiting.await??;
        r.since = next_batch(&v)?;
        let events = &v["rooms"]["join"][&r.room]["timeline"]["events"];
        if events.as_array().into_iter().flatten().any(|e| e["content"]["body"] == mark) {
            return Ok(arrived.duration_since(started).as_secs_f64() * 1000.0);
        }
        ensure!(started.elapsed() < Duration::from_secs(60), "{} never saw {mark}", r.receiver.name);
        waiting = poll(&r.since);
    }
}

/// `rounds` messages from synapse.test to a reader on each receiver, alternating, after a few
/// unmeasured ones: sorted latencies in ms per receiver.
async fn delivery(synapse: &Cs, readers: &mut [Reader<'_>], sender: &str, rounds: usize) -> Result<Vec<Vec<f64>>> {
    const WARM_UP: usize = 5;
    let mut times = vec![Vec::with_capacity(rounds); readers.len()];
    for i in 0..rounds + WARM_UP {
        for (n, r) in readers.iter_mut().enumerate() {
            let ms = deliver(synapse, sender, r, &format!("round{n}x{i}")).await?;
            if i >= WARM_UP {
                times[n].push(ms);
            }
        }
    }
    for t in &mut times {
        t.sort_by(f64::total_cmp);
    }
    Ok(times)
}

/// A PNG of noise (which does not compress) of about `bytes` bytes, different for each `seed`.
fn noise_png(bytes: usize, seed: u64) -> Result<Vec<u8>> {
    let side = ((bytes / 3) as f64).sqrt() as u32;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let image = image::RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}

/// Uploads `png` to synapse.test; returns its media ID.
async fn upload(synapse: &Cs, token: &str, png: Vec<u8>) -> Result<String> {
    let resp = synapse
        .http
        .post(format!("{}/_matrix/media/v3/upload?filename=noise.png", synapse.base))
        .bearer_auth(token)
        .header("Content-Type", "image/png")
        .body(png)
        .send()
        .await?;
    ensure!(resp.status().is_success(), "upload: {}", resp.status());
    let v: Value = resp.json().await?;
    let uri = v["content_uri"].as_str().context("content_uri")?;
    Ok(uri.rsplit('/').next().unwrap_or_default().to_owned())
}

/// Seconds to read `path` of `cs` whole, checking the answer is an image of `at_least` bytes.
async fn timed_get(cs: &Cs, token: &str, path: &str, at_least: usize) -> Result<f64> {
    let started = Instant::now();
    let resp = cs.http.get(format!("{}{path}", cs.base)).bearer_auth(token).send().await?;
    ensure!(resp.status().is_success(), "{} {path}: {}", cs.name, resp.status());
    let body = resp.bytes().await?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(body.len() >= at_least, "{} {path}: {} bytes", cs.name, body.len());
    ensure!(image::guess_format(&body).is_ok(), "{} {path}: not an image", cs.name);
    Ok(seconds)
}

/// Remote media as `receiver`'s user sees it: a picture of `size` bytes uploaded on synapse.test,
/// downloaded the first time (fetched over federation) and then from the cache (median of 5); and
/// a second one's first 320x240 thumbnail. (first ms, cached ms, first thumbnail ms)
async fn remote_media(synapse: &Cs, owner: &str, receiver: &Cs, size: usize, seed: u64) -> Result<(f64, f64, f64)> {
    let (_, token) = receiver.register("mediareader").await?;
    let picture = noise_png(size, seed)?;
    let length = picture.len();
    let full = upload(synapse, owner, picture).await?;
    let thumbnailed = upload(synapse, owner, noise_png(size, seed + 1)?).await?;
    let path = format!("/_matrix/client/v1/media/download/synapse.test/{full}");
    let first = timed_get(receiver, &token, &path, length).await?;
    let mut cached = Vec::new();
    for _ in 0..5 {
        cached.push(timed_get(receiver, &token, &path, length).await?);
    }
    cached.sort_by(f64::total_cmp);
    let path =
        format!("/_matrix/client/v1/media/thumbnail/synapse.test/{thumbnailed}?width=320&height=240&method=scale");
    let thumbnail = timed_get(receiver, &token, &path, 1).await?;
    Ok((first * 1000.0, cached[2] * 1000.0, thumbnail * 1000.0))
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(bin), Some(out)) = (args.next(), args.next()) else {
        bail!("usage: hearth-fed-bench HEARTH_BINARY OUTPUT.md (inside tests/federation/run.sh, HEARTH_FED_SYNAPSES=2)")
    };
    let members = knob("HEARTH_FED_BENCH_MEMBERS", 2000);
    let pdus = knob("HEARTH_FED_BENCH_PDUS", 2000);
    let rounds = knob("HEARTH_FED_BENCH_ROUNDS", 200);
    let media_mb = knob("HEARTH_FED_BENCH_MEDIA_MB", 5);
    let work = env("HEARTH_FED_WORK")?;
    let ca_path = env("HEARTH_FED_CA")?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path)?)?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(900)).build()?;
    let synapse = Cs { name: "synapse.test", base: env("SYNAPSE_URL")?, http: http.clone() };
    let synapse2 = Cs { name: "synapse2.test", base: env("SYNAPSE2_URL")?, http: http.clone() };
    let listen = env("HEARTH_FED_LISTEN")?;
    let hearth = Cs { name: "hearth.test", base: format!("http://{listen}"), http };

    let dir = tempfile::tempdir()?;
    let mut child = start_hearth(&bin, dir.path(), &ca_path, &listen)?;
    let hearth_pid = child.id();
    let result = async {
        hearth.wait_ready().await?;
        let other = Other::start(&work, &ca).await?;

        eprintln!("==> synapse.test: a room of {members} members");
        let started = Instant::now();
        big_room(&synapse, members).await?;
        eprintln!("  built in {:.0} s", started.elapsed().as_secs_f64());
        eprintln!("==> joins");
        let h = join_big_room(&hearth, hearth_pid, "joiner", members).await?;
        eprintln!("  hearth.test: {h:?}");
        let s = join_big_room(&synapse2, synapse_pid(&work, "synapse2.test")?, "joiner", members).await?;
        eprintln!("  synapse2.test: {s:?}");

        eprintln!("==> inbound: {pdus} PDUs from other.test");
        let hf = flood(&other, &hearth, "hearth.test", hearth_pid, pdus).await?;
        eprintln!("  hearth.test: {hf:?}");
        let sf = flood(&other, &synapse, "synapse.test", synapse_pid(&work, "synapse.test")?, pdus).await?;
        eprintln!("  synapse.test: {sf:?}");

        eprintln!("==> delivery: {rounds} messages from synapse.test to each receiver");
        let (_, sender) = synapse.register("deliverer").await?;
        let mut readers = vec![
            reader(&synapse, &sender, &hearth, "hdelivery").await?,
            reader(&synapse, &sender, &synapse2, "sdelivery").await?,
        ];
        let d = delivery(&synapse, &mut readers, &sender, rounds).await?;
        eprintln!("  p50 {:.1} / {:.1} ms", percentile(&d[0], 0.5), percentile(&d[1], 0.5));

        eprintln!("==> remote media: {media_mb} MB pictures on synapse.test");
        let hm = remote_media(&synapse, &sender, &hearth, media_mb << 20, 1).await?;
        eprintln!("  hearth.test: {hm:?}");
        let sm = remote_media(&synapse, &sender, &synapse2, media_mb << 20, 3).await?;
        eprintln!("  synapse2.test: {sm:?}");
        Ok::<_, anyhow::Error>((h, s, hf, sf, d, hm, sm))
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let (h, s, hf, sf, d, hm, sm) = result?;
    let ratio = |synapse: f64, hearth: f64| format!("{:.1}x", synapse / hearth);
    let latency = |p: f64| {
        let (a, b) = (percentile(&d[0], p), percentile(&d[1], p));
        format!("{a:.1} ms | {b:.1} ms | {}", ratio(b, a))
    };
    let extra = format!(
        "\n## Delivery: a message sent on synapse.test, to a long-polling `/sync` on another server\n\n\
         {rounds} rounds per receiver, alternating, each timed from the start of the send on synapse.test to the \
         last byte of the receiver's `/sync` answer that carries it. Both columns include synapse.test's own work \
         (storing the event, its federation sender); the difference between them is the receiver's.\n\n\
         | | Hearth | Synapse (synapse2.test) | Synapse / Hearth |\n|---|---|---|---|\n\
         | p50 | {} |\n| p90 | {} |\n| p99 | {} |\n\n\
         ## Remote media: {media_mb} MB pictures uploaded on synapse.test\n\n\
         | | Hearth | Synapse (synapse2.test) | Synapse / Hearth |\n|---|---|---|---|\n\
         | first download (fetched over federation) | {:.0} ms | {:.0} ms | {} |\n\
         | cached download (median of 5) | {:.1} ms | {:.1} ms | {} |\n\
         | first 320x240 thumbnail of another picture | {:.0} ms | {:.0} ms | {} |\n",
        latency(0.5),
        latency(0.9),
        latency(0.99),
        hm.0,
        sm.0,
        ratio(sm.0, hm.0),
        hm.1,
        sm.1,
        ratio(sm.1, hm.1),
        hm.2,
        sm.2,
        ratio(sm.2, hm.2),
    );

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let table = format!(
        "# Federation benchmark results\n\n\
         Written by `scripts/bench-federation.sh` ({date}); {cores} cores ({cpu}). Hearth (release build) and \
         Synapse 1.163.2 with SQLite, in one run, in the private network of `tests/federation/run.sh`: every \
         request between servers goes over TLS (nginx in front of Hearth). How it is measured: \
         [benchmarks.md](benchmarks.md#federation).\n\n\
         ## Joining a room of {members} members hosted on Synapse\n\n\
         | | Hearth | Synapse (a second Synapse) | Synapse / Hearth |\n|---|---|---|---|\n\
         | `/join` answered | {:.2} s | {:.2} s | {:.1}x |\n\
         | whole member list readable | {:.2} s | {:.2} s | {:.1}x |\n\
         | peak RSS of the joining server, before / after | {:.0} / {:.0} MiB | {:.0} / {:.0} MiB | |\n\n\
         Hearth joins first, so Synapse's second join meets a host whose caches are warm.\n\n\
         ## Inbound: {pdus} PDUs in one room, transactions of {PDUS_PER_TXN}, one at a time\n\n\
         | | Hearth | Synapse | Hearth / Synapse |\n|---|---|---|---|\n\
         | PDUs accepted per second | {:.0} | {:.0} | {:.1}x |\n\
         | server CPU per PDU | {:.2} ms | {:.2} ms | {:.1}x less |\n",
        h.0,
        s.0,
        s.0 / h.0,
        h.1,
        s.1,
        s.1 / h.1,
        h.2,
        h.3,
        s.2,
        s.3,
        hf.0,
        sf.0,
        hf.0 / sf.0,
        hf.1,
        sf.1,
        sf.1 / hf.1,
        date = std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default(),
    );
    let table = table + &extra;
    println!("{table}");
    std::fs::write(&out, table)?;
    Ok(())
}
