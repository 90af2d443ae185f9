//! The two drivers of the same `Harness`: real processes on the wall clock, and
//! in-process state machines on a virtual clock.

pub mod process;
pub mod sim;
