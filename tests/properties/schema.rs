//! Maelstrom's schema for every body the node writes, checked on the JSON line itself:
//! the required fields of each type, their JSON types, and no key the schema does not
//! name (Maelstrom's reply schemas are closed; `msg_id` and `in_reply_to` are allowed on
//! every reply).

use serde_json::{Map, Value};

/// What `read_ok` must look like: the workload the node serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Broadcast,
    GSet,
    Counter,
}

/// Checks one output line: an envelope of exactly `src`, `dest` and `body`, whose body fits
/// the schema of its type. Returns the parsed line.
pub fn check_line(line: &str, workload: Workload) -> Result<Value, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
    check_envelope(&value, workload).map_err(|e| format!("{e}: {line}"))?;
    Ok(value)
}

fn check_envelope(value: &Value, workload: Workload) -> Result<(), String> {
    let envelope = object(value, "the envelope")?;
    only_keys(envelope, &["src", "dest", "body"])?;
    for key in ["src", "dest"] {
        match envelope.get(key) {
            Some(Value::String(s)) if !s.is_empty() => {}
            other => return Err(format!("{key} is not a non-empty string: {other:?}")),
        }
    }
    let body = object(envelope.get("body").ok_or("no body")?, "body")?;
    let kind = match body.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        other => return Err(format!("body type is not a string: {other:?}")),
    };
    optional(body, "msg_id", is_u64)?;
    if kind == "gossip" {
        return check_gossip(body);
    }
    // Every other body the node writes is a reply, naming the request it answers.
    required(body, "in_reply_to", is_u64)?;
    let routing = ["type", "msg_id", "in_reply_to"];
    let fields: &[&str] = match kind {
        "init_ok" | "topology_ok" | "broadcast_ok" | "add_ok" => &[],
        "echo_ok" => {
            required(body, "echo", |_| true)?;
            &["echo"]
        }
        "generate_ok" => {
            required(body, "id", Value::is_string)?;
            &["id"]
        }
        "read_ok" => match workload {
            Workload::Broadcast => {
                required(body, "messages", Value::is_array)?;
                &["messages"]
            }
            Workload::GSet => {
                required(body, "value", Value::is_array)?;
                &["value"]
            }
            Workload::Counter => {
                required(body, "value", Value::is_i64)?;
                &["value"]
            }
        },
        "error" => {
            required(body, "code", is_u64)?;
            required(body, "text", Value::is_string)?;
            &["code", "text"]
        }
        "membership_ok" => {
            required(body, "incarnation", is_u64)?;
            required(body, "alive", |v| array_of(v, Value::is_string))?;
            for key in ["suspected", "dead"] {
                required(body, key, |v| {
                    map_of(v, |voters| array_of(voters, Value::is_string))
                })?;
            }
            required(body, "incarnations", |v| map_of(v, is_u64))?;
            &["incarnation", "alive", "suspected", "dead", "incarnations"]
        }
        other => return Err(format!("a body type the node must not send: {other}")),
    };
    let allowed: Vec<&str> = routing.iter().chain(fields).copied().collect();
    only_keys(body, &allowed)
}

/// The node's own type: every field optional, so that pure acks are small.
fn check_gossip(body: &Map<String, Value>) -> Result<(), String> {
    only_keys(
        body,
        &[
            "type",
            "epoch",
            "seq",
            "ack",
            "ack_delay",
            "parent",
            "probe",
            "values",
            "counts",
            "members",
        ],
    )?;
    for key in ["epoch", "seq", "ack", "ack_delay"] {
        optional(body, key, is_u64)?;
    }
    for key in ["parent", "probe"] {
        optional(body, key, Value::is_boolean)?;
    }
    optional(body, "values", Value::is_array)?;
    optional(body, "counts", |v| {
        map_of(v, |pair| {
            pair.as_array()
                .is_some_and(|p| p.len() == 2 && p.iter().all(is_u64))
        })
    })?;
    optional(body, "members", |v| map_of(v, is_record))
}

