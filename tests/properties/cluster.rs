//! A small cluster of state machines under the steps of `events.rs`, every line checked as
//! it goes: client lines and peer messages go through `node::runtime::event_of_line`, the
//! stdio runtime's own parsing, and every envelope a node writes is serialised as the
//! runtime's sender does, checked against Maelstrom's schema, and parsed back.
//!
//! Properties checked on every output: the schema; a node answers as itself once
//! initialised; at most one reply per request; a refused line gets an `error` exactly when
//! it said who asked; reads only grow (sets) and hold only values some client wrote;
//! counters' per-node totals never decrease; incarnations and record versions never
//! decrease; a node never suspects or doubts itself. After the steps, the network is made
//! whole and quiet, and within `QUIET_BOUND` of simulated time every live node must hold
//! every acknowledged write (and every write taken by a live node), all alike.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use node::config::{Config, Mode};
use node::event::{Event, Trigger};
use node::machine::StateMachine;
use node::runtime::event_of_line;
use node::wire::{
    Add, Element, Envelope, ErrorCode, Gossip, MembershipView, Payload, ReadOk, to_line,
};
use serde_json::{Value, json};

use crate::events::{Ask, Bad, Case, Forged, Step, Val, bad_gossip_line, bad_line};
use crate::schema::{Workload, check_line};

/// How long the whole, quiet network has to bring every live node every acknowledged write,
/// plus `STALL_FACTOR` times the time nodes spent stalled or paused: an ack read after this
/// node's own stall measures the stall as a round trip, the ack timeout that follows
/// (srtt + 4·rttvar) is up to three times as long until new samples bring it down, and a
/// crashed parent is ruled out only after three such timeouts.
const QUIET_BOUND: Duration = Duration::from_secs(30);
const STALL_FACTOR: u32 = 10;
/// How often the quiet phase reads every node to see whether it is done.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// Delivered messages kept for replaying late.
const REPLAY_KEEP: usize = 32;
/// Bounds that turn a livelock into a failure rather than a hang.
const MAX_IN_FLIGHT: usize = 200_000;
const MAX_ACTIONS_PER_RUN: u64 = 5_000_000;

/// Values only forged gossip carries: a node that takes them in believed a stranger.
const FORGED_INT: i64 = 1_000_003;
const FORGED_TEXT: &str = "forged";

struct Sim {
    id: String,
    machine: StateMachine,
    paused: bool,
    /// When each trigger is next due: gossip, detect.
    due: [Duration; 2],
    /// The last set and counter value this node's reads returned.
    last_set: Option<BTreeSet<Element>>,
    last_value: Option<i64>,
    /// Per author, the highest (incarnation, version) of its record this node has shown.
    records: BTreeMap<String, (u64, u64)>,
    /// Per counted node, the highest totals this node has sent.
    counts: BTreeMap<String, [u64; 2]>,
}

struct Msg {
    to: usize,
    due: Duration,
    line: String,
}

/// What a request wrote, for its acknowledgement.
enum Wrote {
    Set(Element),
    /// The index of the add in its node's list.
    Add(usize),
}

struct Request {
    node: usize,
    wrote: Option<Wrote>,
}

pub struct Cluster {
    workload: Workload,
    latency: Duration,
    now: Duration,
    nodes: Vec<Sim>,
    periods: [Duration; 2],
    flight: Vec<Msg>,
    delivered: Vec<(usize, String)>,
    partition: Option<u8>,
    crashed: Option<usize>,
    next_msg_id: u64,
    requests: HashMap<u64, Request>,
    answered: HashSet<u64>,
    /// Every set value some request carried that parsed: what a read may hold.
    possibly_written: BTreeSet<Element>,
    /// Set values each node took from a client.
    taken: Vec<BTreeSet<Element>>,
    acked_set: BTreeSet<Element>,
    /// Deltas each node took from a client, in order, and whether each was acknowledged.
    adds: Vec<Vec<(i64, bool)>>,
    any_negative: bool,
    actions: u64,
    /// Time some node spent stalled or paused.
    stalled: Duration,
    /// `PROP_TRACE=n1`: print every event n1 handles and every line it writes.
    trace: Option<String>,
}

