//! Checkers (docs/maelstrom-compatibility.md 6): each takes the history and returns its
//! results map; `check_all` combines them into the `results.edn` map with worst-of validity
//! (6.7), and the figures a report wants from it, typed.

pub mod counter;
pub mod detector;
pub mod echo;
pub mod set_full;
pub mod stats;
pub mod unique_ids;

use crate::edn::Edn;
use crate::history::{History, Op, OpType};
use crate::net::{Counts, NetStats};
use crate::workload::Workload;

/// `--availability`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Availability {
    Total,
    Fraction(f64),
}

/// Validity as Jepsen combines it: false beats :unknown beats true.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Validity {
    False,
    Unknown,
    True,
}

impl Validity {
    pub fn of(results: &Edn) -> Validity {
        match results.get("valid?") {
            Some(Edn::Bool(true)) => Validity::True,
            Some(Edn::Bool(false)) => Validity::False,
            _ => Validity::Unknown,
        }
    }

    pub fn to_edn(self) -> Edn {
        match self {
            Validity::True => Edn::Bool(true),
            Validity::False => Edn::Bool(false),
            Validity::Unknown => Edn::kw("unknown"),
        }
    }

    /// `true`, `false` or `"unknown"`.
    pub fn to_json(self) -> serde_json::Value {
        self.to_edn().to_json()
    }
}

/// The results of a test: the `results.edn` map, and the figures reports and tests look
/// for in it, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Results {
    /// The whole map, as `results.edn` holds it.
    pub edn: Edn,
    /// `:valid?`: the worst of every checker's.
    pub valid: Validity,
    /// `:workload :lost-count` (set-full workloads): acknowledged values later missing.
    pub lost_count: Option<usize>,
    /// `:net :servers :msgs-per-op` (none without client ops).
    pub msgs_per_op: Option<f64>,
    /// `:workload :stable-latencies` in ms (set-full workloads, once a value is stable).
    pub stable_latency_ms: Option<Quantiles>,
}

/// Quantiles at 0, 0.5, 0.95, 0.99 and 1: sorted values, index min(n-1, floor(n·p)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantiles {
    pub min: i64,
    pub median: i64,
    pub p95: i64,
    pub p99: i64,
    pub max: i64,
}

impl Quantiles {
    /// `None` for no values.
    pub fn of(values: &[i64]) -> Option<Quantiles> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let at = |p: f64| sorted[((n as f64 * p).floor() as usize).min(n - 1)];
        (n > 0).then(|| Quantiles {
            min: at(0.0),
            median: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        })
    }

    /// `{0 min, 0.5 median, 0.95 p95, 0.99 p99, 1 max}`, as Jepsen writes quantiles.
    pub fn to_edn(&self) -> Edn {
        Edn::Map(vec![
            (Edn::Int(0), Edn::Int(self.min)),
            (Edn::Float(0.5), Edn::Int(self.median)),
            (Edn::Float(0.95), Edn::Int(self.p95)),
            (Edn::Float(0.99), Edn::Int(self.p99)),
            (Edn::Int(1), Edn::Int(self.max)),
        ])
    }
}

/// A checker that could not run (e.g. incomparable values) is `:unknown`, not a crash.
pub fn unknown(error: impl Into<String>) -> Edn {
    Edn::kw_map([
        ("valid?", Edn::kw("unknown")),
        ("error", Edn::Str(error.into())),
    ])
}

/// The whole results map: `:perf :timeline :exceptions :stats :availability :net
/// :workload :valid?`.
pub fn check_all(
    workload: Workload,
    history: &History,
    net: &NetStats,
    availability: Option<Availability>,
) -> Results {
    let client: Vec<&Op> = history.iter().filter(|op| op.is_client()).collect();
    let op_count = client.iter().filter(|op| op.kind == OpType::Invoke).count();
    let (mut lost_count, mut stable_latency_ms) = (None, None);
    let workload_results = match workload {
        Workload::Echo => echo::check(history),
        Workload::UniqueIds => unique_ids::check(history),
        Workload::Broadcast | Workload::GSet => {
            let set = set_full::check(history, workload.verb());
            lost_count = Some(set.lost_count);
            stable_latency_ms = set.stable_latencies;
            set.results
        }
        Workload::GCounter | Workload::PnCounter => counter::check(history),
    };
    let parts = vec![
        ("perf", perf()),
        ("timeline", Edn::kw_map([("valid?", Edn::Bool(true))])),
        ("exceptions", exceptions(&client)),
        ("stats", stats::check(&client)),
        ("availability", availability_check(&client, availability)),
        ("net", net_check(net, op_count)),
        ("workload", workload_results),
    ];
    let valid = parts
        .iter()
        .map(|(_, r)| Validity::of(r))
        .min()
        .unwrap_or(Validity::True);
    let mut entries = parts;
    entries.push(("valid?", valid.to_edn()));
    Results {
        edn: Edn::kw_map(entries),
        valid,
        lost_count,
        msgs_per_op: msgs_per_op(&net.servers, op_count),
        stable_latency_ms,
    }
}

