//! The sandbox, attacked as a model would: programs run for the
//! `command` and `pytest` guards, the `shell` effect and the `cmd`
//! generator try to write outside their directory, read secrets, reach
//! the network, fork without end, read the caller's environment, and
//! smuggle shell syntax past the effect. Each test asserts that nothing
//! escaped (no file outside, no secret in any output or in the store, no
//! process left) and that the feedback says what was refused.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{bin, run_bounded, Ran};

const PARENT_SECRET: &str = "PARENT-SECRET-5d1c";
const OUTSIDE_SECRET: &str = "OUTSIDE-SECRET-77ab";
const SSH_KEY: &str = "PRIVATE-KEY-b3c9e0";
const API_KEY: &str = "sk-test-key-a81f03";
const LLM_KEY: &str = "llm-key-0e4c2d";
const TOKEN: &str = "token-value-19fe";

/// A directory tree to attack from: `ws/` is the workspace, `secret.txt`
/// sits in its parent, `outside/` beside it, `home/.ssh/id_rsa` is the
/// `HOME` guardflow runs with; `ws/link` is a symlink to `outside/`.
struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        for d in ["ws", "outside", "home/.ssh"] {
            std::fs::create_dir_all(r.join(d)).expect("mkdir");
        }
        std::fs::write(r.join("secret.txt"), PARENT_SECRET).expect("writes");
        std::fs::write(r.join("outside/secret.txt"), OUTSIDE_SECRET).expect("writes");
        std::fs::write(r.join("home/.ssh/id_rsa"), SSH_KEY).expect("writes");
        std::fs::write(r.join("ws/victim.txt"), "keep me\n").expect("writes");
        std::fs::write(r.join("ws/log.txt"), "ERROR one\nok\nERROR two\n").expect("writes");
        std::fs::write(r.join("ws/in.txt"), "b\na\n").expect("writes");
        std::os::unix::fs::symlink(r.join("outside"), r.join("ws/link")).expect("symlink");
        Fixture { root }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn ws(&self) -> PathBuf {
        self.root().join("ws")
    }

    /// Runs `source` (in `ws/flow.guardflow`) with `answers` for action
    /// `act` as attempts 1, 2, …, with secrets in the environment.
    fn run(&self, source: &str, answers: &[&str]) -> Ran {
        self.run_with(source, answers, "")
    }

    /// Like [`Fixture::run`], with more replay lines (other actions).
    fn run_with(&self, source: &str, answers: &[&str], more: &str) -> Ran {
        let ws = self.ws();
        std::fs::write(ws.join("flow.guardflow"), source).expect("writes the flow");
        let lines: String = answers
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "{}\n",
                    serde_json::json!({"action": "act", "attempt": i + 1, "output": c})
                )
            })
            .collect();
        std::fs::write(ws.join("answers.jsonl"), lines + more).expect("writes the answers");
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .arg(ws.join("flow.guardflow"))
            .arg("--json")
            .env("HOME", self.root().join("home"))
            .env("OPENAI_API_KEY", API_KEY)
            .env("GUARDFLOW_LLM_API_KEY", LLM_KEY)
            .env("GF_TEST_TOKEN", TOKEN)
            .env("GF_PASS", "passed-through-42")
            .env_remove("GUARDFLOW_STORE");
        let ran = run_bounded(cmd, Duration::from_secs(120));
        self.assert_nothing_escaped(&ran);
        ran
    }

    /// No secret in any output nor in the run store; nothing new outside
    /// the workspace; the victim file intact.
    fn assert_nothing_escaped(&self, ran: &Ran) {
        let all = ran.all();
        for secret in [
            PARENT_SECRET,
            OUTSIDE_SECRET,
            SSH_KEY,
            API_KEY,
            LLM_KEY,
            TOKEN,
        ] {
            assert!(!all.contains(secret), "{secret} leaked:\n{all}");
            let store = self.ws().join(".guardflow/runs.db");
            let mut bytes = Vec::new();
            if let Ok(mut f) = std::fs::File::open(&store) {
                f.read_to_end(&mut bytes).expect("reads the store");
            }
            let wal = self.ws().join(".guardflow/runs.db-wal");
            if let Ok(mut f) = std::fs::File::open(&wal) {
                f.read_to_end(&mut bytes).expect("reads the wal");
            }
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{secret} is in the store"
            );
        }
        let mut outside: Vec<String> = walk(self.root())
            .into_iter()
            .filter(|p| !p.starts_with(self.ws()))
            .map(|p| {
                p.strip_prefix(self.root())
                    .unwrap_or(&p)
                    .display()
                    .to_string()
            })
            .collect();
        outside.sort();
        assert_eq!(
            outside,
            [
                "home",
                "home/.ssh",
                "home/.ssh/id_rsa",
                "outside",
                "outside/secret.txt",
                "secret.txt",
            ],
            "something was written outside the workspace"
        );
        for (f, text) in [
            ("secret.txt", PARENT_SECRET),
            ("outside/secret.txt", OUTSIDE_SECRET),
        ] {
            assert_eq!(
                std::fs::read_to_string(self.root().join(f)).expect("reads"),
                text
            );
        }
        assert_eq!(
            std::fs::read_to_string(self.ws().join("victim.txt")).expect("the victim is there"),
            "keep me\n"
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.clone());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            }
        }
    }
    out
}

