//! One simulated run of our node, checked with the runner's checkers, plus the failure
//! detector's figures: how long until a crashed, paused or isolated node is dead at every
//! node that can still see a majority, how long until it is alive again after it comes
//! back, false suspicions and deaths, and what is sent to a dead node.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use maelstrom::checker::{Validity, check_all};
use maelstrom::driver::sim::{Observer, SimNode, simulate_observed};
use maelstrom::harness::{Outcome, RECOVERY};
use maelstrom::options::TestOptions;
use maelstrom::record::Action;
use serde_json::{Value, json};

use super::phases::{self, Phases};
use super::{Kind, NodeSim, Sent, Ticks, Wire};
use crate::config::Config;
use crate::gossip::Why;
use crate::membership::Status;

/// The figures of one seed.
#[derive(Clone, Debug)]
pub struct Figures {
    pub seed: u64,
    pub valid: Validity,
    pub lost_count: usize,
    pub msgs_per_op: f64,
    pub stable_median_ms: i64,
    pub stable_max_ms: i64,
    pub wall_ms: u128,
    /// Per fault that lasted until detection: fault start → dead everywhere it should be.
    pub detection_ms: Vec<u64>,
    /// Faults that ended before they were detected (a crash never ends: never detected).
    pub undetected: usize,
    /// Of those, the ones that lasted `DETECTION_TARGET` or longer: not detected in time,
    /// where the others merely ended first.
    pub missed: usize,
    /// Per fault end: heal/resume → alive again everywhere.
    pub revival_ms: Vec<u64>,
    /// Faults after which the node never came back alive everywhere.
    pub not_revived: usize,
    /// Revivals cut short: the node came under a new fault before everyone saw it back.
    pub revival_cut_short: usize,
    /// Status changes to suspected / dead of a node that was under no fault, while the
    /// network was whole (no partition, lost links or lossy window): the detector's
    /// mistakes.
    pub false_suspicions: usize,
    pub false_deaths: usize,
    /// Every status change any node saw: (time, observer, peer, status), for `--timeline`.
    pub timeline: Vec<(Duration, String, String, Status)>,
    /// Messages per second sent to a crashed node after it was dead everywhere, and how
    /// many of them were not probes.
    pub msgs_to_dead_per_s: Option<f64>,
    pub non_probes_to_dead: usize,
    /// Node-to-node messages per second over the last half of the recovery before the
    /// final reads (nothing new written, the network whole): what an idle cluster sends.
    /// `None` for workloads without a final phase.
    pub idle_msgs_per_s: Option<f64>,
    /// FNV-1a of the history as EDN, when asked for (`Measure::digest`): equal across
    /// binaries iff the histories are equal.
    pub history_digest: Option<String>,
    /// The most bytes of values one node-to-node message carried.
    pub max_values_bytes: usize,
    /// The busiest node: the most node-to-node messages one node sent per second over the
    /// whole run, and which node it was.
    pub busiest_msgs_per_s: f64,
    pub busiest: String,
    /// Msgs-per-op split by what the messages were for (`Kind::ALL` order): where they go.
    pub msgs_per_op_by_kind: [f64; 5],
    /// The same split by phase of the partitions (`Phase::ALL` order).
    pub by_phase: Phases,
    /// Deliveries and ticks the nodes handled: what the simulation cost (not a figure of
    /// the run itself; `Ticks::Busy` leaves out most ticks).
    pub handled: u64,
}

impl Figures {
    /// Valid, and no value lost.
    pub fn passed(&self) -> bool {
        self.valid == Validity::True && self.lost_count == 0
    }

    pub fn to_json(&self) -> Value {
        json!({
            "seed": self.seed,
            "valid": self.valid.to_json(),
            "lost_count": self.lost_count,
            "msgs_per_op": (self.msgs_per_op * 1000.0).round() / 1000.0,
            "stable_latency_ms": {"median": self.stable_median_ms, "max": self.stable_max_ms},
            "wall_ms": self.wall_ms,
            "detection_ms": self.detection_ms,
            "undetected": self.undetected,
            "missed": self.missed,
            "revival_ms": self.revival_ms,
            "not_revived": self.not_revived,
            "revival_cut_short": self.revival_cut_short,
            "false_suspicions": self.false_suspicions,
            "false_deaths": self.false_deaths,
            "msgs_to_dead_per_s": self.msgs_to_dead_per_s.map(|v| (v * 100.0).round() / 100.0),
            "non_probes_to_dead": self.non_probes_to_dead,
            "busiest": {"node": self.busiest, "msgs_per_s": (self.busiest_msgs_per_s * 10.0).round() / 10.0},
            "msgs_per_op_by_kind": by_kind_json(&self.msgs_per_op_by_kind),
            "history_digest": self.history_digest,
        })
    }
}

