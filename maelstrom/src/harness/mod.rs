//! One deterministic model of a whole Maelstrom test: the network, the clients, the
//! nemesis, the schedule, the phases and the history. It is driven by time passed in, so
//! the wall-clock driver (real processes) and the virtual-clock simulation (in-process
//! nodes) run exactly the same test logic. The parts own their state: the clients
//! (`clients.rs`), the nemesis (`crate::nemesis`), the schedule of the main phase
//! (`crate::schedule`); the harness moves the phases along (`phases.rs`) and routes
//! what the nodes write and what the network delivers.

pub mod clients;

use std::collections::BTreeMap;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::history::History;
use crate::message::{Envelope, LineError, Message, is_client};
use crate::nemesis::Nemesis;
use crate::net::{Journal, NetError, NetStats, Network};
use crate::options::TestOptions;
use crate::record::{Action, Env, Record, StatusChange};
use crate::schedule::Schedule;
use clients::Clients;
use phases::Phase;

pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
pub const TOPOLOGY_TIMEOUT: Duration = Duration::from_secs(5);
pub const RECOVERY: Duration = Duration::from_secs(10);

/// The result of a run, before checking.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub history: History,
    pub net: NetStats,
    /// Why the test aborted (Maelstrom exits 255), if it did.
    pub abort: Option<String>,
    /// Nodes whose output was ignored after a bad line (docs/maelstrom-compatibility.md 2.3).
    pub silenced: BTreeMap<String, String>,
    /// Sim-time of the history's origin.
    pub origin: Duration,
    /// Sim-time of the end of the run.
    pub end: Duration,
    /// The first events of the traffic, for the message diagram.
    pub journal: Journal,
    /// How each node saw its peers' status change, as far as the driver can tell
    /// (for `membership.svg`); empty when it cannot.
    pub membership: Vec<StatusChange>,
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
    /// The clock, the network, the random source and the record, which the clients and
    /// the nemesis act through.
    env: Env,
    phase: Phase,
    schedule: Schedule,
    clients: Clients,
    nemesis: Nemesis,
    silenced: BTreeMap<String, String>,
    abort: Option<String>,
}

mod phases;

impl Harness {
    /// Starts the test at time 0: registers the nodes and sends each its `init`.
    pub fn new(opts: &TestOptions) -> Harness {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut net = Network::new(
            opts.latency_ms,
            opts.latency_dist,
            ChaCha8Rng::seed_from_u64(opts.seed ^ 0x6e65_7477),
        );
        if !opts.journal {
            net.journal_off();
        }
        if let Some(lossy) = opts.lossy {
            net.set_lossy(lossy, ChaCha8Rng::seed_from_u64(opts.seed ^ 0x6c6f_7373));
        }
        let mut h = Harness {
            clients: Clients::new(opts),
            nemesis: Nemesis::new(&opts.nemesis, &opts.nodes, opts.seed)
                .with_crash_target(opts.crash_target.clone()),
            opts: opts.clone(),
            env: Env {
                now: Duration::ZERO,
                net,
                rng: ChaCha8Rng::seed_from_u64(rand::Rng::random(&mut rng)),
                record: Record {
                    log_sends: opts.log_net_send,
                    ..Record::default()
                },
            },
            phase: Phase::Init,
            schedule: Schedule::default(),
            silenced: BTreeMap::new(),
            abort: None,
        };
        for node in &opts.nodes {
            h.env.net.register(node);
        }
        for node in &opts.nodes {
            let client = h.clients.open(&mut h.env.net);
            let body = json!({"type": "init", "node_id": node, "node_ids": opts.nodes});
            h.clients
                .setup_rpc(&mut h.env, &client, node, body, INIT_TIMEOUT);
        }
        h
    }

    pub fn options(&self) -> &TestOptions {
        &self.opts
    }

    fn note(&mut self, line: String) {
        self.env.note(line);
    }

