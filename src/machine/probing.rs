//! The failure detector's tick: overdue exchanges become strikes (unless this node itself
//! was stopped), peers under doubt are probed at once, and peers ruled out at a low,
//! randomised rate.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info};

use super::links::Links;
use crate::config::Config;
use crate::crdt::Crdt;
use crate::gossip::{Kind, Why};
use crate::membership::{Changed, Detector, STRIKES_TO_SUSPECT};
use crate::wire::Envelope;

/// Expected number of nodes probing the suspected and dead peers each probe period, those
/// that refuted our suspicion first. (A node paused again soon after it came back is
/// judged by the one check of each refuted suspicion, `probe_doubted`, not by these. Twice
/// as many for the refuted kept every node of a majorities-ring partition refuting, each
/// failed probe a vote: docs/failure-detector.md, Rules.)
const PROBERS: f64 = 3.0;
/// How long a question about a peer stays settled: a suspicion no one confirms is checked
/// again after it, a peer heard from within it most likely answers, and what we know of
/// other nodes' doubt of a peer outlives the doubt by this much.
const DOUBT_RECHECK: Duration = Duration::from_secs(5);
/// A detector tick this many periods late (and at least `MIN_STALL`) means this node was
/// stopped or starved of CPU.
const STALLED_TICKS: u32 = 4;
const MIN_STALL: Duration = Duration::from_millis(100);

pub(super) struct Probing {
    /// The node's only randomness: which ruled-out peer to probe, and whether to.
    rng: ChaCha8Rng,
    tick: Duration,
    /// Data messages sent this close after a failed one failed with it.
    coalesce: Duration,
    period: Duration,
    next_probe_at: Duration,
    /// When this node last handled an event: a long gap means it was stopped.
    last_ran_at: Option<Duration>,
    /// The last stall: when this node stopped running, and when it ran again.
    stall: Option<(Duration, Duration)>,
    // Peers below are named by place (`Detector::place`): the tick asks about them often.
    /// Candidates for parent, probed at once after the parent was ruled out, and since
    /// when: see `sweep`.
    sweep: BTreeMap<usize, Duration>,
    /// When we may next probe a parent we would rather have (`Overlay::preferred_parents`),
    /// and which of them, in turn.
    next_recheck_at: Duration,
    recheck_turn: usize,
    /// Peers someone else doubts, and what we know of it: hearing from a peer after the
    /// doubt came answers it for us, until a new doubter comes.
    doubted_since: BTreeMap<usize, Doubt>,
    /// `Detector::records_changes` when `doubted_since` was last brought up to date.
    doubts_seen: u64,
    /// Peers that refuted our suspicion and that we have probed once since, for as long
    /// as we suspect them: see `probe_doubted`.
    rechecked: BTreeSet<usize>,
}

/// Other nodes' doubt of a peer, as this node has answered it.
struct Doubt {
    /// When the question was last opened: hearing from the peer after that answers it.
    since: Duration,
    /// The doubters that answer covers (by `Detector::place`): those seen while it stood,
    /// for as long as they hold their doubt (of any incarnation of the peer).
    known: BTreeSet<usize>,
    /// When the peer stopped being doubted, if it is not now.
    cleared_at: Option<Duration>,
    /// Known doubters renewed their doubt, and this node is one of the few that ask
    /// again: see `Probing::track_doubts`.
    renewed: bool,
}

impl Probing {
    pub fn new(config: &Config, seed: u64) -> Self {
        Probing {
            rng: ChaCha8Rng::seed_from_u64(seed),
            tick: config.detect_tick,
            coalesce: config.ack_delay,
            period: config.probe_period,
            next_probe_at: Duration::ZERO,
            last_ran_at: None,
            stall: None,
            sweep: BTreeMap::new(),
            next_recheck_at: Duration::ZERO,
            recheck_turn: 0,
            doubted_since: BTreeMap::new(),
            doubts_seen: u64::MAX,
            rechecked: BTreeSet::new(),
        }
    }

    /// Our parent was ruled out: the `candidates` for its place (the nodes ranked between
    /// it and us) are all probed at once, three deep, until each answers or is suspected.
    /// When the paused or crashed nodes hold the first places of the ranking, the first
    /// live one is found in one round of probes instead of one gone parent at a time.
    pub fn sweep(
        &mut self,
        candidates: impl IntoIterator<Item = String>,
        detector: &Detector,
        now: Duration,
    ) {
        for peer in candidates {
            if let Some(peer) = detector.place(&peer) {
                self.sweep.entry(peer).or_insert(now);
            }
        }
    }

    /// The workload began: the first low-rate probe is due.
    pub fn begin(&mut self, now: Duration) {
        self.next_probe_at = now;
    }

