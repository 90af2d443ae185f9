//! Maelstrom's wire protocol as our node sees it: envelopes, body types, error codes.
//!
//! Replies carry exactly the keys of Maelstrom's closed schemas (spec 1.7) plus
//! `in_reply_to`; incoming envelopes may carry `id` and unknown keys, which are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message: `{"src":..,"dest":..,"body":{..}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub src: String,
    pub dest: String,
    pub body: Body,
}

/// A body: the routing ids plus a typed payload (flattened, tagged by `type`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Body {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<u64>,
    #[serde(flatten)]
    pub payload: Payload,
}

/// Every body type the node reads or writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Payload {
    Init {
        node_id: String,
        node_ids: Vec<String>,
    },
    InitOk,
    Topology {
        topology: BTreeMap<String, Vec<String>>,
    },
    TopologyOk,
    Echo {
        echo: Value,
    },
    EchoOk {
        echo: Value,
    },
    Generate,
    GenerateOk {
        id: String,
    },
    Broadcast {
        message: i64,
    },
    BroadcastOk,
    Read,
    ReadOk(ReadOk),
    /// g-set (`element`) and counters (`delta`).
    Add {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        element: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delta: Option<i64>,
    },
    AddOk,
    /// Our extension: this node's view of its peers.
    Membership,
    MembershipOk(MembershipView),
    /// Node-to-node dissemination and failure detection.
    Gossip(Gossip),
    Error {
        code: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
}

/// The three shapes of `read_ok`: broadcast (`messages`), g-set (`value` array),
/// counters (`value` integer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReadOk {
    Messages { messages: Vec<i64> },
    Elements { value: Vec<i64> },
    Counter { value: i64 },
}

/// `membership_ok`: how this node sees every peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MembershipView {
    /// This node's own incarnation.
    pub incarnation: u64,
    /// Peers no one suspects (at their current incarnation).
    pub alive: Vec<String>,
    /// Peers suspected by fewer voters than it takes to be dead: peer → voters.
    pub suspected: BTreeMap<String, Vec<String>>,
    /// Peers suspected by at least ceil((N-1)/2) of the other nodes: peer → voters.
    pub dead: BTreeMap<String, Vec<String>>,
    /// The highest incarnation known of every node, this one included.
    pub incarnations: BTreeMap<String, u64>,
}

/// A node-to-node message. Every field is optional on the wire so that pure acks are small.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gossip {
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
    pub values: Vec<i64>,
    /// Counter entries: node → [increments, decrements].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<String, [u64; 2]>,
    /// Failure-detector records the receiver is not known to have: author → record.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, Record>,
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Maelstrom's error codes (spec 1.6) that the node uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    NotSupported = 10,
    TemporarilyUnavailable = 11,
    MalformedRequest = 12,
    PreconditionFailed = 22,
}
