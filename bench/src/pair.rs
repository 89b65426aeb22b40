//! Paired comparison of two Hearth builds: both run side by side on the same data, and the
//! client alternates between them, so a drift of the machine (which on a shared 2-core machine
//! moves one build's CPU per initial sync between 2.3 and 4.1 ms from run to run) falls on
//! both. Reports each build's server CPU per initial sync (batches of them), per message sent
//! into a room of 100 members (batches; what a busy family or club room costs each send), and
//! per delivery round (a long-polling `/sync` woken by a send in a 12-member room with earlier
//! history), and in how many of the paired batches or rounds the second build was cheaper.
//!
//! The comparison runs twice, the second time with the servers' places swapped: with the same
//! build on both sides the pairing is not exactly even (one side came out a few percent lower),
//! so a change is only real when it shows both ways.
//!
//! `hearth-pair-bench BIN_A BIN_B [ROUNDS]` (default 60 batches and 300 delivery rounds).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hearth_bench::{CpuMeter, Cs, next_batch, percentile, start_hearth};
use serde_json::json;

const USERS: usize = 12;
const ROOMS: usize = 20;
const MEMBERS_PER_ROOM: usize = 10;
const HISTORY_PER_ROOM: usize = 20;
const WARM_MESSAGES: usize = 1000;
const SYNCS_PER_BATCH: usize = 25;
const BIG_ROOM_MEMBERS: usize = 100;
const SENDS_PER_BATCH: usize = 20;

/// One running build with the data both get.
struct Side {
    cs: Cs,
    pid: u32,
    _server: Running,
    /// A member of every room of the initial-sync data.
    syncer: String,
    /// The delivery room, who sends there and who waits for it.
    room: String,
    writer: String,
    reader: String,
    since: String,
    txn: u64,
    /// A room of `BIG_ROOM_MEMBERS` and who sends there.
    big_room: String,
}

impl Side {
    async fn start(bin: &str, name: &'static str, port: u16) -> Result<Side> {
        let dir = tempfile::tempdir()?;
        // Held from here on, so a failure while setting up stops the server too.
        let server = Running { child: start_hearth(bin, dir.path(), port)?, _dir: dir };
        let pid = server.child.id();
        let cs = Cs { name, base: format!("http://127.0.0.1:{port}"), http: reqwest::Client::new() };
        cs.wait_ready().await?;
        let mut tokens = Vec::new();
        for i in 0..USERS {
            tokens.push(cs.register(&format!("p{i}")).await?.1);
        }
        for r in 0..ROOMS {
            let room =
                cs.create_room(&tokens[0], json!({"preset": "public_chat", "name": format!("room {r}")})).await?;
            for t in &tokens[1..MEMBERS_PER_ROOM] {
                cs.join(t, &room).await?;
            }
            for m in 0..HISTORY_PER_ROOM {
                let body = format!("message {m} in room {r}, with some words in it");
                cs.send(&tokens[m % MEMBERS_PER_ROOM], &room, &format!("r{r}m{m}"), &body).await?;
            }
        }
        let room = cs.create_room(&tokens[0], json!({"preset": "public_chat"})).await?;
        for t in &tokens[1..] {
            cs.join(t, &room).await?;
        }
        for m in 0..WARM_MESSAGES {
            cs.send(&tokens[m % MEMBERS_PER_ROOM], &room, &format!("w{m}"), &format!("warm {m}")).await?;
        }
        let big_room = cs.create_room(&tokens[0], json!({"preset": "public_chat"})).await?;
        for t in &tokens[1..] {
            cs.join(t, &big_room).await?;
        }
        for i in USERS..BIG_ROOM_MEMBERS {
            let (_, t) = cs.register(&format!("p{i}")).await?;
            cs.join(&t, &big_room).await?;
        }
        let reader = tokens[USERS - 1].clone();
        let since = next_batch(&cs.sync(&reader, None, 0, None).await?)?;
        Ok(Side {
            cs,
            pid,
            _server: server,
            syncer: tokens[MEMBERS_PER_ROOM / 2].clone(),
            room,
            writer: tokens[1].clone(),
            reader,
            since,
            txn: 0,
            big_room,
        })
    }

    /// Server CPU (ms) per initial sync over one batch.
    async fn initial_batch(&self) -> Result<f64> {
        let cpu = CpuMeter::start(self.pid);
        for _ in 0..SYNCS_PER_BATCH {
            self.cs.sync(&self.syncer, None, 0, None).await?;
        }
        Ok(cpu.seconds() * 1000.0 / SYNCS_PER_BATCH as f64)
    }

