//! Per-peer dissemination bookkeeping: what a peer is not known to have, which of our
//! messages it has not acknowledged, which acknowledgements we owe it, and how long its
//! round trips take.
//!
//! Every message carries everything the peer is not known to have (the pending delta), so
//! a later message supersedes a lost earlier one and a cumulative ack of sequence number k
//! proves the peer has what message k carried. Messages are what Maelstrom counts, bytes
//! are not: re-sending a value inside a message that goes anyway is free.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::crdt::{Crdt, Data, GSet, PnCounter};
use crate::wire::{Element, Gossip, Record, Records};

mod exchanges;
mod rtt;

use exchanges::Exchanges;
pub use rtt::Rtt;

/// The default cap on the values one message carries, in bytes of JSON: far below a
/// transport's frame limit (see `cluster/frame.rs`), far above what a batch holds normally.
pub const MAX_VALUES_BYTES: usize = 256 << 10;

/// What an acknowledgement or a timeout meant.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages acknowledged (0 if the ack was stale or a duplicate).
    pub acked: usize,
    /// Failed exchanges: messages that timed out, counting data messages whose acks
    /// would have shared one reply as one.
    pub timed_out: usize,
    /// The round trip the ack measured, net of the time the peer held it.
    pub sample: Option<Duration>,
    /// The message was a duplicate, or overtaken by a newer one: its data still counts,
    /// but it says nothing of the peer's present state.
    pub stale: bool,
    /// The ack of a probe that already timed out: the peer is there, only slow.
    pub late: bool,
}

/// Our side of the exchange with one peer.
#[derive(Clone, Debug)]
pub struct Link {
    peer: String,
    /// We chose this peer as our parent in the overlay: every message to it says so.
    pub parent: bool,
    /// Data the peer is not known to have.
    pub pending: Data,
    /// Counter totals the peer is known to hold (it acknowledged or sent them): `pending`
    /// cannot say, since a counter's pending entry is replaced by each newer total.
    counts_held: PnCounter,
    /// `pending` (or a lost message) has something not yet sent.
    pub dirty: bool,
    /// How much of the node's backlog of offered data `pending` has taken in
    /// (`machine::links`: links outside the overlay catch up only when they are used).
    pub caught_up: usize,
    /// The next data message asks for its ack at once: the first one to a new parent, so
    /// that a parent that is gone is noticed without waiting out the ack delay.
    pub ack_now: bool,
    /// The record version of each author the peer is known to have.
    members_known: BTreeMap<Arc<str>, u64>,
    /// Our messages it has not acknowledged yet.
    exchanges: Exchanges,
    /// Highest sequence number received from the peer, when it arrived, and since when we
    /// owe an ack. The ack names `received`, so the hold it reports runs from
    /// `received_at`: measured from an older message it would shrink the peer's samples.
    received: u64,
    received_at: Duration,
    /// Highest of our sequence numbers the peer has acknowledged.
    ack_heard: u64,
    pub ack_owed_since: Option<Duration>,
    pub last_sent: Duration,
    /// When the last data message went.
    pub data_sent: Duration,
    pub last_heard: Option<Duration>,
    /// When the peer's last data message arrived (from a parent: its last batch down), and
    /// the last two gaps between such arrivals, latest first.
    pub data_heard: Option<Duration>,
    pub data_gaps: [Option<Duration>; 2],
    /// The peer told us we are its parent in the overlay.
    pub is_child: bool,
    pub rtt: Rtt,
    /// Our life, sent on every message (`Config::epoch`), and the peer's latest seen.
    epoch: u64,
    peer_epoch: u64,
    /// At most this many bytes of values go in one message.
    max_values_bytes: usize,
    /// The peer restarted: the record it wrote in its past life goes back to it (until a
    /// message carrying it is acknowledged), so that it carries on above it.
    own_record_owed: bool,
}

/// Which life of the peer a message comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    /// The one we know (or the first we hear of).
    Current,
    /// An earlier one: the message is from before a restart, and means nothing now.
    Past,
    /// A later one: the peer restarted without its state. The link started over.
    Restarted,
}

/// Which kind of message to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Pending data and records; acknowledged at leisure.
    Data,
    /// A probe (or heartbeat): carries records, no data; acknowledged at once.
    Probe(Why),
    /// Only the ack we owe (and records); needs no acknowledgement itself.
    Ack,
}

