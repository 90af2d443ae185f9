//! The node under resource pressure, as real processes (docs/architecture.md,
//! "Backpressure"; docs/failure-detector.md, "Under pressure"):
//!
//! - through the runner, one node starved of CPU (`--nemesis starve`) or with its stdout
//!   unread (`--nemesis stall-output`): the run is valid, nothing is lost, no live node is
//!   declared dead, the node is alive everywhere once it is back, and memory stays small;
//! - one node whose stdout is not read while it is flooded with requests whose replies
//!   are far larger than its pipe: its memory stays bounded, and once stdout is read
//!   again every request is answered, in order, none twice.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const NODE: &str = env!("CARGO_BIN_EXE_node");

/// Generous bound on any node's peak RSS in these tests. A node at rest holds about 6 MiB;
/// with an unbounded outbox the flood below took 120 to 130 MiB (docs/architecture.md).
const RSS_BOUND_KB: u64 = 48 * 1024;

/// Runs `maelstrom test --bin <our node>` with `args`; returns the exit code, the results
/// and the store of the run.
fn runner(name: &str, args: &[&str]) -> (i32, Value, std::path::PathBuf) {
    let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pressure-{name}"));
    let _ = std::fs::remove_dir_all(&store);
    let mut argv: Vec<String> = ["maelstrom", "test", "--bin", NODE, "--store"]
        .map(String::from)
        .to_vec();
    argv.push(store.to_str().unwrap().into());
    argv.extend(args.iter().map(|s| s.to_string()));
    let started = Instant::now();
    let code = maelstrom::cli::main(argv.clone());
    eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    let latest = store.join("latest");
    let text = std::fs::read_to_string(latest.join("results.json"))
        .unwrap_or_else(|e| panic!("{argv:?} exited {code} without results: {e}"));
    let results = serde_json::from_str(&text).expect("results.json is JSON");
    (code, results, latest)
}

/// The node a nemesis op `f` named first, from the runner's log.
fn target_of(store: &Path, f: &str) -> String {
    let log = std::fs::read_to_string(store.join("jepsen.log")).expect("jepsen.log");
    let line = log
        .lines()
        .find(|l| l.contains(&format!("nemesis :{f} ")))
        .unwrap_or_else(|| panic!("no :{f} in the log:\n{log}"));
    line.split('"').nth(1).expect("a node id").to_string()
}

/// What every pressure run must show: valid, nothing lost, no false death, every node
/// back alive everywhere, every node's memory under the bound. Returns the peak RSS of
/// each node, in KiB.
fn assert_unharmed(name: &str, code: i32, results: &Value) -> Vec<(String, u64)> {
    let seed = &results["runner"]["seed"];
    assert_eq!(code, 0, "{name} (seed {seed}): {:#}", results["workload"]);
    assert_eq!(results["valid?"], true, "{name} (seed {seed})");
    assert_eq!(results["workload"]["lost-count"], 0, "{name} (seed {seed})");
    let membership = &results["runner"]["membership"];
    assert_eq!(
        membership["false-deaths"], 0,
        "{name} (seed {seed}): {membership:#}"
    );
    assert_eq!(
        membership["not-revived"],
        json!([]),
        "{name} (seed {seed}): {membership:#}"
    );
    let nodes = results["runner"]["nodes"].as_object().expect("nodes");
    let rss: Vec<(String, u64)> = nodes
        .iter()
        .map(|(n, v)| (n.clone(), v["peak-rss-kb"].as_u64().expect("peak-rss-kb")))
        .collect();
    for (node, kb) in &rss {
        assert!(
            (1..RSS_BOUND_KB).contains(kb),
            "{name} (seed {seed}): {node} peaked at {kb} KiB"
        );
    }
    eprintln!("{name} (seed {seed}): membership {membership}, peak RSS {rss:?}");
    rss
}

/// The options of both runner tests: 5 nodes, 6 s, and a nemesis interval so long that the
/// fault begins with the workload and most likely lasts until the nemesis stops it
/// before the 10 s recovery.
fn pressure_args<'a>(nemesis: &'a str, seed: &'a str) -> Vec<&'a str> {
    vec![
        "-w",
        "broadcast",
        "--node-count",
        "5",
        "--time-limit",
        "6",
        "--rate",
        "50",
        "--nemesis",
        nemesis,
        "--nemesis-interval",
        "30",
        "--seed",
        seed,
    ]
}

