//! A JVM-free, Maelstrom-compatible test runner.
//!
//! One deterministic model of a Maelstrom test (network, nemesis, workload generator,
//! clients, checkers), driven by two drivers: real processes on the wall clock
//! (`driver::process`) and in-process state machines on a virtual clock (`driver::sim`).
//! What it reproduces of real Maelstrom, and where ours differs, is in
//! `docs/maelstrom-compatibility.md`; the code cites its sections by number.

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
pub mod report;
pub mod schedule;
pub mod store;
pub mod summary;
pub mod topology;
pub mod workload;
