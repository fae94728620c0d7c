//! Worst-case bounds per task, before a single model call.
//!
//! For an action with retry bound R (R+1 attempts): R+1 generator calls,
//! R+1 times its guard calls, R+1 times `:max-tokens`, R+1 times the time
//! of one attempt (generation timeout plus guard and effect timeouts).
//!
//! Every callee has two worst cases: of a run that succeeds (S) and of a
//! run that fails (F), either possibly impossible. A sequence succeeds
//! when all its parts do (ΣS) and fails at some part k after the earlier
//! ones succeeded (max over k of ΣS<k + F_k). A fork-join adds calls,
//! guard runs and tokens and takes the longest branch for time; when one
//! branch fails, the others may all have run to completion first. A task
//! tries its methods in order: it succeeds at method k after the earlier
//! ones failed, or fails after all failed. Escalation of subtask `s` to
//! `t` after N failed attempts, at most E times, adds E rounds of N
//! attempts of `s` and a run of `t` before the last full run of `s`.
//! `:strategy best-of(N)` makes N samples per attempt, concurrently: N
//! times the calls, guard runs and tokens of an attempt, the time of one.
//! Recursion is unrolled to each `:max-depth`; a call past the depth fails
//! at once and costs nothing. The bound of a task is the larger of S and F:
//! the most any run can spend.
//!
//! With success probabilities (`:p`, or `:default-p`), an action succeeds
//! with probability at least 1 − (1 − p)^((R+1)·N) (N samples per attempt); a method needs all its
//! subtasks; a task fails only if every method fails.

use std::collections::HashMap;

use serde::Serialize;

use super::graph::MethodGraph;
use super::termination::generation_timeout;
use super::CallGraph;
use crate::check::ir::{
    Action, Callee, GuardExpr, GuardRef, Method, OnFail, Operand, Ordering, Program, Value,
};

/// Worst-case resources of running something once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    pub generator_calls: u64,
    pub guard_runs: u64,
    /// `None`: some action has no `:max-tokens`.
    pub tokens: Option<u64>,
    /// Along the critical path; `None`: some generation has no timeout.
    pub time_ms: Option<u64>,
}

impl Cost {
    fn then(self, o: Cost) -> Cost {
        Cost {
            generator_calls: self.generator_calls.saturating_add(o.generator_calls),
            guard_runs: self.guard_runs.saturating_add(o.guard_runs),
            tokens: add(self.tokens, o.tokens),
            time_ms: add(self.time_ms, o.time_ms),
        }
    }

    /// Side by side: calls, guard runs and tokens add, time is the longer.
    fn beside(self, o: Cost) -> Cost {
        Cost {
            generator_calls: self.generator_calls.saturating_add(o.generator_calls),
            guard_runs: self.guard_runs.saturating_add(o.guard_runs),
            tokens: add(self.tokens, o.tokens),
            time_ms: self.time_ms.zip(o.time_ms).map(|(a, b)| a.max(b)),
        }
    }

    /// The larger of each measure.
    fn max(self, o: Cost) -> Cost {
        Cost {
            generator_calls: self.generator_calls.max(o.generator_calls),
            guard_runs: self.guard_runs.max(o.guard_runs),
            tokens: self.tokens.zip(o.tokens).map(|(a, b)| a.max(b)),
            time_ms: self.time_ms.zip(o.time_ms).map(|(a, b)| a.max(b)),
        }
    }

    /// This cost with its generator calls capped (used when only the
    /// first round of an escalation can succeed).
    fn min_calls(self, o: Cost) -> Cost {
        if o.generator_calls < self.generator_calls {
            o
        } else {
            self
        }
    }

    fn times(self, k: u64) -> Cost {
        Cost {
            generator_calls: self.generator_calls.saturating_mul(k),
            guard_runs: self.guard_runs.saturating_mul(k),
            tokens: self.tokens.map(|t| t.saturating_mul(k)),
            time_ms: self.time_ms.map(|t| t.saturating_mul(k)),
        }
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.saturating_add(b?))
}

