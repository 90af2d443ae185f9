//! Helpers for the machine's unit tests: each part is driven through `handle`.

use std::time::Duration;

use super::StateMachine;
use crate::config::Config;
use crate::event::{Event, Trigger};
use crate::wire::{Body, Envelope, Gossip, Payload};

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A message from `src` to `dest`.
pub fn message(src: &str, dest: &str, msg_id: Option<u64>, payload: Payload) -> Event {
    Event::Message(Envelope {
        src: src.into(),
        dest: dest.into(),
        body: Body {
            msg_id,
            in_reply_to: None,
            payload,
        },
    })
}

/// A client request from `c1`.
pub fn request(dest: &str, msg_id: u64, payload: Payload) -> Event {
    message("c1", dest, Some(msg_id), payload)
}

pub fn gossip(src: &str, dest: &str, g: Gossip) -> Event {
    message(src, dest, None, Payload::Gossip(g))
}

/// Node `id` of n0..n{n-1}, initialised at 0 ms.
pub fn node(id: &str, n: usize) -> StateMachine {
    node_with(Config::default(), id, n)
}

/// Node `id` of n0..n{n-1} with `config`, initialised at 0 ms.
pub fn node_with(config: Config, id: &str, n: usize) -> StateMachine {
    let mut m = StateMachine::new(config);
    let node_ids = (0..n).map(|i| format!("n{i}")).collect();
    let init = Payload::Init {
        node_id: id.into(),
        node_ids,
    };
    let out = m.handle(message("c0", id, Some(1), init), ms(0));
    assert_eq!(out[0].body.payload, Payload::InitOk);
    m
}

/// Node `id` of n0..n{n-1}, with the workload begun by `topology` at 0 ms.
pub fn begun(id: &str, n: usize) -> StateMachine {
    begun_with(Config::default(), id, n)
}

/// Node `id` of n0..n{n-1} with `config`, begun by `topology` at 0 ms.
pub fn begun_with(config: Config, id: &str, n: usize) -> StateMachine {
    let mut m = node_with(config, id, n);
    let topology = Payload::Topology {
        topology: Default::default(),
    };
    m.handle(request(id, 2, topology), ms(0));
    m
}

/// Node `id` of n0..n{n-1}, begun, with a client's value written at `at` ms (so that it
/// has something to send its parent).
pub fn with_a_write(id: &str, n: usize, at: u64) -> StateMachine {
    let mut m = begun(id, n);
    m.handle(
        request(id, 3, Payload::Broadcast { message: 1.into() }),
        ms(at),
    );
    m
}

/// Runs `m` from 0 ms in steps of 25 ms while its parent is `parent` (for at most 10 s);
/// returns the time it stopped.
pub fn run_while_parent_is(m: &mut StateMachine, parent: &str) -> u64 {
    let mut t = 0;
    while m.parent() == Some(parent) && t < 10_000 {
        run(m, t, t + 25);
        t += 25;
    }
    t
}

/// The gossip messages in `out`: (destination, message).
pub fn sent(out: &[Envelope]) -> Vec<(&str, &Gossip)> {
    out.iter()
        .filter_map(|e| match &e.body.payload {
            Payload::Gossip(g) => Some((e.dest.as_str(), g)),
            _ => None,
        })
        .collect()
}

/// Runs both tickers at their periods over `from..to`; returns what was sent, with
/// the time.
pub fn run(m: &mut StateMachine, from: u64, to: u64) -> Vec<(u64, Envelope)> {
    let config = Config::default();
    let periods = [
        (Trigger::Gossip, config.gossip_tick.as_millis() as u64),
        (Trigger::Detect, config.detect_tick.as_millis() as u64),
    ];
    let mut out = Vec::new();
    for t in from..to {
        for (trigger, period) in periods {
            if t % period == 0 {
                let sent = m.handle(Event::Trigger(trigger), ms(t));
                out.extend(sent.into_iter().map(|e| (t, e)));
            }
        }
    }
    out
}

/// The times at which probes (messages asking for an immediate ack) went to `peer`.
pub fn probes_to(sent: &[(u64, Envelope)], peer: &str) -> Vec<u64> {
    sent.iter()
        .filter(|(_, e)| e.dest == peer)
        .filter(|(_, e)| matches!(&e.body.payload, Payload::Gossip(g) if g.probe && g.seq > 0))
        .map(|(t, _)| *t)
        .collect()
}
