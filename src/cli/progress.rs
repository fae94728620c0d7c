//! The live progress view of `guardflow run` on a terminal: a summary
//! line (committed, running, failed, attempts) and one line for each of
//! the first few running actions, with its attempt and latest verdict.
//! Finished actions leave the view; a failed one is printed above it. The
//! view stays a few lines high however many actions run at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::runtime::{Event, VerdictKind};

/// Running actions shown with a line of their own; the others are
/// counted in the summary.
pub const SHOWN: usize = 8;

/// What the view shows, apart from drawing it.
#[derive(Debug, Default)]
pub struct View {
    /// Running actions by path: their line's text, if they have a line.
    running: HashMap<String, Option<String>>,
    /// How many of them have a line (kept, not counted: every event
    /// asks).
    lines: usize,
    pub committed: u64,
    pub failed: u64,
    pub attempts: u64,
}

/// What an event changes in the view.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Nothing,
    /// A running action gets a line, with this text.
    Show {
        path: String,
        text: String,
    },
    /// Its line now reads this.
    Update {
        path: String,
        text: String,
    },
    /// Its line goes (finished); `print` is kept above the view.
    Remove {
        path: String,
        print: Option<String>,
    },
    /// A line printed above the view.
    Print(String),
}

impl View {
    pub fn shown(&self) -> usize {
        self.lines
    }

    pub fn summary(&self) -> String {
        let running = self.running.len();
        let hidden = running - self.shown();
        let mut s = format!(
            "{} committed · {running} running · {} failed · {} attempts",
            self.committed, self.failed, self.attempts
        );
        if hidden > 0 {
            s.push_str(&format!(" ({hidden} running not shown)"));
        }
        s
    }

    /// Updates the view; returns what to draw.
    pub fn apply(&mut self, e: &Event) -> Change {
        match e {
            Event::ActionStarted { path, action } => {
                let text = format!("{action}: generating…");
                if self.shown() < SHOWN {
                    self.running.insert(path.clone(), Some(text.clone()));
                    self.lines += 1;
                    Change::Show {
                        path: path.clone(),
                        text,
                    }
                } else {
                    self.running.insert(path.clone(), None);
                    Change::Nothing
                }
            }
            Event::Attempt(a) => {
                self.attempts += 1;
                let first = a.feedback.lines().next().unwrap_or("");
                let text = match a.verdict {
                    VerdictKind::Pass => format!("{}: attempt {} passed", a.action, a.attempt),
                    VerdictKind::Fail => {
                        format!("{}: attempt {} rejected: {first}", a.action, a.attempt)
                    }
                    VerdictKind::Fatal => {
                        format!("{}: attempt {} fatal: {first}", a.action, a.attempt)
                    }
                    VerdictKind::Interrupted => format!(
                        "{}: attempt {} was interrupted; calling again",
                        a.action, a.attempt
                    ),
                };
                self.line(&a.path, text)
            }
            Event::Escalated { path, target, .. } => {
                self.line(path, format!("escalating to `{target}`"))
            }
            Event::Committed { path, .. } => {
                self.committed += 1;
                self.finish(path, None)
            }
            Event::ActionFailed {
                path,
                action,
                reason,
            } => {
                self.failed += 1;
                let first = reason.lines().next().unwrap_or("");
                self.finish(path, Some(format!("✗ {path}: {action}: {first}")))
            }
            Event::MethodSkipped { path, reason, .. }
            | Event::MethodFailed { path, reason, .. } => {
                let first = reason.lines().next().unwrap_or("");
                Change::Print(format!("  {path}: {first}"))
            }
            e => notice(e).map_or(Change::Nothing, Change::Print),
        }
    }

    /// New text for a running action's line; one without a line gets one
    /// when there is room.
    fn line(&mut self, path: &str, text: String) -> Change {
        let room = self.shown() < SHOWN;
        match self.running.get_mut(path) {
            Some(Some(line)) => {
                *line = text.clone();
                Change::Update {
                    path: path.to_string(),
                    text,
                }
            }
            Some(slot @ None) if room => {
                *slot = Some(text.clone());
                self.lines += 1;
                Change::Show {
                    path: path.to_string(),
                    text,
                }
            }
            _ => Change::Nothing,
        }
    }

    fn finish(&mut self, path: &str, print: Option<String>) -> Change {
        match self.running.remove(path) {
            Some(Some(_)) => {
                self.lines -= 1;
                Change::Remove {
                    path: path.to_string(),
                    print,
                }
            }
            _ => print.map_or(Change::Nothing, Change::Print),
        }
    }
}

/// The line an event gets where no view is drawn (standard error is not
/// a terminal) and above the view: what a generator call waits for, and
/// an attempt that moved to another provider. `None` for the others.
pub fn notice(e: &Event) -> Option<String> {
    match e {
        Event::Waiting {
            path,
            action,
            attempt,
            provider,
            what,
        } => Some(format!(
            "  {path}: {action} attempt {attempt} ({provider}) waits for {what}"
        )),
        Event::Served {
            path,
            action,
            attempt,
            provider,
            skipped,
        } if !skipped.is_empty() => Some(format!(
            "  {path}: {action} attempt {attempt} served by `{provider}` after transport failures: {}",
            skipped.join("; ")
        )),
        _ => None,
    }
}

pub struct Progress {
    bars: MultiProgress,
    state: Mutex<State>,
}

struct State {
    view: View,
    summary: ProgressBar,
    lines: HashMap<String, ProgressBar>,
}

