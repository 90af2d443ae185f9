//! Ours: the nodes' failure detectors judged from the status changes they log
//! (`Outcome::membership`) against the nemesis's ops in the history
//! (docs/maelstrom-compatibility.md 8.5). Two mistakes are counted:
//!
//! - a false death: a node declared a peer dead while that peer was under no fault (nor had
//!   been for `SETTLE`) and the network was whole (no partition or lost links, nor for
//!   `SETTLE`). The observer's own faults excuse nothing: a node that was paused, starved
//!   or stalled must not blame its live peers for it;
//! - a node not revived: a pause, starvation or stall of a node ended, yet at the end of
//!   the run a live node still sees it other than alive.
//!
//! Nodes that log no status changes (any node but ours) get nothing to judge. The
//! simulation counts false deaths from the state machines themselves, with the same
//! `SETTLE` (src/sim/figures.rs).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::edn::Edn;
use crate::history::{Op, Process};
use crate::record::StatusChange;

/// How long after a fault its consequences may still be arriving.
pub const SETTLE: Duration = Duration::from_secs(5);

/// A span of the run, seconds since the history's origin; `end` is `None` while in force.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Span {
    start: f64,
    end: Option<f64>,
}

impl Span {
    /// In force at `t`, or ended less than `SETTLE` before it.
    fn near(&self, t: f64) -> bool {
        self.start <= t && self.end.is_none_or(|e| t < e + SETTLE.as_secs_f64())
    }
}

/// What the detectors got wrong over one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Judgement {
    /// Status changes the nodes logged.
    pub changes: usize,
    pub false_deaths: Vec<StatusChange>,
    /// (observer, peer): a node that came back after a fault, still not alive to observer.
    pub not_revived: Vec<(String, String)>,
}

impl Judgement {
    /// `{:status-changes N, :false-deaths N, :false-death-examples [...], :not-revived [...]}`.
    pub fn to_edn(&self, origin: Duration) -> Edn {
        let examples = self
            .false_deaths
            .iter()
            .take(5)
            .map(|c| {
                Edn::Str(format!(
                    "{:.3}s {} saw {} dead",
                    c.time.as_secs_f64() - origin.as_secs_f64(),
                    c.observer,
                    c.peer
                ))
            })
            .collect();
        let not_revived = self
            .not_revived
            .iter()
            .map(|(o, p)| Edn::Vector(vec![Edn::Str(o.clone()), Edn::Str(p.clone())]))
            .collect();
        Edn::kw_map([
            ("status-changes", Edn::Int(self.changes as i64)),
            ("false-deaths", Edn::Int(self.false_deaths.len() as i64)),
            ("false-death-examples", Edn::Vector(examples)),
            ("not-revived", Edn::Vector(not_revived)),
        ])
    }
}

/// The faults the nemesis recorded: per node, and on the network.
#[derive(Debug, Default)]
struct Faults {
    nodes: BTreeMap<String, Vec<Span>>,
    network: Vec<Span>,
    /// Nodes killed and not started again.
    down: Vec<String>,
}

