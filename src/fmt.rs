//! The formatter: one canonical layout for guardflow source.
//!
//! `layout` walks the AST with a cursor over the source, so tokens and
//! comments come out in their order; `doc` fits the result into
//! [`doc::WIDTH`] columns. Before a result is returned it is checked: it
//! must parse to the same AST (spans aside) with the same comments in the
//! same order. A file with syntax errors is not formatted.

mod doc;
mod layout;
pub mod verify;

use crate::diagnostics::Diagnostic;
use crate::source::{FileId, SourceMap};
use crate::syntax;

/// Why a file was not formatted.
#[derive(Debug)]
pub enum FormatError {
    /// The file does not parse; `sources` holds it (as `FileId(0)`) for
    /// rendering the diagnostics.
    Syntax {
        diagnostics: Vec<Diagnostic>,
        sources: SourceMap,
    },
    /// The formatter could not lay the file out faithfully (a bug in the
    /// formatter); the reason says where.
    Internal(String),
}

/// The canonical layout of `src`, named `name` in diagnostics.
pub fn format(name: &str, src: &str) -> Result<String, FormatError> {
    // a byte order mark is kept as it is, and the rest formatted
    let bom = syntax::lexer::bom_len(src);
    if bom > 0 {
        return format(name, &src[bom..]).map(|out| format!("{}{out}", &src[..bom]));
    }
    let (file, errors) = syntax::parse(FileId(0), src);
    if !errors.is_empty() {
        let mut sources = SourceMap::new();
        sources.add(name, src);
        let mut diagnostics: Vec<Diagnostic> = errors.iter().map(|e| e.to_diagnostic()).collect();
        crate::diagnostics::sort(&mut diagnostics);
        return Err(FormatError::Syntax {
            diagnostics,
            sources,
        });
    }
    // moving triple-quoted strings with their lines keeps their value in
    // all but odd cases (a line continued with `\`, blanks at a line's end
    // inside the string); the check finds those, and then they stay put
    let mut result = Err(String::new());
    for reindent in [true, false] {
        // the layout is dropped before the result is parsed again
        let out = {
            let docs = layout::layout(src, &file, reindent).map_err(FormatError::Internal)?;
            doc::print(&docs)
        };
        result = verify::same_meaning_as(&file, src, &out).map(|()| out);
        if result.is_ok() {
            break;
        }
    }
    result.map_err(FormatError::Internal)
}
