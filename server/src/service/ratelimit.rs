//! Rate limiting in memory, keyed by whatever the caller chooses (client address, account).
//! Semantics follow Synapse's `rc_*` settings: `burst_count` actions at once, refilled at
//! `per_second`. The buckets are governor's (GCRA).
//!
//! Memory stays bounded by the number of distinct keys seen recently: keys whose bucket is full
//! again carry no information and are dropped, when the table has doubled since the last sweep
//! (so a flood of new keys costs amortised O(1) per request, not a scan each) and every minute
//! from the housekeeping task. Client addresses are keyed by [`address_key`], which folds an
//! IPv6 address into its /64: one home or server gets a /64, so a per-address limit is otherwise
//! no limit at all.
//!
//! [`Limits`] holds one limiter per `rc_*` setting and the per-user exceptions an admin set with
//! Synapse's `override_ratelimit` admin API.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use hashlink::LruCache;
use parking_lot::{Mutex, RwLock};
use ruma::{RoomId, UserId};

use crate::{
    config::{Config, RateLimit},
    error::{Error, Result},
    storage::{self, Db},
};

/// Below this many keys the table is not swept on the request path.
const MIN_SWEEP: usize = 1024;

/// The key for per-address limits: the address itself, or its /64 for IPv6.
pub fn address_key(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(ip) => ip.to_string(),
        None => "-".to_owned(),
    }
}

fn quota(rate: RateLimit) -> Quota {
    let burst = NonZeroU32::new(rate.burst_count.max(1.0).min(u32::MAX as f64) as u32).unwrap_or(NonZeroU32::MIN);
    // Checked by `Config::validate` (per_second > 0); a tiny rate becomes a very long period.
    let period = Duration::try_from_secs_f64(1.0 / rate.per_second).unwrap_or(Duration::from_secs(365 * 86400));
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .unwrap_or(Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

pub struct Limiter {
    buckets: DefaultKeyedRateLimiter<String>,
    /// Sweep when the table reaches this size.
    sweep_at: AtomicUsize,
}

impl Limiter {
    pub fn new(rate: RateLimit) -> Self {
        Self { buckets: RateLimiter::keyed(quota(rate)), sweep_at: AtomicUsize::new(MIN_SWEEP) }
    }

    /// Takes one action from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Error> {
        if self.buckets.len() >= self.sweep_at.load(Ordering::Relaxed) {
            self.sweep();
        }
        self.buckets.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.buckets.clock().now());
            Error::limit_exceeded(wait.max(Duration::from_millis(1)))
        })
    }

    /// Drops the keys whose bucket is full again.
    pub fn sweep(&self) {
        self.buckets.retain_recent();
        self.buckets.shrink_to_fit();
        self.sweep_at.store((self.buckets.len() * 2).max(MIN_SWEEP), Ordering::Relaxed);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// The rate limiters, one per `rc_*` setting (failed passwords are counted by `accounts`), and
/// the users an admin exempted or gave limits of their own.
pub struct Limits {
    db: Db,
    pub login_address: Limiter,
    pub login_account: Limiter,
    pub registration: Limiter,
    /// Starting a registration (the first `/register` round trip, which only asks for the
    /// flows but holds a session in memory): ten times `rc_registration`.
    pub registration_start: Limiter,
    /// Looking an invite code up (`/register/m.login.registration_token/validity`, the invite
    /// page's state), so codes cannot be guessed quickly.
    pub token_validity: Limiter,
    message: Limiter,
    admin_redaction: Option<Limiter>,
    pub room_creation: Limiter,
    joins_local: Limiter,
    joins_per_room: Limiter,
    invites_per_room: Limiter,
    invites_per_user: Limiter,
    invites_per_issuer: Limiter,
    pub media_create: Limiter,
    pub presence: Limiter,
    pub reports: Limiter,
    key_requests: Limiter,
    pub user_directory: Limiter,
    pub profile: Limiter,
    /// Managing delayed events (list, cancel, restart, send now), per user or per address.
    pub delayed_event_mgmt: Limiter,
    /// Most invites one `createRoom` may carry (`rc_invites.per_room`'s burst, as Synapse).
    pub max_invites_at_once: usize,
    overrides: RwLock<HashMap<String, Override>>,
}

/// What an admin set for one user (Synapse's `ratelimit_override` table).
enum Override {
    /// `messages_per_second` 0: no limit of any kind applies to the user.
    Exempt,
    /// Their own message budget in place of `rc_message`; the other limits as for everyone.
    Messages(Limiter),
}

/// An override as the admin API shows it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct OverrideValues {
    pub messages_per_second: u32,
    pub burst_count: u32,
}

impl Override {
    fn new(v: OverrideValues) -> Self {
        if v.messages_per_second == 0 {
            return Override::Exempt;
        }
        Override::Messages(Limiter::new(RateLimit {
            per_second: f64::from(v.messages_per_second),
            burst_count: f64::from(v.burst_count.max(1)),
        }))
    }
}

