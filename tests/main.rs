//! The one integration-test binary. Modules by subject.

mod cli;
mod docs;
mod examples;
mod ir;
mod support;
mod ui;
