//! `node serve` as a real cluster: processes on loopback, mutual TLS, real sockets. Every
//! wait is bounded; the clusters are killed when a test ends, however it ends. Timings are
//! printed (`-- --nocapture`) so that a run shows how fast detection, revival and catch-up
//! were, not only that they were fast enough.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use node::cluster::local::{LocalCluster, wait_until};
use serde_json::{Value, json};

fn cluster(dir: &Path, n: usize) -> LocalCluster {
    LocalCluster::start(Path::new(env!("CARGO_BIN_EXE_node")), dir, n, true, &[]).unwrap()
}

fn id(i: usize) -> String {
    format!("n{i}")
}

/// The values node `i` reads, as a set; empty if it does not answer.
fn values(c: &LocalCluster, i: usize) -> BTreeSet<i64> {
    c.read(i)
        .map(|vs| vs.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

fn has_all(c: &LocalCluster, i: usize, want: &BTreeSet<i64>) -> bool {
    values(c, i).is_superset(want)
}

/// Every node of `nodes` reads every value of `want`.
fn all_have(c: &LocalCluster, nodes: &[usize], want: &BTreeSet<i64>) -> bool {
    nodes.iter().all(|&i| has_all(c, i, want))
}

const EVERYONE: [usize; 5] = [0, 1, 2, 3, 4];

/// How node `i` sees `peer`: "alive", "suspected", "dead", or "?" (no answer).
fn status(c: &LocalCluster, i: usize, peer: usize) -> &'static str {
    let Ok(view) = c.membership(i) else {
        return "?";
    };
    let peer = id(peer);
    if view["dead"].get(&peer).is_some() {
        "dead"
    } else if view["suspected"].get(&peer).is_some() {
        "suspected"
    } else if view["alive"]
        .as_array()
        .is_some_and(|a| a.contains(&json!(peer)))
    {
        "alive"
    } else {
        "?"
    }
}

/// Node `i` holds every other node alive, and no one suspected or dead.
fn all_alive(c: &LocalCluster, i: usize) -> bool {
    c.membership(i).is_ok_and(|v| {
        v["dead"] == json!({})
            && v["suspected"] == json!({})
            && v["alive"].as_array().map(Vec::len) == Some(c.members.len() - 1)
    })
}

/// Node `i`'s counters for its link to `peer` (`stats` on the client port).
fn link_stats(c: &LocalCluster, i: usize, peer: usize) -> Value {
    let reply = c.request(i, json!({"type": "stats"})).unwrap();
    assert_eq!(reply["type"], "stats_ok", "{reply}");
    reply["peers"][id(peer)].clone()
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} in {stats}"))
}

fn broadcast(c: &LocalCluster, i: usize, v: i64) {
    let reply = c
        .request(i, json!({"type": "broadcast", "message": v}))
        .unwrap();
    assert_eq!(reply["type"], "broadcast_ok", "n{i}: {reply}");
}

/// Waits until every node of `nodes` sees `peer` as `want`; how long each took.
fn wait_for_status(
    c: &LocalCluster,
    nodes: &[usize],
    peer: usize,
    want: &str,
    within: Duration,
) -> Vec<Option<Duration>> {
    let start = Instant::now();
    let mut took = vec![None; nodes.len()];
    wait_until(within, || {
        for (k, &i) in nodes.iter().enumerate() {
            if took[k].is_none() && status(c, i, peer) == want {
                took[k] = Some(start.elapsed());
            }
        }
        took.iter().all(Option::is_some)
    });
    took
}

fn views(c: &LocalCluster, nodes: &[usize]) -> Vec<String> {
    nodes
        .iter()
        .map(|&i| {
            format!(
                "n{i}: {}",
                c.membership(i)
                    .map_or_else(|e| e.to_string(), |v| v.to_string())
            )
        })
        .collect()
}

