//! Prometheus metrics (`enable_metrics`, as Synapse's key): what a request, the database, the
//! event writer, federation and the process cost, in Prometheus's text format at
//! `/_synapse/metrics` (and `/metrics`) on the admin listener and on `type = "metrics"`
//! listeners.
//!
//! Every server has its own registry (nothing global: tests and the desktop app run several
//! servers in one process). Counters that parts of the server keep anyway (the event writer's,
//! the database's write wait) are registered here; gauges that describe stored data (queued
//! federation events, database and media sizes) are read when scraped, so an idle server does
//! no work for them.

use prometheus::{
    Counter, Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use super::AppState;
use crate::error::{Error, Result};

/// Request latency buckets, seconds: from a cached read to a long-polling /sync (30 s is what
/// clients ask for).
const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Short waits and commits, seconds.
const SHORT_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
    in_flight: IntGaugeVec,
    sync_connections: IntGaugeVec,
    db_connections: IntGaugeVec,
    federation_destinations: IntGaugeVec,
    federation_queued_pdus: IntGauge,
    federation_queued_edus: IntGauge,
    database_bytes: IntGauge,
    media_bytes: IntGauge,
    users: IntGauge,
    process: Process,
}

/// The process's CPU time, memory, open files and threads, under the standard `process_*` names,
/// read from /proc at each scrape (Linux; elsewhere they stay 0).
struct Process {
    cpu: Counter,
    resident: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    threads: IntGauge,
    start: Gauge,
}

impl Process {
    fn new(registry: &Registry) -> prometheus::Result<Process> {
        let p = Process {
            cpu: Counter::new("process_cpu_seconds_total", "User and system CPU time spent, seconds")?,
            resident: IntGauge::new("process_resident_memory_bytes", "Resident memory size, bytes")?,
            virtual_memory: IntGauge::new("process_virtual_memory_bytes", "Virtual memory size, bytes")?,
            open_fds: IntGauge::new("process_open_fds", "Open file descriptors (sockets and files)")?,
            threads: IntGauge::new("process_threads", "Threads of the process")?,
            start: Gauge::new("process_start_time_seconds", "When the process started, seconds since the Unix epoch")?,
        };
        if cfg!(target_os = "linux") {
            registry.register(Box::new(p.cpu.clone()))?;
            registry.register(Box::new(p.resident.clone()))?;
            registry.register(Box::new(p.virtual_memory.clone()))?;
            registry.register(Box::new(p.open_fds.clone()))?;
            registry.register(Box::new(p.threads.clone()))?;
            registry.register(Box::new(p.start.clone()))?;
        }
        Ok(p)
    }

    #[cfg(target_os = "linux")]
    fn refresh(&self) {
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            // Fields after the command name, which may itself hold spaces and parentheses.
            && let Some((_, rest)) = stat.rsplit_once(')')
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // Counted from the state (field 3 of proc(5)): utime 14, stime 15, threads 20,
            // starttime 22, vsize 23.
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (field(14), field(15)) {
                let seconds = (user + system) as f64 / ticks;
                let counted = self.cpu.get();
                if seconds > counted {
                    self.cpu.inc_by(seconds - counted);
                }
            }
            if let Some(n) = field(20) {
                self.threads.set(n as i64);
            }
            if let Some(v) = field(23) {
                self.virtual_memory.set(v as i64);
            }
            if let (Some(start), Some(boot)) = (field(22), boot_time()) {
                self.start.set(boot + start as f64 / ticks);
            }
        }
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
            && let Some(pages) = statm.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok())
        {
            self.resident.set((pages * rustix::param::page_size() as u64) as i64);
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn refresh(&self) {}
}

/// When the system booted, seconds since the Unix epoch (`btime` of /proc/stat).
#[cfg(target_os = "linux")]
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// What a request is, for its labels: the API it belongs to and its route, with the version
/// segment (`r0`, `v3`, `unstable`...) folded so one endpoint is one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub api: &'static str,
    pub route: String,
}

