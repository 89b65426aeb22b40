//! How much one other server may ask of this one (Synapse's `rc_federation`): within a window,
//! requests past `sleep_limit` are slowed down, those past `reject_limit` refused with 429, and
//! only `concurrent` are worked on at once, so one busy or hostile server cannot starve the
//! family's own use of a small machine.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use ruma::{OwnedServerName, ServerName};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    config::RcFederation,
    error::{Error, Result},
};

pub struct InboundLimits {
    config: RcFederation,
    origins: Mutex<HashMap<OwnedServerName, Origin>>,
}

/// One server's recent requests and its slots for requests being worked on.
struct Origin {
    recent: VecDeque<Instant>,
    slots: Arc<Semaphore>,
}

impl InboundLimits {
    pub fn new(config: RcFederation) -> Self {
        Self { config, origins: Mutex::default() }
    }

    /// Lets a request of `origin` in: at once, after the configured delay, or not at all (429).
    /// The permit is held while the request is worked on.
    pub async fn admit(&self, origin: &ServerName) -> Result<OwnedSemaphorePermit> {
        let window = Duration::from_millis(self.config.window_size.max(1));
        let (slow, slots) = {
            let mut origins = self.origins.lock();
            let o = origins.entry(origin.to_owned()).or_insert_with(|| Origin {
                recent: VecDeque::new(),
                slots: Arc::new(Semaphore::new(self.config.concurrent.max(1) as usize)),
            });
            let now = Instant::now();
            while o.recent.front().is_some_and(|t| now.duration_since(*t) >= window) {
                o.recent.pop_front();
            }
            if o.recent.len() >= self.config.reject_limit as usize {
                let oldest = o.recent.front().copied().unwrap_or(now);
                return Err(Error::limit_exceeded(window.saturating_sub(now.duration_since(oldest))));
            }
            o.recent.push_back(now);
            (o.recent.len() > self.config.sleep_limit as usize, o.slots.clone())
        };
        if slow {
            tokio::time::sleep(Duration::from_millis(self.config.sleep_delay)).await;
        }
        slots.acquire_owned().await.map_err(Error::internal)
    }
}
