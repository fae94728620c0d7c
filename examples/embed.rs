//! Embedding guardflow in a Rust program: a guard and a generator written
//! in Rust, a workflow compiled from a string, a task run, the report read.
//!
//! Run it with `cargo run --example embed`. The tests run it too.

use guardflow::engine::{Engine, GenError, GenRequest, GenResponse, Verdict};

const WORKFLOW: &str = r#"
use std.{python_syntax}

/// A generator written in Rust, registered below as `scripted`.
generator coder = scripted()

/// Python code with type hints: a guard written in Rust checks them.
action write_function(spec: Text) -> Code<python> {
  :generate coder "Write a Python function: {spec}"
  :guard python_syntax && typed_defs
  :retry 2
  :timeout 5s
}

task main(spec: Text) -> Code<python> {
  method direct {
    :subtasks (f: write_function(spec))
    :result f
  }
}
"#;

fn main() {
    let mut engine = Engine::new();

    // A guard: every `def` line must declare its return type.
    engine.register_guard("typed_defs", "on Code<python>", |call| {
        for (i, line) in call.text().lines().enumerate() {
            if line.trim_start().starts_with("def ") && !line.contains("->") {
                return Verdict::fail(format!(
                    "line {}: `{}` has no return type annotation",
                    i + 1,
                    line.trim()
                ));
            }
        }
        Verdict::Pass
    });

    // A generator: the first answer lacks a return type; once feedback
    // arrives, the second has one.
    engine.register_generator("scripted", "()", |req: &GenRequest| {
        let body = if req.feedback.is_none() {
            "def add(a: int, b: int):\n    return a + b\n"
        } else {
            "def add(a: int, b: int) -> int:\n    return a + b\n"
        };
        Ok::<_, GenError>(GenResponse::text(format!("```python\n{body}```")))
    });

    engine.on_event(|event| {
        if let guardflow::runtime::Event::Attempt(a) = event {
            eprintln!(
                "{} attempt {}: {:?} {}",
                a.action, a.attempt, a.verdict, a.feedback
            );
        }
    });

    let workflow = match engine.compile("embedded.guardflow", WORKFLOW) {
        Ok(w) => w,
        Err(e) => {
            eprint!("{}", e.render(false));
            std::process::exit(1);
        }
    };
    let report = engine
        .run_blocking(&workflow, "main", &[("spec", "add two integers".into())])
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2);
        });
    println!(
        "success: {}, generator calls: {} (worst case {:?})",
        report.success, report.generator_calls, report.worst_case_calls
    );
    if let Some(code) = &report.result {
        println!("{}", guardflow::runtime::text_of(code));
    }
    std::process::exit(if report.success { 0 } else { 1 });
}
