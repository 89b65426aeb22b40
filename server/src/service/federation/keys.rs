//! Other servers' signing keys (spec: "Retrieving server keys"): asked of the notaries in
//! `trusted_key_servers` first and of the server itself after (Synapse's order), each document
//! checked (its server's own signature, and the notary's), kept in SQLite with how long each
//! key may be used, and served again to others as a notary (`/_matrix/key/v2/query`).

use std::{collections::HashMap, sync::Arc};

use parking_lot::Mutex;
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, OwnedServerName, ServerName,
    api::federation::discovery::{ServerSigningKeys, get_remote_server_keys_batch, get_server_keys},
    serde::{Base64, Raw},
    signatures::{PublicKeyMap, verify_json},
};

use super::client::FederationClient;
use crate::{
    config::TrustedKeyServer,
    error::{Error, Result},
    service::{now_ms, signing::ServerKeys},
    storage::{self, Db},
};

/// Our own key document's validity, as published.
pub const OWN_KEY_VALIDITY_MS: i64 = 7 * 24 * 3600 * 1000;

/// Servers' keys read (and fetched) during one batch of checks.
#[derive(Default)]
pub(super) struct KeyMemo {
    keys: HashMap<String, Vec<storage::server_keys::StoredKey>>,
    refreshed: std::collections::HashSet<String>,
}

