//! The state machine: owns all state, does no I/O, reads no clock; time is passed in and
//! randomness comes from a seeded RNG, so whole clusters can be simulated and replayed.
//!
//! Overlay: nodes are ranked in `node_ids` order. A node's parent is the first node of
//! that order it neither suspects nor holds dead; when that is itself, it is a root.
//! Parents always rank before their children, so the overlay is a forest, normally a star
//! around the first node. Values flow up to the parent at once and down to the children in
//! batches every `batch_ms`; every message carries whatever its receiver is not known to
//! have, so loss and partitions only delay delivery. When the failure detector rules a
//! parent out, the next node in the order takes its place.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info, warn};

use crate::config::{Config, Mode};
use crate::crdt::{Crdt, Data, GSet};
use crate::event::{Event, Rejected, Schedule, Trigger};
use crate::gossip::{self, Kind, Link, Rtt};
use crate::membership::{Change, Detector, STRIKES_TO_SUSPECT, Status};
use crate::protocol::{Body, Envelope, ErrorCode, Gossip, Payload, ReadOk};

/// Peer messages kept before `init`; beyond this they are dropped with a log line.
const MAX_EARLY: usize = 100_000;
/// Expected number of nodes probing the suspected and dead peers each probe period.
const PROBERS: f64 = 3.0;
/// How long hearing from a peer answers other nodes' doubts about it.
const DOUBT_RECHECK: Duration = Duration::from_secs(5);
/// The shortest gap between two flushes to the children.
const URGENT_GAP: Duration = Duration::from_millis(50);
/// A detector tick this many periods late (and at least `MIN_STALL`) means this node was
/// stopped or starved of CPU.
const STALLED_TICKS: u32 = 4;
const MIN_STALL: Duration = Duration::from_millis(100);
/// Ack timeout before any round trip has been measured.
const INITIAL_RTO: Duration = Duration::from_millis(500);

pub struct StateMachine {
    config: Config,
    node: Option<Node>,
    /// Node-to-node messages that arrived before `init`.
    early: Vec<Envelope>,
}

/// Everything that exists once `init` has named this node and its peers.
struct Node {
    id: String,
    /// Every node, this one included, in `node_ids` order: the overlay's ranking.
    nodes: Vec<String>,
    rng: ChaCha8Rng,
    mode: Option<Mode>,
    data: Data,
    next_unique: u64,
    /// Gossip starts with the workload (topology or a client request), never before:
    /// right after `init`, peers may not be registered yet (spec 9, pitfall 6).
    /// Since when: peers never heard from by then are probed early.
    active_since: Option<Duration>,
    links: BTreeMap<String, Link>,
    /// Round trips over all peers, for peers not measured yet.
    rtt: Rtt,
    detector: Detector,
    parent: Option<String>,
    /// Failure-detector records changed: send them down without waiting for the batch.
    records_urgent: bool,
    status_changes: u64,
    next_batch_at: Duration,
    next_probe_at: Duration,
    /// When data and records last went down to the children.
    last_flush_at: Duration,
    /// When the detector ticker last ran: a long gap means this node itself was stopped.
    last_detect_at: Option<Duration>,
}

impl StateMachine {
    pub fn new(config: Config) -> Self {
        StateMachine {
            config,
            node: None,
            early: Vec::new(),
        }
    }

    /// The tickers the runtime (or a simulation) must run, with their periods.
    pub fn schedule(&self) -> Schedule {
        vec![
            (Trigger::Gossip, Config::ms(self.config.gossip_tick_ms)),
            (Trigger::Detect, Config::ms(self.config.detect_tick_ms)),
        ]
    }

    /// This node's id, once initialised.
    pub fn id(&self) -> Option<&str> {
        self.node.as_ref().map(|n| n.id.as_str())
    }

    /// How this node currently sees `peer` (`None` before init or for strangers).
    pub fn status(&self, peer: &str) -> Option<Status> {
        let node = self.node.as_ref()?;
        node.links
            .contains_key(peer)
            .then(|| node.detector.status(peer))
    }

