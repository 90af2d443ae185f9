//! One deterministic model of a whole Maelstrom test: the network, the clients and
//! worker threads, the generator, the nemesis, the phases and the history. It is driven by
//! time passed in, so the wall-clock driver (real processes) and the virtual-clock
//! simulation (in-process nodes) run exactly the same test logic.
//!
//! Phases (spec 1.5, 5.3): init (10 s) → setup clients and topology (5 s, broadcast only) →
//! the history's time origin → main phase until the time limit → wait for in-flight ops →
//! (workloads with a final phase) heal, 10 s recovery, one final read per thread →
//! teardown.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::checker::Availability;
use crate::edn::Edn;
use crate::history::{History, Op, OpType, Process};
use crate::message::{Envelope, LineError, Message, is_client};
use crate::nemesis::{self, PartitionSpec, Stagger};
use crate::net::{LatencyDist, NetError, NetStats, Network};
use crate::topology::{Topology, topology};
use crate::workload::{Completion, Generator, OpSpec, RpcResult, Workload, check_closed};

pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
pub const TOPOLOGY_TIMEOUT: Duration = Duration::from_secs(5);
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);
pub const RECOVERY: Duration = Duration::from_secs(10);

/// A fault the nemesis injects. Only `Partition` exists in Maelstrom; the others are our
/// extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Partition,
    Pause,
    Crash,
    /// One-way link loss: some nodes stop hearing one node, or it stops hearing them.
    LinkLoss,
    /// Messages between nodes are delivered twice, the copy usually late.
    Duplicate,
}

impl Fault {
    pub const ALL: [Fault; 5] = [
        Fault::Partition,
        Fault::Pause,
        Fault::Crash,
        Fault::LinkLoss,
        Fault::Duplicate,
    ];

    /// The name `--nemesis` takes.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Pause => "pause",
            Fault::Crash => "crash",
            Fault::LinkLoss => "link-loss",
            Fault::Duplicate => "duplicate",
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown nemesis fault {s:?} (partition; ours: pause, crash, link-loss, duplicate)"
                )
            })
    }
}

/// Everything that defines a test run.
#[derive(Clone, Debug)]
pub struct TestOptions {
    pub workload: Workload,
    pub nodes: Vec<String>,
    pub time_limit: Duration,
    /// Client ops per second, across all clients.
    pub rate: f64,
    /// Worker threads.
    pub concurrency: usize,
    pub latency_ms: u64,
    pub latency_dist: LatencyDist,
    pub nemesis: Vec<Fault>,
    pub nemesis_interval: Duration,
    pub topology: Topology,
    pub availability: Option<Availability>,
    pub log_net_send: bool,
    pub log_net_recv: bool,
    pub seed: u64,
}

impl TestOptions {
    /// Maelstrom's defaults for a workload and node count.
    pub fn new(workload: Workload, node_count: usize) -> Self {
        TestOptions {
            workload,
            nodes: (0..node_count).map(|i| format!("n{i}")).collect(),
            time_limit: Duration::from_secs(60),
            rate: 5.0,
            concurrency: node_count,
            latency_ms: 0,
            latency_dist: LatencyDist::Constant,
            nemesis: Vec::new(),
            nemesis_interval: Duration::from_secs(10),
            topology: Topology::Grid,
            availability: None,
            log_net_send: false,
            log_net_recv: false,
            seed: 0,
        }
    }
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Write this message to the node's stdin (it was due at `due`).
    Deliver {
        node: String,
        message: Message,
        due: Duration,
    },
    /// Stop these nodes (SIGSTOP) / let them go on (SIGCONT).
    Pause(Vec<String>),
    Resume(Vec<String>),
    /// Kill this node for good (our crash fault).
    Kill(String),
    /// A partition started (the network applies it; drivers need do nothing).
    Partition(crate::net::Grudge),
    /// Every partition healed (likewise informational).
    Heal,
    /// One-way link loss started / every lost link came back (informational).
    LoseLinks(crate::net::Grudge),
    RestoreLinks,
    /// The test is over: check the nodes are alive and kill them.
    Teardown,
}