    /// Lines for the runner's log since the last call.
    pub fn drain_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.env.record.log)
    }

    pub fn progress(&self) -> Progress {
        let counts = self.clients.counts();
        Progress {
            ok: counts.ok,
            fail: counts.fail,
            info: counts.info,
            partitioned: self.env.net.is_partitioned(),
            paused: self.nemesis.paused_count(),
            links_lost: self.env.net.links_lost(),
            duplicating: self.env.net.is_duplicating(),
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
        // (Folded as they come: this is asked after every node output.)
        let phase = match &self.phase {
            Phase::Main => {
                let client = self.schedule.next_client();
                let client = client.filter(|_| self.clients.any_free());
                [client, self.schedule.next_nemesis()]
            }
            Phase::Recovery { until } => [Some(*until), None],
            _ => [None, None],
        };
        self.env
            .net
            .next_event()
            .into_iter()
            .chain(self.clients.deadlines())
            .chain(self.nemesis.next_toggle())
            .chain(phase.into_iter().flatten())
            .min()
    }

    /// What a node wrote on stdout, parsed, at `now`.
    pub fn node_output(&mut self, node: &str, line: Result<Envelope, LineError>, now: Duration) {
        self.advance(now);
        if self.silenced.contains_key(node) || self.nemesis.is_crashed(node) {
            return;
        }
        let envelope = match line {
            Ok(envelope) => envelope,
            Err(e) => {
                self.silence(node, format!("{e}"));
                return;
            }
        };
        if self.clients.is_closed(&envelope.dest) && self.nemesis.was_paused(node) {
            // A paused node answering a client that timed out meanwhile cannot know better;
            // with our pause fault this is dropped instead of silencing the node.
            self.note(format!(
                "WARN dropping {node}'s message to closed client {}",
                envelope.dest
            ));
            return;
        }
        let Envelope { src, dest, body } = envelope;
        match self.env.net.send(&src, &dest, body, now) {
            Ok(id) => self.env.sent(id, &src, &dest),
            Err(NetError::InvalidDest(m)) => {
                self.silence(node, format!("Invalid dest for message {m}"))
            }
        }
    }

    /// Maelstrom stops reading a node's stdout after a bad line
    /// (docs/maelstrom-compatibility.md 2.3).
    fn silence(&mut self, node: &str, why: String) {
        let why = crate::message::quote(&why);
        self.note(format!(
            "ERROR {node}: {why}; Maelstrom stops reading this node's output for the rest of the test"
        ));
        self.silenced.insert(node.to_string(), why);
    }

    /// A node process ended. Unless our crash fault killed it, the test crashes.
    pub fn node_exited(&mut self, node: &str, status: &str, last_lines: &[String], now: Duration) {
        self.advance(now);
        if self.nemesis.is_crashed(node) || self.phase == Phase::Done {
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
        self.finish();
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.env.record.actions.push(Action::Teardown);
    }

    fn advance(&mut self, now: Duration) {
        self.env.now = self.env.now.max(now);
    }

    /// Advances to `now` and returns what the driver must do.
    pub fn poll(&mut self, now: Duration) -> Vec<Action> {
        self.advance(now);
        if self.phase != Phase::Done {
            for delivery in self.env.net.poll(now) {
                if self.opts.log_net_recv {
                    self.note(format!(":recv {}", delivery.message.to_line()));
                }
                let dest = delivery.message.dest.clone();
                if is_client(&dest) {
                    self.deliver_to_client(delivery.message);
                } else if !self.nemesis.is_crashed(&dest) {
                    self.env.record.actions.push(Action::Deliver {
                        node: dest,
                        message: delivery.message,
                        due: delivery.due,
                    });
                }
            }
            self.expire_rpcs();
            self.nemesis.toggle(&mut self.env);
            self.step();
        }
        std::mem::take(&mut self.env.record.actions)
    }

    fn deliver_to_client(&mut self, message: Message) {
        if let Some((node, body)) = self.clients.reply(&mut self.env, message) {
            self.setup_reply(&node, &body);
        }
    }

    /// The run's result; call once `is_done`.
    pub fn outcome(mut self) -> Outcome {
        Outcome {
            journal: self.env.net.take_journal(),
            membership: Vec::new(),
            history: self.env.record.history,
            net: self.env.net.stats(),
            abort: self.abort,
            silenced: self.silenced,
            origin: self.env.record.origin,
            end: self.env.now,
        }
    }
}
