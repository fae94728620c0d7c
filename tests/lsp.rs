//! `guardflow lsp`: a client speaking LSP JSON-RPC over pipes to the real
//! binary. Opens a file with errors, then asks for diagnostics, hover,
//! definition, references, completion, symbols and formatting, and shuts
//! the server down.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::bin;

/// Generous: a loaded two-core machine checks a file in well under this.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    /// Notifications received while waiting for something else.
    notifications: Vec<Value>,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(bin())
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start guardflow lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = None;
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
                        length = n.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let value: Value = serde_json::from_slice(&body).expect("JSON body");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            incoming,
            next_id: 1,
            notifications: Vec::new(),
        }
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let msg = self
                .incoming
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if msg.get("id") == Some(&json!(id)) {
                assert!(msg.get("error").is_none(), "{method} failed: {msg}");
                return msg["result"].clone();
            }
            self.notifications.push(msg);
        }
    }

    fn wait_notification(&mut self, method: &str) -> Value {
        if let Some(i) = self
            .notifications
            .iter()
            .position(|n| n["method"] == method)
        {
            return self.notifications.remove(i)["params"].clone();
        }
        loop {
            let msg = self
                .incoming
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("no {method} notification"));
            if msg["method"] == method {
                return msg["params"].clone();
            }
            self.notifications.push(msg);
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Line and UTF-16 column of the `nth` occurrence of `needle` (plus
/// `delta` characters), as LSP wants them. The source is ASCII apart from
/// the comment on its first line, so characters are code units there.
fn pos(src: &str, needle: &str, nth: usize, delta: usize) -> Value {
    let offset = src
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("{needle} #{nth}"))
        .0
        + delta;
    let line = src[..offset].matches('\n').count();
    let start = src[..offset].rfind('\n').map_or(0, |i| i + 1);
    let character = src[start..offset].encode_utf16().count();
    json!({"line": line, "character": character})
}

const SRC: &str = r#"// ünïcödé 😀 comment: columns count UTF-16 units
use std.{python_syntax}

/// Tests first.
action write_tests(spec: Text) -> Code<python> {
  :generate coder "Write tests for {spec}"
  :guard python_syntax && no_such_guard
  :retry 3
}

/// The pipeline.
task tdd(spec: Text) -> Code<python> {
  method m {
    :subtasks (t: write_tests(spec), u: write_tests(spec))
    :ordering (t ; u)
    :result u
  }
}

generator coder = llm(model: "m")

type Dup = Text
type Dup = Text
"#;

#[test]
fn the_language_server_answers_a_client_over_pipes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flow.guardflow");
    std::fs::write(&path, SRC).expect("write");
    let uri = format!("file://{}", path.display());
    let doc = json!({"uri": uri});

    let mut c = Client::start();
    let init = c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    assert_eq!(init["capabilities"]["hoverProvider"], json!(true));
    assert_eq!(init["serverInfo"]["name"], json!("guardflow"));
    assert_eq!(init["capabilities"]["textDocumentSync"], json!(1));
    c.notify("initialized", json!({}));

    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "guardflow", "version": 1, "text": SRC}}),
    );
    let published = c.wait_notification("textDocument/publishDiagnostics");
    assert_eq!(published["uri"], json!(uri));
    let diags = published["diagnostics"].as_array().expect("array").clone();
    let unknown = diags
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .unwrap_or("")
                .contains("no_such_guard")
        })
        .unwrap_or_else(|| panic!("no finding about no_such_guard: {diags:#?}"));
    assert_eq!(unknown["severity"], json!(1));
    assert!(
        unknown["code"].as_str().unwrap_or("").starts_with('E'),
        "{unknown}"
    );
    assert_eq!(unknown["source"], json!("guardflow"));
    let start = pos(SRC, "no_such_guard", 0, 0);
    let end = pos(SRC, "no_such_guard", 0, "no_such_guard".len());
    assert_eq!(unknown["range"], json!({"start": start, "end": end}));

    // the same findings, codes and lines as `guardflow check --format json`
    let o = Command::new(bin())
        .args(["check", "--format", "json"])
        .arg(&path)
        .output()
        .expect("check");
    let cli: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let codes = |v: &[Value]| {
        let mut c: Vec<String> = v.iter().map(|d| d["code"].to_string()).collect();
        c.sort();
        c
    };
    assert_eq!(codes(&diags), codes(&cli));

    // a secondary label is related information at its place
    let twice = diags
        .iter()
        .find(|d| d["range"]["start"] == pos(SRC, "Dup", 1, 0))
        .unwrap_or_else(|| panic!("no finding at the second Dup: {diags:#?}"));
    let related = &twice["relatedInformation"][0];
    assert_eq!(related["location"]["uri"], json!(uri));
    assert_eq!(related["location"]["range"]["start"], pos(SRC, "Dup", 0, 0));
    assert_eq!(related["message"], json!("first defined here"));

    // hover: signature and doc comment of the action at its use
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": pos(SRC, "write_tests", 1, 2)}),
    );
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(
        text.contains("action write_tests(spec: Text) -> Code<python>")
            && text.contains("Tests first."),
        "{text}"
    );
    // hover on a standard-library guard shows its declaration
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": pos(SRC, "python_syntax", 1, 1)}),
    );
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("extern guard python_syntax"), "{text}");

    // hover on a subtask label and on a type
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": pos(SRC, ":result u", 0, 8)}),
    );
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("u: write_tests(spec)"), "{text}");
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": pos(SRC, "Dup", 0, 0)}),
    );
    let text = hover["contents"]["value"].as_str().expect("markdown");
    assert!(text.contains("type Dup = Text"), "{text}");

    // definition of a subtask label used in the ordering
    let def = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": pos(SRC, "(t ; u)", 0, 1)}),
    );
    assert_eq!(def["uri"], json!(uri));
    assert_eq!(def["range"]["start"], pos(SRC, "t: write_tests", 0, 0));
    // definition of the generator, used before it is defined
    let def = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": pos(SRC, "coder", 0, 0)}),
    );
    assert_eq!(def["range"]["start"], pos(SRC, "coder", 1, 0));

    // references of `u`: its label, the ordering and the result
    let refs = c.request(
        "textDocument/references",
        json!({"textDocument": doc, "position": pos(SRC, "u: write", 0, 0),
               "context": {"includeDeclaration": true}}),
    );
    let mut starts: Vec<Value> = refs
        .as_array()
        .expect("array")
        .iter()
        .map(|l| l["range"]["start"].clone())
        .collect();
    starts.sort_by_key(|v| (v["line"].as_u64(), v["character"].as_u64()));
    assert_eq!(
        starts,
        vec![
            pos(SRC, "u: write", 0, 0),
            pos(SRC, "; u)", 0, 2),
            pos(SRC, ":result u", 0, 8)
        ]
    );
    // references of the parameter `spec` of the task: its uses in the task only
    let refs = c.request(
        "textDocument/references",
        json!({"textDocument": doc, "position": pos(SRC, "spec: Text", 1, 0),
               "context": {"includeDeclaration": false}}),
    );
    assert_eq!(refs.as_array().expect("array").len(), 2, "{refs}");

    // completion of properties after `:` in an action, and of names
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": doc, "position": pos(SRC, ":retry", 0, 1)}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert!(
        labels.contains(&":max-tokens") && !labels.contains(&":subtasks"),
        "{labels:?}"
    );
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": doc, "position": pos(SRC, "t: write_tests", 0, 3)}),
    );
    let labels: Vec<&str> = items
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["label"].as_str())
        .collect();
    for name in [
        "write_tests",
        "tdd",
        "coder",
        "spec",
        "python_syntax",
        "action",
    ] {
        assert!(labels.contains(&name), "{name} not in {labels:?}");
    }

    // document symbols: the items, the task's method and its labels
    let symbols = c.request("textDocument/documentSymbol", json!({"textDocument": doc}));
    let names: Vec<&str> = symbols
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["write_tests", "tdd", "coder", "Dup", "Dup"]);
    assert_eq!(symbols[1]["children"][0]["name"], json!("m"));
    assert_eq!(symbols[1]["children"][0]["children"][1]["name"], json!("u"));

    // a change: the finding goes away
    let fixed = SRC.replace(" && no_such_guard", "");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"text": fixed}]}),
    );
    let published = c.wait_notification("textDocument/publishDiagnostics");
    let left: Vec<&Value> = published["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| {
            d["message"]
                .as_str()
                .unwrap_or("")
                .contains("no_such_guard")
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // formatting: one edit with the canonical layout
    let messy = "type   A=Text\n";
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3},
               "contentChanges": [{"text": messy}]}),
    );
    let edits = c.request(
        "textDocument/formatting",
        json!({"textDocument": doc, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(edits[0]["newText"], json!("type A = Text\n"));
    assert_eq!(edits[0]["range"]["end"], json!({"line": 1, "character": 0}));

    let shutdown = c.request("shutdown", Value::Null);
    assert_eq!(shutdown, Value::Null);
    c.notify("exit", Value::Null);
    let status = wait_exit(&mut c.child);
    assert_eq!(status, Some(0));
}

const REFINE: &str = r#"generator g = llm(model: "m")
action draft(q: Text) -> Text {
  :generate g "Q: {q} {previous}"
  :guard non_empty
  :strategy best-of(3)
  :retry 1
}
"#;

/// A server with `text` open as `NAME.guardflow` (in a temporary
/// directory, kept while the first value lives), its diagnostics sent.
fn opened(name: &str, text: &str) -> (tempfile::TempDir, Value, Client) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("{name}.guardflow"));
    std::fs::write(&path, text).expect("write");
    let uri = format!("file://{}", path.display());
    let mut c = Client::start();
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    c.notify("initialized", json!({}));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "guardflow", "version": 1, "text": text}}),
    );
    c.wait_notification("textDocument/publishDiagnostics");
    (dir, json!({"uri": uri}), c)
}