impl Progress {
    pub fn new() -> Progress {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let summary = bars.add(ProgressBar::new_spinner());
        summary.set_style(Self::style("{spinner} {wide_msg}"));
        summary.enable_steady_tick(Duration::from_millis(100));
        Progress {
            bars,
            state: Mutex::new(State {
                view: View::default(),
                summary,
                lines: HashMap::new(),
            }),
        }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
    }

    pub fn event(&self, e: &Event) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        match state.view.apply(e) {
            Change::Nothing => {}
            Change::Show { path, text } => {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(Self::style("  {prefix:.bold} {wide_msg}"));
                bar.set_prefix(path.clone());
                bar.set_message(text);
                state.lines.insert(path, bar);
            }
            Change::Update { path, text } => {
                if let Some(bar) = state.lines.get(&path) {
                    bar.set_message(text);
                }
            }
            Change::Remove { path, print } => {
                if let Some(bar) = state.lines.remove(&path) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
                if let Some(p) = print {
                    let _ = self.bars.println(p);
                }
            }
            Change::Print(p) => {
                let _ = self.bars.println(p);
            }
        }
        state.summary.set_message(state.view.summary());
    }

    /// Stops the view and clears it, so the summary that follows stands
    /// alone.
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (_, bar) in state.lines.drain() {
            bar.finish_and_clear();
        }
        state.summary.finish_and_clear();
        let _ = self.bars.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::AttemptRecord;

    fn started(i: usize) -> Event {
        Event::ActionStarted {
            path: format!("main/m/s{i}"),
            action: "step".into(),
        }
    }

    fn attempt(i: usize, verdict: VerdictKind) -> Event {
        Event::Attempt(Box::new(AttemptRecord {
            path: format!("main/m/s{i}"),
            action: "step".into(),
            attempt: 1,
            prompt: String::new(),
            role: None,
            output: None,
            verdict,
            feedback: "too short\nmore".into(),
            tokens: None,
            prompt_tokens: None,
            outcome: None,
            guarded: true,
            generate_ms: 0,
            guard_ms: 0,
            provider: None,
        }))
    }

    fn committed(i: usize) -> Event {
        Event::Committed {
            path: format!("main/m/s{i}"),
            action: "step".into(),
            artifact: serde_json::json!("ok"),
        }
    }

    /// A thousand actions at once: a few lines, the rest counted; a line
    /// freed by a commit goes to the next running action that reports.
    #[test]
    fn a_wide_fork_join_stays_a_few_lines_high() {
        let mut v = View::default();
        let shows = (0..1000)
            .filter(|&i| matches!(v.apply(&started(i)), Change::Show { .. }))
            .count();
        assert_eq!(shows, SHOWN);
        assert_eq!(v.shown(), SHOWN);
        assert_eq!(
            v.summary(),
            format!(
                "0 committed · 1000 running · 0 failed · 0 attempts ({} running not shown)",
                1000 - SHOWN
            )
        );
        // a hidden action's verdict draws nothing while the view is full
        assert_eq!(v.apply(&attempt(500, VerdictKind::Fail)), Change::Nothing);
        // a shown one commits: its line goes
        assert!(matches!(
            v.apply(&committed(0)),
            Change::Remove { print: None, .. }
        ));
        // and the next hidden one to report takes the room
        assert_eq!(
            v.apply(&attempt(500, VerdictKind::Fail)),
            Change::Show {
                path: "main/m/s500".into(),
                text: "step: attempt 1 rejected: too short".into()
            }
        );
        // a hidden action that commits leaves no trace but the count
        assert_eq!(v.apply(&committed(999)), Change::Nothing);
        assert_eq!(v.committed, 2);
        assert_eq!(v.attempts, 2);
        assert!(v
            .summary()
            .starts_with("2 committed · 998 running · 0 failed"));
    }

    #[test]
    fn a_failed_action_is_printed_above_the_view() {
        let mut v = View::default();
        v.apply(&started(1));
        let change = v.apply(&Event::ActionFailed {
            path: "main/m/s1".into(),
            action: "step".into(),
            reason: "all 3 attempts were rejected\ndetails".into(),
        });
        assert_eq!(
            change,
            Change::Remove {
                path: "main/m/s1".into(),
                print: Some("✗ main/m/s1: step: all 3 attempts were rejected".into())
            }
        );
        assert_eq!(v.failed, 1);
        assert_eq!(v.shown(), 0);
    }

    #[test]
    fn waits_and_fallbacks_are_printed_above_the_view() {
        let mut v = View::default();
        let change = v.apply(&Event::Waiting {
            path: "main/m/s1".into(),
            action: "step".into(),
            attempt: 2,
            provider: "local".into(),
            what: "transport retry 1 in 250ms: refused".into(),
        });
        assert_eq!(
            change,
            Change::Print(
                "  main/m/s1: step attempt 2 (local) waits for transport retry 1 in 250ms: refused"
                    .into()
            )
        );
        let served = |skipped: Vec<String>| Event::Served {
            path: "main/m/s1".into(),
            action: "step".into(),
            attempt: 2,
            provider: "hosted".into(),
            skipped,
        };
        assert_eq!(v.apply(&served(Vec::new())), Change::Nothing);
        assert_eq!(
            v.apply(&served(vec!["local: 429".into()])),
            Change::Print(
                "  main/m/s1: step attempt 2 served by `hosted` after transport failures: local: 429"
                    .into()
            )
        );
    }
}