impl Limits {
    pub async fn new(config: &Config, db: Db) -> anyhow::Result<Self> {
        let start = RateLimit {
            per_second: config.rc_registration.per_second * 10.0,
            burst_count: config.rc_registration.burst_count * 10.0,
        };
        let overrides = storage::ratelimit_override::all(&db.read)
            .await?
            .into_iter()
            .map(|(user, messages_per_second, burst_count)| {
                (user, Override::new(OverrideValues { messages_per_second, burst_count }))
            })
            .collect();
        Ok(Self {
            db,
            login_address: Limiter::new(config.rc_login.address),
            login_account: Limiter::new(config.rc_login.account),
            registration: Limiter::new(config.rc_registration),
            registration_start: Limiter::new(start),
            token_validity: Limiter::new(config.rc_registration_token_validity),
            message: Limiter::new(config.rc_message),
            admin_redaction: config.rc_admin_redaction.map(Limiter::new),
            room_creation: Limiter::new(config.rc_room_creation),
            joins_local: Limiter::new(config.rc_joins.local),
            joins_per_room: Limiter::new(config.rc_joins_per_room),
            invites_per_room: Limiter::new(config.rc_invites.per_room),
            invites_per_user: Limiter::new(config.rc_invites.per_user),
            invites_per_issuer: Limiter::new(config.rc_invites.per_issuer),
            media_create: Limiter::new(config.rc_media_create),
            presence: Limiter::new(config.rc_presence.per_user),
            reports: Limiter::new(config.rc_reports),
            key_requests: Limiter::new(config.rc_key_requests),
            user_directory: Limiter::new(config.rc_user_directory),
            profile: Limiter::new(config.rc_profile),
            delayed_event_mgmt: Limiter::new(config.rc_delayed_event_mgmt),
            max_invites_at_once: config.rc_invites.per_room.burst_count as usize,
            overrides: RwLock::new(overrides),
        })
    }

    fn exempt(&self, user: &UserId) -> bool {
        matches!(self.overrides.read().get(user.as_str()), Some(Override::Exempt))
    }

    /// One action of `user` under a per-user limit.
    pub fn user(&self, limiter: &Limiter, user: &UserId) -> Result<()> {
        if self.exempt(user) {
            return Ok(());
        }
        limiter.check(user.as_str())
    }

    /// One action on behalf of `user` under a limit keyed by something else (a room, an
    /// invitee, a device): an exempted user is not counted.
    pub fn on_behalf(&self, limiter: &Limiter, user: &UserId, key: &str) -> Result<()> {
        if self.exempt(user) {
            return Ok(());
        }
        limiter.check(key)
    }

    /// One event sent by `user` (`rc_message`); a moderator's redaction of someone else's event
    /// counts under `rc_admin_redaction` when that is set.
    pub fn event(&self, user: &UserId, admin_redaction: bool) -> Result<()> {
        match self.overrides.read().get(user.as_str()) {
            Some(Override::Exempt) => return Ok(()),
            Some(Override::Messages(own)) if !admin_redaction || self.admin_redaction.is_none() => {
                return own.check(user.as_str());
            }
            _ => {}
        }
        match &self.admin_redaction {
            Some(l) if admin_redaction => l.check(user.as_str()),
            _ => self.message.check(user.as_str()),
        }
    }

    /// Whether moderators' redactions have a limit of their own (`rc_admin_redaction`).
    pub fn separate_admin_redactions(&self) -> bool {
        self.admin_redaction.is_some()
    }

    /// A local user joining a room they are not in (`rc_joins.local`, `rc_joins_per_room`).
    pub fn join(&self, user: &UserId, room_id: &RoomId) -> Result<()> {
        self.user(&self.joins_local, user)?;
        self.on_behalf(&self.joins_per_room, user, room_id.as_str())
    }

    /// An invite into `room_id` (none for the invites of `createRoom`) of `invitee` by `inviter`.
    pub fn invite(&self, inviter: &UserId, room_id: Option<&RoomId>, invitee: &UserId) -> Result<()> {
        if let Some(room_id) = room_id {
            self.on_behalf(&self.invites_per_room, inviter, room_id.as_str())?;
        }
        self.on_behalf(&self.invites_per_user, inviter, invitee.as_str())?;
        self.user(&self.invites_per_issuer, inviter)
    }

    /// Whether a key request from `device` of `sender` may go to another user now; requests over
    /// the limit are dropped rather than refused, as Synapse does.
    pub fn key_request(&self, sender: &UserId, device: &str) -> bool {
        self.on_behalf(&self.key_requests, sender, &format!("{sender}|{device}")).is_ok()
    }

    /// The override an admin set for `user`, if any.
    pub async fn override_for(&self, user: &UserId) -> Result<Option<OverrideValues>> {
        Ok(storage::ratelimit_override::get(&self.db.read, user.as_str())
            .await?
            .map(|(messages_per_second, burst_count)| OverrideValues { messages_per_second, burst_count }))
    }