/// What a probe asks: told in the debug log of each message, and counted by reason
/// (`StateMachine::probes_sent`): in the simulation's figures, and in a cluster member's
/// `stats`, under the names of `Why::name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// An overlay neighbour has been quiet for a heartbeat period.
    Heartbeat,
    /// A peer that should be our child has not said so.
    Ward,
    /// A candidate for the place of the parent we lost.
    Sweep,
    /// Another node doubts the peer.
    Doubt,
    /// We suspected the peer and it refuted: is it back?
    Refuted,
    /// Our suspicion, confirmed by no one, is checked again.
    Unconfirmed,
    /// An exchange of our own with the peer failed.
    Retry,
    /// The low-rate probes of the peers ruled out.
    RuledOut,
    /// A parent we would rather have than the one we have.
    Preferred,
}

impl Why {
    pub const ALL: [Why; 9] = [
        Why::Heartbeat,
        Why::Ward,
        Why::Sweep,
        Why::Doubt,
        Why::Refuted,
        Why::Unconfirmed,
        Why::Retry,
        Why::RuledOut,
        Why::Preferred,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Why::Heartbeat => "heartbeat",
            Why::Ward => "ward",
            Why::Sweep => "sweep",
            Why::Doubt => "doubt",
            Why::Refuted => "refuted",
            Why::Unconfirmed => "unconfirmed",
            Why::Retry => "retry",
            Why::RuledOut => "ruled_out",
            Why::Preferred => "preferred",
        }
    }
}

impl Link {
    pub fn new(peer: &str) -> Self {
        Link {
            peer: peer.to_string(),
            parent: false,
            pending: Data::default(),
            counts_held: PnCounter::default(),
            dirty: false,
            caught_up: 0,
            ack_now: false,
            members_known: BTreeMap::new(),
            exchanges: Exchanges::default(),
            received: 0,
            received_at: Duration::ZERO,
            ack_heard: 0,
            ack_owed_since: None,
            last_sent: Duration::ZERO,
            data_sent: Duration::ZERO,
            last_heard: None,
            data_heard: None,
            data_gaps: [None; 2],
            is_child: false,
            rtt: Rtt::default(),
            epoch: 0,
            peer_epoch: 0,
            max_values_bytes: MAX_VALUES_BYTES,
            own_record_owed: false,
        }
    }

    /// The peer's name.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Marks `new` as data this peer may lack.
    pub fn offer(&mut self, new: &Data) {
        if !new.is_empty() {
            self.pending.absorb(new);
            self.dirty = true;
        }
    }

    /// The peer showed it has `data` (it sent it to us).
    pub fn has(&mut self, data: &Data) {
        self.pending.forget(data);
        if !data.counter.is_empty() {
            self.counts_held.absorb(&data.counter);
        }
    }

    /// The peer is known to hold everything `written` holds. `pending` must be caught up
    /// with the node's backlog (`machine::links`).
    pub fn holds(&self, written: &Data) -> bool {
        written.set.0.iter().all(|v| self.holds_element(v)) && self.holds_counts(&written.counter)
    }

    /// The peer is known to hold this set element.
    pub fn holds_element(&self, v: &Element) -> bool {
        !self.pending.set.0.contains(v)
    }

    /// The peer is known to hold each of these counter totals.
    pub fn holds_counts(&self, counts: &PnCounter) -> bool {
        counts.0.iter().all(|(node, [inc, dec])| {
            self.counts_held
                .0
                .get(node)
                .is_some_and(|held| held[0] >= *inc && held[1] >= *dec)
        })
    }

    /// The peer showed it has these records.
    pub fn has_records(&mut self, records: &Records) {
        for (author, r) in records {
            let known = self.members_known.entry(author.clone()).or_default();
            *known = (*known).max(r.version);
        }
    }

