//! The latest record of every node known here, this node's own included, and each record's
//! votes by place: judging walks these instead of looking every vote up by name (under a
//! partition every record names half the cluster, and records change all the time).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::roster::{Roster, seek};
use crate::wire::{Record, Records};

/// No honest version or incarnation comes near this (a change a microsecond for a century
/// stays below it); a record with a larger number is ignored, so that no one can push a
/// counter to where adding one wraps it.
pub const MAX_COUNTER: u64 = 1 << 53;

/// Every number in the record is below `MAX_COUNTER`.
pub(super) fn plausible(record: &Record) -> bool {
    record.version < MAX_COUNTER
        && record.inc < MAX_COUNTER
        && record
            .suspects
            .values()
            .chain(record.doubts.values())
            .all(|inc| *inc < MAX_COUNTER)
}

pub(super) struct Ballots {
    records: Records,
    /// The places of the records' authors, in name order, while `records` holds as many.
    authors: Vec<usize>,
    /// Each record's votes, as of the record's version, indexed by its author's place.
    placed: Vec<Option<PlacedVotes>>,
    /// Every node's incarnation as of the last change to the records, by place.
    incs: Vec<u64>,
}

impl Ballots {
    /// Only this node's own record, empty.
    pub fn new(roster: &Roster) -> Self {
        let mut records = Records::new();
        records.insert(roster.me.as_str().into(), Arc::new(Record::default()));
        let mut ballots = Ballots {
            records,
            authors: vec![roster.me_place],
            placed: roster.by_name.iter().map(|_| None).collect(),
            incs: vec![0; roster.places()],
        };
        ballots.place(roster);
        ballots
    }

    pub fn records(&self) -> &Records {
        &self.records
    }

    pub fn incarnation(&self, node: &str) -> u64 {
        self.records.get(node).map_or(0, |r| r.inc)
    }

    /// Every node's incarnation by place, as of the last `place`.
    pub fn incs(&self) -> &[u64] {
        &self.incs
    }

    pub fn own(&self, roster: &Roster) -> &Record {
        &self.records[roster.me.as_str()]
    }

    /// Our own record, to be written (copied first if a message still shares it).
    pub fn own_mut(&mut self, roster: &Roster) -> &mut Record {
        Arc::make_mut(
            self.records
                .get_mut(roster.me.as_str())
                .expect("own record"),
        )
    }

    /// Each record's author's place with its placed votes, in name order.
    pub fn placed(&self) -> impl Iterator<Item = (usize, &PlacedVotes)> {
        (self.authors.iter()).map(|&author| {
            let placed = self.placed[author].as_ref().expect("placed");
            (author, placed)
        })
    }

    /// The places of the authors whose current vote says the peer at `peer` is suspected.
    pub fn voters(&self, peer: usize) -> impl Iterator<Item = usize> + '_ {
        let stands = move |author: usize| {
            let vote = self.placed[author].as_ref()?.suspicion_of(peer)?;
            (author != peer && vote >= self.incs[peer]).then_some(author)
        };
        self.authors
            .iter()
            .filter_map(move |&author| stands(author))
    }

    /// The incarnation the record of the node at `author` suspects the peer at `peer` at.
    pub fn suspicion(&self, author: usize, peer: usize) -> Option<u64> {
        self.placed[author].as_ref()?.suspicion_of(peer)
    }

    /// The record of the node at `author` doubts or suspects the node at `peer`, at any
    /// incarnation, as of the last `place`.
    pub fn names(&self, author: usize, peer: usize) -> bool {
        let names = |votes: &[(usize, u64)]| votes.binary_search_by_key(&peer, |v| v.0).is_ok();
        self.placed
            .get(author)
            .and_then(Option::as_ref)
            .is_some_and(|p| names(&p.doubts) || names(&p.suspects))
    }

    /// Brings `incs`, `authors` and `placed` up to date with the records.
    pub fn place(&mut self, roster: &Roster) {
        let by_name = &roster.by_name;
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

    /// Takes `record` as `author`'s (another node's) if it is newer than the one we hold:
    /// None if it is not, else whether it raises the author's incarnation or adds a doubt
    /// or suspicion that stands.
    pub fn accept(&mut self, author: &Arc<str>, record: &Arc<Record>) -> Option<bool> {
        let known = self.records.get(author).map_or(0, |r| r.version);
        if record.version <= known {
            return None;
        }
        let old = self.records.insert(author.clone(), record.clone());
        Some(self.adds_news(author, old.as_deref(), record))
    }

    /// Whether `new`, replacing `old` as `author`'s record, raises its incarnation or
    /// adds a doubt or suspicion that stands.
    fn adds_news(&self, author: &str, old: Option<&Record>, new: &Record) -> bool {
        let Some(old) = old else {
            return true;
        };
        // A doubt or suspicion stands if it is not about the author itself, and the peer
        // has not refuted it.
        let current = |peer: &str, inc: u64| author != peer && inc >= self.incarnation(peer);
        let added = |new: &BTreeMap<String, u64>, old: &BTreeMap<String, u64>| {
            (new.iter()).any(|(peer, inc)| old.get(peer) != Some(inc) && current(peer, *inc))
        };
        new.inc > old.inc || added(&new.suspects, &old.suspects) || added(&new.doubts, &old.doubts)
    }

    /// Our own records are written here only, so one that is newer than ours, or differs
    /// at the same version, was written by an earlier life of this node (it restarted
    /// empty). Carry on above it: peers ignore records older than what they hold.
    pub fn resume(&mut self, roster: &Roster, past: &Record) -> bool {
        let own = self.own_mut(roster);
        if past.version < own.version || (past.version == own.version && past == own) {
            return false;
        }
        own.version = past.version.saturating_add(1);
        own.inc = own.inc.max(past.inc);
        true
    }

    /// Raises our incarnation above any vote that names our current one. (From the placed
    /// votes: `place` first.)
    pub fn refute(&mut self, roster: &Roster) -> bool {
        let me = roster.me_place;
        let mine = self.incs[me];
        let highest = (self.authors.iter())
            .filter(|&&author| author != me)
            .filter_map(|&author| self.placed[author].as_ref()?.suspicion_of(me))
            .max();
        match highest {
            Some(voted) if voted >= mine => {
                let own = self.own_mut(roster);
                own.inc = voted.saturating_add(1);
                own.version = own.version.saturating_add(1);
                true
            }
            _ => false,
        }
    }
}

/// The places of the peers in `votes` (by `author`'s place) whose vote still stands: not
/// about the author itself, and at an incarnation not yet refuted (`incs`, by place).
pub(super) fn standing<'a>(
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
pub(super) struct PlacedVotes {
    version: u64,
    pub suspects: Vec<(usize, u64)>,
    pub doubts: Vec<(usize, u64)>,
    /// How many peers it doubts or suspects, at any incarnation.
    pub named: usize,
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
