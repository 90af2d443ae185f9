//! What the nemesis cuts: the four partition shapes of Maelstrom's nemesis
//! (docs/maelstrom-compatibility.md 4), and the targets of our pause and link-loss faults.

use std::collections::BTreeSet;

use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::net::Grudge;

/// The partition specs Maelstrom picks from uniformly (docs/maelstrom-compatibility.md 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionSpec {
    One,
    MinorityThird,
    Majority,
    MajoritiesRing,
}

impl PartitionSpec {
    pub const ALL: [PartitionSpec; 4] = [
        PartitionSpec::One,
        PartitionSpec::MinorityThird,
        PartitionSpec::Majority,
        PartitionSpec::MajoritiesRing,
    ];

    /// The keyword Maelstrom records as the nemesis invocation value (`majority`, ...).
    pub fn keyword(self) -> &'static str {
        match self {
            PartitionSpec::One => "one",
            PartitionSpec::MinorityThird => "minority-third",
            PartitionSpec::Majority => "majority",
            PartitionSpec::MajoritiesRing => "majorities-ring",
        }
    }

    pub fn random(rng: &mut ChaCha8Rng) -> PartitionSpec {
        *Self::ALL.choose(rng).expect("non-empty")
    }
}

/// Builds the grudge for `spec` over `nodes`.
pub fn grudge(spec: PartitionSpec, nodes: &[String], rng: &mut ChaCha8Rng) -> Grudge {
    let n = nodes.len();
    let mut shuffled = nodes.to_vec();
    shuffled.shuffle(rng);
    match spec {
        PartitionSpec::One => {
            let one = nodes.choose(rng).expect("at least one node").clone();
            let rest = nodes.iter().filter(|x| **x != one).cloned().collect();
            complete(&[vec![one], rest])
        }
        PartitionSpec::MinorityThird => {
            let (a, b) = shuffled.split_at((n.saturating_sub(1)) / 3);
            complete(&[a.to_vec(), b.to_vec()])
        }
        PartitionSpec::Majority => {
            let (a, b) = shuffled.split_at(n / 2);
            complete(&[a.to_vec(), b.to_vec()])
        }
        PartitionSpec::MajoritiesRing if n <= 5 => ring_perfect(&shuffled),
        PartitionSpec::MajoritiesRing => ring_stochastic(nodes, rng),
    }
}

/// Every node drops messages from every node outside its own component. Empty components
/// (e.g. a third of fewer than 4 nodes) cut nothing.
fn complete(components: &[Vec<String>]) -> Grudge {
    let mut grudge = Grudge::new();
    if components.iter().filter(|c| !c.is_empty()).count() < 2 {
        return grudge;
    }
    for (i, component) in components.iter().enumerate() {
        let outside: BTreeSet<String> = components
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, c)| c.iter().cloned())
            .collect();
        for node in component {
            grudge.insert(node.clone(), outside.clone());
        }
    }
    grudge
}

/// n ≤ 5: for each window of m = floor(n/2)+1 consecutive ring positions, the window's
/// middle member drops messages from everyone outside the window.
fn ring_perfect(ring: &[String]) -> Grudge {
    let n = ring.len();
    let m = n / 2 + 1;
    let mut grudge = Grudge::new();
    for start in 0..n {
        let window: Vec<&String> = (0..m).map(|k| &ring[(start + k) % n]).collect();
        let middle = window[m / 2];
        let outside: BTreeSet<String> = ring
            .iter()
            .filter(|x| !window.contains(x))
            .cloned()
            .collect();
        if !outside.is_empty() {
            grudge.entry(middle.clone()).or_default().extend(outside);
        }
    }
    grudge
}