impl Cluster {
    pub fn new(case: &Case, workload: Workload) -> Cluster {
        let mode = match workload {
            Workload::Broadcast => Mode::Broadcast,
            Workload::GSet => Mode::GSet,
            Workload::Counter => Mode::Counter,
        };
        let config = Config {
            workload: Some(mode),
            ..Config::default()
        };
        let probe = StateMachine::new(config.clone());
        let schedule = probe.schedule();
        let period = |t| {
            schedule
                .iter()
                .find(|(trigger, _)| *trigger == t)
                .expect("both triggers are scheduled")
                .1
        };
        let periods = [period(Trigger::Gossip), period(Trigger::Detect)];
        let nodes = (0..case.nodes)
            .map(|i| Sim {
                id: format!("n{i}"),
                machine: StateMachine::new(config.clone()),
                paused: false,
                due: periods,
                last_set: None,
                last_value: None,
                records: BTreeMap::new(),
                counts: BTreeMap::new(),
            })
            .collect();
        Cluster {
            workload,
            latency: Duration::from_millis(case.latency_ms),
            now: Duration::ZERO,
            nodes,
            periods,
            flight: Vec::new(),
            delivered: Vec::new(),
            partition: None,
            crashed: None,
            next_msg_id: 1,
            requests: HashMap::new(),
            answered: HashSet::new(),
            possibly_written: BTreeSet::new(),
            taken: vec![BTreeSet::new(); case.nodes],
            acked_set: BTreeSet::new(),
            adds: vec![Vec::new(); case.nodes],
            any_negative: false,
            actions: 0,
            stalled: Duration::ZERO,
            trace: std::env::var("PROP_TRACE").ok(),
        }
    }

    /// Runs the case: the steps, then the quiet phase and its check.
    pub fn run(mut self, case: &Case) -> Result<(), String> {
        for i in 0..self.nodes.len() {
            if case.inited >> i & 1 == 1 {
                self.init(i)?;
            }
        }
        for (k, step) in case.steps.iter().enumerate() {
            self.step(step)
                .map_err(|e| format!("at step {k} ({step:?}), {} ms: {e}", self.now.as_millis()))?;
        }
        self.settle()
            .map_err(|e| format!("in the quiet phase, at {} ms: {e}", self.now.as_millis()))
    }

    fn ix(&self, ix: u8) -> usize {
        usize::from(ix) % self.nodes.len()
    }

    fn live(&self, i: usize) -> bool {
        self.crashed != Some(i)
    }

    /// Up and running: neither crashed nor paused.
    fn running(&self, i: usize) -> bool {
        self.live(i) && !self.nodes[i].paused
    }

    fn inited(&self, i: usize) -> bool {
        self.nodes[i].machine.id().is_some()
    }

    fn msg_id(&mut self) -> u64 {
        self.next_msg_id += 1;
        self.next_msg_id
    }

    fn client_of(msg_id: u64) -> String {
        format!("c{}", msg_id % 3 + 1)
    }

    fn request(&mut self, i: usize, body: Value) -> Value {
        let msg_id = self.msg_id();
        let mut body = body;
        body["msg_id"] = json!(msg_id);
        json!({"src": Self::client_of(msg_id), "dest": self.nodes[i].id, "body": body})
    }

