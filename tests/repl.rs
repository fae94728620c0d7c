//! `guardflow repl`: transcripts run through the script mode, the
//! interactive prompt in a pseudo-terminal, and random input.
//!
//! A transcript (`tests/repl/*.txt`) is what `guardflow repl --script
//! --echo` prints: each input after `> ` (its further lines after `. `),
//! then its results and errors. The test feeds the inputs to the real
//! binary and compares everything. An optional first line `# args: …`
//! adds arguments, `# exit: N` the expected status (default 0).
//! `UPDATE_TRANSCRIPTS=1` rewrites the files from the actual output.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::bin;

/// Runs `guardflow repl ARGS` with `input` on stdin; returns the exit
/// status and stdout and stderr interleaved as written.
fn repl(args: &[&str], input: &str, cwd: &Path) -> (Option<i32>, String) {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    // one open file for both: one offset, writes in order
    let file = out.reopen().expect("reopen");
    let mut child = Command::new(bin())
        .arg("repl")
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::piped())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .spawn()
        .expect("run guardflow repl");
    let mut stdin = child.stdin.take().expect("stdin");
    // the REPL may stop reading at an error: a broken pipe is fine
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    let status = child.wait().expect("wait");
    let text =
        String::from_utf8_lossy(&std::fs::read(out.path()).expect("read output")).into_owned();
    (status.code(), text)
}

struct Transcript {
    args: Vec<String>,
    exit: i32,
    header: String,
    body: String,
}

fn parse(text: &str) -> Transcript {
    let mut t = Transcript {
        args: Vec::new(),
        exit: 0,
        header: String::new(),
        body: String::new(),
    };
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.peek() {
        if let Some(rest) = line.strip_prefix("# args:") {
            t.args = rest.split_whitespace().map(String::from).collect();
        } else if let Some(rest) = line.strip_prefix("# exit:") {
            t.exit = rest.trim().parse().expect("exit status");
        } else if !line.starts_with("# ") {
            break;
        }
        t.header.push_str(line);
        lines.next();
    }
    t.body = lines.collect();
    t
}

/// The inputs of a transcript body: `> ` and `. ` lines.
fn inputs(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("> ").or_else(|| l.strip_prefix(". ")))
        .chain(body.lines().filter(|l| *l == ">" || *l == "."))
        .fold(String::new(), |mut acc, l| {
            acc.push_str(l);
            acc.push('\n');
            acc
        })
}

/// Where the actual and expected output first differ, with context.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let i = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let from = i.saturating_sub(3);
    format!(
        "first difference at line {}\n--- expected\n{}\n--- actual\n{}",
        i + 1,
        e[from..(i + 4).min(e.len())].join("\n"),
        a[from..(i + 4).min(a.len())].join("\n"),
    )
}

