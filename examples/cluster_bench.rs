//! `make cluster-bench`: the broadcast workload against real `node serve` processes on
//! loopback, over mutual TLS (a `LocalCluster`), one table row per cluster size.
//!
//! ```sh
//! cargo build --release --examples
//! target/release/examples/cluster_bench --nodes 5,25 --rate 100 --secs 20
//! ```
//!
//! Workload (the shape of Maelstrom's broadcast workload): `--rate` client operations a
//! second in total for `--secs` seconds, operation k due at k/rate and sent to node
//! k mod N; each is a broadcast of a unique value or a read, with even odds. One client
//! thread per node, on one persistent connection, one operation at a time (late
//! operations go at once, so the rate is kept unless a node answers slower than its share).
//!
//! Figures (printed with the method once more above the table):
//! - msgs-per-op: the messages the nodes sent each other (the sum over nodes of
//!   `stats.messages_sent`, counted from the start of the workload to the end of the
//!   measurement) over the client operations invoked; the latency poller's reads are not
//!   operations.
//! - value latency: for every `--sample-every`-th broadcast (0: none, and no polling,
//!   for CPU figures of the workload alone), from the moment its client
//!   receives `broadcast_ok` to the moment the value is in every node's read. A poller
//!   thread per node reads its node every `--poll-ms` while a sampled value is missing
//!   there; a value counts as present on a node at the moment the first read reply that
//!   holds it arrives. So latencies are upper bounds, late by at most one poll period and
//!   one read round trip.
//! - CPU seconds per node: utime + stime from `/proc/<pid>/stat` over the same window
//!   (the pollers' reads included); peak RSS: `VmHWM` from `/proc/<pid>/status`, read
//!   before the nodes are killed.
//! - reconnects and queue drops: summed over nodes from `stats` at the end.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use node::cluster::local::{LocalCluster, wait_until};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

const USAGE: &str = "usage: cluster_bench [--nodes 5,25] [--rate 100] [--secs 20] \
                     [--sample-every 5 (0: off)] [--poll-ms 20] [--drain-secs 10] [--seed 0] \
                     [--bin target/release/node] [--dir DIR] [--insecure]";

#[derive(Clone, Debug)]
struct Options {
    nodes: Vec<usize>,
    rate: f64,
    secs: f64,
    sample_every: u64,
    poll: Duration,
    drain: Duration,
    seed: u64,
    bin: PathBuf,
    dir: Option<PathBuf>,
    tls: bool,
}

impl Options {
    fn parse() -> anyhow::Result<Options> {
        let mut o = Options {
            nodes: vec![5, 25],
            rate: 100.0,
            secs: 20.0,
            sample_every: 5,
            poll: Duration::from_millis(20),
            drain: Duration::from_secs(10),
            seed: 0,
            bin: default_bin(),
            dir: None,
            tls: true,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "--insecure" {
                o.tls = false;
                continue;
            }
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            let bad = |e: &dyn std::fmt::Display| anyhow::anyhow!("{flag} {value}: {e}");
            match flag.as_str() {
                "--nodes" => {
                    o.nodes = value
                        .split(',')
                        .map(|n| n.trim().parse().map_err(|e| bad(&e)))
                        .collect::<anyhow::Result<_>>()?
                }
                "--rate" => o.rate = value.parse().map_err(|e| bad(&e))?,
                "--secs" => o.secs = value.parse().map_err(|e| bad(&e))?,
                "--sample-every" => o.sample_every = value.parse().map_err(|e| bad(&e))?,
                "--poll-ms" => o.poll = Duration::from_millis(value.parse().map_err(|e| bad(&e))?),
                "--drain-secs" => {
                    o.drain = Duration::from_secs_f64(value.parse().map_err(|e| bad(&e))?)
                }
                "--seed" => o.seed = value.parse().map_err(|e| bad(&e))?,
                "--bin" => o.bin = value.into(),
                "--dir" => o.dir = Some(value.into()),
                _ => bail!("unknown flag {flag}\n{USAGE}"),
            }
        }
        if o.nodes.is_empty() || o.nodes.contains(&0) || o.nodes.iter().any(|&n| n > 200) {
            bail!("--nodes: between 1 and 200 nodes");
        }
        if !(o.rate > 0.0 && o.rate <= 10_000.0 && o.secs > 0.0 && o.secs <= 600.0) {
            bail!("--rate must be in (0, 10000] and --secs in (0, 600]");
        }
        if o.poll.is_zero() {
            bail!("--poll-ms must be positive");
        }
        Ok(o)
    }
}

