//! The standard library: declarations and their Rust implementations.
//!
//! `stdlib/*.guardflow` declare, with `extern`, what the Rust side
//! implements. The prelude is visible in every program; the other files'
//! guards are imported by name with `use std.{…}`. The modules below
//! implement them; `register` binds them to an engine through the same
//! API a host uses.

pub mod apply;
pub mod diff;
pub mod docsync;
pub mod generators;
pub mod human;
pub mod imports;
pub mod json;
pub mod judge;
pub mod layers;
pub mod llm;
pub mod mypy;
pub mod precommit;
pub mod process;
pub mod providers;
pub mod python;
mod register;
pub mod sandbox;
pub mod shell;
pub mod simulate;
pub mod syntax;
pub mod test_first;
pub mod text;

pub use register::{register, register_human_guard};

/// (display name, text) of every standard library file; the prelude first.
pub const FILES: &[(&str, &str)] = &[
    (
        "std/prelude.guardflow",
        include_str!("../stdlib/prelude.guardflow"),
    ),
    (
        "std/text.guardflow",
        include_str!("../stdlib/text.guardflow"),
    ),
    (
        "std/code.guardflow",
        include_str!("../stdlib/code.guardflow"),
    ),
    (
        "std/effects.guardflow",
        include_str!("../stdlib/effects.guardflow"),
    ),
    (
        "std/catalog.guardflow",
        include_str!("../stdlib/catalog.guardflow"),
    ),
];

/// The file whose items need no `use`.
pub const PRELUDE: &str = "std/prelude.guardflow";

/// The declarations of what an embedding host registered; a prelude too.
pub const HOST_PRELUDE: &str = "host/prelude.guardflow";
