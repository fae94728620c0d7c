//! `guardflow report`: real runs through the binary, the page loaded in a
//! real headless browser (no console errors, nothing requested from
//! outside, one timeline bar per attempt, the tree and the feedback),
//! hostile model output kept as text, and a 10,000-attempt run's size.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::bin;
use crate::support::browser::{artifacts, Browser};

/// A temporary directory with its own store.
pub struct Fx {
    pub dir: tempfile::TempDir,
}

impl Fx {
    pub fn new() -> Fx {
        Fx {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("runs.db")
    }

    pub fn guardflow(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(bin())
            .args(args)
            .arg("--store")
            .arg(self.db())
            .env_remove("GUARDFLOW_STORE")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("guardflow runs")
    }

    /// The newest run's id.
    pub fn newest(&self) -> String {
        let out = self.guardflow(&["runs", "--format", "json"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let last = text
            .lines()
            .last()
            .unwrap_or_else(|| panic!("no runs: {text}"));
        let v: Value = serde_json::from_str(last).expect("json");
        v["id"].as_str().expect("id").to_string()
    }

    /// The README's example run, recorded here; its id.
    pub fn planning_run(&self) -> String {
        let out = self.guardflow(&[
            "run",
            "examples/planning.guardflow",
            "--input",
            "goal=move the user database to PostgreSQL 16",
            "--replay",
            "examples/fixtures/planning.jsonl",
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        self.newest()
    }

    /// `workflow` run with the recording `replay` (both written here); its id.
    pub fn run_of(&self, name: &str, workflow: &str, replay: &str) -> String {
        let flow = self.dir.path().join(format!("{name}.guardflow"));
        std::fs::write(&flow, workflow).expect("write the workflow");
        let rec = self.dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&rec, replay).expect("write the recording");
        let out = self.guardflow(&[
            "run",
            flow.to_str().expect("utf-8"),
            "--replay",
            rec.to_str().expect("utf-8"),
        ]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.newest()
    }

    /// `guardflow report RUN -o FILE`; the file.
    pub fn report(&self, run: &str) -> PathBuf {
        let file = self.dir.path().join(format!("{run}.html"));
        let out = self.guardflow(&["report", run, "-o", file.to_str().expect("utf-8")]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        file
    }

    pub fn events(&self, run: &str) -> Vec<Value> {
        let out = self.guardflow(&["trace", run]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }
}

fn url(file: &Path) -> String {
    format!("file://{}", file.display())
}

/// What every page must be: loaded with no error and nothing fetched
/// from outside this machine, nothing in it pointing outside.
pub fn assert_clean(b: &mut Browser, what: &str) {
    let errors = b.errors();
    assert!(
        errors.is_empty(),
        "{what}: errors in the console: {errors:#?}"
    );
    let outside = b.outside_requests();
    assert!(outside.is_empty(), "{what}: requests outside: {outside:?}");
    let links = b.eval(
        "[...document.querySelectorAll('[src],[href],[action]')]\
         .map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('action'))\
         .filter(u => /^([a-z]+:)?\\/\\//i.test(u))",
    );
    assert_eq!(links, json!([]), "{what}: links to elsewhere");
}

#[test]
fn the_readme_run_in_a_browser() {
    let fx = Fx::new();
    let run = fx.planning_run();
    let events = fx.events(&run);
    let attempts = events
        .iter()
        .filter(|e| e["event"] == "attempt_started")
        .count();
    assert_eq!(attempts, 4);
    let file = fx.report(&run);
    let html = std::fs::read_to_string(&file).expect("the page");
    assert!(html.contains(
        "content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\""
    ));

    // `-o -`: the same page on standard output
    let out = fx.guardflow(&["report", &run, "-o", "-"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), html);

    let mut b = Browser::start();
    b.open(&url(&file));
    assert_clean(&mut b, "the report");
    // one bar per attempt, each with its generator and guard time
    assert_eq!(
        b.eval("document.querySelectorAll('svg.timeline g.attempt').length"),
        json!(attempts)
    );
    assert_eq!(
        b.eval("document.querySelectorAll('svg.timeline g.attempt rect.gen').length"),
        json!(attempts)
    );
    assert_eq!(
        b.eval("document.querySelectorAll('svg.timeline g.attempt rect.guard').length"),
        json!(attempts)
    );
    assert_eq!(
        b.eval("[...document.querySelectorAll('svg.timeline g.attempt')].map(g => g.classList[1]).join(' ')"),
        json!("v-reject v-pass v-reject v-pass")
    );
    // the tree: the task, its method and both actions on the path taken
    assert_eq!(
        b.eval("[...document.querySelectorAll('#tree li.node.on-path > b')].map(b => b.textContent).join(' ')"),
        json!("prepare plan_then_runbook p r")
    );
    // the graph: both subtasks reached, the method passed
    assert_eq!(
        b.eval("document.querySelectorAll('svg.graph g.node.visited').length"),
        json!(2)
    );
    assert_eq!(
        b.eval("document.querySelectorAll('svg.graph g.method.m-passed').length"),
        json!(1)
    );
    // bounds against the run: 6 calls at worst, 4 used
    assert_eq!(
        b.eval("document.querySelector('table.bounds tbody tr').textContent"),
        json!("generator calls64")
    );
    // clicking the first bar opens the attempt: prompt, output, feedback
    b.eval("document.querySelector('svg.timeline g.attempt rect.gen').dispatchEvent(new MouseEvent('click', {bubbles: true})), true");
    assert!(b.wait_for(
        "document.getElementById('a0').open",
        Duration::from_secs(10)
    ));
    let body = b.eval("document.querySelector('#a0 .body').textContent");
    let body = body.as_str().expect("text");
    let fb = events
        .iter()
        .find(|e| e["event"] == "attempt" && e["verdict"] == "fail")
        .and_then(|e| e["feedback"].as_str())
        .expect("feedback");
    assert!(body.contains(fb), "the full feedback in {body}");
    assert!(body.contains("\"risk\": \"Severe\""), "{body}");
    assert!(body.contains("Break this goal into 3 to 7"), "{body}");
    // the second attempt's diff against the first
    b.eval("document.getElementById('a1').open = true");
    assert!(b.wait_for(
        "document.querySelector('#a1 pre.diff') !== null",
        Duration::from_secs(10)
    ));
    let diff = b.eval("document.querySelector('#a1 pre.diff').textContent");
    let diff = diff.as_str().expect("text");
    assert!(diff.contains("- {\"steps\": [\"Take a backup\""), "{diff}");
    assert!(
        diff.contains("+ {\"steps\": [\"Take a full backup"),
        "{diff}"
    );
    b.screenshot(&artifacts().join("report-planning.png"));
    assert_clean(&mut b, "the report after opening attempts");
}

const HOSTILE: &str = "</script><script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\"><!-- ]]> '\"&amp;";

#[test]
fn model_output_cannot_inject_markup_or_script() {
    let fx = Fx::new();
    let workflow = r#"
use std.{contains}

generator g = llm(model: "m")

action answer(q: Text) -> Text {
  :generate g "Answer {q}"
  :guard contains("hello")
  :retry 2
}

task main() -> Text {
  method only {
    :subtasks (a: answer("</title><script>alert(1)</script>"))
    :result a
  }
}
"#;
    let replay = [
        json!({"action": "answer", "attempt": 1, "output": HOSTILE, "delay_ms": 20}),
        json!({"action": "answer", "attempt": 2, "output": format!("hello {HOSTILE}"), "delay_ms": 10}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let run = fx.run_of("hostile", workflow, &replay);
    let file = fx.report(&run);
    let html = std::fs::read_to_string(&file).expect("the page");
    // the texts only as escaped data: one closing script tag per script
    assert_eq!(html.matches("</script>").count(), 2, "{html}");
    assert!(!html.contains("<img"), "an image tag in the page");
    assert!(!html.contains("<!-- ]]>"));

    let mut b = Browser::start();
    b.open(&url(&file));
    b.eval("document.querySelectorAll('details.attempt').forEach(d => d.open = true), true");
    assert!(b.wait_for(
        "document.querySelectorAll('details.attempt[data-filled]').length === 2",
        Duration::from_secs(10)
    ));
    assert_eq!(b.eval("typeof window.pwned"), json!("undefined"));
    assert_eq!(b.eval("document.querySelectorAll('img').length"), json!(0));
    assert_eq!(b.eval("document.scripts.length"), json!(2));
    // the output is shown as the text it is, prompt too
    let shown = b.eval("[...document.querySelectorAll('#a0 .body pre')].map(p => p.textContent)");
    let shown: Vec<String> = serde_json::from_value(shown).expect("texts");
    assert!(shown.iter().any(|t| t == HOSTILE), "{shown:#?}");
    assert!(
        shown
            .iter()
            .any(|t| t == "Answer </title><script>alert(1)</script>"),
        "{shown:#?}"
    );
    assert_clean(&mut b, "the hostile report");
    b.screenshot(&artifacts().join("report-hostile.png"));
}

#[test]
fn a_failed_method_and_an_escalation_are_marked() {
    let fx = Fx::new();
    let workflow = r#"
use std.{contains}

generator g = llm(model: "m")

action write_tests(spec: Text) -> Text {
  :generate g "Tests for {spec}"
  :guard contains("def test")
  :retry 0
}

action implement(spec: Text, tests: Text) -> Text {
  :generate g "Implement {spec} for {tests}"
  :guard contains("def impl")
  :retry 1
}

action quick(spec: Text) -> Text {
  :generate g "Quickly: {spec}"
  :guard contains("quick")
  :retry 0
}

task build(spec: Text) -> Text {
  method fast {
    :subtasks (q: quick(spec))
    :result q
  }
  method careful {
    :subtasks (t: write_tests(spec), i: implement(spec, t) :escalate-to t after 2 :max-escalations 1)
    :ordering (t ; i)
    :result i
  }
}

task main() -> Text {
  method only {
    :subtasks (b: build("adder"))
    :result b
  }
}
"#;
    let replay = [
        json!({"action": "quick", "attempt": 1, "output": "no"}),
        json!({"action": "write_tests", "attempt": 1, "output": "def test_one(): pass"}),
        json!({"action": "implement", "attempt": 1, "output": "nothing"}),
        json!({"action": "implement", "attempt": 2, "output": "still nothing"}),
        json!({"action": "write_tests", "attempt": 2, "output": "def test_two(): pass"}),
        json!({"action": "implement", "attempt": 3, "output": "def impl(): pass"}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect::<String>();
    let run = fx.run_of("ladder", workflow, &replay);
    let events = fx.events(&run);
    assert!(
        events.iter().any(|e| e["event"] == "escalated"),
        "{events:#?}"
    );
    let file = fx.report(&run);
    let mut b = Browser::start();
    b.open(&url(&file));
    assert_clean(&mut b, "the ladder report");
    assert_eq!(
        b.eval("[...document.querySelectorAll('#tree li.node.k-method')].map(l => l.querySelector('b').textContent + ' ' + l.querySelector('.st').textContent).join(', ')"),
        json!("only passed, fast failed, careful passed")
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#tree .escalation').length"),
        json!(1)
    );
    assert_eq!(
        b.eval("document.querySelector('#tree li.node.k-method.s-failed pre.reason') !== null"),
        json!(true)
    );
    let attempts = events
        .iter()
        .filter(|e| e["event"] == "attempt_started")
        .count();
    assert_eq!(
        b.eval("document.querySelectorAll('svg.timeline g.attempt').length"),
        json!(attempts)
    );
    assert_eq!(
        b.eval("[...document.querySelectorAll('svg.graph g.method')].map(g => g.classList[1]).join(' ')"),
        json!("m-passed m-failed m-passed")
    );
    b.screenshot(&artifacts().join("report-escalation.png"));
}

/// The events of a made-up run of `n` attempts over `paths` paths, two
/// attempts of each path rejected before the pass (the store's shapes).
pub fn synthetic_events(n: usize, paths: usize) -> Vec<Value> {
    let mut events = vec![
        json!({"event": "run_started", "task": "big", "seq": 1, "session": 1, "at_ms": 0}),
        json!({"event": "task_started", "path": "big", "task": "big", "seq": 2, "session": 1, "at_ms": 0}),
        json!({"event": "method_started", "path": "big/all", "method": "all", "seq": 3, "session": 1, "at_ms": 0}),
    ];
    let mut seq = 4;
    let mut push = |mut e: Value, at: i64| {
        e["seq"] = json!(seq);
        e["session"] = json!(1);
        e["at_ms"] = json!(at);
        seq += 1;
        events.push(e);
    };
    let per_path = n.div_ceil(paths);
    for i in 0..n {
        let p = i % paths;
        let k = i / paths + 1;
        let path = format!("big/all/c[{p}]");
        let at = (i as i64) * 3;
        if k == 1 {
            push(
                json!({"event": "action_started", "path": path, "action": "solve"}),
                at,
            );
        }
        let prompt = format!(
            "Solve item {p} of the batch. Keep the answer short and exact; explain nothing.\n\
             The item: {}\nAttempt {k}; the feedback so far is below.\n{}",
            "x = y + z; ".repeat(12),
            "- the answer was not a number\n".repeat(k.min(4))
        );
        let output = format!(
            "Here is the answer for item {p}:\n{}\nresult = {}\n",
            "step: add the two numbers and check them\n".repeat(6),
            p * 31 + k
        );
        let pass = k == per_path;
        push(
            json!({"event": "attempt_started", "path": path, "action": "solve", "occurrence": 1,
                   "index": k, "attempt": k, "prompt": prompt, "role": null}),
            at,
        );
        push(
            json!({"event": "generated", "path": path, "action": "solve", "attempt": k,
                   "output": output, "tokens": 80, "generate_ms": 2}),
            at + 2,
        );
        push(
            json!({"event": "attempt", "path": path, "action": "solve", "attempt": k,
                   "prompt": prompt, "output": output,
                   "verdict": if pass { "pass" } else { "fail" },
                   "feedback": if pass { String::new() } else {
                       format!("regex: no line matches `^result = [0-9]+$`\n{}", "  near: result = ?\n".repeat(5))
                   },
                   "tokens": 80, "generate_ms": 2, "guard_ms": 1}),
            at + 3,
        );
        if pass {
            push(
                json!({"event": "committed", "path": path, "action": "solve", "artifact": output,
                       "artifact_hash": "00", "occurrence": 1}),
                at + 3,
            );
        }
    }
    let end = n as i64 * 3 + 5;
    push(
        json!({"event": "task_finished", "path": "big", "task": "big", "success": true}),
        end,
    );
    push(
        json!({"event": "run_finished", "success": true, "generator_calls": n, "guard_runs": n,
               "elapsed_ms": end, "repeated_calls": 0}),
        end,
    );
    events
}

pub fn synthetic_run(n: usize, paths: usize) -> guardflow::report::RunData {
    guardflow::report::RunData {
        meta: guardflow::store::RunMeta {
            id: "20261204-000000-beef".into(),
            workflow: "/nonexistent/big.guardflow".into(),
            workflow_hash: String::new(),
            task: "big".into(),
            inputs: serde_json::Map::new(),
            replacement: None,
            worst_case_calls: Some(n as u64 * 2),
            started_ms: 0,
            seed: None,
            bench: None,
        },
        status: "succeeded".into(),
        events: synthetic_events(n, paths),
        workflow: Err("the file is gone".into()),
    }
}

#[test]
fn ten_thousand_attempts_stay_under_10_mb_and_open() {
    let data = synthetic_run(10_000, 2_500);
    let started = std::time::Instant::now();
    let page = guardflow::report::render(&data, &Default::default());
    let rendered = started.elapsed();
    assert!(
        page.len() < 10 * 1024 * 1024,
        "{} bytes for 10,000 attempts",
        page.len()
    );
    assert_eq!(page.matches("<g class=\"attempt ").count(), 10_000);
    // the texts that did not fit say where they were cut
    let file = artifacts().join("report-10000.html");
    std::fs::write(&file, &page).expect("write the page");
    let mut b = Browser::start();
    let load = b.open(&url(&file));
    assert_eq!(
        b.eval("document.querySelectorAll('svg.timeline g.attempt').length"),
        json!(10_000)
    );
    assert_clean(&mut b, "the large report");
    // a late attempt opens with its texts
    b.eval("document.getElementById('a9999').open = true");
    assert!(b.wait_for(
        "document.querySelector('#a9999 .body pre') !== null",
        Duration::from_secs(20)
    ));
    let body = b.eval("document.querySelector('#a9999 .body').textContent");
    assert!(
        body.as_str().is_some_and(|t| t.contains("Solve item")),
        "{body}"
    );
    b.screenshot(&artifacts().join("report-10000.png"));
    eprintln!(
        "10,000 attempts: {} bytes, rendered in {rendered:?}, loaded in the browser in {load:?}",
        page.len()
    );
}

#[test]
fn no_such_run_or_store_is_a_clear_error() {
    let fx = Fx::new();
    fx.planning_run();
    let out = fx.guardflow(&["report", "20990101-000000-0000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no run `20990101-000000-0000`"), "{err}");
    let out = std::process::Command::new(bin())
        .args(["report", "x", "--store"])
        .arg(fx.dir.path().join("nothing.db"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no run store here"),
        "{out:?}"
    );
}
