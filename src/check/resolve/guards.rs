//! Guard expressions and guard definitions.
//!
//! A guard judges a *subject*. In `:guard` and `:pre-guard` the subject is
//! the action's artifact, implicit; in `:pre` it is the first argument.
//! A `guard` definition without `on Type` takes the most specific subject
//! of its parts.

use super::values::Scope;
use super::{GuardSym, Resolver, State};
use crate::check::error::{CheckError, NameKind};
use crate::check::ir::{self, GuardExpr, GuardRef, Ty};
use crate::source::Span;
use crate::syntax::ast;

/// The type inside `Json<…>`, or the type itself.
fn unjson(ty: &Ty) -> &Ty {
    match ty {
        Ty::Json { of } => unjson(of),
        other => other,
    }
}

/// A predicate's side as written, for messages.
fn show_term(t: &ast::Term) -> String {
    match t {
        ast::Term::Expr(e) => show_expr(e),
        ast::Term::Len(e, _) => format!("len({})", show_expr(e)),
    }
}

fn show_expr(e: &ast::Expr) -> String {
    match e {
        ast::Expr::String(s) => format!("{:?}", s.template()),
        ast::Expr::Int(v) => v.value.to_string(),
        ast::Expr::Float(v) => v.value.to_string(),
        ast::Expr::Duration(v) => format!("{}ms", v.value.0),
        ast::Expr::Bool(v) => v.value.to_string(),
        ast::Expr::Call(c) => c.callee.name.clone(),
        ast::Expr::Path(path, _) => path
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        _ => "…".to_string(),
    }
}

/// What the guards of an expression judge.
#[derive(Debug, Clone)]
pub(super) enum Subject {
    /// The artifact, of this type (with where its type is declared).
    Artifact(Ty, Option<Span>),
    /// Passed as each call's first argument (`:pre`).
    Explicit,
    /// To be inferred (a guard definition without `on Type`).
    Infer,
}

/// An inferred subject and the call that asked for it.
type Inferred = Option<(Ty, Span)>;

