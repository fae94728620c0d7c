//! The one integration-test binary. Modules by subject.

mod cli;
mod docs;
mod exact_bounds;
mod examples;
mod fmt;
mod fuzz;
mod ir;
mod lsp;
mod run;
mod support;
mod ui;
mod verify;
