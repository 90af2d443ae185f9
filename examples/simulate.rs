//! Deterministic simulation of a whole cluster of our nodes under the runner's own
//! network model, nemesis, generator and checkers, in virtual time.
//!
//! `cargo run --release --example simulate -- --nodes 25 --seed 1 --seeds 10 --nemesis partition`
//! prints one JSON object per seed and a summary line; `--table` prints a table instead.
//! A failed seed is printed with the command that replays it.

use std::time::Duration;

// The simulation allocates and frees small objects at a high rate (messages, records, the
// history); mimalloc does that faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use maelstrom::checker::Validity;
use maelstrom::net::Lossy;
use maelstrom::options::{NetworkArgs, TestOptions};
use maelstrom::workload::Workload;
use node::cli;
use node::config::Config;
use node::gossip::Why;
use node::sim::figures::{self, Figures, Measure};
use node::sim::phases::{Phase, PhaseShare, Phases};
use node::sim::{Ticks, Wire};
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
    /// Mean latency of messages between nodes, ms.
    #[arg(long, default_value_t = 100)]
    latency: u64,
    #[command(flatten)]
    network: NetworkArgs,
    /// Ours, for tests: drop and hold back messages between nodes until a time of the
    /// test: DROP,MAX_DELAY_MS,UNTIL_MS (e.g. 0.3,200,10000).
    #[arg(long)]
    lossy: Option<Lossy>,
    #[arg(long, default_value = "broadcast")]
    workload: String,
    /// Arguments for the node, e.g. --node="--batch-ms 150".
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    node: String,
    /// Print a table instead of JSON lines.
    #[arg(long)]
    table: bool,
    /// After the table's summary, also print the mean msgs-per-op by kind of message
    /// (data up to a parent, data down, records alone, probes and heartbeats, pure acks).
    #[arg(long)]
    by_kind: bool,
    /// After the table's summary, also print a Markdown table of the same split by phase
    /// of the partitions (their first 3 s, the rest of the time they stand, the 3 s after
    /// a heal, the rest of the run), with what went to a node that could not hear it.
    #[arg(long)]
    by_phase: bool,
    /// Print only the failure detector's figures over all seeds, as one Markdown table row
    /// starting with this label (`make fd-bench`).
    #[arg(long)]
    fd_row: Option<String>,
    /// Print only the scale figures over all seeds, as one Markdown table row starting
    /// with this label (`make scale`).
    #[arg(long)]
    scale_row: Option<String>,
    /// Seeds run at once (default: one per core). Output does not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Also print, on stderr, every status change each node saw (time ms, observer, peer,
    /// status): where detection time goes.
    #[arg(long)]
    timeline: bool,
    /// How messages between nodes travel: `native` (typed, unserialised) or `json` (as
    /// over stdin/stdout; the same runs, slower).
    #[arg(long, default_value = "native", value_parser = parse_wire)]
    wire: Wire,
    /// Which ticks the nodes are given: `busy` (those on which a node may have something to
    /// do) or `every` (as the real tickers; the same runs, slower).
    #[arg(long, default_value = "busy", value_parser = parse_ticks)]
    ticks: Ticks,
    /// Also write each seed's run into this store, as `maelstrom test` writes a run
    /// (history, results, plots, message diagram, timelines, index.html).
    #[arg(long)]
    store: Option<std::path::PathBuf>,
}

fn parse_wire(s: &str) -> Result<Wire, String> {
    match s {
        "native" => Ok(Wire::Native),
        "json" => Ok(Wire::Json),
        _ => Err(format!("unknown wire {s:?} (native, json)")),
    }
}

