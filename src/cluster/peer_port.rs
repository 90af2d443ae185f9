//! The peer port: accepts connections from members and turns their frames into events.
//! It only reads (a node writes on the connections it dials, see `pool.rs`). With TLS, who
//! dialed is known from the certificate, and every frame must come from that member: a
//! frame that claims another sender, does not parse, or is too long closes the connection,
//! and nothing from that frame on is applied.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tracing::{debug, info, warn};

use super::frame;
use super::stats::Stats;
use super::tls::{self, Tls};
use crate::event::Event;
use crate::wire;

/// How long a dialer has to finish the TLS handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// Idle time before keepalive probes on an accepted connection, and between them.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// What the peer port needs to know.
#[derive(Clone)]
pub struct PeerPort {
    pub me: String,
    /// Every member, this node included.
    pub members: Arc<[String]>,
    pub tls: Option<Tls>,
    pub max_frame: usize,
    pub stats: Arc<Stats>,
}

impl PeerPort {
    /// Accepts until the task is aborted.
    pub async fn run(self, listener: TcpListener, events: mpsc::Sender<Event>) {
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("peer port: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            // A dialer whose machine vanished without closing is noticed, not kept forever.
            let socket = socket2::SockRef::from(&tcp);
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(KEEPALIVE)
                .with_interval(KEEPALIVE);
            let _ = socket.set_tcp_keepalive(&keepalive);
            let _ = socket.set_tcp_user_timeout(Some(KEEPALIVE * 3));
            let port = self.clone();
            let events = events.clone();
            tokio::spawn(async move {
                port.stats.peer_opened();
                port.connection(tcp, &addr.to_string(), events).await;
                port.stats.peer_closed();
            });
        }
    }

    async fn connection(
        &self,
        tcp: tokio::net::TcpStream,
        addr: &str,
        events: mpsc::Sender<Event>,
    ) {
        match &self.tls {
            None => self.read(tcp, addr, None, events).await,
            Some(tls) => {
                let stream = match timeout(HANDSHAKE, tls.acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return self.refuse(addr, &format!("TLS handshake: {e}")),
                    Err(_) => return self.refuse(addr, "TLS handshake timed out"),
                };
                let chain = stream.get_ref().1.peer_certificates().unwrap_or(&[]);
                let peer = match tls::identity(chain, &self.members) {
                    Ok(peer) if peer != self.me => peer,
                    Ok(_) => {
                        return self.refuse(addr, "the dialer presented this node's own identity");
                    }
                    Err(e) => return self.refuse(addr, &e.to_string()),
                };
                debug!(%peer, addr, "peer connected");
                self.read(stream, addr, Some(peer), events).await;
            }
        }
    }

    /// Reads frames until the connection ends or misbehaves. `peer`: who the certificate
    /// says dialed (None in plaintext mode, where any member id is taken at its word).
    async fn read<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        addr: &str,
        peer: Option<String>,
        events: mpsc::Sender<Event>,
    ) {
        let who = peer.as_deref().unwrap_or(addr).to_string();
        let mut frames = frame::reader(stream, self.max_frame);
        let mut announced = false;
        while let Some(frame) = frames.next().await {
            let line = match frame {
                Ok(line) => line,
                // A peer that died or was cut off mid-stream: an end, not an offence.
                Err(frame::FrameError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    debug!(peer = %who, "peer connection ended without a TLS close");
                    return;
                }
                Err(e) => return self.refuse(&who, &format!("bad frame: {e}")),
            };
            let envelope = match wire::parse_line(line.as_bytes()) {
                Ok(envelope) => envelope,
                Err(rejected) => {
                    return self.refuse(&who, &format!("bad frame: {}", rejected.text));
                }
            };
            let allowed = match &peer {
                Some(id) => envelope.src == *id,
                None => envelope.src != self.me && self.members.contains(&envelope.src),
            };
            if !allowed {
                let text = format!("a frame from {} claims to come from {}", who, envelope.src);
                return self.refuse(&who, &text);
            }
            self.stats.received(&envelope.src, line.len());
            // Ahead of its first message, so that the machine knows what arrives on a new
            // connection may have waited for it.
            if !announced {
                announced = true;
                if events
                    .send(Event::Connected(envelope.src.clone()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if events.send(Event::Message(envelope)).await.is_err() {
                return; // the node is shutting down
            }
        }
        debug!(peer = %who, "peer connection closed");
    }

    fn refuse(&self, who: &str, why: &str) {
        self.stats.refused();
        info!(peer = who, "peer connection closed: {why}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    use tokio::time::timeout;

    use super::*;

    fn frame_from(src: &str, seq: u64) -> String {
        format!(r#"{{"src":"{src}","dest":"n0","body":{{"type":"gossip","seq":{seq}}}}}"#) + "\n"
    }

    async fn next(events: &mut mpsc::Receiver<Event>) -> Event {
        timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("the port is running")
    }

    #[tokio::test]
    async fn each_connection_is_announced_before_its_first_message() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let port = PeerPort {
            me: "n0".into(),
            members: vec!["n0".to_string(), "n1".to_string()].into(),
            tls: None,
            max_frame: frame::MAX_FRAME,
            stats: Arc::new(Stats::new(BTreeMap::new())),
        };
        let (tx, mut events) = mpsc::channel(16);
        let task = tokio::spawn(port.run(listener, tx));
        for connection in 0..2 {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let frames =
                frame_from("n1", 2 * connection + 1) + &frame_from("n1", 2 * connection + 2);
            tcp.write_all(frames.as_bytes()).await.unwrap();
            assert_eq!(next(&mut events).await, Event::Connected("n1".into()));
            for _ in 0..2 {
                assert!(matches!(next(&mut events).await, Event::Message(env) if env.src == "n1"));
            }
        }
        task.abort();
    }
}
