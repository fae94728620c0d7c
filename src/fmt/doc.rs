//! The layout engine: a flat stream of text, line breaks, groups and
//! indentation, printed to fit a line width.
//!
//! A group prints flat (its `Line`s as spaces) when its content fits on
//! the rest of the line and holds no comment or hard break; otherwise
//! every `Line` directly in it becomes a newline. A comment always ends
//! its line: the next text after one starts a new line whatever the mode.

/// The width the formatter fits lines into.
pub const WIDTH: usize = 100;
/// One level of indentation.
pub const INDENT: usize = 2;

#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// Text printed as is. Only verbatim string literals hold newlines.
    Text(String),
    /// A multi-line literal whose lines after the first move by as much as
    /// its first line's indentation changes from `indent` (in the source);
    /// printed as is when a line has too little indentation to move.
    Block {
        text: String,
        indent: usize,
    },
    /// A space, unless it would start a line.
    Space,
    /// A space when its group is flat, a newline when it is broken.
    Line,
    /// Nothing when its group is flat, a newline when it is broken.
    Soft,
    /// Always a newline.
    Hard,
    /// A newline and one empty line.
    Blank,
    /// Text printed only when its group is broken (a trailing comma).
    IfBreak(&'static str),
    /// A `//` or `///` comment; `trailing` ones stay on the line before.
    Comment {
        text: String,
        trailing: bool,
    },
    GroupStart,
    GroupEnd,
    Indent,
    Dedent,
}

/// Prints a stream. Groups must be balanced (the builder guarantees it).
pub fn print(docs: &[Doc]) -> String {
    let ends = group_ends(docs);
    let mut out = String::new();
    let mut indent = 0usize;
    // the mode of each open group: true when flat
    let mut modes: Vec<bool> = Vec::new();
    // newlines owed before the next text (1 = new line, 2 = empty line too)
    let mut pending = 0usize;
    // the indentation of the line those newlines start, as it was when the
    // break was asked for (an `Indent` right after a break belongs to the
    // next break)
    let mut line_indent = 0usize;
    let mut column = 0usize;
    let mut started = false;
    for (i, doc) in docs.iter().enumerate() {
        let flat = modes.last().copied().unwrap_or(false);
        match doc {
            Doc::Text(t) => {
                write_text(&mut out, &mut pending, &mut column, line_indent, started, t);
                started = true;
            }
            Doc::Block { text, indent: from } => {
                // the indentation of the line the block starts on
                let current = if pending > 0 {
                    line_indent
                } else {
                    let last = &out[out.rfind('\n').map_or(0, |i| i + 1)..];
                    last.len() - last.trim_start_matches(' ').len()
                };
                let delta = current as isize - *from as isize;
                let moved = shift(text, delta);
                let t = moved.as_deref().unwrap_or(text);
                write_text(&mut out, &mut pending, &mut column, line_indent, started, t);
                started = true;
            }
            Doc::IfBreak(t) => {
                if !flat {
                    write_text(&mut out, &mut pending, &mut column, line_indent, started, t);
                    started = true;
                }
            }
            Doc::Space => {
                if pending == 0 && started {
                    write_text(
                        &mut out,
                        &mut pending,
                        &mut column,
                        line_indent,
                        started,
                        " ",
                    );
                }
            }
            Doc::Line => {
                if flat {
                    if pending == 0 {
                        write_text(
                            &mut out,
                            &mut pending,
                            &mut column,
                            line_indent,
                            started,
                            " ",
                        );
                    }
                } else {
                    pending = pending.max(1);
                    line_indent = indent;
                }
            }
            Doc::Soft => {
                if !flat {
                    pending = pending.max(1);
                    line_indent = indent;
                }
            }
            Doc::Hard => {
                pending = pending.max(1);
                line_indent = indent;
            }
            Doc::Blank => {
                pending = 2;
                line_indent = indent;
            }
            Doc::Comment { text, trailing } => {
                if *trailing && started && pending == 0 {
                    out.push(' ');
                    out.push_str(text);
                    column += 1 + text.chars().count();
                } else {
                    if pending == 0 {
                        pending = 1;
                        line_indent = indent;
                    }
                    write_text(
                        &mut out,
                        &mut pending,
                        &mut column,
                        line_indent,
                        started,
                        text,
                    );
                }
                started = true;
                pending = 1;
                line_indent = indent;
            }
            Doc::GroupStart => {
                // a group inside a flat group is flat; otherwise it is flat
                // when it fits from where it starts
                let start = if pending > 0 { line_indent } else { column };
                let content = &docs[i + 1..ends[i]];
                modes.push(flat || fits(content, WIDTH.saturating_sub(start)));
            }
            Doc::GroupEnd => {
                modes.pop();
            }
            Doc::Indent => indent += INDENT,
            Doc::Dedent => indent = indent.saturating_sub(INDENT),
        }
    }
    if started {
        out.push('\n');
    }
    out
}

