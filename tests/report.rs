//! The run's report (docs/report.md) for our node: a short 3b run and a partition run
//! through real processes, and a simulated run. Every file is written and well-formed;
//! the diagram has one arrow per received message, in the right colour; the plots have one
//! series per f × outcome and one band per partition; the timeline one box per op.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maelstrom::edn::{self, Edn};
use maelstrom::options::TestOptions;
use maelstrom::workload::Workload;
use node::config::Config;
use node::sim::{figures, runner};
use serde_json::Value;

const NODE: &str = env!("CARGO_BIN_EXE_node");

const FILES: [&str; 11] = [
    "messages.svg",
    "latency-raw.svg",
    "latency-quantiles.svg",
    "rate.svg",
    "timeline.html",
    "membership.svg",
    "index.html",
    "history.edn",
    "history.txt",
    "results.edn",
    "jepsen.log",
];

/// Runs `maelstrom test --bin <our node>` and returns the run's folder.
fn run(name: &str, args: &str) -> PathBuf {
    let store = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{name}"));
    let run = runner::test(NODE, &store, &format!("--seed 11 {args}"));
    assert_eq!(run.code, 0, "{name}: the run is valid");
    run.dir
}

/// One op of history.edn: (process, or None for the nemesis; type; f).
fn history(dir: &Path) -> Vec<(Option<i64>, String, String)> {
    std::fs::read_to_string(dir.join("history.edn"))
        .unwrap()
        .lines()
        .map(|line| {
            let op = edn::parse(line).expect("history line");
            let kw = |k: &str| match op.get(k) {
                Some(Edn::Keyword(s)) => s.clone(),
                other => panic!("{k}: {other:?}"),
            };
            (op.get("process").and_then(Edn::as_i64), kw("type"), kw("f"))
        })
        .collect()
}

fn svg(dir: &Path, file: &str) -> String {
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{file} is not XML: {e}"));
    text
}

/// Legend labels that name a series `f outcome`.
fn series_labels(text: &str) -> BTreeSet<String> {
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .filter(|t| {
            t.rsplit_once(' ')
                .is_some_and(|(_, o)| ["ok", "info", "fail"].contains(&o))
        })
        .collect()
}

/// Band rectangles of partitions (the legend's swatch is opaque, bands are not).
fn partition_bands(text: &str) -> usize {
    let doc = roxmltree::Document::parse(text).unwrap();
    doc.descendants()
        .filter(|n| {
            n.has_tag_name("rect")
                && n.attribute("fill") == Some("#E9DCA0")
                && n.attribute("opacity") == Some("0.9")
        })
        .count()
}

