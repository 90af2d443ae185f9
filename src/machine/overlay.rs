//! The overlay: this node's place in the forest (`tree`), its parent and wards as last
//! chosen, and what goes to them when. Up to fanout + 1 nodes the forest is a star around
//! the first node; beyond, a tree whose relays each serve at most `fanout` children while
//! all are up, so no node's work grows with the cluster. Values go up to the parent at
//! once and down to the children in batches; quiet neighbours get heartbeats; each node
//! also watches the peers that should be its children but have not said so (e.g. one that
//! died before it ever joined).

use std::time::Duration;

use tracing::info;

use super::budget::{Budget, Waits};
use super::links::Links;
use super::tree::Tree;
use super::urgency::{URGENT_GAP, Urgency};
use crate::config::Config;
use crate::gossip::{Kind, Link, Why};
use crate::membership::Detector;
use crate::wire::Envelope;

pub(super) struct Overlay {
    tree: Tree,
    /// Our parent, as its place in the ranking; `None` for a root. Each link knows whether
    /// it leads to the parent, and is told here.
    parent: Option<usize>,
    /// The peers whose parent, as we see it, is us, by place (in order): we watch them.
    /// (Recomputed when the detector's view changes.)
    wards: Vec<usize>,
    /// What the parent and the wards were chosen from: the detector's count of status
    /// changes and our own suspicions. Unchanged, there is nothing to choose again.
    chosen_from: (u64, Vec<String>),
    /// The unproven place parent our parent was last chosen without (`Tree::choose_proven`),
    /// and the parent the detector's view alone gave then.
    passed_over: Option<usize>,
    by_view: Option<usize>,
    /// The batching waits: fixed, or derived from the latency budget.
    waits: Waits,
    budget: Option<Budget>,
    heartbeat: Duration,
    /// Failure-detector records changed: send them down without waiting for the batch.
    records_urgent: bool,
    next_batch_at: Duration,
    /// When data and records last went down to the children.
    last_flush_at: Duration,
    /// How soon urgent news may follow the last flush.
    urgency: Urgency,
}

impl Overlay {
    pub fn new(
        me: &str,
        nodes: &[String],
        config: &Config,
        detector: &Detector,
        links: &mut Links,
    ) -> Self {
        let mut overlay = Overlay {
            tree: Tree::new(me, nodes, config.fanout, detector),
            parent: None,
            wards: Vec::new(),
            chosen_from: (0, Vec::new()),
            passed_over: None,
            by_view: None,
            waits: Waits {
                down: config.batch,
                up: config.up_batch,
                lead: None,
            },
            budget: config.latency_budget.map(|total| {
                Budget::new(
                    total,
                    nodes.len(),
                    config.fanout,
                    config.gossip_tick,
                    config.ack_when,
                )
            }),
            heartbeat: config.heartbeat,
            records_urgent: false,
            next_batch_at: Duration::ZERO,
            last_flush_at: Duration::ZERO,
            urgency: Urgency::default(),
        };
        overlay.parent = overlay.tree.choose(detector);
        overlay.by_view = overlay.parent;
        overlay.wards = overlay.tree.wards(detector);
        overlay.chosen_from = view(detector);
        links.set_parent(overlay.parent());
        overlay
    }

    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    pub fn parent(&self) -> Option<&str> {
        self.parent.map(|i| self.tree.name(i))
    }

    /// The parents we would rather have than ours (`Tree::preferred_parents`).
    pub fn preferred_parents(&self, d: &Detector) -> Vec<usize> {
        self.tree.preferred_parents(d, self.parent)
    }

    /// Our parent, and the one the detector's view alone gives (another when we passed
    /// one over as unproven, `Tree::choose_proven`): the others count on both to watch them.
    pub fn parents_held(&self) -> [Option<usize>; 2] {
        [self.parent, self.by_view]
    }

    /// How long values wait on their way down and up: the fixed periods, or what the
    /// latency budget leaves at the round trip measured so far.
    pub fn waits(&self, links: &Links) -> Waits {
        match &self.budget {
            Some(budget) => budget.waits(links.srtt()),
            None => self.waits,
        }
    }

