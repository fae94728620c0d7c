//! The page: escaping, the sections, the data block the script reads,
//! the size budget of the texts.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use super::model::{Kind, Model, Status};
use super::{diff, Options, RunData};
use crate::check::ir::Strategy;

/// The pages' style.
pub const CSS: &str = include_str!("report.css");
pub(crate) const SCRIPT: &str = include_str!("report.js");

/// The policy of a report file: nothing but its own inline style, script
/// and `data:` images.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";
/// The policy of a served page: the same, and the run's events from the
/// server it came from.
pub const CSP_SERVED: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; img-src data:; connect-src 'self'";

/// What the page's texts (prompts, outputs, feedback) may take in all,
/// besides the markup: a large run's texts are cut to share it.
const SIZE_TARGET: usize = 8 << 20;
/// The least the texts get, however large the markup.
const MIN_TEXT_BUDGET: usize = 1 << 20;
/// The most one text gets.
const MAX_TEXT: usize = 256 << 10;
/// Runs with more attempts than this show each action's attempts
/// closed at first.
pub const LARGE: usize = 400;
/// The least one text gets.
const MIN_TEXT: usize = 48;
/// What an attempt's entry in the data block takes besides its texts.
const ENTRY_OVERHEAD: usize = 96;

/// Text for HTML: element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `n` characters of `s`, the rest said with `…` (at the start
/// when `keep_end`: a path's end is what tells it apart).
pub fn cut_chars(s: &str, n: usize, keep_end: bool) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    if keep_end {
        let skip = count - n + 1;
        format!("…{}", s.chars().skip(skip).collect::<String>())
    } else {
        format!(
            "{}…",
            s.chars().take(n.saturating_sub(1)).collect::<String>()
        )
    }
}

/// `0 ms`, `850 ms`, `1.2 s`, `3m 04s`.
pub fn ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// What one character costs in the data block: JSON's escapes, and `<`
/// written `\u003c` so no text can close the block.
fn json_cost(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' => 2,
        '<' => 6,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `text` cut to what `cap` bytes of the data block hold; and how many
/// bytes were cut.
fn cut_to(text: &str, cap: usize) -> (&str, usize) {
    let mut cost = 0;
    for (i, c) in text.char_indices() {
        cost += json_cost(c);
        if cost > cap {
            return (&text[..i], text.len() - i);
        }
    }
    (text, 0)
}

/// A value as JSON inside `<script type="application/json">`.
fn data_json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "{}".to_string())
        .replace('<', "\\u003c")
}

fn verdict_word(v: Option<&str>) -> &str {
    match v {
        Some("pass") => "passed",
        Some("fatal") => "fatal",
        Some("interrupted") => "interrupted",
        Some("fail") => "rejected",
        Some(other) => other,
        None => "running",
    }
}

/// A page's content policy, its `main` element's attributes when served
/// and its link back: served by `guardflow serve` (`served`: the list
/// it came from, the events it follows), or a file.
pub(super) fn served_parts(
    served: Option<(&str, Option<&str>)>,
    back: &str,
) -> (&'static str, String, String) {
    match served {
        None => (CSP, String::new(), String::new()),
        Some((list_url, events_url)) => (
            CSP_SERVED,
            match events_url {
                Some(url) => format!(" data-events=\"{}\"", escape(url)),
                None => String::new(),
            },
            format!(
                "<p class=\"back\"><a href=\"{}\">← {back}</a></p>",
                escape(list_url)
            ),
        ),
    }
}

