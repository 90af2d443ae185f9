//! The cluster's nodes and their places. The detector names a node by its place (its index
//! in name order) wherever it asks about it often: lookups by name cost a quarter of a
//! simulated partition.

pub(super) struct Roster {
    pub me: String,
    /// This node's place.
    pub me_place: usize,
    /// Every node of the cluster, this one included, in `node_ids` order.
    pub nodes: Vec<String>,
    /// The same in name order, this node always among them: the order of the records and
    /// of their votes.
    pub by_name: Vec<String>,
}

impl Roster {
    pub fn new(me: &str, nodes: &[String]) -> Self {
        let mut by_name = nodes.to_vec();
        by_name.push(me.to_string()); // (a node always has a place, if only its own)
        by_name.sort();
        by_name.dedup();
        let me_place = by_name
            .binary_search_by(|n| n.as_str().cmp(me))
            .expect("placed");
        Roster {
            me: me.to_string(),
            me_place,
            nodes: nodes.to_vec(),
            by_name,
        }
    }

    /// How many places there are.
    pub fn places(&self) -> usize {
        self.by_name.len()
    }

    /// How many peers this node judges.
    pub fn peers(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Votes needed to declare a node dead: ceil((N-1)/2), at least 1.
    pub fn death_threshold(&self) -> usize {
        self.peers().div_ceil(2).max(1)
    }

    pub fn place(&self, node: &str) -> Option<usize> {
        self.by_name.binary_search_by(|n| n.as_str().cmp(node)).ok()
    }

    pub fn name(&self, place: usize) -> &str {
        &self.by_name[place]
    }
}

/// Moves `place` forward in `by_name` (name order) to `name`, or to where it would be;
/// whether it is there.
pub(super) fn seek(by_name: &[String], place: &mut usize, name: &str) -> bool {
    *place += by_name[*place..].partition_point(|n| n.as_str() < name);
    by_name.get(*place).is_some_and(|n| n == name)
}
