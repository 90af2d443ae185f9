//! The wall-clock driver: real node processes, one per node (docs/maelstrom-compatibility.md 2).
//!
//! Per node, three threads: a stdout reader (lines to the main loop), a stderr reader
//! (to `node-logs/<node>.log` and a ring buffer for crash reports), and a stdin writer fed
//! by a channel, so the main loop never blocks on a node that stopped reading. What a node
//! can make the runner hold is bounded (docs/maelstrom-compatibility.md 2.6): its lines
//! (`lines::MAX_LINE`), what its reader hands the main loop (`lines::IN_FLIGHT`), and what
//! waits for its stdin (`QUEUED`). Each node leads its own process group (`group`).
//! The main loop sleeps until the harness's next wakeup or the next line, whichever comes
//! first. For every node-to-node delivery the writer records how late the write was
//! against the model's due time: the runner's own accuracy on a small machine.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::driver::group;
use crate::driver::lines::{self, InFlight, MAX_LINE, Read};
use crate::edn::Edn;
use crate::harness::{Harness, Outcome, Progress};
use crate::message::{LineError, is_client, parse_line};
use crate::options::TestOptions;
use crate::record::{Action, StatusChange};
use crate::report::membership::parse_status_line;

/// Lines kept per stream for crash reports.
pub(super) const RING: usize = 32;
/// How often a stalled stdout reader looks whether it may read again.
const STALL_POLL: Duration = Duration::from_millis(5);

/// Bytes waiting for one node's stdin past which further deliveries to it are dropped: a
/// node that reads nothing for that long cannot make the runner grow.
pub const QUEUED: usize = 8 << 20;

/// Inputs handled in one pass of the main loop, so that a flood of lines cannot keep it
/// from its other work (ending the test among it).
const BATCH: usize = 1024;

/// How often the main loop looks for nodes that ended.
const REAP_EVERY: Duration = Duration::from_millis(50);

/// How long teardown waits for killed nodes to be gone.
pub(super) const TEARDOWN_WAIT: Duration = Duration::from_secs(5);

/// How to run the node binary.
#[derive(Clone, Debug)]
pub struct ProcessOptions {
    pub bin: PathBuf,
    pub args: Vec<String>,
    /// Where `<node>.log` files go.
    pub node_logs: PathBuf,
    /// Echo every stderr line of the nodes to the runner's log.
    pub log_stderr: bool,
    /// Print a live progress line on stderr.
    pub progress: bool,
}

/// A run through real processes: the harness's outcome plus the runner's own figures.
pub struct ProcessRun {
    pub outcome: Outcome,
    /// `{:delivery-lateness-ms {...}, :nodes {"n0" {:cpu-s .. :peak-rss-kb ..}}}`.
    pub runner: Edn,
}

enum Input {
    Line(usize, Vec<u8>),
    /// A stdout line of this many bytes, over `MAX_LINE`, was discarded.
    TooLong(usize, usize),
    Eof(usize),
    Stderr(usize, String),
}

struct NodeProcess {
    id: String,
    child: Child,
    writer: Option<Sender<(String, Option<Instant>)>>,
    /// Bytes sent to the writer and not yet written.
    queued: Arc<AtomicUsize>,
    /// Deliveries dropped because `QUEUED` bytes were waiting.
    undelivered: u64,
    /// Bytes the node's readers handed over that the main loop has not handled.
    in_flight: Arc<InFlight>,
    /// Last lines of stdout and stderr, for crash reports.
    tail: Arc<Mutex<VecDeque<String>>>,
    exited: bool,
    /// Whether its process was waited for (its id may then be another's).
    reaped: bool,
    usage: Option<(f64, u64)>,
    /// Set while the stall-output fault holds this node: its stdout is not read.
    stalled: Arc<AtomicBool>,
}

