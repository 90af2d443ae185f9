//! This node's links to its peers, and how long each message may wait for its ack. Every
//! message to a peer is built and sent here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tracing::debug;

use crate::config::Config;
use crate::crdt::Data;
use crate::gossip::{Kind, Link, Outcome, Rtt, Why};
use crate::wire::{Element, Envelope, Gossip, Payload, Records};

/// Ack timeout before any round trip has been measured.
const INITIAL_RTO: Duration = Duration::from_millis(500);

pub(super) struct Links {
    me: String,
    /// The peers in order, one link each; `index` finds a peer's place.
    names: Vec<String>,
    links: Vec<Link>,
    index: BTreeMap<String, usize>,
    /// Where this node falls among its peers in name order: a peer's place among all
    /// nodes (`Detector::place`) is its link's index, plus one from here on.
    me_place: usize,
    /// Small sets that spare each tick a pass over every link (hundreds, in a large
    /// cluster): links that may owe an ack, may have messages in flight, may lead to a
    /// child (each a superset, pruned as it is walked), and the link to the parent.
    owing: BTreeSet<usize>,
    busy: BTreeSet<usize>,
    children: BTreeSet<usize>,
    parent: Option<usize>,
    /// Every delta offered to the peers, in order, with the peer it came from. A link to
    /// an overlay neighbour takes each in at once; the others (most links, in a large
    /// cluster) catch up only when they are used, so that a value costs a node work per
    /// neighbour rather than per peer.
    backlog: Vec<(Data, Option<String>)>,
    /// Round trips over all peers: the least timeout of every link (see `Timeouts::rto`).
    pooled: Rtt,
    min_rto: Duration,
    ack_delay: Duration,
    /// The longer ticker period: a deadline is noticed, and an ack paid, on a tick.
    tick: Duration,
    /// Probes sent so far, by reason (`Why::ALL` order).
    probes_sent: ProbesSent,
}

/// Probes sent, by reason (`Why::ALL` order).
pub type ProbesSent = [u64; Why::ALL.len()];

/// How long to wait for acks, fixed for the span of one round of sends (they measure no
/// round trip).
#[derive(Clone, Copy)]
pub(super) struct Timeouts {
    min_rto: Duration,
    pooled: Option<Duration>,
    pooled_srtt: Option<Duration>,
    ack_delay: Duration,
    tick: Duration,
}

impl Timeouts {
    /// The retransmission timeout of a link: the larger of its own and the pooled one
    /// (or the initial, before any round trip). A link's own estimate follows its last
    /// few samples: after a run of fast ones it falls to the floor, far below the tail of
    /// a spread-out latency (exponential: one round trip in four is longer). The pooled
    /// one, fed by every peer, keeps the spread; with steady latency both are the same.
    pub fn rto(&self, link: &Link) -> Duration {
        let own = link.rtt.rto(self.min_rto);
        match (own, self.pooled) {
            (Some(own), Some(pooled)) => own.max(pooled),
            (a, b) => a.or(b).unwrap_or(INITIAL_RTO),
        }
    }

    /// The round trip an answer from the peer is expected in: its own smoothed one, else
    /// the pooled one, else half the initial timeout.
    pub fn srtt(&self, link: &Link) -> Duration {
        link.rtt
            .srtt()
            .or(self.pooled_srtt)
            .unwrap_or(INITIAL_RTO / 2)
    }

    fn ack_timeout(&self, link: &Link, kind: Kind) -> Duration {
        match kind {
            // The peer may hold the ack up to ack_delay, and pays it on a tick.
            Kind::Data if !link.ack_now => self.rto(link) + self.ack_delay + self.tick,
            Kind::Data | Kind::Probe(_) | Kind::Ack => self.rto(link) + self.tick,
        }
    }
}

impl Links {
    pub fn new(me: &str, nodes: &[String], config: &Config) -> Self {
        let mut peers: Vec<&String> = nodes.iter().filter(|n| *n != me).collect();
        peers.sort();
        peers.dedup();
        Links {
            me: me.to_string(),
            me_place: peers.partition_point(|n| n.as_str() < me),
            names: peers.iter().map(|n| (*n).clone()).collect(),
            links: peers
                .iter()
                .map(|n| Link::new(n).configure(config.epoch, config.max_values_bytes))
                .collect(),
            index: peers
                .iter()
                .enumerate()
                .map(|(i, n)| ((*n).clone(), i))
                .collect(),
            owing: BTreeSet::new(),
            busy: BTreeSet::new(),
            children: BTreeSet::new(),
            parent: None,
            backlog: Vec::new(),
            pooled: Rtt::default(),
            min_rto: config.min_rto,
            ack_delay: config.ack_delay,
            tick: config.gossip_tick.max(config.detect_tick),
            probes_sent: ProbesSent::default(),
        }
    }

