//! Prometheus metrics on their own port (`metrics_listen`, `GET /metrics`), under
//! conventional names: the `copl_` prefix, `_total` counters, `_seconds` durations. No
//! label ever carries a user id (unbounded cardinality, and personal data).
//!
//! - `copl_requests_total{rpc, code}`, `copl_request_duration_seconds{rpc}`
//! - `copl_queue_depth` (jobs waiting for a batch), `copl_jobs_dropped_total{reason}`
//!   (`cancelled`, `deadline`)
//! - `copl_batch_rows`, `copl_batch_tokens` (padded), `copl_batch_duration_seconds`,
//!   `copl_backend_panics_total`
//! - `copl_onboarded_users`, `copl_seen_users`
//! - `copl_unknown_user_population_total` (items of unknown users scored with the
//!   population reward: `unknown_user` = population)
//! - `copl_checkpoint_info{checkpoint_id}` (1 for the served checkpoint, 0 for one swapped
//!   out), `copl_checkpoint_requests_total{checkpoint_id}` (calls answered by each),
//!   `copl_reloads_total{outcome}`; `copl_users_readapted_total`,
//!   `copl_readapt_answers_missing_total`

use std::{net::SocketAddr, time::Instant};

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Starts the exporter on `addr` (on the current runtime) and describes the metrics.
pub fn install(addr: SocketAddr) -> Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Full("copl_batch_rows".into()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        )?
        .set_buckets_for_metric(
            Matcher::Full("copl_batch_tokens".into()),
            &[64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0],
        )?
        .install()
        .with_context(|| format!("starting the metrics listener on {addr}"))?;
    metrics::describe_counter!(
        "copl_requests_total",
        "RPCs answered, by method and status code"
    );
    metrics::describe_histogram!(
        "copl_request_duration_seconds",
        metrics::Unit::Seconds,
        "RPC latency from arrival to answer, by method"
    );
    metrics::describe_gauge!("copl_queue_depth", "Scoring jobs waiting for a model batch");
    metrics::describe_counter!(
        "copl_jobs_dropped_total",
        "Jobs dropped before compute: caller gone (cancelled) or deadline passed"
    );
    metrics::describe_counter!(
        "copl_backend_panics_total",
        "Model batches that panicked (their callers got INTERNAL)"
    );
    metrics::describe_counter!(
        "copl_unknown_user_population_total",
        "Items whose user id was unknown, scored with the population reward (unknown_user = population)"
    );
    metrics::describe_histogram!("copl_batch_rows", "Rows in one model batch");
    metrics::describe_histogram!(
        "copl_batch_tokens",
        "Tokens one model batch costs the forward (padding included where it pads)"
    );
    metrics::describe_histogram!(
        "copl_batch_duration_seconds",
        metrics::Unit::Seconds,
        "Model time of one batch"
    );
    metrics::describe_gauge!("copl_onboarded_users", "Onboarded users stored");
    metrics::describe_gauge!("copl_seen_users", "Users trained into the checkpoint");
    metrics::describe_gauge!(
        "copl_checkpoint_info",
        "1 for the checkpoint served, 0 for one swapped out by a reload"
    );
    metrics::describe_counter!(
        "copl_checkpoint_requests_total",
        "Calls answered, by the checkpoint that answered them"
    );
    metrics::describe_counter!(
        "copl_reloads_total",
        "ReloadCheckpoint and SIGHUP reloads, by outcome (swapped, failed, busy)"
    );
    metrics::describe_counter!(
        "copl_users_readapted_total",
        "Onboarded users of another checkpoint re-adapted from their kept answers"
    );
    metrics::describe_counter!(
        "copl_readapt_answers_missing_total",
        "Answers of re-adapted users on responses this checkpoint's catalogue lacks"
    );
    Ok(())
}

/// The served checkpoint is now `id`: its info gauge 1, the one before 0.
pub fn checkpoint_served(id: &str) {
    static SERVED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let mut served = SERVED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(old) = served.replace(id.to_string())
        && old != id
    {
        metrics::gauge!("copl_checkpoint_info", "checkpoint_id" => old).set(0.0);
    }
    metrics::gauge!("copl_checkpoint_info", "checkpoint_id" => id.to_string()).set(1.0);
}

/// Counts and times one RPC.
pub fn observe<T>(rpc: &'static str, started: Instant, result: &Result<T, tonic::Status>) {
    let code = match result {
        Ok(_) => "Ok".to_string(),
        Err(status) => format!("{:?}", status.code()),
    };
    metrics::counter!("copl_requests_total", "rpc" => rpc, "code" => code).increment(1);
    metrics::histogram!("copl_request_duration_seconds", "rpc" => rpc)
        .record(started.elapsed().as_secs_f64());
}
