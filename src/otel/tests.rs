use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::map::{spans, Attr, Ids, Mapper, Models, Span};
use super::{endpoint_from, Endpoint};

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn the_flag_wins_then_the_traces_variable_then_the_base_one() {
    let all = env(&[
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/custom"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/"),
    ]);
    let url = |e: Option<Endpoint>| e.map(|e| (e.url, e.from));
    assert_eq!(
        url(endpoint_from(Some("http://flag:4318"), &all).unwrap()),
        Some(("http://flag:4318/v1/traces".into(), "--otlp".into()))
    );
    assert_eq!(
        url(endpoint_from(Some("http://flag:4318/v1/traces"), &all).unwrap()),
        Some(("http://flag:4318/v1/traces".into(), "--otlp".into()))
    );
    assert_eq!(
        url(endpoint_from(None, &all).unwrap()),
        Some((
            "http://t:1/custom".into(),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".into()
        ))
    );
    let base = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318/")]);
    assert_eq!(
        url(endpoint_from(None, &base).unwrap()),
        Some((
            "http://base:4318/v1/traces".into(),
            "OTEL_EXPORTER_OTLP_ENDPOINT".into()
        ))
    );
    assert_eq!(endpoint_from(None, env(&[])).unwrap(), None);
    // switched off by the standard variables, but not against the flag
    let off = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ]);
    assert_eq!(endpoint_from(None, &off).unwrap(), None);
    assert!(endpoint_from(Some("http://x:1"), &off).unwrap().is_some());
    let none = env(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
        ("OTEL_TRACES_EXPORTER", "none"),
    ]);
    assert_eq!(endpoint_from(None, &none).unwrap(), None);
}

#[test]
fn the_timeout_is_the_standard_variables_within_a_minute() {
    let at = |vars: &[(&str, &str)]| {
        endpoint_from(Some("http://x:1"), env(vars))
            .unwrap()
            .unwrap()
            .timeout
    };
    assert_eq!(at(&[]), Duration::from_secs(10));
    let one = [("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")];
    assert_eq!(at(&one), Duration::from_millis(1500));
    let both = [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "300"),
    ];
    assert_eq!(at(&both), Duration::from_millis(300));
    assert_eq!(
        at(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "99999999")]),
        Duration::from_secs(60)
    );
    assert_eq!(
        at(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")]),
        Duration::from_secs(10)
    );
}

#[test]
fn a_url_that_is_not_http_is_refused_with_what_to_write() {
    for bad in ["localhost:4318", "grpc://x:4317", "http://", "ftp://x"] {
        let e = endpoint_from(Some(bad), env(&[])).unwrap_err();
        assert!(
            e.contains("--otlp") && e.contains("http://HOST:PORT"),
            "{e}"
        );
    }
    let e = endpoint_from(None, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "x")])).unwrap_err();
    assert!(e.starts_with("OTEL_EXPORTER_OTLP_ENDPOINT"), "{e}");
}

fn t(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
}

/// A fork-join run: `a` rejected once then passed, `b` judged by a model
/// and passed, as `run --json` says it.
fn fork_join() -> Vec<(SystemTime, Value)> {
    let events = vec![
        json!({"event": "run_started", "task": "main", "worst_case_calls": 6}),
        json!({"event": "task_started", "path": "main", "task": "main"}),
        json!({"event": "method_skipped", "path": "main/first", "method": "first", "reason": "no"}),
        json!({"event": "method_started", "path": "main/m", "method": "m"}),
        json!({"event": "action_started", "path": "main/m/a", "action": "draft"}),
        json!({"event": "action_started", "path": "main/m/b", "action": "review"}),
        json!({"event": "attempt_started", "path": "main/m/a", "action": "draft", "occurrence": 1, "index": 1, "attempt": 1, "prompt": "write it", "role": null}),
        json!({"event": "attempt_started", "path": "main/m/b", "action": "review", "occurrence": 1, "index": 1, "attempt": 1, "prompt": "review it", "role": "be terse"}),
        json!({"event": "generated", "path": "main/m/a", "action": "draft", "attempt": 1, "output": "nope", "tokens": 7, "prompt_tokens": 11, "generate_ms": 40}),
        json!({"event": "attempt", "path": "main/m/a", "action": "draft", "attempt": 1, "prompt": "write it", "output": "nope", "verdict": "fail", "feedback": "say ok", "tokens": 7, "generate_ms": 40, "guard_ms": 1}),
        json!({"event": "attempt_started", "path": "main/m/a", "action": "draft", "occurrence": 1, "index": 2, "attempt": 2, "prompt": "write it\nsay ok", "role": null}),
        json!({"event": "generated", "path": "main/m/b", "action": "review", "attempt": 1, "output": "fine", "tokens": 3, "prompt_tokens": 5, "generate_ms": 60}),
        json!({"event": "judge_call", "path": "main/m/b", "action": "review", "attempt": 1, "guard": "judge", "generator": "critic", "call": 1, "prompt": "is it fine?", "role": null, "output": "{\"pass\": true}", "tokens": 2, "prompt_tokens": 9, "generate_ms": 20}),
        json!({"event": "attempt", "path": "main/m/b", "action": "review", "attempt": 1, "prompt": "review it", "output": "fine", "verdict": "pass", "feedback": "", "tokens": 3, "generate_ms": 60, "guard_ms": 25}),
        json!({"event": "committed", "path": "main/m/b", "action": "review", "artifact": "fine"}),
        json!({"event": "generated", "path": "main/m/a", "action": "draft", "attempt": 2, "output": "ok", "tokens": 7, "prompt_tokens": 11, "generate_ms": 40}),
        json!({"event": "attempt", "path": "main/m/a", "action": "draft", "attempt": 2, "prompt": "write it\nsay ok", "output": "ok", "verdict": "pass", "feedback": "", "tokens": 7, "generate_ms": 40, "guard_ms": 1}),
        json!({"event": "committed", "path": "main/m/a", "action": "draft", "artifact": "ok"}),
        json!({"event": "task_finished", "path": "main", "task": "main", "success": true}),
        json!({"event": "run_finished", "success": true, "generator_calls": 4, "guard_runs": 3, "elapsed_ms": 300, "repeated_calls": 0}),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| (t(i as u64 * 50), e))
        .collect()
}