/// The result of a run, before checking.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub history: History,
    pub net: NetStats,
    /// Why the test aborted (Maelstrom exits 255), if it did.
    pub abort: Option<String>,
    /// Nodes whose output was ignored after a bad line (spec 2.3).
    pub silenced: BTreeMap<String, String>,
    /// Sim-time of the history's origin.
    pub origin: Duration,
    /// Sim-time of the end of the run.
    pub end: Duration,
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Init,
    Setup,
    Main,
    /// Waiting for in-flight ops after the time limit.
    Draining,
    Recovery {
        until: Duration,
    },
    Final,
    Done,
}

/// An RPC awaiting its reply.
#[derive(Clone, Debug)]
struct Rpc {
    client: String,
    msg_id: u64,
    deadline: Duration,
}

/// A worker thread: bound to one node, running one op at a time.
#[derive(Clone, Debug)]
struct Worker {
    node: String,
    process: u64,
    client: Option<String>,
    busy: Option<(OpSpec, Rpc)>,
}

/// Counters for a progress line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub partitioned: bool,
    pub paused: usize,
    pub links_lost: bool,
    pub duplicating: bool,
}

pub struct Harness {
    opts: TestOptions,
    rng: ChaCha8Rng,
    net: Network,
    phase: Phase,
    next_client: u64,
    msg_ids: BTreeMap<String, u64>,
    /// Setup RPCs (init, topology) by node.
    setup_rpcs: BTreeMap<String, Rpc>,
    workers: Vec<Worker>,
    generator: Generator,
    stagger: Option<Stagger>,
    cutoff: Option<Duration>,
    nemesis: Option<Stagger>,
    history: History,
    origin: Duration,
    progress: Progress,
    partitioned: bool,
    links_lost: bool,
    paused: BTreeSet<String>,
    ever_paused: BTreeSet<String>,
    crashed: BTreeSet<String>,
    silenced: BTreeMap<String, String>,
    /// Clients that were closed (their ids unregistered).
    closed_clients: BTreeSet<String>,
    abort: Option<String>,
    log: Vec<String>,
    actions: Vec<Action>,
    now: Duration,
}

impl Harness {
    /// Starts the test at time 0: registers the nodes and sends each its `init`.
    pub fn new(opts: &TestOptions) -> Harness {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let net = Network::new(
            opts.latency_ms,
            opts.latency_dist,
            ChaCha8Rng::seed_from_u64(opts.seed ^ 0x6e65_7477),
        );
        let workers = (0..opts.concurrency)
            .map(|i| Worker {
                node: opts.nodes[i % opts.nodes.len()].clone(),
                process: i as u64,
                client: None,
                busy: None,
            })
            .collect();
        let mut h = Harness {
            generator: opts.workload.generator(),
            opts: opts.clone(),
            rng: ChaCha8Rng::seed_from_u64(rand::Rng::random(&mut rng)),
            net,
            phase: Phase::Init,
            next_client: 0,
            msg_ids: BTreeMap::new(),
            setup_rpcs: BTreeMap::new(),
            workers,
            stagger: None,
            cutoff: None,
            nemesis: None,
            history: Vec::new(),
            origin: Duration::ZERO,
            progress: Progress::default(),
            partitioned: false,
            links_lost: false,
            paused: BTreeSet::new(),
            ever_paused: BTreeSet::new(),
            crashed: BTreeSet::new(),
            silenced: BTreeMap::new(),
            closed_clients: BTreeSet::new(),
            abort: None,
            log: Vec::new(),
            actions: Vec::new(),
            now: Duration::ZERO,
        };
        for node in &opts.nodes {
            h.net.register(node);
        }
        let nodes = opts.nodes.clone();
        for node in &nodes {
            let client = h.open_client();
            let body = json!({"type": "init", "node_id": node, "node_ids": nodes});
            h.setup_rpc(&client, node, body, INIT_TIMEOUT);
        }
        h
    }

