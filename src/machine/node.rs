//! Everything that exists once `init` has named this node and its peers: the parts, each
//! owning its state, and the rules that connect them.

use std::time::Duration;

use tracing::{debug, info, warn};

use super::client::{Client, Served};
use super::links::Links;
use super::overlay::Overlay;
use super::probing::Probing;
use crate::config::Config;
use crate::crdt::{Crdt, Data};
use crate::event::Trigger;
use crate::gossip::{self, Kind};
use crate::membership::{Changed, Detector, Status};
use crate::wire::{Envelope, ErrorCode, Gossip, Payload};

pub(super) struct Node {
    pub id: String,
    client: Client,
    links: Links,
    detector: Detector,
    overlay: Overlay,
    probing: Probing,
    /// Gossip starts with the workload (topology or a client request), never before:
    /// right after `init`, peers may not be registered yet
    /// (docs/maelstrom-compatibility.md 9, note 6). Since when: peers never heard from
    /// by then are probed early.
    active_since: Option<Duration>,
}

impl Node {
    pub fn new(config: &Config, id: &str, nodes: &[String], seed: u64) -> Self {
        let detector = Detector::new(id, nodes);
        let mut links = Links::new(id, nodes, config);
        let overlay = Overlay::new(id, nodes, config, &detector, &mut links);
        Node {
            id: id.to_string(),
            client: Client::new(id, config.workload),
            links,
            detector,
            overlay,
            probing: Probing::new(config, seed),
            active_since: None,
        }
    }

    /// Every node, this one included, in `node_ids` order.
    pub fn nodes(&self) -> &[String] {
        self.overlay.ranking()
    }

    pub fn status(&self, peer: &str) -> Option<Status> {
        self.links
            .contains(peer)
            .then(|| self.detector.status(peer))
    }

    pub fn status_changes(&self) -> u64 {
        self.detector.status_changes()
    }

    pub fn parent(&self) -> Option<&str> {
        self.overlay.parent()
    }

    /// A message addressed to this node.
    pub fn on_message(&mut self, env: &Envelope, now: Duration, out: &mut Vec<Envelope>) {
        match &env.body.payload {
            Payload::Gossip(g) if self.links.contains(&env.src) => {
                self.on_gossip(&env.src, g, now, out);
            }
            Payload::Gossip(_) => {
                let text = format!("gossip from {}, which is not a peer", env.src);
                warn!("{text}");
                if env.body.msg_id.is_some() {
                    out.push(env.error(ErrorCode::MalformedRequest, text));
                }
            }
            _ => self.serve(env, now, out),
        }
    }

    /// A client request: its reply, after whatever it sets going.
    fn serve(&mut self, env: &Envelope, now: Duration, out: &mut Vec<Envelope>) {
        match self.client.serve(&env.body.payload, &self.detector) {
            None => debug!(src = %env.src, "ignoring a reply-type message"),
            Some(Served::Reply(reply)) => out.push(env.reply(reply)),
            Some(Served::Begin(reply)) => {
                self.begin(now);
                out.push(env.reply(reply));
            }
            Some(Served::Write { new, reply }) => {
                self.begin(now);
                self.spread(&new, now, out);
                out.push(env.reply(reply));
            }
        }
    }

    pub fn on_trigger(&mut self, trigger: Trigger, now: Duration, out: &mut Vec<Envelope>) {
        let Some(begun) = self.active_since else {
            return;
        };
        match trigger {
            Trigger::Gossip => {
                let records = self.detector.records();
                self.overlay
                    .round(now, begun, &mut self.links, &self.detector, out);
                self.links.pay_acks(records, now, out);
            }
            Trigger::Detect => {
                let changed = self
                    .probing
                    .expire(now, &mut self.links, &mut self.detector);
                self.apply(changed);
                self.probing
                    .probe(now, &mut self.links, &self.detector, out);
            }
        }
    }

    /// Gossip (and so the failure detector) starts with the workload.
    fn begin(&mut self, now: Duration) {
        if self.active_since.is_none() {
            self.active_since = Some(now);
            self.overlay.begin(now, &mut self.links);
            self.probing.begin(now);
        }
    }

    /// A client write: offer what it added to every peer, and send it up at once.
    fn spread(&mut self, new: &Data, now: Duration, out: &mut Vec<Envelope>) {
        self.links.offer(new, None);
        if let Some(parent) = self.overlay.parent()
            && !self.detector.is_dead(parent)
        {
            let records = self.detector.records();
            self.links.send(parent, Kind::Data, records, now, out);
        }
    }

    fn on_gossip(&mut self, peer: &str, g: &Gossip, now: Duration, out: &mut Vec<Envelope>) {
        self.begin(now);
        let delta = gossip::data_of(g);
        let outcome = self.links.hear(peer, g, &delta, now);
        let mut changed = Changed::default();
        if outcome.acked > 0 {
            changed = self.detector.success(peer);
        }
        let new = self.client.merge(&delta);
        if !new.is_empty() {
            self.links.offer(&new, Some(peer));
        }
        changed = changed.and(self.detector.merge(&g.members));
        self.apply(changed);
        // A probe overtaken by a newer message is still answered at once (the ack owed
        // covers it); a copy of one answered already is not.
        let owed = self.links.get(peer).ack_owed_since.is_some();
        if g.probe && g.seq > 0 && (!outcome.stale || owed) {
            let records = self.detector.records();
            self.links.send(peer, Kind::Ack, records, now, out);
        }
    }

    /// Acts on what the detector changed: records reach everyone through the overlay, a
    /// dead peer's old timeouts say nothing (probes take over), and the parent may change.
    fn apply(&mut self, changed: Changed) {
        if changed.records {
            self.overlay.records_changed();
            self.links.mark_stale(self.detector.records());
        }
        for c in changed.statuses {
            info!(peer = %c.peer, from = ?c.from, to = ?c.to, voters = ?c.voters, "membership change");
            if c.to == Status::Dead {
                self.links.get_mut(&c.peer).abandon_in_flight();
            }
        }
        self.overlay.rechoose(&self.detector, &mut self.links);
    }
}
