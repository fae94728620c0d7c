//! What implements the `extern` items of a program: guards, generators and
//! effects written in Rust, by the standard library or by a host.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::value::{Value, Verdict};

/// A boxed future, as implementations return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One application of a guard: the subject and the arguments, one per
/// declared parameter (defaults filled in).
#[derive(Debug, Clone)]
pub struct GuardCall {
    pub subject: Value,
    pub args: Vec<Value>,
    /// The directory relative paths are read from (the workflow's).
    pub workdir: Arc<Path>,
    /// The generators given for the guard's `Generator` parameters: a
    /// judge asks them through this (empty for other guards).
    pub generators: Generators,
}

/// What a judge asks a generator it was given.
#[derive(Debug, Clone)]
pub struct JudgeRequest {
    pub prompt: String,
    /// The system prompt.
    pub role: Option<String>,
    /// The answer's type in guardflow syntax (`Json<{ pass: Bool, … }>`).
    pub output_type: Arc<str>,
    /// Its JSON Schema, for generators that constrain their answer.
    pub output_schema: Option<Arc<Value>>,
    pub max_tokens: Option<u64>,
}

/// Calls the generators a guard was given. The runtime counts every call
/// as a generator call of the action being judged (in the report and
/// against the checker's bound: a judge makes at most 1 + `retries`
/// calls per evaluation, and a call past that is refused), records its
/// prompt and answer (the `judge_call` event), applies the generator's
/// timeout, and calls the same redacting implementation the actions use.
pub trait AskGenerator: Send + Sync {
    /// Asks the generator given as argument `arg` (a `Generator`
    /// parameter's index).
    fn ask(
        &self,
        arg: usize,
        request: JudgeRequest,
    ) -> BoxFuture<'static, Result<GenResponse, GenError>>;
}

/// The generators a guard may ask; none for a guard that takes no
/// `Generator`.
#[derive(Clone, Default)]
pub struct Generators(pub Option<Arc<dyn AskGenerator>>);

impl std::fmt::Debug for Generators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Generators(..)"
        } else {
            "Generators(none)"
        })
    }
}

impl GuardCall {
    /// Asks the generator given as argument `arg`; an error when the guard
    /// was given none (it is not evaluated as an action's guard).
    pub fn ask(
        &self,
        arg: usize,
        request: JudgeRequest,
    ) -> BoxFuture<'static, Result<GenResponse, GenError>> {
        match &self.generators.0 {
            Some(g) => g.ask(arg, request),
            None => Box::pin(std::future::ready(Err(GenError::fatal(
                "this guard asks a generator, which only an action's `:guard` or \
                 `:pre-guard` can give it",
            )))),
        }
    }
}

impl GuardCall {
    /// The subject's text form.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        super::value::text_of(&self.subject)
    }

    /// Argument `i` as text (empty when missing or not text).
    pub fn str_arg(&self, i: usize) -> &str {
        self.args.get(i).and_then(Value::as_str).unwrap_or("")
    }

    /// Argument `i` as an integer (0 when missing).
    pub fn int_arg(&self, i: usize) -> u64 {
        self.args.get(i).and_then(Value::as_u64).unwrap_or(0)
    }

    /// Argument `i` as a duration (stored as milliseconds).
    pub fn duration_arg(&self, i: usize) -> Duration {
        Duration::from_millis(self.int_arg(i))
    }

    /// Argument `i` as the entries of a map (`Map<Text>`), in the order
    /// written, each value in its text form.
    pub fn map_arg(&self, i: usize) -> Vec<(String, String)> {
        self.args
            .get(i)
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), super::value::text_of(v).into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Argument `i` as a list of texts.
    pub fn list_arg(&self, i: usize) -> Vec<String> {
        self.args
            .get(i)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|v| super::value::text_of(v).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A guard's implementation. Cheap deterministic checks are `Sync`
/// functions called in place; guards that run programs are `Async`.
#[derive(Clone)]
pub enum GuardImpl {
    Sync(Arc<dyn Fn(&GuardCall) -> Verdict + Send + Sync>),
    Async(Arc<dyn Fn(GuardCall) -> BoxFuture<'static, Verdict> + Send + Sync>),
}

/// What a generator is asked for.
#[derive(Debug, Clone)]
pub struct GenRequest {
    /// The action being generated.
    pub action: String,
    /// 1-based; counts every attempt of the action in this run, across
    /// escalations, so recorded answers line up.
    pub attempt: u32,
    /// The number an uninterrupted run would have given this call:
    /// `attempt` (or, for a call made again in place of one a stop cut
    /// off, the cut call's) less the calls of the action that a stop cut
    /// off before it (each made again by the resume under a new number). The same as
    /// `attempt` in a run never stopped mid-call. A generator that draws
    /// at random per attempt draws on it (`simulate`), so a resumed run
    /// draws what the run would have drawn without the stop.
    pub uncut_attempt: u32,
    /// The rendered prompt, feedback included.
    pub prompt: String,
    /// The system prompt (`:role`).
    pub role: Option<String>,
    /// The latest rejection's feedback, if any.
    pub feedback: Option<String>,
    /// `:max-tokens`.
    pub max_tokens: Option<u64>,
    /// The generator's arguments, one per declared parameter.
    pub args: Vec<Value>,
    /// The action's declared output type, in guardflow syntax.
    pub output_type: Arc<str>,
    /// The JSON Schema of a `Json<T>` output, for generators that can
    /// constrain their answer to it; `None` for other types.
    pub output_schema: Option<Arc<Value>>,
    /// How long this call may take (the action's `:timeout`, else the
    /// generator's own); the runtime cuts the call off after it, so a
    /// generator that retries internally stops within it.
    pub timeout: Option<Duration>,
    pub workdir: Arc<Path>,
    /// Another provider follows this one in a `fallback(…)`: a transport
    /// failure should be given back soon (to move on) rather than waited
    /// out, and a provider whose circuit is open is skipped at once.
    pub has_fallback: bool,
    /// Where a call says what it waits for (transport retries, a rate
    /// limit, a circuit breaker), so nothing waits silently.
    pub notify: Notifier,
    /// The run's seed (`run --seed`, a bench trial's seed; chosen at
    /// random and recorded otherwise): a generator that draws at random
    /// (`simulate`) draws from it, so a run and its resume answer alike.
    pub seed: u64,
}

/// Tells the run what a generator call is waiting for; the runtime shows
/// it as a progress line (`Event::Waiting`).
#[derive(Clone, Default)]
pub struct Notifier(Option<Say>);

/// What a [`Notifier`] calls.
type Say = Arc<dyn Fn(&str) + Send + Sync>;

impl Notifier {
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Notifier {
        Notifier(Some(Arc::new(f)))
    }

    /// Says what the call waits for now, e.g. "rate limit of
    /// http://…: 3 s".
    pub fn waiting(&self, what: &str) {
        if let Some(f) = &self.0 {
            f(what);
        }
    }
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifier")
    }
}

impl GenRequest {
    /// Argument `i` as text (empty when missing or not text).
    pub fn str_arg(&self, i: usize) -> &str {
        self.args.get(i).and_then(Value::as_str).unwrap_or("")
    }
}

/// A generator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenResponse {
    pub text: String,
    /// Tokens generated, when the generator knows.
    pub tokens: Option<u64>,
    /// Tokens of the prompt, when the generator knows.
    pub prompt_tokens: Option<u64>,
}

