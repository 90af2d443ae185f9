//! Jepsen's `set-full` checker, non-linearizable mode
//! (docs/maelstrom-compatibility.md 6.3), used by broadcast (adds are `:broadcast` ops) and
//! g-set (`:add`). Includes the quirk that duplicates are never flagged.

use crate::checker::Quantiles;
use crate::edn::Edn;
use crate::history::{History, Op, OpType, pairs};
use crate::workload::Verb;

/// What the history says about one element.
#[derive(Default)]
struct Element {
    /// The op that first showed the element was in: its add's ok, or an ok read with it.
    known: Option<usize>,
    /// The latest-invoked ok reads that contained / missed it (invocation indices).
    last_present: Option<usize>,
    last_absent: Option<usize>,
}

/// Every element added so far, sorted (by `cmp`, as a set would: 1 and 1.0 are one), in
/// one vector: each read walks all of them, and a walk through a vector is quick.
#[derive(Default)]
struct Elements(Vec<(Edn, Element)>);

impl Elements {
    fn find(&self, value: &Edn) -> Result<usize, usize> {
        self.0.binary_search_by(|(v, _)| cmp(v, value))
    }

    fn get(&self, value: &Edn) -> Option<&Element> {
        self.find(value).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, value: &Edn) -> Option<&mut Element> {
        self.find(value).ok().map(|i| &mut self.0[i].1)
    }

    /// Adds `value` if new (most come in order: at the end).
    fn insert(&mut self, value: Edn) {
        if let Err(i) = self.find(&value) {
            self.0.insert(i, (value, Element::default()));
        }
    }
}

