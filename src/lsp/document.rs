//! One open document: its text, its syntax tree and name index, and the
//! checker's findings as LSP diagnostics. Rebuilt whole on every change.

use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Uri};

use super::index::Index;
use super::position::LineIndex;
use crate::check::{self, FsLoader};
use crate::diagnostics::{Diagnostic, Severity};
use crate::source::FileId;
use crate::syntax::{self, ast};

pub struct Document {
    pub uri: Uri,
    /// The file name the checker sees: the path for `file:` URIs.
    pub name: String,
    pub text: String,
    pub lines: LineIndex,
    pub ast: ast::File,
    pub index: Index,
}

impl Document {
    pub fn new(uri: Uri, text: String) -> Document {
        let name = uri_to_path(uri.as_str()).unwrap_or_else(|| uri.as_str().to_string());
        let (ast, _) = syntax::parse(FileId(0), &text);
        let index = Index::build(&text, &ast);
        Document {
            lines: LineIndex::new(&text),
            uri,
            name,
            text,
            ast,
            index,
        }
    }

    pub fn range(&self, span: crate::source::Span) -> lsp_types::Range {
        self.lines.range(&self.text, span)
    }

    /// The checker's findings in this file (what it `use`s is read from
    /// disk, relative to it), as the CLI has them.
    pub fn diagnostics(&self) -> Vec<lsp_types::Diagnostic> {
        let checked = check::check_with(&self.name, &self.text, &mut FsLoader);
        let Some(root) = checked.sources.find(&self.name) else {
            return Vec::new();
        };
        checked
            .diagnostics
            .iter()
            .filter(|d| d.primary.span.file == root)
            .map(|d| self.to_lsp(d, root))
            .collect()
    }

    fn to_lsp(&self, d: &Diagnostic, root: FileId) -> lsp_types::Diagnostic {
        let mut message = d.message.clone();
        if !d.primary.message.is_empty() && d.primary.message != d.message {
            message.push_str(&format!("\n{}", d.primary.message));
        }
        for note in &d.notes {
            message.push_str(&format!("\nnote: {note}"));
        }
        if let Some(help) = &d.help {
            message.push_str(&format!("\nhelp: {help}"));
        }
        let related: Vec<DiagnosticRelatedInformation> = d
            .secondary
            .iter()
            .filter(|l| l.span.file == root)
            .map(|l| DiagnosticRelatedInformation {
                location: Location::new(self.uri.clone(), self.range(l.span)),
                message: l.message.clone(),
            })
            .collect();
        lsp_types::Diagnostic {
            range: self.range(d.primary.span),
            severity: Some(match d.severity() {
                Severity::Error => DiagnosticSeverity::ERROR,
                Severity::Warning => DiagnosticSeverity::WARNING,
            }),
            code: Some(NumberOrString::String(d.code.as_str().to_string())),
            source: Some("guardflow".into()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            ..Default::default()
        }
    }
}

/// The path of a `file:` URI, percent-decoded.
pub fn uri_to_path(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            if let Some(b) = rest
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(
            uri_to_path("file:///tmp/a%20b/c.guardflow").as_deref(),
            Some("/tmp/a b/c.guardflow")
        );
        assert_eq!(uri_to_path("untitled:Untitled-1"), None);
        assert_eq!(uri_to_path("file:///x%2").as_deref(), Some("/x%2"));
    }
}
