//! `copl-bench serve`: the bare-model side of the serving benchmark. The work
//! `copl bench` sends the server (one `(prompt, response)` per Score call, users taken
//! in turn) run directly through `copl_core::model` in this process, in batches of the
//! sizes the server forms at each concurrency: tokenise each row, then
//! [`RewardModel::score_served`], exactly the server backend's call. The server's
//! overhead is `1 − server rows/s ÷ these rows/s` (docs/benchmarks.md).

use std::{path::Path, time::Instant};

use anyhow::{Context, Result, bail};
use candle_core::{Device, Tensor};
use copl_core::{
    adapt::Adapter,
    model::reward::{RewardModel, ServedRow},
};
use serde::{Deserialize, Serialize};

/// One batch size's throughput and per-batch latency.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServeRow {
    pub batch: usize,
    pub batches: usize,
    pub rows_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What to run: the checkpoint's model, `users` (seen ids; empty: the first eight seen
/// users), one `(prompt, response)` text, each batch size for `seconds`.
pub struct ServeBench<'a> {
    pub ckpt: &'a Path,
    pub backbone: &'a Path,
    pub users: &'a [String],
    pub prompt: &'a str,
    pub response: &'a str,
    pub batches: &'a [usize],
    pub seconds: f64,
}

pub fn bench_serve(args: &ServeBench<'_>) -> Result<Vec<ServeRow>> {
    let device = Device::Cpu;
    let model = RewardModel::load(args.ckpt, args.backbone, &device)?;
    let (adapter, ids) = Adapter::from_checkpoint(args.ckpt)?;
    let rows: Vec<u32> = if args.users.is_empty() {
        (0..ids.users.len().min(8) as u32).collect()
    } else {
        args.users
            .iter()
            .map(|u| {
                ids.users
                    .iter()
                    .position(|id| id == u)
                    .map(|v| v as u32)
                    .with_context(|| format!("user {u:?} is not a seen user of the checkpoint"))
            })
            .collect::<Result<_>>()?
    };
    if rows.is_empty() {
        bail!("the checkpoint has no seen user");
    }
    let flat: Vec<f32> = rows
        .iter()
        .flat_map(|&v| adapter.user_embedding(v).iter().copied())
        .collect();
    let routings = model.user_routings(&Tensor::from_vec(
        flat,
        (rows.len(), adapter.dim()),
        &device,
    )?)?;
    let text = [(args.prompt, args.response)];
    let mut out = Vec::new();
    for &size in args.batches {
        let size = size.max(1);
        let mut latencies = Vec::new();
        let started = Instant::now();
        let mut scored = 0usize;
        while started.elapsed().as_secs_f64() < args.seconds || latencies.is_empty() {
            let t = Instant::now();
            // As the server does: every call tokenised on its own.
            let tokens = (0..size)
                .map(|_| Ok(model.tokenize(&text, true)?.remove(0)))
                .collect::<Result<Vec<_>>>()?;
            let served: Vec<ServedRow<'_>> = tokens
                .iter()
                .enumerate()
                .map(|(i, tokens)| {
                    let k = (scored + i) % rows.len();
                    ServedRow {
                        tokens,
                        routing: &routings[k],
                        embedding: adapter.user_embedding(rows[k]),
                    }
                })
                .collect();
            model.score_served(&served)?;
            latencies.push(t.elapsed().as_secs_f64());
            scored += size;
        }
        let seconds = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            latencies[((p / 100.0) * (latencies.len() - 1) as f64).round() as usize] * 1000.0
        };
        out.push(ServeRow {
            batch: size,
            batches: latencies.len(),
            rows_per_second: scored as f64 / seconds,
            p50_ms: pct(50.0),
            p99_ms: pct(99.0),
        });
    }
    Ok(out)
}

/// The rows of a `bench serve` run, one line a batch size.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServeRows(pub Vec<ServeRow>);

impl std::fmt::Display for ServeRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.0 {
            writeln!(
                f,
                "batch {:>3}: {:>8.1} rows/s, per batch p50 {:.2} ms, p99 {:.2} ms ({} batches)",
                r.batch, r.rows_per_second, r.p50_ms, r.p99_ms, r.batches
            )?;
        }
        Ok(())
    }
}
