//! Error codes, and what is left of an input line that could not be read as an envelope.

use serde::{Deserialize, Serialize};

use super::{Envelope, Payload};

/// Maelstrom's error codes (docs/maelstrom-compatibility.md 1.6): those the node sends by
/// name, any other (a peer's) by number. On the wire, the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "u32", into = "u32")]
pub enum ErrorCode {
    NotSupported,
    TemporarilyUnavailable,
    MalformedRequest,
    PreconditionFailed,
    /// A code the node does not send itself.
    Other(u32),
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        match code {
            10 => ErrorCode::NotSupported,
            11 => ErrorCode::TemporarilyUnavailable,
            12 => ErrorCode::MalformedRequest,
            22 => ErrorCode::PreconditionFailed,
            other => ErrorCode::Other(other),
        }
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> u32 {
        match code {
            ErrorCode::NotSupported => 10,
            ErrorCode::TemporarilyUnavailable => 11,
            ErrorCode::MalformedRequest => 12,
            ErrorCode::PreconditionFailed => 22,
            ErrorCode::Other(code) => code,
        }
    }
}

/// A line that could not be parsed into an envelope, with what could be recovered.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub src: Option<String>,
    pub dest: Option<String>,
    pub msg_id: Option<u64>,
    pub code: ErrorCode,
    pub text: String,
}

impl Rejected {
    /// The `error` reply, sent as `node` (or, before `init`, as the line's `dest`), when
    /// the line said who asked and which request it was.
    pub fn reply(self, node: Option<&str>) -> Option<Envelope> {
        let from = node.map(str::to_string).or(self.dest)?;
        Some(Envelope {
            src: from,
            dest: self.src?,
            body: super::Body {
                msg_id: None,
                in_reply_to: Some(self.msg_id?),
                payload: Payload::error(self.code, self.text),
            },
        })
    }
}