fn parse_ticks(s: &str) -> Result<Ticks, String> {
    match s {
        "busy" => Ok(Ticks::Busy),
        "every" => Ok(Ticks::Every),
        _ => Err(format!("unknown ticks {s:?} (busy, every)")),
    }
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
    args.network.apply(&mut opts).unwrap_or_else(|e| fail(&e));
    opts.lossy = args.lossy;
    // The journal only feeds the report's message diagram.
    opts.journal = args.store.is_some();
    let node_args = args.node.split_whitespace();
    let mut config: Config = cli::Cli::try_parse_from(std::iter::once("node").chain(node_args))
        .unwrap_or_else(|e| fail(&e.to_string()))
        .node
        .into();
    // As `make g-set` and friends do: tell the node which workload it serves.
    config.workload = config.workload.or(node::sim::mode(workload));
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
            let measure = Measure {
                wire: args.wire,
                ticks: args.ticks,
                // JSON lines carry the history's digest; tables do not.
                digest: !args.table && args.fd_row.is_none() && args.scale_row.is_none(),
            };
            let (results, next, opts, config, args) =
                (results.clone(), &next, &opts, &config, &args);
            scope.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= end {
                        return;
                    }
                    let mut opts = opts.clone();
                    opts.seed = seed;
                    let f = match &args.store {
                        None => figures::run_on(&opts, config, measure),
                        Some(root) => {
                            let (f, outcome) = figures::run_keeping_outcome(&opts, config, measure);
                            match maelstrom::store::write_simulated_run(root, &opts, &outcome) {
                                Ok((dir, _)) => eprintln!("seed {seed}: {}", dir.display()),
                                Err(e) => eprintln!("seed {seed}: cannot write the store: {e}"),
                            }
                            f
                        }
                    };
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
                report(&args, &opts, &f);
                all.push(f);
            }
        }
    });
    let s = Sweep::of(&all);
    if let Some(label) = &args.fd_row {
        say!("{}", s.fd_row(label));
    } else if let Some(label) = &args.scale_row {
        say!("{}", s.scale_row(label));
    } else if args.table {
        say!(
            "{} seeds | valid {} | lost {} | msgs-per-op mean {} max {:.2} | stable latency median ≤ {} ms, max {} ms | detection median {} max {} ms | revival median {} max {} ms | false deaths {} | wall mean {} ms",
            s.seeds,
            s.valid,
            s.lost_total,
            json!(s.msgs_per_op_mean),
            s.msgs_per_op_max,
            json!(s.stable_median_max),
            json!(s.stable_max),
            json!(s.detection.median),
            json!(s.detection.max),
            json!(s.revival.median),
            json!(s.revival.max),
            s.false_deaths,
            s.wall_ms_mean
        );
        if args.by_kind {
            let kinds: Vec<String> = node::sim::Kind::ALL
                .iter()
                .zip(&s.msgs_per_op_by_kind)
                .map(|(k, v)| format!("{} {v:.3}", k.name()))
                .collect();
            say!("msgs-per-op by kind (mean): {}", kinds.join(" | "));
        }
        if args.by_phase {
            say!("{}", s.phase_table());
        }
    } else {
        say!("{}", s.to_json());
    }
}

