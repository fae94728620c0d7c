//! Colouring input as it is typed, by the logos token classes: keywords,
//! `:properties` (and REPL commands), strings with their interpolations,
//! numbers and durations, the operators `;` `||` `&&` `!` `->`, comments;
//! and the bracket matching the one at the cursor.

use crate::syntax::lexer::{tokens, Token};

pub const KEYWORD: &str = "\x1b[1;35m";
pub const PROPERTY: &str = "\x1b[36m";
pub const COMMAND: &str = "\x1b[1;36m";
pub const STRING: &str = "\x1b[32m";
pub const INTERPOLATION: &str = "\x1b[33m";
pub const NUMBER: &str = "\x1b[34m";
pub const DURATION: &str = "\x1b[94m";
pub const OPERATOR: &str = "\x1b[1;33m";
pub const COMMENT: &str = "\x1b[90m";
pub const ERROR: &str = "\x1b[31m";
pub const MATCH: &str = "\x1b[1;4m";
pub const RESET: &str = "\x1b[0m";

/// `line` with ANSI colours; the bracket matching the one at or just
/// before byte `cursor` (and that one) underlined. The visible text is
/// unchanged.
pub fn highlight(line: &str, cursor: Option<usize>) -> String {
    let matched = cursor.and_then(|c| matching_bracket(line, c));
    let mut out = String::with_capacity(line.len() * 2);
    let mut last = 0;
    let mut first = true;
    let toks: Vec<_> = tokens(line).collect();
    for (i, (tok, span)) in toks.iter().cloned().enumerate() {
        out.push_str(&line[last..span.start]);
        let text = &line[span.clone()];
        // `python"""…"""`: a code literal, its text verbatim
        let string_after = |j: usize| {
            toks.get(j).is_some_and(|(t, s)| {
                matches!(t, Token::String | Token::TripleString) && s.start == span.end
            })
        };
        let code_body = i > 0
            && matches!(tok, Token::String | Token::TripleString)
            && toks[i - 1].1.end == span.start
            && (toks[i - 1].0 == Token::Ident || toks[i - 1].0.is_keyword());
        let colour = match tok {
            _ if code_body => Some(STRING),
            Token::Ident if string_after(i + 1) => Some(PROPERTY),
            t if t.is_keyword() => Some(KEYWORD),
            Token::Property if first => Some(COMMAND),
            Token::Property => Some(PROPERTY),
            Token::String | Token::TripleString => {
                string(&mut out, text);
                last = span.end;
                first = false;
                continue;
            }
            Token::Number if text.ends_with(|c: char| c.is_ascii_alphabetic()) => Some(DURATION),
            Token::Number | Token::Bool => Some(NUMBER),
            Token::And
            | Token::Or
            | Token::Semicolon
            | Token::Not
            | Token::Arrow
            | Token::Compare => Some(OPERATOR),
            Token::FatArrow => Some(OPERATOR),
            Token::Comment | Token::DocComment => Some(COMMENT),
            Token::Error => Some(ERROR),
            Token::LParen
            | Token::RParen
            | Token::LBracket
            | Token::RBracket
            | Token::LBrace
            | Token::RBrace
                if matched.is_some_and(|(a, b)| span.start == a || span.start == b) =>
            {
                Some(MATCH)
            }
            _ => None,
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(text);
                out.push_str(RESET);
            }
            None => out.push_str(text),
        }
        last = span.end;
        first = false;
    }
    out.push_str(&line[last..]);
    out
}

/// A string token: the text green, each `{…}` yellow (`\{` is text).
fn string(out: &mut String, text: &str) {
    out.push_str(STRING);
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'{' => {
                let end = text[i..].find('}').map_or(text.len(), |e| i + e + 1);
                out.push_str(&text[start..i]);
                out.push_str(INTERPOLATION);
                out.push_str(&text[i..end]);
                out.push_str(STRING);
                i = end;
                start = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[start.min(text.len())..]);
    out.push_str(RESET);
}