    /// Counts the peer status changes so far: observers rescan statuses only when it moves.
    pub fn status_changes(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.status_changes)
    }

    /// This node's parent in the overlay (`None` for a root or before init).
    pub fn parent(&self) -> Option<&str> {
        self.node.as_ref()?.parent.as_deref()
    }

    /// Handles one event at time `now` (time since the node started) and returns the
    /// envelopes to write, in order.
    pub fn handle(&mut self, event: Event, now: Duration) -> Vec<Envelope> {
        let mut out = Vec::new();
        match event {
            Event::Message(env) => self.on_message(env, now, &mut out),
            Event::Trigger(trigger) => {
                if let Some(node) = self.node.as_mut() {
                    match trigger {
                        Trigger::Gossip => node.gossip_round(&self.config, now, &mut out),
                        Trigger::Detect => node.detect(&self.config, now, &mut out),
                    }
                }
            }
            Event::Rejected(rejected) => self.on_rejected(rejected, &mut out),
        }
        out
    }

    fn on_rejected(&self, r: Rejected, out: &mut Vec<Envelope>) {
        warn!(src = ?r.src, msg_id = ?r.msg_id, code = r.code as u32, "rejected input: {}", r.text);
        let from = self.id().map(str::to_string).or(r.dest);
        if let (Some(src), Some(msg_id), Some(from)) = (r.src, r.msg_id, from) {
            out.push(error(&from, &src, Some(msg_id), r.code, r.text));
        }
    }

    fn on_message(&mut self, env: Envelope, now: Duration, out: &mut Vec<Envelope>) {
        debug!(src = %env.src, dest = %env.dest, body = ?env.body, "received");
        if let Payload::Init { node_id, node_ids } = &env.body.payload {
            self.on_init(&env, node_id, node_ids, now, out);
            return;
        }
        let Some(node) = self.node.as_mut() else {
            if matches!(env.body.payload, Payload::Gossip(_)) {
                if self.early.len() < MAX_EARLY {
                    self.early.push(env);
                } else {
                    warn!(src = %env.src, "dropping a peer message: too many before init");
                }
            } else if env.body.msg_id.is_some() {
                let text = "not initialised yet: init comes first".to_string();
                out.push(error(
                    &env.dest,
                    &env.src,
                    env.body.msg_id,
                    ErrorCode::TemporarilyUnavailable,
                    text,
                ));
            } else {
                warn!(src = %env.src, "ignoring a message before init");
            }
            return;
        };
        if env.dest != node.id {
            let text = format!("addressed to {}, but this is {}", env.dest, node.id);
            warn!(src = %env.src, "{text}");
            if env.body.msg_id.is_some() {
                out.push(error(
                    &node.id,
                    &env.src,
                    env.body.msg_id,
                    ErrorCode::MalformedRequest,
                    text,
                ));
            }
            return;
        }
        node.on_message(&self.config, env, now, out);
    }

    fn on_init(
        &mut self,
        env: &Envelope,
        node_id: &str,
        node_ids: &[String],
        now: Duration,
        out: &mut Vec<Envelope>,
    ) {
        if let Some(node) = &self.node {
            if node.id == node_id && node.nodes == node_ids {
                out.push(reply(&node.id, env, Payload::InitOk));
            } else {
                let text = format!("already initialised as {} of {:?}", node.id, node.nodes);
                out.push(error(
                    &node.id,
                    &env.src,
                    env.body.msg_id,
                    ErrorCode::PreconditionFailed,
                    text,
                ));
            }
            return;
        }
        if !node_ids.iter().any(|n| n == node_id) {
            let text = format!("node_id {node_id} is not in node_ids {node_ids:?}");
            out.push(error(
                node_id,
                &env.src,
                env.body.msg_id,
                ErrorCode::MalformedRequest,
                text,
            ));
            return;
        }
        let seed = self
            .config
            .seed
            .unwrap_or_else(|| fnv1a(node_id.as_bytes()));
        info!(node = node_id, nodes = node_ids.len(), seed, "initialised");
        let node = Node::new(&self.config, node_id, node_ids, seed);
        out.push(reply(&node.id, env, Payload::InitOk));
        self.node = Some(node);
        for early in std::mem::take(&mut self.early) {
            self.on_message(early, now, out);
        }
    }
}

