//! `latency-raw.svg`, `latency-quantiles.svg` and `rate.svg`: Maelstrom's performance plots
//! (docs/report.md), drawn with `plotters`' SVG backend, the nemesis's faults shaded.
//! Latencies are in ms on a log axis; one marker shape per `f`; outcomes in Maelstrom's
//! colours: ok #81BFFC, info #FFA400, fail #FF1E90.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::{BackendCoord, DrawingErrorKind};

use super::faults::Marks;
use crate::history::{Op, OpType, Process, pairs};

const SIZE: (u32, u32) = (1000, 420);
/// Latencies below this are drawn at it: a log axis has no 0.
const FLOOR_MS: f64 = 0.01;
const QUANTILE_WINDOW_S: f64 = 30.0;
const RATE_WINDOW_S: f64 = 10.0;
pub const QUANTILES: [f64; 4] = [0.5, 0.95, 0.99, 1.0];

/// One completed client op.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub f: String,
    pub outcome: OpType,
    /// Invocation (latency plots) or completion (rate) time, s since the history's origin.
    pub invoked_s: f64,
    pub completed_s: f64,
    pub latency_ms: f64,
}

/// Every client op that completed.
pub fn points(history: &[Op]) -> Vec<Point> {
    pairs(history)
        .into_iter()
        .filter_map(|(i, c)| {
            let (invoke, done) = (&history[i], &history[c?]);
            matches!(invoke.process, Process::Worker(_)).then(|| Point {
                f: invoke.f.clone(),
                outcome: done.kind,
                invoked_s: invoke.time as f64 / 1e9,
                completed_s: done.time as f64 / 1e9,
                latency_ms: done.time.saturating_sub(invoke.time) as f64 / 1e6,
            })
        })
        .collect()
}

pub fn outcome_colour(outcome: OpType) -> RGBColor {
    match outcome {
        OpType::Ok | OpType::Invoke => RGBColor(0x81, 0xBF, 0xFC),
        OpType::Info => RGBColor(0xFF, 0xA4, 0x00),
        OpType::Fail => RGBColor(0xFF, 0x1E, 0x90),
    }
}

/// The label of a series: `f outcome`, as the tests and the legend read it.
pub fn series_label(f: &str, outcome: OpType) -> String {
    format!("{f} {}", outcome.name())
}

fn outcome_rank(outcome: OpType) -> u8 {
    match outcome {
        OpType::Ok => 0,
        OpType::Info => 1,
        OpType::Fail => 2,
        OpType::Invoke => 3,
    }
}

/// Points grouped by (f, outcome rank).
type Groups<'a> = BTreeMap<(String, u8), Vec<&'a Point>>;
/// A line of a plot: f, outcome, marker shape, points.
type Line = (String, OpType, usize, Vec<(f64, f64)>);

/// The points grouped by (f, outcome), in a stable order; and each f's marker number.
fn series(points: &[Point]) -> (Groups<'_>, BTreeMap<String, usize>) {
    let mut groups: Groups<'_> = BTreeMap::new();
    for p in points {
        groups
            .entry((p.f.clone(), outcome_rank(p.outcome)))
            .or_default()
            .push(p);
    }
    let shapes = shape_numbers(groups.keys().map(|(f, _)| f.clone()));
    (groups, shapes)
}

/// Each f's marker number, in the order of the fs.
fn shape_numbers(fs: impl Iterator<Item = String>) -> BTreeMap<String, usize> {
    let fs: std::collections::BTreeSet<String> = fs.collect();
    fs.into_iter().enumerate().map(|(i, f)| (f, i)).collect()
}

/// A marker of shape `shape` (one per f: dot, triangle, cross, square) at `at`.
struct Marker<C> {
    at: C,
    shape: usize,
    colour: RGBColor,
}

fn marker<C>(at: C, shape: usize, colour: RGBColor) -> Marker<C> {
    Marker { at, shape, colour }
}

impl<'a, C> PointCollection<'a, C> for &'a Marker<C> {
    type Point = &'a C;
    type IntoIter = std::iter::Once<&'a C>;
    fn point_iter(self) -> Self::IntoIter {
        std::iter::once(&self.at)
    }
}

