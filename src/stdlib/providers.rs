//! What the `llm` generator shares across every call of the process, per
//! provider: a circuit breaker (a provider that keeps failing in
//! transport is skipped for a cool-down, honouring `Retry-After`, then
//! probed by one call) and limits (`max_concurrent` requests in flight,
//! requests and tokens per minute). Every branch of a run, and every run
//! of the process, sees the same state, so a 50-branch fork-join against
//! `max_concurrent: 4` never has more than 4 requests in flight.
//!
//! Time is passed in (`now`), so the state machines are tested without
//! waiting; only [`Limiter::acquire`] sleeps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::runtime::guard::show_duration;
use crate::runtime::registry::Notifier;

/// A wait longer than this is said (a progress line).
pub const SAY_AFTER: Duration = Duration::from_secs(1);
/// How often a call waiting for another's probe looks again.
const PROBE_POLL: Duration = Duration::from_millis(200);
const MINUTE: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ─── the circuit breaker ─────────────────────────────────────────────────

/// How a provider's breaker is set: open after `after` transport failures
/// in a row, for `cool_down` (or the server's `Retry-After`, if longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub after: u32,
    pub cool_down: Duration,
}

/// One provider's health.
#[derive(Debug, Default)]
pub struct Circuit {
    /// Transport failures in a row.
    failures: u32,
    /// Open (skipped) until then.
    open_until: Option<Instant>,
    /// A half-open probe is in flight (its number): the others keep away.
    probing: Option<u64>,
    /// Probes started, to number them.
    probes: u64,
    /// The provider answered at least once in this process.
    served: bool,
}

/// Whether a call may go to the provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go; `probe` (its number) when the call is the half-open probe
    /// whose outcome closes or opens the circuit again.
    Go { probe: Option<u64> },
    /// Skipped: open until `until`.
    Open { until: Instant },
}

impl Circuit {
    pub fn admit(&mut self, now: Instant) -> Admit {
        match self.open_until {
            Some(until) if now < until => Admit::Open { until },
            Some(_) if self.probing.is_some() => Admit::Open {
                until: now + PROBE_POLL,
            },
            Some(_) => {
                self.probes += 1;
                self.probing = Some(self.probes);
                Admit::Go {
                    probe: Some(self.probes),
                }
            }
            None => Admit::Go { probe: None },
        }
    }

    /// Probe `n` ended without an outcome (its call was cancelled): the
    /// next call probes instead.
    pub fn abandon(&mut self, n: u64) {
        if self.probing == Some(n) {
            self.probing = None;
        }
    }

    /// The provider answered (even with an answer the guard rejects):
    /// the circuit closes.
    pub fn success(&mut self) {
        *self = Circuit {
            served: true,
            probes: self.probes,
            ..Circuit::default()
        };
    }

    /// A transport failure. A failed probe, `after` failures in a row or
    /// a server that said `Retry-After` open the circuit; returns until
    /// when, if it is open.
    pub fn failure(
        &mut self,
        now: Instant,
        config: BreakerConfig,
        retry_after: Option<Duration>,
    ) -> Option<Instant> {
        self.failures = self.failures.saturating_add(1);
        let probe_failed = self.probing.take().is_some();
        let tripped = probe_failed || self.failures >= config.after.max(1);
        let open_for = match (tripped, retry_after) {
            (true, r) => Some(config.cool_down.max(r.unwrap_or_default())),
            // the server said when to come back: nobody asks before
            (false, Some(r)) => Some(r),
            (false, None) => None,
        };
        if let Some(d) = open_for {
            let until = now + d;
            self.open_until = Some(self.open_until.map_or(until, |u| u.max(until)));
        }
        self.open_until.filter(|u| *u > now)
    }

    /// Whether the provider has answered in this process: a refused
    /// connection to one that never did fails fast (no server there).
    pub fn served(&self) -> bool {
        self.served
    }
}

/// Abandons its probe when dropped before the probe's outcome was told.
pub struct ProbeGuard {
    pub circuit: Arc<Mutex<Circuit>>,
    pub probe: Option<u64>,
}

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        if let Some(n) = self.probe {
            lock(&self.circuit).abandon(n);
        }
    }
}

/// The circuit of `provider` (its URL), shared by the whole process.
pub fn circuit(provider: &str) -> Arc<Mutex<Circuit>> {
    static CIRCUITS: OnceLock<Mutex<HashMap<String, Arc<Mutex<Circuit>>>>> = OnceLock::new();
    let map = CIRCUITS.get_or_init(Default::default);
    lock(map).entry(provider.to_string()).or_default().clone()
}

// ─── limits ──────────────────────────────────────────────────────────────

