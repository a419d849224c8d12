//! The chart of a run (`results.svg`): one bar per benchmark, coloured by group, on a log
//! scale of operations per second, its limit as a grey bar beneath it, and the ratio and
//! target beside them. The providers are compared by reading down the bars.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::table::ops;
use super::{Results, Row, Verdict};

const ROW_PX: u32 = 20;
const WIDTH: u32 = 1400;
const LABEL_PX: u32 = 420;
const TOP_PX: u32 = 60;
const BOTTOM_PX: u32 = 50;

/// Draws the rows with an ops/s figure as an SVG at `path`.
pub fn draw(results: &Results, path: &Path) -> Result<(), String> {
    let rows: Vec<&Row> = results
        .rows
        .iter()
        .filter(|r| r.ops_per_sec.is_some())
        .collect();
    if rows.is_empty() {
        return Err("no measured rows to draw".into());
    }
    let rates = rows
        .iter()
        .flat_map(|r| [r.ops_per_sec, r.limit_ops_per_sec])
        .flatten();
    let (lo, hi) = rates.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Whole decades, with room on the right for the ratio text.
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil() + 1.0);
    let height = TOP_PX + BOTTOM_PX + ROW_PX * rows.len() as u32;
    let svg = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    draw_on(&svg, &rows, results, (lo, hi)).map_err(|e| format!("{}: {e}", path.display()))?;
    svg.present()
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn draw_on(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    rows: &[&Row],
    results: &Results,
    (lo, hi): (f64, f64),
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let n = rows.len() as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "ops/s per benchmark ({} run, log scale); grey: its limit in the same run",
                results.mode
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(LABEL_PX)
        .build_cartesian_2d((lo..hi).log_scale(), n..0f64)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("operations per second")
        .x_label_formatter(&|v| ops(*v))
        .draw()?;

    let groups: Vec<&str> = {
        let mut seen: Vec<&str> = Vec::new();
        for r in rows {
            if !seen.contains(&r.group.as_str()) {
                seen.push(&r.group);
            }
        }
        seen
    };
    for (i, row) in rows.iter().enumerate() {
        let y = i as f64;
        let colour = Palette99::pick(groups.iter().position(|g| *g == row.group).unwrap_or(0));
        let measured = row.ops_per_sec.unwrap_or(lo);
        chart.draw_series([Rectangle::new(
            [(lo, y + 0.1), (measured, y + 0.55)],
            colour.filled(),
        )])?;
        if let Some(limit) = row.limit_ops_per_sec {
            chart.draw_series([Rectangle::new(
                [(lo, y + 0.55), (limit, y + 0.9)],
                RGBColor(190, 190, 190).filled(),
            )])?;
        }
        let label = format!("{}  {}", row.group, row.benchmark);
        let (px, py) = chart.backend_coord(&(lo, y + 0.5));
        root.draw(&Text::new(
            label,
            (px - 6, py),
            ("sans-serif", 13)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        let right = measured.max(row.limit_ops_per_sec.unwrap_or(0.0)) * 1.15;
        let note = match (row.ratio, row.target) {
            (Some(r), Some(t)) => format!("{r:.2} (>= {t}) {}", row.result.as_str()),
            (Some(r), None) => format!("{r:.2}"),
            _ => String::new(),
        };
        let colour = if row.result == Verdict::Fail {
            RED
        } else {
            BLACK
        };
        chart.draw_series([Text::new(
            note,
            (right, y + 0.5),
            ("sans-serif", 12)
                .into_font()
                .color(&colour)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        )])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_names_every_measured_row() {
        let row = |benchmark: &str, ops: Option<f64>| Row {
            group: "envelope".into(),
            benchmark: benchmark.into(),
            ops_per_sec: ops,
            median_us: ops.map(|o| 1e6 / o),
            p99_ms: None,
            limit: Some("limit".into()),
            limit_ops_per_sec: Some(2e6),
            ratio: ops.map(|o| o / 2e6),
            target: Some(0.6),
            result: Verdict::Pass,
        };
        let results = Results {
            mode: "quick".into(),
            criterion_report: String::new(),
            rows: vec![row("seal_64B", Some(1.5e6)), row("gone_64B", None)],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        draw(&results, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("seal_64B"));
        assert!(svg.contains("0.75 (&gt;= 0.6) pass") || svg.contains("0.75 (>= 0.6) pass"));
        assert!(!svg.contains("gone_64B"));
    }
}
