//! Seed sweeps shared by the simulation tests: options for a run, the command that replays
//! a seed, and a sweep that fails with every bad seed's replay command.

use std::time::Duration;

use maelstrom::nemesis::Fault;
use maelstrom::options::TestOptions;
use maelstrom::workload::Workload;
use node::config::Config;
use serde_json::json;

use super::figures::{Figures, run};

pub fn options(
    nodes: usize,
    time_limit: u64,
    rate: f64,
    latency: u64,
    nemesis: &[Fault],
) -> TestOptions {
    let mut opts = TestOptions::new(Workload::Broadcast, nodes);
    opts.time_limit = Duration::from_secs(time_limit);
    opts.rate = rate;
    opts.latency_ms = latency;
    opts.nemesis = nemesis.to_vec();
    opts
}

pub fn replay(opts: &TestOptions, seed: u64) -> String {
    let nemesis: Vec<&str> = opts.nemesis.iter().map(|f| f.name()).collect();
    format!(
        "cargo run --release --example simulate -- --nodes {} --seed {seed} --time-limit {} --rate {} --latency {} --latency-dist {} --nemesis {} --nemesis-interval {}",
        opts.nodes.len(),
        opts.time_limit.as_secs(),
        opts.rate,
        opts.latency_ms,
        format!("{:?}", opts.latency_dist).to_lowercase(),
        if nemesis.is_empty() {
            "none".to_string()
        } else {
            nemesis.join(",")
        },
        opts.nemesis_interval.as_secs_f64()
    )
}

/// Runs `seeds` and fails with every bad seed's replay command.
pub fn sweep(
    mut opts: TestOptions,
    seeds: std::ops::Range<u64>,
    check: impl Fn(&Figures) -> Result<(), String>,
) -> Vec<Figures> {
    let mut failures = Vec::new();
    let mut all = Vec::new();
    for seed in seeds {
        opts.seed = seed;
        let f = run(&opts, &Config::default());
        let verdict = if f.valid != json!(true) || f.lost_count > 0 {
            Err(format!("valid {} with {} lost", f.valid, f.lost_count))
        } else {
            check(&f)
        };
        if let Err(why) = verdict {
            failures.push(format!(
                "seed {seed}: {why}\n  replay: {}",
                replay(&opts, seed)
            ));
        }
        all.push(f);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    all
}