    pub fn contains(&self, peer: &str) -> bool {
        self.index.contains_key(peer)
    }

    fn at(&self, peer: &str) -> usize {
        *self.index.get(peer).expect("a peer")
    }

    /// The index of the link to the node at `place` among all nodes, unless it is us.
    fn link_of(&self, place: usize) -> Option<usize> {
        match place.cmp(&self.me_place) {
            std::cmp::Ordering::Less => Some(place),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => Some(place - 1).filter(|&i| i < self.links.len()),
        }
    }

    /// Some peer is at `place` among all nodes (it is not us).
    pub fn contains_place(&self, place: usize) -> bool {
        self.link_of(place).is_some()
    }

    /// The link to the peer at `place` among all nodes.
    pub fn at_place(&self, place: usize) -> &Link {
        &self.links[self.link_of(place).expect("a peer")]
    }

    pub fn get(&self, peer: &str) -> &Link {
        &self.links[self.at(peer)]
    }

    /// The link to `peer`, caught up with the backlog.
    pub fn get_mut(&mut self, peer: &str) -> &mut Link {
        let i = self.at(peer);
        let link = &mut self.links[i];
        catch_up(&self.backlog, link);
        link
    }

    /// Makes `peer` our parent in the overlay (`None`: we are a root).
    pub fn set_parent(&mut self, peer: Option<&str>) {
        if let Some(old) = self.parent.take() {
            self.links[old].parent = false;
        }
        if let Some(peer) = peer {
            let i = self.at(peer);
            catch_up(&self.backlog, &mut self.links[i]);
            self.links[i].parent = true;
            self.parent = Some(i);
        }
    }

