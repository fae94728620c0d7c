//! `guardflow bench` through the binary, offline with the `simulate`
//! generator: the table of a paper-shaped bench (snapshot), its numbers
//! computed again by hand from the store, a bench killed and started
//! again ending where an uninterrupted one does without running a
//! finished trial twice, more trials added, usage errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::support::{guardflow, run_bounded, Ran};

/// The fixture (`tests/fixtures/bench`) copied into a fresh directory,
/// with `delay` given to both simulated models; the workflow's path.
fn fixture(delay: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bench");
    for name in ["probe.guardflow", "reference.py", "broken.py"] {
        let text = std::fs::read_to_string(from.join(name)).expect("fixture");
        let text = if delay.is_empty() {
            text
        } else {
            text.replace(
                "p: 0.3, correlation: 0.5)",
                &format!("p: 0.3, correlation: 0.5, delay: {delay})"),
            )
            .replace("p: 0.7)", &format!("p: 0.7, delay: {delay})"))
        };
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let file = dir.path().join("probe.guardflow");
    (dir, file)
}

fn bench(file: &Path, store: &Path, extra: &[&str]) -> Ran {
    let mut cmd = guardflow();
    cmd.arg("bench")
        .arg(file)
        .arg("--store")
        .arg(store)
        .args(["--model", "weak", "--model", "strong"])
        .args(["--arm", "baseline: retry=0", "--arm", "guarded: retry=3"])
        .args(extra);
    run_bounded(cmd, Duration::from_secs(120))
}

#[test]
fn a_paper_shaped_table_offline() {
    let (dir, file) = fixture("");
    let store = dir.path().join("runs.db");
    let ran = bench(&file, &store, &["--trials", "50", "--concurrency", "16"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("bench_table", ran.stdout);
    });
    // the same report from the store alone
    let mut again = guardflow();
    again
        .args(["bench", "--report", "probe-probe", "--store"])
        .arg(&store);
    let reprinted = run_bounded(again, Duration::from_secs(60));
    assert_eq!(reprinted.code, Some(0), "{}", reprinted.all());
    assert_eq!(reprinted.stdout, ran.stdout);
}

/// Per model and arm, from the store's own tables: (trials, successes,
/// judged attempts, first-try successes, generator calls, tokens).
fn by_hand(store: &Path, model: &str, arm: &str) -> (u64, u64, u64, u64, u64, u64) {
    let conn = Connection::open(store).expect("opens");
    let runs: Vec<String> = conn
        .prepare(
            "SELECT id FROM runs WHERE json_extract(config, '$.bench.id') = 'probe-probe' \
             AND json_extract(config, '$.bench.model') = ?1 \
             AND json_extract(config, '$.bench.arm') = ?2",
        )
        .expect("prepares")
        .query_map([model, arm], |r| r.get(0))
        .expect("queries")
        .collect::<Result<_, _>>()
        .expect("reads");
    let mut totals = (0, 0, 0, 0, 0, 0);
    for id in runs {
        let (success, calls): (bool, i64) = conn
            .query_row(
                "SELECT success, generator_calls FROM finishes WHERE run_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("finished");
        let (attempts, rejected, tokens): (i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), sum(verdict != 'pass'), \
                 coalesce(sum(tokens), 0) + coalesce(sum(prompt_tokens), 0) \
                 FROM verdicts WHERE run_id = ?1",
                [&id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("verdicts");
        totals.0 += 1;
        totals.1 += u64::from(success);
        totals.2 += attempts as u64;
        totals.3 += u64::from(success && rejected == 0);
        totals.4 += calls as u64;
        totals.5 += tokens as u64;
    }
    totals
}

#[test]
fn the_report_matches_a_hand_computation_from_the_store() {
    let (dir, file) = fixture("");
    let store = dir.path().join("runs.db");
    let ran = bench(&file, &store, &["--trials", "40", "--format", "json"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    for model in ["weak", "strong"] {
        let (bn, bs, ..) = by_hand(&store, model, "baseline");
        for arm in ["baseline", "guarded"] {
            let (n, s, attempts, first, calls, tokens) = by_hand(&store, model, arm);
            let row = rows
                .iter()
                .find(|r| r["model"] == model && r["arm"] == arm)
                .expect("a row");
            assert_eq!(row["trials"], n);
            assert_eq!(row["successes"], s);
            let p = s as f64 / n as f64;
            let (lo, hi) = guardflow::stats::wilson(s, n, guardflow::stats::Z95);
            assert!(close(row["success"].as_f64().expect("f64"), p));
            assert!(close(row["ci_low"].as_f64().expect("f64"), lo));
            assert!(close(row["ci_high"].as_f64().expect("f64"), hi));
            assert_eq!(row["first_attempt"], first);
            assert!(close(
                row["mean_attempts"].as_f64().expect("f64"),
                attempts as f64 / n as f64
            ));
            assert!(close(
                row["calls_per_success"].as_f64().expect("f64"),
                calls as f64 / s as f64
            ));
            assert!(close(
                row["tokens_per_success"].as_f64().expect("f64"),
                tokens as f64 / s as f64
            ));
            // the guard is `contains`: it names no tests
            assert!(row["regressions"].is_null());
            if arm == "baseline" {
                assert!(row["gain_pp"].is_null());
                continue;
            }
            let base = bs as f64 / bn as f64;
            assert!(close(
                row["gain_pp"].as_f64().expect("f64"),
                (p - base) * 100.0
            ));
            let fisher = guardflow::stats::fisher_exact_two_sided(s, n - s, bs, bn - bs);
            assert!(close(row["fisher_p"].as_f64().expect("f64"), fisher));
            let h = guardflow::stats::cohens_h(p, base);
            assert!(close(row["cohens_h"].as_f64().expect("f64"), h));
        }
    }
    // the CSV says the same
    let mut csv = guardflow();
    csv.args([
        "bench",
        "--report",
        "probe-probe",
        "--format",
        "csv",
        "--store",
    ])
    .arg(&store);
    let csv = run_bounded(csv, Duration::from_secs(60));
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", csv.stdout);
    assert!(lines[0].starts_with("task,model,arm,overrides,trials,successes,success,"));
    assert!(
        lines[2].starts_with("probe,weak,guarded,retry=3,40,"),
        "{}",
        lines[2]
    );
}

fn runs_of(store: &Path) -> u64 {
    let Ok(conn) = Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM runs WHERE json_extract(config, '$.bench.id') = 'probe-probe'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| n as u64)
}

#[test]
fn a_killed_bench_goes_on_where_it_stopped() {
    let (dir, file) = fixture("150ms");
    let args = ["--trials", "6", "--concurrency", "4", "--format", "json"];
    // uninterrupted
    let straight = dir.path().join("straight.db");
    let whole = bench(&file, &straight, &args);
    assert_eq!(whole.code, Some(0), "{}", whole.all());
    assert_eq!(runs_of(&straight), 24);
    // killed while trials run, then started again
    let store = dir.path().join("killed.db");
    let mut cmd = guardflow();
    cmd.arg("bench")
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .args(["--model", "weak", "--model", "strong"])
        .args(["--arm", "baseline: retry=0", "--arm", "guarded: retry=3"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawns");
    let mut seen = 0;
    for _ in 0..2000 {
        seen = runs_of(&store);
        if seen >= 6 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kills");
    let _ = child.wait();
    assert!(seen >= 6, "the bench never started 6 trials");
    let before = runs_of(&store);
    assert!(before < 24, "the bench finished before it was killed");
    let again = bench(&file, &store, &args);
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(again.stderr.contains(" resumed, "), "{}", again.stderr);
    // a finished trial is not run again, an interrupted one goes on in its run
    assert_eq!(runs_of(&store), 24);
    let killed = outcomes(&store);
    let straight = outcomes(&straight);
    assert_eq!(killed.len(), 24);
    // every trial ends as in the bench that was not stopped, one whose
    // call was cut off too: that call is made again, drawing as it would
    // have
    for (key, (success, _)) in &killed {
        assert_eq!(Some(success), straight.get(key).map(|s| &s.0), "{key:?}");
    }
    assert!(
        killed.values().any(|(_, cut)| *cut),
        "no call was cut off: the kill came between calls"
    );
    let report: serde_json::Value = serde_json::from_str(&again.stdout).expect("JSON");
    let n: u64 = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["trials"].as_u64().expect("n"))
        .sum();
    assert_eq!(n, 24);
}

/// Per (model, arm, trial): whether it succeeded, and whether a call of
/// it was cut off by a stop.
fn outcomes(store: &Path) -> std::collections::BTreeMap<(String, String, i64), (bool, bool)> {
    let conn = Connection::open(store).expect("opens");
    let mut stmt = conn
        .prepare(
            "SELECT json_extract(r.config, '$.bench.model'), json_extract(r.config, '$.bench.arm'), \
             json_extract(r.config, '$.bench.trial'), f.success, \
             EXISTS (SELECT 1 FROM verdicts v WHERE v.run_id = r.id AND v.verdict = 'interrupted') \
             FROM runs r JOIN finishes f ON f.run_id = r.id",
        )
        .expect("prepares");
    stmt.query_map([], |r| {
        Ok(((r.get(0)?, r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?)))
    })
    .expect("queries")
    .collect::<Result<_, _>>()
    .expect("reads")
}

#[test]
fn more_trials_add_to_a_bench_and_a_changed_arm_is_refused() {
    let (dir, file) = fixture("");
    let store = dir.path().join("runs.db");
    let first = bench(&file, &store, &["--trials", "5"]);
    assert_eq!(first.code, Some(0), "{}", first.all());
    let more = bench(&file, &store, &["--trials", "8"]);
    assert_eq!(more.code, Some(0), "{}", more.all());
    assert!(
        more.stderr
            .contains("20 trials were already finished, 0 resumed, 12 started"),
        "{}",
        more.stderr
    );
    assert_eq!(runs_of(&store), 32);
    let mut changed = guardflow();
    changed
        .arg("bench")
        .arg(&file)
        .arg("--store")
        .arg(&store)
        .args([
            "--model",
            "weak",
            "--arm",
            "baseline: retry=0",
            "--arm",
            "guarded: retry=2",
        ]);
    let changed = run_bounded(changed, Duration::from_secs(60));
    assert_eq!(changed.code, Some(2));
    assert!(
        changed.stderr.contains(
            "arm `guarded` was `retry=3` when it started, not `retry=2`; start it under another --name"
        ),
        "{}",
        changed.stderr
    );
}

#[test]
fn usage_errors_are_said() {
    let (_dir, file) = fixture("");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--model", "wek"],
            "--model `wek`: the workflow declares no generator `wek`; did you mean `weak`?",
        ),
        (
            &["--arm", "a: retry=x"],
            "retry is a whole number from 0 to 1000",
        ),
        (
            &["--arm", "a: retry.slove=1"],
            "arm `a`: there is no action `slove`; did you mean `solve`?",
        ),
        (&["--arm", "a", "--arm", "a"], "two arms are named `a`"),
        (&["--trials", "0"], "--trials: from 1 to"),
    ];
    for (args, want) in cases {
        let mut cmd = guardflow();
        cmd.arg("bench").arg(&file).args(*args);
        let ran = run_bounded(cmd, Duration::from_secs(60));
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.all());
        assert!(ran.stderr.contains(want), "{args:?}: {}", ran.stderr);
    }
    let mut cmd = guardflow();
    cmd.args(["bench", "--report", "nope"])
        .arg("--store")
        .arg(_dir.path());
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(2));
}

/// The shipped suite's LRU probe (`bench/suite/lru`) with two simulated
/// models drawing its reference and broken solutions, judged by its real
/// pytest suite: the table, with regression loops told (pytest names
/// the failing tests).
#[test]
fn the_shipped_lru_probe_with_simulated_models() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/suite/lru/task.guardflow");
    let mut cmd = guardflow();
    cmd.arg("bench")
        .arg(&file)
        .arg("--store")
        .arg(dir.path())
        .args([
            "--model",
            "weak=simulate(pass: \"reference.py\", fail: \"broken.py\", p: 0.3, correlation: 0.5)",
            "--model",
            "strong=simulate(pass: \"reference.py\", fail: \"broken.py\", p: 0.7)",
        ])
        .args(["--arm", "baseline: retry=0", "--arm", "guarded: retry=3"])
        .args(["--trials", "6", "--concurrency", "8"]);
    let ran = run_bounded(cmd, Duration::from_secs(300));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("bench_suite_lru_table", ran.stdout);
    });
}

