//! The nemesis: which faults a test injects, and the running state of those in force.
//! Maelstrom's nemesis only partitions (docs/maelstrom-compatibility.md 4); pause, crash,
//! crash-restart, link loss, duplication, CPU starvation and stalled output are ours. Each
//! nemesis op starts a random fault of the test's list if it is not in force and stops it
//! if it is; the network holds the partition, the lost links and the duplication, the
//! nemesis holds who is paused, crashed, starved or stalled.

pub mod shapes;

use std::collections::BTreeSet;
use std::fmt;

use std::time::Duration;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::edn::Edn;
use crate::history::{OpType, Process};
use crate::net::Grudge;
use crate::record::{Action, Env};
use shapes::PartitionSpec;

/// A fault the nemesis injects. Only `Partition` exists in Maelstrom; the others are our
/// extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    Partition,
    Pause,
    Crash,
    /// One-way link loss: some nodes stop hearing one node, or it stops hearing them.
    LinkLoss,
    /// Messages between nodes are delivered twice, the copy usually late.
    Duplicate,
    /// A node is killed, and started again, empty, at the next nemesis op (drivers that
    /// can start a node again only: `--transport tcp`).
    CrashRestart,
    /// A node starved of CPU: stopped and resumed every few tens of milliseconds until the
    /// next op.
    Starve,
    /// The runner stops reading one node's stdout until the next op: its pipe fills.
    StallOutput,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Partition,
        Fault::Pause,
        Fault::Crash,
        Fault::LinkLoss,
        Fault::Duplicate,
        Fault::CrashRestart,
        Fault::Starve,
        Fault::StallOutput,
    ];

    /// The name `--nemesis` takes.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Pause => "pause",
            Fault::Crash => "crash",
            Fault::LinkLoss => "link-loss",
            Fault::Duplicate => "duplicate",
            Fault::CrashRestart => "crash-restart",
            Fault::Starve => "starve",
            Fault::StallOutput => "stall-output",
        }
    }
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown nemesis fault {s:?} (partition; ours: pause, crash, crash-restart, link-loss, duplicate, starve, stall-output)"
                )
            })
    }
}

/// `--nemesis`: a comma-separated list of faults, or `none` (ours) for no nemesis.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults(pub Vec<Fault>);

impl std::str::FromStr for Faults {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(Faults::default());
        }
        s.split(',')
            .map(|f| f.trim().parse())
            .collect::<Result<_, _>>()
            .map(Faults)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.0.iter().map(|fault| fault.name()).collect();
        f.write_str(&names.join(","))
    }
}

/// Mixed into the test's seed for the nemesis's draws (the network's are mixed likewise,
/// `harness`).
const NEMESIS_STREAM: u64 = 0x6e65_6d65;

/// How long a starved node is stopped, then let run, each time: a uniform draw in these
/// ranges. It runs about a tenth of the time, in slices of a few ms, and many of its stops
/// are long enough (over 100 ms) for its failure detector to notice (src/machine/probing.rs).
const STARVE_STOPPED_MS: std::ops::Range<u64> = 20..300;
const STARVE_RUNNING_MS: std::ops::Range<u64> = 5..30;

/// The node the starve fault holds: whether it is stopped now, and when that flips.
#[derive(Clone, Debug)]
struct Starving {
    node: String,
    stopped: bool,
    next: Duration,
}

/// The nemesis of one test: its faults, and the nodes it paused or crashed.
#[derive(Clone, Debug)]
pub struct Nemesis {
    /// The nemesis's own draws (which fault, shape, node, when next), apart from the
    /// clients': they depend on the seed alone, so the simulation and a run through
    /// processes, whose clients draw at different moments, fault the same nodes at the
    /// same times.
    rng: ChaCha8Rng,
    faults: Vec<Fault>,
    nodes: Vec<String>,
    paused: BTreeSet<String>,
    /// Nodes paused at some point: their late replies to closed clients are forgiven.
    ever_paused: BTreeSet<String>,
    crashed: BTreeSet<String>,
    /// The node a crash kills, if chosen in advance (`TestOptions::crash_target`).
    crash_target: Option<String>,
    /// The node crash-restart killed, started again at the next nemesis op.
    down: Option<String>,
    starving: Option<Starving>,
    /// The node whose stdout the driver does not read.
    stalled: Option<String>,
}

impl Nemesis {
    pub fn new(faults: &[Fault], nodes: &[String], seed: u64) -> Self {
        Nemesis {
            rng: ChaCha8Rng::seed_from_u64(seed ^ NEMESIS_STREAM),
            faults: faults.to_vec(),
            nodes: nodes.to_vec(),
            paused: BTreeSet::new(),
            ever_paused: BTreeSet::new(),
            crashed: BTreeSet::new(),
            crash_target: None,
            down: None,
            starving: None,
            stalled: None,
        }
    }

