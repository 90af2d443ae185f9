//! Seed sweeps shared by the simulation tests: options for a run, and a sweep that fails
//! with every bad seed's replay command.

use std::time::Duration;

use maelstrom::nemesis::Fault;
use maelstrom::options::TestOptions;
use maelstrom::workload::Workload;

use super::figures::{Figures, run};
use crate::config::Config;

/// A broadcast test: node count, time limit (s), rate (ops/s), latency (ms), faults.
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
    opts.journal = false; // no store is written
    opts
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
        let verdict = if !f.passed() {
            Err(format!(
                "valid {} with {} lost",
                f.valid.to_json(),
                f.lost_count
            ))
        } else {
            check(&f)
        };
        if let Err(why) = verdict {
            failures.push(format!(
                "seed {seed}: {why}\n  replay: {}",
                opts.replay_command()
            ));
        }
        all.push(f);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    all
}
