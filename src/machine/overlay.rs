//! The overlay, a forest over the nodes' ranking (`node_ids` order): a node's parent is
//! the first node it neither suspects nor holds dead; when that is itself, it is a root.
//! Parents rank before their children, so there are no cycles; normally it is a star
//! around the first node. Values go up to the parent at once and down to the children in
//! batches; quiet neighbours get heartbeats; a root also watches the peers outside its
//! tree.

use std::time::Duration;

use tracing::info;

use super::links::Links;
use crate::config::Config;
use crate::crdt::Crdt;
use crate::gossip::{Kind, Link};
use crate::membership::Detector;
use crate::wire::Envelope;

/// The shortest gap between two flushes to the children.
const URGENT_GAP: Duration = Duration::from_millis(50);

pub(super) struct Overlay {
    me: String,
    /// Every node, this one included, in `node_ids` order.
    ranking: Vec<String>,
    /// Our parent, as its place in `ranking`; `None` for a root. Each link knows whether
    /// it leads to the parent, and is told here.
    parent: Option<usize>,
    batch: Duration,
    heartbeat: Duration,
    /// Failure-detector records changed: send them down without waiting for the batch.
    records_urgent: bool,
    next_batch_at: Duration,
    /// When data and records last went down to the children.
    last_flush_at: Duration,
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
            me: me.to_string(),
            ranking: nodes.to_vec(),
            parent: None,
            batch: config.batch,
            heartbeat: config.heartbeat,
            records_urgent: false,
            next_batch_at: Duration::ZERO,
            last_flush_at: Duration::ZERO,
        };
        overlay.parent = overlay.choose(detector);
        if let Some(parent) = overlay.parent() {
            links.get_mut(parent).parent = true;
        }
        overlay
    }

    pub fn ranking(&self) -> &[String] {
        &self.ranking
    }

    pub fn parent(&self) -> Option<&str> {
        self.parent.map(|i| self.ranking[i].as_str())
    }

    /// The first node of the ranking that is this one or neither suspected nor dead,
    /// unless it is this one.
    fn choose(&self, d: &Detector) -> Option<usize> {
        self.ranking
            .iter()
            .position(|n| *n == self.me || (!d.suspects(n) && !d.is_dead(n)))
            .filter(|i| self.ranking[*i] != self.me)
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
        let chosen = self.choose(detector);
        if chosen == self.parent {
            return;
        }
        let name = |i: Option<usize>| i.map(|i| self.ranking[i].as_str());
        info!(from = ?name(self.parent), to = ?name(chosen), "parent changed");
        if let Some(old) = name(self.parent) {
            links.get_mut(old).parent = false;
        }
        if let Some(new) = name(chosen) {
            // The first message to it asks for its ack at once: a parent that is gone is
            // noticed without waiting out the ack delay.
            let link = links.get_mut(new);
            link.parent = true;
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
        let flush_down = self.flush_due(now);
        self.tend_neighbours(now, flush_down, links, detector, out);
        if self.parent.is_none() {
            self.watch_outsiders(now, begun, links, detector, out);
        }
    }

    /// Whether data and records go down to the children on this tick.
    fn flush_due(&mut self, now: Duration) -> bool {
        let batch_due = now >= self.next_batch_at;
        if batch_due {
            self.next_batch_at = now + self.batch;
        }
        // News about failures travels at once: detection time is what it is for.
        // (At most every URGENT_GAP: under partitions records can change all the time.)
        let urgent = self.records_urgent && now >= self.last_flush_at + URGENT_GAP;
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
        links: &mut Links,
        detector: &Detector,
        out: &mut Vec<Envelope>,
    ) {
        let live_child = |peer: &str, link: &Link| link.is_child && !detector.is_dead(peer);
        let records = detector.records();
        links.send_each(records, now, out, |peer, link| {
            live_child(peer, link)
                .then(|| self.due(link, flush_down, now))
                .flatten()
        });
        if let Some(parent) = self.parent()
            && !live_child(parent, links.get(parent))
            && let Some(kind) = self.due(links.get(parent), flush_down, now)
        {
            links.send(parent, kind, records, now, out);
        }
    }

    /// What a neighbour is due: what it lacks, or a heartbeat when it has been quiet.
    fn due(&self, link: &Link, flush_down: bool, now: Duration) -> Option<Kind> {
        // Values go up at once; news of records alone waits out URGENT_GAP too.
        let up_now =
            link.parent && (!link.pending.is_empty() || now >= link.last_sent + URGENT_GAP);
        if link.dirty && (up_now || flush_down) {
            return Some(Kind::Data);
        }
        // Parents check on quiet children; children give the parent half as long again
        // before they check themselves, so both rarely do it at once.
        let quiet_for = if link.parent {
            self.heartbeat * 3 / 2
        } else {
            self.heartbeat
        };
        let heard = link.last_heard.unwrap_or(Duration::ZERO);
        (!link.has_in_flight() && now.saturating_sub(heard) >= quiet_for).then_some(Kind::Probe)
    }

    /// A root also probes the quiet peers outside its tree, e.g. one that died before it
    /// ever joined: no one else would notice.
    fn watch_outsiders(
        &self,
        now: Duration,
        begun: Duration,
        links: &mut Links,
        detector: &Detector,
        out: &mut Vec<Envelope>,
    ) {
        let heartbeat = self.heartbeat;
        let measured = links.measured();
        links.send_each(detector.records(), now, out, |peer, link| {
            let (since, limit) = match link.last_heard {
                Some(heard) => (heard, heartbeat),
                // Every node announces itself to the root when it starts: one not heard
                // of by now is probably down. (Once round trips are measured: the first
                // guess at a timeout is long.)
                None if measured => (begun, heartbeat / 4),
                None => (begun, heartbeat),
            };
            let quiet = !link.is_child
                && !link.has_in_flight()
                && !detector.is_dead(peer)
                && now.saturating_sub(since) >= limit;
            quiet.then_some(Kind::Probe)
        });
    }
}
