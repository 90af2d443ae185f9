//! The node's command line: the workload it serves and the tunables of gossip and the
//! failure detector. Every flag also reads an environment variable, because real
//! Maelstrom passes only positional arguments through to a node.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Which CRDT the node serves; `read_ok` differs between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `broadcast` / `read` → `messages` (a grow-only set).
    Broadcast,
    /// `add element` / `read` → `value` array.
    #[value(name = "g-set")]
    GSet,
    /// `add delta` / `read` → `value` integer (g-counter and pn-counter).
    #[value(name = "g-counter", alias = "pn-counter", alias = "counter")]
    Counter,
}

#[derive(Clone, Debug, Parser)]
#[command(name = "node", version, about = "A gossip node for Maelstrom")]
pub struct Config {
    /// The workload to serve. Without it the node follows the first write it sees
    /// (`broadcast` → broadcast, `add` with `element` → g-set, `add` with `delta` →
    /// counter) and answers reads before any write as broadcast.
    #[arg(value_enum, env = "NODE_WORKLOAD")]
    pub workload: Option<Mode>,

    /// Seed of the node's random choices; default: derived from the node id.
    #[arg(long, env = "NODE_SEED")]
    pub seed: Option<u64>,

    /// How long a relay gathers values before it forwards them to the nodes below it.
    #[arg(long, env = "NODE_BATCH_MS", default_value_t = 200)]
    pub batch_ms: u64,

    /// How long a node may hold an acknowledgement hoping to piggyback it.
    #[arg(long, env = "NODE_ACK_DELAY_MS", default_value_t = 400)]
    pub ack_delay_ms: u64,

    /// A peer in the overlay that has been quiet this long is sent a heartbeat.
    #[arg(long, env = "NODE_HEARTBEAT_MS", default_value_t = 1000)]
    pub heartbeat_ms: u64,

    /// Period of the low-rate probes of suspected and dead peers.
    #[arg(long, env = "NODE_PROBE_MS", default_value_t = 1000)]
    pub probe_ms: u64,

    /// Lower bound of the adaptive ack timeout (network round trip part).
    #[arg(long, env = "NODE_MIN_RTO_MS", default_value_t = 250)]
    pub min_rto_ms: u64,

    /// Period of the gossip ticker.
    #[arg(long, env = "NODE_GOSSIP_TICK_MS", default_value_t = 10)]
    pub gossip_tick_ms: u64,

    /// Period of the failure-detector ticker.
    #[arg(long, env = "NODE_DETECT_TICK_MS", default_value_t = 25)]
    pub detect_tick_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["node"])
    }
}

impl Config {
    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}
