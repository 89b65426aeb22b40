//! Token-bucket rate limiting in memory, keyed by whatever the caller chooses (client address,
//! account). Semantics follow Synapse's `rc_*` settings: `burst_count` actions at once, refilled
//! at `per_second`.

use parking_lot::Mutex;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use crate::{config::RateLimit, error::Error};

pub struct Limiter {
    rate: RateLimit,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    pub fn new(rate: RateLimit) -> Self {
        Self { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one action from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Error> {
        self.check_at(key, Instant::now(), true)
    }

    /// Says whether an action would be allowed, without taking it (for limits on failures:
    /// checked before the attempt, charged only when it fails).
    pub fn peek(&self, key: &str) -> Result<(), Error> {
        self.check_at(key, Instant::now(), false)
    }

    fn check_at(&self, key: &str, now: Instant, take: bool) -> Result<(), Error> {
        let mut buckets = self.buckets.lock();
        // Full buckets carry no information; dropping them keeps memory bounded by active keys.
        if buckets.len() > 10_000 {
            let (rate, burst) = (self.rate.per_second, self.rate.burst_count);
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.rate.burst_count, now));
        let refilled =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.rate.per_second).min(self.rate.burst_count);
        if refilled >= 1.0 {
            if take {
                *tokens = refilled - 1.0;
                *at = now;
            }
            Ok(())
        } else {
            let wait = (1.0 - refilled) / self.rate.per_second;
            Err(Error::limit_exceeded(Duration::from_secs_f64(wait.max(0.001))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = Limiter::new(RateLimit { per_second: 1.0, burst_count: 2.0 });
        let t = Instant::now();
        assert!(l.check_at("a", t, false).is_ok());
        assert!(l.check_at("a", t, true).is_ok());
        assert!(l.check_at("a", t, true).is_ok());
        let e = l.check_at("a", t, true).unwrap_err();
        assert_eq!(e.errcode(), "M_LIMIT_EXCEEDED");
        assert!(l.check_at("a", t, false).is_err(), "peeking sees the empty bucket");
        assert!(l.check_at("b", t, true).is_ok(), "keys are independent");
        assert!(l.check_at("a", t + Duration::from_millis(1100), true).is_ok());
    }
}
