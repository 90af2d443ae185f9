//! The overlay's shape: a forest over the nodes' ranking (`node_ids` order), laid out as a
//! heap with `fanout` children per node (node i's place above it is (i - 1) / fanout). A
//! node's parent is that place's node unless it is ruled out (suspected or dead, or never
//! heard from with an exchange failed); then one of the lost relay's siblings (the orphans
//! dealt out among them), or the nearest ancestor not ruled out; when every ancestor is
//! ruled out, the first node of the ranking that is not, and when that is itself, it is a
//! root. A relay standing in for a lost root hands its own children to its siblings.
//! Parents rank before their children, so there are no cycles whatever each node's view.
//! Pure functions of the ranking and the detector's view: `Overlay` holds what was chosen.

use super::links::Links;
use crate::membership::Detector;

pub(super) struct Tree {
    me: String,
    /// Every node, this one included, in `node_ids` order.
    ranking: Vec<String>,
    /// The place of each (`Detector::place`): the detector is asked about them by place,
    /// many times a tick.
    places: Vec<usize>,
    /// Our place in `ranking`.
    rank: usize,
    fanout: usize,
}

impl Tree {
    pub fn new(me: &str, nodes: &[String], fanout: usize, detector: &Detector) -> Self {
        Tree {
            me: me.to_string(),
            ranking: nodes.to_vec(),
            places: (nodes.iter())
                .map(|n| detector.place(n).expect("every node has a place"))
                .collect(),
            rank: nodes.iter().position(|n| n == me).unwrap_or(0),
            fanout: fanout.max(1),
        }
    }

    pub fn ranking(&self) -> &[String] {
        &self.ranking
    }

    /// The node at place `i` of the ranking.
    pub fn name(&self, i: usize) -> &str {
        &self.ranking[i]
    }

    /// The detector's place (`Detector::place`) of the node at place `i` of the ranking.
    pub fn place(&self, i: usize) -> usize {
        self.places[i]
    }

    /// Of the parents `held` before a change, those now ruled out, each once.
    pub fn lost_among(&self, held: [Option<usize>; 2], d: &Detector) -> Vec<String> {
        let [parent, by_view] = held;
        let by_view = by_view.filter(|&v| Some(v) != parent);
        parent
            .into_iter()
            .chain(by_view)
            .filter(|&i| d.ruled_out_at(self.places[i]))
            .map(|i| self.ranking[i].clone())
            .collect()
    }

    /// Our parent as the detector's view alone decides it (as every node computes ours).
    pub fn choose(&self, d: &Detector) -> Option<usize> {
        self.parent_of(self.rank, |j| d.ruled_out_at(self.places[j]))
    }

    /// Our parent, passing over our place's parent in the heap while it is `unproven`:
    /// never heard from, with an exchange failed, it is not known to be up at all (e.g.
    /// it crashed as the run began), so our values go where they would go once we
    /// suspected it, while the detector gathers its three strikes (with no round trip
    /// measured yet, over a second). We go back once it answers. When it is the only
    /// candidate, the detector decides.
    pub fn choose_proven(&self, d: &Detector, unproven: Option<usize>) -> Option<usize> {
        let Some(unproven) = unproven else {
            return self.choose(d);
        };
        let proven = self.parent_of(self.rank, |j| {
            d.ruled_out_at(self.places[j]) || j == unproven
        });
        proven.or_else(|| self.choose(d))
    }

    /// Our place's parent in the heap, if it is a relay below the root, we have never
    /// heard from it and an exchange with it failed. (Not the root: its loss concerns
    /// every node, and the sweep that follows its suspicion finds the next root and
    /// whoever else is gone; passing it over first made pause detection slower,
    /// docs/performance.md.)
    pub fn unproven(&self, d: &Detector, links: &Links) -> Option<usize> {
        let place = self.rank.checked_sub(1)? / self.fanout;
        if place == 0 {
            return None;
        }
        let n = &self.ranking[place];
        (d.strikes(n) > 0 && links.get(n).last_heard.is_none()).then_some(place)
    }

