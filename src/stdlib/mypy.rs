//! `mypy(strict: false, args: [])`: the artifact type-checks with mypy,
//! run in the sandbox on the artifact written as `solution.py` in a
//! fresh directory. The feedback is mypy's errors by line, each with its
//! line of code and its notes.

use std::time::Duration;

use super::python::{self, FEEDBACK_BYTES};
use super::sandbox::Confine;
use crate::runtime::Verdict;

/// The most errors listed in one feedback.
const MAX_ERRORS: usize = 20;

/// Type-checks `code` with mypy (`--strict` when `strict`, then `args`).
pub async fn mypy(
    code: &str,
    strict: bool,
    args: &[String],
    timeout: Duration,
    confine: &Confine,
) -> Verdict {
    // the tests' file stays empty: mypy checks `solution.py` only
    let scratch = match python::prepare("guardflow-mypy-", code, "", &[], &[], confine, timeout) {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut argv: Vec<String> = [
        "python3",
        "-m",
        "mypy",
        "--no-color-output",
        "--no-error-summary",
        "--show-column-numbers",
        "--show-error-codes",
        "--no-pretty",
        "--cache-dir",
        ".mypy_cache",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if strict {
        argv.push("--strict".to_string());
    }
    argv.extend(args.iter().cloned());
    argv.push(python::CODE_FILE.to_string());
    let (out, _dir) = match python::run_python(scratch, argv, Vec::new(), timeout, confine).await {
        Ok(ran) => ran,
        Err(v) => return v,
    };
    let all = format!("{}{}", out.stdout, out.stderr);
    if out.timed_out {
        return Verdict::fail(format!(
            "mypy did not finish within {}; its last output:\n{}",
            crate::runtime::guard::show_duration(timeout),
            super::process::tail(&all, 20, 2000)
        ));
    }
    if let Some(v) = python::missing_module(&out, "mypy") {
        return v;
    }
    let errors = errors(&out.stdout, code);
    match out.status {
        Some(0) if errors.is_empty() => Verdict::Pass,
        _ if !errors.is_empty() => Verdict::fail(feedback(&errors, strict)),
        // 2 without an error in the file: the options (or mypy) failed
        _ => Verdict::fatal(format!(
            "mypy could not check the code (status {}):\n{}",
            out.status.map_or("none".to_string(), |s| s.to_string()),
            super::process::tail(&all, 20, 2000)
        )),
    }
}

/// One of mypy's errors: its line, column and text, its line of code,
/// and the notes after it.
#[derive(Debug, PartialEq, Eq)]
struct TypeError {
    line: usize,
    column: usize,
    message: String,
    notes: Vec<String>,
    source: String,
}

/// mypy's `solution.py:L:C: error: …` lines (and `note:` lines after
/// them) for `code`; lines about other files are kept as they are.
fn errors(stdout: &str, code: &str) -> Vec<TypeError> {
    let source: Vec<&str> = code.lines().collect();
    let mut found: Vec<TypeError> = Vec::new();
    for line in stdout.lines() {
        let Some((place, rest)) = line.split_once(": ") else {
            continue;
        };
        let (kind, message) = match rest.split_once(": ") {
            Some((k @ ("error" | "note"), m)) => (k, m),
            _ => continue,
        };
        let fields: Vec<&str> = place.split(':').collect();
        let number = |s: &str| s.parse::<usize>().unwrap_or(0);
        let (file, line_no, column) = match fields.as_slice() {
            [f, l, c] => (*f, number(l), number(c)),
            [f, l] => (*f, number(l), 0),
            _ => (place, 0, 0),
        };
        let message = if file == python::CODE_FILE || file.is_empty() {
            message.to_string()
        } else {
            format!("{file}: {message}")
        };
        if kind == "note" {
            if let Some(last) = found.last_mut() {
                last.notes.push(message);
                continue;
            }
        }
        found.push(TypeError {
            line: line_no,
            column,
            message,
            notes: Vec::new(),
            source: source
                .get(line_no.wrapping_sub(1))
                .map_or(String::new(), |s| s.trim().to_string()),
        });
    }
    found
}

fn feedback(errors: &[TypeError], strict: bool) -> String {
    let n = errors.len();
    let mut text = format!(
        "mypy{} found {n} error{}:",
        if strict { " --strict" } else { "" },
        if n == 1 { "" } else { "s" }
    );
    for (i, e) in errors.iter().enumerate() {
        let mut entry = match (e.line, e.column) {
            (0, _) => format!("\n{}", e.message),
            (l, 0) => format!("\nline {l}: {}", e.message),
            (l, c) => format!("\nline {l}, column {c}: {}", e.message),
        };
        if !e.source.is_empty() {
            entry.push_str(&format!("\n    {}", super::text::shorten(&e.source, 160)));
        }
        for note in &e.notes {
            entry.push_str(&format!("\n  note: {note}"));
        }
        if i >= MAX_ERRORS || text.len() + entry.len() > FEEDBACK_BYTES - 100 {
            text.push_str(&format!(
                "\n(… {} more error{} cut: the feedback keeps {MAX_ERRORS} errors or \
                 {FEEDBACK_BYTES} bytes)",
                n - i,
                if n - i == 1 { "" } else { "s" }
            ));
            break;
        }
        text.push_str(&entry);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPED: &str = "def add(a: int, b: int) -> int:\n    return a + b\n";
    const WRONG: &str =
        "def add(a: int, b: int) -> int:\n    return str(a + b)\n\n\ndef twice(x):\n    return x * 2\n";

    async fn check(code: &str, strict: bool) -> Verdict {
        let v = mypy(
            code,
            strict,
            &[],
            Duration::from_secs(120),
            &Confine::default(),
        )
        .await;
        if let Verdict::Fatal(f) = &v {
            panic!("{f}\nrun the tests with scripts/test.sh, which installs mypy in .venv");
        }
        v
    }

    #[tokio::test]
    async fn typed_code_passes_and_type_errors_are_given_by_line() {
        assert_eq!(check(TYPED, true).await, Verdict::Pass);
        insta::assert_snapshot!(check(WRONG, false).await.feedback(), @r#"
        mypy found 1 error:
        line 2, column 12: Incompatible return value type (got "str", expected "int")  [return-value]
            return str(a + b)
        "#);
        insta::assert_snapshot!(check(WRONG, true).await.feedback(), @r#"
        mypy --strict found 2 errors:
        line 2, column 12: Incompatible return value type (got "str", expected "int")  [return-value]
            return str(a + b)
        line 5, column 1: Function is missing a type annotation  [no-untyped-def]
            def twice(x):
        "#);
    }

    #[tokio::test]
    async fn syntax_errors_fail_and_bad_options_are_fatal() {
        let v = check("def f(:\n", false).await;
        assert!(matches!(v, Verdict::Fail(_)), "{v:?}");
        assert!(v.feedback().contains("line 1, column"), "{v:?}");
        let v = mypy(
            TYPED,
            false,
            &["--no-such-option".to_string()],
            Duration::from_secs(120),
            &Confine::default(),
        )
        .await;
        assert!(matches!(v, Verdict::Fatal(_)), "{v:?}");
        assert!(v.feedback().contains("--no-such-option"), "{v:?}");
    }

    #[test]
    fn notes_follow_their_error_and_long_lists_are_cut() {
        let out = "solution.py:3:5: error: Name \"x\" is not defined  [name-defined]\n\
solution.py:3:5: note: Did you mean \"y\"?\nother.py:1: error: Oops  [misc]\n";
        let found = errors(out, "a\nb\n  print(x)\n");
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].notes, vec!["Did you mean \"y\"?".to_string()]);
        assert_eq!(found[0].source, "print(x)");
        assert_eq!(found[1].message, "other.py: Oops  [misc]");
        assert_eq!(found[1].line, 1);
        let many: String = (1..=40)
            .map(|i| format!("solution.py:{i}:1: error: Bad  [misc]\n"))
            .collect();
        let f = feedback(&errors(&many, ""), false);
        assert!(f.starts_with("mypy found 40 errors:"), "{f}");
        assert!(
            f.ends_with("(… 20 more errors cut: the feedback keeps 20 errors or 4000 bytes)"),
            "{f}"
        );
    }
}
