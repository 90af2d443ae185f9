//! The state machine: owns all state, does no I/O, reads no clock; time is passed in and
//! randomness comes from a seeded RNG, so whole clusters can be simulated and replayed.
//!
//! Before `init` it keeps peer messages and refuses requests; after, a `Node` does the
//! work through parts that each own their state: `client` (requests → replies and
//! writes), `links` (one per peer: what it lacks, acks, timeouts), `overlay` (parent,
//! batches, heartbeats), `probing` (the detector's tick), and the failure detector itself
//! (`crate::membership`).

mod budget;
mod client;
mod links;
mod node;
mod overlay;
mod probing;
#[cfg(test)]
mod testing;
mod tree;
mod urgency;

use std::time::Duration;

use tracing::{debug, info, warn};

use crate::config::Config;
use crate::event::{Event, Schedule, Trigger};
use crate::membership::Status;
use crate::wire::{Envelope, ErrorCode, Payload, Rejected};
pub use links::ProbesSent;
use node::Node;

/// Peer messages kept before `init`; beyond this they are dropped with a log line.
const MAX_EARLY: usize = 100_000;

pub struct StateMachine {
    config: Config,
    node: Option<Node>,
    /// Node-to-node messages that arrived before `init`.
    early: Vec<Envelope>,
}

impl StateMachine {
    pub fn new(config: Config) -> Self {
        StateMachine {
            config,
            node: None,
            early: Vec::new(),
        }
    }

    /// The tickers the runtime (or a simulation) must run, with their periods.
    pub fn schedule(&self) -> Schedule {
        vec![
            (Trigger::Gossip, self.config.gossip_tick),
            (Trigger::Detect, self.config.detect_tick),
        ]
    }

    /// This node's id, once initialised.
    pub fn id(&self) -> Option<&str> {
        self.node.as_ref().map(|n| n.id.as_str())
    }

    /// How this node currently sees `peer` (`None` before init or for strangers).
    pub fn status(&self, peer: &str) -> Option<Status> {
        self.node.as_ref()?.status(peer)
    }

    /// Counts the peer status changes so far: observers rescan statuses only when it moves.
    pub fn status_changes(&self) -> u64 {
        self.node.as_ref().map_or(0, Node::status_changes)
    }

    /// A time before which `trigger` would find nothing to do (it may be early, never
    /// late), or `None` if it may act on any tick. Until the next event the state does not
    /// change, so a driver may skip those ticks (the simulation does).
    pub fn quiet_until(&self, trigger: Trigger) -> Option<Duration> {
        match (trigger, &self.node) {
            (_, None) => Some(Duration::MAX),
            (Trigger::Gossip, Some(node)) => node.gossip_quiet_until(),
            (Trigger::Detect, Some(_)) => None,
        }
    }

    /// The node is stopping: what its peers lack, to send before it goes.
    pub fn flush(&mut self, now: Duration) -> Vec<Envelope> {
        let mut out = Vec::new();
        if let Some(node) = self.node.as_mut() {
            node.flush(now, &mut out);
        }
        out
    }

    /// Probes this node sent so far, by reason (`gossip::Why::ALL` order): where the
    /// failure detector's messages go (`simulate --by-phase`).
    pub fn probes_sent(&self) -> ProbesSent {
        self.node
            .as_ref()
            .map_or_else(ProbesSent::default, |n| *n.probes_sent())
    }

    /// This node's parent in the overlay (`None` for a root or before init).
    pub fn parent(&self) -> Option<&str> {
        self.node.as_ref()?.parent()
    }

    /// Handles one event at time `now` (time since the node started) and returns the
    /// envelopes to write, in order.
    pub fn handle(&mut self, event: Event, now: Duration) -> Vec<Envelope> {
        let mut out = Vec::new();
        match event {
            Event::Message(env) => self.on_message(env, now, &mut out),
            Event::Trigger(trigger) => {
                if let Some(node) = self.node.as_mut() {
                    node.on_trigger(trigger, now, &mut out);
                }
            }
            Event::Rejected(rejected) => self.on_rejected(rejected, &mut out),
            Event::Unreachable(peer) => {
                if let Some(node) = self.node.as_mut() {
                    node.on_unreachable(&peer, now);
                }
            }
            Event::Connected(peer) => {
                if let Some(node) = self.node.as_mut() {
                    node.on_connected(&peer, now);
                }
            }
        }
        out.retain(names_its_request);
        out
    }