impl Resolver<'_> {
    pub(super) fn guard_expr(
        &mut self,
        g: &ast::GuardExpr,
        subject: &Subject,
        scope: &mut Scope,
    ) -> Option<(GuardExpr, Inferred)> {
        match g {
            ast::GuardExpr::Bool(value, span) => Some((
                GuardExpr::Bool {
                    value: *value,
                    span: *span,
                },
                None,
            )),
            ast::GuardExpr::Not(inner, span) => {
                let (e, inferred) = self.guard_expr(inner, subject, scope)?;
                Some((
                    GuardExpr::Not {
                        expr: Box::new(e),
                        span: *span,
                    },
                    inferred,
                ))
            }
            ast::GuardExpr::And(items, span)
            | ast::GuardExpr::Or(items, span)
            | ast::GuardExpr::Combinator(_, items, span) => {
                let mut exprs = Vec::with_capacity(items.len());
                let mut inferred: Inferred = None;
                let mut ok = true;
                for item in items {
                    match self.guard_expr(item, subject, scope) {
                        Some((e, sub)) => {
                            exprs.push(e);
                            inferred = self.meet(inferred, sub, *span, &mut ok);
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                let span = *span;
                let expr = match g {
                    ast::GuardExpr::And(..) => GuardExpr::And { exprs, span },
                    ast::GuardExpr::Or(..) => GuardExpr::Or { exprs, span },
                    ast::GuardExpr::Combinator(c, ..) => GuardExpr::Combinator {
                        combinator: match c {
                            ast::Combinator::All => ir::Combinator::All,
                            ast::Combinator::Any => ir::Combinator::Any,
                            ast::Combinator::Majority => ir::Combinator::Majority,
                            ast::Combinator::Par => ir::Combinator::Par,
                        },
                        exprs,
                        span,
                    },
                    _ => return None,
                };
                Some((expr, inferred))
            }
            ast::GuardExpr::Call(call) => {
                if self.is_predicate_call(call, scope) {
                    if let Some([arg]) = call.args.as_deref() {
                        // `len(x)` on its own: a number, not a predicate
                        let term = ast::Term::Len(arg.value.clone(), call.span);
                        if let Some((_, ty)) = self.term(&term, scope) {
                            self.errors.push(CheckError::NotBool {
                                what: show_term(&term),
                                ty,
                                span: call.span,
                            });
                        }
                        return None;
                    }
                    let path = std::slice::from_ref(&call.callee);
                    return self.bool_value(path, call.span, subject, scope);
                }
                self.guard_call(call, subject, scope)
            }
            ast::GuardExpr::Path(path, span) => self.bool_value(path, *span, subject, scope),
            ast::GuardExpr::Compare(c) => {
                let e = self.compare(c, scope);
                if !matches!(subject, Subject::Explicit) {
                    self.predicate_not_here(subject, c.span);
                    return None;
                }
                e.map(|e| (e, None))
            }
        }
    }

    /// A bare name no guard has that names a value here, or `len(x)`
    /// when no guard is called `len`: a predicate, not a guard call.
    fn is_predicate_call(&self, call: &ast::Call, scope: &Scope) -> bool {
        let name = &call.callee.name;
        if self.tables.guards.contains_key(name) {
            return false;
        }
        match &call.args {
            None => {
                scope.has_local(name)
                    || (scope.sees_inputs() && self.tables.inputs.contains_key(name))
            }
            Some(args) => name == "len" && args.len() == 1 && args[0].name.is_none(),
        }
    }

    fn predicate_not_here(&mut self, subject: &Subject, span: Span) {
        let place = match subject {
            Subject::Explicit => return,
            Subject::Artifact(..) => "`:guard` or `:pre-guard`",
            Subject::Infer => "a guard definition",
        };
        self.errors
            .push(CheckError::PredicateNotHere { place, span });
    }

    /// `v.ok`, `ok`: a Bool value as a predicate (`len(x)` on its own is
    /// reported as not a Bool).
    fn bool_value(
        &mut self,
        path: &[ast::Ident],
        span: Span,
        subject: &Subject,
        scope: &mut Scope,
    ) -> Option<(GuardExpr, Inferred)> {
        let resolved = self.value(path, scope);
        if !matches!(subject, Subject::Explicit) {
            self.predicate_not_here(subject, span);
            return None;
        }
        let text = path
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let (operand, ty) = resolved?;
        if !matches!(unjson(&ty), Ty::Bool) {
            self.errors.push(CheckError::NotBool {
                what: text,
                ty,
                span,
            });
            return None;
        }
        Some((
            GuardExpr::Value {
                operand,
                text,
                span,
            },
            None,
        ))
    }

    /// `lhs op rhs`, typed.
    fn compare(&mut self, c: &ast::Compare, scope: &mut Scope) -> Option<GuardExpr> {
        // a bare name that is no value may be a tag of the other side's enum
        let tag = |r: &Self, t: &ast::Term| -> Option<ast::Ident> {
            match t {
                ast::Term::Expr(ast::Expr::Call(call))
                    if call.args.is_none()
                        && !scope.has_local(&call.callee.name)
                        && !(scope.sees_inputs()
                            && r.tables.inputs.contains_key(&call.callee.name)) =>
                {
                    Some(call.callee.clone())
                }
                _ => None,
            }
        };
        let (ltag, rtag) = (tag(self, &c.lhs), tag(self, &c.rhs));
        let lhs = match &ltag {
            Some(_) => None,
            None => Some(self.term(&c.lhs, scope)?),
        };
        let rhs = match &rtag {
            Some(_) => None,
            None => Some(self.term(&c.rhs, scope)?),
        };
        let (lhs, rhs) = match (lhs, rhs) {
            (Some(l), Some(r)) => (l, r),
            (Some(l), None) => {
                let r = self.tag_term(rtag?, &l.1, scope)?;
                (l, r)
            }
            (None, Some(r)) => {
                let l = self.tag_term(ltag?, &r.1, scope)?;
                (l, r)
            }
            (None, None) => {
                // neither side is a value: report the first as unknown
                self.value(std::slice::from_ref(&ltag?), scope);
                return None;
            }
        };
        let op = c.op.value;
        let (lt, rt) = (unjson(&lhs.1).clone(), unjson(&rhs.1).clone());
        let numeric = |t: &Ty| matches!(t, Ty::Int | Ty::Float);
        let textual = |t: &Ty| matches!(t, Ty::Text | Ty::Code { .. } | Ty::Program);
        let equality = matches!(op, ast::PredOp::Eq | ast::PredOp::Ne);
        let mut tags = None;
        let ok = if numeric(&lt) && numeric(&rt) || lt == Ty::Duration && rt == Ty::Duration {
            true
        } else if !equality {
            false
        } else if textual(&lt) && textual(&rt) || lt == Ty::Bool && rt == Ty::Bool {
            true
        } else {
            match (&lt, &rt, &lhs.0.operand, &rhs.0.operand) {
                (Ty::Enum { .. }, Ty::Enum { .. }, ..) => lt == rt,
                (Ty::Enum { tags: t }, Ty::Text, _, ir::Operand::Const { value })
                | (Ty::Text, Ty::Enum { tags: t }, ir::Operand::Const { value }, _) => {
                    let known = matches!(value, ir::Value::Text(v) if t.contains(v));
                    if !known {
                        tags = Some(t.clone());
                    }
                    known
                }
                (Ty::Enum { .. }, t, ..) | (t, Ty::Enum { .. }, ..) => textual(t),
                _ => false,
            }
        };
        if !ok {
            self.errors.push(CheckError::BadComparison {
                op: op.as_str(),
                lhs: lhs.1,
                rhs: rhs.1,
                span: c.op.span,
                lhs_span: c.lhs.span(),
                rhs_span: c.rhs.span(),
                tags,
            });
            return None;
        }
        Some(GuardExpr::Compare {
            op: match op {
                ast::PredOp::Eq => ir::PredOp::Eq,
                ast::PredOp::Ne => ir::PredOp::Ne,
                ast::PredOp::Lt => ir::PredOp::Lt,
                ast::PredOp::Le => ir::PredOp::Le,
                ast::PredOp::Gt => ir::PredOp::Gt,
                ast::PredOp::Ge => ir::PredOp::Ge,
            },
            text: format!(
                "{} {} {}",
                show_term(&c.lhs),
                op.as_str(),
                show_term(&c.rhs)
            ),
            lhs: lhs.0,
            rhs: rhs.0,
            span: c.span,
        })
    }

    /// One side of a comparison and its type.
    fn term(&mut self, t: &ast::Term, scope: &mut Scope) -> Option<(ir::Term, Ty)> {
        match t {
            ast::Term::Expr(e) => {
                let (operand, ty) = self.operand(e, scope)?;
                Some((
                    ir::Term {
                        operand,
                        len: false,
                    },
                    ty.unwrap_or(Ty::Text),
                ))
            }
            ast::Term::Len(e, span) => {
                let (operand, ty) = self.operand(e, scope)?;
                let ty = ty.unwrap_or(Ty::Text);
                match unjson(&ty) {
                    Ty::List { .. } | Ty::Map { .. } | Ty::Text | Ty::Code { .. } => {}
                    _ => {
                        self.errors.push(CheckError::NoLength { ty, span: *span });
                        return None;
                    }
                }
                Some((ir::Term { operand, len: true }, Ty::Int))
            }
        }
    }

    /// A bare name compared with a value of type `other`: one of its
    /// tags when `other` is an enum, else an unknown value.
    fn tag_term(
        &mut self,
        name: ast::Ident,
        other: &Ty,
        scope: &mut Scope,
    ) -> Option<(ir::Term, Ty)> {
        if let Ty::Enum { tags } = unjson(other) {
            if tags.contains(&name.name) {
                return Some((
                    ir::Term {
                        operand: ir::Operand::Const {
                            value: ir::Value::Text(name.name),
                        },
                        len: false,
                    },
                    unjson(other).clone(),
                ));
            }
            let suggestion =
                crate::diagnostics::suggest::closest(&name.name, tags.iter().map(String::as_str))
                    .map(str::to_string);
            self.errors.push(CheckError::UnknownName {
                kind: NameKind::Value,
                name: name.name,
                span: name.span,
                suggestion,
                in_std: false,
            });
            return None;
        }
        self.value(std::slice::from_ref(&name), scope);
        None
    }

    /// The more specific of two inferred subjects; reports when neither
    /// fits the other.
    fn meet(&mut self, a: Inferred, b: Inferred, span: Span, ok: &mut bool) -> Inferred {
        match (a, b) {
            (None, x) | (x, None) => x,
            (Some(a), Some(b)) => {
                if a.0.accepts(&b.0) {
                    Some(b)
                } else if b.0.accepts(&a.0) {
                    Some(a)
                } else {
                    self.errors.push(CheckError::IncompatibleSubjects {
                        span,
                        first: a.clone(),
                        second: b,
                    });
                    *ok = false;
                    Some(a)
                }
            }
        }
    }

    fn guard_call(
        &mut self,
        call: &ast::Call,
        subject: &Subject,
        scope: &mut Scope,
    ) -> Option<(GuardExpr, Inferred)> {
        let name = &call.callee;
        let Some(sym) = self.tables.guards.get(&name.name).copied() else {
            self.unknown(NameKind::Guard, name);
            return None;
        };
        if let Some(import) = self.tables.imports.get_mut(&name.name) {
            import.used = true;
        }
        let (guard, params, guard_subject, def) = match sym.id {
            GuardSym::Extern(id) => {
                let e = self.program.externs.get(id.index())?;
                (
                    GuardRef::Extern { id },
                    e.params.clone(),
                    e.subject.clone().unwrap_or(Ty::Text),
                    e.span,
                )
            }
            GuardSym::User(u) => {
                self.used_guards[u as usize] = true;
                let def = self.resolve_guard_def(u)?;
                let id = self.guard_ids[u as usize]?;
                (GuardRef::User { id }, def.params, def.subject, def.span)
            }
        };
        let args = call.args.as_deref().unwrap_or(&[]);
        let (subject_operand, args) = match subject {
            Subject::Explicit => {
                let Some(first) = args.iter().position(|a| a.name.is_none()) else {
                    self.errors.push(CheckError::Arity {
                        callee: name.name.clone(),
                        span: call.span,
                        takes: params.len() + 1,
                        given: args.len(),
                        missing: vec![format!("the value to judge ({guard_subject})")],
                        def: Some(def),
                        pre_subject: true,
                    });
                    return None;
                };
                let arg = &args[first];
                let (op, ty) = self.operand(&arg.value, scope)?;
                if let Some(ty) = ty {
                    if !guard_subject.accepts(&ty) {
                        self.errors.push(CheckError::GuardSubject {
                            guard: name.name.clone(),
                            expected: guard_subject.clone(),
                            found: ty,
                            span: arg.span,
                            artifact: None,
                        });
                        return None;
                    }
                }
                let rest: Vec<ast::Arg> = args
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != first)
                    .map(|(_, a)| a.clone())
                    .collect();
                (Some(op), rest)
            }
            Subject::Artifact(ty, artifact) => {
                if !guard_subject.accepts(ty) {
                    self.errors.push(CheckError::GuardSubject {
                        guard: name.name.clone(),
                        expected: guard_subject.clone(),
                        found: ty.clone(),
                        span: call.span,
                        artifact: *artifact,
                    });
                    return None;
                }
                (None, args.to_vec())
            }
            Subject::Infer => (None, args.to_vec()),
        };
        let pre = matches!(subject, Subject::Explicit);
        let args = self.bind_args(name, &args, call.span, &params, Some(def), scope, pre)?;
        if let GuardRef::Extern { id } = &guard {
            let e = &self.program.externs[id.index()];
            if e.is_judge() && e.judge_calls(&args).is_none() {
                let at = params
                    .iter()
                    .position(|p| p.name == ir::JUDGE_RETRIES)
                    .and_then(|i| {
                        call.args
                            .as_deref()?
                            .iter()
                            .find(|a| a.name.as_ref().is_some_and(|n| n.name == params[i].name))
                    })
                    .map_or(call.span, |a| a.span);
                self.errors.push(CheckError::JudgeBound {
                    guard: name.name.clone(),
                    span: at,
                    def: params
                        .iter()
                        .find(|p| p.name == ir::JUDGE_RETRIES)
                        .map(|p| p.span),
                });
                return None;
            }
        }
        let inferred = match subject {
            Subject::Infer => Some((guard_subject, call.span)),
            _ => None,
        };
        Some((
            GuardExpr::Call {
                guard,
                subject: subject_operand,
                args,
                span: call.span,
            },
            inferred,
        ))
    }

    /// The deepest chain of guard definitions `g` uses (0 for none). The
    /// expression itself nests at most as deep as the syntax allows.
    fn used_depth(&self, g: &GuardExpr) -> usize {
        match g {
            GuardExpr::Call {
                guard: GuardRef::User { id },
                ..
            } => self.guard_depth.get(id.index()).copied().unwrap_or(0),
            GuardExpr::Call { .. }
            | GuardExpr::Bool { .. }
            | GuardExpr::Compare { .. }
            | GuardExpr::Value { .. } => 0,
            GuardExpr::Not { expr, .. } => self.used_depth(expr),
            GuardExpr::And { exprs, .. }
            | GuardExpr::Or { exprs, .. }
            | GuardExpr::Combinator { exprs, .. } => {
                exprs.iter().map(|e| self.used_depth(e)).max().unwrap_or(0)
            }
        }
    }

    /// Resolves `guard NAME(…) = …` once; a guard that reaches itself is
    /// reported with its cycle.
    pub(super) fn resolve_guard_def(&mut self, u: u32) -> Option<ir::GuardDef> {
        match &self.guard_state[u as usize] {
            State::Done(def) => return Some(def.clone()),
            State::Failed => return None,
            State::InProgress => {
                let start = self.guard_stack.iter().position(|&g| g == u).unwrap_or(0);
                let members: Vec<u32> = self.guard_stack[start..].to_vec();
                let cycle = members
                    .iter()
                    .map(|&g| {
                        let (def, _) = self.items.guards[g as usize];
                        (def.name.name.clone(), def.name.span)
                    })
                    .collect();
                self.errors.push(CheckError::RecursiveGuard { cycle });
                for g in members {
                    self.guard_state[g as usize] = State::Failed;
                }
                return None;
            }
            State::Todo => {}
        }
        let (def, doc) = self.items.guards[u as usize];
        if self.guard_stack.len() >= super::types::MAX_DEF_DEPTH {
            self.too_deep(CheckError::DefinitionsTooDeep {
                what: "guard",
                name: def.name.name.clone(),
                span: def.name.span,
                max: super::types::MAX_DEF_DEPTH,
            });
            self.guard_state[u as usize] = State::Failed;
            // what it names is used, not reported as unused on top
            let mut todo = vec![&def.body];
            while let Some(g) = todo.pop() {
                match g {
                    ast::GuardExpr::Call(call) => {
                        if let Some(GuardSym::User(v)) =
                            self.tables.guards.get(&call.callee.name).map(|s| s.id)
                        {
                            self.used_guards[v as usize] = true;
                        }
                    }
                    ast::GuardExpr::Bool(..)
                    | ast::GuardExpr::Compare(..)
                    | ast::GuardExpr::Path(..) => {}
                    ast::GuardExpr::Not(inner, _) => todo.push(inner),
                    ast::GuardExpr::And(items, _)
                    | ast::GuardExpr::Or(items, _)
                    | ast::GuardExpr::Combinator(_, items, _) => todo.extend(items),
                }
            }
            return None;
        }
        self.guard_state[u as usize] = State::InProgress;
        self.guard_stack.push(u);
        let params = self.params(&def.params);
        let declared = def.subject.as_ref().and_then(|t| self.type_expr(t));
        let mode = match &declared {
            Some(t) => Subject::Artifact(t.clone(), def.subject.as_ref().map(|s| s.span())),
            None => Subject::Infer,
        };
        let mut scope = Scope::with_params(&params);
        let body = self.guard_expr(&def.body, &mode, &mut scope);
        for (name, span) in scope.unused_params() {
            self.errors.push(CheckError::UnusedParam {
                name: name.to_string(),
                span,
            });
        }
        self.guard_stack.pop();
        if self.guard_state[u as usize] != State::InProgress {
            return None; // failed as part of a cycle
        }
        let Some((body, inferred)) = body else {
            self.guard_state[u as usize] = State::Failed;
            return None;
        };
        // runs and bounds follow a guard through the definitions it uses:
        // their depth is capped like the resolution's
        let depth = 1 + self.used_depth(&body);
        if depth > super::types::MAX_DEF_DEPTH {
            self.too_deep(CheckError::DefinitionsTooDeep {
                what: "guard",
                name: def.name.name.clone(),
                span: def.name.span,
                max: super::types::MAX_DEF_DEPTH,
            });
            self.guard_state[u as usize] = State::Failed;
            return None;
        }
        let subject = declared.or(inferred.map(|(t, _)| t)).unwrap_or(Ty::Text);
        let resolved = ir::GuardDef {
            name: def.name.name.clone(),
            params,
            subject,
            body,
            doc: doc.map(str::to_string),
            span: def.name.span,
        };
        self.guard_ids[u as usize] = Some(ir::GuardId(self.program.guards.len() as u32));
        self.program.guards.push(resolved.clone());
        self.guard_depth.push(depth);
        self.guard_state[u as usize] = State::Done(resolved.clone());
        Some(resolved)
    }
}

impl Resolver<'_> {
    /// E0236: a judge (directly or through `guard` definitions) where no
    /// attempt is judged, so its generator calls have nothing to count
    /// against: a `:pre` of an action or method, a test's `satisfies`.
    pub(super) fn judges_outside_answers(&mut self) {
        let p = &self.program;
        let mut found = Vec::new();
        for a in &p.actions {
            if let Some(pre) = &a.pre {
                judge_in(p, pre, "`:pre`", &mut found);
            }
        }
        for m in p.tasks.iter().flat_map(|t| &t.methods) {
            if let Some(pre) = &m.pre {
                judge_in(p, pre, "`:pre`", &mut found);
            }
        }
        for t in &p.tests {
            for e in &t.expect {
                if let ir::Expectation::Satisfies { guard } = e {
                    judge_in(p, guard, "a test's `satisfies`", &mut found);
                }
            }
        }
        self.errors.extend(found);
    }
}

