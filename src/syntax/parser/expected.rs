//! pest's "expected rules" in words a user knows.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::Rule;
use crate::source::{FileId, Span};
use crate::syntax::error::SyntaxError;
use crate::syntax::lexer::{self, Token};

/// Where (in the whole file) a pest error points.
pub(super) fn error_offset(base: usize, e: &Error<Rule>) -> usize {
    base + match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
}

pub(super) fn translate(file: FileId, src: &str, base: usize, e: &Error<Rule>) -> SyntaxError {
    let mut at = error_offset(base, e).min(src.len());
    let mut expected: Vec<&'static str> = Vec::new();
    if let Some(attempts) = e.parse_attempts() {
        // the detailed attempts know the furthest position and what was
        // wanted exactly there
        at = (base + attempts.max_position).min(src.len());
        let tokens = attempts.expected_tokens();
        for stack in attempts.call_stacks() {
            // a literal is listed with the tokens below; a rule is named,
            // or its parent when the rule is not worth naming
            // pest names the innermost rule that was running; when it
            // wanted literal tokens, the rule itself is not what is missing
            let words = match stack.deepest.get_rule() {
                Some(rule) if tokens.is_empty() || is_token_like(*rule) => {
                    describe(*rule).or_else(|| stack.parent.and_then(describe))
                }
                Some(_) => None,
                None if stack.parent == Some(Rule::unknown_prop) => Some("a property"),
                None => None,
            };
            expected.extend(words);
        }
        for token in tokens {
            // pest does not export the token type; its Debug form is
            // `Sensitive { token: "…" }` for a literal.
            let debug = format!("{token:?}");
            if let Some(literal) = debug
                .strip_prefix("Sensitive { token: \"")
                .and_then(|r| r.strip_suffix("\" }"))
            {
                let literal = literal.replace("\\\"", "\"").replace("\\\\", "\\");
                if let Some(words) = literal_words(&literal) {
                    expected.push(words);
                }
            }
        }
    } else if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        expected.extend(positives.iter().filter_map(|r| describe(*r)));
    }
    expected.sort_unstable();
    expected.dedup();
    // "a property" already says it starts with `:`
    if expected.iter().any(|w| w.contains("property")) {
        expected.retain(|w| *w != "`:`");
    }
    // and "a comparison" that it may be `<` or `>`
    if expected.iter().any(|w| w.starts_with("a comparison")) {
        expected.retain(|w| *w != "`<`" && *w != "`>`");
    }
    let (found, len) = found_at(src, at);
    let item_keyword = lexer::tokens(&src[at..])
        .next()
        .is_some_and(|(t, r)| r.start == 0 && t.starts_item() && t != Token::DocComment);
    let context = if item_keyword && expected.contains(&"`}`") && at > base {
        Some("a `}` may be missing before this line: a new item starts here")
    } else {
        context(src, base)
    };
    SyntaxError::Unexpected {
        span: Span::new(file, at, at + len),
        expected,
        found,
        context,
    }
}

/// What stands at `at`, described for a message, and its length in bytes.
fn found_at(src: &str, at: usize) -> (String, usize) {
    let rest = &src[at..];
    let Some((tok, range)) = lexer::tokens(rest).next() else {
        return ("the end of the file".to_string(), 0);
    };
    if range.start > 0 {
        // only whitespace or comments before the next token
        if rest[..range.start].contains('\n') {
            return ("the end of the line".to_string(), 0);
        }
    }
    let text = &rest[range.clone()];
    let what = match tok {
        Token::String | Token::TripleString => "a string".to_string(),
        Token::Number => format!("the number `{text}`"),
        Token::Property => format!("the property `{text}`"),
        Token::Ident => format!("`{text}`"),
        Token::Comment | Token::DocComment => "a comment".to_string(),
        Token::Error => {
            let c = text.chars().next().unwrap_or(' ');
            format!("`{}`", c.escape_debug())
        }
        _ if tok.is_keyword() => format!("the keyword `{text}`"),
        _ => format!("`{text}`"),
    };
    let len = if tok == Token::Error {
        text.chars().next().map_or(1, char::len_utf8)
    } else {
        range.len()
    };
    (what, range.start + len)
}

fn context(src: &str, base: usize) -> Option<&'static str> {
    let (tok, _) = lexer::tokens(&src[base..]).next()?;
    Some(match tok {
        Token::Use => "a `use` item",
        Token::Input => "an `input` item",
        Token::Type => "a `type` definition",
        Token::Generator => "a `generator` definition",
        Token::Guard => "a `guard` definition",
        Token::Extern => "an `extern` declaration",
        Token::Action => "an `action`",
        Token::Task => "a `task`",
        Token::Resource => "a `resource`",
        Token::Test => "a `test`",
        _ => return None,
    })
}

