//! `copl bench`: the load generator. Score calls from `concurrency` callers for a
//! duration or a count; errors by gRPC code, latency percentiles of the successful calls.
//! `--json` prints a [`BenchReport`] (scripts/serve-benchmark.sh reads it).

use std::{collections::BTreeMap, time::Duration};

use crate::connect::Connection;
use anyhow::{Context, Result};
use copl_proto::v1::{ScoreRequest, reward_service_client::RewardServiceClient};
use serde::{Deserialize, Serialize};

/// `copl bench` options.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Stop after this many seconds …
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// … or after this many calls, whichever comes first.
    #[arg(long)]
    pub count: Option<usize>,
    /// Users to score for, comma-separated, taken in turn (mixed users); empty: the
    /// population.
    #[arg(long, value_delimiter = ',', default_value = "")]
    pub users: Vec<String>,
    #[arg(
        long,
        default_value = "How should I prepare for a job interview next week?"
    )]
    pub prompt: String,
    #[arg(
        long,
        default_value = "Research the company, practise answers to common questions out loud, and prepare two questions of your own."
    )]
    pub response: String,
    #[arg(long)]
    pub json: bool,
}

/// What `copl bench --json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub concurrency: usize,
    pub seconds: f64,
    pub calls_ok: usize,
    /// Refused or failed calls by gRPC code.
    pub errors: BTreeMap<String, usize>,
    pub calls_per_second: f64,
    /// Of the successful calls.
    pub latency_ms: Percentiles,
}

/// Latency percentiles, milliseconds (NaN without a successful call).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// Runs `args.concurrency` callers until the duration or count is reached; errors are
/// counted by gRPC code, latencies of successful calls give the percentiles.
pub async fn run(conn: &Connection, args: BenchArgs) -> Result<BenchReport> {
    let (channel, key) = (conn.channel.clone(), conn.key.clone());
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let started = std::time::Instant::now();
    let stop_at = started + Duration::from_secs_f64(args.duration.max(0.0));
    let issued = Arc::new(AtomicUsize::new(0));
    let limit = args.count.unwrap_or(usize::MAX);
    let users = Arc::new(if args.users.is_empty() {
        vec![String::new()]
    } else {
        args.users.clone()
    });
    let mut callers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let mut client = RewardServiceClient::with_interceptor(channel.clone(), key.clone());
        let (issued, users) = (issued.clone(), users.clone());
        let (prompt, response) = (args.prompt.clone(), args.response.clone());
        callers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors: BTreeMap<String, usize> = Default::default();
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= limit || std::time::Instant::now() >= stop_at {
                    break;
                }
                let t = std::time::Instant::now();
                let call = client
                    .score(ScoreRequest {
                        user_id: users[n % users.len()].clone(),
                        prompt: prompt.clone(),
                        response: response.clone(),
                        truncate: true,
                        ..Default::default()
                    })
                    .await;
                match call {
                    Ok(_) => latencies.push(t.elapsed().as_secs_f64()),
                    Err(s) => *errors.entry(format!("{:?}", s.code())).or_default() += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors: BTreeMap<String, usize> = Default::default();
    for caller in callers {
        let (l, e) = caller.await.context("bench caller")?;
        latencies.extend(l);
        for (code, n) in e {
            *errors.entry(code).or_default() += n;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((p / 100.0) * (latencies.len() - 1) as f64).round() as usize;
        latencies[i.min(latencies.len() - 1)] * 1000.0
    };
    let ok = latencies.len();
    let report = BenchReport {
        concurrency: args.concurrency.max(1),
        seconds,
        calls_ok: ok,
        errors,
        calls_per_second: ok as f64 / seconds.max(1e-9),
        latency_ms: Percentiles {
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
        },
    };
    Ok(report)
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.latency_ms;
        write!(
            f,
            "{} calls in {:.1} s at concurrency {}: {:.1} calls/s, latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
            self.calls_ok,
            self.seconds,
            self.concurrency,
            self.calls_per_second,
            l.p50,
            l.p90,
            l.p99
        )?;
        if !self.errors.is_empty() {
            write!(f, "; errors {:?}", self.errors)?;
        }
        Ok(())
    }
}
