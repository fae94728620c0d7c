//! `guardflow import`: atomicguard's JSON workflows as guardflow source.
//!
//! atomicguard (the reference framework of *Managing the Stochastic*)
//! describes a workflow as JSON: action pairs (a generator and a guard),
//! `requires` between them, `rmax` retries, guard types with their
//! configuration, and prompts (inline, or in a `prompts.json` beside the
//! workflow) with `{placeholders}`. [`import`] reads one workflow
//! (`workflow.json`) or a map of them (as `benchmarks/workflows.json`),
//! validates it against the constraints of atomicguard's schema
//! (`import/workflow.schema.json`), and writes the equivalent guardflow
//! file, laid out by the formatter. What has no equivalent is refused
//! with an [`ImportError`] per problem: which workflow, which action
//! pair, which field, why, and what to do. docs/import.md has the mapping.

mod emit;
mod model;

use std::fmt;

pub use model::MAX_ACTION_PAIRS;

/// A JSON document to import: its name (for messages) and its text.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// A successful import.
#[derive(Debug)]
pub struct Imported {
    /// The guardflow source, in the formatter's canonical layout.
    pub text: String,
    /// The workflows imported, by id.
    pub workflows: Vec<String>,
    /// What the reader should know (placeholders kept as text, …).
    pub notes: Vec<String>,
}

/// Why (part of) a workflow cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file the problem is in.
    pub file: String,
    /// The workflow's id (its key in a map of workflows) or its `name`.
    pub workflow: Option<String>,
    /// The action pair's id.
    pub action: Option<String>,
    /// Where, as a JSON pointer (`/action_pairs/g_impl/guard`); empty for
    /// the whole document.
    pub pointer: String,
    /// What is wrong and why.
    pub message: String,
    /// What to do about it.
    pub help: Option<String>,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(w) = &self.workflow {
            write!(f, ": workflow `{w}`")?;
        }
        if let Some(a) = &self.action {
            write!(f, ", action pair `{a}`")?;
        }
        if let Some(field) = self.field() {
            write!(f, ", field `{field}`")?;
        }
        if !self.pointer.is_empty() {
            write!(f, " (at {})", self.pointer)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl ImportError {
    /// The field named by the pointer: its last part that is a field name
    /// (not an array index, an action pair's id or a workflow's id).
    pub fn field(&self) -> Option<&str> {
        let parts: Vec<&str> = self.pointer.split('/').skip(1).collect();
        let last = parts
            .iter()
            .rposition(|p| !p.is_empty() && !p.bytes().all(|b| b.is_ascii_digit()))?;
        if last == 0 && parts.len() == 1 && self.workflow.as_deref() == Some(parts[0]) {
            return None;
        }
        if last > 0 && parts[last - 1] == "action_pairs" {
            return None;
        }
        Some(parts[last])
    }
}

/// Imports the atomicguard workflow(s) in `workflow`, with the prompt
/// templates of `prompts` (a `prompts.json`) when given.
pub fn import(workflow: Source, prompts: Option<Source>) -> Result<Imported, Vec<ImportError>> {
    let parsed = model::parse(workflow, prompts)?;
    let (text, notes) = emit::emit(&parsed, workflow.name).map_err(|message| {
        vec![ImportError {
            file: workflow.name.to_string(),
            workflow: None,
            action: None,
            pointer: String::new(),
            message,
            help: None,
        }]
    })?;
    let text = match crate::fmt::format("<import>", &text) {
        Ok(t) => t,
        Err(e) => {
            let why = match e {
                crate::fmt::FormatError::Syntax { diagnostics, .. } => diagnostics
                    .first()
                    .map(|d| d.message.clone())
                    .unwrap_or_default(),
                crate::fmt::FormatError::Internal(why) => why,
            };
            return Err(vec![ImportError {
                file: workflow.name.to_string(),
                workflow: None,
                action: None,
                pointer: String::new(),
                message: format!(
                    "the imported workflow could not be laid out ({why}); this is a bug in guardflow import, please report it"
                ),
                help: None,
            }]);
        }
    };
    Ok(Imported {
        text,
        workflows: parsed.workflows.iter().map(|w| w.id.clone()).collect(),
        notes,
    })
}
