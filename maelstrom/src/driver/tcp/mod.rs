//! The TCP driver: the same `Harness` (clients, generator, nemesis, history, checkers) in
//! front of a real TLS cluster of `node serve` processes, on loopback.
//!
//! ```text
//! harness ─ client ops ─▶ client port of nI ┐
//!                                           │ nI ─▶ proxy(nI→nJ) ─▶ peer port of nJ
//! harness ◀─ replies ──── client port of nI ┘       (latency, cuts)
//! ```
//!
//! What travels between nodes never passes through the harness's network model: node `a`
//! is told that peer `b` lives at the address of a runner-owned proxy for the directed
//! link `a → b` (`proxy.rs`), which applies the model's latency and its partitions and
//! lost links to real connections. Clients still go through the model (with no latency,
//! as over stdio) and then over one TCP connection each to the node's client port
//! (`clients.rs`). `init` and `topology` are answered by the driver: a served node is
//! configured by its command line and builds its own overlay. Pause is SIGSTOP/SIGCONT,
//! crash SIGKILL, and crash-restart starts the node again with the same command line
//! (`cluster.rs`).
//!
//! `:net` counts client messages as the model saw them and server messages from the
//! nodes' own `stats` counters (frames sent and received per peer), so msgs-per-op means
//! what it means over stdio. The proxies' bytes and connections per link go under the
//! `runner` key.

pub mod clients;
pub mod cluster;
pub mod proxy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::driver::process::TEARDOWN_WAIT;
use crate::driver::process::{ProcessRun, progress_line};
use crate::edn::Edn;
use crate::harness::{Harness, Outcome};
use crate::message::{Envelope, LineError, parse_line};
use crate::net::{Counts, NetStats};
use crate::options::TestOptions;
use crate::record::Action;
use clients::ClientPorts;
use cluster::{Node, ScratchDir};
use proxy::{Latency, PartitionMode, Proxies};

/// How the TCP driver runs the node binary.
#[derive(Clone, Debug)]
pub struct TcpOptions {
    pub bin: PathBuf,
    /// Appended to every node's `serve` command line (workload, tunables).
    pub args: Vec<String>,
    pub node_logs: PathBuf,
    pub log_stderr: bool,
    pub progress: bool,
    pub partition_mode: PartitionMode,
}

/// What the tasks and threads of the driver tell its main loop.
pub enum Input {
    /// A line from a node's client port: node, life, line.
    Line(usize, u64, String),
    /// A line of this many bytes, over `MAX_LINE`, was discarded: node, life, size.
    TooLong(usize, u64, usize),
    /// A node life's process ended (its stderr closed).
    Exited(usize, u64),
    Stderr(usize, String),
}

/// How long the last `stats` of the live nodes may take at the end.
const FINAL_STATS: Duration = Duration::from_secs(2);

/// Inputs handled in one pass of the main loop (a flood cannot hold it).
const BATCH: usize = 1024;

/// How often the main loop looks for nodes that ended.
const REAP_EVERY: Duration = Duration::from_millis(50);