#[test]
fn a_node_starved_of_cpu_declares_no_live_peer_dead() {
    let (code, results, store) = runner("starve", &pressure_args("starve", "11"));
    assert_unharmed("starve", code, &results);
    let starved = target_of(&store, "start-starve");
    target_of(&store, "stop-starve");
    // It really was stopped again and again: its detector saw its own stalls.
    let log =
        std::fs::read_to_string(store.join(format!("node-logs/{starved}.log"))).expect("node log");
    let stalls = log.matches("this node stalled").count();
    eprintln!("starve: the starved node, {starved}, noticed {stalls} stalls");
    assert!(stalls >= 5, "{starved} noticed {stalls} stalls:\n{log}");
}

#[test]
fn a_node_whose_stdout_is_not_read_loses_nothing_and_blames_no_one() {
    let (code, results, store) = runner("stall-output", &pressure_args("stall-output", "12"));
    assert_unharmed("stall-output", code, &results);
    target_of(&store, "start-stall-output");
    target_of(&store, "stop-stall-output");
}

/// Peak resident memory of a process, KiB.
fn peak_rss_kb(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("/proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// Values broadcast, then reads: every read's reply carries every value (about 10 KB), so
/// the replies (about 40 MB) dwarf the 64 KiB pipe.
const VALUES: u64 = 2000;
const READS: u64 = 4000;

/// Floods a single node with writes then reads; stdout is left unread for `stall`, then
/// read to the end. Returns the node's peak RSS in KiB and its stderr.
fn flood(stall: Duration) -> (u64, String) {
    let mut child = Command::new(NODE)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = thread::spawn(move || {
        let line = |msg_id: u64, body: Value| {
            let mut body = body;
            body["msg_id"] = json!(msg_id);
            format!("{}\n", json!({"src": "c1", "dest": "n0", "body": body}))
        };
        let mut input = line(
            0,
            json!({"type": "init", "node_id": "n0", "node_ids": ["n0"]}),
        );
        for v in 0..VALUES {
            input.push_str(&line(1 + v, json!({"type": "broadcast", "message": v})));
        }
        for r in 0..READS {
            input.push_str(&line(1 + VALUES + r, json!({"type": "read"})));
        }
        // Blocks once the node stops reading (its queues are full): that is the point.
        stdin.write_all(input.as_bytes()).expect("stdin");
        stdin // closed by the reader once every reply is in
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut err = child.stderr.take().expect("stderr");
    let log = stderr.clone();
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        log.lock().unwrap().push_str(&text);
    });
    thread::sleep(stall);
    let stalled_kb = peak_rss_kb(&child);
    let mut expected = 0;
    let mut last_read: Option<Value> = None;
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let deadline = Instant::now() + Duration::from_secs(30);
    for line in stdout.lines() {
        let reply: Value = serde_json::from_str(&line.expect("stdout")).expect("JSON");
        let body = &reply["body"];
        // One reply per request, in the order of the requests.
        assert_eq!(body["in_reply_to"], expected, "{reply}");
        if body["type"] == "read_ok" {
            last_read = Some(body.clone());
        }
        expected += 1;
        if expected == 1 + VALUES + READS {
            break;
        }
        assert!(Instant::now() < deadline, "replies stopped at {expected}");
    }
    assert_eq!(expected, 1 + VALUES + READS, "every request answered");
    let messages = last_read.expect("reads answered")["messages"].clone();
    assert_eq!(
        messages.as_array().map(Vec::len),
        Some(VALUES as usize),
        "every acknowledged value is read back"
    );
    let peak_kb = peak_rss_kb(&child).max(stalled_kb);
    drop(writer.join().expect("writer")); // stdin closes: the node exits
    let status = child.wait().expect("node exits");
    assert!(status.success(), "node exited with {status}");
    err_reader.join().expect("stderr reader");
    let log = stderr.lock().unwrap().clone();
    (peak_kb, log)
}

#[test]
fn a_blocked_stdout_keeps_the_node_small_and_every_reply_comes_once_it_drains() {
    let (free_kb, free_log) = flood(Duration::ZERO);
    let (stalled_kb, stalled_log) = flood(Duration::from_secs(3));
    eprintln!(
        "flood: peak RSS {free_kb} KiB read at once, {stalled_kb} KiB with stdout unread for 3 s"
    );
    assert!(
        stalled_log.contains("stdout blocked") && stalled_log.contains("stdout drained"),
        "the node saw its stdout block and drain:\n{stalled_log}"
    );
    assert!(!free_log.contains("stdout blocked"), "{free_log}");
    assert!(
        stalled_kb < RSS_BOUND_KB,
        "with stdout unread the node peaked at {stalled_kb} KiB"
    );
    assert!(free_kb < RSS_BOUND_KB, "the node peaked at {free_kb} KiB");
}
