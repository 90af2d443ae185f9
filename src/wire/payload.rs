//! The bodies the node reads and writes, tagged by `type`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{Element, ErrorCode, Gossip};

/// Every body type the node reads or writes. Its variant names are the `type`s the node
/// knows: `parse_line` asks serde for them rather than keeping a list of its own.
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
        message: Element,
    },
    BroadcastOk,
    Read,
    ReadOk(ReadOk),
    Add(Add),
    AddOk,
    /// Our extension: this node's view of its peers.
    Membership,
    MembershipOk(MembershipView),
    /// Node-to-node dissemination and failure detection.
    Gossip(Gossip),
    Error {
        code: ErrorCode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
}

impl Payload {
    pub fn error(code: ErrorCode, text: impl Into<String>) -> Payload {
        Payload::Error {
            code,
            text: Some(text.into()),
        }
    }
}

/// `add`: a g-set element or a counter delta. On the wire, exactly one of the keys
/// `element` (any JSON value) or `delta` (an integer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AddKeys", into = "AddKeys")]
pub enum Add {
    Element(Element),
    Delta(i64),
}

#[derive(Clone, Serialize, Deserialize)]
struct AddKeys {
    /// Present even when `null`: that is an element too.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    element: Option<Element>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delta: Option<i64>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Element>, D::Error> {
    Element::deserialize(d).map(Some)
}

impl TryFrom<AddKeys> for Add {
    type Error = &'static str;

    fn try_from(keys: AddKeys) -> Result<Self, Self::Error> {
        match (keys.element, keys.delta) {
            (Some(element), None) => Ok(Add::Element(element)),
            (None, Some(delta)) => Ok(Add::Delta(delta)),
            _ => Err("add needs exactly one of element or delta"),
        }
    }
}

impl From<Add> for AddKeys {
    fn from(add: Add) -> Self {
        match add {
            Add::Element(element) => AddKeys {
                element: Some(element),
                delta: None,
            },
            Add::Delta(delta) => AddKeys {
                element: None,
                delta: Some(delta),
            },
        }
    }
}

/// The three shapes of `read_ok`: broadcast (`messages`), g-set (`value` array),
/// counters (`value` integer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReadOk {
    Messages { messages: Vec<Element> },
    Elements { value: Vec<Element> },
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
