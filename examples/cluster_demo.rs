//! `make cluster-demo`: a scripted tour of cluster mode, and a test of the user's path.
//!
//! Starts five `node serve` processes on loopback with mutual TLS (`LocalCluster`),
//! broadcasts values to random nodes, reads them from every node, kills one node with
//! SIGKILL and watches every other node mark it dead, restarts it and watches it come back
//! alive everywhere and catch up, then stops every node with SIGTERM. Each step has a bound;
//! the demo exits 1 when one is missed (and keeps the nodes' logs), 0 otherwise.
//!
//! `cargo run --release --example cluster_demo -- [--seed S] [--kill nI]` after
//! `cargo build --release`: it runs `target/release/node` of this workspace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use node::cluster::local::{LocalCluster, wait_until};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const NODES: usize = 5;
/// Values broadcast before the kill, and while the killed node is down.
const BEFORE: i64 = 20;
const WHILE_DOWN: i64 = 5;
/// Every value on every node, after the first broadcasts.
const SPREAD_BOUND: Duration = Duration::from_secs(5);
/// The killed node dead in every other node's view.
const DEAD_BOUND: Duration = Duration::from_secs(6);
/// The restarted node alive in every view (its own included), from the restart.
const ALIVE_BOUND: Duration = Duration::from_secs(5);
/// Every value on every node again, the restarted one included, from the restart.
const CAUGHT_UP_BOUND: Duration = Duration::from_secs(5);
/// Every node exited with status 0 after SIGTERM.
const STOP_BOUND: Duration = Duration::from_secs(5);

