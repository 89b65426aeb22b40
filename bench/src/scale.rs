//! The scale case: Hearth on a database of a million events in 2,000 rooms, the data generated
//! through the Client-Server API like any user's. How long the server takes to serve again after
//! a restart, and what a user in all 2,000 rooms waits for: the first `/sync` after the restart,
//! an initial sync, an incremental one, a message's delivery and Element X's room list.
//!
//! The generated data directory is kept (`HEARTH_SCALE_DATA`, by default `scale-data` in the
//! cargo target directory) and reused by the next run with the same shape, since filling it
//! takes minutes. Synapse is not run here: at its 100 messages per second, filling a million
//! events would take about three hours.

use std::{
    path::{Path, PathBuf},
    process::Child,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use hearth_bench::{CpuMeter, Cs, next_batch, percentile, room_list_body, rss_mib, start_hearth};
use serde::{Deserialize, Serialize};
use serde_json::json;

const PORT: u16 = 18320;
/// Users besides the subject; each room has the subject and three of them.
const OTHERS: usize = 9;
const MEMBERS_PER_ROOM: usize = 3;
/// What `createRoom` writes here: create, the creator's join, power levels, join rules, history
/// visibility, name and topic.
const STATE_EVENTS_PER_ROOM: usize = 7;
/// Every this many rooms one is left unread by the subject (the rest are read to the end).
const UNREAD_EVERY: usize = 10;
/// Concurrent senders while filling (rooms are filled in parallel, a room by one task).
const FILLERS: usize = 6;
const RESTARTS: usize = 5;
const INITIAL_SYNCS: usize = 5;
const QUIET_SYNCS: usize = 100;
const DELIVERY_ROUNDS: usize = 400;
/// The rooms the delivery rounds talk in.
const TALK_ROOMS: usize = 20;
/// Rounds in rooms not written to since the start.
const COLD_ROUNDS: usize = 100;
const FIRST_LISTS: usize = 5;

/// What was generated, kept beside the data so a later run can reuse it.
#[derive(Serialize, Deserialize, PartialEq)]
struct Shape {
    rooms: usize,
    events: u64,
}

#[derive(Serialize, Deserialize)]
struct Generated {
    shape: Shape,
    /// The subject's access token and the others' (tokens outlive restarts).
    subject: String,
    others: Vec<String>,
    rooms: Vec<String>,
    /// Events in the database at the end, as the server counts them.
    events_stored: u64,
    fill_seconds: f64,
}

fn env_number(name: &str, default: u64) -> Result<u64> {
    std::env::var(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name}={v}")))
}

/// The number of events in the database, read through SQLite while the server is stopped.
async fn stored_events(data: &Path) -> Result<u64> {
    use sqlx::{Connection, sqlite::SqliteConnectOptions};
    let options = SqliteConnectOptions::new().filename(data.join("hearth.db")).read_only(true);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events").fetch_one(&mut db).await?;
    Ok(n as u64)
}

/// Fills a new data directory: the subject creates the rooms, three others join each, and the
/// four take turns sending until the database holds `shape.events` events. The subject reads
/// every room to its end (a receipt), except one in ten.
async fn generate(cs: &Cs, shape: &Shape) -> Result<Generated> {
    let started = Instant::now();
    let (_, subject) = cs.register("subject").await?;
    let mut others = Vec::new();
    for i in 0..OTHERS {
        others.push(cs.register(&format!("member{i}")).await?.1);
    }
    let members_of = |r: usize| -> Vec<&String> { (0..MEMBERS_PER_ROOM).map(|k| &others[(r + k) % OTHERS]).collect() };
    let rooms: Vec<String> = futures::stream::iter(0..shape.rooms)
        .map(|r| {
            let (cs, subject, members) = (cs, &subject, members_of(r));
            async move {
                let body = json!({"preset": "public_chat", "name": format!("Room {r}"), "topic": "Generated for the scale benchmark"});
                let room = cs.create_room(subject, body).await?;
                for m in members {
                    cs.call(reqwest::Method::POST, &format!("/_matrix/client/v3/join/{room}"), Some(m), Some(json!({})))
                        .await?;
                }
                Ok::<_, anyhow::Error>(room)
            }
        })
        .buffered(FILLERS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    eprintln!("  {} rooms created in {:.0?}", rooms.len(), started.elapsed());

    // What the rooms hold so far, to spread the rest of the events evenly.
    let base =
        cs.sync(&subject, None, 0, Some("%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A1%7D%7D%7D")).await?;
    if base["rooms"]["join"].as_object().map_or(0, |o| o.len()) != shape.rooms {
        bail!("the subject is not in all {} rooms", shape.rooms);
    }
    let state_events = (shape.rooms * (STATE_EVENTS_PER_ROOM + MEMBERS_PER_ROOM)) as u64;
    let per_room = shape.events.saturating_sub(state_events) / shape.rooms as u64;
    let sent = std::sync::atomic::AtomicU64::new(0);
    let filled: Vec<Result<()>> = futures::stream::iter(rooms.iter().enumerate())
        .map(|(r, room)| {
            let (cs, subject, members, sent) = (cs, &subject, members_of(r), &sent);
            async move {
                let mut last = String::new();
                for i in 0..per_room {
                    let who = if i % 4 == 3 { subject } else { members[i as usize % 4] };
                    let text = format!("Message {i} of room {r}: the quick brown fox jumps over the lazy dog");
                    last = cs.send(who, room, &format!("s{r}-{i}"), &text).await?;
                    let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if n.is_multiple_of(50_000) {
                        eprintln!("  {n} messages sent in {:.0?}", started.elapsed());
                    }
                }
                if r % UNREAD_EVERY != 0 && !last.is_empty() {
                    let path = format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{last}");
                    cs.call(reqwest::Method::POST, &path, Some(subject), Some(json!({}))).await?;
                }
                Ok(())
            }
        })
        .buffer_unordered(FILLERS)
        .collect()
        .await;
    filled.into_iter().collect::<Result<()>>()?;
    Ok(Generated {
        shape: Shape { rooms: shape.rooms, events: shape.events },
        subject,
        others,
        rooms,
        events_stored: 0,
        fill_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Stops the server the way a service manager does (SIGTERM) and waits for it to exit.
fn stop(child: &mut Child) -> Result<()> {
    std::process::Command::new("kill").arg(child.id().to_string()).status()?;
    child.wait()?;
    Ok(())
}

/// Starts the server on the kept data; returns it and the milliseconds until `/versions`
/// answered (polled every millisecond).
async fn start_timed(bin: &str, dir: &Path, cs: &Cs) -> Result<(Child, f64)> {
    let started = Instant::now();
    let child = start_hearth(bin, dir, PORT)?;
    loop {
        if let Ok(r) = cs.http.get(format!("{}/_matrix/client/versions", cs.base)).send().await
            && r.status().is_success()
        {
            return Ok((child, started.elapsed().as_secs_f64() * 1000.0));
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("hearth did not serve within two minutes of starting");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One round: the subject long-polls, one of room `r`'s other members sends in it. Returns the
/// milliseconds from the send until the poll's answer arrived, and the subject's position after.
async fn delivery_round(
    cs: &Cs,
    g: &Generated,
    subject: &str,
    since: &str,
    r: usize,
    i: usize,
) -> Result<(f64, String)> {
    let (room, writer) = (&g.rooms[r], &g.others[r % OTHERS]);
    let poll = cs.sync(subject, Some(since), 30_000, None);
    let send = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let start = Instant::now();
        cs.send(writer, room, &format!("d{i}-{}", now_ms()), &format!("ping {i}")).await?;
        Ok::<_, anyhow::Error>(start)
    };
    let (synced, started) = tokio::join!(poll, send);
    let (synced, started) = (synced?, started?);
    let took = ms(started);
    if synced["rooms"]["join"][room.as_str()]["timeline"]["events"].as_array().is_none_or(|e| e.is_empty()) {
        bail!(
            "a long-poll was answered without the message: {}",
            synced.to_string().chars().take(300).collect::<String>()
        );
    }
    // Drain anything that arrived in between so the next poll starts clean.
    let since = next_batch(&cs.sync(subject, Some(&next_batch(&synced)?), 0, None).await?)?;
    Ok((took, since))
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn p50_p99(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

#[tokio::main]
async fn main() -> Result<()> {
    let usage = "usage: hearth-scale-bench HEARTH_BINARY DATA_DIR OUTPUT.md";
    let mut args = std::env::args().skip(1);
    let bin = args.next().context(usage)?;
    let dir = PathBuf::from(args.next().context(usage)?);
    let output = PathBuf::from(args.next().context(usage)?);
    let shape = Shape {
        rooms: env_number("HEARTH_SCALE_ROOMS", 2_000)? as usize,
        events: env_number("HEARTH_SCALE_EVENTS", 1_000_000)?,
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).pool_max_idle_per_host(64).build()?;
    let cs = Cs { name: "hearth", base: format!("http://127.0.0.1:{PORT}"), http };
    let kept = dir.join("generated.json");
    let generated: Generated =
        match std::fs::read(&kept).ok().and_then(|b| serde_json::from_slice::<Generated>(&b).ok()) {
            Some(g) if g.shape == shape => {
                eprintln!("reusing the data in {} ({} events)", dir.display(), g.events_stored);
                g
            }
            _ => {
                eprintln!("generating {} events in {} rooms into {}", shape.events, shape.rooms, dir.display());
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                let mut child = start_hearth(&bin, &dir, PORT)?;
                cs.wait_ready().await?;
                let generated = generate(&cs, &shape).await;
                stop(&mut child)?;
                let mut generated = generated?;
                generated.events_stored = stored_events(&dir.join("data")).await?;
                std::fs::write(&kept, serde_json::to_vec(&generated)?)?;
                eprintln!("  generated in {:.0} s: {} events stored", generated.fill_seconds, generated.events_stored);
                generated
            }
        };
    let db_mib = ["hearth.db", "hearth.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join("data").join(f)).ok())
        .map(|m| m.len() as f64 / 1048576.0)
        .sum::<f64>();

    // Restarts: the time until the server answers again, and its memory then.
    let mut starts = Vec::new();
    let mut child = None;
    for i in 0..RESTARTS {
        if let Some(mut c) = child.take() {
            stop(&mut c)?;
        }
        let (c, took) = start_timed(&bin, &dir, &cs).await?;
        eprintln!("  start {i}: serving after {took:.1} ms");
        starts.push(took);
        child = Some(c);
    }
    let mut child = child.context("started")?;
    let pid = child.id();
    let result = measure(&cs, pid, &generated, starts).await;
    stop(&mut child)?;
    let rows = result?;
    let mut md = format!(
        "| Metric, {} events in {} rooms ({db_mib:.0} MiB of database) | Hearth |\n|---|---:|\n",
        generated.events_stored, generated.shape.rooms
    );
    for (label, value) in rows {
        md.push_str(&format!("| {label} | {value:.2} |\n"));
    }
    std::fs::write(&output, &md)?;
    println!("{md}");
    Ok(())
}

async fn measure(cs: &Cs, pid: u32, g: &Generated, starts: Vec<f64>) -> Result<Vec<(String, f64)>> {
    let mut rows = Vec::new();
    let (start_p50, _) = p50_p99(starts.clone());
    rows.push((String::from("Start until serving, median of 5 restarts (ms)"), start_p50));
    rows.push((String::from("Start until serving, slowest of 5 (ms)"), starts.iter().copied().fold(0.0, f64::max)));
    rows.push((String::from("RSS after start (MiB)"), rss_mib(pid).0));

    // The first initial sync after the start meets cold caches.
    let subject = &g.subject;
    let t = Instant::now();
    let first = cs.sync(subject, None, 0, None).await?;
    rows.push((String::from("First initial sync after the start, 2,000 rooms (ms)"), ms(t)));
    if first["rooms"]["join"].as_object().map_or(0, |o| o.len()) != g.shape.rooms {
        bail!("the initial sync does not hold all {} rooms", g.shape.rooms);
    }
    let mut since = next_batch(&first)?;

    for (label, cpu_label, filter) in [
        ("Initial sync, p50 (ms)", Some("Server CPU per initial sync (ms)"), None),
        (
            "Initial sync with lazy-loaded members, p50 (ms)",
            None,
            Some("%7B%22room%22%3A%7B%22state%22%3A%7B%22lazy_load_members%22%3Atrue%7D%7D%7D"),
        ),
    ] {
        let cpu0 = CpuMeter::start(pid);
        let mut times = Vec::new();
        for _ in 0..INITIAL_SYNCS {
            let t = Instant::now();
            cs.sync(subject, None, 0, filter).await?;
            times.push(ms(t));
        }
        rows.push((label.to_owned(), p50_p99(times).0));
        if let Some(cpu_label) = cpu_label {
            rows.push((cpu_label.to_owned(), cpu0.seconds() * 1000.0 / INITIAL_SYNCS as f64));
        }
    }

    // An incremental sync with nothing new, as a client polls it without waiting.
    let mut times = Vec::new();
    for _ in 0..QUIET_SYNCS {
        let t = Instant::now();
        since = next_batch(&cs.sync(subject, Some(&since), 0, None).await?)?;
        times.push(ms(t));
    }
    let (p50, p99) = p50_p99(times);
    rows.push((String::from("Incremental sync with nothing new, p50 (ms)"), p50));
    rows.push((String::from("Incremental sync with nothing new, p99 (ms)"), p99));

    // Delivery: the subject long-polls, one of the others sends. In the rooms the talk is in
    // (20 of the 2,000, each written to before the measured rounds), and in rooms nobody wrote
    // to since the start (the server first reads the room's state from the database).
    let talk: Vec<usize> = (0..TALK_ROOMS).map(|i| (i * 97) % g.rooms.len()).collect();
    let cold: Vec<usize> = (0..COLD_ROUNDS).map(|i| (TALK_ROOMS * 97 + i * 7919) % g.rooms.len()).collect();
    for (label, rounds, rooms, warm_up) in [
        ("in the 20 rooms being talked in", DELIVERY_ROUNDS, &talk, TALK_ROOMS),
        ("in a room not written to since the start", COLD_ROUNDS, &cold, 0),
    ] {
        let mut times = Vec::new();
        let mut cpu0 = CpuMeter::start(pid);
        for i in 0..(warm_up + rounds) {
            if i == warm_up {
                cpu0 = CpuMeter::start(pid);
            }
            let r = rooms[i % rooms.len()];
            let (took, next) = delivery_round(cs, g, subject, &since, r, i).await?;
            since = next;
            if i >= warm_up {
                times.push(took);
            }
        }
        let (p50, p99) = p50_p99(times);
        rows.push((format!("Send to the subject's /sync {label}, p50 (ms)"), p50));
        rows.push((format!("Send to the subject's /sync {label}, p99 (ms)"), p99));
        rows.push((format!("Server CPU per send+sync round {label} (ms)"), cpu0.seconds() * 1000.0 / rounds as f64));
    }

    // Element X opening: the first screen of 20 rooms out of 2,000.
    let mut times = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..FIRST_LISTS {
        let path = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?timeout=0";
        let t = Instant::now();
        let v = cs.call(reqwest::Method::POST, path, Some(subject), Some(room_list_body(19))).await?;
        times.push(ms(t));
        let count = v["lists"]["all_rooms"]["count"].as_u64().unwrap_or(0) as usize;
        if count < g.shape.rooms {
            bail!("the room list counts {count} rooms");
        }
        let mut pos = v["pos"].as_str().context("pos")?.to_owned();
        let t = Instant::now();
        let mut end = 99;
        loop {
            let last = end.min(count - 1);
            let path = format!("{path}&pos={pos}");
            let v = cs.call(reqwest::Method::POST, &path, Some(subject), Some(room_list_body(last))).await?;
            pos = v["pos"].as_str().context("pos")?.to_owned();
            if last == count - 1 {
                break;
            }
            end += 100;
        }
        whole.push(ms(t));
    }
    rows.push((String::from("Sliding sync, first room list (20 of 2,000 rooms), p50 (ms)"), p50_p99(times).0));
    rows.push((
        String::from("Sliding sync, the rest of the list loaded 100 rooms at a time, p50 (ms)"),
        p50_p99(whole).0,
    ));
    rows.push((String::from("Peak RSS since the last start (MiB)"), rss_mib(pid).1));
    Ok(rows)
}