    pub fn options(&self) -> &TestOptions {
        &self.opts
    }

    fn open_client(&mut self) -> String {
        let id = format!("c{}", self.next_client);
        self.next_client += 1;
        self.net.register(&id);
        id
    }

    fn close_client(&mut self, id: &str) {
        self.net.unregister(id);
        self.closed_clients.insert(id.to_string());
    }

    fn setup_rpc(&mut self, client: &str, node: &str, mut body: Value, timeout: Duration) {
        body["msg_id"] = json!(1);
        self.send(client, node, body);
        let rpc = Rpc {
            client: client.to_string(),
            msg_id: 1,
            deadline: self.now + timeout,
        };
        self.setup_rpcs.insert(node.to_string(), rpc);
    }

    fn send(&mut self, src: &str, dest: &str, body: Value) {
        match self.net.send(src, dest, body, self.now) {
            Ok(id) => {
                if self.opts.log_net_send {
                    self.note(format!(":send {{:id {id}, :src {src:?}, :dest {dest:?}}}"));
                }
            }
            Err(e) => self.note(format!("WARN {e}")),
        }
    }

    fn note(&mut self, line: String) {
        self.log
            .push(format!("{:>10.3}s {line}", self.now.as_secs_f64()));
    }

    /// Lines for the runner's log since the last call.
    pub fn drain_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    pub fn progress(&self) -> Progress {
        Progress {
            partitioned: self.partitioned,
            paused: self.paused.len(),
            links_lost: self.links_lost,
            duplicating: self.net.is_duplicating(),
            ..self.progress
        }
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The earliest time the harness has something to do.
    pub fn next_wakeup(&self) -> Option<Duration> {
        if self.is_done() {
            return None;
        }
        let mut times: Vec<Duration> = Vec::new();
        times.extend(self.net.next_event());
        times.extend(self.setup_rpcs.values().map(|r| r.deadline));
        times.extend(
            self.workers
                .iter()
                .filter_map(|w| w.busy.as_ref().map(|(_, r)| r.deadline)),
        );
        match &self.phase {
            Phase::Main => {
                if let Some(s) = &self.stagger
                    && self.workers.iter().any(|w| w.busy.is_none())
                {
                    times.push(s.next_time());
                }
                times.extend(self.nemesis.as_ref().map(Stagger::next_time));
            }
            Phase::Recovery { until } => times.push(*until),
            _ => {}
        }
        times.into_iter().min()
    }

    /// What a node wrote on stdout, parsed, at `now`.
    pub fn node_output(&mut self, node: &str, line: Result<Envelope, LineError>, now: Duration) {
        self.advance(now);
        if self.silenced.contains_key(node) || self.crashed.contains(node) {
            return;
        }
        let envelope = match line {
            Ok(envelope) => envelope,
            Err(e) => {
                self.silence(node, format!("{e}"));
                return;
            }
        };
        if self.closed_clients.contains(&envelope.dest) && self.ever_paused.contains(node) {
            // A paused node answering a client that timed out meanwhile cannot know better;
            // with our pause fault this is dropped instead of silencing the node.
            self.note(format!(
                "WARN dropping {node}'s message to closed client {}",
                envelope.dest
            ));
            return;
        }
        match self
            .net
            .send(&envelope.src, &envelope.dest, envelope.body, now)
        {
            Ok(id) => {
                if self.opts.log_net_send {
                    self.note(format!(
                        ":send {{:id {id}, :src {:?}, :dest {:?}}}",
                        envelope.src, envelope.dest
                    ));
                }
            }
            Err(NetError::InvalidDest(m)) => {
                self.silence(node, format!("Invalid dest for message {m}"))
            }
        }
    }

    /// Maelstrom stops reading a node's stdout after a bad line (spec 2.3).
    fn silence(&mut self, node: &str, why: String) {
        self.note(format!(
            "ERROR {node}: {why}; Maelstrom stops reading this node's output for the rest of the test"
        ));
        self.silenced.insert(node.to_string(), why);
    }

    /// A node process ended. Unless our crash fault killed it, the test crashes.
    pub fn node_exited(&mut self, node: &str, status: &str, last_lines: &[String], now: Duration) {
        self.advance(now);
        if self.crashed.contains(node) || self.phase == Phase::Done {
            return;
        }
        self.fail(format!(
            "node {node} exited before the end of the test ({status}); its last output:\n{}",
            last_lines.join("\n")
        ));
    }

    fn fail(&mut self, why: String) {
        if self.abort.is_none() {
            self.note(format!("ERROR {why}"));
            self.abort = Some(why);
        }
        self.phase = Phase::Done;
        self.actions.push(Action::Teardown);
    }

    fn advance(&mut self, now: Duration) {
        self.now = self.now.max(now);
    }

    /// Advances to `now` and returns what the driver must do.
    pub fn poll(&mut self, now: Duration) -> Vec<Action> {
        self.advance(now);
        if self.phase != Phase::Done {
            for delivery in self.net.poll(now) {
                if self.opts.log_net_recv {
                    self.note(format!(":recv {}", delivery.message.to_line()));
                }
                let dest = delivery.message.dest.clone();
                if is_client(&dest) {
                    self.on_client_message(delivery.message);
                } else if !self.crashed.contains(&dest) {
                    self.actions.push(Action::Deliver {
                        node: dest,
                        message: delivery.message,
                        due: delivery.due,
                    });
                }
            }
            self.expire_rpcs();
            self.step();
        }
        std::mem::take(&mut self.actions)
    }

    fn expire_rpcs(&mut self) {
        let now = self.now;
        let expired: Vec<String> = self
            .setup_rpcs
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(n, _)| n.clone())
            .collect();
        if let Some(node) = expired.first() {
            let what = if self.phase == Phase::Init {
                "init"
            } else {
                "topology"
            };
            self.fail(format!(
                "{node} did not respond to {what} within its timeout (node did not respond)"
            ));
            return;
        }
        for i in 0..self.workers.len() {
            if self.workers[i]
                .busy
                .as_ref()
                .is_some_and(|(_, r)| r.deadline <= now)
            {
                self.complete(i, RpcResult::Timeout);
            }
        }
    }

