//! Hearth: a personal Matrix homeserver.
//!
//! The public face is small: [`Homeserver::start`] takes a [`Config`] and returns a [`Running`]
//! handle (`local_addrs()`, `stop().await`). Nothing is global, so tests start many servers in
//! one process and the desktop app can restart the server after the wizard changes settings.

pub mod allocator;
mod api;
pub mod cli;
pub mod config;
mod error;
mod http;
pub mod logging;
mod matrix;
mod secrets;
mod service;
mod storage;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError};

/// Updates of the desktop app: the app implements [`updates::AppUpdater`] and puts an
/// [`updates::Updates`] into `Config::updates`; the dashboard checks and installs through it.
pub mod updates {
    pub use crate::service::updates::{AppUpdater, InstallState, Network, Release, Status, Updates};
}

/// Hearth's version, as `hearth --version`, the dashboard, `/_synapse/admin/v1/server_version`
/// and federation's `/version` say it: the package version, and the commit when the build was
/// made by `installers/build.sh` (which sets `HEARTH_BUILD`).
pub const VERSION: &str = env!("HEARTH_VERSION");
pub use error::Error;

use crate::{
    secrets::Secrets,
    service::{
        AppState, Services,
        account_data::AccountData,
        accounts::Accounts,
        e2ee::{DeviceListHead, E2ee},
        ephemeral::Ephemeral,
        notifier::Notifier,
        rooms::Rooms,
        shared_secret::SharedSecretRegistration,
        signing::ServerKeys,
        sync::Sync,
    },
    storage::Db,
};

/// How long `stop()` lets in-flight requests finish before closing connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub(crate) const SHARED_SECRET_NAME: &str = "registration_shared_secret";

/// The whole server.
pub struct Homeserver;

/// A started server. Dropping it without `stop()` leaves the tasks running until the runtime ends.
pub struct Running {
    addrs: Vec<SocketAddr>,
    admin_addr: SocketAddr,
    /// Whether this start made the admin key (the first start).
    admin_key_new: bool,
    state: AppState,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
    /// The config as given (before the database's settings), for a restart.
    base: Config,
    /// The bound sockets, kept open across restarts.
    sockets: Sockets,
}

/// Listening sockets. Each serving round gets duplicates; these stay open, so a restart keeps
/// the same addresses (and ports, also ones the OS picked for port 0) and connections that
/// arrive meanwhile wait in the backlog.
struct Sockets {
    public: Vec<PublicSocket>,
    admin: std::net::TcpListener,
    /// The plain listener answering the ACME CA's HTTP-01 challenges (`[acme]`).
    acme: Vec<std::net::TcpListener>,
    /// Listeners of `type = "metrics"`.
    metrics: Vec<std::net::TcpListener>,
    /// The data folder's lock, held while serving (see `lock_data_dir`).
    _data_lock: std::fs::File,
}

struct PublicSocket {
    socket: std::net::TcpListener,
    /// Which entry of `listeners` it serves.
    listener: usize,
}

/// Binds `addr` for listening; `what` names the config key at fault, `busy` and `other` say what
/// to do.
fn listen(addr: SocketAddr, what: &str, busy: &str, other: &str) -> anyhow::Result<std::net::TcpListener> {
    let bound = std::net::TcpListener::bind(addr).and_then(|l| l.set_nonblocking(true).map(|()| l));
    bound.map_err(|e| {
        let fix = if e.kind() == std::io::ErrorKind::AddrInUse {
            format!("Another program (maybe another Hearth) uses this port: stop it or {busy}")
        } else {
            other.to_owned()
        };
        anyhow::anyhow!("{what}: cannot listen on {addr}: {e}. {fix}")
    })
}

fn listen_public(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    listen(addr, "listeners", "choose another port", "Check bind_addresses and port")
}

fn listen_acme(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    listen(
        addr,
        "acme.port (the CA's HTTP-01 challenges)",
        "set acme.port to another one and forward port 80 there",
        "Ports below 1024 need privileges: set acme.port to a high port and forward port 80 to it, or give Hearth the right to bind it (Linux: setcap cap_net_bind_service)",
    )
}

