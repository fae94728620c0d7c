//! Stopping runs and resuming them, through the real binary: a harness of
//! seeded random kill points (SIGKILL, SIGTERM, SIGHUP, SIGINT) over a
//! workflow with `:retry 0` actions, escalation, fork-join and
//! idempotent and non-idempotent effects on a `:shared` resource; the
//! signals one by one; the effect questions; survivors of a SIGKILL; and
//! two processes on one `:shared` resource.
//!
//! `GUARDFLOW_KILL_SEED=N` replays the harness with seed N (printed on
//! failure); `GUARDFLOW_KILL_POINTS=N` asks for N kill points.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::support::bin;

/// The generator: logs each call (`start`, then `end` just before it
/// answers), waits `$DELAY` seconds, answers by action.
const GEN: &str = r#"#!/bin/sh
prompt=$(cat)
echo "start $GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT" >> calls
sleep "${DELAY:-0}"
echo "end $GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT" >> calls
case "$GUARDFLOW_ACTION" in
  spec) if [ "$GUARDFLOW_ATTEMPT" = 1 ]; then echo "spec v1"; else echo "spec v2"; fi ;;
  implement) case "$prompt" in *v2*) echo "good impl" ;; *) echo "bad impl" ;; esac ;;
  migrate) echo "sh effect.sh migrate" ;;
  deploy) echo "sh effect.sh deploy" ;;
  *) echo "good $GUARDFLOW_ACTION" ;;
esac
"#;

/// The effect (the environment is cleared, the directory is the
/// workflow's): reports an overlap with a live earlier effect, logs its
/// start and its end.
const EFFECT: &str = r#"#!/bin/sh
for p in $(cat active 2>/dev/null); do
  if kill -0 "$p" 2>/dev/null; then echo "$1 $$ overlaps $p" >> overlaps; fi
done
echo $$ > active
echo $$ >> pids
echo "start $1 $$" >> effects
sleep 0.05
echo "done $1 $$" >> effects
"#;

/// spec ; implement (escalating back to spec once) ; (left || right) ;
/// migrate (idempotent effect) ; deploy (`:retry 0` effect), both effects
/// on one `:shared` resource.
const FLOW: &str = r#"use std.{contains, exit_code}
resource repo: 1 :shared
generator g = cmd("sh gen.sh", timeout: 60s, env: ["DELAY"], write: ["."])
action spec() -> Text { :generate g "spec" :guard contains("spec") :retry 1 }
action implement(s: Text) -> Text { :generate g "implement {s}" :guard contains("good") :retry 2 }
action left(i: Text) -> Text { :generate g "left {i}" :guard contains("good") :retry 0 }
action right(i: Text) -> Text { :generate g "right {i}" :guard contains("good") :retry 0 }
action migrate(i: Text) -> Command {
  :generate g "migrate {i}"
  :effect shell(timeout: 60s)
  :guard exit_code(0)
  :retry 1
  :idempotent
  :uses repo
}
action deploy(a: Text, b: Text) -> Command {
  :generate g "deploy {a} {b}"
  :effect shell(timeout: 60s)
  :guard exit_code(0)
  :retry 0
  :uses repo
}
task main() -> Command {
  method m {
    :subtasks (t: spec(), i: implement(t) :escalate-to t after 1 :max-escalations 1, l: left(i), r: right(i), m: migrate(i), d: deploy(l, r))
    :ordering (t ; i ; (l || r) ; m ; d)
    :result d
  }
}
"#;

/// xorshift64*: small, seeded, enough for kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Trial {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Trial {
    fn new(flow: &str) -> Trial {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("gen.sh"), GEN).expect("gen.sh");
        std::fs::write(root.join("effect.sh"), EFFECT).expect("effect.sh");
        std::fs::write(root.join("f.guardflow"), flow).expect("flow");
        Trial { _dir: dir, root }
    }

    fn command(&self, args: &[&str], delay: &str) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(&self.root)
            .env("DELAY", delay)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    fn db(&self) -> PathBuf {
        self.root.join(".guardflow").join("runs.db")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap_or_default()
    }

    fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(str::to_string).collect()
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn open(db: &Path) -> Option<Connection> {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.busy_timeout(Duration::from_secs(30)).ok()?;
    Some(c)
}

