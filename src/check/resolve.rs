//! Name resolution and type checking: AST items to the checked program.
//!
//! One pass registers every item in its namespace; then types, externs,
//! inputs, generators, guards, action and task signatures, and finally
//! action, task and test bodies are resolved. Lookups that fail are
//! reported once, with a suggestion, and the item is left out of the
//! program; checking goes on.

mod actions;
mod guards;
mod tasks;
mod types;
mod values;

use std::collections::HashMap;

use super::error::{CheckError, NameKind};
use super::ir::{self, ExternId, GeneratorId, Program, Ty};
use crate::source::{FileId, SourceMap, Span};
use crate::syntax::ast;

/// The generator form that lists providers to try in order.
pub const FALLBACK: &str = "fallback";

pub(super) fn resolve(
    sources: &SourceMap,
    files: &[(FileId, ast::File, bool)],
) -> (Program, Vec<CheckError>) {
    let mut r = Resolver::new(sources);
    r.register(files);
    r.resolve_all();
    r.judges_outside_answers();
    r.report_unused();
    // warnings are about the file being checked; a library file it uses
    // is checked on its own
    let root = files.iter().find(|(_, _, std)| !std).map(|(id, _, _)| *id);
    let mut errors = r.errors;
    errors.retain(|e| match e {
        CheckError::Unused { span, .. }
        | CheckError::UnusedImport { span, .. }
        | CheckError::UnusedParam { span, .. } => Some(span.file) == root,
        _ => true,
    });
    (r.program, errors)
}