/// `text` with the lines after the first moved right (`delta` > 0) or left;
/// `None` when a line has too few leading spaces to move left. Lines of
/// blanks become empty.
fn shift(text: &str, delta: isize) -> Option<String> {
    let mut lines = text.split('\n');
    let mut out = lines.next().unwrap_or("").to_string();
    for line in lines {
        out.push('\n');
        if line.trim().is_empty() {
            continue;
        }
        if delta >= 0 {
            out.extend(std::iter::repeat_n(' ', delta as usize));
            out.push_str(line);
        } else {
            let n = delta.unsigned_abs();
            if !line.starts_with(&" ".repeat(n)) {
                return None;
            }
            out.push_str(&line[n..]);
        }
    }
    Some(out)
}

fn write_text(
    out: &mut String,
    pending: &mut usize,
    column: &mut usize,
    indent: usize,
    started: bool,
    text: &str,
) {
    if *pending > 0 {
        while out.ends_with(' ') {
            out.pop();
        }
        if started {
            for _ in 0..*pending {
                out.push('\n');
            }
        }
        *pending = 0;
        for _ in 0..indent {
            out.push(' ');
        }
        *column = indent;
    }
    out.push_str(text);
    match text.rfind('\n') {
        Some(i) => *column = text[i + 1..].chars().count(),
        None => *column += text.chars().count(),
    }
}

/// Whether `docs`, printed flat, fit in `width` columns: no comment, hard
/// break or multi-line literal (a group holding a `"""` string breaks, so
/// the string starts on a line of its own and its closing line ends
/// nothing else), and the text within the width.
fn fits(docs: &[Doc], width: usize) -> bool {
    let mut used = 0usize;
    for doc in docs {
        match doc {
            Doc::Text(t) | Doc::Block { text: t, .. } => {
                if t.contains('\n') {
                    return false;
                }
                used += t.chars().count();
            }
            Doc::Line | Doc::Space => used += 1,
            Doc::Soft | Doc::IfBreak(_) | Doc::GroupStart | Doc::GroupEnd => {}
            Doc::Indent | Doc::Dedent => {}
            Doc::Hard | Doc::Blank | Doc::Comment { .. } => return false,
        }
        if used > width {
            return false;
        }
    }
    true
}

/// For each `GroupStart`, the index of its `GroupEnd` (the stream's end
/// when unbalanced).
fn group_ends(docs: &[Doc]) -> Vec<usize> {
    let mut ends = vec![docs.len(); docs.len()];
    let mut open = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        match doc {
            Doc::GroupStart => open.push(i),
            Doc::GroupEnd => {
                if let Some(s) = open.pop() {
                    ends[s] = i;
                }
            }
            _ => {}
        }
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Doc {
        Doc::Text(s.to_string())
    }

    fn call(args: &[&str]) -> Vec<Doc> {
        let mut d = vec![Doc::GroupStart, text("f("), Doc::Indent, Doc::Soft];
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                d.push(text(","));
                d.push(Doc::Line);
            }
            d.push(text(a));
        }
        d.extend([
            Doc::IfBreak(","),
            Doc::Dedent,
            Doc::Soft,
            text(")"),
            Doc::GroupEnd,
        ]);
        d
    }

    #[test]
    fn a_group_that_fits_is_flat() {
        assert_eq!(print(&call(&["a", "b"])), "f(a, b)\n");
    }

    #[test]
    fn a_group_that_does_not_fit_breaks_every_line_with_a_trailing_comma() {
        let long = "x".repeat(60);
        assert_eq!(
            print(&call(&[&long, &long])),
            format!("f(\n  {long},\n  {long},\n)\n")
        );
    }

    #[test]
    fn a_group_holding_a_multi_line_string_breaks() {
        let block = "\"\"\"\nline\n\"\"\"";
        assert_eq!(
            print(&call(&["a", block])),
            format!("f(\n  a,\n  {block},\n)\n")
        );
    }

    #[test]
    fn a_comment_breaks_its_group_and_ends_its_line() {
        let mut d = call(&["a", "b"]);
        d.insert(
            6,
            Doc::Comment {
                text: "// c".into(),
                trailing: true,
            },
        );
        assert_eq!(print(&d), "f(\n  a, // c\n  b,\n)\n");
    }

    #[test]
    fn blank_lines_have_no_trailing_spaces() {
        let d = vec![Doc::Indent, text("a"), Doc::Blank, text("b"), Doc::Dedent];
        assert_eq!(print(&d), "a\n\n  b\n");
    }
}
