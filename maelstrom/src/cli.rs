//! Maelstrom's command line (docs/maelstrom-compatibility.md 5.1), plus ours: `--seed`,
//! `--store`, and the `summarize` subcommand. Bad command lines exit 254, as Jepsen's CLI
//! does.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};

use crate::checker::{Availability, Validity, check_all};
use crate::driver::process::{self, ProcessOptions, ProcessRun};
use crate::driver::tcp::{self, TcpOptions, proxy::PartitionMode};
use crate::edn::{self, Edn};
use crate::nemesis::Fault;
use crate::net::LatencyDist;
use crate::options::{NetworkArgs, TestOptions};
use crate::store::Store;
use crate::summary::summarize;
use crate::topology::Topology;
use crate::workload::Workload;

pub const EXIT_VALID: i32 = 0;
pub const EXIT_INVALID: i32 = 1;
pub const EXIT_UNKNOWN: i32 = 2;
pub const EXIT_BAD_ARGS: i32 = 254;
pub const EXIT_CRASH: i32 = 255;

#[derive(Parser, Debug)]
#[command(
    name = "maelstrom",
    version,
    about = "A JVM-free, Maelstrom-compatible test runner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a test against a node binary.
    Test(Box<TestArgs>),
    /// Prints validity, msgs-per-op and stable latency of a results.edn (ours or real
    /// Maelstrom's).
    Summarize {
        /// A store directory or a results.edn file.
        #[arg(default_value = "store/latest")]
        path: PathBuf,
        /// Print one row of a benchmark table, labelled, instead of the summary line.
        #[arg(long)]
        row: Option<String>,
        /// Print the header of the benchmark table and exit.
        #[arg(long)]
        header: bool,
    },
    /// Serves the store over HTTP: every run, its files, and two runs side by side.
    Serve {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// The store to serve.
        #[arg(long, default_value = "store")]
        store: PathBuf,
    },
}

#[derive(Args, Debug)]
struct TestArgs {
    /// echo, unique-ids, broadcast (or gossip), g-set, g-counter, pn-counter.
    #[arg(short = 'w', long)]
    workload: Option<String>,
    /// The node binary.
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Arguments passed to the node binary.
    #[arg(trailing_var_arg = false)]
    node_args: Vec<String>,
    /// Nodes n0..n(N-1); without it, n1..n5.
    #[arg(long)]
    node_count: Option<usize>,
    /// Explicit comma-separated node ids.
    #[arg(long)]
    nodes: Option<String>,
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// Client ops per second, across all clients.
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// Worker threads: N, or Kn for K per node.
    #[arg(long, default_value = "1n")]
    concurrency: String,
    /// Mean latency of messages between nodes, ms.
    #[arg(long, default_value_t = 0)]
    latency: u64,
    #[command(flatten)]
    network: NetworkArgs,
    #[arg(long, default_value = "grid")]
    topology: String,
    /// total, or a fraction in [0, 1].
    #[arg(long)]
    availability: Option<String>,
    #[arg(long)]
    log_stderr: bool,
    #[arg(long)]
    log_net_send: bool,
    #[arg(long)]
    log_net_recv: bool,
    #[arg(long, default_value_t = 1)]
    test_count: u32,
    /// Seed for every random choice of the runner (ours); default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// Where results go (ours).
    #[arg(long, default_value = "store")]
    store: PathBuf,
    /// How nodes talk (ours): stdio (Maelstrom's: every message through the runner), or
    /// tcp (each node a `serve` process of a TLS cluster, faults injected by proxies).
    #[arg(long, default_value = "stdio")]
    transport: Transport,
    /// With --transport tcp, what a cut link does: hold its bytes until heal, or reset its
    /// connections and refuse new ones until heal (ours).
    #[arg(long, default_value = "hold")]
    partition_mode: PartitionMode,
}

/// `--transport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Transport {
    Stdio,
    Tcp,
}

/// Runs the command line and returns the process's exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_BAD_ARGS
            } else {
                EXIT_VALID
            };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Summarize { header: true, .. } => {
            println!("{}", crate::summary::TABLE_HEADER);
            EXIT_VALID
        }
        Command::Summarize { path, row, .. } => summarize_command(&path, row.as_deref()),
        Command::Serve { port, host, store } => {
            match crate::report::serve::run(&store, &host, port) {
                Ok(()) => EXIT_VALID,
                Err(why) => {
                    eprintln!("maelstrom: {why}");
                    EXIT_CRASH
                }
            }
        }
        Command::Test(args) => match prepare(&args) {
            Ok((opts, popts)) => run_tests(&opts, popts, &args),
            Err(why) => {
                eprintln!("maelstrom: {why}");
                EXIT_BAD_ARGS
            }
        },
    }
}

