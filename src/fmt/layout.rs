//! The canonical layout of a parsed file, as a [`Doc`] stream.
//!
//! The AST gives the structure; the text comes from the source. A cursor
//! walks the source alongside the AST: every token the layout writes is
//! checked against the source at the cursor, literals (strings, numbers)
//! are copied from their spans, and the comments the cursor passes on the
//! way are written where they were, between the same two tokens. So no
//! comment is lost or moved across code, and a layout that disagrees with
//! the source stops with an error instead of writing something else.

use super::doc::Doc;
use crate::source::Span;
use crate::syntax::ast::*;

/// The layout of `file`, parsed from `src`; an error names the first place
/// where the AST and the source disagree (a formatter bug). With
/// `reindent`, the lines of a triple-quoted string shift with the
/// indentation of the line it starts on (the string's value is the same:
/// the parser removes the common indentation).
pub fn layout(src: &str, file: &File, reindent: bool) -> Result<Vec<Doc>, String> {
    let mut l = Layout {
        src,
        reindent,
        pos: 0,
        docs: Vec::new(),
        fresh: true,
        stmt: false,
        error: None,
    };
    for (i, item) in file.items.iter().enumerate() {
        if i > 0 {
            l.docs.push(Doc::Hard);
        }
        l.stmt = true;
        l.item(item);
    }
    l.flush();
    if l.error.is_none() && l.pos < src.len() {
        l.fail("text after the last item");
    }
    match l.error {
        Some(e) => Err(e),
        None => Ok(l.docs),
    }
}

struct Layout<'a> {
    src: &'a str,
    /// Whether triple-quoted strings move with their line's indentation.
    reindent: bool,
    /// Everything before this byte offset has been written.
    pos: usize,
    docs: Vec<Doc>,
    /// At the start of the file or a block: no blank line before the next.
    fresh: bool,
    /// At the start of a statement: a blank line before it in the source is kept.
    stmt: bool,
    error: Option<String>,
}

/// A comment the cursor passed.
struct Comment {
    text: String,
    trailing: bool,
    blank_before: bool,
}

impl<'a> Layout<'a> {
    fn fail(&mut self, what: &str) {
        if self.error.is_none() {
            let rest: String = self.src[self.pos.min(self.src.len())..]
                .chars()
                .take(20)
                .collect();
            self.error = Some(format!("{what} at byte {}: {rest:?}", self.pos));
        }
    }

    /// Whether the whitespace before `at` holds an empty line.
    fn blank_before(&self, at: usize) -> bool {
        let before = &self.src[..at];
        let gap_start = before
            .trim_end_matches([' ', '\t', '\r', '\n', '\x0c'])
            .len();
        gap_start > 0 && before[gap_start..].matches('\n').count() >= 2
    }

    /// The comments between the cursor and the next token, and where that
    /// token starts.
    fn scan(&self) -> (Vec<Comment>, usize) {
        let bytes = self.src.as_bytes();
        let mut pos = self.pos;
        let mut comments = Vec::new();
        loop {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if !bytes[pos.min(bytes.len())..].starts_with(b"//") {
                return (comments, pos.min(bytes.len()));
            }
            let end = self.src[pos..].find('\n').map_or(bytes.len(), |i| pos + i);
            let line_start = self.src[..pos].rfind('\n').map_or(0, |i| i + 1);
            let trailing = !self.src[line_start..pos].trim().is_empty();
            comments.push(Comment {
                text: self.src[pos..end].trim_end().to_string(),
                trailing,
                blank_before: self.blank_before(pos),
            });
            pos = end;
        }
    }

    /// Where the next token starts.
    fn next_pos(&self) -> usize {
        self.scan().1
    }

    fn peek(&self, token: &str) -> bool {
        self.src[self.next_pos()..].starts_with(token)
    }

    /// Writes the comments before the next token and moves to it.
    fn flush(&mut self) {
        let (comments, next) = self.scan();
        for c in comments {
            if c.trailing {
                self.insert_trailing(c.text);
            } else {
                self.docs.push(if c.blank_before && !self.fresh {
                    Doc::Blank
                } else {
                    Doc::Hard
                });
                self.docs.push(Doc::Comment {
                    text: c.text,
                    trailing: false,
                });
            }
            self.fresh = false;
        }
        if self.stmt && self.blank_before(next) && !self.fresh {
            self.docs.push(Doc::Blank);
        }
        self.stmt = false;
        self.pos = next;
    }

