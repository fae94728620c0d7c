//! `guardflow serve` through the binary: the runs list and a run's page
//! in a real headless browser, a running run followed live (server-sent
//! events of events appended while connected, the page updating), and
//! what it refuses: other addresses, other names, anything but GET.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guardflow::runtime::sink::Sink;
use guardflow::runtime::{AttemptRecord, Event, VerdictKind};
use guardflow::store::{RunMeta, Store};
use serde_json::json;

use crate::report::{assert_clean, Fx};
use crate::support::bin;
use crate::support::browser::{artifacts, Browser};

/// A `guardflow serve` process on a free loopback port.
pub struct Server {
    child: Child,
    pub addr: String,
}

impl Server {
    pub fn start(db: &Path) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--port", "0", "--store"])
            .arg(db)
            .env_remove("GUARDFLOW_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("guardflow serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve prints its address");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// One request; the status line and the whole answer.
    pub fn request(&self, method: &str, path: &str, host: &str) -> (String, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .expect("send");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        let status = answer.lines().next().unwrap_or("").to_string();
        (status, answer)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_runs_list_and_a_run_page_in_a_browser() {
    let fx = Fx::new();
    let run = fx.planning_run();
    let before = std::fs::read(fx.db()).expect("the store");
    let server = Server::start(&fx.db());
    let mut b = Browser::start();
    b.open(&server.url("/"));
    assert_clean(&mut b, "the runs list");
    assert_eq!(
        b.eval("[...document.querySelectorAll('table.runs tbody tr a')].map(a => a.textContent)"),
        json!([run])
    );
    b.screenshot(&artifacts().join("serve-list.png"));
    // filters
    b.open(&server.url("/?status=failed"));
    assert_eq!(
        b.eval("document.querySelectorAll('table.runs tbody tr').length"),
        json!(0)
    );
    b.open(&server.url("/?status=succeeded&workflow="));
    assert_eq!(
        b.eval("document.querySelectorAll('table.runs tbody tr').length"),
        json!(1)
    );
    // the run's page: the report
    b.eval("document.querySelector('table.runs tbody tr a').click(), true");
    assert!(b.wait_for(
        "document.querySelectorAll('svg.timeline g.attempt').length === 4",
        Duration::from_secs(30)
    ));
    assert_eq!(b.eval("location.pathname"), json!(format!("/runs/{run}")));
    assert_eq!(
        b.eval("document.querySelector('#report').hasAttribute('data-events')"),
        json!(false),
        "a finished run is not followed"
    );
    assert_clean(&mut b, "the run page");
    b.screenshot(&artifacts().join("serve-run.png"));
    drop(b);
    drop(server);
    assert!(
        std::fs::read(fx.db()).expect("the store") == before,
        "the server changed the store"
    );
}

fn attempt(path: &str, n: u32, verdict: VerdictKind, output: &str) -> Event {
    Event::Attempt(Box::new(AttemptRecord {
        path: path.into(),
        action: "plan".into(),
        attempt: n,
        prompt: format!("prompt {n}"),
        role: None,
        output: Some(output.into()),
        verdict,
        feedback: if verdict == VerdictKind::Pass {
            String::new()
        } else {
            "not yet".into()
        },
        tokens: Some(3),
        prompt_tokens: None,
        outcome: None,
        guarded: true,
        generate_ms: 5,
        guard_ms: 1,
        provider: None,
    }))
}

fn started(path: &str, n: u32) -> Event {
    let action = if path.ends_with("/r") {
        "write_runbook"
    } else {
        "plan"
    };
    Event::AttemptStarted {
        path: path.into(),
        action: action.into(),
        occurrence: 1,
        index: n,
        attempt: n,
        prompt: format!("prompt {n}"),
        role: None,
    }
}

/// Reads the event stream until `want` is in it (or 30 s passed).
fn read_until(stream: &mut TcpStream, seen: &mut String, want: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    while !seen.contains(want) && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return seen.contains(want),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return false,
        }
    }
    seen.contains(want)
}

/// A run of the planning example that is running: its recorder, held
/// by the caller, has recorded a rejected first attempt.
fn running_run(db: &Path) -> (RunMeta, guardflow::store::Recorder) {
    let workflow = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/planning.guardflow");
    let text = std::fs::read(&workflow).expect("the example");
    let mut meta = RunMeta {
        id: String::new(),
        workflow: workflow.display().to_string(),
        workflow_hash: guardflow::store::content_hash(&text),
        task: "prepare".into(),
        inputs: serde_json::Map::new(),
        replacement: None,
        worst_case_calls: Some(6),
        started_ms: guardflow::store::now_ms(),
        seed: None,
        bench: None,
    };
    let recorder = Store::open(db)
        .and_then(|s| s.start_run(&mut meta))
        .expect("a run");
    let p = "prepare/plan_then_runbook/p";
    for e in [
        Event::RunStarted {
            task: "prepare".into(),
            worst_case_calls: Some(6),
        },
        Event::TaskStarted {
            path: "prepare".into(),
            task: "prepare".into(),
        },
        Event::MethodStarted {
            path: "prepare/plan_then_runbook".into(),
            method: "plan_then_runbook".into(),
        },
        Event::ActionStarted {
            path: p.into(),
            action: "plan".into(),
        },
        started(p, 1),
        attempt(p, 1, VerdictKind::Fail, "first"),
    ] {
        recorder.record(&e);
    }
    (meta, recorder)
}

#[test]
fn a_running_run_is_followed_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    let (meta, recorder) = running_run(&db);
    let p = "prepare/plan_then_runbook/p";
    let server = Server::start(&db);
    let last = Store::open_read(&db)
        .and_then(|s| s.events(&meta.id))
        .expect("the events")
        .last()
        .and_then(|e| e["seq"].as_i64())
        .expect("a last event");

