//! Latency and throughput plots (PNG and SVG, pure Rust via plotters, with the bundled DejaVu Sans so PNG
//! text needs no system fonts). Every plot shades the nemesis's activity: one band per fault interval,
//! coloured by fault kind, with start and stop lines and a legend entry per kind.
//!
//! Huge histories are downsampled before drawing: the raw latency plot keeps one point per
//! (pixel cell, outcome, function), and at most a fixed number of points, so rendering time and SVG size
//! stay bounded.

use crate::data::FaultInterval;
use checker::history::{Operation, Outcome};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            let _ = plotters::style::register_font("sans-serif", style, FONT);
        }
    });
}

/// Width and height of every plot, in pixels.
pub const PLOT_SIZE: (u32, u32) = (1200, 520);
/// The most points the raw latency plot draws in SVG (PNG takes more: pixels cost nothing there).
pub const MAX_SVG_POINTS: usize = 6_000;
const MAX_PNG_POINTS: usize = 400_000;
const BUCKETS: usize = 80;

/// A plot failed to draw or to be written.
#[derive(Debug, thiserror::Error)]
#[error("plot {plot}: {message}")]
pub struct PlotError {
    pub plot: &'static str,
    pub message: String,
}

/// The three plots of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotKind {
    /// Every completed operation as a point: time on x, latency on a log y axis; colour by outcome, shape
    /// by function.
    LatencyRaw,
    /// p50, p95, p99 and max latency per time bucket.
    LatencyQuantiles,
    /// Completions per second per time bucket, by outcome.
    Rate,
}

impl PlotKind {
    pub const ALL: [PlotKind; 3] = [PlotKind::LatencyRaw, PlotKind::LatencyQuantiles, PlotKind::Rate];

    /// The file stem: `latency-raw`, `latency-quantiles`, `rate`.
    pub fn name(self) -> &'static str {
        match self {
            PlotKind::LatencyRaw => "latency-raw",
            PlotKind::LatencyQuantiles => "latency-quantiles",
            PlotKind::Rate => "rate",
        }
    }

    fn title(self) -> &'static str {
        match self {
            PlotKind::LatencyRaw => "Latency of every operation",
            PlotKind::LatencyQuantiles => "Latency quantiles",
            PlotKind::Rate => "Throughput",
        }
    }
}

/// A fault kind's colour (also used by the HTML timeline).
pub fn fault_color(kind: &str) -> RGBColor {
    match kind {
        "partition" => RGBColor(0x4e, 0x79, 0xa7),
        "kill" => RGBColor(0xe1, 0x57, 0x59),
        "pause" => RGBColor(0xb0, 0x7a, 0xa1),
        "loss" => RGBColor(0xed, 0xc9, 0x48),
        "clock" => RGBColor(0x76, 0xb7, 0xb2),
        k if k.contains("member") => RGBColor(0x9c, 0x75, 0x5f),
        _ => RGBColor(0x8a, 0x94, 0xa6),
    }
}

