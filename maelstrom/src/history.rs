//! The history of a test: Jepsen-style operations (invoke, then ok/fail/info), with
//! times in nanoseconds since the history's time origin (docs/maelstrom-compatibility.md 5.3).

use crate::edn::Edn;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl OpType {
    pub fn name(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

/// Who performed an operation: a worker process (its number changes after an `:info`
/// completion, docs/maelstrom-compatibility.md 5.2) or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Worker(u64),
    Nemesis,
}

/// One history entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    /// Position in the history, from 0.
    pub index: u64,
    /// Nanoseconds since the history's time origin.
    pub time: u64,
    pub process: Process,
    pub kind: OpType,
    /// The op's function without the colon: `broadcast`, `read`, `add`, `echo`,
    /// `generate`, `start-partition`, ...
    pub f: String,
    /// The op's value (`Edn::Nil` when absent).
    pub value: Edn,
    /// `:error`, when the op failed or is indeterminate.
    pub error: Option<Edn>,
    /// `:final? true` on final reads (broadcast, counters).
    pub final_read: bool,
    /// `:exception` text for indeterminate ops caused by an exception
    /// (docs/maelstrom-compatibility.md 5.4).
    pub exception: Option<String>,
}

impl Op {
    pub fn is_client(&self) -> bool {
        matches!(self.process, Process::Worker(_))
    }
}

/// A whole history, in order.
pub type History = Vec<Op>;

/// How long each op that completed `:ok` took, from its invocation, in ms: quantiles 0.5,
/// 0.99 and 1 and the count, per `:f` (`{:broadcast {0.5 11.2, 0.99 105.0, 1 152.3,
/// :count 980}, ...}`). A client waits this long for its acknowledgement.
pub fn ok_latencies(history: &History) -> Edn {
    let mut invoked = std::collections::BTreeMap::new();
    let mut by_f: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    for op in history {
        let Process::Worker(p) = op.process else {
            continue;
        };
        match op.kind {
            OpType::Invoke => {
                invoked.insert(p, op.time);
            }
            OpType::Ok => {
                if let Some(start) = invoked.remove(&p) {
                    let ms = op.time.saturating_sub(start) as f64 / 1e6;
                    by_f.entry(op.f.as_str()).or_default().push(ms);
                }
            }
            OpType::Fail | OpType::Info => {
                invoked.remove(&p);
            }
        }
    }
    Edn::Map(
        by_f.into_iter()
            .map(|(f, mut ms)| {
                ms.sort_by(f64::total_cmp);
                let q = |p: f64| {
                    let i = ((ms.len() as f64 * p) as usize).min(ms.len() - 1);
                    Edn::Float((ms[i] * 10.0).round() / 10.0)
                };
                let quantiles = Edn::Map(vec![
                    (Edn::Float(0.5), q(0.5)),
                    (Edn::Float(0.99), q(0.99)),
                    (Edn::Int(1), q(1.0)),
                    (Edn::kw("count"), Edn::Int(ms.len() as i64)),
                ]);
                (Edn::kw(f), quantiles)
            })
            .collect(),
    )
}

/// Jepsen's op map: `{:type :invoke, :f :broadcast, :value 0, :time 123, :process 0, :index 3}`.
pub fn op_to_edn(op: &Op) -> Edn {
    let process = match op.process {
        Process::Worker(p) => Edn::Int(p as i64),
        Process::Nemesis => Edn::kw("nemesis"),
    };
    let mut entries = vec![
        ("type", Edn::kw(op.kind.name())),
        ("f", Edn::kw(&op.f)),
        ("value", op.value.clone()),
        ("time", Edn::Int(op.time as i64)),
        ("process", process),
        ("index", Edn::Int(op.index as i64)),
    ];
    if let Some(error) = &op.error {
        entries.push(("error", error.clone()));
    }
    if op.final_read {
        entries.push(("final?", Edn::Bool(true)));
    }
    if let Some(exception) = &op.exception {
        entries.push(("exception", Edn::Str(exception.clone())));
    }
    Edn::kw_map(entries)
}

/// Writes `op_to_edn(op)` as it prints, without building the map (nor copying the value).
pub fn write_op_edn<W: std::fmt::Write + ?Sized>(w: &mut W, op: &Op) -> std::fmt::Result {
    w.write_str("{:type :")?;
    w.write_str(op.kind.name())?;
    w.write_str(", :f :")?;
    w.write_str(&op.f)?;
    w.write_str(", :value ")?;
    op.value.write_to(w)?;
    w.write_str(", :time ")?;
    crate::edn::write_int(w, op.time as i64)?;
    w.write_str(", :process ")?;
    match op.process {
        Process::Worker(p) => crate::edn::write_int(w, p as i64)?,
        Process::Nemesis => w.write_str(":nemesis")?,
    }
    w.write_str(", :index ")?;
    crate::edn::write_int(w, op.index as i64)?;
    if let Some(error) = &op.error {
        w.write_str(", :error ")?;
        error.write_to(w)?;
    }
    if op.final_read {
        w.write_str(", :final? true")?;
    }
    if let Some(exception) = &op.exception {
        w.write_str(", :exception ")?;
        crate::edn::write_string(w, exception)?;
    }
    w.write_str("}")
}