/// Runs a whole test against a TCP cluster, logging through `log`.
pub fn run(
    opts: &TestOptions,
    topts: &TcpOptions,
    log: &mut dyn FnMut(&str),
) -> anyhow::Result<ProcessRun> {
    std::fs::create_dir_all(&topts.node_logs)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let certs = ScratchDir::new("certs")?;
    cluster::make_certs(&topts.bin, &certs.0, &opts.nodes)?;
    // Ports held until the proxies have theirs, so no proxy takes a node's.
    let held = cluster::reserve_ports(2 * opts.nodes.len())?;
    let addrs: Vec<SocketAddr> = held
        .iter()
        .map(|l| l.local_addr())
        .collect::<Result<_, _>>()?;
    let peer_ports: Vec<(String, SocketAddr)> = opts
        .nodes
        .iter()
        .zip(addrs.iter().step_by(2))
        .map(|(id, a)| (id.clone(), *a))
        .collect();
    let latency = Latency {
        mean_ms: opts.latency_ms,
        dist: opts.latency_dist,
    };
    let mut proxies = rt.block_on(Proxies::start(
        &peer_ports,
        topts.partition_mode,
        latency,
        opts.seed ^ 0x7072_6f78,
    ))?;
    let mut nodes: Vec<Node> = Vec::new();
    for (i, id) in opts.nodes.iter().enumerate() {
        let peers: Vec<(String, SocketAddr)> = opts
            .nodes
            .iter()
            .filter(|p| *p != id)
            .map(|p| (p.clone(), proxies.address(id, p).expect("a proxy per link")))
            .collect();
        nodes.push(Node::new(
            id,
            addrs[2 * i],
            addrs[2 * i + 1],
            &peers,
            &certs.0,
            &topts.args,
        ));
    }
    drop(held);
    let (tx, rx) = mpsc::channel();
    let ports = ClientPorts::new(rt.handle().clone(), tx.clone(), nodes.len());
    let mut started = Ok(());
    for (i, node) in nodes.iter_mut().enumerate() {
        started = node.start(
            i,
            &topts.bin,
            &topts.node_logs,
            tx.clone(),
            topts.log_stderr,
        );
        if started.is_err() {
            break;
        }
    }
    if started.is_ok() {
        started = nodes.iter_mut().try_for_each(Node::wait_ready);
    }
    if let Err(e) = started {
        nodes.iter_mut().for_each(Node::kill);
        return Err(e.context("the cluster did not start"));
    }
    for (i, node) in nodes.iter().enumerate() {
        ports.watch_stats(i, node.life, node.client_addr);
    }
    let mut driver = Driver {
        opts: topts,
        nodes,
        ports,
        proxies: &mut proxies,
        tx,
        start: Instant::now(),
    };
    let result = driver.drive(opts, &rx, log);
    let teardown = driver.teardown();
    let mut outcome = result?;
    if let Err(why) = teardown
        && outcome.abort.is_none()
    {
        outcome.abort = Some(why);
    }
    let (servers, node_stats) = server_counts(&driver.ports, &driver.nodes);
    outcome.net = NetStats {
        all: Counts {
            send_count: outcome.net.clients.send_count + servers.send_count,
            recv_count: outcome.net.clients.recv_count + servers.recv_count,
            msg_count: outcome.net.clients.msg_count + servers.msg_count,
        },
        clients: outcome.net.clients,
        servers,
    };
    let undelivered = driver.ports.undelivered.clone();
    for (node, &n) in driver.nodes.iter().zip(&undelivered) {
        if n > 0 {
            log(&format!(
                "WARN {}: {n} client messages dropped, {} bytes were waiting to be written to it",
                node.id,
                crate::driver::process::QUEUED
            ));
        }
    }
    let runner = runner_report(&driver.nodes, &proxies, node_stats, &undelivered);
    rt.shutdown_background();
    Ok(ProcessRun { outcome, runner })
}

struct Driver<'a> {
    opts: &'a TcpOptions,
    nodes: Vec<Node>,
    ports: ClientPorts,
    proxies: &'a mut Proxies,
    tx: mpsc::Sender<Input>,
    start: Instant,
}

