//! Everything that defines a test run, with Maelstrom's defaults.

use std::time::Duration;

use crate::checker::Availability;
use crate::nemesis::Fault;
use crate::net::LatencyDist;
use crate::topology::Topology;
use crate::workload::Workload;

/// Everything that defines a test run.
#[derive(Clone, Debug)]
pub struct TestOptions {
    pub workload: Workload,
    pub nodes: Vec<String>,
    pub time_limit: Duration,
    /// Client ops per second, across all clients.
    pub rate: f64,
    /// Worker threads.
    pub concurrency: usize,
    pub latency_ms: u64,
    pub latency_dist: LatencyDist,
    pub nemesis: Vec<Fault>,
    pub nemesis_interval: Duration,
    pub topology: Topology,
    pub availability: Option<Availability>,
    pub log_net_send: bool,
    pub log_net_recv: bool,
    pub seed: u64,
}

impl TestOptions {
    /// Maelstrom's defaults for a workload and node count.
    pub fn new(workload: Workload, node_count: usize) -> Self {
        TestOptions {
            workload,
            nodes: (0..node_count).map(|i| format!("n{i}")).collect(),
            time_limit: Duration::from_secs(60),
            rate: 5.0,
            concurrency: node_count,
            latency_ms: 0,
            latency_dist: LatencyDist::Constant,
            nemesis: Vec::new(),
            nemesis_interval: Duration::from_secs(10),
            topology: Topology::Grid,
            availability: None,
            log_net_send: false,
            log_net_recv: false,
            seed: 0,
        }
    }
}
