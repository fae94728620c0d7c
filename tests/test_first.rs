//! The test-first guards (`tests_fail_first`, `characterizes`), the test
//! runners' options and feedback, and `mypy`, through a workflow run with
//! recorded answers: the exact feedback a model gets, attempt by attempt.
//! pytest and mypy run for real (scripts/test.sh installs them); nothing
//! here skips when they are missing: a missing one fails the run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use guardflow::check::check_source;
use guardflow::diagnostics::Code;

use crate::support::{bin, run_bounded};

/// Runs a flow whose `first` action answers `first` (Python, guarded by
/// `python_syntax`) and whose `second(a)` action answers each of
/// `second` in turn, guarded by `guard` (which names `a`); gives each
/// attempt of `second` as (verdict, feedback).
fn run_two(
    dir: &Path,
    imports: &str,
    first: &str,
    second: &[&str],
    guard: &str,
) -> Vec<(String, String)> {
    let source = format!(
        r#"use std.{{python_syntax, {imports}}}
generator g = replay("answers.jsonl")
action first() -> Code<python> {{
  :generate g "first"
  :guard python_syntax
  :retry 0
}}
action second(a: Code<python>) -> Code<python> {{
  :generate g "second"
  :guard {guard}
  :retry {}
}}
task main() -> Code<python> {{
  method only {{
    :subtasks (f: first(), s: second(f))
    :ordering (f ; s)
    :result s
  }}
}}
"#,
        second.len() - 1
    );
    std::fs::write(dir.join("flow.guardflow"), source).expect("writes the flow");
    let mut answers = format!(
        "{}\n",
        serde_json::json!({"action": "first", "attempt": 1, "output": first})
    );
    for (i, output) in second.iter().enumerate() {
        answers.push_str(&format!(
            "{}\n",
            serde_json::json!({"action": "second", "attempt": i + 1, "output": output})
        ));
    }
    std::fs::write(dir.join("answers.jsonl"), answers).expect("writes the answers");
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg(dir.join("flow.guardflow")).arg("--json");
    let ran = run_bounded(cmd, Duration::from_secs(300));
    let attempts: Vec<(String, String)> = ran
        .attempts()
        .iter()
        .filter(|a| a["action"] == "second")
        .map(|a| {
            (
                a["verdict"].as_str().unwrap_or("").to_string(),
                a["feedback"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        !attempts.iter().any(|(v, _)| v == "fatal"),
        "a fatal verdict (is pytest or mypy missing? run scripts/test.sh):\n{}",
        ran.all()
    );
    assert_eq!(attempts.len(), second.len(), "{}", ran.all());
    attempts
}

/// The verdicts and the feedback of each attempt, as one text.
fn shown(attempts: &[(String, String)]) -> String {
    attempts
        .iter()
        .enumerate()
        .map(|(i, (v, f))| format!("attempt {}: {v}\n{f}\n", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

const STUB: &str = "def add(a: int, b: int) -> int:\n    return 0\n";

#[test]
fn the_red_step_rejects_broken_passing_and_vacuous_tests_and_accepts_real_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let import_error =
        "from solution import add, mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n";
    let syntax_error = "from solution import add\n\n\ndef test_add(:\n    assert add(2, 3) == 5\n";
    let passing_and_vacuous = "from solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n\
def test_zero():\n    assert add(0, 0) == 0\n\n\ndef test_runs():\n    add(1, 1)\n    assert True\n";
    let fixture_error = "import pytest\nfrom solution import add\n\n\n@pytest.fixture\ndef numbers():\n    raise RuntimeError('no numbers')\n\n\n\
def test_add(numbers):\n    assert add(*numbers) == 5\n";
    let real = "import pytest\nfrom solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n\
@pytest.mark.parametrize('a, b, total', [(1, 1, 2), (2, 2, 4)])\ndef test_table(a, b, total):\n    if total == 0:\n        assert add(a, b) == total\n    else:\n        assert add(a, b) == total\n";
    let attempts = run_two(
        dir.path(),
        "tests_fail_first",
        STUB,
        &[
            import_error,
            syntax_error,
            passing_and_vacuous,
            fixture_error,
            real,
        ],
        "tests_fail_first(a)",
    );
    // the syntax error's caret line depends on Python's version
    let mut text = shown(&attempts);
    if let Some(start) = text.find("File \"test_solution.py\"") {
        let end = text[start..]
            .find("(the tests must import")
            .map_or(text.len(), |e| start + e);
        text.replace_range(start..end, "[the syntax error]\n");
    }
    insta::assert_snapshot!(text, @r"
    attempt 1: fail
    tests_fail_first: the tests cannot be collected against the stub, so no test ran:
    ImportError: cannot import name 'mul' from 'solution' (solution.py)
    (the tests must import and parse; solution.py defines `add`)

    attempt 2: fail
    tests_fail_first: the tests cannot be collected against the stub, so no test ran:
    [the syntax error]
    (the tests must import and parse; solution.py defines `add`)

    attempt 3: fail
    tests_fail_first: the tests must each fail against the stub for a real reason before the code is written; rejected:
    - `test_zero` passes against the stub: a test written first must fail until the code is written
    - `test_runs` checks nothing: it has no `assert` on a computed value (an `assert` on a constant such as `assert True` does not count), no `pytest.raises` and no `assert…` call, so it cannot tell a right implementation from a wrong one

    attempt 4: fail
    tests_fail_first: the tests must each fail against the stub for a real reason before the code is written; rejected:
    - `test_add` errors in its setup (a fixture), before the test runs: RuntimeError: no numbers

    attempt 5: pass
    ");
}

#[test]
fn characterization_tests_must_pass_against_the_legacy_code_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    // the legacy code's quirk is load-bearing: negative totals are 0
    let legacy = "def add(a, b):\n    return max(a + b, 0)\n";
    let expects_a_fix =
        "from solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n\
def test_negative():\n    assert add(-5, 2) == -3\n";
    let records_it =
        "from solution import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n\
def test_negative_totals_are_clamped():\n    assert add(-5, 2) == 0\n";
    let attempts = run_two(
        dir.path(),
        "characterizes",
        legacy,
        &[expects_a_fix, records_it],
        "characterizes(a)",
    );
    insta::assert_snapshot!(shown(&attempts), @r"
    attempt 1: fail
    characterizes: the tests must pass against the legacy code unchanged: it is the oracle, so a failing test records behaviour the code does not have (its bugs included, the code's behaviour is what the tests must record); rejected:
    - `test_negative` fails: AssertionError: assert 0 == -3 / +  where 0 = add(-5, 2)

    attempt 2: pass
    ");
}

/// pytest's options through a workflow: `select` chooses tests, `args`
/// reach pytest, `files` are written beside the tests; and the feedback
/// of a run with hundreds of warnings still holds the failures.
#[test]
fn pytest_options_and_failures_before_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tests = "import warnings\nfrom solution import add\n\n\n\
def test_add():\n    for i in range(400):\n        warnings.warn(f'old api number {i}', DeprecationWarning)\n    assert add(2, 3) == 5\n\n\n\
def test_fixture(answer):\n    assert add(answer, 0) == 42\n";
    let wrong = "def add(a, b):\n    return a - b\n";
    let right = "def add(a, b):\n    return a + b\n";
    let conftest =
        r#"{"conftest.py": "import pytest\n\n@pytest.fixture\ndef answer():\n    return 42\n"}"#;
    let attempts = run_two(
        dir.path(),
        "pytest",
        tests,
        &[wrong, wrong, right],
        &format!("pytest(a, files: {conftest})"),
    );
    let (verdict, f) = &attempts[0];
    assert_eq!(verdict, "fail");
    assert!(
        f.starts_with("pytest: the tests failed (1 failed, 1 passed, 400 warnings):\nFAILED test_solution.py::test_add - assert -1 == 5\n== FAILURES ==\n"),
        "{f}"
    );
    assert!(f.contains("E   assert -1 == 5"), "{f}");
    assert!(
        f.ends_with("(the warnings summary, 1601 lines, was left out to keep the failures)"),
        "{f}"
    );
    assert_eq!(attempts[2].0, "pass");

    // -k: only the fixture's test runs, which the wrong code passes;
    // `-p no:warnings` leaves the warnings out of the report altogether
    let dir = tempfile::tempdir().expect("tempdir");
    let attempts = run_two(
        dir.path(),
        "pytest",
        tests,
        &[wrong],
        &format!("pytest(a, select: \"test_fixture\", files: {conftest})"),
    );
    assert_eq!(attempts[0].0, "pass", "{attempts:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let attempts = run_two(
        dir.path(),
        "pytest",
        tests,
        &[wrong, right],
        &format!("pytest(a, args: [\"-p\", \"no:warnings\"], files: {conftest})"),
    );
    assert_eq!(
        attempts[0].1,
        "pytest: the tests failed (1 failed, 1 passed):\n\
         FAILED test_solution.py::test_add - assert -1 == 5\n\
         == FAILURES ==\n\
         ___ test_add ___\n\
         test_solution.py:8: in test_add\n    assert add(2, 3) == 5\n\
         E   assert -1 == 5\nE    +  where -1 = add(2, 3)"
    );
}

#[test]
fn unittest_takes_the_same_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tests = "import unittest\nfrom solution import add\n\n\n\
class T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), int(open('five.txt').read()))\n\n    \
def test_other(self):\n        self.assertEqual(add(1, 1), 3)\n";
    let right = "def add(a, b):\n    return a + b\n";
    let attempts = run_two(
        dir.path(),
        "unittest",
        tests,
        &[right],
        r#"unittest(a, select: "test_add", files: {"five.txt": "5"})"#,
    );
    assert_eq!(attempts[0].0, "pass", "{attempts:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let attempts = run_two(
        dir.path(),
        "unittest",
        tests,
        &[right, right],
        r#"unittest(a, files: {"five.txt": "5"})"#,
    );
    let f = &attempts[0].1;
    assert!(
        f.starts_with(
            "unittest: the tests failed (Ran 2 tests; FAILED (failures=1)):\nFAIL: test_other"
        ),
        "{f}"
    );
}

#[test]
fn mypy_gives_the_type_errors_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let untyped = "def add(a, b):\n    return a + b\n";
    let mistyped = "def add(a: int, b: int) -> int:\n    return f\"{a}{b}\"\n";
    let typed = "def add(a: int, b: int) -> int:\n    return a + b\n";
    let attempts = run_two(
        dir.path(),
        "mypy",
        STUB,
        &[untyped, mistyped, typed],
        "mypy(strict: true)",
    );
    insta::assert_snapshot!(shown(&attempts), @r#"
    attempt 1: fail
    mypy: mypy --strict found 1 error:
    line 1, column 1: Function is missing a type annotation  [no-untyped-def]
        def add(a, b):

    attempt 2: fail
    mypy: mypy --strict found 1 error:
    line 2, column 12: Incompatible return value type (got "str", expected "int")  [return-value]
        return f"{a}{b}"

    attempt 3: pass
    "#);
    // without strict, the untyped code passes
    let dir = tempfile::tempdir().expect("tempdir");
    let attempts = run_two(dir.path(), "mypy", STUB, &[untyped], "mypy");
    assert_eq!(attempts[0].0, "pass", "{attempts:?}");
}

/// `args:` are fixed text: a value is refused at check time (E0216).
#[test]
fn runner_args_are_fixed_text() {
    for guard in [
        "pytest(tests, args: [flag])",
        "unittest(tests, args: [\"-k\", flag])",
        "mypy(args: [flag])",
    ] {
        let source = format!(
            r#"use std.{{pytest, unittest, mypy}}
generator g = replay("answers.jsonl")
action code(tests: Code<python>, flag: Text) -> Code<python> {{
  :generate g "code"
  :guard {guard}
}}
"#
        );
        let checked = check_source("flow.guardflow", &source);
        let errors: Vec<Code> = checked
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.code)
            .collect();
        assert_eq!(errors, vec![Code::E0216], "{guard}");
    }
}