    /// The workload began: a batch is due, and the parent learns it has a child, even
    /// with nothing to send yet.
    pub fn begin(&mut self, now: Duration, links: &mut Links) {
        self.next_batch_at = now;
        if let Some(parent) = self.parent() {
            let link = links.get_mut(parent);
            link.dirty = true;
            link.ack_now = true;
        }
    }

    /// Failure-detector records changed: they go down without waiting for the batch.
    pub fn records_changed(&mut self) {
        self.records_urgent = true;
    }

    /// Chooses the parent again, after a change of what the detector says.
    pub fn rechoose(&mut self, detector: &Detector, links: &mut Links) {
        let unproven = self.tree.unproven(detector, links);
        let (changes, chosen_from) = &self.chosen_from;
        // (Compared without copying: this is asked on every change of records.)
        let same_view = *changes == detector.status_changes()
            && detector
                .suspected()
                .eq(chosen_from.iter().map(String::as_str));
        if same_view && unproven == self.passed_over {
            return;
        }
        if !same_view {
            self.chosen_from = view(detector);
            self.wards = self.tree.wards(detector);
        }
        self.by_view = self.tree.choose(detector);
        let chosen = self.tree.choose_proven(detector, unproven);
        self.passed_over = unproven;
        if chosen == self.parent {
            return;
        }
        let name = |i: Option<usize>| i.map(|i| self.tree.name(i));
        info!(from = ?name(self.parent), to = ?name(chosen), "parent changed");
        links.set_parent(name(chosen));
        if let Some(new) = name(chosen) {
            // The first message to it asks for its ack at once: a parent that is gone is
            // noticed without waiting out the ack delay.
            let link = links.get_mut(new);
            link.dirty = true;
            link.ack_now = true;
        }
        self.parent = chosen;
    }

    /// Gossip tick (once the workload has begun, at `begun`).
    pub fn round(
        &mut self,
        now: Duration,
        begun: Duration,
        links: &mut Links,
        detector: &Detector,
        out: &mut Vec<Envelope>,
    ) {
        let waits = self.waits(links);
        let flush_down = self.flush_due(now, waits.down);
        self.tend_neighbours(now, flush_down, &waits, links, detector, out);
        self.watch_wards(now, begun, links, detector, out);
    }

    /// A time before which `round` sends nothing and changes nothing, whenever it is
    /// called (the soonest of its deadlines; it may be early, never late). Lets a driver
    /// skip the ticks that would find nothing to do.
    pub fn quiet_until(&self, begun: Duration, links: &Links) -> Duration {
        let waits = self.waits(links);
        let mut soonest = self.next_batch_at;
        if self.records_urgent {
            // (The gap is never shorter than this: early, as allowed.)
            soonest = soonest.min(self.last_flush_at + URGENT_GAP);
        }
        // As `due` decides: a dirty child waits for the batch; the parent gets what it
        // lacks after its up wait; a quiet neighbour is probed.
        let due_at = |link: &Link| {
            // (Records alone: never sooner than URGENT_GAP after the last message.)
            let up = (link.parent && link.dirty).then(|| match link.has_unsent() {
                true => up_at(link, &waits),
                false => link.last_sent + URGENT_GAP,
            });
            let quiet_for = if link.parent {
                self.heartbeat * 3 / 2
            } else {
                self.heartbeat
            };
            let probe = (!link.has_in_flight())
                .then(|| link.last_heard.unwrap_or(Duration::ZERO) + quiet_for);
            up.into_iter().chain(probe).min()
        };
        let parent = self.parent.map(|i| links.at_place(self.tree.place(i)));
        for link in links.maybe_children().filter(|l| l.is_child).chain(parent) {
            if let Some(at) = due_at(link) {
                soonest = soonest.min(at);
            }
        }
        // As `watch_wards` decides.
        let measured = links.measured();
        for &ward in &self.wards {
            let link = links.at_place(ward);
            if link.is_child || link.has_in_flight() {
                continue;
            }
            let at = match link.last_heard {
                Some(heard) => heard + self.heartbeat,
                None if measured => begun + self.heartbeat / 4,
                None => begun + self.heartbeat,
            };
            soonest = soonest.min(at);
        }
        soonest
    }