#[test]
fn transcripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/repl"))
        .expect("tests/repl")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "transcripts: {files:?}");
    let update = std::env::var_os("UPDATE_TRANSCRIPTS").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read transcript");
        let t = parse(&text);
        let mut args: Vec<&str> = vec!["--script", "--echo"];
        args.extend(t.args.iter().map(String::as_str));
        let (status, actual) = repl(&args, &inputs(&t.body), root);
        if update && inputs(&actual) == inputs(&t.body) {
            std::fs::write(file, format!("{}{actual}", t.header)).expect("write");
            continue;
        }
        if status != Some(t.exit) {
            failures.push(format!(
                "{}: exit status {status:?}, expected {}\n{actual}",
                file.display(),
                t.exit
            ));
        } else if actual != t.body {
            failures.push(format!(
                "{}: {}",
                file.display(),
                first_difference(&t.body, &actual)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_script_stops_at_the_first_error_and_says_so() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = ":type 1\n:show nothing\n:type 2s\n";
    let (status, out) = repl(&[], script, root);
    assert_eq!(status, Some(1), "{out}");
    assert_eq!(out, "1 : Int\nerror: nothing is named `nothing`\n");
    let (status, out) = repl(&["--keep-going"], script, root);
    assert_eq!(status, Some(1), "{out}");
    assert!(out.ends_with("2s : Duration\n"), "{out}");
    // without errors: 0, and no prompt decoration
    let (status, out) = repl(&[], ":type true\n", root);
    assert_eq!((status, out.as_str()), (Some(0), "true : Bool\n"));
}

#[test]
fn files_on_the_command_line_are_loaded_first() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (status, out) = repl(&["examples/planning.guardflow"], ":type prepare\n", root);
    assert_eq!(status, Some(0), "{out}");
    assert_eq!(
        out,
        "loaded examples/planning.guardflow: 8 items\ntask prepare(goal: Text) -> Text\n"
    );
    let (status, out) = repl(&["no/such.guardflow"], ":type 1\n", root);
    assert_eq!(status, Some(1), "{out}");
    assert!(
        out.contains("cannot read `no/such.guardflow`: no such file"),
        "{out}"
    );
}

#[test]
fn reload_reads_the_changed_file_and_a_typed_item_replaces_a_loaded_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("flow.guardflow");
    std::fs::write(
        &file,
        "use std.{contains}\nguard g on Text = contains(\"a\")\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("next.txt"),
        "use std.{contains}\nguard g on Text = contains(\"b\")\n",
    )
    .expect("write");
    // the file changes between `:load` and `:reload`: the `command` guard
    // rewrites it while the script runs
    let script = ":load flow.guardflow\n\
         :guard g <<< a\n\
         use std.{command}\n\
         :guard command(run: \"cp next.txt flow.guardflow\", write: [\"flow.guardflow\"]) <<< x\n\
         :reload\n\
         :guard g <<< b\n\
         guard g on Text = contains(\"c\")\n\
         :guard g <<< c\n\
         :show g\n";
    let (status, out) = repl(&[], script, dir.path());
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("reloaded 1 file"), "{out}");
    assert_eq!(out.matches("pass (g on Text)").count(), 3, "{out}");
    assert!(out.contains("replaced guard `g`"), "{out}");
    // the loaded definition is out of the program: only the typed one shows
    assert!(
        out.contains("// typed at the prompt\nguard g on Text = contains(\"c\")"),
        "{out}"
    );
    assert!(!out.contains("flow.guardflow:2"), "{out}");
}

