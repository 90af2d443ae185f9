//! Our messages to one peer that it has not acknowledged yet, and what their acks and
//! timeouts say: the exchanges the failure detector counts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::crdt::Data;

/// Timed-out probes remembered per link, for the round trip of their late acks.
const MAX_EXPIRED: usize = 64;

/// A message of ours the peer has not acknowledged yet.
#[derive(Clone, Debug)]
pub(super) struct InFlight {
    pub seq: u64,
    pub sent_at: Duration,
    deadline: Duration,
    /// Answered at once (a probe), rather than by an ack the peer may hold and share.
    pub probe: bool,
    /// Its ack measures a round trip: not once this node was stopped while it was in
    /// flight (`postpone`), nor if it went before a new connection (`untime`).
    pub timed: bool,
    pub data: Data,
    /// Record versions the message carried: author → version.
    pub members: Vec<(Arc<str>, u64)>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Exchanges {
    /// The sequence number of our last message that asked for an ack.
    pub last_seq: u64,
    in_flight: VecDeque<InFlight>,
    /// When the data message behind the last failed exchange was sent: later ones sent
    /// within the ack-coalescing window failed with it, not on their own.
    failed_data_sent_at: Option<Duration>,
    /// When the transport last made an exchange fail early (`hurry_oldest`).
    hurried_at: Option<Duration>,
    /// The latest probes that timed out: (seq, sent at, deadline). See `late_sample`.
    expired: VecDeque<(u64, Duration, Duration)>,
    /// When a late ack last counted as a round trip: see `late_sample`.
    late_sampled_at: Option<Duration>,
    /// Probes sent by then time no round trip when answered late (`untime`).
    untimed_through: Option<Duration>,
}

impl Exchanges {
    /// The same numbering, nothing in flight: for a peer that restarted.
    pub fn restarted(&self) -> Exchanges {
        Exchanges {
            last_seq: self.last_seq,
            ..Exchanges::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Our probes awaiting the peer's answer: how many, and when the last one went.
    pub fn probes(&self) -> (usize, Option<Duration>) {
        let probes = self.in_flight.iter().filter(|m| m.probe);
        (probes.clone().count(), probes.map(|m| m.sent_at).max())
    }

    /// What each message in flight carries.
    pub fn carried(&self) -> impl Iterator<Item = &Data> {
        self.in_flight.iter().map(|m| &m.data)
    }

    /// A message that asks for an ack goes, due back within `timeout`: its sequence
    /// number.
    pub fn open(
        &mut self,
        now: Duration,
        timeout: Duration,
        probe: bool,
        data: Data,
        members: Vec<(Arc<str>, u64)>,
    ) -> u64 {
        self.last_seq += 1;
        self.in_flight.push_back(InFlight {
            seq: self.last_seq,
            sent_at: now,
            deadline: now + timeout,
            probe,
            timed: true,
            data,
            members,
        });
        self.last_seq
    }

    /// The peer acknowledged message `ack`, and with it every one before (cumulative):
    /// those messages, oldest first, or None if `ack` is not in flight.
    pub fn acknowledge(&mut self, ack: u64) -> Option<Vec<InFlight>> {
        let pos = self.in_flight.iter().position(|m| m.seq == ack)?;
        self.failed_data_sent_at = None;
        Some(self.in_flight.drain(..=pos).collect())
    }

    /// The ack of `ack`, a probe that already timed out, came `now`, held `held` by the
    /// peer: None if `ack` is no such probe, else the round trip it counts for, if any.
    /// Arriving within one more timeout, the timeout may be too short for this link
    /// (latency grew past what it was measured at), and without a sample it could never
    /// grow again. The sample counts as the timeout itself, so timeouts grow step by step:
    /// acks held up by a pause (of the peer or this node) say nothing of the round trip
    /// and must not inflate every timeout at once. One step per timeout: a peer back from
    /// a pause answers every probe it missed at once, and a sample from each would
    /// multiply the timeout with every pause.
    pub fn late_sample(
        &mut self,
        ack: u64,
        held: Duration,
        now: Duration,
    ) -> Option<Option<Duration>> {
        let &(_, sent_at, deadline) = self.expired.iter().find(|(seq, _, _)| *seq == ack)?;
        let timeout = deadline - sent_at;
        let stepped = self.late_sampled_at.is_some_and(|at| now < at + timeout);
        let sample = (now - sent_at).checked_sub(held);
        let timed = self.untimed_through.is_none_or(|through| sent_at > through);
        let sample = sample.filter(|_| now <= deadline + timeout && !stepped && timed);
        if sample.is_some() {
            self.late_sampled_at = Some(now);
        }
        Some(sample.map(|sample| sample.min(timeout)))
    }

    /// Drops messages whose ack is overdue: the failed exchanges. The peer answers probes
    /// at once, one by one, but holds data acks up to `coalesce` and covers every message
    /// since with one reply: data messages sent within that window of a failed one are
    /// the same exchange.
    pub fn expire(&mut self, now: Duration, coalesce: Duration) -> usize {
        if self.in_flight.iter().all(|m| m.deadline > now) {
            return 0;
        }
        // Deadlines differ by kind, so an overdue message may sit behind one still due.
        let (expired, waiting): (VecDeque<InFlight>, VecDeque<InFlight>) =
            std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|m| m.deadline <= now);
        self.in_flight = waiting;
        let mut failed = 0;
        for m in expired {
            // Probes only: they are answered at once, so their timeout is the round trip's
            // (a data message's also allows for the ack the peer may hold).
            if m.probe {
                if self.expired.len() >= MAX_EXPIRED {
                    self.expired.pop_front();
                }
                self.expired.push_back((m.seq, m.sent_at, m.deadline));
                failed += 1;
            } else if self
                .failed_data_sent_at
                .is_none_or(|first| m.sent_at >= first + coalesce)
            {
                self.failed_data_sent_at = Some(m.sent_at);
                failed += 1;
            }
        }
        failed
    }

    /// Makes the oldest exchange in flight due `now`, unless one was hurried less than
    /// `gap` ago. True if one was.
    pub fn hurry_oldest(&mut self, now: Duration, gap: Duration) -> bool {
        if self.hurried_at.is_some_and(|at| now < at + gap) {
            return false;
        }
        let Some(oldest) = self.in_flight.iter_mut().min_by_key(|m| m.sent_at) else {
            return false;
        };
        oldest.deadline = oldest.deadline.min(now);
        self.hurried_at = Some(now);
        true
    }

    /// Moves the deadline of every message sent by `sent_before` `by` later; their acks
    /// are no round trips.
    pub fn postpone(&mut self, by: Duration, sent_before: Duration) {
        for m in (self.in_flight.iter_mut()).filter(|m| m.sent_at <= sent_before) {
            m.deadline += by;
            m.timed = false;
        }
        self.expired
            .retain(|(_, sent_at, _)| *sent_at > sent_before);
    }

    /// The acks of every message sent by `sent_before`, in flight or timed out, time no
    /// round trip; a late one still counts as an answer.
    pub fn untime(&mut self, sent_before: Duration) {
        for m in (self.in_flight.iter_mut()).filter(|m| m.sent_at <= sent_before) {
            m.timed = false;
        }
        self.untimed_through = Some(sent_before);
    }

    pub fn abandon(&mut self) {
        self.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn probe(ex: &mut Exchanges, now: u64, timeout: u64) -> u64 {
        ex.open(ms(now), ms(timeout), true, Data::default(), Vec::new())
    }

    #[test]
    fn a_restarted_peer_keeps_our_numbering_and_nothing_else() {
        let mut ex = Exchanges::default();
        probe(&mut ex, 0, 100);
        probe(&mut ex, 10, 100);
        assert_eq!(ex.expire(ms(105), ms(0)), 1);
        let fresh = ex.restarted();
        assert_eq!(fresh.last_seq, 2);
        assert!(fresh.is_empty());
        assert_eq!(fresh.clone().late_sample(1, ms(0), ms(150)), None);
    }

    #[test]
    fn a_late_ack_counts_once_per_timeout_and_as_the_timeout_at_most() {
        let mut ex = Exchanges::default();
        let first = probe(&mut ex, 0, 100);
        let second = probe(&mut ex, 1, 100);
        assert_eq!(ex.expire(ms(101), ms(0)), 2);
        assert_eq!(ex.late_sample(first, ms(0), ms(150)), Some(Some(ms(100))));
        assert_eq!(
            ex.late_sample(second, ms(0), ms(151)),
            Some(None),
            "one step a timeout"
        );
        assert_eq!(ex.late_sample(99, ms(0), ms(151)), None, "never sent");
        assert!(ex.acknowledge(first).is_none(), "no longer in flight");
    }
}
