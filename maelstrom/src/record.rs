//! What a run produces as it goes, and what its parts act through: the history, the
//! runner's log and the actions for the driver (`Record`), and, with the clock, the
//! network and the random source, the `Env` that the clients and the nemesis are handed.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::edn::Edn;
use crate::history::{History, Op, OpType, Process};
use crate::message::Message;
use crate::net::{Grudge, Network};

/// What the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Write this message to the node's stdin (it was due at `due`).
    Deliver {
        node: String,
        message: Message,
        due: Duration,
    },
    /// Stop these nodes (SIGSTOP) / let them go on (SIGCONT).
    Pause(Vec<String>),
    Resume(Vec<String>),
    /// Stop reading this node's stdout until `DrainOutput` (our stall-output fault): its
    /// pipe fills and its writes block. Drivers without a node stdout ignore it.
    StallOutput(String),
    DrainOutput(String),
    /// Kill this node (our crash faults): for good, unless a `Restart` follows.
    Kill(String),
    /// Start this killed node again, empty, with the same id (our crash-restart fault).
    Restart(String),
    /// A partition started (the network applies it; drivers need do nothing).
    Partition(Grudge),
    /// Every partition healed (likewise informational).
    Heal,
    /// One-way link loss started / every lost link came back (informational).
    LoseLinks(Grudge),
    RestoreLinks,
    /// The test is over: check the nodes are alive and kill them.
    Teardown,
}

/// A node's view of a peer changed, at a time since the test started: `status` is
/// `alive`, `doubted`, `suspected` or `dead` (lower case, as `membership.svg` draws them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    pub time: Duration,
    pub observer: String,
    pub peer: String,
    pub status: String,
}

/// The history (times from `origin`), the log lines and the actions not yet handed out.
#[derive(Debug, Default)]
pub struct Record {
    pub history: History,
    /// Sim-time of the history's origin.
    pub origin: Duration,
    pub log: Vec<String>,
    pub actions: Vec<Action>,
    /// `--log-net-send`: log every message the network accepts.
    pub log_sends: bool,
}

/// What the clients and the nemesis act through: the clock, the network, the random
/// source of the test's choices, and the record.
pub struct Env {
    pub now: Duration,
    pub net: Network,
    /// Every random choice of the clients (the network and the nemesis draw their own).
    pub rng: ChaCha8Rng,
    pub record: Record,
}

impl Env {
    /// A line for the runner's log, stamped with the time.
    pub fn note(&mut self, line: String) {
        self.record
            .log
            .push(format!("{:>10.3}s {line}", self.now.as_secs_f64()));
    }

    pub fn act(&mut self, action: Action) {
        self.record.actions.push(action);
    }

    /// Appends an op to the history; the caller fills in the rest of it.
    pub fn op(&mut self, process: Process, kind: OpType, f: &str, value: Edn) -> &mut Op {
        let history = &mut self.record.history;
        history.push(Op {
            index: history.len() as u64,
            time: (self.now.saturating_sub(self.record.origin)).as_nanos() as u64,
            process,
            kind,
            f: f.to_string(),
            value,
            error: None,
            final_read: false,
            exception: None,
        });
        history.last_mut().expect("pushed")
    }

    /// Hands a message to the network (a refusal is logged: the sender is one of ours).
    pub fn send(&mut self, src: &str, dest: &str, body: Value) {
        match self.net.send(src, dest, body, self.now) {
            Ok(id) => self.sent(id, src, dest),
            Err(e) => self.note(format!("WARN {e}")),
        }
    }

    /// Logs an accepted message, if asked to.
    pub fn sent(&mut self, id: u64, src: &str, dest: &str) {
        if self.record.log_sends {
            self.note(format!(":send {{:id {id}, :src {src:?}, :dest {dest:?}}}"));
        }
    }
}
