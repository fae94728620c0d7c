//! The run store through the real binary: SIGKILL at many points and
//! resume, the run lock, foreign and corrupt files, unwritable places,
//! and the commands that read a store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use guardflow::engine::{
    BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig, Verdict,
};
use guardflow::store::{RunMeta, Store, FORMAT_VERSION};
use rusqlite::{Connection, OpenFlags};

use crate::support::bin;

/// A generator program: counts its calls in `$CALLS`, waits `$DELAY`
/// seconds, answers a draft without feedback and a good answer with it
/// (the flow opts in to both variables and to writing its directory).
const GEN: &str = r#"#!/bin/sh
cat > /dev/null
echo "$GUARDFLOW_ACTION $GUARDFLOW_ATTEMPT" >> "$CALLS"
sleep "${DELAY:-0}"
if [ -z "$GUARDFLOW_FEEDBACK" ]; then echo "draft"; else echo "good $GUARDFLOW_ACTION"; fi
"#;

/// Fork-join with retries: plan ; (left || right) ; merge, each passing
/// at its second attempt (after feedback), each allowed four.
const FLOW: &str = r#"use std.{contains}
generator g = cmd("sh gen.sh", timeout: 60s, env: ["CALLS", "DELAY"], write: ["."])
action plan(goal: Text) -> Text { :generate g "plan {goal}" :guard contains("good") :retry 3 }
action left(p: Text) -> Text { :generate g "left {p}" :guard contains("good") :retry 3 }
action right(p: Text) -> Text { :generate g "right {p}" :guard contains("good") :retry 3 }
action merge(a: Text, b: Text) -> Text { :generate g "merge {a} {b}" :guard contains("good") :retry 3 }
task main(goal: Text) -> Text {
  method m {
    :subtasks (p: plan(goal), l: left(p), r: right(p), j: merge(l, r))
    :ordering (p ; (l || r) ; j)
    :result j
  }
}
"#;

const PATHS: [&str; 4] = ["main/m/p", "main/m/l", "main/m/r", "main/m/j"];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("gen.sh"), GEN).expect("gen.sh");
        std::fs::write(root.join("f.guardflow"), FLOW).expect("flow");
        Fixture { _dir: dir, root }
    }

    fn flow(&self) -> String {
        self.root.join("f.guardflow").to_string_lossy().into_owned()
    }

    fn db(&self) -> PathBuf {
        self.root.join(".guardflow").join("runs.db")
    }

    fn guardflow(&self, args: &[&str], calls: &Path, delay: &str) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(&self.root)
            .env("CALLS", calls)
            .env("DELAY", delay)
            .env("NO_COLOR", "1")
            .env_remove("GUARDFLOW_STORE");
        c
    }

    fn run(&self, args: &[&str], calls: &Path) -> Output {
        self.guardflow(args, calls, "0")
            .output()
            .expect("guardflow runs")
    }
}

fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn read(db: &Path) -> Connection {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    c.busy_timeout(Duration::from_secs(30)).expect("timeout");
    c
}

fn newest_run(c: &Connection) -> Option<String> {
    c.query_row("SELECT id FROM runs ORDER BY rowid DESC LIMIT 1", [], |r| {
        r.get(0)
    })
    .ok()
}

fn count(c: &Connection, sql: &str, id: &str) -> i64 {
    c.query_row(sql, [id], |r| r.get(0)).unwrap_or(0)
}

