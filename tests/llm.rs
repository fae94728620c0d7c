//! The `llm` generator against a real HTTP server on loopback: scripted
//! completions, rate limits, server errors, slow answers, garbage and a
//! closed port. Each run is `guardflow run --json` in a subprocess with a
//! deadline, so nothing can hang the suite; the API key must never show.

use std::process::Command;
use std::time::Duration;

use crate::support::model_server::{closed_port, ModelServer, Reply};
use crate::support::{bin, run_bounded, Ran};

const KEY: &str = "sk-test-9f8e7d6c5b4a-never-print-me";

/// `guardflow run --json` on `source` (written to a fresh directory) with
/// the model server at `base` and the test key in the environment.
fn run_flow(source: &str, base: &str, extra: &[&str]) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flow.guardflow");
    std::fs::write(&file, source).expect("writes");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(&file)
        .args(["--json"])
        .args(extra)
        .env("GUARDFLOW_LLM_BASE_URL", base)
        .env("GUARDFLOW_LLM_API_KEY", KEY)
        .env_remove("OPENAI_API_KEY")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    let ran = run_bounded(cmd, Duration::from_secs(120));
    assert!(
        !ran.all().contains(KEY),
        "the API key was printed:\n{}",
        ran.all()
    );
    assert!(
        !ran.all().contains("never-print-me"),
        "part of the API key was printed:\n{}",
        ran.all()
    );
    ran
}

fn flow(generator: &str, props: &str) -> String {
    format!(
        r#"use std.{{contains}}
generator g = {generator}
action answer(topic: Text) -> Text {{
  :role "You are terse."
  :generate g "Say something about {{topic}}"
  :guard contains("ok")
  :max-tokens 64
  {props}
}}
task main(topic: Text) -> Text {{
  method only {{
    :subtasks (a: answer(topic))
    :result a
  }}
}}
"#
    )
}

fn report(ran: &Ran) -> serde_json::Value {
    ran.events()
        .into_iter()
        .find(|e| e["event"] == "report")
        .map(|e| e["report"].clone())
        .unwrap_or_else(|| panic!("no report:\n{}", ran.all()))
}

