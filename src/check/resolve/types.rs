//! Type expressions to structural types; type aliases, with cycle
//! detection.

use super::{Resolver, State};
use crate::check::error::{CheckError, NameKind};
use crate::check::ir::{self, Ty};
use crate::source::Span;
use crate::syntax::ast;

/// How deep definitions may build on one another (a type alias through
/// aliases, a guard through guard definitions), and how deep a type may
/// nest: the checker, the runtime and the IR's JSON walk these
/// recursively, so deeper input is an error (E0217), not a stack overflow.
pub const MAX_DEF_DEPTH: usize = 64;

/// How deep a type may nest (`[[Text]]` is 3): above the 64 brackets the
/// syntax allows, below the 128 levels a JSON reader accepts (the IR).
pub const MAX_TYPE_DEPTH: usize = 96;

pub(super) const BUILTIN_NAMES: &[&str] = &[
    "Text",
    "Int",
    "Float",
    "Bool",
    "Duration",
    "Code",
    "Json",
    "Program",
    "Map",
    "Generator",
];

impl Resolver<'_> {
    pub(super) fn resolve_type_def(&mut self, id: u32) -> Option<Ty> {
        match &self.type_state[id as usize] {
            State::Done(ty) => return Some(ty.clone()),
            // in progress: the caller on the stack reports the cycle
            State::Failed | State::InProgress => return None,
            State::Todo => {}
        }
        let (def, _) = self.items.types[id as usize];
        if self.type_stack.len() >= MAX_DEF_DEPTH {
            self.too_deep(CheckError::DefinitionsTooDeep {
                what: "type alias",
                name: def.name.name.clone(),
                span: def.name.span,
                max: MAX_DEF_DEPTH,
            });
            self.type_state[id as usize] = State::Failed;
            // what it names is used, not reported as unused on top
            let mut todo = vec![&def.ty];
            while let Some(t) = todo.pop() {
                match t {
                    ast::TypeExpr::Named { name, arg, .. } => {
                        if let Some(sym) = self.tables.types.get(&name.name) {
                            self.used_types[sym.id as usize] = true;
                        }
                        todo.extend(arg.as_deref());
                    }
                    ast::TypeExpr::List(elem, _) | ast::TypeExpr::BoundedList { elem, .. } => {
                        todo.push(elem)
                    }
                    ast::TypeExpr::Record(fields, _) => todo.extend(fields.iter().map(|f| &f.ty)),
                    ast::TypeExpr::Enum(..) => {}
                }
            }
            return None;
        }
        self.type_state[id as usize] = State::InProgress;
        self.type_stack.push(id);
        if BUILTIN_NAMES.contains(&def.name.name.as_str()) {
            self.errors.push(CheckError::InvalidType {
                span: def.name.span,
                problem: "a built-in type cannot be redefined",
                help: "choose another name",
            });
        }
        let ty = self.type_expr(&def.ty);
        self.type_stack.pop();
        if self.type_state[id as usize] == State::InProgress {
            self.type_state[id as usize] = match &ty {
                Some(t) => State::Done(t.clone()),
                None => State::Failed,
            };
        }
        ty
    }

    pub(super) fn params(&mut self, params: &[ast::Param]) -> Vec<ir::Param> {
        let mut out: Vec<ir::Param> = Vec::with_capacity(params.len());
        for p in params {
            if let Some(first) = out.iter().find(|q| q.name == p.name.name) {
                self.errors.push(CheckError::DuplicateMember {
                    what: "parameter",
                    name: p.name.name.clone(),
                    span: p.name.span,
                    first: first.span,
                });
                continue;
            }
            let ty = match &p.ty {
                // a generator is passed, never kept: only a parameter's type
                ast::TypeExpr::Named {
                    name, arg: None, ..
                } if name.name == "Generator" => Ty::Generator,
                t => self.type_expr(t).unwrap_or(Ty::Text),
            };
            let default = match &p.default {
                Some(d) => match self.constant(d) {
                    Some((value, found)) => {
                        if let Some(found) = found {
                            if !ty.accepts(&found) {
                                self.errors.push(CheckError::ArgType {
                                    param: p.name.name.clone(),
                                    expected: ty.clone(),
                                    found,
                                    span: d.span(),
                                    def: Some(p.span),
                                });
                            }
                        }
                        Some(value)
                    }
                    None => None,
                },
                None => None,
            };
            out.push(ir::Param {
                name: p.name.name.clone(),
                ty,
                default,
                span: p.name.span,
            });
        }
        out
    }

    pub(super) fn type_expr(&mut self, t: &ast::TypeExpr) -> Option<Ty> {
        let ty = self.type_expr_unchecked(t)?;
        if !matches!(t, ast::TypeExpr::Named { arg: None, .. }) && depth(&ty) > MAX_TYPE_DEPTH {
            let name = match self.type_stack.last() {
                Some(&id) => self.items.types[id as usize].0.name.name.clone(),
                None => String::new(),
            };
            self.too_deep(CheckError::DefinitionsTooDeep {
                what: "type",
                name,
                span: t.span(),
                max: MAX_TYPE_DEPTH,
            });
            return None;
        }
        Some(ty)
    }

    fn type_expr_unchecked(&mut self, t: &ast::TypeExpr) -> Option<Ty> {
        match t {
            ast::TypeExpr::List(elem, _) => Some(Ty::List {
                of: Box::new(self.type_expr(elem)?),
                max: None,
            }),
            ast::TypeExpr::BoundedList { elem, max, .. } => {
                let of = self.type_expr(elem);
                if max.value == 0 || max.value > MAX_LIST_BOUND {
                    self.errors.push(CheckError::ListBound {
                        value: max.value,
                        span: max.span,
                        max: MAX_LIST_BOUND,
                    });
                    return None;
                }
                Some(Ty::List {
                    of: Box::new(of?),
                    max: Some(max.value),
                })
            }
            ast::TypeExpr::Record(fields, _) => {
                let mut out: Vec<(String, Ty)> = Vec::with_capacity(fields.len());
                let mut spans: Vec<Span> = Vec::with_capacity(fields.len());
                for f in fields {
                    if let Some(i) = out.iter().position(|(n, _)| *n == f.name.name) {
                        self.errors.push(CheckError::DuplicateMember {
                            what: "field",
                            name: f.name.name.clone(),
                            span: f.name.span,
                            first: spans[i],
                        });
                        continue;
                    }
                    let ty = self.type_expr(&f.ty)?;
                    out.push((f.name.name.clone(), ty));
                    spans.push(f.name.span);
                }
                Some(Ty::Record { fields: out })
            }
            ast::TypeExpr::Enum(tags, _) => {
                let mut out: Vec<&ast::Ident> = Vec::with_capacity(tags.len());
                for tag in tags {
                    if let Some(first) = out.iter().find(|t| t.name == tag.name) {
                        self.errors.push(CheckError::DuplicateMember {
                            what: "tag",
                            name: tag.name.clone(),
                            span: tag.span,
                            first: first.span,
                        });
                        continue;
                    }
                    out.push(tag);
                }
                Some(Ty::Enum {
                    tags: out.iter().map(|t| t.name.clone()).collect(),
                })
            }
            ast::TypeExpr::Named { name, arg, span } => {
                self.named_type(name, arg.as_deref(), *span)
            }
        }
    }

    fn named_type(
        &mut self,
        name: &ast::Ident,
        arg: Option<&ast::TypeExpr>,
        span: Span,
    ) -> Option<Ty> {
        let no_arg = |r: &mut Self, ty: Ty| -> Option<Ty> {
            if arg.is_some() {
                r.errors.push(CheckError::InvalidType {
                    span,
                    problem: "this type takes no argument",
                    help: "only `Code<lang>`, `Json<T>` and `Map<T>` take an argument",
                });
                return None;
            }
            Some(ty)
        };
        match name.name.as_str() {
            "Text" => no_arg(self, Ty::Text),
            "Int" => no_arg(self, Ty::Int),
            "Float" => no_arg(self, Ty::Float),
            "Bool" => no_arg(self, Ty::Bool),
            "Duration" => no_arg(self, Ty::Duration),
            "Program" => no_arg(self, Ty::Program),
            "Generator" => {
                self.errors.push(CheckError::GeneratorNotParam { span });
                None
            }
            "Map" => match arg {
                Some(inner) => Some(Ty::Map {
                    of: Box::new(self.type_expr(inner)?),
                }),
                None => {
                    self.errors.push(CheckError::InvalidType {
                        span,
                        problem: "`Map` needs the type of its values",
                        help: "say what the map holds: `Map<Text>`",
                    });
                    None
                }
            },
            "Code" => match arg {
                Some(ast::TypeExpr::Named {
                    name: lang,
                    arg: None,
                    ..
                }) => Some(Ty::Code {
                    lang: lang.name.clone(),
                }),
                Some(_) => {
                    self.errors.push(CheckError::InvalidType {
                        span,
                        problem: "`Code` takes a language name",
                        help: "write the language as a plain name: `Code<python>`, `Code<rust>`",
                    });
                    None
                }
                None => {
                    self.errors.push(CheckError::InvalidType {
                        span,
                        problem: "`Code` needs a language",
                        help: "say which language: `Code<python>`, `Code<rust>`",
                    });
                    None
                }
            },
            "Json" => match arg {
                Some(inner) => Some(Ty::Json {
                    of: Box::new(self.type_expr(inner)?),
                }),
                None => {
                    self.errors.push(CheckError::InvalidType {
                        span,
                        problem: "`Json` needs the type of the document",
                        help: "say what the JSON holds: `Json<Plan>`, `Json<[Text]>`",
                    });
                    None
                }
            },
            _ => {
                let Some(sym) = self.tables.types.get(&name.name).copied() else {
                    self.unknown(NameKind::Type, name);
                    return None;
                };
                self.used_types[sym.id as usize] = true;
                if self.type_state[sym.id as usize] == State::InProgress {
                    self.report_type_cycle(sym.id);
                    return None;
                }
                let ty = self.resolve_type_def(sym.id)?;
                no_arg(self, ty)
            }
        }
    }
}