    /// Every link, in peer order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Link)> {
        self.names.iter().map(String::as_str).zip(&self.links)
    }

    /// Every link with its peer's place among all nodes (`Detector::place`), in order.
    pub fn iter_places(&self) -> impl Iterator<Item = (usize, &Link)> {
        let me = self.me_place;
        (self.links.iter().enumerate()).map(move |(i, link)| (if i < me { i } else { i + 1 }, link))
    }

    /// Calls `f` on each link that has messages in flight, in peer order (for their
    /// deadlines).
    pub fn for_each_busy(&mut self, mut f: impl FnMut(&str, &mut Link)) {
        let links = &self.links;
        self.busy.retain(|&i| links[i].has_in_flight());
        for &i in &self.busy {
            f(&self.names[i], &mut self.links[i]);
        }
    }

    /// Some peer is known to hold every value of `set`: what its link has pending (with
    /// what the backlog still owes it) lacks them all. (The backlog is read newest first:
    /// a value just written is in its last entry.)
    pub fn held_elsewhere(&self, written: &Data) -> bool {
        let lacks = |link: &Link, v: &Element| {
            link.pending.set.0.contains(v)
                || self.backlog[link.caught_up..]
                    .iter()
                    .rev()
                    .any(|(d, from)| from.as_deref() != Some(link.peer()) && d.set.0.contains(v))
        };
        self.links.iter().any(|link| {
            link.holds_counts(&written.counter) && written.set.0.iter().all(|v| !lacks(link, v))
        })
    }

    /// Brings every link's `pending` up to date (e.g. before sending each what it lacks).
    pub fn catch_up_all(&mut self) {
        for link in &mut self.links {
            catch_up(&self.backlog, link);
        }
    }

    /// The smoothed round trip over all links; `None` before any is measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.pooled.srtt()
    }

    /// Some round trip has been measured, on any link.
    pub fn measured(&self) -> bool {
        self.pooled.rto(Duration::ZERO).is_some()
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            min_rto: self.min_rto,
            pooled: self.pooled.rto(self.min_rto),
            pooled_srtt: self.pooled.srtt(),
            ack_delay: self.ack_delay,
            tick: self.tick,
        }
    }

    /// Takes in a message from `peer` and what it showed the peer has: its `delta` and
    /// its records.
    pub fn hear(&mut self, peer: &str, g: &Gossip, delta: &Data, now: Duration) -> Outcome {
        let i = self.at(peer);
        let link = &mut self.links[i];
        catch_up(&self.backlog, link);
        let was_child = link.is_child;
        let outcome = link.receive(g, now);
        if link.is_child != was_child {
            debug!(peer, child = link.is_child, "child set changed");
        }
        if link.is_child {
            self.children.insert(i);
        }
        if link.ack_owed_since.is_some() {
            self.owing.insert(i);
        }
        if let Some(sample) = outcome.sample {
            self.pooled.sample(sample);
        }
        link.has(delta);
        link.has_records(&g.members);
        outcome
    }

    /// Offers `new` data to every peer but `except` (which sent it): at once to the
    /// overlay neighbours, to the others when they catch up.
    pub fn offer(&mut self, new: &Data, except: Option<&str>) {
        self.backlog.push((new.clone(), except.map(str::to_string)));
        let links = &self.links;
        self.children.retain(|&i| links[i].is_child);
        for &i in self.children.iter().chain(&self.parent) {
            catch_up(&self.backlog, &mut self.links[i]);
        }
    }

    /// Records changed: every link that lacks some has something to send.
    pub fn mark_stale(&mut self, records: &Records) {
        for link in &mut self.links {
            // Only where there is news: a record we just received from the parent
            // need not go back to it.
            if link.records_stale(records) {
                link.dirty = true;
            }
        }
    }

    /// Moves every outstanding deadline `by` later.
    pub fn postpone(&mut self, by: Duration, sent_before: Duration) {
        for link in &mut self.links {
            link.postpone(by, sent_before);
        }
    }

    /// Sends a message of `kind` to `peer`.
    pub fn send(
        &mut self,
        peer: &str,
        kind: Kind,
        records: &Records,
        now: Duration,
        out: &mut Vec<Envelope>,
    ) {
        let timeouts = self.timeouts();
        self.send_at(self.at(peer), kind, records, now, timeouts, out);
    }

    fn send_at(
        &mut self,
        i: usize,
        kind: Kind,
        records: &Records,
        now: Duration,
        timeouts: Timeouts,
        out: &mut Vec<Envelope>,
    ) {
        let link = &mut self.links[i];
        catch_up(&self.backlog, link);
        if kind != Kind::Ack {
            self.busy.insert(i);
        }
        if let Kind::Probe(why) = kind {
            self.probes_sent[why as usize] += 1;
        }
        out.push(message(&self.me, link, kind, records, now, timeouts));
    }

    /// Sends to each peer, in peer order, the message `choose` picks for it, if any.
    /// (`choose` sees a current `pending` for the overlay neighbours only.)
    pub fn send_each(
        &mut self,
        records: &Records,
        now: Duration,
        out: &mut Vec<Envelope>,
        choose: impl FnMut(&str, &Link) -> Option<Kind>,
    ) {
        let all: Vec<usize> = (0..self.links.len()).collect();
        self.send_among(&all, records, now, out, choose);
    }

    /// `send_each` over the peers at `places` among all nodes (in order), which `choose`
    /// is given by place.
    pub fn send_each_at(
        &mut self,
        places: &[usize],
        records: &Records,
        now: Duration,
        out: &mut Vec<Envelope>,
        mut choose: impl FnMut(usize, &Link) -> Option<Kind>,
    ) {
        let timeouts = self.timeouts();
        for &place in places {
            let Some(i) = self.link_of(place) else {
                continue;
            };
            if let Some(kind) = choose(place, &self.links[i]) {
                self.send_at(i, kind, records, now, timeouts, out);
            }
        }
    }

    /// `send_each` over the peers that call us their parent.
    pub fn send_each_child(
        &mut self,
        records: &Records,
        now: Duration,
        out: &mut Vec<Envelope>,
        choose: impl FnMut(&str, &Link) -> Option<Kind>,
    ) {
        let links = &self.links;
        self.children.retain(|&i| links[i].is_child);
        let children: Vec<usize> = self.children.iter().copied().collect();
        self.send_among(&children, records, now, out, choose);
    }

    /// Probes sent so far, by reason.
    pub fn probes_sent(&self) -> &ProbesSent {
        &self.probes_sent
    }

    /// When `pay_acks` next has an ack to pay, if any is owed.
    pub fn acks_due_at(&self) -> Option<Duration> {
        self.owing
            .iter()
            .filter_map(|&i| self.links[i].ack_owed_since)
            .map(|since| since + self.ack_delay)
            .min()
    }

    /// The links that may lead to a child (a superset: `is_child` tells).
    pub fn maybe_children(&self) -> impl Iterator<Item = &Link> {
        self.children.iter().map(|&i| &self.links[i])
    }

    /// Pays the acks held for `ack_delay` without a message to ride on.
    pub fn pay_acks(&mut self, records: &Records, now: Duration, out: &mut Vec<Envelope>) {
        let links = &self.links;
        self.owing.retain(|&i| links[i].ack_owed_since.is_some());
        let owing: Vec<usize> = self.owing.iter().copied().collect();
        let ack_delay = self.ack_delay;
        self.send_among(&owing, records, now, out, |_, link| {
            link.ack_owed_since
                .is_some_and(|since| now >= since + ack_delay)
                .then_some(Kind::Ack)
        });
    }

    /// Sends to each of `peers` (places, in peer order) what `choose` picks for it.
    fn send_among(
        &mut self,
        peers: &[usize],
        records: &Records,
        now: Duration,
        out: &mut Vec<Envelope>,
        mut choose: impl FnMut(&str, &Link) -> Option<Kind>,
    ) {
        let timeouts = self.timeouts();
        for &i in peers {
            if let Some(kind) = choose(&self.names[i], &self.links[i]) {
                self.send_at(i, kind, records, now, timeouts, out);
            }
        }
    }
}

