//! The `syntax` guards: parse the artifact with tree-sitter, in process,
//! and point at the first syntax errors.
//!
//! A tree-sitter `Parser` is not `Sync`, so each thread keeps its own, one
//! per language, created on first use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use tree_sitter::{Language, Node, ParseOptions, Parser};

use super::text::{excerpt, line_col, shorten};
use crate::runtime::Verdict;

/// The languages [`syntax`] parses, by canonical name.
const LANGUAGES: &[&str] = &["python", "rust", "javascript", "typescript", "json"];

/// How many errors feedback describes.
const MAX_REPORTED: usize = 3;

/// How long one parse may take before it is abandoned.
const PARSE_BUDGET: Duration = Duration::from_secs(10);

/// The canonical names of the languages [`syntax`] knows; `py`, `rs`,
/// `js` and `ts` are accepted as aliases.
pub fn languages() -> &'static [&'static str] {
    LANGUAGES
}

/// The canonical name of `lang` (case and aliases folded), if known.
pub fn canonical(lang: &str) -> Option<&'static str> {
    let lang = lang.trim().to_ascii_lowercase();
    let name = match lang.as_str() {
        "py" | "python" | "python3" => "python",
        "rs" | "rust" => "rust",
        "js" | "javascript" | "jsx" | "node" => "javascript",
        "ts" | "typescript" => "typescript",
        "json" => "json",
        _ => return None,
    };
    Some(name)
}

fn grammar(name: &str) -> Option<Language> {
    Some(match name {
        "python" => tree_sitter_python::LANGUAGE.into(),
        "rust" => tree_sitter_rust::LANGUAGE.into(),
        "javascript" => tree_sitter_javascript::LANGUAGE.into(),
        "typescript" => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
        "json" => tree_sitter_json::LANGUAGE.into(),
        _ => return None,
    })
}

thread_local! {
    static PARSERS: RefCell<HashMap<&'static str, Parser>> = RefCell::new(HashMap::new());
}

/// Passes when `source` parses as `lang` (see [`languages`]). Otherwise
/// the feedback describes up to three errors: their line and column
/// (1-based), what was unexpected or missing, and the line's text. An
/// unknown language is fatal.
pub fn syntax(lang: &str, source: &str) -> Verdict {
    let Some(name) = canonical(lang) else {
        return Verdict::fatal(format!(
            "the syntax guard does not know the language `{}`; known languages: {} (aliases py, rs, js, ts)",
            lang.trim(),
            LANGUAGES.join(", ")
        ));
    };
    PARSERS.with(|parsers| {
        let mut parsers = match parsers.try_borrow_mut() {
            Ok(p) => p,
            Err(_) => return Verdict::fatal("the syntax guard was re-entered on one thread"),
        };
        let parser = match parsers.entry(name) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut parser = Parser::new();
                let set = grammar(name).map(|g| parser.set_language(&g));
                if !matches!(set, Some(Ok(()))) {
                    return Verdict::fatal(format!(
                        "the {name} grammar could not be loaded (tree-sitter version mismatch)"
                    ));
                }
                v.insert(parser)
            }
        };
        check(parser, name, source)
    })
}

/// One import of a source file: the module it names and its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub module: String,
    pub line: usize,
    /// The statement's first line, for feedback.
    pub statement: String,
}

/// The imports of `source` in `lang` (python, javascript, typescript,
/// rust): Python `import`/`from … import` and `__import__("m")`,
/// `importlib.import_module("m")`; JavaScript and TypeScript `import …
/// from`, `export … from`, `require("m")`, `import("m")`; Rust `use`
/// paths and `extern crate`. Found in the tree even where the code has
/// syntax errors elsewhere.
pub fn imports(lang: &str, source: &str) -> Result<Vec<Import>, String> {
    let name = match canonical(lang) {
        Some(n @ ("python" | "javascript" | "typescript" | "rust")) => n,
        _ => {
            return Err(format!(
                "imports are read from python, javascript, typescript and rust, not `{}`",
                lang.trim()
            ))
        }
    };
    with_tree(name, source, |root| collect_imports(root, name, source))
}

/// A top-level definition of a module: a function or a class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub name: String,
    /// `function` or `class`.
    pub kind: &'static str,
    pub line: usize,
}

