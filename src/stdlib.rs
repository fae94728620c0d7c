//! The standard library's declarations, embedded in the binary.
