//! Our node through the bundled runner over `--transport tcp`: a TLS cluster of `node
//! serve` processes on loopback, faults injected by the runner's proxies and signals. Short
//! runs (3 nodes, 6 s, a nemesis op every 2 s), judged by the same checkers as over stdio.

use std::path::Path;

use node::sim::runner;
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_node");

/// Runs `maelstrom test --transport tcp --bin <our node>` with `args`, seed printed;
/// returns the exit code and results.
fn run(name: &str, args: &str) -> (i32, Value) {
    let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("runner-tcp-{name}"));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    eprintln!("{name}: --seed {seed}");
    let args = format!(
        "--transport tcp --seed {seed} --node-count 3 --time-limit 6 --rate 20 \
         --nemesis-interval 2 {args}"
    );
    let run = runner::test(NODE, &store, &args);
    (run.code, run.results)
}

fn assert_valid(name: &str, args: &str) -> Value {
    let (code, results) = run(name, args);
    assert_eq!(code, 0, "{name}: {:#}", results["workload"]);
    assert_eq!(results["valid?"], true);
    // (Counters have no lost values to count: their checker bounds the reads.)
    if !results["workload"]["lost-count"].is_null() {
        assert_eq!(results["workload"]["lost-count"], 0, "{name}");
    }
    let servers = &results["net"]["servers"];
    assert!(
        servers["msg-count"].as_u64().unwrap() > 0,
        "{name}: the nodes' own counters fill :net: {servers}"
    );
    assert_eq!(results["runner"]["transport"], "tcp");
    assert!(results["runner"]["proxy"]["bytes"].as_u64().unwrap() > 0);
    let ok = results["stats"]["ok-count"].as_u64().unwrap();
    assert!(ok > 20, "{name}: {ok} ops ok");
    results
}

#[test]
fn broadcast_with_partitions_holding_bytes() {
    let r = assert_valid("hold", "-w broadcast --nemesis partition --latency 10");
    assert_eq!(r["runner"]["proxy"]["mode"], "hold");
}

#[test]
fn broadcast_with_partitions_resetting_connections() {
    let r = assert_valid(
        "reset",
        "-w broadcast --nemesis partition --partition-mode reset",
    );
    assert_eq!(r["runner"]["proxy"]["mode"], "reset");
}

#[test]
fn g_set_with_partitions_in_both_modes() {
    for mode in ["hold", "reset"] {
        assert_valid(
            &format!("g-set-{mode}"),
            &format!("-w g-set g-set --nemesis partition --partition-mode {mode}"),
        );
    }
}

#[test]
fn broadcast_with_pauses_and_crashes() {
    for fault in ["pause", "crash"] {
        assert_valid(fault, &format!("-w broadcast --nemesis {fault}"));
    }
}

#[test]
fn broadcast_g_set_and_pn_counter_with_crash_restarts() {
    // pn-counter: a restarted node's new adds must not vanish under the totals its last
    // life made (src/machine/client.rs).
    for workload in ["broadcast", "g-set", "pn-counter"] {
        let r = assert_valid(
            &format!("crash-restart-{workload}"),
            &format!("-w {workload} {workload} --nemesis crash-restart"),
        );
        let lives: u64 = r["runner"]["node-stats"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n["lives"].as_u64().unwrap())
            .sum();
        assert!(
            lives > 3,
            "{workload}: some node was started again: {lives}"
        );
    }
}
