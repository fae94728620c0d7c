//! The standard library's declarations, embedded in the binary.
//!
//! `stdlib/*.guardflow` declare, with `extern`, what the Rust side
//! implements. The prelude is visible in every program; the other files'
//! guards are imported by name with `use std.{…}`.

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
];

/// The file whose items need no `use`.
pub const PRELUDE: &str = "std/prelude.guardflow";
