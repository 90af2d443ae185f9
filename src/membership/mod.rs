//! The failure detector: strikes, gossiped suspicion, death by half the cluster, and
//! revival through incarnation numbers.
//!
//! Rules (README.md, "Failure detector"):
//! - Every exchange with a peer that is not acknowledged within its timeout is a strike; an
//!   acknowledged one clears the strikes. Two strikes make the peer *doubted* (others then
//!   probe it, so they gather evidence of their own quickly); three make it *suspected*.
//! - Each node gossips its own `Record` (doubts and suspicions, each tagged with the
//!   incarnation of the peer it is about). A vote counts only while it names the peer's
//!   current incarnation, so old votes die when the peer refutes them.
//! - A suspicion needs confirmation before it becomes a vote: three strikes of our own
//!   count only once some other node doubts or suspects the peer too (unless one vote is
//!   death, N <= 3). Until then we treat the peer as suspected here (our parent moves on,
//!   we stop sending to it) but gossip only our doubt: others probe it, and a peer that
//!   only we cannot reach, for a moment, never shows as suspected anywhere.
//! - X is dead when at least ceil((N-1)/2) nodes other than X suspect it (this node's own
//!   vote included). With N = 2 that is one vote: the other node's own suspicion. With N = 1
//!   there is no peer to judge.
//! - A node that sees itself suspected at its current incarnation raises its incarnation,
//!   which voids every vote against the old one: death is reversible.
//!
//! The state is split by concern: `roster` names the nodes and their places, `ballots`
//! holds every node's record and its votes, `verdict` derives statuses and doubters from
//! them; `Detector` adds this node's own evidence (its strikes) and ties them together.

mod ballots;
mod roster;
mod verdict;

use std::collections::BTreeSet;

use tracing::warn;

pub use ballots::MAX_COUNTER;
use ballots::{Ballots, plausible};
use roster::Roster;
pub use verdict::Status;
use verdict::Verdict;

use crate::wire::{MembershipView, Record, Records};

/// Consecutive failed exchanges that make a peer suspected.
pub const STRIKES_TO_SUSPECT: u32 = 3;
/// Consecutive failed exchanges that make us ask everyone to probe the peer. One late ack
/// is common with exponential latency; two in a row are rare unless the peer is gone.
pub const STRIKES_TO_DOUBT: u32 = 2;

pub struct Detector {
    roster: Roster,
    ballots: Ballots,
    verdict: Verdict,
    // This node's own evidence, by place.
    /// Consecutive failed exchanges with each peer.
    strikes: Vec<u32>,
    /// Peers we have struck out whose suspicion awaits confirmation by another node.
    unconfirmed: Vec<bool>,
    /// Status changes so far.
    status_changes: u64,
    /// Changes of the records so far (each is judged once).
    records_changes: u64,
}

/// A change of a peer's status, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub peer: String,
    pub from: Status,
    pub to: Status,
    pub voters: Vec<String>,
}

/// What a call changed: records to gossip, statuses to act on.
#[derive(Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Changed {
    /// Some record changed here (ours, or one received): it is news for the peers.
    pub records: bool,
    /// Of that news, some is worth sending at once: a new doubt or suspicion, a raised
    /// incarnation, or a change of some peer's status. (A suspicion taken back, or one
    /// the peer already refuted, can wait for the next batch: under partitions, and after
    /// they heal, such news comes all the time.)
    pub urgent: bool,
    /// Peer statuses that changed, in peer order.
    pub statuses: Vec<Change>,
}

impl Changed {
    /// Both changes, in order.
    pub fn and(mut self, later: Changed) -> Changed {
        self.records |= later.records;
        self.urgent |= later.urgent;
        self.statuses.extend(later.statuses);
        self
    }
}

impl Detector {
    pub fn new(me: &str, nodes: &[String]) -> Self {
        let roster = Roster::new(me, nodes);
        let places = roster.places();
        Detector {
            ballots: Ballots::new(&roster),
            verdict: Verdict::new(&roster),
            roster,
            strikes: vec![0; places],
            unconfirmed: vec![false; places],
            status_changes: 0,
            records_changes: 0,
        }
    }

    /// Votes needed to declare a node dead: ceil((N-1)/2), at least 1.
    pub fn death_threshold(&self) -> usize {
        self.roster.death_threshold()
    }

    pub fn incarnation(&self, node: &str) -> u64 {
        self.ballots.incarnation(node)
    }

    pub fn own_record(&self) -> &Record {
        self.ballots.own(&self.roster)
    }

    pub fn records(&self) -> &Records {
        self.ballots.records()
    }