impl Sockets {
    fn bind(config: &Config) -> anyhow::Result<Sockets> {
        let data_lock = lock_data_dir(config.data_dir()).map_err(|held| {
            anyhow::anyhow!(
                "another Hearth is serving the data folder {} ({held}): stop it first, or give this one another data_dir",
                config.data_dir().display()
            )
        })?;
        let mut public = Vec::new();
        for (listener, addr) in config.bind_addrs() {
            public.push(PublicSocket { socket: listen_public(addr)?, listener });
        }
        let admin_bind = SocketAddr::new(config.admin.bind_address, config.admin.port);
        let admin = listen(
            admin_bind,
            "admin.port (the admin page)",
            "set [admin] port to another one",
            "Check [admin] bind_address and port",
        )?;
        let mut acme = Vec::new();
        // The plain listener answers HTTP-01 challenges; TLS-ALPN-01 needs none.
        if config.acme.enabled && config.acme.challenge == config::AcmeChallenge::Http01 {
            for ip in &config.acme.bind_addresses {
                acme.push(listen_acme(SocketAddr::new(*ip, config.acme.port))?);
            }
        }
        let mut metrics = Vec::new();
        for l in &config.metrics_listeners {
            for ip in &l.bind_addresses {
                let addr = SocketAddr::new(*ip, l.port);
                metrics.push(listen(
                    addr,
                    "listeners (type = \"metrics\")",
                    "choose another port",
                    "Check its bind_addresses and port",
                )?);
            }
        }
        Ok(Sockets { public, admin, acme, metrics, _data_lock: data_lock })
    }

    /// Rebinds listeners whose addresses the database's settings change (the wizard's "home
    /// network" choice widens loopback to all addresses), keeping each listener's port, also
    /// one the OS picked. Other listeners keep their sockets untouched.
    fn rebind(&mut self, config: &Config) -> anyhow::Result<()> {
        let wanted = config.bind_addrs();
        // A listener the settings no longer have (built-in HTTPS turned off) closes.
        self.public.retain(|p| p.listener < config.listeners.len());
        'listeners: for index in 0..config.listeners.len() {
            let bound: Vec<SocketAddr> = self
                .public
                .iter()
                .filter(|p| p.listener == index)
                .map(|p| p.socket.local_addr())
                .collect::<Result<_, _>>()?;
            // A port the OS picked (0 in the config) is kept; a port the settings changed, or a
            // listener they add (nothing bound yet), takes the configured one.
            let port = match (config.listeners[index].port, bound.first()) {
                (0, Some(b)) => b.port(),
                (p, _) => p,
            };
            let want: Vec<SocketAddr> =
                wanted.iter().filter(|w| w.0 == index).map(|w| SocketAddr::new(w.1.ip(), port)).collect();
            if want == bound {
                continue;
            }
            // The old sockets close first: on Linux a wildcard address cannot be bound next to a
            // listening loopback socket on the same port.
            self.public.retain(|p| p.listener != index);
            let mut fresh = Vec::new();
            for addr in &want {
                match listen_public(*addr) {
                    Ok(socket) => fresh.push(PublicSocket { socket, listener: index }),
                    Err(e) => {
                        drop(fresh);
                        tracing::warn!(error = %e, "cannot listen where the settings ask; staying on the previous addresses, if any");
                        for addr in &bound {
                            let socket = listen_public(*addr)?;
                            self.public.push(PublicSocket { socket, listener: index });
                        }
                        continue 'listeners;
                    }
                }
            }
            tracing::info!(from = ?bound, to = ?want, "listening on new addresses");
            self.public.extend(fresh);
        }
        self.public.sort_by_key(|p| p.listener);
        self.rebind_acme(config);
        Ok(())
    }

    /// The HTTP-01 listener as the settings want it: opened when they turn ACME on, moved when
    /// they change its port, closed when they turn it off.
    fn rebind_acme(&mut self, config: &Config) {
        let want: Vec<SocketAddr> = if config.acme.enabled && config.acme.challenge == config::AcmeChallenge::Http01 {
            config.acme.bind_addresses.iter().map(|ip| SocketAddr::new(*ip, config.acme.port)).collect()
        } else {
            Vec::new()
        };
        let bound: Vec<SocketAddr> = self.acme.iter().filter_map(|s| s.local_addr().ok()).collect();
        if bound == want {
            return;
        }
        self.acme.clear();
        for addr in want {
            match listen_acme(addr) {
                Ok(socket) => self.acme.push(socket),
                Err(e) => tracing::warn!(error = %e, "cannot open the listener for the CA's challenges"),
            }
        }
    }
}

