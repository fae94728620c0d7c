//! The benchmark suite that ships (`bench/suite/`): every task directory
//! holds its files; its workflow checks clean with one generator to
//! rebind; its pytest suite passes the reference solution and fails the
//! broken one, run plainly and through the workflow's own `pytest` guard
//! with recorded answers (the reference accepted at attempt 1; broken,
//! then reference, accepted at attempt 2 with the failing tests named in
//! the feedback); and the workflows' `test` items pass. The tasks are
//! discovered, so a new directory is covered without a change here.
//! pytest runs for real (scripts/test.sh installs it); nothing skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{bin, check_path, render_all, run_bounded, Ran};

const SUITE: &str = "bench/suite";

/// The paper's probes and the reference framework's TDD tasks: the suite
/// may grow, never lose one of these.
const REQUIRED: [&str; 6] = [
    "lru",
    "password",
    "template",
    "stack",
    "calculator",
    "queue",
];

/// Generous: a pytest run of a suite takes well under a second.
const LIMIT: Duration = Duration::from_secs(300);

struct Task {
    name: String,
    dir: PathBuf,
}

impl Task {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name))
            .unwrap_or_else(|e| panic!("{}: {e}", self.file(name).display()))
    }

    /// The task's pytest suite: `test_<name>.py`.
    fn tests_name(&self) -> String {
        format!("test_{}.py", self.name)
    }

    fn workflow(&self) -> PathBuf {
        self.file("task.guardflow")
    }
}

/// Every directory of the suite, sorted by name.
fn tasks() -> Vec<Task> {
    let mut tasks: Vec<Task> = std::fs::read_dir(SUITE)
        .unwrap_or_else(|e| panic!("{SUITE}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .map(|dir| Task {
            name: dir
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned(),
            dir,
        })
        .collect();
    tasks.sort_by(|a, b| a.name.cmp(&b.name));
    tasks
}

/// Runs `tests` (written as `test_solution.py`) against `solution`
/// (written as `solution.py`) with the `python3` on PATH, in an empty
/// directory, so a solution that needs another file of the task fails.
fn plain_pytest(tests: &str, solution: &str) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("test_solution.py"), tests).expect("writes the tests");
    std::fs::write(dir.path().join("solution.py"), solution).expect("writes the solution");
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "--tb=no",
        "-rf",
        "-p",
        "no:cacheprovider",
        "test_solution.py",
    ])
    .current_dir(dir.path())
    .env("COLUMNS", "200");
    run_bounded(cmd, LIMIT)
}

/// The ids of the failing tests a `-rf` summary lists
/// (`FAILED test_solution.py::test_x[param] - …`).
fn failed_ids(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("FAILED "))
        .map(|l| l.split(" - ").next().unwrap_or(l).trim().to_string())
        .collect()
}

/// The count pytest's last line gives for `word` (`3 failed, 20 passed in …`).
fn count(out: &str, word: &str) -> usize {
    let last = out.lines().rev().find(|l| l.contains(" in ")).unwrap_or("");
    last.split(',')
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let n = words.next()?.trim_start_matches('=').trim();
            (words.next()? == word).then(|| n.parse().ok())?
        })
        .next()
        .unwrap_or(0)
}

/// Runs the task's workflow with `answers` recorded for `implement`,
/// attempt by attempt, as a model would give them (a fenced block).
fn run_workflow(task: &Task, answers: &[&str]) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let replay = dir.path().join("answers.jsonl");
    let lines: String = answers
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let output = format!("Here is the module.\n\n```python\n{code}```\n");
            format!(
                "{}\n",
                serde_json::json!({"action": "implement", "attempt": i + 1, "output": output})
            )
        })
        .collect();
    std::fs::write(&replay, lines).expect("writes the recording");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(task.workflow())
        .arg("--replay")
        .arg(&replay)
        .args(["--json", "--no-store"]);
    run_bounded(cmd, LIMIT)
}

