//! The verifier against brute force.
//!
//! Soundness: for random series-parallel workflows (with partial orders)
//! and random data edges, the checker reports a deadlock exactly when an
//! exhaustive explorer of the schedules finds one. Bounds: for random
//! small workflows with retries, fallback methods, escalation and bounded
//! recursion, the checker's worst-case generator calls equal the maximum
//! an exhaustive explorer of the outcomes reaches.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use guardflow::check::check_source;
use guardflow::check::verify::bounds::task_bounds;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases(default: u32) -> u32 {
    std::env::var("GUARDFLOW_VERIFY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ─── soundness of the deadlock verdict ──────────────────────────────────

/// An ordering over subtask labels, as the test sees it.
#[derive(Debug, Clone)]
enum Ord {
    Leaf(usize),
    Seq(Vec<Ord>),
    Par(Vec<Ord>),
    /// Labels of the group and `(a, b)` edges between them (`a < b`).
    Partial(Vec<usize>, Vec<(usize, usize)>),
}

/// Splits `labels` into a random ordering tree.
fn tree(labels: Vec<usize>, rng: &mut impl FnMut(usize) -> usize, depth: usize) -> Ord {
    if labels.len() == 1 {
        return Ord::Leaf(labels[0]);
    }
    let kind = rng(if depth > 3 { 2 } else { 5 });
    if kind == 4 && labels.len() <= 5 {
        // a partial order, possibly cyclic
        let mut edges = Vec::new();
        for _ in 0..rng(labels.len() + 1) {
            let a = labels[rng(labels.len())];
            let b = labels[rng(labels.len())];
            if a != b {
                edges.push((a, b));
            }
        }
        if edges.is_empty() {
            // a group with no `<` orders nothing and is E0115
            edges.push((labels[0], labels[1]));
        }
        return Ord::Partial(labels, edges);
    }
    let parts = 2 + rng(labels.len() - 1).min(2);
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); parts];
    for (i, l) in labels.iter().enumerate() {
        let g = if i < parts { i } else { rng(parts) };
        groups[g].push(*l);
    }
    groups.retain(|g| !g.is_empty());
    let children = groups
        .into_iter()
        .map(|g| tree(g, rng, depth + 1))
        .collect();
    if kind.is_multiple_of(2) {
        Ord::Seq(children)
    } else {
        Ord::Par(children)
    }
}

fn ord_text(o: &Ord) -> String {
    match o {
        Ord::Leaf(l) => format!("s{l}"),
        Ord::Seq(c) => format!(
            "({})",
            c.iter().map(ord_text).collect::<Vec<_>>().join(" ; ")
        ),
        Ord::Par(c) => format!(
            "({})",
            c.iter().map(ord_text).collect::<Vec<_>>().join(" || ")
        ),
        Ord::Partial(labels, edges) => {
            let mut parts: Vec<String> =
                edges.iter().map(|(a, b)| format!("s{a} < s{b}")).collect();
            for l in labels {
                if !edges.iter().any(|(a, b)| a == l || b == l) {
                    parts.push(format!("s{l}"));
                }
            }
            if parts.len() == 1 && !parts[0].contains('<') {
                // `(s1)` alone is a label, fine either way
            }
            format!("({})", parts.join(", "))
        }
    }
}

