//! `timeline.html`: Jepsen's operation timeline (docs/report.md). One column per process,
//! the nemesis first; one box per op from its invocation to its completion, coloured by
//! outcome, saying `process f value`, with its duration, error and op on hover.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::svg::{cut, escape};
use crate::history::{Op, OpType, Process, op_to_edn, pairs};

/// Ops drawn at most; past that, a note says how many were left out.
pub const LIMIT: usize = 10_000;
const COLUMN_PX: f64 = 110.0;
/// Pixels per millisecond of history.
const SCALE: f64 = 0.2;
const MIN_HEIGHT: f64 = 16.0;
const TOP: f64 = 30.0;

/// One box: its process, start and end (ns), outcome, and the ops it stands for.
struct Span<'a> {
    process: Process,
    start: u64,
    end: u64,
    outcome: OpType,
    invoke: &'a Op,
    done: Option<&'a Op>,
}

/// Client ops pair an invocation with its completion (an op never completed runs to the
/// end, as indeterminate); the nemesis records each of its ops twice at one instant.
fn boxes(history: &[Op]) -> Vec<Span<'_>> {
    let end = history.last().map_or(0, |op| op.time);
    let mut out: Vec<Span<'_>> = pairs(history)
        .into_iter()
        .map(|(i, c)| {
            let done = c.map(|c| &history[c]);
            Span {
                process: history[i].process,
                start: history[i].time,
                end: done.map_or(end, |d| d.time),
                outcome: done.map_or(OpType::Info, |d| d.kind),
                invoke: &history[i],
                done,
            }
        })
        .collect();
    let nemesis: Vec<&Op> = history
        .iter()
        .filter(|op| op.process == Process::Nemesis && op.kind != OpType::Invoke)
        .collect();
    let mut i = 0;
    while i < nemesis.len() {
        let op = nemesis[i];
        let paired = nemesis
            .get(i + 1)
            .filter(|next| next.f == op.f && next.time == op.time);
        out.push(Span {
            process: Process::Nemesis,
            start: op.time,
            end: paired.map_or(op.time, |p| p.time),
            outcome: OpType::Info,
            invoke: op,
            done: paired.copied(),
        });
        i += if paired.is_some() { 2 } else { 1 };
    }
    out.sort_by_key(|b| (b.start, b.invoke.index));
    out
}

fn class(outcome: OpType) -> &'static str {
    match outcome {
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info | OpType::Invoke => "info",
    }
}

fn process_name(process: Process) -> String {
    match process {
        Process::Nemesis => "nemesis".into(),
        Process::Worker(p) => p.to_string(),
    }
}

pub fn draw(history: &[Op], title: &str) -> String {
    let all = boxes(history);
    let shown = &all[..all.len().min(LIMIT)];
    let columns: BTreeMap<Process, usize> = {
        let mut processes: Vec<Process> = shown.iter().map(|b| b.process).collect();
        processes.sort_by_key(|p| match p {
            Process::Nemesis => (0, 0),
            Process::Worker(n) => (1, *n),
        });
        processes.dedup();
        processes
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect()
    };
    let height = shown
        .iter()
        .map(|b| TOP + (b.end as f64 / 1e6) * SCALE + MIN_HEIGHT)
        .fold(TOP, f64::max)
        + 20.0;
    let mut out = String::with_capacity(300 * shown.len() + 2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} timeline</title>\n<style>\n\
         body {{ font-family: sans-serif; font-size: 11px; margin: 8px; }}\n\
         #ops {{ position: relative; height: {height:.0}px; }}\n\
         .op {{ position: absolute; width: {w:.0}px; min-height: {MIN_HEIGHT}px; overflow: hidden; \
         white-space: nowrap; border-radius: 2px; padding: 1px 2px; box-sizing: border-box; \
         border: 1px solid rgba(0,0,0,0.2); }}\n\
         .op:hover {{ overflow: visible; z-index: 2; }}\n\
         .ok {{ background: #6DB6FE; }} .info {{ background: #FFAA26; }} .fail {{ background: #FEB5DA; }}\n\
         .process {{ position: absolute; top: 0; font-weight: bold; }}\n\
         </style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title),
        w = COLUMN_PX - 4.0,
    );
    if all.len() > LIMIT {
        let _ = writeln!(
            out,
            "<p class=\"note\">Showing the first {LIMIT} of {} ops.</p>",
            all.len()
        );
    }
    out.push_str("<div id=\"ops\">\n");
    for (process, column) in &columns {
        let _ = writeln!(
            out,
            "<div class=\"process\" style=\"left:{:.0}px\">{}</div>",
            *column as f64 * COLUMN_PX,
            process_name(*process)
        );
    }
    for b in shown {
        let value = b.done.map_or(&b.invoke.value, |d| &d.value).to_string();
        let duration_ms = (b.end - b.start) as f64 / 1e6;
        let mut hover = format!("{duration_ms:.3} ms");
        if let Some(error) = b.done.and_then(|d| d.error.as_ref()) {
            let _ = write!(hover, "\nerror: {error}");
        }
        let _ = write!(hover, "\n{}", op_to_edn(b.done.unwrap_or(b.invoke)));
        let _ = writeln!(
            out,
            "<div class=\"op {}\" style=\"left:{:.0}px;top:{:.1}px;height:{:.1}px\" title=\"{}\">{} {} {}</div>",
            class(b.outcome),
            columns[&b.process] as f64 * COLUMN_PX,
            TOP + b.start as f64 / 1e6 * SCALE,
            (duration_ms * SCALE).max(MIN_HEIGHT),
            escape(&hover),
            process_name(b.process),
            escape(&b.invoke.f),
            escape(&cut(&value, 40)),
        );
    }
    out.push_str("</div>\n</body></html>\n");
    out
}

/// How many boxes `draw` makes of `history` (before the limit): for the tests.
pub fn box_count(history: &[Op]) -> usize {
    boxes(history).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn::Edn;

    fn op(time: u64, process: Process, kind: OpType, f: &str) -> Op {
        Op {
            index: time,
            time: time * 1_000_000,
            process,
            kind,
            f: f.into(),
            value: Edn::Nil,
            error: None,
            final_read: false,
            exception: None,
        }
    }

    #[test]
    fn one_box_per_op() {
        let history = vec![
            op(0, Process::Worker(0), OpType::Invoke, "broadcast"),
            op(1, Process::Nemesis, OpType::Info, "start-partition"),
            op(1, Process::Nemesis, OpType::Info, "start-partition"),
            op(2, Process::Worker(1), OpType::Invoke, "read"),
            op(3, Process::Worker(0), OpType::Ok, "broadcast"),
            op(4, Process::Worker(1), OpType::Fail, "read"),
            op(5, Process::Worker(2), OpType::Invoke, "read"),
        ];
        let html = draw(&history, "t");
        assert_eq!(box_count(&history), 4);
        assert_eq!(html.matches("<div class=\"op ").count(), 4);
        assert_eq!(html.matches("class=\"op ok\"").count(), 1);
        assert_eq!(html.matches("class=\"op fail\"").count(), 1);
        // The nemesis's column comes first.
        assert!(html.contains("<div class=\"process\" style=\"left:0px\">nemesis</div>"));
    }
}
