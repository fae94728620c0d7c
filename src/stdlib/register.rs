//! Binds the standard library's implementations to an engine, through
//! the same API a host uses. The declarations are in `stdlib/*.guardflow`,
//! so every signature here is empty.

use super::generators::{Cmd, Replay};
use super::python::{run_tests, Options, Runner};
use super::sandbox::Confine;
use super::test_first::Mode;
use super::{imports, json, process, syntax, text};
use std::sync::Arc;

use crate::engine::Engine;
use crate::runtime::registry::GuardCall;
use crate::runtime::{Value, Verdict};

pub fn register(engine: &mut Engine) {
    register_text_guards(engine);
    register_code_guards(engine);
    register_test_first_guards(engine);
    register_effect_guards(engine);
    engine.register_async_guard("judge", "", super::judge::judge);
    engine.register_generator("replay", "", Replay::default());
    engine.register_generator("cmd", "", Cmd);
    engine.register_generator("llm", "", super::llm::Llm::default());
    engine.register_generator("human", "", super::human::Human);
    engine.register_generator("simulate", "", super::simulate::Simulate::default());
    engine.register_effect("shell", "", Arc::new(|c| Box::pin(super::shell::shell(c))));
    register_catalog(engine);
}

/// The guard catalog's checks (`std/catalog.guardflow`) and the
/// `write_file` effect.
fn register_catalog(engine: &mut Engine) {
    use super::{diff, docsync, layers};
    engine
        .register_guard("layers", "", |c| {
            let rules = layers::rules_of(c.args.get(2));
            layers::layers(c.str_arg(0), c.str_arg(1), &c.text(), &rules)
        })
        .register_guard("diff_paths", "", |c| {
            diff::diff_paths(&c.text(), &c.list_arg(0))
        })
        .register_guard("docs_match", "", |c| {
            docsync::docs_match(&c.text(), c.str_arg(0))
        })
        .register_guard("documents", "", |c| {
            docsync::documents(&c.text(), c.str_arg(0))
        })
        .register_async_guard("precommit", "", |c| {
            Box::pin(async move {
                let confine = Confine::from_args(&c.args, 3, &c.workdir);
                let (path, hooks, timeout) = (c.str_arg(0), c.list_arg(1), c.duration_arg(2));
                super::precommit::precommit(&c.workdir, path, &hooks, &c.text(), timeout, &confine)
                    .await
            })
        });
    engine.register_effect(
        "write_file",
        "",
        Arc::new(|c| Box::pin(super::apply::write_file(c))),
    );
}

fn register_text_guards(engine: &mut Engine) {
    engine
        .register_guard("regex", "", |c| text::regex(&c.text(), c.str_arg(0)))
        .register_guard("contains", "", |c| text::contains(&c.text(), c.str_arg(0)))
        .register_guard("not_contains", "", |c| {
            text::not_contains(&c.text(), c.str_arg(0))
        })
        .register_guard("min_len", "", |c| text::min_len(&c.text(), c.int_arg(0)))
        .register_guard("max_len", "", |c| text::max_len(&c.text(), c.int_arg(0)))
        .register_guard("max_lines", "", |c| {
            text::max_lines(&c.text(), c.int_arg(0))
        })
        .register_guard("equals", "", |c| text::equals(&c.text(), c.str_arg(0)))
        .register_guard("non_empty", "", |c| text::non_empty(&c.text()))
        .register_guard("no_secrets", "", |c| text::no_secrets(&c.text()));
}

fn register_code_guards(engine: &mut Engine) {
    engine
        .register_guard("syntax", "", |c| syntax::syntax(c.str_arg(0), &c.text()))
        .register_guard("python_syntax", "", |c| syntax::syntax("python", &c.text()))
        .register_guard("rust_syntax", "", |c| syntax::syntax("rust", &c.text()))
        .register_guard("js_syntax", "", |c| syntax::syntax("javascript", &c.text()))
        .register_guard("ts_syntax", "", |c| syntax::syntax("typescript", &c.text()))
        .register_guard("json_syntax", "", |c| json::json_syntax(&c.text()))
        .register_guard("imports_allowed", "", |c| {
            imports::imports_allowed(c.str_arg(0), &c.text(), &c.list_arg(1), &c.list_arg(2))
        })
        .register_guard("json_schema", "", |c| {
            json::json_schema(&c.text(), c.str_arg(0))
        })
        .register_async_guard("pytest", "", |c| {
            Box::pin(async move { test_runner(Runner::Pytest, &c).await })
        })
        .register_async_guard("unittest", "", |c| {
            Box::pin(async move { test_runner(Runner::Unittest, &c).await })
        })
        .register_async_guard("command", "", |c| {
            Box::pin(async move {
                let run = c.str_arg(0).to_string();
                let timeout = c.duration_arg(1);
                let files = c.map_arg(2);
                let confine = Confine::from_args(&c.args, 3, &c.workdir);
                process::command_guard_with_files(
                    &run,
                    &c.text(),
                    timeout,
                    &c.workdir,
                    &files,
                    &confine,
                )
                .await
            })
        });
}