impl KeyMemo {
    /// Whether the keys of every server that must have signed `event` were read already (so
    /// checking it reads nothing and, barring an expired key, fetches nothing).
    pub(super) fn has_keys_for(
        &self,
        event: &CanonicalJsonObject,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> bool {
        ruma::signatures::required_server_signatures_to_verify_event(event, &rules.signatures)
            .is_ok_and(|servers| servers.iter().all(|s| self.keys.contains_key(s.as_str())))
    }
}

pub struct KeyStore {
    db: Db,
    own: Arc<ServerKeys>,
    client: Arc<FederationClient>,
    notaries: Vec<TrustedKeyServer>,
    /// One fetch per server at a time: concurrent requests from a server wait for the first.
    fetching: Mutex<HashMap<OwnedServerName, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyStore {
    pub fn new(db: Db, own: Arc<ServerKeys>, client: Arc<FederationClient>, notaries: Vec<TrustedKeyServer>) -> Self {
        Self { db, own, client, notaries, fetching: Mutex::default() }
    }

    pub fn own_server_name(&self) -> &ServerName {
        &self.own.server_name
    }

    /// Our own signed key document, valid for a week from now.
    pub fn own_document(&self) -> Result<CanonicalJsonObject> {
        Ok(self.own.key_document((now_ms() + OWN_KEY_VALIDITY_MS) as u64)?)
    }

    /// The key `key_id` of `server`, valid now: a request signed with it may be trusted.
    pub async fn verify_key_for_request(&self, server: &ServerName, key_id: &str) -> Result<Base64, String> {
        let now = now_ms();
        if let Some(k) = self.stored_key(server, key_id, now).await.map_err(|e| e.to_string())? {
            return Ok(k);
        }
        self.refresh(server, now).await?;
        self.stored_key(server, key_id, now)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{server} does not publish a key {key_id} valid now"))
    }

    /// The keys of every server whose signature `event` needs (spec: "Validating hashes and
    /// signatures on received events"), valid when it was sent; fetched when unknown. A server
    /// whose keys cannot be had is left out, so the event's check fails on it.
    pub async fn keys_for_event(
        &self,
        event: &CanonicalJsonObject,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> Result<PublicKeyMap, String> {
        self.keys_for_event_memo(event, rules, &mut KeyMemo::default()).await
    }

    /// As `keys_for_event`, reading each server's keys once per `memo` (a remote join checks
    /// thousands of events signed by a handful of servers).
    pub(super) async fn keys_for_event_memo(
        &self,
        event: &CanonicalJsonObject,
        rules: &ruma::room_version_rules::RoomVersionRules,
        memo: &mut KeyMemo,
    ) -> Result<PublicKeyMap, String> {
        let servers = ruma::signatures::required_server_signatures_to_verify_event(event, &rules.signatures)
            .map_err(|e| e.to_string())?;
        let sent_at = match event.get("origin_server_ts") {
            Some(CanonicalJsonValue::Integer(ts)) => i64::from(*ts),
            _ => now_ms(),
        };
        let mut map = PublicKeyMap::new();
        for server in servers {
            if server == self.own.server_name {
                let own = Base64::parse(&self.own.public_key).map_err(|e| e.to_string())?;
                map.insert(server.to_string(), [(self.own.key_id.clone(), own)].into());
                continue;
            }
            let usable = |keys: &[storage::server_keys::StoredKey]| -> std::collections::BTreeMap<String, Base64> {
                keys.iter()
                    // Room versions 5+ ask for a key valid when the event was sent; older ones
                    // for any key the server published (an expired one only before it expired).
                    .filter(|(_, _, valid_until, expired)| {
                        expired.is_none_or(|e| sent_at < e) && (*valid_until >= sent_at || !rules.enforce_key_validity)
                    })
                    .filter_map(|(id, k, _, _)| Some((id.clone(), Base64::parse(k).ok()?)))
                    .collect()
            };
            let mut keys = match memo.keys.get(server.as_str()) {
                Some(k) => k.clone(),
                None => {
                    storage::server_keys::keys_of(&self.db.read, server.as_str()).await.map_err(|e| e.to_string())?
                }
            };
            // Fetched at most once per memo: a server that cannot be reached is not asked
            // again for each of its events.
            if usable(&keys).is_empty() && memo.refreshed.insert(server.to_string()) {
                if let Err(e) = self.refresh(&server, sent_at).await {
                    tracing::info!(%server, error = %e, "keys for an event could not be fetched");
                }
                keys =
                    storage::server_keys::keys_of(&self.db.read, server.as_str()).await.map_err(|e| e.to_string())?;
            }
            map.insert(server.to_string(), usable(&keys));
            memo.keys.insert(server.to_string(), keys);
        }
        Ok(map)
    }

    /// Checks the signatures and content hashes of events of one room version (spec: "Checks
    /// performed on receipt of a PDU", 2 and 3): those whose signatures verify, each redacted
    /// when its content hash does not match; the others are left out.
    pub async fn verified_events(
        &self,
        events: Vec<CanonicalJsonObject>,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> Vec<CanonicalJsonObject> {
        let mut memo = KeyMemo::default();
        let mut signed = Vec::with_capacity(events.len());
        for event in events {
            match self.keys_for_event_memo(&event, rules, &mut memo).await {
                Ok(keys) => signed.push((event, keys)),
                Err(e) => tracing::info!(error = %e, "an event whose signing servers are unknown was dropped"),
            }
        }
        // Checking signatures is most of the CPU a remote join costs (thousands of events):
        // spread over the cores, off the async threads.
        let rules = rules.clone();
        tokio::task::spawn_blocking(move || verify_all(signed, &rules)).await.unwrap_or_default()
    }

    async fn stored_key(&self, server: &ServerName, key_id: &str, at: i64) -> Result<Option<Base64>> {
        let keys = storage::server_keys::keys_of(&self.db.read, server.as_str()).await?;
        Ok(keys
            .into_iter()
            .find(|(id, _, valid_until, expired)| id == key_id && *valid_until >= at && expired.is_none_or(|e| at < e))
            .and_then(|(_, key, _, _)| Base64::parse(key).ok()))
    }

    /// Fetches `server`'s keys anew (from a notary or the server), unless another task just did.
    async fn refresh(&self, server: &ServerName, needed_until: i64) -> Result<(), String> {
        let lock = self.fetching.lock().entry(server.to_owned()).or_default().clone();
        let _one_at_a_time = lock.lock().await;
        if let Ok(Some((_, valid_until))) = storage::server_keys::document(&self.db.read, server.as_str()).await
            && valid_until >= needed_until
        {
            return Ok(());
        }
        let mut errors = Vec::new();
        for notary in &self.notaries {
            match self.fetch_via_notary(notary, server).await {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(format!("notary {}: {e}", notary.server_name)),
            }
        }
        match self.fetch_direct(server).await {
            Ok(()) => Ok(()),
            Err(e) => {
                errors.push(e);
                Err(errors.join("; "))
            }
        }
    }

    /// Asks the server itself (`GET /_matrix/key/v2/server`).
    async fn fetch_direct(&self, server: &ServerName) -> Result<(), String> {
        let resp = self
            .client
            .send_unsigned(server, get_server_keys::v2::Request::new())
            .await
            .map_err(|e| format!("asking {server} for its keys: {e}"))?;
        self.accept(server, &resp.server_key, None).await
    }

    /// Asks a notary (`POST /_matrix/key/v2/query`).
    async fn fetch_via_notary(&self, notary: &TrustedKeyServer, server: &ServerName) -> Result<(), String> {
        let notary_name = super::server_name(&notary.server_name).map_err(|e| e.message())?;
        if notary_name == server {
            return self.fetch_direct(server).await;
        }
        let notary_keys = if notary.verify_keys.is_empty() {
            self.stored_keys_map(notary_name).await?
        } else {
            notary.verify_keys.iter().filter_map(|(id, k)| Some((id.clone(), Base64::parse(k).ok()?))).collect()
        };
        // No key IDs: every key of the server (the notary answers with what is valid now).
        let request = get_remote_server_keys_batch::v2::Request::new(
            [(server.to_owned(), std::collections::BTreeMap::new())].into(),
        );
        let resp = self
            .client
            .send_unsigned(notary_name, request)
            .await
            .map_err(|e| format!("asking for {server}'s keys: {e}"))?;
        let mut accepted = false;
        for doc in &resp.server_keys {
            if self.accept(server, doc, Some((notary_name, &notary_keys))).await.is_ok() {
                accepted = true;
            }
        }
        if accepted { Ok(()) } else { Err(format!("no valid key document for {server}")) }
    }

    /// Keys of a server as a signature-checking map (fetching them when none are stored).
    async fn stored_keys_map(&self, server: &ServerName) -> Result<std::collections::BTreeMap<String, Base64>, String> {
        let now = now_ms();
        let mut keys =
            storage::server_keys::keys_of(&self.db.read, server.as_str()).await.map_err(|e| e.to_string())?;
        if !keys.iter().any(|(_, _, valid_until, _)| *valid_until >= now) {
            self.fetch_direct(server).await?;
            keys = storage::server_keys::keys_of(&self.db.read, server.as_str()).await.map_err(|e| e.to_string())?;
        }
        Ok(keys.into_iter().filter_map(|(id, k, _, _)| Some((id, Base64::parse(k).ok()?))).collect())
    }

    /// Checks a key document of `server` (its own signature with its current keys, and the
    /// notary's when it came through one), then stores its keys and the document.
    async fn accept(
        &self,
        server: &ServerName,
        raw: &Raw<ServerSigningKeys>,
        notary: Option<(&ServerName, &std::collections::BTreeMap<String, Base64>)>,
    ) -> Result<(), String> {
        let object: CanonicalJsonObject =
            serde_json::from_str(raw.json().get()).map_err(|e| format!("{server}'s key document: {e}"))?;
        let doc: ServerSigningKeys = raw.deserialize().map_err(|e| format!("{server}'s key document: {e}"))?;
        if doc.server_name != server {
            return Err(format!("a key document for {} came for {server}", doc.server_name));
        }
        let own: std::collections::BTreeMap<String, Base64> =
            doc.verify_keys.iter().map(|(id, k)| (id.to_string(), k.key.clone())).collect();
        let mut map = PublicKeyMap::new();
        map.insert(server.to_string(), own);
        if let Some((name, keys)) = notary {
            map.insert(name.to_string(), keys.clone());
        }
        verify_json(&map, &object).map_err(|e| format!("{server}'s key document is not properly signed: {e}"))?;
        let valid_until = i64::try_from(u64::from(doc.valid_until_ts.0)).unwrap_or(i64::MAX);
        let mut tx = self.db.begin_write().await.map_err(|e| e.to_string())?;
        for (id, k) in &doc.verify_keys {
            storage::server_keys::put_key(&mut *tx, server.as_str(), id.as_str(), &k.key.encode(), valid_until, None)
                .await
                .map_err(|e| e.to_string())?;
        }
        for (id, k) in &doc.old_verify_keys {
            let expired = i64::try_from(u64::from(k.expired_ts.0)).unwrap_or(i64::MAX);
            storage::server_keys::put_key(
                &mut *tx,
                server.as_str(),
                id.as_str(),
                &k.key.encode(),
                expired,
                Some(expired),
            )
            .await
            .map_err(|e| e.to_string())?;
        }
        // The document is kept as the server signed it, without the notary's signature.
        let mut plain = object.clone();
        if notary.is_some()
            && let Some(CanonicalJsonValue::Object(sigs)) = plain.get_mut("signatures")
        {
            sigs.retain(|name, _| name == server.as_str());
        }
        let text = serde_json::to_string(&plain).map_err(|e| e.to_string())?;
        storage::server_keys::put_document(&mut *tx, server.as_str(), &text, valid_until, now_ms())
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        tracing::info!(%server, keys = doc.verify_keys.len(), via = ?notary.map(|n| n.0.to_string()), "server keys fetched");
        Ok(())
    }

    /// What this server says, as a notary, about `server`'s keys (`/_matrix/key/v2/query`):
    /// its document countersigned by us, fetched anew when the stored one is not valid until
    /// `minimum_valid_until_ts`. Nothing when the server cannot be reached and nothing is stored.
    pub async fn notarise(
        &self,
        server: &ServerName,
        minimum_valid_until_ts: Option<i64>,
    ) -> Result<Vec<CanonicalJsonObject>> {
        if server == self.own_server_name() {
            return Ok(vec![self.own_document()?]);
        }
        let needed = minimum_valid_until_ts.unwrap_or_else(now_ms);
        let stored = storage::server_keys::document(&self.db.read, server.as_str()).await?;
        if stored.as_ref().is_none_or(|(_, valid_until)| *valid_until < needed)
            && let Err(e) = self.fetch_direct(server).await
        {
            tracing::info!(%server, error = %e, "notary: the server's keys could not be fetched");
        }
        let Some((text, _)) = storage::server_keys::document(&self.db.read, server.as_str()).await? else {
            return Ok(Vec::new());
        };
        let mut doc: CanonicalJsonObject = serde_json::from_str(&text).map_err(Error::internal)?;
        self.own.sign(&mut doc)?;
        Ok(vec![doc])
    }
}

/// `verify_one` on each event, on up to as many threads as there are cores; the order is kept.
fn verify_all(
    events: Vec<(CanonicalJsonObject, PublicKeyMap)>,
    rules: &ruma::room_version_rules::RoomVersionRules,
) -> Vec<CanonicalJsonObject> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Below this, a thread costs more than it saves.
    const PER_THREAD: usize = 64;
    let chunk = events.len().div_ceil(threads).max(PER_THREAD);
    let mut events = events;
    let mut chunks = Vec::new();
    while events.len() > chunk {
        let rest = events.split_off(chunk);
        chunks.push(std::mem::replace(&mut events, rest));
    }
    chunks.push(events);
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|part| {
                scope.spawn(move || part.into_iter().filter_map(|(e, k)| verify_one(e, &k, rules)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| Vec::new())).collect()
    })
}

/// An event whose signatures verify, redacted when its content hash does not match; `None`
/// (logged) for one that fails.
fn verify_one(
    event: CanonicalJsonObject,
    keys: &PublicKeyMap,
    rules: &ruma::room_version_rules::RoomVersionRules,
) -> Option<CanonicalJsonObject> {
    match ruma::signatures::verify_event(keys, &event, rules) {
        Ok(ruma::signatures::Verified::All) => Some(event),
        Ok(ruma::signatures::Verified::Signatures) => match ruma::canonical_json::redact(event, &rules.redaction, None)
        {
            Ok(redacted) => Some(redacted),
            Err(e) => {
                tracing::info!(error = %e, "an event that cannot be redacted was dropped");
                None
            }
        },
        Err(e) => {
            tracing::info!(error = %e, "an event whose signatures do not verify was dropped");
            None
        }
    }
}