/// A defined name: what it is, where it was defined, whether it is used.
#[derive(Debug, Clone, Copy)]
struct Sym<T> {
    id: T,
    span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GuardSym {
    Extern(ExternId),
    User(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GenSym {
    /// An extern generator (`llm`, `replay`): called with arguments.
    Kind(ExternId),
    /// A `generator NAME = …` instance.
    Named(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallSym {
    Action(u32),
    Task(u32),
}

/// Where a name was imported with `use std.{…}`.
#[derive(Debug, Clone, Copy)]
struct Import {
    span: Span,
    used: bool,
}

#[derive(Default)]
struct Tables {
    types: HashMap<String, Sym<u32>>,
    guards: HashMap<String, Sym<GuardSym>>,
    generators: HashMap<String, Sym<GenSym>>,
    effects: HashMap<String, Sym<ExternId>>,
    resources: HashMap<String, Sym<u32>>,
    callables: HashMap<String, Sym<CallSym>>,
    inputs: HashMap<String, Sym<u32>>,
    /// Standard library guards, visible once imported.
    std_guards: HashMap<String, Sym<GuardSym>>,
    imports: HashMap<String, Import>,
}

/// Resolution state of a lazily resolved item.
#[derive(Debug, Clone, PartialEq)]
enum State<T> {
    Todo,
    InProgress,
    Done(T),
    Failed,
}

/// The AST of each item kind, by id, with its doc comment and file.
struct Items<'a> {
    types: Vec<(&'a ast::TypeDef, Option<&'a str>)>,
    guards: Vec<(&'a ast::GuardDef, Option<&'a str>)>,
    generators: Vec<&'a ast::GeneratorDef>,
    actions: Vec<(&'a ast::Action, &'a ast::Item)>,
    tasks: Vec<(&'a ast::Task, &'a ast::Item)>,
    tests: Vec<&'a ast::Test>,
    inputs: Vec<(&'a ast::Input, &'a ast::Item)>,
    resources: Vec<&'a ast::Resource>,
    externs: Vec<(&'a ast::Extern, &'a ast::Item, bool)>,
    uses: Vec<(&'a ast::Ident, FileId)>,
}

struct Resolver<'a> {
    sources: &'a SourceMap,
    tables: Tables,
    items: Items<'a>,
    errors: Vec<CheckError>,
    program: Program,
    type_state: Vec<State<Ty>>,
    /// Type aliases being resolved, innermost last (for cycle reports).
    type_stack: Vec<u32>,
    guard_state: Vec<State<ir::GuardDef>>,
    /// Guard definitions being resolved, innermost last.
    guard_stack: Vec<u32>,
    /// How many guard definitions deep each resolved one is, by its
    /// `GuardId` (a guard using no other definition is 1).
    guard_depth: Vec<usize>,
    /// Whether a chain of definitions too deep (E0217) was reported: once
    /// is enough, a hostile file could have thousands.
    too_deep_reported: bool,
    /// Signatures resolved before bodies: (params, output).
    action_sigs: Vec<Option<(Vec<ir::Param>, Ty)>>,
    task_sigs: Vec<Option<(Vec<ir::Param>, Option<Ty>)>>,
    /// Usage marks for warnings, by item kind and id.
    used_types: Vec<bool>,
    used_guards: Vec<bool>,
    used_generators: Vec<bool>,
    used_actions: Vec<bool>,
    used_inputs: Vec<bool>,
    used_resources: Vec<bool>,
    /// Named generator ids (`Items::generators` index) to IR ids.
    generator_ids: Vec<Option<GeneratorId>>,
    /// Guard ids (`Items::guards` index) to IR ids, once resolved.
    guard_ids: Vec<Option<ir::GuardId>>,
    /// Extern declarations by `Items::externs` index.
    extern_ids: Vec<ExternId>,
    /// Placeholder IR nodes are replaced as bodies resolve; `None` when an
    /// action or task could not be resolved.
    actions_out: Vec<Option<ir::Action>>,
    tasks_out: Vec<Option<ir::Task>>,
}

impl<'a> Resolver<'a> {
    fn new(sources: &'a SourceMap) -> Self {
        Resolver {
            sources,
            tables: Tables::default(),
            items: Items {
                types: Vec::new(),
                guards: Vec::new(),
                generators: Vec::new(),
                actions: Vec::new(),
                tasks: Vec::new(),
                tests: Vec::new(),
                inputs: Vec::new(),
                resources: Vec::new(),
                externs: Vec::new(),
                uses: Vec::new(),
            },
            errors: Vec::new(),
            program: Program {
                version: ir::IR_VERSION,
                files: sources.files().map(|(_, f)| f.name.clone()).collect(),
                defaults: ir::Defaults::default(),
                types: Vec::new(),
                inputs: Vec::new(),
                resources: Vec::new(),
                externs: Vec::new(),
                generators: Vec::new(),
                guards: Vec::new(),
                actions: Vec::new(),
                tasks: Vec::new(),
                tests: Vec::new(),
            },
            type_state: Vec::new(),
            type_stack: Vec::new(),
            guard_state: Vec::new(),
            guard_stack: Vec::new(),
            guard_depth: Vec::new(),
            too_deep_reported: false,
            action_sigs: Vec::new(),
            task_sigs: Vec::new(),
            used_types: Vec::new(),
            used_guards: Vec::new(),
            used_generators: Vec::new(),
            used_actions: Vec::new(),
            used_inputs: Vec::new(),
            used_resources: Vec::new(),
            generator_ids: Vec::new(),
            guard_ids: Vec::new(),
            extern_ids: Vec::new(),
            actions_out: Vec::new(),
            tasks_out: Vec::new(),
        }
    }

    // ─── registration ───────────────────────────────────────────────────

    fn register(&mut self, files: &'a [(FileId, ast::File, bool)]) {
        for (file_id, file, std) in files {
            let name = &self.sources.get(*file_id).name;
            let prelude =
                *std && (name == crate::stdlib::PRELUDE || name == crate::stdlib::HOST_PRELUDE);
            for item in &file.items {
                self.register_item(item, *std, prelude, *file_id);
            }
        }
        // imports come after every std guard is known
        let uses = std::mem::take(&mut self.items.uses);
        for (name, _) in &uses {
            self.import_std(name);
        }
        self.items.uses = uses;
    }

    fn register_item(&mut self, item: &'a ast::Item, std: bool, prelude: bool, file: FileId) {
        let doc = item.doc.as_deref();
        match &item.kind {
            ast::ItemKind::Use(ast::Use::Std(names)) => {
                for n in names {
                    self.items.uses.push((n, file));
                }
            }
            ast::ItemKind::Use(ast::Use::File(_)) => {}
            ast::ItemKind::Type(t) => {
                let id = self.items.types.len() as u32;
                if define(
                    &mut self.tables.types,
                    &mut self.errors,
                    NameKind::Type,
                    &t.name,
                    id,
                ) {
                    self.items.types.push((t, doc));
                    self.type_state.push(State::Todo);
                    self.used_types.push(std);
                }
            }
            ast::ItemKind::Guard(g) => {
                let id = self.items.guards.len() as u32;
                if define(
                    &mut self.tables.guards,
                    &mut self.errors,
                    NameKind::Guard,
                    &g.name,
                    GuardSym::User(id),
                ) {
                    self.items.guards.push((g, doc));
                    self.guard_state.push(State::Todo);
                    self.used_guards.push(std);
                    self.guard_ids.push(None);
                }
            }
            ast::ItemKind::Extern(e) => {
                let id = ExternId(self.items.externs.len() as u32);
                let ok = match e.kind {
                    ast::ExternKind::Guard => {
                        let table = if std && !prelude {
                            &mut self.tables.std_guards
                        } else {
                            &mut self.tables.guards
                        };
                        define(
                            table,
                            &mut self.errors,
                            NameKind::Guard,
                            &e.name,
                            GuardSym::Extern(id),
                        )
                    }
                    ast::ExternKind::Generator => define(
                        &mut self.tables.generators,
                        &mut self.errors,
                        NameKind::Generator,
                        &e.name,
                        GenSym::Kind(id),
                    ),
                    ast::ExternKind::Effect => define(
                        &mut self.tables.effects,
                        &mut self.errors,
                        NameKind::Effect,
                        &e.name,
                        id,
                    ),
                };
                if ok {
                    self.items.externs.push((e, item, std));
                    self.extern_ids.push(id);
                }
            }
            ast::ItemKind::Generator(g) => {
                let id = self.items.generators.len() as u32;
                if define(
                    &mut self.tables.generators,
                    &mut self.errors,
                    NameKind::Generator,
                    &g.name,
                    GenSym::Named(id),
                ) {
                    self.items.generators.push(g);
                    self.used_generators.push(std);
                    self.generator_ids.push(None);
                }
            }
            ast::ItemKind::Resource(res) => {
                let id = self.items.resources.len() as u32;
                if define(
                    &mut self.tables.resources,
                    &mut self.errors,
                    NameKind::Resource,
                    &res.name,
                    id,
                ) {
                    self.items.resources.push(res);
                    self.used_resources.push(std);
                }
            }
            ast::ItemKind::Input(i) => {
                let id = self.items.inputs.len() as u32;
                if define(
                    &mut self.tables.inputs,
                    &mut self.errors,
                    NameKind::Input,
                    &i.name,
                    id,
                ) {
                    self.items.inputs.push((i, item));
                    self.used_inputs.push(std);
                }
            }
            ast::ItemKind::Action(a) => {
                let id = self.items.actions.len() as u32;
                if define(
                    &mut self.tables.callables,
                    &mut self.errors,
                    NameKind::Action,
                    &a.name,
                    CallSym::Action(id),
                ) {
                    self.items.actions.push((a, item));
                    self.used_actions.push(std);
                }
            }
            ast::ItemKind::Task(t) => {
                let id = self.items.tasks.len() as u32;
                if define(
                    &mut self.tables.callables,
                    &mut self.errors,
                    NameKind::Task,
                    &t.name,
                    CallSym::Task(id),
                ) {
                    self.items.tasks.push((t, item));
                }
            }
            ast::ItemKind::Test(t) => self.items.tests.push(t),
            ast::ItemKind::Default(d) => match d {
                ast::Default::Retry(v) => self.program.defaults.retry = Some(v.value),
                ast::Default::Timeout(v) => self.program.defaults.timeout_ms = Some(v.value.0),
                ast::Default::P(v) => self.program.defaults.p = Some(v.value),
                ast::Default::MaxTokens(v) => self.program.defaults.max_tokens = Some(v.value),
            },
        }
    }

    fn import_std(&mut self, name: &ast::Ident) {
        let Some(sym) = self.tables.std_guards.get(&name.name).copied() else {
            let suggestion = suggest(&name.name, self.tables.std_guards.keys());
            self.errors.push(CheckError::UnknownStd {
                name: name.name.clone(),
                span: name.span,
                suggestion,
            });
            return;
        };
        if let Some(existing) = self.tables.guards.get(&name.name) {
            if existing.id != sym.id {
                self.errors.push(CheckError::Duplicate {
                    kind: NameKind::Guard,
                    name: name.name.clone(),
                    span: name.span,
                    first: existing.span,
                });
            }
            return;
        }
        self.tables.guards.insert(name.name.clone(), sym);
        self.tables.imports.insert(
            name.name.clone(),
            Import {
                span: name.span,
                used: false,
            },
        );
    }

    // ─── resolution ─────────────────────────────────────────────────────

    fn resolve_all(&mut self) {
        for i in 0..self.items.types.len() {
            self.resolve_type_def(i as u32);
        }
        // named types in the program, in definition order
        for (i, state) in self.type_state.iter().enumerate() {
            if let State::Done(ty) = state {
                let (def, doc) = self.items.types[i];
                self.program.types.push(ir::TypeDef {
                    name: def.name.name.clone(),
                    ty: ty.clone(),
                    doc: doc.map(str::to_string),
                    span: def.name.span,
                });
            }
        }
        for i in 0..self.items.externs.len() {
            self.resolve_extern(i);
        }
        for i in 0..self.items.resources.len() {
            let r = self.items.resources[i];
            self.program.resources.push(ir::Resource {
                name: r.name.name.clone(),
                size: r.size.value,
                shared: r.shared.is_some(),
                span: r.name.span,
            });
        }
        for i in 0..self.items.inputs.len() {
            self.resolve_input(i);
        }
        for i in 0..self.items.generators.len() {
            self.resolve_named_generator(i);
        }
        for i in 0..self.items.guards.len() {
            self.resolve_guard_def(i as u32);
        }
        self.resolve_signatures();
        // sized once: actions are large, and doubling would copy them all
        self.actions_out.reserve_exact(self.items.actions.len());
        self.tasks_out.reserve_exact(self.items.tasks.len());
        for i in 0..self.items.actions.len() {
            let action = self.resolve_action(i);
            self.actions_out.push(action);
        }
        for i in 0..self.items.tasks.len() {
            let task = self.resolve_task(i);
            self.tasks_out.push(task);
        }
        for i in 0..self.items.tests.len() {
            self.resolve_test(i);
        }
        // ids were assigned at registration; a missing body leaves the
        // program without that item, which only happens with errors
        self.program.actions = Vec::with_capacity(self.actions_out.len());
        self.program
            .actions
            .extend(self.actions_out.drain(..).flatten());
        self.program.tasks = Vec::with_capacity(self.tasks_out.len());
        self.program
            .tasks
            .extend(self.tasks_out.drain(..).flatten());
    }

    fn resolve_extern(&mut self, i: usize) {
        let (e, item, std) = self.items.externs[i];
        let params = self.params(&e.params);
        let subject = e.subject.as_ref().and_then(|t| self.type_expr(t));
        let kind = match e.kind {
            ast::ExternKind::Guard => ir::ExternKind::Guard,
            ast::ExternKind::Generator => ir::ExternKind::Generator,
            ast::ExternKind::Effect => ir::ExternKind::Effect,
        };
        self.program.externs.push(ir::Extern {
            kind,
            name: e.name.name.clone(),
            params,
            subject,
            doc: item.doc.clone(),
            std,
            span: e.name.span,
        });
    }

    fn resolve_named_generator(&mut self, i: usize) {
        let g = self.items.generators[i];
        let id = self.generator_instance(&g.kind, Some(g.name.name.clone()));
        self.generator_ids[i] = id;
    }

    /// Resolves a generator reference: a named instance, or an extern
    /// generator called with arguments (a new instance).
    fn generator_instance(
        &mut self,
        call: &ast::Call,
        name: Option<String>,
    ) -> Option<GeneratorId> {
        if call.callee.name == FALLBACK && !self.tables.generators.contains_key(FALLBACK) {
            return self.fallback_instance(call, name);
        }
        let sym = self.lookup_generator(&call.callee)?;
        match sym {
            GenSym::Named(n) => {
                if name.is_some() {
                    // `generator a = b`: an alias of another instance
                    return self.generator_ids.get(n as usize).copied().flatten();
                }
                if let Some(args) = &call.args {
                    if !args.is_empty() {
                        self.errors.push(CheckError::Arity {
                            callee: call.callee.name.clone(),
                            span: args[0].span.to(args[args.len() - 1].span),
                            takes: 0,
                            given: args.len(),
                            missing: Vec::new(),
                            def: Some(self.items.generators[n as usize].name.span),
                            pre_subject: false,
                        });
                        return None;
                    }
                }
                self.used_generators[n as usize] = true;
                self.generator_ids.get(n as usize).copied().flatten()
            }
            GenSym::Kind(ext) => {
                let params = self.program.externs.get(ext.index())?.params.clone();
                let def = self.program.externs[ext.index()].span;
                let mut scope = values::Scope::globals();
                let args = self.bind_call(call, &params, Some(def), &mut scope)?;
                let id = GeneratorId(self.program.generators.len() as u32);
                let name = name.unwrap_or_else(|| format!("{}#{}", call.callee.name, id.0));
                self.program.generators.push(ir::Generator {
                    name,
                    kind: ext,
                    args,
                    span: call.span,
                    providers: Vec::new(),
                });
                Some(id)
            }
        }
    }

    /// `fallback(a, b, …)`: a new instance that is `a`, with the providers
    /// of `b, …` tried after it when it fails in transport. Each argument
    /// is a generator reference (a named instance or an extern generator
    /// called with its arguments); at least two (E0238).
    fn fallback_instance(&mut self, call: &ast::Call, name: Option<String>) -> Option<GeneratorId> {
        let args = call.args.as_deref().unwrap_or(&[]);
        if args.len() < 2 {
            self.errors.push(CheckError::BadFallback {
                span: call.span,
                why: format!(
                    "`fallback` lists the providers to try in order, and needs at least two \
                     (it was given {})",
                    args.len()
                ),
            });
            return None;
        }
        let mut ids = Vec::new();
        for arg in args {
            let ast::Expr::Call(c) = &arg.value else {
                self.errors.push(CheckError::BadFallback {
                    span: arg.span,
                    why: "each argument of `fallback` is a generator: a named generator or \
                          a call such as `llm(model: \"m\")`"
                        .to_string(),
                });
                return None;
            };
            if let Some(n) = &arg.name {
                self.errors.push(CheckError::BadFallback {
                    span: n.span,
                    why: "the arguments of `fallback` are generators in order, not named"
                        .to_string(),
                });
                return None;
            }
            ids.push(self.generator_instance(c, None)?);
        }
        let mut providers = Vec::new();
        for id in &ids {
            let inst = self.program.generators.get(id.index())?;
            if inst.providers.is_empty() {
                providers.push(*id);
            } else {
                providers.extend(inst.providers.iter().copied());
            }
        }
        let first = self.program.generators.get(providers[0].index())?.clone();
        let id = GeneratorId(self.program.generators.len() as u32);
        self.program.generators.push(ir::Generator {
            name: name.unwrap_or_else(|| format!("{FALLBACK}#{}", id.0)),
            kind: first.kind,
            args: first.args,
            span: call.span,
            providers,
        });
        Some(id)
    }

    fn resolve_input(&mut self, i: usize) {
        let (input, item) = self.items.inputs[i];
        let ty = self.type_expr(&input.ty);
        let source = match (&input.default, &ty) {
            (Some(d), Some(ty)) => self.input_source(d, ty),
            _ => None,
        };
        self.program.inputs.push(ir::Input {
            name: input.name.name.clone(),
            ty: ty.unwrap_or(Ty::Text),
            source,
            doc: item.doc.clone(),
            span: input.name.span,
        });
    }

    fn input_source(&mut self, expr: &ast::Expr, ty: &Ty) -> Option<ir::InputSource> {
        if let ast::Expr::Call(call) = expr {
            if let Some(args) = &call.args {
                let text = |e: &ast::Expr| match e {
                    ast::Expr::String(s) => s.as_plain(),
                    _ => None,
                };
                let (source, given) = match call.callee.name.as_str() {
                    "file" => {
                        let path = args.first().and_then(|a| text(&a.value));
                        (path.map(|path| ir::InputSource::File { path }), Ty::Text)
                    }
                    "folder" => {
                        let path = args.first().and_then(|a| text(&a.value));
                        let glob = args
                            .iter()
                            .find(|a| a.name.as_ref().is_some_and(|n| n.name == "glob"))
                            .and_then(|a| text(&a.value));
                        (
                            path.map(|path| ir::InputSource::Folder { path, glob }),
                            Ty::List {
                                of: Box::new(Ty::Text),
                                max: None,
                            },
                        )
                    }
                    _ => {
                        self.errors.push(CheckError::InputSource {
                            name: call.callee.name.clone(),
                            span: call.span,
                        });
                        return None;
                    }
                };
                // a `Program` is fixed when the workflow is written: never
                // read from a file that a run (or its model) may write
                let textual = |t: &Ty| {
                    !matches!(t, Ty::Program)
                        && (t.accepts(&Ty::Text) || matches!(t, Ty::Code { .. } | Ty::Json { .. }))
                };
                let fits = match (&given, ty) {
                    (Ty::List { .. }, Ty::List { of, .. }) => textual(of),
                    (Ty::Text, t) => textual(t),
                    _ => false,
                };
                if !fits {
                    self.errors.push(CheckError::InputDefault {
                        expected: ty.clone(),
                        found: given,
                        span: call.span,
                    });
                    return None;
                }
                if source.is_none() {
                    self.errors.push(CheckError::InputSource {
                        name: call.callee.name.clone(),
                        span: call.span,
                    });
                }
                return source;
            }
        }
        let (value, found) = self.constant(expr)?;
        if let Some(found) = found {
            if !ty.accepts(&found) {
                self.errors.push(CheckError::InputDefault {
                    expected: ty.clone(),
                    found,
                    span: expr.span(),
                });
                return None;
            }
        }
        Some(ir::InputSource::Value { value })
    }

    // ─── lookups ────────────────────────────────────────────────────────

    fn lookup_generator(&mut self, name: &ast::Ident) -> Option<GenSym> {
        if let Some(sym) = self.tables.generators.get(&name.name) {
            return Some(sym.id);
        }
        self.unknown(NameKind::Generator, name);
        None
    }

    /// Reports an unknown name: the wrong kind when another namespace has
    /// it, otherwise unknown with a suggestion.
    fn unknown(&mut self, kind: NameKind, name: &ast::Ident) {
        if let Some((found, def)) = self.other_kind(kind, &name.name) {
            self.errors.push(CheckError::WrongKind {
                name: name.name.clone(),
                span: name.span,
                expected: kind,
                found,
                def,
            });
            return;
        }
        let in_std = kind == NameKind::Guard && self.tables.std_guards.contains_key(&name.name);
        let suggestion = match kind {
            NameKind::Type => crate::diagnostics::suggest::closest(
                &name.name,
                self.tables
                    .types
                    .keys()
                    .map(String::as_str)
                    .chain(types::BUILTIN_NAMES.iter().copied()),
            )
            .map(str::to_string),
            NameKind::Guard => suggest(&name.name, self.tables.guards.keys()),
            NameKind::Generator => suggest(&name.name, self.tables.generators.keys()),
            NameKind::Effect => suggest(&name.name, self.tables.effects.keys()),
            NameKind::Action | NameKind::Task | NameKind::Callable => {
                suggest(&name.name, self.tables.callables.keys())
            }
            NameKind::Resource => suggest(&name.name, self.tables.resources.keys()),
            NameKind::Input => suggest(&name.name, self.tables.inputs.keys()),
            _ => None,
        };
        self.errors.push(CheckError::UnknownName {
            kind,
            name: name.name.clone(),
            span: name.span,
            suggestion,
            in_std,
        });
    }

    /// The kind and definition of `name` in a namespace other than `kind`.
    fn other_kind(&self, kind: NameKind, name: &str) -> Option<(NameKind, Span)> {
        let t = &self.tables;
        let candidates: [(NameKind, Option<Span>); 7] = [
            (NameKind::Guard, t.guards.get(name).map(|s| s.span)),
            (NameKind::Generator, t.generators.get(name).map(|s| s.span)),
            (NameKind::Effect, t.effects.get(name).map(|s| s.span)),
            (NameKind::Callable, t.callables.get(name).map(|s| s.span)),
            (NameKind::Type, t.types.get(name).map(|s| s.span)),
            (NameKind::Resource, t.resources.get(name).map(|s| s.span)),
            (NameKind::Input, t.inputs.get(name).map(|s| s.span)),
        ];
        let same = |k: NameKind| {
            k == kind
                || (k == NameKind::Callable && matches!(kind, NameKind::Action | NameKind::Task))
                || (k == NameKind::Input && kind == NameKind::Value)
        };
        candidates
            .into_iter()
            .find(|(k, s)| s.is_some() && !same(*k))
            .map(|(k, s)| {
                let k = match (k, t.callables.get(name).map(|s| s.id)) {
                    (NameKind::Callable, Some(CallSym::Action(_))) => NameKind::Action,
                    (NameKind::Callable, Some(CallSym::Task(_))) => NameKind::Task,
                    (k, _) => k,
                };
                (k, s.unwrap_or(Span::new(FileId(0), 0, 0)))
            })
    }

    // ─── warnings ───────────────────────────────────────────────────────

    fn report_unused(&mut self) {
        let mut warnings = Vec::new();
        let kinds: [(NameKind, &Vec<bool>, Vec<&ast::Ident>); 6] = [
            (
                NameKind::Type,
                &self.used_types,
                self.items.types.iter().map(|(t, _)| &t.name).collect(),
            ),
            (
                NameKind::Guard,
                &self.used_guards,
                self.items.guards.iter().map(|(g, _)| &g.name).collect(),
            ),
            (
                NameKind::Generator,
                &self.used_generators,
                self.items.generators.iter().map(|g| &g.name).collect(),
            ),
            (
                NameKind::Action,
                &self.used_actions,
                self.items.actions.iter().map(|(a, _)| &a.name).collect(),
            ),
            (
                NameKind::Input,
                &self.used_inputs,
                self.items.inputs.iter().map(|(i, _)| &i.name).collect(),
            ),
            (
                NameKind::Resource,
                &self.used_resources,
                self.items.resources.iter().map(|r| &r.name).collect(),
            ),
        ];
        for (kind, used, names) in kinds {
            for (used, name) in used.iter().zip(names) {
                if !used && !name.name.starts_with('_') {
                    warnings.push(CheckError::Unused {
                        kind,
                        name: name.name.clone(),
                        span: name.span,
                    });
                }
            }
        }
        for (name, import) in &self.tables.imports {
            if !import.used {
                warnings.push(CheckError::UnusedImport {
                    name: name.clone(),
                    span: import.span,
                });
            }
        }
        self.errors.extend(warnings);
    }
}

/// Defines `name` in `table`; reports a duplicate and returns false when
/// it is already there.
fn define<T: Copy>(
    table: &mut HashMap<String, Sym<T>>,
    errors: &mut Vec<CheckError>,
    kind: NameKind,
    name: &ast::Ident,
    id: T,
) -> bool {
    if let Some(first) = table.get(&name.name) {
        errors.push(CheckError::Duplicate {
            kind,
            name: name.name.clone(),
            span: name.span,
            first: first.span,
        });
        return false;
    }
    table.insert(
        name.name.clone(),
        Sym {
            id,
            span: name.span,
        },
    );
    true
}

/// The closest of `candidates` to `name`, if close enough to be a typo.
fn suggest<'s>(name: &str, candidates: impl Iterator<Item = &'s String>) -> Option<String> {
    crate::diagnostics::suggest::closest(name, candidates.map(String::as_str)).map(str::to_string)
}
