//! Hostile input to the front end, `fmt` and the language server: devices,
//! FIFOs and oversized files where a source is read, a byte order mark,
//! chains of definitions thousands deep, and LSP peers that announce huge
//! messages or send huge documents. Each runs the real binary, bounded in
//! time (generously) and, where the old failure was to grow without
//! bound, in address space, so a regression fails instead of eating the
//! machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{bin, run_bounded, Ran};

const LIMIT: Duration = Duration::from_secs(120);

/// The address space a command may use: far more than any of these
/// inputs needs, far less than reading `/dev/zero` or allocating what a
/// hostile `Content-Length` says.
const ADDRESS_SPACE: u64 = 2 << 30;

fn guardflow(args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(dir);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

fn run(args: &[&str], dir: &Path) -> Ran {
    run_bounded(guardflow(args, dir), LIMIT)
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

const FLOW: &str = r#"use std.{non_empty}

generator writer = llm(model: "m")

action summarize(doc: Text) -> Text {
  :generate writer "Summarize: {doc}"
  :guard non_empty
  :retry 2
}

task main(doc: Text) {
  method only {
    :subtasks (s: summarize(doc))
  }
}
"#;

#[test]
fn use_of_a_device_is_refused_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("flow.guardflow"),
        format!("use \"/dev/zero\"\n{FLOW}"),
    )
    .expect("write");
    let ran = run(&["check", "flow.guardflow"], dir.path());
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(ran.stdout.contains("[E0109]"), "{}", ran.all());
    assert!(
        ran.stdout.contains("it is a device, not a regular file"),
        "{}",
        ran.all()
    );
}

#[test]
fn a_fifo_in_a_directory_hangs_neither_check_nor_fmt() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.guardflow"), FLOW).expect("write");
    mkfifo(&dir.path().join("x.guardflow"));
    for args in [&["check", "."][..], &["fmt", "--check", "."], &["fmt", "."]] {
        let ran = run(args, dir.path());
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.all());
        assert!(
            ran.stderr
                .contains("x.guardflow: it is a named pipe (FIFO), not a regular file"),
            "{args:?}: {}",
            ran.all()
        );
    }
    // named directly, and through `use`
    let ran = run(&["check", "x.guardflow"], dir.path());
    assert_eq!(ran.code, Some(2), "{}", ran.all());
    assert!(ran.stderr.contains("named pipe"), "{}", ran.all());
    std::fs::write(
        dir.path().join("b.guardflow"),
        format!("use \"x.guardflow\"\n{FLOW}"),
    )
    .expect("write");
    let ran = run(&["check", "b.guardflow"], dir.path());
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    assert!(ran.stdout.contains("named pipe"), "{}", ran.all());
}

#[test]
fn a_source_over_the_cap_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.guardflow");
    // sparse: 9 MiB that take no disk
    let file = std::fs::File::create(&path).expect("create");
    file.set_len(9 << 20).expect("set_len");
    for args in [
        &["check", "big.guardflow"][..],
        &["fmt", "--check", "big.guardflow"],
    ] {
        let ran = run(args, dir.path());
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.all());
        assert!(
            ran.stderr.contains("more than the limit of 8 MiB"),
            "{args:?}: {}",
            ran.all()
        );
    }
}

#[test]
fn a_byte_order_mark_is_skipped_and_spans_stay_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("flow.guardflow"), format!("\u{feff}{FLOW}")).expect("write");
    let ran = run(&["check", "flow.guardflow"], dir.path());
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    // fmt keeps the mark and changes nothing else in a formatted file
    let ran = run(&["fmt", "--check", "flow.guardflow"], dir.path());
    assert_eq!(ran.code, Some(0), "{}", ran.all());
    // an error after it is where it is: line 5, column 8 (the mark is a
    // character of line 1 only)
    let broken = FLOW
        .replace("action summarize(doc: Text)", "action summarize(doc: Text")
        .replace("use std.{non_empty}", "use std.{non_empty, nonempty}");
    std::fs::write(
        dir.path().join("broken.guardflow"),
        format!("\u{feff}{broken}"),
    )
    .expect("write");
    let ran = run(
        &["check", "--format", "json", "broken.guardflow"],
        dir.path(),
    );
    assert_eq!(ran.code, Some(1), "{}", ran.all());
    let found: Vec<Value> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let at = |code: &str| {
        let d = found
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("no {code}: {}", ran.all()));
        (d["start"]["line"].clone(), d["start"]["column"].clone())
    };
    // `->` where `)` was wanted
    assert_eq!(at("E0001"), (json!(5), json!(28)), "{}", ran.all());
    // `nonempty` in `use std.{non_empty, nonempty}`, after the mark
    assert_eq!(at("E0108"), (json!(1), json!(21)), "{}", ran.all());
}

/// `guard g0 = g1 && …` down to g{n}: each resolved through the next.
fn guard_chain(n: usize) -> String {
    let mut s = String::from("use std.{non_empty}\n");
    for i in 0..n {
        s.push_str(&format!("guard g{i} = g{} && non_empty\n", i + 1));
    }
    s.push_str(&format!("guard g{n} = non_empty\n"));
    s.push_str(
        &FLOW
            .replace("use std.{non_empty}\n", "")
            .replace(":guard non_empty", ":guard g0"),
    );
    s
}

