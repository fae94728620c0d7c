//! The language server (`guardflow lsp`): LSP over stdio with
//! `lsp-server`, single-threaded. Each open document is re-parsed,
//! re-indexed and re-checked on every change (full sync); diagnostics are
//! the checker's findings, as `guardflow check` prints them.
//!
//! `position` converts byte spans to UTF-16 positions, `index` finds
//! definitions and uses of names in the AST, `document` holds one open
//! file, `features` answers hover, definition, references, completion,
//! symbols and formatting.

mod document;
mod features;
mod index;
mod position;

use std::collections::HashMap;

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
    let (connection, io_threads) = Connection::stdio();
    let result = serve(&connection);
    drop(connection);
    io_threads.join().map_err(|e| e.to_string())?;
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
    let mut server = Server::default();
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
                    let params = server.publish(&uri);
                    send(
                        connection,
                        Message::Notification(Notification::new(
                            PublishDiagnostics::METHOD.into(),
                            params,
                        )),
                    )?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

fn send(connection: &Connection, msg: Message) -> Result<(), String> {
    connection
        .sender
        .send(msg)
        .map_err(|_| "the client's connection closed".to_string())
}

#[derive(Default)]
struct Server {
    docs: HashMap<String, Document>,
}

impl Server {
    /// Applies a document notification; the URI whose diagnostics changed.
    fn notification(&mut self, n: Notification) -> Option<Uri> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                let uri = p.text_document.uri;
                self.docs.insert(
                    uri.as_str().to_string(),
                    Document::new(uri.clone(), p.text_document.text),
                );
                Some(uri)
            }
            DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                // full sync: the last change holds the whole text
                let text = p.content_changes.into_iter().last()?.text;
                let uri = p.text_document.uri;
                self.docs
                    .insert(uri.as_str().to_string(), Document::new(uri.clone(), text));
                Some(uri)
            }
            DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams =
                    serde_json::from_value(n.params).ok()?;
                self.docs.remove(p.text_document.uri.as_str());
                // clear what was published for it
                Some(p.text_document.uri)
            }
            _ => None,
        }
    }

    fn publish(&self, uri: &Uri) -> PublishDiagnosticsParams {
        let diagnostics = self
            .docs
            .get(uri.as_str())
            .map(Document::diagnostics)
            .unwrap_or_default();
        PublishDiagnosticsParams {
            uri: uri.clone(),
            diagnostics,
            version: None,
        }
    }

    fn doc(&self, uri: &Uri) -> Option<&Document> {
        self.docs.get(uri.as_str())
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            HoverRequest::METHOD => self.handle::<HoverRequest>(req, |s, p| {
                let pos = p.text_document_position_params;
                s.doc(&pos.text_document.uri)
                    .and_then(|d| features::hover(d, pos.position))
            }),
            GotoDefinition::METHOD => self.handle::<GotoDefinition>(req, |s, p| {
                let pos = p.text_document_position_params;
                s.doc(&pos.text_document.uri)
                    .and_then(|d| features::definition(d, pos.position))
                    .map(lsp_types::GotoDefinitionResponse::Scalar)
            }),
            References::METHOD => self.handle::<References>(req, |s, p| {
                let pos = p.text_document_position;
                s.doc(&pos.text_document.uri)
                    .map(|d| features::references(d, pos.position, p.context.include_declaration))
            }),
            Completion::METHOD => self.handle::<Completion>(req, |s, p| {
                let pos = p.text_document_position;
                s.doc(&pos.text_document.uri)
                    .map(|d| features::completion(d, pos.position).into())
            }),
            DocumentSymbolRequest::METHOD => self.handle::<DocumentSymbolRequest>(req, |s, p| {
                s.doc(&p.text_document.uri)
                    .map(|d| features::symbols(d).into())
            }),
            Formatting::METHOD => self.handle::<Formatting>(req, |s, p| {
                s.doc(&p.text_document.uri).map(features::formatting)
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
