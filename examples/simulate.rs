//! Deterministic simulation of a whole cluster of our nodes under the runner's own
//! network model, nemesis, generator and checkers, in virtual time.
//!
//! `cargo run --release --example simulate -- --nodes 25 --seed 1 --seeds 10 --nemesis partition`
//! prints one JSON object per seed and a summary line; `--table` prints a table instead.
//! A failed seed is printed with the command that replays it.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use clap::Parser;
use maelstrom::harness::{Fault, TestOptions};
use maelstrom::net::LatencyDist;
use maelstrom::workload::Workload;
use node::cli;
use node::config::Config;
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(about = "Simulate a cluster of nodes in virtual time")]
struct Args {
    #[arg(long, default_value_t = 25)]
    nodes: usize,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many seeds to run: seed, seed+1, ...
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    #[arg(long, default_value_t = 20)]
    time_limit: u64,
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    #[arg(long, default_value_t = 100)]
    latency: u64,
    #[arg(long, default_value = "constant")]
    latency_dist: String,
    /// none, or a comma list of partition, pause, crash, link-loss, duplicate.
    #[arg(long, default_value = "none")]
    nemesis: String,
    #[arg(long, default_value_t = 10.0)]
    nemesis_interval: f64,
    #[arg(long, default_value = "broadcast")]
    workload: String,
    /// Arguments for the node, e.g. --node="--batch-ms 150".
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    node: String,
    /// Print a table instead of JSON lines.
    #[arg(long)]
    table: bool,
    /// Print only the failure detector's figures over all seeds, as one Markdown table row
    /// starting with this label (`make fd-bench`).
    #[arg(long)]
    fd_row: Option<String>,
    /// Seeds run at once (default: one per core). Output does not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Also print, on stderr, every status change each node saw (time ms, observer, peer,
    /// status): where detection time goes.
    #[arg(long)]
    timeline: bool,
}

/// `println!` that ends the program quietly when stdout is closed (e.g. piped into `head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

fn main() {
    let args = Args::parse();
    let workload: Workload = args.workload.parse().unwrap_or_else(|e: String| fail(&e));
    let mut opts = TestOptions::new(workload, args.nodes);
    opts.time_limit = Duration::from_secs(args.time_limit);
    opts.rate = args.rate;
    opts.latency_ms = args.latency;
    opts.latency_dist = args
        .latency_dist
        .parse::<LatencyDist>()
        .unwrap_or_else(|e: String| fail(&e));
    opts.nemesis_interval = Duration::from_secs_f64(args.nemesis_interval);
    opts.nemesis = match args.nemesis.as_str() {
        "none" => Vec::new(),
        list => list
            .split(',')
            .map(|f| f.parse::<Fault>().unwrap_or_else(|e: String| fail(&e)))
            .collect(),
    };
    let node_args = args.node.split_whitespace();
    let mut config: Config = cli::Args::try_parse_from(std::iter::once("node").chain(node_args))
        .unwrap_or_else(|e| fail(&e.to_string()))
        .into();
    // As `make g-set` and friends do: tell the node which workload it serves.
    config.workload = config.workload.or(support::mode(workload));
    if args.table {
        say!(
            "{:>6} {:>7} {:>5} {:>8} {:>7} {:>7} {:>14} {:>14} {:>12} {:>7}",
            "seed",
            "valid",
            "lost",
            "msgs/op",
            "median",
            "max",
            "detect max ms",
            "revive max ms",
            "false deaths",
            "wall ms"
        );
    }
    // Seeds run on every core; results are printed in seed order as they complete.
    let (results, finished) = std::sync::mpsc::channel();
    let next = std::sync::atomic::AtomicU64::new(args.seed);
    let end = args.seed + args.seeds;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut all = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let (results, next, opts, config) = (results.clone(), &next, &opts, &config);
            scope.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    let mut opts = opts.clone();
                    opts.seed = seed;
                    let f = support::figures::run(&opts, config);
                    if results.send(f).is_err() {
                        return;
                    }
                }
            });
        }
        drop(results);
        let mut waiting = std::collections::BTreeMap::new();
        for f in finished {
            waiting.insert(f.seed, f);
            while let Some(f) = waiting.remove(&(args.seed + all.len() as u64)) {
                report(&args, &f);
                all.push(f);
            }
        }
    });
    let summary = summarize(&all);
    if let Some(label) = &args.fd_row {
        say!("{}", fd_row(label, &summary));
    } else if args.table {
        let s = &summary;
        say!(
            "{} seeds | valid {} | lost {} | msgs-per-op mean {} max {:.2} | stable latency median ≤ {} ms, max {} ms | detection median {} max {} ms | revival median {} max {} ms | false deaths {} | wall mean {} ms",
            s["seeds"],
            s["valid"],
            s["lost_total"],
            s["msgs_per_op"]["mean"],
            s["msgs_per_op"]["max"].as_f64().unwrap_or(0.0),
            s["stable_latency_ms"]["median_max"],
            s["stable_latency_ms"]["max"],
            s["detection_ms"]["median"],
            s["detection_ms"]["max"],
            s["revival_ms"]["median"],
            s["revival_ms"]["max"],
            s["false_deaths"],
            s["wall_ms"]["mean"]
        );
    } else {
        say!("{summary}");
    }
}