/// A task's bounds, as `guardflow check --bounds` reports them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskBounds {
    pub task: String,
    /// `None` when recursion is too deep to unroll here.
    pub cost: Option<Cost>,
    /// Lower bound on the probability of success; `None` without `:p`.
    pub p_success: Option<f64>,
    /// The smallest retry bound, the same for every action, that reaches
    /// the requested probability; `Some(None)`: not reachable.
    pub retry_for_target: Option<Option<u64>>,
}

#[derive(Debug, Clone, Copy)]
struct Val {
    /// Worst case of a run that succeeds; `None`: no run can succeed.
    s: Option<Cost>,
    /// Worst case of a run that fails; `None`: no run can fail.
    f: Option<Cost>,
    p: Option<f64>,
}

impl Val {
    fn worst(&self) -> Option<Cost> {
        match (self.s, self.f) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The larger of two optional worst cases.
fn max_opt(a: Option<Cost>, b: Option<Cost>) -> Option<Cost> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Limits on unrolling recursion.
const MAX_STATES: usize = 200_000;
const MAX_NESTING: usize = 2_000;

struct Bounder<'a> {
    program: &'a Program,
    graphs: &'a [Vec<MethodGraph>],
    actions: Vec<Val>,
    /// Per action: (cost of one attempt, attempts).
    attempt: Vec<(Cost, u64)>,
    tasks: Vec<Option<Val>>,
    scc_of: Vec<usize>,
    /// Bounded tasks of each component, by position in the depth state.
    bounded: Vec<Vec<usize>>,
    memo: HashMap<(usize, Vec<u32>), Option<Val>>,
    nesting: usize,
}

/// Bounds for every task; `retry` replaces every action's retry bound
/// (for `--target`).
fn compute(
    program: &Program,
    graphs: &[Vec<MethodGraph>],
    calls: &CallGraph,
    retry: Option<u64>,
) -> Vec<Option<Val>> {
    let mut b = Bounder {
        program,
        graphs,
        actions: Vec::with_capacity(program.actions.len()),
        attempt: Vec::with_capacity(program.actions.len()),
        tasks: vec![None; program.tasks.len()],
        scc_of: vec![usize::MAX; program.tasks.len()],
        bounded: Vec::new(),
        memo: HashMap::new(),
        nesting: 0,
    };
    for a in &program.actions {
        let (one, attempts) = action_attempt(program, a, retry);
        b.attempt.push((one, attempts));
        let samples = attempts.saturating_mul(a.strategy.samples());
        let p = a.p.or(program.defaults.p).map(|p| independent(p, samples));
        let all = one.times(attempts);
        b.actions.push(Val {
            s: Some(all),
            f: Some(all),
            p,
        });
    }
    let components = calls.components();
    for (i, scc) in components.iter().enumerate() {
        let mut bounded = Vec::new();
        for c in scc {
            if let Callee::Task(t) = c {
                b.scc_of[t.index()] = i;
                if program.tasks[t.index()].max_depth.is_some() {
                    bounded.push(t.index());
                }
            }
        }
        b.bounded.push(bounded);
    }
    for (i, scc) in components.iter().enumerate() {
        for c in scc {
            if let Callee::Task(t) = c {
                let state = vec![0; b.bounded[i].len()];
                b.memo.clear();
                b.nesting = 0;
                let v = b.task(t.index(), &state);
                b.tasks[t.index()] = v;
            }
        }
    }
    b.tasks
}

/// The cost of one attempt of an action, and its number of attempts.
fn action_attempt(program: &Program, a: &Action, retry: Option<u64>) -> (Cost, u64) {
    let r = retry.or(a.retry).or(program.defaults.retry).unwrap_or(0);
    let attempts = r.saturating_add(1);
    let mut leaves = 0u64;
    let mut guard_time = 0u64;
    let mut judged = Judged::default();
    for g in [Some(&a.guard), a.pre_guard.as_ref()].into_iter().flatten() {
        guard_leaves(program, g, &mut leaves, &mut guard_time);
        judge_calls(program, g, &mut judged);
    }
    guard_time = guard_time.saturating_add(judged.time_ms);
    if let Some(effect) = &a.effect {
        guard_time = guard_time.saturating_add(timeout_arg(
            program,
            &program.externs[effect.effect.index()].params,
            &effect.args,
        ));
    }
    // the samples of an attempt run side by side: each costs its calls
    // (its own and its judges'), the attempt lasts as long as the slowest
    let n = a.strategy.samples();
    let tokens = add(a.max_tokens.or(program.defaults.max_tokens), judged.tokens)
        .map(|t| t.saturating_mul(n));
    let time = generation_timeout(program, a).map(|t| t.saturating_add(guard_time));
    (
        Cost {
            generator_calls: judged.calls.saturating_add(1).saturating_mul(n),
            guard_runs: leaves.saturating_mul(n),
            tokens,
            time_ms: time,
        },
        attempts,
    )
}

/// Counts the guard calls an expression may make, and their timeouts.
fn guard_leaves(program: &Program, g: &GuardExpr, leaves: &mut u64, time: &mut u64) {
    match g {
        GuardExpr::Call { guard, args, .. } => match guard {
            GuardRef::Extern { id } => {
                *leaves += 1;
                *time = time.saturating_add(timeout_arg(
                    program,
                    &program.externs[id.index()].params,
                    args,
                ));
            }
            GuardRef::User { id } => {
                if let Some(def) = program.guards.get(id.index()) {
                    guard_leaves(program, &def.body, leaves, time);
                }
            }
        },
        // predicates are decided from values: no call
        GuardExpr::Bool { .. } | GuardExpr::Compare { .. } | GuardExpr::Value { .. } => {}
        GuardExpr::Not { expr, .. } => guard_leaves(program, expr, leaves, time),
        GuardExpr::And { exprs, .. }
        | GuardExpr::Or { exprs, .. }
        | GuardExpr::Combinator { exprs, .. } => {
            for e in exprs {
                guard_leaves(program, e, leaves, time);
            }
        }
    }
}

/// What the judges of a guard expression may ask per attempt.
struct Judged {
    calls: u64,
    /// `None`: a judge without `max_tokens`.
    tokens: Option<u64>,
    time_ms: u64,
}

impl Default for Judged {
    fn default() -> Judged {
        Judged {
            calls: 0,
            tokens: Some(0),
            time_ms: 0,
        }
    }
}

/// Adds the generator calls the judges of `g` may make (1 + `retries`
/// each; E0235 makes it a literal), with their tokens (`max_tokens`) and
/// the timeouts of the generators named.
fn judge_calls(program: &Program, g: &GuardExpr, out: &mut Judged) {
    match g {
        GuardExpr::Call { guard, args, .. } => match guard {
            GuardRef::Extern { id } => {
                let e = &program.externs[id.index()];
                if !e.is_judge() {
                    return;
                }
                let calls = e.judge_calls(args).unwrap_or(1);
                out.calls = out.calls.saturating_add(calls);
                let max_tokens = e
                    .params
                    .iter()
                    .position(|p| p.name == "max_tokens")
                    .and_then(|i| args.get(i))
                    .and_then(|a| match a {
                        Operand::Const {
                            value: Value::Int(n),
                        } if *n > 0 => Some(*n),
                        _ => None,
                    });
                out.tokens = add(out.tokens, max_tokens.map(|t| t.saturating_mul(calls)));
                for i in e.generator_params() {
                    if let Some(Operand::Generator { generator }) = args.get(i) {
                        if let Some(inst) = program.generators.get(generator.index()) {
                            let kind = &program.externs[inst.kind.index()];
                            let t = timeout_arg(program, &kind.params, &inst.args);
                            out.time_ms = out.time_ms.saturating_add(t.saturating_mul(calls));
                        }
                    }
                }
            }
            GuardRef::User { id } => {
                if let Some(def) = program.guards.get(id.index()) {
                    judge_calls(program, &def.body, out);
                }
            }
        },
        GuardExpr::Bool { .. } | GuardExpr::Compare { .. } | GuardExpr::Value { .. } => {}
        GuardExpr::Not { expr, .. } => judge_calls(program, expr, out),
        GuardExpr::And { exprs, .. }
        | GuardExpr::Or { exprs, .. }
        | GuardExpr::Combinator { exprs, .. } => {
            for e in exprs {
                judge_calls(program, e, out);
            }
        }
    }
}

/// The constant `timeout` argument of a call, in milliseconds (0 if none).
fn timeout_arg(_program: &Program, params: &[crate::check::ir::Param], args: &[Operand]) -> u64 {
    params
        .iter()
        .position(|p| p.name == "timeout")
        .and_then(|i| args.get(i))
        .and_then(|a| match a {
            Operand::Const {
                value: Value::Duration(ms),
            } => Some(*ms),
            _ => None,
        })
        .unwrap_or(0)
}

fn zero() -> Cost {
    Cost {
        time_ms: Some(0),
        tokens: Some(0),
        ..Cost::default()
    }
}

impl Bounder<'_> {
    fn task(&mut self, t: usize, state: &[u32]) -> Option<Val> {
        let scc = self.scc_of[t];
        let key = (t, state.to_vec());
        if let Some(v) = self.memo.get(&key) {
            return *v;
        }
        if self.memo.len() > MAX_STATES || self.nesting > MAX_NESTING {
            return None;
        }
        let mut state = state.to_vec();
        if let Some(pos) = self.bounded[scc].iter().position(|&b| b == t) {
            let depth = self.program.tasks[t].max_depth.unwrap_or(u64::MAX);
            if u64::from(state[pos]) >= depth {
                // past the depth: the call fails at once
                return Some(Val {
                    s: None,
                    f: Some(zero()),
                    p: Some(0.0),
                });
            }
            state[pos] += 1;
        }
        self.nesting += 1;
        let task = &self.program.tasks[t];
        // `failed`: the worst case of reaching the next method, every
        // earlier one having failed (None: no way to get there)
        let mut failed = Some(zero());
        let mut success: Option<Cost> = None;
        let mut p_all_fail = Some(1.0);
        let mut ok = true;
        for (m, method) in task.methods.iter().enumerate() {
            let Some(before) = failed else { break };
            let pre = method.pre.as_ref();
            if pre.and_then(super::termination::constant) == Some(false) {
                continue; // never chosen
            }
            let Some(v) = self.method(t, m, method, scc, &state) else {
                ok = false;
                break;
            };
            success = max_opt(success, v.s.map(|s| before.then(s)));
            let fails = v.f.map(|f| before.then(f));
            // a method whose precondition does not hold is skipped
            failed = if pre.is_some() {
                max_opt(fails, Some(before))
            } else {
                fails
            };
            p_all_fail = match (p_all_fail, v.p) {
                (Some(a), Some(p)) => Some(a * (1.0 - p)),
                _ => None,
            };
        }
        self.nesting -= 1;
        let v = ok.then_some(Val {
            s: success,
            f: failed,
            p: p_all_fail.map(|f| 1.0 - f),
        });
        self.memo.insert(key, v);
        v
    }

