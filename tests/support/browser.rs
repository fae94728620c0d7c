//! A real headless browser for the tests: Debian's `chromium`, driven
//! over the DevTools protocol on a pipe (`--remote-debugging-pipe`: file
//! descriptors 3 and 4, JSON messages ended by NUL), so no WebSocket
//! client and no driver are needed. It collects what a page logged as
//! errors and every request the page made.
//!
//! Chromium is installed by the project's test command (`scripts/test.sh`,
//! `.ci/run`); without it the tests fail saying so, never skip.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The most any one answer or page load is waited for.
const WAIT: Duration = Duration::from_secs(60);

/// The browser binary: `$GUARDFLOW_CHROMIUM`, else `chromium` (Debian)
/// or `chromium-browser` on PATH.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("GUARDFLOW_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium is not installed: the report and serve tests load pages in a real headless \
         browser. scripts/test.sh installs it (as root: apt-get install chromium); or set \
         GUARDFLOW_CHROMIUM to a Chromium binary"
    );
}

/// Where the tests keep their screenshots (kept, not compared).
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("target/test-artifacts");
    dir
}

pub struct Browser {
    child: Child,
    to: File,
    from: Receiver<Value>,
    next: u64,
    session: Option<String>,
    /// Every event the page's session sent, in order.
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just made and are owned here only.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

impl Browser {
    /// Starts a headless browser with a fresh profile.
    pub fn start() -> Browser {
        let binary = chromium();
        let profile = tempfile::tempdir().expect("a profile directory");
        let (child_reads, we_write) = pipe();
        let (we_read, child_writes) = pipe();
        let (r3, w4) = (child_reads.into_raw_fd(), child_writes.into_raw_fd());
        let mut cmd = Command::new(&binary);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-pipe",
            "--window-size=1300,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(match std::env::var_os("GUARDFLOW_BROWSER_LOG") {
            Some(p) => Stdio::from(File::create(p).expect("the browser log")),
            None => Stdio::null(),
        })
        // its own process group: the renderers and helpers end with it
        .process_group(0);
        // SAFETY: only dup2, which is async-signal-safe, between fork and
        // exec; the duplicates lose close-on-exec, the originals keep it.
        unsafe {
            cmd.pre_exec(move || {
                // moved above 4 first, so neither lands on the other's place
                let r = libc::fcntl(r3, libc::F_DUPFD_CLOEXEC, 10);
                let w = libc::fcntl(w4, libc::F_DUPFD_CLOEXEC, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // SAFETY: the child has its copies; ours are closed here, once.
        unsafe {
            libc::close(r3);
            libc::close(w4);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = File::from(we_read);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        Browser {
            child,
            to: File::from(we_write),
            from: rx,
            next: 0,
            session: None,
            events: Vec::new(),
            _profile: profile,
        }
    }

    fn next_message(&mut self, deadline: Instant) -> Option<Value> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from.recv_timeout(left) {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("the browser exited"),
        }
    }

    /// Sends a command (to the page's session once there is one) and
    /// returns its result; events that come first are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to the browser");
        let deadline = Instant::now() + WAIT;
        loop {
            let Some(m) = self.next_message(deadline) else {
                panic!("the browser did not answer {method} within {WAIT:?}");
            };
            if m.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = m.get("error") {
                    panic!("{method}: {e}");
                }
                return m["result"].clone();
            }
            if m.get("method").is_some() {
                self.events.push(m);
            }
        }
    }

    /// Opens `url` in a new page and waits for its load event; returns
    /// how long that took from the navigation.
    pub fn open(&mut self, url: &str) -> Duration {
        self.session = None;
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a target").to_string();
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("a session")
                .to_string(),
        );
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            self.call(domain, json!({}));
        }
        self.events.clear();
        let start = Instant::now();
        self.call("Page.navigate", json!({"url": url}));
        let deadline = start + WAIT;
        loop {
            if self
                .events
                .iter()
                .any(|e| e["method"] == "Page.loadEventFired")
            {
                return start.elapsed();
            }
            match self.next_message(deadline) {
                Some(m) if m.get("method").is_some() => self.events.push(m),
                Some(_) => {}
                None => panic!("{url} did not load within {WAIT:?}"),
            }
        }
    }

    /// Takes in the events that came since the last call.
    pub fn drain(&mut self) {
        while let Ok(m) = self.from.try_recv() {
            if m.get("method").is_some() {
                self.events.push(m);
            }
        }
    }

    /// Evaluates `expr` in the page; its value (promises awaited).
    pub fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is true in the page, up to `limit`.
    pub fn wait_for(&mut self, expr: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.eval(expr) == json!(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// What the page logged as errors: console errors, uncaught
    /// exceptions, and the browser's own error entries (a refused load, a
    /// Content-Security-Policy violation).
    pub fn errors(&mut self) -> Vec<String> {
        self.drain();
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Runtime.consoleAPICalled" if p["type"] == "error" || p["type"] == "assert" => {
                    out.push(format!("console.{}: {}", p["type"], p["args"]))
                }
                "Runtime.exceptionThrown" => {
                    out.push(format!("exception: {}", p["exceptionDetails"]))
                }
                "Log.entryAdded" if p["entry"]["level"] == "error" => {
                    out.push(format!("log: {}", p["entry"]))
                }
                _ => {}
            }
        }
        out
    }

    /// Every URL the page requested.
    pub fn requests(&mut self) -> Vec<String> {
        self.drain();
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_string))
            .collect()
    }

    /// The requests that left this machine's loopback and files.
    pub fn outside_requests(&mut self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|u| !is_local(u))
            .collect()
    }

    /// Writes a PNG of the page (its full height, up to 12,000 pixels).
    pub fn screenshot(&mut self, path: &Path) {
        let height = self
            .eval("Math.min(12000, document.documentElement.scrollHeight)")
            .as_f64()
            .unwrap_or(1600.0);
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                   "clip": {"x": 0, "y": 0, "width": 1300, "height": height, "scale": 1}}),
        );
        let data = shot["data"].as_str().expect("png data");
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64");
        std::fs::write(path, png).expect("write the screenshot");
    }
}

/// A file, an inline URL, or this machine's loopback.
pub fn is_local(url: &str) -> bool {
    if url.starts_with("file://") || url.starts_with("data:") || url.starts_with("about:") {
        return true;
    }
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let name = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: signals the browser's own process group only.
        unsafe {
            libc::kill(-(self.child.id() as i32), libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