    fn on_client_message(&mut self, message: Message) {
        let Some(in_reply_to) = message.body.get("in_reply_to").and_then(Value::as_u64) else {
            return;
        };
        if let Some((node, _)) = self
            .setup_rpcs
            .iter()
            .find(|(_, r)| r.client == message.dest && r.msg_id == in_reply_to)
            .map(|(n, r)| (n.clone(), r.clone()))
        {
            self.setup_reply(&node, &message.body);
            return;
        }
        let worker = self.workers.iter().position(|w| {
            w.busy
                .as_ref()
                .is_some_and(|(_, r)| r.client == message.dest && r.msg_id == in_reply_to)
        });
        if let Some(i) = worker {
            self.complete(i, RpcResult::Reply(message.body));
        }
    }

    fn setup_reply(&mut self, node: &str, body: &Value) {
        self.setup_rpcs.remove(node);
        let ok = match self.phase {
            Phase::Init => match body.get("type").and_then(Value::as_str) {
                Some("init_ok") => Ok(()),
                _ => Err(format!("expected init_ok from {node}, got {body}")),
            },
            _ => body
                .as_object()
                .ok_or_else(|| "not an object".to_string())
                .and_then(|m| check_closed(m, "topology_ok", None))
                .map_err(|e| format!("malformed topology_ok from {node}: {e} in {body}")),
        };
        if let Err(why) = ok {
            self.fail(why);
        }
    }