    /// The parent of the node at place `i` of the ranking, as this node's detector sees
    /// it: its place's parent in the heap if not ruled out (and not standing in for a lost
    /// root, see below); else, when that is a relay below the root, one of the relay's
    /// siblings not ruled out, the orphans dealt out
    /// among them in turn, so no one node takes all of them; else the nearest ancestor not
    /// ruled out, or else the first node before it that is not, or else none (a root).
    /// Every one of these ranks before `i`: views may differ, the forest has no cycles.
    /// (`out` is asked by place in the ranking.)
    pub fn parent_of(&self, i: usize, out: impl Fn(usize) -> bool) -> Option<usize> {
        let ruled_out = |j: usize| j != self.rank && out(j);
        if i == 0 {
            return None;
        }
        let parent = (i - 1) / self.fanout;
        // A relay standing in for a lost root (every node ranked before it ruled out)
        // takes the root's other children: its own go to its siblings, so that no node
        // serves twice `fanout` children.
        let stands_in = parent > 0 && !ruled_out(parent) && (0..parent).all(ruled_out);
        if !ruled_out(parent) && !stands_in {
            return Some(parent);
        }
        if parent > 0 {
            // The siblings rank before every child of `parent`, hence before `i`.
            let first = (parent - 1) / self.fanout * self.fanout + 1;
            let last = (first + self.fanout).min(self.ranking.len());
            let siblings: Vec<usize> = (first..last)
                .filter(|&j| j != parent && !ruled_out(j))
                .collect();
            if !siblings.is_empty() {
                let turn = i - (parent * self.fanout + 1);
                return Some(siblings[turn % siblings.len()]);
            }
        }
        if stands_in {
            return Some(parent);
        }
        let mut ancestor = parent;
        while ancestor > 0 {
            ancestor = (ancestor - 1) / self.fanout;
            if !ruled_out(ancestor) {
                return Some(ancestor);
            }
        }
        (0..i).find(|&j| !ruled_out(j))
    }