fn models() -> Models {
    let program = crate::check::check_source(
        "t.guardflow",
        "use std.{contains}\n\
         generator writer = llm(model: \"tiny\", base_url: \"http://127.0.0.1:9/v1\")\n\
         generator critic = llm(model: \"judge-model\", api: \"ollama\")\n\
         action draft() -> Text { :generate writer \"write it\" :guard contains(\"ok\") :retry 1 }\n\
         action review() -> Text { :generate writer \"review it\" :guard contains(\"f\") }\n\
         task main() { method m { :subtasks (a: draft(), b: review()) } }\n",
    )
    .program
    .expect("checks");
    Models::of(&program, None)
}

fn mapped(content: bool) -> Vec<Span> {
    let events = fork_join();
    let mut m = Mapper::new(Ids::for_run("r1", ""), Some("r1".into()), models(), content);
    spans(&mut m, events.iter().map(|(at, e)| (*at, e)))
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found = named(spans, name);
    assert_eq!(
        found.len(),
        1,
        "{name}: {:#?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

fn parent<'a>(spans: &'a [Span], s: &Span) -> Option<&'a Span> {
    let p = s.parent?;
    spans.iter().find(|x| x.span_id == p)
}

#[test]
fn the_tree_is_run_task_method_action_attempt_call() {
    let spans = mapped(false);
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), spans.len(), "span ids are unique");
    let run = one(&spans, "run main");
    assert_eq!(run.parent, None);
    assert!(spans.iter().all(|s| s.trace_id == run.trace_id));
    let task = one(&spans, "task main");
    assert_eq!(task.parent, Some(run.span_id));
    assert_eq!(task.marks.len(), 1, "the skipped method");
    let method = one(&spans, "method m");
    assert_eq!(method.parent, Some(task.span_id));
    let draft = one(&spans, "action draft");
    let review = one(&spans, "action review");
    assert_eq!(draft.parent, Some(method.span_id));
    assert_eq!(review.parent, Some(method.span_id));
    for (n, verdict) in [(1, "fail"), (2, "pass")] {
        let a = one(&spans, &format!("attempt draft #{n}"));
        assert_eq!(a.parent, Some(draft.span_id));
        assert_eq!(a.attr("guardflow.attempt"), Some(&Attr::Int(n)));
        assert_eq!(
            a.attr("guardflow.verdict"),
            Some(&Attr::Str(verdict.into()))
        );
        assert_eq!(a.error.is_some(), verdict == "fail");
        let children: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent == Some(a.span_id))
            .collect();
        let names: Vec<&str> = children.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["chat tiny", "guard draft"], "{names:?}");
        let call = children[0];
        assert_eq!(
            call.attr("gen_ai.request.model"),
            Some(&Attr::Str("tiny".into()))
        );
        assert_eq!(
            call.attr("gen_ai.provider.name"),
            Some(&Attr::Str("openai".into()))
        );
        assert_eq!(call.attr("gen_ai.usage.input_tokens"), Some(&Attr::Int(11)));
        assert_eq!(call.attr("gen_ai.usage.output_tokens"), Some(&Attr::Int(7)));
        assert_eq!(
            call.attr("server.address"),
            Some(&Attr::Str("127.0.0.1".into()))
        );
        assert_eq!(call.attr("server.port"), Some(&Attr::Int(9)));
        assert!(call.start >= a.start && call.end <= a.end);
    }
    let first = one(&spans, "attempt draft #1");
    assert_eq!(first.attr("guardflow.feedback.size"), Some(&Attr::Int(6)));
    // the judge's call is under the guard it judged for
    let judge = one(&spans, "text_completion judge-model");
    let guard = parent(&spans, judge).expect("the judge's parent");
    assert_eq!(guard.name, "guard review");
    assert_eq!(
        parent(&spans, guard).map(|s| s.name.as_str()),
        Some("attempt review #1")
    );
    assert_eq!(
        judge.attr("gen_ai.provider.name"),
        Some(&Attr::Str("ollama".into()))
    );
    assert_eq!(judge.attr("gen_ai.usage.input_tokens"), Some(&Attr::Int(9)));
    // times are the events'
    assert_eq!(run.start, t(0));
    assert_eq!(run.end, t(19 * 50));
    assert_eq!(one(&spans, "attempt draft #1").end, t(9 * 50));
    assert!(spans.iter().all(|s| s.start <= s.end));
}

