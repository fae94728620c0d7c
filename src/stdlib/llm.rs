//! The `llm` generator: a chat model behind an OpenAI-compatible
//! endpoint (`POST {base}/v1/chat/completions`, as Ollama, vLLM and
//! llama.cpp's server serve it) or Ollama's native `POST /api/generate`.
//!
//! Transport failures (no connection, timeout, 408, 429, 5xx) are retried
//! here with jittered exponential backoff, honouring `Retry-After`, within
//! the call's timeout; they are separate from the action's guard retries.
//! One that outlasts them is a transport failure (`GenError::transport`):
//! the attempt moves to the next provider of a `fallback(…)`, or the
//! action fails; its text never reaches a prompt. A refused connection to
//! a server that never answered in this process fails at once. Every call
//! goes through the provider's circuit breaker and limits
//! (`providers.rs`), and says what it waits for.
//! The API key is sent only in the `Authorization` header: it is never
//! part of a message, a `Debug` form or an error (a server that echoes
//! it back has it replaced by `[redacted]`).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::providers::{self, Admit, BreakerConfig, Limits, ProbeGuard, SAY_AFTER};
use super::text::shorten;
use crate::runtime::guard::show_duration;
use crate::runtime::redact;
use crate::runtime::registry::{BoxFuture, GenError, GenRequest, GenResponse, Generator};

/// Where a generator without `base_url` sends its requests.
pub const BASE_URL_VAR: &str = "GUARDFLOW_LLM_BASE_URL";
/// The base URL when neither `base_url` nor [`BASE_URL_VAR`] is set: a
/// local Ollama, which serves both APIs.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434";
/// The variables read for the API key, in order, when the generator names
/// none with `api_key_env`.
pub const KEY_VARS: [&str; 2] = ["GUARDFLOW_LLM_API_KEY", "OPENAI_API_KEY"];
/// The most of a response body read.
const MAX_BODY: usize = 16 << 20;
/// The first transport retry waits about this long; each next one twice
/// as long, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The timeout when the request carries none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Parameter positions of `llm(model, temperature, seed, base_url,
/// api_key_env, api, timeout, max_concurrent, rpm, tpm, breaker_after,
/// cool_down)` in `stdlib/prelude.guardflow`.
const MODEL: usize = 0;
const TEMPERATURE: usize = 1;
const SEED: usize = 2;
const BASE_URL: usize = 3;
const KEY_ENV: usize = 4;
const API: usize = 5;
const TIMEOUT: usize = 6;
const MAX_CONCURRENT: usize = 7;
const RPM: usize = 8;
const TPM: usize = 9;
const BREAKER_AFTER: usize = 10;
const COOL_DOWN: usize = 11;

/// Which protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST {base}/v1/chat/completions`.
    OpenAi,
    /// `POST {base}/api/generate` with `"stream": false`.
    Ollama,
}

/// An API key: shown as `[redacted]` by `Debug` and `Display`.
#[derive(Clone, Default)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Secret {
    /// Keeps `key` out of everything a run writes, in every encoding
    /// [`redact`] knows.
    fn new(key: String) -> Secret {
        redact::register(&key);
        Secret(key)
    }

    /// `text` with the key, in every encoding [`redact`] knows, replaced.
    fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            redact::scrub(&text.replace(&self.0, redact::REDACTED)).into_owned()
        }
    }
}

/// One request, resolved from the generator's arguments and the
/// environment.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub api: Api,
    /// Without a trailing `/` or `/v1`.
    pub base: String,
    pub key: Option<Secret>,
}

