//! The figures a user looks for in a broadcast run, read from a results map (ours or real
//! Maelstrom's `results.edn`): validity, servers msgs-per-op, stable latency median and max.

use std::fmt;

use crate::edn::Edn;

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub valid: Edn,
    pub msgs_per_op: Option<f64>,
    pub stable_median_ms: Option<f64>,
    pub stable_max_ms: Option<f64>,
    pub lost_count: Option<i64>,
    /// Mean CPU seconds per node, from our runner's `:runner` report.
    pub cpu_s_per_node: Option<f64>,
}

/// The header of `Summary::row`.
pub const TABLE_HEADER: &str =
    "configuration                      | valid?   | msgs-per-op | median ms | max ms | cpu-s/node";

/// Finds a quantile in a map keyed by numbers (`0.5`, `1`).
fn quantile(map: Option<&Edn>, point: f64) -> Option<f64> {
    let Some(Edn::Map(entries)) = map else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| k.as_f64() == Some(point))
        .and_then(|(_, v)| v.as_f64())
}

pub fn summarize(results: &Edn) -> Summary {
    let latencies = results.get_in(&["workload", "stable-latencies"]);
    Summary {
        valid: results.get("valid?").cloned().unwrap_or(Edn::Nil),
        msgs_per_op: results
            .get_in(&["net", "servers", "msgs-per-op"])
            .and_then(Edn::as_f64),
        stable_median_ms: quantile(latencies, 0.5),
        stable_max_ms: quantile(latencies, 1.0),
        lost_count: results
            .get_in(&["workload", "lost-count"])
            .and_then(Edn::as_i64),
        cpu_s_per_node: match results.get_in(&["runner", "nodes"]) {
            Some(Edn::Map(nodes)) if !nodes.is_empty() => {
                let cpu: Vec<f64> = nodes
                    .iter()
                    .filter_map(|(_, n)| n.get("cpu-s").and_then(Edn::as_f64))
                    .collect();
                (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64)
            }
            _ => None,
        },
    }
}

impl Summary {
    /// One row of a benchmark table (see `TABLE_HEADER`).
    pub fn row(&self, label: &str) -> String {
        let num =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        format!(
            "{label:<34} | {:<8} | {:>11} | {:>9} | {:>6} | {:>10}",
            self.valid.to_string(),
            num(self.msgs_per_op, 2),
            num(self.stable_median_ms, 0),
            num(self.stable_max_ms, 0),
            num(self.cpu_s_per_node, 2)
        )
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} ms"));
        write!(f, "valid? {}", self.valid)?;
        if let Some(m) = self.msgs_per_op {
            write!(f, " | msgs-per-op {m:.2}")?;
        }
        if self.stable_median_ms.is_some() {
            write!(
                f,
                " | stable latency median {}, max {}",
                ms(self.stable_median_ms),
                ms(self.stable_max_ms)
            )?;
        }
        if let Some(lost) = self.lost_count {
            write!(f, " | lost {lost}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::parse;

    #[test]
    fn reads_real_maelstrom_results() {
        // Shaped like real Maelstrom 0.2 broadcast results
        // (docs/maelstrom-compatibility.md 3.5, 6.3).
        let text = r#"{:perf {:latency-graph {:valid? true}, :rate-graph {:valid? true}, :valid? true},
 :net {:all {:send-count 5432, :recv-count 5432, :msg-count 5432, :msgs-per-op 2.6831},
       :clients {:send-count 4090, :recv-count 4090, :msg-count 4090},
       :servers {:send-count 1342, :recv-count 1342, :msg-count 1342, :msgs-per-op 0.6629},
       :valid? true},
 :workload {:worst-stale ({:element 3, :outcome :stable, :stable-latency 412,
                           :known #jepsen.history.Op{:index 12, :time 11, :type :ok, :process 3, :f :broadcast, :value 3},
                           :last-absent #jepsen.history.Op{:index 15, :time 13, :type :invoke, :process 1, :f :read, :value nil}}),
            :duplicated-count 0, :valid? true, :lost-count 0, :lost (), :stable-count 1000,
            :stable-latencies {0 0, 0.5 312, 0.95 401, 0.99 430, 1 455}, :attempt-count 1000},
 :valid? true}"#;
        let s = summarize(&parse(text).unwrap());
        assert_eq!(s.valid, Edn::Bool(true));
        assert_eq!(s.msgs_per_op, Some(0.6629));
        assert_eq!(
            (s.stable_median_ms, s.stable_max_ms),
            (Some(312.0), Some(455.0))
        );
        assert_eq!(
            s.to_string(),
            "valid? true | msgs-per-op 0.66 | stable latency median 312 ms, max 455 ms | lost 0"
        );
    }

    #[test]
    fn workloads_without_latencies() {
        let s = summarize(&parse("{:valid? :unknown, :workload {:valid? :unknown}}").unwrap());
        assert_eq!(s.to_string(), "valid? :unknown");
    }
}
