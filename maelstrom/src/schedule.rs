//! When the main phase's ops happen: client ops and nemesis ops, each on its own Jepsen
//! `stagger`, both ending at the time limit (docs/maelstrom-compatibility.md 4, 5.3).
//! What the ops do belongs to the clients and the nemesis.

use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Jepsen's `stagger`: the first op at `start`, each later one a uniform [0, 2·interval)
/// after the previous one's scheduled time (mean gap = interval).
#[derive(Clone, Debug)]
pub struct Stagger {
    interval: Duration,
    next: Duration,
}

impl Stagger {
    pub fn new(interval: Duration, start: Duration) -> Self {
        Stagger {
            interval,
            next: start,
        }
    }

    pub fn next_time(&self) -> Duration {
        self.next
    }

    pub fn advance(&mut self, rng: &mut ChaCha8Rng) {
        let span = self.interval.as_nanos() as u64 * 2;
        let gap = if span == 0 {
            0
        } else {
            rng.random_range(0..span)
        };
        self.next += Duration::from_nanos(gap);
    }
}

/// The main phase's two staggers and its cutoff. A stagger whose next op falls at or after
/// the cutoff is dropped: the generator is exhausted.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    clients: Option<Stagger>,
    nemesis: Option<Stagger>,
    cutoff: Duration,
}

impl Schedule {
    /// Starts both staggers at `now` (the first op of each is due at once), for
    /// `time_limit`. No client stagger at rate 0; no nemesis stagger without faults.
    pub fn start(
        now: Duration,
        time_limit: Duration,
        rate: f64,
        nemesis_interval: Option<Duration>,
    ) -> Self {
        Schedule {
            clients: (rate > 0.0).then(|| Stagger::new(Duration::from_secs_f64(1.0 / rate), now)),
            nemesis: nemesis_interval.map(|interval| Stagger::new(interval, now)),
            cutoff: now + time_limit,
        }
    }

    /// Whether a nemesis op is due at `now`.
    pub fn nemesis_due(&mut self, now: Duration) -> bool {
        due(&mut self.nemesis, self.cutoff, now)
    }

    /// Whether a client op is due at `now`.
    pub fn client_due(&mut self, now: Duration) -> bool {
        due(&mut self.clients, self.cutoff, now)
    }

    /// The nemesis op that was due happened: schedules the next one.
    pub fn nemesis_done(&mut self, rng: &mut ChaCha8Rng) {
        if let Some(stagger) = self.nemesis.as_mut() {
            stagger.advance(rng);
        }
    }

    /// The client op that was due was handed to a worker: schedules the next one.
    pub fn client_done(&mut self, rng: &mut ChaCha8Rng) {
        if let Some(stagger) = self.clients.as_mut() {
            stagger.advance(rng);
        }
    }

    /// Whether the main phase is over at `now`: no client op is left, and no nemesis op
    /// (or the cutoff passed). Once it is, nothing more is scheduled.
    pub fn is_over(&mut self, now: Duration) -> bool {
        let over = self.clients.is_none() && (self.nemesis.is_none() || now >= self.cutoff);
        if over {
            self.nemesis = None;
        }
        over
    }

    /// When the next client op is due, if any.
    pub fn next_client(&self) -> Option<Duration> {
        self.clients.as_ref().map(Stagger::next_time)
    }

    /// When the next nemesis op is due, if any.
    pub fn next_nemesis(&self) -> Option<Duration> {
        self.nemesis.as_ref().map(Stagger::next_time)
    }
}

/// Whether `stagger`'s next op is due at `now`; a stagger past the cutoff is dropped. So
/// is one whose op could only be issued at or after the cutoff: Jepsen's time limit judges
/// an op by the time it is emitted, which is later than it was due when every thread was
/// busy (with a node that never answers, each op then waits out its timeout).
fn due(stagger: &mut Option<Stagger>, cutoff: Duration, now: Duration) -> bool {
    match stagger.as_ref().map(Stagger::next_time) {
        Some(at) if at >= cutoff || now >= cutoff => {
            *stagger = None;
            false
        }
        Some(at) => at <= now,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn s(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    #[test]
    fn stagger_starts_at_once_with_mean_gap_interval() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut s = Stagger::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(s.next_time(), Duration::from_secs(1));
        for _ in 0..10_000 {
            s.advance(&mut rng);
        }
        let mean = (s.next_time() - Duration::from_secs(1)).as_secs_f64() / 10_000.0;
        assert!((9.7..10.3).contains(&mean), "{mean}");
    }

    #[test]
    fn ops_are_due_until_the_cutoff() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut schedule = Schedule::start(s(1), s(10), 1.0, Some(s(3)));
        assert!(schedule.client_due(s(1)) && schedule.nemesis_due(s(1)));
        assert!(!schedule.is_over(s(1)));
        let mut clients = 0;
        while let Some(at) = schedule.next_client()
            && schedule.client_due(at)
        {
            clients += 1;
            schedule.client_done(&mut rng);
        }
        assert!(
            (4..=20).contains(&clients),
            "{clients} client ops in 10 s at rate 1"
        );
        assert_eq!(schedule.next_client(), None, "past the cutoff: dropped");
        assert!(!schedule.is_over(s(5)), "the nemesis runs to the cutoff");
        assert!(schedule.is_over(s(11)));
        assert_eq!(schedule.next_nemesis(), None);
    }

    #[test]
    fn an_op_that_could_only_start_after_the_cutoff_is_not_issued() {
        let mut schedule = Schedule::start(s(0), s(10), 1.0, None);
        assert!(schedule.client_due(s(0)));
        // Every thread was busy until past the cutoff: the op due before it is dropped.
        assert!(!schedule.client_due(s(10)));
        assert_eq!(schedule.next_client(), None);
        assert!(schedule.is_over(s(10)));
    }

    #[test]
    fn nothing_is_scheduled_without_rate_or_faults() {
        let mut schedule = Schedule::start(s(0), s(10), 0.0, None);
        assert!(!schedule.client_due(s(0)) && !schedule.nemesis_due(s(0)));
        assert!(schedule.is_over(s(0)));
        assert!(Schedule::default().is_over(Duration::ZERO));
    }
}
