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
            ast::GuardExpr::Call(call) => self.guard_call(call, subject, scope),
        }
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
            GuardExpr::Call { .. } | GuardExpr::Bool { .. } => 0,
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
                    ast::GuardExpr::Bool(..) => {}
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
