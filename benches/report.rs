//! `guardflow report`'s page generation: a made-up run of N attempts over
//! N/4 paths (three rejected attempts and a pass each, prompts, outputs
//! and feedback of a few hundred bytes), events to HTML.
//!
//! Target (issue 19): a 10,000-attempt run's page under 10 MB (asserted
//! by `tests/report.rs`) that opens in under 2 s in headless Chromium
//! (measured there, printed with `--nocapture`).
//!
//! `cargo bench --bench report`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};

use guardflow::report::{render, Options, RunData};
use guardflow::store::RunMeta;

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

criterion_group!(benches, generate);
criterion_main!(benches);
