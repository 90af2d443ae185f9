//! The replicated data: join-semilattices whose merge is idempotent, commutative and
//! associative, so duplicated, reordered or re-sent gossip is harmless.
//!
//! Besides `merge`, dissemination needs `forget`: a peer's pending delta shrinks by what
//! the peer is known to have, so only the part it lacks is sent again.

use std::collections::{BTreeMap, BTreeSet};

use crate::wire::Element;

/// A state-based CRDT usable as its own delta.
pub trait Crdt: Default + Clone {
    /// Merges `other` into `self` and returns the part of `other` that was new here.
    fn merge(&mut self, other: &Self) -> Self;
    /// Merges `other` into `self`, not computing what was new: a pending delta takes in
    /// every new value for every peer, so this is the hot path.
    fn absorb(&mut self, other: &Self) {
        self.merge(other);
    }
    /// Removes from `self` everything `covered` already includes.
    fn forget(&mut self, covered: &Self);
    fn is_empty(&self) -> bool;
}

/// A grow-only set: broadcast values and g-set elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GSet(pub BTreeSet<Element>);

impl Crdt for GSet {
    fn merge(&mut self, other: &Self) -> Self {
        GSet(
            other
                .0
                .iter()
                .filter(|v| self.0.insert((*v).clone()))
                .cloned()
                .collect(),
        )
    }

    fn absorb(&mut self, other: &Self) {
        self.0.extend(other.0.iter().cloned());
    }

    fn forget(&mut self, covered: &Self) {
        if covered.0.len() > self.0.len() {
            self.0.retain(|v| !covered.0.contains(v));
        } else {
            for v in &covered.0 {
                self.0.remove(v);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A PN-counter: per node, the totals of its increments and decrements, merged by max.
/// Only a node itself raises its own totals, so max is the latest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PnCounter(pub BTreeMap<String, [u64; 2]>);

impl PnCounter {
    /// Adds `delta` to `node`'s totals. A total saturates rather than wraps: a wrapped one
    /// would be smaller, and merge-by-max would then keep the old total on every peer while
    /// this node reads another.
    pub fn add(&mut self, node: &str, delta: i64) -> PnCounter {
        let totals = self.0.entry(node.to_string()).or_default();
        let side = usize::from(delta < 0);
        totals[side] = totals[side].saturating_add(delta.unsigned_abs());
        PnCounter(BTreeMap::from([(node.to_string(), *totals)]))
    }

    pub fn value(&self) -> i64 {
        self.0
            .values()
            .map(|[inc, dec]| *inc as i128 - *dec as i128)
            .sum::<i128>()
            .clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

impl Crdt for PnCounter {
    fn merge(&mut self, other: &Self) -> Self {
        let mut new = BTreeMap::new();
        for (node, theirs) in &other.0 {
            let mine = self.0.entry(node.clone()).or_default();
            if theirs[0] > mine[0] || theirs[1] > mine[1] {
                mine[0] = mine[0].max(theirs[0]);
                mine[1] = mine[1].max(theirs[1]);
                new.insert(node.clone(), *mine);
            }
        }
        PnCounter(new)
    }

    fn forget(&mut self, covered: &Self) {
        self.0.retain(|node, mine| {
            covered
                .0
                .get(node)
                .is_none_or(|theirs| theirs[0] < mine[0] || theirs[1] < mine[1])
        });
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Everything a node replicates: the set and the counter side by side (a product of
/// lattices is a lattice). Which one a client sees depends on the workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Data {
    pub set: GSet,
    pub counter: PnCounter,
}

impl Crdt for Data {
    fn merge(&mut self, other: &Self) -> Self {
        Data {
            set: self.set.merge(&other.set),
            counter: self.counter.merge(&other.counter),
        }
    }

    fn absorb(&mut self, other: &Self) {
        self.set.absorb(&other.set);
        self.counter.absorb(&other.counter);
    }

    fn forget(&mut self, covered: &Self) {
        self.set.forget(&covered.set);
        self.counter.forget(&covered.counter);
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.counter.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: &[i64]) -> GSet {
        GSet(v.iter().map(|n| Element::Int(*n)).collect())
    }

    #[test]
    fn gset_merge_returns_only_the_new_part() {
        let mut a = set(&[1, 2]);
        assert_eq!(a.merge(&set(&[2, 3])), set(&[3]));
        assert_eq!(a, set(&[1, 2, 3]));
        let mut pending = set(&[1, 2, 3]);
        pending.forget(&set(&[2, 9]));
        assert_eq!(pending, set(&[1, 3]));
    }

    #[test]
    fn counter_merges_by_max_and_forgets_dominated_entries() {
        let mut a = PnCounter::default();
        a.add("n0", 5);
        a.add("n0", -2);
        a.add("n1", 1);
        assert_eq!(a.value(), 4);
        let mut b = PnCounter::default();
        b.add("n0", 3);
        assert_eq!(
            a.merge(&b),
            PnCounter::default(),
            "an older total is not news"
        );
        let mut pending = a.clone();
        pending.forget(&PnCounter(BTreeMap::from([("n0".to_string(), [5, 2])])));
        assert_eq!(pending.0.keys().collect::<Vec<_>>(), vec!["n1"]);
    }

    #[test]
    fn totals_saturate_instead_of_wrapping() {
        // Found by tests/properties: two adds of i64::MIN wrapped n1's decrements to 0.
        let mut a = PnCounter::default();
        a.add("n1", i64::MIN);
        let second = a.add("n1", i64::MIN);
        assert_eq!(second.0["n1"], [0, u64::MAX]);
        a.add("n1", i64::MAX);
        a.add("n1", i64::MAX);
        a.add("n1", i64::MAX);
        assert_eq!(a.0["n1"], [u64::MAX, u64::MAX]);
        assert_eq!(a.value(), 0);
    }

    fn counter_strategy() -> impl Strategy<Value = PnCounter> {
        proptest::collection::btree_map("n[0-3]", (0u64..20, 0u64..20), 0..4)
            .prop_map(|m| PnCounter(m.into_iter().map(|(k, (i, d))| (k, [i, d])).collect()))
    }

    proptest! {
        #[test]
        fn merge_is_a_join(a in counter_strategy(), b in counter_strategy(), c in counter_strategy(),
                           x in proptest::collection::btree_set(0i64..50, 0..10),
                           y in proptest::collection::btree_set(0i64..50, 0..10)) {
            let da = Data { set: GSet(x.into_iter().map(Element::Int).collect()), counter: a };
            let db = Data { set: GSet(y.into_iter().map(Element::Int).collect()), counter: b };
            let mut ab = da.clone(); ab.merge(&db);
            let mut ba = db.clone(); ba.merge(&da);
            prop_assert_eq!(&ab, &ba);
            let mut aa = ab.clone(); let new = aa.merge(&ab);
            prop_assert!(new.is_empty());
            prop_assert_eq!(&aa, &ab);
            let mut absorbed = da.clone(); absorbed.absorb(&db);
            prop_assert_eq!(&absorbed, &ab);
            // Forgetting what a peer has leaves exactly what merging it would add there.
            let mut peer = Data { set: GSet::default(), counter: c };
            let mut pending = ab.clone();
            pending.forget(&peer);
            let mut via_pending = peer.clone(); via_pending.merge(&pending);
            peer.merge(&ab);
            prop_assert_eq!(via_pending, peer);
        }
    }
}
