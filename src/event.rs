//! What drives the state machine: messages, ticks, and lines that could not be
//! understood. The machine does not know where they come from (stdin, a socket, a
//! simulation), so a new transport adds variants here and handlers in `machine`.

use std::time::Duration;

use crate::wire::{self, Envelope, Rejected};

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A message read from the transport.
    Message(Envelope),
    /// A tick from one of the ticker tasks.
    Trigger(Trigger),
    /// A line that could not be turned into an `Envelope`; answered with an `error` when
    /// its `src` and `msg_id` could be read.
    Rejected(Rejected),
    /// The transport could not reach this peer: a connection refused, reset or timed out.
    /// Only a hint for the failure detector (see `machine::node`), never a verdict.
    Unreachable(String),
    /// The transport has a new connection with this peer, dialed or accepted: what was
    /// sent to the peer before it may have waited for it (see `gossip::Link::connected`).
    Connected(String),
}

impl Event {
    /// The event one input line (without its newline) stands for.
    pub fn from_line(line: &[u8]) -> Event {
        match wire::parse_line(line) {
            Ok(envelope) => Event::Message(envelope),
            Err(rejected) => Event::Rejected(rejected),
        }
    }
}

/// Periodic work, injected by ticker tasks (and by timer events in simulations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Send what is due: batches, owed acks, heartbeats.
    Gossip,
    /// Failure detection: ack timeouts (strikes), probes.
    Detect,
}

/// How often each trigger fires.
pub type Schedule = Vec<(Trigger, Duration)>;