    /// Moves the phases along.
    fn step(&mut self) {
        loop {
            let before = self.phase.clone();
            match self.phase.clone() {
                Phase::Init if self.setup_rpcs.is_empty() => self.start_setup(),
                Phase::Setup if self.setup_rpcs.is_empty() => self.start_main(),
                Phase::Main => self.main_step(),
                Phase::Draining if self.idle() => self.start_recovery(),
                Phase::Recovery { until } if self.now >= until => {
                    self.phase = Phase::Final;
                    for i in 0..self.workers.len() {
                        let op = self.opts.workload.final_op();
                        self.invoke(i, op);
                    }
                }
                Phase::Final if self.idle() => {
                    self.phase = Phase::Done;
                    self.actions.push(Action::Teardown);
                }
                _ => {}
            }
            if self.phase == before {
                break;
            }
        }
    }

    fn idle(&self) -> bool {
        self.workers.iter().all(|w| w.busy.is_none())
    }

    fn start_setup(&mut self) {
        for i in 0..self.opts.nodes.len() {
            self.close_client(&format!("c{i}"));
        }
        self.phase = Phase::Setup;
        // Jepsen sets the history's time origin just before client setup.
        self.origin = self.now;
        let nodes = self.opts.nodes.clone();
        let map: serde_json::Map<String, Value> = topology(self.opts.topology, &nodes)
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        for node in &nodes {
            let client = self.open_client();
            if self.opts.workload.sends_topology() {
                let body = json!({"type": "topology", "topology": map});
                self.setup_rpc(&client, node, body, TOPOLOGY_TIMEOUT);
            }
        }
    }

    fn start_main(&mut self) {
        self.phase = Phase::Main;
        let now = self.now;
        if self.opts.rate > 0.0 {
            self.stagger = Some(Stagger::new(
                Duration::from_secs_f64(1.0 / self.opts.rate),
                now,
            ));
        }
        if !self.opts.nemesis.is_empty() {
            self.nemesis = Some(Stagger::new(self.opts.nemesis_interval, now));
        }
        // The first op (client or nemesis) is emitted now, so the cutoff starts now.
        self.cutoff = Some(now + self.opts.time_limit);
        self.note("Running the workload".into());
    }

    fn main_step(&mut self) {
        let cutoff = self.cutoff.expect("set in start_main");
        while let Some(at) = self.nemesis.as_ref().map(Stagger::next_time) {
            if at >= cutoff {
                self.nemesis = None;
            } else if at <= self.now {
                self.nemesis_op();
                let mut nemesis = self.nemesis.take().expect("checked");
                nemesis.advance(&mut self.rng);
                self.nemesis = Some(nemesis);
            } else {
                break;
            }
        }
        while let Some(at) = self.stagger.as_ref().map(Stagger::next_time) {
            if at >= cutoff {
                self.stagger = None;
                break;
            }
            if at > self.now {
                break;
            }
            let free: Vec<usize> = (0..self.workers.len())
                .filter(|i| self.workers[*i].busy.is_none())
                .collect();
            // Jepsen hands the op to a random free thread; with none free, it waits.
            let Some(&thread) = free.choose(&mut self.rng) else {
                break;
            };
            let op = self.generator.next(&mut self.rng);
            self.invoke(thread, op);
            let mut stagger = self.stagger.take().expect("checked");
            stagger.advance(&mut self.rng);
            self.stagger = Some(stagger);
        }
        if self.stagger.is_none() && (self.nemesis.is_none() || self.now >= cutoff) {
            self.nemesis = None;
            self.phase = Phase::Draining;
        }
    }

    /// After the main phase: workloads with a final generator heal, wait and read.
    fn start_recovery(&mut self) {
        if !self.opts.workload.has_final() {
            self.phase = Phase::Done;
            self.actions.push(Action::Teardown);
            return;
        }
        if self.opts.nemesis.contains(&Fault::Partition) {
            self.heal();
        }
        if self.links_lost {
            self.restore_links();
        }
        if self.net.is_duplicating() {
            self.stop_duplicating();
        }
        if !self.paused.is_empty() {
            self.resume_all();
        }
        self.note("Waiting for recovery...".into());
        self.phase = Phase::Recovery {
            until: self.now + RECOVERY,
        };
    }

