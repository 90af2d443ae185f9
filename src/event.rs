//! What drives the state machine: messages from stdin, triggers from ticker tasks, and
//! lines that could not be understood.

use std::time::Duration;

use crate::protocol::{Envelope, ErrorCode};

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An envelope read from stdin.
    Message(Envelope),
    /// A tick from one of the ticker tasks.
    Trigger(Trigger),
    /// A line that could not be turned into an `Envelope`; answered with an `error` when
    /// its `src` and `msg_id` could be read.
    Rejected(Rejected),
}

/// Periodic work, injected by ticker tasks (and by timer events in simulations).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Send what is due: batches, owed acks, heartbeats.
    Gossip,
    /// Failure detection: ack timeouts (strikes), probes.
    Detect,
}

/// A line the receiver could not parse into an envelope, with what could be recovered.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub src: Option<String>,
    pub dest: Option<String>,
    pub msg_id: Option<u64>,
    pub code: ErrorCode,
    pub text: String,
}

/// How often each trigger fires.
pub type Schedule = Vec<(Trigger, Duration)>;