    /// Sets `user`'s override (0 messages per second: no limits at all).
    pub async fn set_override(&self, user: &UserId, values: OverrideValues) -> Result<()> {
        storage::ratelimit_override::set(&self.db.write, user.as_str(), values.messages_per_second, values.burst_count)
            .await?;
        self.overrides.write().insert(user.to_string(), Override::new(values));
        Ok(())
    }

    /// Removes `user`'s override: the configured limits apply again.
    pub async fn delete_override(&self, user: &UserId) -> Result<()> {
        storage::ratelimit_override::delete(&self.db.write, user.as_str()).await?;
        self.overrides.write().remove(user.as_str());
        Ok(())
    }

    /// Forgets the buckets that are full again (the housekeeping task, every minute).
    pub fn sweep(&self) {
        let shared = [
            &self.login_address,
            &self.login_account,
            &self.registration,
            &self.registration_start,
            &self.token_validity,
            &self.message,
            &self.room_creation,
            &self.joins_local,
            &self.joins_per_room,
            &self.invites_per_room,
            &self.invites_per_user,
            &self.invites_per_issuer,
            &self.media_create,
            &self.presence,
            &self.reports,
            &self.key_requests,
            &self.user_directory,
            &self.profile,
        ];
        for l in shared.into_iter().chain(&self.admin_redaction) {
            l.sweep();
        }
        for o in self.overrides.read().values() {
            if let Override::Messages(l) = o {
                l.sweep();
            }
        }
    }
}

/// A limit on failures: looked at before an attempt, charged only when it fails (Synapse's
/// `rc_login.failed_attempts`), so once a guesser has used it up no answer tells whether a guess
/// was right. governor has no way to look without taking, so this is a token bucket of its own;
/// an LRU table bounds it (evicting the longest-unused key costs O(1)).
pub struct FailureLimiter {
    rate: RateLimit,
    buckets: Mutex<LruCache<String, (f64, Instant)>>,
}

/// Accounts whose failures are remembered at once.
const FAILURE_KEYS: usize = 50_000;

impl FailureLimiter {
    pub fn new(rate: RateLimit) -> Self {
        Self { rate, buckets: Mutex::new(LruCache::new(FAILURE_KEYS)) }
    }

    /// Refuses when the failures of `key` have used up its budget.
    pub fn check(&self, key: &str) -> Result<(), Error> {
        self.check_at(key, Instant::now())
    }

    /// Records one failure of `key`.
    pub fn record(&self, key: &str) {
        self.record_at(key, Instant::now())
    }

    fn tokens(&self, entry: Option<&(f64, Instant)>, now: Instant) -> f64 {
        let Some((tokens, at)) = entry else { return self.rate.burst_count };
        (tokens + now.duration_since(*at).as_secs_f64() * self.rate.per_second).min(self.rate.burst_count)
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Error> {
        let mut buckets = self.buckets.lock();
        let tokens = self.tokens(buckets.get(key), now);
        if tokens >= 1.0 {
            return Ok(());
        }
        Err(Error::limit_exceeded(Duration::from_secs_f64(((1.0 - tokens) / self.rate.per_second).max(0.001))))
    }

    fn record_at(&self, key: &str, now: Instant) {
        let mut buckets = self.buckets.lock();
        let tokens = self.tokens(buckets.get(key), now);
        buckets.insert(key.to_owned(), ((tokens - 1.0).max(0.0), now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_with_the_wait() {
        let l = Limiter::new(RateLimit { per_second: 0.5, burst_count: 2.0 });
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        let e = l.check("a").unwrap_err();
        assert_eq!(e.errcode(), "M_LIMIT_EXCEEDED");
        assert!(l.check("b").is_ok(), "keys are independent");
    }

    #[test]
    fn a_flood_of_new_keys_does_not_grow_the_table_without_bound() {
        // Buckets refill within a millisecond, so every key is stale by the next sweep.
        let l = Limiter::new(RateLimit { per_second: 1_000_000.0, burst_count: 1.0 });
        for i in 0..100_000 {
            l.check(&format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)).unwrap();
            if i % 10_000 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(l.len() < 25_000, "swept as it grew: {} keys", l.len());
    }

    #[test]
    fn failures_are_looked_at_before_and_charged_after() {
        let l = FailureLimiter::new(RateLimit { per_second: 1.0, burst_count: 2.0 });
        let t = Instant::now();
        assert!(l.check_at("a", t).is_ok());
        l.record_at("a", t);
        assert!(l.check_at("a", t).is_ok(), "one failure left");
        l.record_at("a", t);
        assert_eq!(l.check_at("a", t).unwrap_err().errcode(), "M_LIMIT_EXCEEDED");
        assert!(l.check_at("a", t).is_err(), "looking does not refill or charge");
        assert!(l.check_at("a", t + Duration::from_millis(1100)).is_ok(), "refilled");
        assert!(l.check_at("b", t).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let key = |s: &str| address_key(Some(s.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_key(None), "-");
    }
}