/// `pytest`/`unittest(tests, timeout, args, select, files, <sandbox>)`.
async fn test_runner(runner: Runner, c: &GuardCall) -> Verdict {
    let options = Options {
        args: c.list_arg(2),
        select: c.str_arg(3).to_string(),
        files: c.map_arg(4),
    };
    let confine = Confine::from_args(&c.args, 5, &c.workdir);
    let (tests, timeout) = (c.str_arg(0), c.duration_arg(1));
    run_tests(runner, &c.text(), tests, &options, timeout, &confine).await
}

/// The test-first guards and type checking (`tests_fail_first`,
/// `characterizes`, `mypy`).
fn register_test_first_guards(engine: &mut Engine) {
    engine
        .register_async_guard("tests_fail_first", "", |c| {
            Box::pin(async move { test_first(Mode::FailFirst, &c).await })
        })
        .register_async_guard("characterizes", "", |c| {
            Box::pin(async move { test_first(Mode::Characterize, &c).await })
        })
        .register_async_guard("mypy", "", |c| {
            Box::pin(async move {
                let strict = c.args.first().and_then(Value::as_bool).unwrap_or(false);
                let confine = Confine::from_args(&c.args, 3, &c.workdir);
                super::mypy::mypy(
                    &c.text(),
                    strict,
                    &c.list_arg(1),
                    c.duration_arg(2),
                    &confine,
                )
                .await
            })
        });
}

/// `tests_fail_first(stub, …)`/`characterizes(legacy, …)`: `(code,
/// timeout, files, <sandbox>)`; the artifact is the tests.
async fn test_first(mode: Mode, c: &GuardCall) -> Verdict {
    let confine = Confine::from_args(&c.args, 3, &c.workdir);
    let files = c.map_arg(2);
    super::test_first::judge(
        mode,
        &c.text(),
        c.str_arg(0),
        &files,
        c.duration_arg(1),
        &confine,
    )
    .await
}

/// Binds the `human` guard; with `yes` it approves every artifact
/// without asking (`guardflow run --yes`).
pub fn register_human_guard(engine: &mut Engine, yes: bool) {
    engine.register_async_guard("human", "", super::human::guard(yes));
}

fn register_effect_guards(engine: &mut Engine) {
    register_human_guard(engine, false);
    engine
        .register_guard("allowed_commands", "", |c| {
            allowed_commands(c.text().trim(), &c.list_arg(0))
        })
        .register_guard("exit_code", "", |c| {
            let want = c.int_arg(0);
            match c.subject.get("exit_code").and_then(Value::as_i64) {
                Some(got) if got == want as i64 => Verdict::Pass,
                got => {
                    let stderr = c
                        .subject
                        .get("stderr")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    Verdict::fail(format!(
                        "the command exited with status {}, not {want}{}",
                        got.map_or("(none)".to_string(), |g| g.to_string()),
                        if stderr.is_empty() {
                            String::new()
                        } else {
                            format!(":\n{}", process::tail(stderr, 20, 2000))
                        }
                    ))
                }
            }
        });
}

/// The `allowed_commands` guard: the command, split into an argv as the
/// `shell` effect splits it, starts with the words of one of `prefixes`,
/// each word whole (`["grep -c"]` allows `grep -c X f`, not `grep -cv X
/// f` nor `grep`); a command with shell syntax is refused, with why.
fn allowed_commands(command: &str, prefixes: &[String]) -> Verdict {
    let argv = match super::shell::argv(command) {
        Ok(argv) => argv,
        Err(e) => return Verdict::fail(e),
    };
    let allowed = prefixes.iter().any(|p| {
        super::shell::argv(p).is_ok_and(|words| !words.is_empty() && argv.starts_with(&words))
    });
    if allowed {
        Verdict::Pass
    } else {
        Verdict::fail(format!(
            "`{command}` is not allowed; the command must start with one of: {}",
            prefixes
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::allowed_commands;
    use crate::runtime::Verdict;

    fn allowed(command: &str, prefix: &str) -> bool {
        allowed_commands(command, &[prefix.to_string()]) == Verdict::Pass
    }

    #[test]
    fn allowed_commands_match_whole_words_and_refuse_chains() {
        assert!(allowed("systemctl restart web", "systemctl restart"));
        assert!(allowed("systemctl  'restart' web", "systemctl restart"));
        assert!(!allowed("systemctl restartx web", "systemctl restart"));
        assert!(!allowed("systemctl", "systemctl restart"));
        assert!(!allowed(
            "systemctl restart web; rm -rf /",
            "systemctl restart"
        ));
        assert!(!allowed("systemctl restart $(whoami)", "systemctl restart"));
        assert!(!allowed("ls", "systemctl restart"));
        assert!(allowed("grep -c ERROR log.txt", "grep -c"));
        assert!(!allowed("grep -cv ERROR log.txt", "grep -c"));
        assert!(!allowed(
            "grep -c ERROR log.txt & rm -f victim.txt",
            "grep -c"
        ));
        assert!(!allowed("ls", ""));
        let Verdict::Fail(why) = allowed_commands("grep -c x f & rm v", &["grep -c".into()]) else {
            panic!("passed")
        };
        assert!(why.contains("`&` is shell syntax"), "{why}");
    }
}
