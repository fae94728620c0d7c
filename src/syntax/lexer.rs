//! The token-level view of guardflow source, by logos.
//!
//! The parser uses it before pest runs, to cap nesting depth and to find
//! where items start (for error recovery); the REPL and the language server
//! use it for highlighting. It never fails: unknown bytes become
//! [`Token::Error`].

use logos::Logos;

/// A token class. Keywords, property names and operators each have their
/// own, so a highlighter can colour them without a parser.
#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Token {
    #[regex(r"///[^\n]*", allow_greedy = true)]
    DocComment,
    #[regex(r"//[^\n]*", allow_greedy = true, priority = 1)]
    Comment,

    #[token("use")]
    Use,
    #[token("std")]
    Std,
    #[token("input")]
    Input,
    #[token("type")]
    Type,
    #[token("generator")]
    Generator,
    #[token("guard")]
    Guard,
    #[token("extern")]
    Extern,
    #[token("effect")]
    Effect,
    #[token("action")]
    Action,
    #[token("task")]
    Task,
    #[token("method")]
    Method,
    #[token("resource")]
    Resource,
    #[token("test")]
    Test,
    #[token("on")]
    On,
    #[token("after")]
    After,
    #[token("true")]
    #[token("false")]
    Bool,

    /// `:retry`, `:max-tokens`, `:default-retry`, …
    #[regex(r":[a-zA-Z][a-zA-Z0-9_-]*")]
    Property,

    #[regex(r"[a-zA-Z_][a-zA-Z0-9_]*")]
    Ident,
    #[regex(r"[0-9][0-9_]*(\.[0-9]+)?(ms|s|m|h)?")]
    Number,

    #[regex(r#""([^"\\\n]|\\[^\n])*""#)]
    String,
    #[regex(r#""""([^"\\]|\\(.|\n)|"[^"\\]|""[^"\\])*""""#)]
    TripleString,

    #[token("&&")]
    And,
    #[token("||")]
    Or,
    #[token("!")]
    Not,
    #[token(";")]
    Semicolon,
    #[token("->")]
    Arrow,
    #[token("<=")]
    #[token(">=")]
    #[token("==")]
    Compare,
    #[token("<")]
    Less,
    #[token(">")]
    Greater,
    #[token("|")]
    Pipe,
    #[token("*")]
    Star,
    #[token("=")]
    Equals,
    #[token(":")]
    Colon,
    #[token(",")]
    Comma,
    #[token(".")]
    Dot,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,

    Error,
}

impl Token {
    /// Tokens that start a top-level item when they begin a line.
    pub fn starts_item(self) -> bool {
        matches!(
            self,
            Token::Use
                | Token::Input
                | Token::Type
                | Token::Generator
                | Token::Guard
                | Token::Extern
                | Token::Action
                | Token::Task
                | Token::Resource
                | Token::Test
                | Token::DocComment
        )
    }

    pub fn is_keyword(self) -> bool {
        matches!(
            self,
            Token::Use
                | Token::Std
                | Token::Input
                | Token::Type
                | Token::Generator
                | Token::Guard
                | Token::Extern
                | Token::Effect
                | Token::Action
                | Token::Task
                | Token::Method
                | Token::Resource
                | Token::Test
                | Token::On
                | Token::After
        )
    }
}

/// The keywords of the language, as the lexer knows them.
pub const KEYWORDS: &[&str] = &[
    "use",
    "std",
    "input",
    "type",
    "generator",
    "guard",
    "extern",
    "effect",
    "action",
    "task",
    "method",
    "resource",
    "test",
    "on",
    "after",
];

/// Every token with its byte range, errors included.
pub fn tokens(src: &str) -> impl Iterator<Item = (Token, std::ops::Range<usize>)> + '_ {
    Token::lexer(src)
        .spanned()
        .map(|(t, span)| (t.unwrap_or(Token::Error), span))
}

/// The deepest nesting of brackets the parser accepts. Deeper input gets
/// one E0006 diagnostic instead of a stack overflow.
pub const MAX_DEPTH: usize = 64;

/// What the parser needs to know before pest runs.
#[derive(Debug, Default)]
pub struct Outline {
    /// Offsets of tokens that begin a line and can begin an item.
    pub item_starts: Vec<u32>,
    /// Offsets of the first bracket that nests deeper than [`MAX_DEPTH`],
    /// one per too-deep region.
    pub too_deep: Vec<u32>,
}

/// Scans the source once: item starts for recovery, and nesting depth.
///
/// `(`, `[`, `{` and a `<` written right after a name (`Json<`) open a
/// level; their closers end one. A `,` or `)` also ends the `<` levels
/// opened since the last bracket, since a partial order `(a<b, c<d)` uses
/// `<` without a closer.
pub fn outline(src: &str) -> Outline {
    let mut out = Outline::default();
    let mut stack: Vec<Token> = Vec::new();
    let mut line_has_token = false;
    let mut last_end = 0usize;
    let mut prev = Token::Error;
    let mut in_too_deep = false;
    for (tok, span) in tokens(src) {
        if src.as_bytes()[last_end..span.start].contains(&b'\n') {
            line_has_token = false;
        }
        if !line_has_token
            && (tok.starts_item()
                || (tok == Token::Property && src[span.clone()].starts_with(":default-")))
        {
            out.item_starts.push(span.start as u32);
        }
        line_has_token = true;
        let opens = match tok {
            Token::LParen | Token::LBracket | Token::LBrace => true,
            Token::Less => prev == Token::Ident && span.start == last_end,
            _ => false,
        };
        if opens {
            stack.push(tok);
            if stack.len() > MAX_DEPTH && !in_too_deep {
                out.too_deep.push(span.start as u32);
                in_too_deep = true;
            }
        } else {
            match tok {
                Token::RParen | Token::RBracket | Token::RBrace => {
                    while stack.last() == Some(&Token::Less) {
                        stack.pop();
                    }
                    stack.pop();
                }
                Token::Greater if stack.last() == Some(&Token::Less) => {
                    stack.pop();
                }
                Token::Comma => {
                    while stack.last() == Some(&Token::Less) {
                        stack.pop();
                    }
                }
                _ => {}
            }
            if stack.is_empty() {
                in_too_deep = false;
            }
        }
        // multi-line tokens (triple strings) end on a later line
        if src.as_bytes()[span.clone()].contains(&b'\n') {
            line_has_token = true;
        }
        last_end = span.end;
        prev = tok;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_starts_are_line_initial_keywords_outside_strings() {
        let src = "action a() -> T {\n  :generate g \"\"\"\ntask inside\n\"\"\"\n}\ntask b() {}\n";
        let o = outline(src);
        assert_eq!(o.item_starts, vec![0, src.find("task b").unwrap() as u32]);
    }

    #[test]
    fn depth_counts_brackets_and_generics_not_partial_orders() {
        let deep = format!("type T = {}Text{}", "[".repeat(70), "]".repeat(70));
        assert_eq!(outline(&deep).too_deep.len(), 1);
        let generics = format!("type T = {}Text{}", "Json<".repeat(70), ">".repeat(70));
        assert_eq!(outline(&generics).too_deep.len(), 1);
        let pairs: Vec<String> = (0..200).map(|i| format!("a{i} < b{i}")).collect();
        let partial = format!(":ordering ({})", pairs.join(", "));
        assert!(outline(&partial).too_deep.is_empty());
    }
}
