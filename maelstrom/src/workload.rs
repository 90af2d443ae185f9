//! The workloads (docs/maelstrom-compatibility.md 5.3-5.4): their op mixes, the request
//! each op sends, the closed schema of the reply, and how an outcome becomes a history op
//! (docs/maelstrom-compatibility.md 1.6).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::edn::Edn;
use crate::history::OpType;
use crate::message::Reply;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Echo,
    UniqueIds,
    Broadcast,
    GSet,
    GCounter,
    PnCounter,
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "echo" => Ok(Workload::Echo),
            "unique-ids" => Ok(Workload::UniqueIds),
            "broadcast" | "gossip" => Ok(Workload::Broadcast),
            "g-set" => Ok(Workload::GSet),
            "g-counter" => Ok(Workload::GCounter),
            "pn-counter" => Ok(Workload::PnCounter),
            other => Err(format!(
                "unknown workload {other:?}: expected echo, unique-ids, broadcast (or gossip), g-set, g-counter, pn-counter"
            )),
        }
    }
}

/// What a client op does: Jepsen's `:f`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Echo,
    Generate,
    Broadcast,
    Add,
    Read,
}

impl Verb {
    /// The keyword the history records, without its colon.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Echo => "echo",
            Verb::Generate => "generate",
            Verb::Broadcast => "broadcast",
            Verb::Add => "add",
            Verb::Read => "read",
        }
    }
}

/// One client operation to perform.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpec {
    pub f: Verb,
    pub value: Edn,
    pub final_read: bool,
}

/// How an RPC ended, before it becomes a history op.
#[derive(Clone, Debug)]
pub enum RpcResult {
    Reply(Reply),
    Timeout,
}

/// The completion of an op: its type, value, error and exception.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub kind: OpType,
    pub value: Edn,
    pub error: Option<Edn>,
    pub exception: Option<String>,
}

/// Maelstrom's error codes: name and whether the failure is definite
/// (docs/maelstrom-compatibility.md 1.6).
pub fn error_code(code: i64) -> (&'static str, bool) {
    match code {
        0 => ("timeout", false),
        1 => ("node-not-found", true),
        10 => ("not-supported", true),
        11 => ("temporarily-unavailable", true),
        12 => ("malformed-request", true),
        13 => ("crash", false),
        14 => ("abort", true),
        20 => ("key-does-not-exist", true),
        21 => ("key-already-exists", true),
        22 => ("precondition-failed", true),
        30 => ("txn-conflict", true),
        _ => ("unknown", false),
    }
}

