//! A sink: where a run records its events durably (the run store). Unlike
//! an observer, a sink can fail, and a run whose sink failed starts no
//! further generator call.

use super::event::Event;

/// Records events; `record` returns once the event is durable.
pub trait Sink: Send + Sync {
    /// Records `event`. A failure is kept: see [`Sink::failure`].
    fn record(&self, event: &Event);
    /// Why recording failed, once it has; the run then stops calling
    /// generators.
    fn failure(&self) -> Option<String>;
}