/// The words for a rule pest expected; `None` for rules a user never
/// needs to hear about.
fn describe(rule: Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        ident | interp_path => "a name",
        prop_name => "a property name",
        number => "a number",
        boolean => "`true` or `false`",
        string | plain_string | triple_string => "a string",
        doc_line => "a doc comment",
        kw_use | kw_input | kw_type | kw_generator | kw_guard | kw_extern | kw_resource
        | kw_action | kw_task | kw_test | use_item | input_item | type_item | generator_item
        | guard_item | extern_item | resource_item | action_item | task_item | test_item
        | default_item | default_retry | default_timeout | default_p | default_max_tokens => {
            "an item (`action`, `task`, `type`, `use`, …)"
        }
        kw_std => "`std`",
        kw_effect => "`effect`",
        kw_method | method => "a `method`",
        kw_on | subject => "`on` and the artifact type",
        kw_after => "`after`",
        params => "a parameter list `(name: Type, …)`",
        param => "a parameter `name: Type`",
        type_expr | type_atom | named_type | list_type | record_type => "a type",
        field => "a field `name: Type`",
        p_generate | p_role | p_guard | p_retry | p_pre_guard | p_pre | p_effect | p_idempotent
        | p_timeout | p_uses | p_feedback | p_max_tokens | p_p | p_strategy => {
            "an action property (`:generate`, `:guard`, `:retry`, …)"
        }
        unknown_prop => "a property",
        m_pre | m_subtasks | m_ordering | m_result | m_uses | m_on_fail | m_history => {
            "a method property (`:subtasks`, `:ordering`, `:result`, …)"
        }
        max_depth => "`:max-depth`",
        t_run | t_with | t_expect => "a test property (`:run`, `:with`, `:expect`)",
        feedback_policy | feedback_last_n | feedback_word => {
            "a feedback policy (`last`, `all` or `last(N)`)"
        }
        strategy | strategy_best_of | strategy_word => {
            "a strategy (`repair`, `resample` or `best-of(N)`)"
        }
        uses | use_res => "a resource (`name` or `name*N`)",
        subtask => "a subtask `label: call(...)`",
        escalation => "`:escalate-to`",
        ordering | ord_group | ord_elem => {
            "an ordering (`label`, `(a ; b)`, `(a || b)`, `(a < b)`)"
        }
        ord_sep => "`;`, `||` or `,`",
        gexpr | gand | gnot | gatom => "a guard expression",
        not_op => "`!`",
        call => "a call",
        args => "arguments `(…)`",
        arg | expr => "a value",
        list => "a list `[…]`",
        expectation | outcome | calls_bound | satisfies => {
            "an expectation (`success`, `failure`, `calls <= N`, `satisfies GUARD`)"
        }
        cmp_op => "a comparison (`<=`, `<`, `==`, `>=`, `>`)",
        pred_op => "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
        compare | term | len_term | len_name => "a predicate (`v.ok`, `len(x) > 0`, `x == y`)",
        path => "a field path `name.field`",
        code_lit | code_lang | code_triple | code_plain => "a code literal `lang\"\"\"…\"\"\"`",
        use_std => "`std.{…}` or a file path string",
        _ => return None,
    })
}

/// Literal tokens pest wanted, in words; whitespace and comment starts are
/// never worth mentioning.
fn literal_words(token: &str) -> Option<&'static str> {
    Some(match token {
        "{" => "`{`",
        "}" => "`}`",
        "(" => "`(`",
        ")" => "`)`",
        "[" => "`[`",
        "]" => "`]`",
        "<" => "`<`",
        ">" => "`>`",
        "->" => "`->`",
        ":" => "`:`",
        "," => "`,`",
        "." => "`.`",
        "=" => "`=`",
        "|" => "`|`",
        "*" => "`*`",
        "&&" => "`&&`",
        "||" => "`||`",
        ";" => "`;`",
        "\"" => "`\"`",
        "\"\"\"" => "`\"\"\"`",
        ":escalate-to" => "`:escalate-to`",
        ":max-escalations" => "`:max-escalations`",
        ":max-depth" => "`:max-depth`",
        "last" => "`last`",
        "calls" => "`calls`",
        "satisfies" => "`satisfies`",
        _ => return None,
    })
}

/// Rules that stand for one token: naming them is right even when pest
/// also wanted literal tokens at the same place.
fn is_token_like(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        ident
            | prop_name
            | number
            | boolean
            | string
            | plain_string
            | triple_string
            | doc_line
            | interp_path
            | unknown_prop
            | cmp_op
            | pred_op
            | ord_sep
            | not_op
            | combinator_name
            | kw_use
            | kw_std
            | kw_input
            | kw_type
            | kw_generator
            | kw_guard
            | kw_effect
            | kw_extern
            | kw_action
            | kw_task
            | kw_method
            | kw_resource
            | kw_test
            | kw_on
            | kw_after
    )
}