/// Generates the main-phase ops of a workload.
#[derive(Clone, Debug)]
pub struct Generator {
    workload: Workload,
    next_value: i64,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Echo => "echo",
            Workload::UniqueIds => "unique-ids",
            Workload::Broadcast => "broadcast",
            Workload::GSet => "g-set",
            Workload::GCounter => "g-counter",
            Workload::PnCounter => "pn-counter",
        }
    }

    /// Workloads with a final phase: heal, wait 10 s, one final read per thread.
    pub fn has_final(self) -> bool {
        !matches!(self, Workload::Echo | Workload::UniqueIds)
    }

    /// Only unique-ids keeps its client after an indeterminate op.
    pub fn reusable_client(self) -> bool {
        self == Workload::UniqueIds
    }

    pub fn sends_topology(self) -> bool {
        self == Workload::Broadcast
    }

    /// The workload's op besides `read`.
    pub fn verb(self) -> Verb {
        match self {
            Workload::Echo => Verb::Echo,
            Workload::UniqueIds => Verb::Generate,
            Workload::Broadcast => Verb::Broadcast,
            Workload::GSet | Workload::GCounter | Workload::PnCounter => Verb::Add,
        }
    }

    pub fn generator(self) -> Generator {
        Generator {
            workload: self,
            next_value: 0,
        }
    }

    /// The final read (broadcast and counters mark it `:final? true`; g-set does not).
    pub fn final_op(self) -> OpSpec {
        OpSpec {
            f: Verb::Read,
            value: Edn::Nil,
            final_read: self != Workload::GSet,
        }
    }

    /// The request body (without `msg_id`).
    pub fn request(self, op: &OpSpec) -> Value {
        let v = || op.value.to_json();
        match (self, op.f) {
            (Workload::Echo, _) => json!({"type": "echo", "echo": v()}),
            (Workload::UniqueIds, _) => json!({"type": "generate"}),
            (_, Verb::Read) => json!({"type": "read"}),
            (Workload::Broadcast, _) => json!({"type": "broadcast", "message": v()}),
            (Workload::GSet, _) => json!({"type": "add", "element": v()}),
            (Workload::GCounter | Workload::PnCounter, _) => json!({"type": "add", "delta": v()}),
        }
    }

    /// Maelstrom's `with-errors` mapping applies to echo, unique-ids and broadcast only.
    fn with_errors(self) -> bool {
        matches!(
            self,
            Workload::Echo | Workload::UniqueIds | Workload::Broadcast
        )
    }

    fn idempotent(self, f: Verb) -> bool {
        self == Workload::Broadcast && f == Verb::Read
    }

    /// Turns an RPC outcome into the completion op (docs/maelstrom-compatibility.md 1.6, 5.4).
    pub fn complete(self, op: &OpSpec, result: RpcResult) -> Completion {
        let indeterminate = |message: String| Completion {
            kind: OpType::Info,
            value: op.value.clone(),
            error: Some(Edn::Str(format!("indeterminate: {message}"))),
            exception: Some(message),
        };
        let body = match result {
            RpcResult::Timeout if self.with_errors() => {
                return Completion {
                    kind: if self.idempotent(op.f) {
                        OpType::Fail
                    } else {
                        OpType::Info
                    },
                    value: op.value.clone(),
                    error: Some(Edn::kw("net-timeout")),
                    exception: None,
                };
            }
            RpcResult::Timeout => {
                return indeterminate(
                    "clojure.lang.ExceptionInfo: timed out awaiting the reply".into(),
                );
            }
            RpcResult::Reply(reply) => {
                if self.reads_lifted(op.f, &reply) {
                    let values = reply.into_lifted().expect("values lifted").values;
                    return Completion {
                        kind: OpType::Ok,
                        value: Edn::Vector(values),
                        error: None,
                        exception: None,
                    };
                }
                reply.into_json()
            }
        };
        let body = &body;
        if body.get("type").and_then(Value::as_str) == Some("error") {
            let code = body.get("code").and_then(Value::as_i64).unwrap_or(-1);
            let text = body.get("text").and_then(Value::as_str).unwrap_or_default();
            let (name, definite) = error_code(code);
            if !self.with_errors() {
                return indeterminate(format!("clojure.lang.ExceptionInfo: {name}: {text}"));
            }
            return Completion {
                kind: if definite || self.idempotent(op.f) {
                    OpType::Fail
                } else {
                    OpType::Info
                },
                value: op.value.clone(),
                error: Some(Edn::Vector(vec![Edn::kw(name), Edn::Str(text.to_string())])),
                exception: None,
            };
        }
        match self.validate(op.f, body) {
            Ok(value) => Completion {
                kind: OpType::Ok,
                value: value.unwrap_or_else(|| op.value.clone()),
                error: None,
                exception: None,
            },
            Err(problem) => indeterminate(format!(
                "clojure.lang.ExceptionInfo: Malformed RPC response: {problem}"
            )),
        }
    }

    /// Whether `reply` had its values lifted out (`Reply::parted`) and is a valid answer
    /// to a read of an array, which they are then the value of. (The empty array in their
    /// place passes the closed schema as they would; any other reply is judged from its
    /// whole JSON.)
    fn reads_lifted(self, f: Verb, reply: &Reply) -> bool {
        let Some((body, lifted)) = reply.parted() else {
            return false;
        };
        let (kind, field) = self.schema(f);
        field.is_some_and(|(name, kind)| name == lifted.key && matches!(kind, Field::Array))
            && body.get("type").and_then(Value::as_str) != Some("error")
            && body
                .as_object()
                .is_some_and(|map| check_closed(map, kind, field).is_ok())
    }

    /// A reply's `type` and its one field (if any) with the field's type.
    fn schema(self, f: Verb) -> (&'static str, Option<(&'static str, Field)>) {
        match (self, f) {
            (Workload::Echo, _) => ("echo_ok", Some(("echo", Field::Any))),
            (Workload::UniqueIds, _) => ("generate_ok", Some(("id", Field::Any))),
            (Workload::Broadcast, Verb::Read) => ("read_ok", Some(("messages", Field::Array))),
            (Workload::GSet, Verb::Read) => ("read_ok", Some(("value", Field::Array))),
            (Workload::GCounter | Workload::PnCounter, Verb::Read) => {
                ("read_ok", Some(("value", Field::Integer)))
            }
            (Workload::Broadcast, _) => ("broadcast_ok", None),
            _ => ("add_ok", None),
        }
    }

    /// Checks a reply against its closed schema (docs/maelstrom-compatibility.md 1.7) and
    /// extracts the ok value (`None`: the invocation's value stands).
    fn validate(self, f: Verb, body: &Value) -> Result<Option<Edn>, String> {
        let (kind, field) = self.schema(f);
        let Some(map) = body.as_object() else {
            return Err(format!("body is not an object: {body}"));
        };
        check_closed(map, kind, field)?;
        Ok(match (self, field) {
            (Workload::Echo, _) => Some(Edn::Map(
                map.iter()
                    .map(|(k, v)| (Edn::kw(k), Edn::from_json(v)))
                    .collect(),
            )),
            (_, Some((name, _))) => Some(Edn::from_json(&map[name])),
            (_, None) => None,
        })
    }
}