/// The largest bound a list type may have (`[T; max N]`, E0224): it
/// multiplies the worst case of every map over the list.
pub const MAX_LIST_BOUND: u64 = 1000;

/// How deep a type nests (`Text` 1, `[Text]` 2). Every type is built by
/// [`Resolver::type_expr`], which refuses one deeper than
/// [`MAX_TYPE_DEPTH`], so this recursion is bounded.
fn depth(ty: &Ty) -> usize {
    1 + match ty {
        Ty::Json { of } | Ty::List { of, .. } | Ty::Map { of } => depth(of),
        Ty::Record { fields } => fields.iter().map(|(_, t)| depth(t)).max().unwrap_or(0),
        _ => 0,
    }
}

impl Resolver<'_> {
    /// Reports E0217 the first time only.
    pub(super) fn too_deep(&mut self, error: CheckError) {
        if !self.too_deep_reported {
            self.too_deep_reported = true;
            self.errors.push(error);
        }
    }

    /// Reports the cycle of type aliases that closes at `id`, once.
    fn report_type_cycle(&mut self, id: u32) {
        let start = self.type_stack.iter().position(|&t| t == id).unwrap_or(0);
        let members: Vec<u32> = self.type_stack[start..].to_vec();
        let cycle = members
            .iter()
            .map(|&t| {
                let (def, _) = self.items.types[t as usize];
                (def.name.name.clone(), def.name.span)
            })
            .collect();
        self.errors.push(CheckError::RecursiveType { cycle });
        for t in members {
            self.type_state[t as usize] = State::Failed;
        }
    }
}