#[test]
fn a_run_is_cancelled_by_ctrl_c_in_script_mode_too() {
    // SIGINT to the REPL while `:run` waits on a slow generator: the run
    // stops with its report, the generator's process is killed
    let dir = tempfile::tempdir().expect("temp dir");
    let pid_file = dir.path().join("pid");
    let script = format!(
        "use std.{{contains}}\n\
         generator slow = cmd(\"echo $$ > {}; sleep 60\", timeout: 120s, write: [\".\"])\n\
         action wait() -> Text {{ :generate slow \"x\" :guard contains(\"x\") :retry 0 :timeout 100s }}\n\
         :run wait\n",
        pid_file.display()
    );
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let file = out.reopen().expect("reopen");
    let mut child = Command::new(bin())
        .args(["repl", "--keep-going"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(file.try_clone().expect("dup"))
        .stderr(file)
        .spawn()
        .expect("run guardflow repl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(script.as_bytes()).expect("write");
    let pid = crate::support::wait_for_pid(&pid_file).expect("the generator started");
    // the REPL listens for SIGINT from before the run starts
    // SAFETY: signalling a child we spawned
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    stdin.write_all(b":trace\n").expect("write");
    drop(stdin);
    let status = child.wait().expect("wait");
    let text = String::from_utf8_lossy(&std::fs::read(out.path()).expect("read")).into_owned();
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("cancelled by Ctrl-C"), "{text}");
    assert!(text.contains("`wait` made no attempts"), "{text}");
    crate::support::assert_process_ends(&pid, "the generator");
}

#[test]
fn the_interactive_prompt_in_a_pseudo_terminal() {
    use expectrl::{ControlCode, Expect, Session};

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(bin());
    command
        .args(["repl", "--color", "always"])
        .current_dir(root)
        .env("XDG_DATA_HOME", data.path())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    let mut p = Session::spawn(command).expect("spawn in a pty");
    p.set_expect_timeout(Some(Duration::from_secs(60)));
    // rustyline turns bracketed paste on as it starts reading a line:
    // input sent before then could be lost between two reads
    fn ready(p: &mut impl Expect) {
        p.expect("\x1b[?2004h").expect("the prompt");
    }
    ready(&mut p);

    // highlighting: the input is redrawn with a colour per token class
    p.send("use std.{contains}").expect("send");
    p.expect("\x1b[1;35muse\x1b[0m")
        .expect("the keyword coloured");
    p.send("\r").expect("send");
    p.expect("defined use std.{contains}").expect("defined");
    ready(&mut p);

    p.send("generator g = cmd(\"cat\")\r").expect("send");
    p.expect("\x1b[32m\"cat\"").expect("the string coloured");
    p.expect("defined generator `g`").expect("defined");
    ready(&mut p);

    // multi-line input: an open `{` continues; the closer is hinted
    p.send("action summarise(topic: Text) -> Text {")
        .expect("send");
    p.expect("\x1b[2m }\x1b[0m")
        .expect("the closing brace hinted");
    p.send("\r  :generate g \"About {topic}\"\r").expect("send");
    p.expect("\x1b[33m{topic}")
        .expect("the interpolation coloured");
    p.send("  :guard contains(\"About\")\r  :retry 1\r}\r")
        .expect("send");
    p.expect("defined action `summarise`")
        .expect("one item of five lines");
    ready(&mut p);

    // completion of a partial name
    p.send(":show summ").expect("send");
    p.send("\t").expect("tab");
    p.expect("summarise").expect("completed");
    p.send("\r").expect("send");
    p.expect("signature: action summarise(topic: Text) -> Text")
        .expect("the completed name shown");
    ready(&mut p);

    // a `:property` completed where it fits: inside an action's braces
    p.send("action other() -> Text {\r  :ret").expect("send");
    p.send("\t").expect("tab");
    p.expect("\x1b[36m:retry\x1b[0m")
        .expect(":retry completed and coloured");
    p.send(ControlCode::EndOfText).expect("ctrl-c");
    p.expect("\x1b[?2004l").expect("the input ends");
    ready(&mut p);

    // Ctrl-C drops the input being typed
    p.send("action half_typed(").expect("send");
    p.send(ControlCode::EndOfText).expect("ctrl-c");
    let got = p.expect("\x1b[?2004l").expect("the input ends");
    ready(&mut p);
    p.send(":type 1\r").expect("send");
    let got2 = p.expect("1 : Int").expect("the next input runs");
    let before = String::from_utf8_lossy(got.before()).into_owned()
        + &String::from_utf8_lossy(got2.before());
    assert!(!before.contains("syntax errors"), "{before}");
    ready(&mut p);

    // Ctrl-C cancels a running evaluation and the prompt comes back
    // (the sandboxed generator writes only its own directory: it is
    // found by its command line)
    let marker = format!("60.{:04}", std::process::id() % 10_000);
    p.send(format!(":run summarise topic=x --cmd \"sleep {marker}\"\r"))
        .expect("send");
    let pid = crate::support::wait_for_process(&["sleep", &marker]).expect("the generator started");
    p.send(ControlCode::EndOfText).expect("ctrl-c");
    p.expect("cancelled by Ctrl-C").expect("the run cancelled");
    crate::support::assert_process_ends(&pid, "the generator");
    ready(&mut p);
    p.send(":type 2s\r").expect("send");
    p.expect("2s : Duration").expect("the REPL goes on");
    ready(&mut p);
    // each line is in the history file as soon as it is entered
    let so_far = std::fs::read_to_string(data.path().join("guardflow/repl_history"))
        .expect("the history file, before the REPL ends");
    assert!(so_far.contains(":type 2s"), "{so_far}");

    // Ctrl-D leaves; the history is kept
    p.send(ControlCode::EndOfTransmission).expect("ctrl-d");
    let status = p.get_process().wait().expect("wait");
    assert!(format!("{status:?}").contains("Exited"), "{status:?}");
    assert!(format!("{status:?}").ends_with(", 0)"), "{status:?}");
    let history = std::fs::read_to_string(data.path().join("guardflow/repl_history"))
        .expect("the history file");
    assert!(history.contains(":type 2s"), "{history}");
    assert!(history.contains("use std.{contains}"), "{history}");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const FRAGMENTS: &[&str] = &[
        ":load",
        ":reload",
        ":check",
        ":type",
        ":items",
        ":show",
        ":graph",
        ":bounds",
        ":guard",
        ":run",
        ":trace",
        ":help",
        ":default-retry",
        "<<<",
        "@",
        "--dot",
        "--replay",
        "--with",
        "action a(x: Text) -> Text {",
        "task t() -> Text { method m {",
        ":subtasks (s: a(\"x\"))",
        "guard g = contains(\"a\")",
        "use std.{contains}",
        "generator e = cmd(\"cat\")",
        ":generate e \"{x}\"",
        ":retry 1",
        "}",
        "(",
        ")",
        "[",
        "\"",
        "\"\"\"",
        "{",
        "a",
        "t",
        "g",
        "x=1",
        "&&",
        "||",
        "!",
        ";",
        "///",
        "é",
        "\\",
    ];

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(prop::sample::select(FRAGMENTS), 0..6).prop_map(|v| v.join(" ")),
            "[ -~]{0,24}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn random_lines_never_crash_the_repl(lines in prop::collection::vec(line(), 1..24)) {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut input = format!(
                ":load {}/examples/planning.guardflow\n",
                env!("CARGO_MANIFEST_DIR")
            );
            for l in &lines {
                input.push_str(l);
                input.push('\n');
            }
            let (status, out) = repl(&["--keep-going"], &input, dir.path());
            prop_assert!(matches!(status, Some(0) | Some(1)), "status {status:?}\n{out}");
            prop_assert!(!out.contains("panicked"), "{out}");
        }
    }
}

