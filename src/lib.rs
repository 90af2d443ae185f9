//! A gossip node for Maelstrom.
//!
//! `runtime` wires four actors (stdin receiver, stdout sender, tickers, the machine task)
//! around `machine::StateMachine`, a sans-IO, deterministic state machine: it takes
//! `Event`s and the current time and returns the envelopes to send. `wire` is the
//! message format, `config` the settings (`cli` reads them from the command line). `sim`
//! (feature `sim`) runs the state machine in the runner's deterministic simulation.

pub mod cli;
pub mod cluster;
pub mod config;
pub mod crdt;
pub mod event;
pub mod gossip;
pub mod machine;
pub mod membership;
pub mod runtime;
#[cfg(feature = "sim")]
pub mod sim;
pub mod wire;