/// The byte offsets of the bracket at `cursor` (or just before it) and
/// of its partner, when it has one. Brackets in strings do not count.
pub fn matching_bracket(line: &str, cursor: usize) -> Option<(usize, usize)> {
    let brackets: Vec<(Token, usize)> = tokens(line)
        .filter(|(t, _)| {
            matches!(
                t,
                Token::LParen
                    | Token::RParen
                    | Token::LBracket
                    | Token::RBracket
                    | Token::LBrace
                    | Token::RBrace
            )
        })
        .map(|(t, s)| (t, s.start))
        .collect();
    let at = brackets
        .iter()
        .position(|&(_, s)| s == cursor)
        .or_else(|| brackets.iter().position(|&(_, s)| s + 1 == cursor))?;
    let (tok, pos) = brackets[at];
    let (open, close) = match tok {
        Token::LParen | Token::RParen => (Token::LParen, Token::RParen),
        Token::LBracket | Token::RBracket => (Token::LBracket, Token::RBracket),
        _ => (Token::LBrace, Token::RBrace),
    };
    let mut depth = 0i32;
    if tok == open {
        for &(t, s) in &brackets[at..] {
            depth += i32::from(t == open) - i32::from(t == close);
            if depth == 0 {
                return Some((pos, s));
            }
        }
    } else {
        for &(t, s) in brackets[..=at].iter().rev() {
            depth += i32::from(t == close) - i32::from(t == open);
            if depth == 0 {
                return Some((s, pos));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> String {
        let mut out = String::new();
        let mut in_escape = false;
        for c in s.chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    #[test]
    fn classes_get_their_colours_and_the_text_stays() {
        let line = "action a() -> Text { :retry 2 :timeout 30s :generate g \"x {y}\" } // c";
        let h = highlight(line, None);
        assert_eq!(plain(&h), line);
        assert!(h.contains(&format!("{KEYWORD}action{RESET}")));
        assert!(h.contains(&format!("{PROPERTY}:retry{RESET}")));
        assert!(h.contains(&format!("{NUMBER}2{RESET}")));
        assert!(h.contains(&format!("{DURATION}30s{RESET}")));
        assert!(h.contains(&format!("{OPERATOR}->{RESET}")));
        assert!(h.contains(&format!("{INTERPOLATION}{{y}}{STRING}")));
        assert!(h.contains(&format!("{COMMENT}// c{RESET}")));
        assert!(highlight(":load x", None).starts_with(&format!("{COMMAND}:load{RESET}")));
    }

    #[test]
    fn a_code_literal_is_its_language_and_verbatim_text() {
        let line = "input t: Code<python> = python\"d = {y}\" :pre len(x) >= 2";
        let h = highlight(line, None);
        assert_eq!(plain(&h), line);
        assert!(h.contains(&format!("{PROPERTY}python{RESET}")), "{h:?}");
        // braces in code are not interpolations
        assert!(
            h.contains(&format!("{STRING}\"d = {{y}}\"{RESET}")),
            "{h:?}"
        );
        assert!(h.contains(&format!("{OPERATOR}>={RESET}")), "{h:?}");
    }

    proptest::proptest! {
        /// Any text, any cursor: the colours change nothing visible, and
        /// completion and the continuation rule do not panic.
        #[test]
        fn any_input_keeps_its_text(line in "(\\PC|[\"{}()\\[\\]:;|&!/\\\\ \n]){0,60}", cursor in 0usize..80) {
            let h = highlight(&line, Some(cursor));
            proptest::prop_assert_eq!(plain(&h), line.clone());
            let names = super::super::complete::Names {
                items: vec![("a".into(), super::super::complete::NameKind::Task)],
                std_guards: vec!["contains".into()],
            };
            let _ = super::super::complete::complete(&line, cursor, &names);
            let _ = super::super::input::needs_more(&line);
            let _ = super::super::input::starts_new_input(&line, &line);
        }
    }

    #[test]
    fn the_partner_of_the_bracket_at_the_cursor() {
        let line = "all(a, f(\")\"), [b])";
        assert_eq!(matching_bracket(line, 3), Some((3, line.len() - 1)));
        assert_eq!(
            matching_bracket(line, line.len()),
            Some((3, line.len() - 1))
        );
        assert_eq!(matching_bracket("(()", 0), None);
        assert_eq!(matching_bracket("abc", 1), None);
        let h = highlight(line, Some(3));
        assert_eq!(h.matches(MATCH).count(), 2);
        assert_eq!(plain(&h), line);
    }
}