#[test]
fn check_prints_what_guardflow_check_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in [
        "tests/ui/E0102_unknown_guard.guardflow",
        "tests/ui/W0001_unused_action.guardflow",
        "tests/pass/guards.guardflow",
    ] {
        let cli = Command::new(bin())
            .args(["check", "--color", "never", file])
            .current_dir(root)
            .output()
            .expect("run guardflow check");
        let cli = String::from_utf8_lossy(&cli.stdout).into_owned();
        let findings = cli.rsplit_once("checked 1 file").map_or("", |(f, _)| f);
        assert_eq!(findings.is_empty(), file.contains("pass/"), "{cli}");
        let (_, out) = repl(
            &["--script", "--echo", "--keep-going"],
            &format!(":load {file}\n:check\n"),
            root,
        );
        let after = out.split_once("> :check\n").map_or("", |(_, a)| a);
        assert!(
            after.starts_with(findings),
            "{file}:\n{after}\n---\n{findings}"
        );
        assert!(!after[findings.len()..].contains('╭'), "{after}");
    }
}

/// Two files loaded from two directories: each one's relative paths
/// (`cmd(…)`, `file(…)`, a guard's `command(…)`) resolve in its own
/// directory, not in the first file's (issue 17).
#[test]
fn each_loaded_file_resolves_its_paths_in_its_own_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for (sub, word) in [("a", "alpha"), ("b", "beta")] {
        let d = root.join(sub);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("gen.sh"), format!("echo {word}\n")).expect("gen");
        std::fs::write(
            d.join("check.sh"),
            format!("grep -q {word} \"$GUARDFLOW_ARTIFACT\"\n"),
        )
        .expect("check");
        std::fs::write(d.join("spec.txt"), format!("{word} spec\n")).expect("spec");
        std::fs::write(
            d.join(format!("{word}.guardflow")),
            format!(
                "use std.{{command}}\ninput {word}_spec: Text = file(\"spec.txt\")\n\
                 generator {word}_gen = cmd(\"sh gen.sh\")\n\
                 guard {word}_ok on Text = command(\"sh check.sh\")\n\
                 action {word}_act(s: Text) -> Text {{\n  :generate {word}_gen \"{{s}}\"\n  :guard {word}_ok\n  :retry 1\n}}\n\
                 task {word}_task() -> Text {{\n  method m {{\n    :subtasks (x: {word}_act({word}_spec))\n    :result x\n  }}\n}}\n"
            ),
        )
        .expect("flow");
    }
    let (status, out) = repl(
        &["a/alpha.guardflow", "b/beta.guardflow"],
        ":run beta_task\n:run alpha_task\n",
        root,
    );
    assert_eq!(status, Some(0), "{out}");
    assert!(out.contains("beta\n"), "{out}");
    assert!(out.contains("alpha\n"), "{out}");
    assert!(!out.contains("cannot read"), "{out}");
    assert!(!out.contains("failed"), "{out}");
}
