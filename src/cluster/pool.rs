//! Outbound connections: one persistent connection per peer, dialed by this node and used
//! only to write (a node reads only on connections it accepted, so two nodes dialing each
//! other at once need no tie-break). Each peer has a writer task behind a bounded queue
//! that the machine's task fills without waiting: a slow, stopped or dead peer never holds
//! up the others. A full queue drops the message and counts it, and so does a message that
//! waited too long to be written; gossip sends again what was not acknowledged.
//!
//! A dial that fails, a handshake that times out, a write that fails or times out, and a
//! connection the peer closed are reported as the peer being unreachable, and a connection
//! made as connected; the machine decides what either means.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::frame;
use super::tls::{self, Tls};
use crate::event::Event;

/// Tunables of the outbound connections.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// TCP connect plus TLS handshake.
    pub dial_timeout: Duration,
    /// One frame written to the socket.
    pub write_timeout: Duration,
    /// Messages waiting per peer.
    pub queue: usize,
    /// A message that waited longer than this for its turn is dropped unwritten. Its
    /// exchange has timed out or nearly, and gossip sends what it carried again; written
    /// once a cut link is back, a partition's worth of old probes drew an answer each.
    pub max_queue_age: Duration,
    /// Reconnect delays: full jitter under a ceiling doubling from `backoff_base` to
    /// `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    pub keepalive: Duration,
    /// Written bytes unacknowledged by the peer's kernel this long break the connection
    /// (TCP_USER_TIMEOUT). Without it a cut link fills the socket buffer quietly, and the
    /// connection waits out TCP's doubling retransmission timer after the link is back.
    pub unacked_timeout: Duration,
    pub max_frame: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            dial_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(2),
            queue: 4096,
            max_queue_age: Duration::from_secs(1),
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(1),
            keepalive: Duration::from_secs(10),
            unacked_timeout: Duration::from_secs(2),
            max_frame: frame::MAX_FRAME,
        }
    }
}

/// Counters of one outbound link, readable while the writer runs.
#[derive(Debug, Default)]
pub struct LinkCounters {
    messages: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    expired: AtomicU64,
    connects: AtomicU64,
    failures: AtomicU64,
    connected: AtomicBool,
}

/// A snapshot of `LinkCounters`, as the `stats` reply shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub messages_sent: u64,
    pub bytes_sent: u64,
    /// Messages dropped because the queue was full.
    pub queue_drops: u64,
    /// Messages dropped unwritten because they waited longer than `max_queue_age`.
    pub queue_expired: u64,
    /// Connections established after the first one.
    pub reconnects: u64,
    /// Dials, handshakes and writes that failed.
    pub failures: u64,
    pub connected: bool,
}

impl LinkCounters {
    pub fn snapshot(&self) -> LinkStats {
        LinkStats {
            messages_sent: self.messages.load(Ordering::Relaxed),
            bytes_sent: self.bytes.load(Ordering::Relaxed),
            queue_drops: self.dropped.load(Ordering::Relaxed),
            queue_expired: self.expired.load(Ordering::Relaxed),
            reconnects: self.connects.load(Ordering::Relaxed).saturating_sub(1),
            failures: self.failures.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
        }
    }
}

/// A frame and when it was queued.
type Queued = (Instant, String);

struct Link {
    queue: mpsc::Sender<Queued>,
    counters: Arc<LinkCounters>,
}

/// The outbound side of a node: a writer task per peer.
pub struct Pool {
    links: BTreeMap<String, Link>,
    writers: JoinSet<()>,
}

/// Where and how to reach one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub id: String,
    /// `host:port`; the host is resolved again on every dial.
    pub addr: String,
}

impl Pool {
    /// Starts a writer per peer. `link_events` receives `Event::Unreachable` each time a
    /// dial, a handshake or a write to a peer fails, or it closes the connection, and
    /// `Event::Connected` each time a connection to it is made.
    pub fn start(
        peers: &[Peer],
        tls: Option<Tls>,
        config: PoolConfig,
        link_events: mpsc::UnboundedSender<Event>,
    ) -> Pool {
        let mut links = BTreeMap::new();
        let mut writers = JoinSet::new();
        for peer in peers {
            let (queue, rx) = mpsc::channel(config.queue);
            let counters = Arc::new(LinkCounters::default());
            let writer = Writer {
                peer: peer.clone(),
                tls: tls.clone(),
                config: config.clone(),
                counters: counters.clone(),
                link_events: link_events.clone(),
            };
            writers.spawn(writer.run(rx));
            links.insert(peer.id.clone(), Link { queue, counters });
        }
        Pool { links, writers }
    }

