//! The simulated network (docs/maelstrom-compatibility.md 3): one inbound queue per
//! registered id, ordered by deadline; one delivery "slot" per destination that takes the
//! queue head at once (even if not yet due), drops it if the destination holds a grudge
//! against its source at that moment, and otherwise delivers it at its deadline. A journal
//! counts every send and every delivery for the `:net` statistics.
//!
//! Two faults are ours, not Maelstrom's: one-way link loss (a second grudge, kept apart
//! from the partition's so that healing one leaves the other) and duplication (while on,
//! a message between nodes is also delivered a second time, usually late). So is the
//! `Lossy` option for tests: messages dropped and held back for a while.
//!
//! The model is driven by time passed in (a `Duration` since the test started), so the
//! same code serves the wall-clock driver and the virtual-clock simulation. Contract:
//! times passed to `send` and `poll` never decrease, and a driver calls `poll(now)` before
//! it `send`s anything at `now`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::message::{Body, Message, is_client};

mod faults;
pub mod journal;
mod lossy;
mod stats;

pub use journal::Journal;
pub use lossy::Lossy;
pub use stats::{Counts, NetStats};

/// `--latency-dist`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyDist {
    Constant,
    Uniform,
    Exponential,
}

impl LatencyDist {
    pub const ALL: [LatencyDist; 3] = [
        LatencyDist::Constant,
        LatencyDist::Uniform,
        LatencyDist::Exponential,
    ];

    /// The name `--latency-dist` takes.
    pub fn name(self) -> &'static str {
        match self {
            LatencyDist::Constant => "constant",
            LatencyDist::Uniform => "uniform",
            LatencyDist::Exponential => "exponential",
        }
    }
}

impl std::str::FromStr for LatencyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LatencyDist::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                format!("unknown latency distribution {s:?} (constant, uniform, exponential)")
            })
    }
}

impl std::fmt::Display for LatencyDist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// receiver → the senders it drops messages from (docs/maelstrom-compatibility.md 3.4).
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// `Invalid dest for message ...`: src or dest is not currently registered.
    InvalidDest(String),
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::InvalidDest(m) => write!(f, "Invalid dest for message {m}"),
        }
    }
}

/// A message handed to its destination at `due` (its deadline, or the moment the slot
/// took it if that was later).
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub message: Message,
    pub due: Duration,
}

/// A queued message: ordered by deadline, then by send order.
type Queued = Reverse<(Duration, u64, QueuedMessage)>;

#[derive(Debug)]
struct QueuedMessage(Message);

impl PartialEq for QueuedMessage {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}
impl Eq for QueuedMessage {}
impl PartialOrd for QueuedMessage {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for QueuedMessage {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id.cmp(&other.0.id)
    }
}

/// One destination: its deadline queue and its delivery slot.
#[derive(Default)]
struct Inbox {
    queue: BinaryHeap<Queued>,
    /// The message the delivery thread has taken, and when it will be delivered.
    slot: Option<(Duration, Message)>,
    /// When the idle slot will take the queue head (the arrival time of the first message
    /// queued while it was idle).
    take_at: Option<Duration>,
}

impl Inbox {
    fn next_event(&self) -> Option<Duration> {
        match &self.slot {
            Some((due, _)) => Some(*due),
            None => self.take_at,
        }
    }
}

pub struct Network {
    latency_ms: u64,
    dist: LatencyDist,
    rng: ChaCha8Rng,
    inboxes: BTreeMap<String, Inbox>,
    /// The partition in force, if any. One whose shape cuts nothing (a third of fewer than
    /// four nodes) is in force all the same, until healed.
    partition: Option<Grudge>,
    /// One-way link loss in force, if any: receiver → senders it drops, apart from
    /// partitions.
    lost_links: Option<Grudge>,
    duplicating: bool,
    /// The lossy option, with its own random source, if on.
    lossy: Option<(Lossy, ChaCha8Rng)>,
    /// Messages the lossy option holds back, by the time they reach their destination's
    /// queue (then send order): destination, latency, message.
    held: BTreeMap<(Duration, u64), (String, Duration, Message)>,
    /// Every inbox's next event (`Inbox::next_event`), in (time, name) order: `poll` takes
    /// the earliest without a pass over every inbox.
    ready: BTreeSet<(Duration, String)>,
    next_id: u64,
    seq: u64,
    stats: NetStats,
    journal: Journal,
}