/// Hover and completion know the refinement words: `{previous}`,
/// `:strategy` and its values, `:history`.
#[test]
fn the_language_server_explains_and_completes_refinement() {
    let (_dir, doc, mut c) = opened("refine", REFINE);
    let hover = |c: &mut Client, needle: &str, delta: usize| {
        let h = c.request(
            "textDocument/hover",
            json!({"textDocument": doc, "position": pos(REFINE, needle, 0, delta)}),
        );
        h["contents"]["value"].as_str().unwrap_or("").to_string()
    };
    let text = hover(&mut c, "{previous}", 3);
    assert!(text.contains("latest rejected attempt"), "{text}");
    let text = hover(&mut c, ":strategy", 2);
    assert!(text.contains("best-of(N)"), "{text}");
    let text = hover(&mut c, "best-of", 1);
    assert!(text.contains("N samples per attempt"), "{text}");
    let labels = |c: &mut Client, needle: &str, delta: usize| -> Vec<String> {
        let items = c.request(
            "textDocument/completion",
            json!({"textDocument": doc, "position": pos(REFINE, needle, 0, delta)}),
        );
        items
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|i| i["label"].as_str().map(str::to_string))
            .collect()
    };
    // after `{` in the prompt: the attempt's context and the parameter
    let names = labels(&mut c, "{previous}", 1);
    for want in ["previous", "history", "feedback", "q"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    // after `:strategy `: its values
    let values = labels(&mut c, "best-of(3)", 0);
    assert_eq!(values, ["repair", "resample", "best-of(2)"]);
    let props = labels(&mut c, ":strategy", 1);
    assert!(props.iter().any(|p| p == ":strategy"), "{props:?}");
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert_eq!(wait_exit(&mut c.child), Some(0));
}

