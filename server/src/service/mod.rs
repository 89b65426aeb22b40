//! Rules and orchestration: no SQL (that is `storage`) and no axum types (that is `http`/`api`).
//!
//! `Services` is built bottom-up in `Homeserver::start`; a constructor's arguments are its
//! dependency list, so cycles cannot be written.

pub mod account_data;
pub mod accounts;
pub mod acme;
pub mod admin_key;
pub mod backup;
pub mod backup_schedule;
pub mod delayed_events;
pub mod e2ee;
pub mod ephemeral;
pub mod federation;
pub mod guarded;
pub mod heads;
pub mod health;
pub mod invites;
pub mod key_backup;
pub mod logs;
pub mod media;
pub mod metrics;
pub mod notifier;
pub mod outbound;
pub mod passwords;
pub mod pusher;
pub mod ratelimit;
pub mod restore;
pub mod reverse_proxy;
pub mod room_deletion;
pub mod rooms;
pub mod server_discovery;
pub mod server_notices;
pub mod setup;
pub mod shared_secret;
pub mod signing;
pub mod sliding_sync;
pub mod sync;
pub mod tls;
pub mod tokens;
pub mod turn;
pub mod uiaa;
pub mod updates;
pub mod voip;

use std::sync::Arc;

/// Milliseconds since the Unix epoch, the unit of every timestamp.
pub use crate::storage::now_ms;
use crate::{config::Config, secrets::Secrets, storage::Db};

pub struct Services {
    pub config: Arc<Config>,
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub keys: Arc<signing::ServerKeys>,
    pub accounts: accounts::Accounts,
    pub rooms: Arc<rooms::Rooms>,
    /// Events scheduled for later (MSC4140).
    pub delayed: Arc<delayed_events::DelayedEvents>,
    pub e2ee: Arc<e2ee::E2ee>,
    pub key_backup: key_backup::KeyBackup,
    pub media: media::Media,
    pub pushers: pusher::Pushers,
    pub invites: invites::Invites,
    /// Finding other servers (and our own, in the setup's check).
    pub discovery: server_discovery::Discovery,
    /// Requests to and from other servers, and their keys.
    pub federation: Arc<federation::Federation>,
    /// The admin listener's bearer token.
    pub admin_key: admin_key::AdminKey,
    /// The public listeners' bound addresses (real ports, also when the config said 0).
    pub local_addrs: Vec<std::net::SocketAddr>,
    /// Notified when a setting changed that applies on restart (see `Running::restart`).
    pub restart: tokio::sync::Notify,
    /// When the server started, for the dashboard's uptime.
    pub started: std::time::Instant,
    /// The same moment as a timestamp (ms): it changes with every restart, so the dashboard can
    /// tell the restarted server from the one that is about to stop.
    pub started_ms: i64,
    pub account_data: Arc<account_data::AccountData>,
    pub ephemeral: Arc<ephemeral::Ephemeral>,
    pub sync: Arc<sync::Sync>,
    pub sliding_sync: sliding_sync::SlidingSync,
    pub limits: ratelimit::Limits,
    /// Synapse-style shared-secret registration (secret configured or generated).
    pub shared_secret: shared_secret::SharedSecretRegistration,
    /// The TLS listeners' certificate, when a listener has `tls = true`.
    pub tls: Option<Arc<tls::Certificates>>,
    /// Getting that certificate from an ACME CA, when `[acme]` is enabled.
    pub acme: Option<Arc<acme::Acme>>,
    /// The desktop app's updater (none in the headless server).
    pub updates: Option<updates::Updates>,
    /// What the updater's requests go through.
    pub update_net: updates::Network,
    /// Scheduled backups (the dashboard's plan, the last run).
    pub backups: Arc<backup_schedule::Backups>,
    /// A backup to restore at the next restart (the wizard's first screen).
    pub restores: restore::Restores,
    /// Server notices sent with a transaction ID (`PUT send_server_notice/{txnId}`): a retry
    /// answers the first event, as Synapse's transaction cache does (kept in memory).
    pub notice_txns: server_notices::NoticeTxns,
    /// Prometheus metrics, with `enable_metrics`.
    pub metrics: Option<Arc<metrics::Metrics>>,
}

impl Services {
    /// Deactivates an account as Synapse does: it leaves every room it is in or invited to (so
    /// the others see it go and invites do not wait for it), then cannot sign in again, its
    /// devices, tokens and profile gone. Used by the client API, the dashboard and Synapse's
    /// admin API alike. `erase` (the spec's and Synapse's): its messages are shown redacted to
    /// whoever was not in the room when they were sent.
    pub async fn deactivate_account(&self, user: &ruma::UserId, erase: bool) -> crate::error::Result<()> {
        let memberships = self.rooms.memberships_of(user).await?;
        for m in memberships.iter().filter(|m| matches!(m.membership.as_str(), "join" | "invite" | "knock")) {
            let Ok(room) = ruma::RoomId::parse(&m.room_id) else { continue };
            // One room that cannot be left (its server gone) does not keep the account open.
            if let Err(e) = self.federation.leave(&room, user, None).await {
                tracing::warn!(%user, room = %m.room_id, error = %e, "leaving a room of an account being deactivated");
            }
        }
        self.accounts.deactivate(user, erase).await
    }

    /// The secret shared with the TURN server when the config file sets none: made once, kept
    /// with the server's other secrets (the OS keychain when there is one).
    pub async fn turn_secret(&self) -> crate::error::Result<String> {
        let secrets = self.secrets.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = secrets.get_or_create(turn::SECRET_NAME, || tokens::random_alphanumeric(48).into_bytes())?;
            String::from_utf8(bytes).map_err(anyhow::Error::from)
        })
        .await
        .map_err(crate::error::Error::internal)?
        .map_err(crate::error::Error::Internal)
    }
}

/// What every handler gets: cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}