impl Network {
    pub fn new(latency_ms: u64, dist: LatencyDist, rng: ChaCha8Rng) -> Self {
        Network {
            latency_ms,
            dist,
            rng,
            inboxes: BTreeMap::new(),
            partition: None,
            lost_links: None,
            duplicating: false,
            lossy: None,
            held: BTreeMap::new(),
            ready: BTreeSet::new(),
            next_id: 0,
            seq: 0,
            stats: NetStats::default(),
            journal: Journal::default(),
        }
    }

    /// Creates `id`'s inbound queue.
    pub fn register(&mut self, id: &str) {
        self.inboxes.entry(id.to_string()).or_default();
    }

    /// Removes `id`'s queue; messages queued for it are discarded.
    pub fn unregister(&mut self, id: &str) {
        if let Some(inbox) = self.inboxes.remove(id)
            && let Some(at) = inbox.next_event()
        {
            self.ready.remove(&(at, id.to_string()));
        }
    }

    pub fn is_registered(&self, id: &str) -> bool {
        self.inboxes.contains_key(id)
    }

    /// Accepts a message at `now`: assigns the next network-wide id (consumed even if the
    /// message is then refused, as in Maelstrom), checks both ids are registered, draws the
    /// latency (0 when either end is a client), journals the send and enqueues it. While
    /// duplicating, a message between nodes is enqueued a second time, with the same id,
    /// at a fresh latency draw plus up to one mean latency more, so that it often lands
    /// after newer messages even at constant latency: one send, two receives. (Not more:
    /// a copy taken by the delivery slot holds up its queue until due, as any message.)
    pub fn send(
        &mut self,
        src: &str,
        dest: &str,
        body: impl Into<Body>,
        now: Duration,
    ) -> Result<u64, NetError> {
        let id = self.next_id;
        self.next_id += 1;
        let message = Message {
            id,
            src: src.to_string(),
            dest: dest.to_string(),
            body: body.into(),
        };
        if !self.inboxes.contains_key(src) || !self.inboxes.contains_key(dest) {
            return Err(NetError::InvalidDest(message.to_line()));
        }
        let between_nodes = !is_client(src) && !is_client(dest);
        let latency = if between_nodes {
            self.draw_latency()
        } else {
            0
        };
        self.stats.count(&message, true);
        self.journal.record(&message, now, true);
        let copy = (self.duplicating && between_nodes).then(|| message.clone());
        self.route(
            dest,
            now,
            Duration::from_millis(latency),
            message,
            between_nodes,
        );
        if let Some(copy) = copy {
            let late = self.draw_latency() + self.rng.random_range(0..=self.latency_ms);
            self.route(dest, now, Duration::from_millis(late), copy, between_nodes);
        }
        Ok(id)
    }

    /// Hands a message sent at `now` on: to its destination's queue, or, with the lossy
    /// option, to nowhere (sent, never received) or held back.
    fn route(
        &mut self,
        dest: &str,
        now: Duration,
        latency: Duration,
        message: Message,
        between_nodes: bool,
    ) {
        if let Some((lossy, rng)) = self.lossy.as_mut()
            && between_nodes
            && now < lossy.until
        {
            let Some(extra) = lossy.fate(rng) else {
                return;
            };
            if !extra.is_zero() {
                self.seq += 1;
                self.held.insert(
                    (now + extra, self.seq),
                    (dest.to_string(), latency, message),
                );
                return;
            }
        }
        self.enqueue(dest, now, now + latency, message);
    }

    /// Puts a message that reached `dest` at `now` in its queue. (A destination gone
    /// meanwhile takes nothing.)
    fn enqueue(&mut self, dest: &str, now: Duration, deadline: Duration, message: Message) {
        self.seq += 1;
        let Some(inbox) = self.inboxes.get_mut(dest) else {
            return;
        };
        if inbox.slot.is_none() && inbox.take_at.is_none() {
            inbox.take_at = Some(now);
            self.ready.insert((now, dest.to_string()));
        }
        inbox
            .queue
            .push(Reverse((deadline, self.seq, QueuedMessage(message))));
    }