/// Pushes E0236 for every call in `expr` that is a judge or reaches one
/// through guard definitions (which are acyclic once resolved; the depth
/// is capped all the same).
fn judge_in(p: &ir::Program, expr: &GuardExpr, place: &'static str, out: &mut Vec<CheckError>) {
    fn reaches(p: &ir::Program, e: &GuardExpr, depth: u32) -> Option<String> {
        if depth > 64 {
            return None;
        }
        match e {
            GuardExpr::Call { guard, .. } => match guard {
                GuardRef::Extern { id } => {
                    let x = p.externs.get(id.index())?;
                    x.is_judge().then(|| x.name.clone())
                }
                GuardRef::User { id } => reaches(p, &p.guards.get(id.index())?.body, depth + 1),
            },
            GuardExpr::Not { expr, .. } => reaches(p, expr, depth + 1),
            GuardExpr::And { exprs, .. }
            | GuardExpr::Or { exprs, .. }
            | GuardExpr::Combinator { exprs, .. } => {
                exprs.iter().find_map(|e| reaches(p, e, depth + 1))
            }
            GuardExpr::Bool { .. } | GuardExpr::Compare { .. } | GuardExpr::Value { .. } => None,
        }
    }
    match expr {
        GuardExpr::Call { guard, span, .. } => {
            if let Some(judge) = reaches(p, expr, 0) {
                let via = match guard {
                    GuardRef::User { id } => p.guards.get(id.index()).map(|g| g.name.clone()),
                    GuardRef::Extern { .. } => None,
                };
                out.push(CheckError::JudgeOutsideAnswer {
                    judge,
                    via,
                    place,
                    span: *span,
                });
            }
        }
        GuardExpr::Not { expr, .. } => judge_in(p, expr, place, out),
        GuardExpr::And { exprs, .. }
        | GuardExpr::Or { exprs, .. }
        | GuardExpr::Combinator { exprs, .. } => {
            for e in exprs {
                judge_in(p, e, place, out);
            }
        }
        GuardExpr::Bool { .. } | GuardExpr::Compare { .. } | GuardExpr::Value { .. } => {}
    }
}
