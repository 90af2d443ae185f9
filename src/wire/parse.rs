//! One input line → an envelope, in stages, so that a rejection keeps whatever could be
//! recovered for an `error` reply: `src`, `dest`, `msg_id`.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use super::{Body, Envelope, ErrorCode, Payload, Rejected};

/// Parses one input line (without its newline) into an envelope.
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
    if !PAYLOAD_TYPES.contains(&kind.as_str()) {
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

/// The `type`s of `Payload`, as its derived `Deserialize` names them: asked of serde,
/// which lists the expected names when it meets an unknown one.
static PAYLOAD_TYPES: LazyLock<&'static [&'static str]> = LazyLock::new(|| {
    let only_a_type = serde::de::value::MapDeserializer::<_, Expected>::new(std::iter::once((
        "type",
        "\0 no such type",
    )));
    match Payload::deserialize(only_a_type) {
        Err(Expected::Variants(names)) => names,
        other => panic!("serde did not list the payload types: {other:?}"),
    }
});

/// A deserialisation error that keeps the variant names serde expected.
#[derive(Debug)]
enum Expected {
    Variants(&'static [&'static str]),
    Other(String),
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Variants(names) => write!(f, "expected one of {names:?}"),
            Expected::Other(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Expected {}

impl serde::de::Error for Expected {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Expected::Other(msg.to_string())
    }

    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Expected::Variants(expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Add, Gossip, MembershipView, ReadOk, Record};
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn the_known_types_are_the_payload_variants() {
        assert_eq!(PAYLOAD_TYPES.len(), 18, "{:?}", *PAYLOAD_TYPES);
        for kind in ["init", "read_ok", "add", "membership_ok", "gossip", "error"] {
            assert!(PAYLOAD_TYPES.contains(&kind), "{kind}");
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
            Payload::Broadcast {
                message: (-3).into(),
            },
            Payload::Broadcast {
                message: json!({"k": ["v"]}).try_into().unwrap(),
            },
            Payload::BroadcastOk,
            Payload::Read,
            Payload::ReadOk(ReadOk::Messages {
                messages: vec![1.into(), 2.into()],
            }),
            Payload::ReadOk(ReadOk::Elements {
                value: vec![1.into(), json!("x").try_into().unwrap()],
            }),
            Payload::ReadOk(ReadOk::Counter { value: 7 }),
            Payload::Add(Add::Element(4.into())),
            Payload::Add(Add::Element(json!(null).try_into().unwrap())),
            Payload::Add(Add::Delta(-2)),
            Payload::AddOk,
            Payload::Membership,
            Payload::MembershipOk(MembershipView {
                incarnation: 2,
                alive: vec!["n1".into()],
                ..MembershipView::default()
            }),
            Payload::Gossip(Gossip {
                epoch: 1_764_000_000_000,
                seq: 3,
                ack: 2,
                ack_delay: 40,
                parent: true,
                probe: false,
                values: vec![1.into(), 5.into(), json!([1]).try_into().unwrap()],
                counts: [("n0".to_string(), [3, 1])].into(),
                members: [(
                    "n2".into(),
                    std::sync::Arc::new(Record {
                        version: 4,
                        inc: 1,
                        suspects: [("n3".to_string(), 0)].into(),
                        doubts: BTreeMap::new(),
                    }),
                )]
                .into(),
            }),
            Payload::Gossip(Gossip::default()),
            Payload::Error {
                code: ErrorCode::NotSupported,
                text: None,
            },
            Payload::Error {
                code: ErrorCode::Other(1001),
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
    fn add_keeps_its_wire_form() {
        let element = to_line(&Envelope::new(
            "c1",
            "n0",
            Payload::Add(Add::Element(4.into())),
        ));
        assert!(
            element.ends_with(r#""body":{"type":"add","element":4}}"#),
            "{element}"
        );
        let delta = to_line(&Envelope::new("c1", "n0", Payload::Add(Add::Delta(-2))));
        assert!(
            delta.ends_with(r#""body":{"type":"add","delta":-2}}"#),
            "{delta}"
        );
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
        let r = rejection(r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","msg_id":3}}"#);
        assert_eq!(
            (r.code, r.dest.as_deref()),
            (ErrorCode::MalformedRequest, Some("n0"))
        );
        assert!(r.text.contains("broadcast"), "{}", r.text);
        let r = rejection(r#"{"src":"c1","dest":"n0","body":{"type":"init","msg_id":1}}"#);
        assert!(r.text.contains("node_id"), "{}", r.text);
        assert_eq!(rejection("\u{fffd}").src, None);
        assert!(parse_line(b"\xff\xfe").is_err());
    }

    #[test]
    fn add_needs_exactly_one_of_element_and_delta() {
        for body in [r#""element":1,"delta":2"#, r#""x":1"#, r#""delta":"1""#] {
            let line =
                format!(r#"{{"src":"c1","dest":"n0","body":{{"type":"add","msg_id":3,{body}}}}}"#);
            let r = rejection(&line);
            assert_eq!(r.code, ErrorCode::MalformedRequest, "{body}");
            assert!(r.text.contains("add"), "{}", r.text);
        }
    }

    #[test]
    fn any_json_value_is_an_element_up_to_a_bound() {
        let line = |v: &str| {
            format!(
                r#"{{"src":"c1","dest":"n0","body":{{"type":"broadcast","msg_id":3,"message":{v}}}}}"#
            )
        };
        for v in [r#""x""#, "1.5", "null", r#"{"a":[1]}"#] {
            assert!(parse_line(line(v).as_bytes()).is_ok(), "{v}");
        }
        let big = format!("\"{}\"", "x".repeat(crate::wire::MAX_ELEMENT_BYTES));
        let r = rejection(&line(&big));
        assert_eq!(r.code, ErrorCode::MalformedRequest);
        assert!(r.text.contains("too large"), "{}", r.text);
    }

    #[test]
    fn unknown_error_codes_from_peers_parse() {
        let env = parse_line(
            br#"{"src":"n1","dest":"n0","body":{"type":"error","in_reply_to":3,"code":1234}}"#,
        )
        .unwrap();
        assert_eq!(
            env.body.payload,
            Payload::Error {
                code: ErrorCode::Other(1234),
                text: None
            }
        );
    }
}
