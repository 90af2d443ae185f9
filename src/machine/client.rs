//! The client API: requests become replies and writes. Owns the replicated data and the
//! workload it is read as.

use crate::config::Mode;
use crate::crdt::{Crdt, Data, GSet};
use crate::membership::Detector;
use crate::wire::{Add, Payload, ReadOk};

pub(super) struct Client {
    me: String,
    /// The workload served: configured, or set by the first write.
    mode: Option<Mode>,
    data: Data,
    next_unique: u64,
}

/// What a request asks of the rest of the node, besides its reply.
pub(super) enum Served {
    /// Nothing: send the reply (echo, generate, membership).
    Reply(Payload),
    /// The workload has begun (topology, read), so gossip starts.
    Begin(Payload),
    /// A write: gossip starts, `new` (what it added here, possibly nothing) spreads, and
    /// goes up to the parent at once.
    Write { new: Data, reply: Payload },
}

impl Client {
    pub fn new(me: &str, mode: Option<Mode>) -> Self {
        Client {
            me: me.to_string(),
            mode,
            data: Data::default(),
            next_unique: 0,
        }
    }

    /// Serves a client request; `None` for replies, which are never answered (that could
    /// loop between two nodes).
    pub fn serve(&mut self, request: &Payload, detector: &Detector) -> Option<Served> {
        let served = match request {
            Payload::Topology { .. } => Served::Begin(Payload::TopologyOk),
            Payload::Echo { echo } => Served::Reply(Payload::EchoOk { echo: echo.clone() }),
            Payload::Generate => {
                self.next_unique += 1;
                let id = format!("{}-{}", self.me, self.next_unique);
                Served::Reply(Payload::GenerateOk { id })
            }
            Payload::Broadcast { message } => {
                self.mode.get_or_insert(Mode::Broadcast);
                let delta = Data {
                    set: GSet([message.clone()].into()),
                    ..Data::default()
                };
                self.write(&delta, Payload::BroadcastOk)
            }
            Payload::Add(Add::Element(element)) => {
                self.mode.get_or_insert(Mode::GSet);
                let delta = Data {
                    set: GSet([element.clone()].into()),
                    ..Data::default()
                };
                self.write(&delta, Payload::AddOk)
            }
            Payload::Add(Add::Delta(delta)) => {
                self.mode.get_or_insert(Mode::Counter);
                let delta = Data {
                    counter: self.data.counter.clone().add(&self.me, *delta),
                    ..Data::default()
                };
                self.write(&delta, Payload::AddOk)
            }
            Payload::Read => Served::Begin(Payload::ReadOk(self.read())),
            Payload::Membership => Served::Reply(Payload::MembershipOk(detector.view())),
            Payload::Init { .. } | Payload::Gossip(_) => {
                unreachable!("init and gossip are not client requests")
            }
            Payload::InitOk
            | Payload::TopologyOk
            | Payload::EchoOk { .. }
            | Payload::GenerateOk { .. }
            | Payload::BroadcastOk
            | Payload::ReadOk(_)
            | Payload::AddOk
            | Payload::MembershipOk(_)
            | Payload::Error { .. } => return None,
        };
        Some(served)
    }

    fn write(&mut self, delta: &Data, reply: Payload) -> Served {
        Served::Write {
            new: self.data.merge(delta),
            reply,
        }
    }

    fn read(&self) -> ReadOk {
        let set = || self.data.set.0.iter().cloned().collect();
        match self.mode.unwrap_or(Mode::Broadcast) {
            Mode::Broadcast => ReadOk::Messages { messages: set() },
            Mode::GSet => ReadOk::Elements { value: set() },
            Mode::Counter => ReadOk::Counter {
                value: self.data.counter.value(),
            },
        }
    }

    /// Merges data gossiped by a peer; returns what was new here.
    pub fn merge(&mut self, delta: &Data) -> Data {
        self.data.merge(delta)
    }
}
