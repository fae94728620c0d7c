//! `guardflow show`: one run as a tree of tasks, methods, actions and
//! attempts, with verdicts and feedback.

use crate::cli::output::{out, outln};
use std::collections::HashMap;

use serde_json::Value;

use super::EXIT_OK;
use crate::store::{self, Store};

/// Show a recorded run: its tasks, methods, actions, attempts, verdicts
/// and feedback
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  guardflow show 20261127-081503-3fa2\n  guardflow show RUN_ID --store examples/ --prompts\n  guardflow show RUN_ID --brief\n\nA resumed run shows each later process as a new session; the decomposition it \
re-entered is shown again there, its reused artifacts are not.\n\nExit status: 0 shown, 2 no such run or store."
)]
pub struct Args {
    /// The run (see `guardflow runs`)
    #[arg(value_name = "RUN_ID")]
    run: String,
    /// Also print each attempt's prompt and output in full
    #[arg(long)]
    prompts: bool,
    /// Feedback and reasons on one line each (their first line); by
    /// default they are shown in full, wrapped and indented
    #[arg(long)]
    brief: bool,
    #[command(flatten)]
    store: super::store_arg::StoreArg,
}

pub fn run(args: Args) -> u8 {
    let path = match args.store.locate(Some(&args.run)) {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    let store = match Store::open_read(&path) {
        Ok(s) => s,
        Err(e) => return super::fail(e),
    };
    let (meta, events, summary) = match store.run_meta(&args.run).and_then(|m| {
        let events = store.events(&args.run)?;
        let summary = store.runs()?.into_iter().find(|r| r.id == args.run);
        Ok((m, events, summary))
    }) {
        Ok(x) => x,
        Err(e) => return super::fail(e),
    };
    let status = summary.as_ref().map_or("?", |s| s.status.as_str());
    outln!(
        "run {}: `{}` of {}, {status}; started {} UTC",
        meta.id,
        meta.task,
        meta.workflow,
        store::utc_time(meta.started_ms)
    );
    out!("{}", tree(&events, args.prompts, args.brief));
    EXIT_OK
}

fn s<'a>(e: &'a Value, key: &str) -> &'a str {
    e.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Feedback or a reason: its first line with `--brief`; else all of it,
/// the later lines indented under the first and long lines wrapped.
fn message(text: &str, brief: bool) -> String {
    let mut lines = text.trim_end().lines();
    let first = lines.next().unwrap_or("").to_string();
    if brief {
        return first;
    }
    let mut out = first;
    for line in lines {
        for piece in wrap(line, WRAP) {
            out.push_str("\n    ");
            out.push_str(piece);
        }
    }
    out
}

/// Where `show` wraps a long line of feedback.
const WRAP: usize = 100;

