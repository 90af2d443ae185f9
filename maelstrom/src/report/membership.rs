//! `membership.svg`: how each node's failure detector saw its peers over the run (ours,
//! docs/report.md). One block per node; in it, one lane per observer, coloured while that
//! observer saw the node doubted, suspected or dead, with a green tick where it saw it
//! alive again; the nemesis's faults are shaded behind, so detection and revival times can
//! be read off. Over stdio the changes come from the nodes' `membership change` log lines
//! (`parse_status_line`), in the simulation from the state machines themselves.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::faults::{Fault, Marks};
use super::svg::{escape, process_order};
use crate::record::StatusChange;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 60.0;
const LANE: f64 = 5.0;
const GAP: f64 = 14.0;

/// Colour of a status other than alive.
pub fn status_colour(status: &str) -> &'static str {
    match status {
        "doubted" => "#FFE066",
        "suspected" => "#FFAA26",
        "dead" => "#FF1E90",
        _ => "#999999",
    }
}

/// Reads a node's status-change log line, `... membership change peer=n3 from=Alive
/// to=Suspected ...` (src/machine/node.rs writes it): `(peer, status)`, status in lower case.
pub fn parse_status_line(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find("membership change")?..];
    let field = |key: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(|v| v.trim_matches('"').to_string())
    };
    Some((field("peer=")?, field("to=")?.to_lowercase()))
}