    fn on_rejected(&self, r: Rejected, out: &mut Vec<Envelope>) {
        warn!(src = ?r.src, msg_id = ?r.msg_id, code = u32::from(r.code), "rejected input: {}", r.text);
        out.extend(r.reply(self.id()));
    }

    fn on_message(&mut self, env: Envelope, now: Duration, out: &mut Vec<Envelope>) {
        debug!(src = %env.src, dest = %env.dest, body = ?env.body, "received");
        if let Payload::Init { node_id, node_ids } = &env.body.payload {
            self.on_init(&env, node_id, node_ids, now, out);
            return;
        }
        let Some(node) = self.node.as_mut() else {
            self.before_init(env, out);
            return;
        };
        if env.dest != node.id {
            let text = format!("addressed to {}, but this is {}", env.dest, node.id);
            warn!(src = %env.src, "{text}");
            if env.body.msg_id.is_some() {
                let error = Payload::error(ErrorCode::MalformedRequest, text);
                out.push(env.reply_from(&node.id, error));
            }
            return;
        }
        node.on_message(&env, now, out);
    }

    fn before_init(&mut self, env: Envelope, out: &mut Vec<Envelope>) {
        if matches!(env.body.payload, Payload::Gossip(_)) {
            if self.early.len() < MAX_EARLY {
                self.early.push(env);
            } else {
                warn!(src = %env.src, "dropping a peer message: too many before init");
            }
        } else if env.body.msg_id.is_some() {
            let text = "not initialised yet: init comes first";
            out.push(env.error(ErrorCode::TemporarilyUnavailable, text));
        } else {
            warn!(src = %env.src, "ignoring a message before init");
        }
    }

    fn on_init(
        &mut self,
        env: &Envelope,
        node_id: &str,
        node_ids: &[String],
        now: Duration,
        out: &mut Vec<Envelope>,
    ) {
        if let Some(node) = &self.node {
            if node.id == node_id && node.nodes() == node_ids {
                out.push(env.reply_from(&node.id, Payload::InitOk));
            } else {
                let text = format!("already initialised as {} of {:?}", node.id, node.nodes());
                let error = Payload::error(ErrorCode::PreconditionFailed, text);
                out.push(env.reply_from(&node.id, error));
            }
            return;
        }
        if !node_ids.iter().any(|n| n == node_id) {
            let text = format!("node_id {node_id} is not in node_ids {node_ids:?}");
            let error = Payload::error(ErrorCode::MalformedRequest, text);
            out.push(env.reply_from(node_id, error));
            return;
        }
        let seed = self
            .config
            .seed
            .unwrap_or_else(|| fnv1a(node_id.as_bytes()));
        info!(node = node_id, nodes = node_ids.len(), seed, "initialised");
        self.node = Some(Node::new(&self.config, node_id, node_ids, seed));
        out.push(env.reply_from(node_id, Payload::InitOk));
        for early in std::mem::take(&mut self.early) {
            self.on_message(early, now, out);
        }
    }
}

/// Whether an envelope may go out: everything but gossip is a reply, and Maelstrom's schema
/// wants every reply to name its request in `in_reply_to`. A request without `msg_id` is
/// still served (a write still counts), but its reply has no one to go to: only logged.
fn names_its_request(envelope: &Envelope) -> bool {
    let ok =
        matches!(envelope.body.payload, Payload::Gossip(_)) || envelope.body.in_reply_to.is_some();
    if !ok {
        debug!(dest = %envelope.dest, body = ?envelope.body, "not sent: a reply to a request without msg_id");
    }
    ok
}