fn summarize_command(path: &Path, row: Option<&str>) -> i32 {
    let file = if path.is_dir() {
        path.join("results.edn")
    } else {
        path.to_path_buf()
    };
    let parsed = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))
        .and_then(|text| edn::parse(&text).map_err(|e| format!("{}: {e}", file.display())));
    match parsed {
        Ok(results) => {
            let summary = summarize(&results);
            match row {
                Some(label) => println!("{}", summary.row(label)),
                None => println!("{summary}"),
            }
            EXIT_VALID
        }
        Err(why) => {
            eprintln!("maelstrom: {why}");
            EXIT_CRASH
        }
    }
}

/// Validates the options as Maelstrom would before starting anything.
fn prepare(args: &TestArgs) -> Result<(TestOptions, ProcessOptions), String> {
    let workload: Workload = args
        .workload
        .as_deref()
        .ok_or("missing --workload (-w)")?
        .parse()?;
    let bin = args
        .bin
        .as_ref()
        .ok_or("missing --bin: the node binary to test")?;
    let bin = std::fs::canonicalize(bin).map_err(|e| format!("--bin {}: {e}", bin.display()))?;
    let nodes: Vec<String> = match (&args.nodes, args.node_count) {
        (Some(list), _) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        (None, Some(n)) => (0..n).map(|i| format!("n{i}")).collect(),
        (None, None) => (1..=5).map(|i| format!("n{i}")).collect(),
    };
    if nodes.is_empty() {
        return Err("there must be at least one node".into());
    }
    let latency_dist = args.network.latency_dist;
    if args.latency == 0 && latency_dist != LatencyDist::Constant {
        return Err(format!(
            "--latency-dist {latency_dist} needs --latency > 0 (Maelstrom would divide by zero or loop forever)"
        ));
    }
    let concurrency = match args.concurrency.strip_suffix('n') {
        Some(k) => k.parse::<usize>().map(|k| k * nodes.len()),
        None => args.concurrency.parse::<usize>(),
    }
    .map_err(|_| format!("--concurrency {:?}: expected N or Kn", args.concurrency))?;
    if concurrency == 0 {
        return Err("--concurrency must be positive".into());
    }
    let availability = match args.availability.as_deref() {
        None => None,
        Some("total") => Some(Availability::Total),
        Some(a) => match a.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Some(Availability::Fraction(f)),
            _ => {
                return Err(format!(
                    "--availability {a:?}: expected total or a number in [0, 1]"
                ));
            }
        },
    };
    if args.time_limit == 0 || args.rate.is_nan() || args.rate < 0.0 {
        return Err("--time-limit must be positive, --rate not negative".into());
    }
    let topology: Topology = args.topology.parse()?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let mut opts = TestOptions {
        concurrency,
        time_limit: Duration::from_secs(args.time_limit),
        rate: args.rate,
        latency_ms: args.latency,
        topology,
        availability,
        log_net_send: args.log_net_send,
        log_net_recv: args.log_net_recv,
        seed,
        nodes,
        ..TestOptions::new(workload, 0)
    };
    args.network.apply(&mut opts)?;
    match args.transport {
        Transport::Stdio if opts.nemesis.contains(&Fault::CrashRestart) => {
            return Err(
                "--nemesis crash-restart needs --transport tcp (over stdio a node cannot be started again)"
                    .into(),
            );
        }
        Transport::Stdio if args.partition_mode != PartitionMode::Hold => {
            return Err("--partition-mode applies to --transport tcp only".into());
        }
        Transport::Tcp if opts.nemesis.contains(&Fault::StallOutput) => {
            return Err(
                "--nemesis stall-output applies to --transport stdio only: over tcp nodes talk through sockets"
                    .into(),
            );
        }
        Transport::Tcp if opts.nemesis.contains(&Fault::Duplicate) => {
            return Err(
                "--nemesis duplicate does not apply to --transport tcp: TCP delivers each byte once"
                    .into(),
            );
        }
        _ => {}
    }
    let popts = ProcessOptions {
        bin,
        args: args.node_args.clone(),
        node_logs: PathBuf::new(),
        log_stderr: args.log_stderr,
        progress: std::io::stderr().is_terminal(),
    };
    Ok((opts, popts))
}