    /// Our places' ancestors in the heap, nearest first (asked on every detector tick:
    /// nothing is allocated).
    fn ancestors(&self) -> impl Iterator<Item = usize> + '_ {
        std::iter::successors(Some(self.rank), |&i| (i > 0).then(|| (i - 1) / self.fanout)).skip(1)
    }

    /// The nodes we would rather have as parent than the one we have, ruled out by our own
    /// suspicion while the cluster does not hold them dead (they refuted, or never lost
    /// enough votes), nearest first: our ancestors in the heap, then the ranking from the
    /// first node. After a partition heals, such suspicions are stale, and would keep us
    /// under a parent of the partition's making, and values a hop longer, until our
    /// low-rate probes happened on the right one. (A node that was cut off alone holds
    /// everyone suspected and no one dead, the crashed among them.)
    /// (By place, `Detector::place`; `parent` by place in the ranking.)
    pub fn preferred_parents(&self, d: &Detector, parent: Option<usize>) -> Vec<usize> {
        let mut preferred: Vec<usize> = Vec::new();
        for i in self.ancestors().chain(0..self.rank) {
            if Some(i) == parent {
                break;
            }
            let n = self.places[i];
            if d.suspects_at(n) && !d.is_dead_at(n) && !preferred.contains(&n) {
                preferred.push(n);
            }
        }
        preferred
    }

    /// The nodes to probe at once once our parent `lost` is ruled out (`Probing::sweep`):
    /// our next parent and our ancestors still in the running, nearest first; when there are none, the first
    /// `fanout` nodes ranked after `lost` that are not ruled out, us aside (in a star,
    /// everyone). Those ranked before us may be our next parent; those after us are probed
    /// too because `lost` was the one watching them: when a paused minority holds the root
    /// and some leaves, every live node gathers its own evidence on those leaves at once,
    /// instead of waiting to hear someone doubt them (pause detection under exponential
    /// latency: median 3.10 s before, 2.88 s after, docs/failure-detector.md).
    pub fn sweep_targets(&self, lost: &str, d: &Detector) -> Vec<String> {
        let ruled_out = |n: &String| d.ruled_out(n);
        let mut live: Vec<String> = self
            .ancestors()
            .map(|i| &self.ranking[i])
            .filter(|n| !ruled_out(n))
            .cloned()
            .collect();
        // Our next parent may be a sibling of `lost` rather than an ancestor.
        let place = |n: &str| self.ranking.iter().position(|r| r == n);
        let heap_parent = |i: usize| (i > 0).then(|| (i - 1) / self.fanout);
        if let Some(next) = self.choose(d)
            && let Some(lost) = place(lost)
            && lost > 0
            && heap_parent(self.rank) == Some(lost)
            && heap_parent(next) == heap_parent(lost)
        {
            live.insert(0, self.ranking[next].clone());
        }
        if !live.is_empty() {
            return live;
        }
        self.ranking
            .iter()
            .skip_while(|n| *n != lost)
            .skip(1)
            .filter(|n| **n != self.me)
            .filter(|n| !ruled_out(n))
            .take(self.fanout)
            .cloned()
            .collect()
    }

    /// The peers whose parent, as we see it, is us, in peer order; for a root also those
    /// with no parent (ranked before it, all ruled out): in a star, a root watches everyone.
    pub fn wards(&self, d: &Detector) -> Vec<usize> {
        let root = self.choose(d).is_none();
        let mut wards: Vec<usize> = (0..self.ranking.len())
            .filter(|&i| i != self.rank)
            .filter(
                |&i| match self.parent_of(i, |j| d.ruled_out_at(self.places[j])) {
                    Some(parent) => parent == self.rank,
                    None => root,
                },
            )
            .map(|i| self.places[i])
            .collect();
        wards.sort();
        wards
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::Tree;
    use crate::config::Config;
    use crate::membership::Detector;

    /// Each node's parent in a 100-node ranking, as `me` sees it with `out` suspected.
    fn parents(me: &str, out: &[&str]) -> Vec<Option<usize>> {
        let nodes: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
        let mut detector = Detector::new(me, &nodes);
        for peer in out {
            for _ in 0..crate::membership::STRIKES_TO_SUSPECT {
                let _ = detector.strike(peer);
            }
            assert!(detector.suspects(peer), "{peer}");
        }
        let tree = Tree::new(me, &nodes, Config::default().fanout, &detector);
        (0..nodes.len())
            .map(|i| tree.parent_of(i, |j| detector.ruled_out_at(tree.place(j))))
            .collect()
    }

    /// Every parent ranks before its child: whatever each node's view, no cycles.
    fn assert_no_cycles(parents: &[Option<usize>]) {
        assert!(
            (parents.iter().enumerate()).all(|(i, p)| p.is_none_or(|p| p < i)),
            "{parents:?}"
        );
    }

    #[test]
    fn a_lost_relays_children_are_dealt_out_among_its_siblings() {
        // n1 serves n25..n48; ruled out, its 24 children go to its 23 live siblings
        // n2..n24, one or two each, instead of all to the root.
        let with = parents("n0", &["n1"]);
        let without = parents("n0", &[]);
        let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
        for (i, p) in with.iter().enumerate().take(49).skip(25) {
            let p = p.unwrap();
            assert!((2..=24).contains(&p), "n{i} went to n{p}");
            *taken.entry(p).or_default() += 1;
        }
        assert_eq!(taken.len(), 23, "{taken:?}");
        assert!(taken.values().all(|&n| n <= 2), "{taken:?}");
        // Nobody else moves; every parent ranks before its child: no cycles.
        for i in (1..100).filter(|i| !(25..=48).contains(i)) {
            assert_eq!(with[i], without[i], "n{i}");
        }
        assert_no_cycles(&with);
    }

    #[test]
    fn a_relay_standing_in_for_the_root_hands_its_own_children_to_its_siblings() {
        // n0 ruled out: n1 is the root, the other relays n2..n24 its children, and n1's
        // own children n25..n48 go to n2..n24, so that n1 serves 23 nodes, not 47.
        let with = parents("n5", &["n0"]);
        let children = |p: usize| with.iter().filter(|q| **q == Some(p)).count();
        assert_eq!(with[1], None);
        assert!((2..=24).all(|i| with[i] == Some(1)));
        assert!((25..=48).all(|i| with[i].is_some_and(|p| (2..=24).contains(&p))));
        assert_eq!(children(1), 23);
        assert!((2..=24).all(|p| children(p) <= 26), "{with:?}");
        assert_no_cycles(&with);
    }

    #[test]
    fn with_every_sibling_gone_the_children_go_to_the_nearest_live_ancestor() {
        let siblings: Vec<String> = (1..=24).map(|i| format!("n{i}")).collect();
        let out: Vec<&str> = siblings.iter().map(String::as_str).collect();
        let with = parents("n99", &out);
        assert!((25..=48).all(|i| with[i] == Some(0)));
        // The root's children themselves have no siblings to go to: the next node in
        // the ranking takes the root's place, as in a star.
        let with = parents("n99", &["n0"]);
        assert_eq!(with[1], None);
        assert!((2..=24).all(|i| with[i] == Some(1)));
    }
}
