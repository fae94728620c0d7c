//! Deadlock and termination findings: plain data with their witnesses,
//! turned into diagnostics in one place.

use crate::diagnostics::{Code, Diagnostic};
use crate::source::Span;

/// One step of a witness: a place in the source and what happens there.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub span: Span,
    pub what: String,
}

impl Step {
    pub fn new(span: Span, what: impl Into<String>) -> Step {
        Step {
            span,
            what: what.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum VerifyError {
    /// E0301: `a < b` … `< a`.
    OrderingCycle { method: String, cycle: Vec<Step> },
    /// E0302: a subtask reads an artifact that is produced after it.
    ReadsLater {
        reader: String,
        producer: String,
        read: Span,
        path: Vec<Step>,
    },
    /// E0302: a subtask reads its own artifact.
    ReadsItself { reader: String, read: Span },
    /// E0303: a subtask reads the artifact of a subtask it is not ordered
    /// after.
    ReadsSibling {
        reader: String,
        producer: String,
        read: Span,
        fork: Span,
        producer_span: Span,
        /// They part in a partial order, not in a parallel group.
        partial: bool,
    },
    /// E0304: an acquisition can never be granted because ancestors on
    /// the way to it already hold the pool.
    HeldByAncestor {
        resource: String,
        need: u64,
        size: u64,
        at: Span,
        holders: Vec<Step>,
    },
    /// E0305: resources held while waiting for each other.
    HoldAndWait { cycle: Vec<Step> },
    /// E0306: one acquisition asks for more than the pool has.
    DemandTooLarge {
        resource: String,
        need: u64,
        size: u64,
        at: Span,
        pool: Span,
    },
    /// E0401
    NoRetryBound { action: String, at: Span },
    /// E0402
    NoTimeout {
        action: String,
        generator: String,
        at: Span,
        generator_span: Span,
    },
    /// E0403: the tasks of the cycle (the first at its name, each other
    /// at the subtask that calls it) and the subtask that calls the first
    /// again.
    UnboundedRecursion { cycle: Vec<Step>, back: Span },
    /// E0404
    EscalationNotUpstream {
        subtask: String,
        target: String,
        at: Span,
        target_span: Span,
    },
    /// E0405
    EscalationUnbounded { subtask: String, at: Span },
    /// E0406
    RetriedEffect {
        action: String,
        retry: u64,
        effect: Span,
        retry_span: Span,
    },
    /// E0407
    ParallelEffects {
        resource: String,
        first: Vec<Step>,
        second: Vec<Step>,
        fork: Span,
        /// They part in a partial order, not in a parallel group.
        partial: bool,
    },
    /// E0307: a map whose items run effects on one resource side by side.
    MapEffects {
        resource: String,
        label: String,
        /// The map subtask.
        map: Span,
        /// The effect, where it is not the map itself.
        effect: Option<Span>,
        width: u64,
    },
    /// W0005
    NeverChosen {
        method: String,
        pre: Span,
        task: Span,
    },
}

impl VerifyError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        use VerifyError::*;
        match self {
            OrderingCycle { method, cycle } => {
                let names: Vec<&str> = cycle.iter().map(|s| s.what.as_str()).collect();
                let first = names.first().copied().unwrap_or("");
                // step i is `names[i] < names[i + 1]`, the last back to the first
                let pair = |i: usize| {
                    let next = names.get(i + 1).copied().unwrap_or(first);
                    format!("{}. `{}` before `{next}`", i + 1, names[i])
                };
                let mut d = Diagnostic::new(
                    Code::E0301,
                    format!(
                        "the ordering of method `{method}` is a cycle: {} < {first}",
                        names.join(" < "),
                    ),
                    cycle[0].span,
                    pair(0),
                );
                for (i, step) in cycle.iter().enumerate().skip(1) {
                    d = d.with_label(step.span, pair(i));
                }
                d.with_note("no subtask of the cycle can start: each waits for the one before it")
                    .with_help("remove one `<` of the cycle")
            }
            ReadsLater {
                reader,
                producer,
                read,
                path,
            } => {
                let mut d = Diagnostic::new(
                    Code::E0302,
                    format!("`{reader}` reads `{producer}`, which runs after it"),
                    *read,
                    format!("`{reader}` needs `{producer}`'s artifact to start"),
                );
                for (i, step) in path.iter().enumerate() {
                    d = d.with_label(step.span, format!("{}. {}", i + 1, step.what));
                }
                d.with_note(format!(
                    "`{reader}` waits for `{producer}`, and `{producer}` waits for `{reader}`: the method deadlocks"
                ))
                .with_help(format!("order `{producer}` before `{reader}`"))
            }
            ReadsItself { reader, read } => Diagnostic::new(
                Code::E0302,
                format!("`{reader}` reads its own artifact"),
                *read,
                "it would wait for itself forever",
            )
            .with_help("pass the artifact of an earlier subtask"),
            ReadsSibling {
                reader,
                producer,
                read,
                fork,
                producer_span,
                partial,
            } => {
                let d = Diagnostic::new(
                    Code::E0303,
                    format!("`{reader}` reads `{producer}`, which is not ordered before it"),
                    *read,
                    format!("`{reader}` may start before `{producer}` has an artifact"),
                );
                if *partial {
                    // `;` inside a partial order would be E0007
                    d.with_label(*producer_span, format!("no `<` puts `{producer}` before `{reader}`"))
                        .with_label(*fork, "this partial order leaves them unordered")
                        .with_note("an artifact reaches a subtask only through the ordering: a subtask starts when what it is ordered after has finished")
                        .with_help(format!("add `{producer} < {reader}` to the partial order"))
                } else {
                    d.with_label(*producer_span, format!("`{producer}` runs in another branch"))
                        .with_label(*fork, "the branches part here and join only at the end")
                        .with_note("an artifact reaches a subtask only through the ordering: the join never supplies it to a sibling")
                        .with_help(format!("order `{producer}` before `{reader}`, e.g. `({producer} ; {reader})`"))
                }
            }
            HeldByAncestor {
                resource,
                need,
                size,
                at,
                holders,
            } => {
                let mut d = Diagnostic::new(
                    Code::E0304,
                    format!("this needs {need} of `{resource}`, but what calls it already holds the pool"),
                    *at,
                    format!("waits for {need} of {size} unit{}", plural(*size)),
                );
                for step in holders {
                    d = d.with_label(step.span, step.what.clone());
                }
                d.with_note("a resource is released only when its holder finishes, and the holder waits for this")
                    .with_help("acquire the resource in one place: the method or the action, not both")
            }
            HoldAndWait { cycle } => {
                let mut d = Diagnostic::new(
                    Code::E0305,
                    "resources are held while waiting for each other",
                    cycle[0].span,
                    format!("1. {}", cycle[0].what),
                );
                for (i, step) in cycle.iter().enumerate().skip(1) {
                    d = d.with_label(step.span, format!("{}. {}", i + 1, step.what));
                }
                d.with_note("if these run at the same time, each holds what the other waits for")
                    .with_help("acquire the resources together, in one `:uses`, so they are taken in one fixed order")
            }
            DemandTooLarge {
                resource,
                need,
                size,
                at,
                pool,
            } => Diagnostic::new(
                Code::E0306,
                format!("this needs {need} of `{resource}`, which has only {size}"),
                *at,
                format!("asks for {need}"),
            )
            .with_label(*pool, format!("`{resource}` has {size} unit{}", plural(*size))),
            NoRetryBound { action, at } => Diagnostic::new(
                Code::E0401,
                format!("action `{action}` has no retry bound"),
                *at,
                "how many times may this action retry?",
            )
            .with_note("without a bound, a generator that never satisfies the guard retries forever")
            .with_help("add `:retry N` to the action, or `:default-retry N` at the top of the file"),
            NoTimeout {
                action,
                generator,
                at,
                generator_span,
            } => Diagnostic::new(
                Code::E0402,
                format!("action `{action}` has no finite timeout"),
                *at,
                "a generation may wait here forever",
            )
            .with_label(*generator_span, format!("`{generator}` has no timeout of its own"))
            .with_help("add `:timeout DURATION` to the action, or `:default-timeout DURATION` to the file"),
            UnboundedRecursion { cycle, back } => {
                let names: Vec<&str> = cycle.iter().map(|s| s.what.as_str()).collect();
                let mut d = Diagnostic::new(
                    Code::E0403,
                    format!(
                        "recursion without a depth bound: {} → {}",
                        names.join(" → "),
                        names.first().copied().unwrap_or("")
                    ),
                    cycle[0].span,
                    format!("1. `{}`", names[0]),
                );
                for (i, step) in cycle.iter().enumerate().skip(1) {
                    d = d.with_label(step.span, format!("{}. calls `{}`", i + 1, step.what));
                }
                d = d.with_label(
                    *back,
                    format!("{}. calls `{}` again", cycle.len() + 1, names[0]),
                );
                d.with_help("add `:max-depth N` to one task of the cycle, after its parameters")
            }
            EscalationNotUpstream {
                subtask,
                target,
                at,
                target_span,
            } => Diagnostic::new(
                Code::E0404,
                format!("`{subtask}` escalates to `{target}`, which it does not read"),
                *at,
                format!("`{target}` is not upstream of `{subtask}`"),
            )
            .with_label(*target_span, format!("`{target}` is defined here"))
            .with_note("regenerating a subtask whose artifact does not reach this one cannot change this one's input")
            .with_help(format!("escalate to a subtask `{subtask}` reads, directly or through others")),
            EscalationUnbounded { subtask, at } => Diagnostic::new(
                Code::E0405,
                format!("the escalation of `{subtask}` has no bound"),
                *at,
                "how many times may this escalate?",
            )
            .with_help("add `:max-escalations N` after `after N`"),
            RetriedEffect {
                action,
                retry,
                effect,
                retry_span,
            } => Diagnostic::new(
                Code::E0406,
                format!("action `{action}` may run its effect {} times, but is not `:idempotent`", retry + 1),
                *retry_span,
                format!("{retry} retr{}", if *retry == 1 { "y" } else { "ies" }),
            )
            .with_label(*effect, "this effect changes the world on every attempt")
            .with_help("mark the action `:idempotent` if running it twice is safe, or use `:retry 0`"),
            ParallelEffects {
                resource,
                first,
                second,
                fork,
                partial,
            } => {
                let (other, fork_label, help) = if *partial {
                    // `;` inside a partial order would be E0007
                    (
                        "so does this one, and no `<` orders the two",
                        "this partial order leaves them unordered",
                        "order the two subtasks with `<`",
                    )
                } else {
                    (
                        "so does this one, in a parallel branch",
                        "the branches part here",
                        "order the two branches with `;`",
                    )
                };
                let mut d = Diagnostic::new(
                    Code::E0407,
                    format!("two effects on `{resource}` may run at the same time"),
                    first.last().map_or(*fork, |s| s.span),
                    "this effect holds it",
                )
                .with_label(second.last().map_or(*fork, |s| s.span), other);
                for step in first.iter().rev().skip(1).chain(second.iter().rev().skip(1)) {
                    d = d.with_label(step.span, step.what.clone());
                }
                d.with_label(*fork, fork_label).with_help(help)
            }
            MapEffects {
                resource,
                label,
                map,
                effect,
                width,
            } => {
                let d = Diagnostic::new(
                    Code::E0307,
                    format!("the items of `{label}` run effects on `{resource}` {width} at a time"),
                    *map,
                    format!("up to {width} items at once, each with an effect on `{resource}`"),
                );
                let d = match effect {
                    Some(e) => d.with_label(*e, "the effect"),
                    None => d,
                };
                d.with_note("side by side, the effects reach the resource in an order decided by timing, not by the workflow")
                    .with_help("add `:parallel 1` to run the items one after another")
            }
            NeverChosen { method, pre, task } => Diagnostic::new(
                Code::W0005,
                format!("method `{method}` can never be chosen"),
                *pre,
                "this precondition is always false",
            )
            .with_label(*task, "in this task")
            .with_help("remove the method, or fix its `:pre`"),
        }
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
