//! Continue-as-new: a long run goes on as a chain of workflow runs, each
//! with a history of its own, so no history reaches Temporal's limits.
//!
//! When a run's history reaches its threshold (`RunSpec::continue_after`
//! events, or the server suggests it), the run *drains*: it begins no new
//! attempt (starts no generator call) and takes no resource units, and
//! waits until the attempts begun are judged (their calls, effects and
//! guards answered), which the interpreter records as usual. It then continues as new, carrying the
//! events of the chain so far (a blob when large). The next run of the
//! chain resumes the interpreter from them exactly as a local `--resume`
//! resumes from the run store ([`resume_from`] reads events as
//! `store::resume` reads the journal): committed artifacts are reused,
//! recorded attempts count against their budgets, an answered but
//! unjudged attempt is judged from its recorded answer. Generator calls
//! the interpreter asked for while the run drained never started, so
//! their attempts' starts are taken out of the carried events
//! ([`unstarted`]): the next run makes them as new, with the same attempt
//! numbers, and the chain makes the same attempts as one run would.

use std::collections::{HashMap, HashSet};

use crate::runtime::resume::{PriorAction, PriorAttempt};
use crate::runtime::{Event, Resume};

/// The default threshold: history events of one run of the chain.
pub const CONTINUE_AFTER: u64 = 5_000;

/// The lowest threshold taken (a run always makes some progress first).
pub const CONTINUE_AFTER_MIN: u64 = 10;

/// What an earlier run of the chain recorded, for the interpreter to
/// resume from.
pub fn resume_from(events: &[Event]) -> Resume {
    let mut actions: HashMap<(String, u32), PriorAction> = HashMap::new();
    let mut attempt_numbers: HashMap<String, u32> = HashMap::new();
    // the (occurrence, attempt's place in its action's list) of the latest
    // attempt at each path
    let mut current: HashMap<String, (u32, usize)> = HashMap::new();
    for e in events {
        match e {
            Event::AttemptStarted {
                path,
                action,
                occurrence,
                attempt,
                prompt,
                role,
                ..
            } => {
                let n = attempt_numbers.entry(action.clone()).or_insert(0);
                *n = (*n).max(*attempt);
                let prior = actions
                    .entry((path.clone(), *occurrence))
                    .or_insert_with(|| PriorAction {
                        action: action.clone(),
                        ..PriorAction::default()
                    });
                current.insert(path.clone(), (*occurrence, prior.attempts.len()));
                prior.attempts.push(PriorAttempt {
                    record: crate::runtime::AttemptRecord {
                        path: path.clone(),
                        action: action.clone(),
                        attempt: *attempt,
                        prompt: prompt.clone(),
                        role: role.clone(),
                        output: None,
                        verdict: crate::runtime::VerdictKind::Fail,
                        feedback: String::new(),
                        tokens: None,
                        prompt_tokens: None,
                        outcome: None,
                        guarded: false,
                        generate_ms: 0,
                        guard_ms: 0,
                        provider: None,
                    },
                    finished: false,
                    generated: false,
                    effect_started: None,
                });
            }
            Event::Generated {
                path,
                output,
                tokens,
                prompt_tokens,
                generate_ms,
                ..
            } => {
                if let Some(at) = latest(&mut actions, &current, path) {
                    at.record.output = Some(output.clone());
                    at.record.tokens = *tokens;
                    at.record.prompt_tokens = *prompt_tokens;
                    at.record.generate_ms = *generate_ms;
                    at.generated = true;
                }
            }
            Event::EffectStarted { path, command, .. } => {
                if let Some(at) = latest(&mut actions, &current, path) {
                    at.effect_started = Some(command.clone());
                }
            }
            Event::Attempt(record) => {
                if let Some(at) = latest(&mut actions, &current, &record.path) {
                    let output = at.record.output.take();
                    at.record = (**record).clone();
                    if at.record.output.is_none() {
                        at.record.output = output;
                    }
                    at.finished = true;
                }
            }
            Event::Committed {
                path,
                action,
                artifact,
            } => {
                let occurrence = current.get(path).map_or(0, |c| c.0);
                actions
                    .entry((path.clone(), occurrence))
                    .or_insert_with(|| PriorAction {
                        action: action.clone(),
                        ..PriorAction::default()
                    })
                    .committed = Some(artifact.clone());
            }
            _ => {}
        }
    }
    Resume {
        actions: std::sync::Mutex::new(actions),
        attempt_numbers,
        ..Resume::default()
    }
}

fn latest<'a>(
    actions: &'a mut HashMap<(String, u32), PriorAction>,
    current: &HashMap<String, (u32, usize)>,
    path: &str,
) -> Option<&'a mut PriorAttempt> {
    let &(occurrence, at) = current.get(path)?;
    actions
        .get_mut(&(path.to_string(), occurrence))?
        .attempts
        .get_mut(at)
}

