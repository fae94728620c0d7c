//! One function per grammar rule: pest pairs to AST nodes.
//!
//! A pair the converter does not expect is reported as a syntax error at
//! its span (the grammar and this file drifting apart), never a panic.

use pest::iterators::Pair;

use super::literal::{self, Number};
use super::strings::StringBuilder;
use super::{explain_property, Rule};
use crate::diagnostics::suggest::edit_distance;
use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::error::{NumberKind, SyntaxError};

type P<'i> = Pair<'i, Rule>;

/// The children of a pair that carry meaning: keyword tokens (`kw_*`,
/// `k_*`) are left out.
fn kids(pair: P<'_>) -> impl Iterator<Item = P<'_>> {
    pair.into_inner().filter(|p| !is_keyword(p.as_rule()))
}

fn is_keyword(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        kw_use
            | kw_std
            | kw_input
            | kw_type
            | kw_generator
            | kw_guard
            | kw_effect
            | kw_extern
            | kw_action
            | kw_task
            | kw_method
            | kw_resource
            | kw_test
            | kw_on
            | kw_after
            | kw_for
            | kw_in
            | kw_max
            | k_parallel
            | k_default_max_tokens
            | k_default_p
            | k_default_retry
            | k_default_timeout
            | k_effect
            | k_escalate_to
            | k_expect
            | k_feedback
            | k_history
            | k_strategy
            | k_best_of
            | k_generate
            | k_guard
            | k_idempotent
            | k_max_depth
            | k_max_escalations
            | k_max_tokens
            | k_on_fail
            | k_ordering
            | k_p
            | k_pre
            | k_pre_guard
            | k_result
            | k_retry
            | k_role
            | k_run
            | k_subtasks
            | k_timeout
            | k_uses
            | k_with
            | k_calls
            | k_satisfies
            | k_last
    )
}

pub(in crate::syntax) struct Converter<'e, 's> {
    file: FileId,
    base: usize,
    src: &'s str,
    errors: &'e mut Vec<SyntaxError>,
}

/// The properties of each place, with the rule that parses each, for
/// explaining unknown or malformed properties.
const ACTION_PROPS: &[(&str, Rule)] = &[
    ("generate", Rule::p_generate),
    ("role", Rule::p_role),
    ("guard", Rule::p_guard),
    ("retry", Rule::p_retry),
    ("pre", Rule::p_pre),
    ("pre-guard", Rule::p_pre_guard),
    ("effect", Rule::p_effect),
    ("idempotent", Rule::p_idempotent),
    ("timeout", Rule::p_timeout),
    ("uses", Rule::p_uses),
    ("feedback", Rule::p_feedback),
    ("max-tokens", Rule::p_max_tokens),
    ("p", Rule::p_p),
    ("strategy", Rule::p_strategy),
];
const METHOD_PROPS: &[(&str, Rule)] = &[
    ("pre", Rule::m_pre),
    ("subtasks", Rule::m_subtasks),
    ("ordering", Rule::m_ordering),
    ("result", Rule::m_result),
    ("uses", Rule::m_uses),
    ("on-fail", Rule::m_on_fail),
    ("history", Rule::m_history),
];
const TEST_PROPS: &[(&str, Rule)] = &[
    ("run", Rule::t_run),
    ("with", Rule::t_with),
    ("expect", Rule::t_expect),
];
const OTHER_PROPS: &[(&str, &str)] = &[
    ("max-depth", "task (after its parameters)"),
    ("escalate-to", "subtask"),
    ("parallel", "map subtask (after `for item in list => call`)"),
    ("max-escalations", "subtask"),
    ("default-retry", "file (at the top level)"),
    ("default-timeout", "file (at the top level)"),
    ("default-p", "file (at the top level)"),
    ("default-max-tokens", "file (at the top level)"),
];