/// `node` next to the directory of this example (`target/release/examples/..`).
fn default_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("node")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("target/release/node"))
}

/// A persistent client connection speaking one envelope per line.
struct Conn {
    addr: String,
    stream: Option<(TcpStream, BufReader<TcpStream>)>,
    next_id: u64,
}

impl Conn {
    fn new(addr: &str) -> Conn {
        Conn {
            addr: addr.to_string(),
            stream: None,
            next_id: 1,
        }
    }

    fn call(&mut self, mut body: Value) -> anyhow::Result<Value> {
        let result = self.try_call(&mut body);
        if result.is_err() {
            self.stream = None; // reconnect for the next call
        }
        result
    }

    fn try_call(&mut self, body: &mut Value) -> anyhow::Result<Value> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let reader = BufReader::new(stream.try_clone()?);
            self.stream = Some((stream, reader));
        }
        let (stream, reader) = self.stream.as_mut().expect("connected");
        let id = self.next_id;
        self.next_id += 1;
        body["msg_id"] = json!(id);
        writeln!(stream, "{}", json!({"body": body}))?;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("{} closed the connection", self.addr);
            }
            let envelope: Value = serde_json::from_str(&line)?;
            if envelope["body"]["in_reply_to"] == json!(id) {
                return Ok(envelope["body"].clone());
            }
        }
    }
}

/// A sampled value: when its broadcast was acknowledged, and on which nodes it was seen.
struct Sample {
    acked: Instant,
    seen: Vec<Option<Instant>>,
}

#[derive(Default)]
struct Shared {
    samples: Mutex<HashMap<i64, Sample>>,
    /// Values sampled and not yet seen on every node.
    pending: AtomicU64,
    /// Broadcasts acknowledged so far, all clients together.
    acked_broadcasts: AtomicU64,
    stop: AtomicBool,
    poll_reads: AtomicU64,
}

#[derive(Default)]
struct ClientTally {
    invoked: u64,
    ok: u64,
    broadcasts: u64,
    reads: u64,
    failed: u64,
    /// Round trips of acknowledged operations, ms.
    round_trips: Vec<f64>,
}

/// One cluster size's figures.
struct Row {
    nodes: usize,
    tally: ClientTally,
    msgs: u64,
    latencies: Vec<f64>,
    samples: usize,
    unseen: usize,
    cpu: Vec<f64>,
    rss_kib: Vec<u64>,
    reconnects: u64,
    queue_drops: u64,
    poll_reads: u64,
    window: Duration,
}

fn main() -> anyhow::Result<()> {
    let o = Options::parse()?;
    if !o.bin.exists() {
        bail!(
            "{} not found: cargo build --release first (or --bin PATH)",
            o.bin.display()
        );
    }
    let base = match &o.dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("cluster-bench-{}", std::process::id())),
    };
    let mut rows = Vec::new();
    for &n in &o.nodes {
        let dir = base.join(format!("{n}-nodes"));
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!(
            "== {n} nodes{}: {} ops/s for {} s (logs in {})",
            if o.tls { " over TLS" } else { " in plaintext" },
            o.rate,
            o.secs,
            dir.display()
        );
        let row = run(&o, n, &dir).with_context(|| format!("{n} nodes"))?;
        rows.push(row);
    }
    if o.dir.is_none() {
        let _ = std::fs::remove_dir_all(&base);
    }
    print_method(&o);
    print_table(&rows);
    Ok(())
}

