//! A run's events as the report shows them: the attempts in the order
//! they started, and the tree of tasks, methods and actions by path.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::RunData;
use crate::check::ir::Callee;

/// One attempt: started, answered, judged (or not yet).
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub path: String,
    pub action: String,
    /// The action's attempt number in the run.
    pub number: i64,
    pub occurrence: i64,
    pub session: i64,
    /// When it started, answered and was judged (Unix milliseconds).
    pub start: i64,
    pub end: Option<i64>,
    pub generate_ms: Option<i64>,
    pub guard_ms: Option<i64>,
    /// `pass`, `reject`, `fatal`, `interrupted`; `None`: not judged.
    pub verdict: Option<String>,
    pub prompt: String,
    pub role: Option<String>,
    pub output: Option<String>,
    pub feedback: String,
    pub tokens: Option<i64>,
    pub provider: Option<String>,
    pub judges: Vec<Judge>,
    /// The attempt before it at the same path.
    pub prev: Option<usize>,
}

/// A judge's call while it judged an attempt.
#[derive(Debug, Clone, Default)]
pub struct Judge {
    pub guard: String,
    pub generator: String,
    pub call: i64,
    pub prompt: String,
    pub answer: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Task,
    Method,
    Action,
    /// A path seen only in an event that does not say what it is.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Passed,
    Failed,
    Skipped,
    /// A method the task never came to (from the workflow).
    NotTried,
    /// Still running when the run stopped.
    Stopped,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::NotTried => "not tried",
            Status::Stopped => "stopped",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::NotTried => "nottried",
            Status::Stopped => "stopped",
        }
    }
}

/// What the run did with each method: by (task, method).
pub type MethodStatus = HashMap<(String, String), Status>;
/// The subtasks the run reached: (task, method, label or `task:NAME`).
pub type Reached = HashSet<(String, String, String)>;

/// A task, method or action at one path.
#[derive(Debug, Clone)]
pub struct Node {
    pub path: String,
    /// The task's, method's or action's name.
    pub name: String,
    /// The last segment of the path (an action's label).
    pub label: String,
    pub kind: Kind,
    pub status: Status,
    /// Why a method was skipped or failed, why an action failed.
    pub reason: Option<String>,
    /// Escalations from here: the label regenerated and the feedback.
    pub escalations: Vec<(String, String)>,
    pub attempts: Vec<usize>,
    pub children: Vec<usize>,
    pub parent: Option<usize>,
    /// Times an action's artifact was committed.
    pub commits: u32,
}

pub struct Model {
    pub attempts: Vec<Attempt>,
    pub nodes: Vec<Node>,
    pub roots: Vec<usize>,
    /// From the first to the last event (Unix milliseconds).
    pub start: i64,
    pub end: i64,
    pub finished: Option<Finished>,
    pub last_seq: i64,
    pub sessions: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub success: bool,
    pub generator_calls: i64,
    pub guard_runs: i64,
    pub elapsed_ms: i64,
}

fn s<'a>(e: &'a Value, key: &str) -> &'a str {
    e.get(key).and_then(Value::as_str).unwrap_or("")
}

fn i(e: &Value, key: &str) -> Option<i64> {
    e.get(key).and_then(Value::as_i64)
}

