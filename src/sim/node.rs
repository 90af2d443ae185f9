//! Our node's state machine as a `SimNode` of the runner's simulation driver: messages go
//! through the same parsing and serialisation as on stdin/stdout, tickers become timers at
//! the periods the real runtime uses.

use std::time::Duration;

use maelstrom::driver::sim::SimNode;
use maelstrom::message::Message;
use serde_json::Value;

use crate::config::{Config, Mode};
use crate::event::{Event, Trigger};
use crate::machine::StateMachine;
use crate::wire::{Element, Payload};

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

/// A message this node sent to a peer: when, to whom, whether it was a probe, and how many
/// bytes of values it carried.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: Duration,
    pub dest: String,
    pub probe: bool,
    pub values_bytes: usize,
}

/// One node of a simulated cluster: the state machine, and what it sent to its peers.
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

    /// Nodes with this configuration, as `simulate` creates them.
    pub fn factory(config: &Config) -> impl FnMut(&str) -> Box<dyn SimNode> + '_ {
        |_| Box::new(NodeSim::new(config.clone()))
    }

    fn handle(&mut self, event: Event, now: Duration) -> Vec<Value> {
        let out = self.machine.handle(event, now);
        for envelope in &out {
            if let Payload::Gossip(g) = &envelope.body.payload {
                self.sent.push(Sent {
                    at: now,
                    dest: envelope.dest.clone(),
                    probe: g.probe || (g.seq == 0 && g.values.is_empty() && g.counts.is_empty()),
                    values_bytes: g.values.iter().map(Element::wire_len).sum(),
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
