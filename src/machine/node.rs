//! Everything that exists once `init` has named this node and its peers: the parts, each
//! owning its state, and the rules that connect them.

use std::time::Duration;

use tracing::{debug, info, warn};

use super::client::{Client, Served};
use super::links::{Links, ProbesSent};
use super::overlay::Overlay;
use super::probing::Probing;
use crate::config::{AckWhen, Config};
use crate::crdt::{Crdt, Data};
use crate::event::Trigger;
use crate::gossip::{self, Kind, Life};
use crate::membership::{Changed, Detector, Status};
use crate::wire::{Envelope, ErrorCode, Gossip, Payload};

pub(super) struct Node {
    pub id: String,
    client: Client,
    links: Links,
    detector: Detector,
    overlay: Overlay,
    probing: Probing,
    ack_when: AckWhen,
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
            client: Client::new(id, config.epoch, config.workload),
            links,
            detector,
            overlay,
            probing: Probing::new(config, seed),
            ack_when: config.ack_when,
            active_since: None,
        }
    }

    /// Every node, this one included, in `node_ids` order.
    pub fn nodes(&self) -> &[String] {
        self.overlay.tree().ranking()
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

    pub fn probes_sent(&self) -> &ProbesSent {
        self.links.probes_sent()
    }

    /// A message addressed to this node.
    pub fn on_message(&mut self, env: &Envelope, now: Duration, out: &mut Vec<Envelope>) {
        self.ran(now);
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
            Some(Served::Write {
                new,
                written,
                reply,
            }) => {
                self.begin(now);
                self.links.offer(&new, None);
                let reply = env.reply(reply);
                let answer_now = self.ack_when == AckWhen::Local
                    || self.links.iter().next().is_none()
                    || self.links.held_elsewhere(&written);
                if answer_now {
                    self.spread(&new, false, now, out);
                    out.push(reply);
                } else {
                    // Answered once a peer acknowledges it (client.rs): asked at once.
                    self.spread(&new, true, now, out);
                    self.client.hold(reply, written, &new, now, out);
                }
            }
        }
    }

    pub fn on_trigger(&mut self, trigger: Trigger, now: Duration, out: &mut Vec<Envelope>) {
        // (Not on the gossip tick: a driver may leave out the quiet ones, `quiet_until`,
        // and the run must not depend on it.)
        if trigger == Trigger::Detect {
            self.ran(now);
        }
        let Some(begun) = self.active_since else {
            return;
        };
        match trigger {
            Trigger::Gossip => {
                self.client.expire(now, out);
                let records = self.detector.records();
                self.overlay
                    .round(now, begun, &mut self.links, &self.detector, out);
                self.links.pay_acks(records, now, out);
            }
            Trigger::Detect => {
                let changed = self
                    .probing
                    .expire(now, &mut self.links, &mut self.detector);
                self.apply(changed, now);
                let preferred = self.overlay.preferred_parents(&self.detector);
                self.probing
                    .probe(now, &mut self.links, &self.detector, &preferred, out);
            }
        }
    }

    /// This node is running at `now`: if it was stopped since it last ran, what it sent
    /// before is not held against its peers (`Probing::forgive_stall`).
    fn ran(&mut self, now: Duration) {
        self.probing
            .forgive_stall(now, &mut self.links, &mut self.detector);
    }

    /// A time before which a gossip tick does nothing (`Overlay::quiet_until`), or `None`
    /// if it may act at any time. (Not the detector's tick: it also watches for stalls.)
    pub fn gossip_quiet_until(&self) -> Option<Duration> {
        let Some(begun) = self.active_since else {
            return Some(Duration::MAX); // nothing happens on a tick until the workload begins
        };
        let overlay = self.overlay.quiet_until(begun, &self.links);
        let soonest = [self.client.expires_at(), self.links.acks_due_at()]
            .into_iter()
            .flatten()
            .fold(overlay, Duration::min);
        Some(soonest)
    }

    /// The transport failed to reach `peer`. The kernel's word is evidence, not proof (a
    /// peer can be up behind a lost route, or down behind an accepting socket), so it only
    /// hurries what the detector already waits for: the oldest exchange in flight to the
    /// peer is due at the next tick, at most once per round-trip timeout. A strike comes
    /// only from an exchange that was in flight, and a new connection clears nothing:
    /// only an ack does.
    pub fn on_unreachable(&mut self, peer: &str, now: Duration) {
        self.ran(now);
        if !self.links.contains(peer) {
            return;
        }
        let gap = self.links.timeouts().rto(self.links.get(peer));
        if self.links.get_mut(peer).hurry_oldest(now, gap) {
            debug!(peer, "unreachable: the oldest exchange in flight fails now");
        }
    }

    /// A new connection with `peer`: the round trips of what went before it are not
    /// measured. Nothing else changes; only an ack is word from the peer.
    pub fn on_connected(&mut self, peer: &str, now: Duration) {
        self.ran(now);
        if self.links.contains(peer) {
            self.links.get_mut(peer).connected(now);
        }
    }

    /// The node is stopping: everything a live peer lacks goes now, not at the next batch.
    pub fn flush(&mut self, now: Duration, out: &mut Vec<Envelope>) {
        if self.active_since.is_none() {
            return;
        }
        let detector = &self.detector;
        self.links.catch_up_all();
        self.links
            .send_each(detector.records(), now, out, |peer, link| {
                (!link.pending.is_empty() && !detector.is_dead(peer)).then_some(Kind::Data)
            });
    }

    /// Gossip (and so the failure detector) starts with the workload.
    fn begin(&mut self, now: Duration) {
        if self.active_since.is_none() {
            self.active_since = Some(now);
            self.overlay.begin(now, &mut self.links);
            self.probing.begin(now);
        }
    }

    /// A client write (offered to every peer already): send what it added up, at once
    /// unless values wait on their way up (`Overlay::waits`: then the overlay sends them
    /// when the wait is over). Its reply may wait for a peer to hold it (`ack_now`): the
    /// parent's ack rides on its next batch down, which goes anyway; the root, which has no
    /// parent, sends it to its first live child and asks for the ack at once.
    fn spread(&mut self, new: &Data, ack_now: bool, now: Duration, out: &mut Vec<Envelope>) {
        let detector = &self.detector;
        let up = self
            .overlay
            .parent()
            .filter(|parent| !detector.is_dead(parent))
            .map(str::to_string);
        let has_parent = up.is_some();
        let waits_up = has_parent && !self.overlay.waits(&self.links).up.is_zero();
        let to = match up {
            Some(parent) => Some(parent),
            None if ack_now && !new.is_empty() => self
                .links
                .iter()
                .find(|(peer, link)| link.is_child && !detector.is_dead(peer))
                .map(|(peer, _)| peer.to_string()),
            None => None,
        };
        if let Some(peer) = to {
            if ack_now && !new.is_empty() && !has_parent {
                self.links.get_mut(&peer).ack_now = true;
            }
            if waits_up {
                return;
            }
            let records = self.detector.records();
            self.links.send(&peer, Kind::Data, records, now, out);
        }
    }

    fn on_gossip(&mut self, peer: &str, g: &Gossip, now: Duration, out: &mut Vec<Envelope>) {
        match self.links.get_mut(peer).life(g.epoch, self.client.data()) {
            Life::Past => {
                debug!(peer, "a message from before the peer restarted: ignored");
                return;
            }
            Life::Restarted => info!(peer, "peer restarted empty: sending it everything again"),
            Life::Current => {}
        }
        self.begin(now);
        let delta = gossip::data_of(g);
        let outcome = self.links.hear(peer, g, &delta, now);
        let arrived = self.probing.arrived_at(now);
        if arrived < now {
            self.links.get_mut(peer).backdate_receipt(arrived);
        }
        let link = self.links.get(peer);
        self.client.release(link, out);
        let mut changed = Changed::default();
        // A late answer is an answer: the exchange failed in time, but the peer is there.
        // (A node deaf for a moment, its deliveries held behind one long latency draw,
        // answered every probe at once, and its late answers had not counted: each of its
        // peers voted, and it was declared dead.)
        if outcome.acked > 0 || outcome.late {
            changed = self.detector.success(peer);
        }
        let new = self.client.merge(&delta);
        if !new.is_empty() {
            self.links.offer(&new, Some(peer));
        }
        changed = changed.and(self.detector.merge(&g.members));
        self.apply(changed, now);
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
    fn apply(&mut self, changed: Changed, now: Duration) {
        if changed.records {
            if changed.urgent {
                self.overlay.records_changed();
            }
            self.links.mark_stale(self.detector.records());
        }
        for c in changed.statuses {
            info!(peer = %c.peer, from = ?c.from, to = ?c.to, voters = ?c.voters, "membership change");
            if c.to == Status::Dead {
                self.links.get_mut(&c.peer).abandon_in_flight();
            }
        }
        let held = self.overlay.parents_held();
        self.overlay.rechoose(&self.detector, &mut self.links);
        for lost in self.overlay.tree().lost_among(held, &self.detector) {
            self.sweep_after(&lost, now);
        }
    }

    /// Our parent `lost` was ruled out: the nodes that may be the next parent, and those
    /// `lost` watched, are probed now (`Probing::sweep`, `Tree::sweep_targets`).
    fn sweep_after(&mut self, lost: &str, now: Duration) {
        let candidates = self.overlay.tree().sweep_targets(lost, &self.detector);
        self.probing.sweep(candidates, &self.detector, now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{begun, ms, probes_to, run, with_a_write};
    use crate::event::Event;
    use crate::membership::Status;

    // `with_a_write("n2", 3, 10)`: n2 of three, with a value just sent up to its parent n0
    // (a probe: the first message to a new parent), due back by about 535 ms.

    #[test]
    fn an_unreachable_peer_fails_the_exchange_in_flight_at_the_next_tick() {
        let mut m = with_a_write("n2", 3, 10);
        m.handle(Event::Unreachable("n0".into()), ms(12));
        // The strike comes at the 25 ms tick instead of 550, and probing starts at once.
        let probes = probes_to(&run(&mut m, 13, 400), "n0");
        assert_eq!(probes.first(), Some(&25), "{probes:?}");
    }

    #[test]
    fn unreachable_is_never_more_than_one_strike_per_timeout() {
        let mut m = with_a_write("n2", 3, 10);
        for t in 12..450 {
            m.handle(Event::Unreachable("n0".into()), ms(t));
            run(&mut m, t, t + 1);
        }
        // Three strikes would make n0 suspected (and with three nodes, dead): one per
        // 500 ms timeout is all the transport may add.
        assert_eq!(m.status("n0"), Some(Status::Alive));
    }

    #[test]
    fn every_peer_a_lost_parent_stood_for_is_probed_at_once() {
        use std::collections::BTreeMap;

        use super::super::testing::gossip;
        use crate::wire::{Gossip, Record};

        let mut m = begun("n3", 5);
        // n1 and n4 suspect n0: with five nodes, two votes are death.
        let suspects_n0 = std::sync::Arc::new(Record {
            version: 1,
            suspects: BTreeMap::from([("n0".to_string(), 0)]),
            ..Record::default()
        });
        let news = Gossip {
            seq: 1,
            members: BTreeMap::from([
                ("n1".into(), suspects_n0.clone()),
                ("n4".into(), suspects_n0),
            ]),
            ..Gossip::default()
        };
        m.handle(gossip("n4", "n3", news), ms(5));
        assert_eq!(m.status("n0"), Some(Status::Dead));
        assert_eq!(m.parent(), Some("n1"));
        // n1 and n2 could both hold the place: neither has answered, and both are probed
        // at once, without waiting for n1 to fail first. n4 ranks after us, but n0 was
        // watching it: probed too, so that we judge it ourselves. No round trip is
        // measured yet: the second probe of each waits for the first to be half an
        // initial timeout overdue, and none answers, so each is probed three deep
        // within one timeout after that.
        let out = run(&mut m, 6, 1_000);
        for peer in ["n1", "n2", "n4"] {
            let probes = probes_to(&out, peer);
            assert_eq!(probes.first(), Some(&25), "{peer}: {out:?}");
            assert!(probes.len() >= 3, "{peer}: {probes:?}");
        }
        // (n1, our parent now, also gets the probe every first message to a new parent is.)
        for peer in ["n2", "n4"] {
            assert!(probes_to(&out, peer)[1] >= 275, "{peer}: {out:?}");
        }
    }

    #[test]
    fn a_late_answer_takes_the_strikes_back() {
        use super::super::testing::gossip;
        use crate::wire::Gossip;

        // n2's write went to its parent n0 as message 1 (a probe: the first message to a
        // parent), due back by about 535 ms. Unanswered, n0 collects its three strikes
        // and, with three nodes, is dead within 2 s.
        let mut silent = with_a_write("n2", 3, 10);
        run(&mut silent, 11, 2_000);
        assert_eq!(silent.status("n0"), Some(Status::Dead));
        // Answered at 600, after its timeout: n0 is there, only slow. Its strike is
        // taken back, and the next ones start from none.
        let mut slow = with_a_write("n2", 3, 10);
        run(&mut slow, 11, 600);
        let late = Gossip {
            ack: 1,
            ..Gossip::default()
        };
        slow.handle(gossip("n0", "n2", late), ms(600));
        run(&mut slow, 600, 2_000);
        assert_eq!(slow.status("n0"), Some(Status::Alive));
    }

    #[test]
    fn transport_hints_with_nothing_in_flight_change_nothing() {
        let mut m = begun("n0", 2);
        let quiet = run(&mut m, 1, 200);
        let mut hinted = begun("n0", 2);
        hinted.handle(Event::Unreachable("n1".into()), ms(1));
        hinted.handle(Event::Unreachable("n9".into()), ms(1));
        hinted.handle(Event::Connected("n1".into()), ms(1));
        hinted.handle(Event::Connected("n9".into()), ms(1));
        assert_eq!(run(&mut hinted, 1, 200), quiet);
        assert_eq!(hinted.status("n1"), Some(Status::Alive));
    }
}
