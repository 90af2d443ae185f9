//! The nemesis's activity, read from the history: a band per fault in force (start to
//! stop) and a mark per nemesis op, drawn behind the plots and the membership timeline.

use crate::history::{Op, Process};

/// The faults the runner injects: Maelstrom's partition, and ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Partition,
    LinkLoss,
    Duplication,
    Pause,
    Crash,
    Starvation,
    StalledOutput,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Partition,
        Fault::LinkLoss,
        Fault::Duplication,
        Fault::Pause,
        Fault::Crash,
        Fault::Starvation,
        Fault::StalledOutput,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::LinkLoss => "link loss",
            Fault::Duplication => "duplication",
            Fault::Pause => "pause",
            Fault::Crash => "crash",
            Fault::Starvation => "starvation",
            Fault::StalledOutput => "stalled output",
        }
    }

    /// Band colour: Maelstrom's for partitions, our own for the rest.
    pub fn colour(self) -> (u8, u8, u8) {
        match self {
            Fault::Partition => (0xE9, 0xDC, 0xA0),
            Fault::LinkLoss => (0xF4, 0xB1, 0x83),
            Fault::Duplication => (0xA9, 0xD1, 0x8E),
            Fault::Pause => (0x9D, 0xC3, 0xE6),
            Fault::Crash => (0xD9, 0xA0, 0xA0),
            Fault::Starvation => (0xC5, 0xB0, 0xE0),
            Fault::StalledOutput => (0xB0, 0xB0, 0xB0),
        }
    }

    pub fn hex(self) -> String {
        let (r, g, b) = self.colour();
        format!("#{r:02X}{g:02X}{b:02X}")
    }

    /// What a nemesis op does: the fault, and whether it starts (true) or stops it.
    fn of(f: &str) -> Option<(Fault, bool)> {
        Some(match f {
            "start-partition" => (Fault::Partition, true),
            "stop-partition" => (Fault::Partition, false),
            "start-link-loss" => (Fault::LinkLoss, true),
            "stop-link-loss" => (Fault::LinkLoss, false),
            "start-duplication" => (Fault::Duplication, true),
            "stop-duplication" => (Fault::Duplication, false),
            "pause" => (Fault::Pause, true),
            "resume" => (Fault::Pause, false),
            "kill" => (Fault::Crash, true),
            "start-starve" => (Fault::Starvation, true),
            "stop-starve" => (Fault::Starvation, false),
            "start-stall-output" => (Fault::StalledOutput, true),
            "stop-stall-output" => (Fault::StalledOutput, false),
            _ => return None,
        })
    }
}

/// A fault in force from `start` to `end`, seconds since the history's origin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    pub fault: Fault,
    pub start: f64,
    pub end: f64,
}

/// The bands, and a mark (time in seconds, fault) per nemesis op.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Marks {
    pub bands: Vec<Band>,
    pub lines: Vec<(f64, Fault)>,
}

impl Marks {
    /// Reads the nemesis ops of `history`; a fault still in force ends at `end` seconds.
    /// The nemesis records each op twice at one instant (what it does, what came of it).
    pub fn from_history(history: &[Op], end: f64) -> Marks {
        let mut marks = Marks::default();
        let mut open: Vec<(Fault, f64)> = Vec::new();
        let mut last: Option<(u64, &str)> = None;
        for op in history.iter().filter(|op| op.process == Process::Nemesis) {
            let Some((fault, starts)) = Fault::of(&op.f) else {
                continue;
            };
            if last == Some((op.time, op.f.as_str())) {
                continue;
            }
            last = Some((op.time, op.f.as_str()));
            let t = op.time as f64 / 1e9;
            marks.lines.push((t, fault));
            let at = open.iter().position(|(f, _)| *f == fault);
            match (starts, at) {
                (true, None) => open.push((fault, t)),
                (false, Some(i)) => {
                    let (_, start) = open.remove(i);
                    marks.bands.push(Band {
                        fault,
                        start,
                        end: t,
                    });
                }
                _ => {}
            }
        }
        for (fault, start) in open {
            marks.bands.push(Band {
                fault,
                start,
                end: end.max(start),
            });
        }
        marks
    }

    /// The faults present, in a fixed order (for legends).
    pub fn faults(&self) -> Vec<Fault> {
        Fault::ALL
            .into_iter()
            .filter(|f| self.lines.iter().any(|(_, g)| g == f))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::Edn;
    use crate::history::OpType;

    fn nemesis(time_s: u64, f: &str) -> [Op; 2] {
        let op = Op {
            index: 0,
            time: time_s * 1_000_000_000,
            process: Process::Nemesis,
            kind: OpType::Info,
            f: f.into(),
            value: Edn::Nil,
            error: None,
            final_read: false,
            exception: None,
        };
        [op.clone(), op]
    }

    #[test]
    fn bands_pair_starts_with_stops() {
        let history: Vec<Op> = [
            (1, "start-partition"),
            (3, "stop-partition"),
            (4, "stop-partition"),
            (5, "pause"),
            (6, "start-partition"),
        ]
        .into_iter()
        .flat_map(|(t, f)| nemesis(t, f))
        .collect();
        let marks = Marks::from_history(&history, 9.0);
        assert_eq!(marks.lines.len(), 5, "one mark per op, not per record");
        let bands: Vec<(Fault, f64, f64)> = marks
            .bands
            .iter()
            .map(|b| (b.fault, b.start, b.end))
            .collect();
        assert_eq!(
            bands,
            [
                (Fault::Partition, 1.0, 3.0),
                (Fault::Pause, 5.0, 9.0),
                (Fault::Partition, 6.0, 9.0)
            ]
        );
        assert_eq!(marks.faults(), [Fault::Partition, Fault::Pause]);
    }
}