    /// Records the peer is not known to have (never its own: it authors that one).
    fn records_to_send<'a>(
        &'a self,
        records: &'a Records,
    ) -> impl Iterator<Item = (&'a Arc<str>, &'a Arc<Record>)> {
        records.iter().filter(|(author, r)| {
            if ***author == *self.peer {
                return self.own_record_owed;
            }
            r.version > self.members_known.get(&**author).copied().unwrap_or(0)
        })
    }

    /// Some record is newer than what the peer is known to have.
    pub fn records_stale(&self, records: &Records) -> bool {
        self.records_to_send(records).next().is_some()
    }

    /// Some pending data is carried by no message in flight.
    pub fn has_unsent(&self) -> bool {
        let carried = |f: &dyn Fn(&Data) -> bool| self.exchanges.carried().any(f);
        self.pending
            .set
            .0
            .iter()
            .any(|v| !carried(&|d| d.set.0.contains(v)))
            || self.pending.counter.0.iter().any(|(node, mine)| {
                !carried(&|d| {
                    d.counter
                        .0
                        .get(node)
                        .is_some_and(|theirs| theirs[0] >= mine[0] && theirs[1] >= mine[1])
                })
            })
    }

    pub fn has_in_flight(&self) -> bool {
        !self.exchanges.is_empty()
    }

    /// Our probes awaiting the peer's answer: how many, and when the last one went.
    pub fn probes_in_flight(&self) -> (usize, Option<Duration>) {
        self.exchanges.probes()
    }

    /// Builds the next message to this peer, with the `records` it lacks. `timeout` bounds
    /// how long we wait for its ack (for messages that need one).
    pub fn build(
        &mut self,
        kind: Kind,
        records: &Records,
        now: Duration,
        timeout: Duration,
    ) -> Gossip {
        let ack_now = kind == Kind::Data && std::mem::take(&mut self.ack_now);
        let mut g = Gossip {
            epoch: self.epoch,
            parent: self.parent,
            probe: matches!(kind, Kind::Probe(_)) || ack_now,
            members: self
                .records_to_send(records)
                .map(|(a, r)| (a.clone(), r.clone()))
                .collect(),
            ..Gossip::default()
        };
        if self.ack_owed_since.take().is_some() {
            g.ack = self.received;
            g.ack_delay = (now - self.received_at).as_millis() as u64;
        }
        let carried = if kind == Kind::Data {
            self.data_sent = now;
            let chunk = self.next_chunk();
            g.values = chunk.set.0.iter().cloned().collect();
            g.counts = chunk.counter.0.clone();
            chunk
        } else {
            Data::default()
        };
        if kind != Kind::Ack {
            let members = (g.members.iter())
                .map(|(a, r)| (a.clone(), r.version))
                .collect();
            g.seq = (self.exchanges).open(now, timeout, g.probe, carried, members);
        }
        self.last_sent = now;
        g
    }

    /// Takes in a message from the peer: its ack (if any) and its sequence number.
    /// Returns what the ack acknowledged, and whether the message was stale. A stale one
    /// (a duplicate, or one a newer message overtook) neither changes what the peer is to
    /// us (child or not), nor counts as hearing from it, nor needs an ack of its own.
    pub fn receive(&mut self, g: &Gossip, now: Duration) -> Outcome {
        let mut outcome = Outcome {
            stale: if g.seq > 0 {
                g.seq <= self.received
            } else {
                g.ack < self.ack_heard
            },
            ..Outcome::default()
        };
        self.ack_heard = self.ack_heard.max(g.ack);
        if !outcome.stale {
            self.last_heard = Some(now);
            self.is_child = g.parent;
            if g.seq > 0 {
                if !g.probe {
                    self.data_gaps = [
                        self.data_heard.map(|before| now - before),
                        self.data_gaps[0],
                    ];
                    self.data_heard = Some(now);
                }
                self.received = g.seq;
                self.received_at = now;
                self.ack_owed_since.get_or_insert(now);
            }
        }
        if g.ack == 0 {
            return outcome;
        }
        // Cumulative: message `ack` arrived, and it carried everything still pending from
        // the ones before it.
        let held = Duration::from_millis(g.ack_delay);
        if let Some(acked) = self.exchanges.acknowledge(g.ack) {
            if acked
                .iter()
                .any(|m| m.members.iter().any(|(author, _)| **author == *self.peer))
            {
                self.own_record_owed = false;
            }
            let last = acked.last().expect("drained at least one");
            // Held longer than the round trip took: the peer was stopped, and read the
            // message late (`backdate_receipt`); that is no round trip either.
            let sample = (now - last.sent_at).checked_sub(held);
            if let Some(sample) = sample.filter(|_| last.timed) {
                self.rtt.sample(sample);
                outcome.sample = Some(sample);
            }
            self.pending.forget(&last.data);
            if !last.data.counter.is_empty() {
                self.counts_held.absorb(&last.data.counter);
            }
            // A probe carries no data: acknowledging one says nothing of the data messages
            // before it, which may have been lost. What no message still in flight carries
            // must go again.
            if self.has_unsent() {
                self.dirty = true;
            }
            for (author, version) in &last.members {
                let known = self.members_known.entry(author.clone()).or_default();
                *known = (*known).max(*version);
            }
            outcome.acked = acked.len();
        } else if let Some(sample) = self.exchanges.late_sample(g.ack, held, now) {
            // The ack of a probe that timed out: the peer is there, only slow.
            outcome.late = true;
            if let Some(sample) = sample {
                self.rtt.sample(sample);
                outcome.sample = Some(sample);
            }
        }
        outcome
    }

    /// Drops messages whose ack is overdue and counts the failed exchanges. The peer
    /// answers probes at once, one by one, but holds data acks up to `coalesce` and
    /// covers every message since with one reply: data messages sent within that window of
    /// a failed one are the same exchange. What they carried is still pending (data and
    /// records alike), so the caller marks the link dirty when there is something to send.
    pub fn expire(&mut self, now: Duration, coalesce: Duration) -> Outcome {
        Outcome {
            timed_out: self.exchanges.expire(now, coalesce),
            ..Outcome::default()
        }
    }

    /// The message we owe an ack for may have waited, unread, since `arrived`: this node
    /// was stopped (`machine::probing`). The ack's hold runs from then.
    pub fn backdate_receipt(&mut self, arrived: Duration) {
        if self.ack_owed_since.is_some() {
            self.received_at = self.received_at.min(arrived);
        }
    }

    /// Our life and the most bytes of values a message may carry (`Config`).
    pub fn configure(mut self, epoch: u64, max_values_bytes: usize) -> Self {
        self.epoch = epoch;
        self.max_values_bytes = max_values_bytes.max(1);
        self
    }

    /// Sorts out which life of the peer a message with `epoch` comes from. When the peer
    /// restarted, it has nothing: the link starts over owing it `all` we have.
    pub fn life(&mut self, epoch: u64, all: &Data) -> Life {
        if epoch < self.peer_epoch {
            return Life::Past;
        }
        if epoch > self.peer_epoch {
            let known = self.peer_epoch != 0;
            self.peer_epoch = epoch;
            if known {
                self.start_over(all);
                return Life::Restarted;
            }
        }
        Life::Current
    }

    /// Forgets what the peer's previous life had, heard and owed; keeps what says nothing
    /// of its state: our sequence numbers, the round trip, whether it is our parent.
    fn start_over(&mut self, all: &Data) {
        let mut fresh = Link::new(&self.peer).configure(self.epoch, self.max_values_bytes);
        fresh.peer_epoch = self.peer_epoch;
        fresh.parent = self.parent;
        fresh.exchanges = self.exchanges.restarted();
        fresh.rtt = self.rtt;
        fresh.ack_now = true;
        fresh.own_record_owed = true;
        fresh.pending = all.clone();
        fresh.dirty = !all.is_empty();
        // (`all` holds the whole backlog, so catching up later adds nothing new.)
        fresh.caught_up = self.caught_up;
        *self = fresh;
    }

    /// What the next data message carries: everything pending, or, when that is more
    /// than a message may hold, as much as fits of what no message in flight carries yet
    /// (then the link stays dirty: the rest follows in the next messages).
    fn next_chunk(&mut self) -> Data {
        let bytes: usize = self.pending.set.0.iter().map(Element::wire_len).sum();
        if bytes <= self.max_values_bytes {
            self.dirty = false;
            return self.pending.clone();
        }
        let mut unsent = self.pending.clone();
        for carried in self.exchanges.carried() {
            unsent.forget(carried);
        }
        if unsent.set.0.is_empty() {
            unsent.set = self.pending.set.clone();
        }
        let mut chunk = Data {
            counter: self.pending.counter.clone(),
            ..Data::default()
        };
        let mut budget = self.max_values_bytes;
        for value in &unsent.set.0 {
            let len = value.wire_len();
            if len > budget && !chunk.set.0.is_empty() {
                break;
            }
            budget = budget.saturating_sub(len);
            chunk.set.0.insert(value.clone());
        }
        self.dirty = chunk.set.0.len() < unsent.set.0.len();
        chunk
    }

    /// Makes the oldest exchange in flight due `now`, unless one was hurried less than
    /// `gap` ago. True if one was.
    pub fn hurry_oldest(&mut self, now: Duration, gap: Duration) -> bool {
        self.exchanges.hurry_oldest(now, gap)
    }

    /// Moves every outstanding deadline `by` later: this node was not running for that long
    /// (stopped, starved of CPU), so the peer's answers could not be read in time.
    /// Their acks, read late, say nothing of the round trip either: they are not sampled.
    pub fn postpone(&mut self, by: Duration, sent_before: Duration) {
        self.exchanges.postpone(by, sent_before);
    }

    /// The transport has a new connection with the peer, in either direction: what was
    /// sent before waited for it to be set up (a TCP and TLS handshake, through backoff
    /// while the peer started), so its acks time no round trip. Counted, they made a
    /// link's first round trip about one handshake too long, and the smoothing took many
    /// samples to forget it.
    pub fn connected(&mut self, now: Duration) {
        self.exchanges.untime(now);
    }

    /// Forgets every outstanding exchange (the peer was refuted or declared dead: old
    /// timeouts say nothing about its new incarnation).
    pub fn abandon_in_flight(&mut self) {
        self.exchanges.abandon();
    }
}