    fn write_body(&self, value: Value) -> (Value, &'static str) {
        match self.workload {
            Workload::Broadcast => (json!({"type": "broadcast", "message": value}), "message"),
            Workload::GSet => (json!({"type": "add", "element": value}), "element"),
            Workload::Counter => (json!({"type": "add", "delta": value}), "delta"),
        }
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Write(n, value) => {
                let i = self.ix(*n);
                let (body, _) = self.write_body(value.json());
                let line = self.request(i, body);
                self.client_line(i, line.to_string().as_bytes())
            }
            Step::Read(n) => {
                let i = self.ix(*n);
                let line = self.request(i, json!({"type": "read"}));
                self.client_line(i, line.to_string().as_bytes())
            }
            Step::Ask(n, ask) => self.ask(self.ix(*n), *ask),
            Step::Bad(n, bad) => self.bad(self.ix(*n), *bad),
            Step::BadPeer(a, b, bad) => {
                let (a, b) = (self.ix(*a), self.ix(*b));
                if !self.running(b) {
                    return Ok(());
                }
                let line = bad_gossip_line(&self.nodes[a].id, &self.nodes[b].id, *bad);
                match event_of_line(&line) {
                    Some(Event::Rejected(r)) => self.rejected(b, r),
                    other => Err(format!(
                        "a bad peer line was not refused: {} → {other:?}",
                        String::from_utf8_lossy(&line)
                    )),
                }
            }
            Step::Stranger(n, forged) => self.stranger(self.ix(*n), *forged),
            Step::Deliver(k) => self.network(*k, true, true),
            Step::Drop(k) => self.network(*k, false, true),
            Step::Dup(k) => self.network(*k, true, false),
            Step::Replay(k) => {
                if self.delivered.is_empty() {
                    return Ok(());
                }
                let (to, line) = self.delivered[usize::from(*k) % self.delivered.len()].clone();
                self.deliver(to, line)
            }
            Step::Tick(n, detect) => {
                let i = self.ix(*n);
                if !self.running(i) {
                    return Ok(());
                }
                let trigger = if *detect {
                    Trigger::Detect
                } else {
                    Trigger::Gossip
                };
                self.handle(i, Event::Trigger(trigger))
            }
            Step::Advance(ms) => {
                let by = Duration::from_millis(u64::from(*ms));
                if (0..self.nodes.len()).any(|i| self.live(i) && self.nodes[i].paused) {
                    self.stalled += by;
                }
                self.run_until(self.now + by)
            }
            Step::Stall(ms) => {
                let by = Duration::from_millis(u64::from(*ms));
                self.stalled += by;
                self.now += by;
                for node in &mut self.nodes {
                    node.due = node.due.map(|due| due.max(self.now));
                }
                Ok(())
            }
            Step::Pause(n) => {
                let i = self.ix(*n);
                self.nodes[i].paused = true;
                Ok(())
            }
            Step::Resume(n) => {
                let i = self.ix(*n);
                self.resume(i);
                Ok(())
            }
            Step::Partition(mask) => {
                self.partition = Some(*mask);
                Ok(())
            }
            Step::Heal => {
                self.partition = None;
                Ok(())
            }
            Step::Crash(n) => {
                if self.crashed.is_none() {
                    self.crashed = Some(self.ix(*n));
                }
                Ok(())
            }
            Step::Init(n) => {
                let i = self.ix(*n);
                if !self.running(i) {
                    return Ok(());
                }
                self.init(i)
            }
            Step::Unreachable(a, b) | Step::Connected(a, b) => {
                let (a, b) = (self.ix(*a), self.ix(*b));
                if !self.running(a) {
                    return Ok(());
                }
                let peer = self.nodes[b].id.clone();
                let hint = match step {
                    Step::Unreachable(..) => Event::Unreachable(peer),
                    _ => Event::Connected(peer),
                };
                self.handle(a, hint)
            }
        }
    }

    fn resume(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.paused = false;
        node.due = node.due.map(|due| due.max(self.now));
    }

    fn node_ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    fn init(&mut self, i: usize) -> Result<(), String> {
        let body =
            json!({"type": "init", "node_id": self.nodes[i].id, "node_ids": self.node_ids()});
        let line = self.request(i, body);
        self.client_line(i, line.to_string().as_bytes())?;
        if !self.inited(i) {
            return Err("the cluster's init did not initialise the node".into());
        }
        Ok(())
    }

    fn ask(&mut self, i: usize, ask: Ask) -> Result<(), String> {
        if !self.running(i) {
            return Ok(());
        }
        let id = self.nodes[i].id.clone();
        let body = match ask {
            Ask::Echo => json!({"type": "echo", "echo": {"x": [1, "y", null]}}),
            Ask::Generate => json!({"type": "generate"}),
            Ask::Topology => {
                let others: Vec<String> =
                    self.node_ids().into_iter().filter(|n| *n != id).collect();
                json!({"type": "topology", "topology": {id.clone(): others}})
            }
            Ask::Membership => json!({"type": "membership"}),
            Ask::InitOther => {
                // Before its init a node would take this as its cluster: only once it has one.
                if !self.inited(i) {
                    return Ok(());
                }
                json!({"type": "init", "node_id": id, "node_ids": [id, "n7"]})
            }
            Ask::InitStranger => {
                json!({"type": "init", "node_id": "n8", "node_ids": self.node_ids()})
            }
            Ask::Misaddressed => {
                let mut line = self.request(i, json!({"type": "read"}));
                line["dest"] = json!("n9");
                return self.client_line(i, line.to_string().as_bytes());
            }
            Ask::ReplyType => json!({"type": "read_ok", "messages": []}),
            Ask::NoMsgId => {
                let line = json!({"src": "c1", "dest": id, "body": {"type": "read"}});
                return self.client_line(i, line.to_string().as_bytes());
            }
        };
        let line = self.request(i, body);
        self.client_line(i, line.to_string().as_bytes())
    }

    fn bad(&mut self, i: usize, bad: Bad) -> Result<(), String> {
        if !self.running(i) {
            return Ok(());
        }
        let (body, key) = self.write_body(Val::Int(11).json());
        let line = self.request(i, body);
        let line = bad_line(line, key, bad);
        self.client_line(i, &line)
    }

    fn stranger(&mut self, i: usize, forged: Forged) -> Result<(), String> {
        if !self.running(i) {
            return Ok(());
        }
        let big = |small: u64| if forged.huge { u64::MAX } else { small };
        let version: u64 = if forged.huge { (1 << 53) - 1 } else { 1000 };
        let mut body = json!({
            "type": "gossip", "seq": big(1), "ack": big(1), "probe": true,
            "values": [FORGED_TEXT, FORGED_INT],
            "counts": {"n0": [big(5), 0], "n9": [7, 0]},
            "members": {
                "n0": {"version": version, "inc": version, "suspects": {"n0": version, "n1": 0}},
                "n9": {"version": 1, "suspects": {"n1": 0}},
            },
        });
        if forged.msg_id {
            body["msg_id"] = json!(self.msg_id());
        }
        let src = if forged.from_client { "c9" } else { "n9" };
        let line = json!({"src": src, "dest": self.nodes[i].id, "body": body});
        self.client_line(i, line.to_string().as_bytes())
    }

    /// A line from outside the cluster (a client, a stranger) arriving at node `i`.
    fn client_line(&mut self, i: usize, line: &[u8]) -> Result<(), String> {
        if !self.running(i) {
            return Ok(());
        }
        match event_of_line(line) {
            None => {
                let blank = line.iter().all(u8::is_ascii_whitespace);
                if blank {
                    Ok(())
                } else {
                    Err(format!(
                        "a line was dropped: {}",
                        String::from_utf8_lossy(line)
                    ))
                }
            }
            Some(Event::Rejected(r)) => self.rejected(i, r),
            Some(Event::Message(env)) => {
                self.note_request(i, &env);
                self.handle(i, Event::Message(env))
            }
            Some(other) => Err(format!("a line became {other:?}")),
        }
    }

    /// A line the parser refused: answered with one `error` exactly when it said who asked
    /// and which request it was (and who it asked, before `init`), else only logged.
    fn rejected(&mut self, i: usize, r: node::wire::Rejected) -> Result<(), String> {
        let answerable =
            r.src.is_some() && r.msg_id.is_some() && (self.inited(i) || r.dest.is_some());
        let (src, msg_id) = (r.src.clone(), r.msg_id);
        let out = self.nodes[i].machine.handle(Event::Rejected(r), self.now);
        if out.len() != usize::from(answerable) {
            return Err(format!(
                "a refused line got {out:?} (answerable: {answerable})"
            ));
        }
        if let Some(reply) = out.first() {
            let code = match &reply.body.payload {
                Payload::Error { code, .. } => *code,
                other => return Err(format!("a refused line got {other:?}")),
            };
            let fits = matches!(code, ErrorCode::NotSupported | ErrorCode::MalformedRequest)
                && Some(&reply.dest) == src.as_ref()
                && reply.body.in_reply_to == msg_id;
            if !fits {
                return Err(format!("a refused line got {reply:?}"));
            }
        }
        self.observe_all(i, out)
    }

    /// Keeps what a client request may write, before the node sees it.
    fn note_request(&mut self, i: usize, env: &Envelope) {
        let taken = self.inited(i) && self.nodes[i].machine.id() == Some(env.dest.as_str());
        let wrote = match &env.body.payload {
            Payload::Broadcast { message: e } | Payload::Add(Add::Element(e)) => {
                self.possibly_written.insert(e.clone());
                taken.then(|| {
                    self.taken[i].insert(e.clone());
                    Wrote::Set(e.clone())
                })
            }
            Payload::Add(Add::Delta(d)) => taken.then(|| {
                self.any_negative |= *d < 0;
                self.adds[i].push((*d, false));
                Wrote::Add(self.adds[i].len() - 1)
            }),
            _ => None,
        };
        if let Some(msg_id) = env.body.msg_id {
            self.requests.insert(msg_id, Request { node: i, wrote });
        }
    }

    fn handle(&mut self, i: usize, event: Event) -> Result<(), String> {
        self.actions += 1;
        let trace = self.trace.as_ref() == Some(&self.nodes[i].id);
        if trace && !matches!(event, Event::Trigger(_)) {
            eprintln!(
                "{:>6} {} <- {:?}",
                self.now.as_millis(),
                self.nodes[i].id,
                event
            );
        }
        let out = self.nodes[i].machine.handle(event, self.now);
        if trace {
            for e in &out {
                eprintln!(
                    "{:>6} {} -> {}",
                    self.now.as_millis(),
                    self.nodes[i].id,
                    to_line(e)
                );
            }
        }
        self.observe_all(i, out)
    }

    fn observe_all(&mut self, i: usize, out: Vec<Envelope>) -> Result<(), String> {
        for env in out {
            self.observe(i, env)?;
        }
        Ok(())
    }

    /// Checks one envelope node `i` wrote, then routes it.
    fn observe(&mut self, i: usize, env: Envelope) -> Result<(), String> {
        let line = to_line(&env);
        check_line(&line, self.workload)?;
        match event_of_line(line.as_bytes()) {
            Some(Event::Message(back)) if back == env => {}
            other => return Err(format!("{line} does not read back: {other:?}")),
        }
        let me = self.nodes[i].machine.id().map(str::to_string);
        if let Some(me) = &me
            && env.src != *me
        {
            return Err(format!("{me} wrote as another: {line}"));
        }
        match &env.body.payload {
            Payload::Gossip(g) => self.check_gossip(i, g)?,
            Payload::MembershipOk(view) => self.check_view(i, view)?,
            Payload::ReadOk(read) => self.check_read(i, read)?,
            Payload::BroadcastOk | Payload::AddOk => self.acknowledged(env.body.in_reply_to),
            _ => {}
        }
        if let Some(to) = self.nodes.iter().position(|n| n.id == env.dest) {
            if self.flight.len() >= MAX_IN_FLIGHT {
                return Err("too many messages in flight".into());
            }
            self.flight.push(Msg {
                to,
                due: self.now + self.latency,
                line,
            });
        } else if let Some(id) = env.body.in_reply_to
            && !self.answered.insert(id)
        {
            return Err(format!("a second reply to request {id}: {line}"));
        }
        Ok(())
    }

    fn acknowledged(&mut self, in_reply_to: Option<u64>) {
        let Some(request) = in_reply_to.and_then(|id| self.requests.get(&id)) else {
            return;
        };
        match &request.wrote {
            Some(Wrote::Set(e)) => {
                self.acked_set.insert(e.clone());
            }
            Some(Wrote::Add(k)) => self.adds[request.node][*k].1 = true,
            None => {}
        }
    }

    fn check_gossip(&mut self, i: usize, g: &Gossip) -> Result<(), String> {
        let node = &mut self.nodes[i];
        if let Some(own) = g.members.get(node.id.as_str())
            && (own.suspects.contains_key(&node.id) || own.doubts.contains_key(&node.id))
        {
            return Err(format!("{} votes against itself: {own:?}", node.id));
        }
        for (author, record) in &g.members {
            let seen = node.records.entry(author.to_string()).or_default();
            if record.inc < seen.0 || record.version < seen.1 {
                return Err(format!(
                    "{} sent {author}'s record at incarnation {} version {} after {seen:?}",
                    node.id, record.inc, record.version
                ));
            }
            *seen = (record.inc, record.version);
        }
        for (counted, totals) in &g.counts {
            let seen = node.counts.entry(counted.clone()).or_default();
            if totals[0] < seen[0] || totals[1] < seen[1] {
                return Err(format!(
                    "{} sent {counted}'s totals {totals:?} after {seen:?}",
                    node.id
                ));
            }
            *seen = *totals;
        }
        Ok(())
    }

    fn check_view(&mut self, i: usize, view: &MembershipView) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let me = &node.id;
        if view.alive.contains(me) || view.suspected.contains_key(me) || view.dead.contains_key(me)
        {
            return Err(format!("{me} lists itself: {view:?}"));
        }
        if view.incarnations.get(me) != Some(&view.incarnation) {
            return Err(format!(
                "{me}'s own incarnation differs in its view: {view:?}"
            ));
        }
        for (of, inc) in &view.incarnations {
            let seen = node.records.entry(of.clone()).or_default();
            if *inc < seen.0 {
                return Err(format!(
                    "{me} shows {of} at incarnation {inc} after {}",
                    seen.0
                ));
            }
            seen.0 = *inc;
        }
        Ok(())
    }

    fn check_read(&mut self, i: usize, read: &ReadOk) -> Result<(), String> {
        let node = &mut self.nodes[i];
        match read {
            ReadOk::Messages { messages: values } | ReadOk::Elements { value: values } => {
                let set: BTreeSet<Element> = values.iter().cloned().collect();
                if set.len() != values.len() {
                    return Err(format!("{} read a value twice: {values:?}", node.id));
                }
                if let Some(unknown) = set.iter().find(|v| !self.possibly_written.contains(v)) {
                    return Err(format!(
                        "{} read {unknown:?}, which no client wrote",
                        node.id
                    ));
                }
                if let Some(before) = &node.last_set
                    && let Some(lost) = before.iter().find(|v| !set.contains(v))
                {
                    return Err(format!("{} read {lost:?}, then lost it", node.id));
                }
                node.last_set = Some(set);
            }
            ReadOk::Counter { value } => {
                if !self.any_negative
                    && let Some(before) = node.last_value
                    && *value < before
                {
                    return Err(format!(
                        "{} read {before}, then {value}, with no negative delta",
                        node.id
                    ));
                }
                node.last_value = Some(*value);
            }
        }
        Ok(())
    }

    /// The network acts on one message in flight: delivers it (`deliver`), or not (a drop);
    /// `take` removes it from flight (else a copy is delivered).
    fn network(&mut self, k: u16, deliver: bool, take: bool) -> Result<(), String> {
        if self.flight.is_empty() {
            return Ok(());
        }
        let k = usize::from(k) % self.flight.len();
        let to = self.flight[k].to;
        if self.nodes[to].paused && self.live(to) {
            return Ok(()); // it waits in the paused node's queue
        }
        let line = if take {
            self.flight.remove(k).line
        } else {
            self.flight[k].line.clone()
        };
        if deliver {
            self.deliver(to, line)
        } else {
            Ok(())
        }
    }

    fn cut_off(&self, a: usize, b: usize) -> bool {
        self.partition
            .is_some_and(|mask| (mask >> a & 1) != (mask >> b & 1))
    }

    /// A message written by a node arrives at node `to` (unless `to` is down, or cut off
    /// from its sender).
    fn deliver(&mut self, to: usize, line: String) -> Result<(), String> {
        if !self.running(to) {
            return Ok(());
        }
        let event = event_of_line(line.as_bytes());
        let Some(Event::Message(env)) = event else {
            return Err(format!("a node's own message does not parse: {line}"));
        };
        let from = self.nodes.iter().position(|n| n.id == env.src);
        if from.is_some_and(|from| self.cut_off(from, to)) {
            return Ok(());
        }
        if self.delivered.len() >= REPLAY_KEEP {
            self.delivered.remove(0);
        }
        self.delivered.push((to, line));
        self.handle(to, Event::Message(env))
    }

    /// Runs the cluster until `end`: messages delivered when due, ticks at their periods.
    fn run_until(&mut self, end: Duration) -> Result<(), String> {
        let start_actions = self.actions;
        loop {
            if self.actions - start_actions > MAX_ACTIONS_PER_RUN {
                return Err("the cluster never goes quiet".into());
            }
            let message = self
                .flight
                .iter()
                .position(|m| !(self.nodes[m.to].paused && self.live(m.to)));
            let message_due = message.map(|k| self.flight[k].due);
            let tick = (0..self.nodes.len())
                .filter(|&i| self.running(i) && self.inited(i))
                .flat_map(|i| (0..2).map(move |t| (i, t)))
                .min_by_key(|&(i, t)| self.nodes[i].due[t]);
            let tick_due = tick.map(|(i, t)| self.nodes[i].due[t]);
            match (message_due, tick_due) {
                (Some(m), t) if m <= end && t.is_none_or(|t| m <= t) => {
                    self.now = self.now.max(m);
                    let Msg { to, line, .. } = self.flight.remove(message.expect("due"));
                    self.deliver(to, line)?;
                }
                (_, Some(t)) if t <= end => {
                    let (i, which) = tick.expect("due");
                    self.now = self.now.max(t);
                    let period = self.periods[which];
                    let next = (t + period).max(self.now);
                    self.nodes[i].due[which] = next;
                    let trigger = [Trigger::Gossip, Trigger::Detect][which];
                    self.handle(i, Event::Trigger(trigger))?;
                }
                _ => break,
            }
        }
        self.now = self.now.max(end);
        Ok(())
    }

    /// The network made whole and quiet: every node up and initialised, then time runs until
    /// every live node holds what it must, or `QUIET_BOUND` passes.
    fn settle(&mut self) -> Result<(), String> {
        self.partition = None;
        for i in 0..self.nodes.len() {
            if self.live(i) {
                self.resume(i);
                if !self.inited(i) {
                    self.init(i)?;
                }
            }
        }
        let start = self.now;
        let bound = QUIET_BOUND + self.stalled * STALL_FACTOR;
        loop {
            self.run_until(self.now + CHECK_EVERY)?;
            let missing = self.missing()?;
            if missing.is_empty() {
                return Ok(());
            }
            if self.now >= start + bound {
                return Err(format!(
                    "after {} s whole and quiet: {}",
                    bound.as_secs(),
                    missing.join("; ")
                ));
            }
        }
    }

    /// Reads every live node; what it lacks, if anything.
    fn missing(&mut self) -> Result<Vec<String>, String> {
        let live: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.live(i)).collect();
        for &i in &live {
            let line = self.request(i, json!({"type": "read"}));
            self.client_line(i, line.to_string().as_bytes())?;
        }
        let mut missing = Vec::new();
        match self.workload {
            Workload::Broadcast | Workload::GSet => {
                let mut must = self.acked_set.clone();
                for &i in &live {
                    must.extend(self.taken[i].iter().cloned());
                }
                let first = self.nodes[live[0]].last_set.clone().unwrap_or_default();
                for &i in &live {
                    let node = &self.nodes[i];
                    let set = node.last_set.clone().unwrap_or_default();
                    let lacks: Vec<_> = must.difference(&set).collect();
                    if !lacks.is_empty() {
                        let acked: Vec<_> = lacks
                            .iter()
                            .filter(|v| self.acked_set.contains(v))
                            .collect();
                        missing.push(format!(
                            "{} lacks {lacks:?} (acknowledged: {acked:?})",
                            node.id
                        ));
                    }
                    if set != first {
                        missing.push(format!(
                            "{} differs from {}",
                            node.id, self.nodes[live[0]].id
                        ));
                    }
                }
            }
            Workload::Counter => {
                let expected = self.counter_values();
                for &i in &live {
                    let node = &self.nodes[i];
                    let value = node.last_value.unwrap_or(0);
                    if !expected.contains(&value) {
                        missing.push(format!(
                            "{} reads {value}, not one of {expected:?} (adds per node, with acks: {:?})",
                            node.id, self.adds
                        ));
                    }
                }
            }
        }
        Ok(missing)
    }

    /// The counter values the cluster may settle on: every add of a live node, and of the
    /// crashed node a prefix of its adds that holds every acknowledged one.
    fn counter_values(&self) -> BTreeSet<i64> {
        let totals = |adds: &[(i64, bool)]| {
            adds.iter().fold([0u64; 2], |[inc, dec], (d, _)| {
                if *d >= 0 {
                    [inc.saturating_add(d.unsigned_abs()), dec]
                } else {
                    [inc, dec.saturating_add(d.unsigned_abs())]
                }
            })
        };
        let value = |t: [u64; 2]| i128::from(t[0]) - i128::from(t[1]);
        let mut base: i128 = 0;
        let mut crashed: Vec<i128> = vec![0];
        for (i, adds) in self.adds.iter().enumerate() {
            if self.live(i) {
                base += value(totals(adds));
            } else {
                let last_acked = adds.iter().rposition(|(_, acked)| *acked);
                let from = last_acked.map_or(0, |k| k + 1);
                crashed = (from..=adds.len())
                    .map(|p| value(totals(&adds[..p])))
                    .collect();
            }
        }
        crashed
            .into_iter()
            .map(|c| (base + c).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
            .collect()
    }
}
