//! Reads stdin line by line and turns each line into an event. Nothing on stdin can stop
//! it but the end of the stream. When the machine's queue is full it waits, and stdin waits
//! in its pipe (`runtime::run`).

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::Sender;
use tracing::{error, info, warn};

use crate::event::Event;

/// Lines longer than this are rejected (after being read, so the stream stays in sync).
const MAX_LINE: usize = 64 << 20;

pub async fn run(events: Sender<Event>) {
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match stdin.read_until(b'\n', &mut line).await {
            Ok(0) => {
                info!("stdin closed: shutting down");
                return;
            }
            Ok(_) => {}
            Err(e) => {
                error!("cannot read stdin: {e}");
                return;
            }
        }
        let Some(event) = event_of_line(&line) else {
            continue;
        };
        if events.send(event).await.is_err() {
            return; // the machine is gone: shutting down
        }
    }
}

/// The event one line read from stdin (its newline included or not) stands for; `None`,
/// with a log line, for a blank or oversized line. Public so that the property tests
/// (tests/properties/) feed their lines through this same path.
pub fn event_of_line(line: &[u8]) -> Option<Event> {
    let text = trim_newline(line);
    if text.iter().all(u8::is_ascii_whitespace) {
        warn!("ignoring a blank line");
        return None;
    }
    if text.len() > MAX_LINE {
        warn!(bytes = text.len(), "ignoring an oversized line");
        return None;
    }
    Some(Event::from_line(text))
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}
