//! Evaluating guard expressions: calls of host and user guards and their
//! composition (`&&`, `||`, `!`, `all`, `any`, `majority`, `par`).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, BoxFuture, FutureExt};

use crate::check::ir::{Combinator, GuardExpr, GuardRef};

use super::eval::{operand, Env};
use super::interpreter::Run;
use super::judge::{Asking, Site};
use super::predicate;
use super::registry::{AskGenerator, Generators, GuardCall, GuardImpl};
use super::value::{Value, Verdict};

/// A guard expression's name, for feedback.
pub fn describe(run: &Run<'_>, e: &GuardExpr) -> String {
    match e {
        GuardExpr::Call { guard, .. } => match guard {
            GuardRef::Extern { id } => run.program.externs[id.index()].name.clone(),
            GuardRef::User { id } => run.program.guards[id.index()].name.clone(),
        },
        GuardExpr::Bool { value, .. } => value.to_string(),
        GuardExpr::Not { expr, .. } => format!("!{}", describe(run, expr)),
        GuardExpr::And { exprs, .. } => join(run, exprs, " && "),
        GuardExpr::Or { exprs, .. } => join(run, exprs, " || "),
        GuardExpr::Combinator {
            combinator, exprs, ..
        } => {
            let name = match combinator {
                Combinator::All => "all",
                Combinator::Any => "any",
                Combinator::Majority => "majority",
                Combinator::Par => "par",
            };
            format!("{name}({})", join(run, exprs, ", "))
        }
        GuardExpr::Compare { text, .. } | GuardExpr::Value { text, .. } => text.clone(),
    }
}

fn join(run: &Run<'_>, exprs: &[GuardExpr], sep: &str) -> String {
    let parts: Vec<String> = exprs.iter().map(|e| describe(run, e)).collect();
    parts.join(sep)
}

/// Evaluates `e` on `subject`; names in arguments resolve in `env`.
pub fn evaluate<'a>(
    run: &'a Run<'a>,
    e: &'a GuardExpr,
    subject: &'a Value,
    env: Env<'a>,
) -> BoxFuture<'a, Verdict> {
    async move {
        match e {
            GuardExpr::Bool { value: true, .. } => Verdict::Pass,
            GuardExpr::Bool { value: false, .. } => Verdict::fail("the guard is `false`"),
            GuardExpr::Compare {
                op, lhs, rhs, text, ..
            } => predicate::compare(*op, lhs, rhs, text, &env),
            GuardExpr::Value {
                operand: op, text, ..
            } => predicate::value(op, text, &env),
            GuardExpr::Call {
                guard,
                subject: own,
                args,
                span,
            } => {
                let subject = match own {
                    None => subject.clone(),
                    Some(op) => match operand(op, &env) {
                        Ok(v) => v,
                        Err(e) => return Verdict::fatal(e),
                    },
                };
                let args = match args
                    .iter()
                    .map(|a| operand(a, &env))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(a) => a,
                    Err(e) => return Verdict::fatal(e),
                };
                match guard {
                    GuardRef::Extern { id } => {
                        call_extern(run, id.index(), subject, args, env.site, span.file).await
                    }
                    GuardRef::User { id } => {
                        let def = &run.program.guards[id.index()];
                        let inner = Env {
                            site: env.site,
                            ..Env::new(&args, env.inputs)
                        };
                        // the body borrows its arguments: evaluate it here
                        evaluate(run, &def.body, &subject, inner).await
                    }
                }
            }
            GuardExpr::Not { expr, .. } => match evaluate(run, expr, subject, env).await {
                Verdict::Pass => Verdict::fail(format!(
                    "the artifact must not satisfy `{}`, but it does",
                    describe(run, expr)
                )),
                Verdict::Fail(_) => Verdict::Pass,
                fatal => fatal,
            },
            GuardExpr::And { exprs, .. } => {
                for x in exprs {
                    let v = evaluate(run, x, subject, env).await;
                    if !v.passed() {
                        return v;
                    }
                }
                Verdict::Pass
            }
            GuardExpr::Or { exprs, .. }
            | GuardExpr::Combinator {
                combinator: Combinator::Any,
                exprs,
                ..
            } => {
                let mut failures = Vec::new();
                for x in exprs {
                    match evaluate(run, x, subject, env).await {
                        Verdict::Pass => return Verdict::Pass,
                        other => failures.push(other),
                    }
                }
                combine(failures, "none of the alternatives held")
            }
            GuardExpr::Combinator {
                combinator: Combinator::All,
                exprs,
                ..
            } => {
                let mut failures = Vec::new();
                for x in exprs {
                    let v = evaluate(run, x, subject, env).await;
                    if !v.passed() {
                        failures.push(v);
                    }
                }
                if failures.is_empty() {
                    Verdict::Pass
                } else {
                    combine(failures, "not every guard held")
                }
            }
            GuardExpr::Combinator {
                combinator: Combinator::Par,
                exprs,
                ..
            } => {
                let verdicts = join_all(exprs.iter().map(|x| evaluate(run, x, subject, env))).await;
                let failures: Vec<Verdict> = verdicts.into_iter().filter(|v| !v.passed()).collect();
                if failures.is_empty() {
                    Verdict::Pass
                } else {
                    combine(failures, "not every guard held")
                }
            }
            GuardExpr::Combinator {
                combinator: Combinator::Majority,
                exprs,
                ..
            } => {
                let mut passed = 0;
                let mut failures = Vec::new();
                for x in exprs {
                    match evaluate(run, x, subject, env).await {
                        Verdict::Pass => passed += 1,
                        other => failures.push(other),
                    }
                }
                if passed * 2 > exprs.len() {
                    Verdict::Pass
                } else {
                    let head = format!(
                        "only {passed} of {} guards held, not a majority",
                        exprs.len()
                    );
                    combine(failures, &head)
                }
            }
        }
    }
    .boxed()
}