/// n > 5: link least-connected nodes to other least-connected nodes (random tie-breaks)
/// until every node has at least m links counting itself; each node drops from the rest.
fn ring_stochastic(nodes: &[String], rng: &mut ChaCha8Rng) -> Grudge {
    let n = nodes.len();
    let m = n / 2 + 1;
    let mut links: Vec<BTreeSet<usize>> = (0..n).map(|i| BTreeSet::from([i])).collect();
    while let Some(min) = links.iter().map(BTreeSet::len).min().filter(|c| *c < m) {
        let least: Vec<usize> = (0..n).filter(|i| links[*i].len() == min).collect();
        let a = *least.choose(rng).expect("non-empty");
        let others: Vec<usize> = (0..n).filter(|b| !links[a].contains(b)).collect();
        let fewest = others
            .iter()
            .map(|b| links[*b].len())
            .min()
            .expect("a is not linked to all");
        let candidates: Vec<usize> = others
            .into_iter()
            .filter(|b| links[*b].len() == fewest)
            .collect();
        let b = *candidates.choose(rng).expect("non-empty");
        links[a].insert(b);
        links[b].insert(a);
    }
    (0..n)
        .map(|i| {
            let unlinked = (0..n)
                .filter(|j| !links[i].contains(j))
                .map(|j| nodes[j].clone())
                .collect();
            (nodes[i].clone(), unlinked)
        })
        .filter(|(_, unlinked): &(String, BTreeSet<String>)| !unlinked.is_empty())
        .collect()
}

