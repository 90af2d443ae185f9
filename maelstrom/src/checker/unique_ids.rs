//! Jepsen's unique-ids checker (docs/maelstrom-compatibility.md 6.2): no id returned twice
//! among ok generates.

use std::collections::BTreeMap;

use crate::checker::unknown;
use crate::edn::Edn;
use crate::history::{History, OpType};

pub fn check(history: &History) -> Edn {
    let generates = history
        .iter()
        .filter(|op| op.is_client() && op.f == "generate");
    let attempted = generates
        .clone()
        .filter(|op| op.kind == OpType::Invoke)
        .count();
    let ids: Vec<&Edn> = generates
        .filter(|op| op.kind == OpType::Ok)
        .map(|op| &op.value)
        .collect();
    // Ids compare by their printed EDN; counting needs no order.
    let mut counts: BTreeMap<String, (usize, &Edn)> = BTreeMap::new();
    for id in &ids {
        counts.entry(id.to_string()).or_insert((0, id)).0 += 1;
    }
    let mut duplicated: Vec<(&Edn, usize)> = counts
        .values()
        .filter(|(n, _)| *n > 1)
        .map(|(n, id)| (*id, *n))
        .collect();
    duplicated.sort_by_key(|d| std::cmp::Reverse(d.1));
    let range = match range(&ids) {
        Ok(range) => range,
        Err(e) => return unknown(e),
    };
    Edn::kw_map([
        ("valid?", Edn::Bool(duplicated.is_empty())),
        ("attempted-count", Edn::Int(attempted as i64)),
        ("acknowledged-count", Edn::Int(ids.len() as i64)),
        ("duplicated-count", Edn::Int(duplicated.len() as i64)),
        (
            "duplicated",
            Edn::Map(
                duplicated
                    .into_iter()
                    .take(48)
                    .map(|(id, n)| (id.clone(), Edn::Int(n as i64)))
                    .collect(),
            ),
        ),
        ("range", range),
    ])
}

/// `[min max]` of the ids; they must be mutually comparable (all numbers or all strings).
fn range(ids: &[&Edn]) -> Result<Edn, String> {
    if ids.is_empty() {
        return Ok(Edn::Vector(vec![Edn::Nil, Edn::Nil]));
    }
    if let Some(numbers) = ids
        .iter()
        .map(|id| id.as_f64())
        .collect::<Option<Vec<f64>>>()
    {
        let (lo, hi) = numbers.iter().enumerate().fold((0, 0), |(lo, hi), (i, x)| {
            (
                if *x < numbers[lo] { i } else { lo },
                if *x > numbers[hi] { i } else { hi },
            )
        });
        return Ok(Edn::Vector(vec![ids[lo].clone(), ids[hi].clone()]));
    }
    let strings: Option<Vec<&String>> = ids
        .iter()
        .map(|id| if let Edn::Str(s) = id { Some(s) } else { None })
        .collect();
    match strings {
        Some(s) => {
            let lo = s.iter().min().expect("non-empty");
            let hi = s.iter().max().expect("non-empty");
            Ok(Edn::Vector(vec![
                Edn::Str((*lo).clone()),
                Edn::Str((*hi).clone()),
            ]))
        }
        None => Err("ids of different types cannot be compared".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;

    #[test]
    fn duplicates_are_invalid() {
        let mut b = Builder::default();
        for (p, id) in [(0, "n0-1"), (1, "n1-1"), (0, "n0-1")] {
            b.invoke(p, "generate", Edn::Nil);
            b.ok(p, "generate", Edn::Str(id.into()));
        }
        b.invoke(2, "generate", Edn::Nil);
        b.info(2, "generate", Edn::Nil);
        let r = check(&b.history);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!(r.get("attempted-count"), Some(&Edn::Int(4)));
        assert_eq!(r.get("acknowledged-count"), Some(&Edn::Int(3)));
        assert_eq!(
            r.get("duplicated").map(ToString::to_string),
            Some("{\"n0-1\" 2}".into())
        );
        assert_eq!(
            r.get("range").map(ToString::to_string),
            Some("[\"n0-1\" \"n1-1\"]".into())
        );
    }

    #[test]
    fn mixed_types_are_unknown() {
        let mut b = Builder::default();
        b.invoke(0, "generate", Edn::Nil);
        b.ok(0, "generate", Edn::Int(1));
        b.invoke(0, "generate", Edn::Nil);
        b.ok(0, "generate", Edn::Str("x".into()));
        assert_eq!(check(&b.history).get("valid?"), Some(&Edn::kw("unknown")));
    }
}