fn run_id(db: &Path) -> Option<String> {
    open(db)?
        .query_row(
            "SELECT id FROM runs ORDER BY number DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .ok()
}

fn query_i64(c: &Connection, sql: &str, id: &str) -> i64 {
    c.query_row(sql, [id], |r| r.get(0)).unwrap_or(-1)
}

fn commits(c: &Connection, id: &str) -> Vec<(String, i64, String)> {
    let mut stmt = c
        .prepare(
            "SELECT path, occurrence, artifact_hash FROM commits WHERE run_id = ?1 ORDER BY seq",
        )
        .expect("prepare");
    stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: signalling a child this test spawned
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "SIGINT",
    }
}

/// Whether process `pid` still runs (a zombie does not).
fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
}

/// Waits (boundedly) for `child`; kills it if it hangs.
fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            signal(&child, libc::SIGKILL);
            let o = child.wait_with_output().expect("output");
            panic!("guardflow hung:\n{}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The answers a resume that stopped with the effect question needs:
/// `--effect-ran` when the effect's log says it finished, else
/// `--effect-did-not-run`.
fn answers(stderr: &str, effects: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in stderr.lines() {
        let Some(rest) = line.trim().split("--effect-ran ").nth(1) else {
            continue;
        };
        let path = rest.split_whitespace().next().unwrap_or("").to_string();
        let action = path.rsplit('/').next().unwrap_or("");
        let name = if action == "d" { "deploy" } else { "migrate" };
        let started = effects.matches(&format!("start {name} ")).count();
        let done = effects.matches(&format!("done {name} ")).count();
        if done > 0 && done == started {
            out.push("--effect-ran".into());
        } else {
            out.push("--effect-did-not-run".into());
        }
        out.push(path);
    }
    out
}

/// Resumes run `id` until it finishes: answers effect questions, waits
/// while programs from before the stop still run. Returns the last
/// output (exit 0) and how many questions were answered.
fn resume_to_the_end(t: &Trial, id: &str, why: &str) -> (Output, usize) {
    let mut questions = 0;
    let mut extra: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "{why}: the resume never finished"
        );
        let mut args = vec!["run", "f.guardflow", "--resume", id, "--json"];
        args.extend(extra.iter().map(String::as_str));
        let child = t
            .command(&args, "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let o = wait_bounded(child, Duration::from_secs(60));
        match o.status.code() {
            Some(0) => return (o, questions),
            Some(3) => {
                questions += 1;
                assert!(questions < 4, "{why}: asked again and again:\n{}", text(&o));
                extra = answers(&String::from_utf8_lossy(&o.stderr), &t.read("effects"));
                assert!(
                    !extra.is_empty(),
                    "{why}: a question without a way to answer it:\n{}",
                    text(&o)
                );
            }
            Some(75) => {
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("still running") && err.contains("process group"),
                    "{why}: {err}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => panic!("{why}: the resume failed:\n{}", text(&o)),
        }
    }
}

/// What the report of a run says, read from the store (a process that
/// recorded the run's end and was killed before it printed it): its
/// success, result (the deploy's artifact) and calls.
fn stored_report(t: &Trial, db: &Connection, id: &str) -> serde_json::Value {
    let success = query_i64(
        db,
        "SELECT success FROM finishes WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1",
        id,
    );
    let result: String = db
        .query_row(
            "SELECT artifact FROM commits WHERE run_id = ?1 AND action = 'deploy' ORDER BY seq DESC LIMIT 1",
            [id],
            |r| r.get(0),
        )
        .unwrap_or_default();
    let result = serde_json::from_str::<serde_json::Value>(&result).unwrap_or(result.into());
    let runs = t
        .command(&["runs", "--format", "json"], "0")
        .output()
        .expect("runs");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&runs.stdout).trim()).expect("runs json");
    serde_json::json!({
        "success": success == 1,
        "result": result,
        "generator_calls": query_i64(db, "SELECT generator_calls FROM finishes WHERE run_id = ?1", id),
        "repeated_calls": line["repeated_calls"],
    })
}

