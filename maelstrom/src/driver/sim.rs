//! The simulation driver: the same `Harness`, on a virtual clock, with nodes as in-process
//! state machines behind `SimNode`. Node work takes no virtual time; periodic timers fire
//! at the periods the nodes report (as their ticker tasks would), at a seeded phase. Each
//! tick and each delivery is handled up to `JITTER` late (deliveries in order), as a woken
//! process reads its clock or its stdin a little late. Without that, constant latency and exact periods lock into step: a reply
//! to a batch reaches the sender exactly when its next batch is due, always just after it,
//! which real processes never do. Same options and seed → the same outcome, byte for byte.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::harness::{Harness, Outcome};
use crate::message::{Message, check_envelope};
use crate::options::TestOptions;
use crate::record::Action;

/// A node as a state machine: what it writes when a message arrives or a timer fires.
/// (`Any` lets an observer look at the concrete node it simulates.)
pub trait SimNode: std::any::Any {
    /// A message delivered on the node's stdin; returns the envelopes it writes.
    fn deliver(&mut self, message: &Message, now: Duration) -> Vec<Value>;
    /// The periods of the node's tickers.
    fn timers(&self) -> Vec<Duration>;
    /// Ticker `timer` fired.
    fn fire(&mut self, timer: usize, now: Duration) -> Vec<Value>;
}

/// Watches a simulation from outside (e.g. to measure a failure detector).
pub trait Observer {
    /// Called after `node` handled something at `now`.
    fn after(&mut self, _node: &str, _sim: &dyn SimNode, _now: Duration) {}
    /// Called for every action the harness takes (pauses, kills, deliveries...).
    fn action(&mut self, _action: &Action, _now: Duration) {}
}

/// An observer that watches nothing.
pub struct NoObserver;
impl Observer for NoObserver {}

enum Event {
    Deliver(usize, Message),
    /// Node, timer, and the tick's instant (it is handled a little later).
    Timer(usize, usize, Duration),
}

/// The longest delay between a tick's instant, or a delivery, and its handling.
const JITTER: Duration = Duration::from_millis(1);

struct Slot {
    id: String,
    node: Box<dyn SimNode>,
    periods: Vec<Duration>,
    paused: bool,
    crashed: bool,
    /// Deliveries held while paused, handed over on resume.
    held: Vec<Message>,
    /// When the last delivery queued for it is read: deliveries stay in order.
    read_until: Duration,
}

/// The nodes and the event queue of a simulation.
struct Sim<'a> {
    slots: Vec<Slot>,
    index: HashMap<String, usize>,
    /// (time, sequence) → event; the sequence breaks ties in insertion order.
    queue: BTreeMap<(Duration, u64), Event>,
    seq: u64,
    observer: &'a mut dyn Observer,
    rng: ChaCha8Rng,
}