/// Runs a whole test against real processes, logging through `log`.
pub fn run(
    opts: &TestOptions,
    popts: &ProcessOptions,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<ProcessRun> {
    std::fs::create_dir_all(&popts.node_logs)?;
    let (tx, rx) = mpsc::channel();
    let lateness = Arc::new(Mutex::new(Vec::<f64>::new()));
    let start = Instant::now();
    let seen = Seen {
        start,
        changes: Arc::new(Mutex::new(Vec::new())),
    };
    let mut nodes = Vec::new();
    for (i, id) in opts.nodes.iter().enumerate() {
        nodes.push(spawn(
            i,
            id,
            popts,
            tx.clone(),
            lateness.clone(),
            seen.clone(),
        )?);
    }
    drop(tx);
    let result = drive(opts, popts, &mut nodes, &rx, start, log);
    let teardown = teardown(&mut nodes);
    for p in nodes.iter().filter(|p| p.undelivered > 0) {
        log(&format!(
            "WARN {}: {} deliveries dropped, {QUEUED} bytes were waiting for its stdin",
            p.id, p.undelivered
        ));
    }
    let mut outcome = result?;
    if let Err(why) = teardown
        && outcome.abort.is_none()
    {
        outcome.abort = Some(why);
    }
    let lateness = std::mem::take(&mut *lateness.lock().expect("lateness lock"));
    outcome.membership = std::mem::take(&mut *seen.changes.lock().expect("membership lock"));
    Ok(ProcessRun {
        runner: runner_report(&nodes, &lateness),
        outcome,
    })
}

/// The status changes the nodes log on stderr, stamped on arrival with the runner's clock
/// (the history's clock), for `membership.svg`.
#[derive(Clone)]
struct Seen {
    start: Instant,
    changes: Arc<Mutex<Vec<StatusChange>>>,
}

impl Seen {
    fn line(&self, observer: &str, line: &str) {
        if let Some((peer, status)) = parse_status_line(line) {
            self.changes
                .lock()
                .expect("membership lock")
                .push(StatusChange {
                    time: self.start.elapsed(),
                    observer: observer.to_string(),
                    peer,
                    status,
                });
        }
    }
}

fn spawn(
    i: usize,
    id: &str,
    popts: &ProcessOptions,
    tx: Sender<Input>,
    lateness: Arc<Mutex<Vec<f64>>>,
    seen: Seen,
) -> anyhow::Result<NodeProcess> {
    let mut child = group::in_own_group(
        Command::new(&popts.bin)
            .args(&popts.args)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .spawn()
    .with_context(|| format!("cannot start {}", popts.bin.display()))?;
    group::register(child.id());
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let in_flight = Arc::new(InFlight::default());
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stdin = child.stdin.take().expect("piped");
    let stalled = Arc::new(AtomicBool::new(false));
    {
        let (tx, tail, in_flight) = (tx.clone(), tail.clone(), in_flight.clone());
        let stalled = stalled.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                while stalled.load(Ordering::Relaxed) {
                    thread::sleep(STALL_POLL);
                }
                let input = match lines::read_line(&mut reader, &mut line, MAX_LINE) {
                    Ok(Read::Eof) | Err(_) => break,
                    Ok(Read::TooLong(n)) => {
                        remember(&tail, format!("stdout: (a line of {n} bytes)"));
                        Input::TooLong(i, n)
                    }
                    Ok(Read::Line) => {
                        let text = lines::quote(&String::from_utf8_lossy(&line));
                        remember(&tail, format!("stdout: {text}"));
                        in_flight.take(line.len());
                        Input::Line(i, std::mem::take(&mut line))
                    }
                };
                if tx.send(input).is_err() {
                    return;
                }
            }
            let _ = tx.send(Input::Eof(i));
        });
    }
    {
        let path = popts.node_logs.join(format!("{id}.log"));
        let mut file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let (tail, echo, observer) = (tail.clone(), popts.log_stderr, id.to_string());
        let in_flight = in_flight.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut bytes = Vec::new();
            while let Some(line) = lines::read_log_line(&mut reader, &mut bytes) {
                seen.line(&observer, &line);
                let _ = writeln!(file, "{line}");
                let _ = file.flush();
                remember(&tail, format!("stderr: {line}"));
                if echo {
                    in_flight.take(line.len());
                    if tx.send(Input::Stderr(i, line)).is_err() {
                        return;
                    }
                }
            }
        });
    }
    let (writer, lines) = mpsc::channel::<(String, Option<Instant>)>();
    let queued = Arc::new(AtomicUsize::new(0));
    {
        let queued = queued.clone();
        thread::spawn(move || write_stdin(stdin, lines, &queued, lateness));
    }
    Ok(NodeProcess {
        id: id.to_string(),
        child,
        writer: Some(writer),
        queued,
        undelivered: 0,
        in_flight,
        tail,
        exited: false,
        reaped: false,
        usage: None,
        stalled,
    })
}