    pub fn has(&self, peer: &str) -> bool {
        self.links.contains_key(peer)
    }

    /// Queues one frame for `peer` without waiting. False when the peer is unknown or its
    /// queue is full (the frame is dropped and counted).
    pub fn send(&self, peer: &str, frame: String) -> bool {
        let Some(link) = self.links.get(peer) else {
            warn!(peer, "no connection to an unknown peer");
            return false;
        };
        match link.queue.try_send((Instant::now(), frame)) {
            Ok(()) => true,
            Err(_) => {
                link.counters.dropped.fetch_add(1, Ordering::Relaxed);
                debug!(peer, "queue full: message dropped");
                false
            }
        }
    }

    /// Live counters per peer, for whoever reports them while the pool runs.
    pub fn counters(&self) -> BTreeMap<String, Arc<LinkCounters>> {
        self.links
            .iter()
            .map(|(peer, link)| (peer.clone(), link.counters.clone()))
            .collect()
    }

    pub fn stats(&self) -> BTreeMap<String, LinkStats> {
        self.links
            .iter()
            .map(|(peer, link)| (peer.clone(), link.counters.snapshot()))
            .collect()
    }

    /// Stops taking messages and lets the writers send what is queued, for at most
    /// `grace`; writers still busy then are cut off.
    pub async fn close(mut self, grace: Duration) {
        self.links.clear();
        if timeout(grace, async {
            while self.writers.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            warn!("outbound queues not flushed within {grace:?}");
            self.writers.abort_all();
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One peer's writer task.
struct Writer {
    peer: Peer,
    tls: Option<Tls>,
    config: PoolConfig,
    counters: Arc<LinkCounters>,
    link_events: mpsc::UnboundedSender<Event>,
}

impl Writer {
    async fn run(self, mut queue: mpsc::Receiver<Queued>) {
        let mut backoff = Backoff::new(self.config.backoff_base, self.config.backoff_cap);
        let mut rng = StdRng::from_os_rng();
        loop {
            let stream = match timeout(self.config.dial_timeout, self.dial()).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    self.failed(&format!("dial: {e}"));
                    if self.pause(&queue, backoff.next_delay(&mut rng)).await {
                        return;
                    }
                    continue;
                }
                Err(_) => {
                    self.failed("dial timed out");
                    if self.pause(&queue, backoff.next_delay(&mut rng)).await {
                        return;
                    }
                    continue;
                }
            };
            backoff.reset();
            let connects = self.counters.connects.fetch_add(1, Ordering::Relaxed);
            self.counters.connected.store(true, Ordering::Relaxed);
            if connects == 0 {
                debug!(peer = %self.peer.id, "connected");
            } else {
                info!(peer = %self.peer.id, "reconnected");
            }
            let _ = (self.link_events).send(Event::Connected(self.peer.id.clone()));
            let closed = self.write_until_broken(stream, &mut queue).await;
            self.counters.connected.store(false, Ordering::Relaxed);
            match closed {
                Ok(()) => return,
                Err(why) => self.failed(&why),
            }
        }
    }

    async fn dial(&self) -> io::Result<Box<dyn Stream>> {
        let tcp = TcpStream::connect(self.peer.addr.as_str()).await?;
        tcp.set_nodelay(true)?;
        let keepalive = TcpKeepalive::new()
            .with_time(self.config.keepalive)
            .with_interval(self.config.keepalive);
        let socket = SockRef::from(&tcp);
        socket.set_tcp_keepalive(&keepalive)?;
        socket.set_tcp_user_timeout(Some(self.config.unacked_timeout))?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(tls) => {
                let name = tls::server_name(&self.peer.id).map_err(io::Error::other)?;
                Ok(Box::new(tls.connector.connect(name, tcp).await?))
            }
        }
    }

    /// Writes queued frames until the queue closes (Ok) or the connection breaks (Err).
    async fn write_until_broken(
        &self,
        stream: Box<dyn Stream>,
        queue: &mut mpsc::Receiver<Queued>,
    ) -> Result<(), String> {
        let (mut read_half, write_half) = tokio::io::split(stream);
        // Nothing is expected on a dialed connection; reading notices when the peer closes it.
        let (closed_tx, mut closed) = oneshot::channel::<String>();
        let drain = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let why = loop {
                match read_half.read(&mut buf).await {
                    Ok(0) => break "closed by the peer".to_string(),
                    Ok(_) => {}
                    Err(e) => break format!("read: {e}"),
                }
            };
            let _ = closed_tx.send(why);
        });
        let mut out = frame::writer(write_half, self.config.max_frame);
        let result = loop {
            tokio::select! {
                why = &mut closed => break Err(why.unwrap_or_else(|_| "closed".to_string())),
                next = queue.recv() => {
                    let Some((queued_at, line)) = next else {
                        let _ = timeout(self.config.write_timeout, SinkExt::<String>::close(&mut out)).await;
                        break Ok(());
                    };
                    if queued_at.elapsed() > self.config.max_queue_age {
                        self.counters.expired.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let len = line.len() as u64 + 1;
                    match timeout(self.config.write_timeout, out.send(line)).await {
                        Ok(Ok(())) => {
                            self.counters.messages.fetch_add(1, Ordering::Relaxed);
                            self.counters.bytes.fetch_add(len, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => break Err(format!("write: {e}")),
                        Err(_) => break Err("write timed out".to_string()),
                    }
                }
            }
        };
        drain.abort();
        result
    }

    fn failed(&self, why: &str) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        debug!(peer = %self.peer.id, "unavailable: {why}");
        let _ = (self.link_events).send(Event::Unreachable(self.peer.id.clone()));
    }

    /// Sleeps before the next dial; true if the pool closed meanwhile (what is queued
    /// for a peer that cannot be reached is then given up).
    async fn pause(&self, queue: &mpsc::Receiver<Queued>, delay: Duration) -> bool {
        sleep(delay).await;
        queue.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::net::TcpListener;

    fn config() -> PoolConfig {
        PoolConfig {
            dial_timeout: Duration::from_millis(500),
            write_timeout: Duration::from_millis(500),
            queue: 8,
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_millis(50),
            ..PoolConfig::default()
        }
    }

    async fn listener() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        (listener, addr)
    }

    /// The peer of the next `Unreachable` report, skipping `Connected` ones; each report
    /// within 10 s.
    async fn next_unreachable(events: &mut mpsc::UnboundedReceiver<Event>) -> String {
        loop {
            match timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Some(Event::Unreachable(peer))) => return peer,
                Ok(Some(Event::Connected(_))) => continue,
                other => panic!("no unreachable report: {other:?}"),
            }
        }
    }

    /// An address nothing listens on.
    async fn closed_port() -> String {
        listener().await.1
    }

    async fn read_frames(listener: &TcpListener, n: usize) -> Vec<String> {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut frames = frame::reader(tcp, 1024);
        let mut got = Vec::new();
        while got.len() < n {
            got.push(frames.next().await.unwrap().unwrap());
        }
        got
    }

    #[tokio::test]
    async fn frames_arrive_in_order_on_one_persistent_connection() {
        let (listener, addr) = listener().await;
        let (tx, _rx) = mpsc::unbounded_channel();
        let peers = [Peer {
            id: "n1".into(),
            addr,
        }];
        let pool = Pool::start(&peers, None, config(), tx);
        for i in 0..5 {
            assert!(pool.send("n1", format!("{{\"i\":{i}}}")));
        }
        let got = timeout(Duration::from_secs(5), read_frames(&listener, 5))
            .await
            .unwrap();
        assert_eq!(
            got,
            (0..5).map(|i| format!("{{\"i\":{i}}}")).collect::<Vec<_>>()
        );
        let stats = &pool.stats()["n1"];
        assert_eq!((stats.messages_sent, stats.reconnects), (5, 0));
        assert!(!pool.send("n9", "{}".into()), "unknown peers are refused");
        pool.close(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn an_unreachable_peer_is_reported_and_never_blocks_the_sender() {
        let (tx, mut link_events) = mpsc::unbounded_channel();
        let peers = [Peer {
            id: "n2".into(),
            addr: closed_port().await,
        }];
        let pool = Pool::start(&peers, None, config(), tx);
        // The queue holds 8; everything beyond is dropped at once, not waited for.
        let accepted = (0..100).filter(|_| pool.send("n2", "{}".into())).count();
        assert!(accepted <= 9, "{accepted}");
        for _ in 0..3 {
            assert_eq!(next_unreachable(&mut link_events).await, "n2");
        }
        let stats = &pool.stats()["n2"];
        assert!(stats.queue_drops >= 91 && stats.failures >= 3, "{stats:?}");
        assert!(!stats.connected);
        pool.close(Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn what_waited_too_long_for_a_connection_is_dropped_unwritten() {
        // The peer is not up yet: its port is closed, then opened.
        let addr = closed_port().await;
        let (tx, _link_events) = mpsc::unbounded_channel();
        let peers = [Peer {
            id: "n1".into(),
            addr: addr.clone(),
        }];
        let config = PoolConfig {
            max_queue_age: Duration::from_millis(500),
            ..config()
        };
        let pool = Pool::start(&peers, None, config, tx);
        for i in 0..3 {
            assert!(pool.send("n1", format!("{{\"old\":{i}}}")));
        }
        sleep(Duration::from_millis(800)).await;
        let listener = TcpListener::bind(&addr)
            .await
            .expect("the port is free again");
        assert!(pool.send("n1", "{\"new\":1}".into()));
        let got = timeout(Duration::from_secs(5), read_frames(&listener, 1))
            .await
            .unwrap();
        assert_eq!(got, ["{\"new\":1}"], "only what is fresh is written");
        let stats = &pool.stats()["n1"];
        assert_eq!((stats.queue_expired, stats.messages_sent), (3, 1));
        pool.close(Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn a_closed_connection_is_reported_and_redialed() {
        let (listener, addr) = listener().await;
        let (tx, mut link_events) = mpsc::unbounded_channel();
        let peers = [Peer {
            id: "n1".into(),
            addr,
        }];
        let pool = Pool::start(&peers, None, config(), tx);
        pool.send("n1", "{\"first\":1}".into());
        let (tcp, _) = timeout(Duration::from_secs(5), listener.accept())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            timeout(Duration::from_secs(5), link_events.recv()).await,
            Ok(Some(Event::Connected("n1".into()))),
            "a connection made is reported"
        );
        drop(tcp);
        assert_eq!(next_unreachable(&mut link_events).await, "n1");
        // Dialed again: later frames arrive on the new connection.
        let reader = tokio::spawn(async move { read_frames(&listener, 1).await });
        let mut got = None;
        for _ in 0..100 {
            pool.send("n1", "{\"second\":2}".into());
            if reader.is_finished() {
                got = Some(reader.await.unwrap());
                break;
            }
            sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(got.expect("redialed"), vec!["{\"second\":2}".to_string()]);
        assert!(pool.stats()["n1"].reconnects >= 1);
        pool.close(Duration::from_millis(200)).await;
    }

    #[tokio::test]
    async fn a_peer_that_reads_nothing_does_not_hold_up_the_others() {
        let (stuck, stuck_addr) = listener().await;
        let (fine, fine_addr) = listener().await;
        let (tx, mut link_events) = mpsc::unbounded_channel();
        let peers = [
            Peer {
                id: "n1".into(),
                addr: stuck_addr,
            },
            Peer {
                id: "n2".into(),
                addr: fine_addr,
            },
        ];
        let pool = Pool::start(&peers, None, config(), tx);
        // n1 accepts (the kernel does) but its process reads nothing, like a stopped one.
        let _held = tokio::spawn(async move {
            let conn = stuck.accept().await;
            sleep(Duration::from_secs(30)).await;
            drop(conn);
        });
        let big = format!("{{\"v\":\"{}\"}}", "x".repeat(256 * 1024));
        for _ in 0..200 {
            pool.send("n1", big.clone());
            tokio::task::yield_now().await;
        }
        for i in 0..5 {
            assert!(pool.send("n2", format!("{{\"i\":{i}}}")));
        }
        let got = timeout(Duration::from_secs(5), read_frames(&fine, 5))
            .await
            .unwrap();
        assert_eq!(got.len(), 5);
        // The writer to n1 gives up on the full socket and says so. (n2 is reported too,
        // once the reader above has dropped its connection.)
        while next_unreachable(&mut link_events).await != "n1" {}
        assert!(pool.stats()["n1"].queue_drops > 0);
        pool.close(Duration::from_millis(200)).await;
    }
}