/// The type a schema field must have.
#[derive(Clone, Copy, Debug)]
pub enum Field {
    Any,
    /// An array of any JSON values (Maelstrom's `[s/Any]`): broadcast's and g-set's reads.
    Array,
    Integer,
}

/// A closed schema: `type` equal to `kind`, the one field (if any), integer `in_reply_to`,
/// optional integer `msg_id`, and nothing else.
pub fn check_closed(
    map: &Map<String, Value>,
    kind: &str,
    field: Option<(&str, Field)>,
) -> Result<(), String> {
    if map.get("type").and_then(Value::as_str) != Some(kind) {
        return Err(format!("expected type {kind:?}, got {:?}", map.get("type")));
    }
    if !map.get("in_reply_to").is_some_and(is_integer) {
        return Err(format!(
            "in_reply_to must be an integer, got {:?}",
            map.get("in_reply_to")
        ));
    }
    if map.get("msg_id").is_some_and(|v| !is_integer(v)) {
        return Err(format!(
            "msg_id must be an integer, got {:?}",
            map.get("msg_id")
        ));
    }
    if let Some((name, kind)) = field {
        let value = map
            .get(name)
            .ok_or_else(|| format!("missing key {name:?}"))?;
        let fits = match kind {
            Field::Any => true,
            Field::Array => value.is_array(),
            Field::Integer => is_integer(value),
        };
        if !fits {
            return Err(format!("{name} has the wrong type: {value}"));
        }
    }
    let allowed = |k: &str| {
        matches!(k, "type" | "in_reply_to" | "msg_id") || field.is_some_and(|(name, _)| name == k)
    };
    if let Some(extra) = map.keys().find(|k| !allowed(k)) {
        return Err(format!("unexpected key {extra:?}"));
    }
    Ok(())
}

fn is_integer(v: &Value) -> bool {
    v.is_i64() || v.is_u64()
}

impl Generator {
    /// The next main-phase op, drawn with the workload's mix.
    pub fn next(&mut self, rng: &mut ChaCha8Rng) -> OpSpec {
        let op = |f, value| OpSpec {
            f,
            value,
            final_read: false,
        };
        match self.workload {
            Workload::Echo => op(
                Verb::Echo,
                Edn::Str(format!("Please echo {}", rng.random_range(0..128))),
            ),
            Workload::UniqueIds => op(Verb::Generate, Edn::Nil),
            Workload::Broadcast | Workload::GSet => {
                if rng.random_bool(0.5) {
                    let value = self.next_value;
                    self.next_value += 1;
                    op(self.workload.verb(), Edn::Int(value))
                } else {
                    op(Verb::Read, Edn::Nil)
                }
            }
            Workload::PnCounter => pn_counter_op(rng),
            Workload::GCounter => loop {
                // pn-counter's stream with negative adds filtered out.
                let candidate = pn_counter_op(rng);
                if candidate.value.as_i64().is_none_or(|d| d >= 0) {
                    break candidate;
                }
            },
        }
    }
}

