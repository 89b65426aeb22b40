//! Load benchmark: the same Client-Server workload against a running `hearth` binary, a
//! Synapse from PyPI and (when given) a Conduit built from its source with the SQLite backend,
//! on the same machine, in the same run. Reports latencies, throughput, server CPU seconds (from
//! /proc) and RSS, and the ratios of each peer to Hearth.
//!
//! Run it with `scripts/bench.sh` (it builds Hearth in release mode, installs Synapse in a venv,
//! builds Conduit when its source is at hand, starts the servers one after another and writes
//! docs/benchmarks-results.md). Numbers on a shared 2-core machine drift between runs; the
//! ratios, taken within one run, are what to compare.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use hearth_bench::{CpuMeter, Cs, idle_cost, next_batch, percentile, room_list_body, rss_mib, start_hearth};
use serde_json::{Value, json};

const SENDERS: usize = 10;
/// How long each server is watched idle, for its idle CPU and wake-ups.
const IDLE_WINDOW: Duration = Duration::from_secs(60);
const MESSAGES_PER_SENDER: usize = 100;
const SYNC_ROUNDS: usize = 400;
const ROOMS: usize = 20;
const MEMBERS_PER_ROOM: usize = 10;
const HISTORY_PER_ROOM: usize = 20;
/// Initial syncs per variant: enough for a stable median and for CPU ticks (10 ms) to resolve.
const INITIAL_SYNCS: usize = 40;
const FANOUT_MEMBERS: usize = 200;
const FANOUT_ROUNDS: usize = 5;
/// Sliding sync: a user in this many rooms opens Element X.
const SLIDING_ROOMS: usize = 500;
/// Connected sliding-sync clients for the memory measurement.
const SLIDING_CLIENTS: usize = 20;
/// Fresh room lists timed.
const FIRST_LISTS: usize = 5;
/// Messages sent in a room none of the 20 waiting sliding sync clients is in.
const UNRELATED_EVENTS: usize = 50;

struct Server {
    cs: Cs,
    pid: u32,
    /// The server's SQLite database, for the bytes each message costs.
    db: PathBuf,
    child: Child,
    counter: std::sync::atomic::AtomicU64,
}

/// A server is called through its Client-Server API (`s.call(..)`, `s.name`).
impl std::ops::Deref for Server {
    type Target = Cs;
    fn deref(&self) -> &Cs {
        &self.cs
    }
}

impl Server {
    fn txn(&self) -> u64 {
        self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn send(&self, token: &str, room: &str, body: &str) -> Result<()> {
        let txn = self.txn();
        self.cs.send(token, room, &format!("b{txn}"), body).await?;
        Ok(())
    }

    async fn login(&self, user: &str) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/login",
                None,
                Some(json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": "bench-password"})),
            )
            .await?;
        Ok(v["access_token"].as_str().context("access_token")?.to_owned())
    }

    /// One simplified sliding sync request (MSC4186).
    async fn sliding(&self, token: &str, pos: Option<&str>, timeout_ms: u64, body: Value) -> Result<Value> {
        let mut path = format!("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?timeout={timeout_ms}");
        if let Some(p) = pos {
            path.push_str(&format!("&pos={p}"));
        }
        self.call(reqwest::Method::POST, &path, Some(token), Some(body)).await
    }

    /// Loads the whole room list the way Element X does: 20 rooms, then 100 more per request.
    /// Returns the last `pos`.
    async fn load_room_list(&self, token: &str) -> Result<String> {
        let v = self.sliding(token, None, 0, room_list_body(19)).await?;
        let count = v["lists"]["all_rooms"]["count"].as_u64().unwrap_or(0) as usize;
        // 19, not 20: Conduit reads a range's end as exclusive (the spec: inclusive) and so
        // sends one room fewer.
        if count < SLIDING_ROOMS || v["rooms"].as_object().map_or(0, |o| o.len()) < 19 {
            bail!(
                "{}: the first room list has {count} rooms counted: {}",
                self.name,
                v.to_string().chars().take(300).collect::<String>()
            );
        }
        let mut pos = v["pos"].as_str().context("pos")?.to_owned();
        let mut end = 99;
        loop {
            let last = end.min(count - 1);
            let v = self.sliding(token, Some(&pos), 0, room_list_body(last)).await?;
            pos = v["pos"].as_str().context("pos")?.to_owned();
            if last == count - 1 {
                return Ok(pos);
            }
            end += 100;
        }
    }
}

