//! Our node's state machine as a `SimNode` of the runner's simulation driver. Tickers become
//! timers at the periods the real runtime uses. Messages to and from clients go through the
//! same serialisation and parsing as on stdin/stdout; messages between nodes do too with
//! `Wire::Json`, and with `Wire::Native` (the default) travel as the node's own typed bodies,
//! which gives the same runs several times faster, as do replies to reads, whose values the
//! client takes as EDN without JSON between (docs/simulation.md; `tests/simulation.rs`
//! checks that both give the same histories).

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use maelstrom::driver::sim::{SimNode, Written};
use maelstrom::edn::Edn;
use maelstrom::message::{self, Lifted, Message, NativeBody, check_envelope, is_client};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Config, Mode};
use crate::event::{Event, Trigger};
use crate::gossip::Why;
use crate::machine::{ProbesSent, StateMachine};
use crate::wire::{Body, Element, Envelope, Gossip, Payload, ReadOk};

/// The node argument that serves a workload (`None`: the node needs none).
pub fn mode(workload: maelstrom::workload::Workload) -> Option<Mode> {
    use maelstrom::workload::Workload::*;
    match workload {
        Broadcast => Some(Mode::Broadcast),
        GSet => Some(Mode::GSet),
        GCounter | PnCounter => Some(Mode::Counter),
        Echo | UniqueIds => None,
    }
}

/// A message this node sent to a peer: when, to whom, whether it was a probe, what kind of
/// message it was, and how many bytes of values it carried.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Duration,
    pub dest: String,
    pub probe: bool,
    pub kind: Kind,
    pub values_bytes: usize,
}

/// What a node-to-node message was for, by what it carried (the first that applies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Values or counter totals, to the sender's parent.
    DataUp,
    /// Values or counter totals, to anyone else (children, or peers caught up directly).
    DataDown,
    /// Failure-detector records and nothing else to deliver, not a probe.
    Records,
    /// A request for an ack at once, with no values (it may carry records): a heartbeat
    /// to a quiet neighbour, or a probe.
    Probe,
    /// An acknowledgement that needs none back (it may carry records).
    Ack,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::DataUp,
        Kind::DataDown,
        Kind::Records,
        Kind::Probe,
        Kind::Ack,
    ];

    fn of(g: &Gossip) -> Kind {
        if g.seq == 0 {
            Kind::Ack
        } else if !g.values.is_empty() || !g.counts.is_empty() {
            if g.parent {
                Kind::DataUp
            } else {
                Kind::DataDown
            }
        } else if g.probe {
            Kind::Probe
        } else {
            Kind::Records
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::DataUp => "data up",
            Kind::DataDown => "data down",
            Kind::Records => "records",
            Kind::Probe => "probe",
            Kind::Ack => "ack",
        }
    }
}

/// How messages between nodes travel through the simulated network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wire {
    /// As typed bodies, unserialised.
    #[default]
    Native,
    /// As JSON, serialised and parsed as over stdin/stdout.
    Json,
}

/// Which of its ticks a simulated node is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ticks {
    /// Those on which it may have something to do (`StateMachine::quiet_until`): the same
    /// runs, with most gossip ticks of a quiet node left out.
    #[default]
    Busy,
    /// Every one, as the real runtime's tickers give it.
    Every,
}

/// One node of a simulated cluster: the state machine, and what it sent to its peers.
pub struct NodeSim {
    pub machine: StateMachine,
    schedule: Vec<(Trigger, Duration)>,
    wire: Wire,
    ticks: Ticks,
    /// Node-to-node messages sent and not yet taken (`take_sent`), for the figures.
    sent: Cell<Vec<Sent>>,
    /// Probes sent and not yet taken (`take_probes`): when, and why.
    probes: Cell<Vec<(Duration, Why)>>,
    /// The machine's count of probes sent, by reason, as of the last event.
    probes_seen: ProbesSent,
}

impl NodeSim {
    pub fn new(config: Config, wire: Wire) -> Self {
        let machine = StateMachine::new(config);
        let schedule = machine.schedule();
        NodeSim {
            machine,
            schedule,
            wire,
            ticks: Ticks::default(),
            sent: Cell::default(),
            probes: Cell::default(),
            probes_seen: ProbesSent::default(),
        }
    }

    /// The same node, given `ticks`.
    pub fn with_ticks(mut self, ticks: Ticks) -> Self {
        self.ticks = ticks;
        self
    }

