//! The `stats` reply (our extension, on the client port): what the transport did, per
//! peer and in total, counted by the tasks that move bytes; and the failure detector's
//! probes by why they went, which the machine counts and the serving loop copies here
//! after each event.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};

use super::pool::LinkCounters;
use crate::gossip::Why;
use crate::machine::ProbesSent;

/// Shared by the peer port, the client port and the pool's counters.
#[derive(Default)]
pub struct Stats {
    outbound: BTreeMap<String, Arc<LinkCounters>>,
    inbound: Mutex<BTreeMap<String, Inbound>>,
    clients_now: AtomicU64,
    clients_total: AtomicU64,
    peer_connections_now: AtomicU64,
    refused: AtomicU64,
    /// `StateMachine::probes_sent`, as of the last event handled.
    probes_sent: [AtomicU64; Why::ALL.len()],
}

#[derive(Clone, Debug, Default, Serialize)]
struct Inbound {
    messages_received: u64,
    bytes_received: u64,
}

impl Stats {
    pub fn new(outbound: BTreeMap<String, Arc<LinkCounters>>) -> Self {
        Stats {
            outbound,
            ..Stats::default()
        }
    }

    /// A frame of `bytes` (without its newline) arrived from `peer`.
    pub fn received(&self, peer: &str, bytes: usize) {
        let mut inbound = self.inbound.lock().expect("stats lock");
        let entry = inbound.entry(peer.to_string()).or_default();
        entry.messages_received += 1;
        entry.bytes_received += bytes as u64 + 1;
    }

    /// A connection (peer or client) was refused: bad credentials, a bad frame, too many.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn client_opened(&self) {
        self.clients_now.fetch_add(1, Ordering::Relaxed);
        self.clients_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn client_closed(&self) {
        self.clients_now.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn peer_opened(&self) {
        self.peer_connections_now.fetch_add(1, Ordering::Relaxed);
    }

    pub fn peer_closed(&self) {
        self.peer_connections_now.fetch_sub(1, Ordering::Relaxed);
    }

    /// The machine's count of probes sent, by reason.
    pub fn set_probes_sent(&self, sent: &ProbesSent) {
        for (counter, n) in self.probes_sent.iter().zip(sent) {
            counter.store(*n, Ordering::Relaxed);
        }
    }

    /// The body of `stats_ok` (without `type` and `in_reply_to`).
    pub fn snapshot(&self) -> Value {
        let inbound = self.inbound.lock().expect("stats lock").clone();
        let mut peers = serde_json::Map::new();
        let mut totals = [0u64; 7];
        for (peer, counters) in &self.outbound {
            let out = counters.snapshot();
            let inb = inbound.get(peer).cloned().unwrap_or_default();
            for (total, v) in totals.iter_mut().zip([
                out.messages_sent,
                out.bytes_sent,
                inb.messages_received,
                inb.bytes_received,
                out.reconnects,
                out.queue_drops,
                out.queue_expired,
            ]) {
                *total += v;
            }
            let mut entry = serde_json::to_value(&out).expect("plain counters");
            entry["messages_received"] = json!(inb.messages_received);
            entry["bytes_received"] = json!(inb.bytes_received);
            peers.insert(peer.clone(), entry);
        }
        let probes: serde_json::Map<String, Value> = (Why::ALL.iter().zip(&self.probes_sent))
            .map(|(why, n)| (why.name().to_string(), json!(n.load(Ordering::Relaxed))))
            .collect();
        json!({
            "peers": peers,
            "messages_sent": totals[0],
            "bytes_sent": totals[1],
            "messages_received": totals[2],
            "bytes_received": totals[3],
            "reconnects": totals[4],
            "queue_drops": totals[5],
            "queue_expired": totals[6],
            "peer_connections": self.peer_connections_now.load(Ordering::Relaxed),
            "clients": self.clients_now.load(Ordering::Relaxed),
            "clients_total": self.clients_total.load(Ordering::Relaxed),
            "refused_connections": self.refused.load(Ordering::Relaxed),
            "probes_sent": probes,
        })
    }
}
