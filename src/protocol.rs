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

use crate::event::Rejected;

/// The `type`s the node understands; anything else is answered with `not-supported`.
const KNOWN_TYPES: &[&str] = &[
    "init",
    "init_ok",
    "topology",
    "topology_ok",
    "echo",
    "echo_ok",
    "generate",
    "generate_ok",
    "broadcast",
    "broadcast_ok",
    "read",
    "read_ok",
    "add",
    "add_ok",
    "membership",
    "membership_ok",
    "gossip",
    "error",
];

/// Parses one stdin line (without its newline) into an envelope. Parsing goes in stages so
/// that a rejection carries whatever could be recovered for an `error` reply: `src`,
/// `dest`, `msg_id`.
pub fn parse_line(line: &[u8]) -> Result<Envelope, Rejected> {
    let mut rejected = Rejected {
        src: None,
        dest: None,
        msg_id: None,
        code: ErrorCode::MalformedRequest,
        text: String::new(),
    };
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            rejected.text = format!("not valid JSON: {e}");
            return Err(rejected);
        }
    };
    let Value::Object(mut map) = value else {
        rejected.text = "not a JSON object".to_string();
        return Err(rejected);
    };
    rejected.src = map.get("src").and_then(Value::as_str).map(str::to_string);
    rejected.dest = map.get("dest").and_then(Value::as_str).map(str::to_string);
    rejected.msg_id = map
        .get("body")
        .and_then(|b| b.get("msg_id"))
        .and_then(Value::as_u64);
    let problem = match (map.get("src"), map.get("dest"), map.get("body")) {
        (None, _, _) => Some("missing src".to_string()),
        (_, None, _) => Some("missing dest".to_string()),
        (_, _, None) => Some("missing body".to_string()),
        (Some(s), _, _) if !s.is_string() => Some(format!("src is not a string: {s}")),
        (_, Some(d), _) if !d.is_string() => Some(format!("dest is not a string: {d}")),
        (_, _, Some(b)) if !b.is_object() => Some(format!("body is not an object: {b}")),
        _ => None,
    };
    if let Some(text) = problem {
        rejected.text = text;
        return Err(rejected);
    }
    let body = map.remove("body").expect("checked above");
    let kind = match body.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(other) => {
            rejected.text = format!("body type is not a string: {other}");
            return Err(rejected);
        }
        None => {
            rejected.text = "body has no type".to_string();
            return Err(rejected);
        }
    };
    if !KNOWN_TYPES.contains(&kind.as_str()) {
        rejected.code = ErrorCode::NotSupported;
        rejected.text = format!("unknown type {kind:?}");
        return Err(rejected);
    }
    let body: Body = match serde_json::from_value(body) {
        Ok(body) => body,
        Err(e) => {
            rejected.text = format!("malformed {kind}: {e}");
            return Err(rejected);
        }
    };
    Ok(Envelope {
        src: rejected.src.take().expect("checked above"),
        dest: rejected.dest.take().expect("checked above"),
        body,
    })
}