/// A provider's limits; 0 is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    pub max_concurrent: u64,
    /// Requests started per minute.
    pub rpm: u64,
    /// Tokens (prompt and completion) per minute.
    pub tpm: u64,
}

/// The requests and tokens of the last minute.
#[derive(Debug, Default)]
pub struct Window {
    requests: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
}

impl Window {
    fn prune(&mut self, now: Instant) {
        while self
            .requests
            .front()
            .is_some_and(|t| now.duration_since(*t) >= MINUTE)
        {
            self.requests.pop_front();
        }
        while self
            .tokens
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= MINUTE)
        {
            self.tokens.pop_front();
        }
    }

    /// Takes a request's place in the minute, or says how long until
    /// there is one and which limit holds it back.
    pub fn take(&mut self, limits: Limits, now: Instant) -> Result<(), (Duration, String)> {
        self.prune(now);
        if limits.rpm > 0 && self.requests.len() as u64 >= limits.rpm {
            let oldest = self.requests.front().copied().unwrap_or(now);
            let wait = (oldest + MINUTE).saturating_duration_since(now);
            return Err((wait, format!("{} requests per minute (rpm)", limits.rpm)));
        }
        let used: u64 = self.tokens.iter().map(|(_, n)| *n).sum();
        if limits.tpm > 0 && used >= limits.tpm {
            // wait until enough of the minute's tokens age out
            let mut left = used;
            let mut wait = MINUTE;
            for (t, n) in &self.tokens {
                left = left.saturating_sub(*n);
                if left < limits.tpm {
                    wait = (*t + MINUTE).saturating_duration_since(now);
                    break;
                }
            }
            return Err((wait, format!("{} tokens per minute (tpm)", limits.tpm)));
        }
        // at most `rpm` entries are kept, and none without a limit
        if limits.rpm > 0 {
            self.requests.push_back(now);
        }
        Ok(())
    }

    /// Counts the tokens a request used.
    pub fn used(&mut self, tokens: u64, now: Instant) {
        if tokens > 0 {
            self.tokens.push_back((now, tokens));
        }
    }
}

/// One provider's limits, shared by every call of the process.
pub struct Limiter {
    limits: Limits,
    slots: Option<Arc<Semaphore>>,
    window: Mutex<Window>,
}

/// A request's place: its slot is given back when this is dropped.
pub struct Slot {
    limiter: Arc<Limiter>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Slot {
    /// The request used `tokens` (counted against `tpm`).
    pub fn used(&self, tokens: u64) {
        if self.limiter.limits.tpm > 0 {
            lock(&self.limiter.window).used(tokens, Instant::now());
        }
    }
}

/// The limiter of `provider` with `limits`, shared by the whole process.
pub fn limiter(provider: &str, limits: Limits) -> Arc<Limiter> {
    type Map = HashMap<(String, Limits), Arc<Limiter>>;
    static LIMITERS: OnceLock<Mutex<Map>> = OnceLock::new();
    let map = LIMITERS.get_or_init(Default::default);
    lock(map)
        .entry((provider.to_string(), limits))
        .or_insert_with(|| {
            Arc::new(Limiter {
                limits,
                slots: (limits.max_concurrent > 0).then(|| {
                    let n = usize::try_from(limits.max_concurrent)
                        .unwrap_or(Semaphore::MAX_PERMITS)
                        .min(Semaphore::MAX_PERMITS);
                    Arc::new(Semaphore::new(n))
                }),
                window: Mutex::new(Window::default()),
            })
        })
        .clone()
}

impl Limiter {
    /// Waits for a slot and a place in the minute; a wait of more than
    /// [`SAY_AFTER`] is said through `notify`. `provider` names it there.
    pub async fn acquire(self: &Arc<Self>, provider: &str, notify: &Notifier) -> Slot {
        let permit = match &self.slots {
            None => None,
            Some(sem) => {
                let acquire = sem.clone().acquire_owned();
                tokio::pin!(acquire);
                let first = tokio::select! {
                    p = &mut acquire => Some(p),
                    _ = tokio::time::sleep(SAY_AFTER) => None,
                };
                let p = match first {
                    Some(p) => p,
                    None => {
                        notify.waiting(&format!(
                            "a free slot at {provider}: {} requests in flight (max_concurrent)",
                            self.limits.max_concurrent
                        ));
                        acquire.await
                    }
                };
                // the semaphore is never closed
                p.ok()
            }
        };
        loop {
            let taken = lock(&self.window).take(self.limits, Instant::now());
            match taken {
                Ok(()) => break,
                Err((wait, which)) => {
                    if wait >= SAY_AFTER {
                        notify.waiting(&format!(
                            "the rate limit of {provider}: {which} reached; next request in {}",
                            show_duration(wait)
                        ));
                    }
                    tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
                }
            }
        }
        Slot {
            limiter: self.clone(),
            _permit: permit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: BreakerConfig = BreakerConfig {
        after: 3,
        cool_down: Duration::from_secs(30),
    };

    #[test]
    fn a_circuit_opens_after_failures_in_a_row_and_a_probe_closes_it() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        assert_eq!(c.admit(t0), Admit::Go { probe: None });
        assert_eq!(c.failure(t0, CONFIG, None), None);
        assert_eq!(c.failure(t0, CONFIG, None), None);
        // a success in between starts the count again
        c.success();
        assert!(c.served());
        assert_eq!(c.failure(t0, CONFIG, None), None);
        assert_eq!(c.failure(t0, CONFIG, None), None);
        let until = c.failure(t0, CONFIG, None).expect("opens at the third");
        assert_eq!(until, t0 + CONFIG.cool_down);
        assert_eq!(c.admit(t0 + Duration::from_secs(29)), Admit::Open { until });
        // after the cool-down one probe goes; the others keep away
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(c.admit(t1), Admit::Go { probe: Some(1) });
        assert!(matches!(c.admit(t1), Admit::Open { .. }));
        c.success();
        assert_eq!(c.admit(t1), Admit::Go { probe: None });
    }

    #[test]
    fn a_failed_probe_opens_the_circuit_again() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        for _ in 0..3 {
            c.failure(t0, CONFIG, None);
        }
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(c.admit(t1), Admit::Go { probe: Some(1) });
        let until = c.failure(t1, CONFIG, None).expect("open again");
        assert_eq!(until, t1 + CONFIG.cool_down);
        assert!(matches!(c.admit(t1), Admit::Open { .. }));
        // a probe whose call was dropped lets the next call probe
        let t2 = until + Duration::from_secs(1);
        assert_eq!(c.admit(t2), Admit::Go { probe: Some(2) });
        assert!(matches!(c.admit(t2), Admit::Open { .. }));
        c.abandon(1);
        assert!(
            matches!(c.admit(t2), Admit::Open { .. }),
            "not the probe in flight"
        );
        c.abandon(2);
        assert_eq!(c.admit(t2), Admit::Go { probe: Some(3) });
    }

