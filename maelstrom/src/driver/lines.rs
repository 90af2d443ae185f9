//! Reading what a node writes without letting it decide how much memory the runner uses
//! (docs/maelstrom-compatibility.md 2.6): lines are cut off at `MAX_LINE`, and each
//! node's reader may have at most `IN_FLIGHT` bytes waiting for the main loop, so a node
//! that writes faster than the runner reads is slowed down by its own full pipe or socket.

use std::io::{self, BufRead};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

pub use crate::message::{MAX_LINE, quote};

/// Bytes one node's reader may have handed to the main loop and not yet seen handled.
pub const IN_FLIGHT: usize = MAX_LINE;

/// One read of a line.
#[derive(Debug, PartialEq)]
pub enum Read {
    /// A whole line, in the buffer, without its newline.
    Line,
    /// A line of this many bytes (newline excluded) was longer than the limit; nothing of
    /// it is kept.
    TooLong(usize),
    /// The stream ended; a last line without a newline never counts
    /// (docs/maelstrom-compatibility.md 2.2).
    Eof,
}

/// What to do with the bytes `chunk` of a line that has `total` bytes so far.
struct Step {
    /// Bytes of `chunk` to consume.
    consume: usize,
    /// Whether the newline was in `chunk`.
    done: bool,
}

fn step(chunk: &[u8], buf: &mut Vec<u8>, total: &mut usize, max: usize) -> Step {
    let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
        Some(i) => (i, true),
        None => (chunk.len(), false),
    };
    if *total + take <= max {
        buf.extend_from_slice(&chunk[..take]);
    } else if !buf.is_empty() {
        *buf = Vec::new();
    }
    *total += take;
    Step {
        consume: take + usize::from(done),
        done,
    }
}

fn finish(total: usize, max: usize) -> Read {
    if total > max {
        Read::TooLong(total)
    } else {
        Read::Line
    }
}

/// Reads the next line into `buf`, keeping at most `max` bytes of it.
pub fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Read> {
    buf.clear();
    let mut total = 0;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(Read::Eof);
        }
        let Step { consume, done } = step(chunk, buf, &mut total, max);
        reader.consume(consume);
        if done {
            return Ok(finish(total, max));
        }
    }
}

/// The next line of a node's stderr log, as text (a line over `MAX_LINE` is replaced by
/// a note of its size); `None` at the end or on an error.
pub fn read_log_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> Option<String> {
    match read_line(reader, buf, MAX_LINE) {
        Ok(Read::Eof) | Err(_) => None,
        Ok(Read::TooLong(n)) => Some(format!("(maelstrom: a line of {n} bytes, not kept)")),
        Ok(Read::Line) => Some(String::from_utf8_lossy(buf).into_owned()),
    }
}

/// `read_line` for an asynchronous reader (the TCP driver's client connections).
pub async fn read_line_async(
    reader: &mut (impl AsyncBufRead + Unpin),
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Read> {
    buf.clear();
    let mut total = 0;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Read::Eof);
        }
        let Step { consume, done } = step(chunk, buf, &mut total, max);
        reader.consume(consume);
        if done {
            return Ok(finish(total, max));
        }
    }
}

/// Bytes a reader handed over and the main loop has not handled yet.
pub struct InFlight {
    used: Mutex<usize>,
    freed: Condvar,
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight {
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }
}

impl InFlight {
    /// Waits until `n` more bytes fit (a single line always fits once nothing else is
    /// in flight), then counts them.
    pub fn take(&self, n: usize) {
        let mut used = self.used.lock().expect("in-flight lock");
        while *used > 0 && *used + n > IN_FLIGHT {
            used = self.freed.wait(used).expect("in-flight lock");
        }
        *used += n;
    }

    /// `take` without blocking: whether the bytes were counted.
    pub fn try_take(&self, n: usize) -> bool {
        let mut used = self.used.lock().expect("in-flight lock");
        if *used > 0 && *used + n > IN_FLIGHT {
            return false;
        }
        *used += n;
        true
    }

    /// `take` for a task: polls, since the main loop that frees bytes is not async.
    pub async fn take_async(&self, n: usize) {
        while !self.try_take(n) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The main loop handled `n` bytes.
    pub fn give(&self, n: usize) {
        let mut used = self.used.lock().expect("in-flight lock");
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize, capacity: usize) -> Vec<(Read, Vec<u8>)> {
        let mut reader = io::BufReader::with_capacity(capacity, input);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let read = read_line(&mut reader, &mut buf, max).unwrap();
            if read == Read::Eof {
                return out;
            }
            out.push((read, buf));
        }
    }

    #[test]
    fn lines_over_the_limit_are_skipped_whole_and_the_next_line_is_read() {
        for capacity in [1, 3, 64] {
            let got = lines(b"abc\n0123456789\n\nxy\nunterminated", 5, capacity);
            assert_eq!(
                got,
                vec![
                    (Read::Line, b"abc".to_vec()),
                    (Read::TooLong(10), Vec::new()),
                    (Read::Line, Vec::new()),
                    (Read::Line, b"xy".to_vec()),
                ],
                "buffer of {capacity}"
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept() {
        assert_eq!(
            lines(b"12345\n", 5, 2),
            vec![(Read::Line, b"12345".to_vec())]
        );
    }

    #[test]
    fn quotes_are_cut_on_a_character_boundary() {
        let long = "é".repeat(1024);
        let quoted = quote(&long);
        assert!(quoted.ends_with(&format!("({} bytes in all)", long.len())));
        assert!(quoted.len() < 1024 + 40);
        assert_eq!(quote("short"), "short");
    }

    #[test]
    fn in_flight_bytes_wait_for_the_main_loop() {
        let budget = std::sync::Arc::new(InFlight::default());
        assert!(budget.try_take(IN_FLIGHT));
        assert!(!budget.try_take(1));
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.take(10))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished());
        budget.give(IN_FLIGHT);
        waiter.join().unwrap();
        assert!(budget.try_take(IN_FLIGHT - 10));
    }
}