impl Homeserver {
    /// Validates the config, binds every listener, opens secrets and storage and starts serving.
    /// Every error names the key or path at fault and what to do.
    pub async fn start(config: Config) -> anyhow::Result<Running> {
        let config = config.validate()?;
        ensure_writable(config.data_dir())?;
        // Bind first: a busy port is the most common start failure and needs no cleanup.
        let sockets = Sockets::bind(&config)?;
        start_on(config, sockets, None).await
    }
}

/// Starts serving on sockets already bound: at start, and again on a restart (`restored`: the
/// result of a restore made while stopped, kept for the dashboard).
async fn start_on(base: Config, mut sockets: Sockets, restored: Option<serde_json::Value>) -> anyhow::Result<Running> {
    let data_dir = base.data_dir().to_path_buf();
    let secrets = {
        let (choice, dir) = (base.secret_store, data_dir.clone());
        tokio::task::spawn_blocking(move || Secrets::open(choice, &dir)).await??
    };
    let db = Db::open(&data_dir.join("hearth.db")).await?;
    if let Some(result) = restored
        && let Err(e) = storage::settings::set(&db.write, service::restore::LAST_KEY, &result).await
    {
        tracing::warn!(error = %e, "cannot record the restore's result");
    }

    // What the dashboard stored goes over the file's values.
    let mut config = base.clone();
    let applied = match storage::settings::all(&db.read).await {
        Ok(settings) => config.apply_settings(&settings).map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    if let Err(e) = applied {
        db.close().await;
        return Err(e);
    }
    let config = Arc::new(config);

    // Built-in HTTPS: the certificate is checked before anything listens.
    let certificates = match config.tls_paths() {
        Some((cert, key)) if config.listeners.iter().any(|l| l.tls) => {
            let loaded = if config.acme.enabled {
                service::tls::Certificates::load_or_placeholder(&cert, &key, &config.acme_domains())
            } else {
                service::tls::Certificates::load(&cert, &key)
            };
            match loaded {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    db.close().await;
                    return Err(anyhow::anyhow!("tls_certificate_path / tls_private_key_path: {e}"));
                }
            }
        }
        _ => None,
    };
    let acme = match &certificates {
        Some(c) if config.acme.enabled => {
            Some(Arc::new(service::acme::Acme::new(config.clone(), secrets.clone(), c.clone())?))
        }
        _ => None,
    };
    let mut listeners = Vec::new();
    sockets.rebind(&config)?;
    for p in &sockets.public {
        // From the settings too: behind a proxy or tunnel, loopback listeners trust its headers.
        let tls = certificates.as_ref().filter(|_| config.listeners[p.listener].tls).map(|c| c.acceptor());
        listeners.push((
            TcpListener::from_std(p.socket.try_clone()?)?,
            config.forwarded_for(p.listener).map(Arc::new),
            tls,
        ));
    }
    let admin_listener = TcpListener::from_std(sockets.admin.try_clone()?)?;

    // Without a configured public_baseurl, clients are told the address actually bound
    // (which differs from the config when it asks for port 0).
    let config = if config.public_baseurl.is_none() {
        let mut c = (*config).clone();
        let addr = listeners[0].0.local_addr()?;
        let host = if addr.ip().is_unspecified() { "localhost".to_owned() } else { addr.ip().to_string() };
        let host = if addr.is_ipv6() && !addr.ip().is_unspecified() { format!("[{host}]") } else { host };
        let scheme = if listeners[0].2.is_some() { "https" } else { "http" };
        c.public_baseurl = Some(format!("{scheme}://{host}:{}/", addr.port()));
        Arc::new(c)
    } else {
        config
    };

    let (keys, shared_secret, turn_secret) = {
        let (secrets, config) = (secrets.clone(), config.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let keys = ServerKeys::load_or_create(&secrets, config.server_name.clone())
                .context("loading the server signing key")?;
            // TURN set up in the dashboard: its secret is kept with the others.
            let turn_secret = if !config.turn_uris.is_empty()
                && config.turn_shared_secret.is_none()
                && config.turn_username.is_none()
            {
                secrets.get(service::turn::SECRET_NAME)?.map(String::from_utf8).transpose()?
            } else {
                None
            };
            let shared = match &config.registration_shared_secret {
                Some(s) => s.clone(),
                None => String::from_utf8(
                    secrets
                        .get_or_create(SHARED_SECRET_NAME, || service::tokens::random_alphanumeric(48).into_bytes())?,
                )?,
            };
            Ok((keys, shared, turn_secret))
        })
        .await??
    };
    let config = match turn_secret {
        Some(secret) => {
            let mut c = (*config).clone();
            c.turn_shared_secret = Some(secret);
            Arc::new(c)
        }
        None => config,
    };
    tracing::info!(key_id = %keys.key_id, "server signing key loaded");
    let admin_key = service::admin_key::AdminKey::new(db.clone(), secrets.clone());
    let (_, admin_key_new) = admin_key.load_or_create().await.map_err(|e| anyhow::anyhow!("the admin key: {e}"))?;

    let notifier = Arc::new(Notifier::default());
    let written = notifier.clone();
    let device_lists = DeviceListHead::load(&db, notifier.clone()).await?;
    let accounts = Accounts::new(db.clone(), config.clone(), device_lists.clone());
    accounts.reset_pending_registrations().await?;
    let (push_tx, push_rx) = service::pusher::channel();
    // Checked by `validate`.
    let outbound = service::outbound::IpPolicy::from_config(&config).map_err(anyhow::Error::msg)?;
    let discovery = service::server_discovery::Discovery::new(&config)?;
    let federation_client = Arc::new(service::federation::FederationClient::new(
        keys.clone(),
        discovery.clone(),
        outbound.clone(),
        config.federation_domain_whitelist.clone(),
    ));
    let outbox =
        Arc::new(service::federation::outbox::EduOutbox::new(config.server_name.clone(), config.presence.enabled));
    let e2ee = Arc::new(
        E2ee::new(
            db.clone(),
            config.clone(),
            notifier.clone(),
            device_lists.clone(),
            federation_client.clone(),
            outbox.clone(),
        )
        .await?,
    );
    let account_data = Arc::new(AccountData::new(db.clone(), notifier.clone()).await?);
    let rooms = Arc::new(
        Rooms::new(db.clone(), config.clone(), keys.clone(), notifier.clone(), push_tx, account_data.clone()).await?,
    );
    let state_changes = rooms.watch_state();
    let delayed = Arc::new(service::delayed_events::DelayedEvents::new(db.clone(), &config, rooms.clone()));
    let ephemeral = Arc::new(Ephemeral::new(db.clone(), notifier.clone(), outbox.clone()).await?);
    let sync =
        Arc::new(Sync::new(rooms.clone(), account_data.clone(), ephemeral.clone(), e2ee.clone(), notifier.clone()));
    let sliding_sync = service::sliding_sync::SlidingSync::new(
        rooms.clone(),
        account_data.clone(),
        ephemeral.clone(),
        e2ee.clone(),
        notifier,
        sync.clone(),
    );
    let federation = {
        let client = federation_client;
        let keys = service::federation::KeyStore::new(
            db.clone(),
            keys.clone(),
            client.clone(),
            config.trusted_key_servers.clone(),
        );
        let sender = Arc::new(service::federation::sender::Sender::new(
            db.clone(),
            client.clone(),
            rooms.clone(),
            e2ee.clone(),
            outbox,
            device_lists,
        ));
        Arc::new(service::federation::Federation::new(
            client,
            keys,
            sender,
            rooms.clone(),
            ephemeral.clone(),
            e2ee.clone(),
            config.rc_federation,
        ))
    };
    let metrics = if config.enable_metrics {
        Some(Arc::new(service::metrics::Metrics::new(&db.write_wait, rooms.metrics())?))
    } else {
        None
    };
    let services = Services {
        rooms,
        delayed: delayed.clone(),
        e2ee,
        key_backup: service::key_backup::KeyBackup::new(db.clone()),
        media: service::media::Media::new(db.clone(), config.clone(), &outbound, federation.client.clone())?,
        pushers: service::pusher::Pushers::new(db.clone(), outbound.clone()),
        invites: service::invites::Invites::new(db.clone(), &config.public_baseurl()),
        discovery,
        federation,
        admin_key,
        local_addrs: listeners.iter().map(|(l, _, _)| l.local_addr()).collect::<Result<_, _>>()?,
        restart: tokio::sync::Notify::new(),
        started: std::time::Instant::now(),
        started_ms: storage::now_ms(),
        account_data,
        ephemeral,
        sync,
        sliding_sync,
        limits: service::ratelimit::Limits::new(&config, db.clone()).await?,
        config: config.clone(),
        db: db.clone(),
        secrets: secrets.clone(),
        keys,
        accounts,
        shared_secret: SharedSecretRegistration::new(shared_secret),
        tls: certificates.clone(),
        acme: acme.clone(),
        updates: config.updates.clone(),
        update_net: service::updates::Network::new(
            outbound.clone(),
            config.update_manifest_url.as_deref().and_then(|u| url::Url::parse(u).ok()),
        ),
        metrics,
        backups: service::backup_schedule::Backups::new(db.clone(), config.clone(), secrets.clone()),
        restores: service::restore::Restores::new(db.clone()),
        notice_txns: service::server_notices::NoticeTxns::default(),
    };
    let state = AppState(Arc::new(services));
    // Room deletions a stop interrupted go on.
    state.0.resume_room_deletions().await?;

    let cancel = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let connection_limits = http::serve::ConnectionLimits {
        header_timeout: config.request_header_timeout.0,
        body_timeout: config.request_body_timeout.0,
        max_connections: http::serve::connections_that_fit(config.max_connections),
        max_per_ip: config.max_connections_per_ip,
        shared_peers: Vec::new(),
    };
    let mut addrs = Vec::new();
    if let Some(certificates) = &certificates {
        let now = certificates.current();
        tracing::info!(names = ?now.names, placeholder = now.placeholder, "serving HTTPS");
        tasks.spawn(certificates.clone().watch(config.tls_reload_interval.0, cancel.clone()));
        if let Some(acme) = &acme {
            for socket in &sockets.acme {
                let listener = TcpListener::from_std(socket.try_clone()?)?;
                let app = api::acme::router(acme.clone());
                tasks.spawn(http::serve::serve(listener, app, connection_limits.clone(), None, cancel.clone()));
            }
            tasks.spawn(acme.clone().run(cancel.clone()));
        }
    }
    for (listener, forwarded, tls) in listeners {
        addrs.push(listener.local_addr()?);
        let mut limits = connection_limits.clone();
        // Everyone behind a trusted proxy shares its address.
        limits.shared_peers = forwarded.as_ref().map(|f| f.trusted.clone()).unwrap_or_default();
        let app = api::router(state.clone())
            .layer(axum::middleware::from_fn(move |req, next| http::client_ip_layer(forwarded.clone(), req, next)));
        tasks.spawn(http::serve::serve(listener, app, limits, tls, cancel.clone()));
    }

    for socket in &sockets.metrics {
        let listener = TcpListener::from_std(socket.try_clone()?)?;
        let app = api::metrics::router(state.clone());
        tasks.spawn(http::serve::serve(listener, app, connection_limits.clone(), None, cancel.clone()));
    }

    let admin_addr = admin_listener.local_addr()?;
    {
        let app = api::admin::router(state.clone(), admin_addr.port());
        tasks.spawn(http::serve::serve(admin_listener, app, connection_limits, None, cancel.clone()));
    }

    let push_client = Arc::new(service::pusher::client(outbound));
    tasks.spawn(delayed.run(state_changes, cancel.clone()));
    if let Some(updates) = &state.updates {
        tasks.spawn(updates.clone().run(db.clone(), state.update_net.clone(), config.update_checks, cancel.clone()));
    }
    tasks.spawn(state.federation.sender.clone().run(written.clone(), cancel.clone()));
    tasks.spawn(state.backups.clone().run(cancel.clone()));
    tasks.spawn(service::pusher::run(db.clone(), push_client, push_rx, cancel.clone()));

    // Typing notifications end when their timeout passes, people who stopped syncing go
    // offline, and /sync must hear of both.
    tasks.spawn(state.ephemeral.clone().run_expiry(cancel.clone()));

    // The WAL is folded into the database file here, off the commit path (see
    // `Db::checkpoint`): shortly after writes (every stream change wakes the notifier),
    // at most every 100 ms under load, never while idle.
    {
        let (db, cancel) = (db.clone(), cancel.clone());
        let mut changed = written.subscribe();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    r = changed.changed() => if r.is_err() { break },
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
                changed.borrow_and_update();
                if let Err(e) = db.checkpoint().await {
                    tracing::warn!(error = %e, "checkpointing the database");
                }
            }
        });
    }

    // Housekeeping: give back invite-code reservations of abandoned registrations, drop media
    // IDs reserved for uploads that never came, forget rate limit buckets that are full again,
    // stop keeping the device lists of other servers' users nobody here shares a room with,
    // purge rooms every local member forgot, prune notifications read long ago.
    {
        let (state, cancel) = (state.clone(), cancel.clone());
        let mut changed = written.subscribe();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            // The sizes for the Status page's growth: at start, then hourly.
            let mut sizes_recorded: Option<std::time::Instant> = None;
            let mut forgotten_checked: Option<std::time::Instant> = None;
            let mut swept: Option<std::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => {
                        // Idle: hourly only (see `sweep_due`).
                        let written = changed.has_changed().unwrap_or(true);
                        if !sweep_due(written, swept, std::time::Instant::now()) {
                            continue;
                        }
                        changed.borrow_and_update();
                        swept = Some(std::time::Instant::now());
                        if let Err(e) = state.accounts.sweep_expired_uia().await {
                            tracing::warn!(error = %e, "sweeping expired authentication sessions");
                        }
                        if let Err(e) = state.sliding_sync.expire().await {
                            tracing::warn!(error = %e, "expiring unused sliding sync connections");
                        }
                        if let Err(e) = state.media.sweep().await {
                            tracing::warn!(error = %e, "sweeping expired media reservations");
                        }
                        if let Err(e) = state.e2ee.forget_untracked_device_lists().await {
                            tracing::warn!(error = %e, "dropping device lists of users who left");
                        }
                        state.limits.sweep();
                        // Hourly: a room waits a week (by default) after it was forgotten.
                        if forgotten_checked.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                            forgotten_checked = Some(std::time::Instant::now());
                            if let Err(e) = state.rooms.purge_forgotten().await {
                                tracing::warn!(error = %e, "purging rooms every local member forgot");
                            }
                            match state.rooms.prune_read_notifications().await {
                                Ok(0) => {}
                                Ok(n) => tracing::info!(n, "pruned notifications read a while ago"),
                                Err(e) => tracing::warn!(error = %e, "pruning read notifications"),
                            }
                        }
                        // After the sweeps, so that recording the sizes does not hold them up at start.
                        if sizes_recorded.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
                            let recorded = match state.media.stored_bytes().await {
                                Ok(media) => service::health::record_sizes(&state.db, state.config.data_dir(), media).await,
                                Err(e) => Err(e),
                            };
                            match recorded {
                                Ok(()) => sizes_recorded = Some(std::time::Instant::now()),
                                Err(e) => tracing::warn!(error = %e, "recording the database and media sizes"),
                            }
                        }
                    }
                }
            }
        });
    }

    tracing::info!(addrs = ?addrs, server_name = %config.server_name, "Hearth is listening");
    Ok(Running { addrs, admin_addr, admin_key_new, state, cancel, tasks, base, sockets })
}

