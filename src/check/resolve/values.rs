//! Values: literals, names in scope, string templates, and binding call
//! arguments to parameters.

use std::collections::HashMap;

use super::Resolver;
use crate::check::error::{CheckError, NameKind};
use crate::check::ir::{self, Operand, Template, TemplatePart, Ty, Value};
use crate::source::Span;
use crate::syntax::ast;

/// The values a position can name.
pub(super) struct Scope {
    /// Parameters of the enclosing action, task or guard, with a use mark.
    params: Vec<(String, Ty, Span, bool)>,
    /// Subtask labels of the enclosing method: (label, artifact type, callee).
    labels: Vec<(String, Option<Ty>, String)>,
    /// `labels` by name (the first of a name), so lookups stay O(1) in
    /// methods with many subtasks.
    label_index: HashMap<String, usize>,
    inputs: bool,
    feedback: bool,
    /// The item of the map subtask being bound (`for item in …`): its
    /// name, type and a use mark.
    item: Option<(String, Ty, bool)>,
}

impl Scope {
    /// Only literals: for parameter defaults.
    pub(super) fn literals() -> Scope {
        Scope {
            params: Vec::new(),
            labels: Vec::new(),
            label_index: HashMap::new(),
            inputs: false,
            feedback: false,
            item: None,
        }
    }

    /// Inputs and literals: for generator arguments.
    pub(super) fn globals() -> Scope {
        Scope {
            inputs: true,
            ..Scope::literals()
        }
    }

    /// The parameters of an item, the inputs and literals.
    pub(super) fn with_params(params: &[ir::Param]) -> Scope {
        Scope {
            params: params
                .iter()
                .map(|p| (p.name.clone(), p.ty.clone(), p.span, false))
                .collect(),
            ..Scope::globals()
        }
    }

    /// Lets templates name `{feedback}`, `{previous}` and `{history}`
    /// (an action's prompt and role), or no longer.
    pub(super) fn attempt_context(&mut self, allowed: bool) {
        self.feedback = allowed;
    }

    pub(super) fn add_label(&mut self, label: String, ty: Option<Ty>, callee: String) {
        self.label_index
            .entry(label.clone())
            .or_insert(self.labels.len());
        self.labels.push((label, ty, callee));
    }

    /// Parameters never named, for W0003.
    pub(super) fn unused_params(&self) -> impl Iterator<Item = (&str, Span)> {
        self.params
            .iter()
            .filter(|(name, _, _, used)| !used && !name.starts_with('_'))
            .map(|(name, _, span, _)| (name.as_str(), *span))
    }

    pub(super) fn label_index(&self, name: &str) -> Option<usize> {
        self.label_index.get(name).copied()
    }

    /// Whether `name` is a parameter or a label here (inputs apart).
    pub(super) fn has_local(&self, name: &str) -> bool {
        self.label_index.contains_key(name) || self.params.iter().any(|p| p.0 == name)
    }

    /// Whether this scope sees the program's inputs.
    pub(super) fn sees_inputs(&self) -> bool {
        self.inputs
    }

    /// The artifact type of label `index`.
    pub(super) fn label_type(&self, index: usize) -> Option<&Ty> {
        self.labels.get(index).and_then(|l| l.1.as_ref())
    }

    pub(super) fn set_label_type(&mut self, index: usize, ty: Option<Ty>) {
        if let Some(l) = self.labels.get_mut(index) {
            l.1 = ty;
        }
    }

    /// Whether `name` is a parameter of the enclosing definition.
    pub(super) fn has_param(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.0 == name)
    }

    /// Puts a map's item in scope (for its call's arguments).
    pub(super) fn enter_item(&mut self, name: String, ty: Ty) {
        self.item = Some((name, ty, false));
    }

    /// Takes the item out of scope again; whether it was named.
    pub(super) fn leave_item(&mut self) -> bool {
        self.item.take().is_some_and(|(_, _, used)| used)
    }
}

