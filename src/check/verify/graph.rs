//! The ordering and data-flow structure of one method.
//!
//! An ordering is a series-parallel tree whose leaves are subtasks, with
//! HDDL-style partial orders as a third kind of node. Whether one subtask
//! finishes before another starts is answered on the tree: at their lowest
//! common ancestor, a sequence orders its children, a parallel group does
//! not, and a partial order decides by reachability among its own labels.
//! Nesting depth is capped by the parser, so a query costs O(depth).
//! [`MethodGraph::to_petgraph`] gives the same relation as a graph for
//! display.

use petgraph::graph::{DiGraph, NodeIndex};

use crate::check::ir::{Method, Operand, Ordering, TemplatePart};
use crate::source::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Leaf(u32),
    Seq,
    Par,
    /// A partial order; its DAG over child positions is in `partial`.
    Partial(u32),
}

#[derive(Debug, Clone)]
struct Node {
    kind: NodeKind,
    children: Vec<u32>,
    /// Parent node and this node's position among the parent's children.
    parent: Option<(u32, u32)>,
    depth: u32,
    span: Span,
}

/// A partial-order group: its labels (child positions) and edges.
#[derive(Debug, Clone)]
pub struct PartialGroup {
    /// Subtask index of each child position.
    pub labels: Vec<u32>,
    /// Edges between child positions, with the span of the later label.
    pub edges: Vec<(u32, u32, Span)>,
    pub span: Span,
    /// Child positions reachable from each child position (transitive).
    reach: Vec<Vec<bool>>,
}

/// How two subtasks are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Same,
    Before,
    After,
    Unordered,
}

/// A data edge: `to` reads the artifact of `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataEdge {
    pub from: u32,
    pub to: u32,
    /// Where `to` names `from`.
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct MethodGraph {
    nodes: Vec<Node>,
    /// Leaf node of each subtask.
    leaf_of: Vec<u32>,
    pub partials: Vec<PartialGroup>,
    pub data: Vec<DataEdge>,
}

impl MethodGraph {
    pub fn new(method: &Method) -> MethodGraph {
        let n = method.subtasks.len();
        let mut g = MethodGraph {
            nodes: Vec::new(),
            leaf_of: vec![u32::MAX; n],
            partials: Vec::new(),
            data: Vec::new(),
        };
        g.add(&method.ordering, None, 0);
        for (to, subtask) in method.subtasks.iter().enumerate() {
            // a map reads the list it maps over
            let source = subtask.each.as_ref().map(|e| &e.source);
            for arg in subtask.args.iter().chain(source) {
                collect_labels(arg, &mut |from| {
                    g.data.push(DataEdge {
                        from,
                        to: to as u32,
                        span: subtask.span,
                    })
                });
            }
        }
        g
    }

    fn add(&mut self, o: &Ordering, parent: Option<(u32, u32)>, depth: u32) -> u32 {
        let id = self.nodes.len() as u32;
        let (kind, span) = match o {
            Ordering::Label { index, span } => (NodeKind::Leaf(*index), *span),
            Ordering::Seq { span, .. } => (NodeKind::Seq, *span),
            Ordering::Par { span, .. } => (NodeKind::Par, *span),
            Ordering::Partial { span, .. } => {
                (NodeKind::Partial(self.partials.len() as u32), *span)
            }
        };
        self.nodes.push(Node {
            kind,
            children: Vec::new(),
            parent,
            depth,
            span,
        });
        if let Some((p, _)) = parent {
            self.nodes[p as usize].children.push(id);
        }
        match o {
            Ordering::Label { index, .. } => {
                if let Some(slot) = self.leaf_of.get_mut(*index as usize) {
                    *slot = id;
                }
            }
            Ordering::Seq { items, .. } | Ordering::Par { items, .. } => {
                for (i, item) in items.iter().enumerate() {
                    self.add(item, Some((id, i as u32)), depth + 1);
                }
            }
            Ordering::Partial { chains, span } => {
                let mut labels: Vec<u32> = Vec::new();
                let mut edges = Vec::new();
                for chain in chains {
                    let mut prev: Option<(u32, Span)> = None;
                    for &(label, label_span) in chain {
                        let pos = match labels.iter().position(|&l| l == label) {
                            Some(p) => p as u32,
                            None => {
                                labels.push(label);
                                let leaf = self.nodes.len() as u32;
                                self.nodes[id as usize].children.push(leaf);
                                self.nodes.push(Node {
                                    kind: NodeKind::Leaf(label),
                                    children: Vec::new(),
                                    parent: Some((id, labels.len() as u32 - 1)),
                                    depth: depth + 1,
                                    span: label_span,
                                });
                                if let Some(slot) = self.leaf_of.get_mut(label as usize) {
                                    *slot = leaf;
                                }
                                labels.len() as u32 - 1
                            }
                        };
                        // the edge's span is `a < b`
                        if let Some((p, from)) = prev {
                            edges.push((p, pos, from.to(label_span)));
                        }
                        prev = Some((pos, label_span));
                    }
                }
                let reach = transitive(labels.len(), &edges);
                self.partials.push(PartialGroup {
                    labels,
                    edges,
                    span: *span,
                    reach,
                });
            }
        }
        id
    }