/// Whether the minutely housekeeping tick sweeps: always when something was `written` since
/// the last sweep (or at the first tick), else hourly. Nothing written means what is left to
/// sweep waited a minute already and can wait longer: an idle server does not wake the
/// database every minute (a laptop's CPU sleeps between wake-ups).
fn sweep_due(written: bool, last_sweep: Option<std::time::Instant>, now: std::time::Instant) -> bool {
    const IDLE_SWEEP: Duration = Duration::from_secs(3600);
    written || last_sweep.is_none_or(|t| now.saturating_duration_since(t) >= IDLE_SWEEP)
}

impl Running {
    /// The first bound address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Where the `type = "metrics"` listeners listen (real ports, also for port 0).
    pub fn metrics_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.metrics.iter().filter_map(|s| s.local_addr().ok()).collect()
    }

    /// Where the admin listener listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The admin page, with the admin key in the fragment (browsers never send a fragment to
    /// a server, so it stays out of logs): the one-click link. Read from the secret store, so
    /// it is the current key even after a rotation.
    pub fn admin_url(&self) -> String {
        admin_link(self.admin_addr, &self.admin_token())
    }

    /// The admin page without the key.
    pub fn admin_page(&self) -> String {
        admin_link(self.admin_addr, "").trim_end_matches("#token=").to_owned()
    }

    /// The admin API's bearer token (the current admin key).
    pub fn admin_token(&self) -> String {
        self.state.admin_key.current().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the admin key");
            String::new()
        })
    }

    /// Whether this start made the admin key: the first start, when the binary prints the link.
    pub fn admin_key_is_new(&self) -> bool {
        self.admin_key_new
    }

    /// The URL clients should use (`public_baseurl`).
    pub fn public_baseurl(&self) -> String {
        self.state.config.public_baseurl()
    }

    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Where the secrets are kept, for the log and the dashboard.
    pub fn secret_store(&self) -> String {
        self.state.secrets.describe()
    }

    /// The shared secret for `register_new_matrix_user -k`.
    pub fn registration_shared_secret(&self) -> &str {
        self.state.shared_secret.secret()
    }

    /// The server's signing key ID and public key.
    pub fn signing_key(&self) -> (String, String) {
        (self.state.keys.key_id.clone(), self.state.keys.public_key.clone())
    }

    /// Resolves when a listener stops on its own (an error), so the binary can exit.
    pub async fn stopped_unexpectedly(&mut self) {
        let _ = self.tasks.join_next().await;
    }

    /// Resolves when a change made in the dashboard needs a restart to apply: the owner (the
    /// binary, the desktop app) then calls `restart`.
    pub fn restart_requested(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let state = self.state.clone();
        async move { state.restart.notified().await }
    }

    /// Stops and starts again with the same config and the same sockets, reading the
    /// database's settings afresh. Addresses and the admin link stay the same.
    pub async fn restart(self) -> anyhow::Result<Running> {
        tracing::info!("restarting to apply new settings");
        let restore = self.state.restores.take();
        let (base, sockets) = self.shutdown().await;
        let restored = match restore {
            Some(checked) => Some(service::restore::restore_into_stopped(&base, checked).await),
            None => None,
        };
        start_on(base, sockets, restored).await
    }

    /// Graceful stop: stop accepting, let in-flight requests finish (up to a grace period),
    /// join background tasks, then close the database cleanly.
    pub async fn stop(self) {
        self.shutdown().await;
    }

    async fn shutdown(mut self) -> (Config, Sockets) {
        tracing::info!("stopping");
        self.cancel.cancel();
        let joined =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while self.tasks.join_next().await.is_some() {} }).await;
        if joined.is_err() {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing them");
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        self.state.db.close().await;
        tracing::info!("stopped");
        (self.base, self.sockets)
    }
}

