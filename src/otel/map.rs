//! The one mapping from a run's events to OpenTelemetry spans, for a run
//! as it happens and for a run read back from the store: events go in one
//! at a time, in order, each with the time it happened; spans come out as
//! they end. The tree is run → task → method → action → attempt →
//! generate / guard (→ the judge's model calls) / effect.
//!
//! The events are read in their JSON form (`guardflow run --json`, which
//! is also what `Store::events` gives back), and only the fields both
//! forms carry, so a live run and its export later make the same spans,
//! with the same ids: the trace id comes from the run id, each span id
//! from the span's place in the run.
//!
//! Prompts, outputs, feedback and commands are not put in spans unless
//! asked for (`content`): their sizes and SHA-256 are.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::check::ir::{Operand, Program};

/// At most this many bytes of a text go into one attribute (content, a
/// reason); the cut is said.
pub const MAX_TEXT: usize = 16 * 1024;

/// At most this many waits and skipped providers are kept per model call.
pub const MAX_MARKS: usize = 64;

/// An attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl From<&str> for Attr {
    fn from(s: &str) -> Attr {
        Attr::Str(s.to_string())
    }
}

impl From<String> for Attr {
    fn from(s: String) -> Attr {
        Attr::Str(s)
    }
}

impl From<i64> for Attr {
    fn from(n: i64) -> Attr {
        Attr::Int(n)
    }
}

impl From<u64> for Attr {
    fn from(n: u64) -> Attr {
        Attr::Int(n.min(i64::MAX as u64) as i64)
    }
}

impl From<bool> for Attr {
    fn from(b: bool) -> Attr {
        Attr::Bool(b)
    }
}

/// Attributes, in the order they were set.
pub type Attrs = Vec<(&'static str, Attr)>;

/// A span's kind: a model call is a client call, the rest internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal,
    Client,
}

/// Something that happened at a point in a span (a wait, a skipped
/// method, an escalation).
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub name: &'static str,
    pub at: SystemTime,
    pub attributes: Attrs,
}

/// One finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub kind: Kind,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Attrs,
    pub marks: Vec<Mark>,
    /// The error status and its description; `None` is unset (success).
    pub error: Option<String>,
}

impl Span {
    /// The attribute `key`, if set.
    pub fn attr(&self, key: &str) -> Option<&Attr> {
        self.attributes
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// What a generator instance's calls are, for the GenAI attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The generator kind (`llm`, `cmd`, `replay`, a host's).
    pub kind: String,
    /// `gen_ai.request.model`, when written as a literal.
    pub model: Option<String>,
    /// `gen_ai.provider.name`: the API spoken (`openai`, `ollama`) for
    /// `llm`, else the generator kind.
    pub provider: String,
    /// `gen_ai.operation.name`: `chat` for chat completions,
    /// `text_completion` otherwise.
    pub operation: &'static str,
    /// The server's address and port, when `base_url` is a literal.
    pub server: Option<(String, Option<u16>)>,
}

/// The models of a program's generator instances, and which instance each
/// action calls.
#[derive(Debug, Clone, Default)]
pub struct Models {
    instances: HashMap<String, Model>,
    actions: HashMap<String, String>,
    /// `--replay` (or another replacement) answers every call.
    replacement: Option<Model>,
}

impl Models {
    /// What `program`'s generators are; `replacement` is the generator
    /// replacing them all (its kind and arguments), as a run records it.
    pub fn of(program: &Program, replacement: Option<&(String, Vec<Value>)>) -> Models {
        let mut m = Models::default();
        for inst in &program.generators {
            let Some(ext) = program.externs.get(inst.kind.index()) else {
                continue;
            };
            let arg = |name: &str| -> Option<String> {
                let i = ext.params.iter().position(|p| p.name == name)?;
                match inst.args.get(i)? {
                    Operand::Const {
                        value: crate::check::ir::Value::Text(t),
                    } => Some(t.clone()),
                    _ => None,
                }
            };
            m.instances.insert(
                inst.name.clone(),
                model(&ext.name, arg("model"), arg("api"), arg("base_url")),
            );
        }
        for action in &program.actions {
            if let Some(inst) = program.generators.get(action.generator.index()) {
                m.actions.insert(action.name.clone(), inst.name.clone());
            }
        }
        if let Some((kind, _)) = replacement {
            m.replacement = Some(model(kind, None, None, None));
        }
        m
    }

