//! The only writer of stdout: one compact JSON line per envelope, flushed as soon as the
//! queue is empty, so a reply never waits in a buffer. A write blocked for long (the
//! reader of stdout stopped reading) is logged, and so is its end.

use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, sleep};
use tracing::{debug, info, warn};

use crate::wire::{Envelope, to_line};

/// A write pending this long means stdout is blocked, not slow.
const BLOCKED: Duration = Duration::from_secs(1);
/// Most lines written between two flushes.
const BATCH: usize = 256;

pub async fn run(mut outbox: Receiver<Envelope>) -> anyhow::Result<()> {
    let mut stdout = BufWriter::new(tokio::io::stdout());
    while let Some(envelope) = outbox.recv().await {
        let began = Instant::now();
        let batch = async {
            write(&mut stdout, &envelope).await?;
            // Write what else is already queued (a bounded batch, so that only a blocked
            // stdout takes `BLOCKED`), then flush once.
            for _ in 1..BATCH {
                let Ok(envelope) = outbox.try_recv() else {
                    break;
                };
                write(&mut stdout, &envelope).await?;
            }
            stdout.flush().await
        };
        tokio::pin!(batch);
        let mut blocked = false;
        loop {
            tokio::select! {
                written = &mut batch => {
                    written?;
                    break;
                }
                _ = sleep(BLOCKED), if !blocked => {
                    blocked = true;
                    warn!("stdout blocked: waiting for its reader, nothing is dropped");
                }
            }
        }
        if blocked {
            let ms = began.elapsed().as_millis() as u64;
            info!(ms, "stdout drained");
        }
    }
    stdout.flush().await?;
    Ok(())
}

async fn write(
    stdout: &mut BufWriter<tokio::io::Stdout>,
    envelope: &Envelope,
) -> std::io::Result<()> {
    let mut line = to_line(envelope);
    debug!(dest = %envelope.dest, "send {line}");
    line.push('\n');
    stdout.write_all(line.as_bytes()).await
}
