//! The one integration-test binary. Modules by subject.

mod apply;
mod branching;
mod catalog;
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
mod judge;
mod kill_resume;
mod llm;
mod lsp;
mod map;
mod parse_paths;
mod providers;
mod refine;
mod repl;
mod run;
mod runners;
mod sandbox;
mod secrets;
mod store;
mod store_integrity;
mod support;
#[cfg(feature = "temporal")]
mod temporal;
mod test_first;
mod ui;
mod verify;
