//! The language server (`guardflow lsp`): LSP over stdio with
//! `lsp-server` (its messages read by `transport`, which caps their size).
//! Each open document is re-parsed, re-indexed and re-checked on every
//! change (full sync) by one worker thread, so the main loop always
//! answers: a request waits only for its document's parse and index,
//! never for a check, and `shutdown` waits for nothing. Work for a version
//! already replaced is skipped. Diagnostics are the checker's findings, as
//! `guardflow check` prints them.
//!
//! `position` converts byte spans to UTF-16 positions, `index` finds
//! definitions and uses of names in the AST, `document` holds one open
//! file, `features` answers hover, definition, references, completion,
//! symbols and formatting.

mod document;
mod features;
mod index;
mod position;
pub mod transport;

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, References,
    Request as _,
};
use lsp_types::{
    CompletionOptions, HoverProviderCapability, OneOf, PublishDiagnosticsParams,
    ServerCapabilities, TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};

pub use document::uri_to_path;
pub use position::LineIndex;

use document::Document;

/// Answers every request the server knows about `text` (as an open
/// document) at each of `offsets` (bytes, any value), plus its symbols,
/// formatting and diagnostics: what the fuzz properties drive. Returns how
/// many answers were not empty.
#[doc(hidden)]
pub fn answer_everything(text: &str, offsets: &[usize]) -> usize {
    let uri: Uri = match "file:///fuzz/doc.guardflow".parse() {
        Ok(u) => u,
        Err(_) => return 0,
    };
    let doc = Document::new(uri, text.to_string());
    let mut answers = doc.diagnostics().len() + features::symbols(&doc).len();
    answers += features::formatting(&doc).len();
    for &offset in offsets {
        let pos = doc.lines.position(&doc.text, offset.min(text.len()));
        answers += usize::from(features::hover(&doc, pos).is_some());
        answers += usize::from(features::definition(&doc, pos).is_some());
        answers += features::references(&doc, pos, true).len();
        answers += features::completion(&doc, pos).len();
        // positions past the end of a line or the file, too
        let past = lsp_types::Position::new(pos.line + 1, pos.character + 7);
        answers += usize::from(features::hover(&doc, past).is_some());
    }
    answers
}

/// What the server can do.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![":".into()]),
            ..Default::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..Default::default()
    }
}

/// Serves one client on stdin/stdout until it shuts down. An error is a
/// protocol failure (or `exit` without `shutdown`).
pub fn serve_stdio() -> Result<(), String> {
    let (connection, io_threads) = transport::stdio();
    let result = serve(&connection);
    drop(connection);
    // the reader's error (a message too large) explains an early end
    io_threads.join()?;
    result
}