    /// How subtask `a` is ordered relative to subtask `b`.
    pub fn order(&self, a: u32, b: u32) -> Order {
        if a == b {
            return Order::Same;
        }
        let (Some(&la), Some(&lb)) = (self.leaf_of.get(a as usize), self.leaf_of.get(b as usize))
        else {
            return Order::Unordered;
        };
        if la == u32::MAX || lb == u32::MAX {
            return Order::Unordered;
        }
        // climb to the lowest common ancestor, remembering the child
        // positions through which each side arrives
        let (mut x, mut y) = (la, lb);
        let (mut cx, mut cy) = (u32::MAX, u32::MAX);
        while self.nodes[x as usize].depth > self.nodes[y as usize].depth {
            let Some((p, c)) = self.nodes[x as usize].parent else {
                break;
            };
            (x, cx) = (p, c);
        }
        while self.nodes[y as usize].depth > self.nodes[x as usize].depth {
            let Some((p, c)) = self.nodes[y as usize].parent else {
                break;
            };
            (y, cy) = (p, c);
        }
        while x != y {
            let (Some((px, ix)), Some((py, iy))) =
                (self.nodes[x as usize].parent, self.nodes[y as usize].parent)
            else {
                return Order::Unordered;
            };
            (x, cx, y, cy) = (px, ix, py, iy);
        }
        match self.nodes[x as usize].kind {
            NodeKind::Seq if cx < cy => Order::Before,
            NodeKind::Seq if cx > cy => Order::After,
            NodeKind::Partial(p) => {
                let group = &self.partials[p as usize];
                if group.reach[cx as usize][cy as usize] {
                    Order::Before
                } else if group.reach[cy as usize][cx as usize] {
                    Order::After
                } else {
                    Order::Unordered
                }
            }
            _ => Order::Unordered,
        }
    }

    /// The span of the ordering group where `a` and `b` part ways.
    pub fn fork_span(&self, a: u32, b: u32) -> Option<Span> {
        self.fork(a, b).map(|x| self.nodes[x as usize].span)
    }

    /// Whether `a` and `b` part ways in a partial order (rather than in a
    /// sequence or a parallel group).
    pub fn fork_is_partial(&self, a: u32, b: u32) -> bool {
        self.fork(a, b)
            .is_some_and(|x| matches!(self.nodes[x as usize].kind, NodeKind::Partial(_)))
    }

    /// The node where `a` and `b` part ways: their lowest common ancestor.
    fn fork(&self, a: u32, b: u32) -> Option<u32> {
        let mut x = *self.leaf_of.get(a as usize)?;
        let mut y = *self.leaf_of.get(b as usize)?;
        if x == u32::MAX || y == u32::MAX {
            return None;
        }
        while x != y {
            if self.nodes[x as usize].depth >= self.nodes[y as usize].depth {
                x = self.nodes[x as usize].parent?.0;
            } else {
                y = self.nodes[y as usize].parent?.0;
            }
        }
        Some(x)
    }

    /// The parallel groups, each with the subtasks below each of its
    /// branches: what may run at the same time.
    pub fn parallel_groups(&self) -> Vec<(Span, Vec<Vec<u32>>)> {
        self.nodes
            .iter()
            .filter(|n| n.kind == NodeKind::Par)
            .map(|n| {
                let branches = n.children.iter().map(|&c| self.leaves(c)).collect();
                (n.span, branches)
            })
            .collect()
    }

