//! A cache that is filled from the database while writes may race the fill.
//!
//! A reader notes `generation()`, reads from the database, then `fill`s what it read; a writer,
//! after its commit, updates or evicts through `write`, which moves the generation. A fill whose
//! generation moved meanwhile is dropped, so a copy read before a write can never land in the
//! cache after that write cleaned it up. The event cache (redactions), the session cache
//! (logouts), the push rules cache and the membership index share this.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Guarded<C> {
    inner: Mutex<C>,
    writes: AtomicU64,
}

impl<C> Guarded<C> {
    pub fn new(cache: C) -> Self {
        Self { inner: Mutex::new(cache), writes: AtomicU64::new(0) }
    }

    /// Note this before reading from the database; pass it to `fill`.
    pub fn generation(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Reads or updates the cache where no write is involved (lookups, caching something that
    /// cannot be stale).
    pub fn with<R>(&self, f: impl FnOnce(&mut C) -> R) -> R {
        f(&mut self.inner.lock())
    }

    /// Caches what was read at `generation`, unless a write came in between.
    pub fn fill(&self, generation: u64, f: impl FnOnce(&mut C)) {
        let mut inner = self.inner.lock();
        if self.writes.load(Ordering::SeqCst) == generation {
            f(&mut inner);
        }
    }

    /// After a committed write: moves the generation, then updates or evicts.
    pub fn write(&self, f: impl FnOnce(&mut C)) {
        let mut inner = self.inner.lock();
        self.writes.fetch_add(1, Ordering::SeqCst);
        f(&mut inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic while the cache is held (a bug in one request) must not break every later
    /// request that uses the cache, as a poisoned std mutex would.
    #[test]
    fn a_panic_while_the_lock_is_held_leaves_it_usable() {
        let cache = Guarded::new(Vec::<u32>::new());
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.with(|v| {
                v.push(1);
                panic!("a handler bug");
            })
        }));
        assert!(crashed.is_err());
        cache.write(|v| v.push(2));
        assert_eq!(cache.with(|v| v.clone()), vec![1, 2]);
    }
}