/// A failure-detector record: `version`, and optionally `inc`, `suspects`, `doubts`.
fn is_record(value: &Value) -> bool {
    let Some(record) = value.as_object() else {
        return false;
    };
    only_keys(record, &["version", "inc", "suspects", "doubts"]).is_ok()
        && required(record, "version", is_u64).is_ok()
        && optional(record, "inc", is_u64).is_ok()
        && optional(record, "suspects", |v| map_of(v, is_u64)).is_ok()
        && optional(record, "doubts", |v| map_of(v, is_u64)).is_ok()
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} is not an object"))
}

fn only_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(format!("unexpected key {extra:?}")),
        None => Ok(()),
    }
}

fn required(
    map: &Map<String, Value>,
    key: &str,
    ok: impl Fn(&Value) -> bool,
) -> Result<(), String> {
    match map.get(key) {
        Some(v) if ok(v) => Ok(()),
        Some(v) => Err(format!("{key} has the wrong JSON type: {v}")),
        None => Err(format!("missing {key}")),
    }
}

fn optional(
    map: &Map<String, Value>,
    key: &str,
    ok: impl Fn(&Value) -> bool,
) -> Result<(), String> {
    match map.get(key) {
        Some(v) if !ok(v) => Err(format!("{key} has the wrong JSON type: {v}")),
        _ => Ok(()),
    }
}

fn is_u64(value: &Value) -> bool {
    value.is_u64()
}

fn array_of(value: &Value, ok: impl Fn(&Value) -> bool) -> bool {
    value.as_array().is_some_and(|a| a.iter().all(ok))
}

fn map_of(value: &Value, ok: impl Fn(&Value) -> bool) -> bool {
    value.as_object().is_some_and(|m| m.values().all(ok))
}

#[test]
fn the_schema_check_refuses_what_maelstrom_refuses() {
    let ok = [
        r#"{"src":"n0","dest":"c1","body":{"type":"init_ok","in_reply_to":1}}"#,
        r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","in_reply_to":1,"messages":[1,"x"]}}"#,
        r#"{"src":"n0","dest":"n1","body":{"type":"gossip","seq":2,"counts":{"n0":[1,0]},"members":{"n0":{"version":1}}}}"#,
        r#"{"src":"n0","dest":"c1","body":{"type":"error","in_reply_to":1,"code":12,"text":"no"}}"#,
    ];
    for line in ok {
        check_line(line, Workload::Broadcast).unwrap();
    }
    let bad = [
        r#"{"src":"n0","dest":"c1","body":{"type":"init_ok"}}"#,
        r#"{"src":"n0","dest":"c1","id":3,"body":{"type":"init_ok","in_reply_to":1}}"#,
        r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","in_reply_to":1,"value":[1]}}"#,
        r#"{"src":"n0","dest":"c1","body":{"type":"add_ok","in_reply_to":1,"x":1}}"#,
        r#"{"src":"n0","dest":"c1","body":{"type":"error","in_reply_to":1,"code":"12","text":"no"}}"#,
        r#"{"src":"n0","dest":"c1","body":{"type":"error","in_reply_to":1,"code":12}}"#,
        r#"{"src":"n0","dest":"n1","body":{"type":"gossip","counts":{"n0":[1]}}}"#,
        r#"{"src":"n0","dest":"n1","body":{"type":"gossip","members":{"n0":{"inc":1}}}}"#,
        r#"{"src":"","dest":"c1","body":{"type":"add_ok","in_reply_to":1}}"#,
    ];
    for line in bad {
        assert!(check_line(line, Workload::Broadcast).is_err(), "{line}");
    }
    let counter =
        r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","in_reply_to":1,"value":-3}}"#;
    check_line(counter, Workload::Counter).unwrap();
    assert!(check_line(counter, Workload::GSet).is_err());
}