/// The (verdict, feedback) of each attempt of `implement`.
fn verdicts(ran: &Ran) -> Vec<(String, String)> {
    ran.attempts()
        .iter()
        .filter(|a| a["action"] == "implement")
        .map(|a| {
            (
                a["verdict"].as_str().unwrap_or("").to_string(),
                a["feedback"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn report(ran: &Ran) -> serde_json::Value {
    ran.events()
        .into_iter()
        .find(|e| e["event"] == "report")
        .map(|e| e["report"].clone())
        .unwrap_or_else(|| panic!("no report:\n{}", ran.all()))
}

#[test]
fn every_task_directory_holds_its_files_and_the_readme_lists_it() {
    let tasks = tasks();
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    for required in REQUIRED {
        assert!(
            names.contains(&required),
            "{SUITE}/{required} is missing: {names:?}"
        );
    }
    let readme = std::fs::read_to_string(Path::new(SUITE).join("README.md")).expect("README");
    for target in readme
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
    {
        let path = target.split('#').next().unwrap_or(target);
        if !path.is_empty() && !path.contains("://") {
            assert!(
                Path::new(SUITE).join(path).exists(),
                "{SUITE}/README.md links to `{target}`, which does not exist"
            );
        }
    }
    for task in &tasks {
        for file in ["spec.md", "task.guardflow", "reference.py", "broken.py"] {
            assert!(
                task.file(file).is_file(),
                "{}/{file} is missing",
                task.dir.display()
            );
        }
        assert!(
            task.file(&task.tests_name()).is_file(),
            "{} has no {}",
            task.dir.display(),
            task.tests_name()
        );
        assert!(
            readme.contains(&format!("[`{}`]({}/spec.md)", task.name, task.name)),
            "README.md does not list `{}` with a link to its spec",
            task.name
        );
        // the tests import from `solution`, the module the guard writes,
        // and the spec names everything they import
        let tests = task.read(&task.tests_name());
        let spec = task.read("spec.md");
        let imported: Vec<&str> = tests
            .lines()
            .filter_map(|l| l.strip_prefix("from solution import "))
            .flat_map(|names| names.split(','))
            .map(str::trim)
            .collect();
        assert!(
            !imported.is_empty(),
            "{} imports nothing from solution",
            task.tests_name()
        );
        for name in imported {
            assert!(
                spec.contains(&format!("`{name}")),
                "{}/spec.md does not name `{name}`, which the tests import",
                task.name
            );
        }
    }
}

/// Prints each module a Python file imports that is not in the standard
/// library, as `FILE: MODULE`.
const NON_STDLIB_IMPORTS: &str = r#"
import ast, sys
for path in sys.argv[1:]:
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else ["." * node.level]
        else:
            continue
        for name in names:
            if name.split(".")[0] not in sys.stdlib_module_names:
                print(f"{path}: {name}")
"#;

/// A simulated model answers with these files as they are: each is one
/// module that needs nothing but the standard library.
#[test]
fn reference_and_broken_solutions_are_single_files_of_the_standard_library() {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", NON_STDLIB_IMPORTS]);
    for task in tasks() {
        cmd.arg(task.file("reference.py"))
            .arg(task.file("broken.py"));
    }
    let ran = run_bounded(cmd, LIMIT);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(ran.stdout, "", "imports outside the standard library");
}

#[test]
fn every_workflow_checks_clean_is_formatted_and_has_one_generator_a_bench_can_rebind() {
    for task in tasks() {
        let o = Command::new(bin())
            .args(["check", "--deny-warnings"])
            .arg(task.workflow())
            .output()
            .expect("runs guardflow check");
        assert_eq!(
            o.status.code(),
            Some(0),
            "guardflow check {}:\n{}{}",
            task.workflow().display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let o = Command::new(bin())
            .args(["fmt", "--check"])
            .arg(task.workflow())
            .output()
            .expect("runs guardflow fmt");
        assert_eq!(
            o.status.code(),
            Some(0),
            "guardflow fmt --check {}:\n{}{}",
            task.workflow().display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let checked = check_path(&task.workflow());
        let program = checked
            .program
            .as_ref()
            .unwrap_or_else(|| panic!("{}:\n{}", task.name, render_all(&checked)));
        let named: Vec<&str> = program
            .generators
            .iter()
            .map(|g| g.name.as_str())
            .filter(|n| !n.contains('#'))
            .collect();
        assert_eq!(named, ["coder"], "{}: the named generators", task.name);
        let implement = program
            .actions
            .iter()
            .find(|a| a.name == "implement")
            .unwrap_or_else(|| panic!("{} has no action `implement`", task.name));
        assert_eq!(
            program.generators[implement.generator.index()].name,
            "coder",
            "{}",
            task.name
        );
        assert_eq!(
            implement.retry,
            Some(3),
            "{}: `implement`'s :retry",
            task.name
        );
        assert!(
            program.task(&task.name).is_some(),
            "{} has no task named after its directory",
            task.name
        );
    }
}

#[test]
fn every_suite_passes_its_reference_and_fails_its_broken_solution() {
    for task in tasks() {
        let tests = task.read(&task.tests_name());
        let good = plain_pytest(&tests, &task.read("reference.py"));
        assert_eq!(
            good.code,
            Some(0),
            "{}: the reference fails (is pytest on PATH? run scripts/test.sh):\n{}",
            task.name,
            good.all()
        );
        assert!(
            count(&good.stdout, "passed") >= 10,
            "{}: a thorough suite has at least 10 tests:\n{}",
            task.name,
            good.stdout
        );
        let bad = plain_pytest(&tests, &task.read("broken.py"));
        // 1: tests ran and some failed (not 2, an error collecting them)
        assert_eq!(
            bad.code,
            Some(1),
            "{}: the broken solution:\n{}",
            task.name,
            bad.all()
        );
        assert!(
            !failed_ids(&bad.stdout).is_empty() && count(&bad.stdout, "passed") >= 1,
            "{}: the broken solution is plausible (it passes some tests) and wrong (it fails some):\n{}",
            task.name,
            bad.stdout
        );
    }
}

#[test]
fn the_workflow_accepts_the_reference_at_the_first_attempt() {
    for task in tasks() {
        let ran = run_workflow(&task, &[&task.read("reference.py")]);
        assert_eq!(ran.code, Some(0), "{}:\n{}", task.name, ran.all());
        let attempts = verdicts(&ran);
        assert_eq!(attempts.len(), 1, "{}:\n{attempts:?}", task.name);
        assert_eq!(attempts[0].0, "pass", "{}:\n{attempts:?}", task.name);
        let report = report(&ran);
        assert_eq!(report["success"], true, "{}", task.name);
        assert_eq!(report["generator_calls"], 1, "{}", task.name);
        assert_eq!(
            report["result"].as_str().map(str::trim_end),
            Some(task.read("reference.py").trim_end()),
            "{}: the result is the reference module",
            task.name
        );
    }
}

#[test]
fn the_workflow_rejects_the_broken_solution_naming_its_failing_tests_then_accepts_the_reference() {
    for task in tasks() {
        let broken = task.read("broken.py");
        let plain = plain_pytest(&task.read(&task.tests_name()), &broken);
        let failing = failed_ids(&plain.stdout);
        assert!(!failing.is_empty(), "{}:\n{}", task.name, plain.all());

        let ran = run_workflow(&task, &[&broken, &task.read("reference.py")]);
        assert_eq!(ran.code, Some(0), "{}:\n{}", task.name, ran.all());
        let attempts = verdicts(&ran);
        assert_eq!(attempts.len(), 2, "{}:\n{attempts:?}", task.name);
        let (verdict, feedback) = &attempts[0];
        assert_eq!(verdict, "fail", "{}: attempt 1:\n{feedback}", task.name);
        assert!(
            feedback.starts_with("pytest: the tests failed"),
            "{}: attempt 1 is rejected by pytest:\n{feedback}",
            task.name
        );
        for id in &failing {
            assert!(
                feedback.contains(id.as_str()),
                "{}: the feedback does not name the failing test `{id}`:\n{feedback}",
                task.name
            );
        }
        assert_eq!(attempts[1].0, "pass", "{}:\n{attempts:?}", task.name);
        let report = report(&ran);
        assert_eq!(report["success"], true, "{}", task.name);
        assert_eq!(report["generator_calls"], 2, "{}", task.name);
    }
}

#[test]
fn the_workflows_test_items_pass() {
    let tasks = tasks();
    let mut cmd = Command::new(bin());
    cmd.args(["test", SUITE]);
    let ran = run_bounded(cmd, LIMIT);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    for task in &tasks {
        for name in [
            "the reference solution is accepted at the first attempt",
            "a broken solution is rejected, then the reference is accepted",
        ] {
            let line = format!("{} :: {name} ... ok", task.workflow().display());
            assert!(ran.stdout.contains(&line), "no `{line}`:\n{}", ran.all());
        }
    }
    assert!(
        ran.stdout
            .contains(&format!("{} passed, 0 failed", 2 * tasks.len())),
        "{}",
        ran.all()
    );
}