#[derive(Default)]
struct Report {
    values: HashMap<(String, &'static str), f64>,
}

impl Report {
    fn put(&mut self, server: &str, metric: &'static str, value: f64) {
        self.values.insert((server.to_owned(), metric), value);
    }
}

fn start_synapse(venv: &str, dir: &std::path::Path, port: u16) -> Result<Child> {
    let python = format!("{venv}/bin/python");
    let config = dir.join("homeserver.yaml");
    let status = Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "--server-name", "bench.synapse", "--config-path"])
        .arg(&config)
        .args(["--generate-config", "--report-stats=no", "--data-directory"])
        .arg(dir)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("synapse --generate-config failed");
    }
    // Same conditions as Hearth: SQLite, no rate limits, open registration, cheap password hashes
    // for setup (password hashing is not part of the race).
    let mut yaml = std::fs::read_to_string(&config)?;
    yaml = yaml.replace("port: 8008", &format!("port: {port}"));
    yaml.push_str(
        "\nenable_registration: true\nenable_registration_without_verification: true\nbcrypt_rounds: 4\n\
         rc_message: {per_second: 10000, burst_count: 10000}\nrc_registration: {per_second: 10000, burst_count: 10000}\n\
         rc_login: {address: {per_second: 10000, burst_count: 10000}, account: {per_second: 10000, burst_count: 10000}, failed_attempts: {per_second: 10000, burst_count: 10000}}\n\
         rc_joins: {local: {per_second: 10000, burst_count: 10000}, remote: {per_second: 10000, burst_count: 10000}}\n\
         rc_invites: {per_room: {per_second: 10000, burst_count: 10000}, per_user: {per_second: 10000, burst_count: 10000}}\n\
         rc_joins_per_room: {per_second: 10000, burst_count: 10000}\n\
         rc_presence: {per_user: {per_second: 10000, burst_count: 10000}}\n\
         rc_room_creation: {per_second: 10000, burst_count: 10000}\n\
         presence: {enabled: false}\nsuppress_key_server_warning: true\n",
    );
    std::fs::write(&config, yaml)?;
    // Quiet logging so log I/O does not skew the numbers.
    let log_config = dir.join("bench.synapse.log.config");
    if let Ok(text) = std::fs::read_to_string(&log_config) {
        std::fs::write(&log_config, text.replace("level: INFO", "level: WARNING"))?;
    }
    Ok(Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "--config-path"])
        .arg(&config)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Conduit with its SQLite backend, under the same conditions as the others: open registration