fn pn_counter_op(rng: &mut ChaCha8Rng) -> OpSpec {
    if rng.random_bool(0.5) {
        OpSpec {
            f: Verb::Add,
            value: Edn::Int(rng.random_range(-5..5)),
            final_read: false,
        }
    } else {
        OpSpec {
            f: Verb::Read,
            value: Edn::Nil,
            final_read: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn op_mixes() {
        let mut r = rng();
        let mut g = Workload::Broadcast.generator();
        let ops: Vec<OpSpec> = (0..4000).map(|_| g.next(&mut r)).collect();
        let broadcasts: Vec<i64> = ops
            .iter()
            .filter(|o| o.f == Verb::Broadcast)
            .filter_map(|o| o.value.as_i64())
            .collect();
        assert!((1800..2200).contains(&broadcasts.len()));
        assert!(
            broadcasts.iter().enumerate().all(|(i, v)| *v == i as i64),
            "values 0, 1, 2... in issue order"
        );
        let mut g = Workload::GCounter.generator();
        let ops: Vec<OpSpec> = (0..6000).map(|_| g.next(&mut r)).collect();
        let adds: Vec<i64> = ops
            .iter()
            .filter(|o| o.f == Verb::Add)
            .filter_map(|o| o.value.as_i64())
            .collect();
        assert!(
            (1800..2200).contains(&adds.len()),
            "a third are adds: {}",
            adds.len()
        );
        assert!(adds.iter().all(|d| (0..5).contains(d)) && adds.contains(&0));
        let mut g = Workload::PnCounter.generator();
        let adds: Vec<i64> = (0..4000)
            .map(|_| g.next(&mut r))
            .filter(|o| o.f == Verb::Add)
            .filter_map(|o| o.value.as_i64())
            .collect();
        assert!(
            adds.iter().all(|d| (-5..5).contains(d)) && adds.contains(&-5) && adds.contains(&4)
        );
        let echo = Workload::Echo.generator().next(&mut r);
        assert!(matches!(&echo.value, Edn::Str(s) if s.starts_with("Please echo ")));
        assert_eq!("gossip".parse::<Workload>(), Ok(Workload::Broadcast));
        assert!("lin-kvv".parse::<Workload>().is_err());
    }

    fn op(f: Verb, value: Edn) -> OpSpec {
        OpSpec {
            f,
            value,
            final_read: false,
        }
    }

    #[test]
    fn outcomes_map_to_ok_fail_info() {
        let read = op(Verb::Read, Edn::Nil);
        let add = op(Verb::Broadcast, Edn::Int(3));
        let b = Workload::Broadcast;
        let ok = b.complete(
            &read,
            RpcResult::Reply(json!({"type":"read_ok","messages":[1],"in_reply_to":1}).into()),
        );
        assert_eq!(
            (ok.kind, ok.value.to_string()),
            (OpType::Ok, "[1]".to_string())
        );
        assert_eq!(b.complete(&add, RpcResult::Timeout).kind, OpType::Info);
        assert_eq!(
            b.complete(&read, RpcResult::Timeout).kind,
            OpType::Fail,
            "reads are idempotent"
        );
        let err = |code| {
            RpcResult::Reply(json!({"type":"error","code":code,"text":"no","in_reply_to":1}).into())
        };
        let definite = b.complete(&add, err(11));
        assert_eq!(
            (definite.kind, definite.error.unwrap().to_string()),
            (OpType::Fail, "[:temporarily-unavailable \"no\"]".into())
        );
        assert_eq!(b.complete(&add, err(13)).kind, OpType::Info);
        assert_eq!(
            b.complete(&add, err(1234)).kind,
            OpType::Info,
            "unknown codes are indefinite"
        );
        // Malformed replies are indeterminate, with an exception.
        let extra = b.complete(
            &add,
            RpcResult::Reply(json!({"type":"broadcast_ok","message":3,"in_reply_to":1}).into()),
        );
        assert_eq!(extra.kind, OpType::Info);
        assert!(extra.exception.unwrap().contains("Malformed"));
        // g-set and counters turn every failure into an exception.
        let g = Workload::GSet.complete(&op(Verb::Add, Edn::Int(1)), err(11));
        assert_eq!((g.kind, g.exception.is_some()), (OpType::Info, true));
    }

    #[test]
    fn broadcast_and_g_set_values_are_any_json_value() {
        let any = json!(["x", {"a": [1, null]}, 2.5, null, true, 7]);
        for (workload, field) in [(Workload::Broadcast, "messages"), (Workload::GSet, "value")] {
            let reply = json!({"type": "read_ok", field: any, "in_reply_to": 1});
            let read = workload.complete(&op(Verb::Read, Edn::Nil), RpcResult::Reply(reply.into()));
            assert_eq!(read.kind, OpType::Ok, "{workload:?}");
            assert_eq!(read.value, Edn::from_json(&any), "returned as given");
            let not_an_array = json!({"type": "read_ok", field: "x", "in_reply_to": 1});
            assert!(workload.validate(Verb::Read, &not_an_array).is_err());
        }
        let message = op(Verb::Broadcast, Edn::Str("x".into()));
        assert_eq!(
            Workload::Broadcast.request(&message),
            json!({"type": "broadcast", "message": "x"})
        );
        let element = op(Verb::Add, Edn::from_json(&json!({"k": [1]})));
        assert_eq!(
            Workload::GSet.request(&element),
            json!({"type": "add", "element": {"k": [1]}})
        );
        // Only the counters' values are integers.
        let counter = json!({"type": "read_ok", "value": "7", "in_reply_to": 1});
        assert!(Workload::GCounter.validate(Verb::Read, &counter).is_err());
    }

    /// A body whose values a client takes lifted out, as a simulated node's read reply.
    #[derive(Debug)]
    struct Native(Value, &'static str);

    impl crate::message::NativeBody for Native {
        fn to_json(&self) -> Value {
            self.0.clone()
        }

        fn to_json_lifted(&self) -> (Value, Option<crate::message::Lifted>) {
            let mut json = self.0.clone();
            let Some(values) = json.get_mut(self.1).map(Value::take) else {
                return (json, None);
            };
            json[self.1] = json!([]);
            let values = values.as_array().unwrap().iter().map(Edn::from_json);
            let lifted = crate::message::Lifted {
                key: self.1,
                values: values.collect(),
            };
            (json, Some(lifted))
        }
    }

    #[test]
    fn replies_with_values_lifted_out_complete_as_their_whole_json() {
        let read = op(Verb::Read, Edn::Nil);
        let values = json!([3, "x", {"a": [1.5, null]}, 18446744073709551615u64]);
        let replies = [
            json!({"type": "read_ok", "messages": values, "in_reply_to": 1}),
            json!({"type": "read_ok", "messages": values, "in_reply_to": 1, "msg_id": 4}),
            json!({"type": "read_ok", "value": values, "in_reply_to": 1}),
            // Not valid: judged, and told why, from the whole JSON.
            json!({"type": "read_ok", "messages": values, "in_reply_to": 1, "x": 0}),
            json!({"type": "read_ok", "messages": values}),
            json!({"type": "add_ok", "messages": values, "in_reply_to": 1}),
            json!({"type": "error", "messages": values, "code": 11, "in_reply_to": 1}),
        ];
        for workload in [Workload::Broadcast, Workload::GSet, Workload::GCounter] {
            for reply in &replies {
                for key in ["messages", "value"] {
                    let native = crate::message::Body::Native(std::sync::Arc::new(Native(
                        reply.clone(),
                        key,
                    )));
                    let whole = workload.complete(&read, RpcResult::Reply(reply.clone().into()));
                    let lifted = workload.complete(&read, RpcResult::Reply(native.into_reply()));
                    assert_eq!(lifted, whole, "{workload:?} {reply} {key}");
                }
            }
        }
        let native = Native(replies[0].clone(), "messages");
        let reply = crate::message::Body::Native(std::sync::Arc::new(native)).into_reply();
        assert!(reply.parted().is_some(), "the values were lifted");
        let ok = Workload::Broadcast.complete(&read, RpcResult::Reply(reply));
        assert_eq!(ok.value, Edn::from_json(&values));
    }

    #[test]
    fn closed_schemas() {
        let v = |body: Value| Workload::PnCounter.validate(Verb::Read, &body);
        assert!(v(json!({"type":"read_ok","value":3,"in_reply_to":1,"msg_id":4})).is_ok());
        assert!(v(json!({"type":"read_ok","value":3.5,"in_reply_to":1})).is_err());
        assert!(v(json!({"type":"read_ok","value":3,"in_reply_to":1.0})).is_err());
        assert!(v(json!({"type":"read_ok","in_reply_to":1})).is_err());
        assert!(v(json!({"type":"read_ok","value":3,"in_reply_to":1,"extra":0})).is_err());
        assert!(v(json!({"type":"add_ok","value":3,"in_reply_to":1})).is_err());
        let echo = Workload::Echo
            .validate(
                Verb::Echo,
                &json!({"type":"echo_ok","echo":"x","in_reply_to":1}),
            )
            .unwrap();
        assert_eq!(echo.unwrap().get("echo"), Some(&Edn::Str("x".into())));
    }
}
