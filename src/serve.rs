//! `guardflow serve`: a local, read-only web view of a run store (axum on
//! the tokio runtime the runs use).
//!
//! - `GET /`: the runs, newest first, filtered by `?workflow=`,
//!   `?status=` and `?bench=`; a bench's trials show their bench, arm,
//!   model and trial;
//! - `GET /runs/{id}`: the run's report page (the `report` module's);
//! - `GET /runs/{id}/events`: server-sent events: the run's events after
//!   `?after=SEQ` (or the `Last-Event-ID` a reconnecting browser sends),
//!   each as it is recorded (the store is polled), then `end` once the run
//!   is no longer running;
//! - `GET /bench/{name}`: the bench's page (the `report` module's);
//! - `GET /bench/{name}/events`: server-sent events while its trials
//!   run: one each time more trials have finished (after `?after=N`
//!   finished), then `end` once none has run for a second.
//!
//! Only GET (and HEAD); every request opens the store read-only, so the
//! server never writes a file. It binds loopback unless told otherwise
//! (`check_bind`), and then answers only requests addressed to a
//! loopback name (`Host`), so a web page elsewhere cannot reach it by DNS
//! rebinding.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

use crate::report::{self, escape};
use crate::store::{BenchTag, RunLock, Store, StoreError};

/// How often a running run's events are looked for.
pub const POLL: Duration = Duration::from_millis(250);

/// What the server serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The store's database file.
    pub store: PathBuf,
    /// Requests to other names than loopback ones are answered too.
    pub allow_remote: bool,
}

/// Refuses an address that is not loopback unless `allow_remote`.
pub fn check_bind(ip: IpAddr, allow_remote: bool) -> Result<(), String> {
    if ip.is_loopback() || allow_remote {
        Ok(())
    } else {
        Err(format!(
            "refusing to serve on {ip}: that address is reachable from other machines, and the \
             pages show every prompt and output of the store; bind a loopback address \
             (127.0.0.1, the default) or pass --allow-remote"
        ))
    }
}

/// The application: its routes over the store in `config`.
pub fn router(config: Config) -> Router {
    let config = Arc::new(config);
    Router::new()
        .route("/", get(list))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/events", get(events))
        .route("/bench/{name}", get(bench_page))
        .route("/bench/{name}/events", get(bench_events))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            config.clone(),
            only_loopback_names,
        ))
        .with_state(config)
}

/// Every request, the unknown ones included, is refused unless it is
/// addressed to this machine by a loopback name (see [`host_ok`]).
async fn only_loopback_names(
    State(config): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !host_ok(&config, request.headers()) {
        return wrong_host();
    }
    next.run(request).await
}

/// Serves `router(config)` on `listener` until `shutdown` completes;
/// then open connections are dropped (an event stream of a running run
/// would otherwise keep a graceful shutdown waiting for ever).
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::select! {
        r = axum::serve(listener, router(config)).into_future() => r,
        () = shutdown => Ok(()),
    }
}

type Shared = Arc<Config>;

/// Whether a request is addressed to this machine by a loopback name.
fn host_ok(config: &Config, headers: &HeaderMap) -> bool {
    if config.allow_remote {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn page(status: StatusCode, csp: &str, body: String) -> Response {
    let mut r = (status, Html(body)).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A page with only a message.
fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(
        status,
        report::CSP,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>{}</title>\
             <style>{}</style></head><body><main><p class=\"back\"><a href=\"/\">← all runs</a></p>\
             <h1>{}</h1><p>{}</p></main></body></html>\n",
            escape(title),
            report::CSS,
            escape(title),
            escape(text)
        ),
    )
}

fn wrong_host() -> Response {
    message(
        StatusCode::MISDIRECTED_REQUEST,
        "not served to this name",
        "this server answers requests to a loopback name (localhost, 127.0.0.1, [::1]) only; \
         start it with --allow-remote to serve other names",
    )
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NoSuchRun { .. } => {
            message(StatusCode::NOT_FOUND, "no such run", &e.to_string())
        }
        e => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the store cannot be read",
            &e.to_string(),
        ),
    }
}

async fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "not found",
        "there is no such page here",
    )
}

/// Runs `f` on a blocking thread (the store is SQLite).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

#[derive(Debug, Deserialize, Default)]
struct ListQuery {
    workflow: Option<String>,
    status: Option<String>,
    bench: Option<String>,
}

/// What the runs list shows besides the runs: each bench trial's tag,
/// the benches.
struct Benches {
    tags: HashMap<String, BenchTag>,
    names: Vec<String>,
}

