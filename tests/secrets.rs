//! Secrets never leave: an API key in guardflow's environment, echoed in
//! any of the encodings a server or a program is likely to use, is absent
//! from everything the run prints, from the run store's files, and from
//! every prompt sent to the model (feedback included).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;

use crate::support::model_server::{ModelServer, Reply};
use crate::support::{bin, run_bounded, Ran};

/// A key with the characters encodings change: `/`, `+`, `=`.
const KEY: &str = "sk-live/Ab+Cd=Ef9-never-print-me";

fn json_escaped(s: &str) -> String {
    let j = serde_json::to_string(s).expect("json");
    j[1..j.len() - 1].to_string()
}

fn json_slash_escaped(s: &str) -> String {
    json_escaped(s).replace('/', "\\/")
}

fn url_encoded(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn url_encoded_lower(s: &str) -> String {
    url_encoded(s)
        .split('%')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_string()
            } else {
                let (hex, rest) = part.split_at(2.min(part.len()));
                format!("%{}{rest}", hex.to_ascii_lowercase())
            }
        })
        .collect()
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn b64_url(s: &str) -> String {
    URL_SAFE.encode(s)
}

/// Every form of the key a reader could decode it from. For base64,
/// every 12-character window of the encodings of the key behind 0, 1 and
/// 2 other bytes that depends only on the key's bytes.
fn leaks() -> Vec<String> {
    let mut out = vec![
        KEY.to_string(),
        json_escaped(KEY),
        json_slash_escaped(KEY),
        url_encoded(KEY),
        url_encoded_lower(KEY),
        // the distinctive middle of the key, in case it is cut
        "Ab+Cd=Ef9-never".to_string(),
        "never-print-me".to_string(),
    ];
    for prefix in ["", "B", "Be"] {
        for enc in [
            STANDARD.encode(format!("{prefix}{KEY}")),
            URL_SAFE.encode(format!("{prefix}{KEY}")),
        ] {
            let first = (8 * prefix.len()).div_ceil(6);
            let last = 8 * (prefix.len() + KEY.len()) / 6;
            let core = &enc[first..last];
            for w in core.as_bytes().windows(12) {
                out.push(String::from_utf8_lossy(w).into_owned());
            }
        }
    }
    out
}

fn assert_no_leak(what: &str, text: &str) {
    for form in leaks() {
        assert!(
            !text.contains(&form),
            "{what} holds the key as `{form}`:\n{text}"
        );
    }
}

/// Every byte of every file under `dir` (the run store, its WAL, …).
fn assert_no_leak_in_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            assert_no_leak_in_files(&path);
        } else if let Ok(bytes) = std::fs::read(&path) {
            assert_no_leak(
                &path.display().to_string(),
                &String::from_utf8_lossy(&bytes),
            );
        }
    }
}

/// `guardflow run --json` of `source` against the server at `base`, with
/// [`KEY`] in the environment; checks that nothing printed and nothing
/// in the store holds the key.
fn run_with_key(source: &str, base: &str) -> Ran {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flow.guardflow");
    std::fs::write(&file, source).expect("writes");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(&file)
        .args(["--json", "--input", "topic=x"])
        .env("GUARDFLOW_LLM_BASE_URL", base)
        .env("GUARDFLOW_LLM_API_KEY", KEY)
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
    let ran = run_bounded(cmd, Duration::from_secs(120));
    assert_no_leak("the run's output", &ran.all());
    assert!(
        dir.path().join(".guardflow").exists(),
        "no run store was written:\n{}",
        ran.all()
    );
    assert_no_leak_in_files(&dir.path().join(".guardflow"));
    // `show` and `trace` print what the store holds
    for view in ["show", "trace"] {
        let mut cmd = Command::new(bin());
        cmd.current_dir(dir.path()).args([view, "last"]);
        let shown = run_bounded(cmd, Duration::from_secs(60));
        assert_no_leak(view, &shown.all());
    }
    ran
}

fn flow(guard: &str, retry: u32) -> String {
    format!(
        r#"use std.{{contains, command}}
generator g = llm(model: "m")
action answer(topic: Text) -> Text {{
  :generate g "Say something about {{topic}}"
  :guard {guard}
  :retry {retry}
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

/// A server answering 401 with the `Authorization` header written by
/// `encode`, as careless servers do.
fn server_echo(encode: fn(&str) -> String) -> Ran {
    let server = ModelServer::start(vec![Reply::status(401, "").echoing_auth_as(encode)]);
    let ran = run_with_key(&flow(r#"contains("ok")"#, 0), &server.url());
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(ran.all().contains("401"), "{}", ran.all());
    assert!(ran.all().contains("[redacted]"), "{}", ran.all());
    ran
}

#[test]
fn a_401_echoing_the_key_as_it_is_is_redacted() {
    server_echo(|a| a.to_string());
}

#[test]
fn a_401_echoing_the_key_json_escaped_is_redacted() {
    server_echo(|a| format!("{{\"error\": \"bad key: {}\"}}", json_escaped(a)));
}

#[test]
fn a_401_echoing_the_key_json_escaped_with_slashes_is_redacted() {
    // `sk-live\/Ab+Cd=…`: the form the issue reproduced
    server_echo(|a| format!("{{\"error\": \"bad key: {}\"}}", json_slash_escaped(a)));
}

#[test]
fn a_401_echoing_the_key_url_encoded_is_redacted() {
    server_echo(|a| format!("error=bad&auth={}", url_encoded(a)));
}

#[test]
fn a_401_echoing_the_key_url_encoded_in_lower_case_is_redacted() {
    server_echo(|a| format!("error=bad&auth={}", url_encoded_lower(a)));
}

#[test]
fn a_401_echoing_the_key_in_base64_is_redacted() {
    server_echo(|a| format!("token: {}", b64(a)));
}

#[test]
fn a_401_echoing_the_key_in_url_safe_base64_is_redacted() {
    server_echo(|a| format!("token: {}", b64_url(a)));
}

#[test]
fn a_model_answer_holding_the_key_is_redacted_in_the_artifact() {
    let server = ModelServer::start(vec![Reply::chat(&format!(
        "ok, here: {} and {}",
        b64(KEY),
        json_slash_escaped(KEY)
    ))]);
    let ran = run_with_key(&flow(r#"contains("ok")"#, 0), &server.url());
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(ran.all().contains("[redacted]"), "{}", ran.all());
}

#[test]
fn guard_feedback_holding_the_key_never_reaches_the_next_prompt() {
    // The guard prints the key in three encodings and rejects; the retry's
    // prompt carries the feedback to the model.
    let server = ModelServer::start(vec![Reply::chat("a first draft")]);
    let guard = format!(
        r#"command("echo {}; echo {}; printf '%s\\n' '{}'; exit 1")"#,
        b64(KEY),
        url_encoded(KEY),
        json_slash_escaped(KEY).replace('\\', "\\\\"),
    );
    let ran = run_with_key(&flow(&guard, 1), &server.url());
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{}", ran.all());
    let retry = &requests[1].body;
    assert!(retry.contains("[redacted]"), "{retry}");
    assert_no_leak("the retry's prompt", retry);
}