/// Attempts, verdicts and commits recorded for run `id`.
fn rows(c: &Connection, id: &str) -> i64 {
    count(
        c,
        "SELECT (SELECT count(*) FROM attempts WHERE run_id = ?1)
              + (SELECT count(*) FROM verdicts WHERE run_id = ?1)
              + (SELECT count(*) FROM commits WHERE run_id = ?1)",
        id,
    )
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

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `guardflow run FLOW --resume ID`; while programs from before a SIGKILL
/// still run (exit 75 naming them), stops them as the message says and
/// tries again.
fn resume(fx: &Fixture, flow: &str, id: &str, calls: &Path) -> Output {
    for _ in 0..100 {
        let o = fx.run(&["run", flow, "--resume", id], calls);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if o.status.code() != Some(75) || !err.contains("still running") {
            return o;
        }
        let groups = err.split("kill -- ").nth(1).unwrap_or("");
        let groups = groups.split('`').next().unwrap_or("");
        for g in groups.split_whitespace() {
            if let Ok(pgid) = g.trim_start_matches('-').parse::<libc::pid_t>() {
                // SAFETY: stopping what a killed guardflow of this test left
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the programs of run {id} never ended");
}

fn sigkill(child: &std::process::Child) {
    // SAFETY: signalling a child this test spawned
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
}

#[test]
fn sigkill_at_fifty_points_then_resume_loses_and_repeats_nothing() {
    let fx = Fixture::new();
    let flow = fx.flow();
    // a first, whole run: the store exists, and the bound is known
    let calls = fx.root.join("calls-0");
    let o = fx.run(&["run", &flow, "-i", "goal=x"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let db = read(&fx.db());
    let bound: i64 = db
        .query_row("SELECT worst_case_calls FROM runs", [], |r| r.get(0))
        .expect("bound");
    assert_eq!(bound, 16);
    assert_eq!(lines(&calls).len(), 8);
    let full = rows(&db, &newest_run(&db).expect("a run"));
    assert_eq!(full, 20, "8 attempts, 8 verdicts, 4 commits");

    let mut kills = 0;
    let mut seen_points = BTreeSet::new();
    let started = Instant::now();
    for i in 0..200u64 {
        if kills >= 50 {
            break;
        }
        // kill once the run has recorded `k` rows, `extra` ms later
        let k = 1 + (i % (full as u64 - 1)) as i64;
        let extra = Duration::from_millis((i / (full as u64 - 1)) * 4);
        let calls = fx.root.join(format!("calls-{}", i + 1));
        let before = newest_run(&db);
        let mut child = fx
            .guardflow(
                &["run", &flow, "-i", "goal=x"],
                &calls,
                ["0.02", "0.005", "0"][i as usize % 3],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let deadline = Instant::now() + Duration::from_secs(60);
        let id = loop {
            match newest_run(&db) {
                Some(id) if Some(&id) != before.as_ref() => break id,
                _ => {}
            }
            assert!(Instant::now() < deadline, "the run never started");
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut exited = false;
        while rows(&db, &id) < k {
            if child.try_wait().expect("wait").is_some() {
                exited = true;
                break;
            }
            assert!(Instant::now() < deadline, "the run stalled");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(extra);
        sigkill(&child);
        let status = child.wait().expect("wait");
        let finished = count(&db, "SELECT count(*) FROM finishes WHERE run_id = ?1", &id);
        if exited || status.success() || finished > 0 {
            continue; // it ended before the kill landed: not a kill point
        }
        kills += 1;
        let point = rows(&db, &id);
        let committed_before = commits(&db, &id);
        let calls_before = lines(&calls).len();
        // a point: what was on disk, and how many calls were made
        seen_points.insert((point, calls_before));

        let o = resume(&fx, &flow, &id, &calls);
        assert_eq!(
            o.status.code(),
            Some(0),
            "kill point {i} ({point} rows): {}",
            text(&o)
        );
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "good merge");

        let after = commits(&db, &id);
        // nothing lost: every earlier commit is still there, unchanged
        for c in &committed_before {
            assert!(after.contains(c), "kill point {i}: lost {c:?}: {after:?}");
        }
        // nothing duplicated: each subtask committed exactly once
        let paths: Vec<&str> = after.iter().map(|(p, _, _)| p.as_str()).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        let mut want = PATHS.to_vec();
        want.sort_unstable();
        assert_eq!(sorted, want, "kill point {i}: {after:?}");
        // no generator call again for a committed action
        let reused: BTreeSet<String> = committed_before
            .iter()
            .map(|(p, _, _)| action_of(p).to_string())
            .collect();
        for line in &lines(&calls)[calls_before..] {
            let action = line.split(' ').next().unwrap_or("");
            assert!(
                !reused.contains(action),
                "kill point {i}: `{action}` was called again after its commit"
            );
        }
        // every call ever made, before and after the kill, within the
        // bound, but for the calls in flight at the kill, made again
        let total = lines(&calls).len() as i64;
        let repeated = count(
            &db,
            "SELECT count(*) FROM verdicts WHERE run_id = ?1 AND verdict = 'interrupted'",
            &id,
        );
        assert!(
            total - repeated <= bound,
            "kill point {i}: {total} calls, {repeated} repeated > {bound}"
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM finishes WHERE run_id = ?1 AND success",
                &id
            ),
            1
        );
        // every call was recorded as an attempt before it was made (a kill
        // may land after the record and before the call)
        let attempts = count(&db, "SELECT count(*) FROM attempts WHERE run_id = ?1", &id);
        assert!(
            total <= attempts && attempts - repeated <= bound,
            "kill point {i}: {total} calls, {attempts} attempts recorded, bound {bound}"
        );
    }
    assert!(kills >= 50, "only {kills} kills landed mid-run");
    assert!(
        seen_points.len() >= 8,
        "kills landed at too few distinct points: {seen_points:?}"
    );
    eprintln!(
        "{kills} kills at {} distinct points in {:.1}s",
        seen_points.len(),
        started.elapsed().as_secs_f64()
    );
}

fn action_of(path: &str) -> &str {
    match path.rsplit('/').next() {
        Some("p") => "plan",
        Some("l") => "left",
        Some("r") => "right",
        Some("j") => "merge",
        _ => "",
    }
}

#[test]
fn a_second_writer_of_a_run_gets_exit_75() {
    let fx = Fixture::new();
    let flow = fx.flow();
    let calls = fx.root.join("calls");
    let mut child = fx
        .guardflow(&["run", &flow, "-i", "goal=x"], &calls, "30")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines(&calls).is_empty() {
        assert!(Instant::now() < deadline, "the generator never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let db = read(&fx.db());
    let id = newest_run(&db).expect("a run");
    let o = fx.run(&["run", &flow, "--resume", &id], &calls);
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "run {id} is being written by another process (pid {})",
            child.id()
        )),
        "{}",
        text(&o)
    );
    let listed = fx.run(&["runs"], &calls);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("running"),
        "{}",
        text(&listed)
    );
    sigkill(&child);
    child.wait().expect("wait");
    let listed = fx.run(&["runs"], &calls);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("interrupted"),
        "{}",
        text(&listed)
    );
    let o = resume(&fx, &flow, &id, &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // the killed call is made again (without feedback, so a draft), then
    // plan passes with feedback: three calls
    let plan_calls = lines(&calls)
        .iter()
        .filter(|l| l.starts_with("plan"))
        .count();
    assert_eq!(plan_calls, 3);
    let again = fx.run(&["run", &flow, "--resume", &id], &calls);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).contains("has already succeeded"),
        "{}",
        text(&again)
    );
}

/// Runs `guardflow run` and `guardflow runs` against `file` and checks
/// both refuse it with `words` and leave it byte for byte as it was.
fn refused(fx: &Fixture, file: &Path, words: &str) {
    let before = std::fs::read(file).expect("read");
    let calls = fx.root.join("calls");
    let store = file.to_string_lossy().into_owned();
    for args in [
        vec!["run", &fx.flow(), "-i", "goal=x", "--store", &store],
        vec!["runs", "--store", &store],
        vec!["stats", "--store", &store],
    ] {
        let o = fx.run(&args, &calls);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(words), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    assert_eq!(
        std::fs::read(file).expect("read"),
        before,
        "{} was changed",
        file.display()
    );
    assert!(lines(&calls).is_empty(), "a generator ran");
}

/// Processes that start at once on a store no one has made yet (runs in
/// parallel on a fresh project) all open it: none takes the others' new
/// tables for another program's database.
#[test]
fn stores_opened_at_once_before_they_exist_are_all_guardflow_stores() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..40 {
        let path = dir.path().join(format!("runs-{round}.db"));
        let start = Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Store::open(&path).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for o in openers {
            let opened = o.join().expect("an opener");
            assert!(opened.is_ok(), "round {round}: {}", opened.unwrap_err());
        }
    }
}

#[test]
fn foreign_newer_and_corrupt_files_are_refused_and_left_untouched() {
    let fx = Fixture::new();
    // not SQLite at all
    let junk = fx.root.join("junk.db");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, &bytes).expect("write");
    refused(
        &fx,
        &junk,
        "is not a guardflow run store (not an SQLite database)",
    );
    // another program's SQLite database
    let other = fx.root.join("other.db");
    {
        let c = Connection::open(&other).expect("create");
        c.execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');")
            .expect("fill");
    }
    refused(
        &fx,
        &other,
        "an SQLite database of another program, with 1 tables",
    );
    let app = fx.root.join("app.db");
    {
        let c = Connection::open(&app).expect("create");
        c.execute_batch("PRAGMA application_id = 1234;")
            .expect("fill");
    }
    refused(&fx, &app, "application id 0x4d2");
    // a store of a newer guardflow
    let newer = fx.root.join("newer.db");
    let calls = fx.root.join("calls-ok");
    let store = newer.to_string_lossy().into_owned();
    let o = fx.run(
        &["run", &fx.flow(), "-i", "goal=x", "--store", &store],
        &calls,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    {
        let c = Connection::open(&newer).expect("open");
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;")
            .expect("bump");
    }
    refused(
        &fx,
        &newer,
        &format!("has format version 99, newer than this guardflow reads ({FORMAT_VERSION})"),
    );
    // a store whose pages were overwritten
    let broken = fx.root.join("broken.db");
    let store = broken.to_string_lossy().into_owned();
    let o = fx.run(
        &["run", &fx.flow(), "-i", "goal=x", "--store", &store],
        &calls,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    {
        let c = Connection::open(&broken).expect("open");
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
            .expect("checkpoint");
    }
    let mut data = std::fs::read(&broken).expect("read");
    assert!(data.len() > 8192, "{}", data.len());
    for b in &mut data[4096..] {
        *b = 0xA5;
    }
    std::fs::write(&broken, &data).expect("write");
    let flow = fx.flow();
    for args in [
        vec!["runs", "--store", &store],
        vec!["stats", "--store", &store],
        vec!["run", &flow, "-i", "goal=x", "--store", &store],
    ] {
        let o = fx.run(&args, &calls);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(
                "the file is corrupt (database disk image is malformed); it is left untouched"
            ),
            "{args:?}: {}",
            text(&o)
        );
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
    }
    assert_eq!(std::fs::read(&broken).expect("read"), data);
}

#[test]
fn an_unwritable_store_is_a_clear_error_before_any_call() {
    let fx = Fixture::new();
    let calls = fx.root.join("calls");
    // a directory that cannot exist: its parent is a file
    std::fs::write(fx.root.join("plain"), "a file").expect("write");
    let o = fx.run(
        &[
            "run",
            &fx.flow(),
            "-i",
            "goal=x",
            "--store",
            "plain/runs.db",
        ],
        &calls,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o)
            .contains("error: the run store `plain/runs.db`: cannot create the directory `plain`"),
        "{}",
        text(&o)
    );
    assert!(lines(&calls).is_empty(), "a generator ran");
    // a read-only directory; permission bits do not stop root, so as root
    // the run is made as `nobody`
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let ro = fx.root.join("ro");
    std::fs::create_dir(&ro).expect("mkdir");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let mut command = fx.guardflow(
        &["run", &fx.flow(), "-i", "goal=x", "--store", "ro/runs.db"],
        &calls,
        "0",
    );
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } == 0 {
        // the fixture must be readable by that user
        for (path, mode) in [(&fx.root, 0o755), (&fx.root.join("f.guardflow"), 0o644)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        command.uid(65534).gid(65534);
    }
    let o = command.output().expect("guardflow runs");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("error: the run store `ro/runs.db`: cannot open it"),
        "{}",
        text(&o)
    );
    assert!(lines(&calls).is_empty(), "a generator ran");
}

#[test]
fn no_store_records_nothing() {
    let fx = Fixture::new();
    let calls = fx.root.join("calls");
    let o = fx.run(&["run", &fx.flow(), "-i", "goal=x", "--no-store"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!fx.root.join(".guardflow").exists());
    assert!(!text(&o).contains("recorded in"), "{}", text(&o));
}

#[test]
fn runs_show_trace_export_stats_and_bounds_from_runs() {
    let fx = Fixture::new();
    let calls = fx.root.join("calls");
    let o = fx.run(&["run", &fx.flow(), "-i", "goal=x"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = newest_run(&read(&fx.db())).expect("a run");
    assert!(
        text(&o).contains(&format!("run {id} (recorded in")),
        "{}",
        text(&o)
    );

    let o = fx.run(&["runs", "--format", "json"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(listed["id"], id.as_str());
    assert_eq!(listed["status"], "succeeded");
    assert_eq!(listed["calls"], 8);
    assert_eq!(listed["worst_case_calls"], 16);
    assert_eq!(listed["task"], "main");

    let o = fx.run(&["show", &id], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout);
    let want = "task main\n  method m\n    p = plan\n      attempt 1: rejected: contains: the text does not contain `good`";
    assert!(shown.contains(want), "{shown}");
    for label in ["l = left", "r = right", "j = merge"] {
        assert!(shown.contains(&format!("    {label}\n")), "{shown}");
    }
    assert_eq!(shown.matches("committed (sha256 ").count(), 4, "{shown}");
    assert!(
        shown.contains("finished: succeeded after 8 generator calls"),
        "{shown}"
    );

    let o = fx.run(&["trace", &id, "--format", "jsonl"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *kinds
            .entry(e["event"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    assert_eq!(kinds["attempt_started"], 8);
    assert_eq!(kinds["attempt"], 8);
    assert_eq!(kinds["committed"], 4);
    assert_eq!(kinds["run_started"], 1);
    assert_eq!(kinds["run_finished"], 1);
    assert_eq!(kinds["action_started"], 4);
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["seq"].as_i64().unwrap_or(0))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(events[0]["event"], "run_started");
    let plan = events
        .iter()
        .find(|e| e["event"] == "attempt" && e["path"] == "main/m/p" && e["verdict"] == "pass")
        .expect("plan's pass");
    assert_eq!(plan["output"], "good plan\n");
    let prompt = plan["prompt"].as_str().unwrap_or("");
    assert!(
        prompt.starts_with("plan x\n") && prompt.contains("does not contain `good`"),
        "the exact prompt, with the feedback: {prompt}"
    );
    assert_eq!(plan["attempt"], 2);
    assert_eq!(plan["output_hash"].as_str().map(str::len), Some(64));

    let o = fx.run(&["export", &id, "--sft"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pairs: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(pairs.len(), 4);
    let merge = pairs
        .iter()
        .find(|p| p["action"] == "merge")
        .expect("merge");
    assert_eq!(merge["messages"][0]["role"], "user");
    let prompt = merge["messages"][0]["content"].as_str().unwrap_or("");
    assert!(
        prompt.starts_with("merge good left\n good right\n"),
        "{prompt}"
    );
    assert_eq!(merge["messages"][1]["role"], "assistant");
    assert_eq!(merge["messages"][1]["content"], "good merge\n");
    assert_eq!(
        merge["feedback"][0],
        "contains: the text does not contain `good`; it must contain it exactly"
    );

    let o = fx.run(&["stats"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stats = String::from_utf8_lossy(&o.stdout);
    assert!(
        stats.contains("plan           2       1     1  0.500"),
        "{stats}"
    );

    let o = fx.run(&["check", &fx.flow(), "--bounds", "--from-runs"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("plan 0.500 (1/2)"), "{out}");
    // each action: 1 - 0.5^4 = 0.9375; all four: 0.9375^4
    assert!(out.contains("0.7725"), "{out}");

    let o = fx.run(&["show", "nope"], &calls);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("has no run `nope`"), "{}", text(&o));
}

/// Where runs went is found as a user expects (docs/store.md): from the
/// directory above a workflow's, the store below; from a directory below
/// a store, the store above; `$GUARDFLOW_STORE` for every command.
#[test]
fn reading_commands_find_the_store_above_or_below() {
    let fx = Fixture::new();
    let calls = fx.root.join("calls");
    let sub = fx.root.join("examples");
    std::fs::create_dir_all(sub.join("deeper")).expect("dirs");
    for f in ["f.guardflow", "gen.sh"] {
        std::fs::copy(fx.root.join(f), sub.join(f)).expect("copy");
    }
    let o = fx.run(&["run", "examples/f.guardflow", "-i", "goal=x"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let id = newest_run(&read(&sub.join(".guardflow").join("runs.db"))).expect("a run");

    // from the directory above: the only store below, named
    let o = fx.run(&["runs"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&id),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("note: reading examples/.guardflow/runs.db (the only run store below here)"),
        "{}",
        text(&o)
    );
    let o = fx.run(&["show", &id], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // from below the store: the nearest above, as git finds .git
    let o = fx
        .guardflow(&["runs"], &calls, "0")
        .current_dir(sub.join("deeper"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&id),
        "{}",
        text(&o)
    );

    // a second store below: a run is found in the one that holds it; a
    // listing asks which
    std::fs::create_dir(fx.root.join("other")).expect("dir");
    let o = fx.run(
        &["run", "f.guardflow", "-i", "goal=y", "--store", "other"],
        &calls,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = fx.run(&["show", &id], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = fx.run(&["runs"], &calls);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--store examples/.guardflow/runs.db")
            && text(&o).contains("--store other/.guardflow/runs.db"),
        "{}",
        text(&o)
    );

    // $GUARDFLOW_STORE: where runs go and are read when no --store is given
    let elsewhere = fx.root.join("elsewhere.db");
    let o = fx
        .guardflow(&["run", "f.guardflow", "-i", "goal=z"], &calls, "0")
        .env("GUARDFLOW_STORE", &elsewhere)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let third = newest_run(&read(&elsewhere)).expect("a run in $GUARDFLOW_STORE");
    let o = fx
        .guardflow(&["runs"], &calls, "0")
        .env("GUARDFLOW_STORE", &elsewhere)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&third),
        "{}",
        text(&o)
    );
    assert!(
        !fx.db().exists(),
        "nothing was recorded beside the workflow"
    );
}

/// Answers by action and prompt; on call `stop_at` it never answers and
/// says so, standing for a process that died there.
struct Scripted {
    calls: Arc<AtomicUsize>,
    stop_at: usize,
    stopped: Arc<tokio::sync::Notify>,
}

impl Generator for Scripted {
    fn generate(&self, r: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, AtomicOrdering::SeqCst) + 1;
            if n == self.stop_at {
                self.stopped.notify_one();
                std::future::pending::<()>().await;
            }
            let text = match r.action.as_str() {
                "spec" if r.attempt == 1 => "v1",
                "spec" => "v2",
                _ if r.prompt.contains("v2") => "good",
                _ => "bad",
            };
            Ok(GenResponse::text(text))
        })
    }
}

const ESCALATING: &str = "generator g = scripted()\n\
    action spec() -> Text { :generate g \"spec\" :guard ok :retry 2 :timeout 10s }\n\
    action implement(s: Text) -> Text { :generate g \"implement {s}\" :guard ok :retry 3 :timeout 10s }\n\
    task main() -> Text { method m {\n\
      :subtasks (t: spec(), i: implement(t) :escalate-to t after 2 :max-escalations 1)\n\
      :result i\n\
    } }\n";

fn scripted_engine(calls: &Arc<AtomicUsize>, stop_at: usize) -> (Engine, Arc<tokio::sync::Notify>) {
    let stopped = Arc::new(tokio::sync::Notify::new());
    let mut e = Engine::bare();
    e.register_guard("ok", "on Text", |c| {
        if c.text().contains("bad") {
            Verdict::fail("bad")
        } else {
            Verdict::Pass
        }
    });
    e.register_generator(
        "scripted",
        "()",
        Scripted {
            calls: calls.clone(),
            stop_at,
            stopped: stopped.clone(),
        },
    );
    (e, stopped)
}

/// Escalation regenerates an upstream artifact (a second occurrence of its
/// path); a run stopped at every one of its calls resumes to the same
/// result, within the bound, committing each occurrence once.
#[test]
fn resume_replays_escalation_stopped_at_every_call() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (e, _) = scripted_engine(&calls, 0);
    let w = e.compile("f.guardflow", ESCALATING).expect("compiles");
    let bound = w.worst_case_calls[0].expect("bounded");
    let rt = guardflow::engine::runtime().expect("runtime");
    let config = || RunConfig {
        task: "main".into(),
        ..RunConfig::default()
    };
    let whole = rt.block_on(e.run_config(&w, config())).expect("runs");
    assert!(whole.success);
    assert_eq!(whole.result, Some("good".into()));
    assert_eq!(whole.generator_calls, 5);
    assert_eq!(whole.guard_runs, 5, "every answer is judged");
    for stop_at in 1..=5 {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("runs.db");
        let calls = Arc::new(AtomicUsize::new(0));
        let (e, stopped) = scripted_engine(&calls, stop_at);
        let mut started = e.start(&w, &config()).expect("starts");
        let mut meta = RunMeta {
            id: String::new(),
            workflow: "f.guardflow".into(),
            workflow_hash: String::new(),
            task: "main".into(),
            inputs: serde_json::Map::new(),
            replacement: None,
            worst_case_calls: Some(bound),
            started_ms: 0,
            seed: None,
            bench: None,
        };
        let recorder = Store::open(&db)
            .and_then(|s| s.start_run(&mut meta))
            .expect("store");
        started.record_to(Arc::new(recorder));
        let finished = rt.block_on(async {
            tokio::select! {
                r = started.execute() => Some(r),
                _ = stopped.notified() => None,
            }
        });
        assert!(finished.is_none(), "stop at {stop_at}: the run ended first");
        drop(started);

        let (_, resume, recorder) = Store::open(&db)
            .and_then(|s| s.resume_run(&meta.id))
            .expect("resume");
        let (e, _) = scripted_engine(&calls, 0);
        let mut started = e.start(&w, &config()).expect("starts");
        started.resume(resume);
        started.record_to(Arc::new(recorder));
        let report = rt.block_on(started.execute());
        drop(started);
        assert!(report.success, "stop at {stop_at}: {:?}", report.failure);
        assert_eq!(report.result, Some("good".into()), "stop at {stop_at}");
        // the report counts the guard runs of both processes: every
        // counted call was judged; the interrupted one was made again,
        // outside the budget and the bound, and is reported as repeated
        assert_eq!(
            report.guard_runs, report.generator_calls,
            "stop at {stop_at}"
        );
        assert_eq!(report.repeated_calls, 1, "stop at {stop_at}");
        let total = calls.load(AtomicOrdering::SeqCst) as u64;
        assert_eq!(
            total,
            report.generator_calls + report.repeated_calls,
            "stop at {stop_at}"
        );
        assert!(
            report.generator_calls <= bound,
            "stop at {stop_at}: {} > {bound}",
            report.generator_calls
        );
        let db = read(&db);
        let committed = commits(&db, &meta.id);
        let keys: BTreeSet<(String, i64)> =
            committed.iter().map(|(p, o, _)| (p.clone(), *o)).collect();
        assert_eq!(
            keys.len(),
            committed.len(),
            "stop at {stop_at}: {committed:?}"
        );
        // stopped in spec's first attempt, the resumed run's first spec is
        // its second attempt ("v2"): no escalation is needed
        let want: BTreeSet<(String, i64)> = if stop_at == 1 {
            vec![("main/m/t".to_string(), 1), ("main/m/i".to_string(), 1)]
        } else {
            vec![
                ("main/m/t".to_string(), 1),
                ("main/m/t".to_string(), 2),
                ("main/m/i".to_string(), 2),
            ]
        }
        .into_iter()
        .collect();
        assert_eq!(keys, want, "stop at {stop_at}");
    }
}

/// The tables of format version 1 (a table per kind of event).
const VERSION_1: &str = "
CREATE TABLE runs (id TEXT PRIMARY KEY, workflow TEXT NOT NULL, workflow_hash TEXT NOT NULL,
    task TEXT NOT NULL, config TEXT NOT NULL, worst_case_calls INTEGER, started_ms INTEGER NOT NULL);
CREATE TABLE sessions (run_id TEXT NOT NULL, session INTEGER NOT NULL, pid INTEGER NOT NULL,
    started_ms INTEGER NOT NULL, PRIMARY KEY (run_id, session));
CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, kind TEXT NOT NULL, path TEXT, body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
CREATE TABLE attempts (run_id TEXT NOT NULL, seq INTEGER NOT NULL, session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, path TEXT NOT NULL, occurrence INTEGER NOT NULL, idx INTEGER NOT NULL,
    action TEXT NOT NULL, attempt INTEGER NOT NULL, prompt TEXT NOT NULL, role TEXT,
    PRIMARY KEY (run_id, path, occurrence, idx)) WITHOUT ROWID;
CREATE TABLE verdicts (run_id TEXT NOT NULL, seq INTEGER NOT NULL, session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, path TEXT NOT NULL, occurrence INTEGER NOT NULL, idx INTEGER NOT NULL,
    output TEXT, output_hash TEXT, verdict TEXT NOT NULL, feedback TEXT NOT NULL, tokens INTEGER,
    prompt_tokens INTEGER, outcome TEXT, generate_ms INTEGER NOT NULL, guard_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, path, occurrence, idx)) WITHOUT ROWID;
CREATE TABLE commits (run_id TEXT NOT NULL, seq INTEGER NOT NULL, session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, path TEXT NOT NULL, occurrence INTEGER NOT NULL, action TEXT NOT NULL,
    artifact TEXT NOT NULL, artifact_hash TEXT NOT NULL,
    PRIMARY KEY (run_id, path, occurrence)) WITHOUT ROWID;
CREATE TABLE finishes (run_id TEXT NOT NULL, seq INTEGER NOT NULL, session INTEGER NOT NULL,
    at_ms INTEGER NOT NULL, success INTEGER NOT NULL, generator_calls INTEGER NOT NULL,
    guard_runs INTEGER NOT NULL, elapsed_ms INTEGER NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
CREATE TRIGGER attempts_append_only_delete BEFORE DELETE ON attempts
    BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;
CREATE TRIGGER runs_append_only_delete BEFORE DELETE ON runs
    BEGIN SELECT RAISE(ABORT, 'the run store is append-only'); END;
PRAGMA application_id = 1195797623;
PRAGMA user_version = 1;
";

/// A store of format version 1 holding an interrupted run (`plan` passed
/// at its second attempt and committed) is moved to the journal when it is
/// first read: every row is kept, and the run resumes from it without
/// calling `plan`'s generator again.
#[test]
fn a_version_1_store_is_moved_to_the_journal_and_resumes() {
    let fx = Fixture::new();
    let db = fx.db();
    std::fs::create_dir_all(db.parent().expect("dir")).expect("mkdir");
    let id = "20261126-100000-abcd";
    let meta = RunMeta {
        id: id.to_string(),
        workflow: fx.flow(),
        workflow_hash: guardflow::store::content_hash(FLOW.as_bytes()),
        task: "main".into(),
        inputs: [("goal".to_string(), serde_json::json!("x"))]
            .into_iter()
            .collect(),
        replacement: None,
        worst_case_calls: Some(16),
        started_ms: 1_795_600_000_000,
        seed: None,
        bench: None,
    };
    {
        let c = Connection::open(&db).expect("create");
        c.execute_batch(VERSION_1).expect("version 1 tables");
        c.execute(
            "INSERT INTO runs VALUES (?1, ?2, ?3, 'main', ?4, 16, 1795600000000)",
            rusqlite::params![
                id,
                meta.workflow,
                meta.workflow_hash,
                serde_json::to_string(&meta).expect("json")
            ],
        )
        .expect("run");
        c.execute_batch(&format!(
            "INSERT INTO sessions VALUES ('{id}', 1, 1, 1795600000000);
             INSERT INTO events VALUES ('{id}', 1, 1, 1795600000001, 'run_started', NULL,
                 '{{\"event\":\"run_started\",\"task\":\"main\",\"worst_case_calls\":16}}');
             INSERT INTO attempts VALUES ('{id}', 2, 1, 1795600000002, 'main/m/p', 1, 1, 'plan', 1, 'plan x', NULL);
             INSERT INTO verdicts VALUES ('{id}', 3, 1, 1795600000003, 'main/m/p', 1, 1, 'draft', 'h1',
                 'fail', 'needs good', NULL, NULL, NULL, 1, 0);
             INSERT INTO attempts VALUES ('{id}', 4, 1, 1795600000004, 'main/m/p', 1, 2, 'plan', 2, 'plan x again', NULL);
             INSERT INTO verdicts VALUES ('{id}', 5, 1, 1795600000005, 'main/m/p', 1, 2, 'good plan', 'h2',
                 'pass', '', NULL, NULL, NULL, 1, 0);
             INSERT INTO commits VALUES ('{id}', 6, 1, 1795600000006, 'main/m/p', 1, 'plan', '\"good plan\"', 'h3');"
        ))
        .expect("rows");
    }
    let calls = fx.root.join("calls");
    let store = db.to_string_lossy().into_owned();
    let o = fx.run(&["runs", "--store", &store], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.contains(id) && out.contains("interrupted"), "{out}");
    {
        let c = read(&db);
        let version: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, guardflow::store::FORMAT_VERSION);
        assert_eq!(
            count(&c, "SELECT count(*) FROM run_journal WHERE run_id = ?1", id),
            6
        );
        let old: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'v1_%'",
                [],
                |r| r.get(0),
            )
            .expect("tables");
        assert_eq!(old, 0, "the old tables are gone");
    }
    // the trace reads the moved rows, the verdicts joined to their prompts
    let o = fx.run(
        &["trace", "--store", &store, id, "--format", "jsonl"],
        &calls,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "attempt_started",
            "attempt",
            "attempt_started",
            "attempt",
            "committed"
        ]
    );
    assert_eq!(events[4]["prompt"], "plan x again");
    assert_eq!(events[4]["verdict"], "pass");
    // the run goes on from what version 1 recorded
    let o = fx.run(&["run", &fx.flow(), "--resume", id], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let called = lines(&calls);
    assert!(
        !called.iter().any(|l| l.starts_with("plan")),
        "plan was called again: {called:?}"
    );
    assert_eq!(
        called.len(),
        6,
        "left, right, merge at two attempts each: {called:?}"
    );
    let c = read(&db);
    assert_eq!(
        commits(&c, id).len(),
        4,
        "plan's commit from version 1 and the three new ones"
    );
}

/// A store of format version 2 (the journal without `guarded`) is moved
/// to the current format when it is first opened, and keeps its runs.
#[test]
fn a_version_2_store_gets_the_guarded_column() {
    let fx = Fixture::new();
    let calls = fx.root.join("calls");
    let o = fx.run(&["run", &fx.flow(), "-i", "goal=x"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let db = fx.db();
    let id = newest_run(&read(&db)).expect("a run");
    {
        let c = Connection::open(&db).expect("open");
        c.execute_batch(
            "DROP VIEW run_journal; DROP VIEW attempts; DROP VIEW verdicts; DROP VIEW commits;
             DROP VIEW finishes; DROP VIEW events;
             ALTER TABLE journal DROP COLUMN guarded;
             PRAGMA user_version = 2;",
        )
        .expect("make it version 2");
    }
    let store = db.to_string_lossy().into_owned();
    let o = fx.run(
        &["trace", "--store", &store, &id, "--format", "jsonl"],
        &calls,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("\"event\":\"committed\""));
    let c = read(&db);
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, FORMAT_VERSION);
    // the recorded verdicts are there, their `guarded` unknown
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM verdicts WHERE run_id = ?1 AND guarded IS NULL",
            &id
        ),
        8
    );
    // and a new run records it
    drop(c);
    let o = fx.run(&["run", &fx.flow(), "-i", "goal=x"], &calls);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c = read(&db);
    let new = newest_run(&c).expect("a run");
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM verdicts WHERE run_id = ?1 AND guarded",
            &new
        ),
        8
    );
}
