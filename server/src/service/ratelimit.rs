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

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use hashlink::LruCache;
use parking_lot::Mutex;

use crate::{config::RateLimit, error::Error};

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