    /// How many times the records have changed: what follows from them need not be
    /// looked at again while this stays the same.
    pub fn records_changes(&self) -> u64 {
        self.records_changes
    }

    /// Counts the status changes so far: observers rescan statuses only when it moves.
    pub fn status_changes(&self) -> u64 {
        self.status_changes
    }

    /// The nodes whose current vote says `peer` is suspected.
    pub fn voters(&self, peer: &str) -> Vec<String> {
        match self.place(peer) {
            Some(peer) => self.voters_at(peer),
            None => Vec::new(), // (a vote against a stranger counts for nothing)
        }
    }

    /// `voters` by place.
    fn voters_at(&self, peer: usize) -> Vec<String> {
        (self.ballots.voters(peer))
            .map(|author| self.name(author).to_string())
            .collect()
    }

    /// How this node sees `peer` now. (Kept up to date by every change to the records: it
    /// is asked about every peer many times per tick.)
    pub fn status(&self, peer: &str) -> Status {
        self.place(peer)
            .map_or(Status::Alive, |p| self.verdict.status_at(p))
    }

    pub fn is_dead(&self, peer: &str) -> bool {
        self.status(peer) == Status::Dead
    }

    /// `is_dead` by place.
    pub fn is_dead_at(&self, peer: usize) -> bool {
        self.verdict.status_at(peer) == Status::Dead
    }

    /// Every peer is dead here: no one is left to hold what this node holds.
    pub fn alone(&self) -> bool {
        (self.roster.nodes.iter()).all(|n| *n == self.roster.me || self.is_dead(n))
    }

    /// This node's own suspicion of `peer`: 3 strikes in a row, not yet answered, whether
    /// it is a vote yet or awaits confirmation. (A vote counts only while it names the
    /// peer's current incarnation: see `suspicion_stands`.)
    pub fn suspects(&self, peer: &str) -> bool {
        self.place(peer).is_some_and(|p| self.suspects_at(p))
    }

    /// We suspect `peer`, or it is dead: it is no parent of ours.
    pub fn ruled_out(&self, peer: &str) -> bool {
        self.place(peer).is_some_and(|p| self.ruled_out_at(p))
    }

    /// `ruled_out` by place.
    pub fn ruled_out_at(&self, peer: usize) -> bool {
        self.suspects_at(peer) || self.is_dead_at(peer)
    }

    /// `suspects` by place.
    pub fn suspects_at(&self, peer: usize) -> bool {
        self.unconfirmed[peer] || self.own_vote(peer).is_some()
    }

    /// The incarnation our own record suspects the peer at `place` at, if it does.
    fn own_vote(&self, peer: usize) -> Option<u64> {
        self.ballots.suspicion(self.roster.me_place, peer)
    }

    /// Our suspicion of `peer` still says what we know: it names the peer's current
    /// incarnation, or awaits confirmation. One the peer has refuted since says only that
    /// we have not heard from it, and is worth a probe: a node paused again soon after it
    /// came back, with everyone still holding the old suspicion, was otherwise not judged
    /// again for as long as the pause lasted (no one probed it, and no vote named its new
    /// incarnation).
    pub fn suspicion_stands(&self, peer: &str) -> bool {
        self.place(peer)
            .is_some_and(|p| self.suspicion_stands_at(p))
    }

    /// `suspicion_stands` by place.
    pub fn suspicion_stands_at(&self, peer: usize) -> bool {
        self.unconfirmed[peer]
            || (peer != self.roster.me_place
                && self
                    .own_vote(peer)
                    .is_some_and(|inc| inc >= self.ballots.incs()[peer]))
    }

    /// Our suspicion of `peer` (by place) is not a vote yet: no other node doubts the peer.
    pub fn awaits_confirmation_at(&self, peer: usize) -> bool {
        self.unconfirmed[peer]
    }

    /// Every peer this node suspects (`suspects`), in order. (Merged as it is walked,
    /// nothing collected: the overlay compares it on every change of the records.)
    pub fn suspected(&self) -> impl Iterator<Item = &str> {
        let mut own = self
            .own_record()
            .suspects
            .keys()
            .map(String::as_str)
            .peekable();
        let mut unconfirmed = (0..self.roster.places())
            .filter(|&p| self.unconfirmed[p])
            .map(|p| self.name(p))
            .peekable();
        std::iter::from_fn(move || match (own.peek(), unconfirmed.peek()) {
            (Some(a), Some(b)) if a == b => {
                unconfirmed.next();
                own.next()
            }
            (Some(a), Some(b)) if a > b => unconfirmed.next(),
            (Some(_), _) => own.next(),
            (None, _) => unconfirmed.next(),
        })
    }

