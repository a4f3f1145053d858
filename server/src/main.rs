//! `copl-server`: the CoPL-serve gRPC server (`copl.v1.RewardService`, the standard
//! health service per service name, server reflection v1 and v1alpha).
//!
//! The port opens at once with health NOT_SERVING and every RewardService call
//! UNAVAILABLE; the checkpoint loads and the model is warmed with one batch; then health
//! turns SERVING. SIGTERM or Ctrl-C turns health NOT_SERVING, stops accepting calls and
//! lets in-flight calls finish (up to `shutdown_grace_seconds`).

mod auth;
mod backend;
mod http;
mod in_flight;
mod job;
mod scheduler;
mod service;
mod serving;
mod settings;
mod state;
mod telemetry;
mod traces;
mod users;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use clap::Parser;
use copl_proto::v1::reward_service_server::RewardServiceServer;
use tonic::transport::Server;

use service::RewardApi;
use serving::Serving;
use settings::{Overrides, Settings};

/// mimalloc: glibc malloc's page faults on large tensors cost up to half a model step.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "copl-server",
    version,
    about = "Serve a CoPL checkpoint over gRPC (copl.v1)"
)]
struct Cli {
    /// Checkpoint directory written by `copl-train gcf` and `copl-train mole`.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Configuration file (TOML); `COPL_…` variables and these flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Backbone directory [default: the one the checkpoint's manifest names].
    #[arg(long)]
    backbone: Option<PathBuf>,
    /// Listen address, e.g. 0.0.0.0:50051.
    #[arg(long)]
    listen: Option<String>,
    /// Prometheus metrics address [default: 127.0.0.1:9100, loopback: the port has no
    /// auth]; 0.0.0.0:9100 to be scraped from outside the host; empty for none.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// HTTP/JSON address (`/v1/score`, `/v1/compare`, `/get_reward`); empty for none
    /// [default: none].
    #[arg(long)]
    http_listen: Option<String>,
    /// `cpu` or `cuda:N`.
    #[arg(long)]
    device: Option<String>,
    /// Directory of the onboarded-user store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log lines as `text` or `json`.
    #[arg(long)]
    log_format: Option<String>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(
        cli.config.as_deref(),
        &Overrides {
            checkpoint: cli.checkpoint,
            backbone: cli.backbone,
            device: cli.device,
            listen: cli.listen,
            metrics_listen: cli.metrics_listen,
            http_listen: cli.http_listen,
            data_dir: cli.data_dir,
            log_format: cli.log_format,
        },
    )?;
    let traces = traces::init(&settings.log_format, &settings.otlp_endpoint)?;
    let served = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(serve(settings));
    traces.shutdown();
    served
}