    /// The nemesis's draws, which also space its ops (`Schedule::nemesis_done`).
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Crashes kill `node` rather than a random live node (while it is live).
    pub fn with_crash_target(mut self, node: Option<String>) -> Self {
        self.crash_target = node;
        self
    }

    pub fn is_crashed(&self, node: &str) -> bool {
        self.crashed.contains(node)
    }

    pub fn was_paused(&self, node: &str) -> bool {
        self.ever_paused.contains(node)
    }

    pub fn paused_count(&self) -> usize {
        self.paused.len()
    }

    /// When the starved node is next stopped or resumed, if one is starved.
    pub fn next_toggle(&self) -> Option<Duration> {
        self.starving.as_ref().map(|s| s.next)
    }

    /// Stops or resumes the starved node if its time has come. A node the pause fault holds
    /// is left stopped; a crashed one ends the starvation.
    pub fn toggle(&mut self, env: &mut Env) {
        let Some(s) = self.starving.as_mut() else {
            return;
        };
        if s.next > env.now {
            return;
        }
        if self.crashed.contains(&s.node) {
            self.starving = None;
            return;
        }
        s.stopped = !s.stopped;
        let ms = match s.stopped {
            true => STARVE_STOPPED_MS,
            false => STARVE_RUNNING_MS,
        };
        s.next = env.now + Duration::from_millis(self.rng.random_range(ms));
        if !self.paused.contains(&s.node) {
            let target = vec![s.node.clone()];
            env.act(match s.stopped {
                true => Action::Pause(target),
                false => Action::Resume(target),
            });
        }
    }