    #[test]
    fn retry_after_opens_the_circuit_for_as_long_as_the_server_said() {
        let t0 = Instant::now();
        let mut c = Circuit::default();
        let until = c
            .failure(t0, CONFIG, Some(Duration::from_secs(5)))
            .expect("the server said when");
        assert_eq!(until, t0 + Duration::from_secs(5));
        assert_eq!(c.admit(t0 + Duration::from_secs(4)), Admit::Open { until });
        assert_eq!(
            c.admit(t0 + Duration::from_secs(5)),
            Admit::Go { probe: Some(1) }
        );
        // tripped with a longer Retry-After than the cool-down: the longer
        let mut c = Circuit::default();
        c.failure(t0, CONFIG, None);
        c.failure(t0, CONFIG, None);
        let until = c.failure(t0, CONFIG, Some(Duration::from_secs(90)));
        assert_eq!(until, Some(t0 + Duration::from_secs(90)));
    }

    #[test]
    fn the_window_holds_requests_and_tokens_per_minute() {
        let t0 = Instant::now();
        let limits = Limits {
            max_concurrent: 0,
            rpm: 2,
            tpm: 100,
        };
        let mut w = Window::default();
        assert!(w.take(limits, t0).is_ok());
        assert!(w.take(limits, t0 + Duration::from_secs(10)).is_ok());
        let (wait, which) = w.take(limits, t0 + Duration::from_secs(20)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert!(which.contains("rpm"), "{which}");
        // a minute after the first, its place is free again
        assert!(w.take(limits, t0 + Duration::from_secs(60)).is_ok());
        let mut w = Window::default();
        w.used(60, t0);
        w.used(50, t0 + Duration::from_secs(30));
        let (wait, which) = w.take(limits, t0 + Duration::from_secs(40)).unwrap_err();
        assert!(which.contains("tpm"), "{which}");
        assert_eq!(wait, Duration::from_secs(20));
        assert!(w.take(limits, t0 + Duration::from_secs(61)).is_ok());
        // no limits: always
        let none = Limits {
            max_concurrent: 0,
            rpm: 0,
            tpm: 0,
        };
        let mut w = Window::default();
        for i in 0..1000 {
            assert!(w.take(none, t0 + Duration::from_millis(i)).is_ok());
        }
    }
}
