//! `pytest(tests)` and `unittest(tests)`: the generated tests run against
//! the generated code in a fresh directory, with a timeout; and what the
//! Python guards share (the directory and its files, running `python3`).
//!
//! The artifact is written as `solution.py` and the tests as
//! `test_solution.py`, so tests import what they test with
//! `from solution import …`; `files:` are written beside them. The
//! feedback keeps the failures first: the runner's one-line summary of
//! each failing test, then the failures themselves, then anything else
//! (warnings last), within [`FEEDBACK_BYTES`], and says what was cut.

use std::path::Path;
use std::time::Duration;

use super::process::{self, Output, Spec};
use super::sandbox::{Confine, Scratch};
use crate::runtime::Verdict;

/// The most feedback a test runner's report becomes (bytes).
pub const FEEDBACK_BYTES: usize = 4000;

/// The file the code under test is written to.
pub const CODE_FILE: &str = "solution.py";
/// The file the tests are written to.
pub const TESTS_FILE: &str = "test_solution.py";
/// Names a `files:` entry may not take: the runners' own files.
pub const RESERVED: [&str; 3] = [CODE_FILE, TESTS_FILE, "guardflow_report.py"];

/// Which runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Pytest,
    Unittest,
}

/// The options of `pytest(…)` and `unittest(…)` besides the tests and
/// the sandbox's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// More arguments for the runner (fixed text: `[Program]`), before
    /// the tests' file.
    pub args: Vec<String>,
    /// A `-k` expression choosing tests (empty: all); always passed as
    /// one argument bound to `-k`, never as an option of its own.
    pub select: String,
    /// Files written beside the tests (`conftest.py`, data).
    pub files: Vec<(String, String)>,
}

impl Runner {
    fn argv(self, options: &Options) -> Vec<String> {
        let head: &[&str] = match self {
            // no cache files, short tracebacks, a summary line per
            // failure and error
            Runner::Pytest => &[
                "python3",
                "-m",
                "pytest",
                "-q",
                "--tb=short",
                "-rfE",
                "--no-header",
                "-p",
                "no:cacheprovider",
            ],
            Runner::Unittest => &["python3", "-m", "unittest", "-q"],
        };
        let mut argv: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        argv.extend(options.args.iter().cloned());
        if !options.select.is_empty() {
            // `-kEXPR`: the expression is the option's value even when it
            // starts with `-`
            argv.push(format!("-k{}", options.select));
        }
        argv.push(match self {
            Runner::Pytest => TESTS_FILE.to_string(),
            Runner::Unittest => "test_solution".to_string(),
        });
        argv
    }
}

