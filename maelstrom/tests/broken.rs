//! Nodes that misbehave on purpose (the broken modes of `fixture-node`), over stdio and over
//! TCP: the runner must judge each as Maelstrom would, end in bounded time, stay within
//! bounded memory, and leave no process of the run behind
//! (docs/maelstrom-compatibility.md 2.6). The runner runs as a child process so that its
//! own peak memory can be measured; each run's figures are printed.

use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{FIXTURE, Measured, processes_with, run_measured};

const TIME_LIMIT: u64 = 2;

/// The runner ends within the time limit plus the last op's timeout (5 s) and teardown
/// (5 s at most, 2 s more over TCP for the last `stats`), with a little for starting the
/// nodes and writing the report: the bound these tests hold it to.
const END_WITHIN: Duration = Duration::from_secs(TIME_LIMIT + 5 + 7 + 3);

/// The runner's peak resident memory, for two nodes: per node 8 MiB of lines in flight and
/// 8 MiB queued for its stdin, copies of them, and the runner itself. Without the bounds a
/// 100 MiB line alone took over 300 MiB, and a flood grew without end.
const PEAK_RSS_KB: u64 = 256 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Transport {
    Stdio,
    Tcp,
}

/// Runs `-w echo` against `mode` and checks the bounds every broken node must keep.
fn judge(name: &str, transport: Transport, mode: &str, nodes: usize) -> Measured {
    let marker = format!("broken-{name}-{}", std::process::id());
    let nodes = nodes.to_string();
    let time_limit = TIME_LIMIT.to_string();
    let mut argv = vec![
        "-w",
        "echo",
        "--bin",
        FIXTURE,
        "--node-count",
        &nodes,
        "--time-limit",
        &time_limit,
        "--rate",
        "10",
    ];
    if transport == Transport::Tcp {
        argv.extend(["--transport", "tcp"]);
    }
    argv.extend([mode, &marker]);
    let run = run_measured(name, &argv, END_WITHIN + Duration::from_secs(30));
    println!(
        "{name}: exit {}, wall {:.1} s, runner peak RSS {} MiB (console: {})",
        run.code,
        run.wall.as_secs_f64(),
        run.peak_rss_kb / 1024,
        run.console.display()
    );
    assert!(run.wall < END_WITHIN, "{name} took {:?}", run.wall);
    assert!(
        run.peak_rss_kb < PEAK_RSS_KB,
        "{name}: the runner peaked at {} KiB",
        run.peak_rss_kb
    );
    // Killed processes may take a moment to be gone; children of a killed node are
    // reaped by whoever adopts them.
    all_gone(&marker, name);
    run
}

/// Every process carrying `marker` is gone within 3 s.
fn all_gone(marker: &str, what: &str) {
    let since = Instant::now();
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            since.elapsed() < Duration::from_secs(3),
            "{what}: still running:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn results(run: &Measured) -> &Value {
    run.results.as_ref().expect("results written")
}

fn silenced<'a>(run: &'a Measured, node: &str) -> &'a str {
    results(run)["runner"]["silenced-nodes"][node]
        .as_str()
        .unwrap_or_else(|| panic!("{node} not silenced: {:#}", results(run)["runner"]))
}

#[test]
fn a_flood_of_valid_messages_is_taken_at_the_runners_pace() {
    let run = judge("flood", Transport::Stdio, "flood", 1);
    assert_eq!(run.code, 0, "{:#}", results(&run));
    let sent = results(&run)["net"]["all"]["send-count"].as_f64().unwrap();
    println!(
        "flood: the network took {:.0} MB/s of 1 KiB messages",
        sent * 1024.0 / run.wall.as_secs_f64() / 1e6
    );
    assert!(sent > 10_000.0, "{sent} messages: no flood");

    let run = judge("flood-unknown", Transport::Stdio, "flood-unknown", 2);
    assert_eq!(run.code, 1, "every echo times out");
    assert!(silenced(&run, "n0").contains("Invalid dest"));
}

#[test]
fn a_line_of_100_mib_silences_its_node() {
    let run = judge("long-line", Transport::Stdio, "long-line", 1);
    assert_eq!(run.code, 1);
    let why = silenced(&run, "n0");
    assert!(why.contains("longer than the runner's limit"), "{why}");
}

#[test]
fn a_node_that_stops_reading_cannot_block_the_runner() {
    let run = judge("deaf", Transport::Stdio, "deaf", 2);
    assert_eq!(run.code, 1, "every echo times out");
    let undelivered = results(&run)["runner"]["nodes"]["n0"]["undelivered"]
        .as_u64()
        .unwrap_or(0);
    assert!(undelivered > 0, "{:#}", results(&run)["runner"]);
}