pub fn page(data: &RunData, model: &Model, options: &Options) -> String {
    let timeline = super::timeline::svg(model);
    let tree = tree(model);
    let (graph, bounds) = workflow(data, model);
    let mut markup = String::new();
    let status = escape(&data.status);
    let _ = write!(
        markup,
        "<header><h1>run {}</h1><p class=\"status s-{status}\">{status}</p><dl>\
         <dt>task</dt><dd>{}</dd><dt>workflow</dt><dd>{}</dd><dt>started</dt><dd>{} UTC</dd>\
         <dt>duration</dt><dd>{}</dd><dt>attempts</dt><dd>{}</dd><dt>generator calls</dt><dd>{}</dd>{}\
         </dl></header>",
        escape(&data.meta.id),
        escape(&data.meta.task),
        escape(&data.meta.workflow),
        crate::store::utc_time(data.meta.started_ms),
        ms(model.end - data.meta.started_ms),
        model.attempts.len(),
        escape(&calls(data, model)),
        if model.sessions > 1 {
            format!("<dt>sessions</dt><dd>{} (resumed)</dd>", model.sessions)
        } else {
            String::new()
        }
    );
    markup.push_str(
        "<nav><a href=\"#timeline\">Timeline</a> <a href=\"#tree\">Decomposition and attempts</a> \
         <a href=\"#graph\">Workflow graph</a> <a href=\"#bounds\">Bounds</a></nav>",
    );
    let _ = write!(
        markup,
        "<section id=\"timeline\"><h2>Timeline</h2><p class=\"legend\"><span class=\"key v-pass\">\
         passed</span> <span class=\"key v-reject\">rejected</span> <span class=\"key v-fatal\">\
         fatal</span> <span class=\"key v-interrupted\">interrupted</span> <span class=\"key \
         v-running\">running</span> — each bar is an attempt: its generator time, then its guard \
         time (hatched). Click a bar for the attempt.</p><div class=\"scroll\">{timeline}</div>\
         </section>"
    );
    let _ = write!(
        markup,
        "<section id=\"tree\"><h2>Decomposition and attempts</h2><p class=\"legend\">Tasks, the \
         methods they tried (in order) and their subtasks; the path the run took is marked, \
         failed methods and escalations said. Open an attempt for its exact prompt, output, \
         verdict, full feedback and the diff against the attempt before it.</p>{tree}</section>"
    );
    let _ = write!(
        markup,
        "<section id=\"graph\"><h2>Workflow graph</h2>{graph}</section>\
         <section id=\"bounds\"><h2>Bounds</h2>{bounds}</section>"
    );
    // the texts share what the markup leaves
    let n = model.attempts.len().max(1);
    let budget = SIZE_TARGET
        .saturating_sub(markup.len())
        .max(MIN_TEXT_BUDGET);
    let per_attempt = (budget / n).saturating_sub(ENTRY_OVERHEAD);
    let cap = |share: usize| (per_attempt * share / 100).clamp(MIN_TEXT, MAX_TEXT);
    let mut shown_outputs: Vec<&str> = Vec::with_capacity(model.attempts.len());
    let mut attempts = Vec::with_capacity(model.attempts.len());
    for a in &model.attempts {
        let (p, pc) = cut_to(&a.prompt, cap(30));
        let (o, oc) = cut_to(a.output.as_deref().unwrap_or(""), cap(35));
        let (f, fc) = cut_to(&a.feedback, cap(25));
        let mut v =
            json!({ "p": p, "o": o, "f": f, "v": a.verdict, "path": a.path, "n": a.number });
        let obj = v.as_object_mut().expect("an object");
        for (key, cut) in [("pc", pc), ("oc", oc), ("fc", fc)] {
            if cut > 0 {
                obj.insert(key.into(), cut.into());
            }
        }
        if a.output.is_none() {
            obj.insert("no".into(), true.into());
        }
        if let Some(r) = &a.role {
            let (r, rc) = cut_to(r, cap(5));
            obj.insert("r".into(), r.into());
            if rc > 0 {
                obj.insert("rc".into(), rc.into());
            }
        }
        if let Some(p) = &a.provider {
            obj.insert("provider".into(), p.as_str().into());
        }
        if !a.judges.is_empty() {
            let each = cap(5) / a.judges.len().min(8);
            let judges: Vec<Value> = a
                .judges
                .iter()
                .take(8)
                .map(|j| {
                    let (p, pc) = cut_to(&j.prompt, each.max(MIN_TEXT));
                    let (ans, ac) = cut_to(&j.answer, each.max(MIN_TEXT));
                    json!({"g": j.guard, "m": j.generator, "c": j.call, "p": p, "pc": pc, "a": ans, "ac": ac})
                })
                .collect();
            obj.insert("j".into(), judges.into());
            if a.judges.len() > 8 {
                obj.insert("jc".into(), (a.judges.len() - 8).into());
            }
        }
        if let Some(prev) = a.prev {
            obj.insert("pv".into(), prev.into());
            let old = shown_outputs.get(prev).copied().unwrap_or("");
            let runs: Vec<Value> = diff::line_diff(old, o)
                .into_iter()
                .map(|r| match r {
                    diff::Run::Same(n) => json!([0, n]),
                    diff::Run::Removed(n) => json!([1, n]),
                    diff::Run::Added(n) => json!([2, n]),
                })
                .collect();
            obj.insert("d".into(), runs.into());
        }
        shown_outputs.push(o);
        attempts.push(v);
    }
    let data_block = data_json(&json!({ "run": data.meta.id, "attempts": attempts }));
    let (csp, served_attrs, back) = served_parts(
        options
            .served
            .as_ref()
            .map(|s| (s.list_url.as_str(), s.events_url.as_deref())),
        "all runs",
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><link rel=\"icon\" href=\"data:,\">\
         <title>guardflow run {} — {}</title><style>{CSS}</style></head>\
         <body><main id=\"report\" data-seq=\"{}\" data-status=\"{status}\"{served_attrs}>{back}{markup}</main>\
         <script type=\"application/json\" id=\"gf-data\">{data_block}</script>\
         <script>{SCRIPT}</script></body></html>\n",
        escape(&data.meta.id),
        escape(&data.meta.task),
        model.last_seq
    )
}

