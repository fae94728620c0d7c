//! Printing `guardflow check --bounds`: per task (and per action, when
//! asked), with the assumption under which each probability holds; with
//! `--from-runs`, what the recorded runs measured beside the prediction.

use super::Format;
use crate::check::ir::Program;
use crate::check::verify::bounds::{ActionBounds, Cost, TaskBounds};
use crate::cli::output::{out, outln};
use crate::stats::{wilson, Z95};
use crate::store::outcomes::{Measured, Outcomes};

/// What `P(success)` assumes, said next to it.
pub const ASSUMPTION: &str = "independent attempts, each passing with probability p per attempt";

/// The bounds' inputs taken from a run store (`--from-runs`).
pub struct FromRuns {
    /// The program with each action's `:p` replaced by its measured
    /// success per attempt, where the runs judged any attempt of it.
    pub program: Program,
    /// What was measured, in a line.
    pub note: String,
    pub measured: Measured,
}

/// A task's or an action's measured success beside its prediction.
struct Compared {
    outcomes: Outcomes,
    interval: (f64, f64),
    predicted: Option<f64>,
}

impl Compared {
    fn new(outcomes: Outcomes, predicted: Option<f64>) -> Option<Compared> {
        (outcomes.n > 0).then(|| Compared {
            interval: wilson(outcomes.succeeded, outcomes.n, Z95),
            outcomes,
            predicted,
        })
    }

    /// `within_interval` or `outside_interval` when the measured success
    /// is below the prediction.
    fn below(&self) -> Option<&'static str> {
        let predicted = self.predicted?;
        let rate = self.outcomes.rate()?;
        if rate >= predicted {
            None
        } else if self.interval.1 < predicted {
            Some("outside_interval")
        } else {
            Some("within_interval")
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "runs": self.outcomes.n,
            "succeeded": self.outcomes.succeeded,
            "success": self.outcomes.rate(),
            "interval95": [self.interval.0, self.interval.1],
        })
    }

    /// Said plainly when the measured success is below the prediction.
    fn finding(&self, name: &str, of: &str) -> Option<String> {
        let below = self.below()?;
        let (lo, hi) = self.interval;
        let head = format!(
            "{name}: measured success {:.3} ({} of {} {of}) is below the independence prediction {:.4}",
            self.outcomes.rate().unwrap_or(0.0),
            self.outcomes.succeeded,
            self.outcomes.n,
            self.predicted.unwrap_or(0.0),
        );
        Some(if below == "outside_interval" {
            format!(
                "{head}, outside its 95 % interval [{lo:.3}, {hi:.3}]: the attempts are correlated \
                 (after one fails, the next fails more often than p says), so the independence \
                 prediction overstates; the runs support P(success) ≥ {lo:.4} (95 %)"
            )
        } else {
            format!(
                "{head} but within its 95 % interval [{lo:.3}, {hi:.3}]: too few runs to tell \
                 whether the attempts are correlated; the runs support P(success) ≥ {lo:.4} (95 %)"
            )
        })
    }
}

/// One JSON object per task, or a table for people.
pub fn print(
    file: &str,
    bounds: &[TaskBounds],
    format: Format,
    target: Option<f64>,
    runs: Option<&FromRuns>,
) {
    if format == Format::Json {
        for b in bounds {
            let mut v = serde_json::to_value(b).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("type".into(), "bounds".into());
                obj.insert("file".into(), file.into());
                let compared = runs.map(|r| {
                    let o = r.measured.tasks.get(&b.task).copied().unwrap_or_default();
                    (r, Compared::new(o, b.p_success))
                });
                probability_json(obj, b.p_success, compared);
            }
            outln!("{v}");
        }
        return;
    }
    out!("{}", table_with(file, bounds, target, runs));
}

