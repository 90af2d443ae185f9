//! Our lossy, reordering network, a test option (off by default, not Maelstrom's): until
//! a moment of the test, each message between nodes is dropped with some probability, and
//! the others reach their destination's queue up to some delay late, so that later
//! messages overtake them; from then on the network is whole again. Its draws come from a
//! random source of its own: with it on, the latencies drawn stay the same.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lossy {
    /// The probability that a message between nodes is dropped.
    pub drop: f64,
    /// The most a message is held back (drawn uniformly in whole ms, 0 included).
    pub delay: Duration,
    /// Until when, in time since the test started: messages sent from then on are neither
    /// dropped nor held back.
    pub until: Duration,
}

impl Lossy {
    /// A message's fate: `None` if dropped, else how long it is held back.
    pub(super) fn fate(&self, rng: &mut ChaCha8Rng) -> Option<Duration> {
        if rng.random::<f64>() < self.drop {
            return None;
        }
        let most = self.delay.as_millis() as u64;
        Some(Duration::from_millis(rng.random_range(0..=most)))
    }
}

/// `DROP,DELAY_MS,UNTIL_MS`, e.g. `0.3,200,10000`.
impl std::str::FromStr for Lossy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected DROP,DELAY_MS,UNTIL_MS with DROP in [0, 1]");
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [drop, delay, until] = parts[..] else {
            return Err(bad());
        };
        let drop: f64 = drop.parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&drop) {
            return Err(bad());
        }
        let ms = |v: &str| v.parse().map(Duration::from_millis).map_err(|_| bad());
        Ok(Lossy {
            drop,
            delay: ms(delay)?,
            until: ms(until)?,
        })
    }
}

impl fmt::Display for Lossy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{}",
            self.drop,
            self.delay.as_millis(),
            self.until.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{Delivery, LatencyDist, Network};
    use rand::SeedableRng;
    use serde_json::json;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn net(dist: LatencyDist, lossy: Option<Lossy>, seed: u64) -> Network {
        let mut net = Network::new(20, dist, ChaCha8Rng::seed_from_u64(1));
        if let Some(lossy) = lossy {
            net.set_lossy(lossy, ChaCha8Rng::seed_from_u64(seed));
        }
        for id in ["n1", "n2", "c1"] {
            net.register(id);
        }
        net
    }

    /// n1 sends to n2 every ms from 0 to `count`, and c1 to n1 every 10 ms; everything is
    /// delivered by 10 s.
    fn run(net: &mut Network, count: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        for t in 0..count {
            out.extend(net.poll(ms(t)));
            net.send("n1", "n2", json!({"t": t}), ms(t)).unwrap();
            if t % 10 == 0 {
                net.send("c1", "n1", json!({}), ms(t)).unwrap();
            }
        }
        out.extend(net.poll(ms(10_000)));
        out
    }

    fn to_n2(deliveries: &[Delivery]) -> Vec<u64> {
        deliveries
            .iter()
            .filter(|d| d.message.dest == "n2")
            .map(|d| d.message.body.json()["t"].as_u64().unwrap())
            .collect()
    }

    const LOSSY: Lossy = Lossy {
        drop: 0.3,
        delay: Duration::from_millis(100),
        until: Duration::from_millis(1000),
    };

    #[test]
    fn drops_and_reorders_node_messages_until_the_window_ends() {
        let mut net = net(LatencyDist::Constant, Some(LOSSY), 7);
        let d = run(&mut net, 2000);
        let to_n2 = to_n2(&d);
        let (during, after): (Vec<u64>, Vec<u64>) = to_n2.iter().partition(|t| **t < 1000);
        assert!(
            (600..800).contains(&during.len()),
            "about 30% dropped: {} of 1000 delivered",
            during.len()
        );
        assert!(during.windows(2).any(|w| w[0] > w[1]), "reordered");
        assert_eq!(
            after,
            (1000..2000).collect::<Vec<u64>>(),
            "whole again, in order"
        );
        let clients = d.iter().filter(|d| d.message.dest == "n1").count();
        assert_eq!(clients, 200, "client traffic is never touched");
        let s = net.stats();
        assert_eq!(s.servers.send_count, 2000);
        assert_eq!(s.servers.recv_count as usize, to_n2.len());
    }

    #[test]
    fn seeded() {
        let same = |seed| to_n2(&run(&mut net(LatencyDist::Uniform, Some(LOSSY), seed), 500));
        assert_eq!(same(3), same(3));
        assert_ne!(same(3), same(4));
    }

    #[test]
    fn latencies_drawn_are_the_same_with_it_on() {
        let whole = Lossy {
            drop: 0.0,
            delay: Duration::ZERO,
            until: ms(10_000),
        };
        let due = |lossy| {
            let d = run(&mut net(LatencyDist::Exponential, lossy, 1), 300);
            d.iter().map(|d| (d.message.id, d.due)).collect::<Vec<_>>()
        };
        assert_eq!(due(Some(whole)), due(None));
    }

    #[test]
    fn parses_and_prints() {
        let lossy: Lossy = "0.3,100,1000".parse().unwrap();
        assert_eq!(lossy, LOSSY);
        assert_eq!(lossy.to_string(), "0.3,100,1000");
        for bad in ["", "0.3,100", "1.5,100,1000", "x,1,1", "0.3,-1,1"] {
            assert!(bad.parse::<Lossy>().is_err(), "{bad:?}");
        }
    }
}
