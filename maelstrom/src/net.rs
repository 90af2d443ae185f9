//! The simulated network (spec 3): one inbound queue per registered id, ordered by
//! deadline; one delivery "slot" per destination that takes the queue head at once (even
//! if not yet due), drops it if the destination holds a grudge against its source at that
//! moment, and otherwise delivers it at its deadline. A journal counts every send and
//! every delivery for the `:net` statistics.
//!
//! The model is driven by time passed in (a `Duration` since the test started), so the
//! same code serves the wall-clock driver and the virtual-clock simulation. Contract:
//! times passed to `send` and `poll` never decrease, and a driver calls `poll(now)` before
//! it `send`s anything at `now`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::message::Message;

/// `--latency-dist`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyDist {
    Constant,
    Uniform,
    Exponential,
}

/// receiver → the senders it drops messages from (spec 3.4).
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// `Invalid dest for message ...`: src or dest is not currently registered.
    InvalidDest(String),
}

/// A message handed to its destination at `due` (its deadline, or the moment the slot
/// took it if that was later).
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub message: Message,
    pub due: Duration,
}

/// send/recv/msg counts of one journal group (spec 3.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub send_count: u64,
    pub recv_count: u64,
    pub msg_count: u64,
}

/// The three journal groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub all: Counts,
    pub clients: Counts,
    pub servers: Counts,
}

pub struct Network {
    _private: (),
}

impl Network {
    pub fn new(latency_ms: u64, dist: LatencyDist, rng: ChaCha8Rng) -> Self {
        let _ = (latency_ms, dist, rng);
        todo!()
    }

    /// Creates `id`'s inbound queue.
    pub fn register(&mut self, id: &str) {
        let _ = id;
        todo!()
    }

    /// Removes `id`'s queue; messages queued for it are discarded.
    pub fn unregister(&mut self, id: &str) {
        let _ = id;
        todo!()
    }

    pub fn is_registered(&self, id: &str) -> bool {
        let _ = id;
        todo!()
    }

    /// Accepts a message at `now`: checks both ids are registered, assigns the next
    /// network-wide id, draws the latency (0 when either end is a client), journals the
    /// send and enqueues it. Returns the message id.
    pub fn send(
        &mut self,
        src: &str,
        dest: &str,
        body: Value,
        now: Duration,
    ) -> Result<u64, NetError> {
        let _ = (src, dest, body, now);
        todo!()
    }

    /// The earliest time at which `poll` has work (a take or a delivery), if any.
    pub fn next_event(&self) -> Option<Duration> {
        todo!()
    }

    /// Runs every take and delivery due at or before `now`, in time order, and returns the
    /// deliveries (journaled as `recv`).
    pub fn poll(&mut self, now: Duration) -> Vec<Delivery> {
        let _ = now;
        todo!()
    }

    /// Adds a grudge (start of a partition) at `now`.
    pub fn partition(&mut self, grudge: &Grudge, now: Duration) {
        let _ = (grudge, now);
        todo!()
    }

    /// Clears every grudge (stop-partition heals everything).
    pub fn heal(&mut self, now: Duration) {
        let _ = now;
        todo!()
    }

    /// The current grudge.
    pub fn grudge(&self) -> &Grudge {
        todo!()
    }

    pub fn stats(&self) -> NetStats {
        todo!()
    }
}
