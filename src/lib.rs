//! guardflow: a workflow language for LLM work, checked before it runs.
//!
//! The pipeline, one way:
//!
//! ```text
//! source ──syntax::parse──▶ ast::File ──check::check──▶ ir::Program
//!                 (pest)             (resolve names, types)    (serde, versioned)
//! ```
//!
//! Every phase collects errors instead of stopping; all of them become
//! [`diagnostics::Diagnostic`]s, rendered by ariadne or as JSON lines.

pub mod bench;
pub mod check;
pub mod cli;
pub mod diagnostics;
pub mod engine;
pub mod fmt;
pub mod import;
pub mod lsp;
pub mod otel;
pub mod repl;
pub mod report;
pub mod runtime;
pub mod serve;
pub mod source;
pub mod stats;
pub mod stdlib;
pub mod store;
pub mod syntax;
#[cfg(feature = "temporal")]
pub mod temporal;
