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
// the grammar's WHITESPACE: a form feed is not whitespace to pest
#[logos(skip r"[ \t\r\n]+")]
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
    #[token("for")]
    For,
    #[token("in")]
    In,
    #[token("max")]
    Max,
    #[token("true")]
    #[token("false")]
    Bool,

    /// `:retry`, `:max-tokens`, `:default-retry`, …
    #[regex(r":[a-zA-Z][a-zA-Z0-9_-]*")]
    Property,

    #[regex(r"[a-zA-Z_][a-zA-Z0-9_]*")]
    /// `best-of`, the one name with a hyphen (`:strategy best-of(3)`)
    #[token("best-of")]
    Ident,
    #[regex(r"[0-9][0-9_]*(\.[0-9]+)?(ms|s|m|h)?")]
    Number,

    /// `"…"`, ending where the grammar's `plain_string` ends: at its
    /// closing quote, or unterminated at the end of the line or file. A
    /// `\` escapes any character, a line break too.
    #[token("\"", plain_string)]
    String,
    /// `"""…"""`, ending where the grammar's `triple_string` ends.
    #[token("\"\"\"", triple_string)]
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
    #[token("=>")]
    FatArrow,
    #[token("<=")]
    #[token(">=")]
    #[token("==")]
    #[token("!=")]
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
                | Token::For
                | Token::In
                | Token::Max
        )
    }
}

