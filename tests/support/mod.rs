//! Our node's state machine as a `SimNode` of the runner's simulation driver: messages go
//! through the same parsing and serialisation as on stdin/stdout, tickers become timers at
//! the periods the real runtime uses.

use std::time::Duration;

use maelstrom::driver::sim::SimNode;
use maelstrom::message::Message;
use node::config::Config;
use node::event::{Event, Trigger};
use node::machine::StateMachine;
use node::protocol::parse_line;
use serde_json::Value;

pub struct NodeSim {
    pub machine: StateMachine,
    schedule: Vec<(Trigger, Duration)>,
}

impl NodeSim {
    pub fn new(config: Config) -> Self {
        let machine = StateMachine::new(config);
        let schedule = machine.schedule();
        NodeSim { machine, schedule }
    }

    fn handle(&mut self, event: Event, now: Duration) -> Vec<Value> {
        self.machine
            .handle(event, now)
            .iter()
            .map(|envelope| serde_json::to_value(envelope).expect("envelopes serialise"))
            .collect()
    }
}

impl SimNode for NodeSim {
    fn deliver(&mut self, message: &Message, now: Duration) -> Vec<Value> {
        let event = match parse_line(message.to_line().as_bytes()) {
            Ok(envelope) => Event::Message(envelope),
            Err(rejected) => Event::Rejected(rejected),
        };
        self.handle(event, now)
    }

    fn timers(&self) -> Vec<Duration> {
        self.schedule.iter().map(|(_, period)| *period).collect()
    }

    fn fire(&mut self, timer: usize, now: Duration) -> Vec<Value> {
        let trigger = self.schedule[timer].0;
        self.handle(Event::Trigger(trigger), now)
    }
}