impl Endpoint {
    /// Resolves the endpoint of a request: `base_url`, else
    /// `$GUARDFLOW_LLM_BASE_URL`, else a local Ollama; the key from the
    /// variable `api_key_env` names, else the first of [`KEY_VARS`] set.
    pub fn resolve(
        request: &GenRequest,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Endpoint, GenError> {
        let api = match request.str_arg(API) {
            "" | "openai" => Api::OpenAi,
            "ollama" => Api::Ollama,
            other => {
                return Err(GenError::fatal(format!(
                    "llm: unknown api `{other}`; write \"openai\" or \"ollama\""
                )))
            }
        };
        let base = match request.str_arg(BASE_URL) {
            "" => var(BASE_URL_VAR)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_BASE_URL.to_string()),
            b => b.to_string(),
        };
        let mut base = base.trim().trim_end_matches('/').to_string();
        if let Some(stripped) = base.strip_suffix("/v1") {
            base = stripped.to_string();
        }
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(GenError::fatal(format!(
                "llm: the base URL `{base}` must start with http:// or https://"
            )));
        }
        let key = match request.str_arg(KEY_ENV) {
            "" => KEY_VARS
                .iter()
                .find_map(|v| var(v).filter(|k| !k.is_empty())),
            name => match var(name).filter(|k| !k.is_empty()) {
                Some(k) => Some(k),
                None => {
                    return Err(GenError::fatal(format!(
                        "llm: the API key variable `{name}` (api_key_env) is not set"
                    )))
                }
            },
        };
        Ok(Endpoint {
            api,
            base,
            key: key.map(Secret::new),
        })
    }

    fn url(&self) -> String {
        match self.api {
            Api::OpenAi => format!("{}/v1/chat/completions", self.base),
            Api::Ollama => format!("{}/api/generate", self.base),
        }
    }

    fn scrub(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.scrub(text),
            None => text.to_string(),
        }
    }
}

/// The request body for `api`.
pub fn body(api: Api, request: &GenRequest) -> Value {
    let model = request.str_arg(MODEL);
    let temperature = request.args.get(TEMPERATURE).and_then(Value::as_f64);
    let seed = request.args.get(SEED).and_then(Value::as_i64);
    match api {
        Api::OpenAi => {
            let mut messages = Vec::new();
            if let Some(role) = request.role.as_deref().filter(|r| !r.is_empty()) {
                messages.push(json!({ "role": "system", "content": role }));
            }
            messages.push(json!({ "role": "user", "content": request.prompt }));
            let mut b = json!({ "model": model, "messages": messages, "stream": false });
            if let Some(t) = temperature {
                b["temperature"] = json!(t);
            }
            if let Some(s) = seed {
                b["seed"] = json!(s);
            }
            if let Some(n) = request.max_tokens {
                b["max_tokens"] = json!(n);
            }
            if let Some(schema) = &request.output_schema {
                b["response_format"] = json!({
                    "type": "json_schema",
                    "json_schema": { "name": "artifact", "schema": **schema },
                });
            }
            b
        }
        Api::Ollama => {
            let mut options = serde_json::Map::new();
            if let Some(t) = temperature {
                options.insert("temperature".into(), json!(t));
            }
            if let Some(s) = seed {
                options.insert("seed".into(), json!(s));
            }
            if let Some(n) = request.max_tokens {
                options.insert("num_predict".into(), json!(n));
            }
            let mut b = json!({
                "model": model,
                "prompt": request.prompt,
                "stream": false,
                "options": options,
            });
            if let Some(role) = request.role.as_deref().filter(|r| !r.is_empty()) {
                b["system"] = json!(role);
            }
            if let Some(schema) = &request.output_schema {
                b["format"] = (**schema).clone();
            }
            b
        }
    }
}

/// Reads the answer and its token usage from a response body.
pub fn parse_answer(api: Api, body: &[u8]) -> Result<GenResponse, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the model server's answer is not valid JSON ({e}): {}",
            shorten(&String::from_utf8_lossy(body), 200)
        )
    })?;
    let (text, completion, prompt) = match api {
        Api::OpenAi => (
            v.pointer("/choices/0/message/content")
                .and_then(Value::as_str),
            v.pointer("/usage/completion_tokens")
                .and_then(Value::as_u64),
            v.pointer("/usage/prompt_tokens").and_then(Value::as_u64),
        ),
        Api::Ollama => (
            v.get("response").and_then(Value::as_str),
            v.get("eval_count").and_then(Value::as_u64),
            v.get("prompt_eval_count").and_then(Value::as_u64),
        ),
    };
    let Some(text) = text else {
        let field = match api {
            Api::OpenAi => "choices[0].message.content",
            Api::Ollama => "response",
        };
        let why = v
            .pointer("/error/message")
            .or_else(|| v.get("error"))
            .map(|e| format!(" (the server says: {})", crate::runtime::text_of(e)))
            .unwrap_or_default();
        return Err(format!(
            "the model server's answer has no text in `{field}`{why}: {}",
            shorten(&v.to_string(), 200)
        ));
    };
    Ok(GenResponse {
        text: text.to_string(),
        tokens: completion,
        prompt_tokens: prompt,
    })
}

