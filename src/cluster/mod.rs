//! Cluster mode: the same state machine as a member of a cluster of processes speaking
//! JSON over mutually authenticated TLS connections.

pub mod backoff;
pub mod certs;
pub mod client;
pub mod config;
pub mod frame;
pub mod pool;
pub mod tls;