    /// First half of a tick: exchanges not acknowledged in time are strikes.
    pub fn expire(&mut self, now: Duration, links: &mut Links, detector: &mut Detector) -> Changed {
        let mut changed = Changed::default();
        links.for_each_busy(|peer, link| {
            let expired = link.expire(now, self.coalesce);
            // What the failed messages carried is still pending: it goes again.
            if expired.timed_out > 0
                && (!link.pending.is_empty() || link.records_stale(detector.records()))
            {
                link.dirty = true;
            }
            for _ in 0..expired.timed_out {
                debug!(peer, "exchange timed out");
                changed = std::mem::take(&mut changed).and(detector.strike(peer));
            }
        });
        changed
    }

    /// Called first on every message and detector tick. After a gap of many ticks (the
    /// detector's tick comes all the time), we were stopped or starved, not our peers:
    /// answers that came meanwhile are still unread, so the time we lost is not counted
    /// against anyone, and the strikes from before it are forgotten. On messages too, not
    /// only on the tick: the answers read first after a stop would otherwise be taken for
    /// round trips as long as the stop.
    pub fn forgive_stall(&mut self, now: Duration, links: &mut Links, detector: &mut Detector) {
        let last = self.last_ran_at.replace(now);
        let gap = last.map_or(Duration::ZERO, |last| now.saturating_sub(last));
        if gap > (self.tick * STALLED_TICKS).max(MIN_STALL) {
            info!(
                ms = gap.as_millis() as u64,
                "this node stalled; ack deadlines postponed"
            );
            // Only what was in flight when the stall began: what went out after it, once
            // awake, was sent with a fresh deadline. (A gossip tick, which is not watched
            // here, may have sent something up to a tick after the last event we saw.)
            let stopped = last.unwrap_or_default();
            links.postpone(gap - self.tick, stopped + self.tick);
            detector.forgive_strikes();
            self.stall = Some((stopped, now));
        }
    }

    /// When a message read at `now` may have come: while this node was stopped, if it is
    /// read within a tick of waking (what waited, unread, is read first). The ack then
    /// says it was held since the stop, and the peer does not take the stop for a round
    /// trip (`gossip::Link::receive`): answers from a node back from a pause would
    /// otherwise raise every timeout of every node it answers.
    pub fn arrived_at(&self, now: Duration) -> Duration {
        match self.stall {
            Some((stopped, woke)) if now <= woke + self.tick => stopped,
            _ => now,
        }
    }

    /// Second half of a tick (after the strikes took effect): probes. `preferred` are the
    /// parents we would rather have, ruled out by suspicions the cluster does not share
    /// (`Overlay::preferred_parents`): one of them, in turn, is probed once a probe period,
    /// so that we go back to the first that answers soon after a partition heals. (Once an
    /// ack timeout, the isolated node of a partition is seen alive again about 0.4 s sooner
    /// after the heal, for about 0.1 more messages per op under partitions: `simulate
    /// --nemesis partition`.)
    pub fn probe(
        &mut self,
        now: Duration,
        links: &mut Links,
        detector: &Detector,
        preferred: &[usize],
        out: &mut Vec<Envelope>,
    ) {
        if !preferred.is_empty() && now >= self.next_recheck_at {
            self.next_recheck_at = now + self.period;
            let peer = preferred[self.recheck_turn % preferred.len()];
            self.recheck_turn = self.recheck_turn.wrapping_add(1);
            links.send_each_at(&[peer], detector.records(), now, out, |_, link| {
                (!link.has_in_flight()).then_some(Kind::Probe(Why::Preferred))
            });
        }
        self.sweep.retain(|&peer, since| {
            let answered = links.at_place(peer).last_heard.is_some_and(|t| t > *since);
            !answered && !detector.suspects_at(peer) && !detector.is_dead_at(peer)
        });
        self.track_doubts(now, links, detector);
        self.rechecked.retain(|&peer| detector.suspects_at(peer));
        let asked = Asked {
            sweep: &self.sweep,
            doubted_since: &self.doubted_since,
            rechecked: &mut self.rechecked,
        };
        probe_doubted(now, links, detector, asked, out);
        if now >= self.next_probe_at {
            self.next_probe_at = now + self.period;
            self.probe_ruled_out(now, links, detector, out);
        }
    }

