//! This node's links to its peers, and how long each message may wait for its ack. Every
//! message to a peer is built and sent here.

use std::collections::BTreeMap;
use std::time::Duration;

use tracing::debug;

use crate::config::Config;
use crate::crdt::Data;
use crate::gossip::{Kind, Link, Outcome, Rtt};
use crate::wire::{Envelope, Gossip, Payload, Records};

/// Ack timeout before any round trip has been measured.
const INITIAL_RTO: Duration = Duration::from_millis(500);

pub(super) struct Links {
    me: String,
    links: BTreeMap<String, Link>,
    /// Round trips over all peers: the least timeout of every link (see `Timeouts::rto`).
    pooled: Rtt,
    min_rto: Duration,
    ack_delay: Duration,
    /// The longer ticker period: a deadline is noticed, and an ack paid, on a tick.
    tick: Duration,
}

/// How long to wait for acks, fixed for the span of one round of sends (they measure no
/// round trip).
#[derive(Clone, Copy)]
pub(super) struct Timeouts {
    min_rto: Duration,
    pooled: Option<Duration>,
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

    fn ack_timeout(&self, link: &Link, kind: Kind) -> Duration {
        match kind {
            // The peer may hold the ack up to ack_delay, and pays it on a tick.
            Kind::Data if !link.ack_now => self.rto(link) + self.ack_delay + self.tick,
            Kind::Data | Kind::Probe | Kind::Ack => self.rto(link) + self.tick,
        }
    }
}

impl Links {
    pub fn new(me: &str, nodes: &[String], config: &Config) -> Self {
        Links {
            me: me.to_string(),
            links: nodes
                .iter()
                .filter(|n| *n != me)
                .map(|n| {
                    let link = Link::new(n).configure(config.epoch, config.max_values_bytes);
                    (n.clone(), link)
                })
                .collect(),
            pooled: Rtt::default(),
            min_rto: config.min_rto,
            ack_delay: config.ack_delay,
            tick: config.gossip_tick.max(config.detect_tick),
        }
    }

    pub fn contains(&self, peer: &str) -> bool {
        self.links.contains_key(peer)
    }

    pub fn get(&self, peer: &str) -> &Link {
        &self.links[peer]
    }

    pub fn get_mut(&mut self, peer: &str) -> &mut Link {
        self.links.get_mut(peer).expect("a peer")
    }

    /// Every link, in peer order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Link)> {
        self.links.iter().map(|(p, l)| (p.as_str(), l))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Link)> {
        self.links.iter_mut().map(|(p, l)| (p.as_str(), l))
    }

    /// Some round trip has been measured, on any link.
    pub fn measured(&self) -> bool {
        self.pooled.rto(Duration::ZERO).is_some()
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            min_rto: self.min_rto,
            pooled: self.pooled.rto(self.min_rto),
            ack_delay: self.ack_delay,
            tick: self.tick,
        }
    }

    /// Takes in a message from `peer` and what it showed the peer has: its `delta` and
    /// its records.
    pub fn hear(&mut self, peer: &str, g: &Gossip, delta: &Data, now: Duration) -> Outcome {
        let link = self.links.get_mut(peer).expect("a peer");
        let was_child = link.is_child;
        let outcome = link.receive(g, now);
        if link.is_child != was_child {
            debug!(peer, child = link.is_child, "child set changed");
        }
        if let Some(sample) = outcome.sample {
            self.pooled.sample(sample);
        }
        link.has(delta);
        link.has_records(&g.members);
        outcome
    }

    /// Offers `new` data to every peer but `except` (which sent it).
    pub fn offer(&mut self, new: &Data, except: Option<&str>) {
        for (peer, link) in self.iter_mut() {
            if Some(peer) != except {
                link.offer(new);
            }
        }
    }

    /// Records changed: every link that lacks some has something to send.
    pub fn mark_stale(&mut self, records: &Records) {
        for link in self.links.values_mut() {
            // Only where there is news: a record we just received from the parent
            // need not go back to it.
            if link.records_stale(records) {
                link.dirty = true;
            }
        }
    }

    /// Moves every outstanding deadline `by` later.
    pub fn postpone(&mut self, by: Duration) {
        for link in self.links.values_mut() {
            link.postpone(by);
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
        let link = self.links.get_mut(peer).expect("a peer");
        out.push(message(&self.me, link, kind, records, now, timeouts));
    }

    /// Sends to each peer, in peer order, the message `choose` picks for it, if any.
    pub fn send_each(
        &mut self,
        records: &Records,
        now: Duration,
        out: &mut Vec<Envelope>,
        mut choose: impl FnMut(&str, &Link) -> Option<Kind>,
    ) {
        let timeouts = self.timeouts();
        for (peer, link) in self.links.iter_mut() {
            if let Some(kind) = choose(peer, link) {
                out.push(message(&self.me, link, kind, records, now, timeouts));
            }
        }
    }

    /// Pays the acks held for `ack_delay` without a message to ride on.
    pub fn pay_acks(&mut self, records: &Records, now: Duration, out: &mut Vec<Envelope>) {
        let ack_delay = self.ack_delay;
        self.send_each(records, now, out, |_, link| {
            link.ack_owed_since
                .is_some_and(|since| now >= since + ack_delay)
                .then_some(Kind::Ack)
        });
    }
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
        // n0 acknowledges after 100 ms: srtt 100, rttvar 50, so the timeout is
        // 100 + 4·50 = 300 ms (above the 250 ms floor).
        let ack = Gossip {
            ack: 1,
            ..Gossip::default()
        };
        m.handle(gossip("n0", "n2", ack), ms(100));
        m.handle(
            request("n2", 4, Payload::Broadcast { message: 2.into() }),
            ms(200),
        );
        // A data message may wait out the ack delay (400) and a tick (25) on top: it
        // fails at 925, and the first probe follows the strike.
        let out = run(&mut m, 201, 1000);
        assert_eq!(probes_to(&out, "n0").first(), Some(&925), "{out:?}");
    }
}
