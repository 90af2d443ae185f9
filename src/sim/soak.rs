//! The soak: many seeds, each a different test drawn from every fault alone and all of them
//! together, 5 and 25 nodes, every CRDT workload and every latency distribution. What must
//! hold on every seed: valid, nothing lost, no false death. Shared by `examples/soak.rs`
//! (`make soak`) and `tests/soak.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use maelstrom::nemesis::Fault;
use maelstrom::net::LatencyDist;
use maelstrom::options::TestOptions;
use maelstrom::workload::Workload;

use super::figures::{Figures, run};
use super::mode;
use crate::config::Config;

const WORKLOADS: [Workload; 4] = [
    Workload::Broadcast,
    Workload::GSet,
    Workload::GCounter,
    Workload::PnCounter,
];

/// The fault sets: each fault alone, then all of them together.
fn fault_sets() -> Vec<Vec<Fault>> {
    let all = [
        Fault::Partition,
        Fault::Pause,
        Fault::Crash,
        Fault::LinkLoss,
        Fault::Duplicate,
    ];
    let mut sets: Vec<Vec<Fault>> = all.iter().map(|f| vec![*f]).collect();
    sets.push(all.to_vec());
    sets
}

/// The test of `seed`: consecutive seeds walk through every combination of fault set,
/// node count, workload and latency distribution.
pub fn case(seed: u64) -> TestOptions {
    let sets = fault_sets();
    let mut i = seed as usize;
    let faults = sets[i % sets.len()].clone();
    i /= sets.len();
    let nodes = [5, 25][i % 2];
    i /= 2;
    let workload = WORKLOADS[i % WORKLOADS.len()];
    i /= WORKLOADS.len();
    let dist = LatencyDist::ALL[i % LatencyDist::ALL.len()];
    let mut opts = TestOptions::new(workload, nodes);
    opts.journal = false; // no store is written
    if nodes == 5 {
        // fly.io 3c's shape, with faults every 2 s on average.
        opts.time_limit = Duration::from_secs(10);
        opts.rate = 10.0;
        opts.latency_ms = 20;
        opts.nemesis_interval = Duration::from_secs(2);
    } else {
        // The efficiency configuration, with faults every 5 s on average.
        opts.time_limit = Duration::from_secs(20);
        opts.rate = 100.0;
        opts.latency_ms = 100;
        opts.nemesis_interval = Duration::from_secs(5);
    }
    opts.latency_dist = dist;
    opts.nemesis = faults;
    opts.seed = seed;
    opts
}

/// What a soak found.
#[derive(Debug, Default)]
pub struct Tally {
    pub seeds: u64,
    pub valid: u64,
    pub lost: usize,
    pub false_deaths: usize,
    /// Each failing seed: why, and the command that replays it.
    pub failures: Vec<String>,
}

impl Tally {
    fn add(&mut self, opts: &TestOptions, f: &Figures) {
        self.seeds += 1;
        self.valid += u64::from(f.passed());
        self.lost += f.lost_count;
        self.false_deaths += f.false_deaths;
        if !f.passed() || f.false_deaths > 0 {
            self.failures.push(format!(
                "seed {}: valid {}, {} lost, {} false deaths\n  replay: {}",
                opts.seed,
                f.valid.to_json(),
                f.lost_count,
                f.false_deaths,
                opts.replay_command()
            ));
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// One line: seeds, valid, lost values, false deaths.
    pub fn summary(&self) -> String {
        format!(
            "{} seeds | valid {} | lost values {} | false deaths {} | failing seeds {}",
            self.seeds,
            self.valid,
            self.lost,
            self.false_deaths,
            self.failures.len()
        )
    }
}

/// Runs the tests of `seeds` on `jobs` threads.
pub fn soak(seeds: std::ops::Range<u64>, jobs: usize) -> Tally {
    let next = AtomicU64::new(seeds.start);
    let (results, finished) = mpsc::channel();
    let mut tally = Tally::default();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let (results, next, end) = (results.clone(), &next, seeds.end);
            scope.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    let opts = case(seed);
                    let config = Config {
                        workload: mode(opts.workload),
                        ..Config::default()
                    };
                    let f = run(&opts, &config);
                    if results.send((opts, f)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(results);
        for (opts, f) in finished {
            tally.add(&opts, &f);
        }
    });
    tally.failures.sort();
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_seeds_cover_every_combination() {
        let combos = 6 * 2 * 4 * 3;
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..combos {
            let o = case(seed);
            seen.insert((
                format!("{:?}", o.nemesis),
                o.nodes.len(),
                o.workload.name(),
                o.latency_dist.name(),
            ));
        }
        assert_eq!(seen.len() as u64, combos);
    }
}