impl<C, DB: DrawingBackend> Drawable<DB> for Marker<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut at: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let Some((x, y)) = at.next() else {
            return Ok(());
        };
        let colour = self.colour;
        match self.shape % 4 {
            0 => backend.draw_circle((x, y), 3, &colour, true),
            1 => backend.fill_polygon(vec![(x, y - 4), (x - 4, y + 3), (x + 4, y + 3)], &colour),
            2 => {
                let style = colour.stroke_width(2);
                backend.draw_line((x - 3, y - 3), (x + 3, y + 3), &style)?;
                backend.draw_line((x - 3, y + 3), (x + 3, y - 3), &style)
            }
            _ => backend.draw_rect(
                (x - 3, y - 3),
                (x + 3, y + 3),
                &colour.stroke_width(1),
                false,
            ),
        }
    }
}

/// An axis label: `0.25`, `3`, `1200`.
fn short(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The x axis: from 0 to the last op or the last band, seconds.
fn x_end(points: &[Point], marks: &Marks, end_s: f64) -> f64 {
    points
        .iter()
        .map(|p| p.completed_s)
        .chain(marks.bands.iter().map(|b| b.end))
        .fold(end_s, f64::max)
        .max(1.0)
}

fn latency_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v.max(FLOOR_MS)), hi.max(v))
    });
    if lo.is_finite() {
        (lo / 2.0, (hi * 2.0).max(lo * 4.0))
    } else {
        (FLOOR_MS, 1000.0)
    }
}

/// Draws the nemesis's faults: a band across the top of the plot from each start to its
/// stop, a vertical line at each nemesis op, and a legend entry per kind of fault.
/// `band_low` is where the band starts on the y axis.
fn draw_marks<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    marks: &Marks,
    (y_min, band_low, y_max): (f64, f64, f64),
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    for fault in marks.faults() {
        let (r, g, b) = fault.colour();
        let colour = RGBColor(r, g, b);
        chart
            .draw_series(
                marks
                    .bands
                    .iter()
                    .filter(|band| band.fault == fault)
                    .map(|band| {
                        Rectangle::new(
                            [(band.start, band_low), (band.end, y_max)],
                            colour.mix(0.9).filled(),
                        )
                    }),
            )
            .map_err(err)?;
        let line = RGBColor(r / 2, g / 2, b / 2);
        chart
            .draw_series(
                marks
                    .lines
                    .iter()
                    .filter(|(_, f)| *f == fault)
                    .map(|(t, _)| {
                        PathElement::new(
                            vec![(*t, y_min), (*t, y_max)],
                            line.mix(0.6).stroke_width(1),
                        )
                    }),
            )
            .map_err(err)?
            .label(fault.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    Ok(())
}

/// A chart of latencies (ms, on a log axis) against time (0 to `x_max` s), the nemesis's
/// faults drawn.
fn latency_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: &str,
    points: &[Point],
    marks: &Marks,
    x_max: f64,
) -> Result<LatencyChart<'a, 'b>, String> {
    let (y_min, y_max) = latency_range(points.iter().map(|p| p.latency_ms));
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("Time (s)")
        .y_desc("Latency (ms)")
        .y_label_formatter(&|v| short(*v))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(err)?;
    let band_low = y_max / (y_max / y_min).powf(0.06);
    draw_marks(&mut chart, marks, (y_min, band_low, y_max))?;
    Ok(chart)
}

type LatencyChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// A line through `line`'s points, a marker at each, and its legend entry.
fn draw_line<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    line: &[(f64, f64)],
    label: String,
    colour: RGBColor,
    shape: usize,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    chart
        .draw_series(LineSeries::new(
            line.iter().copied(),
            colour.stroke_width(2),
        ))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| marker((x + 6, y), shape, colour));
    chart
        .draw_series(line.iter().map(|&at| marker(at, shape, colour)))
        .map_err(err)?;
    Ok(())
}

fn finish<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(err)
}