    /// Brings `doubted_since` up to date with the records: which doubts are news to us.
    fn track_doubts(&mut self, now: Duration, links: &Links, detector: &Detector) {
        // A peer that refutes a doubt leaves `doubted` until the doubters strike it again:
        // what we know of their doubt outlives a short gap.
        self.doubted_since.retain(|&peer, doubt| {
            if !detector.doubters_at(peer).is_empty() {
                return true;
            }
            let cleared_at = *doubt.cleared_at.get_or_insert(now);
            now.saturating_sub(cleared_at) < DOUBT_RECHECK
        });
        if detector.records_changes() == self.doubts_seen {
            return;
        }
        self.doubts_seen = detector.records_changes();
        // A doubter that took its doubt back (it heard from the peer) is forgotten: its
        // next doubt is news.
        for (&peer, doubt) in &mut self.doubted_since {
            doubt
                .known
                .retain(|&author| detector.still_doubts(author, peer));
        }
        let timeouts = links.timeouts();
        for peer in detector.doubted_places() {
            let doubt = self.doubted_since.entry(peer).or_insert_with(|| Doubt {
                since: now,
                known: BTreeSet::new(),
                cleared_at: None,
                renewed: false,
            });
            // A new doubter is new evidence (the peer may have stopped since we last
            // heard from it): the question is open again. One we knew, whose doubt we
            // answered, is not, when it renews its doubt against the peer's next
            // incarnation without having taken it back: under a partition the nodes cut
            // off from a peer vote, it refutes, they vote again, and each round had every
            // node that reaches it probing it again. A new doubter waits while we heard
            // from the peer within one ack timeout: that answer is as fresh as the
            // doubt's evidence (under a partition that does not split the cluster in two,
            // doubters of a peer come one by one). It is news once the answer is older:
            // dropped instead, a node that sent a last few messages as it stopped was
            // judged by no one (a paused member of a 5-node TCP cluster).
            let new: Vec<usize> = detector
                .doubters_at(peer)
                .iter()
                .copied()
                .filter(|author| !doubt.known.contains(author))
                .collect();
            // Doubts renewed by known doubters after the peer refuted them: most likely
            // the same cut as before, but perhaps a new one (a partition healed and
            // another began): a few nodes across the cluster ask again (as many as probe
            // the ruled out, `probe_ruled_out`), and if it is gone their doubts are news to
            // everyone.
            if doubt.cleared_at.take().is_some() && new.is_empty() {
                let share = PROBERS / live_peers(links, detector) as f64;
                doubt.renewed = self.rng.random_bool(share.min(1.0));
            }
            if (new.is_empty() && !doubt.renewed) || !links.contains_place(peer) {
                continue;
            }
            let link = links.at_place(peer);
            if link
                .last_heard
                .is_some_and(|t| now.saturating_sub(t) < timeouts.rto(link))
            {
                // Not yet news: looked at again on the next tick, until the answer is no
                // fresher than the doubt.
                self.doubts_seen = u64::MAX;
                continue;
            }
            doubt.since = now;
            doubt.renewed = false;
            doubt.known.extend(new);
        }
    }

    /// Across the cluster, about PROBERS probes per period reach the peers ruled out:
    /// enough to notice a return within a period, cheap while they are gone.
    fn probe_ruled_out(
        &mut self,
        now: Duration,
        links: &mut Links,
        d: &Detector,
        out: &mut Vec<Envelope>,
    ) {
        let candidates = ruled_out(links, d);
        if !self
            .rng
            .random_bool((PROBERS / live_peers(links, d) as f64).min(1.0))
        {
            return;
        }
        if let Some(&peer) = candidates.choose(&mut self.rng) {
            links.send_each_at(&[peer], d.records(), now, out, |_, _| {
                Some(Kind::Probe(Why::RuledOut))
            });
        }
    }
}

/// How many peers are not dead (at least one): a share of the cluster's probes is a
/// chance per node of one in this many.
fn live_peers(links: &Links, d: &Detector) -> usize {
    (links.iter_places())
        .filter(|&(p, _)| !d.is_dead_at(p))
        .count()
        .max(1)
}

/// The peers the low-rate probes go to: those we suspect and the dead, with nothing in
/// flight to them. Peers that refuted our suspicion and are not dead go first: we do not
/// know whether they are back (our one check of the refutation may have failed while they
/// were still away, and they refuted again), while the dead are known gone. A node falsely
/// suspected, then paused again while most of its voters held such a suspicion, was
/// otherwise not declared dead within the pause: the few low-rate probes went mostly to
/// the dead.
fn ruled_out(links: &Links, d: &Detector) -> Vec<usize> {
    let ruled_out: Vec<usize> = (links.iter_places())
        .filter(|&(p, link)| d.ruled_out_at(p) && !link.has_in_flight())
        .map(|(p, _)| p)
        .collect();
    let unsure: Vec<usize> = (ruled_out.iter().copied())
        .filter(|&p| !d.suspicion_stands_at(p) && !d.is_dead_at(p))
        .collect();
    match unsure.is_empty() {
        true => ruled_out,
        false => unsure,
    }
}

