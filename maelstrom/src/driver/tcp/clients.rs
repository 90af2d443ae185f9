//! The runner's side of the nodes' client ports: one TCP connection per harness client
//! (the port names replies after the `src` a request carried, per connection), and one
//! per node life for the `stats` counters, polled every second so that a node killed
//! later still counts what it sent until shortly before. As over stdio, what a node can
//! make the runner hold is bounded (docs/maelstrom-compatibility.md 2.6): its lines, the
//! bytes its connections hand the main loop, and what waits to be written to it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::Input;
use crate::driver::lines::{InFlight, MAX_LINE, Read, read_line_async};
use crate::driver::process::QUEUED;

/// How long a new connection keeps trying (a node that was just started again).
const CONNECT_FOR: Duration = Duration::from_secs(3);
/// Between two `stats` polls of a node.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// A harness client's connection to one life of one node.
struct Connection {
    node: usize,
    life: u64,
    lines: mpsc::UnboundedSender<String>,
    /// Bytes given to the connection and not yet written.
    queued: Arc<AtomicUsize>,
}

/// The latest `stats_ok` body of every node life.
pub type StatsBook = Arc<Mutex<HashMap<(usize, u64), Value>>>;

pub struct ClientPorts {
    rt: Handle,
    tx: Sender<Input>,
    connections: HashMap<String, Connection>,
    pub stats: StatsBook,
    /// Per node: bytes its connections handed the main loop, not yet handled.
    in_flight: Vec<Arc<InFlight>>,
    /// Per node: lines dropped because `QUEUED` bytes waited on their connection.
    pub undelivered: Vec<u64>,
}

impl ClientPorts {
    pub fn new(rt: Handle, tx: Sender<Input>, nodes: usize) -> Self {
        ClientPorts {
            rt,
            tx,
            connections: HashMap::new(),
            stats: Arc::default(),
            in_flight: (0..nodes).map(|_| Arc::default()).collect(),
            undelivered: vec![0; nodes],
        }
    }

    /// The main loop handled a line of `len` bytes from node `node`.
    pub fn handled(&self, node: usize, len: usize) {
        self.in_flight[node].give(len);
    }

    /// Writes `line` from `client` to life `life` of node `node` at `addr`, opening the
    /// connection if there is none yet. A line that cannot be written is lost, as a
    /// message to a dead node is: the op times out.
    pub fn send(&mut self, client: &str, node: usize, life: u64, addr: SocketAddr, line: String) {
        let stale = self
            .connections
            .get(client)
            .is_none_or(|c| c.node != node || c.life != life || c.lines.is_closed());
        if stale {
            let (lines, rx) = mpsc::unbounded_channel();
            let queued = Arc::new(AtomicUsize::new(0));
            let ends = Ends {
                node,
                life,
                tx: self.tx.clone(),
                in_flight: self.in_flight[node].clone(),
                queued: queued.clone(),
            };
            self.rt.spawn(connection(addr, rx, ends));
            self.connections.insert(
                client.to_string(),
                Connection {
                    node,
                    life,
                    lines,
                    queued,
                },
            );
        }
        if let Some(c) = self.connections.get(client) {
            if c.queued.load(Ordering::Relaxed) + line.len() > QUEUED {
                self.undelivered[node] += 1;
                return;
            }
            c.queued.fetch_add(line.len(), Ordering::Relaxed);
            let _ = c.lines.send(line);
        }
    }

    /// Forgets every connection to `node` (it was killed).
    pub fn drop_node(&mut self, node: usize) {
        self.connections.retain(|_, c| c.node != node);
    }

    /// Polls the `stats` of life `life` of node `node` every second until it ends.
    pub fn watch_stats(&self, node: usize, life: u64, addr: SocketAddr) {
        self.rt
            .spawn(poll_stats(addr, (node, life), self.stats.clone()));
    }