impl Sim<'_> {
    fn push(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn deliver(&mut self, i: usize, message: Message, now: Duration) {
        if self.slots[i].crashed {
        } else if self.slots[i].paused {
            self.slots[i].held.push(message);
        } else {
            // Read a little late, as from a pipe, but in order.
            let late = Duration::from_nanos(self.rng.random_range(0..JITTER.as_nanos() as u64));
            let at = (now + late).max(self.slots[i].read_until);
            self.slots[i].read_until = at;
            self.push(at, Event::Deliver(i, message));
        }
    }

    fn dispatch(&mut self, actions: Vec<Action>, now: Duration) {
        for action in actions {
            self.observer.action(&action, now);
            match action {
                Action::Deliver { node, message, .. } => {
                    self.deliver(self.index[&node], message, now)
                }
                Action::Pause(nodes) => nodes.iter().for_each(|n| {
                    let i = self.index[n];
                    self.slots[i].paused = true;
                }),
                Action::Resume(nodes) => {
                    for n in nodes {
                        let i = self.index[&n];
                        self.slots[i].paused = false;
                        for message in std::mem::take(&mut self.slots[i].held) {
                            self.push(now, Event::Deliver(i, message));
                        }
                    }
                }
                Action::Kill(node) => {
                    let i = self.index[&node];
                    self.slots[i].crashed = true;
                    self.slots[i].held.clear();
                }
                Action::Partition(_)
                | Action::Heal
                | Action::LoseLinks(_)
                | Action::RestoreLinks
                | Action::Restart(_)
                | Action::Teardown => {}
            }
        }
    }

    /// Queues timer `t` of node `i` for its tick at `instant`, handled a little later.
    fn tick(&mut self, i: usize, t: usize, instant: Duration) {
        let late = Duration::from_nanos(self.rng.random_range(0..JITTER.as_nanos() as u64));
        self.push(instant + late, Event::Timer(i, t, instant));
    }

    /// Runs the next queued event; returns the node and what it wrote.
    fn run(&mut self, now: Duration) -> Option<(usize, Vec<Value>)> {
        let (_, event) = self.queue.pop_first()?;
        match event {
            Event::Deliver(i, message) => {
                let slot = &mut self.slots[i];
                if slot.crashed {
                    return None;
                }
                if slot.paused {
                    slot.held.push(message);
                    return None;
                }
                Some((i, slot.node.deliver(&message, now)))
            }
            Event::Timer(i, t, instant) => {
                if self.slots[i].crashed {
                    return None;
                }
                self.tick(i, t, instant + self.slots[i].periods[t]);
                // A stopped process's tickers do not fire; afterwards they go on.
                let slot = &mut self.slots[i];
                (!slot.paused).then(|| (i, slot.node.fire(t, now)))
            }
        }
    }
}

/// Runs a whole test in virtual time.
pub fn simulate(opts: &TestOptions, factory: &mut dyn FnMut(&str) -> Box<dyn SimNode>) -> Outcome {
    simulate_observed(opts, factory, &mut NoObserver)
}

/// Runs a whole test in virtual time, reporting to `observer`.
pub fn simulate_observed(
    opts: &TestOptions,
    factory: &mut dyn FnMut(&str) -> Box<dyn SimNode>,
    observer: &mut dyn Observer,
) -> Outcome {
    let rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x7369_6d75);
    let slots: Vec<Slot> = opts
        .nodes
        .iter()
        .map(|id| {
            let node = factory(id);
            let periods = node.timers();
            Slot {
                id: id.clone(),
                node,
                periods,
                paused: false,
                crashed: false,
                held: Vec::new(),
                read_until: Duration::ZERO,
            }
        })
        .collect();
    let mut sim = Sim {
        index: opts
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect(),
        slots,
        queue: BTreeMap::new(),
        seq: 0,
        observer,
        rng,
    };
    for i in 0..sim.slots.len() {
        for t in 0..sim.slots[i].periods.len() {
            let period = sim.slots[i].periods[t].as_nanos().max(1) as u64;
            let phase = Duration::from_nanos(sim.rng.random_range(0..period));
            sim.tick(i, t, phase);
        }
    }
    let mut harness = Harness::new(opts);
    let mut now = Duration::ZERO;
    loop {
        sim.dispatch(harness.poll(now), now);
        if harness.is_done() {
            break;
        }
        let next_event = sim.queue.first_key_value().map(|((t, _), _)| *t);
        let next_harness = harness.next_wakeup();
        let Some(next) = [next_event, next_harness].into_iter().flatten().min() else {
            break;
        };
        now = now.max(next);
        if next_event != Some(next) || next_harness == Some(next) {
            continue; // the harness goes first at any moment it has work
        }
        if let Some((i, outputs)) = sim.run(now) {
            let id = sim.slots[i].id.clone();
            for value in outputs {
                harness.node_output(&id, check_envelope(value), now);
            }
            sim.observer.after(&id, sim.slots[i].node.as_ref(), now);
        }
    }
    harness.outcome()
}
