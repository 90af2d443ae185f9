//! Maelstrom's envelope: what nodes write (validated against the closed schema,
//! docs/maelstrom-compatibility.md 1.1) and what the network delivers (with the
//! network-wide `id`, keys in the order `id, src, dest, body`).

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::edn::Edn;

/// A message accepted by the network: the node's envelope plus the network-wide `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: u64,
    pub src: String,
    pub dest: String,
    pub body: Body,
}

/// A message body. Over stdin/stdout always JSON. In the simulation a node may hand the
/// network its own typed body for a message to another node (docs/simulation.md): the
/// network only routes and counts it, the receiving node takes it back as it was, and it
/// becomes JSON only when something reads it (a log line, a report).
#[derive(Clone, Debug)]
pub enum Body {
    Json(Value),
    Native(Arc<dyn NativeBody>),
}

/// A node's typed body, carried through the simulated network unserialised.
pub trait NativeBody: Any + Send + Sync + std::fmt::Debug {
    /// The JSON the node would have written for it.
    fn to_json(&self) -> Value;

    /// As `to_json`, with its array of values (a read's), if it has one, lifted out: an
    /// empty array stands in its place in the JSON, and the values come as EDN, each as
    /// `Edn::from_json` reads it from `to_json`. A simulated client's read then goes into
    /// the history without the trip through JSON.
    fn to_json_lifted(&self) -> (Value, Option<Lifted>) {
        (self.to_json(), None)
    }
}

/// The array of values lifted out of a native body's JSON (`NativeBody::to_json_lifted`).
#[derive(Clone, Debug, PartialEq)]
pub struct Lifted {
    /// Its key in the body.
    pub key: &'static str,
    /// Its values, as `Edn::from_json` reads them.
    pub values: Vec<Edn>,
}

/// A reply's body as a client reads it: JSON, with a native body's values possibly
/// lifted out (`NativeBody::to_json_lifted`).
#[derive(Clone, Debug)]
pub struct Reply {
    /// The body's JSON, less the lifted values (an empty array in their place).
    json: Value,
    /// The values lifted out, and the body they come from (for its whole JSON).
    lifted: Option<(Lifted, Arc<dyn NativeBody>)>,
}

impl Reply {
    /// A top-level key of the body (not the lifted one's values).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.json.get(key)
    }

    /// The body's JSON less the lifted values, and those values, if any were lifted.
    pub fn parted(&self) -> Option<(&Value, &Lifted)> {
        self.lifted.as_ref().map(|(lifted, _)| (&self.json, lifted))
    }

    /// The lifted values, taken out.
    pub fn into_lifted(self) -> Option<Lifted> {
        self.lifted.map(|(lifted, _)| lifted)
    }

    /// The whole body as JSON.
    pub fn into_json(self) -> Value {
        match self.lifted {
            None => self.json,
            Some((_, native)) => native.to_json(),
        }
    }
}

impl From<Value> for Reply {
    fn from(json: Value) -> Self {
        Reply { json, lifted: None }
    }
}

impl Body {
    /// The body as JSON (serialised on demand for a native body).
    pub fn json(&self) -> Cow<'_, Value> {
        match self {
            Body::Json(v) => Cow::Borrowed(v),
            Body::Native(n) => Cow::Owned(n.to_json()),
        }
    }

    pub fn into_json(self) -> Value {
        match self {
            Body::Json(v) => v,
            Body::Native(n) => n.to_json(),
        }
    }

    /// The body as a client reads a reply: a native body's values lifted out.
    pub fn into_reply(self) -> Reply {
        match self {
            Body::Json(json) => json.into(),
            Body::Native(native) => {
                let (json, lifted) = native.to_json_lifted();
                Reply {
                    json,
                    lifted: lifted.map(|lifted| (lifted, native)),
                }
            }
        }
    }
}

impl From<Value> for Body {
    fn from(value: Value) -> Self {
        Body::Json(value)
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Message {
    /// The line Maelstrom writes to a node's stdin (without the trailing newline):
    /// compact JSON, keys in the order `id, src, dest, body`.
    pub fn to_line(&self) -> String {
        let mut line = String::with_capacity(64);
        line.push_str("{\"id\":");
        line.push_str(&self.id.to_string());
        line.push_str(",\"src\":");
        line.push_str(&Value::String(self.src.clone()).to_string());
        line.push_str(",\"dest\":");
        line.push_str(&Value::String(self.dest.clone()).to_string());
        line.push_str(",\"body\":");
        line.push_str(&self.body.json().to_string());
        line.push('}');
        line
    }

    /// The body's `type`, if it has a string one.
    pub fn body_type(&self) -> Option<String> {
        self.body
            .json()
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_string)
    }
}

/// What a node wrote, after the closed-schema check and before the network assigns an id.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub src: String,
    pub dest: String,
    pub body: Body,
}

