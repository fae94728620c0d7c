//! Building a string literal's parts: text, escapes and interpolations,
//! with a triple string's common indentation removed. Shared by the pest
//! converter and the fast path, so both build the same literal.

use crate::syntax::ast::{Ident, StringPart};

pub(super) struct StringBuilder {
    parts: Vec<StringPart>,
    text: String,
    at_line_start: bool,
    /// Indentation dropped from the current line so far.
    skipped: usize,
    /// The common indentation of a triple string's lines after the first.
    indent: usize,
    triple: bool,
}

impl StringBuilder {
    /// `raw` is the whole literal, quotes included.
    pub(super) fn new(raw: &str, triple: bool) -> Self {
        let indent = if triple {
            raw.lines()
                .skip(1)
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("\"\"\""))
                .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
                .min()
                .unwrap_or(0)
        } else {
            0
        };
        StringBuilder {
            parts: Vec::new(),
            text: String::new(),
            at_line_start: false,
            skipped: 0,
            indent,
            triple,
        }
    }

    /// Literal text; at a line start, indentation up to the common
    /// indentation is dropped (deeper indentation is kept).
    pub(super) fn text(&mut self, s: &str) {
        let mut rest = s;
        while !rest.is_empty() {
            if self.at_line_start && self.skipped < self.indent {
                let ws = rest
                    .bytes()
                    .take(self.indent - self.skipped)
                    .take_while(|b| *b == b' ' || *b == b'\t')
                    .count();
                self.skipped += ws;
                rest = &rest[ws..];
                if rest.is_empty() {
                    return;
                }
            }
            let line = rest.find('\n').map_or(rest, |i| &rest[..=i]);
            self.text.push_str(line);
            self.at_line_start = line.ends_with('\n');
            self.skipped = 0;
            rest = &rest[line.len()..];
        }
    }

    /// The character an escape stands for.
    pub(super) fn escaped(&mut self, c: char) {
        self.at_line_start = false;
        self.text.push(c);
    }

    /// Something that adds no text (a malformed piece already reported).
    pub(super) fn nothing(&mut self) {
        self.at_line_start = false;
    }

    pub(super) fn interpolation(&mut self, path: Vec<Ident>) {
        self.at_line_start = false;
        if !self.text.is_empty() {
            self.parts
                .push(StringPart::Text(std::mem::take(&mut self.text)));
        }
        self.parts.push(StringPart::Interpolation(path));
    }

    pub(super) fn finish(mut self) -> Vec<StringPart> {
        if !self.text.is_empty() {
            self.parts.push(StringPart::Text(self.text));
        }
        if self.triple {
            trim_triple(&mut self.parts);
        }
        self.parts
    }
}

/// A triple string drops the newline after its opening quotes and the
/// whitespace line before its closing quotes.
fn trim_triple(parts: &mut Vec<StringPart>) {
    if let Some(StringPart::Text(first)) = parts.first_mut() {
        let trimmed = first.trim_start_matches([' ', '\t']);
        if let Some(rest) = trimmed.strip_prefix('\n') {
            *first = rest.to_string();
        }
    }
    if let Some(StringPart::Text(last)) = parts.last_mut() {
        let trimmed = last.trim_end_matches([' ', '\t']);
        let trimmed = trimmed.strip_suffix('\n').unwrap_or(trimmed);
        *last = trimmed.to_string();
    }
    parts.retain(|p| !matches!(p, StringPart::Text(t) if t.is_empty()));
}

/// The text of a code literal (`raw` from its opening quote to its closing
/// one): verbatim, a triple literal's dedented and trimmed like a triple
/// string's.
pub(super) fn code_text(raw: &str, triple: bool) -> String {
    let quote = if triple { 3 } else { 1 };
    let body = raw
        .get(quote..raw.len().saturating_sub(quote))
        .unwrap_or_default();
    let mut builder = StringBuilder::new(raw, triple);
    builder.text(body);
    let mut out = String::new();
    for part in builder.finish() {
        if let StringPart::Text(t) = part {
            out.push_str(&t);
        }
    }
    out
}
