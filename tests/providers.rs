//! Generators that survive providers: `fallback(…)` moving an attempt to
//! the next provider on a transport failure, the circuit breaker, the
//! limits shared by every branch, failing fast on an absent server, and
//! transport error text never reaching a prompt. Real `guardflow run
//! --json` subprocesses against scripted loopback servers; every check
//! counts requests on the server side, none measures time.

use std::process::Command;
use std::time::Duration;

use crate::support::model_server::{closed_port, ModelServer, Reply};
use crate::support::{bin, run_bounded, Ran};

/// Text a failing provider answers with: it must never reach a prompt.
const MARK: &str = "TRANSPORT-FAILURE-TEXT-7f3a";

fn run_flow(source: &str, extra: &[&str]) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flow.guardflow");
    std::fs::write(&file, source).expect("writes");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(&file)
        .arg("--json")
        .args(extra)
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
    run_bounded(cmd, Duration::from_secs(180))
}

/// `generators` then `n` actions `s1…sn` in sequence (or all at once with
/// `parallel`), each generating with `g` and guarded by `contains("ok")`.
fn flow(generators: &str, n: usize, parallel: bool) -> String {
    let labels: Vec<String> = (1..=n).map(|i| format!("s{i}: answer(\"{i}\")")).collect();
    let names: Vec<String> = (1..=n).map(|i| format!("s{i}")).collect();
    let ordering = names.join(if parallel { " || " } else { " ; " });
    format!(
        r#"use std.{{contains}}
{generators}
action answer(topic: Text) -> Text {{
  :generate g "Say something about {{topic}}"
  :guard contains("ok")
  :retry 2
  :timeout 60s
}}
task main() {{
  method only {{
    :subtasks ({})
    :ordering ({ordering})
  }}
}}
"#,
        labels.join(", ")
    )
}

fn report(ran: &Ran) -> serde_json::Value {
    ran.events()
        .into_iter()
        .find(|e| e["event"] == "report")
        .map(|e| e["report"].clone())
        .unwrap_or_else(|| panic!("no report:\n{}", ran.all()))
}

/// Every prompt any server was sent.
fn prompts(servers: &[&ModelServer]) -> Vec<String> {
    servers
        .iter()
        .flat_map(|s| s.requests())
        .map(|r| r.body)
        .collect()
}

