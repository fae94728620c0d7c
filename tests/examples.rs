//! Every example checks clean.

use crate::support::{check_path, guardflow_files, render_all};

#[test]
fn every_example_checks_without_findings() {
    let files = guardflow_files("examples");
    assert!(files.len() >= 4, "examples/ has {} workflows", files.len());
    for path in files {
        let checked = check_path(&path);
        assert!(
            checked.diagnostics.is_empty(),
            "{}:\n{}",
            path.display(),
            render_all(&checked)
        );
    }
}

/// README's first command: the planning example, end to end, offline.
#[test]
fn the_planning_example_runs_end_to_end_with_its_recording() {
    let o = crate::support::guardflow()
        .args([
            "run",
            "examples/planning.guardflow",
            "--task",
            "prepare",
            "--input",
            "goal=move the user database to PostgreSQL 16",
            "--replay",
            "examples/fixtures/planning.jsonl",
        ])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("## Rollback"), "{out}");
    assert!(err.contains("`prepare` succeeded"), "{err}");
    // one rejection each, then a pass: 4 calls of at most 6
    assert!(
        err.contains("generator calls: 4 (the checker's worst case: 6)"),
        "{err}"
    );
}

/// Plan, then a map over the plan: the plan over its bound is refused by
/// its schema's `maxItems` and planned again; each of the three steps is
/// implemented; the report shows the real count beside the bound of five.
#[test]
fn the_plan_map_example_runs_with_its_recording() {
    let o = std::process::Command::new(crate::support::bin())
        .args([
            "run",
            "examples/plan_map.guardflow",
            "--task",
            "build",
            "--input",
            "feature=a word counter for log files",
            "--replay",
            "examples/fixtures/plan_map.jsonl",
            "--json",
            "--no-store",
        ])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    for name in ["read_lines", "count_words", "top_words"] {
        assert!(out.contains(&format!("def {name}(")), "{out}");
    }
    assert!(out.contains("maxItems"), "the first plan's feedback: {out}");
    for i in 0..3 {
        assert!(
            out.contains(&format!("build/plan_then_implement/c[{i}]")),
            "{out}"
        );
    }
    assert!(!out.contains("plan_then_implement/c[3]"), "{out}");
}

/// The examples' own `test` items pass (`guardflow test examples/`).
#[test]
fn the_examples_tests_pass() {
    let o = crate::support::guardflow()
        .args(["test", "--color", "never", "examples"])
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("test examples/tdd.guardflow :: tdd succeeds on the recorded run ... ok"),
        "{out}"
    );
    for name in [
        "examples/branching.guardflow :: a medium finding is patched, not rewritten ... ok",
        "examples/bugfix.guardflow :: a wrong localisation is revised after the patch fails twice ... ok",
        "examples/triage.guardflow :: a proposal outside the allowed commands is refused before it runs ... ok",
        "examples/clma.guardflow :: the critic's issues are worked in until it passes the code ... ok",
    ] {
        assert!(out.contains(name), "{out}");
    }
    // every example's tests ran and passed (the count grows with them)
    let ok = out.matches(" ... ok").count();
    assert!(ok >= 7, "{out}");
    assert!(
        out.trim_end().ends_with(&format!("{ok} passed, 0 failed")),
        "{out}"
    );
}

/// `examples/embed.rs`, built by `cargo test`, runs and succeeds.
#[test]
fn the_embedding_example_runs() {
    let exe = std::env::current_exe().expect("test binary");
    // target/debug/deps/main-… → target/debug/examples/embed
    let embed = exe
        .parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("examples").join("embed"))
        .expect("target dir");
    if !embed.exists() {
        // `cargo test` builds examples; a filtered run may not have
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--example", "embed"])
            .status()
            .expect("cargo");
        assert!(
            built.success() && embed.exists(),
            "{} was not built",
            embed.display()
        );
    }
    let o = std::process::Command::new(&embed).output().expect("runs");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("success: true, generator calls: 2"), "{out}");
    assert!(out.contains("def add(a: int, b: int) -> int:"), "{out}");
    assert!(err.contains("write_function attempt 1: Fail typed_defs: line 1: `def add(a: int, b: int):` has no return type annotation"), "{err}");
}