#[test]
fn chat_completions_carry_role_sampling_key_and_feedback_and_report_usage() {
    let server = ModelServer::start(vec![Reply::chat("nope"), Reply::chat("ok then")]);
    let source = flow(
        r#"llm(model: "tiny", temperature: 0.3, seed: 42)"#,
        ":retry 1",
    );
    let ran = run_flow(&source, &server.url(), &["--input", "topic=rust"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let first = &seen[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(
        first.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = first.json();
    assert_eq!(body["model"], "tiny");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], "You are terse.");
    assert_eq!(body["messages"][1]["content"], "Say something about rust");
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(body["seed"], 42);
    assert_eq!(body["max_tokens"], 64);
    assert!(body.get("response_format").is_none(), "{body}");
    // the second attempt carries the guard's feedback
    let second = seen[1].json();
    let prompt = second["messages"][1]["content"].as_str().unwrap_or("");
    assert!(prompt.contains("ok"), "{prompt}");
    assert_ne!(prompt, "Say something about rust");
    let attempts = ran.attempts();
    assert_eq!(attempts.len(), 2, "{}", ran.all());
    for a in &attempts {
        assert_eq!(a["tokens"], 7, "{a}");
        assert_eq!(a["prompt_tokens"], 11, "{a}");
    }
    assert_eq!(report(&ran)["result"], "ok then");
}

#[test]
fn ollama_native_generate_is_spoken_too() {
    let server = ModelServer::start(vec![Reply::ollama("ok from ollama")]);
    let source = flow(
        r#"llm(model: "qwen", api: "ollama", temperature: 0.0, seed: 3)"#,
        ":retry 0",
    );
    let ran = run_flow(&source, &server.url(), &["--input", "topic=x"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let seen = server.requests();
    assert_eq!(seen[0].path, "/api/generate");
    let body = seen[0].json();
    assert_eq!(body["stream"], false);
    assert_eq!(body["system"], "You are terse.");
    assert_eq!(body["options"]["num_predict"], 64);
    assert_eq!(body["options"]["seed"], 3);
    let a = &ran.attempts()[0];
    assert_eq!(
        (a["tokens"].clone(), a["prompt_tokens"].clone()),
        (3.into(), 5.into())
    );
}

#[test]
fn json_outputs_ask_for_their_schema() {
    let server = ModelServer::start(vec![Reply::chat(r#"{"title": "ok", "steps": 2}"#)]);
    let source = r#"
type Plan = { title: Text, steps: Int }
generator g = llm(model: "m")
action plan(goal: Text) -> Json<Plan> {
  :generate g "Plan {goal}"
  :guard true
  :retry 0
}
task main(goal: Text) -> Json<Plan> {
  method only {
    :subtasks (p: plan(goal))
    :result p
  }
}
"#;
    let ran = run_flow(source, &server.url(), &["--input", "goal=x"]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let body = server.requests()[0].json();
    let format = &body["response_format"];
    assert_eq!(format["type"], "json_schema", "{body}");
    let schema = &format["json_schema"]["schema"];
    assert_eq!(schema["properties"]["steps"]["type"], "integer", "{schema}");
    assert_eq!(report(&ran)["result"]["steps"], 2);
}

#[test]
fn a_rate_limit_with_retry_after_is_waited_out_within_one_attempt() {
    let server = ModelServer::start(vec![
        Reply::status(429, r#"{"error": {"message": "slow down"}}"#).header("Retry-After", "1"),
        Reply::chat("ok"),
    ]);
    let ran = run_flow(
        &flow(r#"llm(model: "m")"#, ":retry 0 :timeout 60s"),
        &server.url(),
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(server.requests().len(), 2);
    // one attempt: transport retries are not guard retries
    assert_eq!(ran.attempts().len(), 1, "{}", ran.all());
}

#[test]
fn a_server_error_is_retried_then_succeeds() {
    let server = ModelServer::start(vec![
        Reply::status(500, r#"{"error": "boom"}"#),
        Reply::status(503, "overloaded"),
        Reply::chat("ok"),
    ]);
    let ran = run_flow(
        &flow(r#"llm(model: "m")"#, ":retry 0 :timeout 60s"),
        &server.url(),
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(server.requests().len(), 3);
    assert_eq!(ran.attempts().len(), 1);
}

#[test]
fn a_server_that_keeps_failing_fails_the_action_within_its_timeout() {
    let server = ModelServer::start(vec![Reply::status(502, "bad gateway")]);
    let ran = run_flow(
        &flow(r#"llm(model: "m")"#, ":retry 2 :timeout 3s"),
        &server.url(),
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    // a transport failure is not a rejected answer: no guard attempt
    assert_eq!(ran.attempts().len(), 0, "{}", ran.all());
    let failure = report(&ran)["failure"].as_str().unwrap_or("").to_string();
    assert!(failure.contains("502"), "{failure}");
    assert!(failure.contains("gave up after"), "{failure}");
    assert!(server.requests().len() >= 2, "retried at least once");
}

#[test]
fn a_slow_server_fails_the_action_at_its_timeout() {
    let server = ModelServer::start(vec![Reply::chat("ok").delayed(Duration::from_secs(60))]);
    let ran = run_flow(
        &flow(r#"llm(model: "m")"#, ":retry 1 :timeout 2s"),
        &server.url(),
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert_eq!(ran.attempts().len(), 0, "{}", ran.all());
    let failure = report(&ran)["failure"].as_str().unwrap_or("").to_string();
    assert!(failure.contains("did not answer within"), "{failure}");
    assert_eq!(server.requests().len(), 1, "{}", ran.all());
}

#[test]
fn malformed_json_fails_the_attempt_with_what_came() {
    let server = ModelServer::start(vec![
        Reply::status(200, "<html>gateway</html>"),
        Reply::status(200, r#"{"choices": []}"#),
    ]);
    let ran = run_flow(
        &flow(r#"llm(model: "m")"#, ":retry 1"),
        &server.url(),
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let a = ran.attempts();
    assert_eq!(a.len(), 2, "{}", ran.all());
    let f0 = a[0]["feedback"].as_str().unwrap_or("");
    assert!(
        f0.contains("not valid JSON") && f0.contains("<html>"),
        "{f0}"
    );
    let f1 = a[1]["feedback"].as_str().unwrap_or("");
    assert!(f1.contains("choices[0].message.content"), "{f1}");
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let ran = run_flow(
        &flow(r#"llm(model: "m")"#, ":retry 3 :timeout 3s"),
        &base,
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let r = report(&ran);
    let failure = r["failure"].as_str().unwrap_or("");
    assert!(
        failure.contains("cannot reach the model server"),
        "{failure}"
    );
    assert!(failure.contains("is the server running"), "{failure}");
    assert!(failure.contains(&base), "{failure}");
    // fatal: the guard retries are not spent on a dead server
    assert_eq!(ran.attempts().len(), 0, "{}", ran.all());
}

#[test]
fn a_server_that_echoes_the_key_has_it_redacted() {
    let server = ModelServer::start(vec![Reply::status(401, "").echoing_auth()]);
    // run_flow asserts the key is nowhere in the output
    let ran = run_flow(
        &flow(r#"llm(model: "m")"#, ":retry 0"),
        &server.url(),
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(ran.all().contains("401"), "{}", ran.all());
    assert!(ran.all().contains("[redacted]"), "{}", ran.all());
}

#[test]
fn a_named_key_variable_that_is_unset_is_a_clear_error() {
    let server = ModelServer::start(vec![Reply::chat("ok")]);
    let ran = run_flow(
        &flow(
            r#"llm(model: "m", api_key_env: "GF_TEST_NO_SUCH_KEY")"#,
            ":retry 0",
        ),
        &server.url(),
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(
        ran.all()
            .contains("`GF_TEST_NO_SUCH_KEY` (api_key_env) is not set"),
        "{}",
        ran.all()
    );
    assert!(server.requests().is_empty());
}

/// The key in a generator's arguments would be in the program: only its
/// variable's name is, and `base_url` in the program wins over the
/// environment.
#[test]
fn base_url_in_the_program_wins_over_the_environment() {
    let server = ModelServer::start(vec![Reply::chat("ok")]);
    let generator = format!(r#"llm(model: "m", base_url: "{}/v1")"#, server.url());
    let ran = run_flow(
        &flow(&generator, ":retry 0"),
        "http://127.0.0.1:9",
        &["--input", "topic=x"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(server.requests()[0].path, "/v1/chat/completions");
}