impl Model {
    pub fn build(data: &RunData) -> Model {
        let mut m = Model {
            attempts: Vec::new(),
            nodes: Vec::new(),
            roots: Vec::new(),
            start: data.meta.started_ms,
            end: data.meta.started_ms,
            finished: None,
            last_seq: 0,
            sessions: 1,
        };
        let mut by_path: HashMap<String, usize> = HashMap::new();
        // (path, attempt number) → the attempt, the latest started
        let mut open: HashMap<(String, i64), usize> = HashMap::new();
        let mut last_at: HashMap<String, usize> = HashMap::new();
        for e in &data.events {
            let at = i(e, "at_ms").unwrap_or(m.end);
            m.start = m.start.min(at);
            m.end = m.end.max(at);
            m.last_seq = m.last_seq.max(i(e, "seq").unwrap_or(0));
            let session = i(e, "session").unwrap_or(1);
            m.sessions = m.sessions.max(session);
            let path = s(e, "path");
            let node = (!path.is_empty()).then(|| m.node(&mut by_path, path));
            match (s(e, "event"), node) {
                ("task_started", Some(n)) => {
                    m.nodes[n].kind = Kind::Task;
                    m.nodes[n].name = s(e, "task").to_string();
                    m.nodes[n].status = Status::Running;
                }
                ("task_finished", Some(n)) => {
                    let ok = e.get("success").and_then(Value::as_bool) == Some(true);
                    m.nodes[n].status = if ok { Status::Passed } else { Status::Failed };
                    if ok {
                        let children = m.nodes[n].children.clone();
                        for c in children {
                            if m.nodes[c].kind == Kind::Method
                                && m.nodes[c].status == Status::Running
                            {
                                m.nodes[c].status = Status::Passed;
                            }
                        }
                    }
                }
                ("method_started", Some(n)) => {
                    m.nodes[n].kind = Kind::Method;
                    m.nodes[n].name = s(e, "method").to_string();
                    m.nodes[n].status = Status::Running;
                }
                (kind @ ("method_skipped" | "method_failed"), Some(n)) => {
                    m.nodes[n].kind = Kind::Method;
                    m.nodes[n].name = s(e, "method").to_string();
                    m.nodes[n].status = if kind == "method_skipped" {
                        Status::Skipped
                    } else {
                        Status::Failed
                    };
                    m.nodes[n].reason = Some(s(e, "reason").to_string());
                }
                ("action_started", Some(n)) => {
                    m.nodes[n].kind = Kind::Action;
                    m.nodes[n].name = s(e, "action").to_string();
                    m.nodes[n].status = Status::Running;
                }
                ("attempt_started", Some(n)) => {
                    let a = m.attempts.len();
                    let number = i(e, "attempt").unwrap_or(0);
                    m.attempts.push(Attempt {
                        path: path.to_string(),
                        action: s(e, "action").to_string(),
                        number,
                        occurrence: i(e, "occurrence").unwrap_or(1),
                        session,
                        start: at,
                        prompt: s(e, "prompt").to_string(),
                        role: e.get("role").and_then(Value::as_str).map(str::to_string),
                        prev: last_at.insert(path.to_string(), a),
                        ..Attempt::default()
                    });
                    if m.nodes[n].kind == Kind::Other {
                        m.nodes[n].kind = Kind::Action;
                        m.nodes[n].name = s(e, "action").to_string();
                    }
                    m.nodes[n].attempts.push(a);
                    open.insert((path.to_string(), number), a);
                }
                ("generated", Some(_)) => {
                    let key = (path.to_string(), i(e, "attempt").unwrap_or(0));
                    if let Some(&a) = open.get(&key) {
                        let a = &mut m.attempts[a];
                        a.output = e.get("output").and_then(Value::as_str).map(str::to_string);
                        a.generate_ms = i(e, "generate_ms");
                        a.tokens = i(e, "tokens");
                    }
                }
                ("attempt", Some(_)) => {
                    let key = (path.to_string(), i(e, "attempt").unwrap_or(0));
                    if let Some(&a) = open.get(&key) {
                        let a = &mut m.attempts[a];
                        a.end = Some(at);
                        a.verdict = Some(s(e, "verdict").to_string());
                        a.feedback = s(e, "feedback").to_string();
                        if let Some(o) = e.get("output").and_then(Value::as_str) {
                            a.output = Some(o.to_string());
                        }
                        a.generate_ms = i(e, "generate_ms").or(a.generate_ms);
                        a.guard_ms = i(e, "guard_ms");
                        a.tokens = i(e, "tokens").or(a.tokens);
                    }
                }
                ("served", Some(_)) => {
                    let key = (path.to_string(), i(e, "attempt").unwrap_or(0));
                    if let Some(&a) = open.get(&key) {
                        m.attempts[a].provider = Some(s(e, "provider").to_string());
                    }
                }
                ("judge_call", Some(_)) => {
                    let key = (path.to_string(), i(e, "attempt").unwrap_or(0));
                    if let Some(&a) = open.get(&key) {
                        let answer = match e.get("output").and_then(Value::as_str) {
                            Some(o) => o.to_string(),
                            None => format!("no answer: {}", s(e, "error")),
                        };
                        m.attempts[a].judges.push(Judge {
                            guard: s(e, "guard").to_string(),
                            generator: s(e, "generator").to_string(),
                            call: i(e, "call").unwrap_or(0),
                            prompt: s(e, "prompt").to_string(),
                            answer,
                        });
                    }
                }
                ("committed", Some(n)) => {
                    m.nodes[n].status = Status::Passed;
                    m.nodes[n].commits += 1;
                }
                ("action_failed", Some(n)) => {
                    m.nodes[n].status = Status::Failed;
                    m.nodes[n].reason = Some(s(e, "reason").to_string());
                }
                ("escalated", Some(n)) => {
                    m.nodes[n]
                        .escalations
                        .push((s(e, "target").to_string(), s(e, "feedback").to_string()));
                }
                ("run_finished", _) => {
                    m.finished = Some(Finished {
                        success: e.get("success").and_then(Value::as_bool) == Some(true),
                        generator_calls: i(e, "generator_calls").unwrap_or(0),
                        guard_runs: i(e, "guard_runs").unwrap_or(0),
                        elapsed_ms: i(e, "elapsed_ms").unwrap_or(0),
                    });
                }
                _ => {}
            }
        }
        if data.status != "running" {
            for n in &mut m.nodes {
                if n.status == Status::Running {
                    n.status = Status::Stopped;
                }
            }
        }
        if let Ok(w) = &data.workflow {
            m.add_untried(&w.program);
        }
        m
    }

