//! The typed syntax tree. Every node carries the [`Span`] of its source;
//! nothing from pest appears here.

use crate::source::Span;

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// One parsed file: its items in source order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The `///` lines before the item, without the slashes.
    pub doc: Option<String>,
    pub kind: ItemKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    Use(Use),
    Input(Input),
    Type(TypeDef),
    Generator(GeneratorDef),
    Guard(GuardDef),
    Extern(Extern),
    Resource(Resource),
    Action(Box<Action>),
    Task(Task),
    Test(Test),
    Default(Default),
}

impl ItemKind {
    /// The name the item defines, if it defines one.
    pub fn name(&self) -> Option<&Ident> {
        match self {
            ItemKind::Input(i) => Some(&i.name),
            ItemKind::Type(t) => Some(&t.name),
            ItemKind::Generator(g) => Some(&g.name),
            ItemKind::Guard(g) => Some(&g.name),
            ItemKind::Extern(e) => Some(&e.name),
            ItemKind::Resource(r) => Some(&r.name),
            ItemKind::Action(a) => Some(&a.name),
            ItemKind::Task(t) => Some(&t.name),
            ItemKind::Use(_) | ItemKind::Test(_) | ItemKind::Default(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Use {
    /// `use std.{a, b}`
    Std(Vec<Ident>),
    /// `use "other.guardflow"`
    File(StringLit),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    pub name: Ident,
    pub ty: TypeExpr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorDef {
    pub name: Ident,
    pub kind: Call,
}

/// `guard name(params) [on Type] = expr`
#[derive(Debug, Clone, PartialEq)]
pub struct GuardDef {
    pub name: Ident,
    pub params: Vec<Param>,
    pub subject: Option<TypeExpr>,
    pub body: GuardExpr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternKind {
    Guard,
    Generator,
    Effect,
}

/// `extern guard|generator|effect name(params) [on Type]`: implemented by
/// the host (the standard library or an embedding program).
#[derive(Debug, Clone, PartialEq)]
pub struct Extern {
    pub kind: ExternKind,
    pub name: Ident,
    pub params: Vec<Param>,
    pub subject: Option<TypeExpr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub name: Ident,
    pub size: Spanned<u64>,
    /// `:shared`: one pool for every run that uses the same store.
    pub shared: Option<Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: TypeExpr,
    pub default: Option<Expr>,
    pub span: Span,
}

/// A value with the span it was written at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub name: Ident,
    pub params: Vec<Param>,
    pub output: TypeExpr,
    pub props: ActionProps,
    /// The span of the closing brace, for "missing property" findings.
    pub body_span: Span,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionProps {
    pub generate: Option<Generate>,
    pub role: Option<StringLit>,
    pub guard: Option<GuardExpr>,
    pub retry: Option<Spanned<u64>>,
    pub pre: Option<GuardExpr>,
    pub pre_guard: Option<GuardExpr>,
    pub effect: Option<Call>,
    pub idempotent: Option<Span>,
    pub timeout: Option<Spanned<Duration>>,
    pub uses: Vec<ResourceUse>,
    pub feedback: Option<Spanned<FeedbackPolicy>>,
    pub max_tokens: Option<Spanned<u64>>,
    pub p: Option<Spanned<f64>>,
    pub strategy: Option<Spanned<Strategy>>,
}

/// The most samples `best-of(N)` may take per attempt.
pub const MAX_BEST_OF: u64 = 16;

/// `:strategy`: how an action's attempts use what was rejected before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The default: the feedback and the rejected output in the prompt.
    Repair,
    /// An independent sample each attempt: no history.
    Resample,
    /// N samples per attempt, concurrently; the first that passes.
    BestOf(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generate {
    pub generator: Call,
    pub prompt: StringLit,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackPolicy {
    Last,
    All,
    LastN(u64),
}

/// `res` or `res*2`
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceUse {
    pub name: Ident,
    pub amount: Spanned<u64>,
}

/// A duration in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: Ident,
    pub params: Vec<Param>,
    pub output: Option<TypeExpr>,
    pub max_depth: Option<Spanned<u64>>,
    pub methods: Vec<Method>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    pub doc: Option<String>,
    pub name: Ident,
    pub pre: Option<GuardExpr>,
    pub subtasks: Option<Spanned<Vec<Subtask>>>,
    pub ordering: Option<Ordering>,
    /// `:result r`: a subtask label or a parameter of the task.
    pub result: Option<Ident>,
    /// The fields after the name: `:result p.items`.
    pub result_fields: Vec<Ident>,
    pub uses: Vec<ResourceUse>,
    pub on_fail: Option<Spanned<OnFail>>,
    /// `:history fresh`: the method's actions do not see the attempts of
    /// the task's earlier methods.
    pub history: Option<Spanned<History>>,
    pub span: Span,
}

/// `:history` of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    Keep,
    Fresh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFail {
    Cancel,
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subtask {
    pub label: Ident,
    pub call: Call,
    /// `for item in p.items => call`: the call runs once per item.
    pub each: Option<Box<ForEach>>,
    pub escalation: Option<Escalation>,
    pub span: Span,
}

/// The `for item in source` of a map subtask, and its `:parallel K`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForEach {
    pub item: Ident,
    /// A name with optional fields: `p.items`, `plan.steps`.
    pub source: Vec<Ident>,
    pub parallel: Option<Spanned<u64>>,
    /// From `for` to the end of the call (and of `:parallel`).
    pub span: Span,
}

/// `:escalate-to t after 2 :max-escalations 1`
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub target: Ident,
    pub after: Spanned<u64>,
    pub max: Option<Spanned<u64>>,
    pub span: Span,
}

/// An ordering expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordering {
    Label(Ident),
    /// `(a ; b ; c)`
    Seq(Vec<Ordering>, Span),
    /// `(a || b)`
    Par(Vec<Ordering>, Span),
    /// `(a < b < d, a < c)`: in each chain, every label finishes before
    /// the next starts; a chain of one label only mentions it.
    Partial(Vec<Vec<Ident>>, Span),
}

impl Ordering {
    pub fn span(&self) -> Span {
        match self {
            Ordering::Label(i) => i.span,
            Ordering::Seq(_, s) | Ordering::Par(_, s) | Ordering::Partial(_, s) => *s,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Test {
    pub name: StringLit,
    pub run: Option<Call>,
    pub with: Option<Call>,
    pub expect: Vec<Expectation>,
    pub body_span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    Success(Span),
    Failure(Span),
    Calls {
        op: CmpOp,
        value: Spanned<u64>,
        span: Span,
    },
    Satisfies(GuardExpr, Span),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Le,
    Lt,
    Eq,
    Ge,
    Gt,
}

impl CmpOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Le => "<=",
            CmpOp::Lt => "<",
            CmpOp::Eq => "==",
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
        }
    }
}

/// File-level defaults.
#[derive(Debug, Clone, PartialEq)]
pub enum Default {
    Retry(Spanned<u64>),
    Timeout(Spanned<Duration>),
    P(Spanned<f64>),
    MaxTokens(Spanned<u64>),
}

// ─── types ───────────────────────────────────────────────────────────────

#[derive(Debug, Clone, PartialEq)]
pub enum TypeExpr {
    /// `Text`, `Plan`, `Code<python>`, `Json<Plan>`
    Named {
        name: Ident,
        arg: Option<Box<TypeExpr>>,
        span: Span,
    },
    List(Box<TypeExpr>, Span),
    /// `[T; max N]`: a list of at most N items.
    BoundedList {
        elem: Box<TypeExpr>,
        max: Spanned<u64>,
        span: Span,
    },
    Record(Vec<Field>, Span),
    /// `Low | Medium | High`
    Enum(Vec<Ident>, Span),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named { span, .. }
            | TypeExpr::List(_, span)
            | TypeExpr::BoundedList { span, .. }
            | TypeExpr::Record(_, span)
            | TypeExpr::Enum(_, span) => *span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: Ident,
    pub ty: TypeExpr,
}

// ─── guard expressions, calls, values ────────────────────────────────────

#[derive(Debug, Clone, PartialEq)]
pub enum GuardExpr {
    Call(Call),
    Bool(bool, Span),
    Not(Box<GuardExpr>, Span),
    And(Vec<GuardExpr>, Span),
    Or(Vec<GuardExpr>, Span),
    /// `all(...)`, `any(...)`, `majority(...)`, `par(...)`
    Combinator(Combinator, Vec<GuardExpr>, Span),
    /// A typed predicate: `v.score >= 0.8`, `len(p.items) == 0`.
    Compare(Box<Compare>),
    /// A field path read as a Bool: `v.ok`. (A bare name is a `Call`,
    /// which the checker reads as a value when no guard has the name.)
    Path(Vec<Ident>, Span),
}

/// `lhs op rhs` in a predicate.
#[derive(Debug, Clone, PartialEq)]
pub struct Compare {
    pub lhs: Term,
    pub op: Spanned<PredOp>,
    pub rhs: Term,
    pub span: Span,
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// A literal, a name (a value or an enum tag) or a field path.
    Expr(Expr),
    /// `len(x)`: the length of a list, a text or a map.
    Len(Expr, Span),
}

impl Term {
    pub fn span(&self) -> Span {
        match self {
            Term::Expr(e) => e.span(),
            Term::Len(_, s) => *s,
        }
    }
}

/// A predicate's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl PredOp {
    pub fn parse(op: &str) -> Option<PredOp> {
        Some(match op {
            "==" => PredOp::Eq,
            "!=" => PredOp::Ne,
            "<" => PredOp::Lt,
            "<=" => PredOp::Le,
            ">" => PredOp::Gt,
            ">=" => PredOp::Ge,
            _ => return None,
        })
    }

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

impl GuardExpr {
    pub fn span(&self) -> Span {
        match self {
            GuardExpr::Call(c) => c.span,
            GuardExpr::Compare(c) => c.span,
            GuardExpr::Path(_, s)
            | GuardExpr::Bool(_, s)
            | GuardExpr::Not(_, s)
            | GuardExpr::And(_, s)
            | GuardExpr::Or(_, s)
            | GuardExpr::Combinator(_, _, s) => *s,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combinator {
    All,
    Any,
    Majority,
    Par,
}

impl Combinator {
    pub fn from_name(name: &str) -> Option<Combinator> {
        Some(match name {
            "all" => Combinator::All,
            "any" => Combinator::Any,
            "majority" => Combinator::Majority,
            "par" => Combinator::Par,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Combinator::All => "all",
            Combinator::Any => "any",
            Combinator::Majority => "majority",
            Combinator::Par => "par",
        }
    }
}

/// `name`, `name()` or `name(a, key: b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub callee: Ident,
    /// `None` for a bare name without parentheses.
    pub args: Option<Vec<Arg>>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    String(StringLit),
    Int(Spanned<u64>),
    Float(Spanned<f64>),
    Duration(Spanned<Duration>),
    Bool(Spanned<bool>),
    List(Vec<Expr>, Span),
    /// `{ "name": value, ... }`
    Map(Vec<MapEntry>, Span),
    /// A name (`spec`, `t`) or a call (`file("spec.md")`).
    Call(Call),
    /// A name followed by record fields: `p.items`, `v.verdict.ok`.
    Path(Vec<Ident>, Span),
    /// `python"""…"""`: a `Code<lang>` value, its text verbatim.
    Code(CodeLit),
}

/// An inline code literal.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeLit {
    pub lang: Ident,
    /// The text between the quotes; a triple literal's is dedented like a
    /// triple string's (no escapes, no interpolation).
    pub text: String,
    pub span: Span,
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::String(s) => s.span,
            Expr::Int(v) => v.span,
            Expr::Float(v) => v.span,
            Expr::Duration(v) => v.span,
            Expr::Bool(v) => v.span,
            Expr::List(_, s) | Expr::Map(_, s) | Expr::Path(_, s) => *s,
            Expr::Call(c) => c.span,
            Expr::Code(c) => c.span,
        }
    }
}

/// `"name": value` in a map literal.
#[derive(Debug, Clone, PartialEq)]
pub struct MapEntry {
    pub key: StringLit,
    pub value: Expr,
    pub span: Span,
}

/// A string literal split into text and `{interpolations}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StringLit {
    pub parts: Vec<StringPart>,
    pub span: Span,
}

impl StringLit {
    /// The text with interpolations written back as `{name}`.
    pub fn template(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StringPart::Text(t) => out.push_str(t),
                StringPart::Interpolation(path) => {
                    out.push('{');
                    let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                    out.push_str(&names.join("."));
                    out.push('}');
                }
            }
        }
        out
    }

    /// The plain text, when the literal has no interpolation.
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StringPart::Text(t) => out.push_str(t),
                StringPart::Interpolation(_) => return None,
            }
        }
        Some(out)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StringPart {
    Text(String),
    /// `{name}` or `{name.field.field}`
    Interpolation(Vec<Ident>),
}