async fn list(State(config): State<Shared>, Query(q): Query<ListQuery>) -> Response {
    let path = config.store.clone();
    let read = blocking(move || {
        let s = Store::open_read(&path)?;
        let benches = Benches {
            tags: s.bench_tags()?,
            names: s.benches()?,
        };
        Ok::<_, StoreError>((s.runs()?, benches))
    })
    .await;
    match read {
        Some(Ok((runs, benches))) => page(
            StatusCode::OK,
            report::CSP,
            runs_page(&config.store, &runs, &benches, &q),
        ),
        Some(Err(e)) => store_error(e),
        None => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            "the store reader stopped",
        ),
    }
}

fn runs_page(
    store: &Path,
    runs: &[crate::store::read::RunSummary],
    benches: &Benches,
    q: &ListQuery,
) -> String {
    let want = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
    let (workflow, status, bench) = (want(&q.workflow), want(&q.status), want(&q.bench));
    // the bench columns, when the store has benches
    let with_benches = !benches.names.is_empty();
    let workflows: BTreeSet<&str> = runs.iter().map(|r| r.workflow.as_str()).collect();
    let options = |all: &str, values: &[&str], chosen: &Option<String>| {
        let mut s = format!("<option value=\"\">{all}</option>");
        for v in values {
            s.push_str(&format!(
                "<option value=\"{0}\"{1}>{0}</option>",
                escape(v),
                if chosen.as_deref() == Some(*v) {
                    " selected"
                } else {
                    ""
                }
            ));
        }
        s
    };
    let workflows: Vec<&str> = workflows.into_iter().collect();
    let mut rows = String::new();
    let mut shown = 0;
    for r in runs.iter().rev() {
        let tag = benches.tags.get(&r.id);
        if workflow.as_ref().is_some_and(|w| *w != r.workflow)
            || status.as_ref().is_some_and(|s| *s != r.status)
            || bench
                .as_ref()
                .is_some_and(|b| tag.is_none_or(|t| t.id != *b))
        {
            continue;
        }
        shown += 1;
        let calls = match r.worst_case_calls {
            Some(w) => format!("{} / {w}", r.calls),
            None => r.calls.to_string(),
        };
        let bench_cells = match (with_benches, tag) {
            (false, _) => String::new(),
            (true, None) => "<td></td><td></td><td></td><td></td>".to_string(),
            (true, Some(t)) => format!(
                "<td class=\"bench\"><a href=\"/bench/{}\">{}</a></td><td class=\"arm\">{}</td>\
                 <td class=\"model\">{}</td><td class=\"trial\">{}</td>",
                report::url_segment(&t.id),
                escape(&t.id),
                escape(&t.arm),
                escape(crate::bench::model_label(&t.model)),
                t.trial
            ),
        };
        rows.push_str(&format!(
            "<tr class=\"run s-{st}\"><td><a href=\"/runs/{href}\">{id}</a></td><td>{}</td><td>{}</td>\
             <td><span class=\"st\">{st}</span></td><td>{}</td><td>{}</td><td>{}</td>{bench_cells}</tr>",
            crate::store::utc_time(r.started_ms),
            escape(&r.task),
            crate::cli::bounds::duration(r.duration_ms.max(0) as u64),
            escape(&calls),
            escape(&r.workflow),
            id = escape(&r.id),
            href = report::url_segment(&r.id),
            st = escape(&r.status),
        ));
    }
    let names: Vec<&str> = benches.names.iter().map(String::as_str).collect();
    let (bench_filter, bench_heads) = if with_benches {
        (
            format!(
                "<label>bench <select name=\"bench\">{}</select></label>",
                options("all", &names, &bench)
            ),
            "<th>bench</th><th>arm</th><th>model</th><th>trial</th>",
        )
    } else {
        (String::new(), "")
    };
    let bench_link = match &bench {
        Some(b) if benches.names.contains(b) => format!(
            "<p class=\"bench-link\"><a href=\"/bench/{}\">bench {}: results and charts →</a></p>",
            report::url_segment(b),
            escape(b)
        ),
        _ => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\
         <link rel=\"icon\" href=\"data:,\"><title>guardflow runs</title><style>{}</style></head><body><main>\
         <h1>guardflow runs</h1><p class=\"legend\">{}: {} of {} runs shown (read-only)</p>\
         <form class=\"filters\" method=\"get\" action=\"/\"><label>workflow <select name=\"workflow\">{}\
         </select></label><label>status <select name=\"status\">{}</select></label>{bench_filter}\
         <button type=\"submit\">filter</button></form>{bench_link}\
         <table class=\"runs\"><thead><tr><th>run</th><th>started (UTC)</th><th>task</th>\
         <th>status</th><th>duration</th><th>calls</th><th>workflow</th>{bench_heads}</tr></thead>\
         <tbody>{rows}</tbody></table></main></body></html>\n",
        report::CSP,
        report::CSS,
        escape(&store.display().to_string()),
        shown,
        runs.len(),
        options("all", &workflows, &workflow),
        options(
            "all",
            &["succeeded", "failed", "running", "interrupted"],
            &status
        ),
    )
}