/// Msgs-per-op by kind as a JSON object: kind name → msgs-per-op, to 3 decimals.
pub fn by_kind_json(by_kind: &[f64; 5]) -> Value {
    Kind::ALL
        .iter()
        .zip(by_kind)
        .map(|(k, v)| (k.name().to_string(), json!((v * 1000.0).round() / 1000.0)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The failure detector's maximum detection time (docs/failure-detector.md, Targets): a
/// fault that lasts this long undetected was missed.
const DETECTION_TARGET: Duration = Duration::from_secs(6);

/// How long after a fault its consequences may still be arriving (the revival bound).
const SETTLE: Duration = Duration::from_secs(5);

/// A fault against one node: when it started and (unless it is a crash) ended.
#[derive(Clone, Debug)]
struct Fault {
    node: String,
    start: Duration,
    end: Option<Duration>,
    cause: Cause,
}

/// What ends a fault: nothing, a resume, or a heal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Crash,
    Pause,
    /// A partition that cuts the node off from everyone else.
    Isolation,
}

/// Records every status change every node sees, and the faults the nemesis injects.
#[derive(Default)]
struct Watch {
    /// Per node (by index), its status-change count when last looked at.
    seen: Vec<Option<u64>>,
    /// Per node (by index), how it saw each of `nodes` when last looked at.
    status: Vec<Vec<Status>>,
    /// (time, observer, peer, new status)
    changes: Vec<(Duration, String, String, Status)>,
    faults: Vec<Fault>,
    nodes: Vec<String>,
    /// When the network was partitioned: (start, end).
    partitions: Vec<(Duration, Option<Duration>)>,
    /// Who stopped hearing whom when each partition began: (start, node, senders it no
    /// longer hears).
    cuts: Vec<(Duration, String, BTreeSet<String>)>,
    /// When links were lost one way: (start, end).
    link_losses: Vec<(Duration, Option<Duration>)>,
    /// When the network dropped and held back messages (the lossy option): (start, end).
    lossy: Vec<(Duration, Option<Duration>)>,
}

impl Watch {
    /// Changes to `status` seen while neither the observer nor the peer was under a fault,
    /// nor had been for `SETTLE`, and the network was whole and had been for `SETTLE`.
    /// (Right after a fault, nodes that were cut off still learn the verdicts reached
    /// meanwhile.)
    fn false_changes(&self, status: Status) -> usize {
        let near = |start: Duration, end: Option<Duration>, t: Duration| {
            start <= t && end.is_none_or(|e| t < e + SETTLE)
        };
        self.changes
            .iter()
            .filter(|(t, observer, peer, s)| {
                *s == status
                    && !self.faults.iter().any(|f| {
                        (f.node == *peer || f.node == *observer) && near(f.start, f.end, *t)
                    })
                    && !self
                        .partitions
                        .iter()
                        .chain(&self.link_losses)
                        .chain(&self.lossy)
                        .any(|(a, b)| near(*a, *b, *t))
            })
            .count()
    }

    fn open(&mut self, node: &str, now: Duration, cause: Cause) {
        self.faults.push(Fault {
            node: node.to_string(),
            start: now,
            end: None,
            cause,
        });
    }

    /// Ends the open faults of this cause (of `node`, or of every node).
    fn close(&mut self, node: Option<&str>, now: Duration, cause: Cause) {
        for f in &mut self.faults {
            if f.cause == cause && f.end.is_none() && node.is_none_or(|n| n == f.node) {
                f.end = Some(now);
            }
        }
    }
}

impl Observer for Watch {
    fn after(&mut self, index: usize, node: &str, sim: &dyn SimNode, now: Duration) {
        let Some(sim) = (sim as &dyn std::any::Any).downcast_ref::<NodeSim>() else {
            return;
        };
        let count = sim.machine.status_changes();
        if self.seen.len() <= index {
            self.seen.resize(index + 1, None);
            self.status.resize(index + 1, Vec::new());
        }
        if self.seen[index] == Some(count) {
            return;
        }
        self.seen[index] = Some(count);
        let seen = &mut self.status[index];
        seen.resize(self.nodes.len(), Status::Alive);
        for (peer, was) in self.nodes.iter().zip(seen) {
            let Some(status) = sim.machine.status(peer) else {
                continue;
            };
            if *was != status {
                *was = status;
                self.changes
                    .push((now, node.to_string(), peer.clone(), status));
            }
        }
    }

    fn action(&mut self, action: &Action, now: Duration) {
        match action {
            Action::Kill(node) => self.open(node, now, Cause::Crash),
            Action::Restart(node) => {
                self.close(Some(node), now, Cause::Crash);
                // The new life counts its status changes from zero.
                if let Some(i) = self.nodes.iter().position(|n| n == node) {
                    self.seen[i] = None;
                }
            }
            Action::Pause(nodes) => nodes.iter().for_each(|n| self.open(n, now, Cause::Pause)),
            Action::Resume(nodes) => nodes
                .iter()
                .for_each(|n| self.close(Some(n), now, Cause::Pause)),
            Action::Partition(grudge) => {
                self.partitions.push((now, None));
                for (node, senders) in grudge {
                    self.cuts.push((now, node.clone(), senders.clone()));
                }
                // An isolating partition: one node cut off from everyone else.
                for (node, senders) in grudge {
                    if senders.len() + 1 == self.nodes.len() {
                        self.open(node, now, Cause::Isolation);
                    }
                }
            }
            Action::Heal => {
                if let Some((_, end)) = self.partitions.last_mut() {
                    end.get_or_insert(now);
                }
                // Pauses outlast it: only a resume ends them.
                self.close(None, now, Cause::Isolation);
            }
            Action::LoseLinks(_) => self.link_losses.push((now, None)),
            Action::RestoreLinks => {
                if let Some((_, end)) = self.link_losses.last_mut() {
                    end.get_or_insert(now);
                }
            }
            Action::Deliver { .. }
            | Action::StallOutput(_)
            | Action::DrainOutput(_)
            | Action::Teardown => {}
        }
    }
}

/// How a run is carried out and what it measures beyond the figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measure {
    /// How messages between nodes travel.
    pub wire: Wire,
    /// Which ticks the nodes are given.
    pub ticks: Ticks,
    /// Also hash the whole history (`history_digest`): under a tenth of a short run's time.
    pub digest: bool,
}

/// Runs one seed and measures it.
pub fn run(opts: &TestOptions, config: &Config) -> Figures {
    run_on(opts, config, Measure::default())
}

/// Runs one seed as `measure` says, and measures it.
pub fn run_on(opts: &TestOptions, config: &Config, measure: Measure) -> Figures {
    run_keeping_outcome(opts, config, measure).0
}

/// Runs one seed as `measure` says and measures it; also returns the run itself (to
/// write it to a store).
pub fn run_keeping_outcome(
    opts: &TestOptions,
    config: &Config,
    measure: Measure,
) -> (Figures, Outcome) {
    let started = Instant::now();
    let mut watch = Watch {
        nodes: opts.nodes.clone(),
        lossy: opts
            .lossy
            .iter()
            .map(|l| (Duration::ZERO, Some(l.until)))
            .collect(),
        ..Watch::default()
    };
    let mut factory = NodeSim::factory_with(config, measure.wire, measure.ticks);
    let mut collector = Collector {
        watch: &mut watch,
        sent: vec![Vec::new(); opts.nodes.len()],
        probes: Vec::new(),
        handled: 0,
    };
    let outcome = simulate_observed(opts, &mut factory, &mut collector);
    let handled = collector.handled;
    let sent: BTreeMap<String, Vec<Sent>> =
        opts.nodes.iter().cloned().zip(collector.sent).collect();
    let probes = collector.probes;
    let wall_ms = started.elapsed().as_millis();
    let results = check_all(opts.workload, &outcome.history, &outcome.net, None);
    let faults = measure_faults(&watch, &sent, outcome.end);
    let mut figures = Figures {
        seed: opts.seed,
        valid: results.valid,
        lost_count: results.lost_count.unwrap_or(0),
        msgs_per_op: results.msgs_per_op.unwrap_or(0.0),
        stable_median_ms: results.stable_latency_ms.map_or(0, |q| q.median),
        stable_max_ms: results.stable_latency_ms.map_or(0, |q| q.max),
        wall_ms,
        detection_ms: faults.detection_ms,
        undetected: faults.undetected,
        missed: faults.missed,
        revival_ms: faults.revival_ms,
        not_revived: faults.not_revived,
        revival_cut_short: faults.revival_cut_short,
        false_suspicions: watch.false_changes(Status::Suspected),
        false_deaths: watch.false_changes(Status::Dead),
        timeline: watch.changes.clone(),
        msgs_to_dead_per_s: faults.msgs_to_dead_per_s,
        non_probes_to_dead: faults.non_probes_to_dead,
        idle_msgs_per_s: opts
            .workload
            .has_final()
            .then(|| idle_rate(&sent, outcome.end)),
        history_digest: measure.digest.then(|| digest(&outcome.history)),
        max_values_bytes: 0,
        busiest_msgs_per_s: 0.0,
        busiest: String::new(),
        msgs_per_op_by_kind: [0.0; 5], // from `by_phase`, below
        by_phase: phases::split(
            &sent,
            &probes,
            &watch.partitions,
            &watch.cuts,
            outcome.end,
            results.msgs_per_op.unwrap_or(0.0),
        ),
        handled,
    };
    figures.msgs_per_op_by_kind =
        std::array::from_fn(|k| figures.by_phase.iter().map(|p| p.by_kind[k]).sum());
    if let Some((node, log)) = sent.iter().max_by_key(|(_, log)| log.len()) {
        figures.busiest = node.clone();
        figures.busiest_msgs_per_s = log.len() as f64 / outcome.end.as_secs_f64().max(1e-3);
    }
    figures.max_values_bytes = sent
        .values()
        .flatten()
        .map(|s| s.values_bytes)
        .max()
        .unwrap_or(0);
    (figures, outcome)
}

/// An FNV-1a hash of the history as EDN: two runs with the same digest had the same history.
/// (Hashed as it is written: the text is never built.)
fn digest(history: &[maelstrom::history::Op]) -> String {
    let mut hash = Fnv1a(0xcbf2_9ce4_8422_2325);
    maelstrom::history::write_history_edn_to(&mut hash, history).expect("hashing never fails");
    format!("{:016x}", hash.0)
}

/// FNV-1a over the bytes written to it.
struct Fnv1a(u64);

impl std::fmt::Write for Fnv1a {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 = s.bytes().fold(self.0, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Ok(())
    }
}

/// Node-to-node messages per second over the last half of the recovery before `end`.
fn idle_rate(sent: &BTreeMap<String, Vec<Sent>>, end: Duration) -> f64 {
    let idle = RECOVERY / 2;
    let from = end.saturating_sub(idle);
    let count = sent.values().flatten().filter(|s| s.at >= from).count();
    count as f64 / idle.as_secs_f64()
}

/// Forwards observations to the watch and keeps the nodes' send logs (by node index).
struct Collector<'a> {
    watch: &'a mut Watch,
    sent: Vec<Vec<Sent>>,
    /// The probes among them: when, and why.
    probes: Vec<(Duration, Why)>,
    handled: u64,
}

