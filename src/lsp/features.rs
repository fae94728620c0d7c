//! What the server answers about a document: hover, definition,
//! references, completion, symbols and formatting.

use std::sync::OnceLock;

use lsp_types::{
    CompletionItem, CompletionItemKind, DocumentSymbol, Hover, HoverContents, Location,
    MarkupContent, MarkupKind, Position, Range, SymbolKind, TextEdit,
};

use super::document::Document;
use super::index::{Def, Index, Kind};
use crate::source::FileId;
use crate::syntax::{self, ast, lexer};

/// The standard library's definitions, for hover and completion of the
/// names a program imports.
fn std_index() -> &'static [Def] {
    static STD: OnceLock<Vec<Def>> = OnceLock::new();
    STD.get_or_init(|| {
        crate::stdlib::FILES
            .iter()
            .flat_map(|(_, text)| {
                let (file, _) = syntax::parse(FileId(0), text);
                Index::build(text, &file)
                    .defs
                    .into_iter()
                    .filter(|d| d.scope.is_none())
            })
            .collect()
    })
}

fn find_std(name: &str) -> Option<&'static Def> {
    std_index().iter().find(|d| d.name == name)
}

fn markdown(def: &Def) -> String {
    let mut out = format!("```guardflow\n{}\n```", def.signature);
    if let Some(doc) = &def.doc {
        out.push_str("\n\n");
        out.push_str(doc);
    }
    out
}

pub fn hover(doc: &Document, pos: Position) -> Option<Hover> {
    let offset = doc.lines.offset(&doc.text, pos) as u32;
    let found = doc.index.at(offset).and_then(|(target, name, span)| {
        let def = match target {
            Some(i) => &doc.index.defs[i],
            None => find_std(name)?,
        };
        Some((def, span))
    });
    let Some((def, span)) = found else {
        return refinement_hover(doc, offset as usize);
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: markdown(def),
        }),
        range: Some(doc.range(span)),
    })
}

/// What the refinement words mean: `{previous}`, `{history}` and
/// `{feedback}` in a prompt, `:strategy` and `:history` and their values.
const REFINEMENT_WORDS: &[(&str, &str)] = &[
    ("{feedback}", "**`{feedback}`**: the feedback of the rejections `:feedback` keeps, `Attempt k: …` per line; `(none yet)` on the first attempt."),
    ("{previous}", "**`{previous}`**: the output of this action's latest rejected attempt (cut at 4,000 bytes); `(none yet: this is the first attempt)` before any."),
    ("{history}", "**`{history}`**: the rejected attempts `:feedback` keeps, each with its number, its output and its feedback, marked when made against an earlier upstream or by a failed method."),
    (":strategy", "**`:strategy`** `repair` (default: feedback and the previous output in the prompt) | `resample` (an independent sample each attempt, no history) | `best-of(N)` (N samples per attempt, concurrently; the first that passes, in sample order; the bounds count all N)."),
    (":history", "**`:history`** `keep` (default) | `fresh`: whether the method's actions see the rejected attempts of the task's methods that failed before it."),
    ("best-of", "**`best-of(N)`**: N samples per attempt, made concurrently and all judged; the first that passes, in sample order, is committed. Calls, guard runs and tokens count N times."),
    ("resample", "**`resample`**: every attempt an independent sample: no feedback to the generator, `{feedback}`, `{previous}` and `{history}` render as nothing."),
    ("repair", "**`repair`**: the default: each retry's prompt has the feedback and the previous output."),
    ("fresh", "**`:history fresh`**: this method's actions start without the attempts of the methods that failed before it."),
];

/// Hover for a refinement word at `offset` (not a name the index knows).
fn refinement_hover(doc: &Document, offset: usize) -> Option<Hover> {
    let text = doc.text.as_str();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let start = text[..offset]
        .char_indices()
        .rev()
        .find(|(_, c)| !is_word(*c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = text[start..]
        .find(|c: char| !is_word(c))
        .map_or(text.len(), |i| start + i);
    let word = text.get(start..end)?;
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let key = match (before, after) {
        (Some('{'), Some('}')) => format!("{{{word}}}"),
        (Some(':'), _) => format!(":{word}"),
        _ => word.to_string(),
    };
    let (_, value) = REFINEMENT_WORDS.iter().find(|(k, _)| *k == key)?;
    let (from, to) = match key.as_bytes().first() {
        Some(b'{') => (start - 1, end + 1),
        Some(b':') => (start - 1, end),
        _ => (start, end),
    };
    let span = crate::source::Span::new(crate::source::FileId(0), from, to);
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: value.to_string(),
        }),
        range: Some(doc.range(span)),
    })
}