/// Writes `history.edn` (one op map per line) into `w`.
pub fn write_history_edn_to<W: std::fmt::Write + ?Sized>(
    w: &mut W,
    history: &[Op],
) -> std::fmt::Result {
    for op in history {
        write_op_edn(w, op)?;
        w.write_str("\n")?;
    }
    Ok(())
}

/// `history.edn`: one op map per line.
pub fn write_history_edn(history: &[Op]) -> String {
    let mut out = String::new();
    write_history_edn_to(&mut out, history).expect("a String takes any text");
    out
}

/// `history.txt`: `process<TAB>type<TAB>f<TAB>value[<TAB>error]` per op.
pub fn write_history_txt(history: &[Op]) -> String {
    history
        .iter()
        .map(|op| {
            let process = match op.process {
                Process::Worker(p) => p.to_string(),
                Process::Nemesis => ":nemesis".to_string(),
            };
            let mut line = format!("{process}\t:{}\t:{}\t{}", op.kind.name(), op.f, op.value);
            if let Some(error) = &op.error {
                line.push('\t');
                line.push_str(&error.to_string());
            }
            line.push('\n');
            line
        })
        .collect()
}

/// Pairs each invocation with its completion (the next op of the same process), by index
/// into the history: `(invoke, Some(completion))`, or `None` if it never completed.
pub fn pairs(history: &[Op]) -> Vec<(usize, Option<usize>)> {
    // Per process, the place in `out` of its open invocation.
    let mut open: std::collections::HashMap<Process, usize> = std::collections::HashMap::new();
    let mut out: Vec<(usize, Option<usize>)> = Vec::new();
    for (i, op) in history.iter().enumerate() {
        if op.kind == OpType::Invoke {
            open.insert(op.process, out.len());
            out.push((i, None));
        } else if let Some(at) = open.remove(&op.process) {
            out[at].1 = Some(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(index: u64, process: Process, kind: OpType, f: &str, value: Edn) -> Op {
        Op {
            index,
            time: index * 1000,
            process,
            kind,
            f: f.into(),
            value,
            error: None,
            final_read: false,
            exception: None,
        }
    }

    #[test]
    fn writers_and_pairs() {
        let mut h = vec![
            op(
                0,
                Process::Worker(0),
                OpType::Invoke,
                "broadcast",
                Edn::Int(5),
            ),
            op(
                1,
                Process::Nemesis,
                OpType::Info,
                "start-partition",
                Edn::kw("majority"),
            ),
            op(2, Process::Worker(1), OpType::Invoke, "read", Edn::Nil),
            op(3, Process::Worker(0), OpType::Ok, "broadcast", Edn::Int(5)),
        ];
        h[2].final_read = true;
        assert_eq!(
            op_to_edn(&h[0]).to_string(),
            "{:type :invoke, :f :broadcast, :value 5, :time 0, :process 0, :index 0}"
        );
        assert!(op_to_edn(&h[2]).to_string().ends_with(":final? true}"));
        let txt = write_history_txt(&h);
        assert_eq!(
            txt.lines().nth(1),
            Some(":nemesis\t:info\t:start-partition\t:majority")
        );
        assert_eq!(write_history_edn(&h).lines().count(), 4);
        // Written directly, each op reads as its map prints.
        h[1].error = Some(Edn::Vector(vec![
            Edn::kw("timeout"),
            Edn::Str("a\"b\\".into()),
        ]));
        h[3].exception = Some("x\ty\n é".into());
        h[3].value = Edn::Vector(vec![
            Edn::Int(i64::MIN),
            Edn::Int(-7),
            Edn::Int(0),
            Edn::Float(2.0),
        ]);
        h[0].time = u64::from(u32::MAX) * 3;
        let by_map: String = h.iter().map(|op| format!("{}\n", op_to_edn(op))).collect();
        assert_eq!(write_history_edn(&h), by_map);
        // The nemesis info has no invocation; it pairs with nothing.
        assert_eq!(pairs(&h), vec![(0, Some(3)), (2, None)]);
    }

    #[test]
    fn ok_latencies_pair_each_completion_with_its_invocation() {
        let w = Process::Worker;
        let mut h = vec![
            op(0, w(0), OpType::Invoke, "broadcast", Edn::Int(1)),
            op(1, w(1), OpType::Invoke, "broadcast", Edn::Int(2)),
            op(4, w(1), OpType::Info, "broadcast", Edn::Int(2)),
            op(5, w(0), OpType::Ok, "broadcast", Edn::Int(1)),
            op(6, w(0), OpType::Invoke, "read", Edn::Nil),
            op(8, w(0), OpType::Ok, "read", Edn::Nil),
        ];
        h.iter_mut().for_each(|op| op.time = op.index * 1_000_000);
        // The broadcast took 5 ms, the read 2; the one that ended in info is left out.
        assert_eq!(
            ok_latencies(&h).to_string(),
            "{:broadcast {0.5 5.0, 0.99 5.0, 1 5.0, :count 1}, :read {0.5 2.0, 0.99 2.0, 1 2.0, :count 1}}"
        );
    }
}