/// The components of the undirected "can talk both ways" graph a grudge leaves, for tests
/// and reports.
pub fn components(grudge: &Grudge, nodes: &[String]) -> Vec<Vec<String>> {
    let talks = |a: &String, b: &String| {
        !grudge.get(a).is_some_and(|s| s.contains(b))
            && !grudge.get(b).is_some_and(|s| s.contains(a))
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for start in nodes {
        if seen.contains(start) {
            continue;
        }
        let mut component = vec![start.clone()];
        seen.insert(start.clone());
        let mut i = 0;
        while i < component.len() {
            let here = component[i].clone();
            for other in nodes {
                if !seen.contains(other) && talks(&here, other) {
                    seen.insert(other.clone());
                    component.push(other.clone());
                }
            }
            i += 1;
        }
        component.sort();
        out.push(component);
    }
    out
}

/// Targets of our pause fault: one random node, or a random minority (floor((n-1)/2)
/// nodes, at least one), 50/50.
pub fn pause_targets(nodes: &[String], rng: &mut ChaCha8Rng) -> Vec<String> {
    let count = if rng.random_bool(0.5) {
        1
    } else {
        ((nodes.len().saturating_sub(1)) / 2).max(1)
    };
    let mut chosen: Vec<String> = nodes
        .choose_multiple(rng, count.min(nodes.len()))
        .cloned()
        .collect();
    chosen.sort();
    chosen
}

/// Our one-way link loss: a random node and a random non-empty set of the others; 50/50,
/// the set stops hearing the node, or the node stops hearing the set. The reverse direction
/// keeps working, which is what makes it harder than a partition: acks and gossip cross one
/// way only.
pub fn lost_links(nodes: &[String], rng: &mut ChaCha8Rng) -> Grudge {
    let Some(node) = nodes.choose(rng).cloned() else {
        return Grudge::new();
    };
    let others: Vec<String> = nodes.iter().filter(|n| **n != node).cloned().collect();
    if others.is_empty() {
        return Grudge::new();
    }
    let count = rng.random_range(1..=others.len());
    let set: BTreeSet<String> = others.choose_multiple(rng, count).cloned().collect();
    if rng.random_bool(0.5) {
        set.into_iter()
            .map(|receiver| (receiver, BTreeSet::from([node.clone()])))
            .collect()
    } else {
        Grudge::from([(node, set)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    fn sizes(spec: PartitionSpec, n: usize, seed: u64) -> Vec<usize> {
        let all = nodes(n);
        let g = grudge(spec, &all, &mut ChaCha8Rng::seed_from_u64(seed));
        let mut s: Vec<usize> = components(&g, &all).iter().map(Vec::len).collect();
        s.sort();
        s
    }

    /// Who each node hears from (itself included).
    fn hears(g: &Grudge, all: &[String]) -> Vec<usize> {
        all.iter()
            .map(|a| all.len() - g.get(a).map_or(0, BTreeSet::len))
            .collect()
    }

    #[test]
    fn component_sizes() {
        use PartitionSpec::*;
        for seed in 0..20 {
            assert_eq!(sizes(One, 1, seed), vec![1]);
            assert_eq!(sizes(One, 2, seed), vec![1, 1]);
            assert_eq!(sizes(One, 5, seed), vec![1, 4]);
            assert_eq!(sizes(One, 25, seed), vec![1, 24]);
            for n in [1, 2, 3] {
                assert_eq!(
                    sizes(MinorityThird, n, seed),
                    vec![n],
                    "no-op below 4 nodes"
                );
            }
            assert_eq!(sizes(MinorityThird, 5, seed), vec![1, 4]);
            assert_eq!(sizes(MinorityThird, 25, seed), vec![8, 17]);
            assert_eq!(sizes(Majority, 1, seed), vec![1]);
            assert_eq!(sizes(Majority, 2, seed), vec![1, 1]);
            assert_eq!(sizes(Majority, 3, seed), vec![1, 2]);
            assert_eq!(sizes(Majority, 5, seed), vec![2, 3]);
            assert_eq!(sizes(Majority, 25, seed), vec![12, 13]);
        }
    }

    #[test]
    fn majorities_ring_small() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for n in [1, 2] {
                assert!(grudge(PartitionSpec::MajoritiesRing, &nodes(n), &mut rng).is_empty());
            }
            // n = 3: asymmetric, each node drops from exactly one other.
            let all = nodes(3);
            let g = grudge(PartitionSpec::MajoritiesRing, &all, &mut rng);
            assert_eq!(hears(&g, &all), vec![2, 2, 2]);
            for (a, senders) in &g {
                for b in senders {
                    assert!(
                        !g.get(b).is_some_and(|s| s.contains(a)),
                        "one direction only"
                    );
                }
            }
            // n = 5: symmetric, each node cut from exactly two, and every set differs.
            let all = nodes(5);
            let g = grudge(PartitionSpec::MajoritiesRing, &all, &mut rng);
            assert_eq!(hears(&g, &all), vec![3; 5]);
            for (a, senders) in &g {
                for b in senders {
                    assert!(g[b].contains(a), "symmetric");
                }
            }
            let distinct: BTreeSet<_> = g.values().collect();
            assert_eq!(distinct.len(), 5);
        }
    }

    #[test]
    fn majorities_ring_large() {
        for seed in 0..20 {
            let all = nodes(25);
            let g = grudge(
                PartitionSpec::MajoritiesRing,
                &all,
                &mut ChaCha8Rng::seed_from_u64(seed),
            );
            assert!(
                hears(&g, &all).iter().all(|h| *h >= 13),
                "seed {seed}: {:?}",
                hears(&g, &all)
            );
            for (a, senders) in &g {
                for b in senders {
                    assert!(g[b].contains(a), "symmetric");
                }
            }
            assert!(
                g.values().collect::<BTreeSet<_>>().len() > 1,
                "not one shared majority"
            );
        }
    }

    #[test]
    fn same_seed_same_grudge() {
        let all = nodes(25);
        for spec in PartitionSpec::ALL {
            let a = grudge(spec, &all, &mut ChaCha8Rng::seed_from_u64(7));
            let b = grudge(spec, &all, &mut ChaCha8Rng::seed_from_u64(7));
            assert_eq!(a, b);
        }
    }

    #[test]
    fn pause_targets_are_a_node_or_a_minority() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut seen = BTreeSet::new();
        for _ in 0..100 {
            seen.insert(pause_targets(&nodes(5), &mut rng).len());
        }
        assert_eq!(seen, BTreeSet::from([1, 2]));
        assert_eq!(pause_targets(&nodes(1), &mut rng).len(), 1);
    }

    #[test]
    fn lost_links_cut_one_direction_around_one_node() {
        let all = nodes(5);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut inbound, mut outbound) = (0, 0);
        for _ in 0..200 {
            let lost = lost_links(&all, &mut rng);
            assert!(!lost.is_empty());
            let pairs: Vec<(&String, &String)> = lost
                .iter()
                .flat_map(|(r, ss)| ss.iter().map(move |s| (r, s)))
                .collect();
            for (r, s) in &pairs {
                assert_ne!(r, s);
                assert!(
                    !lost.get(*s).is_some_and(|back| back.contains(*r)),
                    "one way"
                );
            }
            if lost.len() == 1 && pairs.len() > 1 {
                inbound += 1;
            } else if pairs.len() > 1 {
                outbound += 1;
            }
        }
        assert!(inbound > 20 && outbound > 20, "{inbound} {outbound}");
        assert!(lost_links(&nodes(1), &mut rng).is_empty());
    }
}
