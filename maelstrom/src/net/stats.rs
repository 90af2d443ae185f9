//! The network's journal (docs/maelstrom-compatibility.md 3.5): sends, receives and
//! distinct messages, for all traffic, client traffic and traffic between servers.

use crate::message::{Message, is_client};

/// send/recv/msg counts of one journal group (docs/maelstrom-compatibility.md 3.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub send_count: u64,
    pub recv_count: u64,
    pub msg_count: u64,
}

/// The three journal groups.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub all: Counts,
    pub clients: Counts,
    pub servers: Counts,
}

impl NetStats {
    pub(super) fn count(&mut self, message: &Message, send: bool) {
        let client = is_client(&message.src) || is_client(&message.dest);
        for counts in [
            &mut self.all,
            if client {
                &mut self.clients
            } else {
                &mut self.servers
            },
        ] {
            if send {
                counts.send_count += 1;
                // Every id is sent exactly once, so distinct ids = sends.
                counts.msg_count += 1;
            } else {
                counts.recv_count += 1;
            }
        }
    }
}
