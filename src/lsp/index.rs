//! Names in one file: where each is defined and where it is used,
//! computed from the AST alone (the resolver is not involved). Namespaces
//! follow the language's: a name used as a guard only finds guards. Params
//! are visible in their item, subtask labels in their method.

use crate::source::Span;
use crate::syntax::ast::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Type,
    Guard,
    Generator,
    Effect,
    Resource,
    /// actions and tasks
    Action,
    Task,
    /// inputs and parameters
    Value,
    Label,
    Method,
    /// a field of a record type (`goal` in `{ goal: Text }`)
    Field,
}

#[derive(Debug, Clone)]
pub struct Def {
    pub name: String,
    pub kind: Kind,
    /// The name where it is defined.
    pub span: Span,
    /// The whole definition.
    pub full: Span,
    /// The header as written (`action a(x: Text) -> Text`).
    pub signature: String,
    pub doc: Option<String>,
    /// Where the name is visible; `None` for the whole file.
    pub scope: Option<Span>,
}

#[derive(Debug, Clone)]
pub struct Ref {
    pub name: String,
    pub kinds: &'static [Kind],
    pub span: Span,
    /// The definition it names, if this file defines it.
    pub target: Option<usize>,
}

#[derive(Debug, Default)]
pub struct Index {
    pub defs: Vec<Def>,
    pub refs: Vec<Ref>,
    /// The declared type of each value definition (by index in `defs`)
    /// and the type aliases: what field paths and their completion read.
    types: Types,
}

#[derive(Debug, Default)]
struct Types {
    values: std::collections::HashMap<usize, TypeExpr>,
    aliases: std::collections::HashMap<String, TypeExpr>,
}

impl Types {
    /// The record `ty` is, through aliases and `Json<…>` (a bounded number
    /// of times: alias cycles are the checker's to report).
    fn record<'t>(&'t self, mut ty: &'t TypeExpr) -> Option<&'t [Field]> {
        for _ in 0..64 {
            match ty {
                TypeExpr::Record(fs, _) => return Some(fs),
                TypeExpr::Named { name, arg, .. } => {
                    ty = match (name.name.as_str(), arg) {
                        ("Json", Some(inner)) => inner,
                        (n, None) => self.aliases.get(n)?,
                        _ => return None,
                    };
                }
                _ => return None,
            }
        }
        None
    }
}

const GUARD: &[Kind] = &[Kind::Guard];
const GENERATOR: &[Kind] = &[Kind::Generator];
const EFFECT: &[Kind] = &[Kind::Effect];
const TYPE: &[Kind] = &[Kind::Type];
const RESOURCE: &[Kind] = &[Kind::Resource];
const CALLABLE: &[Kind] = &[Kind::Action, Kind::Task];
const VALUE: &[Kind] = &[Kind::Label, Kind::Value];
const LABEL: &[Kind] = &[Kind::Label];
const FIELD: &[Kind] = &[Kind::Field];
const GUARD_OR_VALUE: &[Kind] = &[Kind::Guard, Kind::Label, Kind::Value];
const IMPORTED: &[Kind] = &[Kind::Guard, Kind::Generator, Kind::Effect, Kind::Type];

impl Index {
    pub fn build(src: &str, file: &File) -> Index {
        let mut b = Builder {
            src,
            index: Index::default(),
            fields: Fields::default(),
        };
        for item in &file.items {
            b.item(item);
        }
        let mut index = b.index;
        let names = Names::new(&index.defs);
        for i in 0..index.refs.len() {
            index.refs[i].target = names.resolve(&index.defs, &index.refs[i]);
        }
        b.fields.resolve(&mut index);
        index
    }

    /// The fields of the record that the value named at `head` (a
    /// parameter or an input, referred to at that offset) has after
    /// following `path`: what completes `head.path.`.
    pub fn fields_of(&self, head: u32, path: &[&str]) -> Option<&[Field]> {
        let (Some(def), _, _) = self.at(head)? else {
            return None;
        };
        let mut fields = self.types.record(self.types.values.get(&def)?)?;
        for name in path {
            let f = fields.iter().find(|f| f.name.name == *name)?;
            fields = self.types.record(&f.ty)?;
        }
        Some(fields)
    }

