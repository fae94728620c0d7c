//! The fast path: well-formed items read straight from the lexer's tokens.
//!
//! pest and `grammar/guardflow.pest` stay the normative grammar and the
//! only source of syntax errors. This module reads an item from the token
//! stream the lexer has already made, builds the same AST the converter
//! would, and gives up (`None`) at the first thing it does not expect: a
//! token out of place, a value the converter would reject, a duplicate or
//! missing property. The driver then parses that item with pest, which
//! explains the error. So this module only ever decides *how fast* an item
//! is read, never *whether* it is accepted or what it means; a
//! differential test holds the two paths to the same AST on the examples,
//! the test programs and generated programs.
//!
//! Each function mirrors the grammar rule of the same name; spans are the
//! exact source of what a rule matched, as the converter's are.

use super::literal::{self, Number};
use super::strings::StringBuilder;
use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::lexer::{Tok, Token};
use crate::syntax::properties;

/// Deeper nesting than this is left to pest (which reports it).
const MAX_NESTING: usize = 256;

pub(super) struct Fast<'a> {
    src: &'a str,
    file: FileId,
    toks: &'a [Tok],
    /// The current token.
    i: usize,
    /// The current token is a `:name` read as `:` then `name` (`a:b`),
    /// and the `:` is consumed.
    split: bool,
    /// The end of the last token consumed.
    last_end: usize,
    depth: usize,
}

/// Names a grammar `ident` accepts: keywords and booleans are names too.
fn is_name(kind: Token) -> bool {
    kind == Token::Ident || kind == Token::Bool || kind.is_keyword()
}

impl<'a> Fast<'a> {
    pub(super) fn new(src: &'a str, file: FileId, toks: &'a [Tok]) -> Self {
        Fast {
            src,
            file,
            toks,
            i: 0,
            split: false,
            last_end: 0,
            depth: 0,
        }
    }

    /// Reads the item that starts at byte `pos`: `Some(None)` for a `///`
    /// line (to attach to the next item), with where it ends; `None` leaves
    /// the item to pest.
    pub(super) fn item_at(&mut self, pos: usize) -> Option<(Option<ItemKind>, usize)> {
        self.i = self.toks.partition_point(|t| (t.start as usize) < pos);
        if self.tok()?.start as usize != pos {
            return None;
        }
        self.split = false;
        self.depth = 0;
        let parsed = self.item()?;
        Some((parsed, self.last_end))
    }

    // ─── the token cursor ───────────────────────────────────────────────