async fn serve(settings: Settings) -> Result<()> {
    let addr: SocketAddr = settings
        .listen
        .parse()
        .with_context(|| format!("setting listen = {:?}: not an address", settings.listen))?;
    if !settings.metrics_listen.is_empty() {
        let metrics_addr: SocketAddr = settings.metrics_listen.parse().with_context(|| {
            format!(
                "setting metrics_listen = {:?}: not an address",
                settings.metrics_listen
            )
        })?;
        telemetry::install(metrics_addr)?;
        tracing::info!(%metrics_addr, "metrics at GET /metrics");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let bound = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, tonic_health::ServingStatus::NotServing).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(copl_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(copl_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let auth = auth::Auth::from_digests(
        &settings.auth.scoring_keys_sha256,
        &settings.auth.admin_keys_sha256,
    )?;
    if auth.enabled() {
        tracing::info!("API keys required (scoring and admin roles)");
    }
    let serving = Arc::new(Serving::new(settings.clone()));
    let api = RewardApi::new(serving.clone());
    let auth = Arc::new(auth);
    let in_flight = in_flight::InFlight::new(settings.limits.max_calls_in_flight);
    let max_message = settings.limits.max_message_bytes;
    let list_limit = settings
        .limits
        .max_batch_items
        .max(settings.limits.max_survey_answers);
    copl_proto::codec::set_max_field_occurrences(decoding_bound(list_limit));
    let grace = Duration::from_secs(settings.shutdown_grace_seconds);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown_health = health.clone();
    let mut stop_wait = stop_rx.clone();
    let limits = &settings.limits;
    let mut builder = Server::builder()
        .max_concurrent_streams(Some(limits.max_concurrent_streams))
        .http2_keepalive_interval(
            (limits.http2_keepalive_seconds > 0)
                .then(|| Duration::from_secs(limits.http2_keepalive_seconds)),
        )
        .http2_keepalive_timeout(Some(Duration::from_secs(20)));
    if limits.max_connection_age_seconds > 0 {
        builder = builder
            .max_connection_age(Duration::from_secs(limits.max_connection_age_seconds))
            .max_connection_age_grace(Duration::from_secs(30));
    }
    if let Some(tls) = tls_config(&settings.tls)? {
        builder = builder.tls_config(tls).context("TLS settings")?;
        tracing::info!("TLS on the gRPC port");
    }
    let server = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(auth::Guarded::new(
            RewardServiceServer::new(api.clone())
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            auth.clone(),
            in_flight.clone(),
        ))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                let _ = stop_wait.wait_for(|stop| *stop).await;
            },
        );
    let server = tokio::spawn(server);
    let http_server = if settings.http_listen.is_empty() {
        None
    } else {
        let http_addr: SocketAddr = settings.http_listen.parse().with_context(|| {
            format!(
                "setting http_listen = {:?}: not an address",
                settings.http_listen
            )
        })?;
        let http_listener = tokio::net::TcpListener::bind(http_addr)
            .await
            .with_context(|| format!("binding {http_addr} (http_listen)"))?;
        let routes = http::router(
            http::Http {
                api: api.clone(),
                auth: auth.clone(),
                in_flight: in_flight.clone(),
                max_batch_items: settings.limits.max_batch_items,
            },
            max_message,
        );
        let mut http_stop = stop_rx.clone();
        tracing::info!(addr = %http_listener.local_addr()?, "HTTP/JSON at /v1/score, /v1/compare, /get_reward");
        Some(tokio::spawn(async move {
            axum::serve(http_listener, routes)
                .with_graceful_shutdown(async move {
                    let _ = http_stop.wait_for(|stop| *stop).await;
                })
                .await
        }))
    };
    // The line tests and operators wait for: the real port (also when 0 was asked).
    tracing::info!(%bound, "listening (NOT_SERVING until the model is loaded)");
    println!("listening on {bound}");

    let loading = Serving::load(settings, None);
    let signals = tokio::spawn(shutdown_signal());
    let state = tokio::select! {
        loaded = loading => loaded?.0,
        _ = signals => {
            tracing::info!("stopped while loading");
            let _ = stop_tx.send(true);
            return Ok(());
        }
    };
    tracing::info!(
        seen_users = state.users.seen_count(),
        onboarded_users = state.users.onboarded_count(),
        catalogue = state.catalogue.entries.len(),
        device = %state.device,
        dtype = state.model.dtype.as_str(),
        max_batch_rows = state.settings.limits.max_batch_rows,
        max_batch_tokens = state.settings.limits.max_batch_tokens,
        "model loaded and warmed: SERVING"
    );
    // SuggestSurvey's `declined` may hold up to the survey pool's pairs (a reloaded
    // checkpoint's pool is capped by the same setting, `onboarding.survey_pool`).
    copl_proto::codec::set_max_field_occurrences(decoding_bound(
        list_limit.max(state.survey.pool_size()),
    ));
    serving.serve(state);
    set_health(&health, tonic_health::ServingStatus::Serving).await;
    tokio::spawn(watch_backend(serving.clone(), health.clone()));
    tokio::spawn(reload_on_sighup(serving.clone()));

    shutdown_signal().await;
    tracing::info!(
        grace_seconds = grace.as_secs(),
        "shutting down: finishing in-flight calls"
    );
    set_health(&shutdown_health, tonic_health::ServingStatus::NotServing).await;
    let _ = stop_tx.send(true);
    drop(stop_rx);
    match tokio::time::timeout(grace, server).await {
        Ok(done) => done.context("server task")?.context("gRPC server")?,
        Err(_) => tracing::warn!("in-flight calls outlived the grace period; exiting"),
    }
    if let Some(http_server) = http_server {
        match tokio::time::timeout(grace, http_server).await {
            Ok(done) => done.context("HTTP task")?.context("HTTP server")?,
            Err(_) => tracing::warn!("HTTP calls outlived the grace period; exiting"),
        }
    }
    Ok(())
}

