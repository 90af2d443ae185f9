//! `node serve`: the machine as a cluster member. The same state machine as under
//! Maelstrom, driven through the same `init` path, with sockets around it:
//!
//! ```text
//! peer port (TLS, read) ──┐                           ┌─▶ pool: a writer per peer (TLS)
//! client port ────────────┼─ Event ─▶ machine task ───┤
//! tickers, pool reports ──┘                           └─▶ client connections (replies)
//! ```
//!
//! SIGTERM or Ctrl-C: stop accepting, give the writers a moment to flush, exit 0.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::client_port::{ClientPort, Outgoing, Routes};
use super::config::{Membership, ServeArgs};
use super::frame;
use super::peer_port::PeerPort;
use super::pool::{Pool, PoolConfig};
use super::stats::Stats;
use super::tls::Tls;
use crate::config::Config;
use crate::event::Event;
use crate::machine::StateMachine;
use crate::runtime::ticker;
use crate::wire::{self, Body, Envelope, Payload};

/// Events waiting for the machine; readers wait when it is full (TCP pushes back).
const EVENT_QUEUE: usize = 4096;
/// Client connections at once.
const MAX_CLIENTS: usize = 256;
/// Longest client line.
const MAX_CLIENT_FRAME: usize = 1 << 20;
/// How long queued messages get to leave at shutdown.
const FLUSH_GRACE: Duration = Duration::from_secs(2);
/// The sender of the `init` the node gives itself (never a member: ':' is not allowed).
const CONFIGURATION: &str = "config:0";

pub async fn run(args: ServeArgs, mut config: Config) -> anyhow::Result<()> {
    let membership = args.membership()?;
    // A later life than any before it, so that peers know a restart when they see one.
    config.epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let tls = match (&args.tls_dir, args.insecure) {
        (_, true) => {
            warn!("--insecure: peers talk in plaintext, unauthenticated (loopback only)");
            None
        }
        (Some(dir), false) => Some(Tls::load(dir, &membership.me)?),
        (None, false) => anyhow::bail!("--tls-dir is needed (or --insecure on loopback)"),
    };
    let peer_listener = TcpListener::bind(&membership.listen)
        .await
        .map_err(|e| anyhow::anyhow!("peer port {}: {e}", membership.listen))?;
    let client_listener = match &membership.client_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("client port {addr}: {e}"))?,
        ),
        None => None,
    };
    info!(
        id = %membership.me,
        peers = %peer_listener.local_addr()?,
        clients = ?client_listener.as_ref().and_then(|l| l.local_addr().ok()),
        nodes = membership.nodes.len(),
        tls = tls.is_some(),
        "serving"
    );
    Member::start(membership, tls, config, peer_listener, client_listener)
        .run()
        .await
}

/// A running cluster member: the machine task's state.
struct Member {
    start: Instant,
    me: String,
    machine: StateMachine,
    pool: Pool,
    routes: Routes,
    /// What `stats` reports: the machine's part is copied in after each event.
    stats: Arc<Stats>,
    events: mpsc::Receiver<Event>,
    /// The pool's reports: a peer unreachable, or a connection to it made.
    link_events: mpsc::UnboundedReceiver<Event>,
    ticks: mpsc::UnboundedReceiver<Event>,
    stop_tickers: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Member {
    fn start(
        membership: Membership,
        tls: Option<Tls>,
        config: Config,
        peer_listener: TcpListener,
        client_listener: Option<TcpListener>,
    ) -> Member {
        let (link_events_tx, link_events) = mpsc::unbounded_channel();
        let pool = Pool::start(
            &membership.peers,
            tls.clone(),
            PoolConfig::default(),
            link_events_tx,
        );
        let stats = Arc::new(Stats::new(pool.counters()));
        let routes = Routes::default();
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let mut tasks = Vec::new();
        let peer_port = PeerPort {
            me: membership.me.clone(),
            members: membership.nodes.clone().into(),
            tls,
            max_frame: frame::MAX_FRAME,
            stats: stats.clone(),
        };
        tasks.push(tokio::spawn(
            peer_port.run(peer_listener, events_tx.clone()),
        ));
        if let Some(listener) = client_listener {
            let client_port = ClientPort {
                me: membership.me.clone(),
                max_connections: MAX_CLIENTS,
                max_frame: MAX_CLIENT_FRAME,
                stats: stats.clone(),
                routes: routes.clone(),
            };
            tasks.push(tokio::spawn(client_port.run(listener, events_tx)));
        }
        let mut machine = StateMachine::new(config);
        let (ticks_tx, ticks) = mpsc::unbounded_channel();
        let (stop_tickers, stop_rx) = watch::channel(false);
        for (trigger, period) in machine.schedule() {
            tasks.push(tokio::spawn(ticker::run(
                trigger,
                period,
                ticks_tx.clone(),
                stop_rx.clone(),
            )));
        }
        let start = Instant::now();
        // The same path as under Maelstrom: `init` names this node and the cluster, then
        // `topology` starts the gossip.
        for payload in [
            Payload::Init {
                node_id: membership.me.clone(),
                node_ids: membership.nodes.clone(),
            },
            Payload::Topology {
                topology: Default::default(),
            },
        ] {
            let request = Envelope {
                src: CONFIGURATION.to_string(),
                dest: membership.me.clone(),
                body: Body {
                    msg_id: Some(1),
                    in_reply_to: None,
                    payload,
                },
            };
            for reply in machine.handle(Event::Message(request), start.elapsed()) {
                debug!(?reply.body.payload, "configured");
            }
        }
        Member {
            start,
            me: membership.me,
            machine,
            pool,
            stats,
            routes,
            events,
            link_events,
            ticks,
            stop_tickers,
            tasks,
        }
    }

    async fn run(mut self) -> anyhow::Result<()> {
        let mut terminate = signal(SignalKind::terminate())?;
        loop {
            let event = tokio::select! {
                Some(event) = self.ticks.recv() => event,
                Some(event) = self.events.recv() => event,
                Some(event) = self.link_events.recv() => event,
                _ = tokio::signal::ctrl_c() => break,
                _ = terminate.recv() => break,
            };
            self.handle(event);
        }
        info!("stopping: no new connections; flushing queued messages");
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.stop_tickers.send(true);
        // What is already queued for the machine is handled, so that its messages go too.
        while let Ok(event) = self.events.try_recv() {
            self.handle(event);
        }
        for envelope in self.machine.flush(self.start.elapsed()) {
            self.route(envelope);
        }
        self.pool.close(FLUSH_GRACE).await;
        info!("stopped");
        Ok(())
    }

    fn handle(&mut self, event: Event) {
        for envelope in self.machine.handle(event, self.start.elapsed()) {
            self.route(envelope);
        }
        self.stats.set_probes_sent(&self.machine.probes_sent());
    }

    /// Peers get a frame on their connection; clients their reply on theirs.
    fn route(&mut self, envelope: Envelope) {
        if envelope.src != self.me {
            warn!(src = %envelope.src, "not sending a message as someone else");
            return;
        }
        let dest = envelope.dest.clone();
        if self.pool.has(&dest) {
            self.pool.send(&dest, wire::to_line(&envelope));
            return;
        }
        let route = self.routes.lock().expect("routes lock").get(&dest).cloned();
        match route {
            Some(client) => {
                if !client.send(Outgoing::Reply(envelope)) {
                    warn!(client = %dest, "reply dropped: the client does not read");
                }
            }
            None => debug!(dest = %dest, "reply to a client that is gone"),
        }
    }
}