/// Draws the changes of `nodes`' views; times since the test started, shown from `origin`,
/// up to `end_s` seconds.
pub fn draw(
    nodes: &[String],
    changes: &[StatusChange],
    marks: &Marks,
    origin: Duration,
    end_s: f64,
) -> String {
    let mut nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    nodes.sort_by_key(|n| process_order(n));
    let end_s = changes
        .iter()
        .map(|c| c.time.saturating_sub(origin).as_secs_f64())
        .fold(end_s, f64::max)
        .max(1.0);
    let x = |t: f64| LEFT + (WIDTH - LEFT - RIGHT) * (t.max(0.0) / end_s);
    let block = LANE * nodes.len().saturating_sub(1).max(1) as f64 + GAP;
    let height = TOP + block * nodes.len() as f64 + 30.0;
    let mut out = String::with_capacity(4096 + 120 * changes.len());
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"14\" font-weight=\"bold\">Membership: how each node's peers saw it</text>"
    );
    legend(&mut out, marks);
    let (top, bottom) = (TOP - 6.0, height - 24.0);
    for band in &marks.bands {
        let _ = writeln!(
            out,
            "<rect class=\"band\" data-fault=\"{}\" x=\"{:.1}\" y=\"{top}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" opacity=\"0.45\"><title>{} {:.1}–{:.1} s</title></rect>",
            band.fault.name(),
            x(band.start),
            (x(band.end) - x(band.start)).max(1.0),
            bottom - top,
            band.fault.hex(),
            band.fault.name(),
            band.start,
            band.end
        );
    }
    for (t, fault) in &marks.lines {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{top}\" y2=\"{bottom}\" stroke=\"{1}\" stroke-width=\"1\"/>",
            x(*t),
            fault.hex()
        );
    }
    // Time axis.
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]
        .into_iter()
        .find(|s| end_s / s <= 12.0)
        .unwrap_or(600.0);
    let mut t = 0.0;
    while t <= end_s {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{bottom}\" y2=\"{1}\" stroke=\"black\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{t} s</text>",
            x(t),
            bottom + 4.0,
            bottom + 16.0
        );
        t += step;
    }

    // Each observer's view of each peer, as status spans.
    let mut views: BTreeMap<(&str, &str), Vec<(f64, &str)>> = BTreeMap::new();
    for c in changes {
        views
            .entry((c.peer.as_str(), c.observer.as_str()))
            .or_default()
            .push((
                c.time.as_secs_f64() - origin.as_secs_f64(),
                c.status.as_str(),
            ));
    }
    for (b, node) in nodes.iter().enumerate() {
        let y0 = TOP + block * b as f64;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-weight=\"bold\">{}</text>\
             <line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#dddddd\"/>",
            LEFT - 8.0,
            y0 + (block - GAP) / 2.0 + 4.0,
            escape(node),
            WIDTH - RIGHT,
            y0 + block - GAP / 2.0,
            y0 + block - GAP / 2.0,
        );
        let observers = nodes.iter().filter(|o| *o != node);
        for (lane, observer) in observers.enumerate() {
            let Some(view) = views.get(&(*node, *observer)) else {
                continue;
            };
            let y = y0 + LANE * lane as f64;
            for (i, (at, status)) in view.iter().enumerate() {
                let until = view.get(i + 1).map_or(end_s, |(t, _)| *t);
                if *status == "alive" {
                    if i > 0 {
                        let _ = writeln!(
                            out,
                            "<rect class=\"status alive\" data-observer=\"{0}\" data-peer=\"{1}\" x=\"{2:.1}\" y=\"{3:.1}\" width=\"2\" height=\"{LANE}\" fill=\"#2CA02C\"><title>{0} saw {1} alive again at {4:.3} s</title></rect>",
                            escape(observer),
                            escape(node),
                            x(*at),
                            y,
                            at
                        );
                    }
                    continue;
                }
                let _ = writeln!(
                    out,
                    "<rect class=\"status {2}\" data-observer=\"{0}\" data-peer=\"{1}\" x=\"{3:.1}\" y=\"{4:.1}\" width=\"{5:.1}\" height=\"{LANE}\" fill=\"{6}\"><title>{0} saw {1} {2} from {7:.3} s to {8:.3} s</title></rect>",
                    escape(observer),
                    escape(node),
                    escape(status),
                    x(*at),
                    y,
                    (x(until) - x(*at)).max(1.0),
                    status_colour(status),
                    at,
                    until
                );
            }
        }
    }
    if changes.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#666666\">No node reported a status change.</text>",
            WIDTH / 2.0,
            TOP + 12.0
        );
    }
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String, marks: &Marks) {
    let mut x = LEFT;
    let statuses = [
        ("doubted", "doubted"),
        ("suspected", "suspected"),
        ("dead", "dead"),
    ];
    let mut entry = |out: &mut String, colour: &str, name: &str| {
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"28\" width=\"12\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"37\">{name}</text>",
            x + 16.0
        );
        x += 24.0 + 7.0 * name.len() as f64;
    };
    for (status, name) in statuses {
        entry(out, status_colour(status), name);
    }
    entry(out, "#2CA02C", "alive again");
    for fault in marks.faults() {
        entry(out, &Fault::hex(fault), fault.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_nodes_log_line() {
        let line = "2026-11-26T15:30:01.616521Z  INFO node::machine::node: membership change peer=n1 from=Alive to=Suspected voters=[\"n0\"]";
        assert_eq!(
            parse_status_line(line),
            Some(("n1".to_string(), "suspected".to_string()))
        );
        assert_eq!(parse_status_line("INFO initialised node=n0"), None);
        assert_eq!(parse_status_line("membership change peer=n1"), None);
    }

    #[test]
    fn draws_spans_and_revivals() {
        let change = |s: u64, observer: &str, status: &str| StatusChange {
            time: Duration::from_secs(s),
            observer: observer.into(),
            peer: "n1".into(),
            status: status.into(),
        };
        let changes = [
            change(2, "n2", "suspected"),
            change(3, "n2", "dead"),
            change(6, "n2", "alive"),
        ];
        let nodes = ["n1".to_string(), "n2".to_string()];
        let svg = draw(&nodes, &changes, &Marks::default(), Duration::ZERO, 10.0);
        assert_eq!(svg.matches("class=\"status suspected\"").count(), 1);
        assert_eq!(svg.matches("class=\"status dead\"").count(), 1);
        assert_eq!(svg.matches("class=\"status alive\"").count(), 1);
    }
}