/// `line` cut at spaces into pieces of at most `width` characters (a word
/// longer than that is a piece of its own).
fn wrap(line: &str, width: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = line;
    while rest.chars().count() > width {
        let limit = rest
            .char_indices()
            .nth(width)
            .map_or(rest.len(), |(i, _)| i);
        let cut = match rest[..limit].rfind(' ') {
            Some(i) if i > 0 => i,
            _ => rest[limit..].find(' ').map_or(rest.len(), |i| limit + i),
        };
        pieces.push(&rest[..cut]);
        rest = rest[cut..].trim_start_matches(' ');
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// The events as a tree: each path under its parent, in the order paths
/// first appeared; a path's own lines (attempts, verdicts, commits) in
/// the order they happened.
pub fn tree(events: &[Value], full: bool, brief: bool) -> String {
    let text = |t: &str| -> String { message(t, brief) };
    let mut order: Vec<String> = Vec::new();
    let mut lines: HashMap<String, Vec<String>> = HashMap::new();
    let mut headers: HashMap<String, String> = HashMap::new();
    let mut tail: Vec<String> = Vec::new();
    // attempts started and not yet judged, by path
    let mut pending: HashMap<String, i64> = HashMap::new();
    for e in events {
        let now = e.get("session").and_then(Value::as_i64).unwrap_or(1);
        let path = s(e, "path").to_string();
        if !path.is_empty() && !lines.contains_key(&path) {
            order.push(path.clone());
            lines.insert(path.clone(), Vec::new());
        }
        let mut line = |text: String| {
            let text = if now > 1 {
                format!("{text}  [session {now}]")
            } else {
                text
            };
            if let Some(l) = lines.get_mut(&path) {
                l.push(text);
            }
        };
        match s(e, "event") {
            "task_started" => {
                headers
                    .entry(path.clone())
                    .or_insert_with(|| format!("task {}", s(e, "task")));
            }
            "method_started" => {
                headers
                    .entry(path.clone())
                    .or_insert_with(|| format!("method {}", s(e, "method")));
            }
            "method_skipped" | "method_failed" => {
                headers
                    .entry(path.clone())
                    .or_insert_with(|| format!("method {}", s(e, "method")));
                let what = if s(e, "event") == "method_skipped" {
                    "skipped"
                } else {
                    "failed"
                };
                line(format!("{what}: {}", text(s(e, "reason"))));
            }
            "action_started" => {
                headers.entry(path.clone()).or_insert_with(|| {
                    format!(
                        "{} = {}",
                        path.rsplit('/').next().unwrap_or(&path),
                        s(e, "action")
                    )
                });
            }
            "attempt_started" => {
                let n = e.get("attempt").and_then(Value::as_i64).unwrap_or(0);
                if let Some(old) = pending.insert(path.clone(), n) {
                    line(format!("attempt {old}: interrupted"));
                }
                if full {
                    line(format!(
                        "prompt of attempt {n}:\n{}",
                        block(s(e, "prompt"), "  ")
                    ));
                }
            }
            "attempt" => {
                pending.remove(&path);
                let n = e.get("attempt").and_then(Value::as_i64).unwrap_or(0);
                let ms = e.get("generate_ms").and_then(Value::as_i64).unwrap_or(0)
                    + e.get("guard_ms").and_then(Value::as_i64).unwrap_or(0);
                line(match s(e, "verdict") {
                    "pass" => format!("attempt {n}: passed ({ms} ms)"),
                    "fatal" => format!("attempt {n}: fatal: {}", text(s(e, "feedback"))),
                    "interrupted" => {
                        format!("attempt {n}: interrupted in its generator call, made again")
                    }
                    _ => format!("attempt {n}: rejected: {}", text(s(e, "feedback"))),
                });
                if full {
                    line(format!(
                        "output of attempt {n}:\n{}",
                        block(s(e, "output"), "  ")
                    ));
                }
            }
            "judge_call" => {
                let n = e.get("attempt").and_then(Value::as_i64).unwrap_or(0);
                let call = e.get("call").and_then(Value::as_i64).unwrap_or(0);
                let answer = match e.get("output").and_then(Value::as_str) {
                    Some(o) => abbreviate(message(o.trim(), true).as_str(), 100),
                    None => format!("no answer: {}", text(s(e, "error"))),
                };
                line(format!(
                    "attempt {n}: `{}` asked `{}` (call {call}): {answer}",
                    s(e, "guard"),
                    s(e, "generator")
                ));
                if full {
                    line(format!(
                        "judge prompt of attempt {n}, call {call}:\n{}",
                        block(s(e, "prompt"), "  ")
                    ));
                    line(format!(
                        "judge answer of attempt {n}, call {call}:\n{}",
                        block(s(e, "output"), "  ")
                    ));
                }
            }
            "committed" => {
                let hash = s(e, "artifact_hash");
                line(format!(
                    "committed (sha256 {})",
                    &hash[..hash.len().min(12)]
                ));
            }
            "escalated" => line(format!(
                "escalated to `{}`: {}",
                s(e, "target"),
                text(s(e, "feedback"))
            )),
            "action_failed" => line(format!("failed: {}", text(s(e, "reason")))),
            "effect_started" => line(format!("effect started: `{}`", s(e, "command"))),
            "served" => {
                let skipped: Vec<&str> = e
                    .get("skipped")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !skipped.is_empty() {
                    let n = e.get("attempt").and_then(Value::as_i64).unwrap_or(0);
                    line(format!(
                        "attempt {n}: served by `{}` after transport failures: {}",
                        s(e, "provider"),
                        text(&skipped.join("; "))
                    ));
                }
            }
            "waiting" if full => line(format!(
                "attempt {}: {} waited for {}",
                e.get("attempt").and_then(Value::as_i64).unwrap_or(0),
                s(e, "provider"),
                message(s(e, "what"), true)
            )),
            "run_finished" => tail.push(format!(
                "finished: {} after {} generator calls{}{}",
                if e.get("success").and_then(Value::as_bool) == Some(true) {
                    "succeeded"
                } else {
                    "failed"
                },
                e.get("generator_calls")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                match e.get("repeated_calls").and_then(Value::as_u64) {
                    Some(n) if n > 0 => format!(
                        " and {n} repeated (in flight when the run stopped; outside the bound)"
                    ),
                    _ => String::new(),
                },
                if now > 1 {
                    format!(" (session {now})")
                } else {
                    String::new()
                }
            )),
            _ => {}
        }
    }
    for (path, n) in pending {
        if let Some(l) = lines.get_mut(&path) {
            l.push(format!("attempt {n}: interrupted"));
        }
    }
    let parent = |p: &str| p.rsplit_once('/').map(|(a, _)| a.to_string());
    let mut out = String::new();
    let mut stack: Vec<(String, usize)> = order
        .iter()
        .filter(|p| parent(p).is_none_or(|q| !lines.contains_key(&q)))
        .rev()
        .map(|p| (p.clone(), 0))
        .collect();
    while let Some((path, depth)) = stack.pop() {
        let pad = "  ".repeat(depth);
        let header = headers.get(&path).cloned().unwrap_or_else(|| path.clone());
        out.push_str(&format!("{pad}{header}\n"));
        for l in lines.get(&path).into_iter().flatten() {
            out.push_str(&format!(
                "{pad}  {}\n",
                l.replace('\n', &format!("\n{pad}  "))
            ));
        }
        for child in order
            .iter()
            .filter(|c| parent(c).as_deref() == Some(path.as_str()))
            .rev()
        {
            stack.push((child.clone(), depth + 1));
        }
    }
    for t in tail {
        out.push_str(&format!("{t}\n"));
    }
    out
}

fn abbreviate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn block(text: &str, indent: &str) -> String {
    text.lines()
        .map(|l| format!("{indent}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_is_shown_in_full_unless_brief() {
        let fb = "pytest: 1 failed\n_____ test_add _____\nassert add(1, 2) == 3";
        assert_eq!(message(fb, true), "pytest: 1 failed");
        assert_eq!(
            message(fb, false),
            "pytest: 1 failed\n    _____ test_add _____\n    assert add(1, 2) == 3"
        );
    }

    #[test]
    fn long_lines_wrap_at_spaces() {
        let line = "word ".repeat(50);
        let pieces = wrap(line.trim_end(), 20);
        assert!(pieces.iter().all(|p| p.chars().count() <= 20), "{pieces:?}");
        assert_eq!(pieces.join(" "), line.trim_end());
        let long = "x".repeat(30);
        assert_eq!(wrap(&long, 20), [long.as_str()]);
        assert_eq!(wrap("", 20), [""]);
    }
}