/// The final report of a `--json` run.
fn report(o: &Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(last).expect("the report line");
    v["report"].clone()
}

/// One stop at a random point and the resumes after it; checks every
/// promise. Returns whether the stop landed while the run ran.
fn trial(rng: &mut Rng, seed: u64, n: usize, bound: i64) -> Option<&'static str> {
    let t = Trial::new(FLOW);
    let pick = rng.below(3) as usize;
    let delay = ["0", "0.01", "0.03"][pick];
    let sig = [libc::SIGKILL, libc::SIGTERM, libc::SIGHUP, libc::SIGINT][rng.below(4) as usize];
    // about as long as such a run takes, so most stops land mid-run
    let wait = Duration::from_micros(rng.below([150_000, 250_000, 400_000][pick]));
    let why = format!(
        "seed {seed}, trial {n}: {} after {} ms, generator delay {delay}",
        signal_name(sig),
        wait.as_millis()
    );
    let child = t
        .command(&["run", "f.guardflow"], delay)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(wait);
    let ran = ended(&child);
    signal(&child, sig);
    let o = wait_bounded(child, Duration::from_secs(60));
    let id = run_id(&t.db())?;
    let db = open(&t.db())?;
    let finished = query_i64(&db, "SELECT count(*) FROM finishes WHERE run_id = ?1", &id);
    if ran || finished > 0 {
        return None; // it ended before the stop: not a kill point
    }
    if sig != libc::SIGKILL {
        // a handled signal: its exit status and the summary, unless it
        // landed before the handlers were installed
        let code = o.status.code();
        let want = match sig {
            libc::SIGTERM => 143,
            libc::SIGHUP => 129,
            _ => 130,
        };
        if let Some(code) = code {
            assert_eq!(code, want, "{why}:\n{}", text(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("continue it with"),
                "{why}:\n{}",
                text(&o)
            );
        }
    }
    let before = commits(&db, &id);
    let calls_before = t.lines("calls").len();

    // a third of the time the first resume is stopped too (unless it
    // finishes first: then its report is the last)
    let mut finished_early = None;
    let why = if rng.below(3) == 0 {
        let sig2 = [libc::SIGKILL, libc::SIGTERM][rng.below(2) as usize];
        let wait2 = Duration::from_micros(rng.below(250_000));
        let child = t
            .command(&["run", "f.guardflow", "--resume", &id, "--json"], delay)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(wait2);
        signal(&child, sig2);
        let o = wait_bounded(child, Duration::from_secs(60));
        if o.status.code() == Some(0) {
            finished_early = Some(Ok(o));
        } else if o.status.code().is_none()
            && query_i64(&db, "SELECT count(*) FROM finishes WHERE run_id = ?1", &id) > 0
        {
            // the run finished, and the signal landed before the process
            // exited: its end is in the store, not on its stdout
            finished_early = Some(Err(()));
        }
        format!(
            "{why}; its resume: {} after {} ms",
            signal_name(sig2),
            wait2.as_millis()
        )
    } else {
        why
    };

    let rep = match finished_early {
        Some(Ok(o)) => report(&o),
        Some(Err(())) => stored_report(&t, &db, &id),
        None => report(&resume_to_the_end(&t, &id, &why).0),
    };
    assert_eq!(rep["success"], true, "{why}: {rep}");
    assert_eq!(rep["result"], "sh effect.sh deploy\n", "{why}: {rep}");
    let after = commits(&db, &id);
    // nothing lost: every earlier commit is there, unchanged
    for c in &before {
        assert!(after.contains(c), "{why}: lost {c:?}: {after:?}");
    }
    // nothing committed twice at one place
    let keys: BTreeSet<(String, i64)> = after.iter().map(|(p, o, _)| (p.clone(), *o)).collect();
    assert_eq!(keys.len(), after.len(), "{why}: {after:?}");
    // no generator call for an action after it committed
    let committed: BTreeSet<&str> = before
        .iter()
        .filter(|(p, _, _)| !p.ends_with("/t") && !p.ends_with("/i"))
        .map(|(p, _, _)| p.rsplit('/').next().unwrap_or(""))
        .collect();
    for line in t.lines("calls")[calls_before..]
        .iter()
        .filter(|l| l.starts_with("start"))
    {
        let action = line.split(' ').nth(1).unwrap_or("");
        let label = match action {
            "left" => "l",
            "right" => "r",
            "migrate" => "m",
            "deploy" => "d",
            _ => "",
        };
        assert!(
            !committed.contains(label),
            "{why}: `{action}` was called again after its commit"
        );
    }
    // an answer that was recorded is never asked for again: its attempt
    // was judged, not interrupted
    let answered_then_interrupted = query_i64(
        &db,
        "SELECT count(*) FROM run_journal g JOIN run_journal v
           ON v.run_id = g.run_id AND v.kind = 'attempt' AND v.path = g.path
          AND v.occurrence = g.occurrence AND v.idx = g.idx
         WHERE g.run_id = ?1 AND g.kind = 'generated' AND v.verdict = 'interrupted'",
        &id,
    );
    assert_eq!(answered_then_interrupted, 0, "{why}");
    // counts agree: the report, the recorded end, and `runs`
    let interrupted = query_i64(
        &db,
        "SELECT count(*) FROM verdicts WHERE run_id = ?1 AND verdict = 'interrupted'",
        &id,
    );
    let started = query_i64(&db, "SELECT count(*) FROM attempts WHERE run_id = ?1", &id);
    assert_eq!(rep["repeated_calls"], interrupted, "{why}: {rep}");
    assert_eq!(
        rep["generator_calls"],
        started - interrupted,
        "{why}: {rep}"
    );
    let finished_calls = query_i64(
        &db,
        "SELECT generator_calls FROM finishes WHERE run_id = ?1",
        &id,
    );
    assert_eq!(rep["generator_calls"], finished_calls, "{why}");
    let runs = t
        .command(&["runs", "--format", "json"], "0")
        .output()
        .expect("runs");
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&runs.stdout).trim()).expect("runs json");
    assert_eq!(line["calls"], rep["generator_calls"], "{why}: {line}");
    assert_eq!(
        line["repeated_calls"], rep["repeated_calls"],
        "{why}: {line}"
    );
    // within the bound, and every repeated call was in flight
    assert!(finished_calls <= bound, "{why}: {finished_calls} > {bound}");
    let made = t
        .lines("calls")
        .iter()
        .filter(|l| l.starts_with("start"))
        .count() as i64;
    assert!(made <= started, "{why}: {made} calls, {started} recorded");
    // the non-idempotent effect ran exactly once, the idempotent one at
    // least once; no two at a time
    let effects = t.read("effects");
    assert_eq!(
        effects.matches("done deploy").count(),
        1,
        "{why}:\n{effects}"
    );
    assert!(
        effects.matches("done migrate").count() >= 1,
        "{why}:\n{effects}"
    );
    assert_eq!(t.read("overlaps"), "", "{why}");
    // nothing left behind
    for pid in t.lines("pids") {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(&pid) {
            assert!(Instant::now() < deadline, "{why}: effect {pid} still runs");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        !t.db()
            .with_extension("db.locks")
            .join(format!("{id}.children"))
            .exists(),
        "{why}: the list of programs was left behind"
    );
    Some(signal_name(sig))
}

