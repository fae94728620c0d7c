//! Values and data branching, through the binary: field paths as
//! arguments, typed predicates choosing a task's method at run time from a
//! `Json<T>` verdict, `:result` of a parameter with no subtask and no call,
//! predicates costing nothing in the bounds, code literals kept verbatim.

use std::path::Path;
use std::process::Command;

use guardflow::syntax::ast::{Expr, ItemKind};

use crate::support::bin;

const EXAMPLE: &str = "examples/branching.guardflow";

const PLAN: &str = r#"{"action": "plan", "attempt": 1, "output": "{\"goal\": \"average numbers\", \"steps\": [\"sum\", \"divide\"]}"}"#;
const IMPLEMENT: &str = r#"{"action": "implement", "attempt": 1, "output": "```python\ndef mean(xs):\n    return sum(xs) / len(xs)\n```"}"#;

/// Runs the example's `build` with a recording made of `lines`.
fn build(dir: &Path, lines: &[&str]) -> (i32, String, String) {
    let replay = dir.join("replay.jsonl");
    std::fs::write(&replay, lines.join("\n")).expect("write replay");
    let o = Command::new(bin())
        .current_dir(dir)
        .args(["run", "--no-store", "--task", "build", "--input"])
        .arg("request=average a list")
        .arg("--replay")
        .arg(&replay)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE))
        .output()
        .expect("runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_verdict_that_holds_keeps_the_code_with_no_further_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let review = r#"{"action": "review", "attempt": 1, "output": "{\"ok\": true, \"score\": 0.9, \"severity\": \"Low\", \"findings\": []}"}"#;
    let (code, out, err) = build(dir.path(), &[PLAN, IMPLEMENT, review]);
    assert_eq!(code, 0, "{out}{err}");
    // `keep` returned the implementation itself: no fix, no rewrite
    assert_eq!(
        out.trim(),
        "def mean(xs):\n    return sum(xs) / len(xs)",
        "{err}"
    );
    assert!(err.contains("generator calls: 3 "), "{err}");
    assert!(!err.contains("fix ") && !err.contains("rewrite "), "{err}");
}

#[test]
fn a_high_severity_verdict_skips_keep_and_patch_and_rewrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let review = r#"{"action": "review", "attempt": 1, "output": "{\"ok\": false, \"score\": 0.5, \"severity\": \"High\", \"findings\": [{\"line\": 1, \"note\": \"wrong\"}]}"}"#;
    let rewrite = r#"{"action": "rewrite", "attempt": 1, "output": "```python\ndef mean(xs):\n    return sum(xs) / max(len(xs), 1)\n```"}"#;
    let (code, out, err) = build(dir.path(), &[PLAN, IMPLEMENT, review, rewrite]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("max(len(xs), 1)"), "{out}{err}");
    assert!(err.contains("generator calls: 4 "), "{err}");
    assert!(err.contains("rewrite") && !err.contains("  fix "), "{err}");
}

#[test]
fn a_low_score_is_rewritten_whatever_the_severity() {
    // `v.score < 0.3` in `redo`'s `||`; `patch` needs findings
    let dir = tempfile::tempdir().expect("tempdir");
    let review = r#"{"action": "review", "attempt": 1, "output": "{\"ok\": false, \"score\": 0.1, \"severity\": \"Low\", \"findings\": []}"}"#;
    let rewrite = r#"{"action": "rewrite", "attempt": 1, "output": "```python\ndef mean(xs):\n    return 0\n```"}"#;
    let (code, out, err) = build(dir.path(), &[PLAN, IMPLEMENT, review, rewrite]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "def mean(xs):\n    return 0", "{err}");
}

