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

mod receiver;
mod sender;
pub(crate) mod ticker;

pub use receiver::event_of_line;

use std::time::Instant;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::event::Event;
use crate::machine::StateMachine;

/// Runs the node until stdin closes.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut machine = StateMachine::new(config);
    let (event_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let (out_tx, out_rx) = mpsc::unbounded_channel();
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

    let handle = |event: Event, machine: &mut StateMachine| {
        for envelope in machine.handle(event, start.elapsed()) {
            // The sender only stops when stdout is gone; then there is no one to tell.
            let _ = out_tx.send(envelope);
        }
    };
    loop {
        tokio::select! {
            Some(event) = events.recv() => handle(event, &mut machine),
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
        handle(event, &mut machine);
    }
    drop(out_tx);
    sender.await?
}