#[derive(Parser, Debug)]
#[command(about = "A scripted tour of a local 5-node cluster")]
struct Args {
    /// Seed of the random choices (which node gets which value, which node is killed);
    /// default: from the clock.
    #[arg(long)]
    seed: Option<u64>,
    /// The node to kill, e.g. n2; default: a random one.
    #[arg(long)]
    kill: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = root.join("target/release/node");
    if !bin.is_file() {
        eprintln!(
            "{} not found: run `cargo build --release` (or `make cluster-demo`) first",
            bin.display()
        );
        return ExitCode::FAILURE;
    }
    // A directory of this run's own: another demo may run in the same workspace.
    let parent = root.join("target/cluster-demo");
    let dir = match std::fs::create_dir_all(&parent)
        .and_then(|()| tempfile::Builder::new().prefix("run-").tempdir_in(&parent))
    {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("creating a directory in {}: {e}", parent.display());
            return ExitCode::FAILURE;
        }
    };
    match tour(&bin, dir.path(), &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let kept = dir.keep();
            println!("\nFAILED: {e:#}");
            println!(
                "the nodes' logs and credentials are kept in {}",
                kept.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// The whole tour; the cluster is gone (every process killed) when it returns.
fn tour(bin: &Path, dir: &Path, args: &Args) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let victim = match &args.kill {
        Some(id) => id
            .strip_prefix('n')
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < NODES)
            .with_context(|| format!("--kill {id}: name one of n0..n{}", NODES - 1))?,
        None => rng.random_range(0..NODES),
    };
    let v = format!("n{victim}");
    let others: Vec<usize> = (0..NODES).filter(|i| *i != victim).collect();
    let tour_start = Instant::now();
    let mut times: Vec<(String, Duration, Duration)> = Vec::new();

    println!(
        "== cluster demo: {NODES} `node serve` processes, mutual TLS on loopback (seed {seed}; \
         replay the choices with --seed {seed})"
    );
    let started = Instant::now();
    let mut c = LocalCluster::start(bin, dir, NODES, true, &[])?;
    println!("started in {} ({}):", secs(started.elapsed()), display(dir));
    for (i, m) in c.members.iter().enumerate() {
        println!(
            "  {}  pid {:>7}  peers {}  clients {}",
            m.id,
            c.pid(i).unwrap_or(0),
            m.peer_addr,
            m.client_addr
        );
    }

    println!("\n== 1. broadcast {BEFORE} values, each to a random node");
    let mut sent = BTreeSet::new();
    let mut line = Vec::new();
    for value in 0..BEFORE {
        let i = rng.random_range(0..NODES);
        broadcast(&c, i, value)?;
        sent.insert(value);
        line.push(format!("{value}→n{i}"));
    }
    println!("  {}", line.join(" "));
    let spread =
        wait_until(SPREAD_BOUND, || everyone_has(&c, 0..NODES, &sent)).with_context(|| {
            format!(
                "not every node read all {BEFORE} values within {}",
                secs(SPREAD_BOUND)
            )
        })?;
    println!(
        "  every node reads all {BEFORE} values after {}",
        secs(spread)
    );
    times.push(("values on every node".into(), spread, SPREAD_BOUND));

    println!("\n== 2. read from every node");
    for i in 0..NODES {
        println!("  n{i}: {}", json!(c.read(i)?));
    }

    println!(
        "\n== 3. SIGKILL {v} (pid {}): nothing flushed, its connections reset",
        c.pid(victim).unwrap_or(0)
    );
    let killed = Instant::now();
    c.kill(victim);
    let seen = watch(&others, killed, DEAD_BOUND, |i| {
        let view = c.membership(i)?;
        Ok(view["dead"]
            .get(&v)
            .map(|voters| format!("voters {voters}")))
    })?;
    let dead = report(&seen, &format!("{v} dead"), DEAD_BOUND)?;
    println!("  {v} dead in every other node's view after {}", secs(dead));
    times.push((format!("{v} dead everywhere"), dead, DEAD_BOUND));
    let sample = others[0];
    println!("  n{sample}'s membership: {}", c.membership(sample)?);

    println!("\n== 4. broadcast {WHILE_DOWN} more values while {v} is down");
    let mut line = Vec::new();
    for value in BEFORE..BEFORE + WHILE_DOWN {
        let i = others[rng.random_range(0..others.len())];
        broadcast(&c, i, value)?;
        sent.insert(value);
        line.push(format!("{value}→n{i}"));
    }
    println!("  {}", line.join(" "));

    println!("\n== 5. restart {v}: same id and address, empty state, a new epoch");
    let restarted = Instant::now();
    c.restart(victim)?;
    println!(
        "  {v} (pid {}) answers on its client port after {}",
        c.pid(victim).unwrap_or(0),
        secs(restarted.elapsed())
    );
    let seen = watch(&others, restarted, ALIVE_BOUND, |i| {
        let view = c.membership(i)?;
        let alive = view["alive"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(v)));
        Ok(alive.then(|| format!("incarnation {}", view["incarnations"][&v])))
    })?;
    let alive = report(&seen, &format!("{v} alive"), ALIVE_BOUND)?;
    let own = watch(&[victim], restarted, ALIVE_BOUND, |i| {
        let view = c.membership(i)?;
        let all = view["alive"].as_array().map_or(0, Vec::len) == NODES - 1;
        Ok(all.then(|| format!("incarnation {}", view["incarnation"])))
    })?;
    let own_alive = report(&own, "every peer alive", ALIVE_BOUND)?;
    let alive = alive.max(own_alive);
    println!("  {v} alive in every view after {}", secs(alive));
    times.push((format!("{v} alive everywhere"), alive, ALIVE_BOUND));
    let caught_up = wait_until(CAUGHT_UP_BOUND.saturating_sub(restarted.elapsed()), || {
        everyone_has(&c, 0..NODES, &sent)
    })
    .map(|_| restarted.elapsed())
    .with_context(|| {
        format!(
            "not every node read all {} values within {} of the restart: {v} reads {}",
            sent.len(),
            secs(CAUGHT_UP_BOUND),
            json!(c.read(victim).ok())
        )
    })?;
    println!(
        "  {v} caught up: every node reads all {} values (the {WHILE_DOWN} sent while {v} was \
         down too) after {}",
        sent.len(),
        secs(caught_up)
    );
    println!("  {v}: {}", json!(c.read(victim)?));
    times.push((format!("{v} caught up"), caught_up, CAUGHT_UP_BOUND));

    println!("\n== 6. transport counters (`stats`)");
    for i in 0..NODES {
        let s = c.request(i, json!({"type": "stats"}))?;
        println!(
            "  n{i}: sent {} messages / {} bytes, received {} / {}, reconnects {}, queue drops {}",
            s["messages_sent"],
            s["bytes_sent"],
            s["messages_received"],
            s["bytes_received"],
            s["reconnects"],
            s["queue_drops"]
        );
    }

    println!("\n== 7. SIGTERM every node: each flushes its queues and exits 0");
    let stopped = stop_all(&mut c)?;
    println!("  every node exited with status 0 after {}", secs(stopped));
    times.push(("SIGTERM to exit 0".into(), stopped, STOP_BOUND));
    drop(c);

    println!(
        "\n== summary: {NODES} nodes, {} values, {v} killed and restarted",
        sent.len()
    );
    for (what, took, bound) in &times {
        println!("  {what:<24} {:>8}   (bound {})", secs(*took), secs(*bound));
    }
    println!(
        "  total {}; every step within its bound",
        secs(tour_start.elapsed())
    );
    Ok(())
}

