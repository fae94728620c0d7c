//! Writing the mapped workflows as guardflow source (the formatter lays
//! it out afterwards).

use std::fmt::Write;

use super::model::{duration, GExpr, Parsed, Part, SpecParam};

/// The module atomicguard's `dynamic_test` writes the code as; the tests
/// it runs import it by this name. guardflow writes `solution.py`, so a
/// module of this name beside it stands in for it.
const IMPLEMENTATION_SHIM: &str =
    "import sys\nimport solution\n\nsys.modules[__name__] = solution\n";

/// atomicguard's `import` guard, written for guardflow: every name the
/// code reads is bound somewhere in it, imported or a builtin.
const NAMES_DEFINED_PY: &str = r#"import ast
import builtins
import sys

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    source = f.read()
if not source.strip():
    print("the code is empty")
    sys.exit(1)
try:
    tree = ast.parse(source)
except SyntaxError as e:
    print(f"the code does not parse: {e.msg} (line {e.lineno})")
    sys.exit(1)

bound = set(dir(builtins))
read = {}
star = False
for node in ast.walk(tree):
    if isinstance(node, ast.Name):
        if isinstance(node.ctx, ast.Load):
            read.setdefault(node.id, node.lineno)
        else:
            bound.add(node.id)
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if alias.name == "*":
                star = True
            else:
                bound.add(alias.asname or alias.name.split(".")[0])
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        bound.add(node.name)
    elif isinstance(node, ast.arg):
        bound.add(node.arg)
    elif isinstance(node, ast.ExceptHandler) and node.name:
        bound.add(node.name)
    elif isinstance(node, (ast.Global, ast.Nonlocal)):
        bound.update(node.names)
    elif type(node).__name__ in ("MatchAs", "MatchStar") and getattr(node, "name", None):
        bound.add(node.name)
    elif type(node).__name__ == "MatchMapping" and getattr(node, "rest", None):
        bound.add(node.rest)

missing = sorted((line, name) for name, line in read.items() if name not in bound)
if missing and not star:
    print("names used but never defined or imported (a missing import?):")
    for line, name in missing:
        print(f"  line {line}: {name}")
    sys.exit(1)
"#;