fn run(o: &Options, n: usize, dir: &Path) -> anyhow::Result<Row> {
    let cluster = start_cluster(o, n, dir)?;
    // Every node sees every other alive before the clock starts.
    let formed = wait_until(Duration::from_secs(15), || {
        (0..n).all(|i| {
            cluster.membership(i).is_ok_and(|v| {
                v["alive"].as_array().is_some_and(|a| a.len() + 1 == n)
                    && v["dead"].as_object().is_none_or(|d| d.is_empty())
                    && v["suspected"].as_object().is_none_or(|s| s.is_empty())
            })
        })
    });
    let Some(formed) = formed else {
        bail!(
            "the cluster did not form within 15 s (logs in {})",
            dir.display()
        );
    };
    eprintln!("   formed in {:.2} s", formed.as_secs_f64());
    let pids: Vec<u32> = (0..n)
        .map(|i| cluster.pid(i).context("node not running"))
        .collect::<anyhow::Result<_>>()?;
    let clk_tck = clock_ticks();
    let sent_before = sum_stats(&cluster, n, "messages_sent")?;
    let cpu_before: Vec<f64> = pids.iter().map(|&p| cpu_seconds(p, clk_tck)).collect();

    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let total_ops = (o.rate * o.secs).floor() as u64;
    let interval = Duration::from_secs_f64(1.0 / o.rate);
    let (tallies, poll_reads) = thread::scope(|s| {
        let pollers: Vec<_> = (0..n)
            .map(|i| {
                let addr = cluster.members[i].client_addr.clone();
                let shared = shared.clone();
                s.spawn(move || poller(i, &addr, &shared, o.poll))
            })
            .collect();
        let clients: Vec<_> = (0..n)
            .map(|i| {
                let addr = cluster.members[i].client_addr.clone();
                let shared = shared.clone();
                s.spawn(move || client(i, n, &addr, &shared, o, start, interval, total_ops))
            })
            .collect();
        let tallies: Vec<ClientTally> = clients.into_iter().map(|h| h.join().unwrap()).collect();
        // Workload over: let the sampled values arrive, for a bounded time.
        let drained = wait_until(o.drain, || shared.pending.load(Ordering::SeqCst) == 0);
        if drained.is_none() {
            eprintln!(
                "   {} sampled values still missing somewhere {:?} after the workload",
                shared.pending.load(Ordering::SeqCst),
                o.drain
            );
        }
        shared.stop.store(true, Ordering::SeqCst);
        for p in pollers {
            p.join().unwrap();
        }
        (tallies, shared.poll_reads.load(Ordering::SeqCst))
    });
    let window = start.elapsed();
    let sent_after = sum_stats(&cluster, n, "messages_sent")?;
    let reconnects = sum_stats(&cluster, n, "reconnects")?;
    let queue_drops = sum_stats(&cluster, n, "queue_drops")?;
    let cpu: Vec<f64> = pids
        .iter()
        .zip(&cpu_before)
        .map(|(&p, before)| cpu_seconds(p, clk_tck) - before)
        .collect();
    let rss_kib: Vec<u64> = pids.iter().map(|&p| peak_rss_kib(p)).collect();
    drop(cluster); // kills the nodes

    let mut tally = ClientTally::default();
    for t in tallies {
        tally.invoked += t.invoked;
        tally.ok += t.ok;
        tally.broadcasts += t.broadcasts;
        tally.reads += t.reads;
        tally.failed += t.failed;
        tally.round_trips.extend(t.round_trips);
    }
    let samples = shared.samples.lock().expect("samples");
    let mut latencies = Vec::new();
    let mut unseen = 0;
    for sample in samples.values() {
        match sample
            .seen
            .iter()
            .copied()
            .collect::<Option<Vec<Instant>>>()
        {
            Some(seen) => {
                let last = seen.into_iter().max().expect("nodes");
                latencies.push(last.duration_since(sample.acked).as_secs_f64() * 1000.0);
            }
            None => unseen += 1,
        }
    }
    Ok(Row {
        nodes: n,
        tally,
        msgs: sent_after.saturating_sub(sent_before),
        latencies,
        samples: samples.len(),
        unseen,
        cpu,
        rss_kib,
        reconnects,
        queue_drops,
        poll_reads,
        window,
    })
}

