//! `messages.svg`: the Lamport diagram of the network's traffic, drawn as real Maelstrom
//! draws it (docs/report.md). One column per process (clients, then nodes, then services),
//! one row per event (every send and every receive), and for each received message an
//! arrow from its send's row to its receive's row. Messages a partition dropped were never
//! received and are not drawn. Each arrow is a `<g class="msg">` carrying its ends and
//! times, so `index.html` can filter the diagram to one node or a time window.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use serde_json::Value;

use super::svg::{cut, escape, process_order};
use crate::message::is_client;
use crate::net::Journal;
use crate::net::journal::EventKind;

const WIDTH: f64 = 1200.0;
const ROW: f64 = 20.0;
const TOP: f64 = 30.0;
/// Column names are repeated every this many rows.
const NAMES_EVERY: usize = 50;
const LABEL_CHARS: usize = 48;

pub const ERROR_COLOUR: &str = "#FF1E90";
pub const CLIENT_COLOUR: &str = "#81BFFC";
pub const SERVER_COLOUR: &str = "#000000";

/// What the label of a message says: `type {rest of the body}` (the error text for errors).
fn label(body: &Value) -> String {
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("?");
    if kind == "error"
        && let Some(text) = body.get("text").and_then(Value::as_str)
    {
        return cut(text, LABEL_CHARS);
    }
    let rest = match body {
        Value::Object(map) => {
            let mut rest = map.clone();
            for key in ["type", "msg_id", "in_reply_to"] {
                rest.remove(key);
            }
            Value::Object(rest).to_string()
        }
        other => other.to_string(),
    };
    cut(&format!("{kind} {rest}"), LABEL_CHARS)
}

fn colour(src: &str, dest: &str, body: &Value) -> &'static str {
    if body.get("type").and_then(Value::as_str) == Some("error") {
        ERROR_COLOUR
    } else if is_client(src) || is_client(dest) {
        CLIENT_COLOUR
    } else {
        SERVER_COLOUR
    }
}

fn ms(time: Duration, origin: Duration) -> f64 {
    (time.as_secs_f64() - origin.as_secs_f64()) * 1000.0
}

/// Draws the journal; times are shown relative to the history's `origin`.
pub fn draw(journal: &Journal, origin: Duration) -> String {
    let mut columns: Vec<&str> = journal
        .events
        .iter()
        .flat_map(|e| [e.src.as_str(), e.dest.as_str()])
        .collect();
    columns.sort_by_key(|id| process_order(id));
    columns.dedup();
    let column: HashMap<&str, usize> = columns.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let x = |id: &str| WIDTH * (column[id] as f64 + 0.5) / columns.len().max(1) as f64;
    let y = |row: usize| TOP + ROW * (row as f64 + 0.5);
    let rows = journal.events.len();
    let height = TOP + ROW * (rows as f64 + 1.0) + if journal.omitted > 0 { 40.0 } else { 0.0 };

    let mut out = String::with_capacity(200 * rows + 4096);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         font-family=\"sans-serif\" font-size=\"12\" id=\"messages\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"4\" \
         markerHeight=\"4\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"black\"/></marker></defs>\n"
    );
    for c in &columns {
        let cx = x(c);
        let _ = writeln!(
            out,
            "<line class=\"column\" x1=\"{cx:.1}\" y1=\"{TOP}\" x2=\"{cx:.1}\" y2=\"{height}\" stroke=\"#cccccc\" stroke-width=\"1\"/>"
        );
    }
    for row in (0..rows.max(1)).step_by(NAMES_EVERY) {
        for c in &columns {
            let _ = writeln!(
                out,
                "<text class=\"name\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
                x(c),
                y(row) - ROW * 0.5 - 4.0,
                escape(c)
            );
        }
    }

    // Where each message was sent: its row and body.
    let mut sends: HashMap<u64, (usize, &Value)> = HashMap::new();
    for (row, event) in journal.events.iter().enumerate() {
        match &event.kind {
            EventKind::Send(body) => {
                sends.entry(event.id).or_insert((row, body));
            }
            EventKind::Recv => {
                let Some(&(from, body)) = sends.get(&event.id) else {
                    continue;
                };
                let sent_at = journal.events[from].time;
                arrow(
                    &mut out,
                    (x(&event.src), y(from)),
                    (x(&event.dest), y(row)),
                    (&event.src, &event.dest),
                    body,
                    (ms(sent_at, origin), ms(event.time, origin)),
                );
            }
        }
    }
    if journal.omitted > 0 {
        let at = TOP + ROW * (rows as f64 + 0.5);
        let _ = writeln!(
            out,
            "<line class=\"truncated\" x1=\"0\" y1=\"{at:.1}\" x2=\"{WIDTH}\" y2=\"{at:.1}\" stroke=\"orange\" stroke-width=\"4\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"orange\">Additional network events not shown ({} more)</text>",
            WIDTH / 2.0,
            at + 24.0,
            journal.omitted
        );
    }
    out.push_str("</svg>\n");
    out
}