/// What prompts probes beyond our own strikes (`Probing`'s fields of the same names).
struct Asked<'a> {
    sweep: &'a BTreeMap<usize, Duration>,
    doubted_since: &'a BTreeMap<usize, Doubt>,
    rechecked: &'a mut BTreeSet<usize>,
}

/// A peer we have a strike against, one someone doubts, or a candidate for parent being
/// swept, is probed with up to three exchanges in flight, sent within one ack timeout: if
/// it is gone, the three strikes come in about one timeout instead of three. Someone
/// else's doubt is checked unless we heard from the peer since it was news to us
/// (`Probing::track_doubts`): otherwise we know the answer, and under a partition, where
/// some node always doubts it, we would keep asking.
fn probe_doubted(
    now: Duration,
    links: &mut Links,
    d: &Detector,
    asked: Asked,
    out: &mut Vec<Envelope>,
) {
    let Asked {
        sweep,
        doubted_since,
        rechecked,
    } = asked;
    let timeouts = links.timeouts();
    // Only these can be watched: a pass over every link each tick costs more.
    let mut candidates: Vec<usize> = d.doubted_places().collect();
    candidates.extend(d.struck_places());
    candidates.extend(sweep.keys());
    candidates.sort_unstable();
    candidates.dedup();
    links.send_each_at(&candidates, d.records(), now, out, |peer, link| {
        let strikes = d.strikes_at(peer);
        // Heard from since the doubt reached us (or a new doubter came): we know the
        // answer. (A first doubt is checked even right after we last heard from the peer;
        // a new doubter of a doubt we know waits: `Probing::track_doubts`.)
        let doubt_open = !d.doubters_at(peer).is_empty()
            && doubted_since
                .get(&peer)
                .is_some_and(|doubt| link.last_heard.is_none_or(|t| t < doubt.since));
        let prompted = doubt_open || sweep.contains_key(&peer);
        if !(strikes > 0 || prompted) || d.is_dead_at(peer) {
            return None; // (under a partition, most peers on most ticks)
        }
        let mut refuted = false;
        let why = if d.suspects_at(peer) {
            // Our own suspicion settles it, unless the peer refuted it since: then one
            // probe checks whether it is back (see `Detector::suspicion_stands`). Once per
            // suspicion: under a partition a peer refutes again and again, and a check at
            // each refutation had everyone who cannot reach it voting again, and it
            // refuting again.
            refuted = !d.suspicion_stands_at(peer) && !rechecked.contains(&peer);
            // A suspicion no one else confirms is checked again every DOUBT_RECHECK: with
            // no one confirming it, most likely it was a moment's loss (or a partition that
            // has healed), and the peer answers. Left alone, it stood for good, and the
            // doubt it gossips with it: after a majorities-ring partition healed, 8 such
            // doubts kept the cluster probing their peers (`simulate --nemesis partition
            // --seed 1`).
            let unconfirmed = d.awaits_confirmation_at(peer)
                && now.saturating_sub(link.last_sent) >= DOUBT_RECHECK;
            match (refuted, unconfirmed) {
                (true, _) => Why::Refuted,
                (false, true) => Why::Unconfirmed,
                (false, false) => return None,
            }
        } else if sweep.contains_key(&peer) {
            Why::Sweep
        } else if doubt_open {
            Why::Doubt
        } else {
            Why::Retry
        };
        // Data in flight does not count: its acks may come late and together.
        // After our own first strike, probes go a third of a timeout apart (a late ack is
        // often one of several to a busy peer); when others doubt the peer or it is a
        // candidate for parent, a twelfth apart: the evidence is confirmation, needed fast. (A
        // sixth apart, pauses under exponential latency took 3.03 s to detect at the
        // median over 1000 seeds, against 2.96 s: docs/failure-detector.md.)
        let spread = if prompted {
            4 * STRIKES_TO_SUSPECT
        } else {
            STRIKES_TO_SUSPECT
        };
        let mut spacing = timeouts.rto(link) / spread;
        let heard_lately = link
            .last_heard
            .is_some_and(|t| now.saturating_sub(t) < DOUBT_RECHECK);
        if strikes == 0 && (!doubt_open || heard_lately) {
            // A candidate for parent no one doubts, or a peer that answered us lately: the
            // next probe only once the first is overdue by a round trip (most answer).
            spacing = spacing.max(timeouts.srtt(link));
        }
        let depth = STRIKES_TO_SUSPECT.saturating_sub(strikes).max(1) as usize;
        let (probes, last_probe) = link.probes_in_flight();
        let go = probes < depth && last_probe.is_none_or(|t| now.saturating_sub(t) >= spacing);
        if go && refuted {
            rechecked.insert(peer);
        }
        go.then_some(Kind::Probe(why))
    });
}