/// FNV-1a: a stable hash for deriving a node's seed from its id.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::testing::{gossip, message, ms, node, request};
    use super::*;
    use crate::wire::{Element, Gossip, ReadOk};

    fn error_code(out: &[Envelope]) -> Option<ErrorCode> {
        match &out.first()?.body.payload {
            Payload::Error { code, .. } => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn transport_hints_before_init_are_ignored() {
        let mut m = StateMachine::new(Config::default());
        assert!(m.handle(Event::Connected("n1".into()), ms(0)).is_empty());
        assert!(m.handle(Event::Unreachable("n1".into()), ms(0)).is_empty());
        assert_eq!(m.id(), None);
    }

    #[test]
    fn before_init_requests_wait_and_peer_messages_are_kept() {
        let mut m = StateMachine::new(Config::default());
        let out = m.handle(request("n0", 2, Payload::Read), ms(0));
        assert_eq!(error_code(&out), Some(ErrorCode::TemporarilyUnavailable));
        assert_eq!((out[0].src.as_str(), out[0].dest.as_str()), ("n0", "c1"));
        let early = Gossip {
            seq: 1,
            values: vec![Element::Int(9)],
            ..Gossip::default()
        };
        assert!(m.handle(gossip("n1", "n0", early), ms(1)).is_empty());
        let init = Payload::Init {
            node_id: "n0".into(),
            node_ids: vec!["n0".into(), "n1".into()],
        };
        let out = m.handle(request("n0", 3, init.clone()), ms(2));
        assert_eq!(out[0].body.payload, Payload::InitOk);
        let out = m.handle(request("n0", 4, Payload::Read), ms(3));
        assert_eq!(
            out[0].body.payload,
            Payload::ReadOk(ReadOk::Messages {
                messages: vec![Element::Int(9)]
            })
        );
        // The same init again is acknowledged again; another one is refused.
        let out = m.handle(request("n0", 5, init), ms(4));
        assert_eq!(out[0].body.payload, Payload::InitOk);
        let other = Payload::Init {
            node_id: "n0".into(),
            node_ids: vec!["n0".into()],
        };
        let out = m.handle(request("n0", 6, other), ms(5));
        assert_eq!(error_code(&out), Some(ErrorCode::PreconditionFailed));
    }

    #[test]
    fn a_request_without_msg_id_is_served_but_not_answered() {
        // Found by tests/properties: `read_ok` went out without `in_reply_to`.
        let mut m = node("n0", 1);
        let write = message("c1", "n0", None, Payload::Broadcast { message: 4.into() });
        assert_eq!(m.handle(write, ms(1)), Vec::new());
        assert_eq!(
            m.handle(message("c1", "n0", None, Payload::Read), ms(2)),
            Vec::new()
        );
        let out = m.handle(request("n0", 3, Payload::Read), ms(3));
        assert_eq!(
            out[0].body.payload,
            Payload::ReadOk(ReadOk::Messages {
                messages: vec![Element::Int(4)]
            })
        );
        let mut fresh = StateMachine::new(Config::default());
        let init = Payload::Init {
            node_id: "n0".into(),
            node_ids: vec!["n0".into()],
        };
        assert_eq!(
            fresh.handle(message("c0", "n0", None, init), ms(0)),
            Vec::new()
        );
        assert_eq!(fresh.id(), Some("n0"));
    }

    #[test]
    fn misaddressed_and_unreadable_input_is_answered_as_this_node() {
        let mut m = node("n0", 2);
        let out = m.handle(request("n1", 2, Payload::Read), ms(1));
        assert_eq!(error_code(&out), Some(ErrorCode::MalformedRequest));
        assert_eq!(out[0].src, "n0");
        let out = m.handle(
            Event::from_line(br#"{"src":"c1","dest":"n7","body":{"type":"txn","msg_id":3}}"#),
            ms(2),
        );
        assert_eq!(error_code(&out), Some(ErrorCode::NotSupported));
        assert_eq!(
            (out[0].src.as_str(), out[0].body.in_reply_to),
            ("n0", Some(3))
        );
        let stranger = message("n9", "n0", Some(4), Payload::Gossip(Gossip::default()));
        assert_eq!(
            error_code(&m.handle(stranger, ms(3))),
            Some(ErrorCode::MalformedRequest)
        );
    }
}