    /// The definition a name at `offset` is or names, with the name's span
    /// there; an unresolved reference gives its name only.
    pub fn at(&self, offset: u32) -> Option<(Option<usize>, &str, Span)> {
        let hit = |s: Span| s.start <= offset && offset <= s.end;
        if let Some((i, d)) = self.defs.iter().enumerate().find(|(_, d)| hit(d.span)) {
            return Some((Some(i), &d.name, d.span));
        }
        self.refs
            .iter()
            .find(|r| hit(r.span))
            .map(|r| (r.target, r.name.as_str(), r.span))
    }

    /// Every use of definition `def`.
    pub fn references(&self, def: usize) -> impl Iterator<Item = &Ref> {
        self.refs.iter().filter(move |r| r.target == Some(def))
    }

    /// The definitions visible at `offset`.
    pub fn visible(&self, offset: u32) -> impl Iterator<Item = &Def> {
        self.defs
            .iter()
            .filter(move |d| d.scope.is_none_or(|s| s.start <= offset && offset <= s.end))
    }
}

/// The definitions by name, for resolving every reference in about
/// constant time each (comparing each reference with every definition
/// made a large file's index quadratic).
struct Names<'a> {
    by_name: std::collections::HashMap<&'a str, Named>,
}

#[derive(Default)]
struct Named {
    /// Definitions visible in the whole file, in definition order.
    global: Vec<usize>,
    /// Scoped definitions: by scope start, then larger scopes first, then
    /// later definitions first; with the most any of them and those
    /// before it reach.
    scoped: Vec<(Span, usize, u32)>,
}

impl<'a> Names<'a> {
    fn new(defs: &'a [Def]) -> Names<'a> {
        let mut by_name: std::collections::HashMap<&str, Named> = std::collections::HashMap::new();
        for (i, d) in defs.iter().enumerate() {
            let named = by_name.entry(d.name.as_str()).or_default();
            match d.scope {
                None => named.global.push(i),
                Some(scope) => named.scoped.push((scope, i, 0)),
            }
        }
        for named in by_name.values_mut() {
            named.scoped.sort_by_key(|&(s, i, _)| {
                (
                    s.start,
                    std::cmp::Reverse(s.end - s.start),
                    std::cmp::Reverse(i),
                )
            });
            let mut reach = 0;
            for entry in &mut named.scoped {
                reach = reach.max(entry.0.end);
                entry.2 = reach;
            }
        }
        Names { by_name }
    }

    /// The innermost definition visible at the reference: a scoped one
    /// whose scope holds it (the innermost, as scopes nest), or else one
    /// visible in the whole file; the first defined among equals.
    fn resolve(&self, defs: &[Def], r: &Ref) -> Option<usize> {
        let named = self.by_name.get(r.name.as_str())?;
        let kind_fits = |i: usize| r.kinds.contains(&defs[i].kind);
        let before = named
            .scoped
            .partition_point(|(s, _, _)| s.start <= r.span.start);
        for &(scope, i, reach) in named.scoped[..before].iter().rev() {
            if reach < r.span.end {
                break; // no scope from here back reaches the reference
            }
            if r.span.end <= scope.end && kind_fits(i) {
                return Some(i);
            }
        }
        named.global.iter().copied().find(|&i| kind_fits(i))
    }
}

struct Builder<'a> {
    src: &'a str,
    index: Index,
    fields: Fields,
}

/// What field paths (`p.items.id`) need: the declared type of each value
/// definition, the type aliases, the field definitions by where their
/// name is, and the paths to resolve once their heads are.
#[derive(Default)]
struct Fields {
    value_types: std::collections::HashMap<usize, TypeExpr>,
    aliases: std::collections::HashMap<String, TypeExpr>,
    defs: std::collections::HashMap<(u32, u32), usize>,
    /// (the reference of the path's head, its fields)
    paths: Vec<(usize, Vec<Ident>)>,
}

impl Fields {
    /// Each field of a path whose head is a parameter or an input names
    /// the field of its declared record type (through aliases and
    /// `Json<…>`), when there is one.
    fn resolve(self, index: &mut Index) {
        index.types = Types {
            values: self.value_types,
            aliases: self.aliases,
        };
        for (head, fields) in self.paths {
            let Some(mut ty) = index.refs[head]
                .target
                .and_then(|d| index.types.values.get(&d))
                .cloned()
            else {
                continue;
            };
            for field in &fields {
                let Some(f) = index
                    .types
                    .record(&ty)
                    .and_then(|fs| fs.iter().find(|f| f.name.name == field.name))
                else {
                    break;
                };
                let target = self
                    .defs
                    .get(&(f.name.span.start, f.name.span.end))
                    .copied();
                let next = f.ty.clone();
                index.refs.push(Ref {
                    name: field.name.clone(),
                    kinds: FIELD,
                    span: field.span,
                    target,
                });
                ty = next;
            }
        }
    }
}

