//! When a line of input is complete, and what brackets it leaves open:
//! the same rule for the terminal (rustyline's validator) and for a
//! script read from standard input.

use crate::syntax::lexer::{tokens, Token};

/// The brackets left open at the end of `text`, innermost last, as the
/// closers they need (`)`, `]`, `}`). Brackets in strings and comments
/// do not count; a closer without an opener is ignored.
pub fn open_brackets(text: &str) -> Vec<char> {
    let mut stack = Vec::new();
    for (tok, _) in tokens(text) {
        match tok {
            Token::LParen => stack.push(')'),
            Token::LBracket => stack.push(']'),
            Token::LBrace => stack.push('}'),
            Token::RParen | Token::RBracket | Token::RBrace => {
                let close = match tok {
                    Token::RParen => ')',
                    Token::RBracket => ']',
                    _ => '}',
                };
                if let Some(i) = stack.iter().rposition(|&c| c == close) {
                    stack.truncate(i);
                }
            }
            _ => {}
        }
    }
    stack
}

/// Whether `text` needs another line: an open bracket, an unterminated
/// `"""` string, a `"…"` string whose line ends in `\`, or a last token
/// that cannot end an item (`=`, `->`, `&&`, `||`, `;`, `,`, `<<<`).
/// REPL commands other than `:type` and `:guard` take words and are always
/// complete; after `:guard`'s `<<<` only an open string continues.
pub fn needs_more(text: &str) -> bool {
    let trimmed = text.trim_start();
    if let Some(command) = trimmed.strip_prefix(':') {
        let name: String = command
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        match name.as_str() {
            "type" => {}
            "guard" => {
                // the artifact after `<<<`: text to the end of the line,
                // or a string that may run on
                if let Some(i) = text.find("<<<") {
                    let artifact = text[i + 3..].trim();
                    return artifact.is_empty()
                        || (artifact.starts_with('"') && needs_more(artifact));
                }
            }
            "load" | "reload" | "check" | "items" | "show" | "graph" | "bounds" | "run"
            | "trace" | "help" | "quit" | "q" => return false,
            // a property: an item, read as one
            _ => {}
        }
    }
    let mut last = None;
    for (tok, span) in tokens(text) {
        match tok {
            Token::TripleString => {
                let s = &text[span.clone()];
                if s.len() < 6 || !s.ends_with("\"\"\"") || ends_escaped(s) {
                    return true;
                }
            }
            Token::String => {
                let s = &text[span.clone()];
                if (s.len() < 2 || !s.ends_with('"') || ends_escaped(s)) && s.ends_with('\\') {
                    return true;
                }
            }
            _ => {}
        }
        if !matches!(tok, Token::Comment | Token::DocComment) {
            last = Some(tok);
        }
    }
    if !open_brackets(text).is_empty() {
        return true;
    }
    // a doc comment documents the item on the next line
    let last_line = text.trim_end().lines().last().unwrap_or("");
    if last_line.trim_start().starts_with("///") {
        return true;
    }
    matches!(
        last,
        Some(
            Token::Equals
                | Token::Arrow
                | Token::FatArrow
                | Token::And
                | Token::Or
                | Token::Semicolon
                | Token::Comma
                | Token::Not
        )
    )
}

/// Whether `line`, coming while `pending` is unfinished, rather starts
/// an input of its own: it begins at its first column with an item
/// keyword, a doc comment or a command that is no property, and
/// `pending` is held open by brackets, not by a string. So a broken item
/// in a script does not swallow the rest of it.
pub fn starts_new_input(pending: &str, line: &str) -> bool {
    if line.starts_with(char::is_whitespace)
        || in_string(pending)
        || open_brackets(pending).is_empty()
    {
        return false;
    }
    if let Some(command) = line.strip_prefix(':') {
        let name: String = command
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        return matches!(
            name.as_str(),
            "load"
                | "reload"
                | "check"
                | "type"
                | "items"
                | "show"
                | "graph"
                | "bounds"
                | "trace"
                | "help"
                | "quit"
                | "q"
        );
    }
    tokens(line).next().is_some_and(|(t, _)| t.starts_item())
}

/// Whether `text` ends inside a string that runs on to the next line.
fn in_string(text: &str) -> bool {
    tokens(text).any(|(tok, span)| {
        let s = &text[span];
        match tok {
            Token::TripleString => s.len() < 6 || !s.ends_with("\"\"\"") || ends_escaped(s),
            Token::String => {
                s.ends_with('\\') && (s.len() < 2 || !s.ends_with('"') || ends_escaped(s))
            }
            _ => false,
        }
    })
}

/// Whether the closing quote of `s` is escaped by a `\` (an odd run).
fn ends_escaped(s: &str) -> bool {
    let body = s.trim_end_matches('"');
    let quotes = s.len() - body.len();
    quotes > 0 && body.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_blocks_and_strings_continue() {
        assert!(needs_more("action a() -> Text {"));
        assert!(needs_more("guard g = all(a,"));
        assert!(needs_more("  :generate g \"\"\"\n  Write"));
        assert!(needs_more("guard g = a &&"));
        assert!(needs_more("/// the doc"));
        assert!(needs_more(":guard contains(\"x\") <<<"));
        assert!(!needs_more("guard g = a && b"));
        assert!(!needs_more("action a() -> Text { :retry 1 }"));
        assert!(!needs_more("input s: Text = \"{\""));
        assert!(!needs_more(":load dir(1/x.guardflow"));
        assert!(!needs_more(":guard python_syntax <<< def f(:"));
        assert!(needs_more(":guard python_syntax <<< \"\"\"\ndef f("));
        assert!(!needs_more(":guard g <<< \"\"\"\nx\n\"\"\""));
        assert!(needs_more(":type all(a,"));
        assert!(!needs_more(":run t x=("));
        assert!(!needs_more("type T = Text )"));
        assert!(!needs_more("\"\"\"a\"\"\""));
        assert!(needs_more("x = \"a \\"));
    }

    #[test]
    fn an_item_start_ends_a_broken_input() {
        assert!(starts_new_input("action a( -> {\n", "action b() -> T {"));
        assert!(starts_new_input("guard g = all(\n", ":type 1"));
        assert!(!starts_new_input("guard g = all(\n", "  action"));
        assert!(!starts_new_input("guard g = all(\n", ":guard x"));
        assert!(!starts_new_input("x = \"\"\"\n", "task: write it"));
        assert!(!starts_new_input("/// doc\n", "action a() -> T {"));
    }

    #[test]
    fn open_brackets_skip_strings_and_comments() {
        assert_eq!(open_brackets("f(\"(\", [x // (\n"), vec![')', ']']);
        assert_eq!(open_brackets("{ ( ] }"), Vec::<char>::new());
    }
}