/// `before[a][b]`: the ordering makes `a` finish before `b` starts.
fn precedence(o: &Ord, n: usize) -> Vec<Vec<bool>> {
    fn leaves(o: &Ord, out: &mut Vec<usize>) {
        match o {
            Ord::Leaf(l) => out.push(*l),
            Ord::Seq(c) | Ord::Par(c) => c.iter().for_each(|x| leaves(x, out)),
            Ord::Partial(labels, _) => out.extend(labels),
        }
    }
    fn walk(o: &Ord, before: &mut Vec<Vec<bool>>) {
        match o {
            Ord::Leaf(_) => {}
            Ord::Seq(c) => {
                for (i, x) in c.iter().enumerate() {
                    walk(x, before);
                    let mut lx = Vec::new();
                    leaves(x, &mut lx);
                    for y in &c[i + 1..] {
                        let mut ly = Vec::new();
                        leaves(y, &mut ly);
                        for &a in &lx {
                            for &b in &ly {
                                before[a][b] = true;
                            }
                        }
                    }
                }
            }
            Ord::Par(c) => c.iter().for_each(|x| walk(x, before)),
            Ord::Partial(_, edges) => {
                for &(a, b) in edges {
                    before[a][b] = true;
                }
            }
        }
    }
    let mut before = vec![vec![false; n]; n];
    walk(o, &mut before);
    // transitive closure (Floyd–Warshall on booleans)
    for k in 0..n {
        for i in 0..n {
            if before[i][k] {
                let row_k = before[k].clone();
                for (cell, &via) in before[i].iter_mut().zip(&row_k) {
                    *cell |= via;
                }
            }
        }
    }
    before
}

/// Explores every schedule: a subtask starts when all it must follow have
/// finished, and reads its inputs then; a deadlock is a start whose input
/// is not there yet, or a state where nothing can move and work remains.
fn explorer_deadlocks(n: usize, before: &[Vec<bool>], reads: &[Vec<usize>]) -> bool {
    // state: 0 idle, 1 running, 2 done, packed base 3
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut stack = vec![vec![0u8; n]];
    while let Some(state) = stack.pop() {
        if !seen.insert(state.clone()) {
            continue;
        }
        if state.iter().all(|&s| s == 2) {
            continue;
        }
        let mut moved = false;
        for j in 0..n {
            match state[j] {
                0 if (0..n).all(|i| !before[i][j] || state[i] == 2) => {
                    if reads[j].iter().any(|&i| state[i] != 2) {
                        return true;
                    }
                    let mut next = state.clone();
                    next[j] = 1;
                    stack.push(next);
                    moved = true;
                }
                1 => {
                    let mut next = state.clone();
                    next[j] = 2;
                    stack.push(next);
                    moved = true;
                }
                _ => {}
            }
        }
        if !moved {
            return true;
        }
    }
    false
}

fn deadlock_program(n: usize, ordering: &Ord, reads: &[Vec<usize>]) -> String {
    let mut src = String::from(
        "use std.{non_empty}\ngenerator g = llm(model: \"m\")\n\
         action a0(x: Text) -> Text { :generate g \"{x}\" :guard non_empty :retry 0 }\n\
         action a1(x: Text, y: Text) -> Text { :generate g \"{x}{y}\" :guard non_empty :retry 0 }\n\
         action a2(x: Text, y: Text, z: Text) -> Text { :generate g \"{x}{y}{z}\" :guard non_empty :retry 0 }\n\
         task t(x: Text) {\n  method m {\n    :subtasks (",
    );
    let subtasks: Vec<String> = (0..n)
        .map(|j| {
            let mut args = vec!["x".to_string()];
            args.extend(reads[j].iter().map(|i| format!("s{i}")));
            format!("s{j}: a{}({})", reads[j].len(), args.join(", "))
        })
        .collect();
    src.push_str(&subtasks.join(", "));
    src.push_str(")\n    :ordering ");
    src.push_str(&ord_text(ordering));
    src.push_str("\n  }\n}\n");
    src
}

/// Generated workflows the soundness property must hold for in every run
/// (a requirement; about 20 s in a debug build).
const SOUNDNESS_CASES: u32 = 10_000;

