//! How often news about failures may go out ahead of the batch: a token bucket. A few
//! urgent flushes in a row go URGENT_GAP apart, as detection wants; a storm of them (records
//! change every few milliseconds when a partition begins) is paced to one per SLOW_GAP,
//! which cost a flush to every child each time.

use std::time::Duration;

/// The shortest gap between two flushes while the bucket has tokens.
pub(super) const URGENT_GAP: Duration = Duration::from_millis(50);
/// The gap once it is empty.
const SLOW_GAP: Duration = Duration::from_millis(250);
/// Urgent flushes allowed in a burst.
const BURST: u32 = 16;
/// One token comes back this often.
const REFILL: Duration = Duration::from_millis(500);

pub(super) struct Urgency {
    /// Tokens, as the time it takes to earn them (one per REFILL), as of `at`.
    credit: Duration,
    at: Duration,
}

impl Default for Urgency {
    fn default() -> Self {
        Urgency {
            credit: REFILL * BURST,
            at: Duration::ZERO,
        }
    }
}

impl Urgency {
    fn credit(&self, now: Duration) -> Duration {
        (self.credit + now.saturating_sub(self.at)).min(REFILL * BURST)
    }

    /// The least time after the last flush before urgent news may go.
    pub fn gap(&self, now: Duration) -> Duration {
        if self.credit(now) >= REFILL {
            URGENT_GAP
        } else {
            SLOW_GAP
        }
    }

    /// Urgent news went out at `now`: one token spent.
    pub fn spend(&mut self, now: Duration) {
        self.credit = self.credit(now).saturating_sub(REFILL);
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn a_burst_goes_fast_then_a_storm_is_paced_and_the_tokens_come_back() {
        let mut urgency = Urgency::default();
        let mut now = ms(1_000);
        // (1 ms apart: what comes back meanwhile is far from a token.)
        for _ in 0..BURST {
            assert_eq!(urgency.gap(now), URGENT_GAP);
            urgency.spend(now);
            now += ms(1);
        }
        assert_eq!(urgency.gap(now), SLOW_GAP);
        // One token back after REFILL; all of them after BURST of those.
        assert_eq!(urgency.gap(now + REFILL), URGENT_GAP);
        urgency.spend(now + REFILL);
        assert_eq!(urgency.gap(now + REFILL), SLOW_GAP);
        assert_eq!(urgency.credit(now + REFILL * 20), REFILL * BURST);
    }
}