#[test]
fn five_nodes_every_value_everywhere_and_one_view_of_membership() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), 5);
    for v in 0..20 {
        let reply = c
            .request(v % 5, json!({"type": "broadcast", "message": v}))
            .unwrap();
        assert_eq!(reply["type"], "broadcast_ok");
    }
    let all: Vec<_> = (0..20).map(|v| json!(v)).collect();
    let took = wait_until(Duration::from_secs(5), || {
        (0..5).all(|i| c.read(i).unwrap() == all)
    });
    assert!(
        took.is_some(),
        "values did not reach every node: {:?}",
        (0..5).map(|i| c.read(i)).collect::<Vec<_>>()
    );
    eprintln!(
        "five nodes: 20 values everywhere {:?} after the last write",
        took.unwrap()
    );
    for i in 0..5 {
        let view = c.membership(i).unwrap();
        assert_eq!(view["dead"], json!({}), "n{i}: {view}");
        assert_eq!(view["suspected"], json!({}), "n{i}: {view}");
    }
}

/// SIGKILL the root of the overlay (n0): the others hold it dead within 6 s and send it
/// nothing but redials; restarted empty with the same id, it is alive again everywhere
/// within 5 s and has every value, from before its death and from while it was dead.
#[test]
fn a_killed_node_is_declared_dead_then_revived_and_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path(), 5);
    let dead = 0;
    let live = [1, 2, 3, 4];
    let mut written = BTreeSet::new();
    for v in 0..10 {
        broadcast(&c, v as usize % 5, v);
        written.insert(v);
    }
    assert!(
        wait_until(Duration::from_secs(5), || all_have(&c, &EVERYONE, &written)).is_some(),
        "values before the kill did not spread"
    );

    c.kill(dead);
    let took = wait_for_status(&c, &live, dead, "dead", Duration::from_secs(6));
    eprintln!("SIGKILL n{dead}: dead at n1..n4 after {took:?}");
    assert!(
        took.iter().all(Option::is_some),
        "not dead everywhere within 6 s: {took:?}\n{:#?}",
        views(&c, &live)
    );
    // `stats` counts the failure detector's probes by why they went: the live nodes
    // gathered evidence of their own against the dead root.
    let probes: Vec<Value> = (live.iter())
        .map(|&i| c.request(i, json!({"type": "stats"})).unwrap()["probes_sent"].clone())
        .collect();
    eprintln!("probes sent by n1..n4: {probes:?}");
    let evidence: u64 = (probes.iter())
        .flat_map(|p| ["retry", "doubt", "sweep"].map(|why| counter(p, why)))
        .sum();
    assert!(
        evidence > 0,
        "no probe of the dead root counted: {probes:?}"
    );

    // While it is dead, the others keep exchanging values.
    for v in 100..110 {
        broadcast(&c, live[v as usize % live.len()], v);
        written.insert(v);
    }
    let spread = wait_until(Duration::from_secs(3), || all_have(&c, &live, &written));
    eprintln!("values written while n{dead} is dead: on every live node after {spread:?}");
    assert!(
        spread.is_some(),
        "live nodes did not exchange values while n{dead} was dead"
    );

    // Nothing is delivered to the dead node; it is redialed at a bounded rate.
    let before: Vec<Value> = live.iter().map(|&i| link_stats(&c, i, dead)).collect();
    let window = Duration::from_secs(3);
    let started = Instant::now();
    std::thread::sleep(window);
    let after: Vec<Value> = live.iter().map(|&i| link_stats(&c, i, dead)).collect();
    let window = started.elapsed();
    // A redial at most every 50 ms (the backoff's base; its ceiling grows to 1 s).
    let most = (window.as_millis() / 50) as u64 + 1;
    for (k, &i) in live.iter().enumerate() {
        let (b, a) = (&before[k], &after[k]);
        let failures = counter(a, "failures") - counter(b, "failures");
        eprintln!(
            "n{i} → n{dead} over {window:?}: {} messages sent, {failures} failed dials, {} dropped, connected {}",
            counter(a, "messages_sent") - counter(b, "messages_sent"),
            counter(a, "queue_drops") - counter(b, "queue_drops"),
            a["connected"]
        );
        assert_eq!(a["connected"], json!(false), "n{i}: {a}");
        assert_eq!(
            counter(a, "messages_sent"),
            counter(b, "messages_sent"),
            "n{i} delivered messages to a dead node: {b} → {a}"
        );
        assert!(
            (1..=most).contains(&failures),
            "n{i}: {failures} redials of n{dead} in {window:?} (expected 1..={most})"
        );
        assert_eq!(
            counter(a, "queue_drops"),
            counter(b, "queue_drops"),
            "n{i} queues more for a dead node than probes: {b} → {a}"
        );
    }

    // Back, empty, with the same id: alive everywhere, and it catches up on everything.
    let restarted = Instant::now();
    c.restart(dead).unwrap();
    let port_up = restarted.elapsed();
    let revived = wait_for_status(&c, &live, dead, "alive", Duration::from_secs(5));
    eprintln!(
        "restart n{dead}: client port up after {port_up:?}, then alive at n1..n4 after {revived:?}"
    );
    assert!(
        revived.iter().all(Option::is_some),
        "not alive everywhere within 5 s of the restart: {revived:?}\n{:#?}",
        views(&c, &EVERYONE)
    );
    let caught_up = wait_until(Duration::from_secs(5), || has_all(&c, dead, &written));
    eprintln!(
        "restart n{dead}: has all {} values {:?} after the restart",
        written.len(),
        caught_up.map(|_| restarted.elapsed())
    );
    assert!(
        caught_up.is_some(),
        "n{dead} lacks {:?}",
        written.difference(&values(&c, dead)).collect::<Vec<_>>()
    );
    let own_view = wait_until(Duration::from_secs(5), || all_alive(&c, dead));
    assert!(own_view.is_some(), "{:#?}", views(&c, &[dead]));
    // It refuted the votes against its past life: a higher incarnation than any the
    // others hold of it. (That they all hold the new one is checked below, in
    // `a_restarted_node_resumes_its_record_above_its_past_life`.)
    let own = c.membership(dead).unwrap()["incarnation"].as_u64().unwrap();
    let held: Vec<u64> = live
        .iter()
        .map(|&i| {
            c.membership(i).unwrap()["incarnations"][id(dead)]
                .as_u64()
                .unwrap()
        })
        .collect();
    eprintln!("restart n{dead}: its incarnation {own}; held by n1..n4: {held:?}");
    assert!(own >= 1 && held.iter().all(|&h| h <= own), "{own} {held:?}");

    // And it takes part again: a value written to it reaches every node.
    broadcast(&c, dead, 1000);
    written.insert(1000);
    let spread = wait_until(Duration::from_secs(3), || all_have(&c, &EVERYONE, &written));
    eprintln!("a value written to the restarted n{dead}: everywhere after {spread:?}");
    assert!(spread.is_some());
}