    /// One vote decides (N <= 3): there is no one else to wait for.
    fn needs_confirmation(&self) -> bool {
        self.death_threshold() > 1
    }

    /// The peers someone currently doubts or suspects: worth probing ourselves. Only the
    /// doubts of a node whose record names one peer, or at most half of its peers (doubts
    /// the peers refuted included), count here: one that names more is most likely cut off
    /// itself (alone under a partition, or just back from one), and its doubts would send
    /// every node probing peers that answer them. So is one that names half (rounded down)
    /// while some record names it: a majorities-ring partition. (They still count as votes and
    /// as confirmation.)
    pub fn doubted(&self) -> BTreeSet<&str> {
        self.doubted_places().map(|p| self.name(p)).collect()
    }

    /// The nodes (this one included) that currently doubt or suspect `peer`, of those whose
    /// doubts count in `doubted`, by place in name order (`place`), in order.
    pub fn doubters_of(&self, peer: &str) -> &[usize] {
        self.place(peer).map_or(&[], |p| self.doubters_at(p))
    }

    /// `doubters_of` by place.
    pub fn doubters_at(&self, peer: usize) -> &[usize] {
        self.verdict.doubters_at(peer)
    }

    /// The places of the `doubted` peers, in order.
    pub fn doubted_places(&self) -> impl Iterator<Item = usize> + '_ {
        self.verdict.doubted_places()
    }

    /// A node's place in name order: how the methods named `_at` and `_places` name
    /// nodes.
    pub fn place(&self, node: &str) -> Option<usize> {
        self.roster.place(node)
    }

    /// The node at `place`.
    pub fn name(&self, place: usize) -> &str {
        self.roster.name(place)
    }

    /// The record of the node at place `author` still doubts or suspects the node at place
    /// `peer`, at any incarnation: it has not taken its doubt back (it would have, had it
    /// heard from the peer since). As of the last judgement of the records.
    pub fn still_doubts(&self, author: usize, peer: usize) -> bool {
        self.ballots.names(author, peer)
    }

    /// The places of the peers with at least one strike, in order.
    pub fn struck_places(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.strikes.len()).filter(|&p| self.strikes[p] > 0)
    }

    /// Consecutive failed exchanges with `peer`.
    pub fn strikes(&self, peer: &str) -> u32 {
        self.place(peer).map_or(0, |p| self.strikes[p])
    }

    /// `strikes` by place.
    pub fn strikes_at(&self, peer: usize) -> u32 {
        self.strikes[peer]
    }

    /// An exchange with `peer` failed.
    pub fn strike(&mut self, peer: &str) -> Changed {
        let Some(place) = self.place(peer).filter(|&p| p != self.roster.me_place) else {
            return Changed::default(); // (only the cluster's nodes are struck)
        };
        self.strikes[place] += 1;
        let strikes = self.strikes[place];
        let inc = self.incarnation(peer);
        let confirmed = !self.needs_confirmation() || self.verdict.doubted_by_others(place);
        let own = self.ballots.own_mut(&self.roster);
        let mut changed = false;
        if strikes >= STRIKES_TO_DOUBT && own.doubts.get(peer) != Some(&inc) {
            own.doubts.insert(peer.to_string(), inc);
            changed = true;
        }
        if strikes >= STRIKES_TO_SUSPECT && own.suspects.get(peer) != Some(&inc) {
            if confirmed {
                own.suspects.insert(peer.to_string(), inc);
                self.unconfirmed[place] = false;
                changed = true;
            } else {
                self.unconfirmed[place] = true;
            }
        }
        if !changed {
            return Changed::default(); // statuses follow from the records alone
        }
        own.version += 1;
        self.rejudge(true)
    }

    /// This node was stopped for a while: strikes count failures in a row, and a row
    /// broken by a stall is stale (the network may have healed meanwhile), so they start
    /// again. What was already gossiped stands until answered or refuted.
    pub fn forgive_strikes(&mut self) {
        self.strikes.fill(0);
        self.unconfirmed.fill(false);
    }

    /// An exchange with `peer` was acknowledged.
    pub fn success(&mut self, peer: &str) -> Changed {
        let Some(place) = self.place(peer) else {
            return Changed::default();
        };
        self.strikes[place] = 0;
        if !self.withdraw(peer, place) {
            return Changed::default();
        }
        self.rejudge(false)
    }

    /// Takes back our doubt and suspicion of `peer` (at `place`); false if we had neither.
    fn withdraw(&mut self, peer: &str, place: usize) -> bool {
        self.unconfirmed[place] = false;
        let own = self.ballots.own_mut(&self.roster);
        let had = own.doubts.remove(peer).is_some() | own.suspects.remove(peer).is_some();
        if had {
            own.version += 1;
        }
        had
    }

    /// Merges records received from a peer (and refutes what they say of this node).
    pub fn merge(&mut self, incoming: &Records) -> Changed {
        let mut updated = false;
        let mut urgent = false;
        for (author, record) in incoming {
            if !plausible(record) {
                warn!(
                    author = &**author,
                    "ignoring a record with an implausible version or incarnation"
                );
                continue;
            }
            if **author == *self.roster.me {
                // A record of ours that we do not hold: raise our incarnation above it.
                let resumed = self.ballots.resume(&self.roster, record);
                updated |= resumed;
                urgent |= resumed;
                continue;
            }
            if self.place(author).is_none() {
                continue; // strangers are ignored
            }
            // A higher incarnation voids every vote against the older one, ours included.
            // Our evidence stands, though: our strikes are still in a row, so the next
            // failed exchange votes against the new incarnation and a success withdraws.
            // (Starting afresh would have every node probe it again at once: under a
            // partition that keeps it refuting, that is a storm of probes.)
            if let Some(news) = self.ballots.accept(author, record) {
                urgent |= news;
                updated = true;
            }
        }
        if !updated {
            // (What we already had was refuted when it came: our incarnation only rises.)
            return Changed::default();
        }
        self.ballots.place(&self.roster);
        let refuted = self.ballots.refute(&self.roster);
        self.rejudge(urgent | refuted)
    }

    /// Re-derives every status and the doubted peers after a change to the records.
    fn rejudge(&mut self, urgent: bool) -> Changed {
        self.records_changes += 1;
        self.ballots.place(&self.roster);
        let confirmed = self.confirm();
        if confirmed {
            self.ballots.place(&self.roster); // (the votes it cast are in our record's new version)
        }
        let changes: Vec<Change> = (self.verdict.judge(&self.roster, &self.ballots))
            .into_iter()
            .map(|(place, from, to)| Change {
                peer: self.name(place).to_string(),
                from,
                to,
                voters: self.voters_at(place),
            })
            .collect();
        self.status_changes += changes.len() as u64;
        Changed {
            records: true,
            urgent: urgent || confirmed || !changes.is_empty(),
            statuses: changes,
        }
    }

    /// Finds who else doubts or suspects whom, and casts the votes it confirms (true if
    /// any).
    fn confirm(&mut self) -> bool {
        self.verdict.find_others(&self.roster, &self.ballots);
        let confirmed: Vec<usize> = (0..self.roster.places())
            .filter(|&p| self.unconfirmed[p] && self.verdict.doubted_by_others(p))
            .collect();
        for &place in &confirmed {
            self.unconfirmed[place] = false;
            let peer = self.name(place).to_string();
            let inc = self.incarnation(&peer);
            let own = self.ballots.own_mut(&self.roster);
            own.suspects.insert(peer, inc);
            own.version += 1;
        }
        !confirmed.is_empty()
    }

    pub fn view(&self) -> MembershipView {
        let mut view = MembershipView {
            incarnation: self.incarnation(&self.roster.me),
            ..MembershipView::default()
        };
        for node in &self.roster.nodes {
            view.incarnations
                .insert(node.clone(), self.incarnation(node));
            if *node == self.roster.me {
                continue;
            }
            match self.status(node) {
                Status::Alive => view.alive.push(node.clone()),
                Status::Suspected => {
                    view.suspected.insert(node.clone(), self.voters(node));
                }
                Status::Dead => {
                    view.dead.insert(node.clone(), self.voters(node));
                }
            }
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    fn nodes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    fn record(version: u64, inc: u64, suspects: &[(&str, u64)]) -> Arc<Record> {
        Arc::new(Record {
            version,
            inc,
            suspects: suspects.iter().map(|(p, i)| (p.to_string(), *i)).collect(),
            doubts: BTreeMap::new(),
        })
    }

    fn strike_out(d: &mut Detector, peer: &str) {
        for _ in 0..STRIKES_TO_SUSPECT {
            let _ = d.strike(peer);
        }
    }

    #[test]
    fn thresholds_for_small_and_large_clusters() {
        for (n, t) in [(2, 1), (3, 1), (4, 2), (5, 2), (25, 12)] {
            assert_eq!(Detector::new("n0", &nodes(n)).death_threshold(), t, "N={n}");
        }
        // N = 1: no peers, nothing to judge, and no panic.
        let d = Detector::new("n0", &nodes(1));
        assert_eq!(d.death_threshold(), 1);
        assert!(d.view().alive.is_empty());
    }

    #[test]
    fn with_two_nodes_own_suspicion_kills() {
        let mut d = Detector::new("n0", &nodes(2));
        let _ = d.strike("n1");
        assert!(!d.doubted().contains("n1"), "one late ack is no news");
        let _ = d.strike("n1");
        assert_eq!(d.status("n1"), Status::Alive, "two strikes are only doubt");
        assert!(d.doubted().contains("n1"));
        let _ = d.strike("n1");
        assert_eq!(d.status("n1"), Status::Dead);
    }

    #[test]
    fn strikes_from_before_a_stall_are_forgotten() {
        let mut d = Detector::new("n0", &nodes(2));
        let _ = d.strike("n1");
        let _ = d.strike("n1");
        d.forgive_strikes();
        let _ = d.strike("n1");
        assert_eq!(d.strikes("n1"), 1);
        assert_eq!(d.status("n1"), Status::Alive, "a row broken by a stall");
        let _ = d.strike("n1");
        let _ = d.strike("n1");
        assert_eq!(d.status("n1"), Status::Dead);
    }

    #[test]
    fn three_nodes_one_vote_of_two_kills() {
        let mut d = Detector::new("n0", &nodes(3));
        strike_out(&mut d, "n2");
        assert_eq!(d.status("n2"), Status::Dead);
    }

    #[test]
    fn four_and_five_nodes_need_two_votes() {
        for n in [4, 5] {
            let mut d = Detector::new("n0", &nodes(n));
            strike_out(&mut d, "n3");
            // Our three strikes await confirmation: a doubt is all the others hear.
            assert!(d.suspects("n3"), "N={n}");
            assert_eq!(d.status("n3"), Status::Alive, "N={n}");
            assert!(d.voters("n3").is_empty(), "N={n}");
            let _ = d.merge(&BTreeMap::from([("n1".into(), record(1, 0, &[("n3", 0)]))]));
            assert_eq!(d.status("n3"), Status::Dead, "N={n}");
            assert_eq!(d.voters("n3"), vec!["n0", "n1"]);
        }
    }

    fn doubting(version: u64, peer: &str) -> Arc<Record> {
        Arc::new(Record {
            version,
            doubts: BTreeMap::from([(peer.to_string(), 0)]),
            ..Record::default()
        })
    }

    #[test]
    fn a_suspicion_becomes_a_vote_once_another_node_doubts_the_peer() {
        let mut d = Detector::new("n0", &nodes(5));
        strike_out(&mut d, "n3");
        assert!(d.own_record().suspects.is_empty(), "not confirmed yet");
        assert_eq!(
            d.own_record().doubts.get("n3"),
            Some(&0),
            "our doubt is gossiped"
        );
        let changed = d.merge(&BTreeMap::from([("n2".into(), doubting(1, "n3"))]));
        assert!(changed.records, "our vote is news");
        assert_eq!(d.voters("n3"), vec!["n0"]);
        assert_eq!(d.status("n3"), Status::Suspected);
        // Once confirmed, a new strike-out needs no new confirmation while the doubt stands.
        let _ = d.success("n3");
        strike_out(&mut d, "n3");
        assert_eq!(d.voters("n3"), vec!["n0"]);
    }

    #[test]
    fn an_answer_takes_back_an_unconfirmed_suspicion() {
        let mut d = Detector::new("n0", &nodes(5));
        strike_out(&mut d, "n3");
        let _ = d.success("n3");
        assert!(!d.suspects("n3"));
        // A doubt arriving later confirms nothing: the evidence was answered.
        let _ = d.merge(&BTreeMap::from([("n2".into(), doubting(1, "n3"))]));
        assert!(d.voters("n3").is_empty());
        // Another node's own suspicion of itself is no confirmation either.
        let mut e = Detector::new("n0", &nodes(5));
        strike_out(&mut e, "n3");
        let _ = e.merge(&BTreeMap::from([("n3".into(), doubting(1, "n3"))]));
        assert!(e.voters("n3").is_empty());
    }

    #[test]
    fn twenty_five_nodes_need_twelve_votes_excluding_the_suspect() {
        let all = nodes(25);
        let mut d = Detector::new("n0", &all);
        strike_out(&mut d, "n24");
        let mut incoming = Records::new();
        for i in 1..11 {
            incoming.insert(format!("n{i}").into(), record(1, 0, &[("n24", 0)]));
        }
        // The suspect's own opinion of itself never counts.
        incoming.insert("n24".into(), record(1, 0, &[("n24", 0)]));
        let _ = d.merge(&incoming);
        assert_eq!(d.voters("n24").len(), 11);
        assert_eq!(d.status("n24"), Status::Suspected);
        let changes = d.merge(&BTreeMap::from([(
            "n11".into(),
            record(1, 0, &[("n24", 0)]),
        )]));
        assert_eq!(d.status("n24"), Status::Dead);
        assert_eq!(changes.statuses.len(), 1);
        assert_eq!(
            (changes.statuses[0].from, changes.statuses[0].to),
            (Status::Suspected, Status::Dead)
        );
    }

    #[test]
    fn success_withdraws_our_vote_and_a_newer_record_withdraws_theirs() {
        let mut d = Detector::new("n0", &nodes(5));
        strike_out(&mut d, "n3");
        let _ = d.merge(&BTreeMap::from([("n1".into(), record(1, 0, &[("n3", 0)]))]));
        assert!(d.is_dead("n3"));
        let _ = d.success("n3");
        assert!(!d.suspects("n3"));
        assert_eq!(d.status("n3"), Status::Suspected);
        let _ = d.merge(&BTreeMap::from([("n1".into(), record(2, 0, &[]))]));
        assert_eq!(d.status("n3"), Status::Alive);
        // An older record arriving late changes nothing.
        let _ = d.merge(&BTreeMap::from([("n1".into(), record(1, 0, &[("n3", 0)]))]));
        assert_eq!(d.status("n3"), Status::Alive);
    }

    #[test]
    fn suspicion_of_oneself_is_refuted_by_a_higher_incarnation() {
        let mut suspect = Detector::new("n3", &nodes(5));
        let before = suspect.own_record().version;
        let changed = suspect.merge(&BTreeMap::from([
            ("n0".into(), record(4, 0, &[("n3", 0)])),
            ("n1".into(), record(2, 0, &[("n3", 0)])),
        ]));
        assert!(changed.records);
        assert_eq!(suspect.incarnation("n3"), 1);
        assert!(
            suspect.own_record().version > before,
            "the refutation is news"
        );

        // Elsewhere, the refutation voids the votes of the old incarnation.
        let mut other = Detector::new("n2", &nodes(5));
        let _ = other.merge(&BTreeMap::from([
            ("n0".into(), record(4, 0, &[("n3", 0)])),
            ("n1".into(), record(2, 0, &[("n3", 0)])),
        ]));
        assert!(other.is_dead("n3"));
        let changes = other.merge(&BTreeMap::from([(
            "n3".into(),
            Arc::new(suspect.own_record().clone()),
        )]));
        assert_eq!(other.status("n3"), Status::Alive);
        assert_eq!(changes.statuses[0].to, Status::Alive);
        // New suspicion has to name the new incarnation to count.
        let _ = other.merge(&BTreeMap::from([("n0".into(), record(5, 0, &[("n3", 1)]))]));
        assert_eq!(other.status("n3"), Status::Suspected);
    }

    #[test]
    fn refutation_voids_our_vote_but_not_our_evidence() {
        let mut d = Detector::new("n0", &nodes(3));
        strike_out(&mut d, "n2");
        assert_eq!(d.status("n2"), Status::Dead, "one vote of one needed");
        let _ = d.merge(&BTreeMap::from([("n2".into(), record(1, 1, &[]))]));
        assert_eq!(
            d.status("n2"),
            Status::Alive,
            "our vote named incarnation 0"
        );
        assert!(d.suspects("n2"), "we still have no answer from it");
        assert!(
            !d.suspicion_stands("n2"),
            "but it no longer names n2's incarnation"
        );
        let _ = d.strike("n2");
        assert_eq!(
            d.voters("n2"),
            vec!["n0"],
            "the next failure in a row votes against incarnation 1"
        );
        let _ = d.success("n2");
        assert!(!d.suspects("n2"));
        assert_eq!(d.status("n2"), Status::Alive);
    }

    #[test]
    fn view_reports_every_peer() {
        let mut d = Detector::new("n0", &nodes(5));
        strike_out(&mut d, "n4");
        let _ = d.merge(&BTreeMap::from([(
            "n1".into(),
            record(1, 0, &[("n4", 0), ("n3", 0)]),
        )]));
        let v = d.view();
        assert_eq!(v.alive, vec!["n1", "n2"]);
        assert_eq!(v.suspected.get("n3"), Some(&vec!["n1".to_string()]));
        assert_eq!(
            v.dead.get("n4"),
            Some(&vec!["n0".to_string(), "n1".to_string()])
        );
        assert_eq!(v.incarnations.len(), 5);
    }

    #[test]
    fn calls_report_what_they_changed() {
        let mut d = Detector::new("n0", &nodes(3));
        assert_eq!(d.strike("n1"), Changed::default(), "one strike is no news");
        let doubt = d.strike("n1");
        assert!(doubt.records && doubt.statuses.is_empty(), "{doubt:?}");
        let suspect = d.strike("n1");
        assert!(suspect.records);
        assert_eq!(suspect.statuses[0].to, Status::Dead);
        assert_eq!(d.status_changes(), 1);
        let old = d.merge(&BTreeMap::from([("n2".into(), record(1, 0, &[]))]));
        assert!(old.records && old.statuses.is_empty());
        assert_eq!(
            d.merge(&BTreeMap::from([("n2".into(), record(1, 0, &[]))])),
            Changed::default(),
            "a record known already"
        );
        let back = d.success("n1");
        assert!(back.records);
        assert_eq!(back.statuses[0].to, Status::Alive);
        assert_eq!(d.status_changes(), 2);
        assert_eq!(d.success("n1"), Changed::default());
    }

    #[test]
    fn the_doubts_of_a_node_that_doubts_most_of_its_peers_send_no_one_probing() {
        let mut d = Detector::new("n0", &nodes(25));
        let cut_off = Record {
            version: 1,
            doubts: (2..15).map(|i| (format!("n{i}"), 0)).collect(),
            ..Record::default()
        };
        let _ = d.merge(&BTreeMap::from([("n1".into(), Arc::new(cut_off))]));
        assert!(
            d.doubted().is_empty(),
            "n1 doubts 13 of 24: {:?}",
            d.doubted()
        );
        // They still confirm our own suspicion, and vote.
        strike_out(&mut d, "n3");
        assert_eq!(d.own_record().suspects.get("n3"), Some(&0));
        let _ = d.merge(&BTreeMap::from([("n2".into(), doubting(1, "n3"))]));
        assert_eq!(d.doubted().into_iter().collect::<Vec<_>>(), ["n3"]);
        assert_eq!(d.doubters_of("n3").len(), 2, "n0 (3 strikes) and n2");
    }

    #[test]
    fn a_node_cut_off_stays_cut_off_as_the_peers_it_doubts_refute() {
        let mut d = Detector::new("n0", &nodes(25));
        // n1 is back from the minority side of a partition: it suspects 13 of its 24 peers.
        let names: Vec<String> = (2..15).map(|i| format!("n{i}")).collect();
        let votes: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 0)).collect();
        let back = record(1, 0, &votes);
        let _ = d.merge(&BTreeMap::from([("n1".into(), back)]));
        assert!(d.doubted().is_empty());
        // Five of them see its vote and refute: eight of its suspicions still stand, but it
        // has heard from none of the thirteen yet, and those eight send no one probing.
        for i in 2..7 {
            let refuted = record(1, 1, &[]);
            let _ = d.merge(&BTreeMap::from([(format!("n{i}").into(), refuted)]));
        }
        assert_eq!(d.voters("n7"), ["n1"]);
        assert!(d.doubted().is_empty(), "{:?}", d.doubted());
    }

    #[test]
    fn the_doubts_of_a_node_cut_from_half_count_unless_others_doubt_it_too() {
        // n1 doubts 12 of its 24 peers, n2..n13: alone, it is on the larger side of a
        // split in two (or among the live half of the cluster), and its doubts are news.
        let mut d = Detector::new("n0", &nodes(25));
        let names: Vec<String> = (2..14).map(|i| format!("n{i}")).collect();
        let doubts: BTreeMap<String, u64> = names.iter().map(|n| (n.clone(), 0)).collect();
        let half = Arc::new(Record {
            version: 1,
            doubts,
            ..Record::default()
        });
        let _ = d.merge(&BTreeMap::from([("n1".into(), half)]));
        assert_eq!(d.doubted().len(), 12);
        assert_eq!(d.doubters_of("n2").len(), 1);
        // Once n14 doubts n1 in turn, the cut runs through the cluster as a ring: each node
        // reaches half of it, and n1's doubts would have the other half asking peers that
        // answer them. Only n14's own doubt still counts.
        let _ = d.merge(&BTreeMap::from([("n14".into(), doubting(1, "n1"))]));
        assert_eq!(d.doubted(), BTreeSet::from(["n1"]));
        // Its doubts still count as confirmation.
        assert_eq!(d.doubters_of("n2"), &[] as &[usize]);
        let _ = d.strike("n2");
        let _ = d.strike("n2");
        let _ = d.strike("n2");
        assert_eq!(d.voters("n2"), ["n0"], "n1's doubt confirmed our suspicion");
    }

    #[test]
    fn a_dead_node_that_named_a_peer_before_it_refuted_does_not_make_a_ring() {
        // n1 is back from a pause (incarnation 1) and doubts 12 of its 24 peers, n2..n13,
        // paused now. n14, paused with them, still names n1 as it was before its pause.
        let mut d = Detector::new("n0", &nodes(25));
        let doubts: BTreeMap<String, u64> = (2..14).map(|i| (format!("n{i}"), 0)).collect();
        let back = Arc::new(Record {
            version: 2,
            inc: 1,
            doubts,
            ..Record::default()
        });
        let stale = record(1, 0, &[("n1", 0)]);
        let _ = d.merge(&BTreeMap::from([
            ("n1".into(), back),
            ("n14".into(), stale),
        ]));
        // While n14 may be alive, n1 looks cut from half of a ring: its doubts send no
        // one probing.
        assert_eq!(d.doubters_of("n2"), &[] as &[usize]);
        // Once n14 is dead, what it named before n1 refuted is no word on where n1 stands.
        let voters: Records = (15..25)
            .chain([12, 13])
            .map(|i| (format!("n{i}").into(), record(1, 0, &[("n14", 0)])))
            .collect();
        let _ = d.merge(&voters);
        assert_eq!(d.status("n14"), Status::Dead);
        assert_eq!(d.doubters_of("n2").len(), 1, "n1's doubt of n2 is news");
        assert!(d.doubted().contains("n13"));
    }

    #[test]
    fn news_that_takes_back_what_stands_no_more_is_not_urgent() {
        let mut d = Detector::new("n0", &nodes(25));
        let _ = d.strike("n1");
        assert!(d.strike("n1").urgent, "a new doubt");
        assert!(
            !d.success("n1").urgent,
            "a doubt taken back changes no one's status"
        );
        let first = d.merge(&BTreeMap::from([("n2".into(), doubting(1, "n3"))]));
        assert!(first.urgent, "a record first heard of, with a doubt");
        let taken_back = d.merge(&BTreeMap::from([("n2".into(), record(2, 0, &[]))]));
        assert!(taken_back.records && !taken_back.urgent, "{taken_back:?}");
        let suspicion = d.merge(&BTreeMap::from([("n2".into(), record(3, 0, &[("n3", 0)]))]));
        assert!(suspicion.urgent, "a new suspicion");
        let refuted = d.merge(&BTreeMap::from([("n3".into(), record(1, 1, &[]))]));
        assert!(refuted.urgent, "a raised incarnation");
        let _ = d.merge(&BTreeMap::from([("n4".into(), record(1, 0, &[]))]));
        let stale = d.merge(&BTreeMap::from([("n4".into(), record(2, 0, &[("n3", 0)]))]));
        assert!(
            stale.records && !stale.urgent,
            "a suspicion the peer has refuted already: {stale:?}"
        );
    }

    #[test]
    fn a_restarted_node_resumes_above_its_past_record() {
        let mut d = Detector::new("n0", &nodes(3));
        // A peer holds our record from before we restarted: version 9, incarnation 2.
        let past: Records = [("n0".into(), record(9, 2, &[("n1", 0)]))].into();
        let changed = d.merge(&past);
        assert!(changed.records, "our new record is news");
        assert_eq!(d.own_record().version, 10);
        assert_eq!(d.own_record().inc, 2);
        // Our past suspicion of n1 is not taken back up: the new life has its own evidence.
        assert!(d.own_record().suspects.is_empty());
        // Our own record coming back unchanged is no news.
        let echo: Records = [("n0".into(), Arc::new(d.own_record().clone()))].into();
        assert_eq!(d.merge(&echo), Changed::default());
    }

    #[test]
    fn records_with_implausible_numbers_are_ignored() {
        let mut d = Detector::new("n0", &nodes(3));
        let forged: Records = [("n1".into(), record(u64::MAX, 0, &[("n2", u64::MAX)]))].into();
        assert_eq!(d.merge(&forged), Changed::default());
        assert_eq!(d.status("n2"), Status::Alive);
        let against_us: Records = [("n1".into(), record(5, 0, &[("n0", MAX_COUNTER)]))].into();
        assert_eq!(d.merge(&against_us), Changed::default());
        assert_eq!(d.own_record().inc, 0);
    }
}