/// Locks `hearth.lock` in the data folder: one server per data folder (two would share the
/// database and each other's caches would lie), and `hearth compact` only on a stopped server.
/// The OS drops the lock when the process ends, kill -9 included. A file system without locks
/// is let through.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("hearth.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!("{} is locked", path.display()),
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot lock the data folder; make sure one Hearth serves it");
            Ok(file)
        }
    }
}

/// Rewrites the database without its free pages (SQLite's VACUUM), with the server stopped;
/// answers its size before and after, in bytes.
pub async fn compact_offline(config: Config) -> anyhow::Result<(u64, u64)> {
    let dir = config.data_dir().to_path_buf();
    let db_path = dir.join("hearth.db");
    if !db_path.exists() {
        anyhow::bail!("there is no database at {} (check data_dir)", db_path.display());
    }
    let _lock = lock_data_dir(&dir).map_err(|_| {
        anyhow::anyhow!(
            "Hearth is running on {}: stop it first (compacting needs the database to itself)",
            dir.display()
        )
    })?;
    let before = service::health::database_bytes(&dir);
    let db = Db::open(&db_path).await?;
    let vacuumed = db.vacuum().await;
    db.close().await;
    vacuumed?;
    Ok((before, service::health::database_bytes(&dir)))
}

/// `http://127.0.0.1:8009/_hearth/#token=KEY`.
fn admin_link(addr: SocketAddr, key: &str) -> String {
    let host = match addr.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}/_hearth/#token={key}", addr.port())
}

