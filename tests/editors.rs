//! The editor support in `editors/` agrees with the language: the keyword,
//! property and combinator sets of the pest grammar, the lexer, the
//! TextMate grammar, the tree-sitter grammar, the Vim syntax and the Emacs
//! mode are the same; the snippets expand to programs that parse; the
//! sample the Vim and Emacs tests highlight is a clean program. Reads the
//! files as text or JSON, so it needs none of the editors installed.

use std::collections::BTreeSet;

use guardflow::source::FileId;
use guardflow::syntax::lexer::KEYWORDS;

type Words = BTreeSet<String>;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn words<'a>(it: impl IntoIterator<Item = &'a str>) -> Words {
    it.into_iter().map(str::to_string).collect()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("no {start:?}")) + start.len();
    let len = text[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"));
    &text[from..from + len]
}

/// Every `"…"` string in `text`.
fn quoted(text: &str, quote: char) -> Words {
    text.split(quote)
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

// ─── the language ─────────────────────────────────────────────────────────

struct Sets {
    keywords: Words,
    properties: Words,
    combinators: Words,
}

/// From grammar/guardflow.pest: `kw_x = @{ "x" ~ … }`, `k_x = @{ ":x" ~ … }`
/// and `combinator_name`.
fn pest() -> Sets {
    let text = read("grammar/guardflow.pest");
    let mut keywords = Words::new();
    let mut properties = Words::new();
    for line in text.lines() {
        let Some((rule, body)) = line.split_once('=') else {
            continue;
        };
        let literal = quoted(body, '"').into_iter().next();
        match (rule.trim(), literal) {
            (r, Some(word)) if r.starts_with("kw_") => {
                keywords.insert(word);
            }
            (r, Some(word)) if r.starts_with("k_") => {
                if let Some(name) = word.strip_prefix(':') {
                    properties.insert(name.to_string());
                }
            }
            _ => {}
        }
    }
    let combinators = quoted(between(&text, "combinator_name = @{", "~"), '"');
    Sets {
        keywords,
        properties,
        combinators,
    }
}

// ─── the editors ──────────────────────────────────────────────────────────

/// The alternatives of the first `(a|b|c)` group after `after` in a regex.
fn alternatives(regex: &str, after: &str) -> Words {
    words(between(regex, after, ")").split('|'))
}

fn textmate() -> Sets {
    let path = "editors/vscode/syntaxes/guardflow.tmLanguage.json";
    let grammar: serde_json::Value =
        serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let repo = &grammar["repository"];
    let matches = |entry: &str| -> Vec<String> {
        repo[entry]["patterns"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no patterns in {entry}"))
            .iter()
            .map(|p| p["match"].as_str().expect("a match").to_string())
            .collect()
    };
    let keywords = matches("keywords")
        .iter()
        .flat_map(|m| alternatives(m, r"\b("))
        .collect();
    let properties = alternatives(&matches("properties")[0], "(:)(");
    let combinators = alternatives(
        repo["combinators"]["match"].as_str().expect("combinators"),
        r"\b(",
    );
    Sets {
        keywords,
        properties,
        combinators,
    }
}

fn tree_sitter() -> Sets {
    let text = read("editors/tree-sitter-guardflow/grammar.js");
    let list = |name: &str| quoted(between(&text, &format!("const {name} = ["), "];"), '\'');
    Sets {
        keywords: list("KEYWORDS"),
        properties: list("PROPERTIES"),
        combinators: list("COMBINATORS"),
    }
}

fn vim() -> Sets {
    let text = read("editors/vim/syntax/guardflow.vim");
    let mut keywords = Words::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if let (Some("syntax"), Some("keyword"), Some(group)) =
            (parts.next(), parts.next(), parts.next())
        {
            if [
                "guardflowImport",
                "guardflowDeclaration",
                "guardflowKeyword",
            ]
            .contains(&group)
            {
                keywords.extend(parts.map(str::to_string));
            }
        }
    }
    let line = |group: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("syntax match {group} ")))
            .unwrap_or_else(|| panic!("no {group} in the Vim syntax"))
    };
    let vim_alternatives = |l: &str, after: &str| words(between(l, after, r"\)").split(r"\|"));
    Sets {
        keywords,
        properties: vim_alternatives(line("guardflowProperty"), r":\%("),
        combinators: vim_alternatives(line("guardflowCombinator"), r"\<\%("),
    }
}

fn emacs() -> Sets {
    let text = read("editors/emacs/guardflow-mode.el");
    let list = |name: &str| quoted(between(&text, &format!("(defconst {name}\n  '("), ")"), '"');
    Sets {
        keywords: list("guardflow-keywords"),
        properties: list("guardflow-properties"),
        combinators: quoted(
            between(&text, "(defconst guardflow-combinators '(", ")"),
            '"',
        ),
    }
}

