//! What the nemesis changes in the network: the partition, the lost links (ours) and
//! duplication (ours). Grudges are applied when a destination's delivery slot takes a
//! message (see `Network::poll`); duplication when a message is sent.

use super::{Grudge, Network};

impl Network {
    /// Adds a grudge (start of a partition).
    pub fn partition(&mut self, grudge: &Grudge) {
        add_grudge(self.partition.get_or_insert_default(), grudge);
    }

    /// Ends the partition, whatever its grudges (stop-partition heals everything).
    pub fn heal(&mut self) {
        self.partition = None;
    }

    /// Whether a partition is in force (since `partition`, until `heal`).
    pub fn is_partitioned(&self) -> bool {
        self.partition.is_some()
    }

    /// Starts one-way link loss: each receiver drops messages from its senders, like a
    /// grudge, until `restore_links`. Partitions and their healing leave it alone.
    pub fn lose_links(&mut self, lost: &Grudge) {
        add_grudge(self.lost_links.get_or_insert_default(), lost);
    }

    pub fn restore_links(&mut self) {
        self.lost_links = None;
    }

    /// Whether link loss is in force (since `lose_links`, until `restore_links`).
    pub fn links_lost(&self) -> bool {
        self.lost_links.is_some()
    }

    /// Turns duplication of messages between nodes on or off.
    pub fn set_duplicating(&mut self, on: bool) {
        self.duplicating = on;
    }

    pub fn is_duplicating(&self) -> bool {
        self.duplicating
    }
}

fn add_grudge(to: &mut Grudge, more: &Grudge) {
    for (receiver, senders) in more {
        to.entry(receiver.clone())
            .or_default()
            .extend(senders.iter().cloned());
    }
}