/// `4 of at most 6`.
fn calls(data: &RunData, model: &Model) -> String {
    let used = match model.finished {
        Some(f) => f.generator_calls,
        None => model
            .attempts
            .iter()
            .filter(|a| a.verdict.as_deref() != Some("interrupted"))
            .count() as i64,
    };
    match data.meta.worst_case_calls {
        Some(w) => format!("{used} of at most {w}"),
        None => used.to_string(),
    }
}

/// The tree, as nested lists; written with a stack, so no depth of
/// nesting can overflow one.
fn tree(model: &Model) -> String {
    let large = model.attempts.len() > LARGE;
    enum Step {
        Open(usize),
        Close,
    }
    let mut out = String::from("<ul class=\"tree\">");
    let mut stack: Vec<Step> = model.roots.iter().rev().map(|&n| Step::Open(n)).collect();
    while let Some(step) = stack.pop() {
        let n = match step {
            Step::Close => {
                out.push_str("</ul></li>");
                continue;
            }
            Step::Open(n) => n,
        };
        let node = &model.nodes[n];
        let kind = match node.kind {
            Kind::Task => "task",
            Kind::Method => "method",
            Kind::Action => "action",
            Kind::Other => "other",
        };
        let on_path = matches!(node.status, Status::Passed | Status::Running);
        let _ = write!(
            out,
            "<li class=\"node k-{kind} s-{}{}\" id=\"n{n}\"><span class=\"kind\">{kind}</span> ",
            node.status.class(),
            if on_path { " on-path" } else { "" },
        );
        match node.kind {
            Kind::Action if node.label != node.name => {
                let _ = write!(
                    out,
                    "<b>{}</b> = {}",
                    escape(&node.label),
                    escape(&node.name)
                );
            }
            _ => {
                let _ = write!(out, "<b>{}</b>", escape(&node.name));
            }
        }
        let _ = write!(out, " <span class=\"st\">{}</span>", node.status.word());
        if node.commits > 1 {
            let _ = write!(
                out,
                " <span class=\"note\">committed {} times</span>",
                node.commits
            );
        }
        if let Some(r) = &node.reason {
            let (shown, cut) = cut_to(r, 4000);
            let _ = write!(
                out,
                "<pre class=\"reason\">{}{}</pre>",
                escape(shown),
                cut_note(cut)
            );
        }
        for (target, feedback) in &node.escalations {
            let (shown, cut) = cut_to(feedback, 2000);
            let _ = write!(
                out,
                "<div class=\"escalation\">escalated to <b>{}</b>:<pre>{}{}</pre></div>",
                escape(target),
                escape(shown),
                cut_note(cut)
            );
        }
        if !node.attempts.is_empty() {
            // a large run's lists start closed: the page lays out fast
            if large {
                let passed = node
                    .attempts
                    .iter()
                    .filter(|&&a| model.attempts[a].verdict.as_deref() == Some("pass"))
                    .count();
                let _ = write!(
                    out,
                    "<details class=\"alist\"><summary>{} attempts, {passed} passed</summary>",
                    node.attempts.len()
                );
            }
            out.push_str("<ol class=\"attempts\">");
            for &a in &node.attempts {
                let at = &model.attempts[a];
                let verdict = at.verdict.as_deref();
                let first = at.feedback.lines().next().unwrap_or("");
                let session = if at.session > 1 {
                    format!(" · session {}", at.session)
                } else {
                    String::new()
                };
                let _ = write!(
                    out,
                    "<li><details class=\"attempt v-{}\" id=\"a{a}\" data-attempt=\"{a}\"><summary>\
                     attempt {} · {} · {} + {}{session}{}</summary><div class=\"body\"></div>\
                     </details></li>",
                    super::timeline::verdict_class(verdict.unwrap_or("running")),
                    at.number,
                    verdict_word(verdict),
                    ms(at.generate_ms.unwrap_or(0)),
                    ms(at.guard_ms.unwrap_or(0)),
                    if first.is_empty() || large {
                        String::new()
                    } else {
                        format!(" · {}", escape(&cut_chars(first, 80, false)))
                    }
                );
            }
            out.push_str("</ol>");
            if large {
                out.push_str("</details>");
            }
        }
        if node.children.is_empty() {
            out.push_str("</li>");
        } else {
            out.push_str("<ul>");
            stack.push(Step::Close);
            for &c in node.children.iter().rev() {
                stack.push(Step::Open(c));
            }
        }
    }
    out.push_str("</ul>");
    out
}