impl Endpoint {
    /// From the route axum matched (`None`: no route, answered by the fallback). The route is a
    /// template (`/_matrix/client/v3/rooms/{room_id}/send/...`), so the label's values are
    /// bounded by the routes the server has, whatever paths clients send.
    pub fn of(matched: Option<&str>) -> Endpoint {
        let Some(route) = matched else {
            return Endpoint { api: "other", route: "unmatched".to_owned() };
        };
        let api = match route {
            r if r.starts_with("/_matrix/client/") => "client",
            r if r.starts_with("/_matrix/federation/") => "federation",
            r if r.starts_with("/_matrix/key/") => "federation_keys",
            r if r.starts_with("/_matrix/media/") => "media",
            r if r.starts_with("/_synapse/admin/") => "synapse_admin",
            r if r.starts_with("/_hearth/") => "hearth_admin",
            r if r.starts_with("/.well-known/") => "well_known",
            _ => "other",
        };
        // Parameters as `:room_id`: braces inside label values trip up simple text parsers.
        let mut segments: Vec<String> = route
            .split('/')
            .map(|seg| match seg.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(param) => format!(":{}", param.trim_start_matches('*')),
                None => seg.to_owned(),
            })
            .collect();
        // "", "_matrix", "client", "v3", ...
        if segments.len() > 3 && segments[1].starts_with('_') && is_version(&segments[3]) {
            "*".clone_into(&mut segments[3]);
        }
        Endpoint { api, route: segments.join("/") }
    }

    /// The long-polling endpoints: /sync and sliding sync.
    fn sync_kind(&self) -> Option<&'static str> {
        if self.api != "client" {
            return None;
        }
        if self.route == "/_matrix/client/*/sync" {
            Some("sync")
        } else if self.route.ends_with("/sync") {
            Some("sliding_sync")
        } else {
            None
        }
    }
}

fn is_version(segment: &str) -> bool {
    segment == "unstable"
        || segment == "r0"
        || (segment.len() > 1 && segment.starts_with('v') && segment[1..].bytes().all(|b| b.is_ascii_digit()))
}

/// Counts one request from its start; dropped when the response is ready.
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    endpoint: Endpoint,
    method: &'static str,
    started: std::time::Instant,
}

impl InFlight<'_> {
    pub fn done(self, status: u16) {
        let e = &self.endpoint;
        self.metrics.requests.with_label_values(&[e.api, &e.route, self.method, &status.to_string()]).inc();
        self.metrics.durations.with_label_values(&[e.api, &e.route]).observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.with_label_values(&[self.endpoint.api]).dec();
        if let Some(kind) = self.endpoint.sync_kind() {
            self.metrics.sync_connections.with_label_values(&[kind]).dec();
        }
    }
}

