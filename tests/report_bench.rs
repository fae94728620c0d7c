//! The bench views: `guardflow report --bench` and `/bench/NAME` of
//! `guardflow serve`, over a real bench of simulated models (the numbers
//! against `guardflow bench --report`'s JSON and table, the page's
//! structure in a headless browser: one error bar and one histogram per
//! model × arm, one link per trial), hostile names kept as text, the
//! runs list's bench filter over HTTP on loopback, and a running bench's
//! page following its trials live.

use std::path::{Path, PathBuf};
use std::time::Duration;

use guardflow::runtime::sink::Sink;
use guardflow::runtime::{AttemptRecord, Event, VerdictKind};
use guardflow::store::{BenchTag, Recorder, RunMeta, Store};
use serde_json::{json, Value};

use crate::report::assert_clean;
use crate::serve::Server;
use crate::support::browser::{artifacts, Browser};
use crate::support::{guardflow, run_bounded, Ran};

/// The bench fixture copied into a fresh directory; the directory.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bench");
    for name in ["probe.guardflow", "reference.py", "broken.py"] {
        std::fs::copy(from.join(name), dir.path().join(name)).expect("copy the fixture");
    }
    dir
}

fn run(args: &[&str], store: &Path) -> Ran {
    let mut cmd = guardflow();
    cmd.args(args).arg("--store").arg(store);
    let ran = run_bounded(cmd, Duration::from_secs(120));
    assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.all());
    ran
}

/// Two models × two arms, `trials` each, in `dir`'s store; its path.
fn a_bench(dir: &Path, trials: u64) -> PathBuf {
    let store = dir.join("runs.db");
    let file = dir.join("probe.guardflow");
    let n = trials.to_string();
    run(
        &[
            "bench",
            file.to_str().expect("utf-8"),
            "--model",
            "weak",
            "--model",
            "strong",
            "--arm",
            "baseline: retry=0",
            "--arm",
            "guarded: retry=3",
            "--trials",
            &n,
        ],
        &store,
    );
    store
}

fn url(file: &Path) -> String {
    format!("file://{}", file.display())
}

/// The text table's rows as cells (columns are two or more spaces apart;
/// no cell holds two spaces in a row).
fn table_cells(table: &str) -> Vec<Vec<String>> {
    let split = regex::Regex::new(r"\s{2,}").expect("regex");
    table
        .lines()
        .skip(3) // the title, the header and its rule
        .take_while(|l| !l.starts_with("gains against"))
        .map(|l| split.split(l.trim()).map(str::to_string).collect())
        .collect()
}