/// The source text and the notes for the reader.
pub fn emit(p: &Parsed, file: &str) -> Result<(String, Vec<String>), String> {
    let mut out = String::new();
    let shown = std::path::Path::new(file)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string());
    let _ = writeln!(
        out,
        "// Imported by `guardflow import` from {} (atomicguard's workflow format).",
        one_line(&shown)
    );
    let _ = writeln!(
        out,
        "// docs/import.md says how each part maps; this file is not read back.\n"
    );
    if !p.std_guards.is_empty() {
        let names: Vec<&str> = p.std_guards.iter().copied().collect();
        let _ = writeln!(out, "use std.{{{}}}\n", names.join(", "));
    }
    for g in &p.generators {
        let _ = writeln!(
            out,
            "/// atomicguard's provider `{}` with the model `{}`.",
            g.provider,
            one_line(&g.model)
        );
        let mut args = vec![format!("model: {}", text(&g.model))];
        if let Some(u) = &g.base_url {
            args.push(format!("base_url: {}", text(u)));
        }
        if let Some(k) = &g.api_key_env {
            args.push(format!("api_key_env: {}", text(k)));
        }
        if let Some(t) = g.temperature {
            args.push(format!("temperature: {t}"));
        }
        if let Some(ms) = g.timeout_ms {
            args.push(format!("timeout: {}", duration(ms)));
        }
        let _ = writeln!(out, "generator {} = llm({})\n", g.name, args.join(", "));
    }
    if p.dynamic_test {
        out.push_str(
            "/// atomicguard's `dynamic_test`: pytest runs `tests` against the artifact.\n\
             /// atomicguard's tests import the code as `implementation`; guardflow\n\
             /// writes it as `solution.py`, and `implementation.py` stands in for it.\n",
        );
        let _ = writeln!(
            out,
            "guard dynamic_test(tests: Code<python>, timeout: Duration = 60s) on Code<python> = pytest(tests, timeout: timeout, files: {{\"implementation.py\": {}}})\n",
            text(IMPLEMENTATION_SHIM)
        );
    }
    if p.names_defined {
        out.push_str(
            "/// atomicguard's `import`: every name the code uses is defined, imported\n\
             /// or a builtin (read from Python's syntax tree by python3; nothing runs).\n",
        );
        let _ = writeln!(
            out,
            "guard names_defined on Text = command(\"python3 \\\"$GUARDFLOW_FILE_NAMES_DEFINED_PY\\\" \\\"$GUARDFLOW_ARTIFACT\\\"\", timeout: 60s, files: {{\"names_defined.py\": {}}})\n",
            text(NAMES_DEFINED_PY)
        );
    }
    for w in &p.workflows {
        for pair in &w.pairs {
            match &pair.description {
                Some(d) => doc(
                    &mut out,
                    &format!("`{}` of workflow `{}`: {d}", pair.id, w.id),
                ),
                None => doc(&mut out, &format!("`{}` of workflow `{}`.", pair.id, w.id)),
            }
            let params: Vec<String> = pair
                .params
                .iter()
                .map(|(n, t)| format!("{n}: {t}"))
                .collect();
            let _ = writeln!(
                out,
                "action {}({}) -> Code<python> {{",
                pair.action,
                params.join(", ")
            );
            if let Some(r) = &pair.role {
                let _ = writeln!(out, "  :role {}", text_at(r, 4));
            }
            let _ = writeln!(
                out,
                "  :generate {} {}",
                pair.generator,
                string_literal_at(&pair.prompt, 4)
            );
            let _ = writeln!(out, "  :guard {}", guard(&pair.guard));
            let _ = writeln!(out, "  :retry {}", pair.rmax);
            if pair.feedback_all {
                out.push_str("  :feedback all\n");
            }
            if let Some(n) = pair.max_tokens {
                let _ = writeln!(out, "  :max-tokens {n}");
            }
            out.push_str("}\n\n");
        }
        let mut heading = w.title.clone();
        if let Some(d) = &w.description {
            heading.push_str(": ");
            heading.push_str(d);
        }
        doc(&mut out, &heading);
        let param = match &w.spec {
            None => String::new(),
            Some(SpecParam::Text(s)) => format!("specification: Text = {}", text_at(s, 2)),
            Some(SpecParam::File(f)) => {
                doc(
                    &mut out,
                    &format!("atomicguard reads the specification from `{f}`: run with `--input specification=@{f}`."),
                );
                "specification: Text".to_string()
            }
            Some(SpecParam::Missing) => {
                doc(
                    &mut out,
                    "The workflow gives no specification: run with `--input specification=…`.",
                );
                "specification: Text".to_string()
            }
        };
        let result = if w.result.is_some() {
            " -> Code<python>"
        } else {
            ""
        };
        let _ = writeln!(out, "task {}({param}){result} {{", w.task);
        out.push_str("  method imported {\n");
        let subtasks: Vec<String> = w
            .pairs
            .iter()
            .map(|pair| {
                let args: Vec<&str> = pair.params.iter().map(|(n, _)| n.as_str()).collect();
                format!("{}: {}({})", pair.label, pair.action, args.join(", "))
            })
            .collect();
        let _ = writeln!(out, "    :subtasks ({})", subtasks.join(", "));
        if let Some(o) = &w.ordering {
            let _ = writeln!(out, "    :ordering {o}");
        }
        if let Some(r) = &w.result {
            let _ = writeln!(out, "    :result {r}");
        }
        out.push_str("  }\n}\n\n");
    }
    // every text is checked here: a control character has no escape
    if let Some(c) = out
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(format!(
            "a text of the workflow holds the control character U+{:04X}, which a guardflow file cannot hold; remove it from the JSON and import again",
            c as u32
        ));
    }
    Ok((out, p.notes.clone()))
}

/// `text` on one line, for a comment.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn doc(out: &mut String, text: &str) {
    let text = text.replace('\r', " ");
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            out.push_str("///\n");
        } else {
            let _ = writeln!(out, "/// {line}");
        }
    }
}

fn guard(g: &GExpr) -> String {
    match g {
        GExpr::Call(c) => c.clone(),
        GExpr::And(items) => items.iter().map(guard).collect::<Vec<_>>().join(" && "),
        GExpr::Form(name, items) => format!(
            "{name}({})",
            items.iter().map(guard).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A string literal with no interpolation.
pub fn text(s: &str) -> String {
    text_at(s, 0)
}

/// [`text`], its lines indented by `indent` when it is a triple string.
pub fn text_at(s: &str, indent: usize) -> String {
    string_literal_at(&[Part::Text(s.to_string())], indent)
}

/// A string literal (see [`string_literal_at`]).
pub fn string_literal(parts: &[Part]) -> String {
    string_literal_at(parts, 0)
}

/// A string literal: a triple-quoted one when the text has several lines
/// and can be one (no common indentation, which a triple string drops),
/// else a one-line string with escapes.
/// Its lines are indented by `indent` spaces (which the triple string's
/// dedent removes), so it sits in the layout the formatter keeps.
pub fn string_literal_at(parts: &[Part], indent: usize) -> String {
    let pad = " ".repeat(indent);
    let all_text: String = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.as_str(),
            Part::Interp(_) => "x",
        })
        .collect();
    let triple = all_text.contains('\n') && {
        let indent = all_text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start_matches(' ').len())
            .min()
            .unwrap_or(0);
        indent == 0 && !all_text.starts_with([' ', '\n'])
    };
    let mut body = String::new();
    for p in parts {
        match p {
            Part::Interp(name) => {
                let _ = write!(body, "{{{name}}}");
            }
            Part::Text(t) => {
                let chars: Vec<char> = t.chars().collect();
                for (i, &c) in chars.iter().enumerate() {
                    match c {
                        '\\' => body.push_str("\\\\"),
                        '{' => body.push_str("\\{"),
                        '}' => body.push_str("\\}"),
                        '\t' => body.push_str("\\t"),
                        '\r' => body.push_str("\\r"),
                        '\n' if !triple => body.push_str("\\n"),
                        '"' if !triple => body.push_str("\\\""),
                        // no `"""` inside, and none just before the end
                        '"' if chars.get(i + 1).is_none_or(|n| *n == '"') => body.push_str("\\\""),
                        c => body.push(c),
                    }
                }
            }
        }
    }
    if triple {
        let lines: Vec<String> = body
            .split('\n')
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{pad}{l}")
                }
            })
            .collect();
        format!("\"\"\"\n{}\n{pad}\"\"\"", lines.join("\n"))
    } else {
        format!("\"{body}\"")
    }
}