/// The rest of a `"…"` string after its opening quote, exactly as the
/// grammar reads it (`plain_string`): escapes (`\` and any character,
/// a line break included), `{…}` up to `}`, `"` or the end of the line,
/// and text; it ends after `"`, or before a line break or the end of the
/// file. The lexer and pest must agree on where strings end: a bracket
/// that pest reads as code but the lexer as text would escape the depth
/// cap.
fn plain_string(lex: &mut logos::Lexer<Token>) {
    let rest = lex.remainder().as_bytes();
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'"' => {
                i += 1;
                break;
            }
            b'\n' => break,
            b'\\' => i = after_escape(rest, i),
            b'{' => {
                i += 1;
                while i < rest.len() && !matches!(rest[i], b'}' | b'"' | b'\n') {
                    i += 1;
                }
                if rest.get(i) == Some(&b'}') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    lex.bump(i);
}

/// The rest of a `"""…"""` string after its opening quotes, as the
/// grammar reads it (`triple_string`): it ends after the next `"""` that
/// is not escaped, or at the end of the file; `{…}` runs to `}` or `"""`.
fn triple_string(lex: &mut logos::Lexer<Token>) {
    let rest = lex.remainder().as_bytes();
    let mut i = 0;
    while i < rest.len() {
        if rest[i..].starts_with(b"\"\"\"") {
            i += 3;
            break;
        }
        match rest[i] {
            b'\\' => i = after_escape(rest, i),
            b'{' => {
                i += 1;
                while i < rest.len() && rest[i] != b'}' && !rest[i..].starts_with(b"\"\"\"") {
                    i += 1;
                }
                if rest.get(i) == Some(&b'}') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    lex.bump(i);
}

/// After the escape `\` at `i` and the character it escapes, if any.
fn after_escape(rest: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if j < rest.len() {
        j += 1;
        // the escaped character may take several bytes
        while j < rest.len() && (rest[j] & 0xC0) == 0x80 {
            j += 1;
        }
    }
    j
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
    "for",
    "in",
    "max",
];

/// Every token with its byte range, errors included. A UTF-8 byte order
/// mark at the start is skipped (ranges still count its three bytes).
pub fn tokens(src: &str) -> impl Iterator<Item = (Token, std::ops::Range<usize>)> + '_ {
    let skip = bom_len(src);
    Token::lexer(&src[skip..]).spanned().map(move |(t, span)| {
        (
            t.unwrap_or(Token::Error),
            span.start + skip..span.end + skip,
        )
    })
}

/// The length of a UTF-8 byte order mark at the start of `src` (3), or 0.
/// Editors on some systems write one; it is not part of the program.
pub fn bom_len(src: &str) -> usize {
    if src.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    }
}

/// The deepest nesting of brackets the parser accepts. Deeper input gets
/// one E0006 diagnostic instead of a stack overflow.
pub const MAX_DEPTH: usize = 64;

/// A token of the parser's view: its class and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub kind: Token,
    pub start: u32,
    pub end: u32,
}

/// Whether a token is trivia to the grammar: a `//` comment, or a `////`
/// line (a comment, not a doc comment).
pub fn is_comment(kind: Token, text: &str) -> bool {
    kind == Token::Comment || (kind == Token::DocComment && text.starts_with("////"))
}

/// What the parser needs to know before pest runs.
#[derive(Debug, Default)]
pub struct Outline {
    /// Every token but comments, in order: what the fast path reads.
    pub tokens: Vec<Tok>,
    /// Offsets of tokens that begin a line and can begin an item.
    pub item_starts: Vec<u32>,
    /// Offsets of the first bracket that nests deeper than [`MAX_DEPTH`],
    /// one per too-deep region.
    pub too_deep: Vec<u32>,
}

/// Scans the source once: item starts for recovery, and nesting depth.
///
/// Depth counts what the parser, the checker and the AST nest in:
/// - `(`, `[` and `{` open a level; their closers end it.
/// - `<` after a name opens a level (`Json<Text>`, `Json <Text>`,
///   `x:Json<Text>`), which `>` ends. A partial order (`(a < b, c < d)`
///   after `:ordering`) uses `<` between labels without a closer and
///   nests nothing, so there it does not count.
/// - Each `!` opens a level: `!!x` is a negation inside a negation.
///
/// `<` and `!` levels have no closer of their own: the next `,`, `&&`,
/// `||`, `;`, property or closing bracket ends those opened since the
/// last bracket (and `>` those `!` before its `<`).
pub fn outline(src: &str) -> Outline {
    let mut out = Outline::default();
    let mut stack: Vec<Token> = Vec::new();
    let mut line_has_token = false;
    let mut last_end = 0usize;
    let mut prev = Token::Error;
    let mut prev_span = 0..0;
    let mut in_too_deep = false;
    // inside the group of an `:ordering`: the depth outside that group
    let mut ordering: Option<usize> = None;
    let soft = |t: Option<&Token>| matches!(t, Some(Token::Less | Token::Not));
    out.tokens.reserve(src.len() / 5);
    for (tok, span) in tokens(src) {
        if !is_comment(tok, &src[span.clone()]) {
            out.tokens.push(Tok {
                kind: tok,
                start: span.start as u32,
                end: span.end as u32,
            });
        }
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
        if tok == Token::LParen && prev == Token::Property && &src[prev_span.clone()] == ":ordering"
        {
            ordering = Some(stack.len());
        }
        let opens = match tok {
            Token::LParen | Token::LBracket | Token::LBrace | Token::Not => true,
            Token::Less => {
                let partial_order =
                    prev == Token::Ident && ordering.is_some_and(|d| stack.len() > d);
                let after_name = matches!(prev, Token::Ident | Token::Property | Token::Bool)
                    || prev.is_keyword();
                after_name && !partial_order
            }
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
                    while soft(stack.last()) {
                        stack.pop();
                    }
                    stack.pop();
                    if ordering.is_some_and(|d| stack.len() <= d) {
                        ordering = None;
                    }
                }
                Token::Greater => {
                    while stack.last() == Some(&Token::Not) {
                        stack.pop();
                    }
                    if stack.last() == Some(&Token::Less) {
                        stack.pop();
                    }
                }
                Token::Comma | Token::And | Token::Or | Token::Semicolon | Token::Property => {
                    while soft(stack.last()) {
                        stack.pop();
                    }
                    if tok == Token::Property {
                        ordering = None;
                    }
                }
                _ => {}
            }
            if stack.is_empty() {
                in_too_deep = false;
            }
        }
        // multi-line tokens (strings) end on a later line
        if src.as_bytes()[span.clone()].contains(&b'\n') {
            line_has_token = true;
        }
        last_end = span.end;
        prev = tok;
        prev_span = span;
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

    #[test]
    fn depth_counts_what_the_grammar_nests() {
        let too_deep = |src: String| !outline(&src).too_deep.is_empty();
        // `<` after any name, spaced or not, after a keyword or a `:name`
        assert!(too_deep(format!("type T = {}Text", "Json <".repeat(65))));
        assert!(too_deep(format!("type T = {}Text", "on<".repeat(65))));
        assert!(too_deep(format!("input i:{}Text", "Json<".repeat(65))));
        // each `!` is a level; `&&` ends them
        assert!(too_deep(format!(":guard {}x", "!".repeat(65))));
        assert!(too_deep(format!(":guard {}x", "! ".repeat(65))));
        assert!(!too_deep(format!(
            ":guard {}",
            vec!["!!x"; 100].join(" && ")
        )));
        // a chain in a partial order nests nothing
        let chain: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
        assert!(!too_deep(format!(":ordering ({})", chain.join(" < "))));
        // the `)` in `"\⏎)"` is in the string, for pest as for the lexer
        let calls = "f(\"\\\n)\", ".repeat(65);
        assert!(too_deep(format!(":guard {calls}1{}", ")".repeat(65))));
    }

    #[test]
    fn strings_end_where_the_grammar_ends_them() {
        let kinds = |src: &str| tokens(src).map(|(t, r)| (t, r.len())).collect::<Vec<_>>();
        // a line break escaped by `\` continues the string
        assert_eq!(
            kinds("\"a\\\nb\" x"),
            [(Token::String, 6), (Token::Ident, 1)]
        );
        // an unterminated string ends at the end of its line
        assert_eq!(kinds("\"ab (\n)"), [(Token::String, 5), (Token::RParen, 1)]);
        // `{` runs to `}` or `"`: the `\` there escapes nothing
        assert_eq!(
            kinds("\"{\\\"}\""),
            [(Token::String, 4), (Token::RBrace, 1), (Token::String, 1)]
        );
        // a triple string ends at the first `"""`, also inside `{`
        assert_eq!(
            kinds("\"\"\"a\"b{\"\"\" x"),
            [(Token::TripleString, 10), (Token::Ident, 1)]
        );
    }
}
