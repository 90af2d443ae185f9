//! The runner's side of the nodes' client ports: one TCP connection per harness client
//! (the port names replies after the `src` a request carried, per connection), and one
//! per node life for the `stats` counters, polled every second so that a node killed
//! later still counts what it sent until shortly before.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::Input;

/// How long a new connection keeps trying (a node that was just started again).
const CONNECT_FOR: Duration = Duration::from_secs(3);
/// Between two `stats` polls of a node.
const STATS_EVERY: Duration = Duration::from_secs(1);

/// A harness client's connection to one life of one node.
struct Connection {
    node: usize,
    life: u64,
    lines: mpsc::UnboundedSender<String>,
}

/// The latest `stats_ok` body of every node life.
pub type StatsBook = Arc<Mutex<HashMap<(usize, u64), Value>>>;

pub struct ClientPorts {
    rt: Handle,
    tx: Sender<Input>,
    connections: HashMap<String, Connection>,
    pub stats: StatsBook,
}

impl ClientPorts {
    pub fn new(rt: Handle, tx: Sender<Input>) -> Self {
        ClientPorts {
            rt,
            tx,
            connections: HashMap::new(),
            stats: Arc::default(),
        }
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
            self.rt
                .spawn(connection(addr, node, life, rx, self.tx.clone()));
            self.connections
                .insert(client.to_string(), Connection { node, life, lines });
        }
        if let Some(c) = self.connections.get(client) {
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

    /// Asks for `stats` once more, waiting at most `timeout`.
    pub fn final_stats(&self, node: usize, life: u64, addr: SocketAddr, timeout: Duration) {
        let book = self.stats.clone();
        let _ = self.rt.block_on(async move {
            tokio::time::timeout(timeout, async move {
                let mut stream = connect(addr).await?;
                let value = ask_stats(&mut stream, 1).await?;
                book.lock().expect("stats lock").insert((node, life), value);
                Some(())
            })
            .await
        });
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

async fn connection(
    addr: SocketAddr,
    node: usize,
    life: u64,
    mut lines: mpsc::UnboundedReceiver<String>,
    tx: Sender<Input>,
) {
    let Some(stream) = connect(addr).await else {
        return;
    };
    let (read, mut write) = stream.into_inner().into_split();
    let reader = tokio::spawn(async move {
        let mut replies = BufReader::new(read).lines();
        while let Ok(Some(line)) = replies.next_line().await {
            if tx.send(Input::Line(node, life, line)).is_err() {
                return;
            }
        }
    });
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if write.write_all(line.as_bytes()).await.is_err() {
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
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let value: Value = serde_json::from_str(&line).ok()?;
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
