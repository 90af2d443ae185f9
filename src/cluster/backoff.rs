//! Reconnect delays: exponential backoff with full jitter (each delay uniform between zero
//! and the current ceiling), so that peers that lost a node at the same moment do not all
//! redial it at the same moments.

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Ceilings `base`, `2·base`, `4·base`, ... up to `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
        }
    }

    /// The delay before the next attempt after one more failure.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(rng.random::<f64>())
    }

    /// A connection got through its handshake: start again from `base`.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn delays_stay_under_a_doubling_ceiling_up_to_the_cap() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let base = Duration::from_millis(50);
        let cap = Duration::from_millis(1000);
        let mut backoff = Backoff::new(base, cap);
        for attempt in 0..12u32 {
            let ceiling = (base * 2u32.pow(attempt.min(10))).min(cap);
            let delay = backoff.next_delay(&mut rng);
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
        }
        // Jitter is full: over many draws at the cap, delays spread over the whole range.
        let draws: Vec<Duration> = (0..200).map(|_| backoff.next_delay(&mut rng)).collect();
        assert!(draws.iter().any(|d| *d < cap / 4));
        assert!(draws.iter().any(|d| *d > cap * 3 / 4));
        backoff.reset();
        assert!(backoff.next_delay(&mut rng) <= base);
    }
}
