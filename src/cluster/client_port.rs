//! The client port: one Maelstrom envelope per line, replies on the same connection, so
//! `nc` is a client. A line may leave out `src` and `dest`: the port fills in this node
//! and a name for the connection. Only client requests are taken (broadcast, read, add,
//! echo, generate, membership, and our `stats`); anything else is answered with an error
//! and not applied. Connections are bounded in number, frames in length, and a client
//! that does not read its replies is cut off rather than buffered without end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc};
use tracing::{debug, info, warn};

use super::frame;
use super::stats::Stats;
use crate::event::Event;
use crate::wire::{self, Envelope, ErrorCode, Payload};

/// Replies waiting per connection before the client counts as not reading.
const REPLY_QUEUE: usize = 1024;

/// Client connections by the name the machine knows them by, for routing replies.
pub type Routes = Arc<Mutex<HashMap<String, Route>>>;

/// Where a connection's replies go, and how to cut it off when it does not read them.
#[derive(Clone, Debug)]
pub struct Route {
    replies: mpsc::Sender<Outgoing>,
    cut: Arc<Notify>,
}

impl Route {
    /// Queues a reply without waiting; a client whose queue is full is not reading, and
    /// is cut off (false).
    pub fn send(&self, outgoing: Outgoing) -> bool {
        if self.replies.try_send(outgoing).is_ok() {
            return true;
        }
        self.cut.notify_one();
        false
    }
}

/// What goes back to a client: a reply of the machine's, or a line this port wrote.
#[derive(Debug)]
pub enum Outgoing {
    Reply(Envelope),
    Line(String),
}

#[derive(Clone)]
pub struct ClientPort {
    pub me: String,
    pub max_connections: usize,
    pub max_frame: usize,
    pub stats: Arc<Stats>,
    pub routes: Routes,
}

