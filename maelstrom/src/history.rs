//! The history of a test: Jepsen-style operations (invoke, then ok/fail/info), with
//! times in nanoseconds since the history's time origin (spec 5.3).

use crate::edn::Edn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl OpType {
    pub fn name(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

/// Who performed an operation: a worker process (its number changes after an `:info`
/// completion, spec 5.2) or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Worker(u64),
    Nemesis,
}

/// One history entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Position in the history, from 0.
    pub index: u64,
    /// Nanoseconds since the history's time origin.
    pub time: u64,
    pub process: Process,
    pub kind: OpType,
    /// The op's function without the colon: `broadcast`, `read`, `add`, `echo`,
    /// `generate`, `start-partition`, ...
    pub f: String,
    /// The op's value (`Edn::Nil` when absent).
    pub value: Edn,
    /// `:error`, when the op failed or is indeterminate.
    pub error: Option<Edn>,
    /// `:final? true` on final reads (broadcast, counters).
    pub final_read: bool,
    /// `:exception` text for indeterminate ops caused by an exception (spec 5.4).
    pub exception: Option<String>,
}

impl Op {
    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Worker(_))
    }
}

/// A whole history, in order.
pub type History = Vec<Op>;