    fn heal(&mut self) {
        self.net.heal();
        self.partitioned = false;
        self.actions.push(Action::Heal);
        self.nemesis_record("stop-partition", Edn::Nil, Edn::kw("network-healed"));
    }

    fn restore_links(&mut self) {
        self.net.restore_links();
        self.links_lost = false;
        self.actions.push(Action::RestoreLinks);
        self.nemesis_record("stop-link-loss", Edn::Nil, Edn::kw("links-restored"));
    }

    fn stop_duplicating(&mut self) {
        self.net.set_duplicating(false);
        self.nemesis_record("stop-duplication", Edn::Nil, Edn::kw("stopped"));
    }

    fn resume_all(&mut self) {
        let paused: Vec<String> = std::mem::take(&mut self.paused).into_iter().collect();
        let value = Edn::Vector(paused.iter().map(|n| Edn::Str(n.clone())).collect());
        let result = Edn::Map(
            paused
                .iter()
                .map(|n| (Edn::Str(n.clone()), Edn::kw("resumed")))
                .collect(),
        );
        self.nemesis_record("resume", value, result);
        self.actions.push(Action::Resume(paused));
    }

    /// One nemesis op: a random fault, started if inactive, stopped if active.
    fn nemesis_op(&mut self) {
        let fault = *self
            .opts
            .nemesis
            .choose(&mut self.rng)
            .expect("nemesis has faults");
        let live: Vec<String> = self
            .opts
            .nodes
            .iter()
            .filter(|n| !self.crashed.contains(*n))
            .cloned()
            .collect();
        match fault {
            Fault::Partition if self.partitioned => self.heal(),
            Fault::Partition => {
                let spec = PartitionSpec::random(&mut self.rng);
                let grudge = nemesis::grudge(spec, &self.opts.nodes, &mut self.rng);
                self.net.partition(&grudge);
                self.partitioned = true;
                self.actions.push(Action::Partition(grudge.clone()));
                self.nemesis_record(
                    "start-partition",
                    Edn::kw(spec.keyword()),
                    Edn::Vector(vec![Edn::kw("isolated"), grudge_edn(&grudge)]),
                );
            }
            Fault::LinkLoss if self.links_lost => self.restore_links(),
            Fault::LinkLoss => {
                let lost = nemesis::lost_links(&self.opts.nodes, &mut self.rng);
                self.net.lose_links(&lost);
                self.links_lost = true;
                self.actions.push(Action::LoseLinks(lost.clone()));
                self.nemesis_record("start-link-loss", grudge_edn(&lost), Edn::kw("links-lost"));
            }
            Fault::Duplicate if self.net.is_duplicating() => self.stop_duplicating(),
            Fault::Duplicate => {
                self.net.set_duplicating(true);
                self.nemesis_record("start-duplication", Edn::Nil, Edn::kw("duplicating"));
            }
            Fault::Pause if !self.paused.is_empty() => self.resume_all(),
            Fault::Pause if live.is_empty() => {}
            Fault::Pause => {
                let targets = nemesis::pause_targets(&live, &mut self.rng);
                let value = Edn::Vector(targets.iter().map(|n| Edn::Str(n.clone())).collect());
                let result = Edn::Map(
                    targets
                        .iter()
                        .map(|n| (Edn::Str(n.clone()), Edn::kw("paused")))
                        .collect(),
                );
                self.nemesis_record("pause", value, result);
                self.paused.extend(targets.iter().cloned());
                self.ever_paused.extend(targets.iter().cloned());
                self.actions.push(Action::Pause(targets));
            }
            Fault::Crash if !self.crashed.is_empty() || live.is_empty() => {}
            Fault::Crash => {
                let node = live.choose(&mut self.rng).expect("non-empty").clone();
                self.nemesis_record(
                    "kill",
                    Edn::Vector(vec![Edn::Str(node.clone())]),
                    Edn::Map(vec![(Edn::Str(node.clone()), Edn::kw("killed"))]),
                );
                self.crashed.insert(node.clone());
                self.paused.remove(&node);
                self.actions.push(Action::Kill(node));
            }
        }
    }

