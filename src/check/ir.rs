//! The checked program: what the checker passes and the runtime executes.
//!
//! Names are resolved to indices, types are structural, calls have one
//! operand per parameter (defaults filled in), and every node keeps its
//! source span. `guardflow compile` writes it as versioned JSON
//! (`docs/ir.md`); reading it back yields the same program.

use serde::{Deserialize, Serialize};

use crate::source::Span;

/// Bumped on any change to the JSON form.
pub const IR_VERSION: u32 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    pub version: u32,
    /// File names by `FileId`, for the spans.
    pub files: Vec<String>,
    pub defaults: Defaults,
    pub types: Vec<TypeDef>,
    pub inputs: Vec<Input>,
    pub resources: Vec<Resource>,
    pub externs: Vec<Extern>,
    pub generators: Vec<Generator>,
    pub guards: Vec<GuardDef>,
    pub actions: Vec<Action>,
    pub tasks: Vec<Task>,
    pub tests: Vec<Test>,
}

impl Program {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads a program written by [`Program::to_json`], refusing other
    /// versions.
    pub fn from_json(text: &str) -> Result<Program, String> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if v.version != IR_VERSION {
            return Err(format!(
                "this is guardflow IR version {}; this guardflow reads version {IR_VERSION}",
                v.version
            ));
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    pub fn task(&self, name: &str) -> Option<TaskId> {
        self.tasks
            .iter()
            .position(|t| t.name == name)
            .map(|i| TaskId(i as u32))
    }

    pub fn action(&self, name: &str) -> Option<ActionId> {
        self.actions
            .iter()
            .position(|a| a.name == name)
            .map(|i| ActionId(i as u32))
    }

    /// The type of `name` as a parameter of the task or action `callable`,
    /// or else of a program input: what a value given for it by name must
    /// be (`--input`, the REPL's `:run`).
    pub fn declared_type(&self, callable: &str, name: &str) -> Option<Ty> {
        let params = match (self.task(callable), self.action(callable)) {
            (Some(t), _) => &self.tasks[t.index()].params,
            (None, Some(a)) => &self.actions[a.index()].params,
            _ => return None,
        };
        params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.ty.clone())
            .or_else(|| {
                let i = self.inputs.iter().find(|i| i.name == name)?;
                Some(i.ty.clone())
            })
    }
}

macro_rules! id {
    ($($name:ident),*) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize { self.0 as usize }
        }
    )*};
}
id!(
    TypeId,
    InputId,
    ResourceId,
    ExternId,
    GeneratorId,
    GuardId,
    ActionId,
    TaskId
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Defaults {
    pub retry: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub p: Option<f64>,
    pub max_tokens: Option<u64>,
}

/// A structural type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ty {
    Text,
    Int,
    Float,
    Bool,
    Duration,
    Code {
        lang: String,
    },
    Json {
        of: Box<Ty>,
    },
    List {
        of: Box<Ty>,
        /// `[T; max N]`: at most N items (absent: unbounded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<u64>,
    },
    Record {
        fields: Vec<(String, Ty)>,
    },
    Enum {
        tags: Vec<String>,
    },
    /// A command line run as a program: text fixed when the workflow is
    /// written. An argument for a `Program` parameter is a literal without
    /// interpolation or a `Program` parameter of the enclosing definition
    /// (E0216), so no value can become shell code.
    Program,
    /// `Map<T>`: text names to values of `T` (`files: {"a.py": code}`).
    Map {
        of: Box<Ty>,
    },
    /// A generator of the program, passed to a guard that asks it
    /// (`judge(critic, …)`): only a parameter's type (E0234); the
    /// argument is a generator's name or a parameter of this type.
    Generator,
}