/// Several rejections as one: fatal if any is fatal.
fn combine(failures: Vec<Verdict>, head: &str) -> Verdict {
    if failures.len() == 1 {
        return failures.into_iter().next().unwrap_or(Verdict::fail(head));
    }
    let fatal = failures.iter().any(|v| matches!(v, Verdict::Fatal(_)));
    let lines: Vec<String> = failures
        .iter()
        .map(|v| format!("- {}", v.feedback().replace('\n', "\n  ")))
        .collect();
    let text = format!("{head}:\n{}", lines.join("\n"));
    if fatal {
        Verdict::Fatal(text)
    } else {
        Verdict::Fail(text)
    }
}

/// Calls a host guard, turning a panic into a fatal verdict and bounding
/// its time by the run's guard timeout.
async fn call_extern(
    run: &Run<'_>,
    id: usize,
    subject: Value,
    args: Vec<Value>,
    site: Option<&Site>,
    // the file the call is written in: its relative paths resolve there
    file: crate::source::FileId,
) -> Verdict {
    run.counters.guard_runs.fetch_add(1, Relaxed);
    if let Some(exec) = &run.executor {
        let call = super::exec::GuardInvocation {
            guard: id as u32,
            subject,
            args,
            site: site.map(|s| super::exec::SiteRef {
                path: s.path.clone(),
                action: s.action.0,
                attempt: s.attempt,
            }),
            file: file.0,
        };
        return exec.guard(call).await.into();
    }
    call_extern_here(run, id, subject, args, site, file).await
}

/// A host guard's call in this process (see `runtime::exec`).
pub async fn call_extern_here(
    run: &Run<'_>,
    id: usize,
    subject: Value,
    args: Vec<Value>,
    site: Option<&Site>,
    file: crate::source::FileId,
) -> Verdict {
    let name = &run.program.externs[id].name;
    let Some(imp) = run.bindings.guards[id].as_ref() else {
        return Verdict::fatal(format!(
            "the guard `{name}` has no implementation in this engine"
        ));
    };
    // a judge asks its generators through the run, at the attempt it judges
    let asking = match (run.program.externs[id].is_judge(), site) {
        (false, _) => None,
        (true, None) => {
            return Verdict::fatal(format!(
                "{name}: a judge asks a generator, so it judges only an action's answer \
                 (`:guard`, `:pre-guard`), where its calls are counted"
            ))
        }
        (true, Some(site)) => match Asking::new(run, site, id, &args) {
            Ok(a) => Some((Arc::new(a), site)),
            Err(e) => return Verdict::fatal(format!("{name}: {e}")),
        },
    };
    let call = GuardCall {
        subject,
        args,
        workdir: super::paths::dir_of(&run.dirs, &run.workdir, file),
        generators: Generators(
            asking
                .as_ref()
                .map(|(a, _)| Arc::new(a.clone()) as Arc<dyn AskGenerator>),
        ),
    };
    let verdict = judge_with(run, imp, name, call).await;
    if let Some((a, site)) = &asking {
        a.settle(run, site);
    }
    verdict
}

/// Runs a guard's implementation: panics caught, time bounded.
async fn judge_with(run: &Run<'_>, imp: &GuardImpl, name: &str, call: GuardCall) -> Verdict {
    let verdict = match imp {
        GuardImpl::Sync(f) => match std::panic::catch_unwind(AssertUnwindSafe(|| f(&call))) {
            Ok(v) => v,
            Err(p) => Verdict::Fatal(format!("the guard `{name}` crashed: {}", panic_text(&*p))),
        },
        GuardImpl::Async(f) => {
            let fut = AssertUnwindSafe(f(call)).catch_unwind();
            let limited = async {
                match run.guard_timeout {
                    Some(t) => tokio::time::timeout(t, fut).await.ok(),
                    None => Some(fut.await),
                }
            };
            match limited.await {
                Some(Ok(v)) => v,
                Some(Err(p)) => {
                    Verdict::Fatal(format!("the guard `{name}` crashed: {}", panic_text(&*p)))
                }
                None => Verdict::fail(format!(
                    "the guard `{name}` did not finish within {}",
                    show_duration(run.guard_timeout.unwrap_or_default())
                )),
            }
        }
    };
    match verdict {
        Verdict::Pass => Verdict::Pass,
        Verdict::Fail(f) => Verdict::Fail(format!("{name}: {f}")),
        Verdict::Fatal(f) => Verdict::Fatal(format!("{name}: {f}")),
    }
}

/// A panic payload in words.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}

/// `1500ms` → `1.5s`, for messages.
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms > 1000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{ms}ms")
    }
}
