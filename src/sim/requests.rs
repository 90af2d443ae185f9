//! Client requests built by hand, for tests that drive one state machine directly rather
//! than through a simulated cluster.

use crate::wire::{Envelope, Payload};

/// A request from client `c1` to `dest`.
pub fn request(dest: &str, msg_id: u64, payload: Payload) -> Envelope {
    let mut envelope = Envelope::new("c1", dest, payload);
    envelope.body.msg_id = Some(msg_id);
    envelope
}