    /// The instance an attempt of `action` calls when no `served` event
    /// says which (the replacement's name is `with`, as the run says).
    fn instance_of(&self, action: &str) -> Option<String> {
        if self.replacement.is_some() {
            return Some("with".to_string());
        }
        self.actions.get(action).cloned()
    }

    fn model(&self, instance: Option<&str>) -> Option<&Model> {
        self.replacement
            .as_ref()
            .or_else(|| instance.and_then(|i| self.instances.get(i)))
    }
}

fn model(kind: &str, name: Option<String>, api: Option<String>, base: Option<String>) -> Model {
    let llm = kind == "llm";
    let api = api.unwrap_or_else(|| "openai".to_string());
    let (provider, operation) = match (llm, api.as_str()) {
        (true, "ollama") => ("ollama".to_string(), "text_completion"),
        (true, other) => (other.to_string(), "chat"),
        (false, _) => (kind.to_string(), "text_completion"),
    };
    let server = base.filter(|b| !b.is_empty()).and_then(|b| server_of(&b));
    Model {
        kind: kind.to_string(),
        model: name.filter(|n| !n.is_empty()),
        provider,
        operation,
        server,
    }
}

/// `http://host:port/path` → (host, port).
fn server_of(url: &str) -> Option<(String, Option<u16>)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if authority.is_empty() {
        return None;
    }
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok())),
        None => Some((authority.to_string(), None)),
    }
}

/// The trace id and how span ids are made, for one run.
#[derive(Debug, Clone)]
pub struct Ids {
    trace: [u8; 16],
    salt: String,
}

impl Ids {
    /// The ids of run `run`'s spans. `salt` tells apart the spans of one
    /// process of a run resumed live from those an export of the whole
    /// run makes (empty otherwise).
    pub fn for_run(run: &str, salt: &str) -> Ids {
        let digest = Sha256::digest(format!("guardflow trace\0{run}").as_bytes());
        let mut trace = [0u8; 16];
        trace.copy_from_slice(&digest[..16]);
        if trace == [0; 16] {
            trace[15] = 1;
        }
        Ids {
            trace,
            salt: salt.to_string(),
        }
    }

    pub fn trace_id(&self) -> [u8; 16] {
        self.trace
    }