impl Resolver<'_> {
    /// A literal value and its type (`None` for an empty list, which fits
    /// any list).
    pub(super) fn constant(&mut self, expr: &ast::Expr) -> Option<(Value, Option<Ty>)> {
        let mut scope = Scope::literals();
        match self.operand(expr, &mut scope)? {
            (Operand::Const { value }, ty) => Some((value, ty)),
            _ => None,
        }
    }

    pub(super) fn operand(
        &mut self,
        expr: &ast::Expr,
        scope: &mut Scope,
    ) -> Option<(Operand, Option<Ty>)> {
        let constant = |value: Value, ty: Ty| Some((Operand::Const { value }, Some(ty)));
        match expr {
            ast::Expr::Int(v) => constant(Value::Int(v.value), Ty::Int),
            ast::Expr::Float(v) => constant(Value::Float(v.value), Ty::Float),
            ast::Expr::Duration(v) => constant(Value::Duration(v.value.0), Ty::Duration),
            ast::Expr::Bool(v) => constant(Value::Bool(v.value), Ty::Bool),
            ast::Expr::String(s) => {
                let template = self.template(s, scope)?;
                match template.parts.as_slice() {
                    [] => constant(Value::Text(String::new()), Ty::Text),
                    [TemplatePart::Text { text }] => constant(Value::Text(text.clone()), Ty::Text),
                    _ => Some((Operand::Template { template }, Some(Ty::Text))),
                }
            }
            ast::Expr::List(items, _) => {
                let mut ops = Vec::with_capacity(items.len());
                let mut elem: Option<(Ty, Span)> = None;
                for item in items {
                    let (op, ty) = self.operand(item, scope)?;
                    if let Some(ty) = ty {
                        match &elem {
                            None => elem = Some((ty, item.span())),
                            Some((first, _)) if first.accepts(&ty) => {}
                            Some((first, first_span)) if ty.accepts(first) => {
                                let _ = first_span;
                                elem = Some((ty, item.span()));
                            }
                            Some((first, _)) => {
                                self.errors.push(CheckError::ArgType {
                                    param: "list element".to_string(),
                                    expected: first.clone(),
                                    found: ty,
                                    span: item.span(),
                                    def: None,
                                });
                                return None;
                            }
                        }
                    }
                    ops.push(op);
                }
                let ty = elem.map(|(t, _)| Ty::List {
                    of: Box::new(t),
                    max: None,
                });
                if ops.iter().all(|o| matches!(o, Operand::Const { .. })) {
                    let values = ops
                        .into_iter()
                        .filter_map(|o| match o {
                            Operand::Const { value } => Some(value),
                            _ => None,
                        })
                        .collect();
                    return Some((
                        Operand::Const {
                            value: Value::List(values),
                        },
                        ty,
                    ));
                }
                Some((Operand::List { items: ops }, ty))
            }
            ast::Expr::Map(entries, _) => self.map(entries, scope),
            ast::Expr::Path(path, _) => {
                let (op, ty) = self.value(path, scope)?;
                Some((op, Some(ty)))
            }
            ast::Expr::Code(c) => constant(
                Value::Text(c.text.clone()),
                Ty::Code {
                    lang: c.lang.name.clone(),
                },
            ),
            ast::Expr::Call(call) => {
                if call.args.is_some() {
                    // a call is not a value here
                    self.not_a_value(&call.callee);
                    return None;
                }
                let (op, ty) = self.value(std::slice::from_ref(&call.callee), scope)?;
                Some((op, Some(ty)))
            }
        }
    }

    /// A map literal: plain keys, each once; the values' type is the most
    /// general of theirs (text-like values of different types make a
    /// `Map<Text>`).
    fn map(
        &mut self,
        entries: &[ast::MapEntry],
        scope: &mut Scope,
    ) -> Option<(Operand, Option<Ty>)> {
        let mut out: Vec<(String, Operand)> = Vec::with_capacity(entries.len());
        let mut spans: Vec<Span> = Vec::with_capacity(entries.len());
        let mut elem: Option<Ty> = None;
        let mut ok = true;
        for entry in entries {
            let Some(key) = entry.key.as_plain() else {
                self.errors.push(CheckError::MapKeyNotPlain {
                    span: entry.key.span,
                });
                ok = false;
                continue;
            };
            if let Some(i) = out.iter().position(|(k, _)| *k == key) {
                self.errors.push(CheckError::DuplicateMember {
                    what: "key",
                    name: key,
                    span: entry.key.span,
                    first: spans[i],
                });
                ok = false;
                continue;
            }
            let Some((op, ty)) = self.operand(&entry.value, scope) else {
                ok = false;
                continue;
            };
            if let Some(ty) = ty {
                elem = match elem.take() {
                    None => Some(ty),
                    Some(first) if first.accepts(&ty) => Some(first),
                    Some(first) if ty.accepts(&first) => Some(ty),
                    Some(first) if Ty::Text.accepts(&first) && Ty::Text.accepts(&ty) => {
                        Some(Ty::Text)
                    }
                    Some(first) => {
                        self.errors.push(CheckError::ArgType {
                            param: format!("map value `{key}`"),
                            expected: first,
                            found: ty,
                            span: entry.value.span(),
                            def: None,
                        });
                        ok = false;
                        continue;
                    }
                };
            }
            out.push((key, op));
            spans.push(entry.key.span);
        }
        if !ok {
            return None;
        }
        let ty = elem.map(|t| Ty::Map { of: Box::new(t) });
        if out.iter().all(|(_, o)| matches!(o, Operand::Const { .. })) {
            let values = out
                .into_iter()
                .filter_map(|(k, o)| match o {
                    Operand::Const { value } => Some((k, value)),
                    _ => None,
                })
                .collect();
            return Some((
                Operand::Const {
                    value: Value::Map(values),
                },
                ty,
            ));
        }
        Some((Operand::Map { entries: out }, ty))
    }

    /// Whether `op`, given for a parameter of type `ty`, keeps every
    /// `Program` in it fixed: a literal, or a parameter or input declared
    /// `Program` (whose own arguments were checked the same way). The
    /// values it is built from otherwise are added to `found`.
    fn fixed_program(
        &self,
        op: &Operand,
        ty: &Ty,
        scope: &Scope,
        path: &ast::Expr,
        found: &mut Vec<(String, Span)>,
    ) -> bool {
        if !contains_program(ty) {
            return true;
        }
        let declared = match op {
            Operand::Const { .. } => return true,
            Operand::Param { index, fields } if fields.is_empty() => {
                scope.params.get(*index as usize).map(|p| &p.1)
            }
            Operand::Input { input, fields } if fields.is_empty() => {
                self.program.inputs.get(input.index()).map(|i| &i.ty)
            }
            _ => None,
        };
        if declared == Some(ty) {
            return true;
        }
        match (op, ty, path) {
            (Operand::List { items }, Ty::List { of, .. }, ast::Expr::List(exprs, _)) => {
                let mut ok = true;
                for (item, expr) in items.iter().zip(exprs) {
                    ok &= self.fixed_program(item, of, scope, expr, found);
                }
                ok
            }
            (Operand::Map { entries }, Ty::Map { of }, ast::Expr::Map(exprs, _)) => {
                let mut ok = true;
                for ((_, item), expr) in entries.iter().zip(exprs) {
                    ok &= self.fixed_program(item, of, scope, &expr.value, found);
                }
                ok
            }
            _ => {
                value_names(path, found);
                false
            }
        }
    }

    fn not_a_value(&mut self, name: &ast::Ident) {
        match self.other_kind(NameKind::Value, &name.name) {
            Some((found, def)) => self.errors.push(CheckError::WrongKind {
                name: name.name.clone(),
                span: name.span,
                expected: NameKind::Value,
                found,
                def,
            }),
            None => self.errors.push(CheckError::UnknownName {
                kind: NameKind::Value,
                name: name.name.clone(),
                span: name.span,
                suggestion: None,
                in_std: false,
            }),
        }
    }

    /// A name in scope, followed by record fields: `plan.steps`.
    pub(super) fn value(
        &mut self,
        path: &[ast::Ident],
        scope: &mut Scope,
    ) -> Option<(Operand, Ty)> {
        let (head, fields) = path.split_first()?;
        let field_names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        let item = scope
            .item
            .as_mut()
            .filter(|(name, _, _)| *name == head.name);
        let (op, mut ty) = if let Some((_, ty, used)) = item {
            *used = true;
            (
                Operand::Item {
                    fields: field_names,
                },
                ty.clone(),
            )
        } else if let Some(index) = scope.label_index(&head.name) {
            let (_, ty, callee) = &scope.labels[index];
            let Some(ty) = ty.clone() else {
                self.errors.push(CheckError::NoArtifact {
                    label: head.name.clone(),
                    callee: callee.clone(),
                    span: head.span,
                });
                return None;
            };
            (
                Operand::Label {
                    index: index as u32,
                    fields: field_names,
                },
                ty,
            )
        } else if let Some(index) = scope.params.iter().position(|p| p.0 == head.name) {
            scope.params[index].3 = true;
            (
                Operand::Param {
                    index: index as u32,
                    fields: field_names,
                },
                scope.params[index].1.clone(),
            )
        } else if let Some(sym) = scope
            .inputs
            .then(|| self.tables.inputs.get(&head.name).copied())
            .flatten()
        {
            self.used_inputs[sym.id as usize] = true;
            let ty = self
                .program
                .inputs
                .get(sym.id as usize)
                .map(|i| i.ty.clone())
                .unwrap_or(Ty::Text);
            (
                Operand::Input {
                    input: ir::InputId(sym.id),
                    fields: field_names,
                },
                ty,
            )
        } else {
            if let Some((found, def)) = self.other_kind(NameKind::Value, &head.name) {
                if found != NameKind::Input {
                    self.errors.push(CheckError::WrongKind {
                        name: head.name.clone(),
                        span: head.span,
                        expected: NameKind::Value,
                        found,
                        def,
                    });
                    return None;
                }
            }
            let mut candidates: Vec<&str> = scope.params.iter().map(|p| p.0.as_str()).collect();
            candidates.extend(scope.item.as_ref().map(|i| i.0.as_str()));
            candidates.extend(scope.labels.iter().map(|l| l.0.as_str()));
            if scope.inputs {
                candidates.extend(self.tables.inputs.keys().map(String::as_str));
            }
            if scope.feedback {
                candidates.extend(["feedback", "previous", "history"]);
            }
            let suggestion =
                crate::diagnostics::suggest::closest(&head.name, candidates).map(str::to_string);
            self.errors.push(CheckError::UnknownName {
                kind: NameKind::Value,
                name: head.name.clone(),
                span: head.span,
                suggestion,
                in_std: false,
            });
            return None;
        };
        for field in fields {
            match ty.field(&field.name) {
                Some(t) => ty = t.clone(),
                None => {
                    let names: Vec<&str> = match &ty {
                        Ty::Record { fields } => fields.iter().map(|(n, _)| n.as_str()).collect(),
                        Ty::Json { of } => match &**of {
                            Ty::Record { fields } => {
                                fields.iter().map(|(n, _)| n.as_str()).collect()
                            }
                            _ => Vec::new(),
                        },
                        _ => Vec::new(),
                    };
                    let suggestion = crate::diagnostics::suggest::closest(&field.name, names)
                        .map(str::to_string);
                    self.errors.push(CheckError::NoField {
                        ty,
                        field: field.name.clone(),
                        span: field.span,
                        suggestion,
                    });
                    return None;
                }
            }
        }
        Some((op, ty))
    }

    pub(super) fn template(&mut self, s: &ast::StringLit, scope: &mut Scope) -> Option<Template> {
        let mut parts = Vec::with_capacity(s.parts.len());
        let mut ok = true;
        for part in &s.parts {
            match part {
                ast::StringPart::Text(t) => parts.push(TemplatePart::Text { text: t.clone() }),
                ast::StringPart::Interpolation(path) => {
                    if let Some(part) = self.refinement(path, scope) {
                        match part {
                            Some(part) => parts.push(part),
                            None => ok = false,
                        }
                        continue;
                    }
                    match self.value(path, scope) {
                        Some((operand, _)) => parts.push(TemplatePart::Value { operand }),
                        None => ok = false,
                    }
                }
            }
        }
        ok.then_some(Template { parts })
    }

    /// `{feedback}`, `{previous}` or `{history}`: `Some(Some(part))` in an
    /// action's prompt or role, `Some(None)` (E0231) elsewhere, `None`
    /// for any other name. A parameter, label or input named `previous`
    /// or `history` is that value, not the attempt's context.
    fn refinement(&mut self, path: &[ast::Ident], scope: &Scope) -> Option<Option<TemplatePart>> {
        let [name] = path else {
            return None;
        };
        let part = match name.name.as_str() {
            "feedback" => TemplatePart::Feedback,
            "previous" => TemplatePart::Previous,
            "history" => TemplatePart::History,
            _ => return None,
        };
        let n = name.name.as_str();
        let in_scope = scope.params.iter().any(|p| p.0 == n)
            || scope.label_index.contains_key(n)
            || (scope.inputs && self.tables.inputs.contains_key(n));
        if in_scope && (part != TemplatePart::Feedback || !scope.feedback) {
            return None;
        }
        if scope.feedback {
            return Some(Some(part));
        }
        self.errors.push(CheckError::RefinementOutsidePrompt {
            name: name.name.clone(),
            span: name.span,
        });
        Some(None)
    }

    /// Binds a call's arguments to `params`: one operand per parameter,
    /// defaults filled in. Reports every mismatch.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn bind_args(
        &mut self,
        callee: &ast::Ident,
        args: &[ast::Arg],
        call_span: Span,
        params: &[ir::Param],
        def: Option<Span>,
        scope: &mut Scope,
        pre_subject: bool,
    ) -> Option<Vec<Operand>> {
        let mut slots: Vec<Option<(Operand, Span)>> = vec![None; params.len()];
        let mut positional = 0usize;
        let mut ok = true;
        let mut too_many = false;
        for arg in args {
            let index = match &arg.name {
                Some(name) => match params.iter().position(|p| p.name == name.name) {
                    Some(i) => i,
                    None => {
                        self.errors.push(CheckError::UnknownNamedArg {
                            name: name.name.clone(),
                            callee: callee.name.clone(),
                            span: name.span,
                            params: params
                                .iter()
                                .map(|p| format!("{}: {}", p.name, p.ty))
                                .collect(),
                        });
                        ok = false;
                        continue;
                    }
                },
                None => {
                    while positional < params.len() && slots[positional].is_some() {
                        positional += 1;
                    }
                    if positional >= params.len() {
                        too_many = true;
                        continue;
                    }
                    positional += 1;
                    positional - 1
                }
            };
            if let Some((_, first)) = &slots[index] {
                self.errors.push(CheckError::ArgTwice {
                    name: params[index].name.clone(),
                    span: arg.span,
                    first: *first,
                });
                ok = false;
                continue;
            }
            if params[index].ty == Ty::Generator {
                let op = self.generator_arg(&arg.value, &params[index], scope);
                ok &= op.is_some();
                let op = op.unwrap_or(Operand::Const {
                    value: Value::Bool(false),
                });
                slots[index] = Some((op, arg.span));
                continue;
            }
            let Some((op, ty)) = self.operand(&arg.value, scope) else {
                // reported; the parameter counts as given
                slots[index] = Some((
                    Operand::Const {
                        value: Value::Bool(false),
                    },
                    arg.span,
                ));
                ok = false;
                continue;
            };
            // a list written out has as many items as it shows: it fits a
            // bounded list parameter it is no longer than
            let ty = match (ty, &arg.value) {
                (Some(Ty::List { of, max: None }), ast::Expr::List(items, _)) => Some(Ty::List {
                    of,
                    max: Some(items.len() as u64),
                }),
                (ty, _) => ty,
            };
            if let Some(ty) = ty {
                if !params[index].ty.accepts(&ty) {
                    self.errors.push(CheckError::ArgType {
                        param: params[index].name.clone(),
                        expected: params[index].ty.clone(),
                        found: ty,
                        span: arg.value.span(),
                        def: Some(params[index].span),
                    });
                    ok = false;
                }
            }
            let mut values = Vec::new();
            if !self.fixed_program(&op, &params[index].ty, scope, &arg.value, &mut values) {
                self.errors.push(CheckError::ValueInProgram {
                    callee: callee.name.clone(),
                    param: params[index].name.clone(),
                    span: arg.value.span(),
                    values,
                    def: def.map(|_| params[index].span),
                    has_files: params
                        .iter()
                        .any(|p| p.name == "files" && matches!(p.ty, Ty::Map { .. })),
                });
                ok = false;
            }
            slots[index] = Some((op, arg.span));
        }
        let missing: Vec<String> = params
            .iter()
            .zip(&slots)
            .filter(|(p, s)| s.is_none() && p.default.is_none())
            .map(|(p, _)| format!("{}: {}", p.name, p.ty))
            .collect();
        if too_many || !missing.is_empty() {
            self.errors.push(CheckError::Arity {
                callee: callee.name.clone(),
                span: call_span,
                takes: params.len(),
                given: args.len(),
                missing: if too_many { Vec::new() } else { missing },
                def,
                pre_subject,
            });
            return None;
        }
        if !ok {
            return None;
        }
        Some(
            params
                .iter()
                .zip(slots)
                .map(|(p, slot)| match slot {
                    Some((op, _)) => op,
                    None => Operand::Const {
                        value: p.default.clone().unwrap_or(Value::Bool(false)),
                    },
                })
                .collect(),
        )
    }

    /// The argument of a `Generator` parameter: a parameter of that type
    /// in scope, or a generator (a named one, or an extern generator
    /// called with its arguments).
    fn generator_arg(
        &mut self,
        expr: &ast::Expr,
        param: &ir::Param,
        scope: &mut Scope,
    ) -> Option<Operand> {
        if let ast::Expr::Call(call) = expr {
            let name = &call.callee;
            let is_param = scope.params.iter().any(|p| p.0 == name.name);
            if !is_param || call.args.is_some() {
                if self.tables.generators.contains_key(&name.name) {
                    let generator = self.generator_instance(call, None)?;
                    return Some(Operand::Generator { generator });
                }
                if !is_param {
                    self.unknown(NameKind::Generator, name);
                    return None;
                }
            }
        }
        let (op, ty) = self.operand(expr, scope)?;
        if ty.as_ref() != Some(&Ty::Generator) {
            self.errors.push(CheckError::ArgType {
                param: param.name.clone(),
                expected: Ty::Generator,
                found: ty.unwrap_or(Ty::Text),
                span: expr.span(),
                def: Some(param.span),
            });
            return None;
        }
        Some(op)
    }

    /// [`Resolver::bind_args`] for a whole call.
    pub(super) fn bind_call(
        &mut self,
        call: &ast::Call,
        params: &[ir::Param],
        def: Option<Span>,
        scope: &mut Scope,
    ) -> Option<Vec<Operand>> {
        let args = call.args.as_deref().unwrap_or(&[]);
        self.bind_args(&call.callee, args, call.span, params, def, scope, false)
    }
}

/// `ty` is or holds `Program`.
fn contains_program(ty: &Ty) -> bool {
    match ty {
        Ty::Program => true,
        Ty::List { of, .. } | Ty::Map { of } => contains_program(of),
        _ => false,
    }
}

/// The names of values an expression reads, with their spans: bare names
/// and interpolations, in lists and maps too.
fn value_names(expr: &ast::Expr, out: &mut Vec<(String, Span)>) {
    match expr {
        ast::Expr::String(s) => {
            for part in &s.parts {
                if let ast::StringPart::Interpolation(path) = part {
                    if let (Some(first), Some(last)) = (path.first(), path.last()) {
                        let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                        out.push((names.join("."), first.span.to(last.span)));
                    }
                }
            }
        }
        ast::Expr::Call(c) if c.args.is_none() => out.push((c.callee.name.clone(), c.callee.span)),
        ast::Expr::Path(path, span) => {
            let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
            out.push((names.join("."), *span));
        }
        ast::Expr::List(items, _) => items.iter().for_each(|i| value_names(i, out)),
        ast::Expr::Map(entries, _) => entries.iter().for_each(|e| value_names(&e.value, out)),
        _ => {}
    }
}