#[cfg(test)]
mod tests {
    use crate::event::{Event, Trigger};
    use crate::machine::testing::{begun, ms, probes_to, run, with_a_write};
    use crate::membership::Status;
    use crate::wire::Payload;

    // `with_a_write("n2", 3, 10)`: n2 of three, whose first write (at 10 ms) goes to its
    // parent n0, which never answers.

    /// A probe from n0 to n1 with sequence number `seq`, and n1's ack: the hold it reports.
    fn held_reported(m: &mut crate::machine::StateMachine, seq: u64, at: u64) -> u64 {
        use crate::machine::testing::{gossip, sent};
        use crate::wire::Gossip;

        let probe = Gossip {
            epoch: 1,
            seq,
            probe: true,
            ..Gossip::default()
        };
        let out = m.handle(gossip("n0", "n1", probe), ms(at));
        let acks: Vec<u64> = sent(&out)
            .iter()
            .filter(|(dest, g)| *dest == "n0" && g.ack == seq)
            .map(|(_, g)| g.ack_delay)
            .collect();
        assert_eq!(acks.len(), 1, "one ack: {out:?}");
        acks[0]
    }

    #[test]
    fn a_node_back_from_a_stop_reports_what_it_read_first_as_held_since_the_stop() {
        let mut m = begun("n1", 3);
        run(&mut m, 0, 1_000);
        // Stopped from 975 ms (its last tick) to 5 000: what it reads first was waiting,
        // unread, for as long as that, and its ack says so (the sender then takes no
        // round trip from it: `gossip::Link::receive`).
        assert!(held_reported(&mut m, 1, 5_000) >= 4_000);
        // Read a tick after waking, a message is new: answered at once.
        run(&mut m, 5_000, 5_100);
        assert_eq!(held_reported(&mut m, 2, 5_100), 0);
    }

    #[test]
    fn a_peer_with_a_strike_is_probed_until_it_is_suspected() {
        let mut m = with_a_write("n2", 3, 10);
        let out = run(&mut m, 11, 3000);
        // The write was a probe (the first message to a parent), due back within the
        // initial 500 ms timeout plus a tick: its strike at 550 starts probing, two deep,
        // a third of a timeout apart; the third strike makes n0 suspected: with three
        // nodes, dead.
        let probes = probes_to(&out, "n0");
        assert_eq!(probes[..2], [550, 725], "{probes:?}");
        assert_eq!(m.status("n0"), Some(Status::Dead));
    }

    #[test]
    fn time_this_node_was_stopped_is_not_held_against_its_peers() {
        let mut m = with_a_write("n2", 3, 10);
        m.handle(Event::Trigger(Trigger::Detect), ms(25));
        // Stopped for 5 s: the exchange due at 535 is not a strike yet (no probe follows)...
        let out = m.handle(Event::Trigger(Trigger::Detect), ms(5_025));
        assert!(out.is_empty(), "{out:?}");
        // ... its deadline moved by the time lost less one tick, to 5 510: the strike comes
        // on the next detector tick.
        let probes = probes_to(&run(&mut m, 5_026, 5_600), "n0");
        assert_eq!(probes[0], 5_525, "{probes:?}");
    }

    /// n0 of five (a root: no parent to lose and sweep after) learns at 700 ms that n1
    /// doubts n3, probes n3, and hears back at 800;
    /// then learns at `second_at` that n4 doubts n3 too: the probes to n3 after that.
    fn probes_after_a_second_doubt(second_at: u64) -> Vec<u64> {
        use std::collections::BTreeMap;
        use std::sync::Arc;

        use crate::machine::testing::gossip;
        use crate::wire::{Gossip, Record};

        let doubt = |author: &str| Gossip {
            seq: 1,
            members: BTreeMap::from([(
                author.into(),
                Arc::new(Record {
                    version: 1,
                    doubts: BTreeMap::from([("n3".to_string(), 0)]),
                    ..Record::default()
                }),
            )]),
            ..Gossip::default()
        };
        let mut m = begun("n0", 5);
        let hello = Gossip {
            seq: 1,
            ..Gossip::default()
        };
        m.handle(gossip("n3", "n0", hello), ms(100));
        run(&mut m, 101, 700);
        m.handle(gossip("n1", "n0", doubt("n1")), ms(700));
        let out = run(&mut m, 700, 800);
        let probes = probes_to(&out, "n3");
        assert!(!probes.is_empty(), "a first doubt is checked");
        let highest = out
            .iter()
            .filter_map(|(_, e)| match &e.body.payload {
                Payload::Gossip(g) if e.dest == "n3" => Some(g.seq),
                _ => None,
            })
            .max()
            .unwrap();
        let answer = Gossip {
            seq: 2,
            ack: highest,
            ..Gossip::default()
        };
        m.handle(gossip("n3", "n0", answer), ms(800));
        let between = run(&mut m, 801, second_at);
        assert!(probes_to(&between, "n3").is_empty(), "answered");
        m.handle(gossip("n4", "n0", doubt("n4")), ms(second_at));
        probes_to(&run(&mut m, second_at, second_at + 400), "n3")
    }

