//! The runner end to end, through real processes, on fixture nodes built for the purpose.

use std::time::{Duration, Instant};

mod support;
use support::{FIXTURE, args, fixture_broadcast, run, store};

fn broadcast(mode: &str) -> Vec<String> {
    fixture_broadcast("--node-count 3 --time-limit 2 --rate 20", mode)
}

#[test]
fn a_correct_node_is_valid() {
    let (code, results) = run("correct", &args(&broadcast("broadcast")));
    let results = results.expect("results written");
    assert_eq!(code, 0, "{results:#}");
    assert_eq!(results["valid?"], true);
    assert_eq!(results["workload"]["lost-count"], 0);
    assert!(results["net"]["servers"]["msgs-per-op"].as_f64().unwrap() > 0.0);
    let store = store("correct");
    for file in [
        "history.edn",
        "history.txt",
        "results.edn",
        "jepsen.log",
        "node-logs/n0.log",
    ] {
        assert!(store.join("latest").join(file).exists(), "{file}");
    }
    assert!(store.join("broadcast/latest").exists());
}

#[test]
fn a_node_that_loses_acknowledged_values_is_invalid() {
    let (code, results) = run("lossy", &args(&broadcast("lossy")));
    let results = results.expect("results written");
    assert_eq!(code, 1);
    assert_eq!(results["valid?"], false);
    let lost = results["workload"]["lost"].as_array().unwrap();
    assert!(
        !lost.is_empty() && lost.iter().all(|v| v.as_i64().unwrap() % 2 == 1),
        "{lost:?}"
    );
}

#[test]
fn a_node_that_exits_early_crashes_the_test() {
    let (code, results) = run("exit-early", &args(&broadcast("exit-early")));
    assert_eq!(code, 255);
    assert!(results.is_none(), "no results after a crash");
    assert!(store("exit-early").join("latest/history.edn").exists());
}

#[test]
fn a_node_that_prints_a_bad_line_is_no_longer_heard() {
    let (code, results) = run(
        "bad-line",
        &[
            "-w",
            "echo",
            "--bin",
            FIXTURE,
            "--node-count",
            "1",
            "--time-limit",
            "2",
            "--rate",
            "5",
            "bad-line",
        ],
    );
    let results = results.expect("results written");
    assert_eq!(code, 1, "every echo times out: {results:#}");
    assert!(
        results["runner"]["silenced-nodes"]["n0"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
}

#[test]
fn a_node_that_never_answers_init_crashes_the_test_after_ten_seconds() {
    let start = Instant::now();
    let (code, _) = run(
        "mute",
        &["-w", "echo", "--bin", FIXTURE, "--node-count", "2", "mute"],
    );
    assert_eq!(code, 255);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(20),
        "{took:?}"
    );
}

#[test]
fn echo_and_unique_ids_fixtures_are_valid() {
    let (code, _) = run(
        "echo",
        &[
            "-w",
            "echo",
            "--bin",
            FIXTURE,
            "--node-count",
            "2",
            "--time-limit",
            "2",
            "--rate",
            "20",
            "echo",
        ],
    );
    assert_eq!(code, 0);
    let (code, results) = run(
        "unique-ids",
        &[
            "-w",
            "unique-ids",
            "--bin",
            FIXTURE,
            "--node-count",
            "3",
            "--time-limit",
            "2",
            "--rate",
            "50",
            "unique-ids",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(results.unwrap()["workload"]["duplicated-count"], 0);
}

#[test]
fn bad_command_lines_exit_254() {
    for argv in [
        vec!["-w", "nonsense", "--bin", FIXTURE],
        vec!["-w", "echo"],
        vec![
            "-w",
            "broadcast",
            "--bin",
            FIXTURE,
            "--latency-dist",
            "uniform",
        ],
        vec![
            "-w",
            "broadcast",
            "--bin",
            FIXTURE,
            "--latency-dist",
            "exponential",
            "--latency",
            "0",
        ],
        vec!["-w", "echo", "--bin", "no/such/binary"],
        vec!["-w", "echo", "--bin", FIXTURE, "--frobnicate"],
        // Our transport's options: duplication cannot happen on TCP, a restart needs tcp,
        // partition modes are the proxies'.
        vec![
            "-w",
            "broadcast",
            "--bin",
            FIXTURE,
            "--transport",
            "tcp",
            "--nemesis",
            "partition,duplicate",
        ],
        vec![
            "-w",
            "broadcast",
            "--bin",
            FIXTURE,
            "--nemesis",
            "crash-restart",
        ],
        vec![
            "-w",
            "broadcast",
            "--bin",
            FIXTURE,
            "--partition-mode",
            "reset",
        ],
        vec!["-w", "broadcast", "--bin", FIXTURE, "--transport", "udp"],
    ] {
        let mut full = vec!["maelstrom", "test"];
        full.extend(argv.iter());
        let code = maelstrom::cli::main(full.iter().map(|s| s.to_string()).collect());
        assert_eq!(code, 254, "{argv:?}");
    }
}

/// `--transport tcp` with the fixture's one-node server (`fixture-node serve`).
fn tcp(mode: &str) -> Vec<String> {
    fixture_broadcast(
        "--transport tcp --node-count 1 --time-limit 5 --rate 20",
        mode,
    )
}

#[test]
fn over_tcp_a_correct_node_is_valid_and_a_lossy_one_invalid() {
    let (code, results) = run("tcp-correct", &args(&tcp("broadcast")));
    let results = results.expect("results written");
    assert_eq!(code, 0, "{results:#}");
    assert_eq!(results["runner"]["transport"], "tcp");
    assert!(
        store("tcp-correct")
            .join("latest/node-logs/n0.log")
            .exists()
    );
    let (code, results) = run("tcp-lossy", &args(&tcp("lossy")));
    let results = results.expect("results written");
    assert_eq!(code, 1, "{results:#}");
    assert_eq!(results["valid?"], false);
    assert!(results["workload"]["lost-count"].as_u64().unwrap() > 0);
}

#[test]
fn over_tcp_a_node_that_exits_early_crashes_the_test() {
    let (code, results) = run("tcp-exit-early", &args(&tcp("exit-early")));
    assert_eq!(code, 255);
    assert!(results.is_none(), "no results for a crashed test");
    let log = std::fs::read_to_string(store("tcp-exit-early").join("latest/jepsen.log")).unwrap();
    assert!(log.contains("exited before the end of the test"), "{log}");
}