/// What the browser shows of a bench page's numbers and charts.
fn check_page(b: &mut Browser, report: &Value, table: &str, trials: u64) {
    let rows = report["rows"].as_array().expect("rows");
    // the table: the text table's cells, and the JSON's numbers exactly
    let shown = b.eval(
        "[...document.querySelectorAll('table.bench-results tbody tr')]\
         .map(tr => [...tr.children].map(c => c.textContent))",
    );
    let shown: Vec<Vec<String>> = serde_json::from_value(shown).expect("cells");
    assert_eq!(shown, table_cells(table));
    let attrs = b.eval(
        "[...document.querySelectorAll('table.bench-results tbody tr')].map(tr => ({...tr.dataset}))",
    );
    let attrs = attrs.as_array().expect("rows").clone();
    assert_eq!(attrs.len(), rows.len());
    for (a, r) in attrs.iter().zip(rows) {
        assert_eq!(a["model"], r["model"]);
        assert_eq!(a["arm"], r["arm"]);
        for (attr, key) in [
            ("trials", "trials"),
            ("successes", "successes"),
            ("success", "success"),
            ("ciLow", "ci_low"),
            ("ciHigh", "ci_high"),
            ("gainPp", "gain_pp"),
            ("fisherP", "fisher_p"),
            ("cohensH", "cohens_h"),
            ("meanAttempts", "mean_attempts"),
            ("tokensPerSuccess", "tokens_per_success"),
            ("callsPerSuccess", "calls_per_success"),
        ] {
            let text = a[attr].as_str().expect("an attribute");
            match r[key].as_f64() {
                Some(want) => assert_eq!(
                    text.parse::<f64>().ok(),
                    Some(want),
                    "{attr} of {a}: the JSON has {want}"
                ),
                None => assert_eq!(text, "", "{attr} of {a}: the JSON has none"),
            }
        }
    }
    // one error bar per model × arm, over its Wilson interval
    assert_eq!(
        b.eval("document.querySelectorAll('svg.success g.cell').length"),
        json!(rows.len())
    );
    assert_eq!(
        b.eval("document.querySelectorAll('svg.success g.errbar').length"),
        json!(rows.len())
    );
    let spans = b.eval(
        "[...document.querySelectorAll('svg.success g.errbar > line:first-child')]\
         .map(l => [+l.getAttribute('x1'), +l.getAttribute('x2')])",
    );
    let bar = b.eval(
        "[...document.querySelectorAll('svg.success rect.bar')].map(r => +r.getAttribute('width'))",
    );
    for (i, r) in rows.iter().enumerate() {
        // the plot is 600 wide from x = 260
        let (lo, hi) = (
            spans[i][0].as_f64().expect("x1"),
            spans[i][1].as_f64().expect("x2"),
        );
        let at = |p: f64| 260.0 + p * 600.0;
        assert!(
            (lo - at(r["ci_low"].as_f64().expect("f64"))).abs() < 0.06,
            "{lo} {r}"
        );
        assert!(
            (hi - at(r["ci_high"].as_f64().expect("f64"))).abs() < 0.06,
            "{hi} {r}"
        );
        let w = bar[i].as_f64().expect("width");
        assert!(
            (w - r["success"].as_f64().expect("f64") * 600.0).abs() < 0.06,
            "{w} {r}"
        );
    }
    // one histogram per model × arm, its bars the attempts distribution
    assert_eq!(
        b.eval("document.querySelectorAll('svg.hist').length"),
        json!(rows.len())
    );
    let hists = b.eval(
        "[...document.querySelectorAll('svg.hist')].map(s => Object.fromEntries(\
         [...s.querySelectorAll('rect.hbar')].map(r => [r.dataset.attempts, +r.dataset.trials])))",
    );
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(hists[i], r["attempts"], "row {i}");
    }
    // every trial listed once
    assert_eq!(
        b.eval("document.querySelectorAll('li.trial').length"),
        json!(trials * rows.len() as u64)
    );
}

/// The report's JSON and text table of bench `probe-probe`.
fn reports(store: &Path) -> (Value, String) {
    let json = run(
        &["bench", "--report", "probe-probe", "--format", "json"],
        store,
    );
    let text = run(&["bench", "--report", "probe-probe"], store);
    (
        serde_json::from_str(&json.stdout).expect("JSON"),
        text.stdout,
    )
}

#[test]
fn the_bench_page_shows_the_reports_numbers_and_charts() {
    let dir = fixture();
    let store = a_bench(dir.path(), 12);
    let (report, table) = reports(&store);
    let file = dir.path().join("bench.html");
    let ran = run(
        &[
            "report",
            "--bench",
            "probe-probe",
            "-o",
            file.to_str().expect("utf-8"),
        ],
        &store,
    );
    assert!(ran.stderr.contains("48 trials"), "{}", ran.all());
    let html = std::fs::read_to_string(&file).expect("the page");
    assert!(html.contains(
        "content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\""
    ));
    // `-o -`: the same page
    let out = run(&["report", "--bench", "probe-probe", "-o", "-"], &store);
    assert_eq!(out.stdout, html);

    let mut b = Browser::start();
    b.open(&url(&file));
    assert_clean(&mut b, "the bench page");
    check_page(&mut b, &report, &table, 12);
    // in a file, a trial is an anchor with its run id
    let first = b.eval(
        "(() => { const li = document.querySelector('li.trial'); \
         return [li.id, li.querySelector('a').getAttribute('href'), li.querySelector('code').textContent]; })()",
    );
    let id = first[2].as_str().expect("a run id");
    assert_eq!(first[0], json!(format!("trial-{id}")));
    assert_eq!(first[1], json!(format!("#trial-{id}")));
    b.screenshot(&artifacts().join("report-bench.png"));

    // the outline of the charts, deterministic with the seed
    let outline = b.eval(
        "[...document.querySelectorAll('svg.success g.cell')].map((g, i) => \
         g.querySelector('text.lane').textContent + ': ' + g.querySelector('text.value').textContent + \
         ' | attempts ' + [...document.querySelectorAll('svg.hist')[i].querySelectorAll('rect.hbar')]\
         .map(r => r.dataset.attempts + ':' + r.dataset.trials).join(' ')).join('\\n')",
    );
    insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("bench_page_outline", outline.as_str().expect("text"));
    });
}