/// Turns a gossip message's data fields into the CRDT delta they carry.
pub fn data_of(g: &Gossip) -> Data {
    Data {
        set: GSet(g.values.iter().cloned().collect()),
        counter: PnCounter(g.counts.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Element;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn values(v: &[i64]) -> Data {
        Data {
            set: GSet(v.iter().map(|n| Element::Int(*n)).collect()),
            ..Data::default()
        }
    }

    fn ints(v: &[i64]) -> Vec<Element> {
        v.iter().map(|n| Element::Int(*n)).collect()
    }

    #[test]
    fn pending_is_resent_until_acknowledged() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        link.offer(&values(&[1, 2]));
        assert!(link.dirty);
        let m1 = link.build(Kind::Data, &records, ms(0), ms(500));
        assert_eq!((m1.seq, m1.values.clone()), (1, ints(&[1, 2])));
        assert!(!link.dirty);
        link.offer(&values(&[3]));
        let m2 = link.build(Kind::Data, &records, ms(10), ms(500));
        assert_eq!(
            m2.values,
            ints(&[1, 2, 3]),
            "unacknowledged values ride again"
        );
        // The peer acks message 1 only: 3 stays pending.
        let out = link.receive(
            &Gossip {
                ack: 1,
                ..Gossip::default()
            },
            ms(200),
        );
        assert_eq!((out.acked, out.sample), (1, Some(ms(200))));
        assert_eq!(link.pending, values(&[3]));
        // A lost message 2 times out; its values are still pending.
        assert_eq!(link.expire(ms(509), ms(0)).timed_out, 0);
        assert_eq!(link.expire(ms(510), ms(0)).timed_out, 1);
        assert_eq!(link.pending, values(&[3]));
    }

    #[test]
    fn cumulative_ack_covers_earlier_messages() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        link.offer(&values(&[1]));
        link.build(Kind::Data, &records, ms(0), ms(500));
        link.offer(&values(&[2]));
        link.build(Kind::Data, &records, ms(5), ms(500));
        let out = link.receive(
            &Gossip {
                ack: 2,
                ack_delay: 50,
                ..Gossip::default()
            },
            ms(305),
        );
        assert_eq!(out.acked, 2);
        assert!(link.pending.is_empty());
        assert!(!link.has_in_flight());
        assert_eq!(
            link.rtt.rto(ms(1)),
            Some(ms(2 * 250)),
            "rtt net of the held time (a first sample: twice it)"
        );
    }

    #[test]
    fn data_messages_sharing_one_ack_fail_as_one_exchange() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        for at in [0, 200, 400, 600] {
            link.offer(&values(&[at as i64]));
            link.build(Kind::Data, &records, ms(at), ms(500));
        }
        link.build(Kind::Probe(Why::Heartbeat), &records, ms(610), ms(300));
        // Data sent at 0 and 200 would have had one ack (held up to 400 ms); the probe is
        // answered on its own, and overdue before the data message sent just before it;
        // 400 starts a second exchange, 600 belongs to it.
        assert_eq!(link.expire(ms(700), ms(400)).timed_out, 1);
        assert_eq!(link.expire(ms(910), ms(400)).timed_out, 2);
        assert_eq!(link.expire(ms(1100), ms(400)).timed_out, 0);
        assert_eq!(link.expire(ms(1200), ms(400)).timed_out, 0);
        assert!(!link.has_in_flight());
    }

    #[test]
    fn a_late_ack_within_one_more_timeout_raises_the_round_trip_to_the_timeout() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        let first = link.build(Kind::Probe(Why::Heartbeat), &records, ms(0), ms(300));
        assert_eq!(link.expire(ms(300), ms(0)).timed_out, 1);
        // 450 ms after it was sent, within one more timeout: the timeout was too short,
        // and the sample is the timeout (300 ms), one step up.
        let outcome = link.receive(&ack(first.seq), ms(450));
        assert_eq!(outcome.sample, Some(ms(300)));
        assert_eq!(outcome.acked, 0, "no exchange in flight is acknowledged");
        assert!(outcome.late, "but the peer answered");
        let second = link.build(Kind::Probe(Why::Heartbeat), &records, ms(1000), ms(300));
        assert_eq!(link.expire(ms(1300), ms(0)).timed_out, 1);
        // Later than that: the peer (or we) stopped.
        let outcome = link.receive(&ack(second.seq), ms(1700));
        assert_eq!(outcome.sample, None);
    }

    #[test]
    fn an_ack_held_longer_than_its_round_trip_is_no_sample() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        let sent = link.build(Kind::Probe(Why::Heartbeat), &records, ms(0), ms(300));
        // The peer was stopped when it arrived, and says it held it since: 250 ms, in a
        // round trip of 200.
        let held = Gossip {
            ack_delay: 250,
            ..ack(sent.seq)
        };
        let outcome = link.receive(&held, ms(200));
        assert_eq!(outcome.acked, 1, "the exchange succeeded");
        assert_eq!(outcome.sample, None);
        assert_eq!(link.rtt.srtt(), None);
    }

    #[test]
    fn answers_sent_before_this_node_stopped_are_no_samples() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        let sent = link.build(Kind::Probe(Why::Heartbeat), &records, ms(0), ms(300));
        // Stopped from 10 ms to 5 s: the deadline moves, and the ack read on waking says
        // nothing of the round trip.
        link.postpone(ms(4_990), ms(10));
        let outcome = link.receive(&ack(sent.seq), ms(5_000));
        assert_eq!((outcome.acked, outcome.sample), (1, None));
    }

    #[test]
    fn what_was_sent_before_a_new_connection_times_no_round_trip() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        let waited = link.build(Kind::Probe(Why::Heartbeat), &records, ms(0), ms(500));
        // The connection came up at 180 ms (a handshake, say): the probe sat in a queue
        // until then, and its ack says nothing of the round trip.
        link.connected(ms(180));
        let outcome = link.receive(&ack(waited.seq), ms(380));
        assert_eq!((outcome.acked, outcome.sample), (1, None));
        assert_eq!(link.rtt.srtt(), None);
        // What goes after it is measured.
        let next = link.build(Kind::Probe(Why::Heartbeat), &records, ms(400), ms(500));
        let outcome = link.receive(&ack(next.seq), ms(600));
        assert_eq!(outcome.sample, Some(ms(200)));
        // A probe that timed out before the connection came is no late sample either.
        let lost = link.build(Kind::Probe(Why::Heartbeat), &records, ms(1000), ms(300));
        assert_eq!(link.expire(ms(1300), ms(0)).timed_out, 1);
        link.connected(ms(1350));
        let outcome = link.receive(&ack(lost.seq), ms(1400));
        assert_eq!(
            (outcome.sample, outcome.late),
            (None, true),
            "but it is an answer"
        );
    }

    #[test]
    fn late_acks_arriving_together_raise_the_round_trip_once() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        // Three probes to a peer that stopped, each timing out; it comes back and answers
        // them all at once.
        let probes: Vec<u64> = [0, 100, 200]
            .map(|t| {
                link.build(Kind::Probe(Why::Heartbeat), &records, ms(t), ms(300))
                    .seq
            })
            .to_vec();
        assert_eq!(link.expire(ms(500), ms(0)).timed_out, 3);
        let samples: Vec<_> = probes
            .iter()
            .map(|&seq| link.receive(&ack(seq), ms(550)).sample)
            .collect();
        assert_eq!(samples, [Some(ms(300)), None, None]);
        // One timeout later, a late ack counts again: latency that keeps growing still
        // raises the timeout, a step at a time.
        let next = link.build(Kind::Probe(Why::Heartbeat), &records, ms(600), ms(300));
        assert_eq!(link.expire(ms(900), ms(0)).timed_out, 1);
        assert_eq!(link.receive(&ack(next.seq), ms(1000)).sample, Some(ms(300)));
    }

    #[test]
    fn a_new_parent_is_asked_for_its_ack_at_once() {
        let records = BTreeMap::new();
        let mut link = Link::new("n0");
        link.ack_now = true;
        link.parent = true;
        link.offer(&values(&[1]));
        let first = link.build(Kind::Data, &records, ms(0), ms(300));
        assert!(
            first.probe && first.parent && first.values == ints(&[1]),
            "data, answered like a probe"
        );
        link.offer(&values(&[2]));
        let second = link.build(Kind::Data, &records, ms(10), ms(700));
        assert!(!second.probe, "later data is acknowledged at leisure");
        // The first one fails on its own, like a probe: the second is not part of it.
        assert_eq!(link.expire(ms(710), ms(400)).timed_out, 2);
    }

    #[test]
    fn an_acknowledged_probe_does_not_cover_lost_data_before_it() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        link.offer(&values(&[1]));
        link.build(Kind::Data, &records, ms(0), ms(700));
        link.build(Kind::Probe(Why::Heartbeat), &records, ms(10), ms(300));
        assert!(!link.dirty);
        // The data message was lost; the probe's ack covers both sequence numbers.
        let ack = Gossip {
            ack: 2,
            ..Gossip::default()
        };
        assert_eq!(link.receive(&ack, ms(210)).acked, 2);
        assert_eq!(link.pending, values(&[1]), "1 was never acknowledged");
        assert!(link.dirty, "so it goes again");
    }

    #[test]
    fn acks_are_owed_and_then_paid() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        link.receive(
            &Gossip {
                seq: 4,
                ..Gossip::default()
            },
            ms(100),
        );
        assert_eq!(link.ack_owed_since, Some(ms(100)));
        let ack = link.build(Kind::Ack, &records, ms(130), ms(0));
        assert_eq!((ack.seq, ack.ack, ack.ack_delay), (0, 4, 30));
        assert_eq!(link.ack_owed_since, None);
        assert!(!link.has_in_flight(), "a pure ack needs no ack");
    }

    #[test]
    fn the_reported_hold_runs_from_the_message_acknowledged() {
        let records = BTreeMap::new();
        let mut link = Link::new("n1");
        for (seq, at) in [(1, 0), (3, 100), (2, 120)] {
            let g = Gossip {
                seq,
                ..Gossip::default()
            };
            link.receive(&g, ms(at));
        }
        assert_eq!(link.ack_owed_since, Some(ms(0)), "owed since the first one");
        let ack = link.build(Kind::Ack, &records, ms(150), ms(0));
        // Message 3 was held 50 ms; counting from message 1 would say 150 and make the
        // peer's round-trip sample 100 ms too short.
        assert_eq!((ack.ack, ack.ack_delay), (3, 50));
    }

    #[test]
    fn stale_messages_do_not_speak_for_the_peer() {
        let mut link = Link::new("n1");
        let from_child = |seq, ack| Gossip {
            seq,
            ack,
            parent: true,
            ..Gossip::default()
        };
        assert!(!link.receive(&from_child(5, 0), ms(100)).stale);
        assert!(link.is_child);
        let left = Gossip {
            ack: 3,
            ..Gossip::default()
        };
        assert!(
            !link.receive(&left, ms(150)).stale,
            "a pure ack, newest so far"
        );
        assert!(!link.is_child, "it chose another parent");
        link.ack_owed_since = None;
        // Late copies: of message 5, and of an ack-only message older than the last one.
        for (late, at) in [(from_child(5, 0), 900), (from_child(0, 2), 950)] {
            let out = link.receive(&late, ms(at));
            assert!(out.stale, "{late:?}");
        }
        assert!(!link.is_child, "old news");
        assert_eq!(link.last_heard, Some(ms(150)));
        assert_eq!(
            link.ack_owed_since, None,
            "message 5 was acknowledged already"
        );
        assert!(!link.receive(&from_child(6, 3), ms(1000)).stale);
        assert!(link.is_child);
    }

    #[test]
    fn records_are_sent_until_the_peer_has_them() {
        let mut records = Records::new();
        records.insert(
            "n0".into(),
            Arc::new(Record {
                version: 2,
                ..Record::default()
            }),
        );
        records.insert(
            "n1".into(),
            Arc::new(Record {
                version: 1,
                ..Record::default()
            }),
        );
        let mut link = Link::new("n1");
        assert!(link.records_stale(&records));
        let m = link.build(Kind::Probe(Why::Heartbeat), &records, ms(0), ms(100));
        assert_eq!(
            m.members.keys().map(|a| &**a).collect::<Vec<_>>(),
            vec!["n0"],
            "never echo a peer's own record"
        );
        link.receive(
            &Gossip {
                ack: m.seq,
                ..Gossip::default()
            },
            ms(50),
        );
        assert!(!link.records_stale(&records));
    }

    /// A records map with nothing in it, for builds.
    fn no_records() -> Records {
        Records::default()
    }

    fn ack(seq: u64) -> Gossip {
        Gossip {
            ack: seq,
            ..Gossip::default()
        }
    }

    #[test]
    fn values_beyond_the_cap_follow_in_the_next_messages() {
        // Ten integers of 4 bytes each as `wire_len` counts them: three fit in 12 bytes.
        let mut link = Link::new("n1").configure(0, 12);
        link.offer(&values(&(10..20).collect::<Vec<_>>()));
        let mut sent = Vec::new();
        for _ in 0..10 {
            if !link.dirty {
                break;
            }
            let g = link.build(Kind::Data, &no_records(), ms(0), ms(500));
            let bytes: usize = g.values.iter().map(Element::wire_len).sum();
            assert!(bytes <= 12, "{bytes} bytes in one message");
            sent.extend(g.values);
        }
        // Every value went, once, in order, in chunks of three.
        let expected: Vec<Element> = (10..20).map(Element::Int).collect();
        assert_eq!(sent, expected);
        // Acking the last chunk leaves the earlier, unacknowledged ones to go again.
        let last = link.exchanges.last_seq;
        link.receive(&ack(last), ms(10));
        assert!(link.dirty);
        let again = link.build(Kind::Data, &no_records(), ms(20), ms(500));
        assert_eq!(again.values, expected[..3]);
    }

    #[test]
    fn under_the_cap_every_message_carries_everything_pending() {
        let mut link = Link::new("n1");
        link.offer(&values(&[1, 2]));
        let first = link.build(Kind::Data, &no_records(), ms(0), ms(500));
        link.offer(&values(&[3]));
        let second = link.build(Kind::Data, &no_records(), ms(1), ms(500));
        assert_eq!(first.values.len(), 2);
        assert_eq!(
            second.values.len(),
            3,
            "a lost first message is covered by the second"
        );
        assert!(!link.dirty);
    }

    #[test]
    fn a_later_life_of_the_peer_starts_the_link_over() {
        let mut link = Link::new("n1").configure(7, MAX_VALUES_BYTES);
        let all = values(&[1, 2, 3]);
        assert_eq!(link.life(100, &all), Life::Current, "first contact");
        link.receive(
            &Gossip {
                epoch: 100,
                seq: 5,
                ..Gossip::default()
            },
            ms(0),
        );
        link.has(&all);
        assert!(link.pending.is_empty());
        // Same life: nothing changes; an earlier one is a message from before the restart.
        assert_eq!(link.life(100, &all), Life::Current);
        assert_eq!(link.life(99, &all), Life::Past);
        // A later life has nothing: it is owed everything, and its numbering starts over.
        assert_eq!(link.life(200, &all), Life::Restarted);
        assert_eq!(link.pending, all);
        assert!(link.dirty);
        let g = link.build(Kind::Data, &no_records(), ms(1), ms(500));
        assert_eq!(g.epoch, 7);
        assert_eq!(g.ack, 0, "nothing of the new life was received yet");
        let outcome = link.receive(
            &Gossip {
                epoch: 200,
                seq: 1,
                ..Gossip::default()
            },
            ms(2),
        );
        assert!(!outcome.stale, "the new life's first message is news");
    }
}