impl Observer for Collector<'_> {
    fn after(&mut self, index: usize, node: &str, sim: &dyn SimNode, now: Duration) {
        self.handled += 1;
        self.watch.after(index, node, sim, now);
        if let Some(sim) = (sim as &dyn std::any::Any).downcast_ref::<NodeSim>() {
            self.sent[index].append(&mut sim.take_sent());
            self.probes.append(&mut sim.take_probes());
        }
    }

    fn action(&mut self, action: &Action, now: Duration) {
        self.watch.action(action, now);
    }
}

/// The first time at or after `from` when every node in `observers` sees `peer` with
/// `wanted` status. An observer that comes under a fault itself after `from` (it is paused
/// or cut off) is no longer waited for from then on.
fn all_see(
    watch: &Watch,
    observers: &BTreeSet<String>,
    peer: &str,
    wanted: Status,
    from: Duration,
    excused: &[(Duration, &str)],
) -> Option<Duration> {
    enum Step<'a> {
        Sees(&'a str, Status),
        Leaves(&'a str),
    }
    let mut steps: Vec<(Duration, Step)> = watch
        .changes
        .iter()
        .filter(|(_, o, p, _)| p == peer && observers.contains(o))
        .map(|(t, o, _, s)| (*t, Step::Sees(o.as_str(), *s)))
        .collect();
    steps.extend(
        watch
            .faults
            .iter()
            .filter(|f| f.start > from && observers.contains(&f.node))
            .map(|f| (f.start, Step::Leaves(f.node.as_str()))),
    );
    steps.extend(
        excused
            .iter()
            .filter(|(t, o)| *t > from && observers.contains(*o))
            .map(|(t, o)| (*t, Step::Leaves(o))),
    );
    steps.sort_by_key(|(t, _)| *t); // stable: a node's own changes keep their order
    let mut status: BTreeMap<&str, Status> = observers
        .iter()
        .map(|o| (o.as_str(), Status::Alive))
        .collect();
    let done = |status: &BTreeMap<&str, Status>| status.values().all(|s| *s == wanted);
    let mut steps = steps.into_iter().peekable();
    while let Some((_, Step::Sees(o, s))) = steps.next_if(|(t, _)| *t < from) {
        status.insert(o, s);
    }
    if done(&status) {
        return Some(from);
    }
    for (t, step) in steps {
        match step {
            Step::Sees(o, s) => {
                if let Some(current) = status.get_mut(o) {
                    *current = s;
                }
            }
            Step::Leaves(o) => {
                status.remove(o);
            }
        }
        if done(&status) {
            return Some(t);
        }
    }
    None
}

/// The figures of the faults of a run (as the fields of `Figures` of the same names).
#[derive(Debug, Default)]
struct FaultFigures {
    detection_ms: Vec<u64>,
    undetected: usize,
    missed: usize,
    revival_ms: Vec<u64>,
    not_revived: usize,
    revival_cut_short: usize,
    msgs_to_dead_per_s: Option<f64>,
    non_probes_to_dead: usize,
}

fn measure_faults(
    watch: &Watch,
    sent: &BTreeMap<String, Vec<Sent>>,
    end: Duration,
) -> FaultFigures {
    let mut figures = FaultFigures::default();
    // Crashed for good (a restarted node watches and is watched again).
    let crashed: BTreeSet<&str> = watch
        .faults
        .iter()
        .filter(|f| f.cause == Cause::Crash && f.end.is_none())
        .map(|f| f.node.as_str())
        .collect();
    for fault in &watch.faults {
        // Who must see it: everyone not crashed and not under a fault at the same time.
        let others_down = |t: Duration| -> BTreeSet<&str> {
            watch
                .faults
                .iter()
                .filter(|f| f.start <= t && f.end.is_none_or(|e| e > t))
                .map(|f| f.node.as_str())
                .collect()
        };
        let down = others_down(fault.start);
        let observers: BTreeSet<String> = watch
            .nodes
            .iter()
            .filter(|n| {
                **n != fault.node && !down.contains(n.as_str()) && !crashed.contains(n.as_str())
            })
            .cloned()
            .collect();
        let detected = all_see(
            watch,
            &observers,
            &fault.node,
            Status::Dead,
            fault.start,
            &[],
        );
        match detected {
            Some(t) if fault.end.is_none_or(|e| t <= e) => figures
                .detection_ms
                .push((t - fault.start).as_millis() as u64),
            _ => {
                figures.undetected += 1;
                let lasted = fault.end.unwrap_or(end).saturating_sub(fault.start);
                if lasted >= DETECTION_TARGET {
                    figures.missed += 1;
                }
            }
        }
        if fault.cause == Cause::Crash
            && let Some(dead_at) = detected
        {
            let to_dead: Vec<&Sent> = sent
                .values()
                .flatten()
                .filter(|s| s.dest == fault.node && s.at > dead_at)
                .filter(|s| fault.end.is_none_or(|back| s.at < back))
                .collect();
            let span = fault
                .end
                .unwrap_or(end)
                .saturating_sub(dead_at)
                .as_secs_f64();
            if span > 0.0 {
                figures.msgs_to_dead_per_s = Some(to_dead.len() as f64 / span);
            }
            figures.non_probes_to_dead += to_dead.iter().filter(|s| !s.probe).count();
        }
        if let Some(back) = fault.end {
            let mut everyone: BTreeSet<String> = watch
                .nodes
                .iter()
                .filter(|n| !crashed.contains(n.as_str()))
                .cloned()
                .collect();
            everyone.remove(&fault.node);
            // A node that a later partition cuts off from it, before it saw it back, cannot
            // see it back: it leaves the count then, as one under a fault of its own does.
            let cut_off: Vec<(Duration, &str)> = watch
                .cuts
                .iter()
                .filter(|(_, _, senders)| senders.contains(&fault.node))
                .map(|(t, o, _)| (*t, o.as_str()))
                .collect();
            // A node paused or cut off again before everyone saw it back cannot come back
            // meanwhile: that revival was cut short, neither slow nor missing.
            let next_fault = watch
                .faults
                .iter()
                .filter(|f| f.node == fault.node && f.start > back)
                .map(|f| f.start)
                .min();
            match all_see(watch, &everyone, &fault.node, Status::Alive, back, &cut_off) {
                Some(t) if next_fault.is_none_or(|next| t <= next) => {
                    figures.revival_ms.push((t - back).as_millis() as u64)
                }
                _ if next_fault.is_some() => figures.revival_cut_short += 1,
                _ => figures.not_revived += 1,
            }
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observer_cut_off_before_it_saw_the_change_leaves_the_count() {
        let ms = Duration::from_millis;
        let mut watch = Watch::default();
        for (t, o) in [(500, "a"), (500, "b")] {
            watch
                .changes
                .push((ms(t), o.to_string(), "x".to_string(), Status::Dead));
        }
        watch
            .changes
            .push((ms(1_200), "a".to_string(), "x".to_string(), Status::Alive));
        let observers: BTreeSet<String> = ["a", "b"].map(String::from).into();
        let back = ms(1_000);
        assert_eq!(
            all_see(&watch, &observers, "x", Status::Alive, back, &[]),
            None,
            "b never sees x back"
        );
        let cut = [(ms(1_100), "b")];
        assert_eq!(
            all_see(&watch, &observers, "x", Status::Alive, back, &cut),
            Some(ms(1_200))
        );
        // Cut off only after it saw the change: the time is when it saw it.
        watch
            .changes
            .push((ms(1_300), "b".to_string(), "x".to_string(), Status::Alive));
        let late_cut = [(ms(1_400), "b")];
        assert_eq!(
            all_see(&watch, &observers, "x", Status::Alive, back, &late_cut),
            Some(ms(1_300))
        );
    }

    #[test]
    fn a_long_fault_never_detected_is_missed_and_a_revival_cut_short_is_neither() {
        let ms = Duration::from_millis;
        let mut watch = Watch {
            nodes: ["a", "b", "x"].map(String::from).to_vec(),
            ..Watch::default()
        };
        let pause = |start, end| Fault {
            node: "x".to_string(),
            start: ms(start),
            end: Some(ms(end)),
            cause: Cause::Pause,
        };
        // Paused 7 s, never judged: missed. Paused 1 s, never judged: it ended first.
        watch.faults.push(pause(0, 7_000));
        watch.faults.push(pause(8_000, 9_000));
        // Judged, resumed, and paused again before anyone saw it back.
        watch.faults.push(pause(20_000, 21_000));
        watch.faults.push(pause(21_100, 22_000));
        let mut see = |t, o: &str, s| watch.changes.push((ms(t), o.to_string(), "x".into(), s));
        see(20_500, "a", Status::Dead);
        see(20_500, "b", Status::Dead);
        see(22_300, "a", Status::Alive);
        see(22_400, "b", Status::Alive);
        let figures = measure_faults(&watch, &BTreeMap::new(), ms(30_000));
        assert_eq!((figures.undetected, figures.missed), (2, 1));
        assert_eq!(figures.detection_ms, [500, 0]);
        assert_eq!(figures.revival_cut_short, 1);
        assert_eq!(figures.revival_ms, [0, 0, 400]);
        assert_eq!(figures.not_revived, 0);
    }
}