#[test]
fn no_such_bench_is_a_clear_error() {
    let dir = fixture();
    let store = a_bench(dir.path(), 1);
    let mut cmd = guardflow();
    cmd.args(["report", "--bench", "nope", "--store"])
        .arg(&store);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(
        ran.stderr
            .contains("has no bench `nope` (it has: probe-probe)"),
        "{}",
        ran.all()
    );
    let mut cmd = guardflow();
    cmd.args(["report", "RUN", "--bench", "probe-probe", "--store"])
        .arg(&store);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(2), "{}", ran.all());
}

/// Starts a trial of bench `bench` in `db`, recorded up to its first
/// attempt; finished (and its recorder dropped) unless `running`.
fn trial(
    db: &Path,
    bench: &str,
    arm: &str,
    model: &str,
    n: u64,
    pass: bool,
    running: bool,
) -> Option<Recorder> {
    let mut meta = RunMeta {
        id: String::new(),
        workflow: "/nonexistent/probe.guardflow".into(),
        workflow_hash: String::new(),
        task: "probe".into(),
        inputs: serde_json::Map::new(),
        replacement: None,
        worst_case_calls: Some(4),
        started_ms: guardflow::store::now_ms(),
        seed: Some(n),
        bench: Some(BenchTag {
            id: bench.into(),
            arm: arm.into(),
            model: model.into(),
            trial: n,
            overrides: "retry=3".into(),
        }),
    };
    let recorder = Store::open(db)
        .and_then(|s| s.start_run(&mut meta))
        .expect("a run");
    let path = "probe/only/s";
    let verdict = if pass {
        VerdictKind::Pass
    } else {
        VerdictKind::Fail
    };
    for e in [
        Event::RunStarted {
            task: "probe".into(),
            worst_case_calls: Some(4),
        },
        Event::AttemptStarted {
            path: path.into(),
            action: "solve".into(),
            occurrence: 1,
            index: 1,
            attempt: 1,
            prompt: "Write add(a, b).".into(),
            role: None,
        },
        Event::Attempt(Box::new(AttemptRecord {
            path: path.into(),
            action: "solve".into(),
            attempt: 1,
            prompt: "Write add(a, b).".into(),
            role: None,
            output: Some("def add(a, b): return a + b".into()),
            verdict,
            feedback: if pass { String::new() } else { "no".into() },
            tokens: Some(7),
            prompt_tokens: Some(5),
            outcome: None,
            guarded: true,
            generate_ms: 3,
            guard_ms: 1,
            provider: None,
        })),
    ] {
        recorder.record(&e);
    }
    if running {
        return Some(recorder);
    }
    finish(&recorder, pass);
    None
}

fn finish(recorder: &Recorder, success: bool) {
    recorder.record(&Event::RunFinished {
        success,
        generator_calls: 1,
        guard_runs: 1,
        elapsed_ms: 4,
        repeated_calls: 0,
    });
}

