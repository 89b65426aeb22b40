//! Configuration: every key with its doc comment and default, layered loading and validation.
//!
//! Layers, lowest first: defaults < `homeserver.toml` < `HEARTH_*` environment variables <
//! command-line flags. Key names follow Synapse's homeserver.yaml where the setting is the same,
//! so Synapse admins feel at home. A config that cannot work is refused with one message naming
//! the key and what to do; unknown keys are warned about.

mod units;

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use ruma::{OwnedServerName, ServerName};
use serde::{Deserialize, Serialize};

pub use units::{ByteSize, HumanDuration};

/// The commented file written on first run. It parses to exactly the defaults (a test checks
/// this); `data_dir` stays unset there, meaning the OS data folder.
pub const DEFAULT_CONFIG_TEMPLATE: &str = include_str!("homeserver.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The name that appears in every user ID (@alice:server_name). Permanent once users exist.
    pub server_name: OwnedServerName,
    /// The URL clients use to reach this server, e.g. `https://matrix.example.org/`. Defaults to
    /// `http://<first listener>/`.
    pub public_baseurl: Option<String>,
    /// Where to listen for HTTP.
    pub listeners: Vec<Listener>,
    /// Where the database, media and (without a keychain) secrets live. Defaults to the OS data
    /// folder.
    pub data_dir: Option<PathBuf>,
    /// Allow people to create accounts through the client API.
    pub enable_registration: bool,
    /// Allow registration with no check at all (m.login.dummy). Dangerous on a public server.
    pub enable_registration_without_verification: bool,
    /// Require a registration token (an invite code) to register.
    pub registration_requires_token: bool,
    /// Secret for Synapse-style shared-secret registration (`register_new_matrix_user`).
    /// Generated and kept in the secret store when unset.
    pub registration_shared_secret: Option<String>,
    /// Allow guest accounts (`/register?kind=guest`).
    pub allow_guest_access: bool,
    /// Largest media upload accepted, e.g. "50M".
    pub max_upload_size: ByteSize,
    /// Largest JSON request body accepted on the client and federation APIs, e.g. "2M".
    pub max_request_size: ByteSize,
    /// Total media one user may upload, e.g. "5G"; unset means no limit.
    pub media_storage_quota_per_user: Option<ByteSize>,
    /// Serve media only on the authenticated endpoints (Matrix 1.11). Media uploaded while this
    /// was false stays downloadable from the legacy `/_matrix/media/v3/download` too (Synapse's
    /// "freeze"): turning it on is the cut-over date.
    pub enable_authenticated_media: bool,
    /// Asynchronous uploads (`POST /_matrix/media/v1/create`) one user may have waiting at once.
    pub max_pending_media_uploads: u32,
    /// How long a media ID from `/create` waits for its content before it expires.
    pub unused_expiration_time: HumanDuration,
    /// Images with more pixels than this are not thumbnailed (decompression bombs), e.g. "32M".
    pub max_image_pixels: ByteSize,
    /// Fetch link previews for clients (`/media/v3/preview_url`). Off by default: the server
    /// then fetches pages that users post.
    pub url_preview_enabled: bool,
    /// IP ranges (CIDR) that URL previews may contact although `ip_range_blacklist` refuses them
    /// (loopback, private, link-local...), e.g. ["192.168.1.10/32"].
    pub url_preview_ip_range_whitelist: Vec<String>,
    /// Address ranges (CIDR) that outbound requests may not reach: push gateways, URL previews
    /// and, later, other Matrix servers. Unset means Synapse's list and the other special
    /// ranges (loopback, private, link-local, CGNAT, multicast, documentation, reserved and the
    /// IPv6 transition ranges); IPv6 forms that embed an IPv4 address are judged by that address.
    pub ip_range_blacklist: Option<Vec<String>>,
    /// Ranges opened again although `ip_range_blacklist` lists them, e.g. ["192.168.1.20"] for a
    /// push gateway on the home network.
    pub ip_range_whitelist: Vec<String>,
    /// Largest page or image a URL preview downloads.
    pub max_spider_size: ByteSize,
    /// How to reach the server's admin (a mailto: or https: URI), given in resource-limit errors.
    pub admin_contact: Option<String>,
    /// DNS servers for finding other Matrix servers (SRV records), as "ip" or "ip:port".
    /// Empty: the system's resolver configuration.
    pub dns_servers: Vec<String>,
    /// Extra CA certificates (PEM files) trusted for other servers' HTTPS, as Synapse's key of
    /// the same name; the setup's reachability check trusts them too.
    pub federation_custom_ca_list: Vec<PathBuf>,
    /// The certificate (then the chain's intermediates) for listeners with `tls = true`, PEM, as
    /// Synapse's key of the same name.
    pub tls_certificate_path: Option<PathBuf>,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub tls_private_key_path: Option<PathBuf>,
    /// How often the two files are looked at: changed files are served to new connections
    /// without a restart (certbot and the like replace them in place).
    pub tls_reload_interval: HumanDuration,
    /// Connections open at once, per listener. Lowered at start when the system's open-files
    /// limit is smaller.
    pub max_connections: usize,
    /// Connections open at once from one address (this computer and `trusted_proxies` not
    /// counted: everyone behind them shares their address).
    pub max_connections_per_ip: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may idle between requests.
    pub request_header_timeout: HumanDuration,
    /// The longest pause while a client sends a request body (an upload).
    pub request_body_timeout: HumanDuration,
    /// The admin listener: the setup page, dashboard and Hearth's admin API. Loopback only.
    pub admin: AdminListener,
    /// Certificates from an ACME CA (Let's Encrypt) for the TLS listeners, as Synapse's former
    /// `acme` section.
    pub acme: AcmeConfig,
    /// What a new password must be like (Synapse's `password_config`).
    pub password_config: PasswordConfig,
    /// Who the user directory finds (Synapse's `user_directory`).
    pub user_directory: UserDirectory,
    /// A page with help for this server's users, listed in `/.well-known/matrix/support` beside
    /// the server's admins.
    pub support_page: Option<String>,
    /// TURN servers handed to clients for calls behind NAT (`GET /voip/turnServer`), e.g.
    /// `["turn:turn.example.org:3478?transport=udp"]`. Synapse's keys.
    pub turn_uris: Vec<String>,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`): each user gets a
    /// username and password of their own that expire (the TURN REST API).
    pub turn_shared_secret: Option<String>,
    /// Fixed TURN credentials, when the TURN server has no shared secret.
    pub turn_username: Option<String>,
    pub turn_password: Option<String>,
    /// How long credentials made from `turn_shared_secret` last.
    pub turn_user_lifetime: HumanDuration,
    /// Whether guests get TURN credentials too.
    pub turn_allow_guests: bool,
    /// Login rate limits.
    pub rc_login: RcLogin,
    /// Registration rate limit (per client address).
    pub rc_registration: RateLimit,
    /// Invite code lookups per client address: the registration-token validity endpoint and the
    /// invite page.
    pub rc_registration_token_validity: RateLimit,
    /// Events a user sends (messages, state, membership, redactions), per user.
    pub rc_message: RateLimit,
    /// Redactions of other people's events by room moderators; unset means `rc_message` counts
    /// them as any other event.
    pub rc_admin_redaction: Option<RateLimit>,
    /// Rooms a user creates or upgrades, per user.
    pub rc_room_creation: RateLimit,
    /// Joins by local users (`local`); `remote` is for joins over federation.
    pub rc_joins: RcJoins,
    /// Joins into one room, from anyone.
    pub rc_joins_per_room: RateLimit,
    /// Invites into one room, to one user, and from one user.
    pub rc_invites: RcInvites,
    /// Media IDs reserved for later upload (`POST /media/v1/create`), per user.
    pub rc_media_create: RateLimit,
    /// Presence updates, per user.
    pub rc_presence: RcPresence,
    /// Synapse's `presence` section: whether local users' presence is shared with other
    /// servers (`enabled`; it is always kept and shown to local users).
    pub presence: Presence,
    /// Synapse's `media_retention`: how long media of other servers, fetched for local users,
    /// is kept after it was last asked for (`remote_media_lifetime`), and media uploaded here
    /// (`local_media_lifetime`); unset keeps it.
    pub media_retention: MediaRetention,
    /// Reports of events, rooms and users, per user.
    pub rc_reports: RateLimit,
    /// Key requests (`m.room_key_request` to-device messages) to other users, per sending device;
    /// requests over the limit are dropped, as in Synapse.
    pub rc_key_requests: RateLimit,
    /// User directory searches, per user.
    pub rc_user_directory: RateLimit,
    /// Profile lookups, per user (or per client address when not signed in).
    pub rc_profile: RateLimit,
    /// Managing delayed events (listing, cancelling, restarting, sending now), per user (or per
    /// client address when not signed in).
    pub rc_delayed_event_mgmt: RateLimit,
    /// Requests from each other server (federation), as Synapse limits them.
    pub rc_federation: RcFederation,
    /// The longest delay a client may schedule an event with (MSC4140's delayed events, which
    /// Element Call uses to end call memberships of clients that vanished). 0 switches delayed
    /// events off. Synapse's key; Synapse leaves it unset (off), Hearth allows a day.
    pub max_event_delay_duration: Option<HumanDuration>,
    /// Synapse's `experimental_features` that Hearth reads.
    pub experimental_features: ExperimentalFeatures,
    /// Whether other servers' TLS certificates are checked (Synapse's key). Only for test
    /// setups: without it anyone on the path can pose as any server.
    pub federation_verify_certificates: bool,
    /// The only servers federation talks to, when set (Synapse's key); unset: every server.
    pub federation_domain_whitelist: Option<Vec<String>>,
    /// Whether other servers may read the public room directory (Synapse's key and default:
    /// off, so a directory meant for the family is not listed to the whole federation).
    pub allow_public_rooms_over_federation: bool,
    /// Servers asked for other servers' signing keys before asking those servers themselves
    /// (notaries), as in Synapse: matrix.org by default; `[]` asks every server directly.
    pub trusted_key_servers: Vec<TrustedKeyServer>,
    /// Lifetime of an access token issued together with a refresh token, e.g. "5m".
    pub refreshable_access_token_lifetime: HumanDuration,
    /// Lifetime of a refresh token; unset means it lives until used or logged out.
    pub refresh_token_lifetime: Option<HumanDuration>,
    /// Log level filter (`error`, `warn`, `info`, `debug`, `trace`, or a `tracing` filter
    /// directive). `RUST_LOG` overrides it.
    pub log_level: String,
    /// Folder for the daily rolling log files; defaults to the OS log folder.
    pub log_dir: Option<PathBuf>,
    /// Where secrets (signing key, generated shared secret) are kept: "auto" (OS keychain when
    /// one answers, else files), "keychain" or "file".
    pub secret_store: SecretStoreChoice,
    /// Room version for new rooms.
    pub default_room_version: String,
    /// Synapse's `forget_rooms_on_leave`: a room a local user leaves (or is kicked or banned
    /// from) is forgotten at once, as if they had called /forget.
    pub forget_rooms_on_leave: bool,
    /// Synapse's `forgotten_room_retention_period`: a room no local user is in any more, that
    /// every local member forgot (or left, with `forget_rooms_on_leave`), is purged from the
    /// database this long after the last of them did. Nobody here can read it any more, so
    /// Hearth does it after a week by default (Synapse: unset, never); `0` keeps them.
    pub forgotten_room_retention_period: Option<HumanDuration>,
    /// The setup wizard's "my home network" choice, from the database (not a file key): each
    /// listener bound only to loopback addresses listens on all addresses of that family
    /// instead (0.0.0.0, ::), so phones and laptops at home reach it.
    #[serde(skip)]
    pub listen_on_network: bool,
    /// The wizard's "tunnel" and "own domain" choices, from the database: a program on this
    /// computer forwards people's requests, so loopback listeners trust `X-Forwarded-For`.
    #[serde(skip)]
    pub behind_proxy: bool,
    /// The desktop app asks once a day whether a newer Hearth is out (its signed update
    /// manifest); the dashboard's switch goes over this. The headless server never asks.
    pub update_checks: bool,
    /// Where the desktop app's update manifest is, instead of the address built into the app
    /// (a mirror, or a test's update server). Updates must still carry the app's signature.
    pub update_manifest_url: Option<String>,
    /// The desktop app's updater (not a file key): set by the app, absent in the headless server.
    #[serde(skip)]
    pub updates: Option<crate::service::updates::Updates>,
    /// Scheduled backups (Hearth's own): when, where, how many to keep; the dashboard's choice
    /// goes over this table.
    pub backups: BackupsConfig,
    /// Synapse's `server_notices` (see `ServerNotices`).
    pub server_notices: ServerNotices,
    /// Serve Prometheus metrics (Synapse's key): at `/_synapse/metrics` and `/metrics` on the
    /// admin listener (loopback), and on listeners of `type = "metrics"`, which serve nothing
    /// else (for a Prometheus on another machine: bind one to the address it scrapes).
    pub enable_metrics: bool,
    /// The file this config was read from (not a file key), copied into scheduled backups.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// The `type = "metrics"` entries of `listeners`, taken out of that list by `validate`.
    #[serde(skip)]
    pub metrics_listeners: Vec<Listener>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Listener {
    pub port: u16,
    pub bind_addresses: Vec<IpAddr>,
    /// Serve HTTPS on this listener, with the certificate of `tls_certificate_path` and
    /// `tls_private_key_path`.
    pub tls: bool,
    /// Take the client's address from `X-Forwarded-For`, as the reverse proxy in front of this
    /// listener adds it. Only requests whose connection comes from `trusted_proxies` are read.
    pub x_forwarded: bool,
    /// Addresses (or CIDR ranges) of the proxies allowed to say who the client is. Default: this
    /// computer (127.0.0.0/8, ::1). Add the proxy's address when it runs on another machine.
    pub trusted_proxies: Vec<String>,
    /// How many proxies in a row append to `X-Forwarded-For` before the request reaches Hearth
    /// (a CDN in front of nginx is 2). The address that many entries from the end is the client;
    /// entries before it were written by the client and are ignored.
    pub proxy_hops: usize,
    /// "http" (the client and federation APIs) or "metrics" (only Prometheus metrics, with
    /// `enable_metrics`), as Synapse's listener types.
    #[serde(rename = "type")]
    pub kind: String,
    /// Accepted for Synapse familiarity; every listener serves every resource.
    pub resources: Option<toml::Value>,
}

impl Default for Listener {
    fn default() -> Self {
        Self {
            port: 8008,
            bind_addresses: vec![IpAddr::from([127, 0, 0, 1])],
            tls: false,
            x_forwarded: false,
            trusted_proxies: vec!["127.0.0.0/8".to_owned(), "::1".to_owned()],
            proxy_hops: 1,
            kind: "http".to_owned(),
            resources: None,
        }
    }
}

/// Scheduled backups, as `hearth backup` makes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BackupsConfig {
    /// "off", "daily" or "weekly".
    pub schedule: BackupSchedule,
    /// The folder backups go to (an external disk, a synced folder).
    pub dir: Option<PathBuf>,
    /// How many backups of this server to keep in it; older ones are removed.
    pub keep: u32,
    /// A file whose first line is the passphrase: backups are then encrypted.
    pub passphrase_file: Option<PathBuf>,
}

impl Default for BackupsConfig {
    fn default() -> Self {
        Self { schedule: BackupSchedule::Off, dir: None, keep: 7, passphrase_file: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupSchedule {
    Off,
    Daily,
    Weekly,
}

impl BackupSchedule {
    /// The time between two backups (None: off).
    pub fn interval(self) -> Option<std::time::Duration> {
        match self {
            BackupSchedule::Off => None,
            BackupSchedule::Daily => Some(std::time::Duration::from_secs(24 * 60 * 60)),
            BackupSchedule::Weekly => Some(std::time::Duration::from_secs(7 * 24 * 60 * 60)),
        }
    }
}

/// Where the admin listener (`/_hearth/`: setup wizard, dashboard, admin API) listens. It gives
/// full control of the server, so it binds only to a loopback address: reach it from another
/// computer through an SSH tunnel, never through the reverse proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdminListener {
    /// Port; 0 picks a free one.
    pub port: u16,
    /// A loopback address (127.0.0.1 or ::1).
    pub bind_address: IpAddr,
}

/// Getting and renewing the TLS listeners' certificate from an ACME CA (RFC 8555).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AcmeConfig {
    pub enabled: bool,
    /// The CA's directory: Let's Encrypt's production one by default; its staging one
    /// (https://acme-staging-v02.api.letsencrypt.org/directory) for trying things out.
    pub url: String,
    /// The plain-HTTP listener answering the CA's HTTP-01 challenges (and sending everything
    /// else to HTTPS). The CA always calls port 80: forward it here when this is another port.
    pub port: u16,
    pub bind_addresses: Vec<IpAddr>,
    /// Renew when the certificate has fewer days left than this (or two thirds of its lifetime
    /// have passed, whichever comes first).
    pub reprovision_threshold: u32,
    /// The name the certificate is for. Default: the server name, and the host of
    /// `public_baseurl` when it differs (delegation).
    pub domain: Option<String>,
    /// Where the ACME account's key is kept. Default: with the other secrets.
    pub account_key_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for the ACME server's own HTTPS: a test CA such as
    /// pebble's.
    pub custom_ca_list: Vec<PathBuf>,
    /// The first wait after a failed attempt; doubled each time, up to a day.
    pub retry_after: HumanDuration,
    /// How the CA checks that this server holds the names: `http-01` (a request to port 80,
    /// answered by the listener of `port`) or `tls-alpn-01` (a TLS handshake on port 443,
    /// answered by the TLS listener itself; no port 80 needed).
    pub challenge: AcmeChallenge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AcmeChallenge {
    #[serde(rename = "http-01")]
    Http01,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: crate::service::acme::LETS_ENCRYPT.to_owned(),
            port: 80,
            bind_addresses: vec![IpAddr::from([0, 0, 0, 0])],
            reprovision_threshold: 30,
            domain: None,
            account_key_file: None,
            custom_ca_list: Vec::new(),
            retry_after: HumanDuration(Duration::from_secs(60)),
            challenge: AcmeChallenge::Http01,
        }
    }
}

impl Default for AdminListener {
    fn default() -> Self {
        Self { port: 8009, bind_address: IpAddr::from([127, 0, 0, 1]) }
    }
}

/// Who may create an account, as the dashboard offers it. Invite links from the dashboard work
/// under every policy (they are the admin's own doing); the policies differ in what Matrix apps
/// may do by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Only people the admin invites (invite links) or creates. Matrix apps cannot register.
    Invite,
    /// Matrix apps can register with an invite code (registration token).
    Token,
    /// Anyone can register from any Matrix app, spam bots included.
    Open,
}

impl RegistrationPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            // "closed" is what the file calls it; invite links still work then.
            "closed" | "invite" => RegistrationPolicy::Invite,
            "token" => RegistrationPolicy::Token,
            "open" => RegistrationPolicy::Open,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationPolicy::Invite => "invite",
            RegistrationPolicy::Token => "token",
            RegistrationPolicy::Open => "open",
        }
    }

    fn apply(self, c: &mut Config) {
        c.enable_registration = self != RegistrationPolicy::Invite;
        c.registration_requires_token = self == RegistrationPolicy::Token;
        c.enable_registration_without_verification = self == RegistrationPolicy::Open;
    }
}

/// A token bucket: `burst_count` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]

pub struct RateLimit {
    pub per_second: f64,
    pub burst_count: f64,
}

/// A notary for other servers' keys (Synapse's `trusted_key_servers` entries).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TrustedKeyServer {
    pub server_name: String,
    /// Its keys, to check its answers with; when empty they are fetched from it directly.
    #[serde(default)]
    pub verify_keys: std::collections::BTreeMap<String, String>,
}

/// Synapse's `experimental_features` that Hearth reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ExperimentalFeatures {
    /// Most delayed events one user may have scheduled at a time; 0 switches them off.
    pub msc4140_max_delayed_events_per_user: u32,
}

impl Default for ExperimentalFeatures {
    fn default() -> Self {
        Self { msc4140_max_delayed_events_per_user: 100 }
    }
}

/// Synapse's `rc_federation`: within each `window_size` (milliseconds), requests from one server
/// after the first `sleep_limit` wait `sleep_delay` milliseconds, those after `reject_limit` are
/// refused (429), and at most `concurrent` are worked on at once.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct RcFederation {
    pub window_size: u64,
    pub sleep_limit: u32,
    pub sleep_delay: u64,
    pub reject_limit: u32,
    pub concurrent: u32,
}

impl Default for RcFederation {
    /// Synapse's defaults.
    fn default() -> Self {
        Self { window_size: 1000, sleep_limit: 10, sleep_delay: 500, reject_limit: 50, concurrent: 3 }
    }
}

/// Synapse's `rc_joins`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RcJoins {
    pub local: RateLimit,
    pub remote: RateLimit,
}

impl Default for RcJoins {
    fn default() -> Self {
        Self {
            local: RateLimit { per_second: 0.1, burst_count: 10.0 },
            remote: RateLimit { per_second: 0.01, burst_count: 10.0 },
        }
    }
}

/// Synapse's `rc_invites`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RcInvites {
    pub per_room: RateLimit,
    pub per_user: RateLimit,
    pub per_issuer: RateLimit,
}

impl Default for RcInvites {
    fn default() -> Self {
        Self {
            per_room: RateLimit { per_second: 0.3, burst_count: 10.0 },
            per_user: RateLimit { per_second: 0.003, burst_count: 5.0 },
            per_issuer: RateLimit { per_second: 0.3, burst_count: 10.0 },
        }
    }
}

/// Synapse's `server_notices` section: messages from the server to its users (maintenance,
/// changes), sent by the admin API into a room of each user's with a system account. Off
/// unless `system_mxid_localpart` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerNotices {
    /// The system account's localpart (it cannot be registered by anyone).
    pub system_mxid_localpart: Option<String>,
    pub system_mxid_display_name: Option<String>,
    pub system_mxid_avatar_url: Option<String>,
    pub room_name: String,
    pub room_avatar_url: Option<String>,
    pub room_topic: Option<String>,
    /// Join the user to the notices room instead of inviting them.
    pub auto_join: bool,
}

impl Default for ServerNotices {
    fn default() -> Self {
        Self {
            system_mxid_localpart: None,
            system_mxid_display_name: None,
            system_mxid_avatar_url: None,
            room_name: "Server Notices".to_owned(),
            room_avatar_url: None,
            room_topic: None,
            auto_join: false,
        }
    }
}

/// Synapse's `media_retention` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MediaRetention {
    /// Remote media not served for this long is deleted (fetched again when asked for).
    pub remote_media_lifetime: Option<HumanDuration>,
    /// Media uploaded here and not downloaded for this long is deleted for good (pictures in
    /// use as someone's avatar are kept).
    pub local_media_lifetime: Option<HumanDuration>,
}

/// Synapse's `presence` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Presence {
    /// Send local users' presence to the servers that share a room with them.
    pub enabled: bool,
}

impl Default for Presence {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// Synapse's `rc_presence`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RcPresence {
    pub per_user: RateLimit,
}

impl Default for RcPresence {
    fn default() -> Self {
        Self { per_user: RateLimit { per_second: 0.1, burst_count: 1.0 } }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RcLogin {
    /// Login attempts per client address.
    pub address: RateLimit,
    /// Login attempts per account.
    pub account: RateLimit,
    /// Failed login attempts per account.
    pub failed_attempts: RateLimit,
}

impl Default for RcLogin {
    fn default() -> Self {
        // Synapse's defaults.
        let rl = RateLimit { per_second: 0.003, burst_count: 5.0 };
        Self { address: rl, account: rl, failed_attempts: RateLimit { per_second: 0.17, burst_count: 3.0 } }
    }
}

/// The user directory (spec: "User directory"), Synapse's keys and defaults.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct UserDirectory {
    /// Find every user of this server. Off (the default), a search finds only the people the
    /// searcher shares a room with and those in public or world-readable rooms, so someone in
    /// private rooms only cannot be found by strangers.
    pub search_all_users: bool,
}

/// Synapse's `password_config`: only its `policy` table has a meaning here.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct PasswordConfig {
    pub policy: PasswordPolicy,
}

/// Rules for every new password: at registration, on the invite page, from the dashboard and the
/// admin APIs, on a password change and from `hearth register-user`. Existing passwords keep
/// working. Synapse's keys; unlike Synapse, on by default with 8 characters.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct PasswordPolicy {
    /// Check new passwords at all.
    pub enabled: bool,
    /// Fewest characters (Unicode code points, as Synapse counts).
    pub minimum_length: usize,
    pub require_digit: bool,
    /// A character other than a-z, A-Z and 0-9.
    pub require_symbol: bool,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            minimum_length: 8,
            require_digit: false,
            require_symbol: false,
            require_lowercase: false,
            require_uppercase: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SecretStoreChoice {
    #[default]
    Auto,
    Keychain,
    File,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: ServerName::parse("localhost").expect("valid"),
            public_baseurl: None,
            listeners: vec![Listener::default()],
            data_dir: None,
            enable_registration: false,
            enable_registration_without_verification: false,
            registration_requires_token: false,
            registration_shared_secret: None,
            allow_guest_access: false,
            max_upload_size: ByteSize(50 * 1024 * 1024),
            max_request_size: ByteSize(2 * 1024 * 1024),
            media_storage_quota_per_user: None,
            enable_authenticated_media: true,
            max_pending_media_uploads: 5,
            unused_expiration_time: HumanDuration(Duration::from_secs(24 * 3600)),
            max_image_pixels: ByteSize(32 * 1024 * 1024),
            url_preview_enabled: false,
            url_preview_ip_range_whitelist: Vec::new(),
            ip_range_blacklist: None,
            ip_range_whitelist: Vec::new(),
            dns_servers: Vec::new(),
            federation_custom_ca_list: Vec::new(),
            tls_certificate_path: None,
            tls_private_key_path: None,
            tls_reload_interval: HumanDuration(Duration::from_secs(60)),
            acme: AcmeConfig::default(),
            max_spider_size: ByteSize(10 * 1024 * 1024),
            admin_contact: None,
            admin: AdminListener::default(),
            max_connections: 4096,
            max_connections_per_ip: 128,
            request_header_timeout: HumanDuration(Duration::from_secs(20)),
            request_body_timeout: HumanDuration(Duration::from_secs(60)),
            listen_on_network: false,
            behind_proxy: false,
            update_checks: true,
            update_manifest_url: None,
            updates: None,
            enable_metrics: false,
            metrics_listeners: Vec::new(),
            backups: BackupsConfig::default(),
            config_file: None,
            password_config: PasswordConfig::default(),
            user_directory: UserDirectory::default(),
            support_page: None,
            turn_uris: Vec::new(),
            turn_shared_secret: None,
            turn_username: None,
            turn_password: None,
            turn_user_lifetime: HumanDuration(Duration::from_secs(3600)),
            turn_allow_guests: true,
            rc_login: RcLogin::default(),
            rc_registration: RateLimit { per_second: 0.17, burst_count: 3.0 },
            // Synapse's default.
            rc_registration_token_validity: RateLimit { per_second: 0.1, burst_count: 5.0 },
            // Synapse's defaults, all of them.
            rc_message: RateLimit { per_second: 0.2, burst_count: 10.0 },
            rc_admin_redaction: None,
            rc_room_creation: RateLimit { per_second: 0.016, burst_count: 10.0 },
            rc_joins: RcJoins::default(),
            rc_joins_per_room: RateLimit { per_second: 1.0, burst_count: 10.0 },
            rc_invites: RcInvites::default(),
            rc_media_create: RateLimit { per_second: 10.0, burst_count: 50.0 },
            rc_presence: RcPresence::default(),
            presence: Presence::default(),
            media_retention: MediaRetention::default(),
            server_notices: ServerNotices::default(),
            rc_reports: RateLimit { per_second: 1.0, burst_count: 5.0 },
            rc_key_requests: RateLimit { per_second: 20.0, burst_count: 100.0 },
            rc_user_directory: RateLimit { per_second: 0.016, burst_count: 200.0 },
            rc_profile: RateLimit { per_second: 1.0, burst_count: 500.0 },
            rc_delayed_event_mgmt: RateLimit { per_second: 1.0, burst_count: 5.0 },
            rc_federation: RcFederation::default(),
            max_event_delay_duration: Some(HumanDuration(Duration::from_secs(86_400))),
            experimental_features: ExperimentalFeatures::default(),
            federation_verify_certificates: true,
            federation_domain_whitelist: None,
            allow_public_rooms_over_federation: false,
            trusted_key_servers: vec![TrustedKeyServer {
                server_name: "matrix.org".to_owned(),
                verify_keys: [("ed25519:auto".to_owned(), "Noi6WqcDj0QmPxCNQqgezwTlBKrfqehY1u2FyWP9uYw".to_owned())]
                    .into(),
            }],
            refreshable_access_token_lifetime: HumanDuration(Duration::from_secs(300)),
            refresh_token_lifetime: None,
            log_level: "info".to_owned(),
            log_dir: None,
            secret_store: SecretStoreChoice::Auto,
            default_room_version: "12".to_owned(),
            forget_rooms_on_leave: false,
            forgotten_room_retention_period: Some(HumanDuration(Duration::from_secs(7 * 86_400))),
        }
    }
}

/// A configuration problem, phrased for the person running the server.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// Where the OS wants our files. `None` when the OS gives no home folder.
pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "Hearth", "Hearth")
}

/// The config file used when `--config` is not given.
pub fn default_config_path() -> Result<PathBuf, ConfigError> {
    project_dirs()
        .map(|d| d.config_dir().join("homeserver.toml"))
        .ok_or_else(|| err("cannot find the OS config folder (is HOME set?); pass --config PATH"))
}

fn default_data_dir() -> Result<PathBuf, ConfigError> {
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| err("cannot find the OS data folder (is HOME set?); set data_dir in the config"))
}

/// The default log folder: the OS's place for logs (on Linux, the state dir).
pub fn default_log_dir() -> Option<PathBuf> {
    let dirs = project_dirs()?;
    Some(match dirs.state_dir() {
        Some(state) => state.join("logs"),
        None => dirs.data_local_dir().join("logs"),
    })
}

impl Config {
    /// Parses TOML text. Unknown keys are returned as warnings rather than refused, so a config
    /// written for a newer Hearth (or copied from Synapse) still starts.
    pub fn from_toml(text: &str, origin: &Path) -> Result<(Config, Vec<String>), ConfigError> {
        let mut unknown = Vec::new();
        let de = toml::Deserializer::parse(text).map_err(|e| {
            err(format!("{}: not valid TOML{}: {}", origin.display(), locate(text, e.span()), e.message()))
        })?;
        let config: Config =
            serde_ignored::deserialize(de, |path| unknown.push(path.to_string())).map_err(|e: toml::de::Error| {
                err(format!("{}{}: {}", origin.display(), locate(text, e.span()), e.message()))
            })?;
        let warnings = unknown
            .into_iter()
            .map(|k| format!("{}: unknown key `{k}` is ignored (check the spelling)", origin.display()))
            .collect();
        Ok((config, warnings))
    }

    /// Loads the file at `path` (writing the commented default file first when `create` is set
    /// and it does not exist), then applies the environment.
    pub fn load(path: &Path, create: bool) -> Result<(Config, Vec<String>), ConfigError> {
        if create && !path.exists() {
            write_default_file(path)?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!("cannot read config file {}: {e}; check the path and permissions", path.display()))
        })?;
        let (mut config, warnings) = Config::from_toml(&text, path)?;
        config.apply_env(|k| std::env::var(k).ok())?;
        config.config_file = Some(path.to_path_buf());
        Ok((config, warnings))
    }

    /// Applies `HEARTH_*` overrides, read through `get` so tests need not touch the process env.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("HEARTH_SERVER_NAME") {
            self.server_name = ServerName::parse(v.trim()).map_err(|e| {
                err(format!(
                    "HEARTH_SERVER_NAME: `{v}` is not a valid server name ({e}); use a host name like example.org"
                ))
            })?;
        }
        if let Some(v) = get("HEARTH_DATA_DIR") {
            self.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("HEARTH_PUBLIC_BASEURL") {
            self.public_baseurl = Some(v);
        }
        if let Some(v) = get("HEARTH_LISTEN") {
            let addr: SocketAddr = v.parse().map_err(|_| {
                err(format!("HEARTH_LISTEN: `{v}` is not host:port (for example 127.0.0.1:8008 or [::1]:8008)"))
            })?;
            self.listeners =
                vec![Listener { port: addr.port(), bind_addresses: vec![addr.ip()], ..Listener::default() }];
        }
        if let Some(v) = get("HEARTH_ADMIN_LISTEN") {
            let addr: SocketAddr = v.parse().map_err(|_| {
                err(format!("HEARTH_ADMIN_LISTEN: `{v}` is not host:port (for example 127.0.0.1:8009)"))
            })?;
            self.admin = AdminListener { port: addr.port(), bind_address: addr.ip() };
        }
        Ok(())
    }

    /// Every rate limit with its key, for validation and for setups (tests, benchmarks) that
    /// lift them all.
    pub fn rate_limits_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut RateLimit)> {
        [
            ("rc_login.address", &mut self.rc_login.address),
            ("rc_login.account", &mut self.rc_login.account),
            ("rc_login.failed_attempts", &mut self.rc_login.failed_attempts),
            ("rc_registration", &mut self.rc_registration),
            ("rc_registration_token_validity", &mut self.rc_registration_token_validity),
            ("rc_message", &mut self.rc_message),
            ("rc_room_creation", &mut self.rc_room_creation),
            ("rc_joins.local", &mut self.rc_joins.local),
            ("rc_joins.remote", &mut self.rc_joins.remote),
            ("rc_joins_per_room", &mut self.rc_joins_per_room),
            ("rc_invites.per_room", &mut self.rc_invites.per_room),
            ("rc_invites.per_user", &mut self.rc_invites.per_user),
            ("rc_invites.per_issuer", &mut self.rc_invites.per_issuer),
            ("rc_media_create", &mut self.rc_media_create),
            ("rc_presence.per_user", &mut self.rc_presence.per_user),
            ("rc_reports", &mut self.rc_reports),
            ("rc_key_requests", &mut self.rc_key_requests),
            ("rc_user_directory", &mut self.rc_user_directory),
            ("rc_profile", &mut self.rc_profile),
            ("rc_delayed_event_mgmt", &mut self.rc_delayed_event_mgmt),
        ]
        .into_iter()
        .chain(self.rc_admin_redaction.as_mut().map(|rl| ("rc_admin_redaction", rl)))
    }

    /// Checks everything that can be checked without binding sockets, and fills derived values.
    pub fn validate(mut self) -> Result<Config, ConfigError> {
        let (metrics, listeners): (Vec<Listener>, Vec<Listener>) =
            std::mem::take(&mut self.listeners).into_iter().partition(|l| l.kind == "metrics");
        self.listeners = listeners;
        for l in &metrics {
            if !self.enable_metrics {
                return Err(err(format!(
                    "listeners: the metrics listener on port {} needs enable_metrics = true",
                    l.port
                )));
            }
            if l.tls {
                return Err(err(format!(
                    "listeners: the metrics listener on port {} cannot use tls; scrape it over a private network or put a TLS proxy in front",
                    l.port
                )));
            }
            if l.bind_addresses.is_empty() {
                return Err(err(format!(
                    "listeners: the metrics listener on port {} needs bind_addresses, e.g. [\"127.0.0.1\"]",
                    l.port
                )));
            }
        }
        self.metrics_listeners.extend(metrics);
        let b = &self.backups;
        if b.schedule != BackupSchedule::Off && b.dir.is_none() {
            return Err(err(
                "backups.dir: scheduled backups need the folder they go to, e.g. dir = \"/media/usb-disk/hearth-backups\"",
            ));
        }
        if b.dir.as_ref().is_some_and(|d| !d.is_absolute()) {
            return Err(err("backups.dir: give the whole path of the folder"));
        }
        if b.keep == 0 {
            return Err(err("backups.keep: keep at least 1 backup"));
        }
        if self.listeners.is_empty() {
            return Err(err("listeners: at least one listener is needed, e.g. [[listeners]] port = 8008"));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            if l.tls
                && !self.acme.enabled
                && (self.tls_certificate_path.is_none() || self.tls_private_key_path.is_none())
            {
                return Err(err(format!(
                    "listeners[{i}].tls: HTTPS needs a certificate: set tls_certificate_path and tls_private_key_path (PEM files), or let Hearth get one ([acme] enabled = true), or set tls = false and put a reverse proxy (Caddy, nginx) in front"
                )));
            }
            if l.kind != "http" {
                return Err(err(format!(
                    "listeners[{i}].type: \"{}\" is not a listener type: \"http\" or \"metrics\"",
                    l.kind
                )));
            }
            if let Err(e) = parse_ranges(&l.trusted_proxies) {
                return Err(err(format!("listeners[{i}].trusted_proxies: {e}")));
            }
            if l.proxy_hops == 0 {
                return Err(err(format!(
                    "listeners[{i}].proxy_hops: must be at least 1 (the proxy in front of Hearth)"
                )));
            }
            if l.bind_addresses.is_empty() {
                return Err(err(format!(
                    "listeners[{i}].bind_addresses: give at least one address, e.g. [\"127.0.0.1\"]"
                )));
            }
        }
        if self.enable_registration
            && !self.registration_requires_token
            && !self.enable_registration_without_verification
        {
            return Err(err(
                "enable_registration: open registration without any verification lets anyone, including spam bots, create accounts on your server. \
                 Either set registration_requires_token = true (invite codes), or, if you accept the risk, set enable_registration_without_verification = true",
            ));
        }
        if let Some(url) = &self.public_baseurl {
            let parsed = parse_base_url(url).ok_or_else(|| {
                err(format!("public_baseurl: `{url}` is not an http(s) URL like https://matrix.example.org/"))
            })?;
            self.public_baseurl = Some(parsed);
        }
        if self.data_dir.is_none() {
            self.data_dir = Some(default_data_dir()?);
        }
        if let Some(secret) = &self.registration_shared_secret
            && secret.is_empty()
        {
            return Err(err("registration_shared_secret: must not be empty; remove the key to have one generated"));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err()
            || !self.log_level.split(',').all(|d| {
                let level = d.rsplit('=').next().unwrap_or("").trim();
                d.contains('=')
                    || ["error", "warn", "info", "debug", "trace", "off"].contains(&level.to_lowercase().as_str())
            })
        {
            return Err(err(format!(
                "log_level: `{}` is not a level; use error, warn, info, debug or trace (or a filter like \"info,hearth_server=debug\")",
                self.log_level
            )));
        }
        if !(1..=12).contains(&self.default_room_version.parse::<u32>().unwrap_or(0)) {
            return Err(err(format!(
                "default_room_version: `{}` is not a room version this server supports (1 to 12)",
                self.default_room_version
            )));
        }
        if let Err(e) = crate::service::outbound::IpPolicy::from_config(&self) {
            return Err(err(e));
        }
        if let Err(e) = self.url_preview_ranges() {
            return Err(err(format!("url_preview_ip_range_whitelist: {e}")));
        }
        if let Err(e) = self.dns_server_addrs() {
            return Err(err(format!("dns_servers: {e}")));
        }
        if !self.admin.bind_address.is_loopback() {
            return Err(err(format!(
                "admin.bind_address: {} is not a loopback address. The admin listener controls the whole server, so it only listens on 127.0.0.1 or ::1; \
                 to manage Hearth from another computer, use an SSH tunnel (ssh -L 8009:127.0.0.1:8009 this-machine)",
                self.admin.bind_address
            )));
        }
        let policy = &self.password_config.policy;
        if policy.enabled && policy.minimum_length > crate::service::passwords::MAX_PASSWORD_BYTES {
            return Err(err(format!(
                "password_config.policy.minimum_length: at most {} (the longest password accepted)",
                crate::service::passwords::MAX_PASSWORD_BYTES
            )));
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err(err("max_connections and max_connections_per_ip: must be at least 1"));
        }
        for (name, d) in [
            ("request_header_timeout", self.request_header_timeout),
            ("request_body_timeout", self.request_body_timeout),
        ] {
            if d.0 < Duration::from_secs(1) {
                return Err(err(format!("{name}: at least 1s")));
            }
        }
        if self.acme.enabled {
            if !self.listeners.iter().any(|l| l.tls) {
                return Err(err("acme.enabled: no listener has tls = true, so no certificate is needed"));
            }
            if url::Url::parse(&self.acme.url).map(|u| u.scheme() != "https").unwrap_or(true) {
                return Err(err(format!(
                    "acme.url: \"{}\" is not an https:// URL of an ACME directory",
                    self.acme.url
                )));
            }
            if self.acme.bind_addresses.is_empty() {
                return Err(err("acme.bind_addresses: at least one address"));
            }
            if self.acme.retry_after.0 < Duration::from_millis(100) {
                return Err(err("acme.retry_after: at least 100ms"));
            }
        }
        if let Some(u) = &self.update_manifest_url
            && url::Url::parse(u).map(|u| !matches!(u.scheme(), "https" | "http")).unwrap_or(true)
        {
            return Err(err(format!("update_manifest_url: \"{u}\" is not an http(s) URL")));
        }
        if self.tls_reload_interval.0 < Duration::from_millis(100) {
            return Err(err("tls_reload_interval: at least 100ms"));
        }
        if self.max_pending_media_uploads == 0 {
            return Err(err("max_pending_media_uploads: must be at least 1"));
        }
        for (name, rl) in self.rate_limits_mut() {
            if !(rl.per_second > 0.0 && rl.burst_count >= 1.0) {
                return Err(err(format!("{name}: per_second must be above 0 and burst_count at least 1")));
            }
        }
        Ok(self)
    }

    /// Applies what the setup wizard and the dashboard stored in the database, over the file:
    /// `server_name`, `registration` ("closed", "invite", "token" or "open") and `public_baseurl`. A
    /// stored value that no longer parses is refused with the key named, as a file value would.
    pub fn apply_settings(
        &mut self,
        settings: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), ConfigError> {
        if let Some(v) = settings.get("server_name") {
            self.server_name = v
                .as_str()
                .and_then(|s| ServerName::parse(s).ok())
                .ok_or_else(|| err(format!("setting `server_name` in the database: `{v}` is not a server name")))?;
        }
        if let Some(v) = settings.get("registration") {
            let policy = v.as_str().and_then(RegistrationPolicy::parse).ok_or_else(|| {
                err(format!("setting `registration` in the database: `{v}` is not closed, invite, token or open"))
            })?;
            policy.apply(self);
        }
        if let Some(v) = settings.get("listen_on_network") {
            self.listen_on_network = v.as_bool().ok_or_else(|| {
                err(format!("setting `listen_on_network` in the database: `{v}` is not true or false"))
            })?;
        }
        if let Some(v) = settings.get(crate::service::updates::CHECKS_KEY) {
            self.update_checks = v
                .as_bool()
                .ok_or_else(|| err(format!("setting `update_checks` in the database: `{v}` is not true or false")))?;
        }
        if let Some(v) = settings.get("behind_proxy") {
            self.behind_proxy = v
                .as_bool()
                .ok_or_else(|| err(format!("setting `behind_proxy` in the database: `{v}` is not true or false")))?;
        }
        // Help for users (`/.well-known/matrix/support`); null clears what the file set.
        if let Some(v) = settings.get("support_page") {
            self.support_page = v.as_str().map(str::to_owned);
        }
        if let Some(v) = settings.get("admin_contact") {
            self.admin_contact = v.as_str().map(str::to_owned);
        }
        if let Some(v) = settings.get("turn_uris") {
            self.turn_uris = v
                .as_array()
                .and_then(|a| {
                    a.iter().map(|u| u.as_str().filter(|u| u.starts_with("turn")).map(str::to_owned)).collect()
                })
                .ok_or_else(|| {
                    err(format!("setting `turn_uris` in the database: `{v}` is not a list of turn: URIs"))
                })?;
        }
        if let Some(v) = settings.get("https").filter(|v| !v.is_null()) {
            let https: BuiltInHttps = serde_json::from_value(v.clone())
                .map_err(|e| err(format!("setting `https` in the database: `{v}`: {e}")))?;
            https.apply(self)?;
        }
        if let Some(v) = settings.get("public_baseurl") {
            let url = v
                .as_str()
                .and_then(parse_base_url)
                .ok_or_else(|| err(format!("setting `public_baseurl` in the database: `{v}` is not an http(s) URL")))?;
            self.public_baseurl = Some(url);
        }
        Ok(())
    }

    /// The registration policy these settings amount to.
    pub fn registration_policy(&self) -> RegistrationPolicy {
        match (self.enable_registration, self.registration_requires_token) {
            (false, _) => RegistrationPolicy::Invite,
            (true, true) => RegistrationPolicy::Token,
            (true, false) => RegistrationPolicy::Open,
        }
    }

    /// The parsed `url_preview_ip_range_whitelist`.
    pub fn url_preview_ranges(&self) -> Result<Vec<ipnet::IpNet>, String> {
        parse_ranges(&self.url_preview_ip_range_whitelist)
    }

    /// The parsed `dns_servers` (port 53 when none is given).
    pub fn dns_server_addrs(&self) -> Result<Vec<SocketAddr>, String> {
        self.dns_servers
            .iter()
            .map(|s| {
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| format!("`{s}` is not an IP address, like 192.168.1.1 or 127.0.0.1:5353"))
            })
            .collect()
    }

    /// Whether and from whom listener `index` takes the client's address from
    /// `X-Forwarded-For`: when its config says so, or when the wizard said a web server or
    /// tunnel on this computer forwards to it (`behind_proxy`) and it listens on loopback only.
    pub fn forwarded_for(&self, index: usize) -> Option<ForwardedFor> {
        let l = self.listeners.get(index)?;
        let on = l.x_forwarded || (self.behind_proxy && l.bind_addresses.iter().all(IpAddr::is_loopback));
        // Checked by `validate`.
        let trusted = parse_ranges(&l.trusted_proxies).unwrap_or_default();
        on.then(|| ForwardedFor { trusted, hops: l.proxy_hops.max(1) })
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.as_deref().expect("validate() fills data_dir")
    }

    /// The TLS listeners' certificate and key files: as configured, or where the ACME
    /// certificate is kept (`tls/` in the data folder).
    pub fn tls_paths(&self) -> Option<(PathBuf, PathBuf)> {
        match (&self.tls_certificate_path, &self.tls_private_key_path) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ if self.acme.enabled => {
                let dir = self.data_dir().join("tls");
                Some((dir.join("fullchain.pem"), dir.join("privkey.pem")))
            }
            _ => None,
        }
    }

    /// The names the ACME certificate is for: `acme.domain`, or the server name (without a
    /// port) and the host of `public_baseurl` when it is another one.
    pub fn acme_domains(&self) -> Vec<String> {
        if let Some(d) = &self.acme.domain {
            return vec![d.clone()];
        }
        let mut names = vec![self.server_name.host().to_owned()];
        if let Some(host) = self
            .public_baseurl
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            && !names.contains(&host)
        {
            names.push(host);
        }
        names
    }

    /// The base URL clients use, with a trailing slash.
    pub fn public_baseurl(&self) -> String {
        match &self.public_baseurl {
            Some(u) => u.clone(),
            None => {
                let l = &self.listeners[0];
                let ip = l.bind_addresses[0];
                let host = if ip.is_unspecified() {
                    "localhost".to_owned()
                } else if ip.is_ipv6() {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("http://{host}:{}/", l.port)
            }
        }
    }

    /// Every address to listen on, with the index of its entry in `listeners`.
    pub fn bind_addrs(&self) -> Vec<(usize, SocketAddr)> {
        self.listeners
            .iter()
            .enumerate()
            .flat_map(|(index, l)| {
                let widen = self.listen_on_network && l.bind_addresses.iter().all(IpAddr::is_loopback);
                let ips: Vec<IpAddr> = if !widen {
                    l.bind_addresses.clone()
                } else if l.bind_addresses.iter().any(IpAddr::is_ipv4) {
                    // One wildcard: "::" next to "0.0.0.0" on the same port would collide where
                    // IPv6 sockets are dual-stack (Linux), and home networks are IPv4.
                    vec![IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)]
                } else {
                    vec![IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)]
                };
                ips.into_iter().map(move |ip| (index, SocketAddr::new(ip, l.port)))
            })
            .collect()
    }
}

/// The wizard's "Hearth handles HTTPS itself": a TLS listener on `port` (all addresses) with a
/// certificate for `host` from the ACME CA at `url`, whose HTTP-01 challenges arrive on
/// `http_port`. Stored as the `https` setting; applied over the file like the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuiltInHttps {
    pub host: String,
    pub port: u16,
    pub http_port: u16,
    pub url: String,
}

impl BuiltInHttps {
    fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        if let Some(l) = config.listeners.iter().find(|l| l.port == self.port) {
            if !l.tls {
                return Err(err(format!(
                    "setting `https`: port {} is a plain listener in the configuration file; choose another HTTPS port",
                    self.port
                )));
            }
        } else {
            config.listeners.push(Listener {
                port: self.port,
                bind_addresses: vec![IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)],
                tls: true,
                ..Listener::default()
            });
        }
        config.acme.enabled = true;
        config.acme.url = self.url.clone();
        config.acme.port = self.http_port;
        config.acme.challenge = AcmeChallenge::Http01;
        config.acme.domain = Some(self.host.clone());
        Ok(())
    }
}

/// Parses addresses and CIDR ranges ("10.0.0.0/8", "192.168.1.10", "::1").
pub fn parse_ranges(ranges: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    ranges
        .iter()
        .map(|r| {
            r.parse::<ipnet::IpNet>()
                .or_else(|_| r.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{r}` is not an address or a CIDR range like 192.168.1.0/24"))
        })
        .collect()
}