/// `type T0 = T1`, … down to `T{n} = Text`.
fn alias_chain(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("type T{i} = T{}\n", i + 1));
    }
    s.push_str(&format!("type T{n} = Text\n"));
    s.push_str(&FLOW.replace("summarize(doc: Text)", "summarize(doc: T0)"));
    s
}

#[test]
fn chains_thousands_deep_are_an_error_not_a_stack_overflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [
        ("guards", guard_chain(4000)),
        ("aliases", alias_chain(13000)),
    ] {
        let file = format!("{name}.guardflow");
        std::fs::write(dir.path().join(&file), text).expect("write");
        let ran = run(&["check", &file], dir.path());
        assert_eq!(ran.code, Some(1), "{name}: {}", ran.all());
        assert_eq!(
            ran.stdout.matches("[E0217]").count(),
            1,
            "{name}: {}",
            ran.all()
        );
    }
}

/// A language server client over pipes.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: Receiver<Value>,
}

impl Client {
    fn start(dir: &Path) -> Client {
        let mut child = guardflow(&["lsp"], dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start guardflow lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(value) = serde_json::from_slice::<Value>(&body) else {
                    return;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin: Some(stdin),
            incoming,
        }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        // the server may have closed its input already
        if let Some(stdin) = &mut self.stdin {
            let _ = stdin.write_all(bytes);
            let _ = stdin.flush();
        }
    }

    fn send(&mut self, msg: Value) {
        let body = serde_json::to_string(&msg).expect("json");
        self.send_raw(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
    }

    fn initialize(&mut self) {
        self.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": {}}}));
        let reply = self.next().expect("initialize answered");
        assert_eq!(reply["id"], 0, "{reply}");
        self.send(json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}));
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.send(
            json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
                "textDocument": {"uri": uri, "languageId": "guardflow", "version": 1, "text": text}
            }}),
        );
    }

    /// The next message, or `None` once the server's output ended.
    fn next(&mut self) -> Option<Value> {
        self.incoming.recv_timeout(LIMIT).ok()
    }

    /// Waits for the server to end; its exit code and standard error.
    fn finish(mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        for _ in 0..(LIMIT.as_millis() / 20) {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return (status.code(), err);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("guardflow lsp still ran after {LIMIT:?}");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // a failed test leaves no server behind
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_language_server_refuses_a_huge_content_length_without_allocating_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut client = Client::start(dir.path());
    client.initialize();
    // announces 3 GiB (more than the process may map), sends 2 bytes
    client.send_raw(b"Content-Length: 3221225472\r\n\r\n{}");
    let (code, stderr) = client.finish();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("more than the limit of 64 MiB"), "{stderr}");
}

#[test]
fn the_language_server_survives_chains_thousands_deep() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut client = Client::start(dir.path());
    client.initialize();
    let uri = format!("file://{}/deep.guardflow", dir.path().display());
    client.open(&uri, &guard_chain(4000));
    let diagnostics = loop {
        let msg = client.next().expect("diagnostics before the server ended");
        if msg["method"] == "textDocument/publishDiagnostics" {
            break msg;
        }
    };
    let codes: Vec<&Value> = diagnostics["params"]["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .map(|d| &d["code"])
        .collect();
    assert_eq!(codes, vec!["E0217"], "{diagnostics}");
    // still serving
    client.send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "textDocument/documentSymbol",
        "params": {"textDocument": {"uri": uri}}}),
    );
    let reply = client.next().expect("symbols");
    assert_eq!(reply["id"], 1, "{reply}");
    let symbols = reply["result"].as_array().map_or(0, Vec::len);
    assert!(symbols > 4000, "{reply}");
    client.send(json!({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}));
    assert_eq!(client.next().expect("shutdown answered")["id"], 2);
    client.send(json!({"jsonrpc": "2.0", "method": "exit"}));
    let (code, stderr) = client.finish();
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn a_large_document_does_not_hold_up_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut client = Client::start(dir.path());
    client.initialize();
    // about 4 MB of actions
    let mut big = String::from("use std.{non_empty}\ngenerator writer = llm(model: \"m\")\n");
    let mut i = 0;
    while big.len() < 4_000_000 {
        big.push_str(&format!(
            "action a{i}(doc: Text) -> Text {{\n  :generate writer \"Summarize: {{doc}}\"\n  :guard non_empty\n  :retry 2\n}}\n"
        ));
        i += 1;
    }
    let uri = format!("file://{}/big.guardflow", dir.path().display());
    client.open(&uri, &big);
    client.send(json!({"jsonrpc": "2.0", "id": 1, "method": "shutdown"}));
    // the answer comes before the big document's check is done: it was
    // not queued behind it (the check takes far longer than answering)
    let first = client.next().expect("an answer");
    assert_eq!(first["id"], 1, "shutdown waited for the check: {first}");
    client.send(json!({"jsonrpc": "2.0", "method": "exit"}));
    let (code, stderr) = client.finish();
    assert_eq!(code, Some(0), "{stderr}");
}
