//! Round-trip estimates per peer and pooled over all peers, from which ack timeouts follow.

use std::time::Duration;

/// Smoothed round-trip time and variation (RFC 6298, but for the first sample, below),
/// measured on acks net of the time the peer held them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl Rtt {
    pub fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                // RFC 6298 takes half the first sample as its variation, a timeout of three
                // times that sample; a quarter gives twice. Under exponential latency the
                // first sample is often from the tail, and the few after it left the
                // timeout near three times that for seconds: a relay's probe of a child
                // that crashed as the workload began waited 1.6 s for its first strike,
                // and a root's first sample of 853 ms held a peer's pause undetected for
                // 6.2 s (docs/failure-detector.md).
                self.srtt = Some(rtt);
                self.rttvar = rtt / 4;
            }
            Some(srtt) => {
                let err = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + err) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
    }

    /// The smoothed round trip; `None` before any sample.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The retransmission timeout: srtt + 4·rttvar, at least `floor`; `None` before any
    /// sample.
    pub fn rto(&self, floor: Duration) -> Option<Duration> {
        self.srtt.map(|srtt| (srtt + self.rttvar * 4).max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn the_first_sample_gives_twice_itself() {
        let mut rtt = Rtt::default();
        rtt.sample(ms(300));
        assert_eq!(rtt.srtt(), Some(ms(300)));
        assert_eq!(rtt.rto(ms(100)), Some(ms(600)));
    }

    #[test]
    fn rtt_estimate_follows_samples_with_a_floor() {
        let mut rtt = Rtt::default();
        assert_eq!(rtt.rto(ms(100)), None);
        for _ in 0..50 {
            rtt.sample(ms(200));
        }
        let rto = rtt.rto(ms(250)).unwrap();
        assert_eq!(rto, ms(250), "steady samples converge to the floor");
        rtt.sample(ms(800));
        assert!(
            rtt.rto(ms(250)).unwrap() > ms(500),
            "a slow sample widens the timeout"
        );
    }
}
