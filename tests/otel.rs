//! OpenTelemetry export through the binary: runs against a model server
//! on loopback send their spans to a real OTLP/HTTP receiver in the test,
//! which decodes them with the OpenTelemetry protobuf definitions. The
//! tree (run → task → method → action → attempt → generate/guard), the
//! GenAI and guardflow attributes, a recorded run's export giving the
//! same spans, and an unreachable collector that never fails the run.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;

use crate::support::model_server::closed_port;
use crate::support::{bin, run_bounded, Ran};

/// One HTTP request as the server read it.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    content_type: String,
    body: Vec<u8>,
}

type Handler = dyn Fn(&Request) -> (u16, &'static str, Vec<u8>) + Send + Sync;

/// A small HTTP/1.1 server on loopback (keep-alive, `Content-Length`
/// bodies), answering with `handler` and keeping every request.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds loopback");
        let addr = listener.local_addr().expect("address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, h) = (s.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &s, &*h));
            }
        });
        Server { addr, seen, stop }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Request>>, handler: &Handler) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(write) = conn.try_clone() else { return };
    let mut write = write;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let (mut length, mut content_type) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; length.min(64 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            path,
            content_type,
            body,
        };
        let (status, ty, answer) = handler(&request);
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {ty}\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if write.write_all(head.as_bytes()).is_err() || write.write_all(&answer).is_err() {
            return;
        }
    }
}

/// An OTLP/HTTP receiver: accepts every export.
fn receiver() -> Server {
    Server::start(Arc::new(|_r: &Request| {
        let ok = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse {
            partial_success: None,
        };
        (200, "application/x-protobuf", ok.encode_to_vec())
    }))
}

/// A chat-completions server whose answer depends on the prompt (so
/// concurrent branches get theirs whatever the order): `reply` maps the
/// user message to the answer. Every answer reports 11 prompt and 7
/// completion tokens.
fn model(reply: fn(&str) -> String) -> Server {
    Server::start(Arc::new(move |r: &Request| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let prompt = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        let answer = serde_json::json!({
            "id": "c1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply(prompt)}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        });
        (200, "application/json", answer.to_string().into_bytes())
    }))
}

/// One decoded span.
#[derive(Debug, Clone)]
struct Got {
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
    name: String,
    kind: i32,
    start: u64,
    end: u64,
    attrs: BTreeMap<String, String>,
    events: Vec<String>,
    error: bool,
}

impl Got {
    fn attr(&self, k: &str) -> &str {
        self.attrs.get(k).map(String::as_str).unwrap_or("")
    }
}

/// Every span the receiver got, and the resources' attributes.
fn decoded(server: &Server) -> (Vec<Got>, Vec<BTreeMap<String, String>>) {
    let mut spans = Vec::new();
    let mut resources = Vec::new();
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(n)) => n.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    };
    for r in server.requests() {
        assert_eq!(r.path, "/v1/traces");
        assert_eq!(r.content_type, "application/x-protobuf");
        let req = ExportTraceServiceRequest::decode(r.body.as_slice()).expect("an OTLP request");
        for rs in req.resource_spans {
            let res: BTreeMap<String, String> = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .map(|kv| (kv.key.clone(), text(&kv.value)))
                .collect();
            resources.push(res);
            for ss in rs.scope_spans {
                for s in ss.spans {
                    spans.push(Got {
                        trace: s.trace_id.clone(),
                        id: s.span_id.clone(),
                        parent: s.parent_span_id.clone(),
                        name: s.name.clone(),
                        kind: s.kind,
                        start: s.start_time_unix_nano,
                        end: s.end_time_unix_nano,
                        attrs: s
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), text(&kv.value)))
                            .collect(),
                        events: s.events.iter().map(|e| e.name.clone()).collect(),
                        // STATUS_CODE_ERROR
                        error: s.status.as_ref().is_some_and(|st| st.code == 2),
                    });
                }
            }
        }
    }
    (spans, resources)
}

