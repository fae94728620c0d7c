//! Actions: signatures, generation, guards, effects and resources.

use super::guards::Subject;
use super::values::Scope;
use super::{CallSym, Resolver};
use crate::check::error::{CheckError, NameKind};
use crate::check::ir::{self, Ty};
use crate::source::Span;
use crate::syntax::ast;

impl Resolver<'_> {
    /// Parameters and outputs of every action and task, before any body,
    /// so bodies can refer to items defined later.
    pub(super) fn resolve_signatures(&mut self) {
        for i in 0..self.items.actions.len() {
            let (a, _) = self.items.actions[i];
            let params = self.params(&a.params);
            let output = self.type_expr(&a.output);
            self.action_sigs.push(output.map(|o| (params, o)));
        }
        for i in 0..self.items.tasks.len() {
            let (t, _) = self.items.tasks[i];
            let params = self.params(&t.params);
            let output = match &t.output {
                Some(o) => self.type_expr(o).map(Some),
                None => Some(None),
            };
            self.task_sigs.push(output.map(|o| (params, o)));
        }
    }

    /// The parameters and output type of a callable.
    pub(super) fn callable_sig(
        &self,
        sym: CallSym,
    ) -> Option<(Vec<ir::Param>, Option<Ty>, crate::source::Span)> {
        match sym {
            CallSym::Action(a) => {
                let (params, out) = self.action_sigs.get(a as usize)?.clone()?;
                Some((
                    params,
                    Some(out),
                    self.items.actions[a as usize].0.name.span,
                ))
            }
            CallSym::Task(t) => {
                let (params, out) = self.task_sigs.get(t as usize)?.clone()?;
                Some((params, out, self.items.tasks[t as usize].0.name.span))
            }
        }
    }

    pub(super) fn resolve_action(&mut self, i: usize) -> Option<ir::Action> {
        let (a, item) = self.items.actions[i];
        let (params, output) = self.action_sigs.get(i)?.clone()?;
        let props = &a.props;
        let mut ok = true;

        let mut scope = Scope::with_params(&params);
        let generate = props.generate.as_ref()?;
        let generator = self.generator_instance(&generate.generator, None);
        scope.attempt_context(true);
        let prompt = self.template(&generate.prompt, &mut scope);
        let role = match &props.role {
            Some(r) => {
                let t = self.template(r, &mut scope);
                ok &= t.is_some();
                t
            }
            None => None,
        };
        scope.attempt_context(false);
        let strategy = match props.strategy.map(|s| s.value) {
            None | Some(ast::Strategy::Repair) => ir::Strategy::Repair,
            Some(ast::Strategy::Resample) => ir::Strategy::Resample,
            Some(ast::Strategy::BestOf(n)) => ir::Strategy::BestOf(n),
        };
        if let Some(s) = props.strategy {
            self.strategy_findings(s.span, strategy, props, [&prompt, &role]);
        }

        // effects: the proposed command runs; `:guard` judges the outcome
        let effect = match &props.effect {
            Some(call) => self.effect(call, &output, a),
            None => None,
        };
        if props.effect.is_some() {
            ok &= effect.is_some();
        } else {
            if let Some(pg) = &props.pre_guard {
                self.errors.push(CheckError::EffectProperty {
                    property: ":pre-guard",
                    span: pg.span(),
                    action: a.name.span,
                });
                ok = false;
            }
            if let Some(span) = props.idempotent {
                self.errors.push(CheckError::EffectProperty {
                    property: ":idempotent",
                    span,
                    action: a.name.span,
                });
                ok = false;
            }
        }
        let judged = if effect.is_some() {
            self.program
                .types
                .iter()
                .find(|t| t.name == "Outcome")
                .map(|t| t.ty.clone())
                .unwrap_or(Ty::Text)
        } else {
            output.clone()
        };
        // with an effect, the guard judges the effect's outcome
        let judged_span = match &props.effect {
            Some(call) if effect.is_some() => call.span,
            _ => a.output.span(),
        };
        let guard = props.guard.as_ref().and_then(|g| {
            self.guard_expr(g, &Subject::Artifact(judged, Some(judged_span)), &mut scope)
                .map(|(e, _)| e)
        });
        let pre = match &props.pre {
            Some(g) => {
                let e = self
                    .guard_expr(g, &Subject::Explicit, &mut scope)
                    .map(|(e, _)| e);
                ok &= e.is_some();
                e
            }
            None => None,
        };
        let pre_guard = match (&props.pre_guard, &effect) {
            (Some(g), Some(_)) => {
                let e = self
                    .guard_expr(
                        g,
                        &Subject::Artifact(output.clone(), Some(a.output.span())),
                        &mut scope,
                    )
                    .map(|(e, _)| e);
                ok &= e.is_some();
                e
            }
            _ => None,
        };
        let uses = self.resource_uses(&props.uses);
        for (name, span) in scope.unused_params() {
            self.errors.push(CheckError::UnusedParam {
                name: name.to_string(),
                span,
            });
        }
        if !ok {
            return None;
        }
        Some(ir::Action {
            name: a.name.name.clone(),
            doc: item.doc.clone(),
            params,
            output,
            generator: generator?,
            prompt: prompt?,
            role,
            guard: guard?,
            pre,
            pre_guard,
            effect,
            idempotent: props.idempotent.is_some(),
            retry: props.retry.map(|r| r.value),
            retry_span: props.retry.map(|r| r.span),
            timeout_ms: props.timeout.map(|t| t.value.0),
            uses: uses?,
            strategy,
            feedback: match props.feedback.map(|f| f.value) {
                Some(ast::FeedbackPolicy::Last) => ir::FeedbackPolicy::Last,
                Some(ast::FeedbackPolicy::All) => ir::FeedbackPolicy::All,
                Some(ast::FeedbackPolicy::LastN(n)) => ir::FeedbackPolicy::LastN(n),
                None => ir::FeedbackPolicy::LastN(3),
            },
            max_tokens: props.max_tokens.map(|m| m.value),
            p: props.p.map(|p| p.value),
            span: item.span,
            name_span: a.name.span,
        })
    }

    /// E0230 for `best-of` with an effect; W0008 for each `{feedback}`,
    /// `{previous}` or `{history}` that `resample` leaves empty.
    fn strategy_findings(
        &mut self,
        span: Span,
        strategy: ir::Strategy,
        props: &ast::ActionProps,
        templates: [&Option<ir::Template>; 2],
    ) {
        if let (ir::Strategy::BestOf(_), Some(effect)) = (strategy, &props.effect) {
            self.errors.push(CheckError::BestOfEffect {
                strategy: span,
                effect: effect.span,
            });
        }
        if strategy != ir::Strategy::Resample {
            return;
        }
        let uses_context = templates
            .iter()
            .filter_map(|t| t.as_ref())
            .any(|t| t.parts.iter().any(ir::TemplatePart::is_refinement));
        if !uses_context {
            return;
        }
        let strings = props
            .generate
            .iter()
            .map(|g| &g.prompt)
            .chain(props.role.as_ref());
        for s in strings {
            for part in &s.parts {
                if let ast::StringPart::Interpolation(path) = part {
                    if let [name] = path.as_slice() {
                        if matches!(name.name.as_str(), "feedback" | "previous" | "history") {
                            self.errors.push(CheckError::ResampleContext {
                                name: name.name.clone(),
                                span: name.span,
                                strategy: span,
                            });
                        }
                    }
                }
            }
        }
    }

    fn effect(&mut self, call: &ast::Call, output: &Ty, a: &ast::Action) -> Option<ir::Effect> {
        let Some(sym) = self.tables.effects.get(&call.callee.name).copied() else {
            self.unknown(NameKind::Effect, &call.callee);
            return None;
        };
        let decl = self.program.externs.get(sym.id.index())?.clone();
        if let Some(subject) = &decl.subject {
            if !subject.accepts(output) {
                self.errors.push(CheckError::GuardSubject {
                    guard: call.callee.name.clone(),
                    expected: subject.clone(),
                    found: output.clone(),
                    span: call.span,
                    artifact: Some(a.output.span()),
                });
                return None;
            }
        }
        let mut scope = Scope::globals();
        let args = self.bind_call(call, &decl.params, Some(decl.span), &mut scope)?;
        Some(ir::Effect {
            effect: sym.id,
            args,
            span: call.span,
        })
    }

    pub(super) fn resource_uses(
        &mut self,
        uses: &[ast::ResourceUse],
    ) -> Option<Vec<ir::ResourceUse>> {
        let mut out = Vec::with_capacity(uses.len());
        let mut ok = true;
        for u in uses {
            match self.tables.resources.get(&u.name.name).copied() {
                Some(sym) => {
                    self.used_resources[sym.id as usize] = true;
                    out.push(ir::ResourceUse {
                        resource: ir::ResourceId(sym.id),
                        amount: u.amount.value,
                        span: u.name.span.to(u.amount.span),
                    });
                }
                None => {
                    self.unknown(NameKind::Resource, &u.name);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}