/// `p_success` and what it rests on: the assumption of independence, or
/// (from runs) the measured success and its Wilson lower bound; never the
/// prediction as a bound.
fn probability_json(
    obj: &mut serde_json::Map<String, serde_json::Value>,
    predicted: Option<f64>,
    runs: Option<(&FromRuns, Option<Compared>)>,
) {
    match runs {
        None => {
            obj.insert("p_source".into(), "p".into());
            obj.insert(
                "p_assumption".into(),
                predicted.map_or(serde_json::Value::Null, |_| ASSUMPTION.into()),
            );
        }
        Some((_, compared)) => {
            obj.insert("p_source".into(), "runs".into());
            obj.insert(
                "predicted_if_independent".into(),
                predicted.map_or(serde_json::Value::Null, Into::into),
            );
            obj.insert(
                "p_success".into(),
                compared
                    .as_ref()
                    .map_or(serde_json::Value::Null, |c| c.interval.0.into()),
            );
            obj.insert(
                "p_assumption".into(),
                compared.as_ref().map_or(serde_json::Value::Null, |c| {
                    format!(
                        "Wilson 95 % lower bound on the success measured in {} finished runs",
                        c.outcomes.n
                    )
                    .into()
                }),
            );
            obj.insert(
                "measured".into(),
                compared
                    .as_ref()
                    .map_or(serde_json::Value::Null, Compared::json),
            );
            obj.insert(
                "below_prediction".into(),
                compared
                    .as_ref()
                    .and_then(Compared::below)
                    .map_or(serde_json::Value::Null, Into::into),
            );
        }
    }
}

/// The table for people (also the REPL's `:bounds`).
pub fn table(file: &str, bounds: &[TaskBounds], target: Option<f64>) -> String {
    table_with(file, bounds, target, None)
}

fn cost_cells(cost: Option<&Cost>) -> [String; 4] {
    match cost {
        Some(c) => [
            count(c.generator_calls),
            count(c.guard_runs),
            c.tokens.map_or("unbounded".into(), count),
            c.time_ms.map_or("unbounded".into(), duration),
        ],
        None => [
            "recursion too deep".to_string(),
            String::new(),
            String::new(),
            String::new(),
        ],
    }
}

/// The probability cells: `0.9897 if independent`; from runs, the
/// prediction, the runs, the successes and the Wilson lower bound.
fn probability_cells(predicted: Option<f64>, compared: Option<&Option<Compared>>) -> Vec<String> {
    match compared {
        None => vec![predicted.map_or("-".into(), |p| format!("{p:.4} if independent"))],
        Some(c) => {
            let mut row = vec![predicted.map_or("-".into(), |p| format!("{p:.4}"))];
            match c {
                Some(c) => row.extend([
                    c.outcomes.n.to_string(),
                    format!(
                        "{} ({:.3})",
                        c.outcomes.succeeded,
                        c.outcomes.rate().unwrap_or(0.0)
                    ),
                    format!("{:.4}", c.interval.0),
                ]),
                None => row.extend(["0".to_string(), "-".to_string(), "-".to_string()]),
            }
            row
        }
    }
}

fn probability_headers(runs: bool, of: &str) -> Vec<String> {
    if runs {
        vec![
            "if independent".into(),
            of.into(),
            "succeeded".into(),
            "P(success) ≥ (95 %)".into(),
        ]
    } else {
        vec!["P(success) ≥".into()]
    }
}

fn layout(title: String, rows: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = title;
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(&format!("  {}\n", cells.join("  ").trim_end()));
    }
    out
}

/// What the probability columns mean, once under a table.
fn probability_note(any: bool, runs: bool) -> String {
    if runs {
        "  if independent: predicted from the success per attempt measured in the runs, taking \
         attempts as independent (a prediction, not a bound); P(success) ≥ (95 %): the Wilson 95 % \
         lower bound on the success measured in finished runs\n"
            .to_string()
    } else if any {
        "  P(success) ≥ … if independent: assumes independent attempts, each passing with its \
         action's probability p per attempt (`:p`, `:default-p`) whatever the attempts before it \
         did, so an action of R retries succeeds with 1 − (1 − p)^(R+1); attempts that fail \
         together (a model that cannot solve the task fails every retry) make it lower: measure \
         it with `--from-runs`\n"
            .to_string()
    } else {
        String::new()
    }
}

