//! The live progress view of `guardflow run` on a terminal: one line per
//! running action with its attempt and the latest verdict.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::runtime::{Event, VerdictKind};

pub struct Progress {
    bars: MultiProgress,
    active: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            active: Mutex::new(HashMap::new()),
        }
    }

    fn style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    pub fn event(&self, e: &Event) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        match e {
            Event::ActionStarted { path, action } => {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(Self::style());
                bar.set_prefix(path.clone());
                bar.set_message(format!("{action}: generating…"));
                bar.enable_steady_tick(Duration::from_millis(100));
                active.insert(path.clone(), bar);
            }
            Event::Attempt(a) => {
                if let Some(bar) = active.get(&a.path) {
                    let first = a.feedback.lines().next().unwrap_or("");
                    let msg = match a.verdict {
                        VerdictKind::Pass => format!("attempt {} passed", a.attempt),
                        VerdictKind::Fail => format!("attempt {} rejected: {first}", a.attempt),
                        VerdictKind::Fatal => format!("attempt {} fatal: {first}", a.attempt),
                    };
                    bar.set_message(msg);
                }
            }
            Event::Escalated { path, target, .. } => {
                if let Some(bar) = active.get(path) {
                    bar.set_message(format!("escalating to `{target}`"));
                }
            }
            Event::Committed { path, action, .. } => {
                if let Some(bar) = active.remove(path) {
                    bar.finish_with_message(format!("✓ {action}"));
                }
            }
            Event::ActionFailed {
                path,
                action,
                reason,
            } => {
                if let Some(bar) = active.remove(path) {
                    let first = reason.lines().next().unwrap_or("");
                    bar.finish_with_message(format!("✗ {action}: {first}"));
                }
            }
            Event::MethodSkipped { path, reason, .. }
            | Event::MethodFailed { path, reason, .. } => {
                let first = reason.lines().next().unwrap_or("");
                let _ = self.bars.println(format!("  {path}: {first}"));
            }
            _ => {}
        }
    }

    /// Stops what is still spinning (a cancelled run) and clears the
    /// view, so the summary that follows stands alone.
    pub fn finish(&self) {
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        for (_, bar) in active.drain() {
            bar.abandon();
        }
        let _ = self.bars.clear();
    }
}