/// Keeps `line`, shortened, among the last lines of a node for its crash report.
pub(super) fn remember(tail: &Mutex<VecDeque<String>>, line: String) {
    // (A stdout line comes quoted already; its prefix must not make it quoted twice.)
    let line = if line.len() > 2048 {
        lines::quote(&line)
    } else {
        line
    };
    let mut tail = tail.lock().expect("tail lock");
    if tail.len() == RING * 2 {
        tail.pop_front();
    }
    tail.push_back(line);
}

/// Writes each delivered line, flushed, and records node-to-node lateness.
fn write_stdin(
    mut stdin: ChildStdin,
    lines: Receiver<(String, Option<Instant>)>,
    queued: &AtomicUsize,
    lateness: Arc<Mutex<Vec<f64>>>,
) {
    for (mut line, due) in lines {
        line.push('\n');
        let written = stdin.write_all(line.as_bytes()).and_then(|_| stdin.flush());
        queued.fetch_sub(line.len() - 1, Ordering::Relaxed);
        if written.is_err() {
            return; // the node is gone; the main loop finds its exit
        }
        if let Some(due) = due {
            let late = Instant::now().saturating_duration_since(due);
            lateness
                .lock()
                .expect("lateness lock")
                .push(late.as_secs_f64() * 1000.0);
        }
    }
}

fn drive(
    opts: &TestOptions,
    popts: &ProcessOptions,
    nodes: &mut [NodeProcess],
    rx: &Receiver<Input>,
    start: Instant,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<Outcome> {
    let mut harness = Harness::new(opts);
    let mut last_progress = Instant::now();
    let mut last_reap = Instant::now();
    loop {
        let now = start.elapsed();
        let actions = harness.poll(now);
        dispatch(actions, nodes, start, log);
        for line in harness.drain_log() {
            log(&line);
        }
        if harness.is_done() {
            break;
        }
        // A node that ended is found here, whether or not its stdout closed: a child it
        // left behind may hold the pipe open.
        if last_reap.elapsed() >= REAP_EVERY {
            last_reap = Instant::now();
            for p in nodes.iter_mut() {
                if !p.exited && group::has_ended(p.child.id()) {
                    node_ended(p, &mut harness, start.elapsed());
                }
            }
        }
        if popts.progress && last_progress.elapsed() > Duration::from_millis(250) {
            last_progress = Instant::now();
            progress_line(start.elapsed(), harness.progress());
        }
        let timeout = harness
            .next_wakeup()
            .map_or(Duration::from_millis(100), |t| {
                t.saturating_sub(start.elapsed())
            })
            .min(Duration::from_millis(100));
        let first = match rx.recv_timeout(timeout) {
            Ok(input) => input,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(timeout);
                continue;
            }
        };
        // Take what is waiting, so a burst costs one pass.
        for input in std::iter::once(first).chain(rx.try_iter()).take(BATCH) {
            let now = start.elapsed();
            dispatch(harness.poll(now), nodes, start, log);
            match input {
                Input::Line(i, bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    harness.node_output(&nodes[i].id, parse_line(&text), now);
                    nodes[i].in_flight.give(bytes.len());
                }
                Input::TooLong(i, n) => {
                    harness.node_output(&nodes[i].id, Err(LineError::TooLong(n)), now)
                }
                Input::Stderr(i, line) => {
                    log(&format!("{} stderr: {line}", nodes[i].id));
                    nodes[i].in_flight.give(line.len());
                }
                Input::Eof(i) => {
                    // A node may close its stdout and go on running (it is then killed
                    // at teardown, as Maelstrom does); if it is ending, the check above
                    // finds it.
                    if !nodes[i].exited && group::has_ended(nodes[i].child.id()) {
                        node_ended(&mut nodes[i], &mut harness, now);
                    }
                }
            }
        }
    }
    if popts.progress {
        eprintln!();
    }
    Ok(harness.outcome())
}

