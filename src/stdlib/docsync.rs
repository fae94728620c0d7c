//! Documentation sync: the symbols a Markdown document lists match the
//! public symbols of Python code. `docs_match(doc)` judges code against a
//! document; `documents(code)` judges a document against code.
//!
//! The code's public symbols are its top-level functions and classes
//! whose names do not start with `_`, or exactly `__all__` when the
//! module assigns it (`syntax::python_public_definitions`). A document
//! lists a symbol with a heading or a list item whose first inline code
//! span starts with the name: `## \`parse(text)\``, `- \`Stack\`: …`,
//! `* \`def push(x)\``. Dotted names (`Stack.push`, methods) are not
//! top-level symbols and are not compared.

use super::syntax::python_public_definitions;
use crate::runtime::Verdict;

/// A symbol the document lists, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Documented {
    pub name: String,
    pub line: usize,
}

/// The symbols `doc` lists, in order, each once.
pub fn documented(doc: &str) -> Vec<Documented> {
    let mut out: Vec<Documented> = Vec::new();
    let mut fenced = false;
    for (i, line) in doc.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let item = t.starts_with('#')
            || t.starts_with("- ")
            || t.starts_with("* ")
            || t.starts_with("+ ")
            || t.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !item {
            continue;
        }
        let Some(start) = t.find('`') else { continue };
        let rest = &t[start + 1..];
        let Some(end) = rest.find('`') else { continue };
        let code = rest[..end].trim();
        let code = ["def ", "async def ", "class "]
            .iter()
            .find_map(|p| code.strip_prefix(p))
            .unwrap_or(code)
            .trim_start();
        let name: String = code
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let ident = name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_');
        if !ident || name.contains('.') {
            continue;
        }
        if !out.iter().any(|d| d.name == name) {
            out.push(Documented { name, line: i + 1 });
        }
    }
    out
}

/// Compares the code's public symbols with the document's; `subject`
/// says which of the two is the artifact, for the feedback's wording.
fn compare(code: &str, doc: &str, subject_is_code: bool) -> Verdict {
    let defs = match python_public_definitions(code) {
        Ok(d) => d,
        Err(e) => return Verdict::fatal(e),
    };
    let listed = documented(doc);
    let missing: Vec<String> = defs
        .iter()
        .filter(|d| !listed.iter().any(|l| l.name == d.name))
        .map(|d| format!("`{}` ({} at line {} of the code)", d.name, d.kind, d.line))
        .collect();
    let extra: Vec<String> = listed
        .iter()
        .filter(|l| !defs.iter().any(|d| d.name == l.name))
        .map(|l| format!("`{}` (line {} of the documentation)", l.name, l.line))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Verdict::Pass;
    }
    let mut feedback = if subject_is_code {
        "the code's public symbols do not match the documentation:".to_string()
    } else {
        "the documentation does not match the code's public symbols:".to_string()
    };
    if !missing.is_empty() {
        feedback.push_str("\n- public in the code but not documented: ");
        feedback.push_str(&missing.join(", "));
    }
    if !extra.is_empty() {
        feedback.push_str("\n- documented but not public in the code: ");
        feedback.push_str(&extra.join(", "));
    }
    if listed.is_empty() {
        feedback.push_str(
            "\n(the documentation lists no symbol: list each as a heading or a list item \
             starting with the name in backquotes, such as `- `parse(text)`: …`)",
        );
    }
    Verdict::fail(feedback)
}

/// `docs_match(doc)`: the artifact is the code.
pub fn docs_match(code: &str, doc: &str) -> Verdict {
    compare(code, doc, true)
}

/// `documents(code)`: the artifact is the documentation.
pub fn documents(doc: &str, code: &str) -> Verdict {
    compare(code, doc, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_symbols_come_from_headings_and_items() {
        let doc = "# Calc\n\nSee `ignored` here.\n\n## `add(a, b)`\n- `Stack`: a stack\n* `def pop()`\n1. `mul`\n- `Stack.push(x)`: a method\n```\n- `fenced`\n```\n- no code here\n";
        let names: Vec<String> = documented(doc).into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["add", "Stack", "pop", "mul"]);
    }

    #[test]
    fn public_definitions_are_top_level_functions_and_classes() {
        let code = "import os\n\nasync def fetch():\n    pass\n\n@dataclass\nclass Point:\n    x: int\n    def norm(self):\n        pass\n\ndef _private():\n    pass\n\nVALUE = 1\n";
        let defs: Vec<(String, &str, usize)> = python_public_definitions(code)
            .expect("parses")
            .into_iter()
            .map(|d| (d.name, d.kind, d.line))
            .collect();
        assert_eq!(
            defs,
            [
                ("fetch".to_string(), "function", 3),
                ("Point".to_string(), "class", 7)
            ]
        );
        let code = "__all__ = ('_hidden', 'later')\ndef _hidden(): pass\ndef shown(): pass\n";
        let names: Vec<String> = python_public_definitions(code)
            .expect("parses")
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, ["_hidden", "later"]);
    }
}