/// One received message: a 5 px bar in the message's colour with a black arrowhead, its
/// label along the bar (flipped to read left to right), and the full body on hover.
fn arrow(
    out: &mut String,
    (x1, y1): (f64, f64),
    (x2, y2): (f64, f64),
    (src, dest): (&str, &str),
    body: &Value,
    (t0, t1): (f64, f64),
) {
    let colour = colour(src, dest, body);
    let mut angle = (y2 - y1).atan2(x2 - x1).to_degrees();
    if x2 < x1 {
        angle += 180.0;
    }
    let (mx, my) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0);
    let _ = writeln!(
        out,
        "<g class=\"msg\" data-src=\"{}\" data-dest=\"{}\" data-t0=\"{t0:.3}\" data-t1=\"{t1:.3}\">\
         <title>{} → {} {}</title>\
         <line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{colour}\" \
         stroke-width=\"5\" marker-end=\"url(#head)\"/>\
         <text x=\"{mx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" \
         transform=\"rotate({angle:.2} {mx:.1} {my:.1})\">{}</text></g>",
        escape(src),
        escape(dest),
        escape(src),
        escape(dest),
        escape(&body.to_string()),
        my - 5.0,
        escape(&label(body)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_leave_out_ids_and_cut_long_bodies() {
        let body = json!({"type": "broadcast", "msg_id": 3, "message": 7});
        assert_eq!(label(&body), "broadcast {\"message\":7}");
        let long =
            json!({"type": "read_ok", "in_reply_to": 1, "messages": (0..100).collect::<Vec<_>>()});
        assert_eq!(label(&long).chars().count(), LABEL_CHARS);
        let error = json!({"type": "error", "code": 11, "text": "node not ready"});
        assert_eq!(label(&error), "node not ready");
    }

    fn event(id: u64, src: &str, dest: &str, kind: EventKind) -> crate::net::journal::NetEvent {
        crate::net::journal::NetEvent {
            time: Duration::from_millis(id),
            id,
            src: src.into(),
            dest: dest.into(),
            kind,
        }
    }

    #[test]
    fn one_arrow_per_receive_and_a_line_past_the_limit() {
        let body = json!({"type": "gossip", "msg_id": 1});
        let mut journal = Journal {
            events: vec![
                event(1, "n2", "n10", EventKind::Send(body.clone())),
                event(2, "c1", "n2", EventKind::Send(json!({"type": "read"}))),
                event(1, "n2", "n10", EventKind::Recv),
                event(1, "n2", "n10", EventKind::Recv), // a duplicate: two arrows
                event(3, "n10", "n2", EventKind::Send(body)), // dropped: no arrow
            ],
            omitted: 0,
            off: false,
        };
        let svg = draw(&journal, Duration::ZERO);
        assert_eq!(svg.matches("<g class=\"msg\"").count(), 2);
        // Columns: the client first, then nodes by number.
        let names: Vec<&str> = svg
            .match_indices("class=\"name\"")
            .map(|(at, _)| {
                svg[at..]
                    .split('>')
                    .nth(1)
                    .unwrap()
                    .trim_end_matches("</text")
            })
            .collect();
        assert_eq!(names, ["c1", "n2", "n10"]);
        assert!(!svg.contains("Additional network events not shown"));
        journal.omitted = 5;
        let svg = draw(&journal, Duration::ZERO);
        assert!(svg.contains("Additional network events not shown (5 more)"));
    }

    #[test]
    fn colours_by_kind() {
        let ok = json!({"type": "gossip"});
        assert_eq!(colour("n1", "n2", &ok), SERVER_COLOUR);
        assert_eq!(colour("c1", "n2", &ok), CLIENT_COLOUR);
        assert_eq!(colour("n1", "n2", &json!({"type": "error"})), ERROR_COLOUR);
    }
}