/// A bench whose trial reads an input file through a generator that
/// waits while `hold` exists and logs each prompt to `calls`.
const PINNED: &str = r#"use std.{contains}
input spec: Text = file("spec.txt")
generator g = cmd("sh gen.sh", timeout: 60s, write: ["."])
action solve() -> Text { :generate g "solve {spec}" :guard contains("DONE") :retry 0 }
task main() -> Text {
  method only {
    :subtasks ( s: solve() )
    :result s
  }
}
"#;

const HOLDING: &str = r#"prompt=$(cat)
echo "$prompt" >> calls
while [ -e hold ]; do sleep 0.05; done
echo "$prompt DONE"
"#;

/// A trial resumed after the files it started with changed is refused,
/// naming each change, as `run --resume` refuses; with its input's file
/// gone it goes on with the contents the trial read, from the store.
#[test]
fn a_resumed_trial_uses_the_inputs_it_started_with() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::write(dir.join("f.guardflow"), PINNED).expect("write");
    std::fs::write(dir.join("gen.sh"), HOLDING).expect("write");
    std::fs::write(dir.join("spec.txt"), "SPEC-ONE").expect("write");
    std::fs::write(dir.join("hold"), "").expect("write");
    // the store beside the workflow, which `bench --list` and `--report`
    // find from here without the workflow
    let store = dir.join(".guardflow/runs.db");
    let here = |args: &[&str]| {
        let mut cmd = guardflow();
        cmd.current_dir(dir)
            .env_remove("GUARDFLOW_STORE")
            .args(args);
        cmd
    };
    let bench = |stdio: bool| {
        let mut cmd = here(&["bench", "f.guardflow", "--trials", "1", "--format", "json"]);
        if !stdio {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        cmd
    };
    let calls = || std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    let mut child = bench(false).spawn().expect("spawns");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while calls().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the trial never called"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kills");
    let _ = child.wait();
    std::fs::remove_file(dir.join("hold")).expect("release the generator");
    let id: String = Connection::open(&store)
        .expect("opens")
        .query_row("SELECT id FROM runs", [], |r| r.get(0))
        .expect("a trial");
    let children = dir.join(format!(".guardflow/runs.db.locks/{id}.children"));
    while !guardflow::runtime::children::survivors(&children).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the generator never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let list = run_bounded(here(&["bench", "--list"]), Duration::from_secs(60));
    assert_eq!(list.code, Some(0), "{}", list.all());
    assert!(
        list.stdout
            .starts_with("f-main  1 trial: 0 finished (0 succeeded), 1 unfinished\n  "),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .ends_with("f.guardflow task main; arms as-written; models (as written)\n"),
        "{}",
        list.stdout
    );
    // changed: refused, nothing called
    std::fs::write(dir.join("spec.txt"), "SPEC-TWO").expect("write");
    let made = calls();
    let refused = run_bounded(bench(true), Duration::from_secs(60));
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    for want in [
        format!("trial 0 of arm `as-written` (run {id}) started with other files than these"),
        "  input `spec`: spec.txt: ".to_string(),
        "put them back, or start the bench under another --name".to_string(),
    ] {
        assert!(
            refused.stderr.contains(&want),
            "{want:?} in {}",
            refused.stderr
        );
    }
    assert_eq!(calls(), made, "a generator ran");
    // gone: the trial goes on with what it read
    std::fs::remove_file(dir.join("spec.txt")).expect("remove");
    let again = run_bounded(bench(true), Duration::from_secs(60));
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert!(
        again.stderr.contains(", 1 resumed, 0 started"),
        "{}",
        again.stderr
    );
    assert_eq!(
        calls().lines().last(),
        Some("solve SPEC-ONE"),
        "{}",
        calls()
    );
    let report: serde_json::Value = serde_json::from_str(&again.stdout).expect("JSON");
    assert_eq!(report["rows"][0]["successes"], 1, "{report}");
    let list = run_bounded(
        here(&["bench", "--list", "--format", "json"]),
        Duration::from_secs(60),
    );
    let list: serde_json::Value = serde_json::from_str(&list.stdout).expect("JSON");
    assert_eq!(
        (
            &list[0]["trials"],
            &list[0]["finished"],
            &list[0]["succeeded"]
        ),
        (&1.into(), &1.into(), &1.into()),
        "{list}"
    );
    let reprinted = run_bounded(
        here(&["bench", "--report", "f-main", "--format", "json"]),
        Duration::from_secs(60),
    );
    assert_eq!(reprinted.stdout, again.stdout, "{}", reprinted.all());
}
