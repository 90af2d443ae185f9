//! The fault injector of the TCP transport: one TCP proxy per directed link `a → b` on
//! loopback. Node `a` is told that peer `b` lives at the proxy's address, and the proxy
//! forwards every connection it accepts to `b`'s peer port, bytes unchanged (TLS passes
//! through: the proxy sees ciphertext only). It injects what the harness's network model
//! decides:
//!
//! - latency: every chunk read, in either direction, is written after a delay drawn from
//!   `--latency`/`--latency-dist`, never before an earlier chunk of the same direction
//!   (TCP keeps order);
//! - a cut link (a partition or a lost link, whichever grudge names it): in `hold` mode
//!   bytes stop moving both ways and move again at heal, as behind a firewall's DROP rule
//!   (TCP retransmits them then, unless an end gave up on the connection first); in
//!   `reset` mode every connection of the link is reset at once and new ones are reset as
//!   they come, until heal.
//!
//! Bytes and connections are counted per link, and how late each chunk was written
//! against its due time is sampled: the proxy's own accuracy.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::edn::Edn;
use crate::net::{Grudge, LatencyDist};

/// Bytes read at once from one side.
const CHUNK: usize = 16 * 1024;
/// Chunks held per direction before the proxy stops reading (then TCP pushes back).
const MAX_HELD: usize = 256;
/// Lateness samples kept (beyond that, every later chunk is still forwarded, not sampled).
const MAX_SAMPLES: usize = 1 << 20;

/// What a cut link does to its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionMode {
    /// Bytes wait in the proxy until heal (a firewall's DROP).
    Hold,
    /// Connections are reset, and new ones refused (reset), until heal.
    Reset,
}

impl PartitionMode {
    pub fn name(self) -> &'static str {
        match self {
            PartitionMode::Hold => "hold",
            PartitionMode::Reset => "reset",
        }
    }
}

impl std::str::FromStr for PartitionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hold" => Ok(PartitionMode::Hold),
            "reset" => Ok(PartitionMode::Reset),
            _ => Err(format!("unknown partition mode {s:?} (hold, reset)")),
        }
    }
}

/// The latency model of every link.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub mean_ms: u64,
    pub dist: LatencyDist,
}

impl Latency {
    /// One draw, as the harness's network draws a message's latency.
    fn draw(&self, rng: &mut ChaCha8Rng) -> Duration {
        let l = self.mean_ms;
        let ms = match self.dist {
            _ if l == 0 => 0.0,
            LatencyDist::Constant => l as f64,
            LatencyDist::Uniform => rng.random_range(0.0..2.0 * l as f64),
            LatencyDist::Exponential => {
                let u: f64 = rng.random();
                -(1.0 - u).ln() * l as f64
            }
        };
        Duration::from_secs_f64(ms / 1000.0)
    }
}

/// Whether a link is cut, and how many times its connections were reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LinkState {
    cut: bool,
    resets: u64,
}

/// One direction's byte count and the connections of a link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Bytes from the dialing node to the peer, and back.
    pub bytes_forward: AtomicU64,
    pub bytes_back: AtomicU64,
    pub connections: AtomicU64,
    /// Connections reset at a cut, or refused (reset at once) while cut.
    pub resets: AtomicU64,
    pub refused: AtomicU64,
}

struct Link {
    from: String,
    to: String,
    addr: SocketAddr,
    state: watch::Sender<LinkState>,
    counters: Arc<LinkCounters>,
}

/// Every link's proxy, on a tokio runtime of the caller's.
pub struct Proxies {
    links: Vec<Link>,
    mode: PartitionMode,
    partition: Grudge,
    lost: Grudge,
    lateness: Arc<Mutex<Vec<f32>>>,
}

