//! Deadlock freedom: orderings, data flow against orderings, resources.

use std::collections::{HashMap, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use super::error::{Step, VerifyError};
use super::graph::{MethodGraph, Order};
use super::CallGraph;
use crate::check::ir::{Callee, Method, Program, Task};
use crate::source::Span;

/// Ordering cycles, and data edges that the ordering cannot satisfy.
pub(super) fn method_order(
    task: &Task,
    method: &Method,
    graph: &MethodGraph,
    out: &mut Vec<VerifyError>,
) {
    let label = |i: u32| {
        method
            .subtasks
            .get(i as usize)
            .map_or_else(|| format!("#{i}"), |s| s.label.clone())
    };
    let mut cyclic = false;
    for group in &graph.partials {
        let mut g: DiGraph<u32, Span> = DiGraph::new();
        let nodes: Vec<_> = group.labels.iter().map(|&l| g.add_node(l)).collect();
        for &(a, b, span) in &group.edges {
            g.add_edge(nodes[a as usize], nodes[b as usize], span);
        }
        for scc in tarjan_scc(&g) {
            let self_loop = scc.len() == 1 && g.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            cyclic = true;
            // each step is one `a < b` of the cycle, named by its `a`
            let steps = cycle_in(&g, &scc)
                .into_iter()
                .map(|(edge, from, _)| Step::new(g[edge], label(g[from])))
                .collect();
            out.push(VerifyError::OrderingCycle {
                method: format!("{}.{}", task.name, method.name),
                cycle: steps,
            });
        }
    }
    if cyclic {
        return;
    }
    for e in &graph.data {
        let (reader, producer) = (label(e.to), label(e.from));
        match graph.order(e.from, e.to) {
            Order::Before => {}
            Order::Same => out.push(VerifyError::ReadsItself {
                reader,
                read: e.span,
            }),
            Order::After => {
                let ordering_span = graph.fork_span(e.from, e.to).unwrap_or(method.span);
                let reader_span = method.subtasks[e.to as usize].label_span;
                let producer_span = method.subtasks[e.from as usize].label_span;
                out.push(VerifyError::ReadsLater {
                    reader: reader.clone(),
                    producer: producer.clone(),
                    read: e.span,
                    path: vec![
                        Step::new(
                            ordering_span,
                            format!("the ordering runs `{reader}` before `{producer}`"),
                        ),
                        Step::new(reader_span, format!("`{reader}` waits for `{producer}`")),
                        Step::new(
                            producer_span,
                            format!("`{producer}` waits for `{reader}` to finish"),
                        ),
                    ],
                });
            }
            Order::Unordered => out.push(VerifyError::ReadsSibling {
                reader,
                producer,
                read: e.span,
                fork: graph.fork_span(e.from, e.to).unwrap_or(method.span),
                producer_span: method.subtasks[e.from as usize].span,
                partial: graph.fork_is_partial(e.from, e.to),
            }),
        }
    }
}

/// Resource findings: demands larger than pools, acquisitions an ancestor
/// blocks, and hold-and-wait cycles.
pub(super) fn resources(program: &Program, calls: &CallGraph, out: &mut Vec<VerifyError>) {
    let n_res = program.resources.len();
    if n_res == 0 {
        return;
    }
    let size = |r: usize| program.resources[r].size;
    // demands larger than the pool
    let mut demand = |uses: &[crate::check::ir::ResourceUse]| {
        for u in uses {
            let r = u.resource.index();
            if u.amount > size(r) {
                out.push(VerifyError::DemandTooLarge {
                    resource: program.resources[r].name.clone(),
                    need: u.amount,
                    size: size(r),
                    at: u.span,
                    pool: program.resources[r].span,
                });
            }
        }
    };
    for a in &program.actions {
        demand(&a.uses);
    }
    for t in &program.tasks {
        for m in &t.methods {
            demand(&m.uses);
        }
    }

    // units held by ancestors on the way to each callee: the most over all
    // call paths, capped just above the pool size
    let n_tasks = program.tasks.len();
    let node = |c: Callee| match c {
        Callee::Task(t) => t.index(),
        Callee::Action(a) => n_tasks + a.index(),
    };
    let total = n_tasks + program.actions.len();
    let mut held = vec![vec![0u64; n_res]; total];
    // who raised held[x][r] last: (method span, task name)
    let mut why: Vec<Vec<Option<(Span, usize)>>> = vec![vec![None; n_res]; total];
    let mut work: Vec<usize> = (0..n_tasks).collect();
    let mut queued = vec![true; total];
    while let Some(t) = work.pop() {
        queued[t] = false;
        let task = &program.tasks[t];
        for m in &task.methods {
            let mut here = held[t].clone();
            for u in &m.uses {
                let r = u.resource.index();
                here[r] = (here[r] + u.amount).min(size(r) + 1);
            }
            for s in &m.subtasks {
                let x = node(s.callee);
                for r in 0..n_res {
                    if here[r] > held[x][r] {
                        held[x][r] = here[r];
                        let holder = if m.uses.iter().any(|u| u.resource.index() == r) {
                            Some((m.span, t))
                        } else {
                            why[t][r]
                        };
                        why[x][r] = holder;
                        if x < n_tasks && !queued[x] {
                            queued[x] = true;
                            work.push(x);
                        }
                    }
                }
            }
        }
    }
    let holders = |x: usize, r: usize| -> Vec<Step> {
        why[x][r]
            .map(|(span, t)| {
                vec![Step::new(
                    span,
                    format!(
                        "a method of `{}` holds `{}` while this runs",
                        program.tasks[t].name, program.resources[r].name
                    ),
                )]
            })
            .unwrap_or_default()
    };
    let blocked = |x: usize, uses: &[crate::check::ir::ResourceUse], out: &mut Vec<VerifyError>| {
        for u in uses {
            let r = u.resource.index();
            if u.amount <= size(r) && held[x][r] > 0 && held[x][r] + u.amount > size(r) {
                out.push(VerifyError::HeldByAncestor {
                    resource: program.resources[r].name.clone(),
                    need: u.amount,
                    size: size(r),
                    at: u.span,
                    holders: holders(x, r),
                });
            }
        }
    };
    for (i, a) in program.actions.iter().enumerate() {
        blocked(n_tasks + i, &a.uses, out);
    }
    for (t, task) in program.tasks.iter().enumerate() {
        for m in &task.methods {
            blocked(t, &m.uses, out);
        }
    }

    // hold-and-wait: a method holds r1 while something below acquires r2
    let acquires = calls.closure(program, |c| match c {
        Callee::Action(a) => program.actions[a.index()]
            .uses
            .iter()
            .map(|u| u.resource.index())
            .collect(),
        Callee::Task(t) => program.tasks[t.index()]
            .methods
            .iter()
            .flat_map(|m| m.uses.iter().map(|u| u.resource.index()))
            .collect(),
    });
    let mut g: DiGraph<usize, (Span, Span, String)> = DiGraph::new();
    let res_nodes: Vec<_> = (0..n_res).map(|r| g.add_node(r)).collect();
    for task in &program.tasks {
        for m in &task.methods {
            for u in &m.uses {
                let r1 = u.resource.index();
                for s in &m.subtasks {
                    for &r2 in &acquires[node(s.callee)] {
                        if r2 != r1 && !g.contains_edge(res_nodes[r1], res_nodes[r2]) {
                            g.add_edge(
                                res_nodes[r1],
                                res_nodes[r2],
                                (m.span, s.span, format!("`{}.{}`", task.name, m.name)),
                            );
                        }
                    }
                }
            }
        }
    }
    for scc in tarjan_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let mut cycle = Vec::new();
        for (e, from, to) in cycle_in(&g, &scc) {
            let (m_span, s_span, who) = &g[e];
            let (r1, r2) = (g[from], g[to]);
            cycle.push(Step::new(
                *m_span,
                format!("{who} holds `{}`", program.resources[r1].name),
            ));
            cycle.push(Step::new(
                *s_span,
                format!("and waits here for `{}`", program.resources[r2].name),
            ));
        }
        out.push(VerifyError::HoldAndWait { cycle });
    }
}

