//! The one integration-test binary. Modules by subject.

mod cli;
mod docs;
mod exact_bounds;
mod examples;
mod fuzz;
mod ir;
mod run;
mod store;
mod support;
mod ui;
mod verify;