impl Faults {
    fn read(history: &[Op]) -> Faults {
        let mut faults = Faults::default();
        let mut network_open = [false; 2];
        for op in history.iter().filter(|op| op.process == Process::Nemesis) {
            let t = op.time as f64 / 1e9;
            // Node faults name their nodes in the first of the op's two records.
            let nodes: Vec<String> = match &op.value {
                Edn::Vector(v) => v
                    .iter()
                    .filter_map(|e| match e {
                        Edn::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match op.f.as_str() {
                "pause" | "kill" | "start-starve" | "start-stall-output" => {
                    for node in nodes {
                        let spans = faults.nodes.entry(node.clone()).or_default();
                        if spans.last().is_none_or(|s| s.end.is_some()) {
                            spans.push(Span {
                                start: t,
                                end: None,
                            });
                        }
                        if op.f == "kill" && !faults.down.contains(&node) {
                            faults.down.push(node);
                        }
                    }
                }
                "resume" | "start" | "stop-starve" | "stop-stall-output" => {
                    for node in nodes {
                        if let Some(span) = faults.nodes.get_mut(&node).and_then(|s| s.last_mut()) {
                            span.end.get_or_insert(t);
                        }
                        if op.f == "start" {
                            faults.down.retain(|n| *n != node);
                        }
                    }
                }
                f => {
                    let which = match f {
                        "start-partition" | "stop-partition" => 0,
                        "start-link-loss" | "stop-link-loss" => 1,
                        _ => continue,
                    };
                    let starts = f.starts_with("start-");
                    if starts && !network_open[which] {
                        network_open[which] = true;
                        faults.network.push(Span {
                            start: t,
                            end: None,
                        });
                    } else if !starts && network_open[which] {
                        network_open[which] = false;
                        if let Some(span) =
                            faults.network.iter_mut().rev().find(|s| s.end.is_none())
                        {
                            span.end = Some(t);
                        }
                    }
                }
            }
        }
        faults
    }
}

/// Judges the status changes of a run (times since the test started; the history's origin
/// at `origin`) against its history.
pub fn judge(history: &[Op], origin: Duration, changes: &[StatusChange]) -> Judgement {
    let faults = Faults::read(history);
    let since_origin = |c: &StatusChange| c.time.as_secs_f64() - origin.as_secs_f64();
    let false_deaths = changes
        .iter()
        .filter(|c| c.status == "dead")
        .filter(|c| {
            let t = since_origin(c);
            let peer_faulty = faults
                .nodes
                .get(&c.peer)
                .is_some_and(|spans| spans.iter().any(|s| s.near(t)));
            !peer_faulty && !faults.network.iter().any(|s| s.near(t))
        })
        .cloned()
        .collect();
    // The last status each observer logged of each peer.
    let mut last: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for c in changes {
        last.insert((&c.observer, &c.peer), &c.status);
    }
    let mut not_revived = Vec::new();
    for (node, spans) in &faults.nodes {
        if faults.down.contains(node) || spans.iter().any(|s| s.end.is_none()) {
            continue;
        }
        for (&(observer, peer), &status) in &last {
            if peer == node && status != "alive" && !faults.down.iter().any(|d| d == observer) {
                not_revived.push((observer.to_string(), peer.to_string()));
            }
        }
    }
    Judgement {
        changes: changes.len(),
        false_deaths,
        not_revived,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;

    fn nemesis(time_s: f64, f: &str, value: Edn) -> Op {
        Op {
            index: 0,
            time: (time_s * 1e9) as u64,
            process: Process::Nemesis,
            kind: OpType::Info,
            f: f.to_string(),
            value,
            error: None,
            final_read: false,
            exception: None,
        }
    }

    fn nodes(ids: &[&str]) -> Edn {
        Edn::Vector(ids.iter().map(|n| Edn::Str(n.to_string())).collect())
    }

    fn change(time_s: f64, observer: &str, peer: &str, status: &str) -> StatusChange {
        StatusChange {
            time: Duration::from_secs_f64(time_s),
            observer: observer.into(),
            peer: peer.into(),
            status: status.into(),
        }
    }

    #[test]
    fn a_starved_node_blaming_a_live_peer_is_a_false_death() {
        let history = vec![
            nemesis(1.0, "start-starve", nodes(&["n1"])),
            nemesis(4.0, "stop-starve", nodes(&["n1"])),
        ];
        let origin = Duration::from_secs(2);
        let changes = [
            // n2 sees the starved n1 dead during its starvation, and alive after: fine.
            change(4.0, "n2", "n1", "dead"),
            change(6.5, "n2", "n1", "alive"),
            // n1 sees the live n3 dead while starved: its own fault excuses nothing.
            change(5.0, "n1", "n3", "dead"),
        ];
        let j = judge(&history, origin, &changes);
        assert_eq!(j.false_deaths, vec![changes[2].clone()]);
        assert!(j.not_revived.is_empty());
        let edn = j.to_edn(origin);
        assert_eq!(edn.get("false-deaths"), Some(&Edn::Int(1)));
    }

    #[test]
    fn a_node_still_dead_after_its_stall_ended_is_not_revived() {
        let history = vec![
            nemesis(0.0, "start-stall-output", nodes(&["n1"])),
            nemesis(0.0, "start-stall-output", Edn::Map(Vec::new())),
            nemesis(3.0, "stop-stall-output", nodes(&["n1"])),
        ];
        let changes = [change(2.0, "n2", "n1", "dead")];
        let j = judge(&history, Duration::ZERO, &changes);
        assert!(j.false_deaths.is_empty(), "n1 was stalled");
        assert_eq!(j.not_revived, vec![("n2".to_string(), "n1".to_string())]);
    }

    #[test]
    fn deaths_near_partitions_and_of_killed_nodes_are_not_false() {
        let history = vec![
            nemesis(1.0, "start-partition", Edn::kw("majority")),
            nemesis(
                1.0,
                "start-partition",
                Edn::Vector(vec![Edn::kw("isolated")]),
            ),
            nemesis(3.0, "stop-partition", Edn::Nil),
            nemesis(20.0, "kill", nodes(&["n4"])),
        ];
        let changes = [
            change(7.9, "n1", "n2", "dead"),  // within SETTLE of the heal
            change(8.1, "n1", "n2", "dead"),  // after it: false
            change(22.0, "n1", "n4", "dead"), // killed
        ];
        let j = judge(&history, Duration::ZERO, &changes);
        assert_eq!(j.false_deaths, vec![changes[1].clone()]);
        assert!(
            j.not_revived.is_empty(),
            "a killed node is not expected back"
        );
    }
}