    /// Nodes with this configuration, as `simulate` creates them. Each life of a node has
    /// its own epoch (1, 2, ...), as a restarted process has: its peers then know it came
    /// back empty and send it everything again.
    pub fn factory(config: &Config, wire: Wire) -> impl FnMut(&str) -> Box<dyn SimNode> + '_ {
        Self::factory_with(config, wire, Ticks::default())
    }

    /// As `factory`, with the nodes given `ticks`.
    pub fn factory_with(
        config: &Config,
        wire: Wire,
        ticks: Ticks,
    ) -> impl FnMut(&str) -> Box<dyn SimNode> + '_ {
        let mut lives: HashMap<String, u64> = HashMap::new();
        move |id| {
            let life = lives.entry(id.to_string()).or_default();
            *life += 1;
            let config = Config {
                epoch: *life,
                ..config.clone()
            };
            Box::new(NodeSim::new(config, wire).with_ticks(ticks))
        }
    }

    /// The node-to-node messages sent since this was last asked, moved out (an observer
    /// holds the node only by a shared reference).
    pub fn take_sent(&self) -> Vec<Sent> {
        self.sent.take()
    }

    /// The probes sent since this was last asked, and why, moved out.
    pub fn take_probes(&self) -> Vec<(Duration, Why)> {
        self.probes.take()
    }

    fn handle(&mut self, event: Event, now: Duration) -> Vec<Written> {
        let out = self.machine.handle(event, now);
        let probes_sent = self.machine.probes_sent();
        for (i, why) in Why::ALL.into_iter().enumerate() {
            for _ in self.probes_seen[i]..probes_sent[i] {
                self.probes.get_mut().push((now, why));
            }
        }
        self.probes_seen = probes_sent;
        for envelope in &out {
            if let Payload::Gossip(g) = &envelope.body.payload {
                self.sent.get_mut().push(Sent {
                    at: now,
                    dest: envelope.dest.clone(),
                    probe: g.probe || (g.seq == 0 && g.values.is_empty() && g.counts.is_empty()),
                    kind: Kind::of(g),
                    values_bytes: g.values.iter().map(Element::wire_len).sum(),
                });
            }
        }
        out.into_iter()
            .map(|envelope| self.write(envelope))
            .collect()
    }

    fn write(&self, envelope: Envelope) -> Written {
        // And read replies to clients: the client takes the values without the trip
        // through JSON (`NativeBody::to_json_lifted`).
        let read_reply = matches!(
            envelope.body.payload,
            Payload::ReadOk(ReadOk::Messages { .. } | ReadOk::Elements { .. })
        );
        if self.wire == Wire::Native && (!is_client(&envelope.dest) || read_reply) {
            return Ok(message::Envelope {
                src: envelope.src,
                dest: envelope.dest,
                body: message::Body::Native(Arc::new(envelope.body)),
            });
        }
        check_envelope(serde_json::to_value(envelope).expect("envelopes serialise"))
    }
}

impl NativeBody for Body {
    fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("bodies serialise")
    }

    fn to_json_lifted(&self) -> (Value, Option<Lifted>) {
        let (key, values) = match &self.payload {
            Payload::ReadOk(ReadOk::Messages { messages }) => ("messages", messages),
            Payload::ReadOk(ReadOk::Elements { value }) => ("value", value),
            _ => return (self.to_json(), None),
        };
        let empty = match &self.payload {
            Payload::ReadOk(ReadOk::Messages { .. }) => ReadOk::Messages {
                messages: Vec::new(),
            },
            _ => ReadOk::Elements { value: Vec::new() },
        };
        let rest = Body {
            payload: Payload::ReadOk(empty),
            ..*self
        };
        // Each value as it serialises in the whole body, read as `Edn::from_json` reads it.
        let values = values
            .iter()
            .map(|element| match element {
                Element::Int(n) => Edn::Int(*n),
                other => Edn::from_json(&serde_json::to_value(other).expect("values serialise")),
            })
            .collect();
        (rest.to_json(), Some(Lifted { key, values }))
    }
}

/// The event a delivered message stands for: our own native body is taken back as it was
/// sent (moved out unless the network duplicated it); a client's request is read from its
/// JSON as it would be from its line (`from_client`); anything else is read as a line.
fn event(message: Message) -> Event {
    let message = match from_client(message) {
        Ok(envelope) => return Event::Message(envelope),
        Err(message) => message,
    };
    let Message {
        id,
        src,
        dest,
        body,
    } = message;
    let body = match body {
        message::Body::Native(native) => {
            let any: Arc<dyn Any + Send + Sync> = native.clone();
            match any.downcast::<Body>() {
                Ok(body) => {
                    drop(native);
                    let body = Arc::try_unwrap(body).unwrap_or_else(|shared| (*shared).clone());
                    return Event::Message(Envelope { src, dest, body });
                }
                Err(_) => message::Body::Json(native.to_json()),
            }
        }
        json => json,
    };
    Event::from_line(
        Message {
            id,
            src,
            dest,
            body,
        }
        .to_line()
        .as_bytes(),
    )
}