impl Metrics {
    /// The registry, with the counters other parts keep: the database's write wait, the event
    /// writer's counts.
    pub fn new(
        db_write_wait: &Histogram,
        events: Vec<Box<dyn prometheus::core::Collector>>,
    ) -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("hearth_http_requests_total", "HTTP requests answered, by API, route, method and status code"),
            &["api", "endpoint", "method", "code"],
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "hearth_http_request_duration_seconds",
                "Time from a request's arrival to its response's headers, long polls included",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["api", "endpoint"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new("hearth_http_requests_in_flight", "Requests being answered now, by API"),
            &["api"],
        )?;
        let sync_connections = IntGaugeVec::new(
            Opts::new(
                "hearth_sync_connections",
                "Open /sync (sync) and sliding sync requests, most of them long polls waiting for news",
            ),
            &["kind"],
        )?;
        let db_connections = IntGaugeVec::new(
            Opts::new("hearth_db_connections", "Database connections by pool (read, write) and state (idle, busy)"),
            &["pool", "state"],
        )?;
        let federation_destinations = IntGaugeVec::new(
            Opts::new(
                "hearth_federation_destinations",
                "Servers Hearth sends room events to, by whether they are being retried after failures",
            ),
            &["state"],
        )?;
        let federation_queued_pdus = IntGauge::new(
            "hearth_federation_queued_pdus",
            "Room events waiting to be sent to other servers (summed over destinations)",
        )?;
        let federation_queued_edus = IntGauge::new(
            "hearth_federation_queued_edus",
            "To-device messages (EDUs kept until delivered) waiting to be sent to other servers",
        )?;
        let database_bytes =
            IntGauge::new("hearth_database_size_bytes", "Size of the database file and its write-ahead log")?;
        let media_bytes = IntGauge::new("hearth_media_size_bytes", "Bytes of stored media, each file counted once")?;
        let users = IntGauge::new("hearth_users", "Active (not deactivated) local accounts")?;
        let build = IntGaugeVec::new(Opts::new("hearth_build_info", "The running Hearth's version"), &["version"])?;
        build.with_label_values(&[crate::VERSION]).set(1);
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(durations.clone()),
            Box::new(in_flight.clone()),
            Box::new(sync_connections.clone()),
            Box::new(db_connections.clone()),
            Box::new(federation_destinations.clone()),
            Box::new(federation_queued_pdus.clone()),
            Box::new(federation_queued_edus.clone()),
            Box::new(database_bytes.clone()),
            Box::new(media_bytes.clone()),
            Box::new(users.clone()),
            Box::new(build),
            Box::new(db_write_wait.clone()),
        ] {
            registry.register(c)?;
        }
        for c in events {
            registry.register(c)?;
        }
        let process = Process::new(&registry)?;
        Ok(Metrics {
            registry,
            requests,
            durations,
            in_flight,
            sync_connections,
            db_connections,
            federation_destinations,
            federation_queued_pdus,
            federation_queued_edus,
            database_bytes,
            media_bytes,
            users,
            process,
        })
    }

    /// A request begins.
    pub fn start(&self, endpoint: Endpoint, method: &'static str) -> InFlight<'_> {
        self.in_flight.with_label_values(&[endpoint.api]).inc();
        if let Some(kind) = endpoint.sync_kind() {
            self.sync_connections.with_label_values(&[kind]).inc();
        }
        InFlight { metrics: self, endpoint, method, started: std::time::Instant::now() }
    }

    /// Everything, in Prometheus's text format (version 0.0.4), the gauges read from the
    /// database and the federation sender first.
    pub async fn render(&self, s: &AppState) -> Result<String> {
        self.refresh(s).await?;
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out).map_err(Error::internal)?;
        String::from_utf8(out).map_err(Error::internal)
    }

    async fn refresh(&self, s: &AppState) -> Result<()> {
        self.process.refresh();
        for (name, pool) in [("read", &s.db.read), ("write", &s.db.write)] {
            let idle = pool.num_idle() as i64;
            let size = i64::from(pool.size());
            self.db_connections.with_label_values(&[name, "idle"]).set(idle);
            self.db_connections.with_label_values(&[name, "busy"]).set((size - idle).max(0));
        }
        let destinations = s.federation.sender.destinations().await?;
        let backing_off = destinations.iter().filter(|d| d.backing_off).count() as i64;
        self.federation_destinations.with_label_values(&["backing_off"]).set(backing_off);
        self.federation_destinations.with_label_values(&["ok"]).set(destinations.len() as i64 - backing_off);
        self.federation_queued_pdus.set(destinations.iter().map(|d| d.queued).sum::<i64>());
        self.federation_queued_edus.set(s.federation.sender.queued_edus().await?);
        self.database_bytes.set(super::health::database_bytes(s.config.data_dir()) as i64);
        self.media_bytes.set(i64::try_from(s.media.stored_bytes().await?).unwrap_or(i64::MAX));
        self.users.set(s.accounts.count_active_users().await?);
        Ok(())
    }
}

/// A histogram of short waits (seconds), for parts that time themselves.
pub fn short_histogram(name: &str, help: &str) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(SHORT_BUCKETS.to_vec()))
        .expect("a valid histogram: fixed name and sorted buckets")
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn endpoint_labels_fold_versions_and_unknown_paths() {
        let e = Endpoint::of(Some("/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}"));
        assert_eq!(e.api, "client");
        assert_eq!(e.route, "/_matrix/client/*/rooms/:room_id/send/:event_type/:txn_id");
        assert_eq!(Endpoint::of(Some("/_matrix/client/r0/sync")).route, "/_matrix/client/*/sync");
        assert_eq!(Endpoint::of(Some("/_matrix/client/r0/sync")).sync_kind(), Some("sync"));
        let sliding = Endpoint::of(Some("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"));
        assert_eq!(sliding.sync_kind(), Some("sliding_sync"));
        assert_eq!(Endpoint::of(Some("/_matrix/federation/v1/send/{txn_id}")).api, "federation");
        assert_eq!(Endpoint::of(Some("/_matrix/key/v2/server")).api, "federation_keys");
        // Parameters keep their names; only the version slot is folded.
        assert_eq!(
            Endpoint::of(Some("/_matrix/media/v3/download/{server_name}/{media_id}")).route,
            "/_matrix/media/*/download/:server_name/:media_id"
        );
        assert_eq!(
            Endpoint::of(Some("/_hearth/admin/v1/users/{user_id}/admin")).route,
            "/_hearth/admin/*/users/:user_id/admin"
        );
        assert_eq!(Endpoint::of(None), Endpoint { api: "other", route: "unmatched".to_owned() });
    }
}
