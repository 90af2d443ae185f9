//! Our node in the runner's deterministic simulation, shared by the tests and
//! `examples/simulate.rs` (feature `sim`): the state machine as a `SimNode` (`node`), one
//! measured run with the failure detector's figures (`figures`), seed sweeps that print
//! replay commands (`sweep`), and hand-built client requests for tests that drive one state
//! machine directly (`requests`), the soak over every fault and workload (`soak`), and the
//! bundled runner in this process for the tests that run real processes (`runner`).

pub mod figures;
mod node;
pub mod phases;
pub mod requests;
pub mod runner;
pub mod soak;
pub mod sweep;

pub use node::{Kind, NodeSim, Sent, Ticks, Wire, mode};
