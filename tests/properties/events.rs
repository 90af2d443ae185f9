//! What happens to a small cluster, one step at a time: client requests good and bad, peer
//! lines that must be refused, gossip from strangers, what the network does to messages in
//! flight (deliver out of order, drop, duplicate, replay late), ticks, time that jumps, and
//! faults (pause, partition, one crash). Each step prints in a few characters, so that a
//! shrunk case reads as a script.

use std::fmt;

use proptest::prelude::*;
use serde_json::{Value, json};

/// Nodes are named by an index taken modulo the cluster size, so that shrinking the size
/// keeps every step meaningful.
pub type Ix = u8;

#[derive(Clone)]
pub enum Step {
    /// A client writes `value` at a node: `broadcast`, `add element` or `add delta`, as the
    /// workload asks (a value that is not an integer is a malformed delta).
    Write(Ix, Val),
    Read(Ix),
    Ask(Ix, Ask),
    /// A client line, mutated: it may parse or not; either way the node must cope.
    Bad(Ix, Bad),
    /// A line from a real peer that no parser may accept.
    BadPeer(Ix, Ix, BadGossip),
    /// Well-formed gossip from an id outside the cluster, with forged contents.
    Stranger(Ix, Forged),
    /// The network acts on the in-flight message at this index (modulo their number).
    Deliver(u16),
    Drop(u16),
    /// Delivers a copy now; the original stays in flight.
    Dup(u16),
    /// Delivers again a message delivered before (late, stale).
    Replay(u16),
    /// One extra tick at a node, now.
    Tick(Ix, bool),
    /// Time goes on: ticks at their periods, messages delivered when due.
    Advance(u32),
    /// Every process is frozen while the clock jumps (a suspended machine): nothing runs,
    /// nothing is delivered, and each ticker fires once late, as tokio's `Skip` does.
    Stall(u32),
    Pause(Ix),
    Resume(Ix),
    /// The nodes whose bit is set on one side, the others on the other.
    Partition(u8),
    Heal,
    /// The node stops for good (only the first crash of a case is applied).
    Crash(Ix),
    /// The cluster's `init` for a node not yet initialised (or again, for one that is).
    Init(Ix),
    /// The transport says a peer is unreachable (cluster mode's hint).
    Unreachable(Ix, Ix),
    /// The transport has a new connection with a peer (cluster mode's other hint).
    Connected(Ix, Ix),
}

/// A value a client writes.
#[derive(Clone)]
pub enum Val {
    Int(i64),
    /// A string of this many characters: around `MAX_ELEMENT_BYTES` some fit, some do not.
    Text(u16),
    Float,
    Nested(u8),
}

impl Val {
    pub fn json(&self) -> Value {
        match self {
            Val::Int(n) => json!(n),
            Val::Text(len) => json!("x".repeat(usize::from(*len))),
            Val::Float => json!(1.5),
            Val::Nested(k) => json!({"k": [k, null, true], "a": {"b": "c"}}),
        }
    }
}

/// Requests besides writes and reads.
#[derive(Clone, Copy, Debug)]
pub enum Ask {
    Echo,
    Generate,
    Topology,
    Membership,
    /// `init` naming other nodes than the cluster's.
    InitOther,
    /// `init` whose `node_id` is not in `node_ids`.
    InitStranger,
    /// A read addressed to a node that does not exist, delivered here anyway.
    Misaddressed,
    /// A reply type sent as if it were a request: never answered.
    ReplyType,
    /// A read without `msg_id`: there is nothing to put in `in_reply_to`.
    NoMsgId,
}

/// How a client line goes wrong.
#[derive(Clone, Copy, Debug)]
pub enum Bad {
    /// Cut after this many bytes (modulo its length): not JSON.
    Cut(u16),
    Missing(Field),
    WrongType(Field),
    UnknownType,
    NotAnObject,
    Blank,
    NotUtf8,
    /// Keys Maelstrom adds or that no one knows: `id` and `extra` (accepted).
    ExtraKeys,
}

#[derive(Clone, Copy, Debug)]
pub enum Field {
    Src,
    Dest,
    Body,
    Type,
    MsgId,
    /// The payload's own field (`message`, `element`, `delta`).
    Payload,
}

/// A gossip line from a real peer that must not parse.
#[derive(Clone, Copy, Debug)]
pub enum BadGossip {
    SeqNotANumber,
    ValuesNotAnArray,
    CountsOfOne,
    RecordWithoutVersion,
    NegativeAck,
    SeqTooLarge,
    TypeNotAString,
    Cut(u16),
}

