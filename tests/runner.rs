//! Our node through the bundled runner, as real processes: short versions of fly.io's
//! 3a, 3b and 3c, the echo and unique-ids workloads, and a hundred nodes.

use std::path::Path;

use node::sim::runner;
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_node");

/// Runs `maelstrom test --bin <our node>` with `args`; returns the exit code and results.
fn run(name: &str, args: &str) -> (i32, Value) {
    let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("runner-{name}"));
    let run = runner::test(NODE, &store, args);
    (run.code, run.results)
}

fn assert_valid(name: &str, args: &str) -> Value {
    let (code, results) = run(name, args);
    assert_eq!(code, 0, "{name}: {:#}", results["workload"]);
    assert_eq!(results["valid?"], true);
    results
}

/// `assert_valid` for a broadcast run, which must also have lost nothing.
fn assert_nothing_lost(name: &str, args: &str) -> Value {
    let results = assert_valid(name, args);
    assert_eq!(results["workload"]["lost-count"], 0, "{name}");
    results
}

#[test]
fn fly_3a_single_node() {
    let r = assert_nothing_lost("3a", "-w broadcast --node-count 1 --time-limit 5 --rate 10");
    assert_eq!(
        r["net"]["servers"]["msg-count"], 0,
        "one node talks to no one"
    );
}

#[test]
fn fly_3b_five_nodes() {
    assert_nothing_lost("3b", "-w broadcast --node-count 5 --time-limit 5 --rate 10");
}

#[test]
fn fly_3c_five_nodes_with_partitions() {
    assert_nothing_lost(
        "3c",
        "-w broadcast --node-count 5 --time-limit 5 --rate 10 --nemesis partition --nemesis-interval 1",
    );
}

#[test]
fn echo_and_unique_ids() {
    assert_valid("echo", "-w echo --node-count 1 --time-limit 3 --rate 20");
    let r = assert_valid(
        "unique-ids",
        "-w unique-ids --node-count 3 --time-limit 3 --rate 200 --availability total --nemesis partition",
    );
    assert_eq!(r["workload"]["duplicated-count"], 0);
}

#[test]
fn other_crdt_workloads_with_and_without_partitions() {
    for workload in ["g-set", "g-counter", "pn-counter"] {
        for (i, nemesis) in ["", "--nemesis partition --nemesis-interval 1"]
            .into_iter()
            .enumerate()
        {
            let args = format!(
                "-w {workload} {workload} --node-count 5 --time-limit 5 --rate 10 {nemesis}"
            );
            let (code, results) = run(&format!("{workload}-{i}"), &args);
            assert_eq!(code, 0, "{workload} {nemesis:?}: {:#}", results["workload"]);
        }
    }
}

#[test]
fn our_pause_fault_through_real_processes() {
    assert_nothing_lost(
        "pause",
        "-w broadcast --node-count 5 --time-limit 6 --rate 10 --nemesis pause,partition --nemesis-interval 2",
    );
}

/// A node killed for good while partitioned from its parent: nothing it acknowledged may
/// be lost (README, "Acknowledged writes"). Seed 5 lost 4 values when writes were
/// acknowledged before any peer held them.
#[test]
fn no_acknowledged_value_is_lost_to_a_crash_over_stdio() {
    assert_nothing_lost(
        "crash",
        "-w broadcast --node-count 5 --time-limit 10 --rate 50 --nemesis crash,partition --nemesis-interval 1 --seed 5",
    );
}

/// A hundred nodes as real processes (the scale the overlay's tree is built for): every
/// value reaches every node and none is lost. `docs/performance.md` has the 20 s figures.
#[test]
fn a_hundred_nodes_stay_valid() {
    let r = assert_nothing_lost(
        "hundred",
        "-w broadcast --node-count 100 --time-limit 10 --rate 100 --latency 100 --seed 1",
    );
    assert!(r["workload"]["stable-count"].as_u64().unwrap() > 0);
}

/// The simulation stands in for the runner when searching seeds, so the two must agree:
/// at fly.io's efficiency configuration (10 s), the runner's msgs-per-op is within 15% of
/// the simulation's mean over five seeds (`make fidelity` prints both at 20 s).
#[test]
fn simulation_and_runner_agree_on_msgs_per_op() {
    let r = assert_valid(
        "fidelity",
        "-w broadcast --node-count 25 --time-limit 10 --rate 100 --latency 100 --seed 1",
    );
    let runner = r["net"]["servers"]["msgs-per-op"].as_f64().unwrap();
    let mut opts = node::sim::sweep::options(25, 10, 100.0, 100, &[]);
    let simulated: Vec<f64> = (0..5)
        .map(|seed| {
            opts.seed = seed;
            node::sim::figures::run(&opts, &node::config::Config::default()).msgs_per_op
        })
        .collect();
    let mean = simulated.iter().sum::<f64>() / simulated.len() as f64;
    eprintln!("msgs-per-op: runner {runner:.3}, simulation {simulated:.3?} (mean {mean:.3})");
    assert!(
        (runner - mean).abs() <= 0.15 * mean,
        "runner {runner:.3} and simulation {mean:.3} differ by more than 15%"
    );
}