    fn callee(&mut self, c: Callee, scc: usize, state: &[u32]) -> Option<Val> {
        match c {
            Callee::Action(a) => self.actions.get(a.index()).copied(),
            Callee::Task(u) => {
                if self.scc_of[u.index()] == scc {
                    self.task(u.index(), state)
                } else {
                    self.tasks[u.index()]
                }
            }
        }
    }

    fn method(
        &mut self,
        t: usize,
        m: usize,
        method: &Method,
        scc: usize,
        state: &[u32],
    ) -> Option<Val> {
        let mut vals = Vec::with_capacity(method.subtasks.len());
        for s in &method.subtasks {
            let v = self.callee(s.callee, scc, state)?;
            vals.push(match &s.each {
                Some(each) => map_val(v, each.bound, each.width(), method.on_fail),
                None => v,
            });
        }
        let plain = vals.clone();
        let mut p = Some(1.0);
        for (j, s) in method.subtasks.iter().enumerate() {
            p = match (p, plain[j].p) {
                (Some(a), Some(b)) => Some(a * b),
                _ => None,
            };
            let Some(esc) = &s.escalation else { continue };
            let e = esc.max.unwrap_or(0);
            let own = plain[j];
            let target = *plain.get(esc.target as usize)?;
            // one round: N failed attempts of an action, or one failed run
            // of a task
            let round = match s.callee {
                Callee::Action(a) => {
                    let (one, attempts) = self.attempt[a.index()];
                    (esc.after <= attempts).then(|| one.times(esc.after))
                }
                Callee::Task(_) => {
                    if esc.after == 1 {
                        own.f
                    } else {
                        None
                    }
                }
            };
            let (Some(round), true) = (round, e > 0) else {
                continue;
            };
            vals[j] = match target.s {
                Some(ts) => {
                    let rounds = round.then(ts).times(e);
                    let before_last = round.then(ts).times(e - 1).then(round);
                    Val {
                        s: own.s.map(|s| rounds.then(s)),
                        f: max_opt(
                            own.f.map(|f| rounds.then(f)),
                            target.f.map(|tf| before_last.then(tf)),
                        ),
                        p: own.p,
                    }
                }
                // the target cannot succeed: the first escalation fails
                None => Val {
                    s: own.s.map(|s| s.min_calls(round)),
                    f: target.f.map(|tf| round.then(tf)),
                    p: own.p,
                },
            };
        }
        let graph = &self.graphs[t][m];
        let (s, f) = node(&method.ordering, &vals, graph);
        Some(Val { s, f, p })
    }
}