    /// Asks each `(node, life, address)` for `stats` once more, all at once, waiting at
    /// most `timeout` in all.
    pub fn final_stats(&self, nodes: &[(usize, u64, SocketAddr)], timeout: Duration) {
        let asks: Vec<_> = nodes
            .iter()
            .map(|&(node, life, addr)| {
                let book = self.stats.clone();
                self.rt.spawn(async move {
                    let mut stream = connect(addr).await?;
                    let value = ask_stats(&mut stream, 1).await?;
                    book.lock().expect("stats lock").insert((node, life), value);
                    Some(())
                })
            })
            .collect();
        let aborts: Vec<_> = asks.iter().map(|a| a.abort_handle()).collect();
        self.rt.block_on(async move {
            let all = async {
                for ask in asks {
                    let _ = ask.await;
                }
            };
            let _ = tokio::time::timeout(timeout, all).await;
        });
        aborts.iter().for_each(|a| a.abort());
    }
}

async fn connect(addr: SocketAddr) -> Option<BufReader<TcpStream>> {
    let start = tokio::time::Instant::now();
    loop {
        if let Ok(stream) = TcpStream::connect(addr).await {
            let _ = stream.set_nodelay(true);
            return Some(BufReader::new(stream));
        }
        if start.elapsed() > CONNECT_FOR {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a connection task reports to and counts for.
struct Ends {
    node: usize,
    life: u64,
    tx: Sender<Input>,
    in_flight: Arc<InFlight>,
    queued: Arc<AtomicUsize>,
}

async fn connection(addr: SocketAddr, mut lines: mpsc::UnboundedReceiver<String>, ends: Ends) {
    let Some(stream) = connect(addr).await else {
        return;
    };
    let Ends {
        node,
        life,
        tx,
        in_flight,
        queued,
    } = ends;
    let (read, mut write) = stream.into_inner().into_split();
    let reader = tokio::spawn(async move {
        let mut replies = BufReader::new(read);
        let mut bytes = Vec::new();
        loop {
            let input = match read_line_async(&mut replies, &mut bytes, MAX_LINE).await {
                Ok(Read::Eof) | Err(_) => return,
                Ok(Read::TooLong(n)) => Input::TooLong(node, life, n),
                Ok(Read::Line) => {
                    let line = String::from_utf8_lossy(&bytes).into_owned();
                    in_flight.take_async(line.len()).await;
                    Input::Line(node, life, line)
                }
            };
            if tx.send(input).is_err() {
                return;
            }
        }
    });
    while let Some(mut line) = lines.recv().await {
        let len = line.len();
        line.push('\n');
        let written = write.write_all(line.as_bytes()).await;
        queued.fetch_sub(len, Ordering::Relaxed);
        if written.is_err() {
            break;
        }
    }
    // The client was replaced or the run is over; replies may still be on their way.
    drop(write);
    let _ = reader.await;
}

/// One `stats` request and its reply's body.
async fn ask_stats(stream: &mut BufReader<TcpStream>, msg_id: u64) -> Option<Value> {
    let request = json!({"body": {"type": "stats", "msg_id": msg_id}}).to_string() + "\n";
    stream.get_mut().write_all(request.as_bytes()).await.ok()?;
    let mut line = Vec::new();
    loop {
        match read_line_async(stream, &mut line, MAX_LINE).await.ok()? {
            Read::Eof => return None,
            Read::TooLong(_) => continue,
            Read::Line => {}
        }
        let Ok(value) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if value["body"]["in_reply_to"] == json!(msg_id) {
            return Some(value["body"].clone());
        }
    }
}

async fn poll_stats(addr: SocketAddr, key: (usize, u64), book: StatsBook) {
    let Some(mut stream) = connect(addr).await else {
        return;
    };
    for msg_id in 1.. {
        match ask_stats(&mut stream, msg_id).await {
            Some(value) => {
                book.lock().expect("stats lock").insert(key, value);
            }
            None => return,
        }
        tokio::time::sleep(STATS_EVERY).await;
    }
}