/// Whether the process has already ended (without reaping it).
fn ended(child: &Child) -> bool {
    !alive(&child.id().to_string())
}

#[test]
fn two_hundred_random_stops_all_resume_to_one_result() {
    let seed = std::env::var("GUARDFLOW_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let want: usize = std::env::var("GUARDFLOW_KILL_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    // the bound, from a whole run
    let t = Trial::new(FLOW);
    let o = t
        .command(&["run", "f.guardflow", "--json"], "0")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rep = report(&o);
    let bound = rep["worst_case_calls"].as_i64().expect("bounded");
    assert_eq!(rep["generator_calls"], 8, "{rep}");
    drop(t);

    let started = Instant::now();
    let points = std::sync::Mutex::new(BTreeMap::<&str, usize>::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let landed = std::sync::atomic::AtomicUsize::new(0);
    // two at a time: the machine is shared
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (points, next, landed) = (&points, &next, &landed);
            s.spawn(move || {
                while landed.load(std::sync::atomic::Ordering::SeqCst) < want {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    assert!(n < want * 4, "seed {seed}: too few stops landed mid-run");
                    let mut rng = Rng(seed ^ (n as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                    rng.next();
                    if let Some(sig) = trial(&mut rng, seed, n, bound) {
                        landed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        *points.lock().expect("points").entry(sig).or_default() += 1;
                    }
                }
            });
        }
    });
    let points = points.into_inner().expect("points");
    eprintln!(
        "seed {seed}: {} stops resumed in {:.1}s: {points:?}",
        landed.into_inner(),
        started.elapsed().as_secs_f64()
    );
    // each signal about a quarter of the time
    for sig in ["SIGKILL", "SIGTERM", "SIGHUP", "SIGINT"] {
        assert!(
            points.get(sig).copied().unwrap_or(0) >= want / 10,
            "seed {seed}: {points:?}"
        );
    }
}

/// A generator whose call waits (writing its pid to `pid`) while the
/// file `slow` exists, then answers by action.
const SLOW_GEN: &str = r#"#!/bin/sh
cat > /dev/null
echo "$GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT" >> calls
if [ -e slow ]; then echo $$ > pid; while [ -e slow ]; do sleep 0.02; done; fi
case "$GUARDFLOW_ACTION" in
  deploy) echo "sh deploy.sh" ;;
  *) echo "good $GUARDFLOW_ACTION" ;;
