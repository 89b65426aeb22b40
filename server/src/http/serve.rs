//! Serving connections, below axum: what `axum::serve` leaves open to slow and idle clients.
//!
//! - A client must send its request's headers within `request_header_timeout` (hyper's header
//!   read timer, which also closes a kept-alive connection that idles that long between
//!   requests). Before hyper sees a byte, the first bytes must arrive within the same time: a
//!   connection that says nothing is closed too.
//! - A request body that pauses longer than `request_body_timeout` ends the request.
//! - A response the client stops reading for a minute ends the connection.
//! - At most `max_connections` connections at once, and `max_connections_per_ip` from one
//!   address (this computer and trusted proxies excepted: everyone behind them shares them).
//!
//! A request being answered is never cut short by these timers, so long-polling `/sync` and
//! sliding sync wait as long as they ask to.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
};
use ipnet::IpNet;
use parking_lot::Mutex;
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// How long a client may leave a response unread before the connection is closed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// What an HTTP/2 client sends first (RFC 9113, 3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_per_ip: usize,
    /// Peers not held to `max_per_ip`.
    pub shared_peers: Vec<IpNet>,
}

/// Serves `app` on `listener` (over TLS with `tls`) until `cancel`, then lets open connections
/// finish their requests (dropping the returned future closes them at once).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    cancel: CancellationToken,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(100);
    let builders = Arc::new(Builders {
        http1: builder.clone().http1_only(),
        http2: builder.clone().http2_only(),
        either: builder,
    });
    let limits = Arc::new(limits);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let full_warned = AtomicU64::new(0);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if !is_connection_error(&e) {
                    // Out of file descriptors, most likely: give connections time to close.
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            warn_at_most_every_minute(&full_warned, limits.max_connections);
            continue;
        };
        let Some(slot) = per_ip.take(peer.ip(), &limits) else {
            tracing::debug!(%peer, "too many connections from one address (max_connections_per_ip); refused");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, builders, limits, watcher) = (app.clone(), builders.clone(), limits.clone(), graceful.watcher());
        let tls = tls.clone();
        connections.spawn(async move {
            let _held = (permit, slot);
            let Some(opening) = first_bytes_arrive(&stream, limits.header_timeout).await else {
                return;
            };
            let mut io = TimeoutStream::new(stream);
            io.set_write_timeout(Some(WRITE_TIMEOUT));
            let body_timeout = limits.body_timeout;
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(|body| Body::new(TimeoutBody::new(body_timeout, body)));
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
            let ended = match tls {
                None => {
                    let builder = builders.for_version(Some(opening));
                    watcher.watch(builder.serve_connection(TokioIo::new(Box::pin(io)), service).into_owned()).await
                }
                Some(acceptor) => {
                    // The handshake within the time allowed for a request's headers.
                    let stream = match tokio::time::timeout(limits.header_timeout, acceptor.accept(Box::pin(io))).await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    if crate::service::tls::is_acme_challenge(&stream) {
                        return;
                    }
                    let builder = builders.for_version(match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Some(Version::Http2),
                        Some(b"http/1.1") => Some(Version::Http1),
                        _ => None,
                    });
                    watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned()).await
                }
            };
            if let Err(e) = ended {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    // Requests in flight finish; then every connection closes.
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}

/// The HTTP version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Http1,
    Http2,
}

/// One connection builder per way of learning the version. hyper's own detection reads the
/// first 24 bytes on their own; its HTTP/1 read buffer, which then holds them, doubles to 16 KiB
/// to read the rest of the request. Told the version up front, it reads the request into 8 KiB:
/// half the memory of every open connection's buffer (1.5 MiB over the benchmark's 200
/// long-polling clients).
struct Builders {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
    /// For a TLS client that named no protocol (ALPN): hyper finds out.
    either: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn for_version(&self, version: Option<Version>) -> &auto::Builder<TokioExecutor> {
        match version {
            Some(Version::Http1) => &self.http1,
            Some(Version::Http2) => &self.http2,
            None => &self.either,
        }
    }
}

/// Waits for the first bytes of a connection, and for all of an HTTP/2 preface once it starts
/// like one (hyper waits for those without a timer), and says which version they are. None
/// when they do not come in time.
async fn first_bytes_arrive(stream: &tokio::net::TcpStream, within: Duration) -> Option<Version> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 24];
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 && buf[..n] != H2_PREFACE[..n] => return Some(Version::Http1),
            Ok(Ok(n)) if n == buf.len() => return Some(Version::Http2),
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
        // Part of an HTTP/2 preface: look again shortly (peek returns at once while data waits).
        if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(50))).await.is_err() {
            return None;
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

fn warn_at_most_every_minute(last: &AtomicU64, max: usize) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if now.saturating_sub(last.swap(now, Ordering::Relaxed)) >= 60 {
        tracing::warn!(max, "connection limit reached (max_connections); refusing new connections");
    }
}

/// Open connections per peer address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// A connection counted against its address, given back when dropped.
enum Slot {
    Counted(Arc<PerIp>, IpAddr),
    Shared,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &ConnectionLimits) -> Option<Slot> {
        let ip = ip.to_canonical();
        if ip.is_loopback() || limits.shared_peers.iter().any(|net| net.contains(&ip)) {
            return Some(Slot::Shared);
        }
        let mut counts = self.0.lock();
        let n = counts.entry(ip).or_default();
        if *n >= limits.max_per_ip {
            return None;
        }
        *n += 1;
        Some(Slot::Counted(self.clone(), ip))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Slot::Counted(per_ip, ip) = self {
            let mut counts = per_ip.0.lock();
            if let Some(n) = counts.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(ip);
                }
            }
        }
    }
}

/// Raises the open-files limit to what the system allows and returns how many connections fit
/// under it, keeping room for the database, media files and logs.
pub fn connections_that_fit(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        const RESERVED: u64 = 256;
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) if limit.saturating_sub(RESERVED) < wanted as u64 => {
                let fit = limit.saturating_sub(RESERVED).max(64) as usize;
                tracing::warn!(
                    wanted,
                    open_files_limit = limit,
                    "max_connections lowered to {fit} to fit the open-files limit"
                );
                fit
            }
            Ok(_) => wanted,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open-files limit; keeping max_connections");
                wanted
            }
        }
    }
    #[cfg(not(unix))]
    {
        wanted
    }
}
