//! The state machine: owns all state, does no I/O, reads no clock; time is passed in and
//! randomness comes from a seeded RNG, so whole clusters can be simulated and replayed.

use std::time::Duration;

use crate::config::Config;
use crate::event::{Event, Schedule, Trigger};
use crate::protocol::Envelope;

pub struct StateMachine {
    config: Config,
}

impl StateMachine {
    pub fn new(config: Config) -> Self {
        StateMachine { config }
    }

    /// The tickers the runtime (or a simulation) must run, with their periods.
    pub fn schedule(&self) -> Schedule {
        vec![
            (Trigger::Gossip, Config::ms(self.config.gossip_tick_ms)),
            (Trigger::Detect, Config::ms(self.config.detect_tick_ms)),
        ]
    }

    /// Handles one event at time `now` (time since the node started) and returns the
    /// envelopes to write, in order.
    pub fn handle(&mut self, event: Event, now: Duration) -> Vec<Envelope> {
        let _ = (event, now);
        Vec::new()
    }
}