/// `LocalCluster::start`, tried up to three times: the ports it picks are free when picked
/// but may be taken before a node binds them (by any outgoing connection on this machine,
/// the other nodes' dials included), and then that node cannot start.
fn start_cluster(o: &Options, n: usize, dir: &Path) -> anyhow::Result<LocalCluster> {
    let mut attempt = 1;
    loop {
        let try_dir = dir.join(format!("attempt-{attempt}"));
        match LocalCluster::start(&o.bin, &try_dir, n, o.tls, &[]) {
            Ok(cluster) => return Ok(cluster),
            Err(e) if attempt < 3 => {
                let why = address_in_use(&try_dir).unwrap_or_default();
                eprintln!("   start failed ({e}{why}); trying again");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A node log's "Address already in use" line, if any.
fn address_in_use(dir: &Path) -> Option<String> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("Address already in use")) {
            return Some(format!(": {}", line.trim()));
        }
    }
    None
}

/// Node `i`'s client: operations i, i+n, i+2n, ... each at its due time.
#[allow(clippy::too_many_arguments)]
fn client(
    i: usize,
    n: usize,
    addr: &str,
    shared: &Shared,
    o: &Options,
    start: Instant,
    interval: Duration,
    total_ops: u64,
) -> ClientTally {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed ^ (i as u64).wrapping_mul(0x9e37_79b9));
    let mut conn = Conn::new(addr);
    let mut tally = ClientTally::default();
    let mut k = i as u64;
    while k < total_ops {
        let due = start + interval.mul_f64(k as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let broadcast = rng.random_bool(0.5);
        let value = k as i64;
        let body = if broadcast {
            json!({"type": "broadcast", "message": value})
        } else {
            json!({"type": "read"})
        };
        tally.invoked += 1;
        let sent = Instant::now();
        let expected = if broadcast { "broadcast_ok" } else { "read_ok" };
        match conn.call(body) {
            Ok(reply) if reply["type"] == expected => {
                let acked = Instant::now();
                tally.ok += 1;
                tally
                    .round_trips
                    .push(acked.duration_since(sent).as_secs_f64() * 1000.0);
                if broadcast {
                    tally.broadcasts += 1;
                    // Every sample_every-th acknowledged broadcast is followed to every node.
                    let b = shared.acked_broadcasts.fetch_add(1, Ordering::SeqCst);
                    if o.sample_every > 0 && b.is_multiple_of(o.sample_every) {
                        shared.samples.lock().expect("samples").insert(
                            value,
                            Sample {
                                acked,
                                seen: vec![None; n],
                            },
                        );
                        shared.pending.fetch_add(1, Ordering::SeqCst);
                    }
                } else {
                    tally.reads += 1;
                }
            }
            Ok(reply) => {
                tally.failed += 1;
                eprintln!("   n{i}: unexpected reply {reply}");
            }
            Err(e) => {
                tally.failed += 1;
                eprintln!("   n{i}: {e}");
            }
        }
        k += n as u64;
    }
    tally
}

/// Reads node `i` every `period` while some sampled value is missing there; marks when
/// each sampled value first shows up.
fn poller(i: usize, addr: &str, shared: &Shared, period: Duration) {
    let mut conn = Conn::new(addr);
    while !shared.stop.load(Ordering::SeqCst) {
        let next = Instant::now() + period;
        let missing_here = {
            let samples = shared.samples.lock().expect("samples");
            samples.values().any(|s| s.seen[i].is_none())
        };
        if missing_here && let Ok(reply) = conn.call(json!({"type": "read"})) {
            let at = Instant::now();
            shared.poll_reads.fetch_add(1, Ordering::Relaxed);
            let present: HashSet<i64> = reply["messages"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let mut samples = shared.samples.lock().expect("samples");
            for (value, sample) in samples.iter_mut() {
                // Only a reply that arrived after the ack counts (the next one will do).
                if sample.seen[i].is_none() && sample.acked <= at && present.contains(value) {
                    sample.seen[i] = Some(at);
                    if sample.seen.iter().all(Option::is_some) {
                        shared.pending.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
        }
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
    }
}

fn sum_stats(cluster: &LocalCluster, n: usize, key: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for i in 0..n {
        let stats = cluster.request(i, json!({"type": "stats"}))?;
        total += stats[key]
            .as_u64()
            .with_context(|| format!("n{i}: no {key} in {stats}"))?;
    }
    Ok(total)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, clk_tck: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |k: usize| fields.get(k - 3).and_then(|f| f.parse::<f64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(u), Some(s)) => (u + s) / clk_tck,
        _ => f64::NAN,
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank]
}

fn print_method(o: &Options) {
    println!();
    println!(
        "Workload: {} ops/s in total for {} s, op k due at k/{} s on node k mod N, broadcast \
         of the unique value k or read with even odds (seed {}), one persistent client \
         connection per node, {}.",
        o.rate,
        o.secs,
        o.rate,
        o.seed,
        if o.tls {
            "mutual TLS between nodes"
        } else {
            "plaintext between nodes"
        }
    );
    println!(
        "msgs-per-op: sum over nodes of stats.messages_sent from the start of the workload \
         to the end of the drain, over client ops invoked (latency-poller reads excluded)."
    );
    if o.sample_every == 0 {
        println!("Value latency: not measured (--sample-every 0): no polling reads.");
    } else {
        println!(
            "Value latency: every {}th acknowledged broadcast; from its client receiving \
             broadcast_ok to the last node whose read shows it; each node read every {} ms \
             while a sample is missing there, a value counted present when the first read \
             reply holding it arrives (upper bound: late by at most {} ms plus a read round \
             trip). Drain: at most {:?} after the workload for the samples to arrive.",
            o.sample_every,
            o.poll.as_millis(),
            o.poll.as_millis(),
            o.drain
        );
    }
    println!(
        "CPU: utime+stime per node process (/proc/<pid>/stat) over workload and drain, the \
         pollers' reads included; peak RSS: VmHWM (/proc/<pid>/status) before the kill. \
         Reconnects and queue drops: stats summed over nodes at the end."
    );
    println!();
}

fn print_table(rows: &[Row]) {
    println!(
        "| nodes | ops ok / invoked | msgs-per-op | value latency median / p95 / max (samples) \
         | op round trip median / max | CPU s per node mean / max (window) | peak RSS MiB mean / max \
         | reconnects | queue drops | poll reads |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        let mut lat = r.latencies.clone();
        lat.sort_by(f64::total_cmp);
        let mut rtt = r.tally.round_trips.clone();
        rtt.sort_by(f64::total_cmp);
        let cpu_mean = r.cpu.iter().sum::<f64>() / r.cpu.len() as f64;
        let cpu_max = r.cpu.iter().copied().fold(0.0, f64::max);
        let rss_mean = r.rss_kib.iter().sum::<u64>() as f64 / r.rss_kib.len() as f64 / 1024.0;
        let rss_max = r.rss_kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
        let unseen = if r.unseen > 0 {
            format!(", {} never everywhere", r.unseen)
        } else {
            String::new()
        };
        let latency = match lat.last() {
            Some(max) => format!(
                "{:.0} / {:.0} / {:.0} ms ({}{unseen})",
                quantile(&lat, 0.5),
                quantile(&lat, 0.95),
                max,
                r.samples
            ),
            None if r.samples > 0 => format!("- ({}{unseen})", r.samples),
            None => "not measured".to_string(),
        };
        println!(
            "| {} | {} / {} ({} broadcasts, {} reads) | {:.2} | {} \
             | {:.1} / {:.1} ms | {:.2} / {:.2} ({:.1} s) | {:.1} / {:.1} | {} | {} | {} |",
            r.nodes,
            r.tally.ok,
            r.tally.invoked,
            r.tally.broadcasts,
            r.tally.reads,
            r.msgs as f64 / r.tally.invoked.max(1) as f64,
            latency,
            quantile(&rtt, 0.5),
            rtt.last().copied().unwrap_or(f64::NAN),
            cpu_mean,
            cpu_max,
            r.window.as_secs_f64(),
            rss_mean,
            rss_max,
            r.reconnects,
            r.queue_drops,
            r.poll_reads,
        );
    }
}
