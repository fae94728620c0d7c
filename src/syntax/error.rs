//! Syntax errors: plain data, turned into diagnostics in one place.

use crate::diagnostics::{Code, Diagnostic};
use crate::source::Span;

/// What kind of number a position wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberKind {
    Integer,
    Probability,
    Duration,
    Any,
}

impl NumberKind {
    fn words(self) -> &'static str {
        match self {
            NumberKind::Integer => "a whole number",
            NumberKind::Probability => "a probability such as `0.6`",
            NumberKind::Duration => "a duration such as `500ms`, `30s`, `5m` or `2h`",
            NumberKind::Any => "a number",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SyntaxError {
    /// pest could not go on: what it wanted, in words, and what it found.
    Unexpected {
        span: Span,
        expected: Vec<&'static str>,
        found: String,
        context: Option<&'static str>,
    },
    UnterminatedString {
        span: Span,
        triple: bool,
    },
    InvalidEscape {
        span: Span,
        escape: String,
    },
    BadInterpolation {
        span: Span,
        text: String,
    },
    InvalidNumber {
        span: Span,
        text: String,
        wanted: NumberKind,
    },
    TooDeep {
        span: Span,
        max: usize,
        /// The character that opened the level too many: a bracket,
        /// `<` or `!`.
        opener: char,
    },
    MixedOrdering {
        group: Span,
        first: (&'static str, Span),
        second: (&'static str, Span),
    },
    UnknownProperty {
        span: Span,
        name: String,
        place: &'static str,
        belongs_to: Option<&'static str>,
        suggestion: Option<&'static str>,
    },
    DuplicateProperty {
        span: Span,
        first: Span,
        name: &'static str,
    },
    MissingProperty {
        span: Span,
        item: String,
        place: &'static str,
        property: &'static str,
        hint: &'static str,
    },
    InvalidValue {
        span: Span,
        property: &'static str,
        allowed: &'static str,
    },
    InvalidTypeSyntax {
        span: Span,
        enum_span: Span,
    },
    DanglingDoc {
        span: Span,
    },
}

fn words(list: &[&str]) -> String {
    match list {
        [] => "something else".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

impl SyntaxError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            SyntaxError::Unexpected {
                span,
                expected,
                found,
                context,
            } => {
                let d = Diagnostic::new(
                    Code::E0001,
                    format!("expected {}, found {}", words(expected), found),
                    *span,
                    format!("expected {} here", words(expected)),
                );
                match context {
                    Some(c) if c.starts_with("a `}`") => d.with_help(*c),
                    Some(c) => d.with_note(format!("while reading {c}")),
                    None => d,
                }
            }
            SyntaxError::UnterminatedString { span, triple } => {
                let (msg, help) = if *triple {
                    (
                        "this `\"\"\"` string is never closed",
                        "close it with `\"\"\"`",
                    )
                } else {
                    (
                        "this string is not closed before the end of the line",
                        "close it with `\"`, or use `\"\"\"` for a string of several lines",
                    )
                };
                Diagnostic::new(Code::E0002, "unterminated string", *span, msg).with_help(help)
            }
            SyntaxError::InvalidEscape { span, escape } => Diagnostic::new(
                Code::E0003,
                format!("unknown escape sequence `{escape}`"),
                *span,
                "not an escape guardflow knows",
            )
            .with_help("the escapes are \\n \\t \\r \\\" \\\\ \\{ \\}; write \\\\ for a backslash"),
            SyntaxError::BadInterpolation { span, text } => Diagnostic::new(
                Code::E0004,
                format!("malformed interpolation `{text}`"),
                *span,
                "`{` starts an interpolation, which must be `{name}` or `{name.field}`",
            )
            .with_help("write `\\{` for a literal brace"),
            SyntaxError::InvalidNumber { span, text, wanted } => Diagnostic::new(
                Code::E0005,
                format!("`{text}` is not {}", wanted.words()),
                *span,
                format!("expected {}", wanted.words()),
            ),
            SyntaxError::TooDeep { span, max, opener } => Diagnostic::new(
                Code::E0006,
                format!("nesting is deeper than {max} levels"),
                *span,
                match opener {
                    '!' => "this negation is one level too deep",
                    '<' => "this type argument is one level too deep",
                    _ => "this bracket is one level too deep",
                },
            )
            .with_note("the item is skipped; the rest of the file is still checked")
            .with_help("split the expression into named guards, types or tasks"),
            SyntaxError::MixedOrdering {
                group,
                first,
                second,
            } => Diagnostic::new(
                Code::E0007,
                format!(
                    "`{}` and `{}` are mixed in one ordering group",
                    first.0, second.0
                ),
                second.1,
                format!("`{}` here", second.0),
            )
            .with_label(first.1, format!("after `{}` here", first.0))
            .with_label(*group, "in this group")
            .with_help("add parentheses to say which binds first, e.g. `(a ; (b || c))`"),
            SyntaxError::UnknownProperty {
                span,
                name,
                place,
                belongs_to,
                suggestion,
            } => {
                let mut d = Diagnostic::new(
                    Code::E0008,
                    format!("unknown {place} property `{name}`"),
                    *span,
                    format!("not a property of {}", article(place)),
                );
                if let Some(owner) = belongs_to {
                    d = d.with_note(format!("`{name}` is a property of {}", article(owner)));
                }
                if let Some(s) = suggestion {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                d
            }
            SyntaxError::DuplicateProperty { span, first, name } => Diagnostic::new(
                Code::E0009,
                format!("`{name}` is given twice"),
                *span,
                "given again here",
            )
            .with_label(*first, "first given here")
            .with_help("keep one of them"),
            SyntaxError::MissingProperty {
                span,
                item,
                place,
                property,
                hint,
            } => Diagnostic::new(
                Code::E0010,
                format!("{place} `{item}` has no `{property}`"),
                *span,
                format!("`{property}` is required here"),
            )
            .with_help(*hint),
            SyntaxError::InvalidValue {
                span,
                property,
                allowed,
            } => Diagnostic::new(
                Code::E0011,
                format!("invalid value for `{property}`"),
                *span,
                format!("`{property}` takes {allowed}"),
            ),
            SyntaxError::InvalidTypeSyntax { span, enum_span } => Diagnostic::new(
                Code::E0012,
                "an enum alternative must be a tag name",
                *span,
                "not a tag",
            )
            .with_label(*enum_span, "in this enum")
            .with_help("enums list bare names, `Low | Medium | High`; name a record or list type with `type` first"),
            SyntaxError::DanglingDoc { span } => Diagnostic::new(
                Code::W0004,
                "doc comment is not followed by an item",
                *span,
                "documents nothing",
            )
            .with_help("put it right before an item, or make it a plain `//` comment"),
        }
    }
}

fn article(place: &str) -> String {
    match place.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {place}"),
        _ => format!("a {place}"),
    }
}
