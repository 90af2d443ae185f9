//! Maelstrom's wire format as our node sees it: envelopes, the typed bodies of clients and
//! peers, error codes, and the parsing of one input line. Self-contained: nothing here
//! knows of the state machine.
//!
//! Replies carry exactly the keys of Maelstrom's closed schemas
//! (docs/maelstrom-compatibility.md 1.7) plus `in_reply_to`; incoming envelopes may carry
//! `id` and unknown keys, which are ignored.

mod element;
mod error;
mod parse;
mod payload;
mod peer;

pub use element::{Element, MAX_ELEMENT_BYTES};
pub use error::{ErrorCode, Rejected};
pub use parse::{parse_line, to_line};
pub use payload::{Add, MembershipView, Payload, ReadOk};
pub use peer::{Gossip, Record, Records};

use serde::{Deserialize, Serialize};

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

impl Envelope {
    /// A message that needs no reply (node-to-node gossip).
    pub fn new(src: &str, dest: &str, payload: Payload) -> Envelope {
        Envelope {
            src: src.to_string(),
            dest: dest.to_string(),
            body: Body {
                msg_id: None,
                in_reply_to: None,
                payload,
            },
        }
    }

    /// The reply to this request, from the node it was addressed to.
    pub fn reply(&self, payload: Payload) -> Envelope {
        self.reply_from(&self.dest, payload)
    }

    /// The reply to this request, from `node`: for a request addressed to another name.
    pub fn reply_from(&self, node: &str, payload: Payload) -> Envelope {
        let mut reply = Envelope::new(node, &self.src, payload);
        reply.body.in_reply_to = self.body.msg_id;
        reply
    }

    /// An `error` reply to this request, from the node it was addressed to.
    pub fn error(&self, code: ErrorCode, text: impl Into<String>) -> Envelope {
        self.reply(Payload::error(code, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
                Payload::ReadOk(ReadOk::Elements {
                    value: vec![3.into()],
                }),
                json!({"type":"read_ok","value":[3],"in_reply_to":1}),
            ),
            (
                Payload::ReadOk(ReadOk::Counter { value: -4 }),
                json!({"type":"read_ok","value":-4,"in_reply_to":1}),
            ),
            (Payload::AddOk, json!({"type":"add_ok","in_reply_to":1})),
            (
                Payload::error(ErrorCode::MalformedRequest, "bad"),
                json!({"type":"error","code":12,"text":"bad","in_reply_to":1}),
            ),
        ];
        for (payload, expected) in cases {
            assert_eq!(body(payload, Some(1)), expected);
        }
    }

    #[test]
    fn replies_go_back_to_the_sender_naming_its_request() {
        let request = Envelope {
            src: "c1".into(),
            dest: "n0".into(),
            body: Body {
                msg_id: Some(7),
                in_reply_to: None,
                payload: Payload::Read,
            },
        };
        let reply = request.reply(Payload::AddOk);
        assert_eq!((reply.src.as_str(), reply.dest.as_str()), ("n0", "c1"));
        assert_eq!((reply.body.msg_id, reply.body.in_reply_to), (None, Some(7)));
        let error = request.error(ErrorCode::NotSupported, "no");
        assert_eq!(
            serde_json::to_value(&error.body).unwrap(),
            json!({"type":"error","code":10,"text":"no","in_reply_to":7})
        );
        assert_eq!(request.reply_from("n3", Payload::InitOk).src, "n3");
    }
}