/// (its dummy flow), no federation, quiet logs. Conduit has no rate limits to lift.
fn start_conduit(bin: &str, dir: &std::path::Path, port: u16) -> Result<Child> {
    let config = dir.join("conduit.toml");
    let data = dir.join("db");
    std::fs::create_dir_all(&data)?;
    std::fs::write(
        &config,
        format!(
            "[global]\nserver_name = \"bench.conduit\"\ndatabase_backend = \"sqlite\"\ndatabase_path = \"{}\"\n\
             address = \"127.0.0.1\"\nport = {port}\nallow_registration = true\nallow_federation = false\n\
             allow_check_for_updates = false\nenable_lightning_bolt = false\ntrusted_servers = []\nlog = \"warn\"\n",
            data.display()
        ),
    )?;
    Ok(Command::new(bin)
        .env("CONDUIT_CONFIG", &config)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// Runs the scenarios. A peer that cannot do one (an endpoint it lacks) has that row left
/// empty and goes on with the rest; Hearth failing one fails the run.
async fn run_scenarios(s: &Server, report: &mut Report) -> Result<()> {
    let name = s.name;
    let (idle, _) = rss_mib(s.pid);
    report.put(name, "idle_rss_mib", idle);
    // Idle cost, no client connected: CPU and wake-ups over a minute.
    let (wakeups, cpu) = idle_cost(s.pid, IDLE_WINDOW).await;
    report.put(name, "idle_wakeups_per_s", wakeups);
    report.put(name, "idle_cpu_ms_per_min", cpu);

    // Registration (includes password hashing: reported, not raced).
    let cpu0 = CpuMeter::start(s.pid);
    let t = Instant::now();
    let mut users = Vec::new();
    for i in 0..(SENDERS + 2) {
        users.push(s.register(&format!("u{i}")).await?);
    }
    report.put(name, "register_ms_per_user", t.elapsed().as_secs_f64() * 1000.0 / users.len() as f64);
    report.put(name, "register_cpu_ms_per_user", cpu0.seconds() * 1000.0 / users.len() as f64);
    let owner = &users[0].1;
    let room = s.create_room(owner, json!({"preset": "public_chat"})).await?;
    for (_, tok) in &users[1..] {
        s.join(tok, &room).await?;
    }
    if wanted("send") {
        tolerated(s, send_scenario(s, report, &users, &room).await)?;
    }
    if wanted("delivery") {
        tolerated(s, delivery_scenario(s, report, &users, &room).await)?;
    }
    if wanted("initial") {
        tolerated(s, initial_sync_scenario(s, report).await)?;
    }
    if wanted("fanout") {
        tolerated(s, fanout_scenario(s, report).await)?;
    }
    eprintln!("  {name}: RSS now/peak {:?} MiB", rss_mib(s.pid));
    report.put(name, "peak_rss_before_sliding_mib", rss_mib(s.pid).1);
    if wanted("sliding") {
        tolerated(s, sliding_scenario(s, report).await)?;
    }
    if wanted("uia") {
        tolerated(s, uia_scenario(s, report).await)?;
    }
    eprintln!("  {name}: RSS now/peak {:?} MiB", rss_mib(s.pid));
    let (_, peak) = rss_mib(s.pid);
    report.put(name, "peak_rss_mib", peak);
    Ok(())
}

/// A scenario's failure: fatal for Hearth, reported and skipped for a peer.
fn tolerated(s: &Server, result: Result<()>) -> Result<()> {
    match result {
        Err(e) if s.name != "hearth" => {
            eprintln!("  {}: scenario failed, its rows are left empty: {e:#}", s.name);
            Ok(())
        }
        other => other,
    }
}

/// Whether a scenario runs: all of them, unless `HEARTH_BENCH_SCENARIOS` (comma-separated:
/// send, delivery, initial, fanout, sliding, uia) picks some, for quick iterations on one.
fn wanted(scenario: &str) -> bool {
    std::env::var("HEARTH_BENCH_SCENARIOS").map_or(true, |list| list.split(',').any(|s| s.trim() == scenario))
}

/// Registrations started and never finished (the first `/register` round trip only asks for
/// the flows, and a server keeps the session it opens): how much memory 20,000 of them cost.
/// Hearth keeps at most 10,000 and pushes out the oldest; this shows the bound holds.
const UIA_SESSIONS: usize = 20_000;

async fn uia_scenario(s: &Server, report: &mut Report) -> Result<()> {
    let name = s.name;
    let (before, _) = rss_mib(s.pid);
    let cpu0 = CpuMeter::start(s.pid);
    let t = Instant::now();
    let mut pending = futures::stream::iter(0..UIA_SESSIONS)
        .map(|i| {
            let body = json!({"username": format!("abandoned{i}"), "password": "bench-password"});
            s.call(reqwest::Method::POST, "/_matrix/client/v3/register", None, Some(body))
        })
        .buffer_unordered(8);
    while let Some(answer) = pending.next().await {
        answer?.get("session").context("a registration session")?;
    }
    let (after, _) = rss_mib(s.pid);
    eprintln!("  {name}: {UIA_SESSIONS} sessions opened in {:?}; RSS {before:.1} -> {after:.1} MiB", t.elapsed());
    report.put(name, "uia_rss_growth_mib", after - before);
    report.put(name, "uia_cpu_us_per_session", cpu0.seconds() * 1e6 / UIA_SESSIONS as f64);
    Ok(())
}

/// Send throughput and latency: 10 concurrent senders in one room.
async fn send_scenario(s: &Server, report: &mut Report, users: &[(String, String)], room: &str) -> Result<()> {
    let name = s.name;
    eprintln!("  {name}: RSS now/peak {:?} MiB", rss_mib(s.pid));
    let senders: Vec<String> = users[1..=SENDERS].iter().map(|(_, t)| t.clone()).collect();
    let bytes0 = db_bytes(&s.db).await?;
    let cpu0 = CpuMeter::start(s.pid);
    let t = Instant::now();
    let lat = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks = senders.iter().map(|tok| {
        let lat = lat.clone();
        async move {
            for i in 0..MESSAGES_PER_SENDER {
                let start = Instant::now();
                s.send(tok, room, &format!("message {i}")).await?;
                lat.lock().unwrap().push(start.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(())
        }
    });
    for r in futures::future::join_all(tasks).await {
        r?;
    }
    let total = (SENDERS * MESSAGES_PER_SENDER) as f64;
    let elapsed = t.elapsed().as_secs_f64();
    let mut l = lat.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    report.put(name, "send_msgs_per_s", total / elapsed);
    report.put(name, "send_p50_ms", percentile(&l, 0.5));
    report.put(name, "send_p99_ms", percentile(&l, 0.99));
    report.put(name, "send_cpu_ms_per_msg", cpu0.seconds() * 1000.0 / total);
    report.put(name, "db_bytes_per_msg", (db_bytes(&s.db).await? - bytes0) / total);
    Ok(())
}

/// The bytes of the database's pages in use (free pages not counted), read through SQLite so
/// the pages still in the WAL count too.
async fn db_bytes(path: &std::path::Path) -> Result<f64> {
    use sqlx::{Connection, sqlite::SqliteConnectOptions};
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    let mut pragma = async |name: &str| -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!("PRAGMA {name}"))).fetch_one(&mut db).await?;
        Ok(n)
    };
    let (pages, free, size) =
        (pragma("page_count").await?, pragma("freelist_count").await?, pragma("page_size").await?);
    Ok(((pages - free) * size) as f64)
}

/// Delivery latency: a send until another user's long-polling /sync returns it.
async fn delivery_scenario(s: &Server, report: &mut Report, users: &[(String, String)], room: &str) -> Result<()> {
    let name = s.name;
    eprintln!("  {name}: RSS now/peak {:?} MiB", rss_mib(s.pid));
    let (reader, writer) = (&users[SENDERS + 1].1, &users[1].1);
    let mut since = next_batch(&s.sync(reader, None, 0, None).await?)?;
    let mut lat = Vec::new();
    let cpu0 = CpuMeter::start(s.pid);
    for i in 0..SYNC_ROUNDS {
        let poll = s.sync(reader, Some(&since), 30_000, None);
        let send = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let start = Instant::now();
            s.send(writer, room, &format!("ping {i}")).await?;
            Ok::<_, anyhow::Error>(start)
        };
        let (synced, started) = tokio::join!(poll, send);
        let synced = synced?;
        let started = started?;
        lat.push(started.elapsed().as_secs_f64() * 1000.0);
        since = next_batch(&synced)?;
        // Drain anything that arrived in between so the next poll starts clean.
        since = next_batch(&s.sync(reader, Some(&since), 0, None).await?)?;
    }
    lat.sort_by(f64::total_cmp);
    report.put(name, "sync_delivery_p50_ms", percentile(&lat, 0.5));
    report.put(name, "sync_delivery_p99_ms", percentile(&lat, 0.99));
    report.put(name, "sync_cpu_ms_per_round", cpu0.seconds() * 1000.0 / SYNC_ROUNDS as f64);
    Ok(())
}

