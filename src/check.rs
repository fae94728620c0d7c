//! Checking: parsed files to the checked program.
//!
//! `load` reads the root file, what it uses and the standard library;
//! `resolve` binds every name and checks every type, building the
//! [`ir::Program`]. Errors are collected, never thrown: a program with
//! errors still yields every finding, and no program.

pub mod deciders;
mod error;
pub mod ir;
mod load;
mod resolve;
pub mod verify;

pub use error::{CheckError, NameKind};
pub use load::{
    io_reason, read_bytes, read_text, FsLoader, Loader, MAX_DATA_BYTES, MAX_SOURCE_BYTES,
};

use crate::diagnostics::{self, Diagnostic};
use crate::source::SourceMap;

/// The result of checking one program.
pub struct Checked {
    pub sources: SourceMap,
    /// The program, when names and types check; verification findings may
    /// still be errors: see [`Checked::has_errors`] before running it.
    pub program: Option<ir::Program>,
    /// What verification built, when it ran (names and types clean).
    pub verified: Option<verify::Verified>,
    /// Every finding, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the program whose root file is `name` with text `text`; files it
/// `use`s are read with `loader`, relative to `name`.
pub fn check_with(name: &str, text: &str, loader: &mut dyn Loader) -> Checked {
    check_with_host(name, text, loader, "")
}

/// Like [`check_with`], with `host` holding the `extern` declarations of
/// what an embedding host registered (visible without a `use`).
pub fn check_with_host(name: &str, text: &str, loader: &mut dyn Loader, host: &str) -> Checked {
    let loaded = load::load(name, text, loader, host);
    let mut diagnostics: Vec<Diagnostic> = loaded
        .syntax_errors
        .iter()
        .map(|e| e.to_diagnostic())
        .chain(loaded.load_errors.iter().map(|e| e.to_diagnostic()))
        .collect();
    let (program, errors) = resolve::resolve(&loaded.sources, &loaded.files);
    diagnostics.extend(errors.iter().map(|e| e.to_diagnostic()));
    let (program, verified) = if diagnostics.iter().any(Diagnostic::is_error) {
        // an error can hide a use (a misspelt guard leaves the right one
        // unused; a broken call its generator): names are reported unused
        // once the errors are fixed, never beside them
        diagnostics.retain(|d| {
            !matches!(
                d.code,
                diagnostics::Code::W0001 | diagnostics::Code::W0002 | diagnostics::Code::W0003
            )
        });
        (None, None)
    } else {
        let verified = verify::verify(&program);
        diagnostics.extend(verified.findings.iter().map(|e| e.to_diagnostic()));
        (Some(program), Some(verified))
    };
    diagnostics::sort(&mut diagnostics);
    Checked {
        sources: loaded.sources,
        program,
        verified,
        diagnostics,
    }
}

/// Checks a program read from the file system.
pub fn check_source(name: &str, text: &str) -> Checked {
    check_with(name, text, &mut FsLoader)
}
