//! Items, graphs and runs in words: signatures for `:items`, `:show` and
//! `:type`, the decomposition as text art for `:graph`, attempts for
//! `:trace`.

use std::fmt::Write as _;

use crate::check::ir::{self, Callee, Operand, Ordering, Program, TaskId};
use crate::runtime::{text_of, RunReport, VerdictKind};

fn value(v: &ir::Value) -> String {
    match v {
        ir::Value::Text(s) => format!("{s:?}"),
        ir::Value::Int(n) => n.to_string(),
        ir::Value::Float(f) => f.to_string(),
        ir::Value::Duration(ms) => crate::cli::bounds::duration(*ms).replace(' ', ""),
        ir::Value::Bool(b) => b.to_string(),
        ir::Value::List(items) => {
            let parts: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", parts.join(", "))
        }
        ir::Value::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k:?}: {}", value(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// `(name: Type, other: Int = 3)`; empty without parameters.
fn opt_params(ps: &[ir::Param]) -> String {
    if ps.is_empty() {
        String::new()
    } else {
        params(ps)
    }
}

/// `(name: Type, other: Int = 3)`, `()` without parameters.
pub fn params(params: &[ir::Param]) -> String {
    let parts: Vec<String> = params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{}: {} = {}", p.name, p.ty, value(d)),
            None => format!("{}: {}", p.name, p.ty),
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// Every signature of things named `name`, one per namespace it is in.
pub fn signatures(program: &Program, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in program.types.iter().filter(|t| t.name == name) {
        out.push(format!("type {} = {}", t.name, t.ty));
    }
    for i in program.inputs.iter().filter(|i| i.name == name) {
        out.push(format!("input {}: {}", i.name, i.ty));
    }
    for r in program.resources.iter().filter(|r| r.name == name) {
        out.push(format!("resource {}: {}", r.name, r.size));
    }
    for e in program.externs.iter().filter(|e| e.name == name) {
        let kind = match e.kind {
            ir::ExternKind::Guard => "guard",
            ir::ExternKind::Generator => "generator",
            ir::ExternKind::Effect => "effect",
        };
        let on = e
            .subject
            .as_ref()
            .map_or(String::new(), |t| format!(" on {t}"));
        out.push(format!(
            "extern {kind} {}{}{on}",
            e.name,
            opt_params(&e.params)
        ));
    }
    for g in program.generators.iter().filter(|g| g.name == name) {
        out.push(format!(
            "generator {} = {}(…)",
            g.name,
            program.externs[g.kind.index()].name
        ));
    }
    for g in program.guards.iter().filter(|g| g.name == name) {
        out.push(format!(
            "guard {}{} on {}",
            g.name,
            opt_params(&g.params),
            g.subject
        ));
    }
    for a in program.actions.iter().filter(|a| a.name == name) {
        out.push(format!(
            "action {}{} -> {}",
            a.name,
            params(&a.params),
            a.output
        ));
    }
    for t in program.tasks.iter().filter(|t| t.name == name) {
        out.push(task_signature(t));
    }
    out
}

pub fn task_signature(t: &ir::Task) -> String {
    let mut s = format!("task {}{}", t.name, params(&t.params));
    if let Some(o) = &t.output {
        let _ = write!(s, " -> {o}");
    }
    if let Some(d) = t.max_depth {
        let _ = write!(s, " :max-depth {d}");
    }
    s
}

fn callee_name(program: &Program, c: Callee) -> &str {
    match c {
        Callee::Action(a) => &program.actions[a.index()].name,
        Callee::Task(t) => &program.tasks[t.index()].name,
    }
}

fn ordering(o: &Ordering, m: &ir::Method) -> String {
    let label = |i: u32| {
        m.subtasks
            .get(i as usize)
            .map_or("?".to_string(), |s| s.label.clone())
    };
    match o {
        Ordering::Label { index, .. } => label(*index),
        Ordering::Seq { items, .. } => {
            let parts: Vec<String> = items.iter().map(|o| ordering(o, m)).collect();
            format!("({})", parts.join(" ; "))
        }
        Ordering::Par { items, .. } => {
            let parts: Vec<String> = items.iter().map(|o| ordering(o, m)).collect();
            format!("({})", parts.join(" || "))
        }
        Ordering::Partial { chains, .. } => {
            let parts: Vec<String> = chains
                .iter()
                .map(|c| {
                    let labels: Vec<String> = c.iter().map(|(i, _)| label(*i)).collect();
                    labels.join(" < ")
                })
                .collect();
            format!("({})", parts.join(", "))
        }
    }
}

/// A task's methods, subtasks and orderings as a tree; tasks called as
/// subtasks are drawn below their call, each once.
pub fn graph(program: &Program, root: TaskId) -> String {
    let mut out = String::new();
    let mut drawn = vec![false; program.tasks.len()];
    let _ = writeln!(out, "{}", task_signature(&program.tasks[root.index()]));
    draw_task(program, root, "", &mut drawn, &mut out);
    out
}

fn draw_task(program: &Program, t: TaskId, indent: &str, drawn: &mut [bool], out: &mut String) {
    drawn[t.index()] = true;
    let task = &program.tasks[t.index()];
    let n = task.methods.len();
    for (mi, m) in task.methods.iter().enumerate() {
        let last_m = mi + 1 == n;
        let _ = writeln!(
            out,
            "{indent}{} method {}  {}{}",
            if last_m { "└─" } else { "├─" },
            m.name,
            ordering(&m.ordering, m),
            m.result
                .and_then(|r| m.subtasks.get(r as usize))
                .map_or(String::new(), |s| format!("  → {}", s.label)),
        );
        let inner = format!("{indent}{}", if last_m { "   " } else { "│  " });
        let k = m.subtasks.len();
        for (si, s) in m.subtasks.iter().enumerate() {
            let last_s = si + 1 == k;
            let kind = match s.callee {
                Callee::Task(_) => "task",
                Callee::Action(_) => "action",
            };
            let esc = s.escalation.as_ref().map_or(String::new(), |e| {
                let target = m
                    .subtasks
                    .get(e.target as usize)
                    .map_or("?", |s| s.label.as_str());
                format!("  (escalates to {target} after {})", e.after)
            });
            // a map: `c: implement (action) for each item of p.items, ≤ 12, 4 at a time`
            let each = s.each.as_ref().map_or(String::new(), |e| {
                let at_a_time = e
                    .parallel
                    .map_or(String::new(), |k| format!(", {k} at a time"));
                format!(
                    " for each {} of {}, ≤ {}{at_a_time}",
                    e.item,
                    operand_path(program, task, m, &e.source),
                    e.bound
                )
            });
            let _ = writeln!(
                out,
                "{inner}{} {}: {} ({kind}){each}{esc}",
                if last_s { "└─" } else { "├─" },
                s.label,
                callee_name(program, s.callee),
            );
            if let Callee::Task(sub) = s.callee {
                let below = format!("{inner}{}", if last_s { "   " } else { "│  " });
                if drawn[sub.index()] {
                    let _ = writeln!(out, "{below}└─ (drawn above)");
                } else {
                    draw_task(program, sub, &below, drawn, out);
                }
            }
        }
    }
}

/// A map's list as written: `p.items`, `xs`.
fn operand_path(program: &Program, task: &ir::Task, m: &ir::Method, op: &Operand) -> String {
    let (head, fields) = match op {
        Operand::Label { index, fields } => (
            m.subtasks
                .get(*index as usize)
                .map_or("?".to_string(), |s| s.label.clone()),
            fields,
        ),
        Operand::Input { input, fields } => (
            program
                .inputs
                .get(input.index())
                .map_or("?".to_string(), |i| i.name.clone()),
            fields,
        ),
        Operand::Param { index, fields } => (
            task.params
                .get(*index as usize)
                .map_or("?".to_string(), |p| p.name.clone()),
            fields,
        ),
        _ => return "a list".to_string(),
    };
    let mut out = head;
    for f in fields {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// The summary of a run, without timings.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let bound = report
        .worst_case_calls
        .map_or(String::new(), |b| format!(" (worst case {b})"));
    let counts = format!(
        "{} generator call{}{bound}, {} guard run{}",
        report.generator_calls,
        if report.generator_calls == 1 { "" } else { "s" },
        report.guard_runs,
        if report.guard_runs == 1 { "" } else { "s" },
    );
    if report.success {
        let _ = writeln!(out, "✓ `{}` succeeded: {counts}", report.task);
    } else {
        let _ = writeln!(out, "✗ `{}` failed: {counts}", report.task);
        if let Some(f) = &report.failure {
            let _ = writeln!(out, "  {}", f.replace('\n', "\n  "));
        }
    }
    if let Some(result) = &report.result {
        let _ = writeln!(out, "{}", text_of(result));
    }
    out
}

/// Every attempt of a run: action, verdict, feedback, the output's start.
pub fn trace(report: &RunReport) -> String {
    let mut out = String::new();
    if report.attempts.is_empty() {
        let _ = writeln!(out, "`{}` made no attempts", report.task);
    }
    for (i, a) in report.attempts.iter().enumerate() {
        let verdict = match a.verdict {
            VerdictKind::Pass => "pass",
            VerdictKind::Fail => "fail",
            VerdictKind::Fatal => "fatal",
            VerdictKind::Interrupted => "interrupted",
        };
        let _ = writeln!(
            out,
            "{}. {} attempt {} at {}: {verdict}",
            i + 1,
            a.action,
            a.attempt,
            a.path
        );
        match &a.output {
            Some(o) => {
                let lines: Vec<&str> = o.lines().collect();
                for l in lines.iter().take(6) {
                    let _ = writeln!(out, "   │ {l}");
                }
                if lines.len() > 6 {
                    let _ = writeln!(out, "   │ … {} more lines", lines.len() - 6);
                }
            }
            None => {
                let _ = writeln!(out, "   (no output)");
            }
        }
        if !a.feedback.is_empty() {
            let _ = writeln!(
                out,
                "   feedback: {}",
                a.feedback.trim_end().replace('\n', "\n             ")
            );
        }
    }
    out
}
