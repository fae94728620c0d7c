//! Verification at scale: a generated program of N actions in nested
//! fork-join with data edges, in N/100 recursive tasks with `:max-depth`,
//! checked fully: parse, names and types, deadlock and termination, and
//! every task's bounds.
//!
//! Targets (issue): N = 100,000 (1,000 recursive tasks) in at most 1 s,
//! and 10x the program at most 12x the time (compare N = 10,000).
//!
//! `cargo bench --bench verify`.
//!
//! Without criterion, for profilers (`valgrind --tool=callgrind`, `perf`):
//!
//! ```text
//! GUARDFLOW_BENCH_RUN=full:10000:1 target/release/deps/verify-*   # phase:N:iterations
//! GUARDFLOW_BENCH_DUMP=10000 target/release/deps/verify-* > v.guardflow
//! ```
//!
//! `phase` is `parse`, `check` (parse, resolve, verify), `full` (check
//! and every task's bounds with a target), `wide` (`full` over one
//! fork-join of N three-step branches), or `maps` (`full` over the
//! program with a map of up to 1,000 items in every block).

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use guardflow::check::check_source;
use guardflow::check::verify::bounds::task_bounds;

const SIZES: [usize; 2] = [10_000, 100_000];

/// 100 actions per task, in 25 blocks `(a ; (b || c) ; d)` in sequence;
/// `b` and `c` read `a`, `d` reads `b`, the next block reads `d`; then
/// the task calls itself on the last artifact (depth 2), with a base
/// method to fall back on.
fn program(n: usize) -> String {
    let mut s = String::from("use std.{non_empty, max_len}\ngenerator g = llm(model: \"m\")\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "action a{i}(x: Text) -> Text {{ :generate g \"step {i}: {{x}}\" :guard non_empty && max_len(4000) :retry 2 :timeout 30s :max-tokens 500 :p 0.8 }}"
        );
    }
    for t in 0..n / 100 {
        let base = t * 100;
        let _ = writeln!(
            s,
            "task t{t}(x: Text) -> Text :max-depth 2 {{\n  method deep {{\n    :subtasks ("
        );
        let mut prev = "x".to_string();
        let mut order = Vec::new();
        for b in 0..25 {
            let k = base + b * 4;
            let l = |j: usize| format!("s{}", b * 4 + j);
            let _ = writeln!(
                s,
                "      {}: a{k}({prev}), {}: a{}({}), {}: a{}({}), {}: a{}({}),",
                l(0),
                l(1),
                k + 1,
                l(0),
                l(2),
                k + 2,
                l(0),
                l(3),
                k + 3,
                l(1)
            );
            order.push(format!("({} ; ({} || {}) ; {})", l(0), l(1), l(2), l(3)));
            prev = l(3);
        }
        let _ = writeln!(s, "      r: t{t}({prev}),\n    )");
        let _ = writeln!(
            s,
            "    :ordering ({} ; r)\n    :result r\n  }}",
            order.join(" ; ")
        );
        let _ = writeln!(
            s,
            "  method base {{\n    :subtasks (b: a{base}(x))\n    :result b\n  }}\n}}"
        );
    }
    s
}

/// Branch counts of the wide fork-join (issue: 20,000 branches took 3.3 s
/// with `--bounds` against 0.07 s for 2,000: quadratic in the width).
const WIDTHS: [usize; 2] = [2_000, 20_000];

/// One task whose one method runs `n` three-step branches side by side:
/// `((a0 ; b0 ; c0) || (a1 ; b1 ; c1) || …)`, each step reading the last.
fn wide(n: usize) -> String {
    let mut s = String::from("use std.{non_empty}\ngenerator g = llm(model: \"m\")\n");
    for step in ["a", "b", "c"] {
        let _ = writeln!(
            s,
            "action {step}(x: Text) -> Text {{ :generate g \"{step}: {{x}}\" :guard non_empty :retry 2 :timeout 30s :max-tokens 500 :p 0.9 }}"
        );
    }
    let _ = writeln!(
        s,
        "task main(x: Text) -> Text {{\n  method fan {{\n    :subtasks ("
    );
    for i in 0..n {
        let _ = writeln!(s, "      a{i}: a(x), b{i}: b(a{i}), c{i}: c(b{i}),");
    }
    s.push_str("    )\n    :ordering (");
    for i in 0..n {
        if i > 0 {
            s.push_str(" || ");
        }
        let _ = write!(s, "(a{i} ; b{i} ; c{i})");
    }
    s.push_str(")\n    :result c0\n  }\n}\n");
    s
}

/// `program(n)` with maps: each task also takes a bounded list
/// `xs: [Text; max 1000]`, and the third step of every block is a map over
/// it, eight items at a time (`s2: for it in xs => a…(it) :parallel 8`), so
/// a quarter of the actions are called through maps of a thousand items,
/// inside recursion. A map's bounds are computed, never expanded: the
/// time must not depend on the bound.
fn maps(n: usize) -> String {
    let mut s = String::from("use std.{non_empty, max_len}\ngenerator g = llm(model: \"m\")\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "action a{i}(x: Text) -> Text {{ :generate g \"step {i}: {{x}}\" :guard non_empty && max_len(4000) :retry 2 :timeout 30s :max-tokens 500 :p 0.8 }}"
        );
    }
    for t in 0..n / 100 {
        let base = t * 100;
        let _ = writeln!(
            s,
            "task t{t}(x: Text, xs: [Text; max 1000]) -> Text :max-depth 2 {{\n  method deep {{\n    :subtasks ("
        );
        let mut prev = "x".to_string();
        let mut order = Vec::new();
        for b in 0..25 {
            let k = base + b * 4;
            let l = |j: usize| format!("s{}", b * 4 + j);
            let _ = writeln!(
                s,
                "      {}: a{k}({prev}), {}: a{}({}), {}: for it in xs => a{}(it) :parallel 8, {}: a{}({}),",
                l(0),
                l(1),
                k + 1,
                l(0),
                l(2),
                k + 2,
                l(3),
                k + 3,
                l(1)
            );
            order.push(format!("({} ; ({} || {}) ; {})", l(0), l(1), l(2), l(3)));
            prev = l(3);
        }
        let _ = writeln!(s, "      r: t{t}({prev}, xs),\n    )");
        let _ = writeln!(
            s,
            "    :ordering ({} ; r)\n    :result r\n  }}",
            order.join(" ; ")
        );
        let _ = writeln!(
            s,
            "  method base {{\n    :subtasks (b: a{base}(x))\n    :result b\n  }}\n}}"
        );
    }
    s
}

fn check_fully(name: &str, src: &str) -> usize {
    let checked = check_source(name, src);
    let program = checked.program.expect("checks");
    let verified = checked.verified.expect("verified");
    let bounds = task_bounds(&program, &verified.graphs, Some(0.99));
    bounds.len()
}

/// `GUARDFLOW_BENCH_RUN=phase:n:iterations`: one phase in a loop, without
/// criterion, for profilers.
fn run_plain(spec: &str) {
    let mut parts = spec.split(':');
    let phase = parts.next().unwrap_or("full").to_string();
    let n: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let iters: usize = parts.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let src = match phase.as_str() {
        "wide" => wide(n),
        "maps" => maps(n),
        _ => program(n),
    };
    let name = format!("verify_{n}.guardflow");
    let start = std::time::Instant::now();
    for _ in 0..iters {
        match phase.as_str() {
            "parse" => drop(black_box(guardflow::syntax::parse(
                guardflow::source::FileId(0),
                black_box(&src),
            ))),
            "check" => drop(black_box(check_source(&name, black_box(&src)))),
            _ => drop(black_box(check_fully(&name, black_box(&src)))),
        }
    }
    eprintln!(
        "{phase} n={n}: {:?} per iteration",
        start.elapsed() / iters.max(1) as u32
    );
}

fn main() {
    if let Ok(n) = std::env::var("GUARDFLOW_BENCH_DUMP") {
        print!("{}", program(n.parse().expect("GUARDFLOW_BENCH_DUMP=N")));
        return;
    }
    if let Ok(spec) = std::env::var("GUARDFLOW_BENCH_RUN") {
        run_plain(&spec);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let test_mode = std::env::args().any(|a| a == "--test");
    let sizes: &[usize] = if test_mode { &SIZES[..1] } else { &SIZES };
    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for &n in sizes {
        let src = program(n);
        let name = format!("verify_{n}.guardflow");
        {
            let checked = check_source(&name, &src);
            let errors: Vec<_> = checked
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .collect();
            assert!(
                errors.is_empty(),
                "the generated program has errors: {:?}",
                errors.first()
            );
            assert_eq!(check_fully(&name, &src), n / 100);
            // where the time goes, once
            let t0 = std::time::Instant::now();
            let (_, errors) = guardflow::syntax::parse(guardflow::source::FileId(9), &src);
            let parse = t0.elapsed();
            assert!(errors.is_empty());
            let t0 = std::time::Instant::now();
            let checked = check_source(&name, &src);
            let check = t0.elapsed();
            let (p, v) = (checked.program.unwrap(), checked.verified.unwrap());
            let t0 = std::time::Instant::now();
            task_bounds(&p, &v.graphs, None);
            let bounds = t0.elapsed();
            let t0 = std::time::Instant::now();
            task_bounds(&p, &v.graphs, Some(0.99));
            let target = t0.elapsed();
            eprintln!(
                "n={n}: parse {parse:?}; check (parse, resolve, verify) {check:?}; bounds {bounds:?}; bounds with --target {target:?}"
            );
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &src, |b, src| {
            b.iter(|| check_fully(&name, black_box(src)))
        });
    }
    group.finish();
    let widths: &[usize] = if test_mode { &WIDTHS[..1] } else { &WIDTHS };
    let mut group = c.benchmark_group("verify_wide_fork_join");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for &n in widths {
        let src = wide(n);
        let name = format!("wide_{n}.guardflow");
        assert_eq!(check_fully(&name, &src), 1, "the wide program checks");
        group.throughput(Throughput::Elements(3 * n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &src, |b, src| {
            b.iter(|| check_fully(&name, black_box(src)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("verify_maps");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    for &n in sizes {
        let src = maps(n);
        let name = format!("maps_{n}.guardflow");
        assert_eq!(check_fully(&name, &src), n / 100, "the map program checks");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &src, |b, src| {
            b.iter(|| check_fully(&name, black_box(src)))
        });
    }
    group.finish();
    c.final_summary();
}