impl Proxies {
    /// Binds one proxy per ordered pair of `nodes` (id, peer port) on loopback and starts
    /// forwarding; must be called within the tokio runtime `rt`.
    pub async fn start(
        nodes: &[(String, SocketAddr)],
        mode: PartitionMode,
        latency: Latency,
        seed: u64,
    ) -> std::io::Result<Proxies> {
        let lateness = Arc::new(Mutex::new(Vec::new()));
        let mut links = Vec::new();
        for (from, _) in nodes {
            for (to, upstream) in nodes.iter().filter(|(to, _)| to != from) {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let (state, _) = watch::channel(LinkState::default());
                let link = Link {
                    from: from.clone(),
                    to: to.clone(),
                    addr: listener.local_addr()?,
                    state,
                    counters: Arc::default(),
                };
                let forwarder = Forwarder {
                    upstream: *upstream,
                    mode,
                    latency,
                    seed: seed ^ (links.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    state: link.state.subscribe(),
                    counters: link.counters.clone(),
                    lateness: lateness.clone(),
                };
                tokio::spawn(forwarder.accept(listener));
                links.push(link);
            }
        }
        Ok(Proxies {
            links,
            mode,
            partition: Grudge::new(),
            lost: Grudge::new(),
            lateness,
        })
    }

    /// The address node `from` must dial to reach `to`.
    pub fn address(&self, from: &str, to: &str) -> Option<SocketAddr> {
        self.links
            .iter()
            .find(|l| l.from == from && l.to == to)
            .map(|l| l.addr)
    }

    /// A partition (receiver → senders it must not hear) starts; `None` heals it.
    pub fn partition(&mut self, grudge: Option<&Grudge>) {
        self.partition = grudge.cloned().unwrap_or_default();
        self.apply();
    }

    /// One-way link loss starts; `None` restores every lost link.
    pub fn lose_links(&mut self, grudge: Option<&Grudge>) {
        self.lost = grudge.cloned().unwrap_or_default();
        self.apply();
    }

    /// Link `from → to` is cut when `to` holds a grudge against `from`: the connection
    /// that carries `from`'s messages to `to` stops, both ways (a firewall drops the
    /// dialer's acknowledgements too).
    fn apply(&self) {
        let holds = |g: &Grudge, l: &Link| g.get(&l.to).is_some_and(|s| s.contains(&l.from));
        for link in &self.links {
            let cut = holds(&self.partition, link) || holds(&self.lost, link);
            let reset = self.mode == PartitionMode::Reset;
            link.state.send_if_modified(|s| {
                if s.cut == cut {
                    return false;
                }
                s.cut = cut;
                if cut && reset {
                    s.resets += 1;
                }
                true
            });
        }
    }

    /// `{:mode :hold, :lateness-ms {0.5 .. 0.99 .. 1 ..}, :bytes N, :connections N,
    ///   :links {"n0->n1" {:bytes-forward .. :bytes-back .. :connections .. ...}}}`
    pub fn report(&self) -> Edn {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
        let mut total_bytes = 0;
        let mut total_connections = 0;
        let links = self
            .links
            .iter()
            .map(|l| {
                let c = &l.counters;
                total_bytes += get(&c.bytes_forward) + get(&c.bytes_back);
                total_connections += get(&c.connections);
                (
                    Edn::Str(format!("{}->{}", l.from, l.to)),
                    Edn::kw_map([
                        ("bytes-forward", Edn::Int(get(&c.bytes_forward))),
                        ("bytes-back", Edn::Int(get(&c.bytes_back))),
                        ("connections", Edn::Int(get(&c.connections))),
                        ("resets", Edn::Int(get(&c.resets))),
                        ("refused", Edn::Int(get(&c.refused))),
                    ]),
                )
            })
            .collect();
        let mut lateness = self.lateness.lock().expect("lateness lock").clone();
        lateness.sort_by(f32::total_cmp);
        Edn::kw_map([
            ("mode", Edn::kw(self.mode.name())),
            ("lateness-ms", quantiles(&lateness)),
            ("chunks-measured", Edn::Int(lateness.len() as i64)),
            ("bytes", Edn::Int(total_bytes)),
            ("connections", Edn::Int(total_connections)),
            ("links", Edn::Map(links)),
        ])
    }

    /// The lateness samples so far, in ms (for tests).
    pub fn lateness_ms(&self) -> Vec<f32> {
        self.lateness.lock().expect("lateness lock").clone()
    }

    pub fn counters(&self, from: &str, to: &str) -> Option<Arc<LinkCounters>> {
        self.links
            .iter()
            .find(|l| l.from == from && l.to == to)
            .map(|l| l.counters.clone())
    }
}

/// `{0.5 x, 0.95 x, 0.99 x, 1 x}` of sorted samples.
fn quantiles(sorted: &[f32]) -> Edn {
    let q = |p: f64| {
        if sorted.is_empty() {
            return Edn::Nil;
        }
        let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
        Edn::Float((f64::from(sorted[i]) * 1000.0).round() / 1000.0)
    };
    Edn::Map(vec![
        (Edn::Float(0.5), q(0.5)),
        (Edn::Float(0.95), q(0.95)),
        (Edn::Float(0.99), q(0.99)),
        (Edn::Int(1), q(1.0)),
    ])
}

/// What every connection of one link shares.
#[derive(Clone)]
struct Forwarder {
    upstream: SocketAddr,
    mode: PartitionMode,
    latency: Latency,
    seed: u64,
    state: watch::Receiver<LinkState>,
    counters: Arc<LinkCounters>,
    lateness: Arc<Mutex<Vec<f32>>>,
}

impl Forwarder {
    async fn accept(self, listener: TcpListener) {
        let mut n = 0u64;
        loop {
            let Ok((inbound, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = inbound.set_nodelay(true);
            if self.mode == PartitionMode::Reset && self.state.borrow().cut {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                reset(inbound);
                continue;
            }
            n += 1;
            let forwarder = Forwarder {
                seed: self
                    .seed
                    .wrapping_add(n.wrapping_mul(0x2545_f491_4f6c_dd1d)),
                ..self.clone()
            };
            tokio::spawn(forwarder.connection(inbound));
        }
    }

    async fn connection(self, mut inbound: TcpStream) {
        // The peer being down looks the same from the dialer: refused.
        let Ok(mut upstream) = TcpStream::connect(self.upstream).await else {
            reset(inbound);
            return;
        };
        let _ = upstream.set_nodelay(true);
        let LinkState {
            cut,
            resets: resets_at_start,
        } = *self.state.borrow();
        if cut && self.mode == PartitionMode::Reset {
            // Cut while connecting upstream: refused like the connections after it.
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            reset(inbound);
            reset(upstream);
            return;
        }
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let ended_cleanly = {
            let (in_read, in_write) = inbound.split();
            let (up_read, up_write) = upstream.split();
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            let back_rng = ChaCha8Rng::seed_from_u64(rng.random());
            let forward = self.pipe(in_read, up_write, rng, &self.counters.bytes_forward);
            let back = self.pipe(up_read, in_write, back_rng, &self.counters.bytes_back);
            let mut state = self.state.clone();
            let reset_signal = async move {
                let _ = state.wait_for(|s| s.resets != resets_at_start).await;
            };
            // An error either way (a reset, a dead end) ends both at once, as one TCP
            // connection would; clean ends (half closes) wait for each other.
            tokio::select! {
                ends = async { tokio::try_join!(forward, back) } => ends.is_ok(),
                _ = reset_signal => {
                    self.counters.resets.fetch_add(1, Ordering::Relaxed);
                    false
                }
            }
        };
        if !ended_cleanly {
            reset(inbound);
            reset(upstream);
        }
    }

    /// Moves bytes from `from` to `to`, each chunk at its due time, none while the link is
    /// cut. Ends at EOF (passed on as a half close) or at the first error.
    async fn pipe<R, W>(
        &self,
        mut from: R,
        mut to: W,
        mut rng: ChaCha8Rng,
        bytes: &AtomicU64,
    ) -> std::io::Result<()>
    where
        R: AsyncReadExt + Unpin,
        W: AsyncWriteExt + Unpin,
    {
        let mut state = self.state.clone();
        // Each chunk: due time, bytes, and whether it waited out a cut.
        let mut held: VecDeque<(Instant, Vec<u8>, bool)> = VecDeque::new();
        let mut buf = vec![0u8; CHUNK];
        let mut eof = false;
        let mut last_due = Instant::now();
        loop {
            if eof && held.is_empty() {
                return to.shutdown().await;
            }
            let cut = state.borrow_and_update().cut;
            if cut {
                held.iter_mut().for_each(|chunk| chunk.2 = true);
            }
            let head = held.front().map(|(due, _, _)| *due);
            tokio::select! {
                read = from.read(&mut buf), if !eof && held.len() < MAX_HELD => {
                    let n = read?;
                    if n == 0 {
                        eof = true;
                    } else {
                        let due = (Instant::now() + self.latency.draw(&mut rng)).max(last_due);
                        last_due = due;
                        held.push_back((due, buf[..n].to_vec(), cut));
                    }
                }
                _ = tokio::time::sleep_until(head.unwrap_or_else(Instant::now)), if head.is_some() && !cut => {
                    // Every chunk due by now goes in this wake-up, not one per wake-up.
                    let now = Instant::now();
                    while let Some((due, chunk, waited_out_a_cut)) =
                        held.pop_front_if(|(due, _, _)| *due <= now)
                    {
                        to.write_all(&chunk).await?;
                        bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        if !waited_out_a_cut {
                            self.sample(Instant::now().saturating_duration_since(due));
                        }
                    }
                }
                changed = state.changed() => {
                    if changed.is_err() {
                        return Ok(()); // the proxies are gone
                    }
                }
            }
        }
    }

    /// How late a chunk was written (chunks that waited out a cut are not sampled: that
    /// wait is the fault, not the proxy's lateness).
    fn sample(&self, late: Duration) {
        let mut samples = self.lateness.lock().expect("lateness lock");
        if samples.len() < MAX_SAMPLES {
            samples.push(late.as_secs_f32() * 1000.0);
        }
    }
}

/// Closes with a reset (SO_LINGER 0) rather than a FIN.
fn reset(stream: TcpStream) {
    #[allow(deprecated)] // set_linger's warning is about blocking closes; ours is 0
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An upstream that echoes every byte back, and its address.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    /// Proxies for nodes `a` and `b`, where `b` is an echo server.
    async fn pair(mode: PartitionMode, latency_ms: u64) -> Proxies {
        let b = echo_server().await;
        let nodes = [("a".to_string(), b), ("b".to_string(), b)];
        let latency = Latency {
            mean_ms: latency_ms,
            dist: LatencyDist::Constant,
        };
        Proxies::start(&nodes, mode, latency, 1).await.unwrap()
    }

    fn a_cut_from_b() -> Grudge {
        Grudge::from([("b".into(), ["a".into()].into())])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bytes_arrive_in_order_and_unchanged_both_ways() {
        let proxies = pair(PartitionMode::Hold, 1).await;
        let mut stream = TcpStream::connect(proxies.address("a", "b").unwrap())
            .await
            .unwrap();
        let mut sent = vec![0u8; 1 << 20];
        rand::rng().fill_bytes(&mut sent);
        let (mut r, mut w) = stream.split();
        let write = async {
            for piece in sent.chunks(7919) {
                w.write_all(piece).await.unwrap();
            }
        };
        let mut echoed = vec![0u8; sent.len()];
        let read = r.read_exact(&mut echoed);
        let (_, read) = tokio::join!(write, read);
        read.unwrap();
        assert!(echoed == sent, "the bytes came back changed or reordered");
        let counters = proxies.counters("a", "b").unwrap();
        assert_eq!(counters.bytes_forward.load(Ordering::Relaxed), 1 << 20);
        assert_eq!(counters.bytes_back.load(Ordering::Relaxed), 1 << 20);
        assert_eq!(counters.connections.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn held_bytes_arrive_after_heal() {
        let mut proxies = pair(PartitionMode::Hold, 0).await;
        let mut stream = TcpStream::connect(proxies.address("a", "b").unwrap())
            .await
            .unwrap();
        proxies.partition(Some(&a_cut_from_b()));
        stream.write_all(b"held").await.unwrap();
        let mut buf = [0u8; 4];
        let early = tokio::time::timeout(Duration::from_millis(500), stream.read_exact(&mut buf));
        assert!(early.await.is_err(), "nothing crosses a cut link");
        proxies.partition(None);
        let late = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf));
        late.await.expect("delivered after heal").unwrap();
        assert_eq!(&buf, b"held");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reset_mode_resets_and_refuses_until_heal() {
        let mut proxies = pair(PartitionMode::Reset, 0).await;
        let addr = proxies.address("a", "b").unwrap();
        let mut before = TcpStream::connect(addr).await.unwrap();
        before.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        before.read_exact(&mut buf).await.unwrap();
        proxies.partition(Some(&a_cut_from_b()));
        let ended = tokio::time::timeout(Duration::from_secs(5), before.read(&mut buf)).await;
        assert!(
            matches!(ended, Ok(Err(_)) | Ok(Ok(0))),
            "the open connection is reset: {ended:?}"
        );
        // A new connection is accepted by the kernel, then reset before any byte crosses
        // (so soon that connecting may already fail).
        if let Ok(mut during) = TcpStream::connect(addr).await {
            let _ = during.write_all(b"ping").await;
            let refused = tokio::time::timeout(Duration::from_secs(5), during.read(&mut buf)).await;
            assert!(
                matches!(refused, Ok(Err(_)) | Ok(Ok(0))),
                "refused while cut: {refused:?}"
            );
        }
        proxies.partition(None);
        let mut after = TcpStream::connect(addr).await.unwrap();
        after.write_all(b"pong").await.unwrap();
        after.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        let counters = proxies.counters("a", "b").unwrap();
        assert_eq!(counters.resets.load(Ordering::Relaxed), 1);
        assert!(counters.refused.load(Ordering::Relaxed) >= 1);
    }

    /// 25 nodes (600 links), a ping every 250 ms on every link, 100 ms each way: no round
    /// trip is early, the median is the model's, and the proxies write chunks close to
    /// their due time. The bounds are generous, for a loaded 2-core machine; the figures
    /// are printed (`--nocapture`), and the same lateness is in every run's results
    /// (`:runner :proxy :lateness-ms`). `PROXY_TEST_NODES` changes the size.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn latency_follows_the_model_with_25_nodes() {
        let mut nodes = Vec::new();
        let n: usize = std::env::var("PROXY_TEST_NODES").map_or(25, |v| v.parse().unwrap());
        for i in 0..n {
            nodes.push((format!("n{i}"), echo_server().await));
        }
        let latency = Latency {
            mean_ms: 100,
            dist: LatencyDist::Constant,
        };
        let proxies = Proxies::start(&nodes, PartitionMode::Hold, latency, 7)
            .await
            .unwrap();
        let mut pingers = Vec::new();
        for (from, _) in &nodes {
            for (to, _) in nodes.iter().filter(|(to, _)| to != from) {
                let addr = proxies.address(from, to).unwrap();
                // Spread over the period, as nodes' messages are: not all in one instant.
                let offset =
                    Duration::from_millis(250) * pingers.len() as u32 / (n * (n - 1)) as u32;
                pingers.push(tokio::spawn(async move {
                    tokio::time::sleep(offset).await;
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut rtts = Vec::new();
                    let mut buf = [0u8; 64];
                    for _ in 0..12 {
                        let start = Instant::now();
                        stream.write_all(&buf).await.unwrap();
                        stream.read_exact(&mut buf).await.unwrap();
                        rtts.push(start.elapsed().as_secs_f64() * 1000.0);
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    rtts
                }));
            }
        }
        let mut rtts = Vec::new();
        for p in pingers {
            rtts.extend(p.await.unwrap());
        }
        rtts.sort_by(f64::total_cmp);
        let p99 = rtts[rtts.len() * 99 / 100];
        let mut late = proxies.lateness_ms();
        late.sort_by(f32::total_cmp);
        let late_p99 = late[late.len() * 99 / 100];
        eprintln!(
            "{} round trips: p50 {:.1} ms, p90 {:.1}, p99 {p99:.1} ms, max {:.1}; proxy lateness p99 {late_p99:.2} ms",
            rtts.len(),
            rtts[rtts.len() / 2],
            rtts[rtts.len() * 9 / 10],
            rtts[rtts.len() - 1]
        );
        assert!(rtts[0] >= 200.0, "never early: {}", rtts[0]);
        let p50 = rtts[rtts.len() / 2];
        assert!(p50 < 215.0, "median round trip {p50} ms");
        assert!(p99 < 400.0, "p99 round trip {p99} ms");
        assert!(late_p99 < 20.0, "p99 lateness {late_p99} ms");
    }
}
