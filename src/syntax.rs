//! Syntax: source text to a typed AST with spans.
//!
//! `lexer` (logos) gives the token view used for recovery, highlighting
//! and nesting limits; `parser` (pest) builds the [`ast`]; `error` holds
//! the syntax errors as data.

pub mod ast;
pub mod error;
pub mod lexer;
mod parser;
pub mod properties;

pub use error::SyntaxError;
pub use parser::{parse, parse_with_pest_only};
