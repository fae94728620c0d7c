//! Name and type errors: plain data, turned into diagnostics in one place.

use super::ir::Ty;
use crate::diagnostics::{Code, Diagnostic};
use crate::source::Span;

/// The kinds of names, each its own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Type,
    Guard,
    Generator,
    Effect,
    Action,
    Task,
    /// An action or a task (what a subtask calls).
    Callable,
    Value,
    Input,
    Label,
    Resource,
    Param,
}

impl NameKind {
    pub fn noun(self) -> &'static str {
        match self {
            NameKind::Type => "type",
            NameKind::Guard => "guard",
            NameKind::Generator => "generator",
            NameKind::Effect => "effect",
            NameKind::Action => "action",
            NameKind::Task => "task",
            NameKind::Callable => "action or task",
            NameKind::Value => "value",
            NameKind::Input => "input",
            NameKind::Label => "subtask label",
            NameKind::Resource => "resource",
            NameKind::Param => "parameter",
        }
    }

    fn article(self) -> &'static str {
        match self {
            NameKind::Action | NameKind::Effect | NameKind::Input => "an",
            NameKind::Callable => "an",
            _ => "a",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckError {
    UnknownName {
        kind: NameKind,
        name: String,
        span: Span,
        suggestion: Option<String>,
        /// The name is a standard library guard that was not imported.
        in_std: bool,
    },
    UnknownStd {
        name: String,
        span: Span,
        suggestion: Option<String>,
    },
    ImportUnreadable {
        path: String,
        span: Span,
        reason: String,
    },
    Duplicate {
        kind: NameKind,
        name: String,
        span: Span,
        first: Span,
    },
    DuplicateLabel {
        name: String,
        span: Span,
        first: Span,
    },
    DuplicateMember {
        what: &'static str,
        name: String,
        span: Span,
        first: Span,
    },
    WrongKind {
        name: String,
        span: Span,
        expected: NameKind,
        found: NameKind,
        def: Span,
    },
    OrderingMissing {
        labels: Vec<String>,
        ordering: Span,
        subtasks: Vec<Span>,
    },
    OrderingTwice {
        label: String,
        span: Span,
        first: Span,
    },
    /// `(a, b)`: a partial order whose chains are all single labels.
    UnorderedPartial {
        labels: Vec<String>,
        span: Span,
    },
    Arity {
        callee: String,
        span: Span,
        takes: usize,
        given: usize,
        missing: Vec<String>,
        def: Option<Span>,
        pre_subject: bool,
    },
    ArgType {
        param: String,
        expected: Ty,
        found: Ty,
        span: Span,
        def: Option<Span>,
    },
    UnknownNamedArg {
        name: String,
        callee: String,
        span: Span,
        params: Vec<String>,
    },
    ArgTwice {
        name: String,
        span: Span,
        first: Span,
    },
    GuardSubject {
        guard: String,
        expected: Ty,
        found: Ty,
        span: Span,
        artifact: Option<Span>,
    },
    ResultType {
        expected: Ty,
        found: Ty,
        span: Span,
        output: Span,
    },
    ResultMissing {
        method: String,
        span: Span,
        output: Span,
    },
    ResultUnexpected {
        span: Span,
        task: Span,
    },
    InvalidType {
        span: Span,
        problem: &'static str,
        help: &'static str,
    },
    RecursiveType {
        cycle: Vec<(String, Span)>,
    },
    IncompatibleSubjects {
        span: Span,
        first: (Ty, Span),
        second: (Ty, Span),
    },
    InputDefault {
        expected: Ty,
        found: Ty,
        span: Span,
    },
    InputSource {
        name: String,
        span: Span,
    },
    NoArtifact {
        label: String,
        callee: String,
        span: Span,
    },
    EffectProperty {
        property: &'static str,
        span: Span,
        action: Span,
    },
    MalformedTest {
        problem: &'static str,
        span: Span,
        help: &'static str,
    },
    NoField {
        ty: Ty,
        field: String,
        span: Span,
        /// The closest field of the record, if one is close.
        suggestion: Option<String>,
    },
    /// `lhs op rhs` in a predicate over types that do not compare.
    BadComparison {
        op: &'static str,
        lhs: Ty,
        rhs: Ty,
        span: Span,
        lhs_span: Span,
        rhs_span: Span,
        /// The tags of an enum compared with a text that is not one.
        tags: Option<Vec<String>>,
    },
    /// `len(x)` of a value that has no length.
    NoLength {
        ty: Ty,
        span: Span,
    },
    /// A predicate (bare value, `len(x)`) that is not a Bool.
    NotBool {
        what: String,
        ty: Ty,
        span: Span,
    },
    /// A typed predicate where a guard judges the artifact.
    PredicateNotHere {
        place: &'static str,
        span: Span,
    },
    RecursiveGuard {
        cycle: Vec<(String, Span)>,
    },
    /// A chain of definitions (`what`: "type alias", "guard") resolved
    /// through more than `max` others, or a type nested more than `max`
    /// deep.
    DefinitionsTooDeep {
        what: &'static str,
        name: String,
        span: Span,
        max: usize,
    },
    /// `fallback(…)` with fewer than two providers, or an argument that
    /// is not a generator.
    BadFallback {
        span: Span,
        why: String,
    },
    Unused {
        kind: NameKind,
        name: String,
        span: Span,
    },
    UnusedImport {
        name: String,
        span: Span,
    },
    UnusedParam {
        name: String,
        span: Span,
    },
    /// A value reaches a parameter that is run as a program (`Program`).
    ValueInProgram {
        callee: String,
        param: String,
        /// The argument.
        span: Span,
        /// The values it is built from, with where each is named.
        values: Vec<(String, Span)>,
        /// The parameter's declaration.
        def: Option<Span>,
        /// The callee takes `files: Map<…>`.
        has_files: bool,
    },
    /// A map key with an interpolation.
    MapKeyNotPlain {
        span: Span,
    },
    /// `[T; max N]` with N of 0 or over the cap.
    ListBound {
        value: u64,
        span: Span,
        max: u64,
    },
    /// `for item in xs` where `xs` is a list without a bound.
    MapUnbounded {
        source: String,
        ty: Ty,
        span: Span,
        /// Where the list's type (or the type of what holds it) is written.
        def: Option<Span>,
    },
    /// `for item in x` where `x` is not a list.
    MapNotList {
        source: String,
        ty: Ty,
        span: Span,
    },
    /// The item variable has the name of a parameter, label or input.
    MapItemShadows {
        name: String,
        kind: NameKind,
        span: Span,
    },
    /// The item variable is never used: every item gets the same call.
    MapItemUnused {
        name: String,
        span: Span,
    },
    /// `:strategy best-of(N)` on an action with an `:effect`.
    BestOfEffect {
        strategy: Span,
        effect: Span,
    },
    /// `{previous}`, `{history}` or `{feedback}` outside an action's
    /// prompt and role.
    RefinementOutsidePrompt {
        name: String,
        span: Span,
    },
    /// `{previous}`, `{history}` or `{feedback}` in the prompt of a
    /// `:strategy resample` action: they are always empty there.
    ResampleContext {
        name: String,
        span: Span,
        strategy: Span,
    },
    /// `Generator` written where it is not a parameter's type.
    GeneratorNotParam {
        span: Span,
    },
    /// A judge's bound (`retries`) that is not a number written in the
    /// workflow, so the checker could not count its calls.
    JudgeBound {
        guard: String,
        span: Span,
        def: Option<Span>,
    },
    /// A judge where no attempt is judged (a `:pre`, a test's
    /// `satisfies`), directly or through the guard definition `via`.
    JudgeOutsideAnswer {
        judge: String,
        via: Option<String>,
        place: &'static str,
        span: Span,
    },
}

impl CheckError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        use CheckError::*;
        match self {
            UnknownName {
                kind,
                name,
                span,
                suggestion,
                in_std,
            } => {
                let code = match kind {
                    NameKind::Type => Code::E0101,
                    NameKind::Guard => Code::E0102,
                    NameKind::Generator | NameKind::Effect => Code::E0103,
                    NameKind::Action | NameKind::Task | NameKind::Callable => Code::E0104,
                    NameKind::Label => Code::E0106,
                    NameKind::Resource => Code::E0107,
                    NameKind::Value | NameKind::Input | NameKind::Param => Code::E0105,
                };
                let mut d = Diagnostic::new(
                    code,
                    format!("unknown {} `{name}`", kind.noun()),
                    *span,
                    format!("no {} of this name is in scope", kind.noun()),
                );
                if *in_std {
                    d = d
                        .with_note(format!("`{name}` is a standard library guard"))
                        .with_help(format!("import it: `use std.{{{name}}}`"));
                } else if let Some(s) = suggestion {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                d
            }
            UnknownStd {
                name,
                span,
                suggestion,
            } => {
                let d = Diagnostic::new(
                    Code::E0108,
                    format!("the standard library has no `{name}`"),
                    *span,
                    "not in `std`",
                )
                .with_note("`guardflow explain E0108` lists where the standard library is documented");
                match suggestion {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d,
                }
            }
            ImportUnreadable { path, span, reason } => Diagnostic::new(
                Code::E0109,
                format!("cannot read `{path}`"),
                *span,
                reason.clone(),
            )
            .with_note("paths in `use \"…\"` are relative to the file that uses them"),
            Duplicate {
                kind,
                name,
                span,
                first,
            } => Diagnostic::new(
                Code::E0110,
                format!("the {} `{name}` is defined twice", kind.noun()),
                *span,
                "defined again here",
            )
            .with_label(*first, "first defined here")
            .with_help("rename one of them"),
            DuplicateLabel { name, span, first } => Diagnostic::new(
                Code::E0111,
                format!("the subtask label `{name}` is used twice in one method"),
                *span,
                "used again here",
            )
            .with_label(*first, "first used here")
            .with_help("give each subtask its own label"),
            DuplicateMember {
                what,
                name,
                span,
                first,
            } => Diagnostic::new(
                Code::E0112,
                format!("the {what} `{name}` appears twice"),
                *span,
                "again here",
            )
            .with_label(*first, "first here"),
            WrongKind {
                name,
                span,
                expected,
                found,
                def,
            } => Diagnostic::new(
                Code::E0113,
                format!(
                    "`{name}` is {} {}, not {} {}",
                    found.article(),
                    found.noun(),
                    expected.article(),
                    expected.noun()
                ),
                *span,
                format!("{} {} is expected here", expected.article(), expected.noun()),
            )
            .with_label(*def, format!("`{name}` is defined here as {} {}", found.article(), found.noun())),
            OrderingMissing {
                labels,
                ordering,
                subtasks,
            } => {
                let list = labels
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut d = Diagnostic::new(
                    Code::E0114,
                    format!("the ordering leaves out {list}"),
                    *ordering,
                    format!("{list} never runs under this ordering"),
                );
                for s in subtasks {
                    d = d.with_label(*s, "this subtask is not ordered");
                }
                d.with_help("name every subtask label in `:ordering`, or drop `:ordering` to run them in the listed order")
            }
            OrderingTwice { label, span, first } => Diagnostic::new(
                Code::E0114,
                format!("`{label}` appears twice in the ordering"),
                *span,
                "named again here",
            )
            .with_label(*first, "first named here")
            .with_note("a subtask runs once; a series-parallel ordering names each label exactly once")
            .with_help("for orderings that are not series-parallel use a partial order: `(a < b, a < c, b < d, c < d)`"),
            UnorderedPartial { labels, span } => {
                let listed = labels.join(", ");
                Diagnostic::new(
                    Code::E0115,
                    format!("`({listed})` orders nothing"),
                    *span,
                    "a partial order without `<`",
                )
                .with_note("in a partial order, `,` only separates chains; without a `<` every subtask may start at once, which is rarely what `(a, b)` was meant to say")
                .with_help(format!(
                    "write `({})` to run them one after another, or `({})` to run them side by side",
                    labels.join(" ; "),
                    labels.join(" || ")
                ))
            }
            Arity {
                callee,
                span,
                takes,
                given,
                missing,
                def,
                pre_subject,
            } => {
                let message = if missing.is_empty() {
                    format!("`{callee}` takes {takes} argument{}, but {given} were given", plural(*takes))
                } else {
                    format!(
                        "`{callee}` is missing {}",
                        missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                    )
                };
                let label = if missing.is_empty() {
                    "too many arguments".to_string()
                } else {
                    format!("needs {}", missing.join(", "))
                };
                let mut d = Diagnostic::new(Code::E0201, message, *span, label);
                if let Some(def) = def {
                    d = d.with_label(*def, "declared here");
                }
                if *pre_subject {
                    d = d.with_note("in `:pre` there is no artifact yet: a guard takes what it judges as its first argument, as in `:pre min_len(spec, 10)`");
                }
                d
            }
            ArgType {
                param,
                expected,
                found,
                span,
                def,
            } => {
                let mut d = Diagnostic::new(
                    Code::E0202,
                    format!("`{param}` expects {expected}, but this is {found}"),
                    *span,
                    format!("this is {found}"),
                );
                if let (Ty::Code { lang }, Ty::Text) = (expected, found) {
                    d = d.with_help(format!(
                        "a string is Text; write a code literal, the language touching the quotes: `{lang}\"\"\"…\"\"\"` (or `{lang}\"…\"` on one line)"
                    ));
                }
                match def {
                    Some(def) => d.with_label(*def, format!("`{param}` is declared as {expected} here")),
                    None => d,
                }
            }
            UnknownNamedArg {
                name,
                callee,
                span,
                params,
            } => {
                let d = Diagnostic::new(
                    Code::E0203,
                    format!("`{callee}` has no parameter `{name}`"),
                    *span,
                    "unknown parameter",
                );
                if params.is_empty() {
                    d.with_note(format!("`{callee}` takes no arguments"))
                } else {
                    d.with_note(format!("its parameters are: {}", params.join(", ")))
                }
            }
            ArgTwice { name, span, first } => Diagnostic::new(
                Code::E0204,
                format!("`{name}` is given twice"),
                *span,
                "given again here",
            )
            .with_label(*first, "first given here"),
            GuardSubject {
                guard,
                expected,
                found,
                span,
                artifact,
            } => {
                let d = Diagnostic::new(
                    Code::E0205,
                    format!("`{guard}` judges {expected}, but the artifact is {found}"),
                    *span,
                    format!("`{guard}` cannot judge {found}"),
                );
                match artifact {
                    Some(a) => d.with_label(*a, format!("the artifact is {found}")),
                    None => d,
                }
            }
            ResultType {
                expected,
                found,
                span,
                output,
            } => Diagnostic::new(
                Code::E0206,
                format!("the task returns {expected}, but this result is {found}"),
                *span,
                format!("this subtask produces {found}"),
            )
            .with_label(*output, format!("the task declares {expected}")),
            ResultMissing {
                method,
                span,
                output,
            } => Diagnostic::new(
                Code::E0207,
                format!("method `{method}` has no `:result`"),
                *span,
                "this method does not say which subtask's artifact is the task's result",
            )
            .with_label(*output, "the task declares an output here")
            .with_help("add `:result LABEL` naming the subtask whose artifact the task returns"),
            ResultUnexpected { span, task } => Diagnostic::new(
                Code::E0207,
                "`:result` in a task without an output type",
                *span,
                "nothing receives this result",
            )
            .with_label(*task, "this task declares no `-> Type`")
            .with_help("declare the output type after the parameters, or remove `:result`"),
            InvalidType {
                span,
                problem,
                help,
            } => Diagnostic::new(Code::E0208, *problem, *span, "invalid type").with_help(*help),
            RecursiveType { cycle } => cycle_diagnostic(Code::E0209, "type alias", cycle)
                .with_help("a type alias cannot contain itself; guardflow types are finite"),
            IncompatibleSubjects {
                span,
                first,
                second,
            } => Diagnostic::new(
                Code::E0210,
                format!(
                    "this guard combines a guard on {} with a guard on {}",
                    first.0, second.0
                ),
                *span,
                "no artifact can be both",
            )
            .with_label(first.1, format!("judges {}", first.0))
            .with_label(second.1, format!("judges {}", second.0)),
            InputDefault {
                expected,
                found,
                span,
            } => Diagnostic::new(
                Code::E0211,
                format!("the input is {expected}, but its default is {found}"),
                *span,
                format!("this is {found}"),
            )
            .with_note("`file(\"…\")` gives Text, `folder(\"…\")` gives [Text]"),
            InputSource { name, span } => Diagnostic::new(
                Code::E0211,
                format!("`{name}(…)` is not an input source"),
                *span,
                "not a literal, `file(…)` or `folder(…)`",
            )
            .with_help("an input's default is a literal, `file(\"path\")` or `folder(\"dir\", glob: \"*.md\")`"),
            NoArtifact {
                label,
                callee,
                span,
            } => Diagnostic::new(
                Code::E0207,
                format!("`{label}` produces no artifact"),
                *span,
                format!("`{callee}` declares no output type"),
            )
            .with_help(format!("give `{callee}` an output type (`-> Type`) and a `:result` in each method")),
            EffectProperty {
                property,
                span,
                action,
            } => Diagnostic::new(
                Code::E0212,
                format!("`{property}` is only meaningful with `:effect`"),
                *span,
                "this action has no effect",
            )
            .with_label(*action, "in this action")
            .with_help("add `:effect shell(timeout: 30s)`, or remove the property"),
            MalformedTest {
                problem,
                span,
                help,
            } => Diagnostic::new(Code::E0213, *problem, *span, "here").with_help(*help),
            NoField {
                ty,
                field,
                span,
                suggestion,
            } => {
                let record = matches!(ty, Ty::Record { .. })
                    || matches!(ty, Ty::Json { of } if matches!(**of, Ty::Record { .. }));
                if !record {
                    return Diagnostic::new(
                        Code::E0214,
                        format!("{ty} is not a record: it has no field `{field}`"),
                        *span,
                        "not a record",
                    )
                    .with_help("only records (`{ name: Type, … }`, also inside `Json<…>`) have fields; use the value itself");
                }
                let d = Diagnostic::new(
                    Code::E0214,
                    format!("{ty} has no field `{field}`"),
                    *span,
                    "no such field",
                );
                match suggestion {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d,
                }
            }
            BadComparison {
                op,
                lhs,
                rhs,
                span,
                lhs_span,
                rhs_span,
                tags,
            } => {
                let d = Diagnostic::new(
                    Code::E0218,
                    format!("{lhs} and {rhs} cannot be compared with `{op}`"),
                    *span,
                    "cannot compare these",
                )
                .with_label(*lhs_span, format!("this is {lhs}"))
                .with_label(*rhs_span, format!("this is {rhs}"));
                if let Some(tags) = tags {
                    return d.with_help(format!(
                        "an enum value is one of its tags, written bare: {}",
                        tags.join(", ")
                    ));
                }
                let ordered = |t: &Ty| matches!(t, Ty::Int | Ty::Float | Ty::Duration);
                if matches!(*op, "<" | "<=" | ">" | ">=") && !(ordered(lhs) && ordered(rhs)) {
                    d.with_help("`<`, `<=`, `>` and `>=` compare numbers (Int, Float) or durations; other values compare with `==` and `!=`")
                } else {
                    d.with_help("compare values of one type: numbers with numbers (Int and Float mix), text with text, Bool with Bool, an enum with its tags; `len(x)` gives the length of a list, text or map")
                }
            }
            NoLength { ty, span } => Diagnostic::new(
                Code::E0219,
                format!("{ty} has no length"),
                *span,
                format!("this is {ty}"),
            )
            .with_help("`len(x)` counts the items of a list, the entries of a map or the characters of a text"),
            NotBool { what, ty, span } => Diagnostic::new(
                Code::E0220,
                format!("`{what}` is {ty}, not a Bool: a predicate must be true or false"),
                *span,
                format!("this is {ty}"),
            )
            .with_help(match ty {
                Ty::Int | Ty::Float => format!("compare it: `{what} > 0`"),
                Ty::List { .. } | Ty::Map { .. } => format!("test its length: `len({what}) > 0`"),
                Ty::Enum { tags } => format!(
                    "compare it with a tag: `{what} == {}`",
                    tags.first().map_or("Tag", String::as_str)
                ),
                _ => format!("compare it: `{what} == \"…\"`, or judge it with a guard: `:pre non_empty({what})`"),
            }),
            PredicateNotHere { place, span } => Diagnostic::new(
                Code::E0221,
                format!("a typed predicate cannot judge the artifact in {place}"),
                *span,
                "a predicate over values",
            )
            .with_note("predicates compare values the workflow already has (parameters, inputs, subtask results); they belong in a method's or action's `:pre`, where they choose what runs")
            .with_help("move it to `:pre`, or judge the artifact with a guard (`:guard json_schema`, a `guard … on Type`)"),
            RecursiveGuard { cycle } => cycle_diagnostic(Code::E0215, "guard", cycle)
                .with_help("a guard cannot be defined in terms of itself; it would never finish"),
            DefinitionsTooDeep {
                what,
                name,
                span,
                max,
            } => Diagnostic::new(
                Code::E0217,
                if name.is_empty() {
                    format!("this {what} is nested more than {max} levels deep")
                } else {
                    format!("the {what} `{name}` is nested more than {max} levels deep")
                },
                *span,
                format!("more than {max} levels"),
            )
            .with_note(format!(
                "a {what} may be built from others at most {max} levels deep, so that checking and running it stay bounded"
            ))
            .with_help("flatten the chain: define the deepest parts directly instead of through one another"),
            BadFallback { span, why } => Diagnostic::new(
                Code::E0238,
                "malformed `fallback` generator".to_string(),
                *span,
                why.clone(),
            )
            .with_help(
                "write `fallback(first, second, …)` with two or more generators, e.g. \
                 `fallback(llm(model: \"a\", base_url: \"http://a\"), llm(model: \"b\"))`",
            ),
            Unused { kind, name, span } => Diagnostic::new(
                Code::W0001,
                format!("the {} `{name}` is never used", kind.noun()),
                *span,
                "unused",
            )
            .with_help("remove it, or use it"),
            BestOfEffect { strategy, effect } => Diagnostic::new(
                Code::E0230,
                "`best-of` would run the effect once per sample",
                *strategy,
                "several samples per attempt",
            )
            .with_label(*effect, "each sample's command would run")
            .with_note("the samples of an attempt are judged concurrently, and judging an effect's command runs it")
            .with_help("use `:strategy repair` or `resample` on an action with an `:effect`, or make the samples in an action without one and run the chosen one in a later action"),
            RefinementOutsidePrompt { name, span } => Diagnostic::new(
                Code::E0231,
                format!("`{{{name}}}` is only known in an action's prompt and role"),
                *span,
                "not in an action's prompt",
            )
            .with_note(format!("`{{{name}}}` is what this action's earlier attempts produced; only an action's `:generate` prompt and `:role` make attempts"))
            .with_help("move the text into the prompt of the action that is retried, or pass the value as a parameter"),
            ResampleContext {
                name,
                span,
                strategy,
            } => Diagnostic::new(
                Code::W0008,
                format!("`{{{name}}}` is always empty with `:strategy resample`"),
                *span,
                "renders as nothing",
            )
            .with_label(*strategy, "each attempt is an independent sample")
            .with_help("remove it from the prompt, or use `:strategy repair` (the default) so attempts see what was rejected"),
            UnusedImport { name, span } => Diagnostic::new(
                Code::W0002,
                format!("`{name}` is imported but never used"),
                *span,
                "unused import",
            )
            .with_help("remove it from the `use` list"),
            ListBound { value, span, max } => Diagnostic::new(
                Code::E0224,
                format!("a list bound must be between 1 and {max}, not {value}"),
                *span,
                if *value == 0 {
                    "a list of at most 0 items is always empty".to_string()
                } else {
                    format!("more than {max}")
                },
            )
            .with_note(format!(
                "the bound multiplies the worst case of every map over the list; {max} keeps the bounds meaningful"
            ))
            .with_help(format!("write a bound from 1 to {max}: `[T; max 12]`")),
            MapUnbounded {
                source,
                ty,
                span,
                def,
            } => {
                let elem = match ty {
                    Ty::List { of, .. } => of.to_string(),
                    _ => "T".to_string(),
                };
                let d = Diagnostic::new(
                    Code::E0225,
                    format!("`{source}` is {ty}, a list without a bound, so the map has no worst case"),
                    *span,
                    "a list of any length",
                )
                .with_note(
                    "the checker multiplies the callee's bounds by the list's bound; without one, calls, tokens and time are unbounded",
                )
                .with_help(format!(
                    "give the list type a bound: `[{elem}; max 12]` (the model producing it is then held to at most 12 items)"
                ));
                match def {
                    Some(def) => d.with_label(*def, format!("declared `[{elem}]` here")),
                    None => d,
                }
            }
            MapNotList { source, ty, span } => Diagnostic::new(
                Code::E0226,
                format!("`{source}` is {ty}, not a list, so there is nothing to map over"),
                *span,
                format!("this is {ty}"),
            )
            .with_help("map over a list (`[T; max N]`), or call the action or task once without `for`"),
            MapItemShadows { name, kind, span } => Diagnostic::new(
                Code::E0227,
                format!("the map item `{name}` has the name of {} {}", kind.article(), kind.noun()),
                *span,
                format!("`{name}` is already {} {}", kind.article(), kind.noun()),
            )
            .with_help("name the item differently, e.g. `for each_item in …`"),
            MapItemUnused { name, span } => Diagnostic::new(
                Code::W0007,
                format!("the map item `{name}` is never used"),
                *span,
                "every item gets the same call",
            )
            .with_help(format!(
                "pass `{name}` (or a field of it) to the call, or name it `_{name}` if the same call per item is meant"
            )),
            UnusedParam { name, span } => Diagnostic::new(
                Code::W0003,
                format!("the parameter `{name}` is never used"),
                *span,
                "unused parameter",
            )
            .with_help(format!("use it, remove it, or name it `_{name}`")),
            GeneratorNotParam { span } => Diagnostic::new(
                Code::E0234,
                "`Generator` is only the type of a parameter",
                *span,
                "not a parameter's type",
            )
            .with_help(
                "a generator is passed to a guard that asks it (`judge(critic, …)`) or to a \
                 parameter declared `Generator`; it is not a value to keep in an input, a field, \
                 a list or an artifact",
            ),
            JudgeBound { guard, span, def } => {
                let mut d = Diagnostic::new(
                    Code::E0235,
                    format!("the bound of the judge `{guard}` is not a number written here"),
                    *span,
                    "`retries` must be an integer literal",
                );
                if let Some(def) = def {
                    d = d.with_label(*def, "the judge asks its generator at most 1 + `retries` times");
                }
                d.with_help(
                    "the checker counts a judge's generator calls in the workflow's bounds; \
                     write the number: `retries: 2`",
                )
            }
            JudgeOutsideAnswer {
                judge,
                via,
                place,
                span,
            } => {
                let what = match via {
                    Some(g) => format!("`{g}` asks a model (through the judge `{judge}`)"),
                    None => format!("the judge `{judge}` asks a model"),
                };
                Diagnostic::new(
                    Code::E0236,
                    format!("{what} in {place}, where no answer is judged"),
                    *span,
                    "a judge here has no attempt to count its calls against",
                )
                .with_help(
                    "judge an action's answer: move the judge to the action's `:guard` (or \
                     `:pre-guard` for an effect's proposal); decide `:pre` and `satisfies` from \
                     values and deterministic guards",
                )
            }
            ValueInProgram {
                callee,
                param,
                span,
                values,
                def,
                has_files,
            } => {
                let message = match values.as_slice() {
                    [] => format!("a value is passed as the program `{param}` of `{callee}`"),
                    [(name, _)] => format!(
                        "`{name}` is a value, spliced into the program `{param}` of `{callee}`"
                    ),
                    _ => format!(
                        "values are spliced into the program `{param}` of `{callee}`"
                    ),
                };
                let mut d = Diagnostic::new(
                    Code::E0216,
                    message,
                    *span,
                    "a command line must be fixed when the workflow is written",
                );
                for (name, at) in values.iter().filter(|(_, at)| at != span) {
                    d = d.with_label(*at, format!("`{name}` may hold any text, `; rm -rf ~` too"));
                }
                if let Some(def) = def {
                    d = d.with_label(*def, format!("`{param}` is run as a program"));
                }
                let files = match values.as_slice() {
                    [] => "files: {\"value.txt\": value}".to_string(),
                    vs => {
                        let entries: Vec<String> = vs
                            .iter()
                            .map(|(name, _)| {
                                let base = name.split('.').next_back().unwrap_or(name);
                                format!("\"{base}.txt\": {name}")
                            })
                            .collect();
                        format!("files: {{{}}}", entries.join(", "))
                    }
                };
                let rule = "a `Program` is a literal without `{…}` or a parameter declared \
                            `Program` (see `guardflow explain E0216`)";
                if *has_files {
                    d.with_help(format!(
                        "hand values to the program as files: `{callee}(\"…\", {files})` \
                         writes each to a file and names it in `$GUARDFLOW_FILE_<NAME>`; {rule}"
                    ))
                } else {
                    d.with_help(format!(
                        "values reach a program as data, never as code: in files \
                         (`command(\"…\", {files})`), or in a generator's prompt (`cmd` \
                         gives it on stdin); {rule}"
                    ))
                }
            }
            MapKeyNotPlain { span } => Diagnostic::new(
                Code::E0216,
                "a map key is a plain string, without interpolation",
                *span,
                "a key cannot come from a value",
            )
            .with_help("write the name itself: `{\"tests.py\": tests}`; the keys of `files:` are file names, fixed when the workflow is written"),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn cycle_diagnostic(code: Code, what: &str, cycle: &[(String, Span)]) -> Diagnostic {
    let names: Vec<&str> = cycle.iter().map(|(n, _)| n.as_str()).collect();
    let mut path = names.join(" → ");
    if let Some(first) = names.first() {
        path.push_str(" → ");
        path.push_str(first);
    }
    let (first_name, first_span) = &cycle[0];
    let mut d = Diagnostic::new(
        code,
        format!("the {what} `{first_name}` refers to itself: {path}"),
        *first_span,
        format!("`{first_name}` starts the cycle"),
    );
    for (i, (name, span)) in cycle.iter().enumerate().skip(1) {
        d = d.with_label(*span, format!("{}. `{name}`", i + 1));
    }
    d
}
