//! Everything that defines a test run, with Maelstrom's defaults.

use std::time::Duration;

use crate::checker::Availability;
use crate::nemesis::{Fault, Faults};
use crate::net::{LatencyDist, Lossy};
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
    /// Ours, for tests: a lossy, reordering network for a while (see `Lossy`).
    pub lossy: Option<Lossy>,
    /// Ours: the node the crash fault kills (while it is up), instead of a random one.
    pub crash_target: Option<String>,
    /// Keep the first messages for the report's message diagram (`crate::net::journal`);
    /// a simulation that writes no store turns it off.
    pub journal: bool,
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
            lossy: None,
            crash_target: None,
            journal: true,
        }
    }
}

impl TestOptions {
    /// The command that replays this run, seed included, in simulation
    /// (`examples/simulate.rs`): node count, timing, network, nemesis and workload.
    pub fn replay_command(&self) -> String {
        let mut lossy = match self.lossy {
            Some(lossy) => format!(" --lossy {lossy}"),
            None => String::new(),
        };
        if let Some(target) = &self.crash_target {
            lossy.push_str(&format!(" --crash-target {target}"));
        }
        format!(
            "cargo run --release --example simulate -- --nodes {} --seed {} --time-limit {} --rate {} --latency {} --latency-dist {} --nemesis {} --nemesis-interval {} --workload {}{lossy}",
            self.nodes.len(),
            self.seed,
            self.time_limit.as_secs(),
            self.rate,
            self.latency_ms,
            self.latency_dist,
            Faults(self.nemesis.clone()),
            self.nemesis_interval.as_secs_f64(),
            self.workload.name(),
        )
    }
}

/// The network's options that the runner's command line and `examples/simulate.rs` share
/// (`#[command(flatten)]`): the latency distribution and the nemesis. (`--latency` is not
/// among them: its default differs.)
#[derive(clap::Args, Clone, Debug)]
pub struct NetworkArgs {
    /// constant, uniform or exponential, around --latency.
    #[arg(long, default_value = "constant")]
    pub latency_dist: LatencyDist,
    /// Comma-separated faults: partition (Maelstrom's); pause, crash, crash-restart,
    /// link-loss, duplicate, starve (a node stopped and resumed every few tens of ms) and
    /// stall-output (its stdout not read) are ours; none for no nemesis.
    #[arg(long, default_value = "none")]
    pub nemesis: Faults,
    /// Mean seconds between nemesis ops.
    #[arg(long, default_value_t = 10.0)]
    pub nemesis_interval: f64,
    /// Ours: the node the crash fault kills, instead of a random live one (e.g. the
    /// busiest node of the overlay).
    #[arg(long)]
    pub crash_target: Option<String>,
}

impl NetworkArgs {
    /// Sets these options on `opts`; the nemesis interval must be positive.
    pub fn apply(&self, opts: &mut TestOptions) -> Result<(), String> {
        if !(self.nemesis_interval.is_finite() && self.nemesis_interval > 0.0) {
            return Err("--nemesis-interval must be positive".into());
        }
        opts.latency_dist = self.latency_dist;
        opts.nemesis = self.nemesis.0.clone();
        opts.nemesis_interval = Duration::from_secs_f64(self.nemesis_interval);
        if let Some(target) = &self.crash_target
            && !opts.nodes.contains(target)
        {
            return Err(format!("--crash-target {target} is not one of the nodes"));
        }
        opts.crash_target = self.crash_target.clone();
        Ok(())
    }
}