#[test]
fn deadlock_verdicts_match_an_exhaustive_explorer() {
    let wanted = cases(SOUNDNESS_CASES);
    let mut runner = TestRunner::new(Config {
        cases: wanted,
        failure_persistence: None,
        ..Config::default()
    });
    // cases run, and how many of them deadlock
    let ran = AtomicU32::new(0);
    let deadlocked = AtomicU32::new(0);
    let strategy = (2usize..=7, any::<u64>());
    let result = runner.run(&strategy, |(n, seed)| {
        let mut state = seed | 1;
        let mut rng = move |m: usize| -> usize {
            // xorshift
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m.max(1) as u64) as usize
        };
        let ordering = tree((0..n).collect(), &mut rng, 0);
        let before = precedence(&ordering, n);
        // reads: mostly of a subtask ordered before the reader (fine),
        // sometimes of any subtask (often a deadlock), so that both
        // verdicts are common and one bad read among good ones is too
        let mut reads: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (j, r) in reads.iter_mut().enumerate() {
            let earlier: Vec<usize> = (0..n)
                .filter(|&i| i != j && before[i][j] && !before[j][i])
                .collect();
            for _ in 0..rng(3) {
                let i = if rng(6) == 0 {
                    rng(n)
                } else if !earlier.is_empty() {
                    earlier[rng(earlier.len())]
                } else {
                    continue;
                };
                if !r.contains(&i) {
                    r.push(i);
                }
            }
        }
        let src = deadlock_program(n, &ordering, &reads);
        let checked = check_source("soundness.guardflow", &src);
        let codes: BTreeSet<&str> = checked
            .diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        let other: Vec<&&str> = codes
            .iter()
            .filter(|c| !matches!(**c, "E0301" | "E0302" | "E0303" | "W0001"))
            .collect();
        prop_assert!(other.is_empty(), "unexpected findings {other:?} in\n{src}");
        let checker = codes.iter().any(|c| c.starts_with("E030"));
        let explorer = explorer_deadlocks(n, &before, &reads);
        ran.fetch_add(1, Relaxed);
        if explorer {
            deadlocked.fetch_add(1, Relaxed);
        }
        prop_assert_eq!(
            checker,
            explorer,
            "checker {} explorer {} on\n{}",
            checker,
            explorer,
            src
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (ran, deadlocked) = (ran.into_inner(), deadlocked.into_inner());
    assert!(ran >= wanted, "only {ran} of {wanted} cases ran");
    eprintln!("{deadlocked} of {ran} cases deadlock");
    // both verdicts must be common, or agreeing says little
    assert!(
        deadlocked * 10 >= ran && (ran - deadlocked) * 10 >= ran,
        "{deadlocked} of {ran} cases deadlock: the generator is lopsided"
    );
}

// ─── exactness of the bounds ────────────────────────────────────────────

/// A small workflow: actions with retry bounds; tasks with methods whose
/// subtasks run in sequence.
#[derive(Debug, Clone)]
struct Flow {
    retries: Vec<u64>,
    /// Samples per attempt: `:strategy best-of(N)` when more than 1.
    samples: Vec<u64>,
    /// Per task: max depth (if recursive) and methods; a method is a list
    /// of subtasks.
    tasks: Vec<(Option<u64>, Vec<Vec<Sub>>)>,
    /// Per task and method: a typed predicate `:pre` (that may or may not
    /// hold, so the method may be skipped with no call). A method with no
    /// subtasks returns the task's parameter (`:result x`): no call.
    pres: Vec<Vec<Option<usize>>>,
    /// The bound of every task's list parameter `xs: [Text; max N]`.
    bound: u64,
}

/// Typed predicates over the task's parameter, none of which calls
/// anything.
const PREDICATES: &[&str] = &[
    "len(x) > 3",
    "x != \"a\" && len(x) <= 100",
    "!(len(x) == 0) || x == \"b\"",
];

#[derive(Debug, Clone)]
struct Sub {
    callee: Callee,
    /// (earlier subtask index, after N, max E)
    escalation: Option<(usize, u64, u64)>,
    /// A map over `xs`, one item at a time: `for it in xs => callee(it)`.
    map: bool,
}

#[derive(Debug, Clone, Copy)]
enum Callee {
    Action(usize),
    Task(usize),
}

fn flow_program(f: &Flow) -> String {
    let mut src = String::from("use std.{non_empty}\ngenerator g = llm(model: \"m\")\n");
    for (i, r) in f.retries.iter().enumerate() {
        let strategy = match f.samples[i] {
            1 => String::new(),
            n => format!(" :strategy best-of({n})"),
        };
        src.push_str(&format!(
            "action a{i}(x: Text) -> Text {{ :generate g \"{{x}}\" :guard non_empty :retry {r}{strategy} }}\n"
        ));
    }
    for (t, (depth, methods)) in f.tasks.iter().enumerate() {
        let depth = depth.map_or(String::new(), |d| format!(" :max-depth {d}"));
        src.push_str(&format!(
            "task t{t}(x: Text, xs: [Text; max {}]) -> Text{depth} {{\n",
            f.bound
        ));
        for (m, subs) in methods.iter().enumerate() {
            let list: Vec<String> = subs
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let callee = match s.callee {
                        Callee::Action(a) => format!("a{a}"),
                        Callee::Task(u) => format!("t{u}"),
                    };
                    // read the escalation target so it is upstream
                    let arg = match s.escalation {
                        Some((target, _, _)) => format!("s{target}"),
                        None if s.map => "it".to_string(),
                        None => "x".to_string(),
                    };
                    let args = match s.callee {
                        Callee::Task(_) => format!("{arg}, xs"),
                        Callee::Action(_) => arg,
                    };
                    let esc = s.escalation.map_or(String::new(), |(target, n, e)| {
                        format!(" :escalate-to s{target} after {n} :max-escalations {e}")
                    });
                    if s.map {
                        format!("s{i}: for it in xs => {callee}({args}) :parallel 1")
                    } else {
                        format!("s{i}: {callee}({args}){esc}")
                    }
                })
                .collect();
            let pre = f.pres[t][m].map_or(String::new(), |p| format!(":pre {} ", PREDICATES[p]));
            if subs.is_empty() {
                src.push_str(&format!("  method m{m} {{ {pre}:result x }}\n"));
                continue;
            }
            src.push_str(&format!(
                "  method m{m} {{ {pre}:subtasks ({}) :result s{} }}\n",
                list.join(", "),
                subs.len() - 1
            ));
        }
        src.push_str("}\n");
    }
    src
}

