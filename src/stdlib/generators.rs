//! The offline generators: `replay` (recorded answers) and `cmd` (a
//! program that answers on stdout).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::process;
use super::sandbox::{Confine, Scratch};
use crate::runtime::registry::{BoxFuture, GenError, GenRequest, GenResponse, Generator};

/// One recorded answer: a line of a replay file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    action: String,
    attempt: u32,
    /// The answer; absent when `error` says the generator failed.
    #[serde(default)]
    output: Option<String>,
    /// A generator failure to replay (retryable, like a dropped
    /// connection).
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    tokens: Option<u64>,
    /// Wait this long before answering, as a model would.
    #[serde(default)]
    delay_ms: Option<u64>,
}

type Recording = HashMap<(String, u32), Entry>;

/// `replay(file)`: answers from a JSON-lines file, one line per action
/// and attempt: `{"action": "implement", "attempt": 2, "output": "…"}`.
#[derive(Default)]
pub struct Replay {
    files: Mutex<HashMap<PathBuf, Arc<Recording>>>,
}

impl Replay {
    fn recording(&self, path: &Path) -> Result<Arc<Recording>, GenError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = files.get(path) {
            return Ok(r.clone());
        }
        let text = crate::check::read_text(path, crate::check::MAX_DATA_BYTES).map_err(|e| {
            GenError::fatal(format!(
                "cannot read the replay file `{}`: {e}",
                path.display(),
            ))
        })?;
        let r =
            Arc::new(parse(&text).map_err(|e| {
                GenError::fatal(format!("the replay file `{}`: {e}", path.display()))
            })?);
        files.insert(path.to_path_buf(), r.clone());
        Ok(r)
    }
}

/// Reads a replay file; blank lines and lines starting with `//` are
/// skipped.
fn parse(text: &str) -> Result<Recording, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let e: Entry = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if e.output.is_none() && e.error.is_none() {
            return Err(format!(
                "line {}: an entry needs `output` (the answer) or `error`",
                i + 1
            ));
        }
        let key = (e.action.clone(), e.attempt);
        if out.insert(key, e).is_some() {
            return Err(format!(
                "line {}: a second entry for the same action and attempt",
                i + 1
            ));
        }
    }
    Ok(out)
}

impl Generator for Replay {
    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let path = request.workdir.join(request.str_arg(0));
            let recording = self.recording(&path)?;
            let key = (request.action.clone(), request.attempt);
            let Some(entry) = recording.get(&key) else {
                let mut have: Vec<u32> = recording
                    .keys()
                    .filter(|(a, _)| *a == request.action)
                    .map(|(_, n)| *n)
                    .collect();
                have.sort_unstable();
                return Err(GenError::fatal(format!(
                    "`{}` records no answer for `{}` attempt {} (it has attempts {:?} of it)",
                    path.display(),
                    request.action,
                    request.attempt,
                    have
                )));
            };
            if let Some(ms) = entry.delay_ms {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match (&entry.output, &entry.error) {
                (_, Some(err)) => Err(GenError::retryable(err.clone())),
                (Some(out), None) => Ok(GenResponse {
                    text: out.clone(),
                    tokens: entry.tokens,
                    prompt_tokens: None,
                }),
                (None, None) => Err(GenError::fatal("an entry without output")),
            }
        })
    }
}

/// `cmd(program)`: runs `program` with the prompt on stdin and takes the
/// artifact from stdout. The environment tells it the action
/// (`GUARDFLOW_ACTION`), the attempt (`GUARDFLOW_ATTEMPT`, from 1), the
/// latest feedback (`GUARDFLOW_FEEDBACK`), the role (`GUARDFLOW_ROLE`) and
/// `GUARDFLOW_MAX_TOKENS`. A nonzero exit is a failed attempt. The
/// program runs in the sandbox: it reads the workflow's directory and
/// writes only its own temporary directory, without network unless
/// `network: true`, and with the variables named in `env: [...]` only.
pub struct Cmd;

impl Generator for Cmd {
    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let program = request.str_arg(0).to_string();
            let timeout = request
                .args
                .get(1)
                .and_then(|v| v.as_u64())
                .map(Duration::from_millis)
                .unwrap_or(Duration::from_secs(60));
            let mut env = vec![
                ("GUARDFLOW_ACTION".to_string(), request.action.clone()),
                ("GUARDFLOW_ATTEMPT".to_string(), request.attempt.to_string()),
                (
                    "GUARDFLOW_FEEDBACK".to_string(),
                    request.feedback.clone().unwrap_or_default(),
                ),
                (
                    "GUARDFLOW_ROLE".to_string(),
                    request.role.clone().unwrap_or_default(),
                ),
                (
                    "GUARDFLOW_OUTPUT_TYPE".to_string(),
                    request.output_type.to_string(),
                ),
            ];
            if let Some(n) = request.max_tokens {
                env.push(("GUARDFLOW_MAX_TOKENS".to_string(), n.to_string()));
            }
            let mut confine = Confine::from_args(&request.args, 2, &request.workdir);
            let max_output = confine.max_output;
            confine.read.push(request.workdir.to_path_buf());
            let Scratch { dir: temp, policy } =
                Scratch::new("guardflow-cmd-", &confine, timeout).map_err(GenError::fatal)?;
            let spec = process::Spec {
                command: program.clone(),
                argv: None,
                stdin: request.prompt.into_bytes(),
                env,
                cwd: request.workdir.to_path_buf(),
                timeout,
                sandbox: policy,
                max_output,
            };
            let out = process::run(spec)
                .await
                .map_err(|e| GenError::fatal(format!("cannot run `{program}`: {e}")))?;
            drop(temp);
            if out.timed_out {
                return Err(GenError::retryable(format!(
                    "`{program}` did not answer within {}",
                    crate::runtime::guard::show_duration(timeout)
                )));
            }
            if let Some(cut) = out.cut_note() {
                return Err(GenError::retryable(format!(
                    "`{program}` answered more than `max_output` allows ({cut}); \
                     give `cmd(…, max_output: N)` a larger N"
                )));
            }
            match out.status {
                Some(0) => Ok(GenResponse::text(out.stdout)),
                // the shell's "not found" and "not executable"
                Some(126 | 127) => Err(GenError::fatal(format!(
                    "cannot run `{program}`: {}",
                    process::tail(&out.stderr, 5, 1000)
                ))),
                status => Err(GenError::retryable(format!(
                    "`{program}` exited with status {}:\n{}",
                    status.map_or("(killed)".to_string(), |s| s.to_string()),
                    process::tail(&out.stderr, 20, 2000)
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_files_are_read_strictly() {
        let r = parse("{\"action\": \"a\", \"attempt\": 1, \"output\": \"x\"}\n\n// note\n")
            .expect("parses");
        assert_eq!(r.len(), 1);
        let e = parse("{\"action\": \"a\", \"attempt\": 1}").unwrap_err();
        assert!(e.contains("needs `output`"), "{e}");
        let e = parse("{\"action\": \"a\", \"attempt\": 1, \"outptu\": \"x\"}").unwrap_err();
        assert!(e.contains("line 1") && e.contains("outptu"), "{e}");
        let two = "{\"action\": \"a\", \"attempt\": 1, \"output\": \"x\"}\n".repeat(2);
        assert!(parse(&two).unwrap_err().contains("second entry"));
    }
}
