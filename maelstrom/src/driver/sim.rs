//! The simulation driver: the same `Harness`, on a virtual clock, with nodes as in-process
//! state machines behind `SimNode`. Node work takes no virtual time; periodic timers fire
//! at the periods the nodes report (as their ticker tasks would), at a seeded phase. Each
//! tick and each delivery is handled up to `JITTER` late (deliveries in order), as a woken
//! process reads its clock or its stdin a little late. Without that, constant latency and exact periods lock into step: a reply
//! to a batch reaches the sender exactly when its next batch is due, always just after it,
//! which real processes never do. Same options and seed → the same outcome, byte for byte.
//!
//! A node that crash-restart starts again is a new one from the factory, given the `init`
//! every node got at the start (its `init_ok` goes nowhere: the harness did not ask, as
//! over TCP, where a restarted node knows its name from its configuration).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use crate::harness::{Harness, Outcome};
use crate::message::{Envelope, LineError, Message};
use crate::options::TestOptions;
use crate::record::{Action, StatusChange};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a simulated node wrote: an envelope, checked as a stdout line would be.
pub type Written = Result<Envelope, LineError>;

/// A node as a state machine: what it writes when a message arrives or a timer fires.
/// (`Any` lets an observer look at the concrete node it simulates.)
pub trait SimNode: std::any::Any {
    /// A message delivered on the node's stdin; returns the envelopes it writes.
    fn deliver(&mut self, message: Message, now: Duration) -> Vec<Written>;
    /// The periods of the node's tickers.
    fn timers(&self) -> Vec<Duration>;
    /// Ticker `timer` fired.
    fn fire(&mut self, timer: usize, now: Duration) -> Vec<Written>;
    /// A time before which ticker `timer` would find nothing to do, as of the node's
    /// current state (early, never late); `None`: it may act on any tick. The driver does
    /// not fire such ticks, and wakes the ticker earlier when the node's state changes.
    fn quiet_until(&self, _timer: usize) -> Option<Duration> {
        None
    }
    /// A count that moves whenever this node's view of a peer changes (for
    /// `membership.svg`); nodes without a failure detector keep it at 0.
    fn status_changes(&self) -> u64 {
        0
    }
    /// How this node sees `peer`: `alive`, `doubted`, `suspected` or `dead`.
    fn peer_status(&self, _peer: &str) -> Option<String> {
        None
    }
}

/// Collects every change of every node's view of its peers, asking a node only when its
/// `status_changes` count moved.
#[derive(Default)]
struct MembershipWatch {
    /// Per node, its life and status-change count when last asked.
    seen: Vec<Option<(u32, u64)>>,
    status: HashMap<(usize, usize), String>,
    changes: Vec<StatusChange>,
}

impl MembershipWatch {
    fn after(&mut self, i: usize, slots: &[Slot], now: Duration) {
        let count = slots[i].node.status_changes();
        let seen = Some((slots[i].life, count));
        if self.seen.len() < slots.len() {
            self.seen.resize(slots.len(), None);
        }
        if count == 0 || self.seen[i] == seen {
            return;
        }
        self.seen[i] = seen;
        for (p, peer) in slots.iter().enumerate() {
            let Some(status) = slots[i].node.peer_status(&peer.id) else {
                continue;
            };
            let before = self.status.insert((i, p), status.clone());
            if before.as_deref().unwrap_or("alive") != status {
                self.changes.push(StatusChange {
                    time: now,
                    observer: slots[i].id.clone(),
                    peer: peer.id.clone(),
                    status,
                });
            }
        }
    }
}

/// Watches a simulation from outside (e.g. to measure a failure detector).
pub trait Observer {
    /// Called after `node`, the `index`th of the test's nodes, handled something at `now`.
    fn after(&mut self, _index: usize, _node: &str, _sim: &dyn SimNode, _now: Duration) {}
    /// Called for every action the harness takes (pauses, kills, deliveries...).
    fn action(&mut self, _action: &Action, _now: Duration) {}
}

/// An observer that watches nothing.
pub struct NoObserver;
impl Observer for NoObserver {}