/// One compact JSON line (without the newline).
pub fn to_line(env: &Envelope) -> String {
    serde_json::to_string(env).expect("envelopes always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(payload: Payload, in_reply_to: Option<u64>) -> Value {
        serde_json::to_value(Body {
            msg_id: None,
            in_reply_to,
            payload,
        })
        .unwrap()
    }

    #[test]
    fn replies_have_exactly_the_schema_keys() {
        let cases = [
            (Payload::InitOk, json!({"type":"init_ok","in_reply_to":1})),
            (
                Payload::TopologyOk,
                json!({"type":"topology_ok","in_reply_to":1}),
            ),
            (
                Payload::EchoOk { echo: json!("hi") },
                json!({"type":"echo_ok","echo":"hi","in_reply_to":1}),
            ),
            (
                Payload::GenerateOk { id: "n0-1".into() },
                json!({"type":"generate_ok","id":"n0-1","in_reply_to":1}),
            ),
            (
                Payload::BroadcastOk,
                json!({"type":"broadcast_ok","in_reply_to":1}),
            ),
            (
                Payload::ReadOk(ReadOk::Messages { messages: vec![] }),
                json!({"type":"read_ok","messages":[],"in_reply_to":1}),
            ),
            (
                Payload::ReadOk(ReadOk::Elements { value: vec![3] }),
                json!({"type":"read_ok","value":[3],"in_reply_to":1}),
            ),
            (
                Payload::ReadOk(ReadOk::Counter { value: -4 }),
                json!({"type":"read_ok","value":-4,"in_reply_to":1}),
            ),
            (Payload::AddOk, json!({"type":"add_ok","in_reply_to":1})),
            (
                Payload::Error {
                    code: 12,
                    text: Some("bad".into()),
                },
                json!({"type":"error","code":12,"text":"bad","in_reply_to":1}),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(body(payload, Some(1)), expected);
        }
    }

    #[test]
    fn every_payload_round_trips() {
        let payloads = [
            Payload::Init {
                node_id: "n0".into(),
                node_ids: vec!["n0".into(), "n1".into()],
            },
            Payload::InitOk,
            Payload::Topology {
                topology: [("n0".to_string(), vec!["n1".to_string()])].into(),
            },
            Payload::TopologyOk,
            Payload::Echo {
                echo: json!({"a": [1, 2]}),
            },
            Payload::EchoOk { echo: json!(null) },
            Payload::Generate,
            Payload::GenerateOk { id: "n1-9".into() },
            Payload::Broadcast { message: -3 },
            Payload::BroadcastOk,
            Payload::Read,
            Payload::ReadOk(ReadOk::Messages {
                messages: vec![1, 2],
            }),
            Payload::ReadOk(ReadOk::Elements { value: vec![1] }),
            Payload::ReadOk(ReadOk::Counter { value: 7 }),
            Payload::Add {
                element: Some(4),
                delta: None,
            },
            Payload::Add {
                element: None,
                delta: Some(-2),
            },
            Payload::AddOk,
            Payload::Membership,
            Payload::MembershipOk(MembershipView {
                incarnation: 2,
                alive: vec!["n1".into()],
                ..MembershipView::default()
            }),
            Payload::Gossip(Gossip {
                seq: 3,
                ack: 2,
                ack_delay: 40,
                parent: true,
                probe: false,
                values: vec![1, 5],
                counts: [("n0".to_string(), [3, 1])].into(),
                members: [(
                    "n2".to_string(),
                    Record {
                        version: 4,
                        inc: 1,
                        suspects: [("n3".to_string(), 0)].into(),
                        doubts: BTreeMap::new(),
                    },
                )]
                .into(),
            }),
            Payload::Gossip(Gossip::default()),
            Payload::Error {
                code: 10,
                text: None,
            },
        ];
        for payload in payloads {
            let env = Envelope {
                src: "n0".into(),
                dest: "n1".into(),
                body: Body {
                    msg_id: Some(5),
                    in_reply_to: None,
                    payload,
                },
            };
            let line = to_line(&env);
            assert!(!line.contains('\n'));
            assert_eq!(parse_line(line.as_bytes()), Ok(env), "{line}");
        }
    }

    #[test]
    fn incoming_envelopes_may_carry_id_and_unknown_keys() {
        let env = parse_line(br#"{"id":4,"src":"c1","dest":"n0","extra":1,"body":{"type":"read","msg_id":2,"x":true}}"#)
            .unwrap();
        assert_eq!(env.body.payload, Payload::Read);
        assert_eq!(env.body.msg_id, Some(2));
    }

    fn rejection(line: &str) -> Rejected {
        parse_line(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn rejections_keep_what_can_be_answered() {
        let r = rejection("{not json");
        assert_eq!(
            (r.src, r.msg_id, r.code),
            (None, None, ErrorCode::MalformedRequest)
        );
        assert!(rejection("[1,2]").text.contains("not a JSON object"));
        let r = rejection(r#"{"src":"c1","body":{"type":"echo","msg_id":3,"echo":1}}"#);
        assert_eq!((r.src.as_deref(), r.msg_id), (Some("c1"), Some(3)));
        assert!(r.text.contains("missing dest"));
        let r = rejection(r#"{"src":"c1","dest":"n0","body":{"msg_id":3}}"#);
        assert!(r.text.contains("no type"));
        let r = rejection(r#"{"src":"c1","dest":"n0","body":{"type":"frobnicate","msg_id":3}}"#);
        assert_eq!(r.code, ErrorCode::NotSupported);
        let r = rejection(
            r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","msg_id":3,"message":"x"}}"#,
        );
        assert_eq!(
            (r.code, r.dest.as_deref()),
            (ErrorCode::MalformedRequest, Some("n0"))
        );
        assert!(r.text.contains("broadcast"), "{}", r.text);
        let r = rejection(
            r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","msg_id":3,"message":1.5}}"#,
        );
        assert_eq!(r.code, ErrorCode::MalformedRequest);
        let r = rejection(r#"{"src":"c1","dest":"n0","body":{"type":"init","msg_id":1}}"#);
        assert!(r.text.contains("node_id"), "{}", r.text);
        assert_eq!(rejection("\u{fffd}").src, None);
        assert!(parse_line(b"\xff\xfe").is_err());
    }
}
