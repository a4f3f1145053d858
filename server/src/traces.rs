//! Logs and traces: `tracing` events as text or JSON lines on stderr (level from
//! `RUST_LOG`, default info), and, with the `otlp` feature and `otlp_endpoint` set, every
//! span exported over OTLP/HTTP. A call's span is `rpc` (with `rpc` and `request_id`);
//! its children are `tokenise` (the blocking pool's tokeniser), `queue` (from submission
//! until the backend takes the job) and `forward` (the batch's forward, with the job's
//! rows and the batch's rows and jobs).

use anyhow::Result;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

/// What must outlive the server for its spans to leave: the exporter's provider, flushed
/// by [`Self::shutdown`].
#[derive(Debug, Default)]
pub struct Traces {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Traces {
    /// Sends the spans still buffered (bounded by the exporter's timeout).
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "flushing the OTLP exporter");
        }
    }
}

/// Installs the subscriber: log lines in `format` (`text` or `json`), and OTLP export to
/// `otlp_endpoint` when it is not empty (the settings refuse one in a build without the
/// `otlp` feature). Call before the async runtime starts: the exporter's HTTP client
/// runs on the batch processor's own thread.
pub fn init(format: &str, otlp_endpoint: &str) -> Result<Traces> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let lines = if format == "json" {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    let registry = tracing_subscriber::registry().with(filter).with(lines);
    #[cfg(feature = "otlp")]
    if !otlp_endpoint.is_empty() {
        let (layer, provider) = otlp::layer(otlp_endpoint)?;
        registry.with(layer).init();
        tracing::info!(otlp_endpoint, "exporting spans over OTLP/HTTP");
        return Ok(Traces {
            provider: Some(provider),
        });
    }
    let _ = otlp_endpoint;
    registry.init();
    Ok(Traces::default())
}

#[cfg(feature = "otlp")]
mod otlp {
    use anyhow::{Context, Result};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};

    /// The tracing layer that hands spans to a batch exporter posting to `endpoint`.
    pub(super) fn layer<S>(
        endpoint: &str,
    ) -> Result<(
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
        SdkTracerProvider,
    )>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .with_timeout(std::time::Duration::from_secs(5))
            .build()
            .with_context(|| format!("setting otlp_endpoint = {endpoint:?}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("copl-server").build())
            .build();
        let tracer = provider.tracer("copl-server");
        Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::{BufRead, BufReader, Read, Write};

    use tracing_subscriber::layer::SubscriberExt;

    /// One OTLP/HTTP request's body, answered 200, from a listener on loopback.
    fn collector() -> (String, std::sync::mpsc::Receiver<(String, Vec<u8>)>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut request_line, mut length) = (String::new(), 0);
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = stream;
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .unwrap();
            tx.send((request_line, body)).unwrap();
        });
        (endpoint, rx)
    }

    /// A call's spans reach an OTLP collector: the `rpc` span with its request id and its
    /// children, under the service name.
    #[test]
    fn spans_are_exported_to_the_otlp_endpoint() {
        let (endpoint, received) = collector();
        let (layer, provider) = super::otlp::layer(&endpoint).unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let call = tracing::info_span!("rpc", rpc = "Score", request_id = "req-4242");
            let _in = call.enter();
            tracing::info_span!("queue").in_scope(|| {});
            tracing::info_span!("forward", rows = 2).in_scope(|| {});
        });
        provider.shutdown().unwrap();
        let (request_line, body) = received
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        assert!(
            request_line.starts_with("POST /v1/traces "),
            "{request_line}"
        );
        let has = |text: &str| body.windows(text.len()).any(|w| w == text.as_bytes());
        for text in ["copl-server", "rpc", "req-4242", "queue", "forward"] {
            assert!(has(text), "{text} not in the exported spans");
        }
    }
}
