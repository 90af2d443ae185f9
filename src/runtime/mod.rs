//! The actors around the state machine, connected by channels:
//!
//! ```text
//! stdin ─▶ receiver ─┐                       ┌─▶ sender ─▶ stdout
//!                    ├─ Event ─▶ machine ────┤
//! tickers ───────────┘                       └─ (logs go to stderr)
//! ```
//!
//! Only the sender writes stdout. At stdin EOF the tickers stop, the machine handles what
//! is queued, the sender flushes every owed line, and `run` returns.
//!
//! Both queues are bounded, and a full one pushes back instead of dropping anything
//! (docs/architecture.md, "Backpressure"): when stdout is blocked (its reader stopped
//! reading), the sender waits, the outbox fills, the machine waits for room, the inbox
//! fills, and the receiver leaves stdin in its pipe. The node's memory stays bounded, and
//! every reply it owes is still written once stdout drains. Meanwhile the machine runs no
//! tick, so its failure detector sees the time as its own stall, as after SIGSTOP
//! (`machine::probing`), not as silence of its peers.

mod receiver;
mod sender;
pub(crate) mod ticker;

pub use receiver::event_of_line;

use std::time::Instant;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::event::Event;
use crate::machine::StateMachine;
use crate::wire::Envelope;

/// Envelopes waiting for stdout. Small: once stdout blocks, the machine stops within this
/// many envelopes rather than go on with its messages queued here unseen by its peers.
const OUTBOX: usize = 256;
/// Events waiting for the machine. Ticks are skipped when it is full; stdin lines wait.
const INBOX: usize = 1024;

/// Runs the node until stdin closes.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut machine = StateMachine::new(config);
    let (event_tx, mut events) = mpsc::channel::<Event>(INBOX);
    let (out_tx, out_rx) = mpsc::channel(OUTBOX);
    let (stop_tx, stop_rx) = watch::channel(false);

    let sender = tokio::spawn(sender::run(out_rx));
    let tickers: Vec<_> = machine
        .schedule()
        .into_iter()
        .map(|(trigger, period)| {
            tokio::spawn(ticker::run(
                trigger,
                period,
                event_tx.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let mut receiver = tokio::spawn(receiver::run(event_tx));

    loop {
        tokio::select! {
            Some(event) = events.recv() => handle(event, &mut machine, start, &out_tx).await,
            done = &mut receiver => {
                if let Err(e) = done {
                    tracing::error!("receiver failed: {e}");
                }
                break;
            }
        }
    }
    // stdin is closed: stop the tickers, then handle whatever is still queued.
    let _ = stop_tx.send(true);
    for ticker in tickers {
        let _ = ticker.await;
    }
    while let Ok(event) = events.try_recv() {
        handle(event, &mut machine, start, &out_tx).await;
    }
    drop(out_tx);
    sender.await?
}

/// Hands one event to the machine and its envelopes to the sender, waiting for room.
async fn handle(
    event: Event,
    machine: &mut StateMachine,
    start: Instant,
    out: &mpsc::Sender<Envelope>,
) {
    for envelope in machine.handle(event, start.elapsed()) {
        // The sender only stops when stdout is gone; then there is no one to tell.
        let _ = out.send(envelope).await;
    }
}