/// An event queued for `at`; `seq` breaks ties in insertion order. The event itself waits
/// in `Sim::events` at `slot`, so that the heap moves only small keys.
struct Queued {
    at: Duration,
    seq: u64,
    slot: usize,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

enum Event {
    Deliver(usize, Message),
    /// Node, timer, the tick's instant (it is handled a little later), and the life of
    /// the node and the generation of the timer it was set for (a restarted node's
    /// timers start afresh; a ticker woken earlier leaves its later tick stale).
    Timer(usize, usize, Duration, u32, u32),
}

/// The longest delay between a tick's instant, or a delivery, and its handling.
const JITTER: Duration = Duration::from_millis(1);

/// The furthest a quiet ticker is put off.
const HORIZON: Duration = Duration::from_secs(3600);

struct Slot {
    id: String,
    node: Box<dyn SimNode>,
    periods: Vec<Duration>,
    /// Per timer: the instant of its next tick, and its generation.
    next_tick: Vec<(Duration, u32)>,
    paused: bool,
    crashed: bool,
    /// Deliveries held while paused, handed over on resume.
    held: Vec<Message>,
    /// When the last delivery queued for it is read: deliveries stay in order.
    read_until: Duration,
    /// How many times it was started again.
    life: u32,
}

/// The nodes and the event queue of a simulation.
struct Sim<'a> {
    slots: Vec<Slot>,
    factory: &'a mut dyn FnMut(&str) -> Box<dyn SimNode>,
    /// Every node's name, for the `init` of a restarted node.
    nodes: Vec<String>,
    index: HashMap<String, usize>,
    /// The events to come, earliest first (a heap: most are ticks, pushed and popped
    /// a hundred times a second per node).
    queue: BinaryHeap<Reverse<Queued>>,
    /// The queued events, by slot; `free` lists the empty slots.
    events: Vec<Option<Event>>,
    free: Vec<usize>,
    seq: u64,
    observer: &'a mut dyn Observer,
    rng: ChaCha8Rng,
    /// Seeds how late each tick is handled (`late`).
    tick_seed: u64,
}

impl Sim<'_> {
    fn push(&mut self, at: Duration, event: Event) {
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.events[slot] = Some(event);
                slot
            }
            None => {
                self.events.push(Some(event));
                self.events.len() - 1
            }
        };
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            slot,
        }));
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
                Action::Restart(node) => self.restart(self.index[&node], now),
                Action::Partition(_)
                | Action::Heal
                | Action::LoseLinks(_)
                | Action::RestoreLinks
                | Action::StallOutput(_)
                | Action::DrainOutput(_)
                | Action::Teardown => {}
            }
        }
    }

    /// Queues timer `t` of node `i` for its tick at `instant`, handled a little later.
    fn tick(&mut self, i: usize, t: usize, instant: Duration) {
        let slot = &mut self.slots[i];
        let generation = slot.next_tick[t].1 + 1;
        slot.next_tick[t] = (instant, generation);
        let life = slot.life;
        let at = instant + self.late(i, t, instant);
        self.push(at, Event::Timer(i, t, instant, life, generation));
    }

    /// How late the tick of timer `t` of node `i` at `instant` is handled: drawn from the
    /// seed and the tick alone, so that skipping quiet ticks changes nothing else.
    fn late(&self, i: usize, t: usize, instant: Duration) -> Duration {
        let mut x = self.tick_seed
            ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ^ (t as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            ^ (instant.as_nanos() as u64);
        // splitmix64's finaliser
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        Duration::from_nanos(x % JITTER.as_nanos() as u64)
    }

    /// The first tick of timer `t` of node `i` after `after` (in its ticker's steps from
    /// `from`, a tick instant) that is handled at or after `quiet`, when the node may
    /// have something to do.
    fn first_busy_tick(
        &self,
        i: usize,
        t: usize,
        from: Duration,
        after: Duration,
        quiet: Duration,
    ) -> Duration {
        let period = self.slots[i].periods[t].max(Duration::from_nanos(1));
        let handled = |instant: Duration| instant + self.late(i, t, instant);
        let mut instant = from;
        // Whole periods at once up to a period before the later bound (a tick is handled
        // less than JITTER late), then step.
        // (A node quiet for good still ticks once an hour of virtual time.)
        let quiet = quiet.min(after + HORIZON);
        let bound = after.max(quiet).saturating_sub(period);
        if bound > instant {
            let steps = nanos(bound - instant) / nanos(period);
            instant += Duration::from_nanos(steps * nanos(period));
        }
        while handled(instant) <= after || handled(instant) < quiet {
            instant += period;
        }
        instant
    }

    /// After node `i` handled something at `now`: each ticker whose next tick lies beyond
    /// where the node may now have something to do is woken for that earlier tick. (Not
    /// ticker `ticked`, if this was its tick: its next tick was just set from the same
    /// state, and this would find the same one.)
    fn wake(&mut self, i: usize, now: Duration, ticked: Option<usize>) {
        for t in 0..self.slots[i].next_tick.len() {
            if ticked == Some(t) {
                continue;
            }
            let (next, _) = self.slots[i].next_tick[t];
            let period = self.slots[i].periods[t].max(Duration::from_nanos(1));
            // The earliest tick not handled yet: the first instant of the ticker's steps
            // at or after `now`, or the one before it if that is handled after `now`.
            let steps = nanos(next.saturating_sub(now)) / nanos(period);
            let mut from = next - Duration::from_nanos(steps * nanos(period));
            if from >= period && from - period + self.late(i, t, from - period) > now {
                from -= period;
            }
            if from >= next {
                continue; // the next tick is the earliest anyway
            }
            let quiet = self.slots[i].node.quiet_until(t).unwrap_or(Duration::ZERO);
            let busy = self.first_busy_tick(i, t, from, now, quiet);
            if busy < next {
                self.tick(i, t, busy);
            }
        }
    }

    /// Starts node `i`'s timers at seeded phases from `from`.
    fn start_timers(&mut self, i: usize, from: Duration) {
        self.slots[i].next_tick = vec![(Duration::ZERO, 0); self.slots[i].periods.len()];
        for t in 0..self.slots[i].periods.len() {
            let period = self.slots[i].periods[t].as_nanos().max(1) as u64;
            let phase = Duration::from_nanos(self.rng.random_range(0..period));
            self.tick(i, t, from + phase);
        }
    }

    /// Starts crashed node `i` again, empty, with the same name.
    fn restart(&mut self, i: usize, now: Duration) {
        if !self.slots[i].crashed {
            return;
        }
        let id = self.slots[i].id.clone();
        let mut node = (self.factory)(&id);
        let init = Message {
            id: 0,
            src: "c0".to_string(),
            dest: id.clone(),
            body: crate::message::Body::Json(serde_json::json!({
                "type": "init", "msg_id": 1, "node_id": id, "node_ids": self.nodes,
            })),
        };
        drop(node.deliver(init, now));
        let slot = &mut self.slots[i];
        slot.periods = node.timers();
        slot.node = node;
        slot.crashed = false;
        slot.paused = false;
        slot.held.clear();
        slot.read_until = now;
        slot.life += 1;
        self.start_timers(i, now);
    }

    /// Runs the next queued event; returns the node and what it wrote.
    fn run(&mut self, now: Duration) -> Option<(usize, Vec<Written>)> {
        let Reverse(Queued { slot, .. }) = self.queue.pop()?;
        let event = self.events[slot].take().expect("a queued event");
        self.free.push(slot);
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
                let written = slot.node.deliver(message, now);
                self.wake(i, now, None);
                Some((i, written))
            }
            Event::Timer(i, t, instant, life, generation) => {
                let slot = &self.slots[i];
                if slot.crashed || slot.life != life || slot.next_tick[t].1 != generation {
                    return None;
                }
                // A stopped process's tickers do not fire; afterwards they go on.
                let paused = slot.paused;
                let written = (!paused).then(|| self.slots[i].node.fire(t, now));
                let next = instant + self.slots[i].periods[t];
                let next = match (paused, self.slots[i].node.quiet_until(t)) {
                    (false, Some(quiet)) if quiet > next => {
                        self.first_busy_tick(i, t, next, now, quiet)
                    }
                    _ => next,
                };
                self.tick(i, t, next);
                if !paused {
                    self.wake(i, now, Some(t));
                }
                written.map(|w| (i, w))
            }
        }
    }
}

