//! Cluster mode: the same state machine as a member of a cluster of processes speaking
//! JSON over mutually authenticated TLS connections.

pub mod backoff;
pub mod certs;
pub mod client;
pub mod client_port;
pub mod config;
pub mod frame;
pub mod local;
pub mod peer_port;
pub mod pool;
pub mod serve;
pub mod stats;
pub mod tls;
