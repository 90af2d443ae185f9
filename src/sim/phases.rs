//! Where the messages of a run under partitions go, by phase: the first seconds of each
//! partition, the rest of the time it stands, the seconds after it heals, and the rest of
//! the run. Each phase splits by kind of message, counts what went to a node that could
//! not hear the sender, and splits the probes by why they went.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Sent;
use crate::gossip::Why;

/// How long a partition's onset, and the healing after it, last here: long enough for
/// the detector's verdicts (about 2 s at the median) and the revivals after a heal.
pub const PHASE_WINDOW: Duration = Duration::from_secs(3);

/// A part of a run, as partitions come and go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The first `PHASE_WINDOW` of a partition.
    Onset,
    /// The rest of the time a partition stands.
    Standing,
    /// The first `PHASE_WINDOW` after a heal, unless a new partition began.
    Healing,
    /// Everything else: the network whole and settled.
    Whole,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::Onset, Phase::Standing, Phase::Healing, Phase::Whole];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Onset => "the first 3 s of a partition",
            Phase::Standing => "the rest of a partition",
            Phase::Healing => "the 3 s after a heal",
            Phase::Whole => "no partition",
        }
    }

    /// The phase at `t`, given the partitions (start, heal) in order.
    pub fn at(t: Duration, partitions: &[(Duration, Option<Duration>)]) -> Phase {
        if let Some(start) = standing_since(t, partitions) {
            return if t < start + PHASE_WINDOW {
                Phase::Onset
            } else {
                Phase::Standing
            };
        }
        let healing = partitions
            .iter()
            .any(|(_, end)| end.is_some_and(|e| e <= t && t < e + PHASE_WINDOW));
        if healing {
            Phase::Healing
        } else {
            Phase::Whole
        }
    }
}

/// When the partition standing at `t` began, if one does.
fn standing_since(t: Duration, partitions: &[(Duration, Option<Duration>)]) -> Option<Duration> {
    partitions
        .iter()
        .find(|(start, end)| *start <= t && end.is_none_or(|e| t < e))
        .map(|(start, _)| *start)
}

/// One phase's share of a run's messages, in msgs-per-op of the whole run (the shares
/// of the phases add up to its msgs-per-op).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseShare {
    /// By kind of message, `Kind::ALL` order.
    pub by_kind: [f64; 5],
    /// Of those, the ones sent to a node that could not hear the sender.
    pub into_cut: f64,
    /// The probes (`Kind::Probe` of `by_kind`) by why they went, `Why::ALL` order. (The
    /// rest of that kind, `probes_unexplained`, are first messages to a new parent that
    /// carried no values: they ask for an ack at once too.)
    pub by_why: [f64; Why::ALL.len()],
    /// How long the phase lasted over the run.
    pub seconds: f64,
}

impl PhaseShare {
    pub fn all(&self) -> f64 {
        self.by_kind.iter().sum()
    }

    /// Messages that asked for an ack at once without values, and were no probe of the
    /// failure detector's (see `by_why`).
    pub fn probes_unexplained(&self) -> f64 {
        self.by_kind[super::Kind::Probe as usize] - self.by_why.iter().sum::<f64>()
    }
}

/// The phases of a run: `Phase::ALL` order.
pub type Phases = [PhaseShare; 4];