/// Node `p` ended by itself: whatever it left in its group is killed, and the test is
/// told (it crashes unless our crash fault killed the node).
fn node_ended(p: &mut NodeProcess, harness: &mut Harness, now: Duration) {
    group::kill(p.child.id());
    let status = match p.child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("unknown status: {e}"),
    };
    p.exited = true;
    p.reaped = true;
    let tail: Vec<String> = p.tail.lock().expect("tail lock").iter().cloned().collect();
    harness.node_exited(&p.id, &status, &tail, now);
}

pub(super) fn progress_line(elapsed: Duration, p: Progress) {
    let mut err = std::io::stderr();
    let paused = format!("{} paused", p.paused);
    let faults: Vec<&str> = [
        (p.partitioned, "partitioned"),
        (p.links_lost, "links lost"),
        (p.duplicating, "duplicating"),
        (p.paused > 0, paused.as_str()),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let faults = if faults.is_empty() {
        "network whole".to_string()
    } else {
        faults.join(", ")
    };
    let _ = write!(
        err,
        "\r{:>6.1}s  ok {}  fail {}  info {}  {faults}        ",
        elapsed.as_secs_f64(),
        p.ok,
        p.fail,
        p.info
    );
    let _ = err.flush();
}

fn dispatch(
    actions: Vec<Action>,
    nodes: &mut [NodeProcess],
    start: Instant,
    log: &mut dyn FnMut(&str),
) {
    for action in actions {
        match action {
            Action::Deliver { node, message, due } => {
                let Some(p) = nodes.iter_mut().find(|p| p.id == node) else {
                    continue;
                };
                let measured = (!is_client(&message.src)).then(|| start + due);
                let line = message.to_line();
                if p.queued.load(Ordering::Relaxed) + line.len() > QUEUED {
                    if p.undelivered == 0 {
                        log(&format!(
                            "WARN {}: {QUEUED} bytes are waiting for its stdin; dropping deliveries to it until it reads",
                            p.id
                        ));
                    }
                    p.undelivered += 1;
                    continue;
                }
                if let Some(writer) = &p.writer {
                    p.queued.fetch_add(line.len(), Ordering::Relaxed);
                    let len = line.len();
                    if writer.send((line, measured)).is_err() {
                        p.queued.fetch_sub(len, Ordering::Relaxed);
                    }
                }
            }
            Action::Pause(ids) => signal(nodes, &ids, libc::SIGSTOP),
            Action::Resume(ids) => signal(nodes, &ids, libc::SIGCONT),
            Action::StallOutput(id) => stall(nodes, &id, true),
            Action::DrainOutput(id) => stall(nodes, &id, false),
            Action::Kill(id) => {
                if let Some(p) = nodes.iter_mut().find(|p| p.id == id) {
                    group::kill(p.child.id());
                    p.exited = true;
                }
            }
            Action::Partition(_)
            | Action::Heal
            | Action::LoseLinks(_)
            | Action::RestoreLinks
            | Action::Restart(_) => {}
            // A stall still in force (no final phase ended it): read to the end, so that
            // the reader thread sees EOF and exits once the node is killed.
            Action::Teardown => nodes
                .iter()
                .for_each(|p| p.stalled.store(false, Ordering::Relaxed)),
        }
    }
}

/// Stops (or resumes) reading the node's stdout.
fn stall(nodes: &[NodeProcess], id: &str, stalled: bool) {
    if let Some(p) = nodes.iter().find(|p| p.id == id) {
        p.stalled.store(stalled, Ordering::Relaxed);
    }
}

fn signal(nodes: &[NodeProcess], ids: &[String], signal: i32) {
    for p in nodes.iter().filter(|p| ids.contains(&p.id) && !p.exited) {
        group::signal(p.child.id(), signal);
    }
}

/// A node that is not alive at teardown crashed (docs/maelstrom-compatibility.md 2.4); the
/// rest are measured and killed with SIGKILL, with their whole process group. Stdin stays
/// open until a node is killed: a node may exit cleanly at EOF, and closing it first would
/// make a live node look crashed. Every node, the ones killed earlier included, is then
/// reaped, waiting at most `TEARDOWN_WAIT` in all.
fn teardown(nodes: &mut [NodeProcess]) -> Result<(), String> {
    let mut crashed = None;
    for p in nodes.iter_mut().filter(|p| !p.reaped) {
        let pid = p.child.id();
        if !p.exited && group::has_ended(pid) {
            let tail: Vec<String> = p.tail.lock().expect("tail lock").iter().cloned().collect();
            group::kill(pid);
            let status = p
                .child
                .wait()
                .map_or_else(|e| format!("unknown status: {e}"), |s| s.to_string());
            p.reaped = true;
            crashed.get_or_insert(format!(
                "node {} exited before teardown ({status}):\n{}",
                p.id,
                tail.join("\n")
            ));
        } else {
            if !p.exited {
                p.usage = usage(pid);
            }
            group::kill(pid);
        }
        p.exited = true;
        p.writer = None;
    }
    let deadline = Instant::now() + TEARDOWN_WAIT;
    for p in nodes.iter_mut().filter(|p| !p.reaped) {
        while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
    crashed.map_or(Ok(()), Err)
}

/// CPU seconds (utime + stime) and peak RSS in KiB, from /proc.
pub(super) fn usage(pid: u32) -> Option<(f64, u64)> {
    let proc = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(proc.join("stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports in USER_HZ, 100 per second on every common configuration.
    let cpu = ticks / 100.0;
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some((cpu, rss))
}

fn runner_report(nodes: &[NodeProcess], lateness: &[f64]) -> Edn {
    let mut sorted = lateness.to_vec();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if sorted.is_empty() {
            Edn::Nil
        } else {
            let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
            Edn::Float((sorted[i] * 1000.0).round() / 1000.0)
        }
    };
    let per_node = nodes
        .iter()
        .map(|p| {
            let (cpu, rss) = p.usage.unwrap_or((f64::NAN, 0));
            let mut figures = vec![
                ("cpu-s", Edn::Float(cpu)),
                ("peak-rss-kb", Edn::Int(rss as i64)),
            ];
            if p.undelivered > 0 {
                figures.push(("undelivered", Edn::Int(p.undelivered as i64)));
            }
            (Edn::Str(p.id.clone()), Edn::kw_map(figures))
        })
        .collect();
    Edn::kw_map([
        (
            "delivery-lateness-ms",
            Edn::Map(vec![
                (Edn::Float(0.5), q(0.5)),
                (Edn::Float(0.95), q(0.95)),
                (Edn::Float(0.99), q(0.99)),
                (Edn::Int(1), q(1.0)),
            ]),
        ),
        ("deliveries-measured", Edn::Int(lateness.len() as i64)),
        ("nodes", Edn::Map(per_node)),
    ])
}