/// The codec's bound on a field's occurrences before decoding (copl_proto::codec), from
/// the largest list limit: 4× it, at least 4 096 — a list a little over its limit is
/// decoded and refused by the exact check, which names the setting; one far over (the
/// 2-byte empty entries of an amplification) is refused unread. At most ≈ 100 bytes a
/// decoded entry: under a MB at the defaults.
fn decoding_bound(largest_list_limit: usize) -> usize {
    largest_list_limit.saturating_mul(4).max(4096)
}

/// Health for both names a probe may ask: the reward service's and the server's ("").
async fn set_health(
    health: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    let service = <RewardServiceServer<RewardApi> as tonic::server::NamedService>::NAME;
    health.set_service_status(service, status).await;
    health.set_service_status("", status).await;
}

/// The server's TLS from `tls.cert`, `tls.key` and (mutual TLS) `tls.client_ca`; None
/// for plaintext.
fn tls_config(tls: &settings::Tls) -> Result<Option<tonic::transport::ServerTlsConfig>> {
    if tls.cert.is_empty() {
        return Ok(None);
    }
    let read = |setting: &str, path: &str| {
        std::fs::read(path).with_context(|| format!("setting {setting} = {path:?}"))
    };
    let identity = tonic::transport::Identity::from_pem(
        read("tls.cert", &tls.cert)?,
        read("tls.key", &tls.key)?,
    );
    let mut config = tonic::transport::ServerTlsConfig::new().identity(identity);
    if !tls.client_ca.is_empty() {
        config = config.client_ca_root(tonic::transport::Certificate::from_pem(read(
            "tls.client_ca",
            &tls.client_ca,
        )?));
    }
    Ok(Some(config))
}

/// A failed backend (its thread gone, or batches panicking in a row) of the *served*
/// state turns health NOT_SERVING, so a readiness/liveness probe takes the replica out
/// and restarts it. A swapped-out state's backend ends when it is freed: that is no
/// failure, and the watch moves on to the state served then.
async fn watch_backend(serving: Arc<Serving>, health: tonic_health::server::HealthReporter) {
    loop {
        let Some(state) = serving.current() else {
            return;
        };
        let mut failed = state.scheduler.backend_failed();
        let watched = Arc::downgrade(&state);
        drop(state);
        let _ = failed.wait_for(|failed| *failed).await;
        let still_served = watched
            .upgrade()
            .zip(serving.current())
            .is_some_and(|(watched, served)| Arc::ptr_eq(&watched, &served));
        if still_served {
            tracing::error!("the model backend failed: health NOT_SERVING");
            set_health(&health, tonic_health::ServingStatus::NotServing).await;
            return;
        }
    }
}

/// SIGHUP reloads the configured checkpoint directory (ReloadCheckpoint with no
/// directory): replace the directory's files, or repoint a symlink, then signal.
async fn reload_on_sighup(serving: Arc<Serving>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: reload with ReloadCheckpoint instead");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configured checkpoint");
            let outcome = match serving.reload(None).await {
                Ok(_) => "swapped",
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP reload did not swap");
                    if matches!(e, serving::ReloadError::Busy) {
                        "busy"
                    } else {
                        "failed"
                    }
                }
            };
            metrics::counter!("copl_reloads_total", "outcome" => outcome).increment(1);
        }
    }
    #[cfg(not(unix))]
    let _ = serving;
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
