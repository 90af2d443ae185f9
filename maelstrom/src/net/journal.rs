//! The first events of the network's traffic, bodies included, for the Lamport diagram
//! (`crate::report::messages`): every send the network accepts and every receive, but not
//! `init`/`init_ok`, up to `LIMIT` events; past that only a count. Keeping only the first
//! events bounds what a long run costs the runner.

use std::time::Duration;

use serde_json::Value;

use crate::message::{Body, Message};

/// Events kept; the diagram draws no more than this (as real Maelstrom's does).
pub const LIMIT: usize = 10_000;

/// Bytes of a body kept; a larger body is kept as its `type` and its size, so that
/// `LIMIT` events of huge messages cannot fill the runner's memory.
pub const BODY_LIMIT: usize = 4096;

#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    /// The network accepted the message; its body is kept here.
    Send(Value),
    /// The message reached its destination (a duplicated message is received twice).
    Recv,
}

/// One send or receive, at a time since the test started.
#[derive(Clone, Debug, PartialEq)]
pub struct NetEvent {
    pub time: Duration,
    pub id: u64,
    pub src: String,
    pub dest: String,
    pub kind: EventKind,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Journal {
    pub events: Vec<NetEvent>,
    /// Events past `LIMIT`, not kept.
    pub omitted: u64,
    /// Keeps nothing, not even the count: for simulations whose run is not stored (the
    /// journal is only drawn), where serialising every body would cost a tenth of the run.
    pub off: bool,
}

impl Journal {
    pub(super) fn record(&mut self, message: &Message, time: Duration, send: bool) {
        if self.off {
            return;
        }
        // (A native body is never an init: between nodes, or a read's reply to a client.
        // It is not serialised here unless kept.)
        if let Body::Json(body) = &message.body
            && matches!(
                body.get("type").and_then(Value::as_str),
                Some("init" | "init_ok")
            )
        {
            return;
        }
        if self.events.len() >= LIMIT {
            self.omitted += 1;
            return;
        }
        self.events.push(NetEvent {
            time,
            id: message.id,
            src: message.src.clone(),
            dest: message.dest.clone(),
            kind: if send {
                EventKind::Send(kept_body(&message.body.json()))
            } else {
                EventKind::Recv
            },
        });
    }
}

/// The body as journaled: whole up to `BODY_LIMIT` bytes of JSON, else its `type` and size.
fn kept_body(body: &Value) -> Value {
    let size = serde_json::to_vec(body).map_or(0, |v| v.len());
    if size <= BODY_LIMIT {
        return body.clone();
    }
    serde_json::json!({
        "type": body.get("type").cloned().unwrap_or(Value::Null),
        "maelstrom": format!("body of {size} bytes, not kept"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(id: u64, body: Value) -> Message {
        Message {
            id,
            src: "n1".into(),
            dest: "n2".into(),
            body: body.into(),
        }
    }

    #[test]
    fn skips_init_and_stops_at_the_limit() {
        let mut journal = Journal::default();
        journal.record(&message(0, json!({"type": "init"})), Duration::ZERO, true);
        journal.record(
            &message(1, json!({"type": "init_ok"})),
            Duration::ZERO,
            false,
        );
        assert!(journal.events.is_empty());
        for i in 0..LIMIT as u64 + 3 {
            journal.record(
                &message(i, json!({"type": "gossip"})),
                Duration::ZERO,
                i % 2 == 0,
            );
        }
        assert_eq!(journal.events.len(), LIMIT);
        assert_eq!(journal.omitted, 3);
        assert!(matches!(journal.events[0].kind, EventKind::Send(_)));
        assert_eq!(journal.events[1].kind, EventKind::Recv);
    }

    #[test]
    fn large_bodies_are_kept_as_their_type_and_size() {
        let mut journal = Journal::default();
        let pad = "x".repeat(BODY_LIMIT);
        journal.record(
            &message(1, json!({"type": "big", "pad": pad})),
            Duration::ZERO,
            true,
        );
        let EventKind::Send(body) = &journal.events[0].kind else {
            panic!("a send")
        };
        assert_eq!(body["type"], "big");
        assert!(body["maelstrom"].as_str().unwrap().contains("not kept"));
    }
}