/// Serves one client on `connection`, from `initialize` to `exit`.
pub fn serve(connection: &Connection) -> Result<(), String> {
    let (id, _params) = connection.initialize_start().map_err(|e| e.to_string())?;
    let result = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": {"name": "guardflow", "version": env!("CARGO_PKG_VERSION")},
    });
    connection
        .initialize_finish(id, result)
        .map_err(|e| e.to_string())?;
    // the worker sends through this until the server ends; then the
    // writer can finish without waiting for a check still running
    let out = Arc::new(Mutex::new(Some(connection.sender.clone())));
    let _close = Close(out.clone());
    let mut server = Server::start(move |m| {
        let out = out.lock().unwrap_or_else(|p| p.into_inner());
        out.as_ref().is_some_and(|s| s.send(m).is_ok())
    });
    for msg in &connection.receiver {
        match msg {
            Message::Request(req) => {
                if connection
                    .handle_shutdown(&req)
                    .map_err(|e| e.to_string())?
                {
                    return Ok(());
                }
                let resp = server.request(req);
                send(connection, Message::Response(resp))?;
            }
            Message::Notification(n) => {
                if n.method == "exit" {
                    return Err("`exit` before `shutdown`".into());
                }
                if let Some(uri) = server.notification(n) {
                    // closed: clear what was published for it
                    send(connection, publish(uri, Vec::new()))?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

/// Takes the worker's way to the client when the server ends.
struct Close<T>(Arc<Mutex<Option<T>>>);

impl<T> Drop for Close<T> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

fn send(connection: &Connection, msg: Message) -> Result<(), String> {
    connection
        .sender
        .send(msg)
        .map_err(|_| "the client's connection closed".to_string())
}

/// The diagnostics of `uri` as a notification.
fn publish(uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>) -> Message {
    Message::Notification(Notification::new(
        PublishDiagnostics::METHOD.into(),
        PublishDiagnosticsParams {
            uri,
            diagnostics,
            version: None,
        },
    ))
}

/// The worker thread's stack: as large as a main thread's usual 8 MiB.
const WORKER_STACK: usize = 8 << 20;

/// How long a request waits for its document's parse and index before
/// it is answered from the previous version (the worker is stuck or gone).
const BUILD_WAIT: Duration = Duration::from_secs(30);

struct Server {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    next_version: u64,
}

/// The open documents, shared by the main loop and the worker.
#[derive(Default)]
struct Shared {
    docs: Mutex<HashMap<String, Entry>>,
    /// Signalled each time a document is built.
    built: Condvar,
}

struct Entry {
    /// The newest version received.
    version: u64,
    /// The newest built, and its version.
    doc: Option<(u64, Arc<Document>)>,
}

/// A version of a document to build and check.
struct Job {
    uri: Uri,
    text: String,
    version: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `version` is still the newest of `uri`.
    fn current(&self, uri: &str, version: u64) -> bool {
        self.lock().get(uri).is_some_and(|e| e.version == version)
    }
}

/// Builds and checks documents. Building (parse and index, what requests
/// wait for) comes before checking: every job received is built before
/// the next check starts. Jobs that a newer version of the same document
/// replaced are dropped unstarted, and a check whose document changed
/// meanwhile is not published.
fn worker(shared: Arc<Shared>, jobs: mpsc::Receiver<Job>, out: impl Fn(Message) -> bool) {
    let mut checks: std::collections::VecDeque<(Uri, u64, Arc<Document>)> = Default::default();
    loop {
        let mut batch = Vec::new();
        if checks.is_empty() {
            match jobs.recv() {
                Ok(job) => batch.push(job),
                Err(_) => return,
            }
        }
        batch.extend(jobs.try_iter());
        for job in batch {
            if !shared.current(job.uri.as_str(), job.version) {
                continue;
            }
            let (uri, version) = (job.uri.clone(), job.version);
            // a document larger than any source guardflow reads is not
            // parsed: it stands empty, with one diagnostic saying why
            let too_large = job.text.len() as u64 > crate::check::MAX_SOURCE_BYTES;
            let text = if too_large { String::new() } else { job.text };
            // a panic must not take the server down: the document then
            // keeps its previous version
            let built = std::panic::catch_unwind(move || Document::new(job.uri, text));
            let Ok(doc) = built else { continue };
            let doc = Arc::new(doc);
            {
                let mut docs = shared.lock();
                match docs.get_mut(uri.as_str()) {
                    Some(e) if e.version == version => e.doc = Some((version, doc.clone())),
                    _ => continue,
                }
            }
            shared.built.notify_all();
            checks.retain(|(u, _, _)| *u != uri);
            if too_large {
                let said = lsp_types::Diagnostic {
                    severity: Some(lsp_types::DiagnosticSeverity::ERROR),
                    source: Some("guardflow".into()),
                    message: format!(
                        "this document is larger than {} MiB, the most guardflow reads of a source; it is not checked",
                        crate::check::MAX_SOURCE_BYTES >> 20
                    ),
                    ..Default::default()
                };
                if !out(publish(uri, vec![said])) {
                    return;
                }
                continue;
            }
            checks.push_back((uri, version, doc));
        }
        let Some((uri, version, doc)) = checks.pop_front() else {
            continue;
        };
        if !shared.current(uri.as_str(), version) {
            continue;
        }
        let diagnostics =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.diagnostics()))
                .unwrap_or_default();
        // sent under the lock: a close (which publishes nothing for the
        // document) cannot come between the test and the send
        let docs = shared.lock();
        let current = docs.get(uri.as_str()).is_some_and(|e| e.version == version);
        if current && !out(publish(uri, diagnostics)) {
            return;
        }
    }
}

impl Server {
    /// Starts the worker; `out` sends a message to the client (false once
    /// the client is gone).
    fn start(out: impl Fn(Message) -> bool + Send + 'static) -> Server {
        let shared = Arc::new(Shared::default());
        let (jobs, receiver) = mpsc::channel();
        let for_worker = shared.clone();
        // parsing and checking recurse as deep as the syntax and the
        // checker's caps allow: the stack the main thread had, not 2 MiB
        let spawned = std::thread::Builder::new()
            .name("guardflow-lsp-worker".into())
            .stack_size(WORKER_STACK)
            .spawn(move || worker(for_worker, receiver, out));
        if let Err(e) = spawned {
            eprintln!("guardflow lsp: cannot start the worker thread: {e}");
        }
        Server {
            shared,
            jobs,
            next_version: 0,
        }
    }

    /// Hands a document's new text to the worker.
    fn update(&mut self, uri: Uri, text: String) {
        self.next_version += 1;
        let version = self.next_version;
        self.shared
            .lock()
            .entry(uri.as_str().to_string())
            .and_modify(|e| e.version = version)
            .or_insert(Entry { version, doc: None });
        let _ = self.jobs.send(Job { uri, text, version });
    }

    /// Applies a document notification; the URI of a document closed.
    fn notification(&mut self, n: Notification) -> Option<Uri> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                self.update(p.text_document.uri, p.text_document.text);
                None
            }
            DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                // full sync: the last change holds the whole text
                let text = p.content_changes.into_iter().last()?.text;
                self.update(p.text_document.uri, text);
                None
            }
            DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                self.shared.lock().remove(p.text_document.uri.as_str());
                Some(p.text_document.uri)
            }
            _ => None,
        }
    }

    /// The newest version of a document, once built (waiting for the
    /// worker to parse and index it, not to check it).
    fn doc(&self, uri: &Uri) -> Option<Arc<Document>> {
        let deadline = std::time::Instant::now() + BUILD_WAIT;
        let mut docs = self.shared.lock();
        loop {
            let entry = docs.get(uri.as_str())?;
            let ready = entry.doc.as_ref().filter(|(v, _)| *v == entry.version);
            if let Some((_, doc)) = ready {
                return Some(doc.clone());
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return entry.doc.as_ref().map(|(_, d)| d.clone());
            }
            docs = self
                .shared
                .built
                .wait_timeout(docs, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            HoverRequest::METHOD => self.handle::<HoverRequest>(req, |s, p| {
                let pos = p.text_document_position_params;
                s.doc(&pos.text_document.uri)
                    .and_then(|d| features::hover(&d, pos.position))
            }),
            GotoDefinition::METHOD => self.handle::<GotoDefinition>(req, |s, p| {
                let pos = p.text_document_position_params;
                s.doc(&pos.text_document.uri)
                    .and_then(|d| features::definition(&d, pos.position))
                    .map(lsp_types::GotoDefinitionResponse::Scalar)
            }),
            References::METHOD => self.handle::<References>(req, |s, p| {
                let pos = p.text_document_position;
                s.doc(&pos.text_document.uri)
                    .map(|d| features::references(&d, pos.position, p.context.include_declaration))
            }),
            Completion::METHOD => self.handle::<Completion>(req, |s, p| {
                let pos = p.text_document_position;
                s.doc(&pos.text_document.uri)
                    .map(|d| features::completion(&d, pos.position).into())
            }),
            DocumentSymbolRequest::METHOD => self.handle::<DocumentSymbolRequest>(req, |s, p| {
                s.doc(&p.text_document.uri)
                    .map(|d| features::symbols(&d).into())
            }),
            Formatting::METHOD => self.handle::<Formatting>(req, |s, p| {
                s.doc(&p.text_document.uri)
                    .map(|d| features::formatting(&d))
            }),
            other => Err((
                ErrorCode::MethodNotFound as i32,
                format!("guardflow lsp does not handle `{other}`"),
            )),
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err((code, message)) => Response::new_err(id, code, message),
        }
    }

    fn handle<R: lsp_types::request::Request>(
        &self,
        req: Request,
        f: impl FnOnce(&Self, R::Params) -> R::Result,
    ) -> Result<serde_json::Value, (i32, String)> {
        let params: R::Params = serde_json::from_value(req.params)
            .map_err(|e| (ErrorCode::InvalidParams as i32, e.to_string()))?;
        serde_json::to_value(f(self, params))
            .map_err(|e| (ErrorCode::InternalError as i32, e.to_string()))
    }
}
