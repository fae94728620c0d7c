//! What formatting must preserve: the syntax tree (spans aside) and the
//! comments, in order. The formatter checks every result with this, and
//! the tests use it on examples and generated programs.

use crate::source::FileId;
use crate::syntax::{self, ast, lexer};

/// `Ok` when `after` parses to the same tree as `before` (both must parse
/// cleanly) and holds the same comments in the same order.
pub fn same_meaning(before: &str, after: &str) -> Result<(), String> {
    let (a, errors_a) = syntax::parse(FileId(0), before);
    if !errors_a.is_empty() {
        return Err("the original does not parse".into());
    }
    same_meaning_as(&a, before, after)
}

/// [`same_meaning`] with `before` already parsed (cleanly) to `a`.
pub fn same_meaning_as(a: &ast::File, before: &str, after: &str) -> Result<(), String> {
    let (b, errors_b) = syntax::parse(FileId(0), after);
    if !errors_b.is_empty() {
        return Err(format!(
            "the formatted text does not parse: {:?}",
            errors_b[0].to_diagnostic().message
        ));
    }
    // item by item: the text of one item's tree at a time, not of the
    // whole file's (about 20 bytes per byte of source)
    let same = a.items.len() == b.items.len()
        && a.items
            .iter()
            .zip(&b.items)
            .all(|(x, y)| item_tree(x) == item_tree(y));
    if !same {
        return Err("the formatted text parses to a different syntax tree".into());
    }
    if comments(before) != comments(after) {
        return Err("the formatted text does not keep the comments in order".into());
    }
    Ok(())
}

/// The tree as text without spans; doc comments without trailing blanks
/// (the formatter trims line ends).
pub fn tree(file: &ast::File) -> String {
    file.items
        .iter()
        .map(item_tree)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One item's tree as [`tree`] has it.
fn item_tree(item: &ast::Item) -> String {
    let mut item = item.clone();
    trim_doc(&mut item.doc);
    if let ast::ItemKind::Task(t) = &mut item.kind {
        for m in &mut t.methods {
            trim_doc(&mut m.doc);
        }
    }
    erase_spans(&format!("{item:?}"))
}

fn trim_doc(doc: &mut Option<String>) {
    if let Some(d) = doc {
        *d = d.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    }
}

/// Removes every `Span { … }` from a `Debug` rendering.
fn erase_spans(debug: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(i) = rest.find("Span { file: ") {
        out.push_str(&rest[..i]);
        out.push_str("Span");
        match rest[i..].find('}') {
            Some(j) => rest = &rest[i + j + 1..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// The comments of a text, in order, without trailing blanks.
pub fn comments(src: &str) -> Vec<String> {
    lexer::tokens(src)
        .filter(|(t, _)| matches!(t, lexer::Token::Comment | lexer::Token::DocComment))
        .map(|(_, r)| src[r].trim_end().to_string())
        .collect()
}