fn assert_same(what: &str, editor: &str, expected: &Words, got: &Words) {
    let missing: Vec<_> = expected.difference(got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{editor} {what}: missing {missing:?}, not in the grammar {extra:?}"
    );
}

#[test]
fn the_lexer_knows_the_keywords_of_the_grammar() {
    let grammar = pest();
    assert_eq!(grammar.keywords.len(), 18, "{:?}", grammar.keywords);
    assert_same(
        "keywords",
        "the lexer's KEYWORDS",
        &grammar.keywords,
        &words(KEYWORDS.iter().copied()),
    );
    // and each has its own token
    let text = read("src/syntax/lexer.rs");
    let tokens: Words = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#[token(\"")?.split_once("\")]"))
        .map(|(word, _)| word.to_string())
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
        .filter(|w| w != "true" && w != "false")
        .collect();
    assert_same(
        "keywords",
        "the lexer's #[token]s",
        &grammar.keywords,
        &tokens,
    );
}

#[test]
fn every_editor_grammar_has_the_keywords_properties_and_combinators_of_pest() {
    let grammar = pest();
    assert!(grammar.properties.len() >= 27, "{:?}", grammar.properties);
    assert_eq!(
        grammar.combinators,
        words(["all", "any", "majority", "par"])
    );
    for (editor, sets) in [
        ("the TextMate grammar", textmate()),
        ("the tree-sitter grammar", tree_sitter()),
        ("the Vim syntax", vim()),
        ("the Emacs mode", emacs()),
    ] {
        assert_same("keywords", editor, &grammar.keywords, &sets.keywords);
        assert_same("properties", editor, &grammar.properties, &sets.properties);
        assert_same(
            "combinators",
            editor,
            &grammar.combinators,
            &sets.combinators,
        );
    }
}

#[test]
fn a_keyword_missing_from_an_editor_is_reported() {
    let grammar = pest();
    let mut short = grammar.keywords.clone();
    short.remove("after");
    let failed = std::panic::catch_unwind(|| {
        assert_same("keywords", "an editor", &grammar.keywords, &short)
    });
    assert!(failed.is_err());
}

// ─── snippets and samples ─────────────────────────────────────────────────

/// A snippet body with every placeholder replaced by its default text
/// (`${1:name}` → `name`, `${1|a,b|}` → `a`, `$0` → nothing).
fn expand(body: &str) -> String {
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    // a stack of open `${N:` placeholders; their text is kept, their braces dropped
    let mut open = 0usize;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '$' if chars.get(i + 1) == Some(&'{') => {
                let mut j = i + 2;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                match chars.get(j) {
                    Some(':') => {
                        open += 1;
                        i = j + 1;
                    }
                    Some('|') => {
                        let end = (j + 1..chars.len())
                            .find(|&k| chars[k] == '|')
                            .expect("a closed choice");
                        let choice: String = chars[j + 1..end].iter().collect();
                        out.push_str(choice.split(',').next().unwrap_or(""));
                        i = end + 2;
                    }
                    _ => i = j + 1,
                }
            }
            '$' => {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            '}' if open > 0 => {
                open -= 1;
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out.replace('\t', "  ")
}

fn assert_parses(what: &str, src: &str) {
    let (_, errors) = guardflow::syntax::parse(FileId(0), src);
    assert!(
        errors.is_empty(),
        "{what} does not parse: {errors:?}\n{src}"
    );
}

#[test]
fn snippet_placeholders_expand_to_their_defaults() {
    assert_eq!(
        expand("a ${1:b} ${2|c,d|}$0 \\$ ${3:x{${4:y}\\}}"),
        "a b c $ x{y}"
    );
}

#[test]
fn every_snippet_expands_to_a_program_that_parses() {
    let path = "editors/vscode/snippets/guardflow.json";
    let snippets: serde_json::Value =
        serde_json::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let snippets = snippets.as_object().expect("an object of snippets");
    for name in ["action", "task", "method", "generator"] {
        let lines: Vec<&str> = snippets[name]["body"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no body"))
            .iter()
            .map(|l| l.as_str().expect("a line"))
            .collect();
        let text = expand(&lines.join("\n"));
        // a method is not an item of its own: it goes in a task
        let program = if name == "method" {
            format!("task t(input: Text) {{\n{text}\n}}\n")
        } else {
            text
        };
        assert_parses(&format!("the {name} snippet"), &program);
    }
}

#[test]
fn the_editor_test_sample_is_a_clean_program() {
    let path = std::path::Path::new("editors/test/sample.guardflow");
    let checked = crate::support::check_path(path);
    assert!(
        checked.diagnostics.is_empty(),
        "{}",
        crate::support::render_all(&checked)
    );
}
