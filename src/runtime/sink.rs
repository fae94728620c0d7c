//! A sink: where a run records its events durably (the run store). Unlike
//! an observer, a sink can fail, and a run whose sink failed starts no
//! further generator call.

use futures::future::BoxFuture;

use super::event::Event;

/// Records events.
pub trait Sink: Send + Sync {
    /// Records `event`. An event a run must not go on before it is
    /// durable (an attempt or an effect starts, a generator's answer is
    /// in, the run ends) is durable when this returns; others may wait to
    /// be committed a moment. A failure is kept: see [`Sink::failure`].
    fn record(&self, event: &Event);
    /// Records `event` and resolves once it is durable, without holding
    /// up the thread meanwhile (a run store commits the events of many
    /// runs at once). By default, [`Sink::record`].
    fn record_durable<'a>(&'a self, event: &Event) -> BoxFuture<'a, ()> {
        self.record(event);
        Box::pin(std::future::ready(()))
    }
    /// Why recording failed, once it has; the run then stops calling
    /// generators.
    fn failure(&self) -> Option<String>;
}