fn broadcast(c: &LocalCluster, i: usize, value: i64) -> anyhow::Result<()> {
    let reply = c.request(i, json!({"type": "broadcast", "message": value}))?;
    ensure!(
        reply["type"] == "broadcast_ok",
        "n{i} answered a broadcast with {reply}"
    );
    Ok(())
}

/// Every node in `nodes` reads exactly `values` (a failed read counts as not yet).
fn everyone_has(
    c: &LocalCluster,
    mut nodes: impl Iterator<Item = usize>,
    values: &BTreeSet<i64>,
) -> bool {
    nodes.all(|i| {
        c.read(i).is_ok_and(|read| {
            read.iter()
                .filter_map(Value::as_i64)
                .collect::<BTreeSet<_>>()
                == *values
        })
    })
}

/// Per node: when a check first held (since the step began), and what it showed.
type Seen = Vec<(usize, Option<(Duration, String)>)>;

/// Asks `probe` about every node in `nodes` every 20 ms until it has said yes (`Some`)
/// for each, or `within` of `since` passed.
fn watch(
    nodes: &[usize],
    since: Instant,
    within: Duration,
    mut probe: impl FnMut(usize) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<Seen> {
    let mut seen: Seen = nodes.iter().map(|i| (*i, None)).collect();
    loop {
        for (i, when) in seen.iter_mut().filter(|(_, when)| when.is_none()) {
            if let Some(detail) = probe(*i)? {
                *when = Some((since.elapsed(), detail));
            }
        }
        if seen.iter().all(|(_, when)| when.is_some()) || since.elapsed() > within {
            return Ok(seen);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Prints what `watch` saw ("nI sees `what` after ..."); the latest time, or an error
/// naming the nodes that missed the bound.
fn report(seen: &Seen, what: &str, bound: Duration) -> anyhow::Result<Duration> {
    let mut latest = Duration::ZERO;
    let mut missed = Vec::new();
    for (i, when) in seen {
        match when {
            Some((took, detail)) => {
                println!("  n{i} sees {what} after {} ({detail})", secs(*took));
                latest = latest.max(*took);
            }
            None => {
                println!("  n{i} does not see {what} within {}", secs(bound));
                missed.push(format!("n{i}"));
            }
        }
    }
    if !missed.is_empty() {
        bail!(
            "{} did not see {what} within {}",
            missed.join(", "),
            secs(bound)
        );
    }
    Ok(latest)
}

/// SIGTERM to every node at once, then each one's exit status; SIGKILL for any node
/// still running after `STOP_BOUND`, which then fails the step.
fn stop_all(c: &mut LocalCluster) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let pids: Vec<u32> = (0..NODES).filter_map(|i| c.pid(i)).collect();
    for pid in &pids {
        signal("-TERM", *pid);
    }
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            while start.elapsed() < STOP_BOUND {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            for pid in pids {
                signal("-KILL", pid);
            }
        })
    };
    let mut failures = Vec::new();
    for i in 0..NODES {
        match c.terminate(i) {
            Ok(status) if status.success() => {}
            Ok(status) => failures.push(format!("n{i}: {status}")),
            Err(e) => failures.push(format!("n{i}: {e:#}")),
        }
    }
    let took = start.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    if !failures.is_empty() {
        bail!(
            "not every node exited with status 0 within {} of SIGTERM: {}",
            secs(STOP_BOUND),
            failures.join("; ")
        );
    }
    Ok(took)
}

fn signal(signal: &str, pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status();
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// A path relative to the workspace when it is in it.
fn display(path: &Path) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}
