//! Checkers (spec 6): each takes the history and returns its results map; `check_all`
//! combines them into the `results.edn` map with worst-of validity (6.7).

pub mod counter;
pub mod echo;
pub mod set_full;
pub mod stats;
pub mod unique_ids;

use crate::edn::Edn;
use crate::history::{History, Op, OpType};
use crate::net::{Counts, NetStats};

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
    workload: &str,
    history: &History,
    net: &NetStats,
    availability: Option<Availability>,
) -> Edn {
    let client: Vec<&Op> = history.iter().filter(|op| op.is_client()).collect();
    let workload_results = match workload {
        "echo" => echo::check(history),
        "unique-ids" => unique_ids::check(history),
        "broadcast" => set_full::check(history, "broadcast"),
        "g-set" => set_full::check(history, "add"),
        "g-counter" | "pn-counter" => counter::check(history),
        other => unknown(format!("no checker for workload {other}")),
    };
    let parts = vec![
        ("perf", perf()),
        ("timeline", Edn::kw_map([("valid?", Edn::Bool(true))])),
        ("exceptions", exceptions(&client)),
        ("stats", stats::check(&client)),
        ("availability", availability_check(&client, availability)),
        (
            "net",
            net_check(
                net,
                client.iter().filter(|op| op.kind == OpType::Invoke).count(),
            ),
        ),
        ("workload", workload_results),
    ];
    let valid = parts
        .iter()
        .map(|(_, r)| Validity::of(r))
        .min()
        .unwrap_or(Validity::True);
    let mut entries = parts;
    entries.push(("valid?", valid.to_edn()));
    Edn::kw_map(entries)
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
        if per_op && op_count > 0 {
            let ratio = c.msg_count as f32 / op_count as f32;
            entries.push(("msgs-per-op", Edn::Float(f64::from(ratio))));
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

/// Quantiles at 0, 0.5, 0.95, 0.99 and 1: sorted values, index min(n-1, floor(n·p)).
pub fn quantiles(values: &[i64]) -> Edn {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let at = |p: f64| sorted[((n as f64 * p).floor() as usize).min(n - 1)];
    Edn::Map(vec![
        (Edn::Int(0), Edn::Int(at(0.0))),
        (Edn::Float(0.5), Edn::Int(at(0.5))),
        (Edn::Float(0.95), Edn::Int(at(0.95))),
        (Edn::Float(0.99), Edn::Int(at(0.99))),
        (Edn::Int(1), Edn::Int(at(1.0))),
    ])
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
        let r = check_all("broadcast", &b.history, &net, None);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        // No read at all: the workload is unknown, and stats fail (no ok read): false wins.
        let mut b = Builder::default();
        b.invoke(0, "broadcast", Edn::Int(1));
        b.ok(0, "broadcast", Edn::Int(1));
        b.invoke(0, "read", Edn::Nil);
        b.fail(0, "read", Edn::Nil);
        let r = check_all("broadcast", &b.history, &net, None);
        assert_eq!(r.get_in(&["workload", "valid?"]), Some(&Edn::kw("unknown")));
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!(Validity::False.min(Validity::Unknown), Validity::False);
        assert_eq!(Validity::Unknown.min(Validity::True), Validity::Unknown);
        let keys: Vec<String> = match &r {
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
        let q = quantiles(&[5, 1, 3, 2, 4]);
        assert_eq!(q.to_string(), "{0 1, 0.5 3, 0.95 5, 0.99 5, 1 5}");
    }
}