impl Builder<'_> {
    fn text(&self, from: u32, to: u32) -> String {
        let text = self.src.get(from as usize..to as usize).unwrap_or("");
        // one line: runs of blanks and line breaks become one space
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[allow(clippy::too_many_arguments)]
    fn def(
        &mut self,
        name: &Ident,
        kind: Kind,
        full: Span,
        signature_end: u32,
        doc: Option<&String>,
        scope: Option<Span>,
    ) {
        let signature = self.text(full.start, signature_end);
        self.index.defs.push(Def {
            name: name.name.clone(),
            kind,
            span: name.span,
            full,
            signature,
            doc: doc.cloned(),
            scope,
        });
    }

    fn reference(&mut self, name: &Ident, kinds: &'static [Kind]) {
        self.index.refs.push(Ref {
            name: name.name.clone(),
            kinds,
            span: name.span,
            target: None,
        });
    }

    fn item(&mut self, item: &Item) {
        let doc = item.doc.as_ref();
        let span = item.span;
        match &item.kind {
            ItemKind::Use(Use::Std(names)) => {
                for n in names {
                    self.reference(n, IMPORTED);
                }
            }
            ItemKind::Use(Use::File(_)) | ItemKind::Default(_) => {}
            ItemKind::Input(i) => {
                self.def(&i.name, Kind::Value, span, span.end, doc, None);
                self.fields
                    .value_types
                    .insert(self.index.defs.len() - 1, i.ty.clone());
                self.ty(&i.ty);
                if let Some(e) = &i.default {
                    self.expr(e);
                }
            }
            ItemKind::Type(t) => {
                self.def(&t.name, Kind::Type, span, span.end, doc, None);
                self.fields
                    .aliases
                    .entry(t.name.name.clone())
                    .or_insert_with(|| t.ty.clone());
                self.ty(&t.ty);
            }
            ItemKind::Generator(g) => {
                self.def(&g.name, Kind::Generator, span, span.end, doc, None);
                self.call(&g.kind, GENERATOR);
            }
            ItemKind::Guard(g) => {
                let end = g
                    .subject
                    .as_ref()
                    .map_or_else(|| self.header_end(g.name.span.end), |s| s.span().end);
                self.def(&g.name, Kind::Guard, span, end, doc, None);
                self.params(&g.params, span);
                if let Some(s) = &g.subject {
                    self.ty(s);
                }
                self.gexpr(&g.body);
            }
            ItemKind::Extern(e) => {
                let kind = match e.kind {
                    ExternKind::Guard => Kind::Guard,
                    ExternKind::Generator => Kind::Generator,
                    ExternKind::Effect => Kind::Effect,
                };
                self.def(&e.name, kind, span, span.end, doc, None);
                self.params(&e.params, span);
                if let Some(s) = &e.subject {
                    self.ty(s);
                }
            }
            ItemKind::Resource(r) => {
                self.def(&r.name, Kind::Resource, span, span.end, doc, None);
            }
            ItemKind::Action(a) => {
                self.def(&a.name, Kind::Action, span, a.output.span().end, doc, None);
                self.params(&a.params, span);
                self.ty(&a.output);
                let p = &a.props;
                if let Some(g) = &p.generate {
                    self.call(&g.generator, GENERATOR);
                    self.string(&g.prompt);
                }
                if let Some(r) = &p.role {
                    self.string(r);
                }
                for g in [&p.guard, &p.pre, &p.pre_guard].into_iter().flatten() {
                    self.gexpr(g);
                }
                if let Some(e) = &p.effect {
                    self.call(e, EFFECT);
                }
                for u in &p.uses {
                    self.reference(&u.name, RESOURCE);
                }
            }
            ItemKind::Task(t) => {
                let end = t
                    .max_depth
                    .map(|d| d.span.end)
                    .or(t.output.as_ref().map(|o| o.span().end))
                    .unwrap_or_else(|| self.header_end(t.name.span.end));
                self.def(&t.name, Kind::Task, span, end, doc, None);
                self.params(&t.params, span);
                if let Some(o) = &t.output {
                    self.ty(o);
                }
                for m in &t.methods {
                    self.method(m, span);
                }
            }
            ItemKind::Test(t) => {
                for c in [&t.run].into_iter().flatten() {
                    self.call(c, CALLABLE);
                }
                if let Some(c) = &t.with {
                    self.call(c, GENERATOR);
                }
                for e in &t.expect {
                    if let Expectation::Satisfies(g, _) = e {
                        self.gexpr(g);
                    }
                }
            }
        }
    }

    /// The end of the parameter list that follows `from`, if one does.
    fn header_end(&self, from: u32) -> u32 {
        let rest = self.src.get(from as usize..).unwrap_or("");
        let trimmed = rest.trim_start();
        if !trimmed.starts_with('(') {
            return from;
        }
        let skipped = (rest.len() - trimmed.len()) as u32;
        let mut depth = 0i32;
        for (i, c) in trimmed.char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return from + skipped + i as u32 + 1;
                    }
                }
                _ => {}
            }
        }
        from
    }

    fn method(&mut self, m: &Method, task: Span) {
        // the method's span may start at its doc comment
        let start = self
            .src
            .get(m.span.range())
            .and_then(|t| t.find("method"))
            .map_or(m.span.start, |i| m.span.start + i as u32);
        let full = Span { start, ..m.span };
        self.def(
            &m.name,
            Kind::Method,
            full,
            m.name.span.end,
            m.doc.as_ref(),
            Some(task),
        );
        if let Some(g) = &m.pre {
            self.gexpr(g);
        }
        if let Some(subtasks) = &m.subtasks {
            for s in &subtasks.value {
                let map_doc = s.each.as_ref().map(|each| {
                    let source: Vec<&str> = each.source.iter().map(|i| i.name.as_str()).collect();
                    let at_a_time = each
                        .parallel
                        .map_or("every item at once".to_string(), |k| {
                            format!("at most {} at a time", k.value)
                        });
                    format!(
                        "A map: `{}` once per item of `{}`, {at_a_time}; the artifact is the list of the results, in the order of the items.",
                        s.call.callee.name,
                        source.join(".")
                    )
                });
                self.def(
                    &s.label,
                    Kind::Label,
                    s.span,
                    s.call.span.end,
                    map_doc.as_ref(),
                    Some(m.span),
                );
                if let Some(each) = &s.each {
                    // `for item in p.items`: the list is read, the item is
                    // a value visible in this subtask
                    if let Some(head) = each.source.first() {
                        self.reference(head, VALUE);
                    }
                    let sig_end = each
                        .source
                        .last()
                        .map_or(each.item.span.end, |l| l.span.end);
                    self.def(
                        &each.item,
                        Kind::Value,
                        each.span,
                        sig_end,
                        None,
                        Some(s.span),
                    );
                }
                self.call(&s.call, CALLABLE);
                if let Some(e) = &s.escalation {
                    self.reference(&e.target, LABEL);
                }
            }
        }
        if let Some(o) = &m.ordering {
            self.ordering(o);
        }
        if let Some(r) = &m.result {
            // a label, or a parameter the method returns as it is
            let mut path = vec![r.clone()];
            path.extend(m.result_fields.iter().cloned());
            self.path(&path);
        }
        for u in &m.uses {
            self.reference(&u.name, RESOURCE);
        }
    }

    fn ordering(&mut self, o: &Ordering) {
        match o {
            Ordering::Label(l) => self.reference(l, LABEL),
            Ordering::Seq(items, _) | Ordering::Par(items, _) => {
                for i in items {
                    self.ordering(i);
                }
            }
            Ordering::Partial(chains, _) => {
                for l in chains.iter().flatten() {
                    self.reference(l, LABEL);
                }
            }
        }
    }

    fn params(&mut self, params: &[Param], item: Span) {
        for p in params {
            self.def(&p.name, Kind::Value, p.span, p.span.end, None, Some(item));
            self.fields
                .value_types
                .insert(self.index.defs.len() - 1, p.ty.clone());
            self.ty(&p.ty);
            if let Some(d) = &p.default {
                self.expr(d);
            }
        }
    }

    fn ty(&mut self, ty: &TypeExpr) {
        match ty {
            TypeExpr::Named { name, arg, .. } => {
                self.reference(name, TYPE);
                if let Some(a) = arg {
                    self.ty(a);
                }
            }
            TypeExpr::List(t, _) | TypeExpr::BoundedList { elem: t, .. } => self.ty(t),
            TypeExpr::Record(fields, span) => {
                for f in fields {
                    let full = f.name.span.to(f.ty.span());
                    self.def(&f.name, Kind::Field, full, full.end, None, Some(*span));
                    self.fields.defs.insert(
                        (f.name.span.start, f.name.span.end),
                        self.index.defs.len() - 1,
                    );
                    self.ty(&f.ty);
                }
            }
            TypeExpr::Enum(..) => {}
        }
    }

    fn gexpr(&mut self, g: &GuardExpr) {
        match g {
            // a bare name no guard has is a value (`:pre ok`)
            GuardExpr::Call(c) if c.args.is_none() => self.reference(&c.callee, GUARD_OR_VALUE),
            GuardExpr::Call(c) => self.call(c, GUARD),
            GuardExpr::Bool(..) => {}
            GuardExpr::Path(path, _) => self.path(path),
            GuardExpr::Compare(c) => {
                for t in [&c.lhs, &c.rhs] {
                    match t {
                        Term::Expr(e) | Term::Len(e, _) => self.expr(e),
                    }
                }
            }
            GuardExpr::Not(inner, _) => self.gexpr(inner),
            GuardExpr::And(items, _)
            | GuardExpr::Or(items, _)
            | GuardExpr::Combinator(_, items, _) => {
                for i in items {
                    self.gexpr(i);
                }
            }
        }
    }

    fn call(&mut self, c: &Call, kinds: &'static [Kind]) {
        self.reference(&c.callee, kinds);
        for a in c.args.iter().flatten() {
            self.expr(&a.value);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::String(s) => self.string(s),
            Expr::List(items, _) => {
                for i in items {
                    self.expr(i);
                }
            }
            Expr::Map(entries, _) => {
                for e in entries {
                    self.string(&e.key);
                    self.expr(&e.value);
                }
            }
            // a bare name is a value; `file("…")` and the like are built in
            Expr::Call(c) if c.args.is_none() => self.reference(&c.callee, VALUE),
            Expr::Call(c) => {
                for a in c.args.iter().flatten() {
                    self.expr(&a.value);
                }
            }
            Expr::Path(path, _) => self.path(path),
            _ => {}
        }
    }

    /// `p.items`: the name is a reference; its fields are the type's,
    /// resolved once the name is.
    fn path(&mut self, path: &[Ident]) {
        if let Some((first, fields)) = path.split_first() {
            self.reference(first, VALUE);
            if !fields.is_empty() {
                self.fields
                    .paths
                    .push((self.index.refs.len() - 1, fields.to_vec()));
            }
        }
    }

    fn string(&mut self, s: &StringLit) {
        for part in &s.parts {
            if let StringPart::Interpolation(path) = part {
                self.path(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;

    fn index(src: &str) -> Index {
        let (file, errors) = crate::syntax::parse(FileId(0), src);
        assert!(errors.is_empty(), "{errors:#?}");
        Index::build(src, &file)
    }

    /// The definition the `nth` occurrence of `name` names, as the text
    /// from its start.
    fn target<'a>(src: &'a str, idx: &Index, name: &str, nth: usize) -> Option<&'a str> {
        let at = src.match_indices(name).nth(nth)?.0 as u32;
        let (def, _, _) = idx.at(at)?;
        Some(&src[idx.defs[def?].span.start as usize..])
    }

    #[test]
    fn namespaces_are_apart_and_params_stay_in_their_item() {
        let src = "guard check = true\n\
                   action check(x: Text) -> Text {\n  :generate g \"{x}\"\n  :guard check\n}\n\
                   action other(x: Text) -> Text {\n  :generate g \"{x}\"\n  :guard check\n}\n";
        let idx = index(src);
        // `:guard check` names the guard, not the action
        assert!(target(src, &idx, "check", 2)
            .unwrap()
            .starts_with("check = true"));
        // `{x}` in `other` names other's parameter
        let other_x = src.find("other(x").unwrap() + 6;
        let at = src.match_indices("{x}").nth(1).unwrap().0 as u32 + 1;
        let def = idx.at(at).unwrap().0.unwrap();
        assert_eq!(idx.defs[def].span.start as usize, other_x);
    }

    #[test]
    fn field_paths_name_the_fields_of_their_record_type() {
        let src = "type Item = { id: Text, spec: Text }\n\
                   type Plan = { goal: Text, items: [Item], first: Item }\n\
                   type Other = { goal: Int }\n\
                   task t(p: Json<Plan>, o: Other) {\n\
                   \x20 method m {\n\
                   \x20   :pre len(p.items) > 0 && o.goal > 1\n\
                   \x20   :subtasks (a: x(p.first.spec, \"{p.goal}\"))\n\
                   \x20 }\n\
                   }\n";
        let idx = index(src);
        let at = |needle: &str, nth: usize| src.match_indices(needle).nth(nth).unwrap().0;
        // `p.items` names Plan's `items`, through `Json<…>` and the alias
        assert!(target(src, &idx, "items", 1)
            .unwrap()
            .starts_with("items: [Item]"));
        // `o.goal` names Other's `goal`, `{p.goal}` Plan's
        let other_goal = at("goal: Int", 0);
        let plan_goal = at("goal: Text", 0);
        let def_at = |offset: usize| {
            let d = idx.at(offset as u32 + 1).unwrap().0.unwrap();
            idx.defs[d].span.start as usize
        };
        assert_eq!(def_at(at("o.goal", 0) + 2), other_goal);
        assert_eq!(def_at(at("{p.goal}", 0) + 3), plan_goal);
        // a path through two records: `p.first.spec` is Item's `spec`
        assert_eq!(def_at(at("first.spec", 0) + 6), at("spec: Text", 0));
        // the head is the parameter
        let p = idx.at(at("p.first", 0) as u32).unwrap().0.unwrap();
        assert_eq!(idx.defs[p].kind, Kind::Value);
    }

    #[test]
    fn labels_resolve_within_their_method() {
        let src = "task t() {\n  method m1 {\n    :subtasks (a: x(), b: y(a))\n    :ordering (a ; b)\n  }\n  \
                   method m2 {\n    :subtasks (a: x())\n    :ordering a\n  }\n}\n";
        let idx = index(src);
        let first_a = src.find("a: x()").unwrap();
        let second_a = src.match_indices("a: x()").nth(1).unwrap().0;
        // `y(a)` and `(a ; b)` in m1 name m1's `a`; `:ordering a` in m2 names m2's
        for (at, def) in [
            (src.find("y(a)").unwrap() + 2, first_a),
            (src.find("(a ; b)").unwrap() + 1, first_a),
            (src.find(":ordering a").unwrap() + 10, second_a),
        ] {
            let (target, name, _) = idx.at(at as u32).unwrap();
            assert_eq!(name, "a");
            assert_eq!(
                idx.defs[target.unwrap()].span.start as usize,
                def,
                "a at {at}"
            );
        }
        let first = idx
            .defs
            .iter()
            .position(|d| d.span.start as usize == first_a)
            .unwrap();
        assert_eq!(idx.references(first).count(), 2);
    }

    #[test]
    fn a_map_item_is_a_value_of_its_subtask() {
        let src = "task t(xs: [Text; max 3]) {\n  method m {\n    \
                   :subtasks (c: for item in xs => y(item) :parallel 2)\n  }\n}\n";
        let idx = index(src);
        let def = src.find("item in").unwrap();
        let use_at = src.find("y(item)").unwrap() + 3;
        let (target, name, _) = idx.at(use_at as u32).unwrap();
        assert_eq!(name, "item");
        let target = target.unwrap();
        assert_eq!(idx.defs[target].span.start as usize, def);
        assert_eq!(idx.defs[target].signature, "for item in xs");
        assert!(idx.visible(use_at as u32).any(|d| d.name == "item"));
        assert!(!idx.visible(src.len() as u32 - 2).any(|d| d.name == "item"));
        // `xs` after `in` names the parameter; the label says it is a map
        let (xs, _, _) = idx.at(src.find("in xs").unwrap() as u32 + 3).unwrap();
        assert_eq!(idx.defs[xs.unwrap()].name, "xs");
        let label = idx.defs.iter().find(|d| d.name == "c").unwrap();
        assert!(label
            .doc
            .as_deref()
            .unwrap()
            .contains("`y` once per item of `xs`, at most 2 at a time"));
    }

    #[test]
    fn names_in_map_values_and_keys_resolve() {
        let src = "action a(spec: Text) -> Text {\n  :generate g \"p\"\n  \
                   :guard command(\"true\", files: { \"s.md\": spec, \"{spec}\": [spec] })\n}\n";
        let idx = index(src);
        let def = src.find("spec: Text").unwrap();
        for nth in 1..4 {
            let at = src.match_indices("spec").nth(nth).unwrap().0 as u32;
            let (target, name, _) = idx.at(at).unwrap();
            assert_eq!(name, "spec");
            assert_eq!(idx.defs[target.unwrap()].span.start as usize, def, "{nth}");
        }
    }
}
