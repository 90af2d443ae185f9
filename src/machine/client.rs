//! The client API: requests become replies and writes. Owns the replicated data, the
//! workload it is read as, and the replies to writes (set elements and counter adds) held
//! until another node holds what they wrote (unless the node answers writes at once:
//! `AckWhen::Local`, which gives up what follows).
//!
//! Why held: a value acknowledged by this node alone is lost if this node dies before it
//! passes the value on (a kill, with its link to its parent cut or its parent dead). A
//! reply that waits until some peer has acknowledged the value (or sent it to us) means
//! that every acknowledged value survives the loss of any one node, whether or not that
//! node ever comes back, which no log on this node's disk could promise.
//!
//! For the same reason a read leaves out the elements written here that no peer is known
//! to hold yet: a read that showed one would make it observed, and a checker counts an
//! observed element that later vanishes with this node as lost, acknowledged or not. (A
//! node whose peers are all dead shows them: it holds all there is.)

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::config::Mode;
use crate::crdt::{Crdt, Data, GSet};
use crate::gossip::Link;
use crate::membership::Detector;
use crate::wire::{Add, Element, Envelope, ErrorCode, Payload, ReadOk};

/// How long a reply is held before the client is told the write's fate is unknown (below
/// the 5 s a Maelstrom client waits, so the answer reaches a client still waiting).
pub(super) const HOLD_LIMIT: Duration = Duration::from_secs(3);
/// Replies held at once; beyond that the oldest is answered as unknown.
const MAX_HELD: usize = 10_000;

pub(super) struct Client {
    /// This life of this node: its name, and its epoch after a restart (`Config::epoch`).
    /// Counter totals and generated ids are this life's own: a restarted node starts from
    /// nothing, and totals or ids under its old name would repeat what its last life made
    /// (the peers' larger totals for that name would swallow the new adds).
    me: String,
    /// The workload served: configured, or set by the first write.
    mode: Option<Mode>,
    data: Data,
    next_unique: u64,
    /// Replies to writes no peer is known to hold yet, oldest first.
    held: VecDeque<Held>,
    /// Set elements written here that no peer is known to hold yet: reads leave them out.
    unconfirmed: BTreeSet<Element>,
    /// What a read shows of the set, kept as the two change: the set's elements less the
    /// unconfirmed ones, in order.
    shown: Shown,
}

/// A sorted vector of distinct elements, which most insertions extend at the end (values
/// mostly arrive in the order they were written).
#[derive(Default)]
struct Shown(Vec<Element>);

impl Shown {
    fn insert(&mut self, element: &Element) {
        if self.0.last().is_none_or(|last| last < element) {
            self.0.push(element.clone());
        } else if let Err(at) = self.0.binary_search(element) {
            self.0.insert(at, element.clone());
        }
    }

    fn remove(&mut self, element: &Element) {
        if let Ok(at) = self.0.binary_search(element) {
            self.0.remove(at);
        }
    }
}

/// A write's reply, waiting until some peer holds what it wrote.
struct Held {
    reply: Envelope,
    written: Data,
    since: Duration,
}

/// What a request asks of the rest of the node, besides its reply.
pub(super) enum Served {
    /// Nothing: send the reply (echo, generate, membership).
    Reply(Payload),
    /// The workload has begun (topology, read), so gossip starts.
    Begin(Payload),
    /// A write: gossip starts, `new` (what it added here, possibly nothing) spreads, and
    /// goes up to the parent at once. `written` is the whole write, new here or not.
    Write {
        new: Data,
        written: Data,
        reply: Payload,
    },
}

