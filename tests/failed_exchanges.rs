//! The failure detector inside one state machine, driven by hand: what counts as a failed
//! exchange, and what does not.

use std::time::Duration;

use node::config::Config;
use node::event::{Event, Trigger};
use node::machine::StateMachine;
use node::membership::Status;
use node::sim::requests::request;
use node::wire::{Envelope, Payload};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Node `id` of n0..n2, after its init.
fn initialised(id: &str) -> StateMachine {
    let nodes: Vec<String> = (0..3).map(|i| format!("n{i}")).collect();
    let mut m = StateMachine::new(Config::default());
    let init = Payload::Init {
        node_id: id.into(),
        node_ids: nodes,
    };
    m.handle(Event::Message(request(id, 1, init)), ms(0));
    m
}

/// Node n2 of n0..n2, initialised, with four values sent up to its parent n0 (whose acks
/// never come) and the detector ticker run once at 50 ms.
fn leaf_with_writes_in_flight() -> StateMachine {
    let mut m = initialised("n2");
    for (i, at) in [10, 20, 30, 40].into_iter().enumerate() {
        let write = request(
            "n2",
            2 + i as u64,
            Payload::Broadcast {
                message: (i as i64).into(),
            },
        );
        let out = m.handle(Event::Message(write), ms(at));
        assert!(
            out.iter().any(|e| e.dest == "n0"),
            "a write goes up to the parent at once: {out:?}"
        );
    }
    m.handle(Event::Trigger(Trigger::Detect), ms(50));
    m
}

#[test]
fn unanswered_exchanges_make_the_parent_suspected() {
    let mut m = leaf_with_writes_in_flight();
    let tick = Config::default().detect_tick.as_millis() as u64;
    // (n1 never answers either here: it is probed as the next candidate once n0 is out,
    // and struck out in turn a timeout later. Look right when n0 dies.)
    for t in (50 + tick..5_000).step_by(tick as usize) {
        m.handle(Event::Trigger(Trigger::Detect), ms(t));
        if m.status("n0") == Some(Status::Dead) {
            break;
        }
    }
    // With three nodes our own suspicion is one vote of the one needed.
    assert_eq!(m.status("n0"), Some(Status::Dead));
    assert_eq!(
        m.parent(),
        Some("n1"),
        "the next node takes the parent's place"
    );
}

#[test]
fn time_this_node_was_stopped_is_not_held_against_its_peers() {
    // The process was stopped for 5 s; when it resumes, the ticker may fire before the acks
    // that arrived meanwhile are read. Those deadlines passed while we were not running.
    let mut m = leaf_with_writes_in_flight();
    m.handle(Event::Trigger(Trigger::Detect), ms(5_050));
    assert_eq!(m.status("n0"), Some(Status::Alive));
    assert_eq!(m.parent(), Some("n0"));
    // Running normally afterwards, the exchanges do expire.
    let tick = Config::default().detect_tick.as_millis() as u64;
    for t in (5_050 + tick..10_000).step_by(tick as usize) {
        m.handle(Event::Trigger(Trigger::Detect), ms(t));
    }
    assert_eq!(m.status("n0"), Some(Status::Dead));
}

#[test]
fn a_probe_is_answered_once_even_when_overtaken_or_copied() {
    use node::wire::Gossip;
    let mut m = initialised("n0");
    let from_n1 = |g: Gossip| Envelope::new("n1", "n0", Payload::Gossip(g));
    let probe = Gossip {
        seq: 1,
        probe: true,
        ..Gossip::default()
    };
    let acks_to_n1 = |out: &[Envelope]| {
        out.iter()
            .filter_map(|e| match &e.body.payload {
                Payload::Gossip(g) if e.dest == "n1" => Some(g.ack),
                _ => None,
            })
            .collect::<Vec<u64>>()
    };
    // Data message 2 overtook probe 1: the probe is still answered at once, by an ack of 2.
    let data = Gossip {
        seq: 2,
        values: vec![7.into()],
        ..Gossip::default()
    };
    assert!(acks_to_n1(&m.handle(Event::Message(from_n1(data)), ms(100))).is_empty());
    let out = m.handle(Event::Message(from_n1(probe.clone())), ms(110));
    assert_eq!(acks_to_n1(&out), vec![2]);
    // A late copy of the probe: answered already.
    let out = m.handle(Event::Message(from_n1(probe)), ms(300));
    assert!(acks_to_n1(&out).is_empty(), "{out:?}");
}