esac
"#;

/// An effect that waits (writing its pid to `effect-pid`) while the
/// file `slow-effect` exists.
const SLOW_EFFECT: &str = r#"#!/bin/sh
echo "start" >> effects
if [ -e slow-effect ]; then echo $$ > effect-pid; while [ -e slow-effect ]; do sleep 0.02; done; fi
echo "done" >> effects
"#;

fn slow_trial(flow: &str) -> Trial {
    let t = Trial::new(flow);
    std::fs::write(t.root.join("gen.sh"), SLOW_GEN).expect("gen.sh");
    std::fs::write(t.root.join("deploy.sh"), SLOW_EFFECT).expect("deploy.sh");
    t
}

const ONE_STEP: &str = r#"use std.{contains}
generator g = cmd("sh gen.sh", timeout: 2m, env: ["DELAY"], write: ["."])
action step() -> Text { :generate g "step" :guard contains("good") :retry 0 }
task main() -> Text { method m { :subtasks (s: step()) :result s } }
"#;

fn output(mut c: Command) -> Output {
    let child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_bounded(child, Duration::from_secs(60))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn sigterm_and_sighup_stop_a_run_like_ctrl_c() {
    for (sig, code, name) in [
        (libc::SIGTERM, 143, "SIGTERM"),
        (libc::SIGHUP, 129, "SIGHUP"),
    ] {
        let t = slow_trial(ONE_STEP);
        std::fs::write(t.root.join("slow"), "").expect("slow");
        let child = t
            .command(&["run", "f.guardflow"], "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let pid = crate::support::wait_for_pid(&t.root.join("pid")).expect("the call started");
        signal(&child, sig);
        let o = wait_bounded(child, Duration::from_secs(60));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{name}: {}", text(&o));
        assert!(err.contains(&format!("stopped by {name}")), "{err}");
        assert!(
            err.contains("generator calls: 1"),
            "{name}: the summary: {err}"
        );
        assert!(err.contains("continue it with"), "{err}");
        // the generator's program was killed with its group
        crate::support::assert_process_ends(&pid, "the generator's program");
        let id = run_id(&t.db()).expect("a run");
        assert!(
            !t.db()
                .with_extension("db.locks")
                .join(format!("{id}.children"))
                .exists(),
            "{name}: the list of programs is left"
        );
        let runs = output(t.command(&["runs"], "0"));
        assert!(
            String::from_utf8_lossy(&runs.stdout).contains("interrupted"),
            "{}",
            text(&runs)
        );
        // the interrupted call is made again, outside the budget of
        // `:retry 0`, and reported as repeated
        std::fs::remove_file(t.root.join("slow")).expect("rm slow");
        let o = output(t.command(&["run", "f.guardflow", "--resume", &id], "0"));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "good step");
        let err = stderr(&o);
        assert!(
            err.contains("generator calls: 1 (the checker's worst case: 1)"),
            "{err}"
        );
        assert!(err.contains("repeated calls: 1"), "{err}");
    }
}

/// SIGKILL cannot be handled: the generator's program lives on, and a
/// resume waits for it; then the `:retry 0` action's interrupted call is
/// made again, and `runs`, `show` and the summary say so alike.
#[test]
fn after_sigkill_a_resume_waits_for_the_programs_then_repeats_the_call() {
    let t = slow_trial(ONE_STEP);
    // the generator's program dies with guardflow (the parent-death
    // signal); what it started in the background lives on in its group
    std::fs::write(
        t.root.join("gen.sh"),
        "cat > /dev/null\necho \"$GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT\" >> calls\n\
         if [ -e slow ]; then sh wait.sh & wait; fi\necho \"good $GUARDFLOW_ACTION\"\n",
    )
    .expect("gen.sh");
    std::fs::write(
        t.root.join("wait.sh"),
        "echo $$ > pid\nwhile [ -e slow ]; do sleep 0.02; done\n",
    )
    .expect("wait.sh");
    std::fs::write(t.root.join("slow"), "").expect("slow");
    let child = t
        .command(&["run", "f.guardflow"], "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = crate::support::wait_for_pid(&t.root.join("pid")).expect("the call started");
    signal(&child, libc::SIGKILL);
    let o = wait_bounded(child, Duration::from_secs(60));
    assert_eq!(o.status.code(), None, "killed");
    assert!(
        alive(&pid),
        "what the generator's program started died with guardflow"
    );
    let id = run_id(&t.db()).expect("a run");
    let o = output(t.command(&["run", "f.guardflow", "--resume", &id], "0"));
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));
    let err = stderr(&o);
    // SAFETY: getpgid only reads
    let pgid = unsafe { libc::getpgid(pid.parse().expect("pid")) };
    assert!(pgid > 0, "the program's group");
    assert!(err.contains(&format!("process group {pgid}")), "{err}");
    // the group's leader if it still runs, else a member that does
    assert!(
        err.contains("gen.sh") || err.contains("wait.sh"),
        "the command is named: {err}"
    );
    assert!(err.contains(&format!("kill -- -{pgid}")), "{err}");
    // nothing was written: still one session
    let db = open(&t.db()).expect("db");
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM sessions WHERE run_id = ?1", &id),
        1
    );
    // the program ends; the resume goes on
    std::fs::remove_file(t.root.join("slow")).expect("rm slow");
    crate::support::assert_process_ends(&pid, "the generator's program");
    let deadline = Instant::now() + Duration::from_secs(30);
    let o = loop {
        let o = output(t.command(&["run", "f.guardflow", "--resume", &id], "0"));
        if o.status.code() != Some(75) || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(stderr(&o).contains("repeated calls: 1"), "{}", text(&o));
    let show = output(t.command(&["show", &id], "0"));
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("attempt 1: interrupted in its generator call, made again"),
        "{shown}"
    );
    assert!(
        shown.contains("after 1 generator calls and 1 repeated"),
        "{shown}"
    );
    let runs = output(t.command(&["runs"], "0"));
    let listed = String::from_utf8_lossy(&runs.stdout);
    assert!(listed.contains("1 / 1 +1 repeated"), "{listed}");
}