/// Why a line a node wrote was rejected (docs/maelstrom-compatibility.md 2.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineError {
    /// "line ... was not well-formed JSON"
    NotJson(String),
    /// "Malformed network message": not an object, missing/extra key, non-string id.
    Malformed(String),
    /// A line of this many bytes, longer than the runner takes
    /// (docs/maelstrom-compatibility.md 2.6).
    TooLong(usize),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::NotJson(e) => write!(f, "line was not well-formed JSON: {e}"),
            LineError::Malformed(e) => write!(f, "Malformed network message: {e}"),
            LineError::TooLong(n) => write!(
                f,
                "line of {n} bytes is longer than the runner's limit of {MAX_LINE} bytes"
            ),
        }
    }
}

/// The longest line the runner takes from a node (docs/maelstrom-compatibility.md 2.6).
pub const MAX_LINE: usize = 8 << 20;

/// Bytes of a line or an error kept for a crash report or an error message.
const QUOTE: usize = 1024;

/// `text`, cut to about `QUOTE` bytes for a report, saying how long it was.
pub fn quote(text: &str) -> String {
    if text.len() <= QUOTE {
        return text.to_string();
    }
    let mut end = QUOTE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}

/// Parses one stdout line of a node.
pub fn parse_line(line: &str) -> Result<Envelope, LineError> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| LineError::NotJson(format!("{line:?}: {e}")))?;
    check_envelope(value)
}

/// Checks a JSON value against Maelstrom's closed envelope schema: exactly `src`, `dest`,
/// `body`, optionally `id` (an integer; ignored and overwritten by the network).
pub fn check_envelope(value: Value) -> Result<Envelope, LineError> {
    let Value::Object(mut map) = value else {
        return Err(LineError::Malformed(format!("not a JSON object: {value}")));
    };
    if let Some(extra) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "src" | "dest" | "body" | "id"))
    {
        return Err(LineError::Malformed(format!("unexpected key {extra:?}")));
    }
    if let Some(id) = map.get("id")
        && !id.is_i64()
        && !id.is_u64()
    {
        return Err(LineError::Malformed(format!("id is not an integer: {id}")));
    }
    let src = take_string(&mut map, "src")?;
    let dest = take_string(&mut map, "dest")?;
    let body = map
        .remove("body")
        .ok_or_else(|| LineError::Malformed("missing key \"body\"".into()))?;
    if !body.is_object() {
        return Err(LineError::Malformed(format!(
            "body is not an object: {body}"
        )));
    }
    Ok(Envelope {
        src,
        dest,
        body: Body::Json(body),
    })
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Result<String, LineError> {
    match map.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(LineError::Malformed(format!(
            "{key} is not a string: {other}"
        ))),
        None => Err(LineError::Malformed(format!("missing key {key:?}"))),
    }
}

/// Maelstrom's test for a client id: its first character is `c`
/// (docs/maelstrom-compatibility.md 1.3). It drives latency (clients get none) and the
/// journal's clients/servers split.
pub fn is_client(id: &str) -> bool {
    id.starts_with('c')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn delivered_line_has_maelstrom_key_order() {
        let m = Message {
            id: 0,
            src: "c0".into(),
            dest: "n1".into(),
            body: json!({"type": "init", "msg_id": 1}).into(),
        };
        assert_eq!(
            m.to_line(),
            r#"{"id":0,"src":"c0","dest":"n1","body":{"msg_id":1,"type":"init"}}"#
        );
    }

    #[test]
    fn closed_schema() {
        assert!(parse_line(r#"{"src":"n1","dest":"c1","body":{}}"#).is_ok());
        assert!(parse_line(r#"{"src":"n1","dest":"c1","body":{},"id":3}"#).is_ok());
        assert!(matches!(parse_line("hello"), Err(LineError::NotJson(_))));
        assert!(matches!(parse_line("[1]"), Err(LineError::Malformed(_))));
        assert!(matches!(
            parse_line(r#"{"src":"n1","dest":"c1","body":{},"x":1}"#),
            Err(LineError::Malformed(_))
        ));
        assert!(matches!(
            parse_line(r#"{"src":1,"dest":"c1","body":{}}"#),
            Err(LineError::Malformed(_))
        ));
        assert!(matches!(
            parse_line(r#"{"src":"n1","body":{}}"#),
            Err(LineError::Malformed(_))
        ));
        assert!(matches!(
            parse_line(r#"{"src":"n1","dest":"c1","body":{},"id":"x"}"#),
            Err(LineError::Malformed(_))
        ));
    }

    #[test]
    fn clients_are_ids_starting_with_c() {
        assert!(is_client("c12"));
        assert!(!is_client("n1"));
        assert!(!is_client("lin-kv"));
    }
}