fn cut_note(cut: usize) -> String {
    if cut == 0 {
        String::new()
    } else {
        format!("\n… {cut} more bytes cut here (the full text: `guardflow trace`)")
    }
}

/// The graph and the bounds, or why they cannot be shown.
fn workflow(data: &RunData, model: &Model) -> (String, String) {
    let w = match &data.workflow {
        Ok(w) => w,
        Err(why) => {
            let p = format!(
                "<p class=\"missing\">The workflow is not shown: {}.</p>",
                escape(why)
            );
            return (p.clone(), p + &action_table(data, model));
        }
    };
    let changed = if w.changed {
        "<p class=\"changed\">The workflow file changed since this run started: the graph and \
         bounds are of the file as it is now.</p>"
    } else {
        ""
    };
    let graph = match w.program.task(&data.meta.task) {
        Some(root) => {
            let (methods, reached) = model.visited();
            format!(
                "{changed}<p class=\"legend\">As <code>guardflow graph</code> draws it: solid \
                 arrows order subtasks, dashed arrows carry data, red arrows are a deadlock \
                 witness. The subtasks the run reached are highlighted; each method is coloured \
                 by what the run did with it.</p><div class=\"scroll\">{}</div>",
                super::graph::svg(&w.program, &w.graphs, root, &methods, &reached)
            )
        }
        None => format!(
            "{changed}<p class=\"missing\">The workflow has no task `{}` now.</p>",
            escape(&data.meta.task)
        ),
    };
    let mut bounds = String::from(changed);
    if let Some(b) = w.bounds.iter().find(|b| b.task == data.meta.task) {
        let used_calls = match model.finished {
            Some(f) => f.generator_calls.to_string(),
            None => model.attempts.len().to_string(),
        };
        let used_guards = match model.finished {
            Some(f) => f.guard_runs.to_string(),
            None => "-".to_string(),
        };
        let tokens: i64 = model.attempts.iter().filter_map(|a| a.tokens).sum();
        let elapsed = model
            .finished
            .map_or(model.end - data.meta.started_ms, |f| f.elapsed_ms);
        let cell = |v: Option<u64>, f: &dyn Fn(u64) -> String| v.map_or("unbounded".to_string(), f);
        let _ = write!(
            bounds,
            "<table class=\"bounds\"><thead><tr><th></th><th>the checker's worst case</th>\
             <th>this run</th></tr></thead><tbody>"
        );
        match &b.cost {
            Some(c) => {
                let rows = [
                    ("generator calls", c.generator_calls.to_string(), used_calls),
                    ("guard runs", c.guard_runs.to_string(), used_guards),
                    (
                        "tokens",
                        cell(c.tokens, &|t| t.to_string()),
                        if tokens > 0 {
                            tokens.to_string()
                        } else {
                            "not reported".into()
                        },
                    ),
                    (
                        "time",
                        cell(c.time_ms, &|t| crate::cli::bounds::duration(t)),
                        ms(elapsed),
                    ),
                ];
                for (what, worst, used) in rows {
                    let _ = write!(
                        bounds,
                        "<tr><th>{what}</th><td>{}</td><td>{}</td></tr>",
                        escape(&worst),
                        escape(&used)
                    );
                }
            }
            None => bounds.push_str(
                "<tr><th>cost</th><td>recursion too deep to bound here</td><td></td></tr>",
            ),
        }
        if let Some(p) = b.p_success {
            let _ = write!(
                bounds,
                "<tr><th>P(success) ≥</th><td>{p:.4}</td><td>{}</td></tr>",
                match model.finished {
                    Some(f) if f.success => "succeeded",
                    Some(_) => "failed",
                    None => "unfinished",
                }
            );
        }
        bounds.push_str("</tbody></table>");
    }
    bounds.push_str(&action_table(data, model));
    (graph, bounds)
}