/// Outcomes already explored, by callee and recursion depths.
type Memo = HashMap<(usize, Vec<(usize, u64)>), BTreeSet<(u64, bool)>>;

/// Every (generator calls, succeeded) a callee can end with.
fn outcomes(
    f: &Flow,
    c: Callee,
    depth: &mut HashMap<usize, u64>,
    memo: &mut Memo,
) -> BTreeSet<(u64, bool)> {
    match c {
        Callee::Action(a) => {
            // every sample of an attempt is a call
            let (attempts, n) = (f.retries[a] + 1, f.samples[a]);
            let mut out: BTreeSet<(u64, bool)> = (1..=attempts).map(|k| (k * n, true)).collect();
            out.insert((attempts * n, false));
            out
        }
        Callee::Task(t) => {
            let (max, methods) = &f.tasks[t];
            let here = *depth.get(&t).unwrap_or(&0);
            if let Some(max) = max {
                if here >= *max {
                    return BTreeSet::from([(0, false)]);
                }
            }
            let mut key_state: Vec<(usize, u64)> = depth.iter().map(|(k, v)| (*k, *v)).collect();
            key_state.sort();
            if let Some(v) = memo.get(&(t, key_state.clone())) {
                return v.clone();
            }
            depth.insert(t, here + 1);
            // methods in order: the first that succeeds ends the task
            let mut acc: BTreeSet<(u64, bool)> = BTreeSet::from([(0, false)]);
            let mut result: BTreeSet<(u64, bool)> = BTreeSet::new();
            for (m, subs) in methods.iter().enumerate() {
                let mut next_acc = BTreeSet::new();
                let mut ends = method_outcomes(f, subs, depth, memo);
                if f.pres[t][m].is_some() {
                    // skipped: its predicate does not hold, no call
                    ends.insert((0, false));
                }
                for &(spent, _) in &acc {
                    for &(calls, ok) in &ends {
                        if ok {
                            result.insert((spent + calls, true));
                        } else {
                            next_acc.insert((spent + calls, false));
                        }
                    }
                }
                acc = next_acc;
            }
            result.extend(acc);
            depth.insert(t, here);
            if here == 0 {
                depth.remove(&t);
            }
            memo.insert((t, key_state), result.clone());
            result
        }
    }
}

