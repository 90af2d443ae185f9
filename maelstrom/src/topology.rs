//! Broadcast topologies sent in `topology` during setup (spec 5.5).

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
        let _ = s;
        todo!()
    }
}

/// The map node → neighbours, in node-list order. `line` with fewer than 2 nodes is empty.
pub fn topology(kind: Topology, nodes: &[String]) -> Vec<(String, Vec<String>)> {
    let _ = (kind, nodes);
    todo!()
}