/// The TDD pipeline against a model server on loopback: the server
/// answers with the recorded completions, pytest judges the code for real
/// (the first implementation fails a test, the second passes).
#[test]
fn the_tdd_example_runs_against_a_model_server() {
    use crate::support::model_server::{ModelServer, Reply};
    let recording = std::fs::read_to_string("examples/fixtures/tdd.jsonl").expect("recording");
    let script: Vec<Reply> = recording
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a recorded line");
            Reply::chat(v["output"].as_str().expect("an output"))
        })
        .collect();
    assert_eq!(script.len(), 3);
    let server = ModelServer::start(script);
    let mut cmd = crate::support::guardflow();
    cmd.args([
        "run",
        "examples/tdd.guardflow",
        "--input",
        "spec=a Stack class with push, pop, peek and is_empty",
    ])
    .env("GUARDFLOW_LLM_BASE_URL", server.url())
    .env_remove("GUARDFLOW_LLM_API_KEY")
    .env_remove("OPENAI_API_KEY")
    .env_remove("HTTP_PROXY")
    .env_remove("http_proxy")
    .env_remove("HTTPS_PROXY")
    .env_remove("https_proxy")
    .env_remove("ALL_PROXY")
    .env_remove("all_proxy");
    let ran = crate::support::run_bounded(cmd, std::time::Duration::from_secs(300));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(
        ran.stdout.contains("return self.items.pop()"),
        "{}",
        ran.all()
    );
    assert!(ran.stderr.contains("`tdd` succeeded"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("tokens: 33 prompt, 21 generated"),
        "{}",
        ran.stderr
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    let first = seen[0].json();
    assert_eq!(first["model"], "qwen2.5-coder:7b");
    assert_eq!(
        first["messages"][0]["content"],
        "You are a careful Python test engineer."
    );
    assert_eq!(first["max_tokens"], 1200);
    // pytest's report went back to the model with the second implementation request
    let third = seen[2].json();
    let prompt = third["messages"][1]["content"].as_str().unwrap_or("");
    assert!(
        prompt.contains("test_push_then_pop_returns_the_last_item"),
        "{prompt}"
    );
}

fn json_events(args: &[&str]) -> Vec<serde_json::Value> {
    let o = crate::support::guardflow()
        .args(args)
        .arg("--json")
        .output()
        .expect("runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The bug-fix flow escalates from the patch to the localisation: two
/// failed patches (pytest, for real), then `locate` again with pytest's
/// report in its prompt, then a patch that passes.
#[test]
fn the_bugfix_example_escalates_from_the_patch_to_the_localisation() {
    let events = json_events(&[
        "run",
        "examples/bugfix.guardflow",
        "--input",
        "report=last_item([1, 2, 3]) raises IndexError",
        "--input",
        "code=def first_item(xs):\n    return xs[0]\n\ndef last_item(xs):\n    return xs[len(xs)]\n",
        "--replay",
        "examples/fixtures/bugfix.jsonl",
    ]);
    let trail: Vec<String> = events
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("attempt") => Some(format!(
                "{} {} {}",
                e["action"].as_str()?,
                e["attempt"],
                e["verdict"].as_str()?
            )),
            Some("escalated") => Some(format!("escalated to {}", e["target"].as_str()?)),
            _ => None,
        })
        .collect();
    assert_eq!(
        trail,
        [
            "reproduce 1 pass",
            "locate 1 pass",
            "patch 1 fail",
            "patch 2 fail",
            "escalated to l",
            "locate 2 pass",
            "patch 3 pass",
        ]
    );
    let relocate = events
        .iter()
        .find(|e| e["event"] == "attempt" && e["action"] == "locate" && e["attempt"] == 2)
        .expect("the second localisation");
    let prompt = relocate["prompt"].as_str().unwrap_or("");
    assert!(
        prompt.contains("A later step, `p`, kept failing"),
        "{prompt}"
    );
    assert!(prompt.contains("test_last_item"), "{prompt}");
}

/// The operations flow runs its effects for real: the piped proposal is
/// refused by the `:pre-guard` (no outcome), the next one runs.
#[test]
fn the_triage_example_runs_its_effects() {
    let events = json_events(&[
        "run",
        "examples/triage.guardflow",
        "--input",
        "log=fixtures/service.log",
        "--replay",
        "examples/fixtures/triage.jsonl",
    ]);
    let attempts: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "attempt").collect();
    assert_eq!(attempts.len(), 3);
    assert!(attempts[0].get("outcome").is_none(), "{}", attempts[0]);
    assert_eq!(attempts[1]["outcome"]["stdout"], "2\n", "{}", attempts[1]);
    let tail = attempts[2]["outcome"]["stdout"].as_str().unwrap_or("");
    assert_eq!(tail.lines().count(), 5, "{tail}");
}