impl Node {
    fn new(config: &Config, id: &str, nodes: &[String], seed: u64) -> Self {
        let links = nodes
            .iter()
            .filter(|n| *n != id)
            .map(|n| (n.clone(), Link::default()))
            .collect();
        let mut node = Node {
            id: id.to_string(),
            nodes: nodes.to_vec(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            mode: config.workload,
            data: Data::default(),
            next_unique: 0,
            active_since: None,
            links,
            rtt: Rtt::default(),
            detector: Detector::new(id, nodes),
            parent: None,
            records_urgent: false,
            status_changes: 0,
            next_batch_at: Duration::ZERO,
            next_probe_at: Duration::ZERO,
            last_detect_at: None,
            last_flush_at: Duration::ZERO,
        };
        node.parent = node.choose_parent();
        node
    }

    fn on_message(
        &mut self,
        config: &Config,
        env: Envelope,
        now: Duration,
        out: &mut Vec<Envelope>,
    ) {
        let payload = env.body.payload.clone();
        match payload {
            Payload::Gossip(g) => {
                if self.links.contains_key(&env.src) {
                    self.on_gossip(config, &env.src, g, now, out);
                } else {
                    let text = format!("gossip from {}, which is not a peer", env.src);
                    warn!("{text}");
                    if env.body.msg_id.is_some() {
                        out.push(error(
                            &self.id,
                            &env.src,
                            env.body.msg_id,
                            ErrorCode::MalformedRequest,
                            text,
                        ));
                    }
                }
            }
            Payload::Topology { .. } => {
                self.activate(now);
                out.push(reply(&self.id, &env, Payload::TopologyOk));
            }
            Payload::Echo { echo } => out.push(reply(&self.id, &env, Payload::EchoOk { echo })),
            Payload::Generate => {
                self.next_unique += 1;
                let id = format!("{}-{}", self.id, self.next_unique);
                out.push(reply(&self.id, &env, Payload::GenerateOk { id }));
            }
            Payload::Broadcast { message } => {
                self.mode.get_or_insert(Mode::Broadcast);
                self.write(
                    Data {
                        set: GSet([message].into()),
                        ..Data::default()
                    },
                    config,
                    now,
                    out,
                );
                out.push(reply(&self.id, &env, Payload::BroadcastOk));
            }
            Payload::Add { element, delta } => {
                let mut new = Data::default();
                match (element, delta) {
                    (Some(element), None) => {
                        self.mode.get_or_insert(Mode::GSet);
                        new.set.0.insert(element);
                    }
                    (None, Some(delta)) => {
                        self.mode.get_or_insert(Mode::Counter);
                        let mut counter = self.data.counter.clone();
                        new.counter = counter.add(&self.id, delta);
                    }
                    _ => {
                        let text = "add needs exactly one of element or delta".to_string();
                        out.push(error(
                            &self.id,
                            &env.src,
                            env.body.msg_id,
                            ErrorCode::MalformedRequest,
                            text,
                        ));
                        return;
                    }
                }
                self.write(new, config, now, out);
                out.push(reply(&self.id, &env, Payload::AddOk));
            }
            Payload::Read => {
                self.activate(now);
                let read = match self.mode.unwrap_or(Mode::Broadcast) {
                    Mode::Broadcast => ReadOk::Messages {
                        messages: self.data.set.0.iter().copied().collect(),
                    },
                    Mode::GSet => ReadOk::Elements {
                        value: self.data.set.0.iter().copied().collect(),
                    },
                    Mode::Counter => ReadOk::Counter {
                        value: self.data.counter.value(),
                    },
                };
                out.push(reply(&self.id, &env, Payload::ReadOk(read)));
            }
            Payload::Membership => {
                out.push(reply(
                    &self.id,
                    &env,
                    Payload::MembershipOk(self.detector.view()),
                ));
            }
            Payload::Init { .. } => unreachable!("init is handled before"),
            Payload::InitOk
            | Payload::TopologyOk
            | Payload::EchoOk { .. }
            | Payload::GenerateOk { .. }
            | Payload::BroadcastOk
            | Payload::ReadOk(_)
            | Payload::AddOk
            | Payload::MembershipOk(_)
            | Payload::Error { .. } => {
                // Replies are never answered: that could loop between two nodes.
                debug!(src = %env.src, "ignoring a reply-type message");
            }
        }
    }

    /// Gossip (and so the failure detector) starts with the workload.
    fn activate(&mut self, now: Duration) {
        if self.active_since.is_none() {
            self.active_since = Some(now);
            self.next_batch_at = now;
            self.next_probe_at = now;
            if let Some(parent) = &self.parent {
                // Tell the parent it has a child, even with nothing to send yet.
                let link = self.links.get_mut(parent).expect("parent is a peer");
                link.dirty = true;
                link.ack_now = true;
            }
        }
    }

    /// A client write: merge it, offer it to every peer, and send it up at once.
    fn write(&mut self, delta: Data, config: &Config, now: Duration, out: &mut Vec<Envelope>) {
        self.activate(now);
        let new = self.data.merge(&delta);
        for link in self.links.values_mut() {
            link.offer(&new);
        }
        if let Some(parent) = self.parent.clone()
            && !self.detector.is_dead(&parent)
        {
            self.send(config, &parent, Kind::Data, now, out);
        }
    }

    fn on_gossip(
        &mut self,
        config: &Config,
        peer: &str,
        g: Gossip,
        now: Duration,
        out: &mut Vec<Envelope>,
    ) {
        self.activate(now);
        let link = self.links.get_mut(peer).expect("checked by the caller");
        let was_child = link.is_child;
        let outcome = link.receive(&g, now);
        if link.is_child != was_child {
            debug!(peer, child = link.is_child, "child set changed");
        }
        if let Some(sample) = outcome.sample {
            self.rtt.sample(sample);
        }
        let delta = gossip::data_of(&g);
        link.has(&delta);
        link.has_records(&g.members);
        let version = self.detector.own_record().version;
        let mut changes = Vec::new();
        if outcome.acked > 0 {
            changes.extend(self.detector.success(peer));
        }
        let new = self.data.merge(&delta);
        if !new.is_empty() {
            for (other, link) in self.links.iter_mut() {
                if other != peer {
                    link.offer(&new);
                }
            }
        }
        let (updated, merged) = self.detector.merge(&g.members);
        changes.extend(merged);
        let records_changed = !updated.is_empty() || self.detector.own_record().version != version;
        self.after_changes(changes, records_changed);
        // A probe overtaken by a newer message is still answered at once (the ack owed
        // covers it); a copy of one answered already is not.
        let owed = self.links[peer].ack_owed_since.is_some();
        if g.probe && g.seq > 0 && (!outcome.stale || owed) {
            self.send(config, peer, Kind::Ack, now, out);
        }
    }

    /// Logs status changes, re-chooses the parent, and marks every link for sending when
    /// failure-detector records changed (they reach everyone through the overlay).
    fn after_changes(&mut self, changes: Vec<Change>, records_changed: bool) {
        if records_changed {
            self.records_urgent = true;
            let records = self.detector.records();
            for (peer, link) in self.links.iter_mut() {
                // Only where there is news: a record we just received from the parent
                // need not go back to it.
                if link.records_stale(records, peer) {
                    link.dirty = true;
                }
            }
        }
        for c in changes {
            self.status_changes += 1;
            info!(peer = %c.peer, from = ?c.from, to = ?c.to, voters = ?c.voters, "membership change");
            if c.to == Status::Dead {
                // Old timeouts say nothing useful once it is dead: probes take over.
                self.links
                    .get_mut(&c.peer)
                    .expect("peer")
                    .abandon_in_flight();
            }
        }
        let parent = self.choose_parent();
        if parent != self.parent {
            info!(from = ?self.parent, to = ?parent, "parent changed");
            if let Some(p) = &parent {
                let link = self.links.get_mut(p).expect("parent is a peer");
                link.dirty = true;
                link.ack_now = true;
            }
            self.parent = parent;
        }
    }

    fn choose_parent(&self) -> Option<String> {
        self.nodes
            .iter()
            .find(|n| **n == self.id || (!self.detector.suspects(n) && !self.detector.is_dead(n)))
            .filter(|n| **n != self.id)
            .cloned()
    }

    /// The overlay neighbours data goes to: the parent and live children.
    fn targets(&self) -> Vec<String> {
        let mut targets: Vec<String> = self
            .links
            .iter()
            .filter(|(peer, link)| link.is_child && !self.detector.is_dead(peer))
            .map(|(peer, _)| peer.clone())
            .collect();
        if let Some(parent) = &self.parent
            && !targets.contains(parent)
        {
            targets.push(parent.clone());
        }
        targets
    }

    fn rto(&self, config: &Config, peer: &str) -> Duration {
        let floor = Config::ms(config.min_rto_ms);
        self.links[peer]
            .rtt
            .rto(floor)
            .or_else(|| self.rtt.rto(floor))
            .unwrap_or(INITIAL_RTO)
    }

    fn send(
        &mut self,
        config: &Config,
        peer: &str,
        kind: Kind,
        now: Duration,
        out: &mut Vec<Envelope>,
    ) {
        let tick = Config::ms(config.gossip_tick_ms.max(config.detect_tick_ms));
        let timeout = match kind {
            // The peer may hold the ack up to ack_delay, and pays it on a tick.
            Kind::Data if !self.links[peer].ack_now => {
                self.rto(config, peer) + Config::ms(config.ack_delay_ms) + tick
            }
            Kind::Data | Kind::Probe | Kind::Ack => self.rto(config, peer) + tick,
        };
        let is_parent = self.parent.as_deref() == Some(peer);
        let link = self.links.get_mut(peer).expect("peer");
        let g = link.build(kind, peer, self.detector.records(), is_parent, now, timeout);
        debug!(
            peer,
            ?kind,
            seq = g.seq,
            ack = g.ack,
            values = g.values.len(),
            "send"
        );
        out.push(Envelope {
            src: self.id.clone(),
            dest: peer.to_string(),
            body: Body {
                msg_id: None,
                in_reply_to: None,
                payload: Payload::Gossip(g),
            },
        });
    }

    /// Gossip ticker: data up at once, down in batches, owed acks, heartbeats.
    fn gossip_round(&mut self, config: &Config, now: Duration, out: &mut Vec<Envelope>) {
        let Some(active_since) = self.active_since else {
            return;
        };
        let batch_due = now >= self.next_batch_at;
        if batch_due {
            self.next_batch_at = now + Config::ms(config.batch_ms);
        }
        // News about failures travels at once: detection time is what it is for.
        // (At most every URGENT_GAP: under partitions records can change all the time.)
        let urgent = self.records_urgent && now >= self.last_flush_at + URGENT_GAP;
        let flush_down = batch_due || urgent;
        if flush_down {
            self.records_urgent = false;
            self.last_flush_at = now;
        }
        let heartbeat = Config::ms(config.heartbeat_ms);
        for peer in self.targets() {
            let is_parent = self.parent.as_deref() == Some(peer.as_str());
            let link = &self.links[&peer];
            // Values go up at once; news of records alone waits out URGENT_GAP too.
            let up_now =
                is_parent && (!link.pending.is_empty() || now >= link.last_sent + URGENT_GAP);
            if link.dirty && (up_now || flush_down) {
                self.send(config, &peer, Kind::Data, now, out);
                continue;
            }
            // Parents check on quiet children; children give the parent half as long again
            // before they check themselves, so both rarely do it at once.
            let quiet_for = if is_parent {
                heartbeat * 3 / 2
            } else {
                heartbeat
            };
            let heard = link.last_heard.unwrap_or(Duration::ZERO);
            if !link.has_in_flight() && now.saturating_sub(heard) >= quiet_for {
                self.send(config, &peer, Kind::Probe, now, out);
            }
        }
        if self.parent.is_none() {
            // A root also watches the peers outside its tree, e.g. one that died before
            // it ever joined: no one else would notice.
            let quiet: Vec<String> = self
                .links
                .iter()
                .filter(|(peer, link)| {
                    let (since, limit) = match link.last_heard {
                        Some(heard) => (heard, heartbeat),
                        // Every node announces itself to the root when it starts: one
                        // not heard of by now is probably down. (Once round trips are
                        // measured: the first guess at a timeout is long.)
                        None if self.rtt.rto(Duration::ZERO).is_some() => {
                            (active_since, heartbeat / 4)
                        }
                        None => (active_since, heartbeat),
                    };
                    !link.is_child
                        && !link.has_in_flight()
                        && !self.detector.is_dead(peer)
                        && now.saturating_sub(since) >= limit
                })
                .map(|(peer, _)| peer.clone())
                .collect();
            for peer in quiet {
                self.send(config, &peer, Kind::Probe, now, out);
            }
        }
        let ack_delay = Config::ms(config.ack_delay_ms);
        let owed: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| {
                l.ack_owed_since
                    .is_some_and(|since| now >= since + ack_delay)
            })
            .map(|(p, _)| p.clone())
            .collect();
        for peer in owed {
            self.send(config, &peer, Kind::Ack, now, out);
        }
    }