/// A map of `n` items, at most `k` at a time, each a run of `v`: a
/// fork-join of `n` copies of the call, computed rather than built, so a
/// map costs O(1) whatever its bound. An empty list succeeds at once, so a
/// map can always succeed. All items succeed: n times the calls, guard
/// runs and tokens, and ceil(n/k) waves of the longest item for time (a
/// slot frees when an item ends, so item j starts by wave floor(j/k)).
/// One item fails: the other n−1 may all have run to their worst end
/// first, as in a fork-join; one at a time (`:parallel 1`) and cancelling,
/// the items before it succeeded and none after it started.
fn map_val(v: Val, n: u64, k: u64, on_fail: OnFail) -> Val {
    let k = k.clamp(1, n.max(1));
    let waves = n.div_ceil(k);
    let wide = |c: Cost, time: Option<u64>| Cost {
        time_ms: time.map(|t| t.saturating_mul(waves)),
        ..c.times(n)
    };
    let worst = v.worst();
    let s = match v.s {
        Some(c) => wide(c, c.time_ms),
        None => zero(),
    };
    let one_by_one = k == 1 && on_fail == OnFail::Cancel;
    let f = v.f.map(|f| {
        let before = if one_by_one {
            v.s.unwrap_or_else(zero)
        } else {
            worst.unwrap_or(f)
        };
        let others = before.times(n.saturating_sub(1));
        if one_by_one {
            // in sequence: the times add
            return f.then(others);
        }
        let calls = f.then(others);
        let time = worst.map_or(f.time_ms, |w| w.max(f).time_ms);
        Cost {
            time_ms: time.map(|t| t.saturating_mul(waves)),
            ..calls
        }
    });
    Val {
        s: Some(s),
        f,
        p: v.p.map(|p| p.powf(n as f64)),
    }
}

