//! Maelstrom's counter checker (docs/maelstrom-compatibility.md 6.5): the final reads must
//! lie in the set of sums the adds allow: ok adds count for sure, indeterminate adds may or
//! may not have happened.

use crate::edn::Edn;
use crate::history::{History, OpType, pairs};

/// Inclusive integer ranges, merged when they touch.
fn merge(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

pub fn check(history: &History) -> Edn {
    let mut definite = 0i64;
    let mut acceptable = vec![(0i64, 0i64)];
    let mut indefinite = Vec::new();
    for (inv, completion) in pairs(history) {
        let op = &history[inv];
        if !op.is_client() || op.f != "add" {
            continue;
        }
        let Some(delta) = op.value.as_i64() else {
            continue;
        };
        match completion.map(|c| history[c].kind) {
            Some(OpType::Ok) => definite += delta,
            Some(OpType::Fail) => {}
            _ => indefinite.push(delta),
        }
    }
    for delta in indefinite {
        let shifted: Vec<(i64, i64)> = acceptable
            .iter()
            .map(|(lo, hi)| (lo + delta, hi + delta))
            .collect();
        acceptable.extend(shifted);
        acceptable = merge(acceptable);
    }
    let acceptable: Vec<(i64, i64)> = acceptable
        .into_iter()
        .map(|(lo, hi)| (lo + definite, hi + definite))
        .collect();
    let mut final_reads = Vec::new();
    let mut errors = Vec::new();
    for op in history
        .iter()
        .filter(|op| op.is_client() && op.f == "read" && op.kind == OpType::Ok && op.final_read)
    {
        final_reads.push(op.value.clone());
        let ok = op
            .value
            .as_i64()
            .is_some_and(|v| acceptable.iter().any(|(lo, hi)| (*lo..=*hi).contains(&v)));
        if !ok {
            errors.push(crate::history::op_to_edn(op));
        }
    }
    Edn::kw_map([
        ("valid?", Edn::Bool(errors.is_empty())),
        (
            "errors",
            if errors.is_empty() {
                Edn::Nil
            } else {
                Edn::Vector(errors)
            },
        ),
        ("final-reads", Edn::Vector(final_reads)),
        (
            "acceptable",
            Edn::Vector(
                acceptable
                    .iter()
                    .map(|(lo, hi)| Edn::Vector(vec![Edn::Int(*lo), Edn::Int(*hi)]))
                    .collect(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;

    #[test]
    fn the_spec_example() {
        let mut b = Builder::default();
        b.invoke(0, "add", Edn::Int(10));
        b.ok(0, "add", Edn::Int(10));
        for (p, d) in [(1, 5), (2, -1), (3, -1)] {
            b.invoke(p, "add", Edn::Int(d));
            b.info(p, "add", Edn::Int(d));
        }
        b.invoke(4, "add", Edn::Int(100));
        b.fail(4, "add", Edn::Int(100));
        b.invoke(5, "read", Edn::Nil);
        b.ok(5, "read", Edn::Int(9)).final_read = true;
        b.invoke(5, "read", Edn::Nil);
        b.ok(5, "read", Edn::Int(12)).final_read = true;
        b.invoke(6, "read", Edn::Nil);
        b.ok(6, "read", Edn::Int(12)); // not final: not checked
        let r = check(&b.history);
        assert_eq!(
            r.get("acceptable").map(ToString::to_string),
            Some("[[8 10] [13 15]]".into())
        );
        assert_eq!(
            r.get("valid?"),
            Some(&Edn::Bool(false)),
            "12 is not acceptable"
        );
        assert_eq!(
            r.get("final-reads").map(ToString::to_string),
            Some("[9 12]".into())
        );
    }

    #[test]
    fn no_final_reads_is_valid() {
        assert_eq!(check(&Vec::new()).get("valid?"), Some(&Edn::Bool(true)));
    }
}