fn perf() -> Edn {
    let ok = || Edn::kw_map([("valid?", Edn::Bool(true))]);
    Edn::kw_map([
        ("latency-graph", ok()),
        ("rate-graph", ok()),
        ("valid?", Edn::Bool(true)),
    ])
}

/// Indeterminate ops caused by exceptions, grouped by the exception's class (its first
/// word).
fn exceptions(client: &[&Op]) -> Edn {
    let mut groups: Vec<(String, usize, &Op)> = Vec::new();
    for op in client.iter().filter(|op| op.exception.is_some()) {
        let text = op.exception.as_deref().unwrap_or_default();
        let class = text.split(':').next().unwrap_or(text).trim().to_string();
        match groups.iter_mut().find(|(c, _, _)| *c == class) {
            Some(group) => group.1 += 1,
            None => groups.push((class, 1, op)),
        }
    }
    if groups.is_empty() {
        return Edn::kw_map([("valid?", Edn::Bool(true))]);
    }
    let list = groups
        .into_iter()
        .map(|(class, count, op)| {
            Edn::kw_map([
                ("class", Edn::Str(class)),
                ("count", Edn::Int(count as i64)),
                ("example", crate::history::op_to_edn(op)),
            ])
        })
        .collect();
    Edn::kw_map([
        ("valid?", Edn::Bool(true)),
        ("exceptions", Edn::Vector(list)),
    ])
}

/// ok-fraction = #ok / #invoke over client ops (1 with no invocations).
fn availability_check(client: &[&Op], availability: Option<Availability>) -> Edn {
    let invokes = client.iter().filter(|op| op.kind == OpType::Invoke).count();
    let oks = client.iter().filter(|op| op.kind == OpType::Ok).count();
    let fraction = if invokes == 0 {
        1.0
    } else {
        oks as f64 / invokes as f64
    };
    let valid = match availability {
        None => true,
        Some(Availability::Total) => fraction == 1.0,
        Some(Availability::Fraction(a)) => fraction >= a,
    };
    Edn::kw_map([
        ("valid?", Edn::Bool(valid)),
        ("ok-fraction", Edn::Float(fraction)),
    ])
}

/// The `:net` map; msgs-per-op is a 32-bit float, omitted when there were no ops.
pub fn net_check(net: &NetStats, op_count: usize) -> Edn {
    let group = |c: &Counts, per_op: bool| {
        let mut entries = vec![
            ("send-count", Edn::Int(c.send_count as i64)),
            ("recv-count", Edn::Int(c.recv_count as i64)),
            ("msg-count", Edn::Int(c.msg_count as i64)),
        ];
        if let Some(ratio) = msgs_per_op(c, op_count).filter(|_| per_op) {
            entries.push(("msgs-per-op", Edn::Float(ratio)));
        }
        Edn::kw_map(entries)
    };
    Edn::kw_map([
        ("all", group(&net.all, true)),
        ("clients", group(&net.clients, false)),
        ("servers", group(&net.servers, true)),
        ("valid?", Edn::Bool(true)),
    ])
}

/// Messages per client op, a 32-bit float as Maelstrom computes it; none without ops.
fn msgs_per_op(counts: &Counts, op_count: usize) -> Option<f64> {
    (op_count > 0).then(|| f64::from(counts.msg_count as f32 / op_count as f32))
}

#[cfg(test)]
pub(crate) mod test_support {
    use crate::edn::Edn;
    use crate::history::{History, Op, OpType, Process};

    /// Builds histories tersely: `h.invoke(p, "f", v)` / `h.complete(p, Ok, "f", v)` at
    /// times 1 ms apart.
    #[derive(Default)]
    pub struct Builder {
        pub history: History,
    }

    impl Builder {
        pub fn op(&mut self, process: u64, kind: OpType, f: &str, value: Edn) -> &mut Op {
            let index = self.history.len() as u64;
            self.history.push(Op {
                index,
                time: index * 1_000_000,
                process: Process::Worker(process),
                kind,
                f: f.into(),
                value,
                error: None,
                final_read: false,
                exception: None,
            });
            self.history.last_mut().expect("pushed")
        }

        pub fn invoke(&mut self, process: u64, f: &str, value: Edn) -> &mut Op {
            self.op(process, OpType::Invoke, f, value)
        }

        pub fn ok(&mut self, process: u64, f: &str, value: Edn) -> &mut Op {
            self.op(process, OpType::Ok, f, value)
        }

        pub fn info(&mut self, process: u64, f: &str, value: Edn) -> &mut Op {
            self.op(process, OpType::Info, f, value)
        }

        pub fn fail(&mut self, process: u64, f: &str, value: Edn) -> &mut Op {
            self.op(process, OpType::Fail, f, value)
        }
    }