/// Checks every file of the report in `dir` against the run's history and results, for a
/// run of `nodes` nodes.
fn check(dir: &Path, nodes: usize) {
    for file in FILES {
        assert!(
            dir.join(file).exists(),
            "{file} written in {}",
            dir.display()
        );
    }
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["report"]["valid?"], true, "{:#}", results["report"]);
    let ops = history(dir);

    // One arrow per received message (init and init_ok are left out), coloured by kind.
    let messages = svg(dir, "messages.svg");
    let doc = roxmltree::Document::parse(&messages).unwrap();
    let arrows: Vec<_> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("msg"))
        .collect();
    let net = &results["net"];
    let count = |group: &str, key: &str| net[group][key].as_u64().unwrap() as usize;
    let events = count("all", "send-count") + count("all", "recv-count") - 4 * nodes;
    assert!(
        events <= 10_000,
        "the run is small enough to be drawn whole"
    );
    assert_eq!(arrows.len(), count("all", "recv-count") - 2 * nodes);
    let mut client_arrows = 0;
    for arrow in &arrows {
        let (src, dest) = (
            arrow.attribute("data-src").unwrap(),
            arrow.attribute("data-dest").unwrap(),
        );
        let title = arrow
            .descendants()
            .find(|n| n.has_tag_name("title"))
            .unwrap();
        let line = arrow
            .descendants()
            .find(|n| n.has_tag_name("line"))
            .unwrap();
        let client = src.starts_with('c') || dest.starts_with('c');
        let expected = if title.text().unwrap().contains("\"type\":\"error\"") {
            "#FF1E90"
        } else if client {
            "#81BFFC"
        } else {
            "#000000"
        };
        assert_eq!(line.attribute("stroke"), Some(expected), "{src} → {dest}");
        client_arrows += usize::from(client);
    }
    assert_eq!(client_arrows, count("clients", "recv-count") - 2 * nodes);

    // Plots: one series per f × outcome of the completed client ops, one band per partition.
    let expected: BTreeSet<String> = ops
        .iter()
        .filter(|(p, kind, _)| p.is_some() && kind != "invoke")
        .map(|(_, kind, f)| format!("{f} {kind}"))
        .collect();
    let partitions = ops
        .iter()
        .filter(|(p, _, f)| p.is_none() && f == "start-partition")
        .count()
        / 2;
    for plot in ["latency-raw.svg", "rate.svg"] {
        let text = svg(dir, plot);
        assert_eq!(series_labels(&text), expected, "{plot}");
        assert_eq!(partition_bands(&text), partitions, "{plot}");
    }
    let quantiles = svg(dir, "latency-quantiles.svg");
    assert_eq!(partition_bands(&quantiles), partitions);
    svg(dir, "membership.svg");

    // Timeline: one box per client op and per nemesis op (recorded twice).
    let timeline = std::fs::read_to_string(dir.join("timeline.html")).unwrap();
    let invocations = ops.iter().filter(|(_, kind, _)| kind == "invoke").count();
    let nemesis = ops.iter().filter(|(p, _, _)| p.is_none()).count() / 2;
    assert_eq!(
        timeline.matches("<div class=\"op ").count(),
        invocations + nemesis
    );

    let index = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for expected in [
        "id=\"verdict\"",
        "src=\"latency-raw.svg\"",
        "href=\"timeline.html\"",
        "id=\"diagram\"",
    ] {
        assert!(index.contains(expected), "index.html has {expected}");
    }
}

#[test]
fn a_3b_run_writes_every_file() {
    let dir = run("3b", "-w broadcast --node-count 5 --time-limit 4 --rate 10");
    check(&dir, 5);
}

#[test]
fn a_partition_run_shades_each_partition_and_draws_the_detector() {
    let dir = run(
        "partition",
        "-w broadcast --node-count 5 --time-limit 8 --rate 10 --latency 10 --nemesis partition --nemesis-interval 2",
    );
    check(&dir, 5);
    let ops = history(&dir);
    assert!(
        ops.iter().any(|(_, _, f)| f == "start-partition"),
        "the nemesis partitioned the network"
    );
    // The detector's view comes from the nodes' status-change log lines: each one read
    // before the nodes were killed is drawn (lines written while they were killed may
    // reach the log file only).
    let logged: usize = std::fs::read_dir(dir.join("node-logs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .map(|log| log.matches("membership change").count())
        .sum();
    let drawn = svg(&dir, "membership.svg")
        .matches("class=\"status ")
        .count();
    println!("status changes: {logged} logged, {drawn} drawn");
    assert!(drawn <= logged);
    assert!(logged == 0 || drawn > 0, "{logged} logged, none drawn");
}

#[test]
fn a_simulated_run_writes_every_file_with_the_detectors_view() {
    let mut opts = TestOptions::new(Workload::Broadcast, 5);
    opts.time_limit = Duration::from_secs(20);
    opts.rate = 10.0;
    opts.latency_ms = 20;
    opts.nemesis = "partition".parse::<maelstrom::nemesis::Faults>().unwrap().0;
    opts.seed = 3;
    println!("seed {}", opts.seed);
    let (_, outcome) = figures::run_keeping_outcome(&opts, &Config::default(), Default::default());
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-simulated");
    let _ = std::fs::remove_dir_all(&root);
    let (dir, _) = maelstrom::store::write_simulated_run(&root, &opts, &outcome).unwrap();
    check(&dir, 5);
    // Every status change the state machines made is drawn: spans for doubted, suspected
    // and dead, a tick for alive again (but not for the first, alive, view).
    assert!(
        !outcome.membership.is_empty(),
        "partitions make nodes suspect each other"
    );
    let membership = svg(&dir, "membership.svg");
    let drawn = membership.matches("class=\"status ").count();
    assert_eq!(drawn, outcome.membership.len());
}
