//! Framing on TCP connections: one compact JSON envelope per line, as on stdin/stdout,
//! with a maximum length. Connections read and write frames only through this module, so
//! a binary codec could replace it in one place.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite, LinesCodec, LinesCodecError};

/// The longest frame accepted by default (one mebibyte).
pub const MAX_FRAME: usize = 1 << 20;

pub type Reader<R> = FramedRead<R, Lines>;
pub type Writer<W> = FramedWrite<W, Lines>;
pub type FrameError = LinesCodecError;

pub fn reader<R: AsyncRead>(io: R, max: usize) -> Reader<R> {
    FramedRead::new(io, Lines::new(max))
}

pub fn writer<W: AsyncWrite>(io: W, max: usize) -> Writer<W> {
    FramedWrite::new(io, Lines::new(max))
}

/// Newline-terminated UTF-8 lines of bounded length. Unlike `LinesCodec` at the end of the
/// stream, an unterminated last line is dropped: a peer that closed mid-frame sent nothing.
#[derive(Debug)]
pub struct Lines(LinesCodec);

impl Lines {
    pub fn new(max: usize) -> Self {
        Lines(LinesCodec::new_with_max_length(max))
    }
}

impl Decoder for Lines {
    type Item = String;
    type Error = LinesCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        self.0.decode(buf)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, LinesCodecError> {
        let frame = self.0.decode(buf)?;
        if frame.is_none() {
            buf.clear();
        }
        Ok(frame)
    }
}

impl<T: AsRef<str>> Encoder<T> for Lines {
    type Error = LinesCodecError;

    fn encode(&mut self, line: T, buf: &mut BytesMut) -> Result<(), LinesCodecError> {
        self.0.encode(line, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn frames_are_lines_and_oversize_lines_are_errors() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut w = writer(a, 64);
        w.send("{\"a\":1}").await.unwrap();
        w.send("{\"b\":2}").await.unwrap();
        let mut raw = w.into_inner();
        raw.write_all(&[b'x'; 100]).await.unwrap();
        raw.write_all(b"\n").await.unwrap();
        drop(raw);
        let mut r = reader(b, 64);
        assert_eq!(r.next().await.unwrap().unwrap(), "{\"a\":1}");
        assert_eq!(r.next().await.unwrap().unwrap(), "{\"b\":2}");
        assert!(matches!(
            r.next().await,
            Some(Err(LinesCodecError::MaxLineLengthExceeded))
        ));
    }

    #[tokio::test]
    async fn half_a_line_at_the_end_is_not_a_frame() {
        let (mut a, b) = tokio::io::duplex(1 << 16);
        a.write_all(b"{\"a\":1}\n{\"b\":").await.unwrap();
        drop(a);
        let mut r = reader(b, 64);
        assert_eq!(r.next().await.unwrap().unwrap(), "{\"a\":1}");
        assert!(r.next().await.is_none());
    }
}