    /// One nemesis op: a random fault, started if inactive, stopped if active; but a node
    /// that crash-restart killed is started again first, and that is the op.
    pub fn op(&mut self, env: &mut Env) {
        if self.restart(env) {
            return;
        }
        let fault = *self
            .faults
            .choose(&mut self.rng)
            .expect("nemesis has faults");
        let live: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !self.crashed.contains(*n))
            .cloned()
            .collect();
        match fault {
            Fault::Partition if env.net.is_partitioned() => heal(env),
            Fault::Partition => {
                let spec = PartitionSpec::random(&mut self.rng);
                let grudge = shapes::grudge(spec, &self.nodes, &mut self.rng);
                env.net.partition(&grudge);
                env.act(Action::Partition(grudge.clone()));
                record(
                    env,
                    "start-partition",
                    Edn::kw(spec.keyword()),
                    Edn::Vector(vec![Edn::kw("isolated"), grudge_edn(&grudge)]),
                );
            }
            Fault::LinkLoss if env.net.links_lost() => restore_links(env),
            Fault::LinkLoss => {
                let lost = shapes::lost_links(&self.nodes, &mut self.rng);
                env.net.lose_links(&lost);
                env.act(Action::LoseLinks(lost.clone()));
                record(
                    env,
                    "start-link-loss",
                    grudge_edn(&lost),
                    Edn::kw("links-lost"),
                );
            }
            Fault::Duplicate if env.net.is_duplicating() => stop_duplicating(env),
            Fault::Duplicate => {
                env.net.set_duplicating(true);
                record(env, "start-duplication", Edn::Nil, Edn::kw("duplicating"));
            }
            Fault::Starve if self.starving.is_some() => self.stop_starving(env),
            Fault::Starve => {
                let Some(node) = self.free_node(&live) else {
                    return;
                };
                let target = [node.clone()];
                record(
                    env,
                    "start-starve",
                    nodes_edn(&target),
                    outcome_edn(&target, "starving"),
                );
                self.ever_paused.insert(node.clone());
                self.starving = Some(Starving {
                    node,
                    stopped: false,
                    next: env.now,
                });
                self.toggle(env);
            }
            Fault::StallOutput if self.stalled.is_some() => self.stop_stall(env),
            Fault::StallOutput => {
                let Some(node) = self.free_node(&live) else {
                    return;
                };
                let target = [node.clone()];
                record(
                    env,
                    "start-stall-output",
                    nodes_edn(&target),
                    outcome_edn(&target, "stalled"),
                );
                // Its replies come late: to clients that gave up, they are forgiven.
                self.ever_paused.insert(node.clone());
                self.stalled = Some(node.clone());
                env.act(Action::StallOutput(node));
            }
            Fault::Pause if !self.paused.is_empty() => self.resume_all(env),
            Fault::Pause if live.is_empty() => {}
            Fault::Pause => {
                let targets = shapes::pause_targets(&live, &mut self.rng);
                record(
                    env,
                    "pause",
                    nodes_edn(&targets),
                    outcome_edn(&targets, "paused"),
                );
                self.paused.extend(targets.iter().cloned());
                self.ever_paused.extend(targets.iter().cloned());
                env.act(Action::Pause(targets));
            }
            Fault::Crash if !self.crashed.is_empty() || live.is_empty() => {}
            Fault::CrashRestart if live.is_empty() => {}
            Fault::Crash | Fault::CrashRestart => {
                let node = match &self.crash_target {
                    Some(t) if live.contains(t) => t.clone(),
                    _ => live.choose(&mut self.rng).expect("non-empty").clone(),
                };
                let target = [node.clone()];
                record(
                    env,
                    "kill",
                    nodes_edn(&target),
                    outcome_edn(&target, "killed"),
                );
                self.crashed.insert(node.clone());
                self.paused.remove(&node);
                if fault == Fault::CrashRestart {
                    self.down = Some(node.clone());
                }
                env.act(Action::Kill(node));
            }
        }
    }

    /// Before the final phase: heals the partition (recorded even if none is in force, as
    /// Maelstrom's final generator does), and ends our faults that are in force.
    pub fn stop_all(&mut self, env: &mut Env) {
        if self.faults.contains(&Fault::Partition) {
            heal(env);
        }
        if env.net.links_lost() {
            restore_links(env);
        }
        if env.net.is_duplicating() {
            stop_duplicating(env);
        }
        if !self.paused.is_empty() {
            self.resume_all(env);
        }
        if self.starving.is_some() {
            self.stop_starving(env);
        }
        if self.stalled.is_some() {
            self.stop_stall(env);
        }
        self.restart(env);
    }

    /// A random live node that no pause, starvation or stall holds.
    fn free_node(&mut self, live: &[String]) -> Option<String> {
        let free: Vec<&String> = live
            .iter()
            .filter(|n| {
                !self.paused.contains(*n)
                    && self.stalled.as_ref() != Some(*n)
                    && self.starving.as_ref().is_none_or(|s| s.node != **n)
            })
            .collect();
        free.choose(&mut self.rng).map(|n| (*n).clone())
    }

    fn stop_starving(&mut self, env: &mut Env) {
        let Some(s) = self.starving.take() else {
            return;
        };
        let target = [s.node.clone()];
        record(
            env,
            "stop-starve",
            nodes_edn(&target),
            outcome_edn(&target, "resumed"),
        );
        if s.stopped && !self.paused.contains(&s.node) && !self.crashed.contains(&s.node) {
            env.act(Action::Resume(target.to_vec()));
        }
    }

    fn stop_stall(&mut self, env: &mut Env) {
        let Some(node) = self.stalled.take() else {
            return;
        };
        let target = [node.clone()];
        record(
            env,
            "stop-stall-output",
            nodes_edn(&target),
            outcome_edn(&target, "draining"),
        );
        env.act(Action::DrainOutput(node));
    }

    /// Starts again the node crash-restart killed, if any.
    fn restart(&mut self, env: &mut Env) -> bool {
        let Some(node) = self.down.take() else {
            return false;
        };
        let target = [node.clone()];
        record(
            env,
            "start",
            nodes_edn(&target),
            outcome_edn(&target, "started"),
        );
        self.crashed.remove(&node);
        env.act(Action::Restart(node));
        true
    }

    fn resume_all(&mut self, env: &mut Env) {
        let paused: Vec<String> = std::mem::take(&mut self.paused).into_iter().collect();
        record(
            env,
            "resume",
            nodes_edn(&paused),
            outcome_edn(&paused, "resumed"),
        );
        env.act(Action::Resume(paused));
    }
}

fn heal(env: &mut Env) {
    env.net.heal();
    env.act(Action::Heal);
    record(env, "stop-partition", Edn::Nil, Edn::kw("network-healed"));
}

fn restore_links(env: &mut Env) {
    env.net.restore_links();
    env.act(Action::RestoreLinks);
    record(env, "stop-link-loss", Edn::Nil, Edn::kw("links-restored"));
}

fn stop_duplicating(env: &mut Env) {
    env.net.set_duplicating(false);
    record(env, "stop-duplication", Edn::Nil, Edn::kw("stopped"));
}

/// A nemesis op as Jepsen records it: an info invocation and an info completion.
fn record(env: &mut Env, f: &str, value: Edn, result: Edn) {
    env.note(format!("nemesis :{f} {value} -> {result}"));
    for value in [value, result] {
        env.op(Process::Nemesis, OpType::Info, f, value);
    }
}