    /// Whether data and records go down to the children on this tick.
    fn flush_due(&mut self, now: Duration, batch: Duration) -> bool {
        let batch_due = now >= self.next_batch_at;
        if batch_due {
            self.next_batch_at = now + batch;
        }
        // News about failures travels at once: detection time is what it is for.
        // (Paced by `urgency`: under partitions records can change all the time.)
        let urgent = self.records_urgent && now >= self.last_flush_at + self.urgency.gap(now);
        if urgent && !batch_due {
            self.urgency.spend(now);
        }
        let flush_down = batch_due || urgent;
        if flush_down {
            self.records_urgent = false;
            self.last_flush_at = now;
        }
        flush_down
    }

    /// Sends what is due to the overlay neighbours: live children in peer order, then
    /// the parent.
    fn tend_neighbours(
        &self,
        now: Duration,
        flush_down: bool,
        waits: &Waits,
        links: &mut Links,
        detector: &Detector,
        out: &mut Vec<Envelope>,
    ) {
        let live_child = |peer: &str, link: &Link| link.is_child && !detector.is_dead(peer);
        let records = detector.records();
        links.send_each_child(records, now, out, |peer, link| {
            if live_child(peer, link) {
                self.due(link, flush_down, waits, now)
            } else {
                None
            }
        });
        if let Some(parent) = self.parent()
            && !live_child(parent, links.get(parent))
            && let Some(kind) = self.due(links.get(parent), flush_down, waits, now)
        {
            links.send(parent, kind, records, now, out);
        }
    }

    /// What a neighbour is due: what it lacks, or a heartbeat when it has been quiet.
    fn due(&self, link: &Link, flush_down: bool, waits: &Waits, now: Duration) -> Option<Kind> {
        let up_now = link.parent && now >= up_at(link, waits);
        // A batch down takes the parent what it lacks too, unless values going up are
        // timed to its batches.
        let batch = flush_down && !(link.parent && waits.lead.is_some());
        if link.dirty {
            // Records alone (what is pending is in flight already) go up a gap after the
            // last message, paced as the urgent flushes are (`urgency`): when a partition
            // begins they change every few milliseconds, and a message up at each change
            // re-carried the values in flight.
            let due = match link.parent && !link.has_unsent() {
                true => now >= link.last_sent + self.urgency.gap(now),
                false => up_now || batch,
            };
            if due {
                return Some(Kind::Data);
            }
        }
        // Parents check on quiet children; children give the parent half as long again
        // before they check themselves, so both rarely do it at once.
        let quiet_for = if link.parent {
            self.heartbeat * 3 / 2
        } else {
            self.heartbeat
        };
        let heard = link.last_heard.unwrap_or(Duration::ZERO);
        let quiet = !link.has_in_flight() && now.saturating_sub(heard) >= quiet_for;
        quiet.then_some(Kind::Probe(Why::Heartbeat))
    }

    /// Probes the quiet peers that should be our children but are not, e.g. one that died
    /// before it ever joined: no one else would notice.
    fn watch_wards(
        &self,
        now: Duration,
        begun: Duration,
        links: &mut Links,
        detector: &Detector,
        out: &mut Vec<Envelope>,
    ) {
        let heartbeat = self.heartbeat;
        let measured = links.measured();
        links.send_each_at(&self.wards, detector.records(), now, out, |peer, link| {
            let (since, limit) = match link.last_heard {
                Some(heard) => (heard, heartbeat),
                // Every node announces itself to the root when it starts: one not heard
                // of by now is probably down. (Once round trips are measured: the first
                // guess at a timeout is long.)
                None if measured => (begun, heartbeat / 4),
                None => (begun, heartbeat),
            };
            // One we suspect already is probed at the low rate of the ruled out.
            let quiet = !link.is_child
                && !link.has_in_flight()
                && !detector.is_dead_at(peer)
                && !detector.suspects_at(peer)
                && now.saturating_sub(since) >= limit;
            quiet.then_some(Kind::Probe(Why::Ward))
        });
    }
}

