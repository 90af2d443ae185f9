//! `node client`: sends one request to a node's client port and prints the reply body as
//! JSON. The client port speaks one Maelstrom envelope per line, so `nc` works as well;
//! this only saves typing the envelope.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::frame;

#[derive(Clone, Debug, Args)]
pub struct ClientArgs {
    /// The node's client port, `host:port`.
    #[arg(long, env = "NODE_CONNECT", default_value = "127.0.0.1:7200")]
    pub connect: String,
    /// How long to wait for the reply.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    #[command(subcommand)]
    pub request: Request,
}

/// The requests a client may send.
#[derive(Clone, Debug, Subcommand)]
pub enum Request {
    /// Adds a value to the broadcast set (any JSON value; a bare word is a string).
    Broadcast { message: String },
    /// Reads the node's current state.
    Read,
    /// Adds an element to the g-set, or with `--delta` to the counter.
    Add {
        element: Option<String>,
        #[arg(long, allow_negative_numbers = true, conflicts_with = "element")]
        delta: Option<i64>,
    },
    /// The node's view of its peers: alive, suspected, dead.
    Membership,
    /// The node's transport counters: messages and bytes per peer, reconnects, drops.
    Stats,
    /// Sends a value and gets it back.
    Echo { echo: String },
    /// A cluster-unique id.
    Generate,
}

impl Request {
    /// The request body, without `msg_id`.
    pub fn body(&self) -> anyhow::Result<Value> {
        Ok(match self {
            Request::Broadcast { message } => {
                json!({"type": "broadcast", "message": value(message)})
            }
            Request::Read => json!({"type": "read"}),
            Request::Add {
                element: Some(e),
                delta: None,
            } => {
                json!({"type": "add", "element": value(e)})
            }
            Request::Add {
                element: None,
                delta: Some(d),
            } => json!({"type": "add", "delta": d}),
            Request::Add { .. } => bail!("add takes an element or --delta N"),
            Request::Membership => json!({"type": "membership"}),
            Request::Stats => json!({"type": "stats"}),
            Request::Echo { echo } => json!({"type": "echo", "echo": value(echo)}),
            Request::Generate => json!({"type": "generate"}),
        })
    }
}

/// A command-line word as JSON: `7` is a number, `"x"` and `x` are strings, `[1]` a list.
fn value(word: &str) -> Value {
    serde_json::from_str(word).unwrap_or_else(|_| Value::String(word.to_string()))
}

/// Sends the request and returns the reply's body.
pub async fn request(args: &ClientArgs) -> anyhow::Result<Value> {
    let mut body = args.request.body()?;
    body["msg_id"] = json!(1);
    let wait = Duration::from_millis(args.timeout_ms);
    let tcp = timeout(wait, TcpStream::connect(&args.connect))
        .await
        .with_context(|| format!("connecting to {}: timed out", args.connect))?
        .with_context(|| format!("connecting to {}", args.connect))?;
    let (read, write) = tcp.into_split();
    let mut out = frame::writer(write, frame::MAX_FRAME);
    // The client port fills in the node's id and this connection's client id.
    let envelope = json!({"body": body});
    out.send(envelope.to_string()).await?;
    let mut lines = frame::reader(read, frame::MAX_FRAME);
    let reply = timeout(wait, async {
        while let Some(line) = lines.next().await {
            let envelope: Value = serde_json::from_str(&line?)?;
            if envelope["body"]["in_reply_to"] == json!(1) {
                return Ok(envelope["body"].clone());
            }
        }
        bail!("the node closed the connection without replying")
    })
    .await
    .context("no reply in time")??;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_json_values() {
        assert_eq!(value("7"), json!(7));
        assert_eq!(value("hello"), json!("hello"));
        assert_eq!(value("\"7\""), json!("7"));
        assert_eq!(value("{\"a\":[1]}"), json!({"a": [1]}));
    }

    #[test]
    fn bodies_fit_the_protocol() {
        let add = |element: Option<&str>, delta| Request::Add {
            element: element.map(String::from),
            delta,
        };
        assert_eq!(
            Request::Broadcast {
                message: "7".into()
            }
            .body()
            .unwrap(),
            json!({"type": "broadcast", "message": 7})
        );
        assert_eq!(
            add(Some("x"), None).body().unwrap(),
            json!({"type": "add", "element": "x"})
        );
        assert_eq!(
            add(None, Some(-2)).body().unwrap(),
            json!({"type": "add", "delta": -2})
        );
        assert!(add(None, None).body().is_err());
    }
}