    #[test]
    fn a_new_doubter_reopens_the_question_once_the_answer_is_not_fresh() {
        // Heard from n3 50 ms before: within an ack timeout (at least --min-rto-ms,
        // 250), the answer stands; once it is older, the new doubt is news, and n3 is
        // checked.
        let late = probes_after_a_second_doubt(850);
        assert!(!late.is_empty() && late[0] >= 800 + 250, "{late:?}");
        // 700 ms before: n3 may have stopped since; it is checked at once, three deep.
        let at_once = probes_after_a_second_doubt(1_500);
        assert_eq!((at_once.len(), at_once[0]), (3, 1_500), "{at_once:?}");
    }

    /// n0 of three, on its own: it suspects n2 (three failed exchanges), then hears that
    /// n2 refuted, at incarnation `inc`. The probes it sends n2 from `at` ms to `at` + 300.
    fn probes_after_refutation(
        probing: &mut super::Probing,
        links: &mut super::Links,
        detector: &mut super::Detector,
        inc: u64,
        at: u64,
    ) -> usize {
        use std::collections::BTreeMap;
        use std::sync::Arc;

        use crate::wire::Record;

        while !detector.suspicion_stands("n2") {
            let _ = detector.strike("n2");
        }
        let refuted = Record {
            version: inc,
            inc,
            ..Record::default()
        };
        let _ = detector.merge(&BTreeMap::from([("n2".into(), Arc::new(refuted))]));
        assert!(detector.suspects("n2") && !detector.suspicion_stands("n2"));
        let mut out = Vec::new();
        for t in (at..at + 300).step_by(25) {
            let _ = probing.expire(ms(t), links, detector);
            probing.probe(ms(t), links, detector, &[], &mut out);
        }
        out.iter().filter(|e| e.dest == "n2").count()
    }

    #[test]
    fn a_refuted_suspicion_is_checked_once() {
        use crate::config::Config;

        let nodes: Vec<String> = ["n0", "n1", "n2"].map(String::from).to_vec();
        let config = Config::default();
        let mut probing = super::Probing::new(&config, 0);
        let mut links = super::Links::new("n0", &nodes, &config);
        let mut detector = super::Detector::new("n0", &nodes);
        // Low-rate probes of ruled-out peers go at 0 (no one to probe yet), 1 000, 2 000
        // ...: the windows looked at leave them out, and the one of 2 000 has failed by
        // 2 600.
        let mut out = Vec::new();
        probing.probe(ms(0), &mut links, &detector, &[], &mut out);
        assert!(out.is_empty());
        let (p, l, d) = (&mut probing, &mut links, &mut detector);
        assert_eq!(probes_after_refutation(p, l, d, 1, 100), 1, "one check");
        for t in (400..2_600).step_by(25) {
            let _ = probing.expire(ms(t), &mut links, &mut detector);
            probing.probe(ms(t), &mut links, &detector, &[], &mut out);
        }
        // Unanswered, it was one more failed exchange: we suspect the new incarnation.
        assert!(detector.suspicion_stands("n2"));
        // n2 refutes again, as under a partition it does over and over: no more checks
        // while our suspicion lasts.
        let (p, l, d) = (&mut probing, &mut links, &mut detector);
        assert_eq!(probes_after_refutation(p, l, d, 2, 2_600), 0);
    }

