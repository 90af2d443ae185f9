//! The run's report: the files a user opens in a browser after a run (docs/report.md),
//! written into the run's store folder by `write`, whichever driver ran the test.
//!
//! Each file is drawn on its own: one that fails to draw (an error or a panic) is logged,
//! recorded under `:report` in the results as `:valid? :unknown`, and the rest go on. The
//! report never changes the run's verdict.

pub mod faults;
pub mod index;
pub mod membership;
pub mod messages;
pub mod plots;
pub mod serve;
mod svg;
pub mod timeline;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use crate::edn::Edn;
use crate::harness::Outcome;
use crate::options::TestOptions;
use faults::Marks;

/// The files `write` draws, in the order it draws them (`index.html` comes last).
pub const FILES: [&str; 7] = [
    "messages.svg",
    "latency-raw.svg",
    "latency-quantiles.svg",
    "rate.svg",
    "timeline.html",
    "membership.svg",
    "index.html",
];

/// Draws one file, catching panics: a drawing bug must not take the run's results with it.
fn attempt(
    dir: &Path,
    file: &str,
    draw: impl FnOnce() -> Result<String, String>,
) -> Result<(), String> {
    let drawn = catch_unwind(AssertUnwindSafe(draw)).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(format!("panicked: {why}"))
    })?;
    std::fs::write(dir.join(file), drawn).map_err(|e| format!("cannot write: {e}"))
}

/// Writes every file of the report into `dir`, adds `:report` to `results` (before
/// `:valid?`, which it leaves alone) and returns lines for the run's log.
pub fn write(dir: &Path, opts: &TestOptions, outcome: &Outcome, results: &mut Edn) -> Vec<String> {
    let started = Instant::now();
    let history = &outcome.history;
    let origin = outcome.origin;
    let end_s = outcome.end.saturating_sub(origin).as_secs_f64();
    let marks = Marks::from_history(history, end_s);
    let points = plots::points(history);
    let title = format!(
        "{} ({})",
        opts.workload.name(),
        dir.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    );
    let mut parts: Vec<(&str, Result<(), String>)> = vec![
        (
            "messages.svg",
            attempt(dir, "messages.svg", || {
                Ok(messages::draw(&outcome.journal, origin))
            }),
        ),
        (
            "latency-raw.svg",
            attempt(dir, "latency-raw.svg", || {
                plots::latency_raw(&points, &marks, end_s)
            }),
        ),
        (
            "latency-quantiles.svg",
            attempt(dir, "latency-quantiles.svg", || {
                plots::latency_quantiles(&points, &marks, end_s)
            }),
        ),
        (
            "rate.svg",
            attempt(dir, "rate.svg", || plots::rate(&points, &marks, end_s)),
        ),
        (
            "timeline.html",
            attempt(dir, "timeline.html", || Ok(timeline::draw(history, &title))),
        ),
        (
            "membership.svg",
            attempt(dir, "membership.svg", || {
                Ok(membership::draw(
                    &opts.nodes,
                    &outcome.membership,
                    &marks,
                    origin,
                    end_s,
                ))
            }),
        ),
    ];
    insert_report(results, &parts, started.elapsed().as_secs_f64());
    let index = attempt(dir, "index.html", || {
        Ok(index::draw(dir, &title, results, &parts))
    });
    parts.push(("index.html", index));
    insert_report(results, &parts, started.elapsed().as_secs_f64());
    parts
        .iter()
        .filter_map(|(file, result)| {
            result
                .as_ref()
                .err()
                .map(|why| format!("WARN report: could not draw {file}: {why}"))
        })
        .collect()
}

/// `:report {:valid? true, :files {"messages.svg" {:valid? true} ...}, :seconds 0.12}`:
/// a file that failed is `{:valid? :unknown, :error "..."}`, and so is the whole part.
fn insert_report(results: &mut Edn, parts: &[(&str, Result<(), String>)], seconds: f64) {
    let files = parts
        .iter()
        .map(|(file, result)| {
            let entry = match result {
                Ok(()) => Edn::kw_map([("valid?", Edn::Bool(true))]),
                Err(why) => Edn::kw_map([
                    ("valid?", Edn::kw("unknown")),
                    ("error", Edn::Str(why.clone())),
                ]),
            };
            (Edn::Str(file.to_string()), entry)
        })
        .collect();
    let valid = if parts.iter().all(|(_, r)| r.is_ok()) {
        Edn::Bool(true)
    } else {
        Edn::kw("unknown")
    };
    let report = Edn::kw_map([
        ("valid?", valid),
        ("files", Edn::Map(files)),
        ("seconds", Edn::Float((seconds * 1000.0).round() / 1000.0)),
    ]);
    if let Edn::Map(entries) = results {
        match entries.iter_mut().find(|(k, _)| *k == Edn::kw("report")) {
            Some((_, v)) => *v = report,
            None => {
                let at = entries
                    .iter()
                    .position(|(k, _)| *k == Edn::kw("valid?"))
                    .unwrap_or(entries.len());
                entries.insert(at, (Edn::kw("report"), report));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_file_is_unknown_and_the_verdict_stays() {
        let mut results = Edn::kw_map([("valid?", Edn::Bool(true))]);
        let parts = [("a.svg", Ok(())), ("b.svg", Err("boom".to_string()))];
        insert_report(&mut results, &parts, 0.5);
        assert_eq!(results.get("valid?"), Some(&Edn::Bool(true)));
        assert_eq!(
            results.get_in(&["report", "valid?"]),
            Some(&Edn::kw("unknown"))
        );
        let text = results.to_string();
        assert!(text.starts_with("{:report"), "{text}");
        assert!(
            text.contains("\"b.svg\" {:valid? :unknown, :error \"boom\"}"),
            "{text}"
        );
        // A second call replaces the entry.
        insert_report(&mut results, &parts[..1], 0.5);
        assert_eq!(
            results.get_in(&["report", "valid?"]),
            Some(&Edn::Bool(true))
        );
    }

    #[test]
    fn a_panicking_drawing_is_caught() {
        let dir = std::env::temp_dir();
        let result = attempt(&dir, "never-written.svg", || panic!("drawing bug"));
        assert_eq!(result, Err("panicked: drawing bug".to_string()));
        assert!(!dir.join("never-written.svg").exists());
    }
}