/// When values the parent lacks go up: once the up wait since the last message is over
/// (at once, by default), or timed to reach the parent just before its next batch down
/// (`Waits::lead`). (News of records alone: see `due`.)
fn up_at(link: &Link, waits: &Waits) -> Duration {
    match (waits.lead, link.data_heard) {
        (Some(lead), Some(heard)) if !waits.down.is_zero() => {
            // The parent's batches leave about `down` apart; its wait follows its own round
            // trips, so its pace is taken from the last two gaps between its batches when
            // they agree, or from the last alone if it is sooner than our wait. Aim at the
            // first batch not already aimed at (by a message sent at or before `last_sent`).
            let period = parent_period(link.data_gaps, waits.down);
            let mut aim = (heard + period).saturating_sub(lead);
            if aim <= link.last_sent {
                let step = period.as_nanos();
                let past = (link.last_sent - aim).as_nanos() % step;
                aim = link.last_sent + Duration::from_nanos((step - past) as u64);
            }
            // Never more than a wait after the last values went up: a batch that comes
            // later than reckoned would move the aim past each arrival.
            aim.min(link.data_sent + waits.up)
        }
        // No batch from the parent yet to time by: a wait here would come on top of a
        // whole one there.
        (Some(_), None) => link.last_sent,
        _ => link.last_sent + waits.up,
    }
}

/// How far apart the parent's batches leave, from the last two gaps between their arrivals
/// (latest first): both, when they agree within a twentieth of our wait (a gap that is
/// twice the pace, a batch with nothing for us, or one thrown off by a message between
/// batches does not agree); else the last, if it is within our wait and at least half of it;
/// else our wait.
fn parent_period(gaps: [Option<Duration>; 2], wait: Duration) -> Duration {
    match gaps {
        [Some(last), Some(before)]
            if last.abs_diff(before) <= wait / 20 && last >= wait / 2 && last <= wait * 3 / 2 =>
        {
            (last + before) / 2
        }
        [Some(last), _] if last >= wait / 2 => last.min(wait),
        _ => wait,
    }
}