const HOSTILE_ARM: &str = "</script><script>window.pwned = 1</script>";
const HOSTILE_MODEL: &str = "<img src=x onerror=\"window.pwned = 2\">'&amp;";

#[test]
fn hostile_bench_arm_and_model_names_stay_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    let bench = "b</title><script>window.pwned = 3</script>";
    for (n, pass) in [(0, true), (1, false)] {
        trial(&db, bench, "baseline", HOSTILE_MODEL, n, pass, false);
        trial(&db, bench, HOSTILE_ARM, HOSTILE_MODEL, n, true, false);
    }
    let file = dir.path().join("hostile.html");
    run(
        &[
            "report",
            "--bench",
            bench,
            "-o",
            file.to_str().expect("utf-8"),
        ],
        &db,
    );
    let html = std::fs::read_to_string(&file).expect("the page");
    assert_eq!(html.matches("</script>").count(), 2, "{html}");
    assert!(!html.contains("<img"), "an image tag in the page");
    assert!(!html.contains("<script>window"), "a script from a name");

    let mut b = Browser::start();
    b.open(&url(&file));
    assert_clean(&mut b, "the hostile bench page");
    assert_eq!(b.eval("typeof window.pwned"), json!("undefined"));
    assert_eq!(b.eval("document.querySelectorAll('img').length"), json!(0));
    assert_eq!(b.eval("document.scripts.length"), json!(2));
    // the names are shown as the text they are
    assert_eq!(
        b.eval("[...document.querySelectorAll('table.bench-results tbody tr')].map(tr => [tr.children[1].textContent, tr.children[2].textContent])"),
        json!([[HOSTILE_MODEL, "baseline"], [HOSTILE_MODEL, HOSTILE_ARM]])
    );
    assert_eq!(
        b.eval("document.querySelector('h1').textContent"),
        json!(format!("bench {bench}"))
    );
    assert_eq!(
        b.eval("document.querySelectorAll('svg.success g.errbar').length"),
        json!(2)
    );
    assert_eq!(
        b.eval("document.querySelectorAll('svg.success g.cell')[1].dataset.arm"),
        json!(HOSTILE_ARM)
    );
    b.screenshot(&artifacts().join("report-bench-hostile.png"));
}