/// `#rrggbb` of a fault kind's colour.
pub fn fault_color_hex(kind: &str) -> String {
    let RGBColor(r, g, b) = fault_color(kind);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn outcome_color(o: Outcome) -> RGBColor {
    match o {
        Outcome::Ok => RGBColor(0x1a, 0x7f, 0x37),
        Outcome::Fail => RGBColor(0xd6, 0x27, 0x28),
        Outcome::Info => RGBColor(0xff, 0x8c, 0x00),
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Fail => "fail",
        Outcome::Info => "info",
    }
}

/// One completed operation, as the plots see it.
#[derive(Debug, Clone, Copy)]
struct Point {
    /// Invoke time, seconds since the run started.
    t: f64,
    /// Completion time, seconds.
    done: f64,
    latency_ms: f64,
    outcome: Outcome,
    f: u8,
}

/// What the plots draw, prepared once from a history's operations and fault intervals.
#[derive(Debug, Clone)]
pub struct PlotData {
    points: Vec<Point>,
    /// Function names, in the order of `Point::f` (at most 8; the rest share the last slot, `other`).
    fs: Vec<String>,
    faults: Vec<FaultInterval>,
    t_end: f64,
}

const MIN_LATENCY_MS: f64 = 0.001;

impl PlotData {
    /// Prepares the plots' data. `end_ns` is the time the history ends (its last event).
    pub fn new(ops: &[Operation], faults: &[FaultInterval], end_ns: u64) -> PlotData {
        let mut fs: Vec<String> = Vec::new();
        let mut points = Vec::with_capacity(ops.len());
        for op in ops {
            let Some(ret) = op.ret else { continue };
            let f = match fs.iter().position(|x| *x == op.f) {
                Some(i) => i,
                None if fs.len() < 7 => {
                    fs.push(op.f.clone());
                    fs.len() - 1
                }
                None => {
                    if fs.len() == 7 {
                        fs.push("other".into());
                    }
                    7
                }
            };
            points.push(Point {
                t: op.call as f64 / 1e9,
                done: ret as f64 / 1e9,
                latency_ms: (ret.saturating_sub(op.call) as f64 / 1e6).max(MIN_LATENCY_MS),
                outcome: op.outcome,
                f: f as u8,
            });
        }
        let last_fault = faults.iter().map(|f| f.end.unwrap_or(f.start)).max().unwrap_or(0);
        let end = end_ns.max(last_fault) as f64 / 1e9;
        let t_end = if end > 0.0 { end } else { 1.0 };
        PlotData {
            points,
            fs,
            faults: faults.to_vec(),
            t_end,
        }
    }

    /// Number of completed operations.
    pub fn completed(&self) -> usize {
        self.points.len()
    }

    /// Renders one plot as SVG text.
    pub fn svg(&self, kind: PlotKind) -> Result<String, PlotError> {
        register_font();
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, PLOT_SIZE).into_drawing_area();
            self.draw(kind, &root, MAX_SVG_POINTS)
                .and_then(|_| root.present().map_err(|e| e.to_string()))
                .map_err(|message| PlotError {
                    plot: kind.name(),
                    message,
                })?;
        }
        Ok(s)
    }

    /// Renders one plot as a PNG file.
    pub fn png(&self, kind: PlotKind, path: &Path) -> Result<(), PlotError> {
        register_font();
        let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
        self.draw(kind, &root, MAX_PNG_POINTS)
            .and_then(|_| root.present().map_err(|e| e.to_string()))
            .map_err(|message| PlotError {
                plot: kind.name(),
                message: format!("{}: {message}", path.display()),
            })
    }

    /// Writes `<name>.png` and `<name>.svg` of every plot into `dir` (the plots in parallel); returns the SVG
    /// texts in [`PlotKind::ALL`] order (for inlining) and the files written.
    pub fn write_all(&self, dir: &Path) -> Result<(Vec<String>, Vec<PathBuf>), PlotError> {
        let one = |kind: PlotKind| -> Result<(String, [PathBuf; 2]), PlotError> {
            let png = dir.join(format!("{}.png", kind.name()));
            self.png(kind, &png)?;
            let svg = self.svg(kind)?;
            let svg_path = dir.join(format!("{}.svg", kind.name()));
            std::fs::write(&svg_path, &svg).map_err(|e| PlotError {
                plot: kind.name(),
                message: format!("{}: {e}", svg_path.display()),
            })?;
            Ok((svg, [png, svg_path]))
        };
        let done: Vec<Result<(String, [PathBuf; 2]), PlotError>> = std::thread::scope(|s| {
            let handles: Vec<_> = PlotKind::ALL.iter().map(|k| s.spawn(move || one(*k))).collect();
            handles
                .into_iter()
                .zip(PlotKind::ALL)
                .map(|(h, k)| {
                    h.join().unwrap_or_else(|_| {
                        Err(PlotError {
                            plot: k.name(),
                            message: "drawing panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut svgs = Vec::new();
        let mut files = Vec::new();
        for r in done {
            let (svg, paths) = r?;
            svgs.push(svg);
            files.extend(paths);
        }
        Ok((svgs, files))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        kind: PlotKind,
        root: &DrawingArea<DB, Shift>,
        max_points: usize,
    ) -> Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match kind {
            PlotKind::LatencyRaw => self.draw_raw(root, max_points),
            PlotKind::LatencyQuantiles => self.draw_quantiles(root),
            PlotKind::Rate => self.draw_rate(root),
        }
        .map_err(|e| e.to_string())
    }

    fn latency_range(&self) -> (f64, f64) {
        let (mut lo, mut hi) = (f64::MAX, 0f64);
        for p in &self.points {
            lo = lo.min(p.latency_ms);
            hi = hi.max(p.latency_ms);
        }
        if self.points.is_empty() {
            return (0.1, 1000.0);
        }
        let lo = 10f64.powf(lo.log10().floor()).max(MIN_LATENCY_MS);
        let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
        (lo, hi)
    }

    /// Points kept for drawing: one per (cell, outcome, function), cells being `cell` pixels square in a
    /// plot of PLOT_SIZE; then an even stride down to `max`. Fail and info points are kept before ok ones.
    fn downsample(&self, cell: f64, max: usize, lo: f64, hi: f64) -> Vec<Point> {
        let (w, h) = (PLOT_SIZE.0 as f64 / cell, PLOT_SIZE.1 as f64 / cell);
        let (llo, lhi) = (lo.log10(), hi.log10());
        let mut seen = std::collections::HashSet::new();
        let mut kept: Vec<Point> = Vec::new();
        let mut order: Vec<&Point> = self.points.iter().filter(|p| p.outcome != Outcome::Ok).collect();
        order.extend(self.points.iter().filter(|p| p.outcome == Outcome::Ok));
        for p in order {
            let cx = (p.t / self.t_end * w) as i64;
            let cy = ((p.latency_ms.log10() - llo) / (lhi - llo) * h) as i64;
            if seen.insert((cx, cy, p.outcome as u8, p.f)) {
                kept.push(*p);
            }
        }
        if kept.len() > max {
            let stride = kept.len() as f64 / max as f64;
            kept = (0..max).map(|i| kept[(i as f64 * stride) as usize]).collect();
        }
        kept
    }

    fn shade_faults<DB: DrawingBackend, X, Y>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
        y0: f64,
        y1: f64,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
    where
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let mut kinds: Vec<&str> = Vec::new();
        for iv in &self.faults {
            if !kinds.contains(&iv.kind.as_str()) {
                kinds.push(&iv.kind);
            }
        }
        for kind in kinds {
            let color = fault_color(kind);
            let ivs: Vec<&FaultInterval> = self.faults.iter().filter(|i| i.kind == kind).collect();
            let t_end = self.t_end;
            let bands = ivs.iter().map(|iv| {
                let s = iv.start as f64 / 1e9;
                let e = iv.end.map(|e| e as f64 / 1e9).unwrap_or(t_end);
                Rectangle::new([(s, y0), (e.max(s), y1)], color.mix(0.16).filled())
            });
            chart
                .draw_series(bands)?
                .label(kind.to_string())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.mix(0.45).filled())
                });
            let mut lines = Vec::new();
            for iv in &ivs {
                lines.push(iv.start as f64 / 1e9);
                if let Some(e) = iv.end {
                    lines.push(e as f64 / 1e9);
                }
            }
            chart.draw_series(
                lines
                    .into_iter()
                    .map(|x| PathElement::new(vec![(x, y0), (x, y1)], color.stroke_width(1))),
            )?;
        }
        Ok(())
    }

    fn draw_raw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        max_points: usize,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (lo, hi) = self.latency_range();
        let mut chart = ChartBuilder::on(root)
            .caption(PlotKind::LatencyRaw.title(), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..self.t_end, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc("latency (ms)")
            .y_label_formatter(&|v| fmt_ms(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        self.shade_faults(&mut chart, lo, hi)?;
        let cell = if max_points <= MAX_SVG_POINTS { 3.0 } else { 1.0 };
        let pts = self.downsample(cell, max_points, lo, hi);
        for (fi, _) in self.fs.iter().enumerate() {
            for o in [Outcome::Ok, Outcome::Info, Outcome::Fail] {
                let style = outcome_color(o).mix(0.75).filled();
                let sel = pts
                    .iter()
                    .filter(|p| p.f as usize == fi && p.outcome == o)
                    .map(|p| (p.t, p.latency_ms));
                draw_shape(&mut chart, fi, sel, style)?;
            }
        }
        // Legend: colours by outcome, shapes by function.
        for o in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
            let c = outcome_color(o);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?
                .label(outcome_name(o))
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
        }
        let g = RGBColor(0x55, 0x5d, 0x6b).filled();
        for (fi, f) in self.fs.iter().enumerate() {
            let series = chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), u32>>())?
                .label(f.clone());
            match fi % 4 {
                0 => series.legend(move |(x, y)| Circle::new((x + 7, y), 4, g)),
                1 => series.legend(move |(x, y)| TriangleMarker::new((x + 7, y), 5, g)),
                2 => series.legend(move |(x, y)| Cross::new((x + 7, y), 4, g.stroke_width(2))),
                _ => series.legend(move |(x, y)| Rectangle::new([(x + 3, y - 4), (x + 11, y + 4)], g)),
            };
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 13))
            .draw()?;
        Ok(())
    }

    /// Bucket width in seconds and the bucket of a time.
    fn buckets(&self) -> (f64, usize) {
        let n = BUCKETS.min(self.points.len().max(1)).max(1);
        (self.t_end / n as f64, n)
    }

    fn draw_quantiles<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (width, n) = self.buckets();
        let mut per: Vec<Vec<f64>> = vec![Vec::new(); n];
        for p in &self.points {
            let b = ((p.t / width) as usize).min(n - 1);
            per[b].push(p.latency_ms);
        }
        let qs: [(&str, f64, RGBColor); 4] = [
            ("p50", 0.5, RGBColor(0x1f, 0x77, 0xb4)),
            ("p95", 0.95, RGBColor(0x2c, 0xa0, 0x2c)),
            ("p99", 0.99, RGBColor(0xff, 0x7f, 0x0e)),
            ("max", 1.0, RGBColor(0xd6, 0x27, 0x28)),
        ];
        let mut lines: Vec<Vec<(f64, f64)>> = vec![Vec::new(); qs.len()];
        for (b, v) in per.iter_mut().enumerate() {
            if v.is_empty() {
                continue;
            }
            v.sort_by(|a, b| a.total_cmp(b));
            let x = (b as f64 + 0.5) * width;
            for (i, (_, q, _)) in qs.iter().enumerate() {
                let idx = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
                lines[i].push((x, v[idx]));
            }
        }
        let (lo, hi) = self.latency_range();
        let mut chart = ChartBuilder::on(root)
            .caption(PlotKind::LatencyQuantiles.title(), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..self.t_end, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "time since start (s), buckets of {}",
                crate::html::fmt_ns((width * 1e9) as u64)
            ))
            .y_desc("latency (ms)")
            .y_label_formatter(&|v| fmt_ms(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        self.shade_faults(&mut chart, lo, hi)?;
        for (i, (name, _, color)) in qs.iter().enumerate() {
            let color = *color;
            chart
                .draw_series(LineSeries::new(lines[i].iter().copied(), color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 13))
            .draw()?;
        Ok(())
    }

    fn draw_rate<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let (width, n) = self.buckets();
        let outcomes = [Outcome::Ok, Outcome::Fail, Outcome::Info];
        let mut counts = vec![[0u64; 3]; n];
        for p in &self.points {
            let b = ((p.done / width) as usize).min(n - 1);
            let i = outcomes.iter().position(|o| *o == p.outcome).unwrap_or(2);
            counts[b][i] += 1;
        }
        let mut ymax = 1.0f64;
        let lines: Vec<Vec<(f64, f64)>> = (0..3)
            .map(|i| {
                counts
                    .iter()
                    .enumerate()
                    .map(|(b, c)| {
                        let r = c[i] as f64 / width;
                        ymax = ymax.max(r);
                        ((b as f64 + 0.5) * width, r)
                    })
                    .collect()
            })
            .collect();
        let ymax = ymax * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(PlotKind::Rate.title(), ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..self.t_end, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "time since start (s), buckets of {}",
                crate::html::fmt_ns((width * 1e9) as u64)
            ))
            .y_desc("completions / s")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        self.shade_faults(&mut chart, 0.0, ymax)?;
        for (i, o) in outcomes.iter().enumerate() {
            let color = outcome_color(*o);
            chart
                .draw_series(LineSeries::new(lines[i].iter().copied(), color.stroke_width(2)))?
                .label(outcome_name(*o))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 13))
            .draw()?;
        Ok(())
    }
}

fn fmt_ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.0} s", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v:.0} ms")
    } else {
        format!("{:.0} µs", v * 1000.0)
    }
}

fn draw_shape<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    shape: usize,
    pts: impl Iterator<Item = (f64, f64)>,
    style: ShapeStyle,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    match shape % 4 {
        0 => chart.draw_series(pts.map(|c| Circle::new(c, 2, style)))?,
        1 => chart.draw_series(pts.map(|c| TriangleMarker::new(c, 3, style)))?,
        2 => chart.draw_series(pts.map(|c| Cross::new(c, 3, style.stroke_width(1))))?,
        _ => {
            chart.draw_series(pts.map(|c| EmptyElement::at(c) + Rectangle::new([(-2, -2), (2, 2)], style)))?
        }
    };
    Ok(())
}