    /// Server CPU (ms) per message sent into the big room, over one batch.
    async fn big_room_batch(&mut self) -> Result<f64> {
        let cpu = CpuMeter::start(self.pid);
        for _ in 0..SENDS_PER_BATCH {
            self.txn += 1;
            self.cs.send(&self.writer, &self.big_room, &format!("t{}", self.txn), "to everyone").await?;
        }
        Ok(cpu.seconds() * 1000.0 / SENDS_PER_BATCH as f64)
    }

    /// One delivery round: (latency until the waiting /sync answered, server CPU), in ms.
    async fn delivery_round(&mut self) -> Result<(f64, f64)> {
        let cpu = CpuMeter::start(self.pid);
        self.txn += 1;
        let txn = format!("t{}", self.txn);
        let poll = self.cs.sync(&self.reader, Some(&self.since), 30_000, None);
        let send = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let start = Instant::now();
            self.cs.send(&self.writer, &self.room, &txn, "ping").await?;
            Ok::<_, anyhow::Error>(start)
        };
        let (synced, started) = tokio::join!(poll, send);
        let latency = started?.elapsed().as_secs_f64() * 1000.0;
        self.since = next_batch(&synced?)?;
        Ok((latency, cpu.seconds() * 1000.0))
    }
}

/// A started server, stopped when dropped (its data directory goes after it).
struct Running {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `p` percentile of unsorted values.
fn percentile_of(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, p)
}

/// `n` turns of `f` on each side, with each side taking the first turn every other time.
async fn alternately<T>(
    n: usize,
    a: &mut Side,
    b: &mut Side,
    mut f: impl AsyncFnMut(&mut Side) -> Result<T>,
) -> Result<(Vec<T>, Vec<T>)> {
    let (mut xa, mut xb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        if i % 2 == 0 {
            xa.push(f(a).await?);
            xb.push(f(b).await?);
        } else {
            xb.push(f(b).await?);
            xa.push(f(a).await?);
        }
    }
    Ok((xa, xb))
}

/// One comparison with `first` on the first port, printed as a table of (first, second).
async fn compare(first: &str, second: &str, batches: usize, rounds: usize) -> Result<()> {
    let mut a = Side::start(first, "first", 18201).await?;
    let mut b = Side::start(second, "second", 18202).await?;
    for _ in 0..4 {
        a.initial_batch().await?;
        b.initial_batch().await?;
    }
    let (ia, ib) = alternately(batches, &mut a, &mut b, async |s: &mut Side| s.initial_batch().await).await?;
    let (sa, sb) = alternately(batches, &mut a, &mut b, async |s: &mut Side| s.big_room_batch().await).await?;
    // The reader is in the big room too: the delivery rounds start from after those messages.
    for side in [&mut a, &mut b] {
        side.since = next_batch(&side.cs.sync(&side.reader, Some(&side.since), 0, None).await?)?;
    }
    let (da, db) = alternately(rounds, &mut a, &mut b, async |s: &mut Side| s.delivery_round().await).await?;
    let lower = |x: &[f64], y: &[f64]| x.iter().zip(y).filter(|(x, y)| y < x).count();
    println!("first: {first}\nsecond: {second}");
    println!("| Measure | First | Second | Second / first | Second lower in |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, x: &[f64], y: &[f64]| {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {} of {} |",
            percentile_of(x, 0.5),
            percentile_of(y, 0.5),
            percentile_of(y, 0.5) / percentile_of(x, 0.5),
            lower(x, y),
            x.len()
        );
    };
    row("Server CPU per initial sync, median of batches (ms)", &ia, &ib);
    row("Server CPU per message into a room of 100, median of batches (ms)", &sa, &sb);
    let cpu = |v: &[(f64, f64)]| v.iter().map(|r| r.1).collect::<Vec<_>>();
    let lat = |v: &[(f64, f64)]| v.iter().map(|r| r.0).collect::<Vec<_>>();
    row("Server CPU per delivery round, median (ms)", &cpu(&da), &cpu(&db));
    row("Delivery latency, median (ms)", &lat(&da), &lat(&db));
    let (p99a, p99b) = (percentile_of(&lat(&da), 0.99), percentile_of(&lat(&db), 0.99));
    println!("| Delivery latency, p99 (ms) | {p99a:.3} | {p99b:.3} | {:.3} | |", p99b / p99a);
    println!();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(a), Some(b)) = (args.first(), args.get(1)) else {
        bail!("usage: hearth-pair-bench BIN_A BIN_B [ROUNDS]");
    };
    let batches: usize = match args.get(2) {
        Some(n) => n.parse().context("ROUNDS must be a number")?,
        None => 60,
    };
    let rounds = batches * 5;
    compare(a, b, batches, rounds).await?;
    // The places swapped: a change shows both ways, a bias of the pairing only one way.
    compare(b, a, batches, rounds).await?;
    Ok(())
}