/// What the overlay depends on in the detector's view (`Overlay::chosen_from`).
fn view(d: &Detector) -> (u64, Vec<String>) {
    let suspected = d.suspected().map(str::to_string).collect();
    (d.status_changes(), suspected)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Config, parent_period};
    use crate::config::AckWhen;
    use crate::machine::StateMachine;
    use crate::machine::testing::{
        begun, begun_with, gossip, ms, node, probes_to, request, run, run_while_parent_is, sent,
        with_a_write,
    };
    use crate::membership::Status;
    use crate::wire::{Element, Gossip, Payload, Record};

    fn from_child(seq: u64, values: &[i64]) -> Gossip {
        Gossip {
            seq,
            parent: true,
            values: values.iter().map(|v| Element::Int(*v)).collect(),
            ..Gossip::default()
        }
    }

    #[test]
    fn the_first_node_is_the_root_and_the_others_its_children() {
        assert_eq!(node("n0", 3).parent(), None);
        assert_eq!(node("n2", 3).parent(), Some("n0"));
        let mut m = node("n2", 3);
        let out = m.handle(
            request("n2", 2, Payload::Broadcast { message: 1.into() }),
            ms(5),
        );
        let (dest, g) = sent(&out)[0];
        assert_eq!(dest, "n0");
        assert!(g.parent, "it tells its parent");
        assert!(
            g.probe,
            "the first message to a parent asks for its ack at once"
        );
    }

    #[test]
    fn beyond_fanout_plus_one_nodes_the_overlay_is_a_tree() {
        // Fanout 24: n0 serves n1..n24, n1 serves n25..n48, n2 serves n49..n72, ...
        for (id, parent) in [
            ("n0", None),
            ("n1", Some("n0")),
            ("n24", Some("n0")),
            ("n25", Some("n1")),
            ("n48", Some("n1")),
            ("n49", Some("n2")),
            ("n99", Some("n4")),
        ] {
            assert_eq!(node(id, 100).parent(), parent, "{id}");
        }
    }

    #[test]
    fn parents_ruled_out_by_our_suspicion_alone_are_probed_in_turn_once_a_period() {
        // n2 of 25 suspects n0 (no answer to its write), and no one else does: n0 is not
        // dead, and n2 looks elsewhere meanwhile (n1, which does not answer either, so n2
        // is a root). It asks them again, one a second in turn, instead of waiting for its
        // low-rate probes of ruled-out peers: one that is gone for good does not keep it
        // from finding the other.
        let mut m = begun("n2", 25);
        m.handle(
            request("n2", 3, Payload::Broadcast { message: 1.into() }),
            ms(1),
        );
        run(&mut m, 2, 3_000);
        assert_eq!(m.parent(), None);
        assert_eq!(m.status("n0"), Some(Status::Alive));
        let out = run(&mut m, 3_001, 13_000);
        let mut probes: Vec<(u64, &str)> = ["n0", "n1"]
            .into_iter()
            .flat_map(|p| probes_to(&out, p).into_iter().map(move |t| (t, p)))
            .collect();
        probes.sort();
        assert!((9..=11).contains(&probes.len()), "{probes:?}");
        assert!(
            probes
                .windows(2)
                .all(|w| w[1].0 - w[0].0 >= 1_000 && w[1].1 != w[0].1),
            "{probes:?}"
        );
    }

    #[test]
    fn a_child_whose_parent_is_gone_goes_to_a_sibling_of_it() {
        let mut m = with_a_write("n30", 100, 1);
        m.handle(gossip("n1", "n30", Gossip::default()), ms(2));
        // n1 answers no more: after three failed exchanges n30 suspects it.
        let t = run_while_parent_is(&mut m, "n1");
        // n30 is n1's sixth child: the sixth of n1's siblings n2..n24.
        assert_eq!(m.parent(), Some("n7"), "after {t} ms");
    }

    #[test]
    fn a_parent_never_heard_from_is_passed_over_from_its_first_failed_exchange() {
        let mut m = with_a_write("n30", 100, 1);
        let t = run_while_parent_is(&mut m, "n1");
        // The sibling it would go to once it suspected n1, before it does: one strike.
        assert_eq!(m.parent(), Some("n7"), "after {t} ms");
        assert_eq!(m.status("n1"), Some(Status::Alive));
        assert!(t <= 600, "one ack timeout, not three: {t} ms");
        // n1 answers at last: it is the parent again.
        m.handle(gossip("n1", "n30", Gossip::default()), ms(t + 10));
        assert_eq!(m.parent(), Some("n1"));
    }

    #[test]
    fn a_parent_passed_over_and_then_suspected_sets_off_the_sweep() {
        let mut m = with_a_write("n30", 100, 1);
        // n1 never answers; n7, where n30 goes, answers everything at once.
        let mut to_n0 = Vec::new();
        for t in (0..3000).step_by(25) {
            for (at, e) in run(&mut m, t, t + 25) {
                if let Payload::Gossip(g) = &e.body.payload
                    && e.dest == "n7"
                    && g.seq > 0
                {
                    let ack = Gossip {
                        ack: g.seq,
                        ..Gossip::default()
                    };
                    m.handle(gossip("n7", "n30", ack), ms(at + 1));
                }
                if e.dest == "n0" {
                    to_n0.push(at);
                }
            }
        }
        assert_eq!(m.parent(), Some("n7"));
        // Once it suspects n1, n30 probes what n1 stood for: its ancestor n0 among them.
        assert!(
            to_n0.first().is_some_and(|&t| t > 1000),
            "probes to n0 at {to_n0:?}"
        );
    }

    #[test]
    fn the_root_is_not_passed_over_before_it_is_suspected() {
        let mut m = with_a_write("n5", 100, 1);
        let t = run_while_parent_is(&mut m, "n0");
        assert_eq!(m.parent(), Some("n1"), "after {t} ms");
        assert!(t > 1000, "three strikes, not one: {t} ms");
    }

    #[test]
    fn news_of_records_alone_goes_up_paced_not_at_each_change() {
        use std::collections::BTreeMap;
        use std::sync::Arc;

        use crate::wire::Record;

        // n2 of five (its parent is n0) hears n3's record change every 10 ms for 4 s, a
        // doubt of n4 in every other version (news that goes at once); n0 acks at once.
        let mut m = begun("n2", 5);
        let mut up = Vec::new();
        for step in 0..400u64 {
            let t = step * 10;
            let mut out = run(&mut m, t, t + 5);
            let doubts = match step % 2 {
                0 => BTreeMap::from([("n4".to_string(), 0)]),
                _ => BTreeMap::new(),
            };
            let record = Record {
                version: step + 1,
                doubts,
                ..Record::default()
            };
            let news = Gossip {
                seq: step + 1,
                members: BTreeMap::from([("n3".into(), Arc::new(record))]),
                ..Gossip::default()
            };
            let sent = m.handle(gossip("n3", "n2", news), ms(t + 5));
            out.extend(sent.into_iter().map(|e| (t + 5, e)));
            out.extend(run(&mut m, t + 5, t + 10));
            for (at, e) in out {
                if let Payload::Gossip(g) = &e.body.payload
                    && e.dest == "n0"
                    && g.seq > 0
                {
                    up.push(at);
                    let ack = Gossip {
                        ack: g.seq,
                        ..Gossip::default()
                    };
                    m.handle(gossip("n0", "n2", ack), ms(at));
                }
            }
        }
        // A burst of urgent flushes 50 ms apart, then one per 250 ms (machine/urgency.rs),
        // plus the batches: not one per change.
        assert!(up.len() <= 50, "{} messages up: {up:?}", up.len());
        assert!(up.windows(2).all(|w| w[1] - w[0] >= 40), "{up:?}");
    }

    #[test]
    fn values_go_down_to_the_children_in_batches() {
        let mut m = begun("n0", 3);
        m.handle(gossip("n1", "n0", from_child(1, &[7])), ms(5));
        m.handle(gossip("n2", "n0", from_child(1, &[])), ms(5));
        let to_n2 = |out: &[(u64, crate::wire::Envelope)]| -> Vec<(u64, Vec<Element>)> {
            out.iter()
                .filter_map(|(t, e)| match &e.body.payload {
                    Payload::Gossip(g) if e.dest == "n2" && !g.values.is_empty() => {
                        Some((*t, g.values.clone()))
                    }
                    _ => None,
                })
                .collect()
        };
        // The first batch is due when the workload begins: on the next gossip tick.
        assert_eq!(to_n2(&run(&mut m, 6, 20)), [(10, vec![Element::Int(7)])]);
        m.handle(gossip("n1", "n0", from_child(2, &[8])), ms(20));
        let out = run(&mut m, 21, 220);
        // 7 is not acknowledged yet: it rides again with 8, in the next batch.
        assert_eq!(to_n2(&out), [(210, vec![Element::Int(7), Element::Int(8)])]);
        assert!(
            out.iter().all(|(_, e)| e.dest != "n1"),
            "n1 has both values: {out:?}"
        );
    }

    #[test]
    fn answered_at_once_values_go_up_timed_to_reach_the_parent_before_its_batch() {
        // Budget 1000 ms, 3 nodes: waits of 680 ms, sent up 220 ms before the parent's
        // next batch is due to leave (machine/budget.rs).
        let config = Config {
            ack_when: AckWhen::Local,
            ..Config::default()
        }
        .with_budget(ms(1000));
        let mut m = begun_with(config, "n2", 3);
        let write = |m: &mut StateMachine, id, value: i64, at| {
            m.handle(
                request(
                    "n2",
                    id,
                    Payload::Broadcast {
                        message: value.into(),
                    },
                ),
                ms(at),
            );
        };
        let up_with = |out: &[(u64, crate::wire::Envelope)], value: i64| -> Vec<u64> {
            out.iter()
                .filter(|(_, e)| e.dest == "n0")
                .filter(|(_, e)| {
                    matches!(&e.body.payload, Payload::Gossip(g)
                        if g.values.contains(&Element::Int(value)))
                })
                .map(|(t, _)| *t)
                .collect()
        };
        // No batch from the parent yet to time by: up on the next tick.
        write(&mut m, 3, 1, 15);
        assert_eq!(up_with(&run(&mut m, 15, 300), 1), [20]);
        // The parent's batch arrives at 220 ms (acknowledging seq 1: a round trip of the
        // 200 ms guessed); its next is due to leave at about 900 - 100 ms, so values go
        // up at 680 ms.
        let batch = |seq, held| Gossip {
            seq,
            ack: seq,
            ack_delay: held,
            values: vec![Element::Int(100 + seq as i64)],
            ..Gossip::default()
        };
        m.handle(gossip("n0", "n2", batch(1, 0)), ms(220));
        write(&mut m, 4, 2, 230);
        assert_eq!(up_with(&run(&mut m, 220, 900), 2), [680]);
        // The next batch comes 660 ms later, sooner than our wait: the parent's own pace
        // is aimed at.
        m.handle(gossip("n0", "n2", batch(2, 0)), ms(880));
        write(&mut m, 5, 3, 890);
        assert_eq!(up_with(&run(&mut m, 880, 1700), 3), [1320]);
        // A batch later than reckoned (at 1700 ms, where 1540 was due) would put the next
        // aim at 2160 ms; values go no later than a period after the last went up.
        m.handle(gossip("n0", "n2", batch(3, 180)), ms(1700));
        write(&mut m, 6, 4, 1710);
        assert_eq!(up_with(&run(&mut m, 1700, 2300), 4), [2000]);
    }

    #[test]
    fn the_parents_pace_comes_from_two_agreeing_gaps_between_its_batches() {
        let wait = ms(1000);
        // Two gaps that agree: the parent's own pace, slower or faster than our wait.
        assert_eq!(
            parent_period([Some(ms(1200)), Some(ms(1210))], wait),
            ms(1205)
        );
        assert_eq!(parent_period([Some(ms(900)), Some(ms(890))], wait), ms(895));
        // One gap alone, or two that disagree: the last if sooner than our wait.
        assert_eq!(parent_period([Some(ms(900)), None], wait), ms(900));
        assert_eq!(parent_period([Some(ms(1200)), None], wait), wait);
        assert_eq!(parent_period([Some(ms(1200)), Some(ms(700))], wait), wait);
        // A batch with nothing for us (twice the pace), or a message between batches.
        assert_eq!(parent_period([Some(ms(2000)), Some(ms(2000))], wait), wait);
        assert_eq!(parent_period([Some(ms(300)), Some(ms(300))], wait), wait);
        assert_eq!(parent_period([None, None], wait), wait);
    }

    #[test]
    fn quiet_neighbours_and_unknown_peers_get_heartbeats() {
        let mut m = begun("n0", 3);
        m.handle(gossip("n1", "n0", from_child(1, &[])), ms(5));
        let out = run(&mut m, 6, 1100);
        // The root has never heard of n2 since the workload began at 0; its child n1 was
        // last heard at 5.
        assert_eq!(probes_to(&out, "n2"), [1000]);
        assert_eq!(probes_to(&out, "n1"), [1010]);
    }

    #[test]
    fn a_parent_ruled_out_is_replaced_by_the_next_node() {
        let mut m = begun("n2", 3);
        // With three nodes one vote is death: n1 suspects n0.
        let record = Record {
            version: 1,
            suspects: BTreeMap::from([("n0".to_string(), 0)]),
            ..Record::default()
        };
        let news = Gossip {
            seq: 1,
            members: BTreeMap::from([("n1".into(), record.into())]),
            ..Gossip::default()
        };
        m.handle(gossip("n1", "n2", news), ms(5));
        assert_eq!(m.status("n0"), Some(Status::Dead));
        assert_eq!(m.parent(), Some("n1"));
        let out = m.handle(
            request("n2", 3, Payload::Broadcast { message: 4.into() }),
            ms(6),
        );
        let to: Vec<_> = sent(&out)
            .iter()
            .map(|(d, g)| (*d, g.parent, g.probe))
            .collect();
        assert_eq!(
            to,
            [("n1", true, true)],
            "the new parent is asked for its ack at once"
        );
    }
}