    /// A trailing comment goes right after the last text written, before
    /// the line breaks and group openings that follow it.
    fn insert_trailing(&mut self, text: String) {
        let mut at = self.docs.len();
        while at > 0
            && matches!(
                self.docs[at - 1],
                Doc::Line
                    | Doc::Soft
                    | Doc::Hard
                    | Doc::Blank
                    | Doc::Space
                    | Doc::GroupStart
                    | Doc::Indent
                    | Doc::Dedent
            )
        {
            at -= 1;
        }
        self.docs.insert(
            at,
            Doc::Comment {
                text,
                trailing: at > 0,
            },
        );
    }

    /// Writes `token`, which must be next in the source.
    fn tok(&mut self, token: &str) {
        self.flush();
        if self.src[self.pos..].starts_with(token) {
            self.pos += token.len();
        } else {
            self.fail(&format!("expected `{token}`"));
        }
        self.docs.push(Doc::Text(token.to_string()));
        self.fresh = false;
    }

    /// Moves over `token` if it is next, writing nothing.
    fn skip(&mut self, token: &str) -> bool {
        if self.peek(token) {
            self.flush();
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    /// Copies a literal from the source.
    fn verbatim(&mut self, span: Span) {
        self.flush();
        if self.pos != span.start as usize || span.end as usize > self.src.len() {
            self.fail("a literal not where the syntax tree has it");
            return;
        }
        let text = &self.src[span.range()];
        let line_start = self.src[..span.start as usize]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let lead = &self.src[line_start..span.start as usize];
        let lead = &lead[..lead.len() - lead.trim_start().len()];
        if self.reindent
            && text.starts_with("\"\"\"")
            && text.contains('\n')
            && !lead.contains('\t')
        {
            // a triple-quoted string moves with the line it starts on
            self.docs.push(Doc::Block {
                text: text.to_string(),
                indent: lead.len(),
            });
        } else {
            self.docs.push(Doc::Text(text.to_string()));
        }
        self.pos = span.end as usize;
        self.fresh = false;
    }

    fn ident(&mut self, i: &Ident) {
        self.tok(&i.name);
    }

    fn sp(&mut self) {
        self.docs.push(Doc::Space);
    }

    /// `open item, item, … close`: flat when it fits, else one item a line
    /// with a trailing comma. `spaced` puts spaces inside the brackets when
    /// flat (`{ a: T }`); `broken` always breaks.
    fn list<T>(
        &mut self,
        open: &str,
        close: &str,
        items: &[T],
        spaced: bool,
        broken: bool,
        mut each: impl FnMut(&mut Self, &T),
    ) {
        self.tok(open);
        self.docs.push(Doc::GroupStart);
        self.docs.push(Doc::Indent);
        let inner = if broken {
            Doc::Hard
        } else if spaced && !items.is_empty() {
            Doc::Line
        } else {
            Doc::Soft
        };
        self.docs.push(inner.clone());
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.tok(",");
                self.docs.push(Doc::Line);
            }
            each(self, item);
        }
        if !items.is_empty() {
            self.skip(",");
            self.docs.push(Doc::IfBreak(","));
        }
        self.flush();
        self.docs.push(Doc::Dedent);
        self.docs.push(if broken { Doc::Hard } else { inner });
        self.tok(close);
        self.docs.push(Doc::GroupEnd);
    }

