//! The soak in CI: 1000 seeds (`SOAK_SEEDS` for more), each a test drawn from every fault
//! alone and together, 5 and 25 nodes, every CRDT workload and latency distribution
//! (`node::sim::soak`). Every seed valid, nothing lost, no false death; a failure prints the
//! seed and the command that replays it.

use node::sim::soak::soak;

#[test]
fn a_thousand_seeds_of_every_fault_and_workload() {
    let seeds = std::env::var("SOAK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tally = soak(0..seeds, jobs);
    println!("{}", tally.summary());
    assert!(
        tally.passed(),
        "{}\n{}",
        tally.summary(),
        tally.failures.join("\n")
    );
    assert_eq!(tally.seeds, seeds);
}