impl GenResponse {
    pub fn text(text: impl Into<String>) -> GenResponse {
        GenResponse {
            text: text.into(),
            tokens: None,
            prompt_tokens: None,
        }
    }
}

/// A generator that could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenError {
    pub message: String,
    /// Asking again cannot help (no recorded answer, a missing program):
    /// the action fails at once. Otherwise the attempt counts as failed
    /// and the action retries.
    pub fatal: bool,
    /// The provider could not be reached or would not serve (refused,
    /// timed out, 408/429/5xx after the generator's own transport
    /// retries, a circuit breaker open): says nothing about the model's
    /// answer. The same attempt moves to the next provider of a
    /// `fallback(…)`; after the last, the action fails. It never uses a
    /// guard attempt and its text never reaches a prompt.
    pub transport: bool,
}

impl GenError {
    pub fn fatal(message: impl Into<String>) -> GenError {
        GenError {
            message: message.into(),
            fatal: true,
            transport: false,
        }
    }

    pub fn retryable(message: impl Into<String>) -> GenError {
        GenError {
            message: message.into(),
            fatal: false,
            transport: false,
        }
    }

    /// A transport failure (see [`GenError::transport`]).
    pub fn transport(message: impl Into<String>) -> GenError {
        GenError {
            message: message.into(),
            fatal: false,
            transport: true,
        }
    }
}

/// A generator kind (`llm`, `cmd`, `replay`, or a host's).
pub trait Generator: Send + Sync {
    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>>;

    /// The generator bounds each call by `GenRequest::timeout` itself,
    /// from when the request leaves (after waiting for a slot, a rate
    /// limit or a circuit breaker, each said through `notify`): the
    /// runtime then does not cut the call off at the timeout. Only for
    /// generators that really do.
    fn times_itself(&self) -> bool {
        false
    }
}

/// Any closure from request to answer is a generator.
impl<F> Generator for F
where
    F: Fn(&GenRequest) -> Result<GenResponse, GenError> + Send + Sync,
{
    fn generate(&self, request: GenRequest) -> BoxFuture<'_, Result<GenResponse, GenError>> {
        let out = self(&request);
        Box::pin(std::future::ready(out))
    }
}

/// The start of an effect's error that refuses a proposal (nothing ran).
pub const REFUSED: &str = "refused: ";

/// What an effect is asked to do: run the command an action proposed.
#[derive(Debug, Clone)]
pub struct EffectCall {
    /// The accepted proposal's text, trimmed (a command for `shell`).
    pub command: String,
    /// The accepted artifact's text exactly as converted, not trimmed
    /// (the content `write_file` writes).
    pub artifact: String,
    pub args: Vec<Value>,
    pub workdir: Arc<Path>,
}

/// An effect kind (`shell`, or a host's): runs a proposed command and
/// reports the `Outcome` record, or an error that fails the action. An
/// error that starts with [`REFUSED`] says the proposal was refused
/// before anything ran: a failed attempt whose feedback (the rest of the
/// message) goes to the model, retried like a failed guard.
pub type EffectImpl =
    Arc<dyn Fn(EffectCall) -> BoxFuture<'static, Result<Value, String>> + Send + Sync>;