/// Per action: attempts made, the most in one run of it, what its
/// `:retry` allows.
fn action_table(data: &RunData, model: &Model) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut per: HashMap<&str, (usize, usize, usize)> = HashMap::new(); // attempts, passed, rejected
    let mut per_run: HashMap<(&str, &str, i64), usize> = HashMap::new();
    for a in &model.attempts {
        if !per.contains_key(a.action.as_str()) {
            order.push(&a.action);
        }
        let e = per.entry(&a.action).or_default();
        e.0 += 1;
        match a.verdict.as_deref() {
            Some("pass") => e.1 += 1,
            Some("fail") | Some("fatal") => e.2 += 1,
            _ => {}
        }
        *per_run
            .entry((&a.action, &a.path, a.occurrence))
            .or_default() += 1;
    }
    if order.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<table class=\"actions\"><thead><tr><th>action</th><th>attempts</th><th>passed</th>\
         <th>rejected</th><th>most in one run of it</th><th>allowed per run</th></tr></thead><tbody>",
    );
    for action in order {
        let (n, pass, rej) = per[action];
        let most = per_run
            .iter()
            .filter(|(k, _)| k.0 == action)
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0);
        let allowed = data
            .workflow
            .as_ref()
            .ok()
            .and_then(|w| {
                let a = w.program.actions.iter().find(|a| a.name == action)?;
                let retry = a.retry.or(w.program.defaults.retry).unwrap_or(0);
                let samples = match a.strategy {
                    Strategy::BestOf(k) => k,
                    _ => 1,
                };
                Some(
                    (retry.saturating_add(1))
                        .saturating_mul(samples)
                        .to_string(),
                )
            })
            .unwrap_or_else(|| "?".to_string());
        let _ = write!(
            out,
            "<tr><th>{}</th><td>{n}</td><td>{pass}</td><td>{rej}</td><td>{most}</td><td>{}</td></tr>",
            escape(action),
            escape(&allowed)
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("</script><img src=x onerror='a(\"b\")'>&"),
            "&lt;/script&gt;&lt;img src=x onerror=&#39;a(&quot;b&quot;)&#39;&gt;&amp;"
        );
    }

    #[test]
    fn the_data_block_cannot_be_closed_by_a_text() {
        let v = json!({"o": "</script><script>alert(1)</script><!--"});
        let s = data_json(&v);
        assert!(!s.contains('<'), "{s}");
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn texts_are_cut_by_their_cost_in_the_data_block() {
        assert_eq!(cut_to("abc", 10), ("abc", 0));
        assert_eq!(cut_to("abcdef", 3), ("abc", 3));
        // `<` costs 6
        assert_eq!(cut_to("a<b", 6), ("a", 2));
        assert_eq!(cut_to("ééé", 4), ("éé", 2));
    }

    #[test]
    fn durations() {
        assert_eq!(ms(0), "0 ms");
        assert_eq!(ms(1234), "1.2 s");
        assert_eq!(ms(125_000), "2m 05s");
        assert_eq!(cut_chars("abcdef", 4, false), "abc…");
        assert_eq!(cut_chars("abcdef", 4, true), "…def");
    }
}