/// The public top-level definitions of Python `source`: functions
/// (`def`, `async def`) and classes, decorated or not, whose names do not
/// start with `_`; when the module assigns `__all__` a list or tuple of
/// string literals, exactly those names (with the line of `__all__` for
/// names it does not define). Found even where the code has syntax
/// errors elsewhere.
pub fn python_public_definitions(source: &str) -> Result<Vec<Definition>, String> {
    with_tree("python", source, |root| {
        let text = |n: Node<'_>| source.get(n.byte_range()).unwrap_or_default().to_string();
        let mut defs = Vec::new();
        let mut all: Option<(Vec<String>, usize)> = None;
        let mut c = root.walk();
        for child in root.named_children(&mut c) {
            let def = match child.kind() {
                "decorated_definition" => child.child_by_field_name("definition"),
                "function_definition" | "class_definition" => Some(child),
                "expression_statement" => {
                    let assign = child.named_child(0).filter(|a| a.kind() == "assignment");
                    if let Some(a) = assign {
                        let left = a.child_by_field_name("left").map(text);
                        let right = a
                            .child_by_field_name("right")
                            .filter(|r| matches!(r.kind(), "list" | "tuple"));
                        if let (Some("__all__"), Some(r)) = (left.as_deref(), right) {
                            let mut names = Vec::new();
                            let mut rc = r.walk();
                            for item in r.named_children(&mut rc) {
                                if item.kind() == "string" {
                                    let t = text(item);
                                    names.push(
                                        t.trim_matches(|c| c == '"' || c == '\'').to_string(),
                                    );
                                }
                            }
                            all = Some((names, a.start_position().row + 1));
                        }
                    }
                    None
                }
                _ => None,
            };
            let Some(def) = def else { continue };
            let Some(name) = def.child_by_field_name("name") else {
                continue;
            };
            defs.push(Definition {
                name: text(name),
                kind: if def.kind() == "class_definition" {
                    "class"
                } else {
                    "function"
                },
                line: def.start_position().row + 1,
            });
        }
        match all {
            Some((names, line)) => names
                .into_iter()
                .map(|n| match defs.iter().find(|d| d.name == n) {
                    Some(d) => d.clone(),
                    None => Definition {
                        name: n,
                        kind: "name",
                        line,
                    },
                })
                .collect(),
            None => defs
                .into_iter()
                .filter(|d| !d.name.starts_with('_'))
                .collect(),
        }
    })
}

/// Parses `source` as `name` (a canonical language) with this thread's
/// parser, within the budget, and hands the tree's root to `f`.
fn with_tree<T>(
    name: &'static str,
    source: &str,
    f: impl FnOnce(Node<'_>) -> T,
) -> Result<T, String> {
    PARSERS.with(|parsers| {
        let mut parsers = parsers
            .try_borrow_mut()
            .map_err(|_| "the parser was re-entered on one thread".to_string())?;
        let parser = match parsers.entry(name) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut parser = Parser::new();
                let set = grammar(name).map(|g| parser.set_language(&g));
                if !matches!(set, Some(Ok(()))) {
                    return Err(format!("the {name} grammar could not be loaded"));
                }
                v.insert(parser)
            }
        };
        let Some(tree) = parse_within_budget(parser, source) else {
            return Err(format!(
                "the {name} code could not be parsed within {}s",
                PARSE_BUDGET.as_secs()
            ));
        };
        Ok(f(tree.root_node()))
    })
}

/// Walks the tree iteratively (no input overflows the stack).
fn collect_imports(root: Node<'_>, lang: &str, source: &str) -> Vec<Import> {
    let text = |n: Node<'_>| source.get(n.byte_range()).unwrap_or_default().to_string();
    let string_value = |n: Node<'_>| {
        let t = text(n);
        t.trim_matches(|c| c == '"' || c == '\'' || c == '`')
            .to_string()
    };
    let mut out = Vec::new();
    let mut push = |node: Node<'_>, module: String, stmt: Node<'_>| {
        let module: String = module.split_whitespace().collect();
        if module.is_empty() {
            return;
        }
        let line = node.start_position().row + 1;
        let statement = text(stmt)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        out.push(Import {
            module,
            line,
            statement: shorten(&statement, 80),
        });
    };
    preorder(root, |n| {
        match (lang, n.kind()) {
            ("python", "import_statement") => {
                let mut c = n.walk();
                for child in n.named_children(&mut c) {
                    let name = match child.kind() {
                        "aliased_import" => child.child_by_field_name("name"),
                        "dotted_name" => Some(child),
                        _ => None,
                    };
                    if let Some(name) = name {
                        push(name, text(name), n);
                    }
                }
            }
            ("python", "import_from_statement") => {
                if let Some(m) = n.child_by_field_name("module_name") {
                    push(m, text(m), n);
                }
            }
            ("python", "call") => {
                let f = n.child_by_field_name("function").map(text);
                if matches!(f.as_deref(), Some("__import__" | "importlib.import_module")) {
                    if let Some(arg) = n
                        .child_by_field_name("arguments")
                        .and_then(|a| a.named_child(0))
                        .filter(|a| a.kind() == "string")
                    {
                        push(arg, string_value(arg), n);
                    }
                }
            }
            ("javascript" | "typescript", "import_statement" | "export_statement") => {
                if let Some(src) = n.child_by_field_name("source") {
                    push(src, string_value(src), n);
                }
            }
            ("typescript", "import_require_clause") => {
                if let Some(src) = n.child_by_field_name("source") {
                    push(src, string_value(src), n);
                }
            }
            ("javascript" | "typescript", "call_expression") => {
                let f = n.child_by_field_name("function");
                let is_import = f.is_some_and(|f| f.kind() == "import" || text(f) == "require");
                if is_import {
                    if let Some(arg) = n
                        .child_by_field_name("arguments")
                        .and_then(|a| a.named_child(0))
                        .filter(|a| a.kind() == "string" || a.kind() == "template_string")
                    {
                        push(arg, string_value(arg), n);
                    }
                }
            }
            ("rust", "use_declaration") => {
                if let Some(arg) = n.child_by_field_name("argument") {
                    push(arg, text(arg), n);
                }
            }
            ("rust", "extern_crate_declaration") => {
                if let Some(name) = n.child_by_field_name("name") {
                    push(name, text(name), n);
                }
            }
            _ => {}
        }
        true
    });
    out
}