    /// The node at `path`, made when new: under the nearest path above it
    /// that has a node.
    fn node(&mut self, by_path: &mut HashMap<String, usize>, path: &str) -> usize {
        if let Some(&n) = by_path.get(path) {
            return n;
        }
        let mut parent = None;
        let mut above = path;
        while let Some((up, _)) = above.rsplit_once('/') {
            if let Some(&p) = by_path.get(up) {
                parent = Some(p);
                break;
            }
            above = up;
        }
        let label = path.rsplit('/').next().unwrap_or(path).to_string();
        let n = self.nodes.len();
        self.nodes.push(Node {
            path: path.to_string(),
            name: label.clone(),
            label,
            kind: Kind::Other,
            status: Status::Running,
            reason: None,
            escalations: Vec::new(),
            attempts: Vec::new(),
            children: Vec::new(),
            parent,
            commits: 0,
        });
        match parent {
            Some(p) => self.nodes[p].children.push(n),
            None => self.roots.push(n),
        }
        by_path.insert(path.to_string(), n);
        n
    }

    /// Each task's methods the run never came to, in the workflow's order
    /// among those it did.
    fn add_untried(&mut self, program: &crate::check::ir::Program) {
        for t in 0..self.nodes.len() {
            if self.nodes[t].kind != Kind::Task {
                continue;
            }
            let Some(task) = program.task(&self.nodes[t].name) else {
                continue;
            };
            let task = &program.tasks[task.index()];
            let children = self.nodes[t].children.clone();
            let mut ordered = Vec::new();
            for method in &task.methods {
                let tried: Vec<usize> = children
                    .iter()
                    .copied()
                    .filter(|&c| {
                        self.nodes[c].kind == Kind::Method && self.nodes[c].name == method.name
                    })
                    .collect();
                if tried.is_empty() {
                    let n = self.nodes.len();
                    let path = format!("{}/{}", self.nodes[t].path, method.name);
                    self.nodes.push(Node {
                        path,
                        name: method.name.clone(),
                        label: method.name.clone(),
                        kind: Kind::Method,
                        status: Status::NotTried,
                        reason: None,
                        escalations: Vec::new(),
                        attempts: Vec::new(),
                        children: Vec::new(),
                        parent: Some(t),
                        commits: 0,
                    });
                    ordered.push(n);
                } else {
                    ordered.extend(tried);
                }
            }
            for c in children {
                if !ordered.contains(&c) {
                    ordered.push(c);
                }
            }
            self.nodes[t].children = ordered;
        }
    }

    /// The (task, method) of each method node, with its status; and the
    /// subtasks the run reached, as (task, method, label) for actions and
    /// (task, method, `task:NAME`) for tasks.
    pub fn visited(&self) -> (MethodStatus, Reached) {
        let mut methods = HashMap::new();
        let mut reached = HashSet::new();
        for n in &self.nodes {
            let Some(p) = n.parent else { continue };
            let parent = &self.nodes[p];
            match n.kind {
                Kind::Method if parent.kind == Kind::Task => {
                    let key = (parent.name.clone(), n.name.clone());
                    let old = methods.get(&key).copied();
                    let rank = |s: Option<Status>| match s {
                        Some(Status::Passed) => 5,
                        Some(Status::Running) => 4,
                        Some(Status::Failed) => 3,
                        Some(Status::Stopped) => 2,
                        Some(Status::Skipped) => 1,
                        _ => 0,
                    };
                    if rank(Some(n.status)) > rank(old) {
                        methods.insert(key, n.status);
                    }
                }
                Kind::Action | Kind::Task if parent.kind == Kind::Method => {
                    let Some(t) = parent.parent else { continue };
                    let task = self.nodes[t].name.clone();
                    let key = if n.kind == Kind::Task {
                        format!("task:{}", n.name)
                    } else {
                        // a map's item: `c[3]`
                        n.label
                            .split_once('[')
                            .map_or(n.label.clone(), |(l, _)| l.to_string())
                    };
                    reached.insert((task, parent.name.clone(), key));
                }
                _ => {}
            }
        }
        (methods, reached)
    }
}

/// Whether the graph's subtask was reached by the run.
pub fn subtask_reached(
    reached: &Reached,
    program: &crate::check::ir::Program,
    task: &str,
    method: &str,
    sub: &crate::check::ir::Subtask,
) -> bool {
    let key = match sub.callee {
        Callee::Action(_) => sub.label.clone(),
        Callee::Task(t) => format!("task:{}", program.tasks[t.index()].name),
    };
    reached.contains(&(task.to_string(), method.to_string(), key))
}
