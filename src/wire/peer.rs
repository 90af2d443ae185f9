//! What nodes send each other: one message type for data, acks and probes, and the
//! failure-detector records it carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Element;

/// A node-to-node message. Every field is optional on the wire so that pure acks are small.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gossip {
    /// The sender's life (`Config::epoch`); 0 when the sender never restarts.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub epoch: u64,
    /// Sequence number of this message on the link sender→receiver, from 1. 0: the
    /// message needs no acknowledgement (a pure ack).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// Cumulative ack: the highest `seq` received from the receiver so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ack: u64,
    /// Milliseconds the ack was held before it was sent (so the receiver of the ack can
    /// measure the network round trip, as in QUIC).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ack_delay: u64,
    /// The sender has chosen the receiver as its parent in the overlay.
    #[serde(default, skip_serializing_if = "is_false")]
    pub parent: bool,
    /// A probe: acknowledge at once.
    #[serde(default, skip_serializing_if = "is_false")]
    pub probe: bool,
    /// Broadcast values / g-set elements the receiver is not known to have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Element>,
    /// Counter entries: node → [increments, decrements].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, [u64; 2]>,
    /// Failure-detector records the receiver is not known to have: author → record.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: Records,
}

/// A node's own failure-detector record, authored only by that node and replaced by
/// higher versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u64,
    /// The author's incarnation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inc: u64,
    /// Peers the author suspects (3 strikes), with the incarnation suspected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suspects: BTreeMap<String, u64>,
    /// Peers the author has at least one strike against, with their incarnation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub doubts: BTreeMap<String, u64>,
}

/// Every node's latest record: author → record. Shared, not copied: every message to a
/// peer that lacks a record carries it, and under partitions records change all the time.
pub type Records = BTreeMap<Arc<str>, Arc<Record>>;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}
