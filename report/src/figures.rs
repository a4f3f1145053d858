//! The report's figures as PNG files (plotters' bitmap backend). Text is drawn with DejaVu
//! Sans embedded in the binary (`report/assets/`, its licence beside it), so rendering
//! needs no system font library.

use std::{path::Path, sync::Once};

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font once, as `sans-serif`.
fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType file compiled in; failing here is a build bug.
        if register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            panic!("the embedded DejaVu Sans is not a valid font");
        }
    });
}

/// Figure size in pixels.
pub const SIZE: (u32, u32) = (900, 560);

/// One named line or point set.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// The range of `values` widened by 5 % each side (a unit range when empty or flat).
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    lo - pad..hi + pad
}

fn drawing_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the figure: {e}")
}

/// Draws the legend and writes the file.
fn finish<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    root: &DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(drawing_error)?;
    root.present().map_err(drawing_error)
}

/// Lines with markers (e.g. accuracy against answers given, paper Fig. 5).
pub fn line_chart(path: &Path, title: &str, axes: (&str, &str), series: &[Series]) -> Result<()> {
    chart(path, title, axes, series, true)
}

/// Points only, one colour per series (e.g. user embeddings by group, paper Fig. 1).
pub fn scatter(path: &Path, title: &str, axes: (&str, &str), series: &[Series]) -> Result<()> {
    chart(path, title, axes, series, false)
}

fn chart(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    series: &[Series],
    lines: bool,
) -> Result<()> {
    fonts();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(drawing_error)?;
    let xs = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(xs, ys)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(drawing_error)?;
    for (i, s) in series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let radius = if lines { 4 } else { 2 };
        if lines {
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(drawing_error)?;
        }
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|&p| Circle::new(p, radius, colour.filled())),
            )
            .map_err(drawing_error)?
            .label(s.name.as_str())
            .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
    }
    finish(&mut chart, &root)
}

/// Grouped bars: one group of bars per category, one bar per series (`values[s][c]`),
/// e.g. the share of each expert per group (paper Fig. 6).
pub fn bars(
    path: &Path,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<()> {
    fonts();
    if let Some((name, values)) = series.iter().find(|(_, v)| v.len() != categories.len()) {
        anyhow::bail!(
            "series {name:?} has {} values for {} categories",
            values.len(),
            categories.len()
        );
    }
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(drawing_error)?;
    let top = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let n = categories.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        // Room under 0 for the category names, each centred under its bars.
        .build_cartesian_2d(0f64..n as f64, -0.07 * top..top)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(drawing_error)?;
    let centred = TextStyle::from(("sans-serif", 16).into_font()).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Center,
        ),
    );
    chart
        .draw_series(categories.iter().enumerate().map(|(c, name)| {
            Text::new(
                name.clone(),
                (c as f64 + 0.5, -0.035 * top),
                centred.clone(),
            )
        }))
        .map_err(drawing_error)?;
    let width = 0.8 / series.len().max(1) as f64;
    for (s, (name, values)) in series.iter().enumerate() {
        let colour = Palette99::pick(s).to_rgba();
        chart
            .draw_series(values.iter().enumerate().map(|(c, &v)| {
                let x0 = c as f64 + 0.1 + s as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, v)], colour.filled())
            }))
            .map_err(drawing_error)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    finish(&mut chart, &root)
}