    fn span(&self, key: &str) -> [u8; 8] {
        let digest =
            Sha256::digest(format!("{}\0{}\0{key}", hex(&self.trace), self.salt).as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        if id == [0; 8] {
            id[7] = 1;
        }
        id
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A span being built.
#[derive(Debug)]
struct Open {
    key: String,
    span: Span,
}

/// What an attempt has said so far.
#[derive(Debug)]
struct Attempt {
    open: Open,
    action: String,
    role: Option<String>,
    prompt: String,
    provider: Option<String>,
    generated: Option<Generated>,
    effect: Option<(SystemTime, String)>,
    /// Waits and providers skipped: marks of the model call.
    marks: Vec<Mark>,
    judged: bool,
}

#[derive(Debug)]
struct Generated {
    at: SystemTime,
    output: String,
    tokens: Option<u64>,
    prompt_tokens: Option<u64>,
}

/// Builds spans from a run's events. Holds only what is still open (as
/// many spans as run at once); finished spans are taken with
/// [`Mapper::take`].
#[derive(Debug)]
pub struct Mapper {
    ids: Ids,
    models: Models,
    content: bool,
    run_id: Option<String>,
    run: Option<Open>,
    tasks: HashMap<String, Open>,
    methods: HashMap<String, Open>,
    actions: HashMap<String, Open>,
    attempts: HashMap<(String, u64), Attempt>,
    /// How often each key was opened, so that each span's id is its own.
    opened: HashMap<String, u32>,
    /// Runs of an action at each path so far.
    occurrences: HashMap<String, u32>,
    last: Option<SystemTime>,
    out: Vec<Span>,
}

impl Mapper {
    /// A mapper for run `run_id` (none for a run not recorded); `content`
    /// puts prompts, outputs, feedback and commands in the spans.
    pub fn new(ids: Ids, run_id: Option<String>, models: Models, content: bool) -> Mapper {
        Mapper {
            ids,
            models,
            content,
            run_id,
            run: None,
            tasks: HashMap::new(),
            methods: HashMap::new(),
            actions: HashMap::new(),
            attempts: HashMap::new(),
            opened: HashMap::new(),
            occurrences: HashMap::new(),
            last: None,
            out: Vec::new(),
        }
    }

    /// Names the run (before its first event).
    pub fn identify(&mut self, ids: Ids, run_id: Option<String>) {
        self.ids = ids;
        self.run_id = run_id;
    }

    /// The spans finished since the last call.
    pub fn take(&mut self) -> Vec<Span> {
        std::mem::take(&mut self.out)
    }

    /// How many spans are open.
    pub fn open(&self) -> usize {
        usize::from(self.run.is_some())
            + self.tasks.len()
            + self.methods.len()
            + self.actions.len()
            + self.attempts.len()
    }

    /// Ends every span still open at the latest event's time (a run that
    /// stopped, or whose events end here): they did not finish.
    pub fn finish(&mut self) {
        let at = self.last.unwrap_or_else(SystemTime::now);
        self.close_under(None, at, "did not finish");
        if let Some(run) = self.run.take() {
            self.end(run, at, Some("did not finish".to_string()));
        }
    }

    /// One event, `at` the time it happened.
    pub fn event(&mut self, at: SystemTime, e: &Value) {
        // events are in order; a clock that went back does not unorder them
        let at = match self.last {
            Some(last) if at < last => last,
            _ => at,
        };
        self.last = Some(at);
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let n = |k: &str| e.get(k).and_then(Value::as_u64);
        let path = s("path").to_string();
        match s("event") {
            "run_started" => self.run_started(at, s("task"), n("worst_case_calls")),
            "task_started" => {
                let task = s("task");
                let parent = self.parent_of(&path, at);
                let attributes = vec![
                    ("guardflow.path", path.as_str().into()),
                    ("guardflow.task", task.into()),
                ];
                let open = self.start(
                    format!("task {path}"),
                    format!("task {task}"),
                    parent,
                    at,
                    attributes,
                );
                if let Some(old) = self.tasks.insert(path, open) {
                    self.end(old, at, Some("did not finish".into()));
                }
            }
            "method_started" => {
                let method = s("method");
                let parent = self.parent_of(&path, at);
                let attributes = vec![
                    ("guardflow.path", path.as_str().into()),
                    ("guardflow.method", method.into()),
                ];
                let open = self.start(
                    format!("method {path}"),
                    format!("method {method}"),
                    parent,
                    at,
                    attributes,
                );
                if let Some(old) = self.methods.insert(path, open) {
                    self.end(old, at, Some("did not finish".into()));
                }
            }
            "method_skipped" => {
                let mark = Mark {
                    name: "method skipped",
                    at,
                    attributes: vec![
                        ("guardflow.method", s("method").into()),
                        ("guardflow.reason", cap(s("reason")).into()),
                    ],
                };
                let task = parent_path(&path);
                if let Some(t) = self.tasks.get_mut(task) {
                    t.span.marks.push(mark);
                }
            }
            "method_failed" => {
                self.close_under(Some(&path), at, "cancelled");
                if let Some(m) = self.methods.remove(&path) {
                    self.end(m, at, Some(cap(s("reason"))));
                }
            }
            "action_started" => {
                let action = s("action");
                let parent = self.parent_of(&path, at);
                let occurrence = self.occurrences.entry(path.clone()).or_insert(0);
                *occurrence += 1;
                let attributes = vec![
                    ("guardflow.path", path.as_str().into()),
                    ("guardflow.action", action.into()),
                    ("guardflow.occurrence", i64::from(*occurrence).into()),
                ];
                let open = self.start(
                    format!("action {path}"),
                    format!("action {action}"),
                    parent,
                    at,
                    attributes,
                );
                if let Some(old) = self.actions.insert(path, open) {
                    self.end(old, at, Some("did not finish".into()));
                }
            }
            "attempt_started" => self.attempt_started(at, &path, e),
            "waiting" | "served" => {
                let key = (path.clone(), n("attempt").unwrap_or(0));
                let Some(a) = self.attempts.get_mut(&key) else {
                    return;
                };
                if a.marks.len() >= MAX_MARKS {
                    return;
                }
                if s("event") == "waiting" {
                    a.marks.push(Mark {
                        name: "waiting",
                        at,
                        attributes: vec![
                            ("guardflow.generator", s("provider").into()),
                            ("guardflow.waiting", cap(s("what")).into()),
                        ],
                    });
                } else {
                    a.provider = Some(s("provider").to_string());
                    for skipped in e
                        .get("skipped")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        a.marks.push(Mark {
                            name: "provider skipped",
                            at,
                            attributes: vec![(
                                "guardflow.skipped",
                                cap(skipped.as_str().unwrap_or("")).into(),
                            )],
                        });
                    }
                }
            }
            "generated" => {
                let key = (path.clone(), n("attempt").unwrap_or(0));
                if let Some(a) = self.attempts.get_mut(&key) {
                    a.generated = Some(Generated {
                        at,
                        output: s("output").to_string(),
                        tokens: n("tokens"),
                        prompt_tokens: n("prompt_tokens"),
                    });
                }
            }
            "effect_started" => {
                let key = (path.clone(), n("attempt").unwrap_or(0));
                if let Some(a) = self.attempts.get_mut(&key) {
                    a.effect = Some((at, s("command").to_string()));
                }
            }
            "judge_call" => self.judge_call(at, &path, e),
            "attempt" => self.attempt_done(at, &path, e),
            "escalated" => {
                if let Some(mut a) = self.actions.remove(&path) {
                    let target = s("target");
                    a.span
                        .attributes
                        .push(("guardflow.outcome", "escalated".into()));
                    a.span
                        .attributes
                        .push(("guardflow.escalation.target", target.into()));
                    let feedback = s("feedback");
                    let mut attributes = vec![
                        ("guardflow.escalation.target", target.into()),
                        ("guardflow.feedback.size", (feedback.len() as u64).into()),
                    ];
                    if self.content {
                        attributes.push(("guardflow.feedback", cap(feedback).into()));
                    }
                    a.span.marks.push(Mark {
                        name: "escalated",
                        at,
                        attributes,
                    });
                    self.end(a, at, None);
                }
            }
            "committed" => {
                if let Some(mut a) = self.actions.remove(&path) {
                    a.span
                        .attributes
                        .push(("guardflow.outcome", "committed".into()));
                    self.end(a, at, None);
                }
            }
            "action_failed" => {
                self.close_under(Some(&path), at, "cancelled");
                if let Some(mut a) = self.actions.remove(&path) {
                    a.span
                        .attributes
                        .push(("guardflow.outcome", "failed".into()));
                    self.end(a, at, Some(cap(s("reason"))));
                }
            }
            "task_finished" => {
                let success = e.get("success").and_then(Value::as_bool).unwrap_or(false);
                // the method that succeeded ends with its task; whatever
                // else is open below did not finish
                let prefix = format!("{path}/");
                let mine: Vec<String> = self
                    .methods
                    .keys()
                    .filter(|k| k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
                    .cloned()
                    .collect();
                let mut kept = Vec::new();
                for m in mine {
                    if let Some(open) = self.methods.remove(&m) {
                        kept.push(open);
                    }
                }
                self.close_under(Some(&path), at, "cancelled");
                for m in kept {
                    let error = (!success).then(|| "the task failed".to_string());
                    self.end(m, at, error);
                }
                if let Some(mut t) = self.tasks.remove(&path) {
                    t.span
                        .attributes
                        .push(("guardflow.success", success.into()));
                    let error = (!success).then(|| "the task failed".to_string());
                    self.end(t, at, error);
                }
            }
            "run_finished" => {
                self.close_under(None, at, "cancelled");
                if let Some(mut run) = self.run.take() {
                    let success = e.get("success").and_then(Value::as_bool).unwrap_or(false);
                    let attrs = &mut run.span.attributes;
                    attrs.push(("guardflow.success", success.into()));
                    for (key, field) in [
                        ("guardflow.generator_calls", "generator_calls"),
                        ("guardflow.guard_runs", "guard_runs"),
                        ("guardflow.repeated_calls", "repeated_calls"),
                    ] {
                        if let Some(v) = n(field) {
                            attrs.push((key, v.into()));
                        }
                    }
                    let error = (!success).then(|| "the run failed".to_string());
                    self.end(run, at, error);
                }
            }
            _ => {}
        }
    }

    fn run_started(&mut self, at: SystemTime, task: &str, worst: Option<u64>) {
        if let Some(run) = &mut self.run {
            // a later process of the run: what the earlier one left open
            // stopped with it
            run.span.marks.push(Mark {
                name: "resumed",
                at,
                attributes: Vec::new(),
            });
            self.close_under(None, at, "interrupted: the process stopped");
            // it counts the runs of each action again, matching them with
            // the recorded ones
            self.occurrences.clear();
            return;
        }
        let mut attributes: Attrs = vec![("guardflow.task", task.into())];
        if let Some(id) = &self.run_id {
            attributes.push(("guardflow.run.id", id.as_str().into()));
        }
        if let Some(w) = worst {
            attributes.push(("guardflow.worst_case_calls", w.into()));
        }
        self.run = Some(self.start("run".into(), format!("run {task}"), None, at, attributes));
    }

    fn attempt_started(&mut self, at: SystemTime, path: &str, e: &Value) {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let n = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (action, attempt) = (s("action"), n("attempt"));
        let parent = match self.actions.get(path) {
            Some(a) => Some(a.span.span_id),
            None => self.parent_of(path, at),
        };
        let prompt = s("prompt");
        let role = e.get("role").and_then(Value::as_str).map(str::to_string);
        let mut attributes: Attrs = vec![
            ("guardflow.path", path.into()),
            ("guardflow.action", action.into()),
            ("guardflow.attempt", attempt.into()),
            ("guardflow.attempt.index", n("index").into()),
            ("guardflow.occurrence", n("occurrence").into()),
            ("guardflow.prompt.size", (prompt.len() as u64).into()),
            (
                "guardflow.prompt.sha256",
                crate::store::content_hash(prompt.as_bytes()).into(),
            ),
        ];
        if self.content {
            attributes.push(("guardflow.prompt", cap(prompt).into()));
        }
        let open = self.start(
            format!("attempt {path} {attempt}"),
            format!("attempt {action} #{attempt}"),
            parent,
            at,
            attributes,
        );
        let old = self.attempts.insert(
            (path.to_string(), attempt),
            Attempt {
                open,
                action: action.to_string(),
                role,
                prompt: prompt.to_string(),
                provider: None,
                generated: None,
                effect: None,
                marks: Vec::new(),
                judged: false,
            },
        );
        if let Some(old) = old {
            self.end(old.open, at, Some("did not finish".into()));
        }
    }

    /// The GenAI attributes of a call of `instance`.
    fn gen_ai(
        &self,
        instance: Option<&str>,
        tokens: (Option<u64>, Option<u64>),
    ) -> (String, Attrs) {
        let model = self.models.model(instance);
        let mut attributes: Attrs = Vec::new();
        let operation = model.map_or("text_completion", |m| m.operation);
        attributes.push(("gen_ai.operation.name", operation.into()));
        if let Some(m) = model {
            attributes.push(("gen_ai.provider.name", m.provider.as_str().into()));
            attributes.push(("gen_ai.system", m.provider.as_str().into()));
            if let Some(name) = &m.model {
                attributes.push(("gen_ai.request.model", name.as_str().into()));
            }
            if let Some((host, port)) = &m.server {
                attributes.push(("server.address", host.as_str().into()));
                if let Some(p) = port {
                    attributes.push(("server.port", i64::from(*p).into()));
                }
            }
            attributes.push(("guardflow.generator.kind", m.kind.as_str().into()));
        }
        if let Some(i) = instance {
            attributes.push(("guardflow.generator", i.into()));
        }
        let (prompt_tokens, output_tokens) = tokens;
        if let Some(t) = prompt_tokens {
            attributes.push(("gen_ai.usage.input_tokens", t.into()));
        }
        if let Some(t) = output_tokens {
            attributes.push(("gen_ai.usage.output_tokens", t.into()));
        }
        let name = match model.and_then(|m| m.model.as_deref()) {
            Some(m) => format!("{operation} {m}"),
            None => operation.to_string(),
        };
        (name, attributes)
    }

    /// The content attributes of a model call (opt-in).
    fn messages(
        &self,
        attributes: &mut Attrs,
        role: Option<&str>,
        prompt: &str,
        output: Option<&str>,
    ) {
        if !self.content {
            return;
        }
        let text = |t: &str| serde_json::json!([{"type": "text", "content": cap(t)}]);
        if let Some(r) = role {
            attributes.push(("gen_ai.system_instructions", text(r).to_string().into()));
        }
        let input = serde_json::json!([{"role": "user", "parts": text(prompt)}]);
        attributes.push(("gen_ai.input.messages", input.to_string().into()));
        if let Some(o) = output {
            let out = serde_json::json!([{"role": "assistant", "parts": text(o), "finish_reason": "stop"}]);
            attributes.push(("gen_ai.output.messages", out.to_string().into()));
        }
    }

    fn judge_call(&mut self, at: SystemTime, path: &str, e: &Value) {
        let s = |k: &str| e.get(k).and_then(Value::as_str);
        let n = |k: &str| e.get(k).and_then(Value::as_u64);
        let attempt = n("attempt").unwrap_or(0);
        let Some(a) = self.attempts.get_mut(&(path.to_string(), attempt)) else {
            return;
        };
        a.judged = true;
        let guard_id = self.ids.span(&format!("{}/guard", a.open.key));
        let instance = s("generator");
        let (name, mut attributes) = self.gen_ai(instance, (n("prompt_tokens"), n("tokens")));
        attributes.push(("guardflow.judge.guard", s("guard").unwrap_or("").into()));
        attributes.push(("guardflow.judge.call", n("call").unwrap_or(0).into()));
        let prompt = s("prompt").unwrap_or("");
        attributes.push(("guardflow.prompt.size", (prompt.len() as u64).into()));
        self.messages(&mut attributes, s("role"), prompt, s("output"));
        let start = at
            .checked_sub(Duration::from_millis(n("generate_ms").unwrap_or(0)))
            .unwrap_or(at);
        let key = format!("{path} {attempt} judge {}", s("guard").unwrap_or(""));
        let mut open = self.start(key, name, Some(guard_id), start, attributes);
        open.span.kind = Kind::Client;
        let error = s("error").map(cap);
        self.end(open, at, error);
    }

    fn attempt_done(&mut self, at: SystemTime, path: &str, e: &Value) {
        let s = |k: &str| e.get(k).and_then(Value::as_str);
        let n = |k: &str| e.get(k).and_then(Value::as_u64);
        let attempt = n("attempt").unwrap_or(0);
        let Some(a) = self.attempts.remove(&(path.to_string(), attempt)) else {
            return;
        };
        let Attempt {
            mut open,
            action,
            role,
            prompt,
            provider,
            generated,
            effect,
            marks,
            judged,
        } = a;
        let verdict = s("verdict").unwrap_or("");
        let feedback = s("feedback").unwrap_or("");
        let output = s("output")
            .map(str::to_string)
            .or_else(|| generated.as_ref().map(|g| g.output.clone()));
        let started = open.span.start;
        // the model call
        let generate_ms = Duration::from_millis(n("generate_ms").unwrap_or(0));
        let gen_end = match &generated {
            Some(g) => g.at,
            None => (started + generate_ms).min(at),
        };
        let tokens = (
            generated
                .as_ref()
                .and_then(|g| g.prompt_tokens)
                .or(n("prompt_tokens")),
            generated.as_ref().and_then(|g| g.tokens).or(n("tokens")),
        );
        let instance = provider.or_else(|| self.models.instance_of(&action));
        let (name, mut attributes) = self.gen_ai(instance.as_deref(), tokens);
        if let Some(o) = &output {
            attributes.push(("guardflow.output.size", (o.len() as u64).into()));
        }
        self.messages(&mut attributes, role.as_deref(), &prompt, output.as_deref());
        let parent = Some(open.span.span_id);
        let mut call = self.start(
            format!("{}/generate", open.key),
            name,
            parent,
            started,
            attributes,
        );
        call.span.kind = Kind::Client;
        call.span.marks = marks;
        let no_answer = output
            .is_none()
            .then(|| "the generator gave no answer".to_string());
        self.end(call, gen_end, no_answer);
        // the guard
        let guard_ms = Duration::from_millis(n("guard_ms").unwrap_or(0));
        let guarded = e
            .get("guarded")
            .and_then(Value::as_bool)
            .unwrap_or(!guard_ms.is_zero());
        let guard_end = effect.as_ref().map_or(at, |(t, _)| *t).max(gen_end);
        if guarded || judged {
            let start = guard_end
                .checked_sub(guard_ms)
                .unwrap_or(guard_end)
                .max(gen_end);
            let mut attributes: Attrs = vec![
                ("guardflow.verdict", verdict.into()),
                ("guardflow.feedback.size", (feedback.len() as u64).into()),
            ];
            if self.content && !feedback.is_empty() {
                attributes.push(("guardflow.feedback", cap(feedback).into()));
            }
            let g = self.start(
                format!("{}/guard", open.key),
                format!("guard {action}"),
                parent,
                start,
                attributes,
            );
            let error =
                (effect.is_none() && verdict != "pass").then(|| format!("verdict: {verdict}"));
            self.end(g, guard_end, error);
        }
        // the effect
        if let Some((t, command)) = &effect {
            let mut attributes: Attrs = vec![
                (
                    "guardflow.effect.command.size",
                    (command.len() as u64).into(),
                ),
                (
                    "guardflow.effect.command.sha256",
                    crate::store::content_hash(command.as_bytes()).into(),
                ),
            ];
            if self.content {
                attributes.push(("guardflow.effect.command", cap(command).into()));
            }
            let outcome = match e.get("outcome") {
                Some(Value::String(text)) => serde_json::from_str(text).ok(),
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => None,
            };
            let code = outcome
                .as_ref()
                .and_then(|o| o.get("exit_code"))
                .and_then(Value::as_i64);
            if let Some(c) = code {
                attributes.push(("process.exit.code", c.into()));
            }
            let fx = self.start(
                format!("{}/effect", open.key),
                format!("effect {action}"),
                parent,
                *t,
                attributes,
            );
            let error = (verdict != "pass").then(|| format!("verdict: {verdict}"));
            self.end(fx, at.max(*t), error);
        }
        // the attempt
        let attrs = &mut open.span.attributes;
        attrs.push(("guardflow.verdict", verdict.into()));
        attrs.push(("guardflow.feedback.size", (feedback.len() as u64).into()));
        if !feedback.is_empty() {
            attrs.push((
                "guardflow.feedback.sha256",
                crate::store::content_hash(feedback.as_bytes()).into(),
            ));
        }
        if let Some(o) = &output {
            attrs.push(("guardflow.output.size", (o.len() as u64).into()));
            attrs.push((
                "guardflow.output.sha256",
                crate::store::content_hash(o.as_bytes()).into(),
            ));
        }
        if self.content {
            if let Some(o) = &output {
                attrs.push(("guardflow.output", cap(o).into()));
            }
            if !feedback.is_empty() {
                attrs.push(("guardflow.feedback", cap(feedback).into()));
            }
        }
        let error = (verdict != "pass").then(|| format!("verdict: {verdict}"));
        self.end(open, at, error);
    }

    /// Opens a span: its id from `key` (and how often `key` was opened).
    fn start(
        &mut self,
        key: String,
        name: String,
        parent: Option<[u8; 8]>,
        at: SystemTime,
        attributes: Attrs,
    ) -> Open {
        let count = self.opened.entry(key.clone()).or_insert(0);
        *count += 1;
        let key = if *count == 1 {
            key
        } else {
            format!("{key} #{count}")
        };
        let parent = parent.or_else(|| self.run.as_ref().map(|r| r.span.span_id));
        Open {
            span: Span {
                trace_id: self.ids.trace,
                span_id: self.ids.span(&key),
                parent,
                kind: Kind::Internal,
                name,
                start: at,
                end: at,
                attributes,
                marks: Vec::new(),
                error: None,
            },
            key,
        }
    }

    fn end(&mut self, open: Open, at: SystemTime, error: Option<String>) {
        let mut span = open.span;
        span.end = at.max(span.start);
        span.error = error;
        self.out.push(span);
    }

    /// The span an item at `path` belongs under: the nearest open method
    /// or task above it, else the run.
    fn parent_of(&self, path: &str, _at: SystemTime) -> Option<[u8; 8]> {
        let mut p = path;
        while let Some((up, _)) = p.rsplit_once('/') {
            if let Some(m) = self.methods.get(up) {
                return Some(m.span.span_id);
            }
            if let Some(t) = self.tasks.get(up) {
                return Some(t.span.span_id);
            }
            if let Some(a) = self.actions.get(up) {
                return Some(a.span.span_id);
            }
            p = up;
        }
        self.run.as_ref().map(|r| r.span.span_id)
    }

    /// Ends every open span below `path` (all of them for `None`, but
    /// the run's), deepest first.
    fn close_under(&mut self, path: Option<&str>, at: SystemTime, why: &str) {
        let prefix = path.map(|p| format!("{p}/"));
        let below = |k: &str| prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str()));
        let attempts: Vec<(String, u64)> = self
            .attempts
            .keys()
            .filter(|k| below(&k.0))
            .cloned()
            .collect();
        let mut closing: Vec<(usize, Open)> = Vec::new();
        for k in attempts {
            if let Some(a) = self.attempts.remove(&k) {
                closing.push((usize::MAX, a.open));
            }
        }
        for map in [&mut self.actions, &mut self.methods, &mut self.tasks] {
            let keys: Vec<String> = map.keys().filter(|k| below(k)).cloned().collect();
            for k in keys {
                if let Some(open) = map.remove(&k) {
                    closing.push((k.matches('/').count(), open));
                }
            }
        }
        closing.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
        for (_, open) in closing {
            self.end(open, at, Some(why.to_string()));
        }
    }
}

/// `a/b/c` → `a/b`.
fn parent_path(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(up, _)| up)
}

/// `text` without secrets (as every text an implementation returns),
/// cut to [`MAX_TEXT`] bytes at a character boundary, the cut said.
fn cap(text: &str) -> String {
    let text = crate::runtime::redact::scrub(text);
    if text.len() <= MAX_TEXT {
        return text.into_owned();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

/// Every span of a run's events (`at` each event's time), with what was
/// still open at the end closed as not finished.
pub fn spans<'a>(
    mapper: &mut Mapper,
    events: impl IntoIterator<Item = (SystemTime, &'a Value)>,
) -> Vec<Span> {
    let mut out = Vec::new();
    for (at, e) in events {
        mapper.event(at, e);
        out.append(&mut mapper.out);
    }
    mapper.finish();
    out.append(&mut mapper.out);
    out
}