/// Creates the data folder and proves it is writable, so the failure names the folder instead of
/// surfacing later as a database error.
fn ensure_writable(dir: &std::path::Path) -> anyhow::Result<()> {
    let hint = "check its permissions or set data_dir (or HEARTH_DATA_DIR) to a writable folder";
    std::fs::create_dir_all(dir).with_context(|| format!("data_dir: cannot create {}; {hint}", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"ok").with_context(|| format!("data_dir: {} is not writable; {hint}", dir.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Creates an account directly in the database, for `hearth register-user` (works whether or
/// not a server is running on the same data folder).
pub async fn register_user_offline(
    config: Config,
    localpart: &str,
    password: String,
    admin: bool,
) -> anyhow::Result<String> {
    let config = Arc::new(config.validate()?);
    ensure_writable(config.data_dir())?;
    let db = Db::open(&config.data_dir().join("hearth.db")).await?;
    let device_lists = DeviceListHead::load(&db, Arc::new(Notifier::default())).await?;
    let accounts = Accounts::new(db.clone(), config.clone(), device_lists);
    let result = async {
        let (_, user_id) = accounts.validate_new_localpart(localpart).map_err(|e| anyhow::anyhow!(e.message()))?;
        accounts
            .create_user(&user_id, Some(password), admin, false, None, None)
            .await
            .map_err(|e| anyhow::anyhow!(e.message()))?;
        Ok(user_id.to_string())
    }
    .await;
    db.close().await;
    result
}

/// Reads the registration shared secret (configured or generated) without starting a server.
pub async fn registration_shared_secret(config: Config) -> anyhow::Result<String> {
    let config = config.validate()?;
    if let Some(s) = config.registration_shared_secret {
        return Ok(s);
    }
    let dir = config.data_dir().to_path_buf();
    // The keychain entry is named after the canonical data folder, which must exist to match
    // the name the server uses.
    ensure_writable(&dir)?;
    let choice = config.secret_store;
    tokio::task::spawn_blocking(move || {
        let secrets = Secrets::open(choice, &dir)?;
        Ok(String::from_utf8(
            secrets.get_or_create(SHARED_SECRET_NAME, || service::tokens::random_alphanumeric(48).into_bytes())?,
        )?)
    })
    .await?
}

/// The admin key's store, opened without starting a server (for the commands below).
async fn admin_key_offline(config: &Config) -> anyhow::Result<(service::admin_key::AdminKey, Db)> {
    let dir = config.data_dir().to_path_buf();
    ensure_writable(&dir)?;
    let choice = config.secret_store;
    let secrets = tokio::task::spawn_blocking(move || Secrets::open(choice, &dir)).await??;
    let db = Db::open(&config.data_dir().join("hearth.db")).await?;
    Ok((service::admin_key::AdminKey::new(db.clone(), secrets), db))
}

/// The dashboard link with the current admin key (`hearth admin-url`), made on first use.
/// With `[admin] port = 0` the port is only known to the running server.
pub async fn admin_url_offline(config: Config) -> anyhow::Result<String> {
    let config = config.validate()?;
    let (keys, db) = admin_key_offline(&config).await?;
    let key = keys.load_or_create().await.map(|(k, _)| k).map_err(|e| anyhow::anyhow!(e.message()));
    db.close().await;
    Ok(admin_link(SocketAddr::new(config.admin.bind_address, config.admin.port), &key?))
}

/// Replaces the admin key (`hearth rotate-admin-key`); a running server refuses the old one at
/// once. Returns the new dashboard link.
pub async fn rotate_admin_key_offline(config: Config) -> anyhow::Result<String> {
    let config = config.validate()?;
    let (keys, db) = admin_key_offline(&config).await?;
    let key = keys.rotate().await.map_err(|e| anyhow::anyhow!(e.message()));
    db.close().await;
    Ok(admin_link(SocketAddr::new(config.admin.bind_address, config.admin.port), &key?))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::sweep_due;

    /// An idle server's housekeeping wakes the database hourly, not every minute; a server
    /// that was written to sweeps at the next minute's tick.
    #[test]
    fn housekeeping_sweeps_after_writes_and_hourly_when_idle() {
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        assert!(sweep_due(false, None, start), "the first tick sweeps");
        assert!(sweep_due(true, Some(start), start + minute), "a write since the last sweep");
        for minutes in [1, 30, 59] {
            assert!(!sweep_due(false, Some(start), start + minute * minutes), "idle for {minutes} minutes");
        }
        assert!(sweep_due(false, Some(start), start + minute * 60), "idle for an hour");
        // A clock that seems to go back (a sweep recorded "later" than now) skips, never panics.
        assert!(!sweep_due(false, Some(start + minute), start));
    }
}