/// How long to wait before transport retry `n` (from 0): exponential,
/// capped, with jitter in its upper half so many clients spread out.
pub fn backoff(n: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF);
    let mut h = RandomState::new().build_hasher();
    h.write_u32(n);
    let r = (h.finish() % 1000) as u32; // 0..1000
    full / 2 + (full / 2) * r / 1000
}

/// `Retry-After` in seconds (the delay form; a date is ignored).
pub fn retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// What one HTTP exchange came to.
enum Exchange {
    Answer(GenResponse),
    /// Worth another try after the wait (at least `after`, when the server
    /// said so).
    Transient {
        message: String,
        after: Option<Duration>,
        unreachable: bool,
    },
    /// Asking again cannot help.
    Refused(String),
    /// The server answered, but not with an answer: the attempt fails.
    Garbage(String),
}

/// `llm(model, …)`.
#[derive(Default)]
pub struct Llm {
    client: OnceLock<Result<reqwest::Client, String>>,
}

impl Llm {
    fn client(&self) -> Result<&reqwest::Client, GenError> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| format!("llm: cannot set up the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|e| GenError::fatal(e.clone()))
    }

    async fn exchange(
        &self,
        client: &reqwest::Client,
        endpoint: &Endpoint,
        body: &Value,
        limit: Duration,
    ) -> Exchange {
        let url = endpoint.url();
        let mut req = client
            .post(&url)
            .timeout(limit)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &endpoint.key {
            req = req.bearer_auth(&key.0);
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => return transport_error(&url, &e, limit),
        };
        let status = response.status();
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        let bytes = match read_body(response).await {
            Ok(b) => b,
            Err(e) => return transport_error(&url, &e, limit),
        };
        if status.is_success() {
            return match parse_answer(endpoint.api, &bytes) {
                Ok(a) => Exchange::Answer(a),
                Err(e) => Exchange::Garbage(endpoint.scrub(&e)),
            };
        }
        let said = endpoint.scrub(&shorten(String::from_utf8_lossy(&bytes).trim(), 300));
        let message = format!("{url} answered {status}: {said}");
        if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
            Exchange::Transient {
                message,
                after,
                unreachable: false,
            }
        } else {
            Exchange::Refused(message)
        }
    }
}

fn transport_error(url: &str, e: &reqwest::Error, limit: Duration) -> Exchange {
    if e.is_timeout() {
        return Exchange::Transient {
            message: format!("{url} did not answer within {}", show_duration(limit)),
            after: None,
            unreachable: false,
        };
    }
    let mut cause = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let cause = if cause.is_empty() {
        e.to_string()
    } else {
        cause
    };
    Exchange::Transient {
        message: format!("cannot reach the model server at {url}: {cause}"),
        after: None,
        unreachable: e.is_connect(),
    }
}

/// The body, at most [`MAX_BODY`] bytes.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room == 0 {
            break;
        }
    }
    Ok(out)
}