/// `["n1" "n2"]`
fn nodes_edn(nodes: &[String]) -> Edn {
    Edn::Vector(nodes.iter().map(|n| Edn::Str(n.clone())).collect())
}

/// `{"n1" :paused, "n2" :paused}`
fn outcome_edn(nodes: &[String], outcome: &str) -> Edn {
    Edn::Map(
        nodes
            .iter()
            .map(|n| (Edn::Str(n.clone()), Edn::kw(outcome)))
            .collect(),
    )
}

/// A grudge as the nemesis records it: {receiver #{sender ...} ...}.
fn grudge_edn(grudge: &Grudge) -> Edn {
    Edn::Map(
        grudge
            .iter()
            .map(|(k, v)| {
                (
                    Edn::Str(k.clone()),
                    Edn::Set(v.iter().map(|s| Edn::Str(s.clone())).collect()),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{LatencyDist, Network};
    use crate::record::Record;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::time::Duration;

    /// A network of `n` nodes, a random source and a record, for a nemesis to act on.
    fn world(n: usize) -> (Env, Vec<String>) {
        let nodes: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let mut net = Network::new(0, LatencyDist::Constant, ChaCha8Rng::seed_from_u64(1));
        nodes.iter().for_each(|node| net.register(node));
        let env = Env {
            now: Duration::from_secs(1),
            net,
            rng: ChaCha8Rng::seed_from_u64(2),
            record: Record::default(),
        };
        (env, nodes)
    }

    /// The history's `:f`s, one per nemesis op (invocation and completion are alike).
    fn fs(env: &Env) -> Vec<&str> {
        let ops = &env.record.history;
        ops.iter().step_by(2).map(|op| op.f.as_str()).collect()
    }

    fn take_actions(env: &mut Env) -> Vec<Action> {
        std::mem::take(&mut env.record.actions)
    }

    #[test]
    fn each_op_starts_a_fault_or_stops_it() {
        let (mut env, nodes) = world(5);
        let mut nemesis = Nemesis::new(&[Fault::Partition], &nodes, 0);
        nemesis.op(&mut env);
        assert!(env.net.is_partitioned());
        assert!(matches!(take_actions(&mut env)[..], [Action::Partition(_)]));
        nemesis.op(&mut env);
        assert!(!env.net.is_partitioned());
        assert_eq!(take_actions(&mut env), vec![Action::Heal]);
        assert_eq!(fs(&env), ["start-partition", "stop-partition"]);
        assert!(env.record.history.iter().all(|op| op.kind == OpType::Info));
        assert_eq!(env.record.log.len(), 2, "one log line per op");
    }

    #[test]
    fn a_partition_that_cuts_nothing_is_in_force_all_the_same() {
        // A third of 3 nodes is nobody: the minority-third grudge is empty.
        let (mut env, nodes) = world(3);
        let mut nemesis = Nemesis::new(&[Fault::Partition], &nodes, 0);
        let mut cut_nothing = 0;
        for _ in 0..20 {
            nemesis.op(&mut env);
            let empty =
                matches!(&take_actions(&mut env)[..], [Action::Partition(g)] if g.is_empty());
            cut_nothing += usize::from(empty);
        }
        assert!(cut_nothing > 0);
        let fs = fs(&env);
        assert!(
            fs.chunks(2)
                .all(|c| c == ["start-partition", "stop-partition"])
        );
    }

    #[test]
    fn stop_all_ends_every_fault_in_force_before_the_final_phase() {
        let (mut env, nodes) = world(5);
        let mut nemesis = Nemesis::new(&[Fault::Pause, Fault::Partition], &nodes, 0);
        while nemesis.paused_count() == 0 {
            nemesis.op(&mut env);
        }
        env.net
            .lose_links(&Grudge::from([("n1".into(), ["n2".into()].into())]));
        env.net.set_duplicating(true);
        env.net.heal();
        env.record = Record::default();
        nemesis.stop_all(&mut env);
        assert_eq!(
            fs(&env),
            [
                "stop-partition",
                "stop-link-loss",
                "stop-duplication",
                "resume"
            ],
            "stop-partition is recorded even with no partition in force"
        );
        assert!(!env.net.is_partitioned() && !env.net.links_lost() && !env.net.is_duplicating());
        assert_eq!(nemesis.paused_count(), 0);
        assert!(matches!(
            take_actions(&mut env).last(),
            Some(Action::Resume(_))
        ));
        env.record = Record::default();
        nemesis.stop_all(&mut env);
        assert_eq!(fs(&env), ["stop-partition"], "nothing else is in force");
    }

    #[test]
    fn a_crash_is_for_good_and_ends_a_pause() {
        let (mut env, nodes) = world(3);
        let mut pauses = Nemesis::new(&[Fault::Pause], &nodes, 0);
        pauses.op(&mut env);
        let Some(Action::Pause(paused)) = take_actions(&mut env).pop() else {
            panic!("paused")
        };
        let mut nemesis = Nemesis {
            faults: vec![Fault::Crash],
            ..pauses
        };
        nemesis.op(&mut env);
        let Some(Action::Kill(node)) = take_actions(&mut env).pop() else {
            panic!("killed")
        };
        assert!(nemesis.is_crashed(&node));
        let still_paused = paused.iter().filter(|n| **n != node).count();
        assert_eq!(nemesis.paused_count(), still_paused);
        assert!(paused.iter().all(|n| nemesis.was_paused(n)));
        nemesis.op(&mut env);
        assert!(take_actions(&mut env).is_empty(), "one crash per test");
    }

    #[test]
    fn crash_restart_starts_the_node_again_at_the_next_op() {
        let (mut env, nodes) = world(3);
        let mut nemesis = Nemesis::new(&[Fault::CrashRestart], &nodes, 0);
        nemesis.op(&mut env);
        let Some(Action::Kill(node)) = take_actions(&mut env).pop() else {
            panic!("killed")
        };
        assert!(nemesis.is_crashed(&node));
        nemesis.op(&mut env);
        assert_eq!(take_actions(&mut env), vec![Action::Restart(node.clone())]);
        assert!(!nemesis.is_crashed(&node));
        nemesis.op(&mut env);
        assert!(matches!(take_actions(&mut env)[..], [Action::Kill(_)]));
        nemesis.stop_all(&mut env);
        assert!(matches!(take_actions(&mut env)[..], [Action::Restart(_)]));
        assert_eq!(fs(&env), ["kill", "start", "kill", "start"]);
    }

    #[test]
    fn starve_stops_and_resumes_one_node_until_the_next_op() {
        let (mut env, nodes) = world(5);
        let mut nemesis = Nemesis::new(&[Fault::Starve], &nodes, 0);
        nemesis.op(&mut env);
        let Some(Action::Pause(target)) = take_actions(&mut env).pop() else {
            panic!("stopped at once")
        };
        assert!(nemesis.was_paused(&target[0]), "late replies are forgiven");
        let mut toggles = Vec::new();
        for _ in 0..40 {
            env.now = nemesis.next_toggle().expect("starving");
            nemesis.toggle(&mut env);
            toggles.extend(take_actions(&mut env));
        }
        let gone = env.now - Duration::from_secs(1);
        assert!(gone < Duration::from_secs(40 * 300 / 1000), "{gone:?}");
        for (i, action) in toggles.iter().enumerate() {
            match (i % 2, action) {
                (0, Action::Resume(n)) | (1, Action::Pause(n)) => assert_eq!(*n, target),
                _ => panic!("not alternating: {toggles:?}"),
            }
        }
        // 40 toggles: the node is stopped again; stopping the fault resumes it.
        nemesis.op(&mut env);
        assert_eq!(take_actions(&mut env), vec![Action::Resume(target.clone())]);
        assert_eq!(nemesis.next_toggle(), None);
        assert_eq!(fs(&env), ["start-starve", "stop-starve"]);
    }

    #[test]
    fn stall_output_holds_one_node_until_the_next_op_or_the_end() {
        let (mut env, nodes) = world(3);
        let mut nemesis = Nemesis::new(&[Fault::StallOutput], &nodes, 0);
        nemesis.op(&mut env);
        let Some(Action::StallOutput(node)) = take_actions(&mut env).pop() else {
            panic!("stalled")
        };
        assert!(nemesis.was_paused(&node));
        nemesis.stop_all(&mut env);
        assert_eq!(take_actions(&mut env), vec![Action::DrainOutput(node)]);
        assert_eq!(fs(&env), ["start-stall-output", "stop-stall-output"]);
    }

    #[test]
    fn fault_lists() {
        assert_eq!("none".parse(), Ok(Faults::default()));
        let faults: Faults = "starve,stall-output".parse().unwrap();
        assert_eq!(faults.0, [Fault::Starve, Fault::StallOutput]);
        let faults: Faults = "partition, link-loss".parse().unwrap();
        assert_eq!(faults.0, [Fault::Partition, Fault::LinkLoss]);
        assert_eq!(faults.to_string(), "partition,link-loss");
        assert_eq!(Faults::default().to_string(), "none");
        assert!("partition,bogus".parse::<Faults>().is_err());
    }
}