/// Prints one seed's result as asked.
fn report(args: &Args, opts: &TestOptions, f: &Figures) {
    let seed = f.seed;
    if args.timeline {
        for (t, observer, peer, status) in &f.timeline {
            eprintln!(
                "seed {seed} {:>6} {observer} sees {peer} {status:?}",
                t.as_millis()
            );
        }
    }
    if args.fd_row.is_some() || args.scale_row.is_some() {
        // Only the summary row.
    } else if args.table {
        let max = |v: &[u64]| v.iter().max().map_or("-".into(), |m| m.to_string());
        say!(
            "{:>6} {:>7} {:>5} {:>8.2} {:>7} {:>7} {:>14} {:>14} {:>12} {:>7}",
            seed,
            f.valid.to_json().to_string(),
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
    if !f.passed() {
        let node = match args.node.as_str() {
            "" => String::new(),
            node => format!(" --node=\"{node}\""),
        };
        let opts = TestOptions {
            seed,
            ..opts.clone()
        };
        eprintln!(
            "seed {seed} failed; replay: {}{node}",
            opts.replay_command()
        );
    }
}

/// The figures of a sweep, over all its seeds.
struct Sweep {
    seeds: usize,
    valid: bool,
    failed_seeds: Vec<u64>,
    lost_total: usize,
    /// Rounded to 3 decimals.
    msgs_per_op_mean: f64,
    msgs_per_op_max: f64,
    /// The largest median, and the largest max, of the seeds' stable latencies.
    stable_median_max: Option<i64>,
    stable_max: Option<i64>,
    detection: Spread,
    undetected: usize,
    missed: usize,
    revival: Spread,
    not_revived: usize,
    revival_cut_short: usize,
    false_suspicions: usize,
    false_deaths: usize,
    msgs_to_dead_per_s: Option<f64>,
    non_probes_to_dead: usize,
    wall_ms_mean: u128,
    wall_ms_max: Option<u128>,
    /// The busiest node's messages per second, the most over the seeds.
    busiest_msgs_per_s: f64,
    /// Mean msgs-per-op by kind of message.
    msgs_per_op_by_kind: [f64; 5],
    /// The same by phase of the partitions, and the phases' lengths summed over the seeds.
    by_phase: Phases,
}

/// How many times were measured, their median and their max, in ms.
struct Spread {
    count: usize,
    median: Option<u64>,
    max: Option<u64>,
}

impl Spread {
    fn of(values: impl Iterator<Item = u64>) -> Spread {
        let mut v: Vec<u64> = values.collect();
        v.sort_unstable();
        Spread {
            count: v.len(),
            median: v.get(v.len() / 2).copied(),
            max: v.last().copied(),
        }
    }

    fn to_json(&self) -> Value {
        json!({"count": self.count, "median": self.median, "max": self.max})
    }

    /// `median s / max s (n faults)`.
    fn cell(&self) -> String {
        match (self.median, self.max) {
            (Some(median), Some(max)) => format!(
                "{:.2} s / {:.2} s ({} faults)",
                median as f64 / 1000.0,
                max as f64 / 1000.0,
                self.count
            ),
            _ => "-".to_string(),
        }
    }
}

impl Sweep {
    fn of(all: &[Figures]) -> Sweep {
        let n = all.len().max(1) as f64;
        Sweep {
            seeds: all.len(),
            valid: all.iter().all(|f| f.valid == Validity::True),
            failed_seeds: all.iter().filter(|f| !f.passed()).map(|f| f.seed).collect(),
            lost_total: all.iter().map(|f| f.lost_count).sum(),
            msgs_per_op_mean: (all.iter().map(|f| f.msgs_per_op).sum::<f64>() / n * 1000.0).round()
                / 1000.0,
            msgs_per_op_max: all.iter().map(|f| f.msgs_per_op).fold(0.0, f64::max),
            stable_median_max: all.iter().map(|f| f.stable_median_ms).max(),
            stable_max: all.iter().map(|f| f.stable_max_ms).max(),
            detection: Spread::of(all.iter().flat_map(|f| f.detection_ms.iter().copied())),
            undetected: all.iter().map(|f| f.undetected).sum(),
            missed: all.iter().map(|f| f.missed).sum(),
            revival: Spread::of(all.iter().flat_map(|f| f.revival_ms.iter().copied())),
            not_revived: all.iter().map(|f| f.not_revived).sum(),
            revival_cut_short: all.iter().map(|f| f.revival_cut_short).sum(),
            false_suspicions: all.iter().map(|f| f.false_suspicions).sum(),
            false_deaths: all.iter().map(|f| f.false_deaths).sum(),
            msgs_to_dead_per_s: all
                .iter()
                .filter_map(|f| f.msgs_to_dead_per_s)
                .reduce(f64::max),
            non_probes_to_dead: all.iter().map(|f| f.non_probes_to_dead).sum(),
            wall_ms_mean: all.iter().map(|f| f.wall_ms).sum::<u128>() / all.len().max(1) as u128,
            wall_ms_max: all.iter().map(|f| f.wall_ms).max(),
            busiest_msgs_per_s: all.iter().map(|f| f.busiest_msgs_per_s).fold(0.0, f64::max),
            msgs_per_op_by_kind: std::array::from_fn(|k| {
                all.iter().map(|f| f.msgs_per_op_by_kind[k]).sum::<f64>() / n
            }),
            by_phase: std::array::from_fn(|p| {
                let phases = || all.iter().map(|f| &f.by_phase[p]);
                PhaseShare {
                    by_kind: std::array::from_fn(|k| {
                        phases().map(|s| s.by_kind[k]).sum::<f64>() / n
                    }),
                    into_cut: phases().map(|s| s.into_cut).sum::<f64>() / n,
                    by_why: std::array::from_fn(|w| phases().map(|s| s.by_why[w]).sum::<f64>() / n),
                    seconds: phases().map(|s| s.seconds).sum(),
                }
            }),
        }
    }

    /// `--by-phase`: mean msgs-per-op by phase and kind, then the probes by phase and
    /// why they went, as Markdown tables.
    fn phase_table(&self) -> String {
        let kinds: Vec<&str> = node::sim::Kind::ALL.iter().map(|k| k.name()).collect();
        let mut lines = vec![
            format!(
                "| phase | seconds | {} | all | to a node that could not hear it |",
                kinds.join(" | ")
            ),
            format!("|{}", " --- |".repeat(kinds.len() + 4)),
        ];
        for (phase, share) in Phase::ALL.iter().zip(&self.by_phase) {
            let cells: Vec<String> = share.by_kind.iter().map(|v| format!("{v:.2}")).collect();
            lines.push(format!(
                "| {} | {:.0} | {} | {:.2} | {:.2} |",
                phase.name(),
                share.seconds,
                cells.join(" | "),
                share.all(),
                share.into_cut
            ));
        }
        let whys: Vec<&str> = Why::ALL.iter().map(|w| w.name()).collect();
        lines.push(String::new());
        lines.push(format!(
            "| phase | {} | first message to a new parent | all probes |",
            whys.join(" | ")
        ));
        lines.push(format!("|{}", " --- |".repeat(whys.len() + 3)));
        for (phase, share) in Phase::ALL.iter().zip(&self.by_phase) {
            let cells: Vec<String> = share.by_why.iter().map(|v| format!("{v:.2}")).collect();
            lines.push(format!(
                "| {} | {} | {:.2} | {:.2} |",
                phase.name(),
                cells.join(" | "),
                share.probes_unexplained(),
                share.by_kind[node::sim::Kind::Probe as usize]
            ));
        }
        lines.join("\n")
    }

    fn to_json(&self) -> Value {
        json!({
            "summary": true,
            "seeds": self.seeds,
            "valid": self.valid,
            "failed_seeds": self.failed_seeds,
            "lost_total": self.lost_total,
            "msgs_per_op": {"mean": self.msgs_per_op_mean, "max": self.msgs_per_op_max},
            "msgs_per_op_by_kind": figures::by_kind_json(&self.msgs_per_op_by_kind),
            "stable_latency_ms": {"median_max": self.stable_median_max, "max": self.stable_max},
            "detection_ms": self.detection.to_json(),
            "undetected": self.undetected,
            "missed": self.missed,
            "revival_ms": self.revival.to_json(),
            "not_revived": self.not_revived,
            "revival_cut_short": self.revival_cut_short,
            "false_suspicions": self.false_suspicions,
            "false_deaths": self.false_deaths,
            "msgs_to_dead_per_s": self.msgs_to_dead_per_s,
            "non_probes_to_dead": self.non_probes_to_dead,
            "wall_ms": {"mean": self.wall_ms_mean, "max": self.wall_ms_max},
            "busiest_msgs_per_s": (self.busiest_msgs_per_s * 10.0).round() / 10.0,
        })
    }

    /// `| label | seeds | valid (lost) | msgs-per-op | detection | revival | false suspicions / deaths | to a dead node |`
    /// `| label | seeds | valid (lost) | msgs-per-op | stable median / max | busiest node
    /// msgs/s | detection | false deaths | wall mean |`.
    fn scale_row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} ({} lost) | {:.2} | {} / {} ms | {:.0} | {} | {} | {:.1} s |",
            self.seeds,
            self.valid,
            self.lost_total,
            self.msgs_per_op_mean,
            json!(self.stable_median_max),
            json!(self.stable_max),
            self.busiest_msgs_per_s,
            self.detection.cell(),
            self.false_deaths,
            self.wall_ms_mean as f64 / 1000.0,
        )
    }

    fn fd_row(&self, label: &str) -> String {
        let undetected = match (self.undetected - self.missed, self.missed) {
            (0, 0) => String::new(),
            (n, 0) => format!(", {n} ended first"),
            (0, m) => format!(", {m} missed"),
            (n, m) => format!(", {n} ended first, {m} missed"),
        };
        let cut_short = match self.revival_cut_short {
            0 => String::new(),
            n => format!(", {n} cut short"),
        };
        let to_dead = match self.msgs_to_dead_per_s {
            Some(rate) => format!("{rate:.1} msgs/s, {} not probes", self.non_probes_to_dead),
            None => "-".to_string(),
        };
        format!(
            "| {label} | {} | {} ({} lost) | {:.2} | {}{undetected} | {}{cut_short} | {} / {} | {to_dead} |",
            self.seeds,
            self.valid,
            self.lost_total,
            self.msgs_per_op_mean,
            self.detection.cell(),
            self.revival.cell(),
            self.false_suspicions,
            self.false_deaths,
        )
    }
}

fn fail(why: &str) -> ! {
    eprintln!("simulate: {why}");
    std::process::exit(2)
}