/// `Edn::cmp`, with integers (nearly every element) compared inline.
#[inline]
fn cmp(a: &Edn, b: &Edn) -> std::cmp::Ordering {
    match (a, b) {
        (Edn::Int(a), Edn::Int(b)) => a.cmp(b),
        _ => a.cmp(b),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Stable,
    Lost,
    NeverRead,
}

/// The checker's results map, and what `check_all` reports of it, typed.
pub struct SetFull {
    pub results: Edn,
    pub lost_count: usize,
    pub stable_latencies: Option<Quantiles>,
}

/// Checks the adds (`add` ops: `broadcast` or g-set's `add`) against the ok reads.
pub fn check(history: &History, add: Verb) -> SetFull {
    // By completion index, its invocation's.
    let mut invocation_of: Vec<Option<usize>> = vec![None; history.len()];
    for (i, c) in pairs(history) {
        if let Some(c) = c {
            invocation_of[c] = Some(i);
        }
    }
    let mut elements = Elements::default();
    let mut order: Vec<Edn> = Vec::new();
    for (index, op) in history.iter().enumerate() {
        if !op.is_client() {
            continue;
        }
        if op.f == add.name() {
            match op.kind {
                OpType::Invoke if elements.get(&op.value).is_none() => {
                    elements.insert(op.value.clone());
                    order.push(op.value.clone());
                }
                OpType::Ok => {
                    if let Some(e) = elements.get_mut(&op.value) {
                        e.known.get_or_insert(index);
                    }
                }
                _ => {}
            }
        } else if op.f == Verb::Read.name() && op.kind == OpType::Ok {
            let Some(inv) = invocation_of[index] else {
                continue;
            };
            let mut seen: Vec<&Edn> = match &op.value {
                Edn::Vector(items) | Edn::Set(items) => items.iter().collect(),
                _ => Vec::new(),
            };
            // (A node's reads come sorted, as it keeps them.)
            if !seen.is_sorted_by(|a, b| cmp(a, b).is_le()) {
                seen.sort_unstable();
            }
            // Both sorted: one walk through them, not a lookup per element.
            let mut seen = seen.into_iter().peekable();
            for (value, e) in elements.0.iter_mut() {
                // By `cmp`, as a set lookup would: 1 and 1.0 are the same element.
                while seen.next_if(|s| cmp(s, value).is_lt()).is_some() {}
                if seen.next_if(|s| cmp(s, value).is_eq()).is_some() {
                    e.known.get_or_insert(index);
                    e.last_present = Some(e.last_present.map_or(inv, |lp| lp.max(inv)));
                } else {
                    e.last_absent = Some(e.last_absent.map_or(inv, |la| la.max(inv)));
                }
            }
        }
    }

    let time = |i: usize| history[i].time as i64;
    let ms = |nanos: i64| nanos / 1_000_000;
    let mut stable = Vec::new();
    let mut lost = Vec::new();
    let mut never_read = Vec::new();
    // (latency, element): the records of only the worst are built, each holding two ops.
    let mut stale: Vec<(i64, &Edn)> = Vec::new();
    let mut stable_latencies = Vec::new();
    let mut lost_latencies = Vec::new();
    for value in &order {
        let e = elements.get(value).expect("every added element");
        let outcome = match (e.last_present, e.last_absent) {
            (Some(p), a) if a.is_none_or(|a| a < p) => Outcome::Stable,
            (p, Some(a)) if e.known.is_some_and(|k| k < a) && p.is_none_or(|p| p < a) => {
                Outcome::Lost
            }
            _ => Outcome::NeverRead,
        };
        match outcome {
            Outcome::Stable => {
                let known = e.known.expect("a read saw it");
                let latency = e
                    .last_absent
                    .map_or(0, |a| ms((time(a) + 1 - time(known)).max(0)));
                stable.push(value.clone());
                stable_latencies.push(latency);
                if latency > 0 {
                    stale.push((latency, value));
                }
            }
            Outcome::Lost => {
                let known = e.known.expect("lost elements are known");
                let latency = e
                    .last_present
                    .map_or(0, |p| ms((time(p) + 1 - time(known)).max(0)));
                lost.push(value.clone());
                lost_latencies.push(latency);
            }
            Outcome::NeverRead => never_read.push(value.clone()),
        }
    }
    lost.sort();
    never_read.sort();
    let stale_values = {
        let mut v: Vec<Edn> = stale.iter().map(|(_, value)| (*value).clone()).collect();
        v.sort();
        v
    };
    stale.sort_by_key(|s| std::cmp::Reverse(s.0));
    let valid = if !lost.is_empty() {
        Edn::Bool(false)
    } else if stable.is_empty() {
        Edn::kw("unknown")
    } else {
        Edn::Bool(true)
    };
    let lost_count = lost.len();
    let stable_latencies = Quantiles::of(&stable_latencies);
    let mut entries = vec![
        ("valid?", valid),
        ("attempt-count", Edn::Int(order.len() as i64)),
        ("stable-count", Edn::Int(stable.len() as i64)),
        ("lost-count", Edn::Int(lost.len() as i64)),
        ("lost", Edn::Vector(lost)),
        ("never-read-count", Edn::Int(never_read.len() as i64)),
        ("never-read", Edn::Vector(never_read)),
        ("stale-count", Edn::Int(stale_values.len() as i64)),
        ("stale", Edn::Vector(stale_values)),
        (
            "worst-stale",
            Edn::Vector(
                stale
                    .into_iter()
                    .take(8)
                    .map(|(latency, value)| {
                        let e = elements.get(value).expect("every added element");
                        record(history, value, e, "stable", latency)
                    })
                    .collect(),
            ),
        ),
    ];
    if let Some(q) = &stable_latencies {
        entries.push(("stable-latencies", q.to_edn()));
    }
    if let Some(q) = Quantiles::of(&lost_latencies) {
        entries.push(("lost-latencies", q.to_edn()));
    }
    // Jepsen 0.3.7 means to flag a value twice in one read, but its comparison is inverted:
    // nothing is ever flagged.
    entries.push(("duplicated-count", Edn::Int(0)));
    entries.push(("duplicated", Edn::Map(Vec::new())));
    SetFull {
        results: Edn::kw_map(entries),
        lost_count,
        stable_latencies,
    }
}

fn record(history: &[Op], value: &Edn, e: &Element, outcome: &str, latency: i64) -> Edn {
    let op = |i: Option<usize>| i.map_or(Edn::Nil, |i| crate::history::op_to_edn(&history[i]));
    Edn::kw_map([
        ("element", value.clone()),
        ("outcome", Edn::kw(outcome)),
        ("stable-latency", Edn::Int(latency)),
        ("known", op(e.known)),
        ("last-absent", op(e.last_absent)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_support::*;

    fn add(b: &mut Builder, p: u64, v: i64) {
        b.invoke(p, "broadcast", Edn::Int(v));
        b.ok(p, "broadcast", Edn::Int(v));
    }

    fn read(b: &mut Builder, p: u64, seen: &[i64]) {
        b.invoke(p, "read", Edn::Nil);
        b.ok(p, "read", ints(seen));
    }

    fn check(b: &Builder) -> Edn {
        super::check(&b.history, Verb::Broadcast).results
    }

    #[test]
    fn valid_when_every_value_is_read() {
        let mut b = Builder::default();
        add(&mut b, 0, 1);
        add(&mut b, 1, 2);
        read(&mut b, 2, &[1, 2]);
        let r = check(&b);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(true)));
        assert_eq!(r.get("stable-count"), Some(&Edn::Int(2)));
        assert_eq!(r.get("duplicated-count"), Some(&Edn::Int(0)));
    }

    #[test]
    fn reads_in_any_order_with_repeats() {
        let mut b = Builder::default();
        for v in [5, 1, 3, 2] {
            add(&mut b, 0, v);
        }
        read(&mut b, 1, &[3, 3, 9, 1, 5, 1]);
        let r = check(&b);
        assert_eq!(r.get("stable-count"), Some(&Edn::Int(3)));
        assert_eq!(r.get("lost").map(ToString::to_string), Some("[2]".into()));
        read(&mut b, 1, &[2, 5, 3]);
        let r = check(&b);
        assert_eq!(r.get("lost").map(ToString::to_string), Some("[1]".into()));
    }

    #[test]
    fn a_value_missing_from_a_later_read_is_lost() {
        let mut b = Builder::default();
        add(&mut b, 0, 1);
        add(&mut b, 0, 2);
        read(&mut b, 1, &[1, 2]);
        read(&mut b, 1, &[1]);
        let r = check(&b);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!(r.get("lost").map(ToString::to_string), Some("[2]".into()));
        assert!(r.get("lost-latencies").is_some());
    }

    #[test]
    fn stale_reads_do_not_invalidate() {
        let mut b = Builder::default();
        add(&mut b, 0, 1); // known at index 1, time 1 ms
        read(&mut b, 1, &[]); // invoked at 2 ms: misses it
        read(&mut b, 1, &[1]);
        let r = check(&b);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(true)));
        assert_eq!(r.get("stale-count"), Some(&Edn::Int(1)));
        assert_eq!(
            r.get_in(&["stable-latencies"]).map(ToString::to_string),
            Some("{0 1, 0.5 1, 0.95 1, 0.99 1, 1 1}".into())
        );
        let Some(Edn::Vector(worst)) = r.get("worst-stale") else {
            panic!()
        };
        assert_eq!(worst[0].get("element"), Some(&Edn::Int(1)));
    }

    #[test]
    fn never_read_and_unknown() {
        let mut b = Builder::default();
        b.invoke(0, "broadcast", Edn::Int(1));
        b.info(0, "broadcast", Edn::Int(1));
        let r = check(&b);
        assert_eq!(
            r.get("valid?"),
            Some(&Edn::kw("unknown")),
            "nothing was read"
        );
        assert_eq!(r.get("never-read-count"), Some(&Edn::Int(1)));
        // An unacknowledged value that never shows up is never-read, not lost.
        add(&mut b, 0, 2);
        read(&mut b, 1, &[2]);
        let r = check(&b);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(true)));
        assert_eq!(
            r.get("never-read").map(ToString::to_string),
            Some("[1]".into())
        );
    }

    #[test]
    fn a_read_concurrent_with_the_add_does_not_lose_it() {
        let mut b = Builder::default();
        b.invoke(1, "read", Edn::Nil);
        b.invoke(0, "broadcast", Edn::Int(1));
        b.ok(1, "read", ints(&[]));
        b.ok(0, "broadcast", Edn::Int(1));
        let r = check(&b);
        assert_eq!(r.get("lost-count"), Some(&Edn::Int(0)));
        assert_eq!(r.get("never-read-count"), Some(&Edn::Int(1)));
    }

    #[test]
    fn elements_of_any_json_value_are_compared_as_values() {
        let json = |text: &str| Edn::from_json(&serde_json::from_str(text).unwrap());
        let elements = [
            r#""x""#,
            r#"{"a": 1, "b": [1, 2]}"#,
            "[1, 2]",
            "1.5",
            "null",
            "1",
        ];
        let mut b = Builder::default();
        for (p, e) in elements.iter().enumerate() {
            b.invoke(p as u64, "broadcast", json(e));
            b.ok(p as u64, "broadcast", json(e));
        }
        // A read returns them in its own order and form: keys reordered, 1.0 for 1, the
        // string "1" too (another value).
        let read = json(r#"[{"b": [1, 2.0], "a": 1}, "1", 1.0, null, [1, 2], 1.5, "x"]"#);
        b.invoke(9, "read", Edn::Nil);
        b.ok(9, "read", read);
        let r = check(&b);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(true)));
        assert_eq!(r.get("stable-count"), Some(&Edn::Int(6)));
        // Then the object is missing from a read: lost, and only it.
        b.invoke(9, "read", Edn::Nil);
        b.ok(9, "read", json(r#"["x", [1, 2], 1.5, null, 1]"#));
        let r = check(&b);
        assert_eq!(r.get("valid?"), Some(&Edn::Bool(false)));
        assert_eq!(
            r.get("lost").map(ToString::to_string),
            Some(r#"[{"a" 1, "b" [1 2]}]"#.into())
        );
    }

    #[test]
    fn g_set_adds_are_add_ops() {
        let mut b = Builder::default();
        b.invoke(0, "add", Edn::Int(1));
        b.ok(0, "add", Edn::Int(1));
        read(&mut b, 1, &[1]);
        assert_eq!(
            super::check(&b.history, Verb::Add).results.get("valid?"),
            Some(&Edn::Bool(true))
        );
    }
}
