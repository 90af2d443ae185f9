//! Property tests of the node's state machine: small clusters (2-5 nodes) under arbitrary
//! steps (`events.rs`), every output line checked, and every acknowledged write held by
//! every live node once the network is whole and quiet (`cluster.rs`). One test per
//! workload; docs/properties.md lists the properties.
//!
//! `PROPTEST_CASES=N` runs N cases per test instead of the default. A failure prints the
//! shrunk case as a script of steps and saves its seed in
//! `tests/properties/main.proptest-regressions`, which the next run of the same test
//! replays first.

mod cluster;
mod events;
mod schema;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use cluster::Cluster;
use events::{Case, case};
use schema::Workload;

/// Cases per test by default: three tests, over 10 000 cases in all.
const CASES: u32 = 3_400;
/// Steps per case, at most.
const MAX_STEPS: usize = 100;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

fn check(case: &Case, workload: Workload, test: &str) -> Result<(), TestCaseError> {
    Cluster::new(case, workload).run(case).map_err(|e| {
        TestCaseError::fail(format!(
            "{e}\n  case: {case:?}\n  replay: cargo test --release --test properties {test} \
             (the seed is saved in tests/properties/main.proptest-regressions)"
        ))
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn broadcast_cluster(case in case(MAX_STEPS)) {
        check(&case, Workload::Broadcast, "broadcast_cluster")?;
    }

    #[test]
    fn g_set_cluster(case in case(MAX_STEPS)) {
        check(&case, Workload::GSet, "g_set_cluster")?;
    }

    #[test]
    fn counter_cluster(case in case(MAX_STEPS)) {
        check(&case, Workload::Counter, "counter_cluster")?;
    }
}