impl Client {
    pub fn new(me: &str, epoch: u64, mode: Option<Mode>) -> Self {
        Client {
            me: match epoch {
                0 => me.to_string(),
                epoch => format!("{me}@{epoch}"),
            },
            mode,
            data: Data::default(),
            next_unique: 0,
            held: VecDeque::new(),
            unconfirmed: BTreeSet::new(),
            shown: Shown::default(),
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
            Payload::Read => Served::Begin(Payload::ReadOk(self.read(detector))),
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
        let new = self.data.merge(delta);
        self.show_new(&new);
        Served::Write {
            new,
            written: delta.clone(),
            reply,
        }
    }

    /// Elements `new` to the set are shown unless unconfirmed.
    fn show_new(&mut self, new: &Data) {
        for element in &new.set.0 {
            if !self.unconfirmed.contains(element) {
                self.shown.insert(element);
            }
        }
    }

    /// Elements no longer unconfirmed are shown (if the set has them).
    fn show_confirmed(&mut self, confirmed: Vec<Element>) {
        for element in &confirmed {
            if self.data.set.0.contains(element) {
                self.shown.insert(element);
            }
        }
    }

    /// Keeps the unconfirmed elements that `keep` says to, and shows the others.
    fn confirm_unless(&mut self, mut keep: impl FnMut(&Element) -> bool) {
        let mut confirmed = Vec::new();
        self.unconfirmed.retain(|element| {
            let kept = keep(element);
            if !kept {
                confirmed.push(element.clone());
            }
            kept
        });
        self.show_confirmed(confirmed);
    }

    /// Holds the reply to a write until `release` finds a peer that holds `written`;
    /// until then reads leave out the elements that were `new` here.
    pub fn hold(
        &mut self,
        reply: Envelope,
        written: Data,
        new: &Data,
        now: Duration,
        out: &mut Vec<Envelope>,
    ) {
        for element in &new.set.0 {
            if self.unconfirmed.insert(element.clone()) {
                self.shown.remove(element);
            }
        }
        if self.held.len() >= MAX_HELD
            && let Some(oldest) = self.held.pop_front()
        {
            out.push(unknown(oldest));
        }
        self.held.push_back(Held {
            reply,
            written,
            since: now,
        });
    }

    /// Sends the held replies whose writes the peer behind `link` holds (from what it
    /// lacks and the counter totals it acknowledged).
    pub fn release(&mut self, link: &Link, out: &mut Vec<Envelope>) {
        if !self.unconfirmed.is_empty() {
            self.confirm_unless(|element| !link.holds_element(element));
        }
        if self.held.is_empty() {
            return;
        }
        self.held.retain_mut(|held| {
            if link.holds(&held.written) {
                out.push(held.reply.clone());
                false
            } else {
                true
            }
        });
    }

    /// When `expire` next has a reply to answer, if any is held.
    pub fn expires_at(&self) -> Option<Duration> {
        self.held.front().map(|held| held.since + HOLD_LIMIT)
    }

    /// Replies held past `HOLD_LIMIT` are answered as of unknown outcome: the value may
    /// still spread, or be lost with this node.
    pub fn expire(&mut self, now: Duration, out: &mut Vec<Envelope>) {
        while self
            .held
            .front()
            .is_some_and(|held| now >= held.since + HOLD_LIMIT)
        {
            let held = self.held.pop_front().expect("a front");
            out.push(unknown(held));
        }
    }

    /// What a client reads: everything, less the elements no peer is known to hold, unless
    /// every peer is dead: then no one may ever hold them, and hiding them could hide for
    /// good what a peer acknowledged before it died. Once shown they stay shown (reads
    /// only grow).
    fn read(&mut self, detector: &Detector) -> ReadOk {
        if !self.unconfirmed.is_empty() && detector.alone() {
            let confirmed = std::mem::take(&mut self.unconfirmed);
            self.show_confirmed(confirmed.into_iter().collect());
        }
        #[cfg(test)]
        {
            let visible = self.data.set.0.difference(&self.unconfirmed);
            assert!(
                visible.eq(&self.shown.0),
                "shown is the set less the unconfirmed"
            );
        }
        let set = || self.shown.0.clone();
        match self.mode.unwrap_or(Mode::Broadcast) {
            Mode::Broadcast => ReadOk::Messages { messages: set() },
            Mode::GSet => ReadOk::Elements { value: set() },
            Mode::Counter => ReadOk::Counter {
                value: self.data.counter.value(),
            },
        }
    }

    /// Everything this node holds.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Merges data gossiped by a peer (which therefore holds it); returns what was new here.
    pub fn merge(&mut self, delta: &Data) -> Data {
        if !self.unconfirmed.is_empty() {
            self.confirm_unless(|v| !delta.set.0.contains(v));
        }
        let new = self.data.merge(delta);
        self.show_new(&new);
        new
    }
}

/// An error of code 0 (timeout): Maelstrom's indefinite error, so the op's outcome stays
/// unknown rather than failed.
fn unknown(held: Held) -> Envelope {
    let text = "no other node acknowledged the value in time: it may or may not survive";
    let mut reply = held.reply;
    reply.body.payload = Payload::error(ErrorCode::Other(0), text);
    reply
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::config::{AckWhen, Config};
    use crate::machine::StateMachine;
    use crate::machine::testing::{begun, gossip, ms, node, node_with, request, run, sent};
    use crate::wire::{Add, Element, Envelope, Gossip, Payload, ReadOk};

    fn reply(out: &[Envelope]) -> &Payload {
        let replies: Vec<_> = out.iter().filter(|e| e.dest == "c1").collect();
        assert_eq!(replies.len(), 1, "{out:?}");
        &replies[0].body.payload
    }

    fn read(m: &mut StateMachine, at: u64) -> Payload {
        let id = m.id().expect("initialised").to_string();
        reply(&m.handle(request(&id, 90, Payload::Read), ms(at))).clone()
    }

    #[test]
    fn echo_generate_and_membership_are_answered() {
        let mut m = node("n0", 3);
        let echo = Payload::Echo {
            echo: json!({"a": 1}),
        };
        let out = m.handle(request("n0", 2, echo), ms(1));
        assert_eq!(
            *reply(&out),
            Payload::EchoOk {
                echo: json!({"a": 1})
            }
        );
        assert_eq!(out[0].body.in_reply_to, Some(2));
        let ids: Vec<Payload> = (3..5)
            .map(|id| reply(&m.handle(request("n0", id, Payload::Generate), ms(2))).clone())
            .collect();
        assert_eq!(
            ids,
            [
                Payload::GenerateOk { id: "n0-1".into() },
                Payload::GenerateOk { id: "n0-2".into() }
            ]
        );
        let out = m.handle(request("n0", 5, Payload::Membership), ms(3));
        let Payload::MembershipOk(view) = reply(&out) else {
            panic!("{out:?}")
        };
        assert_eq!(view.alive, ["n1", "n2"]);
    }

    #[test]
    fn a_write_is_answered_once_a_peer_holds_it() {
        let mut m = node("n1", 3);
        let out = m.handle(
            request("n1", 2, Payload::Broadcast { message: 5.into() }),
            ms(1),
        );
        // Up to the parent at once, asking for the ack at once; no reply yet.
        assert_eq!(out.len(), 1, "{out:?}");
        let (dest, g) = sent(&out)[0];
        assert_eq!((dest, g.values.clone()), ("n0", vec![Element::Int(5)]));
        assert!(g.probe);
        // Another write of the same value waits for the same ack.
        let out = m.handle(
            request("n1", 3, Payload::Broadcast { message: 5.into() }),
            ms(2),
        );
        assert!(out.iter().all(|e| e.dest != "c1"), "{out:?}");
        // n2's ack of nothing releases nothing; n0's ack releases both, in order.
        let nothing = Gossip {
            ack: 0,
            seq: 1,
            ..Gossip::default()
        };
        let out = m.handle(gossip("n2", "n1", nothing), ms(3));
        assert!(out.iter().all(|e| e.dest != "c1"), "{out:?}");
        let ack = Gossip {
            ack: g.seq,
            ..Gossip::default()
        };
        // Until then, reads leave the value out: a read showing it would make it lost
        // if this node died before passing it on.
        let none = Payload::ReadOk(ReadOk::Messages { messages: vec![] });
        assert_eq!(read(&mut m, 3), none);
        let out = m.handle(gossip("n0", "n1", ack), ms(4));
        let replies: Vec<_> = out.iter().filter(|e| e.dest == "c1").collect();
        assert_eq!(replies.len(), 2, "{out:?}");
        let five = Payload::ReadOk(ReadOk::Messages {
            messages: vec![Element::Int(5)],
        });
        assert_eq!(read(&mut m, 4), five);
        assert_eq!(replies[0].body.in_reply_to, Some(2));
        assert_eq!(replies[1].body.payload, Payload::BroadcastOk);
        // A value a peer sent us is held elsewhere: answered at once.
        let from_n2 = Gossip {
            seq: 2,
            values: vec![Element::Int(8)],
            ..Gossip::default()
        };
        m.handle(gossip("n2", "n1", from_n2), ms(5));
        let out = m.handle(
            request("n1", 4, Payload::Broadcast { message: 8.into() }),
            ms(6),
        );
        assert_eq!(reply(&out), &Payload::BroadcastOk);
    }

    #[test]
    fn with_local_acks_a_write_is_answered_at_once_and_read_at_once() {
        let config = Config {
            ack_when: AckWhen::Local,
            ..Config::default()
        };
        let mut m = node_with(config, "n1", 3);
        let out = m.handle(
            request("n1", 2, Payload::Broadcast { message: 5.into() }),
            ms(1),
        );
        assert_eq!(reply(&out), &Payload::BroadcastOk);
        // It still goes up: the first message to the parent leaves at once.
        let (dest, g) = sent(&out)[0];
        assert_eq!((dest, g.values.clone()), ("n0", vec![Element::Int(5)]));
        let five = Payload::ReadOk(ReadOk::Messages {
            messages: vec![Element::Int(5)],
        });
        assert_eq!(read(&mut m, 2), five);
    }

    #[test]
    fn a_counter_add_is_answered_once_a_peer_holds_the_total_it_made() {
        let mut m = node("n1", 3);
        let add = |m: &mut StateMachine, id, delta, at| {
            m.handle(request("n1", id, Payload::Add(Add::Delta(delta))), ms(at))
        };
        let out = add(&mut m, 2, 5, 1);
        assert!(out.iter().all(|e| e.dest != "c1"), "held: {out:?}");
        let first = sent(&out)[0].1.clone();
        // A second add before the ack goes up at once too: the parent's ack of the first
        // message covers the first add only (total 5), not the second (total 7).
        let out = add(&mut m, 3, 2, 2);
        assert!(out.iter().all(|e| e.dest != "c1"), "held: {out:?}");
        let (dest, second) = sent(&out)[0];
        assert_eq!((dest, second.seq > first.seq), ("n0", true), "{out:?}");
        let next = second.seq;
        let ack = |seq| Gossip {
            ack: seq,
            ..Gossip::default()
        };
        let out = m.handle(gossip("n0", "n1", ack(first.seq)), ms(3));
        let replies: Vec<_> = out.iter().filter(|e| e.dest == "c1").collect();
        assert_eq!(replies.len(), 1, "{out:?}");
        assert_eq!(replies[0].body.in_reply_to, Some(2));
        assert_eq!(replies[0].body.payload, Payload::AddOk);
        // The ack of the message that carried the second total releases the second add.
        let out = m.handle(gossip("n0", "n1", ack(next)), ms(4));
        let replies: Vec<_> = out.iter().filter(|e| e.dest == "c1").collect();
        assert_eq!(replies.len(), 1, "{out:?}");
        assert_eq!(replies[0].body.in_reply_to, Some(3));
    }

    #[test]
    fn a_write_no_peer_acknowledges_is_answered_as_unknown() {
        // Five nodes: n1 alone cannot declare its silent peers dead.
        let mut m = node("n1", 5);
        m.handle(
            request("n1", 2, Payload::Broadcast { message: 5.into() }),
            ms(1),
        );
        let out = run(&mut m, 2, 1 + super::HOLD_LIMIT.as_millis() as u64 + 100);
        let replies: Vec<_> = out.iter().filter(|(_, e)| e.dest == "c1").collect();
        assert_eq!(replies.len(), 1, "{out:?}");
        let (at, reply) = replies[0];
        let held_since = 1;
        assert!(*at >= held_since + super::HOLD_LIMIT.as_millis() as u64);
        assert!(
            matches!(&reply.body.payload, Payload::Error { code, .. } if u32::from(*code) == 0),
            "an indefinite error: {reply:?}"
        );
        // Still unseen by reads, until a peer sends it back (so holds it).
        let none = Payload::ReadOk(ReadOk::Messages { messages: vec![] });
        let now = 2 + super::HOLD_LIMIT.as_millis() as u64 + 100;
        assert_eq!(read(&mut m, now), none);
        let back = Gossip {
            seq: 1,
            values: vec![Element::Int(5)],
            ..Gossip::default()
        };
        m.handle(gossip("n0", "n1", back), ms(now + 1));
        let five = Payload::ReadOk(ReadOk::Messages {
            messages: vec![Element::Int(5)],
        });
        assert_eq!(read(&mut m, now + 2), five);
    }

    #[test]
    fn a_node_whose_peers_are_all_dead_shows_what_it_holds() {
        let mut m = node("n1", 2);
        m.handle(
            request("n1", 2, Payload::Broadcast { message: 5.into() }),
            ms(1),
        );
        let none = Payload::ReadOk(ReadOk::Messages { messages: vec![] });
        assert_eq!(read(&mut m, 2), none);
        // n0 never answers: dead within a few seconds, and no one is left to hold 5.
        run(&mut m, 3, 10_000);
        assert_eq!(m.status("n0"), Some(crate::membership::Status::Dead));
        let five = Payload::ReadOk(ReadOk::Messages {
            messages: vec![Element::Int(5)],
        });
        assert_eq!(read(&mut m, 10_001), five);
    }

    #[test]
    fn a_single_node_answers_at_once() {
        let mut m = node("n0", 1);
        let out = m.handle(
            request("n0", 2, Payload::Broadcast { message: 5.into() }),
            ms(1),
        );
        assert_eq!(reply(&out), &Payload::BroadcastOk);
    }

    #[test]
    fn reads_follow_the_first_write() {
        let mut m = node("n0", 1);
        assert_eq!(
            read(&mut m, 1),
            Payload::ReadOk(ReadOk::Messages { messages: vec![] }),
            "before any write, as broadcast"
        );
        let x = Element::try_from(json!("x")).unwrap();
        for (id, element) in [(2, x.clone()), (3, 2.into()), (4, (-1).into())] {
            let add = Payload::Add(Add::Element(element));
            assert_eq!(
                *reply(&m.handle(request("n0", id, add), ms(2))),
                Payload::AddOk
            );
        }
        assert_eq!(
            read(&mut m, 3),
            Payload::ReadOk(ReadOk::Elements {
                value: vec![(-1).into(), 2.into(), x]
            })
        );

        let mut m = node("n0", 1);
        for (id, delta) in [(2, 5), (3, -7), (4, 1)] {
            m.handle(request("n0", id, Payload::Add(Add::Delta(delta))), ms(1));
        }
        assert_eq!(
            read(&mut m, 2),
            Payload::ReadOk(ReadOk::Counter { value: -1 })
        );
    }

    #[test]
    fn gossip_waits_for_the_workload() {
        let mut m = node("n1", 2);
        assert!(
            run(&mut m, 1, 3000).is_empty(),
            "nothing before the workload"
        );
        m.handle(request("n1", 2, Payload::Echo { echo: json!(1) }), ms(3000));
        assert!(
            run(&mut m, 3001, 4000).is_empty(),
            "echo is not the workload"
        );
        read(&mut m, 4000);
        let out = run(&mut m, 4001, 4020);
        let announce: Vec<_> = out.iter().map(|(t, e)| (*t, e.dest.as_str())).collect();
        assert_eq!(
            announce,
            [(4010, "n0")],
            "a read begins it: the parent hears of its child"
        );
    }

    #[test]
    fn replies_are_never_answered() {
        let mut m = begun("n0", 2);
        for reply in [
            Payload::EchoOk { echo: json!(1) },
            Payload::AddOk,
            Payload::InitOk,
        ] {
            assert!(m.handle(request("n0", 7, reply), ms(1)).is_empty());
        }
        let error = Payload::error(crate::wire::ErrorCode::Other(1001), "?");
        assert_eq!(m.handle(request("n0", 8, error), ms(1)), Vec::new());
    }
}