/// SIGSTOP: a node that accepts connections (the kernel does) but reads nothing. The
/// others go on exchanging values, answer every request at once, hold it dead within 6 s,
/// and after SIGCONT it catches up on everything it missed. Values written to a live node
/// reach every other live node within 2 s once the paused node is held dead everywhere,
/// and within `before_dead` until then (a paused root holds up what goes through it
/// until its children stop counting on it).
fn paused_node(paused: usize, pause_for: Duration, before_dead: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), 5);
    let live: Vec<usize> = (0..5).filter(|&i| i != paused).collect();
    let mut written = BTreeSet::new();
    for v in 0..5 {
        broadcast(&c, v as usize, v);
        written.insert(v);
    }
    assert!(wait_until(Duration::from_secs(5), || all_have(&c, &EVERYONE, &written)).is_some());

    c.pause(paused).unwrap();
    let paused_at = Instant::now();
    // When every live node held the paused one dead.
    let mut dead_at = None;
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut slowest_request = Duration::ZERO;
    let mut v = 100;
    while paused_at.elapsed() < pause_for {
        if dead_at.is_none() && live.iter().all(|&i| status(&c, i, paused) == "dead") {
            dead_at = Some(paused_at.elapsed());
        }
        let bound = if dead_at.is_some() {
            Duration::from_secs(2)
        } else {
            before_dead
        };
        let to = live[v as usize % live.len()];
        let sent = paused_at.elapsed();
        broadcast(&c, to, v);
        written.insert(v);
        let want = BTreeSet::from([v]);
        let took = wait_until(bound, || all_have(&c, &live, &want));
        assert!(
            took.is_some(),
            "{v}, written to n{to} {sent:?} into the pause (held dead everywhere: {dead_at:?}), \
             not on every live node within {bound:?}: {:?}",
            live.iter()
                .map(|&i| (i, has_all(&c, i, &want)))
                .collect::<Vec<_>>()
        );
        let ms = took.unwrap().as_millis();
        if dead_at.is_some() {
            after.push(ms);
        } else {
            before.push((sent.as_millis(), ms));
        }
        for &i in &live {
            let asked = Instant::now();
            c.request(i, json!({"type": "stats"})).unwrap();
            c.read(i).unwrap();
            slowest_request = slowest_request.max(asked.elapsed());
        }
        v += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "SIGSTOP n{paused} for {:?}: dead everywhere after {dead_at:?}; \
         (ms into the pause, ms to every live node) before: {before:?}; ms after: {after:?}; \
         slowest stats+read of a live node {slowest_request:?}",
        paused_at.elapsed()
    );
    let dead_at = dead_at.expect("the paused node was never held dead everywhere");
    assert!(dead_at < Duration::from_secs(6), "{dead_at:?}");
    assert!(
        after.len() >= 5,
        "too few values after detection: {after:?}"
    );
    assert!(
        slowest_request < Duration::from_secs(1),
        "a live node was slow to answer: {slowest_request:?}"
    );
    for &i in &live {
        eprintln!("n{i} → paused n{paused}: {}", link_stats(&c, i, paused));
    }

    c.resume(paused).unwrap();
    let resumed = Instant::now();
    let caught_up = wait_until(Duration::from_secs(5), || has_all(&c, paused, &written));
    eprintln!(
        "SIGCONT n{paused}: has all {} values after {caught_up:?}",
        written.len()
    );
    assert!(
        caught_up.is_some(),
        "n{paused} lacks {:?}",
        written.difference(&values(&c, paused)).collect::<Vec<_>>()
    );
    let revived = wait_until(Duration::from_secs(5), || {
        EVERYONE.iter().all(|&i| all_alive(&c, i))
    });
    eprintln!(
        "SIGCONT n{paused}: every node holds every node alive after {:?}",
        revived.map(|_| resumed.elapsed())
    );
    assert!(revived.is_some(), "{:#?}", views(&c, &EVERYONE));
}