/// `guardflow run` of `source` against the model server, recorded in
/// `dir`'s store, with `extra` arguments.
fn run(dir: &Path, source: &str, models: &Server, extra: &[&str], env: &[(&str, String)]) -> Ran {
    let file = dir.join("flow.guardflow");
    std::fs::write(&file, source).expect("writes");
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(&file)
        .args(["--input", "topic=rust", "--store"])
        .arg(dir.join("runs.db"))
        .args(extra)
        .env("GUARDFLOW_LLM_BASE_URL", models.url())
        .env("GUARDFLOW_LLM_API_KEY", "sk-test-otel")
        .env_remove("GUARDFLOW_STORE");
    for var in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(cmd, Duration::from_secs(120))
}

/// The run id `run` printed.
fn run_id(ran: &Ran) -> String {
    ran.stderr
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id:\n{}", ran.all()))
        .to_string()
}

const FORK_JOIN: &str = r#"use std.{contains}
generator writer = llm(model: "tiny-writer")
action draft(topic: Text) -> Text {
  :generate writer "Draft about {topic}"
  :guard contains("ok")
  :retry 2
}
action summary(topic: Text) -> Text {
  :generate writer "Summary of {topic}"
  :guard contains("ok")
  :retry 1
}
task main(topic: Text) -> Text {
  method both {
    :subtasks (a: draft(topic), b: summary(topic))
    :ordering (a || b)
    :result a
  }
}
"#;

/// The first draft is rejected; everything else passes.
fn fork_join_reply(prompt: &str) -> String {
    if prompt == "Draft about rust" {
        "nope".into()
    } else {
        format!("ok: {}", prompt.len())
    }
}

fn by_name<'a>(spans: &'a [Got], name: &str) -> Vec<&'a Got> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [Got], name: &str) -> &'a Got {
    let found = by_name(spans, name);
    assert_eq!(
        found.len(),
        1,
        "{name} in {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

fn children<'a>(spans: &'a [Got], parent: &Got) -> Vec<&'a Got> {
    let mut c: Vec<&Got> = spans.iter().filter(|s| s.parent == parent.id).collect();
    c.sort_by(|a, b| a.start.cmp(&b.start).then(a.name.cmp(&b.name)));
    c
}

/// Every span has a known parent (but the root), lies within it and
/// shares its trace.
fn well_formed(spans: &[Got]) {
    let ids: HashMap<&[u8], &Got> = spans.iter().map(|s| (s.id.as_slice(), s)).collect();
    assert_eq!(ids.len(), spans.len(), "span ids are unique");
    let roots: Vec<&Got> = spans.iter().filter(|s| s.parent.is_empty()).collect();
    assert_eq!(roots.len(), 1, "one root: {roots:?}");
    for s in spans {
        assert_eq!(s.trace, roots[0].trace, "{}", s.name);
        assert!(s.start <= s.end, "{}", s.name);
        if s.parent.is_empty() {
            continue;
        }
        let p = ids
            .get(s.parent.as_slice())
            .unwrap_or_else(|| panic!("the parent of {} was not sent", s.name));
        assert!(
            p.start <= s.start && s.end <= p.end,
            "{} [{}, {}] is not within {} [{}, {}]",
            s.name,
            s.start,
            s.end,
            p.name,
            p.start,
            p.end
        );
    }
}