fn run_tests(opts: &TestOptions, mut popts: ProcessOptions, args: &TestArgs) -> i32 {
    let mut worst = EXIT_VALID;
    for i in 0..args.test_count {
        let mut opts = opts.clone();
        opts.seed = opts.seed.wrapping_add(u64::from(i));
        let store = match Store::create(&args.store, opts.workload.name()) {
            Ok(store) => store,
            Err(e) => {
                eprintln!(
                    "maelstrom: cannot create the store under {}: {e}",
                    args.store.display()
                );
                return EXIT_CRASH;
            }
        };
        popts.node_logs = store.node_logs();
        let code = run_one(&opts, &popts, args, &store);
        worst = worst.max(code);
        if code != EXIT_VALID && code != EXIT_UNKNOWN {
            return code;
        }
    }
    worst
}

fn run_one(opts: &TestOptions, popts: &ProcessOptions, args: &TestArgs, store: &Store) -> i32 {
    let mut log_lines = Vec::new();
    let mut log = |line: &str| {
        println!("{line}");
        log_lines.push(line.to_string());
    };
    log(&format!(
        "Running {} with {} nodes, seed {} (replay with --seed {})",
        opts.workload.name(),
        opts.nodes.len(),
        opts.seed,
        opts.seed
    ));
    let run: anyhow::Result<ProcessRun> = match args.transport {
        Transport::Stdio => process::run(opts, popts, &mut log),
        Transport::Tcp => {
            let topts = TcpOptions {
                bin: popts.bin.clone(),
                args: popts.args.clone(),
                node_logs: popts.node_logs.clone(),
                log_stderr: popts.log_stderr,
                progress: popts.progress,
                partition_mode: args.partition_mode,
            };
            tcp::run(opts, &topts, &mut log)
        }
    };
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            log(&format!(
                "Oh jeez, I'm sorry, Jepsen broke. Here's why:\n{e:#}"
            ));
            let _ = store.write_log(&log_lines);
            return EXIT_CRASH;
        }
    };
    let _ = store.write_history(&run.outcome.history);
    if let Some(why) = &run.outcome.abort {
        log(&format!(
            "Oh jeez, I'm sorry, Jepsen broke. Here's why:\n{why}"
        ));
        let _ = store.write_log(&log_lines);
        return EXIT_CRASH;
    }
    let mut results = check_all(
        opts.workload,
        &run.outcome.history,
        &run.outcome.net,
        opts.availability,
    );
    let mut runner = run.runner;
    if let Edn::Map(entries) = &mut runner {
        entries.push((Edn::kw("seed"), Edn::Int(opts.seed as i64)));
        let silenced = run
            .outcome
            .silenced
            .iter()
            .map(|(n, why)| (Edn::Str(n.clone()), Edn::Str(why.clone())))
            .collect();
        entries.push((Edn::kw("silenced-nodes"), Edn::Map(silenced)));
        entries.push((
            Edn::kw("ok-latency-ms"),
            crate::history::ok_latencies(&run.outcome.history),
        ));
        let outcome = &run.outcome;
        let judgement =
            crate::checker::detector::judge(&outcome.history, outcome.origin, &outcome.membership);
        entries.push((Edn::kw("membership"), judgement.to_edn(outcome.origin)));
    }
    if let Edn::Map(entries) = &mut results.edn {
        let at = entries.len() - 1; // before :valid?
        entries.insert(at, (Edn::kw("runner"), runner));
    }
    for line in crate::report::write(&store.dir, opts, &run.outcome, &mut results.edn) {
        log(&line);
    }
    let _ = store.write_results(&results.edn);
    println!("\n{}\n", results.edn.pretty());
    let (line, code) = match results.valid {
        Validity::True => ("Everything looks good! ヽ(‘ー`)ノ", EXIT_VALID),
        Validity::False => ("Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻", EXIT_INVALID),
        Validity::Unknown => (
            "Errors occurred during analysis, but no anomalies found. ಠ~ಠ",
            EXIT_UNKNOWN,
        ),
    };
    log(line);
    let _ = store.write_log(&log_lines);
    code
}