/// A call the interpreter asked for that never started: a generator call
/// at (path, attempt).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Unstarted {
    Generate(String, u32),
}

/// `events` without the starts of calls that never started: an attempt
/// whose generator was not called is not begun. The next run of the chain
/// makes them as new.
pub fn unstarted(events: Vec<Event>, calls: &[Unstarted]) -> Vec<Event> {
    if calls.is_empty() {
        return events;
    }
    let calls: HashSet<&Unstarted> = calls.iter().collect();
    events
        .into_iter()
        .filter(|e| match e {
            Event::AttemptStarted { path, attempt, .. } => {
                !calls.contains(&Unstarted::Generate(path.clone(), *attempt))
            }
            _ => true,
        })
        .collect()
}

/// The events of a run of the chain after the earlier runs' events: its
/// own `RunStarted` left out (the chain started once).
pub fn joined(mut before: Vec<Event>, now: Vec<Event>) -> Vec<Event> {
    let first = before.is_empty();
    before.extend(
        now.into_iter()
            .filter(|e| first || !matches!(e, Event::RunStarted { .. })),
    );
    before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{AttemptRecord, VerdictKind};

    fn started(path: &str, action: &str, occurrence: u32, attempt: u32) -> Event {
        Event::AttemptStarted {
            path: path.into(),
            action: action.into(),
            occurrence,
            index: 1,
            attempt,
            prompt: format!("p{attempt}"),
            role: None,
        }
    }

    fn generated(path: &str, action: &str, attempt: u32, output: &str) -> Event {
        Event::Generated {
            path: path.into(),
            action: action.into(),
            attempt,
            output: output.into(),
            tokens: None,
            prompt_tokens: None,
            generate_ms: 1,
        }
    }

    fn judged(path: &str, action: &str, attempt: u32, verdict: VerdictKind) -> Event {
        Event::Attempt(Box::new(AttemptRecord {
            path: path.into(),
            action: action.into(),
            attempt,
            prompt: format!("p{attempt}"),
            role: None,
            output: None,
            verdict,
            feedback: "no".into(),
            tokens: None,
            prompt_tokens: None,
            outcome: None,
            guarded: true,
            generate_ms: 1,
            guard_ms: 1,
            provider: None,
        }))
    }

    #[test]
    fn events_resume_as_the_journal_does() {
        let events = vec![
            started("m/a", "a", 1, 1),
            generated("m/a", "a", 1, "bad"),
            judged("m/a", "a", 1, VerdictKind::Fail),
            started("m/a", "a", 1, 2),
            generated("m/a", "a", 2, "good"),
            judged("m/a", "a", 2, VerdictKind::Pass),
            Event::Committed {
                path: "m/a".into(),
                action: "a".into(),
                artifact: "good".into(),
            },
            // escalated: the path runs again
            started("m/a", "a", 2, 3),
            generated("m/a", "a", 3, "later"),
            started("m/b", "b", 1, 1),
        ];
        let r = resume_from(&events);
        assert_eq!(r.attempt_numbers["a"], 3);
        assert_eq!(r.attempt_numbers["b"], 1);
        let first = r.take("m/a", 1, "a").expect("first run of a");
        assert_eq!(first.committed, Some("good".into()));
        assert_eq!(first.attempts.len(), 2);
        assert_eq!(first.attempts[0].record.output.as_deref(), Some("bad"));
        assert!(first.attempts[0].finished && first.attempts[1].finished);
        let second = r.take("m/a", 2, "a").expect("second run of a");
        assert!(second.committed.is_none());
        assert!(second.attempts[0].generated && !second.attempts[0].finished);
        let b = r.take("m/b", 1, "b").expect("b");
        assert!(!b.attempts[0].generated);
    }

    #[test]
    fn calls_that_never_started_are_not_begun() {
        let events = vec![
            Event::RunStarted {
                task: "main".into(),
                worst_case_calls: None,
            },
            started("m/a", "a", 1, 1),
            started("m/b", "b", 1, 1),
            generated("m/a", "a", 1, "x"),
            Event::EffectStarted {
                path: "m/a".into(),
                action: "a".into(),
                attempt: 1,
                command: "echo".into(),
            },
        ];
        let kept = unstarted(events, &[Unstarted::Generate("m/b".into(), 1)]);
        assert_eq!(kept.len(), 4);
        let r = resume_from(&kept);
        assert!(r.take("m/b", 1, "b").is_none());
        assert_eq!(r.attempt_numbers.get("b"), None);
        let a = r.take("m/a", 1, "a").expect("a");
        assert!(a.attempts[0].generated);
        assert_eq!(a.attempts[0].effect_started.as_deref(), Some("echo"));
        let all = joined(kept.clone(), kept);
        assert_eq!(
            all.iter()
                .filter(|e| matches!(e, Event::RunStarted { .. }))
                .count(),
            1
        );
    }
}
