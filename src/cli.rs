//! The node's command line. Every flag also reads an environment variable, because real
//! Maelstrom passes only positional arguments through to a node; defaults come from
//! `Config::DEFAULT`.

use std::time::Duration;

use clap::Parser;

use crate::config::{Config, Mode};

#[derive(Clone, Debug, Parser)]
#[command(name = "node", version, about = "A gossip node for Maelstrom")]
pub struct Args {
    /// The workload to serve. Without it the node follows the first write it sees
    /// (`broadcast` → broadcast, `add` with `element` → g-set, `add` with `delta` →
    /// counter) and answers reads before any write as broadcast.
    #[arg(value_enum, env = "NODE_WORKLOAD")]
    pub workload: Option<Mode>,

    /// Seed of the node's random choices; default: derived from the node id.
    #[arg(long, env = "NODE_SEED")]
    pub seed: Option<u64>,

    /// How long a relay gathers values before it forwards them to the nodes below it.
    #[arg(long, env = "NODE_BATCH_MS", default_value_t = ms(Config::DEFAULT.batch))]
    pub batch_ms: u64,

    /// How long a node may hold an acknowledgement hoping to piggyback it.
    #[arg(long, env = "NODE_ACK_DELAY_MS", default_value_t = ms(Config::DEFAULT.ack_delay))]
    pub ack_delay_ms: u64,

    /// A peer in the overlay that has been quiet this long is sent a heartbeat.
    #[arg(long, env = "NODE_HEARTBEAT_MS", default_value_t = ms(Config::DEFAULT.heartbeat))]
    pub heartbeat_ms: u64,

    /// Period of the low-rate probes of suspected and dead peers.
    #[arg(long, env = "NODE_PROBE_MS", default_value_t = ms(Config::DEFAULT.probe_period))]
    pub probe_ms: u64,

    /// Lower bound of the adaptive ack timeout (network round trip part).
    #[arg(long, env = "NODE_MIN_RTO_MS", default_value_t = ms(Config::DEFAULT.min_rto))]
    pub min_rto_ms: u64,

    /// Period of the gossip ticker.
    #[arg(long, env = "NODE_GOSSIP_TICK_MS", default_value_t = ms(Config::DEFAULT.gossip_tick))]
    pub gossip_tick_ms: u64,

    /// Period of the failure-detector ticker.
    #[arg(long, env = "NODE_DETECT_TICK_MS", default_value_t = ms(Config::DEFAULT.detect_tick))]
    pub detect_tick_ms: u64,
}

const fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl From<Args> for Config {
    fn from(args: Args) -> Config {
        Config {
            workload: args.workload,
            seed: args.seed,
            batch: Duration::from_millis(args.batch_ms),
            ack_delay: Duration::from_millis(args.ack_delay_ms),
            heartbeat: Duration::from_millis(args.heartbeat_ms),
            probe_period: Duration::from_millis(args.probe_ms),
            min_rto: Duration::from_millis(args.min_rto_ms),
            gossip_tick: Duration::from_millis(args.gossip_tick_ms),
            detect_tick: Duration::from_millis(args.detect_tick_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Args::try_parse_from(std::iter::once("node").chain(args.iter().copied()))
            .unwrap()
            .into()
    }

    #[test]
    fn flags_become_durations() {
        let config = parse(&["g-set", "--batch-ms", "150", "--detect-tick-ms", "5"]);
        assert_eq!(config.workload, Some(Mode::GSet));
        assert_eq!(config.batch, Duration::from_millis(150));
        assert_eq!(config.detect_tick, Duration::from_millis(5));
    }

    #[test]
    fn no_flags_give_the_defaults() {
        // The flags fall back to `NODE_*` variables: only meaningful without them.
        if std::env::vars().any(|(k, _)| k.starts_with("NODE_")) {
            return;
        }
        assert_eq!(parse(&[]), Config::default());
    }
}