    /// Turns on the lossy option, drawing from `rng` (see `Lossy`).
    pub fn set_lossy(&mut self, lossy: Lossy, rng: ChaCha8Rng) {
        self.lossy = Some((lossy, rng));
    }

    fn draw_latency(&mut self) -> u64 {
        let l = self.latency_ms;
        match self.dist {
            LatencyDist::Constant => l,
            LatencyDist::Uniform if l == 0 => 0,
            LatencyDist::Uniform => self.rng.random_range(0..2 * l),
            LatencyDist::Exponential if l == 0 => 0,
            LatencyDist::Exponential => {
                let u: f64 = self.rng.random();
                (-(1.0 - u).ln() * l as f64) as u64
            }
        }
    }

    /// The earliest time at which `poll` has work (a take, a delivery, or a held message
    /// reaching its queue), if any.
    pub fn next_event(&self) -> Option<Duration> {
        let held = self.held.first_key_value().map(|((t, _), _)| *t);
        let inbox = self.ready.first().map(|(t, _)| *t);
        inbox.into_iter().chain(held).min()
    }

    /// Runs every take and delivery due at or before `now`, in time order, and returns the
    /// deliveries (journaled as `recv`). Messages held back reach their queues in time
    /// order too, after the takes and deliveries of the same instant (as a send would).
    pub fn poll(&mut self, now: Duration) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        if self.next_event().is_none_or(|t| t > now) {
            return deliveries;
        }
        loop {
            let next = self.ready.first().map(|(t, _)| *t);
            let held = self.held.first_key_value().map(|((t, _), _)| *t);
            if held.is_some_and(|h| h <= now && next.is_none_or(|at| h < at)) {
                let ((at, _), (dest, latency, message)) = self.held.pop_first().expect("checked");
                self.enqueue(&dest, at, at + latency, message);
                continue;
            }
            if next.is_none_or(|at| at > now) {
                break;
            }
            let (at, id) = self.ready.pop_first().expect("checked");
            // (One lookup of the inbox for the whole step.)
            let inbox = self.inboxes.get_mut(&id).expect("exists");
            if let Some((due, message)) = inbox.slot.take() {
                self.stats.count(&message, false);
                self.journal.record(&message, at, false);
                deliveries.push(Delivery { message, due });
                if !inbox.queue.is_empty() {
                    inbox.take_at = Some(at);
                }
            }
            let grudges = [&self.partition, &self.lost_links];
            take(inbox, grudges, &id, at);
            if let Some(next) = inbox.next_event() {
                self.ready.insert((next, id));
            }
        }
        deliveries
    }

    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Stops journaling the traffic (`Journal::off`).
    pub fn journal_off(&mut self) {
        self.journal.off = true;
    }

    /// The first events of the traffic, for the report; leaves an empty journal.
    pub fn take_journal(&mut self) -> Journal {
        std::mem::take(&mut self.journal)
    }
}