#[test]
fn a_stopped_leaf_holds_up_no_one_and_catches_up_when_continued() {
    paused_node(3, Duration::from_secs(8), Duration::from_secs(2));
}

#[test]
fn a_stopped_root_is_routed_around_and_catches_up_when_continued() {
    paused_node(0, Duration::from_secs(8), Duration::from_secs(6));
}

/// SIGTERM: the node stops and exits 0 within a few seconds, also when one of its peers
/// is stopped; what it had queued for its peers leaves first, so a value it acknowledged
/// just before is not lost (a leaf sends a value up to its parent at once).
#[test]
fn sigterm_exits_zero_promptly_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path(), 4);
    let mut written: BTreeSet<i64> = (0..4).collect();
    for &v in &written {
        broadcast(&c, v as usize, v);
    }
    assert!(
        wait_until(Duration::from_secs(5), || all_have(
            &c,
            &EVERYONE[..4],
            &written
        ))
        .is_some()
    );

    broadcast(&c, 3, 42);
    written.insert(42);
    let asked = Instant::now();
    let status = c.terminate(3).unwrap();
    let took = asked.elapsed();
    let flushed = wait_until(Duration::from_secs(3), || {
        all_have(&c, &[0, 1, 2], &written)
    });
    eprintln!(
        "SIGTERM n3 (peers healthy): {status} after {took:?}; its last value everywhere after {flushed:?}"
    );
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        flushed.is_some(),
        "n3 acknowledged 42, then exited without sending it"
    );

    // n2 stopped: the writers to it have nowhere to put what they queue.
    c.pause(2).unwrap();
    for v in 10..60 {
        broadcast(&c, v as usize % 2, v);
        written.insert(v);
    }
    std::thread::sleep(Duration::from_millis(500));
    broadcast(&c, 1, 43);
    written.insert(43);
    let asked = Instant::now();
    let status = c.terminate(1).unwrap();
    let took = asked.elapsed();
    let flushed = wait_until(Duration::from_secs(3), || has_all(&c, 0, &written));
    eprintln!(
        "SIGTERM n1 (n2 stopped): {status} after {took:?}; its values on n0 after {flushed:?}"
    );
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(
        flushed.is_some(),
        "n0 lacks {:?}",
        written.difference(&values(&c, 0)).collect::<Vec<_>>()
    );
}

