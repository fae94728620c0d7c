//! `guardflow bench`'s trial runner against a loopback OpenAI-compatible
//! server that answers every request after 50 ms: 2,000 one-action
//! trials at concurrency 100, each recorded in a store. The bound is the
//! server's: 100 / 0.05 s = 2,000 calls/s. Each round first measures what
//! the server itself serves to a plain client (reqwest, 100 keep-alive
//! connections, no store), then guardflow's rate as a share of the lower
//! of the two; and the growth of the peak resident memory over the bench.
//!
//! `cargo bench --bench bench_throughput`; with `-- --serve PORT` it only
//! serves (for `benches/httpx_client.py`, the Python client on the same
//! server).

use std::time::{Duration, Instant};

use criterion::Criterion;
use futures::StreamExt;
use guardflow::bench::{Arm, Bench};
use guardflow::engine::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const DELAY: Duration = Duration::from_millis(50);
const TRIALS: u64 = 2000;
const CONCURRENCY: usize = 100;
const BOUND: f64 = CONCURRENCY as f64 / 0.05;

const ANSWER: &str = r#"{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"DONE"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;

/// One connection: requests answered in turn after `DELAY` (a timer, no
/// thread waits), kept alive.
async fn serve_connection(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n{ANSWER}",
        ANSWER.len()
    );
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        tokio::time::sleep(DELAY).await;
        if writer.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Serves `listener` on a thread of its own (a runtime of its own, so
/// the bench's thread does not serve), a task per connection.
fn serve(listener: std::net::TcpListener) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the server's runtime");
        rt.block_on(async move {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = TcpListener::from_std(listener).expect("listener");
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve_connection(stream));
                }
            }
        })
    })
}

/// What the server serves to a plain client on the bench's kind of
/// runtime: `TRIALS` chat completions, `CONCURRENCY` at once over
/// keep-alive connections, in calls/s.
fn reference_rate(port: u16) -> f64 {
    let rt = guardflow::engine::runtime().expect("runtime");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let body = r#"{"model":"m","messages":[{"role":"user","content":"Say DONE."}]}"#;
    rt.block_on(async {
        let t0 = Instant::now();
        let answered = futures::stream::iter(0..TRIALS)
            .map(|_| {
                let (client, url) = (&client, &url);
                async move {
                    let r = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("the server answers");
                    r.text().await.expect("a body").contains("DONE")
                }
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await;
        assert_eq!(answered as u64, TRIALS);
        TRIALS as f64 / t0.elapsed().as_secs_f64()
    })
}

/// Kilobytes of a `/proc/self/status` line (`VmHWM`, `VmRSS`).
fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        let port = args.get(i + 1).map_or("8931", String::as_str);
        let listener = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).expect("binds");
        eprintln!("serving on 127.0.0.1:{port}, answering after {DELAY:?}");
        let _ = serve(listener).join();
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("address").port();
    let _server = serve(listener);

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("one.guardflow");
    std::fs::write(
        &file,
        format!(
            "use std.{{contains}}\n\
             generator m = llm(model: \"m\", base_url: \"http://127.0.0.1:{port}\", max_concurrent: {CONCURRENCY}, timeout: 60s)\n\
             action solve() -> Text {{\n  :generate m \"Say DONE.\"\n  :guard contains(\"DONE\")\n  :retry 0\n  :timeout 60s\n}}\n\
             task one() -> Text {{\n  method only {{\n    :subtasks ( s: solve() )\n    :result s\n  }}\n}}\n"
        ),
    )
    .expect("writes");
    let engine = Engine::new();
    let workflow = engine.compile_file(&file).expect("checks");
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    let mut round = 0u64;
    criterion.bench_function(
        "bench: 2,000 one-action trials, concurrency 100, 50 ms server",
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let reference = reference_rate(port);
                    let bench = Bench {
                        id: format!("throughput-{round}"),
                        file: file.clone(),
                        declared: String::new(),
                        task: "one".into(),
                        inputs: Default::default(),
                        models: vec![String::new()],
                        arms: vec![Arm::parse("one").expect("arm")],
                        trials: TRIALS,
                        seed: 0,
                        concurrency: CONCURRENCY,
                    };
                    let cells = bench.cells(&workflow).expect("cells");
                    let store = dir.path().join(format!("runs-{round}.db"));
                    let rt = guardflow::engine::runtime().expect("runtime");
                    // the peak from here on
                    let _ = std::fs::write("/proc/self/clear_refs", "5");
                    let before = status_kb("VmRSS:");
                    let t0 = Instant::now();
                    let outcome = rt
                        .block_on(guardflow::bench::run(
                            &engine,
                            &bench,
                            &cells,
                            &store,
                            &|_| {},
                        ))
                        .expect("the bench runs");
                    let took = t0.elapsed();
                    let peak = status_kb("VmHWM:");
                    assert_eq!(outcome.started, TRIALS);
                    let rate = TRIALS as f64 / took.as_secs_f64();
                    eprintln!(
                    "  {TRIALS} trials in {:.2} s: {rate:.0} calls/s; the server serves a plain \
                     client {reference:.0} calls/s: {:.0} % of min(2000, {reference:.0}); \
                     peak RSS +{:.1} MB",
                    took.as_secs_f64(),
                    100.0 * rate / BOUND.min(reference),
                    peak.saturating_sub(before) as f64 / 1024.0
                );
                    let _ = std::fs::remove_file(&store);
                    total += took;
                }
                total
            })
        },
    );
    criterion.final_summary();
}