impl Ty {
    /// `from` may be passed where `self` is expected.
    pub fn accepts(&self, from: &Ty) -> bool {
        match (self, from) {
            _ if self == from => true,
            // every artifact has a text form
            (Ty::Text, Ty::Code { .. } | Ty::Json { .. } | Ty::Enum { .. } | Ty::Program) => true,
            // as types; where the text may come from is checked apart (E0216)
            (Ty::Program, Ty::Text) => true,
            (Ty::Float, Ty::Int) => true,
            // a bounded list takes a list with a bound no larger
            (Ty::List { of: a, max: ma }, Ty::List { of: b, max: mb }) => {
                a.accepts(b) && ma.is_none_or(|m| mb.is_some_and(|n| n <= m))
            }
            (Ty::Json { of: a }, Ty::Json { of: b }) => a.accepts(b),
            (Ty::Map { of: a }, Ty::Map { of: b }) => a.accepts(b),
            _ => false,
        }
    }

    /// The fields of a record, or of the record inside `Json<…>`.
    pub fn field(&self, name: &str) -> Option<&Ty> {
        match self {
            Ty::Record { fields } => fields.iter().find(|(n, _)| n == name).map(|(_, t)| t),
            Ty::Json { of } => of.field(name),
            _ => None,
        }
    }
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ty::Text => f.write_str("Text"),
            Ty::Int => f.write_str("Int"),
            Ty::Float => f.write_str("Float"),
            Ty::Bool => f.write_str("Bool"),
            Ty::Duration => f.write_str("Duration"),
            Ty::Code { lang } => write!(f, "Code<{lang}>"),
            Ty::Json { of } => write!(f, "Json<{of}>"),
            Ty::List { of, max: None } => write!(f, "[{of}]"),
            Ty::List { of, max: Some(n) } => write!(f, "[{of}; max {n}]"),
            Ty::Record { fields } => {
                f.write_str("{ ")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str(" }")
            }
            Ty::Enum { tags } => f.write_str(&tags.join(" | ")),
            Ty::Program => f.write_str("Program"),
            Ty::Map { of } => write!(f, "Map<{of}>"),
            Ty::Generator => f.write_str("Generator"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeDef {
    pub name: String,
    pub ty: Ty,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub ty: Ty,
    pub default: Option<Value>,
    pub span: Span,
}

/// A constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Value {
    Text(String),
    Int(u64),
    Float(f64),
    /// Milliseconds.
    Duration(u64),
    Bool(bool),
    List(Vec<Value>),
    /// A map literal's entries, in the order written.
    Map(Vec<(String, Value)>),
}

/// Where an operand's value comes from at run time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Operand {
    Const {
        value: Value,
    },
    /// A parameter of the enclosing action, task or guard.
    Param {
        index: u32,
        fields: Vec<String>,
    },
    Input {
        input: InputId,
        fields: Vec<String>,
    },
    /// The artifact of a subtask of the enclosing method.
    Label {
        index: u32,
        fields: Vec<String>,
    },
    /// A string with interpolations.
    Template {
        template: Template,
    },
    List {
        items: Vec<Operand>,
    },
    /// A map literal with a value that is not constant.
    Map {
        entries: Vec<(String, Operand)>,
    },
    /// The current item of a map subtask (`for item in …`), in that
    /// subtask's arguments.
    Item {
        fields: Vec<String>,
    },
    /// A generator given for a `Generator` parameter; its value at run
    /// time is the generator's name.
    Generator {
        generator: GeneratorId,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TemplatePart {
    Text {
        text: String,
    },
    Value {
        operand: Operand,
    },
    /// `{feedback}`: the action's rejection history under its policy.
    Feedback,
    /// `{previous}`: the output of the latest rejected attempt.
    Previous,
    /// `{history}`: the rejected attempts kept, with outputs and feedback.
    History,
}

impl TemplatePart {
    /// `{feedback}`, `{previous}` or `{history}`: what an attempt knows
    /// of the attempts before it.
    pub fn is_refinement(&self) -> bool {
        matches!(
            self,
            TemplatePart::Feedback | TemplatePart::Previous | TemplatePart::History
        )
    }
}

/// `:strategy`: how an action's attempts use what was rejected before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "n", rename_all = "snake_case")]
pub enum Strategy {
    /// Feedback and the rejected output in the prompt (the default).
    #[default]
    Repair,
    /// An independent sample each attempt: no history in the prompt and
    /// no feedback to the generator.
    Resample,
    /// N samples per attempt, concurrently; the first that passes, in
    /// sample order.
    BestOf(u64),
}

impl Strategy {
    /// Generator calls per attempt.
    pub fn samples(self) -> u64 {
        match self {
            Strategy::BestOf(n) => n.max(1),
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    pub ty: Ty,
    pub source: Option<InputSource>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputSource {
    Value { value: Value },
    File { path: String },
    Folder { path: String, glob: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    pub size: u64,
    /// `:shared`: one pool for every run that uses the same run store,
    /// held with `flock` (see docs/store.md).
    pub shared: bool,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternKind {
    Guard,
    Generator,
    Effect,
}

/// A host-implemented guard, generator or effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extern {
    pub kind: ExternKind,
    pub name: String,
    pub params: Vec<Param>,
    pub subject: Option<Ty>,
    pub doc: Option<String>,
    /// Declared in the standard library.
    pub std: bool,
    pub span: Span,
}

impl Extern {
    /// Whether this is a judge: a guard that asks a generator (it takes a
    /// `Generator` parameter).
    pub fn is_judge(&self) -> bool {
        self.kind == ExternKind::Guard && self.params.iter().any(|p| p.ty == Ty::Generator)
    }

    /// The most generator calls one evaluation of this judge with `args`
    /// makes: 1 + its `retries` argument (1 when it has none); `None`
    /// when `retries` is not a literal (E0235). The runtime holds a judge
    /// to it, so the checker's bounds hold for a host's judges too.
    pub fn judge_calls(&self, args: &[Operand]) -> Option<u64> {
        let Some(i) = self.params.iter().position(|p| p.name == JUDGE_RETRIES) else {
            return Some(1);
        };
        match args.get(i)? {
            Operand::Const {
                value: Value::Int(n),
            } => Some(n.saturating_add(1)),
            _ => None,
        }
    }

    /// The `Generator` arguments of a call, by parameter index.
    pub fn generator_params(&self) -> impl Iterator<Item = usize> + '_ {
        self.params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.ty == Ty::Generator)
            .map(|(i, _)| i)
    }
}

/// The parameter of a judge that bounds its generator calls (its
/// retries of a malformed verdict).
pub const JUDGE_RETRIES: &str = "retries";

/// A generator instance: an extern generator with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    /// The `generator NAME = …` name, or `kind#N` for one written inline.
    pub name: String,
    pub kind: ExternId,
    pub args: Vec<Operand>,
    pub span: Span,
    /// `fallback(a, b, …)`: the instances (providers) tried in order, the
    /// next when one fails in transport; `kind` and `args` are the
    /// first's. Empty for any other instance (version 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<GeneratorId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardDef {
    pub name: String,
    pub params: Vec<Param>,
    pub subject: Ty,
    pub body: GuardExpr,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combinator {
    All,
    Any,
    Majority,
    Par,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuardRef {
    Extern { id: ExternId },
    User { id: GuardId },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GuardExpr {
    /// A guard applied to `subject` (`None`: the artifact being judged).
    Call {
        guard: GuardRef,
        subject: Option<Operand>,
        args: Vec<Operand>,
        span: Span,
    },
    Bool {
        value: bool,
        span: Span,
    },
    Not {
        expr: Box<GuardExpr>,
        span: Span,
    },
    And {
        exprs: Vec<GuardExpr>,
        span: Span,
    },
    Or {
        exprs: Vec<GuardExpr>,
        span: Span,
    },
    Combinator {
        combinator: Combinator,
        exprs: Vec<GuardExpr>,
        span: Span,
    },
    /// A typed predicate: `v.score >= 0.8`, `len(p.items) == 0`. Decided
    /// from values, with no guard or generator call. `text` is the
    /// predicate as written, for messages.
    Compare {
        op: PredOp,
        lhs: Term,
        rhs: Term,
        text: String,
        span: Span,
    },
    /// A Bool value as a predicate: `v.ok`.
    Value {
        operand: Operand,
        text: String,
        span: Span,
    },
}

/// One side of a comparison: a value, or its length (`len(x)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    pub operand: Operand,
    pub len: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl PredOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PredOp::Eq => "==",
            PredOp::Ne => "!=",
            PredOp::Lt => "<",
            PredOp::Le => "<=",
            PredOp::Gt => ">",
            PredOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "n", rename_all = "snake_case")]
pub enum FeedbackPolicy {
    Last,
    All,
    LastN(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUse {
    pub resource: ResourceId,
    pub amount: u64,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub effect: ExternId,
    pub args: Vec<Operand>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub name: String,
    pub doc: Option<String>,
    pub params: Vec<Param>,
    pub output: Ty,
    pub generator: GeneratorId,
    pub prompt: Template,
    pub role: Option<Template>,
    pub guard: GuardExpr,
    pub pre: Option<GuardExpr>,
    pub pre_guard: Option<GuardExpr>,
    pub effect: Option<Effect>,
    pub idempotent: bool,
    /// As written; `None` falls back to the file default.
    pub retry: Option<u64>,
    pub retry_span: Option<Span>,
    pub timeout_ms: Option<u64>,
    pub uses: Vec<ResourceUse>,
    pub feedback: FeedbackPolicy,
    pub strategy: Strategy,
    pub max_tokens: Option<u64>,
    pub p: Option<f64>,
    pub span: Span,
    pub name_span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Callee {
    Action(ActionId),
    Task(TaskId),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    pub doc: Option<String>,
    pub params: Vec<Param>,
    pub output: Option<Ty>,
    pub max_depth: Option<u64>,
    pub methods: Vec<Method>,
    pub span: Span,
    pub name_span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    Cancel,
    Continue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub name: String,
    pub doc: Option<String>,
    pub pre: Option<GuardExpr>,
    pub subtasks: Vec<Subtask>,
    pub ordering: Ordering,
    /// Index into `subtasks`: `:result label`.
    pub result: Option<u32>,
    /// `:result` of a value the method already has (a parameter, an
    /// input, or a field of one or of a subtask's artifact): no call.
    pub result_value: Option<Operand>,
    pub uses: Vec<ResourceUse>,
    pub on_fail: OnFail,
    /// `:history fresh`: its actions do not see the rejected attempts of
    /// the task's earlier methods.
    pub fresh_history: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subtask {
    pub label: String,
    pub callee: Callee,
    pub args: Vec<Operand>,
    /// A map: the call runs once per item of a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<Each>,
    pub escalation: Option<Escalation>,
    pub span: Span,
    pub label_span: Span,
}

/// `for item in source => callee(args) :parallel K`: the artifact is the
/// list of the callee's outputs, in the order of the items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Each {
    /// The item variable's name.
    pub item: String,
    /// The list mapped over (a label, parameter or input, with fields).
    pub source: Operand,
    /// The list type's bound: at most this many items.
    pub bound: u64,
    /// At most this many items at a time (absent: all of them).
    pub parallel: Option<u64>,
    pub span: Span,
}

impl Each {
    /// How many items run at a time, at most.
    pub fn width(&self) -> u64 {
        self.parallel
            .unwrap_or(self.bound)
            .clamp(1, self.bound.max(1))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    /// Index of the subtask to regenerate.
    pub target: u32,
    pub after: u64,
    pub max: Option<u64>,
    pub span: Span,
}

/// Ordering over subtask indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ordering {
    Label {
        index: u32,
        span: Span,
    },
    Seq {
        items: Vec<Ordering>,
        span: Span,
    },
    Par {
        items: Vec<Ordering>,
        span: Span,
    },
    /// Each chain orders its labels; labels in no chain are unordered.
    Partial {
        chains: Vec<Vec<(u32, Span)>>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Test {
    pub name: String,
    pub run: Callee,
    pub args: Vec<Operand>,
    pub with: GeneratorId,
    pub expect: Vec<Expectation>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Le,
    Lt,
    Eq,
    Ge,
    Gt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expectation {
    Success,
    Failure,
    Calls { op: CmpOp, value: u64 },
    Satisfies { guard: GuardExpr },
}
