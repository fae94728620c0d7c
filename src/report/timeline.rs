//! The timeline: one row per path that made attempts (more when
//! attempts at one path overlap, as `best-of` samples do), one bar per
//! attempt, its generator time and its guard time drawn apart and
//! coloured by verdict. Each bar is `<g class="attempt" data-attempt=N>`.

use std::fmt::Write as _;

use super::html::{escape, ms};
use super::model::Model;

/// Width of the plot, and of the labels left of it.
const PLOT: f64 = 960.0;
const LABELS: f64 = 240.0;

pub fn svg(model: &Model) -> String {
    if model.attempts.is_empty() {
        return "<p class=\"empty\">No attempt was made.</p>".to_string();
    }
    // rows: per path in the order of its first attempt; attempts at one
    // path that overlap go to further rows
    let mut rows: Vec<(String, i64)> = Vec::new(); // (path, end of its last bar)
    let mut row_of = vec![0usize; model.attempts.len()];
    let mut first_row: std::collections::HashMap<&str, Vec<usize>> = Default::default();
    for (n, a) in model.attempts.iter().enumerate() {
        let end = a.end.unwrap_or(model.end).max(a.start);
        let rows_here = first_row.entry(a.path.as_str()).or_default();
        let free = rows_here.iter().copied().find(|&r| rows[r].1 <= a.start);
        let r = match free {
            Some(r) => r,
            None => {
                rows.push((a.path.clone(), end));
                rows_here.push(rows.len() - 1);
                rows.len() - 1
            }
        };
        rows[r].1 = rows[r].1.max(end);
        row_of[n] = r;
    }
    let large = model.attempts.len() > super::html::LARGE;
    let row_h: f64 = if rows.len() > 400 { 6.0 } else { 20.0 };
    let bar_h = (row_h - 4.0).max(3.0);
    let labels = row_h >= 12.0;
    let span = (model.end - model.start).max(1) as f64;
    let x = |t: i64| LABELS + (t - model.start) as f64 / span * PLOT;
    let height = rows.len() as f64 * row_h + 28.0;
    let width = LABELS + PLOT + 40.0;
    let mut out = String::with_capacity(model.attempts.len() * 260 + 4096);
    let _ = write!(
        out,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
         height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"timeline of {} attempts\">",
        model.attempts.len()
    );
    out.push_str(
        "<defs><pattern id=\"hatch\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" \
         patternTransform=\"rotate(45)\"><rect width=\"2\" height=\"4\" fill=\"#fff\" \
         fill-opacity=\"0.55\"/></pattern></defs>",
    );
    // the axis: five ticks
    for k in 0..=4 {
        let t = model.start + (span as i64) * k / 4;
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{1}\"/>\
             <text class=\"axis\" x=\"{0:.1}\" y=\"{2}\">{3}</text>",
            x(t),
            height - 16.0,
            height - 4.0,
            escape(&ms(t - model.start))
        );
    }
    if labels {
        for (r, (path, _)) in rows.iter().enumerate() {
            let _ = write!(
                out,
                "<text class=\"lane\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                LABELS - 6.0,
                r as f64 * row_h + row_h * 0.7,
                escape(&super::html::cut_chars(path, 36, true))
            );
        }
    }
    for (n, a) in model.attempts.iter().enumerate() {
        let y = row_of[n] as f64 * row_h + 2.0;
        let verdict = a.verdict.as_deref().unwrap_or("running");
        let end = a.end.unwrap_or(model.end).max(a.start);
        let guard = a.guard_ms.unwrap_or(0).max(0);
        let gen = a
            .generate_ms
            .unwrap_or((end - a.start - guard).max(0))
            .max(0);
        let x0 = x(a.start);
        let gen_w = (gen as f64 / span * PLOT).max(1.5);
        let guard_w = (guard as f64 / span * PLOT).max(1.0);
        let guard_x = (x(end) - guard_w).max(x0 + gen_w);
        // a large run's bars go without tooltips: the page stays small
        let title = if large {
            String::new()
        } else {
            format!(
                "<title>{} · attempt {} · {} · generator {} · guard {}</title>",
                escape(&super::html::cut_chars(&a.path, 80, true)),
                a.number,
                escape(verdict),
                ms(gen),
                ms(guard)
            )
        };
        let _ = write!(
            out,
            "<g class=\"attempt v-{}\" data-attempt=\"{n}\">{title}<rect class=\"gen\" \
             x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{gen_w:.1}\" height=\"{bar_h}\"/><rect \
             class=\"guard\" x=\"{guard_x:.1}\" y=\"{y:.1}\" width=\"{guard_w:.1}\" \
             height=\"{bar_h}\"/></g>",
            verdict_class(verdict),
        );
    }
    out.push_str("</svg>");
    out
}

/// The class of a verdict (`pass`, `fail`, …): `pass`, `reject`, `fatal`,
/// `interrupted`, `running`.
pub fn verdict_class(verdict: &str) -> &'static str {
    match verdict {
        "pass" => "pass",
        "fatal" => "fatal",
        "interrupted" => "interrupted",
        "running" => "running",
        _ => "reject",
    }
}
