//! Broadcast topologies sent in `topology` during setup (docs/maelstrom-compatibility.md 5.5).

use std::str::FromStr;

/// `--topology`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    Grid,
    Line,
    /// b-ary heap layout; `tree` is `tree2`.
    Tree(usize),
    Total,
}

impl FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grid" => Ok(Topology::Grid),
            "line" => Ok(Topology::Line),
            "tree" | "tree2" => Ok(Topology::Tree(2)),
            "tree3" => Ok(Topology::Tree(3)),
            "tree4" => Ok(Topology::Tree(4)),
            "total" => Ok(Topology::Total),
            other => Err(format!(
                "unknown topology {other:?} (grid, line, tree, tree2, tree3, tree4, total)"
            )),
        }
    }
}

/// The map node → neighbours, in node-list order. `line` with fewer than 2 nodes is empty.
pub fn topology(kind: Topology, nodes: &[String]) -> Vec<(String, Vec<String>)> {
    let n = nodes.len();
    let pick = |indices: Vec<usize>| {
        indices
            .into_iter()
            .map(|i| nodes[i].clone())
            .collect::<Vec<_>>()
    };
    match kind {
        Topology::Grid => {
            let side = (1..=n).find(|s| s * s >= n).unwrap_or(1);
            (0..n)
                .map(|k| {
                    let (row, col) = (k / side, k % side);
                    let mut near = Vec::new();
                    if k + side < n {
                        near.push(k + side);
                    }
                    if row > 0 {
                        near.push(k - side);
                    }
                    if col + 1 < side && k + 1 < n {
                        near.push(k + 1);
                    }
                    if col > 0 {
                        near.push(k - 1);
                    }
                    (nodes[k].clone(), pick(near))
                })
                .collect()
        }
        Topology::Line if n < 2 => Vec::new(),
        Topology::Line => (0..n)
            .map(|k| {
                let near = match k {
                    0 => vec![1],
                    k if k == n - 1 => vec![k - 1],
                    k => vec![k - 1, k + 1],
                };
                (nodes[k].clone(), pick(near))
            })
            .collect(),
        Topology::Tree(b) => (0..n)
            .map(|k| {
                let mut near = Vec::new();
                if k > 0 {
                    near.push((k - 1) / b);
                }
                near.extend((b * k + 1..=b * k + b).filter(|c| *c < n));
                (nodes[k].clone(), pick(near))
            })
            .collect(),
        Topology::Total => (0..n)
            .map(|k| (nodes[k].clone(), pick((0..n).filter(|o| *o != k).collect())))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(from: usize, n: usize) -> Vec<String> {
        (from..from + n).map(|i| format!("n{i}")).collect()
    }

    fn render(t: &[(String, Vec<String>)]) -> String {
        t.iter()
            .map(|(k, v)| format!("{k}:[{}]", v.join(",")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn grid_of_five_matches_the_spec() {
        assert_eq!(
            render(&topology(Topology::Grid, &names(1, 5))),
            "n1:[n4,n2] n2:[n5,n3,n1] n3:[n2] n4:[n1,n5] n5:[n2,n4]"
        );
    }

    #[test]
    fn grid_of_twenty_five() {
        let t = topology(Topology::Grid, &names(0, 25));
        assert_eq!(render(&t[..1]), "n0:[n5,n1]");
        assert_eq!(render(&t[6..7]), "n6:[n11,n1,n7,n5]");
        assert_eq!(render(&t[24..]), "n24:[n19,n23]");
        assert!(t.iter().all(|(_, v)| (2..=4).contains(&v.len())));
    }

    #[test]
    fn line_tree_total() {
        assert!(topology(Topology::Line, &names(0, 1)).is_empty());
        assert_eq!(
            render(&topology(Topology::Line, &names(0, 3))),
            "n0:[n1] n1:[n0,n2] n2:[n1]"
        );
        assert_eq!(
            render(&topology(Topology::Tree(2), &names(0, 5))),
            "n0:[n1,n2] n1:[n0,n3,n4] n2:[n0] n3:[n1] n4:[n1]"
        );
        assert_eq!(render(&topology(Topology::Tree(3), &names(0, 1))), "n0:[]");
        assert_eq!(
            render(&topology(Topology::Total, &names(0, 3))),
            "n0:[n1,n2] n1:[n0,n2] n2:[n0,n1]"
        );
        assert_eq!("tree".parse::<Topology>(), Ok(Topology::Tree(2)));
        assert!("ring".parse::<Topology>().is_err());
    }
}