/// The worst cases of an ordering: of a run where every subtask succeeds,
/// and of a run that fails.
fn node(o: &Ordering, vals: &[Val], graph: &MethodGraph) -> (Option<Cost>, Option<Cost>) {
    match o {
        Ordering::Label { index, .. } => vals
            .get(*index as usize)
            .map_or((None, None), |v| (v.s, v.f)),
        Ordering::Seq { items, .. } => {
            let mut ok = Some(zero());
            let mut fail: Option<Cost> = None;
            for item in items {
                let (s, f) = node(item, vals, graph);
                if let Some(before) = ok {
                    fail = max_opt(fail, f.map(|f| before.then(f)));
                }
                ok = ok.zip(s).map(|(a, b)| a.then(b));
            }
            (ok, fail)
        }
        Ordering::Par { items, .. } => {
            let parts: Vec<(Option<Cost>, Option<Cost>)> =
                items.iter().map(|i| node(i, vals, graph)).collect();
            let ok = parts
                .iter()
                .try_fold(zero(), |acc, (s, _)| Some(acc.beside((*s)?)));
            // one branch fails; the others may all have run to the end.
            // What runs beside branch k is every other branch's worst
            // case: the side-by-side sums before and after k, each made
            // once, so a group of n branches costs O(n), not O(n²).
            let worst: Vec<Option<Cost>> = parts.iter().map(|(s, f)| max_opt(*s, *f)).collect();
            let beside = |acc: Option<Cost>, c: &Option<Cost>| match (acc, c) {
                (Some(a), Some(c)) => Some(a.beside(*c)),
                (a, c) => a.or(*c),
            };
            let mut after: Vec<Option<Cost>> = vec![None; worst.len() + 1];
            for i in (0..worst.len()).rev() {
                after[i] = beside(after[i + 1], &worst[i]);
            }
            let mut before: Option<Cost> = None;
            let mut fail: Option<Cost> = None;
            for (k, (_, fk)) in parts.iter().enumerate() {
                if let Some(fk) = fk {
                    let others = beside(before, &after[k + 1]);
                    let total = others.map_or(*fk, |o| fk.beside(o));
                    fail = max_opt(fail, Some(total));
                }
                before = beside(before, &worst[k]);
            }
            (ok, fail)
        }
        Ordering::Partial { span, chains, .. } => {
            let Some(group) = graph.partials.iter().find(|g| g.span == *span) else {
                return (None, None);
            };
            let labels = &group.labels;
            let val = |l: u32| vals.get(l as usize).copied();
            // success: every label succeeds; time is the longest path
            let mut ok = Some(zero());
            for &l in labels {
                ok = ok.zip(val(l).and_then(|v| v.s)).map(|(a, b)| a.then(b));
            }
            if let Some(ok) = ok.as_mut() {
                let times: Vec<Option<u64>> = labels
                    .iter()
                    .map(|&l| val(l).and_then(|v| v.s).and_then(|c| c.time_ms))
                    .collect();
                ok.time_ms = longest_path(group, &times);
            }
            // failure at k: what is ordered before k succeeded, what is
            // unordered with k may have run to the end (times add: an
            // upper bound)
            let mut fail: Option<Cost> = None;
            for &k in labels {
                let Some(fk) = val(k).and_then(|v| v.f) else {
                    continue;
                };
                let mut total = Some(fk);
                for &i in labels {
                    if i == k {
                        continue;
                    }
                    let c = match graph.order(i, k) {
                        super::graph::Order::Before => val(i).and_then(|v| v.s),
                        super::graph::Order::After => Some(zero()),
                        _ => val(i).and_then(|v| max_opt(v.s, v.f)),
                    };
                    total = total.zip(c).map(|(a, b)| a.then(b));
                }
                fail = max_opt(fail, total);
            }
            let _ = chains;
            (ok, fail)
        }
    }
}