    // the event stream, from the last event the page would have
    let mut sse = TcpStream::connect(&server.addr).expect("connect");
    sse.set_read_timeout(Some(Duration::from_millis(200))).ok();
    write!(
        sse,
        "GET /runs/{}/events?after={last} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        meta.id
    )
    .expect("send");
    let mut seen = String::new();
    assert!(
        read_until(&mut sse, &mut seen, "text/event-stream"),
        "{seen}"
    );
    recorder.record(&started(p, 2));
    assert!(
        read_until(&mut sse, &mut seen, "\"event\":\"attempt_started\""),
        "the appended event was not delivered: {seen}"
    );
    assert!(seen.contains(&format!("id: {}", last + 1)), "{seen}");
    assert!(
        !seen.contains(&format!("\"seq\":{last},")),
        "an event before `after`: {seen}"
    );

    // the page follows the run
    let mut b = Browser::start();
    b.open(&server.url(&format!("/runs/{}", meta.id)));
    assert_eq!(
        b.eval("document.querySelectorAll('svg.timeline g.attempt').length"),
        json!(2)
    );
    assert_eq!(
        b.eval("document.querySelector('#report').getAttribute('data-status')"),
        json!("running")
    );
    recorder.record(&attempt(p, 2, VerdictKind::Pass, "second"));
    recorder.record(&Event::ActionStarted {
        path: "prepare/plan_then_runbook/r".into(),
        action: "write_runbook".into(),
    });
    recorder.record(&started("prepare/plan_then_runbook/r", 1));
    assert!(
        b.wait_for(
            "document.querySelectorAll('svg.timeline g.attempt').length === 3",
            Duration::from_secs(30)
        ),
        "the page did not update"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('svg.timeline g.attempt.v-pass').length"),
        json!(1)
    );
    b.screenshot(&artifacts().join("serve-live.png"));

    // the end of the run ends the stream
    recorder.record(&Event::RunFinished {
        success: false,
        generator_calls: 3,
        guard_runs: 2,
        elapsed_ms: 40,
        repeated_calls: 0,
    });
    drop(recorder);
    assert!(
        read_until(&mut sse, &mut seen, "event: end"),
        "no end: {seen}"
    );
    assert!(b.wait_for(
        "document.querySelector('#report').getAttribute('data-status') === 'failed'",
        Duration::from_secs(30)
    ));
    assert_clean(&mut b, "the live page");
}

#[test]
fn other_addresses_names_and_methods_are_refused() {
    let fx = Fx::new();
    let run = fx.planning_run();
    let out = Command::new(bin())
        .args(["serve", "--port", "0", "--bind", "0.0.0.0", "--store"])
        .arg(fx.db())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve on 0.0.0.0") && err.contains("--allow-remote"),
        "{err}"
    );
    let out = Command::new(bin())
        .args(["serve", "--port", "0", "--store"])
        .arg(fx.dir.path().join("none.db"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));

    let server = Server::start(&fx.db());
    let (status, _) = server.request("GET", "/", "127.0.0.1");
    assert!(status.contains(" 200 "), "{status}");
    let (status, body) = server.request("GET", &format!("/runs/{run}"), "localhost");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        body.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{body}"
    );
    for method in ["POST", "PUT", "DELETE"] {
        let (status, _) = server.request(method, "/", "127.0.0.1");
        assert!(status.contains(" 405 "), "{method}: {status}");
    }
    // every route, and a path that is none, for another name
    for path in [
        "/".to_string(),
        format!("/runs/{run}"),
        format!("/runs/{run}/events"),
        "/bench/b".to_string(),
        "/bench/b/events".to_string(),
        "/etc/passwd".to_string(),
    ] {
        let (status, _) = server.request("GET", &path, "evil.example");
        assert!(status.contains(" 421 "), "{path}: {status}");
    }
    let (status, _) = server.request("GET", "/runs/nope", "127.0.0.1");
    assert!(status.contains(" 404 "), "{status}");
    let (status, _) = server.request("GET", "/runs/nope/events", "127.0.0.1");
    assert!(status.contains(" 404 "), "{status}");
    let (status, _) = server.request("GET", "/etc/passwd", "127.0.0.1");
    assert!(status.contains(" 404 "), "{status}");
}

#[test]
fn sigterm_stops_the_server_while_a_stream_is_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("runs.db");
    let (meta, _recorder) = running_run(&db);
    let mut server = Server::start(&db);
    let mut sse = TcpStream::connect(&server.addr).expect("connect");
    sse.set_read_timeout(Some(Duration::from_millis(200))).ok();
    write!(
        sse,
        "GET /runs/{}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        meta.id
    )
    .expect("send");
    let mut seen = String::new();
    assert!(read_until(&mut sse, &mut seen, "event: event"), "{seen}");
    // SAFETY: a signal to the server this test started.
    unsafe {
        libc::kill(server.child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "the server did not stop on SIGTERM with a stream open"
    );
}