/// Offers `link` what the backlog gained since it last caught up, but what its own peer
/// sent.
fn catch_up(backlog: &[(Data, Option<String>)], link: &mut Link) {
    for (data, from) in &backlog[link.caught_up..] {
        if from.as_deref() != Some(link.peer()) {
            link.offer(data);
        }
    }
    link.caught_up = backlog.len();
}

fn message(
    me: &str,
    link: &mut Link,
    kind: Kind,
    records: &Records,
    now: Duration,
    timeouts: Timeouts,
) -> Envelope {
    let timeout = timeouts.ack_timeout(link, kind);
    let g = link.build(kind, records, now, timeout);
    debug!(
        peer = link.peer(),
        ?kind,
        seq = g.seq,
        ack = g.ack,
        values = g.values.len(),
        "send"
    );
    Envelope::new(me, link.peer(), Payload::Gossip(g))
}

#[cfg(test)]
mod tests {
    use crate::machine::testing::{begun, gossip, ms, probes_to, request, run, sent};
    use crate::wire::{Element, Gossip, Payload};

    fn data(seq: u64, probe: bool) -> Gossip {
        Gossip {
            seq,
            probe,
            values: vec![Element::Int(seq as i64)],
            ..Gossip::default()
        }
    }

    #[test]
    fn a_probe_is_answered_at_once_and_data_after_the_ack_delay() {
        let mut m = begun("n0", 3);
        let out = m.handle(gossip("n1", "n0", data(1, true)), ms(5));
        let acks: Vec<_> = sent(&out).iter().map(|(d, g)| (*d, g.seq, g.ack)).collect();
        assert_eq!(acks, [("n1", 0, 1)]);
        m.handle(gossip("n2", "n0", data(1, false)), ms(5));
        let out = run(&mut m, 6, 420);
        let to_n2: Vec<_> = out
            .iter()
            .filter(|(_, e)| e.dest == "n2")
            .map(|(t, e)| match &e.body.payload {
                Payload::Gossip(g) => (*t, g.seq, g.ack, g.ack_delay),
                other => panic!("{other:?}"),
            })
            .collect();
        // n2 is no child of ours: the ack goes alone, reporting how long it was held.
        assert_eq!(to_n2, [(410, 0, 1, 405)]);
    }

    #[test]
    fn timeouts_follow_the_measured_round_trip() {
        let mut m = begun("n2", 3);
        m.handle(
            request("n2", 3, Payload::Broadcast { message: 1.into() }),
            ms(0),
        );
        // n0 acknowledges after 100 ms: srtt 100, rttvar 25, so the timeout is
        // 100 + 4·25 = 200 ms, raised to the 250 ms floor.
        let ack = Gossip {
            ack: 1,
            ..Gossip::default()
        };
        m.handle(gossip("n0", "n2", ack), ms(100));
        m.handle(
            request("n2", 4, Payload::Broadcast { message: 2.into() }),
            ms(200),
        );
        // A data message may have its ack held up to the ack delay (400), and a tick (25)
        // on top: it fails at 200 + 250 + 400 + 25 = 875, and the first probe follows the
        // strike.
        let out = run(&mut m, 201, 1200);
        assert_eq!(probes_to(&out, "n0").first(), Some(&875), "{out:?}");
    }
}