/// Which `X-Forwarded-For` entry names the client, on a listener behind proxies.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardedFor {
    /// Connections from these addresses may say who the client is.
    pub trusted: Vec<ipnet::IpNet>,
    /// Proxies that append to the header: the client is this many entries from the end.
    pub hops: usize,
}

impl ForwardedFor {
    /// The client's address for a connection from `peer` carrying `header_values` (every
    /// `X-Forwarded-For` line, in order). `None` when the peer is not a trusted proxy or the
    /// header says nothing usable; the peer's own address then stands.
    ///
    /// Proxies append the address they received the request from, so only the last `hops`
    /// entries were written by proxies; anything before them is whatever the client sent.
    pub fn client<'a>(&self, peer: IpAddr, header_values: impl Iterator<Item = &'a str>) -> Option<IpAddr> {
        let peer = peer.to_canonical();
        if !self.trusted.iter().any(|net| net.contains(&peer)) {
            return None;
        }
        let entries: Vec<&str> =
            header_values.flat_map(|v| v.split(',')).map(str::trim).filter(|e| !e.is_empty()).collect();
        // Fewer entries than hops: the outer proxies were bypassed, and the first entry is what
        // the innermost (trusted) proxy saw.
        let entry = entries.get(entries.len().saturating_sub(self.hops))?;
        parse_forwarded_ip(entry)
    }
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:80`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = entry.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    entry.strip_prefix('[')?.strip_suffix(']')?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// " at line N (`that line`)" for an error span, so the message names the key at fault on one
/// line.
fn locate(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else { return String::new() };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    if line.is_empty() { format!(" at line {line_no}") } else { format!(" at line {line_no} (`{line}`)") }
}

/// Normalises an http(s) URL to end with a slash; `None` when it is not one.
fn parse_base_url(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    uri.host().filter(|h| !h.is_empty())?;
    if uri.query().is_some() {
        return None;
    }
    Some(if url.ends_with('/') { url.to_owned() } else { format!("{url}/") })
}

/// Writes the commented default config, creating its folder.
pub fn write_default_file(path: &Path) -> Result<(), ConfigError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            err(format!("cannot create config folder {}: {e}; pass --config with a writable path", dir.display()))
        })?;
    }
    std::fs::write(path, DEFAULT_CONFIG_TEMPLATE).map_err(|e| {
        err(format!("cannot write default config {}: {e}; pass --config with a writable path", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn example_file_parses_to_the_defaults() {
        let (c, warnings) = parse(DEFAULT_CONFIG_TEMPLATE).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let d = Config::default();
        assert_eq!(c.server_name, d.server_name);
        assert_eq!(c.listeners[0].port, d.listeners[0].port);
        assert_eq!(c.listeners[0].bind_addresses, d.listeners[0].bind_addresses);
        assert_eq!(c.listeners[0].trusted_proxies, d.listeners[0].trusted_proxies);
        assert_eq!(c.listeners[0].proxy_hops, d.listeners[0].proxy_hops);
        assert_eq!(c.enable_registration, d.enable_registration);
        assert_eq!(c.max_upload_size, d.max_upload_size);
        assert_eq!(c.max_request_size, d.max_request_size);
        assert_eq!(c.rc_registration, d.rc_registration);
        assert_eq!(c.rc_registration_token_validity, d.rc_registration_token_validity);
        assert_eq!(c.password_config, d.password_config);
        assert_eq!((c.max_connections, c.max_connections_per_ip), (d.max_connections, d.max_connections_per_ip));
        assert_eq!(c.request_header_timeout, d.request_header_timeout);
        assert_eq!(c.request_body_timeout, d.request_body_timeout);
        assert_eq!(c.rc_login.address, d.rc_login.address);
        assert_eq!(c.rc_login.account, d.rc_login.account);
        assert_eq!(c.rc_login.failed_attempts, d.rc_login.failed_attempts);
        assert_eq!(c.refreshable_access_token_lifetime, d.refreshable_access_token_lifetime);
        assert_eq!(c.log_level, d.log_level);
        assert_eq!(c.secret_store, d.secret_store);
        assert_eq!(c.default_room_version, d.default_room_version);
        assert!(c.data_dir.is_none() && c.public_baseurl.is_none());
        assert_eq!(c.max_event_delay_duration, d.max_event_delay_duration);
        assert_eq!(c.rc_delayed_event_mgmt, d.rc_delayed_event_mgmt);
    }

    /// Every commented example line (`# key = value`) can be uncommented where it stands: no
    /// key sits under the wrong `[table]`.
    #[test]
    fn example_lines_of_the_file_work_when_uncommented() {
        let is_example = |l: &str| {
            l.strip_prefix("# ").and_then(|r| r.split_once(" = ")).is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
            })
        };
        let text: String = DEFAULT_CONFIG_TEMPLATE
            .lines()
            .map(|l| if is_example(l) { &l[2..] } else { l })
            .flat_map(|l| [l, "\n"])
            .collect();
        let (c, warnings) = parse(&text).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!c.turn_uris.is_empty() && c.support_page.is_some() && c.admin_contact.is_some());
        assert_eq!(c.max_event_delay_duration, Some(HumanDuration(Duration::from_secs(86_400))));
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = parse("enable_registration = \"yes\"").unwrap_err();
        assert!(e.0.contains("enable_registration"), "{e}");
    }

    #[test]
    fn invalid_server_name_is_refused() {
        let e = parse("server_name = \"not a name!\"").unwrap_err();
        assert!(e.0.contains("server_name"), "{e}");
    }

    #[test]
    fn unknown_keys_are_warned_about() {
        let (_, w) = parse("server_name = \"example.org\"\nenable_regsitration = true\n[rc_login]\nbogus = 1").unwrap();
        assert!(w.iter().any(|w| w.contains("enable_regsitration")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("rc_login.bogus")), "{w:?}");
    }

    #[test]
    fn open_registration_needs_explicit_acceptance() {
        let (c, _) = parse("enable_registration = true\ndata_dir = \"/tmp/x\"").unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.0.contains("enable_registration_without_verification"), "{e}");
        let (c, _) =
            parse("enable_registration = true\nregistration_requires_token = true\ndata_dir = \"/tmp/x\"").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn a_misspelt_log_level_is_refused() {
        let (c, _) = parse("log_level = \"inof\"\ndata_dir = \"/x\"").unwrap();
        assert!(c.validate().unwrap_err().0.contains("log_level"));
        let (c, _) = parse("log_level = \"info,hearth_server=debug\"\ndata_dir = \"/x\"").unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn env_overrides_file() {
        let (mut c, _) = parse("server_name = \"a.org\"").unwrap();
        c.apply_env(|k| match k {
            "HEARTH_SERVER_NAME" => Some("b.org".into()),
            "HEARTH_LISTEN" => Some("127.0.0.1:9999".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.server_name.as_str(), "b.org");
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].port, 9999);
        let e = c.apply_env(|k| (k == "HEARTH_LISTEN").then(|| "nope".into())).unwrap_err();
        assert!(e.0.contains("HEARTH_LISTEN"));
    }

    #[test]
    fn the_client_is_the_entry_the_trusted_proxy_added() {
        let ff = ForwardedFor { trusted: parse_ranges(&["127.0.0.0/8".into(), "::1".into()]).unwrap(), hops: 1 };
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let client = |peer: IpAddr, lines: &[&str]| ff.client(peer, lines.iter().copied()).map(|i| i.to_string());
        // The client wrote the first entries; the proxy appended the last one.
        assert_eq!(client(local, &["6.6.6.6, 203.0.113.9"]).as_deref(), Some("203.0.113.9"));
        // HAProxy adds a header line of its own instead of appending.
        assert_eq!(client(local, &["6.6.6.6", "203.0.113.9"]).as_deref(), Some("203.0.113.9"));
        assert_eq!(client(local, &["[2001:db8::1]:4711"]).as_deref(), Some("2001:db8::1"));
        assert_eq!(client(local, &["203.0.113.9:4711"]).as_deref(), Some("203.0.113.9"));
        assert_eq!(client("::ffff:127.0.0.1".parse().unwrap(), &["203.0.113.9"]).as_deref(), Some("203.0.113.9"));
        assert_eq!(client(local, &["unknown"]), None);
        assert_eq!(client(local, &[]), None);
        // A connection from elsewhere does not get to say who the client is.
        assert_eq!(client("198.51.100.1".parse().unwrap(), &["203.0.113.9"]), None);
        // Two proxies (a CDN, then nginx): the second entry from the end.
        let two = ForwardedFor { hops: 2, ..ff.clone() };
        let got = two.client(local, ["6.6.6.6, 203.0.113.9, 192.0.2.50"].into_iter()).map(|i| i.to_string());
        assert_eq!(got.as_deref(), Some("203.0.113.9"));
        let got = two.client(local, ["203.0.113.9"].into_iter()).map(|i| i.to_string());
        assert_eq!(got.as_deref(), Some("203.0.113.9"), "fewer entries than hops: the first one");
    }

    #[test]
    fn public_baseurl_is_normalised_and_checked() {
        let (c, _) = parse("public_baseurl = \"https://m.example.org\"\ndata_dir = \"/x\"").unwrap();
        assert_eq!(c.validate().unwrap().public_baseurl(), "https://m.example.org/");
        let (c, _) = parse("public_baseurl = \"ftp://m.example.org\"\ndata_dir = \"/x\"").unwrap();
        assert!(c.validate().unwrap_err().0.contains("public_baseurl"));
    }
}
