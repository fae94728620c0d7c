//! Rendering diagnostics: ariadne reports with byte spans, and JSON lines.

use ariadne::{Color, Config, IndexType, Label as AriadneLabel, Report, ReportKind};
use serde::Serialize;

use super::{Diagnostic, Severity};
use crate::source::{FileId, SourceMap, Span};

/// Renders many diagnostics over one [`SourceMap`]: each file's line
/// index (an ariadne `Source`) is built once, the first time a diagnostic
/// points into it, so rendering costs the diagnostics plus the files, not
/// their product.
pub struct Renderer<'a> {
    sources: &'a SourceMap,
    cache: Vec<std::cell::OnceCell<ariadne::Source<&'a str>>>,
}

struct Cache<'r, 'a>(&'r Renderer<'a>);

impl<'r, 'a> ariadne::Cache<FileId> for Cache<'r, 'a> {
    type Storage = &'a str;

    fn fetch(&mut self, id: &FileId) -> Result<&ariadne::Source<&'a str>, impl std::fmt::Debug> {
        let sources = self.0.sources;
        match self.0.cache.get(id.0 as usize) {
            Some(cell) => {
                Ok(cell.get_or_init(|| ariadne::Source::from(sources.get(*id).text.as_str())))
            }
            None => Err(format!("no file {}", id.0)),
        }
    }

    fn display<'b>(&self, id: &'b FileId) -> Option<impl std::fmt::Display + 'b> {
        Some(self.0.sources.get(*id).name.clone())
    }
}

impl<'a> Renderer<'a> {
    pub fn new(sources: &'a SourceMap) -> Renderer<'a> {
        Renderer {
            sources,
            cache: sources
                .files()
                .map(|_| std::cell::OnceCell::new())
                .collect(),
        }
    }

    /// Renders one diagnostic for a terminal; `color` adds ANSI colours.
    pub fn render(&self, diagnostic: &Diagnostic, color: bool) -> String {
        render_with(self, diagnostic, color)
    }
}

#[derive(Clone, Copy)]
struct AriadneSpan(Span);

impl ariadne::Span for AriadneSpan {
    type SourceId = FileId;
    fn source(&self) -> &FileId {
        &self.0.file
    }
    fn start(&self) -> usize {
        self.0.start as usize
    }
    fn end(&self) -> usize {
        self.0.end as usize
    }
}

/// Renders one diagnostic for a terminal; `color` adds ANSI colours. To
/// render several over the same sources, use one [`Renderer`].
pub fn render(diagnostic: &Diagnostic, sources: &SourceMap, color: bool) -> String {
    Renderer::new(sources).render(diagnostic, color)
}

fn render_with(renderer: &Renderer<'_>, diagnostic: &Diagnostic, color: bool) -> String {
    let sources = renderer.sources;
    let kind = match diagnostic.severity() {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let primary_color = match diagnostic.severity() {
        Severity::Error => Color::Red,
        Severity::Warning => Color::Yellow,
    };
    let span = clamp(diagnostic.primary.span, sources);
    let mut report = Report::build(kind, AriadneSpan(span))
        .with_config(
            Config::default()
                .with_index_type(IndexType::Byte)
                .with_color(color),
        )
        .with_code(diagnostic.code.as_str())
        .with_message(&diagnostic.message)
        .with_label(
            AriadneLabel::new(AriadneSpan(span))
                .with_message(&diagnostic.primary.message)
                .with_color(primary_color)
                .with_order(order(span))
                .with_priority(1),
        );
    for label in &diagnostic.secondary {
        let span = clamp(label.span, sources);
        report = report.with_label(
            AriadneLabel::new(AriadneSpan(span))
                .with_message(&label.message)
                .with_color(Color::Blue)
                .with_order(order(span)),
        );
    }
    for note in &diagnostic.notes {
        report = report.with_note(note);
    }
    if let Some(help) = &diagnostic.help {
        report = report.with_help(help);
    }
    let mut out = Vec::new();
    // Writing to a Vec cannot fail; a failure would only lose the rendering.
    let _ = report.finish().write(Cache(renderer), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Labels are ordered by where they are: ariadne starts a new section
/// whenever a label's line is before the previous one's, and heads every
/// section of the primary's file with the primary's line, so labels out
/// of source order printed `file:21:35` over an excerpt of line 4.
fn order(span: Span) -> i32 {
    i32::try_from(span.start).unwrap_or(i32::MAX)
}

/// Keeps a span inside its file and on character boundaries, so a bad
/// span can never make the renderer panic.
fn clamp(span: Span, sources: &SourceMap) -> Span {
    let text = &sources.get(span.file).text;
    let mut start = (span.start as usize).min(text.len());
    let mut end = (span.end as usize).clamp(start, text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    Span::new(span.file, start, end)
}

/// A diagnostic as one JSON object (one line of `--format json`).
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub code: &'a str,
    pub severity: Severity,
    pub message: &'a str,
    pub file: &'a str,
    pub start: JsonPosition,
    pub end: JsonPosition,
    pub label: &'a str,
    pub related: Vec<JsonRelated<'a>>,
    pub notes: &'a [String],
    pub help: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct JsonPosition {
    pub line: usize,
    pub column: usize,
    pub offset: u32,
}

#[derive(Debug, Serialize)]
pub struct JsonRelated<'a> {
    pub file: &'a str,
    pub start: JsonPosition,
    pub end: JsonPosition,
    pub message: &'a str,
}

fn position(sources: &SourceMap, span: Span, offset: u32) -> JsonPosition {
    let (line, column) = sources.get(span.file).line_col(offset);
    JsonPosition {
        line,
        column,
        offset,
    }
}

/// Renders one diagnostic as a single line of JSON.
pub fn render_json(diagnostic: &Diagnostic, sources: &SourceMap) -> String {
    let span = clamp(diagnostic.primary.span, sources);
    let json = JsonDiagnostic {
        code: diagnostic.code.as_str(),
        severity: diagnostic.severity(),
        message: &diagnostic.message,
        file: &sources.get(span.file).name,
        start: position(sources, span, span.start),
        end: position(sources, span, span.end),
        label: &diagnostic.primary.message,
        related: diagnostic
            .secondary
            .iter()
            .map(|l| {
                let s = clamp(l.span, sources);
                JsonRelated {
                    file: &sources.get(s.file).name,
                    start: position(sources, s, s.start),
                    end: position(sources, s, s.end),
                    message: &l.message,
                }
            })
            .collect(),
        notes: &diagnostic.notes,
        help: diagnostic.help.as_deref(),
    };
    serde_json::to_string(&json).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
