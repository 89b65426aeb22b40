//! What both benchmarks (`hearth-bench`, Client-Server; `hearth-fed-bench`, federation) share:
//! a homeserver's Client-Server API as its users call it, and what they read of the servers'
//! processes.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A homeserver's Client-Server API, as a user of it.
pub struct Cs {
    pub name: &'static str,
    pub base: String,
    pub http: reqwest::Client,
}

impl Cs {
    /// Waits (up to a minute) until the server answers `/versions`.
    pub async fn wait_ready(&self) -> Result<()> {
        for _ in 0..600 {
            if let Ok(r) = self.http.get(format!("{}/_matrix/client/versions", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} did not start", self.name)
    }

    /// One request; an error answer is an error, except a 401 with `flows` (the first step of a
    /// User-Interactive Authentication, which the caller goes on with).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        let uia_step = status == reqwest::StatusCode::UNAUTHORIZED && v.get("flows").is_some();
        if !(status.is_success() || uia_step) {
            bail!("{} {path}: {status} {v}", self.name);
        }
        Ok(v)
    }

    /// Registers through the dummy flow; returns (user_id, access token).
    pub async fn register(&self, name: &str) -> Result<(String, String)> {
        let body = json!({"username": name, "password": "bench-password"});
        let first = self.call(reqwest::Method::POST, "/_matrix/client/v3/register", None, Some(body)).await?;
        let body = json!({"username": name, "password": "bench-password",
            "auth": {"type": "m.login.dummy", "session": first["session"]}});
        let v = self.call(reqwest::Method::POST, "/_matrix/client/v3/register", None, Some(body)).await?;
        Ok((
            v["user_id"].as_str().context("user_id")?.to_owned(),
            v["access_token"].as_str().context("token")?.to_owned(),
        ))
    }

    /// `GET /sync` from `since` (an initial sync without), waiting up to `timeout_ms`, with a
    /// filter (URL-encoded JSON or a filter ID).
    pub async fn sync(&self, token: &str, since: Option<&str>, timeout_ms: u64, filter: Option<&str>) -> Result<Value> {
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
        if let Some(s) = since {
            path.push_str(&format!("&since={s}"));
        }
        if let Some(f) = filter {
            path.push_str(&format!("&filter={f}"));
        }
        self.call(reqwest::Method::GET, &path, Some(token), None).await
    }

    /// Sends a text message under transaction ID `txn`; returns the event ID.
    pub async fn send(&self, token: &str, room: &str, txn: &str, body: &str) -> Result<String> {
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
        let v = self
            .call(reqwest::Method::PUT, &path, Some(token), Some(json!({"msgtype": "m.text", "body": body})))
            .await?;
        Ok(v["event_id"].as_str().context("event_id")?.to_owned())
    }

    pub async fn create_room(&self, token: &str, body: Value) -> Result<String> {
        let v = self.call(reqwest::Method::POST, "/_matrix/client/v3/createRoom", Some(token), Some(body)).await?;
        Ok(v["room_id"].as_str().context("room_id")?.to_owned())
    }

    /// Joins `room` (an ID or an alias of this server).
    pub async fn join(&self, token: &str, room: &str) -> Result<()> {
        self.call(reqwest::Method::POST, &format!("/_matrix/client/v3/join/{room}"), Some(token), Some(json!({})))
            .await?;
        Ok(())
    }

    /// How many members `/joined_members` lists.
    pub async fn joined_members(&self, token: &str, room: &str) -> Result<usize> {
        let path = format!("/_matrix/client/v3/rooms/{room}/joined_members");
        let v = self.call(reqwest::Method::GET, &path, Some(token), None).await?;
        Ok(v["joined"].as_object().map_or(0, |m| m.len()))
    }
}

/// The `next_batch` token of a `/sync` answer.
pub fn next_batch(sync: &Value) -> Result<String> {
    Ok(sync["next_batch"].as_str().context("next_batch")?.to_owned())
}

/// utime + stime of a process in seconds (from /proc/PID/stat).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is index 0, utime 11, stime 12.
    (ticks(11) + ticks(12)) / 100.0
}

/// The CPU a process spends from a starting point on. A request of a few milliseconds is
/// below the 10 ms ticks of `stat`, so the meter adds up each thread's `schedstat`
/// (nanoseconds) instead. A thread that ends while the meter runs takes its time with it; then
/// the meter falls back to the whole process's ticks, which still count it.
pub struct CpuMeter {
    pid: u32,
    ticks: f64,
    threads: std::collections::HashMap<String, u64>,
}

impl CpuMeter {
    pub fn start(pid: u32) -> Self {
        let threads = thread_stats(pid).into_iter().map(|(tid, (_, cpu_ns))| (tid, cpu_ns)).collect();
        Self { pid, ticks: cpu_seconds(pid), threads }
    }

