//! TLS benchmark: Hearth's own TLS listener (rustls) against nginx terminating TLS in front of
//! Hearth's plain listener, the setup a reverse proxy gives. One Hearth process serves both
//! (a TLS listener, and a plain one behind nginx), with the same certificate (ECDSA P-256 from a
//! throwaway CA), so the difference is who does TLS and the extra hop.
//!
//! Two scenarios, each for a few seconds with the same number of concurrent clients:
//! - new connections: TCP connect, a full TLS handshake (no session resumption), one
//!   `GET /_matrix/client/versions`, close: what a phone waking up or a federation peer
//!   opening a connection costs;
//! - keep-alive: each client keeps one TLS connection and sends requests one after another.
//!
//! For each: rate, latency p50/p99, and the server side's CPU per 1000 (Hearth, plus nginx's
//! master and workers when it is in front).
//!
//!   hearth-tls-bench HEARTH_BINARY OUTPUT.md
//!   (scripts/bench-tls.sh builds and runs it)

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hearth_bench::{HEARTH_LIMITS, cpu_seconds, percentile};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::{
    TlsConnector,
    rustls::{self, pki_types::ServerName},
};

const NAME: &str = "bench.test";
/// Concurrent clients in each scenario.
fn clients() -> usize {
    std::env::var("HEARTH_TLS_BENCH_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(16)
}
/// How long each scenario runs.
fn duration() -> Duration {
    Duration::from_secs(std::env::var("HEARTH_TLS_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8))
}

/// A throwaway CA and a certificate for `NAME` and 127.0.0.1: (CA PEM, chain PEM, key PEM).
fn certificates() -> Result<(String, String, String)> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "Hearth TLS benchmark CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate()?)?;
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec![NAME.to_owned(), "127.0.0.1".to_owned()])?.signed_by(&key, &ca)?;
    Ok((ca.pem(), leaf.pem(), key.serialize_pem()))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_hearth(bin: &str, dir: &Path, plain: u16, tls: u16) -> Result<Child> {
    let config = dir.join("homeserver.toml");
    std::fs::write(
        &config,
        format!(
            "server_name = \"{NAME}\"\ndata_dir = \"{data}\"\nsecret_store = \"file\"\nlog_level = \"warn\"\nlog_dir = \"{logs}\"\n\
             tls_certificate_path = \"{cert}\"\ntls_private_key_path = \"{key}\"\n{HEARTH_LIMITS}\n[admin]\nport = 0\n\
             [[listeners]]\nport = {plain}\nbind_addresses = [\"127.0.0.1\"]\nx_forwarded = true\n\
             [[listeners]]\nport = {tls}\nbind_addresses = [\"127.0.0.1\"]\ntls = true\n",
            data = dir.join("data").display(),
            logs = dir.join("logs").display(),
            cert = dir.join("cert.pem").display(),
            key = dir.join("key.pem").display(),
        ),
    )?;
    Ok(hearth_bench::spawn_hearth(bin, &config)?)
}

/// nginx as it is usually set up in front of a homeserver: a worker per core, TLS 1.2 and 1.3,
/// kept-alive connections to the upstream, no access log (Hearth logs warnings only).
fn start_nginx(dir: &Path, port: u16, upstream: u16) -> Result<Child> {
    let ng = dir.join("nginx");
    std::fs::create_dir_all(&ng)?;
    // As root, nginx would hand its workers to "nobody", who cannot read the key here.
    let user = if std::fs::read_to_string("/proc/self/status")?.lines().any(|l| l.starts_with("Uid:\t0\t")) {
        "user root root;"
    } else {
        ""
    };
    let conf = format!(
        "daemon off;\n{user}\nworker_processes 2;\npid {ng}/nginx.pid;\nerror_log {ng}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {ng}/body;\n  proxy_temp_path {ng}/proxy;\n\
           fastcgi_temp_path {ng}/fastcgi;\n  uwsgi_temp_path {ng}/uwsgi;\n  scgi_temp_path {ng}/scgi;\n\
           upstream hearth {{ server 127.0.0.1:{upstream}; keepalive 64; }}\n\
           server {{\n    listen 127.0.0.1:{port} ssl http2;\n    server_name {NAME};\n\
             ssl_certificate {cert};\n    ssl_certificate_key {key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n\
             location / {{\n      proxy_pass http://hearth;\n      proxy_http_version 1.1;\n\
               proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n\
               proxy_set_header X-Forwarded-For $remote_addr;\n    }}\n  }}\n}}\n",
        ng = ng.display(),
        cert = dir.join("cert.pem").display(),
        key = dir.join("key.pem").display(),
    );
    std::fs::write(ng.join("nginx.conf"), conf)?;
    let nginx = ["/usr/sbin/nginx", "nginx"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("nginx");
    Command::new(nginx)
        .args(["-c"])
        .arg(ng.join("nginx.conf"))
        .args(["-e"])
        .arg(ng.join("error.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("nginx runs (Debian's nginx package)")
}

fn nginx_version() -> String {
    let out =
        Command::new("/usr/sbin/nginx").arg("-v").output().map(|o| String::from_utf8_lossy(&o.stderr).into_owned());
    out.unwrap_or_default().trim().rsplit('/').next().unwrap_or("").to_owned()
}

/// `pid` and its children (nginx's workers).
fn family(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the command: state, then the parent's pid.
        let ppid = stat.rsplit(')').next().and_then(|s| s.split_whitespace().nth(1)).and_then(|p| p.parse().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().map(|p| cpu_seconds(*p)).sum()
}

fn tls_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Every connection a full handshake: the cost of a client that has not been here before.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// A TLS connection to `port`, with HTTP/1.1 on it.
async fn connect(port: u16, tls: &TlsConnector) -> Result<Sender> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let stream = tls.connect(ServerName::try_from(NAME)?, tcp).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn versions(sender: &mut Sender) -> Result<()> {
    let req =
        hyper::Request::get("/_matrix/client/versions").header(hyper::header::HOST, NAME).body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    if resp.status() != 200 {
        bail!("/versions answered {}", resp.status());
    }
    let body = resp.into_body().collect().await?.to_bytes();
    if !body.starts_with(b"{") {
        bail!("/versions answered no JSON");
    }
    Ok(())
}

struct Outcome {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_ms_per_1000: f64,
}

/// Runs `clients()` loops of `one` for `duration()`, each timing its rounds.
async fn measure<F, Fut>(server: &[u32], one: F) -> Result<Outcome>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<Duration>>> + Send + 'static,
{
    let cpu_before = cpu_of(server);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients() {
        tasks.push(tokio::spawn(one.clone()()));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_of(server) - cpu_before;
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    Ok(Outcome {
        per_second: ms.len() as f64 / elapsed,
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
        cpu_ms_per_1000: cpu * 1000.0 / ms.len() as f64 * 1000.0,
    })
}

async fn new_connections(port: u16, tls: TlsConnector, server: &[u32]) -> Result<Outcome> {
    let until = Instant::now() + duration();
    measure(server, move || {
        let tls = tls.clone();
        async move {
            let mut times = Vec::new();
            while Instant::now() < until {
                let t = Instant::now();
                let mut sender = connect(port, &tls).await?;
                versions(&mut sender).await?;
                drop(sender);
                times.push(t.elapsed());
            }
            Ok(times)
        }
    })
    .await
}

async fn keep_alive(port: u16, tls: TlsConnector, server: &[u32]) -> Result<Outcome> {
    let until = Instant::now() + duration();
    measure(server, move || {
        let tls = tls.clone();
        async move {
            let mut sender = connect(port, &tls).await?;
            let mut times = Vec::new();
            while Instant::now() < until {
                // nginx closes a kept-alive connection after 1000 requests (keepalive_requests):
                // the client opens another, as browsers and apps do.
                if sender.ready().await.is_err() {
                    sender = connect(port, &tls).await?;
                }
                let t = Instant::now();
                versions(&mut sender).await?;
                times.push(t.elapsed());
            }
            Ok(times)
        }
    })
    .await
}

async fn wait_ready(port: u16, tls: &TlsConnector) -> Result<()> {
    for _ in 0..300 {
        if let Ok(mut s) = connect(port, tls).await
            && versions(&mut s).await.is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("nothing answers HTTPS on port {port}")
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hearth-tls-bench HEARTH_BINARY OUTPUT.md";
    let hearth_bin = args.next().context(usage)?;
    let output = args.next().context(usage)?;
    let work = tempfile::tempdir()?;
    let (ca, chain, key) = certificates()?;
    std::fs::write(work.path().join("cert.pem"), chain)?;
    std::fs::write(work.path().join("key.pem"), key)?;
    let (plain, hearth_tls, nginx_tls) = (free_port()?, free_port()?, free_port()?);
    let mut hearth = start_hearth(&hearth_bin, work.path(), plain, hearth_tls)?;
    let mut nginx = start_nginx(work.path(), nginx_tls, plain)?;
    let tls = TlsConnector::from(tls_config(&ca)?);
    let result = async {
        wait_ready(hearth_tls, &tls).await?;
        wait_ready(nginx_tls, &tls).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let hearth_pids = vec![hearth.id()];
        let with_nginx = [family(nginx.id()), hearth_pids.clone()].concat();
        let mut rows = Vec::new();
        for (label, port, pids) in [("hearth", hearth_tls, &hearth_pids), ("nginx", nginx_tls, &with_nginx)] {
            eprintln!("new connections through {label}");
            let fresh = new_connections(port, tls.clone(), pids).await?;
            eprintln!("keep-alive requests through {label}");
            let kept = keep_alive(port, tls.clone(), pids).await?;
            rows.push((fresh, kept));
        }
        Ok::<_, anyhow::Error>(rows)
    }
    .await;
    let _ = nginx.kill();
    let _ = hearth.kill();
    let _ = nginx.wait();
    let _ = hearth.wait();
    let rows = result?;
    let (h, n) = (&rows[0], &rows[1]);
    let line = |label: &str, a: f64, b: f64, higher_is_better: bool| {
        let ratio = if higher_is_better { a / b } else { b / a };
        format!("| {label} | {a:.2} | {b:.2} | {ratio:.2}x |\n")
    };
    let today = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())?;
    let mut md = format!(
        "# TLS benchmark results\n\nRun on {today} with `scripts/bench-tls.sh` (Hearth release build, Debian's nginx {}, \
         {} cores). Method: docs/benchmarks.md, \"TLS\".\n\n",
        nginx_version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    md += "| Metric | Hearth's TLS | nginx's TLS in front of Hearth | nginx / Hearth |\n|---|---:|---:|---:|\n";
    md += &line("New connections per second (full handshake + one request)", h.0.per_second, n.0.per_second, true);
    md += &line("New connection + request, p50 (ms)", h.0.p50_ms, n.0.p50_ms, false);
    md += &line("New connection + request, p99 (ms)", h.0.p99_ms, n.0.p99_ms, false);
    md += &line("Server CPU per 1000 new connections (ms)", h.0.cpu_ms_per_1000, n.0.cpu_ms_per_1000, false);
    md += &line("Requests per second over keep-alive", h.1.per_second, n.1.per_second, true);
    md += &line("Keep-alive request, p50 (ms)", h.1.p50_ms, n.1.p50_ms, false);
    md += &line("Keep-alive request, p99 (ms)", h.1.p99_ms, n.1.p99_ms, false);
    md += &line("Server CPU per 1000 keep-alive requests (ms)", h.1.cpu_ms_per_1000, n.1.cpu_ms_per_1000, false);
    md += &format!(
        "\n{} concurrent clients, {} s per scenario, `GET /_matrix/client/versions` over HTTP/1.1, TLS 1.3, ECDSA P-256. \
         The last column is how many times better Hearth's own TLS does. Server CPU counts Hearth, plus nginx's master \
         and workers when nginx is in front.\n",
        clients(),
        duration().as_secs()
    );
    std::fs::write(&output, &md)?;
    println!("{md}");
    Ok(())
}
