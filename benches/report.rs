//! `guardflow report`'s page generation: a made-up run of N attempts over
//! N/4 paths (three rejected attempts and a pass each, prompts, outputs
//! and feedback of a few hundred bytes), events to HTML.
//!
//! Target (issue 19): a 10,000-attempt run's page under 10 MB (asserted
//! by `tests/report.rs`) that opens in under 2 s in headless Chromium
//! (measured there, printed with `--nocapture`).
//!
//! And a bench's page (`guardflow report --bench`): 8 cells (4 models ×
//! 2 arms) × 50 trials, and × 1,000, from the trials to HTML (the report
//! computed, then the page).
//!
//! `cargo bench --bench report`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};

use guardflow::report::{bench, render, BenchOptions, Options, RunData};
use guardflow::store::bench::{Attempt, Trial};
use guardflow::store::{BenchTag, RunMeta};

fn events(n: usize) -> Vec<Value> {
    let paths = (n / 4).max(1);
    let mut out = vec![
        json!({"event": "task_started", "path": "big", "task": "big", "seq": 1, "session": 1, "at_ms": 0}),
        json!({"event": "method_started", "path": "big/all", "method": "all", "seq": 2, "session": 1, "at_ms": 0}),
    ];
    let mut seq = 3;
    let mut push = |mut e: Value, at: usize| {
        e["seq"] = json!(seq);
        e["session"] = json!(1);
        e["at_ms"] = json!(at);
        seq += 1;
        out.push(e);
    };
    for i in 0..n {
        let (p, k) = (i % paths, i / paths + 1);
        let path = format!("big/all/c[{p}]");
        let prompt = format!("Solve item {p}.\n{}", "x = y + z; ".repeat(20));
        let output = format!("{}result = {}\n", "step: add them\n".repeat(10), p + k);
        let pass = k * paths >= n;
        push(
            json!({"event": "attempt_started", "path": path, "action": "solve", "occurrence": 1,
                   "index": k, "attempt": k, "prompt": prompt}),
            i * 3,
        );
        push(
            json!({"event": "attempt", "path": path, "action": "solve", "attempt": k,
                   "output": output, "verdict": if pass { "pass" } else { "fail" },
                   "feedback": if pass { "" } else { "regex: no line matches `^result = [0-9]+$`" },
                   "generate_ms": 2, "guard_ms": 1}),
            i * 3 + 3,
        );
    }
    out
}

fn data(n: usize) -> RunData {
    RunData {
        meta: RunMeta {
            id: "20261204-000000-beef".into(),
            workflow: "/nonexistent/big.guardflow".into(),
            workflow_hash: String::new(),
            task: "big".into(),
            inputs: serde_json::Map::new(),
            replacement: None,
            worst_case_calls: None,
            started_ms: 0,
            seed: None,
            bench: None,
        },
        status: "succeeded".into(),
        events: events(n),
        workflow: Err("made up".into()),
    }
}

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for n in [1_000usize, 10_000] {
        let d = data(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("render", n), &d, |b, d| {
            b.iter(|| black_box(render(d, &Options::default()).len()))
        });
    }
    group.finish();
}

/// `per_cell` trials of each of 4 models × 2 arms: trial `t` takes
/// 1 to 4 attempts (fewer in the guarded arm) and succeeds by a fixed
/// pattern.
fn trials(per_cell: u64) -> Vec<Trial> {
    let mut out = Vec::new();
    for model in ["qwen", "llama", "mistral", "gemma"] {
        for (a, arm) in ["baseline", "guarded"].into_iter().enumerate() {
            for t in 0..per_cell {
                let attempts = if a == 0 { 1 } else { 1 + (t * 7 + 3) % 4 };
                let success = (t * 13 + a as u64 * 5) % 10 < 4 + 4 * a as u64;
                let id = format!("20261204-{model}-{arm}-{t}");
                out.push(Trial {
                    run_id: id.clone(),
                    meta: RunMeta {
                        id,
                        workflow: "/bench/probe.guardflow".into(),
                        workflow_hash: String::new(),
                        task: "probe".into(),
                        inputs: serde_json::Map::new(),
                        replacement: None,
                        worst_case_calls: Some(4),
                        started_ms: 0,
                        seed: Some(t),
                        bench: Some(BenchTag {
                            id: "probe".into(),
                            arm: arm.into(),
                            model: model.into(),
                            trial: t,
                            overrides: format!("retry={}", a * 3),
                        }),
                    },
                    success: Some(success),
                    generator_calls: attempts,
                    attempts: (1..=attempts)
                        .map(|n| Attempt {
                            action: "solve".into(),
                            attempt: n as u32,
                            verdict: if n == attempts && success {
                                "pass"
                            } else {
                                "fail"
                            }
                            .into(),
                            feedback: (n < attempts || !success).then(|| {
                                "FAILED test_solution.py::test_add - assert 1 == 2".to_string()
                            }),
                            tokens: 120,
                            prompt_tokens: 80,
                        })
                        .collect(),
                });
            }
        }
    }
    out
}

fn bench_page(c: &mut Criterion) {
    let mut group = c.benchmark_group("bench_page");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for per_cell in [50u64, 1_000] {
        let all = trials(per_cell);
        group.throughput(Throughput::Elements(all.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("report_and_render", format!("8x{per_cell}")),
            &all,
            |b, all| {
                b.iter(|| {
                    let report = guardflow::bench::report("probe", all);
                    black_box(bench::page(&report, all, &BenchOptions::default()).len())
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, generate, bench_page);
criterion_main!(benches);