/// A flow whose action `act` answers `Text` and is guarded by `guard`.
fn guarded(guard: &str) -> String {
    format!(
        r#"use std.{{command, pytest}}
generator g = replay("answers.jsonl")
action act() -> Text {{
  :generate g "x"
  :guard {guard}
  :retry 0
}}
task main() {{
  method only {{
    :subtasks (a: act())
  }}
}}
"#
    )
}

/// The artifact (a model's shell script) run by the `command` guard.
fn command_flow(opts: &str) -> String {
    guarded(&format!(r#"command("sh \"$GUARDFLOW_ARTIFACT\""{opts})"#))
}

/// A flow whose action `act` proposes a command to the `shell` effect.
fn effect_flow(opts: &str, pre: &str) -> String {
    format!(
        r#"use std.{{allowed_commands, exit_code}}
generator g = replay("answers.jsonl")
action act() -> Command {{
  :generate g "Propose a command"
  :effect shell(timeout: 10s{opts})
  {pre}
  :guard exit_code(0)
  :retry 1
  :idempotent
}}
task main() {{
  method only {{
    :subtasks (a: act())
  }}
}}
"#
    )
}

/// The feedback of every attempt, in order.
fn feedback(ran: &Ran) -> Vec<String> {
    ran.attempts()
        .iter()
        .map(|a| a["feedback"].as_str().unwrap_or("").to_string())
        .collect()
}

fn outcomes(ran: &Ran) -> Vec<serde_json::Value> {
    ran.attempts()
        .into_iter()
        .filter_map(|a| a.get("outcome").cloned())
        .collect()
}

/// Runs `script` under the `command` guard (`opts` appended to its
/// arguments); it must fail, and its feedback is returned.
fn command_fails(fx: &Fixture, script: &str, opts: &str) -> String {
    let ran = fx.run(&command_flow(opts), &[script]);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    feedback(&ran).join("\n")
}

const FILES_REFUSED: &str = "the sandbox refused a file access";

// ── the command guard ────────────────────────────────────────────────

#[test]
fn command_cannot_write_into_the_workspace_parent() {
    let fx = Fixture::new();
    let target = fx.root().join("pwned.txt");
    let f = command_fails(&fx, &format!("echo x > '{}'", target.display()), "");
    assert!(
        f.contains("Permission denied") && f.contains(FILES_REFUSED),
        "{f}"
    );
}

#[test]
fn command_cannot_write_into_the_workspace_either() {
    let fx = Fixture::new();
    let f = command_fails(&fx, "echo x > victim.txt", "");
    assert!(f.contains(FILES_REFUSED), "{f}");
}

#[test]
fn command_cannot_write_to_tmp_elsewhere_or_home() {
    let fx = Fixture::new();
    let elsewhere =
        std::env::temp_dir().join(format!("guardflow-elsewhere-{}", std::process::id()));
    let home = fx.root().join("home/pwned");
    let f = command_fails(
        &fx,
        &format!(
            "touch '{}' || touch '{}' || mkdir /tmp/guardflow-mkdir-x || exit 1",
            elsewhere.display(),
            home.display()
        ),
        "",
    );
    assert!(f.contains(FILES_REFUSED), "{f}");
    assert!(!elsewhere.exists() && !home.exists());
    assert!(!Path::new("/tmp/guardflow-mkdir-x").exists());
}

#[test]
fn command_writes_its_own_directory_and_opted_in_paths() {
    let fx = Fixture::new();
    // its own directory ($TMPDIR, also $HOME) is writable
    let ran = fx.run(
        &command_flow(""),
        &["echo x > \"$TMPDIR/a\" && echo y > \"$HOME/b\" && cat \"$TMPDIR/a\" \"$HOME/b\""],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    // `write: ["out"]` opens one directory of the workspace
    std::fs::create_dir(fx.ws().join("out")).expect("mkdir");
    let ran = fx.run(
        &command_flow(r#", write: ["out"]"#),
        &["echo made > out/made.txt"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(
        std::fs::read_to_string(fx.ws().join("out/made.txt")).expect("made"),
        "made\n"
    );
}

#[test]
fn command_cannot_read_an_ssh_key_in_home() {
    let fx = Fixture::new();
    let key = fx.root().join("home/.ssh/id_rsa");
    let f = command_fails(&fx, &format!("cat '{}'; exit 1", key.display()), "");
    assert!(
        f.contains("Permission denied") && f.contains(FILES_REFUSED),
        "{f}"
    );
}

#[test]
fn command_cannot_read_beside_the_workspace() {
    let fx = Fixture::new();
    let f = command_fails(&fx, "cat ../secret.txt ../outside/secret.txt; exit 1", "");
    assert!(f.contains(FILES_REFUSED), "{f}");
}

#[test]
fn command_cannot_read_through_a_symlink_in_the_workspace() {
    let fx = Fixture::new();
    let f = command_fails(&fx, "cat link/secret.txt; exit 1", "");
    assert!(f.contains("Permission denied"), "{f}");
}

#[test]
fn command_reads_an_opted_in_path() {
    let fx = Fixture::new();
    let ran = fx.run(
        &command_flow(r#", read: ["../outside"]"#),
        &["grep -q OUTSIDE ../outside/secret.txt"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
}

#[test]
fn command_cannot_read_password_hashes() {
    let fx = Fixture::new();
    if !Path::new("/etc/shadow").exists() {
        return;
    }
    let f = command_fails(&fx, "cat /etc/shadow && echo READ-SHADOW; exit 1", "");
    assert!(!f.contains("READ-SHADOW") && !f.contains("root:"), "{f}");
}

/// Sets `$GF` to guardflow's pid: the parent of the `sh -c` that runs
/// the guard's command, whose child runs the artifact.
const GUARDFLOW_PID: &str = "GF=$(cut -d' ' -f4 /proc/$PPID/stat)";

#[test]
fn command_cannot_read_guardflows_environment_through_proc() {
    let fx = Fixture::new();
    let f = command_fails(
        &fx,
        &format!("{GUARDFLOW_PID}; cat /proc/$GF/comm; cat /proc/$GF/environ; exit 1"),
        "",
    );
    assert!(f.contains("guardflow"), "not guardflow's pid: {f}");
    assert!(!f.contains("OPENAI_API_KEY"), "{f}");
}

#[test]
fn command_cannot_signal_guardflow() {
    let fx = Fixture::new();
    let f = command_fails(
        &fx,
        &format!("{GUARDFLOW_PID}; cat /proc/$GF/comm; kill -9 $GF; echo \"kill: $?\"; exit 1"),
        "",
    );
    // guardflow lived to report the failure
    assert!(f.contains("guardflow"), "not guardflow's pid: {f}");
    assert!(f.contains("kill: 1"), "{f}");
}

#[test]
fn command_sees_no_secret_in_its_environment() {
    let fx = Fixture::new();
    let f = command_fails(&fx, "env; exit 1", "");
    for name in [
        "OPENAI_API_KEY",
        "GUARDFLOW_LLM_API_KEY",
        "GF_TEST_TOKEN",
        "GF_PASS",
    ] {
        assert!(!f.contains(name), "{name}: {f}");
    }
    assert!(f.contains("PATH="), "{f}");
    for line in f.lines() {
        let name = line.split('=').next().unwrap_or("");
        assert!(
            !(name.ends_with("_KEY") || name.ends_with("_TOKEN") || name.ends_with("_SECRET")),
            "{line}"
        );
    }
}

#[test]
fn command_env_opt_in_passes_only_the_named_variable() {
    let fx = Fixture::new();
    let f = command_fails(&fx, "env; exit 1", r#", env: ["GF_PASS"]"#);
    assert!(f.contains("GF_PASS=passed-through-42"), "{f}");
    assert!(!f.contains("OPENAI_API_KEY"), "{f}");
}

/// A loopback listener; `accepted` tells whether anyone connected.
struct Listener {
    listener: TcpListener,
}

impl Listener {
    fn new() -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        listener.set_nonblocking(true).expect("nonblocking");
        Listener { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    fn accepted(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

fn connect_script(port: u16) -> String {
    format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5); print('CONNECTED')\""
    )
}

#[test]
fn command_has_no_network() {
    let fx = Fixture::new();
    let l = Listener::new();
    let f = command_fails(&fx, &format!("{} || exit 1", connect_script(l.port())), "");
    assert!(!f.contains("CONNECTED"), "{f}");
    assert!(f.contains("no network"), "{f}");
    assert!(!l.accepted(), "a connection reached the listener");
}

#[test]
fn command_with_network_true_connects() {
    let fx = Fixture::new();
    let l = Listener::new();
    let ran = fx.run(
        &command_flow(", network: true"),
        &[&connect_script(l.port())],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(l.accepted(), "no connection reached the listener");
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

#[test]
fn a_fork_bomb_is_stopped_and_leaves_nothing() {
    let fx = Fixture::new();
    let marker = format!("gfbomb{}", std::process::id());
    let ran = fx.run(
        &command_flow(", timeout: 5s"),
        &[&format!(
            "exec sh -c 'f() {{ f | f & }}; f; sleep 60' {marker}"
        )],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let mut left = processes_with(&marker);
    for _ in 0..200 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        left = processes_with(&marker);
    }
    assert!(
        left.is_empty(),
        "{} processes of the bomb are left",
        left.len()
    );
}

#[test]
fn the_number_of_processes_is_limited_even_as_root() {
    let fx = Fixture::new();
    // forks children that sleep, counts how many it got
    let script = r#"python3 -c "
import os, time
n = 0
for _ in range(600):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
print('forked', n)
"; exit 1"#;
    let f = command_fails(&fx, script, "");
    let n: usize = f
        .split("forked ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no count: {f}"));
    assert!(n < 600, "{n} processes forked: {f}");
}

// ── the pytest guard: the solution module is the model's code ────────

const PYTEST_FLOW: &str = r#"use std.{pytest, python_syntax}
generator g = replay("answers.jsonl")
action write_tests() -> Code<python> {
  :generate g "tests"
  :guard python_syntax
  :retry 0
}
action act(tests: Code<python>) -> Code<python> {
  :generate g "code"
  :guard pytest(tests, timeout: 60s)
  :retry 0
}
task main() {
  method only {
    :subtasks (t: write_tests(), a: act(t))
    :ordering (t ; a)
  }
}
"#;

/// Runs `solution` under `pytest`; `None` when pytest is not installed
/// (outside CI).
fn pytest_feedback(fx: &Fixture, solution: &str) -> Option<String> {
    let tests = "from solution import add\n\ndef test_add():\n    assert add(2, 3) == 5\n";
    let more = format!(
        "{}\n",
        serde_json::json!({"action": "write_tests", "attempt": 1, "output": tests})
    );
    let ran = fx.run_with(PYTEST_FLOW, &[solution], &more);
    let f = feedback(&ran).join("\n");
    // never a silent skip: scripts/test.sh puts pytest in .venv
    assert!(
        !ran.all().contains("pytest is not installed"),
        "run the tests with scripts/test.sh, which installs pytest in .venv:\n{}",
        ran.all()
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(!f.is_empty(), "{}", ran.all());
    Some(f)
}

#[test]
fn pytest_solution_cannot_write_outside() {
    let fx = Fixture::new();
    let target = fx.root().join("pwned.txt");
    let solution = format!(
        "open({:?}, 'w').write('x')\n\ndef add(a, b):\n    return a + b\n",
        target.display().to_string()
    );
    let Some(f) = pytest_feedback(&fx, &solution) else {
        return;
    };
    assert!(
        f.contains("PermissionError") && f.contains(FILES_REFUSED),
        "{f}"
    );
}

#[test]
fn pytest_solution_cannot_read_a_secret() {
    let fx = Fixture::new();
    let key = fx.root().join("home/.ssh/id_rsa");
    let solution = format!(
        "def add(a, b):\n    return open({:?}).read()\n",
        key.display().to_string()
    );
    let Some(f) = pytest_feedback(&fx, &solution) else {
        return;
    };
    assert!(f.contains("PermissionError"), "{f}");
}

#[test]
fn pytest_solution_cannot_return_the_environment() {
    let fx = Fixture::new();
    let solution = "import os\n\ndef add(a, b):\n    return dict(os.environ)\n";
    let Some(f) = pytest_feedback(&fx, solution) else {
        return;
    };
    assert!(
        !f.contains("OPENAI_API_KEY") && !f.contains("GUARDFLOW_LLM"),
        "{f}"
    );
}

#[test]
fn pytest_solution_has_no_network() {
    let fx = Fixture::new();
    let l = Listener::new();
    let solution = format!(
        "import socket\n\ndef add(a, b):\n    socket.create_connection(('127.0.0.1', {}), timeout=5)\n    return a + b\n",
        l.port()
    );
    let Some(f) = pytest_feedback(&fx, &solution) else {
        return;
    };
    assert!(f.contains("no network"), "{f}");
    assert!(!l.accepted());
}

// ── the shell effect: the attacks of the issue ───────────────────────

/// Runs `commands` as attempts of a `shell` effect; returns the run.
fn effect(fx: &Fixture, commands: &[&str], opts: &str, pre: &str) -> Ran {
    fx.run(&effect_flow(opts, pre), commands)
}

/// `command` is refused before it runs, with feedback naming `what`.
fn refused(command: &str, what: &str) {
    let fx = Fixture::new();
    let ran = effect(&fx, &[command, "true"], "", "");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let f = feedback(&ran);
    assert!(
        f[0].starts_with(&format!("`{command}` is refused: {what}")),
        "{command}: {f:?}"
    );
    let out = outcomes(&ran);
    assert_eq!(out.len(), 1, "the refused command ran: {out:?}");
}

#[test]
fn shell_glob_cannot_name_the_parent() {
    refused("cat .?/secret.txt", "`?` is shell syntax");
}

#[test]
fn shell_star_glob_is_refused() {
    refused("cat ../*", "`*` is shell syntax");
}

#[test]
fn shell_and_and_is_refused() {
    refused("cd .. && cat secret.txt", "`&&` is shell syntax");
}

#[test]
fn shell_eval_is_refused() {
    refused("eval 'cat ../secret.txt'", "`eval` runs");
}

#[test]
fn shell_command_substitution_is_refused() {
    refused("echo $(cat ../secret.txt)", "`$(` is shell syntax");
    refused("echo `cat ../secret.txt`", "a backquote is shell syntax");
}

#[test]
fn shell_variables_and_home_are_refused() {
    refused("cat $HOME/.ssh/id_rsa", "`$` is shell syntax");
    refused("cat \"${HOME}/.ssh/id_rsa\"", "`$` inside double quotes");
    refused("cat ~/.ssh/id_rsa", "`~` is shell syntax");
}

#[test]
fn shell_chains_pipes_and_redirections_are_refused() {
    refused("ls; rm -f victim.txt", "`;` is shell syntax");
    refused("false || rm -f victim.txt", "`||` is shell syntax");
    refused("cat victim.txt | sh", "`|` is shell syntax");
    refused("echo gone > victim.txt", "`>` is shell syntax");
    refused("echo gone >> victim.txt", "`>>` is shell syntax");
    refused("sh < victim.txt", "`<` is shell syntax");
    refused("cat << EOF", "`<<` is shell syntax");
    refused("true\nrm -f victim.txt", "a line break is shell syntax");
}

/// An effect may write its workspace, but not the workflow's sources, its
/// run store or `.git` in it: a hook or a changed workflow would run the
/// model's code later, outside every guard.
#[test]
fn shell_cannot_change_sources_store_or_git_in_its_workspace() {
    let fx = Fixture::new();
    let ws = fx.ws();
    std::fs::create_dir_all(ws.join(".git/hooks")).expect("mkdir");
    std::fs::write(ws.join(".git/config"), "[core]\n").expect("writes");
    std::fs::create_dir_all(ws.join("lib")).expect("mkdir");
    std::fs::write(ws.join("lib/shared.guardflow"), "// shared\n").expect("writes");
    let attacks = [
        "touch .git/hooks/pre-commit",
        "cp victim.txt .git/config",
        "mv .git moved",
        "cp victim.txt lib/shared.guardflow",
        "rm flow.guardflow",
        "cp victim.txt .guardflow/runs.db",
        "rm -rf .guardflow",
    ];
    let mut answers: Vec<&str> = attacks.to_vec();
    answers.push("touch done.txt");
    let source = effect_flow("", "").replace(":retry 1", ":retry 9");
    let ran = fx.run(&source, &answers);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let out = outcomes(&ran);
    assert_eq!(out.len(), attacks.len() + 1, "{out:?}");
    for (attack, o) in attacks.iter().zip(&out) {
        assert_ne!(o["exit_code"], 0, "`{attack}` succeeded: {o}");
    }
    assert_eq!(out[attacks.len()]["exit_code"], 0, "{out:?}");
    assert!(ws.join("done.txt").exists(), "the workspace stays writable");
    assert!(!ws.join(".git/hooks/pre-commit").exists());
    assert!(ws.join(".git").is_dir() && !ws.join("moved").exists());
    assert_eq!(
        std::fs::read_to_string(ws.join(".git/config")).expect("config"),
        "[core]\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("lib/shared.guardflow")).expect("lib"),
        "// shared\n"
    );
    assert!(ws.join("flow.guardflow").exists());
    assert!(ws.join(".guardflow/runs.db").exists());
    // the feedback says why
    let f = feedback(&ran).join("\n");
    assert!(f.contains("read-only"), "{f}");
}

#[test]
fn shell_sh_c_runs_confined() {
    let fx = Fixture::new();
    let ran = effect(&fx, &["sh -c 'cat ../secret.txt'", "true"], "", "");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let out = outcomes(&ran);
    assert_ne!(out[0]["exit_code"], 0, "{out:?}");
    let stderr = out[0]["stderr"].as_str().unwrap_or("");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(stderr.contains(FILES_REFUSED), "{stderr}");
}

#[test]
fn shell_symlink_made_by_the_model_leads_nowhere() {
    let fx = Fixture::new();
    // the link is made in the workspace; reading through it is denied
    let ran = effect(&fx, &["ln -s .. up"], "", "");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(fx.ws().join("up").is_symlink());
    let ran = effect(&fx, &["cat up/secret.txt", "true"], "", "");
    let out = outcomes(&ran);
    assert_ne!(out[0]["exit_code"], 0, "{out:?}");
    assert!(out[0]["stderr"]
        .as_str()
        .unwrap_or("")
        .contains("Permission denied"));
}

#[test]
fn shell_preexisting_symlink_leads_nowhere() {
    let fx = Fixture::new();
    let ran = effect(
        &fx,
        &["cat link/secret.txt", "cp in.txt link/copied.txt", "true"],
        "",
        "",
    );
    let out = outcomes(&ran);
    assert_ne!(out[0]["exit_code"], 0, "{out:?}");
    assert_ne!(out[1]["exit_code"], 0, "{out:?}");
}

#[test]
fn shell_options_glued_to_paths_cannot_write_outside() {
    let fx = Fixture::new();
    let abs = fx.root().join("outside/sorted.txt");
    let dir = fx.root().join("outside");
    let sort = format!("sort -o{} in.txt", abs.display());
    let cp = format!("cp --target-directory={} in.txt", dir.display());
    let cp_t = format!("cp -t{} in.txt", dir.display());
    for command in [sort, cp, cp_t] {
        let ran = effect(&fx, &[&command], "", "");
        let out = outcomes(&ran);
        assert_eq!(out.len(), 1, "{command}: {}", ran.all());
        assert_ne!(out[0]["exit_code"], 0, "{command}: {out:?}");
        assert!(out[0]["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("Permission denied"));
    }
}

#[test]
fn shell_absolute_and_parent_paths_cannot_be_read() {
    let fx = Fixture::new();
    let abs = format!("cat {}", fx.root().join("outside/secret.txt").display());
    let ran = effect(&fx, &["cat ../secret.txt", &abs], "", "");
    let out = outcomes(&ran);
    assert_eq!(out.len(), 2, "{}", ran.all());
    assert!(out.iter().all(|o| o["exit_code"] != 0), "{out:?}");
}

#[test]
fn shell_background_ampersand_is_refused_by_allowed_commands() {
    let fx = Fixture::new();
    let ran = effect(
        &fx,
        &[
            "grep -c ERROR log.txt & rm -f victim.txt",
            "grep -c ERROR log.txt",
        ],
        "",
        r#":pre-guard allowed_commands(["grep -c"])"#,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let f = feedback(&ran);
    assert!(f[0].contains("`&` is shell syntax"), "{f:?}");
    let out = outcomes(&ran);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["stdout"], "2\n");
}

#[test]
fn shell_allowed_commands_match_whole_words() {
    let fx = Fixture::new();
    let ran = effect(
        &fx,
        &["grep -cv ERROR log.txt", "grep -c ERROR log.txt"],
        "",
        r#":pre-guard allowed_commands(["grep -c"])"#,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        feedback(&ran)[0].contains("is not allowed"),
        "{:?}",
        feedback(&ran)
    );
}

#[test]
fn shell_writes_the_workspace_only() {
    let fx = Fixture::new();
    let ran = effect(&fx, &["touch made.txt"], "", "");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(fx.ws().join("made.txt").exists());
}

#[test]
fn shell_environment_has_no_secret() {
    let fx = Fixture::new();
    let ran = effect(&fx, &["env"], "", "");
    let out = outcomes(&ran);
    let env = out[0]["stdout"].as_str().unwrap_or("");
    assert!(env.contains("PATH="), "{env}");
    for name in [
        "OPENAI_API_KEY",
        "GUARDFLOW_LLM_API_KEY",
        "GF_TEST_TOKEN",
        "GF_PASS",
    ] {
        assert!(!env.contains(name), "{env}");
    }
}

#[test]
fn shell_has_no_network_unless_opted_in() {
    let fx = Fixture::new();
    let l = Listener::new();
    let connect = format!(
        "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {}), timeout=5)\"",
        l.port()
    );
    let ran = effect(&fx, &[&connect, "true"], "", "");
    let out = outcomes(&ran);
    assert_eq!(out.len(), 2, "{}", ran.all());
    assert_ne!(out[0]["exit_code"], 0, "{out:?}");
    assert!(out[0]["stderr"]
        .as_str()
        .unwrap_or("")
        .contains("no network"));
    assert!(!l.accepted());
    let ran = effect(&fx, &[&connect], ", network: true", "");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(l.accepted());
}

#[test]
fn shell_output_cut_is_stated_in_the_record() {
    let fx = Fixture::new();
    let ran = effect(&fx, &["cat log.txt"], ", max_output: 5", "");
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let out = outcomes(&ran);
    assert_eq!(out[0]["stdout"], "ERROR");
    assert!(
        out[0]["stderr"]
            .as_str()
            .unwrap_or("")
            .contains("guardflow: output cut at 5 bytes"),
        "{out:?}"
    );
}

// ── the cmd generator ────────────────────────────────────────────────

fn cmd_flow(program: &str, opts: &str) -> String {
    format!(
        r#"use std.{{non_empty}}
generator g = cmd("{program}"{opts})
action act() -> Text {{
  :generate g "x"
  :guard non_empty
  :retry 0
}}
task main() {{
  method only {{
    :subtasks (a: act())
  }}
}}
"#
    )
}

#[test]
fn cmd_generator_with_a_background_child_answers() {
    let fx = Fixture::new();
    std::fs::write(fx.ws().join("gen.sh"), "sleep 60 &\necho the-answer\n").expect("writes");
    let ran = fx.run(&cmd_flow("sh gen.sh", ", timeout: 5s"), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.all().contains("the-answer"), "{}", ran.all());
}

#[test]
fn cmd_generator_output_cut_is_an_error_that_says_so() {
    let fx = Fixture::new();
    let ran = fx.run(
        &cmd_flow("head -c 2000 /dev/zero", ", max_output: 1000"),
        &[],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.all().contains("output cut at 1000 bytes"),
        "{}",
        ran.all()
    );
}

#[test]
fn cmd_generator_cannot_write_the_workspace_nor_read_secrets() {
    let fx = Fixture::new();
    std::fs::write(
        fx.ws().join("gen.sh"),
        "env; cat ../secret.txt; echo x > victim.txt; exit 3\n",
    )
    .expect("writes");
    let ran = fx.run(&cmd_flow("sh gen.sh", ""), &[]);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(ran.all().contains("Permission denied"), "{}", ran.all());
}

#[test]
fn a_process_left_by_a_killed_guardflow_is_killed_by_the_next_run() {
    // as root, every sandboxed process is in a pids cgroup of its run;
    // a guardflow killed with SIGKILL cannot remove it, the next one does
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no pids cgroup to sweep");
        return;
    }
    let fx = Fixture::new();
    let marker = format!("300.{:04}", std::process::id() % 10_000);
    std::fs::write(
        fx.ws().join("flow.guardflow"),
        command_flow(", timeout: 2m"),
    )
    .expect("flow");
    let answer = format!("setsid sleep {marker} & sleep 60");
    let line = serde_json::json!({"action": "act", "attempt": 1, "output": answer});
    std::fs::write(fx.ws().join("answers.jsonl"), format!("{line}\n")).expect("answers");
    let mut first = Command::new(bin())
        .arg("run")
        .arg(fx.ws().join("flow.guardflow"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns guardflow");
    let pid = crate::support::wait_for_process(&["sleep", &marker]);
    // SAFETY: signalling a child we spawned
    unsafe { libc::kill(first.id() as libc::pid_t, libc::SIGKILL) };
    first.wait().expect("waits");
    let pid = pid.expect("the escaped child started");
    let ran = fx.run(&command_flow(""), &["true"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    crate::support::assert_process_ends(&pid, "the child that left its process group");
}