    pub fn ints(v: &[i64]) -> Edn {
        Edn::Vector(v.iter().map(|i| Edn::Int(*i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn worst_of_validity() {
        let mut b = Builder::default();
        b.invoke(0, "broadcast", Edn::Int(1));
        b.ok(0, "broadcast", Edn::Int(1));
        b.invoke(0, "read", Edn::Nil);
        b.ok(0, "read", ints(&[]));
        let net = NetStats::default();
        // The value is lost: the workload is invalid, so the whole test is.
        let r = check_all(Workload::Broadcast, &b.history, &net, None);
        assert_eq!(r.edn.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!((r.valid, r.lost_count), (Validity::False, Some(1)));
        // No read at all: the workload is unknown, and stats fail (no ok read): false wins.
        let mut b = Builder::default();
        b.invoke(0, "broadcast", Edn::Int(1));
        b.ok(0, "broadcast", Edn::Int(1));
        b.invoke(0, "read", Edn::Nil);
        b.fail(0, "read", Edn::Nil);
        let r = check_all(Workload::Broadcast, &b.history, &net, None);
        assert_eq!(
            r.edn.get_in(&["workload", "valid?"]),
            Some(&Edn::kw("unknown"))
        );
        assert_eq!(r.edn.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!(r.valid, Validity::False);
        assert_eq!(Validity::False.min(Validity::Unknown), Validity::False);
        assert_eq!(Validity::Unknown.min(Validity::True), Validity::Unknown);
        let keys: Vec<String> = match &r.edn {
            Edn::Map(e) => e.iter().map(|(k, _)| k.to_string()).collect(),
            _ => unreachable!(),
        };
        assert_eq!(
            keys,
            [
                ":perf",
                ":timeline",
                ":exceptions",
                ":stats",
                ":availability",
                ":net",
                ":workload",
                ":valid?"
            ]
        );
    }

    #[test]
    fn net_msgs_per_op() {
        let net = NetStats {
            servers: Counts {
                send_count: 10,
                recv_count: 8,
                msg_count: 10,
            },
            all: Counts {
                send_count: 14,
                recv_count: 12,
                msg_count: 14,
            },
            ..NetStats::default()
        };
        let r = net_check(&net, 3);
        assert_eq!(
            r.get_in(&["servers", "msgs-per-op"]),
            Some(&Edn::Float(f64::from(10f32 / 3f32)))
        );
        assert_eq!(r.get_in(&["clients", "msgs-per-op"]), None);
        assert_eq!(net_check(&net, 0).get_in(&["all", "msgs-per-op"]), None);
    }

    #[test]
    fn availability_fractions() {
        let mut b = Builder::default();
        b.invoke(0, "read", Edn::Nil);
        b.ok(0, "read", ints(&[]));
        b.invoke(0, "read", Edn::Nil);
        b.fail(0, "read", Edn::Nil);
        let client: Vec<&Op> = b.history.iter().collect();
        assert_eq!(
            availability_check(&client, None).get("valid?"),
            Some(&Edn::Bool(true))
        );
        assert_eq!(
            availability_check(&client, Some(Availability::Total)).get("valid?"),
            Some(&Edn::Bool(false))
        );
        let half = availability_check(&client, Some(Availability::Fraction(0.5)));
        assert_eq!(
            (half.get("valid?"), half.get("ok-fraction")),
            (Some(&Edn::Bool(true)), Some(&Edn::Float(0.5)))
        );
    }

    #[test]
    fn quantile_points() {
        let q = Quantiles::of(&[5, 1, 3, 2, 4]).unwrap();
        assert_eq!(q.to_edn().to_string(), "{0 1, 0.5 3, 0.95 5, 0.99 5, 1 5}");
        assert_eq!((q.median, q.max), (3, 5));
        assert_eq!(Quantiles::of(&[]), None);
    }

    #[test]
    fn typed_results_agree_with_the_map() {
        let mut b = Builder::default();
        for v in 0..4 {
            b.invoke(0, "broadcast", Edn::Int(v));
            b.ok(0, "broadcast", Edn::Int(v));
        }
        b.invoke(1, "read", Edn::Nil);
        b.ok(1, "read", ints(&[0, 1, 2, 3]));
        let net = NetStats {
            servers: Counts {
                send_count: 7,
                recv_count: 7,
                msg_count: 7,
            },
            ..NetStats::default()
        };
        let r = check_all(Workload::Broadcast, &b.history, &net, None);
        assert_eq!(r.valid, Validity::of(&r.edn));
        assert_eq!(r.lost_count, Some(0));
        assert_eq!(
            r.msgs_per_op,
            r.edn
                .get_in(&["net", "servers", "msgs-per-op"])
                .and_then(Edn::as_f64)
        );
        assert_eq!(
            r.stable_latency_ms.map(|q| q.to_edn()).as_ref(),
            r.edn.get_in(&["workload", "stable-latencies"])
        );
        let counter = check_all(Workload::PnCounter, &b.history, &net, None);
        assert_eq!(
            (counter.lost_count, counter.stable_latency_ms),
            (None, None)
        );
    }
}