async fn run_page(State(config): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let path = config.store.clone();
    let read = blocking(move || {
        let store = Store::open_read(&path)?;
        let data = report::load(&store, &id)?;
        let events_url = (data.status == "running").then(|| format!("/runs/{id}/events"));
        let options = report::Options {
            served: Some(report::Served {
                list_url: "/".to_string(),
                events_url,
            }),
        };
        Ok::<_, StoreError>(report::render(&data, &options))
    })
    .await;
    match read {
        Some(Ok(html)) => page(StatusCode::OK, report::CSP_SERVED, html),
        Some(Err(e)) => store_error(e),
        None => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            "the store reader stopped",
        ),
    }
}

async fn bench_page(State(config): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let path = config.store.clone();
    let read = blocking(move || {
        let store = Store::open_read(&path)?;
        let Some(data) = report::load_bench(&store, &name)? else {
            return Ok(Err(store.benches()?));
        };
        let segment = report::url_segment(&name);
        let options = report::BenchOptions {
            served: Some(report::BenchServed {
                list_url: format!("/?bench={segment}"),
                events_url: (data.running > 0).then(|| format!("/bench/{segment}/events")),
                run_url: "/runs/".to_string(),
            }),
            running: data.running,
        };
        Ok::<_, StoreError>(Ok(report::render_bench(&data, &options)))
    })
    .await;
    match read {
        Some(Ok(Ok(html))) => page(StatusCode::OK, report::CSP_SERVED, html),
        Some(Ok(Err(known))) => message(
            StatusCode::NOT_FOUND,
            "no such bench",
            &if known.is_empty() {
                "the store has no bench".to_string()
            } else {
                format!("the store has no such bench; it has: {}", known.join(", "))
            },
        ),
        Some(Err(e)) => store_error(e),
        None => message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            "the store reader stopped",
        ),
    }
}

/// Polls in a row with no trial running before a bench's stream ends: a
/// bench starts its next trial as one finishes, so a moment between
/// trials is not its end.
const BENCH_IDLE_POLLS: u32 = 4;

/// One follower of a bench's progress.
struct BenchFollow {
    store: PathBuf,
    name: String,
    /// Finished trials the follower has been told of.
    last: u64,
    idle: u32,
    done: bool,
    first: bool,
}

/// `/bench/{name}/events`: `event` (id and data: the finished trials,
/// data also the trials and those running) each time more trials have
/// finished than `?after=N` or the last one said; `end` once no trial
/// has run for [`BENCH_IDLE_POLLS`] polls.
async fn bench_events(
    State(config): State<Shared>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let last = q.last_seen(&headers).max(0) as u64;
    let (path, bench) = (config.store.clone(), name.clone());
    match blocking(move || Store::open_read(&path).and_then(|s| s.bench_progress(&bench))).await {
        Some(Ok(p)) if p.trials > 0 => {}
        Some(Ok(_)) => {
            return message(
                StatusCode::NOT_FOUND,
                "no such bench",
                "the store has no such bench",
            )
        }
        Some(Err(e)) => return store_error(e),
        None => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed",
                "the store reader stopped",
            )
        }
    }
    let follow = BenchFollow {
        store: config.store.clone(),
        name,
        last,
        idle: 0,
        done: false,
        first: true,
    };
    let stream = futures::stream::unfold(follow, |mut f| async move {
        loop {
            if f.done {
                return None;
            }
            if !f.first {
                tokio::time::sleep(POLL).await;
            }
            f.first = false;
            let (store, name) = (f.store.clone(), f.name.clone());
            let p = match blocking(move || Store::open_read(&store)?.bench_progress(&name)).await {
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    f.done = true;
                    return Some((
                        Ok::<_, Infallible>(
                            SseEvent::default().event("end").data(format!("error: {e}")),
                        ),
                        f,
                    ));
                }
                None => {
                    f.done = true;
                    return Some((
                        Ok(SseEvent::default()
                            .event("end")
                            .data("error: the store reader stopped")),
                        f,
                    ));
                }
            };
            f.idle = if p.running == 0 { f.idle + 1 } else { 0 };
            if p.finished != f.last {
                f.last = p.finished;
                let data = serde_json::json!({
                    "finished": p.finished, "trials": p.trials, "running": p.running
                });
                let event = SseEvent::default()
                    .event("event")
                    .id(p.finished.to_string())
                    .data(data.to_string());
                return Some((Ok(event), f));
            }
            if f.idle >= BENCH_IDLE_POLLS {
                f.done = true;
                return Some((Ok(SseEvent::default().event("end").data("finished")), f));
            }
        }
    });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[derive(Debug, Deserialize, Default)]
