//! Wakes long-polling /sync requests. Every stream (events, account data, ...) calls
//! `notify()` after its write commits; waiters then read the streams' new heads.

use tokio::sync::watch;

pub struct Notifier {
    tx: watch::Sender<u64>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self { tx: watch::channel(0).0 }
    }
}

impl Notifier {
    pub fn notify(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}
