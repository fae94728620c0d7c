//! A person in the loop: the `human` generator (the person types the
//! artifact) and the `human` guard (the person approves it).
//!
//! Both read standard input a line at a time through one reader thread,
//! so a read that is cancelled (a timeout, a cancelled branch) never
//! blocks the runtime's shutdown, and lines are never lost between two
//! askers. Questions go to standard error.

use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, Mutex};

use crate::runtime::registry::{
    BoxFuture, GenError, GenRequest, GenResponse, Generator, GuardCall,
};
use crate::runtime::Verdict;

/// Where answers come from: the lines a person types.
pub trait Lines: Send {
    /// The next line without its line ending; `None` at end of input.
    fn next_line(&mut self) -> BoxFuture<'_, Option<String>>;
}

/// Lines given in advance (tests, scripted hosts).
impl Lines for VecDeque<String> {
    fn next_line(&mut self) -> BoxFuture<'_, Option<String>> {
        let line = self.pop_front();
        Box::pin(async move { line })
    }
}

/// Standard input, read by one thread for the whole process.
struct Stdin(mpsc::UnboundedReceiver<String>);

impl Lines for Stdin {
    fn next_line(&mut self) -> BoxFuture<'_, Option<String>> {
        Box::pin(self.0.recv())
    }
}

/// The process's standard input as [`Lines`], shared by every asker.
fn stdin_lines() -> Arc<Mutex<Stdin>> {
    static STDIN: OnceLock<Arc<Mutex<Stdin>>> = OnceLock::new();
    STDIN
        .get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let spawned = std::thread::Builder::new()
                .name("guardflow-stdin".into())
                .spawn(move || {
                    let stdin = std::io::stdin();
                    for line in stdin.lock().lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
            // without the thread, the sender is dropped: end of input
            drop(spawned);
            Arc::new(Mutex::new(Stdin(rx)))
        })
        .clone()
}

/// Reads an artifact: lines up to one holding a single `.` (or the end
/// of input). `None` when the input ended before any line.
pub async fn read_artifact(lines: &mut dyn Lines) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    loop {
        match lines.next_line().await {
            Some(l) if l.trim_end() == "." => return Some(out.join("\n")),
            Some(l) => out.push(l),
            None if out.is_empty() => return None,
            None => return Some(out.join("\n")),
        }
    }
}

/// Asks for approval of `artifact` on `out`, reading answers from
/// `lines`: `y` passes; `n` asks for feedback (one line, may be empty)
/// and fails with it; anything else asks again.
pub async fn ask_approval(
    lines: &mut dyn Lines,
    out: &mut (dyn Write + Send),
    question: &str,
    artifact: &str,
) -> Verdict {
    let _ = writeln!(
        out,
        "\n──── for your approval ────\n{artifact}\n───────────────────────────"
    );
    loop {
        let _ = write!(out, "{question} [y/n] ");
        let _ = out.flush();
        let Some(answer) = lines.next_line().await else {
            return Verdict::fatal("the input ended before the `human` guard got an answer");
        };
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Verdict::Pass,
            "n" | "no" => {
                let _ = write!(out, "What should change? (one line, Enter for nothing) ");
                let _ = out.flush();
                let why = lines.next_line().await.unwrap_or_default();
                let why = why.trim();
                return Verdict::fail(if why.is_empty() {
                    "a person rejected it".to_string()
                } else {
                    format!("a person rejected it: {why}")
                });
            }
            _ => {
                let _ = writeln!(out, "Answer y or n.");
            }
        }
    }
}

/// The `human` guard. With `yes` (`guardflow run --yes`) every artifact
/// is approved without asking; otherwise standard input must be a
/// terminal.
pub fn guard(yes: bool) -> impl Fn(GuardCall) -> BoxFuture<'static, Verdict> + Send + Sync {
    move |call: GuardCall| {
        Box::pin(async move {
            if yes {
                return Verdict::Pass;
            }
            if !std::io::stdin().is_terminal() {
                return Verdict::fatal(
                    "the `human` guard asks a person for approval, but standard input is not a terminal; run from a terminal, or pass --yes to approve every artifact",
                );
            }
            let question = match call.str_arg(0) {
                "" => "Approve?",
                q => q,
            }
            .to_string();
            let lines = stdin_lines();
            let mut lines = lines.lock().await;
            let mut err = std::io::stderr();
            ask_approval(&mut *lines, &mut err, &question, &call.text()).await
        })
    }
}

/// The `human(prompt)` generator: shows the action's prompt (and the
/// latest feedback) on standard error and reads the artifact from
/// standard input, a terminal or a pipe.
pub struct Human;

impl Generator for Human {
    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let lines = stdin_lines();
            let mut lines = lines.lock().await;
            let mut err = std::io::stderr();
            let intro = request.str_arg(0);
            let _ = writeln!(
                err,
                "\n──── {} (attempt {}) ────",
                request.action, request.attempt
            );
            if !intro.is_empty() {
                let _ = writeln!(err, "{intro}");
            }
            let _ = writeln!(err, "{}", request.prompt.trim_end());
            let _ = writeln!(
                err,
                "(type the answer; end it with a line holding a single `.`)"
            );
            let _ = err.flush();
            match read_artifact(&mut *lines).await {
                Some(text) => Ok(GenResponse::text(text)),
                None => Err(GenError::fatal(format!(
                    "`{}` waits for a person to type the answer, but standard input has ended",
                    request.action
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> VecDeque<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn artifacts_end_at_a_single_dot_or_the_end_of_input() {
        let mut l = lines(&["def f():", "    return 1", ".", "next"]);
        assert_eq!(
            read_artifact(&mut l).await.as_deref(),
            Some("def f():\n    return 1")
        );
        assert_eq!(read_artifact(&mut l).await.as_deref(), Some("next"));
        assert_eq!(read_artifact(&mut l).await, None);
        let mut l = lines(&[" .", "x", "."]);
        assert_eq!(read_artifact(&mut l).await.as_deref(), Some(" .\nx"));
    }

    #[tokio::test]
    async fn approval_asks_until_yes_or_no_and_takes_feedback() {
        let mut out = Vec::new();
        let mut l = lines(&["maybe", "Y"]);
        assert_eq!(
            ask_approval(&mut l, &mut out, "Ship?", "v1").await,
            Verdict::Pass
        );
        let shown = String::from_utf8_lossy(&out);
        assert!(
            shown.contains("v1") && shown.contains("Ship? [y/n]"),
            "{shown}"
        );
        assert!(shown.contains("Answer y or n."), "{shown}");
        let mut l = lines(&["n", "use semver"]);
        assert_eq!(
            ask_approval(&mut l, &mut Vec::new(), "Ship?", "v1").await,
            Verdict::fail("a person rejected it: use semver")
        );
        let mut l = lines(&["no", ""]);
        assert_eq!(
            ask_approval(&mut l, &mut Vec::new(), "Ship?", "v1").await,
            Verdict::fail("a person rejected it")
        );
        let mut l = lines(&[]);
        assert!(matches!(
            ask_approval(&mut l, &mut Vec::new(), "Ship?", "v1").await,
            Verdict::Fatal(_)
        ));
    }
}
