//! pest → AST. The only module that knows pest.
//!
//! The driver parses one item at a time. When an item does not parse, the
//! error is reported and parsing resumes at the next line that starts an
//! item, so one run reports independent errors across the file.

mod convert;
mod expected;
mod fast;
mod literal;
mod strings;

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
///
/// Each item is first read by the fast path ([`fast`], straight from the
/// lexer's tokens); what it does not accept (every error, and a few rare
/// shapes) is parsed by pest, which explains what is wrong.
pub fn parse(file: FileId, src: &str) -> (ast::File, Vec<SyntaxError>) {
    parse_with(file, src, true)
}

/// [`parse`] with pest alone, for the tests that hold the fast path to it.
#[doc(hidden)]
pub fn parse_with_pest_only(file: FileId, src: &str) -> (ast::File, Vec<SyntaxError>) {
    parse_with(file, src, false)
}

fn parse_with(file: FileId, src: &str, use_fast_path: bool) -> (ast::File, Vec<SyntaxError>) {
    let outline = lexer::outline(src);
    let mut fast = fast::Fast::new(src, file, &outline.tokens);
    let mut errors = Vec::new();
    // every item starts at one of these: one allocation, no copies
    let mut items = Vec::with_capacity(outline.item_starts.len());
    let mut doc: Option<(String, Span)> = None;
    let mut pos = skip_trivia(src, lexer::bom_len(src));
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
                    opener: src[d as usize..].chars().next().unwrap_or('('),
                });
                too_deep.next();
                doc = None;
                pos = resume_at(src, &outline.item_starts, d as usize + 1);
                continue;
            }
        }
        if use_fast_path {
            if let Some((parsed, end)) = fast.item_at(pos) {
                let span = Span::new(file, pos, end);
                match parsed {
                    None => add_doc_line(&mut doc, &src[pos..end], span),
                    Some(kind) => items.push(ast::Item {
                        doc: doc.take().map(|(text, _)| text),
                        kind,
                        span,
                    }),
                }
                pos = skip_trivia(src, end.max(pos + 1));
                continue;
            }
        }
        // pest reads up to the line of the next item start, not the rest
        // of the file: building a pest error scans its input from the end
        // back to the error, so parsing the rest made each broken item
        // cost the rest of the file (quadratic recovery)
        let (window, result) = parse_item(src, &outline.item_starts, pos);
        match result {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let end = pos + pair.as_span().start() + content_len(pair.as_str());
                let mut conv = convert::Converter::new(file, pos, &mut errors, &src[..window]);
                if pair.as_rule() == Rule::doc_line {
                    let span = conv.span(&pair);
                    add_doc_line(&mut doc, pair.as_str(), span);
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
                let e = detailed_error(Rule::item, &src[pos..window]).unwrap_or(e);
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

/// Parses the item at `pos` with pest, giving it the text up to the end
/// of the line of the next item start (the window). The result is the one
/// the whole rest of the file gives unless pest read up to the window's
/// end (an item that goes on past a line starting with an item keyword, or
/// an error at the end of the window): then it parses the rest of the file.
/// Returns the window's end (absolute) and the result.
fn parse_item<'i>(
    src: &'i str,
    starts: &[u32],
    pos: usize,
) -> (
    usize,
    Result<pest::iterators::Pairs<'i, Rule>, pest::error::Error<Rule>>,
) {
    let window = match next_item_start(starts, pos as u32 + 1) {
        Some(next) => src[next as usize..]
            .find('\n')
            .map_or(src.len(), |i| next as usize + i + 1),
        None => src.len(),
    };
    if window < src.len() {
        let input = &src[pos..window];
        let result = GuardflowParser::parse(Rule::item, input);
        let reached_end = match &result {
            Ok(pairs) => pairs
                .peek()
                .is_none_or(|p| p.as_span().end() >= input.len()),
            Err(e) => expected::error_offset(0, e) >= input.len(),
        };
        if !reached_end {
            return (window, result);
        }
    }
    (src.len(), GuardflowParser::parse(Rule::item, &src[pos..]))
}

/// Adds a `///` line to the doc comment being collected.
fn add_doc_line(doc: &mut Option<(String, Span)>, raw: &str, span: Span) {
    let line = raw.trim_start_matches('/');
    let line = line.strip_prefix(' ').unwrap_or(line);
    *doc = Some(match doc.take() {
        Some((mut text, first)) => {
            text.push('\n');
            text.push_str(line);
            (text, first.to(span))
        }
        None => (line.to_string(), span),
    });
}

/// The length of a pest pair's text without what pest skipped after the
/// last thing the rule matched: when an optional part at a rule's end does
/// not match, its span still covers the whitespace and `//` comments read
/// before trying it.
fn content_len(text: &str) -> usize {
    let trimmed = text.trim_end();
    if !trimmed.contains("//") {
        return trimmed.len();
    }
    // a pair starts at a token, so its text lexes as it does in the file
    lexer::tokens(text)
        .filter(|(t, range)| !lexer::is_comment(*t, &text[range.clone()]))
        .last()
        .map_or(0, |(_, range)| range.end)
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

    /// The fast path reads every item of the examples and the test
    /// programs that pass: pest is left only errors and rare shapes.
    #[test]
    fn the_fast_path_reads_every_well_formed_item() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut seen = 0;
        for dir in ["examples", "tests/pass", "stdlib"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "guardflow") {
                    continue;
                }
                let src = std::fs::read_to_string(&path).unwrap();
                let outline = lexer::outline(&src);
                let mut fast = fast::Fast::new(&src, FileId(0), &outline.tokens);
                let mut pos = skip_trivia(&src, 0);
                while pos < src.len() {
                    let Some((_, end)) = fast.item_at(pos) else {
                        let line = src[..pos].lines().count() + 1;
                        panic!("{}:{line}: the fast path gave up", path.display());
                    };
                    seen += 1;
                    pos = skip_trivia(&src, end);
                }
            }
        }
        assert!(seen > 200, "only {seen} items");
    }

    /// Map literals are the fast path's too, glued colons included.
    #[test]
    fn the_fast_path_reads_map_literals() {
        for src in [
            "input m: Map<Text> = {}\n",
            "input m: Map<Text> = {\"a\":b, \"c\": [1, {\"d\": e}],}\n",
            "input m: Map<Text> = {\n  // c\n  \"a\": b\n}\n",
        ] {
            let outline = lexer::outline(src);
            let mut fast = fast::Fast::new(src, FileId(0), &outline.tokens);
            let Some((Some(ast::ItemKind::Input(input)), _)) = fast.item_at(0) else {
                panic!("the fast path gave up on {src:?}");
            };
            assert!(matches!(input.default, Some(ast::Expr::Map(..))), "{src:?}");
        }
    }

    #[test]
    fn a_triple_string_loses_its_common_indentation_only() {
        let src =
            "input code: Text = \"\"\"\n    def f():\n        return 1\n\n    f()\n    \"\"\"\n";
        for (file, errors) in [parse(FileId(0), src), parse_with_pest_only(FileId(0), src)] {
            assert!(errors.is_empty(), "{errors:?}");
            let ast::ItemKind::Input(input) = &file.items[0].kind else {
                panic!("{:?}", file.items[0]);
            };
            let Some(ast::Expr::String(s)) = &input.default else {
                panic!("{input:?}");
            };
            assert_eq!(
                s.as_plain().as_deref(),
                Some("def f():\n    return 1\n\nf()")
            );
        }
    }

    #[test]
    fn recovers_after_a_broken_item() {
        let src = "action a( -> T {}\ntype X = Text\naction b() -> {\n}\ntype Y = Int\n";
        let (file, errors) = parse(FileId(0), src);
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert_eq!(file.items.len(), 2);
    }
}
