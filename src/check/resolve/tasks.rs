//! Tasks and their methods (subtasks, orderings, results), and tests.

use super::guards::Subject;
use super::values::Scope;
use super::{CallSym, GenSym, Resolver};
use crate::check::error::{CheckError, NameKind};
use crate::check::ir::{self, Operand, Ty};
use crate::source::Span;
use crate::syntax::ast;

impl Resolver<'_> {
    fn lookup_callable(&mut self, name: &ast::Ident) -> Option<CallSym> {
        match self.tables.callables.get(&name.name).copied() {
            Some(sym) => {
                if let CallSym::Action(a) = sym.id {
                    self.used_actions[a as usize] = true;
                }
                Some(sym.id)
            }
            None => {
                self.unknown(NameKind::Callable, name);
                None
            }
        }
    }

    fn callee(sym: CallSym) -> ir::Callee {
        match sym {
            CallSym::Action(a) => ir::Callee::Action(ir::ActionId(a)),
            CallSym::Task(t) => ir::Callee::Task(ir::TaskId(t)),
        }
    }

    pub(super) fn resolve_task(&mut self, i: usize) -> Option<ir::Task> {
        let (t, item) = self.items.tasks[i];
        let (params, output) = self.task_sigs.get(i)?.clone()?;
        let mut methods = Vec::with_capacity(t.methods.len());
        let mut ok = true;
        let mut param_use = vec![false; params.len()];
        for m in &t.methods {
            let mut scope = Scope::with_params(&params);
            match self.method(m, t, output.as_ref(), &mut scope) {
                Some(method) => methods.push(method),
                None => ok = false,
            }
            let unused: Vec<&str> = scope.unused_params().map(|(n, _)| n).collect();
            for (p, used) in params.iter().zip(param_use.iter_mut()) {
                *used |= !unused.contains(&p.name.as_str());
            }
        }
        for (p, used) in params.iter().zip(&param_use) {
            if !used && !p.name.starts_with('_') {
                self.errors.push(CheckError::UnusedParam {
                    name: p.name.clone(),
                    span: p.span,
                });
            }
        }
        if !ok {
            return None;
        }
        Some(ir::Task {
            name: t.name.name.clone(),
            doc: item.doc.clone(),
            params,
            output,
            max_depth: t.max_depth.map(|d| d.value),
            methods,
            span: item.span,
            name_span: t.name.span,
        })
    }

    fn method(
        &mut self,
        m: &ast::Method,
        t: &ast::Task,
        output: Option<&Ty>,
        scope: &mut Scope,
    ) -> Option<ir::Method> {
        let subtasks_ast: &[ast::Subtask] = m.subtasks.as_ref().map_or(&[], |s| &s.value);
        let mut ok = true;
        // labels first: any subtask may name any label (ordering against
        // data flow is the deadlock checker's business)
        let mut callees = Vec::with_capacity(subtasks_ast.len());
        let mut seen: std::collections::HashMap<&str, &ast::Ident> =
            std::collections::HashMap::with_capacity(subtasks_ast.len());
        for s in subtasks_ast {
            if let Some(first) = seen.get(s.label.name.as_str()) {
                self.errors.push(CheckError::DuplicateLabel {
                    name: s.label.name.clone(),
                    span: s.label.span,
                    first: first.span,
                });
                ok = false;
            } else {
                seen.insert(&s.label.name, &s.label);
            }
            let sym = self.lookup_callable(&s.call.callee);
            let sig = sym.and_then(|sym| self.callable_sig(sym));
            let ty = sig.as_ref().and_then(|(_, out, _)| out.clone());
            scope.add_label(s.label.name.clone(), ty, s.call.callee.name.clone());
            callees.push(sym.zip(sig));
        }
        // maps: what each maps over, and the list its label holds
        let mut sources: Vec<Option<(Operand, u64, Ty)>> = Vec::with_capacity(subtasks_ast.len());
        for (i, s) in subtasks_ast.iter().enumerate() {
            let Some(each) = &s.each else {
                sources.push(None);
                continue;
            };
            let source = self.map_source(each, scope);
            ok &= source.is_some();
            if let Some((_, bound, _)) = &source {
                let list = scope.label_type(i).map(|out| Ty::List {
                    of: Box::new(out.clone()),
                    max: Some(*bound),
                });
                scope.set_label_type(i, list);
            }
            sources.push(source);
        }
        let pre = match &m.pre {
            Some(g) => {
                let e = self
                    .guard_expr(g, &Subject::Explicit, scope)
                    .map(|(e, _)| e);
                ok &= e.is_some();
                e
            }
            None => None,
        };
        let mut subtasks = Vec::with_capacity(subtasks_ast.len());
        for ((s, callee), source) in subtasks_ast.iter().zip(callees).zip(sources) {
            let Some((sym, (params, _, def))) = callee else {
                ok = false;
                continue;
            };
            let each = match (&s.each, source) {
                (Some(each), Some((source, bound, item_ty))) => {
                    scope.enter_item(each.item.name.clone(), item_ty);
                    Some((each, source, bound))
                }
                (Some(_), None) => {
                    ok = false;
                    continue;
                }
                _ => None,
            };
            let args = self.bind_call(&s.call, &params, Some(def), scope);
            let each = each.map(|(each, source, bound)| {
                if !scope.leave_item() && !each.item.name.starts_with('_') {
                    self.errors.push(CheckError::MapItemUnused {
                        name: each.item.name.clone(),
                        span: each.item.span,
                    });
                }
                ir::Each {
                    item: each.item.name.clone(),
                    source,
                    bound,
                    parallel: each.parallel.map(|p| p.value),
                    span: each.span,
                }
            });
            let escalation = match &s.escalation {
                Some(e) => match scope.label_index(&e.target.name) {
                    Some(target) => Some(ir::Escalation {
                        target: target as u32,
                        after: e.after.value,
                        max: e.max.map(|m| m.value),
                        span: e.span,
                    }),
                    None => {
                        self.unknown_label(&e.target, scope);
                        ok = false;
                        None
                    }
                },
                None => None,
            };
            match args {
                Some(args) => subtasks.push(ir::Subtask {
                    label: s.label.name.clone(),
                    callee: Self::callee(sym),
                    args,
                    each,
                    escalation,
                    span: s.span,
                    label_span: s.label.span,
                }),
                None => ok = false,
            }
        }
        let ordering = match &m.ordering {
            Some(o) => self.ordering(o, subtasks_ast, scope),
            None => Some(ir::Ordering::Seq {
                items: subtasks_ast
                    .iter()
                    .enumerate()
                    .map(|(i, s)| ir::Ordering::Label {
                        index: i as u32,
                        span: s.label.span,
                    })
                    .collect(),
                span: m.name.span,
            }),
        };
        let result = self.method_result(m, t, output, scope);
        let uses = self.resource_uses(&m.uses);
        if !ok {
            return None;
        }
        let result = result?;
        Some(ir::Method {
            name: m.name.name.clone(),
            doc: m.doc.clone(),
            pre,
            subtasks,
            ordering: ordering?,
            result: result.0,
            result_value: result.1,
            uses: uses?,
            on_fail: match m.on_fail.map(|o| o.value) {
                Some(ast::OnFail::Continue) => ir::OnFail::Continue,
                _ => ir::OnFail::Cancel,
            },
            fresh_history: m.history.map(|h| h.value) == Some(ast::History::Fresh),
            span: m.span,
        })
    }

    /// The result as a subtask index or as a value the method has;
    /// `Some((None, None))`: no result, correctly; `None`: an error was
    /// reported.
    fn method_result(
        &mut self,
        m: &ast::Method,
        t: &ast::Task,
        output: Option<&Ty>,
        scope: &mut Scope,
    ) -> Option<(Option<u32>, Option<ir::Operand>)> {
        match (&m.result, output) {
            (None, None) => Some((None, None)),
            (None, Some(_)) => {
                self.errors.push(CheckError::ResultMissing {
                    method: m.name.name.clone(),
                    span: m.name.span,
                    output: t.output.as_ref().map_or(t.name.span, |o| o.span()),
                });
                None
            }
            (Some(r), None) => {
                self.errors.push(CheckError::ResultUnexpected {
                    span: r.span,
                    task: t.name.span,
                });
                None
            }
            (Some(r), Some(out))
                if !m.result_fields.is_empty() || scope.label_index(&r.name).is_none() =>
            {
                // a value the method already has: a parameter, an input,
                // or a field of one or of a subtask's artifact
                let known = scope.has_local(&r.name)
                    || (scope.sees_inputs() && self.tables.inputs.contains_key(&r.name));
                if !known {
                    self.unknown_label(r, scope);
                    return None;
                }
                let mut path = vec![r.clone()];
                path.extend(m.result_fields.iter().cloned());
                let (op, found) = self.value(&path, scope)?;
                if !out.accepts(&found) {
                    let last = m.result_fields.last().unwrap_or(r);
                    self.errors.push(CheckError::ResultType {
                        expected: out.clone(),
                        found,
                        span: r.span.to(last.span),
                        output: t.output.as_ref().map_or(t.name.span, |o| o.span()),
                    });
                    return None;
                }
                Some((None, Some(op)))
            }
            (Some(r), Some(out)) => {
                let index = scope.label_index(&r.name)?;
                let subtask = &m.subtasks.as_ref()?.value[index];
                let sym = self.tables.callables.get(&subtask.call.callee.name)?.id;
                let (_, produced, _) = self.callable_sig(sym)?;
                // a map's artifact is the list of its callee's outputs
                let produced = match &subtask.each {
                    Some(_) => Some(scope.label_type(index)?.clone()),
                    None => produced,
                };
                match produced {
                    Some(found) if out.accepts(&found) => Some((Some(index as u32), None)),
                    Some(found) => {
                        self.errors.push(CheckError::ResultType {
                            expected: out.clone(),
                            found,
                            span: r.span,
                            output: t.output.as_ref().map_or(t.name.span, |o| o.span()),
                        });
                        None
                    }
                    None => {
                        self.errors.push(CheckError::NoArtifact {
                            label: r.name.clone(),
                            callee: subtask.call.callee.name.clone(),
                            span: r.span,
                        });
                        None
                    }
                }
            }
        }
    }

    /// What a map subtask maps over: the list's operand, its bound and its
    /// item type. Reports a source that is not a list (E0226), a list
    /// without a bound (E0225), and an item named like something in scope
    /// (E0227).
    fn map_source(&mut self, each: &ast::ForEach, scope: &mut Scope) -> Option<(Operand, u64, Ty)> {
        let item = &each.item.name;
        let clash = if scope.label_index(item).is_some() {
            Some(NameKind::Label)
        } else if scope.has_param(item) {
            Some(NameKind::Param)
        } else if self.tables.inputs.contains_key(item) {
            Some(NameKind::Input)
        } else {
            None
        };
        let value = self.value(&each.source, scope);
        if let Some(kind) = clash {
            self.errors.push(CheckError::MapItemShadows {
                name: item.clone(),
                kind,
                span: each.item.span,
            });
            return None;
        }
        let (op, ty) = value?;
        let (first, last) = (each.source.first()?, each.source.last()?);
        let span = first.span.to(last.span);
        let written = || {
            each.source
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(".")
        };
        let list = match &ty {
            Ty::Json { of } => of.as_ref(),
            t => t,
        };
        match list {
            Ty::List { of, max: Some(n) } => Some((op, *n, (**of).clone())),
            Ty::List { max: None, .. } => {
                self.errors.push(CheckError::MapUnbounded {
                    source: written(),
                    ty: ty.clone(),
                    span,
                    def: None,
                });
                None
            }
            _ => {
                self.errors.push(CheckError::MapNotList {
                    source: written(),
                    ty: ty.clone(),
                    span,
                });
                None
            }
        }
    }

    fn unknown_label(&mut self, label: &ast::Ident, _scope: &Scope) {
        self.errors.push(CheckError::UnknownName {
            kind: NameKind::Label,
            name: label.name.clone(),
            span: label.span,
            suggestion: None,
            in_std: false,
        });
    }

    fn ordering(
        &mut self,
        o: &ast::Ordering,
        subtasks: &[ast::Subtask],
        scope: &Scope,
    ) -> Option<ir::Ordering> {
        let mut mentioned: Vec<Option<Span>> = vec![None; subtasks.len()];
        let partial = matches!(o, ast::Ordering::Partial(..));
        let result = self.ordering_node(o, scope, &mut mentioned, partial);
        let missing: Vec<usize> = (0..subtasks.len())
            .filter(|&i| mentioned[i].is_none())
            .collect();
        if result.is_some() && !missing.is_empty() {
            self.errors.push(CheckError::OrderingMissing {
                labels: missing
                    .iter()
                    .map(|&i| subtasks[i].label.name.clone())
                    .collect(),
                ordering: o.span(),
                subtasks: missing.iter().map(|&i| subtasks[i].label.span).collect(),
            });
            return None;
        }
        result
    }

    fn ordering_node(
        &mut self,
        o: &ast::Ordering,
        scope: &Scope,
        mentioned: &mut [Option<Span>],
        in_partial: bool,
    ) -> Option<ir::Ordering> {
        let mut label = |r: &mut Self, ident: &ast::Ident, allow_repeat: bool| -> Option<u32> {
            let Some(index) = scope.label_index(&ident.name) else {
                r.unknown_label(ident, scope);
                return None;
            };
            if let Some(first) = mentioned[index] {
                if !allow_repeat {
                    r.errors.push(CheckError::OrderingTwice {
                        label: ident.name.clone(),
                        span: ident.span,
                        first,
                    });
                    return None;
                }
            } else {
                mentioned[index] = Some(ident.span);
            }
            Some(index as u32)
        };
        match o {
            ast::Ordering::Label(ident) => Some(ir::Ordering::Label {
                index: label(self, ident, in_partial)?,
                span: ident.span,
            }),
            ast::Ordering::Seq(items, span) | ast::Ordering::Par(items, span) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.ordering_node(item, scope, mentioned, false) {
                        Some(n) => out.push(n),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Some(match o {
                    ast::Ordering::Seq(..) => ir::Ordering::Seq {
                        items: out,
                        span: *span,
                    },
                    _ => ir::Ordering::Par {
                        items: out,
                        span: *span,
                    },
                })
            }
            ast::Ordering::Partial(chains, span) => {
                if chains.iter().all(|c| c.len() < 2) {
                    self.errors.push(CheckError::UnorderedPartial {
                        labels: chains.iter().flatten().map(|i| i.name.clone()).collect(),
                        span: *span,
                    });
                    return None;
                }
                let mut out = Vec::with_capacity(chains.len());
                let mut ok = true;
                for chain in chains {
                    let mut c = Vec::with_capacity(chain.len());
                    for ident in chain {
                        match label(self, ident, true) {
                            Some(i) => c.push((i, ident.span)),
                            None => ok = false,
                        }
                    }
                    out.push(c);
                }
                ok.then_some(ir::Ordering::Partial {
                    chains: out,
                    span: *span,
                })
            }
        }
    }

    // ─── tests ──────────────────────────────────────────────────────────

    pub(super) fn resolve_test(&mut self, i: usize) {
        let t = self.items.tests[i];
        let (Some(run), Some(with)) = (&t.run, &t.with) else {
            return; // the parser reported the missing property
        };
        let name = t.name.template();
        let mut ok = true;
        let sym = self.lookup_callable(&run.callee);
        let sig = sym.and_then(|s| self.callable_sig(s));
        let mut scope = Scope::globals();
        let args = match &sig {
            Some((params, _, def)) => self.bind_call(run, params, Some(*def), &mut scope),
            None => None,
        };
        let generator = match self.tables.generators.get(&with.callee.name).map(|s| s.id) {
            Some(GenSym::Named(_) | GenSym::Kind(_)) => self.generator_instance(with, None),
            None => {
                self.unknown(NameKind::Generator, &with.callee);
                None
            }
        };
        let mut expect = Vec::with_capacity(t.expect.len());
        let outcome = |e: &ast::Expectation| match e {
            ast::Expectation::Success(s) => Some((true, *s)),
            ast::Expectation::Failure(s) => Some((false, *s)),
            _ => None,
        };
        let outcomes: Vec<(bool, Span)> = t.expect.iter().filter_map(outcome).collect();
        if outcomes.iter().any(|o| o.0) && outcomes.iter().any(|o| !o.0) {
            self.errors.push(CheckError::MalformedTest {
                problem: "a test cannot expect both success and failure",
                span: outcomes[1].1,
                help: "keep `success` or `failure`",
            });
            ok = false;
        }
        for e in &t.expect {
            match e {
                ast::Expectation::Success(_) => expect.push(ir::Expectation::Success),
                ast::Expectation::Failure(_) => expect.push(ir::Expectation::Failure),
                ast::Expectation::Calls { op, value, .. } => expect.push(ir::Expectation::Calls {
                    op: match op {
                        ast::CmpOp::Le => ir::CmpOp::Le,
                        ast::CmpOp::Lt => ir::CmpOp::Lt,
                        ast::CmpOp::Eq => ir::CmpOp::Eq,
                        ast::CmpOp::Ge => ir::CmpOp::Ge,
                        ast::CmpOp::Gt => ir::CmpOp::Gt,
                    },
                    value: value.value,
                }),
                ast::Expectation::Satisfies(g, span) => {
                    let Some((_, output, _)) = &sig else {
                        ok = false;
                        continue;
                    };
                    let Some(output) = output.clone() else {
                        self.errors.push(CheckError::MalformedTest {
                            problem: "`satisfies` needs an artifact, but the test runs a task without an output type",
                            span: *span,
                            help: "run a task or action that declares `-> Type`, or expect `success`",
                        });
                        ok = false;
                        continue;
                    };
                    match self.guard_expr(g, &Subject::Artifact(output, None), &mut scope) {
                        Some((guard, _)) => expect.push(ir::Expectation::Satisfies { guard }),
                        None => ok = false,
                    }
                }
            }
        }
        if let (true, Some(sym), Some(args), Some(with)) = (ok, sym, args, generator) {
            self.program.tests.push(ir::Test {
                name,
                run: Self::callee(sym),
                args,
                with,
                expect,
                span: t.name.span,
            });
        }
    }
}