    fn nemesis_record(&mut self, f: &str, value: Edn, result: Edn) {
        self.note(format!("nemesis :{f} {value} -> {result}"));
        for (kind, value) in [(OpType::Info, value), (OpType::Info, result)] {
            self.push_op(Process::Nemesis, kind, f, value, None, false, None);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_op(
        &mut self,
        process: Process,
        kind: OpType,
        f: &str,
        value: Edn,
        error: Option<Edn>,
        final_read: bool,
        exception: Option<String>,
    ) {
        self.history.push(Op {
            index: self.history.len() as u64,
            time: (self.now.saturating_sub(self.origin)).as_nanos() as u64,
            process,
            kind,
            f: f.to_string(),
            value,
            error,
            final_read,
            exception,
        });
    }

    fn invoke(&mut self, thread: usize, op: OpSpec) {
        let client = match self.workers[thread].client.clone() {
            Some(client) => client,
            None => {
                let client = self.open_client();
                self.workers[thread].client = Some(client.clone());
                client
            }
        };
        let process = self.workers[thread].process;
        self.push_op(
            Process::Worker(process),
            OpType::Invoke,
            op.f,
            op.value.clone(),
            None,
            op.final_read,
            None,
        );
        let msg_id = self.next_msg_id(&client);
        let mut body = self.opts.workload.request(&op);
        body["msg_id"] = json!(msg_id);
        let node = self.workers[thread].node.clone();
        self.send(&client, &node, body);
        let rpc = Rpc {
            client,
            msg_id,
            deadline: self.now + RPC_TIMEOUT,
        };
        self.workers[thread].busy = Some((op, rpc));
    }

    /// Each client counts its own msg_ids from 1.
    fn next_msg_id(&mut self, client: &str) -> u64 {
        let counter = self.msg_ids.entry(client.to_string()).or_insert(0);
        *counter += 1;
        *counter
    }

    fn complete(&mut self, thread: usize, result: RpcResult) {
        let Some((op, _)) = self.workers[thread].busy.take() else {
            return;
        };
        let Completion {
            kind,
            value,
            error,
            exception,
        } = self.opts.workload.complete(&op, &result);
        let process = self.workers[thread].process;
        self.push_op(
            Process::Worker(process),
            kind,
            op.f,
            value,
            error,
            op.final_read,
            exception,
        );
        match kind {
            OpType::Ok => self.progress.ok += 1,
            OpType::Fail => self.progress.fail += 1,
            _ => self.progress.info += 1,
        }
        if kind == OpType::Info {
            // The process crashed as far as Jepsen knows: the thread moves on to a new one.
            let worker = &mut self.workers[thread];
            worker.process += self.opts.concurrency as u64;
            if !self.opts.workload.reusable_client()
                && let Some(client) = worker.client.take()
            {
                self.close_client(&client);
            }
        }
    }

    /// The run's result; call once `is_done`.
    pub fn outcome(self) -> Outcome {
        Outcome {
            history: self.history,
            net: self.net.stats(),
            abort: self.abort,
            silenced: self.silenced,
            origin: self.origin,
            end: self.now,
        }
    }
}

/// A grudge as the nemesis records it: {receiver #{sender ...} ...}.
fn grudge_edn(grudge: &crate::net::Grudge) -> Edn {
    Edn::Map(
        grudge
            .iter()
            .map(|(k, v)| {
                (
                    Edn::Str(k.clone()),
                    Edn::Set(v.iter().map(|s| Edn::Str(s.clone())).collect()),
                )
            })
            .collect(),
    )
}
