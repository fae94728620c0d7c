//! A bench as one self-contained HTML page (`guardflow report --bench`,
//! and `/bench/NAME` of `guardflow serve`): the results table with the
//! numbers of `guardflow bench --report` (the same [`Report`], the same
//! cells), success with its Wilson interval per model × arm as an SVG
//! chart with error bars, an attempts histogram per model × arm, and
//! every trial with a link to its run.
//!
//! Names (tasks, models, arms, run ids) are the store's text and are
//! escaped wherever they are markup; the page has the run report's style,
//! script and Content-Security-Policy.

use std::fmt::Write as _;

use super::html::{cut_chars, escape, served_parts, CSS, SCRIPT};
use crate::bench::{model_label, Report, Row};
use crate::store::bench::Trial;

/// How a bench page is served.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Served by `guardflow serve`: trials link to their run pages, the
    /// page links back to the runs list and, while trials run, follows
    /// the bench's progress.
    pub served: Option<BenchServed>,
    /// Trials running now (their writer alive).
    pub running: u64,
}

#[derive(Debug, Clone)]
pub struct BenchServed {
    /// The runs list (filtered to the bench).
    pub list_url: String,
    /// The bench's progress as server-sent events, while trials run.
    pub events_url: Option<String>,
    /// A run's page: this prefix and the run id, percent-encoded.
    pub run_url: String,
}

/// The colours of the arms, in order (then again).
const ARM_CLASSES: usize = 6;
/// Width of the success chart's plot and of its labels.
const PLOT: f64 = 600.0;
const LABELS: f64 = 260.0;
const ROW_H: f64 = 26.0;
/// A histogram's size.
const HIST_W: f64 = 260.0;
const HIST_H: f64 = 120.0;

/// A path segment with everything but unreserved characters
/// percent-encoded (a bench name or run id in a URL).
pub fn url_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The label of a row: `model · arm`, with the task when the bench has
/// several.
fn label(r: &Row, tasks: bool) -> String {
    if tasks {
        format!("{} · {} · {}", r.task, model_label(&r.model), r.arm)
    } else {
        format!("{} · {}", model_label(&r.model), r.arm)
    }
}

/// The page of bench `report` (computed by `crate::bench::report` from
/// `trials`).
pub fn page(report: &Report, trials: &[Trial], options: &BenchOptions) -> String {
    let rows = &report.rows;
    let several_tasks = rows.iter().any(|r| r.task != rows[0].task);
    // arms in order of first appearance: their colour
    let mut arms: Vec<&str> = Vec::new();
    for r in rows {
        if !arms.contains(&r.arm.as_str()) {
            arms.push(&r.arm);
        }
    }
    let arm_class = |arm: &str| arms.iter().position(|a| *a == arm).unwrap_or(0) % ARM_CLASSES;
    let finished: u64 = rows.iter().map(|r| r.trials).sum();
    let unfinished: u64 = rows.iter().map(|r| r.unfinished).sum();
    let status = if options.running > 0 {
        "running"
    } else {
        "finished"
    };
    let mut m = String::new();
    let models: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for r in rows {
            if !v.contains(&model_label(&r.model)) {
                v.push(model_label(&r.model));
            }
        }
        v
    };
    let tasks: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for r in rows {
            if !v.contains(&r.task.as_str()) {
                v.push(&r.task);
            }
        }
        v
    };
    let _ = write!(
        m,
        "<header><h1>bench {}</h1><p class=\"status s-{status}\">{status}</p><dl>\
         <dt>task</dt><dd>{}</dd><dt>models</dt><dd>{}</dd><dt>arms</dt><dd>{}</dd>\
         <dt>trials</dt><dd>{finished} finished{}{}</dd></dl></header>",
        escape(&report.bench),
        escape(&tasks.join(", ")),
        escape(&models.join(", ")),
        escape(&arms.join(", ")),
        if unfinished > 0 {
            format!(", {unfinished} unfinished (not counted)")
        } else {
            String::new()
        },
        if options.running > 0 {
            format!(", {} running now", options.running)
        } else {
            String::new()
        },
    );
    m.push_str(
        "<nav><a href=\"#results\">Results</a> <a href=\"#success\">Success</a> \
         <a href=\"#attempts\">Attempts</a> <a href=\"#trials\">Trials</a></nav>",
    );
    m.push_str(&results(report));
    m.push_str(&success_chart(rows, several_tasks, &arm_class));
    m.push_str(&histograms(rows, several_tasks, &arm_class));
    m.push_str(&trial_lists(rows, trials, several_tasks, options));

    let (csp, served_attrs, back) = served_parts(
        options
            .served
            .as_ref()
            .map(|s| (s.list_url.as_str(), s.events_url.as_deref())),
        "the bench's runs",
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><link rel=\"icon\" href=\"data:,\">\
         <title>guardflow bench {}</title><style>{CSS}</style></head>\
         <body><main id=\"report\" class=\"bench\" data-seq=\"{finished}\" data-status=\"{status}\"\
         {served_attrs}>{back}{m}</main>\
         <script type=\"application/json\" id=\"gf-data\">{{\"attempts\":[]}}</script>\
         <script>{SCRIPT}</script></body></html>\n",
        escape(&report.bench),
    )
}

