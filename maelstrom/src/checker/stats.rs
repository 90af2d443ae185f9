//! Jepsen's stats checker over client completions: counts per outcome and per `:f`; valid
//! when every `:f` has at least one ok.

use crate::edn::Edn;
use crate::history::{Op, OpType};

pub fn check(client: &[&Op]) -> Edn {
    let completions: Vec<&&Op> = client
        .iter()
        .filter(|op| op.kind != OpType::Invoke)
        .collect();
    let mut fs: Vec<&str> = Vec::new();
    for op in &completions {
        if !fs.contains(&op.f.as_str()) {
            fs.push(&op.f);
        }
    }
    fs.sort();
    let by_f: Vec<(Edn, Edn)> = fs
        .iter()
        .map(|f| {
            let ops: Vec<&&Op> = completions
                .iter()
                .copied()
                .filter(|op| op.f == *f)
                .collect();
            (Edn::kw(f), counts(&ops))
        })
        .collect();
    let valid = by_f
        .iter()
        .all(|(_, c)| c.get("ok-count").and_then(Edn::as_i64).unwrap_or(0) > 0);
    let mut entries = vec![(Edn::kw("valid?"), Edn::Bool(valid))];
    if let Edn::Map(c) = counts(&completions) {
        entries.extend(c.into_iter().filter(|(k, _)| *k != Edn::kw("valid?")));
    }
    entries.push((Edn::kw("by-f"), Edn::Map(by_f)));
    Edn::Map(entries)
}

fn counts(ops: &[&&Op]) -> Edn {
    let n = |kind: OpType| Edn::Int(ops.iter().filter(|op| op.kind == kind).count() as i64);
    let ok = ops.iter().filter(|op| op.kind == OpType::Ok).count();
    Edn::kw_map([
        ("valid?", Edn::Bool(ok > 0)),
        ("count", Edn::Int(ops.len() as i64)),
        ("ok-count", n(OpType::Ok)),
        ("fail-count", n(OpType::Fail)),
        ("info-count", n(OpType::Info)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;

    #[test]
    fn every_f_needs_an_ok() {
        let mut b = Builder::default();
        b.invoke(0, "broadcast", Edn::Int(1));
        b.ok(0, "broadcast", Edn::Int(1));
        b.invoke(1, "read", Edn::Nil);
        b.fail(1, "read", Edn::Nil);
        let client: Vec<&Op> = b.history.iter().collect();
        let r = check(&client);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!(r.get("count"), Some(&Edn::Int(2)));
        assert_eq!(
            r.get_in(&["by-f", "read", "fail-count"]),
            Some(&Edn::Int(1))
        );
        b.invoke(1, "read", Edn::Nil);
        b.ok(1, "read", ints(&[1]));
        let client: Vec<&Op> = b.history.iter().collect();
        assert_eq!(check(&client).get("valid?"), Some(&Edn::Bool(true)));
    }
}
