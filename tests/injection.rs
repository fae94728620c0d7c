//! Values never become shell code: interpolating a value into anything run
//! as a program (`command(...)`, `cmd(...)`, a host's `Program` parameter)
//! is E0216 at check time, and `run` refuses such a workflow; the safe form,
//! `files: {...}`, hands hostile values to the program as files, where no
//! shell reads them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use guardflow::check::check_source;
use guardflow::diagnostics::Code;
use guardflow::stdlib::process::{file_var, write_files};

use crate::support::{bin, run_bounded, Ran};

const HOSTILE: &str = "x; echo INJECTED > pwned.txt; true";

/// The codes `check` reports for `source`, errors and warnings.
fn codes(source: &str) -> Vec<Code> {
    check_source("flow.guardflow", source)
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

/// `source` is refused with E0216 (and only E0216 among the errors), with
/// a message naming `value`.
fn refused(source: &str, value: &str) {
    let checked = check_source("flow.guardflow", source);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(!errors.is_empty(), "accepted:\n{source}");
    for d in &errors {
        assert_eq!(d.code, Code::E0216, "{}", d.message);
    }
    assert!(
        errors.iter().any(|d| d.message.contains(value)),
        "no message names `{value}`: {:?}",
        errors.iter().map(|d| &d.message).collect::<Vec<_>>()
    );
    assert!(
        errors
            .iter()
            .any(|d| d.help.as_deref().is_some_and(|h| h.contains("files:"))),
        "the help does not show the safe form"
    );
}

/// An action `act(spec: Text)` with `guard` as its `:guard`, and a task
/// calling it; `extra` goes before the action.
fn action_with_guard(extra: &str, guard: &str) -> String {
    format!(
        r#"use std.{{command}}
{extra}
generator model = llm(model: "m")
action act(spec: Text) -> Text {{
  :generate model "Write about {{spec}}"
  :guard {guard}
  :retry 1
}}
task main(spec: Text) {{
  method only {{ :subtasks (a: act(spec)) }}
}}
"#
    )
}

#[test]
fn a_parameter_interpolated_into_command_is_refused() {
    refused(
        &action_with_guard("", r#"command("test -n {spec}")"#),
        "spec",
    );
}

#[test]
fn a_triple_quoted_command_line_with_a_value_is_refused() {
    refused(
        &action_with_guard("", "command(\"\"\"\n    test -n {spec}\n  \"\"\")"),
        "spec",
    );
}

#[test]
fn a_value_passed_whole_as_the_command_line_is_refused() {
    refused(&action_with_guard("", "command(spec)"), "spec");
}

#[test]
fn an_input_interpolated_into_command_is_refused() {
    refused(
        &action_with_guard(
            r#"input target: Text = "x""#,
            r#"command("grep -q {target} log.txt") && contains(spec)"#,
        )
        .replace("use std.{command}", "use std.{command, contains}"),
        "target",
    );
}

#[test]
fn a_record_field_interpolated_into_command_is_refused() {
    let source = r#"use std.{command}
type Plan = { file: Text, steps: [Text] }
generator model = llm(model: "m")
action act(plan: Plan) -> Text {
  :generate model "Do {plan.file}"
  :guard command("python3 {plan.file}")
  :retry 1
}
task main(plan: Plan) {
  method only { :subtasks (a: act(plan)) }
}
"#;
    refused(source, "plan.file");
}

#[test]
fn a_guard_definition_forwarding_its_parameter_into_command_is_refused() {
    // interpolated, and passed whole
    for body in [r#"command("test -n {name}")"#, "command(name)"] {
        let source = action_with_guard(&format!("guard named(name: Text) = {body}"), "named(spec)");
        refused(&source, "name");
    }
}

#[test]
fn a_value_given_for_a_program_parameter_of_a_guard_definition_is_refused() {
    // the definition is fine; the call gives its `Program` a value
    let source = action_with_guard(
        "guard runs(line: Program) = command(line)",
        r#"runs("echo {spec}")"#,
    );
    refused(&source, "spec");
}

#[test]
fn a_subtask_artifact_given_for_a_program_parameter_is_refused() {
    let source = r#"use std.{command}
generator model = llm(model: "m")
action propose() -> Text {
  :generate model "A command"
  :guard command("true")
  :retry 1
}
action judge(line: Program) -> Text {
  :generate model "Anything"
  :guard command(line)
  :retry 1
}
task main() {
  method only {
    :subtasks (p: propose(), j: judge(p))
    :ordering (p ; j)
  }
}
"#;
    refused(source, "p");
}

#[test]
fn a_value_interpolated_into_the_cmd_generator_is_refused() {
    let source = r#"use std.{non_empty}
input topic: Text = "cats"
generator g = cmd("python3 gen.py --topic {topic}")
action act() -> Text {
  :generate g "Write"
  :guard non_empty
  :retry 1
}
task main() {
  method only { :subtasks (a: act()) }
}
"#;
    refused(source, "topic");
    // written inline in the action too
    let inline = source
        .replace(
            "generator g = cmd(\"python3 gen.py --topic {topic}\")\n",
            "",
        )
        .replace(":generate g", ":generate cmd(\"sh gen.sh {topic}\")");
    refused(&inline, "topic");
}

#[test]
fn a_value_given_to_a_hosts_program_parameter_is_refused() {
    // a host marks its own guard's and effect's parameters `Program`
    let source = r#"extern guard lint(run: Program) on Text
extern guard lint_all(runs: [Program]) on Text
extern effect deploy(script: Program, timeout: Duration = 30s) on Text
input stage: Text = "prod"
generator model = llm(model: "m")
action act(spec: Text) -> Text {
  :generate model "Write about {spec}"
  :effect deploy("./deploy.sh {stage}")
  :guard lint("lint {spec}") && lint_all(["true", "check {spec}"])
  :retry 0
}
task main(spec: Text) {
  method only { :subtasks (a: act(spec)) }
}
"#;
    let checked = check_source("flow.guardflow", source);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.iter().all(|d| d.code == Code::E0216), "{errors:?}");
    let messages: Vec<&str> = errors.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    for param in [
        "`script` of `deploy`",
        "`run` of `lint`",
        "`runs` of `lint_all`",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(param)),
            "{param}: {messages:?}"
        );
    }
}