/// A `python"""…"""` code literal of `code`, kept verbatim; `Err` says
/// why it cannot be one.
pub fn code_literal(code: &str) -> Result<String, String> {
    if code.contains("\"\"\"") {
        return Err("the tests hold `\"\"\"`, which ends a guardflow code literal, and a code literal has no escapes".into());
    }
    let indent = code
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    if indent > 0 {
        return Err("every line of the tests is indented, and a guardflow code literal drops the indentation its lines share".into());
    }
    if code.ends_with('"') || code.ends_with('\\') || code.starts_with(['\n', ' ', '\t']) {
        return Err("the tests start with blank space or end with `\"` or `\\`, which a guardflow code literal cannot keep".into());
    }
    // indented, which the literal's dedent takes off again
    let lines: Vec<String> = code
        .split('\n')
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("    {l}")
            }
        })
        .collect();
    Ok(format!("python\"\"\"\n{}\n    \"\"\"", lines.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;
    use crate::syntax::ast::StringPart;

    /// The parts the parser reads back from a literal.
    fn parse_back(lit: &str) -> Vec<Part> {
        let src = format!("input x: Text = {lit}\n");
        let (file, errors) = crate::syntax::parse(FileId(0), &src);
        assert!(errors.is_empty(), "{src}: {errors:?}");
        let crate::syntax::ast::ItemKind::Input(input) = &file.items[0].kind else {
            panic!("not an input: {src}");
        };
        let Some(crate::syntax::ast::Expr::String(s)) = &input.default else {
            panic!("not a string: {src}");
        };
        let mut out = Vec::new();
        for p in &s.parts {
            match p {
                StringPart::Text(t) => out.push(Part::Text(t.clone())),
                StringPart::Interpolation(path) => out.push(Part::Interp(path[0].name.clone())),
            }
        }
        out
    }

    #[test]
    fn strings_read_back_as_written() {
        for t in [
            "one line",
            "two\nlines",
            "quotes \" and \"\"\" and a last \"",
            "braces {x} {{y}} } and \\ backslash",
            "tabs\tand\r\nreturns",
            "line\n  indented\nnot",
            "  every\n  line\n  indented",
            "\nstarts with a break",
            "ends with a break\n",
            "ends with spaces  \nand more  ",
            "\"\"\"\n\"\"\"",
        ] {
            let lit = text(t);
            assert_eq!(
                parse_back(&lit),
                vec![Part::Text(t.to_string())],
                "{t:?} as {lit}"
            );
        }
    }

    #[test]
    fn code_literals_read_back_as_written() {
        for code in [
            "from implementation import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
            "x = {'a': 1}  # \\n stays\n   \nprint(x)",
        ] {
            let lit = code_literal(code).expect("a literal");
            let src = format!("input x: Code<python> = {lit}\n");
            let (file, errors) = crate::syntax::parse(FileId(0), &src);
            assert!(errors.is_empty(), "{src}: {errors:?}");
            let crate::syntax::ast::ItemKind::Input(input) = &file.items[0].kind else {
                panic!("not an input: {src}");
            };
            let Some(crate::syntax::ast::Expr::Code(c)) = &input.default else {
                panic!("not code: {src}");
            };
            assert_eq!(c.text, code, "{src}");
        }
        assert!(code_literal("    indented()\n    all()").is_err());
        assert!(code_literal("s = \"\"\"doc\"\"\"").is_err());
    }

    #[test]
    fn interpolations_read_back() {
        let parts = vec![
            Part::Text("Tests:\n".into()),
            Part::Interp("g_test".into()),
            Part::Text("\n{x}".into()),
        ];
        let lit = string_literal(&parts);
        let src = format!("action a(g_test: Text) -> Text {{\n  :generate g {lit}\n  :guard true\n  :retry 0\n}}\n");
        let (_, errors) = crate::syntax::parse(FileId(0), &src);
        assert!(errors.is_empty(), "{src}: {errors:?}");
        assert!(lit.contains("{g_test}") && lit.contains("\\{x\\}"), "{lit}");
    }
}
