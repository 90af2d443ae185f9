//! The latency budget (`--latency-budget-ms`): the worst time the node aims for from a
//! client's write to that value at every node. What a value's trip costs besides waiting
//! is fixed: at each level of the overlay's tree one hop up and one down (a round trip,
//! measured) and a tick each way. What is left is spent on waits, where messages are
//! saved: on the way down one batch serves every child, so the wait goes there first;
//! holding values on the way up pays only once a node sees more than one write per wait,
//! so the up wait takes half only when the per-level wait is long.
//!
//! When writes are answered at once (`AckWhen::Local`) no client waits on the way up, so
//! values go up once per wait too, timed to reach the parent just before its next batch
//! down (`Waits::lead`): a value then waits about one wait in all, not one each way.

use std::time::Duration;

use crate::config::AckWhen;

/// The round trip assumed before any is measured (Maelstrom's fly.io settings: 100 ms
/// each way).
const GUESS_RTT: Duration = Duration::from_millis(200);
/// Per-level waits at least this long are split between the way up and the way down.
const SPLIT_FROM: Duration = Duration::from_millis(1500);
/// Kept back from the budget for scheduling jitter and variance in the round trip.
const MARGIN_PERCENT: u32 = 10;

/// How long values wait before they go down to the children and up to the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waits {
    pub down: Duration,
    pub up: Duration,
    /// Values go up this long before the parent's next batch down is due to leave, as
    /// the arrival of its last one tells (`Overlay::up_at`); `None`: `up` after the last
    /// message sent up.
    pub lead: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
pub struct Budget {
    total: Duration,
    /// Levels below the root in a tree of all the nodes.
    levels: u32,
    tick: Duration,
    ack_when: AckWhen,
}

impl Budget {
    pub fn new(
        total: Duration,
        nodes: usize,
        fanout: usize,
        tick: Duration,
        ack_when: AckWhen,
    ) -> Self {
        Budget {
            total,
            levels: levels(nodes, fanout),
            tick,
            ack_when,
        }
    }

    /// The waits that fit the budget, given the pooled smoothed round trip.
    pub fn waits(&self, srtt: Option<Duration>) -> Waits {
        let rtt = srtt.unwrap_or(GUESS_RTT);
        let fixed = (rtt + self.tick * 2) * self.levels + self.total * MARGIN_PERCENT / 100;
        let spare = self.total.saturating_sub(fixed);
        if self.ack_when == AckWhen::Local {
            // A value waits once on its way up at each level (the wait at the top is the
            // one timed to the root's batch) and once on its way down below the root.
            let wait = spare / (2 * self.levels - 1);
            return Waits {
                down: wait,
                up: wait,
                // A one-way trip there and back, and a tick at each end for the timers.
                lead: (!wait.is_zero()).then_some(rtt + self.tick * 2),
            };
        }
        let per_level = spare / self.levels;
        if per_level >= SPLIT_FROM {
            Waits {
                down: per_level / 2,
                up: per_level / 2,
                lead: None,
            }
        } else {
            Waits {
                down: per_level,
                up: Duration::ZERO,
                lead: None,
            }
        }
    }
}

/// Levels below the root of a heap with `fanout` children per node holding `nodes`.
fn levels(nodes: usize, fanout: usize) -> u32 {
    let fanout = fanout.max(1);
    let (mut levels, mut held, mut width) = (0, 1, 1usize);
    while held < nodes {
        width = width.saturating_mul(fanout);
        held = held.saturating_add(width);
        levels += 1;
    }
    levels.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn levels_of_the_tree() {
        assert_eq!(levels(2, 24), 1);
        assert_eq!(levels(25, 24), 1);
        assert_eq!(levels(26, 24), 2);
        assert_eq!(levels(601, 24), 2);
        assert_eq!(levels(602, 24), 3);
        assert_eq!(levels(8, 1), 7);
    }

    #[test]
    fn what_the_trip_does_not_cost_is_spent_on_waits() {
        let budget = Budget::new(ms(600), 25, 24, ms(10), AckWhen::Peer);
        // 600 - (200 + 20) - 60 = 320 ms, all of it on the way down.
        assert_eq!(
            budget.waits(Some(ms(200))),
            Waits {
                down: ms(320),
                up: ms(0),
                lead: None,
            }
        );
        // A longer round trip leaves less.
        assert_eq!(budget.waits(Some(ms(300))).down, ms(220));
        // Long waits are split; two levels share the budget.
        let long = Budget::new(ms(2000), 25, 24, ms(10), AckWhen::Peer);
        assert_eq!(long.waits(None).up, long.waits(None).down);
        let deep = Budget::new(ms(2000), 100, 24, ms(10), AckWhen::Peer);
        assert_eq!(deep.waits(Some(ms(200))).down, ms(680));
        // A budget below the trip's cost leaves nothing to wait.
        assert_eq!(
            Budget::new(ms(100), 25, 24, ms(10), AckWhen::Peer)
                .waits(None)
                .down,
            ms(0)
        );
    }

    #[test]
    fn answered_at_once_values_wait_once_per_level_each_way_timed_to_the_parents_batch() {
        let local = |nodes| Budget::new(ms(1600), nodes, 24, ms(10), AckWhen::Local);
        // 1600 - (200 + 20) - 160 = 1220 ms, the same up and down, sent up 220 ms ahead.
        assert_eq!(
            local(25).waits(Some(ms(200))),
            Waits {
                down: ms(1220),
                up: ms(1220),
                lead: Some(ms(220)),
            }
        );
        // Two levels: up twice and down once below the root, in what the trips leave.
        assert_eq!(local(100).waits(Some(ms(200))).down, ms(1000) / 3);
        // Nothing left to wait: nothing to time.
        let short = Budget::new(ms(100), 25, 24, ms(10), AckWhen::Local);
        assert_eq!(short.waits(None).lead, None);
    }
}