/// A client's request read straight from its JSON body, without writing the line and
/// parsing it back: when the body reads as ours and has no floating-point number (which
/// might not come back from text bit for bit), that is what the line gives. Anything else
/// is handed back, to be read as a line.
fn from_client(message: Message) -> Result<Envelope, Message> {
    fn no_floats(value: &Value) -> bool {
        match value {
            Value::Number(n) => !n.is_f64(),
            Value::Array(items) => items.iter().all(no_floats),
            Value::Object(map) => map.values().all(no_floats),
            Value::Null | Value::Bool(_) | Value::String(_) => true,
        }
    }
    let message::Body::Json(json) = &message.body else {
        return Err(message);
    };
    if !is_client(&message.src) || !no_floats(json) {
        return Err(message);
    }
    match Body::deserialize(json) {
        Ok(body) => Ok(Envelope {
            src: message.src,
            dest: message.dest,
            body,
        }),
        Err(_) => Err(message),
    }
}

impl SimNode for NodeSim {
    fn deliver(&mut self, message: Message, now: Duration) -> Vec<Written> {
        self.handle(event(message), now)
    }

    fn timers(&self) -> Vec<Duration> {
        self.schedule.iter().map(|(_, period)| *period).collect()
    }

    fn fire(&mut self, timer: usize, now: Duration) -> Vec<Written> {
        let trigger = self.schedule[timer].0;
        self.handle(Event::Trigger(trigger), now)
    }

    fn quiet_until(&self, timer: usize) -> Option<Duration> {
        match self.ticks {
            Ticks::Busy => self.machine.quiet_until(self.schedule[timer].0),
            Ticks::Every => None,
        }
    }

    fn status_changes(&self) -> u64 {
        self.machine.status_changes()
    }

    fn peer_status(&self, peer: &str) -> Option<String> {
        // `Alive` → `alive`: the report's names are the variants' names in lower case.
        self.machine
            .status(peer)
            .map(|status| format!("{status:?}").to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A client's request read from its JSON body is the event its line gives, and a body
    /// that does not read as ours (or holds a float) still goes through the line.
    #[test]
    fn a_request_read_from_its_json_is_what_its_line_gives() {
        let bodies = [
            json!({"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": ["n0", "n1"]}),
            json!({"type": "topology", "msg_id": 2, "topology": {"n0": ["n1"], "n1": ["n0"]}}),
            json!({"type": "read", "msg_id": 3}),
            json!({"type": "broadcast", "msg_id": 4, "message": 18446744073709551615u64}),
            json!({"type": "broadcast", "msg_id": 5, "message": {"b": [1, "x"], "a": null}}),
            json!({"type": "add", "msg_id": 6, "element": -7}),
            json!({"type": "add", "msg_id": 7, "delta": 3}),
            json!({"type": "echo", "msg_id": 8, "echo": "Please echo 9 \"é\""}),
            json!({"type": "generate", "msg_id": 9}),
            json!({"type": "membership", "msg_id": 10}),
            json!({"type": "read_ok", "in_reply_to": 11, "messages": [1, 2]}),
            // Read through the line: a float, an unknown type, malformed bodies.
            json!({"type": "echo", "msg_id": 12, "echo": 0.1}),
            json!({"type": "broadcast", "msg_id": 13, "message": 1.5}),
            json!({"type": "txn", "msg_id": 14}),
            json!({"type": "broadcast", "msg_id": 15}),
            json!({"type": 7, "msg_id": 16}),
            json!({"msg_id": 17}),
            json!({"type": "read", "msg_id": "x"}),
        ];
        let mut direct = 0;
        for body in bodies {
            let message = Message {
                id: 3,
                src: "c4".into(),
                dest: "n1".into(),
                body: message::Body::Json(body),
            };
            let line = Event::from_line(message.to_line().as_bytes());
            if from_client(message.clone()).is_ok() {
                direct += 1;
            }
            assert_eq!(event(message), line);
        }
        assert_eq!(direct, 11, "every well-formed request without a float");
        // From a node, not a client: through the line.
        let peer = Message {
            id: 4,
            src: "n0".into(),
            dest: "n1".into(),
            body: json!({"type": "read", "msg_id": 1}).into(),
        };
        assert!(from_client(peer).is_err());
    }
}