    #[test]
    fn a_doubted_peer_that_answered_lately_is_probed_one_round_trip_apart() {
        use std::collections::BTreeMap;
        use std::sync::Arc;

        use crate::machine::testing::gossip;
        use crate::wire::{Gossip, Record};

        // n4 of five: its parent n0 answers its first message in 200 ms (the round trip);
        // n2 said hello at 300 ms, n3 never did. At 700 ms n1 doubts both.
        let mut m = begun("n4", 5);
        let write = Payload::Broadcast { message: 1.into() };
        let at = 1;
        let out = m.handle(crate::machine::testing::request("n4", 3, write), ms(at));
        let seq = out
            .iter()
            .find_map(|e| match &e.body.payload {
                Payload::Gossip(g) if e.dest == "n0" && g.seq > 0 => Some(g.seq),
                _ => None,
            })
            .expect("the write goes up at once");
        run(&mut m, at + 1, at + 200);
        let ack = Gossip {
            seq: 1,
            ack: seq,
            ..Gossip::default()
        };
        m.handle(gossip("n0", "n4", ack), ms(at + 200));
        run(&mut m, at + 200, 300);
        let hello = Gossip {
            seq: 1,
            ..Gossip::default()
        };
        m.handle(gossip("n2", "n4", hello), ms(300));
        run(&mut m, 300, 700);
        let doubts = Gossip {
            seq: 1,
            members: BTreeMap::from([(
                "n1".into(),
                Arc::new(Record {
                    version: 1,
                    doubts: BTreeMap::from([("n2".to_string(), 0), ("n3".to_string(), 0)]),
                    ..Record::default()
                }),
            )]),
            ..Gossip::default()
        };
        m.handle(gossip("n1", "n4", doubts), ms(700));
        let out = run(&mut m, 700, 1_000);
        let gaps = |peer| -> Vec<u64> {
            probes_to(&out, peer)
                .windows(2)
                .map(|w| w[1] - w[0])
                .collect()
        };
        // n3, never heard from, is struck out fast: three deep within half a timeout.
        assert_eq!(
            probes_to(&out, "n3").len(),
            3,
            "{:?}",
            probes_to(&out, "n3")
        );
        assert!(gaps("n3").iter().all(|g| *g < 200), "{:?}", gaps("n3"));
        // n2 most likely answers: its next probe waits out the round trip.
        assert!(
            !gaps("n2").is_empty() && gaps("n2").iter().all(|g| *g >= 200),
            "{:?}",
            gaps("n2")
        );
    }

    /// n0 of 25 checks n1's doubt of n3 and hears back; n3 refutes it; then n1 doubts
    /// n3's new incarnation, having taken its first doubt back (`withdrawn`) or not.
    /// Whether n0, its probing seeded with `seed`, probes n3 again.
    fn checks_a_renewed_doubt(seed: u64, withdrawn: bool) -> bool {
        use std::collections::BTreeMap;
        use std::sync::Arc;
        use std::time::Duration;

        use crate::config::Config;
        use crate::gossip::data_of;
        use crate::wire::{Gossip, Record};

        let nodes: Vec<String> = (0..25).map(|i| format!("n{i}")).collect();
        // (No low-rate probes of ruled-out peers: there are none, but they use the RNG.)
        let config = Config {
            probe_period: Duration::from_secs(3_600),
            ..Config::default()
        };
        let mut probing = super::Probing::new(&config, seed);
        let mut links = super::Links::new("n0", &nodes, &config);
        let mut detector = super::Detector::new("n0", &nodes);
        let merge = |detector: &mut super::Detector, author: &str, record: Record| {
            let _ = detector.merge(&BTreeMap::from([(author.into(), Arc::new(record))]));
        };
        let doubts_n3 = |version, inc| Record {
            version,
            doubts: BTreeMap::from([("n3".to_string(), inc)]),
            ..Record::default()
        };
        let mut probes = |from: u64, to: u64, links: &mut super::Links, d: &mut super::Detector| {
            let mut out = Vec::new();
            for t in (from..to).step_by(25) {
                let _ = probing.expire(ms(t), links, d);
                probing.probe(ms(t), links, d, &[], &mut out);
            }
            out.into_iter()
                .filter(|e| e.dest == "n3")
                .filter_map(|e| match e.body.payload {
                    Payload::Gossip(g) => Some(g.seq),
                    _ => None,
                })
                .max()
        };
        merge(&mut detector, "n1", doubts_n3(1, 0));
        let asked = probes(0, 100, &mut links, &mut detector).expect("a new doubt is checked");
        let answer = Gossip {
            seq: 1,
            ack: asked,
            ..Gossip::default()
        };
        let _ = links.hear("n3", &answer, &data_of(&answer), ms(200));
        let _ = detector.success("n3");
        let refuted = Record {
            version: 1,
            inc: 1,
            ..Record::default()
        };
        merge(&mut detector, "n3", refuted);
        if withdrawn {
            merge(
                &mut detector,
                "n1",
                Record {
                    version: 2,
                    ..Record::default()
                },
            );
        }
        assert_eq!(probes(200, 2_000, &mut links, &mut detector), None);
        merge(&mut detector, "n1", doubts_n3(3, 1));
        probes(2_000, 2_100, &mut links, &mut detector).is_some()
    }