/// A fresh directory (`prefix…`) holding the code as `solution.py`, the
/// tests as `test_solution.py`, `extra` (the runner's own files) and
/// `files` (the workflow's, by name); with its policy. A name of `files`
/// that is not a plain file name or is one of [`RESERVED`] is fatal.
pub fn prepare(
    prefix: &str,
    code: &str,
    tests: &str,
    extra: &[(&str, &str)],
    files: &[(String, String)],
    confine: &Confine,
    timeout: Duration,
) -> Result<Scratch, Verdict> {
    if let Some((name, _)) = files.iter().find(|(n, _)| RESERVED.contains(&n.as_str())) {
        return Err(Verdict::fatal(format!(
            "`{name}` in `files:` is a name the runner uses itself ({}); give the file another name",
            RESERVED.join(", ")
        )));
    }
    let scratch = Scratch::new(prefix, confine, timeout).map_err(Verdict::fatal)?;
    let write = |dir: &Path| -> std::io::Result<()> {
        std::fs::write(dir.join(CODE_FILE), code)?;
        std::fs::write(dir.join(TESTS_FILE), tests)?;
        for (name, text) in extra {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    };
    write(scratch.path()).map_err(|e| Verdict::fatal(format!("cannot write the tests: {e}")))?;
    process::write_named(scratch.path(), files).map_err(Verdict::fatal)?;
    Ok(scratch)
}

/// Runs `argv` (a `python3 -m …` line) in `scratch`, with `env` added;
/// gives the output and the directory (still there, for reports the
/// program wrote). Not starting is fatal.
pub async fn run_python(
    scratch: Scratch,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    confine: &Confine,
) -> Result<(Output, tempfile::TempDir), Verdict> {
    let Scratch { dir, policy } = scratch;
    let mut all_env = vec![
        ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
        ("PYTHONHASHSEED".to_string(), "0".to_string()),
    ];
    all_env.extend(env);
    let spec = Spec {
        command: String::new(),
        argv: Some(argv),
        stdin: Vec::new(),
        env: all_env,
        cwd: dir.path().to_path_buf(),
        timeout,
        sandbox: policy,
        max_output: confine.max_output,
    };
    match process::run(spec).await {
        Ok(out) => Ok((out, dir)),
        Err(e) => Err(Verdict::fatal(format!("cannot run python3: {e}"))),
    }
}

/// The fatal verdict for a Python module that is not installed, when
/// the output says so.
pub fn missing_module(out: &Output, module: &str) -> Option<Verdict> {
    let said = format!("No module named {module}");
    (out.status == Some(127) || out.stdout.contains(&said) || out.stderr.contains(&said)).then(
        || {
            if out.status == Some(127) {
                Verdict::fatal("python3 is not installed")
            } else {
                Verdict::fatal(format!(
                    "{module} is not installed: `python3 -m pip install {module}` (the tests: \
                     scripts/test.sh puts it in .venv)"
                ))
            }
        },
    )
}

/// Runs `tests` against `code` with `runner`, in the sandbox: the
/// program writes only its fresh directory and, unless `confine` says
/// otherwise, has no network and no inherited secret.
pub async fn run_tests(
    runner: Runner,
    code: &str,
    tests: &str,
    options: &Options,
    timeout: Duration,
    confine: &Confine,
) -> Verdict {
    let scratch = match prepare(
        "guardflow-tests-",
        code,
        tests,
        &[],
        &options.files,
        confine,
        timeout,
    ) {
        Ok(s) => s,
        Err(v) => return v,
    };
    // pytest cuts each summary line at the terminal's width
    let env = vec![("COLUMNS".to_string(), "160".to_string())];
    let (out, _dir) = match run_python(scratch, runner.argv(options), env, timeout, confine).await {
        Ok(ran) => ran,
        Err(v) => return v,
    };
    let all = format!("{}{}", out.stdout, out.stderr);
    let notes = process::notes(&out, confine);
    if out.timed_out {
        return Verdict::fail(format!(
            "the tests did not finish within {} (an endless loop?); their last output:\n{}{notes}",
            crate::runtime::guard::show_duration(timeout),
            process::tail(&all, 20, 2000)
        ));
    }
    if runner == Runner::Pytest {
        if let Some(v) = missing_module(&out, "pytest") {
            return v;
        }
    } else if out.status == Some(127) {
        return Verdict::fatal("python3 is not installed");
    }
    let selected = if options.select.is_empty() {
        String::new()
    } else {
        format!(" matching `{}`", options.select)
    };
    let no_tests = format!(
        "the tests collected no test{selected}: name test functions `test_…` (or \
         unittest.TestCase methods `test_…`)"
    );
    match (runner, out.status) {
        (Runner::Unittest, Some(0)) if unittest_ran_none(&out.stderr) => Verdict::fail(no_tests),
        (_, Some(0)) => Verdict::Pass,
        // pytest: 4 is a usage error (the workflow's options), 5 means no
        // tests were collected
        (Runner::Pytest, Some(4)) => Verdict::fatal(format!(
            "pytest refused its options ({}):\n{}",
            runner.argv(options)[9..].join(" "),
            process::tail(&all, 20, 2000)
        )),
        (Runner::Pytest, Some(5)) => Verdict::fail(no_tests),
        (Runner::Unittest, Some(5)) => Verdict::fail(no_tests),
        (Runner::Pytest, _) => Verdict::fail(format!(
            "{}{notes}",
            pytest_feedback(&out.stdout, &out.stderr, FEEDBACK_BYTES)
        )),
        (Runner::Unittest, _) => Verdict::fail(format!(
            "{}{notes}",
            unittest_feedback(&out.stdout, &out.stderr, FEEDBACK_BYTES)
        )),
    }
}

/// Whether unittest's report says it ran no test.
fn unittest_ran_none(stderr: &str) -> bool {
    stderr.lines().any(|l| l.starts_with("Ran 0 tests"))
}

/// Text built within a byte budget, whole lines at a time.
struct Budget {
    text: String,
    max: usize,
}

impl Budget {
    fn new(max: usize) -> Budget {
        Budget {
            text: String::new(),
            max,
        }
    }

    fn left(&self) -> usize {
        self.max.saturating_sub(self.text.len())
    }

    /// Adds `line` and a line break when it fits.
    fn line(&mut self, line: &str) -> bool {
        if line.len() < self.left() {
            self.text.push_str(line);
            self.text.push('\n');
            true
        } else {
            false
        }
    }

    /// Adds `lines` while they fit, keeping `reserve` bytes for what
    /// comes after; returns how many did not fit. A first line too long
    /// for the room is cut at a character boundary with `…`.
    fn lines(&mut self, lines: &[&str], reserve: usize) -> usize {
        for (i, line) in lines.iter().enumerate() {
            let room = self.left().saturating_sub(reserve);
            if line.len() < room {
                self.text.push_str(line);
                self.text.push('\n');
                continue;
            }
            if i == 0 && room > 80 {
                let mut end = room - 4;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                self.text.push_str(&line[..end]);
                self.text.push_str("…\n");
            }
            return lines.len() - i;
        }
        0
    }
}

/// What a cut left out, said in the feedback.
fn cut_note(n: usize, what: &str) -> String {
    format!(
        "(… {n} more line{} of {what} cut: the feedback keeps {FEEDBACK_BYTES} bytes)",
        if n == 1 { "" } else { "s" }
    )
}

/// A pytest section header's title (`==== FAILURES ====` → `FAILURES`).
fn section_title(line: &str) -> Option<&str> {
    let t = line.trim();
    if t.len() >= 7 && t.starts_with("==") && t.ends_with("==") {
        let inner = t.trim_matches('=').trim();
        if !inner.is_empty() {
            return Some(inner);
        }
    }
    None
}

/// Whether `line` is pytest's closing count (`2 failed, 1 passed in
/// 0.03s`), and the counts without the time.
fn result_line(line: &str) -> Option<&str> {
    let t = line.trim().trim_matches('=').trim();
    let i = t.rfind(" in ")?;
    let counts = &t[..i];
    let words = [
        "passed",
        "failed",
        "error",
        "errors",
        "skipped",
        "xfailed",
        "xpassed",
        "deselected",
        "warning",
        "warnings",
        "no tests ran",
    ];
    let time = t[i + 4..].trim();
    (time.ends_with('s') || time.ends_with(')'))
        .then_some(())
        .and(
            counts
                .split(", ")
                .all(|part| words.iter().any(|w| part.ends_with(w)))
                .then_some(counts),
        )
}

/// A test's header in pytest's report (`______ test_add ______`, as
/// wide as the terminal) as `___ test_add ___`; other lines as they are.
fn compact_rule(line: &str) -> String {
    let t = line.trim();
    let inner = t.trim_matches('_');
    let name = inner.trim();
    if t.starts_with("___")
        && t.ends_with("___")
        && inner.starts_with(' ')
        && inner.ends_with(' ')
        && !name.is_empty()
    {
        return format!("___ {name} ___");
    }
    line.to_string()
}

/// pytest's report laid out for the model: the counts, the short test
/// summary (which tests failed, and how), the failures and errors, then
/// the other sections, the warnings summary last; within `max` bytes,
/// the cuts said. Without any section (pytest could not start), the
/// output's end.
pub fn pytest_feedback(stdout: &str, stderr: &str, max: usize) -> String {
    let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut result = None;
    for line in stdout.lines() {
        if let Some(counts) = result_line(line) {
            result = Some(counts);
            continue;
        }
        match section_title(line) {
            Some(title) => sections.push((title, Vec::new())),
            None => {
                if let Some((_, lines)) = sections.last_mut() {
                    lines.push(line);
                }
            }
        }
    }
    let mut b = Budget::new(max);
    b.line(&match result {
        Some(counts) => format!("the tests failed ({counts}):"),
        None => "the tests failed:".to_string(),
    });
    if sections.is_empty() {
        let all = format!("{stdout}{stderr}");
        b.line(&process::tail(&all, 60, max.saturating_sub(200)));
        return b.text.trim_end().to_string();
    }
    let order = |title: &str| match title {
        "short test summary info" => 0,
        "FAILURES" | "ERRORS" => 1,
        "warnings summary" => 3,
        _ => 2,
    };
    let mut ordered: Vec<&(&str, Vec<&str>)> = sections.iter().collect();
    ordered.sort_by_key(|(title, _)| order(title));
    for (title, lines) in ordered {
        let compact: Vec<String> = {
            let mut l: Vec<String> = lines.iter().map(|x| compact_rule(x)).collect();
            while l.last().is_some_and(|x| x.trim().is_empty()) {
                l.pop();
            }
            l
        };
        let lines: Vec<&str> = compact.iter().map(String::as_str).collect();
        if lines.is_empty() {
            continue;
        }
        match order(title) {
            0 => {
                // every failing test's line, up to half the feedback
                let reserve = b.left().saturating_sub(max / 2).max(300);
                let cut = b.lines(&lines, reserve);
                if cut > 0 {
                    b.line(&cut_note(cut, "the summary"));
                }
            }
            3 => {
                let size: usize = lines.iter().map(|l| l.len() + 1).sum();
                if size + title.len() + 8 < b.left().saturating_sub(100) {
                    b.line(&format!("== {title} =="));
                    b.lines(&lines, 0);
                } else {
                    b.line(&format!(
                        "(the warnings summary, {} lines, was left out to keep the failures)",
                        lines.len()
                    ));
                }
            }
            _ => {
                if b.left() < 300 {
                    b.line(&format!(
                        "(the section `{title}`, {} lines, was cut: the feedback keeps {FEEDBACK_BYTES} bytes)",
                        lines.len()
                    ));
                    continue;
                }
                b.line(&format!("== {title} =="));
                let cut = b.lines(&lines, 150);
                if cut > 0 {
                    b.line(&cut_note(cut, title));
                }
            }
        }
    }
    if !stderr.trim().is_empty() && b.left() > 300 {
        b.line("stderr:");
        let room = b.left().saturating_sub(50);
        b.line(&process::tail(stderr, 20, room));
    }
    b.text.trim_end().to_string()
}

/// unittest's report laid out for the model: the result (`FAILED
/// (failures=1)`), each failure and error block, then what else the
/// tests printed (warnings), within `max` bytes, the cuts said.
pub fn unittest_feedback(stdout: &str, stderr: &str, max: usize) -> String {
    const RULE_EQ: &str = "======================================================================";
    const RULE_DASH: &str =
        "----------------------------------------------------------------------";
    let lines: Vec<&str> = stderr.lines().collect();
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    let mut other: Vec<&str> = Vec::new();
    let mut result: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next = lines.get(i + 1).copied().unwrap_or("");
        if line == RULE_EQ && (next.starts_with("FAIL:") || next.starts_with("ERROR:")) {
            blocks.push(vec![next]);
            i += 2;
            continue;
        }
        if line == RULE_DASH && next.starts_with("Ran ") {
            // `Ran N tests in 0.001s`, then the verdict
            result.push(next.split(" in ").next().unwrap_or(next));
            result.extend(lines[i + 2..].iter().filter(|l| !l.trim().is_empty()));
            break;
        }
        match blocks.last_mut() {
            Some(block) if line != RULE_DASH => block.push(line),
            Some(_) => {}
            None => other.push(line),
        }
        i += 1;
    }
    let mut b = Budget::new(max);
    if result.is_empty() {
        b.line("the tests failed:");
        b.line(&process::tail(
            &format!("{stdout}{stderr}"),
            60,
            max.saturating_sub(200),
        ));
        return b.text.trim_end().to_string();
    }
    b.line(&format!("the tests failed ({}):", result.join("; ")));
    for (n, block) in blocks.iter().enumerate() {
        let mut block = block.clone();
        while block.last().is_some_and(|x| x.trim().is_empty()) {
            block.pop();
        }
        if b.left() < 300 {
            b.line(&format!(
                "(… {} more failing test{} cut: the feedback keeps {FEEDBACK_BYTES} bytes)",
                blocks.len() - n,
                if blocks.len() - n == 1 { "" } else { "s" }
            ));
            break;
        }
        let cut = b.lines(&block, 150);
        if cut > 0 {
            b.line(&cut_note(cut, "this failure"));
        }
    }
    let other: Vec<&str> = other
        .into_iter()
        .chain(stdout.lines())
        .filter(|l| !l.trim().is_empty())
        .collect();
    if !other.is_empty() {
        let size: usize = other.iter().map(|l| l.len() + 1).sum();
        if size + 20 < b.left().saturating_sub(100) {
            b.line("other output:");
            b.lines(&other, 0);
        } else {
            b.line(&format!(
                "(the tests' other output (warnings, prints), {} lines, was left out to keep the failures)",
                other.len()
            ));
        }
    }
    b.text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "def add(a, b):\n    return a + b\n";
    const WRONG: &str = "def add(a, b):\n    return a - b\n";
    const UNITTESTS: &str = "import unittest\nfrom solution import add\n\n\
class T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n";
    const PYTESTS: &str =
        "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n";

    fn c() -> Confine {
        Confine::default()
    }

    fn none() -> Options {
        Options::default()
    }

    fn no_skip(v: &Verdict) {
        if let Verdict::Fatal(f) = v {
            // never a silent skip: the test command (scripts/test.sh)
            // puts pytest in a project-local environment
            panic!("{f}\nrun the tests with scripts/test.sh, which installs pytest in .venv");
        }
    }

    #[tokio::test]
    async fn unittest_passes_right_code_and_reports_the_failing_assertion() {
        let t = Duration::from_secs(60);
        assert_eq!(
            run_tests(Runner::Unittest, CODE, UNITTESTS, &none(), t, &c()).await,
            Verdict::Pass
        );
        let v = run_tests(Runner::Unittest, WRONG, UNITTESTS, &none(), t, &c()).await;
        let f = v.feedback();
        assert!(matches!(v, Verdict::Fail(_)), "{v:?}");
        assert!(f.contains("test_add") && f.contains("-1 != 5"), "{f}");
        assert!(
            f.starts_with("the tests failed (Ran 1 test; FAILED (failures=1)):\nFAIL: test_add"),
            "{f}"
        );
        let none_at_all = run_tests(Runner::Unittest, CODE, "x = 1\n", &none(), t, &c()).await;
        assert!(
            none_at_all.feedback().contains("collected no test"),
            "{none_at_all:?}"
        );
    }

    #[tokio::test]
    async fn pytest_passes_right_code_and_reports_the_failing_test() {
        let t = Duration::from_secs(60);
        let ok = run_tests(Runner::Pytest, CODE, PYTESTS, &none(), t, &c()).await;
        no_skip(&ok);
        assert_eq!(ok, Verdict::Pass);
        let v = run_tests(Runner::Pytest, WRONG, PYTESTS, &none(), t, &c()).await;
        let f = v.feedback();
        assert!(f.contains("FAILED test_solution.py::test_add"), "{f}");
        assert!(f.contains("assert -1 == 5"), "{f}");
        let none = run_tests(Runner::Pytest, CODE, "x = 1\n", &none(), t, &c()).await;
        assert!(none.feedback().contains("no test"), "{none:?}");
    }

    /// Many warnings and a long failure: the summary and the first
    /// failures stay, the warnings go first, and the cut is said.
    #[tokio::test]
    async fn pytest_feedback_keeps_the_failures_before_the_warnings() {
        let tests = "import warnings\nfrom solution import add\n\n\
def test_noisy():\n    for i in range(300):\n        warnings.warn(f'deprecated thing number {i}', DeprecationWarning)\n    assert add(2, 2) == 4\n\n\
def test_add():\n    for i in range(200):\n        warnings.warn(f'another warning {i}', UserWarning)\n    assert add(2, 3) == 5\n";
        let v = run_tests(
            Runner::Pytest,
            WRONG,
            tests,
            &none(),
            Duration::from_secs(60),
            &c(),
        )
        .await;
        no_skip(&v);
        let f = v.feedback();
        assert!(f.len() <= FEEDBACK_BYTES + 200, "{} bytes", f.len());
        assert!(
            f.starts_with("the tests failed (2 failed, 500 warnings):\nFAILED test_solution.py::test_noisy - assert 0 == 4"),
            "{f}"
        );
        assert!(
            f.contains("FAILED test_solution.py::test_add - assert -1 == 5"),
            "{f}"
        );
        assert!(f.contains("== FAILURES =="), "{f}");
        assert!(f.contains("E   assert -1 == 5"), "{f}");
        assert!(
            f.contains("(the warnings summary,")
                && f.contains("was left out to keep the failures)"),
            "{f}"
        );
        assert!(!f.contains("another warning 199"), "{f}");
    }

    #[tokio::test]
    async fn pytest_options_select_args_and_files() {
        let t = Duration::from_secs(60);
        let tests = "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\
def test_other():\n    assert add(1, 1) == 3\n\ndef test_fixture(answer):\n    assert answer == 42\n";
        let conftest = "import pytest\n\n@pytest.fixture\ndef answer():\n    return 42\n";
        let files = vec![("conftest.py".to_string(), conftest.to_string())];
        // -k selects: the failing test is not run
        let only_add = Options {
            select: "test_add or test_fixture".into(),
            files: files.clone(),
            ..Options::default()
        };
        let v = run_tests(Runner::Pytest, CODE, tests, &only_add, t, &c()).await;
        no_skip(&v);
        assert_eq!(v, Verdict::Pass);
        // without the selection, test_other fails; -x stops at it and
        // the fixture from conftest.py is found
        let all = Options {
            args: vec!["-x".into(), "-p".into(), "no:warnings".into()],
            files: files.clone(),
            ..Options::default()
        };
        let f = run_tests(Runner::Pytest, CODE, tests, &all, t, &c())
            .await
            .feedback()
            .to_string();
        assert!(
            f.starts_with("the tests failed (1 failed, 1 passed):"),
            "{f}"
        );
        assert!(f.contains("test_other"), "{f}");
        // a selection matching nothing
        let nothing = Options {
            select: "no_such_test".into(),
            ..Options::default()
        };
        let f = run_tests(Runner::Pytest, CODE, tests, &nothing, t, &c())
            .await
            .feedback()
            .to_string();
        assert!(f.contains("no test matching `no_such_test`"), "{f}");
        // a selection that looks like an option stays -k's value (as an
        // option of its own, `--version` would end pytest with status 0)
        let dash = Options {
            select: "--version".into(),
            ..Options::default()
        };
        let v = run_tests(Runner::Pytest, CODE, tests, &dash, t, &c()).await;
        assert!(
            v.feedback().contains("no test matching `--version`"),
            "{v:?}"
        );
        // options pytest does not know are the workflow's mistake
        let bad = Options {
            args: vec!["--no-such-option".into()],
            ..Options::default()
        };
        let v = run_tests(Runner::Pytest, CODE, tests, &bad, t, &c()).await;
        assert!(matches!(v, Verdict::Fatal(_)), "{v:?}");
        assert!(
            v.feedback()
                .contains("pytest refused its options (--no-such-option test_solution.py)"),
            "{v:?}"
        );
        // a reserved file name
        let clash = Options {
            files: vec![("solution.py".into(), "x".into())],
            ..Options::default()
        };
        let v = run_tests(Runner::Pytest, CODE, tests, &clash, t, &c()).await;
        assert!(v.feedback().contains("`solution.py` in `files:`"), "{v:?}");
        // unittest: -k and files
        let unit = Options {
            select: "test_add".into(),
            files: vec![("data.txt".into(), "5".into())],
            ..Options::default()
        };
        let utests = "import unittest\nfrom solution import add\n\n\
class T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(2, 3), int(open('data.txt').read()))\n\n    \
def test_other(self):\n        self.assertEqual(add(1, 1), 3)\n";
        assert_eq!(
            run_tests(Runner::Unittest, CODE, utests, &unit, t, &c()).await,
            Verdict::Pass
        );
    }

    #[tokio::test]
    async fn an_endless_loop_runs_out_of_time() {
        let looping = "def add(a, b):\n    while True:\n        pass\n";
        let v = run_tests(
            Runner::Unittest,
            looping,
            UNITTESTS,
            &none(),
            Duration::from_millis(500),
            &c(),
        )
        .await;
        assert!(
            v.feedback().contains("did not finish within 500ms"),
            "{v:?}"
        );
    }

    #[test]
    fn a_missing_runner_is_fatal_and_says_how_to_install_it() {
        let out = |status: i32, stderr: &str| Output {
            status: Some(status),
            stdout: String::new(),
            stderr: stderr.to_string(),
            timed_out: false,
            elapsed: Duration::ZERO,
            cut: None,
        };
        let v = missing_module(&out(1, "/usr/bin/python3: No module named mypy\n"), "mypy");
        assert_eq!(
            v,
            Some(Verdict::fatal(
                "mypy is not installed: `python3 -m pip install mypy` (the tests: \
                 scripts/test.sh puts it in .venv)"
            ))
        );
        assert_eq!(
            missing_module(&out(127, ""), "pytest"),
            Some(Verdict::fatal("python3 is not installed"))
        );
        // a module the tests import is the tests' business
        let theirs = "ModuleNotFoundError: No module named 'pytest_asyncio'";
        assert_eq!(missing_module(&out(2, theirs), "pytest"), None);
    }

    #[test]
    fn pytest_sections_are_reordered_and_cut() {
        let out = "F.                                [100%]\n\
=================================== FAILURES ===================================\n\
___ test_add ___\n\
test_solution.py:6: in test_add\n    assert add(2, 3) == 5\nE   assert -1 == 5\n\
=============================== warnings summary ===============================\n\
test_solution.py::test_add\n  /tmp/x/test_solution.py:5: DeprecationWarning: old\n\n\
-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html\n\
=========================== short test summary info ============================\n\
FAILED test_solution.py::test_add - assert -1 == 5\n\
1 failed, 1 passed, 1 warning in 0.02s\n";
        let f = pytest_feedback(out, "", FEEDBACK_BYTES);
        insta::assert_snapshot!(f, @r"
        the tests failed (1 failed, 1 passed, 1 warning):
        FAILED test_solution.py::test_add - assert -1 == 5
        == FAILURES ==
        ___ test_add ___
        test_solution.py:6: in test_add
            assert add(2, 3) == 5
        E   assert -1 == 5
        == warnings summary ==
        test_solution.py::test_add
          /tmp/x/test_solution.py:5: DeprecationWarning: old

        -- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html
        ");
        // a small budget: the summary and the failure's start stay, the
        // warnings go, and both cuts are said
        let f = pytest_feedback(out, "", 420);
        assert!(f.contains("FAILED test_solution.py::test_add"), "{f}");
        assert!(f.contains("was left out to keep the failures"), "{f}");
        assert!(f.len() <= 420, "{}", f.len());
        assert_eq!(result_line("== 3 passed in 0.01s =="), Some("3 passed"));
        assert_eq!(result_line("x in 3s"), None);
        assert_eq!(section_title("===== ERRORS ====="), Some("ERRORS"));
        assert_eq!(
            compact_rule("_______ test_add[1-2] _______"),
            "___ test_add[1-2] ___"
        );
        assert_eq!(
            compact_rule("____ TestT.test_a_b ____"),
            "___ TestT.test_a_b ___"
        );
        assert_eq!(compact_rule("a_b"), "a_b");
        assert_eq!(compact_rule("______"), "______");
    }
}