    /// The subtasks below a node.
    fn leaves(&self, node: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![node];
        while let Some(x) = stack.pop() {
            let n = &self.nodes[x as usize];
            match n.kind {
                NodeKind::Leaf(i) => out.push(i),
                _ => stack.extend(n.children.iter().rev()),
            }
        }
        out
    }

    /// Subtasks that can start first (`first`) or finish last in a node.
    fn ends(&self, node: u32, first: bool) -> Vec<u32> {
        let n = &self.nodes[node as usize];
        match n.kind {
            NodeKind::Leaf(i) => vec![i],
            NodeKind::Seq => {
                let child = if first {
                    n.children.first()
                } else {
                    n.children.last()
                };
                child.map_or_else(Vec::new, |&c| self.ends(c, first))
            }
            NodeKind::Par => n
                .children
                .iter()
                .flat_map(|&c| self.ends(c, first))
                .collect(),
            NodeKind::Partial(p) => {
                let group = &self.partials[p as usize];
                (0..group.labels.len() as u32)
                    .filter(|&pos| {
                        !group
                            .edges
                            .iter()
                            .any(|&(a, b, _)| if first { b == pos } else { a == pos })
                    })
                    .map(|pos| group.labels[pos as usize])
                    .collect()
            }
        }
    }

    /// Immediate ordering edges between subtasks: what must finish before
    /// what starts, without the edges implied by others.
    pub fn ordering_edges(&self) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            match n.kind {
                NodeKind::Seq => {
                    for pair in n.children.windows(2) {
                        for a in self.ends(pair[0], false) {
                            for b in self.ends(pair[1], true) {
                                out.push((a, b));
                            }
                        }
                    }
                }
                NodeKind::Partial(p) => {
                    let group = &self.partials[p as usize];
                    for &(a, b, _) in &group.edges {
                        out.push((group.labels[a as usize], group.labels[b as usize]));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Ordering and data edges as a petgraph graph over subtask indices;
    /// the edge weight is `true` for data, `false` for ordering.
    pub fn to_petgraph(&self, n: usize) -> DiGraph<u32, bool> {
        let mut g = DiGraph::with_capacity(n, n);
        let idx: Vec<NodeIndex> = (0..n as u32).map(|i| g.add_node(i)).collect();
        let node = |i: u32| idx.get(i as usize).copied();
        for (a, b) in self.ordering_edges() {
            if let (Some(a), Some(b)) = (node(a), node(b)) {
                g.add_edge(a, b, false);
            }
        }
        for e in &self.data {
            if let (Some(f), Some(t)) = (node(e.from), node(e.to)) {
                g.add_edge(f, t, true);
            }
        }
        g
    }
}

/// Calls `f` with every subtask label an operand reads.
pub fn collect_labels(op: &Operand, f: &mut impl FnMut(u32)) {
    match op {
        Operand::Label { index, .. } => f(*index),
        Operand::Generator { .. } => {}
        Operand::List { items } => items.iter().for_each(|i| collect_labels(i, f)),
        Operand::Map { entries } => entries.iter().for_each(|(_, v)| collect_labels(v, f)),
        Operand::Template { template } => {
            for part in &template.parts {
                if let TemplatePart::Value { operand } = part {
                    collect_labels(operand, f);
                }
            }
        }
        Operand::Const { .. }
        | Operand::Param { .. }
        | Operand::Input { .. }
        | Operand::Item { .. } => {}
    }
}

/// Reachability over `n` positions (small: one partial-order group).
fn transitive(n: usize, edges: &[(u32, u32, Span)]) -> Vec<Vec<bool>> {
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b, _) in edges {
        succ[a as usize].push(b as usize);
    }
    let mut reach = vec![vec![false; n]; n];
    for (start, row) in reach.iter_mut().enumerate() {
        let mut stack: Vec<usize> = succ[start].clone();
        while let Some(x) = stack.pop() {
            if !row[x] {
                row[x] = true;
                stack.extend(&succ[x]);
            }
        }
    }
    reach
}
