//! pest → AST. The only module that knows pest.
//!
//! The driver parses one item at a time. When an item does not parse, the
//! error is reported and parsing resumes at the next line that starts an
//! item, so one run reports independent errors across the file.

mod convert;
mod expected;
mod literal;

use pest::Parser as _;

use super::ast;
use super::error::SyntaxError;
use super::lexer;
use crate::source::{FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/guardflow.pest"]
struct GuardflowParser;

/// Parses one file. Never fails: what cannot be parsed becomes errors and
/// the rest of the file is still read.
pub fn parse(file: FileId, src: &str) -> (ast::File, Vec<SyntaxError>) {
    let outline = lexer::outline(src);
    let mut errors = Vec::new();
    let mut items = Vec::new();
    let mut doc: Option<(String, Span)> = None;
    let mut pos = skip_trivia(src, 0);
    let mut too_deep = outline.too_deep.iter().copied().peekable();

    while pos < src.len() {
        let next_start = next_item_start(&outline.item_starts, pos as u32 + 1);
        // a too-deep bracket inside this item: skip the item
        while too_deep.peek().is_some_and(|&d| (d as usize) < pos) {
            too_deep.next();
        }
        if let Some(&d) = too_deep.peek() {
            if (d as usize) < next_start.unwrap_or(src.len() as u32) as usize {
                errors.push(SyntaxError::TooDeep {
                    span: Span::new(file, d as usize, d as usize + 1),
                    max: lexer::MAX_DEPTH,
                });
                too_deep.next();
                doc = None;
                pos = resume_at(src, &outline.item_starts, d as usize + 1);
                continue;
            }
        }
        match GuardflowParser::parse(Rule::item, &src[pos..]) {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let end = pos + pair.as_span().end();
                let mut conv = convert::Converter::new(file, pos, &mut errors, src);
                if pair.as_rule() == Rule::doc_line {
                    let span = conv.span(&pair);
                    let line = pair.as_str().trim_start_matches('/');
                    let line = line.strip_prefix(' ').unwrap_or(line);
                    doc = Some(match doc.take() {
                        Some((mut text, first)) => {
                            text.push('\n');
                            text.push_str(line);
                            (text, first.to(span))
                        }
                        None => (line.to_string(), span),
                    });
                } else if let Some(kind) = conv.item(pair) {
                    items.push(ast::Item {
                        doc: doc.take().map(|(text, _)| text),
                        kind,
                        span: Span::new(file, pos, end),
                    });
                } else {
                    doc = None;
                }
                pos = skip_trivia(src, end.max(pos + 1));
            }
            Err(e) => {
                let e = detailed_error(Rule::item, &src[pos..]).unwrap_or(e);
                errors.push(expected::translate(file, src, pos, &e));
                doc = None;
                let at = expected::error_offset(pos, &e).max(pos + 1);
                pos = resume_at(src, &outline.item_starts, at);
            }
        }
    }
    if let Some((_, span)) = doc {
        errors.push(SyntaxError::DanglingDoc { span });
    }
    (ast::File { items }, errors)
}

fn next_item_start(starts: &[u32], from: u32) -> Option<u32> {
    let i = starts.partition_point(|&s| s < from);
    starts.get(i).copied()
}

/// The first item start at or after `at`, or the end of the file.
fn resume_at(src: &str, starts: &[u32], at: usize) -> usize {
    next_item_start(starts, at as u32).map_or(src.len(), |s| s as usize)
}

/// Skips whitespace and `//` comments, but not `///` doc comments.
fn skip_trivia(src: &str, mut pos: usize) -> usize {
    let bytes = src.as_bytes();
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let rest = &bytes[pos.min(bytes.len())..];
        let is_doc = rest.starts_with(b"///") && !rest.starts_with(b"////");
        let is_comment = rest.starts_with(b"//") && !is_doc;
        if !is_comment {
            return pos.min(bytes.len());
        }
        while pos < bytes.len() && bytes[pos] != b'\n' {
            pos += 1;
        }
    }
}

/// Parses `src` as one property value with the rule the property wants and
/// returns where it fails; used to explain a known property whose value did
/// not parse.
fn explain_property(file: FileId, src: &str, start: usize, rule: Rule) -> Option<SyntaxError> {
    detailed_error(rule, &src[start..]).map(|e| expected::translate(file, src, start, &e))
}

static ERROR_DETAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Parses again with pest's error detail on, which also records the
/// literal tokens it wanted. Detail is a process-wide switch and slows
/// parsing, so it is on only here, one caller at a time.
fn detailed_error(rule: Rule, input: &str) -> Option<pest::error::Error<Rule>> {
    let _guard = ERROR_DETAIL.lock().unwrap_or_else(|p| p.into_inner());
    pest::set_error_detail(true);
    let result = GuardflowParser::parse(rule, input).err();
    pest::set_error_detail(false);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> ast::File {
        let (file, errors) = parse(FileId(0), src);
        assert!(errors.is_empty(), "{errors:#?}");
        file
    }

    #[test]
    fn parses_an_action_and_a_task() {
        let f = parse_ok(
            r#"
use std.{python_syntax}
/// docs
action a(spec: Text) -> Code<python> {
  :generate coder "Write {spec}"
  :guard python_syntax && !contains("x")
  :retry 3
}
task t(spec: Text) -> Code<python> {
  method m {
    :subtasks (x: a(spec), y: a(spec) :escalate-to x after 2 :max-escalations 1)
    :ordering (x ; y)
    :result y
  }
}
"#,
        );
        assert_eq!(f.items.len(), 3);
        assert_eq!(f.items[1].doc.as_deref(), Some("docs"));
    }

    #[test]
    fn unclosed_groups_in_an_unknown_property_take_linear_time() {
        // each unclosed `(` used to double the time: 2^60 steps here
        let src = format!("action a() -> Text {{\n  :frob {}x\n}}\n", "(".repeat(60));
        let (file, errors) = parse(FileId(0), &src);
        assert_eq!(file.items.len(), 1);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(matches!(errors[0], SyntaxError::UnknownProperty { .. }));
    }

    #[test]
    fn recovers_after_a_broken_item() {
        let src = "action a( -> T {}\ntype X = Text\naction b() -> {\n}\ntype Y = Int\n";
        let (file, errors) = parse(FileId(0), src);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(file.items.len(), 2);
    }
}