const DEPLOY: &str = r#"use std.{exit_code}
generator g = cmd("sh gen.sh", timeout: 2m, env: ["DELAY"], write: ["."])
action deploy() -> Command {
  :generate g "deploy"
  :effect shell(timeout: 2m)
  :guard exit_code(0)
  :retry 0
}
task main() { method m { :subtasks (d: deploy()) } }
"#;

/// A run stopped (SIGTERM) while its non-idempotent effect runs.
fn stopped_in_the_effect(flow: &str) -> (Trial, String) {
    let t = slow_trial(flow);
    std::fs::write(t.root.join("slow-effect"), "").expect("slow");
    let child = t
        .command(&["run", "f.guardflow"], "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = crate::support::wait_for_pid(&t.root.join("effect-pid")).expect("the effect ran");
    signal(&child, libc::SIGTERM);
    let o = wait_bounded(child, Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(143), "{}", text(&o));
    crate::support::assert_process_ends(&pid, "the effect");
    std::fs::remove_file(t.root.join("slow-effect")).expect("rm");
    let id = run_id(&t.db()).expect("a run");
    (t, id)
}

#[test]
fn an_effect_stopped_mid_run_is_asked_about_not_run_again() {
    let (t, id) = stopped_in_the_effect(DEPLOY);
    let resume = |extra: &[&str]| {
        let mut args = vec!["run", "f.guardflow", "--resume", &id];
        args.extend_from_slice(extra);
        output(t.command(&args, "0"))
    };
    let o = resume(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = stderr(&o);
    for want in [
        "stopped while the effect of `deploy` (main/m/d) was running",
        "sh deploy.sh",
        "not `:idempotent`",
        "--effect-ran main/m/d",
        "--effect-failed main/m/d",
        "--effect-did-not-run main/m/d",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    // an answer about nothing that ran is refused
    let o = resume(&["--effect-ran", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        stderr(&o).contains("no effect of `nope` was running"),
        "{}",
        text(&o)
    );
    // asking wrote nothing, and ran nothing
    let db = open(&t.db()).expect("db");
    assert_eq!(
        query_i64(&db, "SELECT count(*) FROM sessions WHERE run_id = ?1", &id),
        1
    );
    assert_eq!(t.lines("effects"), ["start"]);
    assert_eq!(t.lines("calls").len(), 1);

    // it ran: accepted as it is, not run again, no generator call
    let o = resume(&["--effect-ran", "deploy"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(t.lines("effects"), ["start"]);
    assert_eq!(t.lines("calls").len(), 1);
    let show = output(t.command(&["show", &id], "0"));
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("attempt 1: passed"),
        "{}",
        text(&show)
    );
    let verdict: String = db
        .query_row(
            "SELECT feedback FROM verdicts WHERE run_id = ?1",
            [&id],
            |r| r.get(0),
        )
        .expect("verdict");
    assert!(verdict.contains("--effect-ran"), "{verdict}");

    // it did not run: it runs again, with the command it had
    let (t, id) = stopped_in_the_effect(DEPLOY);
    let o = output(t.command(
        &[
            "run",
            "f.guardflow",
            "--resume",
            &id,
            "--effect-did-not-run",
            "main/m/d",
        ],
        "0",
    ));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(t.lines("effects"), ["start", "start", "done"]);
    assert_eq!(t.lines("calls").len(), 1, "no generator call again");

    // it failed: the action fails, as a failed effect does
    let (t, id) = stopped_in_the_effect(DEPLOY);
    let o = output(t.command(
        &[
            "run",
            "f.guardflow",
            "--resume",
            &id,
            "--effect-failed",
            "deploy",
        ],
        "0",
    ));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("its effect failed"), "{}", text(&o));
    assert_eq!(t.lines("effects"), ["start"]);
}

#[test]
fn an_idempotent_effect_stopped_mid_run_runs_again_by_itself() {
    let flow = DEPLOY.replace(":retry 0", ":retry 0\n  :idempotent");
    let (t, id) = stopped_in_the_effect(&flow);
    let o = output(t.command(&["run", "f.guardflow", "--resume", &id], "0"));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(t.lines("effects"), ["start", "start", "done"]);
    assert_eq!(t.lines("calls").len(), 1, "no generator call again");
}

/// Two `guardflow run` processes of workflows that use one `:shared`
/// resource never hold it at once; `runs` shows the holder.
#[test]
fn runs_in_two_processes_never_overlap_on_a_shared_resource() {
    let flow = r#"use std.{exit_code}
resource repo: 1 :shared
generator g = cmd("echo 'sh work.sh'", timeout: 2m, env: ["DELAY"], write: ["."])
action work() -> Command {
  :generate g "work"
  :effect shell(timeout: 2m)
  :guard exit_code(0)
  :retry 0
  :uses repo
}
task main() { method m { :subtasks (w: work()) } }
"#;
    let t = Trial::new(flow);
    // each holder logs its start and end, and waits while `hold` exists
    std::fs::write(
        t.root.join("work.sh"),
        "echo \"start $$\" >> log\nwhile [ -e hold ]; do sleep 0.02; done\necho \"end $$\" >> log\n",
    )
    .expect("work.sh");
    std::fs::write(t.root.join("hold"), "").expect("hold");
    let children: Vec<Child> = (0..3)
        .map(|_| {
            t.command(&["run", "f.guardflow"], "0")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    // one holds the resource; the others wait for it
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.lines("log").is_empty() {
        assert!(Instant::now() < deadline, "no run took the resource");
        std::thread::sleep(Duration::from_millis(10));
    }
    let runs = output(t.command(&["runs"], "0"));
    let listed = String::from_utf8_lossy(&runs.stdout);
    assert_eq!(listed.matches("holds repo").count(), 1, "{listed}");
    // the others really wait: give them every chance to overlap
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(t.lines("log").len(), 1, "two held the resource at once");
    }
    std::fs::remove_file(t.root.join("hold")).expect("rm hold");
    for c in children {
        let o = wait_bounded(c, Duration::from_secs(60));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let log = t.lines("log");
    assert_eq!(log.len(), 6, "{log:?}");
    for pair in log.chunks(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            a.starts_with("start") && b.starts_with("end") && a[6..] == b[4..],
            "overlap: {log:?}"
        );
    }
    // released however the holders ended
    let runs = output(t.command(&["runs"], "0"));
    assert!(
        !String::from_utf8_lossy(&runs.stdout).contains("holds"),
        "{}",
        text(&runs)
    );
}

/// A stop while the guard judges an answer (here SIGKILL during a guard
/// that runs a program) never calls the generator again: the answer was
/// recorded before it was judged, and the resume judges it.
#[test]
fn a_stop_during_the_guard_does_not_call_the_generator_again() {
    let flow = r#"use std.{command}
generator g = cmd("sh gen.sh", timeout: 2m, env: ["DELAY"], write: ["."])
action step() -> Text { :generate g "step" :guard command("sh guard.sh", timeout: 2m, write: ["."]) :retry 0 }
task main() -> Text { method m { :subtasks (s: step()) :result s } }
"#;
    let t = slow_trial(flow);
    std::fs::write(
        t.root.join("guard.sh"),
        "echo $$ > guard-pid\nwhile [ -e slow-guard ]; do sleep 0.02; done\n",
    )
    .expect("guard.sh");
    std::fs::write(t.root.join("slow-guard"), "").expect("slow");
    let child = t
        .command(&["run", "f.guardflow"], "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = crate::support::wait_for_pid(&t.root.join("guard-pid")).expect("the guard ran");
    signal(&child, libc::SIGKILL);
    wait_bounded(child, Duration::from_secs(60));
    std::fs::remove_file(t.root.join("slow-guard")).expect("rm");
    crate::support::assert_process_ends(&pid, "the guard");
    let id = run_id(&t.db()).expect("a run");
    let deadline = Instant::now() + Duration::from_secs(30);
    let o = loop {
        let o = output(t.command(&["run", "f.guardflow", "--resume", &id], "0"));
        if o.status.code() != Some(75) || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "good step");
    assert_eq!(t.lines("calls").len(), 1, "the generator was called again");
    assert!(!stderr(&o).contains("repeated"), "{}", text(&o));
}
