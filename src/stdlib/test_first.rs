//! The test-first guards, whose artifact is the TESTS:
//! `tests_fail_first(stub)` (the RED step: the tests fail against a stub,
//! each for a real reason) and `characterizes(legacy)` (the tests pass
//! against legacy code unchanged: the code is the oracle).
//!
//! The tests run with pytest beside the stub or the legacy code (as
//! `solution.py`), in the sandbox. Outcomes are classified from a small
//! pytest plugin's report (`test_first_report.py`, loaded with `-p`), not
//! from pytest's text: each test's outcome, the exception that ended it
//! and where it was raised, and whether the test checks anything at all.

use std::io::Read;
use std::time::Duration;

use serde::Deserialize;

use super::python::{self, CODE_FILE};
use super::sandbox::Confine;
use crate::runtime::Verdict;

/// The plugin, written beside the tests as `guardflow_report.py`.
const PLUGIN: &str = include_str!("test_first_report.py");
/// The report's file in the tests' directory.
const REPORT: &str = ".guardflow-report.json";
/// The largest report read.
const MAX_REPORT: u64 = 16 << 20;
/// The most problems listed in one feedback.
const MAX_LISTED: usize = 12;

/// Which guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `tests_fail_first(stub)`: RED.
    FailFirst,
    /// `characterizes(legacy)`: the tests pass against the code as it is.
    Characterize,
}

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    collect_errors: Vec<CollectError>,
    #[serde(default)]
    tests: Vec<Test>,
    #[serde(default)]
    more: usize,
    #[serde(default)]
    code_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct CollectError {
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct Test {
    nodeid: String,
    /// passed, failed, skipped, xfailed, xpassed
    outcome: String,
    /// setup, call, teardown
    #[serde(default)]
    when: String,
    #[serde(default)]
    exception: String,
    #[serde(default)]
    assertion: bool,
    #[serde(default)]
    raised_in: String,
    #[serde(default)]
    message: String,
    #[serde(default = "yes")]
    checks: bool,
}

fn yes() -> bool {
    true
}

/// Exceptions that, raised by a test's own code, show a mistake in the
/// test or a name the code does not define, not a behaviour.
const BROKEN: [&str; 7] = [
    "NameError",
    "UnboundLocalError",
    "ImportError",
    "ModuleNotFoundError",
    "AttributeError",
    "SyntaxError",
    "IndentationError",
];

/// Runs the `tests` (the artifact) against `code` (the stub or the
/// legacy code) and judges them as `mode` says.
pub async fn judge(
    mode: Mode,
    tests: &str,
    code: &str,
    files: &[(String, String)],
    timeout: Duration,
    confine: &Confine,
) -> Verdict {
    let scratch = match python::prepare(
        "guardflow-test-first-",
        code,
        tests,
        &[("guardflow_report.py", PLUGIN)],
        files,
        confine,
        timeout,
    ) {
        Ok(s) => s,
        Err(v) => return v,
    };
    let report_path = scratch.path().join(REPORT);
    let argv: Vec<String> = [
        "python3",
        "-m",
        "pytest",
        "-q",
        "--tb=short",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "-p",
        "guardflow_report",
        python::TESTS_FILE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let env = vec![(
        "GUARDFLOW_REPORT".to_string(),
        report_path.to_string_lossy().into_owned(),
    )];
    let (out, dir) = match python::run_python(scratch, argv, env, timeout, confine).await {
        Ok(ran) => ran,
        Err(v) => return v,
    };
    let all = format!("{}{}", out.stdout, out.stderr);
    if out.timed_out {
        return Verdict::fail(format!(
            "the tests did not finish within {} (an endless loop?); their last output:\n{}",
            crate::runtime::guard::show_duration(timeout),
            super::process::tail(&all, 20, 2000)
        ));
    }
    if let Some(v) = python::missing_module(&out, "pytest") {
        return v;
    }
    let text = std::fs::File::open(&report_path).and_then(|f| {
        let mut text = String::new();
        f.take(MAX_REPORT).read_to_string(&mut text)?;
        Ok(text)
    });
    let report: Option<Report> = text.ok().and_then(|t| serde_json::from_str(&t).ok());
    let Some(mut report) = report else {
        return Verdict::fail(format!(
            "pytest ended without its report (a test that ends the process, such as \
             `os._exit`, or a crash); its output:\n{}",
            super::process::tail(&all, 30, 2000)
        ));
    };
    // the temporary directory means nothing to the model
    let prefix = format!("{}/", dir.path().display());
    for e in &mut report.collect_errors {
        e.message = e.message.replace(&prefix, "");
    }
    for t in &mut report.tests {
        t.message = t.message.replace(&prefix, "");
    }
    drop(dir);
    match mode {
        Mode::FailFirst => fail_first(&report),
        Mode::Characterize => characterize(&report),
    }
}

/// `name` without the file: `test_solution.py::test_add` → `test_add`.
fn short_id(nodeid: &str) -> &str {
    nodeid
        .strip_prefix(python::TESTS_FILE)
        .and_then(|rest| rest.strip_prefix("::"))
        .unwrap_or(nodeid)
}

/// A test's failure in one line or a few: `AssertionError: assert None == 3`.
fn failure(t: &Test) -> String {
    let first: Vec<&str> = t.message.lines().map(str::trim).take(3).collect();
    let message = super::text::shorten(&first.join(" / "), 240);
    if t.exception.is_empty() || message.starts_with(&t.exception) {
        message
    } else if message.is_empty() {
        t.exception.clone()
    } else {
        format!("{}: {message}", t.exception)
    }
}

const VACUOUS: &str = "checks nothing: it has no `assert` on a computed value (an \
    `assert` on a constant such as `assert True` does not count), no `pytest.raises` and no \
    `assert…` call, so it cannot tell a right implementation from a wrong one";

fn names(report: &Report) -> String {
    if report.code_names.is_empty() {
        "nothing".to_string()
    } else {
        report
            .code_names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn collect_errors(report: &Report, against: &str) -> Option<Verdict> {
    if report.collect_errors.is_empty() {
        return None;
    }
    let errors: Vec<&str> = report
        .collect_errors
        .iter()
        .map(|e| e.message.trim())
        .collect();
    Some(Verdict::fail(format!(
        "the tests cannot be collected against {against}, so no test ran:\n{}\n\
         (the tests must import and parse; {CODE_FILE} defines {})",
        errors.join("\n"),
        names(report)
    )))
}

fn listed(problems: &[String], more: usize) -> String {
    let mut text = String::new();
    for p in problems.iter().take(MAX_LISTED) {
        text.push_str("\n- ");
        text.push_str(p);
    }
    let left = problems.len().saturating_sub(MAX_LISTED) + more;
    if left > 0 {
        text.push_str(&format!("\n(… and {left} more)"));
    }
    text
}

const NO_TESTS: &str = "the tests hold no test: name test functions `test_…` (or \
    unittest.TestCase methods `test_…`)";

/// RED: no collection error; every test runs, checks something and
/// fails; none fails by a mistake of its own (a fixture, a name the
/// test or the stub lacks); at least one fails on an assertion.
fn fail_first(report: &Report) -> Verdict {
    if let Some(v) = collect_errors(report, "the stub") {
        return v;
    }
    if report.tests.is_empty() {
        return Verdict::fail(NO_TESTS);
    }
    let mut problems = Vec::new();
    let mut red = 0;
    let mut other = Vec::new();
    for t in &report.tests {
        let id = short_id(&t.nodeid);
        if !t.checks {
            problems.push(format!("`{id}` {VACUOUS}"));
            continue;
        }
        match t.outcome.as_str() {
            "passed" | "xpassed" => problems.push(format!(
                "`{id}` passes against the stub: a test written first must fail until the \
                 code is written"
            )),
            "skipped" | "xfailed" => problems.push(format!(
                "`{id}` is {} ({}): every test must run and fail against the stub",
                if t.outcome == "skipped" {
                    "skipped"
                } else {
                    "marked xfail"
                },
                super::text::shorten(t.message.trim(), 120)
            )),
            _ if t.when != "call" => problems.push(format!(
                "`{id}` errors in its {} (a fixture), before the test runs: {}",
                t.when,
                failure(t)
            )),
            _ if t.assertion => red += 1,
            _ if BROKEN.contains(&t.exception.as_str()) && t.raised_in == python::TESTS_FILE => {
                problems.push(format!(
                    "`{id}` fails with {}, not on an assertion: a mistake in the test, or a name \
                     the stub does not define ({CODE_FILE} defines {})",
                    failure(t),
                    names(report)
                ))
            }
            _ => other.push(format!(
                "`{id}` fails with {}{}",
                failure(t),
                if t.raised_in == CODE_FILE {
                    " (raised by the stub)"
                } else {
                    ""
                }
            )),
        }
    }
    if !problems.is_empty() {
        return Verdict::fail(format!(
            "the tests must each fail against the stub for a real reason before the code is \
             written; rejected:{}",
            listed(&problems, report.more)
        ));
    }
    if red == 0 {
        return Verdict::fail(format!(
            "no test fails on an assertion against the stub; each fails with an exception \
             instead:{}\nassert on the values the code must return, so that a test fails \
             because a value is wrong (a stub returns placeholders, such as `None` or `0`)",
            listed(&other, 0)
        ));
    }
    Verdict::Pass
}

/// Characterization: no collection error; every test runs, checks
/// something and passes against the legacy code as it is.
fn characterize(report: &Report) -> Verdict {
    if let Some(v) = collect_errors(report, "the legacy code") {
        return v;
    }
    if report.tests.is_empty() {
        return Verdict::fail(NO_TESTS);
    }
    let mut problems = Vec::new();
    for t in &report.tests {
        let id = short_id(&t.nodeid);
        if !t.checks {
            problems.push(format!("`{id}` {VACUOUS}"));
            continue;
        }
        match t.outcome.as_str() {
            "passed" => {}
            "skipped" | "xfailed" | "xpassed" => problems.push(format!(
                "`{id}` is {} ({}): every test must run and pass",
                if t.outcome == "skipped" {
                    "skipped"
                } else {
                    "marked xfail"
                },
                super::text::shorten(t.message.trim(), 120)
            )),
            _ if t.when != "call" => problems.push(format!(
                "`{id}` errors in its {} (a fixture): {}",
                t.when,
                failure(t)
            )),
            _ => problems.push(format!("`{id}` fails: {}", failure(t))),
        }
    }
    if problems.is_empty() {
        return Verdict::Pass;
    }
    Verdict::fail(format!(
        "the tests must pass against the legacy code unchanged: it is the oracle, so a \
         failing test records behaviour the code does not have (its bugs included, the \
         code's behaviour is what the tests must record); rejected:{}",
        listed(&problems, report.more)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUB: &str = "def add(a, b):\n    return None\n";
    const LEGACY: &str = "def add(a, b):\n    # a known quirk: negative sums are clamped\n    return max(a + b, 0)\n";

    async fn red(tests: &str) -> Verdict {
        let v = judge(
            Mode::FailFirst,
            tests,
            STUB,
            &[],
            Duration::from_secs(60),
            &Confine::default(),
        )
        .await;
        if let Verdict::Fatal(f) = &v {
            panic!("{f}\nrun the tests with scripts/test.sh, which installs pytest in .venv");
        }
        v
    }

    async fn characterizes(tests: &str) -> Verdict {
        judge(
            Mode::Characterize,
            tests,
            LEGACY,
            &[],
            Duration::from_secs(60),
            &Confine::default(),
        )
        .await
    }

    #[tokio::test]
    async fn a_real_assertion_failure_is_accepted() {
        let tests = "from solution import add\n\n\ndef _check(x):\n    assert x == 3\n\n\n\
def test_add():\n    assert add(1, 2) == 3\n\n\ndef test_helper():\n    _check(add(1, 2))\n";
        assert_eq!(red(tests).await, Verdict::Pass);
    }

    #[tokio::test]
    async fn an_import_error_is_rejected() {
        let tests = "from solution import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n";
        insta::assert_snapshot!(red(tests).await.feedback(), @r"
        the tests cannot be collected against the stub, so no test ran:
        ImportError: cannot import name 'mul' from 'solution' (solution.py)
        (the tests must import and parse; solution.py defines `add`)
        ");
    }

    #[tokio::test]
    async fn a_collection_error_is_rejected() {
        let tests = "from solution import add\n\n\ndef test_add(:\n    assert add(1, 2) == 3\n";
        let f = red(tests).await.feedback().to_string();
        assert!(
            f.starts_with("the tests cannot be collected against the stub, so no test ran:"),
            "{f}"
        );
        assert!(f.contains("SyntaxError"), "{f}");
    }

    #[tokio::test]
    async fn passing_vacuous_and_broken_tests_are_rejected() {
        let tests = "import pytest\nfrom solution import add\n\n\n\
def test_add():\n    assert add(1, 2) == 3\n\n\n\
def test_none():\n    assert add(1, 2) is None\n\n\n\
def test_vacuous():\n    add(1, 2)\n    assert True\n\n\n\
def test_always_fails():\n    assert False\n\n\n\
def test_typo():\n    assert ad(1, 2) == 3\n\n\n\
@pytest.mark.skip(reason='later')\ndef test_later():\n    assert add(2, 2) == 4\n";
        insta::assert_snapshot!(red(tests).await.feedback(), @r"
        the tests must each fail against the stub for a real reason before the code is written; rejected:
        - `test_none` passes against the stub: a test written first must fail until the code is written
        - `test_vacuous` checks nothing: it has no `assert` on a computed value (an `assert` on a constant such as `assert True` does not count), no `pytest.raises` and no `assert…` call, so it cannot tell a right implementation from a wrong one
        - `test_always_fails` checks nothing: it has no `assert` on a computed value (an `assert` on a constant such as `assert True` does not count), no `pytest.raises` and no `assert…` call, so it cannot tell a right implementation from a wrong one
        - `test_typo` fails with NameError: name 'ad' is not defined, not on an assertion: a mistake in the test, or a name the stub does not define (solution.py defines `add`)
        - `test_later` is skipped (Skipped: later): every test must run and fail against the stub
        ");
    }

    #[tokio::test]
    async fn exceptions_alone_are_not_a_red_step() {
        let stub = "def add(a, b):\n    raise NotImplementedError\n";
        let tests = "from solution import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n";
        let v = judge(
            Mode::FailFirst,
            tests,
            stub,
            &[],
            Duration::from_secs(60),
            &Confine::default(),
        )
        .await;
        insta::assert_snapshot!(v.feedback(), @r"
        no test fails on an assertion against the stub; each fails with an exception instead:
        - `test_add` fails with NotImplementedError (raised by the stub)
        assert on the values the code must return, so that a test fails because a value is wrong (a stub returns placeholders, such as `None` or `0`)
        ");
        // pytest.raises that does not raise is a failed check, and a
        // unittest TestCase's assertion is an assertion
        let tests = "import unittest\nimport pytest\nfrom solution import add\n\n\n\
def test_raises():\n    with pytest.raises(TypeError):\n        add('a', 1)\n\n\n\
class T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n";
        assert_eq!(red(tests).await, Verdict::Pass);
    }

    #[tokio::test]
    async fn characterization_passes_against_the_legacy_code_or_says_which_test_is_wrong() {
        let right =
            "from solution import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n\
def test_negative_sums_are_clamped():\n    assert add(-5, 2) == 0\n";
        assert_eq!(characterizes(right).await, Verdict::Pass);
        let wrong =
            "from solution import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n\n\n\
def test_negative():\n    assert add(-5, 2) == -3\n\n\ndef test_nothing():\n    add(1, 1)\n";
        insta::assert_snapshot!(characterizes(wrong).await.feedback(), @r"
        the tests must pass against the legacy code unchanged: it is the oracle, so a failing test records behaviour the code does not have (its bugs included, the code's behaviour is what the tests must record); rejected:
        - `test_negative` fails: AssertionError: assert 0 == -3 / +  where 0 = add(-5, 2)
        - `test_nothing` checks nothing: it has no `assert` on a computed value (an `assert` on a constant such as `assert True` does not count), no `pytest.raises` and no `assert…` call, so it cannot tell a right implementation from a wrong one
        ");
        let broken = "from solution import sub\n";
        let f = characterizes(broken).await.feedback().to_string();
        assert!(
            f.starts_with("the tests cannot be collected against the legacy code"),
            "{f}"
        );
    }
}
