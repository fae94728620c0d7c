//! The workflow graph as `guardflow graph` draws it (the same tasks,
//! methods, subtasks and edges: `cli::graph`'s), laid out here as SVG: a
//! box per task, a box per method inside it, each method's subtasks in
//! columns by how many orderings come before them. The subtasks the run
//! reached are highlighted, and each method is coloured by what the run
//! did with it.

use std::fmt::Write as _;

use super::html::{cut_chars, escape};
use super::model::{subtask_reached, MethodStatus, Reached, Status};
use crate::check::ir::{Callee, Program, TaskId};
use crate::check::verify::graph::MethodGraph;
use crate::cli::graph::{callee_name, edges, map_suffix, tasks_below};

const NODE_W: f64 = 200.0;
const NODE_H: f64 = 30.0;
const COL_GAP: f64 = 56.0;
const ROW_GAP: f64 = 12.0;
const PAD: f64 = 12.0;
const HEADER: f64 = 24.0;

/// Each subtask's column: the longest chain of orderings before it
/// (bounded, so an ordering cycle, a deadlock witness, still draws).
fn columns(n: usize, graph: &MethodGraph) -> Vec<usize> {
    let order: Vec<(u32, u32)> = edges(graph)
        .into_iter()
        .filter(|e| !e.2)
        .map(|(a, b, _, _)| (a, b))
        .collect();
    let mut col = vec![0usize; n];
    for _ in 0..n {
        let mut changed = false;
        for &(a, b) in &order {
            let (a, b) = (a as usize, b as usize);
            if a < n && b < n && col[b] < col[a] + 1 && col[a] + 1 < n {
                col[b] = col[a] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    col
}

pub fn svg(
    program: &Program,
    graphs: &[Vec<MethodGraph>],
    root: TaskId,
    methods: &MethodStatus,
    reached: &Reached,
) -> String {
    let mut body = String::new();
    let mut y = PAD;
    let mut width: f64 = 400.0;
    for t in tasks_below(program, root) {
        let task = &program.tasks[t.index()];
        let task_y = y;
        let mut inner = String::new();
        let mut my = y + HEADER;
        let mut task_w: f64 = 300.0;
        for (m, method) in task.methods.iter().enumerate() {
            let Some(graph) = graphs.get(t.index()).and_then(|g| g.get(m)) else {
                continue;
            };
            let n = method.subtasks.len();
            let col = columns(n, graph);
            let mut rows_in = vec![0usize; n.max(1)];
            let mut pos = vec![(0.0, 0.0); n];
            let x0 = 2.0 * PAD;
            let top = my + HEADER;
            for i in 0..n {
                let c = col[i];
                pos[i] = (
                    x0 + PAD + c as f64 * (NODE_W + COL_GAP),
                    top + rows_in[c] as f64 * (NODE_H + ROW_GAP),
                );
                rows_in[c] += 1;
            }
            let cols = col.iter().max().map_or(1, |c| c + 1);
            let rows = rows_in.iter().copied().max().unwrap_or(0).max(1);
            let mw = 2.0 * PAD + cols as f64 * NODE_W + (cols - 1) as f64 * COL_GAP;
            let mh = HEADER + rows as f64 * (NODE_H + ROW_GAP) + PAD;
            let status = methods
                .get(&(task.name.clone(), method.name.clone()))
                .copied()
                .unwrap_or(Status::NotTried);
            let _ = write!(
                inner,
                "<g class=\"method m-{}\"><rect class=\"mbox\" x=\"{x0}\" y=\"{my}\" width=\"{mw}\" \
                 height=\"{mh}\" rx=\"6\"/><text class=\"mlabel\" x=\"{}\" y=\"{}\">{}. method {} \
                 ({})</text>",
                status.class(),
                x0 + PAD,
                my + 16.0,
                m + 1,
                escape(&cut_chars(&method.name, 60, false)),
                status.word()
            );
            let on: Vec<bool> = method
                .subtasks
                .iter()
                .map(|s| subtask_reached(reached, program, &task.name, &method.name, s))
                .collect();
            for (a, b, data, witness) in edges(graph) {
                let (a, b) = (a as usize, b as usize);
                if a >= n || b >= n {
                    continue;
                }
                let (ax, ay) = (pos[a].0 + NODE_W, pos[a].1 + NODE_H / 2.0);
                let (bx, by) = (pos[b].0, pos[b].1 + NODE_H / 2.0);
                let d = if bx > ax {
                    let mid = (ax + bx) / 2.0;
                    format!("M{ax:.1},{ay:.1} C{mid:.1},{ay:.1} {mid:.1},{by:.1} {bx:.1},{by:.1}")
                } else {
                    // backwards (a witness cycle) or within one column
                    let (sx, sy) = (pos[a].0 + NODE_W / 2.0, pos[a].1 + NODE_H);
                    let (ex, ey) = (pos[b].0 + NODE_W / 2.0, pos[b].1 + NODE_H);
                    let low = sy.max(ey) + ROW_GAP;
                    format!("M{sx:.1},{sy:.1} C{sx:.1},{low:.1} {ex:.1},{low:.1} {ex:.1},{ey:.1}")
                };
                let mut class = String::from("edge");
                if data {
                    class.push_str(" data");
                }
                if witness {
                    class.push_str(" witness");
                }
                if on[a] && on[b] {
                    class.push_str(" on");
                }
                let _ = write!(
                    inner,
                    "<path class=\"{class}\" d=\"{d}\" marker-end=\"url(#arrow)\"/>"
                );
            }
            for (i, s) in method.subtasks.iter().enumerate() {
                let text = format!(
                    "{}: {}{}",
                    s.label,
                    callee_name(program, s.callee),
                    map_suffix(s)
                );
                let mut class = String::from("node");
                if matches!(s.callee, Callee::Task(_)) {
                    class.push_str(" callee-task");
                }
                if s.each.is_some() {
                    class.push_str(" map");
                }
                if on[i] {
                    class.push_str(" visited");
                }
                let (nx, ny) = pos[i];
                let _ = write!(
                    inner,
                    "<g class=\"{class}\" data-label=\"{}\"><title>{}</title><rect x=\"{nx:.1}\" \
                     y=\"{ny:.1}\" width=\"{NODE_W}\" height=\"{NODE_H}\" rx=\"4\"/><text \
                     x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
                    escape(&s.label),
                    escape(&text),
                    nx + 8.0,
                    ny + 19.0,
                    escape(&cut_chars(&text, 28, false))
                );
            }
            inner.push_str("</g>");
            task_w = task_w.max(x0 + mw + PAD);
            my += mh + PAD;
        }
        let th = my - task_y;
        let _ = write!(
            body,
            "<g class=\"task\"><rect class=\"tbox\" x=\"{PAD}\" y=\"{task_y}\" width=\"{task_w}\" \
             height=\"{th}\" rx=\"8\"/><text class=\"tlabel\" x=\"{}\" y=\"{}\">task {}</text>{inner}</g>",
            2.0 * PAD,
            task_y + 17.0,
            escape(&cut_chars(&task.name, 80, false))
        );
        width = width.max(task_w + 2.0 * PAD);
        y = my + PAD;
    }
    format!(
        "<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{y}\" \
         viewBox=\"0 0 {width} {y}\" role=\"img\" aria-label=\"workflow graph\"><defs><marker \
         id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\"/></marker>\
         </defs>{body}</svg>"
    )
}
