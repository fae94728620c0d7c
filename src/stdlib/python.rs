//! `pytest(tests)` and `unittest(tests)`: the generated tests run against
//! the generated code in a fresh directory, with a timeout.
//!
//! The artifact is written as `solution.py` and the tests as
//! `test_solution.py`, so tests import what they test with
//! `from solution import …`. The feedback is the runner's failure
//! summary: failing test names, assertion messages, tracebacks' last lines.

use std::path::Path;
use std::time::Duration;

use super::process::{self, Spec};
use super::sandbox::{Confine, Policy};
use crate::runtime::Verdict;

/// Which runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Pytest,
    Unittest,
}

impl Runner {
    fn argv(self) -> Vec<String> {
        let argv: &[&str] = match self {
            // no cache files, short tracebacks, a summary line per failure
            Runner::Pytest => &[
                "python3",
                "-m",
                "pytest",
                "-q",
                "--tb=short",
                "-rf",
                "--no-header",
                "-p",
                "no:cacheprovider",
                "test_solution.py",
            ],
            Runner::Unittest => &["python3", "-m", "unittest", "-q", "test_solution"],
        };
        argv.iter().map(|s| s.to_string()).collect()
    }
}

/// Runs `tests` against `code` with `runner`, in the sandbox: the
/// program writes only its fresh directory and, unless `confine` says
/// otherwise, has no network and no inherited secret.
pub async fn run_tests(
    runner: Runner,
    code: &str,
    tests: &str,
    timeout: Duration,
    confine: &Confine,
) -> Verdict {
    let dir = match tempfile::Builder::new()
        .prefix("guardflow-tests-")
        .tempdir()
    {
        Ok(d) => d,
        Err(e) => return Verdict::fatal(format!("cannot make a temporary directory: {e}")),
    };
    if let Err(e) = write(dir.path(), code, tests) {
        return Verdict::fatal(format!("cannot write the tests: {e}"));
    }
    let spec = Spec {
        command: String::new(),
        argv: Some(runner.argv()),
        stdin: Vec::new(),
        env: vec![
            ("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string()),
            ("PYTHONHASHSEED".to_string(), "0".to_string()),
        ],
        cwd: dir.path().to_path_buf(),
        timeout,
        sandbox: Policy::new(dir.path(), confine, timeout),
        max_output: confine.max_output,
    };
    let out = match process::run(spec).await {
        Ok(o) => o,
        Err(e) => return Verdict::fatal(format!("cannot run python3: {e}")),
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
    match out.status {
        Some(0) => Verdict::Pass,
        Some(127) => Verdict::fatal("python3 is not installed"),
        _ if runner == Runner::Pytest && all.contains("No module named pytest") => {
            Verdict::fatal("pytest is not installed: `python3 -m pip install pytest` (the tests: scripts/test.sh puts it in .venv)")
        }
        // pytest: 5 means no tests were collected
        Some(5) if runner == Runner::Pytest => {
            Verdict::fail("the tests collected no test functions: name them `test_…`".to_string())
        }
        _ => Verdict::fail(format!(
            "the tests failed:\n{}{notes}",
            process::tail(&all, 60, 4000)
        )),
    }
}

fn write(dir: &Path, code: &str, tests: &str) -> std::io::Result<()> {
    std::fs::write(dir.join("solution.py"), code)?;
    std::fs::write(dir.join("test_solution.py"), tests)
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

    #[tokio::test]
    async fn unittest_passes_right_code_and_reports_the_failing_assertion() {
        let t = Duration::from_secs(60);
        assert_eq!(
            run_tests(Runner::Unittest, CODE, UNITTESTS, t, &c()).await,
            Verdict::Pass
        );
        let v = run_tests(Runner::Unittest, WRONG, UNITTESTS, t, &c()).await;
        let f = v.feedback();
        assert!(matches!(v, Verdict::Fail(_)), "{v:?}");
        assert!(f.contains("test_add") && f.contains("-1 != 5"), "{f}");
    }

    #[tokio::test]
    async fn pytest_passes_right_code_and_reports_the_failing_test() {
        let t = Duration::from_secs(60);
        let ok = run_tests(Runner::Pytest, CODE, PYTESTS, t, &c()).await;
        if let Verdict::Fatal(f) = &ok {
            // never a silent skip: the test command (scripts/test.sh)
            // puts pytest in a project-local environment
            panic!("{f}\nrun the tests with scripts/test.sh, which installs pytest in .venv");
        }
        assert_eq!(ok, Verdict::Pass);
        let v = run_tests(Runner::Pytest, WRONG, PYTESTS, t, &c()).await;
        let f = v.feedback();
        assert!(f.contains("FAILED test_solution.py::test_add"), "{f}");
        assert!(f.contains("assert -1 == 5"), "{f}");
        let none = run_tests(Runner::Pytest, CODE, "x = 1\n", t, &c()).await;
        assert!(none.feedback().contains("no test functions"), "{none:?}");
    }

    #[tokio::test]
    async fn an_endless_loop_runs_out_of_time() {
        let looping = "def add(a, b):\n    while True:\n        pass\n";
        let v = run_tests(
            Runner::Unittest,
            looping,
            UNITTESTS,
            Duration::from_millis(500),
            &c(),
        )
        .await;
        assert!(
            v.feedback().contains("did not finish within 500ms"),
            "{v:?}"
        );
    }
}