/// The apply example, offline, in a fresh repository: the first proposal
/// breaks a layer rule, the second misses a documented function, the
/// third is written into the workspace and committed alone.
#[test]
fn the_apply_example_writes_and_commits_the_checked_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ws = dir.path();
    for f in ["examples/apply.guardflow", "examples/fixtures/apply.jsonl"] {
        let name = std::path::Path::new(f).file_name().expect("a name");
        std::fs::copy(f, ws.join(name)).expect("copies");
    }
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(ws)
            .output()
            .expect("git");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["commit", "-q", "--allow-empty", "-m", "init"]);
    let mut cmd = std::process::Command::new(crate::support::bin());
    cmd.arg("run")
        .arg(ws.join("apply.guardflow"))
        .args(["--replay"])
        .arg(ws.join("apply.jsonl"))
        .args([
            "--input",
            "spec=net and gross prices from a VAT rate",
            "--input",
            "doc=- `net_price(gross, rate)`: without VAT\n- `gross_price(net, rate)`: with VAT",
            "--json",
        ]);
    let ran = crate::support::run_bounded(cmd, std::time::Duration::from_secs(120));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let feedback: Vec<String> = ran
        .attempts()
        .iter()
        .map(|a| a["feedback"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        feedback,
        [
            "layers: `app.domain.pricing` breaks a layer rule:\n- line 1: `from app.api.schemas import PriceOut` imports `app.api.schemas` (layer `app.api`), which layer `app.domain` may not import (it may import no other layer)",
            "docs_match: the code's public symbols do not match the documentation:\n- documented but not public in the code: `gross_price` (line 2 of the documentation)",
            "",
        ]
    );
    let written = std::fs::read_to_string(ws.join("app/domain/pricing.py")).expect("written");
    assert!(
        written.starts_with("from decimal import Decimal\n"),
        "{written}"
    );
    assert!(written.ends_with("return net * (1 + rate)\n"), "{written}");
    assert_eq!(
        git(&["show", "--name-only", "--format=%s", "HEAD"]),
        "app.domain.pricing: written by guardflow\n\napp/domain/pricing.py\n"
    );
}

/// The RED/GREEN flow: tests with an import error, then tests with one
/// that passes against the stub and one that checks nothing, are sent
/// back; the third tests fail on assertions and are kept; the code then
/// fails a test, passes the tests without annotations (mypy --strict),
/// and is accepted. pytest and mypy run for real.
#[test]
fn the_red_green_example_rejects_bad_tests_then_accepts_typed_code() {
    let events = json_events(&[
        "run",
        "examples/red_green.guardflow",
        "--input",
        "spec=slugify(title): lowercase, runs of other characters become one dash, no dash at either end",
        "--replay",
        "examples/fixtures/red_green.jsonl",
    ]);
    let attempts: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["event"] == "attempt").collect();
    let trail: Vec<String> = attempts
        .iter()
        .map(|e| format!("{} {} {}", e["action"], e["attempt"], e["verdict"]).replace('"', ""))
        .collect();
    assert_eq!(
        trail,
        [
            "write_stub 1 pass",
            "write_tests 1 fail",
            "write_tests 2 fail",
            "write_tests 3 pass",
            "implement 1 fail",
            "implement 2 fail",
            "implement 3 pass",
        ]
    );
    let feedback = |i: usize| attempts[i]["feedback"].as_str().unwrap_or("").to_string();
    assert!(
        feedback(1).contains("ImportError: cannot import name 'MAX_LENGTH' from 'solution'"),
        "{}",
        feedback(1)
    );
    assert!(
        feedback(2).contains("`test_empty_title` passes against the stub")
            && feedback(2).contains("`test_runs` checks nothing"),
        "{}",
        feedback(2)
    );
    assert!(
        feedback(4).starts_with("pytest: the tests failed (2 failed, 2 passed):"),
        "{}",
        feedback(4)
    );
    assert_eq!(
        feedback(5),
        "mypy: mypy --strict found 1 error:\n\
         line 4, column 1: Function is missing a type annotation  [no-untyped-def]\n    \
         def slugify(title):"
    );
    // the rejections went back to the model
    let prompt = attempts[2]["prompt"].as_str().unwrap_or("");
    assert!(prompt.contains("MAX_LENGTH"), "{prompt}");
}