fn blank(root: &DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String> {
    root.fill(&WHITE).map_err(err)
}

/// One point per op: invocation time against latency.
pub fn latency_raw(points: &[Point], marks: &Marks, end_s: f64) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        blank(&root)?;
        let x_max = x_end(points, marks, end_s);
        let mut chart = latency_chart(&root, "Raw latency", points, marks, x_max)?;
        let (groups, shapes) = series(points);
        for ((f, _), ops) in &groups {
            let (shape, outcome) = (shapes[f], ops[0].outcome);
            let colour = outcome_colour(outcome);
            chart
                .draw_series(
                    ops.iter()
                        .map(|p| marker((p.invoked_s, p.latency_ms.max(FLOOR_MS)), shape, colour)),
                )
                .map_err(err)?
                .label(series_label(f, outcome))
                .legend(move |(x, y)| marker((x + 6, y), shape, colour));
        }
        finish(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The `q` quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i]
}

/// Latency quantiles per f over 30 s windows, at each window's middle.
pub fn latency_quantiles(points: &[Point], marks: &Marks, end_s: f64) -> Result<String, String> {
    let mut by_window: BTreeMap<(String, u64), Vec<f64>> = BTreeMap::new();
    for p in points {
        let window = (p.invoked_s / QUANTILE_WINDOW_S) as u64;
        by_window
            .entry((p.f.clone(), window))
            .or_default()
            .push(p.latency_ms.max(FLOOR_MS));
    }
    let x_max = x_end(points, marks, end_s);
    let mut lines: BTreeMap<(String, usize), Vec<(f64, f64)>> = BTreeMap::new();
    for ((f, window), mut values) in by_window {
        values.sort_by(f64::total_cmp);
        // The middle of the window, or of its part within the run.
        let start = window as f64 * QUANTILE_WINDOW_S;
        let mid = (start + (start + QUANTILE_WINDOW_S).min(x_max)) / 2.0;
        for (qi, q) in QUANTILES.iter().enumerate() {
            lines
                .entry((f.clone(), qi))
                .or_default()
                .push((mid, quantile(&values, *q)));
        }
    }
    let palette = [
        RGBColor(0x81, 0xBF, 0xFC),
        RGBColor(0x2E, 0x8B, 0x57),
        RGBColor(0xFF, 0xA4, 0x00),
        RGBColor(0xFF, 0x1E, 0x90),
    ];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        blank(&root)?;
        let mut chart = latency_chart(
            &root,
            "Latency quantiles (30 s windows)",
            points,
            marks,
            x_max,
        )?;
        let shapes = shape_numbers(lines.keys().map(|(f, _)| f.clone()));
        for ((f, qi), line) in &lines {
            let label = format!("{f} {}", QUANTILES[*qi]);
            draw_line(&mut chart, line, label, palette[*qi], shapes[f])?;
        }
        finish(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Completions per second per f × outcome, over 10 s windows.
pub fn rate(points: &[Point], marks: &Marks, end_s: f64) -> Result<String, String> {
    let x_max = x_end(points, marks, end_s);
    let windows = (x_max / RATE_WINDOW_S).ceil().max(1.0) as usize;
    let (groups, shapes) = series(points);
    let mut lines: Vec<Line> = Vec::new();
    for ((f, _), ops) in &groups {
        let mut counts = vec![0u64; windows];
        for p in ops {
            let w = ((p.completed_s / RATE_WINDOW_S) as usize).min(windows - 1);
            counts[w] += 1;
        }
        // The last window may end with the run: its rate is over the part it covers.
        let line = counts
            .iter()
            .enumerate()
            .map(|(w, c)| {
                let start = w as f64 * RATE_WINDOW_S;
                let end = (start + RATE_WINDOW_S).min(x_max);
                ((start + end) / 2.0, *c as f64 / (end - start).max(0.001))
            })
            .collect();
        lines.push((f.clone(), ops[0].outcome, shapes[f], line));
    }
    let y_max = lines
        .iter()
        .flat_map(|(_, _, _, l)| l.iter().map(|(_, y)| *y))
        .fold(1.0f64, f64::max)
        * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        blank(&root)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Throughput (10 s windows)", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("Time (s)")
            .y_desc("Throughput (ops/s)")
            .draw()
            .map_err(err)?;
        draw_marks(&mut chart, marks, (0.0, y_max * 0.94, y_max))?;
        for (f, outcome, shape, line) in &lines {
            let label = series_label(f, *outcome);
            draw_line(&mut chart, line, label, outcome_colour(*outcome), *shape)?;
        }
        finish(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