/// Initial sync for a user in 20 rooms of 10 members with history.
async fn initial_sync_scenario(s: &Server, report: &mut Report) -> Result<()> {
    let name = s.name;
    eprintln!("  {name}: RSS now/peak {:?} MiB", rss_mib(s.pid));
    let (_, subject) = s.register("subject").await?;
    let mut members = Vec::new();
    for i in 0..(MEMBERS_PER_ROOM - 1) {
        members.push(s.register(&format!("member{i}")).await?.1);
    }
    for r in 0..ROOMS {
        let room = s.create_room(&subject, json!({"preset": "public_chat", "name": format!("room {r}")})).await?;
        for m in &members {
            s.join(m, &room).await?;
        }
        for h in 0..HISTORY_PER_ROOM {
            s.send(&members[h % members.len()], &room, &format!("history {h}")).await?;
        }
    }
    for (metric, filter) in [
        ("initial_sync_ms", None),
        ("initial_sync_lazy_ms", Some("%7B%22room%22%3A%7B%22state%22%3A%7B%22lazy_load_members%22%3Atrue%7D%7D%7D")),
    ] {
        let mut times = Vec::new();
        let mut cpu = 0.0;
        for _ in 0..INITIAL_SYNCS {
            let cpu0 = CpuMeter::start(s.pid);
            let t = Instant::now();
            let v = s.sync(&subject, None, 0, filter).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            cpu += cpu0.seconds();
            if v["rooms"]["join"].as_object().map(|o| o.len()).unwrap_or(0) < ROOMS {
                bail!("{name}: initial sync is missing rooms");
            }
            // Conduit answers a device's request with the same `since` as its previous one
            // (whatever the filter) from that answer: an incremental sync in between, not timed,
            // makes each initial sync a real one on every server.
            s.sync(&subject, Some(v["next_batch"].as_str().context("next_batch")?), 0, filter).await?;
        }
        if metric == "initial_sync_ms" {
            // The sum of the CPU over the timed requests only.
            report.put(name, "initial_sync_cpu_ms", cpu * 1000.0 / INITIAL_SYNCS as f64);
        }
        times.sort_by(f64::total_cmp);
        report.put(name, metric, percentile(&times, 0.5));
    }
    Ok(())
}