/// The edges of a shortest cycle through the first node of a strongly
/// connected component (a self-loop when it has one node), in order.
/// Breadth-first from that node, edges in the order they were added, so
/// the witness follows the source.
fn cycle_in<N, E>(g: &DiGraph<N, E>, scc: &[NodeIndex]) -> Vec<(EdgeIndex, NodeIndex, NodeIndex)> {
    let Some(&start) = scc.iter().min() else {
        return Vec::new();
    };
    // how each node was first reached: (edge, from)
    let mut via: HashMap<NodeIndex, (EdgeIndex, NodeIndex)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut edges: Vec<_> = g
            .edges(n)
            .filter(|e| scc.contains(&e.target()))
            .map(|e| (e.id(), e.target()))
            .collect();
        edges.sort();
        for (e, to) in edges {
            if to == start {
                let mut cycle = vec![(e, n, start)];
                let mut at = n;
                while let Some(&(back, from)) = via.get(&at) {
                    cycle.push((back, from, at));
                    at = from;
                }
                cycle.reverse();
                return cycle;
            }
            if let std::collections::hash_map::Entry::Vacant(v) = via.entry(to) {
                v.insert((e, n));
                queue.push_back(to);
            }
        }
    }
    Vec::new()
}

/// Two effect actions on one resource in branches that may run together.
pub(super) fn parallel_effects(
    program: &Program,
    task: &Task,
    method: &Method,
    graph: &MethodGraph,
    effects: &[Vec<(usize, Span)>],
    out: &mut Vec<VerifyError>,
) {
    let n_tasks = program.tasks.len();
    let node = |c: Callee| match c {
        Callee::Task(t) => t.index(),
        Callee::Action(a) => n_tasks + a.index(),
    };
    let report =
        |r: usize, a: u32, b: u32, fork: Span, partial: bool, out: &mut Vec<VerifyError>| {
            let witness = |s: u32| {
                let sub = &method.subtasks[s as usize];
                let effect = effects[node(sub.callee)]
                    .iter()
                    .find(|(res, _)| *res == r)
                    .map(|(_, sp)| *sp);
                let mut steps = vec![Step::new(
                    sub.span,
                    format!("`{}` runs an effect on it", sub.label),
                )];
                if let Some(e) = effect {
                    if e != sub.span {
                        steps.push(Step::new(e, "the effect"));
                    }
                }
                steps
            };
            out.push(VerifyError::ParallelEffects {
                resource: program.resources[r].name.clone(),
                first: witness(a),
                second: witness(b),
                fork,
                partial,
            });
        };
    let _ = task;
    // a map is a fork-join of its items: more than one at a time must not
    // share an effect's resource
    for sub in &method.subtasks {
        let Some(each) = &sub.each else { continue };
        let width = each.width();
        if width < 2 {
            continue;
        }
        if let Some(&(r, span)) = effects[node(sub.callee)].first() {
            out.push(VerifyError::MapEffects {
                resource: program.resources[r].name.clone(),
                label: sub.label.clone(),
                map: sub.span,
                effect: (span != sub.span).then_some(span),
                width,
            });
        }
    }
    for (fork, branches) in graph.parallel_groups() {
        // the first branch seen using each resource
        let mut first: Vec<Option<(usize, u32)>> = vec![None; program.resources.len()];
        for (b, subtasks) in branches.iter().enumerate() {
            for &s in subtasks {
                for &(r, _) in &effects[node(method.subtasks[s as usize].callee)] {
                    match first[r] {
                        None => first[r] = Some((b, s)),
                        Some((fb, fs)) if fb != b => {
                            report(r, fs, s, fork, false, out);
                            first[r] = Some((b, s)); // report each resource once per pair of branches
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    for group in &graph.partials {
        for (i, &a) in group.labels.iter().enumerate() {
            for &b in &group.labels[i + 1..] {
                if graph.order(a, b) != Order::Unordered {
                    continue;
                }
                let ea = &effects[node(method.subtasks[a as usize].callee)];
                let eb = &effects[node(method.subtasks[b as usize].callee)];
                if let Some(&(r, _)) = ea.iter().find(|(r, _)| eb.iter().any(|(q, _)| q == r)) {
                    report(r, a, b, group.span, true, out);
                }
            }
        }
    }
}