/// A span of virtual time in nanoseconds: 64 bits hold 584 years, and dividing them is much
/// cheaper than dividing the 128 bits of `as_nanos`.
fn nanos(span: Duration) -> u64 {
    u64::try_from(span.as_nanos()).expect("virtual time under 584 years")
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
                next_tick: Vec::new(),
                paused: false,
                crashed: false,
                held: Vec::new(),
                read_until: Duration::ZERO,
                life: 0,
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
        factory,
        nodes: opts.nodes.clone(),
        queue: BinaryHeap::new(),
        events: Vec::new(),
        free: Vec::new(),
        seq: 0,
        observer,
        rng,
        tick_seed: opts.seed ^ 0x7469_636b,
    };
    for i in 0..sim.slots.len() {
        sim.start_timers(i, Duration::ZERO);
    }
    let mut harness = Harness::new(opts);
    let mut membership = MembershipWatch::default();
    let mut now = Duration::ZERO;
    // The harness has nothing to do before its wakeup, unless a node wrote something
    // since it was computed: between the two it is not polled.
    let mut next_harness = Some(Duration::ZERO);
    loop {
        if next_harness.is_some_and(|t| t <= now) {
            sim.dispatch(harness.poll(now), now);
            if harness.is_done() {
                break;
            }
            next_harness = harness.next_wakeup();
        }
        let next_event = sim.queue.peek().map(|Reverse(q)| q.at);
        let Some(next) = [next_event, next_harness].into_iter().flatten().min() else {
            break;
        };
        now = now.max(next);
        if next_event != Some(next) || next_harness == Some(next) {
            continue; // the harness goes first at any moment it has work
        }
        if let Some((i, outputs)) = sim.run(now) {
            let id = &sim.slots[i].id;
            if !outputs.is_empty() {
                for written in outputs {
                    harness.node_output(id, written, now);
                }
                // (Once done, polled once more for the teardown.)
                next_harness = match harness.is_done() {
                    true => Some(now),
                    false => harness.next_wakeup(),
                };
            }
            sim.observer.after(i, id, sim.slots[i].node.as_ref(), now);
            membership.after(i, &sim.slots, now);
        }
    }
    let mut outcome = harness.outcome();
    outcome.membership = membership.changes;
    outcome
}