fn table_with(
    file: &str,
    bounds: &[TaskBounds],
    target: Option<f64>,
    runs: Option<&FromRuns>,
) -> String {
    if bounds.is_empty() {
        return format!("{file}: no tasks\n");
    }
    let mut header: Vec<String> = ["task", "generator calls", "guard runs", "tokens", "time"]
        .map(String::from)
        .to_vec();
    header.extend(probability_headers(runs.is_some(), "runs"));
    if let Some(t) = target {
        header.push(format!("retry for {t}"));
    }
    let mut rows = vec![header];
    let mut findings = Vec::new();
    for b in bounds {
        let mut row = vec![b.task.clone()];
        row.extend(cost_cells(b.cost.as_ref()));
        let compared = runs.map(|r| {
            let o = r.measured.tasks.get(&b.task).copied().unwrap_or_default();
            Compared::new(o, b.p_success)
        });
        row.extend(probability_cells(b.p_success, compared.as_ref()));
        if let Some(Some(c)) = &compared {
            findings.extend(c.finding(&b.task, "runs"));
        }
        if target.is_some() {
            row.push(match b.retry_for_target {
                Some(Some(r)) => format!(":retry {r}"),
                Some(None) => "unreachable".into(),
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    let mut out = layout(format!("{file}: worst case per task\n"), rows);
    out.push_str(&hints(bounds));
    out.push_str(&probability_note(
        bounds.iter().any(|b| b.p_success.is_some()),
        runs.is_some(),
    ));
    for f in findings {
        out.push_str(&format!("  {f}\n"));
    }
    out
}

/// Per action: one JSON object each, or a table for people.
pub fn print_actions(
    file: &str,
    actions: &[ActionBounds],
    format: Format,
    runs: Option<&FromRuns>,
) {
    let compared = |a: &ActionBounds| {
        runs.map(|r| {
            let o = r
                .measured
                .actions
                .get(&a.action)
                .map(|m| m.calls)
                .unwrap_or_default();
            Compared::new(o, a.p_success)
        })
    };
    if format == Format::Json {
        for a in actions {
            let mut v = serde_json::to_value(a).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("type".into(), "action_bounds".into());
                obj.insert("file".into(), file.into());
                if let Some(r) = runs {
                    let m = r
                        .measured
                        .actions
                        .get(&a.action)
                        .copied()
                        .unwrap_or_default();
                    obj.insert("attempts_judged".into(), m.attempts.into());
                    obj.insert("attempts_passed".into(), m.passed.into());
                }
                probability_json(obj, a.p_success, runs.map(|r| (r, compared(a).flatten())));
            }
            outln!("{v}");
        }
        return;
    }
    if actions.is_empty() {
        outln!("{file}: no such action");
        return;
    }
    let mut header: Vec<String> = [
        "action",
        "attempts",
        "generator calls",
        "guard runs",
        "tokens",
        "time",
        "p per attempt",
    ]
    .map(String::from)
    .to_vec();
    header.extend(probability_headers(runs.is_some(), "calls"));
    let mut rows = vec![header];
    let mut findings = Vec::new();
    for a in actions {
        let mut row = vec![a.action.clone()];
        row.push(if a.samples > 1 {
            format!("{} × {} samples", a.attempts, a.samples)
        } else {
            a.attempts.to_string()
        });
        row.extend(cost_cells(Some(&a.cost)));
        let measured = runs.and_then(|r| r.measured.actions.get(&a.action));
        row.push(match (a.p, measured) {
            (Some(p), Some(m)) if m.attempts > 0 => format!("{p:.3} ({}/{})", m.passed, m.attempts),
            (Some(p), _) => format!("{p:.3}"),
            (None, _) => "-".into(),
        });
        let c = compared(a);
        row.extend(probability_cells(a.p_success, c.as_ref()));
        if let Some(Some(c)) = &c {
            findings.extend(c.finding(&a.action, "calls"));
        }
        rows.push(row);
    }
    let mut text = layout(
        format!("{file}: per action (one call, no escalation)\n"),
        rows,
    );
    text.push_str(&probability_note(
        actions.iter().any(|a| a.p_success.is_some()),
        runs.is_some(),
    ));
    for f in findings {
        text.push_str(&format!("  {f}\n"));
    }
    out!("{text}");
}

/// What to add where the table cannot give a number.
fn hints(bounds: &[TaskBounds]) -> String {
    let mut out = String::new();
    let costs = bounds.iter().filter_map(|b| b.cost.as_ref());
    if costs.clone().any(|c| c.tokens.is_none()) {
        out.push_str(
            "  tokens unbounded: an action has no `:max-tokens N`; give each generative action one, \
             or the file a `:default-max-tokens N`\n",
        );
    }
    if costs.clone().any(|c| c.time_ms.is_none()) {
        out.push_str(
            "  time unbounded: an action or generator has no timeout; give it `:timeout 2m`, \
             or the file a `:default-timeout 2m`\n",
        );
    }
    if bounds.iter().any(|b| b.p_success.is_none()) {
        out.push_str(
            "  P(success) -: an action has no `:p` (its chance that one attempt passes); give each \
             action one, or the file a `:default-p 0.8`, or measure it from recorded runs with \
             `--from-runs`\n",
        );
    }
    out
}

fn count(n: u64) -> String {
    if n == u64::MAX {
        "≥ 1.8e19".into()
    } else {
        n.to_string()
    }
}

/// `1h 2m 3s`, `2m`, `500ms`.
pub fn duration(ms: u64) -> String {
    if ms == u64::MAX {
        return "≥ 5e8 years".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if sec > 0 || parts.is_empty() {
        parts.push(format!("{sec}s"));
    }
    parts.join(" ")
}

/// `program` with each action's `:p` replaced by its measured success
/// probability per attempt in the runs of `workflow` recorded in the store
/// at `store`, where they judged any attempt of it; what the runs measured
/// per task and per action; and a line saying what was measured.
pub fn measured(
    program: &Program,
    store: &std::path::Path,
    workflow: &std::path::Path,
) -> Result<FromRuns, crate::store::StoreError> {
    let measured = crate::store::Store::open_read(store)?.measure(workflow)?;
    let mut program = program.clone();
    let mut used = Vec::new();
    for a in &mut program.actions {
        if let Some((m, p)) = measured
            .actions
            .get(&a.name)
            .and_then(|m| m.p().map(|p| (m, p)))
        {
            a.p = Some(p);
            used.push(format!("{} {p:.3} ({}/{})", a.name, m.passed, m.attempts));
        }
    }
    let runs = format!(
        "{} run{} of this file in `{}` ({} finished)",
        measured.runs,
        if measured.runs == 1 { "" } else { "s" },
        store.display(),
        measured.finished
    );
    let note = if used.is_empty() {
        format!("{runs}; they judged no attempt of these actions")
    } else {
        format!("{runs}; success per attempt: {}", used.join(", "))
    };
    Ok(FromRuns {
        program,
        note,
        measured,
    })
}

/// One note per `fallback(…)` generator used by an action: how the bounds
/// count it (one call per attempt, whichever provider serves it; transport
/// failures and retries are not attempts).
pub fn fallback_notes(program: &crate::check::ir::Program) -> Vec<String> {
    let used: std::collections::BTreeSet<usize> = program
        .actions
        .iter()
        .map(|a| a.generator.index())
        .collect();
    used.into_iter()
        .filter_map(|i| {
            let g = program.generators.get(i)?;
            if g.providers.is_empty() {
                return None;
            }
            let names: Vec<String> = g
                .providers
                .iter()
                .filter_map(|p| program.generators.get(p.index()))
                .map(|p| format!("`{}`", p.name))
                .collect();
            Some(format!(
                "`{}` falls back over {}: each attempt counts one generator call whichever \
                 provider serves it; transport failures and retries move the attempt on and \
                 are not counted",
                g.name,
                names.join(", ")
            ))
        })
        .collect()
}
