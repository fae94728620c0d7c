//! Termination: every loop in a workflow is bounded.
//!
//! Retries and escalations are counted, generator calls are timed, and
//! recursion among tasks passes through a task with `:max-depth`.

use super::error::{Step, VerifyError};
use super::graph::MethodGraph;
use super::CallGraph;
use crate::check::ir::{Action, Callee, GuardExpr, Operand, Program, Value};

pub(super) fn check(
    program: &Program,
    calls: &CallGraph,
    graphs: &[Vec<MethodGraph>],
    out: &mut Vec<VerifyError>,
) {
    for action in &program.actions {
        let retry = action.retry.or(program.defaults.retry);
        if retry.is_none() {
            out.push(VerifyError::NoRetryBound {
                action: action.name.clone(),
                at: action.name_span,
            });
        }
        if generation_timeout(program, action).is_none() {
            let generator = &program.generators[action.generator.index()];
            let kind = &program.externs[generator.kind.index()];
            out.push(VerifyError::NoTimeout {
                action: action.name.clone(),
                generator: kind.name.clone(),
                at: action.name_span,
                generator_span: generator.span,
            });
        }
        if let (Some(effect), Some(r)) = (&action.effect, retry) {
            if r > 0 && !action.idempotent {
                out.push(VerifyError::RetriedEffect {
                    action: action.name.clone(),
                    retry: r,
                    effect: effect.span,
                    retry_span: action.retry_span.unwrap_or(action.name_span),
                });
            }
        }
    }
    recursion(program, calls, out);
    for (t, task) in program.tasks.iter().enumerate() {
        for (m, method) in task.methods.iter().enumerate() {
            if let Some(pre) = &method.pre {
                if constant(pre) == Some(false) {
                    out.push(VerifyError::NeverChosen {
                        method: method.name.clone(),
                        pre: span_of(pre),
                        task: task.name_span,
                    });
                }
            }
            let graph = &graphs[t][m];
            for (j, subtask) in method.subtasks.iter().enumerate() {
                let Some(esc) = &subtask.escalation else {
                    continue;
                };
                if esc.max.is_none() {
                    out.push(VerifyError::EscalationUnbounded {
                        subtask: subtask.label.clone(),
                        at: esc.span,
                    });
                }
                if !upstream(graph, esc.target, j as u32) {
                    let target = &method.subtasks[esc.target as usize];
                    out.push(VerifyError::EscalationNotUpstream {
                        subtask: subtask.label.clone(),
                        target: target.label.clone(),
                        at: esc.span,
                        target_span: target.span,
                    });
                }
            }
        }
    }
}

/// The timeout of one generation: the action's, the file's, or the
/// generator's own `timeout` argument, in milliseconds.
pub fn generation_timeout(program: &Program, action: &Action) -> Option<u64> {
    // a `fallback(…)` may call each of its providers once per attempt,
    // each within the timeout
    let providers = match program.generators.get(action.generator.index()) {
        Some(g) if !g.providers.is_empty() => g.providers.clone(),
        _ => vec![action.generator],
    };
    providers.into_iter().try_fold(0u64, |sum, id| {
        let one = action
            .timeout_ms
            .or(program.defaults.timeout_ms)
            .or_else(|| {
                let generator = program.generators.get(id.index())?;
                let kind = program.externs.get(generator.kind.index())?;
                let i = kind.params.iter().position(|p| p.name == "timeout")?;
                match generator.args.get(i)? {
                    Operand::Const {
                        value: Value::Duration(ms),
                    } => Some(*ms),
                    _ => None,
                }
            })?;
        Some(sum.saturating_add(one))
    })
}

/// Whether `target`'s artifact reaches subtask `to` through data edges.
fn upstream(graph: &MethodGraph, target: u32, to: u32) -> bool {
    let mut seen = vec![to];
    let mut stack = vec![to];
    while let Some(x) = stack.pop() {
        for e in graph.data.iter().filter(|e| e.to == x) {
            if e.from == target {
                return true;
            }
            if !seen.contains(&e.from) {
                seen.push(e.from);
                stack.push(e.from);
            }
        }
    }
    false
}

