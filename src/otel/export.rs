//! Sending spans: `opentelemetry-otlp`'s span exporter over OTLP/HTTP
//! with protobuf, through a blocking HTTP client (reqwest's, the one the
//! `llm` generator uses) with connect and request timeouts. Headers in
//! `OTEL_EXPORTER_OTLP_HEADERS` / `OTEL_EXPORTER_OTLP_TRACES_HEADERS` are
//! sent (the exporter reads them).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use opentelemetry_sdk::Resource;

use super::map::{Attr, Attrs, Kind, Span};

/// How long connecting may take (at most).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a collector's answer read.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// Sends spans to one OTLP/HTTP endpoint. Built and used outside any
/// async runtime (its client blocks).
pub struct Exporter {
    inner: opentelemetry_otlp::SpanExporter,
    scope: InstrumentationScope,
    /// Why the client's latest request failed, in full (the exporter's
    /// own error says only "network error").
    last_error: Arc<Mutex<Option<String>>>,
}

impl Exporter {
    /// An exporter posting to `url` (the full `…/v1/traces` URL), each
    /// request within `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Exporter, String> {
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let last_error = Arc::new(Mutex::new(None));
        let mut inner = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(Blocking {
                client,
                last_error: last_error.clone(),
            })
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_timeout(timeout)
            .build()
            .map_err(|e| format!("cannot export to `{url}`: {e}"))?;
        inner.set_resource(&resource());
        let scope = InstrumentationScope::builder("guardflow")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(Exporter {
            inner,
            scope,
            last_error,
        })
    }

    /// Sends `spans` in one request.
    pub fn send(&self, spans: Vec<Span>) -> Result<(), String> {
        if spans.is_empty() {
            return Ok(());
        }
        let data: Vec<SpanData> = spans.into_iter().map(|s| self.data(s)).collect();
        self.lock().take();
        futures::executor::block_on(self.inner.export(data))
            .map_err(|e| self.lock().take().unwrap_or_else(|| e.to_string()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data(&self, s: Span) -> SpanData {
        let context = SpanContext::new(
            TraceId::from_bytes(s.trace_id),
            SpanId::from_bytes(s.span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let events = s
            .marks
            .into_iter()
            .map(|m| opentelemetry::trace::Event::new(m.name, m.at, key_values(m.attributes), 0))
            .collect();
        let mut span_events = SpanEvents::default();
        span_events.events = events;
        SpanData {
            span_context: context,
            parent_span_id: s.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: false,
            span_kind: match s.kind {
                Kind::Internal => SpanKind::Internal,
                Kind::Client => SpanKind::Client,
            },
            name: Cow::Owned(s.name),
            start_time: s.start,
            end_time: s.end,
            attributes: key_values(s.attributes),
            dropped_attributes_count: 0,
            events: span_events,
            links: SpanLinks::default(),
            status: match s.error {
                Some(description) => Status::error(description),
                None => Status::Unset,
            },
            instrumentation_scope: self.scope.clone(),
        }
    }
}

fn key_values(attrs: Attrs) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|(k, v)| match v {
            Attr::Str(s) => KeyValue::new(k, s),
            Attr::Int(n) => KeyValue::new(k, n),
            Attr::Bool(b) => KeyValue::new(k, b),
        })
        .collect()
}

/// `service.name` is `guardflow` unless `OTEL_SERVICE_NAME` (or
/// `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let b = Resource::builder();
    let b = if named {
        b
    } else {
        b.with_service_name("guardflow")
    };
    b.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// reqwest's blocking client as the exporter's HTTP client.
#[derive(Debug)]
struct Blocking {
    client: reqwest::blocking::Client,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Blocking {
    fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
        use std::io::Read;
        let request: reqwest::blocking::Request = request.try_into()?;
        let mut response = self.client.execute(request)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        response.take(MAX_RESPONSE).read_to_end(&mut body)?;
        let mut out = http::Response::builder()
            .status(status)
            .body(Bytes::from(body))?;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// An error with its causes: `a: b: c`.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

#[async_trait::async_trait]
impl HttpClient for Blocking {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let sent = self.send(request);
        if let Err(e) = &sent {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(chain(&**e));
        }
        sent
    }
}
