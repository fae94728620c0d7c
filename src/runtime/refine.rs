//! Context that refines across runs of an action: the rejected attempts
//! kept when an escalation restarts a downstream action, and those a
//! task's next method sees after a method failed (`docs/language.md`,
//! "Refinement").

use crate::check::ir::{Callee, Method, Ty};

use super::eval::Rejected;
use super::event::VerdictKind;
use super::interpreter::Run;

/// Rejected attempts a task's failed methods leave for the next one: the
/// output type of the action that made each, with the attempt.
pub type Inherited = Vec<(Ty, Rejected)>;

/// The most attempts an action starts with from before (an escalation
/// restart, failed methods): the latest. With outputs cut at
/// [`super::eval::OUTPUT_CAP`], what a run keeps stays bounded however
/// wide the methods are.
pub const KEPT_CAP: usize = 16;

/// The most rejected attempts a task keeps from its failed methods.
pub const INHERITED_CAP: usize = 1024;

/// Keeps the latest `cap` of `v`.
pub fn keep_latest<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() > cap {
        v.drain(..v.len() - cap);
    }
}

impl Run<'_> {
    /// Where the run's attempt log stands: the start of what
    /// [`Run::rejected_since`] reads.
    pub fn attempt_mark(&self) -> usize {
        self.log().attempts.len()
    }

    /// The rejected attempts (failed or fatal; not interrupted) recorded
    /// since `mark` whose path `at` accepts, in order, each with its
    /// action's name.
    pub fn rejected_since(
        &self,
        mark: usize,
        at: impl Fn(&str) -> bool,
        origin: impl Fn(&str) -> Option<String>,
    ) -> Vec<(String, Rejected)> {
        let log = self.log();
        log.attempts
            .get(mark..)
            .unwrap_or_default()
            .iter()
            .filter(|r| matches!(r.verdict, VerdictKind::Fail | VerdictKind::Fatal))
            .filter(|r| at(&r.path))
            .map(|r| {
                let rejected = Rejected::new(r.output.as_deref(), &r.feedback, origin(&r.action));
                (r.action.clone(), rejected)
            })
            .collect()
    }

    /// After an escalation: the downstream action's attempts at `path`
    /// since `mark`, marked as made against the old artifact of `target`.
    pub fn kept_after_escalation(&self, mark: usize, path: &str, target: &str) -> Vec<Rejected> {
        let origin = format!("made against an earlier `{target}`");
        self.rejected_since(mark, |p| p == path, |_| Some(origin.clone()))
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// After `method` (at `mpath`) failed: the attempts of every action
    /// run under it since `mark`, by output type, for the next method.
    pub fn left_by_method(&self, mark: usize, method: &Method, mpath: &str) -> Inherited {
        let mut left = self.method_rejections(mark, method, mpath);
        keep_latest(&mut left, INHERITED_CAP);
        left
    }

    fn method_rejections(&self, mark: usize, method: &Method, mpath: &str) -> Inherited {
        let prefix = format!("{mpath}/");
        let name = &method.name;
        let found = self.rejected_since(
            mark,
            |p| p.starts_with(&prefix),
            |action| Some(format!("by `{action}` in method `{name}`")),
        );
        let mut types: std::collections::HashMap<String, Option<Ty>> = Default::default();
        found
            .into_iter()
            .filter_map(|(action, r)| {
                let ty = types
                    .entry(action)
                    .or_insert_with_key(|a| {
                        self.program
                            .action(a)
                            .map(|id| self.program.actions[id.index()].output.clone())
                    })
                    .clone()?;
                Some((ty, r))
            })
            .collect()
    }

    /// What an action called by a method sees of the failed methods
    /// before it: the attempts of actions with its output type.
    pub fn inherited_for(&self, callee: Callee, inherited: &Inherited) -> Vec<Rejected> {
        let Callee::Action(a) = callee else {
            return Vec::new();
        };
        let ty = &self.program.actions[a.index()].output;
        let mut mine: Vec<&Rejected> = inherited
            .iter()
            .rev()
            .filter(|(t, _)| t == ty)
            .map(|(_, r)| r)
            .take(KEPT_CAP)
            .collect();
        mine.reverse();
        mine.into_iter().cloned().collect()
    }
}