    /// Seconds of CPU since `start`.
    pub fn seconds(&self) -> f64 {
        let now = thread_stats(self.pid);
        if self.threads.keys().any(|tid| !now.contains_key(tid)) {
            return cpu_seconds(self.pid) - self.ticks;
        }
        // A thread first seen now started after the meter: all of its time counts.
        let ns: u64 =
            now.iter().map(|(tid, (_, c))| c.saturating_sub(self.threads.get(tid).copied().unwrap_or(0))).sum();
        ns as f64 / 1e9
    }
}

/// Per thread of the process, by thread ID: its context switches so far (voluntary and not;
/// each one the thread woken, which is what keeps a laptop's CPU from sleeping) and its CPU
/// time in nanoseconds (`schedstat`, finer than the 10 ms ticks of `stat`).
pub fn thread_stats(pid: u32) -> std::collections::HashMap<String, (u64, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Default::default() };
    tasks
        .flatten()
        .filter_map(|t| {
            let status = std::fs::read_to_string(t.path().join("status")).ok()?;
            let switches = status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            let schedstat = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
            let cpu_ns = schedstat.split_whitespace().next()?.parse().ok()?;
            Some((t.file_name().to_string_lossy().into_owned(), (switches, cpu_ns)))
        })
        .collect()
}

/// The process's cost while nobody uses it, over `window`: (wake-ups per second, CPU ms per
/// minute). Read every second, so that threads which start or end in the window count too.
pub async fn idle_cost(pid: u32, window: std::time::Duration) -> (f64, f64) {
    let started = std::time::Instant::now();
    let mut last = thread_stats(pid);
    let (mut switches, mut cpu_ns) = (0u64, 0u64);
    while started.elapsed() < window {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = thread_stats(pid);
        for (tid, (s, c)) in &now {
            // A thread first seen now started in the window: all of it counts.
            let (s0, c0) = last.get(tid).copied().unwrap_or((0, 0));
            switches += s.saturating_sub(s0);
            cpu_ns += c.saturating_sub(c0);
        }
        last = now;
    }
    let secs = started.elapsed().as_secs_f64();
    (switches as f64 / secs, cpu_ns as f64 / 1e6 / (secs / 60.0))
}

/// (current RSS, peak RSS) in MiB, from /proc/PID/status.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs `hearth serve --config CONFIG` as installed: without a developer's RUST_BACKTRACE=1
/// (which makes every error capture a backtrace, and the first one load the unwinder's tables)
/// or RUST_LOG, its output discarded (the config's log level and folder apply).
pub fn spawn_hearth(bin: &str, config: &std::path::Path) -> std::io::Result<std::process::Child> {
    std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

/// Every rate limit out of the way, as for Synapse: the benchmarks measure serving, not limiting.
pub const HEARTH_LIMITS: &str = include_str!("../../tests/lax_rate_limits.toml");

/// What Element X's room list asks for (matrix-sdk-ui 0.18's RoomListService), rooms 0..=`end`.
pub fn room_list_body(end: usize) -> Value {
    json!({
        "conn_id": "room-list",
        "lists": { "all_rooms": {
            "ranges": [[0, end]],
            "timeline_limit": 1,
            "required_state": [
                ["m.room.name", ""], ["m.room.encryption", ""], ["m.room.member", "$LAZY"], ["m.room.member", "$ME"],
                ["m.room.topic", ""], ["m.room.avatar", ""], ["m.room.canonical_alias", ""], ["m.room.power_levels", ""],
                ["org.matrix.msc3401.call.member", "*"], ["m.room.join_rules", ""], ["m.room.tombstone", ""],
                ["m.room.create", ""], ["m.room.history_visibility", ""], ["io.element.functional_members", ""],
                ["m.space.parent", "*"], ["m.space.child", "*"]
            ],
            "filters": {}
        }},
        "extensions": { "account_data": { "enabled": true }, "receipts": { "enabled": true, "rooms": ["*"] }, "typing": { "enabled": true } }
    })
}

/// Writes a benchmark config (open registration, no rate limits, warnings only) into `dir` and
/// starts `bin` on it, serving on 127.0.0.1:`port` with its data in `dir/data`.
pub fn start_hearth(bin: &str, dir: &std::path::Path, port: u16) -> Result<std::process::Child> {
    let config = dir.join("homeserver.toml");
    std::fs::write(
        &config,
        format!(
            "server_name = \"bench.hearth\"\ndata_dir = \"{}\"\nsecret_store = \"file\"\nenable_registration = true\nenable_registration_without_verification = true\nlog_level = \"warn\"\nlog_dir = \"{}\"\n{HEARTH_LIMITS}\n[admin]\nport = 0\n[[listeners]]\nport = {port}\nbind_addresses = [\"127.0.0.1\"]\n",
            dir.join("data").display(),
            dir.join("logs").display()
        ),
    )?;
    Ok(spawn_hearth(bin, &config)?)
}