/// Gossip from an id outside the cluster, with contents that would do harm if believed.
#[derive(Clone, Copy)]
pub struct Forged {
    pub from_client: bool,
    pub msg_id: bool,
    pub huge: bool,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Write(n, v) => write!(f, "W{n}:{v:?}"),
            Step::Read(n) => write!(f, "R{n}"),
            Step::Ask(n, a) => write!(f, "{a:?}@{n}"),
            Step::Bad(n, b) => write!(f, "Bad{b:?}@{n}"),
            Step::BadPeer(a, b, g) => write!(f, "{g:?}@{a}>{b}"),
            Step::Stranger(n, g) => write!(f, "{g:?}@{n}"),
            Step::Deliver(i) => write!(f, "D{i}"),
            Step::Drop(i) => write!(f, "X{i}"),
            Step::Dup(i) => write!(f, "Dup{i}"),
            Step::Replay(i) => write!(f, "Replay{i}"),
            Step::Tick(n, detect) => write!(f, "T{n}{}", if *detect { "d" } else { "g" }),
            Step::Advance(ms) => write!(f, "+{ms}ms"),
            Step::Stall(ms) => write!(f, "Stall{ms}ms"),
            Step::Pause(n) => write!(f, "Pause{n}"),
            Step::Resume(n) => write!(f, "Resume{n}"),
            Step::Partition(mask) => write!(f, "Part{mask:#07b}"),
            Step::Heal => write!(f, "Heal"),
            Step::Crash(n) => write!(f, "Crash{n}"),
            Step::Init(n) => write!(f, "Init{n}"),
            Step::Unreachable(a, b) => write!(f, "Unreach{a}>{b}"),
            Step::Connected(a, b) => write!(f, "Conn{a}>{b}"),
        }
    }
}

impl fmt::Debug for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Int(n) => write!(f, "{n}"),
            Val::Text(len) => write!(f, "str{len}"),
            Val::Float => write!(f, "1.5"),
            Val::Nested(k) => write!(f, "obj{k}"),
        }
    }
}

impl fmt::Debug for Forged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = if self.from_client { "c9" } else { "n9" };
        let id = if self.msg_id { "+id" } else { "" };
        let huge = if self.huge { "+huge" } else { "" };
        write!(f, "Forged{from}{id}{huge}")
    }
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        12 => (-5i64..40).prop_map(Val::Int),
        2 => prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(i64::MAX - 1), Just(i64::MIN + 1)]
            .prop_map(Val::Int),
        1 => prop_oneof![0u16..6, 4090u16..4100].prop_map(Val::Text),
        1 => Just(Val::Float),
        1 => (0u8..4).prop_map(Val::Nested),
    ]
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(Field::Src),
        Just(Field::Dest),
        Just(Field::Body),
        Just(Field::Type),
        Just(Field::MsgId),
        Just(Field::Payload),
    ]
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![
        Just(Ask::Echo),
        Just(Ask::Generate),
        Just(Ask::Topology),
        Just(Ask::Membership),
        Just(Ask::InitOther),
        Just(Ask::InitStranger),
        Just(Ask::Misaddressed),
        Just(Ask::ReplyType),
        Just(Ask::NoMsgId),
    ]
}

fn bad() -> impl Strategy<Value = Bad> {
    prop_oneof![
        any::<u16>().prop_map(Bad::Cut),
        field().prop_map(Bad::Missing),
        field().prop_map(Bad::WrongType),
        Just(Bad::UnknownType),
        Just(Bad::NotAnObject),
        Just(Bad::Blank),
        Just(Bad::NotUtf8),
        Just(Bad::ExtraKeys),
    ]
}

fn bad_gossip() -> impl Strategy<Value = BadGossip> {
    prop_oneof![
        Just(BadGossip::SeqNotANumber),
        Just(BadGossip::ValuesNotAnArray),
        Just(BadGossip::CountsOfOne),
        Just(BadGossip::RecordWithoutVersion),
        Just(BadGossip::NegativeAck),
        Just(BadGossip::SeqTooLarge),
        Just(BadGossip::TypeNotAString),
        any::<u16>().prop_map(BadGossip::Cut),
    ]
}

fn ix() -> impl Strategy<Value = Ix> {
    0u8..5
}

/// One step, weighted towards writes and the network moving messages.
pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        20 => (ix(), val()).prop_map(|(n, v)| Step::Write(n, v)),
        6 => ix().prop_map(Step::Read),
        4 => (ix(), ask()).prop_map(|(n, a)| Step::Ask(n, a)),
        5 => (ix(), bad()).prop_map(|(n, b)| Step::Bad(n, b)),
        2 => (ix(), ix(), bad_gossip()).prop_map(|(a, b, g)| Step::BadPeer(a, b, g)),
        2 => (ix(), any::<(bool, bool, bool)>()).prop_map(|(n, (from_client, msg_id, huge))| {
            Step::Stranger(n, Forged { from_client, msg_id, huge })
        }),
        16 => any::<u16>().prop_map(Step::Deliver),
        4 => any::<u16>().prop_map(Step::Drop),
        3 => any::<u16>().prop_map(Step::Dup),
        2 => any::<u16>().prop_map(Step::Replay),
        4 => (ix(), any::<bool>()).prop_map(|(n, d)| Step::Tick(n, d)),
        12 => prop_oneof![8 => 0u32..50, 3 => 50u32..600, 1 => 600u32..4000]
            .prop_map(Step::Advance),
        1 => (1000u32..30_000).prop_map(Step::Stall),
        1 => ix().prop_map(Step::Pause),
        1 => ix().prop_map(Step::Resume),
        1 => (1u8..31).prop_map(Step::Partition),
        1 => Just(Step::Heal),
        1 => ix().prop_map(Step::Crash),
        1 => ix().prop_map(Step::Init),
        1 => (ix(), ix()).prop_map(|(a, b)| Step::Unreachable(a, b)),
        1 => (ix(), ix()).prop_map(|(a, b)| Step::Connected(a, b)),
    ]
}