#[test]
fn a_node_that_never_reads_fails_its_init() {
    let run = judge("never-reads", Transport::Stdio, "never-reads", 2);
    assert_eq!(run.code, 255, "init times out");
    assert!(run.wall >= Duration::from_secs(10), "{:?}", run.wall);
}

#[test]
fn replies_twice_to_no_request_or_in_another_name_are_taken_as_maelstrom_does() {
    for mode in ["replies-twice", "unknown-reply", "wrong-src"] {
        let run = judge(mode, Transport::Stdio, mode, 2);
        assert_eq!(run.code, 0, "{mode}: {:#}", results(&run));
    }
}

#[test]
fn a_node_that_closes_stdout_and_runs_on_is_judged_not_crashed() {
    let run = judge("close-stdout", Transport::Stdio, "close-stdout", 1);
    assert_eq!(run.code, 1, "every echo times out, and the node is alive");
    assert_eq!(results(&run)["valid?"], false);
}

#[test]
fn children_of_a_node_die_with_it() {
    let run = judge("fork-child", Transport::Stdio, "fork-child", 2);
    assert_eq!(run.code, 0, "{:#}", results(&run));
    // The node exits 1 s after init while its child holds its pipes open: found anyway.
    let run = judge("fork-exit", Transport::Stdio, "fork-exit", 2);
    assert_eq!(run.code, 255);
    assert!(run.results.is_none(), "a crash writes no results");
    assert!(run.wall < Duration::from_secs(5), "{:?}", run.wall);
}

#[test]
fn a_node_that_ignores_sigterm_is_killed() {
    let run = judge("ignore-sigterm", Transport::Stdio, "ignore-sigterm", 1);
    assert_eq!(run.code, 0, "{:#}", results(&run));
}

#[test]
fn over_tcp_a_flood_and_a_long_line_on_the_client_port() {
    let run = judge("tcp-flood", Transport::Tcp, "flood", 1);
    assert_eq!(run.code, 0, "{:#}", results(&run));
    let sent = results(&run)["net"]["clients"]["send-count"]
        .as_f64()
        .unwrap();
    println!(
        "tcp-flood: the runner took {:.0} MB/s of 1 KiB messages",
        sent * 1024.0 / run.wall.as_secs_f64() / 1e6
    );
    assert!(sent > 10_000.0, "{sent} messages: no flood");

    let run = judge("tcp-long-line", Transport::Tcp, "long-line", 1);
    assert_eq!(run.code, 1);
    assert!(silenced(&run, "n0").contains("longer than the runner's limit"));
}

#[test]
fn over_tcp_a_node_that_reads_nothing() {
    let run = judge("tcp-deaf", Transport::Tcp, "deaf", 1);
    assert_eq!(run.code, 1, "every echo times out");
}

#[test]
fn over_tcp_stray_replies_are_ignored() {
    for mode in ["replies-twice", "unknown-reply"] {
        let run = judge(&format!("tcp-{mode}"), Transport::Tcp, mode, 1);
        assert_eq!(run.code, 0, "{mode}: {:#}", results(&run));
    }
}

#[test]
fn over_tcp_children_die_with_their_node_and_sigterm_is_not_needed() {
    let run = judge("tcp-fork-child", Transport::Tcp, "fork-child", 1);
    assert_eq!(run.code, 0, "{:#}", results(&run));
    let run = judge("tcp-fork-exit", Transport::Tcp, "fork-exit", 1);
    assert_eq!(run.code, 255);
    assert!(run.wall < Duration::from_secs(5), "{:?}", run.wall);
    let run = judge("tcp-ignore-sigterm", Transport::Tcp, "ignore-sigterm", 1);
    assert_eq!(run.code, 0, "{:#}", results(&run));
}

#[test]
fn a_ctrl_c_to_the_runner_kills_every_node_and_their_children() {
    let marker = format!("broken-ctrl-c-{}", std::process::id());
    let store = support::store("ctrl-c");
    let _ = std::fs::remove_dir_all(&store);
    let mut runner = std::process::Command::new(support::RUNNER)
        .args(["test", "--store", store.to_str().unwrap()])
        .args(["-w", "echo", "--bin", FIXTURE, "--node-count", "2"])
        .args(["--time-limit", "30", "fork-child", &marker])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Both nodes' children started (so the nodes did), then the interrupt.
    let since = Instant::now();
    let orphans = || {
        processes_with(&marker)
            .iter()
            .filter(|p| p.contains(" orphan "))
            .count()
    };
    while orphans() < 2 {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "nodes not started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(runner.id() as libc::pid_t, libc::SIGINT);
    }
    let status = runner.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGINT),
        "the runner dies of the signal"
    );
    all_gone(&marker, "after the interrupt");
}
