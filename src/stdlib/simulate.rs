//! The `simulate` generator: a seeded stand-in for a model, for offline
//! experiments and tests. Each attempt answers with the contents of the
//! `pass` file with probability `p`, else with the `fail` file's.
//!
//! The model (docs/stdlib.md, "The `simulate` generator"): a run (a bench
//! trial) and an action first draw whether their attempts are *tied*,
//! with probability `correlation`. Tied attempts all give one answer,
//! drawn once (`pass` with probability `p`): the trial can solve the task
//! or it cannot. Untied attempts draw independently, each `pass` with
//! probability `p`. Every attempt passes with probability `p`, two
//! attempts of a trial agree beyond chance with correlation `correlation`,
//! and with `R` retries a trial succeeds with probability
//! `correlation · p + (1 − correlation) · (1 − (1 − p)^(R + 1))`
//! (when the guard accepts `pass` and rejects `fail`).
//!
//! Every draw is a function of the run's seed, the action and the
//! attempt number an uninterrupted run gives the call
//! (`GenRequest::uncut_attempt`), never of timing: a run, its resume
//! (even one that makes again a call the stop cut off) and a rerun with
//! the same seed answer alike, and concurrent trials share no state but
//! the files read. (Concurrent calls of one action within a run, in a
//! fork-join or a `best-of`, are numbered in the order they start.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::runtime::registry::{BoxFuture, GenError, GenRequest, GenResponse, Generator};
use crate::runtime::Value;

/// SplitMix64's finaliser: a bijection of `u64` that spreads every input
/// bit over the output.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of `text`: a stable hash (the same in every process and
/// version, unlike `std`'s).
fn fnv(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A uniform draw in [0, 1) from the seed, the action, the attempt
/// (0 for the trial's draws) and which draw it is.
fn unit(seed: u64, action: &str, attempt: u32, draw: u64) -> f64 {
    let x = mix(mix(mix(seed ^ fnv(action)) ^ u64::from(attempt)) ^ draw);
    // the top 53 bits: every value exactly representable
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The seed of trial `trial` (0-based) of a bench seeded `base`: the
/// same trial has the same seed in every arm and model, so arms are
/// compared on the same draws.
pub fn trial_seed(base: u64, trial: u64) -> u64 {
    mix(mix(base) ^ trial)
}

/// Which draws `unit` makes.
const TIED: u64 = 1;
const TRIAL_ANSWER: u64 = 2;
const ATTEMPT_ANSWER: u64 = 3;

/// Whether attempt `attempt` (1-based) of `action` in the run seeded
/// `seed` answers with the passing file.
pub fn passes(seed: u64, action: &str, attempt: u32, p: f64, correlation: f64) -> bool {
    if unit(seed, action, 0, TIED) < correlation {
        unit(seed, action, 0, TRIAL_ANSWER) < p
    } else {
        unit(seed, action, attempt, ATTEMPT_ANSWER) < p
    }
}

/// The probability that a trial with `retries` retries succeeds, when
/// the guard accepts exactly the passing answer: the model's prediction.
pub fn predicted_success(p: f64, correlation: f64, retries: u64) -> f64 {
    let attempts = i32::try_from(retries.saturating_add(1)).unwrap_or(i32::MAX);
    let independent = 1.0 - (1.0 - p).powi(attempts);
    correlation * p + (1.0 - correlation) * independent
}

/// `simulate(pass, fail, p, correlation, delay)`; files read once each.
#[derive(Default)]
pub struct Simulate {
    files: Mutex<HashMap<PathBuf, Arc<str>>>,
}

impl Simulate {
    fn file(&self, path: &Path, which: &str) -> Result<Arc<str>, GenError> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(text) = files.get(path) {
            return Ok(text.clone());
        }
        let text = crate::check::read_text(path, crate::check::MAX_DATA_BYTES).map_err(|e| {
            GenError::fatal(format!(
                "simulate: cannot read the `{which}` file `{}`: {e}",
                path.display()
            ))
        })?;
        let text: Arc<str> = Arc::from(text);
        files.insert(path.to_path_buf(), text.clone());
        Ok(text)
    }
}

/// Argument `i` as a probability, or why it is not one.
fn probability(args: &[Value], i: usize, name: &str) -> Result<f64, GenError> {
    let v = args.get(i).and_then(Value::as_f64).unwrap_or(0.0);
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(GenError::fatal(format!(
            "simulate: `{name}` is {v}; it is a probability, from 0 to 1"
        )))
    }
}

impl Generator for Simulate {
    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        Box::pin(async move {
            let p = probability(&request.args, 2, "p")?;
            let correlation = probability(&request.args, 3, "correlation")?;
            let delay = request.args.get(4).and_then(Value::as_u64).unwrap_or(0);
            let pass = passes(
                request.seed,
                &request.action,
                request.uncut_attempt,
                p,
                correlation,
            );
            let (which, i) = if pass { ("pass", 0) } else { ("fail", 1) };
            let path = request.workdir.join(request.str_arg(i));
            let text = self.file(&path, which)?;
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            Ok(GenResponse {
                // about four bytes a token, as model tokenizers go
                tokens: Some((text.len() as u64).div_ceil(4)),
                prompt_tokens: Some((request.prompt.len() as u64).div_ceil(4)),
                text: text.to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_and_independent_of_order() {
        let n = 20_000u32;
        let hits = (1..=n).filter(|&k| passes(7, "a", k, 0.3, 0.0)).count() as f64;
        // 0.3 ± 5 standard deviations
        let sd = (0.3 * 0.7 / f64::from(n)).sqrt();
        assert!((hits / f64::from(n) - 0.3).abs() < 5.0 * sd, "{hits}");
        assert_eq!(passes(7, "a", 3, 0.3, 0.0), passes(7, "a", 3, 0.3, 0.0));
    }

    #[test]
    fn tied_attempts_agree() {
        for seed in 0..200 {
            let first = passes(seed, "a", 1, 0.5, 1.0);
            assert!((2..10).all(|k| passes(seed, "a", k, 0.5, 1.0) == first));
        }
    }

    #[test]
    fn the_prediction_has_its_limits() {
        assert!((predicted_success(0.3, 0.0, 0) - 0.3).abs() < 1e-12);
        assert!((predicted_success(0.3, 0.0, 3) - (1.0 - 0.7f64.powi(4))).abs() < 1e-12);
        assert!((predicted_success(0.3, 1.0, 3) - 0.3).abs() < 1e-12);
        assert!(predicted_success(0.3, 0.0, u64::MAX) <= 1.0);
    }
}