/// The refinement flow: the title is chosen best-of-three (every sample
/// judged, the first that passes kept), and the refiner's retry sees the
/// version it refines and the history with the feedback.
#[test]
fn the_refine_example_keeps_its_context_and_samples_the_title() {
    let events = json_events(&[
        "run",
        "examples/refine.guardflow",
        "--input",
        "topic=handshakes",
        "--input",
        "problem=Ten people each shake hands once with every other. How many handshakes?",
        "--replay",
        "examples/fixtures/refine.jsonl",
    ]);
    let trail: Vec<String> = events
        .iter()
        .filter_map(|e| match e["event"].as_str() {
            Some("attempt") => Some(format!(
                "{} {} {}",
                e["action"].as_str()?,
                e["attempt"],
                e["verdict"].as_str()?
            )),
            Some("committed") => Some(format!("committed {}", e["artifact"])),
            _ => None,
        })
        .collect();
    // (the three samples are judged concurrently: their verdicts come in
    // any order, and the first in sample order that passes is kept)
    let mut trail = trail;
    trail[..3].sort();
    assert_eq!(
        trail[..5],
        [
            "title 1 fail",
            "title 2 pass",
            "title 3 pass",
            "committed \"Handshakes at a party of ten\"",
            "solve 1 pass",
        ]
    );
    assert_eq!(trail[6..8], ["refine 1 fail", "refine 2 pass"]);
    let retry = events
        .iter()
        .find(|e| e["event"] == "attempt" && e["action"] == "refine" && e["attempt"] == 2)
        .expect("the refiner's retry");
    let prompt = retry["prompt"].as_str().unwrap_or("");
    assert!(
        prompt.contains("Your last rejected version: Each of 10 people shakes 9 hands, and each"),
        "{prompt}"
    );
    assert!(prompt.contains("Attempt 1:\nOutput:\n"), "{prompt}");
    assert!(prompt.contains("Feedback:\ncontains:"), "{prompt}");
    assert!(
        prompt.starts_with("# Handshakes at a party of ten"),
        "{prompt}"
    );
}

/// `examples/fallback.guardflow` offline: nothing listens at the local
/// provider's address, so every attempt is served by the hosted one (a
/// scripted loopback server), without using a guard attempt.
#[test]
fn the_fallback_example_serves_every_attempt_from_the_second_provider() {
    use crate::support::model_server::{closed_port, ModelServer, Reply};
    let hosted = ModelServer::start(vec![
        Reply::chat(
            "Retry budgets bound how often a step is tried; in short, failures stay cheap.",
        ),
        Reply::chat("How big should a budget be?\nWho sets it?\nWhat happens after it?"),
    ]);
    let local = format!("http://127.0.0.1:{}", closed_port());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(crate::support::bin());
    cmd.args(["run", "examples/fallback.guardflow", "--store"])
        .arg(dir.path().join("runs.db"))
        .args(["--input", "topic=retry budgets", "--input"])
        .arg(format!("local_url={local}"))
        .arg("--input")
        .arg(format!("hosted_url={}", hosted.url()))
        .env_remove("GUARDFLOW_LLM_BASE_URL")
        .env_remove("GUARDFLOW_LLM_API_KEY")
        .env_remove("OPENAI_API_KEY");
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(v);
    }
    let ran = crate::support::run_bounded(cmd, std::time::Duration::from_secs(120));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.stdout.contains("Who sets it?"), "{}", ran.all());
    assert_eq!(hosted.requests().len(), 2);
    // one attempt each, both served by `hosted`, said as it happened
    assert!(ran.stderr.contains("generator calls: 2"), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("served by `hosted` after transport failures: local: cannot reach"),
        "{}",
        ran.stderr
    );
}