impl ClientPort {
    /// Accepts until the task is aborted.
    pub async fn run(self, listener: TcpListener, events: mpsc::Sender<Event>) {
        let slots = Arc::new(Semaphore::new(self.max_connections));
        let next = AtomicU64::new(1);
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!("client port: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                self.stats.refused();
                warn!(%addr, "client refused: {} connections already", self.max_connections);
                tokio::spawn(refuse_busy(tcp, self.me.clone()));
                continue;
            };
            // ':' cannot occur in a member id, so a connection's name never is one.
            let name = format!("c:{}", next.fetch_add(1, Ordering::Relaxed));
            let port = self.clone();
            let events = events.clone();
            tokio::spawn(async move {
                port.stats.client_opened();
                port.connection(tcp, name.clone(), events).await;
                port.routes.lock().expect("routes lock").remove(&name);
                port.stats.client_closed();
                drop(slot);
            });
        }
    }

    async fn connection(&self, tcp: TcpStream, name: String, events: mpsc::Sender<Event>) {
        let (read, write) = tcp.into_split();
        let (replies_tx, mut replies) = mpsc::channel::<Outgoing>(REPLY_QUEUE);
        let route = Route {
            replies: replies_tx,
            cut: Arc::new(Notify::new()),
        };
        self.routes
            .lock()
            .expect("routes lock")
            .insert(name.clone(), route.clone());
        // The src each request was sent with, so replies go back addressed to it.
        let their_src: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
        let writer = {
            let their_src = their_src.clone();
            let max_frame = self.max_frame;
            tokio::spawn(async move {
                let mut out = frame::writer(write, max_frame);
                while let Some(outgoing) = replies.recv().await {
                    let line = match outgoing {
                        Outgoing::Line(line) => line,
                        Outgoing::Reply(mut reply) => {
                            if let Some(id) = reply.body.in_reply_to
                                && let Some(src) = their_src.lock().expect("src lock").remove(&id)
                            {
                                reply.dest = src;
                            }
                            wire::to_line(&reply)
                        }
                    };
                    if out.send(line).await.is_err() {
                        return;
                    }
                }
            })
        };
        let mut frames = frame::reader(read, self.max_frame);
        let mut reading = true;
        loop {
            let frame = tokio::select! {
                frame = frames.next() => frame,
                _ = route.cut.notified() => {
                    reading = false;
                    break;
                }
            };
            let Some(frame) = frame else { break };
            let line = match frame {
                Ok(line) => line,
                Err(e) => {
                    info!(client = %name, "client connection closed: {e}");
                    break;
                }
            };
            let reply = match self.request(&line, &name, &their_src) {
                Ok(Request::Machine(envelope)) => {
                    if events.send(Event::Message(envelope)).await.is_err() {
                        break; // shutting down
                    }
                    continue;
                }
                Ok(Request::Answered(line)) => Outgoing::Line(line),
                Err(error) => Outgoing::Line(wire::to_line(&error)),
            };
            if !route.send(reply) {
                reading = false;
                break;
            }
        }
        self.routes.lock().expect("routes lock").remove(&name);
        if reading {
            // Let the replies already queued go out, for a while.
            drop(route);
            let abort = writer.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), writer)
                .await
                .is_err()
            {
                abort.abort();
            }
        } else {
            warn!(client = %name, "client does not read its replies: cut off");
            writer.abort();
        }
        debug!(client = %name, "client gone");
    }

    /// One line from a client: a request for the machine, or one answered here.
    fn request(
        &self,
        line: &str,
        name: &str,
        their_src: &Mutex<HashMap<u64, String>>,
    ) -> Result<Request, Box<Envelope>> {
        let mut value: Value = serde_json::from_str(line).map_err(|e| {
            self.error(
                name,
                None,
                ErrorCode::MalformedRequest,
                format!("not valid JSON: {e}"),
            )
        })?;
        let Some(map) = value.as_object_mut() else {
            return Err(self.error(name, None, ErrorCode::MalformedRequest, "not a JSON object"));
        };
        let msg_id = map
            .get("body")
            .and_then(|b| b.get("msg_id"))
            .and_then(Value::as_u64);
        let src = match map.remove("src") {
            None => name.to_string(),
            Some(Value::String(src)) => src,
            Some(other) => {
                let text = format!("src is not a string: {other}");
                return Err(self.error(name, msg_id, ErrorCode::MalformedRequest, text));
            }
        };
        map.insert("src".into(), json!(name));
        map.entry("dest").or_insert_with(|| json!(self.me));
        if map.get("body").and_then(|b| b.get("type")) == Some(&json!("stats")) {
            let mut body = self.stats.snapshot();
            body["type"] = json!("stats_ok");
            if let Some(id) = msg_id {
                body["in_reply_to"] = json!(id);
            }
            let reply = json!({"src": self.me, "dest": src, "body": body});
            return Ok(Request::Answered(reply.to_string()));
        }
        let envelope = wire::parse_line(value.to_string().as_bytes()).map_err(|rejected| {
            let mut error = self.error(name, rejected.msg_id, rejected.code, rejected.text);
            error.dest = src.clone();
            error
        })?;
        if !is_client_request(&envelope.body.payload) {
            let text = "not a client request: the client port takes broadcast, read, add, \
                        echo, generate, membership and stats";
            let mut error = self.error(name, msg_id, ErrorCode::NotSupported, text);
            error.dest = src;
            return Err(error);
        }
        if let Some(id) = msg_id {
            their_src.lock().expect("src lock").insert(id, src);
        }
        Ok(Request::Machine(envelope))
    }

    fn error(
        &self,
        to: &str,
        msg_id: Option<u64>,
        code: ErrorCode,
        text: impl Into<String>,
    ) -> Box<Envelope> {
        Box::new(Envelope {
            src: self.me.clone(),
            dest: to.to_string(),
            body: wire::Body {
                msg_id: None,
                in_reply_to: msg_id,
                payload: Payload::error(code, text),
            },
        })
    }
}

enum Request {
    Machine(Envelope),
    /// Answered here: the reply line.
    Answered(String),
}

fn is_client_request(payload: &Payload) -> bool {
    matches!(
        payload,
        Payload::Broadcast { .. }
            | Payload::Read
            | Payload::Add(_)
            | Payload::Echo { .. }
            | Payload::Generate
            | Payload::Membership
    )
}

/// Tells a client over the limit why it is turned away, then closes.
async fn refuse_busy(tcp: TcpStream, me: String) {
    let mut out = frame::writer(tcp, frame::MAX_FRAME);
    let body = json!({"type": "error", "code": 11, "text": "too many client connections"});
    let _ = out
        .send(json!({"src": me, "dest": "", "body": body}).to_string())
        .await;
}