/// One case: the cluster's size, the network's latency, which nodes are initialised before
/// the first step, and the steps.
#[derive(Clone)]
pub struct Case {
    pub nodes: usize,
    pub latency_ms: u64,
    pub inited: u8,
    pub steps: Vec<Step>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} nodes, latency {} ms, initialised {:#07b}, steps {:?}",
            self.nodes, self.latency_ms, self.inited, self.steps
        )
    }
}

pub fn case(max_steps: usize) -> impl Strategy<Value = Case> {
    (
        2usize..=5,
        prop_oneof![Just(0u64), Just(1), Just(5), Just(40), Just(150)],
        prop_oneof![3 => Just(0b11111u8), 1 => any::<u8>()],
        proptest::collection::vec(step(), 1..max_steps),
    )
        .prop_map(|(nodes, latency_ms, inited, steps)| Case {
            nodes,
            latency_ms,
            inited,
            steps,
        })
}

/// A line from a real peer that no parser may accept.
pub fn bad_gossip_line(from: &str, to: &str, bad: BadGossip) -> Vec<u8> {
    let body = match bad {
        BadGossip::SeqNotANumber => json!({"type": "gossip", "seq": "1"}),
        BadGossip::ValuesNotAnArray => json!({"type": "gossip", "seq": 1, "values": 5}),
        BadGossip::CountsOfOne => json!({"type": "gossip", "counts": {from: [1]}}),
        BadGossip::RecordWithoutVersion => {
            json!({"type": "gossip", "members": {from: {"inc": 1}}})
        }
        BadGossip::NegativeAck => json!({"type": "gossip", "ack": -1}),
        BadGossip::SeqTooLarge => {
            let line = format!(
                r#"{{"src":"{from}","dest":"{to}","body":{{"type":"gossip","seq":18446744073709551616}}}}"#
            );
            return line.into_bytes();
        }
        BadGossip::TypeNotAString => json!({"type": 5, "seq": 1}),
        BadGossip::Cut(at) => {
            let line = json!({"src": from, "dest": to, "body": {"type": "gossip", "seq": 1, "values": [1]}})
                .to_string();
            // At least one byte: an empty line is blank, skipped before parsing.
            let at = 1 + usize::from(at) % (line.len() - 1);
            return line.as_bytes()[..at].to_vec();
        }
    };
    json!({"src": from, "dest": to, "body": body})
        .to_string()
        .into_bytes()
}

/// A client line `line` (a valid request of `kind` with the payload field `payload_key`)
/// made bad.
pub fn bad_line(mut line: Value, payload_key: &str, bad: Bad) -> Vec<u8> {
    let field_path = |field: Field| -> (bool, &str) {
        match field {
            Field::Src => (false, "src"),
            Field::Dest => (false, "dest"),
            Field::Body => (false, "body"),
            Field::Type => (true, "type"),
            Field::MsgId => (true, "msg_id"),
            Field::Payload => (true, payload_key),
        }
    };
    match bad {
        Bad::Cut(at) => {
            let text = line.to_string();
            let at = usize::from(at) % text.len();
            return text.as_bytes()[..at].to_vec();
        }
        Bad::Missing(field) => {
            let (in_body, key) = field_path(field);
            let map = if in_body {
                &mut line["body"]
            } else {
                &mut line
            };
            map.as_object_mut().expect("an object").remove(key);
        }
        Bad::WrongType(field) => {
            let (in_body, key) = field_path(field);
            let wrong = match field {
                Field::Src | Field::Type => json!(7),
                Field::Dest => json!(["n0"]),
                Field::Body => json!("read"),
                Field::MsgId => json!("1"),
                // A string too large to be an element, and not an integer for a delta.
                Field::Payload => json!("y".repeat(5000)),
            };
            let map = if in_body {
                &mut line["body"]
            } else {
                &mut line
            };
            map[key] = wrong;
        }
        Bad::UnknownType => line["body"]["type"] = json!("frobnicate"),
        Bad::NotAnObject => return b"[1,2]".to_vec(),
        Bad::Blank => return b" \t\r\n".to_vec(),
        Bad::NotUtf8 => return b"\xff\xfe{".to_vec(),
        Bad::ExtraKeys => {
            line["id"] = json!(4);
            line["extra"] = json!({"a": 1});
            line["body"]["unknown"] = json!(true);
        }
    }
    line.to_string().into_bytes()
}
