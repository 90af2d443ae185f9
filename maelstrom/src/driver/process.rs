//! The wall-clock driver: real node processes.