impl Driver<'_> {
    fn drive(
        &mut self,
        opts: &TestOptions,
        rx: &Receiver<Input>,
        log: &mut dyn FnMut(&str),
    ) -> anyhow::Result<Outcome> {
        let mut harness = Harness::new(opts);
        let mut last_progress = Instant::now();
        let mut last_reap = Instant::now();
        loop {
            let actions = harness.poll(self.start.elapsed());
            self.dispatch(actions, &mut harness)?;
            for line in harness.drain_log() {
                log(&line);
            }
            if harness.is_done() {
                break;
            }
            // Found here even when a child the node left behind holds its stderr open.
            if last_reap.elapsed() >= REAP_EVERY {
                last_reap = Instant::now();
                for i in 0..self.nodes.len() {
                    self.reap(i, &mut harness);
                }
            }
            if self.opts.progress && last_progress.elapsed() > Duration::from_millis(250) {
                last_progress = Instant::now();
                progress_line(self.start.elapsed(), harness.progress());
            }
            let timeout = harness
                .next_wakeup()
                .map_or(Duration::from_millis(100), |t| {
                    t.saturating_sub(self.start.elapsed())
                })
                .min(Duration::from_millis(100));
            let first = match rx.recv_timeout(timeout) {
                Ok(input) => input,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => unreachable!("the driver holds a sender"),
            };
            for input in std::iter::once(first).chain(rx.try_iter()).take(BATCH) {
                let now = self.start.elapsed();
                let actions = harness.poll(now);
                self.dispatch(actions, &mut harness)?;
                match input {
                    Input::Line(i, life, line) => {
                        if life == self.nodes[i].life {
                            harness.node_output(&self.nodes[i].id, parse_line(&line), now);
                        }
                        self.ports.handled(i, line.len());
                    }
                    Input::TooLong(i, life, n) if life == self.nodes[i].life => {
                        harness.node_output(&self.nodes[i].id, Err(LineError::TooLong(n)), now);
                    }
                    Input::TooLong(..) => {}
                    Input::Stderr(i, line) => log(&format!("{} stderr: {line}", self.nodes[i].id)),
                    // Its stderr closed: the process may be ending (or go on without it).
                    Input::Exited(i, life) if life == self.nodes[i].life => {
                        self.reap(i, &mut harness)
                    }
                    Input::Exited(..) => {}
                }
            }
        }
        if self.opts.progress {
            eprintln!();
        }
        Ok(harness.outcome())
    }

    /// Tells the harness if node `i` ended by itself (its group is then killed).
    fn reap(&mut self, i: usize, harness: &mut Harness) {
        if let Some(status) = self.nodes[i].ended() {
            let tail = self.nodes[i].tail_lines();
            let id = self.nodes[i].id.clone();
            harness.node_exited(&id, &status, &tail, self.start.elapsed());
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.id == id)
    }

    fn dispatch(&mut self, actions: Vec<Action>, harness: &mut Harness) -> anyhow::Result<()> {
        for action in actions {
            match action {
                Action::Deliver { node, message, .. } => {
                    let Some(i) = self.index(&node) else { continue };
                    if let Some(reply) =
                        configuration_reply(&node, &message.src, &message.body.json())
                    {
                        harness.node_output(&node, Ok(reply), self.start.elapsed());
                        continue;
                    }
                    let n = &self.nodes[i];
                    self.ports
                        .send(&message.src, i, n.life, n.client_addr, message.to_line());
                }
                Action::Pause(ids) => self.signal(&ids, libc::SIGSTOP),
                Action::Resume(ids) => self.signal(&ids, libc::SIGCONT),
                Action::Kill(id) => {
                    if let Some(i) = self.index(&id) {
                        self.nodes[i].kill();
                        self.ports.drop_node(i);
                    }
                }
                Action::Restart(id) => {
                    if let Some(i) = self.index(&id) {
                        let node = &mut self.nodes[i];
                        node.start(
                            i,
                            &self.opts.bin,
                            &self.opts.node_logs,
                            self.tx.clone(),
                            self.opts.log_stderr,
                        )
                        .with_context(|| format!("restarting {id}"))?;
                        self.ports.watch_stats(i, node.life, node.client_addr);
                    }
                }
                Action::Partition(grudge) => self.proxies.partition(Some(&grudge)),
                Action::Heal => self.proxies.partition(None),
                Action::LoseLinks(grudge) => self.proxies.lose_links(Some(&grudge)),
                Action::RestoreLinks => self.proxies.lose_links(None),
                // Rejected with --transport tcp (cli.rs): node traffic is not on stdout.
                Action::StallOutput(_) | Action::DrainOutput(_) | Action::Teardown => {}
            }
        }
        Ok(())
    }

    fn signal(&self, ids: &[String], signal: i32) {
        for node in self.nodes.iter().filter(|n| ids.contains(&n.id)) {
            node.signal(signal);
        }
    }

    /// A node that ended on its own before teardown crashed (as over stdio); the others
    /// are let go on (SIGCONT), asked for their last `stats` (all at once, `FINAL_STATS`
    /// at most), measured and killed with their groups (`TEARDOWN_WAIT` at most to reap
    /// them all).
    fn teardown(&mut self) -> Result<(), String> {
        let mut crashed = None;
        let mut live = Vec::new();
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            if let Some(status) = node.ended() {
                crashed.get_or_insert(format!(
                    "node {} exited before teardown ({status}):\n{}",
                    node.id,
                    node.tail_lines().join("\n")
                ));
            } else if !node.exited {
                node.signal(libc::SIGCONT);
                live.push((i, node.life, node.client_addr));
            }
        }
        self.ports.final_stats(&live, FINAL_STATS);
        let until = Instant::now() + TEARDOWN_WAIT;
        for node in &mut self.nodes {
            node.measure_and_kill(until);
        }
        crashed.map_or(Ok(()), Err)
    }
}