#[test]
fn an_interpolated_file_name_is_refused() {
    refused(
        &action_with_guard("", r#"command("true", files: {"{spec}": spec})"#),
        "map key",
    );
}

#[test]
fn fixed_command_lines_and_files_pass() {
    let source = action_with_guard(
        r#"input script: Program = "python3 check.py"
guard runs(line: Program, t: Duration = 5s) = command(line, timeout: t)"#,
        r#"command("test -n \"$(cat \"$GUARDFLOW_FILE_SPEC_MD\")\"", files: {"spec.md": spec})
    && runs("true") && command(script) && command("true", files: {})"#,
    );
    assert_eq!(codes(&source), Vec::<Code>::new());
}

// ─── at run time ─────────────────────────────────────────────────────────

/// Writes `flow.guardflow` (an upstream action `name` whose answers are
/// `names`, a downstream `stub(n)` whose guard is `guard`) and its replay
/// file into `dir`, and runs it with `--json`; temporary files go to
/// `dir/tmp`.
fn run_flow(dir: &Path, guard: &str, names: &[&str]) -> Ran {
    let source = format!(
        r#"use std.{{command, non_empty}}
generator g = replay("answers.jsonl")
action name() -> Text {{
  :generate g "A file name"
  :guard non_empty
  :retry 0
}}
action stub(n: Text) -> Text {{
  :generate g "A stub for {{n}}"
  :guard {guard}
  :retry 0
}}
task main() {{
  method only {{
    :subtasks (a: name(), b: stub(a))
    :ordering (a ; b)
  }}
}}
"#
    );
    std::fs::write(dir.join("flow.guardflow"), source).expect("writes the flow");
    let mut answers = String::new();
    for (i, n) in names.iter().enumerate() {
        answers.push_str(&format!(
            "{}\n",
            serde_json::json!({"action": "name", "attempt": i + 1, "output": n})
        ));
    }
    answers.push_str(&format!(
        "{}\n",
        serde_json::json!({"action": "stub", "attempt": 1, "output": "$(touch pwned_by_stub)"})
    ));
    std::fs::write(dir.join("answers.jsonl"), answers).expect("writes the answers");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(dir.join("flow.guardflow"))
        .arg("--json")
        .current_dir(dir)
        .env("TMPDIR", &tmp);
    run_bounded(cmd, Duration::from_secs(60))
}

/// No file an injection would create exists under `dir`.
fn nothing_injected(dir: &Path, ran: &Ran) {
    for name in ["pwned.txt", "pwned", "pwned2", "pwned_by_stub"] {
        for at in [dir.to_path_buf(), dir.join("tmp")] {
            assert!(!at.join(name).exists(), "{name} was created: {}", ran.all());
        }
    }
}

#[test]
fn run_refuses_the_injection_program_before_anything_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run_flow(dir.path(), r#"command("test -n {n}")"#, &[HOSTILE]);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(ran.all().contains("E0216"), "{}", ran.all());
    nothing_injected(dir.path(), &ran);
    assert!(
        !dir.path().join(".guardflow").exists(),
        "a run was recorded"
    );
}

#[test]
fn hostile_values_reach_the_program_as_files_verbatim() {
    let hostile = [
        HOSTILE,
        "$(touch pwned)",
        "`touch pwned2`\n'; touch pwned; '",
    ];
    for value in hostile {
        let dir = tempfile::tempdir().expect("tempdir");
        // the program copies both files out, lists the directory, and
        // checks the artifact is on stdin too
        let guard = r#"command("cp \"$GUARDFLOW_FILE_NAME_TXT\" seen.txt && cp \"$GUARDFLOW_FILE_AGAIN_MD\" again.txt && ls \"$GUARDFLOW_FILES\" > listing.txt && cat > artifact.txt", files: {"name.txt": n, "again.md": n}, write: ["."])"#;
        let ran = run_flow(dir.path(), guard, &[value]);
        assert_eq!(ran.code, Some(0), "{}", ran.all());
        nothing_injected(dir.path(), &ran);
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).expect(f);
        assert_eq!(read("seen.txt"), value);
        assert_eq!(read("again.txt"), value);
        assert_eq!(read("listing.txt"), "again.md\nname.txt\n");
        assert_eq!(read("artifact.txt"), "$(touch pwned_by_stub)");
        // the directory is gone afterwards
        let left: Vec<_> = std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[test]
fn a_file_name_that_leaves_the_directory_is_refused_at_run_time() {
    for name in ["../x", "a/b", "..", ""] {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard =
            format!(r#"command("cp \"$GUARDFLOW_ARTIFACT\" ran.txt", files: {{"{name}": n}})"#);
        let ran = run_flow(dir.path(), &guard, &["fine"]);
        assert_ne!(ran.code, Some(0), "{}", ran.all());
        assert!(
            ran.all().contains("is not a plain file name"),
            "{name}: {}",
            ran.all()
        );
        assert!(!dir.path().join("ran.txt").exists(), "the program ran");
        assert!(!dir.path().join("x").exists());
        assert!(!dir.path().join("tmp").join("x").exists());
    }
}

#[test]
fn write_files_validates_names_and_names_variables() {
    assert_eq!(file_var("tests.py"), "GUARDFLOW_FILE_TESTS_PY");
    assert_eq!(file_var("spec-v2.md"), "GUARDFLOW_FILE_SPEC_V2_MD");
    assert_eq!(file_var("é.txt"), "GUARDFLOW_FILE___TXT");
    let one = |name: &str| write_files(&[(name.to_string(), "text".to_string())]);
    for bad in ["", ".", "..", "../x", "a/b", "/etc/passwd", "nul\0byte"] {
        let err = one(bad).err().unwrap_or_else(|| panic!("{bad:?} accepted"));
        assert!(err.contains("not a plain file name"), "{err}");
    }
    // two names for one variable
    let clash = write_files(&[
        ("a.py".to_string(), String::new()),
        ("a_py".to_string(), String::new()),
    ]);
    assert!(clash
        .err()
        .is_some_and(|e| e.contains("GUARDFLOW_FILE_A_PY")));
    // no files: no directory, no variables
    let none = write_files(&[]).expect("nothing to write");
    assert!(none.dir.is_none() && none.env.is_empty());
    let written = one("..hidden").expect("a name starting with dots is plain");
    let (dir, env) = (written.dir.expect("a directory"), written.env);
    assert_eq!(
        env[0],
        (
            "GUARDFLOW_FILES".to_string(),
            dir.path().display().to_string()
        )
    );
    assert_eq!(std::fs::read_to_string(&env[1].1).expect("written"), "text");
    let path = dir.path().to_path_buf();
    drop(dir);
    assert!(!path.exists(), "the directory outlives its handle");
}