/// Fan-out: one message to 200 long-polling members.
async fn fanout_scenario(s: &Server, report: &mut Report) -> Result<()> {
    let name = s.name;
    eprintln!("  {name}: RSS now/peak {:?} MiB", rss_mib(s.pid));
    let (_, host) = s.register("host").await?;
    let big = s.create_room(&host, json!({"preset": "public_chat"})).await?;
    let mut crowd = Vec::new();
    for i in 0..FANOUT_MEMBERS {
        let (_, tok) = s.register(&format!("crowd{i}")).await?;
        s.join(&tok, &big).await?;
        crowd.push(tok);
    }
    let mut sinces = Vec::new();
    for tok in &crowd {
        sinces.push(next_batch(
            &s.sync(tok, None, 0, Some("%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A1%7D%7D%7D")).await?,
        )?);
    }
    // Catch up once more: the crowd's first syncs set each member online, which is news for the
    // members who synced before them; the rounds below must wait for the message alone.
    for (tok, since) in crowd.iter().zip(sinces.iter_mut()) {
        *since = next_batch(&s.sync(tok, Some(since), 0, None).await?)?;
    }
    let mut lat = Vec::new();
    let mut answers = 0;
    let cpu0 = CpuMeter::start(s.pid);
    for round in 0..FANOUT_ROUNDS {
        let text = format!("announcement {round}");
        // Each member polls until the message is in an answer (an answer without it, woken by
        // something else, is counted and polled again).
        let polls = crowd.iter().zip(sinces.iter()).map(|(tok, since)| {
            let (text, big) = (&text, &big);
            async move {
                let mut since = since.clone();
                let mut answers = 0;
                loop {
                    let v = s.sync(tok, Some(&since), 60_000, None).await?;
                    answers += 1;
                    since = next_batch(&v)?;
                    let events = v["rooms"]["join"][big.as_str()]["timeline"]["events"].as_array().cloned();
                    if events.unwrap_or_default().iter().any(|e| e["content"]["body"] == text.as_str()) {
                        return Ok::<_, anyhow::Error>((Instant::now(), since, answers));
                    }
                }
            }
        });
        let send = async {
            // Give every poll time to be waiting.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let start = Instant::now();
            s.send(&host, &big, &format!("announcement {round}")).await?;
            Ok::<_, anyhow::Error>(start)
        };
        let (results, started) = tokio::join!(futures::future::join_all(polls), send);
        let started = started?;
        let mut next = Vec::new();
        for r in results {
            let (at, nb, n) = r?;
            lat.push(at.saturating_duration_since(started).as_secs_f64() * 1000.0);
            next.push(nb);
            answers += n;
        }
        sinces = next;
    }
    lat.sort_by(f64::total_cmp);
    report.put(name, "fanout_p50_ms", percentile(&lat, 0.5));
    report.put(name, "fanout_p99_ms", percentile(&lat, 0.99));
    report.put(name, "fanout_cpu_ms_per_message", cpu0.seconds() * 1000.0 / FANOUT_ROUNDS as f64);
    report.put(name, "fanout_answers_per_delivery", answers as f64 / (FANOUT_ROUNDS * FANOUT_MEMBERS) as f64);
    Ok(())
}