/// Splits the messages `sent` (sender → its messages), and the `probes` among them (when
/// each went, and why), by phase. `cuts` says who stopped hearing whom as each partition
/// began: (start, node, senders it no longer hears).
pub fn split(
    sent: &BTreeMap<String, Vec<Sent>>,
    probes: &[(Duration, Why)],
    partitions: &[(Duration, Option<Duration>)],
    cuts: &[(Duration, String, BTreeSet<String>)],
    end: Duration,
    msgs_per_op: f64,
) -> Phases {
    let mut phases = Phases::default();
    let all_sent = sent.values().map(Vec::len).sum::<usize>();
    let share = msgs_per_op / all_sent.max(1) as f64;
    // Per partition start: node → the senders it does not hear.
    let mut deaf_to: BTreeMap<Duration, BTreeMap<&str, &BTreeSet<String>>> = BTreeMap::new();
    for (start, node, senders) in cuts {
        deaf_to.entry(*start).or_default().insert(node, senders);
    }
    let deaf = |t: Duration, from: &str, to: &str| {
        standing_since(t, partitions)
            .and_then(|start| deaf_to.get(&start)?.get(to))
            .is_some_and(|senders| senders.contains(from))
    };
    for (from, log) in sent {
        for s in log {
            // (`Phase::ALL` and `Kind::ALL` are in declaration order.)
            let phase = &mut phases[Phase::at(s.at, partitions) as usize];
            phase.by_kind[s.kind as usize] += share;
            if deaf(s.at, from, &s.dest) {
                phase.into_cut += share;
            }
        }
    }
    for &(at, why) in probes {
        phases[Phase::at(at, partitions) as usize].by_why[why as usize] += share;
    }
    // How long each phase lasted (the partitions come in order, one at a time).
    let mut eventful = Duration::ZERO;
    for (i, (start, heal)) in partitions.iter().enumerate() {
        let start = (*start).min(end);
        let stop = heal.unwrap_or(end).min(end);
        let onset_end = (start + PHASE_WINDOW).min(stop);
        phases[0].seconds += onset_end.saturating_sub(start).as_secs_f64();
        phases[1].seconds += stop.saturating_sub(onset_end).as_secs_f64();
        eventful += stop.saturating_sub(start);
        let next = partitions.get(i + 1).map_or(end, |p| p.0).min(end);
        let healed_by = (stop + PHASE_WINDOW).min(next);
        if heal.is_some() {
            phases[2].seconds += healed_by.saturating_sub(stop).as_secs_f64();
            eventful += healed_by.saturating_sub(stop);
        }
    }
    phases[3].seconds = end.saturating_sub(eventful).as_secs_f64();
    phases
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Kind;

    #[test]
    fn phases_and_kinds_index_in_their_listed_order() {
        for (i, phase) in Phase::ALL.iter().enumerate() {
            assert_eq!(*phase as usize, i);
        }
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
        for (i, why) in Why::ALL.iter().enumerate() {
            assert_eq!(*why as usize, i);
        }
    }

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn sent(at: f64, dest: &str, kind: Kind) -> Sent {
        Sent {
            at: s(at),
            dest: dest.to_string(),
            probe: kind == Kind::Probe,
            kind,
            values_bytes: 0,
        }
    }

    #[test]
    fn a_time_falls_in_one_phase() {
        // One partition from 1 s to 10 s, another from 12 s on.
        let partitions = [(s(1.0), Some(s(10.0))), (s(12.0), None)];
        for (t, phase) in [
            (0.5, Phase::Whole),
            (1.0, Phase::Onset),
            (3.9, Phase::Onset),
            (4.0, Phase::Standing),
            (10.0, Phase::Healing),
            (11.9, Phase::Healing),
            (12.5, Phase::Onset), // a new partition ends the healing
            (30.0, Phase::Standing),
        ] {
            assert_eq!(Phase::at(s(t), &partitions), phase, "at {t} s");
        }
        assert_eq!(Phase::at(s(14.0), &[(s(1.0), Some(s(2.0)))]), Phase::Whole);
    }

    #[test]
    fn shares_add_up_to_the_run_and_count_what_went_into_a_cut() {
        // n1 stops hearing n0 from 1 s to 5 s.
        let partitions = [(s(1.0), Some(s(5.0)))];
        let cuts = [(s(1.0), "n1".to_string(), BTreeSet::from(["n0".to_string()]))];
        let sent = BTreeMap::from([
            (
                "n0".to_string(),
                vec![
                    sent(0.5, "n1", Kind::DataDown),
                    sent(1.5, "n1", Kind::Probe),
                    sent(4.5, "n1", Kind::Probe),
                ],
            ),
            (
                "n1".to_string(),
                vec![sent(1.5, "n0", Kind::Ack), sent(6.0, "n0", Kind::DataUp)],
            ),
        ]);
        let probes = [(s(1.5), Why::Doubt), (s(4.5), Why::Retry)];
        let phases = split(&sent, &probes, &partitions, &cuts, s(10.0), 2.0);
        let total: f64 = phases.iter().map(PhaseShare::all).sum();
        assert!((total - 2.0).abs() < 1e-9, "{total}");
        let [onset, standing, healing, whole] = phases;
        assert!((onset.all() - 0.8).abs() < 1e-9); // two of five messages
        assert!((onset.into_cut - 0.4).abs() < 1e-9); // the probe, not the ack
        assert!((standing.into_cut - 0.4).abs() < 1e-9);
        assert!((onset.by_why[Why::Doubt as usize] - 0.4).abs() < 1e-9);
        assert!((standing.by_why[Why::Retry as usize] - 0.4).abs() < 1e-9);
        assert!(
            onset.probes_unexplained().abs() < 1e-9,
            "every probe has its why"
        );
        assert!(
            (healing.by_kind[0] - 0.4).abs() < 1e-9,
            "data up after the heal"
        );
        assert!((whole.by_kind[1] - 0.4).abs() < 1e-9, "data down before it");
        for (phase, secs) in [(onset, 3.0), (standing, 1.0), (healing, 3.0), (whole, 3.0)] {
            assert!((phase.seconds - secs).abs() < 0.01, "{phase:?}");
        }
    }
}