struct EventsQuery {
    after: Option<i64>,
}

impl EventsQuery {
    /// The last event a follower has: its `Last-Event-ID` (a reconnected
    /// `EventSource`), else `?after=N`, else none (0).
    fn last_seen(&self, headers: &HeaderMap) -> i64 {
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .or(self.after)
            .unwrap_or(0)
    }
}

/// One follower of a run's events.
struct Follow {
    store: PathBuf,
    id: String,
    last: i64,
    queue: VecDeque<Value>,
    /// The run is no longer running: say `end` once the queue is empty.
    ending: Option<String>,
    done: bool,
    first: bool,
}

/// The events after `last`, and whether the run still runs.
fn poll(store: &Path, id: &str, last: i64) -> Result<(Vec<Value>, Option<String>), StoreError> {
    let s = Store::open_read(store)?;
    let events: Vec<Value> = s
        .events(id)?
        .into_iter()
        .filter(|e| e.get("seq").and_then(Value::as_i64).unwrap_or(0) > last)
        .collect();
    let ended = match s.finished(id)? {
        Some(true) => Some("succeeded".to_string()),
        Some(false) => Some("failed".to_string()),
        None if RunLock::held(store, id) => None,
        None => Some("interrupted".to_string()),
    };
    Ok((events, ended))
}

async fn events(
    State(config): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let last = q.last_seen(&headers);
    // the run must exist before the stream starts
    let (path, run) = (config.store.clone(), id.clone());
    match blocking(move || Store::open_read(&path).and_then(|s| s.run_meta(&run))).await {
        Some(Ok(_)) => {}
        Some(Err(e)) => return store_error(e),
        None => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed",
                "the store reader stopped",
            )
        }
    }
    let follow = Follow {
        store: config.store.clone(),
        id,
        last,
        queue: VecDeque::new(),
        ending: None,
        done: false,
        first: true,
    };
    let stream = futures::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(e) = f.queue.pop_front() {
                let seq = e.get("seq").and_then(Value::as_i64).unwrap_or(0);
                let event = SseEvent::default()
                    .event("event")
                    .id(seq.to_string())
                    .data(e.to_string());
                return Some((Ok::<_, Infallible>(event), f));
            }
            if f.done {
                return None;
            }
            if let Some(status) = f.ending.take() {
                f.done = true;
                return Some((Ok(SseEvent::default().event("end").data(status)), f));
            }
            if !f.first {
                tokio::time::sleep(POLL).await;
            }
            f.first = false;
            let (store, id, last) = (f.store.clone(), f.id.clone(), f.last);
            match blocking(move || poll(&store, &id, last)).await {
                Some(Ok((events, ended))) => {
                    for e in events {
                        f.last = f
                            .last
                            .max(e.get("seq").and_then(Value::as_i64).unwrap_or(0));
                        f.queue.push_back(e);
                    }
                    f.ending = ended;
                }
                Some(Err(e)) => f.ending = Some(format!("error: {e}")),
                None => f.ending = Some("error: the store reader stopped".to_string()),
            }
        }
    });
    let mut r = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_binds_without_the_flag() {
        assert!(check_bind("127.0.0.1".parse().unwrap(), false).is_ok());
        assert!(check_bind("::1".parse().unwrap(), false).is_ok());
        let e = check_bind("0.0.0.0".parse().unwrap(), false).unwrap_err();
        assert!(e.contains("--allow-remote"), "{e}");
        assert!(check_bind("192.0.2.1".parse().unwrap(), false).is_err());
        assert!(check_bind("0.0.0.0".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn only_loopback_names_are_answered() {
        let config = Config {
            store: PathBuf::new(),
            allow_remote: false,
        };
        let with = |h: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_str(h).unwrap());
            host_ok(&config, &m)
        };
        assert!(with("127.0.0.1:8080"));
        assert!(with("localhost:1"));
        assert!(with("[::1]:99"));
        assert!(with("LOCALHOST"));
        assert!(!with("evil.example:8080"));
        assert!(!with("192.0.2.1"));
        assert!(host_ok(&config, &HeaderMap::new()));
    }
}