impl Generator for Llm {
    fn times_itself(&self) -> bool {
        true
    }

    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let endpoint = Endpoint::resolve(&request, |v| std::env::var(v).ok())?;
            if request.str_arg(MODEL).trim().is_empty() {
                return Err(GenError::fatal("llm: `model` is empty"));
            }
            let client = self.client()?;
            let timeout = request
                .timeout
                .or_else(|| {
                    request
                        .args
                        .get(TIMEOUT)
                        .and_then(Value::as_u64)
                        .map(Duration::from_millis)
                })
                .unwrap_or(DEFAULT_TIMEOUT);
            let url = endpoint.url();
            let circuit = providers::circuit(&url);
            let breaker = BreakerConfig {
                after: int_arg(&request, BREAKER_AFTER).clamp(1, u64::from(u32::MAX)) as u32,
                cool_down: Duration::from_millis(int_arg(&request, COOL_DOWN)),
            };
            let _probe = ProbeGuard {
                probe: admit(&circuit, &url, &request, timeout).await?,
                circuit: circuit.clone(),
            };
            let limits = Limits {
                max_concurrent: int_arg(&request, MAX_CONCURRENT),
                rpm: int_arg(&request, RPM),
                tpm: int_arg(&request, TPM),
            };
            let key = format!("{url} {}", request.str_arg(MODEL));
            let slot = providers::limiter(&key, limits)
                .acquire(&url, &request.notify)
                .await;
            // the timeout counts from when the request leaves; stop a
            // little before it, so the attempt fails with the transport's
            // own reason
            let margin = (timeout / 10).min(Duration::from_secs(1));
            let deadline = Instant::now() + timeout.saturating_sub(margin);
            let body = body(endpoint.api, &request);
            let mut tries = 0u32;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let outcome = self.exchange(client, &endpoint, &body, left).await;
                let (message, after, unreachable) = match outcome {
                    Exchange::Answer(a) => {
                        lock(&circuit).success();
                        slot.used(a.tokens.unwrap_or(0) + a.prompt_tokens.unwrap_or(0));
                        return Ok(a);
                    }
                    Exchange::Garbage(m) => {
                        // the server answered: it is there
                        lock(&circuit).success();
                        return Err(GenError::retryable(m));
                    }
                    Exchange::Refused(m) => return Err(GenError::fatal(m)),
                    Exchange::Transient {
                        message,
                        after,
                        unreachable,
                    } => (message, after, unreachable),
                };
                tries += 1;
                let (open, served) = {
                    let mut c = lock(&circuit);
                    (
                        c.failure(std::time::Instant::now(), breaker, after),
                        c.served(),
                    )
                };
                let gave_up = |why: &str| {
                    let tried = if tries == 1 { "try" } else { "tries" };
                    let mut m = format!("{message} (gave up after {tries} {tried}{why})");
                    if unreachable {
                        m.push_str(&format!(
                            "; is the server running? Set `base_url` or ${BASE_URL_VAR}"
                        ));
                    }
                    GenError::transport(m)
                };
                // nothing has ever answered there: no server, no retries
                if unreachable && !served {
                    return Err(gave_up(""));
                }
                let mut wait = backoff(tries - 1).max(after.unwrap_or_default());
                if let Some(until) = open {
                    wait = wait.max(until.saturating_duration_since(std::time::Instant::now()));
                }
                if request.has_fallback && (tries >= 2 || wait > SAY_AFTER) {
                    return Err(gave_up("; the next provider serves the attempt"));
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if wait >= left {
                    return Err(gave_up(&format!(
                        " within the timeout of {}",
                        show_duration(timeout)
                    )));
                }
                request.notify.waiting(&format!(
                    "transport retry {tries} in {}: {}",
                    show_duration(wait),
                    shorten(&message, 200)
                ));
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// Argument `i` as a non-negative integer (0 when missing or negative).
fn int_arg(request: &GenRequest, i: usize) -> u64 {
    request.args.get(i).and_then(Value::as_u64).unwrap_or(0)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits while the provider's circuit is open; with a fallback after it,
/// or a cool-down longer than the call's timeout, gives the attempt back
/// at once (a transport failure) instead. The number of the half-open
/// probe, when this call is it.
async fn admit(
    circuit: &std::sync::Mutex<providers::Circuit>,
    url: &str,
    request: &GenRequest,
    timeout: Duration,
) -> Result<Option<u64>, GenError> {
    let mut said = false;
    loop {
        let now = std::time::Instant::now();
        let admitted = lock(circuit).admit(now);
        let until = match admitted {
            Admit::Go { probe } => return Ok(probe),
            Admit::Open { until } => until,
        };
        let wait = until.saturating_duration_since(now);
        let open = format!(
            "{url} is skipped for {} more: its circuit breaker opened after transport failures",
            show_duration(wait)
        );
        if request.has_fallback || wait > timeout {
            return Err(GenError::transport(open));
        }
        if wait >= SAY_AFTER && !said {
            said = true;
            request.notify.waiting(&open);
        }
        tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn request(args: Vec<Value>) -> GenRequest {
        GenRequest {
            action: "a".into(),
            attempt: 1,
            uncut_attempt: 1,
            prompt: "Write it".into(),
            role: Some("You are terse.".into()),
            feedback: None,
            max_tokens: Some(50),
            args,
            output_type: Arc::from("Text"),
            output_schema: None,
            timeout: None,
            workdir: Arc::from(Path::new(".")),
            has_fallback: false,
            notify: Default::default(),
            seed: 0,
        }
    }

    fn args(base: &str, key_env: &str, api: &str) -> Vec<Value> {
        vec![
            json!("m"),
            json!(0.2),
            json!(7),
            json!(base),
            json!(key_env),
            json!(api),
            json!(1000),
        ]
    }

    #[test]
    fn endpoints_resolve_from_arguments_then_the_environment() {
        let env = |v: &str| match v {
            "GUARDFLOW_LLM_BASE_URL" => Some("http://env:1/v1/".to_string()),
            "OPENAI_API_KEY" => Some("sk-env".to_string()),
            "MY_KEY" => Some("sk-mine".to_string()),
            _ => None,
        };
        let e = Endpoint::resolve(&request(args("", "", "")), env).expect("resolves");
        assert_eq!(e.base, "http://env:1");
        assert_eq!(e.url(), "http://env:1/v1/chat/completions");
        assert_eq!(e.key.as_ref().map(|k| k.0.as_str()), Some("sk-env"));
        let e = Endpoint::resolve(&request(args("http://h:2", "MY_KEY", "ollama")), env)
            .expect("resolves");
        assert_eq!(e.url(), "http://h:2/api/generate");
        assert_eq!(e.key.as_ref().map(|k| k.0.as_str()), Some("sk-mine"));
        // the key never shows
        assert!(!format!("{e:?}").contains("sk-mine"), "{e:?}");
        let none = |_: &str| None;
        let e = Endpoint::resolve(&request(args("", "", "")), none).expect("resolves");
        assert_eq!(e.base, DEFAULT_BASE_URL);
        assert!(e.key.is_none());
        let err = Endpoint::resolve(&request(args("", "NOPE", "")), none).unwrap_err();
        assert!(err.fatal && err.message.contains("`NOPE`"), "{err:?}");
        let err = Endpoint::resolve(&request(args("", "", "grpc")), none).unwrap_err();
        assert!(err.message.contains("unknown api `grpc`"), "{err:?}");
        let err = Endpoint::resolve(&request(args("ftp://x", "", "")), none).unwrap_err();
        assert!(err.message.contains("http://"), "{err:?}");
    }

    #[test]
    fn bodies_carry_role_sampling_limits_and_schema() {
        let mut r = request(args("", "", ""));
        r.output_schema = Some(Arc::new(json!({"type": "object"})));
        let b = body(Api::OpenAi, &r);
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][0]["content"], "You are terse.");
        assert_eq!(b["messages"][1]["content"], "Write it");
        assert_eq!(b["temperature"], 0.2);
        assert_eq!(b["seed"], 7);
        assert_eq!(b["max_tokens"], 50);
        assert_eq!(b["stream"], false);
        assert_eq!(b["response_format"]["type"], "json_schema");
        assert_eq!(
            b["response_format"]["json_schema"]["schema"]["type"],
            "object"
        );
        let b = body(Api::Ollama, &r);
        assert_eq!(b["system"], "You are terse.");
        assert_eq!(b["prompt"], "Write it");
        assert_eq!(b["options"]["num_predict"], 50);
        assert_eq!(b["options"]["seed"], 7);
        assert_eq!(b["format"]["type"], "object");
        assert_eq!(b["stream"], false);
    }

    #[test]
    fn answers_and_usage_are_read_from_both_apis() {
        let a = parse_answer(
            Api::OpenAi,
            br#"{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#,
        )
        .expect("parses");
        assert_eq!(
            (a.text.as_str(), a.tokens, a.prompt_tokens),
            ("hi", Some(2), Some(9))
        );
        let a = parse_answer(
            Api::Ollama,
            br#"{"response":"yo","eval_count":3,"prompt_eval_count":4}"#,
        )
        .expect("parses");
        assert_eq!(
            (a.text.as_str(), a.tokens, a.prompt_tokens),
            ("yo", Some(3), Some(4))
        );
        let e = parse_answer(Api::OpenAi, b"<html>").unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = parse_answer(Api::OpenAi, br#"{"error":{"message":"no such model"}}"#).unwrap_err();
        assert!(e.contains("no such model"), "{e}");
    }

    #[test]
    fn backoff_grows_with_jitter_and_retry_after_reads_seconds() {
        for n in 0..20 {
            let full = FIRST_BACKOFF
                .saturating_mul(1 << n.min(16))
                .min(MAX_BACKOFF);
            let b = backoff(n);
            assert!(b >= full / 2 && b <= full, "{n}: {b:?}");
        }
        assert_eq!(retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after("-1"), None);
    }
}
