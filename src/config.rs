//! The node's settings as plain values: what the machine is built from. `cli` fills them
//! from the command line; `Config::default()` reads nothing from the environment.

use std::time::Duration;

use clap::ValueEnum;

/// Which CRDT the node serves; `read_ok` differs between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `broadcast` / `read` → `messages` (a grow-only set).
    Broadcast,
    /// `add element` / `read` → `value` array.
    #[value(name = "g-set")]
    GSet,
    /// `add delta` / `read` → `value` integer (g-counter and pn-counter).
    #[value(name = "g-counter", alias = "pn-counter", alias = "counter")]
    Counter,
}

/// When a write is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AckWhen {
    /// Once some peer holds the value (its ack, or the value came from it): every
    /// acknowledged value survives the loss of any one node (`machine::client`).
    Peer,
    /// At once, with the value held here alone, as fly.io's broadcast challenges expect: a
    /// value is lost if this node dies before it passes it on, and the client's wait no
    /// longer holds back the way up, which may then batch.
    Local,
}

/// Gossip and failure-detector tunables. Timers are checked on ticks, so every period is
/// in effect rounded up to a multiple of the tick that checks it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The workload served; `None`: the first write decides, reads before it answer as
    /// broadcast.
    pub workload: Option<Mode>,
    /// Seed of the node's random choices; `None`: derived from the node id.
    pub seed: Option<u64>,
    /// When a write is answered: once a peer holds it, or at once.
    pub ack_when: AckWhen,
    /// How long a relay gathers values before it forwards them to its children. Zero
    /// forwards on every gossip tick.
    pub batch: Duration,
    /// How long a node holds values before it sends them up to its parent (it sends at
    /// most one data message up per period). Zero sends each write up at once.
    pub up_batch: Duration,
    /// The worst time aimed for from a client's write to that value at every node: when
    /// set, `batch` and `up_batch` follow from it and from the measured round trips
    /// (`machine::budget`), and `ack_delay` and `heartbeat` are set by `with_budget`.
    pub latency_budget: Option<Duration>,
    /// The most children a node has in the overlay while every node is up: up to
    /// fanout + 1 nodes form a star, larger clusters a tree with more levels
    /// (`machine::overlay`). At least 1.
    pub fanout: usize,
    /// How long a node may hold an acknowledgement hoping to piggyback it. Also widens the
    /// ack timeout of data messages, and data messages sent within it of a failed one
    /// fail with it (they would have shared its ack).
    pub ack_delay: Duration,
    /// A peer in the overlay quiet this long is probed (a child gives its parent half as
    /// long again). A root probes peers it has never heard from after as long, or a
    /// quarter of it once some round trip has been measured.
    pub heartbeat: Duration,
    /// Period of the low-rate probes of suspected and dead peers: about three per period
    /// across the cluster.
    pub probe_period: Duration,
    /// Lower bound of the adaptive ack timeout (srtt + 4·rttvar); before any round trip
    /// is measured the timeout is 500 ms.
    pub min_rto: Duration,
    /// Period of the gossip ticker. Not zero: a ticker needs a period.
    pub gossip_tick: Duration,
    /// Period of the failure-detector ticker. Not zero; a tick four periods late (and at
    /// least 100 ms) tells the node it was stopped.
    pub detect_tick: Duration,
    /// Which life of this node this is, sent on every message. A peer that sees a later
    /// one knows the node restarted without its state and sends it everything again.
    /// 0 (under Maelstrom and in simulations, where a node never comes back): not sent.
    pub epoch: u64,
    /// At most this many bytes of values (as JSON) in one message; the rest follow in the
    /// next ones. Keeps every frame far below a transport's limit after a long partition.
    pub max_values_bytes: usize,
}

impl Config {
    /// The defaults, also those of the command line.
    pub const DEFAULT: Config = Config {
        workload: None,
        seed: None,
        ack_when: AckWhen::Peer,
        batch: Duration::from_millis(200),
        up_batch: Duration::ZERO,
        latency_budget: None,
        fanout: 24,
        ack_delay: Duration::from_millis(400),
        heartbeat: Duration::from_millis(1000),
        probe_period: Duration::from_millis(1000),
        min_rto: Duration::from_millis(250),
        gossip_tick: Duration::from_millis(10),
        detect_tick: Duration::from_millis(25),
        epoch: 0,
        max_values_bytes: crate::gossip::MAX_VALUES_BYTES,
    };
}

impl Config {
    /// Aims for `budget` from a write to every node: acks may wait three quarters of it to
    /// ride on data (all of it when writes are answered at once; at least the default),
    /// and quiet neighbours are checked on after as long as the budget (at least the
    /// default), so that fewer messages are pure acks and heartbeats. The batching waits
    /// follow at run time (`machine::budget`). Set `ack_when` first.
    pub fn with_budget(mut self, budget: Duration) -> Config {
        self.latency_budget = Some(budget);
        // With writes answered at once, values go up a wait apart, and the wait may come
        // close to the budget: the acks of the parent's batches ride on them.
        let ack_share = match self.ack_when {
            AckWhen::Peer => budget * 3 / 4,
            AckWhen::Local => budget,
        };
        self.ack_delay = ack_share.max(Config::DEFAULT.ack_delay);
        self.heartbeat = budget.max(Config::DEFAULT.heartbeat);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}
