//! The only writer of stdout: one compact JSON line per envelope, flushed as soon as the
//! queue is empty, so a reply never waits in a buffer.

use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::debug;

use crate::wire::{Envelope, to_line};

pub async fn run(mut outbox: UnboundedReceiver<Envelope>) -> anyhow::Result<()> {
    let mut stdout = BufWriter::new(tokio::io::stdout());
    while let Some(envelope) = outbox.recv().await {
        write(&mut stdout, &envelope).await?;
        // Write whatever else is already queued, then flush once.
        while let Ok(envelope) = outbox.try_recv() {
            write(&mut stdout, &envelope).await?;
        }
        stdout.flush().await?;
    }
    stdout.flush().await?;
    Ok(())
}

async fn write(
    stdout: &mut BufWriter<tokio::io::Stdout>,
    envelope: &Envelope,
) -> anyhow::Result<()> {
    let mut line = to_line(envelope);
    debug!(dest = %envelope.dest, "send {line}");
    line.push('\n');
    stdout.write_all(line.as_bytes()).await?;
    Ok(())
}