/// The root of the overlay sends values down in batches: a value it acknowledged is
/// still waiting for the next batch when SIGTERM comes. A graceful stop must not lose
/// it: it goes to the peers before the node exits.
#[test]
fn sigterm_at_the_root_loses_no_acknowledged_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path(), 3);
    broadcast(&c, 1, 1);
    let one = BTreeSet::from([1]);
    assert!(
        wait_until(Duration::from_secs(5), || all_have(
            &c,
            &EVERYONE[..3],
            &one
        ))
        .is_some()
    );
    // Past the batch in flight, so that 42 waits for the next one.
    std::thread::sleep(Duration::from_millis(300));
    broadcast(&c, 0, 42);
    let status = c.terminate(0).unwrap();
    assert!(status.success(), "{status}");
    let want = BTreeSet::from([42]);
    let spread = wait_until(Duration::from_secs(3), || all_have(&c, &[1, 2], &want));
    eprintln!("SIGTERM the root n0 right after it acknowledged 42: on n1, n2 after {spread:?}");
    assert!(
        spread.is_some(),
        "n0 acknowledged 42 and stopped gracefully, and 42 is lost: n1 {:?}, n2 {:?}",
        values(&c, 1),
        values(&c, 2)
    );
}

/// A node that comes back, empty, while the others hold it dead must carry on above the
/// record of its past life: peers ignore a record no newer than the one they hold, so a
/// new life that starts its record over is not heard (its incarnation, its votes) until it
/// has changed its record more often than its past life did. Here the past life changed
/// its record a few times (each time it was stopped and suspected, it refuted when
/// continued); after the restart every node must agree on its new incarnation.
#[test]
fn a_restarted_node_resumes_its_record_above_its_past_life() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path(), 5);
    let node = 3;
    let others = [0, 1, 2, 4];
    broadcast(&c, 0, 1);
    let incarnation =
        |c: &LocalCluster| c.membership(node).unwrap()["incarnation"].as_u64().unwrap();
    let mut incs = vec![incarnation(&c)];
    for _ in 0..3 {
        c.pause(node).unwrap();
        // Generous: a suspicion also needs a second node's doubt (src/membership/mod.rs).
        let suspected = wait_until(Duration::from_secs(10), || {
            others.iter().any(|&i| status(&c, i, node) != "alive")
        });
        c.resume(node).unwrap();
        assert!(
            suspected.is_some(),
            "n{node} stopped, and no one suspects it"
        );
        let back = wait_until(Duration::from_secs(5), || {
            EVERYONE.iter().all(|&i| all_alive(&c, i))
        });
        assert!(back.is_some(), "{:#?}", views(&c, &EVERYONE));
        incs.push(incarnation(&c));
    }
    eprintln!("n{node} stopped and continued three times: incarnations {incs:?}");
    let past = *incs.last().unwrap();
    assert!(
        past > incs[0],
        "n{node} never refuted a suspicion: {incs:?}"
    );

    c.kill(node);
    let dead = wait_for_status(&c, &others, node, "dead", Duration::from_secs(6));
    assert!(dead.iter().all(Option::is_some), "{dead:?}");
    c.restart(node).unwrap();
    let revived = wait_for_status(&c, &others, node, "alive", Duration::from_secs(5));
    assert!(
        revived.iter().all(Option::is_some),
        "{revived:?}\n{:#?}",
        views(&c, &EVERYONE)
    );
    let held = |c: &LocalCluster| -> Vec<Value> {
        others
            .iter()
            .map(|&i| {
                c.membership(i)
                    .map_or(Value::Null, |v| v["incarnations"][id(node)].clone())
            })
            .collect()
    };
    let agreed = wait_until(Duration::from_secs(3), || {
        let own = incarnation(&c);
        all_alive(&c, node) && held(&c).iter().all(|inc| *inc == json!(own))
    });
    let own = incarnation(&c);
    eprintln!(
        "n{node} killed: dead after {dead:?}; restarted: alive after {revived:?}; \
         its incarnation {own} (past life {past}); held by n0,n1,n2,n4: {:?}; agreed after {agreed:?}",
        held(&c)
    );
    assert!(
        own > past,
        "the new life's incarnation {own} does not void the votes against {past}"
    );
    assert!(
        agreed.is_some(),
        "the others ignore the restarted n{node}'s record: it is at incarnation {own}, \
         they hold {:?}\n{:#?}",
        held(&c),
        views(&c, &EVERYONE)
    );
}