#[test]
fn a_fork_join_run_with_a_retry_is_one_trace_of_the_decomposition() {
    let models = model(fork_join_reply);
    let otlp = receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run(
        dir.path(),
        FORK_JOIN,
        &models,
        &["--otlp", &otlp.url()],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert!(!ran.stderr.contains("warning"), "{}", ran.stderr);
    let (spans, resources) = decoded(&otlp);
    assert!(!resources.is_empty());
    for r in &resources {
        assert_eq!(r.get("service.name").map(String::as_str), Some("guardflow"));
    }
    well_formed(&spans);
    let root = one(&spans, "run main");
    assert!(root.parent.is_empty());
    assert_eq!(root.attr("guardflow.run.id"), run_id(&ran));
    assert_eq!(root.attr("guardflow.success"), "true");
    assert_eq!(root.attr("guardflow.generator_calls"), "3");
    let task = one(&spans, "task main");
    assert_eq!(task.parent, root.id);
    let method = one(&spans, "method both");
    assert_eq!(method.parent, task.id);
    let draft = one(&spans, "action draft");
    let summary = one(&spans, "action summary");
    assert_eq!(draft.parent, method.id);
    assert_eq!(summary.parent, method.id);
    assert_eq!(draft.attr("guardflow.path"), "main/both/a");
    assert_eq!(draft.attr("guardflow.outcome"), "committed");
    // the branches ran at once
    assert!(draft.start < summary.end && summary.start < draft.end);
    let attempts: Vec<&str> = children(&spans, draft)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(attempts, ["attempt draft #1", "attempt draft #2"]);
    let expect = [
        (draft, "attempt draft #1", "1", "fail"),
        (draft, "attempt draft #2", "2", "pass"),
        (summary, "attempt summary #1", "1", "pass"),
    ];
    for (action, name, number, verdict) in expect {
        let a = one(&spans, name);
        assert_eq!(a.parent, action.id, "{name}");
        assert_eq!(a.attr("guardflow.attempt"), number, "{name}");
        assert_eq!(a.attr("guardflow.verdict"), verdict, "{name}");
        assert_eq!(a.error, verdict != "pass", "{name}");
        let calls = children(&spans, a);
        let names: Vec<&str> = calls.iter().map(|s| s.name.as_str()).collect();
        let action_name = name.split(' ').nth(1).unwrap_or("");
        assert_eq!(
            names,
            [
                "chat tiny-writer".to_string(),
                format!("guard {action_name}")
            ],
            "{name}"
        );
        let generate = calls[0];
        assert_eq!(generate.kind, 3, "SPAN_KIND_CLIENT");
        assert_eq!(generate.attr("gen_ai.operation.name"), "chat");
        assert_eq!(generate.attr("gen_ai.request.model"), "tiny-writer");
        assert_eq!(generate.attr("gen_ai.provider.name"), "openai");
        assert_eq!(generate.attr("gen_ai.system"), "openai");
        assert_eq!(generate.attr("gen_ai.usage.input_tokens"), "11");
        assert_eq!(generate.attr("gen_ai.usage.output_tokens"), "7");
        assert_eq!(generate.attr("guardflow.generator"), "writer");
        let guard = calls[1];
        assert_eq!(guard.attr("guardflow.verdict"), verdict);
        assert!(
            generate.end <= guard.start,
            "the guard judges after the answer"
        );
    }
    let rejected = one(&spans, "attempt draft #1");
    let feedback: u64 = rejected
        .attr("guardflow.feedback.size")
        .parse()
        .unwrap_or(0);
    assert!(feedback > 0, "{:?}", rejected.attrs);
    assert_eq!(
        one(&spans, "attempt draft #2").attr("guardflow.feedback.size"),
        "0"
    );
    // no prompt or output in the spans by default: sizes and hashes
    for s in &spans {
        for (k, v) in &s.attrs {
            assert!(
                !v.contains("Draft about") && !v.contains("nope"),
                "{}: {k} = {v}",
                s.name
            );
        }
    }
    assert_eq!(
        rejected.attr("guardflow.prompt.size"),
        "Draft about rust".len().to_string()
    );
}

const ESCALATING: &str = r#"use std.{contains}
generator writer = llm(model: "tiny-writer")
action spec(topic: Text) -> Text {
  :generate writer "Spec for {topic}"
  :guard contains("spec")
  :retry 1
}
action implement(s: Text) -> Text {
  :generate writer "Implement {s}"
  :guard contains("done")
  :retry 2
}
task main(topic: Text) -> Text {
  method m {
    :subtasks (t: spec(topic), i: implement(t) :escalate-to t after 1 :max-escalations 1)
    :ordering (t ; i)
    :result i
  }
}
"#;

/// The first spec cannot be implemented; the one asked for again can.
fn escalating_reply(prompt: &str) -> String {
    if prompt.starts_with("Spec for") {
        if prompt == "Spec for rust" {
            "spec v1".into()
        } else {
            "spec v2".into()
        }
    } else if prompt.starts_with("Implement spec v2") {
        "done".into()
    } else {
        "cannot".into()
    }
}

#[test]
fn an_escalation_shows_as_a_second_run_of_the_actions() {
    let models = model(escalating_reply);
    let otlp = receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run(
        dir.path(),
        ESCALATING,
        &models,
        &["--otlp", &otlp.url()],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let (spans, _) = decoded(&otlp);
    well_formed(&spans);
    let method = one(&spans, "method m");
    let mut specs = by_name(&spans, "action spec");
    let mut implements = by_name(&spans, "action implement");
    specs.sort_by_key(|s| s.start);
    implements.sort_by_key(|s| s.start);
    assert_eq!(specs.len(), 2);
    assert_eq!(implements.len(), 2);
    for s in specs.iter().chain(&implements) {
        assert_eq!(s.parent, method.id, "{}", s.name);
    }
    assert_eq!(implements[0].attr("guardflow.outcome"), "escalated");
    assert_eq!(implements[0].attr("guardflow.escalation.target"), "t");
    assert_eq!(implements[0].events, ["escalated"]);
    assert_eq!(implements[0].attr("guardflow.occurrence"), "1");
    assert_eq!(implements[1].attr("guardflow.occurrence"), "2");
    assert_eq!(implements[1].attr("guardflow.outcome"), "committed");
    // in order: spec, implement (rejected), spec again, implement again
    assert!(specs[0].end <= implements[0].start);
    assert!(implements[0].end <= specs[1].start);
    assert!(specs[1].end <= implements[1].start);
    let first: Vec<&str> = children(&spans, implements[0])
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(first, ["attempt implement #1"]);
    let second: Vec<&str> = children(&spans, implements[1])
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(second, ["attempt implement #2"]);
    assert_eq!(
        one(&spans, "attempt implement #1").attr("guardflow.verdict"),
        "fail"
    );
    assert_eq!(
        one(&spans, "attempt implement #2").attr("guardflow.verdict"),
        "pass"
    );
    assert_eq!(
        one(&spans, "attempt implement #2").attr("guardflow.occurrence"),
        "2"
    );
    let spec_attempts: Vec<&str> = children(&spans, specs[1])
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(spec_attempts, ["attempt spec #2"]);
}

/// A span as the two exports should agree on it: all but its times.
fn shape(spans: &[Got]) -> Vec<String> {
    let mut out: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{} {} {} {} {:?} {:?} {}",
                hex(&s.id),
                hex(&s.parent),
                s.name,
                s.kind,
                s.attrs,
                s.events,
                s.error
            )
        })
        .collect();
    out.sort();
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_recorded_run_exports_the_same_spans_as_it_sent_live() {
    let models = model(escalating_reply);
    let live = receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run(
        dir.path(),
        ESCALATING,
        &models,
        &["--otlp", &live.url()],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let id = run_id(&ran);
    let later = receiver();
    let mut cmd = Command::new(bin());
    cmd.args(["export", &id, "--otlp", &later.url(), "--store"])
        .arg(dir.path().join("runs.db"));
    let exported = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(exported.code, Some(0), "{}", exported.all());
    let (sent_live, _) = decoded(&live);
    let (sent_later, _) = decoded(&later);
    assert!(
        exported
            .stderr
            .contains(&format!("sent {} spans", sent_later.len())),
        "{}",
        exported.stderr
    );
    well_formed(&sent_later);
    assert_eq!(shape(&sent_live), shape(&sent_later));
    // the times are the store's: within the run's
    let root = one(&sent_later, "run main");
    let live_root = one(&sent_live, "run main");
    let ms = 1_000_000;
    assert!(
        root.start / ms >= live_root.start / ms - 1000
            && root.end / ms <= live_root.end / ms + 1000
    );
}

#[test]
fn an_unreachable_collector_warns_once_and_the_run_succeeds() {
    let models = model(fork_join_reply);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let ran = run(dir.path(), FORK_JOIN, &models, &["--otlp", &url], &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let warnings: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", ran.stderr);
    assert!(
        warnings[0].starts_with("warning: OpenTelemetry: cannot send spans to")
            && warnings[0].contains(&url)
            && warnings[0].contains("the run goes on"),
        "{}",
        warnings[0]
    );
    assert!(ran.stderr.contains("`main` succeeded"), "{}", ran.stderr);
    assert!(ran.stdout.contains("ok: "), "{}", ran.stdout);
    // the export of a past run to it is an error
    let id = run_id(&ran);
    let mut cmd = Command::new(bin());
    cmd.args(["export", &id, "--otlp", &url, "--store"])
        .arg(dir.path().join("runs.db"));
    let exported = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(exported.code, Some(2), "{}", exported.all());
    assert!(
        exported.stderr.contains("error: cannot send spans to"),
        "{}",
        exported.stderr
    );
}

#[test]
fn the_standard_variables_name_the_collector_and_the_flag_overrides_them() {
    let models = model(fork_join_reply);
    let by_env = receiver();
    let by_flag = receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    // the base endpoint: /v1/traces is added
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", by_env.url())];
    let ran = run(dir.path(), FORK_JOIN, &models, &[], &env);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let (spans, _) = decoded(&by_env);
    assert_eq!(by_name(&spans, "run main").len(), 1);
    let before = by_env.requests().len();
    let ran = run(
        dir.path(),
        FORK_JOIN,
        &models,
        &["--otlp", &by_flag.url()],
        &env,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(by_env.requests().len(), before, "the flag wins");
    let (spans, _) = decoded(&by_flag);
    assert_eq!(by_name(&spans, "run main").len(), 1);
    // switched off by the standard variable
    let off = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", by_env.url()),
        ("OTEL_SDK_DISABLED", "true".to_string()),
    ];
    let ran = run(dir.path(), FORK_JOIN, &models, &[], &off);
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    assert_eq!(by_env.requests().len(), before);
}

#[test]
fn content_goes_into_the_spans_only_when_asked_for() {
    let models = model(fork_join_reply);
    let otlp = receiver();
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = run(
        dir.path(),
        FORK_JOIN,
        &models,
        &["--otlp", &otlp.url(), "--otlp-content"],
        &[],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let (spans, _) = decoded(&otlp);
    let rejected = one(&spans, "attempt draft #1");
    assert_eq!(rejected.attr("guardflow.prompt"), "Draft about rust");
    assert_eq!(rejected.attr("guardflow.output"), "nope");
    assert!(!rejected.attr("guardflow.feedback").is_empty());
    let call = children(&spans, rejected)[0];
    let input: serde_json::Value =
        serde_json::from_str(call.attr("gen_ai.input.messages")).expect("JSON messages");
    assert_eq!(input[0]["parts"][0]["content"], "Draft about rust");
    let output: serde_json::Value =
        serde_json::from_str(call.attr("gen_ai.output.messages")).expect("JSON messages");
    assert_eq!(output[0]["parts"][0]["content"], "nope");
}

#[test]
fn a_collector_that_never_answers_holds_the_end_of_the_run_only_briefly() {
    let models = model(fork_join_reply);
    // reads each request and answers long after the run gave up on it
    let silent = Server::start(Arc::new(|_r: &Request| {
        std::thread::sleep(Duration::from_secs(20));
        (200, "application/x-protobuf", Vec::new())
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("OTEL_EXPORTER_OTLP_TIMEOUT", "300".to_string())];
    let ran = run(
        dir.path(),
        FORK_JOIN,
        &models,
        &["--otlp", &silent.url()],
        &env,
    );
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    let warnings: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", ran.stderr);
    assert!(
        warnings[0].starts_with("warning: OpenTelemetry: ") && warnings[0].contains(&silent.url()),
        "{}",
        warnings[0]
    );
    assert!(ran.stderr.contains("`main` succeeded"), "{}", ran.stderr);
}
