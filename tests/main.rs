//! The one integration-test binary. Modules by subject.

mod cli;
mod docs;
mod editors;
mod effects;
mod exact_bounds;
mod examples;
mod fmt;
mod fuzz;
mod hostile;
mod human;
mod injection;
mod ir;
mod kill_resume;
mod llm;
mod lsp;
mod parse_paths;
mod repl;
mod run;
mod runners;
mod sandbox;
mod secrets;
mod store;
mod store_integrity;
mod support;
mod ui;
mod verify;