#[test]
fn no_method_holds_and_the_task_fails_saying_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    // not ok, mid score, Medium, no findings: no `:pre` holds
    let review = r#"{"action": "review", "attempt": 1, "output": "{\"ok\": false, \"score\": 0.5, \"severity\": \"Medium\", \"findings\": []}"}"#;
    let (code, out, err) = build(dir.path(), &[PLAN, IMPLEMENT, review]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("`v.ok` is false") && err.contains("`len(v.findings) > 0` is false (0 > 0)"),
        "{err}"
    );
    assert!(err.contains("`v.severity == High` is false"), "{err}");
}

/// `:result code` with no subtasks: the task returns its parameter, and
/// a `Json<T>` parameter given as text is read as JSON by the predicates.
#[test]
fn a_method_returns_its_parameter_with_no_call() {
    let o = Command::new(bin())
        .args(["run", "--no-store", "--task", "respond"])
        .args(["--input", "goal=g", "--input", "code=print(1)"])
        .args([
            "--input",
            r#"v={"ok": true, "score": 1.0, "severity": "Low", "findings": []}"#,
        ])
        .arg(EXAMPLE)
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert_eq!(out.trim(), "print(1)", "{err}");
    assert!(err.contains("generator calls: 0"), "{err}");
}

/// Predicates are decided from values: a task whose methods only compare
/// and return parameters costs no call, and the bound says so.
#[test]
fn predicates_cost_no_call_in_the_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("choose.guardflow");
    std::fs::write(
        &file,
        "type V = { ok: Bool, n: Int }\n\
         task choose(v: Json<V>, a: Text, b: Text) -> Text {\n\
           method first { :pre v.ok && v.n > 2 :result a }\n\
           method second { :pre !v.ok || len(b) == 0 :result b }\n\
         }\n",
    )
    .expect("write");
    let o = Command::new(bin())
        .args(["check", "--bounds", "--color", "never"])
        .arg(&file)
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let line = out
        .lines()
        .chain(err.lines())
        .find(|l| l.trim_start().starts_with("choose "))
        .unwrap_or_else(|| panic!("no bound for `choose`:\n{out}{err}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[1..3], ["0", "0"], "{line}");
}

#[test]
fn code_literals_keep_their_text_verbatim() {
    let src = "input a: Code<python> = python\"print(\\\"{x}\\\")\\n\"\n\
               input b: Code<python> = python\"\"\"\n    def f():\n        return {\"k\": 1}\n    \"\"\"\n";
    let (file, errors) = guardflow::syntax::parse(guardflow::source::FileId(0), src);
    assert!(errors.is_empty(), "{errors:?}");
    let texts: Vec<(String, String)> = file
        .items
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::Input(input) => match &input.default {
                Some(Expr::Code(c)) => Some((c.lang.name.clone(), c.text.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("python".to_string(), "print(\\\"{x}\\\")\\n".to_string()),
            (
                "python".to_string(),
                "def f():\n    return {\"k\": 1}".to_string()
            ),
        ]
    );
}

/// An action's `:pre` predicate decides before any call: false, the
/// action fails with the predicate and the values it compared, and the
/// generator is never asked.
#[test]
fn an_action_pre_predicate_stops_it_before_the_generator() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pick.guardflow");
    std::fs::write(
        &file,
        "use std.{non_empty}\n\
         action pick(items: [Text]) -> Text {\n\
           :generate replay(\"r.jsonl\") \"Pick one of {items}\"\n\
           :pre len(items) > 0 && len(items) <= 10\n\
           :guard non_empty\n\
           :retry 0\n\
         }\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("r.jsonl"),
        "{\"action\": \"pick\", \"attempt\": 1, \"output\": \"a\"}\n",
    )
    .expect("write");
    let run = |items: &str| {
        let o = Command::new(bin())
            .args(["run", "--no-store", "--color", "never", "--task", "pick"])
            .arg("--input")
            .arg(format!("items={items}"))
            .arg(&file)
            .output()
            .expect("runs");
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run("[]");
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("`len(items) > 0` is false (0 > 0)"), "{err}");
    assert!(err.contains("generator calls: 0"), "{err}");
    let (code, out, err) = run(r#"["a", "b"]"#);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "a", "{err}");
}