    #[test]
    fn a_doubt_renewed_against_the_next_incarnation_is_checked_again_by_few() {
        // Under a partition the nodes cut off from a peer vote, it refutes, they vote
        // again: about PROBERS of the 24 others check it each round, not all...
        let checking = (0..24)
            .filter(|&seed| checks_a_renewed_doubt(seed, false))
            .count();
        assert!(checking < 12, "{checking} of 24");
        // ... unless the doubter took its doubt back meanwhile: its new doubt is news.
        assert!((0..24).all(|seed| checks_a_renewed_doubt(seed, true)));
    }

    #[test]
    fn a_suspicion_no_one_confirms_is_checked_every_doubt_recheck() {
        use std::time::Duration;

        use crate::config::Config;

        // n0 of five (a vote needs confirmation) struck n4 out alone: its suspicion awaits
        // confirmation, and its doubt has every node that does not hear from n4 probing it.
        let nodes: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        // (The low-rate probe of ruled-out peers goes on the first tick only.)
        let config = Config {
            probe_period: Duration::from_secs(3_600),
            ..Config::default()
        };
        let mut probing = super::Probing::new(&config, 0);
        let mut links = super::Links::new("n0", &nodes, &config);
        let mut detector = super::Detector::new("n0", &nodes);
        for _ in 0..3 {
            let _ = detector.strike("n4");
        }
        assert!(detector.awaits_confirmation_at(detector.place("n4").unwrap()));
        let mut checks = Vec::new();
        for t in (25..12_000).step_by(25) {
            let _ = probing.expire(ms(t), &mut links, &mut detector);
            let mut out = Vec::new();
            probing.probe(ms(t), &mut links, &detector, &[], &mut out);
            checks.extend(out.iter().filter(|e| e.dest == "n4").map(|_| t));
        }
        assert_eq!(checks, [25, 5_025, 10_025]);
        // Unanswered, the checks changed nothing; an answer withdraws suspicion and doubt.
        assert!(detector.awaits_confirmation_at(detector.place("n4").unwrap()));
        let _ = detector.success("n4");
        assert!(!detector.suspects("n4") && !detector.own_record().doubts.contains_key("n4"));
    }

    #[test]
    fn low_rate_probes_go_first_to_peers_that_refuted_and_are_not_dead() {
        use std::collections::BTreeMap;
        use std::sync::Arc;

        use crate::config::Config;
        use crate::wire::Record;

        // n0 of five, with n1: both suspect n3 and n4, which are dead (two votes each).
        let nodes: Vec<String> = (0..5).map(|i| format!("n{i}")).collect();
        let config = Config::default();
        let links = super::Links::new("n0", &nodes, &config);
        let mut detector = super::Detector::new("n0", &nodes);
        let record = |version, inc, suspects: &[&str]| {
            let suspects = suspects.iter().map(|p| (p.to_string(), 0)).collect();
            Arc::new(Record {
                version,
                inc,
                suspects,
                ..Record::default()
            })
        };
        let n1 = record(1, 0, &["n3", "n4"]);
        let _ = detector.merge(&BTreeMap::from([("n1".into(), n1)]));
        for peer in ["n3", "n4"] {
            for _ in 0..3 {
                let _ = detector.strike(peer);
            }
        }
        assert!(detector.is_dead("n3") && detector.is_dead("n4"));
        let ruled_out = |detector: &super::Detector| {
            let places = super::ruled_out(&links, detector);
            let names: Vec<&str> = places.into_iter().map(|p| detector.name(p)).collect();
            names.join(" ")
        };
        assert_eq!(ruled_out(&detector), "n3 n4");
        // n4 refutes: it is alive again, and whether it is back is what we do not know.
        let n4 = record(1, 1, &[]);
        let _ = detector.merge(&BTreeMap::from([("n4".into(), n4)]));
        assert!(!detector.is_dead("n4") && detector.suspects("n4"));
        assert_eq!(ruled_out(&detector), "n4");
    }

    #[test]
    fn dead_peers_are_probed_at_a_low_rate() {
        let mut m = begun("n0", 2);
        let out = run(&mut m, 1, 20_000);
        assert_eq!(m.status("n1"), Some(Status::Dead));
        // One node probes its only dead peer about once a probe period, and only probes.
        let late = probes_to(&out, "n1")
            .into_iter()
            .filter(|t| *t >= 10_000)
            .count();
        assert!((8..=11).contains(&late), "{late} probes in 10 s");
        let others = out.iter().filter(|(t, e)| *t >= 10_000 && e.dest == "n1");
        assert_eq!(others.count(), late);
    }
}
