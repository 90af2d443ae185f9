//! A JVM-free, Maelstrom-compatible test runner.
//!
//! One deterministic model of a Maelstrom test (network, nemesis, workload generator,
//! clients, checkers), driven by two drivers: real processes on the wall clock
//! (`driver::process`) and in-process state machines on a virtual clock (`driver::sim`).
//! The behaviour follows `shared/maelstrom-spec.md`, section by section.

pub mod checker;
pub mod cli;
pub mod driver;
pub mod edn;
pub mod harness;
pub mod history;
pub mod message;
pub mod nemesis;
pub mod net;
pub mod options;
pub mod record;
pub mod schedule;
pub mod store;
pub mod summary;
pub mod topology;
pub mod workload;