/// Sliding sync: Element X opening for a user in 500 rooms. The first screen is the first
/// answer (20 rooms); the whole list is loaded by growing the range 100 rooms at a time.
async fn sliding_scenario(s: &Server, report: &mut Report) -> Result<()> {
    let name = s.name;
    let (slider, owner) = s.register("slider").await?;
    for r in 0..SLIDING_ROOMS {
        s.create_room(&owner, json!({"name": format!("room {r}")})).await?;
    }
    eprintln!("  {name}: RSS now/peak {:?} MiB after creating {SLIDING_ROOMS} rooms", rss_mib(s.pid));
    let (mut first, mut full) = (Vec::new(), Vec::new());
    let cpu0 = CpuMeter::start(s.pid);
    for _ in 0..FIRST_LISTS {
        let t = Instant::now();
        let v = s.sliding(&owner, None, 0, room_list_body(19)).await?;
        first.push(t.elapsed().as_secs_f64() * 1000.0);
        if v["lists"]["all_rooms"]["count"].as_u64() != Some(SLIDING_ROOMS as u64) {
            bail!("{name}: sliding sync counted {} rooms", v["lists"]["all_rooms"]["count"]);
        }
        let t = Instant::now();
        s.load_room_list(&owner).await?;
        full.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    first.sort_by(f64::total_cmp);
    full.sort_by(f64::total_cmp);
    report.put(name, "sliding_first_list_ms", percentile(&first, 0.5));
    report.put(name, "sliding_full_list_ms", percentile(&full, 0.5));
    report.put(name, "sliding_cpu_ms_per_open", cpu0.seconds() * 1000.0 / FIRST_LISTS as f64);

    eprintln!("  {name}: RSS now/peak {:?} MiB after {FIRST_LISTS} openings", rss_mib(s.pid));
    // 20 connected clients (devices of the 500-room user), each with its whole list loaded and
    // long-polling: the server's memory while they wait.
    let mut clients = Vec::new();
    for _ in 0..SLIDING_CLIENTS {
        let token = s.login(&slider).await?;
        let pos = s.load_room_list(&token).await?;
        clients.push((token, pos));
    }
    // While they wait, someone they share no room with talks in another room: every waiting
    // connection must check and keep waiting (the server CPU this costs is reported).
    let (_, stranger) = s.register("stranger").await?;
    let elsewhere = s.create_room(&stranger, json!({})).await?;
    let polls =
        clients.iter().map(|(token, pos)| s.sliding(token, Some(pos), 10_000, room_list_body(SLIDING_ROOMS - 1)));
    let measure = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rss = rss_mib(s.pid).0;
        let cpu0 = CpuMeter::start(s.pid);
        for i in 0..UNRELATED_EVENTS {
            s.send(&stranger, &elsewhere, &format!("elsewhere {i}")).await?;
        }
        Ok::<_, anyhow::Error>((rss, cpu0.seconds() * 1000.0 / UNRELATED_EVENTS as f64))
    };
    let (results, measured) = tokio::join!(futures::future::join_all(polls), measure);
    let (rss, unrelated_cpu) = measured?;
    for r in results {
        let v = r?;
        if v["rooms"].as_object().is_some_and(|rooms| !rooms.is_empty()) {
            bail!("{name}: a sliding sync connection was sent rooms for events in a room the user is not in");
        }
    }
    report.put(name, "sliding_cpu_ms_per_unrelated_event", unrelated_cpu);
    report.put(name, "sliding_20_clients_rss_mib", rss);
    Ok(())
}

