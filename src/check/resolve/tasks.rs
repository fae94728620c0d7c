//! Tasks and their methods (subtasks, orderings, results), and tests.

use super::guards::Subject;
use super::values::Scope;
use super::{CallSym, GenSym, Resolver};
use crate::check::error::{CheckError, NameKind};
use crate::check::ir::{self, Ty};
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
        for (s, callee) in subtasks_ast.iter().zip(callees) {
            let Some((sym, (params, _, def))) = callee else {
                ok = false;
                continue;
            };
            let args = self.bind_call(&s.call, &params, Some(def), scope);
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
        Some(ir::Method {
            name: m.name.name.clone(),
            doc: m.doc.clone(),
            pre,
            subtasks,
            ordering: ordering?,
            result: result?,
            uses: uses?,
            on_fail: match m.on_fail.map(|o| o.value) {
                Some(ast::OnFail::Continue) => ir::OnFail::Continue,
                _ => ir::OnFail::Cancel,
            },
            fresh_history: m.history.map(|h| h.value) == Some(ast::History::Fresh),
            span: m.span,
        })
    }

    /// `Some(None)`: no result, correctly; `None`: an error was reported.
    fn method_result(
        &mut self,
        m: &ast::Method,
        t: &ast::Task,
        output: Option<&Ty>,
        scope: &Scope,
    ) -> Option<Option<u32>> {
        match (&m.result, output) {
            (None, None) => Some(None),
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
            (Some(r), Some(out)) => {
                let Some(index) = scope.label_index(&r.name) else {
                    self.unknown_label(r, scope);
                    return None;
                };
                let subtask = &m.subtasks.as_ref()?.value[index];
                let sym = self.tables.callables.get(&subtask.call.callee.name)?.id;
                let (_, produced, _) = self.callable_sig(sym)?;
                match produced {
                    Some(found) if out.accepts(&found) => Some(Some(index as u32)),
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
