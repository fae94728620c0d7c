//! Interpreter overhead, fork-join latency and memory per branch.
//!
//! - `chain/100000`: a sequence of 100,000 actions, each one attempt with
//!   an in-process constant generator and a trivial guard: the time per
//!   attempt is the interpreter's own overhead (target: 2 µs median);
//! - `fork_join/1000x10ms`: 1,000 branches whose generator sleeps 10 ms
//!   (target: 20 ms for the whole join);
//! - memory: the bytes allocated per pending branch while 1,000 branches
//!   wait, beyond their artifacts (target: 2 KB), printed once;
//! - `chain_store/{off,on}/10000`: the chain of 10,000 actions without and
//!   with the run store recording it (a fresh run in one SQLite file per
//!   iteration): the difference per element is the store's overhead per
//!   attempt (target: at most 50 µs).
//!
//! `cargo bench --bench runtime`; the store alone: `-- chain_store`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use guardflow::engine::{
    BoxFuture, Engine, GenError, GenRequest, GenResponse, Generator, RunConfig, Verdict, Workflow,
};
use guardflow::runtime::Sink;
use guardflow::store::{RunMeta, Store};

/// Counts live heap bytes, to measure memory per pending branch.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now =
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn program(n: usize, parallel: bool) -> String {
    let mut src = String::from(
        "generator g = constant()\n\
         action step(x: Text) -> Text { :generate g \"go {x}\" :guard ok :retry 0 :timeout 10s }\n\
         task main(x: Text) {\n  method m {\n    :subtasks (",
    );
    for i in 0..n {
        if i > 0 {
            src.push_str(", ");
        }
        src.push_str(&format!("s{i}: step(x)"));
    }
    src.push_str(")\n");
    if parallel {
        src.push_str("    :ordering (");
        let labels: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        src.push_str(&labels.join(" || "));
        src.push_str(")\n");
    }
    src.push_str("  }\n}\n");
    src
}

/// Answers at once, or after `delay`.
struct Constant {
    delay: Option<Duration>,
}

static SLEEPING: AtomicBool = AtomicBool::new(false);

impl Generator for Constant {
    fn generate(&self, _r: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            if let Some(d) = self.delay {
                if SLEEPING.load(Ordering::Relaxed) {
                    // every branch is pending here: sample the heap
                    PEAK.fetch_max(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
                }
                tokio::time::sleep(d).await;
            }
            Ok(GenResponse::text("ok"))
        })
    }
}

fn engine(delay: Option<Duration>) -> Engine {
    let mut e = Engine::bare();
    e.register_guard("ok", "on Text", |_| Verdict::Pass);
    e.register_generator("constant", "()", Constant { delay });
    e
}

fn compile(e: &Engine, n: usize, parallel: bool) -> Workflow {
    match e.compile("bench.guardflow", &program(n, parallel)) {
        Ok(w) => w,
        Err(err) => panic!("{}", err.render(false)),
    }
}

fn chain(c: &mut Criterion) {
    const N: usize = 100_000;
    let e = engine(None);
    let w = compile(&e, N, false);
    let rt = guardflow::engine::runtime().expect("runtime");
    let mut g = c.benchmark_group("chain");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("100000", |b| {
        b.iter(|| {
            let r = rt
                .block_on(e.run(&w, "main", &[("x", "a".into())]))
                .expect("runs");
            assert!(r.success && r.generator_calls == N as u64);
        })
    });
    g.finish();
}

fn fork_join(c: &mut Criterion) {
    const N: usize = 1000;
    let e = engine(Some(Duration::from_millis(10)));
    let w = compile(&e, N, true);
    let rt = guardflow::engine::runtime().expect("runtime");
    // memory: heap growth while every branch waits, per branch
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    SLEEPING.store(true, Ordering::Relaxed);
    let r = rt
        .block_on(e.run(&w, "main", &[("x", "a".into())]))
        .expect("runs");
    SLEEPING.store(false, Ordering::Relaxed);
    assert!(r.success);
    let per_branch = (PEAK.load(Ordering::Relaxed) - base) as f64 / N as f64;
    eprintln!("memory: {per_branch:.0} bytes per pending branch (1000 branches: each branch's future, path and prompt)");
    let mut g = c.benchmark_group("fork_join");
    g.sample_size(20);
    g.bench_function("1000x10ms", |b| {
        b.iter(|| {
            let r = rt
                .block_on(e.run(&w, "main", &[("x", "a".into())]))
                .expect("runs");
            assert!(r.success);
        })
    });
    g.finish();
}

fn chain_store(c: &mut Criterion) {
    const N: usize = 10_000;
    let e = engine(None);
    let w = compile(&e, N, false);
    let rt = guardflow::engine::runtime().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    let config = || RunConfig {
        task: "main".into(),
        inputs: [("x".to_string(), "a".into())].into_iter().collect(),
        replacement: None,
    };
    let mut g = c.benchmark_group("chain_store");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("off/10000", |b| {
        b.iter(|| {
            let r = rt.block_on(e.run_config(&w, config())).expect("runs");
            assert!(r.success && r.generator_calls == N as u64);
        })
    });
    g.bench_function("on/10000", |b| {
        b.iter(|| {
            let mut started = e.start(&w, &config()).expect("starts");
            let mut meta = RunMeta {
                id: String::new(),
                workflow: "bench.guardflow".into(),
                workflow_hash: String::new(),
                task: "main".into(),
                inputs: serde_json::Map::new(),
                replacement: None,
                worst_case_calls: started.worst_case_calls,
                started_ms: 0,
                seed: None,
                bench: None,
            };
            let recorder = Store::open(&db)
                .and_then(|s| s.start_run(&mut meta))
                .expect("store");
            let recorder = Arc::new(recorder);
            started.record_to(recorder.clone());
            let r = rt.block_on(started.execute());
            assert!(r.success && r.generator_calls == N as u64);
            assert!(recorder.failure().is_none(), "{:?}", recorder.failure());
        })
    });
    g.finish();
}

criterion_group!(benches, chain, fork_join, chain_store);
criterion_main!(benches);
