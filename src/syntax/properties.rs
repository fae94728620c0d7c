//! The `:property` names of each place in a program, as the grammar
//! (`grammar/guardflow.pest`) knows them: for the fast path, messages, the
//! REPL's and the language server's completion.

/// An action's body.
pub const ACTION: &[&str] = &[
    ":generate",
    ":role",
    ":guard",
    ":retry",
    ":pre",
    ":pre-guard",
    ":effect",
    ":idempotent",
    ":timeout",
    ":uses",
    ":feedback",
    ":max-tokens",
    ":p",
    ":strategy",
];

/// A method's body.
pub const METHOD: &[&str] = &[
    ":pre",
    ":subtasks",
    ":ordering",
    ":result",
    ":uses",
    ":on-fail",
    ":history",
];

/// After a subtask's call.
pub const SUBTASK: &[&str] = &[":parallel", ":escalate-to", ":max-escalations"];

/// After a task's parameters.
pub const TASK: &[&str] = &[":max-depth"];

/// A test's body.
pub const TEST: &[&str] = &[":run", ":with", ":expect"];

/// The top level of a file: defaults.
pub const FILE: &[&str] = &[
    ":default-retry",
    ":default-timeout",
    ":default-p",
    ":default-max-tokens",
];