/// Parses `source`, giving up after [`PARSE_BUDGET`] (the parser is then
/// reset for its next use).
fn parse_within_budget(parser: &mut Parser, source: &str) -> Option<tree_sitter::Tree> {
    let bytes = source.as_bytes();
    let started = Instant::now();
    let mut give_up = |_: &tree_sitter::ParseState| {
        if started.elapsed() > PARSE_BUDGET {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let options = ParseOptions::new().progress_callback(&mut give_up);
    let tree = parser.parse_with_options(
        &mut |i, _| bytes.get(i..).unwrap_or_default(),
        None,
        Some(options),
    );
    if tree.is_none() {
        parser.reset();
    }
    tree
}

fn check(parser: &mut Parser, name: &str, source: &str) -> Verdict {
    let Some(tree) = parse_within_budget(parser, source) else {
        return Verdict::fail(format!(
            "the {name} code could not be parsed within {}s; make it shorter or simpler",
            PARSE_BUDGET.as_secs()
        ));
    };
    let root = tree.root_node();
    if !root.has_error() {
        return Verdict::Pass;
    }
    let (total, errors) = collect_errors(root, source);
    let mut feedback = match total {
        0 | 1 => format!("the {name} code has a syntax error:"),
        n => format!("the {name} code has {n} syntax errors:"),
    };
    if errors.is_empty() {
        feedback.push_str(" the parser rejected it, but could not say where");
    }
    for e in &errors {
        feedback.push('\n');
        feedback.push_str(e);
    }
    if total > errors.len() && !errors.is_empty() {
        feedback.push_str(&format!("\n(and {} more)", total - errors.len()));
    }
    Verdict::fail(feedback)
}

/// Visits `root` and the nodes under it in source order, going into a
/// node's children when `visit` says so. Iterative, so no input can
/// overflow the stack.
fn preorder<'t>(root: Node<'t>, mut visit: impl FnMut(Node<'t>) -> bool) {
    let mut cursor = root.walk();
    'walk: loop {
        if visit(cursor.node()) && cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
}

/// The number of ERROR and MISSING nodes under `root` (not counting
/// those inside an ERROR node) and descriptions of the first few, in
/// source order. Iterative, so no input can overflow the stack.
fn collect_errors(root: Node<'_>, source: &str) -> (usize, Vec<String>) {
    let mut total = 0;
    let mut described = Vec::new();
    preorder(root, |node| {
        if node.is_error() || node.is_missing() {
            total += 1;
            if described.len() < MAX_REPORTED {
                described.push(describe(node, source));
            }
            false
        } else {
            node.has_error()
        }
    });
    (total, described)
}

fn describe(node: Node<'_>, source: &str) -> String {
    let start = node.start_byte().min(source.len());
    let (line, col) = line_col(source, start);
    let what = if node.is_missing() {
        let kind = node.kind();
        if kind.chars().all(|c| c.is_alphanumeric() || c == '_') {
            format!("missing {}", kind.replace('_', " "))
        } else {
            format!("missing `{kind}`")
        }
    } else if let Some((at, open)) = unclosed_bracket(node) {
        let (line, col) = line_col(source, at);
        return format!(
            "line {line}, column {col}: `{open}` is never closed (expected a matching `{}`)\n{}",
            closer(open),
            excerpt(source, line, col)
        );
    } else {
        let end = node.end_byte().clamp(start, source.len());
        let text = source.get(start..end).unwrap_or_default();
        let first = text.lines().map(str::trim).find(|l| !l.is_empty());
        match first {
            Some(l) => format!("unexpected `{}`", shorten(l, 40)),
            None if start >= source.trim_end().len() => "unexpected end of input".to_string(),
            None => "unexpected input".to_string(),
        }
    };
    format!(
        "line {line}, column {col}: {what}\n{}",
        excerpt(source, line, col)
    )
}

fn closer(open: &str) -> &'static str {
    match open {
        "(" => ")",
        "[" => "]",
        _ => "}",
    }
}

/// The byte offset and text of the first opening bracket among the
/// tokens of ERROR node `node` that no closing bracket matches, if any.
fn unclosed_bracket<'t>(node: Node<'t>) -> Option<(usize, &'t str)> {
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut cursor = node.walk();
    let mut seen = 0;
    'walk: loop {
        let n = cursor.node();
        if n.child_count() == 0 {
            seen += 1;
            match n.kind() {
                k @ ("(" | "[" | "{") => stack.push((n.start_byte(), k)),
                k @ (")" | "]" | "}") => {
                    if stack.last().is_some_and(|&(_, open)| closer(open) == k) {
                        stack.pop();
                    } else {
                        // a stray closer: not an unclosed opener
                        return None;
                    }
                }
                _ => {}
            }
        }
        if seen > 10_000 {
            return None;
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'walk;
            }
            if !cursor.goto_parent() || cursor.node() == node {
                break 'walk;
            }
        }
    }
    stack.first().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runtime::value::expect_fail as fail;

    #[test]
    fn valid_code_passes() {
        let cases = [
            ("python", "def f(x):\n    return x + 1\n"),
            ("py", ""),
            ("rust", "fn main() { println!(\"hi\"); }"),
            ("rs", "struct A { b: u8 }"),
            ("javascript", "const f = (x) => x * 2;\n"),
            ("JS", "function g() { return [1, 2]; }"),
            (
                "typescript",
                "function f(x: number): string { return `${x}`; }",
            ),
            ("ts", "interface A { b?: string }"),
            ("json", "{\"a\": [1, 2, {\"b\": null}]}"),
        ];
        for (lang, src) in cases {
            assert_eq!(syntax(lang, src), Verdict::Pass, "{lang}: {src}");
        }
    }

    #[test]
    fn missing_token() {
        let f = fail(syntax("python", "x = 1\nprint(foo(1, 2)\n"));
        assert!(f.starts_with("the python code has a syntax error:"), "{f}");
        assert!(
            f.contains("line 2, column 6: `(` is never closed (expected a matching `)`)"),
            "{f}"
        );
        assert!(f.contains("   2 | print(foo(1, 2)"), "{f}");
    }

    #[test]
    fn unexpected_text() {
        let f = fail(syntax("rust", "fn main() {\n    let x = = 3;\n}\n"));
        assert!(f.contains("line 2, column"), "{f}");
        assert!(f.contains("unexpected `") || f.contains("missing"), "{f}");
        assert!(f.contains("   2 |     let x = = 3;"), "{f}");
        let f = fail(syntax("json", "{\"a\": 1,, \"b\": 2}"));
        assert!(f.contains("line 1, column 8: unexpected `,`"), "{f}");
        let f = fail(syntax("typescript", "let x: number = ;\n"));
        assert!(f.contains("line 1, column"), "{f}");
    }

    #[test]
    fn many_errors_are_capped() {
        let src = "def f(:\n  pass\ndef g(:\n  pass\ndef h(:\n  pass\ndef i(:\n  pass\n";
        let f = fail(syntax("python", src));
        assert!(f.contains("syntax errors:"), "{f}");
        assert!(f.matches("\nline ").count() <= MAX_REPORTED, "{f}");
        assert!(f.contains("more)"), "{f}");
    }

    #[test]
    fn columns_count_characters() {
        let f = fail(syntax("javascript", "const s = \"é\"; let = ;\n"));
        assert!(f.contains("line 1, column 20: unexpected `=`"), "{f}");
        let f = fail(syntax("json", "[\"é\" 1]"));
        assert!(f.contains("line 1, column 6: unexpected `1`"), "{f}");
    }

    #[test]
    fn unknown_language_is_fatal() {
        match syntax("cobol", "x") {
            Verdict::Fatal(f) => {
                assert!(f.contains("`cobol`"), "{f}");
                for l in languages() {
                    assert!(f.contains(l), "{f}");
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let src = "[".repeat(100_000);
        let f = fail(syntax("json", &src));
        assert!(f.contains("line 1"), "{f}");
        let src = format!("x = {}1{}", "(".repeat(20_000), ")".repeat(19_999));
        let _ = fail(syntax("python", &src));
    }

    #[test]
    fn parsers_work_on_other_threads() {
        let handle = std::thread::spawn(|| syntax("rust", "fn f() {}"));
        assert_eq!(handle.join().ok(), Some(Verdict::Pass));
        assert_eq!(canonical(" Python "), Some("python"));
        assert_eq!(canonical("go"), None);
    }
}
