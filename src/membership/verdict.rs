//! What the records say of each peer: its status, which nodes' doubts of it are worth
//! probing it for, and whether a node other than this one doubts it (what confirms our
//! own suspicion). Derived from the records alone, in one pass per change of them.

use super::ballots::{Ballots, standing};
use super::roster::Roster;

/// How a node sees a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Alive,
    /// Some nodes suspect it, fewer than it takes to be dead.
    Suspected,
    Dead,
}

impl Status {
    /// The status that `votes` current suspicions give, when `threshold` kill.
    fn judge(votes: usize, threshold: usize) -> Status {
        if votes == 0 {
            Status::Alive
        } else if votes >= threshold {
            Status::Dead
        } else {
            Status::Suspected
        }
    }
}

/// Everything by place: the failure detector's tick asks about many peers many times.
pub(super) struct Verdict {
    /// Every node's status (this node's: alive).
    status: Vec<Status>,
    /// Peers someone doubts or suspects, in order, each with the nodes that doubt or
    /// suspect it, of those whose doubts count (`judge`).
    doubters: Vec<(usize, Vec<usize>)>,
    /// Peers some node other than this one doubts or suspects.
    doubted_by_others: Vec<bool>,
}

impl Verdict {
    pub fn new(roster: &Roster) -> Self {
        Verdict {
            status: vec![Status::Alive; roster.places()],
            doubters: Vec::new(),
            doubted_by_others: vec![false; roster.places()],
        }
    }

    pub fn status_at(&self, peer: usize) -> Status {
        self.status[peer]
    }

    pub fn doubters_at(&self, peer: usize) -> &[usize] {
        match self.doubters.binary_search_by_key(&peer, |d| d.0) {
            Ok(i) => &self.doubters[i].1,
            Err(_) => &[],
        }
    }

    pub fn doubted_places(&self) -> impl Iterator<Item = usize> + '_ {
        self.doubters.iter().map(|d| d.0)
    }

    pub fn doubted_by_others(&self, peer: usize) -> bool {
        self.doubted_by_others[peer]
    }

    /// Finds which peers a node other than this one doubts or suspects.
    pub fn find_others(&mut self, roster: &Roster, ballots: &Ballots) {
        let others = &mut self.doubted_by_others;
        others.fill(false);
        for (author, placed) in ballots.placed() {
            if author == roster.me_place {
                continue;
            }
            for votes in [&placed.suspects, &placed.doubts] {
                for peer in standing(votes, author, ballots.incs()) {
                    others[peer] = true;
                }
            }
        }
    }

    /// Re-derives every status and the doubters (in one pass: under a partition every
    /// record names half the cluster). Returns the statuses that changed: (place, from,
    /// to), in place order.
    pub fn judge(&mut self, roster: &Roster, ballots: &Ballots) -> Vec<(usize, Status, Status)> {
        let places = roster.places();
        let mut votes = vec![0usize; places];
        let mut doubters: Vec<Vec<usize>> = vec![Vec::new(); places];
        let mut doubts: Vec<usize> = Vec::new();
        let peers = roster.peers();
        let incs = ballots.incs();
        let threshold = roster.death_threshold();
        for (author, placed) in ballots.placed() {
            for peer in standing(&placed.suspects, author, incs) {
                votes[peer] += 1;
            }
        }
        // Nodes some other node's record names, at any incarnation (see `ring` below),
        // save by a dead node's refuted doubts: its record froze when it stopped, and the
        // peers it doubted may have answered everyone since. (Counting those, a node that
        // stopped again soon after a pause went on naming the root it had doubted: the
        // root, back and naming half of its peers, looked cut off in a ring, and its next
        // doubts sent no one probing; docs/failure-detector.md, Rules.)
        let mut named_by_others = vec![false; places];
        for (author, placed) in ballots.placed() {
            let dead = votes[author] >= threshold;
            for &(peer, inc) in placed.suspects.iter().chain(&placed.doubts) {
                named_by_others[peer] |= peer != author && !(dead && inc < incs[peer]);
            }
        }
        for (author, placed) in ballots.placed() {
            doubts.clear();
            doubts.extend(standing(&placed.suspects, author, incs));
            // Each author counts once per peer, whether it doubts or suspects it.
            doubts.extend(standing(&placed.doubts, author, incs));
            doubts.sort_unstable();
            doubts.dedup();
            // Refuted doubts count here too: the author takes a doubt back only when it
            // hears from the peer, and until it has heard from most of them it is most
            // likely still cut off, or just back and not yet in touch. (Counting only the
            // standing ones, the doubts of a node back from the minority side of a
            // partition began to count as the peers it doubted refuted them one by one,
            // and every node probed the rest, which were about to refute too: `simulate
            // --nemesis partition --seed 17`.)
            let named = placed.named;
            // Half (rounded down), while others name it in turn: a majorities-ring
            // partition, where every node is cut off from half of its peers and reaches
            // the other half. The peers it doubts answer the half that asks, so asking
            // them is wasted (`simulate --nemesis partition --seed 13`, a ring: 4.47
            // against 4.01 msgs-per-op). Named by no one, it is on the larger side of a
            // split in two, or among the live half of a cluster whose other half stopped:
            // its doubts are news.
            let ring = named == peers / 2 && named_by_others[author];
            if named > 1 && (named * 2 > peers || ring) {
                continue; // most likely cut off itself: see `Detector::doubted`
            }
            for &peer in &doubts {
                doubters[peer].push(author);
            }
        }
        self.doubters = (doubters.into_iter().enumerate())
            .filter(|(_, authors)| !authors.is_empty())
            .collect();
        let mut changes = Vec::new();
        for (place, status) in self.status.iter_mut().enumerate() {
            if place == roster.me_place {
                continue;
            }
            let to = Status::judge(votes[place], threshold);
            if *status != to {
                changes.push((place, std::mem::replace(status, to), to));
            }
        }
        changes
    }
}
