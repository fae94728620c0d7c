//! OpenTelemetry traces of runs: a run's events become spans (`map`, one
//! mapping for live runs and recorded ones) sent over OTLP/HTTP with
//! protobuf (`export`). A run exports as it goes (`Live`, fed by the
//! run's observer: an export that fails never stops the run); `guardflow
//! export RUN --otlp URL` sends a recorded run (`send_run`). The only
//! module that knows the `opentelemetry` crates.

mod export;
pub mod map;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

pub use export::Exporter;
use map::{Ids, Mapper, Models, Span};

/// The standard variables, in the order they are read after `--otlp`.
pub const TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Spans waiting to be sent at most; more are dropped (and counted).
pub const BUFFER: usize = 4096;
/// Spans per request.
pub const BATCH: usize = 512;
/// How long one request may take, and the end of a run waits for the
/// last spans, unless `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds) say otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest those variables may make it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests that fail in a row before a run stops trying.
const GIVE_UP_AFTER: u32 = 3;

/// Where spans go, and what said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The full URL spans are posted to (`…/v1/traces`).
    pub url: String,
    /// `--otlp` or the variable it came from.
    pub from: String,
    /// How long a request may take; the end of a run waits as long for
    /// the last spans.
    pub timeout: Duration,
}

/// The endpoint a run exports to: `--otlp URL` first, then
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the URL as it is), then
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` added); none when unset or
/// when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` (which
/// `--otlp` overrides).
pub fn endpoint(flag: Option<&str>) -> Result<Option<Endpoint>, String> {
    endpoint_from(flag, |k| std::env::var(k).ok())
}

/// [`endpoint`] with the environment given.
pub fn endpoint_from(
    flag: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Endpoint>, String> {
    let set = |k: &str| {
        env(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let timeout = [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|k| set(k)?.parse::<u64>().ok())
    .map_or(TIMEOUT, |ms| {
        Duration::from_millis(ms).clamp(Duration::from_millis(1), MAX_TIMEOUT)
    });
    if let Some(url) = flag {
        return Ok(Some(Endpoint {
            url: traces_url(url, "--otlp")?,
            from: "--otlp".into(),
            timeout,
        }));
    }
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    if let Some(url) = set(TRACES_ENDPOINT_VAR) {
        check_url(&url, TRACES_ENDPOINT_VAR)?;
        return Ok(Some(Endpoint {
            url,
            from: TRACES_ENDPOINT_VAR.into(),
            timeout,
        }));
    }
    if let Some(base) = set(ENDPOINT_VAR) {
        return Ok(Some(Endpoint {
            url: traces_url(&base, ENDPOINT_VAR)?,
            from: ENDPOINT_VAR.into(),
            timeout,
        }));
    }
    Ok(None)
}

/// A base URL with `/v1/traces` added, unless it ends so already.
fn traces_url(base: &str, from: &str) -> Result<String, String> {
    let base = base.trim();
    check_url(base, from)?;
    if base.trim_end_matches('/').ends_with("/v1/traces") {
        return Ok(base.to_string());
    }
    Ok(format!("{}/v1/traces", base.trim_end_matches('/')))
}

fn check_url(url: &str, from: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err(format!(
            "{from}: `{url}` is not an OTLP/HTTP endpoint; write it as http://HOST:PORT \
             (the collector's OTLP/HTTP port, 4318 by default)"
        )),
    }
}

/// A run exporting its spans as it goes: fed every event by the run's
/// observer, it maps them and hands the finished spans to a thread that
/// sends them in batches. Nothing it does can fail or stop the run: a
/// failed request is said once on stderr, a full buffer drops spans, and
/// [`Live::finish`] waits at most the endpoint's timeout.
pub struct Live {
    mapper: Mutex<Mapper>,
    queue: Mutex<Option<SyncSender<Span>>>,
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    endpoint: Endpoint,
}

/// What the run and the sending thread share.
struct Shared {
    warned: AtomicBool,
    dropped: AtomicU64,
    sent: AtomicU64,
}

impl Shared {
    /// Says `what` on stderr, unless something was said already.
    fn warn(&self, what: &str) {
        if !self.warned.swap(true, Ordering::SeqCst) {
            eprintln!("warning: OpenTelemetry: {what}");
        }
    }
}

impl Live {
    /// Starts the sending thread. The run's id is given later
    /// ([`Live::identify`]), before its first event.
    pub fn start(endpoint: Endpoint, models: Models, content: bool) -> Live {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Span>(BUFFER);
        let shared = Arc::new(Shared {
            warned: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            sent: AtomicU64::new(0),
        });
        let thread = {
            let (shared, endpoint) = (shared.clone(), endpoint.clone());
            std::thread::Builder::new()
                .name("guardflow-otlp".into())
                .spawn(move || send_loop(rx, &endpoint, &shared))
                .ok()
        };
        if thread.is_none() {
            shared
                .warn("could not start the thread that sends spans; the run goes on without them");
        }
        let ids = Ids::for_run(&unrecorded_id(), "");
        Live {
            mapper: Mutex::new(Mapper::new(ids, None, models, content)),
            queue: Mutex::new(thread.as_ref().map(|_| tx)),
            shared,
            thread: Mutex::new(thread),
            endpoint,
        }
    }

    /// The run's id (its trace id comes from it); `resumed` for a process
    /// that resumes it, whose spans stand beside the earlier ones'.
    pub fn identify(&self, run_id: &str, resumed: bool) {
        let salt = if resumed {
            format!("resumed at {}", crate::store::now_ms())
        } else {
            String::new()
        };
        self.mapper()
            .identify(Ids::for_run(run_id, &salt), Some(run_id.to_string()));
    }

    fn mapper(&self) -> MutexGuard<'_, Mapper> {
        self.mapper.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One event of the run, now.
    pub fn event(&self, event: &crate::runtime::Event) {
        let Ok(value) = serde_json::to_value(event) else {
            return;
        };
        let spans = {
            let mut m = self.mapper();
            m.event(SystemTime::now(), &value);
            m.take()
        };
        self.queue(spans);
    }

    fn queue(&self, spans: Vec<Span>) {
        if spans.is_empty() {
            return;
        }
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = queue.as_ref() else {
            self.shared
                .dropped
                .fetch_add(spans.len() as u64, Ordering::Relaxed);
            return;
        };
        for span in spans {
            match tx.try_send(span) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Ends what is still open, sends what is left and waits for it at
    /// most the endpoint's timeout; says once what was not sent.
    pub fn finish(&self) {
        let timeout = self.endpoint.timeout;
        let spans = {
            let mut m = self.mapper();
            m.finish();
            m.take()
        };
        self.queue(spans);
        // the thread sends what is queued, then ends
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = thread {
            let deadline = Instant::now() + timeout;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            } else {
                self.shared.warn(&format!(
                    "the last spans were not sent to {} within {} ms; they are dropped",
                    self.endpoint.url,
                    timeout.as_millis()
                ));
                return;
            }
        }
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            self.shared.warn(&format!(
                "{dropped} spans were not sent to {} (more than {BUFFER} waited at once)",
                self.endpoint.url
            ));
        }
    }

    /// Spans the receiving end accepted so far.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }
}

/// The sending thread: batches of up to [`BATCH`] spans, sent when full,
/// when no span came for half a second, and at the end. After
/// [`GIVE_UP_AFTER`] failed requests in a row it only drops what comes.
fn send_loop(rx: Receiver<Span>, endpoint: &Endpoint, shared: &Shared) {
    let exporter = match Exporter::new(&endpoint.url, endpoint.timeout) {
        Ok(e) => Some(e),
        Err(e) => {
            shared.warn(&format!("{e}; the run goes on without sending spans"));
            None
        }
    };
    let mut batch: Vec<Span> = Vec::new();
    let mut failures = 0u32;
    let mut send = |batch: &mut Vec<Span>| {
        let spans = std::mem::take(batch);
        let n = spans.len() as u64;
        match &exporter {
            Some(x) if failures < GIVE_UP_AFTER => match x.send(spans) {
                Ok(()) => {
                    failures = 0;
                    shared.sent.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    failures += 1;
                    shared.dropped.fetch_add(n, Ordering::Relaxed);
                    shared.warn(&format!(
                        "cannot send spans to {} (from {}): {e}; the run goes on without them",
                        endpoint.url, endpoint.from
                    ));
                }
            },
            _ => {
                shared.dropped.fetch_add(n, Ordering::Relaxed);
            }
        }
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(span) => {
                batch.push(span);
                if batch.len() >= BATCH {
                    send(&mut batch);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if !batch.is_empty() {
                    send(&mut batch);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if !batch.is_empty() {
                    send(&mut batch);
                }
                break;
            }
        }
    }
}

/// An id for a run that is not recorded: its trace's, unique enough.
fn unrecorded_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("unrecorded-{}-{nanos}", std::process::id())
}

/// Sends a recorded run: its events as `Store::events` gives them (each
/// with `at_ms`), through the same mapping as a live run. Returns the
/// number of spans sent.
pub fn send_run(
    exporter: &Exporter,
    run_id: &str,
    events: &[serde_json::Value],
    models: Models,
    content: bool,
) -> Result<usize, String> {
    let mut mapper = Mapper::new(
        Ids::for_run(run_id, ""),
        Some(run_id.to_string()),
        models,
        content,
    );
    let mut batch = Vec::new();
    let mut sent = 0;
    let at = |e: &serde_json::Value| {
        let ms = e
            .get("at_ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    };
    for e in events {
        mapper.event(at(e), e);
        batch.append(&mut mapper.take());
        if batch.len() >= BATCH {
            sent += batch.len();
            exporter.send(std::mem::take(&mut batch))?;
        }
    }
    mapper.finish();
    batch.append(&mut mapper.take());
    if !batch.is_empty() {
        sent += batch.len();
        exporter.send(batch)?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests;