#[test]
fn content_is_left_out_unless_asked_for() {
    let without = mapped(false);
    let with = mapped(true);
    let texts = |spans: &[Span]| -> String {
        spans
            .iter()
            .flat_map(|s| s.attributes.iter())
            .filter_map(|(_, v)| match v {
                Attr::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (quiet, loud) = (texts(&without), texts(&with));
    for secretish in ["write it", "say ok", "is it fine?"] {
        assert!(!quiet.contains(secretish), "{secretish} in {quiet}");
        assert!(loud.contains(secretish), "{secretish} not in {loud}");
    }
    // the same spans otherwise
    assert_eq!(without.len(), with.len());
}

#[test]
fn what_did_not_finish_ends_with_the_last_event_and_says_so() {
    let events: Vec<(SystemTime, Value)> = fork_join().into_iter().take(8).collect();
    let mut m = Mapper::new(Ids::for_run("r2", ""), None, Models::default(), false);
    let spans = spans(&mut m, events.iter().map(|(at, e)| (*at, e)));
    assert_eq!(m.open(), 0);
    let attempt = one(&spans, "attempt draft #1");
    assert_eq!(attempt.error.as_deref(), Some("did not finish"));
    assert_eq!(attempt.end, t(7 * 50));
    let run = one(&spans, "run main");
    assert_eq!(run.error.as_deref(), Some("did not finish"));
    // children end before their parents in the output
    let pos = |name: &str| spans.iter().position(|s| s.name == name).unwrap();
    assert!(pos("attempt draft #1") < pos("action draft"));
    assert!(pos("action draft") < pos("method m"));
    assert!(pos("method m") < pos("task main"));
}

#[test]
fn the_ids_depend_on_the_run_and_the_place_only() {
    let a = mapped(false);
    let b = mapped(false);
    assert_eq!(a, b);
    let mut m = Mapper::new(Ids::for_run("r1", "resumed"), None, models(), false);
    let events = fork_join();
    let c = spans(&mut m, events.iter().map(|(at, e)| (*at, e)));
    assert_eq!(a[0].trace_id, c[0].trace_id, "one trace per run");
    assert_ne!(a[0].span_id, c[0].span_id);
}

#[test]
fn an_escalation_ends_the_action_and_a_new_occurrence_starts() {
    let events = vec![
        json!({"event": "run_started", "task": "main"}),
        json!({"event": "task_started", "path": "main", "task": "main"}),
        json!({"event": "method_started", "path": "main/m", "method": "m"}),
        json!({"event": "action_started", "path": "main/m/t", "action": "spec"}),
        json!({"event": "committed", "path": "main/m/t", "action": "spec", "artifact": "v1"}),
        json!({"event": "action_started", "path": "main/m/i", "action": "implement"}),
        json!({"event": "escalated", "path": "main/m/i", "target": "t", "feedback": "bad"}),
        json!({"event": "action_started", "path": "main/m/t", "action": "spec"}),
        json!({"event": "committed", "path": "main/m/t", "action": "spec", "artifact": "v2"}),
        json!({"event": "action_started", "path": "main/m/i", "action": "implement"}),
        json!({"event": "committed", "path": "main/m/i", "action": "implement", "artifact": "ok"}),
        json!({"event": "task_finished", "path": "main", "task": "main", "success": true}),
        json!({"event": "run_finished", "success": true, "generator_calls": 4, "guard_runs": 4, "elapsed_ms": 3}),
    ];
    let mut m = Mapper::new(Ids::for_run("r3", ""), None, Models::default(), false);
    let spans = spans(
        &mut m,
        events.iter().enumerate().map(|(i, e)| (t(i as u64), e)),
    );
    let implement = named(&spans, "action implement");
    assert_eq!(implement.len(), 2);
    assert_eq!(
        implement[0].attr("guardflow.outcome"),
        Some(&Attr::Str("escalated".into()))
    );
    assert_eq!(
        implement[0].attr("guardflow.occurrence"),
        Some(&Attr::Int(1))
    );
    assert_eq!(
        implement[1].attr("guardflow.occurrence"),
        Some(&Attr::Int(2))
    );
    assert_eq!(implement[0].marks[0].name, "escalated");
    assert_ne!(implement[0].span_id, implement[1].span_id);
    assert_eq!(named(&spans, "action spec").len(), 2);
}

#[test]
fn garbage_events_make_no_spans_and_no_panic() {
    let events = [
        json!(null),
        json!({"event": "attempt", "path": "x", "attempt": 3}),
        json!({"event": "task_finished"}),
        json!({"event": "judge_call", "path": "", "attempt": "one"}),
        json!({"event": "method_failed", "path": "nowhere/at/all", "reason": "x".repeat(100_000)}),
        json!({"event": "run_finished", "success": "yes"}),
    ];
    let mut m = Mapper::new(Ids::for_run("r4", ""), None, Models::default(), true);
    let spans = spans(&mut m, events.iter().map(|e| (t(0), e)));
    assert!(spans.is_empty(), "{spans:#?}");
}

#[test]
fn a_resumed_run_read_back_is_one_run_span_with_the_first_process_cut_off() {
    let events = [
        json!({"event": "run_started", "task": "main"}),
        json!({"event": "task_started", "path": "main", "task": "main"}),
        json!({"event": "method_started", "path": "main/m", "method": "m"}),
        json!({"event": "action_started", "path": "main/m/a", "action": "draft"}),
        json!({"event": "attempt_started", "path": "main/m/a", "action": "draft", "occurrence": 1, "index": 1, "attempt": 1, "prompt": "p", "role": null}),
        // the process was killed here; a resume starts over
        json!({"event": "run_started", "task": "main"}),
        json!({"event": "task_started", "path": "main", "task": "main"}),
        json!({"event": "method_started", "path": "main/m", "method": "m"}),
        json!({"event": "action_started", "path": "main/m/a", "action": "draft"}),
        json!({"event": "attempt", "path": "main/m/a", "action": "draft", "attempt": 1, "output": null, "verdict": "interrupted", "feedback": "", "generate_ms": 0, "guard_ms": 0, "guarded": false}),
        json!({"event": "attempt_started", "path": "main/m/a", "action": "draft", "occurrence": 1, "index": 2, "attempt": 2, "prompt": "p", "role": null}),
        json!({"event": "generated", "path": "main/m/a", "action": "draft", "attempt": 2, "output": "ok", "generate_ms": 1}),
        json!({"event": "attempt", "path": "main/m/a", "action": "draft", "attempt": 2, "output": "ok", "verdict": "pass", "feedback": "", "generate_ms": 1, "guard_ms": 0, "guarded": true}),
        json!({"event": "committed", "path": "main/m/a", "action": "draft", "artifact": "ok"}),
        json!({"event": "task_finished", "path": "main", "task": "main", "success": true}),
        json!({"event": "run_finished", "success": true, "generator_calls": 1, "guard_runs": 1, "elapsed_ms": 3}),
    ];
    let mut m = Mapper::new(Ids::for_run("r5", ""), None, Models::default(), false);
    let spans = spans(
        &mut m,
        events.iter().enumerate().map(|(i, e)| (t(i as u64), e)),
    );
    let run = one(&spans, "run main");
    assert_eq!(run.error, None);
    assert_eq!(
        run.marks.iter().map(|m| m.name).collect::<Vec<_>>(),
        ["resumed"]
    );
    let tasks = named(&spans, "task main");
    assert_eq!(tasks.len(), 2);
    assert_eq!(
        tasks[0].error.as_deref(),
        Some("interrupted: the process stopped")
    );
    assert_eq!(tasks[0].end, t(5));
    assert!(tasks.iter().all(|t| t.parent == Some(run.span_id)));
    // the attempt the first process left in flight, cut off where it stopped
    let first = named(&spans, "attempt draft #1");
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].error.as_deref(),
        Some("interrupted: the process stopped")
    );
    let second = one(&spans, "attempt draft #2");
    assert_eq!(second.error, None);
    let action = parent(&spans, second).expect("its action");
    // the same run of the action, taken up again
    assert_eq!(action.attr("guardflow.occurrence"), Some(&Attr::Int(1)));
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), spans.len());
}
