//! Printing `guardflow check --bounds`.

use super::Format;
use crate::check::verify::bounds::TaskBounds;
use crate::cli::output::{out, outln};

/// A table for people, or one JSON object per task.
pub fn print(file: &str, bounds: &[TaskBounds], format: Format, target: Option<f64>) {
    if format == Format::Json {
        for b in bounds {
            let mut v = serde_json::to_value(b).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("type".into(), "bounds".into());
                obj.insert("file".into(), file.into());
            }
            outln!("{v}");
        }
        return;
    }
    out!("{}", table(file, bounds, target));
}

/// The table for people (also the REPL's `:bounds`).
pub fn table(file: &str, bounds: &[TaskBounds], target: Option<f64>) -> String {
    if bounds.is_empty() {
        return format!("{file}: no tasks\n");
    }
    let mut rows = vec![vec![
        "task".to_string(),
        "generator calls".to_string(),
        "guard runs".to_string(),
        "tokens".to_string(),
        "time".to_string(),
        "P(success) ≥".to_string(),
    ]];
    if let Some(t) = target {
        rows[0].push(format!("retry for {t}"));
    }
    for b in bounds {
        let mut row = vec![b.task.clone()];
        match &b.cost {
            Some(c) => {
                row.push(count(c.generator_calls));
                row.push(count(c.guard_runs));
                row.push(c.tokens.map_or("unbounded".into(), count));
                row.push(c.time_ms.map_or("unbounded".into(), duration));
            }
            None => row.extend([
                "recursion too deep".to_string(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
        row.push(b.p_success.map_or("-".into(), |p| format!("{p:.4}")));
        if target.is_some() {
            row.push(match b.retry_for_target {
                Some(Some(r)) => format!(":retry {r}"),
                Some(None) => "unreachable".into(),
                None => "-".into(),
            });
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("{file}: worst case per task\n");
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
    out.push_str(&hints(bounds));
    out
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
/// probability per attempt in the store at `store`, where it has any
/// finished attempt; and a line saying what was measured.
pub fn measured(
    program: &crate::check::ir::Program,
    store: &std::path::Path,
) -> Result<(crate::check::ir::Program, String), crate::store::StoreError> {
    let stats = crate::store::Store::open_read(store)?.stats()?;
    let mut program = program.clone();
    let mut used = Vec::new();
    for a in &mut program.actions {
        if let Some((s, p)) = stats.get(&a.name).and_then(|s| s.p().map(|p| (s, p))) {
            a.p = Some(p);
            used.push(format!("{} {p:.3} ({}/{})", a.name, s.passed, s.attempts));
        }
    }
    let note = if used.is_empty() {
        format!("`{}` records no attempt of these actions", store.display())
    } else {
        format!(
            "success per attempt measured in `{}`: {}",
            store.display(),
            used.join(", ")
        )
    };
    Ok((program, note))
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