    /// `{ statements }`, one a line; `{}` when empty.
    fn block<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.tok("{");
        if items.is_empty() && self.scan().0.is_empty() {
            self.tok("}");
            return;
        }
        self.docs.push(Doc::Indent);
        self.fresh = true;
        for item in items {
            self.docs.push(Doc::Hard);
            self.stmt = true;
            each(self, item);
        }
        self.flush();
        self.docs.push(Doc::Dedent);
        self.docs.push(Doc::Hard);
        self.tok("}");
    }

    // ─── items ──────────────────────────────────────────────────────────

    fn item(&mut self, item: &Item) {
        match &item.kind {
            ItemKind::Use(u) => {
                self.tok("use");
                self.sp();
                match u {
                    Use::Std(names) => {
                        self.tok("std");
                        self.tok(".");
                        self.list("{", "}", names, false, false, |l, n| l.ident(n));
                    }
                    Use::File(s) => self.verbatim(s.span),
                }
            }
            ItemKind::Input(i) => {
                self.tok("input");
                self.sp();
                self.ident(&i.name);
                self.tok(":");
                self.sp();
                self.type_expr(&i.ty);
                if let Some(d) = &i.default {
                    self.sp();
                    self.tok("=");
                    self.sp();
                    self.expr(d);
                }
            }
            ItemKind::Type(t) => {
                self.tok("type");
                self.sp();
                self.ident(&t.name);
                self.sp();
                self.tok("=");
                self.sp();
                self.type_expr(&t.ty);
            }
            ItemKind::Generator(g) => {
                self.tok("generator");
                self.sp();
                self.ident(&g.name);
                self.sp();
                self.tok("=");
                self.sp();
                self.call(&g.kind);
            }
            ItemKind::Guard(g) => {
                self.tok("guard");
                self.sp();
                self.ident(&g.name);
                self.opt_params(&g.params);
                self.subject(g.subject.as_ref());
                self.sp();
                self.tok("=");
                // the body on the next line when it does not fit after `=`
                self.docs.push(Doc::GroupStart);
                self.docs.push(Doc::Indent);
                self.docs.push(Doc::Line);
                self.gexpr(&g.body);
                self.docs.push(Doc::Dedent);
                self.docs.push(Doc::GroupEnd);
            }
            ItemKind::Extern(e) => {
                self.tok("extern");
                self.sp();
                self.tok(match e.kind {
                    ExternKind::Guard => "guard",
                    ExternKind::Generator => "generator",
                    ExternKind::Effect => "effect",
                });
                self.sp();
                self.ident(&e.name);
                self.opt_params(&e.params);
                self.subject(e.subject.as_ref());
            }
            ItemKind::Resource(r) => {
                self.tok("resource");
                self.sp();
                self.ident(&r.name);
                self.tok(":");
                self.sp();
                self.verbatim(r.size.span);
                if r.shared.is_some() {
                    self.sp();
                    self.tok(":shared");
                }
            }
            ItemKind::Default(d) => {
                let (key, span) = match d {
                    Default::Retry(v) => (":default-retry", v.span),
                    Default::Timeout(v) => (":default-timeout", v.span),
                    Default::P(v) => (":default-p", v.span),
                    Default::MaxTokens(v) => (":default-max-tokens", v.span),
                };
                self.tok(key);
                self.sp();
                self.verbatim(span);
            }
            ItemKind::Action(a) => self.action(a),
            ItemKind::Task(t) => self.task(t),
            ItemKind::Test(t) => self.test(t),
        }
    }

    fn params(&mut self, params: &[Param]) {
        self.list("(", ")", params, false, false, |l, p| {
            l.ident(&p.name);
            l.tok(":");
            l.sp();
            l.type_expr(&p.ty);
            if let Some(d) = &p.default {
                l.sp();
                l.tok("=");
                l.sp();
                l.expr(d);
            }
        });
    }

    /// Parameters where they are optional: written when the source has them.
    fn opt_params(&mut self, params: &[Param]) {
        if self.peek("(") {
            self.params(params);
        }
    }

    fn subject(&mut self, subject: Option<&TypeExpr>) {
        if let Some(ty) = subject {
            self.sp();
            self.tok("on");
            self.sp();
            self.type_expr(ty);
        }
    }

    fn action(&mut self, a: &Action) {
        self.tok("action");
        self.sp();
        self.ident(&a.name);
        self.params(&a.params);
        self.sp();
        self.tok("->");
        self.sp();
        self.type_expr(&a.output);
        self.sp();
        let p = &a.props;
        let mut props: Vec<(u32, ActionProp)> = Vec::new();
        if let Some(g) = &p.generate {
            props.push((g.span.start, ActionProp::Generate(g)));
        }
        if let Some(r) = &p.role {
            props.push((r.span.start, ActionProp::Role(r)));
        }
        for (key, g) in [
            (":guard", &p.guard),
            (":pre", &p.pre),
            (":pre-guard", &p.pre_guard),
        ] {
            if let Some(g) = g {
                props.push((g.span().start, ActionProp::Guard(key, g)));
            }
        }
        for (key, v) in [(":retry", &p.retry), (":max-tokens", &p.max_tokens)] {
            if let Some(v) = v {
                props.push((v.span.start, ActionProp::Value(key, v.span)));
            }
        }
        if let Some(v) = &p.timeout {
            props.push((v.span.start, ActionProp::Value(":timeout", v.span)));
        }
        if let Some(v) = &p.p {
            props.push((v.span.start, ActionProp::Value(":p", v.span)));
        }
        if let Some(e) = &p.effect {
            props.push((e.span.start, ActionProp::Effect(e)));
        }
        if let Some(s) = p.idempotent {
            props.push((s.start, ActionProp::Idempotent));
        }
        if let Some(u) = p.uses.first() {
            props.push((u.name.span.start, ActionProp::Uses(&p.uses)));
        }
        if let Some(f) = &p.feedback {
            props.push((f.span.start, ActionProp::Feedback(f.value)));
        }
        if let Some(s) = &p.strategy {
            props.push((s.span.start, ActionProp::Strategy(s.value)));
        }
        props.sort_by_key(|(at, _)| *at);
        self.block(&props, |l, (_, prop)| match prop {
            ActionProp::Generate(g) => {
                l.tok(":generate");
                l.sp();
                l.call(&g.generator);
                l.sp();
                l.verbatim(g.prompt.span);
            }
            ActionProp::Role(r) => {
                l.tok(":role");
                l.sp();
                l.verbatim(r.span);
            }
            ActionProp::Guard(key, g) => {
                l.tok(key);
                l.sp();
                l.gexpr(g);
            }
            ActionProp::Value(key, span) => {
                l.tok(key);
                l.sp();
                l.verbatim(*span);
            }
            ActionProp::Effect(e) => {
                l.tok(":effect");
                l.sp();
                l.call(e);
            }
            ActionProp::Idempotent => l.tok(":idempotent"),
            ActionProp::Uses(u) => {
                l.tok(":uses");
                l.sp();
                l.uses(u);
            }
            ActionProp::Strategy(s) => {
                l.tok(":strategy");
                l.sp();
                match s {
                    Strategy::Repair => l.tok("repair"),
                    Strategy::Resample => l.tok("resample"),
                    Strategy::BestOf(_) => {
                        l.tok("best-of");
                        l.tok("(");
                        let (_, at) = l.scan();
                        let len = l.src[at..]
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .unwrap_or(l.src.len() - at);
                        l.verbatim(Span::new(crate::source::FileId(0), at, at + len));
                        l.tok(")");
                    }
                }
            }
            ActionProp::Feedback(f) => {
                l.tok(":feedback");
                l.sp();
                match f {
                    FeedbackPolicy::Last => l.tok("last"),
                    FeedbackPolicy::All => l.tok("all"),
                    FeedbackPolicy::LastN(_) => {
                        l.tok("last");
                        l.tok("(");
                        let (_, at) = l.scan();
                        let len = l.src[at..]
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                            .unwrap_or(l.src.len() - at);
                        l.verbatim(Span::new(crate::source::FileId(0), at, at + len));
                        l.tok(")");
                    }
                }
            }
        });
    }

    /// `:uses gpu` or `:uses (gpu*2, disk)`: parentheses when there are several.
    fn uses(&mut self, uses: &[ResourceUse]) {
        let each = |l: &mut Self, u: &ResourceUse| {
            l.ident(&u.name);
            if l.peek("*") {
                l.tok("*");
                l.verbatim(u.amount.span);
            }
        };
        if uses.len() > 1 {
            self.list("(", ")", uses, false, false, each);
        } else {
            let parens = self.skip("(");
            for u in uses {
                each(self, u);
            }
            if parens {
                self.skip(",");
                self.skip(")");
            }
        }
    }

    fn task(&mut self, t: &Task) {
        self.tok("task");
        self.sp();
        self.ident(&t.name);
        self.params(&t.params);
        if let Some(ty) = &t.output {
            self.sp();
            self.tok("->");
            self.sp();
            self.type_expr(ty);
        }
        if let Some(d) = &t.max_depth {
            self.sp();
            self.tok(":max-depth");
            self.sp();
            self.verbatim(d.span);
        }
        self.sp();
        self.block(&t.methods, |l, m| l.method(m));
    }

    fn method(&mut self, m: &Method) {
        self.tok("method");
        self.sp();
        self.ident(&m.name);
        self.sp();
        let mut props: Vec<(u32, MethodProp)> = Vec::new();
        if let Some(g) = &m.pre {
            props.push((g.span().start, MethodProp::Pre(g)));
        }
        if let Some(s) = &m.subtasks {
            props.push((s.span.start, MethodProp::Subtasks(&s.value)));
        }
        if let Some(o) = &m.ordering {
            props.push((o.span().start, MethodProp::Ordering(o)));
        }
        if let Some(r) = &m.result {
            props.push((r.span.start, MethodProp::Result(r)));
        }
        if let Some(u) = m.uses.first() {
            props.push((u.name.span.start, MethodProp::Uses(&m.uses)));
        }
        if let Some(f) = &m.on_fail {
            props.push((f.span.start, MethodProp::OnFail(f.value)));
        }
        if let Some(h) = &m.history {
            props.push((h.span.start, MethodProp::History(h.value)));
        }
        props.sort_by_key(|(at, _)| *at);
        self.block(&props, |l, (_, prop)| match prop {
            MethodProp::Pre(g) => {
                l.tok(":pre");
                l.sp();
                l.gexpr(g);
            }
            MethodProp::Subtasks(subtasks) => {
                l.tok(":subtasks");
                l.sp();
                let broken = subtasks.iter().any(|s| s.escalation.is_some());
                l.list("(", ")", subtasks, false, broken, |l, s| l.subtask(s));
            }
            MethodProp::Ordering(o) => {
                l.tok(":ordering");
                l.sp();
                l.ordering(o);
            }
            MethodProp::Result(r) => {
                l.tok(":result");
                l.sp();
                l.ident(r);
                for f in &m.result_fields {
                    l.tok(".");
                    l.ident(f);
                }
            }
            MethodProp::Uses(u) => {
                l.tok(":uses");
                l.sp();
                l.uses(u);
            }
            MethodProp::OnFail(f) => {
                l.tok(":on-fail");
                l.sp();
                l.tok(match f {
                    OnFail::Cancel => "cancel",
                    OnFail::Continue => "continue",
                });
            }
            MethodProp::History(h) => {
                l.tok(":history");
                l.sp();
                l.tok(match h {
                    History::Keep => "keep",
                    History::Fresh => "fresh",
                });
            }
        });
    }

    fn subtask(&mut self, s: &Subtask) {
        self.ident(&s.label);
        self.tok(":");
        self.sp();
        match &s.each {
            Some(each) => {
                self.tok("for");
                self.sp();
                self.ident(&each.item);
                self.sp();
                self.tok("in");
                self.sp();
                for (i, part) in each.source.iter().enumerate() {
                    if i > 0 {
                        self.tok(".");
                    }
                    self.ident(part);
                }
                self.sp();
                self.tok("=>");
                self.sp();
                self.call(&s.call);
                if let Some(k) = &each.parallel {
                    self.sp();
                    self.tok(":parallel");
                    self.sp();
                    self.verbatim(k.span);
                }
            }
            None => self.call(&s.call),
        }
        if let Some(e) = &s.escalation {
            self.sp();
            self.tok(":escalate-to");
            self.sp();
            self.ident(&e.target);
            self.sp();
            self.tok("after");
            self.sp();
            self.verbatim(e.after.span);
            if let Some(m) = &e.max {
                self.sp();
                self.tok(":max-escalations");
                self.sp();
                self.verbatim(m.span);
            }
        }
    }

    /// Parentheses the source has around a node that starts at `start`
    /// (the AST keeps none): written as they are, returning how many.
    fn open_parens(&mut self, start: u32) -> usize {
        let mut n = 0;
        while self.peek("(") && self.next_pos() < start as usize {
            self.tok("(");
            n += 1;
        }
        n
    }

    fn close_parens(&mut self, n: usize) {
        for _ in 0..n {
            self.tok(")");
        }
    }

    fn ordering(&mut self, o: &Ordering) {
        let parens = self.open_parens(o.span().start);
        match o {
            Ordering::Label(i) => self.ident(i),
            Ordering::Seq(items, _) | Ordering::Par(items, _) => {
                let sep = if matches!(o, Ordering::Seq(..)) {
                    ";"
                } else {
                    "||"
                };
                self.tok("(");
                self.docs.push(Doc::GroupStart);
                self.docs.push(Doc::Indent);
                self.docs.push(Doc::Soft);
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.sp();
                        self.tok(sep);
                        self.docs.push(Doc::Line);
                    }
                    self.ordering(item);
                }
                self.flush();
                self.docs.push(Doc::Dedent);
                self.docs.push(Doc::Soft);
                self.tok(")");
                self.docs.push(Doc::GroupEnd);
            }
            Ordering::Partial(chains, _) => {
                self.tok("(");
                self.docs.push(Doc::GroupStart);
                self.docs.push(Doc::Indent);
                self.docs.push(Doc::Soft);
                for (i, chain) in chains.iter().enumerate() {
                    if i > 0 {
                        self.tok(",");
                        self.docs.push(Doc::Line);
                    }
                    for (j, label) in chain.iter().enumerate() {
                        if j > 0 {
                            self.sp();
                            self.tok("<");
                            self.sp();
                        }
                        self.ident(label);
                    }
                }
                self.flush();
                self.docs.push(Doc::Dedent);
                self.docs.push(Doc::Soft);
                self.tok(")");
                self.docs.push(Doc::GroupEnd);
            }
        }
        self.close_parens(parens);
    }

    fn test(&mut self, t: &Test) {
        self.tok("test");
        self.sp();
        self.verbatim(t.name.span);
        self.sp();
        let mut props: Vec<(u32, TestProp)> = Vec::new();
        if let Some(c) = &t.run {
            props.push((c.span.start, TestProp::Run(c)));
        }
        if let Some(c) = &t.with {
            props.push((c.span.start, TestProp::With(c)));
        }
        if let Some(e) = t.expect.first() {
            props.push((expectation_span(e).start, TestProp::Expect(&t.expect)));
        }
        props.sort_by_key(|(at, _)| *at);
        self.block(&props, |l, (_, prop)| match prop {
            TestProp::Run(c) => {
                l.tok(":run");
                l.sp();
                l.call(c);
            }
            TestProp::With(c) => {
                l.tok(":with");
                l.sp();
                l.call(c);
            }
            TestProp::Expect(exps) => {
                l.tok(":expect");
                l.sp();
                for (i, e) in exps.iter().enumerate() {
                    if i > 0 {
                        l.tok(",");
                        l.sp();
                    }
                    match e {
                        Expectation::Success(_) => l.tok("success"),
                        Expectation::Failure(_) => l.tok("failure"),
                        Expectation::Calls { op, value, .. } => {
                            l.tok("calls");
                            l.sp();
                            l.tok(op.as_str());
                            l.sp();
                            l.verbatim(value.span);
                        }
                        Expectation::Satisfies(g, _) => {
                            l.tok("satisfies");
                            l.sp();
                            l.gexpr(g);
                        }
                    }
                }
            }
        });
    }

    // ─── types, guards, values ──────────────────────────────────────────

    fn type_expr(&mut self, ty: &TypeExpr) {
        match ty {
            TypeExpr::Named { name, arg, .. } => {
                self.ident(name);
                if let Some(arg) = arg {
                    self.tok("<");
                    self.type_expr(arg);
                    self.tok(">");
                }
            }
            TypeExpr::List(elem, _) => {
                self.tok("[");
                self.type_expr(elem);
                self.tok("]");
            }
            TypeExpr::BoundedList { elem, max, .. } => {
                self.tok("[");
                self.type_expr(elem);
                self.tok(";");
                self.sp();
                self.tok("max");
                self.sp();
                self.verbatim(max.span);
                self.tok("]");
            }
            TypeExpr::Record(fields, _) => {
                self.list("{", "}", fields, true, false, |l, f| {
                    l.ident(&f.name);
                    l.tok(":");
                    l.sp();
                    l.type_expr(&f.ty);
                });
            }
            TypeExpr::Enum(tags, _) => {
                for (i, tag) in tags.iter().enumerate() {
                    if i > 0 {
                        self.sp();
                        self.tok("|");
                        self.sp();
                    }
                    self.ident(tag);
                }
            }
        }
    }

    fn gexpr(&mut self, g: &GuardExpr) {
        let parens = self.open_parens(g.span().start);
        match g {
            GuardExpr::Call(c) => self.call(c),
            GuardExpr::Bool(_, span) => self.verbatim(*span),
            GuardExpr::Not(inner, _) => {
                self.tok("!");
                self.gexpr(inner);
            }
            GuardExpr::And(items, _) | GuardExpr::Or(items, _) => {
                let op = if matches!(g, GuardExpr::And(..)) {
                    "&&"
                } else {
                    "||"
                };
                // continuation lines indented; the first operand is not
                self.docs.push(Doc::GroupStart);
                for (i, item) in items.iter().enumerate() {
                    if i == 1 {
                        self.docs.push(Doc::Indent);
                    }
                    if i > 0 {
                        self.docs.push(Doc::Line);
                        self.tok(op);
                        self.sp();
                    }
                    self.gexpr(item);
                }
                if items.len() > 1 {
                    self.docs.push(Doc::Dedent);
                }
                self.docs.push(Doc::GroupEnd);
            }
            GuardExpr::Combinator(c, args, _) => {
                self.tok(c.as_str());
                self.list("(", ")", args, false, false, |l, a| l.gexpr(a));
            }
            GuardExpr::Path(path, _) => self.path(path),
            GuardExpr::Compare(c) => {
                self.term(&c.lhs);
                self.sp();
                self.tok(c.op.value.as_str());
                self.sp();
                self.term(&c.rhs);
            }
        }
        self.close_parens(parens);
    }

    fn term(&mut self, t: &Term) {
        match t {
            Term::Expr(e) => self.expr(e),
            Term::Len(e, _) => {
                self.tok("len");
                self.tok("(");
                self.expr(e);
                self.tok(")");
            }
        }
    }

    /// `p.items`
    fn path(&mut self, path: &[Ident]) {
        for (i, name) in path.iter().enumerate() {
            if i > 0 {
                self.tok(".");
            }
            self.ident(name);
        }
    }

    fn call(&mut self, c: &Call) {
        self.ident(&c.callee);
        if let Some(args) = &c.args {
            self.list("(", ")", args, false, false, |l, a| {
                if let Some(name) = &a.name {
                    l.ident(name);
                    l.tok(":");
                    l.sp();
                }
                l.expr(&a.value);
            });
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::List(items, _) => self.list("[", "]", items, false, false, |l, e| l.expr(e)),
            Expr::Map(entries, _) => self.list("{", "}", entries, true, false, |l, e| {
                l.verbatim(e.key.span);
                l.tok(":");
                l.sp();
                l.expr(&e.value);
            }),
            Expr::Call(c) => self.call(c),
            Expr::Path(path, _) => self.path(path),
            other => self.verbatim(other.span()),
        }
    }
}

enum ActionProp<'a> {
    Generate(&'a Generate),
    Role(&'a StringLit),
    Guard(&'static str, &'a GuardExpr),
    Value(&'static str, Span),
    Effect(&'a Call),
    Idempotent,
    Uses(&'a [ResourceUse]),
    Feedback(FeedbackPolicy),
    Strategy(Strategy),
}

enum MethodProp<'a> {
    Pre(&'a GuardExpr),
    Subtasks(&'a [Subtask]),
    Ordering(&'a Ordering),
    Result(&'a Ident),
    Uses(&'a [ResourceUse]),
    OnFail(OnFail),
    History(History),
}

enum TestProp<'a> {
    Run(&'a Call),
    With(&'a Call),
    Expect(&'a [Expectation]),
}

fn expectation_span(e: &Expectation) -> Span {
    match e {
        Expectation::Success(s) | Expectation::Failure(s) => *s,
        Expectation::Calls { span, .. } | Expectation::Satisfies(_, span) => *span,
    }
}