/// Remembers which properties a body has seen, to report duplicates.
#[derive(Default)]
struct Seen(Vec<(&'static str, Span)>);

impl Seen {
    fn first(&mut self, name: &'static str, span: Span) -> Result<(), (Span, &'static str)> {
        if let Some(&(_, first)) = self.0.iter().find(|(n, _)| *n == name) {
            return Err((first, name));
        }
        self.0.push((name, span));
        Ok(())
    }
}

impl<'e, 's> Converter<'e, 's> {
    pub(in crate::syntax) fn new(
        file: FileId,
        base: usize,
        errors: &'e mut Vec<SyntaxError>,
        src: &'s str,
    ) -> Self {
        Converter {
            file,
            base,
            src,
            errors,
        }
    }

    /// The pair's span without the whitespace and comments pest keeps at
    /// its end when an optional part after it did not match.
    pub(in crate::syntax) fn span(&self, pair: &P) -> Span {
        let s = pair.as_span();
        let len = if inside_string(pair.as_rule()) {
            // text, not tokens: there is nothing pest skipped
            pair.as_str().trim_end().len()
        } else {
            super::content_len(pair.as_str())
        };
        Span::new(
            self.file,
            self.base + s.start(),
            self.base + s.start() + len,
        )
    }

    /// Reports a pair this converter did not expect where it found it.
    fn unexpected(&mut self, pair: &P) {
        self.errors.push(SyntaxError::Unexpected {
            span: self.span(pair),
            expected: Vec::new(),
            found: format!("`{}` in an unexpected place", pair.as_str()),
            context: None,
        });
    }

    /// The next inner pair; a missing one is reported at `parent`.
    fn next<'i>(&mut self, inner: &mut impl Iterator<Item = P<'i>>, parent: Span) -> Option<P<'i>> {
        let next = inner.next();
        if next.is_none() {
            self.errors.push(SyntaxError::Unexpected {
                span: parent,
                expected: Vec::new(),
                found: "an incomplete construct".to_string(),
                context: None,
            });
        }
        next
    }

    fn ident(&mut self, pair: P) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    // ─── items ──────────────────────────────────────────────────────────

    pub(in crate::syntax) fn item(&mut self, pair: P) -> Option<ItemKind> {
        Some(match pair.as_rule() {
            Rule::use_item => ItemKind::Use(self.use_item(pair)?),
            Rule::input_item => ItemKind::Input(self.input_item(pair)?),
            Rule::type_item => ItemKind::Type(self.type_item(pair)?),
            Rule::generator_item => ItemKind::Generator(self.generator_item(pair)?),
            Rule::guard_item => ItemKind::Guard(self.guard_item(pair)?),
            Rule::extern_item => ItemKind::Extern(self.extern_item(pair)?),
            Rule::resource_item => ItemKind::Resource(self.resource_item(pair)?),
            Rule::default_item => ItemKind::Default(self.default_item(pair)?),
            Rule::action_item => ItemKind::Action(Box::new(self.action_item(pair)?)),
            Rule::task_item => ItemKind::Task(self.task_item(pair)?),
            Rule::test_item => ItemKind::Test(self.test_item(pair)?),
            _ => {
                self.unexpected(&pair);
                return None;
            }
        })
    }

    fn use_item(&mut self, pair: P) -> Option<Use> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let target = inner.next();
        let Some(target) = target else {
            self.errors.push(SyntaxError::Unexpected {
                span,
                expected: vec!["`std.{…}` or a file path string"],
                found: "nothing".into(),
                context: None,
            });
            return None;
        };
        match target.as_rule() {
            Rule::use_std => Some(Use::Std(
                target
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::ident)
                    .map(|p| self.ident(p))
                    .collect(),
            )),
            Rule::string => Some(Use::File(self.string(target))),
            _ => {
                self.unexpected(&target);
                None
            }
        }
    }

    fn input_item(&mut self, pair: P) -> Option<Input> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let ty = self.next(&mut inner, span)?;
        let ty = self.type_expr(ty)?;
        let default = match inner.next() {
            Some(p) => Some(self.expr(p)?),
            None => None,
        };
        Some(Input { name, ty, default })
    }

    fn type_item(&mut self, pair: P) -> Option<TypeDef> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let ty = self.next(&mut inner, span)?;
        let ty = self.type_expr(ty)?;
        Some(TypeDef { name, ty })
    }

    fn generator_item(&mut self, pair: P) -> Option<GeneratorDef> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let kind = self.next(&mut inner, span)?;
        let kind = self.call(kind)?;
        Some(GeneratorDef { name, kind })
    }

    fn guard_item(&mut self, pair: P) -> Option<GuardDef> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let mut params = Vec::new();
        let mut subject = None;
        let mut body = None;
        for p in inner {
            match p.as_rule() {
                Rule::params => params = self.params(p),
                Rule::subject => subject = self.subject(p),
                Rule::gexpr => body = self.gexpr(p),
                _ => self.unexpected(&p),
            }
        }
        Some(GuardDef {
            name,
            params,
            subject,
            body: body?,
        })
    }

    fn subject(&mut self, pair: P) -> Option<TypeExpr> {
        let ty = kids(pair).find(|p| p.as_rule() == Rule::type_expr)?;
        self.type_expr(ty)
    }

    fn extern_item(&mut self, pair: P) -> Option<Extern> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let decl = self.next(&mut inner, span)?;
        let kind = match decl.as_rule() {
            Rule::extern_guard => ExternKind::Guard,
            Rule::extern_generator => ExternKind::Generator,
            Rule::extern_effect => ExternKind::Effect,
            _ => {
                self.unexpected(&decl);
                return None;
            }
        };
        let mut inner = kids(decl);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let mut params = Vec::new();
        let mut subject = None;
        for p in inner {
            match p.as_rule() {
                Rule::params => params = self.params(p),
                Rule::subject => subject = self.subject(p),
                _ => self.unexpected(&p),
            }
        }
        Some(Extern {
            kind,
            name,
            params,
            subject,
        })
    }

    fn resource_item(&mut self, pair: P) -> Option<Resource> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let size = self.next(&mut inner, span)?;
        let size = self.int(size)?;
        self.at_least(size, 1, "resource size", "a pool size of at least 1");
        // `k_shared` is not a keyword `kids` drops: its span is the flag
        let shared = inner.next().map(|p| self.span(&p));
        Some(Resource { name, size, shared })
    }

    fn default_item(&mut self, pair: P) -> Option<Default> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let which = self.next(&mut inner, span)?;
        let rule = which.as_rule();
        let value = kids(which).next()?;
        Some(match rule {
            Rule::default_retry => Default::Retry(self.int(value)?),
            Rule::default_timeout => {
                let d = self.duration(value)?;
                self.positive_duration(d, ":default-timeout");
                Default::Timeout(d)
            }
            Rule::default_p => Default::P(self.probability(value, ":default-p")?),
            Rule::default_max_tokens => {
                let n = self.int(value)?;
                self.at_least(n, 1, ":default-max-tokens", "a token count of at least 1");
                Default::MaxTokens(n)
            }
            _ => {
                self.unexpected(&value);
                return None;
            }
        })
    }

    fn params(&mut self, pair: P) -> Vec<Param> {
        kids(pair)
            .filter_map(|p| {
                let span = self.span(&p);
                let mut inner = kids(p);
                let name = self.next(&mut inner, span)?;
                let name = self.ident(name);
                let ty = self.next(&mut inner, span)?;
                let ty = self.type_expr(ty)?;
                let default = match inner.next() {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                };
                Some(Param {
                    name,
                    ty,
                    default,
                    span,
                })
            })
            .collect()
    }

    // ─── types ──────────────────────────────────────────────────────────

    fn type_expr(&mut self, pair: P) -> Option<TypeExpr> {
        let span = self.span(&pair);
        let atoms: Vec<P> = kids(pair).collect();
        if atoms.len() == 1 {
            let atom = atoms.into_iter().next()?;
            return self.type_atom(atom);
        }
        let mut tags = Vec::new();
        for atom in atoms {
            let atom_span = self.span(&atom);
            let ty = self.type_atom(atom)?;
            match ty {
                TypeExpr::Named {
                    name, arg: None, ..
                } => tags.push(name),
                _ => {
                    self.errors.push(SyntaxError::InvalidTypeSyntax {
                        span: atom_span,
                        enum_span: span,
                    });
                    return None;
                }
            }
        }
        Some(TypeExpr::Enum(tags, span))
    }

    fn type_atom(&mut self, pair: P) -> Option<TypeExpr> {
        let span = self.span(&pair);
        let inner = self.next(&mut kids(pair), span)?;
        let span = self.span(&inner);
        match inner.as_rule() {
            Rule::named_type => {
                let mut parts = kids(inner);
                let name = self.next(&mut parts, span)?;
                let name = self.ident(name);
                let arg = match parts.next() {
                    Some(a) => Some(Box::new(self.type_expr(a)?)),
                    None => None,
                };
                Some(TypeExpr::Named { name, arg, span })
            }
            Rule::list_type => {
                let mut parts = kids(inner);
                let elem = self.next(&mut parts, span)?;
                let elem = Box::new(self.type_expr(elem)?);
                match parts.next() {
                    Some(max) => Some(TypeExpr::BoundedList {
                        elem,
                        max: self.int(max)?,
                        span,
                    }),
                    None => Some(TypeExpr::List(elem, span)),
                }
            }
            Rule::record_type => {
                let mut fields = Vec::new();
                for f in kids(inner) {
                    let fspan = self.span(&f);
                    let mut parts = kids(f);
                    let name = self.next(&mut parts, fspan)?;
                    let name = self.ident(name);
                    let ty = self.next(&mut parts, fspan)?;
                    let ty = self.type_expr(ty)?;
                    fields.push(Field { name, ty });
                }
                Some(TypeExpr::Record(fields, span))
            }
            _ => {
                self.unexpected(&inner);
                None
            }
        }
    }

    // ─── actions ────────────────────────────────────────────────────────

    fn action_item(&mut self, pair: P) -> Option<Action> {
        let span = self.span(&pair);
        let body_end = Span::new(self.file, span.end as usize - 1, span.end as usize);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let params = self.next(&mut inner, span)?;
        let params = self.params(params);
        let output = self.next(&mut inner, span)?;
        let output = self.type_expr(output)?;
        let mut props = ActionProps::default();
        let mut seen = Seen::default();
        let mut unknown = false;
        for p in inner {
            let pspan = self.span(&p);
            let rule = p.as_rule();
            if !self.known_prop(&p, "action", ACTION_PROPS, &mut seen, &mut unknown) {
                continue;
            }
            let mut values = kids(p);
            let value = values.next();
            match (rule, value) {
                (Rule::p_generate, Some(gen)) => {
                    let generator = self.call(gen);
                    let prompt = values.next().map(|s| self.string(s));
                    if let (Some(generator), Some(prompt)) = (generator, prompt) {
                        props.generate = Some(Generate {
                            generator,
                            prompt,
                            span: pspan,
                        });
                    }
                }
                (Rule::p_role, Some(v)) => props.role = Some(self.string(v)),
                (Rule::p_guard, Some(v)) => props.guard = self.gexpr(v),
                (Rule::p_pre, Some(v)) => props.pre = self.gexpr(v),
                (Rule::p_pre_guard, Some(v)) => props.pre_guard = self.gexpr(v),
                (Rule::p_retry, Some(v)) => props.retry = self.int(v),
                (Rule::p_effect, Some(v)) => props.effect = self.call(v),
                (Rule::p_idempotent, _) => props.idempotent = Some(pspan),
                (Rule::p_timeout, Some(v)) => {
                    props.timeout = self.duration(v);
                    if let Some(d) = props.timeout {
                        self.positive_duration(d, ":timeout");
                    }
                }
                (Rule::p_uses, Some(v)) => props.uses = self.uses(v),
                (Rule::p_feedback, Some(v)) => props.feedback = self.feedback(v),
                (Rule::p_max_tokens, Some(v)) => {
                    props.max_tokens = self.int(v);
                    if let Some(n) = props.max_tokens {
                        self.at_least(n, 1, ":max-tokens", "a token count of at least 1");
                    }
                }
                (Rule::p_p, Some(v)) => props.p = self.probability(v, ":p"),
                (Rule::p_strategy, Some(v)) => props.strategy = self.strategy(v),
                _ => {}
            }
        }
        if !unknown {
            let missing = |prop: &'static str, hint: &'static str| SyntaxError::MissingProperty {
                span: name.span,
                item: name.name.clone(),
                place: "action",
                property: prop,
                hint,
            };
            if seen.0.iter().all(|(n, _)| *n != "generate") {
                self.errors.push(missing(
                    ":generate",
                    "add `:generate GENERATOR \"prompt\"`: an action pair needs a generator",
                ));
            }
            if seen.0.iter().all(|(n, _)| *n != "guard") {
                self.errors.push(missing(
                    ":guard",
                    "add `:guard EXPR`: nothing enters the workflow unchecked (use `:guard true` to accept anything)",
                ));
            }
        }
        Some(Action {
            name,
            params,
            output,
            props,
            body_span: body_end,
        })
    }

    /// Whether property `p` of a `place` whose properties are `props` is
    /// one to read; else it is reported: a property the place does not
    /// have (`unknown` is set), one out of place, or one given twice
    /// (`seen` keeps the first of each).
    fn known_prop(
        &mut self,
        p: &P,
        place: &'static str,
        props: &[(&'static str, Rule)],
        seen: &mut Seen,
        unknown: &mut bool,
    ) -> bool {
        let span = self.span(p);
        let rule = p.as_rule();
        if rule == Rule::unknown_prop {
            *unknown = true;
            self.unknown_prop(p.clone(), place, props);
            return false;
        }
        let Some(name) = props.iter().find(|(_, r)| *r == rule).map(|(n, _)| *n) else {
            self.unexpected(p);
            return false;
        };
        if let Err((first, name)) = seen.first(name, span) {
            self.errors.push(SyntaxError::DuplicateProperty {
                span,
                first,
                name: prop_label(name),
            });
            return false;
        }
        true
    }

    fn unknown_prop(&mut self, pair: P, place: &'static str, props: &[(&'static str, Rule)]) {
        let span = self.span(&pair);
        let Some(name_pair) = kids(pair).next() else {
            return;
        };
        let name = name_pair.as_str();
        let name_span = Span::new(
            self.file,
            span.start as usize,
            self.span(&name_pair).end as usize,
        );
        if let Some((_, rule)) = props.iter().find(|(n, _)| *n == name) {
            // a known property whose value did not parse: say where
            let explained = explain_property(self.file, self.src, span.start as usize, *rule);
            self.errors
                .push(explained.unwrap_or(SyntaxError::Unexpected {
                    span,
                    expected: Vec::new(),
                    found: format!("a malformed `:{name}`"),
                    context: None,
                }));
            return;
        }
        let belongs_to = [
            ("action", ACTION_PROPS),
            ("method", METHOD_PROPS),
            ("test", TEST_PROPS),
        ]
        .iter()
        .find(|(_, list)| list.iter().any(|(n, _)| *n == name))
        .map(|(owner, _)| *owner)
        .or_else(|| {
            OTHER_PROPS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, o)| *o)
        });
        let suggestion = if belongs_to.is_some() {
            None
        } else {
            crate::diagnostics::suggest::closest(name, props.iter().map(|(n, _)| *n))
                .or_else(|| {
                    // short names: two edits, as before
                    props
                        .iter()
                        .map(|(n, _)| (*n, edit_distance(n, name)))
                        .filter(|&(n, d)| d <= 2 && d < n.len())
                        .min_by_key(|&(_, d)| d)
                        .map(|(n, _)| n)
                })
                .map(prop_label)
        };
        self.errors.push(SyntaxError::UnknownProperty {
            span: name_span,
            name: format!(":{name}"),
            place,
            belongs_to,
            suggestion,
        });
    }

    fn uses(&mut self, pair: P) -> Vec<ResourceUse> {
        let mut out = Vec::new();
        for r in kids(pair) {
            let span = self.span(&r);
            let mut inner = kids(r);
            let Some(name) = self.next(&mut inner, span) else {
                continue;
            };
            let name = self.ident(name);
            let amount = match inner.next() {
                Some(n) => match self.int(n) {
                    Some(a) => a,
                    None => continue,
                },
                None => Spanned {
                    value: 1,
                    span: name.span,
                },
            };
            self.at_least(amount, 1, ":uses", "an amount of at least 1, as in `gpu*2`");
            out.push(ResourceUse { name, amount });
        }
        out
    }

    fn strategy(&mut self, pair: P) -> Option<Spanned<Strategy>> {
        let span = self.span(&pair);
        let inner = self.next(&mut kids(pair), span)?;
        let value = match inner.as_rule() {
            Rule::strategy_best_of => {
                let n = kids(inner).find(|p| p.as_rule() == Rule::number)?;
                let n = self.int(n)?;
                if !(1..=MAX_BEST_OF).contains(&n.value) {
                    self.errors.push(SyntaxError::InvalidValue {
                        span: n.span,
                        property: ":strategy",
                        allowed: "`best-of(N)` with N from 1 to 16",
                    });
                    return None;
                }
                Strategy::BestOf(n.value)
            }
            _ => match inner.as_str() {
                "repair" => Strategy::Repair,
                "resample" => Strategy::Resample,
                _ => {
                    self.errors.push(SyntaxError::InvalidValue {
                        span,
                        property: ":strategy",
                        allowed: "`repair`, `resample` or `best-of(N)`",
                    });
                    return None;
                }
            },
        };
        Some(Spanned { value, span })
    }

    fn feedback(&mut self, pair: P) -> Option<Spanned<FeedbackPolicy>> {
        let span = self.span(&pair);
        let inner = self.next(&mut kids(pair), span)?;
        let value = match inner.as_rule() {
            Rule::feedback_last_n => {
                let n = kids(inner).next()?;
                let n = self.int(n)?;
                if !self.at_least(
                    n,
                    1,
                    ":feedback",
                    "`last`, `all` or `last(N)` with N at least 1",
                ) {
                    return None;
                }
                FeedbackPolicy::LastN(n.value)
            }
            _ => match inner.as_str() {
                "last" => FeedbackPolicy::Last,
                "all" => FeedbackPolicy::All,
                _ => {
                    self.errors.push(SyntaxError::InvalidValue {
                        span,
                        property: ":feedback",
                        allowed: "`last`, `all` or `last(N)`",
                    });
                    return None;
                }
            },
        };
        Some(Spanned { value, span })
    }

    // ─── tasks ──────────────────────────────────────────────────────────

    fn task_item(&mut self, pair: P) -> Option<Task> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.ident(name);
        let params = self.next(&mut inner, span)?;
        let params = self.params(params);
        let mut task = Task {
            name,
            params,
            output: None,
            max_depth: None,
            methods: Vec::new(),
        };
        for p in inner {
            match p.as_rule() {
                Rule::type_expr => task.output = self.type_expr(p),
                Rule::max_depth => {
                    let Some(v) = kids(p).next() else {
                        continue;
                    };
                    task.max_depth = self.int(v);
                    if let Some(d) = task.max_depth {
                        self.at_least(d, 1, ":max-depth", "a depth of at least 1");
                    }
                }
                Rule::method => {
                    if let Some(m) = self.method(p) {
                        task.methods.push(m);
                    }
                }
                _ => self.unexpected(&p),
            }
        }
        Some(task)
    }

    fn method(&mut self, pair: P) -> Option<Method> {
        let span = self.span(&pair);
        let mut inner = kids(pair).peekable();
        let mut doc = Vec::new();
        while inner.peek().is_some_and(|p| p.as_rule() == Rule::doc_line) {
            let line = inner.next()?;
            let text = line.as_str().trim_start_matches('/');
            doc.push(text.strip_prefix(' ').unwrap_or(text).to_string());
        }
        let name = inner.next()?;
        let name = self.ident(name);
        let mut method = Method {
            doc: (!doc.is_empty()).then(|| doc.join("\n")),
            name,
            pre: None,
            subtasks: None,
            ordering: None,
            result: None,
            result_fields: Vec::new(),
            uses: Vec::new(),
            on_fail: None,
            history: None,
            span,
        };
        let mut seen = Seen::default();
        let mut unknown = false;
        for p in inner {
            let pspan = self.span(&p);
            let rule = p.as_rule();
            if !self.known_prop(&p, "method", METHOD_PROPS, &mut seen, &mut unknown) {
                continue;
            }
            match rule {
                Rule::m_subtasks => {
                    let subtasks = kids(p).filter_map(|s| self.subtask(s)).collect();
                    method.subtasks = Some(Spanned {
                        value: subtasks,
                        span: pspan,
                    });
                }
                Rule::m_pre => method.pre = kids(p).next().and_then(|g| self.gexpr(g)),
                Rule::m_ordering => method.ordering = kids(p).next().and_then(|o| self.ordering(o)),
                Rule::m_result => {
                    let Some(r) = kids(p).next() else {
                        continue;
                    };
                    let mut path = match r.as_rule() {
                        Rule::path => self.path(r),
                        _ => vec![self.ident(r)],
                    }
                    .into_iter();
                    method.result = path.next();
                    method.result_fields = path.collect();
                }
                Rule::m_uses => {
                    method.uses = kids(p).next().map(|u| self.uses(u)).unwrap_or_default()
                }
                Rule::m_on_fail => {
                    let Some(v) = kids(p).next() else {
                        continue;
                    };
                    let vspan = self.span(&v);
                    let value = match v.as_str() {
                        "cancel" => OnFail::Cancel,
                        "continue" => OnFail::Continue,
                        _ => {
                            self.errors.push(SyntaxError::InvalidValue {
                                span: vspan,
                                property: ":on-fail",
                                allowed: "`cancel` or `continue`",
                            });
                            continue;
                        }
                    };
                    method.on_fail = Some(Spanned { value, span: vspan });
                }
                Rule::m_history => {
                    let Some(v) = kids(p).next() else {
                        continue;
                    };
                    let vspan = self.span(&v);
                    let value = match v.as_str() {
                        "keep" => History::Keep,
                        "fresh" => History::Fresh,
                        _ => {
                            self.errors.push(SyntaxError::InvalidValue {
                                span: vspan,
                                property: ":history",
                                allowed: "`keep` or `fresh`",
                            });
                            continue;
                        }
                    };
                    method.history = Some(Spanned { value, span: vspan });
                }
                _ => self.unexpected(&p),
            }
        }
        // a method without subtasks returns a value it already has
        if !unknown && method.subtasks.is_none() && method.result.is_none() {
            self.errors.push(SyntaxError::MissingProperty {
                span: method.name.span,
                item: method.name.name.clone(),
                place: "method",
                property: ":subtasks",
                hint: "add `:subtasks (label: action_or_task(args), …)`",
            });
        }
        Some(method)
    }

    fn subtask(&mut self, pair: P) -> Option<Subtask> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let label = self.next(&mut inner, span)?;
        let label = self.ident(label);
        let call = self.next(&mut inner, span)?;
        let (call, each) = if call.as_rule() == Rule::for_each {
            let (call, each) = self.for_each(call)?;
            (call, Some(Box::new(each)))
        } else {
            (self.call(call)?, None)
        };
        let escalation = match inner.next() {
            Some(e) => {
                let espan = self.span(&e);
                let mut parts = kids(e);
                let target = self.next(&mut parts, espan)?;
                let target = self.ident(target);
                let after = self.next(&mut parts, espan)?;
                let after = self.int(after)?;
                self.at_least(
                    after,
                    1,
                    "after",
                    "a number of failed attempts of at least 1",
                );
                let max = match parts.next() {
                    Some(m) => self.int(m),
                    None => None,
                };
                Some(Escalation {
                    target,
                    after,
                    max,
                    span: espan,
                })
            }
            None => None,
        };
        Some(Subtask {
            label,
            call,
            each,
            escalation,
            span,
        })
    }

    /// `for item in p.items => call :parallel K`
    fn for_each(&mut self, pair: P) -> Option<(Call, ForEach)> {
        let span = self.span(&pair);
        let mut parts = kids(pair);
        let item = self.next(&mut parts, span)?;
        let item = self.ident(item);
        let path = self.next(&mut parts, span)?;
        let source: Vec<Ident> = kids(path).map(|p| self.ident(p)).collect();
        let call = self.next(&mut parts, span)?;
        let call = self.call(call)?;
        let parallel = match parts.next() {
            Some(p) => {
                let pspan = self.span(&p);
                let n = self.next(&mut kids(p), pspan)?;
                let n = self.int(n)?;
                if !self.at_least(
                    n,
                    1,
                    "parallel",
                    "a number of items at a time of at least 1",
                ) {
                    return None;
                }
                Some(n)
            }
            None => None,
        };
        Some((
            call,
            ForEach {
                item,
                source,
                parallel,
                span,
            },
        ))
    }

    fn ordering(&mut self, pair: P) -> Option<Ordering> {
        let inner = kids(pair).next()?;
        match inner.as_rule() {
            Rule::ident => Some(Ordering::Label(self.ident(inner))),
            Rule::ord_group => self.ord_group(inner),
            _ => {
                self.unexpected(&inner);
                None
            }
        }
    }

    fn ord_group(&mut self, pair: P) -> Option<Ordering> {
        let span = self.span(&pair);
        let mut elems: Vec<Vec<Ident>> = Vec::new();
        let mut nested: Vec<Ordering> = Vec::new();
        let mut seps: Vec<(&'static str, Span)> = Vec::new();
        let mut items: Vec<Ordering> = Vec::new();
        for p in kids(pair) {
            match p.as_rule() {
                Rule::ord_sep => {
                    let op = match p.as_str() {
                        ";" => ";",
                        "||" => "||",
                        _ => ",",
                    };
                    seps.push((op, self.span(&p)));
                }
                Rule::ord_elem => {
                    let espan = self.span(&p);
                    let parts: Vec<P> = kids(p).collect();
                    if parts.len() == 1 && parts[0].as_rule() == Rule::ord_group {
                        let g = self.ord_group(parts.into_iter().next()?)?;
                        nested.push(g.clone());
                        items.push(g);
                    } else {
                        let chain: Vec<Ident> = parts.into_iter().map(|i| self.ident(i)).collect();
                        if chain.len() == 1 {
                            items.push(Ordering::Label(chain[0].clone()));
                        } else if chain.is_empty() {
                            self.errors.push(SyntaxError::Unexpected {
                                span: espan,
                                expected: vec!["a label"],
                                found: "nothing".into(),
                                context: None,
                            });
                            return None;
                        }
                        elems.push(chain);
                    }
                }
                _ => self.unexpected(&p),
            }
        }
        let has_chain = elems.iter().any(|c| c.len() > 1);
        if has_chain {
            // a partial order: chains separated by commas, no nested groups
            if let Some(&(op, op_span)) = seps.iter().find(|(op, _)| *op != ",") {
                let first = elems
                    .iter()
                    .find(|c| c.len() > 1)
                    .map(|c| c[0].span.to(c[c.len() - 1].span))
                    .unwrap_or(span);
                self.errors.push(SyntaxError::MixedOrdering {
                    group: span,
                    first: ("<", first),
                    second: (op, op_span),
                });
                return None;
            }
            if let Some(g) = nested.first() {
                self.errors.push(SyntaxError::MixedOrdering {
                    group: span,
                    first: ("<", span),
                    second: ("( … )", g.span()),
                });
                return None;
            }
            return Some(Ordering::Partial(elems, span));
        }
        if items.len() == 1 {
            return items.pop();
        }
        let first = seps[0];
        if let Some(&second) = seps.iter().find(|(op, _)| *op != first.0) {
            self.errors.push(SyntaxError::MixedOrdering {
                group: span,
                first,
                second,
            });
            return None;
        }
        Some(match first.0 {
            ";" => Ordering::Seq(items, span),
            "||" => Ordering::Par(items, span),
            _ => {
                if !nested.is_empty() {
                    self.errors.push(SyntaxError::MixedOrdering {
                        group: span,
                        first: (",", first.1),
                        second: ("( … )", nested[0].span()),
                    });
                    return None;
                }
                Ordering::Partial(elems, span)
            }
        })
    }

    // ─── tests ──────────────────────────────────────────────────────────

    fn test_item(&mut self, pair: P) -> Option<Test> {
        let span = self.span(&pair);
        let body_span = Span::new(self.file, span.end as usize - 1, span.end as usize);
        let mut inner = kids(pair);
        let name = self.next(&mut inner, span)?;
        let name = self.string(name);
        let mut test = Test {
            name,
            run: None,
            with: None,
            expect: Vec::new(),
            body_span,
        };
        let mut seen = Seen::default();
        let mut unknown = false;
        for p in inner {
            let rule = p.as_rule();
            if !self.known_prop(&p, "test", TEST_PROPS, &mut seen, &mut unknown) {
                continue;
            }
            match rule {
                Rule::t_run => test.run = kids(p).next().and_then(|c| self.call(c)),
                Rule::t_with => test.with = kids(p).next().and_then(|c| self.call(c)),
                Rule::t_expect => {
                    for e in kids(p) {
                        if let Some(e) = self.expectation(e) {
                            test.expect.push(e);
                        }
                    }
                }
                _ => self.unexpected(&p),
            }
        }
        if !unknown {
            for (prop, hint) in [
                (
                    ":run",
                    "add `:run TASK(args)`: the task or action the test runs",
                ),
                (
                    ":with",
                    "add `:with replay(\"fixture.jsonl\")`: the generator the test uses",
                ),
                (
                    ":expect",
                    "add `:expect success` (or `failure`, `calls <= N`, `satisfies GUARD`)",
                ),
            ] {
                if seen.0.iter().all(|(n, _)| *n != &prop[1..]) {
                    self.errors.push(SyntaxError::MissingProperty {
                        span: test.name.span,
                        item: test.name.template(),
                        place: "test",
                        property: prop,
                        hint,
                    });
                }
            }
        }
        Some(test)
    }

    fn expectation(&mut self, pair: P) -> Option<Expectation> {
        let span = self.span(&pair);
        let inner = self.next(&mut kids(pair), span)?;
        match inner.as_rule() {
            Rule::outcome => match inner.as_str() {
                "success" => Some(Expectation::Success(span)),
                "failure" => Some(Expectation::Failure(span)),
                _ => {
                    self.errors.push(SyntaxError::InvalidValue {
                        span,
                        property: ":expect",
                        allowed: "`success`, `failure`, `calls <= N` or `satisfies GUARD`",
                    });
                    None
                }
            },
            Rule::calls_bound => {
                let mut parts = kids(inner);
                let op = self.next(&mut parts, span)?;
                let op = match op.as_str() {
                    "<=" => CmpOp::Le,
                    "<" => CmpOp::Lt,
                    "==" => CmpOp::Eq,
                    ">=" => CmpOp::Ge,
                    _ => CmpOp::Gt,
                };
                let value = self.next(&mut parts, span)?;
                let value = self.int(value)?;
                Some(Expectation::Calls { op, value, span })
            }
            Rule::satisfies => {
                let g = self.next(&mut kids(inner), span)?;
                Some(Expectation::Satisfies(self.gexpr(g)?, span))
            }
            _ => {
                self.unexpected(&inner);
                None
            }
        }
    }

    // ─── guard expressions ──────────────────────────────────────────────

    fn gexpr(&mut self, pair: P) -> Option<GuardExpr> {
        let span = self.span(&pair);
        let mut terms = Vec::new();
        for p in kids(pair) {
            terms.push(self.gand(p)?);
        }
        if terms.len() == 1 {
            return terms.pop();
        }
        Some(GuardExpr::Or(terms, span))
    }

    fn gand(&mut self, pair: P) -> Option<GuardExpr> {
        let span = self.span(&pair);
        let mut terms = Vec::new();
        for p in kids(pair) {
            terms.push(self.gnot(p)?);
        }
        if terms.len() == 1 {
            return terms.pop();
        }
        Some(GuardExpr::And(terms, span))
    }

    fn gnot(&mut self, pair: P) -> Option<GuardExpr> {
        let mut nots = Vec::new();
        let mut atom = None;
        for p in kids(pair) {
            match p.as_rule() {
                Rule::not_op => nots.push(self.span(&p)),
                _ => atom = Some(self.gatom(p)?),
            }
        }
        let mut expr = atom?;
        while let Some(not) = nots.pop() {
            let span = not.to(expr.span());
            expr = GuardExpr::Not(Box::new(expr), span);
        }
        Some(expr)
    }

    fn gatom(&mut self, pair: P) -> Option<GuardExpr> {
        let span = self.span(&pair);
        let inner = self.next(&mut kids(pair), span)?;
        match inner.as_rule() {
            Rule::gexpr => self.gexpr(inner),
            Rule::boolean => Some(GuardExpr::Bool(inner.as_str() == "true", span)),
            Rule::call => Some(GuardExpr::Call(self.call(inner)?)),
            Rule::path => Some(GuardExpr::Path(self.path(inner), span)),
            Rule::compare => {
                let mut parts = kids(inner);
                let lhs = self.next(&mut parts, span)?;
                let lhs = self.term(lhs)?;
                let op = self.next(&mut parts, span)?;
                let op = Spanned {
                    value: PredOp::parse(op.as_str())?,
                    span: self.span(&op),
                };
                let rhs = self.next(&mut parts, span)?;
                let rhs = self.term(rhs)?;
                Some(GuardExpr::Compare(Box::new(Compare { lhs, op, rhs, span })))
            }
            Rule::combinator => {
                let mut parts = kids(inner);
                let name = self.next(&mut parts, span)?;
                let Some(comb) = Combinator::from_name(name.as_str()) else {
                    self.unexpected(&name);
                    return None;
                };
                let mut args = Vec::new();
                for g in parts {
                    args.push(self.gexpr(g)?);
                }
                Some(GuardExpr::Combinator(comb, args, span))
            }
            _ => {
                self.unexpected(&inner);
                None
            }
        }
    }

    /// One side of a comparison.
    fn term(&mut self, pair: P) -> Option<Term> {
        let span = self.span(&pair);
        let inner = self.next(&mut kids(pair), span)?;
        if inner.as_rule() == Rule::len_term {
            let lspan = self.span(&inner);
            let arg = kids(inner).find(|p| p.as_rule() != Rule::len_name)?;
            return Some(Term::Len(self.value_expr(arg), lspan));
        }
        match inner.as_rule() {
            Rule::path | Rule::ident => Some(Term::Expr(self.value_expr(inner))),
            // the same literals as in arguments
            _ => self.literal(inner).map(Term::Expr),
        }
    }

    /// A `path` or an `ident` as a value: `p.items` or a bare name.
    fn value_expr(&mut self, pair: P) -> Expr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::path => Expr::Path(self.path(pair), span),
            _ => Expr::Call(Call {
                callee: self.ident(pair),
                args: None,
                span,
            }),
        }
    }

    /// `a.b.c` as its names.
    fn path(&mut self, pair: P) -> Vec<Ident> {
        kids(pair).map(|i| self.ident(i)).collect()
    }

    // ─── calls and values ───────────────────────────────────────────────

    fn call(&mut self, pair: P) -> Option<Call> {
        let span = self.span(&pair);
        let mut inner = kids(pair);
        let callee = self.next(&mut inner, span)?;
        let callee = self.ident(callee);
        let args = match inner.next() {
            Some(a) => {
                let mut args = Vec::new();
                for arg in kids(a) {
                    let aspan = self.span(&arg);
                    let parts: Vec<P> = kids(arg).collect();
                    let (name, value) = match parts.len() {
                        1 => (None, parts.into_iter().next()?),
                        2 => {
                            let mut it = parts.into_iter();
                            let n = it.next()?;
                            (Some(self.ident(n)), it.next()?)
                        }
                        _ => return None,
                    };
                    let value = self.expr(value)?;
                    args.push(Arg {
                        name,
                        value,
                        span: aspan,
                    });
                }
                Some(args)
            }
            None => None,
        };
        Some(Call { callee, args, span })
    }

    fn expr(&mut self, pair: P) -> Option<Expr> {
        let span = self.span(&pair);
        let inner = self.next(&mut kids(pair), span)?;
        let span = self.span(&inner);
        match inner.as_rule() {
            Rule::list => {
                let mut items = Vec::new();
                for e in kids(inner) {
                    items.push(self.expr(e)?);
                }
                Some(Expr::List(items, span))
            }
            Rule::map => {
                let mut entries = Vec::new();
                for entry in kids(inner) {
                    let entry_span = self.span(&entry);
                    let mut parts = kids(entry);
                    let key = self.next(&mut parts, entry_span)?;
                    let key = self.string(key);
                    let value = self.next(&mut parts, entry_span)?;
                    let value = self.expr(value)?;
                    entries.push(MapEntry {
                        key,
                        value,
                        span: entry_span,
                    });
                }
                Some(Expr::Map(entries, span))
            }
            Rule::call => Some(Expr::Call(self.call(inner)?)),
            Rule::path => Some(Expr::Path(self.path(inner), span)),
            Rule::code_lit => {
                let mut parts = inner.into_inner();
                let lang = self.next(&mut parts, span)?;
                let lang = self.ident(lang);
                let body = self.next(&mut parts, span)?;
                let triple = body.as_rule() == Rule::code_triple;
                let text = super::strings::code_text(body.as_str(), triple);
                Some(Expr::Code(CodeLit { lang, text, span }))
            }
            _ => self.literal(inner),
        }
    }

    /// A string, number or boolean literal.
    fn literal(&mut self, inner: P) -> Option<Expr> {
        let span = self.span(&inner);
        match inner.as_rule() {
            Rule::string => Some(Expr::String(self.string(inner))),
            Rule::boolean => Some(Expr::Bool(Spanned {
                value: inner.as_str() == "true",
                span,
            })),
            Rule::number => match literal::number(inner.as_str()) {
                Number::Int(value) => Some(Expr::Int(Spanned { value, span })),
                Number::Float(value) => Some(Expr::Float(Spanned { value, span })),
                Number::Duration(value) => Some(Expr::Duration(Spanned { value, span })),
                Number::Invalid => {
                    self.errors.push(SyntaxError::InvalidNumber {
                        span,
                        text: inner.as_str().to_string(),
                        wanted: NumberKind::Any,
                    });
                    None
                }
            },
            _ => {
                self.unexpected(&inner);
                None
            }
        }
    }

    fn int(&mut self, pair: P) -> Option<Spanned<u64>> {
        let span = self.span(&pair);
        match literal::number(pair.as_str()) {
            Number::Int(value) => Some(Spanned { value, span }),
            _ => {
                self.errors.push(SyntaxError::InvalidNumber {
                    span,
                    text: pair.as_str().to_string(),
                    wanted: NumberKind::Integer,
                });
                None
            }
        }
    }

    fn duration(&mut self, pair: P) -> Option<Spanned<Duration>> {
        let span = self.span(&pair);
        match literal::number(pair.as_str()) {
            Number::Duration(value) => Some(Spanned { value, span }),
            _ => {
                self.errors.push(SyntaxError::InvalidNumber {
                    span,
                    text: pair.as_str().to_string(),
                    wanted: NumberKind::Duration,
                });
                None
            }
        }
    }

    fn probability(&mut self, pair: P, property: &'static str) -> Option<Spanned<f64>> {
        let span = self.span(&pair);
        let value = match literal::number(pair.as_str()) {
            Number::Float(f) => f,
            Number::Int(i) if i <= 1 => i as f64,
            Number::Int(_) => 2.0,
            _ => {
                self.errors.push(SyntaxError::InvalidNumber {
                    span,
                    text: pair.as_str().to_string(),
                    wanted: NumberKind::Probability,
                });
                return None;
            }
        };
        if !(value > 0.0 && value <= 1.0) {
            self.errors.push(SyntaxError::InvalidValue {
                span,
                property,
                allowed: "a probability greater than 0 and at most 1",
            });
            return None;
        }
        Some(Spanned { value, span })
    }

    /// Reports `value < min`; returns whether the value is fine.
    fn at_least(
        &mut self,
        v: Spanned<u64>,
        min: u64,
        property: &'static str,
        allowed: &'static str,
    ) -> bool {
        if v.value < min {
            self.errors.push(SyntaxError::InvalidValue {
                span: v.span,
                property,
                allowed,
            });
            return false;
        }
        true
    }

    fn positive_duration(&mut self, d: Spanned<Duration>, property: &'static str) {
        if d.value.0 == 0 {
            self.errors.push(SyntaxError::InvalidValue {
                span: d.span,
                property,
                allowed: "a duration longer than zero",
            });
        }
    }

    // ─── strings ────────────────────────────────────────────────────────

    fn string(&mut self, pair: P) -> StringLit {
        let span = self.span(&pair);
        let Some(inner) = kids(pair).next() else {
            return StringLit {
                parts: Vec::new(),
                span,
            };
        };
        let triple = inner.as_rule() == Rule::triple_string;
        let quote = if triple { 3 } else { 1 };
        let mut builder = StringBuilder::new(inner.as_str(), triple);
        for p in kids(inner) {
            let pspan = self.span(&p);
            match p.as_rule() {
                Rule::plain_text | Rule::triple_text => builder.text(p.as_str()),
                Rule::escape => match literal::escape(p.as_str()) {
                    Some(c) => builder.escaped(c),
                    None => {
                        builder.nothing();
                        self.errors.push(SyntaxError::InvalidEscape {
                            span: pspan,
                            escape: p.as_str().to_string(),
                        })
                    }
                },
                Rule::interpolation => {
                    let path = kids(p).next();
                    let mut idents = Vec::new();
                    if let Some(path) = path {
                        let mut offset = self.span(&path).start as usize;
                        for seg in path.as_str().split('.') {
                            idents.push(Ident {
                                name: seg.to_string(),
                                span: Span::new(self.file, offset, offset + seg.len()),
                            });
                            offset += seg.len() + 1;
                        }
                    }
                    builder.interpolation(idents);
                }
                Rule::bad_interpolation | Rule::bad_triple_interpolation => {
                    builder.nothing();
                    self.errors.push(SyntaxError::BadInterpolation {
                        span: pspan,
                        text: p.as_str().to_string(),
                    });
                }
                Rule::plain_end | Rule::triple_end => {
                    if kids(p).next().is_some() {
                        // the `unterminated` marker
                        self.errors.push(SyntaxError::UnterminatedString {
                            span: Span::new(
                                self.file,
                                span.start as usize,
                                span.start as usize + quote,
                            ),
                            triple,
                        });
                    }
                }
                _ => self.unexpected(&p),
            }
        }
        StringLit {
            parts: builder.finish(),
            span,
        }
    }
}

/// The rules of a string literal's inside.
fn inside_string(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::plain_text
            | Rule::triple_text
            | Rule::escape
            | Rule::interpolation
            | Rule::interp_path
            | Rule::bad_interpolation
            | Rule::bad_triple_interpolation
    )
}

fn prop_label(name: &str) -> &'static str {
    // property names are a closed set; map to static labels for messages
    use crate::syntax::properties::{ACTION, METHOD, TEST};
    ACTION
        .iter()
        .chain(METHOD)
        .chain(TEST)
        .copied()
        .find(|l| &l[1..] == name)
        .unwrap_or(":property")
}
