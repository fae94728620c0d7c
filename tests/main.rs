//! The one integration-test binary. Modules by subject.

mod cli;
mod docs;
mod editors;
mod exact_bounds;
mod examples;
mod fuzz;
mod ir;
mod parse_paths;
mod run;
mod support;
mod ui;
mod verify;