#[test]
fn serve_filters_runs_by_bench_and_serves_the_bench_page() {
    let dir = fixture();
    let store = a_bench(dir.path(), 5);
    // a run that is no trial, in the same store
    let mut cmd = guardflow();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "examples/planning.guardflow",
            "--input",
            "goal=move the user database to PostgreSQL 16",
            "--replay",
            "examples/fixtures/planning.jsonl",
            "--store",
        ])
        .arg(&store);
    let ran = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let (report, table) = reports(&store);
    let server = Server::start(&store);

    // over HTTP: the filter, the columns, the page, what is refused
    let rows = |body: &str| body.matches("<tr class=\"run ").count();
    let (status, all) = server.request("GET", "/", "127.0.0.1");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(rows(&all), 21);
    assert!(all.contains("<th>bench</th><th>arm</th><th>model</th><th>trial</th>"));
    assert!(all.contains("<option value=\"probe-probe\">probe-probe</option>"));
    let (_, filtered) = server.request("GET", "/?bench=probe-probe", "127.0.0.1");
    assert_eq!(rows(&filtered), 20);
    assert!(filtered.contains("<a href=\"/bench/probe-probe\">bench probe-probe: results"));
    assert!(filtered.contains(
        "<td class=\"bench\"><a href=\"/bench/probe-probe\">probe-probe</a></td><td class=\"arm\">guarded</td><td class=\"model\">strong</td><td class=\"trial\">4</td>"
    ));
    let (_, none) = server.request("GET", "/?bench=other", "127.0.0.1");
    assert_eq!(rows(&none), 0);
    let (_, failed) = server.request("GET", "/?bench=probe-probe&status=failed", "127.0.0.1");
    let failures: u64 = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["trials"].as_u64().unwrap_or(0) - r["successes"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(rows(&failed) as u64, failures);
    let (status, page) = server.request("GET", "/bench/probe-probe", "localhost");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        page.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{page}"
    );
    let (status, _) = server.request("GET", "/bench/nope", "127.0.0.1");
    assert!(status.contains(" 404 "), "{status}");
    let (status, _) = server.request("GET", "/bench/nope/events", "127.0.0.1");
    assert!(status.contains(" 404 "), "{status}");
    let (status, _) = server.request("GET", "/bench/probe-probe", "evil.example");
    assert!(status.contains(" 421 "), "{status}");
    let (status, _) = server.request("POST", "/bench/probe-probe", "127.0.0.1");
    assert!(status.contains(" 405 "), "{status}");

    // in the browser: the filter form, then the bench page and a trial
    let mut b = Browser::start();
    b.open(&server.url("/"));
    assert_clean(&mut b, "the runs list with a bench");
    b.eval("document.querySelector('select[name=bench]').value = 'probe-probe', document.querySelector('form.filters').submit(), true");
    assert!(b.wait_for(
        "location.search === '?workflow=&status=&bench=probe-probe' && document.querySelectorAll('table.runs tbody tr').length === 20",
        Duration::from_secs(30)
    ));
    b.eval("document.querySelector('p.bench-link a').click(), true");
    assert!(b.wait_for(
        "location.pathname === '/bench/probe-probe' && document.querySelectorAll('svg.hist').length === 4",
        Duration::from_secs(30)
    ));
    assert_clean(&mut b, "the served bench page");
    check_page(&mut b, &report, &table, 5);
    assert_eq!(
        b.eval("document.querySelector('#report').hasAttribute('data-events')"),
        json!(false),
        "a finished bench is not followed"
    );
    b.screenshot(&artifacts().join("serve-bench.png"));
    let run = b.eval("document.querySelector('li.trial code').textContent");
    let run = run.as_str().expect("a run id").to_string();
    b.eval("document.querySelector('li.trial a').click(), true");
    assert!(b.wait_for(
        &format!("location.pathname === '/runs/{run}' && document.querySelectorAll('svg.timeline g.attempt').length > 0"),
        Duration::from_secs(30)
    ));
    assert_clean(&mut b, "a trial's run page");
}

#[test]
fn a_running_bench_is_followed_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    trial(&db, "live", "baseline", "m", 0, true, false);
    let second = trial(&db, "live", "baseline", "m", 1, false, true).expect("a recorder");
    let third = trial(&db, "live", "baseline", "m", 2, true, true).expect("a recorder");
    let server = Server::start(&db);
    let mut b = Browser::start();
    b.open(&server.url("/bench/live"));
    let state = "[document.querySelector('#report').dataset.status, \
                 document.querySelector('#report').dataset.seq, \
                 document.querySelector('#report').dataset.events || null, \
                 document.querySelector('table.bench-results tbody tr').dataset.trials, \
                 document.querySelector('table.bench-results tbody tr').dataset.successes]";
    assert_eq!(
        b.eval(state),
        json!(["running", "1", "/bench/live/events", "1", "1"])
    );
    // a trial finishes while another still runs: the page shows it
    finish(&second, false);
    drop(second);
    assert!(
        b.wait_for(
            "document.querySelector('table.bench-results tbody tr').dataset.trials === '2'",
            Duration::from_secs(30)
        ),
        "the page did not follow the bench"
    );
    assert_eq!(
        b.eval(state),
        json!(["running", "2", "/bench/live/events", "2", "1"])
    );
    // the last one: the bench is finished, and no longer followed
    finish(&third, true);
    drop(third);
    assert!(
        b.wait_for(
            "document.querySelector('#report').dataset.status === 'finished'",
            Duration::from_secs(30)
        ),
        "the page did not see the bench finish"
    );
    assert_eq!(b.eval(state), json!(["finished", "3", null, "3", "2"]));
    assert_clean(&mut b, "the live bench page");
}
