//! Our node's state machine as a `SimNode` of the runner's simulation driver: messages go
//! through the same parsing and serialisation as on stdin/stdout, tickers become timers at
//! the periods the real runtime uses. Shared by the simulation tests and
//! `examples/simulate.rs`.

#![allow(dead_code)]

pub mod figures;
pub mod sweep;

use std::time::Duration;

use maelstrom::driver::sim::SimNode;
use maelstrom::message::Message;
use node::config::Config;
use node::event::{Event, Trigger};
use node::machine::StateMachine;
use node::wire::Payload;
use serde_json::Value;

/// The node argument that serves a workload (`None`: the node needs none).
pub fn mode(workload: maelstrom::workload::Workload) -> Option<node::config::Mode> {
    use maelstrom::workload::Workload::*;
    use node::config::Mode;
    match workload {
        Broadcast => Some(Mode::Broadcast),
        GSet => Some(Mode::GSet),
        GCounter | PnCounter => Some(Mode::Counter),
        Echo | UniqueIds => None,
    }
}

/// A message this node sent to a peer: when, to whom, and whether it was a probe.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Duration,
    pub dest: String,
    pub probe: bool,
}

pub struct NodeSim {
    pub machine: StateMachine,
    schedule: Vec<(Trigger, Duration)>,
    /// Node-to-node messages sent, for the failure-detector figures.
    pub sent: Vec<Sent>,
}

impl NodeSim {
    pub fn new(config: Config) -> Self {
        let machine = StateMachine::new(config);
        let schedule = machine.schedule();
        NodeSim {
            machine,
            schedule,
            sent: Vec::new(),
        }
    }

    fn handle(&mut self, event: Event, now: Duration) -> Vec<Value> {
        let out = self.machine.handle(event, now);
        for envelope in &out {
            if let Payload::Gossip(g) = &envelope.body.payload {
                self.sent.push(Sent {
                    at: now,
                    dest: envelope.dest.clone(),
                    probe: g.probe || (g.seq == 0 && g.values.is_empty() && g.counts.is_empty()),
                });
            }
        }
        out.iter()
            .map(|envelope| serde_json::to_value(envelope).expect("envelopes serialise"))
            .collect()
    }
}

impl SimNode for NodeSim {
    fn deliver(&mut self, message: &Message, now: Duration) -> Vec<Value> {
        self.handle(Event::from_line(message.to_line().as_bytes()), now)
    }

    fn timers(&self) -> Vec<Duration> {
        self.schedule.iter().map(|(_, period)| *period).collect()
    }

    fn fire(&mut self, timer: usize, now: Duration) -> Vec<Value> {
        let trigger = self.schedule[timer].0;
        self.handle(Event::Trigger(trigger), now)
    }
}