/// Every cycle of task calls must pass through a task with `:max-depth`:
/// with those tasks taken out, no cycle may remain.
fn recursion(program: &Program, calls: &CallGraph, out: &mut Vec<VerifyError>) {
    let n = program.tasks.len();
    let bounded: Vec<bool> = program
        .tasks
        .iter()
        .map(|t| t.max_depth.is_some())
        .collect();
    // successors among unbounded tasks only
    let succ: Vec<Vec<(usize, crate::source::Span)>> = (0..n)
        .map(|t| {
            if bounded[t] {
                return Vec::new();
            }
            calls
                .callees(t)
                .filter_map(|(c, span)| match c {
                    Callee::Task(u) if !bounded[u.index()] => Some((u.index(), span)),
                    _ => None,
                })
                .collect()
        })
        .collect();
    // colour DFS (iterative); a back edge closes a cycle
    let mut colour = vec![0u8; n]; // 0 new, 1 on stack, 2 done
    let mut reported = vec![false; n];
    for start in 0..n {
        if colour[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        let mut path: Vec<usize> = vec![start];
        colour[start] = 1;
        while let Some(&mut (t, ref mut i)) = stack.last_mut() {
            if *i < succ[t].len() {
                let (u, _) = succ[t][*i];
                *i += 1;
                match colour[u] {
                    0 => {
                        colour[u] = 1;
                        stack.push((u, 0));
                        path.push(u);
                    }
                    1 if !reported[u] => {
                        // the call from `t` back to `u` closes the cycle
                        let back = succ[t][*i - 1].1;
                        let from = path.iter().position(|&x| x == u).unwrap_or(0);
                        let cycle: Vec<usize> = path[from..].to_vec();
                        for &c in &cycle {
                            reported[c] = true;
                        }
                        let steps = cycle
                            .iter()
                            .enumerate()
                            .map(|(k, &c)| {
                                let span = if k == 0 {
                                    program.tasks[c].name_span
                                } else {
                                    let prev = cycle[k - 1];
                                    succ[prev]
                                        .iter()
                                        .find(|(x, _)| *x == c)
                                        .map_or(program.tasks[c].name_span, |(_, s)| *s)
                                };
                                Step::new(span, program.tasks[c].name.clone())
                            })
                            .collect();
                        out.push(VerifyError::UnboundedRecursion { cycle: steps, back });
                    }
                    _ => {}
                }
            } else {
                colour[t] = 2;
                stack.pop();
                path.pop();
            }
        }
    }
}

/// The value of a guard expression that does not depend on any guard.
pub fn constant(g: &GuardExpr) -> Option<bool> {
    use crate::check::ir::Combinator;
    match g {
        GuardExpr::Bool { value, .. } => Some(*value),
        GuardExpr::Not { expr, .. } => constant(expr).map(|v| !v),
        GuardExpr::And { exprs, .. }
        | GuardExpr::Combinator {
            combinator: Combinator::All | Combinator::Par,
            exprs,
            ..
        } => fold(exprs, false),
        GuardExpr::Or { exprs, .. }
        | GuardExpr::Combinator {
            combinator: Combinator::Any,
            exprs,
            ..
        } => fold(exprs, true),
        GuardExpr::Combinator {
            combinator: Combinator::Majority,
            exprs,
            ..
        } => {
            let values: Vec<Option<bool>> = exprs.iter().map(constant).collect();
            let known_false = values.iter().filter(|v| **v == Some(false)).count();
            let known_true = values.iter().filter(|v| **v == Some(true)).count();
            if known_true * 2 > exprs.len() {
                Some(true)
            } else if (exprs.len() - known_false) * 2 <= exprs.len() {
                Some(false)
            } else {
                None
            }
        }
        GuardExpr::Call { .. } | GuardExpr::Compare { .. } | GuardExpr::Value { .. } => None,
    }
}

/// `and` (`short` false) or `or` (`short` true) of constant parts: the
/// short-circuit value wins, otherwise all parts must be known.
fn fold(exprs: &[GuardExpr], short: bool) -> Option<bool> {
    let mut all_known = true;
    for e in exprs {
        match constant(e) {
            Some(v) if v == short => return Some(short),
            Some(_) => {}
            None => all_known = false,
        }
    }
    all_known.then_some(!short)
}

pub fn span_of(g: &GuardExpr) -> crate::source::Span {
    match g {
        GuardExpr::Call { span, .. }
        | GuardExpr::Bool { span, .. }
        | GuardExpr::Not { span, .. }
        | GuardExpr::And { span, .. }
        | GuardExpr::Or { span, .. }
        | GuardExpr::Combinator { span, .. }
        | GuardExpr::Compare { span, .. }
        | GuardExpr::Value { span, .. } => *span,
    }
}