/// Prints one seed's result as asked.
fn report(args: &Args, f: &support::figures::Figures) {
    let seed = f.seed;
    if args.timeline {
        for (t, observer, peer, status) in &f.timeline {
            eprintln!(
                "seed {seed} {:>6} {observer} sees {peer} {status:?}",
                t.as_millis()
            );
        }
    }
    if args.fd_row.is_some() {
        // Only the summary row.
    } else if args.table {
        let max = |v: &[u64]| v.iter().max().map_or("-".into(), |m| m.to_string());
        say!(
            "{:>6} {:>7} {:>5} {:>8.2} {:>7} {:>7} {:>14} {:>14} {:>12} {:>7}",
            seed,
            f.valid.to_string(),
            f.lost_count,
            f.msgs_per_op,
            f.stable_median_ms,
            f.stable_max_ms,
            max(&f.detection_ms),
            max(&f.revival_ms),
            f.false_deaths,
            f.wall_ms
        );
    } else {
        say!("{}", f.to_json());
    }
    if f.valid != json!(true) || f.lost_count > 0 {
        eprintln!("seed {seed} failed; replay: {}", replay(args, seed));
    }
}

fn summarize(all: &[support::figures::Figures]) -> Value {
    let n = all.len().max(1) as f64;
    let detection: Vec<u64> = all
        .iter()
        .flat_map(|f| f.detection_ms.iter().copied())
        .collect();
    let revival: Vec<u64> = all
        .iter()
        .flat_map(|f| f.revival_ms.iter().copied())
        .collect();
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    json!({
        "summary": true,
        "seeds": all.len(),
        "valid": all.iter().all(|f| f.valid == json!(true)),
        "failed_seeds": all.iter().filter(|f| f.valid != json!(true) || f.lost_count > 0).map(|f| f.seed).collect::<Vec<_>>(),
        "lost_total": all.iter().map(|f| f.lost_count).sum::<i64>(),
        "msgs_per_op": {
            "mean": (all.iter().map(|f| f.msgs_per_op).sum::<f64>() / n * 1000.0).round() / 1000.0,
            "max": all.iter().map(|f| f.msgs_per_op).fold(0.0, f64::max),
        },
        "stable_latency_ms": {
            "median_max": all.iter().map(|f| f.stable_median_ms).max(),
            "max": all.iter().map(|f| f.stable_max_ms).max(),
        },
        "detection_ms": {"count": detection.len(), "median": median(&detection), "max": detection.iter().max()},
        "undetected": all.iter().map(|f| f.undetected).sum::<usize>(),
        "revival_ms": {"count": revival.len(), "median": median(&revival), "max": revival.iter().max()},
        "not_revived": all.iter().map(|f| f.not_revived).sum::<usize>(),
        "false_suspicions": all.iter().map(|f| f.false_suspicions).sum::<usize>(),
        "false_deaths": all.iter().map(|f| f.false_deaths).sum::<usize>(),
        "msgs_to_dead_per_s": all.iter().filter_map(|f| f.msgs_to_dead_per_s).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v)))),
        "non_probes_to_dead": all.iter().map(|f| f.non_probes_to_dead).sum::<usize>(),
        "wall_ms": {"mean": all.iter().map(|f| f.wall_ms).sum::<u128>() / all.len().max(1) as u128, "max": all.iter().map(|f| f.wall_ms).max()},
    })
}

/// `| label | seeds | valid (lost) | msgs-per-op | detection | revival | false suspicions / deaths | to a dead node |`
fn fd_row(label: &str, s: &Value) -> String {
    let span = |v: &Value| match (v["median"].as_u64(), v["max"].as_u64()) {
        (Some(median), Some(max)) => format!(
            "{:.2} s / {:.2} s ({} faults)",
            median as f64 / 1000.0,
            max as f64 / 1000.0,
            v["count"]
        ),
        _ => "-".to_string(),
    };
    let undetected = match s["undetected"].as_u64() {
        Some(0) | None => String::new(),
        Some(n) => format!(", {n} ended first"),
    };
    let to_dead = match s["msgs_to_dead_per_s"].as_f64() {
        Some(rate) => format!("{rate:.1} msgs/s, {} not probes", s["non_probes_to_dead"]),
        None => "-".to_string(),
    };
    format!(
        "| {label} | {} | {} ({} lost) | {:.2} | {}{undetected} | {} | {} / {} | {to_dead} |",
        s["seeds"],
        s["valid"],
        s["lost_total"],
        s["msgs_per_op"]["mean"].as_f64().unwrap_or(0.0),
        span(&s["detection_ms"]),
        span(&s["revival_ms"]),
        s["false_suspicions"],
        s["false_deaths"],
    )
}

fn replay(args: &Args, seed: u64) -> String {
    format!(
        "cargo run --release --example simulate -- --nodes {} --seed {seed} --time-limit {} --rate {} --latency {} --latency-dist {} --nemesis {} --nemesis-interval {} --workload {}{}",
        args.nodes,
        args.time_limit,
        args.rate,
        args.latency,
        args.latency_dist,
        args.nemesis,
        args.nemesis_interval,
        args.workload,
        if args.node.is_empty() {
            String::new()
        } else {
            format!(" --node=\"{}\"", args.node)
        }
    )
}

fn fail(why: &str) -> ! {
    eprintln!("simulate: {why}");
    std::process::exit(2)
}