/// The table: `guardflow bench --report`'s cells; each row also carries
/// its exact numbers as `data-` attributes.
fn results(report: &Report) -> String {
    let mut out = String::from(
        "<section id=\"results\"><h2>Results</h2><div class=\"wide\"><table class=\"bench-results\"><thead><tr>",
    );
    for h in Report::HEADER {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    let num = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
    for (r, cells) in report.rows.iter().zip(report.cells()) {
        let _ = write!(
            out,
            "<tr class=\"row\" data-task=\"{}\" data-model=\"{}\" data-arm=\"{}\" data-trials=\"{}\" \
             data-successes=\"{}\" data-success=\"{}\" data-ci-low=\"{}\" data-ci-high=\"{}\" \
             data-gain-pp=\"{}\" data-fisher-p=\"{}\" data-cohens-h=\"{}\" data-mean-attempts=\"{}\" \
             data-tokens-per-success=\"{}\" data-calls-per-success=\"{}\">",
            escape(&r.task),
            escape(&r.model),
            escape(&r.arm),
            r.trials,
            r.successes,
            r.success,
            r.ci_low,
            r.ci_high,
            num(r.gain_pp),
            num(r.fisher_p),
            num(r.cohens_h),
            r.mean_attempts,
            num(r.tokens_per_success),
            num(r.calls_per_success),
        );
        for (i, c) in cells.iter().enumerate() {
            let tag = if i < 3 { "th" } else { "td" };
            let _ = write!(out, "<{tag}>{}</{tag}>", escape(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div><ul class=\"legend notes\">");
    for r in &report.rows {
        let _ = write!(
            out,
            "<li>{}: {}</li>",
            escape(&label(r, true)),
            escape(&r.terms())
        );
    }
    if let Some(base) = report.rows.first() {
        let _ = write!(
            out,
            "</ul><p class=\"legend\">Over the finished trials. Gains against the first arm \
             (<code>{}</code>) of each task and model, in percentage points; Wilson 95 % \
             intervals; Fisher's exact test, two-sided; Cohen's h. Cost per success: the tokens \
             and generator calls of every trial over the successes. The same numbers as \
             <code>guardflow bench --report {}</code>.</p></section>",
            escape(&base.arm),
            escape(&report.bench)
        );
    } else {
        out.push_str("</ul></section>");
    }
    out
}

/// Success per row, a bar to the rate and an error bar over its Wilson
/// interval; gains, p and h beside the arms compared.
fn success_chart(rows: &[Row], tasks: bool, arm_class: &dyn Fn(&str) -> usize) -> String {
    let mut out = String::from(
        "<section id=\"success\"><h2>Success, with 95 % intervals</h2><p class=\"legend\">Each \
         bar is the share of finished trials that succeeded; the line over it is the Wilson \
         95 % interval. Beside each arm after the first: its gain against the first, Fisher's \
         p and Cohen's h.</p>",
    );
    if rows.is_empty() {
        out.push_str("<p class=\"empty\">No trial finished.</p></section>");
        return out;
    }
    let height = rows.len() as f64 * ROW_H + 30.0;
    let width = LABELS + PLOT + 320.0;
    let x = |p: f64| LABELS + p.clamp(0.0, 1.0) * PLOT;
    let _ = write!(
        out,
        "<div class=\"scroll\"><svg class=\"success\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"success per model and arm\">"
    );
    for k in 0..=4 {
        let p = k as f64 / 4.0;
        let _ = write!(
            out,
            "<line class=\"tick\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"0\" y2=\"{1}\"/>\
             <text class=\"axis\" x=\"{0:.1}\" y=\"{2}\">{3}%</text>",
            x(p),
            height - 18.0,
            height - 4.0,
            k * 25
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = i as f64 * ROW_H + 4.0;
        let mid = y + (ROW_H - 8.0) / 2.0;
        let (lo, hi) = (x(r.ci_low), x(r.ci_high));
        let compared = match (r.gain_pp, r.fisher_p, r.cohens_h) {
            (Some(g), Some(p), Some(h)) => format!(
                "{g:+.1} pp · p {} · h {h:.2}",
                if p < 0.001 {
                    "<0.001".to_string()
                } else {
                    format!("{p:.3}")
                }
            ),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<g class=\"cell arm-{}\" data-model=\"{}\" data-arm=\"{}\"><title>{} · {} of {} \
             succeeded ({:.1}%, 95% CI {:.1}–{:.1}%)</title>\
             <text class=\"lane\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\
             <rect class=\"bar\" x=\"{LABELS}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>\
             <g class=\"errbar\"><line x1=\"{lo:.1}\" x2=\"{hi:.1}\" y1=\"{mid:.1}\" y2=\"{mid:.1}\"/>\
             <line x1=\"{lo:.1}\" x2=\"{lo:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>\
             <line x1=\"{hi:.1}\" x2=\"{hi:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/></g>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{:.1}%{}</text></g>",
            arm_class(&r.arm),
            escape(&r.model),
            escape(&r.arm),
            escape(&label(r, true)),
            r.successes,
            r.trials,
            r.success * 100.0,
            r.ci_low * 100.0,
            r.ci_high * 100.0,
            LABELS - 6.0,
            mid + 4.0,
            escape(&cut_chars(&label(r, tasks), 36, false)),
            (x(r.success) - LABELS).max(0.0),
            ROW_H - 8.0,
            mid - 6.0,
            mid + 6.0,
            mid - 6.0,
            mid + 6.0,
            hi.max(x(r.success)) + 8.0,
            mid + 4.0,
            r.success * 100.0,
            if compared.is_empty() {
                String::new()
            } else {
                format!(" ({})", escape(&compared))
            },
        );
    }
    out.push_str("</svg></div></section>");
    out
}

/// Per row, how many trials took how many judged attempts; one scale for
/// all, so the rows compare.
fn histograms(rows: &[Row], tasks: bool, arm_class: &dyn Fn(&str) -> usize) -> String {
    let mut out = String::from(
        "<section id=\"attempts\"><h2>Attempts per trial</h2><p class=\"legend\">Per model and \
         arm: how many finished trials took 1, 2, … judged attempts (every action's). The same \
         scales in every chart.</p><div class=\"hists\">",
    );
    let max_attempts = rows
        .iter()
        .filter_map(|r| r.attempts.keys().next_back().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let max_trials = rows
        .iter()
        .flat_map(|r| r.attempts.values().copied())
        .max()
        .unwrap_or(1)
        .max(1);
    // a bar per attempts count from 1 (or 0) to the most; at most 60
    // bars, larger counts gathered in the last
    let first = rows
        .iter()
        .filter_map(|r| r.attempts.keys().next().copied())
        .min()
        .unwrap_or(1)
        .min(1);
    let last = max_attempts.min(first + 59);
    let bars = (last - first + 1) as f64;
    let (left, bottom, top) = (28.0, 20.0, 14.0);
    let plot_w = HIST_W - left - 6.0;
    let plot_h = HIST_H - bottom - top;
    let bw = plot_w / bars;
    for r in rows {
        let _ = write!(
            out,
            "<figure><figcaption>{}</figcaption><svg class=\"hist arm-{}\" \
             xmlns=\"http://www.w3.org/2000/svg\" width=\"{HIST_W}\" height=\"{HIST_H}\" \
             viewBox=\"0 0 {HIST_W} {HIST_H}\" role=\"img\" data-model=\"{}\" data-arm=\"{}\" \
             aria-label=\"attempts per trial\">\
             <line class=\"tick\" x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\">{max_trials}</text>",
            escape(&cut_chars(&label(r, tasks), 48, false)),
            arm_class(&r.arm),
            escape(&r.model),
            escape(&r.arm),
            HIST_H - bottom,
            left - 4.0,
            top + 4.0,
        );
        let mut counts = vec![0u64; (last - first + 1) as usize];
        for (&k, &v) in &r.attempts {
            let slot = (k.clamp(first, last) - first) as usize;
            counts[slot] += v;
        }
        for (slot, &v) in counts.iter().enumerate() {
            let k = first + slot as u64;
            let h = v as f64 / max_trials as f64 * plot_h;
            let x = left + slot as f64 * bw;
            let more = if k == last && last < max_attempts {
                "+"
            } else {
                ""
            };
            if v > 0 {
                let _ = write!(
                    out,
                    "<rect class=\"hbar\" data-attempts=\"{k}\" data-trials=\"{v}\" x=\"{:.1}\" \
                     y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{k}{more} attempt(s): \
                     {v} trial(s)</title></rect>",
                    x + 1.0,
                    HIST_H - bottom - h,
                    (bw - 2.0).max(1.0),
                );
            }
            if bars <= 12.0 || slot == 0 || k == last {
                let _ = write!(
                    out,
                    "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\">{k}{more}</text>",
                    x + bw / 2.0,
                    HIST_H - 6.0
                );
            }
        }
        let _ = write!(
            out,
            "</svg><p class=\"legend\">{} trials, {:.2} attempts on average</p></figure>",
            r.trials, r.mean_attempts
        );
    }
    out.push_str("</div></section>");
    out
}

/// Every trial, per row, in trial order: a link to its run page (served)
/// or an anchor with its run id (in a file).
fn trial_lists(rows: &[Row], trials: &[Trial], tasks: bool, options: &BenchOptions) -> String {
    let mut out = String::from(
        "<section id=\"trials\"><h2>Trials</h2><p class=\"legend\">Every trial is a run in the \
         store",
    );
    out.push_str(if options.served.is_some() {
        ": click one for its report.</p>"
    } else {
        ": <code>guardflow report RUN_ID</code> writes its report.</p>"
    });
    for r in rows {
        let mut mine: Vec<&Trial> = trials
            .iter()
            .filter(|t| {
                t.meta.task == r.task
                    && t.meta
                        .bench
                        .as_ref()
                        .is_some_and(|b| b.model == r.model && b.arm == r.arm)
            })
            .collect();
        mine.sort_by_key(|t| t.meta.bench.as_ref().map_or(0, |b| b.trial));
        let _ = write!(
            out,
            "<details class=\"trials\" open><summary>{}: {} trials, {} succeeded</summary>\
             <ol class=\"trials\">",
            escape(&label(r, tasks)),
            mine.len(),
            r.successes
        );
        for t in mine {
            let (class, word) = match t.success {
                Some(true) => ("pass", "succeeded"),
                Some(false) => ("fatal", "failed"),
                None => ("interrupted", "unfinished"),
            };
            let n = t.meta.bench.as_ref().map_or(0, |b| b.trial);
            let id = escape(&t.run_id);
            let href = match &options.served {
                Some(s) => format!("{}{}", s.run_url, url_segment(&t.run_id)),
                None => format!("#trial-{}", url_segment(&t.run_id)),
            };
            let _ = write!(
                out,
                "<li class=\"trial t-{class}\" id=\"trial-{anchor}\"><a href=\"{href}\" \
                 title=\"run {id}: {word}, {} attempt(s)\">trial {n}</a> <code>{id}</code> \
                 <span class=\"st\">{word}</span></li>",
                t.attempts.len(),
                anchor = url_segment(&t.run_id),
                href = escape(&href),
            );
        }
        out.push_str("</ol></details>");
    }
    out.push_str("</section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_segments_keep_only_unreserved_characters() {
        assert_eq!(url_segment("probe-probe_1.x~"), "probe-probe_1.x~");
        assert_eq!(url_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(url_segment("</script>"), "%3C%2Fscript%3E");
        assert_eq!(url_segment("é"), "%C3%A9");
    }
}