fn capitalised(name: &str) -> String {
    let mut c = name.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// A value with two decimals, or `-` for a row not measured.
fn cell(v: f64) -> String {
    if v.is_finite() { format!("{v:.2}") } else { "-".to_owned() }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hearth-bench HEARTH_BINARY SYNAPSE_VENV OUTPUT.md [CONDUIT_BINARY]";
    let hearth_bin = args.next().context(usage)?;
    let venv = args.next().context(usage)?;
    let output = PathBuf::from(args.next().context(usage)?);
    let conduit_bin = args.next();
    let work = tempfile::tempdir()?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).pool_max_idle_per_host(512).build()?;
    let mut report = Report::default();

    // HEARTH_BENCH_ONLY=hearth skips the peers, for quick iterations on Hearth alone.
    let only = std::env::var("HEARTH_BENCH_ONLY").ok();
    let mut peers = vec!["synapse"];
    if conduit_bin.is_some() {
        peers.push("conduit");
    }
    for (which, port) in [("hearth", 18300), ("synapse", 18301), ("conduit", 18302)] {
        if which != "hearth" && !peers.contains(&which) || only.as_deref().is_some_and(|o| o != which) {
            continue;
        }
        let dir = work.path().join(which);
        std::fs::create_dir_all(&dir)?;
        let (child, db) = match which {
            "hearth" => (start_hearth(&hearth_bin, &dir, port)?, dir.join("data/hearth.db")),
            "synapse" => (start_synapse(&venv, &dir, port)?, dir.join("homeserver.db")),
            _ => (start_conduit(conduit_bin.as_deref().unwrap_or_default(), &dir, port)?, dir.join("db/conduit.db")),
        };
        let server = Server {
            cs: Cs { name: which, base: format!("http://127.0.0.1:{port}"), http: http.clone() },
            pid: child.id(),
            db,
            child,
            counter: Default::default(),
        };
        if let Err(e) = server.wait_ready().await {
            let mut server = server;
            let status = server.child.try_wait()?.map_or("still running".to_owned(), |s| s.to_string());
            let _ = server.child.kill();
            bail!("{e} (its process: {status})");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        eprintln!("running scenarios against {which}");
        let result = run_scenarios(&server, &mut report).await;
        // Stopped as a service manager would, and waited for, so that a run started right after
        // this one does not find the port or the files still taken.
        let _ = Command::new("kill").arg(server.pid.to_string()).status();
        let mut server = server;
        let _ = server.child.wait();
        result?;
    }

    let metrics: [(&str, &str, bool); 29] = [
        ("idle_rss_mib", "Idle RSS (MiB)", false),
        ("idle_cpu_ms_per_min", "Idle CPU, no clients (ms per minute)", false),
        ("idle_wakeups_per_s", "Idle wake-ups, no clients (thread context switches per s)", false),
        ("peak_rss_before_sliding_mib", "Peak RSS before the sliding sync scenario (MiB)", false),
        ("peak_rss_mib", "Peak RSS, all scenarios (MiB)", false),
        ("register_ms_per_user", "Registration, ms per user (incl. password hashing)", false),
        ("register_cpu_ms_per_user", "Registration, server CPU ms per user", false),
        ("send_msgs_per_s", "Send throughput, 10 senders in one room (msgs/s)", true),
        ("send_p50_ms", "Send latency p50 (ms)", false),
        ("send_p99_ms", "Send latency p99 (ms)", false),
        ("send_cpu_ms_per_msg", "Server CPU per message (ms)", false),
        ("db_bytes_per_msg", "Database bytes per message, 12-member room", false),
        ("sync_delivery_p50_ms", "Send to other user's /sync, p50 (ms)", false),
        ("sync_delivery_p99_ms", "Send to other user's /sync, p99 (ms)", false),
        ("sync_cpu_ms_per_round", "Server CPU per send+sync round (ms)", false),
        ("initial_sync_ms", "Initial sync, 20 rooms x 10 members, p50 (ms)", false),
        ("initial_sync_lazy_ms", "Initial sync with lazy-loaded members, p50 (ms)", false),
        ("initial_sync_cpu_ms", "Server CPU per initial sync (ms)", false),
        ("fanout_p50_ms", "Fan-out of one message to 200 long-polls, p50 (ms)", false),
        ("fanout_p99_ms", "Fan-out to 200, p99 (ms)", false),
        ("fanout_cpu_ms_per_message", "Server CPU per fanned-out message (ms)", false),
        ("fanout_answers_per_delivery", "Fan-out, /sync answers per member until the message arrived", false),
        ("sliding_first_list_ms", "Sliding sync, first room list (20 of 500 rooms), p50 (ms)", false),
        ("sliding_full_list_ms", "Sliding sync, whole list of 500 rooms loaded, p50 (ms)", false),
        ("sliding_cpu_ms_per_open", "Server CPU per app opening (first list + whole list) (ms)", false),
        ("sliding_20_clients_rss_mib", "RSS with 20 sliding-sync clients connected (MiB)", false),
        (
            "sliding_cpu_ms_per_unrelated_event",
            "Server CPU per event in another room, 20 sliding-sync clients waiting (ms)",
            false,
        ),
        ("uia_rss_growth_mib", "RSS growth after 20,000 registrations started, never finished (MiB)", false),
        ("uia_cpu_us_per_session", "Server CPU per registration started (us)", false),
    ];
    let mut md = String::new();
    md.push_str("| Metric | Hearth | Synapse |");
    for peer in &peers[1..] {
        md.push_str(&format!(" {} |", capitalised(peer)));
    }
    for peer in &peers {
        md.push_str(&format!(" {} / Hearth |", capitalised(peer)));
    }
    md.push_str(&format!("\n|---|{}\n", "---:|".repeat(1 + 2 * peers.len())));
    let value = |server: &str, key: &str| report.values.get(&(server.to_owned(), key)).copied().unwrap_or(f64::NAN);
    for (key, label, higher_is_better) in metrics {
        let h = value("hearth", key);
        md.push_str(&format!("| {label} | {} |", cell(h)));
        for peer in &peers {
            md.push_str(&format!(" {} |", cell(value(peer, key))));
        }
        for peer in &peers {
            let p = value(peer, key);
            let ratio = if higher_is_better { h / p } else { p / h };
            md.push_str(&if ratio.is_finite() { format!(" {ratio:.1}x |") } else { " - |".to_owned() });
        }
        md.push('\n');
    }
    md.push_str(
        "\nThe ratio columns are how many times better Hearth does than each peer (for throughput, Hearth / peer). \
         A `-` is a row the server could not run.\n",
    );
    // A run of some scenarios only is for looking at, not for the results file.
    if std::env::var_os("HEARTH_BENCH_SCENARIOS").is_none() {
        std::fs::write(&output, &md)?;
    }
    println!("{md}");
    Ok(())
}