#[test]
fn a_rate_limited_provider_hands_the_same_attempt_to_the_next() {
    let a = ModelServer::start(vec![Reply::status(
        429,
        format!(r#"{{"error": {{"message": "{MARK}: slow down"}}}}"#),
    )
    .header("Retry-After", "30")]);
    let b = ModelServer::start(vec![Reply::chat("ok from b")]);
    let generators = format!(
        "generator a = llm(model: \"m\", base_url: \"{}\")\n\
         generator b = llm(model: \"m\", base_url: \"{}\")\n\
         generator g = fallback(a, b)",
        a.url(),
        b.url()
    );
    let ran = run_flow(&flow(&generators, 1, false), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    // one guard attempt, served by b; a asked once (Retry-After is long:
    // not waited out while another provider can serve)
    let attempts = ran.attempts();
    assert_eq!(attempts.len(), 1, "{}", ran.all());
    assert_eq!(attempts[0]["verdict"], "pass");
    assert_eq!(a.requests().len(), 1);
    assert_eq!(b.requests().len(), 1);
    let r = report(&ran);
    assert_eq!(r["attempts"][0]["provider"], "b", "{r}");
    assert_eq!(r["generator_calls"], 1, "{r}");
    let served: Vec<_> = ran
        .events()
        .into_iter()
        .filter(|e| e["event"] == "served")
        .collect();
    assert_eq!(served.len(), 1, "{}", ran.all());
    assert_eq!(served[0]["provider"], "b");
    let skipped = served[0]["skipped"][0].as_str().unwrap_or("");
    assert!(
        skipped.starts_with("a: ") && skipped.contains("429"),
        "{skipped}"
    );
    // the same prompt went to both; no failure text in any prompt
    let sent = prompts(&[&a, &b]);
    assert_eq!(sent.len(), 2);
    for p in &sent {
        assert!(!p.contains(MARK) && !p.contains("429"), "{p}");
    }
    assert_eq!(
        a.requests()[0].json()["messages"],
        b.requests()[0].json()["messages"]
    );
}

#[test]
fn transport_failures_never_reach_a_prompt_nor_use_guard_attempts() {
    // one provider that keeps failing: its retries are transport retries,
    // said as they wait; the action then fails without a guard attempt,
    // and nothing the server said is ever sent back as feedback
    let server = ModelServer::start(vec![Reply::status(
        503,
        format!(r#"{{"error": "{MARK}"}}"#),
    )]);
    let generators = format!(
        "generator g = llm(model: \"m\", base_url: \"{}\", timeout: 5s, breaker_after: 100)",
        server.url()
    );
    let source = flow(&generators, 1, false).replace(":timeout 60s", "");
    let ran = run_flow(&source, &[]);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(server.requests().len() >= 2, "retried in transport");
    for p in prompts(&[&server]) {
        assert!(!p.contains(MARK), "transport error text in a prompt: {p}");
    }
    assert_eq!(ran.attempts().len(), 0, "{}", ran.all());
    let failure = report(&ran)["failure"].as_str().unwrap_or("").to_string();
    assert!(
        failure.contains("503") && failure.contains(MARK),
        "{failure}"
    );
    assert!(failure.contains("no guard attempt was used"), "{failure}");
    let waits: Vec<_> = ran
        .events()
        .into_iter()
        .filter(|e| e["event"] == "waiting")
        .collect();
    assert!(
        !waits.is_empty(),
        "no progress while retrying:\n{}",
        ran.all()
    );
    let what = waits[0]["what"].as_str().unwrap_or("");
    assert!(what.starts_with("transport retry 1 in "), "{what}");
}

#[test]
fn the_circuit_breaker_skips_a_failing_provider_then_probes_it_after_the_cool_down() {
    // a fails once: with breaker_after 1 its circuit opens for 3 s. s1 is
    // served by b; s2 comes at once and skips a; b holds s2 for 4 s, so s3
    // comes after the cool-down and probes a, which answers: closed again.
    let a = ModelServer::start(vec![
        Reply::status(500, format!(r#"{{"error": "{MARK}"}}"#)),
        Reply::chat("ok from a"),
    ]);
    let b = ModelServer::start(vec![
        Reply::chat("ok from b"),
        Reply::chat("ok from b, slowly").delayed(Duration::from_secs(4)),
        Reply::chat("ok from b"),
    ]);
    let generators = format!(
        "generator a = llm(model: \"m\", base_url: \"{}\", breaker_after: 1, cool_down: 3s)\n\
         generator b = llm(model: \"m\", base_url: \"{}\")\n\
         generator g = fallback(a, b)",
        a.url(),
        b.url()
    );
    let ran = run_flow(&flow(&generators, 3, false), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let r = report(&ran);
    let served: Vec<&str> = r["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["provider"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(served, ["b", "b", "a"], "{r}");
    // a: s1's failure and s3's probe; skipped for s2
    assert_eq!(a.requests().len(), 2, "{}", ran.all());
    assert_eq!(b.requests().len(), 2, "{}", ran.all());
    let skipped: Vec<String> = ran
        .events()
        .into_iter()
        .filter(|e| e["event"] == "served" && e["path"].as_str() == Some("main/only/s2"))
        .map(|e| e["skipped"][0].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        skipped.len() == 1 && skipped[0].contains("circuit breaker"),
        "{skipped:?}"
    );
    for p in prompts(&[&a, &b]) {
        assert!(!p.contains(MARK), "{p}");
    }
}

#[test]
fn fifty_branches_never_have_more_than_max_concurrent_requests_in_flight() {
    let limited = ModelServer::start(vec![Reply::chat("ok").delayed(Duration::from_millis(200))]);
    let generators = format!(
        "generator g = llm(model: \"m\", base_url: \"{}\", max_concurrent: 4)",
        limited.url()
    );
    let ran = run_flow(&flow(&generators, 50, true), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(limited.requests().len(), 50);
    let most = limited.most_in_flight();
    assert!((1..=4).contains(&most), "{most} requests in flight at once");
    // the same fork-join without the limit does send them together: the
    // count above can fail
    let free = ModelServer::start(vec![Reply::chat("ok").delayed(Duration::from_millis(500))]);
    let generators = format!(
        "generator g = llm(model: \"m\", base_url: \"{}\", max_concurrent: 0)",
        free.url()
    );
    let ran = run_flow(&flow(&generators, 50, true), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(free.most_in_flight() > 4, "{}", free.most_in_flight());
}

#[test]
fn a_refused_connection_on_the_first_request_fails_at_once() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let generators = format!("generator g = llm(model: \"m\", base_url: \"{base}\")");
    // a minute's timeout and two guard retries: neither is spent on a
    // server that is not there
    let ran = run_flow(&flow(&generators, 1, false), &[]);
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert_eq!(ran.attempts().len(), 0, "{}", ran.all());
    let failure = report(&ran)["failure"].as_str().unwrap_or("").to_string();
    assert!(
        failure.contains("cannot reach the model server"),
        "{failure}"
    );
    assert!(failure.contains(&base), "{failure}");
    assert!(failure.contains("gave up after 1 try"), "{failure}");
    assert!(
        failure.contains("is the server running? Set `base_url` or $GUARDFLOW_LLM_BASE_URL"),
        "{failure}"
    );
    // one call, no transport retries to wait out
    let waits = ran
        .events()
        .into_iter()
        .filter(|e| e["event"] == "waiting")
        .count();
    assert_eq!(waits, 0, "{}", ran.all());
}

#[test]
fn an_absent_first_provider_falls_back_at_once() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let b = ModelServer::start(vec![Reply::chat("ok")]);
    let generators = format!(
        "generator g = fallback(llm(model: \"m\", base_url: \"{base}\"), llm(model: \"n\", base_url: \"{}\"))",
        b.url()
    );
    let ran = run_flow(&flow(&generators, 1, false), &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(ran.attempts().len(), 1);
    assert_eq!(b.requests().len(), 1);
    assert_eq!(b.requests()[0].json()["model"], "n");
}

#[test]
fn bounds_note_fallbacks_and_give_each_provider_its_timeout() {
    let check = |format: &str| {
        let o = Command::new(bin())
            .args(["check", "--bounds", "--format", format])
            .arg("tests/pass/fallback_inline.guardflow")
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let json: serde_json::Value = serde_json::from_str(check("json").trim()).expect("json");
    // one call per attempt: draft 3, polish 2
    assert_eq!(json["cost"]["generator_calls"], 5, "{json}");
    // draft: 3 × (120 s + 120 s); polish: 2 × (120 s + 120 s + 1 s)
    assert_eq!(json["cost"]["time_ms"], 3 * 240_000 + 2 * 241_000, "{json}");
    let text = check("human");
    assert!(
        text.contains("note: `fallback#7` falls back over `llm#1`, `hosted`, `replay#6`: each attempt counts one generator call"),
        "{text}"
    );
}

#[test]
fn a_call_waiting_on_transport_retries_says_so_without_a_terminal() {
    let server = ModelServer::start(vec![
        Reply::status(503, "overloaded"),
        Reply::status(503, "overloaded"),
        Reply::chat("ok"),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flow.guardflow");
    let generators = format!(
        "generator g = llm(model: \"m\", base_url: \"{}\")",
        server.url()
    );
    std::fs::write(&file, flow(&generators, 1, false)).expect("writes");
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg(&file).arg("--no-store");
    let ran = run_bounded(cmd, Duration::from_secs(120));
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(server.requests().len(), 3);
    for n in [1, 2] {
        let line = format!("main/only/s1: answer attempt 1 (g) waits for transport retry {n} in ");
        assert!(ran.stderr.contains(&line), "{line}\n{}", ran.stderr);
    }
}