pub fn definition(doc: &Document, pos: Position) -> Option<Location> {
    let offset = doc.lines.offset(&doc.text, pos) as u32;
    let (target, _, _) = doc.index.at(offset)?;
    let def = &doc.index.defs[target?];
    Some(Location::new(doc.uri.clone(), doc.range(def.span)))
}

pub fn references(doc: &Document, pos: Position, include_declaration: bool) -> Vec<Location> {
    let offset = doc.lines.offset(&doc.text, pos) as u32;
    let Some((Some(target), _, _)) = doc.index.at(offset) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    if include_declaration {
        spans.push(doc.index.defs[target].span);
    }
    spans.extend(doc.index.references(target).map(|r| r.span));
    spans
        .into_iter()
        .map(|s| Location::new(doc.uri.clone(), doc.range(s)))
        .collect()
}

use crate::syntax::properties as props;

pub fn completion(doc: &Document, pos: Position) -> Vec<CompletionItem> {
    let offset = doc.lines.offset(&doc.text, pos);
    let before = &doc.text[..offset];
    let word = before
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        .len();
    if before[..word].ends_with(':') && !before[..word].ends_with("::") {
        let props = match doc
            .ast
            .items
            .iter()
            .find(|i| i.span.start as usize <= offset && offset <= i.span.end as usize)
            .map(|i| &i.kind)
        {
            Some(ast::ItemKind::Action(_)) => props::ACTION.to_vec(),
            Some(ast::ItemKind::Task(_)) => [props::METHOD, props::SUBTASK, props::TASK].concat(),
            Some(ast::ItemKind::Test(_)) => props::TEST.to_vec(),
            _ => props::FILE.to_vec(),
        };
        return props
            .iter()
            .map(|p| CompletionItem {
                label: p.to_string(),
                kind: Some(CompletionItemKind::PROPERTY),
                insert_text: Some(p[1..].to_string()),
                filter_text: Some(p[1..].to_string()),
                ..Default::default()
            })
            .collect();
    }
    if let Some(items) = field_completion(doc, word, offset) {
        return items;
    }
    let mut items: Vec<CompletionItem> = Vec::new();
    let head = before[..word].trim_end();
    let values: &[&str] = if head.ends_with(":strategy") {
        &["repair", "resample", "best-of(2)"]
    } else if head.ends_with(":history") {
        &["keep", "fresh"]
    } else {
        &[]
    };
    if !values.is_empty() {
        return values
            .iter()
            .map(|v| CompletionItem {
                label: v.to_string(),
                kind: Some(CompletionItemKind::ENUM_MEMBER),
                ..Default::default()
            })
            .collect();
    }
    let in_action = doc.ast.items.iter().any(|i| {
        matches!(i.kind, ast::ItemKind::Action(_))
            && i.span.start as usize <= offset
            && offset <= i.span.end as usize
    });
    // an interpolation in an action: the attempt's context too
    if in_action && before[..word].ends_with('{') {
        for (key, value) in &REFINEMENT_WORDS[..3] {
            items.push(CompletionItem {
                label: key[1..key.len() - 1].to_string(),
                kind: Some(CompletionItemKind::VARIABLE),
                documentation: Some(lsp_types::Documentation::String(value.to_string())),
                ..Default::default()
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    let defs = doc.index.visible(offset as u32).chain(std_index().iter());
    for def in defs {
        if def.kind == Kind::Method || !seen.insert(def.name.clone()) {
            continue;
        }
        items.push(CompletionItem {
            label: def.name.clone(),
            kind: Some(completion_kind(def.kind)),
            detail: Some(def.signature.clone()),
            documentation: def.doc.clone().map(lsp_types::Documentation::String),
            ..Default::default()
        });
    }
    for kw in lexer::KEYWORDS {
        if seen.insert(kw.to_string()) {
            items.push(CompletionItem {
                label: kw.to_string(),
                kind: Some(CompletionItemKind::KEYWORD),
                ..Default::default()
            });
        }
    }
    items
}

/// After `head.` or `head.a.b.` (a parameter or an input of a record
/// type, or `Json<…>` of one): the fields there, with their types. The
/// path being typed usually stops the item from parsing, so the file is
/// read again without it (`head` alone, which offsets before it keep).
fn field_completion(doc: &Document, word: usize, offset: usize) -> Option<Vec<CompletionItem>> {
    let (head, head_end, path) = path_before(&doc.text, word)?;
    let text = format!("{}{}", &doc.text[..head_end], &doc.text[offset..]);
    let (ast, _) = crate::syntax::parse(crate::source::FileId(0), &text);
    let index = super::index::Index::build(&text, &ast);
    let fields = index.fields_of(head as u32, &path)?;
    Some(
        fields
            .iter()
            .map(|f| {
                let ty = f.ty.span();
                CompletionItem {
                    label: f.name.name.clone(),
                    kind: Some(CompletionItemKind::FIELD),
                    detail: text
                        .get(ty.start as usize..ty.end as usize)
                        .map(str::to_string),
                    ..Default::default()
                }
            })
            .collect(),
    )
}

/// The field path that ends with a `.` at `end`: where its head starts
/// and ends, and the fields after it (`p.items.` gives `p`'s span and
/// `["items"]`).
fn path_before(text: &str, end: usize) -> Option<(usize, usize, Vec<&str>)> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut at = text.get(..end)?.strip_suffix('.')?.len();
    let mut names = Vec::new();
    loop {
        let start = text[..at].trim_end_matches(is_name).len();
        let name = &text[start..at];
        if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        names.push((start, name));
        match text[..start].strip_suffix('.') {
            Some(rest) => at = rest.len(),
            None => break,
        }
    }
    let (head, name) = names.pop()?;
    let fields = names.iter().rev().map(|(_, n)| *n).collect();
    Some((head, head + name.len(), fields))
}

fn completion_kind(kind: Kind) -> CompletionItemKind {
    match kind {
        Kind::Type => CompletionItemKind::STRUCT,
        Kind::Guard => CompletionItemKind::FUNCTION,
        Kind::Generator => CompletionItemKind::CONSTRUCTOR,
        Kind::Effect => CompletionItemKind::EVENT,
        Kind::Resource => CompletionItemKind::CONSTANT,
        Kind::Action | Kind::Task => CompletionItemKind::METHOD,
        Kind::Value => CompletionItemKind::VARIABLE,
        Kind::Label | Kind::Field => CompletionItemKind::FIELD,
        Kind::Method => CompletionItemKind::METHOD,
    }
}

fn symbol_kind(kind: Kind) -> SymbolKind {
    match kind {
        Kind::Type => SymbolKind::STRUCT,
        Kind::Guard => SymbolKind::FUNCTION,
        Kind::Generator => SymbolKind::CONSTRUCTOR,
        Kind::Effect => SymbolKind::EVENT,
        Kind::Resource => SymbolKind::CONSTANT,
        Kind::Action | Kind::Task | Kind::Method => SymbolKind::METHOD,
        Kind::Value => SymbolKind::VARIABLE,
        Kind::Label | Kind::Field => SymbolKind::FIELD,
    }
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written
fn symbol(doc: &Document, def: &Def, children: Vec<DocumentSymbol>) -> DocumentSymbol {
    DocumentSymbol {
        name: def.name.clone(),
        detail: Some(def.signature.clone()),
        kind: symbol_kind(def.kind),
        tags: None,
        deprecated: None,
        range: doc.range(def.full),
        selection_range: doc.range(def.span),
        children: (!children.is_empty()).then_some(children),
    }
}

/// The file's items; a task's methods below it, a method's labels below it.
pub fn symbols(doc: &Document) -> Vec<DocumentSymbol> {
    let defs = &doc.index.defs;
    let inside = |outer: &Def, inner: &Def| inner.scope == Some(outer.full);
    defs.iter()
        .filter(|d| d.scope.is_none())
        .map(|item| {
            let methods = defs
                .iter()
                .filter(|m| m.kind == Kind::Method && inside(item, m))
                .map(|m| {
                    let labels = defs
                        .iter()
                        .filter(|l| {
                            l.kind == Kind::Label
                                && m.full.start <= l.span.start
                                && l.span.end <= m.full.end
                        })
                        .map(|l| symbol(doc, l, Vec::new()))
                        .collect();
                    symbol(doc, m, labels)
                })
                .collect();
            symbol(doc, item, methods)
        })
        .collect()
}

/// The whole document in the canonical layout as one edit; none when it
/// is already formatted or does not parse.
pub fn formatting(doc: &Document) -> Vec<TextEdit> {
    match crate::fmt::format(&doc.name, &doc.text) {
        Ok(out) if out != doc.text => vec![TextEdit {
            range: Range::new(
                Position::new(0, 0),
                doc.lines.position(&doc.text, doc.text.len()),
            ),
            new_text: out,
        }],
        _ => Vec::new(),
    }
}
