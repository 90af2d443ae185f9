//! The drivers of the same `Harness`: real processes over stdio and over a TCP cluster
//! (both on the wall clock), and in-process state machines on a virtual clock.

pub mod group;
pub mod lines;
pub mod process;
pub mod sim;
pub mod tcp;