    /// Detector ticker: expire unacknowledged exchanges (strikes), probe doubted peers at
    /// once, and suspected or dead ones at a low rate.
    fn detect(&mut self, config: &Config, now: Duration, out: &mut Vec<Envelope>) {
        if self.active_since.is_none() {
            return;
        }
        let tick = Config::ms(config.detect_tick_ms);
        let gap = self
            .last_detect_at
            .replace(now)
            .map_or(Duration::ZERO, |last| now.saturating_sub(last));
        if gap > (tick * STALLED_TICKS).max(MIN_STALL) {
            // We were stopped or starved, not our peers: answers that came meanwhile are
            // still unread, so the time we lost is not counted against anyone.
            info!(
                ms = gap.as_millis() as u64,
                "this node stalled; ack deadlines postponed"
            );
            for link in self.links.values_mut() {
                link.postpone(gap - tick);
            }
        }
        let version = self.detector.own_record().version;
        let mut changes = Vec::new();
        let coalesce = Config::ms(config.ack_delay_ms);
        for (peer, link) in self.links.iter_mut() {
            let expired = link.expire(now, coalesce);
            if expired.timed_out > 0
                && (!link.pending.is_empty() || link.records_stale(self.detector.records(), peer))
            {
                link.dirty = true;
            }
            for _ in 0..expired.timed_out {
                debug!(peer, "exchange timed out");
                changes.extend(self.detector.strike(peer));
            }
        }
        let records_changed = self.detector.own_record().version != version;
        self.after_changes(changes, records_changed);
        // A peer we have a strike against, or one someone doubts, is probed with up to
        // three exchanges in flight, spread over one ack timeout: if it is gone, the three
        // strikes come in about one timeout instead of three.
        // Someone else's doubt is checked only if we have not heard from the peer lately:
        // otherwise we know the answer, and under a partition, where some node always
        // doubts it, we would keep asking.
        let d = &self.detector;
        let doubted = d.doubted();
        let to_probe: Vec<String> = self
            .links
            .iter()
            .filter(|(peer, link)| {
                let strikes = d.strikes(peer);
                let heard_lately = link
                    .last_heard
                    .is_some_and(|t| now.saturating_sub(t) < DOUBT_RECHECK);
                let watched = strikes > 0 || (doubted.contains(*peer) && !heard_lately);
                if !watched || d.suspects(peer) || d.is_dead(peer) {
                    return false;
                }
                // Data in flight does not count: its acks may come late and together.
                let spacing = self.rto(config, peer) / STRIKES_TO_SUSPECT;
                let depth = STRIKES_TO_SUSPECT.saturating_sub(strikes).max(1) as usize;
                let (probes, last_probe) = link.probes_in_flight();
                probes < depth && last_probe.is_none_or(|t| now.saturating_sub(t) >= spacing)
            })
            .map(|(peer, _)| peer.clone())
            .collect();
        for peer in to_probe {
            self.send(config, &peer, Kind::Probe, now, out);
        }
        if now >= self.next_probe_at {
            self.next_probe_at = now + Config::ms(config.probe_ms);
            // Across the cluster, about PROBERS probes per period reach the peers ruled
            // out: enough to notice a return within a period, cheap while they are gone.
            let live = self
                .links
                .keys()
                .filter(|p| !self.detector.is_dead(p))
                .count()
                .max(1);
            if !self.rng.random_bool((PROBERS / live as f64).min(1.0)) {
                return;
            }
            let candidates: Vec<&String> = self
                .links
                .iter()
                .filter(|(p, link)| {
                    (self.detector.suspects(p) || self.detector.is_dead(p)) && !link.has_in_flight()
                })
                .map(|(p, _)| p)
                .collect();
            if let Some(peer) = candidates.choose(&mut self.rng).map(|p| p.to_string()) {
                self.send(config, &peer, Kind::Probe, now, out);
            }
        }
    }
}

fn reply(from: &str, request: &Envelope, payload: Payload) -> Envelope {
    Envelope {
        src: from.to_string(),
        dest: request.src.clone(),
        body: Body {
            msg_id: None,
            in_reply_to: request.body.msg_id,
            payload,
        },
    }
}

fn error(
    from: &str,
    to: &str,
    in_reply_to: Option<u64>,
    code: ErrorCode,
    text: String,
) -> Envelope {
    Envelope {
        src: from.to_string(),
        dest: to.to_string(),
        body: Body {
            msg_id: None,
            in_reply_to,
            payload: Payload::Error {
                code: code as u32,
                text: Some(text),
            },
        },
    }
}

/// FNV-1a: a stable hash for deriving a node's seed from its id.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
