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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tracing::warn;

use crate::wire::{MembershipView, Record, Records};

/// No honest version or incarnation comes near this (a change a microsecond for a century
/// stays below it); a record with a larger number is ignored, so that no one can push a
/// counter to where adding one wraps it.
pub const MAX_COUNTER: u64 = 1 << 53;

/// Every number in the record is below `MAX_COUNTER`.
fn plausible(record: &Record) -> bool {
    record.version < MAX_COUNTER
        && record.inc < MAX_COUNTER
        && record
            .suspects
            .values()
            .chain(record.doubts.values())
            .all(|inc| *inc < MAX_COUNTER)
}

/// Consecutive failed exchanges that make a peer suspected.
pub const STRIKES_TO_SUSPECT: u32 = 3;
/// Consecutive failed exchanges that make us ask everyone to probe the peer. One late ack
/// is common with exponential latency; two in a row are rare unless the peer is gone.
pub const STRIKES_TO_DOUBT: u32 = 2;

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

pub struct Detector {
    me: String,
    /// Every node of the cluster, this one included, in `node_ids` order.
    nodes: Vec<String>,
    /// The same in name order, the order of the records and of their votes; a node's
    /// place here indexes `placed`.
    by_name: Vec<String>,
    /// Each record's votes by place, as of the record's version, indexed by its author's
    /// place: judging walks these instead of looking every vote up by name (under a
    /// partition every record names half the cluster, and records change all the time).
    placed: Vec<Option<PlacedVotes>>,
    /// This node's place.
    me_place: usize,
    /// The latest record of every node known here, this node's own included.
    records: Records,
    /// The places of the records' authors, in name order, while `records` holds as many.
    authors: Vec<usize>,
    // Below, everything is by place: the failure detector's tick asks about many peers
    // many times, and lookups by name cost it a quarter of a simulated partition.
    /// Every node's incarnation as of the last change to the records.
    incs: Vec<u64>,
    strikes: Vec<u32>,
    /// Every node's status (this node's: alive), likewise.
    status: Vec<Status>,
    /// Peers someone doubts or suspects, likewise (see `doubted`), in order, each with the
    /// nodes that doubt or suspect it.
    doubters: Vec<(usize, Vec<usize>)>,
    /// Peers some node other than this one doubts or suspects, likewise: confirmation.
    doubted_by_others: Vec<bool>,
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
        let mut records = Records::new();
        records.insert(me.into(), Arc::new(Record::default()));
        let mut by_name = nodes.to_vec();
        by_name.push(me.to_string()); // (a node always has a place, if only its own)
        by_name.sort();
        by_name.dedup();
        let places = by_name.len();
        let me_place = by_name
            .binary_search_by(|n| n.as_str().cmp(me))
            .expect("placed");
        let mut detector = Detector {
            me: me.to_string(),
            me_place,
            nodes: nodes.to_vec(),
            placed: by_name.iter().map(|_| None).collect(),
            by_name,
            records,
            authors: vec![me_place],
            incs: vec![0; places],
            strikes: vec![0; places],
            status: vec![Status::Alive; places],
            doubters: Vec::new(),
            doubted_by_others: vec![false; places],
            unconfirmed: vec![false; places],
            status_changes: 0,
            records_changes: 0,
        };
        detector.place_records();
        detector
    }

    /// Votes needed to declare a node dead: ceil((N-1)/2), at least 1.
    pub fn death_threshold(&self) -> usize {
        (self.nodes.len() - 1).div_ceil(2).max(1)
    }

    pub fn incarnation(&self, node: &str) -> u64 {
        self.records.get(node).map_or(0, |r| r.inc)
    }

    pub fn own_record(&self) -> &Record {
        &self.records[self.me.as_str()]
    }

    pub fn records(&self) -> &Records {
        &self.records
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
        let Some(peer) = self.place(peer) else {
            return Vec::new(); // (a vote against a stranger counts for nothing)
        };
        let stands = |author: usize| {
            let vote = self.placed[author].as_ref()?.suspicion_of(peer)?;
            (author != peer && vote >= self.incs[peer]).then_some(author)
        };
        (self.authors.iter())
            .filter_map(|&author| stands(author))
            .map(|author| self.by_name[author].clone())
            .collect()
    }

    /// Brings `incs`, `authors` and `placed` up to date with the records.
    fn place_records(&mut self) {
        let by_name = &self.by_name;
        if self.authors.len() != self.records.len() {
            // (Records come only from the cluster's nodes: every author has a place.)
            let mut place = 0;
            self.authors = (self.records.keys())
                .filter_map(|author| seek(by_name, &mut place, author).then_some(place))
                .collect();
        }
        for (&place, r) in self.authors.iter().zip(self.records.values()) {
            self.incs[place] = r.inc;
            let placed = &mut self.placed[place];
            if placed.as_ref().is_none_or(|p| p.version != r.version) {
                *placed = Some(PlacedVotes::of(r, by_name));
            }
        }
    }

    /// A doubt or suspicion by `author` of `peer` at incarnation `inc` still stands: it is
    /// not about the author itself, and the peer has not refuted it.
    fn is_current(&self, author: &str, peer: &str, inc: u64) -> bool {
        author != peer && inc >= self.incarnation(peer)
    }

    /// How this node sees `peer` now. (Kept up to date by every change to the records: it
    /// is asked about every peer many times per tick.)
    pub fn status(&self, peer: &str) -> Status {
        self.place(peer).map_or(Status::Alive, |p| self.status[p])
    }

    pub fn is_dead(&self, peer: &str) -> bool {
        self.status(peer) == Status::Dead
    }

    /// `is_dead` by place.
    pub fn is_dead_at(&self, peer: usize) -> bool {
        self.status[peer] == Status::Dead
    }

    /// Every peer is dead here: no one is left to hold what this node holds.
    pub fn alone(&self) -> bool {
        self.nodes.iter().all(|n| *n == self.me || self.is_dead(n))
    }

    /// This node's own suspicion of `peer`: 3 strikes in a row, not yet answered, whether
    /// it is a vote yet or awaits confirmation. (A vote counts only while it names the
    /// peer's current incarnation: see `votes_against`.)
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
        self.placed[self.me_place].as_ref()?.suspicion_of(peer)
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
            || (peer != self.me_place
                && self
                    .own_vote(peer)
                    .is_some_and(|inc| inc >= self.incs[peer]))
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
        let mut unconfirmed = (0..self.by_name.len())
            .filter(|&p| self.unconfirmed[p])
            .map(|p| self.by_name[p].as_str())
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
        match self.doubters.binary_search_by_key(&peer, |d| d.0) {
            Ok(i) => &self.doubters[i].1,
            Err(_) => &[],
        }
    }

    /// The places of the `doubted` peers, in order.
    pub fn doubted_places(&self) -> impl Iterator<Item = usize> + '_ {
        self.doubters.iter().map(|d| d.0)
    }

    /// A node's place in name order: how the methods named `_at` and `_places` name
    /// nodes.
    pub fn place(&self, node: &str) -> Option<usize> {
        self.by_name.binary_search_by(|n| n.as_str().cmp(node)).ok()
    }

    /// The node at `place`.
    pub fn name(&self, place: usize) -> &str {
        &self.by_name[place]
    }

    /// The record of the node at place `author` still doubts or suspects the node at place
    /// `peer`, at any incarnation: it has not taken its doubt back (it would have, had it
    /// heard from the peer since). As of the last judgement of the records.
    pub fn still_doubts(&self, author: usize, peer: usize) -> bool {
        let names = |votes: &[(usize, u64)]| votes.binary_search_by_key(&peer, |v| v.0).is_ok();
        self.placed
            .get(author)
            .and_then(Option::as_ref)
            .is_some_and(|p| names(&p.doubts) || names(&p.suspects))
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
        let Some(place) = self.place(peer).filter(|&p| p != self.me_place) else {
            return Changed::default(); // (only the cluster's nodes are struck)
        };
        self.strikes[place] += 1;
        let strikes = self.strikes[place];
        let inc = self.incarnation(peer);
        let confirmed = !self.needs_confirmation() || self.doubted_by_others[place];
        let own = Arc::make_mut(self.records.get_mut(self.me.as_str()).expect("own record"));
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
        let own = Arc::make_mut(self.records.get_mut(self.me.as_str()).expect("own record"));
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
            if **author == *self.me {
                let resumed = self.resume(record);
                updated |= resumed;
                urgent |= resumed;
                continue;
            }
            if self.place(author).is_none() {
                continue; // strangers are ignored
            }
            let known = self.records.get(author).map_or(0, |r| r.version);
            if record.version <= known {
                continue;
            }
            // A higher incarnation voids every vote against the older one, ours included.
            // Our evidence stands, though: our strikes are still in a row, so the next
            // failed exchange votes against the new incarnation and a success withdraws.
            // (Starting afresh would have every node probe it again at once: under a
            // partition that keeps it refuting, that is a storm of probes.)
            let old = self.records.insert(author.clone(), record.clone());
            urgent |= self.adds_news(author, old.as_deref(), record);
            updated = true;
        }
        if !updated {
            // (What we already had was refuted when it came: our incarnation only rises.)
            return Changed::default();
        }
        self.place_records();
        let refuted = self.refute();
        self.rejudge(urgent | refuted)
    }

    /// Whether `new`, replacing `old` as `author`'s record, raises its incarnation or
    /// adds a doubt or suspicion that stands.
    fn adds_news(&self, author: &str, old: Option<&Record>, new: &Record) -> bool {
        let Some(old) = old else {
            return true;
        };
        let added = |new: &BTreeMap<String, u64>, old: &BTreeMap<String, u64>| {
            new.iter().any(|(peer, inc)| {
                old.get(peer) != Some(inc) && self.is_current(author, peer, *inc)
            })
        };
        new.inc > old.inc || added(&new.suspects, &old.suspects) || added(&new.doubts, &old.doubts)
    }

    /// Raises our incarnation above any vote that names our current one.
    /// Our own records are written here only, so one that is newer than ours, or differs
    /// at the same version, was written by an earlier life of this node (it restarted
    /// empty). Carry on above it: peers ignore records older than what they hold.
    fn resume(&mut self, past: &Record) -> bool {
        let own = Arc::make_mut(self.records.get_mut(self.me.as_str()).expect("own record"));
        if past.version < own.version || (past.version == own.version && past == own) {
            return false;
        }
        own.version = past.version.saturating_add(1);
        own.inc = own.inc.max(past.inc);
        true
    }

    /// (From the placed votes: `place_records` first.)
    fn refute(&mut self) -> bool {
        let me = self.me_place;
        let mine = self.incs[me];
        let highest = (self.authors.iter())
            .filter(|&&author| author != me)
            .filter_map(|&author| self.placed[author].as_ref()?.suspicion_of(me))
            .max();
        match highest {
            Some(voted) if voted >= mine => {
                let own =
                    Arc::make_mut(self.records.get_mut(self.me.as_str()).expect("own record"));
                own.inc = voted.saturating_add(1);
                own.version = own.version.saturating_add(1);
                true
            }
            _ => false,
        }
    }

    /// Re-derives every status and the doubted peers after a change to the records (in
    /// one pass: under a partition every record names half the cluster).
    fn rejudge(&mut self, urgent: bool) -> Changed {
        self.records_changes += 1;
        self.place_records();
        let confirmed = self.confirm();
        if confirmed {
            self.place_records(); // (the votes it cast are in our record's new version)
        }
        let places = self.by_name.len();
        let mut votes = vec![0usize; places];
        let mut doubters: Vec<Vec<usize>> = vec![Vec::new(); places];
        let mut doubts: Vec<usize> = Vec::new();
        let peers = self.nodes.len() - 1;
        let incs = &self.incs;
        let threshold = self.death_threshold();
        for &author in &self.authors {
            let placed = self.placed[author].as_ref().expect("placed above");
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
        for &author in &self.authors {
            let placed = self.placed[author].as_ref().expect("placed above");
            let dead = votes[author] >= threshold;
            for &(peer, inc) in placed.suspects.iter().chain(&placed.doubts) {
                named_by_others[peer] |= peer != author && !(dead && inc < incs[peer]);
            }
        }
        for &author in &self.authors {
            let placed = self.placed[author].as_ref().expect("placed above");
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
                continue; // most likely cut off itself: see `doubted`
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
            if place == self.me_place {
                continue;
            }
            let to = Status::judge(votes[place], threshold);
            if *status != to {
                changes.push(Change {
                    peer: self.by_name[place].clone(),
                    from: std::mem::replace(status, to),
                    to,
                    voters: Vec::new(),
                });
            }
        }
        for change in &mut changes {
            change.voters = self.voters(&change.peer);
        }
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
        let others = &mut self.doubted_by_others;
        others.fill(false);
        for &author in &self.authors {
            if author == self.me_place {
                continue;
            }
            let placed = self.placed[author].as_ref().expect("placed");
            for votes in [&placed.suspects, &placed.doubts] {
                for peer in standing(votes, author, &self.incs) {
                    others[peer] = true;
                }
            }
        }
        let confirmed: Vec<usize> = (0..others.len())
            .filter(|&p| self.unconfirmed[p] && others[p])
            .collect();
        for &place in &confirmed {
            self.unconfirmed[place] = false;
            let peer = self.by_name[place].clone();
            let inc = self.incarnation(&peer);
            let own = Arc::make_mut(self.records.get_mut(self.me.as_str()).expect("own record"));
            own.suspects.insert(peer, inc);
            own.version += 1;
        }
        !confirmed.is_empty()
    }

    pub fn view(&self) -> MembershipView {
        let mut view = MembershipView {
            incarnation: self.incarnation(&self.me),
            ..MembershipView::default()
        };
        for node in &self.nodes {
            view.incarnations
                .insert(node.clone(), self.incarnation(node));
            if *node == self.me {
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

/// Moves `place` forward in `by_name` (name order) to `name`, or to where it would be;
/// whether it is there.
fn seek(by_name: &[String], place: &mut usize, name: &str) -> bool {
    *place += by_name[*place..].partition_point(|n| n.as_str() < name);
    by_name.get(*place).is_some_and(|n| n == name)
}

/// The places of the peers in `votes` (by `author`'s place) whose vote still stands: not
/// about the author itself, and at an incarnation not yet refuted (`incs`, by place), as
/// `Detector::is_current` decides by name.
fn standing<'a>(
    votes: &'a [(usize, u64)],
    author: usize,
    incs: &'a [u64],
) -> impl Iterator<Item = usize> + 'a {
    votes
        .iter()
        .filter(move |&&(peer, inc)| peer != author && inc >= incs[peer])
        .map(|&(peer, _)| peer)
}

/// One record's suspicions and doubts, each as (the peer's place in name order, the
/// incarnation voted against), as of the record's version. (Votes against strangers have
/// no place and count for nothing.)
struct PlacedVotes {
    version: u64,
    suspects: Vec<(usize, u64)>,
    doubts: Vec<(usize, u64)>,
    /// How many peers it doubts or suspects, at any incarnation.
    named: usize,
}

impl PlacedVotes {
    fn of(r: &Record, by_name: &[String]) -> Self {
        // Both in name order: one walk through each.
        let placed = |votes: &BTreeMap<String, u64>| {
            let mut place = 0;
            votes
                .iter()
                .filter_map(|(peer, inc)| seek(by_name, &mut place, peer).then_some((place, *inc)))
                .collect()
        };
        let suspects: Vec<(usize, u64)> = placed(&r.suspects);
        let doubts: Vec<(usize, u64)> = placed(&r.doubts);
        let mut named: Vec<usize> = suspects.iter().chain(&doubts).map(|v| v.0).collect();
        named.sort_unstable();
        named.dedup();
        PlacedVotes {
            version: r.version,
            suspects,
            doubts,
            named: named.len(),
        }
    }

    /// The incarnation this record suspects the node at place `peer` at, if it does.
    fn suspicion_of(&self, peer: usize) -> Option<u64> {
        let i = self.suspects.binary_search_by_key(&peer, |v| v.0).ok()?;
        Some(self.suspects[i].1)
    }
}

#[cfg(test)]
mod tests {
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