/// The slot of inbox `id` takes queue heads at `at`, dropping those the `grudges` refuse,
/// until it holds one or the queue is empty.
fn take(inbox: &mut Inbox, grudges: [&Option<Grudge>; 2], id: &str, at: Duration) {
    if inbox.take_at.is_none_or(|t| t > at) || inbox.slot.is_some() {
        return;
    }
    inbox.take_at = None;
    let refused = |src: &String| {
        grudges
            .into_iter()
            .flatten()
            .any(|g| g.get(id).is_some_and(|r| r.contains(src)))
    };
    while let Some(Reverse((deadline, _, QueuedMessage(message)))) = inbox.queue.pop() {
        if refused(&message.src) {
            continue; // dropped: sent, never received
        }
        inbox.slot = Some((deadline.max(at), message));
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use serde_json::json;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn net(latency: u64, dist: LatencyDist) -> Network {
        let mut net = Network::new(latency, dist, ChaCha8Rng::seed_from_u64(1));
        for id in ["n1", "n2", "n3", "c1"] {
            net.register(id);
        }
        net
    }

    fn ids(deliveries: &[Delivery]) -> Vec<u64> {
        deliveries.iter().map(|d| d.message.id).collect()
    }

    #[test]
    fn constant_latency_is_fifo_per_destination_and_clients_get_none() {
        let mut net = net(100, LatencyDist::Constant);
        net.send("n1", "n2", json!({"k": 1}), ms(0)).unwrap();
        net.poll(ms(0));
        net.send("n3", "n2", json!({"k": 2}), ms(10)).unwrap();
        net.poll(ms(10));
        net.send("n2", "c1", json!({}), ms(10)).unwrap();
        let client = net.poll(ms(10));
        assert_eq!(client.len(), 1, "client traffic has no latency");
        assert_eq!(net.next_event(), Some(ms(100)));
        let d = net.poll(ms(200));
        assert_eq!(ids(&d), vec![0, 1]);
        assert_eq!((d[0].due, d[1].due), (ms(100), ms(110)));
    }

    #[test]
    fn a_client_request_waits_behind_a_taken_server_message() {
        let mut net = net(100, LatencyDist::Constant);
        net.send("n1", "n2", json!({}), ms(0)).unwrap();
        net.poll(ms(0));
        net.send("c1", "n2", json!({}), ms(5)).unwrap();
        assert!(
            net.poll(ms(99)).is_empty(),
            "head-of-line: the slot sleeps on the server message"
        );
        let d = net.poll(ms(100));
        assert_eq!(ids(&d), vec![0, 1]);
        assert_eq!(d[1].due, ms(100));
    }

    #[test]
    fn partitions_drop_at_take_time() {
        let mut net = net(100, LatencyDist::Constant);
        net.send("n1", "n2", json!({}), ms(0)).unwrap(); // taken at once
        net.send("n3", "n2", json!({}), ms(0)).unwrap(); // queued behind it
        net.poll(ms(0));
        let grudge: Grudge = [(
            "n2".to_string(),
            ["n1".to_string(), "n3".to_string()].into(),
        )]
        .into();
        net.partition(&grudge);
        // Sent during the partition: dropped at once even though it heals before the deadline.
        net.send("n1", "n3", json!({}), ms(1)).unwrap();
        net.partition(&[("n3".to_string(), ["n1".to_string()].into())].into());
        net.poll(ms(1));
        // At 100 the slot delivers message 0 (taken before the partition) and takes message
        // 1 while the partition holds: dropped.
        let d = net.poll(ms(150));
        net.heal();
        assert_eq!(
            ids(&d),
            vec![0],
            "taken before the partition: delivered; queued: dropped"
        );
        assert!(net.poll(ms(500)).is_empty());
        let stats = net.stats();
        assert_eq!(
            (
                stats.servers.send_count,
                stats.servers.recv_count,
                stats.servers.msg_count
            ),
            (3, 1, 3)
        );
    }

    #[test]
    fn invalid_dest_consumes_an_id_and_is_not_journaled() {
        let mut net = net(0, LatencyDist::Constant);
        assert!(matches!(
            net.send("n1", "n9", json!({}), ms(0)),
            Err(NetError::InvalidDest(_))
        ));
        assert_eq!(net.send("n1", "n2", json!({}), ms(0)), Ok(1));
        net.unregister("n2");
        assert!(net.send("n1", "n2", json!({}), ms(0)).is_err());
        assert_eq!(net.stats().all.send_count, 1);
        assert!(net.poll(ms(10)).is_empty(), "the queue went with the id");
    }

    #[test]
    fn uniform_and_exponential_draws() {
        for (dist, lo, hi) in [
            (LatencyDist::Uniform, 95.0, 105.0),
            (LatencyDist::Exponential, 90.0, 110.0),
        ] {
            let mut net = net(100, dist);
            let draws: Vec<u64> = (0..20_000).map(|_| net.draw_latency()).collect();
            let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
            assert!(mean > lo && mean < hi, "{dist:?} mean {mean}");
            if dist == LatencyDist::Uniform {
                assert!(draws.iter().all(|d| *d < 200));
                assert!(draws.contains(&0) && draws.contains(&199));
            }
        }
    }

    #[test]
    fn other_distributions_reorder() {
        let mut net = net(100, LatencyDist::Exponential);
        for t in 0..50 {
            net.send("n1", "n2", json!({}), ms(t)).unwrap();
        }
        let d = net.poll(ms(100_000));
        assert_eq!(d.len(), 50);
        assert!(
            d.windows(2).all(|w| w[0].due <= w[1].due),
            "deliveries are in time order"
        );
        assert!(ids(&d).windows(2).any(|w| w[0] > w[1]), "reordered");
    }

    #[test]
    fn journal_groups() {
        let mut net = net(0, LatencyDist::Constant);
        net.send("c1", "n1", json!({}), ms(0)).unwrap();
        net.send("n1", "n2", json!({}), ms(0)).unwrap();
        net.poll(ms(0));
        let s = net.stats();
        assert_eq!((s.all.send_count, s.all.recv_count), (2, 2));
        assert_eq!((s.clients.send_count, s.servers.send_count), (1, 1));
    }

    #[test]
    fn a_journal_turned_off_keeps_nothing_and_the_counts_go_on() {
        let mut net = net(0, LatencyDist::Constant);
        net.send("n1", "n2", json!({}), ms(0)).unwrap();
        net.journal_off();
        net.send("n1", "n2", json!({}), ms(0)).unwrap();
        net.poll(ms(0));
        let journal = net.take_journal();
        assert_eq!(
            journal.events.len(),
            1,
            "only the send before it was turned off"
        );
        assert_eq!(journal.omitted, 0);
        assert_eq!(net.stats().all.recv_count, 2);
    }

    #[test]
    fn lost_links_are_one_way_and_outlive_a_heal() {
        let mut net = net(10, LatencyDist::Constant);
        net.lose_links(&[("n2".to_string(), ["n1".to_string()].into())].into());
        net.partition(&[("n3".to_string(), ["n1".to_string()].into())].into());
        net.heal();
        for t in 0..3 {
            net.send("n1", "n2", json!({}), ms(t)).unwrap(); // lost
            net.send("n2", "n1", json!({}), ms(t)).unwrap(); // the other way: delivered
            net.send("n1", "n3", json!({}), ms(t)).unwrap(); // healed: delivered
            net.poll(ms(t));
        }
        let d = net.poll(ms(100));
        assert!(d.iter().all(|d| d.message.dest != "n2"));
        assert_eq!(d.len(), 6);
        net.restore_links();
        net.send("n1", "n2", json!({}), ms(100)).unwrap();
        net.poll(ms(100));
        assert_eq!(net.poll(ms(200)).len(), 1, "restored");
    }

    #[test]
    fn duplication_delivers_node_messages_twice_and_often_late() {
        let mut net = net(100, LatencyDist::Constant);
        net.set_duplicating(true);
        let mut d = Vec::new();
        for t in 0..50 {
            net.send("n1", "n2", json!({}), ms(t * 10)).unwrap();
            d.extend(net.poll(ms(t * 10)));
        }
        net.send("c1", "n1", json!({}), ms(500)).unwrap();
        d.extend(net.poll(ms(10_000)));
        assert_eq!(d.len(), 101, "each node message twice, the client's once");
        let ids = ids(&d);
        for id in 0..50 {
            assert_eq!(ids.iter().filter(|i| **i == id).count(), 2, "id {id}");
        }
        assert!(
            ids.windows(2).any(|w| w[0] > w[1]),
            "copies land after newer messages"
        );
        let s = net.stats();
        assert_eq!(
            (
                s.servers.send_count,
                s.servers.recv_count,
                s.servers.msg_count
            ),
            (50, 100, 50)
        );
        net.set_duplicating(false);
        net.send("n1", "n2", json!({}), ms(10_000)).unwrap();
        net.poll(ms(10_000));
        assert_eq!(net.poll(ms(20_000)).len(), 1);
    }
}
