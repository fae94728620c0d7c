//! Verification of a checked program: deadlock freedom, termination and
//! worst-case bounds. Every check is structural (linear or near-linear in
//! the program), never a search of states.
//!
//! - `graph`: the ordering and data flow of each method;
//! - `deadlock`: orderings against data flow, resources, parallel effects;
//! - `termination`: retries, timeouts, recursion, escalation, effects,
//!   methods that can never be chosen;
//! - `bounds`: worst-case calls, guard runs, tokens, time and success
//!   probability per task.

pub mod bounds;
mod deadlock;
mod error;
pub mod graph;
mod termination;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

pub use error::{Step, VerifyError};
use graph::MethodGraph;

use crate::check::ir::{Callee, Program};
use crate::source::Span;

/// What verification found, and the structures it built on the way.
pub struct Verified {
    pub findings: Vec<VerifyError>,
    /// The graph of each method, by task and method index.
    pub graphs: Vec<Vec<MethodGraph>>,
}

pub fn verify(program: &Program) -> Verified {
    let graphs: Vec<Vec<MethodGraph>> = program
        .tasks
        .iter()
        .map(|t| t.methods.iter().map(MethodGraph::new).collect())
        .collect();
    let calls = CallGraph::new(program);
    let mut findings = Vec::new();
    for (t, task) in program.tasks.iter().enumerate() {
        for (m, method) in task.methods.iter().enumerate() {
            deadlock::method_order(task, method, &graphs[t][m], &mut findings);
        }
    }
    deadlock::resources(program, &calls, &mut findings);
    let n_tasks = program.tasks.len();
    let effects = calls.closure_with(program, |c| match c {
        Callee::Action(a) => {
            let action = &program.actions[a.index()];
            match &action.effect {
                Some(e) => action
                    .uses
                    .iter()
                    .map(|u| (u.resource.index(), e.span))
                    .collect(),
                None => Vec::new(),
            }
        }
        Callee::Task(_) => Vec::new(),
    });
    let _ = n_tasks;
    for (t, task) in program.tasks.iter().enumerate() {
        for (m, method) in task.methods.iter().enumerate() {
            deadlock::parallel_effects(
                program,
                task,
                method,
                &graphs[t][m],
                &effects,
                &mut findings,
            );
        }
    }
    termination::check(program, &calls, &graphs, &mut findings);
    Verified { findings, graphs }
}

/// Which tasks and actions each task's methods call.
pub(crate) struct CallGraph {
    graph: DiGraph<Callee, Span>,
    /// Node of each task, then of each action.
    nodes: Vec<NodeIndex>,
    n_tasks: usize,
}

impl CallGraph {
    pub(crate) fn new(program: &Program) -> CallGraph {
        let mut graph = DiGraph::new();
        let n_tasks = program.tasks.len();
        let mut nodes = Vec::with_capacity(n_tasks + program.actions.len());
        for i in 0..n_tasks {
            nodes.push(graph.add_node(Callee::Task(crate::check::ir::TaskId(i as u32))));
        }
        for i in 0..program.actions.len() {
            nodes.push(graph.add_node(Callee::Action(crate::check::ir::ActionId(i as u32))));
        }
        let mut g = CallGraph {
            graph,
            nodes,
            n_tasks,
        };
        for (t, task) in program.tasks.iter().enumerate() {
            for m in &task.methods {
                for s in &m.subtasks {
                    let to = g.node(s.callee);
                    g.graph.add_edge(g.nodes[t], to, s.span);
                }
            }
        }
        g
    }

    pub(crate) fn index(&self, c: Callee) -> usize {
        match c {
            Callee::Task(t) => t.index(),
            Callee::Action(a) => self.n_tasks + a.index(),
        }
    }

    fn node(&self, c: Callee) -> NodeIndex {
        self.nodes[self.index(c)]
    }

    /// Strongly connected components of tasks, successors first.
    pub(crate) fn components(&self) -> Vec<Vec<Callee>> {
        tarjan_scc(&self.graph)
            .into_iter()
            .map(|scc| scc.into_iter().map(|n| self.graph[n]).collect())
            .collect()
    }

    /// The tasks a task's methods call (with the subtask span).
    pub(crate) fn callees(&self, t: usize) -> impl Iterator<Item = (Callee, Span)> + '_ {
        use petgraph::visit::EdgeRef;
        self.graph
            .edges(self.nodes[t])
            .map(|e| (self.graph[e.target()], *e.weight()))
    }

    /// For every task and action (indexed by [`CallGraph::index`]), the
    /// union of `base` over it and everything it calls, transitively.
    pub(crate) fn closure(
        &self,
        program: &Program,
        base: impl Fn(Callee) -> Vec<usize>,
    ) -> Vec<Vec<usize>> {
        let with: Vec<Vec<(usize, Span)>> = self.closure_with(program, |c| {
            base(c)
                .into_iter()
                .map(|x| (x, Span::new(crate::source::FileId(0), 0, 0)))
                .collect()
        });
        with.into_iter()
            .map(|v| v.into_iter().map(|(x, _)| x).collect())
            .collect()
    }

    /// Like [`CallGraph::closure`], keeping one witness span per element.
    pub(crate) fn closure_with(
        &self,
        _program: &Program,
        base: impl Fn(Callee) -> Vec<(usize, Span)>,
    ) -> Vec<Vec<(usize, Span)>> {
        let mut sets: Vec<Vec<(usize, Span)>> = vec![Vec::new(); self.nodes.len()];
        for scc in tarjan_scc(&self.graph) {
            // successors' components are done: gather, then share in the component
            let mut union: Vec<(usize, Span)> = Vec::new();
            for &n in &scc {
                union.extend(base(self.graph[n]));
                for succ in self.graph.neighbors(n) {
                    union.extend(sets[self.index(self.graph[succ])].iter().copied());
                }
            }
            union.sort_by_key(|&(x, _)| x);
            union.dedup_by_key(|&mut (x, _)| x);
            for &n in &scc {
                sets[self.index(self.graph[n])] = union.clone();
            }
        }
        sets
    }
}
