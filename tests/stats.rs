//! `guardflow stats` through the binary, over one store holding two
//! workflows whose actions share a name (`solve`) and a bench of one of
//! them: what the default pools (and says it pooled), and each filter
//! (`--workflow`, `--bench` with `--arm` and `--model`, `--last`,
//! `--since`) keeping only its runs.

use std::path::Path;
use std::time::Duration;

use crate::support::{guardflow, run_bounded, Ran};

/// `solve` answered by a simulated model with `p`, `retry` retries.
fn flow(p: &str, retry: u64) -> String {
    format!(
        "use std.{{contains}}\n\
         generator sim = simulate(pass: \"pass.txt\", fail: \"fail.txt\", p: {p})\n\
         generator sure = simulate(pass: \"pass.txt\", fail: \"fail.txt\", p: 1.0)\n\
         action solve() -> Text {{\n  :generate sim \"solve it\"\n  :guard contains(\"DONE\")\n  :retry {retry}\n  :timeout 10s\n}}\n\
         task main() -> Text {{\n  method only {{\n    :subtasks ( s: solve() )\n    :result s\n  }}\n}}\n"
    )
}

/// `guardflow ARGS` in `dir`, its store `runs.db` there.
fn gf(dir: &Path, args: &[&str]) -> Ran {
    let mut cmd = guardflow();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env("GUARDFLOW_STORE", "runs.db")
        .args(args);
    run_bounded(cmd, Duration::from_secs(120))
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let ran = gf(dir, args);
    assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.all());
    ran.stdout
}

#[test]
fn stats_pools_what_it_says_and_filters_by_workflow_bench_and_age() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::write(dir.join("pass.txt"), "all DONE\n").expect("write");
    std::fs::write(dir.join("fail.txt"), "not yet\n").expect("write");
    // `a` always passes at once; `b` never passes: two rejections a run
    std::fs::write(dir.join("a.guardflow"), flow("1.0", 3)).expect("write");
    std::fs::write(dir.join("b.guardflow"), flow("0.0", 1)).expect("write");
    for seed in ["1", "2"] {
        gf(dir, &["run", "a.guardflow", "--seed", seed]);
    }
    let b = gf(dir, &["run", "b.guardflow", "--seed", "1"]);
    assert_eq!(b.code, Some(1), "{}", b.all());
    // a bench of `a`: the model that never passes and the one that always
    // does, once and with a retry
    ok(
        dir,
        &[
            "bench",
            "a.guardflow",
            "--model",
            "never=simulate(pass: \"pass.txt\", fail: \"fail.txt\", p: 0.0)",
            "--model",
            "sure",
            "--arm",
            "once: retry=0",
            "--arm",
            "twice: retry=1",
            "--trials",
            "2",
        ],
    );
    let mut out = String::new();
    for args in [
        &["stats"][..],
        &["stats", "--workflow", "b.guardflow"],
        &["stats", "--workflow", "./a.guardflow"],
        &["stats", "--bench", "a-main"],
        &[
            "stats", "--bench", "a-main", "--arm", "twice", "--model", "never",
        ],
        &["stats", "--last", "1"],
        &["stats", "--since", "1d", "--workflow", "b.guardflow"],
    ] {
        out.push_str(&format!("$ guardflow {}\n", args.join(" ")));
        out.push_str(&ok(dir, args));
        out.push('\n');
    }
    // a run of the file as it was before a change is still its run, and
    // said to be of another text
    let a = std::fs::read_to_string(dir.join("a.guardflow")).expect("read");
    std::fs::write(dir.join("a.guardflow"), format!("{a}// changed\n")).expect("write");
    out.push_str("$ guardflow stats --workflow a.guardflow   (after a change)\n");
    out.push_str(&ok(dir, &["stats", "--workflow", "a.guardflow"]));
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("stats_filters", out);
    });
    // the same filter for check --from-runs: the runs of `b` only
    let bounds = ok(
        dir,
        &[
            "check",
            "b.guardflow",
            "--bounds",
            "--from-runs",
            "--store",
            "runs.db",
        ],
    );
    assert!(
        bounds.contains("1 run of this file") && bounds.contains("solve 0.000 (0/2)"),
        "{bounds}"
    );
    // JSON lines: one per action, of the filtered runs
    let json = ok(
        dir,
        &["stats", "--workflow", "b.guardflow", "--format", "json"],
    );
    let line: serde_json::Value = serde_json::from_str(json.trim()).expect("JSON");
    assert_eq!(line["action"], "solve");
    assert_eq!(
        (line["attempts"].as_u64(), line["passed"].as_u64()),
        (Some(2), Some(0))
    );
}

#[test]
fn stats_says_what_it_cannot_filter_by() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::write(dir.join("pass.txt"), "all DONE\n").expect("write");
    std::fs::write(dir.join("fail.txt"), "not yet\n").expect("write");
    std::fs::write(dir.join("a.guardflow"), flow("1.0", 0)).expect("write");
    ok(
        dir,
        &["bench", "a.guardflow", "--trials", "1", "--name", "first"],
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["stats", "--bench", "frist"],
            "has no bench `frist` (it has: first)",
        ),
        (&["stats", "--arm", "x"], "--bench"),
        (&["stats", "--since", "2w"], "such as 2h or 7d"),
        (&["stats", "--last", "0"], "--last"),
    ];
    for (args, want) in cases {
        let ran = gf(dir, args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.all());
        assert!(ran.stderr.contains(want), "{args:?}: {}", ran.stderr);
    }
    // a filter that keeps nothing says so
    let none = ok(dir, &["stats", "--workflow", "nowhere.guardflow"]);
    assert!(
        none.contains(": 0 runs of nowhere.guardflow\n") && none.contains("no finished attempts"),
        "{none}"
    );
}