/// The driver's own answer to `init` and `topology`: a served node took its id, its
/// peers and its place in the overlay from its command line.
fn configuration_reply(node: &str, client: &str, body: &Value) -> Option<Envelope> {
    let kind = match body.get("type").and_then(Value::as_str)? {
        "init" => "init_ok",
        "topology" => "topology_ok",
        _ => return None,
    };
    Some(Envelope {
        src: node.to_string(),
        dest: client.to_string(),
        body: json!({"type": kind, "in_reply_to": body.get("msg_id")}).into(),
    })
}

/// Server messages from the nodes' `stats` (every life's last answer), and a summary of
/// the transport counters for the runner's report.
fn server_counts(ports: &ClientPorts, nodes: &[Node]) -> (Counts, Edn) {
    let book = ports.stats.lock().expect("stats lock");
    let get = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut counts = Counts::default();
    let mut per_node = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let lives: Vec<&Value> = (1..=node.life).filter_map(|l| book.get(&(i, l))).collect();
        let sum = |k: &str| lives.iter().map(|v| get(v, k)).sum::<u64>();
        counts.send_count += sum("messages_sent");
        counts.recv_count += sum("messages_received");
        per_node.push((
            Edn::Str(node.id.clone()),
            Edn::kw_map([
                ("lives", Edn::Int(node.life as i64)),
                ("lives-counted", Edn::Int(lives.len() as i64)),
                ("messages-sent", Edn::Int(sum("messages_sent") as i64)),
                (
                    "messages-received",
                    Edn::Int(sum("messages_received") as i64),
                ),
                ("bytes-sent", Edn::Int(sum("bytes_sent") as i64)),
                ("queue-drops", Edn::Int(sum("queue_drops") as i64)),
                ("queue-expired", Edn::Int(sum("queue_expired") as i64)),
                ("reconnects", Edn::Int(sum("reconnects") as i64)),
            ]),
        ));
    }
    // Every frame is sent once: distinct messages are sends.
    counts.msg_count = counts.send_count;
    (counts, Edn::Map(per_node))
}

fn runner_report(nodes: &[Node], proxies: &Proxies, node_stats: Edn, undelivered: &[u64]) -> Edn {
    let per_node = nodes
        .iter()
        .zip(undelivered)
        .map(|(n, &undelivered)| {
            let cpu: f64 = n.usage.iter().map(|u| u.0).sum();
            let rss = n.usage.iter().map(|u| u.1).max().unwrap_or(0);
            let measured = !n.usage.is_empty();
            let mut figures = vec![
                ("cpu-s", Edn::Float(if measured { cpu } else { f64::NAN })),
                ("peak-rss-kb", Edn::Int(rss as i64)),
            ];
            if undelivered > 0 {
                figures.push(("undelivered", Edn::Int(undelivered as i64)));
            }
            (Edn::Str(n.id.clone()), Edn::kw_map(figures))
        })
        .collect();
    Edn::kw_map([
        ("transport", Edn::kw("tcp")),
        ("proxy", proxies.report()),
        ("node-stats", node_stats),
        ("nodes", Edn::Map(per_node)),
    ])
}