/// The longest path through a partial-order group, each label taking its
/// time.
fn longest_path(group: &super::graph::PartialGroup, times: &[Option<u64>]) -> Option<u64> {
    let n = group.labels.len();
    let own: Vec<u64> = times.iter().map(|t| t.unwrap_or(0)).collect();
    if times.iter().any(Option::is_none) {
        return None;
    }
    let mut finish = own.clone();
    // relax along the (acyclic) edges until stable: groups are small
    for _ in 0..n {
        let mut changed = false;
        for &(a, b, _) in &group.edges {
            let candidate = finish[a as usize].saturating_add(own[b as usize]);
            if candidate > finish[b as usize] {
                finish[b as usize] = candidate;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    finish.into_iter().max().or(Some(0))
}

/// Bounds of every task; with `target`, also the smallest uniform retry
/// bound reaching that probability of success.
pub fn task_bounds(
    program: &Program,
    graphs: &[Vec<MethodGraph>],
    target: Option<f64>,
) -> Vec<TaskBounds> {
    let calls = CallGraph::new(program);
    let vals = compute(program, graphs, &calls, None);
    let for_target: Vec<Option<Option<u64>>> = match target {
        None => vec![None; program.tasks.len()],
        Some(goal) => retry_for(program, graphs, &calls, goal),
    };
    program
        .tasks
        .iter()
        .zip(vals)
        .zip(for_target)
        .map(|((t, v), r)| TaskBounds {
            task: t.name.clone(),
            cost: v.and_then(|v| v.worst()),
            p_success: v.and_then(|v| v.p),
            retry_for_target: r,
        })
        .collect()
}

/// One action's bounds, as `guardflow check --bounds --actions` reports
/// them: one run of it (no escalation), on its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionBounds {
    pub action: String,
    /// `R + 1`.
    pub attempts: u64,
    /// Samples per attempt (`best-of(N)`: N).
    pub samples: u64,
    pub cost: Cost,
    /// The probability that one attempt (one sample) passes: `:p`, else
    /// `:default-p`.
    pub p: Option<f64>,
    /// `1 − (1 − p)^(attempts × samples)`: the probability that the
    /// action succeeds if its attempts are independent.
    pub p_success: Option<f64>,
}

/// The bounds of every action, in the order of the program.
pub fn action_bounds(program: &Program) -> Vec<ActionBounds> {
    program
        .actions
        .iter()
        .map(|a| {
            let (one, attempts) = action_attempt(program, a, None);
            let samples = a.strategy.samples();
            let p = a.p.or(program.defaults.p);
            ActionBounds {
                action: a.name.clone(),
                attempts,
                samples,
                cost: one.times(attempts),
                p,
                p_success: p.map(|p| independent(p, attempts.saturating_mul(samples))),
            }
        })
        .collect()
}

/// The probability that at least one of `n` independent tries, each
/// passing with probability `p`, passes.
pub fn independent(p: f64, n: u64) -> f64 {
    1.0 - (1.0 - p).powf(n as f64)
}

/// Per task, the smallest R in 0..=1000 such that every action retrying
/// R times gives at least `goal`. Probabilities only grow with R, so a
/// galloping search finds it: R = 0, 1, 3, 7, … until the goal is met,
/// then a binary search below. Most goals need a small R, so this takes a
/// handful of evaluations of the program, each shared by every task that
/// asks for the same R.
fn retry_for(
    program: &Program,
    graphs: &[Vec<MethodGraph>],
    calls: &CallGraph,
    goal: f64,
) -> Vec<Option<Option<u64>>> {
    const MAX_R: u64 = 1000;
    let n = program.tasks.len();
    let mut cache: HashMap<u64, Vec<Option<f64>>> = HashMap::new();
    let mut p_at = |r: u64, t: usize| -> Option<f64> {
        cache
            .entry(r)
            .or_insert_with(|| {
                compute(program, graphs, calls, Some(r))
                    .into_iter()
                    .map(|v| v.and_then(|v| v.p))
                    .collect()
            })
            .get(t)
            .copied()
            .flatten()
    };
    // gallop: the first R of 0, 1, 3, 7, …, MAX_R meeting the goal
    let mut lo = vec![0u64; n];
    let mut hi: Vec<Option<u64>> = vec![None; n];
    let mut done = vec![false; n];
    let mut r = 0u64;
    loop {
        for t in 0..n {
            if done[t] {
                continue;
            }
            match p_at(r, t) {
                Some(p) if p >= goal => {
                    hi[t] = Some(r);
                    done[t] = true;
                }
                // no probability (an action without `:p`): none at any R
                None => done[t] = true,
                Some(_) => lo[t] = r + 1,
            }
        }
        if r == MAX_R || done.iter().all(|d| *d) {
            break;
        }
        r = (r * 2 + 1).min(MAX_R);
    }
    (0..n)
        .map(|t| {
            let Some(mut h) = hi[t] else {
                // never met: out of reach (Some(None)), or no probability
                return p_at(MAX_R, t).map(|_| None);
            };
            let mut l = lo[t].min(h);
            while l < h {
                let mid = l + (h - l) / 2;
                match p_at(mid, t) {
                    Some(p) if p >= goal => h = mid,
                    _ => l = mid + 1,
                }
            }
            Some(Some(h))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The galloping search finds what trying every R in turn finds.
    #[test]
    fn retry_for_target_is_the_smallest_r_reaching_the_goal() {
        let src = r#"
use std.{non_empty}
generator g = llm(model: "m")
action a(x: Text) -> Text { :generate g "{x}" :guard non_empty :retry 1 :p 0.6 }
action b(x: Text) -> Text { :generate g "{x}" :guard non_empty :retry 1 :p 0.9 }
action c(x: Text) -> Text { :generate g "{x}" :guard non_empty :retry 1 }
task one(x: Text) -> Text { method m { :subtasks (s: a(x)) :result s } }
task many(x: Text) -> Text {
  method m {
    :subtasks (s1: a(x), s2: b(s1), s3: a(s2), s4: b(s3), s5: a(s4))
    :ordering (s1 ; s2 ; s3 ; s4 ; s5)
    :result s5
  }
}
task unknown(x: Text) -> Text { method m { :subtasks (s: c(x)) :result s } }
"#;
        let checked = crate::check::check_source("t.guardflow", src);
        assert!(!checked.has_errors(), "{:#?}", checked.diagnostics);
        let program = checked.program.unwrap();
        let graphs = checked.verified.unwrap().graphs;
        let calls = CallGraph::new(&program);
        let p = |r: u64| -> Vec<Option<f64>> {
            compute(&program, &graphs, &calls, Some(r))
                .into_iter()
                .map(|v| v.and_then(|v| v.p))
                .collect()
        };
        let by_r: Vec<Vec<Option<f64>>> = (0..=1000).map(p).collect();
        for goal in [0.3, 0.6, 0.9, 0.99, 0.999_999, 1.0] {
            let found = retry_for(&program, &graphs, &calls, goal);
            for (t, got) in found.iter().enumerate() {
                let want =
                    by_r[0][t].map(|_| (0..=1000u64).find(|&r| by_r[r as usize][t] >= Some(goal)));
                assert_eq!(*got, want, "task {t}, goal {goal}");
            }
        }
        // the probabilities of `one`: reached at 0 for 0.3, later for more
        let one = retry_for(&program, &graphs, &calls, 0.99)[0];
        assert_eq!(one, Some(Some(5)));
    }
}
