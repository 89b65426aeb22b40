//! Backup benchmark: how long `hearth backup` takes on a large database (1 GiB by default), and
//! how long a message send waits at worst while it runs (the longest write stall users feel).
//!
//! The database is filled through the Client-Server API (messages with 16 KB bodies from a few
//! senders) until the file reaches the size; then one sender keeps sending, one message at a
//! time, first alone and then while `hearth backup` (plain, then encrypted) copies the running
//! server. Synapse has no built-in backup to compare with (its documentation points to
//! `pg_dump`), so the comparison is with the same sends without a backup.
//!
//!   scripts/bench-backup.sh [SIZE_MIB]     (writes docs/benchmarks-backup.md)

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use hearth_bench::{Cs, percentile, rss_mib};
use serde_json::json;

const BODY_BYTES: usize = 16 * 1024;
const FILLERS: usize = 8;
/// How long the sender runs alone, for the comparison.
const BASELINE: Duration = Duration::from_secs(15);

fn db_bytes(data: &Path) -> u64 {
    ["hearth.db", "hearth.db-wal"].iter().filter_map(|f| std::fs::metadata(data.join(f)).ok()).map(|m| m.len()).sum()
}

/// Sends messages one at a time until `stop`; answers each send's latency (ms).
async fn sender(
    cs: Arc<Cs>,
    token: String,
    room: String,
    stop: Arc<AtomicBool>,
    tag: &'static str,
) -> Result<Vec<f64>> {
    let mut latencies = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let started = Instant::now();
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{tag}-{n}");
        cs.call(reqwest::Method::PUT, &path, Some(&token), Some(json!({"msgtype": "m.text", "body": "still here"})))
            .await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(latencies)
}

fn summary(mut l: Vec<f64>) -> (usize, f64, f64, f64) {
    l.sort_by(|a, b| a.total_cmp(b));
    (l.len(), percentile(&l, 0.5), percentile(&l, 0.99), l.last().copied().unwrap_or(f64::NAN))
}

/// Runs `hearth backup`; answers the seconds it took and the backup's folder.
fn backup(bin: &str, config: &Path, out: &Path, passphrase: Option<&Path>) -> Result<(f64, PathBuf)> {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["backup", "--config"]).arg(config).arg("--output").arg(out).env_remove("RUST_LOG");
    if let Some(p) = passphrase {
        cmd.arg("--passphrase-file").arg(p);
    }
    let started = Instant::now();
    let done = cmd.output()?;
    let secs = started.elapsed().as_secs_f64();
    if !done.status.success() {
        bail!("hearth backup failed: {}", String::from_utf8_lossy(&done.stderr));
    }
    let path = String::from_utf8_lossy(&done.stdout).lines().last().context("the backup's path")?.to_owned();
    Ok((secs, PathBuf::from(path)))
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| if e.path().is_dir() { folder_bytes(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
        .sum()
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hearth-backup-bench HEARTH_BINARY OUTPUT.md [SIZE_MIB]";
    let bin = args.next().context(usage)?;
    let output = PathBuf::from(args.next().context(usage)?);
    let size_mib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let config = work.path().join("homeserver.toml");
    let port = 18310;
    let mut child = hearth_bench::start_hearth(&bin, work.path(), port)?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
    let cs = Arc::new(Cs { name: "hearth", base: format!("http://127.0.0.1:{port}"), http });
    cs.wait_ready().await?;
    let (_, token) = cs.register("filler").await?;
    let room = cs.create_room(&token, json!({"preset": "private_chat"})).await?;

    // Fill.
    let started = Instant::now();
    let target = size_mib * 1024 * 1024;
    let body = "lorem ipsum dolor sit amet ".repeat(BODY_BYTES / 27);
    let mut fillers = Vec::new();
    for f in 0..FILLERS {
        let (cs, token, room, body, data) = (cs.clone(), token.clone(), room.clone(), body.clone(), data.clone());
        fillers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while db_bytes(&data) < target {
                for _ in 0..50 {
                    n += 1;
                    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/fill-{f}-{n}");
                    cs.call(
                        reqwest::Method::PUT,
                        &path,
                        Some(&token),
                        Some(json!({"msgtype": "m.text", "body": body})),
                    )
                    .await?;
                }
            }
            anyhow::Ok(n)
        }));
    }
    let mut messages = 0;
    for f in fillers {
        messages += f.await??;
    }
    let fill_secs = started.elapsed().as_secs_f64();
    // Let the checkpointer fold the WAL back in, as on a server at rest.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let db = db_bytes(&data);
    eprintln!("filled {:.0} MiB with {messages} messages in {fill_secs:.0} s", db as f64 / 1048576.0);

    let run = |tag: &'static str| {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(sender(cs.clone(), token.clone(), room.clone(), stop.clone(), tag));
        (stop, task)
    };
    let (stop, task) = run("alone");
    tokio::time::sleep(BASELINE).await;
    stop.store(true, Ordering::Relaxed);
    let alone = summary(task.await??);

    let passphrase = work.path().join("passphrase");
    std::fs::write(&passphrase, "correct horse battery staple\n")?;
    let mut rows = Vec::new();
    for (what, out, pass) in [
        ("plain", work.path().join("plain"), None),
        ("encrypted (age)", work.path().join("sealed"), Some(passphrase.as_path())),
    ] {
        let (stop, task) = run(if pass.is_some() { "sealed" } else { "plain" });
        let (bin, config, out2) = (bin.clone(), config.clone(), out.clone());
        let pass = pass.map(Path::to_path_buf);
        let took = tokio::task::spawn_blocking(move || backup(&bin, &config, &out2, pass.as_deref())).await??;
        stop.store(true, Ordering::Relaxed);
        let during = summary(task.await??);
        let size = folder_bytes(&took.1);
        eprintln!("{what}: {:.1} s, sends during: {during:?}", took.0);
        rows.push((what, took.0, size, during));
    }
    let (rss, peak) = rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();

    let mib = |b: u64| b as f64 / 1048576.0;
    let mut md = format!(
        "Database: {:.0} MiB ({messages} messages of 16 KB, filled in {fill_secs:.0} s). Server RSS after the backups: {rss:.1} MiB (peak {peak:.1} MiB).\n\n",
        mib(db)
    );
    md.push_str("| Backup | Time (s) | MiB/s | Backup size (MiB) | Sends during it | Send p50 (ms) | Send p99 (ms) | Longest send (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    md.push_str(&format!(
        "| none (the sender alone, {} s) | | | | {} | {:.1} | {:.1} | {:.1} |\n",
        BASELINE.as_secs(),
        alone.0,
        alone.1,
        alone.2,
        alone.3
    ));
    for (what, secs, size, (n, p50, p99, max)) in rows {
        md.push_str(&format!(
            "| {what} | {secs:.1} | {:.0} | {:.0} | {n} | {p50:.1} | {p99:.1} | {max:.1} |\n",
            mib(db) / secs,
            mib(size)
        ));
    }
    std::fs::write(&output, &md)?;
    println!("{md}");
    Ok(())
}
