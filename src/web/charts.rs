//! Charts drawn on the server as inline SVG: no script, no library, and every chart followed by
//! its figures as a table (inside `<details>`) for screen readers and for copying.

use maud::{html, Markup};

/// Drawing area, in SVG units (the SVG scales to its container's width).
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;
/// Series colours (distinguishable for the common colour-vision deficiencies).
const COLOURS: [&str; 4] = ["#0b4f9c", "#e69f00", "#009e73", "#cc3311"];

/// A named series of values, one per category (`None`: no value).
pub struct Series<'a> {
    /// Its name, in the legend and the table.
    pub name: &'a str,
    /// Its values.
    pub values: Vec<Option<f64>>,
}

/// How a chart draws its series.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bars side by side per category.
    Bars,
    /// Lines through the points.
    Lines,
}

/// Extras a line chart may draw: a band (low, high per category) and a horizontal limit.
#[derive(Default)]
pub struct Overlay {
    /// A shaded band, per category.
    pub band: Option<(String, Vec<(f64, f64)>)>,
    /// A dashed horizontal line and its name.
    pub limit: Option<(String, f64)>,
}

/// A chart of `series` over `categories`, `unit` naming the values' unit in the axis and table.
pub fn chart(
    id: &str,
    title: &str,
    unit: &str,
    categories: &[String],
    series: &[Series<'_>],
    kind: Kind,
    overlay: &Overlay,
) -> Markup {
    let values = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied());
    let band_highs = overlay
        .band
        .iter()
        .flat_map(|(_, b)| b.iter().map(|(_, h)| *h));
    let limit = overlay.limit.iter().map(|(_, v)| *v);
    let max = values
        .chain(band_highs)
        .chain(limit)
        .fold(0.0_f64, f64::max);
    let top = nice_ceiling(max);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = categories.len().max(1) as f64;
    let slot = plot_w / n;
    let x = |i: usize| LEFT + slot * (i as f64 + 0.5);
    let y = |v: f64| TOP + plot_h * (1.0 - v / top);
    let label_every = (categories.len() / 8).max(1);
    html! {
        figure.chart aria-labelledby={ (id) "-title" } {
            figcaption #{ (id) "-title" } { (title) }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby={ (id) "-title" } {
                @for step in 0..=4 {
                    @let v = top * f64::from(step) / 4.0;
                    line x1=(LEFT) x2=(WIDTH - 8.0) y1=(y(v)) y2=(y(v)) stroke="#ddd" {}
                    text x=(LEFT - 4.0) y=(y(v) + 4.0) text-anchor="end" font-size="11" { (short(v)) }
                }
                @for (i, c) in categories.iter().enumerate() {
                    @if i % label_every == 0 {
                        text x=(x(i)) y=(HEIGHT - 8.0) text-anchor="middle" font-size="11" { (axis_label(c)) }
                    }
                }
                @if let Some((_, band)) = &overlay.band {
                    @let upper = band.iter().enumerate().map(|(i, (_, h))| format!("{:.1},{:.1}", x(i), y(*h)));
                    @let lower = band.iter().enumerate().rev().map(|(i, (l, _))| format!("{:.1},{:.1}", x(i), y(*l)));
                    polygon points=(upper.chain(lower).collect::<Vec<_>>().join(" ")) fill="#0b4f9c" fill-opacity="0.15" {}
                }
                @if let Some((_, v)) = &overlay.limit {
                    line x1=(LEFT) x2=(WIDTH - 8.0) y1=(y(*v)) y2=(y(*v)) stroke="#cc3311" stroke-dasharray="6 4" {}
                }
                @for (k, s) in series.iter().enumerate() {
                    @let colour = COLOURS[k % COLOURS.len()];
                    @match kind {
                        Kind::Bars => {
                            @let bar_w = slot * 0.8 / series.len() as f64;
                            @for (i, v) in s.values.iter().enumerate() {
                                @if let Some(v) = v {
                                    rect x=(x(i) - slot * 0.4 + bar_w * k as f64) y=(y(*v)) width=(bar_w) height=(plot_h + TOP - y(*v)) fill=(colour) {}
                                }
                            }
                        }
                        Kind::Lines => {
                            @let points = s.values.iter().enumerate().filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))));
                            polyline points=(points.collect::<Vec<_>>().join(" ")) fill="none" stroke=(colour) stroke-width="2" {}
                        }
                    }
                }
            }
            ul.legend {
                @for (k, s) in series.iter().enumerate() {
                    li { span class={ "swatch c" (k % COLOURS.len()) } {} (s.name) }
                }
                @if let Some((name, _)) = &overlay.band { li { span.swatch.band {} (name) } }
                @if let Some((name, v)) = &overlay.limit { li { span.swatch.limit {} (name) " (" (short(*v)) " " (unit) ")" } }
            }
            details {
                summary { "Figures" }
                table {
                    thead { tr { th scope="col" { "Week" } @for s in series { th scope="col" { (s.name) " (" (unit) ")" } } } }
                    tbody {
                        @for (i, c) in categories.iter().enumerate() {
                            tr { th scope="row" { (c) } @for s in series { td { (s.values.get(i).copied().flatten().map_or("—".to_owned(), short)) } } }
                        }
                    }
                }
            }
        }
    }
}

/// A category as the axis shows it: a date without its year (`2026-03-09` → `03-09`).
fn axis_label(category: &str) -> &str {
    let is_date = category.len() == 10 && category.as_bytes()[4] == b'-';
    if is_date {
        &category[5..]
    } else {
        category
    }
}

/// The smallest of 1, 2, 5 × 10^k at or above `max` (and at least 1).
fn nice_ceiling(max: f64) -> f64 {
    let mut step = 1.0;
    loop {
        for m in [1.0, 2.0, 5.0] {
            if m * step >= max {
                return m * step;
            }
        }
        step *= 10.0;
    }
}

/// A value as text: whole numbers without decimals, others with one.
fn short(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_up_and_the_figures_are_all_in_the_table() {
        assert_eq!(
            [0.0, 0.7, 3.0, 7.0, 12.0, 180.0].map(nice_ceiling),
            [1.0, 1.0, 5.0, 10.0, 20.0, 200.0]
        );
        let categories = vec!["2026-01-05".to_owned(), "2026-01-12".to_owned()];
        let svg = chart(
            "t",
            "Title",
            "count",
            &categories,
            &[Series {
                name: "released",
                values: vec![Some(3.0), None],
            }],
            Kind::Bars,
            &Overlay::default(),
        )
        .into_string();
        assert_eq!(svg.matches("<rect").count(), 1);
        assert!(svg.contains("<td>3</td>") && svg.contains("<td>—</td>"));
    }
}