fn method_outcomes(
    f: &Flow,
    subs: &[Sub],
    depth: &mut HashMap<usize, u64>,
    memo: &mut Memo,
) -> BTreeSet<(u64, bool)> {
    let mut acc: BTreeSet<u64> = BTreeSet::from([0]);
    let mut out = BTreeSet::new();
    for s in subs {
        let mut plain = outcomes(f, s.callee, depth, memo);
        if s.map {
            // a list of 0 to `bound` items (each map's list on its own,
            // as the checker takes it), run in sequence; the first failure
            // ends the map
            let one = plain.clone();
            let mut ok: BTreeSet<u64> = BTreeSet::from([0]);
            let mut all = BTreeSet::new();
            for _ in 0..f.bound {
                all.extend(ok.iter().map(|&c| (c, true)));
                let mut next = BTreeSet::new();
                for &spent in &ok {
                    for &(calls, success) in &one {
                        if success {
                            next.insert(spent + calls);
                        } else {
                            all.insert((spent + calls, false));
                        }
                    }
                }
                ok = next;
            }
            all.extend(ok.into_iter().map(|c| (c, true)));
            plain = all;
        }
        let with_escalation: BTreeSet<(u64, bool)> = match s.escalation {
            None => plain,
            Some((target, n, e)) => {
                // N failed attempts (or one failed run of a task), then the
                // target runs again, up to E times; then a full last round
                let round = match s.callee {
                    Callee::Action(a) if n <= f.retries[a] + 1 => Some(n * f.samples[a]),
                    Callee::Task(_) if n == 1 => None,
                    _ => Some(u64::MAX),
                };
                let target_runs = outcomes(f, subs[target].callee, depth, memo);
                let mut states: BTreeSet<u64> = BTreeSet::from([0]);
                let mut result = BTreeSet::new();
                for _ in 0..e {
                    let mut next = BTreeSet::new();
                    for &spent in &states {
                        match round {
                            Some(u64::MAX) => {}
                            Some(k) => {
                                // it may succeed within its first k attempts
                                for (calls, ok) in &plain {
                                    if *ok && *calls <= k {
                                        result.insert((spent + calls, true));
                                    }
                                }
                                for (tc, tok) in &target_runs {
                                    if *tok {
                                        next.insert(spent + k + tc);
                                    } else {
                                        result.insert((spent + k + tc, false));
                                    }
                                }
                            }
                            None => {
                                for (calls, ok) in &plain {
                                    if *ok {
                                        result.insert((spent + calls, true));
                                    } else {
                                        for (tc, tok) in &target_runs {
                                            if *tok {
                                                next.insert(spent + calls + tc);
                                            } else {
                                                result.insert((spent + calls + tc, false));
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if round == Some(u64::MAX) {
                        break;
                    }
                    states = next;
                }
                for &spent in &states {
                    for (calls, ok) in &plain {
                        result.insert((spent + calls, *ok));
                    }
                }
                result
            }
        };
        let mut next = BTreeSet::new();
        for &spent in &acc {
            for (calls, ok) in &with_escalation {
                if *ok {
                    next.insert(spent + calls);
                } else {
                    out.insert((spent + calls, false));
                }
            }
        }
        acc = next;
    }
    out.extend(acc.into_iter().map(|c| (c, true)));
    out
}

#[test]
fn bounds_equal_the_worst_case_an_explorer_reaches() {
    let mut runner = TestRunner::new(Config {
        cases: cases(400),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&any::<u64>(), |seed| {
        let mut state = seed | 1;
        let mut rng = move |m: usize| -> usize {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % m.max(1) as u64) as usize
        };
        let n_actions = 1 + rng(3);
        let n_tasks = 1 + rng(3);
        let retries: Vec<u64> = (0..n_actions).map(|_| rng(3) as u64).collect();
        let samples: Vec<u64> = (0..n_actions)
            .map(|_| if rng(3) == 0 { 2 + rng(2) as u64 } else { 1 })
            .collect();
        let mut tasks = Vec::new();
        let mut pres = Vec::new();
        for t in 0..n_tasks {
            let recursive = rng(3) == 0;
            let mut methods = Vec::new();
            let mut task_pres = Vec::new();
            for _ in 0..1 + rng(2) {
                let mut subs: Vec<Sub> = Vec::new();
                // one method in six returns its parameter with no subtask
                let n_subs = if rng(6) == 0 { 0 } else { 1 + rng(3) };
                task_pres.push((rng(3) == 0 || n_subs == 0).then(|| rng(PREDICATES.len())));
                for i in 0..n_subs {
                    // tasks call later tasks, or themselves when recursive
                    let callee = if rng(3) == 0 && (t + 1 < n_tasks || recursive) {
                        if recursive && rng(2) == 0 {
                            Callee::Task(t)
                        } else if t + 1 < n_tasks {
                            Callee::Task(t + 1 + rng(n_tasks - t - 1))
                        } else {
                            Callee::Task(t)
                        }
                    } else {
                        Callee::Action(rng(n_actions))
                    };
                    let escalation = if i > 0 && rng(3) == 0 {
                        Some((rng(i), 1 + rng(2) as u64, 1 + rng(2) as u64))
                    } else {
                        None
                    }
                    // an escalation targets a plain subtask (its artifact is text)
                    .filter(|&(target, _, _)| !subs[target].map);
                    let map = escalation.is_none() && rng(3) == 0;
                    subs.push(Sub {
                        callee,
                        escalation,
                        map,
                    });
                }
                // the result is text: the last subtask is not a map
                if let Some(last) = subs.last_mut() {
                    last.map = false;
                }
                methods.push(subs);
            }
            let depth = if methods
                .iter()
                .flatten()
                .any(|s| matches!(s.callee, Callee::Task(u) if u == t))
            {
                Some(1 + rng(3) as u64)
            } else {
                None
            };
            tasks.push((depth, methods));
            pres.push(task_pres);
        }
        let flow = Flow {
            retries,
            samples,
            tasks,
            pres,
            bound: 1 + rng(3) as u64,
        };
        let src = flow_program(&flow);
        let checked = check_source("bounds.guardflow", &src);
        prop_assert!(
            !checked.has_errors(),
            "{src}\n{:?}",
            checked
                .diagnostics
                .iter()
                .map(|d| (d.code, &d.message))
                .collect::<Vec<_>>()
        );
        let program = checked.program.as_ref().expect("program");
        let graphs = &checked.verified.as_ref().expect("verified").graphs;
        let bounds = task_bounds(program, graphs, None);
        for (t, b) in bounds.iter().enumerate() {
            let mut memo = HashMap::new();
            let explored = outcomes(&flow, Callee::Task(t), &mut HashMap::new(), &mut memo);
            let worst = explored.iter().map(|(c, _)| *c).max().unwrap_or(0);
            let predicted = b.cost.expect("bounded").generator_calls;
            prop_assert_eq!(predicted, worst, "task t{} of\n{}", t, src);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
