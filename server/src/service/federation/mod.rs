//! Federation: talking to other homeservers. `client` sends signed requests (X-Matrix) to a
//! destination found by server discovery, under the outbound IP policy; `keys` fetches, checks
//! and keeps other servers' signing keys, for requests and events from them.

pub mod acl;
pub mod backfill;
pub mod client;
pub mod directory;
pub mod edus;
pub mod inbound;
pub mod invites;
pub mod joins;
pub mod keys;
pub mod limits;
pub mod outbound;
pub mod outbox;
pub mod sender;
pub mod serving;
pub mod spaces;
pub mod tester;

use std::sync::Arc;

use ruma::{OwnedServerName, ServerName, api::federation::authentication::XMatrix, signatures::PublicKeyMap};

pub use self::{client::FederationClient, keys::KeyStore};
use crate::error::{Error, Result};

/// Everything federation needs, shared by handlers and services.
pub struct Federation {
    pub client: Arc<FederationClient>,
    pub keys: KeyStore,
    pub sender: Arc<sender::Sender>,
    /// `rc_federation`, per asking server.
    pub limits: limits::InboundLimits,
    rooms: Arc<crate::service::rooms::Rooms>,
    ephemeral: Arc<crate::service::ephemeral::Ephemeral>,
    e2ee: Arc<crate::service::e2ee::E2ee>,
    /// Rooms whose servers had no history before the event it begins with here, and when.
    nothing_before:
        parking_lot::Mutex<std::collections::HashMap<ruma::OwnedRoomId, (ruma::OwnedEventId, std::time::Instant)>>,
    /// The answers to recent transactions, by (origin, transaction ID), for retries.
    txns_done: parking_lot::Mutex<hashlink::LruCache<(OwnedServerName, String), TxnResults>>,
    /// One transaction at a time per origin (the spec has each server send one at a time).
    txn_locks: parking_lot::Mutex<std::collections::HashMap<OwnedServerName, Arc<tokio::sync::Mutex<()>>>>,
}

/// Per-PDU outcomes of a transaction.
pub type TxnResults = std::collections::BTreeMap<ruma::OwnedEventId, std::result::Result<(), String>>;

/// How many transaction answers are remembered for retries (a retry comes soon after).
const TXNS_REMEMBERED: usize = 1024;

impl Federation {
    pub fn new(
        client: Arc<FederationClient>,
        keys: KeyStore,
        sender: Arc<sender::Sender>,
        rooms: Arc<crate::service::rooms::Rooms>,
        ephemeral: Arc<crate::service::ephemeral::Ephemeral>,
        e2ee: Arc<crate::service::e2ee::E2ee>,
        limits: crate::config::RcFederation,
    ) -> Self {
        Self {
            client,
            keys,
            sender,
            limits: limits::InboundLimits::new(limits),
            rooms,
            ephemeral,
            e2ee,
            nothing_before: Default::default(),
            txns_done: parking_lot::Mutex::new(hashlink::LruCache::new(TXNS_REMEMBERED)),
            txn_locks: Default::default(),
        }
    }

    /// Checks the `X-Matrix` signature of an incoming request (spec: "Request Authentication"):
    /// the origin's key is fetched when unknown. Returns the origin server.
    pub async fn authenticate(&self, request: &http::Request<&[u8]>) -> Result<OwnedServerName> {
        let header = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("Missing Authorization headers"))?;
        let x = XMatrix::try_from(header).map_err(|e| unauthorized(format!("Invalid X-Matrix authorization: {e}")))?;
        let ours = self.keys.own_server_name();
        if x.destination.as_deref().is_some_and(|d| d != ours) {
            return Err(unauthorized("This request is for another server"));
        }
        if x.origin == ours {
            return Err(unauthorized("A request from this server's own name"));
        }
        if !self.client.may_federate_with(&x.origin) {
            return Err(Error::forbidden(format!("Federation denied with {}", x.origin)));
        }
        let key = self
            .keys
            .verify_key_for_request(&x.origin, x.key.as_str())
            .await
            .map_err(|e| unauthorized(format!("No usable key {} of {}: {e}", x.key, x.origin)))?;
        let mut map = PublicKeyMap::new();
        map.insert(x.origin.to_string(), [(x.key.to_string(), key)].into());
        x.verify_request(request, ours, &map)
            .map_err(|e| unauthorized(format!("Invalid signature for server {}: {e}", x.origin)))?;
        // It is up: whatever waits for it goes now rather than when its back-off ends.
        self.sender.heard_from(&x.origin).await;
        Ok(x.origin)
    }
}

impl Federation {
    /// A remote user's display name and avatar, asked of their server
    /// (`/_matrix/federation/v1/query/profile`). Its refusals come back as they were (a 404 for
    /// an unknown user); an unreachable server is 404 too (Synapse answers 502).
    pub async fn remote_profile(&self, user: &ruma::UserId) -> Result<(Option<String>, Option<String>)> {
        let request = ruma::api::federation::query::get_profile_information::v1::Request::new(user.to_owned());
        match self.client.send(user.server_name(), request).await {
            Ok(resp) => {
                let field = |name: &str| resp.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                Ok((field("displayname"), field("avatar_url")))
            }
            Err(e) => Err(remote_error(e, "Profile was not found", Error::not_found)),
        }
    }
}

/// A failure of a request to another server, for the client that caused it: a 4xx refusal with
/// its status and error code; a server that cannot be reached or answers nonsense gets the
/// endpoint's own error, `otherwise` (a client naming a server that does not exist is not this
/// server's failure, so no 5xx).
pub fn remote_error(e: client::FederationError, what: &str, otherwise: fn(String) -> Error) -> Error {
    tracing::info!(error = %e, "{what}");
    if let client::FederationError::Refused { status, .. } = &e
        && (400..500).contains(status)
        && let Ok(code) = http::StatusCode::from_u16(*status)
    {
        let errcode = e.errcode().unwrap_or_else(|| "M_UNKNOWN".to_owned());
        return Error::custom(code, &errcode, what);
    }
    otherwise(format!("{what}: {e}"))
}

fn unauthorized(message: impl Into<String>) -> Error {
    Error::matrix(http::StatusCode::UNAUTHORIZED, ruma::api::error::ErrorKind::Unauthorized, message)
}

/// A server name from a string that is known to be one.
pub fn server_name(s: &str) -> Result<&ServerName> {
    <&ServerName>::try_from(s).map_err(|_| Error::invalid_param(format!("{s} is not a server name")))
}
