//! The node's command line. Every flag also reads an environment variable, because real
//! Maelstrom passes only positional arguments through to a node; defaults come from
//! `Config::DEFAULT`.

use std::time::Duration;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cluster::client::ClientArgs;
use crate::cluster::config::ServeArgs;
use crate::config::{AckWhen, Config, Mode};

/// Without a command the node speaks Maelstrom's protocol on stdin and stdout.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "node",
    version,
    about = "A gossip node: a Maelstrom node on stdin/stdout, or a cluster member over TCP",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub node: Args,
}

#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Run as a member of a cluster over TCP: peers on mutual TLS, clients on a plain port.
    Serve {
        #[command(flatten)]
        serve: ServeArgs,
        #[command(flatten)]
        node: Args,
    },
    /// Write a cluster CA and a certificate and key for each node id into a directory.
    Certs {
        /// The directory to write (created if needed).
        #[arg(long)]
        out: PathBuf,
        /// Node ids, e.g. n0 n1 n2.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Send one request to a node's client port and print the reply as JSON.
    Client(ClientArgs),
}

/// The node's settings: the workload and the tunables of gossip and the failure detector.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// The workload to serve. Without it the node follows the first write it sees
    /// (`broadcast` → broadcast, `add` with `element` → g-set, `add` with `delta` →
    /// counter) and answers reads before any write as broadcast.
    #[arg(value_enum, env = "NODE_WORKLOAD")]
    pub workload: Option<Mode>,

    /// Seed of the node's random choices; default: derived from the node id.
    #[arg(long, env = "NODE_SEED")]
    pub seed: Option<u64>,

    /// When a write is answered: `peer` once another node holds the value (no acknowledged
    /// value is lost with any one node), `local` at once (lost if this node dies before
    /// passing it on; fewer messages, since the way up may then batch).
    #[arg(long, value_enum, env = "NODE_ACK_WHEN", default_value_t = AckWhen::Peer)]
    pub ack_when: AckWhen,

    /// How long a relay gathers values before it forwards them to the nodes below it.
    #[arg(long, env = "NODE_BATCH_MS", default_value_t = ms(Config::DEFAULT.batch))]
    pub batch_ms: u64,

    /// How long a node holds values before it sends them up to its parent; 0 sends each
    /// write up at once.
    #[arg(long, env = "NODE_UP_BATCH_MS", default_value_t = ms(Config::DEFAULT.up_batch))]
    pub up_batch_ms: u64,

    /// The worst time to aim for from a client's write to that value at every node. The
    /// node derives its batching, ack and heartbeat periods from it and from the round
    /// trips it measures; without it, the fixed periods above apply.
    #[arg(long, env = "NODE_LATENCY_BUDGET_MS",
          conflicts_with_all = ["batch_ms", "up_batch_ms", "ack_delay_ms", "heartbeat_ms"])]
    pub latency_budget_ms: Option<u64>,

    /// The most children a node has in the overlay while every node is up: larger
    /// clusters form a tree with more levels (at least 1).
    #[arg(long, env = "NODE_FANOUT", default_value_t = Config::DEFAULT.fanout,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..), |v| v as usize))]
    pub fanout: usize,

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

    /// Period of the gossip ticker (at least 1).
    #[arg(long, env = "NODE_GOSSIP_TICK_MS", default_value_t = ms(Config::DEFAULT.gossip_tick),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub gossip_tick_ms: u64,

    /// Period of the failure-detector ticker (at least 1).
    #[arg(long, env = "NODE_DETECT_TICK_MS", default_value_t = ms(Config::DEFAULT.detect_tick),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub detect_tick_ms: u64,

    /// At most this many bytes of values (as JSON) in one message; the rest follow in the
    /// next messages.
    #[arg(long, env = "NODE_MAX_VALUES_BYTES", default_value_t = Config::DEFAULT.max_values_bytes,
          value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(64..=(crate::cluster::frame::MAX_FRAME / 2) as u64), |v| v as usize))]
    pub max_values_bytes: usize,
}

const fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl From<Args> for Config {
    fn from(args: Args) -> Config {
        let config = Config {
            workload: args.workload,
            seed: args.seed,
            ack_when: args.ack_when,
            batch: Duration::from_millis(args.batch_ms),
            up_batch: Duration::from_millis(args.up_batch_ms),
            fanout: args.fanout,
            ack_delay: Duration::from_millis(args.ack_delay_ms),
            heartbeat: Duration::from_millis(args.heartbeat_ms),
            probe_period: Duration::from_millis(args.probe_ms),
            min_rto: Duration::from_millis(args.min_rto_ms),
            gossip_tick: Duration::from_millis(args.gossip_tick_ms),
            detect_tick: Duration::from_millis(args.detect_tick_ms),
            max_values_bytes: args.max_values_bytes,
            ..Config::DEFAULT
        };
        match args.latency_budget_ms {
            Some(budget) => config.with_budget(Duration::from_millis(budget)),
            None => config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("node").chain(args.iter().copied())).unwrap()
    }

    fn parse(args: &[&str]) -> Config {
        let cli = cli(args);
        assert!(cli.command.is_none());
        cli.node.into()
    }

    #[test]
    fn commands_and_the_maelstrom_default() {
        assert!(cli(&["broadcast"]).command.is_none());
        match cli(&[
            "serve",
            "--id",
            "n0",
            "--listen",
            "127.0.0.1:1",
            "--insecure",
            "--batch-ms",
            "50",
            "g-set",
        ])
        .command
        {
            Some(Command::Serve { serve, node }) => {
                assert_eq!(serve.id, "n0");
                let config: Config = node.into();
                assert_eq!(
                    (config.batch, config.workload),
                    (Duration::from_millis(50), Some(Mode::GSet))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cli(&["certs", "--out", "d", "n0", "n1"]).command,
            Some(Command::Certs { .. })
        ));
        assert!(matches!(
            cli(&["client", "read"]).command,
            Some(Command::Client(_))
        ));
    }

    #[test]
    fn flags_become_durations() {
        let config = parse(&["g-set", "--batch-ms", "150", "--detect-tick-ms", "5"]);
        assert_eq!(config.workload, Some(Mode::GSet));
        assert_eq!(config.batch, Duration::from_millis(150));
        assert_eq!(config.detect_tick, Duration::from_millis(5));
    }

    #[test]
    fn periods_of_zero_are_refused() {
        for flag in ["--gossip-tick-ms", "--detect-tick-ms"] {
            assert!(Cli::try_parse_from(["node", flag, "0"]).is_err(), "{flag}");
        }
        assert_eq!(
            parse(&["--max-values-bytes", "4096"]).max_values_bytes,
            4096
        );
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
