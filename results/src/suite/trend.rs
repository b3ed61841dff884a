//! The trend over suite runs of the same name: the previous records in the store, the strip of a cell's last
//! outcomes, and the plot of detection rate and throughput per suite run (plotters, SVG, inlined).

use super::record::{CellOutcome, Expectation, SuiteRecord, SUITES_DIR, SUITE_FILE};
use plotters::prelude::*;
use std::path::Path;

/// How many suite runs the trend shows at most.
pub const TREND_RUNS: usize = 10;

/// One suite run in the trend.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The suite run's folder name (a UTC timestamp).
    pub label: String,
    /// Found cells over finished cells of rows expected invalid (None when there are none).
    pub detection_rate: Option<f64>,
    /// Mean completed operations per second over the cells that have it.
    pub ops_per_s: Option<f64>,
    /// Invalid cells of rows expected valid.
    pub false_alarms: usize,
}

/// The suite runs named `name` in the store, oldest first, up to and including `until` (a folder name),
/// at most [`TREND_RUNS`]; shards (each only part of a night) and unreadable records are skipped.
pub fn previous_records(store: &Path, name: &str, until: &str) -> Vec<(String, SuiteRecord)> {
    let dir = store.join(SUITES_DIR).join(name);
    let mut found: Vec<(String, SuiteRecord)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let ts = e.file_name().to_string_lossy().into_owned();
            if ts.starts_with('.') || ts.as_str() > until {
                return None;
            }
            let r = SuiteRecord::load(&e.path().join(SUITE_FILE)).ok()?;
            r.shard.is_none().then_some((ts, r))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let skip = found.len().saturating_sub(TREND_RUNS);
    found.split_off(skip)
}

/// A trend point of one record.
pub fn point(label: &str, r: &SuiteRecord) -> TrendPoint {
    let mut expected_invalid = 0usize;
    let mut found = 0usize;
    let mut false_alarms = 0usize;
    let mut ops = Vec::new();
    for c in &r.cells {
        let Some(row) = r.row(&c.row) else { continue };
        match (row.expect, c.outcome) {
            (Expectation::Invalid { .. }, CellOutcome::Invalid) => {
                expected_invalid += 1;
                found += 1;
            }
            (Expectation::Invalid { .. }, _) => expected_invalid += 1,
            (Expectation::Valid, CellOutcome::Invalid) => false_alarms += 1,
            _ => {}
        }
        ops.extend(c.ops_per_s);
    }
    TrendPoint {
        label: label.to_string(),
        detection_rate: (expected_invalid > 0).then(|| found as f64 / expected_invalid as f64),
        ops_per_s: (!ops.is_empty()).then(|| ops.iter().sum::<f64>() / ops.len() as f64),
        false_alarms,
    }
}

/// The trend plot as SVG text: detection rate (%, left) and mean throughput (ops/s, right) per suite run.
pub fn plot_svg(points: &[TrendPoint]) -> Result<String, String> {
    crate::plots::register_font();
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (900, 300)).into_drawing_area();
        draw(&root, points).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(s)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[TrendPoint],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let n = points.len().max(1) as f64;
    let max_ops = points.iter().filter_map(|p| p.ops_per_s).fold(1.0f64, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(root)
        .caption("Detection rate and throughput per suite run", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .right_y_label_area_size(65)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0f64..105f64)?
        .set_secondary_coord(-0.5f64..n - 0.5, 0f64..max_ops);
    let labels: Vec<String> = points.iter().map(|p| short_label(&p.label)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(points.len().clamp(1, 10))
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("detection rate (%)")
        .label_style(("sans-serif", 13))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("ops/s (mean per cell)")
        .label_style(("sans-serif", 13))
        .draw()?;
    let red = RGBColor(0xc6, 0x28, 0x28);
    let blue = RGBColor(0x0b, 0x5c, 0xad);
    let rate: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.detection_rate.map(|r| (i as f64, r * 100.0)))
        .collect();
    chart
        .draw_series(LineSeries::new(rate.clone(), red.stroke_width(2)))?
        .label("detection rate")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2)));
    chart.draw_series(rate.iter().map(|p| Circle::new(*p, 4, red.filled())))?;
    let ops: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.ops_per_s.map(|o| (i as f64, o)))
        .collect();
    chart
        .draw_secondary_series(LineSeries::new(ops.clone(), blue.stroke_width(2)))?
        .label("throughput")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(2)));
    chart.draw_secondary_series(ops.iter().map(|p| TriangleMarker::new(*p, 5, blue.filled())))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// `20261204T163000Z` as `12-04 16:30`.
fn short_label(ts: &str) -> String {
    let b = ts.as_bytes();
    if b.len() >= 13 && b[8] == b'T' && ts.is_ascii() {
        format!("{}-{} {}:{}", &ts[4..6], &ts[6..8], &ts[9..11], &ts[11..13])
    } else {
        ts.chars().take(16).collect()
    }
}