    fn tok(&self) -> Option<&'a Tok> {
        self.toks.get(self.i)
    }

    /// The current token's class (a split `:name` is its name).
    fn kind(&self) -> Option<Token> {
        let t = self.tok()?;
        if self.split {
            return Some(match self.text() {
                "true" | "false" => Token::Bool,
                _ => Token::Ident,
            });
        }
        // `best-of` is a name only as a strategy (`Fast::strategy`)
        if t.kind == Token::Ident && self.text().contains('-') {
            return Some(Token::Error);
        }
        Some(t.kind)
    }

    fn is(&self, kind: Token) -> bool {
        self.kind() == Some(kind)
    }

    /// The class of the token `n` after the current one.
    fn peek(&self, n: usize) -> Option<Token> {
        self.toks.get(self.i + n).map(|t| t.kind)
    }

    fn start(&self) -> usize {
        self.tok().map_or(self.src.len(), |t| {
            t.start as usize + usize::from(self.split)
        })
    }

    fn text(&self) -> &'a str {
        match self.tok() {
            Some(t) => &self.src[t.start as usize + usize::from(self.split)..t.end as usize],
            None => "",
        }
    }

    /// Consumes the current token; returns its start.
    fn bump(&mut self) -> usize {
        let start = self.start();
        if let Some(t) = self.tok() {
            self.last_end = t.end as usize;
        }
        self.i += 1;
        self.split = false;
        start
    }

    fn eat(&mut self, kind: Token) -> bool {
        if self.is(kind) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, kind: Token) -> Option<()> {
        self.eat(kind).then_some(())
    }

    /// A `:` before a name or a value; `a:b` lexes as a name and the
    /// property-like `:b`, which is read here as `:` then `b`.
    fn colon(&mut self) -> Option<()> {
        match self.kind()? {
            Token::Colon => {
                self.bump();
                Some(())
            }
            Token::Property if !self.split && !self.text().contains('-') => {
                self.split = true;
                Some(())
            }
            _ => None,
        }
    }

    /// A property keyword (`:retry`) as its name without the colon.
    fn property(&self) -> Option<&'a str> {
        (!self.split && self.is(Token::Property)).then(|| &self.text()[1..])
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start, end)
    }

    /// The span from `start` to the end of the last token consumed.
    fn since(&self, start: usize) -> Span {
        self.span(start, self.last_end)
    }

    fn nest(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_NESTING).then_some(())
    }

    // ─── items ──────────────────────────────────────────────────────────

    fn item(&mut self) -> Option<Option<ItemKind>> {
        let kind = match self.kind()? {
            Token::DocComment => {
                self.bump();
                return Some(None);
            }
            Token::Use => ItemKind::Use(self.use_item()?),
            Token::Input => ItemKind::Input(self.input_item()?),
            Token::Type => ItemKind::Type(self.type_item()?),
            Token::Generator => ItemKind::Generator(self.generator_item()?),
            Token::Guard => ItemKind::Guard(self.guard_item()?),
            Token::Extern => ItemKind::Extern(self.extern_item()?),
            Token::Resource => ItemKind::Resource(self.resource_item()?),
            Token::Action => ItemKind::Action(Box::new(self.action_item()?)),
            Token::Task => ItemKind::Task(self.task_item()?),
            Token::Test => ItemKind::Test(self.test_item()?),
            Token::Property => ItemKind::Default(self.default_item()?),
            _ => return None,
        };
        Some(Some(kind))
    }

    fn use_item(&mut self) -> Option<Use> {
        self.bump();
        match self.kind()? {
            Token::Std => {
                self.bump();
                self.expect(Token::Dot)?;
                self.expect(Token::LBrace)?;
                let mut names = vec![self.ident()?];
                while self.eat(Token::Comma) {
                    if self.is(Token::RBrace) {
                        break;
                    }
                    names.push(self.ident()?);
                }
                self.expect(Token::RBrace)?;
                Some(Use::Std(names))
            }
            Token::String | Token::TripleString => Some(Use::File(self.string()?)),
            _ => None,
        }
    }

    fn input_item(&mut self) -> Option<Input> {
        self.bump();
        let name = self.ident()?;
        self.colon()?;
        let ty = self.type_expr()?;
        let default = if self.eat(Token::Equals) {
            Some(self.expr()?)
        } else {
            None
        };
        Some(Input { name, ty, default })
    }

    fn type_item(&mut self) -> Option<TypeDef> {
        self.bump();
        let name = self.ident()?;
        self.expect(Token::Equals)?;
        let ty = self.type_expr()?;
        Some(TypeDef { name, ty })
    }

    fn generator_item(&mut self) -> Option<GeneratorDef> {
        self.bump();
        let name = self.ident()?;
        self.expect(Token::Equals)?;
        let kind = self.call()?;
        Some(GeneratorDef { name, kind })
    }

    fn guard_item(&mut self) -> Option<GuardDef> {
        self.bump();
        let name = self.ident()?;
        let params = if self.is(Token::LParen) {
            self.params()?
        } else {
            Vec::new()
        };
        let subject = if self.is(Token::On) {
            Some(self.subject()?)
        } else {
            None
        };
        self.expect(Token::Equals)?;
        let body = self.gexpr()?;
        Some(GuardDef {
            name,
            params,
            subject,
            body,
        })
    }

    fn subject(&mut self) -> Option<TypeExpr> {
        self.expect(Token::On)?;
        self.type_expr()
    }

    fn extern_item(&mut self) -> Option<Extern> {
        self.bump();
        let kind = match self.kind()? {
            Token::Guard => ExternKind::Guard,
            Token::Generator => ExternKind::Generator,
            Token::Effect => ExternKind::Effect,
            _ => return None,
        };
        self.bump();
        let name = self.ident()?;
        let params = if self.is(Token::LParen) {
            self.params()?
        } else {
            Vec::new()
        };
        let subject = match kind {
            ExternKind::Generator => None,
            ExternKind::Guard | ExternKind::Effect => Some(self.subject()?),
        };
        Some(Extern {
            kind,
            name,
            params,
            subject,
        })
    }

    fn resource_item(&mut self) -> Option<Resource> {
        self.bump();
        let name = self.ident()?;
        self.colon()?;
        let size = self.int_at_least(1)?;
        let shared = match self.property() {
            Some("shared") => {
                let start = self.start();
                self.bump();
                Some(self.since(start))
            }
            _ => None,
        };
        Some(Resource { name, size, shared })
    }

    fn default_item(&mut self) -> Option<Default> {
        let which = self.property()?;
        self.bump();
        Some(match which {
            "default-retry" => Default::Retry(self.int()?),
            "default-timeout" => Default::Timeout(self.positive_duration()?),
            "default-p" => Default::P(self.probability()?),
            "default-max-tokens" => Default::MaxTokens(self.int_at_least(1)?),
            _ => return None,
        })
    }

    /// Items separated by commas (a trailing one allowed) up to and
    /// including `close`; the opener is already taken.
    fn list<T>(
        &mut self,
        close: Token,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut items = Vec::new();
        while !self.is(close) {
            items.push(item(self)?);
            if !self.eat(Token::Comma) {
                break;
            }
        }
        self.expect(close)?;
        Some(items)
    }

    fn params(&mut self) -> Option<Vec<Param>> {
        self.expect(Token::LParen)?;
        self.list(Token::RParen, |p| {
            let start = p.start();
            let name = p.ident()?;
            p.colon()?;
            let ty = p.type_expr()?;
            let default = if p.eat(Token::Equals) {
                Some(p.expr()?)
            } else {
                None
            };
            Some(Param {
                name,
                ty,
                default,
                span: p.since(start),
            })
        })
    }

    // ─── types ──────────────────────────────────────────────────────────

    fn type_expr(&mut self) -> Option<TypeExpr> {
        self.nest()?;
        let start = self.start();
        let first = self.type_atom()?;
        if !self.is(Token::Pipe) {
            self.depth -= 1;
            return Some(first);
        }
        let mut tags = vec![bare_name(first)?];
        while self.eat(Token::Pipe) {
            let atom = self.type_atom()?;
            tags.push(bare_name(atom)?);
        }
        self.depth -= 1;
        Some(TypeExpr::Enum(tags, self.since(start)))
    }

    fn type_atom(&mut self) -> Option<TypeExpr> {
        let start = self.start();
        match self.kind()? {
            Token::LBracket => {
                self.bump();
                let elem = Box::new(self.type_expr()?);
                if self.eat(Token::Semicolon) {
                    self.expect(Token::Max)?;
                    let max = self.int()?;
                    self.expect(Token::RBracket)?;
                    return Some(TypeExpr::BoundedList {
                        elem,
                        max,
                        span: self.since(start),
                    });
                }
                self.expect(Token::RBracket)?;
                Some(TypeExpr::List(elem, self.since(start)))
            }
            Token::LBrace => {
                self.bump();
                let fields = self.list(Token::RBrace, |p| {
                    let name = p.ident()?;
                    p.colon()?;
                    let ty = p.type_expr()?;
                    Some(Field { name, ty })
                })?;
                Some(TypeExpr::Record(fields, self.since(start)))
            }
            _ => {
                let name = self.ident()?;
                let arg = if self.eat(Token::Less) {
                    let arg = self.type_expr()?;
                    self.expect(Token::Greater)?;
                    Some(Box::new(arg))
                } else {
                    None
                };
                Some(TypeExpr::Named {
                    name,
                    arg,
                    span: self.since(start),
                })
            }
        }
    }

    // ─── actions ────────────────────────────────────────────────────────

    fn action_item(&mut self) -> Option<Action> {
        self.bump();
        let name = self.ident()?;
        let params = self.params()?;
        self.expect(Token::Arrow)?;
        let output = self.type_expr()?;
        self.expect(Token::LBrace)?;
        let mut props = ActionProps::default();
        let mut seen: u32 = 0;
        while let Some(prop) = self.property() {
            let bit = properties::ACTION.iter().position(|p| p[1..] == *prop)?;
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            let start = self.bump();
            match prop {
                "generate" => {
                    let generator = self.call()?;
                    let prompt = self.string()?;
                    props.generate = Some(Generate {
                        generator,
                        prompt,
                        span: self.since(start),
                    });
                }
                "role" => props.role = Some(self.string()?),
                "guard" => props.guard = Some(self.gexpr()?),
                "retry" => props.retry = Some(self.int()?),
                "pre" => props.pre = Some(self.gexpr()?),
                "pre-guard" => props.pre_guard = Some(self.gexpr()?),
                "effect" => props.effect = Some(self.call()?),
                "idempotent" => props.idempotent = Some(self.since(start)),
                "timeout" => props.timeout = Some(self.positive_duration()?),
                "uses" => props.uses = self.uses()?,
                "feedback" => props.feedback = Some(self.feedback()?),
                "max-tokens" => props.max_tokens = Some(self.int_at_least(1)?),
                "p" => props.p = Some(self.probability()?),
                "strategy" => props.strategy = Some(self.strategy()?),
                _ => return None,
            }
        }
        let close = self.start();
        self.expect(Token::RBrace)?;
        if props.generate.is_none() || props.guard.is_none() {
            return None;
        }
        Some(Action {
            name,
            params,
            output,
            props,
            body_span: self.since(close),
        })
    }

    fn uses(&mut self) -> Option<Vec<ResourceUse>> {
        if !self.eat(Token::LParen) {
            return Some(vec![self.use_res()?]);
        }
        let mut uses = vec![self.use_res()?];
        while self.eat(Token::Comma) {
            if self.is(Token::RParen) {
                break;
            }
            uses.push(self.use_res()?);
        }
        self.expect(Token::RParen)?;
        Some(uses)
    }

    fn use_res(&mut self) -> Option<ResourceUse> {
        let name = self.ident()?;
        let amount = if self.eat(Token::Star) {
            self.int_at_least(1)?
        } else {
            Spanned {
                value: 1,
                span: name.span,
            }
        };
        Some(ResourceUse { name, amount })
    }

    fn strategy(&mut self) -> Option<Spanned<Strategy>> {
        let start = self.start();
        if self.tok()?.kind != Token::Ident || self.split {
            return None;
        }
        let value = match self.text() {
            "best-of" if self.peek(1) == Some(Token::LParen) => {
                self.bump();
                self.bump();
                let n = self.int_at_least(1)?;
                if n.value > MAX_BEST_OF {
                    return None;
                }
                self.expect(Token::RParen)?;
                Strategy::BestOf(n.value)
            }
            "repair" => {
                self.bump();
                Strategy::Repair
            }
            "resample" => {
                self.bump();
                Strategy::Resample
            }
            _ => return None,
        };
        Some(Spanned {
            value,
            span: self.since(start),
        })
    }

    fn feedback(&mut self) -> Option<Spanned<FeedbackPolicy>> {
        let start = self.start();
        if !is_name(self.kind()?) {
            return None;
        }
        let value = match self.text() {
            "last" if self.peek(1) == Some(Token::LParen) && !self.split => {
                self.bump();
                self.bump();
                let n = self.int_at_least(1)?;
                self.expect(Token::RParen)?;
                FeedbackPolicy::LastN(n.value)
            }
            "last" => {
                self.bump();
                FeedbackPolicy::Last
            }
            "all" => {
                self.bump();
                FeedbackPolicy::All
            }
            _ => return None,
        };
        Some(Spanned {
            value,
            span: self.since(start),
        })
    }

    // ─── tasks ──────────────────────────────────────────────────────────

    fn task_item(&mut self) -> Option<Task> {
        self.bump();
        let name = self.ident()?;
        let params = self.params()?;
        let output = if self.eat(Token::Arrow) {
            Some(self.type_expr()?)
        } else {
            None
        };
        let max_depth = if self.property() == Some("max-depth") {
            self.bump();
            Some(self.int_at_least(1)?)
        } else {
            None
        };
        self.expect(Token::LBrace)?;
        let mut methods = Vec::new();
        while self.is(Token::Method) || self.is(Token::DocComment) {
            methods.push(self.method()?);
        }
        self.expect(Token::RBrace)?;
        Some(Task {
            name,
            params,
            output,
            max_depth,
            methods,
        })
    }

    fn method(&mut self) -> Option<Method> {
        let start = self.start();
        let mut doc: Option<String> = None;
        while self.is(Token::DocComment) {
            let line = self.text().trim_start_matches('/');
            let line = line.strip_prefix(' ').unwrap_or(line);
            match &mut doc {
                Some(text) => {
                    text.push('\n');
                    text.push_str(line);
                }
                None => doc = Some(line.to_string()),
            }
            self.bump();
        }
        self.expect(Token::Method)?;
        let name = self.ident()?;
        self.expect(Token::LBrace)?;
        let mut method = Method {
            doc,
            name,
            pre: None,
            subtasks: None,
            ordering: None,
            result: None,
            result_fields: Vec::new(),
            uses: Vec::new(),
            on_fail: None,
            history: None,
            span: Span::new(self.file, start, start),
        };
        let mut seen: u32 = 0;
        while let Some(prop) = self.property() {
            let bit = properties::METHOD.iter().position(|p| p[1..] == *prop)?;
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            let pstart = self.bump();
            match prop {
                "pre" => method.pre = Some(self.gexpr()?),
                "subtasks" => {
                    self.expect(Token::LParen)?;
                    let subtasks = self.list(Token::RParen, Self::subtask)?;
                    method.subtasks = Some(Spanned {
                        value: subtasks,
                        span: self.since(pstart),
                    });
                }
                "ordering" => method.ordering = Some(self.ordering()?),
                "result" => {
                    method.result = Some(self.ident()?);
                    while self.eat(Token::Dot) {
                        method.result_fields.push(self.ident()?);
                    }
                }
                "uses" => method.uses = self.uses()?,
                "on-fail" => {
                    let value = self.ident()?;
                    let value = Spanned {
                        value: match value.name.as_str() {
                            "cancel" => OnFail::Cancel,
                            "continue" => OnFail::Continue,
                            _ => return None,
                        },
                        span: value.span,
                    };
                    method.on_fail = Some(value);
                }
                "history" => {
                    let value = self.ident()?;
                    let value = Spanned {
                        value: match value.name.as_str() {
                            "keep" => History::Keep,
                            "fresh" => History::Fresh,
                            _ => return None,
                        },
                        span: value.span,
                    };
                    method.history = Some(value);
                }
                _ => return None,
            }
        }
        self.expect(Token::RBrace)?;
        if method.subtasks.is_none() && method.result.is_none() {
            return None;
        }
        method.span = self.since(start);
        Some(method)
    }

    fn subtask(&mut self) -> Option<Subtask> {
        let start = self.start();
        let label = self.ident()?;
        self.colon()?;
        let (call, each) = if self.is(Token::For) && self.peek(1).is_some_and(is_name) {
            let (call, each) = self.for_each()?;
            (call, Some(Box::new(each)))
        } else {
            (self.call()?, None)
        };
        let escalation = if self.property() == Some("escalate-to") {
            let estart = self.bump();
            let target = self.ident()?;
            self.expect(Token::After)?;
            let after = self.int_at_least(1)?;
            let max = if self.property() == Some("max-escalations") {
                self.bump();
                Some(self.int()?)
            } else {
                None
            };
            Some(Escalation {
                target,
                after,
                max,
                span: self.since(estart),
            })
        } else {
            None
        };
        Some(Subtask {
            label,
            call,
            each,
            escalation,
            span: self.since(start),
        })
    }

    /// As the converter's `for_each`: `for item in p.items => call :parallel K`.
    fn for_each(&mut self) -> Option<(Call, ForEach)> {
        let start = self.bump();
        let item = self.ident()?;
        self.expect(Token::In)?;
        let mut source = vec![self.ident()?];
        while self.eat(Token::Dot) {
            source.push(self.ident()?);
        }
        self.expect(Token::FatArrow)?;
        let call = self.call()?;
        let parallel = if self.property() == Some("parallel") {
            self.bump();
            Some(self.int_at_least(1)?)
        } else {
            None
        };
        Some((
            call,
            ForEach {
                item,
                source,
                parallel,
                span: self.since(start),
            },
        ))
    }

    fn ordering(&mut self) -> Option<Ordering> {
        if self.is(Token::LParen) {
            self.ord_group()
        } else {
            Some(Ordering::Label(self.ident()?))
        }
    }

    /// As the converter's `ord_group`: one kind of separator per group, a
    /// partial order only of chains.
    fn ord_group(&mut self) -> Option<Ordering> {
        self.nest()?;
        let start = self.bump();
        let mut chains: Vec<Vec<Ident>> = Vec::new();
        let mut items: Vec<Ordering> = Vec::new();
        let mut nested = false;
        let mut sep: Option<Token> = None;
        loop {
            if self.is(Token::LParen) {
                let group = self.ord_group()?;
                nested = true;
                items.push(group);
            } else {
                let mut chain = vec![self.ident()?];
                while self.eat(Token::Less) {
                    chain.push(self.ident()?);
                }
                if chain.len() == 1 {
                    items.push(Ordering::Label(chain[0].clone()));
                }
                chains.push(chain);
            }
            match self.kind()? {
                k @ (Token::Semicolon | Token::Or | Token::Comma) => {
                    if sep.is_some_and(|s| s != k) {
                        return None;
                    }
                    sep = Some(k);
                    self.bump();
                }
                Token::RParen => {
                    self.bump();
                    break;
                }
                _ => return None,
            }
        }
        self.depth -= 1;
        let span = self.since(start);
        if chains.iter().any(|c| c.len() > 1) {
            if nested || sep.is_some_and(|s| s != Token::Comma) {
                return None;
            }
            return Some(Ordering::Partial(chains, span));
        }
        if items.len() == 1 {
            return items.pop();
        }
        match sep? {
            Token::Semicolon => Some(Ordering::Seq(items, span)),
            Token::Or => Some(Ordering::Par(items, span)),
            _ if nested => None,
            _ => Some(Ordering::Partial(chains, span)),
        }
    }

    // ─── tests ──────────────────────────────────────────────────────────

    fn test_item(&mut self) -> Option<Test> {
        self.bump();
        let name = self.string()?;
        self.expect(Token::LBrace)?;
        let mut test = Test {
            name,
            run: None,
            with: None,
            expect: Vec::new(),
            body_span: Span::new(self.file, 0, 0),
        };
        let mut seen: u32 = 0;
        while let Some(prop) = self.property() {
            let bit = properties::TEST.iter().position(|p| p[1..] == *prop)?;
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            self.bump();
            match prop {
                "run" => test.run = Some(self.call()?),
                "with" => test.with = Some(self.call()?),
                "expect" => {
                    test.expect.push(self.expectation()?);
                    while self.eat(Token::Comma) {
                        test.expect.push(self.expectation()?);
                    }
                }
                _ => return None,
            }
        }
        let close = self.start();
        self.expect(Token::RBrace)?;
        if seen != 0b111 {
            return None;
        }
        test.body_span = self.since(close);
        Some(test)
    }

    fn expectation(&mut self) -> Option<Expectation> {
        let start = self.start();
        if !is_name(self.kind()?) || self.split {
            return None;
        }
        match self.text() {
            "calls"
                if matches!(
                    self.peek(1),
                    Some(Token::Compare | Token::Less | Token::Greater)
                ) =>
            {
                self.bump();
                let op = match self.text() {
                    "<=" => CmpOp::Le,
                    "<" => CmpOp::Lt,
                    "==" => CmpOp::Eq,
                    ">=" => CmpOp::Ge,
                    _ => CmpOp::Gt,
                };
                self.bump();
                let value = self.int()?;
                Some(Expectation::Calls {
                    op,
                    value,
                    span: self.since(start),
                })
            }
            "satisfies" => {
                self.bump();
                let g = self.gexpr()?;
                Some(Expectation::Satisfies(g, self.since(start)))
            }
            "success" => {
                self.bump();
                Some(Expectation::Success(self.since(start)))
            }
            "failure" => {
                self.bump();
                Some(Expectation::Failure(self.since(start)))
            }
            _ => None,
        }
    }

    // ─── guard expressions ──────────────────────────────────────────────

    fn gexpr(&mut self) -> Option<GuardExpr> {
        self.nest()?;
        let start = self.start();
        let first = self.gand()?;
        if !self.is(Token::Or) {
            self.depth -= 1;
            return Some(first);
        }
        let mut terms = vec![first];
        while self.eat(Token::Or) {
            terms.push(self.gand()?);
        }
        self.depth -= 1;
        Some(GuardExpr::Or(terms, self.since(start)))
    }

    fn gand(&mut self) -> Option<GuardExpr> {
        let start = self.start();
        let first = self.gnot()?;
        if !self.is(Token::And) {
            return Some(first);
        }
        let mut terms = vec![first];
        while self.eat(Token::And) {
            terms.push(self.gnot()?);
        }
        Some(GuardExpr::And(terms, self.since(start)))
    }

    fn gnot(&mut self) -> Option<GuardExpr> {
        let mut nots = Vec::new();
        while self.is(Token::Not) {
            nots.push(self.bump());
        }
        let mut expr = self.gatom()?;
        while let Some(not) = nots.pop() {
            let span = self.span(not, expr.span().end as usize);
            expr = GuardExpr::Not(Box::new(expr), span);
        }
        Some(expr)
    }

    fn gatom(&mut self) -> Option<GuardExpr> {
        let start = self.start();
        if let Some(compare) = self.compare() {
            return Some(compare);
        }
        match self.kind()? {
            Token::LParen => {
                self.bump();
                let inner = self.gexpr()?;
                self.expect(Token::RParen)?;
                Some(inner)
            }
            Token::Bool => {
                let value = self.text() == "true";
                self.bump();
                Some(GuardExpr::Bool(value, self.since(start)))
            }
            Token::Ident
                if !self.split
                    && self.peek(1) == Some(Token::LParen)
                    && self.peek(2) != Some(Token::RParen) =>
            {
                match Combinator::from_name(self.text()) {
                    Some(comb) => {
                        self.bump();
                        self.bump();
                        let mut args = vec![self.gexpr()?];
                        while self.eat(Token::Comma) {
                            if self.is(Token::RParen) {
                                break;
                            }
                            args.push(self.gexpr()?);
                        }
                        self.expect(Token::RParen)?;
                        Some(GuardExpr::Combinator(comb, args, self.since(start)))
                    }
                    None => Some(GuardExpr::Call(self.call()?)),
                }
            }
            Token::Ident if !self.split && Combinator::from_name(self.text()).is_some() => {
                // `all()` is a call with no arguments, and `all` a name:
                // rare enough to leave to pest
                None
            }
            kind if kind != Token::Bool && self.peek(1) == Some(Token::Dot) => {
                let path = self.path()?;
                Some(GuardExpr::Path(path, self.since(start)))
            }
            _ => Some(GuardExpr::Call(self.call()?)),
        }
    }

    /// `term op term`, or `None` with the cursor where it was (the
    /// grammar's `compare`, tried first in `gatom`).
    fn compare(&mut self) -> Option<GuardExpr> {
        if self.split {
            return None;
        }
        let saved = (self.i, self.last_end, self.depth);
        let start = self.start();
        let parsed = (|| {
            let lhs = self.term()?;
            let op = match self.kind()? {
                Token::Compare | Token::Less | Token::Greater => PredOp::parse(self.text())?,
                _ => return None,
            };
            let ostart = self.bump();
            let op = Spanned {
                value: op,
                span: self.since(ostart),
            };
            let rhs = self.term()?;
            Some((lhs, op, rhs))
        })();
        match parsed {
            Some((lhs, op, rhs)) => Some(GuardExpr::Compare(Box::new(Compare {
                lhs,
                op,
                rhs,
                span: self.since(start),
            }))),
            None => {
                (self.i, self.last_end, self.depth) = saved;
                self.split = false;
                None
            }
        }
    }

    /// One side of a comparison: a literal, a name, a path or `len(…)`.
    fn term(&mut self) -> Option<Term> {
        let start = self.start();
        match self.kind()? {
            Token::String | Token::TripleString => Some(Term::Expr(Expr::String(self.string()?))),
            Token::Number => {
                let (number, span) = self.number()?;
                Some(Term::Expr(match number {
                    Number::Int(value) => Expr::Int(Spanned { value, span }),
                    Number::Float(value) => Expr::Float(Spanned { value, span }),
                    Number::Duration(value) => Expr::Duration(Spanned { value, span }),
                    Number::Invalid => return None,
                }))
            }
            Token::Bool => {
                let value = self.text() == "true";
                self.bump();
                Some(Term::Expr(Expr::Bool(Spanned {
                    value,
                    span: self.since(start),
                })))
            }
            Token::Ident if self.text() == "len" && self.peek(1) == Some(Token::LParen) => {
                self.bump();
                self.bump();
                let arg = self.value_expr()?;
                self.expect(Token::RParen)?;
                Some(Term::Len(arg, self.since(start)))
            }
            kind if is_name(kind) => Some(Term::Expr(self.value_expr()?)),
            _ => None,
        }
    }

    /// A name, or a name followed by fields, as a value.
    fn value_expr(&mut self) -> Option<Expr> {
        let start = self.start();
        if self.peek(1) == Some(Token::Dot) && !self.split {
            let path = self.path()?;
            return Some(Expr::Path(path, self.since(start)));
        }
        let callee = self.ident()?;
        Some(Expr::Call(Call {
            callee,
            args: None,
            span: self.since(start),
        }))
    }

    /// `a.b.c`: a name and at least one field.
    fn path(&mut self) -> Option<Vec<Ident>> {
        let mut path = vec![self.ident()?];
        self.expect(Token::Dot)?;
        path.push(self.ident()?);
        while self.eat(Token::Dot) {
            path.push(self.ident()?);
        }
        Some(path)
    }

    // ─── calls and values ───────────────────────────────────────────────

    fn call(&mut self) -> Option<Call> {
        let start = self.start();
        let callee = self.ident()?;
        let args = if self.is(Token::LParen) {
            Some(self.args()?)
        } else {
            None
        };
        Some(Call {
            callee,
            args,
            span: self.since(start),
        })
    }

    fn args(&mut self) -> Option<Vec<Arg>> {
        self.bump();
        self.list(Token::RParen, |p| {
            let start = p.start();
            let named = is_name(p.kind()?)
                && !p.split
                && match p.peek(1) {
                    Some(Token::Colon) => {
                        !matches!(p.peek(2), Some(Token::Colon | Token::Property))
                    }
                    Some(Token::Property) => true,
                    _ => false,
                };
            let name = if named {
                let name = p.ident()?;
                p.colon()?;
                Some(name)
            } else {
                None
            };
            let value = p.expr()?;
            Some(Arg {
                name,
                value,
                span: p.since(start),
            })
        })
    }

    fn expr(&mut self) -> Option<Expr> {
        self.nest()?;
        let start = self.start();
        let expr = match self.kind()? {
            kind if is_name(kind) && self.code_follows() => Expr::Code(self.code()?),
            Token::String | Token::TripleString => Expr::String(self.string()?),
            Token::Number => {
                let (number, span) = self.number()?;
                match number {
                    Number::Int(value) => Expr::Int(Spanned { value, span }),
                    Number::Float(value) => Expr::Float(Spanned { value, span }),
                    Number::Duration(value) => Expr::Duration(Spanned { value, span }),
                    Number::Invalid => return None,
                }
            }
            Token::Bool => {
                let value = self.text() == "true";
                self.bump();
                Expr::Bool(Spanned {
                    value,
                    span: self.since(start),
                })
            }
            Token::LBracket => {
                self.bump();
                let items = self.list(Token::RBracket, Self::expr)?;
                Expr::List(items, self.since(start))
            }
            Token::LBrace => {
                self.bump();
                let entries = self.list(Token::RBrace, |p| {
                    let start = p.start();
                    let key = p.string()?;
                    p.colon()?;
                    let value = p.expr()?;
                    Some(MapEntry {
                        key,
                        value,
                        span: p.since(start),
                    })
                })?;
                Expr::Map(entries, self.since(start))
            }
            kind if kind != Token::Bool && !self.split && self.peek(1) == Some(Token::Dot) => {
                let path = self.path()?;
                Expr::Path(path, self.since(start))
            }
            _ => Expr::Call(self.call()?),
        };
        self.depth -= 1;
        Some(expr)
    }

    /// The current name touches a string: a code literal.
    fn code_follows(&self) -> bool {
        let (Some(t), Some(next)) = (self.tok(), self.toks.get(self.i + 1)) else {
            return false;
        };
        matches!(next.kind, Token::String | Token::TripleString) && next.start == t.end
    }

    /// `python"""…"""`, when it is closed.
    fn code(&mut self) -> Option<CodeLit> {
        let start = self.start();
        let lang = self.ident()?;
        let tok = *self.tok()?;
        let triple = tok.kind == Token::TripleString;
        let raw = &self.src[tok.start as usize..tok.end as usize];
        if !closed(raw, triple) {
            return None;
        }
        self.bump();
        Some(CodeLit {
            lang,
            text: super::strings::code_text(raw, triple),
            span: self.since(start),
        })
    }

    fn ident(&mut self) -> Option<Ident> {
        if !is_name(self.kind()?) {
            return None;
        }
        let name = self.text().to_string();
        let start = self.bump();
        Some(Ident {
            name,
            span: self.since(start),
        })
    }

    // ─── literals ───────────────────────────────────────────────────────

    fn number(&mut self) -> Option<(Number, Span)> {
        if !self.is(Token::Number) {
            return None;
        }
        let text = self.text();
        let end = self.tok()?.end as usize;
        // the grammar's `!name_char` after a number (`5min` is no number)
        if self
            .src
            .as_bytes()
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            return None;
        }
        let start = self.bump();
        Some((literal::number(text), self.since(start)))
    }

    fn int(&mut self) -> Option<Spanned<u64>> {
        match self.number()? {
            (Number::Int(value), span) => Some(Spanned { value, span }),
            _ => None,
        }
    }

    fn int_at_least(&mut self, min: u64) -> Option<Spanned<u64>> {
        self.int().filter(|n| n.value >= min)
    }

    fn positive_duration(&mut self) -> Option<Spanned<Duration>> {
        match self.number()? {
            (Number::Duration(value), span) if value.0 > 0 => Some(Spanned { value, span }),
            _ => None,
        }
    }

    fn probability(&mut self) -> Option<Spanned<f64>> {
        let (number, span) = self.number()?;
        let value = match number {
            Number::Float(f) => f,
            Number::Int(i) if i <= 1 => i as f64,
            _ => return None,
        };
        (value > 0.0 && value <= 1.0).then_some(Spanned { value, span })
    }

    /// A string literal, when it is closed and every escape and
    /// interpolation in it is well-formed.
    fn string(&mut self) -> Option<StringLit> {
        let triple = match self.kind()? {
            Token::String => false,
            Token::TripleString => true,
            _ => return None,
        };
        let tok = *self.tok()?;
        let (start, end) = (tok.start as usize, tok.end as usize);
        let raw = &self.src[start..end];
        let quote = if triple { 3 } else { 1 };
        let bytes = raw.as_bytes();
        let mut builder = StringBuilder::new(raw, triple);
        let mut i = quote;
        let mut closed = false;
        while i < bytes.len() {
            let run = i;
            while i < bytes.len() && !matches!(bytes[i], b'"' | b'\\' | b'{' | b'\n') {
                i += 1;
            }
            if triple {
                // in a triple string, `"`, `""` and line breaks are text
                while i < bytes.len()
                    && !matches!(bytes[i], b'\\' | b'{')
                    && !bytes[i..].starts_with(b"\"\"\"")
                {
                    i += 1;
                }
            }
            if i > run {
                builder.text(&raw[run..i]);
            }
            let Some(&b) = bytes.get(i) else { break };
            match b {
                b'"' => {
                    // the closing quote(s): the token ends here
                    closed = i + quote == bytes.len();
                    break;
                }
                b'\n' => break,
                b'\\' => {
                    let c = raw[i + 1..].chars().next()?;
                    let len = 1 + c.len_utf8();
                    builder.escaped(literal::escape(&raw[i..i + len])?);
                    i += len;
                }
                _ => {
                    // `{name}` or `{name.field}`
                    let mut path = Vec::new();
                    let mut j = i + 1;
                    loop {
                        let seg = j;
                        if !bytes
                            .get(j)
                            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
                        {
                            return None;
                        }
                        while bytes
                            .get(j)
                            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
                        {
                            j += 1;
                        }
                        path.push(Ident {
                            name: raw[seg..j].to_string(),
                            span: self.span(start + seg, start + j),
                        });
                        match bytes.get(j) {
                            Some(b'.') => j += 1,
                            Some(b'}') => break,
                            _ => return None,
                        }
                    }
                    builder.interpolation(path);
                    i = j + 1;
                }
            }
        }
        if !closed {
            return None;
        }
        self.bump();
        Some(StringLit {
            parts: builder.finish(),
            span: self.span(start, end),
        })
    }
}

/// Whether a string token (as the lexer ends it) ends at its closing
/// quote(s), read with the lexer's rules (escapes, `{…}` runs).
fn closed(raw: &str, triple: bool) -> bool {
    let bytes = raw.as_bytes();
    let quote = if triple { 3 } else { 1 };
    let mut i = quote;
    while i < bytes.len() {
        if triple && bytes[i..].starts_with(b"\"\"\"") {
            return i + 3 == bytes.len();
        }
        match bytes[i] {
            b'"' if !triple => return i + 1 == bytes.len(),
            b'\n' if !triple => return false,
            b'\\' => i += 2,
            b'{' => {
                i += 1;
                while i < bytes.len()
                    && bytes[i] != b'}'
                    && !(triple && bytes[i..].starts_with(b"\"\"\""))
                    && (triple || !matches!(bytes[i], b'"' | b'\n'))
                {
                    i += 1;
                }
                if bytes.get(i) == Some(&b'}') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    false
}

/// A tag of an enum type: a name without a type argument.
fn bare_name(ty: TypeExpr) -> Option<Ident> {
    match ty {
        TypeExpr::Named {
            name, arg: None, ..
        } => Some(name),
        _ => None,
    }
}