/// Being typed: a field path in a prompt and in a method's `:pre`, each
/// of which stops its item from parsing.
const FIELDS: &str = r#"use std.{non_empty}

type Owner = { name: Text, team: Text }
type Plan = { items: [Text; max 5], owner: Owner }

input plan: Json<Plan>

generator g = llm(model: "m")

action write(p: Plan) -> Text {
  :generate g "Write for {p.} and {p.owner.na}"
  :guard non_empty
}

task main() {
  method only {
    :pre len(plan.) > 0
    :subtasks (w: write(plan))
  }
}
"#;

/// Completion after `p.` offers the fields of `p`'s record type (through
/// aliases and `Json<…>`), with their types; after `p.owner.` the
/// fields of the nested record.
#[test]
fn the_language_server_completes_fields() {
    let (_dir, doc, mut c) = opened("fields", FIELDS);
    let items = |c: &mut Client, needle: &str, delta: usize| -> Vec<(String, String)> {
        let items = c.request(
            "textDocument/completion",
            json!({"textDocument": doc, "position": pos(FIELDS, needle, 0, delta)}),
        );
        items
            .as_array()
            .expect("array")
            .iter()
            .map(|i| {
                (
                    i["label"].as_str().unwrap_or("").to_string(),
                    i["detail"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // a parameter of a record alias, in a prompt
    assert_eq!(
        items(&mut c, "{p.}", 3),
        pairs(&[("items", "[Text; max 5]"), ("owner", "Owner")])
    );
    // a nested record, with a partial name typed
    assert_eq!(
        items(&mut c, "owner.na}", 8),
        pairs(&[("name", "Text"), ("team", "Text")])
    );
    // an input of `Json<Plan>`, in a method's `:pre`
    assert_eq!(
        items(&mut c, "plan.)", 5),
        pairs(&[("items", "[Text; max 5]"), ("owner", "Owner")])
    );
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert_eq!(wait_exit(&mut c.child), Some(0));
}

#[test]
fn exit_without_shutdown_exits_one() {
    let mut c = Client::start();
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    c.notify("initialized", json!({}));
    c.notify("exit", Value::Null);
    assert_eq!(wait_exit(&mut c.child), Some(1));
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    for _ in 0..6000 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("guardflow lsp did not exit");
}

#[test]
fn fmt_and_lsp_help_teach_with_examples() {
    for sub in ["fmt", "lsp"] {
        let o = Command::new(bin())
            .args([sub, "--help"])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{sub}");
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(help.contains("Examples:"), "{sub} --help has no examples");
    }
}
